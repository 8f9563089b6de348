//! Encoding of field sections with the static table only: nothing is ever
//! inserted into the peer's dynamic table, so sections never block and the
//! encoder stream stays silent.

use bytes::BufMut;

use super::huffman;
use super::primitives::encode_integer;
use super::static_table::{self, StaticMatch};

/// Appends the Encoded Field Section Prefix of a section that does not use
/// the dynamic table: Required Insert Count 0, Delta Base 0.
pub fn encode_prefix(out: &mut impl BufMut) {
    out.put_slice(&[0x00, 0x00]);
}

/// Appends one field line: an exact static match as an Indexed Field Line,
/// a static name match as a Literal Field Line with Name Reference,
/// otherwise a Literal Field Line with Literal Name.
///
/// Names must already be lowercase (RFC 9114 §4.2); that is the caller's
/// contract, checked in debug builds.
pub fn encode_field_line(name: &[u8], value: &[u8], out: &mut impl BufMut) {
    debug_assert!(!name.iter().any(u8::is_ascii_uppercase), "field names must be lowercase");
    match static_table::lookup(name, value) {
        StaticMatch::Exact(index) => {
            // 1 T=1 index(6+)
            encode_integer(u64::from(index), 6, 0b1100_0000, out);
        }
        StaticMatch::Name(index) => {
            // 01 N=0 T=1 index(4+), then the value as an 8-bit prefix string.
            encode_integer(u64::from(index), 4, 0b0101_0000, out);
            encode_string(value, 7, 0, out);
        }
        StaticMatch::None => {
            // 001 N=0 H name(3+), then the value.
            encode_string(name, 3, 0b0010_0000, out);
            encode_string(value, 7, 0, out);
        }
    }
}

/// Appends a whole encoded field section (the payload of a HEADERS frame).
pub fn encode_field_section<I, N, V>(fields: I, out: &mut impl BufMut)
where
    I: IntoIterator<Item = (N, V)>,
    N: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    encode_prefix(out);
    for (name, value) in fields {
        encode_field_line(name.as_ref(), value.as_ref(), out);
    }
}

/// Appends a string literal whose H flag sits just above its
/// `prefix_bits`-bit length, Huffman-coded when that is shorter.
fn encode_string(bytes: &[u8], prefix_bits: u32, flags: u8, out: &mut impl BufMut) {
    let huffman_len = huffman::encoded_len(bytes);
    if huffman_len < bytes.len() {
        encode_integer(huffman_len as u64, prefix_bits, flags | (1 << prefix_bits), out);
        huffman::encode(bytes, out);
    } else {
        encode_integer(bytes.len() as u64, prefix_bits, flags, out);
        out.put_slice(bytes);
    }
}
