use std::fs;
use std::io::Write;
use std::time::Duration;

use super::*;

fn options() -> LogOptions {
    LogOptions { fsync: FsyncPolicy::Always, ..LogOptions::default() }
}

fn all() -> SubjectFilter {
    SubjectFilter::new(">").unwrap()
}

fn payload(seq: u64) -> Vec<u8> {
    format!("{{\"tick\":{seq},\"type\":\"piece_lock\"}}").into_bytes()
}

/// Appends `count` events alternating between two rooms' subjects.
fn fill(log: &mut EventLog, count: u64) {
    for n in 0..count {
        let room = 1 + n % 2;
        let subject = format!("game.{room}.events");
        let seq = log.next_seq();
        let appended =
            log.append(&subject, &format!("{room}-{seq}"), &payload(seq), 1_000).unwrap();
        assert_eq!(appended, Appended::New(seq));
    }
}

/// The bytes `fill` wrote for event `seq`.
fn filled_record_len(seq: u64) -> u64 {
    let room = 1 + (seq - 1) % 2;
    let subject = format!("game.{room}.events");
    let id = format!("{room}-{seq}");
    (RECORD_PREFIX_LEN + BODY_FIXED_LEN + subject.len() + id.len() + payload(seq).len()) as u64
}

fn read_all(log: &mut EventLog, from: u64, filter: &SubjectFilter) -> Vec<StoredEvent> {
    let mut out = Vec::new();
    let next = log.read(from, filter, usize::MAX, &mut out).unwrap();
    assert_eq!(next, log.next_seq());
    out
}

fn only_segment(dir: &Path) -> PathBuf {
    let mut paths = segments(dir);
    paths.pop().unwrap()
}

/// The segment files, oldest first (not the LOCK file).
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "seg"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn events_are_numbered_from_one_and_read_back_by_subject() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, recovery) = EventLog::open(dir.path(), options()).unwrap();
    assert_eq!((recovery.records, log.next_seq(), log.first_seq()), (0, 1, 1));
    fill(&mut log, 10);
    log.append("game.1.moments", "", b"{\"type\":\"tetris\"}", 2_000).unwrap();
    let everything = read_all(&mut log, 1, &all());
    assert_eq!(everything.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=11).collect::<Vec<_>>());
    assert_eq!(everything[0].payload, payload(1));
    assert_eq!((everything[0].time_ms, everything[0].msg_id.as_str()), (1_000, "1-1"));

    let room_1 = read_all(&mut log, 1, &SubjectFilter::new("game.1.>").unwrap());
    assert_eq!(room_1.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 3, 5, 7, 9, 11]);
    let events = read_all(&mut log, 4, &SubjectFilter::new("game.*.events").unwrap());
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5, 6, 7, 8, 9, 10]);

    // A page: `max` matching events, and where to go on.
    let mut page = Vec::new();
    let next = log.read(1, &SubjectFilter::new("game.2.events").unwrap(), 2, &mut page).unwrap();
    assert_eq!((page.iter().map(|e| e.seq).collect::<Vec<_>>(), next), (vec![2, 4], 5));
}

#[test]
fn a_reopened_log_has_every_event_and_continues_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = EventLog::open(dir.path(), options()).unwrap();
    fill(&mut log, 200);
    drop(log);
    let (mut log, recovery) = EventLog::open(dir.path(), options()).unwrap();
    assert_eq!(recovery, Recovery { segments: 1, records: 200, truncated_bytes: 0 });
    assert_eq!(log.append("game.9.events", "", b"{}", 5).unwrap(), Appended::New(201));
    assert_eq!(read_all(&mut log, 150, &all()).len(), 52);
}

#[test]
fn a_torn_tail_is_cut_and_the_log_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = EventLog::open(dir.path(), options()).unwrap();
    fill(&mut log, 10);
    drop(log);
    let path = only_segment(dir.path());
    let length = fs::metadata(&path).unwrap().len();
    // The last record half written, as a crash mid-write leaves it.
    fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(length - 7).unwrap();
    let (mut log, recovery) = EventLog::open(dir.path(), options()).unwrap();
    assert_eq!(recovery.records, 9);
    assert_eq!(recovery.truncated_bytes, filled_record_len(10) - 7);
    assert_eq!(log.append("game.2.events", "2-10", &payload(10), 1).unwrap(), Appended::New(10));
    assert_eq!(read_all(&mut log, 1, &all()).len(), 10);

    // Garbage after the last record (a write that never completed its
    // length) goes the same way.
    drop(log);
    fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&[0xab; 5]).unwrap();
    let (mut log, recovery) = EventLog::open(dir.path(), options()).unwrap();
    assert_eq!((recovery.records, recovery.truncated_bytes), (10, 5));
    assert_eq!(read_all(&mut log, 1, &all()).len(), 10);
}

