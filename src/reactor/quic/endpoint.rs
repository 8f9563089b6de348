//! One shard's QUIC endpoint: routes datagrams to quiche connections,
//! accepts new ones (version negotiation, stateless retry, limits), sends
//! their packets in GSO trains, and keeps their timers on the shard's wheel.
//!
//! It is the shape of quiche's example server with its two weaknesses fixed:
//! timers live on a wheel instead of a scan of every connection, and only
//! connections with something to do are visited when sending.
//!
//! What a connection carries (HTTP/3, WebTransport, the Ludus session) is
//! the [`QuicApp`]'s business; the endpoint only moves packets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use slab::Slab;

use super::cid::{shard_of, CidIssuer, LOCAL_CID_LEN};
use super::retry::RetryTokens;
use crate::proto::session::Now;
use crate::reactor::timer::{TimerKey, TimerWheel};
use crate::reactor::udp::{Flush, UdpIo, SEND_BYTES_MAX};

/// The timer kind of quiche's own timers (loss detection, idle, ...).
pub const TIMER_QUIC: u8 = 0;
/// The timer kind the application may use for its own deadlines.
pub const TIMER_APP: u8 = 1;
/// The timer kind of pacing: sending resumes when quiche's pacer allows.
pub const TIMER_PACE: u8 = 2;
/// A packet quiche schedules less than this far ahead goes out now: waiting
/// for it would cost a loop turn and a timer for no smoother traffic.
pub const PACING_SLACK: std::time::Duration = std::time::Duration::from_millis(1);
/// Stateless packets (retry, version negotiation) held for one flush.
pub const STATELESS_QUEUE_MAX: usize = 256;
/// The smallest client Initial datagram QUIC allows (RFC 9000 section 14.1).
pub const MIN_INITIAL_DATAGRAM: usize = 1_200;

/// Endpoint settings, from the server's configuration.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Connections this shard accepts at once; more are dropped and counted.
    pub max_connections: usize,
    /// Require address validation by stateless retry before accepting.
    pub retry: bool,
}

/// The application riding on QUIC connections.
pub trait QuicApp {
    /// Per-connection application state.
    type Connection;

    /// A connection was accepted.
    /// A connection was accepted into slab slot `index` (stable for its life).
    fn accept(&mut self, peer: SocketAddr, now: Now, index: usize) -> Self::Connection;
    /// Packets arrived or a timer fired: read streams and datagrams, write
    /// answers. Called with the connection after quiche processed them.
    fn process(&mut self, quic: &mut quiche::Connection, state: &mut Self::Connection, now: Now);
    /// The application's own deadline for this connection, if any.
    fn timeout(&self, state: &Self::Connection) -> Option<u64>;
    /// The connection is gone (closed, timed out, or the endpoint shut down).
    fn closed(&mut self, quic: &quiche::Connection, state: Self::Connection);
    /// The server is shutting down: tell every client (GOAWAY, session close).
    fn begin_drain(&mut self);
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointCounters {
    pub packets_in: u64,
    pub packets_out: u64,
    pub accepted: u64,
    pub closed: u64,
    pub retries_sent: u64,
    pub version_negotiations: u64,
    pub forwarded: u64,
    pub dropped_unparseable: u64,
    pub dropped_unknown: u64,
    pub dropped_bad_token: u64,
    pub dropped_full: u64,
    pub dropped_short_initial: u64,
    pub recv_errors: u64,
    /// Times quiche's pacer held a connection's sending back.
    pub paced: u64,
}

/// What became of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// Processed here (or dropped, and counted).
    Handled,
    /// It belongs to another shard's connection: forward it there.
    Forward(u16),
}

struct Connection<S> {
    quic: quiche::Connection,
    app: S,
    /// Queued in `dirty` for processing and sending.
    dirty: bool,
    /// The connection ID this server issued for it (the only one, since
    /// no further IDs are offered).
    scid: [u8; LOCAL_CID_LEN],
    /// The client's first destination CID, mapped until the handshake ends.
    client_dcid: Option<Vec<u8>>,
    /// quiche's pacer asked to wait: nothing more is sent before this
    /// (monotonic ms), when the pacing timer fires.
    paced_until_ms: Option<u64>,
}

