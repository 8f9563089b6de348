//! Pure, deterministic games and the rooms that run them.
//!
//! No I/O, no clocks, no threads, no global state, no floats in Tetris. A
//! game is created from (config, seed, players), fed inputs, ticked, and
//! asked for its state hash, snapshots, events and results. The same seed
//! and the same inputs at the same ticks give the same state hash at every
//! tick: that is what replays, spectators and tests rely on.
//!
//! This module depends on nothing else of ours (see docs/ARCHITECTURE.md):
//! the reactor maps its types onto the wire protocol.

pub mod arena;
pub mod event;
pub mod hash;
pub mod moments;
pub mod room;
pub mod tetris;

pub use event::{Event, EventKind};
pub use hash::StateHasher;

/// Most players in one game (both games; the room size limit).
pub const MAX_PLAYERS: usize = 8;

/// A player's seat in a game, `0..players`. Game state refers to players by
/// slot; the room maps slots to accounts.
pub type Slot = u8;

/// What became of one input the room handed to a game.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputOutcome {
    /// Applied at the game's current tick.
    Applied,
    /// The player already used this tick's input budget; dropped and counted.
    OverBudget,
    /// Not a possible input (unknown bits, contradictory actions, a player
    /// who is not playing): rejected and counted.
    Rejected,
}

/// One game the room runs. Inputs are the protocol's input bits (see
/// `Input` in docs/PROTOCOL.md): arena bit 0 left, 1 right, 2 down, 3 up;
/// Tetris bit 0 move left, 1 move right, 2 soft drop held, 3 hard drop,
/// 4 rotate clockwise, 5 rotate counter-clockwise, 6 rotate 180, 7 hold.
pub trait Game {
    /// Room options of this game.
    type Config: Clone + core::fmt::Debug;

    /// Simulation ticks per second.
    const TICK_HZ: u16;

    /// A new game at tick 0. `players` is 1..=MAX_PLAYERS. Pushes the
    /// game_start event into `events`.
    fn new(config: &Self::Config, seed: u64, players: u8, events: &mut Vec<Event>) -> Self
    where
        Self: Sized;

    /// Applies one input of `slot` at the current tick. `seq` is the
    /// client's input sequence number, reported back as the player's last
    /// processed input.
    fn input(&mut self, slot: Slot, seq: u32, bits: u16, events: &mut Vec<Event>) -> InputOutcome;

    /// Advances one tick, pushing what happened into `events`. Does nothing
    /// once the game is finished.
    fn tick(&mut self, events: &mut Vec<Event>);

    /// Ticks simulated so far.
    fn current_tick(&self) -> u32;

    /// A hash of the whole game state; equal states give equal hashes on
    /// every platform.
    fn state_hash(&self) -> u64;

    /// True once the match ended (game_end was emitted).
    fn is_finished(&self) -> bool;

    /// A player leaves or disconnects for good: forfeit. Pushes events.
    fn forfeit(&mut self, slot: Slot, events: &mut Vec<Event>);
}
