//! Zero heap allocations per message in steady state, for the hot messages
//! (Input in; ArenaState and ChatMessage out), measured with a counting
//! global allocator.
//!
//! The steady state is the one a shard runs: the sender encodes every frame
//! into one reused `BytesMut`; the receiver reads each datagram into its own
//! reused receive buffer, splits it off as one `Bytes` per datagram, and
//! decodes from it (text fields are slices of that `Bytes`). On a stream the
//! receiver's `FrameDecoder` is reused the same way. Everything a message
//! pointed into is dropped before the next one arrives, so `bytes` reclaims
//! each buffer in place instead of allocating a new one.
//!
//! The counter is per thread (the test harness runs tests on several
//! threads), so each test counts only its own allocations.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocations_in;

use arrayvec::ArrayVec;
use bytes::{Bytes, BytesMut};
use ludus::proto::wire::{
    datagram_bodies, decode_body, encode_frame, ArenaPlayer, ArenaState, ChatChannel, ChatMessage,
    ChatSend, FrameDecoder, Input, Message, Text, WireMessage, MAX_DATAGRAM_LEN, MAX_NAME_LEN,
};

const WARM_UP: u32 = 200;
const ITERATIONS: u32 = 1_000;

/// Counted steps of `step` (one message each) allocate nothing.
fn assert_steady_state_allocates_nothing(what: &str, step: impl FnMut(u32)) {
    counting_alloc::assert_steady_state_allocates_nothing(what, WARM_UP, ITERATIONS, step);
}

/// One direction of a connection carrying datagrams: the sender's encode
/// buffer and the receiver's receive buffer, both reused.
struct DatagramLink {
    tx: BytesMut,
    rx: BytesMut,
}

impl DatagramLink {
    fn new() -> DatagramLink {
        DatagramLink {
            tx: BytesMut::with_capacity(MAX_DATAGRAM_LEN),
            rx: BytesMut::with_capacity(4 * MAX_DATAGRAM_LEN),
        }
    }

    /// Encodes `message` into the sender's buffer, then delivers it: the
    /// socket copies the datagram into the receiver's buffer, which hands it
    /// out as one `Bytes`.
    fn send<M: WireMessage>(&mut self, message: &M) -> Bytes {
        self.tx.clear();
        encode_frame(message, &mut self.tx);
        self.rx.extend_from_slice(&self.tx); // recv_from into spare capacity
        self.rx.split().freeze()
    }
}

/// Decodes the one message of a datagram.
fn receive(datagram: &Bytes) -> Message {
    let mut bodies = datagram_bodies(datagram).unwrap();
    let message = decode_body(&bodies.next().unwrap().unwrap()).unwrap();
    assert!(bodies.next().is_none());
    message
}

/// One direction of a reliable stream: the sender's encode buffer and the
/// receiver's frame decoder, both reused.
struct StreamLink {
    tx: BytesMut,
    decoder: FrameDecoder,
}

impl StreamLink {
    fn new() -> StreamLink {
        StreamLink { tx: BytesMut::with_capacity(4096), decoder: FrameDecoder::new() }
    }

    fn send<M: WireMessage>(&mut self, message: &M) -> Message {
        self.tx.clear();
        encode_frame(message, &mut self.tx);
        self.decoder.extend(&self.tx);
        let message = self.decoder.next_message().unwrap().unwrap();
        assert_eq!(self.decoder.buffered(), 0);
        message
    }
}

fn next_input(input: &mut Input, iteration: u32) {
    input.seq = 1 + iteration;
    input.client_frame = 1_000 + iteration / 2;
    input.inputs.clear();
    for age in 0..3 {
        input.inputs.push(((iteration + age) % 16) as u16);
    }
}

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

fn next_arena_state(state: &mut ArenaState, iteration: u32) {
    state.tick = 1_200 + iteration;
    for player in &mut state.players {
        player.x = (player.x + 333) % 1_000_001;
        player.y = (player.y + 1_000_000 - 250) % 1_000_001;
        player.last_input_seq += 1;
    }
}