pub struct QuicEndpoint<A: QuicApp> {
    shard: u16,
    shard_count: u16,
    config: EndpointConfig,
    quiche_config: quiche::Config,
    local: SocketAddr,
    issuer: CidIssuer,
    tokens: Arc<RetryTokens>,
    connections: Slab<Connection<A::Connection>>,
    by_cid: HashMap<[u8; LOCAL_CID_LEN], usize>,
    by_client_dcid: HashMap<Vec<u8>, usize>,
    dirty: Vec<usize>,
    stateless: Vec<(Vec<u8>, SocketAddr)>,
    timers: TimerWheel,
    due_timers: Vec<TimerKey>,
    accepting: bool,
    /// A packet that could not join the GSO train it was written into.
    leftover: Vec<u8>,
    counters: EndpointCounters,
}

impl<A: QuicApp> QuicEndpoint<A> {
    pub fn new(
        shard: u16,
        shard_count: u16,
        config: EndpointConfig,
        quiche_config: quiche::Config,
        local: SocketAddr,
        tokens: Arc<RetryTokens>,
        now: Now,
    ) -> QuicEndpoint<A> {
        assert!(shard < shard_count);
        QuicEndpoint {
            shard,
            shard_count,
            config,
            quiche_config,
            local,
            issuer: CidIssuer::new(shard),
            tokens,
            connections: Slab::new(),
            by_cid: HashMap::new(),
            by_client_dcid: HashMap::new(),
            dirty: Vec::new(),
            stateless: Vec::new(),
            timers: TimerWheel::new(now.monotonic_ms),
            due_timers: Vec::new(),
            accepting: true,
            leftover: Vec::with_capacity(SEND_BYTES_MAX),
            counters: EndpointCounters::default(),
        }
    }

    pub fn counters(&self) -> EndpointCounters {
        self.counters
    }

    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// New connections use `config` (a renewed certificate).
    pub fn replace_config(&mut self, config: quiche::Config) {
        self.quiche_config = config;
    }

    /// New connections are refused from now on (shutdown).
    pub fn stop_accepting(&mut self) {
        self.accepting = false;
    }

    /// Milliseconds until the next timer, if any.
    pub fn timeout_ms(&self, now: Now) -> Option<u64> {
        self.timers.timeout_ms(now.monotonic_ms)
    }

    /// Fires due timers: quiche's (loss detection, idle) and the application's.
    pub fn handle_timers(&mut self, now: Now) {
        let mut due = std::mem::take(&mut self.due_timers);
        self.timers.expire(now.monotonic_ms, |key, _| due.push(key));
        for key in due.drain(..) {
            self.handle_timer(key);
        }
        self.due_timers = due;
    }

    /// Handles one received datagram (modified in place: QUIC decrypts it).
    pub fn handle_datagram(
        &mut self,
        packet: &mut [u8],
        from: SocketAddr,
        now: Now,
        app: &mut A,
    ) -> Routing {
        self.counters.packets_in += 1;
        // Short headers (every packet after the handshake) carry our
        // 16-byte CID right after the first byte: route them without
        // quiche's header parser, which copies the CID onto the heap.
        let index = match short_header_dcid(packet) {
            Some(dcid) => match self.route(&dcid) {
                Ok(Some(index)) => index,
                Ok(None) => {
                    self.counters.dropped_unknown += 1;
                    return Routing::Handled;
                }
                Err(shard) => return Routing::Forward(shard),
            },
            None => match self.route_long(packet, from, now, app) {
                Ok(Some(index)) => index,
                Ok(None) => return Routing::Handled,
                Err(shard) => return Routing::Forward(shard),
            },
        };
        let connection = &mut self.connections[index];
        let info = quiche::RecvInfo { from, to: self.local };
        if let Err(error) = connection.quic.recv(packet, info) {
            if error != quiche::Error::Done {
                self.counters.recv_errors += 1;
                tracing::debug!(%from, %error, "QUIC recv failed");
            }
        }
        self.mark_dirty(index);
        Routing::Handled
    }

    /// The connection a destination CID names here, or `Err(shard)` when it
    /// names another shard.
    fn route(&mut self, dcid: &[u8]) -> Result<Option<usize>, u16> {
        if let Some(shard) = shard_of(dcid) {
            if shard != self.shard && shard < self.shard_count {
                self.counters.forwarded += 1;
                return Err(shard);
            }
        }
        Ok(self.lookup(dcid))
    }

