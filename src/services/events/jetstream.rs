//! The event stream on NATS JetStream (NATS_URL set): the stream
//! `GAME_EVENTS` (subjects `game.>`, limits retention, file storage, max
//! age, a duplicate window for message ids), created or updated at
//! start-up; a publisher; durable pull consumers; readers for replays.
//!
//! async-nats is a tokio client. One small runtime ([`Nats`], one worker
//! thread, "ludus-nats") drives the connection (pings, reconnects with
//! backoff); the blocking services threads call into it with `block_on`
//! and a deadline on every call, so a stalled NATS surfaces as
//! [`StreamError::Unavailable`], never as a hung thread.
//!
//! Written for nats-server 2.9 (Debian's) and later: no 2.10-only API.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;

use super::log::StoredEvent;
use super::stream::{
    EventConsumer, EventReader, EventSink, Outgoing, Published, StreamError, STREAM_NAME,
    STREAM_SUBJECTS,
};
use super::subject::SubjectFilter;

/// A JetStream API call (stream info, consumer create) gives up after this.
const API_TIMEOUT: Duration = Duration::from_secs(5);
/// A publish batch gives up (Unavailable, to be retried) after this.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// Publishes awaiting their acknowledgement at once, at most.
pub const PUBLISH_IN_FLIGHT_MAX: usize = 4_096;
/// How long a consumer's delivered, unacknowledged event waits before
/// JetStream delivers it again.
const ACK_WAIT: Duration = Duration::from_secs(30);
/// How often an idle consumer asks for new events.
const FETCH_POLL: Duration = Duration::from_millis(20);
/// Delivered, unacknowledged events per consumer, at most.
const MAX_ACK_PENDING: i64 = 20_000;
/// The duplicate window for message ids (as the embedded log's).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// The longest wait for a reconnect attempt (the backoff's ceiling).
const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(5);

fn unavailable(what: &str) -> impl FnOnce(String) -> StreamError + '_ {
    move |error| StreamError::Unavailable(format!("{what}: {error}"))
}

/// The connection and the runtime that drives it; cheap to clone.
#[derive(Clone)]
pub struct Nats {
    runtime: Arc<tokio::runtime::Runtime>,
    client: async_nats::Client,
    context: jetstream::Context,
}

