//! How each game's state and events become protocol messages.

use bytes::BytesMut;

use super::hosted::WireGame;
use crate::proto::wire::{self, encode_frame, ArenaPlayer, GameKind, PlayerResult};
use crate::sim::arena::{Arena, ArenaConfig};
use crate::sim::event::Event;
use crate::sim::room::Room;
use crate::sim::Game;

/// An arena match lasts two minutes, then results and a rematch.
pub const ARENA_MATCH_TICKS: u32 = 120 * Arena::TICK_HZ as u32;

/// The arena's whole state: every player's position and last input.
fn arena_state(game: &Arena) -> wire::ArenaState {
    let players = game
        .avatars()
        .iter()
        .enumerate()
        .filter(|(_, avatar)| avatar.present)
        .map(|(slot, avatar)| ArenaPlayer {
            slot: slot as u8,
            x: avatar.x,
            y: avatar.y,
            last_input_seq: avatar.last_input_seq,
        })
        .collect();
    wire::ArenaState { tick: game.current_tick(), players }
}

impl WireGame for Arena {
    const KIND: GameKind = GameKind::Arena;
    type View = ();

    fn config_for(_capacity: u8) -> ArenaConfig {
        ArenaConfig { duration_ticks: ARENA_MATCH_TICKS }
    }

    fn snapshot(game: &Arena, out: &mut BytesMut) {
        encode_frame(&arena_state(game), out);
    }

    fn tick_frames(
        game: &Arena,
        _view: &mut (),
        _events: &[Event],
        _reliable: &mut BytesMut,
        unreliable: &mut BytesMut,
    ) {
        // Every tick supersedes the last: lose one, the next one fixes it.
        encode_frame(&arena_state(game), unreliable);
    }

    fn results(room: &Room<Arena>, room_id: u64) -> wire::GameResults {
        game_results(room, room_id, GameKind::Arena)
    }
}

/// The room's last results in wire form, by placement.
fn game_results<G: WireGame>(room: &Room<G>, room_id: u64, game: GameKind) -> wire::GameResults {
    let players = room.game_players();
    let mut results: Vec<PlayerResult> = room
        .results()
        .iter()
        .map(|result| PlayerResult {
            player_id: players.get(usize::from(result.slot)).copied().unwrap_or(0),
            slot: result.slot,
            placement: result.placement,
            score: result.score,
            lines: result.lines,
            garbage_sent: result.garbage_sent,
            garbage_received: result.garbage_received,
            pieces: result.pieces,
            survived_ticks: result.survived_ticks,
        })
        .collect();
    results.sort_by_key(|result| (result.placement, result.slot));
    let duration_ticks = room.game().map_or(0, |game| game.current_tick());
    wire::GameResults {
        room_id,
        game,
        duration_ticks,
        results: results.into_iter().take(wire::MAX_ROOM_PLAYERS).collect(),
    }
}
