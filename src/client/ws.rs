//! A WebSocket client transport for the Ludus protocol: a non-blocking mio
//! `TcpStream`, TLS by rustls for `wss://`, the HTTP/1.1 upgrade offering
//! `ludus.v1`, masked binary messages carrying frames, Ping/Pong, and the
//! closing handshake. The protocol session is a [`ClientSession`].
//!
//! Owns one connection; never blocks, sleeps, resolves names or spawns.
//! See [`crate::client`] for the readiness contract; in short: register
//! with `READABLE | WRITABLE`, then call `on_readable`, `on_writable`,
//! `on_timeout` and `flush`, and poll events. A client whose `is_done()`
//! is true can be deregistered and dropped.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use mio::net::TcpStream;

use super::session::{ClientConfig, ClientEvent, ClientSession, CloseReason, Now, State};
use super::{ClientError, MaskRng, WEBSOCKET_PROTOCOL};
use crate::proto::websocket::{
    self as ws, check_handshake_response, client_handshake_request, close_code, CloseState,
    Decoder, Incoming, Role,
};
use crate::proto::wire::{DecodeError, ErrorCode, FrameDecoder};

/// Bytes read from the socket per system call.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Most plaintext bytes waiting to be written before `flush` stops taking
/// the session's output (the session's own outbox limit then applies).
const MAX_PENDING_WRITE_BYTES: usize = 4 << 20;

/// A `ws://` or `wss://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    pub secure: bool,
    /// Host name or IP address, without brackets.
    pub host: String,
    pub port: u16,
    /// Path and query, starting with '/'.
    pub path: String,
}

impl WsUrl {
    pub fn parse(url: &str) -> Result<WsUrl, ClientError> {
        let invalid = |reason| ClientError::Url { url: url.to_owned(), reason };
        let (secure, rest) = if let Some(rest) = url.strip_prefix("wss://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("ws://") {
            (false, rest)
        } else {
            return Err(invalid("the scheme must be ws:// or wss://"));
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/"),
        };
        let default_port = if secure { 443 } else { 80 };
        let (host, port) =
            split_authority(authority, default_port).ok_or_else(|| invalid("bad host or port"))?;
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        Ok(WsUrl { secure, host: host.to_owned(), port, path: path.to_owned() })
    }

    /// The `Host` header: the port is left out when it is the default.
    pub fn host_header(&self) -> String {
        let host = match self.host.contains(':') {
            true => format!("[{}]", self.host),
            false => self.host.clone(),
        };
        match (self.secure, self.port) {
            (true, 443) | (false, 80) => host,
            (_, port) => format!("{host}:{port}"),
        }
    }
}

/// `host:port`, `[v6]:port`, or a host alone.
fn split_authority(authority: &str, default_port: u16) -> Option<(&str, u16)> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, rest) = bracketed.split_once(']')?;
        let port = match rest.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None if rest.is_empty() => default_port,
            None => return None,
        };
        return Some((host, port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host, port.parse().ok()?)),
        None => Some((authority, default_port)),
    }
}

/// How a WebSocket client connects.
#[derive(Debug, Clone)]
pub struct WsOptions {
    /// TLS configuration for `wss://`, shared between clients (see
    /// [`super::tls::rustls_config`]). Required for `wss://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Sub-protocols offered, in order of preference.
    pub protocols: Vec<String>,
    /// An `Origin` header, as a browser would send.
    pub origin: Option<String>,
    /// Limits on what the server may send.
    pub limits: ws::Limits,
    /// The protocol session's configuration.
    pub session: ClientConfig,
    /// TCP connect, TLS and upgrade must finish within this long.
    pub handshake_timeout_ms: u64,
    /// After our Close, wait this long for the server's before dropping.
    pub close_timeout_ms: u64,
}

