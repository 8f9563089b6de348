//! WebSocket (RFC 6455), sans-IO: the server side, and the client side that
//! the load tester and the integration tests use.
//!
//! This module owns the WebSocket half of a TCP connection after the HTTP/1.1
//! upgrade: [`accept`] validates the opening handshake and builds the 101
//! response; [`Decoder`] turns received bytes into [`Incoming`] messages; the
//! `encode_*` functions append server frames to an output buffer. Nothing here
//! touches a socket, a clock or a thread: the driver feeds the bytes it read
//! (starting with [`crate::proto::http1::RequestParser::take_buffered`]) and
//! writes the bytes the encoders appended.
//!
//! The client role mirrors it: [`client_handshake_request`] builds the
//! upgrade request, [`check_handshake_response`] validates the server's 101,
//! [`Decoder::with_role`] with [`Role::Client`] decodes the server's unmasked
//! frames (and refuses masked ones), and the `encode_*_masked` functions
//! append masked client frames (section 5.3).
//!
//! No extension is ever negotiated, so every RSV bit must be zero. Every limit
//! is named in [`Limits`] and is checked from the frame header, before the
//! payload is buffered. Every violation is a [`WsError`] carrying the close
//! code to send (1002, 1007 or 1009), never a panic; errors are final.

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use sha1::{Digest, Sha1};

use crate::proto::http1::{self, Request, Response};

/// The GUID that RFC 6455 (section 1.3) appends to the client's key.
pub const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The only protocol version this server speaks (RFC 6455, section 4.1).
pub const PROTOCOL_VERSION: &str = "13";
/// Control frames carry at most this many payload bytes (section 5.5).
pub const MAX_CONTROL_PAYLOAD_BYTES: usize = 125;
/// A close reason fits in a control frame after the 2-byte code.
pub const MAX_CLOSE_REASON_BYTES: usize = MAX_CONTROL_PAYLOAD_BYTES - 2;
/// Default upper bound of one message: a 64 KiB game frame plus headroom
/// for its envelope.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024 + 16;
/// Length of a decoded `Sec-WebSocket-Key` (section 4.1).
pub const KEY_BYTES: usize = 16;
/// Length of a `Sec-WebSocket-Key` in base64, padding included.
const KEY_BASE64_BYTES: usize = 24;

/// Close codes (RFC 6455, section 7.4.1) this module sends or names.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const UNSUPPORTED_DATA: u16 = 1003;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const POLICY_VIOLATION: u16 = 1008;
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    pub const INTERNAL_ERROR: u16 = 1011;
}

// ---------------------------------------------------------------------------
// Opening handshake
// ---------------------------------------------------------------------------

/// An accepted opening handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The `101 Switching Protocols` response to send.
    pub response: Response,
    /// The subprotocol selected, echoed in `Sec-WebSocket-Protocol`.
    pub protocol: Option<String>,
}

/// Why an opening handshake was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("a WebSocket handshake must be a GET")]
    NotGet,
    #[error("a WebSocket handshake must be HTTP/1.1")]
    NotHttp11,
    #[error("missing Upgrade: websocket")]
    MissingUpgrade,
    #[error("missing Connection: Upgrade")]
    MissingConnectionUpgrade,
    #[error("missing Sec-WebSocket-Version")]
    MissingVersion,
    #[error("unsupported Sec-WebSocket-Version; this server speaks 13")]
    UnsupportedVersion,
    #[error("Sec-WebSocket-Key must be one base64 value of 16 bytes")]
    InvalidKey,
}

impl HandshakeError {
    /// 426 for a version we do not speak (section 4.4), 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::UnsupportedVersion => 426,
            _ => 400,
        }
    }

    /// The error response: a JSON body, `Connection: close`, and for 426 the
    /// `Sec-WebSocket-Version` the client should retry with.
    pub fn response(&self) -> Response {
        let code = match self {
            HandshakeError::UnsupportedVersion => "upgrade_required",
            _ => "bad_websocket_handshake",
        };
        let response = http1::error_response(self.status(), code, &self.to_string());
        match self {
            HandshakeError::UnsupportedVersion => {
                response.header("Sec-WebSocket-Version", PROTOCOL_VERSION)
            }
            _ => response,
        }
    }
}

/// Validates a client's opening handshake (RFC 6455, section 4.2.1) and
/// builds the 101 response. The subprotocol is the first one the client
/// offers that `allowed_protocols` holds; if none matches, the response names
/// none (section 4.2.2) and the driver decides whether that is acceptable.
/// `Sec-WebSocket-Extensions` is ignored: no extension is ever accepted.
/// Origin checks are policy, left to the caller.
pub fn accept(request: &Request, allowed_protocols: &[&str]) -> Result<Handshake, HandshakeError> {
    if request.method != http1::Method::Get {
        return Err(HandshakeError::NotGet);
    }
    if request.version != http1::Version::Http11 {
        return Err(HandshakeError::NotHttp11);
    }
    if !request.has_token("upgrade", "websocket") {
        return Err(HandshakeError::MissingUpgrade);
    }
    if !request.has_token("connection", "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    check_version(request)?;
    let key = client_key(request)?;
    let protocol = select_protocol(request, allowed_protocols);
    let mut response = Response::empty(101)
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Accept", &accept_key(key));
    if let Some(protocol) = &protocol {
        response = response.header("Sec-WebSocket-Protocol", protocol);
    }
    Ok(Handshake { response, protocol })
}

fn check_version(request: &Request) -> Result<(), HandshakeError> {
    let mut versions = request.header_values("sec-websocket-version");
    let Some(version) = versions.next() else {
        return Err(HandshakeError::MissingVersion);
    };
    match versions.next().is_none() && version == PROTOCOL_VERSION.as_bytes() {
        true => Ok(()),
        false => Err(HandshakeError::UnsupportedVersion),
    }
}

/// The client's key, exactly as sent, after checking that it is one base64
/// value of 16 bytes. The length is checked first, so decoding never needs
/// more than a small stack buffer.
fn client_key(request: &Request) -> Result<&[u8], HandshakeError> {
    let mut keys = request.header_values("sec-websocket-key");
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(HandshakeError::InvalidKey);
    };
    if key.len() != KEY_BASE64_BYTES {
        return Err(HandshakeError::InvalidKey);
    }
    let mut decoded = [0u8; KEY_BASE64_BYTES / 4 * 3];
    match base64::engine::general_purpose::STANDARD.decode_slice(key, &mut decoded) {
        Ok(KEY_BYTES) => Ok(key),
        _ => Err(HandshakeError::InvalidKey),
    }
}

fn select_protocol(request: &Request, allowed_protocols: &[&str]) -> Option<String> {
    request
        .header_values("sec-websocket-protocol")
        .flat_map(|value| value.split(|&b| b == b','))
        .map(|offered| offered.trim_ascii())
        .find_map(|offered| allowed_protocols.iter().find(|allowed| allowed.as_bytes() == offered))
        .map(|protocol| (*protocol).to_owned())
}

/// `Sec-WebSocket-Accept` for a client key: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &[u8]) -> String {
    let mut hasher = Sha1::new();
    hasher.update(key);
    hasher.update(ACCEPT_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(hasher.finalize())
}

// ---------------------------------------------------------------------------
// Opening handshake, client side
// ---------------------------------------------------------------------------

/// Largest 101 response head a client reads; a server that sends more is
/// refused rather than buffered.
pub const MAX_RESPONSE_HEAD_BYTES: usize = 8 * 1024;
/// Most header lines a client reads in the 101 response.
pub const MAX_RESPONSE_HEADERS: usize = 32;

/// `Sec-WebSocket-Key` for 16 random bytes: base64, 24 characters. The
/// caller draws the bytes (this module never reads a random source).
pub fn encode_client_key(nonce: [u8; KEY_BYTES]) -> String {
    base64::engine::general_purpose::STANDARD.encode(nonce)
}

