//! The worker pool: bounded job queues feeding blocking worker threads, the
//! only place Ludus waits on Postgres, NATS, S3 or a password hash.
//!
//! Owns: `workers` threads, each with its own state `S` (a database
//! connection, say) made by a factory on that thread; one bounded queue in
//! front of them; per-pool counters. A job carries its work, its deadline
//! and where its answer goes ([`Reply`]: in production a closure posting
//! into the asking shard's mailbox). Never does: grow the queue (a full
//! queue refuses at once with [`JobError::Busy`], so a shard never
//! blocks), run a job past its deadline (it is answered
//! [`JobError::DeadlineExceeded`] unstarted), or lose a worker to a panic
//! (caught, logged, answered [`JobError::Internal`]; the worker goes on
//! with a fresh state from the factory, since a panic may have left the
//! old one half-changed).
//!
//! Every job is answered exactly once: run, expired, panicked, refused at
//! submit, or, when the pool shuts down with jobs still queued, refused as
//! [`JobError::ShuttingDown`].

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, Sender, TrySendError};

use crate::proto::wire::ErrorCode;

/// Most worker threads one pool may have.
pub const WORKERS_MAX: usize = 256;
/// Most queued jobs one pool may hold.
pub const QUEUE_MAX: usize = 1 << 20;
/// What a Busy answer tells clients to wait before retrying (HTTP
/// Retry-After, seconds).
pub const BUSY_RETRY_AFTER_S: u32 = 1;

/// Why a job produced no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("the {pool} queue is full")]
    Busy { pool: &'static str },
    #[error("the job's deadline passed before a worker took it")]
    DeadlineExceeded,
    #[error("the job failed inside the server: {0}")]
    Internal(String),
    #[error("the server is shutting down")]
    ShuttingDown,
}

impl JobError {
    /// The protocol's error code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            JobError::Busy { .. } | JobError::DeadlineExceeded => ErrorCode::Busy,
            JobError::Internal(_) => ErrorCode::Internal,
            JobError::ShuttingDown => ErrorCode::ServerDraining,
        }
    }

    /// HTTP status and Retry-After seconds (when the client should retry).
    pub fn http_status(&self) -> (u16, Option<u32>) {
        match self {
            JobError::Busy { .. } | JobError::DeadlineExceeded => (503, Some(BUSY_RETRY_AFTER_S)),
            JobError::Internal(_) => (500, None),
            JobError::ShuttingDown => (503, Some(BUSY_RETRY_AFTER_S)),
        }
    }
}

/// Where a job's answer goes; called exactly once, on a worker thread (or
/// on the submitting thread when the job is refused at once).
pub type Reply<R> = Box<dyn FnOnce(Result<R, JobError>) + Send>;
type Work<S, R> = Box<dyn FnOnce(&mut S) -> R + Send>;

struct Job<S, R> {
    deadline: Instant,
    work: Work<S, R>,
    reply: Reply<R>,
}

/// A pool's counters, readable from any thread (metrics, /api/stats).
#[derive(Debug, Default)]
pub struct PoolStats {
    pub submitted: AtomicU64,
    pub completed: AtomicU64,
    /// Refused at submit: the queue was full.
    pub busy: AtomicU64,
    pub expired: AtomicU64,
    pub panicked: AtomicU64,
}

impl PoolStats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// The counters for /api/stats: `busy` is the jobs refused with 503
    /// because the queue was full, `expired` those answered 503 unstarted.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "submitted": Self::get(&self.submitted),
            "completed": Self::get(&self.completed),
            "busy": Self::get(&self.busy),
            "expired": Self::get(&self.expired),
            "panicked": Self::get(&self.panicked),
        })
    }
}

/// Sizes of a pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Names the threads ("{name}-{i}") and the Busy error.
    pub name: &'static str,
    pub workers: usize,
    pub queue_capacity: usize,
    /// Niceness of the worker threads (0: unchanged, up to 19). Services
    /// run below the shards, so a burst of service work (argon2, query
    /// decoding) yields the CPU to room ticks rather than delaying them.
    pub nice: i32,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("a pool needs 1 to {WORKERS_MAX} workers and a queue of 1 to {QUEUE_MAX} jobs")]
    Config,
    #[error("starting worker thread {0}: {1}")]
    Spawn(usize, String),
}

