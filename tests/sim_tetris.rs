//! The Tetris engine through its public API:
//! - replays: random matches (1–8 players, random configs, random and
//!   greedy-bot inputs, spam over the budget, invalid inputs, forfeits)
//!   recorded from their event logs reproduce every tick's state hash;
//! - invariants under random inputs (proptest): the active piece is inside
//!   the board and on empty cells, cells are valid, no full row survives a
//!   lock, and garbage is conserved:
//!   sent = inserted + cancelled + pending + discarded;
//! - the same seed deals the same pieces to every player, in bags;
//! - zero heap allocations per tick and per input in steady state.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocations_in;

use arrayvec::ArrayVec;
use ludus::proto::wire::Rng;
use ludus::sim::event::{Piece, Placement, Rotation, PACKED_BOARD_BYTES};
use ludus::sim::tetris::{
    match_seed, piece_cells, replay, Minstd, Mode, ReplayInput, RotationSystem, TetrisBattle,
    TetrisConfig, TetrisPlayer, INPUT_ALL, INPUT_HARD_DROP, INPUT_HOLD, INPUT_LEFT, INPUT_RIGHT,
    INPUT_ROTATE_180, INPUT_ROTATE_CCW, INPUT_ROTATE_CW, INPUT_SOFT_DROP, MINSTD_SPAN,
};
use ludus::sim::{Event, EventKind, Game, InputOutcome, Slot};
use proptest::prelude::*;

// ---- input drivers ----

const WIDTH: i8 = 10;
const HEIGHT: i8 = 40;
/// Most inputs a driver plans for one piece (rotation, shifts, drop).
const PLAN_MAX: usize = 16;

type Rows = [u16; HEIGHT as usize];
type Plan = ArrayVec<u16, PLAN_MAX>;

/// Occupancy rows of a player's board, from the packed wire layout.
fn board_rows(player: &TetrisPlayer) -> Rows {
    let packed = player.packed_board();
    let mut rows = [0u16; HEIGHT as usize];
    for (index, byte) in packed.iter().enumerate() {
        let row = index / 5;
        let column = (index % 5) * 2;
        if byte & 0x0F != 0 {
            rows[row] |= 1 << column;
        }
        if byte >> 4 != 0 {
            rows[row] |= 1 << (column + 1);
        }
    }
    rows
}

fn fits(rows: &Rows, placement: &Placement) -> bool {
    piece_cells(placement).iter().all(|&(x, y)| {
        (0..WIDTH).contains(&x) && (0..HEIGHT).contains(&y) && rows[y as usize] & (1 << x) == 0
    })
}

/// Column heights (1 + the highest filled cell, 0 when empty).
fn column_heights(rows: &Rows) -> [i8; WIDTH as usize] {
    core::array::from_fn(|x| {
        rows.iter().rposition(|&row| row & (1 << x) != 0).map_or(0, |top| top as i8 + 1)
    })
}

/// A greedy one-piece placement with the well-known linear weights on
/// aggregate height, lines, holes and bumpiness, plus a little noise so
/// bots differ. Pieces are dropped from above, so the landing row follows
/// from the column heights; cheap enough for debug builds.
fn best_placement(rows: &Rows, active: Placement, rng: &mut Rng) -> Option<Placement> {
    let heights = column_heights(rows);
    let mut best: Option<(i64, Placement)> = None;
    // States with distinct shapes only: O has one, I, S and Z two.
    let states = match active.piece {
        Piece::O => 1,
        Piece::I | Piece::S | Piece::Z => 2,
        _ => 4,
    };
    for &rotation in &Rotation::ALL[..states] {
        for x in -2..WIDTH + 2 {
            let at_zero = Placement { rotation, x, y: 0, ..active };
            let cells = piece_cells(&at_zero);
            if cells.iter().any(|&(cx, _)| !(0..WIDTH).contains(&cx)) {
                continue;
            }
            let y = cells.iter().map(|&(cx, cy)| heights[cx as usize] - cy).max().unwrap_or(0);
            let candidate = Placement { y, ..at_zero };
            if !fits(rows, &candidate) {
                continue;
            }
            let score = evaluate(rows, &heights, &candidate) + rng.below(20) as i64;
            if best.is_none_or(|(best_score, _)| score > best_score) {
                best = Some((score, candidate));
            }
        }
    }
    best.map(|(_, placement)| placement)
}

