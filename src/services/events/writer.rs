//! The event writer: one services thread that drains every shard's tap,
//! turns each event into its stored JSON and publishes it to the event
//! stream (the embedded log, or JetStream with NATS_URL) under
//! `game.{room_id}.events` with the message id `room-seq`.
//!
//! Fire-and-forget for the game: the shards never wait for it. While the
//! stream is unavailable (NATS down or slow) the writer keeps the events
//! in a bounded buffer and retries with backoff, the same message ids
//! making a retry that had in fact landed a duplicate, not a second copy.
//! Past the bound events are dropped, counted and warned about (at most
//! once a second): losses are visible in /api/stats, never hidden.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::json::{encode_event, event_json, events_subject, message_id, GAME_END_MATCH_FIELDS};
use super::service_thread::ServiceThread;
use super::stream::{EventSink, Outgoing, StreamError};
use super::tap::{TapDrain, TapRecord};
use crate::sim::event::EventKind;

/// Events taken from the taps, and published, per pass.
const BATCH_MAX: usize = 1_024;
/// Events buffered while the stream is unavailable; more are dropped.
pub const PENDING_MAX: usize = 262_144;
/// How long the writer sleeps when it has nothing to do.
const IDLE_POLL: Duration = Duration::from_millis(5);
/// Retry backoff while the stream is unavailable.
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// At stop, how long the writer keeps retrying what it still holds.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// At most one warning per this long.
const WARN_EVERY: Duration = Duration::from_secs(1);
/// Matches in progress whose start the writer remembers, at most.
const MATCHES_TRACKED_MAX: usize = 1 << 20;
/// Room for a typical event's JSON (an input is about 80 bytes), so most
/// payloads are written without growing.
const PAYLOAD_CAPACITY: usize = 128;

/// Every counter of the event path, for /api/stats: what the shards
/// handed over or dropped (queue full), what the writer stored, found
/// duplicate, failed to store, dropped, and holds.
#[derive(Debug)]
pub struct EventStats {
    pub taps: Vec<Arc<super::tap::TapStats>>,
    pub writer: Arc<WriterStats>,
    /// The durable consumers (projector, moment detector), by name.
    pub consumers: Vec<(&'static str, Arc<super::consumers::ConsumerStats>)>,
}

impl EventStats {
    pub fn to_json(&self) -> serde_json::Value {
        let sum = |get: fn(&super::tap::TapStats) -> &AtomicU64| -> u64 {
            self.taps.iter().map(|stats| get(stats).load(Ordering::Relaxed)).sum()
        };
        let writer = &self.writer;
        serde_json::json!({
            "stream": writer.kind.get().copied().unwrap_or("none"),
            "handed": sum(|stats| &stats.handed),
            "dropped": sum(|stats| &stats.dropped),
            "written": writer.written.load(Ordering::Relaxed),
            "duplicates": writer.duplicates.load(Ordering::Relaxed),
            "failed": writer.failed.load(Ordering::Relaxed),
            "buffer_dropped": writer.buffer_dropped.load(Ordering::Relaxed),
            "pending": writer.pending.load(Ordering::Relaxed),
            "retries": writer.retries.load(Ordering::Relaxed),
            "available": writer.available.load(Ordering::Relaxed),
            "consumers": self
                .consumers
                .iter()
                .map(|(name, stats)| ((*name).to_owned(), stats.to_json()))
                .collect::<serde_json::Map<_, _>>(),
        })
    }
}

/// What the writer did, for /api/stats and tests.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub kind: std::sync::OnceLock<&'static str>,
    /// Stored by the stream.
    pub written: AtomicU64,
    /// Found stored already (a retry of a publish that had landed).
    pub duplicates: AtomicU64,
    /// Refused by the stream (not retryable), or not encodable.
    pub failed: AtomicU64,
    /// Dropped because the buffer was full, or still held at stop.
    pub buffer_dropped: AtomicU64,
    /// Held now, waiting for the stream.
    pub pending: AtomicU64,
    /// Publishes that found the stream unavailable (each retried).
    pub retries: AtomicU64,
    /// The last publish reached the stream.
    pub available: AtomicBool,
}

pub struct EventWriter {
    stats: Arc<WriterStats>,
    thread: ServiceThread,
}

fn unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as i64)
}

impl EventWriter {
    /// Starts the thread; it owns the sink until `stop`.
    pub fn start(sink: Box<dyn EventSink>, drain: TapDrain) -> std::io::Result<EventWriter> {
        let stats = Arc::new(WriterStats::default());
        let _ = stats.kind.set(sink.kind());
        stats.available.store(true, Ordering::Relaxed);
        let counters = Arc::clone(&stats);
        let thread = ServiceThread::spawn("ludus-events".into(), move |stop| {
            Writer::new(sink, drain, counters).run(stop)
        })?;
        Ok(EventWriter { stats, thread })
    }

