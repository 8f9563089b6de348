//! Tetris battle: a deterministic, server-authoritative engine of the rules
//! in the project's rules reference (docs/GAMES.md describes what is
//! implemented and every choice made).
//!
//! What it owns: the boards, pieces, queues, timers and garbage of one match
//! of 1..=8 players. What it never does: I/O, clocks, threads, floats, or
//! heap allocation after creation (ticks and inputs only push events into
//! the caller's `Vec`). It implements [`crate::sim::Game`] at 60 Hz.
//!
//! Layout: `piece` (shapes), `srs` (kick tables), `bag` (MINSTD, 7-bag and
//! the per-player random streams), `board` (10x40 bitmask rows), `garbage`
//! (incoming queue), `scoring` (points, attack, REN/B2B), `gravity`
//! (fixed-point table, levels), `input` (bits and validation), `player`
//! (one player's moves and lock delay), `battle` (the match), `replay`.

mod bag;
mod battle;
mod board;
mod config;
mod garbage;
mod gravity;
mod input;
mod piece;
mod player;
mod replay;
mod scoring;
mod srs;

pub use bag::{match_seed, Minstd, MINSTD_SPAN, QUEUE_AHEAD_MIN};
pub use battle::{TetrisBattle, KILLER_WINDOW_TICKS};
pub use board::{BOARD_HEIGHT, BOARD_WIDTH, GARBAGE_CELL, VISIBLE_HEIGHT};
pub use config::{
    Mode, RotationSystem, TetrisConfig, DEFAULT_GARBAGE_CAP, DEFAULT_GARBAGE_DELAY_TICKS,
    DEFAULT_HOLE_CHANGE_PERCENT, DEFAULT_LOCK_DELAY_TICKS, DEFAULT_LOCK_RESETS,
    DEFAULT_MAX_INPUTS_PER_TICK, DEFAULT_SOFT_DROP_FACTOR, MARATHON_LINES, MAX_GARBAGE_CAP,
    MAX_GARBAGE_DELAY_TICKS, MAX_HOLE_CHANGE_PERCENT, MAX_INPUTS_PER_TICK, MAX_LOCK_DELAY_TICKS,
    MAX_LOCK_RESETS, MAX_SOFT_DROP_FACTOR, SPRINT_LINES,
};
pub use garbage::{Packet, GARBAGE_QUEUE_CAPACITY};
pub use gravity::{GRAVITY_20G, GRAVITY_BY_LEVEL, GRAVITY_ONE_ROW, MAX_LEVEL, VERSUS_LEVEL_TICKS};
pub use input::{
    INPUT_ALL, INPUT_HARD_DROP, INPUT_HOLD, INPUT_LEFT, INPUT_RIGHT, INPUT_ROTATE_180,
    INPUT_ROTATE_CCW, INPUT_ROTATE_CW, INPUT_SOFT_DROP,
};
pub use piece::{cells as piece_cells, SPAWN_X, SPAWN_Y};
pub use player::{Status as PlayerStatus, TetrisPlayer};
pub use replay::{replay, ReplayAction, ReplayError, ReplayInput};
