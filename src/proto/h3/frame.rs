//! HTTP/3 frames (RFC 9114 §7): `type: varint, length: varint, payload`.
//!
//! [`FrameReader`] parses one stream's frames incrementally from whatever
//! bytes have arrived. DATA payloads are handed out in pieces as they arrive
//! (a large body is never buffered); HEADERS, SETTINGS and the one-varint
//! control frames are buffered up to [`FrameLimits`] and handed out whole.
//! Unknown and grease frame types are skipped without buffering. On a
//! client's bidirectional stream the WebTransport signal (0x41, then a
//! session id) turns the rest of the stream into raw WebTransport data.

use bytes::{BufMut, BytesMut};
use thiserror::Error;

use super::error::{into_h3_error, ErrorCode};
use super::settings::{Settings, SettingsError};
use super::varint::{
    encode_varint, read_varint, varint_len, write_varint, PartialVarint, VARINT_MAX_LEN,
};

pub const DATA: u64 = 0x00;
pub const HEADERS: u64 = 0x01;
pub const CANCEL_PUSH: u64 = 0x03;
pub const SETTINGS: u64 = 0x04;
pub const PUSH_PROMISE: u64 = 0x05;
pub const GOAWAY: u64 = 0x07;
pub const MAX_PUSH_ID: u64 = 0x0d;
/// draft-ietf-webtrans-http3 WT_STREAM: registered as a frame type, but it
/// has no length; a session id and then raw stream data follow it.
pub const WEBTRANSPORT_STREAM: u64 = 0x41;

/// HTTP/2 frame types with no HTTP/3 equivalent (PRIORITY, PING,
/// WINDOW_UPDATE, CONTINUATION): receiving one is H3_FRAME_UNEXPECTED.
pub const RESERVED_HTTP2: [u64; 4] = [0x02, 0x06, 0x08, 0x09];

/// Largest HEADERS payload (an encoded field section) we buffer.
pub const MAX_HEADERS_FRAME_LEN: usize = 16 * 1024;
/// Largest SETTINGS payload we buffer.
pub const MAX_SETTINGS_FRAME_LEN: usize = 4 * 1024;
/// Payload of CANCEL_PUSH, GOAWAY and MAX_PUSH_ID: exactly one varint.
const MAX_ID_FRAME_LEN: u64 = VARINT_MAX_LEN as u64;

/// How much of a frame payload a [`FrameReader`] buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Largest HEADERS payload; larger is H3_EXCESSIVE_LOAD.
    pub max_headers_len: usize,
    /// Largest SETTINGS payload; larger is H3_EXCESSIVE_LOAD.
    pub max_settings_len: usize,
}

impl FrameLimits {
    pub const DEFAULT: FrameLimits = FrameLimits {
        max_headers_len: MAX_HEADERS_FRAME_LEN,
        max_settings_len: MAX_SETTINGS_FRAME_LEN,
    };
}

impl Default for FrameLimits {
    fn default() -> Self {
        FrameLimits::DEFAULT
    }
}

/// Which kind of stream a [`FrameReader`] reads: it decides which frame
/// types are allowed (RFC 9114 §7.2, table 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRole {
    /// The peer's control stream, after its stream type: SETTINGS first and
    /// once, then CANCEL_PUSH, GOAWAY, MAX_PUSH_ID; never DATA or HEADERS.
    Control,
    /// A client-initiated bidirectional stream from its first byte: HEADERS
    /// and DATA, or the WebTransport signal as its very first bytes.
    Request,
    /// A request stream whose CONNECT was accepted: DATA only (RFC 9114
    /// §4.4), plus unknown extension frames.
    Tunnel,
}