impl Default for WsOptions {
    fn default() -> Self {
        WsOptions {
            tls: None,
            protocols: vec![WEBSOCKET_PROTOCOL.to_owned()],
            origin: None,
            limits: ws::Limits::default(),
            session: ClientConfig::default(),
            handshake_timeout_ms: 10_000,
            close_timeout_ms: 2_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The TCP connection is being established.
    Connecting,
    /// The upgrade request is out (behind TLS if any); awaiting the 101.
    Upgrading,
    /// Frames flow both ways.
    Open,
    /// Our Close is out, or theirs came: waiting for the rest of the
    /// closing handshake and the server's TCP close.
    Closing,
    /// The connection is finished; drop the client.
    Done,
}

/// One WebSocket connection carrying one Ludus session.
pub struct WsClient {
    socket: TcpStream,
    tls: Option<Box<rustls::ClientConnection>>,
    phase: Phase,
    key: String,
    protocols: Vec<String>,
    protocol: Option<String>,
    response: BytesMut,
    decoder: Decoder,
    frames: FrameDecoder,
    session: ClientSession,
    close: CloseState,
    /// WebSocket bytes not yet handed to TLS or the socket.
    pending: BytesMut,
    rng: MaskRng,
    deadline_us: Option<u64>,
    close_timeout_us: u64,
    close_notify_sent: bool,
    error: Option<ClientError>,
}

impl std::fmt::Debug for WsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsClient")
            .field("phase", &self.phase)
            .field("tls", &self.tls.is_some())
            .field("session", &self.session.state())
            .finish_non_exhaustive()
    }
}

impl WsClient {
    /// Starts connecting to `address` (already resolved) for `url`. The
    /// upgrade request is queued; it goes out once the TCP connection (and
    /// TLS) is up. Queue Hello on [`WsClient::session_mut`] right away if
    /// you like: it follows the upgrade.
    pub fn connect(
        address: SocketAddr,
        url: &WsUrl,
        options: &WsOptions,
        now: Now,
    ) -> Result<WsClient, ClientError> {
        let tls = match (url.secure, &options.tls) {
            (false, _) => None,
            (true, Some(config)) => Some(Box::new(tls_connection(config, &url.host)?)),
            (true, None) => return Err(ClientError::Tls("wss:// needs WsOptions::tls".into())),
        };
        let socket = TcpStream::connect(address)?;
        let mut nonce = [0u8; ws::KEY_BYTES];
        super::fill_random(&mut nonce);
        let key = ws::encode_client_key(nonce);
        let protocols: Vec<&str> = options.protocols.iter().map(String::as_str).collect();
        let mut extra_headers = Vec::new();
        if let Some(origin) = &options.origin {
            extra_headers.push(("Origin", origin.as_str()));
        }
        let request = client_handshake_request(
            &url.host_header(),
            &url.path,
            &key,
            &protocols,
            &extra_headers,
        );
        let session_config = ClientConfig { transport_datagrams: false, ..options.session.clone() };
        Ok(WsClient {
            socket,
            tls,
            phase: Phase::Connecting,
            key,
            protocols: options.protocols.clone(),
            protocol: None,
            response: BytesMut::new(),
            decoder: Decoder::with_role(options.limits, Role::Client),
            frames: FrameDecoder::new(),
            session: ClientSession::new(session_config, now),
            close: CloseState::default(),
            pending: BytesMut::from(&request[..]),
            rng: MaskRng::from_os(),
            deadline_us: Some(now.monotonic_us + options.handshake_timeout_ms * 1_000),
            close_timeout_us: options.close_timeout_ms * 1_000,
            close_notify_sent: false,
            error: None,
        })
    }

    /// Registers the socket for both readiness kinds (edge-triggered).
    pub fn register(&mut self, registry: &mio::Registry, token: mio::Token) -> io::Result<()> {
        registry.register(
            &mut self.socket,
            token,
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        )
    }

