//! A room as its owning shard hosts it: the pure [`Room`] plus who to
//! tell. Commands go in; frames for members and spectators come out,
//! each encoded once and shared (`Bytes`) by every recipient.

use std::collections::VecDeque;

use arrayvec::ArrayVec;
use bytes::{Bytes, BytesMut};

use super::outbox::{Listing, Outbox, RoomCommand, Ticket};
use crate::proto::wire::{
    self, ErrorCode, GameKind, LeaveReason as WireLeaveReason, Member as WireMember, RoomPhase,
    Text, WireMessage, MAX_ROOM_PLAYERS,
};
use crate::reactor::host::SessionRef;
use crate::services::api::lobby::{LobbyAnswer, LobbyRefusal, RoomView};
use crate::services::events::tap::{EventTap, TapRecord};
use crate::sim::event::Event;
use crate::sim::event::EventKind;
use crate::sim::room::{JoinError, Joined, LeaveReason, Phase, Room, RoomEvent};
use crate::sim::{Game, MAX_PLAYERS};

/// Spectators one room takes; more are refused (RoomFull).
pub const MAX_SPECTATORS_PER_ROOM: usize = 1_024;
/// Frames held back for delayed spectators; beyond this the oldest go.
pub const MAX_DELAYED_FRAMES: usize = 8_192;

/// How a game's state and events become wire messages.
pub trait WireGame: Game + Sized {
    const KIND: GameKind;
    /// Whether GameStart tells clients the seed (only where it gives no
    /// player an edge).
    const REVEAL_SEED: bool;
    /// Per-room memory of what was last sent (for deltas, moments).
    type View: Default;

    /// The game's options for a room of `capacity` seats.
    fn config_for(capacity: u8) -> Self::Config;

    /// Frames with the complete state, for a start, a (re)join or a
    /// spectator, appended to `out`.
    fn snapshot(game: &Self, out: &mut BytesMut);

    /// One tick's frames: reliable ones (events) and unreliable ones (the
    /// state that the next tick supersedes), appended to the buffers.
    fn tick_frames(
        game: &Self,
        view: &mut Self::View,
        events: &[Event],
        reliable: &mut BytesMut,
        unreliable: &mut BytesMut,
    );

    /// Results in wire form, winner first.
    fn results(room: &Room<Self>, room_id: u64) -> wire::GameResults;
}

/// A member or spectator and its session (None while disconnected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Recipient {
    player_id: u64,
    session: Option<SessionRef>,
}

/// Frames a delayed spectator will see at `release_tick`.
#[derive(Debug)]
struct Delayed {
    release_tick: u32,
    frames: Bytes,
    reliable: bool,
}

pub struct HostedRoom<G: WireGame> {
    pub id: u64,
    pub code: String,
    pub name: String,
    pub private: bool,
    pub room: Room<G>,
    members: ArrayVec<Recipient, MAX_PLAYERS>,
    spectators: Vec<Recipient>,
    delayed: VecDeque<Delayed>,
    view: G::View,
    reliable: BytesMut,
    unreliable: BytesMut,
    listed: Option<Listing>,
    /// The running game's seed (for GameStart on a reconnect).
    seed: u64,
    /// Game events handed to the event writer so far (their message ids).
    events_handed: u64,
}

/// The shard's hand-off of game events to the event writer: the tap, a
/// scratch buffer reused by every room, and the wall clock of this turn.
pub struct HistorySink {
    pub tap: EventTap,
    pub scratch: Vec<Event>,
    pub unix_ms: i64,
}

/// What the host must pass on after a command or a tick.
#[derive(Debug, Default)]
pub struct Effects {
    /// Players no longer in this room (left, refused, timed out), with the
    /// shard of the session that was in it when known: that shard forgets
    /// the membership.
    pub released: ArrayVec<(u64, Option<u16>), { MAX_PLAYERS + 1 }>,
    /// The answer to a lobby call (REST join or leave).
    pub answer: Option<(Ticket, LobbyAnswer)>,
}

