//! The arena game's rules, observed through its public API: exact integer
//! movement, normalised diagonals, clamping at the walls, refused inputs,
//! acknowledged sequence numbers, the end of a match, forfeits, and
//! determinism down to replaying random matches from their event logs.

use ludus::proto::wire::Rng;
use ludus::sim::arena::{
    Arena, ArenaConfig, DIAGONAL_AXIS_SPEED_MILLI_PER_SECOND, INPUT_DOWN, INPUT_LEFT, INPUT_RIGHT,
    INPUT_UP, MAX_INPUTS_PER_TICK, SPEED_MILLI_PER_SECOND, TICK_HZ, WORLD_SIZE_MILLI,
};
use ludus::sim::event::{EliminationCause, PlayerResult};
use ludus::sim::{Event, EventKind, Game, InputOutcome, Slot, MAX_PLAYERS};

const TICKS_PER_SECOND: u32 = TICK_HZ as u32;

fn arena(players: u8, duration_ticks: u32, seed: u64) -> (Arena, Vec<Event>) {
    let mut events = Vec::new();
    let arena = Arena::new(&ArenaConfig { duration_ticks }, seed, players, &mut events);
    (arena, events)
}

fn ticks(arena: &mut Arena, count: u32, events: &mut Vec<Event>) {
    for _ in 0..count {
        arena.tick(events);
    }
}

/// Milli-units an axis at `speed` per second moves on the match's tick
/// number `n` (0-based), written independently of the game's tables.
fn expected_step(speed: u32, n: u32) -> u32 {
    let (speed, n, hz) = (u64::from(speed), u64::from(n), u64::from(TICKS_PER_SECOND));
    (speed * (n + 1) / hz - speed * n / hz) as u32
}

/// The input bit and sign that move `position` away from its nearer wall,
/// so one second of movement cannot reach a wall.
fn toward_far_wall(position: u32, low: u16, high: u16) -> (u16, i64) {
    if position < WORLD_SIZE_MILLI / 2 {
        (high, 1)
    } else {
        (low, -1)
    }
}

fn position(arena: &Arena, slot: Slot) -> (i64, i64) {
    let (x, y) = arena.position(slot).expect("slot in the game");
    (i64::from(x), i64::from(y))
}

#[test]
fn straight_movement_is_exact_per_tick_and_per_second() {
    for (axis, seed) in [(0, 11), (1, 12)] {
        let (mut game, mut events) = arena(1, 0, seed);
        let (x0, y0) = position(&game, 0);
        let (bit, sign) = if axis == 0 {
            toward_far_wall(x0 as u32, INPUT_LEFT, INPUT_RIGHT)
        } else {
            toward_far_wall(y0 as u32, INPUT_DOWN, INPUT_UP)
        };
        assert_eq!(game.input(0, 1, bit, &mut events), InputOutcome::Applied);
        let mut travelled = 0;
        for n in 0..TICKS_PER_SECOND {
            let before = position(&game, 0);
            game.tick(&mut events);
            let after = position(&game, 0);
            let step = i64::from(expected_step(SPEED_MILLI_PER_SECOND, n));
            let (moved, still) = if axis == 0 {
                (after.0 - before.0, after.1 - before.1)
            } else {
                (after.1 - before.1, after.0 - before.0)
            };
            assert_eq!((moved, still), (sign * step, 0), "tick {n}");
            assert!(step == 6_666 || step == 6_667);
            travelled += moved;
        }
        assert_eq!(travelled, sign * 200_000, "one second moves exactly 200 units");
    }
}

#[test]
fn any_thirty_consecutive_ticks_move_exactly_two_hundred_units() {
    for start in 0..TICKS_PER_SECOND * 2 {
        let (mut game, mut events) = arena(1, 0, 5);
        let (x0, _) = position(&game, 0);
        let (bit, sign) = toward_far_wall(x0 as u32, INPUT_LEFT, INPUT_RIGHT);
        ticks(&mut game, start, &mut events);
        game.input(0, 1, bit, &mut events);
        ticks(&mut game, TICKS_PER_SECOND, &mut events);
        assert_eq!(position(&game, 0).0 - x0, sign * 200_000, "starting at tick {start}");
    }
}

