//! One client session of the Ludus protocol, sans-IO: the handshake
//! (Hello / Welcome), heartbeats, idle timeouts, Bye, and the error policy of
//! docs/PROTOCOL.md section 2. Transport-neutral: the WebSocket and
//! WebTransport drivers feed it frame bodies and send what it produces.
//!
//! Shape (as in quinn-proto): `handle_*` for input from the network and
//! timers, commands (`accept`, `reject`, `send`, `close`) from the
//! application, `poll_*` for output, `timeout` for the next deadline. Time
//! comes in as milliseconds on the caller's monotonic clock.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::wire::{
    self, decode_body, encode_frame, Bye, DecodeError, Direction, ErrorCode, Hello, Limits,
    Message, Ping, Pong, Text, Welcome, WireMessage, MAX_CORE_TYPE_CODE,
};

/// Session timings and limits, from the server's configuration.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The client must send Hello within this long of the transport opening.
    pub hello_timeout_ms: u64,
    /// How often the client is told to ping.
    pub heartbeat_ms: u32,
    /// Silence after which the session is closed.
    pub idle_timeout_ms: u32,
    /// Capability bits the server supports on this transport.
    pub capabilities: u32,
    pub limits: Limits,
    /// Most reliable bytes queued for the client before it counts as too slow.
    pub max_outbox_bytes: usize,
    /// How often the server pings an established session to estimate its
    /// RTT; 0 turns it off.
    pub ping_interval_ms: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            hello_timeout_ms: 10_000,
            heartbeat_ms: 5_000,
            idle_timeout_ms: 30_000,
            capabilities: wire::CAP_ALL,
            limits: Limits {
                max_frame_len: wire::MAX_FRAME_LEN as u32,
                max_datagram_len: wire::MAX_DATAGRAM_LEN as u16,
                max_chat_len: wire::MAX_CHAT_LEN as u16,
                max_inputs_per_second: 120,
            },
            max_outbox_bytes: 1 << 20,
            ping_interval_ms: 5_000,
        }
    }
}

/// The time of an input: monotonic milliseconds for timeouts, and the wall
/// clock (microseconds since the Unix epoch) for Pong timestamps, which
/// clients use to estimate the server's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub monotonic_ms: u64,
    pub unix_us: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for the client's Hello.
    AwaitingHello,
    /// Hello received and handed to the application, which must accept or reject.
    Authenticating,
    /// Welcome sent; any message may flow.
    Established,
    /// Bye sent or received; the driver flushes and closes the transport.
    Closed,
}

/// The session's round-trip time, from the server's own Pings (smoothed as
/// TCP does, RFC 6298: 7/8 old + 1/8 new).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttEstimate {
    pub latest_us: u64,
    pub smoothed_us: u64,
    pub min_us: u64,
    pub samples: u64,
}

/// What the application must act on.
// Messages stay inline: boxing them would allocate per received message on
// the hot path; the queue is short and reused.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// The client said Hello with a version we share; call `accept` or `reject`.
    Hello { hello: Box<Hello>, version: u16 },
    /// A message for the application (lobby, room, game, chat, ...).
    Message(Message),
    /// The session ended; `code` says why. Flush `poll_transmit`, then close
    /// the transport.
    Closed { code: ErrorCode, reason: String, by_peer: bool },
}

/// Who accepted the session, for the Welcome.
#[derive(Debug, Clone)]
pub struct Acceptance {
    pub session_id: u64,
    pub player_id: u64,
    pub nickname: Text<{ wire::MAX_NAME_LEN }>,
    pub resume_token: Text<{ wire::MAX_TOKEN_LEN }>,
    pub resumed: bool,
    /// Server clock for the Welcome, microseconds since the Unix epoch.
    pub server_time_us: u64,
}

