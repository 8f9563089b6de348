//! Match history past the shard's hand-off, on the real adapters: a
//! private nats-server with JetStream on loopback, a private Postgres
//! schema, the embedded log and SQLite in a temporary directory. The
//! events are real: the events of simulated two-player Tetris matches
//! (random inputs, about 4 a second per player), handed over as a room
//! hands them (src/reactor/game/hosted.rs) and encoded as the writer
//! encodes them.
//!
//! criterion (time per iteration, throughput in elements per second):
//! - `encode/writer_1024`: the writer's own work on 1,024 events (stored
//!   JSON, subject, message id), apart from any stream;
//! - `publish/jetstream_1024`, `publish/embedded_1024`: one batch of 1,024
//!   events through `JetStreamPublisher::publish`, and through
//!   `EmbeddedStream::publish` + `tick` (the fsync policy, as the writer
//!   calls it) into the embedded log;
//! - `project/sqlite`, `project/postgres`: one real game_end through
//!   `MatchProjector::handle` (two account lookups, one transaction).
//!
//! Timed here (printed; HDR histograms where percentiles matter):
//! - `writer/jetstream`, `writer/embedded`: N events handed to a tap with
//!   a running `EventWriter`, timed until its `written` reaches N;
//! - `hand/jetstream_writer`, `hand/no_drain`: `EventTap::hand` in bursts
//!   of 16 every millisecond, while the JetStream writer drains the queue
//!   and while nothing does (the hot-loop figure is event_log's
//!   `event_tap/hand_piece_lock`);
//! - `consumer/game_ends`, `consumer/mixed`: a `ConsumerThread` running the
//!   projector over a JetStream durable consumer into Postgres: M game_ends
//!   published, timed until the thread has handled M (beside
//!   `MatchProjector::handle` called directly, in the same schema just
//!   before); then the real mix;
//! - `lag/quiet`, `lag/loaded`: game_end handed to the JetStream writer
//!   until its match is committed in Postgres by the projector's consumer
//!   thread, one match ending every 10 ms, without and with other rooms'
//!   events flowing.
//!
//! The consumer figures come with how long the projector's JetStream
//! fetches and acknowledgements took (they explain its throughput and lag).
//!
//! `cargo bench --bench history` (`-- publish` runs the ids containing
//! "publish"). `cargo test --bench history` runs everything once, tiny.
//! Needs nats-server (started here on a free port) and Postgres at
//! `LUDUS_TEST_DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/test).

use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, Throughput};
use hdrhistogram::Histogram;
use ludus::proto::wire::{GameKind, Rng};
use ludus::services::events::consumers::{
    ConsumerFactory, ConsumerStats, ConsumerThread, HandleError, Handler,
};
use ludus::services::events::jetstream::{JetStreamConsumer, Nats};
use ludus::services::events::json::{
    event_json, events_subject, message_id, GAME_END_MATCH_FIELDS,
};
use ludus::services::events::log::{EventLog, LogOptions, StoredEvent};
use ludus::services::events::projector::MatchProjector;
use ludus::services::events::stream::{
    EmbeddedStream, EventConsumer, EventSink, Outgoing, SharedLog, StreamError, EVENTS_FILTER,
    PROJECTOR,
};
use ludus::services::events::tap::{taps, EventTap, TapRecord, TAP_CAPACITY};
use ludus::services::events::writer::{EventWriter, WriterStats};
use ludus::services::store::postgres::PostgresStore;
use ludus::services::store::sqlite::SqliteStore;
use ludus::services::store::{NewUser, Role, Store, ACCOUNT_ID_MIN};
use ludus::sim::tetris::{
    TetrisBattle, TetrisConfig, INPUT_HARD_DROP, INPUT_HOLD, INPUT_LEFT, INPUT_RIGHT,
    INPUT_ROTATE_CCW, INPUT_ROTATE_CW, INPUT_SOFT_DROP,
};
use ludus::sim::{Event, EventKind, Game, Slot};

const MAX_AGE: Duration = Duration::from_secs(90 * 24 * 3600);
/// The writer's batch (src/services/events/writer.rs `BATCH_MAX`).
const BATCH: usize = 1_024;
/// The two seats' accounts, made in every store so that the projector
/// looks their nicknames up, as for players with accounts.
const PLAYERS: [u64; 2] = [ACCOUNT_ID_MIN as u64 + 1_001, ACCOUNT_ID_MIN as u64 + 1_002];
/// `hand/*`: events handed per burst, one burst per millisecond.
const HAND_BURST: usize = 16;
/// `lag/*`: one match ends every this long; each starts this many steps
/// before it ends.
const LAG_STEP: Duration = Duration::from_millis(10);
const LAG_LEAD: usize = 5;
/// `lag/loaded`: other rooms' events handed per step (per 10 ms).
const LAG_BACKGROUND: usize = 10;
/// The longest any wait for the pipeline may take before the bench fails.
const WAIT_LIMIT: Duration = Duration::from_secs(120);

const CRITERION_IDS: [&str; 5] = [
    "encode/writer_1024",
    "publish/jetstream_1024",
    "publish/embedded_1024",
    "project/sqlite",
    "project/postgres",
];
const TIMED_IDS: [&str; 8] = [
    "writer/jetstream",
    "writer/embedded",
    "hand/jetstream_writer",
    "hand/no_drain",
    "consumer/game_ends",
    "consumer/mixed",
    "lag/quiet",
    "lag/loaded",
];

// ---------------------------------------------------------------------------
// How this run was asked for (criterion's own flags, read the way it reads
// them: test mode unless `--bench` came without `--test`).