#[test]
fn diagonals_are_normalised_to_at_most_the_straight_speed() {
    let (mut game, mut events) = arena(1, 0, 99);
    let (x0, y0) = position(&game, 0);
    let (x_bit, x_sign) = toward_far_wall(x0 as u32, INPUT_LEFT, INPUT_RIGHT);
    let (y_bit, y_sign) = toward_far_wall(y0 as u32, INPUT_DOWN, INPUT_UP);
    game.input(0, 1, x_bit | y_bit, &mut events);
    for n in 0..TICKS_PER_SECOND {
        let before = position(&game, 0);
        game.tick(&mut events);
        let after = position(&game, 0);
        let step = i64::from(expected_step(DIAGONAL_AXIS_SPEED_MILLI_PER_SECOND, n));
        assert_eq!((after.0 - before.0, after.1 - before.1), (x_sign * step, y_sign * step));
        // Rounding lets one tick's diagonal exceed that tick's straight
        // step by under 2 milli-units; a whole second never does (below).
        let straight = i64::from(expected_step(SPEED_MILLI_PER_SECOND, n)) + 2;
        assert!(2 * step * step <= straight * straight, "tick {n}: {step} vs {straight}");
    }
    let (dx, dy) = (position(&game, 0).0 - x0, position(&game, 0).1 - y0);
    assert_eq!((dx, dy), (x_sign * 141_421, y_sign * 141_421));
    // 199.9995 units along the diagonal: within a milli-unit of 200 units.
    let squared = dx * dx + dy * dy;
    assert!(squared <= 200_000 * 200_000 && squared > 199_999 * 199_999);
}

#[test]
fn every_wall_clamps_and_a_diagonal_slides_along_it() {
    let walls = [
        (INPUT_LEFT, Some(0), None),
        (INPUT_RIGHT, Some(WORLD_SIZE_MILLI), None),
        (INPUT_DOWN, None, Some(0)),
        (INPUT_UP, None, Some(WORLD_SIZE_MILLI)),
    ];
    for (bit, want_x, want_y) in walls {
        let (mut game, mut events) = arena(1, 0, 3);
        let (x0, y0) = game.position(0).unwrap();
        game.input(0, 1, bit, &mut events);
        // 6 s cross the whole world from anywhere.
        ticks(&mut game, 6 * TICKS_PER_SECOND, &mut events);
        let (x, y) = game.position(0).unwrap();
        assert_eq!((x, y), (want_x.unwrap_or(x0), want_y.unwrap_or(y0)), "bits {bit:#b}");
    }
    for (bits, corner) in [
        (INPUT_LEFT | INPUT_DOWN, (0, 0)),
        (INPUT_RIGHT | INPUT_UP, (WORLD_SIZE_MILLI, WORLD_SIZE_MILLI)),
        (INPUT_LEFT | INPUT_UP, (0, WORLD_SIZE_MILLI)),
        (INPUT_RIGHT | INPUT_DOWN, (WORLD_SIZE_MILLI, 0)),
    ] {
        let (mut game, mut events) = arena(1, 0, 4);
        game.input(0, 1, bits, &mut events);
        ticks(&mut game, 8 * TICKS_PER_SECOND, &mut events);
        assert_eq!(game.position(0), Some(corner), "bits {bits:#b}");
    }
    // Pinned to the left wall, left+up keeps climbing at the diagonal's rate.
    let (mut game, mut events) = arena(1, 0, 4);
    game.input(0, 1, INPUT_LEFT | INPUT_DOWN, &mut events);
    ticks(&mut game, 8 * TICKS_PER_SECOND, &mut events);
    game.input(0, 2, INPUT_LEFT | INPUT_UP, &mut events);
    ticks(&mut game, TICKS_PER_SECOND, &mut events);
    assert_eq!(game.position(0), Some((0, DIAGONAL_AXIS_SPEED_MILLI_PER_SECOND)));
}

#[test]
fn standing_still_and_the_latest_direction() {
    let (mut game, mut events) = arena(2, 0, 8);
    let start = game.position(0);
    ticks(&mut game, 45, &mut events);
    assert_eq!(game.position(0), start, "no input: no movement");
    game.input(0, 1, INPUT_RIGHT, &mut events);
    game.input(0, 2, 0, &mut events);
    ticks(&mut game, 10, &mut events);
    assert_eq!(game.position(0), start, "the latest input (0) stands still");
    let avatar = game.avatar(0).unwrap();
    assert_eq!((avatar.dx, avatar.dy, avatar.last_input_seq), (0, 0, 2));
}

