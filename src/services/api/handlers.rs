//! The worker side of the API: a parsed [`Command`] in, a response out.
//! Runs on storage workers only; every store call blocks.

use std::sync::Arc;

use serde_json::{json, Value};

use super::history::{self, SoloResult};
use super::replay::{self, ReplayQuery};
use crate::proto::http::WebResponse;
use crate::services::accounts::{AccountError, Accounts, SignedIn};
use crate::services::auth::jwt::JwtKeys;
use crate::services::auth::password::PasswordHasher;
use crate::services::events::stream::EventReader;
use crate::services::store::{
    GameStats, HistoryQuery, LeaderboardEntry, Profile, ProfileFields, Store, StoreError, User,
};

/// What a storage worker runs for an API request; parsed and checked on
/// the shard, so workers never see malformed input.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Ready,
    Register { username: String, password: String, nickname: Option<String> },
    Login { username: String, password: String },
    Guest { nickname: String },
    Upgrade { user_id: i64, username: String, password: String },
    Refresh { refresh_token: String },
    Logout { refresh_token: String },
    Me { user_id: i64 },
    UpdateMe { user_id: i64, fields: ProfileFields },
    Player { id: i64 },
    PlayerStats { id: i64 },
    PlayerMatches { id: i64, query: HistoryQuery },
    Match { id: i64 },
    MatchReplay { id: i64, query: ReplayQuery },
    SoloResult { user_id: i64, result: SoloResult },
    Leaderboard { game: String, limit: u32, offset: u64 },
}

impl Command {
    /// Commands that write: counted apart in logs, never retried by us.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Ready => "ready",
            Command::Register { .. } => "register",
            Command::Login { .. } => "login",
            Command::Guest { .. } => "guest",
            Command::Upgrade { .. } => "upgrade",
            Command::Refresh { .. } => "refresh",
            Command::Logout { .. } => "logout",
            Command::Me { .. } => "me",
            Command::UpdateMe { .. } => "update_me",
            Command::Player { .. } => "player",
            Command::PlayerStats { .. } => "player_stats",
            Command::PlayerMatches { .. } => "player_matches",
            Command::Match { .. } => "match",
            Command::MatchReplay { .. } => "match_replay",
            Command::SoloResult { .. } => "solo_result",
            Command::Leaderboard { .. } => "leaderboard",
        }
    }
}

/// One storage worker's state: its own database connection (or why it
/// could not be opened: then every job answers 503).
pub struct ApiWorker {
    pub store: Result<Box<dyn Store>, StoreError>,
    pub passwords: Arc<PasswordHasher>,
    pub keys: Arc<JwtKeys>,
    /// Reads the event stream for replays (None: no stream, 404s).
    pub events: Option<Box<dyn EventReader>>,
}

impl ApiWorker {
    pub fn execute(&mut self, command: Command, now_ms: i64) -> WebResponse {
        match self.run(command, now_ms) {
            Ok(response) => response,
            Err(error) => account_error(&error),
        }
    }

    /// Runs a read whose JSON body must stay within `body_max` bytes (a
    /// protocol frame): a history page or a replay page too long is read
    /// again with half the limit, down to one item; whatever is still too
    /// long is answered as it is, for the caller to refuse.
    pub fn execute_within(
        &mut self,
        mut command: Command,
        now_ms: i64,
        body_max: usize,
    ) -> WebResponse {
        loop {
            let response = self.execute(command.clone(), now_ms);
            if response.status != 200 || response.body.len() <= body_max {
                return response;
            }
            match &mut command {
                Command::PlayerMatches { query, .. } if query.limit > 1 => query.limit /= 2,
                Command::MatchReplay { query, .. } if query.limit > 1 => query.limit /= 2,
                _ => return response,
            }
        }
    }