struct Run {
    test: bool,
    list: bool,
    /// The first free argument: ids containing it run (criterion reads it
    /// as a regex; a plain word means the same to both).
    filter: Option<String>,
    sizes: Sizes,
}

/// How much each timed measurement does.
struct Sizes {
    matches_played: u64,
    writer_events: usize,
    writer_runs: usize,
    hand_bursts: usize,
    consumer_matches: usize,
    consumer_events: usize,
    consumer_runs: usize,
    lag_matches: usize,
}

const BENCH_SIZES: Sizes = Sizes {
    matches_played: 8,
    writer_events: TAP_CAPACITY,
    writer_runs: 5,
    hand_bursts: 2_000,
    consumer_matches: 1_000,
    consumer_events: 10_000,
    consumer_runs: 3,
    lag_matches: 300,
};

const TEST_SIZES: Sizes = Sizes {
    matches_played: 1,
    writer_events: 64,
    writer_runs: 1,
    hand_bursts: 5,
    consumer_matches: 3,
    consumer_events: 20,
    consumer_runs: 1,
    lag_matches: 3,
};

impl Run {
    fn from_args() -> Run {
        // criterion's options that take a value.
        const VALUED: &[&str] = &[
            "-c",
            "--color",
            "-s",
            "--save-baseline",
            "-b",
            "--baseline",
            "--baseline-lenient",
            "--load-baseline",
            "--format",
            "--profile-time",
            "--sample-size",
            "--warm-up-time",
            "--measurement-time",
            "--nresamples",
            "--noise-threshold",
            "--confidence-level",
            "--significance-level",
            "--plotting-backend",
            "--output-format",
        ];
        let args: Vec<String> = std::env::args().skip(1).collect();
        let has = |flag: &str| args.iter().any(|arg| arg == flag);
        let mut filter = None;
        let mut value_next = false;
        for arg in &args {
            if std::mem::take(&mut value_next) {
                continue;
            }
            if arg.starts_with('-') {
                value_next = VALUED.contains(&arg.as_str());
            } else if filter.is_none() {
                filter = Some(arg.clone());
            }
        }
        let test = !has("--bench") || has("--test");
        let sizes = if test { TEST_SIZES } else { BENCH_SIZES };
        Run { test, list: has("--list"), filter, sizes }
    }

    fn wants(&self, id: &str) -> bool {
        self.filter.as_deref().is_none_or(|filter| id.contains(filter))
    }

    fn wants_any(&self, ids: &[&str]) -> bool {
        ids.iter().any(|id| self.wants(id))
    }

    /// Prints a timed measurement's result the way criterion prints its
    /// own in each mode.
    fn report(&self, id: &str, lines: &[String]) {
        if self.test {
            println!("Testing {id}\nSuccess\n");
        } else {
            println!("{id}");
            for line in lines {
                println!("                        {line}");
            }
            println!();
        }
    }
}

fn unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as i64)
}

/// Fresh room ids (shard 1's range, as `shard << 48 | counter`), so that
/// no two measurements share a subject, a message id or a match key.
fn next_rooms(count: usize) -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1 << 48 | 1);
    NEXT.fetch_add(count as u64, Ordering::Relaxed)
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT_LIMIT;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not done within {WAIT_LIMIT:?}");
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn describe_rates(values: &[f64], unit: &str) -> String {
    let list: Vec<String> = values.iter().map(|rate| format!("{rate:.0}")).collect();
    format!("{:.0} {unit} median of {} runs ({})", median(values), values.len(), list.join(", "))
}

// ---------------------------------------------------------------------------
// Real events: simulated matches.

/// A random input a player might press: mostly shifts, some rotations, a
/// hard drop one time in four.
fn random_bits(rng: &mut Rng) -> u16 {
    match rng.below(16) {
        0..=3 => INPUT_LEFT,
        4..=6 => INPUT_RIGHT,
        7 => INPUT_ROTATE_CW,
        8 => INPUT_ROTATE_CCW,
        9 => INPUT_SOFT_DROP,
        10 => INPUT_HOLD,
        _ => INPUT_HARD_DROP,
    }
}

/// One whole two-player match: an input about every 15 ticks per player
/// at 60 Hz; forfeited after three minutes if nobody topped out.
fn play_match(seed: u64) -> Vec<Event> {
    let mut events = Vec::new();
    let mut game = TetrisBattle::new(&TetrisConfig::default(), seed, 2, &mut events);
    let mut rng = Rng::new(seed);
    let mut seq = 0;
    let limit = 180 * u32::from(<TetrisBattle as Game>::TICK_HZ);
    while !game.is_finished() {
        for slot in 0..2 as Slot {
            if rng.below(15) == 0 {
                seq += 1;
                game.input(slot, seq, random_bits(&mut rng), &mut events);
            }
        }
        game.tick(&mut events);
        if game.current_tick() >= limit {
            game.forfeit(1, &mut events);
            game.forfeit(0, &mut events);
        }
    }
    events
}

/// A match's events as its room hands them over (`hand_history` in
/// src/reactor/game/hosted.rs): the slot's player, the seat table on
/// game_start and game_end, the room's running count as `seq`.
fn tap_records(events: &[Event], room_id: u64, started_ms: i64) -> Vec<TapRecord> {
    let tick_ms = 1_000 / i64::from(<TetrisBattle as Game>::TICK_HZ);
    events
        .iter()
        .enumerate()
        .map(|(index, event)| TapRecord {
            room_id,
            game: GameKind::Tetris,
            seq: index as u64 + 1,
            player_id: event.player.map(|slot| PLAYERS[usize::from(slot)]),
            time_ms: started_ms + i64::from(event.tick) * tick_ms,
            players: matches!(event.kind, EventKind::GameStart { .. } | EventKind::GameEnd { .. })
                .then(|| PLAYERS.to_vec().into_boxed_slice()),
            event: event.clone(),
        })
        .collect()
}

