//! HTTP/1.1, server side, sans-IO.
//!
//! This module owns the bytes of one HTTP/1.1 connection in both directions:
//! [`RequestParser`] turns received bytes into [`Request`]s, and [`Response`]
//! turns a status, headers and a body into bytes to send. It never touches a
//! socket, a clock or a thread: the driver (the shard's event loop) feeds what
//! it read, takes whole requests, and writes what the encoder appended.
//!
//! Hostile input is the normal case. Every limit is named in [`Limits`] and is
//! checked before the bytes it guards are buffered; every malformed input ends
//! in a typed [`HttpError`], never a panic. Errors are final for the
//! connection: the driver sends [`HttpError::response`] and closes, because
//! after a framing error nobody can tell where the next request starts.
//!
//! Request bodies are framed by `Content-Length` only. `Transfer-Encoding` is
//! refused with 501: the API never needs chunked uploads, and a message that
//! carries both `Transfer-Encoding` and `Content-Length` is the classic request
//! smuggling vector (RFC 9112, section 6.3), so the simplest safe parser is one
//! that admits exactly one framing.

use bytes::{BufMut, Bytes, BytesMut};

/// Default upper bound of a request head (request line, headers, blank line).
pub const DEFAULT_MAX_HEAD_BYTES: usize = 16 * 1024;
/// Default upper bound of the number of header fields in one request.
pub const DEFAULT_MAX_HEADERS: usize = 64;
/// Default upper bound of a request body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default upper bound of a request target (path and query).
pub const DEFAULT_MAX_URI_BYTES: usize = 8 * 1024;

/// The interim response a driver sends when [`RequestParser::poll_continue`]
/// says the client waits for permission to send its body.
pub const CONTINUE_RESPONSE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Per-connection limits of the request parser. Exceeding one is an error
/// with its own status (431, 414, 413), detected before the excess is buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head, counting empty lines before the request line.
    pub max_head_bytes: usize,
    /// Largest number of header fields in one request.
    pub max_headers: usize,
    /// Largest `Content-Length` accepted.
    pub max_body_bytes: usize,
    /// Largest request target (path and query).
    pub max_uri_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_uri_bytes: DEFAULT_MAX_URI_BYTES,
        }
    }
}

/// A request method. Methods are case-sensitive (RFC 9110, section 9.1), so
/// `get` is [`Method::Other`], not [`Method::Get`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    /// Any other syntactically valid method token.
    Other(String),
}

impl Method {
    fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "PATCH" => Method::Patch,
            other => Method::Other(other.to_owned()),
        }
    }

    /// The method as it appears on the request line.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Other(token) => token,
        }
    }
}

/// The protocol version of a request. HTTP/0.9 and HTTP/2 request lines are
/// rejected by the parser, so these are the only two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// One complete request: head and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The origin-form target: a path starting with `/`, optionally `?query`.
    pub target: String,
    pub version: Version,
    /// Header fields in arrival order. Names are lowercased; values are the
    /// raw bytes without surrounding whitespace, shared with the received head.
    pub headers: Vec<(String, Bytes)>,
    pub body: Bytes,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
    /// The client sent `Expect: 100-continue` (HTTP/1.1 only, as RFC 9110
    /// tells servers to ignore it from HTTP/1.0 clients).
    pub expect_continue: bool,
}

impl Request {
    /// The target without its query.
    pub fn path(&self) -> &str {
        match self.target.split_once('?') {
            Some((path, _)) => path,
            None => &self.target,
        }
    }

    /// The query (after `?`, without it), if the target has one.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, query)| query)
    }

    /// Every value of the header `name` (case-insensitive), in arrival order.
    pub fn header_values<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.headers
            .iter()
            .filter(move |(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_ref())
    }

    /// The first value of the header `name` (case-insensitive), as bytes.
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.header_values(name).next()
    }

    /// The first value of the header `name` (case-insensitive), or `None` if
    /// it is absent or not UTF-8 (use [`Request::header_bytes`] for those).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_bytes(name).and_then(|value| std::str::from_utf8(value).ok())
    }

    /// Whether any `name` header holds `token` in its comma-separated list
    /// (case-insensitive), as in `Connection: keep-alive, Upgrade`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.header_values(name).any(|value| list_contains(value, token))
    }

    /// Whether the client asks to switch to WebSocket (RFC 6455, section 4.1).
    /// [`crate::proto::websocket::accept`] validates the rest of the handshake.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.has_token("connection", "upgrade") && self.has_token("upgrade", "websocket")
    }
}

/// Why a request was refused. Each maps to one status and one stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("the request body is larger than this server accepts")]
    PayloadTooLarge,
    #[error("the request target is longer than this server accepts")]
    UriTooLong,
    #[error("the only supported expectation is 100-continue")]
    ExpectationFailed,
    #[error("the request head is larger than this server accepts")]
    HeadTooLarge,
    #[error("the request has more header fields than this server accepts")]
    TooManyHeaders,
    #[error("not implemented: {0}")]
    NotImplemented(&'static str),
}

