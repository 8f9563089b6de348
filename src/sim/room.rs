//! A room: the members around one game and its lifecycle, as a sans-IO
//! state machine.
//!
//! waiting -> countdown -> running -> finished -> waiting (rematch) ... closed
//!
//! The room owns its game and decides when it starts, ticks and ends; it
//! knows players by id and slot, never by connection. Time comes in as
//! milliseconds of the owning shard's monotonic clock (the room never reads
//! a clock), so every decision is reproducible from its inputs. The driver
//! (the shard that owns the room) calls commands ([`Room::join`],
//! [`Room::leave`], [`Room::set_ready`], [`Room::input`], ...), then
//! [`Room::advance`] when [`Room::next_deadline_ms`] is due, and drains
//! [`Room::poll_event`] after each to tell the members.

use std::collections::VecDeque;

use arrayvec::ArrayVec;

use super::event::{Event, EventKind, PlayerResult};
use super::{Game, InputOutcome, Slot, MAX_PLAYERS};

/// Ticks a room runs in one `advance` call when the shard fell behind;
/// beyond that the schedule slips (counted) instead of bursting.
pub const MAX_CATCH_UP_TICKS: u32 = 8;
/// Room events queued for the driver before the oldest are dropped
/// (a driver drains after every call, so this is a safety bound).
pub const MAX_PENDING_ROOM_EVENTS: usize = 256;
/// Longest nickname kept, in bytes (the wire's limit).
pub const MAX_NICKNAME_BYTES: usize = 32;

/// Where the room is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Gathering players; members toggle ready.
    Waiting,
    /// Everyone is ready; the game starts when the countdown ends.
    Countdown,
    /// The game runs.
    Running,
    /// Results are out; the room returns to waiting after a pause.
    Finished,
    /// Empty: the driver drops it.
    Closed,
}

/// Room options; the game's own options are in `game`.
#[derive(Debug, Clone)]
pub struct RoomConfig<C> {
    /// Seats, 1..=MAX_PLAYERS.
    pub capacity: u8,
    /// Fewest members for a game to start (1 allows solo play).
    pub min_players: u8,
    pub countdown_ms: u32,
    /// How long a disconnected player keeps the seat during a game.
    pub reconnect_grace_ms: u32,
    /// How long results stay up before the room waits for a rematch.
    pub results_ms: u32,
    /// Spectators see the game this many ticks late (anti-ghosting).
    pub spectator_delay_ticks: u32,
    pub game: C,
}

impl<C: Default> RoomConfig<C> {
    pub fn new(capacity: u8) -> RoomConfig<C> {
        RoomConfig {
            capacity,
            min_players: capacity.min(2),
            countdown_ms: 3_000,
            reconnect_grace_ms: 30_000,
            results_ms: 5_000,
            spectator_delay_ticks: 0,
            game: C::default(),
        }
    }
}

/// A player holding a seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub player_id: u64,
    pub slot: Slot,
    pub nickname: String,
    pub ready: bool,
    pub connected: bool,
    /// When the player dropped, while `connected` is false.
    disconnected_at_ms: Option<u64>,
    /// Newest input sequence number applied for this member.
    pub last_input_seq: u32,
}

/// A seat held for a player a matchmaker placed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reservation {
    player_id: u64,
    token: u64,
    expires_at_ms: u64,
}

/// Why a member left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveReason {
    Left,
    Kicked,
    /// Disconnected for longer than the grace period.
    TimedOut,
}

/// What the driver tells the members about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    MemberJoined {
        slot: Slot,
    },
    /// The member came back within the grace period.
    MemberReconnected {
        slot: Slot,
    },
    MemberDisconnected {
        slot: Slot,
    },
    MemberLeft {
        player_id: u64,
        slot: Slot,
        reason: LeaveReason,
    },
    MemberReady {
        player_id: u64,
        ready: bool,
    },
    CountdownStarted {
        remaining_ms: u32,
    },
    CountdownCancelled,
    GameStarted {
        seed: u64,
    },
    GameEnded,
    /// Back to waiting for a rematch.
    Reopened,
    Closed,
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinError {
    Full,
    /// The game is running (spectate instead) or the room is closing.
    NotJoinable,
    /// A reservation token that does not match a held seat.
    BadReservation,
    AlreadyMember,
}

