//! The TCP side of a shard: listeners (TLS and, for development, plain),
//! connections speaking HTTP/1.1 with keep-alive, and WebSocket sessions at
//! /ws carrying the Ludus protocol.
//!
//! Every connection is bounded: request heads must complete within a
//! deadline (slowloris), idle keep-alive connections and silent sessions are
//! closed, output to a client that does not read is capped, and the number of
//! connections per shard and per client address is limited.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use slab::Slab;

use super::host::{
    pump_events, Headers, Host, HttpAnswer, HttpRequest, HttpTarget, HttpVersion, SessionRef,
    Transport,
};
use super::quic::app::origin_allowed;
use super::shard::TCP_TOKEN_BASE;
use super::timer::{TimerKey, TimerWheel};
use super::web::WebResponse;
use crate::proto::http1::{self, Method, RequestParser, Response};
use crate::proto::session::{Now, Session, SessionConfig};
use crate::proto::websocket::{self as ws, CloseState, Incoming};
use crate::proto::wire::{self, DecodeError, ErrorCode, FrameDecoder};

/// Listeners per shard (TLS and plain).
pub const LISTENERS_MAX: usize = 4;
/// Bytes read from a socket per call.
pub const READ_CHUNK: usize = 16 * 1024;
/// The WebSocket sub-protocol of the Ludus protocol.
pub const WEBSOCKET_PROTOCOL: &str = "ludus.v1";
/// Path of WebSocket sessions.
pub const WEBSOCKET_PATH: &str = "/ws";

const TIMER_DEADLINE: u8 = 0;
/// How long a deferred answer (an API request on a worker) may take before
/// the client gets 504 and the connection closes. Worker jobs have shorter
/// deadlines of their own; this is the transport's backstop.
pub const DEFERRED_ANSWER_TIMEOUT_MS: u64 = 30_000;

/// Limits and timeouts of the TCP side.
#[derive(Debug, Clone)]
pub struct TcpOptions {
    /// Connections one shard holds; more are refused at accept.
    pub max_connections: usize,
    /// Connections one client address may hold on one shard.
    pub max_connections_per_ip: usize,
    /// A request head (and the TLS handshake) must arrive within this.
    pub header_timeout_ms: u64,
    /// An idle keep-alive connection is closed after this.
    pub idle_timeout_ms: u64,
    /// Output queued for a client that does not read; past it, it is dropped.
    pub max_outbox_bytes: usize,
    pub http: http1::Limits,
    pub websocket: ws::Limits,
    pub session: SessionConfig,
    /// Origins allowed to open WebSocket sessions (same policy as
    /// WebTransport: empty allows local development pages only).
    pub allowed_origins: Vec<String>,
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions {
            max_connections: 20_000,
            max_connections_per_ip: 4_096,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 30_000,
            max_outbox_bytes: 4 << 20,
            http: http1::Limits::default(),
            websocket: ws::Limits::default(),
            // WebSocket has no datagrams: never grant CAP_DATAGRAMS there.
            session: SessionConfig {
                capabilities: wire::CAP_ALL & !wire::CAP_DATAGRAMS,
                ..SessionConfig::default()
            },
            allowed_origins: Vec::new(),
        }
    }
}

/// A listening socket and whether it speaks TLS.
pub struct Listener {
    pub socket: TcpListener,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

struct WebSocketState {
    decoder: ws::Decoder,
    frames: FrameDecoder,
    session: Session,
    close: CloseState,
    /// The host accepted the session and must hear when it ends.
    host_knows: bool,
}

enum Phase {
    Http(RequestParser),
    WebSocket(Box<WebSocketState>),
}

struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<Box<rustls::ServerConnection>>,
    phase: Phase,
    /// Plaintext waiting to be written (or encrypted).
    out: BytesMut,
    /// Close once `out` is flushed.
    closing: bool,
    /// Close now: the peer is gone or misbehaved at the transport level.
    dead: bool,
    close_notify_sent: bool,
    /// Queued in the endpoint's dirty list for this turn.
    dirty: bool,
    last_activity_ms: u64,
    /// When the request (or TLS handshake) in progress started.
    request_started_ms: Option<u64>,
    /// Tells this connection from a later one in the same slab slot.
    serial: u64,
    /// A request whose answer comes later; requests behind it wait
    /// (HTTP/1.1 answers in order).
    awaiting: Option<Awaiting>,
}

