//! The server side of HTTP/3 on one QUIC connection, sans-IO: which stream
//! is which, the SETTINGS exchange, requests and responses, WebTransport
//! sessions (extended CONNECT, their streams, datagrams and capsules),
//! GOAWAY, and the error policy of RFC 9114, RFC 9204, RFC 9297 and
//! draft-ietf-webtrans-http3.
//!
//! # Contract
//!
//! What it owns: the HTTP/3 state of one connection, composed from the
//! codecs of this module (see the module docs of [`super`]).
//!
//! What it never does: touch quiche, a socket or a clock. QUIC is reached
//! through the small [`QuicStreams`] trait, so tests drive it in memory with
//! a fake and the reactor implements it for `quiche::Connection`.
//!
//! Shape (as in quinn-proto): inputs are [`H3Connection::handle_readable`]
//! and [`H3Connection::handle_datagrams`]; commands ([`H3Connection::respond`],
//! [`H3Connection::accept_webtransport`], ...) only queue output; output is
//! written by [`H3Connection::flush`] and events come out of
//! [`H3Connection::poll_event`]. A driver calls, per wake-up: the two
//! `handle_*`, then `poll_event` until `None` (acting on each with
//! commands), then `flush`. When [`H3Connection::wants_read`] is true a read
//! budget ran out: call again soon even if no packet arrives.
//!
//! Limits: at most [`H3Config::max_streams`] peer streams are tracked (more
//! is H3_EXCESSIVE_LOAD); request bodies are capped per request and per
//! connection; every stream's send buffer is capped; each `handle_*` call
//! reads a bounded number of bytes and datagrams. One WebTransport session
//! per connection (we advertise WEBTRANSPORT_MAX_SESSIONS = 1): a second
//! CONNECT gets 429.
//!
//! Every connection error closes the QUIC connection with its HTTP/3 code
//! (`quic.close`) and emits [`H3Event::ConnectionError`]; after it the
//! connection ignores all input and commands.
//!
//! Runs on the shard that owns the connection; holds no shared state.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

use super::capsule::{self, Capsule, CapsuleReader};
use super::error::{ErrorCode, H3Error};
use super::frame::{self, Event, FrameReader, StreamRole};
use super::headers::{self, HeadersError, RequestHead};
use super::qpack::{DecodeLimits, DecoderStreamReader, EncoderStreamReader};
use super::settings::Settings;
use super::stream::{self as uni, UniStreamHeaderReader, UniStreamKind};
use super::stream_table::StreamTable;

/// Our control stream: the first server-initiated unidirectional stream.
pub const CONTROL_STREAM_ID: u64 = 3;
/// The streams we open. No QPACK encoder or decoder stream: we use no
/// dynamic table and allow the peer none (QPACK_MAX_TABLE_CAPACITY 0),
/// so neither would ever carry an instruction, and RFC 9204 §4.2 lets an
/// endpoint skip both then. Each stream costs every connection memory for
/// its whole life, in quiche's stream map and in ours.
const LOCAL_STREAMS: [(u64, u64); 1] = [(CONTROL_STREAM_ID, uni::CONTROL)];

/// Peer streams tracked at once.
pub const MAX_STREAMS: usize = 256;
/// Largest request body; larger gets 413.
pub const MAX_REQUEST_BODY_LEN: usize = 1 << 20;
/// Request body bytes buffered per connection, all requests together;
/// past it a request gets 503.
pub const MAX_BUFFERED_BODY_LEN: usize = 4 << 20;
/// Bytes queued on one WebTransport stream or CONNECT stream and not yet
/// taken by QUIC.
pub const MAX_STREAM_SEND_BUFFER: usize = 256 * 1024;
/// Largest response body [`H3Connection::respond`] queues.
pub const MAX_RESPONSE_LEN: usize = 16 << 20;
/// Stream bytes read per [`H3Connection::handle_readable`].
pub const READ_BUDGET_BYTES: usize = 256 * 1024;
/// Datagrams read per [`H3Connection::handle_datagrams`].
pub const DATAGRAM_BUDGET: usize = 256;
/// Size of the read buffer in [`RecvBuffers`].
pub const SCRATCH_LEN: usize = 64 * 1024;
/// Allocation unit of the arena event data is cut from.
const ARENA_BLOCK: usize = 64 * 1024;

/// Why a QUIC stream operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamIoError {
    /// The peer reset the stream (RESET_STREAM) with this code.
    Reset(u64),
    /// The peer asked us to stop sending (STOP_SENDING) with this code.
    Stopped(u64),
    /// The stream cannot be used: unknown, finished, or the connection
    /// failed.
    Closed,
}

/// The QUIC operations HTTP/3 needs. Implemented for `quiche::Connection`
/// by the reactor and by an in-memory fake in the tests.
pub trait QuicStreams {
    /// Stream ids with data (or FIN/reset) to read.
    fn readable(&mut self, out: &mut Vec<u64>);
    /// Ok((0, false)) when nothing to read now; Err on a reset stream (carry the code).
    fn stream_recv(
        &mut self,
        stream_id: u64,
        buf: &mut [u8],
    ) -> Result<(usize, bool), StreamIoError>;
    /// Bytes accepted (may be fewer than offered under flow control). FIN
    /// is sent only when all of `data` is accepted.
    fn stream_send(
        &mut self,
        stream_id: u64,
        data: &[u8],
        fin: bool,
    ) -> Result<usize, StreamIoError>;
    /// STOP_SENDING.
    fn stream_shutdown_read(&mut self, stream_id: u64, code: u64);
    /// RESET_STREAM.
    fn stream_reset(&mut self, stream_id: u64, code: u64);
    fn dgram_recv(&mut self, buf: &mut [u8]) -> Option<usize>;
    /// False if dropped (queue full / too big).
    fn dgram_send(&mut self, data: &[u8]) -> bool;
    fn dgram_max_writable_len(&self) -> Option<usize>;
    /// CONNECTION_CLOSE (application).
    fn close(&mut self, code: u64, reason: &[u8]);
    fn is_established(&self) -> bool;
}

/// Limits of one connection; [`H3Config::default`] holds the constants of
/// this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H3Config {
    pub max_streams: usize,
    pub max_request_body_len: usize,
    pub max_buffered_body_len: usize,
    pub max_stream_send_buffer: usize,
    pub max_response_len: usize,
    pub read_budget_bytes: usize,
    pub datagram_budget: usize,
    pub decode_limits: DecodeLimits,
}

impl Default for H3Config {
    fn default() -> Self {
        H3Config {
            max_streams: MAX_STREAMS,
            max_request_body_len: MAX_REQUEST_BODY_LEN,
            max_buffered_body_len: MAX_BUFFERED_BODY_LEN,
            max_stream_send_buffer: MAX_STREAM_SEND_BUFFER,
            max_response_len: MAX_RESPONSE_LEN,
            read_budget_bytes: READ_BUDGET_BYTES,
            datagram_budget: DATAGRAM_BUDGET,
            decode_limits: DecodeLimits::DEFAULT,
        }
    }
}

/// Buffers the reads go through, owned by the driver and shared by all its
/// connections: a read buffer, and an arena the `Bytes` of
/// [`H3Event::WebTransportData`] and [`H3Event::Datagram`] are cut from.
/// Once the driver drops those `Bytes` (before the next connection's
/// reads), the arena's memory is reused: no allocation per packet.
pub struct RecvBuffers {
    scratch: Box<[u8]>,
    arena: BytesMut,
}

impl RecvBuffers {
    pub fn new() -> RecvBuffers {
        RecvBuffers { scratch: vec![0; SCRATCH_LEN].into_boxed_slice(), arena: BytesMut::new() }
    }
}

impl Default for RecvBuffers {
    fn default() -> Self {
        RecvBuffers::new()
    }
}

/// Copies `data` into the arena and hands it out as `Bytes`.
fn share(arena: &mut BytesMut, data: &[u8]) -> Bytes {
    if arena.capacity() < data.len() {
        // Reclaims the block when every earlier piece was dropped.
        arena.reserve(ARENA_BLOCK.max(data.len()));
    }
    arena.extend_from_slice(data);
    arena.split().freeze()
}

/// What the application must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum H3Event {
    /// A complete request other than CONNECT: answer with
    /// [`H3Connection::respond`] or [`H3Connection::reject_request`].
    // The heads are boxed: the event queue's elements are as large as the
    // largest event, and the queue keeps its allocation for the life of
    // the connection (datagrams and stream data pass through it).
    Request { stream_id: u64, head: Box<RequestHead>, body: Vec<u8> },
    /// An extended CONNECT asking for a WebTransport session (the peer's
    /// SETTINGS allow WebTransport). Path and origin policy is the
    /// caller's: [`H3Connection::accept_webtransport`] or
    /// [`H3Connection::reject_request`].
    WebTransportConnect { stream_id: u64, head: Box<RequestHead> },
    /// The client opened a bidirectional stream of an accepted session.
    WebTransportStream { session_id: u64, stream_id: u64 },
    /// The client opened a unidirectional stream of an accepted session.
    WebTransportUniStream { session_id: u64, stream_id: u64 },
    /// Bytes of a WebTransport stream (bidirectional or unidirectional);
    /// `fin` marks the end of the client's side.
    WebTransportData { session_id: u64, stream_id: u64, data: Bytes, fin: bool },
    /// The client reset its side of a WebTransport stream, or asked us to
    /// stop sending on it; `error_code` is its WebTransport code if any.
    WebTransportStreamAborted { session_id: u64, stream_id: u64, error_code: Option<u32> },
    /// A datagram of an accepted session.
    Datagram { session_id: u64, payload: Bytes },
    /// The client ended a session it asked for (CLOSE_WEBTRANSPORT_SESSION,
    /// or the CONNECT stream's FIN or reset: code 0, empty reason). Not
    /// emitted for a session the application itself closed or rejected.
    SessionClosed { session_id: u64, code: u32, reason: String },
    /// The client sent GOAWAY (it opens no more requests).
    GoAway { id: u64 },
    /// The connection failed and was closed with this code.
    ConnectionError { code: ErrorCode, reason: &'static str },
}

/// Why a command was refused. Nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CommandError {
    #[error("no such stream")]
    UnknownStream,
    #[error("the stream is not in a state that allows this")]
    InvalidState,
    #[error("the stream's send buffer is full")]
    BufferFull,
    #[error("response body too large")]
    TooLarge,
    #[error("status code out of range")]
    InvalidStatus,
    #[error("the connection is closed")]
    Closed,
}

/// The send and receive bookkeeping of one stream.
#[derive(Debug, Default)]
struct StreamIo {
    /// Bytes not yet taken by QUIC.
    out: BytesMut,
    /// FIN goes out once `out` is written.
    fin_pending: bool,
    /// Nothing more may be queued: FIN queued, reset, or no send side.
    send_closed: bool,
    /// Nothing more is read: FIN or reset read, or STOP_SENDING decided.
    recv_done: bool,
    /// STOP_SENDING to issue.
    stop: Option<ErrorCode>,
    /// RESET_STREAM to issue.
    reset: Option<ErrorCode>,
    /// In the flush queue.
    queued: bool,
}

impl StreamIo {
    /// A peer's unidirectional stream: nothing to send.
    fn receive_only() -> StreamIo {
        StreamIo { send_closed: true, ..StreamIo::default() }
    }

    /// One of our unidirectional streams: nothing to read.
    fn send_only() -> StreamIo {
        StreamIo { recv_done: true, ..StreamIo::default() }
    }

    fn has_output(&self) -> bool {
        !self.out.is_empty() || self.fin_pending || self.stop.is_some() || self.reset.is_some()
    }

    fn is_finished(&self) -> bool {
        self.recv_done && self.send_closed && !self.has_output()
    }

    /// Queues FIN after what is buffered.
    fn finish(&mut self) {
        if !self.send_closed {
            self.send_closed = true;
            self.fin_pending = true;
        }
    }

    fn stop_reading(&mut self, code: ErrorCode) {
        if !self.recv_done {
            self.recv_done = true;
            self.stop = Some(code);
        }
    }

    fn reset_sending(&mut self, code: ErrorCode) {
        if self.send_closed && self.out.is_empty() && !self.fin_pending {
            return; // Everything was written already (or there is no send side).
        }
        self.out.clear();
        self.fin_pending = false;
        self.send_closed = true;
        self.reset = Some(code);
    }

