//! The event stream on real NATS JetStream: the stream's configuration as
//! JetStream reports it, publishing with message ids, durable consumers
//! that resume and redeliver, the Match Projector's idempotence against
//! real Postgres, and the writer riding out a NATS outage.
//!
//! Tests that stop NATS or need a stream to themselves start their own
//! nats-server (tests/support/nats.rs); the configuration check uses the
//! machine's shared one.

#[path = "support/nats.rs"]
mod nats;
#[path = "support/postgres.rs"]
mod postgres_support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ludus::services::events::consumers::{ConsumerThread, Handler};
use ludus::services::events::jetstream::{stream_config, Nats, DUPLICATE_WINDOW};
use ludus::services::events::log::StoredEvent;
use ludus::services::events::projector::MatchProjector;
use ludus::services::events::stream::{
    read_all, EventConsumer, EventReader, EventSink, Outgoing, Published, EVENTS_FILTER,
    STREAM_NAME,
};
use ludus::services::events::subject::SubjectFilter;
use ludus::services::store::postgres::PostgresStore;
use ludus::services::store::Store;
use serde_json::{json, Value};

const DAY: Duration = Duration::from_secs(24 * 3600);

fn connect(url: &str) -> Nats {
    Nats::connect(url, "ludus-test", Duration::from_secs(10)).unwrap_or_else(|error| {
        panic!("these tests need nats-server with JetStream at {url}: {error}")
    })
}

fn event(room: u64, seq: u64, body: Value) -> Outgoing {
    Outgoing {
        subject: format!("game.{room}.events"),
        msg_id: format!("{room}-{seq}"),
        payload: body.to_string().into_bytes(),
        time_ms: 1_700_000_000_000,
    }
}

fn input(seq: u64) -> Value {
    json!({"tick": seq, "type": "input", "player_id": "7", "data": {"seq": seq, "bits": 1}})
}

#[test]
fn the_stream_is_made_once_and_jetstream_reports_its_configuration() {
    let nats = connect(&nats::shared_url());
    let first = nats.ensure_stream(90 * DAY).unwrap();
    let again = nats.ensure_stream(90 * DAY).unwrap();
    assert_eq!(first.created, again.created, "the second start-up found the stream");
    let info = nats.stream_info().unwrap();
    let config = &info.config;
    assert_eq!(config.name, STREAM_NAME);
    assert_eq!(config.subjects, ["game.>"]);
    assert_eq!(config.max_age, 90 * DAY);
    assert_eq!(config.duplicate_window, DUPLICATE_WINDOW);
    assert_eq!(config.storage, async_nats::jetstream::stream::StorageType::File);
    assert_eq!(config.retention, async_nats::jetstream::stream::RetentionPolicy::Limits);
    assert_eq!(stream_config(90 * DAY).subjects, config.subjects);
}

#[test]
fn a_changed_max_age_updates_the_stream_in_place() {
    let own = nats::OwnNats::start();
    let nats = connect(&own.url());
    let created = nats.ensure_stream(90 * DAY).unwrap();
    let mut sink = nats.publisher(90 * DAY);
    sink.publish(&[event(1, 1, input(1))]).unwrap();
    let updated = nats.ensure_stream(30 * DAY).unwrap();
    assert_eq!(updated.config.max_age, 30 * DAY);
    assert_eq!(updated.created, created.created, "updated, not made again");
    assert_eq!(nats.stream_info().unwrap().state.messages, 1, "its events kept");
}

