//! `ludus serve`: builds the TLS material, starts one shard thread per
//! configured core, and turns SIGINT/SIGTERM into a graceful drain.
//!
//! The main thread does no network work: it starts shards, waits for
//! signals, renews the development certificate before it expires, and joins
//! the shards when they have drained.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use super::game::resume::ResumeKeys;
use super::game::{ApiLink, GameHost};
use super::mailbox::{mailbox, MailboxSender};
use super::quic::app::WtServer;
use super::quic::endpoint::{EndpointConfig, QuicEndpoint};
use super::quic::retry::RetryTokens;
use super::shard::{
    Clock, Shard, ShardMessage, ShardParts, ShardStats, TlsReload, MAILBOX_CAPACITY,
};
use super::tcp::{Listener, TcpEndpoint, TcpOptions};
use super::udp::UdpIo;
use super::web::ServerFacts;
use super::{sys, web};
use crate::config::Config;
use crate::devcert;
use crate::services::api::{ApiFrontend, ApiShared, StartError};
use crate::services::events::tap::EventTap;
use crate::services::events::writer::EventStats;
use crate::services::history::{History, HistoryError, StreamHandle};

/// QUIC idle timeout: a connection silent this long is closed by quiche.
pub const QUIC_IDLE_TIMEOUT_MS: u64 = 30_000;
/// Largest UDP payload we send: safe for the Internet's common 1500-byte MTU.
pub const QUIC_MAX_SEND_PAYLOAD: usize = 1_350;
/// Largest UDP payload we accept.
pub const QUIC_MAX_RECV_PAYLOAD: usize = 1_500;
/// Connection-level receive window.
pub const QUIC_MAX_DATA: u64 = 16 << 20;
/// Per-stream receive window.
pub const QUIC_MAX_STREAM_DATA: u64 = 1 << 20;
/// Streams a client may open: its three HTTP/3 uni streams plus room for
/// WebTransport streams and requests.
pub const QUIC_MAX_STREAMS: u64 = 100;
/// Datagrams queued per connection, each way.
pub const QUIC_DATAGRAM_QUEUE: usize = 1_024;
/// Renew the development certificate when less than this remains.
pub const DEV_CERT_RENEW_BEFORE: Duration = Duration::from_secs(2 * 24 * 3600);
/// How long the storage workers get to finish their jobs at exit.
const POOL_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How often the main thread checks for signals and renewals.
const MAIN_TICK: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("QUIC configuration: {0}")]
    Quic(String),
    #[error("shard {shard}: {reason}")]
    Shard { shard: u16, reason: String },
    #[error("signal handling: {0}")]
    Signals(std::io::Error),
    #[error("services: {0}")]
    Services(#[from] StartError),
    #[error("match history: {0}")]
    History(#[from] HistoryError),
}

/// Where the certificate and key live, and the dev certificate's facts.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Set for a generated development certificate.
    pub dev: Option<DevCertInfo>,
}

#[derive(Debug, Clone)]
pub struct DevCertInfo {
    pub sha256_hex: String,
    pub spki_sha256_base64: String,
    pub not_after: std::time::SystemTime,
}

/// The configured PEM files, or a fresh development certificate written to
/// `<data_dir>/tls/`.
pub fn tls_material(config: &Config) -> Result<TlsMaterial, ServeError> {
    if let (Some(cert), Some(key)) = (&config.tls.cert_path, &config.tls.key_path) {
        return Ok(TlsMaterial { cert: cert.clone(), key: key.clone(), dev: None });
    }
    generate_dev_cert(&config.data_dir.join("tls"))
}

fn generate_dev_cert(dir: &Path) -> Result<TlsMaterial, ServeError> {
    let cert = devcert::generate(&[], devcert::VALIDITY_DAYS_MAX)
        .map_err(|error| ServeError::Certificate(error.to_string()))?;
    let paths = cert.write(dir).map_err(|error| ServeError::Certificate(error.to_string()))?;
    Ok(TlsMaterial {
        cert: paths.cert,
        key: paths.key,
        dev: Some(DevCertInfo {
            sha256_hex: cert.cert_sha256_hex(),
            spki_sha256_base64: cert.spki_sha256_base64(),
            not_after: cert.not_after,
        }),
    })
}

