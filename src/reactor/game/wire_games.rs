//! How each game's state and events become protocol messages.

use arrayvec::ArrayVec;
use bytes::{Bytes, BytesMut};

use super::hosted::WireGame;
use crate::proto::wire::{self, encode_frame, ArenaPlayer, GameKind, PlayerResult};
use crate::sim::arena::{Arena, ArenaConfig};
use crate::sim::event::{Event, EventKind, Lock, Piece, Placement, Rotation, Spin, NEXT_QUEUE_LEN};
use crate::sim::moments::{detect_moments, Moment, MomentData, MomentKind, MomentState};
use crate::sim::room::Room;
use crate::sim::tetris::{Mode, TetrisBattle, TetrisConfig, TetrisPlayer};
use crate::sim::{Game, MAX_PLAYERS};

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
    const REVEAL_SEED: bool = true;
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

/// A full snapshot goes out this often during a Tetris game (and on every
/// start, join and reconnect): it bounds how long a client that lost a
/// delta or missed an event shows a wrong board.
pub const TETRIS_SNAPSHOT_EVERY_TICKS: u32 = 120;

/// What the room last told about each falling piece, and the moment state.
#[derive(Debug, Default)]
pub struct TetrisView {
    pieces: [Option<(Option<Placement>, u32)>; MAX_PLAYERS],
    moments: Option<MomentState>,
}

fn wire_piece(placement: Placement) -> wire::TetrisPiece {
    wire::TetrisPiece {
        kind: wire_piece_kind(placement.piece),
        rotation: match placement.rotation {
            Rotation::Spawn => wire::Rotation::Spawn,
            Rotation::Right => wire::Rotation::Right,
            Rotation::Reverse => wire::Rotation::Reverse,
            Rotation::Left => wire::Rotation::Left,
        },
        x: placement.x,
        y: placement.y,
    }
}

fn wire_piece_kind(piece: Piece) -> wire::PieceKind {
    match piece {
        Piece::I => wire::PieceKind::I,
        Piece::O => wire::PieceKind::O,
        Piece::T => wire::PieceKind::T,
        Piece::S => wire::PieceKind::S,
        Piece::Z => wire::PieceKind::Z,
        Piece::J => wire::PieceKind::J,
        Piece::L => wire::PieceKind::L,
    }
}

fn wire_spin(spin: Spin) -> wire::TSpin {
    match spin {
        Spin::None => wire::TSpin::None,
        Spin::Mini => wire::TSpin::Mini,
        Spin::Full => wire::TSpin::Full,
    }
}

fn wire_next(
    next: [Piece; NEXT_QUEUE_LEN],
) -> ArrayVec<wire::PieceKind, { wire::TETRIS_NEXT_QUEUE_LEN }> {
    next.into_iter().map(wire_piece_kind).collect()
}

fn clamp_u8(value: impl TryInto<u8>) -> u8 {
    value.try_into().unwrap_or(u8::MAX)
}

fn tetris_board(slot: u8, player: &TetrisPlayer) -> wire::TetrisBoard {
    let cells = Bytes::copy_from_slice(&player.packed_board());
    wire::TetrisBoard {
        slot,
        alive: player.alive(),
        cells: wire::Blob::new(cells).unwrap_or_default(),
        piece: player.active().map(wire_piece),
        hold: player.hold().map(wire_piece_kind),
        hold_used: player.hold_used(),
        next: wire_next(player.next_queue()),
        pending_garbage: player.pending_garbage().min(u32::from(u16::MAX)) as u16,
        score: player.score(),
        lines: player.lines(),
        level: player.level(),
        combo: clamp_u8(player.ren().max(0)),
        back_to_back: clamp_u8(player.b2b_chain()),
        pieces: player.pieces_placed(),
        last_input_seq: player.last_input_seq(),
    }
}

fn tetris_snapshot(game: &TetrisBattle) -> wire::TetrisSnapshot {
    let boards = (0..game.players())
        .filter_map(|slot| game.player(slot).map(|player| tetris_board(slot, player)))
        .collect();
    wire::TetrisSnapshot {
        tick: game.current_tick(),
        state_hash: game.state_hash(),
        boards: wire::List::new(boards).unwrap_or_default(),
    }
}

/// One game event as the message players see, if it has one.
fn tetris_event_frame(event: &Event, out: &mut BytesMut) {
    let (tick, slot) = (event.tick, event.player.unwrap_or(0));
    match &event.kind {
        EventKind::PieceSpawn { placement, next, .. } => {
            let spawned = wire::PieceSpawned {
                tick,
                slot,
                piece: wire_piece(*placement),
                next: wire_next(*next),
            };
            encode_frame(&spawned, out);
        }
        EventKind::PieceLock(lock) => {
            let locked = wire::PieceLocked {
                tick,
                slot,
                piece: wire_piece(lock.placement),
                t_spin: wire_spin(lock.spin),
            };
            encode_frame(&locked, out);
        }
        // Both need the lock before them: see `tick_frames`.
        EventKind::LineClear { .. } | EventKind::GarbageSent { .. } => {}
        EventKind::GarbageReceived { from, lines, hole_column } => {
            let received = wire::GarbageReceived {
                tick,
                slot,
                from_slot: *from,
                lines: clamp_u8(*lines),
                hole_column: *hole_column,
            };
            encode_frame(&received, out);
        }
        EventKind::Elimination { killer, placement, .. } => {
            let eliminated =
                wire::PlayerEliminated { tick, slot, placement: *placement, by_slot: *killer };
            encode_frame(&eliminated, out);
        }
        EventKind::GameStart { .. } | EventKind::Input { .. } | EventKind::GameEnd { .. } => {}
    }
}

