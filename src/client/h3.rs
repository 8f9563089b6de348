//! The client's HTTP/3 and WebTransport layer on a quiche connection:
//! packets in, packets out, no socket. [`WtConnection`] owns the QUIC
//! connection, the HTTP/3 streams, the WebTransport session and the Ludus
//! [`ClientSession`] riding on it; [`super::wt::WtClient`] adds a UDP
//! socket. A load tester may instead feed many of them from one batched
//! socket (they are told apart by their connection IDs).
//!
//! quiche reads the monotonic clock itself (its timers); everything else
//! here takes time as [`Now`].
//!
//! What goes on the wire, in order (draft-ietf-webtrans-http3, RFC 9114,
//! RFC 9220, RFC 9297), as Chromium does it:
//! 1. QUIC handshake, ALPN `h3`, the DATAGRAM extension on. quiche's own
//!    certificate verification is off: once the handshake completes, the
//!    SHA-256 of the server's certificate must equal the expected one, or
//!    the connection is closed with CRYPTO_ERROR bad_certificate (0x12a)
//!    before a single byte of application data is sent. That is the rule of
//!    `serverCertificateHashes` in browsers; the handshake signature still
//!    proves the server holds the pinned certificate's key.
//! 2. Our unidirectional streams: control (id 2: type 0x00 and SETTINGS
//!    with QPACK capacity 0, H3_DATAGRAM = 1 and the WebTransport settings),
//!    QPACK encoder (id 6, type 0x02) and decoder (id 10, type 0x03).
//! 3. After the server's SETTINGS (they must allow extended CONNECT,
//!    datagrams and WebTransport): the extended CONNECT on stream 0
//!    (`:method CONNECT`, `:protocol webtransport`, `:scheme https`,
//!    `:authority`, `:path /wt`, `origin`), then `:status 200`.
//! 4. The Ludus control stream: bidirectional stream 4, opened with the
//!    signal 0x41 and session id 0; frames follow both ways. Datagrams carry
//!    the quarter stream id 0 before their frames.
//! 5. Closing: Bye on stream 4, CLOSE_WEBTRANSPORT_SESSION on stream 0 with
//!    FIN, a short linger for the server to close, then CONNECTION_CLOSE
//!    H3_NO_ERROR.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use super::session::{ClientConfig, ClientEvent, ClientSession, Now, State};
use super::tls::certificate_sha256;
use super::ClientError;
use crate::proto::h3::capsule::{self, Capsule, CapsuleReader};
use crate::proto::h3::frame::{self, Event, FrameReader, StreamRole};
use crate::proto::h3::qpack::{DecoderStreamReader, EncoderStreamReader};
use crate::proto::h3::stream::{self, UniStreamHeaderReader, UniStreamKind};
use crate::proto::h3::{DecodeLimits, ErrorCode, RequestHead, ResponseHead, Settings};
use crate::proto::wire::FrameDecoder;

/// The CONNECT stream, whose id is the WebTransport session id.
pub const CONNECT_STREAM_ID: u64 = 0;
/// The Ludus control stream (a WebTransport bidirectional stream).
pub const LUDUS_STREAM_ID: u64 = 4;
/// Our HTTP/3 control stream.
pub const H3_CONTROL_STREAM_ID: u64 = 2;
/// Our QPACK encoder stream.
pub const QPACK_ENCODER_STREAM_ID: u64 = 6;
/// Our QPACK decoder stream.
pub const QPACK_DECODER_STREAM_ID: u64 = 10;
/// QUIC CRYPTO_ERROR for the TLS alert bad_certificate (RFC 9001 §4.8).
pub const BAD_CERTIFICATE: u64 = 0x100 + 42;
/// Streams the server may open towards us and we track at once; v1
/// servers open their three HTTP/3 streams and nothing else.
const MAX_PEER_STREAMS: usize = 64;
/// Bytes read from a stream per call.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// What the client sends in SETTINGS: no dynamic table, HTTP/3 datagrams,
/// and WebTransport under both identifiers servers look for.
pub const fn client_settings() -> Settings {
    Settings {
        qpack_max_table_capacity: Some(0),
        max_field_section_size: None,
        qpack_blocked_streams: Some(0),
        enable_connect_protocol: None,
        h3_datagram: Some(1),
        enable_webtransport: Some(1),
        webtransport_max_sessions: Some(1),
        wt_max_sessions: None,
        wt_enabled: None,
    }
}