/// quiche's configuration for the server side: HTTP/3, datagrams, limits.
pub fn quiche_config(material: &TlsMaterial) -> Result<quiche::Config, ServeError> {
    let quic = |error: quiche::Error| ServeError::Quic(error.to_string());
    let mut config = quiche::Config::new(quiche::PROTOCOL_VERSION).map_err(quic)?;
    config.load_cert_chain_from_pem_file(&material.cert.to_string_lossy()).map_err(quic)?;
    config.load_priv_key_from_pem_file(&material.key.to_string_lossy()).map_err(quic)?;
    config.set_application_protos(&[b"h3"]).map_err(quic)?;
    config.set_max_idle_timeout(QUIC_IDLE_TIMEOUT_MS);
    config.set_max_recv_udp_payload_size(QUIC_MAX_RECV_PAYLOAD);
    config.set_max_send_udp_payload_size(QUIC_MAX_SEND_PAYLOAD);
    config.set_initial_max_data(QUIC_MAX_DATA);
    config.set_initial_max_stream_data_bidi_local(QUIC_MAX_STREAM_DATA);
    config.set_initial_max_stream_data_bidi_remote(QUIC_MAX_STREAM_DATA);
    config.set_initial_max_stream_data_uni(QUIC_MAX_STREAM_DATA);
    config.set_initial_max_streams_bidi(QUIC_MAX_STREAMS);
    config.set_initial_max_streams_uni(QUIC_MAX_STREAMS);
    config.enable_dgram(true, QUIC_DATAGRAM_QUEUE, QUIC_DATAGRAM_QUEUE);
    Ok(config)
}

/// rustls's configuration for HTTPS and secure WebSocket.
pub fn rustls_config(material: &TlsMaterial) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let tls = |error: &dyn std::fmt::Display| ServeError::Tls(error.to_string());
    let certs = CertificateDer::pem_file_iter(&material.cert)
        .map_err(|error| tls(&error))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| tls(&error))?;
    let key = PrivateKeyDer::from_pem_file(&material.key).map_err(|error| tls(&error))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| tls(&error))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|error| tls(&error))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What every shard thread needs to build itself.
#[derive(Clone)]
struct ShardPlan {
    shard_count: u16,
    core: Option<usize>,
    material: TlsMaterial,
    tokens: Arc<RetryTokens>,
    /// One key for every shard: a session may resume on any of them.
    resume: ResumeKeys,
    config: Config,
    stats: Arc<Vec<Arc<ShardStats>>>,
    /// The REST API's keys and workers, shared by every shard's front.
    api: Arc<ApiShared>,
    /// Each shard's hand-off of game events to the event writer.
    taps: Vec<EventTap>,
    events: Arc<EventStats>,
}

/// One shard's sockets, bound on the main thread so that a port 0 in the
/// configuration resolves once and every shard shares the resulting port.
struct ShardSockets {
    udp: mio::net::UdpSocket,
    https: mio::net::TcpListener,
    http: mio::net::TcpListener,
}

/// The addresses actually bound (ports resolved).
#[derive(Debug, Clone, Copy)]
pub struct BoundAddresses {
    pub udp: SocketAddr,
    pub https: SocketAddr,
    pub http: SocketAddr,
}

fn bind_all(
    config: &Config,
    shard_count: u16,
) -> Result<(Vec<ShardSockets>, BoundAddresses), ServeError> {
    let failed = |what: &str, addr: SocketAddr, error: std::io::Error| ServeError::Shard {
        shard: 0,
        reason: format!("binding {what} {addr}: {error}"),
    };
    let listen = &config.listen;
    let mut bound = BoundAddresses { udp: listen.udp, https: listen.https, http: listen.http };
    let mut sockets = Vec::new();
    for _ in 0..shard_count {
        let udp =
            sys::bind_udp(bound.udp, true).map_err(|error| failed("UDP", bound.udp, error))?;
        let https =
            sys::bind_tcp(bound.https, true).map_err(|error| failed("TCP", bound.https, error))?;
        let http =
            sys::bind_tcp(bound.http, true).map_err(|error| failed("TCP", bound.http, error))?;
        // The first shard resolves port 0; the others bind what it got.
        bound.udp = udp.local_addr().map_err(|error| failed("UDP", bound.udp, error))?;
        bound.https = https.local_addr().map_err(|error| failed("TCP", bound.https, error))?;
        bound.http = http.local_addr().map_err(|error| failed("TCP", bound.http, error))?;
        sockets.push(ShardSockets { udp, https, http });
    }
    Ok((sockets, bound))
}

