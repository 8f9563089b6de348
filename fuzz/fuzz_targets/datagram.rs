//! One datagram: split into frame bodies, each decoded and round-tripped.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ludus::proto::wire::{datagram_bodies, decode_body};

mod common;

fuzz_target!(|data: &[u8]| {
    let datagram = Bytes::copy_from_slice(data);
    let Ok(bodies) = datagram_bodies(&datagram) else {
        return;
    };
    for body in bodies {
        let Ok(body) = body else {
            return;
        };
        if let Ok(message) = decode_body(&body) {
            common::check_round_trip(&body, &message);
        }
    }
});
