//! The I/O side: per-core shard event loops on mio, their sockets, timers and
//! mailboxes, and the QUIC and TLS drivers. Everything here runs on a shard
//! thread and never blocks; work that would block is sent to `services`.

pub mod mailbox;
pub mod timer;