/// Runs the server until SIGINT/SIGTERM and a completed drain.
pub fn serve(config: &Config) -> Result<(), ServeError> {
    let material = tls_material(config)?;
    // Storage first: a database that is unreachable, edited or newer than
    // this binary stops start-up here, before any port is bound.
    // The event stream next (NATS unreachable, a damaged log: stop here).
    let stream = StreamHandle::open(config)?;
    let api = ApiShared::start(config, Some(stream.clone()))?;
    let shard_count = u16::try_from(config.shards.count)
        .map_err(|_| ServeError::Quic("too many shards".into()))?;
    let (event_taps, history) = History::start(config, stream, usize::from(shard_count))?;
    let plan = ShardPlan {
        shard_count,
        core: None,
        material: material.clone(),
        tokens: Arc::new(RetryTokens::new()),
        resume: ResumeKeys::generate(),
        config: config.clone(),
        stats: Arc::new((0..shard_count).map(|_| Arc::new(ShardStats::default())).collect()),
        api,
        events: Arc::clone(&history.stats),
        taps: event_taps,
    };
    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&shutdown)).map_err(ServeError::Signals)?;
    }
    let (sockets, bound) = bind_all(config, shard_count)?;
    let (senders, handles) = start_shards(&plan, config, sockets)?;
    announce(config, &material, bound);
    let result = supervise(config, &senders, handles, &shutdown, material);
    // The shards are gone: finish the jobs in hand, refuse the queued ones.
    if let Ok(mut api) = Arc::try_unwrap(plan.api) {
        api.pool.shutdown(POOL_SHUTDOWN_GRACE);
    }
    // Publishes what the shards handed over last; the consumers save
    // their positions.
    history.stop();
    result
}

type ShardHandle = std::thread::JoinHandle<Result<(), String>>;

fn start_shards(
    plan: &ShardPlan,
    config: &Config,
    sockets: Vec<ShardSockets>,
) -> Result<(Vec<MailboxSender<ShardMessage>>, Vec<ShardHandle>), ServeError> {
    let mut polls = Vec::new();
    let mut senders = Vec::new();
    let mut mailboxes = Vec::new();
    for shard in 0..plan.shard_count {
        let (poll, waker) = super::shard::poll_and_waker()
            .map_err(|error| ServeError::Shard { shard, reason: error.to_string() })?;
        let (sender, mailbox) = mailbox(MAILBOX_CAPACITY, Box::new(waker));
        polls.push(poll);
        senders.push(sender);
        mailboxes.push(mailbox);
    }
    let peers = Arc::new(senders.clone());
    let (ready_sender, ready) = mpsc::channel::<(u16, Result<(), String>)>();
    let mut handles = Vec::new();
    let shards = polls.into_iter().zip(mailboxes).zip(sockets);
    for (shard, ((poll, mailbox), sockets)) in shards.enumerate() {
        let shard = shard as u16;
        let mut plan = plan.clone();
        plan.core = config
            .shards
            .cores
            .as_ref()
            .and_then(|cores| cores.ids().get(usize::from(shard)).copied());
        let peers = Arc::clone(&peers);
        let ready_sender = ready_sender.clone();
        let handle = std::thread::Builder::new()
            .name(format!("shard-{shard}"))
            .spawn(move || run_shard(shard, plan, sockets, poll, mailbox, peers, ready_sender))
            .map_err(|error| ServeError::Shard { shard, reason: error.to_string() })?;
        handles.push(handle);
    }
    drop(ready_sender);
    for _ in 0..plan.shard_count {
        match ready.recv() {
            Ok((_, Ok(()))) => {}
            Ok((shard, Err(reason))) => {
                stop_all(&senders, Duration::ZERO);
                return Err(ServeError::Shard { shard, reason });
            }
            Err(_) => {
                return Err(ServeError::Shard {
                    shard: 0,
                    reason: "a shard died while starting".into(),
                })
            }
        }
    }
    Ok((senders, handles))
}

