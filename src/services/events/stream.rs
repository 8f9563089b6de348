//! The event stream port: what the writer, the consumers (projector, key
//! moment detector) and the replay readers need from a stream, with two
//! adapters: the embedded log here ([`EmbeddedStream`], the default) and
//! NATS JetStream ([`super::jetstream`], with NATS_URL). Both keep the
//! same model: one stream (`GAME_EVENTS`, subjects `game.>`), sequences
//! from 1, message ids that deduplicate a retried publish, durable
//! consumers that deliver every event at least once, in stream order, and
//! resume after the last one acknowledged.
//!
//! All calls block: they run on services threads, never on a shard.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::log::{Appended, EventLog, LogError, LogReader, StoredEvent};
use super::subject::{SubjectError, SubjectFilter};

/// The stream's name (JetStream's; the embedded log is one stream too).
pub const STREAM_NAME: &str = "GAME_EVENTS";
/// Every subject the stream holds.
pub const STREAM_SUBJECTS: &str = "game.>";
/// What the consumers read: game events, never moments.
pub const EVENTS_FILTER: &str = "game.*.events";
/// The durable consumers' names.
pub const PROJECTOR: &str = "projector";
pub const MOMENT_DETECTOR: &str = "moments";

/// One event to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub subject: String,
    /// Makes a retried publish a duplicate (JetStream's Nats-Msg-Id).
    pub msg_id: String,
    pub payload: Vec<u8>,
    pub time_ms: i64,
}

/// How a publish ended, counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub stored: u64,
    pub duplicates: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Retryable: the stream cannot be reached now (NATS down, a timeout).
    /// What was being published may or may not be stored: publish it again
    /// with the same message ids.
    #[error("the event stream is unavailable: {0}")]
    Unavailable(String),
    /// Not retryable: the stream refused this (bad subject, too large,
    /// a configuration it cannot take).
    #[error("the event stream refused: {0}")]
    Refused(String),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Subject(#[from] SubjectError),
    #[error("consumer state at {path}: {source}")]
    Cursor { path: PathBuf, source: std::io::Error },
}

impl StreamError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StreamError::Unavailable(_))
    }
}

/// The publishing side (the event writer's).
pub trait EventSink: Send {
    /// "embedded" or "jetstream", for logs and /api/stats.
    fn kind(&self) -> &'static str;
    /// Stores `batch` in order. On `Err` nothing is known about the batch:
    /// retry it whole (the message ids make that safe) or drop it.
    fn publish(&mut self, batch: &[Outgoing]) -> Result<Published, StreamError>;
    /// Housekeeping, called often: the fsync policy, retention.
    fn tick(&mut self, now_ms: i64) -> Result<(), StreamError>;
    /// Makes everything published durable (at stop).
    fn flush(&mut self) -> Result<(), StreamError>;
}

/// A durable consumer: every event of its filter, at least once, in
/// stream order, from the one after the last acknowledged.
pub trait EventConsumer: Send {
    /// Appends up to `max` events to `out`, waiting at most `wait` for the
    /// first. An event fetched and not acknowledged comes again (after a
    /// restart, or JetStream's ack wait).
    fn fetch(
        &mut self,
        max: usize,
        wait: Duration,
        out: &mut Vec<StoredEvent>,
    ) -> Result<(), StreamError>;
    /// The event with this sequence, and every one fetched before it, is
    /// done with (cumulative: one ack per batch suffices).
    fn ack(&mut self, seq: u64) -> Result<(), StreamError>;
    /// Makes the acknowledgements durable (at stop; the embedded adapter
    /// saves its position at most every [`CURSOR_SAVE_EVERY`] otherwise).
    fn flush(&mut self) -> Result<(), StreamError>;
}

/// Reads a subject's events from a sequence on (replays, the audit).
pub trait EventReader: Send {
    /// Appends up to `max` events from `from_seq` on whose subject matches
    /// `filter`; returns the sequence to read from next. An empty read at
    /// the stream's end returns `from_seq` (or past it).
    fn read(
        &mut self,
        filter: &SubjectFilter,
        from_seq: u64,
        max: usize,
        out: &mut Vec<StoredEvent>,
    ) -> Result<u64, StreamError>;

    /// A sequence to start reading from for events stored at or after
    /// `time_ms` (a hint: reading from it misses none of them). 1 when the
    /// stream cannot tell.
    fn seq_near_time(&mut self, _time_ms: i64) -> Result<u64, StreamError> {
        Ok(1)
    }
}

/// Reads every event of `filter` from the start, at most `limit` of them.
pub fn read_all(
    reader: &mut dyn EventReader,
    filter: &SubjectFilter,
    limit: usize,
) -> Result<Vec<StoredEvent>, StreamError> {
    const PAGE: usize = 4_096;
    let mut events = Vec::new();
    let mut from = 1;
    while events.len() < limit {
        let next = reader.read(filter, from, PAGE.min(limit - events.len()), &mut events)?;
        if next <= from {
            break; // the stream's end
        }
        from = next;
    }
    Ok(events)
}

