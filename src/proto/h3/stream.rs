//! Unidirectional stream headers (RFC 9114 §6.2, RFC 9204 §4.2,
//! draft-ietf-webtrans-http3 §4.1): a stream type varint, for push and
//! WebTransport streams followed by one more varint.
//!
//! Unknown and grease stream types are not errors (RFC 9114 §6.2): the
//! caller stops reading with [`UNKNOWN_STREAM_CODE`] or discards the data.

use bytes::BufMut;
use thiserror::Error;

use super::error::{into_h3_error, ErrorCode};
use super::frame::is_session_id;
use super::settings::Settings;
use super::varint::{encode_varint, PartialVarint};

pub const CONTROL: u64 = 0x00;
pub const PUSH: u64 = 0x01;
pub const QPACK_ENCODER: u64 = 0x02;
pub const QPACK_DECODER: u64 = 0x03;
pub const WEBTRANSPORT: u64 = 0x54;

/// The code to STOP_SENDING an unknown stream type with (RFC 9114 §6.2).
pub const UNKNOWN_STREAM_CODE: ErrorCode = ErrorCode::STREAM_CREATION_ERROR;

/// What a unidirectional stream carries, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniStreamKind {
    /// HTTP/3 frames, starting with SETTINGS. A second control stream from
    /// the same peer is H3_STREAM_CREATION_ERROR (the caller counts).
    Control,
    /// A server push. A server receiving one must close the connection with
    /// H3_STREAM_CREATION_ERROR (RFC 9114 §6.2.2); a client that never sent
    /// MAX_PUSH_ID, with H3_ID_ERROR.
    Push { push_id: u64 },
    /// The peer's QPACK encoder stream.
    QpackEncoder,
    /// The peer's QPACK decoder stream.
    QpackDecoder,
    /// A WebTransport stream of this session; the rest is raw data.
    WebTransport { session_id: u64 },
    /// A type we do not know, grease included: abort reading it.
    Unknown(u64),
}

impl UniStreamKind {
    pub fn stream_type(&self) -> u64 {
        match self {
            UniStreamKind::Control => CONTROL,
            UniStreamKind::Push { .. } => PUSH,
            UniStreamKind::QpackEncoder => QPACK_ENCODER,
            UniStreamKind::QpackDecoder => QPACK_DECODER,
            UniStreamKind::WebTransport { .. } => WEBTRANSPORT,
            UniStreamKind::Unknown(stream_type) => *stream_type,
        }
    }

    /// Whether losing this stream is fatal (RFC 9114 §6.2.1, RFC 9204
    /// §4.2): closing it is H3_CLOSED_CRITICAL_STREAM.
    pub fn is_critical(&self) -> bool {
        matches!(
            self,
            UniStreamKind::Control | UniStreamKind::QpackEncoder | UniStreamKind::QpackDecoder
        )
    }
}

/// Why a stream header was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum StreamError {
    /// A WebTransport session id that is not a client-initiated
    /// bidirectional stream id: H3_ID_ERROR.
    #[error("session id {0} is not a client-initiated bidirectional stream")]
    InvalidSessionId(u64),
}

impl StreamError {
    pub fn code(&self) -> ErrorCode {
        match self {
            StreamError::InvalidSessionId(_) => ErrorCode::ID_ERROR,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            StreamError::InvalidSessionId(_) => "invalid WebTransport session id",
        }
    }
}

into_h3_error!(StreamError);

/// Reads a unidirectional stream's header from bytes as they arrive.
///
/// A stream may end or be reset before its header is complete; RFC 9114
/// §6.2 says to tolerate that, so there is no "finish" check.
#[derive(Debug, Clone, Default)]
pub struct UniStreamHeaderReader {
    varint: PartialVarint,
    stream_type: Option<u64>,
    /// The outcome once known: returned again on every later call.
    outcome: Option<Result<UniStreamKind, StreamError>>,
}

impl UniStreamHeaderReader {
    pub fn new() -> UniStreamHeaderReader {
        UniStreamHeaderReader::default()
    }

    /// Consumes header bytes from the front of `input` (never more) and
    /// returns the stream's kind once the header is complete; after that (or
    /// after an error), returns the same outcome without consuming anything.
    pub fn read(&mut self, input: &mut &[u8]) -> Result<Option<UniStreamKind>, StreamError> {
        if let Some(outcome) = self.outcome {
            return outcome.map(Some);
        }
        let outcome = match self.read_header(input) {
            Ok(None) => return Ok(None),
            Ok(Some(kind)) => Ok(kind),
            Err(error) => Err(error),
        };
        self.outcome = Some(outcome);
        outcome.map(Some)
    }