    /// Long headers (handshake packets): parsed by quiche; unknown ones may
    /// start a connection.
    fn route_long(
        &mut self,
        packet: &mut [u8],
        from: SocketAddr,
        now: Now,
        app: &mut A,
    ) -> Result<Option<usize>, u16> {
        let header = match quiche::Header::from_slice(packet, LOCAL_CID_LEN) {
            Ok(header) => header,
            Err(_) => {
                self.counters.dropped_unparseable += 1;
                return Ok(None);
            }
        };
        if let Some(index) = self.route(&header.dcid)? {
            return Ok(Some(index));
        }
        Ok(self.accept(&header, packet.len(), from, now, app))
    }

    fn lookup(&self, dcid: &[u8]) -> Option<usize> {
        if let Ok(key) = <[u8; LOCAL_CID_LEN]>::try_from(dcid) {
            if let Some(index) = self.by_cid.get(&key) {
                return Some(*index);
            }
        }
        self.by_client_dcid.get(dcid).copied()
    }

    /// Accepts a new connection for an Initial packet, or answers it
    /// statelessly (version negotiation, retry), or drops it.
    fn accept(
        &mut self,
        header: &quiche::Header<'_>,
        datagram_len: usize,
        from: SocketAddr,
        now: Now,
        app: &mut A,
    ) -> Option<usize> {
        if header.ty != quiche::Type::Initial {
            self.counters.dropped_unknown += 1;
            return None;
        }
        if !quiche::version_is_supported(header.version) {
            self.negotiate_version(header, from);
            return None;
        }
        if datagram_len < MIN_INITIAL_DATAGRAM {
            self.counters.dropped_short_initial += 1;
            return None;
        }
        if !self.accepting || self.connections.len() >= self.config.max_connections {
            self.counters.dropped_full += 1;
            return None;
        }
        let (scid, odcid) = if self.config.retry {
            self.validate_address(header, from, now)?
        } else {
            (self.issuer.issue(), None)
        };
        let scid_ref = quiche::ConnectionId::from_ref(&scid);
        let odcid_ref = odcid.as_deref().map(quiche::ConnectionId::from_ref);
        let quic = match quiche::accept(
            &scid_ref,
            odcid_ref.as_ref(),
            self.local,
            from,
            &mut self.quiche_config,
        ) {
            Ok(quic) => quic,
            Err(error) => {
                tracing::debug!(%from, %error, "QUIC accept failed");
                self.counters.recv_errors += 1;
                return None;
            }
        };
        let client_dcid = (!self.config.retry).then(|| header.dcid.to_vec());
        let state = app.accept(from, now, self.connections.vacant_key());
        let index = self.connections.insert(Connection {
            quic,
            app: state,
            dirty: false,
            scid,
            client_dcid: client_dcid.clone(),
            paced_until_ms: None,
        });
        self.by_cid.insert(scid, index);
        if let Some(dcid) = client_dcid {
            self.by_client_dcid.insert(dcid, index);
        }
        self.counters.accepted += 1;
        Some(index)
    }

    /// With retry on: answers a token-less Initial with a Retry and returns
    /// None; for a valid token returns the connection IDs to accept with.
    fn validate_address(
        &mut self,
        header: &quiche::Header<'_>,
        from: SocketAddr,
        now: Now,
    ) -> Option<([u8; LOCAL_CID_LEN], Option<Vec<u8>>)> {
        let now_s = now.unix_us / 1_000_000;
        let token = header.token.as_deref().unwrap_or_default();
        if token.is_empty() {
            self.send_retry(header, from, now_s);
            return None;
        }
        let odcid = match self.tokens.validate(from, token, now_s) {
            Ok(odcid) => odcid.to_vec(),
            Err(error) => {
                tracing::debug!(%from, %error, "retry token refused");
                self.counters.dropped_bad_token += 1;
                return None;
            }
        };
        // After a retry the client addresses us by the CID the Retry chose,
        // which names this shard.
        let scid = match <[u8; LOCAL_CID_LEN]>::try_from(&header.dcid[..]) {
            Ok(scid) if shard_of(&scid) == Some(self.shard) => scid,
            _ => {
                self.counters.dropped_bad_token += 1;
                return None;
            }
        };
        Some((scid, Some(odcid)))
    }

