//! Framing: how messages travel on reliable streams and in datagrams.
//!
//! A frame is `length: varint` followed by `length` bytes of body; a body is
//! `type: varint` followed by the message's fields. On reliable streams (the
//! WebTransport control stream, WebSocket binary messages) frames follow one
//! another; a datagram holds one or more whole frames and nothing else.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::codec::{parse_varint, put_varint, varint_len, write_varint, Reader, VARINT_MAX_LEN};
use super::error::DecodeError;
use super::macros::WireMessage;
use super::messages::Message;

/// Largest frame body (type code and fields) in bytes.
pub const MAX_FRAME_LEN: usize = 65_536;
/// Largest datagram payload in bytes (the frames it carries, prefixes included).
pub const MAX_DATAGRAM_LEN: usize = 1_200;
/// Largest type code: two varint bytes.
pub const MAX_TYPE_CODE: u16 = 0x3fff;
/// Type codes up to here are core: a receiver that does not know one closes
/// the connection (`unknown_message`). Codes above are optional extensions,
/// skipped when unknown.
pub const MAX_CORE_TYPE_CODE: u16 = 0xff;
/// Largest frame length prefix: three varint bytes for 65 536.
pub const MAX_FRAME_PREFIX_LEN: usize = varint_len(MAX_FRAME_LEN as u64);

/// Appends a message body: type code, then fields.
#[inline]
pub fn encode_body<M: WireMessage>(message: &M, out: &mut BytesMut) {
    put_varint(out, u64::from(M::CODE));
    message.encode(out);
}

/// Appends one frame carrying `message`.
///
/// The body is written after a one-byte length placeholder; bodies of 128
/// bytes or more (rare on the hot path) are moved right to make room for a
/// longer prefix. That avoids measuring every message before writing it.
#[inline]
pub fn encode_frame<M: WireMessage>(message: &M, out: &mut BytesMut) {
    let start = out.len();
    out.put_u8(0);
    encode_body(message, out);
    finish_frame(out, start);
}

/// Appends one frame carrying any message of the catalog.
pub fn encode_message_frame(message: &Message, out: &mut BytesMut) {
    let start = out.len();
    out.put_u8(0);
    message.encode_body(out);
    finish_frame(out, start);
}

fn finish_frame(out: &mut BytesMut, start: usize) {
    let body_len = out.len() - start - 1;
    assert!((1..=MAX_FRAME_LEN).contains(&body_len), "frame body of {body_len} bytes");
    let mut prefix = [0u8; VARINT_MAX_LEN];
    let prefix_len = write_varint(&mut prefix, body_len as u64);
    if prefix_len > 1 {
        let body_end = out.len();
        out.resize(body_end + prefix_len - 1, 0);
        out.copy_within(start + 1..body_end, start + prefix_len);
    }
    out[start..start + prefix_len].copy_from_slice(&prefix[..prefix_len]);
}

/// Decodes a frame body into a message.
pub fn decode_body(body: &Bytes) -> Result<Message, DecodeError> {
    Message::decode_body(body)
}

/// The type code at the front of a frame body, without decoding the rest:
/// hot paths dispatch on it and decode their few message types with
/// [`decode_body_as`], which skips the `Message` enum (a 472-byte value
/// whose moves dominate a generic decode; see docs/BENCHMARKS.md).
#[inline]
pub fn peek_type_code(body: &[u8]) -> Result<u64, DecodeError> {
    parse_varint(body).map(|(code, _)| code)
}

/// Decodes a body that holds an `M`; `Ok(None)` when it holds another type
/// (the caller falls back to [`decode_body`]). Same checks as the generic
/// decode, trailing bytes included.
#[inline]
pub fn decode_body_as<M: WireMessage>(body: &Bytes) -> Result<Option<M>, DecodeError> {
    let mut reader = Reader::new(body);
    if reader.varint()? != u64::from(M::CODE) {
        return Ok(None);
    }
    let message = M::decode(&mut reader)?;
    match reader.remaining() {
        0 => Ok(Some(message)),
        count => Err(DecodeError::TrailingBytes { count }),
    }
}

/// Decodes exactly one frame (prefix and body) that fills `frame`.
pub fn decode_frame(frame: &Bytes) -> Result<Message, DecodeError> {
    let mut reader = Reader::new(frame);
    let len = frame_length(&mut reader)?;
    let body = reader.take_bytes(len)?;
    match reader.remaining() {
        0 => decode_body(&body),
        count => Err(DecodeError::TrailingBytes { count }),
    }
}

/// Reads and checks a frame length prefix.
fn frame_length(reader: &mut Reader<'_>) -> Result<usize, DecodeError> {
    check_frame_length(reader.varint()?)
}

