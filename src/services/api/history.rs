//! Match history over REST: a player's matches a page at a time, one
//! match with every seat, and the solo results a client reports.
//!
//! The parsers ([`history_query`], [`solo_result`]) run on the shard: pure
//! and bounded, they turn a query string or body into what the store
//! takes, or into the 400 to answer. The jobs ([`player_matches`],
//! [`one_match`], [`record_solo`]) run on storage workers and block on
//! the store.
//!
//! A solo result is stored as a match of mode [`SOLO_MODE`] with one seat
//! (seat 0, the caller, placement 1, outcome `win`: first of one, the same
//! shape as a versus winner's row); it changes no stats or ratings (see
//! `Store::record_match`). Its room id is its own match id: no room hosts
//! a solo result, and `(room_id, started_at_ms)` is unique, so a shared
//! room id such as 0 would make two players' results that start in the
//! same millisecond collide. Match ids are far above the shards' room ids
//! (see `new_match_id`), so they collide with no real room either.

use serde::Deserialize;
use serde_json::{json, Value};

use super::routes::GAME_NAME_LEN_MAX;
use crate::proto::http::WebResponse;
use crate::services::accounts::AccountError;
use crate::services::store::{
    new_match_id, Conflict, HistoryQuery, MatchPlayer, MatchRecord, Outcome, Store, StoreError,
    User, HISTORY_PAGE_MAX, MATCH_ENDED_AT_MS_MAX, SOLO_MODE,
};

/// Matches a history page holds when the query names no limit.
pub const HISTORY_PAGE_DEFAULT: u32 = 20;
/// The one game solo results are taken for.
pub const SOLO_GAME: &str = "tetris";
/// Upper bounds of a solo result's figures, far above any real run: the
/// simulation keeps the score in a u32; a day of play at ten pieces a
/// second is under a million pieces.
pub const SOLO_SCORE_MAX: u64 = u32::MAX as u64;
pub const SOLO_LINES_MAX: u64 = 1_000_000;
pub const SOLO_LEVEL_MAX: u64 = 10_000;
pub const SOLO_PIECES_MAX: u64 = 10_000_000;
pub const SOLO_DURATION_MS_MAX: u64 = 24 * 3_600_000;
/// Times a solo result is written again with a new id after an id
/// collision (2^-20 per pair of results ending in the same millisecond).
const MATCH_ID_ATTEMPTS_MAX: usize = 3;
/// Most decimal digits of an id, a cursor or a time in a query (i64).
const DIGITS_MAX: usize = 19;

/// A solo run as the client reports it, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoloResult {
    pub game: String,
    pub score: i64,
    pub lines: i64,
    pub level: i64,
    pub pieces: i64,
    pub duration_ms: i64,
    /// The run's seed (0 when the client did not send one).
    pub seed: u64,
}

/// The body of `POST /api/solo_results`. Numbers are `Number`s, not
/// integers: JSON Schema's integers include `5.0`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoloBody {
    game: String,
    score: serde_json::Number,
    lines: serde_json::Number,
    level: serde_json::Number,
    pieces: serde_json::Number,
    duration_ms: serde_json::Number,
    /// A decimal u64; absent or null means 0.
    #[serde(default)]
    seed: Option<String>,
}

fn bad_query(message: &str) -> WebResponse {
    WebResponse::error(400, "invalid_query", message)
}

fn invalid(message: &str) -> WebResponse {
    WebResponse::error(400, "invalid_request", message)
}

/// 1 to 19 ASCII digits (no sign, no spaces), as a u64.
fn decimal(value: &str) -> Option<u64> {
    let digits = !value.is_empty()
        && value.len() <= DIGITS_MAX
        && value.bytes().all(|byte| byte.is_ascii_digit());
    digits.then(|| value.parse().ok()).flatten()
}

/// A mode or game name: lower-case ASCII letters and `_`, as in paths.
fn name(value: &str) -> Option<String> {
    let valid = !value.is_empty()
        && value.len() <= GAME_NAME_LEN_MAX
        && value.bytes().all(|byte| byte.is_ascii_lowercase() || byte == b'_');
    valid.then(|| value.to_owned())
}