/// The client's opening handshake (RFC 6455, section 4.1): a GET of `path`
/// on `host` (as the `Host` header spells it, port included when not the
/// default), with `key` from [`encode_client_key`], offering `protocols` in order
/// of preference, and any `extra_headers` (e.g. `Origin`, `User-Agent`).
pub fn client_handshake_request(
    host: &str,
    path: &str,
    key: &str,
    protocols: &[&str],
    extra_headers: &[(&str, &str)],
) -> Vec<u8> {
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {PROTOCOL_VERSION}\r\n"
    );
    if !protocols.is_empty() {
        request.push_str(&format!("Sec-WebSocket-Protocol: {}\r\n", protocols.join(", ")));
    }
    for (name, value) in extra_headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.into_bytes()
}

/// A server's accepted opening handshake, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHandshake {
    /// Bytes of the response head; WebSocket frames may follow them in the
    /// same read.
    pub head_len: usize,
    /// The subprotocol the server selected, one of those offered.
    pub protocol: Option<String>,
}

/// Why a client refuses the server's opening handshake (RFC 6455, section
/// 4.1, the client's checks on the response).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientHandshakeError {
    #[error("malformed HTTP response head")]
    Malformed,
    #[error("response head longer than {MAX_RESPONSE_HEAD_BYTES} bytes")]
    TooLarge,
    #[error("the server answered {status} instead of 101 Switching Protocols")]
    Status { status: u16 },
    #[error("missing Upgrade: websocket in the response")]
    MissingUpgrade,
    #[error("missing Connection: Upgrade in the response")]
    MissingConnectionUpgrade,
    #[error("Sec-WebSocket-Accept does not match the key")]
    BadAccept,
    #[error("the server selected the subprotocol {0:?}, which was not offered")]
    UnofferedProtocol(String),
    #[error("the server selected an extension, and none was offered")]
    UnofferedExtension,
}

/// Checks the server's answer to [`client_handshake_request`]. Returns
/// `Ok(None)` until the whole head has arrived, then the accepted handshake
/// or why it is refused. `offered_protocols` is what the request offered.
pub fn check_handshake_response(
    bytes: &[u8],
    key: &str,
    offered_protocols: &[&str],
) -> Result<Option<ServerHandshake>, ClientHandshakeError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    let head_len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if bytes.len() > MAX_RESPONSE_HEAD_BYTES => {
            return Err(ClientHandshakeError::TooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ClientHandshakeError::TooLarge),
        Err(_) => return Err(ClientHandshakeError::Malformed),
    };
    if head_len > MAX_RESPONSE_HEAD_BYTES {
        return Err(ClientHandshakeError::TooLarge);
    }
    let status = response.code.unwrap_or(0);
    if status != 101 {
        return Err(ClientHandshakeError::Status { status });
    }
    let headers = response.headers;
    let values = |name: &'static str| {
        headers
            .iter()
            .filter(move |header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value)
    };
    let has_token = |name: &'static str, token: &str| {
        values(name)
            .flat_map(|value| value.split(|&byte| byte == b','))
            .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    };
    if !has_token("upgrade", "websocket") {
        return Err(ClientHandshakeError::MissingUpgrade);
    }
    if !has_token("connection", "upgrade") {
        return Err(ClientHandshakeError::MissingConnectionUpgrade);
    }
    let expected = accept_key(key.as_bytes());
    let mut accepts = values("sec-websocket-accept");
    match (accepts.next(), accepts.next()) {
        (Some(accept), None) if accept.trim_ascii() == expected.as_bytes() => {}
        _ => return Err(ClientHandshakeError::BadAccept),
    }
    if values("sec-websocket-extensions").next().is_some() {
        return Err(ClientHandshakeError::UnofferedExtension);
    }
    let protocol = selected_protocol(values("sec-websocket-protocol"), offered_protocols)?;
    Ok(Some(ServerHandshake { head_len, protocol }))
}

/// The subprotocol of the response: at most one value, and one we offered.
fn selected_protocol<'v>(
    mut values: impl Iterator<Item = &'v [u8]>,
    offered: &[&str],
) -> Result<Option<String>, ClientHandshakeError> {
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(value.trim_ascii()).into_owned();
    if values.next().is_some() || !offered.contains(&text.as_str()) {
        return Err(ClientHandshakeError::UnofferedProtocol(text));
    }
    Ok(Some(text))
}

// ---------------------------------------------------------------------------
// Decoding frames
// ---------------------------------------------------------------------------

/// Per-connection limits of the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message, summed over its fragments. Over it: close 1009.
    pub max_message_bytes: usize,
    /// Largest payload of one frame. Over it: close 1009.
    pub max_frame_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_frame_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// A message or control frame received from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A whole binary message, reassembled from its fragments.
    Binary(Bytes),
    /// A whole text message, checked to be UTF-8.
    Text(Bytes),
    Ping(Bytes),
    Pong(Bytes),
    /// The client's Close: its code and reason, if it sent them.
    Close(Option<(u16, String)>),
}

/// A violation of the protocol or a limit, with the close code to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("websocket error {code}: {reason}")]
pub struct WsError {
    pub code: u16,
    pub reason: &'static str,
}

impl WsError {
    const fn protocol(reason: &'static str) -> WsError {
        WsError { code: close_code::PROTOCOL_ERROR, reason }
    }

    /// Appends the Close frame that reports this error to the client.
    pub fn encode_close(&self, out: &mut BytesMut) {
        encode_close(self.code, self.reason, out);
    }
}

const UNMASKED: WsError = WsError::protocol("client frames must be masked");
const MASKED: WsError = WsError::protocol("server frames must not be masked");
const RESERVED_BITS: WsError =
    WsError::protocol("reserved bits set without a negotiated extension");
const UNKNOWN_OPCODE: WsError = WsError::protocol("unknown opcode");
const FRAGMENTED_CONTROL: WsError = WsError::protocol("fragmented control frame");
const CONTROL_TOO_LONG: WsError = WsError::protocol("control frame longer than 125 bytes");
const ORPHAN_CONTINUATION: WsError = WsError::protocol("continuation frame without a message");
const INTERLEAVED_MESSAGE: WsError = WsError::protocol("new message inside a fragmented message");
const NON_MINIMAL_LENGTH: WsError = WsError::protocol("payload length not minimally encoded");
const LENGTH_TOP_BIT: WsError = WsError::protocol("64-bit payload length with the top bit set");
const CLOSE_ONE_BYTE: WsError = WsError::protocol("close payload of one byte");
const INVALID_CLOSE_CODE: WsError = WsError::protocol("invalid close code");
const INVALID_UTF8: WsError =
    WsError { code: close_code::INVALID_PAYLOAD, reason: "invalid UTF-8" };
const TOO_BIG: WsError = WsError { code: close_code::MESSAGE_TOO_BIG, reason: "message too big" };

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Result<Opcode, WsError> {
        match bits {
            0x0 => Ok(Opcode::Continuation),
            0x1 => Ok(Opcode::Text),
            0x2 => Ok(Opcode::Binary),
            0x8 => Ok(Opcode::Close),
            0x9 => Ok(Opcode::Ping),
            0xA => Ok(Opcode::Pong),
            _ => Err(UNKNOWN_OPCODE),
        }
    }

    fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// A validated frame header: everything before the payload.
#[derive(Debug, Clone, Copy)]
struct FrameHeader {
    fin: bool,
    opcode: Opcode,
    /// The masking key: always present in client frames, never in server ones.
    mask: Option<[u8; 4]>,
    header_len: usize,
    payload_len: usize,
}

/// A fragmented message being reassembled.
#[derive(Debug)]
struct PartialMessage {
    text: bool,
    data: BytesMut,
    /// Length of the prefix of `data` known to be valid UTF-8 (text only),
    /// so that invalid text fails at the fragment that breaks it.
    utf8_checked: usize,
}

/// Which end of the connection a [`Decoder`] serves. A server decodes
/// client frames, which must be masked; a client decodes server frames,
/// which must not be (RFC 6455, section 5.1: either violation closes the
/// connection with 1002).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    #[default]
    Server,
    Client,
}

