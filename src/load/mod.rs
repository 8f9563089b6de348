//! The load core: many protocol-speaking clients on a few event-loop
//! threads, for `ludus bots` and the transport benchmarks.
//!
//! Owns: worker threads (never one per client), each a mio `Poll` driving
//! up to thousands of [`WtClient`](crate::client::WtClient)s or
//! [`WsClient`](crate::client::WsClient)s; the ramp; Pings at a fixed
//! interval on the chosen channel; per-thread HDR histograms of round-trip
//! times merged into one [`LoadReport`] at the end. Never does: name
//! resolution on a worker (done once, before the workers start), a sleep
//! on a worker (they wait in `Poll::poll` only), or a lock shared between
//! workers on the hot path (each owns its clients, histogram and counts).
//!
//! Timeline of a run (all workers share one clock and one timeline):
//! ```text
//! start ── ramp (clients / ramp_per_second) ── warm-up ── measure (duration) ── drain
//!          clients connect, say Hello,          Pings      Pings counted       Bye, close
//!          ping as soon as Welcome arrives      flow       and timed
//! ```
//! Only Pings sent and Pongs received inside the measure window are counted
//! and timed, so TLS handshakes and slow starters do not pollute the
//! figures; connections and errors are counted over the whole run. The
//! caller may observe the phase boundaries ([`run_observed`]), e.g. to read
//! the server's CPU time or memory at exactly those instants.
//!
//! A ping interval of zero makes the clients idle: they connect, say Hello
//! and then only keep the session alive with the session's heartbeat (what
//! the memory-per-session measurement needs).
//!
//! Per client the worker keeps a boxed transport and two small fields; the
//! steady state allocates nothing in this module per Ping (timers are a
//! preallocated [`TimerWheel`](crate::reactor::timer::TimerWheel), the
//! histogram has fixed bounds). The client library may still allocate per
//! message (see its docs); that cost is the client's, not the server's.

pub mod bot;
pub mod plot;
mod report;
pub mod tetris_brain;
mod worker;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

pub use bot::{BotOptions, Role};
pub use report::{BotsReport, ErrorCounts, LoadReport, RttSummary, SecondSample, ThreadStats};

use crate::client::{ClientError, Clock, Trust, WsOptions, WsUrl};

/// Most worker threads a run may ask for.
pub const THREADS_MAX: usize = 256;
/// Most clients per run.
pub const CLIENTS_MAX: usize = 1_000_000;
/// Lowest and highest RTT the histograms hold, microseconds; larger values
/// are clamped to the top (and still show up in `max`).
pub const RTT_US_LOWEST: u64 = 1;
pub const RTT_US_HIGHEST: u64 = 60_000_000;
/// Significant decimal digits of the histograms (0.1% resolution).
pub const RTT_SIGNIFICANT_DIGITS: u8 = 3;

/// Which transport the clients use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// WebTransport over QUIC (quiche), one UDP socket per client.
    WebTransport,
    /// WebSocket over TCP, plain (`ws://`) or TLS (`wss://`).
    WebSocket,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::WebTransport => "wt",
            Transport::WebSocket => "ws",
        }
    }
}

/// Where the Pings go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingChannel {
    /// The reliable channel: the WebTransport control stream or the
    /// WebSocket.
    Stream,
    /// WebTransport datagrams (the session must be granted CAP_DATAGRAMS;
    /// otherwise the client library falls back to the stream).
    Datagram,
}

impl PingChannel {
    pub fn name(self) -> &'static str {
        match self {
            PingChannel::Stream => "stream",
            PingChannel::Datagram => "datagram",
        }
    }
}

/// The server under load. Only the fields its transport needs are used.
#[derive(Debug, Clone, Default)]
pub struct ServerTarget {
    /// The server's UDP address (WebTransport at `/wt`).
    pub wt_address: Option<SocketAddr>,
    /// `ws://host:port/ws` or `wss://host:port/ws`.
    pub ws_url: Option<String>,
    /// SHA-256 of the server's certificate (WebTransport always, `wss://`
    /// here as well: development servers are pinned by hash).
    pub cert_sha256: Option<[u8; 32]>,
}

