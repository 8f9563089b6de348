//! Field encodings: LEB128 varints, little-endian fixed-width integers,
//! length-prefixed UTF-8 text and bytes, bounded lists, options.
//!
//! Every type that appears in a message implements [`Field`]. Decoding is
//! total: any input gives a value or a [`DecodeError`], and no allocation is
//! ever sized by a length the peer sent before that length was checked
//! against both its limit and the bytes actually present.

use arrayvec::ArrayVec;
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{json, Value};

use super::error::{DecodeError, LimitError};
use super::rng::Rng;

/// The longest LEB128 encoding of a u64.
pub const VARINT_MAX_LEN: usize = 10;

/// A cursor over a received buffer. Text and byte fields are sliced out of
/// the underlying [`Bytes`] without copying.
pub struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a Bytes) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    fn need(&self, count: usize) -> Result<(), DecodeError> {
        let remaining = self.remaining();
        if remaining < count {
            return Err(DecodeError::Truncated { needed: count - remaining });
        }
        Ok(())
    }

    /// The next `count` bytes, borrowed.
    pub fn take(&mut self, count: usize) -> Result<&'a [u8], DecodeError> {
        self.need(count)?;
        let buf: &'a Bytes = self.buf;
        let slice = &buf[self.pos..self.pos + count];
        self.pos += count;
        Ok(slice)
    }

    /// The next `N` bytes as an array (for fixed-width integers).
    pub fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let slice = self.take(N)?;
        let mut array = [0u8; N];
        array.copy_from_slice(slice);
        Ok(array)
    }

    /// The next `count` bytes as a zero-copy slice of the buffer.
    pub fn take_bytes(&mut self, count: usize) -> Result<Bytes, DecodeError> {
        self.need(count)?;
        let bytes = self.buf.slice(self.pos..self.pos + count);
        self.pos += count;
        Ok(bytes)
    }

    /// A LEB128 varint in its minimal encoding (at most 10 bytes).
    #[inline]
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let (value, len) = parse_varint(&self.buf[self.pos..])?;
        self.pos += len;
        Ok(value)
    }

    /// A length prefix for a field of at most `max` bytes, checked against the
    /// limit and against the bytes present before anything is allocated.
    pub fn length(&mut self, max: usize) -> Result<usize, DecodeError> {
        let len = self.varint()?;
        if len > max as u64 {
            return Err(DecodeError::TooLong { len: len as usize, max });
        }
        let len = len as usize;
        self.need(len)?;
        Ok(len)
    }

    /// A list count of at most `max` items whose encodings take at least
    /// `item_min_len` bytes each.
    pub fn count(&mut self, max: usize, item_min_len: usize) -> Result<usize, DecodeError> {
        let count = self.varint()?;
        if count > max as u64 {
            return Err(DecodeError::TooManyItems { count: count as usize, max });
        }
        let count = count as usize;
        self.need(count * item_min_len)?;
        Ok(count)
    }
}

/// Parses a minimal LEB128 varint at the start of `bytes`: its value and
/// encoded length.
#[inline]
pub fn parse_varint(bytes: &[u8]) -> Result<(u64, usize), DecodeError> {
    let mut value: u64 = 0;
    for (index, byte) in bytes.iter().take(VARINT_MAX_LEN).enumerate() {
        let payload = u64::from(byte & 0x7f);
        // The tenth byte holds only the top bit of a u64.
        if index == VARINT_MAX_LEN - 1 && payload > 1 {
            return Err(DecodeError::OverlongVarint);
        }
        value |= payload << (7 * index);
        if byte & 0x80 == 0 {
            // A zero final byte after the first means a shorter encoding existed.
            if index > 0 && *byte == 0 {
                return Err(DecodeError::OverlongVarint);
            }
            return Ok((value, index + 1));
        }
    }
    if bytes.len() >= VARINT_MAX_LEN {
        return Err(DecodeError::OverlongVarint);
    }
    Err(DecodeError::Truncated { needed: 1 })
}

/// Writes `value` as a minimal LEB128 varint into `buf`; returns its length.
#[inline]
pub fn write_varint(buf: &mut [u8; VARINT_MAX_LEN], mut value: u64) -> usize {
    let mut len = 0;
    while value >= 0x80 {
        buf[len] = (value as u8) | 0x80;
        value >>= 7;
        len += 1;
    }
    buf[len] = value as u8;
    len + 1
}

