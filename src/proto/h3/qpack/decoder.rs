//! Decoding of encoded field sections (RFC 9204 §4.5) against the static
//! table only.

use super::huffman::{self, HuffmanError};
use super::primitives::decode_integer;
use super::static_table;
use super::QpackError;

/// Per-field overhead in the field section size (RFC 9114 §4.2.2).
pub const FIELD_OVERHEAD: usize = 32;

/// Bounds on what one decoded field section may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest decoded section: names + values + [`FIELD_OVERHEAD`] per
    /// field. Also bounds the decoder's memory for the section.
    pub max_field_section_size: usize,
    /// Most field lines.
    pub max_fields: usize,
    /// Longest field name.
    pub max_name_len: usize,
    /// Longest field value.
    pub max_value_len: usize,
}

impl DecodeLimits {
    pub const DEFAULT: DecodeLimits = DecodeLimits {
        max_field_section_size: 16 * 1024,
        max_fields: 128,
        max_name_len: 256,
        max_value_len: 8 * 1024,
    };
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits::DEFAULT
    }
}

/// A decoded field section: (name, value) pairs in order, stored in one
/// buffer. Reuse one across sections ([`decode_field_section`] clears it)
/// to decode without allocating once it has grown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSection {
    bytes: Vec<u8>,
    /// End offsets in `bytes` of each field's name and value; a name starts
    /// where the previous field's value ends.
    ends: Vec<(usize, usize)>,
    size: usize,
}

impl FieldSection {
    pub fn new() -> FieldSection {
        FieldSection::default()
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.size = 0;
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Size as RFC 9114 §4.2.2 counts it: names, values, 32 per field.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The field at `index`.
    pub fn get(&self, index: usize) -> Option<(&[u8], &[u8])> {
        let &(name_end, value_end) = self.ends.get(index)?;
        let name_start = match index {
            0 => 0,
            _ => self.ends[index - 1].1,
        };
        Some((&self.bytes[name_start..name_end], &self.bytes[name_end..value_end]))
    }

    /// The fields in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        (0..self.len()).filter_map(|index| self.get(index))
    }

    #[cfg(test)]
    pub(crate) fn bytes_capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Records the field whose name and value were just appended to `bytes`.
    fn close_field(&mut self, name_end: usize) {
        let name_start = self.ends.last().map_or(0, |&(_, value_end)| value_end);
        let value_end = self.bytes.len();
        self.size += value_end - name_start + FIELD_OVERHEAD;
        self.ends.push((name_end, value_end));
    }

    /// Room left for one more field's name and value.
    fn budget(&self, limits: &DecodeLimits) -> Result<usize, QpackError> {
        let used = self.size + FIELD_OVERHEAD;
        if used > limits.max_field_section_size {
            return Err(QpackError::FieldSectionTooLarge { max: limits.max_field_section_size });
        }
        Ok(limits.max_field_section_size - used)
    }
}

/// Decodes one encoded field section (a HEADERS payload) into `out`,
/// replacing what it held.
pub fn decode_field_section(
    block: &[u8],
    limits: &DecodeLimits,
    out: &mut FieldSection,
) -> Result<(), QpackError> {
    out.clear();
    let mut pos = 0;
    decode_prefix(block, &mut pos)?;
    while pos < block.len() {
        if out.len() == limits.max_fields {
            return Err(QpackError::TooManyFields { max: limits.max_fields });
        }
        decode_field_line(block, &mut pos, limits, out)?;
    }
    Ok(())
}

/// The Encoded Field Section Prefix (RFC 9204 §4.5.1): with no dynamic
/// table, Required Insert Count must be 0 and the Base non-negative.
fn decode_prefix(block: &[u8], pos: &mut usize) -> Result<(), QpackError> {
    let encoded_insert_count = decode_integer(block, pos, 8)?;
    if encoded_insert_count != 0 {
        return Err(QpackError::RequiredInsertCount(encoded_insert_count));
    }
    let sign = *block.get(*pos).ok_or(QpackError::Truncated)? & 0x80 != 0;
    // Any Delta Base is allowed when nothing refers to the table (§4.5.1.2),
    // but it must still parse.
    decode_integer(block, pos, 7)?;
    // Base = Required Insert Count - Delta Base - 1 < 0.
    if sign {
        return Err(QpackError::NegativeBase);
    }
    Ok(())
}