#[test]
fn impossible_inputs_are_rejected_and_change_nothing() {
    let (mut game, mut events) = arena(2, 0, 21);
    assert_eq!(game.input(0, 5, INPUT_UP, &mut events), InputOutcome::Applied);
    let hash = game.state_hash();
    let count = events.len();
    let mut refused = vec![
        (0, 6, INPUT_LEFT | INPUT_RIGHT),
        (0, 6, INPUT_DOWN | INPUT_UP),
        (0, 6, INPUT_LEFT | INPUT_RIGHT | INPUT_UP),
        (0, 5, INPUT_LEFT),   // stale: equal to the last applied
        (0, 4, INPUT_LEFT),   // stale: older
        (1, 0, INPUT_LEFT),   // seq 0 is never a client's input
        (2, 1, INPUT_LEFT),   // no such slot in a 2-player game
        (255, 1, INPUT_LEFT), // nor that one
    ];
    refused.extend((4..16).map(|bit| (1, 1, 1u16 << bit)));
    for (slot, seq, bits) in refused {
        let outcome = game.input(slot, seq, bits, &mut events);
        assert_eq!(outcome, InputOutcome::Rejected, "slot {slot} seq {seq} bits {bits:#b}");
    }
    assert_eq!(game.state_hash(), hash);
    assert_eq!(events.len(), count, "refused inputs emit nothing");
    assert_eq!(game.last_input_seq(0), Some(5));
    assert_eq!(game.last_input_seq(1), Some(0));
}

#[test]
fn inputs_over_the_per_tick_budget_are_dropped_until_the_next_tick() {
    let (mut game, mut events) = arena(2, 0, 22);
    let budget = u32::from(MAX_INPUTS_PER_TICK);
    for seq in 1..=budget {
        assert_eq!(game.input(0, seq, INPUT_LEFT, &mut events), InputOutcome::Applied);
    }
    let hash = game.state_hash();
    for seq in budget + 1..budget + 4 {
        assert_eq!(game.input(0, seq, INPUT_RIGHT, &mut events), InputOutcome::OverBudget);
    }
    assert_eq!(game.state_hash(), hash, "over-budget inputs change nothing");
    assert_eq!(game.last_input_seq(0), Some(budget), "and are not acknowledged");
    assert_eq!(game.avatar(0).unwrap().dx, -1);
    // Another player's budget is its own.
    assert_eq!(game.input(1, 1, INPUT_UP, &mut events), InputOutcome::Applied);
    game.tick(&mut events);
    assert_eq!(game.input(0, budget + 10, INPUT_RIGHT, &mut events), InputOutcome::Applied);
    assert_eq!(game.last_input_seq(0), Some(budget + 10), "sequence gaps are fine");
}

#[test]
fn applied_inputs_are_events_stamped_with_the_current_tick() {
    let (mut game, mut events) = arena(3, 0, 23);
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0],
        Event { tick: 0, player: None, kind: EventKind::GameStart { players: 3, seed: 23 } }
    );
    events.clear();
    game.input(2, 1, INPUT_DOWN, &mut events);
    ticks(&mut game, 7, &mut events);
    game.input(1, 3, INPUT_LEFT | INPUT_UP, &mut events);
    game.input(1, 2, INPUT_RIGHT, &mut events); // stale: no event
    assert_eq!(
        events,
        vec![
            Event { tick: 0, player: Some(2), kind: EventKind::Input { seq: 1, bits: INPUT_DOWN } },
            Event {
                tick: 7,
                player: Some(1),
                kind: EventKind::Input { seq: 3, bits: INPUT_LEFT | INPUT_UP }
            },
        ]
    );
    assert_eq!(game.current_tick(), 7);
}

