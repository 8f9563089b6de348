//! Configuration: the one [`Config`] every part of Ludus reads.
//!
//! Four layers, each overriding the one before:
//! 1. embedded defaults (so `ludus serve` runs with no configuration at all);
//! 2. a TOML file: `--config PATH`, else `./ludus.toml` when it exists;
//! 3. environment variables (see [`ENV_VARS`]);
//! 4. command-line flags ([`Overrides`]).
//!
//! Loading reads its inputs from a [`Sources`] value rather than from the
//! process, so tests never touch the real environment. Every table of the
//! file rejects unknown keys, and every bad value is a [`ConfigError`] naming
//! the key, variable or flag and the value; loading never panics.
//!
//! Environment variables:
//!
//! | variable | sets |
//! | --- | --- |
//! | `LUDUS_UDP`, `LUDUS_HTTPS`, `LUDUS_HTTP` | `listen.udp`, `listen.https`, `listen.http` |
//! | `PORT` | the port of `listen.https`, keeping its IP (`LUDUS_HTTPS` wins over it) |
//! | `LUDUS_DATA_DIR` | `data_dir` |
//! | `LUDUS_SHARDS`, `LUDUS_CORES` | `shards.count`, `shards.cores` |
//! | `DATABASE_URL`, `NATS_URL`, `JWT_SECRET`, `GAME_REGISTRY_URL` | `services.*` |
//! | `GAMES_ENV` (else `NODE_ENV`) | `services.games_env` |
//! | `S3_ENDPOINT`, `S3_BUCKET`, `S3_REGION`, `S3_ACCESS_KEY`, `S3_SECRET_KEY` | `services.s3.*` |
//! | `RUST_LOG` | `log.level`; full `EnvFilter` directives, e.g. `info,ludus::reactor=debug` |
//! | `LUDUS_LOG_FORMAT` | `log.format` |
//!
//! An empty variable counts as unset, because container tooling often
//! declares variables it leaves blank.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::logging::{self, LogFormat};

/// The file read when no `--config` is given, relative to the working directory.
pub const DEFAULT_CONFIG_PATH: &str = "ludus.toml";
/// Upper bound on shards; also the bound on core ids (ids are `0..SHARDS_MAX`).
pub const SHARDS_MAX: usize = 1024;
/// What [`Config::redacted`] puts in place of a secret.
pub const REDACTED: &str = "***";

const DEFAULT_UDP: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 4433));
const DEFAULT_HTTPS: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 8443));
const DEFAULT_HTTP: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
const DEFAULT_DATA_DIR: &str = "./data";
const DEFAULT_S3_REGION: &str = "us-east-1";
const DEFAULT_GAMES_ENV: &str = "development";
const DEFAULT_LOG_LEVEL: &str = "info";

/// Every environment variable Ludus reads; [`Sources::from_process`] reads
/// exactly these.
pub const ENV_VARS: &[&str] = &[
    "PORT",
    "DATABASE_URL",
    "JWT_SECRET",
    "GAME_REGISTRY_URL",
    "NATS_URL",
    "S3_ENDPOINT",
    "S3_BUCKET",
    "S3_REGION",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "GAMES_ENV",
    "NODE_ENV",
    "LUDUS_SHARDS",
    "LUDUS_CORES",
    "LUDUS_DATA_DIR",
    "LUDUS_UDP",
    "LUDUS_HTTPS",
    "LUDUS_HTTP",
    "LUDUS_LOG_FORMAT",
    "RUST_LOG",
];

/// The effective configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    /// Root of everything Ludus keeps on disk: the embedded database and event
    /// log, local artifacts, dev certificates (`<data_dir>/tls`).
    pub data_dir: PathBuf,
    /// Addresses to listen on.
    pub listen: Listen,
    /// How many shard threads run and which cores they are pinned to.
    pub shards: Shards,
    /// External services; each unset one falls back to an embedded default.
    pub services: Services,
    /// Logging.
    pub log: Log,
    /// TLS certificate for production.
    pub tls: Tls,
    /// The game server's own limits and policies.
    pub serve: Serve,
    /// The REST API and the workers behind it.
    pub api: Api,
}

/// `[listen]`: the sockets the shards bind (each shard with SO_REUSEPORT).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listen {
    /// QUIC: HTTP/3 and WebTransport.
    pub udp: SocketAddr,
    /// TLS over TCP: HTTPS and WebSocket for browsers without WebTransport.
    pub https: SocketAddr,
    /// Plain HTTP and WebSocket, for development only.
    pub http: SocketAddr,
    /// Allows `http` on a non-loopback address, e.g. behind a proxy that
    /// terminates TLS. Off by default because plain HTTP exposes tokens.
    pub allow_public_http: bool,
}

/// `[shards]`, resolved: `count` is always known here.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Shards {
    /// Number of shard threads. Defaults to the cores available to the
    /// process, or to the length of `cores` when only that is given.
    pub count: usize,
    /// Cores to pin the shards to, shard `i` on `cores[i]`, written like
    /// `"0-3"` or `"0,2,4-5"`. Unset: no pinning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cores: Option<CoreList>,
}

/// Game events are kept this long by default (the history design's 90 days).
pub const EVENTS_MAX_AGE_DAYS_DEFAULT: u32 = 90;
/// Ten years: longer is a typo, not a policy.
pub const EVENTS_MAX_AGE_DAYS_MAX: u32 = 3_650;

