//! What a shard's game host hands back to its shard: frames for sessions
//! (on this shard or another) and messages for other shards' hosts.

use std::collections::VecDeque;

use arrayvec::ArrayVec;
use bytes::{Bytes, BytesMut};

use crate::proto::wire::{encode_frame, WireMessage, MAX_INPUT_REDUNDANCY};
use crate::reactor::host::SessionRef;
use crate::services::api::{Account, LobbyAnswer, LobbyCall, RoomView};
use crate::sim::MAX_PLAYERS;

/// Outputs a host queues between two drains by its shard; beyond this the
/// oldest are dropped and counted (a shard drains after every step, so
/// only a runaway broadcast gets near it).
pub const MAX_PENDING_OUTPUTS: usize = 1 << 18;

/// Encoded frames for one session. `player_id` is who the sender believes
/// is behind `to`: a connection slot reused by someone else since gets
/// nothing.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub to: SessionRef,
    pub player_id: u64,
    pub frames: Bytes,
    /// False: may ride a datagram (state updates); true: the stream.
    pub reliable: bool,
}

/// A command for the room `room_id`, executed by the shard that owns it.
#[derive(Debug, Clone)]
pub enum RoomCommand {
    Join {
        player_id: u64,
        nickname: String,
        session: SessionRef,
        reservation: Option<u64>,
    },
    /// Out of the room: seat, held seat or spectating. With a ticket (a
    /// REST leave) the owner answers whether there was anything to leave.
    Leave {
        player_id: u64,
        ticket: Option<Ticket>,
    },
    /// Hold a seat for `player_id` for `ttl_ms` (REST join); the owner
    /// answers the ticket with the seat or the refusal.
    Reserve {
        player_id: u64,
        token: u64,
        ttl_ms: u64,
        ticket: Ticket,
    },
    Ready {
        player_id: u64,
        ready: bool,
    },
    Input {
        player_id: u64,
        seq: u32,
        inputs: ArrayVec<u16, MAX_INPUT_REDUNDANCY>,
    },
    /// The player's session closed (the room keeps the seat for a while).
    /// Ignored when the seat has moved to a newer session meanwhile.
    Disconnected {
        player_id: u64,
        session: SessionRef,
    },
    Spectate {
        player_id: u64,
        session: SessionRef,
    },
    StopSpectating {
        player_id: u64,
    },
}

/// Where a lobby call's answer goes: the shard that holds the request, and
/// the request's number there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub shard: u16,
    pub id: u64,
}

/// A public room as every shard's directory knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub room_id: u64,
    pub code: String,
    pub name: String,
    pub game: crate::proto::wire::GameKind,
    pub phase: crate::proto::wire::RoomPhase,
    pub members: u8,
    pub capacity: u8,
    pub spectators: u16,
    pub private: bool,
}

impl Listing {
    /// The room as the REST API shows it.
    pub fn view(&self) -> RoomView {
        RoomView {
            room_id: self.room_id,
            code: self.code.clone(),
            name: self.name.clone(),
            game: self.game,
            phase: self.phase,
            members: self.members,
            capacity: self.capacity,
            spectators: self.spectators,
        }
    }
}

/// What one shard's host tells another's.
#[derive(Debug, Clone)]
pub enum HostMessage {
    Room {
        room_id: u64,
        command: RoomCommand,
    },
    /// A room appeared or changed.
    Listed(Listing),
    /// A room closed.
    Unlisted {
        room_id: u64,
    },
    /// The room `room_id` no longer counts `player_id` in (join refused,
    /// left, removed): the session's shard forgets the membership.
    Released {
        player_id: u64,
        room_id: u64,
    },
    /// The answer to a lobby call this shard made (its ticket id).
    LobbyAnswer {
        ticket: u64,
        answer: LobbyAnswer,
    },
    /// A quick-match call, for shard 0 (the matchmaker's host).
    Queue {
        account: Account,
        call: LobbyCall,
        ticket: Ticket,
    },
    /// Create room `room_id` (an id the matchmaker chose from this shard's
    /// match range) with a seat held for each player.
    CreateMatchRoom {
        room_id: u64,
        game: crate::proto::wire::GameKind,
        seats: ArrayVec<(u64, u64), MAX_PLAYERS>,
        ttl_ms: u64,
    },
    /// A storage worker's answer to a session's history read (HistoryPage,
    /// MatchDetail, ReplayChunk or Error, encoded), for the session's own
    /// shard; dropped when the session has gone.
    HistoryAnswer {
        session: SessionRef,
        player_id: u64,
        request_id: u32,
        frames: Bytes,
    },
}

#[derive(Debug)]
pub enum HostOutput {
    Deliver(Delivery),
    Send {
        shard: u16,
        message: HostMessage,
    },
    /// To every other shard.
    Broadcast(HostMessage),
}

/// The queue of outputs plus a reusable encoding buffer.
#[derive(Debug, Default)]
pub struct Outbox {
    outputs: VecDeque<HostOutput>,
    scratch: BytesMut,
    pub dropped: u64,
}

impl Outbox {
    pub fn push(&mut self, output: HostOutput) {
        if self.outputs.len() >= MAX_PENDING_OUTPUTS {
            self.outputs.pop_front();
            self.dropped += 1;
        }
        self.outputs.push_back(output);
    }

    pub fn pop(&mut self) -> Option<HostOutput> {
        self.outputs.pop_front()
    }

    pub fn len(&self) -> usize {
        self.outputs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }

    /// Encodes one message into shared frames.
    pub fn encode<M: WireMessage>(&mut self, message: &M) -> Bytes {
        encode_frame(message, &mut self.scratch);
        self.scratch.split().freeze()
    }

    /// Encodes and queues one message for one session.
    pub fn send<M: WireMessage>(&mut self, to: SessionRef, player_id: u64, message: &M) {
        let frames = self.encode(message);
        self.push(HostOutput::Deliver(Delivery { to, player_id, frames, reliable: true }));
    }

    pub fn deliver(&mut self, to: SessionRef, player_id: u64, frames: Bytes, reliable: bool) {
        self.push(HostOutput::Deliver(Delivery { to, player_id, frames, reliable }));
    }
}
