//! Tetris engine benchmarks: what one shard core pays per room.
//!
//! - `tick/idle_2p`: one tick of a two-player room whose pieces are falling
//!   and nothing locks (target ≤ 1 µs);
//! - `input/*`: applying one input: a shift, a rotation, a hold (target
//!   ≤ 300 ns), and a hard drop (lock + spawn);
//! - `lock/*`: a hard drop whose lock clears lines and sends garbage, and
//!   one whose 0-line lock inserts ready garbage (target ≤ 2 µs);
//! - `sweep/10k_rooms_2p`: 10 000 two-player rooms ticked once each (at
//!   60 Hz one core must finish a sweep in ≤ 16.7 ms).
//!
//! States come from the public API only: the lock benchmarks search
//! deterministic play of two greedy bots for a position where the next
//! input does the wanted thing, then replay that input on a fresh clone of
//! that position each iteration.
//! `cargo bench --bench sim_tetris -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ludus::proto::wire::Rng;
use ludus::sim::event::{Placement, Rotation};
use ludus::sim::tetris::{
    piece_cells, TetrisBattle, TetrisConfig, INPUT_HARD_DROP, INPUT_HOLD, INPUT_LEFT, INPUT_RIGHT,
    INPUT_ROTATE_CCW, INPUT_ROTATE_CW,
};
use ludus::sim::{Event, EventKind, Game, Slot};

/// Rooms in the sweep benchmark.
const SWEEP_ROOMS: u64 = 10_000;
/// The sweep restores its rooms after this many ticks (1 s of game time).
const RESTORE_EVERY_SWEEPS: u32 = 60;
/// Events one step can push; reserved up front so nothing reallocates.
const EVENTS_CAPACITY: usize = 16;

fn new_room(seed: u64) -> (TetrisBattle, Vec<Event>) {
    let mut events = Vec::with_capacity(EVENTS_CAPACITY);
    let game = TetrisBattle::new(&TetrisConfig::default(), seed, 2, &mut events);
    events.clear();
    (game, events)
}

/// A random move without a drop, or (one time in `drop_odds`) a hard drop.
fn random_bits(rng: &mut Rng, drop_odds: u64) -> u16 {
    let shift = [0, INPUT_LEFT, INPUT_RIGHT][rng.below(3) as usize];
    let rotation = [0, 0, INPUT_ROTATE_CW, INPUT_ROTATE_CCW][rng.below(4) as usize];
    let drop = if rng.below(drop_odds) == 0 { INPUT_HARD_DROP } else { 0 };
    shift | rotation | drop
}

/// Occupancy rows of a player's board, from the packed wire layout.
fn board_rows(game: &TetrisBattle, slot: Slot) -> [u16; 40] {
    let mut rows = [0u16; 40];
    let Some(player) = game.player(slot) else { return rows };
    for (index, byte) in player.packed_board().iter().enumerate() {
        let column = (index % 5) * 2;
        rows[index / 5] |= u16::from(byte & 0x0F != 0) << column;
        rows[index / 5] |= u16::from(byte >> 4 != 0) << (column + 1);
    }
    rows
}

fn fits(rows: &[u16; 40], placement: &Placement) -> bool {
    piece_cells(placement).iter().all(|&(x, y)| {
        (0..10).contains(&x) && (0..40).contains(&y) && rows[y as usize] & (1 << x) == 0
    })
}

/// The inputs of a greedy bot for slot `slot`: drop the piece where it
/// completes the most rows, else where it stays lowest with fewest holes.
fn bot_inputs(game: &TetrisBattle, slot: Slot, rng: &mut Rng) -> Vec<u16> {
    let Some(active) = game.player(slot).and_then(|player| player.active()) else {
        return Vec::new();
    };
    let rows = board_rows(game, slot);
    let heights: Vec<i8> = (0..10)
        .map(|x| rows.iter().rposition(|&row| row & (1 << x) != 0).map_or(0, |top| top as i8 + 1))
        .collect();
    let mut best: Option<(i64, Placement)> = None;
    for rotation in Rotation::ALL {
        for x in -2..12 {
            let at_zero = Placement { rotation, x, y: 0, ..active };
            let cells = piece_cells(&at_zero);
            if cells.iter().any(|&(cx, _)| !(0..10).contains(&cx)) {
                continue;
            }
            let y = cells.iter().map(|&(cx, cy)| heights[cx as usize] - cy).max().unwrap_or(0);
            let candidate = Placement { y, ..at_zero };
            if !fits(&rows, &candidate) {
                continue;
            }
            let mut after = rows;
            let mut holes = 0;
            for (cx, cy) in piece_cells(&candidate) {
                after[cy as usize] |= 1 << cx;
                holes += i64::from(cy - heights[cx as usize]).max(0);
            }
            let lines = after.iter().filter(|&&row| row == 0x3FF).count() as i64;
            let top = i64::from(y) + 2;
            let score = lines * 100 - top * 10 - holes * 15 + rng.below(5) as i64;
            if best.is_none_or(|(best_score, _)| score > best_score) {
                best = Some((score, candidate));
            }
        }
    }
    let Some((_, target)) = best else { return Vec::new() };
    let mut inputs = match target.rotation {
        Rotation::Spawn => vec![],
        Rotation::Right => vec![INPUT_ROTATE_CW],
        Rotation::Left => vec![INPUT_ROTATE_CCW],
        Rotation::Reverse => vec![INPUT_ROTATE_CW, INPUT_ROTATE_CW],
    };
    let shift = if target.x < active.x { INPUT_LEFT } else { INPUT_RIGHT };
    inputs.extend(std::iter::repeat_n(shift, (target.x - active.x).unsigned_abs() as usize));
    inputs.push(INPUT_HARD_DROP);
    inputs
}

