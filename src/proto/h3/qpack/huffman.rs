//! The static Huffman code of HPACK (RFC 7541 Appendix B), which QPACK
//! string literals use unchanged (RFC 9204 §4.1.2).
//!
//! The code is canonical (within one length, codes ascend with the symbol),
//! so decoding needs only, per code length, the first code and how many
//! codes have it; those tables are derived from [`CODES`] at compile time.

use bytes::BufMut;
use thiserror::Error;

/// `(code, length in bits)` of each symbol: bytes 0-255, then EOS (256).
/// Transcribed from RFC 7541 Appendix B ("code as hex aligned to LSB" and
/// "len in bits" columns).
#[rustfmt::skip]
pub const CODES: [(u32, u8); 257] = [
    /*   0 */ (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28),
    /*   4 */ (0xfffffe4, 28), (0xfffffe5, 28), (0xfffffe6, 28), (0xfffffe7, 28),
    /*   8 */ (0xfffffe8, 28), (0xffffea, 24), (0x3ffffffc, 30), (0xfffffe9, 28),
    /*  12 */ (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28), (0xfffffec, 28),
    /*  16 */ (0xfffffed, 28), (0xfffffee, 28), (0xfffffef, 28), (0xffffff0, 28),
    /*  20 */ (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28),
    /*  24 */ (0xffffff4, 28), (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28),
    /*  28 */ (0xffffff8, 28), (0xffffff9, 28), (0xffffffa, 28), (0xffffffb, 28),
    /*  32 */ (0x14, 6), (0x3f8, 10), (0x3f9, 10), (0xffa, 12),
    /*  36 */ (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11),
    /*  40 */ (0x3fa, 10), (0x3fb, 10), (0xf9, 8), (0x7fb, 11),
    /*  44 */ (0xfa, 8), (0x16, 6), (0x17, 6), (0x18, 6),
    /*  48 */ (0x0, 5), (0x1, 5), (0x2, 5), (0x19, 6),
    /*  52 */ (0x1a, 6), (0x1b, 6), (0x1c, 6), (0x1d, 6),
    /*  56 */ (0x1e, 6), (0x1f, 6), (0x5c, 7), (0xfb, 8),
    /*  60 */ (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10),
    /*  64 */ (0x1ffa, 13), (0x21, 6), (0x5d, 7), (0x5e, 7),
    /*  68 */ (0x5f, 7), (0x60, 7), (0x61, 7), (0x62, 7),
    /*  72 */ (0x63, 7), (0x64, 7), (0x65, 7), (0x66, 7),
    /*  76 */ (0x67, 7), (0x68, 7), (0x69, 7), (0x6a, 7),
    /*  80 */ (0x6b, 7), (0x6c, 7), (0x6d, 7), (0x6e, 7),
    /*  84 */ (0x6f, 7), (0x70, 7), (0x71, 7), (0x72, 7),
    /*  88 */ (0xfc, 8), (0x73, 7), (0xfd, 8), (0x1ffb, 13),
    /*  92 */ (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14), (0x22, 6),
    /*  96 */ (0x7ffd, 15), (0x3, 5), (0x23, 6), (0x4, 5),
    /* 100 */ (0x24, 6), (0x5, 5), (0x25, 6), (0x26, 6),
    /* 104 */ (0x27, 6), (0x6, 5), (0x74, 7), (0x75, 7),
    /* 108 */ (0x28, 6), (0x29, 6), (0x2a, 6), (0x7, 5),
    /* 112 */ (0x2b, 6), (0x76, 7), (0x2c, 6), (0x8, 5),
    /* 116 */ (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7),
    /* 120 */ (0x79, 7), (0x7a, 7), (0x7b, 7), (0x7ffe, 15),
    /* 124 */ (0x7fc, 11), (0x3ffd, 14), (0x1ffd, 13), (0xffffffc, 28),
    /* 128 */ (0xfffe6, 20), (0x3fffd2, 22), (0xfffe7, 20), (0xfffe8, 20),
    /* 132 */ (0x3fffd3, 22), (0x3fffd4, 22), (0x3fffd5, 22), (0x7fffd9, 23),
    /* 136 */ (0x3fffd6, 22), (0x7fffda, 23), (0x7fffdb, 23), (0x7fffdc, 23),
    /* 140 */ (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23),
    /* 144 */ (0xffffec, 24), (0xffffed, 24), (0x3fffd7, 22), (0x7fffe0, 23),
    /* 148 */ (0xffffee, 24), (0x7fffe1, 23), (0x7fffe2, 23), (0x7fffe3, 23),
    /* 152 */ (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22), (0x7fffe5, 23),
    /* 156 */ (0x3fffd9, 22), (0x7fffe6, 23), (0x7fffe7, 23), (0xffffef, 24),
    /* 160 */ (0x3fffda, 22), (0x1fffdd, 21), (0xfffe9, 20), (0x3fffdb, 22),
    /* 164 */ (0x3fffdc, 22), (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21),
    /* 168 */ (0x7fffea, 23), (0x3fffdd, 22), (0x3fffde, 22), (0xfffff0, 24),
    /* 172 */ (0x1fffdf, 21), (0x3fffdf, 22), (0x7fffeb, 23), (0x7fffec, 23),
    /* 176 */ (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21),
    /* 180 */ (0x7fffed, 23), (0x3fffe1, 22), (0x7fffee, 23), (0x7fffef, 23),
    /* 184 */ (0xfffea, 20), (0x3fffe2, 22), (0x3fffe3, 22), (0x3fffe4, 22),
    /* 188 */ (0x7ffff0, 23), (0x3fffe5, 22), (0x3fffe6, 22), (0x7ffff1, 23),
    /* 192 */ (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20), (0x7fff1, 19),
    /* 196 */ (0x3fffe7, 22), (0x7ffff2, 23), (0x3fffe8, 22), (0x1ffffec, 25),
    /* 200 */ (0x3ffffe2, 26), (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27),
    /* 204 */ (0x7ffffdf, 27), (0x3ffffe5, 26), (0xfffff1, 24), (0x1ffffed, 25),
    /* 208 */ (0x7fff2, 19), (0x1fffe3, 21), (0x3ffffe6, 26), (0x7ffffe0, 27),
    /* 212 */ (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27), (0xfffff2, 24),
    /* 216 */ (0x1fffe4, 21), (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26),
    /* 220 */ (0xffffffd, 28), (0x7ffffe3, 27), (0x7ffffe4, 27), (0x7ffffe5, 27),
    /* 224 */ (0xfffec, 20), (0xfffff3, 24), (0xfffed, 20), (0x1fffe6, 21),
    /* 228 */ (0x3fffe9, 22), (0x1fffe7, 21), (0x1fffe8, 21), (0x7ffff3, 23),
    /* 232 */ (0x3fffea, 22), (0x3fffeb, 22), (0x1ffffee, 25), (0x1ffffef, 25),
    /* 236 */ (0xfffff4, 24), (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23),
    /* 240 */ (0x3ffffeb, 26), (0x7ffffe6, 27), (0x3ffffec, 26), (0x3ffffed, 26),
    /* 244 */ (0x7ffffe7, 27), (0x7ffffe8, 27), (0x7ffffe9, 27), (0x7ffffea, 27),
    /* 248 */ (0x7ffffeb, 27), (0xffffffe, 28), (0x7ffffec, 27), (0x7ffffed, 27),
    /* 252 */ (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27), (0x3ffffee, 26),
    /* 256 */ (0x3fffffff, 30),
];

