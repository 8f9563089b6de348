//! A WebTransport client transport for the Ludus protocol: a
//! [`WtConnection`] (quiche, HTTP/3, the session) on its own connected,
//! non-blocking mio `UdpSocket`.
//!
//! Certificates: the client pins the server's certificate by its SHA-256,
//! exactly as a browser's `serverCertificateHashes` does (see
//! [`super::h3`] and [`super::tls`]). quiche's own verification is off;
//! a certificate with another hash closes the connection before any
//! application data is sent, and the failure is
//! [`ClientError::CertificateHash`].
//!
//! See [`crate::client`] for the readiness contract. One quiche
//! [`quiche::Config`] (which holds the TLS context) should be shared by all
//! clients of a thread: build it once with [`quiche_config`].

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use mio::net::UdpSocket;

use super::h3::{WtConnection, WtRequest, WtTimings};
use super::session::{Channel, ClientConfig, ClientEvent, ClientSession, Now, SendError};
use super::tls::Trust;
use super::{ClientError, WEBTRANSPORT_PATH};
use crate::proto::wire::WireMessage;

/// Largest UDP payload we send: the server's own choice, safe for 1500-byte
/// paths.
pub const MAX_SEND_PAYLOAD: usize = 1_350;
/// Largest UDP payload we accept.
pub const MAX_RECV_PAYLOAD: usize = 1_500;
/// QUIC idle timeout.
pub const IDLE_TIMEOUT_MS: u64 = 30_000;
/// Connection and per-stream receive windows.
pub const MAX_DATA: u64 = 16 << 20;
pub const MAX_STREAM_DATA: u64 = 1 << 20;
/// Streams the server may open: its three HTTP/3 streams and room for
/// WebTransport streams.
pub const MAX_PEER_STREAMS: u64 = 16;
/// Datagrams queued each way inside quiche.
pub const DATAGRAM_QUEUE: usize = 1_024;
/// Socket errors (queued ICMP reports) skipped per receive call.
const MAX_RECEIVE_ERRORS: usize = 8;

/// quiche's configuration for WebTransport clients: ALPN h3, datagrams, and
/// every limit set (quiche's defaults are zero). Peer verification is off:
/// the certificate is checked by hash after the handshake.
pub fn quiche_config() -> Result<quiche::Config, ClientError> {
    let quic = |error: quiche::Error| ClientError::Quic(error.to_string());
    let mut config = quiche::Config::new(quiche::PROTOCOL_VERSION).map_err(quic)?;
    config.set_application_protos(&[b"h3"]).map_err(quic)?;
    config.verify_peer(false);
    config.set_max_idle_timeout(IDLE_TIMEOUT_MS);
    config.set_max_recv_udp_payload_size(MAX_RECV_PAYLOAD);
    config.set_max_send_udp_payload_size(MAX_SEND_PAYLOAD);
    config.set_initial_max_data(MAX_DATA);
    config.set_initial_max_stream_data_bidi_local(MAX_STREAM_DATA);
    config.set_initial_max_stream_data_bidi_remote(MAX_STREAM_DATA);
    config.set_initial_max_stream_data_uni(MAX_STREAM_DATA);
    config.set_initial_max_streams_bidi(MAX_PEER_STREAMS);
    config.set_initial_max_streams_uni(MAX_PEER_STREAMS);
    config.enable_dgram(true, DATAGRAM_QUEUE, DATAGRAM_QUEUE);
    config.set_disable_active_migration(true);
    Ok(config)
}

/// How a WebTransport client connects.
#[derive(Debug, Clone)]
pub struct WtOptions {
    /// Which certificate to accept: [`Trust::CertificateHash`] (a root PEM
    /// is not supported over QUIC here).
    pub trust: Trust,
    /// Host name for SNI and `:authority`; the address when absent.
    pub server_name: Option<String>,
    /// `:path`, `/wt` by default.
    pub path: String,
    /// `origin` header, as browsers send.
    pub origin: Option<String>,
    pub session: ClientConfig,
    pub timings: WtTimings,
}

impl WtOptions {
    pub fn new(trust: Trust) -> WtOptions {
        WtOptions {
            trust,
            server_name: None,
            path: WEBTRANSPORT_PATH.to_owned(),
            origin: None,
            session: ClientConfig::default(),
            timings: WtTimings { handshake_timeout_ms: 10_000, close_linger_ms: 100 },
        }
    }
}

/// One WebTransport connection carrying one Ludus session.
pub struct WtClient {
    socket: UdpSocket,
    peer: SocketAddr,
    local: SocketAddr,
    connection: WtConnection,
    /// The packet being sent; kept when the socket would block.
    send_buffer: Box<[u8; MAX_SEND_PAYLOAD]>,
    unsent_len: usize,
    deadline_us: Option<u64>,
}

impl std::fmt::Debug for WtClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WtClient")
            .field("peer", &self.peer)
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

