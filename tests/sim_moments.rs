//! Key-moment detection (reference tetris-battle.md §9.2) from crafted event
//! streams: each moment fires exactly when its condition holds and not
//! otherwise, moments of one lock come in the reference's order, and the
//! reference's worked vectors TV4-TV7 give the moments they list.

use arrayvec::ArrayVec;
use ludus::sim::event::{
    EliminationCause, Lock, Piece, Placement, PlayerResult, Rotation, Spin, PACKED_BOARD_BYTES,
};
use ludus::sim::moments::{
    detect_all, detect_moments, Moment, MomentData, MomentKind, MomentState, COMEBACK_GAP,
    COMEBACK_MIN_D, DANGER_H, SAFE_H, SURGE_MIN_LINES, SURGE_MIN_LOCKS,
};
use ludus::sim::{Event, EventKind, Slot};

/// A lock that clears nothing, sends nothing, on an empty board.
fn lock() -> Lock {
    Lock {
        placement: Placement { piece: Piece::L, rotation: Rotation::Spawn, x: 4, y: 0 },
        spin: Spin::None,
        lines: 0,
        ren: -1,
        b2b_bonus: false,
        b2b_chain: 0,
        perfect_clear: false,
        attack: 0,
        cancelled: 0,
        sent: 0,
        target: None,
        stack_height: 0,
        pending: 0,
        score: 0,
        board: [0; PACKED_BOARD_BYTES],
    }
}

fn t_spin(spin: Spin, lines: u8) -> Lock {
    Lock {
        placement: Placement { piece: Piece::T, rotation: Rotation::Reverse, x: 2, y: 1 },
        spin,
        lines,
        ..lock()
    }
}

fn cleared(lines: u8) -> Lock {
    Lock { placement: Placement { piece: Piece::I, ..lock().placement }, lines, ..lock() }
}

fn sending(sent: u16) -> Lock {
    Lock { sent, attack: sent, target: Some(1), ..lock() }
}

fn height(stack_height: u8) -> Lock {
    Lock { stack_height, ..lock() }
}

fn danger(stack_height: u8, pending: u16) -> Lock {
    Lock { stack_height, pending, ..lock() }
}

fn start(players: u8) -> Event {
    Event { tick: 0, player: None, kind: EventKind::GameStart { players, seed: 1 } }
}

fn at(tick: u32, player: Slot, lock: Lock) -> Event {
    Event { tick, player: Some(player), kind: EventKind::PieceLock(lock) }
}

fn eliminated(tick: u32, victim: Slot, killer: Option<Slot>, placement: u8) -> Event {
    let cause = EliminationCause::TopOut;
    Event { tick, player: Some(victim), kind: EventKind::Elimination { cause, killer, placement } }
}

/// game_end with `placements[slot]` for every slot.
fn game_end(tick: u32, placements: &[u8]) -> Event {
    let results: ArrayVec<PlayerResult, 8> = placements
        .iter()
        .enumerate()
        .map(|(slot, &placement)| PlayerResult {
            slot: slot as Slot,
            placement,
            ..PlayerResult::default()
        })
        .collect();
    Event { tick, player: None, kind: EventKind::GameEnd { results } }
}

/// The moments of a stream that starts with game_start for `players`.
fn moments(players: u8, events: &[Event]) -> Vec<Moment> {
    let mut stream = vec![start(players)];
    stream.extend_from_slice(events);
    detect_all(players, &stream)
}

/// Locks of player 0 at ticks 10, 20, 30... in a 2-player game.
fn locks(locks: impl IntoIterator<Item = Lock>) -> Vec<Moment> {
    let events: Vec<Event> =
        locks.into_iter().enumerate().map(|(n, lock)| at(10 * (n as u32 + 1), 0, lock)).collect();
    moments(2, &events)
}

fn kinds(moments: &[Moment]) -> Vec<MomentKind> {
    moments.iter().map(|moment| moment.kind).collect()
}

fn moment(tick: u32, player: Slot, kind: MomentKind, data: MomentData) -> Moment {
    Moment { tick, player, kind, data }
}

#[test]
fn names_are_the_history_catalog_names() {
    let names: Vec<&str> = MomentKind::ALL.iter().map(|kind| kind.name()).collect();
    assert_eq!(
        names,
        [
            "tetris",
            "t_spin_single",
            "t_spin_double",
            "t_spin_triple",
            "back_to_back",
            "garbage_surge",
            "near_death_survival",
            "elimination",
            "comeback",
            "perfect_clear"
        ]
    );
    assert_eq!((SURGE_MIN_LINES, SURGE_MIN_LOCKS, DANGER_H, SAFE_H), (3, 2, 17, 9));
    assert_eq!((COMEBACK_GAP, COMEBACK_MIN_D), (8, 12));
}