/// The end-of-string symbol: never valid inside a string.
const EOS: u16 = 256;
/// Longest code, in bits (EOS and a few control bytes).
const MAX_CODE_LEN: usize = 30;

/// Why a Huffman-coded string was rejected (RFC 7541 §5.2). All of them are
/// QPACK_DECOMPRESSION_FAILED to QPACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum HuffmanError {
    /// The EOS symbol was decoded.
    #[error("EOS symbol inside a Huffman-coded string")]
    EndOfString,
    /// Padding longer than 7 bits, or not the most significant bits of EOS
    /// (all ones).
    #[error("invalid Huffman padding")]
    InvalidPadding,
    /// The decoded string would exceed the caller's limit.
    #[error("Huffman-decoded string longer than {max} bytes")]
    TooLong { max: usize },
}

/// Canonical decoding tables: for each code length, the numerically first
/// code of that length, how many codes have it, and where their symbols
/// start in `symbols` (sorted by length, then code).
struct DecodeTable {
    first_code: [u32; MAX_CODE_LEN + 1],
    count: [u32; MAX_CODE_LEN + 1],
    offset: [u32; MAX_CODE_LEN + 1],
    symbols: [u16; 257],
}

const DECODE: DecodeTable = build_decode_table();

const fn build_decode_table() -> DecodeTable {
    let mut first_code = [u32::MAX; MAX_CODE_LEN + 1];
    let mut count = [0u32; MAX_CODE_LEN + 1];
    let mut symbol = 0;
    while symbol < CODES.len() {
        let (code, len) = CODES[symbol];
        let len = len as usize;
        count[len] += 1;
        if code < first_code[len] {
            first_code[len] = code;
        }
        symbol += 1;
    }
    let mut offset = [0u32; MAX_CODE_LEN + 1];
    let mut total = 0;
    let mut len = 0;
    while len <= MAX_CODE_LEN {
        offset[len] = total;
        total += count[len];
        len += 1;
    }
    // Codes of one length are consecutive in a canonical code, so each
    // symbol's slot is its code's distance from the first code of its length.
    // A non-canonical table would index out of bounds or collide; the
    // former fails compilation, the latter the `canonical` test.
    let mut symbols = [0u16; 257];
    let mut symbol = 0;
    while symbol < CODES.len() {
        let (code, len) = CODES[symbol];
        let len = len as usize;
        symbols[(offset[len] + code - first_code[len]) as usize] = symbol as u16;
        symbol += 1;
    }
    DecodeTable { first_code, count, offset, symbols }
}

