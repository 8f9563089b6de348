//! The determinism audit behind `ludus replay ROOM`: a room's stored events
//! are split into matches at each game_start; each Tetris match is
//! re-simulated from its game_start (seed, players) and its logged inputs
//! and forfeits, applied at the ticks they are stamped with (the stamping
//! contract of `sim::tetris::replay`), and every event the simulation
//! produces again, turned into the stored JSON, must equal the stored
//! event at the same position. One differing field anywhere is reported
//! with both versions.
//!
//! Arena matches are not audited yet (their configuration is not in the
//! log); they are reported as skipped.

use serde_json::Value;

use super::json::{event_json, GAME_END_MATCH_FIELDS};
use super::tap::TapRecord;
use crate::proto::wire::GameKind;
use crate::sim::event::{Event, EventKind};
use crate::sim::tetris::{Mode, TetrisBattle, TetrisConfig};
use crate::sim::{Game, Slot};

/// What an audited match came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchAudit {
    pub players: Vec<u64>,
    /// Stored events compared equal to the replayed ones.
    pub events: usize,
    pub ticks: u32,
    /// The replayed game's state hash after the last tick.
    pub state_hash: u64,
    /// False when the log stops before the game's end (the server stopped
    /// mid-match, or the match is running).
    pub finished: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuditError {
    #[error("the match's first event is not a game_start")]
    NoGameStart,
    #[error("game {0} is not audited yet")]
    Unsupported(String),
    #[error("stored event {index} is malformed: {reason}")]
    Malformed { index: usize, reason: &'static str },
    #[error("event {index} differs: stored {stored}, replayed {replayed}")]
    Mismatch { index: usize, stored: Box<Value>, replayed: Box<Value> },
}

/// The room's events split into matches (each from its game_start on);
/// events before the first game_start are dropped.
pub fn split_matches(events: Vec<Value>) -> Vec<Vec<Value>> {
    let mut matches: Vec<Vec<Value>> = Vec::new();
    for event in events {
        if event["type"] == "game_start" {
            matches.push(Vec::new());
        }
        if let Some(current) = matches.last_mut() {
            current.push(event);
        }
    }
    matches
}

fn malformed(index: usize, reason: &'static str) -> AuditError {
    AuditError::Malformed { index, reason }
}

fn decimal(value: &Value) -> Option<u64> {
    value.as_str()?.parse().ok()
}

/// Compares the replayed events in `produced` with the stored ones from
/// `*next` on; false when the store ends first.
struct Comparer<'a> {
    stored: &'a [Value],
    next: usize,
    players: &'a [u64],
    room_id: u64,
}

impl Comparer<'_> {
    fn compare(&mut self, produced: &mut Vec<Event>) -> Result<bool, AuditError> {
        for event in produced.drain(..) {
            let Some(stored) = self.stored.get(self.next) else { return Ok(false) };
            let table =
                matches!(event.kind, EventKind::GameStart { .. } | EventKind::GameEnd { .. })
                    .then(|| self.players.to_vec().into_boxed_slice());
            let record = TapRecord {
                room_id: self.room_id,
                game: GameKind::Tetris,
                seq: 0,
                player_id: event
                    .player
                    .and_then(|slot| self.players.get(usize::from(slot)).copied()),
                time_ms: 0,
                players: table,
                event,
            };
            let mut replayed = event_json(&record);
            if let (Some(added), Some(Value::Object(data))) = (
                stored.get("data"),
                replayed.get_mut("data").filter(|_| stored["type"] == "game_end"),
            ) {
                // The writer's additions: not the simulation's to reproduce.
                for field in GAME_END_MATCH_FIELDS {
                    if let Some(value) = added.get(field) {
                        data.insert(field.to_owned(), value.clone());
                    }
                }
            }
            if *stored != replayed {
                let index = self.next;
                return Err(AuditError::Mismatch {
                    index,
                    stored: Box::new(stored.clone()),
                    replayed: Box::new(replayed),
                });
            }
            self.next += 1;
        }
        Ok(true)
    }
}