impl HttpError {
    /// The HTTP status code of the error response.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::BadRequest(_) => 400,
            HttpError::PayloadTooLarge => 413,
            HttpError::UriTooLong => 414,
            HttpError::ExpectationFailed => 417,
            HttpError::HeadTooLarge | HttpError::TooManyHeaders => 431,
            HttpError::NotImplemented(_) => 501,
        }
    }

    /// A stable, machine-readable code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            HttpError::BadRequest(_) => "bad_request",
            HttpError::PayloadTooLarge => "payload_too_large",
            HttpError::UriTooLong => "uri_too_long",
            HttpError::ExpectationFailed => "expectation_failed",
            HttpError::HeadTooLarge => "header_fields_too_large",
            HttpError::TooManyHeaders => "too_many_headers",
            HttpError::NotImplemented(_) => "not_implemented",
        }
    }

    /// The response to send before closing the connection:
    /// `{"error":{"code":..,"message":..}}` with `Connection: close`.
    pub fn response(&self) -> Response {
        error_response(self.status(), self.code(), &self.to_string())
    }
}

/// Builds the JSON error response shared by every error of the HTTP side.
pub fn error_response(status: u16, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    Response::json(status, &body).header("Connection", "close")
}

/// Parses the requests of one connection, in order, pipelined or not.
///
/// Call [`feed`](Self::feed) with each chunk read from the socket, then
/// [`next_request`](Self::next_request) until it returns `Ok(None)`, and
/// [`poll_continue`](Self::poll_continue) to learn whether to send
/// [`CONTINUE_RESPONSE`]. After an error, or after a request that does not
/// keep the connection alive, the parser stops: later input is discarded.
#[derive(Debug)]
pub struct RequestParser {
    limits: Limits,
    buffer: BytesMut,
    state: ParserState,
    continue_due: bool,
}

#[derive(Debug)]
enum ParserState {
    /// Waiting for a complete head. `scan_from` is where the search for the
    /// blank line resumes, so each byte is scanned about once; `blank_bytes`
    /// counts the empty lines discarded before the request line.
    Head {
        scan_from: usize,
        blank_bytes: usize,
    },
    /// The head is parsed; waiting for `body_len` bytes of body.
    Body {
        request: Box<Request>,
        body_len: usize,
    },
    /// The last request closed the connection, or the buffer was taken.
    Done,
    Failed(HttpError),
}

impl ParserState {
    fn awaiting_head() -> ParserState {
        ParserState::Head { scan_from: 0, blank_bytes: 0 }
    }
}

impl Default for RequestParser {
    fn default() -> Self {
        RequestParser::new(Limits::default())
    }
}

