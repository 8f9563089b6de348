//! The event writer: one services thread that drains every shard's tap,
//! turns each event into its stored JSON and appends it to the event log
//! under `game.{room_id}.events` with the message id `room-seq`. It polls
//! (the shards never wake it), syncs on the log's policy and enforces
//! retention once an hour. A failed append is counted and logged (at most
//! once a second), never retried in a loop: the shards are not slowed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::json::{event_json, events_subject, message_id};
use super::log::{Appended, EventLog};
use super::tap::{TapDrain, TapRecord};

/// Events taken from the taps per pass.
const BATCH_MAX: usize = 1_024;
/// How long the writer sleeps when the taps are empty.
const IDLE_POLL: Duration = Duration::from_millis(5);
/// How often old segments are looked at.
const RETENTION_EVERY: Duration = Duration::from_secs(3_600);
/// At most one warning per this long about failed appends.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// Every counter of the event path, for /api/stats: what the shards
/// handed over or dropped (queue full), what the writer stored, found
/// duplicate or failed to store.
#[derive(Debug)]
pub struct EventStats {
    pub taps: Vec<Arc<super::tap::TapStats>>,
    pub writer: Arc<WriterStats>,
}

impl EventStats {
    pub fn to_json(&self) -> serde_json::Value {
        let sum = |get: fn(&super::tap::TapStats) -> &AtomicU64| -> u64 {
            self.taps.iter().map(|stats| get(stats).load(Ordering::Relaxed)).sum()
        };
        serde_json::json!({
            "handed": sum(|stats| &stats.handed),
            "dropped": sum(|stats| &stats.dropped),
            "written": self.writer.written.load(Ordering::Relaxed),
            "duplicates": self.writer.duplicates.load(Ordering::Relaxed),
            "failed": self.writer.failed.load(Ordering::Relaxed),
        })
    }
}

/// What the writer did, for /api/stats and tests.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub written: AtomicU64,
    pub duplicates: AtomicU64,
    pub failed: AtomicU64,
}

pub struct EventWriter {
    stop: Arc<AtomicBool>,
    stats: Arc<WriterStats>,
    thread: Option<JoinHandle<()>>,
}

fn unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as i64)
}

impl EventWriter {
    /// Starts the thread; it owns the log until `stop`.
    pub fn start(mut log: EventLog, drain: TapDrain) -> std::io::Result<EventWriter> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(WriterStats::default());
        let (stop_flag, counters) = (Arc::clone(&stop), Arc::clone(&stats));
        let thread = std::thread::Builder::new().name("ludus-events".into()).spawn(move || {
            let mut batch = Vec::with_capacity(BATCH_MAX);
            let mut last_warning: Option<Instant> = None;
            let mut last_retention = Instant::now();
            loop {
                let stopping = stop_flag.load(Ordering::Acquire);
                batch.clear();
                let moved = drain.drain(BATCH_MAX, &mut batch);
                for record in batch.drain(..) {
                    write(&mut log, &record, &counters, &mut last_warning);
                }
                if let Err(error) = log.tick() {
                    warn(&mut last_warning, &error.to_string());
                }
                if last_retention.elapsed() >= RETENTION_EVERY {
                    last_retention = Instant::now();
                    match log.retain(unix_ms()) {
                        Ok(0) => {}
                        Ok(removed) => tracing::info!(removed, "event log: old segments deleted"),
                        Err(error) => tracing::warn!(%error, "event log retention failed"),
                    }
                }
                if moved == 0 {
                    if stopping {
                        break;
                    }
                    std::thread::sleep(IDLE_POLL);
                }
            }
            if let Err(error) = log.sync() {
                tracing::error!(%error, "event log: the last sync failed");
            }
        })?;
        Ok(EventWriter { stop, stats, thread: Some(thread) })
    }

    pub fn stats(&self) -> &Arc<WriterStats> {
        &self.stats
    }

    /// Writes what the taps hold, syncs, and ends the thread.
    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the event writer panicked");
            }
        }
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        self.finish();
    }
}

fn write(
    log: &mut EventLog,
    record: &TapRecord,
    stats: &WriterStats,
    last_warning: &mut Option<Instant>,
) {
    let payload = match serde_json::to_vec(&event_json(record)) {
        Ok(payload) => payload,
        Err(error) => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            return warn(last_warning, &error.to_string());
        }
    };
    let subject = events_subject(record.room_id);
    match log.append(&subject, &message_id(record), &payload, record.time_ms) {
        Ok(Appended::New(_)) => {
            stats.written.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Appended::Duplicate(_)) => {
            stats.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        Err(error) => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            warn(last_warning, &error.to_string());
        }
    }
}

fn warn(last: &mut Option<Instant>, error: &str) {
    if last.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
        *last = Some(Instant::now());
        tracing::warn!(error, "event log: events not written (counted in the writer's failed)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::wire::GameKind;
    use crate::services::events::log::LogOptions;
    use crate::services::events::subject::SubjectFilter;
    use crate::services::events::tap::taps;
    use crate::sim::event::{Event, EventKind};

    #[test]
    fn handed_events_reach_the_log_in_order_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = EventLog::open(dir.path(), LogOptions::default()).unwrap();
        let (taps, drain) = taps(2, 1_024);
        let writer = EventWriter::start(log, drain).unwrap();
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
