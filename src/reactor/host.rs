//! What the transports hand to the rest of the server: sessions and HTTP
//! requests. Both the WebTransport and the WebSocket driver call one
//! [`Host`]; neither knows what a room or an account is.

use crate::proto::session::{Acceptance, Now, Session, SessionEvent};
use crate::proto::wire::{ErrorCode, Hello, Message, Text};
use crate::reactor::game::outbox::{HostMessage, HostOutput};
use crate::reactor::web::{self, ServerFacts, WebResponse};

/// Which transport carries a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    WebTransport,
    WebSocket,
}

/// A session's address on its shard: transport and connection slab index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionRef {
    pub shard: u16,
    pub transport: Transport,
    pub connection: usize,
}

pub use crate::proto::http::{Headers, HttpRequest};

/// Which HTTP carried a request (and so which endpoint answers it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/1.1 over TCP (TLS or the plain development port).
    Http1,
    /// HTTP/3 over QUIC.
    Http3,
}

/// Where a deferred HTTP answer goes: one request on one connection of one
/// shard. `serial` tells a reused slab slot from the connection that asked
/// (an answer must never reach someone else's connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTarget {
    pub shard: u16,
    pub version: HttpVersion,
    pub connection: usize,
    pub serial: u64,
    /// The HTTP/3 request stream (0 on HTTP/1.1, which answers in order).
    pub stream_id: u64,
    pub head_only: bool,
}

/// The host's answer to a request: now, or later through the shard's
/// mailbox ([`crate::reactor::shard::ShardMessage::HttpReply`]) addressed
/// to the request's [`HttpTarget`].
#[derive(Debug)]
pub enum HttpAnswer {
    Ready(WebResponse),
    Deferred,
}

/// The server's side of every session and request on a shard.
pub trait Host {
    /// A client said Hello: accept it (who is it?) or refuse it.
    fn hello(
        &mut self,
        session: SessionRef,
        hello: &Hello,
        now: Now,
    ) -> Result<Acceptance, (ErrorCode, String)>;
    /// A message from an established session; `reply` is that session.
    fn message(&mut self, session: SessionRef, message: Message, reply: &mut Session, now: Now);
    /// The session is gone.
    fn closed(&mut self, session: SessionRef);
    /// An HTTP request other than a session upgrade. A `Deferred` answer
    /// must reach the shard's mailbox for `target` exactly once (late is
    /// fine: the transport drops answers for connections that are gone).
    fn http(&mut self, request: &HttpRequest<'_>, target: HttpTarget, now: Now) -> HttpAnswer;
    /// The TLS certificate changed (development certificate renewal).
    fn certificate_changed(&mut self, _sha256_hex: Option<String>) {}
    /// Sessions this host holds (for stats).
    fn session_count(&self) -> usize;
    /// A message from another shard's host (through the mailbox).
    fn handle_message(&mut self, _message: HostMessage, _now: Now) {}
    /// Milliseconds until the host's next deadline (room ticks), if any.
    fn timeout_ms(&self, _now: Now) -> Option<u64> {
        None
    }
    /// Runs what is due.
    fn handle_timeout(&mut self, _now: Now) {}
    /// Frames for sessions and messages for other shards, in order; the
    /// shard drains this after every step.
    fn poll_output(&mut self) -> Option<HostOutput> {
        None
    }
    /// True when `poll_output` has something (the shard must not sleep).
    fn has_output(&self) -> bool {
        false
    }
    /// The player behind one of this shard's sessions, if the host
    /// accepted it: frames addressed to someone else are not delivered.
    fn session_player(&self, _session: SessionRef) -> Option<u64> {
        None
    }
}

/// How a session ended, for its transport to close itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEnd {
    pub code: ErrorCode,
    pub reason: String,
    /// The client said Bye (it reads nothing more).
    pub by_peer: bool,
}

