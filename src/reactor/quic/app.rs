//! The application on QUIC connections: HTTP/3 ([`H3Connection`]) carrying
//! WebTransport sessions of the Ludus protocol, and plain HTTP/3 requests
//! answered by the shard's [`Host`].
//!
//! Per connection: one [`H3Connection`] and at most one WebTransport session
//! (PROTOCOL.md section 1.1). The session's Ludus control stream is the
//! first bidirectional stream the client opens in it; later streams of the
//! session and all unidirectional ones are refused. Each datagram carries
//! whole frames. Session events reach the host exactly as the WebSocket
//! driver hands them over ([`pump_events`]).
//!
//! Extended CONNECT policy: the path must be [`WEBTRANSPORT_PATH`] (else
//! 404); a request with an `Origin` must come from an allowed origin (else
//! 403). With no allow-list configured, only local development pages are
//! allowed: `http://` or `https://` on `localhost`, `127.0.0.1` or `[::1]`,
//! any port. A request without `Origin` (bots, aioquic, native clients) is
//! allowed: the origin check protects browsers' users, not the server.
//!
//! Ending a session: Bye on the control stream, then FIN on it and
//! CLOSE_WEBTRANSPORT_SESSION on the CONNECT stream; [`SESSION_LINGER_MS`]
//! later (time for QUIC to deliver them) the QUIC connection is closed,
//! once no HTTP request is in progress on it. A drain does the same with
//! `server_draining` and sends GOAWAY first.
//!
//! Runs on the shard thread. Reads go through one [`RecvBuffers`] per
//! server, so the steady state allocates nothing per packet.

use std::net::SocketAddr;

use bytes::Bytes;

use super::endpoint::QuicApp;
use crate::proto::h3::connection::{
    CommandError, H3Config, H3Connection, H3Event, QuicStreams, RecvBuffers, StreamIoError,
};
use crate::proto::h3::{ErrorCode as H3ErrorCode, RequestHead};
pub use crate::proto::http::origin_allowed;
use crate::proto::session::{Now, Session, SessionConfig, State};
use crate::proto::wire::{datagram_bodies, ErrorCode, FrameDecoder};
use crate::reactor::host::{
    pump_events, Headers, Host, HttpAnswer, HttpRequest, HttpTarget, HttpVersion, SessionRef,
    Transport,
};
use crate::reactor::web::WebResponse;

/// The path of WebTransport sessions.
pub const WEBTRANSPORT_PATH: &str = "/wt";
/// How long a connection stays open after its session ended, so that the
/// Bye and the session close reach the client before CONNECTION_CLOSE.
pub const SESSION_LINGER_MS: u64 = 1_000;
/// Event/flush rounds per `process` call (events that writing produced are
/// handled in the next round).
const ROUNDS_MAX: usize = 4;
/// The WebTransport error code of streams we refuse.
const STREAM_REFUSED: u32 = 0;
/// Response fields that have no meaning in HTTP/3 and would make the
/// response malformed (RFC 9114 §4.2).
const CONNECTION_SPECIFIC: [&str; 5] =
    ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"];

impl QuicStreams for quiche::Connection {
    fn readable(&mut self, out: &mut Vec<u64>) {
        out.extend(quiche::Connection::readable(self));
    }

    fn stream_recv(
        &mut self,
        stream_id: u64,
        buf: &mut [u8],
    ) -> Result<(usize, bool), StreamIoError> {
        match quiche::Connection::stream_recv(self, stream_id, buf) {
            Ok(read) => Ok(read),
            Err(quiche::Error::Done) => Ok((0, false)),
            Err(quiche::Error::StreamReset(code)) => Err(StreamIoError::Reset(code)),
            Err(_) => Err(StreamIoError::Closed),
        }
    }

    fn stream_send(
        &mut self,
        stream_id: u64,
        data: &[u8],
        fin: bool,
    ) -> Result<usize, StreamIoError> {
        match quiche::Connection::stream_send(self, stream_id, data, fin) {
            Ok(written) => Ok(written),
            // Flow control, or (StreamLimit) a stream the peer has not
            // allowed us to open yet: retry on a later flush.
            Err(quiche::Error::Done | quiche::Error::StreamLimit) => Ok(0),
            Err(quiche::Error::StreamStopped(code)) => Err(StreamIoError::Stopped(code)),
            Err(_) => Err(StreamIoError::Closed),
        }
    }

    fn stream_shutdown_read(&mut self, stream_id: u64, code: u64) {
        let _ = self.stream_shutdown(stream_id, quiche::Shutdown::Read, code);
    }

    fn stream_reset(&mut self, stream_id: u64, code: u64) {
        let _ = self.stream_shutdown(stream_id, quiche::Shutdown::Write, code);
    }

    fn dgram_recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        quiche::Connection::dgram_recv(self, buf).ok()
    }

    fn dgram_send(&mut self, data: &[u8]) -> bool {
        quiche::Connection::dgram_send(self, data).is_ok()
    }

    fn dgram_max_writable_len(&self) -> Option<usize> {
        quiche::Connection::dgram_max_writable_len(self)
    }

    fn close(&mut self, code: u64, reason: &[u8]) {
        let _ = quiche::Connection::close(self, true, code, reason);
    }

    fn is_established(&self) -> bool {
        quiche::Connection::is_established(self)
    }
}