/// What a run does.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub server: ServerTarget,
    pub transport: Transport,
    /// Clients to connect, spread evenly over the threads.
    pub clients: usize,
    /// New connections per second, all threads together.
    pub ramp_per_second: u32,
    /// Length of the measure window.
    pub duration: Duration,
    /// Between two Pings of one client; zero: idle clients (heartbeats only).
    pub ping_interval: Duration,
    pub channel: PingChannel,
    /// Worker threads (event loops); each drives clients / threads clients.
    pub threads: usize,
    /// Between the end of the ramp and the start of the measure window.
    pub warmup: Duration,
    /// After the window, how long closing sessions may take before the rest
    /// are dropped.
    pub drain_timeout: Duration,
    /// Cores to pin worker threads to (worker i on `pin_cores[i % len]`);
    /// empty: the scheduler decides.
    pub pin_cores: Vec<usize>,
    /// Nicknames are this prefix and the client's number.
    pub nickname_prefix: String,
    /// Game bots (`ludus bots`); None: the echo load (Pings only).
    pub bots: Option<BotsConfig>,
    /// Print a progress line on stderr once a second.
    pub progress: bool,
}

/// What the game bots do (see [`bot`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BotsConfig {
    pub options: BotOptions,
    /// Share of the clients that watch running rooms instead of playing.
    pub spectator_share: f64,
    /// Share of the players that drop their transport once into every game
    /// and resume their session (and seat) with the resume token.
    pub reconnect_share: f64,
}

impl BotsConfig {
    /// How many of `clients` are spectators.
    pub fn spectators(&self, clients: usize) -> usize {
        ((clients as f64 * self.spectator_share).round() as usize).min(clients)
    }

    /// Whether player `number` is one of the reconnecting ones (spread
    /// evenly over the numbers).
    pub fn reconnects(&self, number: usize) -> bool {
        let share = self.reconnect_share;
        ((number + 1) as f64 * share).floor() > (number as f64 * share).floor()
    }

    /// Client `number`'s role: spectators are the last numbers, so they
    /// connect when the players' rooms are already running.
    pub fn role_of(&self, number: usize, clients: usize) -> Role {
        if number >= clients - self.spectators(clients) {
            Role::Spectator
        } else {
            Role::Player
        }
    }
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            server: ServerTarget::default(),
            transport: Transport::WebTransport,
            clients: 100,
            ramp_per_second: 500,
            duration: Duration::from_secs(10),
            ping_interval: Duration::from_millis(10),
            channel: PingChannel::Datagram,
            threads: 1,
            warmup: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(2),
            pin_cores: Vec::new(),
            nickname_prefix: "bot".to_owned(),
            bots: None,
            progress: false,
        }
    }
}

/// The instants a run passes through, for [`run_observed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the first connection.
    Started,
    /// The measure window opens (ramp and warm-up are over).
    MeasureStarted,
    /// The measure window closes; clients are about to say Bye.
    MeasureEnded,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid load configuration: {0}")]
    Config(String),
    #[error("resolving {0}: {1}")]
    Resolve(String, std::io::Error),
    #[error("client set-up: {0}")]
    Client(#[from] ClientError),
    #[error("worker {worker}: {reason}")]
    Worker { worker: usize, reason: String },
}

/// Where and how every worker connects: resolved once, shared read-only.
#[derive(Debug)]
pub(crate) enum Endpoint {
    WebTransport { address: SocketAddr, cert_sha256: [u8; 32] },
    WebSocket { address: SocketAddr, url: WsUrl, options: WsOptions },
}

/// The shared timeline, in microseconds of the shared [`Clock`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeline {
    /// The first connect is due.
    pub start_us: u64,
    pub measure_start_us: u64,
    /// Pings stop here; sessions close [`worker::PONG_LINGER_US`] later.
    pub measure_end_us: u64,
    /// Clients still open now are dropped.
    pub drain_end_us: u64,
}