#[derive(Debug)]
enum DecoderState {
    Open,
    /// The client's Close was returned; nothing after it is decoded.
    Closed,
    Failed(WsError),
}

/// Decodes the peer's frames of one connection into [`Incoming`] values:
/// a server's decoder ([`Decoder::new`]) reads client frames, a client's
/// ([`Decoder::with_role`] with [`Role::Client`]) reads server frames.
///
/// Call [`feed`](Self::feed) with each chunk read, then [`next`](Self::next)
/// until it returns `Ok(None)`. After the client's Close, input is discarded
/// (RFC 6455, section 5.5.1: no data follows a Close); after an error, every
/// call returns that error again and the driver sends
/// [`WsError::encode_close`] and closes.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    role: Role,
    buffer: BytesMut,
    message: Option<PartialMessage>,
    state: DecoderState,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(Limits::default())
    }
}

impl Decoder {
    /// A server's decoder: reads masked client frames.
    pub fn new(limits: Limits) -> Decoder {
        Decoder::with_role(limits, Role::Server)
    }

    /// A decoder for the given end of the connection.
    pub fn with_role(limits: Limits, role: Role) -> Decoder {
        Decoder { limits, role, buffer: BytesMut::new(), message: None, state: DecoderState::Open }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Appends received bytes; discards them once the decoder has stopped.
    pub fn feed(&mut self, data: &[u8]) {
        if let DecoderState::Open = self.state {
            self.buffer.extend_from_slice(data);
        }
    }

    /// Bytes received but not yet decoded.
    pub fn buffered_len(&self) -> usize {
        self.buffer.len()
    }

    /// Returns the next message or control frame, `Ok(None)` until more
    /// bytes arrive (or forever after the client's Close), or the error that
    /// ends the connection.
    // Not an Iterator: a decode error must reach the caller, and `Ok(None)`
    // means "feed more", not "finished".
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Incoming>, WsError> {
        match self.state {
            DecoderState::Open => {}
            DecoderState::Closed => return Ok(None),
            DecoderState::Failed(error) => return Err(error),
        }
        let result = self.decode();
        match &result {
            Err(error) => self.stop(DecoderState::Failed(*error)),
            Ok(Some(Incoming::Close(_))) => self.stop(DecoderState::Closed),
            Ok(_) => {}
        }
        result
    }

    fn stop(&mut self, state: DecoderState) {
        self.state = state;
        self.buffer = BytesMut::new();
        self.message = None;
    }

    /// Decodes frames until one completes a value. Each turn consumes a frame
    /// of at least two bytes, so the loop is bounded by the bytes buffered.
    fn decode(&mut self) -> Result<Option<Incoming>, WsError> {
        loop {
            let assembled = self.message.as_ref().map(|message| message.data.len());
            let Some(header) = parse_header(&self.buffer, assembled, &self.limits, self.role)?
            else {
                return Ok(None);
            };
            if self.buffer.len() - header.header_len < header.payload_len {
                return Ok(None);
            }
            let _ = self.buffer.split_to(header.header_len);
            let mut payload = self.buffer.split_to(header.payload_len);
            if let Some(mask) = header.mask {
                unmask(&mut payload, mask);
            }
            if let Some(incoming) = self.handle_frame(header, payload)? {
                return Ok(Some(incoming));
            }
        }
    }

    fn handle_frame(
        &mut self,
        header: FrameHeader,
        payload: BytesMut,
    ) -> Result<Option<Incoming>, WsError> {
        match header.opcode {
            Opcode::Ping => Ok(Some(Incoming::Ping(payload.freeze()))),
            Opcode::Pong => Ok(Some(Incoming::Pong(payload.freeze()))),
            Opcode::Close => parse_close(&payload).map(|close| Some(Incoming::Close(close))),
            Opcode::Text | Opcode::Binary => {
                let text = header.opcode == Opcode::Text;
                let message = PartialMessage { text, data: payload, utf8_checked: 0 };
                self.advance_message(message, header.fin)
            }
            Opcode::Continuation => {
                // parse_header already refused a continuation without a message.
                let Some(mut message) = self.message.take() else {
                    return Err(ORPHAN_CONTINUATION);
                };
                message.data.extend_from_slice(&payload);
                self.advance_message(message, header.fin)
            }
        }
    }

    /// Checks a message that just grew by one frame; returns it if `fin`,
    /// otherwise keeps it for the next continuation frame.
    fn advance_message(
        &mut self,
        mut message: PartialMessage,
        fin: bool,
    ) -> Result<Option<Incoming>, WsError> {
        check_utf8(&mut message, fin)?;
        if fin {
            return Ok(Some(message.finish()));
        }
        self.message = Some(message);
        Ok(None)
    }
}

impl PartialMessage {
    fn finish(self) -> Incoming {
        match self.text {
            true => Incoming::Text(self.data.freeze()),
            false => Incoming::Binary(self.data.freeze()),
        }
    }
}

/// Parses and validates the frame header at the start of `buffer`, or
/// returns `None` if it is incomplete. Every check that the bytes present
/// allow is made before waiting for more, so a violation is reported as
/// early as possible. `assembled` is the size of the fragmented message in
/// progress, if any; `role` is the end of the connection decoding.
fn parse_header(
    buffer: &[u8],
    assembled: Option<usize>,
    limits: &Limits,
    role: Role,
) -> Result<Option<FrameHeader>, WsError> {
    let [first, second, ..] = *buffer else {
        return Ok(None);
    };
    let fin = first & 0x80 != 0;
    if first & 0x70 != 0 {
        return Err(RESERVED_BITS);
    }
    let opcode = Opcode::from_bits(first & 0x0F)?;
    let masked = second & 0x80 != 0;
    match role {
        Role::Server if !masked => return Err(UNMASKED),
        Role::Client if masked => return Err(MASKED),
        _ => {}
    }
    let short_len = second & 0x7F;
    check_sequence(fin, opcode, short_len, assembled)?;
    let Some((payload_len, length_bytes)) = extended_length(short_len, &buffer[2..])? else {
        return Ok(None);
    };
    check_size(opcode, payload_len, assembled, limits)?;
    let mask_len = if masked { 4 } else { 0 };
    let header_len = 2 + length_bytes + mask_len;
    let mask = match buffer.get(header_len - mask_len..header_len) {
        None => return Ok(None),
        Some(&[m0, m1, m2, m3]) => Some([m0, m1, m2, m3]),
        Some(_) => None,
    };
    // check_size bounded payload_len by limits that are usize.
    let payload_len = usize::try_from(payload_len).map_err(|_| TOO_BIG)?;
    Ok(Some(FrameHeader { fin, opcode, mask, header_len, payload_len }))
}

/// Checks the rules on control frames and on the order of fragments.
fn check_sequence(
    fin: bool,
    opcode: Opcode,
    short_len: u8,
    assembled: Option<usize>,
) -> Result<(), WsError> {
    match opcode {
        _ if opcode.is_control() && !fin => Err(FRAGMENTED_CONTROL),
        _ if opcode.is_control() && usize::from(short_len) > MAX_CONTROL_PAYLOAD_BYTES => {
            Err(CONTROL_TOO_LONG)
        }
        Opcode::Continuation if assembled.is_none() => Err(ORPHAN_CONTINUATION),
        Opcode::Text | Opcode::Binary if assembled.is_some() => Err(INTERLEAVED_MESSAGE),
        _ => Ok(()),
    }
}

/// Decodes the payload length from the 7-bit field and the bytes after the
/// first two. Returns the length and how many extension bytes it used, or
/// `None` if those bytes have not arrived. RFC 6455 (section 5.2) requires
/// the minimal encoding and a zero top bit.
fn extended_length(short_len: u8, rest: &[u8]) -> Result<Option<(u64, usize)>, WsError> {
    match short_len {
        126 => {
            let Some(&[b0, b1]) = rest.get(..2) else {
                return Ok(None);
            };
            let len = u64::from(u16::from_be_bytes([b0, b1]));
            if len < 126 {
                return Err(NON_MINIMAL_LENGTH);
            }
            Ok(Some((len, 2)))
        }
        127 => {
            let Some(bytes) = rest.get(..8).and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
            else {
                return Ok(None);
            };
            let len = u64::from_be_bytes(bytes);
            if len >> 63 != 0 {
                return Err(LENGTH_TOP_BIT);
            }
            if len <= u64::from(u16::MAX) {
                return Err(NON_MINIMAL_LENGTH);
            }
            Ok(Some((len, 8)))
        }
        short => Ok(Some((u64::from(short), 0))),
    }
}

/// Checks the frame and the message it extends against the limits.
fn check_size(
    opcode: Opcode,
    payload_len: u64,
    assembled: Option<usize>,
    limits: &Limits,
) -> Result<(), WsError> {
    if opcode.is_control() {
        return Ok(());
    }
    let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    let message_len = payload_len.saturating_add(as_u64(assembled.unwrap_or(0)));
    match payload_len > as_u64(limits.max_frame_bytes)
        || message_len > as_u64(limits.max_message_bytes)
    {
        true => Err(TOO_BIG),
        false => Ok(()),
    }
}

/// Checks the UTF-8 of a text message so far. A sequence cut at the end of
/// a non-final fragment is left for the next fragment to complete.
fn check_utf8(message: &mut PartialMessage, fin: bool) -> Result<(), WsError> {
    if !message.text {
        return Ok(());
    }
    let unchecked = message.data.get(message.utf8_checked..).unwrap_or_default();
    match std::str::from_utf8(unchecked) {
        Ok(_) => message.utf8_checked = message.data.len(),
        Err(error) if error.error_len().is_none() && !fin => {
            message.utf8_checked += error.valid_up_to()
        }
        Err(_) => return Err(INVALID_UTF8),
    }
    Ok(())
}

/// Parses a Close payload (RFC 6455, section 5.5.1): empty, or a valid code
/// followed by a UTF-8 reason.
fn parse_close(payload: &[u8]) -> Result<Option<(u16, String)>, WsError> {
    let (code, reason) = match payload {
        [] => return Ok(None),
        [_] => return Err(CLOSE_ONE_BYTE),
        [high, low, reason @ ..] => (u16::from_be_bytes([*high, *low]), reason),
    };
    if !is_valid_close_code(code) {
        return Err(INVALID_CLOSE_CODE);
    }
    let reason = std::str::from_utf8(reason).map_err(|_| INVALID_UTF8)?;
    Ok(Some((code, reason.to_owned())))
}

/// Whether `code` may appear in a Close frame on the wire: the codes RFC
/// 6455 defines for endpoints to send (1000-1003, 1007-1011), the later
/// IANA-registered 1012-1014, and the ranges for libraries and applications
/// (3000-4999). 1004 is reserved, 1005, 1006 and 1015 must never be sent.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// XORs `payload` with the masking key, eight bytes at a time.
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let [m0, m1, m2, m3] = mask;
    let word = u64::from_ne_bytes([m0, m1, m2, m3, m0, m1, m2, m3]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        if let Ok(bytes) = <[u8; 8]>::try_from(&*chunk) {
            chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
        }
    }
    // The remainder starts at a multiple of 8, so the key starts at byte 0.
    for (byte, key) in chunks.into_remainder().iter_mut().zip(mask.iter().cycle()) {
        *byte ^= key;
    }
}

