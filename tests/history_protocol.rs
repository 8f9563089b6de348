//! Match history over the protocol: HistoryRequest, MatchRequest and
//! ReplayRequest on a real `ludus serve`, answered with the same JSON the
//! REST routes give (GET /api/players/{id}/matches, /api/matches/{id},
//! /api/matches/{id}/replay), and the refusals as Error.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use ludus::client::blocking::{connect_ws, Client};
use ludus::client::{ClientError, Credentials, WsOptions};
use ludus::proto::wire::{self, ErrorCode, Message, Text, WireMessage};
use ludus::services::store::sqlite::SQLITE_FILE_NAME;
use serde_json::{json, Value};
use support::{http, http_json, start_server_with, Server, ServerOptions};

const SECRET: &str = "history-protocol-test-secret-0123456789abcdef";
const CHEAP_ARGON2: &str = "[api]\nargon2_memory_kib = 1024\nargon2_iterations = 1\n";
const WAIT: Duration = Duration::from_secs(15);

fn server(shards: usize, config: &str) -> Server {
    start_server_with(&ServerOptions {
        shards,
        env: vec![("JWT_SECRET".into(), SECRET.into())],
        config_toml: Some(config.to_owned()),
    })
}

/// A new account: (id, access token).
fn register(address: SocketAddr, username: &str) -> (u64, String) {
    let body = json!({ "username": username, "password": "correct horse battery" });
    let answer = http_json(address, "POST", "/api/auth/register", None, &body);
    assert_eq!(answer.status, 201, "{}", String::from_utf8_lossy(&answer.body));
    let body = answer.json();
    let id = body["user"]["id"].as_str().unwrap().parse().unwrap();
    (id, body["access_token"].as_str().unwrap().to_owned())
}

/// Stores a solo result for the account; returns its match id.
fn solo(address: SocketAddr, token: &str, score: u64) -> u64 {
    let body = json!({
        "game": "tetris", "score": score, "lines": 40, "level": 3, "pieces": 100,
        "duration_ms": 90_000,
    });
    let answer = http_json(address, "POST", "/api/solo_results", Some(token), &body);
    assert_eq!(answer.status, 201, "{}", String::from_utf8_lossy(&answer.body));
    answer.json()["id"].as_str().unwrap().parse().unwrap()
}

fn rest(address: SocketAddr, path: &str) -> Value {
    let answer = http(address, "GET", path, &[], b"");
    assert_eq!(answer.status, 200, "{path}: {}", String::from_utf8_lossy(&answer.body));
    answer.json()
}

fn session(server: &Server, access_token: Option<&str>) -> Client {
    let url = format!("ws://{}/ws", server.http);
    let mut client = connect_ws(&url, &WsOptions::default()).unwrap();
    let credentials = match access_token {
        Some(token) => Credentials { access_token: Some(token.to_owned()), ..Default::default() },
        None => Credentials::guest("watcher"),
    };
    client.hello_with(&credentials, WAIT).expect("Welcome");
    client
}

/// The next history answer or Error, skipping anything else.
fn answer(client: &mut Client) -> Message {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        match client.recv(Duration::from_millis(200)) {
            Ok(
                message @ (Message::HistoryPage(_)
                | Message::MatchDetail(_)
                | Message::ReplayChunk(_)
                | Message::Error(_)),
            ) => return message,
            Ok(_) | Err(ClientError::Timeout(_)) => {}
            Err(error) => panic!("waiting for an answer: {error}"),
        }
    }
    panic!("no answer within {WAIT:?}");
}

fn history(
    client: &mut Client,
    request_id: u32,
    player_id: u64,
    cursor: u64,
    limit: u8,
) -> Message {
    let request = wire::HistoryRequest {
        request_id,
        player_id,
        cursor,
        limit,
        mode: Text::default(),
        game: Text::default(),
    };
    client.send(&request).unwrap();
    answer(client)
}

fn page(message: Message, request_id: u32) -> (Value, u64) {
    match message {
        Message::HistoryPage(page) => {
            assert_eq!(page.request_id, request_id);
            (serde_json::from_str(page.matches_json.as_str()).unwrap(), page.next_cursor)
        }
        other => panic!("expected a HistoryPage, got {other:?}"),
    }
}

fn match_ids(page: &Value) -> Vec<u64> {
    let matches = page["matches"].as_array().unwrap();
    matches.iter().map(|m| m["id"].as_str().unwrap().parse().unwrap()).collect()
}