    fn send_retry(&mut self, header: &quiche::Header<'_>, from: SocketAddr, now_s: u64) {
        if self.stateless.len() >= STATELESS_QUEUE_MAX {
            return;
        }
        let new_scid = self.issuer.issue();
        let token = self.tokens.mint(from, &header.dcid, now_s);
        let mut out = vec![0u8; 1_350];
        let new_scid_ref = quiche::ConnectionId::from_ref(&new_scid);
        match quiche::retry(
            &header.scid,
            &header.dcid,
            &new_scid_ref,
            &token,
            header.version,
            &mut out,
        ) {
            Ok(len) => {
                out.truncate(len);
                self.stateless.push((out, from));
                self.counters.retries_sent += 1;
            }
            Err(error) => tracing::debug!(%from, %error, "retry failed"),
        }
    }

    fn negotiate_version(&mut self, header: &quiche::Header<'_>, from: SocketAddr) {
        if self.stateless.len() >= STATELESS_QUEUE_MAX {
            return;
        }
        let mut out = vec![0u8; 1_350];
        if let Ok(len) = quiche::negotiate_version(&header.scid, &header.dcid, &mut out) {
            out.truncate(len);
            self.stateless.push((out, from));
            self.counters.version_negotiations += 1;
        }
    }

    fn mark_dirty(&mut self, index: usize) {
        let connection = &mut self.connections[index];
        if !connection.dirty {
            connection.dirty = true;
            self.dirty.push(index);
        }
    }

    /// Timer `key` fired.
    fn handle_timer(&mut self, key: TimerKey) {
        let index = key.owner as usize;
        if let Some(connection) = self.connections.get_mut(index) {
            match key.kind {
                TIMER_QUIC => connection.quic.on_timeout(),
                TIMER_PACE => connection.paced_until_ms = None,
                _ => {}
            }
            self.mark_dirty(index);
        }
    }

    /// Marks every connection for processing (e.g. after the application
    /// queued data for them from outside a packet or timer event).
    pub fn mark_all_dirty(&mut self) {
        let indices: Vec<usize> = self.connections.iter().map(|(index, _)| index).collect();
        indices.into_iter().for_each(|index| self.mark_dirty(index));
    }

    /// Lets the application process every connection that had packets or
    /// timers, then sends what they have to send. Returns `Flush::Blocked`
    /// when the socket is full (wait for WRITABLE, then call again).
    pub fn drive(&mut self, udp: &mut UdpIo, app: &mut A, now: Now) -> Flush {
        if self.flush_stateless(udp) == Flush::Blocked {
            return Flush::Blocked;
        }
        let mut dirty = std::mem::take(&mut self.dirty);
        let mut blocked_at = None;
        for (position, index) in dirty.iter().enumerate() {
            let Some(connection) = self.connections.get_mut(*index) else { continue };
            connection.dirty = false;
            app.process(&mut connection.quic, &mut connection.app, now);
            if self.send(*index, udp, now) == Flush::Blocked {
                blocked_at = Some(position);
                break;
            }
            self.after_send(*index, app, now);
        }
        if let Some(position) = blocked_at {
            // Whatever was not sent stays dirty for the next WRITABLE.
            for index in &dirty[position..] {
                if let Some(connection) = self.connections.get_mut(*index) {
                    connection.dirty = false;
                    self.mark_dirty(*index);
                }
            }
            return Flush::Blocked;
        }
        // Keep the allocation; connections marked meanwhile stay queued.
        dirty.clear();
        dirty.append(&mut self.dirty);
        self.dirty = dirty;
        udp.flush()
    }

    fn flush_stateless(&mut self, udp: &mut UdpIo) -> Flush {
        while let Some((packet, destination)) = self.stateless.pop() {
            if udp.push(destination, &packet).is_err() {
                if udp.flush() == Flush::Blocked {
                    self.stateless.push((packet, destination));
                    return Flush::Blocked;
                }
                let _ = udp.push(destination, &packet);
            }
            self.counters.packets_out += 1;
        }
        Flush::Done
    }