#[test]
fn perfect_clear_fires_for_any_clear_that_empties_the_board() {
    let pc = |lines| Lock { perfect_clear: true, ..cleared(lines) };
    let found = locks([pc(1), pc(2), Lock { perfect_clear: true, ..t_spin(Spin::Full, 3) }]);
    let data = |lines| MomentData::PerfectClear { lines };
    assert_eq!(
        found,
        [
            moment(10, 0, MomentKind::PerfectClear, data(1)),
            moment(20, 0, MomentKind::PerfectClear, data(2)),
            moment(30, 0, MomentKind::PerfectClear, data(3)),
            moment(30, 0, MomentKind::TSpinTriple, MomentData::None),
        ]
    );
    // Not without cleared lines (a malformed flag), nor for a clear that
    // leaves cells behind.
    assert!(locks([Lock { perfect_clear: true, ..lock() }, cleared(3), cleared(2)]).is_empty());
}

#[test]
fn tetris_fires_for_four_lines_only() {
    let found = locks([cleared(4), cleared(3), cleared(1), cleared(4)]);
    assert_eq!(
        found,
        [
            moment(10, 0, MomentKind::Tetris, MomentData::None),
            moment(40, 0, MomentKind::Tetris, MomentData::None),
        ]
    );
}

#[test]
fn t_spins_are_full_t_spins_that_clear_lines() {
    let found = locks([t_spin(Spin::Full, 1), t_spin(Spin::Full, 2), t_spin(Spin::Full, 3)]);
    let want = [MomentKind::TSpinSingle, MomentKind::TSpinDouble, MomentKind::TSpinTriple];
    assert_eq!(kinds(&found), want);
    assert!(found.iter().all(|moment| moment.data == MomentData::None));
}