fn evaluate(rows: &Rows, heights: &[i8; WIDTH as usize], placement: &Placement) -> i64 {
    let cells = piece_cells(placement);
    let mut after = *heights;
    let mut holes = 0i64;
    let mut lines = 0i64;
    for (index, &(x, y)) in cells.iter().enumerate() {
        after[x as usize] = after[x as usize].max(y + 1);
        let lowest_in_column = !cells.iter().any(|cell| cell.0 == x && cell.1 < y);
        if lowest_in_column {
            holes += i64::from(y - heights[x as usize]);
        }
        if !cells[..index].iter().any(|cell| cell.1 == y) {
            let row = cells
                .iter()
                .filter(|cell| cell.1 == y)
                .fold(rows[y as usize], |row, cell| row | 1 << cell.0);
            lines += i64::from(row == (1 << WIDTH) - 1);
        }
    }
    let aggregate: i64 = after.iter().map(|&height| i64::from(height) - lines).sum();
    let bumpiness: i64 = after.windows(2).map(|pair| i64::from((pair[0] - pair[1]).abs())).sum();
    76 * lines - 51 * aggregate - 36 * holes * 3 - 18 * bumpiness
}

/// The inputs that rotate the spawned piece to `target` and drop it there.
fn plan_for(target: Placement, active: Placement, system: RotationSystem, rng: &mut Rng) -> Plan {
    let mut plan = Plan::new();
    match target.rotation {
        Rotation::Spawn => {}
        Rotation::Right => plan.push(INPUT_ROTATE_CW),
        Rotation::Left => plan.push(INPUT_ROTATE_CCW),
        Rotation::Reverse if system == RotationSystem::SrsPlus => plan.push(INPUT_ROTATE_180),
        Rotation::Reverse => {
            plan.push(INPUT_ROTATE_CW);
            plan.push(INPUT_ROTATE_CW);
        }
    }
    let shift = if target.x < active.x { INPUT_LEFT } else { INPUT_RIGHT };
    for _ in 0..(target.x - active.x).unsigned_abs() {
        plan.push(shift);
    }
    // Sometimes fold the first shift into the rotation input (rotation is
    // applied first, then the shift) and the drop into the last shift.
    let rotation_first = plan.first().is_some_and(|&bits| bits & (INPUT_LEFT | INPUT_RIGHT) == 0);
    if rotation_first
        && plan.len() >= 2
        && rng.below(2) == 0
        && plan[1] & (INPUT_LEFT | INPUT_RIGHT) != 0
    {
        let first_shift = plan.remove(1);
        plan[0] |= first_shift;
    }
    match plan.last_mut() {
        Some(last) if rng.below(2) == 0 => *last |= INPUT_HARD_DROP,
        _ => plan.push(INPUT_HARD_DROP),
    }
    plan
}

/// A random input: mostly plausible, sometimes junk.
fn random_bits(rng: &mut Rng) -> u16 {
    if rng.below(20) == 0 {
        return rng.next_u64() as u16;
    }
    let mut bits = 0;
    match rng.below(4) {
        0 => bits |= INPUT_LEFT,
        1 => bits |= INPUT_RIGHT,
        _ => {}
    }
    match rng.below(6) {
        0 => bits |= INPUT_ROTATE_CW,
        1 => bits |= INPUT_ROTATE_CCW,
        2 => bits |= INPUT_ROTATE_180,
        _ => {}
    }
    if rng.below(3) == 0 {
        bits |= INPUT_SOFT_DROP;
    }
    if rng.below(8) == 0 {
        bits |= INPUT_HARD_DROP;
    }
    if rng.below(16) == 0 {
        bits |= INPUT_HOLD;
    }
    bits
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// Random bits, a few per tick.
    Random,
    /// Places each piece greedily after a short think.
    Bot,
    /// Places a piece greedily every tick (60 pieces a second).
    FastBot,
    /// Never sends anything: gravity and lock delay do the work.
    Idle,
    /// Sends 20 inputs a tick (over the budget of 16).
    Spammer,
}