/// The Ludus session riding on a connection's WebTransport session.
struct WtSession {
    /// The CONNECT stream: the WebTransport session id.
    connect_stream: u64,
    /// The Ludus control stream, once the client opened it.
    control_stream: Option<u64>,
    frames: FrameDecoder,
    session: Session,
    /// The host accepted the session and must hear when it ends.
    host_knows: bool,
    /// Session output the control stream's buffer had no room for yet.
    pending: Bytes,
    /// Nothing more can be written on the control stream.
    output_closed: bool,
    /// The Ludus session ended and was handled.
    ended: bool,
    /// The WebTransport session is closed (by either side).
    closed: bool,
}

impl WtSession {
    fn new(connect_stream: u64, session: Session) -> WtSession {
        WtSession {
            connect_stream,
            control_stream: None,
            frames: FrameDecoder::new(),
            session,
            host_knows: false,
            pending: Bytes::new(),
            output_closed: false,
            ended: false,
            closed: false,
        }
    }

    /// Control stream bytes: frames for the session.
    fn receive(&mut self, data: &[u8], now: Now) {
        if self.session.state() == State::Closed {
            return;
        }
        self.frames.extend(data);
        while self.session.state() != State::Closed {
            match self.frames.next_body() {
                Ok(Some(body)) => self.session.handle_frame(&body, now),
                Ok(None) => break,
                Err(error) => {
                    self.session.handle_framing_error(error);
                    self.frames = FrameDecoder::new();
                    break;
                }
            }
        }
    }

    /// A datagram: one or more whole frames. Before Welcome (reordered
    /// ahead of Hello) or after the end it is dropped, as if lost.
    fn receive_datagram(&mut self, payload: &Bytes, now: Now) {
        if self.session.state() != State::Established {
            return;
        }
        let bodies = match datagram_bodies(payload) {
            Ok(bodies) => bodies,
            Err(error) => return self.session.handle_framing_error(error),
        };
        for body in bodies {
            match body {
                Ok(body) => self.session.handle_datagram_frame(&body, now),
                Err(error) => return self.session.handle_framing_error(error),
            }
        }
    }

    /// The control stream is gone: whatever the session says is lost.
    fn lose_output(&mut self) {
        self.output_closed = true;
        self.pending = Bytes::new();
        while self.session.poll_transmit().is_some() {}
    }

    /// Moves session output onto the control stream, as much as its send
    /// buffer takes; the rest waits in `pending` (and, once the session's
    /// own outbox limit is reached, the session drops messages).
    fn transmit(&mut self, h3: &mut H3Connection) {
        let Some(control) = self.control_stream else {
            // Nothing to say it on yet (only a failed session speaks first).
            while self.session.poll_transmit().is_some() {}
            return;
        };
        if self.pending.is_empty() && self.session.pending_bytes() == 0 {
            return; // Nothing to say: the common case on every `process`.
        }
        if self.output_closed || !h3.is_writable(control) {
            return self.lose_output();
        }
        loop {
            if self.pending.is_empty() {
                match self.session.poll_transmit() {
                    Some(bytes) => self.pending = bytes,
                    None => return,
                }
            }
            let room = h3.send_capacity(control).min(self.pending.len());
            if room == 0 {
                return;
            }
            let chunk = self.pending.split_to(room);
            if h3.send_wt_stream(control, &chunk, false).is_err() {
                return self.lose_output();
            }
        }
    }
}

/// Per-connection state.
pub struct WtConnection {
    pub peer: SocketAddr,
    /// Stable for the connection's life: [`SessionRef::connection`].
    id: usize,
    h3: H3Connection,
    session: Option<Box<WtSession>>,
    /// The server's drain reached this connection.
    drained: bool,
    /// Close the QUIC connection at this time (monotonic ms).
    close_at_ms: Option<u64>,
    /// A read budget ran out: process again at this time.
    wake_at_ms: Option<u64>,
    /// Tells this connection from a later one in the same slab slot.
    serial: u64,
    /// Requests whose answers come later (bounded by
    /// [`DEFERRED_PER_CONNECTION_MAX`]).
    deferred: u16,
}

/// Requests one connection may have waiting for deferred answers; more
/// are answered 503 at once.
pub const DEFERRED_PER_CONNECTION_MAX: u16 = 32;

impl WtConnection {
    pub fn id(&self) -> usize {
        self.id
    }

    /// The connection's Ludus session once the host accepted it.
    pub fn established_session(&mut self) -> Option<&mut Session> {
        let wt = self.session.as_deref_mut()?;
        (wt.host_knows && !wt.ended).then_some(&mut wt.session)
    }

    /// Sends a deferred answer on its request stream, if this is still the
    /// connection that asked. Returns false when it was dropped.
    pub fn complete_http(&mut self, target: HttpTarget, response: &WebResponse) -> bool {
        debug_assert_eq!(target.version, HttpVersion::Http3);
        if self.serial != target.serial || self.deferred == 0 {
            return false;
        }
        self.deferred -= 1;
        respond(&mut self.h3, target.stream_id, target.head_only, response);
        true
    }