/// How a join went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    New(Slot),
    /// Same player, back in their seat within the grace period.
    Reconnected(Slot),
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoomCounters {
    pub inputs_applied: u64,
    pub inputs_duplicate: u64,
    pub inputs_over_budget: u64,
    pub inputs_rejected: u64,
    pub ticks: u64,
    /// Ticks skipped because the owner fell too far behind.
    pub ticks_slipped: u64,
    pub events_dropped: u64,
}

pub struct Room<G: Game> {
    config: RoomConfig<G::Config>,
    phase: Phase,
    members: ArrayVec<Member, MAX_PLAYERS>,
    reservations: ArrayVec<Reservation, MAX_PLAYERS>,
    spectators: u32,
    game: Option<G>,
    /// The game's events since the driver last drained them.
    game_events: Vec<Event>,
    events: VecDeque<RoomEvent>,
    /// Source of game seeds: the driver's seed, stepped per game.
    seed_state: u64,
    /// Countdown end / results end, by phase.
    phase_deadline_ms: Option<u64>,
    /// Monotonic time of tick 0 of the running game.
    game_started_ms: u64,
    /// Player ids by slot of the running game.
    game_players: ArrayVec<u64, MAX_PLAYERS>,
    results: ArrayVec<PlayerResult, MAX_PLAYERS>,
    counters: RoomCounters,
}

