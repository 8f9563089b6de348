//! The capsule protocol (RFC 9297 §3) on an accepted WebTransport CONNECT
//! stream, and the HTTP/3 datagram prefix (RFC 9297 §2.1).
//!
//! Capsules travel in the payload of the CONNECT stream's DATA frames:
//! feed the [`frame::Event::Data`] pieces to a
//! [`CapsuleReader`]. A capsule is `type: varint, length: varint, value`.
//! WebTransport defines two we act on:
//!
//! - CLOSE_WEBTRANSPORT_SESSION (0x2843, WT_CLOSE_SESSION in later drafts):
//!   a 32-bit application error code and a UTF-8 reason of at most 1024
//!   bytes;
//! - DRAIN_WEBTRANSPORT_SESSION (0x78ae, WT_DRAIN_SESSION): empty.
//!
//! Every other type is skipped without buffering (RFC 9297 §3.2), including
//! DATAGRAM (0x00; we take datagrams only as QUIC datagrams) and the
//! draft-13+ flow-control capsules.

use bytes::{BufMut, BytesMut};
use thiserror::Error;

use super::error::{into_h3_error, ErrorCode};
use super::frame::{self, is_session_id};
use super::varint::{decode_varint, encode_varint, varint_len, PartialVarint, VARINT_MAX};

pub const DATAGRAM: u64 = 0x00;
pub const CLOSE_WEBTRANSPORT_SESSION: u64 = 0x2843;
pub const DRAIN_WEBTRANSPORT_SESSION: u64 = 0x78ae;

/// Longest reason a CLOSE_WEBTRANSPORT_SESSION may carry, in bytes.
pub const MAX_CLOSE_REASON_LEN: usize = 1024;
/// Bytes of the application error code in CLOSE_WEBTRANSPORT_SESSION.
const CLOSE_CODE_LEN: usize = 4;
/// Longest capsule of any type, skipped ones included: a bound on what one
/// capsule may make us wait through, generous for every capsule type we
/// know of.
pub const MAX_CAPSULE_LEN: u64 = 64 * 1024;

/// Largest Quarter Stream ID: the largest stream id (2^62-1) divided by 4.
pub const MAX_QUARTER_STREAM_ID: u64 = VARINT_MAX / 4;

/// A capsule the session acts on. The reason borrows from the input or the
/// reader's buffer and is valid until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capsule<'a> {
    /// The peer closed the session. Nothing may follow on the stream.
    CloseSession { error_code: u32, reason: &'a str },
    /// The peer asks to wind the session down gracefully.
    DrainSession,
}

/// Why the capsule stream was rejected. RFC 9297 §3.3 treats capsule errors
/// as a malformed message: the CONNECT stream is reset with
/// H3_MESSAGE_ERROR (stream error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CapsuleError {
    /// A capsule longer than the reader's limit: H3_EXCESSIVE_LOAD.
    #[error("capsule type {capsule_type:#x} of {len} bytes exceeds limit {max}")]
    TooLarge { capsule_type: u64, len: u64, max: u64 },
    /// CLOSE_WEBTRANSPORT_SESSION shorter than its error code.
    #[error("CLOSE_WEBTRANSPORT_SESSION of {0} bytes has no error code")]
    CloseTooShort(u64),
    /// CLOSE_WEBTRANSPORT_SESSION with a reason over 1024 bytes.
    #[error("close reason of {0} bytes exceeds 1024")]
    ReasonTooLong(u64),
    /// CLOSE_WEBTRANSPORT_SESSION with a reason that is not UTF-8.
    #[error("close reason is not UTF-8")]
    ReasonNotUtf8,
    /// DRAIN_WEBTRANSPORT_SESSION with a value (it has no fields).
    #[error("DRAIN_WEBTRANSPORT_SESSION of {0} bytes is not empty")]
    DrainNotEmpty(u64),
    /// Bytes after CLOSE_WEBTRANSPORT_SESSION.
    #[error("data after CLOSE_WEBTRANSPORT_SESSION")]
    DataAfterClose,
    /// The stream ended inside a capsule.
    #[error("stream ended inside a capsule")]
    Truncated,
}