/// The history page a query string asks for: `limit` (1 to 100),
/// `cursor` (the `next_cursor` of the page before), `mode`, `game`, and
/// `from` / `to` (Unix ms, on the start time, `[from, to)`).
pub fn history_query(query: Option<&str>) -> Result<HistoryQuery, WebResponse> {
    let mut history = HistoryQuery::newest(HISTORY_PAGE_DEFAULT);
    for pair in query.unwrap_or_default().split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "limit" => {
                history.limit = decimal(value)
                    .filter(|limit| (1..=u64::from(HISTORY_PAGE_MAX)).contains(limit))
                    .ok_or_else(|| bad_query("limit is 1 to 100"))?
                    as u32;
            }
            // A cursor past every id (above i64::MAX) is no bound at all.
            "cursor" => {
                let cursor = decimal(value)
                    .ok_or_else(|| bad_query("cursor is the next_cursor of the page before"))?;
                history.before_id = i64::try_from(cursor).ok();
            }
            "mode" => {
                let mode = name(value).ok_or_else(|| bad_query("mode is [a-z_]{1,32}"))?;
                history.mode = Some(mode);
            }
            "game" => {
                let game = name(value).ok_or_else(|| bad_query("game is [a-z_]{1,32}"))?;
                history.game = Some(game);
            }
            "from" | "to" => {
                let time_ms = decimal(value)
                    .and_then(|time_ms| i64::try_from(time_ms).ok())
                    .ok_or_else(|| bad_query("from and to are Unix times in ms, 0 or more"))?;
                match key {
                    "from" => history.from_ms = Some(time_ms),
                    _ => history.to_ms = Some(time_ms),
                }
            }
            _ => {
                return Err(bad_query("the query takes limit, cursor, mode, game, from and to"));
            }
        }
    }
    Ok(history)
}

/// A JSON number that is a whole value from 0 to `max` (`5` or `5.0`).
fn whole(number: &serde_json::Number, max: u64) -> Option<i64> {
    let value = number.as_u64().or_else(|| {
        let value = number.as_f64()?;
        (value.fract() == 0.0 && (0.0..=max as f64).contains(&value)).then_some(value as u64)
    })?;
    (value <= max).then_some(value as i64)
}

/// Checks a solo result body (the bounds are the `SOLO_*_MAX` constants).
pub fn solo_result(body: SoloBody) -> Result<SoloResult, WebResponse> {
    if body.game != SOLO_GAME {
        return Err(invalid("game is tetris"));
    }
    let figure = |number: &serde_json::Number, what: &str, max: u64| {
        whole(number, max)
            .ok_or_else(|| invalid(&format!("{what} is a whole number from 0 to {max}")))
    };
    let seed = match body.seed.as_deref() {
        None => 0,
        Some(text) => decimal(text).ok_or_else(|| invalid("seed is 1 to 19 decimal digits"))?,
    };
    Ok(SoloResult {
        game: body.game.clone(),
        score: figure(&body.score, "score", SOLO_SCORE_MAX)?,
        lines: figure(&body.lines, "lines", SOLO_LINES_MAX)?,
        level: figure(&body.level, "level", SOLO_LEVEL_MAX)?,
        pieces: figure(&body.pieces, "pieces", SOLO_PIECES_MAX)?,
        duration_ms: figure(&body.duration_ms, "duration_ms", SOLO_DURATION_MS_MAX)?,
        seed,
    })
}

/// The match a solo result is stored as: it ended now and started
/// `duration_ms` ago; the figures but the score go in the seat's stats.
pub fn solo_record(id: i64, user: &User, result: &SoloResult, now_ms: i64) -> MatchRecord {
    let stats = json!({
        "lines": result.lines,
        "level": result.level,
        "pieces": result.pieces,
        "duration_ms": result.duration_ms,
    });
    MatchRecord {
        id,
        room_id: id,
        game: result.game.clone(),
        mode: SOLO_MODE.to_owned(),
        tournament_id: None,
        // The column holds the u64 seed's bits.
        seed: result.seed as i64,
        started_at_ms: now_ms - result.duration_ms,
        ended_at_ms: now_ms,
        players: vec![MatchPlayer {
            seat: 0,
            user_id: Some(user.id),
            nickname: user.nickname.clone(),
            placement: 1,
            outcome: Outcome::Win,
            score: result.score,
            stats_json: stats.to_string(),
        }],
    }
}

/// Job: a page of the player's history; 404 for an unknown account.
pub fn player_matches(
    store: &mut dyn Store,
    user_id: i64,
    query: &HistoryQuery,
) -> Result<WebResponse, AccountError> {
    if store.user_by_id(user_id)?.is_none() {
        return Err(AccountError::NotFound);
    }
    let matches = store.player_matches(user_id, query)?;
    Ok(WebResponse::json(200, &page_json(&matches, query.rows_max())))
}

