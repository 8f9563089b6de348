//! Shared by the integration tests that run a real `ludus serve`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ludus::client::Trust;

/// How long the server may take to print its addresses.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A `ludus serve` child process, killed on drop.
pub struct Server {
    child: Child,
    pub udp: SocketAddr,
    pub https: SocketAddr,
    pub http: SocketAddr,
    pub cert_sha256: [u8; 32],
    pub cert_pem: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ludus serve` with `shards` shards on loopback ports chosen by
/// the kernel, in a fresh data dir, and waits for its `listening` and
/// `certificate` lines. `SERVER_LOG=debug` shows the server's log.
pub fn start_server(shards: usize) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ludus"))
        .current_dir(dir.path())
        .env_clear()
        .env("RUST_LOG", std::env::var("SERVER_LOG").unwrap_or("warn".into()))
        .args(["serve", "--shards", &shards.to_string(), "--udp", "127.0.0.1:0"])
        .args(["--https", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start ludus serve");
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut listening = None;
    let mut hash = None;
    while listening.is_none() || hash.is_none() {
        let line = lines.recv_timeout(STARTUP_TIMEOUT).expect("ludus serve printed its addresses");
        if let Some(rest) = line.strip_prefix("listening ") {
            listening = Some(rest.to_owned());
        }
        if let Some(rest) = line.strip_prefix("certificate sha-256 (hex): ") {
            hash = Some(rest.trim().to_owned());
        }
    }
    let address = |name: &str| -> SocketAddr {
        let listening = listening.as_deref().unwrap();
        let field =
            listening.split_whitespace().find_map(|field| field.strip_prefix(&format!("{name}=")));
        field.unwrap_or_else(|| panic!("{name} in {listening:?}")).parse().unwrap()
    };
    let Trust::CertificateHash(cert_sha256) = Trust::certificate_hash_hex(&hash.unwrap()).unwrap()
    else {
        unreachable!()
    };
    let cert_pem =
        std::fs::read(data_dir.join("tls").join("cert.pem")).expect("the dev certificate");
    Server {
        udp: address("udp"),
        https: address("https"),
        http: address("http"),
        child,
        cert_sha256,
        cert_pem,
        _dir: dir,
    }
}