/// One step of progress on a stream. Borrowed data lives in the input or in
/// the reader's buffer and is valid until the next call.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A piece of a DATA frame's payload (never empty). A frame's payload
    /// may arrive as several pieces; frame boundaries are not reported.
    Data(&'a [u8]),
    /// A whole HEADERS payload: an encoded field section for QPACK.
    Headers(&'a [u8]),
    /// The control stream's SETTINGS.
    Settings(Settings),
    /// GOAWAY: from a client, a push ID; from a server, a stream ID.
    Goaway(u64),
    /// MAX_PUSH_ID from a client.
    MaxPushId(u64),
    /// CANCEL_PUSH. A server that never promised a push must answer
    /// H3_ID_ERROR (RFC 9114 §7.2.3); the caller knows what it promised.
    CancelPush(u64),
    /// The stream is a WebTransport bidirectional stream of this session
    /// (its CONNECT stream id). Everything after is raw session data: the
    /// caller may take the rest of the input itself, or keep calling
    /// [`FrameReader::next`] to receive it as [`Event::WebTransportData`].
    WebTransportStream { session_id: u64 },
    /// Raw WebTransport data after [`Event::WebTransportStream`].
    WebTransportData(&'a [u8]),
}

/// Why a stream's frames were rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    /// An HTTP/2 frame type: H3_FRAME_UNEXPECTED (connection).
    #[error("HTTP/2 frame type {0:#x} is reserved in HTTP/3")]
    ReservedFrameType(u64),
    /// A known frame on a stream that may not carry it (including
    /// PUSH_PROMISE, which a client never sends): H3_FRAME_UNEXPECTED.
    #[error("frame type {frame_type:#x} is not allowed on a {role:?} stream")]
    UnexpectedFrame { frame_type: u64, role: StreamRole },
    /// The control stream starts with another frame than SETTINGS:
    /// H3_MISSING_SETTINGS (connection).
    #[error("control stream starts with frame type {0:#x}, not SETTINGS")]
    MissingSettings(u64),
    /// A second SETTINGS frame: H3_FRAME_UNEXPECTED (connection).
    #[error("second SETTINGS frame")]
    DuplicateSettings,
    /// A frame longer than the reader buffers: H3_EXCESSIVE_LOAD.
    #[error("frame type {frame_type:#x} of {len} bytes exceeds limit {max}")]
    FrameTooLarge { frame_type: u64, len: u64, max: usize },
    /// A payload that is not exactly its fields: H3_FRAME_ERROR.
    #[error("malformed payload in frame type {0:#x}")]
    MalformedPayload(u64),
    /// The SETTINGS payload was rejected.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The stream ended inside a frame: H3_FRAME_ERROR (connection).
    #[error("stream ended inside a frame")]
    Truncated,
    /// The peer ended its control stream: H3_CLOSED_CRITICAL_STREAM.
    #[error("the control stream was closed")]
    ClosedCriticalStream,
    /// 0x41 anywhere but the first bytes of a request stream:
    /// H3_FRAME_ERROR (connection).
    #[error("WebTransport stream signal not at the start of a request stream")]
    MisplacedWebTransportSignal,
    /// A WebTransport session id that is not a client-initiated
    /// bidirectional stream id, so can never name a session: H3_ID_ERROR.
    #[error("session id {0} is not a client-initiated bidirectional stream")]
    InvalidSessionId(u64),
}

impl FrameError {
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::ReservedFrameType(_)
            | FrameError::UnexpectedFrame { .. }
            | FrameError::DuplicateSettings => ErrorCode::FRAME_UNEXPECTED,
            FrameError::MissingSettings(_) => ErrorCode::MISSING_SETTINGS,
            FrameError::FrameTooLarge { .. } => ErrorCode::EXCESSIVE_LOAD,
            FrameError::MalformedPayload(_)
            | FrameError::Truncated
            | FrameError::MisplacedWebTransportSignal => ErrorCode::FRAME_ERROR,
            FrameError::Settings(error) => error.code(),
            FrameError::ClosedCriticalStream => ErrorCode::CLOSED_CRITICAL_STREAM,
            FrameError::InvalidSessionId(_) => ErrorCode::ID_ERROR,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::ReservedFrameType(_) => "HTTP/2 frame type",
            FrameError::UnexpectedFrame { .. } => "frame not allowed on this stream",
            FrameError::MissingSettings(_) => "control stream must start with SETTINGS",
            FrameError::DuplicateSettings => "second SETTINGS frame",
            FrameError::FrameTooLarge { .. } => "frame too large",
            FrameError::MalformedPayload(_) => "malformed frame payload",
            FrameError::Settings(error) => error.reason(),
            FrameError::Truncated => "stream ended inside a frame",
            FrameError::ClosedCriticalStream => "control stream closed",
            FrameError::MisplacedWebTransportSignal => "misplaced WebTransport stream signal",
            FrameError::InvalidSessionId(_) => "invalid WebTransport session id",
        }
    }
}

into_h3_error!(FrameError);

/// Whether `session_id` can name a WebTransport session: sessions are
/// CONNECT streams, which are client-initiated bidirectional streams.
pub(crate) fn is_session_id(session_id: u64) -> bool {
    session_id.is_multiple_of(4)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Type,
    Length { frame_type: u64 },
    SessionId,
    Data { remaining: u64 },
    Payload { frame_type: u64, len: usize },
    Skip { remaining: u64 },
    WebTransport,
}

/// What [`FrameReader::step`] found, without borrowing: the borrowed
/// [`Event`] is built from it afterwards.
enum Ready {
    Data(usize),
    Headers(Source),
    Settings(Settings),
    Goaway(u64),
    MaxPushId(u64),
    CancelPush(u64),
    WebTransportStream(u64),
    WebTransportData(usize),
}