/// The request a connection waits to answer.
#[derive(Debug, Clone, Copy)]
struct Awaiting {
    keep_alive: bool,
    head_only: bool,
    since_ms: u64,
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpCounters {
    pub accepted: u64,
    pub refused: u64,
    pub closed: u64,
    pub requests: u64,
    pub websocket_sessions: u64,
    pub timeouts: u64,
    pub tls_errors: u64,
}

pub struct TcpEndpoint {
    shard: u16,
    options: TcpOptions,
    listeners: Vec<Listener>,
    connections: Slab<Connection>,
    per_ip: HashMap<IpAddr, usize>,
    timers: TimerWheel,
    due: Vec<TimerKey>,
    /// Connections with output or state to act on this turn.
    dirty: Vec<usize>,
    scratch: Box<[u8; READ_CHUNK]>,
    draining: bool,
    counters: TcpCounters,
    next_serial: u64,
}

impl TcpEndpoint {
    pub fn new(shard: u16, options: TcpOptions, listeners: Vec<Listener>, now: Now) -> TcpEndpoint {
        assert!(listeners.len() <= LISTENERS_MAX);
        TcpEndpoint {
            shard,
            options,
            listeners,
            connections: Slab::new(),
            per_ip: HashMap::new(),
            timers: TimerWheel::new(now.monotonic_ms),
            due: Vec::new(),
            dirty: Vec::new(),
            scratch: Box::new([0; READ_CHUNK]),
            draining: false,
            counters: TcpCounters::default(),
            next_serial: 1,
        }
    }

    pub fn counters(&self) -> TcpCounters {
        self.counters
    }

    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// New TLS connections use `config` (a renewed certificate).
    pub fn replace_tls(&mut self, config: Arc<rustls::ServerConfig>) {
        for listener in &mut self.listeners {
            if listener.tls.is_some() {
                listener.tls = Some(Arc::clone(&config));
            }
        }
    }

    pub fn register(&mut self, registry: &Registry) -> io::Result<()> {
        for (index, listener) in self.listeners.iter_mut().enumerate() {
            registry.register(
                &mut listener.socket,
                Token(TCP_TOKEN_BASE + index),
                Interest::READABLE,
            )?;
        }
        Ok(())
    }

    pub fn timeout_ms(&self, now: Now) -> Option<u64> {
        self.timers.timeout_ms(now.monotonic_ms)
    }

    /// Readiness of a listener or a connection.
    pub fn handle_event<H: Host>(
        &mut self,
        registry: &Registry,
        token: Token,
        event: &mio::event::Event,
        host: &mut H,
        now: Now,
    ) {
        let Some(slot) = token.0.checked_sub(TCP_TOKEN_BASE) else { return };
        if slot < LISTENERS_MAX {
            self.accept(registry, slot, now);
            return;
        }
        let index = slot - LISTENERS_MAX;
        if !self.connections.contains(index) {
            return;
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            // After the peer's FIN or an error there is no later edge to
            // wait for: read on to the end.
            let to_the_end = event.is_read_closed() || event.is_error();
            self.read(index, host, now, to_the_end);
        }
        self.mark_dirty(index);
    }

    /// Runs `visit` on a WebSocket connection's session, if the host
    /// accepted one there, and queues the connection to flush this turn.
    pub fn touch_session<R>(
        &mut self,
        index: usize,
        visit: impl FnOnce(&mut Session) -> R,
    ) -> Option<R> {
        let connection = self.connections.get_mut(index)?;
        let Phase::WebSocket(state) = &mut connection.phase else { return None };
        if !state.host_knows || connection.closing {
            return None;
        }
        let result = visit(&mut state.session);
        self.mark_dirty(index);
        Some(result)
    }

    fn mark_dirty(&mut self, index: usize) {
        if let Some(connection) = self.connections.get_mut(index) {
            if !connection.dirty {
                connection.dirty = true;
                self.dirty.push(index);
            }
        }
    }

