//! What a run measured: per-thread counts and histograms
//! ([`ThreadStats`]), merged into one [`LoadReport`].

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use super::{LoadConfig, RTT_SIGNIFICANT_DIGITS, RTT_US_HIGHEST, RTT_US_LOWEST};
use crate::client::Traffic;

/// Errors by reason ("connect: I/O: Connection refused", "closed by server:
/// Timeout"...). Touched only when something fails, so a `String` key per
/// distinct reason is fine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorCounts(pub BTreeMap<String, u64>);

impl ErrorCounts {
    pub fn add(&mut self, reason: impl Into<String>) {
        *self.0.entry(reason.into()).or_default() += 1;
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    fn merge(&mut self, other: &ErrorCounts) {
        for (reason, count) in &other.0 {
            *self.0.entry(reason.clone()).or_default() += count;
        }
    }
}

/// One worker's counts. "In the window" means inside the measure window.
#[derive(Debug, Clone)]
pub struct ThreadStats {
    /// RTT of every Pong received in the window (microseconds, network time
    /// as the client session computes it: the server's hold time removed).
    pub rtt_us: Histogram<u64>,
    pub clients_started: u64,
    /// Sessions that got their Welcome, over the whole run.
    pub clients_connected: u64,
    /// Sessions established when the window opened.
    pub connected_at_measure_start: u64,
    /// Sessions established when the window closed.
    pub connected_at_measure_end: u64,
    /// Clients that never got a Welcome (refused, timed out, failed).
    pub connect_failures: u64,
    /// Established sessions that ended before the window closed.
    pub sessions_lost: u64,
    pub pings_sent: u64,
    pub pongs_received: u64,
    /// Pings sent more than one interval late (the worker fell behind).
    pub pings_late: u64,
    /// Clients whose close had not finished when the drain time ran out.
    pub clients_unclosed: u64,
    pub errors: ErrorCounts,
    /// CPU time of the worker thread over the whole run.
    pub cpu_time: Duration,
    // ----- bots (zero for the echo load) -----
    /// Input-to-acknowledgement latency of Inputs sent in the window, us.
    pub ack_us: Histogram<u64>,
    /// State inter-arrival jitter in the window, us (see `load::bot`).
    pub jitter_us: Histogram<u64>,
    /// From opening the transport to the Welcome, us (whole run).
    pub connect_us: Histogram<u64>,
    /// State messages (ArenaState, TetrisDelta, TetrisSnapshot) received in
    /// the window.
    pub states_received: u64,
    /// Input messages sent in the window (resends not included).
    pub inputs_sent: u64,
    pub inputs_resent: u64,
    /// Inputs sent in the window whose acknowledgement never came.
    pub inputs_unacked: u64,
    pub rooms_joined: u64,
    /// Players that left a room they were alone in to quick-join again.
    pub requeues: u64,
    /// Transports dropped on purpose (`--reconnect`), over the run.
    pub reconnects: u64,
    /// From dropping the transport to being back in the room, us.
    pub reconnect_us: Histogram<u64>,
    pub games_started: u64,
    pub games_finished: u64,
    pub pieces_locked: u64,
    /// Messages and bytes of every session, in the window.
    pub traffic: Traffic,
    /// Rooms the worker's bots were in when the window closed.
    pub rooms: Vec<u64>,
}

impl ThreadStats {
    pub fn new() -> ThreadStats {
        ThreadStats {
            rtt_us: new_histogram(),
            clients_started: 0,
            clients_connected: 0,
            connected_at_measure_start: 0,
            connected_at_measure_end: 0,
            connect_failures: 0,
            sessions_lost: 0,
            pings_sent: 0,
            pongs_received: 0,
            pings_late: 0,
            clients_unclosed: 0,
            errors: ErrorCounts::default(),
            cpu_time: Duration::ZERO,
            ack_us: new_histogram(),
            jitter_us: new_histogram(),
            connect_us: new_histogram(),
            states_received: 0,
            inputs_sent: 0,
            inputs_resent: 0,
            inputs_unacked: 0,
            rooms_joined: 0,
            requeues: 0,
            reconnects: 0,
            reconnect_us: new_histogram(),
            games_started: 0,
            games_finished: 0,
            pieces_locked: 0,
            traffic: Traffic::default(),
            rooms: Vec::new(),
        }
    }
}

impl Default for ThreadStats {
    fn default() -> Self {
        ThreadStats::new()
    }
}

/// A histogram with fixed bounds: recording never allocates.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(RTT_US_LOWEST, RTT_US_HIGHEST, RTT_SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// Round-trip percentiles, microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RttSummary {
    pub count: u64,
    pub min_us: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl RttSummary {
    pub fn of(histogram: &Histogram<u64>) -> RttSummary {
        if histogram.is_empty() {
            return RttSummary::default();
        }
        RttSummary {
            count: histogram.len(),
            min_us: histogram.min(),
            mean_us: histogram.mean(),
            p50_us: histogram.value_at_quantile(0.50),
            p90_us: histogram.value_at_quantile(0.90),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
            max_us: histogram.max(),
        }
    }
}

/// The merged result of a run.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub transport: &'static str,
    pub channel: &'static str,
    pub threads: usize,
    pub clients_target: usize,
    /// Sessions established when the measure window opened.
    pub clients_connected: u64,
    /// Sessions established when the measure window closed.
    pub clients_connected_at_end: u64,
    /// Sessions that got a Welcome at any time.
    pub clients_connected_total: u64,
    pub connect_failures: u64,
    pub sessions_lost: u64,
    pub ping_interval_ms: f64,
    pub pings_sent: u64,
    pub pongs_received: u64,
    pub pings_late: u64,
    pub clients_unclosed: u64,
    pub duration: Duration,
    /// Pongs received in the window per second of window.
    pub echoes_per_second: f64,
    pub rtt: RttSummary,
    pub errors: ErrorCounts,
    /// All workers' CPU time over the whole run.
    pub load_cpu_time: Duration,
    /// Wall time of the whole run (ramp, warm-up, window, drain).
    pub elapsed: Duration,
    /// The merged histogram, for callers that want other quantiles.
    pub histogram: Histogram<u64>,
    /// `ludus bots` only: what the game bots measured.
    pub bots: Option<BotsReport>,
    /// One entry per second of the run (progress and plot).
    pub seconds: Vec<SecondSample>,
}