/// Where a complete payload is: at the front of the input (zero-copy) or in
/// the reader's buffer (it arrived in pieces).
enum Source {
    Input(usize),
    Buffer,
}

/// Incremental frame parser for one stream.
///
/// Feed it with [`FrameReader::next`] until it returns `Ok(None)` (it needs
/// more bytes; all of the input was consumed), and call
/// [`FrameReader::finish`] when the stream ends. An error is final: every
/// later call returns it again.
#[derive(Debug, Clone)]
pub struct FrameReader {
    role: StreamRole,
    limits: FrameLimits,
    state: State,
    varint: PartialVarint,
    /// Payload bytes of a buffered frame that arrived in pieces; its capacity
    /// never exceeds the largest frame limit.
    buffer: Vec<u8>,
    started: bool,
    error: Option<FrameError>,
}

impl FrameReader {
    pub fn new(role: StreamRole) -> FrameReader {
        FrameReader::with_limits(role, FrameLimits::DEFAULT)
    }

    pub fn with_limits(role: StreamRole, limits: FrameLimits) -> FrameReader {
        FrameReader {
            role,
            limits,
            state: State::Type,
            varint: PartialVarint::default(),
            buffer: Vec::new(),
            started: false,
            error: None,
        }
    }

    pub fn role(&self) -> StreamRole {
        self.role
    }

    /// Whether the WebTransport signal was read: the rest is raw data.
    pub fn is_webtransport(&self) -> bool {
        self.state == State::WebTransport
    }

    /// Marks a request stream's CONNECT as accepted: from now on only DATA
    /// (and unknown extension frames) may follow. No effect on other roles.
    pub fn enter_tunnel(&mut self) {
        if self.role == StreamRole::Request {
            self.role = StreamRole::Tunnel;
        }
    }

