//! The command line: `ludus <subcommand>`.
//!
//! clap parses the flags; [`crate::config`] applies the precedence (flags >
//! environment > file > defaults), which is why no flag uses clap's `env`
//! attribute: that would put the environment above the file but also let
//! clap, not the config layer, decide the order.
//!
//! Exit statuses: 0 success, [`EXIT_USAGE`] for usage or configuration
//! errors and for commands not built yet, [`EXIT_RUNTIME_FAILURE`] when
//! something fails while running.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{Config, ConfigError, CoreList, Overrides, Sources};
use crate::devcert::{self, CertPaths, DevCert, DevCertError};
use crate::logging::{self, LogFormat};

mod bots;
mod replay;

/// Something failed while running (I/O, certificate generation).
pub const EXIT_RUNTIME_FAILURE: u8 = 1;
/// Bad usage or configuration, or a command that is not built yet. clap's
/// own usage errors exit with the same status.
pub const EXIT_USAGE: u8 = 2;

/// Ludus: a multiplayer game server in one binary.
#[derive(Debug, Parser)]
#[command(
    name = "ludus",
    version,
    arg_required_else_help = true,
    long_about = "Ludus: a multiplayer game server in one binary.\n\n\
        Configuration comes from, lowest precedence first: built-in defaults, a TOML \
        file (--config PATH, else ./ludus.toml if present), environment variables \
        (PORT, DATABASE_URL, LUDUS_SHARDS, RUST_LOG, ...), then the flags below. \
        `ludus config` prints the result."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand accepts; each overrides the file and environment.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Configuration (flags > environment > file > defaults)")]
pub struct GlobalArgs {
    /// TOML config file; it must exist. Default: ./ludus.toml if it exists.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// QUIC (HTTP/3, WebTransport) address [env: LUDUS_UDP] [default: 0.0.0.0:4433]
    #[arg(long, global = true, value_name = "ADDR")]
    pub udp: Option<SocketAddr>,
    /// TLS over TCP (HTTPS, WebSocket) address [env: LUDUS_HTTPS, PORT] [default: 0.0.0.0:8443]
    #[arg(long, global = true, value_name = "ADDR")]
    pub https: Option<SocketAddr>,
    /// Plain HTTP for development, loopback only [env: LUDUS_HTTP] [default: 127.0.0.1:8080]
    #[arg(long, global = true, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Directory for the embedded database, event log, artifacts and dev certificates [env: LUDUS_DATA_DIR] [default: ./data]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Number of shard threads [env: LUDUS_SHARDS] [default: available cores]
    #[arg(long, global = true, value_name = "N")]
    pub shards: Option<usize>,
    /// Cores to pin shards to, e.g. 0-3 or 0,2,4-5 [env: LUDUS_CORES]
    #[arg(long, global = true, value_name = "LIST")]
    pub cores: Option<CoreList>,
    /// Log line format [env: LUDUS_LOG_FORMAT] [default: human]
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter: a level or EnvFilter directives like info,ludus=debug [env: RUST_LOG] [default: info]
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

impl GlobalArgs {
    /// The flags as the top configuration layer.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            udp: self.udp,
            https: self.https,
            http: self.http,
            data_dir: self.data_dir.clone(),
            shards: self.shards,
            cores: self.cores.clone(),
            log_format: self.log_format,
            log_level: self.log_level.clone(),
        }
    }

    /// Loads the configuration from this process's file, environment and
    /// these flags.
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        Config::load(&Sources::from_process(self.config.clone(), self.overrides())?)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the game server.
    ///
    /// Starts one shard per configured core, each serving QUIC (HTTP/3 and
    /// WebTransport at /wt) on the UDP address and HTTPS/WebSocket (/ws) on
    /// the TLS and plain-HTTP addresses. Without [tls] PEM files it writes a
    /// 14-day development certificate to <data_dir>/tls and prints its
    /// SHA-256 hash. SIGINT/SIGTERM drain gracefully within
    /// serve.shutdown_grace_ms; a second signal exits at once.
    Serve,
    /// Print the effective configuration as TOML, secrets redacted.
    ///
    /// Shows what `serve` would run with after defaults, the config file,
    /// environment variables and flags are combined. The output is itself a
    /// valid config file. A bad configuration is reported on stderr with
    /// exit status 2.
    Config,
    /// Write a self-signed development certificate and print its hashes.
    ///
    /// Generates an ECDSA P-256 certificate valid at most 14 days for
    /// localhost, 127.0.0.1 and ::1 (plus any --san), writes cert.pem and
    /// key.pem (mode 0600) into <data_dir>/tls or --out, and prints the
    /// SHA-256 of the certificate (for WebTransport serverCertificateHashes)
    /// and the base64 SHA-256 of its public key (for Chromium's
    /// --ignore-certificate-errors-spki-list).
    Cert(CertArgs),
    /// Load-test a server with bot players.
    ///
    /// Runs N protocol clients on a few event-loop threads (never a thread
    /// per bot): they join as guests, quick-join rooms and play (arena
    /// walkers at 30 Hz, Tetris placers at --pps), or watch (--spectators).
    /// Prints a progress line a second on stderr and the JSON report on
    /// stdout (schema: docs/BENCHMARKS.md). Exit status 1 when no client
    /// connected or the error rate exceeds --max-error-rate.
    Bots(BotsArgs),
    /// Apply database migrations.
    ///
    /// Applies the SQL migrations built into this binary (migrations/) that
    /// the database lacks, one transaction each, to DATABASE_URL or, without
    /// it, to the embedded SQLite file <data_dir>/ludus.sqlite3. Prints each
    /// migration applied and the final schema version. Exit status 1 when a
    /// migration fails, the database is unreachable, an applied migration
    /// was edited, or the database is newer than this binary.
    Migrate,
    /// Audit a room's recorded matches by replaying them.
    ///
    /// Reads the room's game events from the embedded event log of the data
    /// dir (without locking it: it may run next to the server), re-simulates
    /// each Tetris match from its seed and logged inputs, tick by tick, and
    /// checks that every event comes out identical. Exit status 1 when one
    /// differs (printed) or the log cannot be read.
    Replay {
        /// Id of the room to replay.
        #[arg(value_name = "ROOM")]
        room: String,
    },
    /// Manage game artifacts and manifests (not built yet).
    ///
    /// Will list, publish and promote game builds per environment (S3 or the
    /// local artifact directory); lands with the game registry work. Exits
    /// with status 2 for now.
    Games(GamesArgs),
}

