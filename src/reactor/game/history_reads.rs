//! Match history over the protocol: HistoryRequest, MatchRequest and
//! ReplayRequest become the REST API's own [`Command`]s, checked as REST
//! checks them, run by the same storage workers; the JSON bodies come
//! back as text in HistoryPage, MatchDetail and ReplayChunk, or the
//! failure as Error (its text starting with "request <id>: ").
//!
//! Pure: the host (see `GameHost::on_history_read`) submits the command
//! and routes the encoded answer back to the session through the shard's
//! mailbox.

use bytes::{Bytes, BytesMut};
use serde_json::Value;

use super::hosted::text;
use crate::proto::http::WebResponse;
use crate::proto::wire::{
    self, encode_frame, ErrorCode, Message, WireMessage, MAX_HISTORY_JSON_LEN, MAX_HISTORY_PAGE,
};
use crate::services::api::history::history_query;
use crate::services::api::replay::ReplayQuery;
use crate::services::api::Command;
use crate::services::pool::JobError;

/// History reads one session may have waiting for the workers; more are
/// refused `rate_limited`.
pub const MAX_HISTORY_IN_FLIGHT: usize = 4;
/// A read not answered within this long no longer counts against the
/// session's in-flight bound (its answer was lost: a full mailbox).
pub const HISTORY_ANSWER_TIMEOUT_MS: u64 = 30_000;
/// Events a replay chunk asks for (Tetris events are about 250 bytes of
/// JSON, so a chunk is about 50 KB); the worker halves it while the
/// page's JSON does not fit in [`MAX_HISTORY_JSON_LEN`].
pub const REPLAY_CHUNK_EVENTS: usize = 200;
/// Mode and game names: what the REST query takes (`[a-z_]{1,32}`).
const NAME_BYTES: &[u8] = b"abcdefghijklmnopqrstuvwxyz_";

/// A history read, checked: what to run, and how to answer it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRead {
    pub request_id: u32,
    /// The request's type code (the answer's kind, Error's `in_reply_to`).
    pub code: u16,
    pub command: Command,
}

/// Why a read is refused before any job runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub request_id: u32,
    pub code: u16,
    pub error: ErrorCode,
    pub text: &'static str,
}

/// The read a message asks for; `None` when it is not a history read.
/// `account` is the session's account id (`None` for a guest): it stands
/// for the player id 0.
pub fn history_read(
    message: &Message,
    account: Option<u64>,
) -> Option<Result<HistoryRead, Refusal>> {
    let code = message.code();
    let (request_id, command) = match message {
        Message::HistoryRequest(request) => (request.request_id, history_command(request, account)),
        Message::MatchRequest(request) => {
            let command = match i64::try_from(request.match_id) {
                Ok(id) if id > 0 => Ok(Command::Match { id }),
                _ => Err((ErrorCode::MatchNotFound, "no match has that id")),
            };
            (request.request_id, command)
        }
        Message::ReplayRequest(request) => {
            let command = match i64::try_from(request.match_id) {
                Ok(id) if id > 0 => {
                    let query = ReplayQuery { after: request.after, limit: REPLAY_CHUNK_EVENTS };
                    Ok(Command::MatchReplay { id, query })
                }
                _ => Err((ErrorCode::MatchNotFound, "no match has that id")),
            };
            (request.request_id, command)
        }
        _ => return None,
    };
    Some(match command {
        Ok(command) => Ok(HistoryRead { request_id, code, command }),
        Err((error, text)) => Err(Refusal { request_id, code, error, text }),
    })
}