    fn abort(&mut self, code: ErrorCode) {
        self.stop_reading(code);
        self.reset_sending(code);
    }
}

/// Where a client's bidirectional stream is.
#[derive(Debug)]
enum Phase {
    /// Waiting for HEADERS.
    Head,
    /// A request: collecting its body until FIN.
    Body { head: RequestHead, body: Vec<u8>, trailers: bool },
    /// The request is complete and with the application.
    Answering,
    /// A WebTransport CONNECT: DATA carries capsules. `answered` once the
    /// 200 is queued.
    Connect { capsules: CapsuleReader, answered: bool },
    /// Answered or refused: whatever else arrives is ignored.
    Discard,
}

#[derive(Debug)]
struct Request {
    reader: FrameReader,
    phase: Phase,
}

#[derive(Debug)]
enum Kind {
    /// One of our own unidirectional streams.
    Local,
    /// A peer's unidirectional stream whose type is not read yet.
    UniHeader(UniStreamHeaderReader),
    // The two large variants are boxed: every stream of a connection pays
    // for the largest variant inline, and an idle WebTransport session
    // holds about eight streams (docs/BENCHMARKS.md, memory per session).
    Control(Box<FrameReader>),
    QpackEncoder(EncoderStreamReader),
    QpackDecoder(DecoderStreamReader),
    Request(Box<Request>),
    /// A WebTransport stream, bidirectional or unidirectional.
    WebTransport {
        session_id: u64,
    },
}

#[derive(Debug)]
struct Stream {
    kind: Kind,
    io: StreamIo,
}

#[derive(Debug, PartialEq, Eq)]
enum SlotState {
    /// The CONNECT came before the peer's SETTINGS: it waits here.
    AwaitingSettings(Box<RequestHead>),
    /// The application was told and decides.
    Pending,
    Accepted,
    Closed,
}

/// The one WebTransport session a connection may hold.
#[derive(Debug)]
struct SessionSlot {
    stream_id: u64,
    state: SlotState,
}

fn is_client_bidi(stream_id: u64) -> bool {
    stream_id & 3 == 0
}

fn is_client_uni(stream_id: u64) -> bool {
    stream_id & 3 == 2
}

fn error(code: ErrorCode, reason: &'static str) -> H3Error {
    H3Error { code, reason }
}

/// Adds a stream to the flush queue if it has something to write.
fn enqueue(queue: &mut Vec<u64>, stream_id: u64, io: &mut StreamIo) {
    if !io.queued && io.has_output() {
        io.queued = true;
        queue.push(stream_id);
    }
}

/// Queues a whole response: HEADERS, DATA (when there is a body), FIN.
fn write_response(io: &mut StreamIo, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    debug_assert!(
        headers.iter().all(|(name, _)| !name.bytes().any(|byte| byte.is_ascii_uppercase())),
        "HTTP/3 field names are lowercase"
    );
    headers::encode_response_headers_frame(status, headers, &mut io.out);
    if !body.is_empty() {
        frame::encode_frame_header(frame::DATA, body.len() as u64, &mut io.out);
        io.out.extend_from_slice(body);
    }
    io.finish();
}

/// Answers a request we do not hand to the application, and stops reading
/// it (H3_NO_ERROR, as RFC 9114 §4.1.1 asks of an early response).
fn answer_early(io: &mut StreamIo, status: u16) {
    if !io.send_closed {
        write_response(io, status, &[], &[]);
    }
    io.stop_reading(ErrorCode::NO_ERROR);
}

/// The HTTP/3 server state of one QUIC connection.
#[derive(Debug)]
pub struct H3Connection {
    config: H3Config,
    streams: StreamTable<Stream>,
    /// Streams with output or actions for QUIC, in the order they got them.
    flush_queue: Vec<u64>,
    events: VecDeque<H3Event>,
    /// Reused for `QuicStreams::readable`.
    readable: Vec<u64>,
    /// Reused to build outgoing datagrams.
    datagram_out: Vec<u8>,
    peer_settings: Option<Settings>,
    peer_control: Option<u64>,
    peer_encoder: Option<u64>,
    peer_decoder: Option<u64>,
    peer_goaway: Option<u64>,
    peer_max_push_id: Option<u64>,
    session: Option<SessionSlot>,
    /// The lowest client bidirectional stream id not seen yet.
    next_request_id: u64,
    goaway_sent: Option<u64>,
    /// Request body bytes buffered, all streams.
    body_bytes: usize,
    streams_pending: bool,
    datagrams_pending: bool,
    error: Option<H3Error>,
}

impl Default for H3Connection {
    fn default() -> Self {
        H3Connection::new(H3Config::default())
    }
}

impl H3Connection {
    /// A connection whose control stream is queued, to go out
    /// on the first `flush` after the QUIC handshake.
    pub fn new(config: H3Config) -> H3Connection {
        let mut connection = H3Connection {
            config,
            streams: StreamTable::default(),
            flush_queue: Vec::new(),
            events: VecDeque::new(),
            readable: Vec::new(),
            datagram_out: Vec::new(),
            peer_settings: None,
            peer_control: None,
            peer_encoder: None,
            peer_decoder: None,
            peer_goaway: None,
            peer_max_push_id: None,
            session: None,
            next_request_id: 0,
            goaway_sent: None,
            body_bytes: 0,
            streams_pending: false,
            datagrams_pending: false,
            error: None,
        };
        for (stream_id, stream_type) in LOCAL_STREAMS {
            let mut io = StreamIo::send_only();
            uni::encode_stream_type(stream_type, &mut io.out);
            if stream_id == CONTROL_STREAM_ID {
                Settings::server().encode_frame(&mut io.out);
            }
            enqueue(&mut connection.flush_queue, stream_id, &mut io);
            connection.streams.insert(stream_id, Stream { kind: Kind::Local, io });
        }
        connection
    }

    // Getters.

    /// The peer's SETTINGS, once received.
    pub fn peer_settings(&self) -> Option<&Settings> {
        self.peer_settings.as_ref()
    }

    /// The connection error that closed the connection, if any.
    pub fn error(&self) -> Option<H3Error> {
        self.error
    }

    pub fn is_closed(&self) -> bool {
        self.error.is_some()
    }

    /// A read budget ran out with input left: call `handle_*` again soon.
    pub fn wants_read(&self) -> bool {
        self.error.is_none() && (self.streams_pending || self.datagrams_pending)
    }

    /// Output waits for `flush` (or for QUIC flow control).
    pub fn has_pending_output(&self) -> bool {
        !self.flush_queue.is_empty()
    }

    /// Events wait for `poll_event`.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Client bidirectional streams still open that are not WebTransport
    /// sessions or streams: requests in progress.
    pub fn active_requests(&self) -> usize {
        self.streams
            .values()
            .filter(|stream| {
                matches!(&stream.kind, Kind::Request(request)
                    if !matches!(request.phase, Phase::Connect { .. }))
            })
            .count()
    }

    /// Streams tracked now, ours included.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Whether the stream exists and more may be queued on it.
    pub fn is_writable(&self, stream_id: u64) -> bool {
        self.streams.get(&stream_id).is_some_and(|stream| !stream.io.send_closed)
    }

    /// Bytes that [`H3Connection::send_wt_stream`] would take on this
    /// stream now (0 for a stream that cannot be written).
    pub fn send_capacity(&self, stream_id: u64) -> usize {
        match self.streams.get(&stream_id) {
            Some(stream) if !stream.io.send_closed => {
                self.config.max_stream_send_buffer.saturating_sub(stream.io.out.len())
            }
            _ => 0,
        }
    }

