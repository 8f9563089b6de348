//! The room's lifecycle with a tiny stand-in game (the real games have
//! their own tests; here only the room's decisions matter).

use super::*;
use crate::sim::hash::StateHasher;

/// Sums its inputs; ends after `length` ticks (0 = never).
#[derive(Debug)]
struct CountGame {
    tick: u32,
    length: u32,
    players: u8,
    sums: [u32; MAX_PLAYERS],
    forfeited: [bool; MAX_PLAYERS],
    finished: bool,
}

impl Game for CountGame {
    type Config = u32;
    const TICK_HZ: u16 = 50;

    fn new(length: &u32, seed: u64, players: u8, events: &mut Vec<Event>) -> CountGame {
        events.push(Event { tick: 0, player: None, kind: EventKind::GameStart { players, seed } });
        CountGame {
            tick: 0,
            length: *length,
            players,
            sums: [0; MAX_PLAYERS],
            forfeited: [false; MAX_PLAYERS],
            finished: false,
        }
    }

    fn input(&mut self, slot: Slot, seq: u32, bits: u16, events: &mut Vec<Event>) -> InputOutcome {
        if bits > 100 {
            return InputOutcome::Rejected;
        }
        self.sums[usize::from(slot)] += u32::from(bits);
        events.push(Event {
            tick: self.tick,
            player: Some(slot),
            kind: EventKind::Input { seq, bits },
        });
        InputOutcome::Applied
    }

    fn tick(&mut self, events: &mut Vec<Event>) {
        if self.finished {
            return;
        }
        self.tick += 1;
        let alive = (0..self.players).filter(|s| !self.forfeited[usize::from(*s)]).count();
        if (self.length != 0 && self.tick >= self.length) || (self.players > 1 && alive <= 1) {
            self.finished = true;
            let results = (0..self.players)
                .map(|slot| PlayerResult { slot, placement: 1, ..PlayerResult::default() })
                .collect();
            events.push(Event {
                tick: self.tick,
                player: None,
                kind: EventKind::GameEnd { results },
            });
        }
    }

    fn current_tick(&self) -> u32 {
        self.tick
    }

    fn state_hash(&self) -> u64 {
        let mut hasher = StateHasher::new();
        hasher.u32(self.tick);
        self.sums.iter().for_each(|sum| hasher.u32(*sum));
        hasher.finish()
    }

    fn is_finished(&self) -> bool {
        self.finished
    }

    fn forfeit(&mut self, slot: Slot, _events: &mut Vec<Event>) {
        self.forfeited[usize::from(slot)] = true;
    }
}

fn room(capacity: u8, length: u32) -> Room<CountGame> {
    let mut config = RoomConfig::<u32>::new(capacity);
    config.game = length;
    config.countdown_ms = 1_000;
    config.results_ms = 2_000;
    config.reconnect_grace_ms = 10_000;
    Room::new(config, 7)
}

fn events(room: &mut Room<CountGame>) -> Vec<RoomEvent> {
    std::iter::from_fn(|| room.poll_event()).collect()
}

/// Two players in, both ready, countdown over: the game is running.
fn running_room(length: u32) -> Room<CountGame> {
    let mut room = room(2, length);
    room.join(1, "ann", None, 0).unwrap();
    room.join(2, "bob", None, 0).unwrap();
    room.set_ready(1, true, 0);
    room.set_ready(2, true, 0);
    room.advance(1_000, |_, _| {});
    assert_eq!(room.phase(), Phase::Running);
    events(&mut room);
    room
}

