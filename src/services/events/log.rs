//! The embedded event store: an append-only log of checksummed records in
//! segment files under `<data dir>/events/`, for running with no NATS. It
//! keeps JetStream's model where the history needs it: one stream, a
//! sequence from 1 with no gaps, subjects and filters, a message id that
//! deduplicates a retried publish, retention by age.
//!
//! Files. `NNNNNNNNNNNNNNNNNNNN.seg`, named by the first sequence it holds
//! (20 digits, so names sort as numbers do). A segment starts with a
//! 16-byte header (magic `LUDUSEV1`, first sequence u64 LE), then records:
//!
//! ```text
//! u32 crc32c    of everything after it in the record
//! u32 body_len  bytes that follow
//! u64 seq | i64 time_ms | u16 subject_len | subject | u16 id_len | msg_id | payload
//! ```
//!
//! Little-endian throughout. A segment is closed (a new one started) past
//! [`LogOptions::segment_bytes`].
//!
//! Durability. [`FsyncPolicy::Always`] fsyncs before `append` returns: an
//! appended event survives power loss. [`FsyncPolicy::Interval`] (the
//! default) fsyncs at most that often, from `append` or `tick`: a process
//! crash loses nothing (the bytes are in the kernel), a power loss at most
//! the interval. Game events are published fire-and-forget, so the second
//! is the right trade for them.
//!
//! Recovery. Opening reads every record of every segment and checks it. A
//! torn write can only be at the end of the last segment: from its first
//! bad record (short, over-long, wrong checksum, wrong sequence) the file
//! is truncated, and `Recovery` says how many bytes went. A bad record in
//! an earlier segment is corruption, not a torn write: opening fails and
//! says where, rather than silently dropping acknowledged events.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::crc32c::Crc32c;
use super::subject::{check_subject, SubjectError, SubjectFilter};

const MAGIC: &[u8; 8] = b"LUDUSEV1";
const SEGMENT_HEADER_LEN: u64 = 16;
/// crc32c and body_len.
const RECORD_PREFIX_LEN: usize = 8;
/// seq, time, subject length, id length.
const BODY_FIXED_LEN: usize = 8 + 8 + 2 + 2;
/// Longest message id (JetStream's Nats-Msg-Id), in bytes.
pub const MSG_ID_LEN_MAX: usize = 128;
/// Largest payload, in bytes (JetStream's default max message size).
pub const PAYLOAD_MAX: usize = 1024 * 1024;
/// Largest record body the reader accepts: more is a torn or bad length.
const BODY_MAX: usize =
    BODY_FIXED_LEN + super::subject::SUBJECT_LEN_MAX + MSG_ID_LEN_MAX + PAYLOAD_MAX;
/// Message ids remembered for deduplication, at most (oldest go first).
pub const DEDUP_IDS_MAX: usize = 100_000;
/// One in this many records of a segment is in its sparse index.
const INDEX_EVERY: u64 = 64;

