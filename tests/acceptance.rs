//! Acceptance tests: the built `ludus serve` against real, independent
//! clients on loopback.
//!
//! - curl over HTTP/1.1, plain and TLS;
//! - aioquic (Python) over HTTP/3 and WebTransport, with a protocol codec
//!   written from docs/PROTOCOL.md alone (tests/interop/);
//! - Debian's Chromium driven by playwright-core, running the browser client
//!   (web/diag.html) over WebTransport, WebSocket and secure WebSocket
//!   (tests/browser/);
//! - the game client (web/index.html) in Chromium: a Tetris battle of two
//!   pages with a spectator, the same with a dropped connection, scripted
//!   bots clearing lines and sending garbage, and an arena match between a
//!   WebTransport page and a WebSocket page; screenshots land in
//!   target/tmp/acceptance-artefacts/ for a person to look at;
//! - hostile input on every port, after which the server must hold no
//!   connection or session, still serve, and drain cleanly on SIGTERM;
//! - the drain itself: SIGTERM says Bye(server_draining) to WebSocket and
//!   WebTransport sessions, closes them, and exits 0.
//!
//! Run alone with `cargo test --test acceptance -- --nocapture` to see what
//! each test proved (RTTs included).
//!
//! Nothing is built or installed here: the binary is cargo's
//! (CARGO_BIN_EXE_ludus); Chromium, the aioquic venv and playwright-core come
//! from `scripts/acceptance-deps.sh`. When they are missing the tests fail
//! and say so; they never skip silently. Each test starts its own server on
//! port 0 in a temp dir; tests run one at a time (a lock) so that timing
//! checks do not compete for the machine's cores.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const DEPS_HINT: &str = "run `bash scripts/acceptance-deps.sh` (as root) to install Chromium, \
                         the aioquic venv and playwright-core";

// ---------------------------------------------------------------------------
// The server under test

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `ludus serve` on 127.0.0.1 with every port 0, in a temp data dir. Killed
/// on drop; its log is printed when a test fails.
struct Server {
    child: Child,
    dir: tempfile::TempDir,
    udp: SocketAddr,
    https: SocketAddr,
    http: SocketAddr,
    cert_hex: String,
    spki_base64: String,
    log: PathBuf,
    stopped: bool,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("server.log");
        let stderr = File::create(&log).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ludus"))
            .args(["serve", "--shards", "2", "--udp", "127.0.0.1:0"])
            .args(["--https", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawning ludus serve");
        let stdout = child.stdout.take().expect("stdout");
        let (lines, received) = mpsc::channel();
        thread::spawn(move || {
            // Keep draining for the server's whole life (renewal notices).
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let (mut listening, mut cert_hex, mut spki) = (None, None, None);
        let deadline = Instant::now() + Duration::from_secs(20);
        while listening.is_none() || cert_hex.is_none() || spki.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = received.recv_timeout(left) else {
                let _ = child.kill();
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("ludus serve printed no listening line within 20 s; its log:\n{log}");
            };
            if let Some(rest) = line.strip_prefix("listening ") {
                listening = Some(rest.to_owned());
            } else if let Some(hex) = line.strip_prefix("certificate sha-256 (hex): ") {
                cert_hex = Some(hex.trim().to_owned());
            } else if let Some(b64) = line.strip_prefix("certificate SPKI sha-256 (base64): ") {
                spki = Some(b64.trim().to_owned());
            }
        }
        let listening = listening.unwrap();
        let address = |key: &str| -> SocketAddr {
            listening
                .split_whitespace()
                .find_map(|part| part.strip_prefix(key))
                .and_then(|value| value.parse().ok())
                .unwrap_or_else(|| panic!("no {key} in `listening {listening}`"))
        };
        Server {
            udp: address("udp="),
            https: address("https="),
            http: address("http="),
            child,
            dir,
            cert_hex: cert_hex.unwrap(),
            spki_base64: spki.unwrap(),
            log,
            stopped: false,
        }
    }

    fn cert_pem(&self) -> PathBuf {
        self.dir.path().join("data/tls/cert.pem")
    }

    fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("ludus serve exited ({status}) during the test");
        }
    }

    /// Live (quic_connections, tcp_connections, sessions) summed over shards.
    fn stats(&self) -> (u64, u64, u64) {
        let (status, _, body) = http_get(self.http, "/api/stats");
        assert_eq!(status, 200, "GET /api/stats");
        let stats: Value = serde_json::from_slice(&body).expect("stats JSON");
        let sum = |key: &str| -> u64 {
            stats["shards"]
                .as_array()
                .expect("shards")
                .iter()
                .map(|shard| shard[key].as_u64().unwrap_or_else(|| panic!("{key} in {stats}")))
                .sum()
        };
        (sum("quic_connections"), sum("tcp_connections"), sum("sessions"))
    }

