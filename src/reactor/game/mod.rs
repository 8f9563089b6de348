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

pub mod history_reads;
pub mod hosted;
pub mod outbox;
pub mod resume;
pub mod wire_games;

use std::collections::HashMap;

use slab::Slab;

use self::history_reads::{HistoryRead, Refusal, HISTORY_ANSWER_TIMEOUT_MS, MAX_HISTORY_IN_FLIGHT};
use self::hosted::{text, Effects, HistorySink, HostedRoom, WireGame};
use self::outbox::{HostMessage, HostOutput, Listing, Outbox, RoomCommand, Ticket};
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
use crate::services::api::lobby::{LobbyRefusal, QueueView, RESERVATION_TTL_MS};
use crate::services::api::{
    Account, ApiFrontend, Lobby, LobbyAnswer, LobbyCall, LobbyReply, RoomSettings, RoomView,
    Verdict,
};
use crate::services::matchmaking::{MatchSeat, QueueError, QuickMatch, MATCHED_KEEP_MS};
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
/// Lobby calls (REST join, leave, queue) waiting for another shard's
/// answer; more are refused (Busy).
pub const MAX_PENDING_LOBBY_CALLS: usize = 4_096;
/// How long a lobby call waits for another shard before it is answered
/// Unavailable (a mailbox dropped the message; nothing else loses one).
pub const LOBBY_ANSWER_TIMEOUT_MS: u64 = 10_000;
/// Room ids the matchmaker assigns: this bit set, below the owner shard's
/// bits, so they never meet the ids the shard counts itself.
const MATCH_ROOM_BIT: u64 = 1 << 47;
/// The shard that hosts the quick-match queue.
const MATCHMAKER_SHARD: u16 = 0;
/// Timer keys: rooms use (slot, 0); the lobby's own timer (matchmaker
/// deadlines, pending-call sweeps) is this one.
const LOBBY_TIMER: TimerKey = TimerKey { owner: 0, kind: 1 };

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
    /// The account the session signed in with (an access token in Hello):
    /// its history is the HistoryRequest's player 0. `None` for a guest
    /// (and a resumed session: the resume token does not say).
    account: Option<u64>,
    /// History reads waiting for the workers: (request id, since ms).
    reads: arrayvec::ArrayVec<(u32, u64), MAX_HISTORY_IN_FLIGHT>,
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
    /// Lobby calls waiting for another shard's answer, by ticket id.
    pending: HashMap<u64, PendingCall>,
    next_ticket: u64,
    /// The ticket of the call being made now, and its answer if a local
    /// room gave it at once (then the call returns it instead of replying).
    calling: Option<u64>,
    answered_now: Option<LobbyAnswer>,
    /// The quick-match queue (used on [`MATCHMAKER_SHARD`] only).
    quick_match: QuickMatch,
    next_match_room: u64,
    next_match_shard: u16,
    /// Where rooms hand their game events (None: history is off).
    history: Option<HistorySink>,
}