/// The stored form, as the writer makes it (`encode` in
/// src/services/events/writer.rs): game_end gains its match's start, end
/// and seed.
fn encode(records: &[TapRecord]) -> Vec<Outgoing> {
    let mut started: HashMap<u64, (i64, u64)> = HashMap::new();
    records
        .iter()
        .map(|record| {
            let mut value = event_json(record);
            match &record.event.kind {
                EventKind::GameStart { seed, .. } => {
                    started.insert(record.room_id, (record.time_ms, *seed));
                }
                EventKind::GameEnd { .. } => {
                    let (at, seed) = started.remove(&record.room_id).expect("game_start first");
                    let [started_field, ended_field, seed_field] = GAME_END_MATCH_FIELDS;
                    value["data"][started_field] = at.into();
                    value["data"][ended_field] = record.time_ms.into();
                    value["data"][seed_field] = seed.to_string().into();
                }
                _ => {}
            }
            Outgoing {
                subject: events_subject(record.room_id),
                msg_id: message_id(record),
                payload: serde_json::to_vec(&value).expect("JSON"),
                time_ms: record.time_ms,
            }
        })
        .collect()
}

struct Corpus {
    matches: Vec<Vec<Event>>,
}

impl Corpus {
    fn play(count: u64) -> Corpus {
        Corpus { matches: (0..count).map(|n| play_match(0x6c75_6475_7300 + n)).collect() }
    }

    /// `count` events of whole matches one after the other, each match in
    /// a fresh room (the last one cut short).
    fn records(&self, count: usize) -> Vec<TapRecord> {
        let mut records = Vec::with_capacity(count);
        let now = unix_ms();
        for events in self.matches.iter().cycle() {
            if records.len() >= count {
                break;
            }
            let mut room = tap_records(events, next_rooms(1), now);
            room.truncate(count - records.len());
            records.extend(room);
        }
        records
    }

    /// Events of ongoing play (neither game_start nor game_end), each in a
    /// fresh room: other rooms' traffic.
    fn background(&self, count: usize) -> Vec<TapRecord> {
        let mut records = self.records(count * 2);
        records.retain(|record| {
            !matches!(record.event.kind, EventKind::GameStart { .. } | EventKind::GameEnd { .. })
        });
        records.truncate(count);
        records
    }

    /// The first match's game_start and game_end records, in `room`.
    fn start_and_end(&self, room: u64, started_ms: i64, ended_ms: i64) -> [TapRecord; 2] {
        let events = &self.matches[0];
        let start = events.first().expect("game_start").clone();
        let end = events.last().expect("game_end").clone();
        assert!(matches!(start.kind, EventKind::GameStart { .. }));
        assert!(matches!(end.kind, EventKind::GameEnd { .. }));
        let mut records = tap_records(&[start, end], room, started_ms);
        records[1].time_ms = ended_ms;
        records.try_into().expect("two records")
    }

    /// A stored game_end of the first match, as the projector receives it.
    fn game_end(&self, room: u64) -> Outgoing {
        let ended = unix_ms();
        let records = self.start_and_end(room, ended - 95_000, ended);
        encode(&records).pop().expect("game_end")
    }

    /// A piece lock, the largest event the shards hand over.
    fn piece_lock(&self) -> TapRecord {
        let records = tap_records(&self.matches[0], next_rooms(1), unix_ms());
        records
            .into_iter()
            .find(|record| matches!(record.event.kind, EventKind::PieceLock(_)))
            .expect("a match locks pieces")
    }

    /// What the events are: count and mean stored size by type.
    fn describe(&self) -> String {
        let records: Vec<TapRecord> = self
            .matches
            .iter()
            .flat_map(|events| tap_records(events, next_rooms(1), unix_ms()))
            .collect();
        let stored = encode(&records);
        let mut kinds: Vec<(&str, usize, usize)> = Vec::new();
        for (record, outgoing) in records.iter().zip(&stored) {
            let name = record.event.kind.name();
            match kinds.iter_mut().find(|(kind, _, _)| *kind == name) {
                Some((_, count, bytes)) => {
                    *count += 1;
                    *bytes += outgoing.payload.len();
                }
                None => kinds.push((name, 1, outgoing.payload.len())),
            }
        }
        kinds.sort_by_key(|(_, count, _)| std::cmp::Reverse(*count));
        let total: usize = stored.iter().map(|outgoing| outgoing.payload.len()).sum();
        let ticks: u32 =
            self.matches.iter().map(|events| events.last().map_or(0, |event| event.tick)).sum();
        let seconds = f64::from(ticks) / f64::from(<TetrisBattle as Game>::TICK_HZ);
        let mix: Vec<String> = kinds
            .iter()
            .map(|(name, count, bytes)| format!("{name} {count} x {} B", bytes / count))
            .collect();
        format!(
            "{} matches, {} events ({} per match, {:.0} s of play each: {:.1} events/s a room), \
             mean {} B stored: {}",
            self.matches.len(),
            records.len(),
            records.len() / self.matches.len(),
            seconds / self.matches.len() as f64,
            records.len() as f64 / seconds,
            total / stored.len(),
            mix.join(", ")
        )
    }
}

