//! The game host of a shard: the protocol's lobby, room and spectating
//! messages, the rooms this shard owns, and a replicated directory of every
//! shard's public rooms.
//!
//! Ownership: a room lives on the shard that created it (its id carries the
//! shard in the top 16 bits, like player ids); its members' sessions may
//! live on any shard. A session's shard turns its messages into
//! [`RoomCommand`]s for the owner (a direct call when local, a mailbox
//! message otherwise); the owner's frames come back as [`Delivery`]s the
//! shard hands to the sessions. Nothing here locks: shards share only
//! mailboxes.
//!
//! The directory (room list, codes, quick join) is each shard's copy of
//! every public room's [`Listing`], kept current by broadcasts from the
//! owners. It is eventually consistent: a quick join may pick a room that
//! filled a moment ago; the owner refuses and the joiner gets RoomFull.

pub mod hosted;
pub mod outbox;
pub mod resume;
pub mod wire_games;

use std::collections::HashMap;

use slab::Slab;

use self::hosted::{text, HostedRoom, Released, WireGame};
use self::outbox::{HostMessage, HostOutput, Listing, Outbox, RoomCommand};
use self::resume::ResumeKeys;
use crate::proto::session::{Acceptance, Now, Session};
use crate::proto::wire::{
    self, ErrorCode, GameKind, Hello, Message, RoomSummary, Text, WireMessage,
};
use crate::reactor::host::{Host, HttpAnswer, HttpRequest, HttpTarget, SessionRef};
use crate::reactor::mailbox::MailboxSender;
use crate::reactor::shard::ShardMessage;
use crate::reactor::timer::{TimerKey, TimerWheel};
use crate::reactor::web::{self, ServerFacts, WebResponse};
use crate::services::api::{ApiFrontend, Lobby, RoomView};
use crate::sim::arena::Arena;
use crate::sim::room::{Room, RoomConfig};
use crate::sim::tetris::TetrisBattle;
use crate::sim::MAX_PLAYERS;

/// Rooms one shard owns at once; more creations are refused (Busy).
pub const MAX_ROOMS_PER_SHARD: usize = 100_000;
/// Rooms in the directory (all shards); more listings are ignored.
pub const MAX_DIRECTORY: usize = 400_000;
/// Ids (players, rooms) carry their shard in the top 16 bits.
pub const SHARD_ID_SHIFT: u32 = 48;
/// Room codes: the owner shard's letter, then random letters from an
/// alphabet without look-alikes (no 0/O, 1/I/L).
const CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789#";
const CODE_RANDOM_LETTERS: usize = 5;
/// Seats a quick join creates when no room waits: a duel for Tetris, a
/// full arena.
const QUICK_JOIN_TETRIS_SEATS: u8 = 2;
const QUICK_JOIN_ARENA_SEATS: u8 = MAX_PLAYERS as u8;
/// How long a member dropped mid-game keeps the seat.
pub const RECONNECT_GRACE_MS: u32 = 30_000;

/// The shard that owns an id (room or player).
pub fn owner_shard(id: u64) -> u16 {
    (id >> SHARD_ID_SHIFT) as u16
}

/// One of the games, hosted. Rooms sit in a slab and are not moved, so
/// the size difference between the games costs memory only in arena rooms.
#[allow(clippy::large_enum_variant)]
enum AnyRoom {
    Tetris(HostedRoom<TetrisBattle>),
    Arena(HostedRoom<Arena>),
}

/// Runs `$body` with `$room` bound to the hosted room, whatever its game.
macro_rules! with_room {
    ($any:expr, $room:ident => $body:expr) => {
        match $any {
            AnyRoom::Tetris($room) => $body,
            AnyRoom::Arena($room) => $body,
        }
    };
}

/// What the host knows of one of this shard's sessions.
#[derive(Debug, Clone)]
struct SessionInfo {
    player_id: u64,
    nickname: String,
    /// The room the session plays or watches in (owned by any shard).
    room: Option<u64>,
}

/// Counters for /api/stats and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GameCounters {
    pub rooms_created: u64,
    pub rooms_closed: u64,
    pub commands_forwarded: u64,
}

