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

#[allow(dead_code)] // each test binary uses what it needs
impl Server {
    /// The server's data dir (its SQLite file, event log, certificates).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("data")
    }

    /// SIGTERM, as an operator stops it, and waits for the exit (the drain
    /// ends at once when no session is left). Panics past `within`.
    pub fn terminate(&mut self, within: std::time::Duration) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        let sent = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM to ludus serve");
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < within, "ludus serve still running after {within:?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
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
    start_server_with(&ServerOptions { shards, ..ServerOptions::default() })
}

/// What a test may change about the server it starts.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    pub shards: usize,
    /// Extra environment variables (the rest of the environment is cleared).
    pub env: Vec<(String, String)>,
    /// Contents of a `ludus.toml` written into the server's directory.
    pub config_toml: Option<String>,
}

pub fn start_server_with(options: &ServerOptions) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    if let Some(toml) = &options.config_toml {
        std::fs::write(dir.path().join("ludus.toml"), toml).unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_ludus"))
        .current_dir(dir.path())
        .env_clear()
        .envs(options.env.iter().map(|(name, value)| (name, value)))
        .env("RUST_LOG", std::env::var("SERVER_LOG").unwrap_or("warn".into()))
        .args(["serve", "--shards", &options.shards.max(1).to_string(), "--udp", "127.0.0.1:0"])
        .args(["--https", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start ludus serve");
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        // Drain for the server's whole life: a closed pipe would fail its
        // next line (a renewal notice).
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
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

/// An HTTP/1.1 answer as a test sees it.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(field, _)| field == name).map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!("{error}: {} {}", self.status, String::from_utf8_lossy(&self.body))
        })
    }

    /// The `error.code` of an error body.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// Sends one request on a fresh plain-HTTP connection (`Connection:
/// close`) and reads the whole answer. `headers` are added as given.
pub fn http(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpAnswer {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the HTTP port");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        request.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    // The server may answer (413, say) before reading everything.
    let _ = stream.write_all(&bytes);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    parse_answer(&answer)
}

/// `http` with a JSON body and an optional bearer token.
pub fn http_json(
    address: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &serde_json::Value,
) -> HttpAnswer {
    let authorization = token.map(|token| format!("Bearer {token}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(authorization) = &authorization {
        headers.push(("authorization", authorization.as_str()));
    }
    http(address, method, path, &headers, body.to_string().as_bytes())
}

fn parse_answer(bytes: &[u8]) -> HttpAnswer {
    let split = bytes
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(bytes)));
    let head = std::str::from_utf8(&bytes[..split]).expect("an ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    HttpAnswer { status, headers, body: bytes[split + 4..].to_vec() }
}
