//! A small blocking client for tests and tools: one connection, one mio
//! `Poll`, calls that wait for their answer with a timeout. Not for load:
//! the load tester drives [`WsClient`] and [`WtClient`] by the thousand on
//! its own event loops.

use std::collections::VecDeque;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use super::session::{Channel, ClientEvent, ClientSession, CloseReason, Credentials, PongSample};
use super::tls::{self, Trust};
use super::ws::{WsClient, WsOptions, WsUrl};
use super::wt::{self, WtClient, WtOptions};
use super::{ClientError, Clock};
use crate::proto::wire::{ErrorCode, Message, Welcome, WireMessage};

/// How long `hello` waits for Welcome unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pong samples kept for `ping` to find its own among.
const MAX_KEPT_PONGS: usize = 64;
const TOKEN: Token = Token(0);

enum Transport {
    Ws(Box<WsClient>),
    Wt(Box<WtClient>),
}

impl Transport {
    fn session(&self) -> &ClientSession {
        match self {
            Transport::Ws(client) => client.session(),
            Transport::Wt(client) => client.session(),
        }
    }

    fn session_mut(&mut self) -> &mut ClientSession {
        match self {
            Transport::Ws(client) => client.session_mut(),
            Transport::Wt(client) => client.session_mut(),
        }
    }
}

/// A connected client that waits for answers.
pub struct Client {
    poll: Poll,
    events: Events,
    clock: Clock,
    transport: Transport,
    welcome: Option<Box<Welcome>>,
    inbox: VecDeque<Message>,
    pongs: VecDeque<PongSample>,
    closed: Option<CloseReason>,
}

impl WsOptions {
    /// Options whose `wss://` connections trust as `trust` says.
    pub fn with_trust(trust: &Trust) -> Result<WsOptions, ClientError> {
        Ok(WsOptions { tls: Some(tls::rustls_config(trust)?), ..WsOptions::default() })
    }
}

/// Connects over WebSocket to `url` (`ws://` or `wss://`; for `wss://`
/// `options.tls` must be set, e.g. by [`WsOptions::with_trust`]). Returns
/// as soon as the connection is started; `hello` completes it.
pub fn connect_ws(url: &str, options: &WsOptions) -> Result<Client, ClientError> {
    let url = WsUrl::parse(url)?;
    let address = (url.host.as_str(), url.port)
        .to_socket_addrs()?
        .next()
        .ok_or(ClientError::Url { url: url.host.clone(), reason: "the host has no address" })?;
    let clock = Clock::new();
    let mut client = WsClient::connect(address, &url, options, clock.now())?;
    let poll = Poll::new()?;
    client.register(poll.registry(), TOKEN)?;
    Ok(Client::new(poll, clock, Transport::Ws(Box::new(client))))
}

/// Connects over WebTransport to the server's UDP `address`, accepting only
/// the certificate whose SHA-256 is `cert_sha256`.
pub fn connect_wt(address: SocketAddr, cert_sha256: [u8; 32]) -> Result<Client, ClientError> {
    connect_wt_with(address, &WtOptions::new(Trust::CertificateHash(cert_sha256)))
}

/// [`connect_wt`] with every option.
pub fn connect_wt_with(address: SocketAddr, options: &WtOptions) -> Result<Client, ClientError> {
    let clock = Clock::new();
    let mut config = wt::quiche_config()?;
    let mut client = WtClient::connect(address, options, &mut config, clock.now())?;
    let poll = Poll::new()?;
    client.register(poll.registry(), TOKEN)?;
    client.flush(clock.now());
    Ok(Client::new(poll, clock, Transport::Wt(Box::new(client))))
}

impl Client {
    fn new(poll: Poll, clock: Clock, transport: Transport) -> Client {
        Client {
            poll,
            events: Events::with_capacity(16),
            clock,
            transport,
            welcome: None,
            inbox: VecDeque::new(),
            pongs: VecDeque::new(),
            closed: None,
        }
    }

    pub fn session(&self) -> &ClientSession {
        self.transport.session()
    }

    /// The WebTransport connection, for a WebTransport client.
    pub fn wt(&self) -> Option<&WtClient> {
        match &self.transport {
            Transport::Wt(client) => Some(client),
            Transport::Ws(_) => None,
        }
    }

    /// The WebSocket connection, for a WebSocket client.
    pub fn ws(&self) -> Option<&WsClient> {
        match &self.transport {
            Transport::Ws(client) => Some(client),
            Transport::Wt(_) => None,
        }
    }

    /// Says Hello as the guest `nickname` and waits for Welcome.
    pub fn hello(&mut self, nickname: &str) -> Result<Welcome, ClientError> {
        self.hello_with(&Credentials::guest(nickname), DEFAULT_TIMEOUT)
    }

    /// Says Hello with any credentials and waits for Welcome.
    pub fn hello_with(
        &mut self,
        credentials: &Credentials,
        timeout: Duration,
    ) -> Result<Welcome, ClientError> {
        let now = self.clock.now();
        self.transport.session_mut().hello(credentials, now)?;
        self.flush();
        self.run_until(timeout, "Welcome", |client| client.welcome.as_deref().cloned())
    }