#[test]
fn full_lifecycle_from_waiting_to_rematch() {
    let mut room = room(2, 10);
    assert_eq!(room.join(1, "ann", None, 0), Ok(Joined::New(0)));
    assert_eq!(room.join(2, "bob", None, 0), Ok(Joined::New(1)));
    assert_eq!(room.join(3, "cat", None, 0), Err(JoinError::Full));
    room.set_ready(1, true, 0);
    assert_eq!(room.phase(), Phase::Waiting, "one ready is not enough");
    room.set_ready(2, true, 100);
    assert_eq!(room.phase(), Phase::Countdown);
    assert_eq!(room.next_deadline_ms(), Some(1_100));
    room.advance(1_099, |_, _| panic!("no tick before the countdown ends"));
    room.advance(1_100, |_, _| {});
    assert_eq!(room.phase(), Phase::Running);
    // 50 Hz: tick n is due 20 ms * n after the start.
    assert_eq!(room.next_deadline_ms(), Some(1_120));
    let mut ticks = Vec::new();
    room.advance(1_160, |game, _| ticks.push(game.current_tick()));
    assert_eq!(ticks, [1, 2, 3]);
    room.advance(1_400, |_, _| {});
    assert_eq!(room.phase(), Phase::Finished);
    assert_eq!(room.results().len(), 2);
    room.advance(3_399, |_, _| {});
    assert_eq!(room.phase(), Phase::Finished);
    room.advance(3_400, |_, _| {});
    assert_eq!(room.phase(), Phase::Waiting);
    assert!(room.members().iter().all(|m| !m.ready), "ready again for a rematch");
    let seen = events(&mut room);
    assert_eq!(
        seen,
        [
            RoomEvent::MemberJoined { slot: 0 },
            RoomEvent::MemberJoined { slot: 1 },
            RoomEvent::MemberReady { player_id: 1, ready: true },
            RoomEvent::MemberReady { player_id: 2, ready: true },
            RoomEvent::CountdownStarted { remaining_ms: 1_000 },
            RoomEvent::GameStarted { seed: room_seed_after(7, 1) },
            RoomEvent::GameEnded,
            RoomEvent::Reopened,
        ]
    );
}

fn room_seed_after(seed: u64, games: usize) -> u64 {
    (0..games).fold(seed, |state, _| split_mix(state))
}

#[test]
fn unready_or_leaving_cancels_the_countdown() {
    let mut room = room(2, 0);
    room.join(1, "ann", None, 0).unwrap();
    room.join(2, "bob", None, 0).unwrap();
    room.set_ready(1, true, 0);
    room.set_ready(2, true, 0);
    room.set_ready(2, false, 10);
    assert_eq!(room.phase(), Phase::Waiting);
    room.set_ready(2, true, 20);
    assert_eq!(room.phase(), Phase::Countdown);
    room.leave(2, LeaveReason::Left, 30);
    assert_eq!(room.phase(), Phase::Waiting);
    room.advance(5_000, |_, _| panic!("no game"));
    assert_eq!(room.phase(), Phase::Waiting);
}

#[test]
fn inputs_apply_once_oldest_first_despite_redundancy() {
    let mut room = running_room(0);
    // Newest first: seq 3 = 30, seq 2 = 20, seq 1 = 10.
    assert_eq!(room.input(1, 3, &[30, 20, 10]), 3);
    assert_eq!(room.input(1, 4, &[40, 30, 20]), 1, "only seq 4 is new");
    assert_eq!(room.input(1, 4, &[40]), 0);
    let sums = room.game().unwrap().sums;
    assert_eq!(sums[0], 100);
    let inputs: Vec<u32> = room
        .drain_game_events()
        .filter_map(|e| match e.kind {
            EventKind::Input { seq, .. } => Some(seq),
            _ => None,
        })
        .collect();
    assert_eq!(inputs, [1, 2, 3, 4]);
    let counters = room.counters();
    assert_eq!(counters.inputs_applied, 4);
    assert_eq!(counters.inputs_duplicate, 3);
    // A refused input is consumed, not retried by its resend.
    assert_eq!(room.input(2, 1, &[999]), 0);
    assert_eq!(room.input(2, 1, &[999]), 0);
    assert_eq!(room.counters().inputs_rejected, 1);
    assert_eq!(room.input(9, 1, &[1]), 0, "not a player of this game");
}

#[test]
fn a_disconnected_player_keeps_the_seat_for_the_grace_period() {
    let mut room = running_room(0);
    room.disconnect(2, 2_000);
    assert_eq!(events(&mut room), [RoomEvent::MemberDisconnected { slot: 1 }]);
    assert_eq!(room.next_deadline_ms().map(|at| at.min(12_000)), Some(1_020));
    assert_eq!(room.join(2, "bob", None, 5_000), Ok(Joined::Reconnected(1)));
    room.disconnect(2, 6_000);
    room.advance(15_999, |_, _| {});
    assert!(room.member(2).is_some());
    room.advance(16_000, |_, _| {});
    assert!(room.member(2).is_none(), "grace over: the seat is gone");
    let seen = events(&mut room);
    assert!(seen.contains(&RoomEvent::MemberLeft {
        player_id: 2,
        slot: 1,
        reason: LeaveReason::TimedOut
    }));
    // The forfeit ended the two-player game.
    assert_eq!(room.phase(), Phase::Finished);
}