impl LoadConfig {
    fn validate(&self) -> Result<(), LoadError> {
        let invalid = |reason: &str| Err(LoadError::Config(reason.to_owned()));
        if self.clients == 0 || self.clients > CLIENTS_MAX {
            return invalid("clients must be between 1 and 1,000,000");
        }
        if self.threads == 0 || self.threads > THREADS_MAX {
            return invalid("threads must be between 1 and 256");
        }
        if self.ramp_per_second == 0 {
            return invalid("ramp_per_second must be positive");
        }
        if self.duration.is_zero() {
            return invalid("duration must be positive");
        }
        if !self.ping_interval.is_zero() && self.ping_interval < Duration::from_millis(1) {
            return invalid("ping_interval must be zero (idle) or at least 1 ms");
        }
        if self.transport == Transport::WebSocket && self.channel == PingChannel::Datagram {
            return invalid("WebSocket has no datagrams: use the stream channel");
        }
        if let Some(bots) = &self.bots {
            if !(0.0..=1.0).contains(&bots.spectator_share) {
                return invalid("the spectator share must be between 0 and 1");
            }
            if !(0.0..=1.0).contains(&bots.reconnect_share) {
                return invalid("the reconnecting share must be between 0 and 1");
            }
            let pps = bots.options.pieces_per_second;
            if !(pps.is_finite() && (0.1..=30.0).contains(&pps)) {
                return invalid("pieces per second must be between 0.1 and 30");
            }
        }
        Ok(())
    }

    /// Resolves the server once, before any worker starts.
    fn endpoint(&self) -> Result<Endpoint, LoadError> {
        let missing = |what: &str| LoadError::Config(format!("{what} is required"));
        match self.transport {
            Transport::WebTransport => Ok(Endpoint::WebTransport {
                address: self.server.wt_address.ok_or_else(|| missing("the WT address"))?,
                cert_sha256: self
                    .server
                    .cert_sha256
                    .ok_or_else(|| missing("the certificate hash (WT)"))?,
            }),
            Transport::WebSocket => {
                let text = self.server.ws_url.as_deref().ok_or_else(|| missing("the ws URL"))?;
                let url = WsUrl::parse(text)?;
                let address = (url.host.as_str(), url.port)
                    .to_socket_addrs()
                    .map_err(|error| LoadError::Resolve(text.to_owned(), error))?
                    .next()
                    .ok_or_else(|| LoadError::Config(format!("{text}: no address")))?;
                let options = match (url.secure, self.server.cert_sha256) {
                    (false, _) => WsOptions::default(),
                    (true, Some(hash)) => WsOptions::with_trust(&Trust::CertificateHash(hash))?,
                    (true, None) => return Err(missing("the certificate hash (wss)")),
                };
                Ok(Endpoint::WebSocket { address, url, options })
            }
        }
    }

    /// How long connecting every client takes at the configured ramp.
    pub fn ramp_time(&self) -> Duration {
        Duration::from_secs_f64(self.clients as f64 / f64::from(self.ramp_per_second))
    }
}

/// Runs the load and returns the merged report.
pub fn run(config: &LoadConfig) -> Result<LoadReport, LoadError> {
    run_observed(config, |_| {})
}

/// [`run`], calling `observe` at each [`Phase`] on the calling thread (it
/// sleeps in between; the workers do the work).
pub fn run_observed(
    config: &LoadConfig,
    mut observe: impl FnMut(Phase),
) -> Result<LoadReport, LoadError> {
    config.validate()?;
    let endpoint = Arc::new(config.endpoint()?);
    let clock = Clock::new();
    let start_us = clock.now().monotonic_us;
    let as_us = |duration: Duration| duration.as_micros() as u64;
    let measure_start_us = start_us + as_us(config.ramp_time() + config.warmup);
    let measure_end_us = measure_start_us + as_us(config.duration);
    let timeline = Timeline {
        start_us,
        measure_start_us,
        measure_end_us,
        drain_end_us: measure_end_us + worker::PONG_LINGER_US + as_us(config.drain_timeout),
    };
    observe(Phase::Started);
    let started = Instant::now();
    let (samples, received) = mpsc::channel();
    let mut handles = Vec::with_capacity(config.threads);
    for index in 0..config.threads {
        let mut plan = worker::Plan::new(config, index, Arc::clone(&endpoint), clock, timeline);
        plan.samples = Some(samples.clone());
        let handle = std::thread::Builder::new()
            .name(format!("load-{index}"))
            .spawn(move || worker::run(plan))
            .map_err(|error| LoadError::Worker { worker: index, reason: error.to_string() })?;
        handles.push(handle);
    }
    drop(samples);
    let mut progress = Progress::new(config, start_us);
    let mut phases = [
        (timeline.measure_start_us, Phase::MeasureStarted),
        (timeline.measure_end_us, Phase::MeasureEnded),
    ]
    .into_iter()
    .peekable();
    // Until the window closes: a progress line a second, and the phases.
    while let Some(&(at_us, phase)) = phases.peek() {
        let deadline_us = at_us.min(progress.next_print_us);
        loop {
            match received.recv_timeout(clock.until(clock.now(), deadline_us)) {
                Ok(sample) => progress.add(sample),
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                // Every worker ended early (its error comes with the join).
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(clock.until(clock.now(), deadline_us));
                    break;
                }
            }
        }
        let now_us = clock.now().monotonic_us;
        if now_us >= progress.next_print_us {
            progress.second(now_us);
        }
        if now_us >= at_us {
            observe(phase);
            phases.next();
        }
    }
    let mut threads = Vec::with_capacity(handles.len());
    for (index, handle) in handles.into_iter().enumerate() {
        let stats = handle
            .join()
            .map_err(|_| LoadError::Worker { worker: index, reason: "panicked".into() })?
            .map_err(|reason| LoadError::Worker { worker: index, reason })?;
        threads.push(stats);
    }
    let mut report = LoadReport::merge(config, threads, started.elapsed());
    report.seconds = progress.seconds;
    Ok(report)
}