/// `[services]`: where state lives. Unset means the embedded adapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Services {
    /// Postgres URL. Unset: embedded SQLite under `data_dir`.
    pub database_url: Option<SecretUrl>,
    /// NATS URL(s), comma-separated. Unset: embedded event log under `data_dir`.
    pub nats_url: Option<SecretUrl>,
    /// How long game events are kept (JetStream's max age, the embedded
    /// log's retention), in days.
    pub events_max_age_days: u32,
    /// Key that signs session tokens. Unset: a random key per process.
    pub jwt_secret: Option<Secret>,
    /// Where game artifacts are announced. Unset: local artifacts only.
    pub game_registry_url: Option<String>,
    /// Which per-environment game manifest to serve.
    pub games_env: String,
    /// Object storage for game artifacts.
    pub s3: S3,
}

/// `[services.s3]`: object storage. Unset `bucket`: a local directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3 {
    /// Endpoint URL, for S3-compatible stores (MinIO, R2); unset: AWS.
    pub endpoint: Option<String>,
    /// Bucket holding game artifacts.
    pub bucket: Option<String>,
    /// Region used to sign requests.
    pub region: String,
    /// Access key id.
    pub access_key: Option<Secret>,
    /// Secret access key.
    pub secret_key: Option<Secret>,
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// `EnvFilter` directives, e.g. `info` or `info,ludus::reactor=debug`.
    /// `RUST_LOG` overrides it; `--log-level` overrides both.
    pub level: String,
    /// `human` or `json`.
    pub format: LogFormat,
}

/// `[serve]`: limits and policies of `ludus serve`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Serve {
    /// How long a shutdown (SIGINT/SIGTERM) waits for sessions and rooms
    /// to finish before closing what is left, milliseconds.
    pub shutdown_grace_ms: u64,
    /// Validate client addresses with a stateless retry before accepting a
    /// QUIC connection (one extra round trip; protects against spoofing).
    pub quic_retry: bool,
    /// QUIC connections one shard holds.
    pub max_quic_connections: usize,
    /// TCP connections one shard holds.
    pub max_tcp_connections: usize,
    /// TCP connections one client address may hold on one shard.
    pub max_tcp_connections_per_ip: usize,
    /// Origins allowed to open WebTransport and WebSocket sessions, exactly as
    /// browsers send them ("https://play.example.com"); "*" allows any.
    /// Empty: local development pages only (http(s)://localhost,
    /// 127.0.0.1 or [::1] on any port). Clients that send no Origin (native
    /// clients, bots) are always allowed.
    pub allowed_origins: Vec<String>,
}

impl Default for Serve {
    fn default() -> Self {
        Serve {
            shutdown_grace_ms: 10_000,
            quic_retry: true,
            max_quic_connections: 20_000,
            max_tcp_connections: 20_000,
            max_tcp_connections_per_ip: 4_096,
            allowed_origins: Vec::new(),
        }
    }
}

/// `[api]`: the REST API under /api and the storage workers behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Api {
    /// Threads that run storage jobs (each holds one database connection
    /// and hashes passwords).
    pub workers: usize,
    /// Jobs waiting for a worker; past it requests get 503 + Retry-After.
    pub queue: usize,
    /// A job not started within this is answered 503 unstarted.
    pub job_deadline_ms: u64,
    /// Requests per second one client address may make (token bucket);
    /// past it: 429 with Retry-After. Counted per shard.
    pub ip_rate_per_s: u32,
    pub ip_burst: u32,
    /// The same per signed-in account.
    pub account_rate_per_s: u32,
    pub account_burst: u32,
    /// Register, login, guest and refresh: the password-guessing surface,
    /// per client address, per minute.
    pub auth_per_minute: u32,
    /// Origins whose pages may call the API (CORS), as browsers send them;
    /// "*" allows any. Empty: local development pages only, as for sessions.
    pub cors_origins: Vec<String>,
    /// argon2id cost: memory in KiB and passes (parallelism is 1).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
}

impl Default for Api {
    fn default() -> Self {
        Api {
            workers: 4,
            queue: 1_024,
            job_deadline_ms: 5_000,
            ip_rate_per_s: 50,
            ip_burst: 100,
            account_rate_per_s: 20,
            account_burst: 40,
            auth_per_minute: 30,
            cors_origins: Vec::new(),
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
        }
    }
}

/// `[tls]`: PEM files for production. Unset: a dev certificate is used.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    /// Certificate chain, PEM.
    pub cert_path: Option<PathBuf>,
    /// Private key, PEM.
    pub key_path: Option<PathBuf>,
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            udp: DEFAULT_UDP,
            https: DEFAULT_HTTPS,
            http: DEFAULT_HTTP,
            allow_public_http: false,
        }
    }
}

impl Services {
    /// How long game events are kept.
    pub fn events_max_age(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.events_max_age_days) * 24 * 3_600)
    }
}

impl Default for Services {
    fn default() -> Self {
        Services {
            database_url: None,
            nats_url: None,
            events_max_age_days: EVENTS_MAX_AGE_DAYS_DEFAULT,
            jwt_secret: None,
            game_registry_url: None,
            games_env: DEFAULT_GAMES_ENV.to_owned(),
            s3: S3::default(),
        }
    }
}