/// What the game bots measured, merged.
#[derive(Debug, Clone)]
pub struct BotsReport {
    pub game: &'static str,
    pub spectators: usize,
    /// Distinct rooms the bots were in when the window closed.
    pub rooms: usize,
    pub ack: RttSummary,
    pub jitter: RttSummary,
    pub connect: RttSummary,
    pub states_received: u64,
    pub inputs_sent: u64,
    pub inputs_resent: u64,
    pub inputs_unacked: u64,
    pub rooms_joined: u64,
    pub requeues: u64,
    pub reconnects: u64,
    pub reconnect: RttSummary,
    pub games_started: u64,
    pub games_finished: u64,
    pub pieces_locked: u64,
    pub traffic: Traffic,
    pub ack_histogram: Histogram<u64>,
}

/// One second of a run, as the progress line shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SecondSample {
    /// Seconds since the run started.
    pub t_s: f64,
    pub connected: u64,
    pub rooms: usize,
    pub messages_in_per_s: f64,
    pub messages_out_per_s: f64,
    /// Input-to-acknowledgement latency of this second, ms (NaN: none).
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// p99 of everything so far, ms.
    pub p99_so_far_ms: f64,
    pub errors: u64,
}

impl LoadReport {
    pub fn merge(config: &LoadConfig, threads: Vec<ThreadStats>, elapsed: Duration) -> LoadReport {
        let mut histogram = new_histogram();
        let mut errors = ErrorCounts::default();
        let sum = |field: fn(&ThreadStats) -> u64| threads.iter().map(field).sum::<u64>();
        for stats in &threads {
            histogram.add(&stats.rtt_us).expect("histograms of equal bounds merge");
            errors.merge(&stats.errors);
        }
        let pongs_received = sum(|stats| stats.pongs_received);
        LoadReport {
            transport: config.transport.name(),
            channel: config.channel.name(),
            threads: config.threads,
            clients_target: config.clients,
            clients_connected: sum(|stats| stats.connected_at_measure_start),
            clients_connected_at_end: sum(|stats| stats.connected_at_measure_end),
            clients_connected_total: sum(|stats| stats.clients_connected),
            connect_failures: sum(|stats| stats.connect_failures),
            sessions_lost: sum(|stats| stats.sessions_lost),
            ping_interval_ms: config.ping_interval.as_secs_f64() * 1e3,
            pings_sent: sum(|stats| stats.pings_sent),
            pongs_received,
            pings_late: sum(|stats| stats.pings_late),
            clients_unclosed: sum(|stats| stats.clients_unclosed),
            duration: config.duration,
            echoes_per_second: pongs_received as f64 / config.duration.as_secs_f64(),
            rtt: RttSummary::of(&histogram),
            errors,
            load_cpu_time: threads.iter().map(|stats| stats.cpu_time).sum(),
            elapsed,
            bots: config.bots.as_ref().map(|bots| BotsReport::merge(config, bots, &threads)),
            histogram,
            seconds: Vec::new(),
        }
    }

