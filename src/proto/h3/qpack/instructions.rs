//! The peer's QPACK encoder and decoder streams (RFC 9204 §4.3, §4.4),
//! checked against what our zero-capacity setup allows.
//!
//! Both readers keep no buffer: every instruction that is valid here is a
//! single byte or a run of integer continuation bytes.

use super::QpackError;

/// Set Dynamic Table Capacity (`001` + 5-bit prefix) with value 0: the only
/// instruction a peer may send when our table capacity is 0. Value 0 has no
/// other encoding (it fits the prefix).
const SET_CAPACITY_ZERO: u8 = 0b0010_0000;

/// Continuation bytes of a Stream Cancellation's stream id: 9 carry 63
/// bits, more than any stream id (2^62-1) needs.
const MAX_CONTINUATION_BYTES: u8 = 9;

/// Reads the peer's encoder stream. We advertised a dynamic table capacity
/// of 0, so any insertion, duplicate or non-zero capacity is a
/// QPACK_ENCODER_STREAM_ERROR (RFC 9204 §4.3.1, §3.2.2).
#[derive(Debug, Clone, Default)]
pub struct EncoderStreamReader {
    _private: (),
}

impl EncoderStreamReader {
    pub fn new() -> EncoderStreamReader {
        EncoderStreamReader::default()
    }

    /// Checks the next bytes of the stream (all of them are consumed).
    pub fn read(&mut self, input: &[u8]) -> Result<(), QpackError> {
        match input.iter().find(|&&byte| byte != SET_CAPACITY_ZERO) {
            Some(&byte) => Err(QpackError::EncoderStream(byte)),
            None => Ok(()),
        }
    }
}

/// Reads the peer's decoder stream. Our sections never reference the
/// dynamic table, so a Section Acknowledgment (§4.4.1) or an Insert Count
/// Increment (§4.4.3) is a QPACK_DECODER_STREAM_ERROR; Stream Cancellations
/// (§4.4.2) are allowed and carry nothing we need.
#[derive(Debug, Clone, Default)]
pub struct DecoderStreamReader {
    /// Continuation bytes seen of the current Stream Cancellation's stream
    /// id, while inside one.
    continuation: Option<u8>,
}

impl DecoderStreamReader {
    pub fn new() -> DecoderStreamReader {
        DecoderStreamReader::default()
    }

    /// Checks the next bytes of the stream (all of them are consumed).
    pub fn read(&mut self, input: &[u8]) -> Result<(), QpackError> {
        for &byte in input {
            self.continuation = match self.continuation {
                Some(count) if count == MAX_CONTINUATION_BYTES => {
                    return Err(QpackError::DecoderStream(byte));
                }
                Some(count) => (byte & 0x80 != 0).then_some(count + 1),
                // 01 + stream id (6+): Stream Cancellation.
                None if byte & 0xc0 == 0x40 => (byte & 0x3f == 0x3f).then_some(0),
                // 1: Section Acknowledgment; 00: Insert Count Increment.
                None => return Err(QpackError::DecoderStream(byte)),
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::h3::error::ErrorCode;
    use crate::proto::h3::qpack::encode_integer;

    #[test]
    fn encoder_stream_accepts_only_capacity_zero() {
        let mut reader = EncoderStreamReader::new();
        assert_eq!(reader.read(&[]), Ok(()));
        assert_eq!(reader.read(&[0x20, 0x20]), Ok(()));
        // RFC 9204 B.2: Set Dynamic Table Capacity=220, then inserts.
        let error = reader.read(&[0x3f, 0xbd, 0x01]).unwrap_err();
        assert_eq!(error, QpackError::EncoderStream(0x3f));
        assert_eq!(error.code(), ErrorCode::QPACK_ENCODER_STREAM_ERROR);
        for byte in [0x80, 0xc0, 0x40, 0x00, 0x21] {
            assert!(reader.read(&[byte]).is_err(), "{byte:#x}");
        }
    }

    #[test]
    fn decoder_stream_accepts_stream_cancellations() {
        let mut reader = DecoderStreamReader::new();
        let mut bytes = Vec::new();
        for stream_id in [0u64, 4, 62, 63, 1000, (1 << 62) - 1] {
            encode_integer(stream_id, 6, 0x40, &mut bytes);
        }
        for byte in &bytes {
            assert_eq!(reader.read(std::slice::from_ref(byte)), Ok(()));
        }
        assert_eq!(reader.continuation, None);
    }

    #[test]
    fn decoder_stream_rejects_acknowledgments_and_increments() {
        // Section Acknowledgment for stream 4, Insert Count Increment 1.
        for byte in [0x84, 0x01] {
            let error = DecoderStreamReader::new().read(&[byte]).unwrap_err();
            assert_eq!(error.code(), ErrorCode::QPACK_DECODER_STREAM_ERROR);
        }
        // An endless stream id.
        let mut bytes = vec![0x7f];
        bytes.extend_from_slice(&[0xff; 20]);
        assert!(DecoderStreamReader::new().read(&bytes).is_err());
    }
}
