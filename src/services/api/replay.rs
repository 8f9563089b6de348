//! `GET /api/matches/{id}/replay`: a stored match's game events and key
//! moments, from the event stream (JetStream or the embedded log), in
//! stream order, in pages (`after`, `limit`, `next_after`).
//!
//! A match is found in its room's stream as the game_start before the
//! game_end whose `started_at_ms` is the match's; its moments are those
//! of `game.{room}.moments` whose message id names one of the match's
//! events (`{room}-{event_seq}-{n}`).

use serde_json::{json, Value};

use super::history::match_json;
use crate::proto::http::WebResponse;
use crate::services::accounts::AccountError;
use crate::services::events::log::StoredEvent;
use crate::services::events::stream::{EventReader, StreamError};
use crate::services::events::subject::SubjectFilter;
use crate::services::store::{MatchRecord, Store};

/// Events per page when the query names no limit, and at most.
pub const REPLAY_PAGE_DEFAULT: usize = 20_000;
pub const REPLAY_PAGE_MAX: usize = 50_000;
/// A match with more stored events than this is not served (a cap on what
/// one request reads: about 30 minutes of a full arena).
pub const REPLAY_EVENTS_MAX: usize = 500_000;
/// Records read from the stream per call.
const READ_CHUNK: usize = 4_096;
/// The room's stream is read from this long before the match started
/// (clocks of the writer and the stream differ a little).
const START_SLACK_MS: i64 = 60_000;

/// What a replay request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayQuery {
    /// Only events with a stream sequence above this.
    pub after: u64,
    pub limit: usize,
}

fn bad_query(message: &str) -> WebResponse {
    WebResponse::error(400, "invalid_query", message)
}

pub fn replay_query(query: Option<&str>) -> Result<ReplayQuery, WebResponse> {
    let mut replay = ReplayQuery { after: 0, limit: REPLAY_PAGE_DEFAULT };
    for pair in query.unwrap_or_default().split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number =
            (!value.is_empty() && value.len() <= 20 && value.bytes().all(|b| b.is_ascii_digit()))
                .then(|| value.parse::<u64>().ok())
                .flatten();
        match key {
            "after" => {
                replay.after = number.ok_or_else(|| bad_query("after is a stream sequence"))?;
            }
            "limit" => {
                replay.limit = number
                    .and_then(|limit| usize::try_from(limit).ok())
                    .filter(|limit| (1..=REPLAY_PAGE_MAX).contains(limit))
                    .ok_or_else(|| bad_query("limit is 1 to 50000"))?;
            }
            _ => return Err(bad_query("the query takes after and limit")),
        }
    }
    Ok(replay)
}

fn stream_error(error: StreamError) -> WebResponse {
    if error.is_retryable() {
        let mut response =
            WebResponse::error(503, "unavailable", "the event stream is unavailable");
        response.headers.push(("Retry-After", "1".to_owned()));
        return response;
    }
    tracing::error!(%error, "replay: reading the event stream failed");
    WebResponse::error(500, "internal", "reading the event stream failed")
}

fn not_found() -> WebResponse {
    WebResponse::error(
        404,
        "replay_not_found",
        "the match has no stored events (a solo result, or past retention)",
    )
}

/// The room's own count in a `room-seq[-n]` message id.
fn room_seq(msg_id: &str) -> Option<u64> {
    msg_id.split('-').nth(1).and_then(|seq| seq.parse().ok())
}

/// The match's events: from the game_start before the game_end of this
/// match. Returns them with the room sequences they span.
fn match_events(
    reader: &mut dyn EventReader,
    record: &MatchRecord,
) -> Result<Option<Vec<(StoredEvent, Value)>>, StreamError> {
    let room = record.room_id;
    let filter = SubjectFilter::new(&format!("game.{room}.events"))?;
    let mut from = reader.seq_near_time(record.started_at_ms - START_SLACK_MS)?;
    let mut current: Vec<(StoredEvent, Value)> = Vec::new();
    let mut chunk = Vec::with_capacity(READ_CHUNK);
    loop {
        chunk.clear();
        let next = reader.read(&filter, from, READ_CHUNK, &mut chunk)?;
        for event in chunk.drain(..) {
            let Ok(value) = serde_json::from_slice::<Value>(&event.payload) else { continue };
            match value["type"].as_str() {
                Some("game_start") => current.clear(),
                Some(_) if current.is_empty() => continue, // before any start we read
                _ => {}
            }
            let is_end = value["type"] == "game_end";
            let ours =
                is_end && value["data"]["started_at_ms"].as_i64() == Some(record.started_at_ms);
            if current.len() >= REPLAY_EVENTS_MAX {
                return Ok(None);
            }
            current.push((event, value));
            if ours {
                return Ok(Some(current));
            }
        }
        if next <= from {
            return Ok(None); // the stream's end, and no game_end of ours
        }
        from = next;
    }
}

