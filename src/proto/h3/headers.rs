//! HTTP/3 request and response heads: validation of decoded field sections
//! (RFC 9114 §4.1.2, §4.2, §4.3, §4.4; RFC 9220 extended CONNECT; RFC 9297
//! §3.2) and encoding through the static-only QPACK encoder.
//!
//! Validation is deliberately strict, as RFC 9114 §4.1.2 asks: a malformed
//! message is a stream error H3_MESSAGE_ERROR, never passed on.

use bytes::{BufMut, BytesMut};
use thiserror::Error;

use super::error::{into_h3_error, ErrorCode};
use super::frame;
use super::qpack::{self, DecodeLimits, FieldSection, QpackError};

/// Fields that only mean something on an HTTP/1.1 connection; any of them
/// makes an HTTP/3 message malformed (RFC 9114 §4.2), except `te: trailers`.
const CONNECTION_SPECIFIC: [&[u8]; 5] =
    [b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"];

/// Upgrade tokens of WebTransport over HTTP/3: `webtransport` up to
/// draft-14 (what Chromium and aioquic send), `webtransport-h3` from
/// draft-15.
pub const WEBTRANSPORT_PROTOCOLS: [&str; 2] = ["webtransport", "webtransport-h3"];

/// Why a field section is not a well-formed request or response. Every
/// variant is H3_MESSAGE_ERROR, a stream error (RFC 9114 §4.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum MessageError {
    #[error("pseudo-header after a regular field")]
    PseudoAfterRegular,
    #[error("pseudo-header {0} appears twice")]
    DuplicatePseudo(&'static str),
    #[error("undefined or misplaced pseudo-header")]
    UnknownPseudo,
    #[error("missing pseudo-header {0}")]
    MissingPseudo(&'static str),
    #[error("field name empty, not lowercase or not a token")]
    InvalidName,
    #[error("field value with a forbidden character or surrounding whitespace")]
    InvalidValue,
    #[error("field value is not UTF-8")]
    NotUtf8,
    #[error("connection-specific field")]
    ConnectionSpecific,
    #[error("te field other than \"trailers\"")]
    InvalidTe,
    #[error("invalid {0}")]
    InvalidPseudoValue(&'static str),
    #[error(":protocol on a request that is not CONNECT")]
    ProtocolWithoutConnect,
    #[error("plain CONNECT with :scheme or :path")]
    ConnectWithSchemeOrPath,
    #[error(":authority and host differ")]
    AuthorityMismatch,
    #[error("host appears twice")]
    DuplicateHost,
    #[error("{0} field on a message using the capsule protocol")]
    CapsuleProtocolConflict(&'static str),
}

impl MessageError {
    pub fn code(&self) -> ErrorCode {
        ErrorCode::MESSAGE_ERROR
    }

    pub fn reason(&self) -> &'static str {
        "malformed message"
    }
}

into_h3_error!(MessageError);

/// Why a HEADERS block could not become a request or response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum HeadersError {
    #[error(transparent)]
    Qpack(#[from] QpackError),
    #[error(transparent)]
    Message(#[from] MessageError),
}

impl HeadersError {
    pub fn code(&self) -> ErrorCode {
        match self {
            HeadersError::Qpack(error) => error.code(),
            HeadersError::Message(error) => error.code(),
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            HeadersError::Qpack(error) => error.reason(),
            HeadersError::Message(error) => error.reason(),
        }
    }
}

into_h3_error!(HeadersError);

/// A validated request head.
///
/// `scheme` and `path` are empty only for a plain CONNECT (RFC 9114 §4.4
/// forbids them there); `authority` comes from `:authority` or else `host`,
/// and is empty only when the scheme has no authority and none was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    pub scheme: String,
    pub authority: String,
    pub path: String,
    /// `:protocol` of an extended CONNECT (RFC 9220).
    pub protocol: Option<String>,
    /// The `origin` field, copied out of `headers` for the WebTransport
    /// origin check.
    pub origin: Option<String>,
    /// The regular fields in order, `origin` and `host` included.
    pub headers: Vec<(String, String)>,
}

/// A validated final or interim response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

/// Pseudo-headers of a request, gathered before the cross-field checks.
#[derive(Default)]
struct RequestPseudo<'a> {
    method: Option<&'a str>,
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: Option<&'a str>,
    protocol: Option<&'a str>,
}

impl RequestHead {
    /// Decodes a HEADERS payload and validates it as a request.
    pub fn decode(block: &[u8], limits: &DecodeLimits) -> Result<RequestHead, HeadersError> {
        let mut section = FieldSection::new();
        qpack::decode_field_section(block, limits, &mut section)?;
        Ok(RequestHead::from_fields(&section)?)
    }

    /// Validates a decoded field section as a request.
    pub fn from_fields(section: &FieldSection) -> Result<RequestHead, MessageError> {
        let mut pseudo = RequestPseudo::default();
        let mut headers = Vec::with_capacity(section.len());
        let mut host = None;
        for (name, value) in section.iter() {
            let value = check_value(value)?;
            if let Some(pseudo_name) = name.strip_prefix(b":") {
                if !headers.is_empty() {
                    return Err(MessageError::PseudoAfterRegular);
                }
                pseudo.set(pseudo_name, value)?;
                continue;
            }
            let name = check_regular_name(name, value)?;
            if name == "host" {
                if host.is_some() {
                    return Err(MessageError::DuplicateHost);
                }
                host = Some(value);
            }
            headers.push((name.to_owned(), value.to_owned()));
        }
        pseudo.into_head(host, headers)
    }

    /// Whether this is an extended CONNECT (RFC 9220).
    pub fn is_extended_connect(&self) -> bool {
        self.method == "CONNECT" && self.protocol.is_some()
    }

    /// Whether this asks for a WebTransport session.
    pub fn is_webtransport(&self) -> bool {
        self.method == "CONNECT"
            && self
                .protocol
                .as_deref()
                .is_some_and(|protocol| WEBTRANSPORT_PROTOCOLS.contains(&protocol))
    }

    /// The first regular field called `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    /// Appends the encoded field section of this request (pseudo-headers
    /// first, empty ones left out; `host` is dropped when `:authority` is
    /// sent, as RFC 9114 §4.3.1 recommends). For test clients and bots.
    pub fn encode(&self, out: &mut impl BufMut) {
        qpack::encode_prefix(out);
        let pseudo = [
            (":method", self.method.as_str()),
            (":protocol", self.protocol.as_deref().unwrap_or("")),
            (":scheme", self.scheme.as_str()),
            (":authority", self.authority.as_str()),
            (":path", self.path.as_str()),
        ];
        for (name, value) in pseudo {
            if !value.is_empty() {
                qpack::encode_field_line(name.as_bytes(), value.as_bytes(), out);
            }
        }
        for (name, value) in &self.headers {
            if name == "host" && !self.authority.is_empty() {
                continue;
            }
            qpack::encode_field_line(name.as_bytes(), value.as_bytes(), out);
        }
    }
}

impl<'a> RequestPseudo<'a> {
    fn set(&mut self, name: &[u8], value: &'a str) -> Result<(), MessageError> {
        let (slot, label) = match name {
            b"method" => (&mut self.method, ":method"),
            b"scheme" => (&mut self.scheme, ":scheme"),
            b"authority" => (&mut self.authority, ":authority"),
            b"path" => (&mut self.path, ":path"),
            b"protocol" => (&mut self.protocol, ":protocol"),
            _ => return Err(MessageError::UnknownPseudo),
        };
        if slot.replace(value).is_some() {
            return Err(MessageError::DuplicatePseudo(label));
        }
        Ok(())
    }

    /// The cross-field rules of RFC 9114 §4.3.1 and §4.4 and RFC 9220 §3.
    fn into_head(
        self,
        host: Option<&str>,
        headers: Vec<(String, String)>,
    ) -> Result<RequestHead, MessageError> {
        let method = self.method.ok_or(MessageError::MissingPseudo(":method"))?;
        if !is_token(method.as_bytes()) {
            return Err(MessageError::InvalidPseudoValue(":method"));
        }
        let connect = method == "CONNECT";
        if self.protocol.is_some() && !connect {
            return Err(MessageError::ProtocolWithoutConnect);
        }
        if let Some(protocol) = self.protocol {
            if !is_token(protocol.as_bytes()) {
                return Err(MessageError::InvalidPseudoValue(":protocol"));
            }
        }
        let plain_connect = connect && self.protocol.is_none();
        let (scheme, path) = if plain_connect {
            if self.scheme.is_some() || self.path.is_some() {
                return Err(MessageError::ConnectWithSchemeOrPath);
            }
            ("", "")
        } else {
            let scheme = self.scheme.ok_or(MessageError::MissingPseudo(":scheme"))?;
            let path = self.path.ok_or(MessageError::MissingPseudo(":path"))?;
            check_scheme_and_path(scheme, path, method)?;
            (scheme, path)
        };
        let authority = resolve_authority(self.authority, host, scheme, plain_connect)?;
        if self.protocol.is_some() {
            check_capsule_protocol_fields(&headers)?;
        }
        let origin = find(&headers, "origin").map(str::to_owned);
        Ok(RequestHead {
            method: method.to_owned(),
            scheme: scheme.to_owned(),
            authority: authority.to_owned(),
            path: path.to_owned(),
            protocol: self.protocol.map(str::to_owned),
            origin,
            headers,
        })
    }
}

fn check_scheme_and_path(scheme: &str, path: &str, method: &str) -> Result<(), MessageError> {
    let valid_scheme = scheme.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'-' | b'.'));
    if !valid_scheme {
        return Err(MessageError::InvalidPseudoValue(":scheme"));
    }
    let valid_path = if path.is_empty() {
        // Only URIs of other schemes may have an empty path.
        !has_authority_scheme(scheme)
    } else {
        path.starts_with('/') || (path == "*" && method == "OPTIONS")
    };
    if !valid_path {
        return Err(MessageError::InvalidPseudoValue(":path"));
    }
    Ok(())
}