    /// The next event for the application.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<H3Event> {
        self.events.pop_front()
    }

    // Inputs.

    /// Reads every readable stream until it yields nothing or the read
    /// budget is spent (then [`H3Connection::wants_read`] is true).
    pub fn handle_readable(&mut self, quic: &mut impl QuicStreams, buffers: &mut RecvBuffers) {
        self.streams_pending = false;
        if self.error.is_some() || !quic.is_established() {
            return;
        }
        let mut readable = std::mem::take(&mut self.readable);
        readable.clear();
        quic.readable(&mut readable);
        let mut budget = self.config.read_budget_bytes;
        for &stream_id in &readable {
            if self.error.is_some() {
                break;
            }
            if budget == 0 {
                self.streams_pending = true;
                break;
            }
            self.read_stream(quic, stream_id, buffers, &mut budget);
        }
        readable.clear();
        self.readable = readable;
    }

    /// Reads datagrams (at most the datagram budget).
    pub fn handle_datagrams(&mut self, quic: &mut impl QuicStreams, buffers: &mut RecvBuffers) {
        self.datagrams_pending = false;
        if self.error.is_some() {
            return;
        }
        let RecvBuffers { scratch, arena } = buffers;
        for _ in 0..self.config.datagram_budget {
            let Some(len) = quic.dgram_recv(scratch) else { return };
            let (session_id, payload) = match capsule::parse_datagram(&scratch[..len]) {
                Ok(parsed) => parsed,
                Err(datagram_error) => return self.fail(quic, datagram_error.into()),
            };
            // Datagrams of unknown or closed sessions are dropped (RFC 9297
            // §2.1 allows dropping instead of buffering).
            if self.session_state(session_id) == Some(&SlotState::Accepted) {
                let payload = share(arena, payload);
                self.events.push_back(H3Event::Datagram { session_id, payload });
            }
        }
        self.datagrams_pending = true;
    }

    // Commands.

    /// Answers a request from [`H3Event::Request`]: HEADERS, DATA, FIN.
    /// Field names must be lowercase.
    pub fn respond(
        &mut self,
        stream_id: u64,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), CommandError> {
        self.check_open()?;
        if !(200..=599).contains(&status) {
            return Err(CommandError::InvalidStatus);
        }
        if body.len() > self.config.max_response_len {
            return Err(CommandError::TooLarge);
        }
        let stream = self.streams.get_mut(&stream_id).ok_or(CommandError::UnknownStream)?;
        let Kind::Request(request) = &mut stream.kind else {
            return Err(CommandError::InvalidState);
        };
        if !matches!(request.phase, Phase::Answering) || stream.io.send_closed {
            return Err(CommandError::InvalidState);
        }
        write_response(&mut stream.io, status, headers, body);
        request.phase = Phase::Discard;
        enqueue(&mut self.flush_queue, stream_id, &mut stream.io);
        Ok(())
    }

    /// Accepts the WebTransport session of [`H3Event::WebTransportConnect`]
    /// with `:status 200`; its CONNECT stream becomes a capsule tunnel.
    pub fn accept_webtransport(&mut self, session_id: u64) -> Result<(), CommandError> {
        self.check_open()?;
        let slot = self
            .session
            .as_mut()
            .filter(|slot| slot.stream_id == session_id)
            .ok_or(CommandError::UnknownStream)?;
        if slot.state != SlotState::Pending {
            return Err(CommandError::InvalidState);
        }
        let stream = self.streams.get_mut(&session_id).ok_or(CommandError::UnknownStream)?;
        let Kind::Request(request) = &mut stream.kind else {
            return Err(CommandError::InvalidState);
        };
        let Phase::Connect { answered, .. } = &mut request.phase else {
            return Err(CommandError::InvalidState);
        };
        if stream.io.send_closed {
            return Err(CommandError::InvalidState);
        }
        headers::encode_response_headers_frame(200, &[], &mut stream.io.out);
        *answered = true;
        slot.state = SlotState::Accepted;
        enqueue(&mut self.flush_queue, session_id, &mut stream.io);
        Ok(())
    }

    /// Refuses a request or a WebTransport CONNECT with `status` (a bare
    /// response and FIN) and stops reading it.
    pub fn reject_request(&mut self, stream_id: u64, status: u16) -> Result<(), CommandError> {
        self.check_open()?;
        if !(200..=599).contains(&status) {
            return Err(CommandError::InvalidStatus);
        }
        let stream = self.streams.get_mut(&stream_id).ok_or(CommandError::UnknownStream)?;
        let Kind::Request(request) = &mut stream.kind else {
            return Err(CommandError::InvalidState);
        };
        match request.phase {
            Phase::Answering | Phase::Connect { answered: false, .. } => {}
            _ => return Err(CommandError::InvalidState),
        }
        if stream.io.send_closed {
            return Err(CommandError::InvalidState);
        }
        answer_early(&mut stream.io, status);
        request.phase = Phase::Discard;
        enqueue(&mut self.flush_queue, stream_id, &mut stream.io);
        if self.session.as_ref().is_some_and(|slot| slot.stream_id == stream_id) {
            self.session = None;
        }
        Ok(())
    }

    /// Queues bytes (and FIN) on a client-opened bidirectional WebTransport
    /// stream of an accepted session. All or nothing: refused with
    /// `BufferFull` past [`H3Config::max_stream_send_buffer`] (see
    /// [`H3Connection::send_capacity`]).
    pub fn send_wt_stream(
        &mut self,
        stream_id: u64,
        data: &[u8],
        fin: bool,
    ) -> Result<(), CommandError> {
        self.check_open()?;
        let stream = self.streams.get_mut(&stream_id).ok_or(CommandError::UnknownStream)?;
        let Kind::WebTransport { session_id } = stream.kind else {
            return Err(CommandError::InvalidState);
        };
        let accepted = self
            .session
            .as_ref()
            .is_some_and(|slot| slot.stream_id == session_id && slot.state == SlotState::Accepted);
        if !is_client_bidi(stream_id) || !accepted || stream.io.send_closed {
            return Err(CommandError::InvalidState);
        }
        if stream.io.out.len() + data.len() > self.config.max_stream_send_buffer {
            return Err(CommandError::BufferFull);
        }
        stream.io.out.extend_from_slice(data);
        if fin {
            stream.io.finish();
        }
        enqueue(&mut self.flush_queue, stream_id, &mut stream.io);
        Ok(())
    }

    /// Aborts a WebTransport stream with an application error code: resets
    /// our side (bidirectional streams) and asks the client to stop sending.
    pub fn abort_wt_stream(&mut self, stream_id: u64, error_code: u32) -> Result<(), CommandError> {
        self.check_open()?;
        let stream = self.streams.get_mut(&stream_id).ok_or(CommandError::UnknownStream)?;
        if !matches!(stream.kind, Kind::WebTransport { .. }) {
            return Err(CommandError::InvalidState);
        }
        stream.io.abort(ErrorCode::from_webtransport(error_code));
        enqueue(&mut self.flush_queue, stream_id, &mut stream.io);
        Ok(())
    }

    /// Sends a datagram of an accepted session, prefixed with its Quarter
    /// Stream ID. False when it cannot go: no such session, too large for
    /// the path, or QUIC's queue is full.
    pub fn send_datagram(
        &mut self,
        quic: &mut impl QuicStreams,
        session_id: u64,
        payload: &[u8],
    ) -> bool {
        if self.error.is_some() || self.session_state(session_id) != Some(&SlotState::Accepted) {
            return false;
        }
        let len = capsule::datagram_prefix_len(session_id) + payload.len();
        if quic.dgram_max_writable_len().is_none_or(|max| len > max) {
            return false;
        }
        self.datagram_out.clear();
        capsule::encode_datagram_prefix(session_id, &mut self.datagram_out);
        self.datagram_out.extend_from_slice(payload);
        quic.dgram_send(&self.datagram_out)
    }

    /// Closes an accepted session: CLOSE_WEBTRANSPORT_SESSION and FIN on its
    /// CONNECT stream. Its bidirectional streams get FIN after what is
    /// queued on them (so a last message still arrives) and the client is
    /// asked to stop sending on all of them (WT_SESSION_GONE).
    pub fn close_session(
        &mut self,
        session_id: u64,
        error_code: u32,
        reason: &str,
    ) -> Result<(), CommandError> {
        self.check_open()?;
        let slot = self
            .session
            .as_mut()
            .filter(|slot| slot.stream_id == session_id)
            .ok_or(CommandError::UnknownStream)?;
        if slot.state != SlotState::Accepted {
            return Err(CommandError::InvalidState);
        }
        slot.state = SlotState::Closed;
        let H3Connection { streams, flush_queue, .. } = self;
        for (&stream_id, stream) in streams.iter_mut() {
            match &stream.kind {
                Kind::WebTransport { session_id: owner } if *owner == session_id => {
                    stream.io.finish();
                    stream.io.stop_reading(ErrorCode::WT_SESSION_GONE);
                }
                Kind::Request(_) if stream_id == session_id => {
                    if !stream.io.send_closed {
                        capsule::encode_close_session_frame(error_code, reason, &mut stream.io.out);
                    }
                    stream.io.finish();
                }
                _ => continue,
            }
            enqueue(flush_queue, stream_id, &mut stream.io);
        }
        Ok(())
    }

    /// Starts a graceful drain: GOAWAY with the first request stream id we
    /// have not seen; requests on that stream or later are refused with
    /// H3_REQUEST_REJECTED. Repeating it never raises the id.
    pub fn goaway(&mut self) {
        if self.error.is_some() {
            return;
        }
        let id = self.next_request_id;
        if self.goaway_sent.is_some_and(|sent| sent <= id) {
            return;
        }
        self.goaway_sent = Some(id);
        let H3Connection { streams, flush_queue, .. } = self;
        if let Some(control) = streams.get_mut(&CONTROL_STREAM_ID) {
            frame::encode_goaway(id, &mut control.io.out);
            enqueue(flush_queue, CONTROL_STREAM_ID, &mut control.io);
        }
    }

    // Output.

    /// Writes queued output to QUIC, as much as flow control takes; the
    /// rest stays queued for the next call.
    pub fn flush(&mut self, quic: &mut impl QuicStreams) {
        if self.error.is_some() || !quic.is_established() {
            return;
        }
        let mut queue = std::mem::take(&mut self.flush_queue);
        let mut critical = None;
        let H3Connection { streams, events, session, .. } = self;
        queue.retain(|&stream_id| {
            let Some(stream) = streams.get_mut(&stream_id) else { return false };
            let blocked = write_stream(quic, stream_id, stream, &mut critical, events);
            stream.io.queued = blocked;
            if !blocked && stream.io.is_finished() {
                streams.remove(&stream_id);
                if session.as_ref().is_some_and(|slot| slot.stream_id == stream_id) {
                    *session = None;
                }
            }
            blocked
        });
        // Nothing queues during the loop; keep the allocation.
        queue.append(&mut self.flush_queue);
        self.flush_queue = queue;
        if let Some(critical) = critical {
            self.fail(quic, critical);
        }
    }

    // Internals.

    fn check_open(&self) -> Result<(), CommandError> {
        match self.error {
            Some(_) => Err(CommandError::Closed),
            None => Ok(()),
        }
    }

    fn session_state(&self, session_id: u64) -> Option<&SlotState> {
        self.session.as_ref().filter(|slot| slot.stream_id == session_id).map(|slot| &slot.state)
    }

    /// A connection error: close QUIC with its code, tell the application.
    fn fail(&mut self, quic: &mut impl QuicStreams, failure: H3Error) {
        if self.error.is_some() {
            return;
        }
        self.error = Some(failure);
        quic.close(failure.code.0, failure.reason.as_bytes());
        self.events
            .push_back(H3Event::ConnectionError { code: failure.code, reason: failure.reason });
    }

    /// Reads one stream until it has nothing more, it ends, or the budget
    /// is spent. The stream is taken out of the map while it is worked on.
    fn read_stream(
        &mut self,
        quic: &mut impl QuicStreams,
        stream_id: u64,
        buffers: &mut RecvBuffers,
        budget: &mut usize,
    ) {
        let mut stream = match self.streams.remove(&stream_id) {
            Some(stream) => stream,
            None => match self.open_peer_stream(quic, stream_id) {
                Some(stream) => stream,
                None => return,
            },
        };
        let RecvBuffers { scratch, arena } = buffers;
        while self.error.is_none() {
            if stream.io.recv_done {
                discard_input(quic, stream_id, &mut stream.io, scratch, budget);
                break;
            }
            if *budget == 0 {
                self.streams_pending = true;
                break;
            }
            let len = scratch.len().min(*budget);
            match quic.stream_recv(stream_id, &mut scratch[..len]) {
                Ok((0, false)) => break,
                Ok((read, fin)) => {
                    *budget -= read;
                    self.on_stream_input(
                        quic,
                        stream_id,
                        &mut stream,
                        &scratch[..read],
                        fin,
                        arena,
                    );
                    if fin {
                        stream.io.recv_done = true;
                        break;
                    }
                }
                Err(read_error) => {
                    let code = match read_error {
                        StreamIoError::Reset(code) => code,
                        _ => ErrorCode::NO_ERROR.0,
                    };
                    stream.io.recv_done = true;
                    self.on_stream_reset(quic, stream_id, &mut stream, code);
                    break;
                }
            }
        }
        self.put_back(quic, stream_id, stream);
    }

    /// A stream we have not seen: a new request or unidirectional stream.
    fn open_peer_stream(&mut self, quic: &mut impl QuicStreams, stream_id: u64) -> Option<Stream> {
        if !is_client_bidi(stream_id) && !is_client_uni(stream_id) {
            return None; // Ours; never readable.
        }
        if self.streams.len() >= self.config.max_streams + LOCAL_STREAMS.len() {
            self.fail(quic, error(ErrorCode::EXCESSIVE_LOAD, "too many streams"));
            return None;
        }
        if is_client_bidi(stream_id) {
            self.next_request_id = self.next_request_id.max(stream_id + 4);
            let reader = FrameReader::new(StreamRole::Request);
            let kind = Kind::Request(Box::new(Request { reader, phase: Phase::Head }));
            return Some(Stream { kind, io: StreamIo::default() });
        }
        let kind = Kind::UniHeader(UniStreamHeaderReader::new());
        Some(Stream { kind, io: StreamIo::receive_only() })
    }

    /// Issues the stream's QUIC actions, then keeps it (queued for output
    /// if it has some) or forgets it when both sides are done.
    fn put_back(&mut self, quic: &mut impl QuicStreams, stream_id: u64, mut stream: Stream) {
        if let Some(code) = stream.io.stop.take() {
            quic.stream_shutdown_read(stream_id, code.0);
        }
        if let Some(code) = stream.io.reset.take() {
            quic.stream_reset(stream_id, code.0);
        }
        if stream.io.is_finished() {
            if self.session.as_ref().is_some_and(|slot| slot.stream_id == stream_id) {
                self.session = None;
            }
            return;
        }
        enqueue(&mut self.flush_queue, stream_id, &mut stream.io);
        self.streams.insert(stream_id, stream);
    }

    fn on_stream_input(
        &mut self,
        quic: &mut impl QuicStreams,
        stream_id: u64,
        stream: &mut Stream,
        input: &[u8],
        fin: bool,
        arena: &mut BytesMut,
    ) {
        match &mut stream.kind {
            Kind::Local => {}
            Kind::UniHeader(reader) => {
                let mut input = input;
                match reader.read(&mut input) {
                    // A stream may end before its header (RFC 9114 §6.2).
                    Ok(None) => {}
                    Ok(Some(kind)) => {
                        self.on_uni_stream_kind(quic, stream_id, stream, kind);
                        if !stream.io.recv_done && self.error.is_none() {
                            self.on_stream_input(quic, stream_id, stream, input, fin, arena);
                        }
                    }
                    Err(header_error) => self.fail(quic, header_error.into()),
                }
            }
            Kind::Control(reader) => {
                let mut input = input;
                while self.error.is_none() {
                    let event = match reader.next(&mut input) {
                        Ok(Some(event)) => ControlEvent::from(event),
                        Ok(None) => break,
                        Err(frame_error) => return self.fail(quic, frame_error.into()),
                    };
                    self.on_control_event(quic, event);
                }
                if fin {
                    let closed =
                        reader.finish().err().unwrap_or(frame::FrameError::ClosedCriticalStream);
                    self.fail(quic, closed.into());
                }
            }
            Kind::QpackEncoder(reader) => match reader.read(input) {
                Err(qpack_error) => self.fail(quic, qpack_error.into()),
                Ok(()) if fin => self.fail_closed_critical(quic),
                Ok(()) => {}
            },
            Kind::QpackDecoder(reader) => match reader.read(input) {
                Err(qpack_error) => self.fail(quic, qpack_error.into()),
                Ok(()) if fin => self.fail_closed_critical(quic),
                Ok(()) => {}
            },
            Kind::Request(request) => {
                let mut input = input;
                let signal = self.on_request_input(
                    quic,
                    stream_id,
                    request,
                    &mut stream.io,
                    &mut input,
                    fin,
                );
                if let Some(session_id) = signal {
                    self.on_webtransport_bidi(stream_id, stream, session_id);
                    if !stream.io.recv_done && self.error.is_none() {
                        self.on_stream_input(quic, stream_id, stream, input, fin, arena);
                    }
                }
            }
            Kind::WebTransport { session_id } => {
                let session_id = *session_id;
                if self.session_state(session_id) != Some(&SlotState::Accepted) {
                    stream.io.stop_reading(ErrorCode::WT_SESSION_GONE);
                    return;
                }
                if !input.is_empty() || fin {
                    let data = share(arena, input);
                    self.events.push_back(H3Event::WebTransportData {
                        session_id,
                        stream_id,
                        data,
                        fin,
                    });
                }
            }
        }
    }

    fn fail_closed_critical(&mut self, quic: &mut impl QuicStreams) {
        self.fail(quic, error(ErrorCode::CLOSED_CRITICAL_STREAM, "critical stream closed"));
    }

    /// The peer reset a stream (or it vanished).
    fn on_stream_reset(
        &mut self,
        quic: &mut impl QuicStreams,
        stream_id: u64,
        stream: &mut Stream,
        code: u64,
    ) {
        match &mut stream.kind {
            Kind::Control(_) | Kind::QpackEncoder(_) | Kind::QpackDecoder(_) => {
                self.fail_closed_critical(quic);
            }
            Kind::Local | Kind::UniHeader(_) => {}
            Kind::Request(request) => {
                match std::mem::replace(&mut request.phase, Phase::Discard) {
                    Phase::Body { body, .. } => self.body_bytes -= body.len(),
                    Phase::Connect { .. } => self.end_session_by_peer(stream_id, 0, String::new()),
                    _ => {}
                }
                stream.io.reset_sending(ErrorCode::REQUEST_CANCELLED);
            }
            Kind::WebTransport { session_id } => {
                let session_id = *session_id;
                if self.session_state(session_id) == Some(&SlotState::Accepted) {
                    let error_code = ErrorCode(code).to_webtransport();
                    self.events.push_back(H3Event::WebTransportStreamAborted {
                        session_id,
                        stream_id,
                        error_code,
                    });
                }
            }
        }
    }

    fn on_uni_stream_kind(
        &mut self,
        quic: &mut impl QuicStreams,
        stream_id: u64,
        stream: &mut Stream,
        kind: UniStreamKind,
    ) {
        let duplicate = error(ErrorCode::STREAM_CREATION_ERROR, "second critical stream");
        match kind {
            UniStreamKind::Control => {
                if self.peer_control.replace(stream_id).is_some() {
                    return self.fail(quic, duplicate);
                }
                stream.kind = Kind::Control(Box::new(FrameReader::new(StreamRole::Control)));
            }
            UniStreamKind::QpackEncoder => {
                if self.peer_encoder.replace(stream_id).is_some() {
                    return self.fail(quic, duplicate);
                }
                stream.kind = Kind::QpackEncoder(EncoderStreamReader::new());
            }
            UniStreamKind::QpackDecoder => {
                if self.peer_decoder.replace(stream_id).is_some() {
                    return self.fail(quic, duplicate);
                }
                stream.kind = Kind::QpackDecoder(DecoderStreamReader::new());
            }
            UniStreamKind::Push { .. } => {
                self.fail(
                    quic,
                    error(ErrorCode::STREAM_CREATION_ERROR, "push stream from a client"),
                );
            }
            UniStreamKind::WebTransport { session_id } => match self.session_state(session_id) {
                Some(SlotState::Accepted) => {
                    stream.kind = Kind::WebTransport { session_id };
                    self.events.push_back(H3Event::WebTransportUniStream { session_id, stream_id });
                }
                Some(SlotState::Closed) => stream.io.stop_reading(ErrorCode::WT_SESSION_GONE),
                _ => stream.io.stop_reading(ErrorCode::WT_BUFFERED_STREAM_REJECTED),
            },
            UniStreamKind::Unknown(_) => stream.io.stop_reading(uni::UNKNOWN_STREAM_CODE),
        }
    }

    /// A client bidirectional stream opened with the WebTransport signal.
    fn on_webtransport_bidi(&mut self, stream_id: u64, stream: &mut Stream, session_id: u64) {
        match self.session_state(session_id) {
            Some(SlotState::Accepted) => {
                stream.kind = Kind::WebTransport { session_id };
                self.events.push_back(H3Event::WebTransportStream { session_id, stream_id });
            }
            // We buffer nothing for sessions not (yet) accepted.
            Some(SlotState::Closed) => stream.io.abort(ErrorCode::WT_SESSION_GONE),
            _ => stream.io.abort(ErrorCode::WT_BUFFERED_STREAM_REJECTED),
        }
    }

    fn on_control_event(&mut self, quic: &mut impl QuicStreams, event: ControlEvent) {
        match event {
            ControlEvent::Settings(settings) => self.on_settings(settings),
            ControlEvent::Goaway(id) => {
                if self.peer_goaway.is_some_and(|previous| id > previous) {
                    return self.fail(quic, error(ErrorCode::ID_ERROR, "GOAWAY id increased"));
                }
                self.peer_goaway = Some(id);
                self.events.push_back(H3Event::GoAway { id });
            }
            ControlEvent::MaxPushId(id) => {
                if self.peer_max_push_id.is_some_and(|previous| id < previous) {
                    return self.fail(quic, error(ErrorCode::ID_ERROR, "MAX_PUSH_ID decreased"));
                }
                self.peer_max_push_id = Some(id);
            }
            ControlEvent::CancelPush(id) => {
                // We never push; a cancel beyond what the client allowed is
                // an ID error (RFC 9114 §7.2.3), one within it is moot.
                if self.peer_max_push_id.is_none_or(|max| id > max) {
                    self.fail(quic, error(ErrorCode::ID_ERROR, "CANCEL_PUSH beyond MAX_PUSH_ID"));
                }
            }
            ControlEvent::Ignored => {}
        }
    }

    fn on_settings(&mut self, settings: Settings) {
        self.peer_settings = Some(settings);
        let Some(slot) = self.session.as_mut() else { return };
        if !matches!(slot.state, SlotState::AwaitingSettings(_)) {
            return;
        }
        let SlotState::AwaitingSettings(head) =
            std::mem::replace(&mut slot.state, SlotState::Pending)
        else {
            return;
        };
        let stream_id = slot.stream_id;
        if settings.supports_webtransport() {
            self.events.push_back(H3Event::WebTransportConnect { stream_id, head });
            return;
        }
        self.session = None;
        if let Some(stream) = self.streams.get_mut(&stream_id) {
            if let Kind::Request(request) = &mut stream.kind {
                request.phase = Phase::Discard;
            }
            answer_early(&mut stream.io, 400);
            enqueue(&mut self.flush_queue, stream_id, &mut stream.io);
        }
    }

    /// Feeds a request stream's frames; returns the session id when the
    /// stream turned out to be a WebTransport stream (`input` then holds
    /// the bytes after the signal).
    fn on_request_input(
        &mut self,
        quic: &mut impl QuicStreams,
        stream_id: u64,
        request: &mut Request,
        io: &mut StreamIo,
        input: &mut &[u8],
        fin: bool,
    ) -> Option<u64> {
        while !io.recv_done && self.error.is_none() {
            let decoded = match request.reader.next(input) {
                Ok(Some(Event::Headers(block))) => {
                    RequestHead::decode(block, &self.config.decode_limits)
                }
                Ok(Some(Event::Data(data))) => {
                    self.on_request_data(quic, stream_id, &mut request.phase, io, data);
                    continue;
                }
                Ok(Some(Event::WebTransportStream { session_id })) => return Some(session_id),
                // Nothing else comes out of a request stream's reader.
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(frame_error) => {
                    self.fail(quic, frame_error.into());
                    return None;
                }
            };
            self.on_request_headers(quic, stream_id, request, io, decoded);
        }
        if fin && !io.recv_done && self.error.is_none() {
            self.on_request_fin(quic, stream_id, request, io);
        }
        None
    }

    fn on_request_headers(
        &mut self,
        quic: &mut impl QuicStreams,
        stream_id: u64,
        request: &mut Request,
        io: &mut StreamIo,
        decoded: Result<RequestHead, HeadersError>,
    ) {
        match &mut request.phase {
            Phase::Head => {}
            Phase::Body { trailers: trailers @ false, .. } => {
                // Trailers carry nothing we use.
                *trailers = true;
                return;
            }
            Phase::Discard => return,
            _ => {
                let unexpected = error(ErrorCode::FRAME_UNEXPECTED, "HEADERS after the message");
                return self.fail(quic, unexpected);
            }
        }
        let head = match decoded {
            Ok(head) => head,
            Err(HeadersError::Qpack(qpack_error)) if qpack_error.is_too_large() => {
                request.phase = Phase::Discard;
                return answer_early(io, 431);
            }
            Err(HeadersError::Qpack(qpack_error)) => return self.fail(quic, qpack_error.into()),
            Err(HeadersError::Message(_)) => {
                request.phase = Phase::Discard;
                return io.abort(ErrorCode::MESSAGE_ERROR);
            }
        };
        if self.goaway_sent.is_some_and(|goaway| stream_id >= goaway) {
            request.phase = Phase::Discard;
            return io.abort(ErrorCode::REQUEST_REJECTED);
        }
        if head.method != "CONNECT" {
            request.phase = Phase::Body { head, body: Vec::new(), trailers: false };
            return;
        }
        // After CONNECT only DATA may follow (RFC 9114 §4.4).
        request.reader.enter_tunnel();
        request.phase = Phase::Discard;
        if !head.is_webtransport() {
            return answer_early(io, 501);
        }
        if self.session.is_some() {
            return answer_early(io, 429);
        }
        let state = match &self.peer_settings {
            None => SlotState::AwaitingSettings(Box::new(head)),
            Some(settings) if settings.supports_webtransport() => {
                self.events
                    .push_back(H3Event::WebTransportConnect { stream_id, head: Box::new(head) });
                SlotState::Pending
            }
            Some(_) => return answer_early(io, 400),
        };
        self.session = Some(SessionSlot { stream_id, state });
        request.phase = Phase::Connect { capsules: CapsuleReader::new(), answered: false };
    }

    fn on_request_data(
        &mut self,
        quic: &mut impl QuicStreams,
        stream_id: u64,
        phase: &mut Phase,
        io: &mut StreamIo,
        data: &[u8],
    ) {
        match phase {
            Phase::Head => {
                self.fail(quic, error(ErrorCode::FRAME_UNEXPECTED, "DATA before HEADERS"));
            }
            Phase::Body { trailers: true, .. } => {
                self.fail(quic, error(ErrorCode::FRAME_UNEXPECTED, "DATA after trailers"));
            }
            Phase::Body { body, .. } => {
                let status = if body.len() + data.len() > self.config.max_request_body_len {
                    413
                } else if self.body_bytes + data.len() > self.config.max_buffered_body_len {
                    503
                } else {
                    body.extend_from_slice(data);
                    self.body_bytes += data.len();
                    return;
                };
                self.body_bytes -= body.len();
                *phase = Phase::Discard;
                answer_early(io, status);
            }
            Phase::Connect { capsules, answered } => {
                let answered = *answered;
                let mut input = data;
                loop {
                    match capsules.next(&mut input) {
                        Ok(Some(Capsule::CloseSession { error_code, reason })) => {
                            let reason = reason.to_owned();
                            self.end_session_by_peer(stream_id, error_code, reason);
                            if answered {
                                io.finish();
                            } else {
                                io.reset_sending(ErrorCode::REQUEST_CANCELLED);
                            }
                        }
                        Ok(Some(Capsule::DrainSession)) => {}
                        Ok(None) => break,
                        Err(capsule_error) => {
                            // A malformed capsule stream is a stream error
                            // (RFC 9297 §3.3): the session ends abruptly.
                            self.end_session_by_peer(stream_id, 0, String::new());
                            *phase = Phase::Discard;
                            return io.abort(capsule_error.code());
                        }
                    }
                }
            }
            Phase::Answering | Phase::Discard => {}
        }
    }

    fn on_request_fin(
        &mut self,
        quic: &mut impl QuicStreams,
        stream_id: u64,
        request: &mut Request,
        io: &mut StreamIo,
    ) {
        if !matches!(request.phase, Phase::Discard) {
            if let Err(frame_error) = request.reader.finish() {
                return self.fail(quic, frame_error.into());
            }
        }
        match std::mem::replace(&mut request.phase, Phase::Discard) {
            Phase::Head => io.reset_sending(ErrorCode::REQUEST_INCOMPLETE),
            Phase::Body { head, body, .. } => {
                self.body_bytes -= body.len();
                request.phase = Phase::Answering;
                self.events.push_back(H3Event::Request { stream_id, head: Box::new(head), body });
            }
            Phase::Connect { answered, .. } => {
                self.end_session_by_peer(stream_id, 0, String::new());
                if answered {
                    io.finish();
                } else {
                    io.reset_sending(ErrorCode::REQUEST_CANCELLED);
                }
            }
            other => request.phase = other,
        }
    }

    /// The client ended session `session_id` (capsule, FIN or reset of its
    /// CONNECT stream): tell the application if it knew of it, and reset
    /// the session's streams (draft-ietf-webtrans-http3, "Session
    /// Termination").
    fn end_session_by_peer(&mut self, session_id: u64, code: u32, reason: String) {
        let Some(slot) = self.session.as_mut().filter(|slot| slot.stream_id == session_id) else {
            return;
        };
        match std::mem::replace(&mut slot.state, SlotState::Closed) {
            SlotState::Closed => return,
            SlotState::AwaitingSettings(_) => {}
            SlotState::Pending | SlotState::Accepted => {
                self.events.push_back(H3Event::SessionClosed { session_id, code, reason });
            }
        }
        let H3Connection { streams, flush_queue, .. } = self;
        for (&stream_id, stream) in streams.iter_mut() {
            if matches!(stream.kind, Kind::WebTransport { session_id: owner } if owner == session_id)
            {
                stream.io.abort(ErrorCode::WT_SESSION_GONE);
                enqueue(flush_queue, stream_id, &mut stream.io);
            }
        }
    }
}