pub struct GameHost {
    shard: u16,
    facts: ServerFacts,
    resume: ResumeKeys,
    next_player: u64,
    next_room: u64,
    /// SplitMix64 state: game seeds and room codes (the server owns every
    /// random choice).
    random: u64,
    sessions: HashMap<SessionRef, SessionInfo>,
    rooms: Slab<AnyRoom>,
    room_slots: HashMap<u64, usize>,
    directory: HashMap<u64, Listing>,
    codes: HashMap<String, u64>,
    timers: TimerWheel,
    due: Vec<usize>,
    outbox: Outbox,
    counters: GameCounters,
    last_now: Now,
    /// The REST API and account tokens; `None` in tests that need neither
    /// (then a Hello with an access token is refused).
    api: Option<ApiLink>,
}

/// A shard's link to the services layer: its API front, and its own
/// mailbox, where workers post deferred answers.
pub struct ApiLink {
    pub frontend: ApiFrontend,
    pub reply_to: MailboxSender<ShardMessage>,
}

/// The /api paths the shard answers itself (no database).
fn is_shard_route(path: &str) -> bool {
    matches!(path, "/api/health" | "/api/cert-hash" | "/api/stats")
}

impl GameHost {
    pub fn new(shard: u16, facts: ServerFacts, resume: ResumeKeys, now: Now) -> GameHost {
        let mut seed = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
            .expect("system randomness");
        GameHost {
            shard,
            facts,
            resume,
            next_player: 1,
            next_room: 1,
            random: u64::from_le_bytes(seed),
            sessions: HashMap::new(),
            rooms: Slab::new(),
            room_slots: HashMap::new(),
            directory: HashMap::new(),
            codes: HashMap::new(),
            timers: TimerWheel::new(now.monotonic_ms),
            due: Vec::new(),
            outbox: Outbox::default(),
            counters: GameCounters::default(),
            last_now: now,
            api: None,
        }
    }

    /// Serves the REST API and accepts access tokens in Hello.
    pub fn with_api(mut self, link: ApiLink) -> GameHost {
        self.api = Some(link);
        self
    }

    /// Who an access token names: (player id, nickname).
    fn account(&self, token: &str, now: Now) -> Result<(u64, String), (ErrorCode, String)> {
        let Some(link) = &self.api else {
            let text = "accounts are not enabled on this server".to_owned();
            return Err((ErrorCode::InvalidToken, text));
        };
        match link.frontend.verify(token, now) {
            Ok(claims) if claims.sub > 0 => Ok((claims.sub as u64, claims.name)),
            Ok(_) => Err((ErrorCode::InvalidToken, "the token names no account".to_owned())),
            Err(_) => Err((ErrorCode::InvalidToken, "the access token is not valid".to_owned())),
        }
    }

    pub fn counters(&self) -> GameCounters {
        self.counters
    }

    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    fn next_random(&mut self) -> u64 {
        self.random = self.random.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut mixed = self.random;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^ (mixed >> 31)
    }

    fn error(&mut self, session: SessionRef, code: ErrorCode, in_reply_to: u16, message: &str) {
        let Some(info) = self.sessions.get(&session) else { return };
        let error = wire::Error { code: code as u16, in_reply_to, text: text(message) };
        self.outbox.send(session, info.player_id, &error);
    }

    // ---- Lobby: on the session's shard ----

    fn on_message(&mut self, session: SessionRef, message: Message, now: Now) {
        let Some(info) = self.sessions.get(&session) else { return };
        let player_id = info.player_id;
        let current = info.room;
        let code = message.code();
        match message {
            Message::RoomListRequest(request) => self.send_room_list(session, request.game),
            Message::RoomCreate(create) => self.create_and_join(session, &create, now),
            Message::RoomJoinByCode(join) => {
                let code = join.code.as_str().trim().to_ascii_uppercase();
                match self.codes.get(&code).copied() {
                    Some(room_id) => self.join(session, room_id, None, now),
                    None => self.error(
                        session,
                        ErrorCode::RoomNotFound,
                        wire::RoomJoinByCode::CODE,
                        "no room has that code",
                    ),
                }
            }
            Message::QuickJoin(quick) => self.quick_join(session, quick.game, now),
            Message::RoomJoin(join) => {
                let token = join.reservation_token.as_ref().map(|t| parse_reservation(t.as_str()));
                if let Some(None) = token {
                    let code = wire::RoomJoin::CODE;
                    let text = "malformed reservation token";
                    return self.error(session, ErrorCode::InvalidReservation, code, text);
                }
                self.join(session, join.room_id, token.flatten(), now);
            }
            Message::RoomLeave(_) | Message::SpectateStop(_) => match current {
                Some(room_id) => {
                    self.set_room(session, None);
                    let command = if matches!(message, Message::RoomLeave(_)) {
                        RoomCommand::Leave { player_id }
                    } else {
                        RoomCommand::StopSpectating { player_id }
                    };
                    self.route(room_id, command, now);
                }
                None => self.error(session, ErrorCode::NotInRoom, message.code(), "not in a room"),
            },
            Message::RoomReady(ready) => match current {
                Some(room_id) => {
                    self.route(room_id, RoomCommand::Ready { player_id, ready: ready.ready }, now)
                }
                None => self.error(session, ErrorCode::NotInRoom, code, "not in a room"),
            },
            Message::Input(input) => {
                // Inputs outside a room are dropped silently: a late
                // datagram after a leave is normal, not an error.
                if let Some(room_id) = current {
                    let command =
                        RoomCommand::Input { player_id, seq: input.seq, inputs: input.inputs };
                    self.route(room_id, command, now);
                }
            }
            Message::SpectateStart(start) => {
                // One room per session: leave the current one first.
                self.leave_current(session, now);
                self.set_room(session, Some(start.room_id));
                let command = RoomCommand::Spectate { player_id, session };
                self.route(start.room_id, command, now);
            }
            other => {
                let text = format!("{} is not served yet", other.name());
                self.error(session, ErrorCode::UnexpectedMessage, other.code(), &text);
            }
        }
    }