fn decode_field_line(
    block: &[u8],
    pos: &mut usize,
    limits: &DecodeLimits,
    out: &mut FieldSection,
) -> Result<(), QpackError> {
    let first = block[*pos];
    if first & 0x80 != 0 {
        // Indexed Field Line: 1 T index(6+).
        if first & 0x40 == 0 {
            return Err(QpackError::DynamicReference);
        }
        let (name, value) = static_entry(decode_integer(block, pos, 6)?)?;
        append_static_field(name, value, limits, out)
    } else if first & 0x40 != 0 {
        // Literal Field Line with Name Reference: 01 N T index(4+) value.
        if first & 0x10 == 0 {
            return Err(QpackError::DynamicReference);
        }
        let (name, _) = static_entry(decode_integer(block, pos, 4)?)?;
        let budget = out.budget(limits)?;
        check_len(name.len(), limits.max_name_len, budget, limits)?;
        reserve(&mut out.bytes, name.len(), limits);
        out.bytes.extend_from_slice(name);
        let name_end = out.bytes.len();
        append_string(block, pos, 7, limits.max_value_len, budget - name.len(), limits, out)?;
        out.close_field(name_end);
        Ok(())
    } else if first & 0x20 != 0 {
        // Literal Field Line with Literal Name: 001 N H name(3+) value.
        let budget = out.budget(limits)?;
        let name_len = append_string(block, pos, 3, limits.max_name_len, budget, limits, out)?;
        let name_end = out.bytes.len();
        append_string(block, pos, 7, limits.max_value_len, budget - name_len, limits, out)?;
        out.close_field(name_end);
        Ok(())
    } else {
        // 0001: Indexed Field Line with Post-Base Index; 0000: Literal Field
        // Line with Post-Base Name Reference. Both need the dynamic table.
        Err(QpackError::DynamicReference)
    }
}

fn static_entry(index: u64) -> Result<(&'static [u8], &'static [u8]), QpackError> {
    static_table::get(index).ok_or(QpackError::StaticIndex(index))
}

fn append_static_field(
    name: &[u8],
    value: &[u8],
    limits: &DecodeLimits,
    out: &mut FieldSection,
) -> Result<(), QpackError> {
    let budget = out.budget(limits)?;
    check_len(name.len(), limits.max_name_len, budget, limits)?;
    check_len(value.len(), limits.max_value_len, budget - name.len(), limits)?;
    reserve(&mut out.bytes, name.len() + value.len(), limits);
    out.bytes.extend_from_slice(name);
    let name_end = out.bytes.len();
    out.bytes.extend_from_slice(value);
    out.close_field(name_end);
    Ok(())
}

/// Checks a string's length against its own limit and the section's budget.
fn check_len(
    len: usize,
    string_max: usize,
    budget: usize,
    limits: &DecodeLimits,
) -> Result<(), QpackError> {
    if len > string_max {
        return Err(QpackError::StringTooLong { max: string_max });
    }
    if len > budget {
        return Err(QpackError::FieldSectionTooLarge { max: limits.max_field_section_size });
    }
    Ok(())
}

/// Decodes an N-bit prefix string literal (RFC 9204 §4.1.2: the H flag sits
/// just above the `prefix_bits`-bit length) and appends it to `out.bytes`.
/// Returns the decoded length.
fn append_string(
    block: &[u8],
    pos: &mut usize,
    prefix_bits: u32,
    string_max: usize,
    budget: usize,
    limits: &DecodeLimits,
    out: &mut FieldSection,
) -> Result<usize, QpackError> {
    let first = *block.get(*pos).ok_or(QpackError::Truncated)?;
    let huffman_coded = first & (1 << prefix_bits) != 0;
    let len = decode_integer(block, pos, prefix_bits)?;
    let available = block.len() - *pos;
    if len > available as u64 {
        return Err(QpackError::Truncated);
    }
    let raw = &block[*pos..*pos + len as usize];
    *pos += raw.len();
    if !huffman_coded {
        check_len(raw.len(), string_max, budget, limits)?;
        reserve(&mut out.bytes, raw.len(), limits);
        out.bytes.extend_from_slice(raw);
        return Ok(raw.len());
    }
    let max = string_max.min(budget);
    // The shortest code is 5 bits, so the string is at most 8/5 as long.
    reserve(&mut out.bytes, (raw.len() * 8 / 5).min(max), limits);
    let start = out.bytes.len();
    match huffman::decode(raw, max, &mut out.bytes) {
        Ok(()) => Ok(out.bytes.len() - start),
        Err(HuffmanError::TooLong { .. }) if string_max <= budget => {
            Err(QpackError::StringTooLong { max: string_max })
        }
        Err(HuffmanError::TooLong { .. }) => {
            Err(QpackError::FieldSectionTooLarge { max: limits.max_field_section_size })
        }
        Err(error) => Err(QpackError::Huffman(error)),
    }
}

/// Makes room for `additional` bytes, growing geometrically but never past
/// the section limit (the bytes of a section never exceed its size).
fn reserve(bytes: &mut Vec<u8>, additional: usize, limits: &DecodeLimits) {
    let needed = bytes.len() + additional;
    if needed <= bytes.capacity() {
        return;
    }
    let target = (bytes.capacity() * 2).max(needed).min(limits.max_field_section_size.max(needed));
    bytes.reserve_exact(target - bytes.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_never_exceeds_the_section_limit() {
        let limits = DecodeLimits { max_field_section_size: 100, ..DecodeLimits::DEFAULT };
        let mut bytes = Vec::new();
        for _ in 0..10 {
            reserve(&mut bytes, 9, &limits);
            bytes.extend_from_slice(&[0; 9]);
            assert!(bytes.capacity() <= 100);
        }
    }
}