    pub fn stats(&self) -> &Arc<WriterStats> {
        &self.stats
    }

    /// Publishes what the taps hold (retrying for a short grace), flushes,
    /// and ends the thread.
    pub fn stop(self) {
        self.thread.stop();
    }
}

struct Writer {
    sink: Box<dyn EventSink>,
    drain: TapDrain,
    stats: Arc<WriterStats>,
    pending: VecDeque<Outgoing>,
    /// (started_at_ms, seed) of each room's match in progress, so that
    /// game_end is self-contained for the projector.
    matches: HashMap<u64, (i64, String)>,
    retry_at: Option<Instant>,
    backoff: Duration,
    last_warning: Option<Instant>,
    taken: Vec<TapRecord>,
}

impl Writer {
    fn new(sink: Box<dyn EventSink>, drain: TapDrain, stats: Arc<WriterStats>) -> Writer {
        Writer {
            sink,
            drain,
            stats,
            pending: VecDeque::new(),
            matches: HashMap::new(),
            retry_at: None,
            backoff: RETRY_MIN,
            last_warning: None,
            taken: Vec::with_capacity(BATCH_MAX),
        }
    }

    fn run(mut self, stop: &AtomicBool) {
        let mut stop_deadline: Option<Instant> = None;
        loop {
            let stopping = stop.load(Ordering::Acquire);
            if stopping && stop_deadline.is_none() {
                stop_deadline = Some(Instant::now() + STOP_GRACE);
            }
            let moved = self.take();
            let published = self.publish();
            if let Err(error) = self.sink.tick(unix_ms()) {
                self.warn(&error.to_string());
            }
            self.stats.pending.store(self.pending.len() as u64, Ordering::Relaxed);
            if moved == 0 && published == 0 {
                let drained = self.pending.is_empty();
                if stopping && (drained || stop_deadline.is_some_and(|at| Instant::now() >= at)) {
                    break;
                }
                std::thread::sleep(IDLE_POLL);
            }
        }
        let lost = self.pending.len() as u64 + self.drain_rest();
        if lost > 0 {
            self.stats.buffer_dropped.fetch_add(lost, Ordering::Relaxed);
            tracing::error!(lost, "event writer: the stream was unavailable at stop; events lost");
        }
        self.stats.pending.store(0, Ordering::Relaxed);
        if let Err(error) = self.sink.flush() {
            tracing::error!(%error, "event stream: the last flush failed");
        }
    }

    /// Moves events from the taps into the buffer; returns how many.
    fn take(&mut self) -> usize {
        self.taken.clear();
        let moved = self.drain.drain(BATCH_MAX, &mut self.taken);
        let taken = std::mem::take(&mut self.taken);
        for record in &taken {
            let Some(outgoing) = self.encode(record) else { continue };
            if self.pending.len() >= PENDING_MAX {
                self.stats.buffer_dropped.fetch_add(1, Ordering::Relaxed);
                self.warn("the stream is unavailable and the buffer is full: events dropped");
                continue;
            }
            self.pending.push_back(outgoing);
        }
        self.taken = taken;
        moved
    }

    /// What the taps still hold at stop (not published: counted lost).
    fn drain_rest(&mut self) -> u64 {
        let mut lost = 0;
        loop {
            self.taken.clear();
            let moved = self.drain.drain(BATCH_MAX, &mut self.taken);
            if moved == 0 {
                return lost;
            }
            lost += moved as u64;
        }
    }