impl Default for S3 {
    fn default() -> Self {
        S3 {
            endpoint: None,
            bucket: None,
            region: DEFAULT_S3_REGION.to_owned(),
            access_key: None,
            secret_key: None,
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log { level: DEFAULT_LOG_LEVEL.to_owned(), format: LogFormat::Human }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {}: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("invalid {name} = {value:?}: {reason}")]
    Invalid {
        /// The file key, environment variable or flag that carried the value.
        name: String,
        value: String,
        reason: String,
    },
    #[error("environment variable {name} is not valid UTF-8")]
    NotUnicode { name: &'static str },
    #[error(
        "listen.http = {addr} is not a loopback address: plain HTTP sends session tokens \
         unencrypted and is meant for local development; use listen.https, or set \
         listen.allow_public_http = true when a proxy in front terminates TLS"
    )]
    PublicHttp { addr: SocketAddr },
    #[error(
        "shards.count = {count} but shards.cores = \"{cores}\" names {} cores; \
         give one core per shard, or leave the count out",
        cores.len()
    )]
    ShardsMismatch { count: usize, cores: CoreList },
    #[error("tls.cert_path and tls.key_path must be set together; only {given} is set")]
    TlsHalfSet { given: &'static str },
}

impl ConfigError {
    fn invalid(name: &str, value: impl fmt::Display, reason: impl fmt::Display) -> Self {
        ConfigError::Invalid {
            name: name.to_owned(),
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Which TOML file to read.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum FileSource {
    /// No file.
    #[default]
    None,
    /// Read it when it exists (the default `./ludus.toml`).
    IfExists(PathBuf),
    /// Read it; a missing file is an error (`--config PATH`).
    Required(PathBuf),
}

/// Values given on the command line; `None` leaves the lower layers alone.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    pub udp: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub shards: Option<usize>,
    pub cores: Option<CoreList>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
}

/// Everything a configuration is built from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sources {
    pub file: FileSource,
    /// Environment variables by name; only the names in [`ENV_VARS`] matter.
    pub env: BTreeMap<String, String>,
    pub flags: Overrides,
}

impl Sources {
    /// Sources from this process: `config_path` (from `--config`) or else
    /// `./ludus.toml` if present, and the variables named in [`ENV_VARS`].
    pub fn from_process(
        config_path: Option<PathBuf>,
        flags: Overrides,
    ) -> Result<Sources, ConfigError> {
        let file = match config_path {
            Some(path) => FileSource::Required(path),
            None => FileSource::IfExists(PathBuf::from(DEFAULT_CONFIG_PATH)),
        };
        let mut env = BTreeMap::new();
        for &name in ENV_VARS {
            if let Some(value) = std::env::var_os(name) {
                let value = value.into_string().map_err(|_| ConfigError::NotUnicode { name })?;
                env.insert(name.to_owned(), value);
            }
        }
        Ok(Sources { file, env, flags })
    }
}

impl Config {
    /// Builds the configuration: defaults < file < environment < flags.
    pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
        let mut draft = Draft::read(&sources.file)?;
        draft.apply_env(&sources.env)?;
        draft.apply_flags(&sources.flags)?;
        draft.finish()
    }

    /// A copy with every secret replaced: the JWT secret and S3 keys by
    /// [`REDACTED`], passwords inside service URLs by [`REDACTED`].
    pub fn redacted(&self) -> Config {
        let mut copy = self.clone();
        let services = &mut copy.services;
        services.database_url = services.database_url.as_ref().map(SecretUrl::redacted);
        services.nats_url = services.nats_url.as_ref().map(SecretUrl::redacted);
        services.jwt_secret = services.jwt_secret.as_ref().map(Secret::redacted);
        services.s3.access_key = services.s3.access_key.as_ref().map(Secret::redacted);
        services.s3.secret_key = services.s3.secret_key.as_ref().map(Secret::redacted);
        copy
    }

    /// The whole effective configuration as TOML, secrets redacted. Without
    /// secrets the text is itself a valid config file for the same values.
    pub fn to_toml_redacted(&self) -> String {
        // Serializing our own types cannot fail (no maps, no non-string
        // keys), but a message beats a panic if a later field breaks that.
        match toml::to_string(&self.redacted()) {
            Ok(body) => format!("{TOML_HEADER}{body}"),
            Err(error) => format!("# cannot render the configuration: {error}\n"),
        }
    }
}

const TOML_HEADER: &str =
    "# Effective ludus configuration. Secrets show as \"***\"; unset optional keys are omitted.\n";

/// Renders [`Config::to_toml_redacted`], so logging a config never leaks.
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_toml_redacted())
    }
}

/// The file's shape, also the working state while layers apply. It differs
/// from [`Config`] only in the shard count, whose absence matters: a core
/// list alone decides it.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Draft {
    data_dir: PathBuf,
    listen: Listen,
    shards: ShardsDraft,
    services: Services,
    log: Log,
    tls: Tls,
    serve: Serve,
    api: Api,
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ShardsDraft {
    count: Option<usize>,
    cores: Option<CoreList>,
}

impl Default for Draft {
    fn default() -> Self {
        Draft {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            listen: Listen::default(),
            shards: ShardsDraft::default(),
            services: Services::default(),
            log: Log::default(),
            tls: Tls::default(),
            serve: Serve::default(),
            api: Api::default(),
        }
    }
}