    fn accept(&mut self, registry: &Registry, listener_index: usize, now: Now) {
        loop {
            let Some(listener) = self.listeners.get(listener_index) else { return };
            let (mut stream, peer) = match listener.socket.accept() {
                Ok(accepted) => accepted,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    // EMFILE and friends: keep the listener, try next turn.
                    tracing::warn!(shard = self.shard, %error, "TCP accept failed");
                    return;
                }
            };
            let per_ip = self.per_ip.get(&peer.ip()).copied().unwrap_or(0);
            if self.draining
                || self.connections.len() >= self.options.max_connections
                || per_ip >= self.options.max_connections_per_ip
            {
                self.counters.refused += 1;
                drop(stream);
                continue;
            }
            let tls = match &listener.tls {
                Some(config) => match rustls::ServerConnection::new(Arc::clone(config)) {
                    Ok(connection) => Some(Box::new(connection)),
                    Err(error) => {
                        tracing::warn!(%error, "TLS session setup failed");
                        continue;
                    }
                },
                None => None,
            };
            let _ = stream.set_nodelay(true);
            let entry = self.connections.vacant_entry();
            let index = entry.key();
            let token = Token(TCP_TOKEN_BASE + LISTENERS_MAX + index);
            if registry
                .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                .is_err()
            {
                continue;
            }
            entry.insert(Connection {
                stream,
                peer,
                tls,
                phase: Phase::Http(RequestParser::new(self.options.http)),
                out: BytesMut::with_capacity(4096),
                closing: false,
                dead: false,
                close_notify_sent: false,
                dirty: false,
                last_activity_ms: now.monotonic_ms,
                request_started_ms: Some(now.monotonic_ms),
                serial: self.next_serial,
                awaiting: None,
            });
            self.next_serial += 1;
            *self.per_ip.entry(peer.ip()).or_insert(0) += 1;
            self.counters.accepted += 1;
            self.mark_dirty(index);
        }
    }

    /// Reads until WouldBlock (or a short read, unless `to_the_end`),
    /// feeding the plaintext to the connection's phase.
    fn read<H: Host>(&mut self, index: usize, host: &mut H, now: Now, to_the_end: bool) {
        let TcpEndpoint { connections, scratch, options, counters, draining, shard, .. } = self;
        let connection = &mut connections[index];
        loop {
            if connection.dead || connection.closing && connection.tls.is_none() {
                return;
            }
            let read = match connection.tls.as_mut() {
                Some(tls) => read_tls(tls, &mut connection.stream, &mut scratch[..], counters),
                None => read_plain(&mut connection.stream, &mut scratch[..]),
            };
            let drained = matches!(read, ReadOutcome::Drained(_));
            match read {
                ReadOutcome::Data(length) | ReadOutcome::Drained(length) => {
                    connection.last_activity_ms = now.monotonic_ms;
                    let context = Context {
                        options,
                        counters,
                        draining: *draining,
                        now,
                        shard: *shard,
                        index,
                    };
                    handle_plaintext(connection, &scratch[..length], host, context);
                    if drained && !to_the_end {
                        return;
                    }
                }
                ReadOutcome::Progress => {}
                ReadOutcome::WouldBlock => return,
                ReadOutcome::Closed => {
                    connection.dead = true;
                    return;
                }
            }
        }
    }