fn history_command(
    request: &wire::HistoryRequest,
    account: Option<u64>,
) -> Result<Command, (ErrorCode, &'static str)> {
    let player_id = match (request.player_id, account) {
        (0, Some(account)) => account,
        (0, None) => {
            return Err((ErrorCode::PlayerNotFound, "a guest has no history: name a player"))
        }
        (player_id, _) => player_id,
    };
    let id = i64::try_from(player_id)
        .ok()
        .filter(|id| *id > 0)
        .ok_or((ErrorCode::PlayerNotFound, "no player has that id"))?;
    if !(1..=MAX_HISTORY_PAGE).contains(&usize::from(request.limit)) {
        return Err((ErrorCode::InvalidQuery, "limit is 1 to 20"));
    }
    // The REST query's own parser checks the rest; names first, so that
    // no byte of them can add a parameter.
    let mut query = format!("limit={}", request.limit);
    for (key, name) in [("mode", request.mode.as_str()), ("game", request.game.as_str())] {
        if name.bytes().any(|byte| !NAME_BYTES.contains(&byte)) {
            return Err((ErrorCode::InvalidQuery, "mode and game are [a-z_]{1,32} or empty"));
        }
        if !name.is_empty() {
            query.push_str(&format!("&{key}={name}"));
        }
    }
    if request.cursor != 0 {
        query.push_str(&format!("&cursor={}", request.cursor));
    }
    let query = history_query(Some(&query))
        .map_err(|_| (ErrorCode::InvalidQuery, "cursor, mode or game out of range"))?;
    Ok(Command::PlayerMatches { id, query })
}

/// The Error frame of a refused read.
pub fn refusal_frame(refusal: &Refusal) -> Bytes {
    error_frame(refusal.request_id, refusal.code, refusal.error, refusal.text)
}

/// The frame answering `code`'s request `request_id` from the worker's
/// response (or the pool's failure). Never longer than a frame may be.
pub fn answer_frame(request_id: u32, code: u16, result: Result<WebResponse, JobError>) -> Bytes {
    let response = match result {
        Ok(response) => response,
        Err(error) => return error_frame(request_id, code, error.code(), &error.to_string()),
    };
    if response.status != 200 {
        let body: Value = serde_json::from_slice(&response.body).unwrap_or_default();
        let message = body["error"]["message"].as_str().unwrap_or("the request failed");
        let error = match (response.status, body["error"]["code"].as_str()) {
            (_, Some("not_found")) => ErrorCode::PlayerNotFound,
            (_, Some("match_not_found")) => ErrorCode::MatchNotFound,
            (_, Some("replay_not_found")) => ErrorCode::ReplayNotFound,
            (_, Some("invalid_query")) => ErrorCode::InvalidQuery,
            (503, _) => ErrorCode::Busy,
            _ => ErrorCode::Internal,
        };
        return error_frame(request_id, code, error, message);
    }
    let json = std::str::from_utf8(&response.body).ok().and_then(|json| {
        let value: Value = serde_json::from_str(json).ok()?;
        Some((wire::Text::<MAX_HISTORY_JSON_LEN>::new(json).ok()?, value))
    });
    let Some((json, value)) = json else {
        let text = "the answer does not fit in a frame";
        tracing::warn!(request_id, code, bytes = response.body.len(), "history answer too long");
        return error_frame(request_id, code, ErrorCode::Internal, text);
    };
    // Ids are decimal strings in the JSON, sequences numbers.
    let number = |field: &Value| {
        field.as_u64().or_else(|| field.as_str().and_then(|text| text.parse().ok())).unwrap_or(0)
    };
    match code {
        wire::HistoryRequest::CODE => {
            let next_cursor = number(&value["next_cursor"]);
            frame(&wire::HistoryPage { request_id, matches_json: json, next_cursor })
        }
        wire::ReplayRequest::CODE => {
            let next_after = number(&value["next_after"]);
            frame(&wire::ReplayChunk { request_id, page_json: json, next_after })
        }
        _ => frame(&wire::MatchDetail { request_id, match_json: json }),
    }
}

fn error_frame(request_id: u32, in_reply_to: u16, error: ErrorCode, message: &str) -> Bytes {
    let text = text(&format!("request {request_id}: {message}"));
    frame(&wire::Error { code: error as u16, in_reply_to, text })
}

