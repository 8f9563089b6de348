//! The stream's consumer threads: each runs one [`Handler`] over a durable
//! consumer (embedded or JetStream), at least once and in stream order.
//! An event is acknowledged after its handler is done with it, so a crash
//! in between redelivers it: handlers are idempotent.
//!
//! A transient failure (the database or NATS unreachable) is retried with
//! backoff, on the same event, until it passes or the server stops; an
//! event the handler can never take (malformed) is counted as skipped and
//! acknowledged, so one bad event does not stop history for everyone.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::log::StoredEvent;
use super::service_thread::ServiceThread;
use super::stream::{EventConsumer, StreamError};

/// Events fetched per round.
const FETCH_MAX: usize = 256;
/// How long one fetch waits for the first event (also how quickly a stop
/// is noticed).
const FETCH_WAIT: Duration = Duration::from_millis(200);
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);
const WARN_EVERY: Duration = Duration::from_secs(1);
/// At stop, how long a consumer keeps handling what the stream already
/// holds (the writer has published the last events by then).
const STOP_DRAIN: Duration = Duration::from_secs(5);

/// Why a handler did not finish an event.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Transient: try the same event again later.
    #[error("retry: {0}")]
    Retry(String),
    /// The event can never be handled (malformed, impossible): skip it.
    #[error("skipped: {0}")]
    Skip(String),
}

/// What a consumer does with each event.
pub trait Handler: Send {
    fn handle(&mut self, event: &StoredEvent) -> Result<(), HandleError>;
}

/// A consumer thread's counters, for /api/stats and the tests.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    pub handled: AtomicU64,
    pub skipped: AtomicU64,
    pub retries: AtomicU64,
    /// The stream sequence of the last event acknowledged.
    pub last_seq: AtomicU64,
    /// How far behind the last handled event was: handling time minus the
    /// event's stored time, in ms.
    pub lag_ms: AtomicI64,
}

impl ConsumerStats {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "handled": self.handled.load(Ordering::Relaxed),
            "skipped": self.skipped.load(Ordering::Relaxed),
            "retries": self.retries.load(Ordering::Relaxed),
            "last_seq": self.last_seq.load(Ordering::Relaxed),
            "lag_ms": self.lag_ms.load(Ordering::Relaxed),
        })
    }
}

/// Opens the durable consumer (again after a failure).
pub type ConsumerFactory =
    Box<dyn FnMut() -> Result<Box<dyn EventConsumer>, StreamError> + Send + 'static>;

pub struct ConsumerThread {
    name: &'static str,
    stats: Arc<ConsumerStats>,
    thread: ServiceThread,
}

fn unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as i64)
}

impl ConsumerThread {
    pub fn start(
        name: &'static str,
        open: ConsumerFactory,
        handler: Box<dyn Handler>,
    ) -> std::io::Result<ConsumerThread> {
        let stats = Arc::new(ConsumerStats::default());
        let counters = Arc::clone(&stats);
        let thread = ServiceThread::spawn(format!("ludus-{name}"), move |stop| {
            run(name, open, handler, stop, &counters)
        })?;
        Ok(ConsumerThread { name, stats, thread })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn stats(&self) -> &Arc<ConsumerStats> {
        &self.stats
    }

    /// Handles what the stream holds (a few seconds at most), saves the
    /// position, ends the thread.
    pub fn stop(self) {
        self.thread.stop();
    }
}

struct Backoff {
    next: Duration,
    last_warning: Option<Instant>,
}

impl Backoff {
    fn wait(&mut self, name: &str, what: &str, error: &dyn std::fmt::Display, stop: &AtomicBool) {
        if self.last_warning.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            self.last_warning = Some(Instant::now());
            tracing::warn!(consumer = name, %error, "{what}; retrying");
        }
        let until = Instant::now() + self.next;
        while Instant::now() < until && !stop.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.next = (self.next * 2).min(RETRY_MAX);
    }

    fn reset(&mut self) {
        self.next = RETRY_MIN;
    }
}

fn run(
    name: &'static str,
    mut open: ConsumerFactory,
    mut handler: Box<dyn Handler>,
    stop: &AtomicBool,
    stats: &ConsumerStats,
) {
    let mut backoff = Backoff { next: RETRY_MIN, last_warning: None };
    let mut consumer: Option<Box<dyn EventConsumer>> = None;
    let mut batch = Vec::with_capacity(FETCH_MAX);
    // Set once stopping: handle what is there until a fetch comes back
    // empty or the drain time is up.
    let mut drain_until: Option<Instant> = None;
    'running: loop {
        if stop.load(Ordering::Acquire) {
            let until = *drain_until.get_or_insert_with(|| Instant::now() + STOP_DRAIN);
            if Instant::now() >= until {
                break;
            }
        }
        let source = match consumer.as_mut() {
            Some(source) => source,
            None if drain_until.is_some() => break,
            None => match open() {
                Ok(opened) => consumer.insert(opened),
                Err(error) => {
                    backoff.wait(name, "opening the consumer failed", &error, stop);
                    continue;
                }
            },
        };
        batch.clear();
        let wait = if drain_until.is_some() { Duration::ZERO } else { FETCH_WAIT };
        if let Err(error) = source.fetch(FETCH_MAX, wait, &mut batch) {
            if drain_until.is_some() {
                break;
            }
            backoff.wait(name, "fetching failed", &error, stop);
            if !error.is_retryable() {
                consumer = None;
            }
            continue;
        }
        if batch.is_empty() && drain_until.is_some() {
            break;
        }
        backoff.reset();
        for event in &batch {
            loop {
                match handler.handle(event) {
                    Ok(()) => {
                        stats.handled.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Err(HandleError::Skip(reason)) => {
                        stats.skipped.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(consumer = name, seq = event.seq, reason, "event skipped");
                        break;
                    }
                    Err(HandleError::Retry(reason)) => {
                        stats.retries.fetch_add(1, Ordering::Relaxed);
                        backoff.wait(name, "handling an event failed", &reason, stop);
                        if stop.load(Ordering::Acquire) {
                            // Not acknowledged: it comes again after restart.
                            break 'running;
                        }
                    }
                }
            }
            backoff.reset();
            stats.lag_ms.store(unix_ms() - event.time_ms, Ordering::Relaxed);
        }
        // Acks are cumulative: the batch's last event acknowledges it all.
        if let Some(last) = batch.last() {
            if let Err(error) = source.ack(last.seq) {
                // Redelivered later; the handlers are idempotent.
                backoff.wait(name, "acknowledging failed", &error, stop);
            }
            stats.last_seq.store(last.seq, Ordering::Relaxed);
        }
    }
    if let Some(mut source) = consumer {
        if let Err(error) = source.flush() {
            tracing::error!(consumer = name, %error, "saving the consumer's position failed");
        }
    }
}
