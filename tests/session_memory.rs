//! Memory the server holds per idle WebTransport session, measured in
//! process, without a network or another process's noise.
//!
//! Set-up (one thread, as `tests/alloc_echo.rs`): the server half is what
//! a shard runs, a `UdpIo` on a loopback socket, a `QuicEndpoint` and a
//! `WtServer<GuestHost>`, called in the shard's order. The clients are the
//! client library's socket-less `WtConnection`s, one loopback socket each,
//! doing what `ludus bots`' idle clients do: connect, Hello, one Ping on
//! each channel, then nothing but quiet.
//!
//! Counting: glibc's `mallinfo2` (bytes in chunks malloc has handed out,
//! mmapped ones included) read before and after every server call, so
//! the sum is the server's net heap, whoever allocated it: the Rust heap
//! and BoringSSL's `malloc`s alike. The share of `WtServer` (HTTP/3,
//! WebTransport, the Ludus session, and the quiche stream calls it makes)
//! is kept apart from the rest (endpoint, quiche's connection, TLS).
//!
//! Per session = (heap with all sessions − heap with the first
//! `BASELINE_SESSIONS`) / the sessions in between, so one-off growth
//! (the connection slab, timer lists) is not charged to sessions.
//!
//! The process RSS of a real server at 10,000 sessions is higher than
//! this by malloc's own overhead and fragmentation; that figure comes
//! from `scripts/bench-transport.sh` (docs/BENCHMARKS.md).

use std::cell::Cell;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ludus::client::h3::{WtConnection, WtRequest, WtTimings};
use ludus::client::{self, wt, Channel, ClientConfig, ClientEvent, Credentials};
use ludus::proto::session::Now;
use ludus::reactor::host::GuestHost;
use ludus::reactor::quic::app::WtServer;
use ludus::reactor::quic::endpoint::{EndpointConfig, QuicApp, QuicEndpoint};
use ludus::reactor::quic::retry::RetryTokens;
use ludus::reactor::server::{quiche_config, TlsMaterial};
use ludus::reactor::shard;
use ludus::reactor::sys;
use ludus::reactor::udp::UdpIo;

#[path = "support/inprocess.rs"]
mod inprocess;

/// Sessions measured (each client has its own socket).
const SESSIONS: usize = 512;
/// Sessions opened before the baseline is read.
const BASELINE_SESSIONS: usize = 64;
/// Handshakes in flight at once.
const CONNECT_BATCH: usize = 64;
/// Quiet time after the last Pong: longer than the server's Ping
/// interval, so each session has had its first server Ping answered and
/// has released what an idle session gives back, and every delayed ACK
/// (quiche's max_ack_delay is 25 ms) has been sent and processed.
fn settle_time() -> Duration {
    let ping_interval = ludus::proto::session::SessionConfig::default().ping_interval_ms;
    Duration::from_millis(u64::from(ping_interval) + 500)
}
/// The target for an idle WebTransport session (not met: quiche
/// alone holds two thirds of it before any stream is opened).
const TARGET_BYTES: i64 = 32 * 1024;
/// What a WebTransport session may cost over a bare quiche connection:
/// its six streams in quiche (map entries, buffers) plus HTTP/3, the
/// WebTransport and Ludus sessions, and the endpoint. Measured at 14.0-14.4
/// KiB; this bound catches a regression, not noise.
const OVER_BARE_QUICHE_MAX: i64 = 16 * 1024;

/// Bytes malloc has handed out and not had back, mmapped chunks included.
fn heap_in_use() -> i64 {
    // SAFETY: mallinfo2 has no preconditions; it reads malloc's counters.
    let info = unsafe { libc::mallinfo2() };
    (info.uordblks + info.hblkhd) as i64
}

thread_local! {
    /// Net heap change inside `WtServer` calls.
    static APP_BYTES: Cell<i64> = const { Cell::new(0) };
}

/// Runs `f` and returns the net heap change it made, with its result.
fn measured<R>(f: impl FnOnce() -> R) -> (i64, R) {
    let before = heap_in_use();
    let result = f();
    (heap_in_use() - before, result)
}

/// The server's application, its heap change kept apart.
struct Attributed<A>(A);

impl<A> Attributed<A> {
    fn app<R>(f: impl FnOnce() -> R) -> R {
        let (bytes, result) = measured(f);
        APP_BYTES.with(|total| total.set(total.get() + bytes));
        result
    }
}