    /// Waits until the server holds no QUIC connection, no session and no
    /// TCP connection but the one asking (/api/stats counts itself).
    fn wait_idle(&self, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let (quic, tcp, sessions) = self.stats();
            if quic == 0 && tcp <= 1 && sessions == 0 {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "after {within:?} the server still holds quic_connections={quic} \
                 tcp_connections={tcp} (1 is the stats request) sessions={sessions}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn assert_healthy(&mut self) {
        self.assert_alive();
        let (status, _, body) = http_get(self.http, "/api/health");
        assert_eq!(status, 200, "GET /api/health: {}", String::from_utf8_lossy(&body));
    }

    fn sigterm(&self) {
        // SAFETY: kill(2) on our own child's pid.
        let result = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(result, 0, "kill(SIGTERM)");
    }

    fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.stopped = true;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ludus serve still running {within:?} after SIGTERM"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then exit status 0 within 15 s.
    fn stop(&mut self) -> Duration {
        let started = Instant::now();
        self.sigterm();
        let status = self.wait_exit(Duration::from_secs(15));
        assert_eq!(status.code(), Some(0), "ludus serve exit status after SIGTERM: {status}");
        started.elapsed()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(80)..];
            eprintln!("---- ludus serve log (last {} lines)\n{}", tail.len(), tail.join("\n"));
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers: HTTP, processes, randomness

/// A minimal HTTP/1.1 GET (Connection: close): (status, head, body).
fn http_get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("write request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&response)));
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    (status, head, response[split + 4..].to_vec())
}

/// Runs a command to completion within `timeout` (killed and failed after).
fn run_bounded(command: &mut Command, timeout: Duration) -> Output {
    let what = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("spawning {what}: {error}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
            panic!("{what} did not finish within {timeout:?}; stderr:\n{stderr}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

fn show(output: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The venv's Python with aioquic; fails (never skips) when it is missing.
fn venv_python() -> PathBuf {
    let venv = std::env::var_os("ACCEPTANCE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("target/acceptance-venv"));
    let python = venv.join("bin/python");
    assert!(python.exists(), "{} is missing: {DEPS_HINT}", python.display());
    python
}

fn interop(script: &str) -> Command {
    let mut command = Command::new(venv_python());
    command.arg(manifest_dir().join("tests/interop").join(script));
    command
}

fn require_browser() {
    let playwright = manifest_dir().join("tests/browser/node_modules/playwright-core/package.json");
    assert!(playwright.exists(), "playwright-core is not installed: {DEPS_HINT}");
    assert!(Path::new("/usr/bin/chromium").exists(), "/usr/bin/chromium is missing: {DEPS_HINT}");
}

fn require_curl() {
    let found = Command::new("curl").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(found, "curl is missing: {DEPS_HINT}");
}

/// The last JSON object line of a script's stdout.
fn json_line(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
        .unwrap_or_else(|| panic!("no JSON result line:\n{}", show(output)))
}

fn summary(values: &Value) -> String {
    let mut ms: Vec<f64> =
        values.as_array().map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default();
    if ms.is_empty() {
        return "none".into();
    }
    ms.sort_by(f64::total_cmp);
    format!(
        "n={} min={:.3} p50={:.3} max={:.3} ms",
        ms.len(),
        ms[0],
        ms[ms.len() / 2],
        ms[ms.len() - 1]
    )
}

/// Deterministic noise for hostile input: the project's generator, with
/// usize ranges and byte helpers.
struct Noise(ludus::proto::wire::Rng);

impl Noise {
    fn new(seed: u64) -> Noise {
        Noise(ludus::proto::wire::Rng::new(seed))
    }

    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, n: usize) -> usize {
        self.0.below(n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// `min` to `min + spread - 1` random bytes.
    fn some(&mut self, min: usize, spread: usize) -> Vec<u8> {
        let len = min + self.below(spread);
        self.bytes(len)
    }
}

// ---------------------------------------------------------------------------
// WebSocket by hand (RFC 6455), for hostile frames and the drain check

fn ws_connect(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: ludus.v1\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 8192, "endless upgrade response");
        stream.read_exact(&mut byte).expect("reading the upgrade response");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "upgrade refused:\n{head}");
    assert!(head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "{head}");
    assert!(head.contains("sec-websocket-protocol: ludus.v1"), "{head}");
    stream
}

/// A client frame: FIN as given, masked unless `masked` is false.
fn ws_frame(opcode: u8, fin: bool, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        len @ 0..=125 => frame.push(mask_bit | len as u8),
        len @ 126..=0xffff => {
            frame.push(mask_bit | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(mask_bit | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        frame.extend_from_slice(&key);
        frame.extend(payload.iter().enumerate().map(|(i, byte)| byte ^ key[i % 4]));
    } else {
        frame.extend_from_slice(payload);
    }
    frame
}

/// The header of a frame whose payload will not be sent in full.
fn ws_header(opcode: u8, len: u64) -> Vec<u8> {
    let mut frame = vec![0x80 | opcode, 0x80 | 127];
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame
}

fn ws_read_frame(stream: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head)?;
    let mut len = u64::from(head[1] & 0x7f);
    if len == 126 {
        let mut ext = [0u8; 2];
        stream.read_exact(&mut ext)?;
        len = u64::from(u16::from_be_bytes(ext));
    } else if len == 127 {
        let mut ext = [0u8; 8];
        stream.read_exact(&mut ext)?;
        len = u64::from_be_bytes(ext);
    }
    assert!(head[1] & 0x80 == 0, "the server masked a frame");
    assert!(len <= 1 << 20, "server frame of {len} bytes");
    let mut payload = vec![0u8; len as usize];
    stream.read_exact(&mut payload)?;
    Ok((head[0] & 0x0f, payload))
}

/// What a session saw before the server closed: Ludus messages (type code
/// and body) from binary messages, the close code, and whether TCP closed.
#[derive(Debug, Default)]
struct WsEnd {
    messages: Vec<(u64, Vec<u8>)>,
    close_code: Option<u16>,
    tcp_closed: bool,
}

fn ws_until_close(stream: &mut TcpStream, within: Duration) -> WsEnd {
    let deadline = Instant::now() + within;
    let mut end = WsEnd::default();
    while Instant::now() < deadline {
        match ws_read_frame(stream) {
            Ok((0x2, payload)) => end.messages.extend(ludus_frames(&payload)),
            Ok((0x8, payload)) => {
                end.close_code =
                    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                break;
            }
            Ok(_) => {}
            Err(error)
                if error.kind() == ErrorKind::WouldBlock || error.kind() == ErrorKind::TimedOut => {
            }
            Err(_) => {
                end.tcp_closed = true;
                return end;
            }
        }
    }
    // After its close frame the server closes the TCP connection.
    let mut rest = [0u8; 256];
    while Instant::now() < deadline + Duration::from_secs(2) {
        match stream.read(&mut rest) {
            Ok(0) => {
                end.tcp_closed = true;
                break;
            }
            Ok(_) => {}
            Err(error)
                if error.kind() == ErrorKind::WouldBlock || error.kind() == ErrorKind::TimedOut => {
            }
            Err(_) => {
                end.tcp_closed = true;
                break;
            }
        }
    }
    end
}

/// Ludus frames in a WebSocket binary message: (type code, body after it).
fn ludus_frames(mut bytes: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let (len, used) = leb128(bytes);
        let body = &bytes[used..used + len as usize];
        let (code, code_len) = leb128(body);
        frames.push((code, body[code_len..].to_vec()));
        bytes = &bytes[used + len as usize..];
    }
    frames
}

fn leb128(bytes: &[u8]) -> (u64, usize) {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (value, i + 1);
        }
    }
    panic!("bad varint in {bytes:?}");
}

/// The Hello of docs/PROTOCOL.md section 6 ("Zoë"), byte for byte.
const HELLO_ZOE: [u8; 32] = [
    0x1f, 0x01, 0x01, 0x00, 0x01, 0x00, 0x11, 0x00, 0x00, 0x00, 0x0d, b'l', b'u', b'd', b'u', b's',
    b'-', b'w', b'e', b'b', b'/', b'0', b'.', b'1', 0x00, 0x00, 0x01, 0x04, b'Z', b'o', 0xc3, 0xab,
];

/// A WebSocket session through Hello/Welcome.
fn ws_session(addr: SocketAddr) -> TcpStream {
    let mut stream = ws_connect(addr);
    stream.write_all(&ws_frame(0x2, true, &HELLO_ZOE, true)).unwrap();
    let (opcode, payload) = ws_read_frame(&mut stream).expect("Welcome");
    assert_eq!(opcode, 0x2, "Welcome in a binary message");
    let frames = ludus_frames(&payload);
    assert_eq!(frames[0].0, 0x02, "expected Welcome (0x02), got {frames:?}");
    stream
}

// ---------------------------------------------------------------------------
// (a) HTTP/1.1 with curl

fn curl(args: &[&str]) -> (String, String) {
    let output = run_bounded(
        Command::new("curl").args(["-sS", "--http1.1", "--max-time", "5", "-D", "-"]).args(args),
        Duration::from_secs(10),
    );
    assert!(output.status.success(), "curl {args:?}: {}", show(&output));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_ascii_lowercase(), body.to_owned())
}

#[test]
fn http1_curl_plain_and_tls() {
    let _serial = serial();
    require_curl();
    let mut server = Server::start();
    for base in [format!("http://{}", server.http), format!("https://{}", server.https)] {
        let (head, body) = curl(&["-k", &format!("{base}/api/health")]);
        assert!(head.starts_with("http/1.1 200"), "{base}/api/health:\n{head}");
        let health: Value = serde_json::from_str(&body).expect("health JSON");
        assert_eq!(health["status"], "ok", "{body}");

        let (head, body) = curl(&["-k", &format!("{base}/index.html")]);
        assert!(head.starts_with("http/1.1 200"), "{base}/index.html:\n{head}");
        assert!(head.contains("content-type: text/html"), "{head}");
        assert!(head.contains("cross-origin-opener-policy: same-origin"), "{head}");
        assert!(head.contains("cross-origin-embedder-policy: require-corp"), "{head}");
        assert!(body.contains("<title>Ludus") && body.contains("app/main.js"), "{body}");

        let (head, body) = curl(&["-k", &format!("{base}/client/session.js")]);
        assert!(head.starts_with("http/1.1 200") && head.contains("text/javascript"), "{head}");
        assert!(body.contains("export class LudusSession"));

        let (_, body) = curl(&["-k", &format!("{base}/api/cert-hash")]);
        let hash: Value = serde_json::from_str(&body).expect("cert-hash JSON");
        assert_eq!(hash["hash"], server.cert_hex.as_str(), "/api/cert-hash vs the printed hash");
    }
    // The TLS port presents the certificate written to DATA_DIR/tls (verified, not -k).
    let cacert = server.cert_pem();
    let (head, _) = curl(&[
        "--cacert",
        cacert.to_str().unwrap(),
        &format!("https://127.0.0.1:{}/api/health", server.https.port()),
    ]);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    server.wait_idle(Duration::from_secs(5));
    let drain = server.stop();
    println!(
        "proved: curl gets /api/health, /index.html (COOP/COEP), /client/session.js and \
         /api/cert-hash over http and https (certificate verified against DATA_DIR/tls/cert.pem); \
         SIGTERM exit 0 in {drain:?}"
    );
}

// ---------------------------------------------------------------------------
// (b) aioquic: HTTP/3 and WebTransport

#[test]
fn aioquic_http3_and_webtransport() {
    let _serial = serial();
    let mut server = Server::start();
    let cafile = server.cert_pem();
    let output = run_bounded(
        interop("h3_get.py")
            .args(["--url", &format!("https://{}", server.udp)])
            .arg("--cafile")
            .arg(&cafile),
        Duration::from_secs(40),
    );
    assert!(output.status.success(), "h3_get.py: {}", show(&output));
    let get = json_line(&output);

    let output = run_bounded(
        interop("wt_client.py")
            .args(["--url", &format!("https://{}/wt", server.udp), "--pings", "20"])
            .args(["--origin", &format!("http://{}", server.http)])
            .arg("--cafile")
            .arg(&cafile),
        Duration::from_secs(40),
    );
    assert!(output.status.success(), "wt_client.py: {}", show(&output));
    let wt = json_line(&output);
    assert_eq!(wt["ok"], true, "{wt}");
    assert_eq!(wt["welcome"]["version"], 1, "{wt}");

    let idle = server.wait_idle(Duration::from_secs(5));
    server.assert_healthy();
    let drain = server.stop();
    println!("proved: aioquic HTTP/3 GETs {}", get["requests"]);
    println!(
        "proved: aioquic WebTransport session (handshake {} ms, session ready {} ms), \
         Hello/Welcome (player {}), stream RTT {}, datagram RTT {} (lost {}, pongs by {}), \
         Bye + CLOSE_WEBTRANSPORT_SESSION; no state left after {idle:?}; SIGTERM exit 0 in {drain:?}",
        wt["handshake_ms"],
        wt["session_ready_ms"],
        wt["welcome"]["player_id"],
        summary(&wt["rtts_ms"]),
        summary(&wt["datagram_rtts_ms"]),
        wt["datagram_lost"],
        wt["datagram_pong_paths"],
    );
}

// ---------------------------------------------------------------------------
// (c) Chromium: the browser client over wt, ws and wss

#[test]
fn chromium_page_over_webtransport_websocket_and_tls_websocket() {
    let _serial = serial();
    require_browser();
    let mut server = Server::start();
    let output = run_bounded(
        Command::new("node")
            .arg(manifest_dir().join("tests/browser/wt_page.mjs"))
            .args(["--http", &server.http.to_string()])
            .args(["--udp", &server.udp.port().to_string()])
            .args(["--https", &server.https.port().to_string()])
            .args(["--spki", &server.spki_base64, "--transports", "wt,ws,wss", "--pings", "20"])
            .args(["--timeout-ms", "20000"]),
        Duration::from_secs(90),
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let results: Vec<Value> =
        stdout.lines().filter_map(|line| serde_json::from_str(line.trim()).ok()).collect();
    let mut proved = Vec::new();
    for transport in ["wt", "ws", "wss"] {
        let result = results
            .iter()
            .find(|r| r["transport"] == transport)
            .unwrap_or_else(|| panic!("no result for {transport}: {}", show(&output)));
        assert_eq!(result["ok"], true, "{transport}: {result}\n{}", show(&output));
        assert!(result["error"].is_null(), "{transport}: {result}");
        assert_eq!(result["welcome"]["version"], 1, "{transport}: {result}");
        assert_eq!(result["cross_origin_isolated"], true, "{transport}: {result}");
        assert_eq!(result["rtts_ms"].as_array().map(Vec::len), Some(20), "{transport}: {result}");
        let mut line = format!(
            "{transport}: ready {} ms, stream RTT {}",
            result["ready_ms"],
            summary(&result["rtts_ms"])
        );
        if transport == "wt" {
            assert!(
                !result["datagram_rtts_ms"].as_array().is_none_or(Vec::is_empty),
                "wt: no datagram RTT: {result}"
            );
            line += &format!(
                ", datagram RTT {} (lost {}, pongs by {})",
                summary(&result["datagram_rtts_ms"]),
                result["datagram_lost"],
                result["datagram_pong_paths"]
            );
        }
        proved.push(line);
    }
    assert!(output.status.success(), "wt_page.mjs: {}", show(&output));
    let idle = server.wait_idle(Duration::from_secs(5));
    server.assert_healthy();
    let drain = server.stop();
    for line in proved {
        println!("proved: Chromium {line}");
    }
    println!(
        "proved: no state left after the browser closed ({idle:?}); SIGTERM exit 0 in {drain:?}"
    );
}

// ---------------------------------------------------------------------------
// (d) hostile input on UDP, TLS, HTTP and WebSocket

/// 2000 random datagrams: Initial-looking long headers of 1200+ bytes, short
/// headers, unknown versions, tiny and empty datagrams, pure noise.
fn udp_noise(target: SocketAddr) -> usize {
    let mut noise = Noise::new(0x9e37_79b9_7f4a_7c15);
    let sockets: Vec<UdpSocket> =
        (0..4).map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind UDP")).collect();
    let mut sent = 0;
    for i in 0..2000 {
        let datagram = match i % 8 {
            0 | 1 => {
                // Long header, Initial type, version 1, plausible CIDs.
                let mut d = noise.some(1200, 301);
                d[0] = 0xc0 | (noise.next() as u8 & 0x0f);
                d[1..5].copy_from_slice(&1u32.to_be_bytes());
                d[5] = noise.below(21) as u8;
                d
            }
            2 => {
                // Long header with an unknown version (version negotiation).
                let mut d = noise.some(1200, 100);
                d[0] = 0xc0;
                d[1..5].copy_from_slice(&0x1a2a_3a4a_u32.to_be_bytes());
                d[5] = 8;
                d
            }
            3 => {
                // Long header, Initial, but a datagram under 1200 bytes.
                let mut d = noise.some(20, 1100);
                d[0] = 0xc3;
                d[1..5].copy_from_slice(&1u32.to_be_bytes());
                d
            }
            4 => {
                // Short header with a random destination CID.
                let mut d = noise.some(1, 1400);
                d[0] = 0x40 | (d[0] & 0x3f);
                d
            }
            5 => noise.some(0, 8),
            _ => {
                let len = 1 + noise.below(1500);
                noise.bytes(len)
            }
        };
        if sockets[i % sockets.len()].send_to(&datagram, target).is_ok() {
            sent += 1;
        }
        if i % 100 == 99 {
            thread::sleep(Duration::from_millis(2));
        }
    }
    sent
}

/// Sends `bytes`, half-closes, and expects the server to close within `within`.
fn tcp_expect_closed(
    addr: SocketAddr,
    bytes: &[u8],
    half_close: bool,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let _ = stream.write_all(bytes);
    if half_close {
        let _ = stream.shutdown(Shutdown::Write);
    }
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => {}
            Err(error)
                if error.kind() == ErrorKind::WouldBlock || error.kind() == ErrorKind::TimedOut => {
            }
            Err(_) => return started.elapsed(),
        }
        assert!(started.elapsed() < within, "{addr}: still open after {within:?}");
    }
}

/// One header byte every 200 ms; returns when the server closed.
fn slowloris(addr: SocketAddr, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let head = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    let mut buf = [0u8; 1024];
    for i in 0.. {
        let byte = head.get(i).copied().unwrap_or(b'a');
        if stream.write_all(&[byte]).is_err() {
            return started.elapsed();
        }
        match stream.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => {} // a 408 before the close is fine
            Err(error)
                if error.kind() == ErrorKind::WouldBlock || error.kind() == ErrorKind::TimedOut => {
            }
            Err(_) => return started.elapsed(),
        }
        assert!(started.elapsed() < limit, "slowloris still connected after {limit:?}");
    }
    unreachable!()
}

/// The start of a TLS 1.2/1.3 ClientHello record, cut off mid-way.
fn truncated_client_hello(noise: &mut Noise) -> Vec<u8> {
    let mut hello = vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03];
    hello.extend(noise.bytes(32)); // random
    hello.push(0x20);
    hello.extend(noise.bytes(32)); // session id
    hello.extend_from_slice(&[0x00, 0x08, 0x13, 0x01, 0x13, 0x02, 0x13, 0x03, 0xc0, 0x2b]);
    hello
}

