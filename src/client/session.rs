//! One Ludus session seen from the client, sans-IO: Hello / Welcome,
//! heartbeats, round-trip time and clock offset from Pongs, Bye, and the
//! client's half of the error policy of docs/PROTOCOL.md section 2.
//! Transport-neutral: the WebSocket and WebTransport drivers feed it frame
//! bodies and datagram payloads and send what it produces.
//!
//! Shape (as in quinn-proto and [`crate::proto::session`], its server
//! twin): `handle_*` for input from the network and timers, commands
//! (`hello`, `send`, `send_unreliable`, `ping`, `close`) from the
//! application, `poll_*` for output, `timeout` for the next deadline. Call
//! order after any input: `poll_transmit` and `poll_datagram` until `None`,
//! then `timeout`, then `poll_event` until `None`. No clock, no socket, no
//! randomness inside: time comes in as [`Now`].
//!
//! Limits: the reliable outbox ([`ClientConfig::max_outbox_bytes`]), the
//! datagram queue ([`MAX_QUEUED_DATAGRAMS`]), the event queue
//! ([`ClientConfig::max_pending_events`]) and the Pings awaiting a Pong
//! ([`PING_SLOTS`]) are all bounded; nothing grows with what the server
//! sends.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::proto::wire::{
    self, datagram_bodies, decode_body, encode_frame, encode_message_frame, Bye, DatagramPacker,
    DecodeError, Direction, ErrorCode, Hello, Message, Ping, Pong, Text, Welcome, WireMessage,
    MAX_CORE_TYPE_CODE, MAX_DATAGRAM_LEN,
};

/// Pings whose Pong is still awaited; a Pong for an older Ping (its slot
/// reused) is ignored.
pub const PING_SLOTS: usize = 64;
/// Datagrams queued before [`ClientSession::poll_datagram`] drains them;
/// more are dropped (and counted), as the network might have done.
pub const MAX_QUEUED_DATAGRAMS: usize = 256;

/// The time of an input, from the driver's clock. `monotonic_us` orders
/// deadlines and measures round trips; `unix_us` (microseconds since the
/// Unix epoch) is what Pings carry and what the clock offset is relative
/// to. A driver derives both from one monotonic clock (see
/// [`crate::client::Clock`]) so a wall-clock step never bends a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Now {
    pub monotonic_us: u64,
    pub unix_us: u64,
}

impl Now {
    /// A time `delta_us` later on both clocks.
    pub fn plus_us(self, delta_us: u64) -> Now {
        Now { monotonic_us: self.monotonic_us + delta_us, unix_us: self.unix_us + delta_us }
    }
}

/// What the client offers and how patient it is.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Client software and version, sent in Hello (at most 64 bytes).
    pub client_name: String,
    /// Capability bits offered in Hello. [`wire::CAP_DATAGRAMS`] is removed
    /// when the transport has no datagrams (WebSocket).
    pub capabilities: u32,
    /// Whether the transport carries datagrams (WebTransport).
    pub transport_datagrams: bool,
    /// The session closes with `timeout` if no Welcome arrives this long
    /// after Hello.
    pub welcome_timeout_ms: u64,
    /// Send a Ping whenever `Welcome.heartbeat_ms` passes without one.
    pub heartbeat: bool,
    /// Most reliable bytes queued before `send` refuses (the transport is
    /// not draining them).
    pub max_outbox_bytes: usize,
    /// Most events queued before the application polls; past it the session
    /// closes, as a server does with a client that floods it.
    pub max_pending_events: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            client_name: concat!("ludus-rs/", env!("CARGO_PKG_VERSION")).to_owned(),
            capabilities: wire::CAP_ALL,
            transport_datagrams: false,
            welcome_timeout_ms: 10_000,
            heartbeat: true,
            max_outbox_bytes: 1 << 20,
            max_pending_events: 4_096,
        }
    }
}

/// Who the client says it is in Hello.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// A guest's wanted nickname (ignored with an access token).
    pub nickname: Option<String>,
    /// A JWT access token; absent for a guest.
    pub access_token: Option<String>,
    /// The resume token of an earlier Welcome, to return to its room.
    pub resume_token: Option<String>,
}

impl Credentials {
    pub fn guest(nickname: &str) -> Credentials {
        Credentials { nickname: Some(nickname.to_owned()), ..Credentials::default() }
    }
}

/// What a session moved, in protocol terms: messages, and frame bytes
/// (bodies with their length prefixes; datagram payloads whole), before
/// the transport's own overhead (TLS, QUIC, WebSocket headers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Traffic {
    /// Adds `other` field by field (merging sessions).
    pub fn add(&mut self, other: &Traffic) {
        self.messages_in += other.messages_in;
        self.messages_out += other.messages_out;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
    }

    /// `self - earlier`, field by field (a window of one session or a sum).
    pub fn since(&self, earlier: &Traffic) -> Traffic {
        Traffic {
            messages_in: self.messages_in.saturating_sub(earlier.messages_in),
            messages_out: self.messages_out.saturating_sub(earlier.messages_out),
            bytes_in: self.bytes_in.saturating_sub(earlier.bytes_in),
            bytes_out: self.bytes_out.saturating_sub(earlier.bytes_out),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Nothing sent yet; the transport may still be opening.
    Connecting,
    /// Hello queued or sent; waiting for Welcome (or Error and Bye).
    AwaitingWelcome,
    /// Welcome received; any message may flow.
    Established,
    /// Bye sent or received, or the transport ended: flush `poll_transmit`,
    /// then close the transport.
    Closed,
}

/// Which way a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The control stream or the WebSocket: reliable and ordered.
    Reliable,
    /// A WebTransport datagram: may be lost, duplicated or reordered.
    Datagram,
}