/// Inputs of one player for one tick.
fn inputs_for(
    game: &TetrisBattle,
    slot: Slot,
    style: Style,
    hold_allowed: bool,
    rng: &mut Rng,
) -> Plan {
    let mut plan = Plan::new();
    match style {
        Style::Idle => {}
        Style::Random => {
            for _ in 0..rng.below(3) {
                let bits = random_bits(rng);
                plan.push(if hold_allowed { bits } else { bits & !INPUT_HOLD });
            }
        }
        Style::Spammer => {
            for _ in 0..PLAN_MAX {
                plan.push(random_bits(rng) & !INPUT_HARD_DROP & !INPUT_HOLD);
            }
        }
        Style::Bot | Style::FastBot => {
            if style == Style::Bot && rng.below(4) != 0 {
                return plan;
            }
            let Some(player) = game.player(slot) else { return plan };
            let Some(active) = player.active() else { return plan };
            if hold_allowed && rng.below(10) == 0 {
                plan.push(INPUT_HOLD);
                return plan;
            }
            let rows = board_rows(player);
            if let Some(target) = best_placement(&rows, active, rng) {
                plan = plan_for(target, active, game.config().rotation_system, rng);
            }
        }
    }
    plan
}

fn random_config(rng: &mut Rng, players: u8) -> TetrisConfig {
    let mode = match (players, rng.below(6)) {
        (_, 0) => Mode::Sprint,
        (_, 1) => Mode::Marathon,
        _ => Mode::Versus,
    };
    let rotation_system =
        if rng.below(2) == 0 { RotationSystem::Srs } else { RotationSystem::SrsPlus };
    TetrisConfig {
        mode,
        rotation_system,
        lock_delay_ticks: 1 + rng.below(40) as u16,
        lock_resets: rng.below(20) as u16,
        garbage_delay_ticks: rng.below(40) as u16,
        garbage_cap: 1 + rng.below(10) as u8,
        hole_change_percent: rng.below(101) as u8,
        soft_drop_factor: 1 + rng.below(40) as u16,
        max_inputs_per_tick: 16,
    }
}

// ---- invariants ----

/// Checks the invariants of every player; panics with the context.
fn check_invariants(game: &TetrisBattle, context: &str) {
    let mut sent = 0u64;
    let mut accounted = 0u64;
    for slot in 0..game.players() {
        let player = game.player(slot).expect("slot in range");
        let packed = player.packed_board();
        assert_eq!(packed.len(), PACKED_BOARD_BYTES);
        assert!(
            packed.iter().all(|byte| byte & 0x0F <= 8 && byte >> 4 <= 8),
            "{context}: cell kind"
        );
        let rows = board_rows(player);
        if player.alive() {
            assert!(
                rows.iter().all(|&row| row != (1 << WIDTH) - 1),
                "{context}: a full row survived"
            );
        }
        if let Some(active) = player.active() {
            assert!(
                fits(&rows, &active),
                "{context}: slot {slot} piece {active:?} overlaps or is outside"
            );
        }
        if !player.alive() {
            assert!(player.active().is_none(), "{context}: eliminated player has a piece");
            assert_eq!(player.pending_garbage(), 0, "{context}: eliminated queue kept");
        }
        sent += u64::from(player.garbage_sent());
        accounted += u64::from(player.garbage_received())
            + u64::from(player.garbage_cancelled())
            + u64::from(player.pending_garbage())
            + u64::from(player.garbage_discarded());
    }
    assert_eq!(sent, accounted, "{context}: garbage not conserved");
}