    fn set_room(&mut self, session: SessionRef, room: Option<u64>) {
        if let Some(info) = self.sessions.get_mut(&session) {
            info.room = room;
        }
    }

    /// Leaves whatever room the session is in; true if it was in one.
    fn leave_current(&mut self, session: SessionRef, now: Now) -> bool {
        let Some(info) = self.sessions.get(&session) else { return false };
        let (player_id, Some(room_id)) = (info.player_id, info.room) else { return false };
        self.set_room(session, None);
        self.route(room_id, RoomCommand::Leave { player_id }, now);
        true
    }

    fn join(&mut self, session: SessionRef, room_id: u64, reservation: Option<u64>, now: Now) {
        let Some(info) = self.sessions.get(&session) else { return };
        // A join of the room one is in goes to the room too: it decides.
        if info.room != Some(room_id) {
            self.leave_current(session, now);
        }
        let Some(info) = self.sessions.get_mut(&session) else { return };
        info.room = Some(room_id);
        let command = RoomCommand::Join {
            player_id: info.player_id,
            nickname: info.nickname.clone(),
            session,
            reservation,
        };
        // An unknown room (on any shard) is refused by its owner shard's
        // `refuse_missing_room`, which also releases the membership.
        self.route(room_id, command, now);
    }

    fn quick_join(&mut self, session: SessionRef, game: GameKind, now: Now) {
        // Prefer a room on this shard (no cross-shard hops), then the
        // fullest waiting room, so rooms fill and start.
        let shard = self.shard;
        let pick = self
            .directory
            .values()
            .filter(|l| l.game == game && !l.private && l.phase == wire::RoomPhase::Waiting)
            .filter(|l| l.members < l.capacity)
            .max_by_key(|l| (owner_shard(l.room_id) == shard, l.members, u64::MAX - l.room_id))
            .map(|l| l.room_id);
        match pick {
            Some(room_id) => self.join(session, room_id, None, now),
            None => {
                let capacity = match game {
                    GameKind::Tetris => QUICK_JOIN_TETRIS_SEATS,
                    GameKind::Arena => QUICK_JOIN_ARENA_SEATS,
                };
                let create = wire::RoomCreate {
                    game,
                    capacity,
                    private: false,
                    name: text(&format!("{} room", game_name(game))),
                };
                self.create_and_join(session, &create, now);
            }
        }
    }

    fn send_room_list(&mut self, session: SessionRef, game: Option<GameKind>) {
        let Some(info) = self.sessions.get(&session) else { return };
        let player_id = info.player_id;
        let rooms: Vec<RoomSummary> = Directory(&self.directory)
            .public(game, wire::MAX_ROOM_LIST)
            .into_iter()
            .map(summary)
            .collect();
        let list = wire::RoomList { rooms: wire::List::new(rooms).unwrap_or_default() };
        self.outbox.send(session, player_id, &list);
    }