/// The target authority: `:authority`, else `host`; both must agree when
/// both are sent, and http(s) requests need one (RFC 9114 §4.3.1).
fn resolve_authority<'a>(
    authority: Option<&'a str>,
    host: Option<&'a str>,
    scheme: &str,
    plain_connect: bool,
) -> Result<&'a str, MessageError> {
    if let (Some(authority), Some(host)) = (authority, host) {
        if authority != host {
            return Err(MessageError::AuthorityMismatch);
        }
    }
    let resolved = authority.or(host);
    let required = plain_connect || has_authority_scheme(scheme);
    match resolved {
        None if required => Err(MessageError::MissingPseudo(":authority")),
        None => Ok(""),
        Some("") => Err(MessageError::InvalidPseudoValue(":authority")),
        // The deprecated userinfo ("user@host") is forbidden for http(s).
        Some(value) if value.contains('@') && has_authority_scheme(scheme) => {
            Err(MessageError::InvalidPseudoValue(":authority"))
        }
        Some(value) => Ok(value),
    }
}

fn has_authority_scheme(scheme: &str) -> bool {
    scheme == "https" || scheme == "http"
}

/// RFC 9297 §3.2: a message using the capsule protocol (an accepted
/// extended CONNECT) carries no content, so no content framing fields.
fn check_capsule_protocol_fields(headers: &[(String, String)]) -> Result<(), MessageError> {
    for name in ["content-length", "content-type"] {
        if find(headers, name).is_some() {
            return Err(MessageError::CapsuleProtocolConflict(name));
        }
    }
    Ok(())
}

