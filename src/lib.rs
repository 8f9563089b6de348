//! Ludus: a low-level multiplayer game server.
//!
//! Layers (dependencies point downwards only):
//! - [`proto`]: sans-IO codecs and state machines (the binary protocol).
//! - [`sim`]: pure, deterministic games and rooms (no I/O, no clocks).
//! - [`reactor`]: the per-core event loops that drive `proto` and `sim`.
//! - [`services`]: blocking workers (storage, events, artifacts), never on a shard.
//! - [`config`] and [`cli`]: one configuration type and the command line.

pub mod cli;
pub mod client;
pub mod config;
pub mod devcert;
pub mod load;
pub mod logging;
pub mod proto;
pub mod reactor;
pub mod services;
pub mod sim;