/// Flags of `ludus cert`.
#[derive(Debug, Args)]
pub struct CertArgs {
    /// Days of validity; browsers pin only certificates valid at most 14 days.
    #[arg(
        long,
        value_name = "N",
        default_value_t = devcert::VALIDITY_DAYS_MAX,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(devcert::VALIDITY_DAYS_MAX)),
    )]
    pub days: u32,
    /// Output directory [default: <data_dir>/tls]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Extra subject alternative name (DNS name or IP); repeatable.
    #[arg(long = "san", value_name = "NAME")]
    pub san: Vec<String>,
}

/// Flags of `ludus bots`.
#[derive(Debug, Args)]
pub struct BotsArgs {
    /// Server to connect to: https://HOST:PORT (WebTransport at /wt on the
    /// UDP port; for ws, wss://HOST:PORT/ws) or ws[s]://HOST:PORT/ws.
    #[arg(long, value_name = "URL", default_value = "https://127.0.0.1:4433")]
    pub server: String,
    /// Transport: WebTransport or WebSocket.
    #[arg(long, value_enum, default_value_t = BotTransport::Wt)]
    pub transport: BotTransport,
    /// Number of bots (players and spectators).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub players: u32,
    /// Game the bots play.
    #[arg(long, value_enum, default_value_t = BotGame::Arena)]
    pub game: BotGame,
    /// Length of the measure window, in seconds (after the ramp and warm-up).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub duration: u64,
    /// Bots connected per second while ramping up.
    #[arg(long, value_name = "PER_SEC", default_value_t = 50)]
    pub ramp: u32,
    /// SHA-256 of the server's certificate, hex (as printed by `ludus cert`
    /// and `ludus serve`); required for WebTransport and wss.
    #[arg(long, value_name = "HEX", value_parser = parse_sha256_hex)]
    pub cert_hash: Option<String>,
    /// Write the JSON report to FILE as well as to stdout.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a plot of latency percentiles and connected bots to FILE (.svg).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Fail (exit 1) when errors per bot exceed this fraction, 0..=1.
    #[arg(long, value_name = "F", value_parser = parse_fraction)]
    pub max_error_rate: Option<f64>,
    /// Share of the bots that spectate running rooms instead of playing.
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_fraction)]
    pub spectators: f64,
    /// Share of the players that drop their transport (no Bye) once into
    /// every game and resume their session and seat with the resume token.
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_fraction)]
    pub reconnect: f64,
    /// Tetris pieces each bot places per second.
    #[arg(long, value_name = "PPS", default_value_t = 2.0)]
    pub pps: f64,
    /// One Tetris placement in N is a random blunder (0: never).
    #[arg(long, value_name = "N", default_value_t = 6)]
    pub blunder_every: u32,
    /// Event-loop threads driving the bots.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,
    /// Cores to pin the bot threads to (thread i on the i-th, cyclically).
    #[arg(long, value_name = "LIST")]
    pub cores: Option<CoreList>,
    /// Seconds between the end of the ramp and the measure window.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub warmup: f64,
    /// Between two Pings of one bot, milliseconds (the RTT figures).
    #[arg(long, value_name = "MS", default_value_t = 1_000)]
    pub ping_ms: u64,
    /// Process id of a server on this machine: its CPU time over the
    /// window goes in the report (server_cpu_s, server_cpu_us_per_state).
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BotTransport {
    /// WebTransport over QUIC.
    Wt,
    /// WebSocket over TLS.
    Ws,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BotGame {
    Tetris,
    Arena,
}

/// Arguments of `ludus games`, kept free-form until its subcommands exist.
#[derive(Debug, Args)]
pub struct GamesArgs {
    /// Reserved for subcommands such as list, publish and promote.
    #[arg(value_name = "ARGS")]
    pub args: Vec<String>,
}

fn parse_sha256_hex(text: &str) -> Result<String, String> {
    const SHA256_HEX_LEN: usize = 64;
    let clean: String = text.chars().filter(|c| *c != ':').collect();
    if clean.len() == SHA256_HEX_LEN && clean.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(clean.to_ascii_lowercase())
    } else {
        Err(format!("expected {SHA256_HEX_LEN} hex digits (colons allowed)"))
    }
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(fraction) if (0.0..=1.0).contains(&fraction) => Ok(fraction),
        _ => Err("expected a number from 0 to 1".to_owned()),
    }
}