impl WtClient {
    /// Starts connecting to `peer` (the server's UDP address) from a fresh
    /// ephemeral port. The first packets go out on the first `flush` (or
    /// readiness call). Queue Hello on [`WtClient::session_mut`] right away
    /// if you like: it leaves once the session is up.
    pub fn connect(
        peer: SocketAddr,
        options: &WtOptions,
        config: &mut quiche::Config,
        now: Now,
    ) -> Result<WtClient, ClientError> {
        let Trust::CertificateHash(expected_sha256) = &options.trust else {
            return Err(ClientError::Tls(
                "WebTransport takes a certificate hash, not roots".into(),
            ));
        };
        let unspecified = match peer {
            SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        };
        let socket = UdpSocket::bind(unspecified)?;
        // Connected: the kernel filters other senders, reports ICMP errors,
        // and names the local address quiche's path is keyed on.
        socket.connect(peer)?;
        let local = socket.local_addr()?;
        let mut scid = [0u8; quiche::MAX_CONN_ID_LEN];
        super::fill_random(&mut scid);
        let scid = quiche::ConnectionId::from_ref(&scid);
        let host = options.server_name.clone().unwrap_or_else(|| peer.ip().to_string());
        // SNI carries names only (RFC 6066 section 3).
        let sni = options.server_name.as_deref();
        let quic = quiche::connect(sni, &scid, local, peer, config)
            .map_err(|error| ClientError::Quic(error.to_string()))?;
        let authority = match host.contains(':') {
            true => format!("[{host}]:{}", peer.port()),
            false => format!("{host}:{}", peer.port()),
        };
        let request =
            WtRequest { authority, path: options.path.clone(), origin: options.origin.clone() };
        let connection = WtConnection::new(
            quic,
            *expected_sha256,
            request,
            options.session.clone(),
            options.timings,
            now,
        );
        Ok(WtClient {
            socket,
            peer,
            local,
            connection,
            send_buffer: Box::new([0; MAX_SEND_PAYLOAD]),
            unsent_len: 0,
            deadline_us: Some(now.monotonic_us),
        })
    }

    pub fn register(&mut self, registry: &mio::Registry, token: mio::Token) -> io::Result<()> {
        registry.register(
            &mut self.socket,
            token,
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        )
    }

    pub fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        registry.deregister(&mut self.socket)
    }

    pub fn connection(&self) -> &WtConnection {
        &self.connection
    }

    pub fn session(&self) -> &ClientSession {
        self.connection.session()
    }

    /// Commands go here (`hello`, `send`, `ping`, `close`); call
    /// [`WtClient::flush`] after them.
    pub fn session_mut(&mut self) -> &mut ClientSession {
        self.connection.session_mut()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.connection.poll_event()
    }

    /// Queues an unreliable message (Input, Ping...) in a datagram when the
    /// session allows, else on the control stream, and sends it.
    pub fn send_datagram<M: WireMessage>(
        &mut self,
        message: &M,
        now: Now,
    ) -> Result<Channel, SendError> {
        let channel = self.connection.session_mut().send_unreliable(message)?;
        self.drive(now);
        Ok(channel)
    }

    pub fn is_ready(&self) -> bool {
        self.connection.is_ready()
    }

    pub fn is_done(&self) -> bool {
        self.connection.is_done()
    }

    pub fn take_error(&mut self) -> Option<ClientError> {
        self.connection.take_error()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The next deadline (monotonic microseconds) for `on_timeout`, as of
    /// the last call into the client.
    pub fn poll_timeout(&self) -> Option<u64> {
        let session = self.connection.session().timeout();
        [self.deadline_us, session].into_iter().flatten().min()
    }

    pub fn on_readable(&mut self, now: Now) {
        self.drive(now);
    }

    pub fn on_writable(&mut self, now: Now) {
        self.drive(now);
    }

    pub fn flush(&mut self, now: Now) {
        self.drive(now);
    }

    pub fn on_timeout(&mut self, now: Now) {
        self.connection.on_timeout(now);
        self.drive(now);
    }

    fn drive(&mut self, now: Now) {
        self.receive();
        self.connection.process(now);
        self.transmit();
        // Sending may close (a CONNECTION_CLOSE out) or arm timers.
        self.connection.process(now);
        self.deadline_us = self.connection.timeout(now);
    }

    fn receive(&mut self) {
        let mut buffer = [0u8; MAX_RECV_PAYLOAD + 512];
        let info = quiche::RecvInfo { from: self.peer, to: self.local };
        let mut errors = 0;
        while errors < MAX_RECEIVE_ERRORS {
            match self.socket.recv(&mut buffer) {
                Ok(len) => self.connection.recv(&mut buffer[..len], info),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                // An ICMP error for an earlier packet (nobody listening, for
                // one): reading it clears it. QUIC's loss recovery and
                // timeouts decide what it means.
                Err(_) => errors += 1,
            }
        }
    }

    fn transmit(&mut self) {
        loop {
            if self.unsent_len == 0 {
                match self.connection.send(&mut self.send_buffer[..]) {
                    Some((len, _info)) => self.unsent_len = len,
                    None => return,
                }
            }
            match self.socket.send(&self.send_buffer[..self.unsent_len]) {
                Ok(_) => self.unsent_len = 0,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                // Lost like any datagram; QUIC retransmits what mattered.
                Err(_) => self.unsent_len = 0,
            }
        }
    }
}
