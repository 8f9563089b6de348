//! The WebTransport client against an in-memory peer: a real quiche server
//! connection, packets handed over in memory (no socket), and a minimal
//! HTTP/3 WebTransport server built from the `proto::h3` codecs with the
//! server's own protocol session behind it. Proves the client's wire
//! behaviour without the reactor: SETTINGS before CONNECT, the 200, the
//! control stream's signal, frames both ways, datagrams, Bye with the close
//! capsule, and certificate pinning.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};

use super::h3::{WtConnection, WtRequest, WtTimings, BAD_CERTIFICATE};
use super::session::{Channel, ClientConfig, ClientEvent, CloseSource, Credentials};
use super::{wt, ClientError, Clock};
use crate::proto::h3::capsule::{self, Capsule, CapsuleReader};
use crate::proto::h3::frame::{Event, FrameReader, StreamRole};
use crate::proto::h3::headers::encode_response_headers_frame;
use crate::proto::h3::stream::encode_control_stream_preamble;
use crate::proto::h3::{DecodeLimits, RequestHead, Settings};
use crate::proto::session::{self as server_session, Acceptance, Session, SessionEvent};
use crate::proto::wire::{datagram_bodies, ErrorCode, FrameDecoder, Input, Message, Text};

const CLIENT: &str = "127.0.0.1:50000";
const SERVER: &str = "127.0.0.1:4433";

/// The server half: quiche plus just enough HTTP/3 to accept one session.
struct MiniServer {
    quic: quiche::Connection,
    started: bool,
    connect: FrameReader,
    connect_head: Option<RequestHead>,
    capsules: CapsuleReader,
    close_capsule: Option<(u32, String)>,
    control: FrameReader,
    frames: FrameDecoder,
    session: Session,
    received: Vec<Message>,
    bye_seen: bool,
}

impl MiniServer {
    fn process(&mut self, clock: &Clock) {
        let now = clock.now();
        let server_now =
            server_session::Now { monotonic_ms: now.monotonic_us / 1_000, unix_us: now.unix_us };
        if self.quic.is_established() && !self.started {
            let mut control = Vec::new();
            encode_control_stream_preamble(&Settings::server(), &mut control);
            self.quic.stream_send(3, &control, false).unwrap();
            self.quic.stream_send(7, &[0x02], false).unwrap();
            self.quic.stream_send(11, &[0x03], false).unwrap();
            self.started = true;
        }
        let mut buffer = [0u8; 65_536];
        let readable: Vec<u64> = self.quic.readable().collect();
        for id in readable {
            while let Ok((len, _fin)) = self.quic.stream_recv(id, &mut buffer) {
                let data = buffer[..len].to_vec();
                match id {
                    0 => self.on_connect_stream(&data),
                    4 => self.on_control_stream(&data, server_now),
                    _ => {}
                }
            }
        }
        while let Ok(len) = self.quic.dgram_recv(&mut buffer) {
            let (session_id, payload) = capsule::parse_datagram(&buffer[..len]).unwrap();
            assert_eq!(session_id, 0);
            let payload = Bytes::copy_from_slice(payload);
            for body in datagram_bodies(&payload).unwrap() {
                self.session.handle_datagram_frame(&body.unwrap(), server_now);
            }
        }
        self.pump_session();
    }