#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    version: u16,
    capabilities: u32,
    last_heard_ms: u64,
    opened_ms: u64,
    outbox: BytesMut,
    events: VecDeque<SessionEvent>,
    /// Messages the application asked to send that were dropped because the
    /// client is not reading (the outbox was over its limit).
    dropped: u64,
    /// Largest datagram payload the transport takes; 0 when it has none.
    datagram_limit: usize,
    /// The datagram being filled, and finished ones waiting for the driver.
    datagram_current: BytesMut,
    datagram_queue: VecDeque<Bytes>,
    /// The message being dispatched arrived in a datagram.
    in_datagram: bool,
    /// When the server next pings (monotonic ms), and the Ping in flight.
    next_ping_ms: u64,
    ping_in_flight: Option<Ping>,
    rtt: Option<RttEstimate>,
    /// An event was polled since the last server Ping.
    events_polled: bool,
}

/// Finished datagrams held for the driver; past it, unreliable messages are
/// dropped (they are superseded by newer state anyway).
pub const MAX_PENDING_DATAGRAMS: usize = 64;

/// Most events queued before the application polls; a client that sends
/// faster than the shard drains gets rate-limited, not buffered without end.
pub const MAX_PENDING_EVENTS: usize = 256;

impl Session {
    pub fn new(config: SessionConfig, now_ms: u64) -> Session {
        Session {
            config,
            state: State::AwaitingHello,
            version: 0,
            capabilities: 0,
            last_heard_ms: now_ms,
            opened_ms: now_ms,
            outbox: BytesMut::new(),
            events: VecDeque::new(),
            dropped: 0,
            datagram_limit: 0,
            datagram_current: BytesMut::new(),
            datagram_queue: VecDeque::new(),
            in_datagram: false,
            next_ping_ms: 0,
            ping_in_flight: None,
            rtt: None,
            events_polled: false,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Capability bits in use (after Welcome).
    pub fn capabilities(&self) -> u32 {
        self.capabilities
    }

    pub fn dropped_messages(&self) -> u64 {
        self.dropped
    }

    /// A frame body from the reliable stream.
    pub fn handle_frame(&mut self, body: &Bytes, now: Now) {
        self.handle_body(body, now, false);
    }

    /// A frame body from a datagram (only datagram-capable messages allowed).
    pub fn handle_datagram_frame(&mut self, body: &Bytes, now: Now) {
        self.handle_body(body, now, true);
    }

    /// The transport's framing failed (e.g. an oversized length prefix).
    pub fn handle_framing_error(&mut self, error: DecodeError) {
        self.fail(error.code(), 0, &error.to_string());
    }

    fn handle_body(&mut self, body: &Bytes, now: Now, datagram: bool) {
        if self.state == State::Closed {
            return;
        }
        self.last_heard_ms = now.monotonic_ms;
        let message = match decode_body(body) {
            Ok(message) => message,
            Err(DecodeError::UnknownType { code }) if code > u64::from(MAX_CORE_TYPE_CODE) => {
                return; // An optional extension we do not know: skip it.
            }
            Err(error) => return self.fail(error.code(), 0, &error.to_string()),
        };
        if datagram && !may_travel_in_datagram(&message) {
            let text = format!("{} may not travel in a datagram", message.name());
            return self.fail(ErrorCode::UnexpectedMessage, message.code(), &text);
        }
        if !sent_by_client(&message) {
            let text = format!("{} is sent by the server only", message.name());
            return self.fail(ErrorCode::UnexpectedMessage, message.code(), &text);
        }
        self.in_datagram = datagram;
        self.dispatch(message, now);
        self.in_datagram = false;
    }

    fn dispatch(&mut self, message: Message, now: Now) {
        match (self.state, message) {
            (State::AwaitingHello, Message::Hello(hello)) => self.handle_hello(hello),
            (_, Message::Hello(_)) => {
                self.fail(ErrorCode::UnexpectedMessage, Hello::CODE, "Hello was already received")
            }
            (State::AwaitingHello | State::Authenticating, other) => {
                let text = format!("{} before the session was established", other.name());
                self.fail(ErrorCode::UnexpectedMessage, other.code(), &text)
            }
            (_, Message::Ping(ping)) => {
                // Answered at once, so arrival and departure share one stamp.
                let pong = Pong {
                    id: ping.id,
                    ping_sent_us: ping.sent_us,
                    received_us: now.unix_us,
                    sent_us: now.unix_us,
                };
                // A datagram Ping measures the datagram path: answer in kind.
                if self.in_datagram {
                    self.send_unreliable(&pong);
                } else {
                    encode_frame(&pong, &mut self.outbox);
                }
            }
            (_, Message::Pong(pong)) => {
                if !self.take_rtt_sample(&pong, now) {
                    self.push_event(SessionEvent::Message(Message::Pong(pong)));
                }
            }
            (_, Message::Bye(bye)) => {
                let code = ErrorCode::from_u16(bye.code).unwrap_or(ErrorCode::None);
                self.state = State::Closed;
                self.events.push_back(SessionEvent::Closed {
                    code,
                    reason: bye.reason.to_string(),
                    by_peer: true,
                });
            }
            (_, other) => self.push_event(SessionEvent::Message(other)),
        }
    }

    fn handle_hello(&mut self, hello: Hello) {
        let low = hello.min_version.max(wire::MIN_PROTOCOL_VERSION);
        let high = hello.max_version.min(wire::PROTOCOL_VERSION);
        if hello.min_version > hello.max_version || low > high {
            let text = format!(
                "client speaks {}..={}, server {}..={}",
                hello.min_version,
                hello.max_version,
                wire::MIN_PROTOCOL_VERSION,
                wire::PROTOCOL_VERSION
            );
            return self.fail(ErrorCode::UnsupportedVersion, Hello::CODE, &text);
        }
        self.version = high;
        self.capabilities = hello.capabilities & self.config.capabilities;
        self.state = State::Authenticating;
        self.events.push_back(SessionEvent::Hello { hello: Box::new(hello), version: high });
    }

    fn push_event(&mut self, event: SessionEvent) {
        if self.events.len() >= MAX_PENDING_EVENTS {
            return self.fail(ErrorCode::RateLimited, 0, "too many messages queued");
        }
        self.events.push_back(event);
    }

    /// The RTT estimate, once a Ping of ours has been answered.
    pub fn rtt(&self) -> Option<RttEstimate> {
        self.rtt
    }

    /// Whether `pong` answers our Ping in flight; if so, records the sample.
    fn take_rtt_sample(&mut self, pong: &Pong, now: Now) -> bool {
        match &self.ping_in_flight {
            Some(ping) if ping.id == pong.id && ping.sent_us == pong.ping_sent_us => {}
            _ => return false,
        }
        self.ping_in_flight = None;
        // Time at the client between receipt and answer is not network time.
        let held_us = pong.sent_us.saturating_sub(pong.received_us);
        let sample = now.unix_us.saturating_sub(pong.ping_sent_us).saturating_sub(held_us);
        self.rtt = Some(match self.rtt {
            None => {
                RttEstimate { latest_us: sample, smoothed_us: sample, min_us: sample, samples: 1 }
            }
            Some(rtt) => RttEstimate {
                latest_us: sample,
                smoothed_us: (rtt.smoothed_us * 7 + sample) / 8,
                min_us: rtt.min_us.min(sample),
                samples: rtt.samples + 1,
            },
        });
        true
    }

    /// Sends the server's own Ping when it is due.
    fn ping_if_due(&mut self, now: Now) {
        let interval = u64::from(self.config.ping_interval_ms);
        if self.state != State::Established || interval == 0 || now.monotonic_ms < self.next_ping_ms
        {
            return;
        }
        self.next_ping_ms = now.monotonic_ms + interval;
        self.release_idle_buffers();
        let id = self.ping_in_flight.as_ref().map_or(1, |ping| ping.id.wrapping_add(1));
        let ping = Ping { id, sent_us: now.unix_us };
        encode_frame(&ping, &mut self.outbox);
        self.ping_in_flight = Some(ping);
    }

    /// An idle session gives back its event queue: the queue's elements are
    /// whole messages (hundreds of bytes each), and a session that only
    /// exchanges heartbeats would hold them for its whole life. A queue in
    /// use between two Pings is kept, so busy sessions do not allocate.
    fn release_idle_buffers(&mut self) {
        if !self.events_polled && self.events.is_empty() && self.events.capacity() > 0 {
            self.events = VecDeque::new();
        }
        self.events_polled = false;
    }

    /// Accepts the session after `SessionEvent::Hello`: sends Welcome.
    pub fn accept(&mut self, acceptance: Acceptance) {
        assert_eq!(self.state, State::Authenticating, "accept without a pending Hello");
        // The Hello was the event; what counts from here is later traffic.
        self.events_polled = false;
        let welcome = Welcome {
            version: self.version,
            capabilities: self.capabilities,
            session_id: acceptance.session_id,
            player_id: acceptance.player_id,
            nickname: acceptance.nickname,
            resumed: acceptance.resumed,
            resume_token: acceptance.resume_token,
            server_time_us: acceptance.server_time_us,
            heartbeat_ms: self.config.heartbeat_ms,
            idle_timeout_ms: self.config.idle_timeout_ms,
            limits: self.config.limits.clone(),
        };
        self.state = State::Established;
        self.next_ping_ms = self.last_heard_ms + u64::from(self.config.ping_interval_ms);
        encode_frame(&welcome, &mut self.outbox);
    }

    /// Refuses the session after `SessionEvent::Hello` (bad token, banned...).
    pub fn reject(&mut self, code: ErrorCode, text: &str) {
        self.fail(code, Hello::CODE, text);
    }

    /// Queues a message for the client on the reliable stream. Returns false
    /// (and counts a drop) if the session is closed or the client is not
    /// reading fast enough.
    pub fn send<M: WireMessage>(&mut self, message: &M) -> bool {
        debug_assert!(M::DIRECTION != Direction::ClientToServer, "server sending a client message");
        if self.state != State::Established || self.outbox.len() >= self.config.max_outbox_bytes {
            self.dropped += 1;
            return false;
        }
        encode_frame(message, &mut self.outbox);
        true
    }

    /// The transport carries datagrams of up to `limit` payload bytes
    /// (WebTransport); unreliable messages use them once the client holds
    /// CAP_DATAGRAMS.
    pub fn enable_datagrams(&mut self, limit: usize) {
        self.datagram_limit = limit.min(wire::MAX_DATAGRAM_LEN);
    }

    fn datagrams_usable(&self) -> bool {
        self.state == State::Established
            && self.datagram_limit > 0
            && self.capabilities & wire::CAP_DATAGRAMS != 0
    }

    /// Queues a message that may be lost (states, inputs, pings): in a
    /// datagram when the session has them, else on the reliable stream.
    /// Several messages share a datagram up to the transport's limit.
    pub fn send_unreliable<M: WireMessage>(&mut self, message: &M) -> bool {
        if !self.datagrams_usable() {
            return self.send(message);
        }
        let start = self.datagram_current.len();
        encode_frame(message, &mut self.datagram_current);
        let frame_len = self.datagram_current.len() - start;
        if frame_len > self.datagram_limit {
            // Too big for any datagram: it goes reliably.
            self.datagram_current.truncate(start);
            return self.send(message);
        }
        if self.datagram_current.len() > self.datagram_limit {
            let frame = self.datagram_current.split_off(start);
            let full = std::mem::replace(&mut self.datagram_current, frame).freeze();
            if self.datagram_queue.len() >= MAX_PENDING_DATAGRAMS {
                self.dropped += 1;
            } else {
                self.datagram_queue.push_back(full);
            }
        }
        true
    }

    /// The next datagram payload for the transport (one or more frames).
    #[must_use]
    pub fn poll_datagram(&mut self) -> Option<Bytes> {
        if let Some(datagram) = self.datagram_queue.pop_front() {
            return Some(datagram);
        }
        (!self.datagram_current.is_empty()).then(|| self.datagram_current.split().freeze())
    }

    /// Queues already-encoded frames (a room's shared broadcast).
    pub fn send_encoded(&mut self, frames: &[u8]) -> bool {
        if self.state != State::Established || self.outbox.len() >= self.config.max_outbox_bytes {
            self.dropped += 1;
            return false;
        }
        self.outbox.extend_from_slice(frames);
        true
    }

    /// Queues one already-encoded frame that may be lost (a room's shared
    /// state broadcast): in a datagram when the session has them, else on
    /// the reliable stream, like [`Session::send_unreliable`].
    pub fn send_unreliable_encoded(&mut self, frame: &[u8]) -> bool {
        if !self.datagrams_usable() || frame.len() > self.datagram_limit {
            return self.send_encoded(frame);
        }
        if self.datagram_current.len() + frame.len() > self.datagram_limit {
            if self.datagram_queue.len() >= MAX_PENDING_DATAGRAMS {
                self.dropped += 1;
                self.datagram_current.clear();
            } else {
                let full = self.datagram_current.split().freeze();
                self.datagram_queue.push_back(full);
            }
        }
        self.datagram_current.extend_from_slice(frame);
        true
    }

    /// Closes the session from the server's side with Bye.
    pub fn close(&mut self, code: ErrorCode, reason: &str) {
        if self.state == State::Closed {
            return;
        }
        self.send_bye(code, reason);
        self.state = State::Closed;
        self.events.push_back(SessionEvent::Closed {
            code,
            reason: reason.to_owned(),
            by_peer: false,
        });
    }

    /// A protocol violation or refusal: Error, then Bye, then closed.
    fn fail(&mut self, code: ErrorCode, in_reply_to: u16, text: &str) {
        if self.state == State::Closed {
            return;
        }
        let error = wire::Error { code: code as u16, in_reply_to, text: truncated_text(text) };
        encode_frame(&error, &mut self.outbox);
        self.close(code, text);
    }

    fn send_bye(&mut self, code: ErrorCode, reason: &str) {
        let bye = Bye { code: code as u16, reason: truncated_text(reason) };
        encode_frame(&bye, &mut self.outbox);
    }

    /// Timers: the Hello deadline and the idle timeout.
    pub fn handle_timeout(&mut self, now: Now) {
        self.ping_if_due(now);
        let idle_deadline = match self.state {
            State::AwaitingHello => self.opened_ms + self.config.hello_timeout_ms,
            State::Authenticating | State::Established => {
                self.last_heard_ms + u64::from(self.config.idle_timeout_ms)
            }
            State::Closed => return,
        };
        if now.monotonic_ms < idle_deadline {
            return;
        }
        match self.state {
            State::AwaitingHello => self.fail(ErrorCode::Timeout, 0, "no Hello in time"),
            State::Authenticating | State::Established => {
                self.fail(ErrorCode::Timeout, 0, "idle timeout")
            }
            State::Closed => {}
        }
    }

    /// The next deadline at which `handle_timeout` must be called.
    pub fn timeout(&self) -> Option<u64> {
        match self.state {
            State::AwaitingHello => Some(self.opened_ms + self.config.hello_timeout_ms),
            State::Authenticating => {
                Some(self.last_heard_ms + u64::from(self.config.idle_timeout_ms))
            }
            State::Established => {
                let idle = self.last_heard_ms + u64::from(self.config.idle_timeout_ms);
                let ping = (self.config.ping_interval_ms > 0).then_some(self.next_ping_ms);
                Some(ping.map_or(idle, |ping| ping.min(idle)))
            }
            State::Closed => None,
        }
    }

    /// The next event for the application.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        let event = self.events.pop_front();
        self.events_polled |= event.is_some();
        event
    }

    /// Everything queued for the reliable stream, as one buffer of frames.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.outbox.is_empty()).then(|| self.outbox.split().freeze())
    }