fn check_frame_length(len: u64) -> Result<usize, DecodeError> {
    if len == 0 {
        return Err(DecodeError::EmptyFrame);
    }
    if len > MAX_FRAME_LEN as u64 {
        return Err(DecodeError::FrameTooLarge { len, max: MAX_FRAME_LEN });
    }
    Ok(len as usize)
}

/// Splits a reliable byte stream into frame bodies.
///
/// Bytes are appended as they arrive; complete bodies come out as `Bytes`
/// that share the buffer. A length prefix over the limit is an error as soon
/// as the prefix is read, so a peer cannot make us buffer more than one
/// frame's worth of data. After an error the stream is unusable.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buffer: BytesMut,
}

impl FrameDecoder {
    pub fn new() -> FrameDecoder {
        FrameDecoder { buffer: BytesMut::new() }
    }

    /// Appends received bytes.
    pub fn extend(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The next complete frame body, `None` if more bytes are needed.
    pub fn next_body(&mut self) -> Result<Option<Bytes>, DecodeError> {
        let (prefix_len, body_len) = match self.peek_prefix()? {
            Some(lengths) => lengths,
            None => return Ok(None),
        };
        if self.buffer.len() < prefix_len + body_len {
            return Ok(None);
        }
        self.buffer.advance(prefix_len);
        Ok(Some(self.buffer.split_to(body_len).freeze()))
    }

    /// The next complete message, `None` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        match self.next_body()? {
            Some(body) => decode_body(&body).map(Some),
            None => Ok(None),
        }
    }

    /// The length prefix at the front of the buffer, if complete.
    fn peek_prefix(&self) -> Result<Option<(usize, usize)>, DecodeError> {
        let head = &self.buffer[..self.buffer.len().min(MAX_FRAME_PREFIX_LEN)];
        let (len, prefix_len) = match parse_varint(head) {
            Ok(parsed) => parsed,
            Err(DecodeError::Truncated { .. }) if head.len() < MAX_FRAME_PREFIX_LEN => {
                return Ok(None)
            }
            // Three bytes that do not end a varint already exceed the limit.
            Err(DecodeError::Truncated { .. }) => {
                return Err(DecodeError::FrameTooLarge { len: u64::MAX, max: MAX_FRAME_LEN })
            }
            Err(error) => return Err(error),
        };
        check_frame_length(len)?;
        Ok(Some((prefix_len, len as usize)))
    }
}

/// The frame bodies of one datagram, in order.
pub fn datagram_bodies(datagram: &Bytes) -> Result<DatagramBodies<'_>, DecodeError> {
    if datagram.len() > MAX_DATAGRAM_LEN {
        return Err(DecodeError::DatagramTooLarge { len: datagram.len(), max: MAX_DATAGRAM_LEN });
    }
    // A datagram carries at least one frame.
    if datagram.is_empty() {
        return Err(DecodeError::EmptyFrame);
    }
    Ok(DatagramBodies { reader: Reader::new(datagram), failed: false })
}

/// Iterator over the frame bodies of a datagram; stops after the first error.
pub struct DatagramBodies<'a> {
    reader: Reader<'a>,
    failed: bool,
}

impl Iterator for DatagramBodies<'_> {
    type Item = Result<Bytes, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.reader.remaining() == 0 {
            return None;
        }
        let body = frame_length(&mut self.reader).and_then(|len| self.reader.take_bytes(len));
        self.failed = body.is_err();
        Some(body)
    }
}

/// Packs frames into datagrams of at most `max_len` bytes.
///
/// The transport may allow less than [`MAX_DATAGRAM_LEN`] (path MTU, QUIC
/// overhead); the sender passes what it allows.
#[derive(Debug)]
pub struct DatagramPacker {
    buffer: BytesMut,
    max_len: usize,
}

impl DatagramPacker {
    pub fn new(max_len: usize) -> DatagramPacker {
        assert!(max_len <= MAX_DATAGRAM_LEN);
        DatagramPacker { buffer: BytesMut::with_capacity(max_len), max_len }
    }

    /// Adds a message to the current datagram. Returns the finished previous
    /// datagram if this one did not fit beside it, and `Err` with the message
    /// back (as its frame length) if it cannot fit in any datagram.
    pub fn push<M: WireMessage>(&mut self, message: &M) -> Result<Option<Bytes>, usize> {
        let start = self.buffer.len();
        encode_frame(message, &mut self.buffer);
        let frame_len = self.buffer.len() - start;
        if frame_len > self.max_len {
            self.buffer.truncate(start);
            return Err(frame_len);
        }
        if self.buffer.len() <= self.max_len {
            return Ok(None);
        }
        let frame = self.buffer.split_off(start);
        let finished = std::mem::replace(&mut self.buffer, frame).freeze();
        Ok(Some(finished))
    }

