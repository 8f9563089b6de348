//! The API's rooms and quick-match routes, as the shard's game host serves
//! them: no database, so no job. What the routes ask ([`LobbyCall`]) and
//! what the host answers ([`LobbyAnswer`]), and the JSON for each.
//!
//! A seat over REST is a reservation: the room holds it for the account for
//! [`RESERVATION_TTL_MS`]; the client then says Hello with its access token
//! (over WebTransport or WebSocket) and RoomJoin with the room id and the
//! reservation token. Rooms live on any shard, so a join or leave may be
//! answered by another shard's host (through the mailboxes).

use crate::proto::http::WebResponse;
use crate::proto::session::Now;
use crate::proto::wire::{GameKind, RoomPhase};
use crate::services::matchmaking::QueueStatus;

/// How long a reserved seat waits for its player's RoomJoin.
pub const RESERVATION_TTL_MS: u64 = 30_000;

/// The account asking (from its access token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub player_id: u64,
    pub nickname: String,
}

/// A room to create (POST /api/rooms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSettings {
    pub game: GameKind,
    pub capacity: u8,
    pub private: bool,
    pub name: String,
}

/// What a rooms or queue route asks the game host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LobbyCall {
    CreateRoom(RoomSettings),
    JoinRoom(u64),
    LeaveRoom(u64),
    QueueJoin(GameKind),
    QueueLeave,
    QueueStatus,
}

/// The host's answer, possibly from another shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LobbyAnswer {
    /// A seat held for the account (create: `created`).
    Seat {
        room: RoomView,
        token: u64,
        expires_in_ms: u64,
        created: bool,
    },
    /// Out of the room (seat, reservation or spectating).
    Left {
        room_id: u64,
    },
    Queue(QueueView),
    Refused(LobbyRefusal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LobbyRefusal {
    RoomNotFound,
    RoomFull,
    RoomInProgress,
    AlreadyInRoom,
    NotInRoom,
    /// Capacity out of range and the like.
    InvalidSettings(&'static str),
    /// Too many rooms, queued players or answers in flight.
    Busy,
    /// The shard that should answer did not in time.
    Unavailable,
}

/// The quick-match status with times relative to the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueView {
    Idle,
    Queued { game: GameKind, waited_ms: u64, position: u32 },
    Matched { game: GameKind, room_id: u64, token: u64, expires_in_ms: u64 },
}

impl QueueView {
    /// `status` as seen at `now_ms` (the matchmaker's clock).
    pub fn of(status: QueueStatus, now_ms: u64) -> QueueView {
        match status {
            QueueStatus::Idle => QueueView::Idle,
            QueueStatus::Queued { game, waited_ms, position } => {
                QueueView::Queued { game, waited_ms, position }
            }
            QueueStatus::Matched(seat) => QueueView::Matched {
                game: seat.game,
                room_id: seat.room_id,
                token: seat.token,
                expires_in_ms: seat.expires_at_ms.saturating_sub(now_ms),
            },
        }
    }
}

/// Where a later answer goes (the request's reply, decorated).
pub type LobbyReply = Box<dyn FnOnce(LobbyAnswer) + Send>;

/// What the shard's game host offers the API: its copy of the room
/// directory, and the calls that change rooms or the queue.
pub trait Lobby {
    /// Public rooms, most recent first, at most `limit`; of one game when
    /// `game` is given.
    fn rooms(&self, game: Option<GameKind>, limit: usize) -> Vec<RoomView>;
    /// One room; private rooms are not shown (they are joined by code).
    fn room(&self, room_id: u64) -> Option<RoomView>;
    /// Runs `call` for `account`: `Some` is the answer now; `None` means
    /// another shard answers, through `reply`, exactly once.
    fn call(
        &mut self,
        account: &Account,
        call: LobbyCall,
        reply: LobbyReply,
        now: Now,
    ) -> Option<LobbyAnswer>;
}

/// A room as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomView {
    pub room_id: u64,
    pub code: String,
    pub name: String,
    pub game: GameKind,
    pub phase: RoomPhase,
    pub members: u8,
    pub capacity: u8,
    pub spectators: u16,
}