    /// Bytes waiting in the outbox.
    pub fn pending_bytes(&self) -> usize {
        self.outbox.len()
    }
}

/// Messages allowed in datagrams (PROTOCOL.md section 1.1).
fn may_travel_in_datagram(message: &Message) -> bool {
    matches!(
        message,
        Message::Input(_)
            | Message::Ping(_)
            | Message::Pong(_)
            | Message::ArenaState(_)
            | Message::TetrisDelta(_)
    )
}

fn sent_by_client(message: &Message) -> bool {
    message.direction() != Direction::ServerToClient
}

/// Cuts `text` at a character boundary to fit a reason field.
fn truncated_text(text: &str) -> Text<{ wire::MAX_REASON_LEN }> {
    let mut end = text.len().min(wire::MAX_REASON_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Text::new(&text[..end]).expect("cut to the limit")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::wire::{FrameDecoder, Input, Ping, RoomReady};

    fn at(monotonic_ms: u64) -> Now {
        Now { monotonic_ms, unix_us: monotonic_ms * 1_000 + 1_700_000_000_000_000 }
    }

    fn body<M: WireMessage>(message: M) -> Bytes {
        let mut out = BytesMut::new();
        wire::frame::encode_body(&message, &mut out);
        out.freeze()
    }

    fn hello() -> Hello {
        Hello {
            min_version: 1,
            max_version: 3,
            capabilities: wire::CAP_DATAGRAMS | 1 << 30,
            ..Hello::default()
        }
    }

    fn acceptance() -> Acceptance {
        Acceptance {
            session_id: 7,
            player_id: 42,
            nickname: Text::from_static("guest-42"),
            resume_token: Text::from_static("resume"),
            resumed: false,
            server_time_us: 1,
        }
    }

    fn sent(session: &mut Session) -> Vec<Message> {
        let mut decoder = FrameDecoder::new();
        if let Some(bytes) = session.poll_transmit() {
            decoder.extend(&bytes);
        }
        std::iter::from_fn(|| decoder.next_message().unwrap()).collect()
    }

    fn established() -> Session {
        let mut session = Session::new(SessionConfig::default(), 0);
        session.handle_frame(&body(hello()), at(1));
        assert!(matches!(session.poll_event(), Some(SessionEvent::Hello { version: 1, .. })));
        session.accept(acceptance());
        session
    }

    #[test]
    fn hello_then_accept_sends_welcome_with_shared_version_and_capabilities() {
        let mut session = established();
        assert_eq!(session.state(), State::Established);
        let messages = sent(&mut session);
        let Message::Welcome(welcome) = &messages[0] else { panic!("{messages:?}") };
        assert_eq!(
            (welcome.version, welcome.capabilities, welcome.player_id),
            (1, wire::CAP_DATAGRAMS, 42)
        );
    }

    #[test]
    fn anything_before_hello_is_an_error_then_bye() {
        let mut session = Session::new(SessionConfig::default(), 0);
        session.handle_frame(&body(RoomReady { ready: true }), at(1));
        let messages = sent(&mut session);
        assert!(
            matches!(&messages[0], Message::Error(error) if error.code == ErrorCode::UnexpectedMessage as u16)
        );
        assert!(
            matches!(&messages[1], Message::Bye(bye) if bye.code == ErrorCode::UnexpectedMessage as u16)
        );
        assert_eq!(session.state(), State::Closed);
        assert!(matches!(session.poll_event(), Some(SessionEvent::Closed { by_peer: false, .. })));
    }

    #[test]
    fn no_shared_version_is_refused() {
        let mut session = Session::new(SessionConfig::default(), 0);
        session.handle_frame(
            &body(Hello { min_version: 2, max_version: 5, ..Hello::default() }),
            at(1),
        );
        let messages = sent(&mut session);
        assert!(
            matches!(&messages[0], Message::Error(error) if error.code == ErrorCode::UnsupportedVersion as u16)
        );
        assert_eq!(session.state(), State::Closed);
    }

    #[test]
    fn a_second_hello_and_server_only_messages_are_violations() {
        let mut session = established();
        let _ = sent(&mut session);
        session.handle_frame(&body(hello()), at(2));
        assert_eq!(session.state(), State::Closed);

        let mut session = established();
        let _ = sent(&mut session);
        session.handle_frame(&body(Welcome::default()), at(2));
        assert!(
            matches!(&sent(&mut session)[0], Message::Error(error) if error.in_reply_to == Welcome::CODE)
        );
    }

    #[test]
    fn only_datagram_messages_may_arrive_as_datagrams() {
        let mut session = established();
        session.handle_datagram_frame(&body(Input { seq: 1, ..Input::default() }), at(2));
        assert!(matches!(session.poll_event(), Some(SessionEvent::Message(Message::Input(_)))));
        session.handle_datagram_frame(&body(RoomReady { ready: true }), at(3));
        assert_eq!(session.state(), State::Closed);
    }

    #[test]
    fn malformed_and_unknown_core_types_close_but_extensions_are_skipped() {
        let mut session = established();
        session.handle_frame(&Bytes::from_static(&[0x80, 0x02]), at(2)); // type 0x100
        assert_eq!(session.state(), State::Established);
        session.handle_frame(&Bytes::from_static(&[0x7f]), at(3));
        assert_eq!(session.state(), State::Closed);
        let messages = sent(&mut session);
        assert!(
            matches!(messages.last(), Some(Message::Bye(bye)) if bye.code == ErrorCode::UnknownMessage as u16)
        );
    }

    #[test]
    fn hello_timeout_and_idle_timeout_close_the_session() {
        let mut session = Session::new(SessionConfig::default(), 0);
        assert_eq!(session.timeout(), Some(10_000));
        session.handle_timeout(at(9_999));
        assert_eq!(session.state(), State::AwaitingHello);
        session.handle_timeout(at(10_000));
        assert_eq!(session.state(), State::Closed);

        // Without server pings, the only deadline is the idle one.
        let config = SessionConfig { ping_interval_ms: 0, ..SessionConfig::default() };
        let mut session = Session::new(config, 0);
        session.handle_frame(&body(hello()), at(1));
        let _ = session.poll_event();
        session.accept(acceptance());
        let _ = sent(&mut session);
        session.handle_frame(&body(Ping { id: 1, sent_us: 5 }), at(20_000));
        let Message::Pong(pong) = &sent(&mut session)[0] else { panic!("Ping is answered") };
        assert_eq!((pong.id, pong.ping_sent_us, pong.received_us), (1, 5, at(20_000).unix_us));
        assert_eq!(session.timeout(), Some(50_000));
        session.handle_timeout(at(50_000));
        assert!(
            matches!(sent(&mut session).last(), Some(Message::Bye(bye)) if bye.code == ErrorCode::Timeout as u16)
        );
    }

    #[test]
    fn an_idle_session_gives_back_its_event_queue_at_the_next_ping() {
        let mut session = established();
        assert!(session.events.capacity() > 0, "the Hello event grew the queue");
        // Busy: an event polled since the last Ping keeps the queue.
        session.handle_frame(&body(RoomReady { ready: true }), at(2));
        assert!(matches!(session.poll_event(), Some(SessionEvent::Message(_))));
        session.handle_timeout(at(5_001));
        assert!(matches!(sent(&mut session).last(), Some(Message::Ping(_))));
        assert!(session.events.capacity() > 0, "kept while in use");
        // Quiet for a whole interval (heartbeats only): given back.
        session.handle_frame(&body(Ping { id: 1, sent_us: 1 }), at(6_000));
        session.handle_timeout(at(10_001));
        assert!(matches!(sent(&mut session).last(), Some(Message::Ping(_))));
        assert_eq!(session.events.capacity(), 0, "released while idle");
        // And grows again on the next message.
        session.handle_frame(&body(RoomReady { ready: false }), at(10_002));
        assert!(matches!(session.poll_event(), Some(SessionEvent::Message(_))));
    }

    #[test]
    fn the_server_pings_on_its_interval_and_estimates_rtt_from_the_pongs() {
        let mut session = established();
        let _ = sent(&mut session);
        assert_eq!(session.timeout(), Some(1 + 5_000), "the first ping is due");
        session.handle_timeout(at(5_001));
        let Message::Ping(ping) = &sent(&mut session)[0] else { panic!("the server pings") };
        assert_eq!(ping.sent_us, at(5_001).unix_us);
        // The client held it 1 ms before answering: 30 ms - 1 ms = 29 ms.
        let received_us = 777_000;
        let pong = Pong {
            id: ping.id,
            ping_sent_us: ping.sent_us,
            received_us,
            sent_us: received_us + 1_000,
        };
        session.handle_frame(&body(pong), at(5_031));
        assert!(session.poll_event().is_none(), "our own Pong is not the host's business");
        let rtt = session.rtt().expect("a sample");
        assert_eq!(
            (rtt.latest_us, rtt.smoothed_us, rtt.min_us, rtt.samples),
            (29_000, 29_000, 29_000, 1)
        );
        // A second sample is smoothed; a stray Pong reaches the host.
        session.handle_timeout(at(10_001));
        let Message::Ping(ping) = &sent(&mut session)[0] else { panic!("the next ping") };
        let pong = Pong { id: ping.id, ping_sent_us: ping.sent_us, received_us: 0, sent_us: 0 };
        session.handle_frame(&body(pong), at(10_009));
        let rtt = session.rtt().unwrap();
        assert_eq!(
            (rtt.latest_us, rtt.smoothed_us, rtt.min_us),
            (8_000, (29_000 * 7 + 8_000) / 8, 8_000)
        );
        let stray = Pong { id: 999, ping_sent_us: 1, received_us: 0, sent_us: 0 };
        session.handle_frame(&body(stray), at(10_010));
        assert!(matches!(session.poll_event(), Some(SessionEvent::Message(Message::Pong(_)))));
    }

    #[test]
    fn a_datagram_ping_is_answered_by_datagram_when_the_client_has_them() {
        let mut session = established();
        let _ = sent(&mut session);
        session.enable_datagrams(1_200);
        session.handle_datagram_frame(&body(Ping { id: 9, sent_us: 1 }), at(5));
        assert!(session.poll_transmit().is_none(), "not on the stream");
        let datagram = session.poll_datagram().expect("a datagram");
        let bodies: Vec<Bytes> =
            wire::datagram_bodies(&datagram).unwrap().map(Result::unwrap).collect();
        assert!(matches!(wire::decode_body(&bodies[0]), Ok(Message::Pong(pong)) if pong.id == 9));
        // A stream Ping is still answered on the stream.
        session.handle_frame(&body(Ping { id: 10, sent_us: 1 }), at(6));
        assert!(session.poll_transmit().is_some());
    }

    #[test]
    fn unreliable_messages_fill_datagrams_up_to_the_limit_then_fall_back_without_datagrams() {
        let mut session = established();
        let _ = sent(&mut session);
        session.enable_datagrams(64);
        for id in 0..10 {
            assert!(session.send_unreliable(&Ping { id, sent_us: 0 }));
        }
        let datagrams: Vec<Bytes> = std::iter::from_fn(|| session.poll_datagram()).collect();
        assert!(datagrams.len() >= 2 && datagrams.iter().all(|d| d.len() <= 64));
        let count: usize =
            datagrams.iter().map(|d| wire::datagram_bodies(d).unwrap().count()).sum();
        assert_eq!(count, 10);
        // Without the capability (WebSocket), the same call goes reliably.
        let mut session = Session::new(SessionConfig::default(), 0);
        session.handle_frame(&body(Hello { capabilities: 0, ..hello() }), at(1));
        let _ = session.poll_event();
        session.accept(acceptance());
        let _ = sent(&mut session);
        session.enable_datagrams(1_200);
        session.send_unreliable(&Ping { id: 1, sent_us: 0 });
        assert!(session.poll_datagram().is_none());
        assert!(session.poll_transmit().is_some());
    }

    #[test]
    fn peer_bye_closes_without_answering() {
        let mut session = established();
        let _ = sent(&mut session);
        session.handle_frame(&body(Bye { code: 0, reason: Text::from_static("done") }), at(2));
        assert_eq!(
            session.poll_event(),
            Some(SessionEvent::Closed {
                code: ErrorCode::None,
                reason: "done".into(),
                by_peer: true
            })
        );
        assert!(session.poll_transmit().is_none());
    }

    #[test]
    fn a_client_that_stops_reading_loses_messages_not_memory() {
        let config = SessionConfig { max_outbox_bytes: 64, ..SessionConfig::default() };
        let mut session = Session::new(config, 0);
        session.handle_frame(&body(hello()), at(1));
        let _ = session.poll_event();
        session.accept(acceptance());
        let ping = Ping { id: 1, sent_us: 1 };
        let accepted = (0..100).filter(|_| session.send(&ping)).count();
        assert!(accepted < 100 && session.dropped_messages() > 0);
        assert!(session.pending_bytes() < 64 + 32);
    }
}