/// The WebTransport request.
#[derive(Debug, Clone)]
pub struct WtRequest {
    /// `:authority`: host and port as in the URL.
    pub authority: String,
    /// `:path`, normally `/wt`.
    pub path: String,
    /// `origin`, which browsers always send; servers check it against an
    /// allow-list.
    pub origin: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The QUIC handshake is under way.
    Handshake,
    /// Our HTTP/3 streams are open; waiting for the server's SETTINGS.
    Settings,
    /// The extended CONNECT is out; waiting for its response.
    Connecting,
    /// The session is up; the Ludus control stream is open.
    Ready,
    /// The session is closing: our close capsule is out.
    Closing,
    /// The connection is closed (or closing, with nothing more to send).
    Closed,
}

/// A stream the server opened.
#[derive(Debug)]
enum PeerStream {
    Header(UniStreamHeaderReader),
    Control(Box<FrameReader>),
    QpackEncoder(EncoderStreamReader),
    QpackDecoder(DecoderStreamReader),
    /// Unknown types, WebTransport streams (v1 uses none), server bidi.
    Discard,
}

/// Bytes queued for one of our streams.
#[derive(Debug)]
struct Outgoing {
    id: u64,
    data: BytesMut,
    fin: bool,
    fin_sent: bool,
}

/// One WebTransport client connection: QUIC, HTTP/3, the session and the
/// Ludus protocol on it.
pub struct WtConnection {
    quic: quiche::Connection,
    session: ClientSession,
    phase: Phase,
    expected_sha256: [u8; 32],
    request: WtRequest,
    server_settings: Option<Settings>,
    outgoing: Vec<Outgoing>,
    peer_streams: HashMap<u64, PeerStream>,
    connect_reader: FrameReader,
    capsules: CapsuleReader,
    frames: FrameDecoder,
    response_status: Option<u16>,
    datagram: BytesMut,
    deadline_us: Option<u64>,
    close_linger_us: u64,
    error: Option<ClientError>,
}

impl std::fmt::Debug for WtConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WtConnection")
            .field("phase", &self.phase)
            .field("session", &self.session.state())
            .finish_non_exhaustive()
    }
}

/// Timings of a [`WtConnection`].
#[derive(Debug, Clone, Copy)]
pub struct WtTimings {
    /// QUIC handshake, SETTINGS and CONNECT must finish within this long.
    pub handshake_timeout_ms: u64,
    /// After our close capsule, how long the server has to close first.
    pub close_linger_ms: u64,
}