    fn on_connect_stream(&mut self, mut data: &[u8]) {
        while let Some(event) = self.connect.next(&mut data).unwrap() {
            match event {
                Event::Headers(block) => {
                    let head = RequestHead::decode(block, &DecodeLimits::DEFAULT).unwrap();
                    assert!(head.is_webtransport(), "{head:?}");
                    self.connect_head = Some(head);
                    let mut response = BytesMut::new();
                    encode_response_headers_frame(200, &[], &mut response);
                    self.quic.stream_send(0, &response, false).unwrap();
                }
                Event::Data(mut payload) => {
                    while let Some(capsule) = self.capsules.next(&mut payload).unwrap() {
                        if let Capsule::CloseSession { error_code, reason } = capsule {
                            self.close_capsule = Some((error_code, reason.to_owned()));
                        }
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        if self.connect_head.is_some() {
            self.connect.enter_tunnel();
        }
    }

    fn on_control_stream(&mut self, mut data: &[u8], now: server_session::Now) {
        while let Some(event) = self.control.next(&mut data).unwrap() {
            match event {
                Event::WebTransportStream { session_id } => assert_eq!(session_id, 0),
                Event::WebTransportData(bytes) => self.frames.extend(bytes),
                other => panic!("{other:?}"),
            }
        }
        while let Some(body) = self.frames.next_body().unwrap() {
            self.session.handle_frame(&body, now);
        }
    }

    fn pump_session(&mut self) {
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::Hello { hello, .. } => self.session.accept(Acceptance {
                    session_id: 1,
                    player_id: 7,
                    nickname: hello.nickname.clone().unwrap_or_default(),
                    resume_token: Text::default(),
                    resumed: false,
                    server_time_us: 0,
                }),
                SessionEvent::Message(message) => self.received.push(message),
                SessionEvent::Closed { by_peer, .. } => self.bye_seen = by_peer,
            }
        }
        if let Some(frames) = self.session.poll_transmit() {
            assert_eq!(self.quic.stream_send(4, &frames, false).unwrap(), frames.len());
        }
    }
}

struct Pair {
    clock: Clock,
    client: WtConnection,
    server: MiniServer,
}

impl Pair {
    fn new(expected_sha256: Option<[u8; 32]>) -> Pair {
        let cert = crate::devcert::generate(&[], 14).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let paths = cert.write(dir.path()).unwrap();
        let mut server_config = quiche::Config::new(quiche::PROTOCOL_VERSION).unwrap();
        server_config.load_cert_chain_from_pem_file(paths.cert.to_str().unwrap()).unwrap();
        server_config.load_priv_key_from_pem_file(paths.key.to_str().unwrap()).unwrap();
        server_config.set_application_protos(&[b"h3"]).unwrap();
        server_config.set_max_idle_timeout(30_000);
        server_config.set_initial_max_data(1 << 20);
        server_config.set_initial_max_stream_data_bidi_local(1 << 20);
        server_config.set_initial_max_stream_data_bidi_remote(1 << 20);
        server_config.set_initial_max_stream_data_uni(1 << 20);
        server_config.set_initial_max_streams_bidi(16);
        server_config.set_initial_max_streams_uni(16);
        server_config.enable_dgram(true, 64, 64);

        let client_addr: SocketAddr = CLIENT.parse().unwrap();
        let server_addr: SocketAddr = SERVER.parse().unwrap();
        let clock = Clock::new();
        let mut client_config = wt::quiche_config().unwrap();
        let scid = quiche::ConnectionId::from_ref(&[0xc1; 16]);
        let quic =
            quiche::connect(None, &scid, client_addr, server_addr, &mut client_config).unwrap();
        let request = WtRequest {
            authority: SERVER.into(),
            path: "/wt".into(),
            origin: Some("http://localhost:8080".into()),
        };
        let timings = WtTimings { handshake_timeout_ms: 5_000, close_linger_ms: 50 };
        let session = ClientConfig::default();
        let expected = expected_sha256.unwrap_or(cert.cert_sha256);
        let client = WtConnection::new(quic, expected, request, session, timings, clock.now());
        let server_scid = quiche::ConnectionId::from_ref(&[0x5e; 16]);
        let quic = quiche::accept(&server_scid, None, server_addr, client_addr, &mut server_config)
            .unwrap();
        let server = MiniServer {
            quic,
            started: false,
            connect: FrameReader::new(StreamRole::Request),
            connect_head: None,
            capsules: CapsuleReader::new(),
            close_capsule: None,
            control: FrameReader::new(StreamRole::Request),
            frames: FrameDecoder::new(),
            session: Session::new(server_session::SessionConfig::default(), 0),
            received: Vec::new(),
            bye_seen: false,
        };
        Pair { clock, client, server }
    }

    /// Moves packets both ways until neither side has any to send.
    fn exchange(&mut self) {
        let client_addr: SocketAddr = CLIENT.parse().unwrap();
        let server_addr: SocketAddr = SERVER.parse().unwrap();
        let mut buffer = [0u8; 1_500];
        for _ in 0..100 {
            let mut moved = false;
            self.client.process(self.clock.now());
            while let Some((len, _)) = self.client.send(&mut buffer) {
                let info = quiche::RecvInfo { from: client_addr, to: server_addr };
                let _ = self.server.quic.recv(&mut buffer[..len], info);
                moved = true;
            }
            self.server.process(&self.clock);
            while let Ok((len, _)) = self.server.quic.send(&mut buffer) {
                let info = quiche::RecvInfo { from: server_addr, to: client_addr };
                self.client.recv(&mut buffer[..len], info);
                moved = true;
            }
            if !moved {
                self.client.process(self.clock.now());
                return;
            }
        }
        panic!("the exchange never settled");
    }

    fn events(&mut self) -> Vec<ClientEvent> {
        std::iter::from_fn(|| self.client.poll_event()).collect()
    }
}

#[test]
fn a_session_runs_over_in_memory_quic() {
    let mut pair = Pair::new(None);
    let now = pair.clock.now();
    // Hello is queued before the session is up and leaves once it is.
    pair.client.session_mut().hello(&Credentials::guest("zoë"), now).unwrap();
    pair.exchange();
    assert!(pair.client.is_ready(), "{:?}", pair.client.phase());
    let settings = pair.client.server_settings().unwrap();
    assert!(settings.supports_webtransport() && settings.supports_extended_connect());
    let head = pair.server.connect_head.clone().unwrap();
    assert_eq!((head.path.as_str(), head.authority.as_str()), ("/wt", SERVER));
    assert_eq!(head.origin.as_deref(), Some("http://localhost:8080"));
    let events = pair.events();
    let [ClientEvent::Welcome(welcome)] = &events[..] else { panic!("{events:?}") };
    assert_eq!((welcome.player_id, welcome.nickname.as_str()), (7, "zoë"));
    assert!(pair.client.session().datagrams_enabled(), "CAP_DATAGRAMS offered and granted");

    // A Ping on the stream and one in a datagram; the server's session
    // answers both on the stream.
    for channel in [Channel::Reliable, Channel::Datagram] {
        let id = pair.client.session_mut().ping(channel, pair.clock.now()).unwrap();
        pair.exchange();
        let events = pair.events();
        let [ClientEvent::Pong(sample)] = &events[..] else { panic!("{events:?}") };
        assert_eq!((sample.id, sample.channel), (id, Channel::Reliable));
        assert!(sample.rtt_us < 1_000_000);
    }
    // An Input in a datagram reaches the server's session.
    let input = Input { seq: 1, ..Input::default() };
    assert_eq!(pair.client.session_mut().send_unreliable(&input), Ok(Channel::Datagram));
    pair.exchange();
    assert_eq!(pair.server.received, [Message::Input(input)]);

    // Bye on the control stream, then the close capsule with its code.
    pair.client.session_mut().close(ErrorCode::None, "done");
    pair.exchange();
    assert!(pair.server.bye_seen, "the server's session read the Bye");
    assert_eq!(pair.server.close_capsule, Some((0, "done".to_owned())));
    let events = pair.events();
    assert!(
        matches!(&events[..], [ClientEvent::Closed(reason)] if reason.source == CloseSource::Local)
    );
    // After the linger the client closes the connection itself.
    std::thread::sleep(std::time::Duration::from_millis(60));
    pair.client.on_timeout(pair.clock.now());
    pair.exchange();
    assert!(pair.client.is_done(), "{:?}", pair.client.phase());
    let closed = pair.server.quic.peer_error().expect("CONNECTION_CLOSE from the client");
    assert_eq!((closed.is_app, closed.error_code), (true, 0x100));
}

#[test]
fn a_wrong_certificate_hash_closes_before_any_request() {
    let mut pair = Pair::new(Some([0xab; 32]));
    let now = pair.clock.now();
    pair.client.session_mut().hello(&Credentials::guest("mallory"), now).unwrap();
    pair.exchange();
    match pair.client.take_error() {
        Some(ClientError::CertificateHash { expected, .. }) => {
            assert_eq!(expected, "ab".repeat(32))
        }
        other => panic!("{other:?}"),
    }
    let closed = pair.server.quic.peer_error().expect("CONNECTION_CLOSE from the client");
    assert_eq!((closed.is_app, closed.error_code), (false, BAD_CERTIFICATE));
    assert!(pair.server.connect_head.is_none(), "no request was sent");
    assert!(pair.client.is_done());
    let events = pair.events();
    assert!(
        matches!(&events[..], [ClientEvent::Closed(reason)] if reason.source == CloseSource::Transport)
    );
    assert!(pair.server.session.poll_transmit().is_none());
}