    pub fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        registry.deregister(&mut self.socket)
    }

    pub fn session(&self) -> &ClientSession {
        &self.session
    }

    /// Commands go here (`hello`, `send`, `ping`, `close`); call
    /// [`WsClient::flush`] after them.
    pub fn session_mut(&mut self) -> &mut ClientSession {
        &mut self.session
    }

    /// The next event of the session.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.session.poll_event()
    }

    /// Whether the upgrade is done and frames flow.
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Whether the connection is finished: deregister and drop it.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The sub-protocol the server selected.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Why the transport failed, if it did (the session's `Closed` event
    /// says that it did).
    pub fn take_error(&mut self) -> Option<ClientError> {
        self.error.take()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The next deadline (monotonic microseconds) for `on_timeout`.
    pub fn poll_timeout(&self) -> Option<u64> {
        match (self.deadline_us, self.session.timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn on_readable(&mut self, now: Now) {
        self.drive(now);
    }

    pub fn on_writable(&mut self, now: Now) {
        self.drive(now);
    }

    /// Sends what the session queued (after commands).
    pub fn flush(&mut self, now: Now) {
        self.drive(now);
    }

    pub fn on_timeout(&mut self, now: Now) {
        if self.deadline_us.is_some_and(|deadline| now.monotonic_us >= deadline) {
            self.deadline_us = None;
            match self.phase {
                Phase::Connecting | Phase::Upgrading => {
                    return self.fail(ClientError::Timeout("WebSocket connect and upgrade"))
                }
                Phase::Closing => return self.finish(),
                Phase::Open | Phase::Done => {}
            }
        }
        self.session.handle_timeout(now);
        self.drive(now);
    }

    /// Starts the closing handshake at once, without a Bye (the session's
    /// `close` sends Bye first and is the polite way).
    pub fn abort(&mut self, code: u16, reason: &str, now: Now) {
        self.session.handle_transport_closed(reason);
        self.send_close(code, reason, now);
        self.drive(now);
    }

    /// Reads, processes and writes until the socket would block.
    fn drive(&mut self, now: Now) {
        if self.phase == Phase::Connecting && !self.check_connected() {
            return;
        }
        if self.phase == Phase::Done {
            return;
        }
        if let Err(error) = self.read_all(now) {
            return self.fail(error);
        }
        self.pump_session(now);
        let both_closed = self.phase == Phase::Closing && self.close.is_closed();
        if both_closed && !self.close_notify_sent {
            if let Some(tls) = self.tls.as_mut() {
                tls.send_close_notify();
            }
            self.close_notify_sent = true;
        }
        if let Err(error) = self.write_all() {
            return self.fail(error);
        }
        let flushed =
            self.pending.is_empty() && !self.tls.as_ref().is_some_and(|tls| tls.wants_write());
        if both_closed && flushed {
            // Both Close frames crossed; the server closes TCP first
            // (section 7.1.1), the close deadline covers one that does not.
            let _ = self.socket.shutdown(std::net::Shutdown::Write);
        }
    }

    /// Whether the non-blocking connect has completed (mio's recipe:
    /// `take_error`, then `peer_addr`).
    fn check_connected(&mut self) -> bool {
        match self.socket.take_error() {
            Ok(Some(error)) | Err(error) => {
                self.fail(ClientError::Io(error));
                return false;
            }
            Ok(None) => {}
        }
        match self.socket.peer_addr() {
            Ok(_) => {
                let _ = self.socket.set_nodelay(true);
                self.phase = Phase::Upgrading;
                true
            }
            Err(error) if error.kind() == io::ErrorKind::NotConnected => false,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => false,
            Err(error) => {
                self.fail(ClientError::Io(error));
                false
            }
        }
    }

    // ----- reading -----

    fn read_all(&mut self, now: Now) -> Result<(), ClientError> {
        let mut buffer = [0u8; READ_CHUNK_BYTES];
        loop {
            let read = match self.tls.is_some() {
                true => self.read_tls(&mut buffer)?,
                false => read_socket(&mut self.socket, &mut buffer)?,
            };
            match read {
                ReadOutcome::Data(len) => self.on_bytes(&buffer[..len], now)?,
                ReadOutcome::Blocked => return Ok(()),
                ReadOutcome::Eof => {
                    self.on_eof();
                    return Ok(());
                }
            }
            if self.phase == Phase::Done {
                return Ok(());
            }
        }
    }

    /// The next plaintext: from what rustls holds, else from the socket.
    fn read_tls(&mut self, buffer: &mut [u8]) -> Result<ReadOutcome, ClientError> {
        let Some(tls) = self.tls.as_mut() else { return Ok(ReadOutcome::Blocked) };
        loop {
            match tls.reader().read(buffer) {
                Ok(0) => return Ok(ReadOutcome::Eof),
                Ok(len) => return Ok(ReadOutcome::Data(len)),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                    return Ok(ReadOutcome::Eof)
                }
                Err(error) => return Err(ClientError::Io(error)),
            }
            match tls.read_tls(&mut self.socket) {
                Ok(0) => return Ok(ReadOutcome::Eof),
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(ReadOutcome::Blocked)
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(ClientError::Io(error)),
            }
            if let Err(error) = tls.process_new_packets() {
                // Send the alert rustls queued before giving up.
                let _ = tls.write_tls(&mut self.socket);
                return Err(ClientError::Tls(error.to_string()));
            }
        }
    }

    fn on_bytes(&mut self, bytes: &[u8], now: Now) -> Result<(), ClientError> {
        match self.phase {
            Phase::Upgrading => {
                self.response.extend_from_slice(bytes);
                let offered: Vec<&str> = self.protocols.iter().map(String::as_str).collect();
                let Some(handshake) =
                    check_handshake_response(&self.response, &self.key, &offered)?
                else {
                    return Ok(());
                };
                self.protocol = handshake.protocol;
                self.phase = Phase::Open;
                self.deadline_us = None;
                let rest = self.response.split_off(handshake.head_len);
                self.response = BytesMut::new();
                self.decoder.feed(&rest);
                self.decode(now);
            }
            Phase::Open | Phase::Closing => {
                self.decoder.feed(bytes);
                self.decode(now);
            }
            Phase::Connecting | Phase::Done => {}
        }
        Ok(())
    }

    fn decode(&mut self, now: Now) {
        loop {
            let incoming = match self.decoder.next() {
                Ok(Some(incoming)) => incoming,
                Ok(None) => return,
                Err(error) => {
                    self.session.handle_transport_closed(error.reason);
                    self.error = Some(ClientError::WebSocket(error));
                    return self.send_close(error.code, error.reason, now);
                }
            };
            match incoming {
                Incoming::Binary(message) => self.on_binary(&message, now),
                Incoming::Text(_) => {
                    self.session.close(
                        ErrorCode::UnexpectedMessage,
                        "text messages are not part of the protocol",
                    );
                    self.flush_session();
                    return self.send_close(
                        close_code::UNSUPPORTED_DATA,
                        "binary messages only",
                        now,
                    );
                }
                Incoming::Ping(payload) => {
                    if self.close.can_send_data() {
                        ws::encode_pong_masked(&payload, self.rng.key(), &mut self.pending);
                    }
                }
                Incoming::Pong(_) => {}
                Incoming::Close(close) => return self.on_close(close, now),
            }
        }
    }

    /// One binary message: whole frames only (PROTOCOL.md section 1.2).
    fn on_binary(&mut self, message: &[u8], now: Now) {
        self.frames.extend(message);
        loop {
            match self.frames.next_body() {
                Ok(Some(body)) => self.session.handle_frame(&body, now),
                Ok(None) => break,
                Err(error) => {
                    self.frames = FrameDecoder::new();
                    return self.session.handle_framing_error(error);
                }
            }
        }
        if self.frames.buffered() > 0 {
            self.frames = FrameDecoder::new();
            self.session.handle_framing_error(DecodeError::Truncated { needed: 1 });
        }
    }

    fn on_close(&mut self, close: Option<(u16, String)>, now: Now) {
        if !self.session.is_closed() {
            let reason = match &close {
                Some((code, reason)) => format!("WebSocket closed by the server: {code} {reason}"),
                None => "WebSocket closed by the server".to_owned(),
            };
            self.session.handle_transport_closed(&reason);
        }
        if self.close.on_close_received() {
            // Echo the status code, as section 5.5.1 suggests.
            match close {
                Some((code, _)) => {
                    ws::encode_close_masked(code, "", self.rng.key(), &mut self.pending)
                }
                None => ws::encode_close_masked(0, "", self.rng.key(), &mut self.pending),
            }
            self.close.on_close_sent();
        }
        self.enter_closing(now);
    }

    fn on_eof(&mut self) {
        if !self.session.is_closed() {
            self.session.handle_transport_closed("the server closed the connection");
        }
        self.finish();
    }

    // ----- writing -----

    /// Moves the session's output into masked binary messages, and starts
    /// the closing handshake once the session has closed.
    fn pump_session(&mut self, now: Now) {
        if self.phase != Phase::Open {
            return;
        }
        self.flush_session();
        if self.session.state() == State::Closed {
            let code = self.session_close_code();
            self.send_close(code, "", now);
        }
    }

    fn flush_session(&mut self) {
        if self.pending.len() >= MAX_PENDING_WRITE_BYTES || !self.close.can_send_data() {
            return;
        }
        if let Some(frames) = self.session.poll_transmit() {
            ws::encode_binary_masked(&frames, self.rng.key(), &mut self.pending);
        }
    }

    /// The WebSocket close code for the session's end (PROTOCOL.md 1.2).
    fn session_close_code(&mut self) -> u16 {
        match self.session.close_reason().and_then(CloseReason::error_code) {
            Some(ErrorCode::None) | None => close_code::NORMAL,
            Some(ErrorCode::Internal | ErrorCode::Busy) => close_code::INTERNAL_ERROR,
            Some(_) => close_code::POLICY_VIOLATION,
        }
    }

    fn send_close(&mut self, code: u16, reason: &str, now: Now) {
        if self.close.can_send_data() && matches!(self.phase, Phase::Open | Phase::Closing) {
            ws::encode_close_masked(code, reason, self.rng.key(), &mut self.pending);
            self.close.on_close_sent();
        }
        match self.phase {
            Phase::Open => self.enter_closing(now),
            Phase::Connecting | Phase::Upgrading => self.finish(),
            Phase::Closing | Phase::Done => {}
        }
    }

    fn enter_closing(&mut self, now: Now) {
        if self.phase != Phase::Closing {
            self.phase = Phase::Closing;
            self.deadline_us = Some(now.monotonic_us + self.close_timeout_us);
        }
    }

    fn write_all(&mut self) -> Result<(), ClientError> {
        if matches!(self.phase, Phase::Connecting | Phase::Done) {
            return Ok(());
        }
        match self.tls.as_mut() {
            None => {
                while !self.pending.is_empty() {
                    match self.socket.write(&self.pending) {
                        Ok(0) => return Err(ClientError::Io(io::ErrorKind::WriteZero.into())),
                        Ok(written) => {
                            let _ = self.pending.split_to(written);
                        }
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                        Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                        Err(error) => return Err(ClientError::Io(error)),
                    }
                }
            }
            Some(tls) => write_tls(tls, &mut self.socket, &mut self.pending)?,
        }
        Ok(())
    }

    // ----- ending -----

    fn fail(&mut self, error: ClientError) {
        if !self.session.is_closed() {
            self.session.handle_transport_closed(&error.to_string());
        }
        if self.error.is_none() {
            self.error = Some(error);
        }
        self.finish();
    }

    fn finish(&mut self) {
        self.phase = Phase::Done;
        self.deadline_us = None;
        self.pending.clear();
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }
}

enum ReadOutcome {
    Data(usize),
    Blocked,
    Eof,
}

fn read_socket(socket: &mut TcpStream, buffer: &mut [u8]) -> Result<ReadOutcome, ClientError> {
    loop {
        match socket.read(buffer) {
            Ok(0) => return Ok(ReadOutcome::Eof),
            Ok(len) => return Ok(ReadOutcome::Data(len)),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                return Ok(ReadOutcome::Blocked)
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(ClientError::Io(error)),
        }
    }
}

/// Feeds plaintext to rustls as far as its buffer takes it, and records to
/// the socket until it would block; repeats while either makes progress.
fn write_tls(
    tls: &mut rustls::ClientConnection,
    socket: &mut TcpStream,
    pending: &mut BytesMut,
) -> Result<(), ClientError> {
    loop {
        let mut progress = false;
        if !pending.is_empty() {
            // rustls buffers plaintext (up to its limit) until the
            // handshake is done; what it refuses stays pending.
            let taken = tls.writer().write(pending)?;
            let _ = pending.split_to(taken);
            progress |= taken > 0;
        }
        while tls.wants_write() {
            match tls.write_tls(socket) {
                Ok(0) => return Err(ClientError::Io(io::ErrorKind::WriteZero.into())),
                Ok(_) => progress = true,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(ClientError::Io(error)),
            }
        }
        if !progress || pending.is_empty() {
            return Ok(());
        }
    }
}

fn tls_connection(
    config: &Arc<rustls::ClientConfig>,
    host: &str,
) -> Result<rustls::ClientConnection, ClientError> {
    let name = rustls_pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| ClientError::Tls(format!("{host:?} is not a valid server name")))?;
    rustls::ClientConnection::new(Arc::clone(config), name)
        .map_err(|error| ClientError::Tls(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_defaults_and_brackets() {
        let url = WsUrl::parse("ws://127.0.0.1:8080/ws").unwrap();
        assert_eq!(
            url,
            WsUrl { secure: false, host: "127.0.0.1".into(), port: 8080, path: "/ws".into() }
        );
        assert_eq!(url.host_header(), "127.0.0.1:8080");
        let url = WsUrl::parse("wss://example.com").unwrap();
        assert_eq!(
            (url.port, url.path.as_str(), url.host_header()),
            (443, "/", "example.com".to_owned())
        );
        let url = WsUrl::parse("wss://[::1]:8443/ws?x=1").unwrap();
        assert_eq!((url.host.as_str(), url.port, url.path.as_str()), ("::1", 8443, "/ws?x=1"));
        assert_eq!(url.host_header(), "[::1]:8443");
        for bad in ["http://x/ws", "ws://:80/", "ws://host:port/", "ws://[::1/"] {
            assert!(WsUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
