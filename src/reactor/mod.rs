//! The I/O side: per-core shard event loops on mio, their sockets, timers and
//! mailboxes, and the QUIC and TLS drivers. Everything here runs on a shard
//! thread and never blocks; work that would block is sent to `services`.

pub mod game;
pub mod host;
pub mod mailbox;
pub mod quic;
pub mod server;
pub mod shard;
pub mod sys;
pub mod tcp;
pub mod timer;
pub mod udp;
pub mod web;
