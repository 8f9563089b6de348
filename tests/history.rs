//! Match history on the embedded event log: a real `ludus serve` (two
//! shards) hosts Tetris duels played by `ludus bots`; after a graceful
//! stop, its data dir's event log holds every game event of every room, in
//! order, in the stored shape, with no event lost on the way from the
//! shards (message ids `room-seq` have no gap).

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use ludus::services::events::log::{EventLog, LogOptions};
use ludus::services::events::subject::SubjectFilter;
use serde_json::Value;
use support::start_server;

#[test]
fn tetris_matches_leave_their_events_in_the_log() {
    let mut server = start_server(2);
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
    // The counters agree: nothing dropped, everything handed over written.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let counted = loop {
        let stats = support::http(server.http, "GET", "/api/stats", &[], b"").json();
        let events = stats["events"].clone();
        if events["written"] == events["handed"] {
            break events;
        }
        assert!(std::time::Instant::now() < deadline, "the writer never caught up: {events}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!((counted["dropped"].as_u64(), counted["failed"].as_u64()), (Some(0), Some(0)));
    let status = server.terminate(Duration::from_secs(30));
    assert!(status.success(), "ludus serve exited with {status}");

    let (mut log, recovery) =
        EventLog::open(&server.data_dir().join("events"), LogOptions::default()).unwrap();
    assert_eq!(recovery.truncated_bytes, 0, "a graceful stop leaves no torn tail");
    let mut events = Vec::new();
    log.read(1, &SubjectFilter::new("game.*.events").unwrap(), usize::MAX, &mut events).unwrap();
    assert!(!events.is_empty());
    assert_eq!(
        Some(events.len() as u64),
        counted["written"].as_u64(),
        "every written event is there"
    );

    let mut rooms: BTreeMap<String, Vec<(u64, Value)>> = BTreeMap::new();
    for event in &events {
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

        // The determinism audit: every match re-simulated from its seed and
        // logged inputs gives the very same events.
        let audit = Command::new(env!("CARGO_BIN_EXE_ludus"))
            .args(["replay", room, "--data-dir"])
            .arg(server.data_dir())
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
        assert_eq!(compared, events.len(), "room {room}: {why}");
        println!("room {room}: {stdout}");
    }
}