/// The Error answering `request_id`: its code (checked to reply to `code`).
fn error_for(message: Message, request_id: u32, code: u16) -> ErrorCode {
    match message {
        Message::Error(error) => {
            assert_eq!(error.in_reply_to, code);
            let prefix = format!("request {request_id}: ");
            assert!(error.text.as_str().starts_with(&prefix), "{:?}", error.text);
            ErrorCode::from_u16(error.code).expect("a known code")
        }
        other => panic!("expected an Error, got {other:?}"),
    }
}

#[test]
fn history_and_matches_over_the_protocol_are_the_rest_bodies() {
    let server = server(2, CHEAP_ARGON2);
    let (id, token) = register(server.http, "hilda");
    let first = solo(server.http, &token, 1_000);
    std::thread::sleep(Duration::from_millis(5));
    let second = solo(server.http, &token, 2_000);
    let mut client = session(&server, Some(&token));

    // Player 0 is the session's own account: both matches, newest first,
    // the very body REST answers, and no next page.
    let (whole, next) = page(history(&mut client, 1, 0, 0, 20), 1);
    assert_eq!(match_ids(&whole), [second, first]);
    assert_eq!(next, 0);
    assert_eq!(whole, rest(server.http, &format!("/api/players/{id}/matches?limit=20")));

    // One at a time, following next_cursor.
    let (one, next) = page(history(&mut client, 2, id, 0, 1), 2);
    assert_eq!((match_ids(&one), next), (vec![second], second));
    let (two, next) = page(history(&mut client, 3, id, next, 1), 3);
    assert_eq!((match_ids(&two), next), (vec![first], first));
    assert_eq!(
        two,
        rest(server.http, &format!("/api/players/{id}/matches?limit=1&cursor={second}"))
    );
    let (none, next) = page(history(&mut client, 4, id, next, 1), 4);
    assert_eq!((match_ids(&none), next), (vec![], 0));

    // A match: the detail REST gives.
    client.send(&wire::MatchRequest { request_id: 5, match_id: first }).unwrap();
    match answer(&mut client) {
        Message::MatchDetail(detail) => {
            assert_eq!(detail.request_id, 5);
            let shown: Value = serde_json::from_str(detail.match_json.as_str()).unwrap();
            assert_eq!(shown, rest(server.http, &format!("/api/matches/{first}")));
            assert_eq!(shown["players"][0]["score"], 1_000);
        }
        other => panic!("expected a MatchDetail, got {other:?}"),
    }

    // Refusals: an unknown match, a solo match's replay, bad fields, an
    // unknown player.
    let code = wire::MatchRequest::CODE;
    client.send(&wire::MatchRequest { request_id: 6, match_id: 1 }).unwrap();
    assert_eq!(error_for(answer(&mut client), 6, code), ErrorCode::MatchNotFound);
    client.send(&wire::ReplayRequest { request_id: 7, match_id: first, after: 0 }).unwrap();
    let replay_code = wire::ReplayRequest::CODE;
    assert_eq!(error_for(answer(&mut client), 7, replay_code), ErrorCode::ReplayNotFound);
    client.send(&wire::ReplayRequest { request_id: 8, match_id: 1, after: 0 }).unwrap();
    assert_eq!(error_for(answer(&mut client), 8, replay_code), ErrorCode::MatchNotFound);
    let history_code = wire::HistoryRequest::CODE;
    let refused = history(&mut client, 9, 0, 0, 21);
    assert_eq!(error_for(refused, 9, history_code), ErrorCode::InvalidQuery);
    let refused = history(&mut client, 10, id + 1_000, 0, 5);
    assert_eq!(error_for(refused, 10, history_code), ErrorCode::PlayerNotFound);

    // The session goes on after them.
    let (again, _) = page(history(&mut client, 11, 0, 0, 20), 11);
    assert_eq!(again, whole);

    // A guest has no history of its own, but may read others'.
    let mut guest = session(&server, None);
    let refused = history(&mut guest, 1, 0, 0, 5);
    assert_eq!(error_for(refused, 1, history_code), ErrorCode::PlayerNotFound);
    let (seen, _) = page(history(&mut guest, 2, id, 0, 20), 2);
    assert_eq!(seen, whole);
}

/// Reads beyond the account's rate limit are refused `rate_limited`, and
/// every request gets exactly one answer.
#[test]
fn history_reads_are_rate_limited() {
    let config = format!("{CHEAP_ARGON2}account_rate_per_s = 1\naccount_burst = 3\n");
    let server = server(1, &config);
    let (id, token) = register(server.http, "rita");
    solo(server.http, &token, 10);
    let mut client = session(&server, None);
    let (mut pages, mut limited) = (0, 0);
    for request_id in 1..=8 {
        match history(&mut client, request_id, id, 0, 5) {
            Message::HistoryPage(page) => {
                assert_eq!(page.request_id, request_id);
                pages += 1;
            }
            refused => {
                let code = error_for(refused, request_id, wire::HistoryRequest::CODE);
                assert_eq!(code, ErrorCode::RateLimited);
                limited += 1;
            }
        }
    }
    assert!((3..=5).contains(&pages), "{pages} pages, {limited} refused");
    assert_eq!(pages + limited, 8);
}