impl ResponseHead {
    /// Decodes a HEADERS payload and validates it as a response.
    pub fn decode(block: &[u8], limits: &DecodeLimits) -> Result<ResponseHead, HeadersError> {
        let mut section = FieldSection::new();
        qpack::decode_field_section(block, limits, &mut section)?;
        Ok(ResponseHead::from_fields(&section)?)
    }

    /// Validates a decoded field section as a response.
    pub fn from_fields(section: &FieldSection) -> Result<ResponseHead, MessageError> {
        let mut status = None;
        let mut headers = Vec::with_capacity(section.len());
        for (name, value) in section.iter() {
            let value = check_value(value)?;
            if name == b":status" {
                if !headers.is_empty() {
                    return Err(MessageError::PseudoAfterRegular);
                }
                if status.replace(value).is_some() {
                    return Err(MessageError::DuplicatePseudo(":status"));
                }
                continue;
            }
            if name.starts_with(b":") {
                return Err(MessageError::UnknownPseudo);
            }
            let name = check_regular_name(name, value)?;
            headers.push((name.to_owned(), value.to_owned()));
        }
        let status = status.ok_or(MessageError::MissingPseudo(":status"))?;
        let status = parse_status(status).ok_or(MessageError::InvalidPseudoValue(":status"))?;
        Ok(ResponseHead { status, headers })
    }

    /// The first regular field called `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }
}

/// A three-digit status code, 100 to 599 (RFC 9110 §15).
fn parse_status(text: &str) -> Option<u16> {
    if text.len() != 3 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|status| (100..=599).contains(status))
}