    /// Flushes output, re-arms deadlines and removes finished connections.
    pub fn drive<H: Host>(&mut self, registry: &Registry, host: &mut H, now: Now) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for index in dirty.drain(..) {
            let Some(connection) = self.connections.get_mut(index) else { continue };
            connection.dirty = false;
            self.pump(index, host, now);
            let connection = &mut self.connections[index];
            write_out(connection, &mut self.counters);
            let tls_pending = connection.tls.as_ref().is_some_and(|tls| tls.wants_write());
            let finished =
                connection.dead || connection.closing && connection.out.is_empty() && !tls_pending;
            if finished {
                self.remove(registry, index, host);
                continue;
            }
            if connection.out.len() > self.options.max_outbox_bytes {
                tracing::debug!(peer = %connection.peer, "client not reading: closing");
                self.remove(registry, index, host);
                continue;
            }
            self.arm_deadline(index);
        }
        // Keep the allocation; connections marked meanwhile stay queued.
        dirty.append(&mut self.dirty);
        self.dirty = dirty;
    }

    /// Moves session events to the host and session output to the socket buffer.
    fn pump<H: Host>(&mut self, index: usize, host: &mut H, now: Now) {
        let shard = self.shard;
        let connection = &mut self.connections[index];
        let Phase::WebSocket(state) = &mut connection.phase else { return };
        let session_ref = SessionRef { shard, transport: Transport::WebSocket, connection: index };
        pump_session(state, &mut connection.out, &mut connection.closing, session_ref, host, now);
    }

    fn arm_deadline(&mut self, index: usize) {
        let connection = &self.connections[index];
        let deadline = match &connection.phase {
            Phase::Http(_) if connection.awaiting.is_some() => {
                connection.awaiting.map_or(0, |awaiting| awaiting.since_ms)
                    + DEFERRED_ANSWER_TIMEOUT_MS
            }
            Phase::Http(_) => {
                let idle = connection.last_activity_ms + self.options.idle_timeout_ms;
                let head = connection
                    .request_started_ms
                    .map(|started| started + self.options.header_timeout_ms);
                head.map_or(idle, |head| head.min(idle))
            }
            Phase::WebSocket(state) => match state.session.timeout() {
                Some(deadline) => deadline,
                None => connection.last_activity_ms + self.options.idle_timeout_ms,
            },
        };
        let _ = self.timers.arm(TimerKey { owner: index as u32, kind: TIMER_DEADLINE }, deadline);
    }

    /// Fires due deadlines: slow heads, idle connections, session timeouts.
    pub fn handle_timers<H: Host>(&mut self, host: &mut H, now: Now) {
        let mut due = std::mem::take(&mut self.due);
        self.timers.expire(now.monotonic_ms, |key, _| due.push(key));
        for key in due.drain(..) {
            let index = key.owner as usize;
            let Some(connection) = self.connections.get_mut(index) else { continue };
            match &mut connection.phase {
                Phase::Http(_) if connection.awaiting.is_some() => {
                    self.counters.timeouts += 1;
                    let late = WebResponse::error(504, "timeout", "the answer took too long");
                    to_http1(late).encode(&mut connection.out, false, false);
                    connection.awaiting = None;
                    connection.closing = true;
                }
                Phase::Http(_) => {
                    self.counters.timeouts += 1;
                    connection.dead = true;
                }
                Phase::WebSocket(state) => state.session.handle_timeout(now),
            }
            self.mark_dirty(index);
        }
        self.due = due;
        let _ = host;
    }

    fn remove<H: Host>(&mut self, registry: &Registry, index: usize, host: &mut H) {
        let mut connection = self.connections.remove(index);
        let _ = registry.deregister(&mut connection.stream);
        self.timers.cancel(TimerKey { owner: index as u32, kind: TIMER_DEADLINE });
        if let Some(count) = self.per_ip.get_mut(&connection.peer.ip()) {
            *count -= 1;
            if *count == 0 {
                self.per_ip.remove(&connection.peer.ip());
            }
        }
        if let Phase::WebSocket(state) = &connection.phase {
            if state.host_knows {
                host.closed(SessionRef {
                    shard: self.shard,
                    transport: Transport::WebSocket,
                    connection: index,
                });
            }
        }
        let _ = connection.stream.shutdown(std::net::Shutdown::Both);
        self.counters.closed += 1;
    }

    /// Stops accepting and tells every client the server is going away.
    pub fn begin_drain(&mut self, registry: &Registry) {
        self.draining = true;
        for listener in &mut self.listeners {
            let _ = registry.deregister(&mut listener.socket);
        }
        let indices: Vec<usize> = self.connections.iter().map(|(index, _)| index).collect();
        for index in indices {
            let connection = &mut self.connections[index];
            match &mut connection.phase {
                Phase::WebSocket(state) => {
                    state.session.close(ErrorCode::ServerDraining, "server draining")
                }
                Phase::Http(parser) => {
                    if parser.buffered_len() == 0 && connection.awaiting.is_none() {
                        connection.closing = true;
                    }
                }
            }
            self.mark_dirty(index);
        }
    }

    /// Writes a deferred answer to the connection that asked, if it is
    /// still there and still waiting, then goes on with requests it
    /// pipelined behind it. Returns false when the answer was dropped.
    pub fn complete_http<H: Host>(
        &mut self,
        target: HttpTarget,
        response: WebResponse,
        host: &mut H,
        now: Now,
    ) -> bool {
        debug_assert_eq!(target.version, HttpVersion::Http1);
        let TcpEndpoint { connections, options, counters, draining, shard, .. } = self;
        let Some(connection) = connections.get_mut(target.connection) else { return false };
        if connection.serial != target.serial || connection.dead {
            return false;
        }
        let Some(awaiting) = connection.awaiting.take() else { return false };
        let keep_alive = awaiting.keep_alive && !*draining;
        let response = to_http1(response);
        response.encode(&mut connection.out, keep_alive, awaiting.head_only);
        if !keep_alive || response.closes_connection() {
            connection.closing = true;
        } else {
            connection.request_started_ms = None;
            connection.last_activity_ms = now.monotonic_ms;
            let context = Context {
                options,
                counters,
                draining: *draining,
                now,
                shard: *shard,
                index: target.connection,
            };
            handle_requests(connection, host, context);
            if *draining && connection.awaiting.is_none() {
                connection.closing = true;
            }
        }
        self.mark_dirty(target.connection);
        true
    }

    /// Drops every connection (the drain deadline passed).
    pub fn close_all<H: Host>(&mut self, registry: &Registry, host: &mut H) {
        let indices: Vec<usize> = self.connections.iter().map(|(index, _)| index).collect();
        for index in indices {
            self.remove(registry, index, host);
        }
    }
}