impl Effects {
    /// Notes `player_id` as out (once; a full list drops the rest, which
    /// only leaves a stale membership the next command corrects).
    pub fn release(&mut self, player_id: u64, session: Option<SessionRef>) {
        if !self.released.iter().any(|(id, _)| *id == player_id) && !self.released.is_full() {
            self.released.push((player_id, session.map(|session| session.shard)));
        }
    }
}

impl<G: WireGame> HostedRoom<G> {
    pub fn new(id: u64, code: String, name: String, private: bool, room: Room<G>) -> Self {
        HostedRoom {
            id,
            code,
            name,
            private,
            room,
            members: ArrayVec::new(),
            spectators: Vec::new(),
            delayed: VecDeque::new(),
            view: G::View::default(),
            reliable: BytesMut::with_capacity(1_024),
            unreliable: BytesMut::with_capacity(1_024),
            listed: None,
            seed: 0,
            events_handed: 0,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.room.phase() == Phase::Closed
    }

    /// Every session watching or playing, for a shutdown notice.
    pub fn recipients(&self) -> impl Iterator<Item = (u64, SessionRef)> + '_ {
        self.members
            .iter()
            .chain(self.spectators.iter())
            .filter_map(|r| r.session.map(|session| (r.player_id, session)))
    }

    /// The directory entry, when it changed since the last call.
    pub fn listing_change(&mut self) -> Option<Listing> {
        let listing = self.listing();
        if self.listed.as_ref() == Some(&listing) {
            return None;
        }
        self.listed = Some(listing.clone());
        Some(listing)
    }

    /// The room as the REST API shows it.
    pub fn view(&self) -> RoomView {
        self.listing().view()
    }

    fn listing(&self) -> Listing {
        Listing {
            room_id: self.id,
            code: self.code.clone(),
            name: self.name.clone(),
            game: G::KIND,
            phase: wire_phase(self.room.phase()),
            members: self.room.members().len() as u8,
            capacity: self.room.config().capacity,
            spectators: self.spectators.len().min(usize::from(u16::MAX)) as u16,
            private: self.private,
        }
    }

    /// The session holding `player_id`'s seat or watching, if any.
    fn session_of(&self, player_id: u64) -> Option<SessionRef> {
        self.members
            .iter()
            .chain(self.spectators.iter())
            .find(|r| r.player_id == player_id)
            .and_then(|r| r.session)
    }

    pub fn apply(
        &mut self,
        command: RoomCommand,
        now_ms: u64,
        outbox: &mut Outbox,
        effects: &mut Effects,
    ) {
        match command {
            RoomCommand::Join { player_id, nickname, session, reservation } => {
                self.join(player_id, &nickname, session, reservation, now_ms, outbox, effects);
            }
            RoomCommand::Leave { player_id, ticket } => {
                let session = self.session_of(player_id);
                let was_in = self.room.leave(player_id, LeaveReason::Left, now_ms)
                    || self.stop_spectating(player_id)
                    || self.room.cancel_reservation(player_id, now_ms);
                effects.release(player_id, session);
                if let Some(ticket) = ticket {
                    let answer = match was_in {
                        true => LobbyAnswer::Left { room_id: self.id },
                        false => LobbyAnswer::Refused(LobbyRefusal::NotInRoom),
                    };
                    effects.answer = Some((ticket, answer));
                }
            }
            RoomCommand::Reserve { player_id, token, ttl_ms, ticket } => {
                let answer = self.reserve(player_id, token, now_ms, ttl_ms);
                effects.answer = Some((ticket, answer));
            }
            RoomCommand::Ready { player_id, ready } => {
                self.room.set_ready(player_id, ready, now_ms);
            }
            RoomCommand::Input { player_id, seq, inputs } => {
                self.room.input(player_id, seq, &inputs);
            }
            RoomCommand::Disconnected { player_id, session } => {
                let seat = self.members.iter_mut().find(|r| r.player_id == player_id);
                match seat {
                    // The seat moved to a newer session (a resume the old
                    // session's close arrives after): nothing changes.
                    Some(member) if member.session.is_some_and(|current| current != session) => {}
                    Some(member) => {
                        member.session = None;
                        self.room.disconnect(player_id, now_ms);
                    }
                    None => self.room.disconnect(player_id, now_ms),
                }
                self.stop_spectating(player_id);
            }
            RoomCommand::Spectate { player_id, session } => {
                self.spectate(player_id, session, outbox, effects);
            }
            RoomCommand::StopSpectating { player_id } => {
                let session = self.session_of(player_id);
                self.stop_spectating(player_id);
                effects.release(player_id, session);
            }
        }
        self.flush_events(outbox, effects);
    }