/// A control stream frame, owned (the reader's events borrow it).
enum ControlEvent {
    Settings(Settings),
    Goaway(u64),
    MaxPushId(u64),
    CancelPush(u64),
    Ignored,
}

impl From<Event<'_>> for ControlEvent {
    fn from(event: Event<'_>) -> Self {
        match event {
            Event::Settings(settings) => ControlEvent::Settings(settings),
            Event::Goaway(id) => ControlEvent::Goaway(id),
            Event::MaxPushId(id) => ControlEvent::MaxPushId(id),
            Event::CancelPush(id) => ControlEvent::CancelPush(id),
            // The control role's reader yields nothing else.
            _ => ControlEvent::Ignored,
        }
    }
}

/// Reads and drops what arrives on a stream we no longer read, issuing
/// its pending STOP_SENDING first (after which QUIC reports it no more).
fn discard_input(
    quic: &mut impl QuicStreams,
    stream_id: u64,
    io: &mut StreamIo,
    scratch: &mut [u8],
    budget: &mut usize,
) {
    if let Some(code) = io.stop.take() {
        return quic.stream_shutdown_read(stream_id, code.0);
    }
    while *budget > 0 {
        let len = scratch.len().min(*budget);
        match quic.stream_recv(stream_id, &mut scratch[..len]) {
            Ok((0, false)) | Err(_) => return,
            Ok((read, fin)) => {
                *budget -= read;
                if fin {
                    return;
                }
            }
        }
    }
}

