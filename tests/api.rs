//! The REST API of a real `ludus serve` over HTTP/1.1, on its embedded
//! store (SQLite in the data dir): accounts, tokens, profiles, hostile
//! input, rate limits, CORS. tests/api_postgres.rs runs the account flow
//! against the real Postgres.

mod support;

use std::net::SocketAddr;

use ludus::client::blocking::connect_ws;
use ludus::client::{Credentials, WsOptions};
use ludus::services::auth::jwt::{AccessClaims, JwtKeys};
use serde_json::{json, Value};
use support::{http, http_json, start_server_with, HttpAnswer, Server, ServerOptions};

/// The key the test servers sign with, so tests can forge and expire
/// tokens the way an attacker or a slow client would.
const SECRET: &str = "k1:an-api-test-secret-of-at-least-32-bytes";
/// Cheap argon2 for tests; the defaults are measured in benches/auth.rs.
const CHEAP_ARGON2: &str = "[api]\nargon2_memory_kib = 1024\nargon2_iterations = 1\n";

fn server_with(config: &str) -> Server {
    start_server_with(&ServerOptions {
        shards: 2,
        env: vec![("JWT_SECRET".into(), SECRET.into())],
        config_toml: Some(config.to_owned()),
    })
}

fn server() -> Server {
    server_with(CHEAP_ARGON2)
}

fn register(address: SocketAddr, username: &str, password: &str) -> HttpAnswer {
    let body = json!({ "username": username, "password": password });
    http_json(address, "POST", "/api/auth/register", None, &body)
}

fn login(address: SocketAddr, username: &str, password: &str) -> HttpAnswer {
    let body = json!({ "username": username, "password": password });
    http_json(address, "POST", "/api/auth/login", None, &body)
}

fn tokens(answer: &HttpAnswer) -> (String, String) {
    let body = answer.json();
    let access = body["access_token"].as_str().expect("an access token").to_owned();
    let refresh = body["refresh_token"].as_str().expect("a refresh token").to_owned();
    (access, refresh)
}

fn refresh(address: SocketAddr, token: &str) -> HttpAnswer {
    http_json(address, "POST", "/api/auth/refresh", None, &json!({ "refresh_token": token }))
}

fn me(address: SocketAddr, token: &str) -> HttpAnswer {
    http(address, "GET", "/api/players/me", &[("authorization", &format!("Bearer {token}"))], b"")
}

/// An account's whole life over HTTP/1.1: register, read and edit the
/// profile, log in again, refresh (rotating), log out (revoking).
#[test]
fn an_account_registers_edits_its_profile_refreshes_and_logs_out() {
    let server = server();
    let created = register(server.http, "alice", "correct horse battery");
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    let body = created.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["user"]["username"], "alice");
    assert_eq!(body["user"]["role"], "player");
    let id = body["user"]["id"].as_str().unwrap().to_owned();
    assert!(id.parse::<i64>().unwrap() >= 1 << 62, "account ids are in the account range");
    assert!(created.header("x-request-id").is_some());
    let (access, refresh_token) = tokens(&created);

    let profile = me(server.http, &access);
    assert_eq!(profile.status, 200);
    assert_eq!(profile.json()["id"], id.as_str());
    assert_eq!(profile.json()["nickname"], "alice");

    let update = json!({ "nickname": "Alice ♠", "bio": "plays T-spins", "country": "FR" });
    let updated = http_json(server.http, "PUT", "/api/players/me", Some(&access), &update);
    assert_eq!(updated.status, 200, "{}", String::from_utf8_lossy(&updated.body));
    let public = http(server.http, "GET", &format!("/api/players/{id}"), &[], b"");
    assert_eq!(public.status, 200);
    assert_eq!(public.json()["nickname"], "Alice ♠");
    assert_eq!(public.json()["country"], "FR");
    assert!(public.json().get("username").is_none(), "usernames are private");
    let stats = http(server.http, "GET", &format!("/api/players/{id}/stats"), &[], b"");
    assert_eq!((stats.status, stats.json()["games"].clone()), (200, json!([])));

    assert_eq!(login(server.http, "ALICE", "correct horse battery").status, 200, "any case");
    assert_eq!(login(server.http, "alice", "wrong horse battery").status, 401);
    assert_eq!(login(server.http, "nobody", "correct horse battery").status, 401);

    let rotated = refresh(server.http, &refresh_token);
    assert_eq!(rotated.status, 200);
    let (access_2, refresh_2) = tokens(&rotated);
    assert_ne!(refresh_2, refresh_token);
    assert_eq!(me(server.http, &access_2).status, 200);

    let logout = http_json(
        server.http,
        "POST",
        "/api/auth/logout",
        None,
        &json!({ "refresh_token": refresh_2 }),
    );
    assert_eq!(logout.status, 204);
    assert_eq!(refresh(server.http, &refresh_2).status, 401, "logged out");

    // The storage workers' counters are in /api/stats for operators.
    let stats = http(server.http, "GET", "/api/stats", &[], b"").json();
    assert!(stats["storage"]["completed"].as_u64().unwrap() >= 9, "{stats}");
    assert_eq!(stats["storage"]["panicked"], 0);
}

