//! The REST API under /api, split at the thread boundary:
//!
//! - [`ApiFrontend`], one per shard, runs on the shard thread and does only
//!   bounded CPU work: CORS, rate limits, routing, access-token checks
//!   (a few microseconds), body limits and JSON parsing into a typed
//!   [`Command`]. Whatever it refuses is answered at once.
//! - [`handlers::ApiWorker`] runs the command on a storage worker (the
//!   database, argon2) and its answer goes back through the reply the shard
//!   gave: in production a post into that shard's mailbox.
//!
//! Errors are always `{"error": {"code", "message"}}`; every answer carries
//! the request's `x-request-id` (the client's, when it sent a sane one).

pub mod cors;
pub mod handlers;
pub mod history;
pub mod limiter;
pub mod lobby;
pub mod replay;
pub mod routes;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Deserialize;

pub use handlers::{ApiWorker, Command};
pub use lobby::{Account, Lobby, LobbyAnswer, LobbyCall, LobbyReply, RoomSettings, RoomView};

use crate::config;
use crate::proto::http::{HttpRequest, WebResponse};
use crate::proto::session::Now;
use crate::proto::wire::GameKind;
use crate::services::accounts::checked_nickname;
use crate::services::auth::jwt::{AccessClaims, JwtKeys, KeyConfigError};
use crate::services::auth::password::{PasswordError, PasswordHasher, PasswordParams};
use crate::services::history::StreamHandle;
use crate::services::pool::{JobError, PoolConfig, PoolError, WorkerPool};
use crate::services::store::migrate::open_store;
use crate::services::store::{ProfileFields, StoreError, BIO_LEN_MAX, LEADERBOARD_PAGE_MAX};
use cors::CorsPolicy;
pub use limiter::Verdict;
use limiter::{Rate, RateLimiter};
use routes::{Route, RouteError};

/// Largest request body the API reads; more is 413.
pub const BODY_MAX_BYTES: usize = 16 * 1024;
/// Storage workers run below the shards (see `PoolConfig::nice`).
pub const STORAGE_WORKER_NICE: i32 = 10;
/// Leaderboard page size when the query names none.
pub const LEADERBOARD_PAGE_DEFAULT: u32 = 20;
/// Deepest offset a leaderboard page may start at.
pub const LEADERBOARD_OFFSET_MAX: u64 = 1_000_000;
/// Longest client-supplied request id we echo; longer ones are replaced.
pub const REQUEST_ID_LEN_MAX: usize = 64;

/// The OpenAPI description, served at /api/openapi.json.
pub static OPENAPI_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