// ---------------------------------------------------------------------------
// A nats-server of the bench's own (as tests/support/nats.rs): a free
// loopback port, its JetStream store in a temporary directory.

struct OwnNats {
    port: u16,
    child: Child,
    _store: tempfile::TempDir,
}

impl OwnNats {
    fn start() -> OwnNats {
        let store = tempfile::tempdir().expect("a directory for the JetStream store");
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            listener.local_addr().expect("its address").port()
        };
        let binary =
            ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
                .into_iter()
                .find(|path| std::path::Path::new(path).exists())
                .unwrap_or("nats-server");
        let child = Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server (apt-get install nats-server)");
        let own = OwnNats { port, child, _store: store };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", own.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start on {}", own.port);
            std::thread::sleep(Duration::from_millis(20));
        }
        own
    }

    /// A connection, with the GAME_EVENTS stream made.
    fn connect(&self) -> Nats {
        let url = format!("nats://127.0.0.1:{}", self.port);
        let nats = Nats::connect(&url, "ludus-bench", Duration::from_secs(10))
            .unwrap_or_else(|error| panic!("connect to the bench's nats-server {url}: {error}"));
        nats.ensure_stream(MAX_AGE).expect("the GAME_EVENTS stream");
        nats
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// A Postgres schema of the bench's own on the shared database (as
// tests/support/postgres.rs `TestSchema`), dropped at the end.

struct BenchSchema {
    name: String,
    admin: postgres::Client,
}

impl BenchSchema {
    fn create() -> BenchSchema {
        let base = BenchSchema::database_url();
        let mut admin = postgres::Client::connect(&base, postgres::NoTls).unwrap_or_else(|error| {
            panic!(
                "this bench needs Postgres at {base} (LUDUS_TEST_DATABASE_URL names another): \
                 {error}"
            )
        });
        let name = format!("ludus_bench_{:016x}", ludus::services::store::new_user_id());
        admin.batch_execute(&format!("CREATE SCHEMA {name}")).expect("create the bench schema");
        BenchSchema { name, admin }
    }

    fn database_url() -> String {
        std::env::var("LUDUS_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
    }

    /// The database's URL with this schema alone on the search path.
    fn url(&self) -> String {
        let base = BenchSchema::database_url();
        let separator = if base.contains('?') { '&' } else { '?' };
        let name = &self.name;
        format!("{base}{separator}options=-c%20search_path%3D{name}&application_name={name}")
    }

    /// A migrated store in the schema, with the players' accounts.
    fn store(&self) -> PostgresStore {
        let mut store = PostgresStore::from_url(&self.url()).expect("the schema's URL");
        prepare(&mut store);
        store
    }

    fn matches(&mut self) -> i64 {
        let sql = format!("SELECT count(*) FROM {}.matches", self.name);
        self.admin.query_one(&sql, &[]).expect("count the matches").get(0)
    }
}

impl Drop for BenchSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        if let Err(error) = self.admin.batch_execute(&sql) {
            eprintln!("could not drop the bench schema {}: {error}", self.name);
        }
    }
}

/// Migrates `store` and makes the players' accounts (unless there).
fn prepare(store: &mut dyn Store) {
    store.migrate(unix_ms()).expect("migrate");
    for (n, id) in PLAYERS.into_iter().enumerate() {
        if store.user_by_id(id as i64).expect("look the player up").is_some() {
            continue;
        }
        let user = NewUser {
            id: id as i64,
            username: Some(format!("bench{n}")),
            nickname: format!("Bench {n}"),
            password_hash: None,
            role: Role::Player,
            now_ms: unix_ms(),
        };
        store.create_user(&user).expect("create a player");
    }
}

/// How long the projector's fetches and acknowledgements took: shared by
/// the consumers the factory makes (again after a failure) and the report.
#[derive(Clone)]
struct ConsumerTimes(Arc<Mutex<[Histogram<u64>; 2]>>);

impl ConsumerTimes {
    fn new() -> ConsumerTimes {
        let histogram = || Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("histogram");
        ConsumerTimes(Arc::new(Mutex::new([histogram(), histogram()])))
    }

    /// Records a fetch (`which` 0) or an acknowledgement (1), in µs.
    fn record(&self, which: usize, took: Duration) {
        let us = took.as_micros().max(1) as u64;
        self.0.lock().expect("consumer times")[which].saturating_record(us);
    }

    /// The fetches and acknowledgements since the last call (then forgotten).
    fn take(&self) -> String {
        let mut times = self.0.lock().expect("consumer times");
        let [fetches, acks] = &mut *times;
        let ms = |us: u64| us as f64 / 1_000.0;
        let line = format!(
            "projector fetches: {}, p50 {:.0} ms, max {:.0} ms, {} longer than 1 s; \
             acks: {}, p50 {} us, mean {:.0} us",
            fetches.len(),
            ms(fetches.value_at_quantile(0.5)),
            ms(fetches.max()),
            fetches.count_between(1_000_000, u64::MAX),
            acks.len(),
            acks.value_at_quantile(0.5),
            acks.mean()
        );
        fetches.reset();
        acks.reset();
        line
    }
}

/// The projector's durable consumer, its calls timed.
struct TimedConsumer {
    consumer: JetStreamConsumer,
    times: ConsumerTimes,
}

impl EventConsumer for TimedConsumer {
    fn fetch(
        &mut self,
        max: usize,
        wait: Duration,
        out: &mut Vec<StoredEvent>,
    ) -> Result<(), StreamError> {
        let started = Instant::now();
        let fetched = self.consumer.fetch(max, wait, out);
        self.times.record(0, started.elapsed());
        fetched
    }