/// LinesCleared needs the lock (spin, combo, score) and the rows.
fn lines_cleared(lock: &Lock, tick: u32, slot: u8, rows: &[u8]) -> wire::LinesCleared {
    wire::LinesCleared {
        tick,
        slot,
        rows: rows.iter().copied().collect(),
        t_spin: wire_spin(lock.spin),
        combo: clamp_u8(lock.ren.max(0)),
        back_to_back: lock.b2b_bonus,
        perfect_clear: lock.perfect_clear,
        score: lock.score,
    }
}

fn moment_frame(moment: &Moment, out: &mut BytesMut) {
    let kind = match moment.kind {
        MomentKind::Tetris => wire::MomentKind::Tetris,
        MomentKind::TSpinSingle => wire::MomentKind::TSpinSingle,
        MomentKind::TSpinDouble => wire::MomentKind::TSpinDouble,
        MomentKind::TSpinTriple => wire::MomentKind::TSpinTriple,
        MomentKind::BackToBack => wire::MomentKind::BackToBack,
        MomentKind::GarbageSurge => wire::MomentKind::GarbageSurge,
        MomentKind::NearDeathSurvival => wire::MomentKind::NearDeathSurvival,
        MomentKind::Elimination => wire::MomentKind::Elimination,
        MomentKind::Comeback => wire::MomentKind::Comeback,
        MomentKind::PerfectClear => wire::MomentKind::PerfectClear,
    };
    let value = match moment.data {
        MomentData::None => 0,
        MomentData::PerfectClear { lines } => u32::from(lines),
        MomentData::BackToBack { chain } => u32::from(chain),
        MomentData::GarbageSurge { streak_sent, .. } => streak_sent,
        MomentData::NearDeathSurvival { peak_height, .. } => u32::from(peak_height),
        MomentData::Elimination { placement, .. } => u32::from(placement),
        MomentData::Comeback { worst_danger, .. } => worst_danger,
    };
    let message = wire::KeyMoment { tick: moment.tick, slot: moment.player, kind, value };
    encode_frame(&message, out);
}

impl WireGame for TetrisBattle {
    const KIND: GameKind = GameKind::Tetris;
    // The seed would tell every future piece: the server keeps it.
    const REVEAL_SEED: bool = false;
    type View = TetrisView;

    fn config_for(capacity: u8) -> TetrisConfig {
        // One seat: the solo 40-line sprint; more: versus.
        let mode = if capacity == 1 { Mode::Sprint } else { Mode::Versus };
        TetrisConfig { mode, ..TetrisConfig::default() }
    }

    fn snapshot(game: &TetrisBattle, out: &mut BytesMut) {
        encode_frame(&tetris_snapshot(game), out);
    }

    fn tick_frames(
        game: &TetrisBattle,
        view: &mut TetrisView,
        events: &[Event],
        reliable: &mut BytesMut,
        unreliable: &mut BytesMut,
    ) {
        let moments = view.moments.get_or_insert_with(|| MomentState::new(game.players()));
        let mut last_lock: Option<&Lock> = None;
        for event in events {
            tetris_event_frame(event, reliable);
            match &event.kind {
                EventKind::PieceLock(lock) => last_lock = Some(lock),
                EventKind::LineClear { rows } => {
                    if let Some(lock) = last_lock {
                        let slot = event.player.unwrap_or(0);
                        encode_frame(&lines_cleared(lock, event.tick, slot, rows), reliable);
                    }
                }
                EventKind::GarbageSent { target, lines } => {
                    let sent = wire::GarbageSent {
                        tick: event.tick,
                        from_slot: event.player.unwrap_or(0),
                        to_slot: *target,
                        lines: clamp_u8(*lines),
                        cancelled: last_lock.map_or(0, |lock| clamp_u8(lock.cancelled)),
                    };
                    encode_frame(&sent, reliable);
                }
                _ => {}
            }
            detect_moments(moments, event, &mut |moment| moment_frame(&moment, reliable));
        }
        if game.current_tick().is_multiple_of(TETRIS_SNAPSHOT_EVERY_TICKS) {
            encode_frame(&tetris_snapshot(game), reliable);
        }
        // Falling pieces that moved (or whose inputs were acknowledged).
        let mut pieces = ArrayVec::new();
        for slot in 0..game.players() {
            let Some(player) = game.player(slot) else { continue };
            let now = (player.active(), player.last_input_seq());
            let last = &mut view.pieces[usize::from(slot)];
            if *last != Some(now) {
                *last = Some(now);
                pieces.push(wire::TetrisPieceUpdate {
                    slot,
                    piece: now.0.map(wire_piece),
                    last_input_seq: now.1,
                });
            }
        }
        if !pieces.is_empty() {
            let tick = game.current_tick();
            let delta = wire::TetrisDelta { tick, base_tick: tick.saturating_sub(1), pieces };
            encode_frame(&delta, unreliable);
        }
    }

    fn results(room: &Room<TetrisBattle>, room_id: u64) -> wire::GameResults {
        game_results(room, room_id, GameKind::Tetris)
    }
}