/// Who ended the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseSource {
    /// This client: `close`, a timeout, or a server that broke the protocol.
    Local,
    /// The server, with Bye.
    Peer,
    /// The transport ended without a Bye.
    Transport,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// An [`ErrorCode`] value; 0 for a normal close. Kept raw: a newer
    /// server may send codes this build does not know.
    pub code: u16,
    pub reason: String,
    pub source: CloseSource,
}

impl CloseReason {
    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::from_u16(self.code)
    }
}

/// One round-trip measurement from a Pong (PROTOCOL.md section 2, Clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PongSample {
    pub id: u32,
    /// `(t3 - t0) - (t2 - t1)`: the time on the network, server processing
    /// excluded, measured on the client's monotonic clock.
    pub rtt_us: u64,
    /// Server clock minus client clock: `((t1 - t0) + (t2 - t3)) / 2`.
    pub clock_offset_us: i64,
    /// The channel the Pong arrived on.
    pub channel: Channel,
}

/// What the application must act on.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// The server accepted the session.
    Welcome(Box<Welcome>),
    /// A message for the application (Error included: a failed request
    /// does not end the session; a fatal one is followed by `Closed`).
    Message(Message),
    /// A Pong answered one of our Pings.
    Pong(PongSample),
    /// The session ended. Flush `poll_transmit`, then close the transport.
    Closed(CloseReason),
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the session is {0:?}, not in a state to send this")]
    WrongState(State),
    #[error("the outbox holds {0} bytes: the transport is not draining it")]
    Backpressure(usize),
    #[error("{0} is sent by the server only")]
    ServerMessage(&'static str),
    #[error("{field} is too long for Hello")]
    TooLong { field: &'static str },
}

#[derive(Debug, Clone, Copy, Default)]
struct PingSlot {
    id: u32,
    sent: Now,
    pending: bool,
}

/// Round-trip statistics kept by the session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RttStats {
    pub samples: u64,
    pub latest_us: u64,
    /// Smoothed as TCP does (RFC 6298): 7/8 old, 1/8 new.
    pub smoothed_us: u64,
    pub min_us: u64,
    /// The clock offset of the lowest-RTT sample: the least disturbed by
    /// queueing, so the best estimate.
    pub clock_offset_us: i64,
}

#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    state: State,
    welcome: Option<Box<Welcome>>,
    capabilities: u32,
    hello_sent_us: u64,
    last_heard_us: u64,
    last_ping_us: u64,
    next_ping_id: u32,
    pings: [PingSlot; PING_SLOTS],
    rtt: RttStats,
    outbox: BytesMut,
    datagrams: VecDeque<Bytes>,
    packer: DatagramPacker,
    /// What the transport allows after its own prefix.
    transport_datagram_limit: usize,
    /// What the packer packs to: the smallest of every limit.
    datagram_limit: usize,
    events: VecDeque<ClientEvent>,
    dropped_datagrams: u64,
    traffic: Traffic,
    last_error: Option<wire::Error>,
    closed: Option<CloseReason>,
}