/// The shard thread: pin, bind, report readiness, run.
fn run_shard(
    shard: u16,
    plan: ShardPlan,
    sockets: ShardSockets,
    poll: mio::Poll,
    mailbox: super::mailbox::Mailbox<ShardMessage>,
    peers: Arc<Vec<MailboxSender<ShardMessage>>>,
    ready: mpsc::Sender<(u16, Result<(), String>)>,
) -> Result<(), String> {
    let built = build_shard(shard, &plan, sockets, poll, mailbox, peers);
    let mut shard_loop = match built {
        Ok(shard_loop) => {
            let _ = ready.send((shard, Ok(())));
            shard_loop
        }
        Err(reason) => {
            let _ = ready.send((shard, Err(reason.clone())));
            return Err(reason);
        }
    };
    shard_loop.run().map_err(|error| error.to_string())
}

fn build_shard(
    shard: u16,
    plan: &ShardPlan,
    sockets: ShardSockets,
    poll: mio::Poll,
    mailbox: super::mailbox::Mailbox<ShardMessage>,
    peers: Arc<Vec<MailboxSender<ShardMessage>>>,
) -> Result<Shard<GameHost>, String> {
    if let Some(core) = plan.core {
        sys::pin_to_core(core).map_err(|error| format!("pinning to core {core}: {error}"))?;
    }
    let clock = Clock::new();
    let now = clock.now();
    let udp = UdpIo::new(sockets.udp).map_err(|error| format!("UDP set-up: {error}"))?;
    let local = udp.local_addr().map_err(|error| error.to_string())?;
    let quiche = quiche_config(&plan.material).map_err(|error| error.to_string())?;
    let serve = &plan.config.serve;
    let endpoint_config =
        EndpointConfig { max_connections: serve.max_quic_connections, retry: serve.quic_retry };
    let quic = QuicEndpoint::new(
        shard,
        plan.shard_count,
        endpoint_config,
        quiche,
        local,
        Arc::clone(&plan.tokens),
        now,
    );
    let tls = rustls_config(&plan.material).map_err(|error| error.to_string())?;
    let listeners = vec![
        Listener { socket: sockets.https, tls: Some(tls) },
        Listener { socket: sockets.http, tls: None },
    ];
    let options = TcpOptions {
        max_connections: serve.max_tcp_connections,
        max_connections_per_ip: serve.max_tcp_connections_per_ip,
        allowed_origins: serve.allowed_origins.clone(),
        ..TcpOptions::default()
    };
    let tcp = TcpEndpoint::new(shard, options, listeners, now);
    let facts = ServerFacts {
        cert_sha256_hex: plan.material.dev.as_ref().map(|dev| dev.sha256_hex.clone()),
        version: env!("CARGO_PKG_VERSION"),
        stats: Arc::clone(&plan.stats),
        storage: Some(Arc::clone(plan.api.pool.stats())),
        events: Some(Arc::clone(&plan.events)),
    };
    let link = ApiLink {
        frontend: ApiFrontend::new(shard, Arc::clone(&plan.api)),
        reply_to: peers[usize::from(shard)].clone(),
    };
    let host = GameHost::new(shard, facts, plan.resume.clone(), now)
        .with_api(link)
        .with_events(plan.taps[usize::from(shard)].clone());
    let quic_app = WtServer::new(shard, host).with_allowed_origins(serve.allowed_origins.clone());
    let stats = Arc::clone(&plan.stats[usize::from(shard)]);
    let parts =
        ShardParts { id: shard, poll, mailbox, peers, udp, quic, quic_app, tcp, clock, stats };
    Shard::new(parts).map_err(|error| format!("registering sockets: {error}"))
}