/// Appends `value` as a minimal LEB128 varint.
#[inline]
pub fn put_varint(out: &mut BytesMut, value: u64) {
    if value < 0x80 {
        out.put_u8(value as u8);
        return;
    }
    let mut buf = [0u8; VARINT_MAX_LEN];
    let len = write_varint(&mut buf, value);
    out.put_slice(&buf[..len]);
}

/// How many bytes the minimal varint encoding of `value` takes.
pub const fn varint_len(value: u64) -> usize {
    let mut len = 1;
    let mut rest = value >> 7;
    while rest != 0 {
        len += 1;
        rest >>= 7;
    }
    len
}

/// A value that can be a field of a message.
pub trait Field: Sized {
    /// The fewest bytes an encoding takes: bounds list counts before allocation.
    const MIN_LEN: usize;
    /// The most bytes an encoding takes: checked against the frame limit at compile time.
    const MAX_LEN: usize;
    fn encode(&self, out: &mut BytesMut);
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;
    /// The value as JSON, the form used by the test vectors.
    fn to_json(&self) -> Value;
    fn from_json(value: &Value) -> Result<Self, String>;
    /// The type's description in the schema shared with the JavaScript codec.
    fn schema() -> Value;
    /// A random value within every limit, biased towards edge cases.
    fn random(rng: &mut Rng) -> Self;
}

macro_rules! fixed_int {
    ($($ty:ty, $kind:expr, $as_string:expr;)*) => {$(
        impl Field for $ty {
            const MIN_LEN: usize = std::mem::size_of::<$ty>();
            const MAX_LEN: usize = std::mem::size_of::<$ty>();
            #[inline]
            fn encode(&self, out: &mut BytesMut) {
                out.put_slice(&self.to_le_bytes());
            }
            #[inline]
            fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(<$ty>::from_le_bytes(reader.take_array()?))
            }
            fn to_json(&self) -> Value {
                // 64-bit values travel as strings: JSON numbers lose precision past 2^53.
                if $as_string { json!(self.to_string()) } else { json!(*self) }
            }
            fn from_json(value: &Value) -> Result<Self, String> {
                let parsed = if $as_string {
                    value.as_str().and_then(|text| text.parse::<$ty>().ok())
                } else {
                    value.as_i64().and_then(|number| <$ty>::try_from(number).ok())
                };
                parsed.ok_or_else(|| format!("expected {} but found {}", $kind, value))
            }
            fn schema() -> Value {
                json!({ "kind": $kind })
            }
            fn random(rng: &mut Rng) -> Self {
                match rng.below(8) {
                    0 => <$ty>::MIN,
                    1 => <$ty>::MAX,
                    2 => 0,
                    3 => 1 as $ty,
                    _ => rng.next_u64() as $ty,
                }
            }
        }
    )*};
}

fixed_int! {
    u8, "u8", false;
    u16, "u16", false;
    u32, "u32", false;
    u64, "u64", true;
    i8, "i8", false;
    i16, "i16", false;
    i32, "i32", false;
    i64, "i64", true;
}

impl Field for bool {
    const MIN_LEN: usize = 1;
    const MAX_LEN: usize = 1;
    fn encode(&self, out: &mut BytesMut) {
        out.put_u8(u8::from(*self));
    }
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.take_array::<1>()?[0] {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(DecodeError::InvalidTag { tag }),
        }
    }
    fn to_json(&self) -> Value {
        json!(*self)
    }
    fn from_json(value: &Value) -> Result<Self, String> {
        value.as_bool().ok_or_else(|| format!("expected bool but found {value}"))
    }
    fn schema() -> Value {
        json!({ "kind": "bool" })
    }
    fn random(rng: &mut Rng) -> Self {
        rng.below(2) == 1
    }
}

/// UTF-8 text of at most `MAX` bytes, sliced from the received buffer
/// without copying. Wire form: varint byte length, then the bytes.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Text<const MAX: usize>(Bytes);

impl<const MAX: usize> Text<MAX> {
    /// Text from a static string; panics at start-up if it breaks the limit,
    /// which is a programming error.
    pub fn from_static(text: &'static str) -> Text<MAX> {
        assert!(text.len() <= MAX, "static text over its wire limit");
        Text(Bytes::from_static(text.as_bytes()))
    }