impl<G: Game> Room<G> {
    /// A new, empty, waiting room. `seed` comes from the server's RNG: the
    /// server owns every random choice of the games it runs.
    pub fn new(config: RoomConfig<G::Config>, seed: u64) -> Room<G> {
        assert!((1..=MAX_PLAYERS as u8).contains(&config.capacity), "capacity 1..=8");
        assert!(config.min_players >= 1 && config.min_players <= config.capacity);
        Room {
            config,
            phase: Phase::Waiting,
            members: ArrayVec::new(),
            reservations: ArrayVec::new(),
            spectators: 0,
            game: None,
            game_events: Vec::with_capacity(256),
            events: VecDeque::with_capacity(16),
            seed_state: seed,
            phase_deadline_ms: None,
            game_started_ms: 0,
            game_players: ArrayVec::new(),
            results: ArrayVec::new(),
            counters: RoomCounters::default(),
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn config(&self) -> &RoomConfig<G::Config> {
        &self.config
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn member(&self, player_id: u64) -> Option<&Member> {
        self.members.iter().find(|member| member.player_id == player_id)
    }

    pub fn game(&self) -> Option<&G> {
        self.game.as_ref()
    }

    /// Player ids by slot of the current (or last) game.
    pub fn game_players(&self) -> &[u64] {
        &self.game_players
    }

    /// Results of the last finished game, by slot.
    pub fn results(&self) -> &[PlayerResult] {
        &self.results
    }

    pub fn spectators(&self) -> u32 {
        self.spectators
    }

    pub fn counters(&self) -> RoomCounters {
        self.counters
    }

    /// Seats taken or held by a reservation.
    pub fn seats_taken(&self) -> usize {
        self.members.len() + self.reservations.len()
    }

    /// True when a new player could join now.
    pub fn is_joinable(&self) -> bool {
        self.phase == Phase::Waiting && self.seats_taken() < usize::from(self.config.capacity)
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<RoomEvent> {
        self.events.pop_front()
    }

    /// The game's events since the last call, in order.
    pub fn drain_game_events(&mut self) -> std::vec::Drain<'_, Event> {
        self.game_events.drain(..)
    }

    fn emit(&mut self, event: RoomEvent) {
        if self.events.len() >= MAX_PENDING_ROOM_EVENTS {
            self.events.pop_front();
            self.counters.events_dropped += 1;
        }
        self.events.push_back(event);
    }

    /// Holds a seat for `player_id` until `expires_at_ms`; a join with the
    /// same token takes it. A player already holding one gets it renewed
    /// with the new token. Returns false when no seat is free, the game is
    /// past waiting, or the player is a member.
    pub fn reserve(&mut self, player_id: u64, token: u64, expires_at_ms: u64) -> bool {
        if self.phase != Phase::Waiting || self.member(player_id).is_some() {
            return false;
        }
        if let Some(held) = self.reservations.iter_mut().find(|r| r.player_id == player_id) {
            held.token = token;
            held.expires_at_ms = expires_at_ms;
            return true;
        }
        if !self.is_joinable() {
            return false;
        }
        self.reservations.push(Reservation { player_id, token, expires_at_ms });
        true
    }

    /// Gives a held seat back; true if the player held one. A room left
    /// with nobody and nothing held closes.
    pub fn cancel_reservation(&mut self, player_id: u64, now_ms: u64) -> bool {
        let Some(index) = self.reservations.iter().position(|r| r.player_id == player_id) else {
            return false;
        };
        self.reservations.swap_remove(index);
        self.after_membership_change(now_ms);
        true
    }

    /// A player takes a seat (or comes back to theirs).
    pub fn join(
        &mut self,
        player_id: u64,
        nickname: &str,
        reservation: Option<u64>,
        now_ms: u64,
    ) -> Result<Joined, JoinError> {
        if let Some(index) = self.members.iter().position(|m| m.player_id == player_id) {
            let member = &mut self.members[index];
            if member.connected {
                return Err(JoinError::AlreadyMember);
            }
            member.connected = true;
            member.disconnected_at_ms = None;
            let slot = member.slot;
            self.emit(RoomEvent::MemberReconnected { slot });
            return Ok(Joined::Reconnected(slot));
        }
        if self.phase != Phase::Waiting {
            return Err(JoinError::NotJoinable);
        }
        let reserved = self.reservations.iter().position(|r| r.player_id == player_id);
        match (reserved, reservation) {
            (Some(index), Some(token)) if self.reservations[index].token == token => {
                self.reservations.swap_remove(index);
            }
            (Some(_), _) | (None, Some(_)) => return Err(JoinError::BadReservation),
            (None, None) => {
                if self.seats_taken() >= usize::from(self.config.capacity) {
                    return Err(JoinError::Full);
                }
            }
        }
        let slot = self.free_slot().ok_or(JoinError::Full)?;
        self.members.push(Member {
            player_id,
            slot,
            nickname: truncate_nickname(nickname).to_owned(),
            ready: false,
            connected: true,
            disconnected_at_ms: None,
            last_input_seq: 0,
        });
        let _ = now_ms;
        self.emit(RoomEvent::MemberJoined { slot });
        Ok(Joined::New(slot))
    }

    fn free_slot(&self) -> Option<Slot> {
        (0..self.config.capacity).find(|slot| self.members.iter().all(|m| m.slot != *slot))
    }

    /// A member leaves for good (asked to, or kicked). In a running game
    /// that is a forfeit.
    pub fn leave(&mut self, player_id: u64, reason: LeaveReason, now_ms: u64) -> bool {
        let Some(index) = self.members.iter().position(|m| m.player_id == player_id) else {
            return false;
        };
        let member = self.members.remove(index);
        if self.phase == Phase::Running {
            let slot = self.game_slot(player_id);
            if let (Some(game), Some(slot)) = (self.game.as_mut(), slot) {
                game.forfeit(slot, &mut self.game_events);
            }
        }
        self.emit(RoomEvent::MemberLeft { player_id, slot: member.slot, reason });
        if self.phase == Phase::Countdown {
            self.cancel_countdown();
        }
        self.after_membership_change(now_ms);
        true
    }

    /// The member's connection dropped. Before a game the seat is given up;
    /// during one it is kept for the grace period.
    pub fn disconnect(&mut self, player_id: u64, now_ms: u64) {
        let in_game = matches!(self.phase, Phase::Running | Phase::Finished);
        if !in_game {
            self.leave(player_id, LeaveReason::Left, now_ms);
            return;
        }
        if let Some(member) = self.members.iter_mut().find(|m| m.player_id == player_id) {
            if member.connected {
                member.connected = false;
                member.disconnected_at_ms = Some(now_ms);
                let slot = member.slot;
                self.emit(RoomEvent::MemberDisconnected { slot });
            }
        }
    }

    pub fn set_ready(&mut self, player_id: u64, ready: bool, now_ms: u64) -> bool {
        if !matches!(self.phase, Phase::Waiting | Phase::Countdown) {
            return false;
        }
        let Some(member) = self.members.iter_mut().find(|m| m.player_id == player_id) else {
            return false;
        };
        if member.ready == ready {
            return true;
        }
        member.ready = ready;
        self.emit(RoomEvent::MemberReady { player_id, ready });
        if !ready && self.phase == Phase::Countdown {
            self.cancel_countdown();
        }
        self.maybe_start_countdown(now_ms);
        true
    }

    pub fn spectator_joined(&mut self) {
        self.spectators = self.spectators.saturating_add(1);
    }

    pub fn spectator_left(&mut self) {
        self.spectators = self.spectators.saturating_sub(1);
    }

    fn game_slot(&self, player_id: u64) -> Option<Slot> {
        self.game_players.iter().position(|id| *id == player_id).map(|slot| slot as Slot)
    }

    /// A member's inputs, newest first, `inputs[i]` with sequence number
    /// `newest_seq - i` (the wire's redundancy). Applies, oldest first, the
    /// ones not applied yet. Returns how many were applied.
    pub fn input(&mut self, player_id: u64, newest_seq: u32, inputs: &[u16]) -> usize {
        if self.phase != Phase::Running {
            return 0;
        }
        let Some(slot) = self.game_slot(player_id) else { return 0 };
        let Some(member) = self.members.iter_mut().find(|m| m.player_id == player_id) else {
            return 0;
        };
        let Some(game) = self.game.as_mut() else { return 0 };
        let mut applied = 0;
        for (age, bits) in inputs.iter().enumerate().rev() {
            let Some(seq) = newest_seq.checked_sub(age as u32) else { continue };
            if seq == 0 || seq <= member.last_input_seq {
                self.counters.inputs_duplicate += 1;
                continue;
            }
            // Consumed even when refused: a resend must not get a second try.
            member.last_input_seq = seq;
            match game.input(slot, seq, *bits, &mut self.game_events) {
                InputOutcome::Applied => {
                    applied += 1;
                    self.counters.inputs_applied += 1;
                }
                InputOutcome::OverBudget => self.counters.inputs_over_budget += 1,
                InputOutcome::Rejected => self.counters.inputs_rejected += 1,
            }
        }
        applied
    }

    fn maybe_start_countdown(&mut self, now_ms: u64) {
        let enough = self.members.len() >= usize::from(self.config.min_players);
        if self.phase == Phase::Waiting && enough && self.members.iter().all(|m| m.ready) {
            self.phase = Phase::Countdown;
            self.phase_deadline_ms = Some(now_ms + u64::from(self.config.countdown_ms));
            self.emit(RoomEvent::CountdownStarted { remaining_ms: self.config.countdown_ms });
        }
    }

    fn cancel_countdown(&mut self) {
        self.phase = Phase::Waiting;
        self.phase_deadline_ms = None;
        self.emit(RoomEvent::CountdownCancelled);
    }

    fn after_membership_change(&mut self, now_ms: u64) {
        if self.members.is_empty() && self.reservations.is_empty() {
            self.close();
            return;
        }
        self.maybe_start_countdown(now_ms);
    }

    fn close(&mut self) {
        if self.phase != Phase::Closed {
            self.phase = Phase::Closed;
            self.phase_deadline_ms = None;
            self.game = None;
            self.emit(RoomEvent::Closed);
        }
    }

    /// The next time `advance` has work: a tick, a countdown or results
    /// end, a reservation or grace period expiring.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let tick = match (&self.game, self.phase) {
            (Some(game), Phase::Running) => Some(self.tick_time_ms(game.current_tick() + 1)),
            _ => None,
        };
        let reservation = self.reservations.iter().map(|r| r.expires_at_ms).min();
        let grace = self
            .members
            .iter()
            .filter_map(|m| m.disconnected_at_ms)
            .min()
            .map(|at| at + u64::from(self.config.reconnect_grace_ms));
        [tick, self.phase_deadline_ms, reservation, grace].into_iter().flatten().min()
    }

    /// When tick `tick` is due: tick 0 at the start, then 1000/TICK_HZ ms
    /// apart, computed from the start so rounding never accumulates.
    fn tick_time_ms(&self, tick: u32) -> u64 {
        self.game_started_ms + u64::from(tick) * 1000 / u64::from(G::TICK_HZ)
    }

    /// Does everything due by `now_ms`. `on_tick` sees the game and the
    /// events of each tick right after it ran (so the driver can send that
    /// tick's state): every event since the previous tick, so those of
    /// inputs, forfeits and the game's start come first. They are cleared
    /// after `on_tick`.
    pub fn advance(&mut self, now_ms: u64, mut on_tick: impl FnMut(&G, &[Event])) {
        self.expire(now_ms);
        match self.phase {
            Phase::Countdown if self.phase_deadline_ms.is_some_and(|at| now_ms >= at) => {
                self.start_game(now_ms);
            }
            Phase::Finished if self.phase_deadline_ms.is_some_and(|at| now_ms >= at) => {
                self.reopen(now_ms);
            }
            _ => {}
        }
        if self.phase != Phase::Running {
            return;
        }
        let tick_hz = u64::from(G::TICK_HZ);
        let mut ran = 0;
        let mut finished = false;
        let Room { game, game_events, counters, game_started_ms, results, .. } = self;
        let Some(game) = game.as_mut() else { return };
        loop {
            let next = game.current_tick() + 1;
            let due_ms = *game_started_ms + u64::from(next) * 1000 / tick_hz;
            if now_ms < due_ms {
                break;
            }
            if ran == MAX_CATCH_UP_TICKS {
                // Behind by more than the catch-up budget: move the schedule.
                let behind_ms = now_ms - due_ms;
                *game_started_ms += behind_ms;
                counters.ticks_slipped += behind_ms * tick_hz / 1000;
                break;
            }
            game.tick(game_events);
            ran += 1;
            counters.ticks += 1;
            on_tick(game, game_events);
            finished = game.is_finished();
            if finished {
                results.clear();
                if let Some(EventKind::GameEnd { results: end }) = game_events
                    .iter()
                    .rev()
                    .map(|e| &e.kind)
                    .find(|kind| matches!(kind, EventKind::GameEnd { .. }))
                {
                    *results = end.clone();
                }
            }
            // Handed over with their tick; history keeps them, not the room.
            game_events.clear();
            if finished {
                break;
            }
        }
        if finished {
            self.finish(now_ms);
        }
    }

    fn expire(&mut self, now_ms: u64) {
        self.reservations.retain(|r| r.expires_at_ms > now_ms);
        let grace = u64::from(self.config.reconnect_grace_ms);
        let expired: ArrayVec<u64, MAX_PLAYERS> = self
            .members
            .iter()
            .filter(|m| m.disconnected_at_ms.is_some_and(|at| now_ms >= at + grace))
            .map(|m| m.player_id)
            .collect();
        for player_id in expired {
            self.leave(player_id, LeaveReason::TimedOut, now_ms);
        }
        if self.phase == Phase::Waiting && self.members.is_empty() && self.reservations.is_empty() {
            self.close();
        }
    }

    fn start_game(&mut self, now_ms: u64) {
        self.seed_state = split_mix(self.seed_state);
        let seed = self.seed_state;
        self.members.sort_by_key(|m| m.slot);
        // Slots are compacted for the game: game slot i is the i-th member.
        self.game_players = self.members.iter().map(|m| m.player_id).collect();
        for (index, member) in self.members.iter_mut().enumerate() {
            member.slot = index as Slot;
            member.last_input_seq = 0;
        }
        self.game_events.clear();
        let players = self.members.len() as u8;
        self.game = Some(G::new(&self.config.game, seed, players, &mut self.game_events));
        self.game_started_ms = now_ms;
        self.phase = Phase::Running;
        self.phase_deadline_ms = None;
        self.results.clear();
        self.emit(RoomEvent::GameStarted { seed });
    }

    fn finish(&mut self, now_ms: u64) {
        self.phase = Phase::Finished;
        self.phase_deadline_ms = Some(now_ms + u64::from(self.config.results_ms));
        self.emit(RoomEvent::GameEnded);
    }

    /// Back to waiting: ready flags cleared, members still away removed.
    fn reopen(&mut self, now_ms: u64) {
        self.game = None;
        self.phase = Phase::Waiting;
        self.phase_deadline_ms = None;
        let gone: ArrayVec<u64, MAX_PLAYERS> =
            self.members.iter().filter(|m| !m.connected).map(|m| m.player_id).collect();
        for player_id in gone {
            self.leave(player_id, LeaveReason::TimedOut, now_ms);
        }
        if self.phase == Phase::Closed {
            return;
        }
        for member in &mut self.members {
            member.ready = false;
        }
        self.emit(RoomEvent::Reopened);
    }
}

fn truncate_nickname(nickname: &str) -> &str {
    let mut end = nickname.len().min(MAX_NICKNAME_BYTES);
    while !nickname.is_char_boundary(end) {
        end -= 1;
    }
    &nickname[..end]
}

/// One SplitMix64 step: the next game's seed from the last.
fn split_mix(state: u64) -> u64 {
    let mut mixed = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    mixed ^ (mixed >> 31)
}

#[cfg(test)]
mod tests;