/// The moments of the room whose triggering event is in `room_seqs`.
fn match_moments(
    reader: &mut dyn EventReader,
    room: i64,
    from: u64,
    room_seqs: std::ops::RangeInclusive<u64>,
) -> Result<Vec<(u64, Value)>, StreamError> {
    let filter = SubjectFilter::new(&format!("game.{room}.moments"))?;
    let mut moments = Vec::new();
    let mut chunk = Vec::with_capacity(READ_CHUNK);
    let mut at = from;
    loop {
        chunk.clear();
        let next = reader.read(&filter, at, READ_CHUNK, &mut chunk)?;
        for moment in chunk.drain(..) {
            let Some(seq) = room_seq(&moment.msg_id) else { continue };
            if seq > *room_seqs.end() {
                return Ok(moments);
            }
            if room_seqs.contains(&seq) {
                if let Ok(value) = serde_json::from_slice::<Value>(&moment.payload) {
                    moments.push((moment.seq, value));
                }
            }
        }
        if next <= at || moments.len() >= REPLAY_EVENTS_MAX {
            return Ok(moments);
        }
        at = next;
    }
}

fn with_seq(seq: u64, mut value: Value) -> Value {
    if let Value::Object(fields) = &mut value {
        fields.insert("seq".into(), Value::from(seq));
    }
    value
}

/// Job: one page of the match's replay.
pub fn match_replay(
    store: &mut dyn Store,
    reader: Option<&mut (dyn EventReader + 'static)>,
    id: i64,
    query: ReplayQuery,
) -> Result<WebResponse, AccountError> {
    let record = store.match_by_id(id)?.ok_or(AccountError::MatchNotFound)?;
    let Some(reader) = reader else { return Ok(not_found()) };
    let events = match match_events(reader, &record) {
        Ok(Some(events)) => events,
        Ok(None) => return Ok(not_found()),
        Err(error) => return Ok(stream_error(error)),
    };
    let seqs = |index: usize| room_seq(&events[index].0.msg_id).unwrap_or(0);
    let room_seqs = seqs(0)..=seqs(events.len() - 1);
    let first_seq = events[0].0.seq;
    let page: Vec<&(StoredEvent, Value)> =
        events.iter().filter(|(event, _)| event.seq > query.after).take(query.limit).collect();
    let last_seq = events.last().map_or(0, |(event, _)| event.seq);
    let page_end = page.last().map_or(query.after, |(event, _)| event.seq);
    let next_after = (page_end < last_seq).then_some(page_end);
    // Each page carries the moments its own events triggered.
    let page_room_seqs = match (page.first(), page.last()) {
        (Some((first, _)), Some((last, _))) => {
            Some(room_seq(&first.msg_id).unwrap_or(0)..=room_seq(&last.msg_id).unwrap_or(0))
        }
        _ => None,
    };
    let moments = match page_room_seqs {
        None => Vec::new(),
        Some(range) => {
            debug_assert!(room_seqs.contains(range.start()));
            match match_moments(reader, record.room_id, first_seq, range) {
                Ok(moments) => moments,
                Err(error) => return Ok(stream_error(error)),
            }
        }
    };
    let body = json!({
        "match": match_json(&record),
        "events": page.iter().map(|(event, value)| with_seq(event.seq, value.clone())).collect::<Vec<_>>(),
        "moments": moments.into_iter().map(|(seq, value)| with_seq(seq, value)).collect::<Vec<_>>(),
        "next_after": next_after,
    });
    Ok(WebResponse::json(200, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_queries_are_checked() {
        assert_eq!(
            replay_query(None).unwrap(),
            ReplayQuery { after: 0, limit: REPLAY_PAGE_DEFAULT }
        );
        assert_eq!(
            replay_query(Some("after=12&limit=3")).unwrap(),
            ReplayQuery { after: 12, limit: 3 }
        );
        for bad in ["limit=0", "limit=50001", "after=-1", "after=", "x=1", "limit=1e3"] {
            assert_eq!(replay_query(Some(bad)).unwrap_err().status, 400, "{bad}");
        }
        assert_eq!(room_seq("12-7"), Some(7));
        assert_eq!(room_seq("12-7-0"), Some(7));
        assert_eq!(room_seq("12"), None);
    }
}