impl Nats {
    /// Connects to `url` (comma-separated servers). The client keeps
    /// reconnecting in the background with backoff; it gives up on the
    /// first connection after `connect_timeout`, so start-up says clearly
    /// that NATS is unreachable.
    pub fn connect(url: &str, name: &str, connect_timeout: Duration) -> Result<Nats, StreamError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ludus-nats")
            .enable_all()
            .build()
            .map_err(|error| {
                StreamError::Unavailable(format!("starting the NATS runtime: {error}"))
            })?;
        let servers: Vec<async_nats::ServerAddr> = url
            .split(',')
            .map(|server| server.trim().parse())
            .collect::<Result<_, _>>()
            .map_err(|error| StreamError::Refused(format!("NATS_URL: {error}")))?;
        let options = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(connect_timeout)
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                // 0, 100 ms, 200 ms, 400 ms, ... up to the ceiling.
                let step = Duration::from_millis(100).saturating_mul(1 << attempts.min(6));
                if attempts == 0 {
                    Duration::ZERO
                } else {
                    step.min(RECONNECT_DELAY_MAX)
                }
            })
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("NATS: connected"),
                    async_nats::Event::Disconnected => tracing::warn!("NATS: disconnected"),
                    other => tracing::info!(event = %other, "NATS"),
                }
            });
        let client = runtime
            .block_on(async {
                tokio::time::timeout(connect_timeout, options.connect(servers)).await
            })
            .map_err(|_| StreamError::Unavailable("connecting to NATS timed out".to_owned()))?
            .map_err(|error| StreamError::Unavailable(format!("connecting to NATS: {error}")))?;
        // The context starts a task of its own: build it inside the runtime.
        let _inside = runtime.enter();
        let context = jetstream::ContextBuilder::new()
            .timeout(API_TIMEOUT)
            .max_ack_inflight(PUBLISH_IN_FLIGHT_MAX)
            .build(client.clone());
        Ok(Nats { runtime: Arc::new(runtime), client, context })
    }

    /// Runs `future` on the runtime, giving up after `limit`.
    fn call<T>(
        &self,
        limit: Duration,
        future: impl std::future::Future<Output = Result<T, String>>,
    ) -> Result<T, String> {
        self.runtime.block_on(async {
            match tokio::time::timeout(limit, future).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {limit:?}")),
            }
        })
    }

    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Creates the stream, or updates it to `config` when it differs;
    /// returns what JetStream reports. Idempotent.
    pub fn ensure_stream(&self, max_age: Duration) -> Result<stream::Info, StreamError> {
        let wanted = stream_config(max_age);
        let context = self.context.clone();
        self.call(API_TIMEOUT, async move {
            match context.get_stream(STREAM_NAME).await {
                Ok(mut existing) => {
                    let info = existing.info().await.map_err(|error| error.to_string())?.clone();
                    if same_config(&info.config, &wanted) {
                        return Ok(info);
                    }
                    tracing::info!("JetStream: updating the {STREAM_NAME} stream's configuration");
                    context.update_stream(&wanted).await.map_err(|error| error.to_string())
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        jetstream::context::GetStreamErrorKind::JetStream(ref api)
                            if api.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
                    ) =>
                {
                    let mut created =
                        context.create_stream(wanted).await.map_err(|error| error.to_string())?;
                    Ok(created.info().await.map_err(|error| error.to_string())?.clone())
                }
                Err(error) => Err(error.to_string()),
            }
        })
        .map_err(unavailable("the GAME_EVENTS stream"))
    }

    /// The stream as JetStream reports it (configuration and state).
    pub fn stream_info(&self) -> Result<stream::Info, StreamError> {
        let context = self.context.clone();
        self.call(API_TIMEOUT, async move {
            let mut stream = context.get_stream(STREAM_NAME).await.map_err(|e| e.to_string())?;
            Ok(stream.info().await.map_err(|e| e.to_string())?.clone())
        })
        .map_err(unavailable("stream info"))
    }

    /// The durable pull consumer `name` on `filter`, created when missing.
    pub fn consumer(&self, name: &str, filter: &str) -> Result<JetStreamConsumer, StreamError> {
        self.consumer_with_ack_wait(name, filter, ACK_WAIT)
    }

    /// As [`Nats::consumer`], with JetStream redelivering an unacknowledged
    /// event after `ack_wait` (tests make it short). An existing durable
    /// keeps the configuration it was made with.
    pub fn consumer_with_ack_wait(
        &self,
        name: &str,
        filter: &str,
        ack_wait: Duration,
    ) -> Result<JetStreamConsumer, StreamError> {
        let config = consumer::pull::Config {
            durable_name: Some(name.to_owned()),
            filter_subject: filter.to_owned(),
            deliver_policy: consumer::DeliverPolicy::All,
            // Cumulative acks: one confirmed ack per batch, not per event
            // (a confirmed ack is a round trip: per event it capped the
            // projector near 3,000 events/s).
            ack_policy: consumer::AckPolicy::All,
            ack_wait,
            max_ack_pending: MAX_ACK_PENDING,
            ..Default::default()
        };
        let context = self.context.clone();
        let consumer = self
            .call(API_TIMEOUT, async move {
                let stream = context.get_stream(STREAM_NAME).await.map_err(|e| e.to_string())?;
                stream
                    .get_or_create_consumer(
                        &config.durable_name.clone().unwrap_or_default(),
                        config,
                    )
                    .await
                    .map_err(|e| e.to_string())
            })
            .map_err(unavailable("creating a consumer"))?;
        Ok(JetStreamConsumer { nats: self.clone(), consumer, delivered: HashMap::new() })
    }

    pub fn publisher(&self, max_age: Duration) -> JetStreamPublisher {
        JetStreamPublisher { nats: self.clone(), max_age, stream_ready: false }
    }

    pub fn reader(&self) -> JetStreamReader {
        JetStreamReader { nats: self.clone() }
    }
}