    /// The datagram being filled, if it holds anything.
    pub fn finish(&mut self) -> Option<Bytes> {
        (!self.buffer.is_empty()).then(|| self.buffer.split().freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::wire::messages::{ChatSend, Ping};
    use crate::proto::wire::Text;

    fn ping(id: u32) -> Ping {
        Ping { id, sent_us: 42 }
    }

    #[test]
    fn typed_decode_agrees_with_the_generic_one_and_declines_other_types() {
        use crate::proto::wire::Input;
        let input = Input { seq: 5, client_frame: 9, inputs: [1, 2].into_iter().collect() };
        let mut out = BytesMut::new();
        encode_body(&input, &mut out);
        let body = out.freeze();
        assert_eq!(peek_type_code(&body), Ok(u64::from(Input::CODE)));
        assert_eq!(decode_body_as::<Input>(&body), Ok(Some(input.clone())));
        assert_eq!(decode_body(&body), Ok(Message::Input(input)));
        assert_eq!(decode_body_as::<Ping>(&body), Ok(None));
        let mut trailing = body.to_vec();
        trailing.push(0);
        assert_eq!(
            decode_body_as::<Input>(&Bytes::from(trailing)),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
    }

    #[test]
    fn frames_with_long_bodies_get_a_longer_prefix() {
        let message =
            ChatSend { text: Text::new(&"x".repeat(300)).unwrap(), ..ChatSend::default() };
        let mut out = BytesMut::new();
        encode_frame(&message, &mut out);
        let frame = out.freeze();
        // type 1 + channel 1 + to_player 8 + client_message_id 4 + text 2 + 300 = 316.
        assert_eq!(&frame[..2], &[0xbc, 0x02]);
        assert_eq!(frame.len(), 2 + 316);
        assert_eq!(decode_frame(&frame).unwrap(), Message::ChatSend(message));
    }

    #[test]
    fn stream_decoder_returns_frames_split_at_every_byte() {
        let mut out = BytesMut::new();
        for id in 0..3 {
            encode_frame(&ping(id), &mut out);
        }
        let stream = out.freeze();
        let mut decoder = FrameDecoder::new();
        let mut received = Vec::new();
        for byte in stream.iter() {
            decoder.extend(&[*byte]);
            while let Some(message) = decoder.next_message().unwrap() {
                received.push(message);
            }
        }
        let expected: Vec<Message> = (0..3).map(|id| Message::Ping(ping(id))).collect();
        assert_eq!(received, expected);
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn stream_decoder_rejects_oversized_frames_from_the_prefix_alone() {
        let mut decoder = FrameDecoder::new();
        decoder.extend(&[0x81, 0x80, 0x04]); // 65 537
        assert_eq!(
            decoder.next_body(),
            Err(DecodeError::FrameTooLarge { len: 65_537, max: MAX_FRAME_LEN })
        );
        let mut decoder = FrameDecoder::new();
        decoder.extend(&[0xff, 0xff, 0xff]);
        assert!(matches!(decoder.next_body(), Err(DecodeError::FrameTooLarge { .. })));
        let mut decoder = FrameDecoder::new();
        decoder.extend(&[0x00]);
        assert_eq!(decoder.next_body(), Err(DecodeError::EmptyFrame));
    }

    #[test]
    fn datagram_packer_splits_at_the_limit_and_every_frame_survives() {
        let mut packer = DatagramPacker::new(64);
        let mut datagrams = Vec::new();
        for id in 0..20 {
            if let Some(datagram) = packer.push(&ping(id)).unwrap() {
                datagrams.push(datagram);
            }
        }
        datagrams.extend(packer.finish());
        let mut ids = Vec::new();
        for datagram in &datagrams {
            assert!(datagram.len() <= 64);
            for body in datagram_bodies(datagram).unwrap() {
                match decode_body(&body.unwrap()).unwrap() {
                    Message::Ping(ping) => ids.push(ping.id),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert_eq!(ids, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn datagram_packer_refuses_a_message_larger_than_a_datagram() {
        let mut packer = DatagramPacker::new(32);
        let message = ChatSend { text: Text::new(&"y".repeat(64)).unwrap(), ..ChatSend::default() };
        assert!(packer.push(&message).is_err());
        assert_eq!(packer.finish(), None);
    }

    #[test]
    fn oversized_datagrams_and_trailing_bytes_are_rejected() {
        assert!(matches!(datagram_bodies(&Bytes::new()), Err(DecodeError::EmptyFrame)));
        let big = Bytes::from(vec![1u8; MAX_DATAGRAM_LEN + 1]);
        assert!(matches!(datagram_bodies(&big), Err(DecodeError::DatagramTooLarge { .. })));
        let mut out = BytesMut::new();
        encode_frame(&ping(1), &mut out);
        out.put_u8(0);
        assert_eq!(decode_frame(&out.freeze()), Err(DecodeError::TrailingBytes { count: 1 }));
    }
}