fn announce(config: &Config, material: &TlsMaterial, bound: BoundAddresses) {
    tracing::info!(
        shards = config.shards.count,
        web_files = web::asset_count(),
        "ludus serving: WebTransport at https://{}/wt, WebSocket at wss://{}/ws and ws://{}/ws",
        bound.udp,
        bound.https,
        bound.http,
    );
    // One machine-readable line for scripts and tests (ports resolved).
    say(format_args!("listening udp={} https={} http={}", bound.udp, bound.https, bound.http));
    if let Some(dev) = &material.dev {
        // Printed, not only logged: a developer pastes it into a page.
        say(format_args!("certificate sha-256 (hex): {}", dev.sha256_hex));
        say(format_args!("certificate SPKI sha-256 (base64): {}", dev.spki_sha256_base64));
    }
}

/// One line on stdout. A closed or full stdout (the reader of a pipe went
/// away) is not the server's failure: `println!` would panic the supervisor
/// and with it every shard, so the line is dropped instead.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ =
        stdout.write_fmt(line).and_then(|()| stdout.write_all(b"\n")).and_then(|()| stdout.flush());
}

/// Waits for a signal, renews the dev certificate, drains and joins.
fn supervise(
    config: &Config,
    senders: &[MailboxSender<ShardMessage>],
    handles: Vec<ShardHandle>,
    shutdown: &AtomicBool,
    mut material: TlsMaterial,
) -> Result<(), ServeError> {
    let grace = Duration::from_millis(config.serve.shutdown_grace_ms);
    let mut drain_started: Option<Instant> = None;
    loop {
        if handles.iter().all(|handle| handle.is_finished()) {
            break;
        }
        if shutdown.swap(false, Ordering::SeqCst) {
            match drain_started {
                None => {
                    tracing::info!(
                        grace_ms = grace.as_millis() as u64,
                        "shutdown requested: draining"
                    );
                    stop_all(senders, grace);
                    drain_started = Some(Instant::now());
                }
                Some(_) => {
                    tracing::warn!("second signal: exiting now");
                    std::process::exit(1);
                }
            }
        }
        if drain_started.is_none() {
            renew_if_due(config, senders, &mut material);
        }
        std::thread::sleep(MAIN_TICK);
    }
    let mut failure = None;
    for (shard, handle) in handles.into_iter().enumerate() {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => failure = Some(ServeError::Shard { shard: shard as u16, reason }),
            Err(_) => {
                failure = Some(ServeError::Shard { shard: shard as u16, reason: "panicked".into() })
            }
        }
    }
    tracing::info!("stopped");
    failure.map_or(Ok(()), Err)
}

fn stop_all(senders: &[MailboxSender<ShardMessage>], grace: Duration) {
    for sender in senders {
        let _ = sender.send(ShardMessage::Shutdown { grace });
    }
}

/// Replaces the development certificate before browsers stop accepting it.
fn renew_if_due(
    config: &Config,
    senders: &[MailboxSender<ShardMessage>],
    material: &mut TlsMaterial,
) {
    let Some(dev) = &material.dev else { return };
    let remaining = dev.not_after.duration_since(std::time::SystemTime::now()).unwrap_or_default();
    if remaining > DEV_CERT_RENEW_BEFORE {
        return;
    }
    let renewed = match generate_dev_cert(&config.data_dir.join("tls")) {
        Ok(renewed) => renewed,
        Err(error) => return tracing::error!(%error, "development certificate renewal failed"),
    };
    // Every file is read here, on the main thread; shards only swap configs.
    let rustls = match rustls_config(&renewed) {
        Ok(rustls) => rustls,
        Err(error) => return tracing::error!(%error, "renewed certificate unusable"),
    };
    let hash = renewed.dev.as_ref().map(|dev| dev.sha256_hex.clone());
    for sender in senders {
        let quiche = match quiche_config(&renewed) {
            Ok(quiche) => quiche,
            Err(error) => return tracing::error!(%error, "renewed certificate unusable"),
        };
        let reload =
            TlsReload { quiche, rustls: Arc::clone(&rustls), cert_sha256_hex: hash.clone() };
        let _ = sender.send(ShardMessage::ReloadTls(Box::new(reload)));
    }
    if let Some(hash) = &hash {
        say(format_args!("certificate renewed; sha-256 (hex): {hash}"));
    }
    *material = renewed;
}