impl CapsuleError {
    pub fn code(&self) -> ErrorCode {
        match self {
            CapsuleError::TooLarge { .. } => ErrorCode::EXCESSIVE_LOAD,
            _ => ErrorCode::MESSAGE_ERROR,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            CapsuleError::TooLarge { .. } => "capsule too large",
            CapsuleError::CloseTooShort(_)
            | CapsuleError::ReasonTooLong(_)
            | CapsuleError::ReasonNotUtf8 => "malformed CLOSE_WEBTRANSPORT_SESSION",
            CapsuleError::DrainNotEmpty(_) => "malformed DRAIN_WEBTRANSPORT_SESSION",
            CapsuleError::DataAfterClose => "data after CLOSE_WEBTRANSPORT_SESSION",
            CapsuleError::Truncated => "stream ended inside a capsule",
        }
    }
}

into_h3_error!(CapsuleError);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Type,
    Length { capsule_type: u64 },
    Close { len: usize },
    Skip { remaining: u64 },
    Closed,
}

/// What [`CapsuleReader::step`] found, before borrowing the reason.
enum Ready {
    Close { source: Source },
    Drain,
}

enum Source {
    /// At the front of the input.
    Input(usize),
    /// In the reader's buffer.
    Buffer,
}

/// Incremental capsule parser for one CONNECT stream's DATA bytes.
///
/// Call [`CapsuleReader::next`] until it returns `Ok(None)` (all input
/// consumed), and [`CapsuleReader::finish`] when the stream ends. An error is
/// final. Buffers at most one CLOSE capsule (1028 bytes).
#[derive(Debug, Clone)]
pub struct CapsuleReader {
    max_capsule_len: u64,
    state: State,
    varint: PartialVarint,
    buffer: Vec<u8>,
    error: Option<CapsuleError>,
}

impl Default for CapsuleReader {
    fn default() -> Self {
        CapsuleReader::new()
    }
}

impl CapsuleReader {
    pub fn new() -> CapsuleReader {
        CapsuleReader::with_limit(MAX_CAPSULE_LEN)
    }

    /// A reader rejecting capsules longer than `max_capsule_len` bytes.
    pub fn with_limit(max_capsule_len: u64) -> CapsuleReader {
        CapsuleReader {
            max_capsule_len,
            state: State::Type,
            varint: PartialVarint::default(),
            buffer: Vec::new(),
            error: None,
        }
    }

    /// Whether CLOSE_WEBTRANSPORT_SESSION was received.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Consumes bytes from the front of `input` and returns the next capsule
    /// we act on, or `Ok(None)` once all of `input` is consumed.
    pub fn next<'r, 's: 'r, 'i: 'r>(
        &'s mut self,
        input: &mut &'i [u8],
    ) -> Result<Option<Capsule<'r>>, CapsuleError> {
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
        let capsule = match ready {
            Ready::Drain => Capsule::DrainSession,
            Ready::Close { source } => {
                let value: &'r [u8] = match source {
                    Source::Input(len) => {
                        let data: &'i [u8] = input;
                        let (value, rest) = data.split_at(len);
                        *input = rest;
                        value
                    }
                    Source::Buffer => &self.buffer,
                };
                // `step` checked the length and the UTF-8 of the reason.
                let (code, reason) = value.split_at(CLOSE_CODE_LEN);
                Capsule::CloseSession {
                    error_code: u32::from_be_bytes([code[0], code[1], code[2], code[3]]),
                    reason: std::str::from_utf8(reason).unwrap_or_default(),
                }
            }
        };
        Ok(Some(capsule))
    }

    /// Checks that the stream may end here.
    pub fn finish(&self) -> Result<(), CapsuleError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        match self.state {
            State::Type if !self.varint.is_partial() => Ok(()),
            State::Closed => Ok(()),
            _ => Err(CapsuleError::Truncated),
        }
    }

    fn step(&mut self, input: &mut &[u8]) -> Result<Option<Ready>, CapsuleError> {
        loop {
            match self.state {
                State::Type => {
                    let Some(capsule_type) = self.varint.read(input) else {
                        return Ok(None);
                    };
                    self.state = State::Length { capsule_type };
                }
                State::Length { capsule_type } => {
                    let Some(len) = self.varint.read(input) else {
                        return Ok(None);
                    };
                    if let Some(ready) = self.on_capsule_length(capsule_type, len)? {
                        return Ok(Some(ready));
                    }
                }
                State::Close { len } => return self.read_close(len, input),
                State::Skip { remaining } => {
                    if input.is_empty() {
                        return Ok(None);
                    }
                    let len =
                        usize::try_from(remaining).map_or(input.len(), |r| r.min(input.len()));
                    *input = &input[len..];
                    let left = remaining - len as u64;
                    self.state =
                        if left == 0 { State::Type } else { State::Skip { remaining: left } };
                }
                State::Closed => {
                    if input.is_empty() {
                        return Ok(None);
                    }
                    return Err(CapsuleError::DataAfterClose);
                }
            }
        }
    }

    fn on_capsule_length(
        &mut self,
        capsule_type: u64,
        len: u64,
    ) -> Result<Option<Ready>, CapsuleError> {
        if len > self.max_capsule_len {
            return Err(CapsuleError::TooLarge { capsule_type, len, max: self.max_capsule_len });
        }
        match capsule_type {
            CLOSE_WEBTRANSPORT_SESSION => {
                if len < CLOSE_CODE_LEN as u64 {
                    return Err(CapsuleError::CloseTooShort(len));
                }
                if len > (CLOSE_CODE_LEN + MAX_CLOSE_REASON_LEN) as u64 {
                    return Err(CapsuleError::ReasonTooLong(len - CLOSE_CODE_LEN as u64));
                }
                self.buffer.clear();
                self.state = State::Close { len: len as usize };
                Ok(None)
            }
            DRAIN_WEBTRANSPORT_SESSION => {
                if len != 0 {
                    return Err(CapsuleError::DrainNotEmpty(len));
                }
                self.state = State::Type;
                Ok(Some(Ready::Drain))
            }
            _ => {
                self.state = match len {
                    0 => State::Type,
                    _ => State::Skip { remaining: len },
                };
                Ok(None)
            }
        }
    }

    fn read_close(&mut self, len: usize, input: &mut &[u8]) -> Result<Option<Ready>, CapsuleError> {
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
        let value = match source {
            Source::Input(len) => &input[..len],
            Source::Buffer => &self.buffer[..],
        };
        if std::str::from_utf8(&value[CLOSE_CODE_LEN..]).is_err() {
            return Err(CapsuleError::ReasonNotUtf8);
        }
        self.state = State::Closed;
        Ok(Some(Ready::Close { source }))
    }
}