/// What a worker tells the run once a second.
#[derive(Debug)]
pub(crate) struct WorkerSample {
    pub worker: usize,
    pub connected: u64,
    /// Every session's traffic since the start, closed ones included.
    pub traffic: crate::client::Traffic,
    /// Input-to-acknowledgement latencies since the last sample.
    pub ack_us: hdrhistogram::Histogram<u64>,
    pub rooms: Vec<u64>,
    pub errors: u64,
}

/// The per-second view across workers: the progress line and the plot.
struct Progress {
    enabled: bool,
    start_us: u64,
    next_print_us: u64,
    latest: Vec<Option<WorkerSample>>,
    last_traffic: crate::client::Traffic,
    last_print_us: u64,
    second_ack: hdrhistogram::Histogram<u64>,
    all_ack: hdrhistogram::Histogram<u64>,
    seconds: Vec<SecondSample>,
}

impl Progress {
    fn new(config: &LoadConfig, start_us: u64) -> Progress {
        Progress {
            enabled: config.progress,
            start_us,
            // A quarter second after the workers' samples (taken on whole
            // seconds), so each line sees every worker's latest.
            next_print_us: start_us + 1_250_000,
            latest: (0..config.threads).map(|_| None).collect(),
            last_traffic: crate::client::Traffic::default(),
            last_print_us: start_us,
            second_ack: report::new_histogram(),
            all_ack: report::new_histogram(),
            seconds: Vec::new(),
        }
    }

    fn add(&mut self, sample: WorkerSample) {
        let _ = self.second_ack.add(&sample.ack_us);
        let _ = self.all_ack.add(&sample.ack_us);
        let worker = sample.worker;
        if let Some(entry) = self.latest.get_mut(worker) {
            *entry = Some(sample);
        }
    }