    /// Consumes bytes from the front of `input` and returns the next event,
    /// or `Ok(None)` once all of `input` is consumed without completing one.
    pub fn next<'r, 's: 'r, 'i: 'r>(
        &'s mut self,
        input: &mut &'i [u8],
    ) -> Result<Option<Event<'r>>, FrameError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let ready = match self.step(input) {
            Ok(Some(ready)) => ready,
            Ok(None) => return Ok(None),
            Err(error) => {
                self.error = Some(error);
                return Err(error);
            }
        };
        let event = match ready {
            Ready::Data(len) => Event::Data(take(input, len)),
            Ready::Headers(Source::Input(len)) => Event::Headers(take(input, len)),
            Ready::Headers(Source::Buffer) => Event::Headers(&self.buffer),
            Ready::Settings(settings) => Event::Settings(settings),
            Ready::Goaway(id) => Event::Goaway(id),
            Ready::MaxPushId(id) => Event::MaxPushId(id),
            Ready::CancelPush(id) => Event::CancelPush(id),
            Ready::WebTransportStream(session_id) => Event::WebTransportStream { session_id },
            Ready::WebTransportData(len) => Event::WebTransportData(take(input, len)),
        };
        Ok(Some(event))
    }

    /// Checks that the stream may end here (the peer sent FIN).
    pub fn finish(&self) -> Result<(), FrameError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if self.role == StreamRole::Control {
            return Err(FrameError::ClosedCriticalStream);
        }
        match self.state {
            State::Type if !self.varint.is_partial() => Ok(()),
            State::WebTransport => Ok(()),
            _ => Err(FrameError::Truncated),
        }
    }

    fn step(&mut self, input: &mut &[u8]) -> Result<Option<Ready>, FrameError> {
        loop {
            match self.state {
                State::Type => {
                    let Some(frame_type) = self.varint.read(input) else {
                        return Ok(None);
                    };
                    self.state = self.on_frame_type(frame_type)?;
                }
                State::SessionId => {
                    let Some(session_id) = self.varint.read(input) else {
                        return Ok(None);
                    };
                    if !is_session_id(session_id) {
                        return Err(FrameError::InvalidSessionId(session_id));
                    }
                    self.state = State::WebTransport;
                    return Ok(Some(Ready::WebTransportStream(session_id)));
                }
                State::Length { frame_type } => {
                    let Some(len) = self.varint.read(input) else {
                        return Ok(None);
                    };
                    self.state = self.on_frame_length(frame_type, len)?;
                }
                State::Data { remaining } => {
                    if input.is_empty() {
                        return Ok(None);
                    }
                    let len = clamp(remaining, input.len());
                    self.state = after(remaining, len, |remaining| State::Data { remaining });
                    return Ok(Some(Ready::Data(len)));
                }
                State::Payload { frame_type, len } => {
                    return self.read_payload(frame_type, len, input);
                }
                State::Skip { remaining } => {
                    if input.is_empty() {
                        return Ok(None);
                    }
                    let len = clamp(remaining, input.len());
                    *input = &input[len..];
                    self.state = after(remaining, len, |remaining| State::Skip { remaining });
                }
                State::WebTransport => {
                    if input.is_empty() {
                        return Ok(None);
                    }
                    return Ok(Some(Ready::WebTransportData(input.len())));
                }
            }
        }
    }

    /// Checks a frame type against the stream's role.
    fn on_frame_type(&mut self, frame_type: u64) -> Result<State, FrameError> {
        let first = !self.started;
        self.started = true;
        if frame_type == WEBTRANSPORT_STREAM {
            if first && self.role == StreamRole::Request {
                return Ok(State::SessionId);
            }
            return Err(FrameError::MisplacedWebTransportSignal);
        }
        if RESERVED_HTTP2.contains(&frame_type) {
            return Err(FrameError::ReservedFrameType(frame_type));
        }
        let unexpected = match self.role {
            StreamRole::Control => {
                if first && frame_type != SETTINGS {
                    return Err(FrameError::MissingSettings(frame_type));
                }
                if !first && frame_type == SETTINGS {
                    return Err(FrameError::DuplicateSettings);
                }
                matches!(frame_type, DATA | HEADERS | PUSH_PROMISE)
            }
            StreamRole::Request => {
                matches!(frame_type, SETTINGS | GOAWAY | MAX_PUSH_ID | CANCEL_PUSH | PUSH_PROMISE)
            }
            StreamRole::Tunnel => matches!(
                frame_type,
                HEADERS | SETTINGS | GOAWAY | MAX_PUSH_ID | CANCEL_PUSH | PUSH_PROMISE
            ),
        };
        if unexpected {
            return Err(FrameError::UnexpectedFrame { frame_type, role: self.role });
        }
        Ok(State::Length { frame_type })
    }

    /// Decides how a frame's payload is read, checking its length.
    fn on_frame_length(&mut self, frame_type: u64, len: u64) -> Result<State, FrameError> {
        let limit = match frame_type {
            DATA if len == 0 => return Ok(State::Type),
            DATA => return Ok(State::Data { remaining: len }),
            HEADERS => self.limits.max_headers_len,
            SETTINGS => self.limits.max_settings_len,
            GOAWAY | MAX_PUSH_ID | CANCEL_PUSH => {
                if len == 0 || len > MAX_ID_FRAME_LEN {
                    return Err(FrameError::MalformedPayload(frame_type));
                }
                MAX_ID_FRAME_LEN as usize
            }
            _ if len == 0 => return Ok(State::Type),
            _ => return Ok(State::Skip { remaining: len }),
        };
        if len > limit as u64 {
            return Err(FrameError::FrameTooLarge { frame_type, len, max: limit });
        }
        self.buffer.clear();
        Ok(State::Payload { frame_type, len: len as usize })
    }

    /// Gathers a buffered frame's payload; parses it once complete.
    fn read_payload(
        &mut self,
        frame_type: u64,
        len: usize,
        input: &mut &[u8],
    ) -> Result<Option<Ready>, FrameError> {
        let source = if self.buffer.is_empty() && input.len() >= len {
            Source::Input(len)
        } else {
            self.buffer.reserve_exact(len - self.buffer.len());
            let take = (len - self.buffer.len()).min(input.len());
            self.buffer.extend_from_slice(&input[..take]);
            *input = &input[take..];
            if self.buffer.len() < len {
                return Ok(None);
            }
            Source::Buffer
        };
        self.state = State::Type;
        if frame_type == HEADERS {
            return Ok(Some(Ready::Headers(source)));
        }
        let payload = match source {
            Source::Input(len) => {
                let (payload, rest) = input.split_at(len);
                *input = rest;
                payload
            }
            Source::Buffer => &self.buffer[..],
        };
        let ready = match frame_type {
            SETTINGS => Ready::Settings(Settings::decode(payload)?),
            GOAWAY => Ready::Goaway(parse_id(frame_type, payload)?),
            MAX_PUSH_ID => Ready::MaxPushId(parse_id(frame_type, payload)?),
            _ => Ready::CancelPush(parse_id(frame_type, payload)?),
        };
        Ok(Some(ready))
    }
}

/// Splits `len` bytes off the front of `input`.
fn take<'i>(input: &mut &'i [u8], len: usize) -> &'i [u8] {
    let data: &'i [u8] = input;
    let (head, rest) = data.split_at(len);
    *input = rest;
    head
}