impl ClientSession {
    pub fn new(mut config: ClientConfig, now: Now) -> ClientSession {
        if !config.transport_datagrams {
            config.capabilities &= !wire::CAP_DATAGRAMS;
        }
        ClientSession {
            config,
            state: State::Connecting,
            welcome: None,
            capabilities: 0,
            hello_sent_us: now.monotonic_us,
            last_heard_us: now.monotonic_us,
            last_ping_us: now.monotonic_us,
            next_ping_id: 1,
            pings: [PingSlot::default(); PING_SLOTS],
            rtt: RttStats::default(),
            outbox: BytesMut::with_capacity(1024),
            datagrams: VecDeque::new(),
            packer: DatagramPacker::new(MAX_DATAGRAM_LEN),
            transport_datagram_limit: MAX_DATAGRAM_LEN,
            datagram_limit: MAX_DATAGRAM_LEN,
            events: VecDeque::new(),
            dropped_datagrams: 0,
            traffic: Traffic::default(),
            last_error: None,
            closed: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The server's Welcome, once received.
    pub fn welcome(&self) -> Option<&Welcome> {
        self.welcome.as_deref()
    }

    /// Capability bits in use (after Welcome).
    pub fn capabilities(&self) -> u32 {
        self.capabilities
    }

    /// Whether unreliable messages go out as datagrams: both sides hold
    /// CAP_DATAGRAMS and the transport carries them.
    pub fn datagrams_enabled(&self) -> bool {
        self.state == State::Established && self.capabilities & wire::CAP_DATAGRAMS != 0
    }

    pub fn rtt(&self) -> RttStats {
        self.rtt
    }

    /// How the session ended, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }

    /// The last Error the server sent, if any.
    pub fn last_error(&self) -> Option<&wire::Error> {
        self.last_error.as_ref()
    }

    /// Datagrams dropped because the queue was full or they did not fit.
    pub fn dropped_datagrams(&self) -> u64 {
        self.dropped_datagrams
    }

    /// Messages and bytes in and out so far.
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// Bytes waiting in the reliable outbox.
    pub fn pending_bytes(&self) -> usize {
        self.outbox.len()
    }

    /// The transport's current datagram payload limit (after its own
    /// prefix); datagrams are packed to the smaller of it and the limits of
    /// the protocol and the Welcome.
    pub fn set_datagram_limit(&mut self, max_len: usize) {
        self.transport_datagram_limit = max_len;
        self.apply_datagram_limit();
    }

    fn apply_datagram_limit(&mut self) {
        let server = self.welcome.as_ref().map_or(MAX_DATAGRAM_LEN, |welcome| {
            usize::from(welcome.limits.max_datagram_len).max(1)
        });
        let limit = self.transport_datagram_limit.min(server).min(MAX_DATAGRAM_LEN);
        if limit != self.datagram_limit {
            self.flush_packer();
            self.datagram_limit = limit;
            self.packer = DatagramPacker::new(limit);
        }
    }

    // ----- commands -----

    /// Queues Hello: the first frame of the session.
    pub fn hello(&mut self, credentials: &Credentials, now: Now) -> Result<(), SendError> {
        if self.state != State::Connecting {
            return Err(SendError::WrongState(self.state));
        }
        let hello = Hello {
            min_version: wire::MIN_PROTOCOL_VERSION,
            max_version: wire::PROTOCOL_VERSION,
            capabilities: self.config.capabilities,
            client_name: text(&self.config.client_name, "client_name")?,
            access_token: optional_text(&credentials.access_token, "access_token")?,
            resume_token: optional_text(&credentials.resume_token, "resume_token")?,
            nickname: optional_text(&credentials.nickname, "nickname")?,
        };
        encode_frame(&hello, &mut self.outbox);
        self.traffic.messages_out += 1;
        self.state = State::AwaitingWelcome;
        self.hello_sent_us = now.monotonic_us;
        self.last_heard_us = now.monotonic_us;
        Ok(())
    }

    /// Queues a message on the reliable channel.
    pub fn send<M: WireMessage>(&mut self, message: &M) -> Result<(), SendError> {
        self.check_send(M::DIRECTION, message_name::<M>())?;
        encode_frame(message, &mut self.outbox);
        self.traffic.messages_out += 1;
        Ok(())
    }

    /// Queues any message of the catalog on the reliable channel.
    pub fn send_message(&mut self, message: &Message) -> Result<(), SendError> {
        self.check_send(direction_of(message), message.name())?;
        encode_message_frame(message, &mut self.outbox);
        self.traffic.messages_out += 1;
        Ok(())
    }

    /// Queues a message that may be lost (Input, Ping): in a datagram when
    /// datagrams are enabled and the message may travel in one, else on the
    /// reliable channel. Returns the channel used.
    pub fn send_unreliable<M: WireMessage>(&mut self, message: &M) -> Result<Channel, SendError> {
        self.check_send(M::DIRECTION, message_name::<M>())?;
        self.traffic.messages_out += 1;
        if !self.datagrams_enabled() || !may_travel_in_datagram(M::CODE) {
            encode_frame(message, &mut self.outbox);
            return Ok(Channel::Reliable);
        }
        match self.packer.push(message) {
            Ok(Some(finished)) => self.queue_datagram(finished),
            Ok(None) => {}
            // Larger than any datagram: it must go reliably.
            Err(_) => {
                encode_frame(message, &mut self.outbox);
                return Ok(Channel::Reliable);
            }
        }
        Ok(Channel::Datagram)
    }

    /// Sends a Ping stamped with `now` and returns its id; the Pong comes
    /// back as [`ClientEvent::Pong`]. `Channel::Datagram` falls back to the
    /// reliable channel when datagrams are not enabled.
    pub fn ping(&mut self, channel: Channel, now: Now) -> Result<u32, SendError> {
        let id = self.next_ping_id;
        let ping = Ping { id, sent_us: now.unix_us };
        match channel {
            Channel::Reliable => self.send(&ping)?,
            Channel::Datagram => {
                self.send_unreliable(&ping)?;
            }
        }
        self.next_ping_id = self.next_ping_id.wrapping_add(1).max(1);
        self.pings[id as usize % PING_SLOTS] = PingSlot { id, sent: now, pending: true };
        self.last_ping_us = now.monotonic_us;
        Ok(id)
    }

    /// Ends the session with Bye. The event `Closed` follows; flush
    /// `poll_transmit` before closing the transport.
    pub fn close(&mut self, code: ErrorCode, reason: &str) {
        self.close_with(code as u16, reason, CloseSource::Local);
    }

    fn close_with(&mut self, code: u16, reason: &str, source: CloseSource) {
        if self.state == State::Closed {
            return;
        }
        // Bye goes only to a server that still listens: not after its own
        // Bye, not over a dead transport, not before Hello.
        if source == CloseSource::Local && self.state != State::Connecting {
            let bye = Bye { code, reason: truncated_reason(reason) };
            encode_frame(&bye, &mut self.outbox);
            self.traffic.messages_out += 1;
        }
        self.state = State::Closed;
        self.datagrams.clear();
        let _ = self.packer.finish();
        let closed = CloseReason { code, reason: reason.to_owned(), source };
        self.closed = Some(closed.clone());
        self.events.push_back(ClientEvent::Closed(closed));
    }

    fn check_send(&self, direction: Direction, name: &'static str) -> Result<(), SendError> {
        if direction == Direction::ServerToClient {
            return Err(SendError::ServerMessage(name));
        }
        if self.state != State::Established {
            return Err(SendError::WrongState(self.state));
        }
        if self.outbox.len() >= self.config.max_outbox_bytes {
            return Err(SendError::Backpressure(self.outbox.len()));
        }
        Ok(())
    }

    // ----- input -----

    /// A frame body from the reliable channel.
    pub fn handle_frame(&mut self, body: &Bytes, now: Now) {
        self.traffic.bytes_in += (body.len() + varint_len(body.len())) as u64;
        self.handle_body(body, Channel::Reliable, now);
    }

    /// The payload of one datagram: one or more whole frames.
    pub fn handle_datagram(&mut self, datagram: &Bytes, now: Now) {
        if self.state == State::Closed {
            return;
        }
        self.traffic.bytes_in += datagram.len() as u64;
        let bodies = match datagram_bodies(datagram) {
            Ok(bodies) => bodies,
            Err(error) => return self.violation(error.code(), &error.to_string()),
        };
        for body in bodies {
            match body {
                Ok(body) => self.handle_body(&body, Channel::Datagram, now),
                Err(error) => return self.violation(error.code(), &error.to_string()),
            }
        }
    }

    /// The reliable channel's framing failed (an oversized length prefix, a
    /// frame split across WebSocket messages).
    pub fn handle_framing_error(&mut self, error: DecodeError) {
        self.violation(error.code(), &error.to_string());
    }

    /// The transport ended (or failed) without a Bye.
    pub fn handle_transport_closed(&mut self, reason: &str) {
        self.close_with(ErrorCode::None as u16, reason, CloseSource::Transport);
    }

    fn handle_body(&mut self, body: &Bytes, channel: Channel, now: Now) {
        if self.state == State::Closed {
            return;
        }
        self.last_heard_us = now.monotonic_us;
        self.traffic.messages_in += 1;
        let message = match decode_body(body) {
            Ok(message) => message,
            // An optional extension we do not know: skip it.
            Err(DecodeError::UnknownType { code }) if code > u64::from(MAX_CORE_TYPE_CODE) => {
                return
            }
            Err(error) => return self.violation(error.code(), &error.to_string()),
        };
        if channel == Channel::Datagram && !may_travel_in_datagram(message.code()) {
            let text = format!("{} may not travel in a datagram", message.name());
            return self.violation(ErrorCode::UnexpectedMessage, &text);
        }
        if direction_of(&message) == Direction::ClientToServer {
            let text = format!("{} is sent by clients only", message.name());
            return self.violation(ErrorCode::UnexpectedMessage, &text);
        }
        self.dispatch(message, channel, now);
    }

    fn dispatch(&mut self, message: Message, channel: Channel, now: Now) {
        match (self.state, message) {
            (_, Message::Bye(bye)) => {
                self.close_with(bye.code, bye.reason.as_str(), CloseSource::Peer)
            }
            (_, Message::Ping(ping)) => self.answer_ping(&ping, channel, now),
            (_, Message::Pong(pong)) => self.handle_pong(&pong, channel, now),
            (_, Message::Error(error)) => {
                self.last_error = Some(error.clone());
                self.push_event(ClientEvent::Message(Message::Error(error)));
            }
            (State::AwaitingWelcome, Message::Welcome(welcome)) => {
                self.handle_welcome(welcome, now)
            }
            (State::Established, other @ Message::Welcome(_)) | (State::Connecting, other) => {
                let text = format!("{} arrived before Hello or twice", other.name());
                self.violation(ErrorCode::UnexpectedMessage, &text)
            }
            (State::AwaitingWelcome, other) => {
                let text = format!("{} arrived before Welcome", other.name());
                self.violation(ErrorCode::UnexpectedMessage, &text)
            }
            (_, other) => self.push_event(ClientEvent::Message(other)),
        }
    }

    fn handle_welcome(&mut self, welcome: Welcome, now: Now) {
        let versions = wire::MIN_PROTOCOL_VERSION..=wire::PROTOCOL_VERSION;
        if !versions.contains(&welcome.version) {
            let text = format!("Welcome chose version {}", welcome.version);
            return self.violation(ErrorCode::UnsupportedVersion, &text);
        }
        if welcome.capabilities & !self.config.capabilities != 0 {
            let text =
                format!("Welcome granted capabilities {:#x} never offered", welcome.capabilities);
            return self.violation(ErrorCode::UnexpectedMessage, &text);
        }
        self.capabilities = welcome.capabilities;
        self.state = State::Established;
        self.last_ping_us = now.monotonic_us;
        let welcome = Box::new(welcome);
        self.welcome = Some(welcome.clone());
        self.apply_datagram_limit();
        self.push_event(ClientEvent::Welcome(welcome));
    }

    /// Answers at once, on the channel the Ping came by, so arrival and
    /// departure share one stamp.
    fn answer_ping(&mut self, ping: &Ping, channel: Channel, now: Now) {
        let pong = Pong {
            id: ping.id,
            ping_sent_us: ping.sent_us,
            received_us: now.unix_us,
            sent_us: now.unix_us,
        };
        if channel == Channel::Datagram && self.datagrams_enabled() {
            if let Ok(Some(finished)) = self.packer.push(&pong) {
                self.queue_datagram(finished);
            }
            return;
        }
        encode_frame(&pong, &mut self.outbox);
    }

    fn handle_pong(&mut self, pong: &Pong, channel: Channel, now: Now) {
        let slot = &mut self.pings[pong.id as usize % PING_SLOTS];
        // Unknown, stale, duplicated (datagrams) or forged: not ours to time.
        if !slot.pending || slot.id != pong.id || slot.sent.unix_us != pong.ping_sent_us {
            return;
        }
        slot.pending = false;
        let sent = slot.sent;
        let held_us = pong.sent_us.saturating_sub(pong.received_us);
        let rtt_us = now.monotonic_us.saturating_sub(sent.monotonic_us).saturating_sub(held_us);
        let clock_offset_us = clock_offset_us(sent.unix_us, pong, now.unix_us);
        self.record_rtt(rtt_us, clock_offset_us);
        let sample = PongSample { id: pong.id, rtt_us, clock_offset_us, channel };
        self.push_event(ClientEvent::Pong(sample));
    }

    fn record_rtt(&mut self, rtt_us: u64, clock_offset_us: i64) {
        let rtt = &mut self.rtt;
        if rtt.samples == 0 || rtt_us <= rtt.min_us {
            rtt.min_us = rtt_us;
            rtt.clock_offset_us = clock_offset_us;
        }
        rtt.smoothed_us = match rtt.samples {
            0 => rtt_us,
            _ => (rtt.smoothed_us * 7 + rtt_us) / 8,
        };
        rtt.latest_us = rtt_us;
        rtt.samples += 1;
    }

    /// The server broke the protocol: tell it with Bye and close.
    fn violation(&mut self, code: ErrorCode, text: &str) {
        self.close_with(code as u16, text, CloseSource::Local);
    }

    fn push_event(&mut self, event: ClientEvent) {
        if self.events.len() >= self.config.max_pending_events {
            return self.close(ErrorCode::Internal, "client event queue full");
        }
        self.events.push_back(event);
    }

    fn queue_datagram(&mut self, datagram: Bytes) {
        if self.datagrams.len() >= MAX_QUEUED_DATAGRAMS {
            self.dropped_datagrams += 1;
            return;
        }
        self.datagrams.push_back(datagram);
    }

    fn flush_packer(&mut self) {
        if let Some(datagram) = self.packer.finish() {
            self.queue_datagram(datagram);
        }
    }

    // ----- timers -----

    /// The next deadline (monotonic microseconds) at which `handle_timeout`
    /// must be called.
    pub fn timeout(&self) -> Option<u64> {
        match self.state {
            State::Connecting | State::Closed => None,
            State::AwaitingWelcome => {
                Some(self.hello_sent_us + self.config.welcome_timeout_ms * 1_000)
            }
            // Without heartbeats the server may rightly stay silent: the
            // application watches it then.
            State::Established if !self.heartbeat_on() => None,
            State::Established => {
                let welcome = self.welcome.as_ref()?;
                let heartbeat = self.last_ping_us + u64::from(welcome.heartbeat_ms) * 1_000;
                let idle = match welcome.idle_timeout_ms {
                    0 => u64::MAX,
                    idle_ms => self.last_heard_us + u64::from(idle_ms) * 1_000,
                };
                Some(idle.min(heartbeat))
            }
        }
    }

    fn heartbeat_on(&self) -> bool {
        self.config.heartbeat
            && self.welcome.as_ref().is_some_and(|welcome| welcome.heartbeat_ms > 0)
    }

    /// Timers: the Welcome deadline, the heartbeat and the server's silence.
    pub fn handle_timeout(&mut self, now: Now) {
        match self.state {
            State::AwaitingWelcome if now.monotonic_us >= self.timeout().unwrap_or(u64::MAX) => {
                self.close(ErrorCode::Timeout, "no Welcome in time")
            }
            State::Established if self.heartbeat_on() => {
                let Some(welcome) = self.welcome.as_ref() else { return };
                let idle_us = u64::from(welcome.idle_timeout_ms) * 1_000;
                let heartbeat_us = u64::from(welcome.heartbeat_ms) * 1_000;
                // Our heartbeats draw Pongs: silence this long means the
                // server or the path is gone.
                if idle_us > 0 && now.monotonic_us >= self.last_heard_us + idle_us {
                    return self.close(ErrorCode::Timeout, "the server fell silent");
                }
                if now.monotonic_us >= self.last_ping_us + heartbeat_us {
                    // A full outbox refuses the Ping; the deadline moves on
                    // regardless, so a stalled transport is not spun on.
                    let _ = self.ping(Channel::Reliable, now);
                    self.last_ping_us = now.monotonic_us;
                }
            }
            _ => {}
        }
    }

    // ----- output -----

    /// The next event for the application.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Everything queued for the reliable channel, as one buffer of frames.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        let transmit = (!self.outbox.is_empty()).then(|| self.outbox.split().freeze())?;
        self.traffic.bytes_out += transmit.len() as u64;
        Some(transmit)
    }

    /// The next datagram payload (whole frames, at most the datagram limit).
    #[must_use]
    pub fn poll_datagram(&mut self) -> Option<Bytes> {
        if self.datagrams.is_empty() {
            self.flush_packer();
        }
        let datagram = self.datagrams.pop_front()?;
        self.traffic.bytes_out += datagram.len() as u64;
        Some(datagram)
    }
}

/// Bytes of the LEB128 length prefix of a frame body of `len` bytes.
fn varint_len(len: usize) -> usize {
    (usize::BITS - len.max(1).leading_zeros()).div_ceil(7) as usize
}

/// `((t1 - t0) + (t2 - t3)) / 2` in signed arithmetic.
fn clock_offset_us(t0: u64, pong: &Pong, t3: u64) -> i64 {
    let signed = |value: u64| i128::from(value);
    let twice = (signed(pong.received_us) - signed(t0)) + (signed(pong.sent_us) - signed(t3));
    (twice / 2).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Messages allowed in datagrams (PROTOCOL.md section 1.1).
pub fn may_travel_in_datagram(code: u16) -> bool {
    matches!(
        code,
        wire::Input::CODE
            | wire::Ping::CODE
            | wire::Pong::CODE
            | wire::ArenaState::CODE
            | wire::TetrisDelta::CODE
    )
}

fn direction_of(message: &Message) -> Direction {
    let code = message.code();
    wire::CATALOG
        .iter()
        .find(|info| info.code == code)
        .map_or(Direction::Both, |info| info.direction)
}

fn message_name<M: WireMessage>() -> &'static str {
    wire::CATALOG.iter().find(|info| info.code == M::CODE).map_or("message", |info| info.name)
}

fn text<const MAX: usize>(value: &str, field: &'static str) -> Result<Text<MAX>, SendError> {
    Text::new(value).map_err(|_| SendError::TooLong { field })
}

fn optional_text<const MAX: usize>(
    value: &Option<String>,
    field: &'static str,
) -> Result<Option<Text<MAX>>, SendError> {
    value.as_deref().map(|value| text(value, field)).transpose()
}

/// Cuts `text` at a character boundary to fit a reason field.
fn truncated_reason(text: &str) -> Text<{ wire::MAX_REASON_LEN }> {
    let mut end = text.len().min(wire::MAX_REASON_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Text::new(&text[..end]).expect("cut to the limit")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::wire::{FrameDecoder, Input, Limits, RoomReady};

    const UNIX_BASE_US: u64 = 1_700_000_000_000_000;

    fn at_us(monotonic_us: u64) -> Now {
        Now { monotonic_us, unix_us: UNIX_BASE_US + monotonic_us }
    }

    fn body<M: WireMessage>(message: &M) -> Bytes {
        let mut out = BytesMut::new();
        wire::frame::encode_body(message, &mut out);
        out.freeze()
    }

    fn sent(session: &mut ClientSession) -> Vec<Message> {
        let mut decoder = FrameDecoder::new();
        if let Some(bytes) = session.poll_transmit() {
            decoder.extend(&bytes);
        }
        std::iter::from_fn(|| decoder.next_message().unwrap()).collect()
    }

    fn welcome(capabilities: u32) -> Welcome {
        Welcome {
            version: 1,
            capabilities,
            session_id: 9,
            player_id: 42,
            nickname: Text::from_static("zoë"),
            heartbeat_ms: 5_000,
            idle_timeout_ms: 30_000,
            limits: Limits {
                max_frame_len: 65_536,
                max_datagram_len: 1_200,
                max_chat_len: 512,
                max_inputs_per_second: 120,
            },
            ..Welcome::default()
        }
    }

    fn established(transport_datagrams: bool, granted: u32) -> ClientSession {
        let config = ClientConfig { transport_datagrams, ..ClientConfig::default() };
        let mut session = ClientSession::new(config, at_us(0));
        session.hello(&Credentials::guest("zoë"), at_us(1_000)).unwrap();
        let _ = sent(&mut session);
        session.handle_frame(&body(&welcome(granted)), at_us(2_000));
        assert!(matches!(session.poll_event(), Some(ClientEvent::Welcome(_))));
        session
    }

    #[test]
    fn hello_then_welcome_establishes_the_session() {
        let mut session = ClientSession::new(ClientConfig::default(), at_us(0));
        assert_eq!(session.state(), State::Connecting);
        assert_eq!(session.timeout(), None);
        session.hello(&Credentials::guest("zoë"), at_us(10)).unwrap();
        assert_eq!(session.state(), State::AwaitingWelcome);
        let messages = sent(&mut session);
        let [Message::Hello(hello)] = &messages[..] else { panic!("{messages:?}") };
        // A WebSocket client does not offer datagrams.
        assert_eq!(hello.capabilities, wire::CAP_ALL & !wire::CAP_DATAGRAMS);
        assert_eq!((hello.min_version, hello.max_version), (1, 1));
        assert_eq!(hello.nickname.as_ref().map(Text::as_str), Some("zoë"));
        assert!(hello.access_token.is_none());
        assert_eq!(
            session.hello(&Credentials::default(), at_us(11)),
            Err(SendError::WrongState(State::AwaitingWelcome))
        );
        assert_eq!(
            session.send(&RoomReady { ready: true }),
            Err(SendError::WrongState(State::AwaitingWelcome))
        );

        session.handle_frame(&body(&welcome(wire::CAP_CHAT)), at_us(20));
        let Some(ClientEvent::Welcome(received)) = session.poll_event() else { panic!("Welcome") };
        assert_eq!((received.player_id, received.nickname.as_str()), (42, "zoë"));
        assert_eq!(session.state(), State::Established);
        assert_eq!(session.capabilities(), wire::CAP_CHAT);
        assert!(!session.datagrams_enabled());
        assert_eq!(
            session.send(&wire::Welcome::default()),
            Err(SendError::ServerMessage("Welcome"))
        );
        session.send(&RoomReady { ready: true }).unwrap();
        assert_eq!(sent(&mut session), [Message::RoomReady(RoomReady { ready: true })]);
    }

    /// Proves RTT and clock offset follow PROTOCOL.md's formulas: a 20 ms
    /// path each way, the server 5 ms ahead and holding the Ping 300 us.
    #[test]
    fn pong_timing_maths_with_fixed_times() {
        let mut session = established(false, 0);
        let t0 = at_us(10_000_000);
        let id = session.ping(Channel::Reliable, t0).unwrap();
        let [Message::Ping(ping)] = &sent(&mut session)[..] else { panic!("one Ping") };
        assert_eq!((ping.id, ping.sent_us), (id, t0.unix_us));
        let t1 = t0.unix_us + 20_000 + 5_000;
        let pong = Pong { id, ping_sent_us: ping.sent_us, received_us: t1, sent_us: t1 + 300 };
        let t3 = t0.plus_us(40_300);
        session.handle_frame(&body(&pong), t3);
        let expected =
            PongSample { id, rtt_us: 40_000, clock_offset_us: 5_000, channel: Channel::Reliable };
        assert_eq!(session.poll_event(), Some(ClientEvent::Pong(expected)));
        let rtt = session.rtt();
        assert_eq!(
            (rtt.samples, rtt.latest_us, rtt.min_us, rtt.smoothed_us),
            (1, 40_000, 40_000, 40_000)
        );
        assert_eq!(rtt.clock_offset_us, 5_000);

        // A duplicate (datagrams duplicate), a Pong for no Ping, and one
        // whose echo does not match are not timed.
        session.handle_frame(&body(&pong), t3.plus_us(10));
        session.handle_frame(&body(&Pong { id: id + 1, ..pong.clone() }), t3.plus_us(20));
        let id2 = session.ping(Channel::Reliable, t3).unwrap();
        session.handle_frame(
            &body(&Pong { id: id2, ping_sent_us: 1, ..pong.clone() }),
            t3.plus_us(30),
        );
        assert_eq!(session.poll_event(), None);

        // A server behind the client gives a negative offset; the smoothed
        // RTT moves an eighth of the way.
        let t0 = at_us(20_000_000);
        let id3 = session.ping(Channel::Reliable, t0).unwrap();
        let t1 = t0.unix_us + 10_000 - 7_000;
        let pong = Pong { id: id3, ping_sent_us: t0.unix_us, received_us: t1, sent_us: t1 };
        session.handle_frame(&body(&pong), t0.plus_us(20_000));
        let Some(ClientEvent::Pong(sample)) = session.poll_event() else { panic!("Pong") };
        assert_eq!((sample.rtt_us, sample.clock_offset_us), (20_000, -7_000));
        assert_eq!(session.rtt().smoothed_us, (40_000 * 7 + 20_000) / 8);
        assert_eq!((session.rtt().min_us, session.rtt().clock_offset_us), (20_000, -7_000));
    }

    #[test]
    fn server_ping_is_answered_at_once_on_its_channel() {
        let mut session = established(false, 0);
        let now = at_us(3_000_000);
        session.handle_frame(&body(&Ping { id: 77, sent_us: 123 }), now);
        let expected =
            Pong { id: 77, ping_sent_us: 123, received_us: now.unix_us, sent_us: now.unix_us };
        assert_eq!(sent(&mut session), [Message::Pong(expected.clone())]);
        assert_eq!(session.poll_event(), None);

        let mut session = established(true, wire::CAP_DATAGRAMS);
        let mut datagram = BytesMut::new();
        encode_frame(&Ping { id: 77, sent_us: 123 }, &mut datagram);
        session.handle_datagram(&datagram.freeze(), now);
        assert!(session.poll_transmit().is_none());
        let reply = session.poll_datagram().expect("a Pong datagram");
        assert_eq!(wire::decode_frame(&reply), Ok(Message::Pong(expected)));
    }

    #[test]
    fn unreliable_messages_ride_datagrams_only_when_granted() {
        let input = Input { seq: 1, ..Input::default() };
        let mut session = established(true, wire::CAP_DATAGRAMS);
        assert!(session.datagrams_enabled());
        assert_eq!(session.send_unreliable(&input), Ok(Channel::Datagram));
        assert_eq!(
            session.send_unreliable(&Input { seq: 2, ..input.clone() }),
            Ok(Channel::Datagram)
        );
        // Only datagram messages may: RoomReady goes reliably.
        assert_eq!(session.send_unreliable(&RoomReady { ready: true }), Ok(Channel::Reliable));
        let datagram = session.poll_datagram().expect("both Inputs packed in one datagram");
        let seqs: Vec<u32> = datagram_bodies(&datagram)
            .unwrap()
            .map(|body| match decode_body(&body.unwrap()).unwrap() {
                Message::Input(input) => input.seq,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(seqs, [1, 2]);
        assert_eq!(session.poll_datagram(), None);
        session.set_datagram_limit(8);
        assert_eq!(session.send_unreliable(&input), Ok(Channel::Reliable), "too big for 8 bytes");

        // The server did not grant CAP_DATAGRAMS: everything is reliable.
        let mut session = established(true, 0);
        assert_eq!(session.send_unreliable(&input), Ok(Channel::Reliable));
        assert_eq!(session.ping(Channel::Datagram, at_us(5_000)).map(|_| ()), Ok(()));
        assert_eq!(session.poll_datagram(), None);
        assert_eq!(sent(&mut session).len(), 2);
    }

    #[test]
    fn error_then_bye_closes_without_answering() {
        let mut session = ClientSession::new(ClientConfig::default(), at_us(0));
        session
            .hello(
                &Credentials { access_token: Some("jwt".into()), ..Credentials::default() },
                at_us(1),
            )
            .unwrap();
        let _ = sent(&mut session);
        let error = wire::Error {
            code: ErrorCode::InvalidToken as u16,
            in_reply_to: Hello::CODE,
            text: Text::from_static("bad token"),
        };
        session.handle_frame(&body(&error), at_us(2));
        session.handle_frame(
            &body(&Bye {
                code: ErrorCode::InvalidToken as u16,
                reason: Text::from_static("bad token"),
            }),
            at_us(3),
        );
        assert_eq!(session.poll_event(), Some(ClientEvent::Message(Message::Error(error.clone()))));
        let Some(ClientEvent::Closed(reason)) = session.poll_event() else { panic!("Closed") };
        assert_eq!(reason.error_code(), Some(ErrorCode::InvalidToken));
        assert_eq!((reason.reason.as_str(), reason.source), ("bad token", CloseSource::Peer));
        assert_eq!(session.last_error(), Some(&error));
        assert!(session.poll_transmit().is_none(), "no Bye back to a Bye");
        assert_eq!(session.timeout(), None);
    }

    #[test]
    fn a_server_breaking_the_protocol_gets_bye_and_is_closed() {
        type Violation = Box<dyn Fn(&mut ClientSession)>;
        let violations: Vec<(Violation, ErrorCode)> = vec![
            (
                Box::new(|s| s.handle_frame(&body(&Hello::default()), at_us(5))),
                ErrorCode::UnexpectedMessage,
            ),
            (
                Box::new(|s| s.handle_frame(&body(&welcome(0)), at_us(5))),
                ErrorCode::UnexpectedMessage,
            ),
            (
                Box::new(|s| s.handle_frame(&Bytes::from_static(&[0x7f]), at_us(5))),
                ErrorCode::UnknownMessage,
            ),
            (
                Box::new(|s| s.handle_frame(&Bytes::from_static(&[0x03, 0x01]), at_us(5))),
                ErrorCode::Malformed,
            ),
            (
                Box::new(|s| {
                    let mut datagram = BytesMut::new();
                    encode_frame(&RoomReady { ready: true }, &mut datagram);
                    s.handle_datagram(&datagram.freeze(), at_us(5))
                }),
                ErrorCode::UnexpectedMessage,
            ),
            (Box::new(|s| s.handle_framing_error(DecodeError::EmptyFrame)), ErrorCode::Malformed),
        ];
        for (index, (violate, code)) in violations.into_iter().enumerate() {
            let mut session = established(true, wire::CAP_DATAGRAMS);
            violate(&mut session);
            assert_eq!(session.state(), State::Closed, "case {index}");
            let messages = sent(&mut session);
            assert!(
                matches!(messages.last(), Some(Message::Bye(bye)) if bye.code == code as u16),
                "case {index}: {messages:?}"
            );
            assert!(matches!(
                session.poll_event(),
                Some(ClientEvent::Closed(CloseReason { source: CloseSource::Local, .. }))
            ));
        }
        // Unknown extensions are skipped.
        let mut session = established(false, 0);
        session.handle_frame(&Bytes::from_static(&[0x80, 0x02, 0xff]), at_us(5));
        assert_eq!(session.state(), State::Established);
        // Welcome with capabilities never offered.
        let mut session = ClientSession::new(ClientConfig::default(), at_us(0));
        session.hello(&Credentials::default(), at_us(1)).unwrap();
        session.handle_frame(&body(&welcome(wire::CAP_DATAGRAMS)), at_us(2));
        assert_eq!(session.state(), State::Closed);
    }

    #[test]
    fn welcome_deadline_heartbeat_and_silence() {
        let mut session = ClientSession::new(ClientConfig::default(), at_us(0));
        session.hello(&Credentials::default(), at_us(1_000)).unwrap();
        assert_eq!(session.timeout(), Some(10_001_000));
        session.handle_timeout(at_us(10_000_999));
        assert_eq!(session.state(), State::AwaitingWelcome);
        session.handle_timeout(at_us(10_001_000));
        assert!(
            matches!(session.poll_event(), Some(ClientEvent::Closed(reason)) if reason.code == ErrorCode::Timeout as u16)
        );

        // Established at 2 ms: heartbeat every 5 s, silence limit 30 s.
        let mut session = established(false, 0);
        assert_eq!(session.timeout(), Some(5_002_000));
        session.handle_timeout(at_us(5_002_000));
        assert!(matches!(&sent(&mut session)[..], [Message::Ping(_)]));
        assert_eq!(session.timeout(), Some(10_002_000));
        for second in 2..6 {
            session.handle_timeout(at_us(second * 5_000_000 + 2_000));
        }
        assert_eq!(session.timeout(), Some(30_002_000), "silence ends it first");
        session.handle_timeout(at_us(30_002_000));
        let Some(ClientEvent::Closed(reason)) = session.poll_event() else { panic!("Closed") };
        assert_eq!(
            (reason.error_code(), reason.source),
            (Some(ErrorCode::Timeout), CloseSource::Local)
        );

        // Without heartbeats nothing is due.
        let config = ClientConfig { heartbeat: false, ..ClientConfig::default() };
        let mut session = ClientSession::new(config, at_us(0));
        session.hello(&Credentials::default(), at_us(0)).unwrap();
        session.handle_frame(&body(&welcome(0)), at_us(1));
        assert_eq!(session.timeout(), None);
    }

    #[test]
    fn local_close_sends_bye_once_and_transport_loss_sends_nothing() {
        let mut session = established(false, 0);
        session.close(ErrorCode::None, "done");
        session.close(ErrorCode::Internal, "again");
        let messages = sent(&mut session);
        assert!(
            matches!(&messages[..], [Message::Bye(bye)] if bye.code == 0 && bye.reason.as_str() == "done")
        );
        assert!(matches!(session.poll_event(), Some(ClientEvent::Closed(_))));
        assert_eq!(session.poll_event(), None);

        let mut session = established(false, 0);
        session.handle_transport_closed("connection reset");
        assert!(session.poll_transmit().is_none());
        let Some(ClientEvent::Closed(reason)) = session.poll_event() else { panic!("Closed") };
        assert_eq!(reason.source, CloseSource::Transport);
    }
}
