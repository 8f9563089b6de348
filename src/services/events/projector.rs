//! The Match Projector: a durable consumer of `game.*.events` that turns
//! each `game_end` into a `matches` row and its `match_players` rows, in
//! one transaction ([`Store::record_match`]), before the event is
//! acknowledged.
//!
//! Idempotent on (room_id, started_at_ms), the table's unique key: a
//! redelivered game_end (a crash between commit and ack, JetStream's ack
//! wait) finds its match stored and creates nothing. game_end is
//! self-contained (the writer adds the match's start time and seed), so
//! the projector keeps no state between events and a restart loses
//! nothing.

use serde_json::Value;

use super::consumers::{HandleError, Handler};
use super::log::StoredEvent;
use super::parse::event_head;
use crate::services::store::{
    new_match_id, Conflict, MatchPlayer, MatchRecord, Outcome, Store, StoreError, ACCOUNT_ID_MIN,
    MATCH_ENDED_AT_MS_MAX,
};

/// The mode of a match played in a room (solo results are "solo").
pub const VERSUS: &str = "versus";
/// Nickname stored for a seat whose player holds no account.
pub const GUEST_NICKNAME: &str = "guest";

pub struct MatchProjector {
    store: Box<dyn Store>,
}

impl MatchProjector {
    pub fn new(store: Box<dyn Store>) -> MatchProjector {
        MatchProjector { store }
    }
}

/// The room id of a `game.{room}.events` subject.
pub fn subject_room(subject: &str) -> Option<u64> {
    let mut tokens = subject.split('.');
    match (tokens.next(), tokens.next(), tokens.next(), tokens.next()) {
        (Some("game"), Some(room), Some(_), None) => room.parse().ok(),
        _ => None,
    }
}

fn skip(reason: impl Into<String>) -> HandleError {
    HandleError::Skip(reason.into())
}

fn field<'a>(data: &'a Value, name: &str) -> Result<&'a Value, HandleError> {
    data.get(name)
        .filter(|value| !value.is_null())
        .ok_or_else(|| skip(format!("game_end without {name}")))
}

fn int(value: &Value, name: &str) -> Result<i64, HandleError> {
    value
        .get(name)
        .and_then(Value::as_i64)
        .ok_or_else(|| skip(format!("game_end result without an integer {name}")))
}

/// A decimal-string id (ids exceed 2^53, so JSON carries them as text).
fn id(value: &Value) -> Option<u64> {
    value.as_str().and_then(|text| text.parse().ok())
}

/// The match a game_end describes, seats without nicknames yet.
pub fn match_record(room_id: u64, event: &Value) -> Result<MatchRecord, HandleError> {
    let data = field(event, "data")?;
    let game = field(data, "game")?.as_str().ok_or_else(|| skip("game is not text"))?;
    let started_at_ms = field(data, "started_at_ms")?
        .as_i64()
        .ok_or_else(|| skip("started_at_ms is not an integer (the match's start was not seen)"))?;
    let ended_at_ms = field(data, "ended_at_ms")?
        .as_i64()
        .filter(|at| (started_at_ms..=MATCH_ENDED_AT_MS_MAX).contains(at) && *at >= 1)
        .ok_or_else(|| skip("ended_at_ms is not a time after the start"))?;
    let seed = id(field(data, "seed")?).ok_or_else(|| skip("seed is not a decimal u64"))?;
    let results =
        field(data, "results")?.as_array().ok_or_else(|| skip("results is not a list"))?;
    if results.is_empty() || results.len() > crate::sim::MAX_PLAYERS {
        return Err(skip(format!("{} results", results.len())));
    }
    let winners = results.iter().filter(|result| result["placement"] == 1).count();
    let mut players = Vec::with_capacity(results.len());
    for result in results {
        let seat = int(result, "slot")?;
        let placement = int(result, "placement")?;
        let score = int(result, "score")?;
        let player = result.get("player_id").and_then(id);
        let outcome = match (placement, winners) {
            (1, 1) if results.len() > 1 => Outcome::Win,
            (1, _) => Outcome::Draw,
            _ => Outcome::Loss,
        };
        let stats = serde_json::json!({
            "lines": result.get("lines"),
            "garbage_sent": result.get("garbage_sent"),
            "garbage_received": result.get("garbage_received"),
            "pieces": result.get("pieces"),
            "survived_ticks": result.get("survived_ticks"),
            "player_id": player.map(|id| id.to_string()),
        });
        players.push(MatchPlayer {
            seat: i32::try_from(seat).map_err(|_| skip("slot out of range"))?,
            user_id: player
                .and_then(|id| i64::try_from(id).ok())
                .filter(|id| *id >= ACCOUNT_ID_MIN),
            nickname: GUEST_NICKNAME.to_owned(),
            placement: i32::try_from(placement).map_err(|_| skip("placement out of range"))?,
            outcome,
            score,
            stats_json: stats.to_string(),
        });
    }
    Ok(MatchRecord {
        id: 0,
        room_id: i64::try_from(room_id).map_err(|_| skip("room id out of range"))?,
        game: game.to_owned(),
        mode: VERSUS.to_owned(),
        tournament_id: None,
        seed: seed as i64, // the column keeps the seed's 64 bits
        started_at_ms,
        ended_at_ms,
        players,
    })
}

fn store_error(error: StoreError) -> HandleError {
    match error {
        StoreError::Unavailable(reason) => HandleError::Retry(reason),
        other => HandleError::Skip(other.to_string()),
    }
}