/// A spent refresh token presented again means a copy was stolen: the
/// whole login is revoked, including the newer token the thief may not
/// have.
#[test]
fn a_replayed_refresh_token_revokes_the_whole_login() {
    let server = server();
    let (_, first) = tokens(&register(server.http, "bob", "a long enough password"));
    let (_, second) = tokens(&refresh(server.http, &first));
    let replay = refresh(server.http, &first);
    assert_eq!((replay.status, replay.error_code().as_str()), (401, "refresh_token_reused"));
    let after = refresh(server.http, &second);
    assert_eq!((after.status, after.error_code().as_str()), (401, "invalid_refresh_token"));
    // Another login of the same account is untouched.
    let (_, other) = tokens(&login(server.http, "bob", "a long enough password"));
    assert_eq!(refresh(server.http, &other).status, 200);
}

/// A guest plays under a nickname, then becomes a player with the same id.
#[test]
fn a_guest_upgrades_to_a_player_and_keeps_its_id() {
    let server = server();
    let guest =
        http_json(server.http, "POST", "/api/auth/guest", None, &json!({"nickname": "zoë"}));
    assert_eq!(guest.status, 201);
    assert_eq!(guest.json()["user"]["role"], "guest");
    assert_eq!(guest.json()["user"]["username"], Value::Null);
    let id = guest.json()["user"]["id"].clone();
    let (access, _) = tokens(&guest);
    let body = json!({ "username": "zoe", "password": "now with a password" });
    let upgraded = http_json(server.http, "POST", "/api/auth/upgrade", Some(&access), &body);
    assert_eq!(upgraded.status, 200, "{}", String::from_utf8_lossy(&upgraded.body));
    assert_eq!(upgraded.json()["user"]["id"], id);
    assert_eq!(upgraded.json()["user"]["role"], "player");
    let (player_access, _) = tokens(&upgraded);
    let again = http_json(server.http, "POST", "/api/auth/upgrade", Some(&player_access), &body);
    assert_eq!((again.status, again.error_code().as_str()), (409, "not_a_guest"));
    assert_eq!(login(server.http, "zoe", "now with a password").json()["user"]["id"], id);
}

/// A signed-in player's access token is their identity in the game
/// protocol too: Hello with it, and Welcome names the account.
#[test]
fn hello_with_an_access_token_is_the_account() {
    let server = server();
    let created = register(server.http, "carol", "the game is afoot");
    let id: u64 = created.json()["user"]["id"].as_str().unwrap().parse().unwrap();
    let (access, _) = tokens(&created);
    let url = format!("ws://{}/ws", server.http);
    let options = WsOptions::default();
    let mut client = connect_ws(&url, &options).unwrap();
    let credentials = Credentials { access_token: Some(access), ..Credentials::default() };
    let welcome = client.hello_with(&credentials, std::time::Duration::from_secs(5)).unwrap();
    assert_eq!((welcome.player_id, welcome.nickname.as_str()), (id, "carol"));

    let forged = format!("{}x", tokens(&login(server.http, "carol", "the game is afoot")).0);
    let mut client = connect_ws(&url, &options).unwrap();
    let credentials = Credentials { access_token: Some(forged), ..Credentials::default() };
    assert!(client.hello_with(&credentials, std::time::Duration::from_secs(5)).is_err());
}

/// Forged, expired, wrong-key and malformed access tokens: 401 with a
/// reason, and the request does nothing.
#[test]
fn bad_access_tokens_are_refused() {
    let server = server();
    let (access, _) = tokens(&register(server.http, "dave", "a fine password"));
    let id: i64 = me(server.http, &access).json()["id"].as_str().unwrap().parse().unwrap();
    let keys = JwtKeys::from_config(SECRET).unwrap();
    let other_keys = JwtKeys::from_config("k1:a-completely-different-secret-32-bytes").unwrap();
    let now_s =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
            as i64;
    let expired = keys.sign(&AccessClaims::new(id, "player", "dave", now_s - 3_600));
    let wrong_key = other_keys.sign(&AccessClaims::new(id, "player", "dave", now_s));
    let mut tampered = access.clone();
    tampered.replace_range(access.len() - 4.., "AAAA");
    let none_alg = {
        let parts: Vec<&str> = access.split('.').collect();
        format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.AAAA", parts[1])
    };
    let cases = [
        ("expired", expired.as_str(), "token_expired"),
        ("wrong key", wrong_key.as_str(), "token_bad_signature"),
        ("tampered", tampered.as_str(), "token_bad_signature"),
        ("alg none", none_alg.as_str(), "token_unsupported_algorithm"),
        ("garbage", "not.a.jwt", "token_malformed"),
    ];
    for (what, token, code) in cases {
        let answer = me(server.http, token);
        assert_eq!(answer.status, 401, "{what}");
        assert_eq!(answer.error_code(), code, "{what}");
        assert!(answer.header("www-authenticate").is_some(), "{what}");
        let update = json!({ "nickname": "hacked" });
        let put = http_json(server.http, "PUT", "/api/players/me", Some(token), &update);
        assert_eq!(put.status, 401, "{what}");
    }
    let missing = http(server.http, "GET", "/api/players/me", &[], b"");
    assert_eq!((missing.status, missing.error_code().as_str()), (401, "missing_token"));
    assert_eq!(me(server.http, &access).json()["nickname"], "dave", "nothing changed");
}