/// Appends the encoded field section of a response: `:status` then
/// `headers` (lowercase names).
///
/// # Panics
/// If `status` is not in 100..=599 (a caller bug).
pub fn encode_response_head(status: u16, headers: &[(&str, &str)], out: &mut impl BufMut) {
    assert!((100..=599).contains(&status), "status {status}");
    let mut digits = [0u8; 3];
    digits[0] = b'0' + (status / 100) as u8;
    digits[1] = b'0' + (status / 10 % 10) as u8;
    digits[2] = b'0' + (status % 10) as u8;
    qpack::encode_prefix(out);
    qpack::encode_field_line(b":status", &digits, out);
    for (name, value) in headers {
        qpack::encode_field_line(name.as_bytes(), value.as_bytes(), out);
    }
}

/// Appends a whole HEADERS frame carrying a response head. An accepted
/// WebTransport session is `encode_response_headers_frame(200, &[], out)`.
pub fn encode_response_headers_frame(status: u16, headers: &[(&str, &str)], out: &mut BytesMut) {
    frame::encode_frame_with(frame::HEADERS, out, |out| {
        encode_response_head(status, headers, out);
    });
}

fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(header, _)| header == name).map(|(_, value)| value.as_str())
}

/// A regular field name: a lowercase token, not connection-specific.
fn check_regular_name<'a>(name: &'a [u8], value: &str) -> Result<&'a str, MessageError> {
    if !is_token(name) || name.iter().any(u8::is_ascii_uppercase) {
        return Err(MessageError::InvalidName);
    }
    if CONNECTION_SPECIFIC.contains(&name) {
        return Err(MessageError::ConnectionSpecific);
    }
    if name == b"te" && value != "trailers" {
        return Err(MessageError::InvalidTe);
    }
    // A token is ASCII, so always UTF-8.
    std::str::from_utf8(name).map_err(|_| MessageError::InvalidName)
}

/// A field value (RFC 9110 §5.5 field-content): visible characters, spaces
/// and tabs inside but not at either end, no NUL/CR/LF or other controls.
/// Non-ASCII (obs-text) must also be UTF-8, since heads hold `String`s.
fn check_value(value: &[u8]) -> Result<&str, MessageError> {
    let visible = |byte: u8| byte == b' ' || byte == b'\t' || (byte >= 0x21 && byte != 0x7f);
    if !value.iter().all(|&byte| visible(byte)) {
        return Err(MessageError::InvalidValue);
    }
    if let (Some(first), Some(last)) = (value.first(), value.last()) {
        if matches!(first, b' ' | b'\t') || matches!(last, b' ' | b'\t') {
            return Err(MessageError::InvalidValue);
        }
    }
    std::str::from_utf8(value).map_err(|_| MessageError::NotUtf8)
}