/// When appended records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Before `append` returns.
    Always,
    /// At most this long after `append` (checked by `append` and `tick`).
    Interval(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    /// A segment is closed once it holds this many bytes.
    pub segment_bytes: u64,
    pub fsync: FsyncPolicy,
    /// Segments whose newest record is older are deleted by `retain`.
    pub max_age: Duration,
    /// A message id seen within this window is not appended twice.
    pub duplicate_window: Duration,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_bytes: 64 * 1024 * 1024,
            fsync: FsyncPolicy::Interval(Duration::from_millis(100)),
            max_age: Duration::from_secs(90 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("event log I/O at {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("event log segment {path} is corrupt at byte {offset}: {reason}")]
    Corrupt { path: PathBuf, offset: u64, reason: &'static str },
    #[error("subject: {0}")]
    Subject(#[from] SubjectError),
    #[error("a message id has at most {MSG_ID_LEN_MAX} bytes")]
    MsgId,
    #[error("a payload has at most {PAYLOAD_MAX} bytes")]
    Payload,
    #[error("the event log in {0} is open in another process (two writers would corrupt it)")]
    InUse(PathBuf),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError::Io { path: path.to_owned(), source }
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: u64,
    pub time_ms: i64,
    pub subject: String,
    pub msg_id: String,
    pub payload: Vec<u8>,
}

/// What opening found and repaired.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    pub segments: usize,
    pub records: u64,
    /// Bytes cut from the end of the last segment (a torn write).
    pub truncated_bytes: u64,
}

/// How an append ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    New(u64),
    /// The message id was appended before (within the window), at this
    /// sequence: nothing was written.
    Duplicate(u64),
}

impl Appended {
    pub fn seq(self) -> u64 {
        match self {
            Appended::New(seq) | Appended::Duplicate(seq) => seq,
        }
    }
}

#[derive(Debug)]
struct Segment {
    first_seq: u64,
    /// Sequence after the last record (== first_seq when empty).
    end_seq: u64,
    path: PathBuf,
    bytes: u64,
    newest_time_ms: i64,
    /// (seq, offset) of every INDEX_EVERY-th record, for reads from a seq.
    index: Vec<(u64, u64)>,
}

pub struct EventLog {
    dir: PathBuf,
    /// Held (flock) while the log is open: one writer per directory.
    _lock: File,
    options: LogOptions,
    segments: Vec<Segment>,
    active: File,
    next_seq: u64,
    unsynced_since: Option<Instant>,
    // One allocation per id, shared by the index and the order.
    dedup: HashMap<Arc<str>, u64>,
    /// (time, id, seq) in append order; an entry whose id was appended
    /// again since no longer owns the id's mapping.
    dedup_order: VecDeque<(i64, Arc<str>, u64)>,
    scratch: Vec<u8>,
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.seg"))
}

impl EventLog {
    /// Opens (creating) the log in `dir`, checking every record and
    /// truncating a torn tail.
    pub fn open(dir: &Path, options: LogOptions) -> Result<(EventLog, Recovery), LogError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let lock = lock_dir(dir)?;
        let mut firsts = segment_firsts(dir)?;
        firsts.sort_unstable();
        let mut recovery = Recovery::default();
        let mut segments = Vec::new();
        let mut recent_ids = VecDeque::new();
        let count = firsts.len();
        for (index, first_seq) in firsts.into_iter().enumerate() {
            let path = segment_path(dir, first_seq);
            let last = index + 1 == count;
            let length = fs::metadata(&path).map_err(io_error(&path))?.len();
            if last && length < SEGMENT_HEADER_LEN {
                // Created, then a crash before its header was on disk.
                fs::remove_file(&path).map_err(io_error(&path))?;
                recovery.truncated_bytes += length;
                continue;
            }
            let expected_first = segments.last().map_or(first_seq, |s: &Segment| s.end_seq);
            if first_seq != expected_first {
                let reason = "the segment does not continue the previous one's sequence";
                return Err(LogError::Corrupt { path, offset: 0, reason });
            }
            let (segment, cut) = scan(&path, first_seq, last, Repair::Yes, &mut recent_ids)?;
            recovery.records += segment.end_seq - segment.first_seq;
            recovery.truncated_bytes += cut;
            segments.push(segment);
        }
        if segments.last().is_none_or(|segment| segment.bytes >= options.segment_bytes) {
            let next = segments.last().map_or(1, |segment| segment.end_seq);
            segments.push(create_segment(dir, next)?);
        }
        let newest_ms = segments.iter().map(|segment| segment.newest_time_ms).max();
        recovery.segments = segments.len();
        let tail = segments.last().expect("one segment at least");
        let active =
            OpenOptions::new().append(true).open(&tail.path).map_err(io_error(&tail.path))?;
        let next_seq = tail.end_seq;
        let dedup = recent_ids.iter().map(|(_, id, seq)| (id.clone(), *seq)).collect();
        let dedup_order = recent_ids;
        let mut log = EventLog {
            dir: dir.to_owned(),
            _lock: lock,
            options,
            segments,
            active,
            next_seq,
            unsynced_since: None,
            dedup,
            dedup_order,
            scratch: Vec::new(),
        };
        // A publisher retrying across our restart is still deduplicated.
        log.forget_old_ids(newest_ms.unwrap_or(i64::MIN));
        Ok((log, recovery))
    }

    /// The sequence the next event gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The oldest sequence still stored (== `next_seq` when none is).
    pub fn first_seq(&self) -> u64 {
        self.segments.first().map_or(self.next_seq, |segment| segment.first_seq)
    }

    /// Where to start reading for events stored at or after `time_ms`: the
    /// first sequence of the oldest segment holding anything that new.
    pub fn seq_near_time(&self, time_ms: i64) -> u64 {
        self.segments
            .iter()
            .find(|segment| {
                segment.end_seq > segment.first_seq && segment.newest_time_ms >= time_ms
            })
            .map_or(self.next_seq, |segment| segment.first_seq)
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Appends one event (or finds its message id already appended).
    pub fn append(
        &mut self,
        subject: &str,
        msg_id: &str,
        payload: &[u8],
        time_ms: i64,
    ) -> Result<Appended, LogError> {
        check_subject(subject)?;
        if msg_id.len() > MSG_ID_LEN_MAX {
            return Err(LogError::MsgId);
        }
        if payload.len() > PAYLOAD_MAX {
            return Err(LogError::Payload);
        }
        self.forget_old_ids(time_ms);
        if let Some(&seq) = self.dedup.get(msg_id).filter(|_| !msg_id.is_empty()) {
            return Ok(Appended::Duplicate(seq));
        }
        if self.segments.last().is_some_and(|s| s.bytes >= self.options.segment_bytes) {
            self.roll()?;
        }
        let seq = self.next_seq;
        encode_record(&mut self.scratch, seq, time_ms, subject, msg_id, payload);
        let segment = self.segments.last_mut().expect("an active segment");
        let offset = segment.bytes;
        if let Err(source) = self.active.write_all(&self.scratch) {
            // A partial write is cut now, so the next append does not land
            // after garbage (open would cut it too, and later records with it).
            let _ = self.active.set_len(offset);
            return Err(LogError::Io { path: segment.path.clone(), source });
        }
        if (seq - segment.first_seq).is_multiple_of(INDEX_EVERY) {
            segment.index.push((seq, offset));
        }
        segment.bytes += self.scratch.len() as u64;
        segment.end_seq = seq + 1;
        segment.newest_time_ms = segment.newest_time_ms.max(time_ms);
        self.next_seq = seq + 1;
        if !msg_id.is_empty() {
            let id: Arc<str> = Arc::from(msg_id);
            self.dedup.insert(Arc::clone(&id), seq);
            self.dedup_order.push_back((time_ms, id, seq));
        }
        self.unsynced_since.get_or_insert_with(Instant::now);
        match self.options.fsync {
            FsyncPolicy::Always => self.sync()?,
            FsyncPolicy::Interval(_) => self.tick()?,
        }
        Ok(Appended::New(seq))
    }

    /// Fsyncs when the interval policy says it is time.
    pub fn tick(&mut self) -> Result<(), LogError> {
        let interval = match self.options.fsync {
            FsyncPolicy::Always => Duration::ZERO,
            FsyncPolicy::Interval(interval) => interval,
        };
        if self.unsynced_since.is_some_and(|since| since.elapsed() >= interval) {
            self.sync()?;
        }
        Ok(())
    }

    /// Everything appended so far reaches the disk.
    pub fn sync(&mut self) -> Result<(), LogError> {
        if self.unsynced_since.take().is_some() {
            let path = &self.segments.last().expect("an active segment").path;
            self.active.sync_data().map_err(io_error(path))?;
        }
        Ok(())
    }

    /// Reads up to `max` events from `from_seq` on whose subject matches
    /// `filter`, appending them to `out`. Returns the sequence to read
    /// from next (past the last record looked at).
    pub fn read(
        &mut self,
        from_seq: u64,
        filter: &SubjectFilter,
        max: usize,
        out: &mut Vec<StoredEvent>,
    ) -> Result<u64, LogError> {
        read_segments(&self.segments, self.next_seq, &mut self.scratch, from_seq, filter, max, out)
    }

    /// Deletes closed segments whose newest event is older than the
    /// maximum age; returns how many went.
    pub fn retain(&mut self, now_ms: i64) -> Result<usize, LogError> {
        let max_age_ms = i64::try_from(self.options.max_age.as_millis()).unwrap_or(i64::MAX);
        let mut removed = 0;
        while self.segments.len() > 1
            && now_ms.saturating_sub(self.segments[0].newest_time_ms) > max_age_ms
        {
            let segment = self.segments.remove(0);
            fs::remove_file(&segment.path).map_err(io_error(&segment.path))?;
            removed += 1;
        }
        Ok(removed)
    }

    fn roll(&mut self) -> Result<(), LogError> {
        self.sync()?;
        let segment = create_segment(&self.dir, self.next_seq)?;
        self.active =
            OpenOptions::new().append(true).open(&segment.path).map_err(io_error(&segment.path))?;
        self.segments.push(segment);
        // The new file's name must survive a crash too.
        File::open(&self.dir).and_then(|dir| dir.sync_all()).map_err(io_error(&self.dir))?;
        Ok(())
    }

    fn forget_old_ids(&mut self, now_ms: i64) {
        let window_ms =
            i64::try_from(self.options.duplicate_window.as_millis()).unwrap_or(i64::MAX);
        while let Some((time_ms, _, _)) = self.dedup_order.front() {
            let expired = now_ms.saturating_sub(*time_ms) > window_ms;
            if !expired && self.dedup_order.len() <= DEDUP_IDS_MAX {
                break;
            }
            if let Some((_, id, seq)) = self.dedup_order.pop_front() {
                if self.dedup.get(&id) == Some(&seq) {
                    self.dedup.remove(&id);
                }
            }
        }
    }
}

fn read_segments(
    segments: &[Segment],
    next_seq: u64,
    scratch: &mut Vec<u8>,
    from_seq: u64,
    filter: &SubjectFilter,
    max: usize,
    out: &mut Vec<StoredEvent>,
) -> Result<u64, LogError> {
    let first_seq = segments.first().map_or(next_seq, |segment| segment.first_seq);
    let mut seq = from_seq.max(first_seq);
    let mut found = 0;
    while found < max && seq < next_seq {
        let Some(index) = segments.iter().rposition(|s| s.first_seq <= seq) else {
            break;
        };
        let segment = &segments[index];
        if seq >= segment.end_seq {
            // Appended past this segment only when it is the last one.
            break;
        }
        let (start_seq, offset) = segment
            .index
            .iter()
            .rev()
            .find(|(indexed, _)| *indexed <= seq)
            .copied()
            .unwrap_or((segment.first_seq, SEGMENT_HEADER_LEN));
        let file = File::open(&segment.path).map_err(io_error(&segment.path))?;
        let mut reader = BufReader::new(file);
        reader.seek(SeekFrom::Start(offset)).map_err(io_error(&segment.path))?;
        let mut at = start_seq;
        let mut position = offset;
        while at < segment.end_seq && found < max {
            let record = read_record(&mut reader, scratch).map_err(io_error(&segment.path))?;
            let Some(record) = record.ok() else {
                let path = segment.path.clone();
                let reason = "a record changed after it was checked";
                return Err(LogError::Corrupt { path, offset: position, reason });
            };
            position += record.len;
            if at >= seq && filter.matches(&record.event.subject) {
                out.push(record.event);
                found += 1;
            }
            at += 1;
        }
        seq = at;
    }
    Ok(seq)
}

/// A reader of a log another process may be writing (`ludus replay` next
/// to a running server): no lock, no repair; it sees the records complete
/// when it opened and stops at a torn tail.
pub struct LogReader {
    segments: Vec<Segment>,
    next_seq: u64,
    scratch: Vec<u8>,
}

impl LogReader {
    pub fn open(dir: &Path) -> Result<LogReader, LogError> {
        let mut firsts = segment_firsts(dir)?;
        firsts.sort_unstable();
        let mut segments: Vec<Segment> = Vec::new();
        let count = firsts.len();
        for (index, first_seq) in firsts.into_iter().enumerate() {
            let path = segment_path(dir, first_seq);
            let last = index + 1 == count;
            if last && fs::metadata(&path).map_err(io_error(&path))?.len() < SEGMENT_HEADER_LEN {
                continue;
            }
            if segments.last().is_some_and(|previous| previous.end_seq != first_seq) {
                let reason = "the segment does not continue the previous one's sequence";
                return Err(LogError::Corrupt { path, offset: 0, reason });
            }
            let mut ignored = VecDeque::new();
            let (segment, _) = scan(&path, first_seq, last, Repair::No, &mut ignored)?;
            segments.push(segment);
        }
        let next_seq = segments.last().map_or(1, |segment| segment.end_seq);
        Ok(LogReader { segments, next_seq, scratch: Vec::new() })
    }

    /// As [`EventLog::read`].
    pub fn read(
        &mut self,
        from_seq: u64,
        filter: &SubjectFilter,
        max: usize,
        out: &mut Vec<StoredEvent>,
    ) -> Result<u64, LogError> {
        read_segments(&self.segments, self.next_seq, &mut self.scratch, from_seq, filter, max, out)
    }
}

/// Takes `<dir>/LOCK` exclusively (released when the file closes, also
/// when the process dies).
fn lock_dir(dir: &Path) -> Result<File, LogError> {
    use std::os::fd::AsRawFd;
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error(&path))?;
    // SAFETY: flock(2) on a descriptor this function owns; no memory involved.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if locked != 0 {
        let error = io::Error::last_os_error();
        return Err(match error.kind() {
            io::ErrorKind::WouldBlock => LogError::InUse(dir.to_owned()),
            _ => LogError::Io { path, source: error },
        });
    }
    Ok(file)
}

