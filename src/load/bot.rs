//! What one bot of `ludus bots` does once its session is established:
//! quick-join a room and play it (arena walker or Tetris placer), or find a
//! running room and watch it. Sans-IO like the client session it drives:
//! the worker hands it messages and wake-ups with the time, it queues
//! messages on the session and says when it next wants to wake.
//!
//! Measurements a bot makes (into its worker's [`Meter`]):
//! - input-to-acknowledgement latency: from sending the Input whose newest
//!   sequence number is S to receiving the first state (ArenaState,
//!   TetrisDelta, TetrisSnapshot) whose `last_input_seq` for the bot's slot
//!   is at least S. An Input resent after loss keeps its first send time,
//!   so loss recovery counts against the latency, as a player feels it;
//! - state jitter: for two consecutive state messages of ticks t0 < t1
//!   arriving at a0 and a1, `|(a1 - a0) - (t1 - t0) * tick period|` (the
//!   transit-time variation of RFC 3550, section 6.4.1, per sample): it is
//!   zero however sparse the states are, as long as they travel alike.
//!
//! Per-bot state is a few hundred bytes; nothing here allocates per
//! message except what the session's encoder does.

use arrayvec::ArrayVec;

use super::report::ThreadStats;
use super::tetris_brain::{self, BotBoard, Weights};
use crate::client::{ClientSession, Credentials, Now};
use crate::proto::wire::{
    self, ArenaPlayer, ErrorCode, GameKind, LeaveReason, Message, PieceKind, RoomPhase,
    WireMessage, MAX_INPUT_REDUNDANCY,
};
use crate::sim::tetris::INPUT_HARD_DROP;

use hdrhistogram::Histogram;

/// Inputs awaiting their acknowledgement; an older one still unacked when
/// its entry is reused counts as unacknowledged.
const PENDING_INPUTS: usize = 64;
/// Arena inputs per second, as the workload says: 30 Hz.
pub const ARENA_INPUT_HZ: u64 = 30;
/// Arena inputs repeat this many of the previous ones against datagram loss.
const ARENA_REDUNDANCY: usize = 3;
/// A walker keeps its direction for about this many inputs on average.
const ARENA_TURN_EVERY: u64 = 30;
/// Arena bits: left, right, down, up.
const ARENA_LEFT: u16 = 1 << 0;
const ARENA_RIGHT: u16 = 1 << 1;
const ARENA_DOWN: u16 = 1 << 2;
const ARENA_UP: u16 = 1 << 3;
/// A Tetris Input not acknowledged after this long is sent again (same
/// sequence numbers: the server applies each once).
const TETRIS_RESEND_US: u64 = 150_000;
/// A player in an unfilled room gets ready after waiting this long, if at
/// least two are in it (a room need not fill for the game to start).
const READY_WAIT_US: u64 = 3_000_000;
/// A player alone in a room this long (plus up to as much again, at
/// random) leaves it and quick-joins again: on a sharded server two bots
/// can each create a room before either sees the other's in the directory.
const ALONE_REQUEUE_US: u64 = 2_000_000;
/// A refused quick join is tried again after this long plus as much again
/// at random.
const JOIN_RETRY_US: u64 = 200_000;
/// A reconnecting bot drops its transport this long into each game, plus
/// up to as much again at random.
const DROP_AFTER_US: u64 = 3_000_000;
/// Between a match's results and getting ready for the rematch.
const REMATCH_PAUSE_US: u64 = 1_000_000;
/// A spectator with no running room to watch asks again after this long.
const SPECTATE_RETRY_US: u64 = 2_000_000;
/// Microseconds of one second.
const SECOND_US: u64 = 1_000_000;

/// What the bots play and how.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BotOptions {
    pub game: GameKind,
    /// Tetris pieces a bot places per second.
    pub pieces_per_second: f64,
    /// One Tetris placement in this many is a random blunder (0: never), so
    /// boards fill and matches end like people's.
    pub blunder_every: u32,
}

impl Default for BotOptions {
    fn default() -> Self {
        BotOptions { game: GameKind::Arena, pieces_per_second: 2.0, blunder_every: 6 }
    }
}

