//! Zero heap allocations per tick and per input of the arena, and per event
//! of the key-moment detector, in steady state, measured with a counting
//! global allocator (the pattern of tests/alloc.rs; an integration test
//! binary has one global allocator, hence this file of its own).
//!
//! The steady state is the one a room runs: one events `Vec` per room,
//! drained (here cleared) after every tick, so after warm-up it has the
//! capacity it needs and pushing into it does not allocate.
//!
//! The counter is per thread (the test harness runs tests on several
//! threads), so each test counts only its own allocations.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocations_in;

use ludus::sim::arena::{Arena, ArenaConfig, INPUT_DOWN, INPUT_LEFT, INPUT_RIGHT, INPUT_UP};
use ludus::sim::event::{
    EliminationCause, Lock, Piece, Placement, PlayerResult, Rotation, Spin, PACKED_BOARD_BYTES,
};
use ludus::sim::moments::{detect_moments, Moment, MomentState};
use ludus::sim::{Event, EventKind, Game, InputOutcome, Slot};

const WARM_UP: u32 = 200;
const ITERATIONS: u32 = 3_000;

/// Counted steps of `step` allocate nothing.
fn assert_steady_state_allocates_nothing(what: &str, step: impl FnMut(u32)) {
    counting_alloc::assert_steady_state_allocates_nothing(what, WARM_UP, ITERATIONS, step);
}

const DIRECTIONS: [u16; 9] = [
    0,
    INPUT_LEFT,
    INPUT_RIGHT,
    INPUT_DOWN,
    INPUT_UP,
    INPUT_LEFT | INPUT_UP,
    INPUT_RIGHT | INPUT_DOWN,
    INPUT_LEFT | INPUT_RIGHT, // rejected
    1 << 9,                   // rejected
];

#[test]
fn arena_ticks_and_inputs_allocate_nothing() {
    let mut events = Vec::new();
    let mut arena = Arena::new(&ArenaConfig::default(), 7, 8, &mut events);
    let mut seq = 0;
    assert_steady_state_allocates_nothing("8-player arena tick with inputs", |iteration| {
        events.clear();
        for slot in 0..8u8 {
            seq += 1;
            let bits = DIRECTIONS[(iteration as usize + usize::from(slot)) % DIRECTIONS.len()];
            let _ = arena.input(slot, seq, bits, &mut events);
        }
        // Over budget too.
        for _ in 0..6 {
            seq += 1;
            let _ = arena.input(3, seq, INPUT_UP, &mut events);
        }
        arena.tick(&mut events);
        std::hint::black_box(arena.state_hash());
        std::hint::black_box(arena.avatars());
    });
}

#[test]
fn arena_matches_end_forfeit_and_restart_without_allocating() {
    let mut events = Vec::new();
    let config = ArenaConfig { duration_ticks: 45 };
    let mut arena = Arena::new(&config, 1, 8, &mut events);
    assert_steady_state_allocates_nothing("arena match lifecycle", |iteration| {
        events.clear();
        if arena.is_finished() {
            arena = Arena::new(&config, u64::from(iteration), 8, &mut events);
        }
        let slot = (iteration % 8) as Slot;
        let outcome = arena.input(slot, iteration + 1, INPUT_RIGHT, &mut events);
        assert!(outcome == InputOutcome::Applied || !arena.is_present(slot));
        if iteration.is_multiple_of(40) {
            arena.forfeit(slot, &mut events);
        }
        arena.tick(&mut events);
    });
}

fn lock(lines: u8, spin: Spin, b2b_chain: u16, sent: u16, stack_height: u8) -> Lock {
    Lock {
        placement: Placement { piece: Piece::T, rotation: Rotation::Reverse, x: 4, y: 1 },
        spin,
        lines,
        ren: 0,
        b2b_bonus: b2b_chain >= 2,
        b2b_chain,
        perfect_clear: lines == 4 && stack_height == 0,
        attack: sent,
        cancelled: 0,
        sent,
        target: Some(1),
        stack_height,
        pending: u16::from(stack_height) / 3,
        score: 1_000,
        board: [0; PACKED_BOARD_BYTES],
    }
}

#[test]
fn moment_detection_allocates_nothing_per_event() {
    let mut stream =
        vec![Event { tick: 0, player: None, kind: EventKind::GameStart { players: 2, seed: 3 } }];
    let heights = [12, 18, 19, 9, 4, 0, 17, 20, 6];
    for (n, height) in heights.into_iter().enumerate() {
        let n = n as u16;
        let kind = EventKind::PieceLock(lock((n % 5) as u8, Spin::Full, n, n % 3, height));
        stream.push(Event { tick: u32::from(n) * 20, player: Some((n % 2) as u8), kind });
    }
    let elimination =
        EventKind::Elimination { cause: EliminationCause::TopOut, killer: Some(0), placement: 2 };
    stream.push(Event { tick: 400, player: Some(1), kind: elimination });
    let results = [0, 1]
        .map(|slot| PlayerResult { slot, placement: slot + 1, ..PlayerResult::default() })
        .into_iter()
        .collect();
    stream.push(Event { tick: 400, player: None, kind: EventKind::GameEnd { results } });

    let mut state = MomentState::default();
    let mut moments: Vec<Moment> = Vec::with_capacity(64);
    assert_steady_state_allocates_nothing("moment detection", |iteration| {
        if (iteration as usize).is_multiple_of(stream.len()) {
            moments.clear();
        }
        let event = &stream[iteration as usize % stream.len()];
        detect_moments(&mut state, event, &mut |moment| moments.push(moment));
    });
    assert!(!moments.is_empty(), "the stream has moments to find");
}

#[test]
fn the_counter_sees_an_allocation() {
    let (allocations, vec) = allocations_in(|| std::hint::black_box(Vec::<u64>::with_capacity(4)));
    assert_eq!((allocations, vec.capacity()), (1, 4));
}
