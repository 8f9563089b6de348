//! HTTP/3 error codes, and [`H3Error`], the value every decoder error of this
//! module converts into so a driver can close with the right code.

use std::fmt;

use thiserror::Error;

/// An HTTP/3 error code, as carried by CONNECTION_CLOSE, RESET_STREAM and
/// STOP_SENDING. A newtype rather than an enum: the space is 62 bits wide,
/// peers may send codes we do not know (RFC 9114 §8: those mean
/// H3_NO_ERROR), and WebTransport application codes are mapped into it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub u64);

/// First and last HTTP/3 codes of the WebTransport application error range
/// (draft-ietf-webtrans-http3, "Resetting Data Streams").
const WEBTRANSPORT_FIRST: u64 = 0x52e4_a40f_a8db;
const WEBTRANSPORT_LAST: u64 = 0x52e5_ac98_3162;

impl ErrorCode {
    // RFC 9114 §8.1.
    pub const NO_ERROR: ErrorCode = ErrorCode(0x100);
    pub const GENERAL_PROTOCOL_ERROR: ErrorCode = ErrorCode(0x101);
    pub const INTERNAL_ERROR: ErrorCode = ErrorCode(0x102);
    pub const STREAM_CREATION_ERROR: ErrorCode = ErrorCode(0x103);
    pub const CLOSED_CRITICAL_STREAM: ErrorCode = ErrorCode(0x104);
    pub const FRAME_UNEXPECTED: ErrorCode = ErrorCode(0x105);
    pub const FRAME_ERROR: ErrorCode = ErrorCode(0x106);
    pub const EXCESSIVE_LOAD: ErrorCode = ErrorCode(0x107);
    pub const ID_ERROR: ErrorCode = ErrorCode(0x108);
    pub const SETTINGS_ERROR: ErrorCode = ErrorCode(0x109);
    pub const MISSING_SETTINGS: ErrorCode = ErrorCode(0x10a);
    pub const REQUEST_REJECTED: ErrorCode = ErrorCode(0x10b);
    pub const REQUEST_CANCELLED: ErrorCode = ErrorCode(0x10c);
    pub const REQUEST_INCOMPLETE: ErrorCode = ErrorCode(0x10d);
    pub const MESSAGE_ERROR: ErrorCode = ErrorCode(0x10e);
    pub const CONNECT_ERROR: ErrorCode = ErrorCode(0x10f);
    pub const VERSION_FALLBACK: ErrorCode = ErrorCode(0x110);
    // RFC 9204 §6.
    pub const QPACK_DECOMPRESSION_FAILED: ErrorCode = ErrorCode(0x200);
    pub const QPACK_ENCODER_STREAM_ERROR: ErrorCode = ErrorCode(0x201);
    pub const QPACK_DECODER_STREAM_ERROR: ErrorCode = ErrorCode(0x202);
    // RFC 9297 §2.1.
    pub const DATAGRAM_ERROR: ErrorCode = ErrorCode(0x33);
    // draft-ietf-webtrans-http3 (the values are the same in drafts 13-16).
    pub const WT_BUFFERED_STREAM_REJECTED: ErrorCode = ErrorCode(0x3994_bd84);
    pub const WT_SESSION_GONE: ErrorCode = ErrorCode(0x170d_7b68);
    pub const WT_FLOW_CONTROL_ERROR: ErrorCode = ErrorCode(0x045d_4487);
    pub const WT_ALPN_ERROR: ErrorCode = ErrorCode(0x0817_b3dd);
    pub const WT_REQUIREMENTS_NOT_MET: ErrorCode = ErrorCode(0x212c_0d48);

