//! Key moments of a Tetris battle, detected from the event stream
//! (reference tetris-battle.md §9.2): tetris, t_spin_single/double/triple,
//! back_to_back, garbage_surge, near_death_survival, elimination, comeback,
//! perfect_clear.
//!
//! Contract: a pure function of the events seen so far. [`detect_moments`]
//! takes one event and a small fixed-size [`MomentState`] per game and
//! hands each moment to a callback; it never allocates, so a room can run
//! it on every event as the game emits them, and history or replay tools
//! can run it later over a stored stream ([`detect_all`]) with the same
//! result.
//!
//! What the detector reads:
//! - `game_start` resets the state for its number of players, all alive.
//! - `piece_lock` is a **checkpoint**. Its fields give the per-lock moments,
//!   emitted in the reference's order: perfect_clear, tetris, t_spin_*,
//!   back_to_back, garbage_surge, near_death_survival. It also updates the
//!   player's danger `D = stack_height + pending` as last reported at its
//!   own latest lock; a player who has not locked yet counts as `D = 0`
//!   (an empty board; garbage aimed at it shows up in its own next lock).
//! - `elimination` emits an elimination moment for the victim, who is no
//!   longer alive; an armed near-death is dropped without firing.
//! - `game_end` emits comeback for the unique placement-1 player if it
//!   qualified at some checkpoint.
//!
//! Malformed streams (a lock without a player, a slot outside the game)
//! are skipped, never a panic: histories come from storage.

use super::event::{EliminationCause, Event, EventKind, Lock, Piece, PlayerResult, Spin};
use super::{Slot, MAX_PLAYERS};

/// A garbage surge needs at least this many lines sent over its streak...
pub const SURGE_MIN_LINES: u32 = 3;
/// ...by at least this many consecutive sending locks (one big attack is
/// covered by tetris, T-spin and perfect clear instead).
pub const SURGE_MIN_LOCKS: u32 = 2;
/// Stack height at which a player is in danger (stack above row 16).
pub const DANGER_H: u8 = 17;
/// Stack height at which a player in danger is safe again (below row 10).
pub const SAFE_H: u8 = 9;
/// How much worse than the best-placed opponent a comeback winner was.
pub const COMEBACK_GAP: u32 = 8;
/// How much danger a comeback winner was in, at least.
pub const COMEBACK_MIN_D: u32 = 12;

/// The kinds of key moment, in the reference's table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MomentKind {
    Tetris,
    TSpinSingle,
    TSpinDouble,
    TSpinTriple,
    BackToBack,
    GarbageSurge,
    NearDeathSurvival,
    Elimination,
    Comeback,
    PerfectClear,
}

impl MomentKind {
    pub const ALL: [MomentKind; 10] = [
        MomentKind::Tetris,
        MomentKind::TSpinSingle,
        MomentKind::TSpinDouble,
        MomentKind::TSpinTriple,
        MomentKind::BackToBack,
        MomentKind::GarbageSurge,
        MomentKind::NearDeathSurvival,
        MomentKind::Elimination,
        MomentKind::Comeback,
        MomentKind::PerfectClear,
    ];

    /// The moment's name in match histories and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            MomentKind::Tetris => "tetris",
            MomentKind::TSpinSingle => "t_spin_single",
            MomentKind::TSpinDouble => "t_spin_double",
            MomentKind::TSpinTriple => "t_spin_triple",
            MomentKind::BackToBack => "back_to_back",
            MomentKind::GarbageSurge => "garbage_surge",
            MomentKind::NearDeathSurvival => "near_death_survival",
            MomentKind::Elimination => "elimination",
            MomentKind::Comeback => "comeback",
            MomentKind::PerfectClear => "perfect_clear",
        }
    }
}