// ---- recording matches ----

/// A recorded match: its replay log, every tick's hash, and its totals.
struct Recording {
    config: TetrisConfig,
    seed: u64,
    players: u8,
    log: Vec<ReplayInput>,
    hashes: Vec<u64>,
    game: TetrisBattle,
    garbage_sent: u64,
    locks: u64,
}

fn record(seed: u64, rng: &mut Rng, max_ticks: u32, check_every_tick: bool) -> Recording {
    let players = 1 + rng.below(8) as u8;
    let config = random_config(rng, players);
    let styles: Vec<Style> = (0..players)
        .map(|_| match rng.below(10) {
            0 => Style::Idle,
            1 => Style::Spammer,
            2..=3 => Style::Random,
            4..=5 => Style::FastBot,
            _ => Style::Bot,
        })
        .collect();
    let mut events = Vec::new();
    let mut game = TetrisBattle::new(&config, seed, players, &mut events);
    let mut log: Vec<ReplayInput> = events.iter().filter_map(ReplayInput::from_event).collect();
    let mut hashes = Vec::new();
    let mut locks = 0;
    for tick in 0..max_ticks {
        if game.is_finished() {
            break;
        }
        events.clear();
        for slot in 0..players {
            if rng.below(600) == 0 {
                game.forfeit(slot, &mut events);
            }
            for bits in inputs_for(&game, slot, styles[usize::from(slot)], true, rng) {
                let outcome = game.input(slot, tick, bits, &mut events);
                if bits & !INPUT_ALL != 0 {
                    assert_ne!(outcome, InputOutcome::Applied);
                }
            }
        }
        game.tick(&mut events);
        hashes.push(game.state_hash());
        log.extend(events.iter().filter_map(ReplayInput::from_event));
        locks += events.iter().filter(|event| matches!(event.kind, EventKind::PieceLock(_))).count()
            as u64;
        assert!(events.iter().all(|event| event.tick == tick || event.tick == tick + 1));
        if check_every_tick {
            check_invariants(&game, &format!("seed {seed} tick {tick}"));
        }
    }
    let garbage_sent =
        (0..players).map(|slot| u64::from(game.player(slot).map_or(0, |p| p.garbage_sent()))).sum();
    Recording { config, seed, players, log, hashes, game, garbage_sent, locks }
}

/// Replaying a recording must give the same hash after every tick and the
/// same results.
fn assert_replays(recording: &Recording) {
    let mut index = 0;
    let replayed = replay(
        &recording.config,
        recording.seed,
        recording.players,
        &recording.log,
        recording.hashes.len() as u32,
        |tick, hash| {
            assert_eq!(hash, recording.hashes[index], "seed {} tick {tick}", recording.seed);
            index += 1;
        },
    )
    .unwrap_or_else(|error| panic!("seed {}: {error:?}", recording.seed));
    assert_eq!(index, recording.hashes.len());
    assert_eq!(replayed.state_hash(), recording.game.state_hash());
    assert_eq!(replayed.results(), recording.game.results());
}

/// Thousands of random matches replay tick for tick; together they send
/// garbage, lock thousands of pieces and end matches (or the test would
/// prove little).
#[test]
fn random_matches_replay_to_the_same_hashes() {
    let mut rng = Rng::new(0x7e7_5eed);
    let mut garbage = 0;
    let mut locks = 0;
    let mut finished = 0;
    for _ in 0..2_000 {
        let seed = rng.next_u64();
        let ticks = 10 + rng.below(60) as u32;
        let recording = record(seed, &mut rng, ticks, false);
        assert_replays(&recording);
        garbage += recording.garbage_sent;
        locks += recording.locks;
        finished += u32::from(recording.game.is_finished());
    }
    assert!(garbage > 1_000, "only {garbage} garbage lines sent");
    assert!(locks > 20_000, "only {locks} locks");
    assert!(finished > 15, "only {finished} matches finished");
}