impl WtConnection {
    /// Wraps a client connection fresh from `quiche::connect` (its
    /// configuration must not verify the peer: [`super::wt::quiche_config`]).
    pub fn new(
        quic: quiche::Connection,
        expected_sha256: [u8; 32],
        request: WtRequest,
        session: ClientConfig,
        timings: WtTimings,
        now: Now,
    ) -> WtConnection {
        let session_config = ClientConfig { transport_datagrams: true, ..session };
        WtConnection {
            quic,
            session: ClientSession::new(session_config, now),
            phase: Phase::Handshake,
            expected_sha256,
            request,
            server_settings: None,
            outgoing: Vec::with_capacity(5),
            peer_streams: HashMap::new(),
            connect_reader: FrameReader::new(StreamRole::Request),
            capsules: CapsuleReader::new(),
            frames: FrameDecoder::new(),
            response_status: None,
            datagram: BytesMut::with_capacity(crate::proto::wire::MAX_DATAGRAM_LEN + 8),
            deadline_us: Some(now.monotonic_us + timings.handshake_timeout_ms * 1_000),
            close_linger_us: timings.close_linger_ms * 1_000,
            error: None,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether the WebTransport session is up (Hello may already be on its
    /// way: the session queues it until then).
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Whether the connection is over: drop it.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Closed
    }

    pub fn session(&self) -> &ClientSession {
        &self.session
    }

    pub fn session_mut(&mut self) -> &mut ClientSession {
        &mut self.session
    }

    pub fn quic(&self) -> &quiche::Connection {
        &self.quic
    }

    /// The next event of the session.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.session.poll_event()
    }

    /// Why the connection failed, if it did.
    pub fn take_error(&mut self) -> Option<ClientError> {
        self.error.take()
    }

    /// The server's SETTINGS, once received.
    pub fn server_settings(&self) -> Option<&Settings> {
        self.server_settings.as_ref()
    }

    /// QUIC's own smoothed round-trip estimate.
    pub fn quic_rtt(&self) -> Option<std::time::Duration> {
        self.quic.path_stats().next().map(|stats| stats.rtt)
    }

    // ----- packets -----

    /// A UDP datagram from the server. Call [`WtConnection::process`] after
    /// a batch of them.
    pub fn recv(&mut self, packet: &mut [u8], info: quiche::RecvInfo) {
        // Per-packet errors (undecryptable, unknown) are quiche's to count;
        // a fatal one closes the connection, which `process` notices.
        let _ = self.quic.recv(packet, info);
    }

    /// The next UDP datagram to send, `None` when there is none.
    pub fn send(&mut self, out: &mut [u8]) -> Option<(usize, quiche::SendInfo)> {
        match self.quic.send(out) {
            Ok(sent) => Some(sent),
            Err(quiche::Error::Done) => None,
            Err(error) => {
                self.fail(ClientError::Quic(error.to_string()));
                None
            }
        }
    }

    /// The next deadline (monotonic microseconds) for `on_timeout`.
    pub fn timeout(&self, now: Now) -> Option<u64> {
        // Rounded up: waking a microsecond early would find nothing due.
        let quic = self
            .quic
            .timeout()
            .map(|delay| now.monotonic_us + delay.as_nanos().div_ceil(1_000) as u64);
        [quic, self.deadline_us, self.session.timeout()].into_iter().flatten().min()
    }

    pub fn on_timeout(&mut self, now: Now) {
        // quiche checks each of its timers against its own clock.
        self.quic.on_timeout();
        if self.deadline_us.is_some_and(|deadline| now.monotonic_us >= deadline) {
            self.deadline_us = None;
            match self.phase {
                Phase::Handshake | Phase::Settings | Phase::Connecting => self.abort(
                    ErrorCode::REQUEST_CANCELLED,
                    ClientError::Timeout("WebTransport handshake"),
                ),
                Phase::Closing => {
                    let _ = self.quic.close(true, ErrorCode::NO_ERROR.0, b"");
                }
                Phase::Ready | Phase::Closed => {}
            }
        }
        self.session.handle_timeout(now);
        self.process(now);
    }

    /// Moves everything along after packets arrived, a timer fired or the
    /// application queued messages: checks the certificate, opens streams,
    /// reads streams and datagrams, and queues the session's output.
    pub fn process(&mut self, now: Now) {
        if self.phase == Phase::Closed {
            return;
        }
        if self.quic.is_closed() || self.quic.is_draining() {
            return self.on_connection_closed();
        }
        if self.phase == Phase::Handshake && self.quic.is_established() {
            if let Err(error) = self.start_http3() {
                return self.abort_with_code(BAD_CERTIFICATE, false, error);
            }
        }
        if self.phase != Phase::Handshake {
            self.read_streams(now);
            self.read_datagrams(now);
            self.pump_session(now);
            self.write_streams();
        }
    }

    // ----- HTTP/3 set-up -----

    /// Checks the certificate, then opens our three HTTP/3 streams.
    fn start_http3(&mut self) -> Result<(), ClientError> {
        let actual = self.quic.peer_cert().map(certificate_sha256);
        if actual != Some(self.expected_sha256) {
            return Err(ClientError::CertificateHash {
                expected: hex::encode(self.expected_sha256),
                actual: actual.map_or_else(|| "absent".to_owned(), hex::encode),
            });
        }
        let mut control = BytesMut::new();
        stream::encode_control_stream_preamble(&client_settings(), &mut control);
        self.queue(H3_CONTROL_STREAM_ID, &control, false);
        self.queue(QPACK_ENCODER_STREAM_ID, &[stream::QPACK_ENCODER as u8], false);
        self.queue(QPACK_DECODER_STREAM_ID, &[stream::QPACK_DECODER as u8], false);
        self.phase = Phase::Settings;
        Ok(())
    }

    fn send_connect(&mut self) {
        let mut headers = Vec::new();
        if let Some(origin) = &self.request.origin {
            headers.push(("origin".to_owned(), origin.clone()));
        }
        let head = RequestHead {
            method: "CONNECT".into(),
            scheme: "https".into(),
            authority: self.request.authority.clone(),
            path: self.request.path.clone(),
            protocol: Some("webtransport".into()),
            origin: self.request.origin.clone(),
            headers,
        };
        let mut request = BytesMut::new();
        frame::encode_frame_with(frame::HEADERS, &mut request, |out| head.encode(out));
        self.queue(CONNECT_STREAM_ID, &request, false);
        self.phase = Phase::Connecting;
    }

    fn on_response(&mut self, block: &[u8]) -> Result<(), ClientError> {
        let head = ResponseHead::decode(block, &DecodeLimits::DEFAULT)
            .map_err(|error| ClientError::Http3(format!("CONNECT response: {error}")))?;
        if head.status < 200 {
            return Ok(()); // Interim: the final response follows.
        }
        self.response_status = Some(head.status);
        if head.status != 200 {
            return Err(ClientError::SessionRefused(head.status));
        }
        self.connect_reader.enter_tunnel();
        let mut signal = BytesMut::new();
        frame::encode_webtransport_stream_signal(CONNECT_STREAM_ID, &mut signal);
        self.queue(LUDUS_STREAM_ID, &signal, false);
        self.phase = Phase::Ready;
        self.deadline_us = None;
        Ok(())
    }

    // ----- reading -----

    fn read_streams(&mut self, now: Now) {
        let mut buffer = [0u8; READ_CHUNK_BYTES];
        let readable: Vec<u64> = self.quic.readable().collect();
        for id in readable {
            loop {
                let (len, fin) = match self.quic.stream_recv(id, &mut buffer) {
                    Ok(read) => read,
                    Err(quiche::Error::Done) => break,
                    Err(error) => {
                        self.on_stream_error(id, error);
                        break;
                    }
                };
                if let Err((code, error)) = self.on_stream_data(id, &buffer[..len], fin, now) {
                    return self.abort(code, error);
                }
                if fin || self.phase == Phase::Closed {
                    break;
                }
            }
        }
    }

    fn on_stream_data(
        &mut self,
        id: u64,
        data: &[u8],
        fin: bool,
        now: Now,
    ) -> Result<(), (ErrorCode, ClientError)> {
        match id {
            CONNECT_STREAM_ID => self.on_connect_stream(data, fin),
            LUDUS_STREAM_ID => {
                self.on_ludus_stream(data, fin, now);
                Ok(())
            }
            // Server-initiated unidirectional streams end in 3 (mod 4).
            _ if id % 4 == 3 => self.on_peer_uni_stream(id, data, fin),
            // Server-initiated bidirectional streams: v1 has none.
            _ => Ok(()),
        }
    }

    fn on_connect_stream(
        &mut self,
        mut data: &[u8],
        fin: bool,
    ) -> Result<(), (ErrorCode, ClientError)> {
        let h3 = |error: &dyn std::fmt::Display| ClientError::Http3(error.to_string());
        loop {
            let event =
                self.connect_reader.next(&mut data).map_err(|error| (error.code(), h3(&error)))?;
            match event {
                None => break,
                Some(Event::Headers(block)) => {
                    let block = block.to_vec();
                    self.on_response(&block)
                        .map_err(|error| (ErrorCode::REQUEST_CANCELLED, error))?;
                }
                Some(Event::Data(mut payload)) => {
                    while let Some(capsule) = self
                        .capsules
                        .next(&mut payload)
                        .map_err(|error| (error.code(), h3(&error)))?
                    {
                        if let Capsule::CloseSession { error_code, reason } = capsule {
                            let reason =
                                format!("WebTransport session closed: {error_code} {reason}");
                            self.session.handle_transport_closed(&reason);
                        }
                    }
                }
                Some(_) => {}
            }
        }
        if fin {
            // The CONNECT stream's end is the session's end.
            self.session.handle_transport_closed("the server ended the WebTransport session");
            if self.phase == Phase::Connecting {
                return Err((
                    ErrorCode::REQUEST_INCOMPLETE,
                    ClientError::Http3("CONNECT stream ended".into()),
                ));
            }
        }
        Ok(())
    }

    fn on_ludus_stream(&mut self, data: &[u8], fin: bool, now: Now) {
        self.frames.extend(data);
        loop {
            match self.frames.next_body() {
                Ok(Some(body)) => self.session.handle_frame(&body, now),
                Ok(None) => break,
                Err(error) => {
                    self.frames = FrameDecoder::new();
                    self.session.handle_framing_error(error);
                    break;
                }
            }
        }
        if fin {
            self.session.handle_transport_closed("the server ended the control stream");
        }
    }

    fn on_peer_uni_stream(
        &mut self,
        id: u64,
        mut data: &[u8],
        fin: bool,
    ) -> Result<(), (ErrorCode, ClientError)> {
        if !self.peer_streams.contains_key(&id) && self.peer_streams.len() >= MAX_PEER_STREAMS {
            let _ = self.quic.stream_shutdown(
                id,
                quiche::Shutdown::Read,
                stream::UNKNOWN_STREAM_CODE.0,
            );
            return Ok(());
        }
        let h3 = |code: ErrorCode, reason: &str| (code, ClientError::Http3(reason.to_owned()));
        let mut state = self
            .peer_streams
            .remove(&id)
            .unwrap_or(PeerStream::Header(UniStreamHeaderReader::new()));
        if let PeerStream::Header(reader) = &mut state {
            match reader.read(&mut data).map_err(|error| h3(error.code(), error.reason()))? {
                None => {
                    self.peer_streams.insert(id, state);
                    return Ok(());
                }
                Some(kind) => state = self.open_peer_stream(kind)?,
            }
        }
        let critical = !matches!(state, PeerStream::Discard | PeerStream::Header(_));
        match &mut state {
            PeerStream::Control(reader) => {
                while let Some(event) =
                    reader.next(&mut data).map_err(|error| h3(error.code(), error.reason()))?
                {
                    if let Event::Settings(settings) = event {
                        self.on_settings(settings)?;
                    }
                }
            }
            PeerStream::QpackEncoder(reader) => {
                reader.read(data).map_err(|error| h3(error.code(), error.reason()))?
            }
            PeerStream::QpackDecoder(reader) => {
                reader.read(data).map_err(|error| h3(error.code(), error.reason()))?
            }
            PeerStream::Header(_) | PeerStream::Discard => {}
        }
        if fin && critical {
            return Err(h3(
                ErrorCode::CLOSED_CRITICAL_STREAM,
                "the server closed a critical stream",
            ));
        }
        self.peer_streams.insert(id, state);
        Ok(())
    }

    fn open_peer_stream(
        &mut self,
        kind: UniStreamKind,
    ) -> Result<PeerStream, (ErrorCode, ClientError)> {
        let h3 = |code: ErrorCode, reason: &str| (code, ClientError::Http3(reason.to_owned()));
        let has_control = self.peer_streams.values().any(|s| matches!(s, PeerStream::Control(_)));
        match kind {
            UniStreamKind::Control if has_control => {
                Err(h3(ErrorCode::STREAM_CREATION_ERROR, "second control stream"))
            }
            UniStreamKind::Control => {
                Ok(PeerStream::Control(Box::new(FrameReader::new(StreamRole::Control))))
            }
            UniStreamKind::QpackEncoder => Ok(PeerStream::QpackEncoder(EncoderStreamReader::new())),
            UniStreamKind::QpackDecoder => Ok(PeerStream::QpackDecoder(DecoderStreamReader::new())),
            // We never sent MAX_PUSH_ID, so no push id is valid.
            UniStreamKind::Push { .. } => {
                Err(h3(ErrorCode::ID_ERROR, "push stream without MAX_PUSH_ID"))
            }
            UniStreamKind::WebTransport { .. } | UniStreamKind::Unknown(_) => {
                Ok(PeerStream::Discard)
            }
        }
    }

    fn on_settings(&mut self, settings: Settings) -> Result<(), (ErrorCode, ClientError)> {
        self.server_settings = Some(settings);
        let missing = if !settings.supports_extended_connect() {
            Some("extended CONNECT")
        } else if !settings.supports_datagrams() {
            Some("HTTP/3 datagrams")
        } else if !settings.supports_webtransport() {
            Some("WebTransport")
        } else {
            None
        };
        if let Some(missing) = missing {
            let error =
                ClientError::Http3(format!("the server's SETTINGS do not enable {missing}"));
            return Err((ErrorCode::SETTINGS_ERROR, error));
        }
        if self.phase == Phase::Settings {
            self.send_connect();
        }
        Ok(())
    }

    fn on_stream_error(&mut self, id: u64, error: quiche::Error) {
        if matches!(id, CONNECT_STREAM_ID | LUDUS_STREAM_ID) {
            self.session.handle_transport_closed(&format!("stream {id}: {error}"));
        }
    }

    fn read_datagrams(&mut self, now: Now) {
        let mut buffer = [0u8; 2048];
        loop {
            let len = match self.quic.dgram_recv(&mut buffer) {
                Ok(len) => len,
                Err(_) => return,
            };
            // Datagrams of other sessions, or before ours is up, are dropped
            // (RFC 9297 §2.1 allows it).
            if let Ok((CONNECT_STREAM_ID, payload)) = capsule::parse_datagram(&buffer[..len]) {
                if self.phase == Phase::Ready {
                    self.session.handle_datagram(&Bytes::copy_from_slice(payload), now);
                }
            }
        }
    }

    // ----- writing -----

    /// Session output onto stream 4 and into datagrams; the session's end
    /// into the closing sequence.
    fn pump_session(&mut self, now: Now) {
        if self.phase != Phase::Ready {
            return;
        }
        if let Some(limit) = self.quic.dgram_max_writable_len() {
            self.session.set_datagram_limit(
                limit.saturating_sub(capsule::datagram_prefix_len(CONNECT_STREAM_ID)),
            );
        }
        if let Some(frames) = self.session.poll_transmit() {
            self.queue(LUDUS_STREAM_ID, &frames, false);
        }
        while let Some(payload) = self.session.poll_datagram() {
            self.datagram.clear();
            capsule::encode_datagram_prefix(CONNECT_STREAM_ID, &mut self.datagram);
            self.datagram.extend_from_slice(&payload);
            // A full queue or a shrunken path drops it: datagrams may be lost.
            let _ = self.quic.dgram_send(&self.datagram);
        }
        if self.session.state() == State::Closed {
            self.start_closing(now);
        }
    }

    /// Our side of the session's end: FIN on stream 4 after the Bye, the
    /// close capsule with FIN on stream 0, then a linger.
    fn start_closing(&mut self, now: Now) {
        let code = self.session.close_reason().map_or(0, |reason| u32::from(reason.code));
        let reason =
            self.session.close_reason().map(|reason| reason.reason.clone()).unwrap_or_default();
        self.queue(LUDUS_STREAM_ID, &[], true);
        if !self.capsules.is_closed() {
            let mut close = BytesMut::new();
            capsule::encode_close_session_frame(code, truncate(&reason, 512), &mut close);
            self.queue(CONNECT_STREAM_ID, &close, true);
        } else {
            self.queue(CONNECT_STREAM_ID, &[], true);
        }
        self.phase = Phase::Closing;
        self.deadline_us = Some(now.monotonic_us + self.close_linger_us);
    }

    fn queue(&mut self, id: u64, data: &[u8], fin: bool) {
        match self.outgoing.iter_mut().find(|outgoing| outgoing.id == id) {
            Some(outgoing) => {
                if !outgoing.fin {
                    outgoing.data.extend_from_slice(data);
                    outgoing.fin = fin;
                }
            }
            None => self.outgoing.push(Outgoing {
                id,
                data: BytesMut::from(data),
                fin,
                fin_sent: false,
            }),
        }
    }

    /// Hands queued stream bytes to quiche, as far as flow control allows.
    fn write_streams(&mut self) {
        for outgoing in &mut self.outgoing {
            if outgoing.fin_sent || (outgoing.data.is_empty() && !outgoing.fin) {
                continue;
            }
            match self.quic.stream_send(outgoing.id, &outgoing.data, outgoing.fin) {
                Ok(written) => {
                    let _ = outgoing.data.split_to(written);
                    outgoing.fin_sent = outgoing.fin && outgoing.data.is_empty();
                }
                Err(quiche::Error::Done) => {}
                // Reset or stopped by the server: nothing more goes there.
                Err(_) => {
                    outgoing.data.clear();
                    outgoing.fin_sent = true;
                }
            }
        }
    }

    // ----- ending -----

    fn on_connection_closed(&mut self) {
        if !self.session.is_closed() {
            let reason = match self.quic.peer_error() {
                Some(error) => format!(
                    "the server closed the connection: {:#x} {}",
                    error.error_code,
                    String::from_utf8_lossy(&error.reason)
                ),
                None if self.quic.is_timed_out() => "the QUIC connection timed out".to_owned(),
                None => "the QUIC connection closed".to_owned(),
            };
            if self.error.is_none() && !matches!(self.phase, Phase::Ready | Phase::Closing) {
                self.error = Some(ClientError::Quic(reason.clone()));
            }
            self.session.handle_transport_closed(&reason);
        }
        self.phase = Phase::Closed;
        self.deadline_us = None;
    }

    /// Closes the connection with an HTTP/3 error.
    fn abort(&mut self, code: ErrorCode, error: ClientError) {
        self.abort_with_code(code.0, true, error);
    }

    fn abort_with_code(&mut self, code: u64, app: bool, error: ClientError) {
        let reason = error.to_string();
        let _ = self.quic.close(app, code, truncate(&reason, 256).as_bytes());
        self.fail(error);
    }

    fn fail(&mut self, error: ClientError) {
        if !self.session.is_closed() {
            self.session.handle_transport_closed(&error.to_string());
        }
        if self.error.is_none() {
            self.error = Some(error);
        }
        // The CONNECTION_CLOSE still has to go out: `send` until None, then
        // the connection is draining and `process` marks it closed.
        if self.phase != Phase::Closed {
            self.phase = Phase::Closing;
            self.deadline_us = None;
        }
    }
}

fn truncate(text: &str, max_bytes: usize) -> &str {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
