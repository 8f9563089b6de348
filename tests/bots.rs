//! `ludus bots` against a real `ludus serve` (two processes, loopback): the
//! bots connect, join rooms, play, get their inputs acknowledged, and the
//! report, the plot and the exit status say so. Short runs: these prove the
//! load tester works, the figures belong to `make bench`.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::{start_server, Server};

fn bots(server: &Server, dir: &Path, args: &[&str]) -> (Output, Value) {
    let json = dir.join("report.json");
    let output = Command::new(env!("CARGO_BIN_EXE_ludus"))
        .arg("bots")
        .args(["--cert-hash", &hex::encode(server.cert_sha256)])
        .args(["--ramp", "200", "--ping-ms", "200"])
        .arg("--json")
        .arg(&json)
        .args(args)
        .output()
        .expect("run ludus bots");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let text = std::fs::read_to_string(&json)
        .unwrap_or_else(|error| panic!("no report ({error}); stderr:\n{stderr}"));
    let report: Value = serde_json::from_str(&text).expect("the report is JSON");
    let stdout: Value = serde_json::from_slice(&output.stdout).expect("stdout is the same JSON");
    assert_eq!(stdout, report, "stdout and --json differ");
    (output, report)
}

fn show(output: &Output, report: &Value) -> String {
    format!("{}\n{report:#}", String::from_utf8_lossy(&output.stderr))
}

#[test]
fn arena_bots_over_webtransport_drop_their_network_and_resume_their_seats() {
    // Two shards: a resumed session may land on either.
    let server = start_server(2);
    let dir = tempfile::tempdir().unwrap();
    let wt = format!("https://{}", server.udp);
    let (output, report) = bots(
        &server,
        dir.path(),
        &[
            "--server",
            &wt,
            "--transport",
            "wt",
            "--players",
            "8",
            "--game",
            "arena",
            "--reconnect",
            "0.5",
            "--warmup",
            "1",
            "--duration",
            "10",
        ],
    );
    let why = show(&output, &report);
    assert!(output.status.success(), "{why}");
    // Four of the eight drop their transport (no Bye, no QUIC close: the
    // server cannot tell yet) and come back with their resume token.
    assert_eq!(report["reconnects"], 4, "{why}");
    assert_eq!(report["reconnect_ms"]["count"], 4, "every one got its seat back: {why}");
    assert_eq!(report["games_started"], 8, "one game, resumed, not restarted: {why}");
    assert_eq!(report["errors_total"], 0, "{why}");
    assert_eq!(report["clients_connected_at_end"], 8, "{why}");
    assert_eq!(report["inputs_unacked"], 0, "{why}");
}

#[test]
fn arena_bots_over_websocket_fill_rooms_of_eight_and_get_acknowledged() {
    let server = start_server(1);
    let dir = tempfile::tempdir().unwrap();
    let ws = format!("ws://{}", server.http);
    let (output, report) = bots(
        &server,
        dir.path(),
        &[
            "--server",
            &ws,
            "--transport",
            "ws",
            "--players",
            "16",
            "--game",
            "arena",
            "--duration",
            "4",
        ],
    );
    let why = show(&output, &report);
    assert!(output.status.success(), "{why}");
    assert_eq!(report["clients_connected"], 16, "{why}");
    assert_eq!(report["rooms"], 2, "16 arena bots make two full rooms of 8: {why}");
    assert_eq!(report["games_started"], 16, "{why}");
    assert_eq!(report["errors_total"], 0, "{why}");
    // 30 Hz inputs and states for 16 bots over the window.
    let states = report["states_per_s"].as_f64().unwrap();
    assert!(states > 16.0 * 15.0, "states/s {states}: {why}");
    let acked = report["latency_ms"]["count"].as_u64().unwrap();
    let sent = report["inputs_sent"].as_u64().unwrap();
    assert!(acked > 0 && acked * 10 >= sent * 9, "{acked} of {sent} inputs acknowledged: {why}");
    assert!(report["rtt_ms"]["count"].as_u64().unwrap() > 0, "{why}");
    assert!(report["seconds"].as_array().unwrap().len() >= 2, "{why}");
}

#[test]
fn tetris_bots_over_webtransport_play_watch_and_plot() {
    let server = start_server(2);
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("plot.svg");
    let wt = format!("https://{}", server.udp);
    let (output, report) = bots(
        &server,
        dir.path(),
        &[
            "--server",
            &wt,
            "--transport",
            "wt",
            "--players",
            "10",
            "--game",
            "tetris",
            "--spectators",
            "0.2",
            "--pps",
            "4",
            "--warmup",
            "1",
            "--duration",
            "6",
            "--plot",
            plot.to_str().unwrap(),
        ],
    );
    let why = show(&output, &report);
    assert!(output.status.success(), "{why}");
    assert_eq!(report["clients_connected"], 10, "{why}");
    assert_eq!(report["spectators"], 2, "{why}");
    let games = report["games_started"].as_u64().unwrap();
    assert!(games >= 8, "eight players in four duels, {games} games: {why}");
    assert_eq!(report["rooms"], 4, "{why}");
    assert_eq!(report["errors_total"], 0, "{why}");
    // Pieces really lock: the bots' inputs move and drop them.
    assert!(report["pieces_locked"].as_u64().unwrap() >= 8 * 6, "{why}");
    assert!(report["latency_ms"]["count"].as_u64().unwrap() > 0, "{why}");
    assert!(report["rtt_ms"]["count"].as_u64().unwrap() > 0, "{why}");
    let svg = std::fs::read_to_string(&plot).expect("the plot was written");
    assert!(svg.contains("<svg") && svg.contains("tetris"), "not the plot: {}", &svg[..200]);
}

#[test]
fn unreachable_servers_and_error_budgets_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9 (discard) of loopback over TCP.
    let output = Command::new(env!("CARGO_BIN_EXE_ludus"))
        .args(["bots", "--transport", "ws", "--server", "ws://127.0.0.1:9", "--players", "3"])
        .args(["--duration", "1", "--warmup", "0", "--quiet", "--json"])
        .arg(dir.path().join("r.json"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no bot could connect"), "{stderr}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(report["connect_failures"], 3, "{report}");
    // Usage errors are status 2 and name the flag.
    let usage = Command::new(env!("CARGO_BIN_EXE_ludus"))
        .args(["bots", "--transport", "wt", "--server", "https://127.0.0.1:4433"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("--cert-hash"));
}