/// The payload of a moment (§9.2's payload column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MomentData {
    /// tetris and the T-spins carry nothing.
    None,
    PerfectClear {
        lines: u8,
    },
    /// `chain = b2b_chain − 1`: 1 for the first continuation.
    BackToBack {
        chain: u16,
    },
    /// The streak when it fired.
    GarbageSurge {
        streak_sent: u32,
        streak_len: u32,
    },
    /// Highest stack while in danger, and ticks from the checkpoint that
    /// armed it to the one that fired.
    NearDeathSurvival {
        peak_height: u8,
        danger_ticks: u32,
    },
    /// The victim is the moment's player.
    Elimination {
        cause: EliminationCause,
        killer: Option<Slot>,
        placement: u8,
    },
    /// The winner's worst qualifying danger `D` and the tick it was first
    /// reached.
    Comeback {
        worst_danger: u32,
        worst_tick: u32,
    },
}

/// One key moment: when, whose, what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub tick: u32,
    pub player: Slot,
    pub kind: MomentKind,
    pub data: MomentData,
}

/// A player in danger: since when, and how high the stack got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Danger {
    since_tick: u32,
    peak_height: u8,
}

/// The worst danger at which a player qualified for a comeback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ComebackMark {
    danger: u32,
    tick: u32,
}

/// What the detector remembers of one player.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Seat {
    alive: bool,
    /// As reported by the player's latest lock.
    stack_height: u8,
    pending: u16,
    streak_len: u32,
    streak_sent: u32,
    surge_fired: bool,
    danger: Option<Danger>,
    comeback: Option<ComebackMark>,
}

impl Seat {
    fn danger_value(&self) -> u32 {
        u32::from(self.stack_height) + u32::from(self.pending)
    }
}

/// Per-game detector state: fixed size, no heap.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MomentState {
    players: u8,
    seats: [Seat; MAX_PLAYERS],
}

impl MomentState {
    /// All `players` alive (clamped to `MAX_PLAYERS`). A `game_start`
    /// event resets the state the same way, so `default()` (no players)
    /// works for any stream that starts with one.
    pub fn new(players: u8) -> MomentState {
        let players = players.min(MAX_PLAYERS as u8);
        let mut state = MomentState { players, seats: [Seat::default(); MAX_PLAYERS] };
        for seat in &mut state.seats[..usize::from(players)] {
            seat.alive = true;
        }
        state
    }

    pub fn players(&self) -> u8 {
        self.players
    }

    pub fn is_alive(&self, slot: Slot) -> bool {
        self.seat(slot).is_some_and(|seat| seat.alive)
    }

    fn seat(&self, slot: Slot) -> Option<&Seat> {
        self.seats[..usize::from(self.players)].get(usize::from(slot))
    }

    fn seat_mut(&mut self, slot: Slot) -> Option<&mut Seat> {
        self.seats[..usize::from(self.players)].get_mut(usize::from(slot))
    }

    /// A checkpoint: if one alive player is strictly the worst off, far
    /// enough behind the best and in enough danger, remember it.
    fn note_checkpoint(&mut self, tick: u32) {
        let seats = &mut self.seats[..usize::from(self.players)];
        let mut alive = 0;
        let mut worst: Option<usize> = None;
        let mut worst_danger = 0;
        let mut worst_is_unique = false;
        let mut best_danger = u32::MAX;
        for (index, seat) in seats.iter().enumerate().filter(|(_, seat)| seat.alive) {
            let danger = seat.danger_value();
            alive += 1;
            best_danger = best_danger.min(danger);
            if worst.is_none() || danger > worst_danger {
                (worst, worst_danger, worst_is_unique) = (Some(index), danger, true);
            } else if danger == worst_danger {
                worst_is_unique = false;
            }
        }
        let Some(worst) = worst else { return };
        let qualifies = alive >= 2
            && worst_is_unique
            && worst_danger - best_danger >= COMEBACK_GAP
            && worst_danger >= COMEBACK_MIN_D;
        let mark = &mut seats[worst].comeback;
        if qualifies && mark.is_none_or(|mark| worst_danger > mark.danger) {
            *mark = Some(ComebackMark { danger: worst_danger, tick });
        }
    }
}

