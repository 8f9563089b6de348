//! One shard: a thread, pinned to a core when asked, running its own mio
//! `Poll` over its own sockets (bound with SO_REUSEPORT on the shared ports),
//! connections, timer wheel and mailbox. Shards share nothing but their
//! mailboxes.
//!
//! The loop, each turn: wait for readiness or the next timer; drain the
//! mailbox, the UDP socket (until WouldBlock, in bounded batches) and the TCP
//! sockets; fire due timers; let connections with work process and send;
//! flush the UDP batch. mio is edge-triggered, so every readable source is
//! drained to WouldBlock or remembered as still pending.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::{Events, Interest, Poll, Token, Waker};

use super::game::outbox::{Delivery, HostMessage, HostOutput};
use super::host::{Host, HttpTarget, HttpVersion, Transport};
use super::mailbox::{Mailbox, MailboxSender};
use super::quic::app::WtServer;
use super::quic::endpoint::{QuicApp, QuicEndpoint, Routing};
use super::tcp::TcpEndpoint;
use super::udp::{Flush, UdpIo};
use super::web::WebResponse;
use crate::proto::session::Now;

pub const WAKER_TOKEN: Token = Token(0);
pub const UDP_TOKEN: Token = Token(1);
/// Tokens from here on belong to the TCP endpoint (listeners, connections).
pub const TCP_TOKEN_BASE: usize = 16;
/// Readiness events handled per poll.
pub const EVENTS_CAPACITY: usize = 1_024;
/// Mailbox messages handled per turn before the sockets get their turn.
pub const MAILBOX_BATCH_MAX: usize = 1_024;
/// recvmmsg batches per turn before timers and sends get their turn.
pub const UDP_BATCHES_PER_TURN: usize = 16;
/// Deliver-and-flush rounds per loop turn (see `run`).
pub const HOST_ROUNDS_PER_TURN: usize = 3;
/// Mailbox capacity per shard.
pub const MAILBOX_CAPACITY: usize = 65_536;

/// Upper bounds (inclusive, ms) of the tick-lateness buckets; the last
/// bucket counts everything later.
pub const TICK_LATE_BOUNDS_MS: [u64; 8] = [0, 1, 2, 4, 8, 16, 32, 64];

/// Live counts a shard publishes once per loop turn, for /api/stats, tests
/// and operators. Relaxed atomics: readers want a recent value, not a
/// consistent snapshot across fields.
#[derive(Debug, Default)]
pub struct ShardStats {
    pub quic_connections: AtomicUsize,
    pub tcp_connections: AtomicUsize,
    pub sessions: AtomicUsize,
    pub udp_datagrams_in: AtomicU64,
    pub udp_datagrams_out: AtomicU64,
    pub loop_turns: AtomicU64,
    /// How late room ticks ran after their deadline, as counts per bucket
    /// of [`TICK_LATE_BOUNDS_MS`] plus one for later: the server's own view
    /// of its tick latency, whatever the clients' clocks and schedulers do.
    pub tick_late: [AtomicU64; TICK_LATE_BOUNDS_MS.len() + 1],
    pub tick_late_max_ms: AtomicU64,
}

impl ShardStats {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "quic_connections": self.quic_connections.load(Ordering::Relaxed),
            "tcp_connections": self.tcp_connections.load(Ordering::Relaxed),
            "sessions": self.sessions.load(Ordering::Relaxed),
            "udp_datagrams_in": self.udp_datagrams_in.load(Ordering::Relaxed),
            "udp_datagrams_out": self.udp_datagrams_out.load(Ordering::Relaxed),
            "loop_turns": self.loop_turns.load(Ordering::Relaxed),
            "tick_late_ms": {
                "bounds": TICK_LATE_BOUNDS_MS,
                "counts": self.tick_late.iter().map(|count| count.load(Ordering::Relaxed))
                    .collect::<Vec<u64>>(),
                "max": self.tick_late_max_ms.load(Ordering::Relaxed),
            },
        })
    }

    /// Counts one room tick that ran `late_ms` after its deadline.
    pub fn record_tick_lateness(&self, late_ms: u64) {
        let bucket = TICK_LATE_BOUNDS_MS
            .iter()
            .position(|bound| late_ms <= *bound)
            .unwrap_or(TICK_LATE_BOUNDS_MS.len());
        self.tick_late[bucket].fetch_add(1, Ordering::Relaxed);
        self.tick_late_max_ms.fetch_max(late_ms, Ordering::Relaxed);
    }
}