/// Injection strings, oversized and deeply nested JSON, wrong content
/// types, unknown fields: the right 4xx, and nothing is stored.
#[test]
fn hostile_bodies_get_4xx_and_store_nothing() {
    let server = server();
    let address = server.http;
    let injection = "x'; DROP TABLE users; --";
    let answer = register(address, injection, "a fine password");
    assert_eq!((answer.status, answer.error_code().as_str()), (400, "invalid_request"));
    let answer = login(address, injection, "' OR '1'='1");
    assert_eq!(answer.status, 401);
    let answer = register(address, "erin", "short");
    assert_eq!((answer.status, answer.error_code().as_str()), (400, "invalid_request"));
    assert_eq!(login(address, "erin", "short").status, 401, "nothing stored");

    let huge = format!(r#"{{"username":"erin","password":"{}"}}"#, "p".repeat(20_000));
    let answer = http(
        address,
        "POST",
        "/api/auth/register",
        &[("content-type", "application/json")],
        huge.as_bytes(),
    );
    assert_eq!((answer.status, answer.error_code().as_str()), (413, "body_too_large"));
    let nested = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let answer = http(
        address,
        "POST",
        "/api/auth/login",
        &[("content-type", "application/json")],
        nested.as_bytes(),
    );
    assert_eq!((answer.status, answer.error_code().as_str()), (400, "invalid_json"));
    let form = b"username=erin&password=a+fine+password";
    let answer = http(
        address,
        "POST",
        "/api/auth/register",
        &[("content-type", "application/x-www-form-urlencoded")],
        form,
    );
    assert_eq!((answer.status, answer.error_code().as_str()), (415, "unsupported_media_type"));
    let extra = json!({ "username": "erin", "password": "a fine password", "role": "admin" });
    let answer = http_json(address, "POST", "/api/auth/register", None, &extra);
    assert_eq!(
        (answer.status, answer.error_code().as_str()),
        (400, "invalid_json"),
        "no mass assignment"
    );
    let answer = http(
        address,
        "POST",
        "/api/auth/register",
        &[("content-type", "application/json")],
        b"\xff\xfe{",
    );
    assert_eq!(answer.status, 400);

    // After all that, erin does not exist and the name is free.
    assert_eq!(register(address, "erin", "a fine password").status, 201);
    assert_eq!(register(address, "ERIN", "a fine password").status, 409, "taken, any case");

    let bad_paths = [
        ("GET", "/api/players/not-a-number", 404),
        ("GET", "/api/players/1", 404),
        ("DELETE", "/api/players/me", 405),
        ("GET", "/api/auth/login", 405),
        ("GET", "/api/leaderboards/tetris?limit=1000", 400),
        ("GET", "/api/leaderboards/tetris?limit=2&evil=1", 400),
    ];
    for (method, path, status) in bad_paths {
        let answer = http(address, method, path, &[], b"");
        assert_eq!(answer.status, status, "{method} {path}");
        assert!(answer.json()["error"]["message"].is_string(), "{method} {path}");
    }
    let board = http(address, "GET", "/api/leaderboards/tetris?limit=2&offset=0", &[], b"");
    assert_eq!(board.status, 200);
    assert_eq!(board.json()["entries"], json!([]));
}

/// Past the per-address rate the API answers 429 with Retry-After; the
/// password endpoints have their own, lower limit.
#[test]
fn rate_limits_answer_429_with_retry_after() {
    let config = format!("{CHEAP_ARGON2}ip_rate_per_s = 5\nip_burst = 5\nauth_per_minute = 2\n");
    let server = server_with(&config);
    let statuses: Vec<u16> = (0..3)
        .map(|index| register(server.http, &format!("user{index}"), "a fine password").status)
        .collect();
    // Connections land on either shard; each shard counts on its own, so
    // the third may pass on one and not on the other, but not both.
    assert_eq!(statuses[0], 201);
    let limited: Vec<HttpAnswer> = (0..12)
        .map(|_| http(server.http, "GET", "/api/leaderboards/arena", &[], b""))
        .filter(|answer| answer.status == 429)
        .collect();
    assert!(!limited.is_empty(), "12 requests at once exceed 2 shards x burst 5");
    let retry_after: u32 = limited[0].header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(limited[0].error_code(), "rate_limited");
}

/// Pages of allowed origins may call the API; preflights are answered;
/// request ids are echoed when sane and made up otherwise.
#[test]
fn cors_and_request_ids() {
    let config = format!("{CHEAP_ARGON2}cors_origins = [\"https://play.example\"]\n");
    let server = server_with(&config);
    let preflight = http(
        server.http,
        "OPTIONS",
        "/api/auth/login",
        &[("origin", "https://play.example"), ("access-control-request-method", "POST")],
        b"",
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("https://play.example"));
    assert!(preflight.header("access-control-allow-headers").unwrap().contains("authorization"));
    let refused = http(
        server.http,
        "OPTIONS",
        "/api/auth/login",
        &[("origin", "https://evil.example"), ("access-control-request-method", "POST")],
        b"",
    );
    assert_eq!(refused.status, 403);
    assert_eq!(refused.header("access-control-allow-origin"), None);

    let read = http(
        server.http,
        "GET",
        "/api/leaderboards/tetris",
        &[("origin", "https://play.example"), ("x-request-id", "trace-42")],
        b"",
    );
    assert_eq!(read.header("access-control-allow-origin"), Some("https://play.example"));
    assert_eq!(read.header("x-request-id"), Some("trace-42"));
    let odd = http(
        server.http,
        "GET",
        "/api/ready",
        &[("x-request-id", "not sane: spaces and / slashes")],
        b"",
    );
    assert_eq!(odd.status, 200);
    assert_eq!(odd.json()["store"], "sqlite");
    assert_ne!(odd.header("x-request-id"), Some("not sane: spaces and / slashes"));
}

/// The lobby over REST: public rooms made through the protocol are listed
/// (from any shard's copy of the directory) and shown by id; private rooms
/// are neither.
#[test]
fn public_rooms_are_listed_and_shown_private_ones_are_not() {
    use ludus::proto::wire::{self, GameKind, Message, Text};
    let server = server();
    let url = format!("ws://{}/ws", server.http);
    let open_room = |name: &str, private: bool| -> (ludus::client::Client, u64) {
        let mut client = connect_ws(&url, &WsOptions::default()).unwrap();
        client.hello("host").unwrap();
        let create = wire::RoomCreate {
            game: GameKind::Arena,
            capacity: 4,
            private,
            name: Text::new(name).unwrap(),
        };
        client.send(&create).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Message::RoomJoined(joined)) =
                client.recv(std::time::Duration::from_millis(200))
            {
                let room_id = joined.room_id;
                return (client, room_id);
            }
        }
        panic!("no RoomJoined for {name}");
    };
    let (_public_host, public_id) = open_room("open table", false);
    let (_private_host, private_id) = open_room("secret table", true);

    // Each shard's directory copy catches up within a moment; HTTP
    // connections land on either shard.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let listed = loop {
        let list = http(server.http, "GET", "/api/rooms?game=arena", &[], b"");
        assert_eq!(list.status, 200);
        let rooms = list.json()["rooms"].as_array().unwrap().clone();
        let all_shards_agree = (0..4).all(|_| {
            let again = http(server.http, "GET", "/api/rooms?game=arena", &[], b"").json();
            again["rooms"].as_array().unwrap().len() == rooms.len()
        });
        if rooms.len() == 1 && all_shards_agree {
            break rooms;
        }
        assert!(std::time::Instant::now() < deadline, "rooms never listed: {rooms:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(listed[0]["id"], public_id.to_string());
    assert_eq!(listed[0]["name"], "open table");
    assert_eq!(
        (listed[0]["game"].clone(), listed[0]["phase"].clone()),
        (json!("arena"), json!("waiting"))
    );
    assert_eq!((listed[0]["members"].clone(), listed[0]["capacity"].clone()), (json!(1), json!(4)));

    let shown = http(server.http, "GET", &format!("/api/rooms/{public_id}"), &[], b"");
    assert_eq!((shown.status, shown.json()["code"].clone()), (200, listed[0]["code"].clone()));
    let hidden = http(server.http, "GET", &format!("/api/rooms/{private_id}"), &[], b"");
    assert_eq!((hidden.status, hidden.error_code().as_str()), (404, "room_not_found"));
    let tetris = http(server.http, "GET", "/api/rooms?game=tetris", &[], b"");
    assert_eq!(tetris.json()["rooms"], json!([]));
    let bad = http(server.http, "GET", "/api/rooms?game=chess", &[], b"");
    assert_eq!((bad.status, bad.error_code().as_str()), (400, "invalid_query"));
}

