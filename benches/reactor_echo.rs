//! The reactor's echo path end to end: one Ping answered by a real `ludus
//! serve` (one shard, its own process) over loopback, as a client library
//! sees it: WebTransport datagram, WebTransport control stream, WebSocket.
//! What it measures is the round trip (client encode, kernel, server shard
//! turn, kernel, client decode), one Ping in flight at a time: latency, not
//! throughput (`make bench-transport` and `ludus bots` load the server).
//!
//! `cargo bench --bench reactor_echo`. The server is the binary cargo built
//! for the bench (`CARGO_BIN_EXE_ludus`), on ports the kernel picks.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use ludus::client::blocking as client;
use ludus::client::{Channel, Trust, WsOptions};

/// How long one Ping may take before the bench fails.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the server may take to print its addresses.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

struct Server {
    child: Child,
    udp: SocketAddr,
    http: SocketAddr,
    cert_sha256: [u8; 32],
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ludus"))
        .current_dir(dir.path())
        .env_clear()
        .env("RUST_LOG", "warn")
        .args(["serve", "--shards", "1", "--udp", "127.0.0.1:0", "--https", "127.0.0.1:0"])
        .args(["--http", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ludus serve");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let (lines_tx, lines) = std::sync::mpsc::channel();
    // Drain for the server's whole life, not only up to the lines wanted.
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let (mut listening, mut hash) = (None, None);
    while let Ok(line) = lines.recv_timeout(STARTUP_TIMEOUT) {
        if let Some(rest) = line.strip_prefix("listening ") {
            listening = Some(rest.to_owned());
        } else if let Some(hex) = line.strip_prefix("certificate sha-256 (hex): ") {
            hash = Some(hex.trim().to_owned());
        }
        if listening.is_some() && hash.is_some() {
            break;
        }
    }
    let listening = listening.expect("ludus serve printed its addresses");
    let address = |key: &str| -> SocketAddr {
        listening
            .split_whitespace()
            .find_map(|field| field.strip_prefix(key))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {listening}"))
    };
    let Ok(Trust::CertificateHash(cert_sha256)) =
        Trust::certificate_hash_hex(&hash.expect("certificate hash"))
    else {
        panic!("the certificate hash does not parse");
    };
    Server { udp: address("udp="), http: address("http="), cert_sha256, child, _dir: dir }
}

fn echo(c: &mut Criterion) {
    let server = start_server();
    let mut group = c.benchmark_group("reactor_echo");
    group.measurement_time(Duration::from_secs(5));

    let mut wt = client::connect_wt(server.udp, server.cert_sha256).expect("WebTransport");
    wt.hello("bench-wt").expect("Welcome over WebTransport");
    group.bench_function("wt_datagram_ping", |b| {
        b.iter(|| wt.ping_on(Channel::Datagram, PING_TIMEOUT).expect("datagram Pong"))
    });
    group.bench_function("wt_stream_ping", |b| {
        b.iter(|| wt.ping_on(Channel::Reliable, PING_TIMEOUT).expect("stream Pong"))
    });

    let url = format!("ws://{}/ws", server.http);
    let mut ws = client::connect_ws(&url, &WsOptions::default()).expect("WebSocket");
    ws.hello("bench-ws").expect("Welcome over WebSocket");
    group.bench_function("ws_ping", |b| {
        b.iter(|| ws.ping_on(Channel::Reliable, PING_TIMEOUT).expect("Pong"))
    });
    group.finish();
    let _ = wt.close();
    let _ = ws.close();
}

criterion_group!(benches, echo);
criterion_main!(benches);
