//! The embedded event log (src/services/events/log.rs): what a services
//! thread pays to append one game event (a 200-byte JSON payload, the size
//! of a piece lock) with the default fsync policy (at most every 100 ms),
//! and with an fsync per event; and what a replay pays to read a room's
//! events back (1,000 events of two interleaved rooms, one room's half).
//!
//! `cargo bench --bench event_log`. The log lives in a temporary
//! directory on the machine's disk; the fsync figure is the disk's.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ludus::services::events::log::{EventLog, FsyncPolicy, LogOptions};
use ludus::services::events::subject::SubjectFilter;

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

criterion_group!(benches, bench_append, bench_read);
criterion_main!(benches);