/// A replay log with one input changed no longer reproduces the hashes:
/// the check above can fail.
#[test]
fn a_tampered_log_diverges() {
    let mut rng = Rng::new(99);
    let recording = loop {
        let recording = record(rng.next_u64(), &mut rng, 300, false);
        if recording.log.len() > 20 && !recording.game.is_finished() {
            break recording;
        }
    };
    let mut log = recording.log.clone();
    let middle = log.len() / 2;
    if let ludus::sim::tetris::ReplayAction::Input { bits, .. } = &mut log[middle].action {
        *bits = if *bits == INPUT_HARD_DROP { INPUT_HOLD } else { INPUT_HARD_DROP };
    }
    let mut diverged = false;
    let mut index = 0;
    let _ = replay(
        &recording.config,
        recording.seed,
        recording.players,
        &log,
        recording.hashes.len() as u32,
        |_, hash| {
            diverged |= hash != recording.hashes[index];
            index += 1;
        },
    );
    assert!(diverged);
}

/// Long matches with the invariants checked after every tick.
#[test]
fn invariants_hold_in_long_bot_matches() {
    let mut rng = Rng::new(2024);
    let mut garbage = 0;
    let mut finished = 0;
    for _ in 0..10 {
        let seed = rng.next_u64();
        let recording = record(seed, &mut rng, 2_500, true);
        assert_replays(&recording);
        garbage += recording.garbage_sent;
        finished += u32::from(recording.game.is_finished());
    }
    assert!(garbage > 100, "only {garbage} garbage lines sent");
    assert!(finished >= 3, "only {finished} matches finished");
}

// ---- proptest: invariants under arbitrary inputs ----

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Arbitrary bits from arbitrary slots at arbitrary ticks, forfeits
    /// included: the invariants hold after every step.
    #[test]
    fn invariants_under_arbitrary_inputs(
        seed in any::<u64>(),
        players in 1u8..=8,
        srs_plus in any::<bool>(),
        garbage_delay in 0u16..30,
        steps in prop::collection::vec((0u8..9, any::<u16>(), 0u8..4, 0u16..400), 1..400),
    ) {
        let config = TetrisConfig {
            rotation_system: if srs_plus { RotationSystem::SrsPlus } else { RotationSystem::Srs },
            garbage_delay_ticks: garbage_delay,
            ..TetrisConfig::default()
        };
        let mut events = Vec::new();
        let mut game = TetrisBattle::new(&config, seed, players, &mut events);
        for (step, &(slot, bits, gap, forfeit_roll)) in steps.iter().enumerate() {
            // Bias towards plausible inputs: keep the low 8 bits most times.
            let bits = if bits & 0x8000 == 0 { bits & INPUT_ALL } else { bits };
            if forfeit_roll == 0 {
                game.forfeit(slot, &mut events);
            } else {
                let outcome = game.input(slot, step as u32, bits, &mut events);
                if slot >= players || bits & !INPUT_ALL != 0 {
                    prop_assert_eq!(outcome, InputOutcome::Rejected);
                }
            }
            for _ in 0..gap {
                game.tick(&mut events);
            }
            check_invariants(&game, &format!("step {step}"));
        }
    }
}

// ---- the same pieces for everyone ----

/// The pieces of `count` bags from a MINSTD seed, computed here with the
/// reference's integer Fisher–Yates (base order Z L O S I J T).
fn bag_sequence(seed: u32, count: usize) -> Vec<Piece> {
    let mut rng = Minstd::new(u64::from(seed));
    let mut pieces = Vec::new();
    for _ in 0..count {
        let mut bag = [Piece::Z, Piece::L, Piece::O, Piece::S, Piece::I, Piece::J, Piece::T];
        for i in (1..7usize).rev() {
            let v = u64::from(rng.next_value());
            let j = ((v - 1) * (i as u64 + 1) / MINSTD_SPAN) as usize;
            bag.swap(i, j);
        }
        pieces.extend(bag);
    }
    pieces
}