/// Parses this process's arguments and runs the subcommand. `main` returns
/// its result.
pub fn run() -> ExitCode {
    // Usage errors exit here with status 2; --help and --version with 0.
    execute(Cli::parse())
}

/// Runs an already parsed command line.
pub fn execute(cli: Cli) -> ExitCode {
    let global = &cli.global;
    match &cli.command {
        Command::Serve => serve(global),
        Command::Config => print_config(global),
        Command::Cert(args) => cert(global, args),
        Command::Bots(args) => bots::run(args),
        Command::Migrate => migrate(global),
        Command::Replay { room } => replay::run(global, room),
        Command::Games(_) => {
            not_yet("games", "list, publish and promote game artifacts per environment")
        }
    }
}

fn serve(global: &GlobalArgs) -> ExitCode {
    let config = match global.load_config() {
        Ok(config) => config,
        Err(error) => return fail(error, EXIT_USAGE),
    };
    if let Err(error) = logging::init(&config.log.level, config.log.format) {
        eprintln!("ludus: logging is off: {error}");
    }
    tracing::info!("effective configuration:\n{config}");
    match crate::reactor::server::serve(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "ludus serve failed");
            eprintln!("ludus serve: {error}");
            ExitCode::from(EXIT_RUNTIME_FAILURE)
        }
    }
}

/// Applies the migrations the configured database lacks, printing one line
/// per migration applied and the final version.
fn migrate(global: &GlobalArgs) -> ExitCode {
    use crate::services::store::{migrate, MIGRATIONS};

    let config = match global.load_config() {
        Ok(config) => config,
        Err(error) => return fail(error, EXIT_USAGE),
    };
    match &config.services.database_url {
        Some(url) => println!("database: postgres {url}"),
        None => println!("database: sqlite {}", migrate::sqlite_path(&config).display()),
    }
    let mut store = match migrate::open_store(&config) {
        Ok(store) => store,
        Err(error) => return fail(error, EXIT_RUNTIME_FAILURE),
    };
    let now_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX));
    match store.migrate(now_ms) {
        Ok(status) => {
            for version in &status.applied_now {
                let name = MIGRATIONS
                    .iter()
                    .find(|migration| migration.version == *version)
                    .map_or("?", |migration| migration.name);
                println!("applied {version:04}_{name}");
            }
            if status.applied_now.is_empty() {
                println!("nothing to apply");
            }
            println!(
                "schema version {} (this ludus: {})",
                status.database_version, status.binary_version
            );
            ExitCode::SUCCESS
        }
        Err(error) => fail(error, EXIT_RUNTIME_FAILURE),
    }
}