    pub fn new(text: &str) -> Result<Text<MAX>, LimitError> {
        Self::check(text.len())?;
        Ok(Text(Bytes::copy_from_slice(text.as_bytes())))
    }

    fn check(len: usize) -> Result<(), LimitError> {
        if len > MAX {
            return Err(LimitError { what: "text", len, max: MAX });
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor takes a &str or checks from_utf8 first,
        // and the bytes are never mutated afterwards.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl<const MAX: usize> TryFrom<String> for Text<MAX> {
    type Error = LimitError;
    fn try_from(text: String) -> Result<Self, LimitError> {
        Self::check(text.len())?;
        Ok(Text(Bytes::from(text.into_bytes())))
    }
}

impl<const MAX: usize> std::fmt::Debug for Text<MAX> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), formatter)
    }
}

impl<const MAX: usize> std::fmt::Display for Text<MAX> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl<const MAX: usize> Field for Text<MAX> {
    const MIN_LEN: usize = 1;
    const MAX_LEN: usize = varint_len(MAX as u64) + MAX;
    fn encode(&self, out: &mut BytesMut) {
        put_varint(out, self.0.len() as u64);
        out.put_slice(&self.0);
    }
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = reader.length(MAX)?;
        let bytes = reader.take_bytes(len)?;
        std::str::from_utf8(&bytes).map_err(|_| DecodeError::InvalidUtf8)?;
        Ok(Text(bytes))
    }
    fn to_json(&self) -> Value {
        json!(self.as_str())
    }
    fn from_json(value: &Value) -> Result<Self, String> {
        let text = value.as_str().ok_or_else(|| format!("expected text but found {value}"))?;
        Text::new(text).map_err(|error| error.to_string())
    }
    fn schema() -> Value {
        json!({ "kind": "text", "max": MAX })
    }
    fn random(rng: &mut Rng) -> Self {
        let text = rng.text(MAX);
        Text::new(&text).expect("rng.text respects the limit")
    }
}

/// Opaque bytes of at most `MAX`, sliced from the received buffer without
/// copying. Wire form: varint length, then the bytes. JSON form: hex.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Blob<const MAX: usize>(Bytes);

impl<const MAX: usize> Blob<MAX> {
    pub fn new(bytes: Bytes) -> Result<Blob<MAX>, LimitError> {
        if bytes.len() > MAX {
            return Err(LimitError { what: "bytes", len: bytes.len(), max: MAX });
        }
        Ok(Blob(bytes))
    }

    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

impl<const MAX: usize> Field for Blob<MAX> {
    const MIN_LEN: usize = 1;
    const MAX_LEN: usize = varint_len(MAX as u64) + MAX;
    fn encode(&self, out: &mut BytesMut) {
        put_varint(out, self.0.len() as u64);
        out.put_slice(&self.0);
    }
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = reader.length(MAX)?;
        Ok(Blob(reader.take_bytes(len)?))
    }
    fn to_json(&self) -> Value {
        json!(hex::encode(&self.0))
    }
    fn from_json(value: &Value) -> Result<Self, String> {
        let text = value.as_str().ok_or_else(|| format!("expected hex but found {value}"))?;
        let bytes = hex::decode(text).map_err(|error| error.to_string())?;
        Blob::new(Bytes::from(bytes)).map_err(|error| error.to_string())
    }
    fn schema() -> Value {
        json!({ "kind": "bytes", "max": MAX })
    }
    fn random(rng: &mut Rng) -> Self {
        let len = rng.length(MAX);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        Blob(Bytes::from(bytes))
    }
}

/// A list of at most `MAX` items on the heap (for lists off the hot path).
/// Wire form: varint count, then the items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List<T, const MAX: usize>(Vec<T>);

impl<T, const MAX: usize> Default for List<T, MAX> {
    fn default() -> Self {
        List(Vec::new())
    }
}

impl<T, const MAX: usize> List<T, MAX> {
    pub fn new(items: Vec<T>) -> Result<List<T, MAX>, LimitError> {
        if items.len() > MAX {
            return Err(LimitError { what: "list", len: items.len(), max: MAX });
        }
        Ok(List(items))
    }