    fn second(&mut self, now_us: u64) {
        self.next_print_us += 1_000_000;
        if self.next_print_us <= now_us {
            self.next_print_us = now_us + 1_000_000;
        }
        let mut traffic = crate::client::Traffic::default();
        let (mut connected, mut errors) = (0, 0);
        let mut rooms: Vec<u64> = Vec::new();
        for sample in self.latest.iter().flatten() {
            traffic.add(&sample.traffic);
            connected += sample.connected;
            errors += sample.errors;
            rooms.extend_from_slice(&sample.rooms);
        }
        rooms.sort_unstable();
        rooms.dedup();
        let elapsed_s = (now_us - self.last_print_us).max(1) as f64 / 1e6;
        let delta = traffic.since(&self.last_traffic);
        let quantile_ms = |histogram: &hdrhistogram::Histogram<u64>, q: f64| {
            if histogram.is_empty() {
                f64::NAN
            } else {
                histogram.value_at_quantile(q) as f64 / 1e3
            }
        };
        let second = SecondSample {
            t_s: (now_us - self.start_us) as f64 / 1e6,
            connected,
            rooms: rooms.len(),
            messages_in_per_s: delta.messages_in as f64 / elapsed_s,
            messages_out_per_s: delta.messages_out as f64 / elapsed_s,
            p50_ms: quantile_ms(&self.second_ack, 0.5),
            p90_ms: quantile_ms(&self.second_ack, 0.9),
            p99_ms: quantile_ms(&self.second_ack, 0.99),
            max_ms: if self.second_ack.is_empty() {
                f64::NAN
            } else {
                self.second_ack.max() as f64 / 1e3
            },
            p99_so_far_ms: quantile_ms(&self.all_ack, 0.99),
            errors,
        };
        if self.enabled {
            eprintln!(
                "[{:>5.0}s] clients {:>6}  rooms {:>5}  msgs/s in {:>9.0} out {:>9.0}  \
                 ack p99 {:>7.2} ms (so far {:>7.2} ms)  errors {}",
                second.t_s,
                second.connected,
                second.rooms,
                second.messages_in_per_s,
                second.messages_out_per_s,
                second.p99_ms,
                second.p99_so_far_ms,
                second.errors,
            );
        }
        self.seconds.push(second);
        self.second_ack.reset();
        self.last_traffic = traffic;
        self.last_print_us = now_us;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wt_config() -> LoadConfig {
        LoadConfig {
            server: ServerTarget {
                wt_address: Some("127.0.0.1:4433".parse().unwrap()),
                cert_sha256: Some([1; 32]),
                ..ServerTarget::default()
            },
            ..LoadConfig::default()
        }
    }

    #[test]
    fn configurations_that_cannot_run_are_refused_before_any_thread_starts() {
        assert!(wt_config().validate().is_ok());
        assert!(matches!(wt_config().endpoint(), Ok(Endpoint::WebTransport { .. })));
        let refused = [
            LoadConfig { clients: 0, ..wt_config() },
            LoadConfig { threads: 0, ..wt_config() },
            LoadConfig { ramp_per_second: 0, ..wt_config() },
            LoadConfig { duration: Duration::ZERO, ..wt_config() },
            LoadConfig { ping_interval: Duration::from_micros(10), ..wt_config() },
            LoadConfig { transport: Transport::WebSocket, ..wt_config() },
        ];
        for (index, config) in refused.iter().enumerate() {
            assert!(config.validate().is_err(), "case {index}");
        }
        // Missing addresses and hashes are named.
        let no_hash = LoadConfig {
            server: ServerTarget { cert_sha256: None, ..wt_config().server },
            ..wt_config()
        };
        assert!(no_hash.endpoint().unwrap_err().to_string().contains("certificate hash"));
        let wss_without_hash = LoadConfig {
            transport: Transport::WebSocket,
            channel: PingChannel::Stream,
            server: ServerTarget {
                ws_url: Some("wss://127.0.0.1:8443/ws".into()),
                ..ServerTarget::default()
            },
            ..LoadConfig::default()
        };
        assert!(wss_without_hash.endpoint().is_err());
        let plain = LoadConfig {
            server: ServerTarget {
                ws_url: Some("ws://127.0.0.1:8080/ws".into()),
                ..ServerTarget::default()
            },
            ..wss_without_hash
        };
        assert!(matches!(plain.endpoint(), Ok(Endpoint::WebSocket { .. })));
    }

    #[test]
    fn clients_and_ramp_are_split_evenly_over_threads() {
        // Proves every client is started exactly once, by one worker, and
        // that the workers together keep the configured ramp.
        let config = LoadConfig { clients: 10, threads: 3, ramp_per_second: 100, ..wt_config() };
        let endpoint = Arc::new(config.endpoint().unwrap());
        let clock = Clock::new();
        let timeline =
            Timeline { start_us: 0, measure_start_us: 0, measure_end_us: 0, drain_end_us: 0 };
        let plans: Vec<worker::Plan> = (0..3)
            .map(|index| worker::Plan::new(&config, index, Arc::clone(&endpoint), clock, timeline))
            .collect();
        let mut numbers: Vec<usize> = plans
            .iter()
            .flat_map(|plan| plan.first_client..plan.first_client + plan.clients)
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, (0..10).collect::<Vec<_>>());
        for plan in &plans {
            assert_eq!(plan.ramp_interval_us, 30_000, "each worker connects every 3 x 10 ms");
        }
        assert_eq!(plans[1].ramp_start_us - plans[0].ramp_start_us, 10_000, "interleaved");
        assert_eq!(config.ramp_time(), Duration::from_millis(100));
    }
}