// ---------------------------------------------------------------------------
// Encoding server frames (never masked: section 5.1)
// ---------------------------------------------------------------------------

const FIN: u8 = 0x80;
const OPCODE_TEXT: u8 = 0x1;
const OPCODE_BINARY: u8 = 0x2;
const OPCODE_CLOSE: u8 = 0x8;
const OPCODE_PING: u8 = 0x9;
const OPCODE_PONG: u8 = 0xA;
/// Longest frame header a server writes: 2 bytes and a 64-bit length.
pub const MAX_SERVER_HEADER_BYTES: usize = 10;

/// Appends a frame header with the minimal length encoding.
fn put_header(out: &mut BytesMut, first: u8, payload_len: usize) {
    match payload_len {
        0..=125 => out.put_slice(&[first, payload_len as u8]),
        126..=0xFFFF => {
            out.put_slice(&[first, 126]);
            out.put_u16(payload_len as u16);
        }
        _ => {
            out.put_slice(&[first, 127]);
            out.put_u64(payload_len as u64);
        }
    }
}

/// Appends the header of a single-frame binary message of `payload_len`
/// bytes. The caller appends exactly that many bytes after it, which lets
/// already-encoded game frames be concatenated into one message in place.
pub fn encode_binary_header(payload_len: usize, out: &mut BytesMut) {
    put_header(out, FIN | OPCODE_BINARY, payload_len);
}

/// Appends a single-frame binary message.
pub fn encode_binary(payload: &[u8], out: &mut BytesMut) {
    encode_binary_header(payload.len(), out);
    out.put_slice(payload);
}

/// Appends a single-frame text message.
pub fn encode_text(text: &str, out: &mut BytesMut) {
    put_header(out, FIN | OPCODE_TEXT, text.len());
    out.put_slice(text.as_bytes());
}

/// Appends a Ping. A payload over 125 bytes is truncated to fit.
pub fn encode_ping(payload: &[u8], out: &mut BytesMut) {
    put_control(out, OPCODE_PING, payload);
}

/// Appends a Pong, usually echoing a Ping's payload. A payload over 125
/// bytes is truncated to fit.
pub fn encode_pong(payload: &[u8], out: &mut BytesMut) {
    put_control(out, OPCODE_PONG, payload);
}

fn put_control(out: &mut BytesMut, opcode: u8, payload: &[u8]) {
    let payload = &payload[..payload.len().min(MAX_CONTROL_PAYLOAD_BYTES)];
    put_header(out, FIN | opcode, payload.len());
    out.put_slice(payload);
}

/// Appends a Close with `code` and `reason`, the reason cut at a character
/// boundary to fit 123 bytes. A code that must not be sent (see
/// [`is_valid_close_code`]) gives an empty Close, which means "no status".
pub fn encode_close(code: u16, reason: &str, out: &mut BytesMut) {
    if !is_valid_close_code(code) {
        encode_close_empty(out);
        return;
    }
    let reason = truncate_at_char_boundary(reason, MAX_CLOSE_REASON_BYTES);
    put_header(out, FIN | OPCODE_CLOSE, 2 + reason.len());
    out.put_u16(code);
    out.put_slice(reason.as_bytes());
}

/// Appends a Close without status, as the answer to a Close without one.
pub fn encode_close_empty(out: &mut BytesMut) {
    put_header(out, FIN | OPCODE_CLOSE, 0);
}

