//! Prefixed integers (RFC 7541 §5.1, used unchanged by RFC 9204 §4.1.1).

use bytes::BufMut;

use super::QpackError;

/// Largest integer accepted: RFC 9204 §4.1.1 requires decoding 62 bits.
pub const MAX_INTEGER: u64 = (1 << 62) - 1;

/// Largest shift of a continuation byte: 9 continuation bytes carry 63 bits,
/// enough for [`MAX_INTEGER`] above any prefix. Bounds the loop on overlong
/// encodings (runs of 0x80).
const MAX_SHIFT: u32 = 56;

/// Decodes an integer whose first byte, at `block[*pos]`, keeps its low
/// `prefix_bits` (1 to 8) for the value; advances `pos` past it.
pub fn decode_integer(block: &[u8], pos: &mut usize, prefix_bits: u32) -> Result<u64, QpackError> {
    debug_assert!((1..=8).contains(&prefix_bits));
    let first = *block.get(*pos).ok_or(QpackError::Truncated)?;
    *pos += 1;
    let mask = u64::from(u8::MAX >> (8 - prefix_bits));
    let mut value = u64::from(first) & mask;
    if value < mask {
        return Ok(value);
    }
    let mut shift = 0;
    loop {
        let byte = *block.get(*pos).ok_or(QpackError::Truncated)?;
        *pos += 1;
        if shift > MAX_SHIFT {
            return Err(QpackError::IntegerOverflow);
        }
        value = value
            .checked_add(u64::from(byte & 0x7f) << shift)
            .filter(|&value| value <= MAX_INTEGER)
            .ok_or(QpackError::IntegerOverflow)?;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
    }
}

/// Appends `value` with a `prefix_bits` prefix; `flags` holds the bits of
/// the first byte above the prefix.
///
/// # Panics
/// In debug builds, if `flags` overlaps the prefix.
pub fn encode_integer(value: u64, prefix_bits: u32, flags: u8, out: &mut impl BufMut) {
    debug_assert!((1..=8).contains(&prefix_bits));
    let mask = u8::MAX >> (8 - prefix_bits);
    debug_assert_eq!(flags & mask, 0, "flags overlap the prefix");
    if value < u64::from(mask) {
        out.put_u8(flags | value as u8);
        return;
    }
    out.put_u8(flags | mask);
    let mut rest = value - u64::from(mask);
    while rest >= 0x80 {
        out.put_u8(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.put_u8(rest as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8], prefix_bits: u32) -> Result<(u64, usize), QpackError> {
        let mut pos = 0;
        decode_integer(bytes, &mut pos, prefix_bits).map(|value| (value, pos))
    }

    #[test]
    fn rfc7541_c1_examples() {
        // C.1.1: 10 with a 5-bit prefix.
        assert_eq!(decode(&[0b0000_1010], 5), Ok((10, 1)));
        // C.1.2: 1337 with a 5-bit prefix.
        assert_eq!(decode(&[0b0001_1111, 0b1001_1010, 0b0000_1010], 5), Ok((1337, 3)));
        // C.1.3: 42 with an 8-bit prefix.
        assert_eq!(decode(&[42], 8), Ok((42, 1)));
        let mut out = Vec::new();
        encode_integer(1337, 5, 0b1110_0000, &mut out);
        assert_eq!(out, [0b1111_1111, 0b1001_1010, 0b0000_1010]);
    }

    #[test]
    fn flags_above_the_prefix_are_ignored() {
        assert_eq!(decode(&[0b1110_1010], 5), Ok((10, 1)));
    }

    #[test]
    fn round_trips_for_every_prefix() {
        for prefix_bits in 1..=8 {
            for value in [0, 1, 30, 31, 126, 127, 128, 255, 256, 1 << 20, MAX_INTEGER] {
                let mut out = Vec::new();
                encode_integer(value, prefix_bits, 0, &mut out);
                assert_eq!(decode(&out, prefix_bits), Ok((value, out.len())));
            }
        }
    }

    #[test]
    fn overflow_and_truncation_are_rejected() {
        let mut out = Vec::new();
        encode_integer(MAX_INTEGER, 6, 0, &mut out);
        for cut in 0..out.len() {
            assert_eq!(decode(&out[..cut], 6), Err(QpackError::Truncated));
        }
        // One past the maximum.
        let mut out = Vec::new();
        encode_integer(MAX_INTEGER + 1, 6, 0, &mut out);
        assert_eq!(decode(&out, 6), Err(QpackError::IntegerOverflow));
        // u64::MAX and beyond.
        let bytes = [0x3f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert_eq!(decode(&bytes, 6), Err(QpackError::IntegerOverflow));
        // An endless run of continuation bytes stops at the shift limit.
        let mut bytes = vec![0x3f];
        bytes.extend_from_slice(&[0x80; 100]);
        assert_eq!(decode(&bytes, 6), Err(QpackError::IntegerOverflow));
    }

    #[test]
    fn overlong_encodings_within_the_limit_are_accepted() {
        // 31 + 0 with three padding continuation bytes.
        assert_eq!(decode(&[0x1f, 0x80, 0x80, 0x00], 5), Ok((31, 4)));
    }
}