/// Decodes a Huffman-coded string, appending at most `max_len` bytes to
/// `out`. On error, `out` may hold part of the string.
pub fn decode(input: &[u8], max_len: usize, out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    let mut decoded = 0usize;
    let mut code = 0u32;
    let mut len = 0usize;
    for &byte in input {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            let index = code.wrapping_sub(DECODE.first_code[len]);
            if index < DECODE.count[len] {
                let symbol = DECODE.symbols[(DECODE.offset[len] + index) as usize];
                if symbol == EOS {
                    return Err(HuffmanError::EndOfString);
                }
                if decoded == max_len {
                    return Err(HuffmanError::TooLong { max: max_len });
                }
                out.push(symbol as u8);
                decoded += 1;
                code = 0;
                len = 0;
            } else if len == MAX_CODE_LEN {
                // Unreachable with a complete code such as this one (every
                // 30-bit string starts with a code); kept so that no input
                // can index past the tables.
                return Err(HuffmanError::InvalidPadding);
            }
        }
    }
    // What is left must be a prefix of EOS (all ones) shorter than a byte.
    if len > 7 || code != (1u32 << len) - 1 {
        return Err(HuffmanError::InvalidPadding);
    }
    Ok(())
}

/// Bytes the Huffman coding of `input` takes.
pub fn encoded_len(input: &[u8]) -> usize {
    let bits: usize = input.iter().map(|&byte| usize::from(CODES[usize::from(byte)].1)).sum();
    bits.div_ceil(8)
}