#[test]
fn published_events_deduplicate_and_durable_consumers_resume() {
    let own = nats::OwnNats::start();
    let nats = connect(&own.url());
    nats.ensure_stream(90 * DAY).unwrap();
    let mut sink = nats.publisher(90 * DAY);
    let batch: Vec<Outgoing> = (1..=50).map(|seq| event(9, seq, input(seq))).collect();
    assert_eq!(sink.publish(&batch).unwrap(), Published { stored: 50, duplicates: 0 });
    // A retry of a publish that had landed: duplicates, nothing stored twice.
    assert_eq!(sink.publish(&batch[40..]).unwrap(), Published { stored: 0, duplicates: 10 });
    let moment =
        Outgoing { subject: "game.9.moments".into(), msg_id: "9-m".into(), ..batch[0].clone() };
    sink.publish(&[moment]).unwrap();
    assert_eq!(nats.stream_info().unwrap().state.messages, 51);

    let ack_wait = Duration::from_secs(1);
    let mut consumer = nats.consumer_with_ack_wait("projector", EVENTS_FILTER, ack_wait).unwrap();
    let mut got = Vec::new();
    while got.len() < 20 {
        consumer.fetch(20 - got.len(), Duration::from_secs(1), &mut got).unwrap();
    }
    let seqs: Vec<u64> = got.iter().map(|event| event.seq).collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<u64>>());
    assert_eq!(got[4].msg_id, "9-5");
    assert_eq!(got[4].subject, "game.9.events");
    for event in &got[..10] {
        consumer.ack(event.seq).unwrap();
    }
    drop(consumer);

    // The same durable, opened again, as after a restart: acknowledged
    // events are done, the rest come (the unacked ones after ack wait).
    let mut consumer = nats.consumer_with_ack_wait("projector", EVENTS_FILTER, ack_wait).unwrap();
    let mut rest = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    while rest.len() < 40 && Instant::now() < deadline {
        consumer.fetch(50, Duration::from_secs(1), &mut rest).unwrap();
    }
    let mut seqs: Vec<u64> = rest.iter().map(|event| event.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs, (11..=50).collect::<Vec<u64>>(), "every unacknowledged event, no moment");

    // Replays read a room's subject from the start.
    let mut reader = nats.reader();
    let filter = SubjectFilter::new("game.9.>").unwrap();
    let all = read_all(&mut reader, &filter, usize::MAX).unwrap();
    assert_eq!(all.len(), 51);
    let mut page = Vec::new();
    let next = reader.read(&SubjectFilter::new(EVENTS_FILTER).unwrap(), 45, 3, &mut page).unwrap();
    assert_eq!((page.len(), next), (3, 48));
}

fn game_end(started_at_ms: i64) -> Value {
    json!({
        "tick": 1200, "type": "game_end", "player_id": null,
        "data": {
            "game": "tetris", "player_ids": ["101", "102"], "seed": "42",
            "started_at_ms": started_at_ms, "ended_at_ms": started_at_ms + 20_000,
            "results": [
                {"slot": 0, "player_id": "101", "placement": 2, "score": 100, "lines": 3,
                 "garbage_sent": 0, "garbage_received": 4, "pieces": 20, "survived_ticks": 1100},
                {"slot": 1, "player_id": "102", "placement": 1, "score": 500, "lines": 9,
                 "garbage_sent": 4, "garbage_received": 0, "pieces": 31, "survived_ticks": 1200},
            ],
        },
    })
}