    #[allow(clippy::too_many_arguments)]
    fn join(
        &mut self,
        player_id: u64,
        nickname: &str,
        session: SessionRef,
        reservation: Option<u64>,
        now_ms: u64,
        outbox: &mut Outbox,
        effects: &mut Effects,
    ) {
        match self.room.join(player_id, nickname, reservation, now_ms) {
            Ok(joined) => {
                match self.members.iter_mut().find(|r| r.player_id == player_id) {
                    Some(member) => member.session = Some(session),
                    None => self.members.push(Recipient { player_id, session: Some(session) }),
                }
                // Queued before the room's own events (MemberJoined) go out.
                self.send_room_joined(player_id, session, outbox);
                if matches!(joined, Joined::Reconnected(_)) {
                    self.send_game_state(player_id, session, outbox);
                }
            }
            Err(JoinError::AlreadyMember) if self.takes_over(player_id, session) => {
                // The player resumed on a new session while the old one
                // still looks alive (its network died; the server has not
                // noticed yet): the seat follows the new session, and the
                // old one's eventual close is ignored.
                self.send_room_joined(player_id, session, outbox);
                self.send_game_state(player_id, session, outbox);
            }
            Err(error) => {
                let (code, text) = match error {
                    JoinError::Full => (ErrorCode::RoomFull, "the room is full"),
                    JoinError::NotJoinable => {
                        (ErrorCode::RoomInProgress, "the game is running: spectate instead")
                    }
                    JoinError::BadReservation => {
                        (ErrorCode::InvalidReservation, "no seat is reserved with that token")
                    }
                    JoinError::AlreadyMember => (ErrorCode::AlreadyInRoom, "already in the room"),
                };
                send_error(outbox, session, player_id, code, wire::RoomJoin::CODE, text);
                if error != JoinError::AlreadyMember {
                    effects.release(player_id, Some(session));
                }
            }
        }
    }

    /// Holds a seat for a REST join (renewing one already held).
    fn reserve(&mut self, player_id: u64, token: u64, now_ms: u64, ttl_ms: u64) -> LobbyAnswer {
        let refusal = if self.room.member(player_id).is_some() {
            LobbyRefusal::AlreadyInRoom
        } else if self.room.phase() != Phase::Waiting {
            LobbyRefusal::RoomInProgress
        } else if !self.room.reserve(player_id, token, now_ms + ttl_ms) {
            LobbyRefusal::RoomFull
        } else {
            return LobbyAnswer::Seat {
                room: self.view(),
                token,
                expires_in_ms: ttl_ms,
                created: false,
            };
        };
        LobbyAnswer::Refused(refusal)
    }

    /// Moves a seated player's deliveries to `session` if they go to
    /// another session now; false when `session` already holds the seat.
    fn takes_over(&mut self, player_id: u64, session: SessionRef) -> bool {
        let Some(member) = self.members.iter_mut().find(|r| r.player_id == player_id) else {
            return false;
        };
        if member.session == Some(session) {
            return false;
        }
        member.session = Some(session);
        true
    }

    fn spectate(
        &mut self,
        player_id: u64,
        session: SessionRef,
        outbox: &mut Outbox,
        effects: &mut Effects,
    ) {
        if self.spectators.len() >= MAX_SPECTATORS_PER_ROOM {
            let text = "too many spectators";
            send_error(
                outbox,
                session,
                player_id,
                ErrorCode::RoomFull,
                wire::SpectateStart::CODE,
                text,
            );
            effects.release(player_id, Some(session));
            return;
        }
        self.stop_spectating(player_id);
        self.spectators.push(Recipient { player_id, session: Some(session) });
        self.room.spectator_joined();
        let joined = wire::SpectateJoined {
            room_id: self.id,
            game: G::KIND,
            tick_hz: G::TICK_HZ,
            delay_ticks: self.room.config().spectator_delay_ticks,
            members: self.wire_members(),
        };
        outbox.send(session, player_id, &joined);
        if self.room.config().spectator_delay_ticks == 0 {
            self.send_game_state(player_id, session, outbox);
        }
        self.broadcast_spectator_count(outbox);
    }