enum ReadOutcome {
    Data(usize),
    /// A short read: the socket's buffer is empty now, so the read that
    /// would only say WouldBlock is skipped (half the read syscalls under
    /// game load). Data arriving later raises a new edge-triggered event,
    /// as tokio relies on too.
    Drained(usize),
    /// TLS records were processed but no plaintext came out yet.
    Progress,
    WouldBlock,
    Closed,
}

fn read_plain(stream: &mut TcpStream, buffer: &mut [u8]) -> ReadOutcome {
    loop {
        return match stream.read(buffer) {
            Ok(0) => ReadOutcome::Closed,
            Ok(length) if length < buffer.len() => ReadOutcome::Drained(length),
            Ok(length) => ReadOutcome::Data(length),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => ReadOutcome::WouldBlock,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => ReadOutcome::Closed,
        };
    }
}

/// Plaintext first (rustls may hold some), then more records from the socket.
fn read_tls(
    tls: &mut rustls::ServerConnection,
    stream: &mut TcpStream,
    buffer: &mut [u8],
    counters: &mut TcpCounters,
) -> ReadOutcome {
    match tls.reader().read(buffer) {
        Ok(0) => return ReadOutcome::Closed, // close_notify
        Ok(length) => return ReadOutcome::Data(length),
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
        Err(_) => return ReadOutcome::Closed,
    }
    match tls.read_tls(stream) {
        Ok(0) => ReadOutcome::Closed,
        Ok(_) => match tls.process_new_packets() {
            Ok(_) => ReadOutcome::Progress,
            Err(error) => {
                counters.tls_errors += 1;
                tracing::debug!(%error, "TLS error");
                // The alert rustls queued goes out before the close.
                let _ = tls.write_tls(stream);
                ReadOutcome::Closed
            }
        },
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => ReadOutcome::WouldBlock,
        Err(error) if error.kind() == io::ErrorKind::Interrupted => ReadOutcome::Progress,
        Err(_) => ReadOutcome::Closed,
    }
}

/// What plaintext handling needs from the endpoint.
struct Context<'a> {
    options: &'a TcpOptions,
    counters: &'a mut TcpCounters,
    draining: bool,
    now: Now,
    shard: u16,
    /// The connection's slab index.
    index: usize,
}

fn handle_plaintext<H: Host>(
    connection: &mut Connection,
    data: &[u8],
    host: &mut H,
    context: Context<'_>,
) {
    if connection.closing {
        return;
    }
    match &mut connection.phase {
        Phase::Http(parser) => {
            parser.feed(data);
            handle_requests(connection, host, context);
        }
        Phase::WebSocket(state) => {
            state.decoder.feed(data);
            handle_websocket(state, &mut connection.out, &mut connection.closing, context.now);
        }
    }
}