impl RequestParser {
    pub fn new(limits: Limits) -> RequestParser {
        RequestParser {
            limits,
            buffer: BytesMut::new(),
            state: ParserState::awaiting_head(),
            continue_due: false,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Appends received bytes. Discards them once the parser has stopped.
    pub fn feed(&mut self, data: &[u8]) {
        if matches!(self.state, ParserState::Head { .. } | ParserState::Body { .. }) {
            self.buffer.extend_from_slice(data);
        }
    }

    /// Bytes received but not yet consumed by a returned request.
    pub fn buffered_len(&self) -> usize {
        self.buffer.len()
    }

    /// Returns the next complete request, `Ok(None)` until more bytes arrive
    /// (or forever once the parser stopped), or the error that ends the
    /// connection. An error is sticky: every later call returns it again.
    pub fn next_request(&mut self) -> Result<Option<Request>, HttpError> {
        let result = self.advance();
        if let Err(error) = &result {
            self.state = ParserState::Failed(error.clone());
            self.buffer = BytesMut::new();
            self.continue_due = false;
        }
        result
    }

    /// True once per request when the client sent `Expect: 100-continue`
    /// and its body has not fully arrived: the driver should then write
    /// [`CONTINUE_RESPONSE`]. Call it after `next_request` returned `Ok(None)`.
    #[must_use]
    pub fn poll_continue(&mut self) -> bool {
        std::mem::take(&mut self.continue_due)
    }

    /// Takes the bytes received after the last returned request and stops the
    /// parser. This is the protocol switch: after answering a WebSocket
    /// upgrade with 101, these bytes belong to the WebSocket decoder.
    pub fn take_buffered(&mut self) -> BytesMut {
        self.state = ParserState::Done;
        self.continue_due = false;
        std::mem::take(&mut self.buffer)
    }

    fn advance(&mut self) -> Result<Option<Request>, HttpError> {
        if let ParserState::Head { .. } = self.state {
            let Some((request, body_len)) = self.poll_head()? else {
                return Ok(None);
            };
            self.continue_due = request.expect_continue && self.buffer.len() < body_len;
            self.state = ParserState::Body { request: Box::new(request), body_len };
        }
        match std::mem::replace(&mut self.state, ParserState::Done) {
            ParserState::Body { request, body_len } if self.buffer.len() >= body_len => {
                Ok(Some(self.finish_request(*request, body_len)))
            }
            ParserState::Failed(error) => {
                self.state = ParserState::Failed(error.clone());
                Err(error)
            }
            other => {
                self.state = other;
                Ok(None)
            }
        }
    }

    /// Looks for a complete head in the buffer and parses it, consuming it.
    fn poll_head(&mut self) -> Result<Option<(Request, usize)>, HttpError> {
        let ParserState::Head { scan_from, blank_bytes } = &mut self.state else {
            return Ok(None);
        };
        // RFC 9112 (section 2.2) asks servers to ignore empty lines before a
        // request line. They are dropped here, but still count against the
        // head limit so that a stream of them cannot hold a connection open.
        let discarded = discard_leading_empty_lines(&mut self.buffer);
        *blank_bytes += discarded;
        *scan_from = scan_from.saturating_sub(discarded);
        let head_budget = self.limits.max_head_bytes.saturating_sub(*blank_bytes);
        let window = self.buffer.len().min(head_budget);
        match find_head_end(&self.buffer[..window], *scan_from) {
            Ok(head_len) => {
                parse_head(self.buffer.split_to(head_len).freeze(), &self.limits).map(Some)
            }
            Err(resume_at) => {
                *scan_from = resume_at;
                let over_budget =
                    *blank_bytes > self.limits.max_head_bytes || self.buffer.len() > head_budget;
                match over_budget {
                    true => Err(oversized_head_error(&self.buffer[..window], &self.limits)),
                    false => Ok(None),
                }
            }
        }
    }

    /// Attaches the body to `request` and picks the state for what follows.
    fn finish_request(&mut self, mut request: Request, body_len: usize) -> Request {
        if body_len > 0 {
            request.body = self.buffer.split_to(body_len).freeze();
        }
        self.continue_due = false;
        if request.keep_alive {
            self.state = ParserState::awaiting_head();
        } else {
            // RFC 9112 (section 9.6): nothing after a closing request is served.
            self.buffer = BytesMut::new();
        }
        request
    }
}

/// Drops complete empty lines (`\r\n` or `\n`) from the front of `buffer`,
/// returning how many bytes were dropped.
fn discard_leading_empty_lines(buffer: &mut BytesMut) -> usize {
    let mut dropped = 0;
    loop {
        let line = match buffer.get(dropped..dropped + 2) {
            Some([b'\r', b'\n']) => 2,
            _ if buffer.get(dropped) == Some(&b'\n') => 1,
            _ => break,
        };
        dropped += line;
    }
    let _ = buffer.split_to(dropped);
    dropped
}

/// Searches `head[from..]` for the blank line that ends a head. Returns the
/// head length including the blank line, or where to resume the search once
/// more bytes arrive. Accepts bare `\n` line ends, as httparse does.
fn find_head_end(head: &[u8], from: usize) -> Result<usize, usize> {
    let mut index = from;
    while let Some(offset) =
        head.get(index..).and_then(|rest| rest.iter().position(|&b| b == b'\n'))
    {
        let newline = index + offset;
        match (head.get(newline + 1), head.get(newline + 2)) {
            (Some(b'\n'), _) => return Ok(newline + 2),
            (Some(b'\r'), Some(b'\n')) => return Ok(newline + 3),
            (None, _) | (Some(b'\r'), None) => return Err(newline),
            _ => index = newline + 1,
        }
    }
    Err(head.len().max(from))
}

/// Chooses between 414 and 431 for a head that outgrew its limit: a request
/// line whose target alone is over the URI limit is a 414.
fn oversized_head_error(window: &[u8], limits: &Limits) -> HttpError {
    let line_end = window.iter().position(|&b| b == b'\n').unwrap_or(window.len());
    let line = &window[..line_end];
    let target_len = match line.iter().position(|&b| b == b' ') {
        Some(space) => line[space + 1..].iter().take_while(|&&b| b != b' ').count(),
        None => 0,
    };
    match target_len > limits.max_uri_bytes {
        true => HttpError::UriTooLong,
        false => HttpError::HeadTooLarge,
    }
}

/// Parses a complete head (ending with its blank line) into a request
/// without body, and the length of the body that follows.
fn parse_head(head: Bytes, limits: &Limits) -> Result<(Request, usize), HttpError> {
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut parsed = httparse::Request::new(&mut slots);
    match parsed.parse(&head) {
        Ok(httparse::Status::Complete(len)) if len == head.len() => {}
        Ok(_) => return Err(HttpError::BadRequest("malformed request head")),
        Err(error) => return Err(map_parse_error(error)),
    }
    let (Some(method), Some(target), Some(version)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(HttpError::BadRequest("incomplete request line"));
    };
    let version = match version {
        0 => Version::Http10,
        1 => Version::Http11,
        _ => return Err(HttpError::BadRequest("unsupported HTTP version")),
    };
    check_target(target, limits)?;
    let headers = parsed
        .headers
        .iter()
        .map(|field| (field.name.to_ascii_lowercase(), head.slice_ref(field.value)))
        .collect();
    let mut request = Request {
        method: Method::from_token(method),
        target: target.to_owned(),
        version,
        headers,
        body: Bytes::new(),
        keep_alive: false,
        expect_continue: false,
    };
    check_host(&request)?;
    let body_len = body_length(&request, limits)?;
    request.expect_continue = expects_continue(&request)?;
    request.keep_alive = keeps_alive(&request);
    Ok((request, body_len))
}

fn map_parse_error(error: httparse::Error) -> HttpError {
    match error {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders,
        httparse::Error::HeaderName => HttpError::BadRequest("invalid header name"),
        httparse::Error::HeaderValue => HttpError::BadRequest("invalid header value"),
        httparse::Error::NewLine => HttpError::BadRequest("invalid line ending"),
        httparse::Error::Version => HttpError::BadRequest("unsupported HTTP version"),
        _ => HttpError::BadRequest("invalid request line"),
    }
}

/// Accepts only origin-form targets: absolute-form, authority-form and `*`
/// have no use on this server and widen what routing must reason about.
fn check_target(target: &str, limits: &Limits) -> Result<(), HttpError> {
    if target.len() > limits.max_uri_bytes {
        return Err(HttpError::UriTooLong);
    }
    if !target.starts_with('/') {
        return Err(HttpError::BadRequest("the request target must be a path starting with '/'"));
    }
    Ok(())
}

/// RFC 9112 (section 3.2): an HTTP/1.1 request has exactly one Host, and no
/// request has two.
fn check_host(request: &Request) -> Result<(), HttpError> {
    match (request.header_values("host").count(), request.version) {
        (0, Version::Http11) => Err(HttpError::BadRequest("missing Host header")),
        (count, _) if count > 1 => Err(HttpError::BadRequest("duplicate Host header")),
        _ => Ok(()),
    }
}

/// The body length announced by the head, checked against the limit.
fn body_length(request: &Request, limits: &Limits) -> Result<usize, HttpError> {
    if request.header_bytes("transfer-encoding").is_some() {
        return Err(HttpError::NotImplemented(
            "Transfer-Encoding is not supported; send Content-Length",
        ));
    }
    let mut values = request.header_values("content-length");
    let Some(value) = values.next() else {
        return Ok(0);
    };
    if values.next().is_some() {
        return Err(HttpError::BadRequest("duplicate Content-Length"));
    }
    let length =
        parse_content_length(value).ok_or(HttpError::BadRequest("invalid Content-Length"))?;
    if length > u64::try_from(limits.max_body_bytes).unwrap_or(u64::MAX) {
        return Err(HttpError::PayloadTooLarge);
    }
    usize::try_from(length).map_err(|_| HttpError::PayloadTooLarge)
}

/// `Content-Length = 1*DIGIT` (RFC 9110, section 8.6), surrounded by optional
/// whitespace. Signs, inner spaces, lists and values over u64 are refused.
fn parse_content_length(value: &[u8]) -> Option<u64> {
    let digits = trim_whitespace(value);
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |length, &byte| {
        let digit = byte.is_ascii_digit().then(|| u64::from(byte - b'0'))?;
        length.checked_mul(10)?.checked_add(digit)
    })
}

fn expects_continue(request: &Request) -> Result<bool, HttpError> {
    let mut expect = false;
    for value in request.header_values("expect") {
        if !trim_whitespace(value).eq_ignore_ascii_case(b"100-continue") {
            return Err(HttpError::ExpectationFailed);
        }
        expect = true;
    }
    Ok(expect && request.version == Version::Http11)
}

/// RFC 9112 (section 9.3): HTTP/1.1 persists unless `close`; HTTP/1.0
/// persists only with `keep-alive`.
fn keeps_alive(request: &Request) -> bool {
    if request.has_token("connection", "close") {
        return false;
    }
    match request.version {
        Version::Http11 => true,
        Version::Http10 => request.has_token("connection", "keep-alive"),
    }
}

fn trim_whitespace(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

/// Whether a comma-separated header value lists `token` (case-insensitive).
pub(crate) fn list_contains(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| trim_whitespace(item).eq_ignore_ascii_case(token.as_bytes()))
}

/// A response to encode. The encoder owns the framing headers: any
/// `Content-Length` or `Transfer-Encoding` given here is ignored, and so is
/// `Connection` except on 1xx responses (a 101 needs `Connection: Upgrade`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Written as 500 if outside 100..=599.
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Response {
    /// A response without body.
    pub fn empty(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Bytes::new() }
    }