/// The smaller of a frame's remaining length and the bytes available.
fn clamp(remaining: u64, available: usize) -> usize {
    usize::try_from(remaining).map_or(available, |remaining| remaining.min(available))
}

/// The state after consuming `len` of `remaining` bytes.
fn after(remaining: u64, len: usize, partial: impl FnOnce(u64) -> State) -> State {
    let left = remaining - len as u64;
    if left == 0 {
        State::Type
    } else {
        partial(left)
    }
}

/// A payload that must be exactly one varint.
fn parse_id(frame_type: u64, payload: &[u8]) -> Result<u64, FrameError> {
    let mut input = payload;
    match read_varint(&mut input) {
        Some(id) if input.is_empty() => Ok(id),
        _ => Err(FrameError::MalformedPayload(frame_type)),
    }
}

/// Appends a frame header announcing `payload_len` bytes of payload.
pub fn encode_frame_header(frame_type: u64, payload_len: u64, out: &mut impl BufMut) {
    encode_varint(frame_type, out);
    encode_varint(payload_len, out);
}

/// Appends a DATA frame carrying `payload`.
pub fn encode_data_frame(payload: &[u8], out: &mut impl BufMut) {
    encode_frame_header(DATA, payload.len() as u64, out);
    out.put_slice(payload);
}

/// Appends a HEADERS frame carrying an encoded field section.
pub fn encode_headers_frame(field_section: &[u8], out: &mut impl BufMut) {
    encode_frame_header(HEADERS, field_section.len() as u64, out);
    out.put_slice(field_section);
}

/// Appends a GOAWAY frame. A server sends the first client-initiated
/// bidirectional stream id it will not process.
pub fn encode_goaway(id: u64, out: &mut impl BufMut) {
    encode_frame_header(GOAWAY, varint_len(id) as u64, out);
    encode_varint(id, out);
}

/// Appends the first bytes of a bidirectional WebTransport stream: the
/// signal 0x41 and the session id (its CONNECT stream id).
pub fn encode_webtransport_stream_signal(session_id: u64, out: &mut impl BufMut) {
    debug_assert!(is_session_id(session_id), "session id {session_id}");
    encode_varint(WEBTRANSPORT_STREAM, out);
    encode_varint(session_id, out);
}