fn truncate_at_char_boundary(text: &str, max_bytes: usize) -> &str {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

// ---------------------------------------------------------------------------
// Encoding client frames (always masked: section 5.3)
// ---------------------------------------------------------------------------

/// Longest frame header a client writes: a 64-bit length and the mask key.
pub const MAX_CLIENT_HEADER_BYTES: usize = MAX_SERVER_HEADER_BYTES + 4;

/// Appends a masked frame: header with the mask bit, the key, then the
/// payload XORed with it in place.
fn put_masked(out: &mut BytesMut, first: u8, payload: &[u8], mask_key: [u8; 4]) {
    let header_start = out.len();
    put_header(out, first, payload.len());
    out[header_start + 1] |= 0x80;
    out.put_slice(&mask_key);
    let payload_start = out.len();
    out.put_slice(payload);
    // Masking and unmasking are the same XOR.
    unmask(&mut out[payload_start..], mask_key);
}

/// Appends a single-frame binary message, masked with `mask_key`. The key
/// must be fresh for every frame and unpredictable to scripts sharing the
/// connection's path (section 10.3); the caller draws it.
pub fn encode_binary_masked(payload: &[u8], mask_key: [u8; 4], out: &mut BytesMut) {
    put_masked(out, FIN | OPCODE_BINARY, payload, mask_key);
}

/// Appends a single-frame text message, masked.
pub fn encode_text_masked(text: &str, mask_key: [u8; 4], out: &mut BytesMut) {
    put_masked(out, FIN | OPCODE_TEXT, text.as_bytes(), mask_key);
}

/// Appends a masked Ping. A payload over 125 bytes is truncated to fit.
pub fn encode_ping_masked(payload: &[u8], mask_key: [u8; 4], out: &mut BytesMut) {
    let payload = &payload[..payload.len().min(MAX_CONTROL_PAYLOAD_BYTES)];
    put_masked(out, FIN | OPCODE_PING, payload, mask_key);
}

/// Appends a masked Pong. A payload over 125 bytes is truncated to fit.
pub fn encode_pong_masked(payload: &[u8], mask_key: [u8; 4], out: &mut BytesMut) {
    let payload = &payload[..payload.len().min(MAX_CONTROL_PAYLOAD_BYTES)];
    put_masked(out, FIN | OPCODE_PONG, payload, mask_key);
}

/// Appends a masked Close, as [`encode_close`] builds it: a code that must
/// not be sent gives an empty Close.
pub fn encode_close_masked(code: u16, reason: &str, mask_key: [u8; 4], out: &mut BytesMut) {
    if !is_valid_close_code(code) {
        put_masked(out, FIN | OPCODE_CLOSE, &[], mask_key);
        return;
    }
    let reason = truncate_at_char_boundary(reason, MAX_CLOSE_REASON_BYTES);
    let mut payload = [0u8; MAX_CONTROL_PAYLOAD_BYTES];
    payload[..2].copy_from_slice(&code.to_be_bytes());
    payload[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
    put_masked(out, FIN | OPCODE_CLOSE, &payload[..2 + reason.len()], mask_key);
}

// ---------------------------------------------------------------------------
// Closing handshake
// ---------------------------------------------------------------------------

/// Where a connection is in the closing handshake (RFC 6455, section 7).
/// Each side sends one Close; the connection is closed once both have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CloseState {
    #[default]
    Open,
    /// We sent Close and wait for the client's.
    CloseSent,
    /// The client sent Close; we owe ours.
    CloseReceived,
    /// Both Close frames crossed: the driver closes the TCP connection
    /// (the server closes first, section 7.1.1).
    Closed,
}

impl CloseState {
    /// Records that we sent a Close frame.
    pub fn on_close_sent(&mut self) {
        *self = match self {
            CloseState::Open => CloseState::CloseSent,
            CloseState::CloseReceived | CloseState::Closed => CloseState::Closed,
            CloseState::CloseSent => CloseState::CloseSent,
        };
    }

    /// Records a Close frame from the client. Returns whether we must answer
    /// with our own Close (we have not sent one yet).
    #[must_use]
    pub fn on_close_received(&mut self) -> bool {
        let must_answer = *self == CloseState::Open;
        *self = match self {
            CloseState::Open | CloseState::CloseReceived => CloseState::CloseReceived,
            CloseState::CloseSent | CloseState::Closed => CloseState::Closed,
        };
        must_answer
    }

    /// Whether data messages may still be sent: not after our Close, and not
    /// after the client's (the answer to it is due now).
    pub fn can_send_data(&self) -> bool {
        *self == CloseState::Open
    }

    pub fn is_closed(&self) -> bool {
        *self == CloseState::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http1::RequestParser;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn request(head: &str) -> Request {
        let mut parser = RequestParser::default();
        parser.feed(head.as_bytes());
        parser.next_request().unwrap().expect("a complete request")
    }

    fn upgrade_request(extra: &str) -> String {
        format!(
            "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {RFC_KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
    }

    /// A masked client frame with the minimal length encoding.
    fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        put_header(&mut out, first, payload.len());
        out[1] |= 0x80;
        out.extend_from_slice(&MASK);
        let start = out.len();
        out.extend_from_slice(payload);
        unmask(&mut out[start..], MASK);
        out.to_vec()
    }

    fn decode_all_with(limits: Limits, bytes: &[u8]) -> Result<Vec<Incoming>, WsError> {
        let mut decoder = Decoder::new(limits);
        decoder.feed(bytes);
        let mut messages = Vec::new();
        while let Some(message) = decoder.next()? {
            messages.push(message);
        }
        Ok(messages)
    }

    fn decode_all(bytes: &[u8]) -> Result<Vec<Incoming>, WsError> {
        decode_all_with(Limits::default(), bytes)
    }

    fn error_of(bytes: &[u8]) -> WsError {
        decode_all(bytes).expect_err("the frames should be refused")
    }

    #[test]
    fn accepts_the_rfc_6455_example_key() {
        assert_eq!(accept_key(RFC_KEY.as_bytes()), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let handshake = accept(&request(&upgrade_request("")), &["ludus.v1"]).unwrap();
        assert_eq!(handshake.protocol, None);
        let mut out = BytesMut::new();
        handshake.response.encode(&mut out, true, false);
        assert_eq!(
            &out[..],
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        );
    }

    #[test]
    fn selects_the_first_offered_allowed_protocol() {
        let offered = upgrade_request(
            "Sec-WebSocket-Protocol: chat, ludus.v2\r\nSec-WebSocket-Protocol: ludus.v1\r\n",
        );
        let handshake = accept(&request(&offered), &["ludus.v1", "ludus.v2"]).unwrap();
        assert_eq!(handshake.protocol.as_deref(), Some("ludus.v2"));
        assert!(handshake
            .response
            .headers
            .contains(&("Sec-WebSocket-Protocol".into(), "ludus.v2".into())));
        let none = accept(&request(&offered), &["other"]).unwrap();
        assert_eq!(none.protocol, None);
        assert!(none.response.headers.iter().all(|(name, _)| name != "Sec-WebSocket-Protocol"));
    }

    #[test]
    fn accepts_token_lists_in_any_case() {
        let head = upgrade_request("")
            .replace("Upgrade: websocket", "Upgrade: foo, WebSocket")
            .replace("Connection: Upgrade", "Connection: keep-alive, UPGRADE");
        assert!(accept(&request(&head), &[]).is_ok());
    }

    #[test]
    fn refuses_invalid_handshakes() {
        let base = upgrade_request("");
        let cases = [
            (base.replace("GET", "POST"), HandshakeError::NotGet),
            (base.replace("HTTP/1.1", "HTTP/1.0"), HandshakeError::NotHttp11),
            (base.replace("Upgrade: websocket\r\n", ""), HandshakeError::MissingUpgrade),
            (base.replace("Upgrade: websocket", "Upgrade: h2c"), HandshakeError::MissingUpgrade),
            (
                base.replace("Connection: Upgrade", "Connection: keep-alive"),
                HandshakeError::MissingConnectionUpgrade,
            ),
            (base.replace("Sec-WebSocket-Version: 13\r\n", ""), HandshakeError::MissingVersion),
            (base.replace("Version: 13", "Version: 8"), HandshakeError::UnsupportedVersion),
            (base.replace("Version: 13", "Version: 13, 8"), HandshakeError::UnsupportedVersion),
            (
                base.replace(&format!("Sec-WebSocket-Key: {RFC_KEY}\r\n"), ""),
                HandshakeError::InvalidKey,
            ),
            (base.replace(RFC_KEY, "dGhlIHNhbXBsZSBub25jZQ"), HandshakeError::InvalidKey),
            (base.replace(RFC_KEY, "dGhlIHNhbXBsZSBub25jZT0="), HandshakeError::InvalidKey),
            (base.replace(RFC_KEY, "dGhlIHNhbXBsZSBub25j!Q=="), HandshakeError::InvalidKey),
            (base.replace(RFC_KEY, "dGhlIHNhbXBsZSBub25jZR=="), HandshakeError::InvalidKey),
        ];
        for (head, expected) in &cases {
            assert_eq!(accept(&request(head), &[]), Err(*expected), "{head}");
        }
        let doubled = upgrade_request(&format!("Sec-WebSocket-Key: {RFC_KEY}\r\n"));
        assert_eq!(accept(&request(&doubled), &[]), Err(HandshakeError::InvalidKey));
    }

    #[test]
    fn handshake_errors_map_to_400_and_426() {
        assert_eq!(HandshakeError::InvalidKey.response().status, 400);
        let upgrade_required = HandshakeError::UnsupportedVersion.response();
        assert_eq!(upgrade_required.status, 426);
        assert!(upgrade_required.closes_connection());
        assert!(upgrade_required.headers.contains(&("Sec-WebSocket-Version".into(), "13".into())));
    }

    #[test]
    fn rfc_6455_section_5_7_examples() {
        // A single-frame masked text message.
        let hello = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        assert_eq!(decode_all(&hello), Ok(vec![Incoming::Text(Bytes::from_static(b"Hello"))]));
        // The unmasked examples are server frames: a server refuses them.
        assert_eq!(error_of(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]), UNMASKED);
        // A fragmented text message ("Hel", "lo"), masked.
        let fragmented = [client_frame(0x01, b"Hel"), client_frame(0x80, b"lo")].concat();
        assert_eq!(decode_all(&fragmented), Ok(vec![Incoming::Text(Bytes::from_static(b"Hello"))]));
        // A masked Ping and the RFC's masked Pong.
        assert_eq!(
            decode_all(&client_frame(0x89, b"Hello")),
            Ok(vec![Incoming::Ping(Bytes::from_static(b"Hello"))])
        );
        let pong = [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        assert_eq!(decode_all(&pong), Ok(vec![Incoming::Pong(Bytes::from_static(b"Hello"))]));
        // 256 bytes and 64 KiB of binary: 16-bit and 64-bit lengths.
        for len in [256usize, 65536] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let frame = client_frame(0x82, &payload);
            let expected_header: &[u8] = match len {
                256 => &[0x82, 0xFE, 0x01, 0x00],
                _ => &[0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0],
            };
            assert!(frame.starts_with(expected_header));
            assert_eq!(decode_all(&frame), Ok(vec![Incoming::Binary(Bytes::from(payload))]));
        }
    }

    #[test]
    fn encodes_the_rfc_examples_unmasked() {
        let mut out = BytesMut::new();
        encode_text("Hello", &mut out);
        assert_eq!(&out[..], [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        out.clear();
        encode_ping(b"Hello", &mut out);
        assert_eq!(&out[..], [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        out.clear();
        encode_pong(b"Hello", &mut out);
        assert_eq!(&out[..2], [0x8a, 0x05]);
        out.clear();
        encode_binary(&[0; 256], &mut out);
        assert_eq!(&out[..4], [0x82, 0x7E, 0x01, 0x00]);
        assert_eq!(out.len(), 4 + 256);
        out.clear();
        encode_binary(&vec![0; 65536], &mut out);
        assert_eq!(&out[..10], [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(out.len(), 10 + 65536);
        out.clear();
        encode_binary_header(125, &mut out);
        encode_binary_header(126, &mut out);
        encode_binary_header(65535, &mut out);
        assert_eq!(&out[..], [0x82, 125, 0x82, 126, 0, 126, 0x82, 126, 0xFF, 0xFF]);
        out.clear();
        encode_ping(&[7; 200], &mut out);
        assert_eq!(out.len(), 2 + 125, "control payloads are truncated to 125 bytes");
    }

    #[test]
    fn encode_close_truncates_the_reason_at_a_char_boundary() {
        let mut out = BytesMut::new();
        encode_close(1000, "bye", &mut out);
        assert_eq!(&out[..], [0x88, 0x05, 0x03, 0xE8, b'b', b'y', b'e']);
        out.clear();
        let reason = format!("{}é", "a".repeat(122));
        encode_close(1001, &reason, &mut out);
        assert_eq!(out[1] as usize, 2 + 122, "the two-byte é would end at 124");
        assert_eq!(&out[4..], "a".repeat(122).as_bytes());
        out.clear();
        encode_close(1006, "never on the wire", &mut out);
        assert_eq!(&out[..], [0x88, 0x00]);
        out.clear();
        TOO_BIG.encode_close(&mut out);
        assert_eq!(&out[..4], [0x88, 2 + 15, 0x03, 0xF1]);
        // The close frames we send decode as valid closes.
        let mut decoder_input = client_frame(0x88, &out[2..]);
        decoder_input.extend(client_frame(0x81, b"ignored after close"));
        assert_eq!(
            decode_all(&decoder_input),
            Ok(vec![Incoming::Close(Some((1009, "message too big".into())))])
        );
    }

    /// Proves that a sequence of frames (interleaved control frames inside a
    /// fragmented message included) decodes the same at every split.
    #[test]
    fn frames_split_at_every_byte() {
        let stream = [
            client_frame(0x81, "héllo".as_bytes()),
            client_frame(0x02, b"par"),
            client_frame(0x89, b"ping"),
            client_frame(0x00, b""),
            client_frame(0x80, b"ts"),
            client_frame(0x01, &"é".as_bytes()[..1]),
            client_frame(0x80, &"é".as_bytes()[1..]),
            client_frame(0x8A, b""),
            client_frame(0x82, &[9; 300]),
            client_frame(0x88, b"\x03\xe8done"),
        ]
        .concat();
        let expected = vec![
            Incoming::Text(Bytes::from("héllo")),
            Incoming::Ping(Bytes::from_static(b"ping")),
            Incoming::Binary(Bytes::from_static(b"parts")),
            Incoming::Text(Bytes::from("é")),
            Incoming::Pong(Bytes::new()),
            Incoming::Binary(Bytes::from(vec![9; 300])),
            Incoming::Close(Some((1000, "done".into()))),
        ];
        assert_eq!(decode_all(&stream).unwrap(), expected);
        for split in 0..=stream.len() {
            let mut decoder = Decoder::default();
            let mut messages = Vec::new();
            for part in [&stream[..split], &stream[split..]] {
                decoder.feed(part);
                while let Some(message) = decoder.next().unwrap() {
                    messages.push(message);
                }
            }
            assert_eq!(messages, expected, "split at {split}");
        }
        let mut decoder = Decoder::default();
        let mut messages = Vec::new();
        for byte in &stream {
            decoder.feed(std::slice::from_ref(byte));
            while let Some(message) = decoder.next().unwrap() {
                messages.push(message);
            }
        }
        assert_eq!(messages, expected);
    }

    #[test]
    fn protocol_errors() {
        let masked =
            |first: u8, second: u8, rest: &[u8]| [&[first, second | 0x80][..], rest].concat();
        let cases: Vec<(Vec<u8>, WsError)> = vec![
            (vec![0x82, 0x00], UNMASKED),
            (masked(0xC2, 0, &MASK), RESERVED_BITS),
            (masked(0xA2, 0, &MASK), RESERVED_BITS),
            (masked(0x92, 0, &MASK), RESERVED_BITS),
            (masked(0x83, 0, &MASK), UNKNOWN_OPCODE),
            (masked(0x87, 0, &MASK), UNKNOWN_OPCODE),
            (masked(0x8B, 0, &MASK), UNKNOWN_OPCODE),
            (masked(0x8F, 0, &MASK), UNKNOWN_OPCODE),
            (masked(0x09, 0, &MASK), FRAGMENTED_CONTROL),
            (masked(0x89, 126, &[0, 126]), CONTROL_TOO_LONG),
            (masked(0x88, 127, &[]), CONTROL_TOO_LONG),
            (client_frame(0x80, b"x"), ORPHAN_CONTINUATION),
            ([client_frame(0x02, b"a"), client_frame(0x82, b"b")].concat(), INTERLEAVED_MESSAGE),
            ([client_frame(0x01, b"a"), client_frame(0x01, b"b")].concat(), INTERLEAVED_MESSAGE),
            (masked(0x82, 126, &[0, 125]), NON_MINIMAL_LENGTH),
            (masked(0x82, 127, &[0, 0, 0, 0, 0, 0, 0xFF, 0xFF]), NON_MINIMAL_LENGTH),
            (masked(0x82, 127, &[0x80, 0, 0, 0, 0, 0, 0, 1]), LENGTH_TOP_BIT),
            (client_frame(0x81, b"\xff"), INVALID_UTF8),
            (client_frame(0x81, b"\xed\xa0\x80"), INVALID_UTF8),
            ([client_frame(0x01, b"ok\xc3"), client_frame(0x80, b"")].concat(), INVALID_UTF8),
            (client_frame(0x88, b"\x03"), CLOSE_ONE_BYTE),
            (client_frame(0x88, b"\x03\xe8\xff"), INVALID_UTF8),
        ];
        for (bytes, expected) in cases {
            assert_eq!(decode_all(&bytes), Err(expected), "{bytes:02x?}");
        }
    }

    /// Proves that invalid text fails at the fragment that breaks it, before
    /// the message ends.
    #[test]
    fn invalid_text_fails_fast() {
        let mut decoder = Decoder::default();
        decoder.feed(&client_frame(0x01, b"ok"));
        assert_eq!(decoder.next(), Ok(None));
        decoder.feed(&client_frame(0x00, b"\xc3\x28"));
        assert_eq!(decoder.next(), Err(INVALID_UTF8));
        assert_eq!(decoder.next(), Err(INVALID_UTF8), "errors are sticky");
    }

    #[test]
    fn close_codes() {
        let close = |code: u16| decode_all(&client_frame(0x88, &code.to_be_bytes()));
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ] {
            assert_eq!(
                close(code),
                Ok(vec![Incoming::Close(Some((code, String::new())))]),
                "{code}"
            );
        }
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
            assert_eq!(close(code), Err(INVALID_CLOSE_CODE), "{code}");
        }
        assert_eq!(decode_all(&client_frame(0x88, b"")), Ok(vec![Incoming::Close(None)]));
    }

    #[test]
    fn max_message_at_limit_and_one_over() {
        let limits = Limits { max_message_bytes: 1000, max_frame_bytes: 1000 };
        let at = client_frame(0x82, &[1; 1000]);
        assert_eq!(
            decode_all_with(limits, &at),
            Ok(vec![Incoming::Binary(Bytes::from(vec![1; 1000]))])
        );
        // Only the header of the oversized frame is fed: no payload buffered.
        let over = client_frame(0x82, &[1; 1001]);
        let mut decoder = Decoder::new(limits);
        decoder.feed(&over[..4]);
        assert_eq!(decoder.next(), Err(TOO_BIG));
        assert_eq!(decoder.buffered_len(), 0);
        // Fragments add up against the message limit, checked per header.
        let mut decoder = Decoder::new(limits);
        decoder.feed(&client_frame(0x02, &[1; 600]));
        assert_eq!(decoder.next(), Ok(None));
        decoder.feed(&client_frame(0x80, &[1; 401])[..4]);
        assert_eq!(decoder.next(), Err(TOO_BIG));
        let fragments = [client_frame(0x02, &[1; 600]), client_frame(0x80, &[1; 400])].concat();
        assert_eq!(decode_all_with(limits, &fragments).unwrap().len(), 1);
        // The frame limit applies on its own too.
        let small_frames = Limits { max_message_bytes: 1000, max_frame_bytes: 100 };
        assert_eq!(decode_all_with(small_frames, &client_frame(0x82, &[1; 101])), Err(TOO_BIG));
        // The default limit: 64 KiB + 16 fits, one more does not.
        let default_at = client_frame(0x82, &vec![0; DEFAULT_MAX_MESSAGE_BYTES]);
        assert_eq!(decode_all(&default_at).unwrap().len(), 1);
        let default_over = client_frame(0x82, &vec![0; DEFAULT_MAX_MESSAGE_BYTES + 1]);
        assert_eq!(decode_all(&default_over[..10]), Err(TOO_BIG));
    }

    #[test]
    fn huge_declared_lengths_error_without_buffering() {
        let header = [0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(decode_all(&header), Err(TOO_BIG));
    }

    #[test]
    fn unmask_matches_bytewise_xor_at_every_length() {
        for len in 0..40 {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut fast = payload.clone();
            unmask(&mut fast, MASK);
            let slow: Vec<u8> = payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]).collect();
            assert_eq!(fast, slow, "length {len}");
        }
    }

    #[test]
    fn close_state_transitions() {
        let mut ours_first = CloseState::default();
        assert!(ours_first.can_send_data());
        ours_first.on_close_sent();
        assert_eq!(ours_first, CloseState::CloseSent);
        assert!(!ours_first.can_send_data());
        assert!(!ours_first.on_close_received());
        assert!(ours_first.is_closed());

        let mut theirs_first = CloseState::Open;
        assert!(theirs_first.on_close_received());
        assert_eq!(theirs_first, CloseState::CloseReceived);
        assert!(!theirs_first.on_close_received(), "one answer only");
        theirs_first.on_close_sent();
        assert!(theirs_first.is_closed());
    }

    #[test]
    fn upgrade_then_frames_in_the_same_read() {
        let mut parser = RequestParser::default();
        let mut bytes = upgrade_request("").into_bytes();
        bytes.extend(client_frame(0x82, b"early"));
        parser.feed(&bytes);
        let request = parser.next_request().unwrap().unwrap();
        assert!(request.is_websocket_upgrade());
        assert!(accept(&request, &[]).is_ok());
        let mut decoder = Decoder::default();
        decoder.feed(&parser.take_buffered());
        assert_eq!(decoder.next(), Ok(Some(Incoming::Binary(Bytes::from_static(b"early")))));
    }

    /// Proves the decoder never panics and never returns more than its limits
    /// allow, on 50,000 seeded inputs: random bytes, and valid frame streams
    /// with random bytes flipped, fed in random chunks.
    #[test]
    fn random_input_never_panics() {
        let mut rng = crate::proto::wire::Rng::new(0x6455);
        let limits = Limits { max_message_bytes: 512, max_frame_bytes: 300 };
        let valid = [
            client_frame(0x01, "hé".as_bytes()),
            client_frame(0x89, b"p"),
            client_frame(0x80, b"llo"),
            client_frame(0x82, &[3; 200]),
            client_frame(0x02, &[4; 130]),
            client_frame(0x80, &[5; 10]),
            client_frame(0x88, b"\x03\xe8x"),
        ]
        .concat();
        for case in 0..50_000 {
            let bytes: Vec<u8> = if case % 2 == 0 {
                (0..rng.below(600)).map(|_| rng.next_u64() as u8).collect()
            } else {
                let mut bytes = valid.clone();
                for _ in 0..1 + rng.below(4) {
                    let index = rng.below(bytes.len() as u64) as usize;
                    bytes[index] ^= 1 << rng.below(8);
                }
                bytes
            };
            let mut decoder = Decoder::new(limits);
            let mut rest = &bytes[..];
            'feed: while !rest.is_empty() {
                let take = (1 + rng.below(80) as usize).min(rest.len());
                decoder.feed(&rest[..take]);
                rest = &rest[take..];
                loop {
                    match decoder.next() {
                        Ok(Some(Incoming::Binary(data) | Incoming::Text(data))) => {
                            assert!(data.len() <= 512)
                        }
                        Ok(Some(Incoming::Ping(data) | Incoming::Pong(data))) => {
                            assert!(data.len() <= 125)
                        }
                        Ok(Some(Incoming::Close(_))) => {}
                        Ok(None) => break,
                        Err(error) => {
                            assert!(matches!(error.code, 1002 | 1007 | 1009));
                            break 'feed;
                        }
                    }
                }
            }
        }
    }

    /// Proves that every frame the client encoders write decodes in a
    /// server's decoder to what was encoded, across the three length
    /// encodings, with a different key per frame.
    #[test]
    fn client_frames_round_trip_through_the_server_decoder() {
        let mut out = BytesMut::new();
        let mut expected = Vec::new();
        for (index, len) in [0usize, 1, 7, 125, 126, 300, 65535, 65536].into_iter().enumerate() {
            let payload: Vec<u8> = (0..len).map(|i| (i * 31 + index) as u8).collect();
            let key = [index as u8, 0xA5, 0x5A, !(index as u8)];
            encode_binary_masked(&payload, key, &mut out);
            expected.push(Incoming::Binary(Bytes::from(payload)));
        }
        encode_text_masked("héllo", [1, 2, 3, 4], &mut out);
        encode_ping_masked(b"are you there", [5, 6, 7, 8], &mut out);
        encode_pong_masked(&[9; 200], [9, 10, 11, 12], &mut out);
        encode_close_masked(1000, "bye", [13, 14, 15, 16], &mut out);
        expected.extend([
            Incoming::Text(Bytes::from("héllo")),
            Incoming::Ping(Bytes::from_static(b"are you there")),
            Incoming::Pong(Bytes::from(vec![9; 125])),
            Incoming::Close(Some((1000, "bye".into()))),
        ]);
        let limits = Limits { max_message_bytes: 70_000, max_frame_bytes: 70_000 };
        assert_eq!(decode_all_with(limits, &out), Ok(expected));
        // The RFC's masked "Hello" (section 5.7), byte for byte.
        out.clear();
        encode_text_masked("Hello", MASK, &mut out);
        assert_eq!(&out[..], [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
        out.clear();
        encode_close_masked(1006, "never on the wire", MASK, &mut out);
        assert_eq!(&out[..], [0x88, 0x80, 0x37, 0xfa, 0x21, 0x3d]);
    }

    /// Proves the client role reads the server's unmasked frames, split at
    /// every byte, and refuses a masked one (RFC 6455, section 5.1).
    #[test]
    fn client_decoder_reads_server_frames_and_refuses_masked_ones() {
        let mut server = BytesMut::new();
        encode_binary(&[7; 300], &mut server);
        encode_ping(b"p", &mut server);
        encode_binary(&vec![8; 70_000], &mut server);
        encode_close(1001, "going", &mut server);
        let expected = vec![
            Incoming::Binary(Bytes::from(vec![7; 300])),
            Incoming::Ping(Bytes::from_static(b"p")),
            Incoming::Binary(Bytes::from(vec![8; 70_000])),
            Incoming::Close(Some((1001, "going".into()))),
        ];
        let limits = Limits { max_message_bytes: 80_000, max_frame_bytes: 80_000 };
        for split in [0, 1, 2, 3, 4, 303, 306, 70_310, server.len()] {
            let mut decoder = Decoder::with_role(limits, Role::Client);
            assert_eq!(decoder.role(), Role::Client);
            let mut messages = Vec::new();
            for part in [&server[..split], &server[split..]] {
                decoder.feed(part);
                while let Some(message) = decoder.next().unwrap() {
                    messages.push(message);
                }
            }
            assert_eq!(messages, expected, "split at {split}");
        }
        let mut decoder = Decoder::with_role(Limits::default(), Role::Client);
        decoder.feed(&client_frame(0x82, b"masked"));
        assert_eq!(decoder.next(), Err(MASKED));
        assert_eq!(Decoder::default().role(), Role::Server);
    }

    /// Proves the client's request passes the server's `accept`, and the
    /// server's 101 passes the client's check, frames in the same read
    /// included.
    #[test]
    fn client_handshake_round_trip_with_the_server() {
        let key = encode_client_key(*b"the sample nonce");
        assert_eq!(key, RFC_KEY);
        let request_bytes = client_handshake_request(
            "127.0.0.1:8080",
            "/ws",
            &key,
            &["ludus.v1", "other"],
            &[("Origin", "http://localhost:8080")],
        );
        let request = request(std::str::from_utf8(&request_bytes).unwrap());
        assert_eq!(request.header("origin"), Some("http://localhost:8080"));
        let handshake = accept(&request, &["ludus.v1"]).unwrap();
        let mut response = BytesMut::new();
        handshake.response.encode(&mut response, true, false);
        let head_len = response.len();
        encode_binary(b"early", &mut response);
        for partial in 0..head_len {
            assert_eq!(
                check_handshake_response(&response[..partial], &key, &["ludus.v1", "other"]),
                Ok(None)
            );
        }
        let accepted = check_handshake_response(&response, &key, &["ludus.v1", "other"]);
        assert_eq!(
            accepted,
            Ok(Some(ServerHandshake { head_len, protocol: Some("ludus.v1".into()) }))
        );
        let mut decoder = Decoder::with_role(Limits::default(), Role::Client);
        decoder.feed(&response[head_len..]);
        assert_eq!(decoder.next(), Ok(Some(Incoming::Binary(Bytes::from_static(b"early")))));
    }

    #[test]
    fn client_refuses_bad_handshake_responses() {
        let ok = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n",
            accept_key(RFC_KEY.as_bytes())
        );
        let check = |head: &str| check_handshake_response(head.as_bytes(), RFC_KEY, &["ludus.v1"]);
        assert_eq!(check(&format!("{ok}\r\n")).unwrap().unwrap().protocol, None);
        let with = |extra: &str| format!("{ok}{extra}\r\n");
        assert!(check(&with("Sec-WebSocket-Protocol: ludus.v1\r\n")).unwrap().is_some());
        let cases = [
            (
                "HTTP/1.1 426 Upgrade Required\r\n\r\n".to_owned(),
                ClientHandshakeError::Status { status: 426 },
            ),
            (
                ok.replace("Upgrade: websocket\r\n", "") + "\r\n",
                ClientHandshakeError::MissingUpgrade,
            ),
            (
                ok.replace("Connection: Upgrade", "Connection: close") + "\r\n",
                ClientHandshakeError::MissingConnectionUpgrade,
            ),
            (
                ok.replace("s3pPLMBiTxaQ9kYGzzhZRbK", "AAAAAAAAAAAAAAAAAAAAAAA") + "\r\n",
                ClientHandshakeError::BadAccept,
            ),
            (
                with("Sec-WebSocket-Protocol: chat\r\n"),
                ClientHandshakeError::UnofferedProtocol("chat".into()),
            ),
            (
                with("Sec-WebSocket-Extensions: permessage-deflate\r\n"),
                ClientHandshakeError::UnofferedExtension,
            ),
            ("HTTP/1.1 1O1 Nope\r\n\r\n".to_owned(), ClientHandshakeError::Malformed),
        ];
        for (head, expected) in cases {
            assert_eq!(check(&head), Err(expected), "{head}");
        }
        let endless = format!("{ok}X-Padding: {}\r\n", "x".repeat(MAX_RESPONSE_HEAD_BYTES));
        assert_eq!(check(&endless), Err(ClientHandshakeError::TooLarge));
    }

    /// Proves the client-role decoder never panics either: server frame
    /// streams with random bytes flipped, fed in random chunks.
    #[test]
    fn client_role_random_input_never_panics() {
        let mut rng = crate::proto::wire::Rng::new(0xc11e);
        let limits = Limits { max_message_bytes: 512, max_frame_bytes: 300 };
        let mut valid = BytesMut::new();
        encode_binary(&[3; 200], &mut valid);
        encode_ping(b"p", &mut valid);
        encode_text("héllo", &mut valid);
        encode_close(1000, "x", &mut valid);
        for _ in 0..20_000 {
            let mut bytes = valid.to_vec();
            for _ in 0..1 + rng.below(4) {
                let index = rng.below(bytes.len() as u64) as usize;
                bytes[index] ^= 1 << rng.below(8);
            }
            let mut decoder = Decoder::with_role(limits, Role::Client);
            let mut rest = &bytes[..];
            'feed: while !rest.is_empty() {
                let take = (1 + rng.below(80) as usize).min(rest.len());
                decoder.feed(&rest[..take]);
                rest = &rest[take..];
                loop {
                    match decoder.next() {
                        Ok(Some(Incoming::Binary(data) | Incoming::Text(data))) => {
                            assert!(data.len() <= 512)
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(error) => {
                            assert!(matches!(error.code, 1002 | 1007 | 1009));
                            break 'feed;
                        }
                    }
                }
            }
        }
    }
}