/// Re-simulates one match (its events from game_start on) and compares.
pub fn audit_match(room_id: u64, stored: &[Value]) -> Result<MatchAudit, AuditError> {
    let start =
        stored.first().filter(|e| e["type"] == "game_start").ok_or(AuditError::NoGameStart)?;
    let data = &start["data"];
    let game = data["game"].as_str().ok_or(malformed(0, "no game"))?;
    if game != "tetris" {
        return Err(AuditError::Unsupported(game.to_owned()));
    }
    let players = data["players"].as_u64().and_then(|n| u8::try_from(n).ok());
    let players = players.filter(|n| (1..=8).contains(n)).ok_or(malformed(0, "player count"))?;
    let seed = decimal(&data["seed"]).ok_or(malformed(0, "seed"))?;
    let ids: Vec<u64> = data["player_ids"]
        .as_array()
        .ok_or(malformed(0, "player_ids"))?
        .iter()
        .map(decimal)
        .collect::<Option<_>>()
        .ok_or(malformed(0, "player_ids"))?;
    // The room's rule (one seat: the sprint) holds for the players too: a
    // room starts with one player only when it has one seat.
    let mode = if players == 1 { Mode::Sprint } else { Mode::Versus };
    let config = TetrisConfig { mode, ..TetrisConfig::default() };
    let slot_of = |index: usize, event: &Value| -> Result<Slot, AuditError> {
        let id = decimal(&event["player_id"]).ok_or(malformed(index, "player_id"))?;
        let slot = ids.iter().position(|p| *p == id).ok_or(malformed(index, "unseated player"))?;
        Ok(slot as Slot)
    };

    let mut produced = Vec::with_capacity(64);
    let mut battle = TetrisBattle::new(&config, seed, players, &mut produced);
    let mut comparer = Comparer { stored, next: 0, players: &ids, room_id };
    let mut complete = comparer.compare(&mut produced)?;
    while complete && !battle.is_finished() {
        // The inputs and forfeits stamped with the current tick, in order.
        while let Some(event) = stored.get(comparer.next) {
            let index = comparer.next;
            let at_now = event["tick"].as_u64() == Some(u64::from(battle.current_tick()));
            let is_input = event["type"] == "input";
            let is_forfeit = event["type"] == "elimination" && event["data"]["cause"] == "forfeit";
            if !at_now || !(is_input || is_forfeit) {
                break;
            }
            let slot = slot_of(index, event)?;
            if is_input {
                let seq = event["data"]["seq"].as_u64().and_then(|s| u32::try_from(s).ok());
                let bits = event["data"]["bits"].as_u64().and_then(|b| u16::try_from(b).ok());
                let (Some(seq), Some(bits)) = (seq, bits) else {
                    return Err(malformed(index, "input seq or bits"));
                };
                battle.input(slot, seq, bits, &mut produced);
            } else {
                battle.forfeit(slot, &mut produced);
            }
            if produced.is_empty() {
                // The replay refused what the server applied: a difference.
                let stored = Box::new(event.clone());
                return Err(AuditError::Mismatch {
                    index,
                    stored,
                    replayed: Box::new(Value::Null),
                });
            }
            complete = comparer.compare(&mut produced)?;
            if !complete {
                break;
            }
        }
        if !complete || comparer.next == stored.len() {
            break;
        }
        battle.tick(&mut produced);
        complete = comparer.compare(&mut produced)?;
    }
    if battle.is_finished() {
        if let Some(extra) = stored.get(comparer.next) {
            let (index, stored) = (comparer.next, Box::new(extra.clone()));
            return Err(AuditError::Mismatch { index, stored, replayed: Box::new(Value::Null) });
        }
    }
    Ok(MatchAudit {
        players: ids.clone(),
        events: comparer.next,
        ticks: battle.current_tick(),
        state_hash: battle.state_hash(),
        finished: battle.is_finished() && comparer.next == stored.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::tetris::{INPUT_HARD_DROP, INPUT_LEFT, INPUT_ROTATE_CW};

    const PLAYERS: [u64; 2] = [11, 22];

    /// A recorded duel: inputs every few ticks from both players until a
    /// forfeit ends it, stored as the writer stores it.
    fn recorded_duel() -> Vec<Value> {
        let mut events = Vec::new();
        let config = TetrisConfig { mode: Mode::Versus, ..TetrisConfig::default() };
        let mut battle = TetrisBattle::new(&config, 0xfeed, 2, &mut events);
        let moves = [INPUT_LEFT, INPUT_ROTATE_CW, INPUT_HARD_DROP];
        for tick in 0..300u32 {
            if tick % 7 == 0 {
                let slot = (tick / 7 % 2) as Slot;
                battle.input(slot, tick, moves[(tick / 7 % 3) as usize], &mut events);
            }
            if tick == 250 {
                battle.forfeit(1, &mut events);
            }
            battle.tick(&mut events);
            if battle.is_finished() {
                break;
            }
        }
        assert!(battle.is_finished());
        events
            .into_iter()
            .map(|event| {
                let table =
                    matches!(event.kind, EventKind::GameStart { .. } | EventKind::GameEnd { .. })
                        .then(|| PLAYERS.to_vec().into_boxed_slice());
                event_json(&TapRecord {
                    room_id: 5,
                    game: GameKind::Tetris,
                    seq: 0,
                    player_id: event.player.map(|slot| PLAYERS[usize::from(slot)]),
                    time_ms: 0,
                    players: table,
                    event,
                })
            })
            .collect()
    }

    #[test]
    fn a_faithful_record_replays_identically_to_the_end() {
        let stored = recorded_duel();
        let audit = audit_match(5, &stored).unwrap();
        assert!(audit.finished);
        assert_eq!((audit.events, audit.players), (stored.len(), PLAYERS.to_vec()));
        let split = split_matches([stored.clone(), stored.clone()].concat());
        assert_eq!(split.len(), 2);
        assert_eq!(split[1], stored);
    }

    #[test]
    fn a_changed_output_or_a_missing_input_is_found() {
        let stored = recorded_duel();
        let lock = stored.iter().position(|e| e["type"] == "piece_lock").unwrap();
        let mut changed = stored.clone();
        changed[lock]["data"]["score"] = Value::from(999_999);
        match audit_match(5, &changed) {
            Err(AuditError::Mismatch { index, .. }) => assert_eq!(index, lock),
            other => panic!("a changed score must be found: {other:?}"),
        }
        let input = stored.iter().position(|e| e["type"] == "input").unwrap();
        let mut missing = stored.clone();
        missing.remove(input);
        assert!(matches!(audit_match(5, &missing), Err(AuditError::Mismatch { .. })));
        let mut truncated = stored.clone();
        truncated.truncate(stored.len() / 2);
        let audit = audit_match(5, &truncated).unwrap();
        assert!(!audit.finished && audit.events == truncated.len());
        assert_eq!(audit_match(5, &stored[1..]), Err(AuditError::NoGameStart));
    }
}