#[test]
fn a_flipped_bit_in_the_last_segment_cuts_from_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = EventLog::open(dir.path(), options()).unwrap();
    fill(&mut log, 10);
    drop(log);
    let path = only_segment(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    let fifth = SEGMENT_HEADER_LEN + (1..=4).map(filled_record_len).sum::<u64>();
    bytes[fifth as usize + RECORD_PREFIX_LEN + 20] ^= 0x10;
    fs::write(&path, &bytes).unwrap();
    let (mut log, recovery) = EventLog::open(dir.path(), options()).unwrap();
    assert_eq!((recovery.records, recovery.truncated_bytes), (4, bytes.len() as u64 - fifth));
    assert_eq!(log.next_seq(), 5);
    assert_eq!(read_all(&mut log, 1, &all()).len(), 4);
}

#[test]
fn corruption_in_a_closed_segment_stops_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let small = LogOptions { segment_bytes: 1_024, ..options() };
    let (mut log, _) = EventLog::open(dir.path(), small).unwrap();
    fill(&mut log, 100);
    assert!(log.segment_count() > 2);
    drop(log);
    let paths = segments(dir.path());
    let mut bytes = fs::read(&paths[0]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&paths[0], &bytes).unwrap();
    match EventLog::open(dir.path(), small) {
        Err(LogError::Corrupt { path, reason, .. }) => {
            assert_eq!(path, paths[0]);
            assert_eq!(reason, "a record checksum mismatch");
        }
        other => panic!("corruption must stop the open: {:?}", other.map(|(_, r)| r)),
    }
    // A missing segment in the middle is a gap, refused the same way.
    fs::write(&paths[0], fs::read(&paths[0]).unwrap()).unwrap();
    bytes[last] ^= 1;
    fs::write(&paths[0], &bytes).unwrap();
    fs::remove_file(&paths[1]).unwrap();
    assert!(matches!(EventLog::open(dir.path(), small), Err(LogError::Corrupt { .. })));
}

#[test]
fn segments_roll_and_reads_cross_them_from_any_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let small = LogOptions { segment_bytes: 4_096, ..options() };
    let (mut log, _) = EventLog::open(dir.path(), small).unwrap();
    fill(&mut log, 1_000);
    assert!(log.segment_count() >= 10, "{} segments", log.segment_count());
    for from in [1, 63, 64, 65, 500, 999, 1_000] {
        let events = read_all(&mut log, from, &all());
        assert_eq!(events.first().map(|e| e.seq), Some(from));
        assert_eq!(events.len() as u64, 1_001 - from);
        assert!(events.windows(2).all(|pair| pair[1].seq == pair[0].seq + 1));
    }
    assert!(read_all(&mut log, 1_001, &all()).is_empty());
    drop(log);
    let (mut log, recovery) = EventLog::open(dir.path(), small).unwrap();
    assert_eq!(recovery.records, 1_000);
    assert_eq!(read_all(&mut log, 700, &SubjectFilter::new("game.1.events").unwrap()).len(), 150);
}

#[test]
fn a_message_id_is_appended_once_within_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let window = LogOptions { duplicate_window: Duration::from_secs(120), ..options() };
    let (mut log, _) = EventLog::open(dir.path(), window).unwrap();
    assert_eq!(log.append("game.1.events", "1-0", b"a", 0).unwrap(), Appended::New(1));
    assert_eq!(log.append("game.1.events", "1-1", b"b", 10).unwrap(), Appended::New(2));
    assert_eq!(log.append("game.1.events", "1-0", b"a", 20).unwrap(), Appended::Duplicate(1));
    assert_eq!(log.append("game.1.events", "", b"c", 30).unwrap(), Appended::New(3));
    assert_eq!(log.append("game.1.events", "", b"c", 30).unwrap(), Appended::New(4), "no id");
    assert_eq!(log.append("game.1.events", "1-0", b"a", 120_001).unwrap(), Appended::New(5));
    assert_eq!(read_all(&mut log, 1, &all()).len(), 5);
    drop(log);
    // The window survives a restart: a retry after it is still caught.
    let (mut log, _) = EventLog::open(dir.path(), window).unwrap();
    assert_eq!(log.append("game.1.events", "1-0", b"a", 120_002).unwrap(), Appended::Duplicate(5));
    assert_eq!(log.append("game.1.events", "1-1", b"b", 120_003).unwrap(), Appended::Duplicate(2));
    assert_eq!(log.append("game.1.events", "1-1", b"b", 120_011).unwrap(), Appended::New(6));
}

#[test]
fn a_reader_sees_a_live_log_without_locking_or_repairing_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = EventLog::open(dir.path(), options()).unwrap();
    fill(&mut log, 10);
    let path = only_segment(dir.path());
    // A half-written record at the end, as a writer mid-append leaves it.
    fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&[1, 2, 3]).unwrap();
    let length = fs::metadata(&path).unwrap().len();
    let mut reader = LogReader::open(dir.path()).unwrap();
    let mut out = Vec::new();
    assert_eq!(reader.read(1, &all(), usize::MAX, &mut out).unwrap(), 11);
    assert_eq!(out.len(), 10);
    assert_eq!(fs::metadata(&path).unwrap().len(), length, "the reader changed nothing");
}