fn websocket_hostile(addr: SocketAddr) -> Vec<String> {
    let mut proved = Vec::new();
    // Text message: 1003.
    let mut ws = ws_connect(addr);
    ws.write_all(&ws_frame(0x1, true, b"hello", true)).unwrap();
    let end = ws_until_close(&mut ws, Duration::from_secs(5));
    assert_eq!(end.close_code, Some(1003), "text message: {end:?}");
    assert!(end.tcp_closed, "text message: TCP left open: {end:?}");
    proved.push("text message -> 1003".to_owned());

    // Invalid UTF-8 in a text frame: 1007.
    let mut ws = ws_connect(addr);
    ws.write_all(&ws_frame(0x1, true, &[b'o', b'k', 0xff, 0xfe, 0xc3], true)).unwrap();
    let end = ws_until_close(&mut ws, Duration::from_secs(5));
    assert_eq!(end.close_code, Some(1007), "invalid UTF-8: {end:?}");
    assert!(end.tcp_closed, "invalid UTF-8: TCP left open: {end:?}");
    proved.push("invalid UTF-8 text -> 1007".to_owned());

    // A binary frame announcing 70000 bytes (> 64 KiB): 1009 from the header alone.
    let mut ws = ws_session(addr);
    let mut frame = ws_header(0x2, 70_000);
    frame.extend(vec![0u8; 1024]);
    ws.write_all(&frame).unwrap();
    let end = ws_until_close(&mut ws, Duration::from_secs(5));
    assert_eq!(end.close_code, Some(1009), "oversized frame: {end:?}");
    assert!(end.tcp_closed, "oversized frame: TCP left open: {end:?}");
    proved.push("70000-byte frame -> 1009".to_owned());

    // Fragments adding up to more than 64 KiB: 1009.
    let mut ws = ws_session(addr);
    let chunk = vec![0u8; 40_000];
    let mut frames = ws_frame(0x2, false, &chunk, true);
    frames.extend(ws_frame(0x0, false, &chunk, true));
    let _ = ws.write_all(&frames);
    let end = ws_until_close(&mut ws, Duration::from_secs(5));
    assert_eq!(end.close_code, Some(1009), "oversized fragmented message: {end:?}");
    proved.push("2 x 40000-byte fragments -> 1009".to_owned());

    // An unmasked client frame: 1002.
    let mut ws = ws_connect(addr);
    ws.write_all(&ws_frame(0x2, true, &HELLO_ZOE, false)).unwrap();
    let end = ws_until_close(&mut ws, Duration::from_secs(5));
    assert_eq!(end.close_code, Some(1002), "unmasked frame: {end:?}");
    proved.push("unmasked frame -> 1002".to_owned());

    // A Ludus frame length over MAX_FRAME_LEN in a binary message: Error + Bye(frame_too_large).
    let mut ws = ws_session(addr);
    ws.write_all(&ws_frame(0x2, true, &[0xff, 0xff, 0x7f, 0x03], true)).unwrap();
    let end = ws_until_close(&mut ws, Duration::from_secs(5));
    let codes: Vec<u64> = end.messages.iter().map(|(code, _)| *code).collect();
    assert!(codes.contains(&0x06) && codes.last() == Some(&0x05), "frame_too_large: {end:?}");
    let bye = &end.messages.last().unwrap().1;
    assert_eq!(u16::from_le_bytes([bye[0], bye[1]]), 3, "Bye code frame_too_large: {end:?}");
    proved
        .push(format!("Ludus frame length 0x1fffff -> Error + Bye(3), close {:?}", end.close_code));
    proved
}

