//! A reliable stream cut into arbitrary chunks: the first input byte picks
//! the chunk size, the rest is the stream. The decoder must never panic, and
//! every body that decodes must round-trip.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ludus::proto::wire::{decode_body, FrameDecoder};

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let chunk_len = usize::from(first) + 1;
    let mut decoder = FrameDecoder::new();
    for chunk in stream.chunks(chunk_len) {
        decoder.extend(chunk);
        loop {
            let body: Bytes = match decoder.next_body() {
                Ok(Some(body)) => body,
                Ok(None) => break,
                // After an error the stream is unusable; so is this input.
                Err(_) => return,
            };
            if let Ok(message) = decode_body(&body) {
                common::check_round_trip(&body, &message);
            }
        }
    }
});
