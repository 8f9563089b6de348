//! The game event stream's storage. Subjects are `game.{room_id}.events`
//! and `game.{room_id}.moments`, matched as NATS matches them, so the
//! embedded log here and NATS JetStream (the adapter for NATS_URL, not
//! written yet) hold the same stream.
//!
//! - [`log`]: the embedded append-only event log (segments, checksums,
//!   torn-tail recovery, deduplication by message id, retention by age).
//! - [`subject`]: subjects and NATS-style filters.
//! - [`crc32c`]: the records' checksum.
//! - [`tap`]: the shards' lock-free hand-off of events; [`writer`]: the
//!   thread that drains it into the log; [`json`]: the stored event shape.
//! - [`replay`]: the determinism audit of `ludus replay ROOM`.

pub mod crc32c;
pub mod json;
pub mod log;
pub mod replay;
pub mod subject;
pub mod tap;
pub mod writer;