fn create_segment(dir: &Path, first_seq: u64) -> Result<Segment, LogError> {
    let path = segment_path(dir, first_seq);
    let mut file =
        OpenOptions::new().write(true).create_new(true).open(&path).map_err(io_error(&path))?;
    let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
    header[..8].copy_from_slice(MAGIC);
    header[8..].copy_from_slice(&first_seq.to_le_bytes());
    file.write_all(&header).and_then(|()| file.sync_all()).map_err(io_error(&path))?;
    Ok(Segment {
        first_seq,
        end_seq: first_seq,
        path,
        bytes: SEGMENT_HEADER_LEN,
        newest_time_ms: i64::MIN,
        index: Vec::new(),
    })
}

/// The first sequences the directory's segment files are named by.
fn segment_firsts(dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut firsts = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let name = entry.map_err(io_error(dir))?.file_name();
        let name = name.to_string_lossy();
        if let Some(first) = name.strip_suffix(".seg").and_then(|stem| stem.parse::<u64>().ok()) {
            firsts.push(first);
        }
    }
    Ok(firsts)
}

/// Whether a scan may cut a torn tail (the writer) or only stop at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repair {
    Yes,
    No,
}

/// Checks a segment record by record. In the last segment a bad record
/// and everything after it is cut (returned: bytes cut), or with
/// `Repair::No` only left out; elsewhere it is an error.
fn scan(
    path: &Path,
    first_seq: u64,
    last: bool,
    repair: Repair,
    recent_ids: &mut VecDeque<(i64, Arc<str>, u64)>,
) -> Result<(Segment, u64), LogError> {
    let file = OpenOptions::new()
        .read(true)
        .write(repair == Repair::Yes)
        .open(path)
        .map_err(io_error(path))?;
    let length = file.metadata().map_err(io_error(path))?.len();
    let corrupt = |offset: u64, reason: &'static str| LogError::Corrupt {
        path: path.to_owned(),
        offset,
        reason,
    };
    let mut reader = BufReader::new(&file);
    let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
    if reader.read_exact(&mut header).is_err() || &header[..8] != MAGIC {
        return Err(corrupt(0, "no segment header"));
    }
    if u64::from_le_bytes(header[8..].try_into().expect("8 bytes")) != first_seq {
        return Err(corrupt(8, "the header's first sequence is not the file name's"));
    }
    let mut segment = Segment {
        first_seq,
        end_seq: first_seq,
        path: path.to_owned(),
        bytes: SEGMENT_HEADER_LEN,
        newest_time_ms: i64::MIN,
        index: Vec::new(),
    };
    let mut scratch = Vec::new();
    loop {
        let offset = segment.bytes;
        if offset == length {
            return Ok((segment, 0));
        }
        let bad = match read_record(&mut reader, &mut scratch).map_err(io_error(path))? {
            Ok(record) if record.event.seq == segment.end_seq => {
                if (record.event.seq - first_seq).is_multiple_of(INDEX_EVERY) {
                    segment.index.push((record.event.seq, offset));
                }
                segment.bytes += record.len;
                segment.end_seq += 1;
                segment.newest_time_ms = segment.newest_time_ms.max(record.event.time_ms);
                if !record.event.msg_id.is_empty() {
                    if recent_ids.len() >= DEDUP_IDS_MAX {
                        recent_ids.pop_front();
                    }
                    let StoredEvent { time_ms, msg_id, seq, .. } = record.event;
                    recent_ids.push_back((time_ms, Arc::from(msg_id), seq));
                }
                continue;
            }
            Ok(_) => "a record out of sequence",
            Err(reason) => reason,
        };
        if !last {
            return Err(corrupt(offset, bad));
        }
        if repair == Repair::No {
            return Ok((segment, 0));
        }
        drop(reader);
        file.set_len(offset).and_then(|()| file.sync_all()).map_err(io_error(path))?;
        tracing::warn!(path = %path.display(), offset, cut = length - offset, reason = bad,
            "event log: cut a torn tail");
        return Ok((segment, length - offset));
    }
}