    /// Writes the connection's packets into the UDP queue, coalescing
    /// equal-size packets to one peer into GSO trains.
    fn send(&mut self, index: usize, udp: &mut UdpIo, now: Now) -> Flush {
        let max_segments = udp.max_gso_segments();
        let connection = &mut self.connections[index];
        if connection.paced_until_ms.is_some() {
            return Flush::Done;
        }
        loop {
            if udp.is_full() && udp.flush() == Flush::Blocked {
                return Flush::Blocked;
            }
            let mtu = connection.quic.max_send_udp_payload_size();
            let buffer = udp.next_buffer().expect("a flushed queue has a free buffer");
            let train =
                fill_train(&mut connection.quic, buffer, mtu, max_segments, &mut self.leftover);
            if train.length == 0 {
                return Flush::Done;
            }
            // quiche said Done: another send() would only say it again (and
            // allocate while doing so).
            let drained = train.drained;
            self.counters.packets_out += train.length.div_ceil(train.segment) as u64;
            udp.commit(train.destination, train.length, train.segment);
            if let Some(wait) = train.pace_wait {
                // Resume when the pacer allows; the packet that asked to
                // wait went out up to PACING_SLACK + `wait` early, the rest
                // stay queued in quiche.
                let deadline = now.monotonic_ms + (wait.as_micros() as u64).div_ceil(1_000);
                connection.paced_until_ms = Some(deadline);
                let key = TimerKey { owner: index as u32, kind: TIMER_PACE };
                let _ = self.timers.arm(key, deadline);
                self.counters.paced += 1;
            }
            if let Some(destination) = train.leftover_to {
                if udp.is_full() && udp.flush() == Flush::Blocked {
                    // The packet is lost like any dropped datagram; QUIC
                    // recovers it.
                    self.leftover.clear();
                    return Flush::Blocked;
                }
                let _ = udp.push(destination, &self.leftover);
                self.counters.packets_out += 1;
                self.leftover.clear();
            }
            if drained || train.pace_wait.is_some() {
                return Flush::Done;
            }
        }
    }

    /// Re-arms timers and removes the connection if it closed.
    fn after_send(&mut self, index: usize, app: &mut A, now: Now) {
        let connection = &self.connections[index];
        if connection.quic.is_closed() {
            self.remove(index, app);
            return;
        }
        if connection.client_dcid.is_some() && connection.quic.is_established() {
            let dcid = self.connections[index].client_dcid.take().expect("checked");
            self.by_client_dcid.remove(&dcid);
        }
        let connection = &self.connections[index];
        let timers = &mut self.timers;
        let owner = index as u32;
        match connection.quic.timeout() {
            Some(timeout) => {
                let deadline = now.monotonic_ms + timeout.as_millis() as u64;
                let _ = timers.arm(TimerKey { owner, kind: TIMER_QUIC }, deadline);
            }
            None => timers.cancel(TimerKey { owner, kind: TIMER_QUIC }),
        }
        match app.timeout(&connection.app) {
            Some(deadline) => {
                let _ = timers.arm(TimerKey { owner, kind: TIMER_APP }, deadline);
            }
            None => timers.cancel(TimerKey { owner, kind: TIMER_APP }),
        }
    }

    fn remove(&mut self, index: usize, app: &mut A) {
        let connection = self.connections.remove(index);
        self.by_cid.remove(&connection.scid);
        if let Some(dcid) = &connection.client_dcid {
            self.by_client_dcid.remove(dcid);
        }
        for kind in [TIMER_QUIC, TIMER_APP, TIMER_PACE] {
            self.timers.cancel(TimerKey { owner: index as u32, kind });
        }
        self.counters.closed += 1;
        app.closed(&connection.quic, connection.app);
    }

    /// Closes every connection with an application error (shutdown).
    pub fn close_all(&mut self, error_code: u64, reason: &[u8]) {
        let indices: Vec<usize> = self.connections.iter().map(|(index, _)| index).collect();
        for index in indices {
            let _ = self.connections[index].quic.close(true, error_code, reason);
            self.mark_dirty(index);
        }
    }

    /// Runs `visit` on one connection's application state and queues the
    /// connection for processing (what `visit` queued gets sent this turn).
    pub fn touch<R>(
        &mut self,
        index: usize,
        visit: impl FnOnce(&mut A::Connection) -> R,
    ) -> Option<R> {
        let result = visit(&mut self.connections.get_mut(index)?.app);
        self.mark_dirty(index);
        Some(result)
    }

