//! `ludus bots`: turns the flags into a [`LoadConfig`] with game bots, runs
//! it, writes the report (stdout, --json) and the plot (--plot), and picks
//! the exit status.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use super::{fail, BotGame, BotTransport, BotsArgs, EXIT_RUNTIME_FAILURE, EXIT_USAGE};
use crate::load::plot::{write_plot, PlotSample};
use crate::load::{
    self, BotOptions, BotsConfig, LoadConfig, LoadReport, Phase, PingChannel, ServerTarget,
    Transport,
};
use crate::proto::wire::GameKind;
use crate::reactor::sys::process_cpu_us;

/// Runs the bots and reports; the exit status says whether the run passed.
pub(super) fn run(args: &BotsArgs) -> ExitCode {
    let config = match load_config(args) {
        Ok(config) => config,
        Err(error) => return fail(error, EXIT_USAGE),
    };
    if !args.quiet {
        eprintln!(
            "ludus bots: {} {} bots ({} spectating) over {} on {} thread(s): ramp {:.1} s, \
             warm-up {:.1} s, window {} s",
            config.clients,
            game_kind(args.game).name(),
            config.bots.map_or(0, |bots| bots.spectators(config.clients)),
            config.transport.name(),
            config.threads,
            config.ramp_time().as_secs_f64(),
            config.warmup.as_secs_f64(),
            args.duration,
        );
    }
    // The server's CPU time at both ends of the window, when it is local.
    let (mut cpu_start_us, mut cpu_end_us) = (None, None);
    let observed = load::run_observed(&config, |phase| match (phase, args.server_pid) {
        (Phase::MeasureStarted, Some(pid)) => cpu_start_us = process_cpu_us(pid),
        (Phase::MeasureEnded, Some(pid)) => cpu_end_us = process_cpu_us(pid),
        _ => {}
    });
    let report = match observed {
        Ok(report) => report,
        Err(error) => return fail(error, EXIT_RUNTIME_FAILURE),
    };
    let mut json = report.to_bots_json();
    if let Some(pid) = args.server_pid {
        let Some(cpu_us) = cpu_end_us.zip(cpu_start_us).map(|(end, start)| end - start) else {
            return fail(format!("--server-pid {pid}: no CPU time in /proc"), EXIT_RUNTIME_FAILURE);
        };
        let states = report.bots.as_ref().map_or(0, |bots| bots.states_received);
        json["server_cpu_s"] = serde_json::json!(cpu_us as f64 / 1e6);
        json["server_cpu_share"] =
            serde_json::json!(cpu_us as f64 / 1e6 / config.duration.as_secs_f64());
        json["server_cpu_us_per_state"] = if states > 0 {
            serde_json::json!((cpu_us as f64 / states as f64 * 1e3).round() / 1e3)
        } else {
            serde_json::Value::Null
        };
    }
    let text = serde_json::to_string_pretty(&json).expect("a JSON value serialises");
    println!("{text}");
    if let Some(path) = &args.json {
        if let Err(error) = std::fs::write(path, format!("{text}\n")) {
            return fail(format!("writing {}: {error}", path.display()), EXIT_RUNTIME_FAILURE);
        }
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "ludus bots: {} {} bots over {}",
            config.clients,
            game_kind(args.game).name(),
            config.transport.name()
        );
        if let Err(error) = write_plot(path, &title, &plot_samples(&report)) {
            return fail(format!("plot {}: {error}", path.display()), EXIT_RUNTIME_FAILURE);
        }
    }
    match verdict(&report, args.max_error_rate) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => fail(reason, EXIT_RUNTIME_FAILURE),
    }
}

/// Why a finished run failed, if it did.
fn verdict(report: &LoadReport, max_error_rate: Option<f64>) -> Result<(), String> {
    if report.clients_connected_total == 0 {
        let first = report.errors.0.keys().next().map_or("no error recorded", String::as_str);
        return Err(format!("no bot could connect ({first})"));
    }
    let rate = report.error_rate();
    match max_error_rate {
        Some(max) if rate > max => Err(format!(
            "error rate {rate:.4} ({} errors for {} bots) exceeds --max-error-rate {max}",
            report.errors.total(),
            report.clients_target
        )),
        _ => Ok(()),
    }
}

fn plot_samples(report: &LoadReport) -> Vec<PlotSample> {
    report
        .seconds
        .iter()
        .map(|second| PlotSample {
            t_s: second.t_s,
            connected: second.connected,
            p50_ms: second.p50_ms,
            p90_ms: second.p90_ms,
            p99_ms: second.p99_ms,
            max_ms: second.max_ms,
        })
        .collect()
}

fn game_kind(game: BotGame) -> GameKind {
    match game {
        BotGame::Tetris => GameKind::Tetris,
        BotGame::Arena => GameKind::Arena,
    }
}