impl RoomView {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.room_id.to_string(),
            "code": self.code,
            "name": self.name,
            "game": self.game.name(),
            "phase": self.phase.name(),
            "members": self.members,
            "capacity": self.capacity,
            "spectators": self.spectators,
        })
    }
}

/// Reservation tokens travel as 16 hex digits (RoomJoin's text field).
pub fn token_hex(token: u64) -> String {
    format!("{token:016x}")
}

impl LobbyAnswer {
    pub fn to_response(&self) -> WebResponse {
        match self {
            LobbyAnswer::Seat { room, token, expires_in_ms, created } => WebResponse::json(
                if *created { 201 } else { 200 },
                &serde_json::json!({
                    "room": room.to_json(),
                    "reservation_token": token_hex(*token),
                    "expires_in_ms": expires_in_ms,
                }),
            ),
            LobbyAnswer::Left { room_id } => WebResponse::json(
                200,
                &serde_json::json!({ "room_id": room_id.to_string(), "left": true }),
            ),
            LobbyAnswer::Queue(view) => WebResponse::json(200, &queue_json(view)),
            LobbyAnswer::Refused(refusal) => refusal.to_response(),
        }
    }
}

fn queue_json(view: &QueueView) -> serde_json::Value {
    match view {
        QueueView::Idle => serde_json::json!({ "state": "idle" }),
        QueueView::Queued { game, waited_ms, position } => serde_json::json!({
            "state": "queued",
            "game": game.name(),
            "waited_ms": waited_ms,
            "position": position,
        }),
        QueueView::Matched { game, room_id, token, expires_in_ms } => serde_json::json!({
            "state": "matched",
            "game": game.name(),
            "room_id": room_id.to_string(),
            "reservation_token": token_hex(*token),
            "expires_in_ms": expires_in_ms,
        }),
    }
}

impl LobbyRefusal {
    pub fn to_response(self) -> WebResponse {
        let (status, code, message) = match self {
            LobbyRefusal::RoomNotFound => (404, "room_not_found", "no such room"),
            LobbyRefusal::RoomFull => (409, "room_full", "every seat is taken or held"),
            LobbyRefusal::RoomInProgress => {
                (409, "room_in_progress", "the game is running: spectate instead")
            }
            LobbyRefusal::AlreadyInRoom => (409, "already_in_room", "already seated in the room"),
            LobbyRefusal::NotInRoom => {
                (404, "not_in_room", "neither seated, holding a seat nor watching there")
            }
            LobbyRefusal::InvalidSettings(message) => (400, "invalid_room_settings", message),
            LobbyRefusal::Busy => (503, "busy", "too much at once: retry shortly"),
            LobbyRefusal::Unavailable => (503, "unavailable", "the room's shard did not answer"),
        };
        let response = WebResponse::error(status, code, message);
        if status == 503 {
            response.with_header("retry-after", "1".to_owned())
        } else {
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_become_the_documented_json() {
        let room = RoomView {
            room_id: 1 << 48 | 7,
            code: "BXYZ2".into(),
            name: "duel".into(),
            game: GameKind::Tetris,
            phase: RoomPhase::Waiting,
            members: 0,
            capacity: 2,
            spectators: 0,
        };
        let seat = LobbyAnswer::Seat { room, token: 0xab, expires_in_ms: 30_000, created: true };
        let response = seat.to_response();
        assert_eq!(response.status, 201);
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["reservation_token"], "00000000000000ab");
        assert_eq!(body["room"]["id"], "281474976710663");
        let matched =
            QueueView::Matched { game: GameKind::Arena, room_id: 5, token: 1, expires_in_ms: 10 };
        let body: serde_json::Value =
            serde_json::from_slice(&LobbyAnswer::Queue(matched).to_response().body).unwrap();
        assert_eq!(body["state"], "matched");
        assert_eq!(body["game"], "arena");
        let busy = LobbyAnswer::Refused(LobbyRefusal::Busy).to_response();
        assert_eq!(busy.status, 503);
        assert!(busy.headers.iter().any(|(name, _)| *name == "retry-after"));
    }
}