    fn stop_spectating(&mut self, player_id: u64) -> bool {
        let before = self.spectators.len();
        self.spectators.retain(|r| r.player_id != player_id);
        let removed = self.spectators.len() < before;
        if removed {
            self.room.spectator_left();
        }
        removed
    }

    fn broadcast_spectator_count(&mut self, outbox: &mut Outbox) {
        let count = wire::SpectatorCount { room_id: self.id, count: self.spectators.len() as u32 };
        let frames = outbox.encode(&count);
        self.to_members(&frames, true, outbox);
    }

    fn wire_members(&self) -> ArrayVec<WireMember, MAX_ROOM_PLAYERS> {
        self.room.members().iter().map(wire_member).collect()
    }

    fn send_room_joined(&self, player_id: u64, session: SessionRef, outbox: &mut Outbox) {
        let Some(member) = self.room.member(player_id) else { return };
        let joined = wire::RoomJoined {
            room_id: self.id,
            code: text(&self.code),
            name: text(&self.name),
            game: G::KIND,
            phase: wire_phase(self.room.phase()),
            capacity: self.room.config().capacity,
            tick_hz: G::TICK_HZ,
            your_slot: member.slot,
            members: self.wire_members(),
        };
        outbox.send(session, player_id, &joined);
    }

    /// GameStart and a full snapshot, for someone arriving mid-game.
    fn send_game_state(&self, player_id: u64, session: SessionRef, outbox: &mut Outbox) {
        let Some(game) = self.room.game() else { return };
        if self.room.phase() != Phase::Running {
            return;
        }
        outbox.send(session, player_id, &self.game_start(self.seed));
        let mut frames = BytesMut::new();
        G::snapshot(game, &mut frames);
        outbox.deliver(session, player_id, frames.freeze(), true);
    }

    fn game_start(&self, seed: u64) -> wire::GameStart {
        wire::GameStart {
            room_id: self.id,
            game: G::KIND,
            seed: if G::REVEAL_SEED { seed } else { 0 },
            tick_hz: G::TICK_HZ,
            start_tick: 0,
            players: self.room.game_players().iter().copied().collect(),
        }
    }

