//! The game event stream. Subjects are `game.{room_id}.events` and
//! `game.{room_id}.moments`, matched as NATS matches them, so the embedded
//! log and NATS JetStream (NATS_URL) hold the same stream, behind one port.
//!
//! - [`stream`]: the port (sink, durable consumers, readers) and its
//!   embedded adapter; [`jetstream`]: the JetStream adapter.
//! - [`log`]: the embedded append-only event log (segments, checksums,
//!   torn-tail recovery, deduplication by message id, retention by age).
//! - [`subject`]: subjects and NATS-style filters; [`crc32c`]: the
//!   records' checksum.
//! - [`tap`]: the shards' lock-free hand-off of events; [`writer`]: the
//!   thread that publishes them (buffered, retried, losses counted);
//!   [`json`]: the stored event shape; [`parse`]: back into sim events.
//! - [`consumers`]: the consumer threads; [`projector`]: game_end into
//!   matches and match_players; [`moments`] and [`moment_publisher`]: the
//!   key moment detector publishing to `.moments`.
//! - [`replay`]: the determinism audit of `ludus replay ROOM`.

pub mod consumers;
pub mod crc32c;
pub mod jetstream;
pub mod json;
pub mod log;
pub mod moment_publisher;
pub mod moments;
pub mod parse;
pub mod projector;
pub mod replay;
pub mod service_thread;
pub mod stream;
pub mod subject;
pub mod tap;
pub mod writer;