/// What shards and service threads send to a shard.
#[derive(Debug)]
pub enum ShardMessage {
    /// A QUIC datagram that reached another shard's socket but belongs here.
    Datagram { packet: Vec<u8>, from: SocketAddr },
    /// Stop accepting, tell clients, close by the deadline (the sender does
    /// not know the shard's clock, so it is a duration from receipt).
    Shutdown { grace: Duration },
    /// From another shard's game host: room commands, directory changes,
    /// and frames for sessions here.
    Host(HostMessage),
    /// Frames from rooms on other shards for sessions here, batched per
    /// sending shard and loop turn.
    Deliveries(Vec<Delivery>),
    /// A renewed certificate: new connections use it.
    /// Built on the main thread, so that no shard reads a file.
    ReloadTls(Box<TlsReload>),
    /// A deferred HTTP answer (from a services worker) for a request on one
    /// of this shard's connections.
    HttpReply { target: HttpTarget, response: Box<WebResponse> },
}

/// A renewed certificate's configurations, ready to swap in.
pub struct TlsReload {
    pub quiche: quiche::Config,
    pub rustls: Arc<rustls::ServerConfig>,
    pub cert_sha256_hex: Option<String>,
}

impl std::fmt::Debug for TlsReload {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("TlsReload").field("cert_sha256_hex", &self.cert_sha256_hex).finish()
    }
}

/// The shard's clock: monotonic milliseconds since start, and a wall clock
/// derived from it (so it never jumps while the process runs).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    start_unix_us: u64,
}