    /// The registered name of a code this module knows, spelled as in the
    /// RFCs so logs grep like the specifications.
    pub fn name(self) -> Option<&'static str> {
        let name = match self {
            ErrorCode::NO_ERROR => "H3_NO_ERROR",
            ErrorCode::GENERAL_PROTOCOL_ERROR => "H3_GENERAL_PROTOCOL_ERROR",
            ErrorCode::INTERNAL_ERROR => "H3_INTERNAL_ERROR",
            ErrorCode::STREAM_CREATION_ERROR => "H3_STREAM_CREATION_ERROR",
            ErrorCode::CLOSED_CRITICAL_STREAM => "H3_CLOSED_CRITICAL_STREAM",
            ErrorCode::FRAME_UNEXPECTED => "H3_FRAME_UNEXPECTED",
            ErrorCode::FRAME_ERROR => "H3_FRAME_ERROR",
            ErrorCode::EXCESSIVE_LOAD => "H3_EXCESSIVE_LOAD",
            ErrorCode::ID_ERROR => "H3_ID_ERROR",
            ErrorCode::SETTINGS_ERROR => "H3_SETTINGS_ERROR",
            ErrorCode::MISSING_SETTINGS => "H3_MISSING_SETTINGS",
            ErrorCode::REQUEST_REJECTED => "H3_REQUEST_REJECTED",
            ErrorCode::REQUEST_CANCELLED => "H3_REQUEST_CANCELLED",
            ErrorCode::REQUEST_INCOMPLETE => "H3_REQUEST_INCOMPLETE",
            ErrorCode::MESSAGE_ERROR => "H3_MESSAGE_ERROR",
            ErrorCode::CONNECT_ERROR => "H3_CONNECT_ERROR",
            ErrorCode::VERSION_FALLBACK => "H3_VERSION_FALLBACK",
            ErrorCode::QPACK_DECOMPRESSION_FAILED => "QPACK_DECOMPRESSION_FAILED",
            ErrorCode::QPACK_ENCODER_STREAM_ERROR => "QPACK_ENCODER_STREAM_ERROR",
            ErrorCode::QPACK_DECODER_STREAM_ERROR => "QPACK_DECODER_STREAM_ERROR",
            ErrorCode::DATAGRAM_ERROR => "H3_DATAGRAM_ERROR",
            ErrorCode::WT_BUFFERED_STREAM_REJECTED => "WT_BUFFERED_STREAM_REJECTED",
            ErrorCode::WT_SESSION_GONE => "WT_SESSION_GONE",
            ErrorCode::WT_FLOW_CONTROL_ERROR => "WT_FLOW_CONTROL_ERROR",
            ErrorCode::WT_ALPN_ERROR => "WT_ALPN_ERROR",
            ErrorCode::WT_REQUIREMENTS_NOT_MET => "WT_REQUIREMENTS_NOT_MET",
            _ => return None,
        };
        Some(name)
    }

    /// The HTTP/3 code that carries WebTransport application error `code`
    /// on RESET_STREAM / STOP_SENDING. The range skips the grease
    /// codepoints inside it, one every 0x1f values.
    pub const fn from_webtransport(code: u32) -> ErrorCode {
        let code = code as u64;
        ErrorCode(WEBTRANSPORT_FIRST + code + code / 0x1e)
    }

    /// The WebTransport application error code this HTTP/3 code carries, or
    /// `None` when it lies outside the range or on a grease codepoint (then
    /// the stream is reset without an application code).
    pub const fn to_webtransport(self) -> Option<u32> {
        let code = self.0;
        if code < WEBTRANSPORT_FIRST
            || code > WEBTRANSPORT_LAST
            || crate::proto::h3::is_grease(code)
        {
            return None;
        }
        let shifted = code - WEBTRANSPORT_FIRST;
        Some((shifted - shifted / 0x1f) as u32)
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}({:#x})", self.0),
            None => write!(f, "ErrorCode({:#x})", self.0),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{:#x}", self.0),
        }
    }
}

/// What a driver needs to act on a decoding failure: the code for
/// CONNECTION_CLOSE / RESET_STREAM, and a short fixed reason phrase (never
/// peer-controlled text). Each module's typed error converts into it.
///
/// Whether the failure closes the connection or only the stream is the
/// driver's call (it knows the stream); each error variant documents what
/// the RFCs prescribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{reason} ({code})")]
pub struct H3Error {
    pub code: ErrorCode,
    pub reason: &'static str,
}

/// Implements `From<$error> for H3Error` for an error type that has
/// `code()` and `reason()` methods.
macro_rules! into_h3_error {
    ($error:ty) => {
        impl From<$error> for $crate::proto::h3::error::H3Error {
            fn from(error: $error) -> Self {
                $crate::proto::h3::error::H3Error { code: error.code(), reason: error.reason() }
            }
        }
    };
}
pub(crate) use into_h3_error;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webtransport_codes_map_to_the_draft_range_ends() {
        assert_eq!(ErrorCode::from_webtransport(0).0, WEBTRANSPORT_FIRST);
        assert_eq!(ErrorCode::from_webtransport(u32::MAX).0, WEBTRANSPORT_LAST);
        assert_eq!(ErrorCode(WEBTRANSPORT_FIRST).to_webtransport(), Some(0));
        assert_eq!(ErrorCode(WEBTRANSPORT_LAST).to_webtransport(), Some(u32::MAX));
        assert_eq!(ErrorCode(WEBTRANSPORT_FIRST - 1).to_webtransport(), None);
        assert_eq!(ErrorCode(WEBTRANSPORT_LAST + 1).to_webtransport(), None);
    }

    #[test]
    fn webtransport_mapping_round_trips_and_skips_grease() {
        // The first grease codepoint in the range sits right after code 0x1d.
        let grease = ErrorCode::from_webtransport(0x1d).0 + 1;
        assert!(crate::proto::h3::is_grease(grease));
        assert_eq!(ErrorCode(grease).to_webtransport(), None);
        assert_eq!(ErrorCode::from_webtransport(0x1e).0, grease + 1);
        let mut code = 0u32;
        while code < u32::MAX - 7919 {
            let mapped = ErrorCode::from_webtransport(code);
            assert!(!crate::proto::h3::is_grease(mapped.0), "{code}");
            assert_eq!(mapped.to_webtransport(), Some(code));
            code += 7919;
        }
    }

    #[test]
    fn error_code_names_print() {
        assert_eq!(ErrorCode::FRAME_ERROR.to_string(), "H3_FRAME_ERROR");
        assert_eq!(format!("{:?}", ErrorCode::EXCESSIVE_LOAD), "H3_EXCESSIVE_LOAD(0x107)");
        assert_eq!(ErrorCode(0x1234).to_string(), "0x1234");
    }
}