    fn read_header(&mut self, input: &mut &[u8]) -> Result<Option<UniStreamKind>, StreamError> {
        let stream_type = match self.stream_type {
            Some(stream_type) => stream_type,
            None => {
                let Some(stream_type) = self.varint.read(input) else {
                    return Ok(None);
                };
                self.stream_type = Some(stream_type);
                stream_type
            }
        };
        let kind = match stream_type {
            CONTROL => UniStreamKind::Control,
            QPACK_ENCODER => UniStreamKind::QpackEncoder,
            QPACK_DECODER => UniStreamKind::QpackDecoder,
            PUSH | WEBTRANSPORT => {
                let Some(id) = self.varint.read(input) else {
                    return Ok(None);
                };
                if stream_type == PUSH {
                    UniStreamKind::Push { push_id: id }
                } else if is_session_id(id) {
                    UniStreamKind::WebTransport { session_id: id }
                } else {
                    return Err(StreamError::InvalidSessionId(id));
                }
            }
            other => UniStreamKind::Unknown(other),
        };
        Ok(Some(kind))
    }
}

/// Appends a stream type (the whole header of control and QPACK streams).
pub fn encode_stream_type(stream_type: u64, out: &mut impl BufMut) {
    encode_varint(stream_type, out);
}

/// Appends the first bytes of our control stream: its type and SETTINGS.
pub fn encode_control_stream_preamble(settings: &Settings, out: &mut impl BufMut) {
    encode_stream_type(CONTROL, out);
    settings.encode_frame(out);
}

/// Appends the header of a unidirectional WebTransport stream: type 0x54
/// and the session id (its CONNECT stream id).
pub fn encode_webtransport_uni_header(session_id: u64, out: &mut impl BufMut) {
    debug_assert!(is_session_id(session_id), "session id {session_id}");
    encode_stream_type(WEBTRANSPORT, out);
    encode_varint(session_id, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_byte_by_byte(bytes: &[u8]) -> (Result<Option<UniStreamKind>, StreamError>, usize) {
        let mut reader = UniStreamHeaderReader::new();
        for (index, byte) in bytes.iter().enumerate() {
            let mut input: &[u8] = std::slice::from_ref(byte);
            match reader.read(&mut input) {
                Ok(None) => assert!(input.is_empty()),
                other => return (other, index + 1),
            }
        }
        (Ok(None), bytes.len())
    }

    #[test]
    fn known_stream_types() {
        let cases: &[(&[u8], UniStreamKind)] = &[
            (&[0x00], UniStreamKind::Control),
            (&[0x02], UniStreamKind::QpackEncoder),
            (&[0x03], UniStreamKind::QpackDecoder),
            (&[0x01, 0x40, 0x07], UniStreamKind::Push { push_id: 7 }),
            (&[0x40, 0x54, 0x08], UniStreamKind::WebTransport { session_id: 8 }),
            (
                &[0x40, 0x54, 0x80, 0x00, 0x10, 0x00],
                UniStreamKind::WebTransport { session_id: 4096 },
            ),
            (&[0x21], UniStreamKind::Unknown(0x21)),
            (&[0x7f, 0xff], UniStreamKind::Unknown(0x3fff)),
        ];
        for &(bytes, kind) in cases {
            assert_eq!(read_byte_by_byte(bytes), (Ok(Some(kind)), bytes.len()));
            let mut reader = UniStreamHeaderReader::new();
            let mut input = bytes;
            assert_eq!(reader.read(&mut input), Ok(Some(kind)));
            assert!(input.is_empty());
        }
    }

    #[test]
    fn header_reader_leaves_stream_data_alone() {
        let bytes = [0x40, 0x54, 0x04, 0xde, 0xad];
        let mut reader = UniStreamHeaderReader::new();
        let mut input = &bytes[..];
        let kind = reader.read(&mut input).unwrap();
        assert_eq!(kind, Some(UniStreamKind::WebTransport { session_id: 4 }));
        assert_eq!(input, &[0xde, 0xad]);
        assert_eq!(reader.read(&mut input), Ok(kind));
        assert_eq!(input, &[0xde, 0xad]);
    }

    #[test]
    fn webtransport_session_id_must_be_a_request_stream() {
        let (result, _) = read_byte_by_byte(&[0x40, 0x54, 0x02]);
        let error = result.unwrap_err();
        assert_eq!(error, StreamError::InvalidSessionId(2));
        assert_eq!(error.code(), ErrorCode::ID_ERROR);
        // The error is final.
        let mut reader = UniStreamHeaderReader::new();
        let mut input: &[u8] = &[0x40, 0x54, 0x02, 0x04];
        assert_eq!(reader.read(&mut input), Err(error));
        assert_eq!(reader.read(&mut input), Err(error));
        assert_eq!(input, &[0x04]);
    }

    #[test]
    fn encoded_headers_read_back() {
        let mut out = Vec::new();
        encode_webtransport_uni_header(12, &mut out);
        assert_eq!(out, [0x40, 0x54, 0x0c]);
        let mut out = Vec::new();
        encode_control_stream_preamble(&Settings::server(), &mut out);
        let mut input = &out[..];
        let kind = UniStreamHeaderReader::new().read(&mut input).unwrap();
        assert_eq!(kind, Some(UniStreamKind::Control));
        assert_eq!(input[0], crate::proto::h3::frame::SETTINGS as u8);
    }

    #[test]
    fn critical_streams() {
        assert!(UniStreamKind::Control.is_critical());
        assert!(UniStreamKind::QpackDecoder.is_critical());
        assert!(!UniStreamKind::WebTransport { session_id: 0 }.is_critical());
        assert!(!UniStreamKind::Unknown(0x21).is_critical());
    }
}