/// A guest account's access token and id.
fn guest(address: SocketAddr, nickname: &str) -> (String, u64) {
    let answer =
        http_json(address, "POST", "/api/auth/guest", None, &json!({ "nickname": nickname }));
    assert_eq!(answer.status, 201, "{:?}", answer.json());
    let id = answer.json()["user"]["id"].as_str().unwrap().parse().unwrap();
    (tokens(&answer).0, id)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A signed-in protocol client (WebSocket), Hello done with the token.
fn player(server: &Server, access: &str) -> ludus::client::Client {
    let url = format!("ws://{}/ws", server.http);
    let mut client = connect_ws(&url, &WsOptions::default()).unwrap();
    let credentials = Credentials { access_token: Some(access.to_owned()), ..Default::default() };
    client.hello_with(&credentials, std::time::Duration::from_secs(5)).unwrap();
    client
}

/// Sends RoomJoin with the reservation token; the first RoomJoined or
/// Error that answers it.
fn join_with(
    client: &mut ludus::client::Client,
    room_id: u64,
    token: &str,
) -> ludus::proto::wire::Message {
    use ludus::proto::wire::{Message, RoomJoin, Text};
    let join = RoomJoin { room_id, reservation_token: Some(Text::new(token).unwrap()) };
    client.send(&join).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        match client.recv(std::time::Duration::from_millis(200)) {
            Ok(message @ (Message::RoomJoined(_) | Message::Error(_))) => return message,
            _ => continue,
        }
    }
    panic!("no answer to RoomJoin");
}