    fn encode(&mut self, record: &TapRecord) -> Option<Outgoing> {
        let mut payload = Vec::with_capacity(PAYLOAD_CAPACITY);
        let encoded = match &record.event.kind {
            EventKind::GameEnd { .. } => {
                serde_json::to_writer(&mut payload, &self.game_end_json(record))
            }
            kind => {
                if let EventKind::GameStart { seed, .. } = kind {
                    if self.matches.len() < MATCHES_TRACKED_MAX {
                        self.matches.insert(record.room_id, (record.time_ms, seed.to_string()));
                    }
                }
                encode_event(record, &mut payload)
            }
        };
        match encoded {
            Ok(()) => Some(Outgoing {
                subject: events_subject(record.room_id),
                msg_id: message_id(record),
                payload,
                time_ms: record.time_ms,
            }),
            Err(error) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                self.warn(&error.to_string());
                None
            }
        }
    }

    /// A game_end with what the writer adds: the match's start, end and seed.
    fn game_end_json(&mut self, record: &TapRecord) -> Value {
        let mut value = event_json(record);
        let started = self.matches.remove(&record.room_id);
        if let Value::Object(data) = &mut value["data"] {
            let (started_ms, seed) = match started {
                Some((at, seed)) => (Value::from(at), Value::from(seed)),
                None => (Value::Null, Value::Null),
            };
            let [started_field, ended_field, seed_field] = GAME_END_MATCH_FIELDS;
            data.insert(started_field.into(), started_ms);
            data.insert(ended_field.into(), Value::from(record.time_ms));
            data.insert(seed_field.into(), seed);
        }
        value
    }

    /// Publishes one batch from the buffer's front, unless backing off;
    /// returns how many events left the buffer.
    fn publish(&mut self) -> usize {
        if self.pending.is_empty() || self.retry_at.is_some_and(|at| Instant::now() < at) {
            return 0;
        }
        let count = self.pending.len().min(BATCH_MAX);
        let batch = &self.pending.make_contiguous()[..count];
        match self.sink.publish(batch) {
            Ok(published) => {
                self.stats.written.fetch_add(published.stored, Ordering::Relaxed);
                self.stats.duplicates.fetch_add(published.duplicates, Ordering::Relaxed);
                if !self.stats.available.swap(true, Ordering::Relaxed) {
                    tracing::info!(held = self.pending.len(), "event stream: available again");
                }
                self.retry_at = None;
                self.backoff = RETRY_MIN;
                self.pending.drain(..count);
                count
            }
            Err(error) if error.is_retryable() => {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                self.stats.available.store(false, Ordering::Relaxed);
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(RETRY_MAX);
                self.warn(&error.to_string());
                0
            }
            Err(error) => {
                self.fail(count, &error);
                count
            }
        }
    }

    /// The stream refused the batch: publish its events one by one so one
    /// bad event does not take the others with it.
    fn fail(&mut self, count: usize, error: &StreamError) {
        let batch: Vec<Outgoing> = self.pending.drain(..count).collect();
        if count == 1 {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            return self.warn(&error.to_string());
        }
        for event in batch {
            match self.sink.publish(std::slice::from_ref(&event)) {
                Ok(published) => {
                    self.stats.written.fetch_add(published.stored, Ordering::Relaxed);
                    self.stats.duplicates.fetch_add(published.duplicates, Ordering::Relaxed);
                }
                Err(error) => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    self.warn(&error.to_string());
                }
            }
        }
    }

    fn warn(&mut self, error: &str) {
        if self.last_warning.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            self.last_warning = Some(Instant::now());
            tracing::warn!(
                error,
                held = self.pending.len(),
                "event stream: events not stored yet (see /api/stats events)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::wire::GameKind;
    use crate::services::events::log::{EventLog, LogOptions};
    use crate::services::events::stream::{EmbeddedStream, SharedLog};
    use crate::services::events::subject::SubjectFilter;
    use crate::services::events::tap::taps;
    use crate::sim::event::{Event, EventKind};

    #[test]
    fn handed_events_reach_the_log_in_order_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = EventLog::open(dir.path(), LogOptions::default()).unwrap();
        let (taps, drain) = taps(2, 1_024);
        let sink = EmbeddedStream::new(SharedLog::new(log, dir.path()));
        let writer = EventWriter::start(Box::new(sink), drain).unwrap();
        for seq in 1..=100u64 {
            let room_id = if seq % 2 == 0 { 1 << 48 | 1 } else { 1 };
            let tap = &taps[(room_id >> 48) as usize];
            let event = Event {
                tick: seq as u32,
                player: Some(0),
                kind: EventKind::Input { seq: seq as u32, bits: 1 },
            };
            let record = TapRecord {
                room_id,
                game: GameKind::Tetris,
                seq,
                player_id: Some(42),
                time_ms: 1_000,
                players: None,
                event,
            };
            assert!(tap.hand(record));
        }
        let stats = Arc::clone(writer.stats());
        writer.stop();
        assert_eq!(stats.written.load(Ordering::Relaxed), 100);
        let (mut log, recovery) = EventLog::open(dir.path(), LogOptions::default()).unwrap();
        assert_eq!(recovery.records, 100);
        let mut room = Vec::new();
        log.read(1, &SubjectFilter::new("game.1.events").unwrap(), usize::MAX, &mut room).unwrap();
        assert_eq!(room.len(), 50);
        let ticks: Vec<u64> = room
            .iter()
            .map(|event| {
                let value: serde_json::Value = serde_json::from_slice(&event.payload).unwrap();
                assert_eq!(
                    (value["type"].as_str(), value["player_id"].as_str()),
                    (Some("input"), Some("42"))
                );
                value["tick"].as_u64().unwrap()
            })
            .collect();
        assert_eq!(ticks, (1..=100).step_by(2).collect::<Vec<u64>>());
        assert_eq!(room[0].msg_id, "1-1");
    }
}