/// What every shard's frontend shares: keys, the worker pool, the policy.
pub struct ApiShared {
    pub keys: Arc<JwtKeys>,
    pub pool: WorkerPool<ApiWorker, WebResponse>,
    pub config: config::Api,
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("JWT_SECRET: {0}")]
    Keys(#[from] KeyConfigError),
    #[error("password hashing parameters: {0}")]
    Passwords(#[from] PasswordError),
    #[error("worker pool: {0}")]
    Pool(#[from] PoolError),
}

impl ApiShared {
    /// Opens the store the configuration names, applies the migrations it
    /// lacks (refusing an edited past migration or a newer database), and
    /// starts the storage workers, each with its own connection. Runs on
    /// the main thread before the shards start.
    pub fn start(
        config: &config::Config,
        events: Option<StreamHandle>,
    ) -> Result<Arc<ApiShared>, StartError> {
        let mut store = open_store(config)?;
        let status = store.migrate(unix_ms())?;
        for version in &status.applied_now {
            tracing::info!(version, store = store.kind(), "migration applied");
        }
        tracing::info!(
            store = store.kind(),
            schema_version = status.database_version,
            "storage ready"
        );
        drop(store);
        let keys = Arc::new(match &config.services.jwt_secret {
            Some(secret) => JwtKeys::from_config(secret.expose())?,
            None => {
                tracing::warn!(
                    "JWT_SECRET is unset: access tokens are signed with a random key and stop \
                     working when this process exits"
                );
                JwtKeys::generate()
            }
        });
        let api = &config.api;
        let passwords = Arc::new(PasswordHasher::new(PasswordParams {
            memory_kib: api.argon2_memory_kib,
            iterations: api.argon2_iterations,
            ..PasswordParams::DEFAULT
        })?);
        let pool_config = PoolConfig {
            name: "storage",
            workers: api.workers,
            queue_capacity: api.queue,
            nice: STORAGE_WORKER_NICE,
        };
        let worker_config = config.clone();
        let worker_keys = Arc::clone(&keys);
        let pool = WorkerPool::start(&pool_config, move |index| {
            let store = open_store(&worker_config);
            if let Err(error) = &store {
                tracing::error!(worker = index, %error, "storage worker could not open the store");
            }
            let events = events.as_ref().map(StreamHandle::reader);
            ApiWorker {
                store,
                passwords: Arc::clone(&passwords),
                keys: Arc::clone(&worker_keys),
                events,
            }
        })?;
        Ok(Arc::new(ApiShared { keys, pool, config: api.clone() }))
    }
}

/// Rooms one listing returns.
pub const ROOM_LIST_MAX: usize = 100;

/// Where a deferred answer goes (the shard's mailbox, in production).
pub type Reply = Box<dyn FnOnce(WebResponse) + Send>;

/// Who a valid access token says is asking.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub user_id: i64,
    pub role: String,
    /// The nickname the token was minted with (rooms show it).
    pub nickname: String,
}

/// One shard's API front: everything that runs before a job is queued.
pub struct ApiFrontend {
    shard: u16,
    shared: Arc<ApiShared>,
    cors: CorsPolicy,
    per_ip: RateLimiter<IpAddr>,
    per_account: RateLimiter<i64>,
    auth_per_ip: RateLimiter<IpAddr>,
    next_request: u64,
    /// Limiter sweeps happen at most this often.
    last_sweep_ms: u64,
}

/// How often the limiters drop buckets that refilled.
const LIMITER_SWEEP_MS: u64 = 10_000;

impl ApiFrontend {
    pub fn new(shard: u16, shared: Arc<ApiShared>) -> ApiFrontend {
        let api = &shared.config;
        ApiFrontend {
            shard,
            cors: CorsPolicy::new(api.cors_origins.clone()),
            per_ip: RateLimiter::new(Rate::per_second(api.ip_rate_per_s, api.ip_burst)),
            per_account: RateLimiter::new(Rate::per_second(
                api.account_rate_per_s,
                api.account_burst,
            )),
            auth_per_ip: RateLimiter::new(Rate::per_minute(api.auth_per_minute)),
            shared,
            next_request: 1,
            last_sweep_ms: 0,
        }
    }

    pub fn keys(&self) -> &Arc<JwtKeys> {
        &self.shared.keys
    }

    /// Checks an access token (also for the protocol's Hello).
    pub fn verify(&self, token: &str, now: Now) -> Result<AccessClaims, WebResponse> {
        let now_s = (now.unix_us / 1_000_000) as i64;
        self.shared.keys.verify(token, now_s).map_err(|error| {
            WebResponse::error(401, error.code(), &error.to_string())
                .with_header("www-authenticate", "Bearer error=\"invalid_token\"")
        })
    }

    /// Serves one API request: `Some` answers now; `None` means a job was
    /// queued and `reply` will get the answer (exactly once).
    pub fn handle(
        &mut self,
        request: &HttpRequest<'_>,
        now: Now,
        reply: Reply,
        lobby: &mut dyn Lobby,
    ) -> Option<WebResponse> {
        let request_id = self.request_id(request);
        let origin = self.cors.allowed_origin(request);
        let decorate = {
            let origin = origin.map(str::to_owned);
            let request_id = request_id.clone();
            move |mut response: WebResponse| {
                CorsPolicy::decorate(origin.as_deref(), &mut response);
                response.headers.push(("x-request-id", request_id));
                response
            }
        };
        let action = match self.front(request, now, lobby) {
            Ok(action) => action,
            Err(response) => {
                log_answer(&request_id, request, response.status, 0);
                return Some(decorate(response));
            }
        };
        let started = Instant::now();
        let (method, path) = (request.method.to_owned(), request.path.to_owned());
        let command = match action {
            Action::Job(command) => command,
            Action::Lobby(account, call) => {
                let later = {
                    let decorate = decorate.clone();
                    let request_id = request_id.clone();
                    Box::new(move |answer: LobbyAnswer| {
                        let response = answer.to_response();
                        let elapsed_ms = started.elapsed().as_millis() as u64;
                        log_deferred(&request_id, &method, &path, response.status, elapsed_ms);
                        reply(decorate(response));
                    })
                };
                let answer = lobby.call(&account, call, later, now)?;
                let response = answer.to_response();
                log_answer(&request_id, request, response.status, 0);
                return Some(decorate(response));
            }
        };
        let answer: crate::services::pool::Reply<WebResponse> = Box::new(move |result| {
            let response = result.unwrap_or_else(|error| job_error(&error));
            let elapsed_ms = started.elapsed().as_millis() as u64;
            log_deferred(&request_id, &method, &path, response.status, elapsed_ms);
            reply(decorate(response));
        });
        let deadline = Instant::now() + Duration::from_millis(self.shared.config.job_deadline_ms);
        self.shared.pool.submit(
            deadline,
            move |worker: &mut ApiWorker| worker.execute(command, unix_ms()),
            answer,
        );
        None
    }

    /// A protocol session's read (a history page, a match, a replay page):
    /// the per-account rate limit (`rate_key`: the account id, or any
    /// negative key for a guest), then a job on the storage workers whose
    /// JSON body stays within `body_max` bytes (see
    /// [`ApiWorker::execute_within`]), run by the pool's deadline. `reply`
    /// gets the answer exactly once, unless the rate limit refuses: then
    /// it is dropped uncalled and `Limited` returned.
    pub fn submit_for_session(
        &mut self,
        rate_key: i64,
        command: Command,
        body_max: usize,
        now: Now,
        reply: crate::services::pool::Reply<WebResponse>,
    ) -> Verdict {
        self.sweep(now.monotonic_ms);
        let verdict = self.per_account.check(rate_key, now.monotonic_ms);
        if verdict != Verdict::Allowed {
            return verdict;
        }
        let deadline = Instant::now() + Duration::from_millis(self.shared.config.job_deadline_ms);
        self.shared.pool.submit(
            deadline,
            move |worker: &mut ApiWorker| worker.execute_within(command, unix_ms(), body_max),
            reply,
        );
        Verdict::Allowed
    }

    /// Everything before the job: what to run, or the answer.
    fn front(
        &mut self,
        request: &HttpRequest<'_>,
        now: Now,
        lobby: &dyn Lobby,
    ) -> Result<Action, WebResponse> {
        let now_ms = now.monotonic_ms;
        self.sweep(now_ms);
        if request.method == "OPTIONS" {
            return Err(self.cors.preflight(request));
        }
        limit(self.per_ip.check(request.peer.ip(), now_ms))?;
        let route = routes::resolve(request.method, request.path).map_err(route_error)?;
        let principal = match needs_token(&route) {
            true => Some(self.principal(request, now)?),
            false => None,
        };
        if let Some(principal) = &principal {
            limit(self.per_account.check(principal.user_id, now_ms))?;
        }
        if is_auth(&route) {
            limit(self.auth_per_ip.check(request.peer.ip(), now_ms))?;
        }
        command(route, principal.as_ref(), request, lobby)
    }

    fn principal(&self, request: &HttpRequest<'_>, now: Now) -> Result<Principal, WebResponse> {
        let token = request
            .header("authorization")
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| {
                WebResponse::error(401, "missing_token", "send Authorization: Bearer <token>")
                    .with_header("www-authenticate", "Bearer")
            })?;
        let claims = self.verify(token, now)?;
        Ok(Principal { user_id: claims.sub, role: claims.role, nickname: claims.name })
    }

    fn request_id(&mut self, request: &HttpRequest<'_>) -> String {
        let sane = |id: &&str| {
            !id.is_empty()
                && id.len() <= REQUEST_ID_LEN_MAX
                && id.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-_.:".contains(&byte))
        };
        if let Some(id) = request.header("x-request-id").filter(sane) {
            return id.to_owned();
        }
        let id = format!("{:x}-{:x}", self.shard, self.next_request);
        self.next_request += 1;
        id
    }

    fn sweep(&mut self, now_ms: u64) {
        if now_ms.saturating_sub(self.last_sweep_ms) < LIMITER_SWEEP_MS {
            return;
        }
        self.last_sweep_ms = now_ms;
        self.per_ip.forget_refilled(now_ms);
        self.per_account.forget_refilled(now_ms);
        self.auth_per_ip.forget_refilled(now_ms);
    }
}