impl Clock {
    pub fn new() -> Clock {
        let start_unix_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_micros() as u64);
        Clock { start: Instant::now(), start_unix_us }
    }

    pub fn now(&self) -> Now {
        let elapsed = self.start.elapsed();
        Now {
            monotonic_ms: elapsed.as_millis() as u64,
            unix_us: self.start_unix_us + elapsed.as_micros() as u64,
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// Everything a shard thread owns.
pub struct Shard<H: Host> {
    pub id: u16,
    poll: Poll,
    mailbox: Mailbox<ShardMessage>,
    peers: Arc<Vec<MailboxSender<ShardMessage>>>,
    udp: UdpIo,
    quic: QuicEndpoint<WtServer<H>>,
    quic_app: WtServer<H>,
    tcp: TcpEndpoint,
    clock: Clock,
    stats: Arc<ShardStats>,
    /// When draining: the monotonic deadline after which everything closes.
    drain_deadline_ms: Option<u64>,
    udp_readable_pending: bool,
    udp_blocked: bool,
    /// Frames for other shards' sessions, batched per shard within a turn.
    remote_deliveries: Vec<Vec<Delivery>>,
    /// Frames for sessions no longer held by the player they were for.
    pub stale_deliveries: u64,
    /// Deferred HTTP answers whose connection had gone.
    pub stale_http_replies: u64,
}

/// The pieces a shard is built from, made on the main thread.
pub struct ShardParts<H: Host> {
    pub id: u16,
    pub poll: Poll,
    pub mailbox: Mailbox<ShardMessage>,
    pub peers: Arc<Vec<MailboxSender<ShardMessage>>>,
    pub udp: UdpIo,
    pub quic: QuicEndpoint<WtServer<H>>,
    pub quic_app: WtServer<H>,
    pub tcp: TcpEndpoint,
    pub clock: Clock,
    pub stats: Arc<ShardStats>,
}

/// A shard's poll and the waker that rings its mailbox.
pub fn poll_and_waker() -> io::Result<(Poll, Waker)> {
    let poll = Poll::new()?;
    let waker = Waker::new(poll.registry(), WAKER_TOKEN)?;
    Ok((poll, waker))
}

impl<H: Host> Shard<H> {
    pub fn new(mut parts: ShardParts<H>) -> io::Result<Shard<H>> {
        parts.poll.registry().register(
            &mut parts.udp,
            UDP_TOKEN,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        parts.tcp.register(parts.poll.registry())?;
        Ok(Shard {
            id: parts.id,
            poll: parts.poll,
            mailbox: parts.mailbox,
            peers: parts.peers,
            udp: parts.udp,
            quic: parts.quic,
            quic_app: parts.quic_app,
            tcp: parts.tcp,
            clock: parts.clock,
            stats: parts.stats,
            drain_deadline_ms: None,
            udp_readable_pending: true,
            udp_blocked: false,
            remote_deliveries: Vec::new(),
            stale_deliveries: 0,
            stale_http_replies: 0,
        })
    }

    /// Runs until drained after a Shutdown message.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        loop {
            let timeout = self.poll_timeout();
            if let Err(error) = self.poll.poll(&mut events, timeout) {
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            let now = self.clock.now();
            for event in events.iter() {
                self.dispatch(event, now);
            }
            if self.udp_readable_pending {
                self.read_udp(now);
            }
            self.fire_timers(now);
            // Hosts answer while connections are processed (in `drive`):
            // deliver and flush again, a bounded number of rounds.
            for _ in 0..HOST_ROUNDS_PER_TURN {
                self.route_host_outputs(now);
                self.drive(now);
                if !self.quic_app.host.has_output() {
                    break;
                }
            }
            self.publish_stats();
            if self.finished(now) {
                self.publish_stats();
                return Ok(());
            }
        }
    }

    fn publish_stats(&self) {
        let stats = &self.stats;
        stats.quic_connections.store(self.quic.connection_count(), Ordering::Relaxed);
        stats.tcp_connections.store(self.tcp.connection_count(), Ordering::Relaxed);
        stats.sessions.store(self.quic_app.host.session_count(), Ordering::Relaxed);
        let udp = self.udp.counters();
        stats.udp_datagrams_in.store(udp.datagrams_received, Ordering::Relaxed);
        stats.udp_datagrams_out.store(udp.datagrams_sent, Ordering::Relaxed);
        stats.loop_turns.fetch_add(1, Ordering::Relaxed);
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if self.udp_readable_pending || !self.mailbox.is_empty() || self.quic_app.host.has_output()
        {
            return Some(Duration::ZERO);
        }
        let now = self.clock.now();
        let drain =
            self.drain_deadline_ms.map(|deadline| deadline.saturating_sub(now.monotonic_ms));
        let host = self.quic_app.host.timeout_ms(now);
        [self.quic.timeout_ms(now), self.tcp.timeout_ms(now), host, drain]
            .into_iter()
            .flatten()
            .min()
            .map(Duration::from_millis)
    }

    fn dispatch(&mut self, event: &mio::event::Event, now: Now) {
        match event.token() {
            WAKER_TOKEN => self.read_mailbox(now),
            UDP_TOKEN => {
                if event.is_writable() {
                    self.udp_blocked = false;
                }
                if event.is_readable() {
                    self.udp_readable_pending = true;
                }
            }
            token => self.tcp.handle_event(
                self.poll.registry(),
                token,
                event,
                &mut self.quic_app.host,
                now,
            ),
        }
    }

    fn read_mailbox(&mut self, now: Now) {
        let Shard { mailbox, quic, quic_app, tcp, stale_deliveries, stale_http_replies, .. } = self;
        let mut shutdown = None;
        let mut reload = None;
        mailbox.drain(MAILBOX_BATCH_MAX, |message| match message {
            ShardMessage::Datagram { mut packet, from } => {
                // Routed here by its connection ID: never forwarded again.
                let _ = quic.handle_datagram(&mut packet, from, now, quic_app);
            }
            ShardMessage::Deliveries(deliveries) => {
                for delivery in deliveries {
                    if !deliver_local(quic, tcp, &quic_app.host, delivery) {
                        *stale_deliveries += 1;
                    }
                }
            }
            ShardMessage::Host(message) => quic_app.host.handle_message(message, now),
            ShardMessage::HttpReply { target, response } => {
                let delivered = match target.version {
                    HttpVersion::Http1 => {
                        tcp.complete_http(target, *response, &mut quic_app.host, now)
                    }
                    HttpVersion::Http3 => quic
                        .touch(target.connection, |state| state.complete_http(target, &response))
                        .unwrap_or(false),
                };
                if !delivered {
                    // The client left (or timed out) before the answer came.
                    *stale_http_replies += 1;
                }
            }
            ShardMessage::Shutdown { grace } => shutdown = Some(grace),
            ShardMessage::ReloadTls(tls) => reload = Some(tls),
        });
        if let Some(tls) = reload {
            self.reload_tls(*tls);
        }
        if let Some(grace) = shutdown {
            self.begin_drain(grace, now);
        }
    }

    /// Reads UDP in bounded batches; leaves `udp_readable_pending` set if the
    /// socket was not drained, so the next poll does not sleep.
    fn read_udp(&mut self, now: Now) {
        let Shard { udp, quic, quic_app, peers, id, .. } = self;
        for _ in 0..UDP_BATCHES_PER_TURN {
            let received = udp.recv_batch(|packet, from| {
                if let Routing::Forward(shard) = quic.handle_datagram(packet, from, now, quic_app) {
                    forward(peers, *id, shard, packet, from);
                }
            });
            match received {
                Ok(0) => {
                    self.udp_readable_pending = false;
                    return;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(shard = self.id, %error, "UDP receive failed");
                    self.udp_readable_pending = false;
                    return;
                }
            }
        }
    }

    fn fire_timers(&mut self, now: Now) {
        self.quic.handle_timers(now);
        self.tcp.handle_timers(&mut self.quic_app.host, now);
        self.quic_app.host.handle_timeout(now);
    }

    /// Hands the host's outputs on: frames to this shard's sessions at
    /// once, frames for other shards in one mailbox message per shard,
    /// host messages to their shards.
    fn route_host_outputs(&mut self, _now: Now) {
        let Shard { quic, quic_app, tcp, peers, id, remote_deliveries, stale_deliveries, .. } =
            self;
        if remote_deliveries.len() < peers.len() {
            remote_deliveries.resize_with(peers.len(), Vec::new);
        }
        while let Some(output) = quic_app.host.poll_output() {
            match output {
                HostOutput::Deliver(delivery) if delivery.to.shard == *id => {
                    if !deliver_local(quic, tcp, &quic_app.host, delivery) {
                        *stale_deliveries += 1;
                    }
                }
                HostOutput::Deliver(delivery) => {
                    if let Some(batch) = remote_deliveries.get_mut(usize::from(delivery.to.shard)) {
                        batch.push(delivery);
                    }
                }
                HostOutput::Send { shard, message } => send_host(peers, *id, shard, message),
                HostOutput::Broadcast(message) => {
                    for shard in (0..peers.len() as u16).filter(|shard| shard != id) {
                        send_host(peers, *id, shard, message.clone());
                    }
                }
            }
        }
        for (shard, batch) in remote_deliveries.iter_mut().enumerate() {
            if !batch.is_empty() {
                let Some(peer) = peers.get(shard) else { continue };
                if peer.send(ShardMessage::Deliveries(std::mem::take(batch))).is_err() {
                    tracing::warn!(from_shard = *id, shard, "deliveries dropped: mailbox full");
                }
            }
        }
    }

    fn drive(&mut self, now: Now) {
        self.tcp.drive(self.poll.registry(), &mut self.quic_app.host, now);
        if self.udp_blocked {
            return;
        }
        let flush = self.quic.drive(&mut self.udp, &mut self.quic_app, now);
        self.udp_blocked = flush == Flush::Blocked;
    }

    /// New connections get the renewed certificate; open ones keep theirs.
    fn reload_tls(&mut self, tls: TlsReload) {
        self.quic.replace_config(tls.quiche);
        self.tcp.replace_tls(tls.rustls);
        self.quic_app.host.certificate_changed(tls.cert_sha256_hex);
        tracing::info!(shard = self.id, "certificate reloaded");
    }

    fn begin_drain(&mut self, grace: Duration, now: Now) {
        if self.drain_deadline_ms.is_some() {
            return;
        }
        tracing::info!(shard = self.id, grace_ms = grace.as_millis() as u64, "draining");
        self.drain_deadline_ms = Some(now.monotonic_ms + grace.as_millis() as u64);
        self.quic.stop_accepting();
        self.tcp.begin_drain(self.poll.registry());
        self.quic_app.begin_drain();
        self.quic.mark_all_dirty();
    }

    fn finished(&mut self, now: Now) -> bool {
        let Some(deadline) = self.drain_deadline_ms else { return false };
        let idle = self.quic.connection_count() == 0 && self.tcp.connection_count() == 0;
        if idle {
            return true;
        }
        if now.monotonic_ms >= deadline {
            tracing::info!(
                shard = self.id,
                quic = self.quic.connection_count(),
                tcp = self.tcp.connection_count(),
                "drain deadline: closing the rest"
            );
            self.quic.close_all(0, b"server shutting down");
            self.tcp.close_all(self.poll.registry(), &mut self.quic_app.host);
            self.drive(now);
            let _ = self.udp.flush();
            return true;
        }
        false
    }
}

/// Sends a datagram to the shard its connection ID names.
fn forward(
    peers: &[MailboxSender<ShardMessage>],
    from_shard: u16,
    shard: u16,
    packet: &[u8],
    from: SocketAddr,
) {
    let Some(peer) = peers.get(usize::from(shard)) else { return };
    if peer.send(ShardMessage::Datagram { packet: packet.to_vec(), from }).is_err() {
        tracing::debug!(from_shard, shard, "forward dropped: mailbox full");
    }
}

/// Queues frames on one of this shard's sessions, if the player they are
/// for still holds it. Returns false when they were not delivered.
fn deliver_local<H: Host>(
    quic: &mut QuicEndpoint<WtServer<H>>,
    tcp: &mut TcpEndpoint,
    host: &H,
    delivery: Delivery,
) -> bool {
    if host.session_player(delivery.to) != Some(delivery.player_id) {
        return false;
    }
    let Delivery { to, frames, reliable, .. } = delivery;
    let send = |session: &mut crate::proto::session::Session| {
        if reliable {
            session.send_encoded(&frames)
        } else {
            session.send_unreliable_encoded(&frames)
        }
    };
    let sent = match to.transport {
        Transport::WebTransport => {
            quic.touch(to.connection, |state| state.established_session().map(send)).flatten()
        }
        Transport::WebSocket => tcp.touch_session(to.connection, send),
    };
    sent.is_some()
}

/// Sends a host message to another shard's mailbox.
fn send_host(
    peers: &[MailboxSender<ShardMessage>],
    from_shard: u16,
    shard: u16,
    message: HostMessage,
) {
    let Some(peer) = peers.get(usize::from(shard)) else { return };
    if peer.send(ShardMessage::Host(message)).is_err() {
        tracing::warn!(from_shard, shard, "host message dropped: mailbox full");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tick lateness lands in the bucket whose bound covers it, later than
    /// every bound in the last one, and the maximum is kept.
    #[test]
    fn tick_lateness_is_counted_by_bucket() {
        let stats = ShardStats::default();
        for late_ms in [0, 0, 3, 4, 5, 64, 65, 1_000] {
            stats.record_tick_lateness(late_ms);
        }
        let counts: Vec<u64> =
            stats.tick_late.iter().map(|count| count.load(Ordering::Relaxed)).collect();
        // Bounds:      0  1  2  4  8 16 32 64 later
        assert_eq!(counts, [2, 0, 0, 2, 1, 0, 0, 1, 2]);
        assert_eq!(stats.tick_late_max_ms.load(Ordering::Relaxed), 1_000);
        assert_eq!(stats.to_json()["tick_late_ms"]["counts"][8], 2);
    }
}