fn handle_requests<H: Host>(connection: &mut Connection, host: &mut H, context: Context<'_>) {
    loop {
        if connection.awaiting.is_some() || connection.closing {
            return;
        }
        let Phase::Http(parser) = &mut connection.phase else { return };
        if parser.poll_continue() {
            connection.out.extend_from_slice(http1::CONTINUE_RESPONSE);
        }
        let request = match parser.next_request() {
            Ok(Some(request)) => request,
            Ok(None) => {
                connection.request_started_ms = (parser.buffered_len() > 0)
                    .then_some(connection.request_started_ms.unwrap_or(context.now.monotonic_ms));
                return;
            }
            Err(error) => {
                error.response().encode(&mut connection.out, false, false);
                connection.closing = true;
                return;
            }
        };
        connection.request_started_ms = None;
        context.counters.requests += 1;
        if request.path() == WEBSOCKET_PATH {
            upgrade(connection, &request, context);
            return;
        }
        let keep_alive = request.keep_alive && !context.draining;
        let head_only = request.method == Method::Head;
        let target = HttpTarget {
            shard: context.shard,
            version: HttpVersion::Http1,
            connection: context.index,
            serial: connection.serial,
            stream_id: 0,
            head_only,
        };
        let routed = host.http(
            &HttpRequest {
                method: request.method.as_str(),
                path: request.path(),
                query: request.query(),
                headers: Headers::Http1(&request.headers),
                body: &request.body,
                peer: connection.peer,
            },
            target,
            context.now,
        );
        let routed = match routed {
            HttpAnswer::Ready(routed) => routed,
            HttpAnswer::Deferred => {
                let since_ms = context.now.monotonic_ms;
                connection.awaiting = Some(Awaiting { keep_alive, head_only, since_ms });
                return;
            }
        };
        let response = to_http1(routed);
        response.encode(&mut connection.out, keep_alive, head_only);
        if !keep_alive || response.closes_connection() {
            connection.closing = true;
            return;
        }
    }
}

fn to_http1(routed: WebResponse) -> Response {
    let mut response = Response::with_body(routed.status, routed.content_type, routed.body);
    for (name, value) in &routed.headers {
        response = response.header(name, value);
    }
    response
}

/// Switches the connection to a WebSocket session (or refuses the upgrade).
fn upgrade(connection: &mut Connection, request: &http1::Request, context: Context<'_>) {
    if !request.is_websocket_upgrade() {
        let response =
            http1::error_response(426, "upgrade_required", "/ws takes WebSocket upgrades only")
                .header("upgrade", "websocket");
        response.encode(&mut connection.out, false, false);
        connection.closing = true;
        return;
    }
    // Browsers send an Origin with every WebSocket; refusing foreign ones
    // stops other sites from opening sessions with a visitor's cookies.
    if let Some(origin) = request.header("origin") {
        if !origin_allowed(origin, &context.options.allowed_origins) {
            let response = http1::error_response(
                403,
                "origin_not_allowed",
                "this origin may not open sessions",
            );
            response.encode(&mut connection.out, false, false);
            connection.closing = true;
            return;
        }
    }
    let handshake = match ws::accept(request, &[WEBSOCKET_PROTOCOL]) {
        Ok(handshake) => handshake,
        Err(error) => {
            error.response().encode(&mut connection.out, false, false);
            connection.closing = true;
            return;
        }
    };
    handshake.response.encode(&mut connection.out, true, false);
    let Phase::Http(parser) = &mut connection.phase else { return };
    let leftover = parser.take_buffered();
    let mut decoder = ws::Decoder::new(context.options.websocket);
    decoder.feed(&leftover);
    let mut state = Box::new(WebSocketState {
        decoder,
        frames: FrameDecoder::new(),
        session: Session::new(context.options.session.clone(), context.now.monotonic_ms),
        close: CloseState::default(),
        host_knows: false,
    });
    context.counters.websocket_sessions += 1;
    handle_websocket(&mut state, &mut connection.out, &mut connection.closing, context.now);
    connection.phase = Phase::WebSocket(state);
}

