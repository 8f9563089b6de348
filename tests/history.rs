//! Match history end to end: a real `ludus serve` (two shards) hosts
//! Tetris duels played by `ludus bots`. The stream (the embedded log, or
//! real NATS JetStream) holds every game event of every room, in order, in
//! the stored shape, with no event lost on the way from the shards
//! (message ids `room-seq` have no gap); every match replays identically;
//! the projector made one match row per game_end (SQLite, or real
//! Postgres); the key moments published are those of the events.

#[path = "support/nats.rs"]
mod nats;
#[path = "support/postgres.rs"]
mod postgres_support;
mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use ludus::services::events::jetstream::Nats;
use ludus::services::events::log::{EventLog, LogOptions, StoredEvent};
use ludus::services::events::moments::MomentDetector;
use ludus::services::events::stream::read_all;
use ludus::services::events::subject::SubjectFilter;
use ludus::services::store::sqlite::SQLITE_FILE_NAME;
use serde_json::Value;
use support::{start_server, start_server_with, ServerOptions};

#[test]
fn tetris_matches_leave_their_events_in_the_log() {
    let mut server = start_server(2);
    let counted = play_duels(&server);
    let ids = {
        let db = rusqlite::Connection::open(server.data_dir().join(SQLITE_FILE_NAME)).unwrap();
        let mut ids = db.prepare("SELECT id FROM matches").unwrap();
        ids.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect::<Vec<i64>>()
    };
    let replays = fetch_replays(&server, &ids);
    let status = server.terminate(Duration::from_secs(30));
    assert!(status.success(), "ludus serve exited with {status}");

    let (mut log, recovery) =
        EventLog::open(&server.data_dir().join("events"), LogOptions::default()).unwrap();
    assert_eq!(recovery.truncated_bytes, 0, "a graceful stop leaves no torn tail");
    let mut events = Vec::new();
    log.read(1, &SubjectFilter::new("game.*.events").unwrap(), usize::MAX, &mut events).unwrap();
    assert_eq!(
        Some(events.len() as u64),
        counted["written"].as_u64(),
        "every written event is there"
    );
    let rooms = check_rooms(&events);
    for room in rooms.keys() {
        audit_room(
            room,
            &["--data-dir", server.data_dir().to_str().unwrap()],
            &[],
            rooms[room].len(),
        );
    }

    // The projector made one match per game_end, in the embedded database.
    let db = rusqlite::Connection::open(server.data_dir().join(SQLITE_FILE_NAME)).unwrap();
    let mut rows = db
        .prepare(
            "SELECT m.room_id, count(DISTINCT m.id), count(p.seat), \
             sum(CASE WHEN p.outcome = 'win' THEN 1 ELSE 0 END) \
             FROM matches m JOIN match_players p ON p.match_id = m.id GROUP BY m.room_id",
        )
        .unwrap();
    let stored: Vec<Projected> = rows
        .query_map([], |row| {
            Ok(Projected {
                room: row.get(0)?,
                matches: row.get(1)?,
                seats: row.get(2)?,
                wins: row.get(3)?,
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(stored, expected_projection(&rooms));

    // The moment detector published what it finds in these events.
    let mut moments = Vec::new();
    log.read(1, &SubjectFilter::new("game.*.moments").unwrap(), usize::MAX, &mut moments).unwrap();
    assert_eq!(published_moments(&moments), expected_moments(&rooms));
    check_replays(&replays, &rooms, &moments);
}

/// The same with the services of a production deployment: the events go
/// to real NATS JetStream (a nats-server of the test's own, so the stream
/// is this test's alone), the projector writes to real Postgres.
#[test]
fn tetris_matches_flow_through_jetstream_into_postgres() {
    let own_nats = nats::OwnNats::start();
    let schema = postgres_support::TestSchema::create();
    let env =
        vec![("NATS_URL".to_owned(), own_nats.url()), ("DATABASE_URL".to_owned(), schema.url())];
    let mut server =
        start_server_with(&ServerOptions { shards: 2, env, ..ServerOptions::default() });
    let counted = play_duels(&server);
    assert_eq!(counted["stream"], "jetstream");
    let ids: Vec<i64> = schema
        .client()
        .query("SELECT id FROM matches", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let replays = fetch_replays(&server, &ids);
    let status = server.terminate(Duration::from_secs(30));
    assert!(status.success(), "ludus serve exited with {status}");

    let nats = Nats::connect(&own_nats.url(), "ludus-test", Duration::from_secs(10)).unwrap();
    let info = nats.stream_info().unwrap();
    assert_eq!(
        (info.config.name.as_str(), info.config.subjects.clone()),
        ("GAME_EVENTS", vec!["game.>".to_owned()])
    );
    let mut reader = nats.reader();
    let events =
        read_all(&mut reader, &SubjectFilter::new("game.*.events").unwrap(), usize::MAX).unwrap();
    assert_eq!(
        Some(events.len() as u64),
        counted["written"].as_u64(),
        "every written event is there"
    );
    let rooms = check_rooms(&events);
    for (room, room_events) in &rooms {
        audit_room(room, &[], &[("NATS_URL", own_nats.url())], room_events.len());
    }

    let mut db = schema.client();
    let stored: Vec<Projected> = db
        .query(
            "SELECT m.room_id, count(DISTINCT m.id), count(p.seat), \
             sum(CASE WHEN p.outcome = 'win' THEN 1 ELSE 0 END) \
             FROM matches m JOIN match_players p ON p.match_id = m.id \
             GROUP BY m.room_id ORDER BY m.room_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| Projected {
            room: row.get(0),
            matches: row.get(1),
            seats: row.get(2),
            wins: row.get(3),
        })
        .collect();
    assert_eq!(stored, expected_projection(&rooms));
    let modes: i64 = db
        .query_one("SELECT count(*) FROM matches WHERE mode <> 'versus' OR game <> 'tetris'", &[])
        .unwrap()
        .get(0);
    assert_eq!(modes, 0);

    let moments =
        read_all(&mut reader, &SubjectFilter::new("game.*.moments").unwrap(), usize::MAX).unwrap();
    assert_eq!(published_moments(&moments), expected_moments(&rooms));
    check_replays(&replays, &rooms, &moments);
}

/// NATS stopped in the middle of the matches (a nats-server of the test's
/// own, killed and started again): the games go on, the writer holds the
/// events and retries, the client reconnects, and afterwards the stream
/// has every event of every room exactly once; the outage is counted
/// (retries), nothing is lost (no drop), the projector catches up.
#[test]
fn a_nats_outage_mid_match_loses_nothing_and_slows_no_game() {
    let mut own_nats = nats::OwnNats::start();
    let env = vec![("NATS_URL".to_owned(), own_nats.url())];
    let mut server =
        start_server_with(&ServerOptions { shards: 2, env, ..ServerOptions::default() });
    let dir = tempfile::tempdir().unwrap();
    let bots = Command::new(env!("CARGO_BIN_EXE_ludus"))
        .arg("bots")
        .args(["--cert-hash", &hex::encode(server.cert_sha256)])
        .args(["--server", &format!("https://{}", server.udp), "--transport", "wt"])
        .args(["--players", "4", "--game", "tetris", "--pps", "4"])
        .args(["--warmup", "1", "--duration", "7", "--quiet", "--json"])
        .arg(dir.path().join("report.json"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run ludus bots");
    let stats = |server: &support::Server| {
        support::http(server.http, "GET", "/api/stats", &[], b"").json()["events"].clone()
    };
    // Games running (events flowing), then NATS goes away.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while stats(&server)["written"].as_u64().unwrap() < 20 {
        assert!(std::time::Instant::now() < deadline, "no game started: {}", stats(&server));
        std::thread::sleep(Duration::from_millis(50));
    }
    own_nats.stop();
    let handed_at_stop = stats(&server)["handed"].as_u64().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = stats(&server);
        // The outage noticed while the games keep handing events over.
        if now["retries"].as_u64().unwrap() > 0 && now["handed"].as_u64().unwrap() > handed_at_stop
        {
            assert_eq!(now["available"], false, "{now}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "outage not seen: {now}");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1_500));
    own_nats.start_again();
    let output = bots.wait_with_output().unwrap();
    assert!(output.status.success(), "bots failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(report["games_started"].as_u64().unwrap() >= 2, "{report}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let counted = loop {
        let now = stats(&server);
        let projected = now["consumers"]["projector"]["handled"].as_u64().unwrap();
        if now["written"] == now["handed"]
            && now["pending"] == 0
            && projected >= now["handed"].as_u64().unwrap()
        {
            break now;
        }
        assert!(std::time::Instant::now() < deadline, "never caught up after the outage: {now}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(counted["available"], true);
    assert!(counted["retries"].as_u64().unwrap() > 0, "{counted}");
    assert_eq!(
        (
            counted["dropped"].as_u64(),
            counted["buffer_dropped"].as_u64(),
            counted["failed"].as_u64()
        ),
        (Some(0), Some(0), Some(0)),
        "{counted}"
    );
    let status = server.terminate(Duration::from_secs(30));
    assert!(status.success(), "ludus serve exited with {status}");

    let nats = Nats::connect(&own_nats.url(), "ludus-test", Duration::from_secs(10)).unwrap();
    let mut reader = nats.reader();
    let events =
        read_all(&mut reader, &SubjectFilter::new("game.*.events").unwrap(), usize::MAX).unwrap();
    assert_eq!(Some(events.len() as u64), counted["written"].as_u64(), "each event once");
    // No gap in any room, every match ended and replays identically.
    let rooms = check_rooms(&events);
    for (room, room_events) in &rooms {
        assert!(room_events.iter().any(|(_, e)| e["type"] == "game_end"), "room {room} ended");
        audit_room(room, &[], &[("NATS_URL", own_nats.url())], room_events.len());
    }
}

/// A match's replay as `GET /api/matches/{id}/replay` served it.
struct Replay {
    room: String,
    events: Vec<Value>,
    moments: Vec<Value>,
}

/// Fetches every match's replay over REST, in small pages (following
/// next_after), while the server runs.
fn fetch_replays(server: &support::Server, ids: &[i64]) -> Vec<Replay> {
    assert!(!ids.is_empty(), "the projector stored no match");
    let mut replays = Vec::new();
    for id in ids {
        let (mut events, mut moments, mut after) = (Vec::new(), Vec::new(), 0u64);
        let mut room = String::new();
        loop {
            let path = format!("/api/matches/{id}/replay?limit=40&after={after}");
            let answer = support::http(server.http, "GET", &path, &[], b"");
            assert_eq!(answer.status, 200, "{path}: {}", String::from_utf8_lossy(&answer.body));
            let page = answer.json();
            page["match"]["room_id"].as_str().unwrap().clone_into(&mut room);
            assert!(page["events"].as_array().unwrap().len() <= 40);
            for event in page["events"].as_array().unwrap() {
                let seq = event["seq"].as_u64().unwrap();
                assert!(seq > after, "pages follow each other");
                events.push(event.clone());
            }
            moments.extend(page["moments"].as_array().unwrap().iter().cloned());
            match page["next_after"].as_u64() {
                Some(next) => after = next,
                None => break,
            }
        }
        replays.push(Replay { room, events, moments });
    }
    let missing = support::http(server.http, "GET", "/api/matches/1/replay", &[], b"");
    assert_eq!((missing.status, missing.error_code()), (404, "match_not_found".to_owned()));
    replays
}

/// Each replay is its room's match: every event, in order, and the key
/// moments the detector published for them.
fn check_replays(
    replays: &[Replay],
    rooms: &BTreeMap<String, Vec<(u64, Value)>>,
    moments: &[StoredEvent],
) {
    let strip = |value: &Value| {
        let mut value = value.clone();
        value.as_object_mut().unwrap().remove("seq");
        value
    };
    for replay in replays {
        let stored: Vec<&Value> = rooms[&replay.room].iter().map(|(_, event)| event).collect();
        let served: Vec<Value> = replay.events.iter().map(strip).collect();
        assert_eq!(
            served.iter().collect::<Vec<_>>(),
            stored,
            "room {}: the match's events",
            replay.room
        );
        let published: Vec<Value> = moments
            .iter()
            .filter(|moment| moment.subject == format!("game.{}.moments", replay.room))
            .map(|moment| serde_json::from_slice(&moment.payload).unwrap())
            .collect();
        let served: Vec<Value> = replay.moments.iter().map(strip).collect();
        assert_eq!(served, published, "room {}: the match's moments", replay.room);
    }
}

/// One room's matches as the projector stored them.
#[derive(Debug, PartialEq, Eq)]
struct Projected {
    room: i64,
    matches: i64,
    seats: i64,
    wins: i64,
}

/// What the projector must make of the rooms' events: per room, one match
/// per game_end with a seat per result, one winner each (duels).
fn expected_projection(rooms: &BTreeMap<String, Vec<(u64, Value)>>) -> Vec<Projected> {
    let mut expected: Vec<Projected> = rooms
        .iter()
        .filter_map(|(room, events)| {
            let ends: Vec<&Value> =
                events.iter().map(|(_, e)| e).filter(|e| e["type"] == "game_end").collect();
            let seats: usize =
                ends.iter().map(|e| e["data"]["results"].as_array().unwrap().len()).sum();
            (!ends.is_empty()).then(|| Projected {
                room: room.parse().unwrap(),
                matches: ends.len() as i64,
                seats: seats as i64,
                wins: ends.len() as i64,
            })
        })
        .collect();
    expected.sort_by_key(|projected| projected.room);
    assert!(!expected.is_empty(), "no match ended");
    expected
}

/// The moments the detector finds in the rooms' events: (message id, JSON).
fn expected_moments(rooms: &BTreeMap<String, Vec<(u64, Value)>>) -> Vec<(String, Value)> {
    let mut detector = MomentDetector::new();
    let mut found = Vec::new();
    for (room, events) in rooms {
        for (seq, event) in events {
            detector.on_event(room.parse().unwrap(), *seq, event, &mut found).unwrap();
        }
    }
    let mut moments: Vec<(String, Value)> =
        found.into_iter().map(|moment| (moment.message_id, moment.moment)).collect();
    moments.sort_by(|a, b| a.0.cmp(&b.0));
    moments
}

fn published_moments(stored: &[StoredEvent]) -> Vec<(String, Value)> {
    let mut moments: Vec<(String, Value)> = stored
        .iter()
        .map(|event| (event.msg_id.clone(), serde_json::from_slice(&event.payload).unwrap()))
        .collect();
    moments.sort_by(|a, b| a.0.cmp(&b.0));
    moments
}
/// Groups the stored events by room and checks each room's record: no
/// gap in the message ids, game_start first, ticks in order, play.
fn check_rooms(events: &[StoredEvent]) -> BTreeMap<String, Vec<(u64, Value)>> {
    assert!(!events.is_empty());
    let mut rooms: BTreeMap<String, Vec<(u64, Value)>> = BTreeMap::new();
    for event in events {
        let room = event.subject.split('.').nth(1).unwrap().to_owned();
        let (id_room, seq) = event.msg_id.split_once('-').unwrap();
        assert_eq!(id_room, room, "the message id names the subject's room");
        let value: Value = serde_json::from_slice(&event.payload).unwrap();
        rooms.entry(room).or_default().push((seq.parse().unwrap(), value));
    }
    assert_eq!(rooms.len(), 2, "four players make two duels");
    for (room, events) in &rooms {
        let seqs: Vec<u64> = events.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "room {room}: no gap");
        let (_, start) = &events[0];
        assert_eq!(start["type"], "game_start", "room {room} starts with game_start");
        assert_eq!(start["data"]["game"], "tetris");
        let players = start["data"]["player_ids"].as_array().unwrap();
        assert_eq!(players.len(), 2);
        let ticks: Vec<u64> = events.iter().map(|(_, e)| e["tick"].as_u64().unwrap()).collect();
        assert!(ticks.windows(2).all(|pair| pair[0] <= pair[1]), "room {room}: ticks in order");
        let count = |kind: &str| events.iter().filter(|(_, e)| e["type"] == kind).count();
        assert!(count("input") > 0 && count("piece_lock") > 0, "room {room}: play recorded");
        for (_, event) in events.iter().filter(|(_, e)| e["type"] == "piece_lock") {
            let player = event["player_id"].as_str().unwrap();
            assert!(players.iter().any(|p| p == player), "a lock names a seated player");
            assert_eq!(event["data"]["board"].as_str().unwrap().len(), 400);
        }
    }
    rooms
}

/// `ludus replay ROOM`: every match of the room re-simulated from its seed
/// and logged inputs gives the very same events, all `count` compared.
fn audit_room(room: &str, args: &[&str], env: &[(&str, String)], count: usize) {
    // The determinism audit: every match re-simulated from its seed and
    // logged inputs gives the very same events.
    let audit = Command::new(env!("CARGO_BIN_EXE_ludus"))
        .args(["replay", room])
        .args(args)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .output()
        .expect("run ludus replay");
    let stdout = String::from_utf8_lossy(&audit.stdout);
    let why = format!("{stdout}{}", String::from_utf8_lossy(&audit.stderr));
    assert!(audit.status.success(), "room {room}: {why}");
    assert!(stdout.lines().count() >= 1, "{why}");
    assert!(stdout.lines().all(|line| line.contains(": identical (")), "{why}");
    // Every stored event of the room was compared.
    let compared: usize = stdout
        .lines()
        .map(|line| {
            let count = line.split(": identical (").nth(1).unwrap().split(' ').next().unwrap();
            count.parse::<usize>().unwrap()
        })
        .sum();
    assert_eq!(compared, count, "room {room}: {why}");
    println!("room {room}: {stdout}");
}
/// Four `ludus bots` play Tetris duels on `server`; returns the server's
/// event counters once the writer has stored all it was handed (nothing
/// dropped, nothing failed).
fn play_duels(server: &support::Server) -> Value {
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
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bots failed:\n{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(report["games_started"].as_u64().unwrap() >= 2, "{report}");
    // The counters agree: nothing dropped, everything handed over written,
    // and the projector has seen it all.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let stats = support::http(server.http, "GET", "/api/stats", &[], b"").json();
        let events = stats["events"].clone();
        let handed = events["handed"].as_u64().unwrap();
        let projected = events["consumers"]["projector"]["handled"].as_u64().unwrap();
        if handed > 0 && events["written"] == events["handed"] && projected >= handed {
            assert_eq!((events["dropped"].as_u64(), events["failed"].as_u64()), (Some(0), Some(0)));
            assert_eq!(events["buffer_dropped"].as_u64(), Some(0));
            return events;
        }
        assert!(std::time::Instant::now() < deadline, "the history never caught up: {events}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