/// Job: one match; 404 `match_not_found` when there is none.
pub fn one_match(store: &mut dyn Store, id: i64) -> Result<WebResponse, AccountError> {
    let record = store.match_by_id(id)?.ok_or(AccountError::MatchNotFound)?;
    Ok(WebResponse::json(200, &match_json(&record)))
}

/// Job: stores the caller's solo result and answers 201 with the match.
/// The account is read first: its current nickname goes on the seat (the
/// token's may be stale), and a deleted account is 404, not a failed
/// write.
pub fn record_solo(
    store: &mut dyn Store,
    user_id: i64,
    result: &SoloResult,
    now_ms: i64,
) -> Result<WebResponse, AccountError> {
    if !(1..=MATCH_ENDED_AT_MS_MAX).contains(&now_ms) {
        let message = format!("the clock reads {now_ms} ms, outside what a match id can carry");
        return Err(AccountError::Store(StoreError::Internal(message)));
    }
    let user = store.user_by_id(user_id)?.ok_or(AccountError::NotFound)?;
    for _ in 0..MATCH_ID_ATTEMPTS_MAX {
        let record = solo_record(new_match_id(now_ms), &user, result, now_ms);
        match store.record_match(&record) {
            Ok(()) => return Ok(WebResponse::json(201, &match_json(&record))),
            Err(StoreError::Conflict(Conflict::Match)) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(AccountError::Store(StoreError::Conflict(Conflict::Match)))
}

/// `{"matches": [...], "next_cursor"}`: the cursor is the last match's id
/// when the page is full (there may be more), null when it is not.
pub fn page_json(matches: &[MatchRecord], rows_max: u32) -> Value {
    let full = matches.len() >= rows_max as usize;
    let next_cursor = matches.last().filter(|_| full).map(|last| last.id.to_string());
    let matches: Vec<Value> = matches.iter().map(match_json).collect();
    json!({ "matches": matches, "next_cursor": next_cursor })
}

/// A match as the API shows it. Ids are decimal strings (JavaScript
/// numbers stop being exact at 2^53); the room id and the seed are the
/// protocol's u64s (stored as their i64 bits).
pub fn match_json(record: &MatchRecord) -> Value {
    let players: Vec<Value> = record.players.iter().map(player_json).collect();
    json!({
        "id": record.id.to_string(),
        "room_id": (record.room_id as u64).to_string(),
        "game": record.game,
        "mode": record.mode,
        "tournament_id": record.tournament_id.map(|id| id.to_string()),
        "seed": (record.seed as u64).to_string(),
        "started_at_ms": record.started_at_ms,
        "ended_at_ms": record.ended_at_ms,
        "players": players,
    })
}

fn player_json(player: &MatchPlayer) -> Value {
    json!({
        "seat": player.seat,
        "user_id": player.user_id.map(|id| id.to_string()),
        "nickname": player.nickname,
        "placement": player.placement,
        "outcome": player.outcome.as_str(),
        "score": player.score,
        "stats": stats_object(&player.stats_json),
    })
}

/// A seat's stats text as the JSON object it holds; anything else (which
/// no writer of ours produces) shows as `{}` and is logged.
fn stats_object(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => value,
        _ => {
            tracing::warn!(stats_json = text, "a match seat's stats are not a JSON object");
            json!({})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::store::Role;

    fn query(text: &str) -> Result<HistoryQuery, u16> {
        history_query(Some(text)).map_err(|response| response.status)
    }

    #[test]
    fn history_queries_parse_every_parameter_and_refuse_the_rest() {
        assert_eq!(query(""), Ok(HistoryQuery::newest(HISTORY_PAGE_DEFAULT)));
        let full = query("limit=5&cursor=123&mode=solo&game=tetris&from=10&to=20").unwrap();
        let expected = HistoryQuery {
            mode: Some("solo".into()),
            game: Some("tetris".into()),
            from_ms: Some(10),
            to_ms: Some(20),
            before_id: Some(123),
            limit: 5,
        };
        assert_eq!(full, expected);
        assert_eq!(query("cursor=9223372036854775807").unwrap().before_id, Some(i64::MAX));
        assert_eq!(query("cursor=9223372036854775808").unwrap().before_id, None, "no bound");
        assert_eq!(query("cursor=0").unwrap().before_id, Some(0));
        assert_eq!(query("to=9223372036854775807").unwrap().to_ms, Some(i64::MAX));
        for bad in [
            "limit=0",
            "limit=101",
            "limit=+5",
            "limit=",
            "cursor=-1",
            "cursor=abc",
            "cursor=99999999999999999999",
            "mode=Solo",
            "mode=",
            "game=te%74ris",
            "from=-1",
            "from=1.5",
            "to=9223372036854775808",
            "evil=1",
        ] {
            assert_eq!(query(bad), Err(400), "{bad}");
        }
    }

    fn body(value: Value) -> Result<SoloResult, u16> {
        let body: SoloBody = serde_json::from_value(value).map_err(|_| 400u16)?;
        solo_result(body).map_err(|response| response.status)
    }

    #[test]
    fn solo_results_are_whole_bounded_figures_of_tetris() {
        let good = json!({
            "game": "tetris", "score": 12_345, "lines": 40, "level": 5.0, "pieces": 101,
            "duration_ms": 95_000, "seed": "18446744073709551"
        });
        let result = body(good.clone()).unwrap();
        assert_eq!((result.score, result.level, result.seed), (12_345, 5, 18_446_744_073_709_551));
        let mut unseeded = good.clone();
        unseeded["seed"] = Value::Null;
        assert_eq!(body(unseeded).unwrap().seed, 0);
        let mut at_limits = good.clone();
        at_limits["score"] = json!(SOLO_SCORE_MAX);
        at_limits["duration_ms"] = json!(SOLO_DURATION_MS_MAX);
        assert!(body(at_limits).is_ok());
        for (field, value) in [
            ("game", json!("arena")),
            ("score", json!(-1)),
            ("score", json!(SOLO_SCORE_MAX + 1)),
            ("lines", json!(1.5)),
            ("level", json!(SOLO_LEVEL_MAX + 1)),
            ("pieces", json!("7")),
            ("duration_ms", json!(1e300)),
            ("seed", json!("-1")),
            ("seed", json!(7)),
            ("role", json!("admin")),
        ] {
            let mut bad = good.clone();
            bad[field] = value.clone();
            assert_eq!(body(bad), Err(400), "{field}: {value}");
        }
    }

    /// The stored shape: one seat, the caller first of one, figures in the
    /// stats, room id = match id, start = end - duration.
    #[test]
    fn a_solo_result_is_a_one_seat_solo_match() {
        let user = User {
            id: 1 << 62,
            username: None,
            nickname: "zoë".into(),
            password_hash: None,
            role: Role::Guest,
            created_at_ms: 0,
            updated_at_ms: 0,
        };
        let result = SoloResult {
            game: "tetris".into(),
            score: 900,
            lines: 12,
            level: 2,
            pieces: 40,
            duration_ms: 60_000,
            seed: u64::MAX,
        };
        let record = solo_record(77, &user, &result, 1_000_000);
        assert!(!record.counts_in_stats());
        assert_eq!(
            (record.room_id, record.started_at_ms, record.ended_at_ms),
            (77, 940_000, 1_000_000)
        );
        let shown = match_json(&record);
        assert_eq!(shown["seed"], u64::MAX.to_string());
        assert_eq!(shown["mode"], "solo");
        assert_eq!(
            shown["players"],
            json!([{
                "seat": 0, "user_id": (1u64 << 62).to_string(), "nickname": "zoë",
                "placement": 1, "outcome": "win", "score": 900,
                "stats": { "lines": 12, "level": 2, "pieces": 40, "duration_ms": 60_000 },
            }])
        );
    }

    #[test]
    fn a_page_has_a_cursor_only_when_full() {
        let record = |id| MatchRecord { id, players: Vec::new(), ..solo_stub() };
        let two = [record(9), record(4)];
        assert_eq!(page_json(&two, 2)["next_cursor"], "4");
        assert_eq!(page_json(&two, 3)["next_cursor"], Value::Null);
        assert_eq!(page_json(&[], 3), json!({ "matches": [], "next_cursor": null }));
        assert_eq!(stats_object("[1]"), json!({}));
        assert_eq!(stats_object("not json"), json!({}));
    }

    fn solo_stub() -> MatchRecord {
        MatchRecord {
            id: 1,
            room_id: 1,
            game: "tetris".into(),
            mode: SOLO_MODE.into(),
            tournament_id: None,
            seed: 0,
            started_at_ms: 0,
            ended_at_ms: 0,
            players: Vec::new(),
        }
    }
}