/// POST /api/rooms holds a seat for its creator; POST /rooms/{id}/join
/// holds one for another account (the room may live on another shard);
/// each takes it with RoomJoin and the reservation token over the game
/// protocol; POST /rooms/{id}/leave gives it back.
#[test]
fn rooms_over_rest_hold_seats_the_protocol_takes() {
    use ludus::proto::wire::{ErrorCode, Message};
    let server = server();
    // The shard's own routes first: serving them must leave the API on.
    for _ in 0..4 {
        assert_eq!(http(server.http, "GET", "/api/health", &[], b"").status, 200);
    }
    let (ann, _) = guest(server.http, "ann");
    let (bob, bob_id) = guest(server.http, "bob");
    let (cat, _) = guest(server.http, "cat");
    let post = |path: &str, token: &str, body: &Value| {
        http_json(server.http, "POST", path, Some(token), body)
    };

    let anonymous =
        http_json(server.http, "POST", "/api/rooms", None, &json!({ "game": "tetris" }));
    assert_eq!((anonymous.status, anonymous.error_code().as_str()), (401, "missing_token"));
    let too_big = post("/api/rooms", &ann, &json!({ "game": "tetris", "capacity": 9 }));
    assert_eq!((too_big.status, too_big.error_code().as_str()), (400, "invalid_room_settings"));
    let unknown = post("/api/rooms", &ann, &json!({ "game": "chess" }));
    assert_eq!(unknown.status, 400);

    let created = post("/api/rooms", &ann, &json!({ "game": "tetris", "name": "rest duel" }));
    assert_eq!(created.status, 201, "{:?}", created.json());
    let body = created.json();
    let room_id: u64 = body["room"]["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        (body["room"]["name"].clone(), body["room"]["capacity"].clone()),
        (json!("rest duel"), json!(2))
    );
    assert_eq!(body["expires_in_ms"], 30_000);
    let mut ann_client = player(&server, &ann);
    let Message::RoomJoined(joined) =
        join_with(&mut ann_client, room_id, body["reservation_token"].as_str().unwrap())
    else {
        panic!("ann takes her seat")
    };
    assert_eq!((joined.room_id, joined.members.len()), (room_id, 1));

    let join_path = format!("/api/rooms/{room_id}/join");
    let held = post(&join_path, &bob, &json!({}));
    assert_eq!(held.status, 200, "{:?}", held.json());
    let bob_token = held.json()["reservation_token"].as_str().unwrap().to_owned();
    let full = post(&join_path, &cat, &json!({}));
    assert_eq!((full.status, full.error_code().as_str()), (409, "room_full"));

    let mut bob_client = player(&server, &bob);
    let Message::Error(error) = join_with(&mut bob_client, room_id, "00000000deadbeef") else {
        panic!("a wrong reservation token is refused")
    };
    assert_eq!(error.code, ErrorCode::InvalidReservation as u16);
    let Message::RoomJoined(joined) = join_with(&mut bob_client, room_id, &bob_token) else {
        panic!("bob takes the held seat")
    };
    assert_eq!(joined.members.len(), 2);
    let again = post(&join_path, &bob, &json!({}));
    assert_eq!((again.status, again.error_code().as_str()), (409, "already_in_room"));

    let leave_path = format!("/api/rooms/{room_id}/leave");
    let left = post(&leave_path, &bob, &json!({}));
    assert_eq!((left.status, left.json()["left"].clone()), (200, json!(true)));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        assert!(std::time::Instant::now() < deadline, "bob never heard of his leave");
        if let Ok(Message::MemberLeft(gone)) =
            bob_client.recv(std::time::Duration::from_millis(200))
        {
            assert_eq!(gone.player_id, bob_id);
            break;
        }
    }
    let not_in = post(&leave_path, &bob, &json!({}));
    assert_eq!((not_in.status, not_in.error_code().as_str()), (404, "not_in_room"));
    let freed = post(&join_path, &cat, &json!({}));
    assert_eq!(freed.status, 200, "the seat bob gave back: {:?}", freed.json());
    let missing = post("/api/rooms/12345/join", &cat, &json!({}));
    assert_eq!((missing.status, missing.error_code().as_str()), (404, "room_not_found"));
}