#[test]
fn the_projector_writes_one_match_however_often_game_end_comes() {
    let own = nats::OwnNats::start();
    let nats = connect(&own.url());
    nats.ensure_stream(90 * DAY).unwrap();
    let schema = postgres_support::TestSchema::create();
    let mut store = PostgresStore::from_url(&schema.url()).unwrap();
    store.migrate(1).unwrap();
    let mut db = schema.client();
    let count =
        |db: &mut postgres::Client, sql: &str| -> i64 { db.query_one(sql, &[]).unwrap().get(0) };

    let mut sink = nats.publisher(90 * DAY);
    // The same game_end under two message ids (as a publisher that lost
    // its dedup window would send it): JetStream stores both.
    let end = game_end(1_700_000_000_000);
    let mut first = event(5, 1, end.clone());
    first.msg_id = "5-900".into();
    let mut second = event(5, 1, end);
    second.msg_id = "5-900-again".into();
    sink.publish(&[event(5, 899, input(3)), first, second]).unwrap();

    // Killed between commit and ack: the projector commits, the process
    // dies before acknowledging (the consumer goes without an ack).
    let mut projector = MatchProjector::new(Box::new(store));
    let mut consumer =
        nats.consumer_with_ack_wait("projector", EVENTS_FILTER, Duration::from_secs(1)).unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        consumer.fetch(2 - got.len(), Duration::from_secs(1), &mut got).unwrap();
    }
    for event in &got {
        projector.handle(event).unwrap();
    }
    drop(consumer);
    assert_eq!(count(&mut db, "SELECT count(*) FROM matches"), 1);

    // Restarted: the consumer thread gets everything again after ack wait.
    let factory_nats = nats.clone();
    let thread = ConsumerThread::start(
        "projector",
        Box::new(move || {
            Ok(Box::new(factory_nats.consumer_with_ack_wait(
                "projector",
                EVENTS_FILTER,
                Duration::from_secs(1),
            )?) as _)
        }),
        Box::new(projector),
    )
    .unwrap();
    let stats = std::sync::Arc::clone(thread.stats());
    let deadline = Instant::now() + Duration::from_secs(30);
    while stats.last_seq.load(Ordering::Relaxed) < 3 {
        assert!(Instant::now() < deadline, "the projector never finished: {}", stats.to_json());
        std::thread::sleep(Duration::from_millis(50));
    }
    thread.stop();
    assert_eq!(count(&mut db, "SELECT count(*) FROM matches"), 1, "one match, delivered 3 times");
    assert_eq!(count(&mut db, "SELECT count(*) FROM match_players"), 2);
    let row = db
        .query_one(
            "SELECT room_id, game, mode, seed, ended_at_ms - started_at_ms FROM matches",
            &[],
        )
        .unwrap();
    let (room, game, mode, seed, duration): (i64, String, String, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    assert_eq!(
        (room, game.as_str(), mode.as_str(), seed, duration),
        (5, "tetris", "versus", 42, 20_000)
    );
    let winner: (i32, String, i64) = {
        let row = db
            .query_one("SELECT seat, outcome, score FROM match_players WHERE placement = 1", &[])
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    assert_eq!(winner, (1, "win".to_owned(), 500));
}

/// Publishes into a nats-server that is killed and started again: the
/// writer's buffer holds the events, the client reconnects, nothing is
/// lost or stored twice, and the counters say what happened.
#[test]
fn the_writer_rides_out_a_nats_outage() {
    use ludus::proto::wire::GameKind;
    use ludus::services::events::tap::{taps, TapRecord};
    use ludus::services::events::writer::EventWriter;
    use ludus::sim::event::{Event, EventKind};

    let mut own = nats::OwnNats::start();
    let nats = connect(&own.url());
    nats.ensure_stream(90 * DAY).unwrap();
    let (taps, drain) = taps(1, 4_096);
    let writer = EventWriter::start(Box::new(nats.publisher(90 * DAY)), drain).unwrap();
    let stats = std::sync::Arc::clone(writer.stats());
    let hand = |seq: u64| {
        let record = TapRecord {
            room_id: 77,
            game: GameKind::Tetris,
            seq,
            player_id: Some(3),
            time_ms: 1_700_000_000_000,
            players: None,
            event: Event {
                tick: seq as u32,
                player: Some(0),
                kind: EventKind::Input { seq: seq as u32, bits: 1 },
            },
        };
        assert!(taps[0].hand(record));
    };
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(
                Instant::now() < deadline,
                "{what}: pending {}",
                stats.pending.load(Ordering::Relaxed)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    for seq in 1..=100 {
        hand(seq);
    }
    wait_for("the first events stored", &|| stats.written.load(Ordering::Relaxed) == 100);

    own.stop();
    for seq in 101..=300 {
        hand(seq);
    }
    wait_for("the outage noticed", &|| stats.retries.load(Ordering::Relaxed) > 0);
    assert!(!stats.available.load(Ordering::Relaxed));
    own.start_again();
    wait_for("the held events stored after reconnecting", &|| {
        stats.written.load(Ordering::Relaxed) + stats.duplicates.load(Ordering::Relaxed) >= 300
            && stats.pending.load(Ordering::Relaxed) == 0
    });
    for seq in 301..=320 {
        hand(seq);
    }
    wait_for("events after the reconnection", &|| {
        stats.written.load(Ordering::Relaxed) + stats.duplicates.load(Ordering::Relaxed) >= 320
    });
    writer.stop();
    assert_eq!(stats.buffer_dropped.load(Ordering::Relaxed), 0, "the buffer held the outage");
    assert_eq!(stats.failed.load(Ordering::Relaxed), 0);

    // The stream holds each event once, in order.
    let mut reader = nats.reader();
    let stored =
        read_all(&mut reader, &SubjectFilter::new("game.77.events").unwrap(), usize::MAX).unwrap();
    let ids: Vec<u64> =
        stored.iter().map(|event: &StoredEvent| event.msg_id[3..].parse().unwrap()).collect();
    assert_eq!(ids, (1..=320).collect::<Vec<u64>>());
}
