//! The embedded event log (src/services/events/log.rs): what a services
//! thread pays to append one game event (a 200-byte JSON payload, the size
//! of a piece lock) with the default fsync policy (at most every 100 ms),
//! and with an fsync per event; and what a replay pays to read a room's
//! events back (1,000 events of two interleaved rooms, one room's half).
//!
//! And the shard's side: handing one event (a piece lock, the largest
//! kind) to the event writer's queue while a thread drains it, as the
//! writer does (the issue's target: at most 100 ns per event).
//!
//! `cargo bench --bench event_log`. The log lives in a temporary
//! directory on the machine's disk; the fsync figure is the disk's.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ludus::proto::wire::GameKind;
use ludus::services::events::log::{EventLog, FsyncPolicy, LogOptions};
use ludus::services::events::subject::SubjectFilter;
use ludus::services::events::tap::{taps, TapRecord, TAP_CAPACITY};
use ludus::sim::event::{Event, EventKind, Lock, Piece, Placement, Rotation, Spin};

fn payload() -> Vec<u8> {
    let mut event = br#"{"tick":1234,"type":"piece_lock","player_id":"4611686018427388321","data":{"piece":"T","x":4,"y":17,"rotation":2,"t_spin":"full","lines":2,"combo":3,"b2b":true}}"#.to_vec();
    event.resize(200, b' ');
    event
}

fn bench_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("event_log_append");
    group.throughput(Throughput::Elements(1));
    let payload = payload();
    for (name, fsync) in [
        ("interval_100ms", FsyncPolicy::Interval(Duration::from_millis(100))),
        ("fsync_each", FsyncPolicy::Always),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = LogOptions { fsync, ..LogOptions::default() };
        let (mut log, _) = EventLog::open(dir.path(), options).expect("open the log");
        let mut n = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                let id = format!("4503599627370497-{n}");
                black_box(log.append("game.4503599627370497.events", &id, &payload, 1_000).unwrap())
            })
        });
        log.sync().unwrap();
    }
    group.finish();
}

fn bench_read(c: &mut Criterion) {
    let mut group = c.benchmark_group("event_log_read");
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut log, _) = EventLog::open(dir.path(), LogOptions::default()).expect("open the log");
    let payload = payload();
    for n in 0..1_000u64 {
        let subject = format!("game.{}.events", 1 + n % 2);
        log.append(&subject, "", &payload, 1_000).unwrap();
    }
    log.sync().unwrap();
    let room = SubjectFilter::new("game.1.>").unwrap();
    group.throughput(Throughput::Elements(500));
    group.bench_function("replay_500_of_1000", |b| {
        b.iter_batched(
            || Vec::with_capacity(500),
            |mut out| {
                log.read(1, &room, usize::MAX, &mut out).unwrap();
                assert_eq!(out.len(), 500);
                out
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn lock_record() -> TapRecord {
    let placement = Placement { piece: Piece::T, rotation: Rotation::Reverse, x: 4, y: 17 };
    let lock = Lock {
        placement,
        spin: Spin::Full,
        lines: 2,
        ren: 3,
        b2b_bonus: true,
        b2b_chain: 2,
        perfect_clear: false,
        attack: 5,
        cancelled: 1,
        sent: 4,
        target: Some(1),
        stack_height: 9,
        pending: 0,
        score: 12_345,
        board: [0x5a; 200],
    };
    TapRecord {
        room_id: 1 << 48 | 77,
        game: GameKind::Tetris,
        seq: 1,
        player_id: Some(4_611_686_018_427_388_321),
        time_ms: 1_763_830_512_000,
        players: None,
        event: Event { tick: 1_234, player: Some(0), kind: EventKind::PieceLock(lock) },
    }
}

fn bench_hand_off(c: &mut Criterion) {
    let mut group = c.benchmark_group("event_tap");
    group.throughput(Throughput::Elements(1));
    let (mut shard_taps, drain) = taps(1, TAP_CAPACITY);
    let tap = shard_taps.pop().expect("one tap");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drainer = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut out = Vec::with_capacity(1_024);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                out.clear();
                if drain.drain(1_024, &mut out) == 0 {
                    std::thread::yield_now();
                }
            }
        })
    };
    let record = lock_record();
    group.bench_function("hand_piece_lock", |b| b.iter(|| tap.hand(black_box(record.clone()))));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drainer.join().expect("the drainer");
    let stats = tap.stats();
    let dropped = stats.dropped.load(std::sync::atomic::Ordering::Relaxed);
    let handed = stats.handed.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("event_tap: {handed} handed, {dropped} dropped (queue full)");
    group.finish();
}

criterion_group!(benches, bench_hand_off, bench_append, bench_read);
criterion_main!(benches);