/// The run the flags describe; every refusal names the flag.
fn load_config(args: &BotsArgs) -> Result<LoadConfig, String> {
    if args.players == 0 {
        return Err("--players must be at least 1".into());
    }
    if args.duration == 0 {
        return Err("--duration must be at least 1 second".into());
    }
    if !(args.warmup.is_finite() && args.warmup >= 0.0) {
        return Err("--warmup must be zero or more seconds".into());
    }
    if args.threads == 0 || args.threads > load::THREADS_MAX {
        return Err(format!("--threads must be between 1 and {}", load::THREADS_MAX));
    }
    let cert_sha256 = match &args.cert_hash {
        Some(hex_digits) => {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(hex_digits, &mut hash).map_err(|e| format!("--cert-hash: {e}"))?;
            Some(hash)
        }
        None => None,
    };
    let (transport, channel, server) = match args.transport {
        BotTransport::Wt => {
            if cert_sha256.is_none() {
                return Err("--cert-hash is required for WebTransport (`ludus serve` and \
                            `ludus cert` print it)"
                    .into());
            }
            let address = wt_address(&args.server)?;
            let target = ServerTarget { wt_address: Some(address), cert_sha256, ws_url: None };
            (Transport::WebTransport, PingChannel::Datagram, target)
        }
        BotTransport::Ws => {
            let url = ws_url(&args.server)?;
            if url.starts_with("wss://") && cert_sha256.is_none() {
                return Err("--cert-hash is required for wss:// (the server's certificate is \
                            pinned by its hash)"
                    .into());
            }
            let target = ServerTarget { wt_address: None, cert_sha256, ws_url: Some(url) };
            (Transport::WebSocket, PingChannel::Stream, target)
        }
    };
    let options = BotOptions {
        game: game_kind(args.game),
        pieces_per_second: args.pps,
        blunder_every: args.blunder_every,
    };
    Ok(LoadConfig {
        server,
        transport,
        clients: args.players as usize,
        ramp_per_second: args.ramp,
        duration: Duration::from_secs(args.duration),
        ping_interval: Duration::from_millis(args.ping_ms),
        channel,
        threads: args.threads,
        warmup: Duration::from_secs_f64(args.warmup),
        drain_timeout: Duration::from_secs(3),
        pin_cores: args.cores.as_ref().map(|cores| cores.ids().to_vec()).unwrap_or_default(),
        nickname_prefix: "bot".into(),
        bots: Some(BotsConfig {
            options,
            spectator_share: args.spectators,
            reconnect_share: args.reconnect,
        }),
        progress: !args.quiet,
    })
}

/// `https://host:port[/wt]` or `host:port`: the server's UDP address.
fn wt_address(server: &str) -> Result<SocketAddr, String> {
    let rest = server.strip_prefix("https://").unwrap_or(server);
    if rest.contains("://") {
        return Err(format!("--server {server}: WebTransport needs https://HOST:PORT"));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    authority
        .to_socket_addrs()
        .map_err(|error| format!("--server {server}: {error}"))?
        .next()
        .ok_or_else(|| format!("--server {server}: no address"))
}

/// The WebSocket URL: ws:// and wss:// as given (path /ws when none);
/// https:// becomes wss:// and http:// becomes ws://.
fn ws_url(server: &str) -> Result<String, String> {
    let (scheme, rest) = if let Some(rest) = server.strip_prefix("wss://") {
        ("wss", rest)
    } else if let Some(rest) = server.strip_prefix("ws://") {
        ("ws", rest)
    } else if let Some(rest) = server.strip_prefix("https://") {
        ("wss", rest)
    } else if let Some(rest) = server.strip_prefix("http://") {
        ("ws", rest)
    } else {
        return Err(format!("--server {server}: expected ws://, wss://, http:// or https://"));
    };
    let path = if rest.contains('/') { "" } else { "/ws" };
    Ok(format!("{scheme}://{rest}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_map_to_each_transport() {
        assert_eq!(wt_address("https://127.0.0.1:4433").unwrap().port(), 4433);
        assert_eq!(wt_address("https://127.0.0.1:4433/wt").unwrap().port(), 4433);
        assert_eq!(wt_address("127.0.0.1:9").unwrap().port(), 9);
        assert!(wt_address("ws://127.0.0.1:8080/ws").is_err());
        assert_eq!(ws_url("ws://127.0.0.1:8080").unwrap(), "ws://127.0.0.1:8080/ws");
        assert_eq!(ws_url("https://h:8443").unwrap(), "wss://h:8443/ws");
        assert_eq!(ws_url("http://h:8080/ws").unwrap(), "ws://h:8080/ws");
        assert!(ws_url("ftp://h").is_err());
    }

    fn report(connected: u64, errors: u64) -> LoadReport {
        let mut stats = load::ThreadStats::new();
        stats.clients_connected = connected;
        for _ in 0..errors {
            stats.errors.add("session lost: by server: Timeout");
        }
        let config = LoadConfig { clients: 100, ..LoadConfig::default() };
        LoadReport::merge(&config, vec![stats], Duration::from_secs(1))
    }

    #[test]
    fn the_exit_status_follows_connections_and_the_error_rate() {
        assert!(verdict(&report(0, 0), None).is_err(), "nobody connected");
        assert!(verdict(&report(100, 0), Some(0.0)).is_ok());
        assert!(verdict(&report(100, 2), Some(0.01)).is_err(), "2 errors per 100 bots > 1%");
        assert!(verdict(&report(100, 1), Some(0.01)).is_ok());
        assert!(verdict(&report(100, 50), None).is_ok(), "no threshold given");
    }
}