impl Handler for MatchProjector {
    fn handle(&mut self, event: &StoredEvent) -> Result<(), HandleError> {
        // Every input of every match passes here: only a game_end is parsed
        // whole (the head alone is read without building a JSON tree).
        if event_head(&event.payload).is_some_and(|head| head.kind != "game_end") {
            return Ok(());
        }
        let value: Value = serde_json::from_slice(&event.payload)
            .map_err(|error| skip(format!("not JSON: {error}")))?;
        if value.get("type").and_then(Value::as_str) != Some("game_end") {
            return Ok(());
        }
        let room = subject_room(&event.subject).ok_or_else(|| skip("not a game subject"))?;
        let mut record = match_record(room, &value)?;
        for player in &mut record.players {
            let Some(user_id) = player.user_id else { continue };
            match self.store.user_by_id(user_id).map_err(store_error)? {
                Some(user) => player.nickname = user.nickname,
                // Deleted since, or never an account: keep the seat anonymous.
                None => player.user_id = None,
            }
        }
        // A conflict is either this match stored already (a redelivery) or
        // a new id that collided (2^-20): a second try with a fresh id
        // tells them apart.
        for attempt in 0..2 {
            record.id = new_match_id(record.ended_at_ms);
            match self.store.record_match(&record) {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict(Conflict::Match)) if attempt == 0 => continue,
                Err(StoreError::Conflict(Conflict::Match)) => return Ok(()),
                Err(error) => return Err(store_error(error)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::store::sqlite::SqliteStore;
    use crate::services::store::{NewUser, Role};

    fn game_end(started: i64, ended: i64, player_ids: [&str; 2]) -> Value {
        serde_json::json!({
            "tick": 900, "type": "game_end", "player_id": null,
            "data": {
                "game": "tetris", "player_ids": player_ids,
                "started_at_ms": started, "ended_at_ms": ended, "seed": "18446744073709551615",
                "results": [
                    {"slot": 1, "player_id": player_ids[1], "placement": 1, "score": 900,
                     "lines": 12, "garbage_sent": 8, "garbage_received": 2, "pieces": 40,
                     "survived_ticks": 900},
                    {"slot": 0, "player_id": player_ids[0], "placement": 2, "score": 300,
                     "lines": 4, "garbage_sent": 2, "garbage_received": 8, "pieces": 30,
                     "survived_ticks": 880},
                ],
            },
        })
    }

    fn stored(seq: u64, room: u64, value: &Value) -> StoredEvent {
        StoredEvent {
            seq,
            time_ms: 0,
            subject: format!("game.{room}.events"),
            msg_id: format!("{room}-{seq}"),
            payload: serde_json::to_vec(value).unwrap(),
        }
    }

    #[test]
    fn a_game_end_becomes_one_match_even_when_redelivered() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
        store.migrate(1).unwrap();
        let account = ACCOUNT_ID_MIN + 5;
        store
            .create_user(&NewUser {
                id: account,
                username: Some("ada".into()),
                nickname: "Ada".into(),
                password_hash: None,
                role: Role::Player,
                now_ms: 1,
            })
            .unwrap();
        let mut projector = MatchProjector::new(Box::new(store));
        let end = game_end(1_700_000_000_000, 1_700_000_015_000, ["77", &account.to_string()]);
        let event = stored(12, 1 << 48 | 3, &end);
        projector.handle(&event).unwrap();
        projector.handle(&event).unwrap(); // redelivered: nothing new
        let other_room = stored(13, 1 << 48 | 4, &end);
        projector.handle(&other_room).unwrap();

        let mut store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
        let matches = store
            .player_matches(account, &crate::services::store::HistoryQuery::newest(10))
            .unwrap();
        assert_eq!(matches.len(), 2, "one per room, the redelivery added none");
        let record = &matches[1];
        assert_eq!((record.mode.as_str(), record.game.as_str()), ("versus", "tetris"));
        assert_eq!(record.seed, -1, "the seed's 64 bits");
        assert_eq!(record.started_at_ms, 1_700_000_000_000);
        let seats: Vec<(i32, Option<i64>, &str, Outcome, i64)> = record
            .players
            .iter()
            .map(|p| (p.seat, p.user_id, p.nickname.as_str(), p.outcome, p.score))
            .collect();
        assert_eq!(
            seats,
            [
                (0, None, GUEST_NICKNAME, Outcome::Loss, 300),
                (1, Some(account), "Ada", Outcome::Win, 900)
            ]
        );
        let stats: Value = serde_json::from_str(&record.players[1].stats_json).unwrap();
        assert_eq!((stats["lines"].as_i64(), stats["pieces"].as_i64()), (Some(12), Some(40)));
    }

    #[test]
    fn other_events_pass_and_broken_game_ends_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
        store.migrate(1).unwrap();
        let mut projector = MatchProjector::new(Box::new(store));
        let lock =
            serde_json::json!({"tick": 3, "type": "piece_lock", "player_id": "1", "data": {}});
        projector.handle(&stored(1, 9, &lock)).unwrap();
        let mut unstarted = game_end(5, 10, ["1", "2"]);
        unstarted["data"]["started_at_ms"] = Value::Null;
        let cases = [
            unstarted,
            game_end(10, 5, ["1", "2"]),
            serde_json::json!({"type": "game_end", "data": {"game": "tetris"}}),
            serde_json::json!({"type": "game_end"}),
        ];
        for case in cases {
            let outcome = projector.handle(&stored(2, 9, &case));
            assert!(matches!(outcome, Err(HandleError::Skip(_))), "{case}: {outcome:?}");
        }
        let not_json = StoredEvent { payload: b"{".to_vec(), ..stored(3, 9, &lock) };
        assert!(matches!(projector.handle(&not_json), Err(HandleError::Skip(_))));
        assert_eq!(subject_room("game.42.events"), Some(42));
        assert_eq!(subject_room("game.x.events"), None);
        assert_eq!(subject_room("game.42"), None);
    }
}
