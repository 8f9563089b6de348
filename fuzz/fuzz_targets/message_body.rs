//! One frame body (type code and fields), decoded and round-tripped.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ludus::proto::wire::Message;

mod common;

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    if let Ok(message) = Message::decode_body(&body) {
        common::check_round_trip(&body, &message);
    }
});