/// Hands a session's events to the host, the same way for every transport:
/// Hello goes to [`Host::hello`] and is accepted or rejected, messages go
/// to [`Host::message`], and the end of a session the host accepted to
/// [`Host::closed`] exactly once (`host_knows` tracks that, per session).
/// Returns how the session ended, when it did: the transport then sends
/// what `poll_transmit` holds (the Bye) and closes.
pub fn pump_events<H: Host>(
    session: &mut Session,
    session_ref: SessionRef,
    host_knows: &mut bool,
    host: &mut H,
    now: Now,
) -> Option<SessionEnd> {
    let mut end = None;
    while let Some(event) = session.poll_event() {
        match event {
            SessionEvent::Hello { hello, .. } => match host.hello(session_ref, &hello, now) {
                Ok(acceptance) => {
                    session.accept(acceptance);
                    *host_knows = true;
                }
                Err((code, text)) => session.reject(code, &text),
            },
            SessionEvent::Message(message) => host.message(session_ref, message, session, now),
            SessionEvent::Closed { code, reason, by_peer } => {
                if std::mem::take(host_knows) {
                    host.closed(session_ref);
                }
                end = Some(SessionEnd { code, reason, by_peer });
            }
        }
    }
    end
}

/// The host of a server without rooms yet: accepts everyone as a guest,
/// answers the protocol's session messages, serves the web routes.
pub struct GuestHost {
    shard: u16,
    next_player: u64,
    facts: ServerFacts,
    sessions: usize,
}

/// Guest player ids carry their shard in the top 16 bits, so ids issued by
/// different shards never collide without coordination.
const SHARD_ID_SHIFT: u32 = 48;

impl GuestHost {
    pub fn new(shard: u16, facts: ServerFacts) -> GuestHost {
        GuestHost { shard, next_player: 1, facts, sessions: 0 }
    }

    fn guest_name(player_id: u64, hello: &Hello) -> Text<{ crate::proto::wire::MAX_NAME_LEN }> {
        match &hello.nickname {
            Some(name) if !name.as_str().trim().is_empty() => name.clone(),
            _ => Text::new(&format!("guest-{}", player_id & 0xffff_ffff)).expect("short"),
        }
    }
}

impl Host for GuestHost {
    fn hello(
        &mut self,
        _session: SessionRef,
        hello: &Hello,
        now: Now,
    ) -> Result<Acceptance, (ErrorCode, String)> {
        if hello.access_token.is_some() {
            // Accounts arrive with the services layer; until then a token
            // cannot be checked, and an unchecked token must not be trusted.
            return Err((
                ErrorCode::InvalidToken,
                "accounts are not enabled on this server".into(),
            ));
        }
        let player_id = (u64::from(self.shard) << SHARD_ID_SHIFT) | self.next_player;
        self.next_player += 1;
        self.sessions += 1;
        Ok(Acceptance {
            session_id: player_id,
            player_id,
            nickname: Self::guest_name(player_id, hello),
            resume_token: Text::default(),
            resumed: false,
            server_time_us: now.unix_us,
        })
    }

    fn message(&mut self, _session: SessionRef, message: Message, reply: &mut Session, _now: Now) {
        // Rooms, lobby and chat land with the simulation; say so precisely.
        let error = crate::proto::wire::Error {
            code: ErrorCode::UnexpectedMessage as u16,
            in_reply_to: message.code(),
            text: Text::new(&format!("{} is not served yet", message.name())).unwrap_or_default(),
        };
        reply.send(&error);
    }

    fn closed(&mut self, _session: SessionRef) {
        self.sessions = self.sessions.saturating_sub(1);
    }

    fn http(&mut self, request: &HttpRequest<'_>, _target: HttpTarget, _now: Now) -> HttpAnswer {
        HttpAnswer::Ready(web::route(request.method, request.path, &self.facts))
    }

    fn certificate_changed(&mut self, sha256_hex: Option<String>) {
        self.facts.cert_sha256_hex = sha256_hex;
    }

    fn session_count(&self) -> usize {
        self.sessions
    }
}