    fn run(&mut self, command: Command, now_ms: i64) -> Result<WebResponse, AccountError> {
        let store = match &mut self.store {
            Ok(store) => store.as_mut(),
            Err(error) => return Err(AccountError::Store(error.clone())),
        };
        let mut accounts = Accounts { store, passwords: &self.passwords, keys: &self.keys };
        Ok(match command {
            Command::Ready => ready(&mut *accounts.store),
            Command::Register { username, password, nickname } => signed_in(
                201,
                accounts.register(&username, &password, nickname.as_deref(), now_ms)?,
            ),
            Command::Login { username, password } => {
                signed_in(200, accounts.login(&username, &password, now_ms)?)
            }
            Command::Guest { nickname } => signed_in(201, accounts.guest(&nickname, now_ms)?),
            Command::Upgrade { user_id, username, password } => {
                signed_in(200, accounts.upgrade(user_id, &username, &password, now_ms)?)
            }
            Command::Refresh { refresh_token } => {
                signed_in(200, accounts.refresh(&refresh_token, now_ms)?)
            }
            Command::Logout { refresh_token } => {
                accounts.logout(&refresh_token, now_ms)?;
                WebResponse::empty(204)
            }
            Command::Me { user_id } => {
                WebResponse::json(200, &profile_json(&accounts.profile(user_id)?, true))
            }
            Command::Player { id } => {
                WebResponse::json(200, &profile_json(&accounts.profile(id)?, false))
            }
            Command::UpdateMe { user_id, fields } => {
                let profile = accounts
                    .store
                    .update_profile(user_id, &fields, now_ms)?
                    .ok_or(AccountError::NotFound)?;
                WebResponse::json(200, &profile_json(&profile, true))
            }
            Command::PlayerStats { id } => {
                if accounts.store.user_by_id(id)?.is_none() {
                    return Err(AccountError::NotFound);
                }
                let stats = accounts.store.stats(id)?;
                WebResponse::json(200, &stats_json(id, &stats))
            }
            Command::PlayerMatches { id, query } => {
                history::player_matches(&mut *accounts.store, id, &query)?
            }
            Command::Match { id } => history::one_match(&mut *accounts.store, id)?,
            Command::MatchReplay { id, query } => {
                replay::match_replay(&mut *accounts.store, self.events.as_deref_mut(), id, query)?
            }
            Command::SoloResult { user_id, result } => {
                history::record_solo(&mut *accounts.store, user_id, &result, now_ms)?
            }
            Command::Leaderboard { game, limit, offset } => {
                let entries = accounts.store.leaderboard(&game, limit, offset)?;
                WebResponse::json(200, &leaderboard_json(&game, limit, offset, &entries))
            }
        })
    }
}

/// Readiness: the store answers and its schema is the binary's.
fn ready(store: &mut dyn Store) -> WebResponse {
    match store.schema_status() {
        Ok(status) if status.is_current() => WebResponse::json(
            200,
            &json!({
                "status": "ready",
                "store": store.kind(),
                "schema_version": status.database_version,
            }),
        ),
        Ok(status) => WebResponse::error(
            503,
            "not_ready",
            &format!(
                "the database schema is at version {}, this server needs {}",
                status.database_version, status.binary_version
            ),
        )
        .with_header("retry-after", "5"),
        Err(error) => store_unavailable(&error),
    }
}

fn store_unavailable(error: &StoreError) -> WebResponse {
    match error {
        StoreError::Unavailable(_) => {
            WebResponse::error(503, "unavailable", "the database is unavailable; retry shortly")
                .with_header("retry-after", "1")
        }
        other => {
            tracing::error!(error = %other, "store error");
            WebResponse::error(500, "internal", "the server failed to answer")
        }
    }
}

/// The JSON error for an account failure; internal details stay in the log.
pub fn account_error(error: &AccountError) -> WebResponse {
    if let AccountError::Store(store) = error {
        return store_unavailable(store);
    }
    let (status, code) = error.status();
    if status >= 500 {
        tracing::error!(%error, "account operation failed");
        return WebResponse::error(status, code, "the server failed to answer");
    }
    WebResponse::error(status, code, &error.to_string())
}

fn signed_in(status: u16, signed: SignedIn) -> WebResponse {
    WebResponse::json(
        status,
        &json!({
            "token_type": "Bearer",
            "access_token": signed.access_token,
            "expires_in": signed.expires_in_s,
            "refresh_token": signed.refresh_token,
            "user": user_json(&signed.user),
        }),
    )
    .with_header("cache-control", "no-store")
}

/// Ids travel as decimal strings: JavaScript numbers are exact only to 2^53.
fn user_json(user: &User) -> Value {
    json!({
        "id": user.id.to_string(),
        "username": user.username,
        "nickname": user.nickname,
        "role": user.role.as_str(),
    })
}