#[test]
fn the_match_ends_when_its_duration_elapses() {
    let (mut game, mut events) = arena(3, 90, 24);
    game.input(0, 1, INPUT_RIGHT, &mut events);
    ticks(&mut game, 40, &mut events);
    game.forfeit(1, &mut events);
    events.clear();
    ticks(&mut game, 49, &mut events);
    assert!(!game.is_finished() && events.is_empty());
    game.tick(&mut events);
    assert!(game.is_finished());
    assert_eq!(game.current_tick(), 90);
    let results = (0..3)
        .map(|slot| PlayerResult {
            slot,
            placement: 1,
            survived_ticks: if slot == 1 { 40 } else { 90 },
            ..PlayerResult::default()
        })
        .collect();
    assert_eq!(
        events,
        vec![Event { tick: 90, player: None, kind: EventKind::GameEnd { results } }]
    );
    // Finished: ticks, inputs and forfeits do nothing.
    let (hash, positions) = (game.state_hash(), game.avatars().to_vec());
    events.clear();
    ticks(&mut game, 30, &mut events);
    assert_eq!(game.input(2, 1, INPUT_UP, &mut events), InputOutcome::Rejected);
    game.forfeit(0, &mut events);
    assert!(events.is_empty());
    assert_eq!((game.state_hash(), game.avatars()), (hash, &positions[..]));
    assert_eq!(game.current_tick(), 90);
}

#[test]
fn the_last_tick_of_a_match_still_moves() {
    let (mut game, mut events) = arena(1, 30, 25);
    let (x0, _) = position(&game, 0);
    let (bit, sign) = toward_far_wall(x0 as u32, INPUT_LEFT, INPUT_RIGHT);
    game.input(0, 1, bit, &mut events);
    ticks(&mut game, 30, &mut events);
    assert!(game.is_finished());
    assert_eq!(position(&game, 0).0 - x0, sign * 200_000);
}

#[test]
fn a_match_without_a_duration_never_ends_by_itself() {
    let (mut game, mut events) = arena(8, 0, 26);
    for slot in 0..8 {
        game.forfeit(slot, &mut events);
    }
    ticks(&mut game, 20_000, &mut events);
    assert!(!game.is_finished());
    assert!(!events.iter().any(|e| matches!(e.kind, EventKind::GameEnd { .. })));
}

#[test]
fn a_forfeit_freezes_the_player_in_the_state_as_not_present() {
    let (mut game, mut events) = arena(2, 0, 27);
    game.input(1, 1, INPUT_UP, &mut events);
    ticks(&mut game, 12, &mut events);
    events.clear();
    game.forfeit(1, &mut events);
    let kind =
        EventKind::Elimination { cause: EliminationCause::Forfeit, killer: None, placement: 1 };
    assert_eq!(events, vec![Event { tick: 12, player: Some(1), kind }]);
    let frozen = game.position(1);
    ticks(&mut game, 30, &mut events);
    assert_eq!(game.position(1), frozen);
    assert!(!game.is_present(1) && game.is_present(0));
    assert_eq!(game.last_input_seq(1), Some(1));
    assert_eq!(game.players(), 2);
    assert_eq!(game.avatars().len(), 2);
    assert!(!game.is_present(2) && game.position(2).is_none());
}

#[test]
fn the_state_hash_sees_every_change() {
    let (mut game, mut events) = arena(2, 0, 28);
    let mut seen = vec![game.state_hash()];
    game.input(0, 1, 0, &mut events); // only seq and budget change
    seen.push(game.state_hash());
    game.tick(&mut events); // only the tick and the budget change
    seen.push(game.state_hash());
    game.input(1, 1, INPUT_LEFT, &mut events);
    seen.push(game.state_hash());
    game.tick(&mut events);
    seen.push(game.state_hash());
    game.forfeit(0, &mut events);
    seen.push(game.state_hash());
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "{seen:x?}");
}

#[test]
fn spawns_and_hashes_are_pinned_across_platforms() {
    // Golden values: a change here changes every recorded replay.
    let (game, _) = arena(8, 0, 42);
    let spawns: Vec<(u32, u32)> = game.avatars().iter().map(|a| (a.x, a.y)).collect();
    assert_eq!(spawns, GOLDEN_SPAWNS_SEED_42);
    assert_eq!(game.state_hash(), GOLDEN_HASH_SEED_42);
}

const GOLDEN_SPAWNS_SEED_42: [(u32, u32); 8] = [
    (693_252, 227_928),
    (322_881, 375_352),
    (130_424, 794_583),
    (274_724, 740_506),
    (371_945, 594_786),
    (263_921, 494_391),
    (510_717, 516_011),
    (632_128, 262_748),
];
const GOLDEN_HASH_SEED_42: u64 = 0x06a1_4877_bb5a_3fda;

/// What the random matches exercised, so the replay test proves it covered
/// refused inputs, forfeits and ends.
#[derive(Default)]
struct Coverage {
    applied: u32,
    over_budget: u32,
    rejected: u32,
    forfeits: u32,
    ends: u32,
}