    pub fn push(&mut self, item: T) -> Result<(), LimitError> {
        if self.0.len() == MAX {
            return Err(LimitError { what: "list", len: MAX + 1, max: MAX });
        }
        self.0.push(item);
        Ok(())
    }

    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
}

fn list_json<'a, T: Field + 'a>(items: impl Iterator<Item = &'a T>) -> Value {
    Value::Array(items.map(Field::to_json).collect())
}

fn json_items(value: &Value) -> Result<&Vec<Value>, String> {
    value.as_array().ok_or_else(|| format!("expected a list but found {value}"))
}

fn list_schema<T: Field>(max: usize) -> Value {
    json!({ "kind": "list", "max": max, "item": T::schema() })
}

impl<T: Field, const MAX: usize> Field for List<T, MAX> {
    const MIN_LEN: usize = 1;
    const MAX_LEN: usize = varint_len(MAX as u64) + MAX * T::MAX_LEN;
    fn encode(&self, out: &mut BytesMut) {
        put_varint(out, self.0.len() as u64);
        self.0.iter().for_each(|item| item.encode(out));
    }
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = reader.count(MAX, T::MIN_LEN)?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(T::decode(reader)?);
        }
        Ok(List(items))
    }
    fn to_json(&self) -> Value {
        list_json(self.0.iter())
    }
    fn from_json(value: &Value) -> Result<Self, String> {
        let items = json_items(value)?.iter().map(T::from_json).collect::<Result<Vec<_>, _>>()?;
        List::new(items).map_err(|error| error.to_string())
    }
    fn schema() -> Value {
        list_schema::<T>(MAX)
    }
    fn random(rng: &mut Rng) -> Self {
        let count = rng.length(MAX.min(12));
        List((0..count).map(|_| T::random(rng)).collect())
    }
}

/// A list of at most `N` items stored inline: the hot-path list (inputs,
/// arena players), decoded without touching the heap.
impl<T: Field, const N: usize> Field for ArrayVec<T, N> {
    const MIN_LEN: usize = 1;
    const MAX_LEN: usize = varint_len(N as u64) + N * T::MAX_LEN;
    #[inline]
    fn encode(&self, out: &mut BytesMut) {
        put_varint(out, self.len() as u64);
        self.iter().for_each(|item| item.encode(out));
    }
    #[inline]
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = reader.count(N, T::MIN_LEN)?;
        let mut items = ArrayVec::new();
        for _ in 0..count {
            items.push(T::decode(reader)?);
        }
        Ok(items)
    }
    fn to_json(&self) -> Value {
        list_json(self.iter())
    }
    fn from_json(value: &Value) -> Result<Self, String> {
        let values = json_items(value)?;
        if values.len() > N {
            return Err(format!("list of {} items exceeds limit {N}", values.len()));
        }
        values.iter().map(T::from_json).collect()
    }
    fn schema() -> Value {
        list_schema::<T>(N)
    }
    fn random(rng: &mut Rng) -> Self {
        let count = rng.length(N);
        (0..count).map(|_| T::random(rng)).collect()
    }
}