    /// Whether a WebTransport session was accepted on this connection.
    pub fn has_session(&self) -> bool {
        self.session.is_some()
    }
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WtCounters {
    pub connections: u64,
    pub sessions: u64,
    pub sessions_refused: u64,
    pub requests: u64,
    pub h3_errors: u64,
}

/// The QUIC application of a shard; owns the shard's [`Host`].
pub struct WtServer<H: Host> {
    pub host: H,
    pub shard: u16,
    allowed_origins: Vec<String>,
    session_config: SessionConfig,
    h3_config: H3Config,
    buffers: RecvBuffers,
    draining: bool,
    counters: WtCounters,
    next_serial: u64,
}

impl<H: Host> WtServer<H> {
    pub fn new(shard: u16, host: H) -> WtServer<H> {
        WtServer {
            host,
            shard,
            allowed_origins: Vec::new(),
            session_config: SessionConfig::default(),
            h3_config: H3Config::default(),
            buffers: RecvBuffers::new(),
            draining: false,
            counters: WtCounters::default(),
            next_serial: 1,
        }
    }

    /// Origins allowed to open WebTransport sessions, exactly as browsers
    /// send them (`https://play.example.com`); `"*"` allows any. Empty (the
    /// default): local development pages only (see the module docs).
    pub fn with_allowed_origins(mut self, origins: Vec<String>) -> WtServer<H> {
        self.allowed_origins = origins;
        self
    }

    pub fn with_session_config(mut self, config: SessionConfig) -> WtServer<H> {
        self.session_config = config;
        self
    }

    pub fn counters(&self) -> WtCounters {
        self.counters
    }

    fn session_ref(&self, state: &WtConnection) -> SessionRef {
        SessionRef { shard: self.shard, transport: Transport::WebTransport, connection: state.id }
    }

    fn on_event(&mut self, state: &mut WtConnection, event: H3Event, now: Now) {
        match event {
            H3Event::Request { stream_id, head, body } => {
                self.counters.requests += 1;
                self.answer_request(state, stream_id, &head, &body, now);
            }
            H3Event::WebTransportConnect { stream_id, head } => {
                self.on_connect(state, stream_id, &head, now);
            }
            H3Event::WebTransportStream { session_id, stream_id } => {
                match state.session.as_deref_mut() {
                    Some(wt) if wt.connect_stream == session_id && wt.control_stream.is_none() => {
                        wt.control_stream = Some(stream_id);
                    }
                    _ => {
                        let _ = state.h3.abort_wt_stream(stream_id, STREAM_REFUSED);
                    }
                }
            }
            H3Event::WebTransportUniStream { stream_id, .. } => {
                let _ = state.h3.abort_wt_stream(stream_id, STREAM_REFUSED);
            }
            H3Event::WebTransportData { stream_id, data, fin, .. } => {
                let Some(wt) = state.session.as_deref_mut() else { return };
                if wt.control_stream == Some(stream_id) {
                    wt.receive(&data, now);
                    if fin {
                        wt.session.close(ErrorCode::None, "control stream ended");
                    }
                }
            }
            H3Event::WebTransportStreamAborted { stream_id, .. } => {
                let Some(wt) = state.session.as_deref_mut() else { return };
                if wt.control_stream == Some(stream_id) {
                    wt.session.close(ErrorCode::None, "control stream aborted");
                    wt.lose_output();
                }
            }
            H3Event::Datagram { session_id, payload } => {
                let Some(wt) = state.session.as_deref_mut() else { return };
                if wt.connect_stream == session_id {
                    wt.receive_datagram(&payload, now);
                }
            }
            H3Event::SessionClosed { session_id, .. } => {
                let Some(wt) = state.session.as_deref_mut() else { return };
                if wt.connect_stream == session_id {
                    wt.closed = true;
                    wt.session.close(ErrorCode::None, "session closed by the client");
                    // The client closed: it reads no Bye.
                    wt.lose_output();
                }
            }
            H3Event::GoAway { .. } => {}
            H3Event::ConnectionError { code, reason } => {
                self.counters.h3_errors += 1;
                tracing::debug!(shard = self.shard, %code, reason, "HTTP/3 connection error");
                if let Some(wt) = state.session.as_deref_mut() {
                    wt.closed = true;
                    wt.session.close(ErrorCode::Malformed, "HTTP/3 connection error");
                    wt.lose_output();
                }
            }
        }
    }

    fn answer_request(
        &mut self,
        state: &mut WtConnection,
        stream_id: u64,
        head: &RequestHead,
        body: &[u8],
        now: Now,
    ) {
        let head_only = head.method == "HEAD";
        if state.deferred >= DEFERRED_PER_CONNECTION_MAX {
            let busy = WebResponse::error(503, "busy", "too many requests in flight")
                .with_header("retry-after", "1");
            return respond(&mut state.h3, stream_id, head_only, &busy);
        }
        let (path, query) = match head.path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (head.path.as_str(), None),
        };
        let request = HttpRequest {
            method: &head.method,
            path,
            query,
            headers: Headers::Http3(&head.headers),
            body,
            peer: state.peer,
        };
        let target = HttpTarget {
            shard: self.shard,
            version: HttpVersion::Http3,
            connection: state.id,
            serial: state.serial,
            stream_id,
            head_only,
        };
        match self.host.http(&request, target, now) {
            HttpAnswer::Ready(response) => respond(&mut state.h3, stream_id, head_only, &response),
            HttpAnswer::Deferred => state.deferred += 1,
        }
    }

    fn on_connect(
        &mut self,
        state: &mut WtConnection,
        stream_id: u64,
        head: &RequestHead,
        now: Now,
    ) {
        let refusal = if self.draining {
            Some(503)
        } else if state.session.is_some() {
            Some(429)
        } else {
            connect_refusal(head, &self.allowed_origins)
        };
        if let Some(status) = refusal {
            self.counters.sessions_refused += 1;
            let _ = state.h3.reject_request(stream_id, status);
            return;
        }
        if state.h3.accept_webtransport(stream_id).is_ok() {
            self.counters.sessions += 1;
            // The Hello deadline starts now.
            let session = Session::new(self.session_config.clone(), now.monotonic_ms);
            state.session = Some(Box::new(WtSession::new(stream_id, session)));
        }
    }