impl Draft {
    fn read(file: &FileSource) -> Result<Draft, ConfigError> {
        let (path, required) = match file {
            FileSource::None => return Ok(Draft::default()),
            FileSource::IfExists(path) => (path, false),
            FileSource::Required(path) => (path, true),
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if !required && error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Draft::default());
            }
            Err(source) => return Err(ConfigError::Read { path: path.clone(), source }),
        };
        Draft::parse(path, &text)
    }

    fn parse(path: &Path, text: &str) -> Result<Draft, ConfigError> {
        let draft: Draft = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        check_log_filter("log.level", &draft.log.level)?;
        Ok(draft)
    }

    fn apply_env(&mut self, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        let lookup = Env(env);
        self.apply_env_listen(&lookup)?;
        if let Some(dir) = lookup.get("LUDUS_DATA_DIR") {
            self.data_dir = PathBuf::from(dir);
        }
        if let Some(count) = lookup.parse("LUDUS_SHARDS")? {
            self.shards.count = Some(count);
        }
        if let Some(cores) = lookup.parse("LUDUS_CORES")? {
            self.shards.cores = Some(cores);
        }
        self.apply_env_services(&lookup);
        if let Some(level) = lookup.get("RUST_LOG") {
            check_log_filter("RUST_LOG", level)?;
            self.log.level = level.to_owned();
        }
        if let Some(format) = lookup.parse("LUDUS_LOG_FORMAT")? {
            self.log.format = format;
        }
        Ok(())
    }

    fn apply_env_listen(&mut self, lookup: &Env<'_>) -> Result<(), ConfigError> {
        if let Some(addr) = lookup.parse("LUDUS_UDP")? {
            self.listen.udp = addr;
        }
        // PORT is the platform convention (Heroku, Cloud Run) for "the one
        // TCP port you get"; the more specific LUDUS_HTTPS wins over it.
        if let Some(port) = lookup.parse::<u16>("PORT")? {
            self.listen.https.set_port(port);
        }
        if let Some(addr) = lookup.parse("LUDUS_HTTPS")? {
            self.listen.https = addr;
        }
        if let Some(addr) = lookup.parse("LUDUS_HTTP")? {
            self.listen.http = addr;
        }
        Ok(())
    }

    fn apply_env_services(&mut self, lookup: &Env<'_>) {
        let services = &mut self.services;
        let set_string = |slot: &mut Option<String>, name| {
            if let Some(value) = lookup.get(name) {
                *slot = Some(value.to_owned());
            }
        };
        set_string(&mut services.game_registry_url, "GAME_REGISTRY_URL");
        set_string(&mut services.s3.endpoint, "S3_ENDPOINT");
        set_string(&mut services.s3.bucket, "S3_BUCKET");
        if let Some(url) = lookup.get("DATABASE_URL") {
            services.database_url = Some(SecretUrl::new(url));
        }
        if let Some(url) = lookup.get("NATS_URL") {
            services.nats_url = Some(SecretUrl::new(url));
        }
        if let Some(secret) = lookup.get("JWT_SECRET") {
            services.jwt_secret = Some(Secret::new(secret));
        }
        if let Some(key) = lookup.get("S3_ACCESS_KEY") {
            services.s3.access_key = Some(Secret::new(key));
        }
        if let Some(key) = lookup.get("S3_SECRET_KEY") {
            services.s3.secret_key = Some(Secret::new(key));
        }
        if let Some(region) = lookup.get("S3_REGION") {
            services.s3.region = region.to_owned();
        }
        // NODE_ENV is honoured because the JavaScript tooling around game
        // builds already sets it; GAMES_ENV is the explicit name.
        if let Some(games_env) = lookup.get("GAMES_ENV").or_else(|| lookup.get("NODE_ENV")) {
            services.games_env = games_env.to_owned();
        }
    }

    fn apply_flags(&mut self, flags: &Overrides) -> Result<(), ConfigError> {
        let listen = &mut self.listen;
        listen.udp = flags.udp.unwrap_or(listen.udp);
        listen.https = flags.https.unwrap_or(listen.https);
        listen.http = flags.http.unwrap_or(listen.http);
        if let Some(dir) = &flags.data_dir {
            self.data_dir = dir.clone();
        }
        if flags.shards.is_some() {
            self.shards.count = flags.shards;
        }
        if flags.cores.is_some() {
            self.shards.cores = flags.cores.clone();
        }
        if let Some(format) = flags.log_format {
            self.log.format = format;
        }
        if let Some(level) = &flags.log_level {
            check_log_filter("--log-level", level)?;
            self.log.level = level.clone();
        }
        Ok(())
    }

    /// Resolves what depends on more than one layer and checks the whole.
    fn finish(self) -> Result<Config, ConfigError> {
        if !self.listen.allow_public_http && !self.listen.http.ip().is_loopback() {
            return Err(ConfigError::PublicHttp { addr: self.listen.http });
        }
        let days = self.services.events_max_age_days;
        if !(1..=EVENTS_MAX_AGE_DAYS_MAX).contains(&days) {
            let reason = format!("need 1..={EVENTS_MAX_AGE_DAYS_MAX} days");
            return Err(ConfigError::invalid("services.events_max_age_days", days, reason));
        }
        match (&self.tls.cert_path, &self.tls.key_path) {
            (Some(_), None) => return Err(ConfigError::TlsHalfSet { given: "cert_path" }),
            (None, Some(_)) => return Err(ConfigError::TlsHalfSet { given: "key_path" }),
            _ => {}
        }
        Ok(Config {
            data_dir: self.data_dir,
            listen: self.listen,
            shards: resolve_shards(self.shards)?,
            services: self.services,
            log: self.log,
            tls: self.tls,
            serve: self.serve,
            api: self.api,
        })
    }
}