/// Wire form: tag byte 0 (absent) or 1 (present, followed by the value).
impl<T: Field> Field for Option<T> {
    const MIN_LEN: usize = 1;
    const MAX_LEN: usize = 1 + T::MAX_LEN;
    fn encode(&self, out: &mut BytesMut) {
        match self {
            None => out.put_u8(0),
            Some(value) => {
                out.put_u8(1);
                value.encode(out);
            }
        }
    }
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.take_array::<1>()?[0] {
            0 => Ok(None),
            1 => Ok(Some(T::decode(reader)?)),
            tag => Err(DecodeError::InvalidTag { tag }),
        }
    }
    fn to_json(&self) -> Value {
        self.as_ref().map_or(Value::Null, Field::to_json)
    }
    fn from_json(value: &Value) -> Result<Self, String> {
        if value.is_null() {
            return Ok(None);
        }
        T::from_json(value).map(Some)
    }
    fn schema() -> Value {
        json!({ "kind": "option", "item": T::schema() })
    }
    fn random(rng: &mut Rng) -> Self {
        (rng.below(2) == 1).then(|| T::random(rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_varint(bytes: &[u8]) -> Result<u64, DecodeError> {
        let buf = Bytes::copy_from_slice(bytes);
        Reader::new(&buf).varint()
    }

    #[test]
    fn varint_round_trips_at_every_length_boundary() {
        for shift in 0..64 {
            for value in [(1u64 << shift) - 1, 1u64 << shift, (1u64 << shift) + 1] {
                let mut out = BytesMut::new();
                put_varint(&mut out, value);
                assert_eq!(out.len(), varint_len(value));
                assert_eq!(decode_varint(&out), Ok(value));
            }
        }
        let mut out = BytesMut::new();
        put_varint(&mut out, u64::MAX);
        assert_eq!(out.len(), VARINT_MAX_LEN);
        assert_eq!(decode_varint(&out), Ok(u64::MAX));
    }

    #[test]
    fn varint_rejects_non_minimal_and_overlong_encodings() {
        assert_eq!(decode_varint(&[0x80, 0x00]), Err(DecodeError::OverlongVarint));
        assert_eq!(decode_varint(&[0xff, 0x80, 0x00]), Err(DecodeError::OverlongVarint));
        let eleven = [0xff; 11];
        assert_eq!(decode_varint(&eleven), Err(DecodeError::OverlongVarint));
        // Ten bytes whose last one carries more than the top bit of a u64.
        let mut too_big = [0xff; 10];
        too_big[9] = 0x02;
        assert_eq!(decode_varint(&too_big), Err(DecodeError::OverlongVarint));
        assert_eq!(decode_varint(&[0x80]), Err(DecodeError::Truncated { needed: 1 }));
    }

    #[test]
    fn length_prefix_is_checked_before_the_bytes_are_read() {
        // A 2^40-byte string announced in five bytes must fail on the limit.
        let buf = Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x20]);
        let error = Text::<32>::decode(&mut Reader::new(&buf)).unwrap_err();
        assert!(matches!(error, DecodeError::TooLong { max: 32, .. }));
        // Within the limit but more than is present: truncated, nothing allocated.
        let buf = Bytes::from_static(&[0x05, b'a']);
        let error = Text::<32>::decode(&mut Reader::new(&buf)).unwrap_err();
        assert_eq!(error, DecodeError::Truncated { needed: 4 });
    }

    #[test]
    fn list_count_is_checked_against_the_bytes_present() {
        // 8 u64 items announced, 3 bytes present: rejected before allocation.
        let buf = Bytes::from_static(&[0x08, 1, 2, 3]);
        let error = List::<u64, 64>::decode(&mut Reader::new(&buf)).unwrap_err();
        assert_eq!(error, DecodeError::Truncated { needed: 61 });
        let buf = Bytes::from_static(&[0x41]);
        let error = ArrayVec::<u16, 8>::decode(&mut Reader::new(&buf)).unwrap_err();
        assert_eq!(error, DecodeError::TooManyItems { count: 65, max: 8 });
    }

    #[test]
    fn text_rejects_invalid_utf8_and_bool_rejects_other_tags() {
        let buf = Bytes::from_static(&[0x02, 0xc3, 0x28]);
        assert_eq!(Text::<8>::decode(&mut Reader::new(&buf)), Err(DecodeError::InvalidUtf8));
        let buf = Bytes::from_static(&[0x02]);
        assert_eq!(bool::decode(&mut Reader::new(&buf)), Err(DecodeError::InvalidTag { tag: 2 }));
        assert_eq!(
            Option::<u8>::decode(&mut Reader::new(&buf)),
            Err(DecodeError::InvalidTag { tag: 2 })
        );
    }

    #[test]
    fn text_slices_the_received_buffer_without_copying() {
        let buf = Bytes::from_static(b"\x05hello");
        let text = Text::<8>::decode(&mut Reader::new(&buf)).unwrap();
        assert_eq!(text.as_str(), "hello");
        assert_eq!(text.as_str().as_ptr(), buf[1..].as_ptr());
    }

    #[test]
    fn constructors_enforce_limits() {
        assert!(Text::<3>::new("abcd").is_err());
        assert!(Text::<3>::new("abc").is_ok());
        assert!(List::<u8, 2>::new(vec![1, 2, 3]).is_err());
        let mut list = List::<u8, 1>::default();
        assert!(list.push(1).is_ok());
        assert!(list.push(2).is_err());
    }
}