impl<A: QuicApp> QuicApp for Attributed<A> {
    type Connection = A::Connection;

    fn accept(&mut self, peer: SocketAddr, now: Now, index: usize) -> A::Connection {
        Self::app(|| self.0.accept(peer, now, index))
    }

    fn process(&mut self, quic: &mut quiche::Connection, state: &mut A::Connection, now: Now) {
        Self::app(|| self.0.process(quic, state, now))
    }

    fn timeout(&self, state: &A::Connection) -> Option<u64> {
        self.0.timeout(state)
    }

    fn closed(&mut self, quic: &quiche::Connection, state: A::Connection) {
        Self::app(|| self.0.closed(quic, state))
    }

    fn begin_drain(&mut self) {
        self.0.begin_drain()
    }
}

struct Server {
    udp: UdpIo,
    endpoint: QuicEndpoint<Attributed<WtServer<GuestHost>>>,
    app: Attributed<WtServer<GuestHost>>,
    clock: shard::Clock,
    addr: SocketAddr,
    /// Net heap change of every server call so far.
    bytes: i64,
}

impl Server {
    /// One turn of the shard loop for the UDP side.
    fn turn(&mut self) {
        let now = self.clock.now();
        let Server { udp, endpoint, app, .. } = self;
        let (bytes, ()) = measured(|| {
            while udp
                .recv_batch(|packet, from| {
                    let _ = endpoint.handle_datagram(packet, from, now, app);
                })
                .unwrap()
                > 0
            {}
            endpoint.handle_timers(now);
            let _ = endpoint.drive(udp, app, now);
        });
        self.bytes += bytes;
    }
}

struct Client {
    socket: UdpSocket,
    addr: SocketAddr,
    connection: WtConnection,
    welcomed: bool,
    pongs: usize,
}

struct Clients {
    clients: Vec<Client>,
    clock: client::Clock,
    cert_sha256: [u8; 32],
    buffer: Vec<u8>,
}

impl Clients {
    fn open(&mut self, server: SocketAddr, id: usize) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let addr = socket.local_addr().unwrap();
        let mut scid = [0u8; quiche::MAX_CONN_ID_LEN];
        scid[..8].copy_from_slice(&(id as u64 + 1).to_le_bytes());
        let scid = quiche::ConnectionId::from_ref(&scid);
        let mut config = wt::quiche_config().unwrap();
        let quic = quiche::connect(None, &scid, addr, server, &mut config).unwrap();
        let request = WtRequest { authority: server.to_string(), path: "/wt".into(), origin: None };
        let timings = WtTimings { handshake_timeout_ms: 10_000, close_linger_ms: 100 };
        let now = self.clock.now();
        let mut connection = WtConnection::new(
            quic,
            self.cert_sha256,
            request,
            ClientConfig::default(),
            timings,
            now,
        );
        connection.session_mut().hello(&Credentials::guest("memory"), now).unwrap();
        self.clients.push(Client { socket, addr, connection, welcomed: false, pongs: 0 });
    }

    /// Every client's packets to the server.
    fn send(&mut self, server: SocketAddr) -> usize {
        let mut sent = 0;
        for client in &mut self.clients {
            while let Some((length, _)) = client.connection.send(&mut self.buffer) {
                client.socket.send_to(&self.buffer[..length], server).unwrap();
                sent += 1;
            }
        }
        sent
    }

    /// What reached the clients, their timers, and their events: a client
    /// that has its Welcome sends one Ping on each channel.
    fn receive(&mut self, server: SocketAddr) -> usize {
        let now = self.clock.now();
        let mut received = 0;
        for client in &mut self.clients {
            let info = quiche::RecvInfo { from: server, to: client.addr };
            while let Ok((length, _)) = client.socket.recv_from(&mut self.buffer) {
                client.connection.recv(&mut self.buffer[..length], info);
                received += 1;
            }
            if client.connection.timeout(now).is_some_and(|deadline| deadline <= now.monotonic_us) {
                client.connection.on_timeout(now);
            }
            client.connection.process(now);
            while let Some(event) = client.connection.poll_event() {
                match event {
                    ClientEvent::Welcome(_) => {
                        client.welcomed = true;
                        let session = client.connection.session_mut();
                        session.ping(Channel::Datagram, now).unwrap();
                        session.ping(Channel::Reliable, now).unwrap();
                        client.connection.process(now);
                    }
                    ClientEvent::Pong(_) => client.pongs += 1,
                    _ => {}
                }
            }
            assert!(client.connection.take_error().is_none(), "client error");
        }
        received
    }

    fn all_answered(&self) -> bool {
        self.clients.iter().all(|client| client.welcomed && client.pongs >= 2)
    }
}