/// Appends a capsule header announcing `len` bytes of value.
pub fn encode_capsule_header(capsule_type: u64, len: u64, out: &mut impl BufMut) {
    encode_varint(capsule_type, out);
    encode_varint(len, out);
}

/// Appends a CLOSE_WEBTRANSPORT_SESSION capsule. A reason over 1024 bytes
/// is cut at the last character boundary that fits, as the draft asks.
pub fn encode_close_session(error_code: u32, reason: &str, out: &mut impl BufMut) {
    let mut cut = reason.len().min(MAX_CLOSE_REASON_LEN);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let reason = &reason[..cut];
    encode_capsule_header(CLOSE_WEBTRANSPORT_SESSION, (CLOSE_CODE_LEN + reason.len()) as u64, out);
    out.put_u32(error_code);
    out.put_slice(reason.as_bytes());
}

/// Appends a DRAIN_WEBTRANSPORT_SESSION capsule.
pub fn encode_drain_session(out: &mut impl BufMut) {
    encode_capsule_header(DRAIN_WEBTRANSPORT_SESSION, 0, out);
}

/// Appends a DATA frame carrying a CLOSE_WEBTRANSPORT_SESSION capsule, ready
/// for the CONNECT stream (send FIN right after it).
pub fn encode_close_session_frame(error_code: u32, reason: &str, out: &mut BytesMut) {
    frame::encode_frame_with(frame::DATA, out, |out| {
        encode_close_session(error_code, reason, out);
    });
}

/// Appends a DATA frame carrying a DRAIN_WEBTRANSPORT_SESSION capsule.
pub fn encode_drain_session_frame(out: &mut BytesMut) {
    frame::encode_frame_with(frame::DATA, out, encode_drain_session);
}

/// Why a QUIC datagram is not an HTTP/3 datagram: a connection error
/// H3_DATAGRAM_ERROR (RFC 9297 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DatagramError {
    #[error("datagram too short for its Quarter Stream ID")]
    Truncated,
    #[error("Quarter Stream ID {0} exceeds 2^60-1")]
    QuarterStreamIdTooLarge(u64),
}

impl DatagramError {
    pub fn code(&self) -> ErrorCode {
        ErrorCode::DATAGRAM_ERROR
    }