    pub fn to_json(&self) -> Value {
        let rtt = &self.rtt;
        json!({
            "transport": self.transport,
            "channel": self.channel,
            "threads": self.threads,
            "clients_target": self.clients_target,
            "clients_connected": self.clients_connected,
            "clients_connected_at_end": self.clients_connected_at_end,
            "clients_connected_total": self.clients_connected_total,
            "connect_failures": self.connect_failures,
            "sessions_lost": self.sessions_lost,
            "ping_interval_ms": self.ping_interval_ms,
            "duration_s": self.duration.as_secs_f64(),
            "pings_sent": self.pings_sent,
            "pongs_received": self.pongs_received,
            "pongs_missing": self.pings_sent.saturating_sub(self.pongs_received),
            "pings_late": self.pings_late,
            "clients_unclosed": self.clients_unclosed,
            "echoes_per_second": round(self.echoes_per_second, 1),
            "rtt_us": {
                "count": rtt.count,
                "min": rtt.min_us,
                "mean": round(rtt.mean_us, 1),
                "p50": rtt.p50_us,
                "p90": rtt.p90_us,
                "p99": rtt.p99_us,
                "p999": rtt.p999_us,
                "max": rtt.max_us,
            },
            "errors": self.errors.0,
            "errors_total": self.errors.total(),
            "load_cpu_s": round(self.load_cpu_time.as_secs_f64(), 3),
            "elapsed_s": round(self.elapsed.as_secs_f64(), 3),
        })
    }

    /// The report of `ludus bots` (schema in docs/BENCHMARKS.md).
    pub fn to_bots_json(&self) -> Value {
        let window_s = self.duration.as_secs_f64();
        let per_s = |count: u64| round(count as f64 / window_s, 1);
        let mut json = json!({
            "clients": self.clients_target,
            "clients_connected": self.clients_connected,
            "clients_connected_at_end": self.clients_connected_at_end,
            "connect_failures": self.connect_failures,
            "sessions_lost": self.sessions_lost,
            "transport": self.transport,
            "threads": self.threads,
            "duration_s": window_s,
            "rtt_ms": summary_ms(&self.rtt),
            "pings_sent": self.pings_sent,
            "pongs_received": self.pongs_received,
            "errors": self.errors.0,
            "errors_total": self.errors.total(),
            "error_rate": round(self.error_rate(), 6),
            "bots_cpu_s": round(self.load_cpu_time.as_secs_f64(), 3),
            "elapsed_s": round(self.elapsed.as_secs_f64(), 3),
        });
        if let Some(bots) = &self.bots {
            let extra = json!({
                "game": bots.game,
                "spectators": bots.spectators,
                "rooms": bots.rooms,
                "msgs_in_per_s": per_s(bots.traffic.messages_in),
                "msgs_out_per_s": per_s(bots.traffic.messages_out),
                "bytes_in_per_s": per_s(bots.traffic.bytes_in),
                "bytes_out_per_s": per_s(bots.traffic.bytes_out),
                "states_per_s": per_s(bots.states_received),
                "latency_ms": summary_ms(&bots.ack),
                "jitter_ms": summary_ms(&bots.jitter),
                "connect_ms": summary_ms(&bots.connect),
                "inputs_sent": bots.inputs_sent,
                "inputs_resent": bots.inputs_resent,
                "inputs_unacked": bots.inputs_unacked,
                "rooms_joined": bots.rooms_joined,
                "requeues": bots.requeues,
                "reconnects": bots.reconnects,
                "reconnect_ms": summary_ms(&bots.reconnect),
                "games_started": bots.games_started,
                "games_finished": bots.games_finished,
                "pieces_locked": bots.pieces_locked,
            });
            if let (Value::Object(json), Value::Object(extra)) = (&mut json, extra) {
                json.extend(extra);
            }
        }
        json["seconds"] = self
            .seconds
            .iter()
            .map(|second| {
                json!({
                    "t_s": round(second.t_s, 1),
                    "connected": second.connected,
                    "rooms": second.rooms,
                    "msgs_in_per_s": round(second.messages_in_per_s, 1),
                    "msgs_out_per_s": round(second.messages_out_per_s, 1),
                    "p50_ms": finite(second.p50_ms),
                    "p99_ms": finite(second.p99_ms),
                    "errors": second.errors,
                })
            })
            .collect();
        json
    }