    /// Pings on the reliable channel and returns the round-trip time.
    pub fn ping(&mut self) -> Result<Duration, ClientError> {
        self.ping_on(Channel::Reliable, DEFAULT_TIMEOUT)
            .map(|sample| Duration::from_micros(sample.rtt_us))
    }

    /// Pings on `channel` (a datagram falls back to the stream when the
    /// session has no datagrams) and returns the whole sample. A datagram
    /// Ping may be lost: then this times out.
    pub fn ping_on(
        &mut self,
        channel: Channel,
        timeout: Duration,
    ) -> Result<PongSample, ClientError> {
        let now = self.clock.now();
        let id = self.transport.session_mut().ping(channel, now)?;
        self.flush();
        self.run_until(timeout, "Pong", |client| {
            let index = client.pongs.iter().position(|sample| sample.id == id)?;
            client.pongs.remove(index)
        })
    }

    /// Sends a message on the reliable channel.
    pub fn send<M: WireMessage>(&mut self, message: &M) -> Result<(), ClientError> {
        self.transport.session_mut().send(message)?;
        self.flush();
        Ok(())
    }

    /// Sends any message of the catalog on the reliable channel.
    pub fn send_message(&mut self, message: &Message) -> Result<(), ClientError> {
        self.transport.session_mut().send_message(message)?;
        self.flush();
        Ok(())
    }

    /// Sends an unreliable message (Input...) in a datagram when the
    /// session has datagrams, else reliably; returns the channel used.
    pub fn send_datagram<M: WireMessage>(&mut self, message: &M) -> Result<Channel, ClientError> {
        let channel = self.transport.session_mut().send_unreliable(message)?;
        self.flush();
        Ok(channel)
    }

    /// The next message from the server, waiting at most `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Result<Message, ClientError> {
        self.run_until(timeout, "a message", |client| client.inbox.pop_front())
    }

    /// Says Bye and waits (at most 2 s) for the transport to finish.
    pub fn close(mut self) -> Result<(), ClientError> {
        if self.closed.is_none() {
            self.transport.session_mut().close(ErrorCode::None, "client closing");
            self.flush();
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while !self.is_done() && Instant::now() < deadline {
            self.step(deadline)?;
        }
        Ok(())
    }

    /// Whether the transport has finished.
    pub fn is_done(&self) -> bool {
        match &self.transport {
            Transport::Ws(client) => client.is_done(),
            Transport::Wt(client) => client.is_done(),
        }
    }

    /// How the session ended, if it has.
    pub fn closed(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }

    fn flush(&mut self) {
        let now = self.clock.now();
        match &mut self.transport {
            Transport::Ws(client) => client.flush(now),
            Transport::Wt(client) => client.flush(now),
        }
        self.collect_events();
    }

    /// Runs the event loop until `found` yields, the session closes, or
    /// `timeout` passes.
    fn run_until<T>(
        &mut self,
        timeout: Duration,
        what: &'static str,
        mut found: impl FnMut(&mut Client) -> Option<T>,
    ) -> Result<T, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = found(self) {
                return Ok(value);
            }
            if let Some(closed) = self.closed.clone() {
                return Err(self
                    .take_error()
                    .unwrap_or(ClientError::Closed { code: closed.code, reason: closed.reason }));
            }
            if Instant::now() >= deadline {
                return Err(ClientError::Timeout(what));
            }
            self.step(deadline)?;
        }
    }

    /// One turn of the loop: wait for readiness or the next deadline, then
    /// drive the transport.
    fn step(&mut self, deadline: Instant) -> Result<(), ClientError> {
        let now = self.clock.now();
        let transport_deadline = match &self.transport {
            Transport::Ws(client) => client.poll_timeout(),
            Transport::Wt(client) => client.poll_timeout(),
        };
        let mut wait = deadline.saturating_duration_since(Instant::now());
        if let Some(deadline_us) = transport_deadline {
            wait = wait.min(self.clock.until(now, deadline_us));
        }
        match self.poll.poll(&mut self.events, Some(wait)) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(ClientError::Io(error)),
        }
        let now = self.clock.now();
        let due = transport_deadline.is_some_and(|deadline_us| now.monotonic_us >= deadline_us);
        match &mut self.transport {
            Transport::Ws(client) if due => client.on_timeout(now),
            Transport::Ws(client) => client.on_readable(now),
            Transport::Wt(client) if due => client.on_timeout(now),
            Transport::Wt(client) => client.on_readable(now),
        }
        self.collect_events();
        Ok(())
    }

    fn collect_events(&mut self) {
        loop {
            let event = match &mut self.transport {
                Transport::Ws(client) => client.poll_event(),
                Transport::Wt(client) => client.poll_event(),
            };
            match event {
                None => return,
                Some(ClientEvent::Welcome(welcome)) => self.welcome = Some(welcome),
                Some(ClientEvent::Message(message)) => self.inbox.push_back(message),
                Some(ClientEvent::Pong(sample)) => {
                    if self.pongs.len() == MAX_KEPT_PONGS {
                        self.pongs.pop_front();
                    }
                    self.pongs.push_back(sample);
                }
                Some(ClientEvent::Closed(reason)) => self.closed = Some(reason),
            }
        }
    }

    fn take_error(&mut self) -> Option<ClientError> {
        match &mut self.transport {
            Transport::Ws(client) => client.take_error(),
            Transport::Wt(client) => client.take_error(),
        }
    }
}
