//! QPACK (RFC 9204) restricted to the static table.
//!
//! We tell the peer our dynamic table capacity is 0 and that no stream may
//! block (SETTINGS_QPACK_MAX_TABLE_CAPACITY = 0, SETTINGS_QPACK_BLOCKED_STREAMS
//! = 0), so a conformant peer never references a dynamic table: the decoder
//! rejects any dynamic or post-base reference and any non-zero Required
//! Insert Count with QPACK_DECOMPRESSION_FAILED. Our encoder never uses the
//! peer's dynamic table either, so it sends nothing on its encoder stream
//! and needs nothing from the peer's decoder stream.
//!
//! - [`decode_field_section`]: an encoded field section (a HEADERS payload)
//!   into a [`FieldSection`], within [`DecodeLimits`].
//! - [`encode_field_section`]: static exact match as an indexed line, static
//!   name match as a literal with name reference, otherwise a literal name;
//!   strings Huffman-coded when that is shorter.
//! - [`EncoderStreamReader`] / [`DecoderStreamReader`]: police the peer's
//!   QPACK streams.

mod decoder;
mod encoder;
pub mod huffman;
mod instructions;
mod primitives;
pub mod static_table;

use thiserror::Error;

pub use decoder::{decode_field_section, DecodeLimits, FieldSection, FIELD_OVERHEAD};
pub use encoder::{encode_field_line, encode_field_section, encode_prefix};
pub use huffman::HuffmanError;
pub use instructions::{DecoderStreamReader, EncoderStreamReader};
pub use primitives::{decode_integer, encode_integer, MAX_INTEGER};

use super::error::{into_h3_error, ErrorCode};

/// Why a field section or a QPACK stream was rejected.
///
/// Field section errors are stream errors on a request stream (RFC 9204
/// §2.2.3 makes invalid references connection errors; a driver may close
/// the connection for any of them). QPACK stream errors are connection
/// errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum QpackError {
    /// The section ended inside a representation.
    #[error("field section truncated")]
    Truncated,
    /// A non-zero (encoded) Required Insert Count: the section needs a
    /// dynamic table we said we do not have.
    #[error("required insert count {0} with no dynamic table")]
    RequiredInsertCount(u64),
    /// Sign bit set with Required Insert Count 0: a negative Base.
    #[error("negative base")]
    NegativeBase,
    /// An indexed line, name reference or post-base form that refers to the
    /// dynamic table.
    #[error("reference to the dynamic table")]
    DynamicReference,
    /// A static index past the end of the static table.
    #[error("static table index {0} out of range")]
    StaticIndex(u64),
    /// A prefixed integer above 2^62-1 or with too many continuation bytes.
    #[error("integer overflow")]
    IntegerOverflow,
    /// A malformed Huffman-coded string.
    #[error(transparent)]
    Huffman(HuffmanError),
    /// A name or value longer than its limit (RFC 9204 §8: a value larger
    /// than the implementation can decode is QPACK_DECOMPRESSION_FAILED).
    #[error("string longer than {max} bytes")]
    StringTooLong { max: usize },
    /// The decoded section exceeds its size limit (names + values + 32 per
    /// field, RFC 9114 §4.2.2): H3_EXCESSIVE_LOAD, or a 431 response.
    #[error("field section larger than {max} bytes")]
    FieldSectionTooLarge { max: usize },
    /// More field lines than the limit: H3_EXCESSIVE_LOAD, or a 431.
    #[error("more than {max} fields")]
    TooManyFields { max: usize },
    /// An encoder stream instruction other than "Set Dynamic Table Capacity
    /// 0" (every insert overflows a capacity of 0): QPACK_ENCODER_STREAM_ERROR.
    #[error("encoder stream instruction starting {0:#04x}")]
    EncoderStream(u8),
    /// A Section Acknowledgment or Insert Count Increment, which a peer can
    /// only send about dynamic table use we never made, or an overlong
    /// integer: QPACK_DECODER_STREAM_ERROR.
    #[error("decoder stream instruction starting {0:#04x}")]
    DecoderStream(u8),
}

impl QpackError {
    pub fn code(&self) -> ErrorCode {
        match self {
            QpackError::FieldSectionTooLarge { .. } | QpackError::TooManyFields { .. } => {
                ErrorCode::EXCESSIVE_LOAD
            }
            QpackError::EncoderStream(_) => ErrorCode::QPACK_ENCODER_STREAM_ERROR,
            QpackError::DecoderStream(_) => ErrorCode::QPACK_DECODER_STREAM_ERROR,
            _ => ErrorCode::QPACK_DECOMPRESSION_FAILED,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            QpackError::Truncated => "truncated field section",
            QpackError::RequiredInsertCount(_) => "dynamic table not allowed",
            QpackError::NegativeBase => "negative base",
            QpackError::DynamicReference => "dynamic table reference",
            QpackError::StaticIndex(_) => "static index out of range",
            QpackError::IntegerOverflow => "integer overflow",
            QpackError::Huffman(HuffmanError::EndOfString) => "EOS in Huffman string",
            QpackError::Huffman(_) => "invalid Huffman string",
            QpackError::StringTooLong { .. } => "field too long",
            QpackError::FieldSectionTooLarge { .. } => "field section too large",
            QpackError::TooManyFields { .. } => "too many fields",
            QpackError::EncoderStream(_) => "invalid encoder stream instruction",
            QpackError::DecoderStream(_) => "invalid decoder stream instruction",
        }
    }

    /// Whether the section was well-formed but over our limits: a server
    /// may answer 431 (Request Header Fields Too Large) instead of resetting.
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            QpackError::StringTooLong { .. }
                | QpackError::FieldSectionTooLarge { .. }
                | QpackError::TooManyFields { .. }
        )
    }
}

into_h3_error!(QpackError);

#[cfg(test)]
mod tests;