    pub fn reason(&self) -> &'static str {
        match self {
            DatagramError::Truncated => "truncated datagram",
            DatagramError::QuarterStreamIdTooLarge(_) => "quarter stream id too large",
        }
    }
}

into_h3_error!(DatagramError);

/// Appends the prefix of a datagram for the session whose CONNECT stream is
/// `session_id`: the Quarter Stream ID. The payload follows it.
pub fn encode_datagram_prefix(session_id: u64, out: &mut impl BufMut) {
    debug_assert!(is_session_id(session_id), "session id {session_id}");
    encode_varint(session_id / 4, out);
}

/// Bytes of the datagram prefix for `session_id`.
pub fn datagram_prefix_len(session_id: u64) -> usize {
    varint_len(session_id / 4)
}

/// Splits an HTTP/3 datagram into its session (CONNECT stream id) and
/// payload (possibly empty). Whether that session exists is the caller's
/// business (unknown ones are dropped or briefly buffered, RFC 9297 §2.1).
pub fn parse_datagram(datagram: &[u8]) -> Result<(u64, &[u8]), DatagramError> {
    let (quarter_stream_id, len) = decode_varint(datagram).ok_or(DatagramError::Truncated)?;
    if quarter_stream_id > MAX_QUARTER_STREAM_ID {
        return Err(DatagramError::QuarterStreamIdTooLarge(quarter_stream_id));
    }
    Ok((quarter_stream_id * 4, &datagram[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Owned {
        Close(u32, String),
        Drain,
    }

    fn read_chunks(bytes: &[u8], chunk: usize) -> Result<Vec<Owned>, CapsuleError> {
        let mut reader = CapsuleReader::new();
        let mut capsules = Vec::new();
        for piece in bytes.chunks(chunk.max(1)) {
            let mut input = piece;
            while let Some(capsule) = reader.next(&mut input)? {
                capsules.push(match capsule {
                    Capsule::CloseSession { error_code, reason } => {
                        Owned::Close(error_code, reason.to_owned())
                    }
                    Capsule::DrainSession => Owned::Drain,
                });
            }
            assert!(input.is_empty());
        }
        reader.finish().map(|()| capsules)
    }

    fn sample_stream() -> Vec<u8> {
        let mut out = Vec::new();
        encode_capsule_header(0x190b_4d3d, 3, &mut out); // WT_MAX_DATA: skipped
        out.extend_from_slice(&[0x40, 0x10, 0x00]);
        encode_capsule_header(DATAGRAM, 2, &mut out);
        out.extend_from_slice(b"hi");
        encode_drain_session(&mut out);
        encode_capsule_header(0x29, 0, &mut out); // grease, empty
        encode_close_session(0x1234_5678, "bye ünïcode", &mut out);
        out
    }

    #[test]
    fn capsules_parse_split_anywhere() {
        let bytes = sample_stream();
        let expected = vec![Owned::Drain, Owned::Close(0x1234_5678, "bye ünïcode".into())];
        assert_eq!(read_chunks(&bytes, bytes.len()), Ok(expected.clone()));
        for chunk in 1..bytes.len() {
            assert_eq!(read_chunks(&bytes, chunk), Ok(expected.clone()), "chunk {chunk}");
        }
        // Every two-piece split, including ones inside the UTF-8 reason.
        for split in 0..=bytes.len() {
            let mut reader = CapsuleReader::new();
            let mut seen = Vec::new();
            for piece in [&bytes[..split], &bytes[split..]] {
                let mut input = piece;
                while let Some(capsule) = reader.next(&mut input).unwrap() {
                    seen.push(matches!(capsule, Capsule::DrainSession));
                }
            }
            assert_eq!(seen, [true, false], "split {split}");
            assert_eq!(reader.finish(), Ok(()));
        }
    }

    #[test]
    fn close_session_encoding_is_exact() {
        let mut out = Vec::new();
        encode_close_session(7, "done", &mut out);
        assert_eq!(hex::encode(&out), "68430800000007646f6e65");
        let mut out = Vec::new();
        encode_drain_session(&mut out);
        assert_eq!(hex::encode(&out), "8000_78ae_00".replace('_', ""));
    }

    #[test]
    fn close_reason_is_cut_at_a_character_boundary() {
        let reason = "é".repeat(600); // 1200 bytes
        let mut out = Vec::new();
        encode_close_session(1, &reason, &mut out);
        let capsules = read_chunks(&out, 7).unwrap();
        let Owned::Close(1, received) = &capsules[0] else {
            panic!("{capsules:?}");
        };
        assert_eq!(received.len(), 1024);
        assert_eq!(received, &"é".repeat(512));
    }

    #[test]
    fn malformed_capsules_are_message_errors() {
        let close = |value: &[u8]| {
            let mut out = Vec::new();
            encode_capsule_header(CLOSE_WEBTRANSPORT_SESSION, value.len() as u64, &mut out);
            out.extend_from_slice(value);
            out
        };
        let long = [&[0u8; 4][..], &[b'x'; 1025][..]].concat();
        let cases = [
            (close(&[0, 0, 1]), CapsuleError::CloseTooShort(3)),
            (close(&long), CapsuleError::ReasonTooLong(1025)),
            (close(&[0, 0, 0, 1, 0xff]), CapsuleError::ReasonNotUtf8),
            (vec![0x80, 0x00, 0x78, 0xae, 0x01, 0x00], CapsuleError::DrainNotEmpty(1)),
        ];
        for (bytes, expected) in cases {
            for chunk in [1, bytes.len()] {
                assert_eq!(read_chunks(&bytes, chunk), Err(expected));
            }
            assert_eq!(expected.code(), ErrorCode::MESSAGE_ERROR);
        }
    }

    #[test]
    fn nothing_may_follow_close() {
        let mut bytes = Vec::new();
        encode_close_session(0, "", &mut bytes);
        encode_drain_session(&mut bytes);
        let error = read_chunks(&bytes, 1).unwrap_err();
        assert_eq!(error, CapsuleError::DataAfterClose);
        assert_eq!(error.code(), ErrorCode::MESSAGE_ERROR);
    }

    #[test]
    fn truncated_capsules_fail_at_finish() {
        let bytes = sample_stream();
        let boundaries = [8, 12, 17, 19];
        for cut in 1..bytes.len() {
            let result = read_chunks(&bytes[..cut], 1);
            if boundaries.contains(&cut) {
                assert!(result.is_ok(), "cut {cut}");
            } else {
                assert_eq!(result, Err(CapsuleError::Truncated), "cut {cut}");
            }
        }
    }

    #[test]
    fn oversize_capsules_are_rejected_before_buffering() {
        let mut bytes = Vec::new();
        encode_capsule_header(0x1234, MAX_CAPSULE_LEN + 1, &mut bytes);
        let mut reader = CapsuleReader::new();
        let mut input = &bytes[..];
        let error = reader.next(&mut input).unwrap_err();
        assert_eq!(error.code(), ErrorCode::EXCESSIVE_LOAD);
        assert_eq!(reader.buffer.capacity(), 0);
        let mut input: &[u8] = &[0x00];
        assert_eq!(reader.next(&mut input), Err(error));
    }

    #[test]
    fn datagram_prefix_round_trips() {
        for session_id in [0u64, 4, 252, 256, 1 << 20, VARINT_MAX - 3] {
            let mut out = Vec::new();
            encode_datagram_prefix(session_id, &mut out);
            assert_eq!(out.len(), datagram_prefix_len(session_id));
            out.extend_from_slice(b"payload");
            assert_eq!(parse_datagram(&out), Ok((session_id, &b"payload"[..])));
        }
        assert_eq!(parse_datagram(&[0x01]), Ok((4, &[][..])));
    }

    #[test]
    fn bad_datagrams_are_datagram_errors() {
        assert_eq!(parse_datagram(&[]), Err(DatagramError::Truncated));
        assert_eq!(parse_datagram(&[0x40]), Err(DatagramError::Truncated));
        let mut out = Vec::new();
        encode_varint(MAX_QUARTER_STREAM_ID + 1, &mut out);
        let error = parse_datagram(&out).unwrap_err();
        assert_eq!(error, DatagramError::QuarterStreamIdTooLarge(1 << 60));
        assert_eq!(error.code(), ErrorCode::DATAGRAM_ERROR);
        assert_eq!(error.code().0, 0x33);
    }

    #[test]
    fn close_frame_wraps_the_capsule_in_data() {
        let mut out = BytesMut::new();
        encode_close_session_frame(7, "done", &mut out);
        assert_eq!(hex::encode(&out), "000b68430800000007646f6e65");
        let mut out = BytesMut::new();
        encode_drain_session_frame(&mut out);
        assert_eq!(hex::encode(&out), "00058000_78ae00".replace('_', ""));
    }
}