/// Appends a frame whose payload `write` appends, without knowing its length
/// beforehand: the payload is written after a one-byte length and moved
/// right if its length needs a longer varint (rare: 64 bytes or more).
pub fn encode_frame_with(frame_type: u64, out: &mut BytesMut, write: impl FnOnce(&mut BytesMut)) {
    encode_varint(frame_type, out);
    let start = out.len();
    out.put_u8(0);
    write(out);
    let end = out.len();
    let payload_len = end - start - 1;
    let mut prefix = [0u8; VARINT_MAX_LEN];
    let prefix_len = write_varint(payload_len as u64, &mut prefix);
    if prefix_len > 1 {
        out.resize(end + prefix_len - 1, 0);
        out.copy_within(start + 1..end, start + prefix_len);
    }
    out[start..start + prefix_len].copy_from_slice(&prefix[..prefix_len]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An [`Event`] with owned data, adjacent data pieces merged, so that
    /// differently chunked inputs can be compared.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Owned {
        Data(Vec<u8>),
        Headers(Vec<u8>),
        Settings(Settings),
        Goaway(u64),
        MaxPushId(u64),
        CancelPush(u64),
        WebTransportStream(u64),
        WebTransportData(Vec<u8>),
    }

    fn push(events: &mut Vec<Owned>, event: Event<'_>) {
        let owned = match event {
            Event::Data(data) => {
                assert!(!data.is_empty());
                if let Some(Owned::Data(last)) = events.last_mut() {
                    last.extend_from_slice(data);
                    return;
                }
                Owned::Data(data.to_vec())
            }
            Event::WebTransportData(data) => {
                if let Some(Owned::WebTransportData(last)) = events.last_mut() {
                    last.extend_from_slice(data);
                    return;
                }
                Owned::WebTransportData(data.to_vec())
            }
            Event::Headers(block) => Owned::Headers(block.to_vec()),
            Event::Settings(settings) => Owned::Settings(settings),
            Event::Goaway(id) => Owned::Goaway(id),
            Event::MaxPushId(id) => Owned::MaxPushId(id),
            Event::CancelPush(id) => Owned::CancelPush(id),
            Event::WebTransportStream { session_id } => Owned::WebTransportStream(session_id),
        };
        events.push(owned);
    }

    /// Feeds `bytes` in chunks of `chunk` bytes and collects every event.
    fn read_all(role: StreamRole, bytes: &[u8], chunk: usize) -> Result<Vec<Owned>, FrameError> {
        let mut reader = FrameReader::new(role);
        let mut events = Vec::new();
        for piece in bytes.chunks(chunk) {
            let mut input = piece;
            while let Some(event) = reader.next(&mut input)? {
                push(&mut events, event);
            }
            assert!(input.is_empty(), "Ok(None) means the input was consumed");
        }
        reader.finish().map(|()| events)
    }

    fn control_stream() -> Vec<u8> {
        let mut out = Vec::new();
        Settings::server().encode_frame(&mut out);
        encode_frame_header(0x21, 3, &mut out); // grease frame
        out.extend_from_slice(b"abc");
        encode_frame_header(MAX_PUSH_ID, 1, &mut out);
        out.push(7);
        encode_frame_header(CANCEL_PUSH, 2, &mut out);
        out.extend_from_slice(&[0x40, 0x05]);
        encode_goaway(8, &mut out);
        out
    }

    #[test]
    fn control_stream_frames_any_chunking() {
        let bytes = control_stream();
        let expected = vec![
            Owned::Settings(Settings::server()),
            Owned::MaxPushId(7),
            Owned::CancelPush(5),
            Owned::Goaway(8),
        ];
        for chunk in 1..=bytes.len() {
            let mut reader = FrameReader::new(StreamRole::Control);
            let mut events = Vec::new();
            for piece in bytes.chunks(chunk) {
                let mut input = piece;
                while let Some(event) = reader.next(&mut input).unwrap() {
                    push(&mut events, event);
                }
            }
            assert_eq!(events, expected, "chunk {chunk}");
            assert_eq!(reader.finish(), Err(FrameError::ClosedCriticalStream));
            assert_eq!(FrameError::ClosedCriticalStream.code(), ErrorCode::CLOSED_CRITICAL_STREAM);
        }
    }

    fn request_stream() -> Vec<u8> {
        let mut out = Vec::new();
        encode_headers_frame(&[0, 0, 0xd1], &mut out);
        encode_frame_header(0x5f, 0, &mut out); // empty grease frame
        encode_data_frame(&[1u8; 300], &mut out);
        encode_data_frame(&[], &mut out);
        encode_frame_header(0xface, 4, &mut out); // unknown extension frame
        out.extend_from_slice(&[9; 4]);
        encode_data_frame(&[2u8; 5], &mut out);
        encode_headers_frame(&[0, 0], &mut out); // trailers
        out
    }

    #[test]
    fn request_stream_fed_one_byte_at_a_time() {
        let bytes = request_stream();
        let mut data = vec![1u8; 300];
        data.extend_from_slice(&[2; 5]);
        let expected =
            vec![Owned::Headers(vec![0, 0, 0xd1]), Owned::Data(data), Owned::Headers(vec![0, 0])];
        for chunk in [1, 2, 3, 7, 64, bytes.len()] {
            assert_eq!(read_all(StreamRole::Request, &bytes, chunk), Ok(expected.clone()));
        }
    }

    #[test]
    fn data_is_handed_out_without_buffering() {
        let mut bytes = Vec::new();
        encode_frame_header(DATA, 1 << 20, &mut bytes);
        let mut reader = FrameReader::new(StreamRole::Request);
        let mut input = &bytes[..];
        assert_eq!(reader.next(&mut input), Ok(None));
        let piece = [5u8; 1000];
        let mut input = &piece[..];
        assert_eq!(reader.next(&mut input), Ok(Some(Event::Data(&piece[..]))));
        assert_eq!(reader.buffer.capacity(), 0);
        assert_eq!(reader.finish(), Err(FrameError::Truncated));
    }

    #[test]
    fn webtransport_signal_turns_the_stream_raw() {
        let mut bytes = Vec::new();
        encode_webtransport_stream_signal(4, &mut bytes);
        // What follows looks like frames but is raw data.
        bytes.extend_from_slice(&[0x04, 0x00, 0x40, 0x41, 0xff]);
        let expected = vec![
            Owned::WebTransportStream(4),
            Owned::WebTransportData(vec![0x04, 0x00, 0x40, 0x41, 0xff]),
        ];
        for chunk in 1..=bytes.len() {
            assert_eq!(read_all(StreamRole::Request, &bytes, chunk), Ok(expected.clone()));
        }
    }

    #[test]
    fn caller_can_take_the_raw_bytes_after_the_signal() {
        let bytes = [0x40, 0x41, 0x08, 0xaa, 0xbb];
        let mut reader = FrameReader::new(StreamRole::Request);
        let mut input = &bytes[..];
        assert_eq!(reader.next(&mut input), Ok(Some(Event::WebTransportStream { session_id: 8 })));
        assert_eq!(input, &[0xaa, 0xbb]);
        assert!(reader.is_webtransport());
        assert_eq!(reader.finish(), Ok(()));
    }

    #[test]
    fn webtransport_signal_elsewhere_is_a_frame_error() {
        let mut bytes = Vec::new();
        encode_headers_frame(&[0, 0], &mut bytes);
        bytes.extend_from_slice(&[0x40, 0x41, 0x00]);
        let error = read_all(StreamRole::Request, &bytes, 1).unwrap_err();
        assert_eq!(error, FrameError::MisplacedWebTransportSignal);
        assert_eq!(error.code(), ErrorCode::FRAME_ERROR);
        let mut bytes = Vec::new();
        Settings::server().encode_frame(&mut bytes);
        bytes.extend_from_slice(&[0x40, 0x41, 0x00]);
        let error = read_all(StreamRole::Control, &bytes, 1).unwrap_err();
        assert_eq!(error.code(), ErrorCode::FRAME_ERROR);
    }

    #[test]
    fn webtransport_session_id_must_be_a_request_stream() {
        let error = read_all(StreamRole::Request, &[0x40, 0x41, 0x01], 3).unwrap_err();
        assert_eq!(error, FrameError::InvalidSessionId(1));
        assert_eq!(error.code(), ErrorCode::ID_ERROR);
    }

    #[test]
    fn http2_frame_types_are_unexpected() {
        for frame_type in RESERVED_HTTP2 {
            let mut bytes = Vec::new();
            encode_frame_header(frame_type, 0, &mut bytes);
            let error = read_all(StreamRole::Request, &bytes, 1).unwrap_err();
            assert_eq!(error, FrameError::ReservedFrameType(frame_type));
            assert_eq!(error.code(), ErrorCode::FRAME_UNEXPECTED);
        }
    }

    #[test]
    fn control_stream_must_start_with_settings_once() {
        let mut bytes = Vec::new();
        encode_goaway(0, &mut bytes);
        let error = read_all(StreamRole::Control, &bytes, 1).unwrap_err();
        assert_eq!(error.code(), ErrorCode::MISSING_SETTINGS);
        // Even a grease frame first is missing SETTINGS.
        let error = read_all(StreamRole::Control, &[0x21, 0x00], 1).unwrap_err();
        assert_eq!(error, FrameError::MissingSettings(0x21));

        let mut bytes = Vec::new();
        Settings::server().encode_frame(&mut bytes);
        Settings::server().encode_frame(&mut bytes);
        let error = read_all(StreamRole::Control, &bytes, 1).unwrap_err();
        assert_eq!(error, FrameError::DuplicateSettings);
        assert_eq!(error.code(), ErrorCode::FRAME_UNEXPECTED);
    }

    #[test]
    fn frames_on_the_wrong_stream_are_unexpected() {
        let cases: &[(StreamRole, u64)] = &[
            (StreamRole::Control, DATA),
            (StreamRole::Control, HEADERS),
            (StreamRole::Control, PUSH_PROMISE),
            (StreamRole::Request, SETTINGS),
            (StreamRole::Request, GOAWAY),
            (StreamRole::Request, MAX_PUSH_ID),
            (StreamRole::Request, CANCEL_PUSH),
            (StreamRole::Request, PUSH_PROMISE),
            (StreamRole::Tunnel, HEADERS),
        ];
        for &(role, frame_type) in cases {
            let mut bytes = Vec::new();
            if role == StreamRole::Control {
                Settings::server().encode_frame(&mut bytes);
            }
            encode_frame_header(frame_type, 1, &mut bytes);
            bytes.push(0);
            let error = read_all(role, &bytes, 1).unwrap_err();
            assert_eq!(error, FrameError::UnexpectedFrame { frame_type, role });
            assert_eq!(error.code(), ErrorCode::FRAME_UNEXPECTED);
        }
    }

    #[test]
    fn tunnel_accepts_data_after_connect() {
        let mut reader = FrameReader::new(StreamRole::Request);
        let mut bytes = Vec::new();
        encode_headers_frame(&[0, 0], &mut bytes);
        let mut input = &bytes[..];
        assert!(matches!(reader.next(&mut input), Ok(Some(Event::Headers(_)))));
        reader.enter_tunnel();
        assert_eq!(reader.role(), StreamRole::Tunnel);
        let mut bytes = Vec::new();
        encode_data_frame(b"capsules", &mut bytes);
        let mut input = &bytes[..];
        assert_eq!(reader.next(&mut input), Ok(Some(Event::Data(b"capsules"))));
    }

    #[test]
    fn oversize_headers_are_rejected_before_buffering() {
        let mut bytes = Vec::new();
        encode_frame_header(HEADERS, MAX_HEADERS_FRAME_LEN as u64 + 1, &mut bytes);
        let mut reader = FrameReader::new(StreamRole::Request);
        let mut input = &bytes[..];
        let error = reader.next(&mut input).unwrap_err();
        assert_eq!(error.code(), ErrorCode::EXCESSIVE_LOAD);
        assert_eq!(reader.buffer.capacity(), 0);
        // Errors are final.
        let mut input: &[u8] = &[0, 1, 0];
        assert_eq!(reader.next(&mut input), Err(error));
        assert_eq!(reader.finish(), Err(error));
    }

    #[test]
    fn headers_at_the_limit_are_buffered_exactly() {
        let block = vec![0u8; MAX_HEADERS_FRAME_LEN];
        let mut bytes = Vec::new();
        encode_headers_frame(&block, &mut bytes);
        let mut reader = FrameReader::new(StreamRole::Request);
        let mut seen = 0;
        for piece in bytes.chunks(1000) {
            let mut input = piece;
            while let Some(event) = reader.next(&mut input).unwrap() {
                assert_eq!(event, Event::Headers(&block));
                seen += 1;
            }
        }
        assert_eq!(seen, 1);
        assert_eq!(reader.buffer.capacity(), MAX_HEADERS_FRAME_LEN);
    }

    #[test]
    fn oversize_settings_are_excessive_load() {
        let mut bytes = Vec::new();
        encode_frame_header(SETTINGS, MAX_SETTINGS_FRAME_LEN as u64 + 1, &mut bytes);
        let error = read_all(StreamRole::Control, &bytes, 1).unwrap_err();
        assert_eq!(error.code(), ErrorCode::EXCESSIVE_LOAD);
    }

    #[test]
    fn id_frames_must_hold_exactly_one_varint() {
        let cases: &[&[u8]] = &[
            &[0x04, 0x00, 0x07, 0x00],             // GOAWAY, empty
            &[0x04, 0x00, 0x07, 0x02, 0x01, 0x02], // GOAWAY, trailing byte
            &[0x04, 0x00, 0x07, 0x01, 0x40],       // GOAWAY, truncated varint
            &[0x04, 0x00, 0x0d, 0x09],             // MAX_PUSH_ID, 9 bytes
        ];
        for &bytes in cases {
            let error = read_all(StreamRole::Control, bytes, 1).unwrap_err();
            assert!(matches!(error, FrameError::MalformedPayload(_)), "{bytes:?}");
            assert_eq!(error.code(), ErrorCode::FRAME_ERROR);
        }
    }

    #[test]
    fn settings_errors_keep_their_codes() {
        // SETTINGS with ENABLE_PUSH (0x02).
        let error = read_all(StreamRole::Control, &[0x04, 0x02, 0x02, 0x00], 1).unwrap_err();
        assert_eq!(error, FrameError::Settings(SettingsError::ReservedHttp2(2)));
        assert_eq!(error.code(), ErrorCode::SETTINGS_ERROR);
    }

    #[test]
    fn stream_ending_inside_a_frame_is_a_frame_error() {
        let bytes = request_stream();
        for cut in 1..bytes.len() {
            let result = read_all(StreamRole::Request, &bytes[..cut], 1);
            // Cuts at frame boundaries end the stream cleanly.
            if let Err(error) = result {
                assert_eq!(error, FrameError::Truncated, "cut {cut}");
                assert_eq!(error.code(), ErrorCode::FRAME_ERROR);
            }
        }
        assert_eq!(read_all(StreamRole::Request, &bytes[..3], 1), Err(FrameError::Truncated));
        assert_eq!(read_all(StreamRole::Request, &[0x40, 0x41], 1), Err(FrameError::Truncated));
    }

    #[test]
    fn frame_with_unknown_length_is_patched() {
        for payload_len in [0usize, 1, 63, 64, 16_383, 16_384] {
            let mut out = BytesMut::new();
            out.put_u8(0xee);
            encode_frame_with(HEADERS, &mut out, |out| out.put_bytes(0x5a, payload_len));
            let mut expected = vec![0xee];
            encode_headers_frame(&vec![0x5a; payload_len], &mut expected);
            assert_eq!(&out[..], &expected[..], "{payload_len}");
        }
    }

    #[test]
    fn errors_convert_to_h3_errors() {
        let error: crate::proto::h3::H3Error = FrameError::DuplicateSettings.into();
        assert_eq!(error.code, ErrorCode::FRAME_UNEXPECTED);
        assert_eq!(error.reason, "second SETTINGS frame");
    }
}