/// POST /api/match/queue twice (two accounts) makes a Tetris duel: both
/// see it in GET /api/match/status and take their seats with the tokens.
#[test]
fn quick_match_over_rest_pairs_two_players() {
    use ludus::proto::wire::Message;
    let server = server();
    let (dan, _) = guest(server.http, "dan");
    let (eve, _) = guest(server.http, "eve");
    let auth = |token: &str| bearer(token);
    let queue = |token: &str| {
        http_json(
            server.http,
            "POST",
            "/api/match/queue",
            Some(token),
            &json!({ "game": "tetris" }),
        )
    };
    let status = |token: &str| {
        http(server.http, "GET", "/api/match/status", &[("authorization", &auth(token))], b"")
    };

    assert_eq!(status(&dan).json()["state"], "idle");
    let waiting = queue(&dan);
    assert_eq!(waiting.status, 200);
    assert_eq!(
        (waiting.json()["state"].clone(), waiting.json()["position"].clone()),
        (json!("queued"), json!(1))
    );
    assert_eq!(status(&dan).json()["state"], "queued");
    let bad =
        http_json(server.http, "POST", "/api/match/queue", Some(&dan), &json!({ "game": "go" }));
    assert_eq!(bad.status, 400);

    let matched = queue(&eve).json();
    assert_eq!(matched["state"], "matched", "{matched}");
    let dan_view = status(&dan).json();
    assert_eq!(
        (dan_view["state"].clone(), dan_view["room_id"].clone()),
        (json!("matched"), matched["room_id"].clone())
    );
    let room_id: u64 = matched["room_id"].as_str().unwrap().parse().unwrap();

    let mut eve_client = player(&server, &eve);
    let mut dan_client = player(&server, &dan);
    let joined =
        join_with(&mut eve_client, room_id, matched["reservation_token"].as_str().unwrap());
    assert!(matches!(joined, Message::RoomJoined(_)), "{joined:?}");
    let Message::RoomJoined(joined) =
        join_with(&mut dan_client, room_id, dan_view["reservation_token"].as_str().unwrap())
    else {
        panic!("dan takes his seat")
    };
    assert_eq!((joined.room_id, joined.members.len(), joined.capacity), (room_id, 2, 2));

    let left =
        http(server.http, "DELETE", "/api/match/queue", &[("authorization", &auth(&dan))], b"");
    assert_eq!((left.status, left.json()["state"].clone()), (200, json!("idle")));
}

/// POST /api/solo_results as `token` (none: no Authorization).
fn post_solo(address: SocketAddr, token: Option<&str>, body: &Value) -> HttpAnswer {
    http_json(address, "POST", "/api/solo_results", token, body)
}

fn solo_body(score: u64, duration_ms: u64) -> Value {
    json!({
        "game": "tetris", "score": score, "lines": 40, "level": 5, "pieces": 101,
        "duration_ms": duration_ms, "seed": "1234567890123456789",
    })
}

fn get(address: SocketAddr, path: &str) -> HttpAnswer {
    http(address, "GET", path, &[], b"")
}

/// Every match of a history, read page by page through `next_cursor`
/// (the query is appended to each page's); the pages' sizes with them.
fn walk_history(address: SocketAddr, player: &str, query: &str) -> (Vec<Value>, Vec<usize>) {
    let (mut matches, mut sizes, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let mut path = format!("/api/players/{player}/matches?{query}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = get(address, &path);
        assert_eq!(page.status, 200, "{path}: {:?}", page.json());
        let body = page.json();
        let found = body["matches"].as_array().unwrap().clone();
        sizes.push(found.len());
        matches.extend(found);
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (matches, sizes),
        }
        assert!(sizes.len() < 100, "the cursor never ends");
    }
}

