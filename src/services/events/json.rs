//! Game events as the stream stores them: JSON `{tick, type, player_id,
//! data}` (the history design's shape). Player ids are decimal strings
//! (account ids exceed 2^53); other players are named by game slot, and
//! game_start and game_end carry the slot-to-player table.

use serde_json::{json, Value};

use super::tap::TapRecord;
use crate::sim::event::{EliminationCause, EventKind, Piece, Placement, Rotation, Spin};

fn piece(piece: Piece) -> String {
    piece.letter().to_string()
}

fn rotation(rotation: Rotation) -> &'static str {
    match rotation {
        Rotation::Spawn => "spawn",
        Rotation::Right => "right",
        Rotation::Reverse => "reverse",
        Rotation::Left => "left",
    }
}

fn placement(placement: &Placement) -> Value {
    json!({
        "piece": piece(placement.piece),
        "rotation": rotation(placement.rotation),
        "x": placement.x,
        "y": placement.y,
    })
}

fn cause(cause: EliminationCause) -> &'static str {
    match cause {
        EliminationCause::BlockOut => "block_out",
        EliminationCause::LockOut => "lock_out",
        EliminationCause::TopOut => "top_out",
        EliminationCause::Forfeit => "forfeit",
    }
}

fn players(record: &TapRecord) -> Value {
    let ids = record.players.as_deref().unwrap_or_default();
    Value::Array(ids.iter().map(|id| Value::String(id.to_string())).collect())
}

/// The event's `data` object.
fn data(record: &TapRecord) -> Value {
    match &record.event.kind {
        EventKind::GameStart { players: count, seed } => json!({
            "game": record.game.name(),
            "players": count,
            "player_ids": players(record),
            "seed": seed.to_string(),
        }),
        EventKind::PieceSpawn { placement: at, next, hold } => json!({
            "placement": placement(at),
            "next": next.iter().map(|p| piece(*p)).collect::<Vec<_>>(),
            "hold": hold.map(piece),
        }),
        EventKind::PieceLock(lock) => json!({
            "placement": placement(&lock.placement),
            "spin": match lock.spin { Spin::None => "none", Spin::Mini => "mini", Spin::Full => "full" },
            "lines": lock.lines,
            "ren": lock.ren,
            "b2b_bonus": lock.b2b_bonus,
            "b2b_chain": lock.b2b_chain,
            "perfect_clear": lock.perfect_clear,
            "attack": lock.attack,
            "cancelled": lock.cancelled,
            "sent": lock.sent,
            "target_slot": lock.target,
            "stack_height": lock.stack_height,
            "pending": lock.pending,
            "score": lock.score,
            "board": hex::encode(lock.board),
        }),
        EventKind::LineClear { rows } => json!({ "rows": rows.as_slice() }),
        EventKind::GarbageSent { target, lines } => {
            json!({ "target_slot": target, "lines": lines })
        }
        EventKind::GarbageReceived { from, lines, hole_column } => json!({
            "from_slot": from,
            "lines": lines,
            "hole_column": hole_column,
        }),
        EventKind::Input { seq, bits } => json!({ "seq": seq, "bits": bits }),
        EventKind::Elimination { cause: why, killer, placement } => json!({
            "cause": cause(*why),
            "killer_slot": killer,
            "placement": placement,
        }),
        EventKind::GameEnd { results } => {
            let ids = record.players.as_deref().unwrap_or_default();
            let results: Vec<Value> = results
                .iter()
                .map(|result| {
                    json!({
                        "slot": result.slot,
                        "player_id": ids.get(usize::from(result.slot)).map(u64::to_string),
                        "placement": result.placement,
                        "score": result.score,
                        "lines": result.lines,
                        "garbage_sent": result.garbage_sent,
                        "garbage_received": result.garbage_received,
                        "pieces": result.pieces,
                        "survived_ticks": result.survived_ticks,
                    })
                })
                .collect();
            json!({ "game": record.game.name(), "player_ids": players(record), "results": results })
        }
    }
}

/// What the event writer adds to game_end's `data` (the simulation does
/// not know wall-clock time): the match's start and end in Unix ms and its
/// seed, so game_end alone describes the match for the projector.
pub const GAME_END_MATCH_FIELDS: [&str; 3] = ["started_at_ms", "ended_at_ms", "seed"];