    /// Timers, drain, and the session's events and output.
    fn tick(&mut self, state: &mut WtConnection, now: Now) {
        if let Some(wt) = state.session.as_deref_mut() {
            if wt.session.timeout().is_some_and(|deadline| now.monotonic_ms >= deadline) {
                wt.session.handle_timeout(now);
            }
        }
        if self.draining && !state.drained {
            state.drained = true;
            state.h3.goaway();
            match state.session.as_deref_mut() {
                Some(wt) if !wt.ended => {
                    wt.session.close(ErrorCode::ServerDraining, "server draining")
                }
                _ => {
                    state.close_at_ms.get_or_insert(now.monotonic_ms + SESSION_LINGER_MS);
                }
            }
        }
        self.pump(state, now);
    }

    fn pump(&mut self, state: &mut WtConnection, now: Now) {
        let session_ref = self.session_ref(state);
        let Some(wt) = state.session.as_deref_mut() else { return };
        if wt.ended {
            return wt.transmit(&mut state.h3);
        }
        let end =
            pump_events(&mut wt.session, session_ref, &mut wt.host_knows, &mut self.host, now);
        wt.transmit(&mut state.h3);
        let Some(end) = end else { return };
        wt.ended = true;
        if !wt.closed {
            wt.closed = true;
            let code = u32::from(end.code as u16);
            let _ = state.h3.close_session(wt.connect_stream, code, &end.reason);
        }
        state.close_at_ms.get_or_insert(now.monotonic_ms + SESSION_LINGER_MS);
    }

    /// Closes the QUIC connection once its linger time passed and no
    /// request is in progress.
    fn close_when_done(
        &mut self,
        quic: &mut quiche::Connection,
        state: &mut WtConnection,
        now: Now,
    ) {
        let Some(deadline) = state.close_at_ms else { return };
        if now.monotonic_ms < deadline {
            return;
        }
        if state.h3.active_requests() > 0 {
            state.close_at_ms = Some(now.monotonic_ms + SESSION_LINGER_MS);
            return;
        }
        state.close_at_ms = None;
        QuicStreams::close(quic, H3ErrorCode::NO_ERROR.0, b"");
    }
}

impl<H: Host> QuicApp for WtServer<H> {
    type Connection = WtConnection;

    fn accept(&mut self, peer: SocketAddr, _now: Now, index: usize) -> WtConnection {
        // The endpoint's slab slot: sessions are addressed by it (the host
        // checks the player behind a slot before anything is delivered).
        let id = index;
        self.counters.connections += 1;
        self.next_serial += 1;
        WtConnection {
            peer,
            id,
            h3: H3Connection::new(self.h3_config),
            session: None,
            drained: false,
            close_at_ms: None,
            wake_at_ms: None,
            serial: self.next_serial,
            deferred: 0,
        }
    }

    fn process(&mut self, quic: &mut quiche::Connection, state: &mut WtConnection, now: Now) {
        if quic.is_closed() || quic.is_draining() {
            return;
        }
        state.h3.handle_readable(quic, &mut self.buffers);
        state.h3.handle_datagrams(quic, &mut self.buffers);
        for _ in 0..ROUNDS_MAX {
            while let Some(event) = state.h3.poll_event() {
                self.on_event(state, event, now);
            }
            self.tick(state, now);
            send_datagrams(quic, state);
            state.h3.flush(quic);
            if !state.h3.has_events() {
                break;
            }
        }
        self.close_when_done(quic, state, now);
        state.wake_at_ms = state.h3.wants_read().then_some(now.monotonic_ms);
    }

    fn timeout(&self, state: &WtConnection) -> Option<u64> {
        let session =
            state.session.as_deref().filter(|wt| !wt.ended).and_then(|wt| wt.session.timeout());
        [session, state.close_at_ms, state.wake_at_ms].into_iter().flatten().min()
    }

    fn closed(&mut self, _quic: &quiche::Connection, state: WtConnection) {
        let session_ref = self.session_ref(&state);
        if let Some(wt) = state.session {
            if wt.host_knows {
                self.host.closed(session_ref);
            }
        }
    }

    fn begin_drain(&mut self) {
        self.draining = true;
    }
}

/// Sends the session's datagrams (Pongs to datagram Pings, later game
/// state) with the session's quarter-stream-id prefix.
fn send_datagrams(quic: &mut quiche::Connection, state: &mut WtConnection) {
    let Some(wt) = state.session.as_deref_mut() else { return };
    // What fits in one QUIC datagram frame now, less the prefix.
    let limit = quic.dgram_max_writable_len().unwrap_or(0).saturating_sub(DATAGRAM_PREFIX_ROOM);
    wt.session.enable_datagrams(limit);
    while let Some(datagram) = wt.session.poll_datagram() {
        // A full send queue drops it, as the network might have.
        let _ = state.h3.send_datagram(quic, wt.connect_stream, &datagram);
    }
}

/// Bytes reserved for the quarter-stream-id prefix of a datagram.
const DATAGRAM_PREFIX_ROOM: usize = 8;