    /// A response with `body` and its `Content-Type`.
    pub fn with_body(status: u16, content_type: &str, body: Bytes) -> Response {
        Response { status, headers: Vec::new(), body }.header("Content-Type", content_type)
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, text: &str) -> Response {
        let body = Bytes::copy_from_slice(text.as_bytes());
        Response::with_body(status, "text/plain; charset=utf-8", body)
    }

    /// An `application/json` response.
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::with_body(status, "application/json", Bytes::from(value.to_string()))
    }

    /// Appends a header. A name that is not an HTTP token, or a value with a
    /// control character other than tab, is dropped: writing it would let a
    /// value taken from a request split the response.
    pub fn header(mut self, name: &str, value: &str) -> Response {
        if is_token(name) && is_field_value(value) {
            self.headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// Whether the response itself asks to close (`Connection: close`), as
    /// error responses do; the driver closes after sending it.
    pub fn closes_connection(&self) -> bool {
        self.headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("connection") && list_contains(value.as_bytes(), "close")
        })
    }

    /// Writes the status line and headers. Adds `Content-Length` (except for
    /// 1xx, 204 and 304) and `Connection: keep-alive` or `close` (except for
    /// 1xx); `keep_alive` is overridden by [`Response::closes_connection`].
    /// No `Date`: the driver adds one if it wants, from its own clock.
    pub fn encode_head(&self, out: &mut BytesMut, keep_alive: bool) {
        let status = self.wire_status();
        let informational = status < 200;
        out.put_slice(b"HTTP/1.1 ");
        put_decimal(out, u64::from(status));
        out.put_u8(b' ');
        out.put_slice(reason_phrase(status).as_bytes());
        out.put_slice(b"\r\n");
        for (name, value) in &self.headers {
            if !is_framing_header(name, informational) {
                put_header_line(out, name.as_bytes(), value.as_bytes());
            }
        }
        if has_content_length(status) {
            out.put_slice(b"Content-Length: ");
            put_decimal(out, self.body.len() as u64);
            out.put_slice(b"\r\n");
        }
        if !informational {
            let persistent = keep_alive && !self.closes_connection();
            let connection: &[u8] = if persistent { b"keep-alive" } else { b"close" };
            put_header_line(out, b"Connection", connection);
        }
        out.put_slice(b"\r\n");
    }

    /// Writes the head and, unless `head_only` (the answer to a HEAD request)
    /// or the status forbids one, the body.
    pub fn encode(&self, out: &mut BytesMut, keep_alive: bool, head_only: bool) {
        self.encode_head(out, keep_alive);
        if !head_only && has_content_length(self.wire_status()) {
            out.put_slice(&self.body);
        }
    }

    fn wire_status(&self) -> u16 {
        match self.status {
            100..=599 => self.status,
            _ => 500,
        }
    }
}

