//! QUIC variable-length integers (RFC 9000 §16): the two high bits of the
//! first byte give the length (1, 2, 4 or 8 bytes), the rest is the value,
//! big-endian, at most 2^62-1.
//!
//! Non-minimal encodings are accepted on decode (RFC 9000 §16 allows them
//! everywhere HTTP/3 uses varints); encoding is always minimal.

use bytes::BufMut;

/// Largest value a varint can carry: 2^62-1.
pub const VARINT_MAX: u64 = (1 << 62) - 1;
/// Longest encoding in bytes.
pub const VARINT_MAX_LEN: usize = 8;

/// Decodes the varint at the start of `bytes`: its value and encoded length,
/// or `None` when `bytes` ends before the varint does.
#[inline]
pub fn decode_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let first = *bytes.first()?;
    let len = 1usize << (first >> 6);
    let encoded = bytes.get(..len)?;
    let mut value = u64::from(first & 0x3f);
    for &byte in &encoded[1..] {
        value = (value << 8) | u64::from(byte);
    }
    Some((value, len))
}

/// Decodes the varint at the start of `input` and advances past it; leaves
/// `input` untouched when it holds only part of a varint.
#[inline]
pub fn read_varint(input: &mut &[u8]) -> Option<u64> {
    let (value, len) = decode_varint(input)?;
    *input = &input[len..];
    Some(value)
}

/// Bytes the minimal encoding of `value` takes.
///
/// # Panics
/// If `value` exceeds [`VARINT_MAX`] (a caller bug: no peer can send it).
#[inline]
pub const fn varint_len(value: u64) -> usize {
    if value < (1 << 6) {
        1
    } else if value < (1 << 14) {
        2
    } else if value < (1 << 30) {
        4
    } else {
        assert!(value <= VARINT_MAX, "varint above 2^62-1");
        8
    }
}

/// Writes the minimal encoding of `value` into `buf`, returning its length.
///
/// # Panics
/// If `value` exceeds [`VARINT_MAX`].
#[inline]
pub fn write_varint(value: u64, buf: &mut [u8; VARINT_MAX_LEN]) -> usize {
    let len = varint_len(value);
    let tag: u64 = match len {
        1 => 0b00,
        2 => 0b01,
        4 => 0b10,
        _ => 0b11,
    };
    let tagged = value | (tag << (len * 8 - 2));
    buf[..len].copy_from_slice(&tagged.to_be_bytes()[VARINT_MAX_LEN - len..]);
    len
}

/// Appends the minimal encoding of `value`.
///
/// # Panics
/// If `value` exceeds [`VARINT_MAX`].
#[inline]
pub fn encode_varint(value: u64, out: &mut impl BufMut) {
    let mut buf = [0u8; VARINT_MAX_LEN];
    let len = write_varint(value, &mut buf);
    out.put_slice(&buf[..len]);
}

/// A varint arriving in pieces: bytes are taken from successive inputs until
/// it is complete. Holds at most [`VARINT_MAX_LEN`] bytes.
#[derive(Debug, Clone, Default)]
pub(crate) struct PartialVarint {
    bytes: [u8; VARINT_MAX_LEN],
    filled: u8,
}

impl PartialVarint {
    /// Takes bytes from `input` (only as many as the varint needs) and
    /// returns the value once the last byte has arrived.
    #[inline]
    pub(crate) fn read(&mut self, input: &mut &[u8]) -> Option<u64> {
        if self.filled == 0 {
            if let Some(value) = read_varint(input) {
                return Some(value);
            }
        }
        let first = if self.filled == 0 { *input.first()? } else { self.bytes[0] };
        let len = 1usize << (first >> 6);
        let filled = usize::from(self.filled);
        let take = (len - filled).min(input.len());
        self.bytes[filled..filled + take].copy_from_slice(&input[..take]);
        *input = &input[take..];
        let filled = filled + take;
        if filled < len {
            self.filled = filled as u8;
            return None;
        }
        self.filled = 0;
        decode_varint(&self.bytes[..len]).map(|(value, _)| value)
    }

    /// Whether some but not all bytes of a varint have arrived.
    pub(crate) fn is_partial(&self) -> bool {
        self.filled > 0
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;

    /// RFC 9000 Appendix A.1 sample encodings, including the non-minimal
    /// two-byte encoding of 37.
    const RFC9000_SAMPLES: &[(&[u8], u64)] = &[
        (&[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c], 151_288_809_941_952_652),
        (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
        (&[0x7b, 0xbd], 15_293),
        (&[0x25], 37),
        (&[0x40, 0x25], 37),
    ];

    #[test]
    fn rfc9000_samples_decode() {
        for &(bytes, value) in RFC9000_SAMPLES {
            assert_eq!(decode_varint(bytes), Some((value, bytes.len())));
        }
    }

    #[test]
    fn rfc9000_samples_encode_minimally() {
        for &(bytes, value) in &RFC9000_SAMPLES[..4] {
            let mut out = BytesMut::new();
            encode_varint(value, &mut out);
            assert_eq!(&out[..], bytes);
            assert_eq!(varint_len(value), bytes.len());
        }
    }

    #[test]
    fn boundaries_round_trip() {
        for value in [0, 63, 64, 16_383, 16_384, (1 << 30) - 1, 1 << 30, VARINT_MAX] {
            let mut out = BytesMut::new();
            encode_varint(value, &mut out);
            assert_eq!(out.len(), varint_len(value));
            assert_eq!(decode_varint(&out), Some((value, out.len())));
        }
    }

    #[test]
    fn truncated_input_decodes_to_none() {
        assert_eq!(decode_varint(&[]), None);
        for &(bytes, _) in RFC9000_SAMPLES {
            for cut in 0..bytes.len() {
                assert_eq!(decode_varint(&bytes[..cut]), None);
                let mut input = &bytes[..cut];
                assert_eq!(read_varint(&mut input), None);
                assert_eq!(input.len(), cut, "input left untouched");
            }
        }
    }

    #[test]
    #[should_panic(expected = "2^62-1")]
    fn encoding_above_the_maximum_is_a_caller_bug() {
        encode_varint(VARINT_MAX + 1, &mut BytesMut::new());
    }

    #[test]
    fn partial_varint_assembles_byte_by_byte() {
        for &(bytes, value) in RFC9000_SAMPLES {
            let mut partial = PartialVarint::default();
            for (index, byte) in bytes.iter().enumerate() {
                let mut input: &[u8] = std::slice::from_ref(byte);
                let result = partial.read(&mut input);
                assert!(input.is_empty());
                if index + 1 == bytes.len() {
                    assert_eq!(result, Some(value));
                    assert!(!partial.is_partial());
                } else {
                    assert_eq!(result, None);
                    assert!(partial.is_partial());
                }
            }
        }
    }

    #[test]
    fn partial_varint_takes_only_its_own_bytes() {
        let mut partial = PartialVarint::default();
        let mut input: &[u8] = &[0x7b];
        assert_eq!(partial.read(&mut input), None);
        let mut input: &[u8] = &[0xbd, 0x25, 0x99];
        assert_eq!(partial.read(&mut input), Some(15_293));
        assert_eq!(input, &[0x25, 0x99]);
        assert_eq!(partial.read(&mut input), Some(37));
        assert_eq!(input, &[0x99]);
    }
}