/// A bots' Tetris match replayed over the protocol, chunk by chunk, is
/// the replay REST gives page by page: the same events and moments.
#[test]
fn a_replay_over_the_protocol_is_the_rest_replay() {
    let server = server(2, CHEAP_ARGON2);
    play_duels(&server);
    let match_id: i64 = {
        let db = rusqlite::Connection::open(server.data_dir().join(SQLITE_FILE_NAME)).unwrap();
        let longest = "SELECT id FROM matches ORDER BY ended_at_ms - started_at_ms DESC LIMIT 1";
        db.query_row(longest, [], |row| row.get(0)).unwrap()
    };
    let mut client = session(&server, None);
    let (mut events, mut moments, mut after, mut chunks) = (Vec::new(), Vec::new(), 0u64, 0);
    let mut shown_match: Option<Value>;
    loop {
        let request_id = 100 + chunks;
        let request = wire::ReplayRequest { request_id, match_id: match_id as u64, after };
        client.send(&request).unwrap();
        let Message::ReplayChunk(chunk) = answer(&mut client) else { panic!("a ReplayChunk") };
        assert_eq!(chunk.request_id, request_id);
        assert!(chunk.page_json.len() <= wire::MAX_HISTORY_JSON_LEN);
        let page: Value = serde_json::from_str(chunk.page_json.as_str()).unwrap();
        shown_match = Some(page["match"].clone());
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        moments.extend(page["moments"].as_array().unwrap().iter().cloned());
        assert_eq!(page["next_after"].as_u64().unwrap_or(0), chunk.next_after);
        chunks += 1;
        if chunk.next_after == 0 {
            break;
        }
        assert!(chunk.next_after > after, "chunks follow each other");
        after = chunk.next_after;
    }
    let rest_replay = rest(server.http, &format!("/api/matches/{match_id}/replay?limit=50000"));
    assert_eq!(rest_replay["next_after"], Value::Null, "the whole match in one REST page");
    assert!(!events.is_empty());
    assert_eq!(&events, rest_replay["events"].as_array().unwrap());
    assert_eq!(shown_match.as_ref(), Some(&rest_replay["match"]));
    // REST's one page carries every moment; the chunks each carry their own.
    assert_eq!(&moments, rest_replay["moments"].as_array().unwrap());

    // A chunk from the middle: the events REST gives after the same point.
    let middle = events[events.len() / 2]["seq"].as_u64().unwrap();
    let request = wire::ReplayRequest { request_id: 1, match_id: match_id as u64, after: middle };
    client.send(&request).unwrap();
    let Message::ReplayChunk(chunk) = answer(&mut client) else { panic!("a ReplayChunk") };
    let page: Value = serde_json::from_str(chunk.page_json.as_str()).unwrap();
    let path = format!("/api/matches/{match_id}/replay?after={middle}&limit=50000");
    let rest_rest = rest(server.http, &path);
    assert_eq!(page["events"], rest_rest["events"]);
    assert_eq!(page["events"][0]["seq"].as_u64().map(|seq| seq > middle), Some(true));
    assert_eq!(chunk.next_after, 0);
    let bytes = serde_json::to_string(&rest_replay).unwrap().len();
    println!("match {match_id}: {} events in {chunks} chunks ({bytes} bytes)", events.len());
}

/// Four `ludus bots` play Tetris duels (as tests/history.rs does); waits
/// until the projector has stored what the rooms handed over.
fn play_duels(server: &Server) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ludus"))
        .arg("bots")
        .args(["--cert-hash", &hex::encode(server.cert_sha256)])
        .args(["--server", &format!("https://{}", server.udp), "--transport", "wt"])
        .args(["--players", "4", "--game", "tetris", "--pps", "4"])
        .args(["--warmup", "1", "--duration", "3", "--quiet", "--json"])
        .arg(dir.path().join("report.json"))
        .output()
        .expect("run ludus bots");
    assert!(output.status.success(), "bots failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = rest(server.http, "/api/stats")["events"].clone();
        let handed = events["handed"].as_u64().unwrap();
        let projected = events["consumers"]["projector"]["handled"].as_u64().unwrap();
        if handed > 0 && events["written"] == events["handed"] && projected >= handed {
            return;
        }
        assert!(Instant::now() < deadline, "the history never caught up: {events}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