fn resolve_shards(draft: ShardsDraft) -> Result<Shards, ConfigError> {
    let count = match (draft.count, &draft.cores) {
        (Some(count), Some(cores)) if count != cores.len() => {
            return Err(ConfigError::ShardsMismatch { count, cores: cores.clone() })
        }
        (Some(count), _) => count,
        (None, Some(cores)) => cores.len(),
        (None, None) => available_cores(),
    };
    if count == 0 || count > SHARDS_MAX {
        let reason = format!("need 1..={SHARDS_MAX} shards");
        return Err(ConfigError::invalid("shards.count", count, reason));
    }
    Ok(Shards { count, cores: draft.cores })
}

/// One shard per core the process may use; 1 when the OS will not say.
fn available_cores() -> usize {
    std::thread::available_parallelism().map(|cores| cores.get()).unwrap_or(1).min(SHARDS_MAX)
}

fn check_log_filter(name: &str, filter: &str) -> Result<(), ConfigError> {
    logging::check_filter(filter).map_err(|error| ConfigError::invalid(name, filter, error))
}

/// Environment lookups that name the variable in every error.
struct Env<'a>(&'a BTreeMap<String, String>);

impl Env<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|value| !value.is_empty())
    }

    fn parse<T>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        text.trim().parse().map(Some).map_err(|error| ConfigError::invalid(name, text, error))
    }
}

/// A value that must never reach a log: `Debug` and `Serialize` print
/// [`REDACTED`]; only [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn redacted(&self) -> Self {
        Secret(REDACTED.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

/// A service URL that may carry credentials (`postgres://user:pass@host`).
/// `Display`, `Debug` and `Serialize` show it with the password redacted.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> Self {
        SecretUrl(url.into())
    }

    /// The URL with its credentials, for the one place that connects.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn redacted(&self) -> Self {
        SecretUrl(redact_url_list(&self.0))
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url_list(&self.0))
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({self})")
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Redacts each URL of a comma-separated list (NATS takes several servers).
fn redact_url_list(urls: &str) -> String {
    urls.split(',').map(redact_url).collect::<Vec<_>>().join(",")
}

/// `scheme://user:pass@host/db?password=x` -> `scheme://user:***@host/db?password=***`.
/// A bare `scheme://token@host` is NATS token auth, so the token goes too.
/// Text that is not a URL is redacted whole: we cannot tell where a secret
/// would sit in it.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return REDACTED.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:{REDACTED}@{host}"),
            None => format!("{REDACTED}@{host}"),
        },
        None => authority.to_owned(),
    };
    format!("{scheme}://{authority}{}", redact_query_password(tail))
}

fn redact_query_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                format!("{key}={REDACTED}")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

/// An ordered list of distinct CPU core ids, written `"0-3"`, `"0,2"`,
/// `"0-1,4"`. Order is kept: shard `i` is pinned to the `i`-th core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreList(Vec<usize>);

/// Why a core list does not parse.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CoreListError {
    #[error("empty core list")]
    Empty,
    #[error("{0:?} is not a core id or a range like 0-3")]
    NotANumber(String),
    #[error("range {start}-{end} runs backwards")]
    Backwards { start: usize, end: usize },
    #[error("core {0} is listed twice")]
    Duplicate(usize),
    #[error("core {0} is out of range (ids go up to {max})", max = SHARDS_MAX - 1)]
    OutOfRange(usize),
}

impl CoreList {
    /// The core ids, in shard order.
    pub fn ids(&self) -> &[usize] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for CoreList {
    type Err = CoreListError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim().is_empty() {
            return Err(CoreListError::Empty);
        }
        let mut ids = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for item in text.split(',') {
            let (start, end) = parse_core_range(item.trim())?;
            for id in start..=end {
                if !seen.insert(id) {
                    return Err(CoreListError::Duplicate(id));
                }
                ids.push(id);
            }
        }
        Ok(CoreList(ids))
    }
}

/// `"3"` -> (3, 3); `"0-3"` -> (0, 3); both ends checked against the bound
/// before any expansion, so `"0-99999999999"` costs nothing.
fn parse_core_range(item: &str) -> Result<(usize, usize), CoreListError> {
    let parse_id = |text: &str| -> Result<usize, CoreListError> {
        let id: usize =
            text.trim().parse().map_err(|_| CoreListError::NotANumber(item.to_owned()))?;
        if id >= SHARDS_MAX {
            return Err(CoreListError::OutOfRange(id));
        }
        Ok(id)
    };
    let (start, end) = match item.split_once('-') {
        Some((start, end)) => (parse_id(start)?, parse_id(end)?),
        None => {
            let id = parse_id(item)?;
            (id, id)
        }
    };
    if start > end {
        return Err(CoreListError::Backwards { start, end });
    }
    Ok((start, end))
}