/// The stored form of one event.
pub fn event_json(record: &TapRecord) -> Value {
    json!({
        "tick": record.event.tick,
        "type": record.event.kind.name(),
        "player_id": record.player_id.map(|id| id.to_string()),
        "data": data(record),
    })
}

/// The stored form of one event as bytes: what `serde_json::to_vec` of
/// [`event_json`] gives, written directly for an input (the event every
/// match makes 30-60 times a second per player, so most of the writer's
/// work) and through the JSON tree for the rest.
pub fn encode_event(record: &TapRecord, out: &mut Vec<u8>) -> serde_json::Result<()> {
    use std::io::Write as _;
    let EventKind::Input { seq, bits } = record.event.kind else {
        return serde_json::to_writer(out, &event_json(record));
    };
    let tick = record.event.tick;
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{{\"tick\":{tick},\"type\":\"input\",\"player_id\":");
    let _ = match record.player_id {
        Some(id) => write!(out, "\"{id}\""),
        None => write!(out, "null"),
    };
    let _ = write!(out, ",\"data\":{{\"seq\":{seq},\"bits\":{bits}}}}}");
    Ok(())
}

/// The subject a room's game events go to.
pub fn events_subject(room_id: u64) -> String {
    format!("game.{room_id}.events")
}

/// The message id that makes a retried publish a duplicate.
pub fn message_id(record: &TapRecord) -> String {
    format!("{}-{}", record.room_id, record.seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::wire::GameKind;
    use crate::sim::event::{Event, PlayerResult};

    #[test]
    fn events_have_the_documented_shape() {
        let mut results = arrayvec::ArrayVec::new();
        results.push(PlayerResult {
            slot: 1,
            placement: 1,
            score: 900,
            lines: 12,
            ..Default::default()
        });
        results.push(PlayerResult {
            slot: 0,
            placement: 2,
            score: 300,
            lines: 4,
            ..Default::default()
        });
        let record = TapRecord {
            room_id: 1 << 48 | 3,
            game: GameKind::Tetris,
            seq: 812,
            player_id: None,
            time_ms: 1_700_000_000_000,
            players: Some(vec![4_611_686_018_427_388_000, 77].into_boxed_slice()),
            event: Event { tick: 3_600, player: None, kind: EventKind::GameEnd { results } },
        };
        let value = event_json(&record);
        assert_eq!(value["tick"], 3_600);
        assert_eq!(value["type"], "game_end");
        assert_eq!(value["player_id"], Value::Null);
        assert_eq!(value["data"]["results"][0]["player_id"], "77");
        assert_eq!(value["data"]["results"][1]["player_id"], "4611686018427388000");
        assert_eq!(value["data"]["player_ids"][0], "4611686018427388000");
        assert_eq!(events_subject(record.room_id), "game.281474976710659.events");
        assert_eq!(message_id(&record), "281474976710659-812");

        let input = TapRecord {
            player_id: Some(77),
            players: None,
            event: Event { tick: 5, player: Some(1), kind: EventKind::Input { seq: 9, bits: 3 } },
            ..record
        };
        let value = event_json(&input);
        assert_eq!(
            (value["player_id"].clone(), value["data"].clone()),
            (json!("77"), json!({"seq": 9, "bits": 3}))
        );
    }

    #[test]
    fn encoded_events_are_the_json_trees_bytes() {
        use crate::services::events::parse::testing::{bot_match, record};
        let players = [u64::MAX, 0, 1 << 60, 22];
        let mut events = bot_match(0x5eed, 4, 5_000);
        for (seq, bits) in [(0, 0), (u32::MAX, u16::MAX), (7, 0x1ff)] {
            events.push(Event {
                tick: u32::MAX,
                player: Some(3),
                kind: EventKind::Input { seq, bits },
            });
        }
        let mut inputs = 0;
        for (seq, event) in (1..).zip(events) {
            inputs += usize::from(matches!(event.kind, EventKind::Input { .. }));
            let mut record = record(event, &players, seq);
            for player_id in [record.player_id, None, Some(u64::MAX)] {
                record.player_id = player_id;
                let mut bytes = Vec::new();
                encode_event(&record, &mut bytes).unwrap();
                assert_eq!(
                    String::from_utf8(bytes).unwrap(),
                    serde_json::to_string(&event_json(&record)).unwrap()
                );
            }
        }
        assert!(inputs > 100, "the fast path was exercised: {inputs} inputs");
    }
}