    fn create_and_join(&mut self, session: SessionRef, create: &wire::RoomCreate, now: Now) {
        let code = wire::RoomCreate::CODE;
        if !(1..=MAX_PLAYERS as u8).contains(&create.capacity) {
            let text = "capacity must be 1 to 8";
            return self.error(session, ErrorCode::InvalidRoomSettings, code, text);
        }
        if self.rooms.len() >= MAX_ROOMS_PER_SHARD {
            return self.error(session, ErrorCode::Busy, code, "too many rooms: try again later");
        }
        let room_id = (u64::from(self.shard) << SHARD_ID_SHIFT) | self.next_room;
        self.next_room += 1;
        let room_code = self.new_code();
        let name = create.name.as_str().trim();
        let name =
            if name.is_empty() { format!("{} room", game_name(create.game)) } else { name.into() };
        let seed = self.next_random();
        let any = match create.game {
            GameKind::Tetris => {
                AnyRoom::Tetris(hosted_room(room_id, room_code, name, create, seed))
            }
            GameKind::Arena => AnyRoom::Arena(hosted_room(room_id, room_code, name, create, seed)),
        };
        let slot = self.rooms.insert(any);
        self.room_slots.insert(room_id, slot);
        self.counters.rooms_created += 1;
        self.join(session, room_id, None, now);
    }

    fn new_code(&mut self) -> String {
        loop {
            let mut code = String::with_capacity(1 + CODE_RANDOM_LETTERS);
            code.push(char::from(CODE_ALPHABET[usize::from(self.shard) % 31]));
            let mut bits = self.next_random();
            for _ in 0..CODE_RANDOM_LETTERS {
                code.push(char::from(CODE_ALPHABET[(bits % 31) as usize]));
                bits /= 31;
            }
            if !self.codes.contains_key(&code) {
                return code;
            }
        }
    }

    // ---- Rooms: on the owner's shard ----

    fn route(&mut self, room_id: u64, command: RoomCommand, now: Now) {
        let shard = owner_shard(room_id);
        if shard == self.shard {
            self.apply(room_id, command, now);
        } else {
            self.counters.commands_forwarded += 1;
            self.outbox
                .push(HostOutput::Send { shard, message: HostMessage::Room { room_id, command } });
        }
    }

    fn apply(&mut self, room_id: u64, command: RoomCommand, now: Now) {
        let Some(&slot) = self.room_slots.get(&room_id) else {
            // The room is gone: whoever asked is not in it.
            self.refuse_missing_room(room_id, &command);
            return;
        };
        let mut released = Released::default();
        let any = &mut self.rooms[slot];
        with_room!(any, room => room.apply(command, now.monotonic_ms, &mut self.outbox, &mut released));
        self.after_room_change(slot, released);
    }

    fn refuse_missing_room(&mut self, room_id: u64, command: &RoomCommand) {
        let (player_id, session, in_reply_to) = match command {
            RoomCommand::Join { player_id, session, .. } => {
                (*player_id, *session, wire::RoomJoin::CODE)
            }
            RoomCommand::Spectate { player_id, session } => {
                (*player_id, *session, wire::SpectateStart::CODE)
            }
            _ => return,
        };
        let error = wire::Error {
            code: ErrorCode::RoomNotFound as u16,
            in_reply_to,
            text: text("no such room"),
        };
        self.outbox.send(session, player_id, &error);
        self.release(player_id, room_id);
    }

    /// Tells the session's shard that `player_id` is out of `room_id`.
    fn release(&mut self, player_id: u64, room_id: u64) {
        let shard = owner_shard(player_id);
        if shard == self.shard {
            self.on_released(player_id, room_id);
        } else {
            let message = HostMessage::Released { player_id, room_id };
            self.outbox.push(HostOutput::Send { shard, message });
        }
    }

    fn on_released(&mut self, player_id: u64, room_id: u64) {
        for info in self.sessions.values_mut() {
            if info.player_id == player_id && info.room == Some(room_id) {
                info.room = None;
            }
        }
    }

    /// After a room changed: tell the released, re-arm its timer, update
    /// the directory, drop it when closed.
    fn after_room_change(&mut self, slot: usize, released: Released) {
        let any = &mut self.rooms[slot];
        let (room_id, deadline, listing, closed) = with_room!(any, room => (
            room.id,
            room.next_deadline_ms(),
            room.listing_change(),
            room.is_closed(),
        ));
        for player_id in released.players {
            self.release(player_id, room_id);
        }
        let key = TimerKey { owner: slot as u32, kind: 0 };
        match deadline {
            Some(deadline) if !closed => {
                if self.timers.arm(key, deadline).is_err() {
                    tracing::error!(room_id, "timer wheel full: room stalls");
                }
            }
            _ => self.timers.cancel(key),
        }
        if closed {
            self.timers.cancel(key);
            self.rooms.remove(slot);
            self.room_slots.remove(&room_id);
            self.counters.rooms_closed += 1;
            self.unlist(room_id);
            self.outbox.push(HostOutput::Broadcast(HostMessage::Unlisted { room_id }));
        } else if let Some(listing) = listing {
            self.list(listing.clone());
            self.outbox.push(HostOutput::Broadcast(HostMessage::Listed(listing)));
        }
    }