/// Writes runs of consecutive ids as ranges, so parsing the text gives the
/// same list back.
impl fmt::Display for CoreList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0.as_slice();
        let mut separator = "";
        while let Some(&start) = rest.first() {
            let run =
                rest.iter().enumerate().take_while(|&(offset, &id)| id == start + offset).count();
            match run {
                1 => write!(f, "{separator}{start}")?,
                _ => write!(f, "{separator}{start}-{}", start + run - 1)?,
            }
            separator = ",";
            rest = &rest[run..];
        }
        Ok(())
    }
}

impl Serialize for CoreList {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CoreList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sources with an optional file body (written to a temp dir), the given
    /// variables and flags. The temp dir lives as long as the sources.
    struct Fixture {
        sources: Sources,
        _dir: tempfile::TempDir,
    }

    fn fixture(file: Option<&str>, env: &[(&str, &str)], flags: Overrides) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let file = match file {
            Some(body) => {
                let path = dir.path().join("ludus.toml");
                std::fs::write(&path, body).unwrap();
                FileSource::Required(path)
            }
            None => FileSource::None,
        };
        let env = env.iter().map(|&(name, value)| (name.to_owned(), value.to_owned())).collect();
        Fixture { sources: Sources { file, env, flags }, _dir: dir }
    }

    fn load(
        file: Option<&str>,
        env: &[(&str, &str)],
        flags: Overrides,
    ) -> Result<Config, ConfigError> {
        Config::load(&fixture(file, env, flags).sources)
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn defaults_need_no_configuration() {
        let config = load(None, &[], Overrides::default()).unwrap();
        assert_eq!(config.listen.udp, addr("0.0.0.0:4433"));
        assert_eq!(config.listen.https, addr("0.0.0.0:8443"));
        assert_eq!(config.listen.http, addr("127.0.0.1:8080"));
        assert!(!config.listen.allow_public_http);
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.shards.count, available_cores());
        assert_eq!(config.shards.cores, None);
        assert_eq!(config.services.database_url, None);
        assert_eq!(config.services.games_env, "development");
        assert_eq!(config.services.s3.region, "us-east-1");
        assert_eq!(config.log.level, "info");
        assert_eq!(config.log.format, LogFormat::Human);
        assert_eq!(config.tls, Tls::default());
    }

    #[test]
    fn missing_default_file_is_fine_but_missing_explicit_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.toml");
        let optional = Sources { file: FileSource::IfExists(path.clone()), ..Sources::default() };
        assert!(Config::load(&optional).is_ok());
        let required = Sources { file: FileSource::Required(path), ..Sources::default() };
        let error = Config::load(&required).unwrap_err();
        assert!(matches!(error, ConfigError::Read { .. }), "{error}");
        assert!(error.to_string().contains("absent.toml"), "{error}");
    }

    const LAYERED_FILE: &str = r#"
        data_dir = "/file/data"
        [listen]
        udp = "10.0.0.1:1000"
        https = "10.0.0.1:2000"
        [shards]
        count = 3
        [log]
        level = "warn"
        format = "json"
    "#;

    #[test]
    fn file_overrides_defaults() {
        let config = load(Some(LAYERED_FILE), &[], Overrides::default()).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/file/data"));
        assert_eq!(config.listen.udp, addr("10.0.0.1:1000"));
        assert_eq!(config.listen.http, addr("127.0.0.1:8080"));
        assert_eq!(config.shards.count, 3);
        assert_eq!(config.log.level, "warn");
        assert_eq!(config.log.format, LogFormat::Json);
    }

    #[test]
    fn env_overrides_file() {
        let env = [
            ("LUDUS_DATA_DIR", "/env/data"),
            ("LUDUS_UDP", "10.0.0.2:1001"),
            ("LUDUS_SHARDS", "2"),
            ("RUST_LOG", "debug,ludus=trace"),
            ("LUDUS_LOG_FORMAT", "human"),
        ];
        let config = load(Some(LAYERED_FILE), &env, Overrides::default()).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/env/data"));
        assert_eq!(config.listen.udp, addr("10.0.0.2:1001"));
        assert_eq!(config.listen.https, addr("10.0.0.1:2000"));
        assert_eq!(config.shards.count, 2);
        assert_eq!(config.log.level, "debug,ludus=trace");
        assert_eq!(config.log.format, LogFormat::Human);
    }

    #[test]
    fn flags_override_env_and_file() {
        let env = [
            ("LUDUS_DATA_DIR", "/env/data"),
            ("LUDUS_UDP", "10.0.0.2:1001"),
            ("LUDUS_SHARDS", "2"),
            ("RUST_LOG", "debug"),
        ];
        let flags = Overrides {
            data_dir: Some(PathBuf::from("/flag/data")),
            udp: Some(addr("10.0.0.3:1002")),
            shards: Some(1),
            log_level: Some("error".to_owned()),
            ..Overrides::default()
        };
        let config = load(Some(LAYERED_FILE), &env, flags).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/flag/data"));
        assert_eq!(config.listen.udp, addr("10.0.0.3:1002"));
        assert_eq!(config.shards.count, 1);
        assert_eq!(config.log.level, "error");
        assert_eq!(config.log.format, LogFormat::Json, "untouched by env and flags");
    }

    #[test]
    fn port_sets_only_the_https_port() {
        let config = load(Some(LAYERED_FILE), &[("PORT", "9999")], Overrides::default()).unwrap();
        assert_eq!(config.listen.https, addr("10.0.0.1:9999"));
        assert_eq!(config.listen.udp, addr("10.0.0.1:1000"));
        assert_eq!(config.listen.http, addr("127.0.0.1:8080"));
        let both = [("PORT", "9999"), ("LUDUS_HTTPS", "10.9.9.9:443")];
        let config = load(None, &both, Overrides::default()).unwrap();
        assert_eq!(config.listen.https, addr("10.9.9.9:443"), "the specific variable wins");
    }

    #[test]
    fn games_env_falls_back_to_node_env() {
        let games_env = |env: &[(&str, &str)]| {
            load(None, env, Overrides::default()).unwrap().services.games_env
        };
        assert_eq!(games_env(&[]), "development");
        assert_eq!(games_env(&[("NODE_ENV", "production")]), "production");
        assert_eq!(games_env(&[("GAMES_ENV", "staging"), ("NODE_ENV", "production")]), "staging");
        assert_eq!(games_env(&[("GAMES_ENV", ""), ("NODE_ENV", "production")]), "production");
    }

    #[test]
    fn service_variables_fill_services() {
        let env = [
            ("DATABASE_URL", "postgres://db/ludus"),
            ("NATS_URL", "nats://nats:4222"),
            ("JWT_SECRET", "jwt"),
            ("GAME_REGISTRY_URL", "https://registry"),
            ("S3_ENDPOINT", "http://minio:9000"),
            ("S3_BUCKET", "games"),
            ("S3_REGION", "eu-west-1"),
            ("S3_ACCESS_KEY", "access"),
            ("S3_SECRET_KEY", "secret"),
        ];
        let services = load(None, &env, Overrides::default()).unwrap().services;
        assert_eq!(services.database_url.unwrap().expose(), "postgres://db/ludus");
        assert_eq!(services.nats_url.unwrap().expose(), "nats://nats:4222");
        assert_eq!(services.jwt_secret.unwrap().expose(), "jwt");
        assert_eq!(services.game_registry_url.as_deref(), Some("https://registry"));
        assert_eq!(services.s3.endpoint.as_deref(), Some("http://minio:9000"));
        assert_eq!(services.s3.bucket.as_deref(), Some("games"));
        assert_eq!(services.s3.region, "eu-west-1");
        assert_eq!(services.s3.access_key.unwrap().expose(), "access");
        assert_eq!(services.s3.secret_key.unwrap().expose(), "secret");
    }

    #[test]
    fn unknown_keys_are_errors_naming_key_and_file() {
        for (body, key) in [
            ("bogus_key = 1\n", "bogus_key"),
            ("[listen]\nudpp = \"0.0.0.0:1\"\n", "udpp"),
            ("[services.s3]\nbukket = \"x\"\n", "bukket"),
            ("[nonsense]\n", "nonsense"),
        ] {
            let error = load(Some(body), &[], Overrides::default()).unwrap_err();
            let message = error.to_string();
            assert!(message.contains(key), "{message}");
            assert!(message.contains("ludus.toml"), "{message}");
        }
    }

    #[test]
    fn bad_values_name_the_source_and_the_value() {
        // (environment, name the error must give, value it must quote)
        type Case = (&'static [(&'static str, &'static str)], &'static str, &'static str);
        let cases: &[Case] = &[
            (&[("LUDUS_UDP", "nowhere")], "LUDUS_UDP", "nowhere"),
            (&[("PORT", "99999")], "PORT", "99999"),
            (&[("LUDUS_SHARDS", "many")], "LUDUS_SHARDS", "many"),
            (&[("LUDUS_CORES", "3-1")], "LUDUS_CORES", "3-1"),
            (&[("LUDUS_LOG_FORMAT", "xml")], "LUDUS_LOG_FORMAT", "xml"),
            (&[("RUST_LOG", "ludus=loud")], "RUST_LOG", "ludus=loud"),
            (&[("LUDUS_SHARDS", "0")], "shards.count", "0"),
        ];
        for &(env, name, value) in cases {
            let message = load(None, env, Overrides::default()).unwrap_err().to_string();
            assert!(message.contains(name) && message.contains(value), "{message}");
        }
        let message = load(Some("[listen]\nudp = \"nowhere\"\n"), &[], Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(message.contains("udp") && message.contains("nowhere"), "{message}");
    }

    #[test]
    fn core_lists_parse() {
        let ids = |text: &str| text.parse::<CoreList>().map(|list| list.ids().to_vec());
        assert_eq!(ids("0-3"), Ok(vec![0, 1, 2, 3]));
        assert_eq!(ids("0,2"), Ok(vec![0, 2]));
        assert_eq!(ids("0-1,4"), Ok(vec![0, 1, 4]));
        assert_eq!(ids(" 4, 0-1 "), Ok(vec![4, 0, 1]), "order is shard order");
        assert_eq!(ids("3-1"), Err(CoreListError::Backwards { start: 3, end: 1 }));
        assert_eq!(ids("a"), Err(CoreListError::NotANumber("a".to_owned())));
        assert_eq!(ids("0,0"), Err(CoreListError::Duplicate(0)));
        assert_eq!(ids("0-2,1"), Err(CoreListError::Duplicate(1)));
        assert_eq!(ids(""), Err(CoreListError::Empty));
        assert_eq!(ids("0,,1"), Err(CoreListError::NotANumber(String::new())));
        assert_eq!(ids("1024"), Err(CoreListError::OutOfRange(1024)));
        assert_eq!(ids("0-99999999999"), Err(CoreListError::OutOfRange(99999999999)));
    }

    #[test]
    fn core_lists_print_back_to_the_same_list() {
        for text in ["0-3", "0,2", "0-1,4", "4,0-1", "7", "1-2,5-6,9"] {
            let list: CoreList = text.parse().unwrap();
            assert_eq!(list.to_string(), text);
        }
    }

    #[test]
    fn core_list_decides_shard_count_unless_count_disagrees() {
        let config = load(None, &[("LUDUS_CORES", "0-1,4")], Overrides::default()).unwrap();
        assert_eq!(config.shards.count, 3);
        let matching =
            load(Some("[shards]\ncount = 3\ncores = \"0-2\"\n"), &[], Overrides::default());
        assert_eq!(matching.unwrap().shards.count, 3);
        let error = load(Some("[shards]\ncount = 2\ncores = \"0-2\"\n"), &[], Overrides::default());
        assert!(matches!(error, Err(ConfigError::ShardsMismatch { count: 2, .. })));
    }

    #[test]
    fn public_http_is_rejected_unless_allowed() {
        let error =
            load(None, &[("LUDUS_HTTP", "0.0.0.0:8080")], Overrides::default()).unwrap_err();
        assert!(matches!(error, ConfigError::PublicHttp { .. }));
        assert!(error.to_string().contains("allow_public_http"), "{error}");
        let allowed = "[listen]\nallow_public_http = true\n";
        let config =
            load(Some(allowed), &[("LUDUS_HTTP", "0.0.0.0:8080")], Overrides::default()).unwrap();
        assert_eq!(config.listen.http, addr("0.0.0.0:8080"));
        let loopback_v6 = Overrides { http: Some(addr("[::1]:8080")), ..Overrides::default() };
        assert!(load(None, &[], loopback_v6).is_ok());
    }

    #[test]
    fn tls_paths_come_in_pairs() {
        let half = load(Some("[tls]\ncert_path = \"cert.pem\"\n"), &[], Overrides::default());
        assert!(matches!(half, Err(ConfigError::TlsHalfSet { given: "cert_path" })));
        let both = "[tls]\ncert_path = \"cert.pem\"\nkey_path = \"key.pem\"\n";
        assert!(load(Some(both), &[], Overrides::default()).is_ok());
    }

    #[test]
    fn secrets_are_redacted() {
        let env = [
            ("JWT_SECRET", "jwt-hunter2"),
            ("S3_ACCESS_KEY", "AKIAEXAMPLE"),
            ("S3_SECRET_KEY", "s3-hunter2"),
            ("DATABASE_URL", "postgres://ludus:db-hunter2@db:5432/ludus?sslmode=require"),
            ("NATS_URL", "nats://nats-hunter2@a:4222,nats://user:pw-hunter2@b:4222"),
        ];
        let config = load(None, &env, Overrides::default()).unwrap();
        let rendered = [
            config.to_toml_redacted(),
            config.to_string(),
            format!("{config:?}"),
            format!("{:?}", config.redacted()),
        ];
        for text in &rendered {
            for secret in ["hunter2", "AKIAEXAMPLE"] {
                assert!(!text.contains(secret), "{secret} leaked into:\n{text}");
            }
        }
        let redacted = config.redacted().services;
        assert_eq!(redacted.jwt_secret.unwrap().expose(), REDACTED);
        assert_eq!(redacted.s3.secret_key.unwrap().expose(), REDACTED);
        assert_eq!(
            redacted.database_url.unwrap().expose(),
            "postgres://ludus:***@db:5432/ludus?sslmode=require"
        );
        assert_eq!(redacted.nats_url.unwrap().expose(), "nats://***@a:4222,nats://user:***@b:4222");
        assert_eq!(config.services.jwt_secret.unwrap().expose(), "jwt-hunter2", "original intact");
    }

    #[test]
    fn url_redaction_keeps_what_is_not_secret() {
        assert_eq!(redact_url("postgres://db/ludus"), "postgres://db/ludus");
        assert_eq!(redact_url("postgres://user@db/ludus"), "postgres://***@db/ludus");
        assert_eq!(
            redact_url("postgres://db/ludus?user=u&password=p&sslmode=disable"),
            "postgres://db/ludus?user=u&password=***&sslmode=disable"
        );
        assert_eq!(redact_url("host=db password=p"), REDACTED);
    }

    #[test]
    fn rendered_toml_parses_back_to_the_same_config() {
        let defaults = load(None, &[], Overrides::default()).unwrap();
        let reloaded = load(Some(&defaults.to_toml_redacted()), &[], Overrides::default()).unwrap();
        assert_eq!(reloaded, defaults);

        let env = [
            ("LUDUS_CORES", "0-1,3"),
            ("DATABASE_URL", "postgres://db/ludus"),
            ("S3_BUCKET", "games"),
            ("LUDUS_LOG_FORMAT", "json"),
        ];
        let file = "[tls]\ncert_path = \"c.pem\"\nkey_path = \"k.pem\"\n[listen]\nallow_public_http = true\nhttp = \"0.0.0.0:80\"\n";
        let custom = load(Some(file), &env, Overrides::default()).unwrap();
        let reloaded = load(Some(&custom.to_toml_redacted()), &[], Overrides::default()).unwrap();
        assert_eq!(reloaded, custom);
    }
}