/// Workers of one kind (e.g. storage) and their queue. Dropping the pool
/// shuts it down (see [`WorkerPool::shutdown`]).
pub struct WorkerPool<S, R: Send + 'static> {
    name: &'static str,
    sender: Option<Sender<Job<S, R>>>,
    receiver: Receiver<Job<S, R>>,
    handles: Vec<JoinHandle<()>>,
    stats: Arc<PoolStats>,
}

impl<S: 'static, R: Send + 'static> WorkerPool<S, R> {
    /// Starts `config.workers` threads; each makes its state with
    /// `make_state(worker_index)` on its own thread (a connection opened
    /// there belongs to it) and again after a job panics.
    pub fn start(
        config: &PoolConfig,
        make_state: impl Fn(usize) -> S + Send + Sync + 'static,
    ) -> Result<Self, PoolError> {
        if config.workers == 0
            || config.workers > WORKERS_MAX
            || config.queue_capacity == 0
            || config.queue_capacity > QUEUE_MAX
        {
            return Err(PoolError::Config);
        }
        let (sender, receiver) = channel::bounded::<Job<S, R>>(config.queue_capacity);
        let stats = Arc::new(PoolStats::default());
        let make_state = Arc::new(make_state);
        let mut handles = Vec::with_capacity(config.workers);
        for index in 0..config.workers {
            let (receiver, stats, make_state) =
                (receiver.clone(), Arc::clone(&stats), Arc::clone(&make_state));
            let (name, nice) = (config.name, config.nice);
            let handle = std::thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || {
                    lower_priority(name, nice);
                    work(name, index, &receiver, &stats, &*make_state)
                })
                .map_err(|error| PoolError::Spawn(index, error.to_string()))?;
            handles.push(handle);
        }
        Ok(WorkerPool { name: config.name, sender: Some(sender), receiver, handles, stats })
    }

    /// Queues `work` to run on a worker before `deadline`; `reply` gets its
    /// result. Never blocks: with the queue full, `reply` gets
    /// [`JobError::Busy`] at once, on this thread.
    pub fn submit(
        &self,
        deadline: Instant,
        work: impl FnOnce(&mut S) -> R + Send + 'static,
        reply: Reply<R>,
    ) {
        PoolStats::bump(&self.stats.submitted);
        let job = Job { deadline, work: Box::new(work), reply };
        let Some(sender) = &self.sender else {
            return (job.reply)(Err(JobError::ShuttingDown));
        };
        match sender.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => {
                PoolStats::bump(&self.stats.busy);
                (job.reply)(Err(JobError::Busy { pool: self.name }));
            }
            Err(TrySendError::Disconnected(job)) => (job.reply)(Err(JobError::ShuttingDown)),
        }
    }

    /// Jobs waiting for a worker.
    pub fn queued(&self) -> usize {
        self.receiver.len()
    }

    pub fn stats(&self) -> &Arc<PoolStats> {
        &self.stats
    }

    /// Stops taking jobs, lets the workers finish the job each is running,
    /// answers every job still queued with [`JobError::ShuttingDown`], and
    /// joins the threads (at most `grace` for all of them; a worker stuck
    /// past it is left running and reported).
    pub fn shutdown(&mut self, grace: Duration) -> usize {
        self.sender = None;
        // The workers see the closed channel once it is empty; empty it here
        // so that nothing queued waits for them.
        while let Ok(job) = self.receiver.try_recv() {
            (job.reply)(Err(JobError::ShuttingDown));
        }
        let deadline = Instant::now() + grace;
        let mut stuck = 0;
        for handle in self.handles.drain(..) {
            while !handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if handle.is_finished() {
                let _ = handle.join();
            } else {
                stuck += 1;
            }
        }
        if stuck > 0 {
            tracing::warn!(pool = self.name, stuck, "workers still busy after the shutdown grace");
        }
        stuck
    }
}

impl<S, R: Send + 'static> Drop for WorkerPool<S, R> {
    fn drop(&mut self) {
        self.sender = None;
        while let Ok(job) = self.receiver.try_recv() {
            (job.reply)(Err(JobError::ShuttingDown));
        }
        // Threads finish their current job and exit; not joined here, so a
        // drop never blocks (`shutdown` joins).
    }
}