fn frame<M: WireMessage>(message: &M) -> Bytes {
    let mut out = BytesMut::new();
    encode_frame(message, &mut out);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::wire::{decode_frame, Text};
    use crate::reactor::shard::ShardMessage;
    use crate::services::store::HistoryQuery;

    fn history(player_id: u64, cursor: u64, limit: u8, mode: &str, game: &str) -> Message {
        Message::HistoryRequest(wire::HistoryRequest {
            request_id: 7,
            player_id,
            cursor,
            limit,
            mode: Text::new(mode).unwrap(),
            game: Text::new(game).unwrap(),
        })
    }

    fn refused(message: &Message, account: Option<u64>) -> ErrorCode {
        history_read(message, account).unwrap().unwrap_err().error
    }

    #[test]
    fn history_requests_become_the_rest_query() {
        let read = history_read(&history(0, 0, 5, "", ""), Some(42)).unwrap().unwrap();
        let expected = Command::PlayerMatches { id: 42, query: HistoryQuery::newest(5) };
        assert_eq!((read.request_id, read.code, read.command), (7, 0x80, expected));
        let read = history_read(&history(9, 123, 20, "solo", "tetris"), None).unwrap().unwrap();
        let query = HistoryQuery {
            mode: Some("solo".into()),
            game: Some("tetris".into()),
            before_id: Some(123),
            ..HistoryQuery::newest(20)
        };
        assert_eq!(read.command, Command::PlayerMatches { id: 9, query });
        assert!(history_read(&Message::RoomLeave(wire::RoomLeave {}), None).is_none());
    }

    #[test]
    fn bad_history_requests_are_refused_before_any_job() {
        assert_eq!(refused(&history(0, 0, 5, "", ""), None), ErrorCode::PlayerNotFound);
        assert_eq!(refused(&history(1 << 63, 0, 5, "", ""), None), ErrorCode::PlayerNotFound);
        for (limit, mode, game) in
            [(0, "", ""), (21, "", ""), (5, "Solo", ""), (5, "", "a&limit=100"), (5, "a b", "")]
        {
            let message = history(3, 0, limit, mode, game);
            assert_eq!(refused(&message, Some(3)), ErrorCode::InvalidQuery, "{message:?}");
        }
        let unknown = Message::MatchRequest(wire::MatchRequest { request_id: 1, match_id: 0 });
        assert_eq!(refused(&unknown, None), ErrorCode::MatchNotFound);
        let replay = Message::ReplayRequest(wire::ReplayRequest {
            request_id: 1,
            match_id: u64::MAX,
            after: 0,
        });
        assert_eq!(refused(&replay, None), ErrorCode::MatchNotFound);
        let replay =
            Message::ReplayRequest(wire::ReplayRequest { request_id: 1, match_id: 5, after: 9 });
        let query = ReplayQuery { after: 9, limit: REPLAY_CHUNK_EVENTS };
        assert_eq!(
            history_read(&replay, None).unwrap().unwrap().command,
            Command::MatchReplay { id: 5, query }
        );
    }

    /// A host whose API workers read an empty in-memory database; the
    /// workers' answers wait in the returned mailbox.
    fn host_with_workers(
    ) -> (super::super::GameHost, crate::reactor::mailbox::Mailbox<ShardMessage>) {
        use std::sync::Arc;

        use crate::reactor::game::resume::ResumeKeys;
        use crate::reactor::game::ApiLink;
        use crate::reactor::mailbox::{mailbox, Doorbell};
        use crate::reactor::shard::ShardStats;
        use crate::reactor::web::ServerFacts;
        use crate::services::api::{ApiFrontend, ApiShared, ApiWorker};
        use crate::services::auth::jwt::JwtKeys;
        use crate::services::auth::password::{PasswordHasher, PasswordParams};
        use crate::services::pool::{PoolConfig, WorkerPool};
        use crate::services::store::sqlite::SqliteStore;
        use crate::services::store::Store;

        struct Silent;
        impl Doorbell for Silent {
            fn ring(&self) {}
        }
        let (reply_to, inbox) = mailbox(64, Box::new(Silent));
        let keys = Arc::new(JwtKeys::generate());
        let params = PasswordParams { memory_kib: 1_024, iterations: 1, parallelism: 1 };
        let passwords = Arc::new(PasswordHasher::new(params).unwrap());
        let worker_keys = Arc::clone(&keys);
        let pool_config = PoolConfig { name: "test", workers: 1, queue_capacity: 16, nice: 0 };
        let pool = WorkerPool::start(&pool_config, move |_| {
            let mut store = SqliteStore::open_in_memory().unwrap();
            store.migrate(1).unwrap();
            let store: Box<dyn Store> = Box::new(store);
            let keys = Arc::clone(&worker_keys);
            ApiWorker { store: Ok(store), passwords: Arc::clone(&passwords), keys, events: None }
        })
        .unwrap();
        let shared = Arc::new(ApiShared { keys, pool, config: crate::config::Api::default() });
        let facts = ServerFacts {
            cert_sha256_hex: None,
            version: "test",
            stats: Arc::new(vec![Arc::new(ShardStats::default())]),
            storage: None,
            events: None,
        };
        let link = ApiLink { frontend: ApiFrontend::new(0, shared), reply_to };
        let host = super::super::GameHost::new(0, facts, ResumeKeys::generate(), at(0));
        (host.with_api(link), inbox)
    }

    fn at(ms: u64) -> crate::proto::session::Now {
        crate::proto::session::Now { monotonic_ms: ms, unix_us: 1_700_000_000_000_000 + ms * 1_000 }
    }

    /// The frames the host has for sessions, decoded.
    fn delivered(host: &mut super::super::GameHost) -> Vec<Message> {
        use crate::reactor::game::outbox::HostOutput;
        use crate::reactor::host::Host;
        let mut messages = Vec::new();
        while let Some(output) = host.poll_output() {
            if let HostOutput::Deliver(delivery) = output {
                messages.push(decoded(delivery.frames));
            }
        }
        messages
    }

    /// Waits for `count` worker answers and hands them to the host.
    fn answers(
        host: &mut super::super::GameHost,
        inbox: &crate::reactor::mailbox::Mailbox<ShardMessage>,
        count: usize,
    ) {
        use crate::reactor::host::Host;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while inbox.len() < count {
            assert!(std::time::Instant::now() < deadline, "the workers did not answer");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        inbox.drain(count, |message| match message {
            ShardMessage::Host(message) => host.handle_message(message, at(2)),
            other => panic!("unexpected {other:?}"),
        });
    }

    fn error_codes(messages: &[Message]) -> Vec<(u16, String)> {
        messages
            .iter()
            .map(|message| match message {
                Message::Error(error) => (error.code, error.text.as_str().to_owned()),
                other => panic!("expected an Error, got {other:?}"),
            })
            .collect()
    }

    /// Four reads wait for the workers at most; the fifth and sixth are
    /// refused at once. Answers come back through the mailbox; one for a
    /// session that closed meanwhile is dropped.
    #[test]
    fn a_session_has_a_bounded_number_of_reads_in_flight() {
        use crate::reactor::host::{Host, SessionRef, Transport};
        let (mut host, inbox) = host_with_workers();
        let session = SessionRef { shard: 0, transport: Transport::WebSocket, connection: 1 };
        let hello = wire::Hello { nickname: Some(Text::from_static("g")), ..Default::default() };
        host.hello(session, &hello, at(0)).unwrap();
        let read =
            |request_id| Message::MatchRequest(wire::MatchRequest { request_id, match_id: 5 });
        for request_id in 1..=6 {
            host.on_message(session, read(request_id), at(1));
        }
        let rate_limited = ErrorCode::RateLimited as u16;
        let refused = error_codes(&delivered(&mut host));
        assert_eq!(refused.len(), 2);
        for ((code, text), request_id) in refused.iter().zip([5, 6]) {
            assert_eq!(*code, rate_limited);
            assert!(text.starts_with(&format!("request {request_id}: ")), "{text}");
        }

        answers(&mut host, &inbox, 4);
        let answered = error_codes(&delivered(&mut host));
        let not_found = ErrorCode::MatchNotFound as u16;
        assert_eq!(answered.iter().map(|(code, _)| *code).collect::<Vec<_>>(), [not_found; 4]);

        // Room again; then the session goes before its answer comes.
        host.on_message(session, read(7), at(3));
        assert!(delivered(&mut host).is_empty(), "accepted");
        host.closed(session);
        answers(&mut host, &inbox, 1);
        assert!(delivered(&mut host).is_empty(), "dropped");
    }

    fn decoded(frame: Bytes) -> Message {
        decode_frame(&frame).expect("a whole frame")
    }

    #[test]
    fn answers_carry_the_rest_bodies_and_their_cursors() {
        let page = serde_json::json!({ "matches": [], "next_cursor": "77" });
        let answer = answer_frame(3, 0x80, Ok(WebResponse::json(200, &page)));
        let Message::HistoryPage(answer) = decoded(answer) else { panic!("a HistoryPage") };
        assert_eq!((answer.request_id, answer.next_cursor), (3, 77));
        assert_eq!(serde_json::from_str::<Value>(answer.matches_json.as_str()).unwrap(), page);

        let last =
            serde_json::json!({ "match": {}, "events": [], "moments": [], "next_after": null });
        let answer = answer_frame(4, 0x84, Ok(WebResponse::json(200, &last)));
        let Message::ReplayChunk(answer) = decoded(answer) else { panic!("a ReplayChunk") };
        assert_eq!((answer.request_id, answer.next_after), (4, 0));
        let more = serde_json::json!({ "next_after": 912 });
        let answer = answer_frame(4, 0x84, Ok(WebResponse::json(200, &more)));
        let Message::ReplayChunk(answer) = decoded(answer) else { panic!("a ReplayChunk") };
        assert_eq!(answer.next_after, 912);

        let one = serde_json::json!({ "id": "5" });
        let Message::MatchDetail(answer) =
            decoded(answer_frame(5, 0x82, Ok(WebResponse::json(200, &one))))
        else {
            panic!("a MatchDetail")
        };
        assert_eq!(answer.match_json.as_str(), r#"{"id":"5"}"#);
    }

    #[test]
    fn failures_are_errors_naming_the_request() {
        let cases = [
            (
                Ok(WebResponse::error(404, "match_not_found", "no such match")),
                ErrorCode::MatchNotFound,
            ),
            (Ok(WebResponse::error(404, "replay_not_found", "none")), ErrorCode::ReplayNotFound),
            (Ok(WebResponse::error(404, "not_found", "no such player")), ErrorCode::PlayerNotFound),
            (Ok(WebResponse::error(503, "unavailable", "down")), ErrorCode::Busy),
            (Ok(WebResponse::error(500, "internal", "oops")), ErrorCode::Internal),
            (Err(JobError::Busy { pool: "storage" }), ErrorCode::Busy),
            (Err(JobError::ShuttingDown), ErrorCode::ServerDraining),
        ];
        for (result, expected) in cases {
            let Message::Error(error) = decoded(answer_frame(9, 0x82, result)) else {
                panic!("an Error")
            };
            assert_eq!((error.code, error.in_reply_to), (expected as u16, 0x82));
            assert!(error.text.as_str().starts_with("request 9: "), "{:?}", error.text);
        }
        // A body that cannot fit is never sent.
        let huge = serde_json::json!({ "blob": "x".repeat(MAX_HISTORY_JSON_LEN) });
        let Message::Error(error) =
            decoded(answer_frame(1, 0x82, Ok(WebResponse::json(200, &huge))))
        else {
            panic!("an Error")
        };
        assert_eq!(error.code, ErrorCode::Internal as u16);
    }
}