/// Feeds one event to the detector; every key moment it completes goes to
/// `out`, in the reference's order. No allocation.
pub fn detect_moments(state: &mut MomentState, event: &Event, out: &mut impl FnMut(Moment)) {
    match &event.kind {
        EventKind::GameStart { players, .. } => *state = MomentState::new(*players),
        EventKind::PieceLock(lock) => {
            if let Some(slot) = event.player {
                on_lock(state, event.tick, slot, lock, out);
            }
        }
        EventKind::Elimination { cause, killer, placement } => {
            if let Some(victim) = event.player {
                if let Some(seat) = state.seat_mut(victim) {
                    seat.alive = false;
                    seat.danger = None;
                }
                let data = MomentData::Elimination {
                    cause: *cause,
                    killer: *killer,
                    placement: *placement,
                };
                let kind = MomentKind::Elimination;
                out(Moment { tick: event.tick, player: victim, kind, data });
            }
        }
        EventKind::GameEnd { results } => on_game_end(state, event.tick, results, out),
        _ => {}
    }
}

/// Every moment of `events`, for history and replay tools (allocation is
/// fine there). `players` matters only if the stream has no `game_start`.
pub fn detect_all(players: u8, events: &[Event]) -> Vec<Moment> {
    let mut state = MomentState::new(players);
    let mut moments = Vec::new();
    for event in events {
        detect_moments(&mut state, event, &mut |moment| moments.push(moment));
    }
    moments
}

fn on_lock(
    state: &mut MomentState,
    tick: u32,
    player: Slot,
    lock: &Lock,
    out: &mut impl FnMut(Moment),
) {
    let Some(seat) = state.seat_mut(player) else { return };
    let mut emit = |kind, data| out(Moment { tick, player, kind, data });
    if lock.perfect_clear && lock.lines >= 1 {
        emit(MomentKind::PerfectClear, MomentData::PerfectClear { lines: lock.lines });
    }
    if lock.lines == 4 {
        emit(MomentKind::Tetris, MomentData::None);
    }
    if let Some(kind) = t_spin_kind(lock) {
        emit(kind, MomentData::None);
    }
    if lock.b2b_bonus {
        // The engine reports a chain of at least 2 with a bonus; a stored
        // stream that does not still yields a moment, never a panic.
        let chain = lock.b2b_chain.saturating_sub(1);
        emit(MomentKind::BackToBack, MomentData::BackToBack { chain });
    }
    if let Some(data) = surge(seat, lock.sent) {
        emit(MomentKind::GarbageSurge, data);
    }
    if let Some(data) = near_death(seat, tick, lock.stack_height) {
        emit(MomentKind::NearDeathSurvival, data);
    }
    seat.stack_height = lock.stack_height;
    seat.pending = lock.pending;
    state.note_checkpoint(tick);
}

/// Full T-spins only: minis never qualify.
fn t_spin_kind(lock: &Lock) -> Option<MomentKind> {
    if lock.placement.piece != Piece::T || lock.spin != Spin::Full {
        return None;
    }
    match lock.lines {
        1 => Some(MomentKind::TSpinSingle),
        2 => Some(MomentKind::TSpinDouble),
        3 => Some(MomentKind::TSpinTriple),
        _ => None,
    }
}

/// Advances the player's sending streak; fires once per streak.
fn surge(seat: &mut Seat, sent: u16) -> Option<MomentData> {
    if sent == 0 {
        (seat.streak_len, seat.streak_sent, seat.surge_fired) = (0, 0, false);
        return None;
    }
    seat.streak_len = seat.streak_len.saturating_add(1);
    seat.streak_sent = seat.streak_sent.saturating_add(u32::from(sent));
    let fires = !seat.surge_fired
        && seat.streak_len >= SURGE_MIN_LOCKS
        && seat.streak_sent >= SURGE_MIN_LINES;
    if !fires {
        return None;
    }
    seat.surge_fired = true;
    Some(MomentData::GarbageSurge { streak_sent: seat.streak_sent, streak_len: seat.streak_len })
}

