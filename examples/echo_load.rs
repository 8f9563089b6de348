//! Runs the load core (`ludus::load`) against one server and prints the
//! `LoadReport` as JSON on stdout.
//!
//! ```sh
//! cargo run --release --example echo_load -- --transport wt \
//!     --wt 127.0.0.1:4433 --cert-sha256 <hex> --clients 200 --interval-ms 10 \
//!     --duration-s 10 --channel datagram --server-pid <pid>
//! ```
//!
//! With `--server-pid` it also reads the server's CPU time (utime + stime
//! from /proc/PID/stat) and resident memory (VmRSS from /proc/PID/status)
//! at the start of the run and at both ends of the measure window, and
//! adds to the report: server CPU microseconds per echo and echoes per
//! server CPU second (window only: handshakes excluded), and the memory
//! the server grew by per session open at the end of the window (start of
//! run to end of window: what the sessions themselves cost; use
//! `--interval-ms 0` for idle sessions).

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use ludus::load::{self, LoadConfig, Phase, PingChannel, ServerTarget, Transport};
use serde_json::json;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TransportArg {
    Wt,
    Ws,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ChannelArg {
    Stream,
    Datagram,
}

/// Echo load: clients connect, say Hello, then Ping at an interval.
#[derive(Debug, Parser)]
struct Args {
    #[arg(long, value_enum, default_value = "wt")]
    transport: TransportArg,
    /// The server's UDP address (WebTransport).
    #[arg(long)]
    wt: Option<SocketAddr>,
    /// ws:// or wss:// URL of the WebSocket endpoint.
    #[arg(long)]
    ws: Option<String>,
    /// SHA-256 of the server certificate, hex (WebTransport and wss://).
    #[arg(long)]
    cert_sha256: Option<String>,
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// New connections per second.
    #[arg(long, default_value_t = 500)]
    ramp: u32,
    /// Measure window, seconds.
    #[arg(long, default_value_t = 10.0)]
    duration_s: f64,
    /// Between a client's Pings, milliseconds; 0 for idle sessions.
    #[arg(long, default_value_t = 10.0)]
    interval_ms: f64,
    #[arg(long, value_enum, default_value = "datagram")]
    channel: ChannelArg,
    /// Worker threads (event loops).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Between the ramp and the window, seconds.
    #[arg(long, default_value_t = 1.0)]
    warmup_s: f64,
    /// Cores to pin workers to, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pin_cores: Vec<usize>,
    /// The server's process id: report its CPU time and memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// A label copied into the report.
    #[arg(long, default_value = "")]
    label: String,
}

/// The server's CPU time and memory at one instant, and the machine's UDP
/// receive-buffer drops (all sockets: a full socket buffer drops there).
#[derive(Debug, Clone, Copy, Default)]
struct ServerSample {
    cpu_us: u64,
    rss_kib: u64,
    udp_receive_buffer_errors: u64,
}

fn main() {
    let args = Args::parse();
    let nofile = raise_nofile_limit();
    let config = match build_config(&args) {
        Ok(config) => config,
        Err(reason) => {
            eprintln!("echo_load: {reason}");
            std::process::exit(2);
        }
    };
    let mut samples = [None::<ServerSample>; 3];
    let mut load_rss_kib_window_end = None;
    let result = load::run_observed(&config, |phase| {
        let slot = match phase {
            Phase::Started => 0,
            Phase::MeasureStarted => 1,
            Phase::MeasureEnded => 2,
        };
        samples[slot] = args.server_pid.and_then(sample_server);
        if phase == Phase::MeasureEnded {
            load_rss_kib_window_end = rss_kib(std::process::id());
        }
    });
    let report = match result {
        Ok(report) => report,
        Err(error) => {
            eprintln!("echo_load: {error}");
            std::process::exit(1);
        }
    };
    let mut json = report.to_json();
    json["label"] = json!(args.label);
    json["nofile_limit"] = json!(nofile);
    // The load process's own memory with every client open.
    json["load_rss_kib_window_end"] = json!(load_rss_kib_window_end);
    if let [Some(start), Some(window_start), Some(window_end)] = samples {
        let cpu_us = window_end.cpu_us.saturating_sub(window_start.cpu_us);
        let echoes = report.pongs_received.max(1) as f64;
        // Memory at the window's end, when the ramp's stragglers are in too.
        let sessions = report.clients_connected_at_end.max(1) as f64;
        let grown_kib = window_end.rss_kib.saturating_sub(start.rss_kib) as f64;
        json["server"] = json!({
            "pid": args.server_pid,
            "cpu_us_window": cpu_us,
            "cpu_us_per_echo": round2(cpu_us as f64 / echoes),
            "echoes_per_cpu_second": (echoes / (cpu_us.max(1) as f64 / 1e6)).round(),
            "cpu_share_of_one_core": round2(cpu_us as f64 / config.duration.as_micros() as f64),
            "rss_kib_start": start.rss_kib,
            "rss_kib_window_start": window_start.rss_kib,
            "rss_kib_window_end": window_end.rss_kib,
            "rss_kib_per_session": round2(grown_kib / sessions),
            "udp_receive_buffer_errors_window": window_end
                .udp_receive_buffer_errors
                .saturating_sub(window_start.udp_receive_buffer_errors),
        });
    }
    println!("{json}");
}

fn build_config(args: &Args) -> Result<LoadConfig, String> {
    let cert_sha256 = match &args.cert_sha256 {
        Some(hex_digits) => {
            let digits: String = hex_digits.chars().filter(|c| *c != ':').collect();
            let mut hash = [0u8; 32];
            hex::decode_to_slice(digits.trim(), &mut hash)
                .map_err(|_| format!("--cert-sha256: not a SHA-256 in hex: {hex_digits}"))?;
            Some(hash)
        }
        None => None,
    };
    Ok(LoadConfig {
        server: ServerTarget { wt_address: args.wt, ws_url: args.ws.clone(), cert_sha256 },
        transport: match args.transport {
            TransportArg::Wt => Transport::WebTransport,
            TransportArg::Ws => Transport::WebSocket,
        },
        clients: args.clients,
        ramp_per_second: args.ramp,
        duration: Duration::from_secs_f64(args.duration_s),
        ping_interval: Duration::from_secs_f64(args.interval_ms / 1e3),
        channel: match args.channel {
            ChannelArg::Stream => PingChannel::Stream,
            ChannelArg::Datagram => PingChannel::Datagram,
        },
        threads: args.threads,
        warmup: Duration::from_secs_f64(args.warmup_s),
        pin_cores: args.pin_cores.clone(),
        ..LoadConfig::default()
    })
}

/// One UDP socket per WebTransport client: raise the descriptor limit to
/// the hard limit. Returns the limit in force.
fn raise_nofile_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: `limit` is a valid rlimit; raising the soft limit to the hard
    // one needs no privilege.
    let _ = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    // SAFETY: as above.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    limit.rlim_cur
}

fn sample_server(pid: u32) -> Option<ServerSample> {
    Some(ServerSample {
        cpu_us: ludus::reactor::sys::process_cpu_us(pid)?,
        rss_kib: rss_kib(pid)?,
        udp_receive_buffer_errors: udp_receive_buffer_errors().unwrap_or(0),
    })
}

/// `Udp: ... RcvbufErrors` of /proc/net/snmp (the whole machine).
fn udp_receive_buffer_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|line| line.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let column = names.split_whitespace().position(|name| name == "RcvbufErrors")?;
    values.split_whitespace().nth(column)?.parse().ok()
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