fn profile_json(profile: &Profile, own: bool) -> Value {
    let mut value = json!({
        "id": profile.user_id.to_string(),
        "nickname": profile.nickname,
        "role": profile.role.as_str(),
        "bio": profile.bio,
        "country": profile.country,
        "created_at_ms": profile.created_at_ms,
    });
    if own {
        value["username"] = json!(profile.username);
        value["updated_at_ms"] = json!(profile.updated_at_ms);
    }
    value
}

fn stats_json(id: i64, stats: &[GameStats]) -> Value {
    let games: Vec<Value> = stats
        .iter()
        .map(|game| {
            json!({
                "game": game.game,
                "matches": game.matches,
                "wins": game.wins,
                "losses": game.losses,
                "draws": game.draws,
                "rating": game.rating.rating,
                "deviation": game.rating.deviation,
            })
        })
        .collect();
    json!({ "player_id": id.to_string(), "games": games })
}

fn leaderboard_json(game: &str, limit: u32, offset: u64, entries: &[LeaderboardEntry]) -> Value {
    let entries: Vec<Value> = entries
        .iter()
        .map(|entry| {
            json!({
                "rank": entry.rank,
                "player_id": entry.user_id.to_string(),
                "nickname": entry.nickname,
                "rating": entry.rating.rating,
                "deviation": entry.rating.deviation,
                "matches": entry.matches,
            })
        })
        .collect();
    json!({ "game": game, "limit": limit, "offset": offset, "entries": entries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::auth::password::PasswordParams;
    use crate::services::store::sqlite::SqliteStore;

    const NOW_MS: i64 = 1_700_000_000_000;

    fn worker() -> ApiWorker {
        let mut store = SqliteStore::open_in_memory().unwrap();
        store.migrate(1).unwrap();
        let params = PasswordParams { memory_kib: 1_024, iterations: 1, parallelism: 1 };
        ApiWorker {
            store: Ok(Box::new(store)),
            passwords: Arc::new(PasswordHasher::new(params).unwrap()),
            keys: Arc::new(JwtKeys::generate()),
            events: None,
        }
    }

    fn body(response: &WebResponse) -> Value {
        serde_json::from_slice(&response.body).unwrap()
    }

    /// A history page too long for its bound is read again with half the
    /// limit until it fits (the cursor then follows the smaller page); a
    /// single match still too long comes back as it is, for the caller.
    #[test]
    fn reads_within_a_size_are_made_smaller_until_they_fit() {
        let mut worker = worker();
        let guest = worker.execute(Command::Guest { nickname: "sizer".into() }, NOW_MS);
        let user_id: i64 = body(&guest)["user"]["id"].as_str().unwrap().parse().unwrap();
        for index in 0..8 {
            let result = SoloResult {
                game: "tetris".into(),
                score: 100 + index,
                lines: 40,
                level: 2,
                pieces: 100,
                duration_ms: 60_000,
                seed: 0,
            };
            let stored = worker.execute(Command::SoloResult { user_id, result }, NOW_MS + index);
            assert_eq!(stored.status, 201);
        }
        let command = Command::PlayerMatches { id: user_id, query: HistoryQuery::newest(8) };
        let whole = worker.execute(command.clone(), NOW_MS);
        assert_eq!(body(&whole)["matches"].as_array().unwrap().len(), 8);

        let bound = whole.body.len() / 3;
        let fitted = worker.execute_within(command.clone(), NOW_MS, bound);
        assert!(fitted.status == 200 && fitted.body.len() <= bound);
        let page = body(&fitted);
        let matches = page["matches"].as_array().unwrap();
        assert_eq!(matches.len(), 2, "8, then 4, then 2 matches");
        assert_eq!(page["next_cursor"], matches[1]["id"]);
        assert_eq!(matches[..], body(&whole)["matches"].as_array().unwrap()[..2]);

        let over = worker.execute_within(command, NOW_MS, 10);
        assert_eq!(body(&over)["matches"].as_array().unwrap().len(), 1);
        let unknown = worker.execute_within(Command::Match { id: 1 }, NOW_MS, 10);
        assert_eq!(unknown.status, 404, "errors are answered at once");
    }
}