/// Arms at a stack of `DANGER_H` or more, fires when an armed player is
/// back to `SAFE_H` or less. Players no longer alive never arm.
fn near_death(seat: &mut Seat, tick: u32, height: u8) -> Option<MomentData> {
    if !seat.alive {
        return None;
    }
    if height >= DANGER_H {
        let danger = seat.danger.get_or_insert(Danger { since_tick: tick, peak_height: height });
        danger.peak_height = danger.peak_height.max(height);
        return None;
    }
    if height > SAFE_H {
        return None;
    }
    let danger = seat.danger.take()?;
    let danger_ticks = tick.saturating_sub(danger.since_tick);
    Some(MomentData::NearDeathSurvival { peak_height: danger.peak_height, danger_ticks })
}

fn on_game_end(
    state: &MomentState,
    tick: u32,
    results: &[PlayerResult],
    out: &mut impl FnMut(Moment),
) {
    let mut winners = results.iter().filter(|result| result.placement == 1);
    let (Some(winner), None) = (winners.next(), winners.next()) else { return };
    let Some(mark) = state.seat(winner.slot).and_then(|seat| seat.comeback) else { return };
    let data = MomentData::Comeback { worst_danger: mark.danger, worst_tick: mark.tick };
    out(Moment { tick, player: winner.slot, kind: MomentKind::Comeback, data });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_with(dangers: &[(u8, u16)]) -> MomentState {
        let mut state = MomentState::new(dangers.len() as u8);
        for (seat, &(stack_height, pending)) in state.seats.iter_mut().zip(dangers) {
            (seat.stack_height, seat.pending) = (stack_height, pending);
        }
        state
    }

    #[test]
    fn the_state_is_small_and_lives_inline() {
        assert!(core::mem::size_of::<MomentState>() <= 8 * 48 + 8);
    }

    #[test]
    fn a_checkpoint_marks_only_a_unique_worst_player() {
        let mut state = state_with(&[(14, 4), (6, 0), (2, 0)]);
        state.note_checkpoint(7);
        assert_eq!(state.seats[0].comeback, Some(ComebackMark { danger: 18, tick: 7 }));
        assert!(state.seats[1..3].iter().all(|seat| seat.comeback.is_none()));

        let mut tied = state_with(&[(14, 4), (18, 0), (2, 0)]);
        tied.note_checkpoint(7);
        assert!(tied.seats.iter().all(|seat| seat.comeback.is_none()));
    }

    #[test]
    fn a_lower_danger_later_keeps_the_worst_mark() {
        let mut state = state_with(&[(20, 0), (0, 0)]);
        state.note_checkpoint(5);
        state.seats[0].stack_height = 13;
        state.note_checkpoint(9);
        state.seats[0].stack_height = 20;
        state.note_checkpoint(12);
        assert_eq!(state.seats[0].comeback, Some(ComebackMark { danger: 20, tick: 5 }));
    }

    #[test]
    fn near_death_arms_once_and_keeps_its_peak() {
        let mut seat = Seat { alive: true, ..Seat::default() };
        assert_eq!(near_death(&mut seat, 10, 17), None);
        assert_eq!(near_death(&mut seat, 20, 22), None);
        assert_eq!(near_death(&mut seat, 30, 18), None);
        assert_eq!(seat.danger, Some(Danger { since_tick: 10, peak_height: 22 }));
        let fired = near_death(&mut seat, 45, SAFE_H);
        assert_eq!(
            fired,
            Some(MomentData::NearDeathSurvival { peak_height: 22, danger_ticks: 35 })
        );
        assert_eq!(seat.danger, None);
    }
}