/// The stream's configuration.
pub fn stream_config(max_age: Duration) -> stream::Config {
    stream::Config {
        name: STREAM_NAME.to_owned(),
        subjects: vec![STREAM_SUBJECTS.to_owned()],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        max_age,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: 1,
        ..Default::default()
    }
}

/// The fields Ludus sets: others (replicas on a cluster, limits an
/// operator added) are the operator's and left alone.
fn same_config(have: &stream::Config, want: &stream::Config) -> bool {
    have.subjects == want.subjects
        && have.retention == want.retention
        && have.storage == want.storage
        && have.max_age == want.max_age
        && have.duplicate_window == want.duplicate_window
}

/// The writer's side: publishes with message ids, awaits the acks.
pub struct JetStreamPublisher {
    nats: Nats,
    max_age: Duration,
    /// The stream was ensured on this connection (again after NATS lost it).
    stream_ready: bool,
}

impl EventSink for JetStreamPublisher {
    fn kind(&self) -> &'static str {
        "jetstream"
    }

    fn publish(&mut self, batch: &[Outgoing]) -> Result<Published, StreamError> {
        if !self.nats.is_connected() {
            return Err(StreamError::Unavailable("not connected to NATS".into()));
        }
        if !self.stream_ready {
            self.nats.ensure_stream(self.max_age)?;
            self.stream_ready = true;
        }
        let context = self.nats.context.clone();
        let messages: Vec<(String, jetstream::message::PublishMessage)> = batch
            .iter()
            .map(|event| {
                let publish = jetstream::message::PublishMessage::build()
                    .message_id(&event.msg_id)
                    .payload(bytes::Bytes::copy_from_slice(&event.payload));
                (event.subject.clone(), publish)
            })
            .collect();
        let result = self.nats.call(PUBLISH_TIMEOUT, async move {
            let mut acks = Vec::with_capacity(messages.len());
            for (subject, publish) in messages {
                acks.push(context.send_publish(subject, publish).await.map_err(|e| e.to_string())?);
            }
            let mut published = Published::default();
            for ack in acks {
                let ack = ack.await.map_err(|e| e.to_string())?;
                if ack.duplicate {
                    published.duplicates += 1;
                } else {
                    published.stored += 1;
                }
            }
            Ok(published)
        });
        result.map_err(|error| {
            if error.contains("no responders") {
                // The stream is gone (deleted, or a fresh server): make it again.
                self.stream_ready = false;
            }
            StreamError::Unavailable(format!("publishing: {error}"))
        })
    }

    fn tick(&mut self, _now_ms: i64) -> Result<(), StreamError> {
        Ok(()) // JetStream keeps its own retention (max_age) and durability.
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        let client = self.nats.client.clone();
        self.nats
            .call(API_TIMEOUT, async move { client.flush().await.map_err(|e| e.to_string()) })
            .map_err(unavailable("flushing"))
    }
}

fn stored_event(message: &jetstream::Message) -> Result<StoredEvent, String> {
    let info = message.info().map_err(|error| error.to_string())?;
    let msg_id = message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(async_nats::header::NATS_MESSAGE_ID))
        .map(|id| id.as_str().to_owned())
        .unwrap_or_default();
    Ok(StoredEvent {
        seq: info.stream_sequence,
        time_ms: (info.published.unix_timestamp_nanos() / 1_000_000) as i64,
        subject: message.subject.to_string(),
        msg_id,
        payload: message.payload.to_vec(),
    })
}

/// A durable pull consumer; acks are explicit and confirmed by the server.
pub struct JetStreamConsumer {
    nats: Nats,
    consumer: consumer::Consumer<consumer::pull::Config>,
    /// Fetched, not yet acknowledged, by stream sequence.
    delivered: HashMap<u64, jetstream::Message>,
}

