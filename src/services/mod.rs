//! services: the blocking side (see docs/ARCHITECTURE.md). Shards never
//! wait here: they submit jobs and get answers through their mailboxes.
//!
//! Built so far: [`pool`], the bounded worker pool every service runs on.

pub mod pool;
