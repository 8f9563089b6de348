//! The message catalog of protocol version 1.
//!
//! Type codes are grouped by purpose: 0x01-0x0F session, 0x10-0x1F lobby,
//! 0x20-0x2F room, 0x30-0x3F game, 0x40-0x4F spectating, 0x50-0x5F chat,
//! 0x60-0x6F presence and notifications, 0x70-0x7F WebRTC signaling,
//! 0x80-0x8F match history and replays. Codes up
//! to 0xFF are core; 0x100-0x3FFF are for optional extensions that a receiver
//! skips when it does not know them.

use arrayvec::ArrayVec;
use serde_json::Value;

use super::codec::{Blob, List, Text};
use super::limits::*;
use super::macros::struct_definition;

wire_enum! {
    /// The game a room plays.
    pub enum GameKind: u8 {
        /// Competitive Tetris battle with garbage, 1 to 8 players (60 Hz).
        Tetris = 1 => "tetris",
        /// 2D movement arena, up to 8 players (30 Hz); the benchmark workload.
        Arena = 2 => "arena",
    }
}

wire_enum! {
    /// Where a room is in its life.
    pub enum RoomPhase: u8 {
        /// Gathering players; members toggle ready.
        Waiting = 0 => "waiting",
        /// Everyone is ready; the game starts when the countdown ends.
        Countdown = 1 => "countdown",
        /// The game is running.
        Playing = 2 => "playing",
        /// Results are out; the room closes or returns to waiting.
        Finished = 3 => "finished",
    }
}

wire_enum! {
    /// A matchmaking queue entry's state.
    pub enum QueueState: u8 {
        /// Not queued.
        Idle = 0 => "idle",
        /// Queued and waiting for opponents.
        Searching = 1 => "searching",
        /// A match was found; MatchFound follows.
        Found = 2 => "found",
    }
}

wire_enum! {
    /// Why a member left a room.
    pub enum LeaveReason: u8 {
        /// The player asked to leave.
        Left = 0 => "left",
        /// The connection dropped; the slot is kept for a reconnect.
        Disconnected = 1 => "disconnected",
        /// Removed by the room's owner or a moderator.
        Kicked = 2 => "kicked",
        /// Disconnected for longer than the reconnect grace period.
        TimedOut = 3 => "timed_out",
    }
}

wire_enum! {
    /// A chat channel.
    pub enum ChatChannel: u8 {
        /// Everyone in the sender's room (players and spectators).
        Room = 0 => "room",
        /// One player, named by `to_player`.
        Private = 1 => "private",
        /// Everyone in the lobby of the sender's server.
        Lobby = 2 => "lobby",
        /// Messages from the server itself (server to client only).
        System = 3 => "system",
    }
}

wire_enum! {
    /// What a player is doing, as friends see it.
    pub enum PresenceStatus: u8 {
        /// Not connected (or invisible).
        Offline = 0 => "offline",
        /// Connected and idle.
        Online = 1 => "online",
        /// Connected but inactive.
        Away = 2 => "away",
        /// Waiting in a matchmaking queue.
        InQueue = 3 => "in_queue",
        /// Playing in a room.
        InGame = 4 => "in_game",
        /// Watching a room.
        Spectating = 5 => "spectating",
    }
}

wire_enum! {
    /// What a notification is about.
    pub enum NotificationKind: u8 {
        /// An announcement from the operators.
        System = 0 => "system",
        /// Someone asked to be friends.
        FriendRequest = 1 => "friend_request",
        /// Someone invited the player to a room; `data` holds the room.
        RoomInvite = 2 => "room_invite",
        /// A queued match is ready.
        MatchReady = 3 => "match_ready",
        /// A rating or leaderboard change.
        RatingChanged = 4 => "rating_changed",
    }
}

wire_enum! {
    /// A tetromino. Board cells use the same numbers (0 empty, 8 garbage).
    pub enum PieceKind: u8 {
        I = 1 => "I",
        O = 2 => "O",
        T = 3 => "T",
        S = 4 => "S",
        Z = 5 => "Z",
        J = 6 => "J",
        L = 7 => "L",
    }
}

wire_enum! {
    /// SRS rotation state.
    pub enum Rotation: u8 {
        /// Spawn state.
        Spawn = 0 => "0",
        /// One clockwise turn from spawn.
        Right = 1 => "R",
        /// Two turns from spawn.
        Reverse = 2 => "2",
        /// One counter-clockwise turn from spawn.
        Left = 3 => "L",
    }
}