#[test]
fn one_writer_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = EventLog::open(dir.path(), options()).unwrap();
    match EventLog::open(dir.path(), options()) {
        Err(LogError::InUse(path)) => assert_eq!(path, dir.path()),
        other => panic!("a second writer must be refused: {:?}", other.map(|(_, r)| r)),
    }
    drop(log);
    assert!(EventLog::open(dir.path(), options()).is_ok(), "free again once closed");
}

#[test]
fn a_segment_created_just_before_a_crash_is_redone() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = EventLog::open(dir.path(), options()).unwrap();
    fill(&mut log, 3);
    drop(log);
    // The next segment's file exists, its header never written.
    fs::File::create(segment_path(dir.path(), 4)).unwrap();
    let (mut log, recovery) = EventLog::open(dir.path(), options()).unwrap();
    assert_eq!((recovery.records, log.next_seq()), (3, 4));
    assert_eq!(log.append("game.1.events", "", b"{}", 1).unwrap(), Appended::New(4));
    drop(log);
    let (mut log, _) = EventLog::open(dir.path(), options()).unwrap();
    assert_eq!(read_all(&mut log, 1, &all()).len(), 4);
}

#[test]
fn retention_drops_closed_segments_past_the_maximum_age() {
    let dir = tempfile::tempdir().unwrap();
    let aged = LogOptions { segment_bytes: 1_024, max_age: Duration::from_secs(60), ..options() };
    let (mut log, _) = EventLog::open(dir.path(), aged).unwrap();
    for n in 0..60u64 {
        log.append("game.1.events", "", &payload(n), n as i64 * 1_000).unwrap();
    }
    let segments = log.segment_count();
    assert!(segments > 3);
    assert_eq!(log.retain(60_000).unwrap(), 0, "nothing older than a minute yet");
    let removed = log.retain(100_000).unwrap();
    assert!(removed > 0 && log.segment_count() == segments - removed);
    let first = log.first_seq();
    assert!(first > 1);
    let events = read_all(&mut log, 1, &all());
    assert_eq!(events.first().map(|e| e.seq), Some(first), "reads start at the oldest kept");
    // Event n (seq n + 1) was stamped n s: every one dropped was older than
    // the minute, and the oldest segment kept has one that is not.
    assert!(((first - 2) as i64) * 1_000 < 100_000 - 60_000);
    assert!(events.iter().take_while(|e| e.seq < first + 20).any(|e| e.time_ms >= 40_000));
    let before = log.segment_count();
    assert_eq!(log.retain(i64::MAX).unwrap(), before - 1);
    assert_eq!(log.segment_count(), 1, "the active segment stays");
    let kept = log.first_seq();
    drop(log);
    let (log, _) = EventLog::open(dir.path(), aged).unwrap();
    assert_eq!((log.first_seq(), log.next_seq()), (kept, 61));
}

#[test]
fn bad_input_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = EventLog::open(dir.path(), options()).unwrap();
    assert!(matches!(log.append("game.*.events", "", b"", 0), Err(LogError::Subject(_))));
    assert!(matches!(log.append("", "", b"", 0), Err(LogError::Subject(_))));
    let long_id = "x".repeat(MSG_ID_LEN_MAX + 1);
    assert!(matches!(log.append("game.1.events", &long_id, b"", 0), Err(LogError::MsgId)));
    let huge = vec![0u8; PAYLOAD_MAX + 1];
    assert!(matches!(log.append("game.1.events", "", &huge, 0), Err(LogError::Payload)));
    assert_eq!(log.next_seq(), 1);
    let biggest = vec![7u8; PAYLOAD_MAX];
    assert_eq!(log.append("game.1.events", "", &biggest, 0).unwrap(), Appended::New(1));
    assert_eq!(read_all(&mut log, 1, &all())[0].payload.len(), PAYLOAD_MAX);
}

#[test]
fn the_interval_policy_syncs_on_tick() {
    let dir = tempfile::tempdir().unwrap();
    let interval = LogOptions { fsync: FsyncPolicy::Interval(Duration::ZERO), ..options() };
    let (mut log, _) = EventLog::open(dir.path(), interval).unwrap();
    fill(&mut log, 3);
    log.tick().unwrap();
    assert!(log.unsynced_since.is_none());
    drop(log);
    let lazy = LogOptions { fsync: FsyncPolicy::Interval(Duration::from_secs(3_600)), ..options() };
    let (mut log, _) = EventLog::open(dir.path(), lazy).unwrap();
    fill(&mut log, 1);
    log.tick().unwrap();
    assert!(log.unsynced_since.is_some(), "not yet due");
    log.sync().unwrap();
    assert!(log.unsynced_since.is_none());
}