/// Makes the calling thread `nice` (Linux nice values are per thread).
fn lower_priority(name: &str, nice: i32) {
    if nice == 0 {
        return;
    }
    // SAFETY: setpriority only reads its integer arguments; `who = 0` is
    // the calling thread.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice.clamp(0, 19)) };
    if result != 0 {
        let error = std::io::Error::last_os_error();
        tracing::warn!(pool = name, %error, "could not lower the worker threads' priority");
    }
}

/// One worker's loop: take a job, skip it if expired, run it under
/// `catch_unwind`, answer.
fn work<S, R>(
    name: &'static str,
    index: usize,
    jobs: &Receiver<Job<S, R>>,
    stats: &PoolStats,
    make_state: &dyn Fn(usize) -> S,
) {
    let mut state = make_state(index);
    while let Ok(job) = jobs.recv() {
        if Instant::now() > job.deadline {
            PoolStats::bump(&stats.expired);
            (job.reply)(Err(JobError::DeadlineExceeded));
            continue;
        }
        let Job { work, reply, .. } = job;
        match catch_unwind(AssertUnwindSafe(|| work(&mut state))) {
            Ok(result) => {
                PoolStats::bump(&stats.completed);
                reply(Ok(result));
            }
            Err(payload) => {
                PoolStats::bump(&stats.panicked);
                let message = panic_message(payload.as_ref());
                tracing::error!(pool = name, worker = index, %message, "a job panicked");
                reply(Err(JobError::Internal(message)));
                // The panic may have left the state half-changed.
                state = make_state(index);
            }
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn config(workers: usize, queue: usize) -> PoolConfig {
        PoolConfig { name: "test", workers, queue_capacity: queue, nice: 0 }
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    /// A reply that forwards the answer to a channel.
    fn to(sender: &mpsc::Sender<Result<u64, JobError>>) -> Reply<u64> {
        let sender = sender.clone();
        Box::new(move |answer| {
            let _ = sender.send(answer);
        })
    }

    /// Submits a job answering 1 that holds its worker until the returned
    /// sender is sent to; returns once the worker is inside it.
    fn hold_the_worker(
        pool: &WorkerPool<(), u64>,
        answers: &mpsc::Sender<Result<u64, JobError>>,
    ) -> mpsc::Sender<()> {
        let (gate_open, gate) = mpsc::channel::<()>();
        let (inside, started) = mpsc::channel::<()>();
        pool.submit(
            later(),
            move |_| {
                inside.send(()).unwrap();
                gate.recv().unwrap();
                1
            },
            to(answers),
        );
        started.recv_timeout(Duration::from_secs(5)).expect("the worker took the job");
        gate_open
    }

    #[test]
    fn jobs_run_on_workers_with_their_own_state() {
        let mut pool = WorkerPool::<u64, u64>::start(&config(2, 16), |index| index as u64 * 100)
            .expect("pool");
        let (sender, answers) = mpsc::channel();
        for value in 1..=10u64 {
            pool.submit(
                later(),
                move |state| {
                    *state += 1;
                    value * 2
                },
                to(&sender),
            );
        }
        let mut got: Vec<u64> = (0..10)
            .map(|_| answers.recv_timeout(Duration::from_secs(5)).unwrap().unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(got, (1..=10).map(|v| v * 2).collect::<Vec<_>>());
        assert_eq!(PoolStats::get(&pool.stats().completed), 10);
        assert_eq!(pool.shutdown(Duration::from_secs(5)), 0);
    }

    /// Workers run at the configured niceness, below the threads that
    /// started them (the shards), and the starting thread is unchanged.
    #[test]
    fn workers_run_at_the_configured_niceness() {
        // SAFETY: getpriority reads integers only; 0 is the calling thread.
        let here = || unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let before = here();
        let config = PoolConfig { nice: 7, ..config(1, 4) };
        let mut pool = WorkerPool::<(), i32>::start(&config, |_| ()).unwrap();
        let (sender, answer) = mpsc::channel();
        pool.submit(
            later(),
            move |_| here(),
            Box::new(move |result| {
                let _ = sender.send(result);
            }),
        );
        let niceness = answer.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
        assert_eq!(niceness, before.max(7));
        assert_eq!(here(), before);
        pool.shutdown(Duration::from_secs(5));
    }

    #[test]
    fn a_full_queue_answers_busy_at_once_and_counts_it() {
        let mut pool = WorkerPool::<(), u64>::start(&config(1, 2), |_| ()).unwrap();
        let (sender, answers) = mpsc::channel();
        // The worker is held by the first job; two more fill the queue.
        let gate_open = hold_the_worker(&pool, &sender);
        pool.submit(later(), |_| 2, to(&sender));
        pool.submit(later(), |_| 3, to(&sender));
        pool.submit(later(), |_| 4, to(&sender));
        let refused = answers.recv_timeout(Duration::from_secs(1)).unwrap();
        assert_eq!(refused, Err(JobError::Busy { pool: "test" }));
        assert_eq!(refused.unwrap_err().http_status(), (503, Some(BUSY_RETRY_AFTER_S)));
        assert_eq!(PoolStats::get(&pool.stats().busy), 1);
        gate_open.send(()).unwrap();
        let mut rest: Vec<u64> = (0..3)
            .map(|_| answers.recv_timeout(Duration::from_secs(5)).unwrap().unwrap())
            .collect();
        rest.sort_unstable();
        assert_eq!(rest, [1, 2, 3]);
        pool.shutdown(Duration::from_secs(5));
    }

    #[test]
    fn expired_jobs_are_answered_without_running() {
        let mut pool = WorkerPool::<(), u64>::start(&config(1, 4), |_| ()).unwrap();
        let (sender, answers) = mpsc::channel();
        let ran = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&ran);
        let past = Instant::now() - Duration::from_millis(1);
        pool.submit(
            past,
            move |_| {
                counter.fetch_add(1, Ordering::Relaxed);
                7
            },
            to(&sender),
        );
        let answer = answers.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(answer, Err(JobError::DeadlineExceeded));
        assert_eq!(answer.unwrap_err().code(), ErrorCode::Busy);
        assert_eq!(ran.load(Ordering::Relaxed), 0, "an expired job must not run");
        assert_eq!(PoolStats::get(&pool.stats().expired), 1);
        pool.shutdown(Duration::from_secs(5));
    }

    #[test]
    fn a_panicking_job_is_answered_internal_and_the_worker_lives_on_with_fresh_state() {
        let made = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&made);
        let mut pool = WorkerPool::<Vec<u64>, u64>::start(&config(1, 8), move |_| {
            count.fetch_add(1, Ordering::Relaxed);
            Vec::new()
        })
        .unwrap();
        let (sender, answers) = mpsc::channel();
        pool.submit(
            later(),
            |state| {
                state.push(1);
                panic!("the database said no")
            },
            to(&sender),
        );
        pool.submit(later(), |state| state.len() as u64, to(&sender));
        let first = answers.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(first, Err(JobError::Internal("the database said no".into())));
        assert_eq!(first.unwrap_err().http_status(), (500, None));
        let second = answers.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(second, Ok(0), "the state was made anew after the panic");
        assert_eq!(made.load(Ordering::Relaxed), 2);
        assert_eq!(PoolStats::get(&pool.stats().panicked), 1);
        pool.shutdown(Duration::from_secs(5));
    }

    #[test]
    fn shutdown_answers_every_queued_job_and_joins_the_workers() {
        let mut pool = WorkerPool::<(), u64>::start(&config(1, 8), |_| ()).unwrap();
        let (sender, answers) = mpsc::channel();
        let gate_open = hold_the_worker(&pool, &sender);
        for value in 2..=4 {
            pool.submit(later(), move |_| value, to(&sender));
        }
        let opener = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            gate_open.send(()).unwrap();
        });
        assert_eq!(pool.shutdown(Duration::from_secs(5)), 0, "the running job finished");
        opener.join().unwrap();
        let answers: Vec<_> = answers.try_iter().collect();
        assert_eq!(answers.len(), 4, "every job answered once: {answers:?}");
        assert_eq!(answers.iter().filter(|a| **a == Err(JobError::ShuttingDown)).count(), 3);
        assert!(answers.contains(&Ok(1)));
        // After shutdown, submits are refused, never lost.
        let (sender, late) = mpsc::channel();
        pool.submit(later(), |_| 9, to(&sender));
        assert_eq!(late.try_recv().unwrap(), Err(JobError::ShuttingDown));
    }

    #[test]
    fn sizes_out_of_range_are_refused() {
        for (workers, queue) in [(0, 1), (1, 0), (WORKERS_MAX + 1, 1), (1, QUEUE_MAX + 1)] {
            let started = WorkerPool::<(), u64>::start(&config(workers, queue), |_| ());
            assert!(matches!(started, Err(PoolError::Config)), "{workers} {queue}");
        }
    }
}