wire_enum! {
    /// T-spin recognition of a lock.
    pub enum TSpin: u8 {
        None = 0 => "none",
        Mini = 1 => "mini",
        Full = 2 => "full",
    }
}

wire_enum! {
    /// A key moment found by the moment detector.
    pub enum MomentKind: u8 {
        Tetris = 1 => "tetris",
        TSpinSingle = 2 => "t_spin_single",
        TSpinDouble = 3 => "t_spin_double",
        TSpinTriple = 4 => "t_spin_triple",
        BackToBack = 5 => "back_to_back",
        GarbageSurge = 6 => "garbage_surge",
        NearDeathSurvival = 7 => "near_death_survival",
        Elimination = 8 => "elimination",
        Comeback = 9 => "comeback",
        PerfectClear = 10 => "perfect_clear",
    }
}

wire_struct! {
    /// Limits the server enforces on this session.
    pub struct Limits {
        /// Largest frame body the server accepts, in bytes.
        max_frame_len: u32,
        /// Largest datagram payload the server accepts, in bytes.
        max_datagram_len: u16,
        /// Longest chat text, in bytes.
        max_chat_len: u16,
        /// Most Input messages per second before rate limiting.
        max_inputs_per_second: u16,
    }
}

wire_struct! {
    /// A player in a room.
    pub struct Member {
        player_id: u64,
        /// Seat in the room, 0 to capacity - 1; game state refers to players by slot.
        slot: u8,
        nickname: Text<MAX_NAME_LEN>,
        ready: bool,
        /// False while the player is disconnected but within the reconnect grace period.
        connected: bool,
    }
}

wire_struct! {
    /// A public room, as the room list shows it.
    pub struct RoomSummary {
        room_id: u64,
        /// Short code to join by.
        code: Text<MAX_ROOM_CODE_LEN>,
        name: Text<MAX_ROOM_NAME_LEN>,
        game: GameKind,
        phase: RoomPhase,
        members: u8,
        capacity: u8,
        spectators: u16,
    }
}

wire_struct! {
    /// One player's place in the arena.
    pub struct ArenaPlayer {
        slot: u8,
        /// Position in thousandths of a world unit, 0 to 1 000 000.
        x: u32,
        /// Position in thousandths of a world unit, 0 to 1 000 000.
        y: u32,
        /// Sequence number of the latest input the server has applied.
        last_input_seq: u32,
    }
}

wire_struct! {
    /// A falling piece: its kind, rotation and pivot position (y grows upward).
    pub struct TetrisPiece {
        kind: PieceKind,
        rotation: Rotation,
        x: i8,
        y: i8,
    }
}

wire_struct! {
    /// One player's complete Tetris state.
    pub struct TetrisBoard {
        slot: u8,
        alive: bool,
        /// 10x40 cells, 4 bits each, 200 bytes: row 0 (bottom) first; within a
        /// byte the low nibble is the even column. 0 empty, 1-7 PieceKind, 8 garbage.
        cells: Blob<TETRIS_BOARD_BYTES>,
        piece: Option<TetrisPiece>,
        hold: Option<PieceKind>,
        /// True once hold was used for the current piece.
        hold_used: bool,
        next: ArrayVec<PieceKind, TETRIS_NEXT_QUEUE_LEN>,
        /// Garbage lines queued against this player, not yet inserted.
        pending_garbage: u16,
        score: u32,
        lines: u32,
        level: u8,
        /// Consecutive line-clearing locks (REN); 0 when no combo is running.
        combo: u8,
        /// Back-to-back chain length; 0 when none.
        back_to_back: u8,
        pieces: u32,
        last_input_seq: u32,
    }
}

wire_struct! {
    /// A player's falling piece after this tick.
    pub struct TetrisPieceUpdate {
        slot: u8,
        /// Absent between a lock and the next spawn, or after elimination.
        piece: Option<TetrisPiece>,
        last_input_seq: u32,
    }
}

wire_struct! {
    /// One player's outcome of a match.
    pub struct PlayerResult {
        player_id: u64,
        slot: u8,
        /// 1 for the winner.
        placement: u8,
        score: u32,
        lines: u32,
        garbage_sent: u32,
        garbage_received: u32,
        pieces: u32,
        /// Ticks from the start until elimination or the end.
        survived_ticks: u32,
    }
}