    fn ack(&mut self, seq: u64) -> Result<(), StreamError> {
        let started = Instant::now();
        let acked = self.consumer.ack(seq);
        self.times.record(1, started.elapsed());
        acked
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        self.consumer.flush()
    }
}

fn projector_consumer(nats: &Nats, times: &ConsumerTimes) -> ConsumerFactory {
    let (nats, times) = (nats.clone(), times.clone());
    Box::new(move || {
        let consumer = nats.consumer(PROJECTOR, EVENTS_FILTER)?;
        Ok(Box::new(TimedConsumer { consumer, times: times.clone() }) as _)
    })
}

fn finished(stats: &ConsumerStats) -> u64 {
    stats.handled.load(Ordering::Relaxed) + stats.skipped.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------------
// criterion: encoding and publishing a batch, projecting a game_end.

/// The writer's own work per event, apart from the stream: the stored JSON,
/// the subject and the message id of 1,024 real events.
fn bench_encode(c: &mut Criterion, corpus: &Corpus) {
    let records = corpus.records(BATCH);
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("writer_1024", |b| b.iter(|| encode(black_box(&records))));
    group.finish();
}

fn bench_publish(c: &mut Criterion, corpus: &Corpus) {
    let own = OwnNats::start();
    let nats = own.connect();
    let dir = tempfile::tempdir().expect("a directory for the log");
    let (log, _) = EventLog::open(dir.path(), LogOptions::default()).expect("open the log");
    let mut sinks: [(&str, Box<dyn EventSink>); 2] = [
        ("jetstream_1024", Box::new(nats.publisher(MAX_AGE))),
        ("embedded_1024", Box::new(EmbeddedStream::new(SharedLog::new(log, dir.path())))),
    ];
    // One batch of real events; each iteration publishes it under fresh
    // rooms (so fresh subjects and message ids: nothing is deduplicated).
    let records = corpus.records(BATCH);
    let mut rooms: Vec<u64> = records.iter().map(|record| record.room_id).collect();
    rooms.dedup();
    let template: Vec<(u64, u64, Outgoing)> = records
        .iter()
        .zip(encode(&records))
        .map(|(record, event)| {
            let room = rooms.iter().position(|room| *room == record.room_id).expect("listed");
            (room as u64, record.seq, event)
        })
        .collect();
    let mut group = c.benchmark_group("publish");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(30);
    for (name, sink) in &mut sinks {
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let first = next_rooms(rooms.len());
                    let batch: Vec<Outgoing> = template
                        .iter()
                        .map(|(room, seq, event)| Outgoing {
                            subject: events_subject(first + room),
                            msg_id: format!("{}-{seq}", first + room),
                            payload: event.payload.clone(),
                            time_ms: event.time_ms,
                        })
                        .collect();
                    let started = Instant::now();
                    let published = sink.publish(black_box(&batch)).expect("publish");
                    sink.tick(unix_ms()).expect("tick");
                    total += started.elapsed();
                    assert_eq!(published.stored, BATCH as u64, "{name}: all stored");
                }
                total
            })
        });
    }
    group.finish();
}

fn bench_project(c: &mut Criterion, corpus: &Corpus) {
    let dir = tempfile::tempdir().expect("a directory for SQLite");
    let mut sqlite = SqliteStore::open(&dir.path().join("ludus.sqlite3")).expect("open SQLite");
    prepare(&mut sqlite);
    let mut schema = BenchSchema::create();
    let stores: [(&str, Box<dyn Store>); 2] =
        [("sqlite", Box::new(sqlite)), ("postgres", Box::new(schema.store()))];
    let game_end = corpus.game_end(next_rooms(1));
    let mut group = c.benchmark_group("project");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    let mut projected = HashMap::new();
    for (name, store) in stores {
        let mut projector = MatchProjector::new(store);
        let mut count = 0;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // The same match ended in another room: a new row.
                    let event = StoredEvent {
                        seq: 1,
                        time_ms: game_end.time_ms,
                        subject: events_subject(next_rooms(1)),
                        msg_id: game_end.msg_id.clone(),
                        payload: game_end.payload.clone(),
                    };
                    let started = Instant::now();
                    projector.handle(black_box(&event)).expect("project");
                    total += started.elapsed();
                    count += 1;
                }
                total
            })
        });
        projected.insert(name, count);
    }
    group.finish();
    if let Some(&count) = projected.get("postgres").filter(|count| **count > 0) {
        assert_eq!(schema.matches(), count, "one match per game_end projected");
    }
}

// ---------------------------------------------------------------------------
// Timed: the writer end to end, the hand-off beside it.

/// Events per second from the first hand to `written` reaching the count,
/// one figure per run (after one unreported warm-up run).
fn writer_rates(sink: Box<dyn EventSink>, corpus: &Corpus, sizes: &Sizes) -> Vec<f64> {
    let (mut shard_taps, drain) = taps(1, TAP_CAPACITY);
    let tap = shard_taps.pop().expect("one tap");
    let writer = EventWriter::start(sink, drain).expect("start the writer");
    let stats = Arc::clone(writer.stats());
    let count = sizes.writer_events;
    assert!(count <= TAP_CAPACITY, "every run fits the queue");
    let mut rates = Vec::new();
    for run in 0..=sizes.writer_runs {
        let records = corpus.records(count);
        let before = stats.written.load(Ordering::Relaxed);
        let started = Instant::now();
        for record in records {
            assert!(tap.hand(record), "the queue holds a whole run");
        }
        wait_until("the writer stores every event", || {
            stats.written.load(Ordering::Relaxed) - before >= count as u64
        });
        if run > 0 {
            rates.push(count as f64 / started.elapsed().as_secs_f64());
        }
    }
    writer.stop();
    assert_clean(&stats);
    rates
}