fn needs_token(route: &Route) -> bool {
    matches!(
        route,
        Route::Me
            | Route::UpdateMe
            | Route::Upgrade
            | Route::CreateRoom
            | Route::JoinRoom(_)
            | Route::LeaveRoom(_)
            | Route::QueueJoin
            | Route::QueueLeave
            | Route::QueueStatus
            | Route::SoloResult
    )
}

/// What a request becomes: a job for a storage worker, or a call to the
/// shard's game host (rooms, quick match).
enum Action {
    Job(Command),
    Lobby(Account, LobbyCall),
}

/// The routes that check passwords or mint tokens: their own, lower limit.
fn is_auth(route: &Route) -> bool {
    matches!(route, Route::Register | Route::Login | Route::Guest | Route::Upgrade | Route::Refresh)
}

fn limit(verdict: Verdict) -> Result<(), WebResponse> {
    match verdict {
        Verdict::Allowed => Ok(()),
        Verdict::Limited { retry_after_s } => Err(WebResponse::error(
            429,
            "rate_limited",
            "too many requests; retry after the time in Retry-After",
        )
        .with_header("retry-after", retry_after_s.to_string())),
    }
}

fn route_error(error: RouteError) -> WebResponse {
    match error {
        RouteError::NotFound => WebResponse::error(404, "not_found", "no such API route"),
        RouteError::MethodNotAllowed { allow } => {
            WebResponse::error(405, "method_not_allowed", &format!("use {allow}"))
                .with_header("allow", allow)
        }
    }
}