messages! {
    // ---- Session ----

    /// Opens a session; the first message a client sends. The server answers
    /// with Welcome, or Error then Bye.
    0x01 client Hello {
        /// Oldest protocol version the client speaks.
        min_version: u16,
        /// Newest protocol version the client speaks.
        max_version: u16,
        /// Capability bits the client supports (CAP_* constants).
        capabilities: u32,
        /// Client software and version, for logs ("ludus-web/0.1").
        client_name: Text<MAX_CLIENT_NAME_LEN>,
        /// JWT access token; absent for a guest.
        access_token: Option<Text<MAX_TOKEN_LEN>>,
        /// Resume token of an earlier session, to return to its room.
        resume_token: Option<Text<MAX_TOKEN_LEN>>,
        /// Nickname wanted by a guest; ignored with an access token.
        nickname: Option<Text<MAX_NAME_LEN>>,
    }

    /// Accepts a session.
    0x02 server Welcome {
        /// The protocol version in use: the highest both sides speak.
        version: u16,
        /// Capability bits in use: those both sides support.
        capabilities: u32,
        session_id: u64,
        player_id: u64,
        nickname: Text<MAX_NAME_LEN>,
        /// True when the Hello's resume token brought back an earlier session.
        resumed: bool,
        /// Token to resume this session after a disconnect.
        resume_token: Text<MAX_TOKEN_LEN>,
        /// Server clock, microseconds since the Unix epoch.
        server_time_us: u64,
        /// The client should send Ping at least this often.
        heartbeat_ms: u32,
        /// The server closes a session silent for this long.
        idle_timeout_ms: u32,
        limits: Limits,
    }

    /// Asks for a Pong; either side may send it.
    0x03 both Ping {
        /// Chosen by the sender, echoed in the Pong.
        id: u32,
        /// Sender's clock when sent, microseconds.
        sent_us: u64,
    }

    /// Answers a Ping. RTT = now - ping_sent_us - (sent_us - received_us);
    /// clock offset = ((received_us - ping_sent_us) + (sent_us - now)) / 2.
    0x04 both Pong {
        id: u32,
        /// The Ping's sent_us, echoed.
        ping_sent_us: u64,
        /// Responder's clock when the Ping arrived, microseconds.
        received_us: u64,
        /// Responder's clock when the Pong was sent, microseconds.
        sent_us: u64,
    }

    /// Ends the session; the sender closes the transport after it.
    0x05 both Bye {
        /// An ErrorCode; 0 for a normal close.
        code: u16,
        reason: Text<MAX_REASON_LEN>,
    }

    /// Reports a failed request or a protocol violation. A fatal error is
    /// followed by Bye.
    0x06 server Error {
        /// An ErrorCode.
        code: u16,
        /// Type code of the message that caused it; 0 if none.
        in_reply_to: u16,
        text: Text<MAX_REASON_LEN>,
    }

    // ---- Lobby ----

    /// Enters the matchmaking queue.
    0x10 client QueueJoin {
        game: GameKind,
        /// Players per room wanted, 2 to 8.
        room_size: u8,
        ranked: bool,
    }

    /// Leaves the matchmaking queue.
    0x11 client QueueLeave {}

    /// The player's queue state, sent on change and every few seconds while searching.
    0x12 server QueueStatus {
        state: QueueState,
        game: GameKind,
        players_waiting: u32,
        waited_ms: u32,
        estimated_wait_ms: u32,
    }

    /// A match is ready: join it with RoomJoin and the reservation token,
    /// on this connection when `address` is empty, else at that server.
    0x13 server MatchFound {
        room_id: u64,
        game: GameKind,
        /// URL of the server hosting the room; empty for this server.
        address: Text<MAX_ADDRESS_LEN>,
        reservation_token: Text<MAX_TOKEN_LEN>,
        expires_in_ms: u32,
    }

    /// Asks for the public rooms, optionally of one game.
    0x14 client RoomListRequest {
        game: Option<GameKind>,
    }

    /// Public rooms, most recently active first, at most 64.
    0x15 server RoomList {
        rooms: List<RoomSummary, MAX_ROOM_LIST>,
    }

    /// Creates a room and joins it; answered with RoomJoined.
    0x16 client RoomCreate {
        game: GameKind,
        /// 1 to 8 players.
        capacity: u8,
        /// Private rooms are not listed and are joined by code.
        private: bool,
        name: Text<MAX_ROOM_NAME_LEN>,
    }

    /// Joins a room by its code; answered with RoomJoined.
    0x17 client RoomJoinByCode {
        code: Text<MAX_ROOM_CODE_LEN>,
    }

    /// Joins any waiting public room of the game, or creates one.
    0x18 client QuickJoin {
        game: GameKind,
    }

    // ---- Room ----

    /// Joins a room by id (from RoomList or MatchFound); answered with RoomJoined.
    0x20 client RoomJoin {
        room_id: u64,
        /// Required for rooms made by matchmaking.
        reservation_token: Option<Text<MAX_TOKEN_LEN>>,
    }

    /// Leaves the current room.
    0x21 client RoomLeave {}

    /// Marks the player ready or not; the game starts when all members are ready.
    0x22 client RoomReady {
        ready: bool,
    }

    /// The player is in the room; the full room as it is now.
    0x23 server RoomJoined {
        room_id: u64,
        code: Text<MAX_ROOM_CODE_LEN>,
        name: Text<MAX_ROOM_NAME_LEN>,
        game: GameKind,
        phase: RoomPhase,
        capacity: u8,
        /// Simulation ticks per second.
        tick_hz: u16,
        your_slot: u8,
        members: ArrayVec<Member, MAX_ROOM_PLAYERS>,
    }

    /// Someone joined the room.
    0x24 server MemberJoined {
        member: Member,
    }

    /// Someone left the room (or the receiver itself, when it is removed).
    0x25 server MemberLeft {
        player_id: u64,
        slot: u8,
        reason: LeaveReason,
    }

    /// A member's ready flag changed.
    0x26 server MemberReady {
        player_id: u64,
        ready: bool,
    }

    /// The game starts in `remaining_ms`.
    0x27 server Countdown {
        room_id: u64,
        remaining_ms: u32,
    }

    /// The game started; the seed makes every client's prediction match the server.
    0x28 server GameStart {
        room_id: u64,
        game: GameKind,
        seed: u64,
        tick_hz: u16,
        /// Tick number of the first simulated tick.
        start_tick: u32,
        /// Player ids by slot.
        players: ArrayVec<u64, MAX_ROOM_PLAYERS>,
    }

    /// The game ended.
    0x29 server GameResults {
        room_id: u64,
        game: GameKind,
        duration_ticks: u32,
        /// By placement, winner first.
        results: ArrayVec<PlayerResult, MAX_ROOM_PLAYERS>,
    }

    // ---- Game ----

    /// Player input, with the last few inputs repeated against datagram loss.
    /// `inputs[i]` has sequence number `seq - i`. Input bits per game: arena
    /// bit 0 left, 1 right, 2 down, 3 up; Tetris bit 0 move left, 1 move
    /// right, 2 soft drop held, 3 hard drop, 4 rotate clockwise, 5 rotate
    /// counter-clockwise, 6 rotate 180, 7 hold.
    0x30 client Input {
        /// Sequence number of inputs[0], the newest; starts at 1, +1 per new input.
        seq: u32,
        /// The server tick the client was showing when it sampled inputs[0].
        client_frame: u32,
        /// Newest first, 1 to 8 entries.
        inputs: ArrayVec<u16, MAX_INPUT_REDUNDANCY>,
    }

    /// The arena room's state after a tick, sent to every member every tick.
    0x31 server ArenaState {
        tick: u32,
        players: ArrayVec<ArenaPlayer, MAX_ROOM_PLAYERS>,
    }

    /// Complete Tetris state of every player; on join, on request and periodically.
    0x32 server TetrisSnapshot {
        tick: u32,
        /// The simulation's state hash at this tick.
        state_hash: u64,
        boards: List<TetrisBoard, MAX_ROOM_PLAYERS>,
    }

    /// Falling pieces that moved since `base_tick`; board changes come as events.
    0x33 server TetrisDelta {
        tick: u32,
        base_tick: u32,
        pieces: ArrayVec<TetrisPieceUpdate, MAX_ROOM_PLAYERS>,
    }

    /// A new piece entered at the top.
    0x34 server PieceSpawned {
        tick: u32,
        slot: u8,
        piece: TetrisPiece,
        next: ArrayVec<PieceKind, TETRIS_NEXT_QUEUE_LEN>,
    }

    /// A piece locked into the board.
    0x35 server PieceLocked {
        tick: u32,
        slot: u8,
        piece: TetrisPiece,
        t_spin: TSpin,
    }

    /// Rows were cleared by the last lock.
    0x36 server LinesCleared {
        tick: u32,
        slot: u8,
        /// Cleared rows, bottom first (y, 0 = bottom).
        rows: ArrayVec<u8, MAX_CLEARED_ROWS>,
        t_spin: TSpin,
        combo: u8,
        back_to_back: bool,
        perfect_clear: bool,
        /// Score after the clear.
        score: u32,
    }

    /// Garbage was sent after cancelling against the sender's own queue.
    0x37 server GarbageSent {
        tick: u32,
        from_slot: u8,
        to_slot: u8,
        /// Lines that reach the target's queue.
        lines: u8,
        /// Lines that cancelled the sender's own pending garbage.
        cancelled: u8,
    }

    /// Garbage rose into a board.
    0x38 server GarbageReceived {
        tick: u32,
        slot: u8,
        from_slot: u8,
        lines: u8,
        /// The column left open in the inserted rows.
        hole_column: u8,
    }

    /// A player topped out.
    0x39 server PlayerEliminated {
        tick: u32,
        slot: u8,
        placement: u8,
        /// The player whose garbage did it, if any.
        by_slot: Option<u8>,
    }

    /// A key moment the detector found.
    0x3a server KeyMoment {
        tick: u32,
        slot: u8,
        kind: MomentKind,
        /// Moment-specific size (lines, garbage rows, combo length).
        value: u32,
    }

    // ---- Spectating ----

    /// Starts watching a room.
    0x40 client SpectateStart {
        room_id: u64,
    }

    /// Stops watching.
    0x41 client SpectateStop {}

    /// Watching a room: its members; state messages follow, delayed.
    0x42 server SpectateJoined {
        room_id: u64,
        game: GameKind,
        tick_hz: u16,
        /// Spectators see the game this many ticks late.
        delay_ticks: u32,
        members: ArrayVec<Member, MAX_ROOM_PLAYERS>,
    }

    /// How many are watching the room.
    0x43 server SpectatorCount {
        room_id: u64,
        count: u32,
    }

    // ---- Chat ----

    /// Sends a chat message.
    0x50 client ChatSend {
        channel: ChatChannel,
        /// The addressee on the private channel; 0 otherwise.
        to_player: u64,
        /// Chosen by the client, echoed in the resulting ChatMessage.
        client_message_id: u32,
        text: Text<MAX_CHAT_LEN>,
    }

    /// A chat message, delivered to everyone on its channel (the sender too).
    0x51 server ChatMessage {
        channel: ChatChannel,
        message_id: u64,
        from_player: u64,
        from_name: Text<MAX_NAME_LEN>,
        /// The addressee on the private channel; 0 otherwise.
        to_player: u64,
        /// The sender's client_message_id; 0 for others' messages.
        client_message_id: u32,
        /// Server clock, milliseconds since the Unix epoch.
        sent_at_ms: u64,
        text: Text<MAX_CHAT_LEN>,
    }

    // ---- Presence and notifications ----

    /// Sets the player's own presence.
    0x60 client PresenceSet {
        status: PresenceStatus,
        activity: Text<MAX_ACTIVITY_LEN>,
    }

    /// A friend's presence changed.
    0x61 server PresenceUpdate {
        player_id: u64,
        status: PresenceStatus,
        activity: Text<MAX_ACTIVITY_LEN>,
        room_id: Option<u64>,
    }

    /// Something for the player's attention.
    0x62 server Notification {
        notification_id: u64,
        kind: NotificationKind,
        title: Text<MAX_NOTIFICATION_TITLE_LEN>,
        body: Text<MAX_NOTIFICATION_BODY_LEN>,
        /// Kind-specific JSON.
        data: Text<MAX_NOTIFICATION_DATA_LEN>,
    }

    // ---- WebRTC signaling relay ----
    // `peer` is the addressee when a client sends, the sender when the server delivers.

    /// An SDP offer, relayed unchanged.
    0x70 both RtcOffer {
        peer: u64,
        call_id: u32,
        sdp: Text<MAX_SDP_LEN>,
    }

    /// An SDP answer, relayed unchanged.
    0x71 both RtcAnswer {
        peer: u64,
        call_id: u32,
        sdp: Text<MAX_SDP_LEN>,
    }

    /// A trickled ICE candidate, relayed unchanged.
    0x72 both RtcIceCandidate {
        peer: u64,
        call_id: u32,
        candidate: Text<MAX_ICE_CANDIDATE_LEN>,
        sdp_mid: Text<MAX_SDP_MID_LEN>,
        sdp_mline_index: u16,
    }

    /// Ends a call.
    0x73 both RtcHangup {
        peer: u64,
        call_id: u32,
    }

    // ---- Match history and replays ----
    // The answers carry the JSON bodies of the REST routes as text (the
    // shapes of docs/openapi.yaml); a failed request is answered Error,
    // its text starting with "request <request_id>: ".

    /// Asks for a page of a player's matches, newest first; answered with
    /// HistoryPage (the body of GET /api/players/{id}/matches).
    0x80 client HistoryRequest {
        /// Chosen by the client, echoed in the answer.
        request_id: u32,
        /// The player; 0 for the session's own account.
        player_id: u64,
        /// The next_cursor of the page before; 0 for the newest matches.
        cursor: u64,
        /// Matches wanted, 1 to MAX_HISTORY_PAGE (the page may hold fewer).
        limit: u8,
        /// Only matches of this mode ("versus", "solo"); empty for any.
        mode: Text<MAX_NAME_LEN>,
        /// Only matches of this game ("tetris"); empty for any.
        game: Text<MAX_NAME_LEN>,
    }

    /// A page of a player's matches.
    0x81 server HistoryPage {
        request_id: u32,
        /// `{"matches": [...], "next_cursor"}` as GET /api/players/{id}/matches answers.
        matches_json: Text<MAX_HISTORY_JSON_LEN>,
        /// The cursor of the next page; 0 when this is the last.
        next_cursor: u64,
    }

    /// Asks for one match with every seat; answered with MatchDetail.
    0x82 client MatchRequest {
        /// Chosen by the client, echoed in the answer.
        request_id: u32,
        match_id: u64,
    }

    /// One match.
    0x83 server MatchDetail {
        request_id: u32,
        /// The match as GET /api/matches/{id} answers.
        match_json: Text<MAX_HISTORY_JSON_LEN>,
    }

    /// Asks for a chunk of a match's replay: its events after the stream
    /// sequence `after`; answered with ReplayChunk.
    0x84 client ReplayRequest {
        /// Chosen by the client, echoed in the answer.
        request_id: u32,
        match_id: u64,
        /// The next_after of the chunk before; 0 for the first chunk.
        after: u64,
    }

    /// A chunk of a match's replay, as many events as fit.
    0x85 server ReplayChunk {
        request_id: u32,
        /// `{"match", "events", "moments", "next_after"}` as
        /// GET /api/matches/{id}/replay answers.
        page_json: Text<MAX_HISTORY_JSON_LEN>,
        /// The `after` of the next chunk; 0 when this is the last.
        next_after: u64,
    }
}

/// Definitions of every struct used inside messages, for the shared schema.
pub fn struct_definitions() -> Vec<Value> {
    vec![
        struct_definition::<Limits>(),
        struct_definition::<Member>(),
        struct_definition::<RoomSummary>(),
        struct_definition::<ArenaPlayer>(),
        struct_definition::<TetrisPiece>(),
        struct_definition::<TetrisBoard>(),
        struct_definition::<TetrisPieceUpdate>(),
        struct_definition::<PlayerResult>(),
    ]
}

/// Definitions of every enum used inside messages, for the shared schema.
pub fn enum_definitions() -> Vec<Value> {
    vec![
        GameKind::definition(),
        RoomPhase::definition(),
        QueueState::definition(),
        LeaveReason::definition(),
        ChatChannel::definition(),
        PresenceStatus::definition(),
        NotificationKind::definition(),
        PieceKind::definition(),
        Rotation::definition(),
        TSpin::definition(),
        MomentKind::definition(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_knows_the_direction_the_catalog_gives_it() {
        for info in CATALOG {
            let message = Message::minimal(info.code).expect("catalog code");
            assert_eq!(message.direction(), info.direction, "{}", info.name);
        }
    }
}