fn encode_record(
    out: &mut Vec<u8>,
    seq: u64,
    time_ms: i64,
    subject: &str,
    msg_id: &str,
    payload: &[u8],
) {
    out.clear();
    let body_len = BODY_FIXED_LEN + subject.len() + msg_id.len() + payload.len();
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&time_ms.to_le_bytes());
    out.extend_from_slice(&(subject.len() as u16).to_le_bytes());
    out.extend_from_slice(subject.as_bytes());
    out.extend_from_slice(&(msg_id.len() as u16).to_le_bytes());
    out.extend_from_slice(msg_id.as_bytes());
    out.extend_from_slice(payload);
    let mut crc = Crc32c::default();
    crc.update(&out[4..]);
    out[..4].copy_from_slice(&crc.finish().to_le_bytes());
}

struct Record {
    event: StoredEvent,
    /// Bytes the record takes in the file.
    len: u64,
}

/// The next record: `Ok(Err(reason))` when the bytes there are not a valid
/// record (short, too long, checksum, malformed); `Err` for I/O failures.
fn read_record(
    reader: &mut impl Read,
    scratch: &mut Vec<u8>,
) -> io::Result<Result<Record, &'static str>> {
    let mut prefix = [0u8; RECORD_PREFIX_LEN];
    if let Err(error) = reader.read_exact(&mut prefix) {
        return match error.kind() {
            io::ErrorKind::UnexpectedEof => Ok(Err("a record cut short")),
            _ => Err(error),
        };
    }
    let crc = u32::from_le_bytes(prefix[..4].try_into().expect("4 bytes"));
    let body_len = u32::from_le_bytes(prefix[4..].try_into().expect("4 bytes")) as usize;
    if !(BODY_FIXED_LEN..=BODY_MAX).contains(&body_len) {
        return Ok(Err("a record length out of range"));
    }
    scratch.clear();
    scratch.resize(body_len, 0);
    if let Err(error) = reader.read_exact(scratch) {
        return match error.kind() {
            io::ErrorKind::UnexpectedEof => Ok(Err("a record cut short")),
            _ => Err(error),
        };
    }
    let mut check = Crc32c::default();
    check.update(&prefix[4..]);
    check.update(scratch);
    if check.finish() != crc {
        return Ok(Err("a record checksum mismatch"));
    }
    Ok(decode_body(scratch)
        .map(|event| Record { event, len: (RECORD_PREFIX_LEN + body_len) as u64 }))
}