/// Drives one random short match, recording the hash after `new` and after
/// every tick, and returns (duration, hashes, events).
fn random_match(rng: &mut Rng, coverage: &mut Coverage) -> (u32, Vec<u64>, Vec<Event>) {
    let seed = rng.next_u64();
    let players = 1 + rng.below(MAX_PLAYERS as u64) as u8;
    let duration = if rng.below(4) == 0 { 0 } else { 1 + rng.below(120) as u32 };
    let (mut game, mut events) = arena(players, duration, seed);
    let mut hashes = vec![game.state_hash()];
    let mut seqs = [0u32; MAX_PLAYERS];
    for _ in 0..150 {
        // Sometimes a burst from one player, to run into its budget.
        let burst = (rng.below(8) == 0).then(|| rng.below(u64::from(players)) as Slot);
        for _ in 0..rng.below(12) {
            // Sometimes out of range.
            let slot = burst.unwrap_or_else(|| rng.below(u64::from(players) + 1) as Slot);
            let seq_slot = usize::from(slot).min(MAX_PLAYERS - 1);
            // Mostly new seqs, sometimes a repeat or a gap.
            seqs[seq_slot] += rng.below(3) as u32;
            let bits =
                if rng.below(10) == 0 { rng.next_u64() as u16 } else { rng.below(16) as u16 };
            match game.input(slot, seqs[seq_slot], bits, &mut events) {
                InputOutcome::Applied => coverage.applied += 1,
                InputOutcome::OverBudget => coverage.over_budget += 1,
                InputOutcome::Rejected => coverage.rejected += 1,
            }
        }
        if rng.below(200) == 0 {
            game.forfeit(rng.below(u64::from(players)) as Slot, &mut events);
            coverage.forfeits += 1;
        }
        game.tick(&mut events);
        hashes.push(game.state_hash());
        for avatar in game.avatars() {
            assert!(avatar.x <= WORLD_SIZE_MILLI && avatar.y <= WORLD_SIZE_MILLI);
        }
    }
    coverage.ends += u32::from(game.is_finished());
    (duration, hashes, events)
}

/// Rebuilds a match from its event log alone and checks every tick's hash.
fn replay(duration: u32, hashes: &[u64], log: &[Event]) {
    let EventKind::GameStart { players, seed } = log[0].kind else { panic!("no game_start") };
    let (mut game, mut events) = arena(players, duration, seed);
    assert_eq!(game.state_hash(), hashes[0]);
    let mut next = 1;
    for (tick, want) in hashes.iter().enumerate().skip(1) {
        while let Some(event) = log.get(next).filter(|e| e.tick == tick as u32 - 1) {
            let slot = event.player.expect("player events only");
            match event.kind {
                EventKind::Input { seq, bits } => {
                    assert_eq!(game.input(slot, seq, bits, &mut events), InputOutcome::Applied);
                }
                EventKind::Elimination { .. } => game.forfeit(slot, &mut events),
                ref other => panic!("unexpected {other:?} at tick {}", event.tick),
            }
            next += 1;
        }
        game.tick(&mut events);
        assert_eq!(game.state_hash(), *want, "tick {tick}");
        if let Some(EventKind::GameEnd { .. }) = log.get(next).map(|e| &e.kind) {
            next += 1;
        }
    }
    assert_eq!(next, log.len(), "the whole log was replayed");
    assert_eq!(events, log, "the replay emits the same events");
}

#[test]
fn thousands_of_random_matches_replay_from_their_input_events() {
    let mut rng = Rng::new(0x5eed_a4e4a);
    let mut coverage = Coverage::default();
    for _ in 0..3_000 {
        let (duration, hashes, events) = random_match(&mut rng, &mut coverage);
        replay(duration, &hashes, &events);
    }
    let Coverage { applied, over_budget, rejected, forfeits, ends } = coverage;
    assert!(applied > 100_000 && over_budget > 1_000 && rejected > 10_000);
    assert!(forfeits > 1_000 && ends > 1_000, "{forfeits} forfeits, {ends} ends");
}

#[test]
fn different_seeds_give_different_matches() {
    let (a, _) = arena(4, 0, 1);
    let (b, _) = arena(4, 0, 2);
    assert_ne!(a.state_hash(), b.state_hash());
}
