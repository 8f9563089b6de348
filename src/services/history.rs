//! Match history, started as one piece by `ludus serve`: the event stream
//! (JetStream with NATS_URL, else the embedded log in the data dir), the
//! writer that publishes the shards' events to it, and the two durable
//! consumers, the Match Projector and the Key Moment Detector.
//!
//! ```text
//! shards --tap--> ludus-events (writer) --> stream game.{room}.events
//!                                              |            ^ game.{room}.moments
//!                       ludus-projector <------+            |
//!                       (matches, match_players)            |
//!                       ludus-moments   <------+------------+
//! ```

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::services::events::consumers::{ConsumerFactory, ConsumerThread, Handler};
use crate::services::events::jetstream::Nats;
use crate::services::events::log::{EventLog, LogError, LogOptions};
use crate::services::events::moment_publisher::MomentPublisher;
use crate::services::events::moments::MomentDetector;
use crate::services::events::projector::MatchProjector;
use crate::services::events::stream::{
    EmbeddedConsumer, EmbeddedStream, EventReader, EventSink, SharedLog, StreamError,
    EVENTS_FILTER, MOMENT_DETECTOR, PROJECTOR,
};
use crate::services::events::tap::{taps, EventTap, TAP_CAPACITY};
use crate::services::events::writer::{EventStats, EventWriter};
use crate::services::store::migrate::open_store;
use crate::services::store::StoreError;

/// How long start-up waits for NATS before saying it is unreachable.
const NATS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("event log: {0}")]
    Log(#[from] LogError),
    #[error("event stream: {0}")]
    Stream(#[from] StreamError),
    #[error("the projector's database connection: {0}")]
    Store(#[from] StoreError),
    #[error("starting a history thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Where the stream is: what readers and consumers are made from.
#[derive(Clone)]
pub enum StreamHandle {
    Embedded(SharedLog),
    JetStream(Box<Nats>),
}

impl StreamHandle {
    /// Opens the stream `config` names: connects to NATS and ensures the
    /// stream, or opens (checking, repairing a torn tail) the embedded log.
    pub fn open(config: &Config) -> Result<StreamHandle, HistoryError> {
        let max_age = config.services.events_max_age();
        if let Some(url) = &config.services.nats_url {
            let nats = Nats::connect(url.expose(), "ludus", NATS_CONNECT_TIMEOUT)?;
            let info = nats.ensure_stream(max_age)?;
            tracing::info!(
                stream = %info.config.name,
                events = info.state.messages,
                "JetStream stream ready"
            );
            return Ok(StreamHandle::JetStream(Box::new(nats)));
        }
        let dir = config.data_dir.join("events");
        let options = LogOptions { max_age, ..LogOptions::default() };
        let (log, recovery) = EventLog::open(&dir, options)?;
        tracing::info!(
            dir = %dir.display(),
            segments = recovery.segments,
            events = recovery.records,
            truncated_bytes = recovery.truncated_bytes,
            "event log open"
        );
        Ok(StreamHandle::Embedded(SharedLog::new(log, &dir)))
    }

    pub fn sink(&self, config: &Config) -> Box<dyn EventSink> {
        match self {
            StreamHandle::Embedded(log) => Box::new(EmbeddedStream::new(log.clone())),
            StreamHandle::JetStream(nats) => {
                Box::new(nats.publisher(config.services.events_max_age()))
            }
        }
    }

    pub fn reader(&self) -> Box<dyn EventReader> {
        match self {
            StreamHandle::Embedded(log) => Box::new(log.clone()),
            StreamHandle::JetStream(nats) => Box::new(nats.reader()),
        }
    }

    /// Opens the durable consumer `name` of game events (when the thread
    /// asks, again after a failure).
    pub fn consumer_factory(&self, name: &'static str) -> ConsumerFactory {
        match self.clone() {
            StreamHandle::Embedded(log) => Box::new(move || {
                Ok(Box::new(EmbeddedConsumer::open(log.clone(), name, EVENTS_FILTER)?) as _)
            }),
            StreamHandle::JetStream(nats) => {
                Box::new(move || Ok(Box::new(nats.consumer(name, EVENTS_FILTER)?) as _))
            }
        }
    }
}

/// The running history: stop it after the shards.
pub struct History {
    pub stream: StreamHandle,
    pub stats: Arc<EventStats>,
    writer: EventWriter,
    consumers: Vec<ConsumerThread>,
    /// Flushed last, after the consumers published their last moments.
    last_flush: Box<dyn EventSink>,
}

impl History {
    /// Opens the stream and starts the writer and the consumers; returns
    /// the shards' taps.
    pub fn start(
        config: &Config,
        stream: StreamHandle,
        shards: usize,
    ) -> Result<(Vec<EventTap>, History), HistoryError> {
        let (event_taps, drain) = taps(shards, TAP_CAPACITY);
        let writer = EventWriter::start(stream.sink(config), drain)?;
        let projector: Box<dyn Handler> = Box::new(MatchProjector::new(open_store(config)?));
        let moments: Box<dyn Handler> =
            Box::new(MomentPublisher::new(MomentDetector::new(), stream.sink(config)));
        let consumers = vec![
            ConsumerThread::start(PROJECTOR, stream.consumer_factory(PROJECTOR), projector)?,
            ConsumerThread::start(
                MOMENT_DETECTOR,
                stream.consumer_factory(MOMENT_DETECTOR),
                moments,
            )?,
        ];
        let stats = Arc::new(EventStats {
            taps: event_taps.iter().map(|tap| Arc::clone(tap.stats())).collect(),
            writer: Arc::clone(writer.stats()),
            consumers: consumers
                .iter()
                .map(|consumer| (consumer.name(), Arc::clone(consumer.stats())))
                .collect(),
        });
        let last_flush = stream.sink(config);
        Ok((event_taps, History { stream, stats, writer, consumers, last_flush }))
    }

    /// Publishes what the shards handed over last, then lets the consumers
    /// finish what they hold and save their positions.
    pub fn stop(mut self) {
        self.writer.stop();
        for consumer in self.consumers {
            consumer.stop();
        }
        if let Err(error) = self.last_flush.flush() {
            tracing::error!(%error, "event stream: the last flush failed");
        }
    }
}