impl EventConsumer for JetStreamConsumer {
    fn fetch(
        &mut self,
        max: usize,
        wait: Duration,
        out: &mut Vec<StoredEvent>,
    ) -> Result<(), StreamError> {
        let consumer = self.consumer.clone();
        // No-wait pulls, polled: the server answers at once with what it
        // has, so an event waits at most one poll, not a pull's whole
        // expiry; and no pull is left waiting for a timeout answer (a
        // pull with an expiry sometimes got none from nats-server 2.9, and
        // the client then gave up 5 s later: benches/history.rs).
        let messages = self
            .nats
            .call(wait + API_TIMEOUT, async move {
                let deadline = tokio::time::Instant::now() + wait;
                loop {
                    let mut batch = consumer
                        .fetch()
                        .max_messages(max)
                        .messages()
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut messages = Vec::new();
                    while let Some(message) = batch.next().await {
                        messages.push(message.map_err(|e| e.to_string())?);
                    }
                    if !messages.is_empty() || tokio::time::Instant::now() >= deadline {
                        return Ok(messages);
                    }
                    tokio::time::sleep(FETCH_POLL.min(wait)).await;
                }
            })
            .map_err(unavailable("fetching"))?;
        for message in messages {
            let event = stored_event(&message).map_err(StreamError::Refused)?;
            self.delivered.insert(event.seq, message);
            out.push(event);
        }
        Ok(())
    }

    fn ack(&mut self, seq: u64) -> Result<(), StreamError> {
        // AckPolicy::All: acknowledging `seq` acknowledges every earlier
        // delivery too; only the newest is sent.
        let Some(message) = self.delivered.remove(&seq) else {
            return Ok(()); // not fetched here (or acked already)
        };
        self.delivered.retain(|delivered, _| *delivered > seq);
        // double_ack: the server confirms, so "acked" means it will not
        // come again (the projector relies on it only for efficiency; its
        // writes are idempotent).
        self.nats
            .call(API_TIMEOUT, async move { message.double_ack().await.map_err(|e| e.to_string()) })
            .map_err(unavailable("acknowledging"))
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(()) // every ack is confirmed as it is made
    }
}

/// Reads a subject's events through short-lived ordered consumers.
pub struct JetStreamReader {
    nats: Nats,
}

impl EventReader for JetStreamReader {
    fn read(
        &mut self,
        filter: &SubjectFilter,
        from_seq: u64,
        max: usize,
        out: &mut Vec<StoredEvent>,
    ) -> Result<u64, StreamError> {
        let context = self.nats.context.clone();
        let filter = filter.as_str().to_owned();
        let events = self
            .nats
            .call(API_TIMEOUT * 2, async move {
                let stream = context.get_stream(STREAM_NAME).await.map_err(|e| e.to_string())?;
                let config = consumer::pull::Config {
                    filter_subject: filter,
                    deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                        start_sequence: from_seq.max(1),
                    },
                    ack_policy: consumer::AckPolicy::None,
                    inactive_threshold: Duration::from_secs(30),
                    ..Default::default()
                };
                let reader = stream.create_consumer(config).await.map_err(|e| e.to_string())?;
                let name = reader.cached_info().name.clone();
                let pending = reader.cached_info().num_pending as usize;
                let mut events = Vec::new();
                if pending > 0 {
                    let mut batch = reader
                        .batch()
                        .max_messages(max.min(pending))
                        .expires(Duration::from_secs(2))
                        .messages()
                        .await
                        .map_err(|e| e.to_string())?;
                    while let Some(message) = batch.next().await {
                        let message = message.map_err(|e| e.to_string())?;
                        events.push(stored_event(&message)?);
                    }
                }
                let _ = stream.delete_consumer(&name).await;
                Ok(events)
            })
            .map_err(unavailable("reading"))?;
        let next = events.last().map_or(from_seq, |event| event.seq + 1);
        out.extend(events);
        Ok(next)
    }
}