/// Appends the Huffman coding of `input`, padded with the high bits of EOS.
pub fn encode(input: &[u8], out: &mut impl BufMut) {
    // Holds fewer than 8 pending bits plus one code of at most 30 bits.
    let mut pending = 0u64;
    let mut pending_bits = 0u32;
    for &byte in input {
        let (code, len) = CODES[usize::from(byte)];
        pending = (pending << len) | u64::from(code);
        pending_bits += u32::from(len);
        while pending_bits >= 8 {
            pending_bits -= 8;
            out.put_u8((pending >> pending_bits) as u8);
        }
    }
    if pending_bits > 0 {
        let pad = 8 - pending_bits;
        out.put_u8(((pending << pad) as u8) | ((1u8 << pad) - 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<Vec<u8>, HuffmanError> {
        let mut out = Vec::new();
        decode(input, usize::MAX, &mut out).map(|()| out)
    }

    /// RFC 7541 Appendix C.4 and C.6 Huffman-coded strings.
    const RFC7541_SAMPLES: &[(&str, &str)] = &[
        ("www.example.com", "f1e3c2e5f23a6ba0ab90f4ff"),
        ("no-cache", "a8eb10649cbf"),
        ("custom-key", "25a849e95ba97d7f"),
        ("custom-value", "25a849e95bb8e8b4bf"),
        ("302", "6402"),
        ("private", "aec3771a4b"),
        ("Mon, 21 Oct 2013 20:13:21 GMT", "d07abe941054d444a8200595040b8166e082a62d1bff"),
        ("https://www.example.com", "9d29ad171863c78f0b97c8e9ae82ae43d3"),
    ];

    #[test]
    fn rfc7541_samples_decode() {
        for &(text, coded) in RFC7541_SAMPLES {
            let coded = hex::decode(coded).unwrap();
            assert_eq!(decode_all(&coded).unwrap(), text.as_bytes(), "{text}");
        }
    }

    #[test]
    fn rfc7541_samples_encode() {
        for &(text, coded) in RFC7541_SAMPLES {
            let mut out = Vec::new();
            encode(text.as_bytes(), &mut out);
            assert_eq!(hex::encode(&out), coded, "{text}");
            assert_eq!(encoded_len(text.as_bytes()), out.len());
        }
    }

    #[test]
    fn code_is_canonical_and_complete() {
        // Spot checks against RFC 7541 Appendix B.
        assert_eq!(CODES[0], (0x1ff8, 13));
        assert_eq!(CODES[usize::from(b' ')], (0x14, 6));
        assert_eq!(CODES[usize::from(b'a')], (0x3, 5));
        assert_eq!(CODES[255], (0x3ffffee, 26));
        assert_eq!(CODES[256], (0x3fffffff, 30));
        // Canonical: sorted by (length, symbol), each code is the previous
        // one plus one, shifted to the new length.
        let mut order: Vec<usize> = (0..257).collect();
        order.sort_by_key(|&symbol| (CODES[symbol].1, symbol));
        let mut expected = 0u32;
        let mut previous_len = CODES[order[0]].1;
        for (position, &symbol) in order.iter().enumerate() {
            let (code, len) = CODES[symbol];
            if position > 0 {
                expected = (expected + 1) << (len - previous_len);
            }
            assert_eq!(code, expected, "symbol {symbol}");
            previous_len = len;
        }
        // Complete: the last code of the longest length is all ones.
        assert_eq!(expected, (1 << MAX_CODE_LEN) - 1);
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        let mut coded = Vec::new();
        encode(&all, &mut coded);
        assert_eq!(decode_all(&coded).unwrap(), all);
        for byte in 0..=255u8 {
            let mut coded = Vec::new();
            encode(&[byte, byte], &mut coded);
            assert_eq!(decode_all(&coded).unwrap(), [byte, byte]);
        }
    }

    #[test]
    fn eos_in_the_string_is_rejected() {
        // EOS (30 ones) followed by 2 bits of padding.
        assert_eq!(decode_all(&[0xff; 4]), Err(HuffmanError::EndOfString));
        // 'a' (00011) then EOS.
        let coded = [0b0001_1111, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(decode_all(&coded), Err(HuffmanError::EndOfString));
    }

    #[test]
    fn padding_must_be_short_and_all_ones() {
        // 'a' = 00011, padded with 000: not ones.
        assert_eq!(decode_all(&[0b0001_1000]), Err(HuffmanError::InvalidPadding));
        // 'a' then 11 bits of ones: padding longer than 7 bits.
        assert_eq!(decode_all(&[0b0001_1111, 0xff]), Err(HuffmanError::InvalidPadding));
        // A whole byte of ones is padding of 8 bits.
        assert_eq!(decode_all(&[0xff]), Err(HuffmanError::InvalidPadding));
        // 'a' padded with 111 is fine; so is the empty string.
        assert_eq!(decode_all(&[0b0001_1111]).unwrap(), b"a");
        assert_eq!(decode_all(&[]).unwrap(), b"");
    }

    #[test]
    fn decoded_length_is_bounded() {
        let mut coded = Vec::new();
        encode(b"aaaaaaaa", &mut coded);
        let mut out = Vec::new();
        assert_eq!(decode(&coded, 8, &mut out), Ok(()));
        out.clear();
        assert_eq!(decode(&coded, 7, &mut out), Err(HuffmanError::TooLong { max: 7 }));
        assert_eq!(out.len(), 7);
    }
}