fn assert_clean(stats: &WriterStats) {
    let failed = stats.failed.load(Ordering::Relaxed);
    let dropped = stats.buffer_dropped.load(Ordering::Relaxed);
    let duplicates = stats.duplicates.load(Ordering::Relaxed);
    assert_eq!((failed, dropped, duplicates), (0, 0, 0), "the writer stored everything once");
}

fn measure_writer(run: &Run, corpus: &Corpus) {
    let mut medians = Vec::new();
    if run.wants("writer/jetstream") {
        let own = OwnNats::start();
        let sink = Box::new(own.connect().publisher(MAX_AGE));
        let rates = writer_rates(sink, corpus, &run.sizes);
        let line = format!(
            "{} events a run: {}",
            run.sizes.writer_events,
            describe_rates(&rates, "events/s")
        );
        run.report("writer/jetstream", &[line]);
        medians.push(median(&rates));
    }
    if run.wants("writer/embedded") {
        let dir = tempfile::tempdir().expect("a directory for the log");
        let (log, _) = EventLog::open(dir.path(), LogOptions::default()).expect("open the log");
        let sink = Box::new(EmbeddedStream::new(SharedLog::new(log, dir.path())));
        let rates = writer_rates(sink, corpus, &run.sizes);
        let mut lines = vec![format!(
            "{} events a run: {}",
            run.sizes.writer_events,
            describe_rates(&rates, "events/s")
        )];
        if let [jetstream] = medians[..] {
            lines.push(format!("jetstream / embedded: {:.2}", jetstream / median(&rates)));
        }
        run.report("writer/embedded", &lines);
    }
}

