//! services: the blocking side (see docs/ARCHITECTURE.md). Shards never
//! wait here: they submit jobs and get answers through their mailboxes.
//!
//! - [`pool`]: the bounded worker pool every service runs on.
//! - [`store`]: the storage port (Postgres | embedded SQLite) and migrations.
//! - [`auth`]: access tokens (JWT), password hashing, refresh tokens.
//! - [`accounts`]: register, login, guests, refresh rotation, logout.
//! - [`api`]: the REST API: a front on each shard, handlers on workers.
//! - [`events`]: the game event stream (JetStream | embedded log), its
//!   writer, consumers (projector, key moments) and replay.
//! - [`history`]: starts the stream, writer and consumers for `serve`.
//! - [`matchmaking`]: the quick-match queue (pure; shard 0 hosts it).

pub mod accounts;
pub mod api;
pub mod auth;
pub mod events;
pub mod history;
pub mod matchmaking;
pub mod pool;
pub mod store;