fn exchange(server: &mut Server, clients: &mut Clients) -> bool {
    let sent = clients.send(server.addr);
    server.turn();
    let received = clients.receive(server.addr);
    sent + received > 0
}

fn run_until(server: &mut Server, clients: &mut Clients, done: impl Fn(&Clients) -> bool) {
    let start = Instant::now();
    while !done(clients) {
        assert!(start.elapsed() < Duration::from_secs(60), "no progress within 60 s");
        if !exchange(server, clients) {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

fn settle(server: &mut Server, clients: &mut Clients) {
    let start = Instant::now();
    let settle = settle_time();
    while start.elapsed() < settle {
        if !exchange(server, clients) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// quiche alone, for comparison: `SESSIONS` bare server connections with
/// the server's own configuration, handshaken in memory against quiche
/// clients (ALPN h3, no stream opened by either side), then left idle
/// until every ACK has been exchanged. Returns bytes per connection, as
/// the WebTransport figure is read: past the first `BASELINE_SESSIONS`.
fn bare_quiche_bytes_per_connection(material: &TlsMaterial) -> i64 {
    let server_addr: SocketAddr = "127.0.0.1:4433".parse().unwrap();
    let mut server_config = quiche_config(material).unwrap();
    let mut client_config = wt::quiche_config().unwrap();
    client_config.verify_peer(false);
    // Pre-sized: the connections' inline size is added once at the end.
    let mut servers: Vec<quiche::Connection> = Vec::with_capacity(SESSIONS);
    let mut clients: Vec<(quiche::Connection, SocketAddr)> = Vec::with_capacity(SESSIONS);
    let mut server_bytes = 0;
    let mut baseline_bytes = None;
    let mut buffer = vec![0u8; 65_536];
    let start = Instant::now();
    while servers.len() < SESSIONS {
        for _ in 0..CONNECT_BATCH.min(SESSIONS - servers.len()) {
            let index = servers.len();
            let client_addr = SocketAddr::from(([127, 0, 0, 1], 10_000 + index as u16));
            let mut cid = [0u8; quiche::MAX_CONN_ID_LEN];
            cid[..8].copy_from_slice(&(index as u64 + 1).to_le_bytes());
            let client = quiche::connect(
                None,
                &quiche::ConnectionId::from_ref(&cid),
                client_addr,
                server_addr,
                &mut client_config,
            )
            .unwrap();
            cid[8] = 0xff;
            let (bytes, server) = measured(|| {
                quiche::accept(
                    &quiche::ConnectionId::from_ref(&cid),
                    None,
                    server_addr,
                    client_addr,
                    &mut server_config,
                )
                .unwrap()
            });
            server_bytes += bytes;
            servers.push(server);
            clients.push((client, client_addr));
        }
        // Packets both ways until nothing moves for a while: the handshake,
        // HANDSHAKE_DONE, and the delayed ACKs that follow (by timeout).
        let mut quiet_since = Instant::now();
        while quiet_since.elapsed() < Duration::from_millis(100) {
            assert!(start.elapsed() < Duration::from_secs(60), "bare handshakes stalled");
            let mut moved = false;
            for (server, (client, client_addr)) in servers.iter_mut().zip(clients.iter_mut()) {
                let to_server = quiche::RecvInfo { from: *client_addr, to: server_addr };
                let to_client = quiche::RecvInfo { from: server_addr, to: *client_addr };
                while let Ok((length, _)) = client.send(&mut buffer) {
                    let (bytes, _) = measured(|| server.recv(&mut buffer[..length], to_server));
                    server_bytes += bytes;
                    moved = true;
                }
                loop {
                    let (bytes, sent) = measured(|| server.send(&mut buffer));
                    server_bytes += bytes;
                    let Ok((length, _)) = sent else { break };
                    client.recv(&mut buffer[..length], to_client).unwrap();
                    moved = true;
                }
                let (bytes, ()) = measured(|| {
                    if server.timeout().is_some_and(|timeout| timeout.is_zero()) {
                        server.on_timeout();
                    }
                });
                server_bytes += bytes;
                if client.timeout().is_some_and(|timeout| timeout.is_zero()) {
                    client.on_timeout();
                }
            }
            if moved {
                quiet_since = Instant::now();
            } else {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        if baseline_bytes.is_none() && servers.len() >= BASELINE_SESSIONS {
            baseline_bytes = Some((servers.len(), server_bytes));
        }
    }
    assert!(servers.iter().all(quiche::Connection::is_established), "bare handshakes");
    let (baseline_connections, baseline_bytes) = baseline_bytes.unwrap();
    (server_bytes - baseline_bytes) / (SESSIONS - baseline_connections) as i64
        + std::mem::size_of::<quiche::Connection>() as i64
}

#[test]
fn idle_webtransport_session_memory() {
    let tls = inprocess::dev_tls();
    let material = &tls.material;
    let socket = sys::bind_udp("127.0.0.1:0".parse().unwrap(), false).unwrap();
    let addr = socket.local_addr().unwrap();
    let clock = shard::Clock::new();
    let facts = inprocess::guest_facts();
    let (setup_bytes, mut server) = measured(|| Server {
        udp: UdpIo::new(socket).unwrap(),
        endpoint: QuicEndpoint::new(
            0,
            1,
            EndpointConfig { max_connections: SESSIONS + 16, retry: false },
            quiche_config(material).unwrap(),
            addr,
            Arc::new(RetryTokens::new()),
            clock.now(),
        ),
        app: Attributed(WtServer::new(0, GuestHost::new(0, facts))),
        clock,
        addr,
        bytes: 0,
    });
    let mut clients = Clients {
        clients: Vec::with_capacity(SESSIONS),
        clock: client::Clock::new(),
        cert_sha256: tls.cert_sha256,
        buffer: vec![0; 65_536],
    };

    let mut baseline = None;
    while clients.clients.len() < SESSIONS {
        let batch = CONNECT_BATCH.min(SESSIONS - clients.clients.len());
        for _ in 0..batch {
            let id = clients.clients.len();
            clients.open(server.addr, id);
        }
        run_until(&mut server, &mut clients, Clients::all_answered);
        if baseline.is_none() && clients.clients.len() >= BASELINE_SESSIONS {
            settle(&mut server, &mut clients);
            baseline = Some((clients.clients.len(), server.bytes, APP_BYTES.with(Cell::get)));
        }
    }
    settle(&mut server, &mut clients);
    assert_eq!(server.endpoint.connection_count(), SESSIONS, "every session is open");

    let (baseline_sessions, baseline_bytes, baseline_app) = baseline.unwrap();
    let counted = (SESSIONS - baseline_sessions) as i64;
    let per_session = (server.bytes - baseline_bytes) / counted;
    let app_per_session = (APP_BYTES.with(Cell::get) - baseline_app) / counted;
    eprintln!(
        "server heap: {setup_bytes} B at start; {} B with {baseline_sessions} sessions, \
         {} B with {SESSIONS}",
        setup_bytes + baseline_bytes,
        setup_bytes + server.bytes
    );
    eprintln!(
        "per idle session: {per_session} B ({:.1} KiB): WtServer {app_per_session} B, \
         endpoint + quiche + TLS {} B",
        per_session as f64 / 1024.0,
        per_session - app_per_session
    );
    let bare = bare_quiche_bytes_per_connection(material);
    eprintln!(
        "quiche alone, same configuration, no streams: {bare} B ({:.1} KiB) per idle connection",
        bare as f64 / 1024.0
    );
    eprintln!(
        "WebTransport over bare quiche: {} B; against the {} KiB target: {:+} B",
        per_session - bare,
        TARGET_BYTES / 1024,
        per_session - TARGET_BYTES
    );
    assert!(per_session > bare && bare > 0, "sessions hold memory");
    assert!(
        per_session - bare <= OVER_BARE_QUICHE_MAX,
        "{per_session} B per idle session: {} B over bare quiche, more than {OVER_BARE_QUICHE_MAX}",
        per_session - bare
    );
}