/// Without hold, every player's spawns follow the one sequence of the
/// match seed, whatever the inputs.
#[test]
fn same_seed_same_pieces_for_every_player() {
    let mut rng = Rng::new(7);
    for _ in 0..40 {
        let seed = rng.next_u64();
        let players = 2 + rng.below(7) as u8;
        let config = TetrisConfig { garbage_delay_ticks: 5, ..TetrisConfig::default() };
        let mut events = Vec::new();
        let mut game = TetrisBattle::new(&config, seed, players, &mut events);
        let mut all_events = events.clone();
        for tick in 0..600 {
            events.clear();
            for slot in 0..players {
                let style = if slot % 2 == 0 { Style::Bot } else { Style::Random };
                for bits in inputs_for(&game, slot, style, false, &mut rng) {
                    game.input(slot, tick, bits, &mut events);
                }
            }
            game.tick(&mut events);
            all_events.extend(events.iter().cloned());
        }
        let expected = bag_sequence(match_seed(seed), 200);
        for slot in 0..players {
            let spawned: Vec<Piece> = all_events
                .iter()
                .filter(|event| event.player == Some(slot))
                .filter_map(|event| match event.kind {
                    EventKind::PieceSpawn { placement, .. } => Some(placement.piece),
                    _ => None,
                })
                .collect();
            assert!(spawned.len() >= 3, "slot {slot} spawned only {}", spawned.len());
            assert_eq!(spawned[..], expected[..spawned.len()], "seed {seed} slot {slot}");
        }
    }
}

/// The room seed maps onto the MINSTD range as `(seed % (2^31 − 2)) + 1`.
#[test]
fn seed_mapping() {
    let mut events = Vec::new();
    for (seed, expected) in
        [(0u64, 1u32), (12_344, 12_345), (2_147_483_645, 2_147_483_646), (2_147_483_646, 1)]
    {
        let game = TetrisBattle::new(&TetrisConfig::default(), seed, 1, &mut events);
        assert_eq!(game.match_seed(), expected);
        assert_eq!(match_seed(seed), expected);
    }
}

// ---- allocations ----

/// After warm-up, ticks and inputs (moves, holds, locks, line clears,
/// garbage sent and received) allocate nothing: events go into a reused,
/// pre-reserved `Vec` cleared each tick.
#[test]
fn no_allocation_per_tick_or_input_in_steady_state() {
    let mut rng = Rng::new(5);
    let config = TetrisConfig { garbage_delay_ticks: 10, ..TetrisConfig::default() };
    let mut measured_ticks = 0;
    let mut kinds_seen = [false; 3];
    for seed in 0..30u64 {
        let mut events: Vec<Event> = Vec::with_capacity(1_024);
        let mut game = TetrisBattle::new(&config, seed, 2, &mut events);
        let step = |game: &mut TetrisBattle, rng: &mut Rng, events: &mut Vec<Event>, tick: u32| {
            events.clear();
            for slot in 0..2 {
                for bits in inputs_for(game, slot, Style::Bot, true, rng) {
                    game.input(slot, tick, bits, events);
                }
            }
            game.tick(events);
        };
        for tick in 0..120 {
            step(&mut game, &mut rng, &mut events, tick);
        }
        for tick in 120..1_500 {
            if game.is_finished() {
                break;
            }
            let (allocations, ()) = allocations_in(|| step(&mut game, &mut rng, &mut events, tick));
            assert_eq!(allocations, 0, "seed {seed} tick {tick}: {events:?}");
            measured_ticks += 1;
            for event in &events {
                match event.kind {
                    EventKind::LineClear { .. } => kinds_seen[0] = true,
                    EventKind::GarbageSent { .. } => kinds_seen[1] = true,
                    EventKind::GarbageReceived { .. } => kinds_seen[2] = true,
                    _ => {}
                }
            }
        }
    }
    assert!(measured_ticks > 5_000, "only {measured_ticks} ticks measured");
    assert_eq!(kinds_seen, [true; 3], "line clears, garbage sent and received all measured");
}