struct PendingCall {
    reply: LobbyReply,
    since_ms: u64,
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
            pending: HashMap::new(),
            next_ticket: 1,
            calling: None,
            answered_now: None,
            quick_match: QuickMatch::new(),
            next_match_room: 1,
            next_match_shard: 0,
            history: None,
        }
    }

    /// Hands every room's game events to `tap` (the match history).
    pub fn with_events(mut self, tap: crate::services::events::tap::EventTap) -> GameHost {
        self.history = Some(HistorySink { tap, scratch: Vec::with_capacity(256), unix_ms: 0 });
        self
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

    /// Shards in this server (every shard's stats are in the facts).
    fn shard_count(&self) -> usize {
        self.facts.stats.len().max(usize::from(self.shard) + 1)
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
        if let Some(read) = history_reads::history_read(&message, info.account) {
            return self.on_history_read(session, read, now);
        }
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
                        RoomCommand::Leave { player_id, ticket: None }
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

    /// A history read: refused here, or submitted to the storage workers
    /// (within the session's in-flight bound and the account's rate
    /// limit), whose answer comes back as [`HostMessage::HistoryAnswer`].
    fn on_history_read(
        &mut self,
        session: SessionRef,
        read: Result<HistoryRead, Refusal>,
        now: Now,
    ) {
        let Some(info) = self.sessions.get_mut(&session) else { return };
        let player_id = info.player_id;
        let read = match read {
            Ok(read) => read,
            Err(refusal) => {
                let frames = history_reads::refusal_frame(&refusal);
                return self.outbox.deliver(session, player_id, frames, true);
            }
        };
        let (request_id, code) = (read.request_id, read.code);
        // An answer lost on the way (a full mailbox) stops counting.
        info.reads.retain(|(_, since_ms)| now.monotonic_ms < *since_ms + HISTORY_ANSWER_TIMEOUT_MS);
        let refusal = if info.reads.is_full() {
            Some((ErrorCode::RateLimited, "too many history requests at once".to_owned()))
        } else if let Some(link) = self.api.as_mut() {
            // Guests are limited too, by keys no account has.
            let rate_key = match info.account {
                Some(account) => account as i64,
                None => -1 - (player_id & i64::MAX as u64) as i64,
            };
            let mailbox = link.reply_to.clone();
            let reply = Box::new(move |result| {
                let frames = history_reads::answer_frame(request_id, code, result);
                let message = HostMessage::HistoryAnswer { session, player_id, request_id, frames };
                if mailbox.send(ShardMessage::Host(message)).is_err() {
                    tracing::warn!(shard = session.shard, "history answer dropped: mailbox full");
                }
            });
            let body_max = wire::MAX_HISTORY_JSON_LEN;
            match link.frontend.submit_for_session(rate_key, read.command, body_max, now, reply) {
                Verdict::Allowed => {
                    info.reads.push((request_id, now.monotonic_ms));
                    None
                }
                Verdict::Limited { retry_after_s } => Some((
                    ErrorCode::RateLimited,
                    format!("too many requests; retry after {retry_after_s} s"),
                )),
            }
        } else {
            Some((ErrorCode::UnexpectedMessage, "history is not served here".to_owned()))
        };
        if let Some((error, message)) = refusal {
            let text = text(&format!("request {request_id}: {message}"));
            let error = wire::Error { code: error as u16, in_reply_to: code, text };
            self.outbox.send(session, player_id, &error);
        }
    }

    /// A worker's answer to a history read: to the session, if it is
    /// still the player's (else dropped: the session closed meanwhile).
    fn on_history_answer(
        &mut self,
        session: SessionRef,
        player_id: u64,
        request_id: u32,
        frames: bytes::Bytes,
    ) {
        let Some(info) = self.sessions.get_mut(&session) else { return };
        if info.player_id != player_id {
            return;
        }
        if let Some(index) = info.reads.iter().position(|(id, _)| *id == request_id) {
            info.reads.remove(index);
        }
        self.outbox.deliver(session, player_id, frames, true);
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
        self.route(room_id, RoomCommand::Leave { player_id, ticket: None }, now);
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
        match self.create_room(create) {
            Ok((room_id, _)) => self.join(session, room_id, None, now),
            Err(LobbyRefusal::Busy) => {
                let text = "too many rooms: try again later";
                self.error(session, ErrorCode::Busy, wire::RoomCreate::CODE, text);
            }
            Err(_) => {
                let text = "capacity must be 1 to 8";
                self.error(session, ErrorCode::InvalidRoomSettings, wire::RoomCreate::CODE, text);
            }
        }
    }

    /// A new room on this shard, empty: its id and slab slot.
    fn create_room(&mut self, create: &wire::RoomCreate) -> Result<(u64, usize), LobbyRefusal> {
        let room_id = (u64::from(self.shard) << SHARD_ID_SHIFT) | self.next_room;
        self.create_room_with_id(room_id, create)?;
        self.next_room += 1;
        Ok((room_id, self.room_slots[&room_id]))
    }

    fn create_room_with_id(
        &mut self,
        room_id: u64,
        create: &wire::RoomCreate,
    ) -> Result<usize, LobbyRefusal> {
        if !(1..=MAX_PLAYERS as u8).contains(&create.capacity) {
            return Err(LobbyRefusal::InvalidSettings("capacity is 1 to 8"));
        }
        if self.rooms.len() >= MAX_ROOMS_PER_SHARD || self.room_slots.contains_key(&room_id) {
            return Err(LobbyRefusal::Busy);
        }
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
        Ok(slot)
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
        if usize::from(shard) >= self.shard_count() {
            // No shard owns it: no such room (the message would be dropped).
            self.refuse_missing_room(room_id, &command);
        } else if shard == self.shard {
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
        let mut effects = Effects::default();
        let any = &mut self.rooms[slot];
        with_room!(any, room => room.apply(command, now.monotonic_ms, &mut self.outbox, &mut effects));
        self.after_room_change(slot, effects);
    }

    fn refuse_missing_room(&mut self, room_id: u64, command: &RoomCommand) {
        if let RoomCommand::Reserve { ticket, .. }
        | RoomCommand::Leave { ticket: Some(ticket), .. } = command
        {
            self.answer(*ticket, LobbyAnswer::Refused(LobbyRefusal::RoomNotFound));
            return;
        }
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
        self.release(player_id, room_id, Some(session.shard));
    }

    /// Tells the session's shard that `player_id` is out of `room_id`:
    /// `shard` when the room knew the session, else the shard the player
    /// id names (a guest's; account ids name none, and a membership left
    /// stale is corrected by the next room command's refusal).
    fn release(&mut self, player_id: u64, room_id: u64, shard: Option<u16>) {
        let shard = shard.unwrap_or_else(|| owner_shard(player_id));
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
    fn after_room_change(&mut self, slot: usize, effects: Effects) {
        let any = &mut self.rooms[slot];
        let (room_id, deadline, listing, closed) = with_room!(any, room => (
            room.id,
            room.next_deadline_ms(),
            room.listing_change(),
            room.is_closed(),
        ));
        for (player_id, shard) in effects.released {
            self.release(player_id, room_id, shard);
        }
        if let Some((ticket, answer)) = effects.answer {
            self.answer(ticket, answer);
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
            if let Some(sink) = self.history.as_mut() {
                let any = &mut self.rooms[slot];
                with_room!(any, room => room.hand_leftover_events(sink));
            }
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

    // ---- REST lobby calls: rooms and the quick-match queue ----

    /// A room on this shard with a seat held for its creator.
    fn create_for(
        &mut self,
        player_id: u64,
        settings: &RoomSettings,
        ticket: Ticket,
        reply: LobbyReply,
        now: Now,
    ) -> Option<LobbyAnswer> {
        let create = wire::RoomCreate {
            game: settings.game,
            capacity: settings.capacity,
            private: settings.private,
            name: text(&settings.name),
        };
        let room_id = match self.create_room(&create) {
            Ok((room_id, _)) => room_id,
            Err(refusal) => return Some(LobbyAnswer::Refused(refusal)),
        };
        let token = self.next_random();
        let command = RoomCommand::Reserve { player_id, token, ttl_ms: RESERVATION_TTL_MS, ticket };
        match self.call_room(room_id, command, ticket, reply, now) {
            Some(LobbyAnswer::Seat { room, token, expires_in_ms, .. }) => {
                Some(LobbyAnswer::Seat { room, token, expires_in_ms, created: true })
            }
            other => other,
        }
    }

    /// Routes a command that answers `ticket`: the answer itself when the
    /// room is here, `None` when another shard answers later.
    fn call_room(
        &mut self,
        room_id: u64,
        command: RoomCommand,
        ticket: Ticket,
        reply: LobbyReply,
        now: Now,
    ) -> Option<LobbyAnswer> {
        self.calling = Some(ticket.id);
        self.route(room_id, command, now);
        self.calling = None;
        if let Some(answer) = self.answered_now.take() {
            return Some(answer);
        }
        self.wait_for_answer(ticket, reply, now);
        None
    }

    fn wait_for_answer(&mut self, ticket: Ticket, reply: LobbyReply, now: Now) {
        let since_ms = now.monotonic_ms;
        self.pending.insert(ticket.id, PendingCall { reply, since_ms });
        self.arm_lobby_timer(since_ms + LOBBY_ANSWER_TIMEOUT_MS);
    }

    /// Sends `answer` where `ticket` says: the call in progress, a call
    /// waiting here, or another shard.
    fn answer(&mut self, ticket: Ticket, answer: LobbyAnswer) {
        if ticket.shard == self.shard {
            self.on_lobby_answer(ticket.id, answer);
        } else {
            let message = HostMessage::LobbyAnswer { ticket: ticket.id, answer };
            self.outbox.push(HostOutput::Send { shard: ticket.shard, message });
        }
    }

    fn on_lobby_answer(&mut self, id: u64, answer: LobbyAnswer) {
        if self.calling == Some(id) {
            self.answered_now = Some(answer);
            return;
        }
        match self.pending.remove(&id) {
            Some(call) => (call.reply)(answer),
            // Answered Unavailable already: the client has moved on.
            None => tracing::debug!(ticket = id, "late lobby answer dropped"),
        }
    }

    /// The quick-match queue, on the matchmaker's shard.
    fn on_queue(&mut self, account: &Account, call: LobbyCall, now: Now) -> LobbyAnswer {
        let (player_id, now_ms) = (account.player_id, now.monotonic_ms);
        self.quick_match.expire(now_ms);
        match call {
            LobbyCall::QueueJoin(game) => {
                let queued = self.quick_match.enqueue(player_id, &account.nickname, game, now_ms);
                if let Err(QueueError::Full) = queued {
                    return LobbyAnswer::Refused(LobbyRefusal::Busy);
                }
                self.form_matches(now);
            }
            LobbyCall::QueueLeave => {
                self.quick_match.dequeue(player_id);
            }
            LobbyCall::QueueStatus => {}
            LobbyCall::CreateRoom(_) | LobbyCall::JoinRoom(_) | LobbyCall::LeaveRoom(_) => {
                unreachable!("room calls go to rooms")
            }
        }
        LobbyAnswer::Queue(QueueView::of(self.quick_match.status(player_id, now_ms), now_ms))
    }

    /// Takes every match that can form now out of the queue and has its
    /// room created, shards taken in turn.
    fn form_matches(&mut self, now: Now) {
        let now_ms = now.monotonic_ms;
        let shards = self.shard_count().min(usize::from(u16::MAX)) as u16;
        while let Some(formed) = self.quick_match.poll_match(now_ms) {
            let shard = self.next_match_shard % shards;
            self.next_match_shard = (shard + 1) % shards;
            let room_id =
                (u64::from(shard) << SHARD_ID_SHIFT) | MATCH_ROOM_BIT | self.next_match_room;
            self.next_match_room += 1;
            let mut seats = arrayvec::ArrayVec::new();
            for (player_id, _) in &formed.players {
                let token = self.next_random();
                seats.push((*player_id, token));
                let expires_at_ms = now_ms + MATCHED_KEEP_MS;
                let seat = MatchSeat { game: formed.game, room_id, token, expires_at_ms };
                self.quick_match.seated(*player_id, seat);
            }
            let (game, ttl_ms) = (formed.game, RESERVATION_TTL_MS);
            let message = HostMessage::CreateMatchRoom { room_id, game, seats, ttl_ms };
            if shard == self.shard {
                self.handle_message(message, now);
            } else {
                self.outbox.push(HostOutput::Send { shard, message });
            }
        }
        if let Some(deadline) = self.quick_match.next_deadline_ms() {
            self.arm_lobby_timer(deadline);
        }
    }

    /// A private room for a match, every seat held for its player.
    fn create_match_room(
        &mut self,
        room_id: u64,
        game: GameKind,
        seats: &[(u64, u64)],
        ttl_ms: u64,
        now: Now,
    ) {
        let create = wire::RoomCreate {
            game,
            capacity: seats.len().clamp(1, MAX_PLAYERS) as u8,
            private: true,
            name: text(&format!("{} match", game_name(game))),
        };
        let slot = match self.create_room_with_id(room_id, &create) {
            Ok(slot) => slot,
            Err(refusal) => {
                // The players' RoomJoin will be refused RoomNotFound.
                return tracing::warn!(room_id, ?refusal, "match room not created");
            }
        };
        let expires_at_ms = now.monotonic_ms + ttl_ms;
        let any = &mut self.rooms[slot];
        with_room!(any, room => {
            for &(player_id, token) in seats {
                let held = room.room.reserve(player_id, token, expires_at_ms);
                debug_assert!(held, "a new room has a seat per matched player");
            }
        });
        self.after_room_change(slot, Effects::default());
    }

    /// Has the lobby timer fire by `deadline_ms` (an earlier one stays).
    fn arm_lobby_timer(&mut self, deadline_ms: u64) {
        if self.timers.deadline(LOBBY_TIMER).is_some_and(|armed| armed <= deadline_ms) {
            return;
        }
        if self.timers.arm(LOBBY_TIMER, deadline_ms).is_err() {
            tracing::error!("timer wheel full: lobby calls may wait for the next one");
        }
    }

    /// The lobby timer fired: calls waiting too long are answered
    /// Unavailable; the queue's waits and matches expire or form.
    fn on_lobby_timer(&mut self, now: Now) {
        let now_ms = now.monotonic_ms;
        let late: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, call)| now_ms >= call.since_ms + LOBBY_ANSWER_TIMEOUT_MS)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            if let Some(call) = self.pending.remove(&id) {
                (call.reply)(LobbyAnswer::Refused(LobbyRefusal::Unavailable));
            }
        }
        if let Some(oldest) = self.pending.values().map(|call| call.since_ms).min() {
            self.arm_lobby_timer(oldest + LOBBY_ANSWER_TIMEOUT_MS);
        }
        if self.shard == MATCHMAKER_SHARD {
            self.quick_match.expire(now_ms);
            self.form_matches(now);
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
        let mut account = None;
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
                account = Some(player_id);
                (player_id, nickname, false)
            }
            (None, None) => {
                let (player_id, nickname) = self.new_guest(hello);
                (player_id, nickname, false)
            }
        };
        let token = self.resume.issue(player_id, &nickname, now_s);
        let info = SessionInfo {
            player_id,
            nickname: nickname.clone(),
            room: None,
            account,
            reads: arrayvec::ArrayVec::new(),
        };
        self.sessions.insert(session, info);
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
        let ours = request.path.starts_with("/api/") && !is_shard_route(request.path);
        let Some(mut link) = (if ours { self.api.take() } else { None }) else {
            return HttpAnswer::Ready(web::route(request.method, request.path, &self.facts));
        };
        self.last_now = now;
        let mailbox = link.reply_to.clone();
        let reply = Box::new(move |response: WebResponse| {
            let message = ShardMessage::HttpReply { target, response: Box::new(response) };
            if mailbox.send(message).is_err() {
                // The shard is overloaded; the client gets 504 from the
                // transport's deadline instead.
                tracing::warn!(shard = target.shard, "API answer dropped: mailbox full");
            }
        });
        // The link is out while the front runs, so the host can be its lobby.
        let answer = link.frontend.handle(request, now, reply, self);
        self.api = Some(link);
        match answer {
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
            HostMessage::LobbyAnswer { ticket, answer } => self.on_lobby_answer(ticket, answer),
            HostMessage::Queue { account, call, ticket } => {
                let answer = self.on_queue(&account, call, now);
                self.answer(ticket, answer);
            }
            HostMessage::CreateMatchRoom { room_id, game, seats, ttl_ms } => {
                self.create_match_room(room_id, game, &seats, ttl_ms, now);
            }
            HostMessage::HistoryAnswer { session, player_id, request_id, frames } => {
                self.on_history_answer(session, player_id, request_id, frames);
            }
        }
    }

    fn timeout_ms(&self, now: Now) -> Option<u64> {
        self.timers.timeout_ms(now.monotonic_ms)
    }

    fn handle_timeout(&mut self, now: Now) {
        self.last_now = now;
        let mut due = std::mem::take(&mut self.due);
        let stats = self.facts.stats.get(usize::from(self.shard));
        let mut lobby_due = false;
        self.timers.expire(now.monotonic_ms, |key, deadline_ms| {
            if key == LOBBY_TIMER {
                lobby_due = true;
                return;
            }
            if let Some(stats) = stats {
                stats.record_tick_lateness(now.monotonic_ms.saturating_sub(deadline_ms));
            }
            due.push(key.owner as usize)
        });
        if lobby_due {
            self.on_lobby_timer(now);
        }
        if let Some(sink) = self.history.as_mut() {
            sink.unix_ms = (now.unix_us / 1_000) as i64;
        }
        for slot in due.drain(..) {
            let Some(any) = self.rooms.get_mut(slot) else { continue };
            let mut effects = Effects::default();
            let history = self.history.as_mut();
            with_room!(any, room => room.advance(now.monotonic_ms, &mut self.outbox, &mut effects, history));
            self.after_room_change(slot, effects);
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

impl Lobby for GameHost {
    fn rooms(&self, game: Option<GameKind>, limit: usize) -> Vec<RoomView> {
        Directory(&self.directory).public(game, limit).into_iter().map(Listing::view).collect()
    }

    fn room(&self, room_id: u64) -> Option<RoomView> {
        self.directory.get(&room_id).filter(|listing| !listing.private).map(Listing::view)
    }

    fn call(
        &mut self,
        account: &Account,
        call: LobbyCall,
        reply: LobbyReply,
        now: Now,
    ) -> Option<LobbyAnswer> {
        if self.pending.len() >= MAX_PENDING_LOBBY_CALLS {
            return Some(LobbyAnswer::Refused(LobbyRefusal::Busy));
        }
        let player_id = account.player_id;
        let ticket = Ticket { shard: self.shard, id: self.next_ticket };
        self.next_ticket += 1;
        match call {
            LobbyCall::CreateRoom(settings) => {
                let answer = self.create_for(player_id, &settings, ticket, reply, now);
                debug_assert!(answer.is_some(), "a room on this shard answers at once");
                answer
            }
            LobbyCall::JoinRoom(room_id) => {
                let token = self.next_random();
                let ttl_ms = RESERVATION_TTL_MS;
                let command = RoomCommand::Reserve { player_id, token, ttl_ms, ticket };
                self.call_room(room_id, command, ticket, reply, now)
            }
            LobbyCall::LeaveRoom(room_id) => {
                let command = RoomCommand::Leave { player_id, ticket: Some(ticket) };
                self.call_room(room_id, command, ticket, reply, now)
            }
            LobbyCall::QueueJoin(_) | LobbyCall::QueueLeave | LobbyCall::QueueStatus => {
                if self.shard == MATCHMAKER_SHARD {
                    return Some(self.on_queue(account, call, now));
                }
                let message = HostMessage::Queue { account: account.clone(), call, ticket };
                self.outbox.push(HostOutput::Send { shard: MATCHMAKER_SHARD, message });
                self.wait_for_answer(ticket, reply, now);
                None
            }
        }
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

#[cfg(test)]
mod lobby_tests;
