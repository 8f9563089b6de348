//! Property tests of the wire codec: every message round-trips, the
//! encoding is canonical (any accepted frame re-encodes to the same bytes),
//! and no input of any shape makes a decoder panic.

use bytes::{Bytes, BytesMut};
use ludus::proto::wire::{
    datagram_bodies, decode_body, decode_frame, encode_message_frame, FrameDecoder, Message, Rng,
    CATALOG,
};
use proptest::prelude::*;

fn encode(message: &Message) -> Bytes {
    let mut out = BytesMut::new();
    encode_message_frame(message, &mut out);
    out.freeze()
}

fn random_message(index: usize, seed: u64) -> Message {
    let code = CATALOG[index % CATALOG.len()].code;
    Message::random(code, &mut Rng::new(seed)).expect("catalog code")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// decode(encode(m)) == m for every message type.
    #[test]
    fn every_message_round_trips(index in 0..CATALOG.len(), seed in any::<u64>()) {
        let message = random_message(index, seed);
        let frame = encode(&message);
        prop_assert_eq!(decode_frame(&frame), Ok(message));
    }

    /// The stream decoder reassembles frames however the stream is split.
    #[test]
    fn stream_split_anywhere_yields_the_same_messages(
        picks in prop::collection::vec((0..CATALOG.len(), any::<u64>()), 1..12),
        chunk in 1usize..300,
    ) {
        let messages: Vec<Message> = picks.iter().map(|(index, seed)| random_message(*index, *seed)).collect();
        let mut stream = BytesMut::new();
        messages.iter().for_each(|message| encode_message_frame(message, &mut stream));
        let mut decoder = FrameDecoder::new();
        let mut received = Vec::new();
        for piece in stream.chunks(chunk) {
            decoder.extend(piece);
            while let Some(message) = decoder.next_message().unwrap() {
                received.push(message);
            }
        }
        prop_assert_eq!(received, messages);
    }

    /// Arbitrary bytes never panic any decoder, and whatever is accepted is
    /// the canonical encoding of what it decodes to.
    #[test]
    fn arbitrary_bytes_never_panic_and_accepted_frames_are_canonical(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let bytes = Bytes::from(bytes);
        if let Ok(message) = decode_frame(&bytes) {
            prop_assert_eq!(encode(&message), bytes.clone());
        }
        let _ = decode_body(&bytes);
        if let Ok(bodies) = datagram_bodies(&bytes) {
            bodies.for_each(|body| { let _ = body.map(|body| decode_body(&body)); });
        }
        let mut decoder = FrameDecoder::new();
        decoder.extend(&bytes);
        while let Ok(Some(_)) = decoder.next_body() {}
    }

    /// Valid frames with one byte changed, cut short or extended never
    /// panic, and any that still decode are canonical.
    #[test]
    fn mutated_frames_never_panic(
        index in 0..CATALOG.len(),
        seed in any::<u64>(),
        position in any::<prop::sample::Index>(),
        value in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let frame = encode(&random_message(index, seed)).to_vec();
        let mut changed = frame.clone();
        changed[position.index(frame.len())] = value;
        let truncated = frame[..cut.index(frame.len())].to_vec();
        let mut extended = frame.clone();
        extended.push(value);
        for candidate in [changed, truncated, extended] {
            let candidate = Bytes::from(candidate);
            if let Ok(message) = decode_frame(&candidate) {
                prop_assert_eq!(encode(&message), candidate);
            }
        }
    }
}