#[test]
fn minis_spinless_t_pieces_and_zero_line_spins_are_not_t_spins() {
    let not_t = Lock { placement: Placement { piece: Piece::S, ..lock().placement }, ..lock() };
    let found = locks([
        t_spin(Spin::Mini, 1),
        t_spin(Spin::Mini, 2),
        t_spin(Spin::Full, 0),
        t_spin(Spin::Mini, 0),
        t_spin(Spin::None, 1),
        t_spin(Spin::None, 2),
        t_spin(Spin::None, 3),
        Lock { spin: Spin::Full, lines: 2, ..not_t },
    ]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn back_to_back_fires_on_every_continuation_of_a_chain() {
    let difficult = |chain, bonus| Lock { b2b_chain: chain, b2b_bonus: bonus, ..cleared(4) };
    let found = locks([
        difficult(1, false), // the chain starts: never fires
        difficult(2, true),
        difficult(3, true),
        Lock { b2b_chain: 0, ..cleared(1) }, // broken
        difficult(1, false),                 // a new chain starts
        difficult(2, true),
    ]);
    let b2b: Vec<(u32, MomentData)> = found
        .iter()
        .filter(|moment| moment.kind == MomentKind::BackToBack)
        .map(|moment| (moment.tick, moment.data))
        .collect();
    let chain = |chain| MomentData::BackToBack { chain };
    assert_eq!(b2b, [(20, chain(1)), (30, chain(2)), (60, chain(1))]);
}

#[test]
fn garbage_surge_needs_two_sending_locks_and_three_lines() {
    let surge = |streak_sent, streak_len| MomentData::GarbageSurge { streak_sent, streak_len };
    // 2 then 1: fires at the second lock.
    let found = locks([sending(2), sending(1)]);
    assert_eq!(found, [moment(20, 0, MomentKind::GarbageSurge, surge(3, 2))]);
    // A single big attack is not a surge, nor two small ones.
    assert!(locks([sending(10), lock(), sending(1), sending(1)]).is_empty());
    // 1, 1, 1: the third lock reaches three lines.
    assert_eq!(
        locks([sending(1), sending(1), sending(1)]),
        [moment(30, 0, MomentKind::GarbageSurge, surge(3, 3))]
    );
}

#[test]
fn garbage_surge_fires_once_per_streak_and_rearms_after_a_lock_that_sends_nothing() {
    let found =
        locks([sending(5), sending(5), sending(5), sending(5), lock(), sending(2), sending(2)]);
    let surge = |streak_sent, streak_len| MomentData::GarbageSurge { streak_sent, streak_len };
    assert_eq!(
        found,
        [
            moment(20, 0, MomentKind::GarbageSurge, surge(10, 2)),
            moment(70, 0, MomentKind::GarbageSurge, surge(4, 2)),
        ]
    );
}

#[test]
fn garbage_surge_streaks_are_per_player() {
    // Player 1's quiet locks in between do not break player 0's streak.
    let events = [at(10, 0, sending(2)), at(15, 1, lock()), at(20, 0, sending(2))];
    let found = moments(2, &events);
    let data = MomentData::GarbageSurge { streak_sent: 4, streak_len: 2 };
    assert_eq!(found, [moment(20, 0, MomentKind::GarbageSurge, data)]);
}

#[test]
fn near_death_survival_fires_when_a_stack_in_danger_comes_back_down() {
    // 17 arms at tick 20; back to 9 at tick 50.
    let found = locks([height(16), height(17), height(12), height(10), height(9), height(9)]);
    let data = MomentData::NearDeathSurvival { peak_height: 17, danger_ticks: 30 };
    assert_eq!(found, [moment(50, 0, MomentKind::NearDeathSurvival, data)]);
    // 16 never arms; 17 then 10 is not safe yet.
    assert!(locks([height(16), height(3)]).is_empty());
    assert!(locks([height(17), height(10), height(12)]).is_empty());
    // It re-arms after firing.
    let twice = locks([height(20), height(0), height(18), height(5)]);
    assert_eq!(kinds(&twice), [MomentKind::NearDeathSurvival; 2]);
}

#[test]
fn near_death_is_dropped_by_elimination_without_firing() {
    let events = [at(10, 0, height(18)), eliminated(12, 0, Some(1), 2), at(14, 0, height(0))];
    let found = moments(2, &events);
    assert_eq!(kinds(&found), [MomentKind::Elimination]);
}

#[test]
fn elimination_reports_victim_cause_killer_and_placement() {
    let events = [
        eliminated(100, 2, Some(0), 3),
        Event {
            tick: 140,
            player: Some(1),
            kind: EventKind::Elimination {
                cause: EliminationCause::Forfeit,
                killer: None,
                placement: 2,
            },
        },
    ];
    let found = moments(3, &events);
    let data = |cause, killer, placement| MomentData::Elimination { cause, killer, placement };
    assert_eq!(
        found,
        [
            moment(100, 2, MomentKind::Elimination, data(EliminationCause::TopOut, Some(0), 3)),
            moment(140, 1, MomentKind::Elimination, data(EliminationCause::Forfeit, None, 2)),
        ]
    );
}

#[test]
fn moments_of_one_lock_come_in_the_reference_order() {
    let everything = Lock {
        perfect_clear: true,
        b2b_bonus: true,
        b2b_chain: 2,
        sent: 14,
        stack_height: 0,
        ..cleared(4)
    };
    let found = locks([
        height(18),                                                     // arms near death
        Lock { b2b_chain: 1, sent: 1, stack_height: 18, ..cleared(4) }, // starts chain and streak
        everything,
    ]);
    let last: Vec<MomentKind> = found.iter().filter(|m| m.tick == 30).map(|m| m.kind).collect();
    assert_eq!(
        last,
        [
            MomentKind::PerfectClear,
            MomentKind::Tetris,
            MomentKind::BackToBack,
            MomentKind::GarbageSurge,
            MomentKind::NearDeathSurvival
        ]
    );
}

#[test]
fn a_t_spin_lock_orders_t_spin_before_back_to_back() {
    let found = locks([
        Lock { b2b_chain: 1, ..t_spin(Spin::Full, 2) },
        Lock { b2b_chain: 2, b2b_bonus: true, ..t_spin(Spin::Full, 3) },
    ]);
    assert_eq!(
        kinds(&found),
        [MomentKind::TSpinDouble, MomentKind::TSpinTriple, MomentKind::BackToBack]
    );
}

/// Reference TV7: A (slot 0) at D = 14 + 4 = 18 against B at 6 + 0 = 6.
fn tv7_checkpoints() -> Vec<Event> {
    vec![at(100, 1, danger(6, 0)), at(110, 0, danger(14, 4)), at(300, 0, danger(3, 0))]
}

#[test]
fn tv7_comeback_for_the_winner_who_was_far_behind() {
    let mut events = tv7_checkpoints();
    events.push(eliminated(400, 1, Some(0), 2));
    events.push(game_end(400, &[1, 2]));
    let found = moments(2, &events);
    let data = MomentData::Comeback { worst_danger: 18, worst_tick: 110 };
    assert_eq!(found.last(), Some(&moment(400, 0, MomentKind::Comeback, data)), "{found:?}");
    assert_eq!(kinds(&found), [MomentKind::Elimination, MomentKind::Comeback]);
}

#[test]
fn comeback_reports_the_worst_qualifying_danger_and_when_it_was_first_reached() {
    let events = [
        at(10, 1, danger(2, 0)),
        at(20, 0, danger(12, 0)),
        at(30, 0, danger(15, 5)),
        at(40, 1, danger(2, 0)),
        at(50, 0, danger(13, 1)),
        game_end(60, &[1, 2]),
    ];
    let data = MomentData::Comeback { worst_danger: 20, worst_tick: 30 };
    assert_eq!(moments(2, &events), [moment(60, 0, MomentKind::Comeback, data)]);
}

#[test]
fn comeback_needs_a_unique_winner() {
    // TV7 then a double KO: both placement 1, a draw.
    let mut events = tv7_checkpoints();
    events.push(game_end(400, &[1, 1]));
    assert!(moments(2, &events).is_empty());
    // B wins: A's danger is no comeback for B.
    let mut events = tv7_checkpoints();
    events.push(game_end(400, &[2, 1]));
    assert!(moments(2, &events).is_empty());
}

#[test]
fn comeback_needs_the_gap_the_minimum_danger_and_strictly_the_worst() {
    let ends_with_a_win = |checkpoints: &[Event], players: u8| {
        let mut events = checkpoints.to_vec();
        let mut placements = vec![2; usize::from(players)];
        placements[0] = 1;
        events.push(game_end(500, &placements));
        moments(players, &events)
    };
    // Gap 7 < 8.
    assert!(ends_with_a_win(&[at(1, 1, danger(6, 0)), at(2, 0, danger(13, 0))], 2).is_empty());
    // Gap exactly 8 and D exactly 12 qualify.
    let edge = ends_with_a_win(&[at(1, 1, danger(4, 0)), at(2, 0, danger(12, 0))], 2);
    assert_eq!(kinds(&edge), [MomentKind::Comeback]);
    // D 11 < 12, gap 11.
    assert!(ends_with_a_win(&[at(2, 0, danger(11, 0))], 2).is_empty());
    // Tied for the worst with a third player: not strictly the worst.
    let tied = [at(1, 1, danger(18, 0)), at(2, 0, danger(18, 0))];
    assert!(ends_with_a_win(&tied, 3).is_empty());
    // Far behind the best but not behind everybody.
    let not_worst = [at(1, 1, danger(19, 0)), at(2, 0, danger(18, 0))];
    assert!(ends_with_a_win(&not_worst, 3).is_empty());
}

#[test]
fn comeback_needs_two_players_alive_at_the_checkpoint() {
    // B and C are out; A's later danger has nobody alive to be behind.
    let events = [
        eliminated(10, 1, None, 3),
        at(15, 2, danger(0, 0)),
        eliminated(20, 2, None, 2),
        at(30, 0, danger(18, 0)),
        game_end(30, &[1, 3, 2]),
    ];
    assert_eq!(kinds(&moments(3, &events)), [MomentKind::Elimination; 2]);
    // A player who never locked counts as D = 0.
    let events = [at(10, 0, danger(18, 2)), game_end(30, &[1, 2])];
    assert_eq!(kinds(&moments(2, &events)), [MomentKind::Comeback]);
    // An eliminated player's high stack no longer counts: A (D 12) is then
    // the worst of A and C (never locked, D 0).
    let events = [
        at(10, 1, danger(20, 0)),
        eliminated(11, 1, None, 3),
        at(12, 0, danger(12, 0)),
        game_end(30, &[1, 3, 2]),
    ];
    assert_eq!(kinds(&moments(3, &events)), [MomentKind::Elimination, MomentKind::Comeback]);
    // While B is alive, B is the worst and A is not behind everybody.
    let events = [at(10, 1, danger(20, 0)), at(12, 0, danger(12, 0)), game_end(30, &[1, 3, 2])];
    assert!(moments(3, &events).is_empty());
}

#[test]
fn tv4_attack_sequence_moments() {
    // Sent 1, 5, 1, 5, 0, 3, 15; B2B chain 1, 2, 0, 1, 1, 2, 3.
    let tetris =
        |chain, bonus, sent| Lock { b2b_chain: chain, b2b_bonus: bonus, sent, ..cleared(4) };
    let found = locks([
        Lock { ren: 0, cancelled: 3, attack: 4, ..tetris(1, false, 1) },
        Lock { ren: 1, attack: 5, b2b_chain: 2, b2b_bonus: true, sent: 5, ..t_spin(Spin::Full, 2) },
        Lock { ren: 2, attack: 1, sent: 1, ..cleared(1) },
        Lock { ren: 3, attack: 5, ..tetris(1, false, 5) },
        Lock { ren: -1, b2b_chain: 1, ..lock() },
        Lock { ren: 0, attack: 3, b2b_chain: 2, b2b_bonus: true, sent: 3, ..t_spin(Spin::Full, 1) },
        Lock { ren: 1, attack: 15, perfect_clear: true, ..tetris(3, true, 15) },
    ]);
    let surge = |streak_sent, streak_len| MomentData::GarbageSurge { streak_sent, streak_len };
    let b2b = |chain| MomentData::BackToBack { chain };
    let none = MomentData::None;
    assert_eq!(
        found,
        [
            moment(10, 0, MomentKind::Tetris, none),
            moment(20, 0, MomentKind::TSpinDouble, none),
            moment(20, 0, MomentKind::BackToBack, b2b(1)),
            moment(20, 0, MomentKind::GarbageSurge, surge(6, 2)),
            moment(40, 0, MomentKind::Tetris, none),
            // TV4's list for lock 6 names only back_to_back; a full T-spin
            // single (attack base 2) is also a t_spin_single by §9.2.
            moment(60, 0, MomentKind::TSpinSingle, none),
            moment(60, 0, MomentKind::BackToBack, b2b(1)),
            moment(70, 0, MomentKind::PerfectClear, MomentData::PerfectClear { lines: 4 }),
            moment(70, 0, MomentKind::Tetris, none),
            moment(70, 0, MomentKind::BackToBack, b2b(2)),
            moment(70, 0, MomentKind::GarbageSurge, surge(18, 2)),
        ]
    );
}

#[test]
fn tv5_garbage_surge_on_its_own() {
    let found = locks([1, 0, 2, 1, 4, 0].map(sending));
    let data = MomentData::GarbageSurge { streak_sent: 3, streak_len: 2 };
    assert_eq!(found, [moment(40, 0, MomentKind::GarbageSurge, data)]);
}

#[test]
fn tv6_near_death_survival() {
    let found = locks([12, 15, 17, 18, 14, 10, 9].map(height));
    // Armed at the 3rd checkpoint (tick 30), fired at the 7th (tick 70).
    let data = MomentData::NearDeathSurvival { peak_height: 18, danger_ticks: 40 };
    assert_eq!(found, [moment(70, 0, MomentKind::NearDeathSurvival, data)]);

    let mut events: Vec<Event> = [16, 17, 19]
        .iter()
        .enumerate()
        .map(|(n, &h)| at(10 * (n as u32 + 1), 0, height(h)))
        .collect();
    events.push(eliminated(35, 0, None, 2));
    assert_eq!(kinds(&moments(2, &events)), [MomentKind::Elimination]);
}

#[test]
fn game_start_resets_the_detector() {
    let mut state = MomentState::new(2);
    let mut found = Vec::new();
    let mut feed = |state: &mut MomentState, event: &Event| {
        detect_moments(state, event, &mut |moment| found.push(moment));
    };
    feed(&mut state, &at(10, 0, sending(2)));
    feed(&mut state, &at(20, 0, height(18)));
    feed(&mut state, &eliminated(25, 1, None, 2));
    feed(&mut state, &start(4));
    assert_eq!(state.players(), 4);
    assert!((0..4).all(|slot| state.is_alive(slot)) && !state.is_alive(4));
    // Neither the streak nor the danger survived the reset.
    feed(&mut state, &at(30, 0, sending(1)));
    feed(&mut state, &at(40, 0, height(0)));
    assert_eq!(kinds(&found), [MomentKind::Elimination]);
}

#[test]
fn malformed_streams_are_skipped_without_panicking() {
    let events = [
        Event { tick: 1, player: None, kind: EventKind::PieceLock(cleared(4)) },
        at(2, 7, cleared(4)), // slot 7 in a 2-player game
        Event { tick: 3, player: None, kind: EventKind::Input { seq: 1, bits: 1 } },
        Event { tick: 4, player: Some(9), kind: EventKind::GameEnd { results: ArrayVec::new() } },
        game_end(5, &[]),
        at(6, 0, Lock { b2b_bonus: true, b2b_chain: 0, ..cleared(2) }),
    ];
    let found = moments(2, &events);
    assert_eq!(found, [moment(6, 0, MomentKind::BackToBack, MomentData::BackToBack { chain: 0 })]);
    // A stream without game_start uses the player count it was given.
    assert_eq!(kinds(&detect_all(2, &[at(1, 1, cleared(4))])), [MomentKind::Tetris]);
    assert!(detect_all(0, &[at(1, 0, cleared(4))]).is_empty());
}