fn decode_body(body: &[u8]) -> Result<StoredEvent, &'static str> {
    let malformed = "a malformed record body";
    let take = |at: &mut usize, n: usize| -> Result<&[u8], &'static str> {
        let bytes = body.get(*at..*at + n).ok_or(malformed)?;
        *at += n;
        Ok(bytes)
    };
    let mut at = 0;
    let seq = u64::from_le_bytes(take(&mut at, 8)?.try_into().map_err(|_| malformed)?);
    let time_ms = i64::from_le_bytes(take(&mut at, 8)?.try_into().map_err(|_| malformed)?);
    let subject_len = u16::from_le_bytes(take(&mut at, 2)?.try_into().map_err(|_| malformed)?);
    let subject = std::str::from_utf8(take(&mut at, usize::from(subject_len))?)
        .map_err(|_| malformed)?
        .to_owned();
    let id_len = u16::from_le_bytes(take(&mut at, 2)?.try_into().map_err(|_| malformed)?);
    let msg_id =
        std::str::from_utf8(take(&mut at, usize::from(id_len))?).map_err(|_| malformed)?.to_owned();
    let payload = body[at..].to_vec();
    Ok(StoredEvent { seq, time_ms, subject, msg_id, payload })
}

#[cfg(test)]
mod tests;