/// Decodes WebSocket messages into protocol frames for the session.
fn handle_websocket(state: &mut WebSocketState, out: &mut BytesMut, closing: &mut bool, now: Now) {
    loop {
        let incoming = match state.decoder.next() {
            Ok(Some(incoming)) => incoming,
            Ok(None) => return,
            Err(error) => {
                state.session.close(ErrorCode::Malformed, error.reason);
                flush_session(state, out);
                error.encode_close(out);
                state.close.on_close_sent();
                *closing = true;
                return;
            }
        };
        match incoming {
            Incoming::Binary(message) => {
                state.frames.extend(&message);
                loop {
                    match state.frames.next_body() {
                        Ok(Some(body)) => state.session.handle_frame(&body, now),
                        Ok(None) => break,
                        Err(error) => {
                            state.session.handle_framing_error(error);
                            break;
                        }
                    }
                }
                // A frame split across messages breaks PROTOCOL.md 1.2.
                if state.frames.buffered() > 0 {
                    state.frames = FrameDecoder::new();
                    state.session.handle_framing_error(DecodeError::Truncated { needed: 1 });
                }
            }
            Incoming::Text(_) => {
                state.session.close(
                    ErrorCode::UnexpectedMessage,
                    "text messages are not part of the protocol",
                );
                flush_session(state, out);
                ws::encode_close(ws::close_code::UNSUPPORTED_DATA, "binary messages only", out);
                state.close.on_close_sent();
                *closing = true;
                return;
            }
            Incoming::Ping(payload) => ws::encode_pong(&payload, out),
            Incoming::Pong(_) => {}
            Incoming::Close(_) => {
                if state.close.on_close_received() {
                    ws::encode_close(ws::close_code::NORMAL, "", out);
                    state.close.on_close_sent();
                }
                if state.session.state() != crate::proto::session::State::Closed {
                    state.session.close(ErrorCode::None, "client closed");
                    // The client closed: it will not read a Bye.
                    let _ = state.session.poll_transmit();
                }
                *closing = true;
                return;
            }
        }
    }
}

/// Session output as binary WebSocket messages.
fn flush_session(state: &mut WebSocketState, out: &mut BytesMut) {
    if let Some(frames) = state.session.poll_transmit() {
        if state.close.can_send_data() {
            ws::encode_binary_header(frames.len(), out);
            out.extend_from_slice(&frames);
        }
    }
}

fn pump_session<H: Host>(
    state: &mut WebSocketState,
    out: &mut BytesMut,
    closing: &mut bool,
    session_ref: SessionRef,
    host: &mut H,
    now: Now,
) {
    let end = pump_events(&mut state.session, session_ref, &mut state.host_knows, host, now);
    flush_session(state, out);
    if let Some(end) = end {
        // After either side's Bye the WebSocket closes cleanly.
        if state.close.can_send_data() {
            ws::encode_close(close_code_for(end.code), end.code.name(), out);
            state.close.on_close_sent();
        }
        *closing = true;
    }
}

/// The WebSocket close code for a Bye code (PROTOCOL.md section 1.2).
fn close_code_for(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::None => ws::close_code::NORMAL,
        ErrorCode::ServerDraining => ws::close_code::GOING_AWAY,
        ErrorCode::Internal | ErrorCode::Busy => ws::close_code::INTERNAL_ERROR,
        _ => ws::close_code::POLICY_VIOLATION,
    }
}

/// Writes pending output: plaintext into rustls, records to the socket.
fn write_out(connection: &mut Connection, counters: &mut TcpCounters) {
    match connection.tls.as_mut() {
        Some(tls) => {
            while !connection.out.is_empty() {
                match tls.writer().write(&connection.out) {
                    Ok(0) | Err(_) => break,
                    Ok(written) => connection.out.advance(written),
                }
            }
            if connection.closing && connection.out.is_empty() && !connection.close_notify_sent {
                tls.send_close_notify();
                connection.close_notify_sent = true;
            }
            while tls.wants_write() {
                match tls.write_tls(&mut connection.stream) {
                    Ok(_) => {}
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        connection.dead = true;
                        counters.tls_errors += 1;
                        break;
                    }
                }
            }
        }
        None => {
            while !connection.out.is_empty() {
                match connection.stream.write(&connection.out) {
                    Ok(0) => break,
                    Ok(written) => connection.out.advance(written),
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        connection.dead = true;
                        break;
                    }
                }
            }
        }
    }
}