    fn list(&mut self, listing: Listing) {
        if self.directory.len() >= MAX_DIRECTORY && !self.directory.contains_key(&listing.room_id) {
            return;
        }
        self.codes.insert(listing.code.clone(), listing.room_id);
        self.directory.insert(listing.room_id, listing);
    }

    fn unlist(&mut self, room_id: u64) {
        if let Some(listing) = self.directory.remove(&room_id) {
            self.codes.remove(&listing.code);
        }
    }

    /// Frames for one of this shard's sessions, if the player is still
    /// the one behind it.
    pub fn session_player(&self, session: SessionRef) -> Option<u64> {
        self.sessions.get(&session).map(|info| info.player_id)
    }

    /// A new guest: a player id from this shard and the chosen nickname.
    fn new_guest(&mut self, hello: &Hello) -> (u64, String) {
        let player_id = (u64::from(self.shard) << SHARD_ID_SHIFT) | self.next_player;
        self.next_player += 1;
        let nickname = match &hello.nickname {
            Some(name) if !name.as_str().trim().is_empty() => name.as_str().trim().to_owned(),
            _ => format!("guest-{}", player_id & 0xffff_ffff),
        };
        (player_id, nickname)
    }
}

impl Host for GameHost {
    fn hello(
        &mut self,
        session: SessionRef,
        hello: &Hello,
        now: Now,
    ) -> Result<Acceptance, (ErrorCode, String)> {
        let now_s = now.unix_us / 1_000_000;
        let (player_id, nickname, resumed) = match (&hello.resume_token, &hello.access_token) {
            (Some(token), _) => match self.resume.check(token.as_str(), now_s) {
                Some(resumed) => (resumed.player_id, resumed.nickname, true),
                None => {
                    let text = "the resume token is not valid".to_owned();
                    return Err((ErrorCode::ResumeFailed, text));
                }
            },
            (None, Some(access_token)) => {
                let (player_id, nickname) = self.account(access_token.as_str(), now)?;
                (player_id, nickname, false)
            }
            (None, None) => {
                let (player_id, nickname) = self.new_guest(hello);
                (player_id, nickname, false)
            }
        };
        let token = self.resume.issue(player_id, &nickname, now_s);
        self.sessions
            .insert(session, SessionInfo { player_id, nickname: nickname.clone(), room: None });
        Ok(Acceptance {
            session_id: player_id,
            player_id,
            nickname: text(&nickname),
            resume_token: Text::new(&token).unwrap_or_default(),
            resumed,
            server_time_us: now.unix_us,
        })
    }

    fn message(&mut self, session: SessionRef, message: Message, _reply: &mut Session, now: Now) {
        self.last_now = now;
        self.on_message(session, message, now);
    }

    fn closed(&mut self, session: SessionRef) {
        let Some(info) = self.sessions.remove(&session) else { return };
        if let Some(room_id) = info.room {
            // `closed` gets no clock: the last one seen is at most a turn old.
            let now = self.last_now;
            let command = RoomCommand::Disconnected { player_id: info.player_id, session };
            self.route(room_id, command, now);
        }
    }

    fn http(&mut self, request: &HttpRequest<'_>, target: HttpTarget, now: Now) -> HttpAnswer {
        let Some(link) = self.api.as_mut() else {
            return HttpAnswer::Ready(web::route(request.method, request.path, &self.facts));
        };
        if !request.path.starts_with("/api/") || is_shard_route(request.path) {
            return HttpAnswer::Ready(web::route(request.method, request.path, &self.facts));
        }
        let mailbox = link.reply_to.clone();
        let reply = Box::new(move |response: WebResponse| {
            let message = ShardMessage::HttpReply { target, response: Box::new(response) };
            if mailbox.send(message).is_err() {
                // The shard is overloaded; the client gets 504 from the
                // transport's deadline instead.
                tracing::warn!(shard = target.shard, "API answer dropped: mailbox full");
            }
        });
        let lobby = Directory(&self.directory);
        match link.frontend.handle(request, now, reply, &lobby) {
            Some(response) => HttpAnswer::Ready(response),
            None => HttpAnswer::Deferred,
        }
    }

