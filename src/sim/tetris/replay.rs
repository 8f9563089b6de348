//! Replays: a match is its (config, seed, players) plus the inputs and
//! forfeits of its event log, each stamped with the tick it was applied at.
//!
//! Stamping contract: `current_tick()` is the number of ticks simulated.
//! Events of `input()` and `forfeit()` carry `tick = current_tick()`;
//! `tick()` first increments the counter and stamps its events with the new
//! value. So a replay is: for t in 0.., apply every logged input/forfeit
//! stamped t in log order, then call `tick()`.

use super::battle::TetrisBattle;
use super::config::TetrisConfig;
use crate::sim::event::{EliminationCause, Event, EventKind};
use crate::sim::{Game, InputOutcome, Slot};

/// Room for the events of one replayed tick before the buffer grows.
const REPLAY_EVENTS_CAPACITY: usize = 64;

/// What a logged step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayAction {
    Input { seq: u32, bits: u16 },
    Forfeit,
}

/// One logged input or forfeit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayInput {
    pub tick: u32,
    pub slot: Slot,
    pub action: ReplayAction,
}

impl ReplayInput {
    /// The replay entry an event records: `Input` events and eliminations
    /// by forfeit. Everything else is an output of the simulation.
    pub fn from_event(event: &Event) -> Option<ReplayInput> {
        let slot = event.player?;
        let action = match event.kind {
            EventKind::Input { seq, bits } => ReplayAction::Input { seq, bits },
            EventKind::Elimination { cause: EliminationCause::Forfeit, .. } => {
                ReplayAction::Forfeit
            }
            _ => return None,
        };
        Some(ReplayInput { tick: event.tick, slot, action })
    }
}

/// Why a log could not be replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// Entry `index` is stamped before the tick the replay had reached.
    OutOfOrder { index: usize },
    /// Entry `index` was an input the replayed game did not apply.
    NotApplied { index: usize, outcome: InputOutcome },
    /// Entry `index` was a forfeit of a player who was not playing.
    ForfeitIgnored { index: usize },
}

/// Replays `log` over `ticks` ticks, calling `on_tick(tick, state_hash)`
/// after every tick. Entries stamped with the final tick are applied after
/// the last tick. Returns the final game.
pub fn replay(
    config: &TetrisConfig,
    seed: u64,
    players: u8,
    log: &[ReplayInput],
    ticks: u32,
    mut on_tick: impl FnMut(u32, u64),
) -> Result<TetrisBattle, ReplayError> {
    let mut events = Vec::with_capacity(REPLAY_EVENTS_CAPACITY);
    let mut game = TetrisBattle::new(config, seed, players, &mut events);
    let mut next = 0;
    for _ in 0..ticks {
        next = apply_stamped(&mut game, log, next, &mut events)?;
        events.clear();
        game.tick(&mut events);
        on_tick(game.current_tick(), game.state_hash());
    }
    apply_stamped(&mut game, log, next, &mut events)?;
    Ok(game)
}

/// Applies the entries from `next` stamped with the current tick; returns
/// the index of the first entry not applied.
fn apply_stamped(
    game: &mut TetrisBattle,
    log: &[ReplayInput],
    mut next: usize,
    events: &mut Vec<Event>,
) -> Result<usize, ReplayError> {
    let now = game.current_tick();
    while let Some(entry) = log.get(next) {
        if entry.tick > now {
            break;
        }
        if entry.tick < now {
            return Err(ReplayError::OutOfOrder { index: next });
        }
        events.clear();
        match entry.action {
            ReplayAction::Input { seq, bits } => {
                let outcome = game.input(entry.slot, seq, bits, events);
                if outcome != InputOutcome::Applied {
                    return Err(ReplayError::NotApplied { index: next, outcome });
                }
            }
            ReplayAction::Forfeit => {
                game.forfeit(entry.slot, events);
                if events.is_empty() {
                    return Err(ReplayError::ForfeitIgnored { index: next });
                }
            }
        }
        next += 1;
    }
    Ok(next)
}