/// Writes one stream's actions and bytes; returns whether output is left
/// (flow control). A failure on one of our critical streams is reported in
/// `critical`.
fn write_stream(
    quic: &mut impl QuicStreams,
    stream_id: u64,
    stream: &mut Stream,
    critical: &mut Option<H3Error>,
    events: &mut VecDeque<H3Event>,
) -> bool {
    let io = &mut stream.io;
    if let Some(code) = io.stop.take() {
        quic.stream_shutdown_read(stream_id, code.0);
    }
    if let Some(code) = io.reset.take() {
        quic.stream_reset(stream_id, code.0);
        return false;
    }
    while !io.out.is_empty() || io.fin_pending {
        match quic.stream_send(stream_id, &io.out, io.fin_pending) {
            Ok(written) => {
                io.out.advance(written.min(io.out.len()));
                if !io.out.is_empty() {
                    return true;
                }
                io.fin_pending = false;
            }
            Err(send_error) => {
                io.out.clear();
                io.fin_pending = false;
                io.send_closed = true;
                match stream.kind {
                    Kind::Local => {
                        *critical = Some(error(
                            ErrorCode::CLOSED_CRITICAL_STREAM,
                            "critical stream stopped",
                        ));
                    }
                    Kind::WebTransport { session_id } => {
                        let error_code = match send_error {
                            StreamIoError::Stopped(code) => ErrorCode(code).to_webtransport(),
                            _ => None,
                        };
                        events.push_back(H3Event::WebTransportStreamAborted {
                            session_id,
                            stream_id,
                            error_code,
                        });
                    }
                    _ => {}
                }
                return false;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::proto::h3::frame::{encode_data_frame, encode_headers_frame};
    use crate::proto::h3::headers::ResponseHead;
    use crate::proto::h3::stream::{
        encode_control_stream_preamble, encode_webtransport_uni_header,
    };
    use crate::proto::wire::Rng;

    #[derive(Debug, Default)]
    struct Inbound {
        data: VecDeque<u8>,
        fin: bool,
        fin_read: bool,
        reset: Option<u64>,
        /// Our STOP_SENDING.
        stopped: Option<u64>,
    }

    #[derive(Debug, Default)]
    struct Outbound {
        data: Vec<u8>,
        fin: bool,
        /// Our RESET_STREAM.
        reset: Option<u64>,
        /// The peer's STOP_SENDING.
        stopped_by_peer: Option<u64>,
    }

    /// QUIC in memory, with quiche's semantics where HTTP/3 depends on them:
    /// partial writes under a byte budget (FIN only with the last byte),
    /// streams that stop being readable once stopped, reset or finished.
    #[derive(Debug)]
    struct FakeQuic {
        established: bool,
        inbound: BTreeMap<u64, Inbound>,
        outbound: BTreeMap<u64, Outbound>,
        datagrams_in: VecDeque<Vec<u8>>,
        datagrams_out: Vec<Vec<u8>>,
        /// Bytes `stream_send` takes until refilled; `None`: unlimited.
        send_budget: Option<usize>,
        max_datagram: Option<usize>,
        closed: Option<(u64, Vec<u8>)>,
    }

    impl FakeQuic {
        fn new() -> FakeQuic {
            FakeQuic {
                established: true,
                inbound: BTreeMap::new(),
                outbound: BTreeMap::new(),
                datagrams_in: VecDeque::new(),
                datagrams_out: Vec::new(),
                send_budget: None,
                max_datagram: Some(1_200),
                closed: None,
            }
        }

        fn push(&mut self, stream_id: u64, bytes: &[u8]) {
            self.inbound.entry(stream_id).or_default().data.extend(bytes);
        }

        fn push_fin(&mut self, stream_id: u64) {
            self.inbound.entry(stream_id).or_default().fin = true;
        }

        fn out(&self, stream_id: u64) -> &Outbound {
            static EMPTY: Outbound =
                Outbound { data: Vec::new(), fin: false, reset: None, stopped_by_peer: None };
            self.outbound.get(&stream_id).unwrap_or(&EMPTY)
        }

        fn stopped(&self, stream_id: u64) -> Option<u64> {
            self.inbound.get(&stream_id).and_then(|inbound| inbound.stopped)
        }
    }

    impl QuicStreams for FakeQuic {
        fn readable(&mut self, out: &mut Vec<u64>) {
            for (&stream_id, inbound) in &self.inbound {
                let pending = !inbound.data.is_empty()
                    || (inbound.fin && !inbound.fin_read)
                    || inbound.reset.is_some();
                if inbound.stopped.is_none() && pending {
                    out.push(stream_id);
                }
            }
        }

        fn stream_recv(
            &mut self,
            stream_id: u64,
            buf: &mut [u8],
        ) -> Result<(usize, bool), StreamIoError> {
            let inbound = self.inbound.get_mut(&stream_id).ok_or(StreamIoError::Closed)?;
            if inbound.stopped.is_some() {
                return Ok((0, false));
            }
            if let Some(code) = inbound.reset.take() {
                inbound.data.clear();
                inbound.fin_read = true;
                return Err(StreamIoError::Reset(code));
            }
            let len = buf.len().min(inbound.data.len());
            for (slot, byte) in buf.iter_mut().zip(inbound.data.drain(..len)) {
                *slot = byte;
            }
            let fin = inbound.fin && inbound.data.is_empty() && !inbound.fin_read;
            inbound.fin_read |= fin;
            Ok((len, fin))
        }

        fn stream_send(
            &mut self,
            stream_id: u64,
            data: &[u8],
            fin: bool,
        ) -> Result<usize, StreamIoError> {
            let budget = self.send_budget.unwrap_or(usize::MAX);
            let out = self.outbound.entry(stream_id).or_default();
            if let Some(code) = out.stopped_by_peer {
                return Err(StreamIoError::Stopped(code));
            }
            assert!(!out.fin && out.reset.is_none(), "write after FIN/reset on {stream_id}");
            let len = data.len().min(budget);
            out.data.extend_from_slice(&data[..len]);
            out.fin = fin && len == data.len();
            if let Some(budget) = &mut self.send_budget {
                *budget -= len;
            }
            Ok(len)
        }

        fn stream_shutdown_read(&mut self, stream_id: u64, code: u64) {
            let inbound = self.inbound.entry(stream_id).or_default();
            inbound.stopped.get_or_insert(code);
            inbound.data.clear();
        }

        fn stream_reset(&mut self, stream_id: u64, code: u64) {
            self.outbound.entry(stream_id).or_default().reset.get_or_insert(code);
        }

        fn dgram_recv(&mut self, buf: &mut [u8]) -> Option<usize> {
            let datagram = self.datagrams_in.pop_front()?;
            buf[..datagram.len()].copy_from_slice(&datagram);
            Some(datagram.len())
        }

        fn dgram_send(&mut self, data: &[u8]) -> bool {
            self.datagrams_out.push(data.to_vec());
            true
        }

        fn dgram_max_writable_len(&self) -> Option<usize> {
            self.max_datagram
        }

        fn close(&mut self, code: u64, reason: &[u8]) {
            self.closed.get_or_insert((code, reason.to_vec()));
        }

        fn is_established(&self) -> bool {
            self.established
        }
    }

    /// The server connection and a scripted client around it.
    struct Harness {
        h3: H3Connection,
        quic: FakeQuic,
        buffers: RecvBuffers,
    }

    const CLIENT_CONTROL: u64 = 2;

    fn client_settings() -> Settings {
        // What aioquic sends: the draft-02 WebTransport setting only.
        Settings {
            qpack_max_table_capacity: Some(0),
            h3_datagram: Some(1),
            enable_webtransport: Some(1),
            ..Settings::default()
        }
    }

    fn request_frame(
        method: &str,
        path: &str,
        protocol: Option<&str>,
        origin: Option<&str>,
    ) -> Vec<u8> {
        let head = RequestHead {
            method: method.into(),
            scheme: "https".into(),
            authority: "127.0.0.1:4433".into(),
            path: path.into(),
            protocol: protocol.map(Into::into),
            origin: None,
            headers: origin
                .map(|origin| vec![("origin".into(), origin.into())])
                .unwrap_or_default(),
        };
        let mut block = Vec::new();
        head.encode(&mut block);
        let mut frame = Vec::new();
        encode_headers_frame(&block, &mut frame);
        frame
    }

    fn get(path: &str) -> Vec<u8> {
        request_frame("GET", path, None, None)
    }

    fn connect(path: &str) -> Vec<u8> {
        request_frame("CONNECT", path, Some("webtransport"), Some("http://localhost:8080"))
    }

    fn data_frame(payload: &[u8]) -> Vec<u8> {
        let mut frame = Vec::new();
        encode_data_frame(payload, &mut frame);
        frame
    }

    fn close_capsule(code: u32, reason: &str) -> Vec<u8> {
        let mut frame = BytesMut::new();
        capsule::encode_close_session_frame(code, reason, &mut frame);
        frame.to_vec()
    }

    fn wt_bidi(session_id: u64, payload: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        frame::encode_webtransport_stream_signal(session_id, &mut bytes);
        bytes.extend_from_slice(payload);
        bytes
    }

    /// A response as the client reads it: status, body (or capsule bytes),
    /// FIN.
    fn response(out: &Outbound) -> (Option<u16>, Vec<u8>, bool) {
        let mut reader = FrameReader::new(StreamRole::Request);
        let mut input = &out.data[..];
        let mut status = None;
        let mut body = Vec::new();
        while let Some(event) = reader.next(&mut input).unwrap() {
            match event {
                Event::Headers(block) => {
                    let head = ResponseHead::decode(block, &DecodeLimits::DEFAULT).unwrap();
                    assert!(status.replace(head.status).is_none(), "one HEADERS");
                }
                Event::Data(data) => body.extend_from_slice(data),
                other => panic!("{other:?} in a response"),
            }
        }
        (status, body, out.fin)
    }

    fn capsules(bytes: &[u8]) -> Vec<(u32, String)> {
        let mut reader = CapsuleReader::new();
        let mut input = bytes;
        let mut closes = Vec::new();
        while let Some(capsule) = reader.next(&mut input).unwrap() {
            if let Capsule::CloseSession { error_code, reason } = capsule {
                closes.push((error_code, reason.to_owned()));
            }
        }
        closes
    }

    impl Harness {
        fn new() -> Harness {
            Harness::with_config(H3Config::default())
        }

        fn with_config(config: H3Config) -> Harness {
            Harness {
                h3: H3Connection::new(config),
                quic: FakeQuic::new(),
                buffers: RecvBuffers::new(),
            }
        }

        /// One driver turn: read, collect events, write.
        fn run(&mut self) -> Vec<H3Event> {
            self.h3.handle_readable(&mut self.quic, &mut self.buffers);
            self.h3.handle_datagrams(&mut self.quic, &mut self.buffers);
            let events = std::iter::from_fn(|| self.h3.poll_event()).collect();
            self.h3.flush(&mut self.quic);
            events
        }

        fn send_settings(&mut self) {
            let mut control = Vec::new();
            encode_control_stream_preamble(&client_settings(), &mut control);
            self.quic.push(CLIENT_CONTROL, &control);
            self.quic.push(6, &[uni::QPACK_ENCODER as u8]);
            self.quic.push(10, &[uni::QPACK_DECODER as u8]);
        }

        /// SETTINGS exchanged and session 0 accepted.
        fn with_session() -> Harness {
            let mut harness = Harness::new();
            harness.send_settings();
            harness.quic.push(0, &connect("/wt"));
            let events = harness.run();
            assert!(
                matches!(&events[..], [H3Event::WebTransportConnect { stream_id: 0, .. }]),
                "{events:?}"
            );
            harness.h3.accept_webtransport(0).unwrap();
            assert!(harness.run().is_empty());
            harness
        }

        fn closed_with(&self) -> Option<ErrorCode> {
            self.quic.closed.as_ref().map(|(code, _)| ErrorCode(*code))
        }
    }

    #[test]
    fn settings_exchange_opens_our_control_stream_only() {
        let mut harness = Harness::new();
        harness.quic.established = false;
        assert!(harness.run().is_empty());
        assert!(harness.quic.outbound.is_empty(), "nothing before the handshake");
        harness.quic.established = true;
        harness.send_settings();
        assert!(harness.run().is_empty());
        let control = &harness.quic.out(CONTROL_STREAM_ID).data;
        let mut input = &control[..];
        let kind = UniStreamHeaderReader::new().read(&mut input).unwrap();
        assert_eq!(kind, Some(UniStreamKind::Control));
        let mut reader = FrameReader::new(StreamRole::Control);
        let Some(Event::Settings(settings)) = reader.next(&mut input).unwrap() else {
            panic!("SETTINGS first");
        };
        assert_eq!(settings, Settings::server());
        assert!(input.is_empty());
        // No QPACK streams of ours: only the control stream was opened.
        assert_eq!(harness.quic.outbound.keys().copied().collect::<Vec<_>>(), [CONTROL_STREAM_ID]);
        assert!(harness.h3.peer_settings().unwrap().supports_webtransport());
        assert_eq!(harness.closed_with(), None);
    }

    #[test]
    fn a_get_gets_its_response_and_the_stream_is_forgotten() {
        let mut harness = Harness::new();
        harness.send_settings();
        harness.quic.push(0, &get("/api/health?verbose=1"));
        harness.quic.push_fin(0);
        let events = harness.run();
        let [H3Event::Request { stream_id: 0, head, body }] = &events[..] else {
            panic!("{events:?}")
        };
        assert_eq!((head.method.as_str(), head.path.as_str()), ("GET", "/api/health?verbose=1"));
        assert!(body.is_empty());
        let headers = [("content-type", "application/json")];
        harness.h3.respond(0, 200, &headers, b"{\"status\":\"ok\"}").unwrap();
        assert_eq!(harness.h3.respond(0, 200, &[], b""), Err(CommandError::InvalidState));
        assert!(harness.run().is_empty());
        let (status, body, fin) = response(harness.quic.out(0));
        assert_eq!((status, &body[..], fin), (Some(200), &b"{\"status\":\"ok\"}"[..], true));
        assert_eq!(harness.h3.stream_count(), 4, "only the critical streams are left");
        assert_eq!(harness.h3.active_requests(), 0);
    }

    #[test]
    fn a_request_body_arriving_byte_by_byte_is_collected() {
        let mut harness = Harness::new();
        let mut bytes = request_frame("POST", "/api/echo", None, None);
        bytes.extend(data_frame(b"hello "));
        bytes.extend(data_frame(b"world"));
        let mut events = Vec::new();
        for byte in bytes {
            harness.quic.push(4, &[byte]);
            events.extend(harness.run());
        }
        assert!(events.is_empty(), "no event before FIN: {events:?}");
        harness.quic.push_fin(4);
        let events = harness.run();
        let [H3Event::Request { stream_id: 4, body, .. }] = &events[..] else {
            panic!("{events:?}")
        };
        assert_eq!(body, b"hello world");
        assert_eq!(harness.h3.active_requests(), 1);
    }

    #[test]
    fn webtransport_session_carries_streams_and_datagrams_both_ways() {
        let mut harness = Harness::with_session();
        let (status, tunnel, fin) = response(harness.quic.out(0));
        assert_eq!((status, tunnel.len(), fin), (Some(200), 0, false), "a bare 200, stream open");

        // The client's bidirectional stream: signal, session, bytes.
        harness.quic.push(4, &wt_bidi(0, b"hello"));
        let events = harness.run();
        assert_eq!(
            events,
            [
                H3Event::WebTransportStream { session_id: 0, stream_id: 4 },
                H3Event::WebTransportData {
                    session_id: 0,
                    stream_id: 4,
                    data: Bytes::from_static(b"hello"),
                    fin: false
                },
            ]
        );
        harness.quic.push(4, b" again");
        let events = harness.run();
        assert!(
            matches!(&events[..], [H3Event::WebTransportData { data, .. }] if data == " again")
        );
        harness.h3.send_wt_stream(4, b"welcome", false).unwrap();
        assert!(harness.run().is_empty());
        assert_eq!(harness.quic.out(4).data, b"welcome", "raw bytes, no framing");

        // A unidirectional stream.
        let mut uni_stream = Vec::new();
        encode_webtransport_uni_header(0, &mut uni_stream);
        uni_stream.extend_from_slice(b"inputs");
        harness.quic.push(14, &uni_stream);
        harness.quic.push_fin(14);
        let events = harness.run();
        assert_eq!(events[0], H3Event::WebTransportUniStream { session_id: 0, stream_id: 14 });
        assert!(
            matches!(&events[1], H3Event::WebTransportData { stream_id: 14, data, fin: true, .. } if data == "inputs")
        );
        assert!(harness.h3.send_wt_stream(14, b"x", false).is_err(), "a client uni stream");

        // Datagrams with the Quarter Stream ID prefix.
        harness.quic.datagrams_in.push_back(b"\x00ping".to_vec());
        harness.quic.datagrams_in.push_back(b"\x01other session".to_vec());
        let events = harness.run();
        assert_eq!(
            events,
            [H3Event::Datagram { session_id: 0, payload: Bytes::from_static(b"ping") }]
        );
        assert!(harness.h3.send_datagram(&mut harness.quic, 0, b"pong"));
        assert!(!harness.h3.send_datagram(&mut harness.quic, 4, b"no such session"));
        harness.quic.max_datagram = Some(4);
        assert!(!harness.h3.send_datagram(&mut harness.quic, 0, b"too big"));
        assert_eq!(harness.quic.datagrams_out, [b"\x00pong".to_vec()]);
        assert_eq!(harness.closed_with(), None);
    }

    #[test]
    fn the_client_closes_the_session_with_a_capsule() {
        let mut harness = Harness::with_session();
        harness.quic.push(4, &wt_bidi(0, b""));
        let _ = harness.run();
        harness.quic.push(0, &close_capsule(42, "game over"));
        let events = harness.run();
        assert_eq!(
            events,
            [H3Event::SessionClosed { session_id: 0, code: 42, reason: "game over".into() }]
        );
        assert!(harness.quic.out(0).fin, "our side of the CONNECT stream ends with FIN");
        let gone = ErrorCode::WT_SESSION_GONE.0;
        assert_eq!((harness.quic.out(4).reset, harness.quic.stopped(4)), (Some(gone), Some(gone)));
        assert_eq!(harness.h3.send_wt_stream(4, b"late", false), Err(CommandError::UnknownStream));
        harness.quic.push_fin(0);
        assert!(harness.run().is_empty(), "no second SessionClosed");
        assert_eq!(harness.h3.stream_count(), 4);
        // The slot is free again: a new session may be asked for.
        harness.quic.push(8, &connect("/wt"));
        assert!(matches!(&harness.run()[..], [H3Event::WebTransportConnect { stream_id: 8, .. }]));
    }

    #[test]
    fn the_client_ending_the_connect_stream_closes_the_session_with_code_zero() {
        let mut harness = Harness::with_session();
        harness.quic.push_fin(0);
        let events = harness.run();
        assert_eq!(
            events,
            [H3Event::SessionClosed { session_id: 0, code: 0, reason: String::new() }]
        );
        assert!(harness.quic.out(0).fin);

        let mut harness = Harness::with_session();
        harness.quic.inbound.entry(0).or_default().reset = Some(ErrorCode::REQUEST_CANCELLED.0);
        let events = harness.run();
        assert_eq!(
            events,
            [H3Event::SessionClosed { session_id: 0, code: 0, reason: String::new() }]
        );
        assert_eq!(harness.quic.out(0).reset, Some(ErrorCode::REQUEST_CANCELLED.0));
    }

    #[test]
    fn the_server_closes_the_session_after_a_last_message() {
        let mut harness = Harness::with_session();
        harness.quic.push(4, &wt_bidi(0, b""));
        let _ = harness.run();
        harness.h3.send_wt_stream(4, b"bye", false).unwrap();
        harness.h3.close_session(0, 7, "done").unwrap();
        assert_eq!(harness.h3.close_session(0, 7, "done"), Err(CommandError::InvalidState));
        assert!(harness.run().is_empty());
        let (_, tunnel, fin) = response(harness.quic.out(0));
        assert_eq!(capsules(&tunnel), [(7, "done".to_owned())]);
        assert!(fin);
        let stream = harness.quic.out(4);
        assert_eq!((&stream.data[..], stream.fin, stream.reset), (&b"bye"[..], true, None));
        assert_eq!(harness.quic.stopped(4), Some(ErrorCode::WT_SESSION_GONE.0));
        // The client answers with its own capsule and FIN: no event, all forgotten.
        harness.quic.push(0, &close_capsule(7, ""));
        harness.quic.push_fin(0);
        assert!(harness.run().is_empty());
        assert_eq!(harness.h3.stream_count(), 4);
        assert_eq!(harness.closed_with(), None);
    }

    #[test]
    fn goaway_names_the_first_unseen_request_and_later_ones_are_refused() {
        let mut harness = Harness::new();
        harness.send_settings();
        harness.quic.push(0, &get("/a"));
        harness.quic.push_fin(0);
        harness.quic.push(4, &get("/b")[..3]);
        let events = harness.run();
        assert_eq!(events.len(), 1);
        harness.h3.goaway();
        harness.h3.goaway();
        let _ = harness.run();
        let control = &harness.quic.out(CONTROL_STREAM_ID).data;
        let mut goaway = Vec::new();
        frame::encode_goaway(8, &mut goaway);
        assert!(control.ends_with(&goaway), "one GOAWAY(8)");
        assert!(!control[..control.len() - goaway.len()].ends_with(&goaway));
        // Stream 4 was seen before the GOAWAY: still served.
        harness.quic.push(4, &get("/b")[3..]);
        harness.quic.push_fin(4);
        harness.quic.push(8, &get("/c"));
        harness.quic.push_fin(8);
        let events = harness.run();
        assert!(matches!(&events[..], [H3Event::Request { stream_id: 4, .. }]), "{events:?}");
        let rejected = ErrorCode::REQUEST_REJECTED.0;
        assert_eq!(
            (harness.quic.out(8).reset, harness.quic.stopped(8)),
            (Some(rejected), Some(rejected))
        );
        harness.h3.respond(0, 200, &[], b"a").unwrap();
        harness.h3.respond(4, 200, &[], b"b").unwrap();
        let _ = harness.run();
        assert_eq!(response(harness.quic.out(0)).0, Some(200));
        // The client's own GOAWAY is reported; a larger one is an error.
        let mut frames = Vec::new();
        frame::encode_goaway(4, &mut frames);
        harness.quic.push(CLIENT_CONTROL, &frames);
        assert_eq!(harness.run(), [H3Event::GoAway { id: 4 }]);
        let mut frames = Vec::new();
        frame::encode_goaway(8, &mut frames);
        harness.quic.push(CLIENT_CONTROL, &frames);
        let _ = harness.run();
        assert_eq!(harness.closed_with(), Some(ErrorCode::ID_ERROR));
    }

    #[test]
    fn partial_writes_under_flow_control_eventually_flush_everything_once() {
        let mut harness = Harness::with_session();
        harness.quic.push(0, &[]);
        harness.quic.push(4, &wt_bidi(0, b""));
        harness.quic.push(8, &get("/big"));
        harness.quic.push_fin(8);
        let _ = harness.run();
        let body: Vec<u8> = (0..100_000u32).map(|index| index as u8).collect();
        harness.quic.send_budget = Some(0);
        harness.h3.respond(8, 200, &[("content-type", "application/octet-stream")], &body).unwrap();
        let message: Vec<u8> = (0..50_000u32).map(|index| (index * 7) as u8).collect();
        harness.h3.send_wt_stream(4, &message, true).unwrap();
        assert_eq!(harness.h3.send_wt_stream(4, b"more", false), Err(CommandError::InvalidState));
        let mut turns = 0;
        while harness.h3.has_pending_output() {
            harness.quic.send_budget = Some(1_000);
            let _ = harness.run();
            turns += 1;
            assert!(turns < 1_000, "no progress");
        }
        assert!(turns > 100);
        let (status, received, fin) = response(harness.quic.out(8));
        assert_eq!((status, received == body, fin), (Some(200), true, true));
        assert_eq!(harness.quic.out(4).data, message);
        assert!(harness.quic.out(4).fin);
    }

    #[test]
    fn a_wt_stream_send_buffer_is_bounded() {
        let config = H3Config { max_stream_send_buffer: 100, ..H3Config::default() };
        let mut harness = Harness::with_config(config);
        harness.send_settings();
        harness.quic.push(0, &connect("/wt"));
        let _ = harness.run();
        harness.h3.accept_webtransport(0).unwrap();
        let _ = harness.run();
        harness.quic.push(4, &wt_bidi(0, b""));
        harness.quic.send_budget = Some(0);
        let _ = harness.run();
        assert_eq!(harness.h3.send_capacity(4), 100);
        harness.h3.send_wt_stream(4, &[1; 60], false).unwrap();
        assert_eq!(harness.h3.send_capacity(4), 40);
        assert_eq!(harness.h3.send_wt_stream(4, &[2; 41], false), Err(CommandError::BufferFull));
        harness.quic.send_budget = Some(30);
        let _ = harness.run();
        assert_eq!(harness.h3.send_capacity(4), 70);
    }

    #[test]
    fn a_connect_before_the_peer_settings_waits_for_them() {
        let mut harness = Harness::new();
        harness.quic.push(0, &connect("/wt"));
        assert!(harness.run().is_empty());
        assert_eq!(harness.h3.accept_webtransport(0), Err(CommandError::InvalidState));
        harness.send_settings();
        assert!(matches!(&harness.run()[..], [H3Event::WebTransportConnect { stream_id: 0, .. }]));

        // A peer whose SETTINGS do not enable WebTransport gets 400.
        let mut harness = Harness::new();
        harness.quic.push(0, &connect("/wt"));
        let _ = harness.run();
        let mut control = Vec::new();
        encode_control_stream_preamble(&Settings::default(), &mut control);
        harness.quic.push(CLIENT_CONTROL, &control);
        assert!(harness.run().is_empty());
        assert_eq!(response(harness.quic.out(0)).0, Some(400));
        assert_eq!(harness.quic.stopped(0), Some(ErrorCode::NO_ERROR.0));
    }

    #[test]
    fn rejected_connects_and_the_application_refusing_them() {
        let mut harness = Harness::with_session();
        // A second session on the same connection.
        harness.quic.push(4, &connect("/wt"));
        assert!(harness.run().is_empty());
        assert_eq!(response(harness.quic.out(4)).0, Some(429));
        // A CONNECT for another protocol.
        harness.quic.push(8, &request_frame("CONNECT", "/x", Some("websocket"), None));
        assert!(harness.run().is_empty());
        assert_eq!(response(harness.quic.out(8)).0, Some(501));

        let mut harness = Harness::new();
        harness.send_settings();
        harness.quic.push(0, &connect("/elsewhere"));
        let _ = harness.run();
        harness.h3.reject_request(0, 404).unwrap();
        let _ = harness.run();
        let (status, _, fin) = response(harness.quic.out(0));
        assert_eq!((status, fin), (Some(404), true));
        assert_eq!(harness.h3.accept_webtransport(0), Err(CommandError::UnknownStream));
        // The slot is free for the next CONNECT.
        harness.quic.push(4, &connect("/wt"));
        assert!(matches!(&harness.run()[..], [H3Event::WebTransportConnect { stream_id: 4, .. }]));
    }

    #[test]
    fn streams_for_sessions_that_are_not_accepted_are_refused() {
        let mut harness = Harness::new();
        harness.send_settings();
        harness.quic.push(4, &wt_bidi(0, b"early"));
        let mut uni_stream = Vec::new();
        encode_webtransport_uni_header(0, &mut uni_stream);
        harness.quic.push(14, &uni_stream);
        assert!(harness.run().is_empty());
        let rejected = ErrorCode::WT_BUFFERED_STREAM_REJECTED.0;
        assert_eq!(
            (harness.quic.out(4).reset, harness.quic.stopped(4)),
            (Some(rejected), Some(rejected))
        );
        assert_eq!(harness.quic.stopped(14), Some(rejected));
        assert_eq!(
            harness.h3.stream_count(),
            4,
            "our control stream and the client's three critical ones"
        );
        assert_eq!(harness.closed_with(), None);
        // A session id that cannot be a CONNECT stream is an ID error.
        harness.quic.push(8, &wt_bidi(0, b"")[..2]);
        harness.quic.push(8, &[0x02]);
        let _ = harness.run();
        assert_eq!(harness.closed_with(), Some(ErrorCode::ID_ERROR));
    }

    #[test]
    fn oversized_and_malformed_requests_are_answered_on_their_stream() {
        let config = H3Config { max_request_body_len: 10, ..H3Config::default() };
        let mut harness = Harness::with_config(config);
        let mut bytes = request_frame("POST", "/upload", None, None);
        bytes.extend(data_frame(&[0; 11]));
        harness.quic.push(0, &bytes);
        assert!(harness.run().is_empty());
        let (status, _, fin) = response(harness.quic.out(0));
        assert_eq!((status, fin), (Some(413), true));
        assert_eq!(harness.quic.stopped(0), Some(ErrorCode::NO_ERROR.0));

        // Connection-specific fields are malformed: a stream error.
        let mut block = Vec::new();
        crate::proto::h3::qpack::encode_field_section(
            [(":method", "GET"), (":scheme", "https"), (":path", "/"), ("connection", "close")],
            &mut block,
        );
        let mut frame = Vec::new();
        encode_headers_frame(&block, &mut frame);
        harness.quic.push(4, &frame);
        assert!(harness.run().is_empty());
        assert_eq!(harness.quic.out(4).reset, Some(ErrorCode::MESSAGE_ERROR.0));

        // A FIN with no HEADERS.
        harness.quic.push_fin(8);
        assert!(harness.run().is_empty());
        assert_eq!(harness.quic.out(8).reset, Some(ErrorCode::REQUEST_INCOMPLETE.0));
        assert_eq!(harness.closed_with(), None);
        assert_eq!(harness.h3.stream_count(), 1);

        // Bodies buffered across requests are bounded too.
        let config = H3Config { max_buffered_body_len: 15, ..H3Config::default() };
        let mut harness = Harness::with_config(config);
        for stream_id in [0, 4] {
            let mut bytes = request_frame("POST", "/upload", None, None);
            bytes.extend(data_frame(&[0; 10]));
            harness.quic.push(stream_id, &bytes);
        }
        let _ = harness.run();
        assert_eq!(response(harness.quic.out(0)).0, None);
        assert_eq!(response(harness.quic.out(4)).0, Some(503));
    }

    /// Feeds `bytes` on `stream_id` (after SETTINGS unless the stream is the
    /// client's control stream) and returns the code the connection was
    /// closed with.
    fn connection_error_for(stream_id: u64, bytes: &[u8], fin: bool) -> Option<ErrorCode> {
        let mut harness = Harness::new();
        if stream_id != CLIENT_CONTROL {
            harness.send_settings();
            let _ = harness.run();
        }
        harness.quic.push(stream_id, bytes);
        if fin {
            harness.quic.push_fin(stream_id);
        }
        let events = harness.run();
        let code = harness.closed_with();
        if let Some(code) = code {
            assert!(
                matches!(events.last(), Some(H3Event::ConnectionError { code: reported, .. }) if *reported == code),
                "{events:?}"
            );
            assert!(harness.h3.is_closed());
            // Nothing more happens after a connection error.
            harness.quic.push(100, &get("/"));
            assert!(harness.run().is_empty());
            assert_eq!(harness.h3.respond(0, 200, &[], b""), Err(CommandError::Closed));
        }
        code
    }

    #[test]
    fn hostile_frames_close_the_connection_with_the_right_code() {
        let control_with = |frames: &[u8]| {
            let mut bytes = Vec::new();
            encode_control_stream_preamble(&client_settings(), &mut bytes);
            bytes.extend_from_slice(frames);
            bytes
        };
        let cases: Vec<(&str, u64, Vec<u8>, bool, ErrorCode)> = vec![
            (
                "DATA on the control stream",
                CLIENT_CONTROL,
                control_with(&data_frame(b"x")),
                false,
                ErrorCode::FRAME_UNEXPECTED,
            ),
            (
                "HEADERS on the control stream",
                CLIENT_CONTROL,
                control_with(&get("/")),
                false,
                ErrorCode::FRAME_UNEXPECTED,
            ),
            (
                "HEADERS before SETTINGS",
                CLIENT_CONTROL,
                [&[0x00][..], &get("/")].concat(),
                false,
                ErrorCode::MISSING_SETTINGS,
            ),
            (
                "a second SETTINGS",
                CLIENT_CONTROL,
                control_with(&[0x04, 0x00]),
                false,
                ErrorCode::FRAME_UNEXPECTED,
            ),
            (
                "the control stream ends",
                CLIENT_CONTROL,
                control_with(&[]),
                true,
                ErrorCode::CLOSED_CRITICAL_STREAM,
            ),
            (
                "HTTP/2 PING frame type",
                CLIENT_CONTROL,
                control_with(&[0x06, 0x00]),
                false,
                ErrorCode::FRAME_UNEXPECTED,
            ),
            (
                "a second control stream",
                18,
                control_with(&[]),
                false,
                ErrorCode::STREAM_CREATION_ERROR,
            ),
            (
                "a second QPACK encoder stream",
                18,
                vec![0x02],
                false,
                ErrorCode::STREAM_CREATION_ERROR,
            ),
            ("a push stream", 18, vec![0x01, 0x00], false, ErrorCode::STREAM_CREATION_ERROR),
            (
                "a dynamic table insert",
                6,
                vec![0x3f, 0x00],
                false,
                ErrorCode::QPACK_ENCODER_STREAM_ERROR,
            ),
            (
                "a section acknowledgment",
                10,
                vec![0x81],
                false,
                ErrorCode::QPACK_DECODER_STREAM_ERROR,
            ),
            ("the QPACK decoder stream ends", 10, vec![], true, ErrorCode::CLOSED_CRITICAL_STREAM),
            ("DATA before HEADERS", 0, data_frame(b"x"), false, ErrorCode::FRAME_UNEXPECTED),
            ("SETTINGS on a request", 0, vec![0x04, 0x00], false, ErrorCode::FRAME_UNEXPECTED),
            (
                "HTTP/2 PRIORITY on a request",
                0,
                vec![0x02, 0x00],
                false,
                ErrorCode::FRAME_UNEXPECTED,
            ),
            (
                "a dynamic table reference",
                0,
                vec![0x01, 0x03, 0x02, 0x00, 0x80],
                false,
                ErrorCode::QPACK_DECOMPRESSION_FAILED,
            ),
            ("a truncated frame then FIN", 0, vec![0x01, 0x05, 0x00], true, ErrorCode::FRAME_ERROR),
            (
                "a misplaced WebTransport signal",
                0,
                [get("/"), vec![0x40, 0x41, 0x00]].concat(),
                false,
                ErrorCode::FRAME_ERROR,
            ),
            (
                "a giant HEADERS frame",
                0,
                vec![0x01, 0x80, 0x10, 0x00, 0x00],
                false,
                ErrorCode::EXCESSIVE_LOAD,
            ),
        ];
        for (name, stream_id, bytes, fin, code) in cases {
            assert_eq!(connection_error_for(stream_id, &bytes, fin), Some(code), "{name}");
        }
    }

    #[test]
    fn hostile_datagrams_and_stream_floods_close_the_connection() {
        let mut harness = Harness::with_session();
        harness.quic.datagrams_in.push_back(vec![0x40]);
        let _ = harness.run();
        assert_eq!(harness.closed_with(), Some(ErrorCode::DATAGRAM_ERROR));

        let mut harness = Harness::with_session();
        harness.quic.datagrams_in.push_back(vec![0xff; 8]);
        let _ = harness.run();
        assert_eq!(harness.closed_with(), Some(ErrorCode::DATAGRAM_ERROR));

        let config = H3Config { max_streams: 8, ..H3Config::default() };
        let mut harness = Harness::with_config(config);
        for index in 0..9 {
            harness.quic.push(index * 4, &get("/")[..2]);
        }
        let _ = harness.run();
        assert_eq!(harness.closed_with(), Some(ErrorCode::EXCESSIVE_LOAD));
    }

    #[test]
    fn unknown_unidirectional_streams_are_stopped_and_forgotten() {
        let mut harness = Harness::new();
        harness.send_settings();
        harness.quic.push(18, &[0x21, 1, 2, 3]); // a grease stream type
        harness.quic.push(22, &[0x40]); // a header that never completes
        harness.quic.push_fin(22);
        assert!(harness.run().is_empty());
        assert_eq!(harness.quic.stopped(18), Some(uni::UNKNOWN_STREAM_CODE.0));
        assert_eq!(harness.h3.stream_count(), 4);
        assert_eq!(harness.closed_with(), None);
    }

    #[test]
    fn a_small_read_budget_asks_to_be_called_again() {
        let config = H3Config { read_budget_bytes: 4, ..H3Config::default() };
        let mut harness = Harness::with_config(config);
        harness.quic.push(0, &get("/api/health"));
        harness.quic.push_fin(0);
        let mut turns = 0;
        let mut events = Vec::new();
        loop {
            events.extend(harness.run());
            turns += 1;
            if !harness.h3.wants_read() {
                break;
            }
        }
        assert!(turns > 3);
        assert!(matches!(&events[..], [H3Event::Request { stream_id: 0, .. }]));
    }

    #[test]
    fn the_peer_stopping_a_wt_stream_is_reported() {
        let mut harness = Harness::with_session();
        harness.quic.push(4, &wt_bidi(0, b""));
        let _ = harness.run();
        let code = ErrorCode::from_webtransport(9).0;
        harness.quic.outbound.entry(4).or_default().stopped_by_peer = Some(code);
        harness.h3.send_wt_stream(4, b"lost", false).unwrap();
        let _ = harness.run();
        assert_eq!(
            harness.run(),
            [H3Event::WebTransportStreamAborted {
                session_id: 0,
                stream_id: 4,
                error_code: Some(9)
            }]
        );
        harness.quic.inbound.entry(4).or_default().reset = Some(ErrorCode::from_webtransport(3).0);
        assert_eq!(
            harness.run(),
            [H3Event::WebTransportStreamAborted {
                session_id: 0,
                stream_id: 4,
                error_code: Some(3)
            }]
        );
        // Our control stream stopped by the peer is fatal.
        harness.quic.outbound.entry(CONTROL_STREAM_ID).or_default().stopped_by_peer = Some(0x100);
        harness.h3.goaway();
        let _ = harness.run();
        assert_eq!(harness.closed_with(), Some(ErrorCode::CLOSED_CRITICAL_STREAM));
    }

    /// What a scripted stream receives in the fuzz loop: mostly pieces a
    /// real client sends (so the loop reaches deep states), sometimes
    /// garbage after them.
    fn random_bytes(rng: &mut Rng, stream_id: u64, session_open: bool) -> Vec<u8> {
        let mut bytes = Vec::new();
        match rng.below(6) {
            0 if is_client_bidi(stream_id) => bytes.extend(get("/")),
            1 if is_client_bidi(stream_id) => bytes.extend(connect("/wt")),
            2 if is_client_bidi(stream_id) && session_open => bytes.extend(wt_bidi(0, b"data")),
            3 if is_client_uni(stream_id) => encode_webtransport_uni_header(0, &mut bytes),
            4 if stream_id == 0 => bytes.extend(data_frame(&close_capsule(1, "x"))),
            _ => {}
        }
        if bytes.is_empty() || rng.below(4) == 0 {
            let len = rng.length(64);
            bytes.extend((0..len).map(|_| rng.below(256) as u8));
        }
        bytes
    }

    /// A stream for the fuzz loop to act on: mostly request and
    /// WebTransport streams, now and then a critical one.
    fn pick_stream(rng: &mut Rng) -> u64 {
        match rng.below(10) {
            0 => [CLIENT_CONTROL, 6, 10][rng.below(3) as usize],
            1 | 2 => 14 + rng.below(4) * 4,
            _ => rng.below(8) * 4,
        }
    }

    /// Checks what must hold whatever the peer sends.
    fn check_invariants(harness: &Harness) {
        let h3 = &harness.h3;
        assert!(h3.stream_count() <= h3.config.max_streams + LOCAL_STREAMS.len());
        assert!(h3.body_bytes <= h3.config.max_buffered_body_len);
        for stream in h3.streams.values() {
            assert!(stream.io.out.len() <= h3.config.max_response_len + 1024);
        }
        match (h3.error(), harness.closed_with()) {
            (Some(error), Some(code)) => {
                assert_eq!(error.code, code);
                assert!(code.name().is_some(), "{code:?} is an HTTP/3 code");
            }
            (None, None) => {}
            other => panic!("H3 and QUIC disagree: {other:?}"),
        }
        for (stream_id, out) in &harness.quic.outbound {
            if is_client_bidi(*stream_id) {
                // Every response the client sees parses as one.
                let mut reader = FrameReader::new(StreamRole::Request);
                let mut input = &out.data[..];
                while let Some(_event) = reader.next(&mut input).expect("server bytes parse") {}
            }
        }
    }

    #[test]
    fn random_bytes_on_every_stream_kind_never_panic_or_leave_it_inconsistent() {
        let (mut closed, mut answered, mut accepted) = (0, 0, 0);
        for seed in 0..300 {
            let mut rng = Rng::new(seed);
            let mut harness = Harness::new();
            if rng.below(4) != 0 {
                harness.send_settings();
            }
            for _ in 0..40 {
                let session_open = harness.h3.session_state(0) == Some(&SlotState::Accepted);
                match rng.below(10) {
                    0 => {
                        let mut payload = vec![rng.below(3) as u8];
                        payload.extend((0..rng.length(20)).map(|_| rng.below(256) as u8));
                        harness.quic.datagrams_in.push_back(payload);
                    }
                    1 => {
                        let stream_id = pick_stream(&mut rng);
                        harness.quic.push_fin(stream_id);
                    }
                    2 => {
                        // QUIC reports a reset only before the stream ended.
                        let stream_id = pick_stream(&mut rng);
                        let inbound = harness.quic.inbound.entry(stream_id).or_default();
                        if !inbound.fin_read && inbound.stopped.is_none() {
                            inbound.reset = Some(rng.below(0x200));
                        }
                    }
                    3 => harness.quic.send_budget = Some(rng.length(200)),
                    _ => {
                        let stream_id = pick_stream(&mut rng);
                        let bytes = random_bytes(&mut rng, stream_id, session_open);
                        let inbound = harness.quic.inbound.entry(stream_id).or_default();
                        if !inbound.fin && !inbound.fin_read && inbound.stopped.is_none() {
                            harness.quic.push(stream_id, &bytes);
                            if bytes.starts_with(&get("/")) && rng.below(2) == 0 {
                                harness.quic.push_fin(stream_id);
                            }
                        }
                    }
                }
                for event in harness.run() {
                    match event {
                        H3Event::Request { stream_id, .. } => {
                            answered +=
                                usize::from(harness.h3.respond(stream_id, 200, &[], b"ok").is_ok());
                        }
                        H3Event::WebTransportConnect { stream_id, .. } => {
                            accepted +=
                                usize::from(harness.h3.accept_webtransport(stream_id).is_ok());
                        }
                        H3Event::WebTransportStream { stream_id, .. } => {
                            let _ = harness.h3.send_wt_stream(stream_id, b"hi", false);
                        }
                        H3Event::Datagram { session_id, .. } => {
                            let _ = harness.h3.send_datagram(&mut harness.quic, session_id, b"d");
                        }
                        _ => {}
                    }
                }
                if rng.below(20) == 0 {
                    let _ = harness.h3.close_session(0, 5, "x");
                }
                if rng.below(30) == 0 {
                    harness.h3.goaway();
                }
                check_invariants(&harness);
            }
            closed += usize::from(harness.h3.is_closed());
        }
        // The loop must also reach deep states, and some that survive.
        assert!(closed < 298 && answered > 30 && accepted > 50, "{closed} {answered} {accepted}");
    }

    #[test]
    fn event_data_reuses_the_arena_once_dropped() {
        let mut harness = Harness::with_session();
        harness.quic.push(4, &wt_bidi(0, b"first"));
        let events = harness.run();
        let H3Event::WebTransportData { data, .. } = &events[1] else { panic!("{events:?}") };
        let first = data.as_ptr();
        drop(events);
        for round in 0..100 {
            harness.quic.push(4, b"again");
            let events = harness.run();
            let [H3Event::WebTransportData { data, .. }] = &events[..] else {
                panic!("{events:?}")
            };
            assert_eq!(data, "again");
            if round == 99 {
                // Still inside the first block: nothing was allocated anew.
                let offset = data.as_ptr() as usize - first as usize;
                assert!(offset < ARENA_BLOCK, "{offset}");
            }
        }
    }
}