    /// The application state of every connection, for shard-wide work.
    pub fn for_each_app(
        &mut self,
        mut visit: impl FnMut(&mut quiche::Connection, &mut A::Connection),
    ) {
        for (_, connection) in self.connections.iter_mut() {
            visit(&mut connection.quic, &mut connection.app);
        }
    }
}

/// The destination CID of a short-header packet (first bit 0), if the
/// packet is long enough to hold one of our CIDs.
fn short_header_dcid(packet: &[u8]) -> Option<[u8; LOCAL_CID_LEN]> {
    let first = *packet.first()?;
    if first & 0x80 != 0 {
        return None;
    }
    packet.get(1..1 + LOCAL_CID_LEN)?.try_into().ok()
}

/// A GSO train written into a UDP buffer.
struct Train {
    length: usize,
    segment: usize,
    destination: SocketAddr,
    /// Set when one more packet was produced that could not join the train
    /// (larger than the segment size, or for another path); its bytes are in
    /// the leftover buffer.
    leftover_to: Option<SocketAddr>,
    /// quiche scheduled the train's last packet this far in the future:
    /// stop sending until then.
    pace_wait: Option<std::time::Duration>,
    /// quiche had nothing more to send.
    drained: bool,
}

/// Fills `buffer` with up to `max_segments` packets of one size for one
/// destination (the last may be shorter).
fn fill_train(
    quic: &mut quiche::Connection,
    buffer: &mut [u8],
    mtu: usize,
    max_segments: usize,
    leftover: &mut Vec<u8>,
) -> Train {
    let mut train = Train {
        pace_wait: None,
        drained: false,
        length: 0,
        segment: 0,
        destination: SocketAddr::from(([0, 0, 0, 0], 0)),
        leftover_to: None,
    };
    let capacity = SEND_BYTES_MAX.min(buffer.len());
    let mut segments = 0;
    while segments < max_segments && train.length + mtu <= capacity {
        let start = train.length;
        let (written, info) = match quic.send(&mut buffer[start..start + mtu]) {
            Ok(sent) => sent,
            Err(quiche::Error::Done) => {
                train.drained = true;
                break;
            }
            Err(error) => {
                tracing::debug!(%error, "QUIC send failed");
                break;
            }
        };
        if segments == 0 {
            train.segment = written;
            train.destination = info.to;
        } else if written > train.segment || info.to != train.destination {
            leftover.clear();
            leftover.extend_from_slice(&buffer[start..start + written]);
            train.leftover_to = Some(info.to);
            break;
        }
        train.length += written;
        segments += 1;
        let wait = info.at.saturating_duration_since(std::time::Instant::now());
        if wait > PACING_SLACK {
            train.pace_wait = Some(wait);
            break;
        }
        // A shorter packet can only be the last of a train.
        if written < train.segment {
            break;
        }
    }
    train.segment = train.segment.max(1);
    train
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoApp;

    impl QuicApp for NoApp {
        type Connection = ();
        fn accept(&mut self, _peer: SocketAddr, _now: Now, _index: usize) {}
        fn process(&mut self, _quic: &mut quiche::Connection, _state: &mut (), _now: Now) {}
        fn timeout(&self, _state: &()) -> Option<u64> {
            None
        }
        fn closed(&mut self, _quic: &quiche::Connection, _state: ()) {}
        fn begin_drain(&mut self) {}
    }

    const NOW: Now = Now { monotonic_ms: 1_000, unix_us: 1_700_000_000_000_000 };

    fn server() -> SocketAddr {
        "127.0.0.1:4433".parse().unwrap()
    }

    fn client_address() -> SocketAddr {
        "127.0.0.1:50000".parse().unwrap()
    }

    fn endpoint(shard: u16, shard_count: u16, retry: bool) -> QuicEndpoint<NoApp> {
        let mut config = quiche::Config::new(quiche::PROTOCOL_VERSION).unwrap();
        config.set_application_protos(&[b"h3"]).unwrap();
        let endpoint_config = EndpointConfig { max_connections: 8, retry };
        let tokens = Arc::new(RetryTokens::new());
        QuicEndpoint::new(shard, shard_count, endpoint_config, config, server(), tokens, NOW)
    }

    /// A real client Initial, padded to 1200 bytes as QUIC requires.
    fn client() -> (quiche::Connection, Vec<u8>) {
        let mut config = quiche::Config::new(quiche::PROTOCOL_VERSION).unwrap();
        config.set_application_protos(&[b"h3"]).unwrap();
        config.verify_peer(false);
        let scid = quiche::ConnectionId::from_ref(&[7; 8]);
        let mut connection =
            quiche::connect(Some("localhost"), &scid, client_address(), server(), &mut config)
                .unwrap();
        let mut out = vec![0u8; 1_500];
        let (length, _) = connection.send(&mut out).unwrap();
        out.truncate(length);
        (connection, out)
    }

    #[test]
    fn a_packet_for_another_shards_connection_is_forwarded_to_it() {
        let mut endpoint = endpoint(0, 2, true);
        let mut packet = vec![0x40];
        packet.extend_from_slice(&CidIssuer::new(1).issue());
        packet.extend_from_slice(&[0; 30]);
        assert_eq!(
            endpoint.handle_datagram(&mut packet, client_address(), NOW, &mut NoApp),
            Routing::Forward(1)
        );
        // A shard id past the shard count is nobody's: dropped, not forwarded.
        let mut endpoint = super::QuicEndpoint::<NoApp>::new(
            0,
            1,
            EndpointConfig { max_connections: 8, retry: true },
            quiche::Config::new(quiche::PROTOCOL_VERSION).unwrap(),
            server(),
            Arc::new(RetryTokens::new()),
            NOW,
        );
        let routing = endpoint.handle_datagram(&mut packet, client_address(), NOW, &mut NoApp);
        assert_eq!(routing, Routing::Handled);
        assert_eq!(endpoint.counters().dropped_unknown, 1);
    }

    #[test]
    fn an_unknown_version_gets_version_negotiation_and_no_state() {
        let mut endpoint = endpoint(0, 1, true);
        let (_client, mut initial) = client();
        initial[1..5].copy_from_slice(&0x1a2a_3a4a_u32.to_be_bytes());
        endpoint.handle_datagram(&mut initial, client_address(), NOW, &mut NoApp);
        assert_eq!(endpoint.counters().version_negotiations, 1);
        assert_eq!(endpoint.connection_count(), 0);
        assert_eq!(endpoint.stateless.len(), 1);
    }

    #[test]
    fn retry_then_a_valid_token_accepts_and_a_short_initial_is_dropped() {
        let mut endpoint = endpoint(0, 1, true);
        let (mut client, initial) = client();
        let mut short = initial[..600].to_vec();
        endpoint.handle_datagram(&mut short, client_address(), NOW, &mut NoApp);
        assert_eq!(endpoint.counters().dropped_short_initial, 1);

        let mut first = initial.clone();
        endpoint.handle_datagram(&mut first, client_address(), NOW, &mut NoApp);
        assert_eq!((endpoint.counters().retries_sent, endpoint.connection_count()), (1, 0));
        let (mut retry, _) = endpoint.stateless.pop().unwrap();
        let info = quiche::RecvInfo { from: server(), to: client_address() };
        client.recv(&mut retry, info).unwrap();
        let mut out = vec![0u8; 1_500];
        let (length, _) = client.send(&mut out).unwrap();
        let mut second = out[..length].to_vec();
        endpoint.handle_datagram(&mut second, client_address(), NOW, &mut NoApp);
        assert_eq!((endpoint.counters().accepted, endpoint.connection_count()), (1, 1));

        // The same token from another address is refused.
        let mut endpoint_b = self::endpoint(0, 1, true);
        endpoint_b.tokens = Arc::clone(&endpoint.tokens);
        let mut replayed = out[..length].to_vec();
        let elsewhere: SocketAddr = "127.0.0.2:50000".parse().unwrap();
        endpoint_b.handle_datagram(&mut replayed, elsewhere, NOW, &mut NoApp);
        assert_eq!(
            (endpoint_b.counters().dropped_bad_token, endpoint_b.connection_count()),
            (1, 0)
        );
    }

    #[test]
    fn the_connection_limit_refuses_new_connections() {
        let mut endpoint = endpoint(0, 1, false);
        endpoint.config.max_connections = 1;
        for expected in [1, 1] {
            let (_client, mut initial) = client();
            endpoint.handle_datagram(&mut initial, client_address(), NOW, &mut NoApp);
            assert_eq!(endpoint.connection_count(), expected);
        }
        assert_eq!(endpoint.counters().dropped_full, 1);
    }
}