    /// Clients that failed (never connected, or lost their session) and
    /// other errors, per client started.
    pub fn error_rate(&self) -> f64 {
        self.errors.total() as f64 / self.clients_target.max(1) as f64
    }
}

impl BotsReport {
    fn merge(config: &LoadConfig, bots: &super::BotsConfig, threads: &[ThreadStats]) -> Self {
        let mut ack = new_histogram();
        let mut jitter = new_histogram();
        let mut connect = new_histogram();
        let mut reconnect = new_histogram();
        let mut traffic = Traffic::default();
        let mut rooms: Vec<u64> = Vec::new();
        for stats in threads {
            ack.add(&stats.ack_us).expect("equal bounds");
            jitter.add(&stats.jitter_us).expect("equal bounds");
            connect.add(&stats.connect_us).expect("equal bounds");
            reconnect.add(&stats.reconnect_us).expect("equal bounds");
            traffic.add(&stats.traffic);
            rooms.extend_from_slice(&stats.rooms);
        }
        rooms.sort_unstable();
        rooms.dedup();
        let sum = |field: fn(&ThreadStats) -> u64| threads.iter().map(field).sum::<u64>();
        BotsReport {
            game: bots.options.game.name(),
            spectators: bots.spectators(config.clients),
            rooms: rooms.len(),
            ack: RttSummary::of(&ack),
            jitter: RttSummary::of(&jitter),
            connect: RttSummary::of(&connect),
            states_received: sum(|stats| stats.states_received),
            inputs_sent: sum(|stats| stats.inputs_sent),
            inputs_resent: sum(|stats| stats.inputs_resent),
            inputs_unacked: sum(|stats| stats.inputs_unacked),
            rooms_joined: sum(|stats| stats.rooms_joined),
            requeues: sum(|stats| stats.requeues),
            reconnects: sum(|stats| stats.reconnects),
            reconnect: RttSummary::of(&reconnect),
            games_started: sum(|stats| stats.games_started),
            games_finished: sum(|stats| stats.games_finished),
            pieces_locked: sum(|stats| stats.pieces_locked),
            traffic,
            ack_histogram: ack,
        }
    }
}

/// Percentiles in milliseconds (the report's unit for people).
fn summary_ms(summary: &RttSummary) -> Value {
    let ms = |us: u64| round(us as f64 / 1e3, 3);
    json!({
        "count": summary.count,
        "p50": ms(summary.p50_us),
        "p90": ms(summary.p90_us),
        "p99": ms(summary.p99_us),
        "p999": ms(summary.p999_us),
        "max": ms(summary.max_us),
        "mean": round(summary.mean_us / 1e3, 3),
    })
}

/// NaN (no sample that second) as null.
fn finite(value: f64) -> Value {
    if value.is_finite() {
        json!(round(value, 3))
    } else {
        Value::Null
    }
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_counts_histograms_and_errors() {
        // Proves the report is the sum of its threads, quantiles included.
        let mut first = ThreadStats::new();
        let mut second = ThreadStats::new();
        for value in 1..=90 {
            first.rtt_us.record(value).unwrap();
        }
        for value in 91..=100 {
            second.rtt_us.record(value * 1_000).unwrap();
        }
        first.pongs_received = 90;
        second.pongs_received = 10;
        first.pings_sent = 95;
        second.pings_sent = 10;
        first.errors.add("closed by server: Timeout");
        second.errors.add("closed by server: Timeout");
        second.errors.add("connect: refused");
        let config = LoadConfig { duration: Duration::from_secs(2), ..LoadConfig::default() };
        let report = LoadReport::merge(&config, vec![first, second], Duration::from_secs(5));
        assert_eq!(report.rtt.count, 100);
        assert_eq!(report.rtt.min_us, 1);
        assert!(report.rtt.p50_us == 50, "{}", report.rtt.p50_us);
        assert!(report.rtt.p99_us >= 99_000 && report.rtt.max_us >= 100_000);
        assert_eq!(report.echoes_per_second, 50.0);
        assert_eq!(report.errors.0["closed by server: Timeout"], 2);
        assert_eq!(report.errors.total(), 3);
        let json = report.to_json();
        assert_eq!(json["pongs_missing"], 5);
        assert_eq!(json["rtt_us"]["p50"], 50);
        assert_eq!(json["errors_total"], 3);
    }
}