// ---------------------------------------------------------------------------
// The embedded adapter: the log in the data dir, shared by the writer and
// the consumers of this process through a mutex (services threads only;
// each call holds it for one append batch or one read).

/// The open log, shared by the process's services threads.
#[derive(Clone)]
pub struct SharedLog {
    log: Arc<Mutex<EventLog>>,
    dir: PathBuf,
}

impl SharedLog {
    pub fn new(log: EventLog, dir: &Path) -> SharedLog {
        SharedLog { log: Arc::new(Mutex::new(log)), dir: dir.to_owned() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> MutexGuard<'_, EventLog> {
        // A panic while holding it leaves the log as consistent as a crash
        // would (every append is whole or cut): carry on.
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// How often retention looks at old segments.
const RETENTION_EVERY: Duration = Duration::from_secs(3_600);

pub struct EmbeddedStream {
    log: SharedLog,
    last_retention: Instant,
}

impl EmbeddedStream {
    pub fn new(log: SharedLog) -> EmbeddedStream {
        EmbeddedStream { log, last_retention: Instant::now() }
    }
}

impl EventSink for EmbeddedStream {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    fn publish(&mut self, batch: &[Outgoing]) -> Result<Published, StreamError> {
        let mut log = self.log.lock();
        let mut published = Published::default();
        for event in batch {
            match log.append(&event.subject, &event.msg_id, &event.payload, event.time_ms)? {
                Appended::New(_) => published.stored += 1,
                Appended::Duplicate(_) => published.duplicates += 1,
            }
        }
        Ok(published)
    }

    fn tick(&mut self, now_ms: i64) -> Result<(), StreamError> {
        let mut log = self.log.lock();
        log.tick()?;
        if self.last_retention.elapsed() >= RETENTION_EVERY {
            self.last_retention = Instant::now();
            let removed = log.retain(now_ms)?;
            if removed > 0 {
                tracing::info!(removed, "event log: old segments deleted");
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(self.log.lock().sync()?)
    }
}

impl EventReader for SharedLog {
    fn read(
        &mut self,
        filter: &SubjectFilter,
        from_seq: u64,
        max: usize,
        out: &mut Vec<StoredEvent>,
    ) -> Result<u64, StreamError> {
        Ok(self.lock().read(from_seq, filter, max, out)?)
    }

    fn seq_near_time(&mut self, time_ms: i64) -> Result<u64, StreamError> {
        Ok(self.lock().seq_near_time(time_ms))
    }
}

impl EventReader for LogReader {
    fn read(
        &mut self,
        filter: &SubjectFilter,
        from_seq: u64,
        max: usize,
        out: &mut Vec<StoredEvent>,
    ) -> Result<u64, StreamError> {
        Ok(LogReader::read(self, from_seq, filter, max, out)?)
    }
}

/// How often an embedded consumer writes its position (and at flush): a
/// crash redelivers at most this much, which consumers must tolerate
/// anyway (at-least-once).
pub const CURSOR_SAVE_EVERY: Duration = Duration::from_millis(200);
/// How often an idle embedded consumer looks for new events.
const FETCH_POLL: Duration = Duration::from_millis(10);

/// A durable consumer of the embedded log: its position (the sequence
/// after the last acknowledged) lives in `<events>/consumers/<name>`.
pub struct EmbeddedConsumer {
    log: SharedLog,
    filter: SubjectFilter,
    path: PathBuf,
    /// Next sequence to look at when fetching.
    next: u64,
    /// Sequence after the last acknowledged (what a restart resumes at).
    acked: u64,
    saved: u64,
    last_save: Instant,
}

impl EmbeddedConsumer {
    /// Opens (creating) the durable consumer `name` on `filter`.
    pub fn open(log: SharedLog, name: &str, filter: &str) -> Result<EmbeddedConsumer, StreamError> {
        assert!(
            !name.is_empty()
                && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_'),
            "consumer names are plain words"
        );
        let filter = SubjectFilter::new(filter)?;
        let dir = log.dir().join("consumers");
        let cursor_error = |path: &Path| {
            let path = path.to_owned();
            move |source| StreamError::Cursor { path, source }
        };
        fs::create_dir_all(&dir).map_err(cursor_error(&dir))?;
        let path = dir.join(name);
        let acked = match fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<u64>().map_err(|_| StreamError::Cursor {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not a sequence"),
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 1,
            Err(error) => return Err(StreamError::Cursor { path, source: error }),
        };
        let acked = acked.max(1);
        Ok(EmbeddedConsumer {
            log,
            filter,
            path,
            next: acked,
            acked,
            saved: acked,
            last_save: Instant::now(),
        })
    }

    /// The sequence a restart would resume at.
    pub fn position(&self) -> u64 {
        self.acked
    }

    fn save(&mut self) -> Result<(), StreamError> {
        if self.saved == self.acked {
            return Ok(());
        }
        let temporary = self.path.with_extension("tmp");
        let written = fs::write(&temporary, format!("{}\n", self.acked))
            .and_then(|()| fs::rename(&temporary, &self.path));
        written.map_err(|source| StreamError::Cursor { path: self.path.clone(), source })?;
        self.saved = self.acked;
        self.last_save = Instant::now();
        Ok(())
    }
}

impl EventConsumer for EmbeddedConsumer {
    fn fetch(
        &mut self,
        max: usize,
        wait: Duration,
        out: &mut Vec<StoredEvent>,
    ) -> Result<(), StreamError> {
        let deadline = Instant::now() + wait;
        loop {
            let before = out.len();
            {
                let mut log = self.log.lock();
                // Retention may have taken what was never read.
                self.next = self.next.max(log.first_seq());
                self.next = log.read(self.next, &self.filter, max, out)?;
            }
            if out.len() > before || Instant::now() >= deadline {
                return Ok(());
            }
            std::thread::sleep(FETCH_POLL.min(deadline.saturating_duration_since(Instant::now())));
        }
    }

    fn ack(&mut self, seq: u64) -> Result<(), StreamError> {
        self.acked = self.acked.max(seq + 1);
        if self.last_save.elapsed() >= CURSOR_SAVE_EVERY {
            self.save()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        self.save()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::events::log::LogOptions;

    fn outgoing(room: u64, n: u64, kind: &str) -> Outgoing {
        Outgoing {
            subject: format!("game.{room}.{kind}"),
            msg_id: format!("{room}-{n}-{kind}"),
            payload: format!("{{\"n\":{n}}}").into_bytes(),
            time_ms: 1_000 + n as i64,
        }
    }

    #[test]
    fn embedded_consumers_resume_after_the_last_acknowledged_event() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = EventLog::open(dir.path(), LogOptions::default()).unwrap();
        let shared = SharedLog::new(log, dir.path());
        let mut sink = EmbeddedStream::new(shared.clone());
        let batch: Vec<Outgoing> =
            (1..=5).flat_map(|n| [outgoing(7, n, "events"), outgoing(7, n, "moments")]).collect();
        assert_eq!(sink.publish(&batch).unwrap(), Published { stored: 10, duplicates: 0 });
        assert_eq!(sink.publish(&batch[..2]).unwrap(), Published { stored: 0, duplicates: 2 });

        let mut consumer =
            EmbeddedConsumer::open(shared.clone(), "projector", EVENTS_FILTER).unwrap();
        let mut got = Vec::new();
        consumer.fetch(3, Duration::ZERO, &mut got).unwrap();
        let seqs: Vec<u64> = got.iter().map(|event| event.seq).collect();
        assert_eq!(seqs, [1, 3, 5], "moments are not the consumer's");
        consumer.ack(1).unwrap();
        consumer.ack(3).unwrap();
        consumer.flush().unwrap();
        drop(consumer);

        // A restart resumes after seq 3: seq 5 was fetched, never acked.
        let mut consumer =
            EmbeddedConsumer::open(shared.clone(), "projector", EVENTS_FILTER).unwrap();
        assert_eq!(consumer.position(), 4);
        let mut got = Vec::new();
        consumer.fetch(100, Duration::ZERO, &mut got).unwrap();
        let seqs: Vec<u64> = got.iter().map(|event| event.seq).collect();
        assert_eq!(seqs, [5, 7, 9]);
        // Nothing new: an empty fetch after waiting.
        let mut more = Vec::new();
        consumer.fetch(100, Duration::from_millis(20), &mut more).unwrap();
        assert!(more.is_empty());

        // Another durable consumer has its own position.
        let mut other = EmbeddedConsumer::open(shared.clone(), "moments", EVENTS_FILTER).unwrap();
        assert_eq!(other.position(), 1);
        let mut all = Vec::new();
        other.fetch(100, Duration::ZERO, &mut all).unwrap();
        assert_eq!(all.len(), 5);

        let filter = SubjectFilter::new("game.7.>").unwrap();
        let mut reader = shared.clone();
        assert_eq!(read_all(&mut reader, &filter, usize::MAX).unwrap().len(), 10);
        assert_eq!(read_all(&mut reader, &filter, 4).unwrap().len(), 4);
    }

    #[test]
    fn a_damaged_consumer_position_is_an_error_not_a_replay_from_zero() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = EventLog::open(dir.path(), LogOptions::default()).unwrap();
        let shared = SharedLog::new(log, dir.path());
        fs::create_dir_all(dir.path().join("consumers")).unwrap();
        fs::write(dir.path().join("consumers/projector"), "twelve").unwrap();
        let opened = EmbeddedConsumer::open(shared, "projector", EVENTS_FILTER);
        assert!(matches!(opened, Err(StreamError::Cursor { .. })));
    }
}