/// The server's ChatMessage for a player's ChatSend: the text is the
/// received one, shared (not copied) with the frame it arrived in.
fn chat_message(send: &ChatSend, from_name: &Text<MAX_NAME_LEN>) -> ChatMessage {
    ChatMessage {
        channel: send.channel,
        message_id: 9_007_199_254_741,
        from_player: 48_213_775,
        from_name: from_name.clone(),
        to_player: send.to_player,
        client_message_id: send.client_message_id,
        sent_at_ms: 1_763_830_512_345,
        text: send.text.clone(),
    }
}

fn chat_send() -> ChatSend {
    let text = "gg wp! that T-spin double was so clean!!";
    assert_eq!(text.len(), 40);
    ChatSend {
        channel: ChatChannel::Room,
        to_player: 0,
        client_message_id: 17,
        text: Text::new(text).unwrap(),
    }
}

#[test]
fn the_counter_sees_allocations() {
    let (allocations, vec) = allocations_in(|| std::hint::black_box(Vec::<u8>::with_capacity(16)));
    drop(vec);
    assert_eq!(allocations, 1);
    let (allocations, ()) = allocations_in(|| ());
    assert_eq!(allocations, 0);
}

#[test]
fn input_datagrams_allocate_nothing() {
    let mut link = DatagramLink::new();
    let mut input = Input::default();
    assert_steady_state_allocates_nothing("Input over datagrams", |iteration| {
        next_input(&mut input, iteration);
        let datagram = link.send(&input);
        match receive(&datagram) {
            Message::Input(received) => assert_eq!(received, input),
            other => panic!("unexpected {}", other.name()),
        }
    });
}

#[test]
fn arena_state_datagrams_allocate_nothing() {
    let mut link = DatagramLink::new();
    let mut state = arena_state();
    assert_steady_state_allocates_nothing("ArenaState(8) over datagrams", |iteration| {
        next_arena_state(&mut state, iteration);
        let datagram = link.send(&state);
        match receive(&datagram) {
            Message::ArenaState(received) => assert_eq!(received, state),
            other => panic!("unexpected {}", other.name()),
        }
    });
}

#[test]
fn chat_over_a_stream_allocates_nothing() {
    // Client to server: ChatSend; server to client: the ChatMessage built
    // from it. Both on reliable streams, as chat travels.
    let mut uplink = StreamLink::new();
    let mut downlink = StreamLink::new();
    let send = chat_send();
    let from_name = Text::new("NebulaFox_42").unwrap();
    assert_steady_state_allocates_nothing("ChatSend/ChatMessage over a stream", |iteration| {
        let mut outgoing = send.clone();
        outgoing.client_message_id = iteration;
        let received = match uplink.send(&outgoing) {
            Message::ChatSend(received) => received,
            other => panic!("unexpected {}", other.name()),
        };
        assert_eq!(received, outgoing);
        let mut message = chat_message(&received, &from_name);
        message.message_id += u64::from(iteration);
        match downlink.send(&message) {
            Message::ChatMessage(delivered) => assert_eq!(delivered, message),
            other => panic!("unexpected {}", other.name()),
        }
    });
}

#[test]
fn chat_message_datagrams_allocate_nothing() {
    let mut link = DatagramLink::new();
    let from_name = Text::new("NebulaFox_42").unwrap();
    let mut message = chat_message(&chat_send(), &from_name);
    assert_steady_state_allocates_nothing("ChatMessage over datagrams", |iteration| {
        message.message_id = 9_007_199_254_741 + u64::from(iteration);
        message.sent_at_ms += 16;
        let datagram = link.send(&message);
        match receive(&datagram) {
            Message::ChatMessage(received) => assert_eq!(received, message),
            other => panic!("unexpected {}", other.name()),
        }
    });
}

#[test]
fn input_and_arena_state_over_a_stream_allocate_nothing() {
    // WebSocket clients (no datagrams) get the same messages on the stream.
    let mut uplink = StreamLink::new();
    let mut downlink = StreamLink::new();
    let mut input = Input::default();
    let mut state = arena_state();
    assert_steady_state_allocates_nothing("Input/ArenaState over a stream", |iteration| {
        next_input(&mut input, iteration);
        match uplink.send(&input) {
            Message::Input(received) => assert_eq!(received, input),
            other => panic!("unexpected {}", other.name()),
        }
        next_arena_state(&mut state, iteration);
        match downlink.send(&state) {
            Message::ArenaState(received) => assert_eq!(received, state),
            other => panic!("unexpected {}", other.name()),
        }
    });
}