/// A solo result over REST: 201 with the stored match (the caller's one
/// seat, first of one, the figures in its stats, started duration_ms
/// before it ended), the same JSON from GET /api/matches/{id}, the
/// account's current nickname on the seat, and no change to its stats.
#[test]
fn a_solo_result_is_recorded_and_read_back() {
    let server = server();
    let (token, player_id) = guest(server.http, "runner");
    let rename = json!({ "nickname": "Runner ♦" });
    assert_eq!(http_json(server.http, "PUT", "/api/players/me", Some(&token), &rename).status, 200);

    let posted = post_solo(server.http, Some(&token), &solo_body(12_345, 95_000));
    assert_eq!(posted.status, 201, "{:?}", posted.json());
    let stored = posted.json();
    let match_id: i64 = stored["id"].as_str().unwrap().parse().unwrap();
    assert!(match_id > 0);
    assert_eq!(stored["room_id"], stored["id"], "a solo result is its own room");
    assert_eq!((stored["game"].clone(), stored["mode"].clone()), (json!("tetris"), json!("solo")));
    assert_eq!(stored["tournament_id"], Value::Null);
    assert_eq!(stored["seed"], "1234567890123456789");
    let ended_at_ms = stored["ended_at_ms"].as_i64().unwrap();
    assert_eq!(stored["started_at_ms"].as_i64().unwrap(), ended_at_ms - 95_000);
    assert_eq!(match_id >> 20, ended_at_ms, "the id carries the end time");
    assert_eq!(
        stored["players"],
        json!([{
            "seat": 0, "user_id": player_id.to_string(), "nickname": "Runner ♦",
            "placement": 1, "outcome": "win", "score": 12_345,
            "stats": { "lines": 40, "level": 5, "pieces": 101, "duration_ms": 95_000 },
        }])
    );
    let read = get(server.http, &format!("/api/matches/{match_id}"));
    assert_eq!((read.status, read.json()), (200, stored.clone()));
    let stats = get(server.http, &format!("/api/players/{player_id}/stats"));
    assert_eq!(stats.json()["games"], json!([]), "solo results count in no stats");

    let unseeded = json!({
        "game": "tetris", "score": 0, "lines": 0, "level": 1.0, "pieces": 0, "duration_ms": 0,
    });
    let posted = post_solo(server.http, Some(&token), &unseeded);
    assert_eq!(posted.status, 201, "{:?}", posted.json());
    assert_eq!(
        (posted.json()["seed"].clone(), posted.json()["players"][0]["stats"]["level"].clone()),
        (json!("0"), json!(1))
    );

    let missing = get(server.http, "/api/matches/123456789");
    assert_eq!((missing.status, missing.error_code().as_str()), (404, "match_not_found"));
    assert_eq!(get(server.http, "/api/matches/0").status, 404);
    assert_eq!(get(server.http, "/api/matches/x").status, 404);
}

/// POST /api/solo_results without a valid access token is 401 exactly as
/// the other authenticated routes answer it, and stores nothing; bodies
/// out of bounds or with unknown fields are 400, other media types 415.
#[test]
fn solo_results_need_a_valid_token_and_a_sane_body() {
    let server = server();
    let (token, player_id) = guest(server.http, "checked");
    let keys = JwtKeys::from_config(SECRET).unwrap();
    let other_keys = JwtKeys::from_config("k1:a-completely-different-secret-32-bytes").unwrap();
    let now_s =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
            as i64;
    let expired =
        keys.sign(&AccessClaims::new(player_id as i64, "guest", "checked", now_s - 3_600));
    let wrong_key =
        other_keys.sign(&AccessClaims::new(player_id as i64, "guest", "checked", now_s));
    let body = solo_body(10, 1_000);
    let missing = post_solo(server.http, None, &body);
    assert_eq!((missing.status, missing.error_code().as_str()), (401, "missing_token"));
    assert!(missing.header("www-authenticate").is_some());
    for (what, bad, code) in [
        ("expired", expired.as_str(), "token_expired"),
        ("wrong key", wrong_key.as_str(), "token_bad_signature"),
        ("garbage", "not.a.jwt", "token_malformed"),
    ] {
        let answer = post_solo(server.http, Some(bad), &body);
        assert_eq!((answer.status, answer.error_code().as_str()), (401, code), "{what}");
        assert!(answer.header("www-authenticate").is_some(), "{what}");
    }
    let basic = http(
        server.http,
        "POST",
        "/api/solo_results",
        &[("content-type", "application/json"), ("authorization", &format!("Basic {token}"))],
        body.to_string().as_bytes(),
    );
    assert_eq!(basic.status, 401);

    let mut bad_bodies = Vec::new();
    for (field, value) in [
        ("score", json!(-1)),
        ("score", json!(4_294_967_296u64)),
        ("lines", json!(2.5)),
        ("duration_ms", json!(86_400_001)),
        ("game", json!("arena")),
        ("seed", json!("-5")),
        ("seed", json!(5)),
        ("role", json!("admin")),
    ] {
        let mut bad = body.clone();
        bad[field] = value;
        bad_bodies.push(bad);
    }
    let mut incomplete = body.clone();
    incomplete.as_object_mut().unwrap().remove("pieces");
    bad_bodies.push(incomplete);
    for bad in &bad_bodies {
        let answer = post_solo(server.http, Some(&token), bad);
        assert_eq!(answer.status, 400, "{bad}: {:?}", answer.json());
        assert!(answer.json()["error"]["message"].is_string());
    }
    let form = http(
        server.http,
        "POST",
        "/api/solo_results",
        &[("content-type", "text/plain"), ("authorization", &format!("Bearer {token}"))],
        body.to_string().as_bytes(),
    );
    assert_eq!((form.status, form.error_code().as_str()), (415, "unsupported_media_type"));

    let history = get(server.http, &format!("/api/players/{player_id}/matches")).json();
    assert_eq!(history, json!({ "matches": [], "next_cursor": null }), "nothing was stored");
    assert_eq!(post_solo(server.http, Some(&token), &body).status, 201, "the token works");
}

