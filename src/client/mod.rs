//! The client side of the Ludus protocol, for the load tester (`ludus
//! bots`: thousands of clients on a few event-loop threads) and for Rust
//! integration tests.
//!
//! Layers, as on the server:
//! - [`session`]: the sans-IO protocol session ([`ClientSession`]): Hello /
//!   Welcome, Ping / Pong with round-trip time and clock offset, Bye,
//!   deadlines. No clock, no socket.
//! - [`ws`]: a WebSocket transport ([`WsClient`]) on a non-blocking mio
//!   `TcpStream`, plain or TLS (rustls), driven by readiness calls.
//! - [`wt`]: a WebTransport transport ([`WtClient`]) over quiche on a mio
//!   `UdpSocket`, with the HTTP/3 client layer of [`h3`], driven the same
//!   way.
//! - [`tls`]: certificate trust for both: a root certificate in PEM, or the
//!   exact SHA-256 of the server's certificate (what browsers do with
//!   `serverCertificateHashes`).
//! - [`blocking`]: a small blocking client for tests, one mio `Poll` each.
//!
//! Readiness contract of [`WsClient`] and [`WtClient`] (mio is
//! edge-triggered): register once with `READABLE | WRITABLE`; call
//! `on_readable` / `on_writable` on the matching event (spurious calls are
//! harmless), `on_timeout` when `poll_timeout` has passed, and `flush`
//! after queueing messages outside those calls. Each call drains the socket
//! until WouldBlock and writes until WouldBlock or nothing is left. Never
//! blocks, never sleeps, never spawns a thread: many clients share one
//! thread and one `Poll`.

pub mod blocking;
pub mod h3;
pub mod session;
pub mod tls;
pub mod ws;
pub mod wt;

#[cfg(test)]
mod loopback_tests;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use blocking::Client;
pub use session::{
    Channel, ClientConfig, ClientEvent, ClientSession, CloseReason, CloseSource, Credentials, Now,
    PongSample, RttStats, SendError, State, Traffic,
};
pub use tls::Trust;
pub use ws::{WsClient, WsOptions, WsUrl};
pub use wt::{WtClient, WtOptions};

/// The sub-protocol a WebSocket client offers (PROTOCOL.md section 1.2).
pub const WEBSOCKET_PROTOCOL: &str = "ludus.v1";
/// The path of WebTransport sessions (PROTOCOL.md section 1.1).
pub const WEBTRANSPORT_PATH: &str = "/wt";

/// Why a client's transport failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("invalid URL {url:?}: {reason}")]
    Url { url: String, reason: &'static str },
    #[error("WebSocket handshake: {0}")]
    WebSocketHandshake(#[from] crate::proto::websocket::ClientHandshakeError),
    #[error("WebSocket protocol: {0}")]
    WebSocket(#[from] crate::proto::websocket::WsError),
    #[error("QUIC: {0}")]
    Quic(String),
    #[error("HTTP/3: {0}")]
    Http3(String),
    #[error("the server certificate's SHA-256 is {actual}, not the expected {expected}")]
    CertificateHash { expected: String, actual: String },
    #[error("the server refused the WebTransport session with status {0}")]
    SessionRefused(u16),
    #[error("timed out: {0}")]
    Timeout(&'static str),
    #[error("the session closed: code {code}, {reason}")]
    Closed { code: u16, reason: String },
    #[error("{0}")]
    Send(#[from] SendError),
}

/// The client's clock: one monotonic clock, read in microseconds, with the
/// wall-clock time it started at, so [`Now::unix_us`] advances exactly as
/// [`Now::monotonic_us`] does (a wall-clock step during a run never bends a
/// measurement). One per event-loop thread.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    unix_start_us: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    pub fn new() -> Clock {
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Clock { start: Instant::now(), unix_start_us: unix.as_micros() as u64 }
    }

    pub fn now(&self) -> Now {
        // Monotonic time starts at 1 s so that 0 never names a real instant.
        let elapsed_us = self.start.elapsed().as_micros() as u64 + 1_000_000;
        Now { monotonic_us: elapsed_us, unix_us: self.unix_start_us + elapsed_us - 1_000_000 }
    }

    /// The `Instant` of a monotonic time from [`Clock::now`].
    pub fn instant(&self, monotonic_us: u64) -> Instant {
        self.start + Duration::from_micros(monotonic_us.saturating_sub(1_000_000))
    }

    /// How long from `now` until `deadline_us`, zero if it has passed.
    pub fn until(&self, now: Now, deadline_us: u64) -> Duration {
        Duration::from_micros(deadline_us.saturating_sub(now.monotonic_us))
    }
}

/// A small non-cryptographic generator for WebSocket masking keys, seeded
/// from the operating system. Masking (RFC 6455 section 10.3) protects
/// intermediaries from scripts that choose the bytes on the wire; this
/// client is not scriptable, so a seeded generator per connection is
/// enough, and it spares a system call per frame.
#[derive(Debug, Clone)]
pub(crate) struct MaskRng(crate::proto::wire::Rng);

impl MaskRng {
    pub(crate) fn from_os() -> MaskRng {
        let mut seed = [0u8; 8];
        fill_random(&mut seed);
        MaskRng(crate::proto::wire::Rng::new(u64::from_le_bytes(seed)))
    }

    pub(crate) fn key(&mut self) -> [u8; 4] {
        (self.0.next_u64() as u32).to_ne_bytes()
    }
}

/// Fills `bytes` from the operating system's generator.
pub(crate) fn fill_random(bytes: &mut [u8]) {
    use ring::rand::SecureRandom;
    ring::rand::SystemRandom::new().fill(bytes).expect("the OS random generator failed");
}
