//! Arena simulation benchmarks, the benchmark workload of the server: one
//! 8-player tick, one input, and a sweep over 10 000 rooms of 8 players (a
//! shard's worth of rooms and more), each room applying one input per
//! player and ticking, as a room does 30 times a second.
//!
//! Events go into one reused `Vec` per room, cleared the way the room drains
//! it, so nothing here allocates in steady state (tests/sim_alloc_arena.rs
//! proves it). `cargo bench --bench sim_arena`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ludus::sim::arena::{
    Arena, ArenaConfig, INPUT_DOWN, INPUT_LEFT, INPUT_RIGHT, INPUT_UP, MAX_INPUTS_PER_TICK,
};
use ludus::sim::{Event, Game, InputOutcome, MAX_PLAYERS};

const PLAYERS: u8 = MAX_PLAYERS as u8;
const ROOMS: usize = 10_000;

/// Directions players cycle through: straight, diagonal and standing, so
/// both step tables and the walls are exercised.
const DIRECTIONS: [u16; 8] = [
    INPUT_RIGHT | INPUT_UP,
    INPUT_LEFT,
    INPUT_DOWN,
    INPUT_UP | INPUT_LEFT,
    INPUT_RIGHT,
    0,
    INPUT_DOWN | INPUT_RIGHT,
    INPUT_UP,
];

/// A room 40 s into an endless match with every player moving.
fn busy_arena(seed: u64, events: &mut Vec<Event>) -> Arena {
    let mut arena = Arena::new(&ArenaConfig::default(), seed, PLAYERS, events);
    for tick in 0..1_200u32 {
        for slot in 0..PLAYERS {
            let bits = DIRECTIONS[(tick as usize / 45 + usize::from(slot)) % DIRECTIONS.len()];
            arena.input(slot, tick + 1, bits, events);
        }
        arena.tick(events);
        events.clear();
    }
    arena
}

fn tick_8_players(c: &mut Criterion) {
    let mut events = Vec::with_capacity(64);
    let mut arena = busy_arena(1, &mut events);
    c.bench_function("arena/tick_8_players", |b| {
        b.iter(|| {
            arena.tick(&mut events);
            events.clear();
            black_box(arena.avatars());
        })
    });
}

/// One applied input. The budget allows `MAX_INPUTS_PER_TICK` per player
/// per tick, so the inputs are timed in batches that fill every player's
/// budget once, and the tick that renews the budgets runs untimed.
fn one_input(c: &mut Criterion) {
    let mut events = Vec::with_capacity(256);
    let mut arena = busy_arena(2, &mut events);
    let mut seq = 10_000;
    let batch = u64::from(PLAYERS) * u64::from(MAX_INPUTS_PER_TICK);
    c.bench_function("arena/input", |b| {
        b.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations.div_ceil(batch) {
                seq += 1;
                let start = Instant::now();
                for input in 0..batch as u32 {
                    let slot = (input % u32::from(PLAYERS)) as u8;
                    let bits = DIRECTIONS[(seq + input) as usize % DIRECTIONS.len()];
                    let outcome = arena.input(slot, seq * 8 + input / 8, bits, &mut events);
                    debug_assert_eq!(outcome, InputOutcome::Applied);
                    black_box(outcome);
                }
                elapsed += start.elapsed();
                arena.tick(&mut events);
                events.clear();
            }
            // Scale to the iterations asked for (batches round up).
            elapsed.mul_f64(iterations as f64 / (iterations.div_ceil(batch) * batch) as f64)
        })
    });
}

/// 10 000 rooms: per room one input per player, a tick, the events drained.
fn sweep_10k_rooms(c: &mut Criterion) {
    let mut events = Vec::with_capacity(64);
    let mut rooms: Vec<Arena> =
        (0..ROOMS as u64).map(|seed| busy_arena(seed, &mut events)).collect();
    let mut seq = 10_000u32;
    let mut group = c.benchmark_group("arena/sweep_10k_rooms_8_players");
    group.throughput(Throughput::Elements(ROOMS as u64));
    group.sample_size(20);
    group.bench_function("inputs_and_tick", |b| {
        b.iter(|| {
            seq += 1;
            for (index, arena) in rooms.iter_mut().enumerate() {
                for slot in 0..PLAYERS {
                    let bits = DIRECTIONS
                        [(index + usize::from(slot) + seq as usize / 45) % DIRECTIONS.len()];
                    arena.input(slot, seq, bits, &mut events);
                }
                arena.tick(&mut events);
                events.clear();
            }
        })
    });
    group.bench_function("tick_only", |b| {
        b.iter(|| {
            for arena in rooms.iter_mut() {
                arena.tick(&mut events);
                events.clear();
            }
        })
    });
    group.finish();
}

criterion_group!(benches, tick_8_players, one_input, sweep_10k_rooms);
criterion_main!(benches);
