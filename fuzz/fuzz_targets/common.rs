//! The check every target applies to a message that decoded: encoding it
//! again gives the very bytes it came from (the wire form is canonical), and
//! decoding those gives an equal message.

use bytes::{Bytes, BytesMut};
use ludus::proto::wire::Message;

/// `message` was decoded from `body`; panics if the codec disagrees with itself.
pub fn check_round_trip(body: &Bytes, message: &Message) {
    let mut out = BytesMut::with_capacity(body.len());
    message.encode_body(&mut out);
    let encoded = out.freeze();
    let again = Message::decode_body(&encoded).unwrap_or_else(|error| {
        panic!("re-encoded {} does not decode: {error}\nbody {body:02x?}", message.name())
    });
    assert_eq!(&again, message, "round trip changed the message");
    assert_eq!(
        encoded,
        *body,
        "{} decoded from a body that is not its canonical encoding",
        message.name()
    );
}