fn openapi() -> WebResponse {
    WebResponse {
        status: 200,
        content_type: "application/json",
        headers: vec![("cache-control", "no-cache".to_owned())],
        body: Bytes::from_static(OPENAPI_JSON.as_bytes()),
    }
}

fn job_error(error: &JobError) -> WebResponse {
    let (status, retry_after) = error.http_status();
    let code = match error {
        JobError::Busy { .. } | JobError::DeadlineExceeded => "busy",
        JobError::ShuttingDown => "shutting_down",
        JobError::Internal(_) => "internal",
    };
    let message = match error {
        JobError::Internal(_) => {
            tracing::error!(%error, "API job failed");
            "the server failed to answer".to_owned()
        }
        other => other.to_string(),
    };
    let response = WebResponse::error(status, code, &message);
    match retry_after {
        Some(seconds) => response.with_header("retry-after", seconds.to_string()),
        None => response,
    }
}

/// Builds the action for `route` from the request's body and query.
fn command(
    route: Route,
    principal: Option<&Principal>,
    request: &HttpRequest<'_>,
    lobby: &dyn Lobby,
) -> Result<Action, WebResponse> {
    let user_id = principal.map_or(0, |principal| principal.user_id);
    let account = || Account {
        player_id: u64::try_from(user_id).unwrap_or(0),
        nickname: principal.map(|principal| principal.nickname.clone()).unwrap_or_default(),
    };
    let lobby_call = match route {
        Route::CreateRoom => {
            let body: CreateRoomBody = json_body(request)?;
            Some(LobbyCall::CreateRoom(room_settings(body)?))
        }
        Route::JoinRoom(room_id) => Some(LobbyCall::JoinRoom(room_id)),
        Route::LeaveRoom(room_id) => Some(LobbyCall::LeaveRoom(room_id)),
        Route::QueueJoin => {
            let body: QueueBody = json_body(request)?;
            let game = GameKind::from_name(&body.game)
                .ok_or_else(|| bad_request("invalid_request", "game is tetris or arena"))?;
            Some(LobbyCall::QueueJoin(game))
        }
        Route::QueueLeave => Some(LobbyCall::QueueLeave),
        Route::QueueStatus => Some(LobbyCall::QueueStatus),
        _ => None,
    };
    if let Some(call) = lobby_call {
        return Ok(Action::Lobby(account(), call));
    }
    Ok(Action::Job(match route {
        Route::Ready => Command::Ready,
        Route::Register => {
            let body: RegisterBody = json_body(request)?;
            Command::Register {
                username: body.username,
                password: body.password,
                nickname: body.nickname,
            }
        }
        Route::Login => {
            let body: CredentialsBody = json_body(request)?;
            Command::Login { username: body.username, password: body.password }
        }
        Route::Guest => {
            let body: GuestBody = json_body(request)?;
            Command::Guest { nickname: body.nickname }
        }
        Route::Upgrade => {
            let body: CredentialsBody = json_body(request)?;
            Command::Upgrade { user_id, username: body.username, password: body.password }
        }
        Route::Refresh => {
            let body: RefreshBody = json_body(request)?;
            Command::Refresh { refresh_token: body.refresh_token }
        }
        Route::Logout => {
            let body: RefreshBody = json_body(request)?;
            Command::Logout { refresh_token: body.refresh_token }
        }
        Route::Me => Command::Me { user_id },
        Route::UpdateMe => {
            let body: ProfileBody = json_body(request)?;
            Command::UpdateMe { user_id, fields: profile_fields(body)? }
        }
        Route::Player(id) => Command::Player { id },
        Route::PlayerStats(id) => Command::PlayerStats { id },
        Route::PlayerMatches(id) => {
            Command::PlayerMatches { id, query: history::history_query(request.query)? }
        }
        Route::Match(id) => Command::Match { id },
        Route::MatchReplay(id) => {
            Command::MatchReplay { id, query: replay::replay_query(request.query)? }
        }
        Route::SoloResult => {
            let body: history::SoloBody = json_body(request)?;
            Command::SoloResult { user_id, result: history::solo_result(body)? }
        }
        Route::Leaderboard(game) => {
            let (limit, offset) = page(request.query)?;
            Command::Leaderboard { game, limit, offset }
        }
        // Answered on the shard, no job.
        Route::OpenApi => return Err(openapi()),
        Route::Rooms => return Err(rooms(lobby, request.query)),
        Route::Room(room_id) => return Err(room(lobby, room_id)),
        Route::CreateRoom
        | Route::JoinRoom(_)
        | Route::LeaveRoom(_)
        | Route::QueueJoin
        | Route::QueueLeave
        | Route::QueueStatus => unreachable!("lobby routes are handled above"),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRoomBody {
    game: String,
    /// A number, not `u8`: JSON Schema's integers include `2.0`; null is
    /// the default, as absent is.
    #[serde(default)]
    capacity: Option<serde_json::Number>,
    #[serde(default)]
    private: bool,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueBody {
    game: String,
}

/// A JSON number that is a whole, non-negative value (`2` or `2.0`).
fn whole_number(number: &serde_json::Number) -> Option<u64> {
    number.as_u64().or_else(|| {
        let value = number.as_f64()?;
        (value.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&value)).then_some(value as u64)
    })
}

/// Longest room name a request may send, in characters.
pub const ROOM_NAME_CHARS_MAX: usize = crate::proto::wire::MAX_ROOM_NAME_LEN;

fn room_settings(body: CreateRoomBody) -> Result<RoomSettings, WebResponse> {
    let invalid = |message: &str| WebResponse::error(400, "invalid_room_settings", message);
    let game = GameKind::from_name(&body.game).ok_or_else(|| invalid("game is tetris or arena"))?;
    let default = match game {
        GameKind::Tetris => 2,
        GameKind::Arena => crate::sim::MAX_PLAYERS as u8,
    };
    let capacity = match &body.capacity {
        None => default,
        Some(number) => whole_number(number)
            .filter(|capacity| (1..=crate::sim::MAX_PLAYERS as u64).contains(capacity))
            .ok_or_else(|| invalid("capacity is a whole number from 1 to 8"))?
            as u8,
    };
    let name = body.name.trim();
    // Characters here (as JSON Schema counts); the wire then cuts the name
    // to its 48 bytes at a character boundary.
    if name.chars().count() > ROOM_NAME_CHARS_MAX || name.chars().any(char::is_control) {
        return Err(invalid("a room name has at most 48 characters and no control characters"));
    }
    Ok(RoomSettings { game, capacity, private: body.private, name: name.to_owned() })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    username: String,
    password: String,
    #[serde(default)]
    nickname: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsBody {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GuestBody {
    nickname: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileBody {
    nickname: String,
    #[serde(default)]
    bio: String,
    #[serde(default)]
    country: Option<String>,
}

fn bad_request(code: &str, message: &str) -> WebResponse {
    WebResponse::error(400, code, message)
}

/// A JSON body of type `T`: the right content type, within the size
/// limit, well-formed (serde_json stops nesting at 128 levels).
fn json_body<T: serde::de::DeserializeOwned>(request: &HttpRequest<'_>) -> Result<T, WebResponse> {
    if request.body.len() > BODY_MAX_BYTES {
        let message = format!("the body may have at most {BODY_MAX_BYTES} bytes");
        return Err(WebResponse::error(413, "body_too_large", &message));
    }
    let content_type = request.header("content-type").unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        let message = "send the body as application/json";
        return Err(WebResponse::error(415, "unsupported_media_type", message));
    }
    serde_json::from_slice(request.body).map_err(|error| {
        let message = error.to_string();
        bad_request("invalid_json", clipped(&message, JSON_ERROR_LEN_MAX))
    })
}

/// Longest parser message an invalid_json answer quotes, in bytes.
const JSON_ERROR_LEN_MAX: usize = 200;

/// At most `max` bytes of `text`, cut at a character boundary (the
/// message may quote the client's own multi-byte text).
fn clipped(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn profile_fields(body: ProfileBody) -> Result<ProfileFields, WebResponse> {
    let nickname = checked_nickname(&body.nickname)
        .map_err(|error| bad_request("invalid_request", &error.to_string()))?;
    if body.bio.chars().count() > BIO_LEN_MAX {
        return Err(bad_request("invalid_request", "a bio has at most 280 characters"));
    }
    if body.bio.chars().any(|c| c.is_control() && c != '\n') {
        return Err(bad_request("invalid_request", "a bio has no control characters"));
    }
    let country = match body.country {
        None => None,
        Some(code) if code.len() == 2 && code.bytes().all(|byte| byte.is_ascii_uppercase()) => {
            Some(code)
        }
        Some(_) => {
            let message = "country is an ISO 3166-1 alpha-2 code such as \"FR\", or null";
            return Err(bad_request("invalid_request", message));
        }
    };
    Ok(ProfileFields { nickname, bio: body.bio, country })
}

fn rooms(lobby: &dyn Lobby, query: Option<&str>) -> WebResponse {
    let mut game = None;
    for pair in query.unwrap_or_default().split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some(("game", name)) if GameKind::from_name(name).is_some() => {
                game = GameKind::from_name(name)
            }
            _ => return bad_request("invalid_query", "the query takes game=tetris or game=arena"),
        }
    }
    let rooms: Vec<serde_json::Value> =
        lobby.rooms(game, ROOM_LIST_MAX).iter().map(RoomView::to_json).collect();
    WebResponse::json(200, &serde_json::json!({ "rooms": rooms }))
}

fn room(lobby: &dyn Lobby, room_id: u64) -> WebResponse {
    match lobby.room(room_id) {
        Some(view) => WebResponse::json(200, &view.to_json()),
        None => WebResponse::error(404, "room_not_found", "no such public room"),
    }
}

/// `limit` and `offset` from a query string.
fn page(query: Option<&str>) -> Result<(u32, u64), WebResponse> {
    let mut limit = LEADERBOARD_PAGE_DEFAULT;
    let mut offset = 0u64;
    for pair in query.unwrap_or_default().split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|limit| (1..=LEADERBOARD_PAGE_MAX).contains(limit))
                    .ok_or_else(|| bad_request("invalid_query", "limit is 1 to 100"))?;
            }
            "offset" => {
                offset = value
                    .parse()
                    .ok()
                    .filter(|offset| *offset <= LEADERBOARD_OFFSET_MAX)
                    .ok_or_else(|| bad_request("invalid_query", "offset is 0 to 1000000"))?;
            }
            _ => return Err(bad_request("invalid_query", "the query takes limit and offset")),
        }
    }
    Ok((limit, offset))
}

fn unix_ms() -> i64 {
    let since =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    since.as_millis() as i64
}

fn log_answer(request_id: &str, request: &HttpRequest<'_>, status: u16, elapsed_ms: u64) {
    log_deferred(request_id, request.method, request.path, status, elapsed_ms);
}

/// One line per answer: warnings for server failures, debug otherwise (a
/// line per request at info would cost more than the request under load).
fn log_deferred(request_id: &str, method: &str, path: &str, status: u16, elapsed_ms: u64) {
    if status >= 500 {
        tracing::warn!(request_id, method, path, status, elapsed_ms, "api request failed");
    } else {
        tracing::debug!(request_id, method, path, status, elapsed_ms, "api request");
    }
}

#[cfg(test)]
mod json_body_tests {
    use super::*;

    /// Found by schemathesis: a parser message quoting a long non-ASCII
    /// field name was cut inside a character, and the shard panicked.
    #[test]
    fn a_parser_message_is_cut_at_a_character_boundary() {
        let field = "é".repeat(150);
        let body = format!("{{\"{field}\": null}}");
        let headers = [("content-type".to_owned(), Bytes::from_static(b"application/json"))];
        let request = HttpRequest {
            method: "POST",
            path: "/api/auth/login",
            query: None,
            headers: crate::proto::http::Headers::Http1(&headers),
            body: body.as_bytes(),
            peer: "127.0.0.1:9".parse().unwrap(),
        };
        let refused = json_body::<CredentialsBody>(&request).err().expect("an unknown field");
        assert_eq!(refused.status, 400);
        let answer: serde_json::Value = serde_json::from_slice(&refused.body).unwrap();
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.len() <= JSON_ERROR_LEN_MAX && message.starts_with("unknown field"));
        assert_eq!(clipped("aé", 2), "a");
        assert_eq!(clipped("abc", 200), "abc");
    }
}