fn print_config(global: &GlobalArgs) -> ExitCode {
    match global.load_config() {
        Ok(config) => {
            print!("{}", config.to_toml_redacted());
            ExitCode::SUCCESS
        }
        Err(error) => fail(error, EXIT_USAGE),
    }
}

fn cert(global: &GlobalArgs, args: &CertArgs) -> ExitCode {
    let config = match global.load_config() {
        Ok(config) => config,
        Err(error) => return fail(error, EXIT_USAGE),
    };
    let out = args.out.clone().unwrap_or_else(|| config.data_dir.join("tls"));
    let cert = match devcert::generate(&args.san, args.days) {
        Ok(cert) => cert,
        Err(error @ (DevCertError::Validity(_) | DevCertError::SubjectAltName { .. })) => {
            return fail(error, EXIT_USAGE)
        }
        Err(error) => return fail(error, EXIT_RUNTIME_FAILURE),
    };
    match cert.write(&out) {
        Ok(paths) => {
            print_cert_summary(&cert, &paths, args);
            ExitCode::SUCCESS
        }
        Err(error) => fail(error, EXIT_RUNTIME_FAILURE),
    }
}

fn print_cert_summary(cert: &DevCert, paths: &CertPaths, args: &CertArgs) {
    let names: Vec<&str> = devcert::DEFAULT_SUBJECT_ALT_NAMES
        .iter()
        .copied()
        .chain(args.san.iter().map(String::as_str))
        .collect();
    println!("Wrote a self-signed ECDSA P-256 certificate for {}", names.join(", "));
    println!("  certificate: {}", paths.cert.display());
    println!("  private key: {}", paths.key.display());
    println!(
        "  valid:       {} to {} ({} days)",
        Utc(cert.not_before),
        Utc(cert.not_after),
        args.days
    );
    println!("SHA-256 of the certificate (WebTransport serverCertificateHashes):");
    println!("  {}", cert.cert_sha256_hex());
    println!("SHA-256 of the public key, base64 (Chromium --ignore-certificate-errors-spki-list):");
    println!("  {}", cert.spki_sha256_base64());
}

/// A time printed to the second, in UTC.
struct Utc(SystemTime);

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = time::OffsetDateTime::from(self.0);
        write!(
            f,
            "{} {:02}:{:02}:{:02} UTC",
            time.date(),
            time.hour(),
            time.minute(),
            time.second()
        )
    }
}

fn not_yet(command: &str, plan: &str) -> ExitCode {
    eprintln!("ludus {command}: not yet: {plan}");
    ExitCode::from(EXIT_USAGE)
}

fn fail(error: impl fmt::Display, status: u8) -> ExitCode {
    eprintln!("ludus: {error}");
    ExitCode::from(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli =
            Cli::try_parse_from(["ludus", "config", "--shards", "3", "--cores", "0-2"]).unwrap();
        let overrides = cli.global.overrides();
        assert_eq!(overrides.shards, Some(3));
        assert_eq!(overrides.cores.unwrap().ids(), &[0, 1, 2]);
    }

    #[test]
    fn bot_flags_parse() {
        let cli = Cli::try_parse_from([
            "ludus",
            "bots",
            "--server",
            "https://h:4433",
            "--transport",
            "ws",
            "--players",
            "5",
            "--game",
            "tetris",
            "--duration",
            "10",
            "--ramp",
            "2",
            "--cert-hash",
            &"ab".repeat(32),
            "--json",
            "out.json",
            "--plot",
            "out.svg",
            "--max-error-rate",
            "0.01",
        ])
        .unwrap();
        let Command::Bots(bots) = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(bots.transport, BotTransport::Ws);
        assert_eq!(bots.game, BotGame::Tetris);
        assert_eq!(bots.max_error_rate, Some(0.01));
        assert!(Cli::try_parse_from(["ludus", "bots", "--max-error-rate", "2"]).is_err());
        assert!(Cli::try_parse_from(["ludus", "bots", "--cert-hash", "abc"]).is_err());
    }

    #[test]
    fn cert_days_are_bounded() {
        assert!(Cli::try_parse_from(["ludus", "cert", "--days", "14"]).is_ok());
        assert!(Cli::try_parse_from(["ludus", "cert", "--days", "15"]).is_err());
        assert!(Cli::try_parse_from(["ludus", "cert", "--days", "0"]).is_err());
    }
}