/// Nanoseconds per event handed, one sample per burst of [`HAND_BURST`],
/// a burst every millisecond (as a shard hands a tick's events).
fn hand_bursts(tap: &EventTap, record: &TapRecord, bursts: usize) -> Histogram<u64> {
    let mut histogram = Histogram::new_with_bounds(1, 1_000_000_000, 3).expect("histogram");
    let mut seq = 1 << 32;
    let mut next = Instant::now();
    for _ in 0..bursts {
        let started = Instant::now();
        for _ in 0..HAND_BURST {
            let mut handed = record.clone();
            seq += 1;
            handed.seq = seq;
            tap.hand(black_box(handed));
        }
        let per_event = started.elapsed().as_nanos() as u64 / HAND_BURST as u64;
        histogram.saturating_record(per_event.max(1));
        next += Duration::from_millis(1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    histogram
}

fn describe_ns(histogram: &Histogram<u64>) -> String {
    format!(
        "{} bursts of {HAND_BURST}: per event mean {:.1} ns, p50 {} ns, p99 {} ns, max {} ns",
        histogram.len(),
        histogram.mean(),
        histogram.value_at_quantile(0.5),
        histogram.value_at_quantile(0.99),
        histogram.max()
    )
}

fn measure_hand(run: &Run, corpus: &Corpus) {
    let record = corpus.piece_lock();
    let bursts = run.sizes.hand_bursts;
    assert!(bursts * HAND_BURST < TAP_CAPACITY, "the undrained queue never fills");
    let mut means = Vec::new();
    if run.wants("hand/jetstream_writer") {
        let own = OwnNats::start();
        let (mut shard_taps, drain) = taps(1, TAP_CAPACITY);
        let tap = shard_taps.pop().expect("one tap");
        let writer = EventWriter::start(Box::new(own.connect().publisher(MAX_AGE)), drain)
            .expect("start the writer");
        let stats = Arc::clone(writer.stats());
        let histogram = hand_bursts(&tap, &record, bursts);
        let handed = tap.stats().handed.load(Ordering::Relaxed);
        wait_until("the writer stores the handed events", || {
            stats.written.load(Ordering::Relaxed) >= handed
        });
        writer.stop();
        assert_eq!(tap.stats().dropped.load(Ordering::Relaxed), 0, "the writer kept up");
        assert_clean(&stats);
        run.report("hand/jetstream_writer", &[describe_ns(&histogram)]);
        means.push(histogram.mean());
    }
    if run.wants("hand/no_drain") {
        let (mut shard_taps, _drain) = taps(1, TAP_CAPACITY);
        let tap = shard_taps.pop().expect("one tap");
        let histogram = hand_bursts(&tap, &record, bursts);
        assert_eq!(tap.stats().dropped.load(Ordering::Relaxed), 0);
        let mut lines = vec![describe_ns(&histogram)];
        if let [draining] = means[..] {
            lines.push(format!(
                "jetstream_writer / no_drain (means): {:.2}",
                draining / histogram.mean()
            ));
        }
        run.report("hand/no_drain", &lines);
    }
}

// ---------------------------------------------------------------------------
// Timed: the projector's consumer thread over JetStream, into Postgres.

/// Publishes `events`, then waits until the consumer has finished as many
/// more; events per second from the first publish.
fn consume(publisher: &mut dyn EventSink, stats: &ConsumerStats, events: &[Outgoing]) -> f64 {
    let before = finished(stats);
    let started = Instant::now();
    for batch in events.chunks(BATCH) {
        publisher.publish(batch).expect("publish");
    }
    wait_until("the projector handles every event", || {
        finished(stats) - before >= events.len() as u64
    });
    events.len() as f64 / started.elapsed().as_secs_f64()
}

/// Matches per second through `MatchProjector::handle` called directly
/// (no stream), on game_ends of fresh rooms.
fn handle_rate(projector: &mut MatchProjector, corpus: &Corpus, count: usize) -> f64 {
    let first = next_rooms(count);
    let events: Vec<StoredEvent> = (0..count as u64)
        .map(|n| {
            let event = corpus.game_end(first + n);
            StoredEvent {
                seq: n + 1,
                time_ms: event.time_ms,
                subject: event.subject,
                msg_id: event.msg_id,
                payload: event.payload,
            }
        })
        .collect();
    let started = Instant::now();
    for event in &events {
        projector.handle(event).expect("project");
    }
    count as f64 / started.elapsed().as_secs_f64()
}

fn measure_consumer(run: &Run, corpus: &Corpus) {
    let ids = ["consumer/game_ends", "consumer/mixed"];
    if !run.wants_any(&ids) {
        return;
    }
    let own = OwnNats::start();
    let nats = own.connect();
    let mut schema = BenchSchema::create();
    let projector = MatchProjector::new(Box::new(schema.store()));
    let times = ConsumerTimes::new();
    let thread =
        ConsumerThread::start(PROJECTOR, projector_consumer(&nats, &times), Box::new(projector))
            .expect("start the consumer thread");
    let stats = Arc::clone(thread.stats());
    let mut publisher = nats.publisher(MAX_AGE);
    let game_ends = |count: usize| -> Vec<Outgoing> {
        let first = next_rooms(count);
        (0..count as u64).map(|n| corpus.game_end(first + n)).collect()
    };
    // Warm-up: the consumer made, the database connected.
    consume(&mut publisher, &stats, &game_ends(3));
    times.take();
    let mut expected = 3;
    if run.wants(ids[0]) {
        // The same projection without the stream, in the same schema, just
        // before each run: what the consumer thread adds.
        let mut direct = MatchProjector::new(Box::new(schema.store()));
        let count = run.sizes.consumer_matches;
        let mut direct_rates = Vec::new();
        let mut rates = Vec::new();
        for _ in 0..run.sizes.consumer_runs {
            direct_rates.push(handle_rate(&mut direct, corpus, count));
            rates.push(consume(&mut publisher, &stats, &game_ends(count)));
        }
        expected += 2 * count * run.sizes.consumer_runs;
        let lines = [
            format!("{count} game_ends a run: {}", describe_rates(&rates, "matches/s")),
            format!(
                "handle() alone before each run: {}",
                describe_rates(&direct_rates, "matches/s")
            ),
            format!("consumer / handle() alone: {:.2}", median(&rates) / median(&direct_rates)),
            times.take(),
        ];
        run.report(ids[0], &lines);
    }
    if run.wants(ids[1]) {
        let count = run.sizes.consumer_events;
        let mut matches = 0;
        let rates: Vec<f64> = (0..run.sizes.consumer_runs)
            .map(|_| {
                let events = encode(&corpus.records(count));
                matches += events.iter().filter(|event| is_game_end(&event.payload)).count();
                consume(&mut publisher, &stats, &events)
            })
            .collect();
        expected += matches;
        let lines = [
            format!(
                "{count} events a run ({matches} game_ends in all): {}",
                describe_rates(&rates, "events/s")
            ),
            times.take(),
        ];
        run.report(ids[1], &lines);
    }
    thread.stop();
    assert_eq!(stats.skipped.load(Ordering::Relaxed), 0, "every event taken");
    assert_eq!(schema.matches(), expected as i64, "one row per game_end");
}

fn is_game_end(payload: &[u8]) -> bool {
    let value: serde_json::Value = serde_json::from_slice(payload).expect("JSON");
    value["type"] == "game_end"
}

// ---------------------------------------------------------------------------
// Timed: game_end to its row in Postgres, end to end.

/// The projector, telling when each event is done (its transaction
/// committed, before the acknowledgement).
struct Timed {
    projector: MatchProjector,
    done: crossbeam::channel::Sender<(String, Instant)>,
}

impl Handler for Timed {
    fn handle(&mut self, event: &StoredEvent) -> Result<(), HandleError> {
        self.projector.handle(event)?;
        let _ = self.done.send((event.msg_id.clone(), Instant::now()));
        Ok(())
    }
}

/// The JetStream writer and the projector's consumer thread into
/// Postgres, as `ludus serve` runs them with NATS_URL and DATABASE_URL.
/// Fields drop in order: the threads before the schema and NATS.
struct LagPipeline {
    writer: EventWriter,
    thread: ConsumerThread,
    tap: EventTap,
    committed: crossbeam::channel::Receiver<(String, Instant)>,
    times: ConsumerTimes,
    matches: usize,
    schema: BenchSchema,
    _own: OwnNats,
}

impl LagPipeline {
    /// Starts everything and warms it up with one match (the consumer
    /// made, the database connected).
    fn start(corpus: &Corpus) -> LagPipeline {
        let own = OwnNats::start();
        let nats = own.connect();
        let schema = BenchSchema::create();
        let (done, committed) = crossbeam::channel::unbounded();
        let timed = Timed { projector: MatchProjector::new(Box::new(schema.store())), done };
        let times = ConsumerTimes::new();
        let factory = projector_consumer(&nats, &times);
        let thread = ConsumerThread::start(PROJECTOR, factory, Box::new(timed))
            .expect("start the consumer thread");
        let (mut shard_taps, drain) = taps(1, TAP_CAPACITY);
        let tap = shard_taps.pop().expect("one tap");
        let writer =
            EventWriter::start(Box::new(nats.publisher(MAX_AGE)), drain).expect("start the writer");
        let mut pipeline =
            LagPipeline { writer, thread, tap, committed, times, matches: 0, schema, _own: own };
        pipeline.phase(corpus, 1, 0);
        pipeline.times.take();
        pipeline
    }

    /// Hands a match's game_start now; returns its game_end, to hand later.
    fn hand_start(&self, corpus: &Corpus, room: u64) -> TapRecord {
        let [start, end] = corpus.start_and_end(room, unix_ms(), 0);
        assert!(self.tap.hand(start));
        end
    }

    /// Hands a game_end now: its message id and when it was handed.
    fn hand_end(&self, mut end: TapRecord) -> (String, Instant) {
        end.time_ms = unix_ms();
        let id = message_id(&end);
        let at = Instant::now();
        assert!(self.tap.hand(end));
        (id, at)
    }

    /// Microseconds from handing each of `count` game_ends to its match
    /// committed, one ending every [`LAG_STEP`], with `background` other
    /// events handed per step; and the events handed per second.
    fn phase(&mut self, corpus: &Corpus, count: usize, background: usize) -> (Histogram<u64>, f64) {
        let first = next_rooms(count);
        let mut ends = VecDeque::with_capacity(LAG_LEAD + 1);
        for n in 0..LAG_LEAD.min(count) {
            ends.push_back(self.hand_start(corpus, first + n as u64));
        }
        let mut others = corpus.background(background * count).into_iter();
        let mut handed: HashMap<String, Instant> = HashMap::with_capacity(count);
        let started = Instant::now();
        for n in 0..count {
            if n + LAG_LEAD < count {
                ends.push_back(self.hand_start(corpus, first + (n + LAG_LEAD) as u64));
            }
            for record in others.by_ref().take(background) {
                assert!(self.tap.hand(record));
            }
            let (id, at) = self.hand_end(ends.pop_front().expect("started"));
            handed.insert(id, at);
            let next = started + LAG_STEP * (n + 1) as u32;
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        let handing = started.elapsed().as_secs_f64();
        let mut lags = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("histogram");
        while lags.len() < handed.len() as u64 {
            let (id, at) = self.committed.recv_timeout(WAIT_LIMIT).expect("every match committed");
            if let Some(handed_at) = handed.get(&id) {
                lags.saturating_record(at.duration_since(*handed_at).as_micros().max(1) as u64);
            }
        }
        self.matches += count;
        (lags, count as f64 * (2 + background) as f64 / handing)
    }

    fn stop(mut self) {
        let stats = Arc::clone(self.writer.stats());
        let LagPipeline { writer, thread, .. } = self;
        writer.stop();
        thread.stop();
        assert_clean(&stats);
        assert_eq!(self.schema.matches(), self.matches as i64, "every match stored once");
    }
}

fn measure_lag(run: &Run, corpus: &Corpus) {
    let phases = [("lag/quiet", 0), ("lag/loaded", LAG_BACKGROUND)];
    if !phases.iter().any(|(id, _)| run.wants(id)) {
        return;
    }
    let mut pipeline = LagPipeline::start(corpus);
    for (id, background) in phases {
        if !run.wants(id) {
            continue;
        }
        let (lags, events_per_s) = pipeline.phase(corpus, run.sizes.lag_matches, background);
        let ms = |us: u64| us as f64 / 1_000.0;
        let lines = [
            format!(
                "{} matches, one ending every {LAG_STEP:?}, {events_per_s:.0} events/s handed",
                lags.len()
            ),
            format!(
                "game_end handed -> row committed: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, \
                 max {:.1} ms, mean {:.1} ms",
                ms(lags.value_at_quantile(0.5)),
                ms(lags.value_at_quantile(0.9)),
                ms(lags.value_at_quantile(0.99)),
                ms(lags.max()),
                lags.mean() / 1_000.0
            ),
            format!("longer than 1 s: {}", lags.count_between(1_000_000, u64::MAX)),
            pipeline.times.take(),
        ];
        run.report(id, &lines);
    }
    pipeline.stop();
}

// ---------------------------------------------------------------------------

fn main() {
    // The library's warnings (a fetch or publish retried, events skipped)
    // would otherwise go nowhere: they explain odd figures.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let run = Run::from_args();
    if run.list {
        for id in CRITERION_IDS.iter().chain(&TIMED_IDS).filter(|id| run.wants(id)) {
            println!("{id}: benchmark");
        }
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    if !run.wants_any(&CRITERION_IDS) && !run.wants_any(&TIMED_IDS) {
        return;
    }
    let corpus = Corpus::play(run.sizes.matches_played);
    if !run.test {
        println!("events: {}\n", corpus.describe());
    }
    if run.wants(CRITERION_IDS[0]) {
        bench_encode(&mut criterion, &corpus);
    }
    if run.wants_any(&CRITERION_IDS[1..3]) {
        bench_publish(&mut criterion, &corpus);
    }
    if run.wants_any(&CRITERION_IDS[3..]) {
        bench_project(&mut criterion, &corpus);
    }
    measure_writer(&run, &corpus);
    measure_hand(&run, &corpus);
    measure_consumer(&run, &corpus);
    measure_lag(&run, &corpus);
    criterion.final_summary();
}