#[test]
fn hostile_udp_tls_http_and_websocket_input() {
    let _serial = serial();
    let mut server = Server::start();
    let mut noise = Noise::new(0x0123_4567_89ab_cdef);
    let started = Instant::now();

    // Slow attackers first, in the background (each ~10 s: the header timeout).
    let (http, https) = (server.http, server.https);
    let slow = thread::spawn(move || slowloris(http, Duration::from_secs(14)));
    let mut held_hello = truncated_client_hello(&mut Noise::new(7));
    held_hello.truncate(60);
    let held = thread::spawn(move || {
        tcp_expect_closed(https, &held_hello, false, Duration::from_secs(14))
    });
    // Binary noise with no end of head: held until the header timeout.
    let http_noise = Noise::new(11).bytes(3000);
    let noisy =
        thread::spawn(move || tcp_expect_closed(http, &http_noise, false, Duration::from_secs(14)));

    // A WebSocket session that never says Hello: Error + Bye(timeout) after 10 s.
    let silent = thread::spawn(move || {
        let started = Instant::now();
        let mut ws = ws_connect(http);
        ws.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        (ws_until_close(&mut ws, Duration::from_secs(14)), started.elapsed())
    });

    // UDP: random datagrams, then corrupted copies of a real Initial.
    let sent = udp_noise(server.udp);
    let output = run_bounded(
        interop("quic_initial_fuzz.py").args([
            "--server",
            &server.udp.to_string(),
            "--copies",
            "400",
        ]),
        Duration::from_secs(30),
    );
    assert!(output.status.success(), "quic_initial_fuzz.py: {}", show(&output));
    let fuzz = json_line(&output);
    server.assert_alive();
    let udp_clean = Instant::now();
    while server.stats().0 != 0 {
        assert!(udp_clean.elapsed() < Duration::from_secs(3), "hostile UDP left QUIC connections");
        thread::sleep(Duration::from_millis(100));
    }

    // TLS port: garbage, and a truncated ClientHello then EOF.
    for _ in 0..5 {
        let garbage = noise.some(1, 4096);
        tcp_expect_closed(server.https, &garbage, false, Duration::from_secs(5));
    }
    let mut hello = truncated_client_hello(&mut noise);
    hello.truncate(40);
    tcp_expect_closed(server.https, &hello, true, Duration::from_secs(5));
    // Plain HTTP port: garbage heads and a broken request line, answered at once.
    let mut garbage = noise.bytes(3000);
    garbage.extend_from_slice(b"\r\n\r\n");
    tcp_expect_closed(server.http, &garbage, false, Duration::from_secs(3));
    let broken: &[u8] = b"\x00\x01GARBAGE / HTTP/9.9\r\n\r\n";
    tcp_expect_closed(server.http, broken, false, Duration::from_secs(3));

    let websocket = websocket_hostile(server.http);

    let slow = slow.join().expect("slowloris thread");
    let held = held.join().expect("held ClientHello thread");
    assert!(slow >= Duration::from_secs(8), "slowloris closed after only {slow:?}");
    assert!(held >= Duration::from_secs(8), "held ClientHello closed after only {held:?}");
    let noisy = noisy.join().expect("HTTP noise thread");
    let (silent, silent_after) = silent.join().expect("silent session thread");
    let bye = silent.messages.iter().find(|(code, _)| *code == 0x05);
    let bye_code = bye.map(|(_, body)| u16::from_le_bytes([body[0], body[1]]));
    assert_eq!(bye_code, Some(7), "no Hello: Bye(timeout) expected: {silent:?}");
    assert!(silent.tcp_closed, "no Hello: TCP left open: {silent:?}");
    assert!(silent_after >= Duration::from_secs(8), "no Hello: closed after only {silent_after:?}");

    server.assert_healthy();
    let idle = server.wait_idle(Duration::from_secs(5));
    server.assert_healthy();
    let drain = server.stop();
    println!("proved: {sent} random UDP datagrams (Initial-looking 1200+ byte long headers, unknown versions, short headers, empty) left no QUIC state");
    println!("proved: corrupted copies of a real aioquic Initial (past the Retry token) left no QUIC state: {fuzz}");
    println!("proved: TLS garbage and a truncated ClientHello are closed; a held truncated ClientHello is closed after {held:?}");
    println!("proved: HTTP garbage heads get 400 and a close at once; 3000 bytes of binary noise with no end of head are closed after {noisy:?}");
    println!("proved: slowloris (1 byte / 200 ms) closed after {slow:?} (header timeout)");
    println!("proved: WebSocket: {}", websocket.join("; "));
    println!(
        "proved: a WebSocket session without Hello gets Bye(timeout) and close {:?} after {silent_after:?}",
        silent.close_code
    );
    println!(
        "proved: afterwards no connection or session left ({idle:?}), /api/health serves, \
         SIGTERM exit 0 in {drain:?}; whole test {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// (d) hostile HTTP/3 and WebTransport input (aioquic)

#[test]
fn hostile_http3_and_webtransport_input() {
    let _serial = serial();
    let mut server = Server::start();
    let output = run_bounded(
        interop("h3_hostile.py")
            .args(["--url", &format!("https://{}/wt", server.udp)])
            .args(["--origin", &format!("http://{}", server.http)])
            .arg("--cafile")
            .arg(server.cert_pem()),
        Duration::from_secs(60),
    );
    assert!(output.status.success(), "h3_hostile.py: {}", show(&output));
    server.assert_alive();
    let idle = server.wait_idle(Duration::from_secs(5));
    server.assert_healthy();
    let drain = server.stop();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        println!("proved: {line}");
    }
    println!("proved: no state left ({idle:?}), /api/health serves, SIGTERM exit 0 in {drain:?}");
}

// ---------------------------------------------------------------------------
// Drain: SIGTERM says Bye(server_draining) and closes with 1001

#[test]
fn sigterm_drains_websocket_sessions() {
    let _serial = serial();
    let mut server = Server::start();
    let mut sessions: Vec<TcpStream> = (0..3).map(|_| ws_session(server.http)).collect();
    // Stats are published by each shard as it goes: allow them a moment.
    let counted = Instant::now();
    loop {
        let (_, tcp, live) = server.stats();
        if live == 3 && tcp >= 3 {
            break;
        }
        let waited = counted.elapsed();
        assert!(waited < Duration::from_secs(2), "stats show {live} sessions, {tcp} tcp");
        thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    server.sigterm();
    for (i, session) in sessions.iter_mut().enumerate() {
        let end = ws_until_close(session, Duration::from_secs(5));
        let bye = end.messages.iter().find(|(code, _)| *code == 0x05);
        let bye_code = bye.map(|(_, body)| u16::from_le_bytes([body[0], body[1]]));
        assert_eq!(bye_code, Some(502), "session {i}: Bye(server_draining) expected: {end:?}");
        assert_eq!(end.close_code, Some(1001), "session {i}: close 1001 expected: {end:?}");
        assert!(end.tcp_closed, "session {i}: TCP left open: {end:?}");
    }
    let status = server.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM: {status}");
    println!(
        "proved: SIGTERM sends Bye(502) and close 1001 to 3 WebSocket sessions and exits 0 in {:?}",
        started.elapsed()
    );
}

#[test]
fn sigterm_drains_webtransport_sessions() {
    let _serial = serial();
    let mut server = Server::start();
    let mut client = interop("wt_client.py")
        .args(["--url", &format!("https://{}/wt", server.udp), "--drain-check"])
        .args(["--origin", &format!("http://{}", server.http)])
        .arg("--cafile")
        .arg(server.cert_pem())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning wt_client.py");
    let stdout = client.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut stderr = client.stderr.take().unwrap();
    let errors = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let ready = received.recv_timeout(Duration::from_secs(20));
    if ready.as_deref() != Ok("READY") {
        let _ = client.kill();
        let _ = client.wait();
        panic!("wt_client.py did not get a session: {ready:?}\n{}", errors.join().unwrap());
    }
    let started = Instant::now();
    server.sigterm();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = client.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = client.kill();
            let _ = client.wait();
            panic!("wt_client.py --drain-check still running 30 s after SIGTERM");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let _ = reader.join();
    let result: Vec<String> = received.try_iter().collect();
    let stderr = errors.join().unwrap_or_default();
    assert!(status.success(), "wt_client.py --drain-check: {status}\n{result:?}\n{stderr}");
    let drained = server.wait_exit(Duration::from_secs(15));
    assert_eq!(drained.code(), Some(0), "exit status after SIGTERM: {drained}");
    let result: Value = result
        .iter()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .expect("a JSON result line");
    println!(
        "proved: SIGTERM sends Bye(502) on a WebTransport control stream and ends the session \
         ({}); the server exits 0 in {:?}",
        result["drain"],
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// (f) the game client in Chromium: a Tetris battle with a spectator, an arena
// match across WebTransport and WebSocket, and a real battle of scripted bots

/// Where a browser test leaves its screenshots (kept after the run, under
/// cargo's target dir, for a person to look at).
fn artefacts(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("acceptance-artefacts").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("artefact dir");
    dir
}

/// Runs one tests/browser/game_*.mjs script against `server` and returns its
/// JSON result after checking it said ok and exited 0.
fn game_script(server: &Server, script: &str, extra: &[&str], shots: &Path) -> Value {
    let output = run_bounded(
        Command::new("node")
            .arg(manifest_dir().join("tests/browser").join(script))
            .args(["--http", &server.http.to_string()])
            .args(["--udp", &server.udp.port().to_string()])
            .arg("--screenshots")
            .arg(shots)
            .args(extra),
        Duration::from_secs(300),
    );
    let result = json_line(&output);
    assert_eq!(result["ok"], true, "{script}: {}\n{}", result["error"], show(&output));
    assert!(output.status.success(), "{script}: {}", show(&output));
    result
}

/// Screenshots a script reported, each a non-trivial PNG on disk.
fn assert_screenshots(result: &Value, at_least: usize) -> usize {
    let shots = result["screenshots"].as_array().expect("screenshots");
    assert!(shots.len() >= at_least, "{} screenshots, expected {at_least}+", shots.len());
    for shot in shots {
        let path = shot.as_str().expect("screenshot path");
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 4_000, "{path}: not a real PNG");
    }
    shots.len()
}

#[test]
fn chromium_tetris_battle_with_a_spectator() {
    let _serial = serial();
    require_browser();
    let mut server = Server::start();
    let shots = artefacts("tetris-battle");
    let result = game_script(&server, "game_battle.mjs", &["--transports", "wt,ws"], &shots);
    assert_eq!(result["agree"], true, "{result}");
    assert_eq!(result["spectatorAgrees"], true, "{result}");
    assert_eq!(result["boardsConsistent"], true, "{result}");
    assert_eq!(result["winnerExpected"], true, "{result}");
    let players = &result["players"];
    assert_eq!(players["alice"]["transport"], "wt", "{result}");
    assert_eq!(players["bob"]["transport"], "ws", "{result}");
    let ranks = players["carol"]["results"]["results"].as_array().expect("carol's results");
    assert_eq!(ranks.len(), 2, "{result}");
    let count = assert_screenshots(&result, 6);
    let idle = server.wait_idle(Duration::from_secs(10));
    server.assert_healthy();
    server.stop();
    println!(
        "proved: alice (wt) and bob (ws) played a Tetris battle to a top-out in Chromium; \
         carol spectated; all three pages got the same GameResults (bob won); {} snapshots \
         matched the boards rebuilt from events; {count} screenshots in {}; idle after {idle:?}",
        result["snapshotsChecked"],
        shots.display()
    );
}

#[test]
fn chromium_tetris_battle_survives_a_dropped_connection() {
    let _serial = serial();
    require_browser();
    let mut server = Server::start();
    let shots = artefacts("tetris-reconnect");
    let result = game_script(
        &server,
        "game_battle.mjs",
        &["--transports", "ws,wt", "--drop-connection"],
        &shots,
    );
    let reconnect = &result["reconnect"];
    assert_eq!(reconnect["resumed"], true, "{result}");
    assert_eq!(reconnect["samePlayer"], true, "{result}");
    assert_eq!(result["agree"], true, "{result}");
    server.wait_idle(Duration::from_secs(10));
    server.stop();
    println!(
        "proved: bob's transport dropped mid-game; his page resumed the same player with its \
         token in {} ms, played on, and the results agreed",
        reconnect["ms"]
    );
}

#[test]
fn chromium_tetris_bots_clear_lines_and_send_garbage() {
    let _serial = serial();
    require_browser();
    let mut server = Server::start();
    let shots = artefacts("tetris-bots");
    let result = game_script(&server, "game_bots.mjs", &["--transports", "wt,ws"], &shots);
    assert_eq!(result["agree"], true, "{result}");
    assert_eq!(result["boardsConsistent"], true, "{result}");
    assert!(result["linesCleared"].as_u64() > Some(0), "{result}");
    assert!(result["garbageSent"].as_u64() > Some(0), "{result}");
    server.wait_idle(Duration::from_secs(10));
    server.stop();
    println!(
        "proved: two scripted players in Chromium cleared {} lines and sent {} garbage rows; \
         both pages agree on the results; {} snapshots matched the rebuilt boards",
        result["linesCleared"], result["garbageSent"], result["snapshotsChecked"]
    );
}

#[test]
fn chromium_arena_match_over_webtransport_and_websocket() {
    let _serial = serial();
    require_browser();
    let mut server = Server::start();
    let shots = artefacts("arena");
    let result = game_script(&server, "game_arena.mjs", &[], &shots);
    assert_eq!(result["transports"]["wendy"], "wt", "{result}");
    assert_eq!(result["transports"]["sam"], "ws", "{result}");
    assert!(result["wendySeesSam"]["dy"].as_f64() > Some(50.0), "{result}");
    assert!(result["samSeesWendy"]["dx"].as_f64() > Some(50.0), "{result}");
    assert_screenshots(&result, 1);
    server.wait_idle(Duration::from_secs(10));
    server.assert_healthy();
    server.stop();
    println!(
        "proved: an arena room with a WebTransport page and a WebSocket page: each saw the \
         other move (wendy sees sam dy={}, sam sees wendy dx={}); inputs acknowledged {}",
        result["wendySeesSam"]["dy"], result["samSeesWendy"]["dx"], result["acked"]
    );
}

/// The match replay viewer (web/replay.html): `ludus bots` play Tetris
/// duels (as tests/history.rs does, for longer), the projector stores the
/// matches in the server's SQLite database, and Chromium replays the
/// longest of them from GET /api/matches/{id}/replay, in several pages
/// (tests/browser/replay_viewer.mjs).
#[test]
fn replay_viewer_plays_a_recorded_match_in_chromium() {
    let _serial = serial();
    require_browser();
    let mut server = Server::start();
    let work = tempfile::tempdir().expect("temp dir");
    let bots = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_ludus"))
            .arg("bots")
            .args(["--cert-hash", &server.cert_hex])
            .args(["--server", &format!("https://{}", server.udp), "--transport", "wt"])
            .args(["--players", "4", "--game", "tetris", "--pps", "4"])
            .args(["--warmup", "1", "--duration", "8", "--quiet", "--json"])
            .arg(work.path().join("report.json")),
        Duration::from_secs(120),
    );
    assert!(bots.status.success(), "ludus bots: {}", show(&bots));

    // The projector writes each match within a second of its game_end; the
    // longest one makes the best replay. Its events must be served too.
    let db_path = server.dir.path().join("data").join("ludus.sqlite3");
    let deadline = Instant::now() + Duration::from_secs(30);
    let (match_id, replay) = loop {
        let found: Option<i64> = rusqlite::Connection::open_with_flags(
            &db_path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .and_then(|db| {
            db.query_row(
                "SELECT id FROM matches WHERE game = 'tetris' AND mode = 'versus' \
                 ORDER BY ended_at_ms - started_at_ms DESC, id LIMIT 1",
                [],
                |row| row.get(0),
            )
        })
        .ok();
        if let Some(id) = found {
            let (status, _, body) = http_get(server.http, &format!("/api/matches/{id}/replay"));
            if status == 200 {
                let replay: Value = serde_json::from_slice(&body).expect("replay JSON");
                break (id, replay);
            }
            assert!(
                Instant::now() < deadline,
                "GET /api/matches/{id}/replay: HTTP {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
        assert!(Instant::now() < deadline, "no versus Tetris match in {}", db_path.display());
        thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(replay["match"]["id"], match_id.to_string(), "{}", replay["match"]);

    let shots = artefacts("replay-viewer");
    let result =
        game_script(&server, "replay_viewer.mjs", &["--match", &match_id.to_string()], &shots);
    let api = &result["api"];
    let page = &result["page"];
    assert_eq!(page["status"], "ready", "{result}");
    assert_eq!(
        page["moments"].as_array().map(Vec::len),
        api["moments"].as_u64().map(|n| n as usize)
    );
    assert_eq!(result["errors"]["unknown"]["code"], "match_not_found", "{result}");
    assert!(result["pagesLoaded"]["pages"].as_u64() >= Some(2), "{result}");
    assert_screenshots(&result, 4);
    server.wait_idle(Duration::from_secs(10));
    server.assert_healthy();
    server.stop();
    println!(
        "proved: match {match_id} ({} events, ticks {}..{}, {} key moments) replayed in \
         Chromium from {} pages of {} events: boards drawn at the end with the stored lines and pieces, the slider and \
         Home seek, play advances ({} ticks/s at 1x, {} at 4x), Space pauses, moments listed \
         and marked and stepped through; unknown and malformed ids show their errors; \
         screenshots in {}",
        api["events"],
        api["startTick"],
        api["endTick"],
        api["moments"],
        result["pagesLoaded"]["pages"],
        result["pagesLoaded"]["limit"],
        result["rates"]["slow"]["perSecond"],
        result["rates"]["fast"]["perSecond"],
        shots.display()
    );
}