    /// Deadline for the shard's timer wheel.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.room.next_deadline_ms()
    }

    /// Runs what is due: ticks (each tick's frames go out at once), phase
    /// changes.
    pub fn advance(
        &mut self,
        now_ms: u64,
        outbox: &mut Outbox,
        effects: &mut Effects,
        mut history: Option<&mut HistorySink>,
    ) {
        let HostedRoom { room, view, reliable, unreliable, .. } = self;
        let mut ticks: ArrayVec<(u32, Bytes, Bytes), 8> = ArrayVec::new();
        room.advance(now_ms, |game, events| {
            if let Some(sink) = history.as_deref_mut() {
                sink.scratch.extend_from_slice(events);
            }
            G::tick_frames(game, view, events, reliable, unreliable);
            if !ticks.is_full() {
                ticks.push((
                    game.current_tick(),
                    reliable.split().freeze(),
                    unreliable.split().freeze(),
                ));
            }
        });
        for (tick, reliable_frames, unreliable_frames) in ticks {
            self.broadcast_tick(tick, reliable_frames, unreliable_frames, outbox);
        }
        if let Some(sink) = history {
            self.hand_history(sink);
        }
        self.flush_events(outbox, effects);
    }

    /// Hands over the game events no tick delivered (the last member's
    /// leave ended the game by forfeit): called before a closed room goes.
    pub fn hand_leftover_events(&mut self, sink: &mut HistorySink) {
        sink.scratch.extend(self.room.drain_game_events());
        if !sink.scratch.is_empty() {
            self.hand_history(sink);
        }
    }

    /// Hands this turn's game events to the event writer, each with the
    /// player it concerns (slots resolved now, while the room knows them).
    fn hand_history(&mut self, sink: &mut HistorySink) {
        let players = self.room.game_players();
        for event in sink.scratch.drain(..) {
            self.events_handed += 1;
            let player_id = event.player.and_then(|slot| players.get(usize::from(slot)).copied());
            let table =
                matches!(event.kind, EventKind::GameStart { .. } | EventKind::GameEnd { .. })
                    .then(|| players.to_vec().into_boxed_slice());
            sink.tap.hand(TapRecord {
                room_id: self.id,
                game: G::KIND,
                seq: self.events_handed,
                player_id,
                time_ms: sink.unix_ms,
                players: table,
                event,
            });
        }
    }

    fn broadcast_tick(
        &mut self,
        tick: u32,
        reliable: Bytes,
        unreliable: Bytes,
        outbox: &mut Outbox,
    ) {
        for (frames, is_reliable) in [(reliable, true), (unreliable, false)] {
            if frames.is_empty() {
                continue;
            }
            self.to_members(&frames, is_reliable, outbox);
            let delay = self.room.config().spectator_delay_ticks;
            if delay == 0 {
                self.to_spectators(&frames, is_reliable, outbox);
            } else if !self.spectators.is_empty() {
                if self.delayed.len() >= MAX_DELAYED_FRAMES {
                    self.delayed.pop_front();
                }
                let release_tick = tick + delay;
                self.delayed.push_back(Delayed { release_tick, frames, reliable: is_reliable });
            }
        }
        while self.delayed.front().is_some_and(|d| d.release_tick <= tick) {
            if let Some(delayed) = self.delayed.pop_front() {
                self.to_spectators(&delayed.frames, delayed.reliable, outbox);
            }
        }
    }

    fn to_members(&self, frames: &Bytes, reliable: bool, outbox: &mut Outbox) {
        for member in &self.members {
            if let Some(session) = member.session {
                outbox.deliver(session, member.player_id, frames.clone(), reliable);
            }
        }
    }

    fn to_spectators(&self, frames: &Bytes, reliable: bool, outbox: &mut Outbox) {
        for spectator in &self.spectators {
            if let Some(session) = spectator.session {
                outbox.deliver(session, spectator.player_id, frames.clone(), reliable);
            }
        }
    }

    fn to_everyone_except(&self, player_id: u64, frames: &Bytes, outbox: &mut Outbox) {
        let recipients = self.members.iter().chain(self.spectators.iter());
        for recipient in recipients.filter(|r| r.player_id != player_id) {
            if let Some(session) = recipient.session {
                outbox.deliver(session, recipient.player_id, frames.clone(), true);
            }
        }
    }

    fn to_everyone(&self, frames: &Bytes, outbox: &mut Outbox) {
        self.to_members(frames, true, outbox);
        self.to_spectators(frames, true, outbox);
    }

    /// Turns the room's events into messages for everyone concerned.
    fn flush_events(&mut self, outbox: &mut Outbox, effects: &mut Effects) {
        while let Some(event) = self.room.poll_event() {
            match event {
                RoomEvent::MemberJoined { slot } | RoomEvent::MemberReconnected { slot } => {
                    let Some(member) = self.room.members().iter().find(|m| m.slot == slot) else {
                        continue;
                    };
                    let joiner = member.player_id;
                    let frames = outbox.encode(&wire::MemberJoined { member: wire_member(member) });
                    // The joiner has the whole room in RoomJoined already.
                    self.to_everyone_except(joiner, &frames, outbox);
                }
                RoomEvent::MemberDisconnected { slot } => {
                    let Some(member) = self.room.members().iter().find(|m| m.slot == slot) else {
                        continue;
                    };
                    let left = wire::MemberLeft {
                        player_id: member.player_id,
                        slot,
                        reason: WireLeaveReason::Disconnected,
                    };
                    let frames = outbox.encode(&left);
                    self.to_everyone(&frames, outbox);
                }
                RoomEvent::MemberLeft { player_id, slot, reason } => {
                    let reason = match reason {
                        LeaveReason::Left => WireLeaveReason::Left,
                        LeaveReason::Kicked => WireLeaveReason::Kicked,
                        LeaveReason::TimedOut => WireLeaveReason::TimedOut,
                    };
                    let frames = outbox.encode(&wire::MemberLeft { player_id, slot, reason });
                    // The leaver hears it too: it confirms the leave.
                    self.to_everyone(&frames, outbox);
                    effects.release(player_id, self.session_of(player_id));
                    self.members.retain(|r| r.player_id != player_id);
                }
                RoomEvent::MemberReady { player_id, ready } => {
                    let frames = outbox.encode(&wire::MemberReady { player_id, ready });
                    self.to_everyone(&frames, outbox);
                }
                RoomEvent::CountdownStarted { remaining_ms } => {
                    let countdown = wire::Countdown { room_id: self.id, remaining_ms };
                    let frames = outbox.encode(&countdown);
                    self.to_everyone(&frames, outbox);
                }
                RoomEvent::CountdownCancelled => {
                    let countdown = wire::Countdown { room_id: self.id, remaining_ms: 0 };
                    let frames = outbox.encode(&countdown);
                    self.to_everyone(&frames, outbox);
                }
                RoomEvent::GameStarted { seed } => self.on_game_started(seed, outbox),
                RoomEvent::GameEnded => {
                    let frames = outbox.encode(&G::results(&self.room, self.id));
                    self.to_members(&frames, true, outbox);
                    // Spectators get the results after the rest of the game.
                    self.flush_delayed(outbox);
                    self.to_spectators(&frames, true, outbox);
                }
                RoomEvent::Reopened => {
                    for member in self.room.members() {
                        let ready = wire::MemberReady { player_id: member.player_id, ready: false };
                        let frames = outbox.encode(&ready);
                        self.to_everyone(&frames, outbox);
                    }
                }
                RoomEvent::Closed => {
                    for spectator in std::mem::take(&mut self.spectators) {
                        effects.release(spectator.player_id, spectator.session);
                    }
                }
            }
        }
    }

    fn on_game_started(&mut self, seed: u64, outbox: &mut Outbox) {
        self.seed = seed;
        self.delayed.clear();
        self.view = G::View::default();
        let start = outbox.encode(&self.game_start(seed));
        let mut snapshot = BytesMut::new();
        if let Some(game) = self.room.game() {
            G::snapshot(game, &mut snapshot);
        }
        let mut frames = BytesMut::with_capacity(start.len() + snapshot.len());
        frames.extend_from_slice(&start);
        frames.extend_from_slice(&snapshot);
        let frames = frames.freeze();
        self.to_members(&frames, true, outbox);
        if self.room.config().spectator_delay_ticks == 0 {
            self.to_spectators(&frames, true, outbox);
        } else {
            let release_tick = self.room.config().spectator_delay_ticks;
            self.delayed.push_back(Delayed { release_tick, frames, reliable: true });
        }
    }

    fn flush_delayed(&mut self, outbox: &mut Outbox) {
        while let Some(delayed) = self.delayed.pop_front() {
            self.to_spectators(&delayed.frames, delayed.reliable, outbox);
        }
    }
}

fn send_error(
    outbox: &mut Outbox,
    session: SessionRef,
    player_id: u64,
    code: ErrorCode,
    in_reply_to: u16,
    message: &str,
) {
    let error = wire::Error { code: code as u16, in_reply_to, text: text(message) };
    outbox.send(session, player_id, &error);
}

/// Text for the wire, cut to its limit at a character boundary.
pub fn text<const MAX: usize>(value: &str) -> Text<MAX> {
    let mut end = value.len().min(MAX);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    Text::new(&value[..end]).unwrap_or_default()
}

fn wire_member(member: &crate::sim::room::Member) -> WireMember {
    WireMember {
        player_id: member.player_id,
        slot: member.slot,
        nickname: text(&member.nickname),
        ready: member.ready,
        connected: member.connected,
    }
}

pub fn wire_phase(phase: Phase) -> RoomPhase {
    match phase {
        Phase::Waiting | Phase::Closed => RoomPhase::Waiting,
        Phase::Countdown => RoomPhase::Countdown,
        Phase::Running => RoomPhase::Playing,
        Phase::Finished => RoomPhase::Finished,
    }
}