/// 1xx, 204 and 304 responses have no body and no `Content-Length`.
fn has_content_length(status: u16) -> bool {
    !(status < 200 || status == 204 || status == 304)
}

fn is_framing_header(name: &str, informational: bool) -> bool {
    name.eq_ignore_ascii_case("content-length")
        || name.eq_ignore_ascii_case("transfer-encoding")
        || (!informational && name.eq_ignore_ascii_case("connection"))
}

/// `token = 1*tchar` (RFC 9110, section 5.6.2).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_field_value(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

fn put_header_line(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

fn put_decimal(out: &mut BytesMut, value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = value;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.put_slice(&digits[start..]);
}

/// The RFC 9110 reason phrase, or an empty one (which the grammar allows).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: &[u8] = b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n";
    const POST: &[u8] = b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
    const CLOSE: &[u8] = b"GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";

    fn drain(parser: &mut RequestParser, into: &mut Vec<Request>) -> Result<(), HttpError> {
        while let Some(request) = parser.next_request()? {
            into.push(request);
        }
        Ok(())
    }

    fn parse_all_with(limits: Limits, bytes: &[u8]) -> Result<Vec<Request>, HttpError> {
        let mut parser = RequestParser::new(limits);
        let mut requests = Vec::new();
        parser.feed(bytes);
        drain(&mut parser, &mut requests)?;
        Ok(requests)
    }

    fn parse_all(bytes: &[u8]) -> Result<Vec<Request>, HttpError> {
        parse_all_with(Limits::default(), bytes)
    }

    fn parse_one(bytes: &[u8]) -> Result<Request, HttpError> {
        let mut requests = parse_all(bytes)?;
        assert_eq!(requests.len(), 1, "expected exactly one request");
        Ok(requests.remove(0))
    }

    fn error_of(bytes: &[u8]) -> HttpError {
        parse_all(bytes).expect_err("the request should be refused")
    }

    /// A request whose head is exactly `head_len` bytes, padded in a header.
    fn request_with_head_len(head_len: usize) -> Vec<u8> {
        let fixed = b"GET / HTTP/1.1\r\nHost: h\r\nX-Pad: \r\n\r\n".len();
        let mut bytes = b"GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ".to_vec();
        bytes.extend(std::iter::repeat_n(b'a', head_len - fixed));
        bytes.extend_from_slice(b"\r\n\r\n");
        assert_eq!(bytes.len(), head_len);
        bytes
    }

    #[test]
    fn parses_a_simple_request() {
        let request =
            parse_one(b"GET /scores?top=10 HTTP/1.1\r\nHost: example\r\nX-Thing:  v a \r\n\r\n")
                .unwrap();
        assert_eq!(request.method, Method::Get);
        assert_eq!(request.target, "/scores?top=10");
        assert_eq!(request.path(), "/scores");
        assert_eq!(request.query(), Some("top=10"));
        assert_eq!(request.version, Version::Http11);
        assert_eq!(request.header("HOST"), Some("example"));
        assert_eq!(request.header("x-thing"), Some("v a"));
        assert_eq!(request.headers[0].0, "host");
        assert!(request.body.is_empty());
        assert!(request.keep_alive);
        assert!(!request.expect_continue);
        assert!(!request.is_websocket_upgrade());
    }

    #[test]
    fn maps_methods() {
        for (token, method) in [
            ("GET", Method::Get),
            ("HEAD", Method::Head),
            ("POST", Method::Post),
            ("PUT", Method::Put),
            ("DELETE", Method::Delete),
            ("OPTIONS", Method::Options),
            ("PATCH", Method::Patch),
            ("get", Method::Other("get".into())),
            ("BREW", Method::Other("BREW".into())),
        ] {
            let bytes = format!("{token} / HTTP/1.1\r\nHost: h\r\n\r\n");
            let request = parse_one(bytes.as_bytes()).unwrap();
            assert_eq!(request.method.as_str(), token);
            assert_eq!(request.method, method);
        }
    }

    #[test]
    fn non_utf8_header_values_are_bytes_only() {
        let request = parse_one(b"GET / HTTP/1.1\r\nHost: h\r\nX-Raw: \xff\xfe\r\n\r\n").unwrap();
        assert_eq!(request.header("x-raw"), None);
        assert_eq!(request.header_bytes("x-raw"), Some(&b"\xff\xfe"[..]));
    }

    /// Proves that pipelined requests come out the same whatever the split
    /// of the byte stream: at every single boundary, and byte by byte.
    #[test]
    fn pipelined_requests_split_at_every_byte() {
        let stream = [GET, POST, GET, CLOSE].concat();
        let expected = parse_all(&stream).unwrap();
        assert_eq!(expected.len(), 4);
        assert_eq!(expected[1].body, Bytes::from_static(b"hello"));
        assert!(!expected[3].keep_alive);
        for split in 0..=stream.len() {
            let mut parser = RequestParser::default();
            let mut requests = Vec::new();
            parser.feed(&stream[..split]);
            drain(&mut parser, &mut requests).unwrap();
            parser.feed(&stream[split..]);
            drain(&mut parser, &mut requests).unwrap();
            assert_eq!(requests, expected, "split at {split}");
        }
        let mut parser = RequestParser::default();
        let mut requests = Vec::new();
        for byte in &stream {
            parser.feed(std::slice::from_ref(byte));
            drain(&mut parser, &mut requests).unwrap();
        }
        assert_eq!(requests, expected);
    }

    #[test]
    fn bare_newlines_and_leading_empty_lines_are_accepted() {
        let requests =
            parse_all(b"\r\n\nGET / HTTP/1.1\nHost: h\n\nGET /2 HTTP/1.1\r\nHost: h\n\r\n")
                .unwrap();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[1].target, "/2");
    }

    #[test]
    fn nothing_after_a_closing_request_is_parsed() {
        let mut parser = RequestParser::default();
        parser.feed(&[CLOSE, GET].concat());
        assert!(parser.next_request().unwrap().is_some());
        assert_eq!(parser.next_request(), Ok(None));
        parser.feed(GET);
        assert_eq!(parser.next_request(), Ok(None));
        assert_eq!(parser.buffered_len(), 0);
    }

    #[test]
    fn head_limit_at_limit_and_one_over() {
        let limits = Limits { max_head_bytes: 200, ..Limits::default() };
        assert_eq!(parse_all_with(limits, &request_with_head_len(200)).unwrap().len(), 1);
        assert_eq!(
            parse_all_with(limits, &request_with_head_len(201)),
            Err(HttpError::HeadTooLarge)
        );
    }

    /// Proves that an unfinished head errors as soon as it passes the limit,
    /// without waiting for the blank line.
    #[test]
    fn head_limit_fires_before_the_head_completes() {
        let limits = Limits { max_head_bytes: 200, ..Limits::default() };
        let head = request_with_head_len(300);
        let mut parser = RequestParser::new(limits);
        parser.feed(&head[..200]);
        assert_eq!(parser.next_request(), Ok(None));
        parser.feed(&head[200..201]);
        assert_eq!(parser.next_request(), Err(HttpError::HeadTooLarge));
        assert_eq!(parser.next_request(), Err(HttpError::HeadTooLarge), "errors are sticky");
    }

    #[test]
    fn leading_empty_lines_count_against_the_head_limit() {
        let limits = Limits { max_head_bytes: 64, ..Limits::default() };
        let mut parser = RequestParser::new(limits);
        for _ in 0..32 {
            parser.feed(b"\r\n");
            assert_eq!(parser.next_request(), Ok(None));
        }
        parser.feed(b"\n");
        assert_eq!(parser.next_request(), Err(HttpError::HeadTooLarge));
    }

    #[test]
    fn header_count_at_limit_and_one_over() {
        let limits = Limits { max_headers: 4, ..Limits::default() };
        let four = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        let five = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
        assert_eq!(parse_all_with(limits, four).unwrap()[0].headers.len(), 4);
        assert_eq!(parse_all_with(limits, five), Err(HttpError::TooManyHeaders));
        assert_eq!(HttpError::TooManyHeaders.status(), 431);
    }

    #[test]
    fn uri_limit_at_limit_and_one_over() {
        let limits = Limits { max_uri_bytes: 100, ..Limits::default() };
        let request =
            |len: usize| format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "u".repeat(len - 1));
        assert_eq!(parse_all_with(limits, request(100).as_bytes()).unwrap()[0].target.len(), 100);
        assert_eq!(parse_all_with(limits, request(101).as_bytes()), Err(HttpError::UriTooLong));
    }

    #[test]
    fn a_target_longer_than_the_head_limit_is_414() {
        let limits = Limits { max_head_bytes: 100, max_uri_bytes: 50, ..Limits::default() };
        let line = format!("GET /{}", "u".repeat(200));
        assert_eq!(parse_all_with(limits, line.as_bytes()), Err(HttpError::UriTooLong));
        let headers = format!("GET / HTTP/1.1\r\nX: {}", "v".repeat(200));
        assert_eq!(parse_all_with(limits, headers.as_bytes()), Err(HttpError::HeadTooLarge));
    }

    #[test]
    fn body_limit_at_limit_and_one_over() {
        let limits = Limits { max_body_bytes: 10, ..Limits::default() };
        let at = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789";
        assert_eq!(parse_all_with(limits, at).unwrap()[0].body.len(), 10);
        // Only the head is fed: the error comes from the header alone.
        let over = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n";
        assert_eq!(parse_all_with(limits, over), Err(HttpError::PayloadTooLarge));
        assert_eq!(HttpError::PayloadTooLarge.status(), 413);
    }

    #[test]
    fn body_waits_for_all_its_bytes() {
        let mut parser = RequestParser::default();
        parser.feed(&POST[..POST.len() - 1]);
        assert_eq!(parser.next_request(), Ok(None));
        parser.feed(&POST[POST.len() - 1..]);
        assert_eq!(parser.next_request().unwrap().unwrap().body, Bytes::from_static(b"hello"));
    }

    #[test]
    fn smuggling_attempts_are_refused() {
        let with = |fields: &str| format!("POST / HTTP/1.1\r\nHost: h\r\n{fields}\r\n\r\nhello");
        let not_implemented = |e: HttpError| matches!(e, HttpError::NotImplemented(_));
        let bad_request = |e: HttpError| matches!(e, HttpError::BadRequest(_));
        let cases: [(&str, &dyn Fn(HttpError) -> bool); 13] = [
            ("Content-Length: 5\r\nTransfer-Encoding: chunked", &not_implemented),
            ("Transfer-Encoding: chunked\r\nContent-Length: 5", &not_implemented),
            ("Transfer-Encoding: identity", &not_implemented),
            ("Content-Length: 5\r\nContent-Length: 5", &bad_request),
            ("Content-Length: 5\r\nContent-Length: 6", &bad_request),
            ("Content-Length: 5, 5", &bad_request),
            ("Content-Length: +5", &bad_request),
            ("Content-Length: -5", &bad_request),
            ("Content-Length: 5 5", &bad_request),
            ("Content-Length: 0x5", &bad_request),
            ("Content-Length: ", &bad_request),
            ("Content-Length: 18446744073709551616", &bad_request),
            ("Content-Length: 99999999999999999999999999", &bad_request),
        ];
        for (fields, expected) in cases {
            let error = error_of(with(fields).as_bytes());
            assert!(expected(error.clone()), "{fields:?} gave {error:?}");
        }
        assert_eq!(
            error_of(with("Content-Length: 18446744073709551615").as_bytes()),
            HttpError::PayloadTooLarge
        );
        assert_eq!(HttpError::NotImplemented("").status(), 501);
    }

    #[test]
    fn content_length_allows_surrounding_whitespace_and_leading_zeros() {
        let request =
            parse_one(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \t005 \r\n\r\nhello")
                .unwrap();
        assert_eq!(request.body, Bytes::from_static(b"hello"));
    }

    #[test]
    fn keep_alive_rules() {
        let cases: [(&[u8], bool); 7] = [
            (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false),
            (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n", false),
            (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", true),
            (b"GET / HTTP/1.0\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
            (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false),
        ];
        for (bytes, keep_alive) in cases {
            assert_eq!(
                parse_one(bytes).unwrap().keep_alive,
                keep_alive,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn invalid_request_lines_are_refused() {
        let cases: [&[u8]; 17] = [
            b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
            b"GET / HTTP/0.9\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.2\r\nHost: h\r\n\r\n",
            b"GET /\r\n\r\n",
            b"GET http://example.com/ HTTP/1.1\r\nHost: h\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
            b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.1 x\r\nHost: h\r\n\r\n",
            b"GET / http/1.1\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: v\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
            b"GET / HTTP/1.1\r\n: empty-name\r\nHost: h\r\n\r\n",
        ];
        for bytes in cases {
            let error = error_of(bytes);
            assert!(
                matches!(error, HttpError::BadRequest(_)),
                "{:?} gave {error:?}",
                String::from_utf8_lossy(bytes)
            );
            assert_eq!(error.status(), 400);
        }
    }

    #[test]
    fn host_rules() {
        assert!(matches!(error_of(b"GET / HTTP/1.1\r\n\r\n"), HttpError::BadRequest(_)));
        assert!(matches!(
            error_of(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            HttpError::BadRequest(_)
        ));
        assert!(parse_one(b"GET / HTTP/1.0\r\n\r\n").is_ok());
    }

    #[test]
    fn expect_continue_is_polled_once_while_the_body_is_pending() {
        let head =
            b"PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n";
        let mut parser = RequestParser::default();
        parser.feed(head);
        assert_eq!(parser.next_request(), Ok(None));
        assert!(parser.poll_continue());
        assert!(!parser.poll_continue());
        parser.feed(b"abc");
        let request = parser.next_request().unwrap().unwrap();
        assert!(request.expect_continue);
        assert_eq!(request.body, Bytes::from_static(b"abc"));

        let mut parser = RequestParser::default();
        parser.feed(&[&head[..], b"abc"].concat());
        assert!(parser.next_request().unwrap().is_some());
        assert!(!parser.poll_continue(), "the body already arrived");

        let http10 = b"PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        let mut parser = RequestParser::default();
        parser.feed(http10);
        assert_eq!(parser.next_request(), Ok(None));
        assert!(!parser.poll_continue(), "HTTP/1.0 expectations are ignored");

        assert_eq!(
            error_of(b"GET / HTTP/1.1\r\nHost: h\r\nExpect: tea\r\n\r\n"),
            HttpError::ExpectationFailed
        );
    }

    #[test]
    fn websocket_upgrade_detection_and_buffer_handover() {
        let mut parser = RequestParser::default();
        parser.feed(b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n\r\n\x82\x80");
        let request = parser.next_request().unwrap().unwrap();
        assert!(request.is_websocket_upgrade());
        assert_eq!(&parser.take_buffered()[..], b"\x82\x80");
        parser.feed(GET);
        assert_eq!(parser.next_request(), Ok(None));
    }

    #[test]
    fn encodes_a_json_response_byte_exact() {
        let response = Response::json(200, &serde_json::json!({"ok": true}));
        let mut out = BytesMut::new();
        response.encode(&mut out, true, false);
        assert_eq!(
            &out[..],
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: keep-alive\r\n\r\n{\"ok\":true}"
        );
    }

    #[test]
    fn encodes_text_head_only_and_bodiless_statuses() {
        let mut out = BytesMut::new();
        Response::text(404, "nope").encode(&mut out, false, false);
        assert_eq!(
            &out[..],
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope"
        );
        out.clear();
        Response::text(200, "body").encode(&mut out, true, true);
        assert_eq!(
            &out[..],
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 4\r\nConnection: keep-alive\r\n\r\n"
        );
        out.clear();
        Response::empty(204).encode(&mut out, true, false);
        assert_eq!(&out[..], b"HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n");
        out.clear();
        let mut not_modified = Response::empty(304).header("ETag", "\"x\"");
        not_modified.body = Bytes::from_static(b"ignored");
        not_modified.encode(&mut out, true, false);
        assert_eq!(
            &out[..],
            b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nConnection: keep-alive\r\n\r\n"
        );
        out.clear();
        Response::empty(299).encode(&mut out, true, false);
        assert_eq!(
            &out[..],
            b"HTTP/1.1 299 \r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
        );
        out.clear();
        Response::empty(1000).encode(&mut out, true, false);
        assert!(out.starts_with(b"HTTP/1.1 500 Internal Server Error\r\n"));
    }

    #[test]
    fn encoder_owns_the_framing_headers() {
        let response = Response::text(200, "hi")
            .header("Content-Length", "999")
            .header("Transfer-Encoding", "chunked")
            .header("Connection", "close")
            .header("X-Split", "a\r\nSet-Cookie: evil=1")
            .header("Bad Name", "v")
            .header("X-Ok", "v\tw");
        assert!(response.closes_connection());
        let mut out = BytesMut::new();
        response.encode(&mut out, true, false);
        assert_eq!(
            &out[..],
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nX-Ok: v\tw\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
        );
    }

    #[test]
    fn encodes_switching_protocols_with_its_own_connection_header() {
        let response =
            Response::empty(101).header("Upgrade", "websocket").header("Connection", "Upgrade");
        let mut out = BytesMut::new();
        response.encode(&mut out, true, false);
        assert_eq!(
            &out[..],
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        );
    }

    #[test]
    fn error_response_is_json_and_closes() {
        let response = HttpError::BadRequest("invalid Content-Length").response();
        let mut out = BytesMut::new();
        response.encode(&mut out, true, false);
        let body =
            br#"{"error":{"code":"bad_request","message":"bad request: invalid Content-Length"}}"#;
        let mut expected = format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        expected.extend_from_slice(body);
        assert_eq!(&out[..], &expected[..]);
        for (error, status) in [
            (HttpError::UriTooLong, 414),
            (HttpError::HeadTooLarge, 431),
            (HttpError::ExpectationFailed, 417),
        ] {
            assert_eq!(error.response().status, status);
        }
    }

    /// Proves the parser never panics on mutated and random input, with any
    /// split of the stream. Deterministic: a fixed seed.
    #[test]
    fn random_input_never_panics() {
        let mut rng = crate::proto::wire::Rng::new(0x1d05_2026);
        let limits =
            Limits { max_head_bytes: 256, max_headers: 8, max_body_bytes: 64, max_uri_bytes: 64 };
        let seed = [
            GET,
            POST,
            CLOSE,
            b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab",
        ]
        .concat();
        for _ in 0..20_000 {
            let mut bytes = seed.clone();
            let mutations = rng.below(8);
            for _ in 0..mutations {
                let index = rng.below(bytes.len() as u64) as usize;
                bytes[index] = rng.next_u64() as u8;
            }
            if rng.below(4) == 0 {
                bytes = (0..rng.below(300)).map(|_| rng.next_u64() as u8).collect();
            }
            let mut parser = RequestParser::new(limits);
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let take = (1 + rng.below(64) as usize).min(rest.len());
                parser.feed(&rest[..take]);
                rest = &rest[take..];
                let mut sink = Vec::new();
                if drain(&mut parser, &mut sink).is_err() {
                    break;
                }
                let _ = parser.poll_continue();
                assert!(sink
                    .iter()
                    .all(|r| r.body.len() <= limits.max_body_bytes && r.target.len() <= 64));
            }
        }
    }
}