    fn certificate_changed(&mut self, sha256_hex: Option<String>) {
        self.facts.cert_sha256_hex = sha256_hex;
    }

    fn session_count(&self) -> usize {
        self.sessions.len()
    }

    fn handle_message(&mut self, message: HostMessage, now: Now) {
        self.last_now = now;
        match message {
            HostMessage::Room { room_id, command } => self.apply(room_id, command, now),
            HostMessage::Listed(listing) => self.list(listing),
            HostMessage::Unlisted { room_id } => self.unlist(room_id),
            HostMessage::Released { player_id, room_id } => self.on_released(player_id, room_id),
        }
    }

    fn timeout_ms(&self, now: Now) -> Option<u64> {
        self.timers.timeout_ms(now.monotonic_ms)
    }

    fn handle_timeout(&mut self, now: Now) {
        self.last_now = now;
        let mut due = std::mem::take(&mut self.due);
        let stats = self.facts.stats.get(usize::from(self.shard));
        self.timers.expire(now.monotonic_ms, |key, deadline_ms| {
            if let Some(stats) = stats {
                stats.record_tick_lateness(now.monotonic_ms.saturating_sub(deadline_ms));
            }
            due.push(key.owner as usize)
        });
        for slot in due.drain(..) {
            let Some(any) = self.rooms.get_mut(slot) else { continue };
            let mut released = Released::default();
            with_room!(any, room => room.advance(now.monotonic_ms, &mut self.outbox, &mut released));
            self.after_room_change(slot, released);
        }
        self.due = due;
    }

    fn poll_output(&mut self) -> Option<HostOutput> {
        self.outbox.pop()
    }

    fn has_output(&self) -> bool {
        !self.outbox.is_empty()
    }

    fn session_player(&self, session: SessionRef) -> Option<u64> {
        GameHost::session_player(self, session)
    }
}

fn hosted_room<G: WireGame>(
    room_id: u64,
    code: String,
    name: String,
    create: &wire::RoomCreate,
    seed: u64,
) -> HostedRoom<G>
where
    G::Config: Default,
{
    let mut config = RoomConfig::<G::Config>::new(create.capacity);
    config.game = G::config_for(create.capacity);
    config.reconnect_grace_ms = RECONNECT_GRACE_MS;
    HostedRoom::new(room_id, code, name, create.private, Room::new(config, seed))
}

/// The shard's copy of the room directory, as the REST API reads it.
struct Directory<'a>(&'a HashMap<u64, Listing>);

impl<'a> Directory<'a> {
    /// Public rooms, of one game when given, most recent first (ids grow
    /// with creation on each shard), at most `limit`.
    fn public(&self, game: Option<GameKind>, limit: usize) -> Vec<&'a Listing> {
        let mut rooms: Vec<&Listing> =
            self.0.values().filter(|l| !l.private && game.is_none_or(|g| g == l.game)).collect();
        rooms.sort_by_key(|l| std::cmp::Reverse(l.room_id & ((1 << SHARD_ID_SHIFT) - 1)));
        rooms.truncate(limit);
        rooms
    }
}

impl Lobby for Directory<'_> {
    fn rooms(&self, game: Option<GameKind>, limit: usize) -> Vec<RoomView> {
        self.public(game, limit).into_iter().map(room_view).collect()
    }

    fn room(&self, room_id: u64) -> Option<RoomView> {
        self.0.get(&room_id).filter(|listing| !listing.private).map(room_view)
    }
}

fn room_view(listing: &Listing) -> RoomView {
    RoomView {
        room_id: listing.room_id,
        code: listing.code.clone(),
        name: listing.name.clone(),
        game: listing.game,
        phase: listing.phase,
        members: listing.members,
        capacity: listing.capacity,
        spectators: listing.spectators,
    }
}

fn summary(listing: &Listing) -> RoomSummary {
    RoomSummary {
        room_id: listing.room_id,
        code: text(&listing.code),
        name: text(&listing.name),
        game: listing.game,
        phase: listing.phase,
        members: listing.members,
        capacity: listing.capacity,
        spectators: listing.spectators,
    }
}

fn game_name(game: GameKind) -> &'static str {
    match game {
        GameKind::Tetris => "Tetris",
        GameKind::Arena => "Arena",
    }
}

/// Reservation tokens are the 16 hex digits a matchmaker handed out.
fn parse_reservation(token: &str) -> Option<u64> {
    (token.len() == 16).then(|| u64::from_str_radix(token, 16).ok()).flatten()
}