/// Answers an HTTP/3 request with the host's response.
fn respond(h3: &mut H3Connection, stream_id: u64, head_only: bool, response: &WebResponse) {
    let length = response.body.len().to_string();
    let mut fields: Vec<(&str, &str)> = Vec::with_capacity(2 + response.headers.len());
    fields.push(("content-type", response.content_type));
    fields.push(("content-length", &length));
    for (name, value) in &response.headers {
        if !CONNECTION_SPECIFIC.contains(name) {
            fields.push((name, value));
        }
    }
    let body: &[u8] = if head_only { &[] } else { &response.body };
    let result = h3.respond(stream_id, response.status, &fields, body);
    if let Err(CommandError::TooLarge | CommandError::InvalidStatus) = result {
        tracing::warn!(status = response.status, len = body.len(), "response not sendable");
        let _ = h3.respond(stream_id, 500, &[], &[]);
    }
}

/// The status refusing an extended CONNECT, or `None` to accept it.
fn connect_refusal(head: &RequestHead, allowed_origins: &[String]) -> Option<u16> {
    let path = head.path.split('?').next().unwrap_or_default();
    if path != WEBTRANSPORT_PATH {
        return Some(404);
    }
    match head.origin.as_deref() {
        Some(origin) if !origin_allowed(origin, allowed_origins) => Some(403),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bytes::BytesMut;

    use super::*;
    use crate::proto::h3::capsule::{Capsule, CapsuleReader};
    use crate::proto::h3::frame::{self, Event, FrameReader, StreamRole};
    use crate::proto::h3::qpack::DecodeLimits;
    use crate::proto::h3::stream::{self as uni, encode_control_stream_preamble};
    use crate::proto::h3::{ResponseHead, Settings};
    use crate::proto::session::Acceptance;
    use crate::proto::wire::{self, encode_frame, Bye, Hello, Message, Ping, Text, WireMessage};

    /// Records what the transport hands to it.
    #[derive(Default)]
    struct TestHost {
        hellos: Vec<SessionRef>,
        closed: Vec<SessionRef>,
        requests: Vec<String>,
        /// Requests to /later, answered by the test through `complete_http`.
        deferred: Vec<HttpTarget>,
    }

    impl Host for TestHost {
        fn hello(
            &mut self,
            session: SessionRef,
            _hello: &Hello,
            now: Now,
        ) -> Result<Acceptance, (ErrorCode, String)> {
            self.hellos.push(session);
            Ok(Acceptance {
                session_id: 7,
                player_id: 42,
                nickname: Text::from_static("tester"),
                resume_token: Text::default(),
                resumed: false,
                server_time_us: now.unix_us,
            })
        }

        fn message(&mut self, _: SessionRef, _: Message, _: &mut Session, _: Now) {}

        fn closed(&mut self, session: SessionRef) {
            self.closed.push(session);
        }

        fn session_count(&self) -> usize {
            self.hellos.len() - self.closed.len()
        }

        fn http(&mut self, request: &HttpRequest<'_>, target: HttpTarget, _: Now) -> HttpAnswer {
            let line = format!("{} {} {:?}", request.method, request.path, request.query);
            self.requests.push(line.clone());
            if request.path == "/later" {
                self.deferred.push(target);
                return HttpAnswer::Deferred;
            }
            HttpAnswer::Ready(WebResponse {
                status: 200,
                content_type: "text/plain",
                headers: vec![("x-test", "yes".to_owned()), ("connection", "close".to_owned())],
                body: Bytes::from(line),
            })
        }
    }

    fn at(monotonic_ms: u64) -> Now {
        Now { monotonic_ms, unix_us: 1_700_000_000_000_000 + monotonic_ms * 1_000 }
    }

    fn quiche_config(cert: Option<&crate::devcert::CertPaths>) -> quiche::Config {
        let mut config = quiche::Config::new(quiche::PROTOCOL_VERSION).unwrap();
        if let Some(paths) = cert {
            config.load_cert_chain_from_pem_file(paths.cert.to_str().unwrap()).unwrap();
            config.load_priv_key_from_pem_file(paths.key.to_str().unwrap()).unwrap();
        } else {
            config.verify_peer(false);
        }
        config.set_application_protos(&[b"h3"]).unwrap();
        config.set_max_idle_timeout(30_000);
        config.set_initial_max_data(10 << 20);
        config.set_initial_max_stream_data_bidi_local(1 << 20);
        config.set_initial_max_stream_data_bidi_remote(1 << 20);
        config.set_initial_max_stream_data_uni(1 << 20);
        config.set_initial_max_streams_bidi(100);
        config.set_initial_max_streams_uni(100);
        config.enable_dgram(true, 100, 100);
        config
    }

    /// A quiche client and server talking in memory, the server driven by
    /// a `WtServer` the way the endpoint drives it; the client speaks
    /// HTTP/3 through this module's codecs.
    struct Pair {
        client: quiche::Connection,
        server: quiche::Connection,
        app: WtServer<TestHost>,
        state: Option<WtConnection>,
        now: Now,
        client_addr: SocketAddr,
        server_addr: SocketAddr,
        /// What the client read so far, per stream, and whether it ended.
        received: HashMap<u64, (Vec<u8>, bool)>,
        _dir: tempfile::TempDir,
    }

    impl Pair {
        fn new() -> Pair {
            Pair::with_app(WtServer::new(3, TestHost::default()))
        }

        fn with_app(mut app: WtServer<TestHost>) -> Pair {
            let dir = tempfile::tempdir().unwrap();
            let cert = crate::devcert::generate(&[], 2).unwrap().write(dir.path()).unwrap();
            let client_addr: SocketAddr = "127.0.0.1:50000".parse().unwrap();
            let server_addr: SocketAddr = "127.0.0.1:4433".parse().unwrap();
            let client_cid = quiche::ConnectionId::from_ref(&[1; 16]);
            let server_cid = quiche::ConnectionId::from_ref(&[2; 16]);
            let client = quiche::connect(
                Some("localhost"),
                &client_cid,
                client_addr,
                server_addr,
                &mut quiche_config(None),
            )
            .unwrap();
            let server = quiche::accept(
                &server_cid,
                None,
                server_addr,
                client_addr,
                &mut quiche_config(Some(&cert)),
            )
            .unwrap();
            let now = at(0);
            let state = app.accept(client_addr, now, 0);
            let mut pair = Pair {
                client,
                server,
                app,
                state: Some(state),
                now,
                client_addr,
                server_addr,
                received: HashMap::new(),
                _dir: dir,
            };
            pair.exchange();
            assert!(pair.client.is_established() && pair.server.is_established());
            pair
        }

        /// Moves packets both ways until both sides are quiet, processing
        /// the server after every flight (as the endpoint does).
        fn exchange(&mut self) {
            let mut buf = vec![0u8; 65_535];
            for _ in 0..100 {
                let mut moved = false;
                while let Ok((len, _)) = self.client.send(&mut buf) {
                    moved = true;
                    let info = quiche::RecvInfo { from: self.client_addr, to: self.server_addr };
                    let _ = self.server.recv(&mut buf[..len], info);
                }
                self.process();
                while let Ok((len, _)) = self.server.send(&mut buf) {
                    moved = true;
                    let info = quiche::RecvInfo { from: self.server_addr, to: self.client_addr };
                    let _ = self.client.recv(&mut buf[..len], info);
                }
                if !moved {
                    break;
                }
            }
            self.read_client_streams();
        }

        fn process(&mut self) {
            let Pair { app, server, state, now, .. } = self;
            app.process(server, state.as_mut().unwrap(), *now);
        }

        /// Time passes; the endpoint would fire the app's timer.
        fn advance_to(&mut self, monotonic_ms: u64) {
            self.now = at(monotonic_ms);
            self.exchange();
        }

        fn read_client_streams(&mut self) {
            let mut buf = vec![0u8; 65_535];
            let readable: Vec<u64> = self.client.readable().collect();
            for stream_id in readable {
                while let Ok((len, fin)) = self.client.stream_recv(stream_id, &mut buf) {
                    let entry = self.received.entry(stream_id).or_default();
                    entry.0.extend_from_slice(&buf[..len]);
                    entry.1 |= fin;
                }
            }
        }

        fn send(&mut self, stream_id: u64, bytes: &[u8], fin: bool) {
            assert_eq!(self.client.stream_send(stream_id, bytes, fin).unwrap(), bytes.len());
        }

        /// The client's control and QPACK streams, as aioquic opens them.
        fn open_h3(&mut self) {
            let settings = Settings {
                qpack_max_table_capacity: Some(0),
                h3_datagram: Some(1),
                enable_webtransport: Some(1),
                ..Settings::default()
            };
            let mut control = Vec::new();
            encode_control_stream_preamble(&settings, &mut control);
            self.send(2, &control, false);
            self.send(6, &[uni::QPACK_ENCODER as u8], false);
            self.send(10, &[uni::QPACK_DECODER as u8], false);
        }

        fn request(&mut self, stream_id: u64, method: &str, path: &str, origin: Option<&str>) {
            let connect = method == "CONNECT";
            let head = RequestHead {
                method: method.into(),
                scheme: "https".into(),
                authority: "localhost:4433".into(),
                path: path.into(),
                protocol: connect.then(|| "webtransport".into()),
                origin: None,
                headers: origin.map(|o| vec![("origin".into(), o.into())]).unwrap_or_default(),
            };
            let mut block = Vec::new();
            head.encode(&mut block);
            let mut frame = Vec::new();
            frame::encode_headers_frame(&block, &mut frame);
            self.send(stream_id, &frame, !connect);
        }

        /// Session 0 accepted, control stream 4 open, Hello answered.
        fn with_session() -> Pair {
            let mut pair = Pair::new();
            pair.open_h3();
            pair.request(0, "CONNECT", "/wt", Some("http://localhost:8080"));
            pair.exchange();
            assert_eq!(pair.response(0).0, Some(200));
            let mut bytes = Vec::new();
            frame::encode_webtransport_stream_signal(0, &mut bytes);
            bytes.extend_from_slice(&frame_bytes(&hello()));
            pair.send(4, &bytes, false);
            pair.exchange();
            assert!(matches!(pair.messages(4).first(), Some(Message::Welcome(_))));
            pair
        }

        /// Status and DATA payload of a request stream, and its FIN.
        fn response(&self, stream_id: u64) -> (Option<u16>, Vec<u8>, bool) {
            let Some((bytes, fin)) = self.received.get(&stream_id) else {
                return (None, Vec::new(), false);
            };
            let mut reader = FrameReader::new(StreamRole::Request);
            let mut input = &bytes[..];
            let mut status = None;
            let mut body = Vec::new();
            while let Some(event) = reader.next(&mut input).unwrap() {
                match event {
                    Event::Headers(block) => {
                        let head = ResponseHead::decode(block, &DecodeLimits::DEFAULT).unwrap();
                        status = Some(head.status);
                        if head.status == 200 && !head.headers.is_empty() {
                            assert_eq!(head.header("x-test"), Some("yes"));
                            assert_eq!(head.header("connection"), None);
                        }
                    }
                    Event::Data(data) => body.extend_from_slice(data),
                    other => panic!("{other:?}"),
                }
            }
            (status, body, *fin)
        }

        /// The Ludus messages the client got on a WebTransport stream.
        fn messages(&self, stream_id: u64) -> Vec<Message> {
            let mut decoder = FrameDecoder::new();
            if let Some((bytes, _)) = self.received.get(&stream_id) {
                decoder.extend(bytes);
            }
            std::iter::from_fn(|| decoder.next_message().unwrap()).collect()
        }

        /// CLOSE_WEBTRANSPORT_SESSION capsules on the CONNECT stream.
        fn close_capsules(&self) -> Vec<(u32, String)> {
            let mut reader = CapsuleReader::new();
            let (_, tunnel, _) = self.response(0);
            let mut input = &tunnel[..];
            let mut closes = Vec::new();
            while let Some(capsule) = reader.next(&mut input).unwrap() {
                if let Capsule::CloseSession { error_code, reason } = capsule {
                    closes.push((error_code, reason.to_owned()));
                }
            }
            closes
        }
    }

    fn frame_bytes<M: WireMessage>(message: &M) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode_frame(message, &mut out);
        out.to_vec()
    }

    fn hello() -> Hello {
        Hello {
            min_version: 1,
            max_version: 1,
            capabilities: wire::CAP_DATAGRAMS,
            ..Hello::default()
        }
    }

    #[test]
    fn a_webtransport_session_runs_the_ludus_protocol_over_real_quic() {
        let mut pair = Pair::with_session();
        let session_ref =
            SessionRef { shard: 3, transport: Transport::WebTransport, connection: 0 };
        assert_eq!(pair.app.host.hellos, [session_ref]);
        let Message::Welcome(welcome) = &pair.messages(4)[0] else { unreachable!() };
        assert_eq!((welcome.player_id, welcome.capabilities), (42, wire::CAP_DATAGRAMS));

        // A Ping in a datagram is answered in a datagram, with the session's
        // quarter-stream-id prefix (session 0: a single zero byte).
        let mut datagram = vec![0x00];
        datagram.extend(frame_bytes(&Ping { id: 9, sent_us: 5 }));
        pair.client.dgram_send(&datagram).unwrap();
        pair.advance_to(100);
        let mut buffer = [0u8; 1500];
        let length = pair.client.dgram_recv(&mut buffer).expect("a datagram answer");
        assert_eq!(buffer[0], 0x00, "session 0's prefix");
        let payload = bytes::Bytes::copy_from_slice(&buffer[1..length]);
        let bodies: Vec<bytes::Bytes> =
            wire::datagram_bodies(&payload).unwrap().map(Result::unwrap).collect();
        assert!(
            matches!(wire::decode_body(&bodies[0]), Ok(Message::Pong(pong)) if pong.id == 9 && pong.ping_sent_us == 5),
            "{bodies:?}"
        );

        // The client says Bye: the session closes, the host hears it once.
        pair.send(4, &frame_bytes(&Bye { code: 0, reason: Text::from_static("done") }), false);
        pair.advance_to(200);
        assert_eq!(pair.app.host.closed, [session_ref]);
        assert_eq!(pair.close_capsules(), [(0, "done".to_owned())], "the Bye's code and reason");
        assert!(pair.response(0).2 && pair.received[&4].1, "CONNECT and control streams end");
        assert!(!pair.client.is_closed());
        // After the linger time the connection closes.
        let deadline = pair.app.timeout(pair.state.as_ref().unwrap()).unwrap();
        assert_eq!(deadline, 200 + SESSION_LINGER_MS);
        pair.advance_to(deadline);
        assert!(pair.server.is_draining() || pair.server.is_closed());
        let state = pair.state.take().unwrap();
        pair.app.closed(&pair.server, state);
        assert_eq!(pair.app.host.closed.len(), 1, "told once");
        assert_eq!(pair.app.counters().sessions, 1);
    }

    #[test]
    fn plain_http3_requests_reach_the_host() {
        let mut pair = Pair::new();
        pair.open_h3();
        pair.request(0, "GET", "/api/health?verbose=1", None);
        pair.request(4, "HEAD", "/index.html", None);
        pair.exchange();
        let (status, body, fin) = pair.response(0);
        assert_eq!((status, fin), (Some(200), true));
        assert_eq!(String::from_utf8(body).unwrap(), "GET /api/health Some(\"verbose=1\")");
        let (status, body, _) = pair.response(4);
        assert_eq!((status, body.len()), (Some(200), 0), "HEAD has no body");
        assert_eq!(pair.app.counters().requests, 2);
        assert_eq!(pair.app.timeout(pair.state.as_ref().unwrap()), None);
    }

    /// A deferred answer reaches its own request stream, once; an answer
    /// addressed to an earlier connection in the same slot is dropped.
    #[test]
    fn deferred_http3_answers_reach_the_stream_that_asked() {
        let mut pair = Pair::new();
        pair.open_h3();
        pair.request(0, "GET", "/later", None);
        pair.request(4, "GET", "/now", None);
        pair.exchange();
        assert_eq!(pair.response(0).0, None, "no answer yet");
        assert_eq!(pair.response(4).0, Some(200), "a later request is not held up");
        let target = pair.app.host.deferred.pop().unwrap();
        assert_eq!((target.version, target.stream_id), (HttpVersion::Http3, 0));
        let answer = WebResponse::json(201, &serde_json::json!({ "done": true }));
        let state = pair.state.as_mut().unwrap();
        let stale = HttpTarget { serial: target.serial + 1, ..target };
        assert!(!state.complete_http(stale, &answer), "another connection's answer");
        assert!(state.complete_http(target, &answer));
        assert!(!state.complete_http(target, &answer), "answered once");
        pair.exchange();
        let (status, body, fin) = pair.response(0);
        assert_eq!((status, fin), (Some(201), true));
        assert_eq!(body, br#"{"done":true}"#);
    }

    #[test]
    fn connect_policy_refuses_wrong_paths_origins_and_second_sessions() {
        let mut pair = Pair::new();
        pair.open_h3();
        // (One at a time: a CONNECT arriving while another waits for its
        // answer gets 429, one session per connection.)
        pair.request(0, "CONNECT", "/elsewhere", None);
        pair.exchange();
        pair.request(4, "CONNECT", "/wt", Some("https://evil.example"));
        pair.exchange();
        assert_eq!(pair.response(0).0, Some(404));
        assert_eq!(pair.response(4).0, Some(403));
        pair.request(8, "CONNECT", "/wt?room=1", None);
        pair.exchange();
        assert_eq!(pair.response(8).0, Some(200), "no Origin: a native client");
        // A second bidirectional stream in the session is refused.
        let mut bytes = Vec::new();
        frame::encode_webtransport_stream_signal(8, &mut bytes);
        pair.send(12, &bytes, false);
        pair.send(16, &bytes, false);
        pair.exchange();
        assert!(pair.client.stream_recv(16, &mut [0; 16]).is_err(), "stream 16 was reset");
        assert_eq!(pair.app.counters().sessions_refused, 2);

        let allowed = vec!["https://play.example".to_owned()];
        assert!(origin_allowed("https://play.example", &allowed));
        assert!(!origin_allowed("http://localhost:8080", &allowed));
        assert!(origin_allowed("https://anything", &["*".to_owned()]));
        for local in ["http://localhost", "http://127.0.0.1:8080", "https://[::1]:443"] {
            assert!(origin_allowed(local, &[]), "{local}");
        }
        for remote in ["http://localhost.evil.com", "http://127.0.0.1:80x", "null", "file://"] {
            assert!(!origin_allowed(remote, &[]), "{remote}");
        }
    }

    #[test]
    fn a_session_without_hello_times_out() {
        let mut pair = Pair::new();
        pair.open_h3();
        pair.request(0, "CONNECT", "/wt", None);
        pair.exchange();
        let mut bytes = Vec::new();
        frame::encode_webtransport_stream_signal(0, &mut bytes);
        pair.send(4, &bytes, false);
        pair.exchange();
        let deadline = pair.app.timeout(pair.state.as_ref().unwrap()).unwrap();
        assert_eq!(deadline, SessionConfig::default().hello_timeout_ms);
        pair.advance_to(deadline);
        let messages = pair.messages(4);
        assert!(
            matches!(messages.last(), Some(Message::Bye(bye)) if bye.code == ErrorCode::Timeout as u16),
            "{messages:?}"
        );
        assert_eq!(pair.close_capsules(), [(ErrorCode::Timeout as u32, "no Hello in time".into())]);
        assert!(pair.app.host.closed.is_empty(), "the host never accepted it");
    }

    #[test]
    fn a_drain_says_goodbye_and_goaway() {
        let mut pair = Pair::with_session();
        pair.app.begin_drain();
        pair.advance_to(50);
        let messages = pair.messages(4);
        assert!(
            matches!(messages.last(), Some(Message::Bye(bye)) if bye.code == ErrorCode::ServerDraining as u16),
            "{messages:?}"
        );
        let code = ErrorCode::ServerDraining as u32;
        assert_eq!(pair.close_capsules(), [(code, "server draining".into())]);
        let control = &pair.received[&crate::proto::h3::connection::CONTROL_STREAM_ID].0;
        let mut goaway = Vec::new();
        frame::encode_goaway(8, &mut goaway);
        assert!(control.ends_with(&goaway), "GOAWAY after the streams we saw");
        assert_eq!(pair.app.host.closed.len(), 1);
        // New sessions are refused while draining, then the connection closes.
        pair.advance_to(50 + SESSION_LINGER_MS);
        assert!(pair.server.is_draining() || pair.server.is_closed());
    }

    #[test]
    fn a_connection_that_dies_tells_the_host_once() {
        let mut pair = Pair::with_session();
        let state = pair.state.take().unwrap();
        assert!(state.has_session());
        pair.app.closed(&pair.server, state);
        assert_eq!(pair.app.host.closed.len(), 1);
    }

    #[test]
    fn an_h3_violation_closes_the_quic_connection_with_its_code() {
        let mut pair = Pair::with_session();
        let mut data = Vec::new();
        frame::encode_data_frame(b"x", &mut data);
        pair.send(2, &data, false);
        pair.exchange();
        let error = pair.client.peer_error().expect("closed by the server");
        assert_eq!(error.error_code, H3ErrorCode::FRAME_UNEXPECTED.0);
        assert_eq!(pair.app.counters().h3_errors, 1);
        let state = pair.state.take().unwrap();
        pair.app.closed(&pair.server, state);
        assert_eq!(pair.app.host.closed.len(), 1);
    }
}