/// A player's history over REST: newest first by id, every match once
/// through the cursor, with filters on mode, game and the start time
/// (`[from, to)`), only the player's own matches, 400 for bad queries and
/// 404 for unknown players.
#[test]
fn match_history_pages_through_the_cursor_and_filters() {
    let server = server();
    let (ann, ann_id) = guest(server.http, "ann");
    let (ben, ben_id) = guest(server.http, "ben");
    let mut posted: Vec<Value> = Vec::new();
    for index in 0..7u64 {
        // Durations differ, so start order is not end order.
        let answer = post_solo(server.http, Some(&ann), &solo_body(index, 5_000 * (index % 3)));
        assert_eq!(answer.status, 201, "{:?}", answer.json());
        posted.push(answer.json());
    }
    assert_eq!(post_solo(server.http, Some(&ben), &solo_body(99, 1)).status, 201);
    let id_of = |record: &Value| record["id"].as_str().unwrap().parse::<i64>().unwrap();
    posted.sort_by_key(|record| std::cmp::Reverse(id_of(record)));

    let (all, sizes) = walk_history(server.http, &ann_id.to_string(), "limit=3");
    assert_eq!(all, posted, "every match once, newest first, as posted");
    assert_eq!(sizes, [3, 3, 1]);
    let (_, sizes) = walk_history(server.http, &ann_id.to_string(), "limit=7");
    assert_eq!(sizes, [7, 0], "a full last page is followed by an empty one");
    let first = get(server.http, &format!("/api/players/{ann_id}/matches")).json();
    assert_eq!(
        (first["matches"].as_array().unwrap().len(), first["next_cursor"].clone()),
        (7, Value::Null)
    );

    let (solo, _) = walk_history(server.http, &ann_id.to_string(), "limit=2&mode=solo&game=tetris");
    assert_eq!(solo, posted);
    for query in ["mode=versus", "game=arena"] {
        let page = get(server.http, &format!("/api/players/{ann_id}/matches?{query}"));
        assert_eq!(page.json()["matches"], json!([]), "{query}");
    }
    let starts: Vec<i64> =
        posted.iter().map(|record| record["started_at_ms"].as_i64().unwrap()).collect();
    let (from, to) = (*starts.iter().min().unwrap() + 1, *starts.iter().max().unwrap());
    let expected: Vec<Value> = posted
        .iter()
        .filter(|record| (from..to).contains(&record["started_at_ms"].as_i64().unwrap()))
        .cloned()
        .collect();
    assert!(!expected.is_empty() && expected.len() < posted.len(), "{starts:?}");
    let (window, _) =
        walk_history(server.http, &ann_id.to_string(), &format!("limit=1&from={from}&to={to}"));
    assert_eq!(window, expected, "started in [{from}, {to})");

    let (bens, _) = walk_history(server.http, &ben_id.to_string(), "");
    assert_eq!(bens.len(), 1);
    assert_eq!(bens[0]["players"][0]["user_id"], ben_id.to_string());
    assert_eq!(get(server.http, "/api/players/4611686018427387905/matches").status, 404);
    for query in [
        "limit=0",
        "limit=101",
        "cursor=x",
        "cursor=-1",
        "from=-1",
        "to=1.5",
        "mode=SOLO",
        "evil=1",
    ] {
        let answer = get(server.http, &format!("/api/players/{ann_id}/matches?{query}"));
        assert_eq!(
            (answer.status, answer.error_code().as_str()),
            (400, "invalid_query"),
            "{query}"
        );
    }
}