/// RFC 9110 §5.6.2 token: one or more tchar.
fn is_token(text: &[u8]) -> bool {
    !text.is_empty()
        && text
            .iter()
            .all(|&byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(fields: &[(&str, &str)]) -> FieldSection {
        let mut block = Vec::new();
        qpack::encode_field_section(fields.iter().copied(), &mut block);
        let mut section = FieldSection::new();
        qpack::decode_field_section(&block, &DecodeLimits::DEFAULT, &mut section).unwrap();
        section
    }

    fn request(fields: &[(&str, &str)]) -> Result<RequestHead, MessageError> {
        RequestHead::from_fields(&section(fields))
    }

    const CHROMIUM_CONNECT: [(&str, &str); 8] = [
        (":method", "CONNECT"),
        (":protocol", "webtransport"),
        (":scheme", "https"),
        (":authority", "127.0.0.1:4433"),
        (":path", "/wt"),
        ("origin", "http://localhost:8080"),
        ("sec-webtransport-http3-draft02", "1"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0"),
    ];

    #[test]
    fn chromium_extended_connect_decodes_to_a_webtransport_request() {
        let mut block = Vec::new();
        qpack::encode_field_section(CHROMIUM_CONNECT, &mut block);
        let head = RequestHead::decode(&block, &DecodeLimits::DEFAULT).unwrap();
        assert_eq!(head.method, "CONNECT");
        assert_eq!(head.protocol.as_deref(), Some("webtransport"));
        assert_eq!(head.scheme, "https");
        assert_eq!(head.authority, "127.0.0.1:4433");
        assert_eq!(head.path, "/wt");
        assert_eq!(head.origin.as_deref(), Some("http://localhost:8080"));
        assert_eq!(head.headers.len(), 3);
        assert_eq!(head.header("sec-webtransport-http3-draft02"), Some("1"));
        assert!(head.is_extended_connect());
        assert!(head.is_webtransport());
        // And it re-encodes to the same head.
        let mut again = Vec::new();
        head.encode(&mut again);
        assert_eq!(again, block);
        assert_eq!(RequestHead::decode(&again, &DecodeLimits::DEFAULT), Ok(head));
    }

    #[test]
    fn plain_get_and_host_fallback() {
        let head = request(&[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html?x=1"),
            ("host", "example.com"),
            ("te", "trailers"),
        ])
        .unwrap();
        assert_eq!(head.authority, "example.com");
        assert_eq!(head.protocol, None);
        assert!(!head.is_webtransport());
        let head = request(&[
            (":method", "OPTIONS"),
            (":scheme", "https"),
            (":authority", "example.com"),
            (":path", "*"),
        ])
        .unwrap();
        assert_eq!(head.path, "*");
    }

    #[test]
    fn plain_connect_has_no_scheme_or_path() {
        let head = request(&[(":method", "CONNECT"), (":authority", "example.com:443")]).unwrap();
        assert_eq!((head.scheme.as_str(), head.path.as_str()), ("", ""));
        assert!(!head.is_extended_connect());
        assert_eq!(
            request(&[(":method", "CONNECT"), (":authority", "a:1"), (":path", "/")]),
            Err(MessageError::ConnectWithSchemeOrPath)
        );
        assert_eq!(
            request(&[(":method", "CONNECT")]),
            Err(MessageError::MissingPseudo(":authority"))
        );
    }

    #[test]
    fn extended_connect_rules() {
        let with = |skip: &str| {
            let fields: Vec<_> =
                CHROMIUM_CONNECT.iter().copied().filter(|(name, _)| *name != skip).collect();
            request(&fields)
        };
        assert_eq!(with(":scheme"), Err(MessageError::MissingPseudo(":scheme")));
        assert_eq!(with(":path"), Err(MessageError::MissingPseudo(":path")));
        assert_eq!(with(":authority"), Err(MessageError::MissingPseudo(":authority")));
        assert_eq!(
            request(&[
                (":method", "GET"),
                (":protocol", "webtransport"),
                (":scheme", "https"),
                (":authority", "a"),
                (":path", "/"),
            ]),
            Err(MessageError::ProtocolWithoutConnect)
        );
        let mut fields = CHROMIUM_CONNECT.to_vec();
        fields.push(("content-length", "0"));
        assert_eq!(request(&fields), Err(MessageError::CapsuleProtocolConflict("content-length")));
        let mut fields = CHROMIUM_CONNECT.to_vec();
        fields[1] = (":protocol", "webtransport-h3");
        assert!(request(&fields).unwrap().is_webtransport());
    }

    #[test]
    fn malformed_requests_are_message_errors() {
        let base = [
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "example.com"),
            (":path", "/"),
        ];
        let cases: &[(&[(&str, &str)], MessageError)] = &[
            (
                &[(":method", "GET"), ("accept", "*/*"), (":path", "/")],
                MessageError::PseudoAfterRegular,
            ),
            (&[(":method", "GET"), (":method", "GET")], MessageError::DuplicatePseudo(":method")),
            (&[(":status", "200")], MessageError::UnknownPseudo),
            (&[(":foo", "bar")], MessageError::UnknownPseudo),
            (&[(":path", "/")], MessageError::MissingPseudo(":method")),
            (
                &[(":method", "GET"), (":scheme", "https"), (":path", "/")],
                MessageError::MissingPseudo(":authority"),
            ),
            (
                &[(":method", "GET"), (":scheme", "https"), (":authority", "a"), (":path", "")],
                MessageError::InvalidPseudoValue(":path"),
            ),
            (
                &[(":method", "GET"), (":scheme", "https"), (":authority", "a"), (":path", "x")],
                MessageError::InvalidPseudoValue(":path"),
            ),
            (
                &[(":method", "GET"), (":scheme", "https"), (":authority", "u@a"), (":path", "/")],
                MessageError::InvalidPseudoValue(":authority"),
            ),
            (
                &[(":method", "G T"), (":scheme", "https"), (":authority", "a"), (":path", "/")],
                MessageError::InvalidPseudoValue(":method"),
            ),
        ];
        for (fields, expected) in cases {
            assert_eq!(request(fields), Err(*expected), "{fields:?}");
            assert_eq!(expected.code(), ErrorCode::MESSAGE_ERROR);
        }
        let with_field = |name: &str, value: &str| {
            let mut fields = base.to_vec();
            fields.push((name, value));
            request(&fields)
        };
        assert!(with_field("accept", "*/*").is_ok());
        assert_eq!(with_field("connection", "close"), Err(MessageError::ConnectionSpecific));
        assert_eq!(
            with_field("transfer-encoding", "chunked"),
            Err(MessageError::ConnectionSpecific)
        );
        assert_eq!(with_field("te", "gzip"), Err(MessageError::InvalidTe));
        assert_eq!(with_field("host", "other.example"), Err(MessageError::AuthorityMismatch));
        assert_eq!(with_field("bad name", "x"), Err(MessageError::InvalidName));
        assert_eq!(with_field("", "x"), Err(MessageError::InvalidName));
        assert_eq!(with_field("x", "a\r\nb"), Err(MessageError::InvalidValue));
        assert_eq!(with_field("x", "nul\0"), Err(MessageError::InvalidValue));
        assert_eq!(with_field("x", " padded"), Err(MessageError::InvalidValue));
        assert!(with_field("x", "inner space\tand tab").is_ok());
        assert!(with_field("x", "").is_ok());
    }

    #[test]
    fn uppercase_and_non_utf8_are_rejected() {
        // Built by hand: our encoder refuses uppercase names in debug builds.
        let mut block = vec![0x00, 0x00, 0xd1, 0xd7, 0xc1, 0x50, 0x01, b'a'];
        block.extend_from_slice(&[0x23, b'X', b'-', b'A', 0x01, b'v']);
        let error = RequestHead::decode(&block, &DecodeLimits::DEFAULT).unwrap_err();
        assert_eq!(error, HeadersError::Message(MessageError::InvalidName));
        assert_eq!(error.code(), ErrorCode::MESSAGE_ERROR);
        let block = [0x00, 0x00, 0xd1, 0xd7, 0xc1, 0x50, 0x01, 0xff];
        let error = RequestHead::decode(&block, &DecodeLimits::DEFAULT).unwrap_err();
        assert_eq!(error, HeadersError::Message(MessageError::NotUtf8));
    }

    #[test]
    fn qpack_failures_keep_their_codes() {
        let error = RequestHead::decode(&[0x00, 0x00, 0x80], &DecodeLimits::DEFAULT).unwrap_err();
        assert_eq!(error.code(), ErrorCode::QPACK_DECOMPRESSION_FAILED);
    }

    #[test]
    fn response_heads_round_trip() {
        let mut block = Vec::new();
        encode_response_head(200, &[], &mut block);
        assert_eq!(block, [0x00, 0x00, 0xd9]);
        let mut block = Vec::new();
        let headers = [("content-type", "text/plain"), ("x-request-id", "42")];
        encode_response_head(404, &headers, &mut block);
        let head = ResponseHead::decode(&block, &DecodeLimits::DEFAULT).unwrap();
        assert_eq!(head.status, 404);
        assert_eq!(head.header("content-type"), Some("text/plain"));
        assert_eq!(head.headers.len(), 2);
    }

    #[test]
    fn webtransport_acceptance_frame() {
        let mut out = BytesMut::new();
        encode_response_headers_frame(200, &[], &mut out);
        assert_eq!(&out[..], &[0x01, 0x03, 0x00, 0x00, 0xd9]);
    }

    #[test]
    fn malformed_responses_are_message_errors() {
        let response = |fields: &[(&str, &str)]| ResponseHead::from_fields(&section(fields));
        assert_eq!(response(&[]), Err(MessageError::MissingPseudo(":status")));
        assert_eq!(
            response(&[(":status", "2000")]),
            Err(MessageError::InvalidPseudoValue(":status"))
        );
        assert_eq!(
            response(&[(":status", "099")]),
            Err(MessageError::InvalidPseudoValue(":status"))
        );
        assert_eq!(
            response(&[(":status", "200"), (":status", "200")]),
            Err(MessageError::DuplicatePseudo(":status"))
        );
        assert_eq!(response(&[(":path", "/")]), Err(MessageError::UnknownPseudo));
        assert_eq!(
            response(&[("server", "x"), (":status", "200")]),
            Err(MessageError::PseudoAfterRegular)
        );
    }
}