#[test]
fn before_a_game_a_disconnect_frees_the_seat_and_an_empty_room_closes() {
    let mut room = room(2, 0);
    room.join(1, "ann", None, 0).unwrap();
    room.disconnect(1, 10);
    assert_eq!(room.phase(), Phase::Closed);
    assert_eq!(
        events(&mut room),
        [
            RoomEvent::MemberJoined { slot: 0 },
            RoomEvent::MemberLeft { player_id: 1, slot: 0, reason: LeaveReason::Left },
            RoomEvent::Closed
        ]
    );
}

#[test]
fn reservations_hold_seats_until_they_expire() {
    let mut room = room(2, 0);
    room.join(1, "ann", None, 0).unwrap();
    assert!(room.reserve(2, 0xfeed, 5_000));
    assert_eq!(room.join(3, "cat", None, 10), Err(JoinError::Full), "the last seat is held");
    assert_eq!(room.join(2, "bob", Some(0xbad), 10), Err(JoinError::BadReservation));
    assert_eq!(room.join(2, "bob", None, 10), Err(JoinError::BadReservation));
    assert_eq!(room.join(2, "bob", Some(0xfeed), 10), Ok(Joined::New(1)));
    room.leave(2, LeaveReason::Left, 20);
    assert!(room.reserve(4, 1, 1_000));
    room.advance(1_000, |_, _| {});
    assert_eq!(room.join(3, "cat", None, 1_001), Ok(Joined::New(1)), "expired: free again");
}

#[test]
fn a_held_seat_is_renewed_with_a_new_token_and_can_be_given_back() {
    let mut room = room(2, 0);
    assert!(room.reserve(2, 0xa, 5_000));
    assert!(room.reserve(2, 0xb, 9_000), "renewed, though the room counts it as taken");
    assert!(room.reserve(3, 0xc, 5_000));
    assert!(!room.reserve(4, 0xd, 5_000), "full");
    assert_eq!(room.join(2, "bob", Some(0xa), 10), Err(JoinError::BadReservation));
    room.advance(6_000, |_, _| {});
    assert_eq!(room.join(2, "bob", Some(0xb), 6_000), Ok(Joined::New(0)), "the renewal's expiry");
    assert!(!room.reserve(2, 0xe, 9_000), "a member holds no reservation");
    assert!(!room.cancel_reservation(2, 6_000));
    assert!(room.reserve(5, 0xf, 9_000));
    assert!(room.cancel_reservation(5, 6_000));
    assert_eq!(room.phase(), Phase::Waiting, "a member is still in");
    room.leave(2, LeaveReason::Left, 6_000);
    assert_eq!(room.phase(), Phase::Closed);

    let mut held_only = self::room(2, 0);
    assert!(held_only.reserve(7, 1, 5_000));
    assert!(held_only.cancel_reservation(7, 10));
    assert_eq!(held_only.phase(), Phase::Closed, "nobody in, nothing held");
}

#[test]
fn no_joining_a_running_game_and_slots_are_compacted_at_start() {
    let mut room = room(3, 0);
    room.join(1, "ann", None, 0).unwrap();
    room.join(2, "bob", None, 0).unwrap();
    room.join(3, "cat", None, 0).unwrap();
    room.leave(2, LeaveReason::Left, 0);
    room.set_ready(1, true, 0);
    room.set_ready(3, true, 0);
    room.advance(1_000, |_, _| {});
    assert_eq!(room.phase(), Phase::Running);
    assert_eq!(room.game_players(), [1, 3]);
    assert_eq!(room.member(3).unwrap().slot, 1);
    assert_eq!(room.join(4, "dan", None, 1_000), Err(JoinError::NotJoinable));
}

#[test]
fn a_stalled_owner_catches_up_a_bounded_number_of_ticks() {
    let mut room = running_room(0);
    let mut ran = 0;
    room.advance(1_000 + 20 * 100, |_, _| ran += 1);
    assert_eq!(ran, MAX_CATCH_UP_TICKS as usize);
    assert!(room.counters().ticks_slipped > 0);
    // The schedule moved: the next tick is due now, not a burst of the backlog.
    let next = room.next_deadline_ms().unwrap();
    assert!((3_000..=3_020).contains(&next), "next tick at {next}");
    let mut more = 0;
    room.advance(3_000, |_, _| more += 1);
    assert_eq!(more, 1);
}

#[test]
fn nicknames_are_cut_at_a_character_boundary() {
    let long = "é".repeat(40);
    let mut room = room(1, 0);
    room.join(1, &long, None, 0).unwrap();
    let kept = &room.member(1).unwrap().nickname;
    assert!(kept.len() <= MAX_NICKNAME_BYTES && kept.chars().all(|c| c == 'é'));
}