/// A bot's part in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Player,
    Spectator,
}

/// Where a bot's measurements go: its worker's counts, plus the worker's
/// per-second latency histogram (the progress line and the plot).
pub(crate) struct Meter<'a> {
    /// Inside the measure window: counted in the final report.
    pub in_window: bool,
    pub stats: &'a mut ThreadStats,
    pub interval_ack_us: &'a mut Histogram<u64>,
}

impl Meter<'_> {
    fn ack(&mut self, latency_us: u64) {
        let latency_us = latency_us.max(1);
        self.interval_ack_us.saturating_record(latency_us);
        if self.in_window {
            self.stats.ack_us.saturating_record(latency_us);
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct PendingInput {
    seq: u32,
    sent_us: u64,
    waiting: bool,
}

/// The Tetris side of a player bot.
struct Tetris {
    board: BotBoard,
    /// The own falling piece not yet placed by this bot.
    piece: Option<PieceKind>,
    /// When the next placement is due (a piece is waiting).
    place_at_us: Option<u64>,
    last_place_us: u64,
    /// The last Input sent, for a resend while it is unacknowledged.
    last_input: Option<wire::Input>,
    resend_at_us: Option<u64>,
    placements: u32,
}

pub struct Bot {
    role: Role,
    options: BotOptions,
    rng: u64,
    player_id: u64,
    /// The run is over for this bot (it left its room): it acts no more.
    done: bool,
    room_id: Option<u64>,
    slot: Option<u8>,
    capacity: u8,
    members: u8,
    joined_us: u64,
    ready_sent: bool,
    /// When to get ready (unfilled room, rematch).
    ready_at_us: Option<u64>,
    playing: bool,
    tick_us: u64,
    last_state: Option<(u32, u64)>,
    // Inputs.
    seq: u32,
    history: [u16; MAX_INPUT_REDUNDANCY],
    pending: [PendingInput; PENDING_INPUTS],
    next_input_us: Option<u64>,
    direction: u16,
    tetris: Box<Tetris>,
    /// When to quick-join again after a refusal.
    join_at_us: Option<u64>,
    // Dropping and resuming (`--reconnect`).
    reconnects: bool,
    resume_token: Option<String>,
    drop_at_us: Option<u64>,
    drop_requested: bool,
    /// When the transport was dropped, until the room is rejoined.
    dropped_at_us: Option<u64>,
    // Spectator.
    list_at_us: Option<u64>,
}

impl Bot {
    pub fn new(role: Role, options: BotOptions, number: u32) -> Bot {
        Bot {
            role,
            options,
            // Any odd 64-bit start works for xorshift; the number spreads them.
            rng: (u64::from(number) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            player_id: 0,
            done: false,
            room_id: None,
            slot: None,
            capacity: 0,
            members: 0,
            joined_us: 0,
            ready_sent: false,
            ready_at_us: None,
            playing: false,
            tick_us: SECOND_US / 30,
            last_state: None,
            seq: 0,
            history: [0; MAX_INPUT_REDUNDANCY],
            pending: [PendingInput::default(); PENDING_INPUTS],
            next_input_us: None,
            direction: 0,
            tetris: Box::new(Tetris {
                board: BotBoard::new(),
                piece: None,
                place_at_us: None,
                last_place_us: 0,
                last_input: None,
                resend_at_us: None,
                placements: 0,
            }),
            join_at_us: None,
            reconnects: false,
            resume_token: None,
            drop_at_us: None,
            drop_requested: false,
            dropped_at_us: None,
            list_at_us: None,
        }
    }

    /// A bot that drops its transport (no Bye) once into every game and
    /// comes back with its resume token.
    pub fn reconnecting(mut self) -> Bot {
        self.reconnects = true;
        self
    }

    /// The worker should drop this bot's transport now and reconnect with
    /// [`Bot::resume_credentials`]; true once per request.
    pub(crate) fn take_drop_request(&mut self, now_us: u64) -> bool {
        if !std::mem::take(&mut self.drop_requested) {
            return false;
        }
        self.dropped_at_us = Some(now_us);
        // Nothing goes out until the new session rejoins the room.
        self.playing = false;
        self.next_input_us = None;
        self.ready_at_us = None;
        self.tetris.place_at_us = None;
        self.tetris.resend_at_us = None;
        self.tetris.last_input = None;
        true
    }

    pub(crate) fn resume_credentials(&self) -> Credentials {
        Credentials { resume_token: self.resume_token.clone(), ..Credentials::default() }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The room the bot plays or watches.
    pub fn room_id(&self) -> Option<u64> {
        self.room_id
    }

    /// The session got its Welcome.
    pub(crate) fn on_established(
        &mut self,
        session: &mut ClientSession,
        now: Now,
        meter: &mut Meter,
    ) {
        let welcome = session.welcome();
        self.player_id = welcome.map_or(0, |welcome| welcome.player_id);
        let resumed = welcome.is_some_and(|welcome| welcome.resumed);
        self.resume_token = welcome.map(|welcome| welcome.resume_token.as_str().to_owned());
        if self.dropped_at_us.is_some() {
            match self.room_id {
                Some(room_id) if resumed => {
                    self.send(session, &wire::RoomJoin { room_id, reservation_token: None }, meter);
                    return;
                }
                _ => {
                    meter.stats.errors.add("reconnect: the session was not resumed");
                    self.dropped_at_us = None;
                    self.leave_room();
                }
            }
        }
        match self.role {
            Role::Player => self.quick_join(session),
            Role::Spectator => self.list_at_us = Some(now.monotonic_us),
        }
    }

    /// The earliest time the bot wants [`Bot::on_wake`].
    pub fn wake_at_us(&self) -> Option<u64> {
        [
            self.ready_at_us,
            self.join_at_us,
            self.next_input_us,
            self.tetris.place_at_us,
            self.tetris.resend_at_us,
            self.list_at_us,
            self.drop_at_us,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(crate) fn on_wake(&mut self, session: &mut ClientSession, now: Now, meter: &mut Meter) {
        if self.done {
            return;
        }
        let now_us = now.monotonic_us;
        let due = |at: Option<u64>| at.is_some_and(|at| at <= now_us);
        if due(self.ready_at_us) {
            self.ready_at_us = None;
            self.get_ready(session, now_us, meter);
        }
        if due(self.drop_at_us) {
            self.drop_at_us = None;
            self.drop_requested = true;
            return;
        }
        if due(self.join_at_us) {
            self.join_at_us = None;
            if self.room_id.is_none() {
                self.quick_join(session);
            }
        }
        if due(self.list_at_us) {
            self.list_at_us = None;
            let request = wire::RoomListRequest { game: Some(self.options.game) };
            self.send(session, &request, meter);
        }
        if due(self.next_input_us) {
            self.arena_input(session, now, meter);
        }
        if due(self.tetris.place_at_us) {
            self.tetris.place_at_us = None;
            self.place_piece(session, now, meter);
        }
        if due(self.tetris.resend_at_us) {
            self.tetris.resend_at_us = Some(now_us + TETRIS_RESEND_US);
            if let Some(input) = self.tetris.last_input.clone() {
                meter.stats.inputs_resent += 1;
                self.send_unreliable(session, &input, meter);
            }
        }
    }

    pub(crate) fn on_message(
        &mut self,
        message: &Message,
        session: &mut ClientSession,
        now: Now,
        meter: &mut Meter,
    ) {
        if self.done {
            return;
        }
        let now_us = now.monotonic_us;
        match message {
            Message::RoomJoined(joined) => {
                self.room_id = Some(joined.room_id);
                self.slot = Some(joined.your_slot);
                self.capacity = joined.capacity;
                self.members = joined.members.len() as u8;
                self.joined_us = now_us;
                self.ready_sent = false;
                self.tick_us = SECOND_US / u64::from(joined.tick_hz.max(1));
                meter.stats.rooms_joined += 1;
                if let Some(dropped_us) = self.dropped_at_us.take() {
                    // Back in the room after a drop: play on where it is.
                    let latency_us = now_us.saturating_sub(dropped_us).max(1);
                    meter.stats.reconnect_us.saturating_record(latency_us);
                    if joined.phase == RoomPhase::Playing {
                        self.playing = true;
                        self.last_state = None;
                        if self.options.game == GameKind::Arena {
                            let phase_us = self.next_random() % (SECOND_US / ARENA_INPUT_HZ);
                            self.next_input_us = Some(now_us + phase_us);
                        }
                        return;
                    }
                }
                if joined.phase == RoomPhase::Waiting {
                    self.maybe_ready(session, now_us, meter);
                }
            }
            Message::MemberJoined(_) => {
                self.members = self.members.saturating_add(1);
                self.maybe_ready(session, now_us, meter);
            }
            Message::MemberLeft(left) => {
                if left.player_id == self.player_id && left.reason == LeaveReason::Left {
                    // Our own RoomLeave (requeue): already handled.
                } else if left.player_id == self.player_id {
                    // Removed from the room: find another.
                    self.leave_room();
                    if self.role == Role::Player {
                        self.quick_join(session);
                    }
                } else {
                    self.members = self.members.saturating_sub(1);
                }
            }
            Message::GameStart(start) => self.game_start(start, now_us, meter),
            Message::GameResults(_) => {
                self.playing = false;
                self.drop_at_us = None;
                self.next_input_us = None;
                self.tetris.place_at_us = None;
                self.tetris.resend_at_us = None;
                self.tetris.last_input = None;
                if self.role == Role::Player {
                    meter.stats.games_finished += 1;
                    self.ready_sent = false;
                    self.ready_at_us = Some(now_us + REMATCH_PAUSE_US);
                }
            }
            Message::ArenaState(state) => {
                self.state_arrived(state.tick, now_us, meter);
                if let Some(me) = self.own(&state.players) {
                    self.acknowledged(me.last_input_seq, now_us, meter);
                }
            }
            Message::TetrisSnapshot(snapshot) => {
                self.state_arrived(snapshot.tick, now_us, meter);
                let own = snapshot.boards.iter().find(|board| Some(board.slot) == self.slot);
                if let Some(board) = own {
                    self.tetris.board = BotBoard::from_wire_cells(board.cells.as_bytes());
                    self.acknowledged(board.last_input_seq, now_us, meter);
                    let waiting =
                        self.tetris.place_at_us.is_none() && self.tetris.last_input.is_none();
                    if let (Some(piece), true) = (&board.piece, self.playing && waiting) {
                        // After a resume: the piece falling now is ours to place.
                        self.tetris.piece = Some(piece.kind);
                        self.tetris.place_at_us = Some(now_us);
                    }
                }
            }
            Message::TetrisDelta(delta) => {
                self.state_arrived(delta.tick, now_us, meter);
                let own = delta.pieces.iter().find(|update| Some(update.slot) == self.slot);
                if let Some(update) = own {
                    self.acknowledged(update.last_input_seq, now_us, meter);
                }
            }
            Message::PieceSpawned(spawned) if self.is_own(spawned.slot) => {
                self.tetris.piece = Some(spawned.piece.kind);
                let interval_us = (SECOND_US as f64 / self.options.pieces_per_second) as u64;
                let due = now_us.max(self.tetris.last_place_us + interval_us);
                self.tetris.place_at_us = Some(due);
            }
            Message::PieceLocked(locked) if self.is_own(locked.slot) => {
                let piece = &locked.piece;
                self.tetris.board.lock(piece.kind, piece.rotation, piece.x, piece.y);
                meter.stats.pieces_locked += 1;
            }
            Message::GarbageReceived(garbage) if self.is_own(garbage.slot) => {
                self.tetris.board.insert_garbage(garbage.lines, garbage.hole_column);
            }
            Message::PlayerEliminated(out) if self.is_own(out.slot) => {
                self.playing = false;
                self.tetris.place_at_us = None;
                self.tetris.resend_at_us = None;
            }
            Message::RoomList(list) => self.pick_room_to_watch(list, session, now_us, meter),
            Message::SpectateJoined(joined) => {
                self.room_id = Some(joined.room_id);
                self.tick_us = SECOND_US / u64::from(joined.tick_hz.max(1));
                meter.stats.rooms_joined += 1;
            }
            Message::Error(error) => {
                let joining = [wire::QuickJoin::CODE, wire::RoomJoin::CODE, wire::RoomCreate::CODE];
                let retry = self.role == Role::Player
                    && self.room_id.is_none()
                    && joining.contains(&error.in_reply_to)
                    && error.code == ErrorCode::RoomFull as u16;
                if retry {
                    // The room a quick join picked filled up meanwhile (the
                    // directory is eventually consistent): not a failure,
                    // try again soon.
                    meter.stats.requeues += 1;
                    let spread_us = self.next_random() % JOIN_RETRY_US;
                    self.join_at_us = Some(now_us + JOIN_RETRY_US + spread_us);
                    return;
                }
                meter.stats.errors.add(format!(
                    "server error {} in reply to {:#04x}",
                    error.code, error.in_reply_to
                ));
                if self.role == Role::Spectator && self.room_id.is_none() {
                    self.list_at_us = Some(now_us + SPECTATE_RETRY_US);
                }
            }
            _ => {}
        }
    }

    // ----- rooms -----

    fn quick_join(&mut self, session: &mut ClientSession) {
        let _ = session.send(&wire::QuickJoin { game: self.options.game });
    }

    /// When the measure window closes a player leaves its room, as a
    /// client quitting does: a game in progress ends now (a forfeit)
    /// instead of after the reconnect grace, so its results are recorded.
    /// (Leaving a little before Bye, not with it: a WebTransport session's
    /// close may overtake what its streams still carry.) The bot then
    /// does nothing more.
    pub(crate) fn leave_at_end(&mut self, session: &mut ClientSession) {
        if self.role == Role::Player && self.room_id.is_some() {
            let _ = session.send(&wire::RoomLeave {});
            self.leave_room();
        }
        self.done = true;
        self.join_at_us = None;
        self.list_at_us = None;
        self.drop_at_us = None;
    }

    fn leave_room(&mut self) {
        self.room_id = None;
        self.slot = None;
        self.playing = false;
        self.ready_sent = false;
        self.ready_at_us = None;
        self.next_input_us = None;
        self.tetris.place_at_us = None;
        self.tetris.resend_at_us = None;
    }

    /// Ready when the room is full; in an unfilled one, after a wait.
    fn maybe_ready(&mut self, session: &mut ClientSession, now_us: u64, meter: &mut Meter) {
        if self.role != Role::Player || self.ready_sent || self.playing {
            return;
        }
        if self.members >= self.capacity {
            self.ready_at_us = None;
            self.get_ready(session, now_us, meter);
        } else if self.ready_at_us.is_none() {
            self.ready_at_us = Some(now_us.max(self.joined_us + READY_WAIT_US));
        }
    }

    fn get_ready(&mut self, session: &mut ClientSession, now_us: u64, meter: &mut Meter) {
        if self.room_id.is_none() || self.ready_sent || self.playing {
            return;
        }
        if self.members < 2 && self.capacity >= 2 {
            // Alone: no one-player game. Wait a little, then try another room.
            if now_us >= self.joined_us + ALONE_REQUEUE_US {
                meter.stats.requeues += 1;
                self.send(session, &wire::RoomLeave {}, meter);
                self.leave_room();
                self.quick_join(session);
            } else {
                let spread_us = self.next_random() % ALONE_REQUEUE_US;
                self.ready_at_us = Some(self.joined_us + ALONE_REQUEUE_US + spread_us);
            }
            return;
        }
        self.ready_sent = true;
        self.send(session, &wire::RoomReady { ready: true }, meter);
    }

    fn game_start(&mut self, start: &wire::GameStart, now_us: u64, meter: &mut Meter) {
        if self.playing && self.room_id == Some(start.room_id) {
            // Sent again after a resume, for the game we play already: the
            // server kept our inputs' sequence, so we keep ours.
            return;
        }
        self.tick_us = SECOND_US / u64::from(start.tick_hz.max(1));
        self.last_state = None;
        if self.role != Role::Player {
            return;
        }
        let Some(slot) = start.players.iter().position(|id| *id == self.player_id) else {
            return;
        };
        self.slot = Some(slot as u8);
        self.playing = true;
        self.ready_sent = false;
        meter.stats.games_started += 1;
        if self.reconnects {
            self.drop_at_us = Some(now_us + DROP_AFTER_US + self.next_random() % DROP_AFTER_US);
        }
        // Every game counts its inputs from 1 (the server's last_input_seq
        // starts at 0); unacknowledged ones of the last game are forgotten.
        self.seq = 0;
        self.history = [0; MAX_INPUT_REDUNDANCY];
        self.pending = [PendingInput::default(); PENDING_INPUTS];
        match self.options.game {
            // A random phase against the server's ticks, as real clients
            // have: all bots in step just after a tick would each wait a
            // whole tick and measure the phase, not the server.
            GameKind::Arena => {
                let phase_us = self.next_random() % (SECOND_US / ARENA_INPUT_HZ);
                self.next_input_us = Some(now_us + phase_us);
            }
            GameKind::Tetris => {
                self.tetris.board = BotBoard::new();
                self.tetris.last_input = None;
                self.tetris.resend_at_us = None;
                self.tetris.last_place_us = now_us;
            }
        }
    }

    fn pick_room_to_watch(
        &mut self,
        list: &wire::RoomList,
        session: &mut ClientSession,
        now_us: u64,
        meter: &mut Meter,
    ) {
        if self.role != Role::Spectator || self.room_id.is_some() {
            return;
        }
        let playing = list.rooms.iter().filter(|room| room.phase == RoomPhase::Playing).count();
        if playing == 0 {
            self.list_at_us = Some(now_us + SPECTATE_RETRY_US);
            return;
        }
        let pick = (self.next_random() % playing as u64) as usize;
        let room = list.rooms.iter().filter(|room| room.phase == RoomPhase::Playing).nth(pick);
        if let Some(room) = room {
            self.send(session, &wire::SpectateStart { room_id: room.room_id }, meter);
        }
    }

    // ----- states and acknowledgements -----

    fn is_own(&self, slot: u8) -> bool {
        self.playing && self.slot == Some(slot)
    }

    fn own<'a>(&self, players: &'a [ArenaPlayer]) -> Option<&'a ArenaPlayer> {
        let slot = self.slot?;
        players.iter().find(|player| player.slot == slot)
    }

    /// The latest server tick the bot has seen in a state (0 before any).
    fn client_frame(&self) -> u32 {
        self.last_state.map_or(0, |(tick, _)| tick)
    }

    fn state_arrived(&mut self, tick: u32, now_us: u64, meter: &mut Meter) {
        if meter.in_window {
            meter.stats.states_received += 1;
        }
        if let Some((last_tick, last_us)) = self.last_state {
            if tick > last_tick {
                let expected_us = u64::from(tick - last_tick) * self.tick_us;
                let jitter_us = (now_us - last_us).abs_diff(expected_us);
                if meter.in_window {
                    meter.stats.jitter_us.saturating_record(jitter_us.max(1));
                }
            }
        }
        if self.last_state.is_none_or(|(last_tick, _)| tick > last_tick) {
            self.last_state = Some((tick, now_us));
        }
    }

    fn acknowledged(&mut self, seq: u32, now_us: u64, meter: &mut Meter) {
        for pending in &mut self.pending {
            if pending.waiting && pending.seq <= seq {
                pending.waiting = false;
                meter.ack(now_us.saturating_sub(pending.sent_us));
            }
        }
        if self.tetris.last_input.as_ref().is_some_and(|input| input.seq <= seq) {
            self.tetris.last_input = None;
            self.tetris.resend_at_us = None;
        }
    }

    /// Remembers when the Input with newest sequence `seq` left.
    fn sent(&mut self, seq: u32, now_us: u64, meter: &mut Meter) {
        let entry = &mut self.pending[seq as usize % PENDING_INPUTS];
        if entry.waiting && meter.in_window {
            meter.stats.inputs_unacked += 1;
        }
        *entry = PendingInput { seq, sent_us: now_us, waiting: true };
        if meter.in_window {
            meter.stats.inputs_sent += 1;
        }
    }

    // ----- playing -----

    fn arena_input(&mut self, session: &mut ClientSession, now: Now, meter: &mut Meter) {
        let period_us = SECOND_US / ARENA_INPUT_HZ;
        let now_us = now.monotonic_us;
        let due = self.next_input_us.unwrap_or(now_us);
        // Behind by more than a period: skip ahead rather than burst.
        let next = if due + period_us <= now_us { now_us + period_us } else { due + period_us };
        self.next_input_us = self.playing.then_some(next);
        if !self.playing {
            return;
        }
        if self.seq == 0 || self.next_random().is_multiple_of(ARENA_TURN_EVERY) {
            self.direction = self.random_direction();
        }
        self.seq += 1;
        self.history.copy_within(0..MAX_INPUT_REDUNDANCY - 1, 1);
        self.history[0] = self.direction;
        let count = (self.seq as usize).min(ARENA_REDUNDANCY);
        let input = wire::Input {
            seq: self.seq,
            client_frame: self.client_frame(),
            inputs: self.history[..count].iter().copied().collect(),
        };
        self.sent(self.seq, now_us, meter);
        self.send_unreliable(session, &input, meter);
    }

    fn random_direction(&mut self) -> u16 {
        let horizontal = [0, ARENA_LEFT, ARENA_RIGHT][(self.next_random() % 3) as usize];
        let vertical = [0, ARENA_DOWN, ARENA_UP][(self.next_random() % 3) as usize];
        horizontal | vertical
    }

    fn place_piece(&mut self, session: &mut ClientSession, now: Now, meter: &mut Meter) {
        let Some(kind) = self.tetris.piece.take() else { return };
        if !self.playing {
            return;
        }
        let now_us = now.monotonic_us;
        self.tetris.placements += 1;
        let blunder = self.options.blunder_every > 0
            && self.tetris.placements.is_multiple_of(self.options.blunder_every);
        let weights = Weights::default();
        let plan = if blunder {
            let rank = 1 + (self.next_random() % 8) as usize;
            tetris_brain::plan_nth(&self.tetris.board, kind, &weights, rank)
                .or_else(|| tetris_brain::plan(&self.tetris.board, kind, &weights))
        } else {
            tetris_brain::plan(&self.tetris.board, kind, &weights)
        };
        let steps: ArrayVec<u16, MAX_INPUT_REDUNDANCY> = match &plan {
            Some(plan) => plan.inputs.iter().copied().collect(),
            None => [INPUT_HARD_DROP].into_iter().collect(),
        };
        // Oldest step gets the lowest sequence number; the wire lists newest first.
        self.seq += steps.len() as u32;
        let input = wire::Input {
            seq: self.seq,
            client_frame: self.client_frame(),
            inputs: steps.iter().rev().copied().collect(),
        };
        self.tetris.last_place_us = now_us;
        self.sent(self.seq, now_us, meter);
        self.send_unreliable(session, &input, meter);
        self.tetris.last_input = Some(input);
        self.tetris.resend_at_us = Some(now_us + TETRIS_RESEND_US);
    }

    // ----- sending -----

    fn send<M: wire::WireMessage>(
        &mut self,
        session: &mut ClientSession,
        message: &M,
        meter: &mut Meter,
    ) {
        if let Err(error) = session.send(message) {
            meter.stats.errors.add(format!("send: {error}"));
        }
    }

    fn send_unreliable<M: wire::WireMessage>(
        &mut self,
        session: &mut ClientSession,
        message: &M,
        meter: &mut Meter,
    ) {
        if let Err(error) = session.send_unreliable(message) {
            meter.stats.errors.add(format!("send: {error}"));
        }
    }

    /// xorshift64: the bots' own randomness (no shared generator).
    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }
}
