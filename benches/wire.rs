//! Wire codec benchmarks: the hot messages of a shard (Input in, ArenaState
//! and ChatMessage out) and the stream decoder, with realistic values.
//!
//! Buffers are reused the way a shard reuses them: one `BytesMut` per encode
//! site, cleared (or split and reclaimed) rather than reallocated, and one
//! `FrameDecoder` per connection. See docs/BENCHMARKS.md for how to run and
//! read these. `cargo bench --bench wire`.

use std::hint::black_box;
use std::time::Duration;

use arrayvec::ArrayVec;
use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ludus::proto::wire::{
    decode_body_as, decode_frame, encode_frame, ArenaPlayer, ArenaState, ChatChannel, ChatMessage,
    Field, FrameDecoder, Input, Message, Reader, Text, WireMessage,
};

/// An arena client 40 s into a match, holding right+up, with its last two
/// inputs repeated against datagram loss.
fn input(seq: u32) -> Input {
    let mut inputs = ArrayVec::new();
    inputs.push(0b1010); // right + up
    inputs.push(0b1010);
    inputs.push(0b0010); // right
    Input { seq, client_frame: 1_187 + seq / 2, inputs }
}

/// A full 8-player arena after tick 1 200 (40 s at 30 Hz), players spread
/// over the world with distinct acknowledged input sequence numbers.
fn arena_state() -> ArenaState {
    let mut players = ArrayVec::new();
    for slot in 0..8u8 {
        let n = u32::from(slot);
        players.push(ArenaPlayer {
            slot,
            x: 125_000 + n * 97_531,
            y: 940_000 - n * 113_207,
            last_input_seq: 2_390 + n * 7,
        });
    }
    ArenaState { tick: 1_200, players }
}

/// A room chat line: a 40-byte text from a player with a nickname.
fn chat_message() -> ChatMessage {
    let text = "gg wp! that T-spin double was so clean!!";
    assert_eq!(text.len(), 40);
    ChatMessage {
        channel: ChatChannel::Room,
        message_id: 9_007_199_254_741,
        from_player: 48_213_775,
        from_name: Text::new("NebulaFox_42").unwrap(),
        to_player: 0,
        client_message_id: 0,
        sent_at_ms: 1_763_830_512_345,
        text: Text::new(text).unwrap(),
    }
}

fn encoded<M: WireMessage>(message: &M) -> Bytes {
    let mut out = BytesMut::with_capacity(256);
    encode_frame(message, &mut out);
    out.freeze()
}

fn bench_input(c: &mut Criterion) {
    let mut group = c.benchmark_group("input");
    group.throughput(Throughput::Elements(1));
    let message = input(2_400);
    // The sender's buffer: each frame is split off and frozen (as it would be
    // handed to a receiver), dropped, and the buffer reclaimed on reserve.
    let mut buf = BytesMut::with_capacity(4096);
    group.bench_function("encode+decode", |b| {
        b.iter(|| {
            encode_frame(black_box(&message), &mut buf);
            let frame = buf.split().freeze();
            let decoded = decode_frame(black_box(&frame));
            black_box(decoded)
        })
    });
    // The same pair through the typed fast path a shard uses for its hot
    // messages: peek the type code, decode straight into an Input.
    group.bench_function("encode+decode_typed", |b| {
        b.iter(|| {
            encode_frame(black_box(&message), &mut buf);
            let mut frame = buf.split().freeze();
            let prefix = if frame[0] < 0x80 { 1 } else { 2 };
            let body = frame.split_off(prefix);
            let decoded = decode_body_as::<Input>(black_box(&body));
            black_box(decoded)
        })
    });
    // The pair's parts, to see where the time goes.
    let mut out = BytesMut::with_capacity(4096);
    group.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            encode_frame(black_box(&message), &mut out);
            black_box(out.len())
        })
    });
    let frame = encoded(&message);
    group.bench_function("decode", |b| b.iter(|| black_box(decode_frame(black_box(&frame)))));
    // The same body decoded straight into an Input, without the Message
    // enum: what a shard's typed fast path would pay.
    let body = frame.slice(1..);
    group.bench_function("decode_typed", |b| {
        b.iter(|| {
            let mut reader = Reader::new(black_box(&body));
            assert_eq!(reader.varint(), Ok(u64::from(Input::CODE)));
            let input = Input::decode(&mut reader);
            assert_eq!(reader.remaining(), 0);
            black_box(input)
        })
    });
    group.finish();
}

fn bench_arena_state(c: &mut Criterion) {
    let mut group = c.benchmark_group("arena_state_8");
    group.throughput(Throughput::Elements(1));
    let message = arena_state();
    let mut buf = BytesMut::with_capacity(4096);
    group.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            encode_frame(black_box(&message), &mut buf);
            black_box(buf.len())
        })
    });
    let frame = encoded(&message);
    assert_eq!(decode_frame(&frame).unwrap(), Message::ArenaState(message.clone()));
    group.bench_function("decode", |b| b.iter(|| black_box(decode_frame(black_box(&frame)))));
    group.finish();
}

fn bench_chat_message(c: &mut Criterion) {
    let mut group = c.benchmark_group("chat_message");
    group.throughput(Throughput::Elements(1));
    let message = chat_message();
    let mut buf = BytesMut::with_capacity(4096);
    group.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            encode_frame(black_box(&message), &mut buf);
            black_box(buf.len())
        })
    });
    let frame = encoded(&message);
    assert_eq!(decode_frame(&frame).unwrap(), Message::ChatMessage(message.clone()));
    group.bench_function("decode", |b| b.iter(|| black_box(decode_frame(black_box(&frame)))));
    group.finish();
}

fn bench_frame_decoder(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_decoder");
    group.throughput(Throughput::Elements(100));
    let mut stream = BytesMut::new();
    for seq in 2_400..2_500 {
        encode_frame(&input(seq), &mut stream);
    }
    let chunks: Vec<&[u8]> = stream.chunks(1500).collect();
    // One decoder per connection, drained after every pass.
    let mut decoder = FrameDecoder::new();
    group.bench_function("stream_100_inputs", |b| {
        b.iter(|| {
            let mut count = 0u32;
            for chunk in &chunks {
                decoder.extend(black_box(chunk));
                while let Some(message) = decoder.next_message().unwrap() {
                    black_box(&message);
                    count += 1;
                }
            }
            assert_eq!(count, 100);
            count
        })
    });
    assert_eq!(decoder.buffered(), 0);
    group.finish();
}

criterion_group! {
    name = wire;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    targets = bench_input, bench_arena_state, bench_chat_message, bench_frame_decoder
}
criterion_main!(wire);