/// Two greedy bots play until `wanted` accepts the events of one of slot
/// 0's hard drops; returns the game just before that input and the input.
fn find_position(seed: u64, wanted: impl Fn(&[Event]) -> bool) -> (TetrisBattle, u16) {
    let (mut game, mut events) = new_room(seed);
    let mut rng = Rng::new(seed);
    for tick in 0..200_000u32 {
        if game.is_finished() {
            (game, events) = new_room(rng.next_u64());
        }
        for slot in 0..2 as Slot {
            if rng.below(3) != 0 {
                continue;
            }
            for bits in bot_inputs(&game, slot, &mut rng) {
                if slot == 0 && bits & INPUT_HARD_DROP != 0 {
                    let mut trial = game.clone();
                    let mut trial_events = Vec::new();
                    trial.input(slot, tick, bits, &mut trial_events);
                    if wanted(&trial_events) {
                        return (game, bits);
                    }
                }
                game.input(slot, tick, bits, &mut events);
            }
        }
        events.clear();
        game.tick(&mut events);
    }
    panic!("no position found for seed {seed}");
}

fn has(events: &[Event], name: &str) -> bool {
    events.iter().any(|event| event.kind.name() == name)
}

/// Ticks `rooms` `iterations` times in runs of `RESTORE_EVERY_SWEEPS`,
/// restoring them from `snapshot` between runs (untimed) so the state does
/// not drift; returns the time spent ticking.
fn tick_restoring(
    snapshot: &[TetrisBattle],
    rooms: &mut Vec<TetrisBattle>,
    events: &mut Vec<Event>,
    iterations: u64,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iterations;
    while left > 0 {
        rooms.clear();
        rooms.extend_from_slice(snapshot);
        let run = left.min(u64::from(RESTORE_EVERY_SWEEPS));
        let start = Instant::now();
        for _ in 0..run {
            for room in rooms.iter_mut() {
                events.clear();
                room.tick(events);
            }
        }
        total += start.elapsed();
        left -= run;
    }
    total
}

fn bench_tick(c: &mut Criterion) {
    // Both pieces just spawned: at level 1 nothing locks within a second.
    let snapshot = vec![new_room(1).0];
    let mut rooms = snapshot.clone();
    let mut events = Vec::with_capacity(EVENTS_CAPACITY);
    c.bench_function("tick/idle_2p", |b| {
        b.iter_custom(|iterations| tick_restoring(&snapshot, &mut rooms, &mut events, iterations));
    });
}

fn bench_inputs(c: &mut Criterion) {
    let (mut game, mut events) = new_room(2);
    // A piece a few rows into its fall, away from the walls.
    for _ in 0..200 {
        game.tick(&mut events);
    }
    let mut group = c.benchmark_group("input");
    for (name, bits) in [
        ("shift", INPUT_LEFT),
        ("rotate", INPUT_ROTATE_CW),
        ("hold", INPUT_HOLD),
        ("hard_drop", INPUT_HARD_DROP),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || (game.clone(), Vec::with_capacity(EVENTS_CAPACITY)),
                |(game, events)| black_box(game.input(0, 1, black_box(bits), events)),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

fn bench_locks(c: &mut Criterion) {
    let clears_and_sends = |events: &[Event]| {
        events.iter().any(|event| match &event.kind {
            EventKind::PieceLock(lock) => lock.lines >= 2 && lock.sent > 0,
            _ => false,
        })
    };
    let inserts = |events: &[Event]| has(events, "garbage_received") && !has(events, "elimination");
    let positions = [
        ("line_clear_sends_garbage", find_position(3, clears_and_sends)),
        ("garbage_inserted", find_position(4, inserts)),
    ];
    let mut group = c.benchmark_group("lock");
    for (name, (game, bits)) in positions {
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || (game.clone(), Vec::with_capacity(EVENTS_CAPACITY)),
                |(game, events)| black_box(game.input(0, 1, bits, events)),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

/// 10 000 rooms at different moments of their matches (random play for a
/// few hundred ticks each), each ticked once per iteration. The rooms are
/// restored from the snapshot every second of game time, outside the timed
/// part, so the sample does not drift towards topped-out (finished) rooms.
/// One iteration is one sweep.
fn bench_sweep(c: &mut Criterion) {
    let mut rng = Rng::new(10);
    let mut events = Vec::with_capacity(EVENTS_CAPACITY);
    let snapshot: Vec<TetrisBattle> = (0..SWEEP_ROOMS)
        .map(|seed| {
            let (mut game, _) = new_room(seed);
            for tick in 0..rng.below(400) as u32 {
                for slot in 0..2 {
                    if rng.below(8) == 0 {
                        game.input(slot, tick, random_bits(&mut rng, 6), &mut events);
                    }
                }
                events.clear();
                game.tick(&mut events);
            }
            if game.is_finished() {
                new_room(seed).0
            } else {
                game
            }
        })
        .collect();
    let mut rooms = snapshot.clone();
    let mut group = c.benchmark_group("sweep");
    group.sample_size(20);
    group.bench_function("10k_rooms_2p", |b| {
        b.iter_custom(|iterations| tick_restoring(&snapshot, &mut rooms, &mut events, iterations));
    });
    group.finish();
}

criterion_group!(benches, bench_tick, bench_inputs, bench_locks, bench_sweep);
criterion_main!(benches);
