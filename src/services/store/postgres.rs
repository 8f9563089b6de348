//! The production adapter: one Postgres connection (the blocking `postgres`
//! client, no TLS) per storage worker.
//!
//! Owns the connection configuration, at most one live session (client and
//! its prepared statements) and the reconnect backoff. Connects lazily, on
//! the first call, with a [`CONNECT_TIMEOUT`]; every statement runs under
//! the server-side `statement_timeout` [`STATEMENT_TIMEOUT_MS`] (set through
//! the startup options, so it costs no round trip).
//!
//! Failure contract: when the server cannot be reached or the connection
//! breaks, the call fails with [`StoreError::Unavailable`] and the session is
//! dropped; the next call reconnects. A failed connect starts a backoff
//! ([`RECONNECT_DELAY_MIN`] doubling to [`RECONNECT_DELAY_MAX`]) during
//! which calls fail fast with `Unavailable` without touching the network,
//! so a storage pool facing a dead database answers at once instead of
//! queueing behind connect timeouts. A session unused for
//! [`ALIVE_CHECK_AFTER_IDLE`] is checked with an empty query before use and
//! replaced when the server has closed it meanwhile (a restart, a
//! failover, `pg_terminate_backend`, an idle timeout), so a database that
//! went away and came back between two calls costs no failed call; a
//! session in steady use is not checked (HikariCP's "alive bypass window").
//! Known limit: the connect timeout covers the TCP connect only; a server
//! that accepts and then never answers the startup holds the call until
//! TCP gives up.
//!
//! Statements are prepared once per session, on first use (not at connect:
//! before `migrate` the tables do not exist yet), and forgotten after a
//! migration or an unexpected database error, since a schema change by
//! anyone can invalidate them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ::postgres::error::{DbError, SqlState};
use ::postgres::{Client, NoTls, Row, Statement};

use super::migrate::{self, MigrationError, MIGRATIONS, VERSIONS_TABLE_SQL};
use super::{
    username_key, Conflict, GameStats, HistoryQuery, LeaderboardEntry, MatchPlayer, MatchRecord,
    NewUser, Outcome, Profile, ProfileFields, Rating, RefreshToken, Role, Rotation, SchemaStatus,
    Store, StoreError, User, LEADERBOARD_PAGE_MAX,
};

/// Longest wait for the TCP connect to the server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Unacknowledged data older than this kills the connection (Linux), so a
/// vanished server is noticed without waiting for TCP's minutes.
pub const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);
/// Server-side limit on every statement except migrations.
pub const STATEMENT_TIMEOUT_MS: u64 = 5_000;
/// A session unused for this long is checked before its next use.
pub const ALIVE_CHECK_AFTER_IDLE: Duration = Duration::from_millis(500);
/// Longest that check may take; past it the session is given up.
pub const ALIVE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// First wait after a failed connect; doubles per failure up to the max.
pub const RECONNECT_DELAY_MIN: Duration = Duration::from_millis(250);
pub const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(5);
/// The `pg_advisory_xact_lock` key that serialises migrators across
/// processes ("ludusmig" in ASCII).
pub const MIGRATION_LOCK_KEY: i64 = 0x6c75_6475_736d_6967;

/// A [`Store`] on one Postgres connection, made on demand.
pub struct PostgresStore {
    config: ::postgres::Config,
    session: Option<Session>,
    backoff: Backoff,
}

/// A live connection and the statements prepared on it.
struct Session {
    client: Client,
    statements: HashMap<&'static str, Statement>,
    /// When the last unit of work on it ended.
    last_used: Instant,
}

/// When the next connect may be tried, after failures.
struct Backoff {
    delay: Duration,
    retry_at: Option<Instant>,
    last_error: String,
}

/// Why a unit of work stopped: a database error still to classify, or an
/// answer already decided.
enum Failure {
    Database(::postgres::Error),
    Store(StoreError),
}

impl From<::postgres::Error> for Failure {
    fn from(error: ::postgres::Error) -> Failure {
        Failure::Database(error)
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Failure {
        Failure::Store(error)
    }
}

/// What a database error says about the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aftermath {
    Keep,
    ForgetStatements,
    Disconnect,
}

impl PostgresStore {
    /// A store for this configuration; nothing connects until the first
    /// call. Fills in, unless the configuration sets them: the connect and
    /// TCP user timeouts, `application_name = ludus`, and
    /// `statement_timeout` (appended to `options`).
    pub fn new(mut config: ::postgres::Config) -> PostgresStore {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(TCP_USER_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("ludus");
        }
        let options = config.get_options().unwrap_or("").to_owned();
        if !options.contains("statement_timeout") {
            let timeout = format!("-c statement_timeout={STATEMENT_TIMEOUT_MS}");
            config.options(format!("{options} {timeout}").trim_start());
        }
        // The client logs notices ("table exists, skipping") through the
        // log crate by default; they are routine here.
        config.notice_callback(|notice| {
            tracing::debug!(severity = notice.severity(), "postgres: {}", notice.message())
        });
        PostgresStore {
            config,
            session: None,
            backoff: Backoff {
                delay: RECONNECT_DELAY_MIN,
                retry_at: None,
                last_error: String::new(),
            },
        }
    }

    /// A store for a `postgres://` URL or `key=value` connection string.
    pub fn from_url(url: &str) -> Result<PostgresStore, StoreError> {
        let config = url.parse::<::postgres::Config>().map_err(|error| {
            StoreError::Internal(format!(
                "DATABASE_URL is not a Postgres connection string: {error}"
            ))
        })?;
        Ok(PostgresStore::new(config))
    }

    /// The effective configuration (timeouts and options filled in).
    pub fn config(&self) -> &::postgres::Config {
        &self.config
    }

    /// Whether a session is open now (tests and health reports).
    pub fn is_connected(&self) -> bool {
        self.session.as_ref().is_some_and(|session| !session.client.is_closed())
    }

    /// Runs SQL text as is, outside the port (tests and tools only).
    pub fn execute_batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.run(|session| Ok(session.client.batch_execute(sql)?))
    }

    /// The first column of the first row of a query, as an integer (tests
    /// and tools only); BIGINT and INTEGER columns both work.
    pub fn query_i64(&mut self, sql: &str) -> Result<i64, StoreError> {
        self.run(|session| {
            let row = session.client.query_one(sql, &[])?;
            match row.try_get::<_, i64>(0) {
                Ok(value) => Ok(value),
                Err(_) => Ok(i64::from(row.try_get::<_, i32>(0)?)),
            }
        })
    }

    /// The open session, connecting first if there is none and the backoff
    /// allows it.
    fn session(&mut self) -> Result<&mut Session, StoreError> {
        if self.session.as_mut().is_some_and(Session::idle_and_dead) {
            tracing::info!("postgres: the idle connection is gone; reconnecting");
            self.session = None;
        }
        if self.session.is_none() {
            if let Some(retry_at) = self.backoff.retry_at {
                let now = Instant::now();
                if now < retry_at {
                    return Err(StoreError::Unavailable(format!(
                        "not reconnecting for another {} ms after: {}",
                        (retry_at - now).as_millis(),
                        self.backoff.last_error
                    )));
                }
            }
            match self.config.connect(NoTls) {
                Ok(client) => {
                    self.backoff.delay = RECONNECT_DELAY_MIN;
                    self.backoff.retry_at = None;
                    self.session = Some(Session {
                        client,
                        statements: HashMap::new(),
                        last_used: Instant::now(),
                    });
                }
                Err(error) => {
                    let message = describe(&error);
                    self.backoff.retry_at = Some(Instant::now() + self.backoff.delay);
                    self.backoff.delay = (self.backoff.delay * 2).min(RECONNECT_DELAY_MAX);
                    self.backoff.last_error = message.clone();
                    tracing::warn!(error = %message, "postgres: connect failed");
                    return Err(StoreError::Unavailable(message));
                }
            }
        }
        Ok(self.session.as_mut().expect("connected above"))
    }

    /// Runs one unit of work on the session and turns its failure into a
    /// [`StoreError`], dropping the session when the connection is gone. A
    /// dropped session reconnects on the next call without waiting: the
    /// backoff only starts when a connect fails.
    fn run<T>(
        &mut self,
        work: impl FnOnce(&mut Session) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let session = self.session()?;
        let result = work(session);
        session.last_used = Instant::now();
        let closed = session.client.is_closed();
        match result {
            Ok(value) => Ok(value),
            Err(Failure::Store(error)) => {
                if closed {
                    self.session = None;
                }
                Err(error)
            }
            Err(Failure::Database(error)) => {
                let (store_error, aftermath) = classify(&error);
                match aftermath {
                    _ if closed => self.session = None,
                    Aftermath::Disconnect => self.session = None,
                    Aftermath::ForgetStatements => session_statements_clear(&mut self.session),
                    Aftermath::Keep => {}
                }
                Err(store_error)
            }
        }
    }
}

fn session_statements_clear(session: &mut Option<Session>) {
    if let Some(session) = session {
        session.statements.clear();
    }
}

impl Session {
    /// Whether the session sat unused for [`ALIVE_CHECK_AFTER_IDLE`] and no
    /// longer answers an empty query. (The client only reads the socket
    /// while it waits for an answer, so a close the server sent while the
    /// session was idle is invisible without a round trip.)
    fn idle_and_dead(&mut self) -> bool {
        if self.last_used.elapsed() < ALIVE_CHECK_AFTER_IDLE {
            return false;
        }
        self.last_used = Instant::now();
        self.client.is_valid(ALIVE_CHECK_TIMEOUT).is_err()
    }

    /// The prepared statement for this SQL, preparing it on first use.
    fn statement(&mut self, sql: &'static str) -> Result<Statement, ::postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// The (version, checksum) rows, or none when the table is absent.
    fn applied(&mut self) -> Result<Vec<(i64, String)>, ::postgres::Error> {
        let exists: bool = self
            .client
            .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])?
            .get(0);
        if !exists {
            return Ok(Vec::new());
        }
        read_applied(&mut self.client)
    }

    /// Applies the first pending migration, if any, in one transaction
    /// under the migration lock. `Ok(version)` applied, `Err(version)`
    /// current at that version.
    fn migrate_step(&mut self, now_ms: i64) -> Result<Result<i64, i64>, Failure> {
        let mut transaction = self.client.transaction()?;
        // A migration may take longer than an ordinary statement, and so
        // may the wait for another process's migration.
        transaction.batch_execute("SET LOCAL statement_timeout = 0")?;
        transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])?;
        transaction.batch_execute(VERSIONS_TABLE_SQL)?;
        let applied = read_applied(&mut transaction)?;
        let pending = migrate::plan(&applied, MIGRATIONS).map_err(StoreError::from)?;
        let Some(next) = pending.first() else {
            transaction.commit()?;
            return Ok(Err(migrate::database_version(&applied)));
        };
        if let Err(error) = transaction.batch_execute(next.sql) {
            let (store_error, _) = classify(&error);
            return Err(match store_error {
                StoreError::Unavailable(_) => Failure::Database(error),
                _ => Failure::Store(
                    MigrationError::Failed { version: next.version, message: describe(&error) }
                        .into(),
                ),
            });
        }
        transaction.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at_ms) \
             VALUES ($1, $2, $3, $4)",
            &[&next.version, &next.name, &migrate::checksum(next.sql), &now_ms],
        )?;
        transaction.commit()?;
        Ok(Ok(next.version))
    }
}

fn read_applied(
    client: &mut impl ::postgres::GenericClient,
) -> Result<Vec<(i64, String)>, ::postgres::Error> {
    let rows =
        client.query("SELECT version, checksum FROM schema_migrations ORDER BY version", &[])?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// Maps a database error to the port's error and what it means for the
/// session: unique violations by constraint name to [`Conflict`];
/// connection failures, shutdowns, timeouts and exhausted resources to
/// `Unavailable`; the rest to `Internal`.
fn classify(error: &::postgres::Error) -> (StoreError, Aftermath) {
    if error.is_closed() {
        return (StoreError::Unavailable(describe(error)), Aftermath::Disconnect);
    }
    if let Some(database) = error.as_db_error() {
        return classify_database(database);
    }
    let io = std::error::Error::source(error).is_some_and(|source| source.is::<std::io::Error>());
    if io {
        (StoreError::Unavailable(describe(error)), Aftermath::Disconnect)
    } else {
        (StoreError::Internal(describe(error)), Aftermath::Keep)
    }
}

fn classify_database(error: &DbError) -> (StoreError, Aftermath) {
    let code = error.code();
    let class = &code.code()[..2];
    if *code == SqlState::UNIQUE_VIOLATION {
        if let Some(conflict) = error.constraint().and_then(unique_conflict) {
            return (StoreError::Conflict(conflict), Aftermath::Keep);
        }
    }
    let message = format!("{}: {}", code.code(), error.message());
    if class == "08"
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
    {
        return (StoreError::Unavailable(message), Aftermath::Disconnect);
    }
    if class == "53"
        || *code == SqlState::QUERY_CANCELED
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::LOCK_NOT_AVAILABLE
    {
        return (StoreError::Unavailable(message), Aftermath::Keep);
    }
    if *code == SqlState::UNIQUE_VIOLATION && error.table() == Some("match_players") {
        let message = format!("a match record repeats a seat: {message}");
        return (StoreError::Internal(message), Aftermath::Keep);
    }
    let keeps_statements = matches!(class, "22" | "23");
    let aftermath = if keeps_statements { Aftermath::Keep } else { Aftermath::ForgetStatements };
    (StoreError::Internal(message), aftermath)
}

fn unique_conflict(constraint: &str) -> Option<Conflict> {
    match constraint {
        "users_pkey" => Some(Conflict::UserId),
        "users_username_key_unique" => Some(Conflict::Username),
        "refresh_tokens_pkey" => Some(Conflict::RefreshToken),
        "matches_pkey" | "matches_room_started_unique" => Some(Conflict::Match),
        _ => None,
    }
}

/// An error's text with its causes (the server's message, the I/O error):
/// the client's own `Display` names only the kind ("error connecting to
/// server").
fn describe(error: &::postgres::Error) -> String {
    if let Some(database) = error.as_db_error() {
        return format!("{}: {}", database.code().code(), database.message());
    }
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    // Bounded: error chains are short, and a cyclic one must not hang us.
    for _ in 0..8 {
        let Some(source) = cause else { break };
        text.push_str(": ");
        text.push_str(&source.to_string());
        cause = source.source();
    }
    text
}

const USER_BY_ID: &str = "SELECT id, username, nickname, password_hash, role, created_at_ms, \
    updated_at_ms FROM users WHERE id = $1";
const USER_BY_KEY: &str = "SELECT id, username, nickname, password_hash, role, created_at_ms, \
    updated_at_ms FROM users WHERE username_key = $1";
const INSERT_USER: &str = "INSERT INTO users (id, username, username_key, nickname, \
    password_hash, role, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)";
const INSERT_PROFILE: &str = "INSERT INTO player_profiles (user_id, bio, country, \
    updated_at_ms) VALUES ($1, '', NULL, $2)";
const UPGRADE_GUEST: &str = "UPDATE users SET username = $2, username_key = $3, \
    password_hash = $4, role = 'player', updated_at_ms = $5 WHERE id = $1 AND role = 'guest' \
    RETURNING id, username, nickname, password_hash, role, created_at_ms, updated_at_ms";
const SET_ROLE: &str = "UPDATE users SET role = $2, updated_at_ms = $3 WHERE id = $1";
const SET_PASSWORD_HASH: &str = "UPDATE users SET password_hash = $2, updated_at_ms = $3 \
    WHERE id = $1 AND password_hash IS NOT NULL";
const PROFILE: &str = "SELECT u.id, u.username, u.nickname, u.role, COALESCE(p.bio, ''), \
    p.country, u.created_at_ms, COALESCE(p.updated_at_ms, u.updated_at_ms) \
    FROM users u LEFT JOIN player_profiles p ON p.user_id = u.id WHERE u.id = $1";
const SET_NICKNAME: &str = "UPDATE users SET nickname = $2, updated_at_ms = $3 WHERE id = $1";
const UPSERT_PROFILE: &str = "INSERT INTO player_profiles (user_id, bio, country, \
    updated_at_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET \
    bio = excluded.bio, country = excluded.country, updated_at_ms = excluded.updated_at_ms";
const TOKEN_BY_HASH: &str = "SELECT token_hash, user_id, family_id, issued_at_ms, \
    expires_at_ms, used_at_ms, revoked_at_ms FROM refresh_tokens WHERE token_hash = $1";
/// Locks the row so that two rotations of one token take turns: the
/// second sees the first's `used_at_ms` and reports reuse.
const TOKEN_BY_HASH_FOR_UPDATE: &str = "SELECT token_hash, user_id, family_id, issued_at_ms, \
    expires_at_ms, used_at_ms, revoked_at_ms FROM refresh_tokens WHERE token_hash = $1 \
    FOR UPDATE";
const INSERT_TOKEN: &str = "INSERT INTO refresh_tokens (token_hash, user_id, family_id, \
    issued_at_ms, expires_at_ms, used_at_ms, revoked_at_ms) VALUES ($1, $2, $3, $4, $5, NULL, NULL)";
const MARK_TOKEN_USED: &str = "UPDATE refresh_tokens SET used_at_ms = $2 WHERE token_hash = $1";
const REVOKE_FAMILY: &str = "UPDATE refresh_tokens SET revoked_at_ms = $2 \
    WHERE family_id = $1 AND revoked_at_ms IS NULL";
const INSERT_MATCH: &str = "INSERT INTO matches (id, room_id, game, mode, tournament_id, seed, \
    started_at_ms, ended_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const INSERT_SEAT: &str = "INSERT INTO match_players (match_id, seat, user_id, nickname, \
    placement, outcome, score, stats_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const ADD_STATS: &str = "INSERT INTO player_stats (user_id, game, matches, wins, losses, draws) \
    VALUES ($1, $2, 1, $3, $4, $5) ON CONFLICT (user_id, game) DO UPDATE SET \
    matches = player_stats.matches + 1, wins = player_stats.wins + excluded.wins, \
    losses = player_stats.losses + excluded.losses, draws = player_stats.draws + excluded.draws";
/// One page of a player's match ids, newest first: a backwards range scan
/// of `match_players_user_match` (`user_id = $1 AND match_id <= $2`), each
/// row joined to its match by primary key for the filters, stopping at
/// `$7` distinct matches. (GROUP BY keeps a match whose seats the account
/// held twice from showing twice; the index order satisfies it.) Public
/// for the query-plan test.
pub const PLAYER_MATCH_IDS_SQL: &str = "SELECT p.match_id FROM match_players p \
    JOIN matches m ON m.id = p.match_id \
    WHERE p.user_id = $1 AND p.match_id <= $2 \
    AND ($3::TEXT IS NULL OR m.mode = $3) AND ($4::TEXT IS NULL OR m.game = $4) \
    AND ($5::BIGINT IS NULL OR m.started_at_ms >= $5) \
    AND ($6::BIGINT IS NULL OR m.started_at_ms < $6) \
    GROUP BY p.match_id ORDER BY p.match_id DESC LIMIT $7";
/// The matches whose ids are in the array `$1`, each row one seat (or a
/// match without seats: NULL seat columns), newest match first, seats in
/// order.
const MATCHES_WITH_SEATS: &str = "SELECT m.id, m.room_id, m.game, m.mode, m.tournament_id, \
    m.seed, m.started_at_ms, m.ended_at_ms, p.seat, p.user_id, p.nickname, p.placement, \
    p.outcome, p.score, p.stats_json \
    FROM matches m LEFT JOIN match_players p ON p.match_id = m.id \
    WHERE m.id = ANY($1) ORDER BY m.id DESC, p.seat";
const INITIAL_RATING: &str = "INSERT INTO ratings (user_id, game, rating, deviation, \
    volatility, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6) \
    ON CONFLICT (user_id, game) DO NOTHING";
const STATS: &str = "SELECT s.game, s.matches, s.wins, s.losses, s.draws, r.rating, \
    r.deviation, r.volatility FROM player_stats s LEFT JOIN ratings r \
    ON r.user_id = s.user_id AND r.game = s.game WHERE s.user_id = $1 ORDER BY s.game";
const SET_RATING: &str = "INSERT INTO ratings (user_id, game, rating, deviation, volatility, \
    updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, game) DO UPDATE SET \
    rating = excluded.rating, deviation = excluded.deviation, \
    volatility = excluded.volatility, updated_at_ms = excluded.updated_at_ms";
const LEADERBOARD: &str = "SELECT r.user_id, u.nickname, r.rating, r.deviation, r.volatility, \
    COALESCE(s.matches, 0) FROM ratings r JOIN users u ON u.id = r.user_id \
    LEFT JOIN player_stats s ON s.user_id = r.user_id AND s.game = r.game \
    WHERE r.game = $1 ORDER BY r.rating DESC, r.deviation ASC, r.user_id ASC \
    LIMIT $2 OFFSET $3";

fn role_from_text(text: &str) -> Result<Role, Failure> {
    Role::parse(text)
        .ok_or_else(|| Failure::Store(StoreError::Internal(format!("unknown role {text:?}"))))
}

fn user_from_row(row: &Row) -> Result<User, Failure> {
    Ok(User {
        id: row.try_get(0)?,
        username: row.try_get(1)?,
        nickname: row.try_get(2)?,
        password_hash: row.try_get(3)?,
        role: role_from_text(row.try_get(4)?)?,
        created_at_ms: row.try_get(5)?,
        updated_at_ms: row.try_get(6)?,
    })
}

fn token_from_row(row: &Row) -> Result<RefreshToken, Failure> {
    Ok(RefreshToken {
        token_hash: row.try_get(0)?,
        user_id: row.try_get(1)?,
        family_id: row.try_get(2)?,
        issued_at_ms: row.try_get(3)?,
        expires_at_ms: row.try_get(4)?,
        used_at_ms: row.try_get(5)?,
        revoked_at_ms: row.try_get(6)?,
    })
}

fn profile_from_row(row: &Row) -> Result<Profile, Failure> {
    Ok(Profile {
        user_id: row.try_get(0)?,
        username: row.try_get(1)?,
        nickname: row.try_get(2)?,
        role: role_from_text(row.try_get(3)?)?,
        bio: row.try_get(4)?,
        country: row.try_get(5)?,
        created_at_ms: row.try_get(6)?,
        updated_at_ms: row.try_get(7)?,
    })
}

fn stats_from_row(row: &Row) -> Result<GameStats, Failure> {
    let rating = Rating::from_columns(row.try_get(5)?, row.try_get(6)?, row.try_get(7)?);
    Ok(GameStats {
        game: row.try_get(0)?,
        matches: row.try_get(1)?,
        wins: row.try_get(2)?,
        losses: row.try_get(3)?,
        draws: row.try_get(4)?,
        rating,
    })
}

/// Matches and their seats from [`MATCHES_WITH_SEATS`] rows (one per seat,
/// a match's rows together).
fn matches_from_rows(rows: &[Row]) -> Result<Vec<MatchRecord>, Failure> {
    let mut matches: Vec<MatchRecord> = Vec::new();
    for row in rows {
        let id: i64 = row.try_get(0)?;
        if matches.last().is_none_or(|last| last.id != id) {
            matches.push(MatchRecord {
                id,
                room_id: row.try_get(1)?,
                game: row.try_get(2)?,
                mode: row.try_get(3)?,
                tournament_id: row.try_get(4)?,
                seed: row.try_get(5)?,
                started_at_ms: row.try_get(6)?,
                ended_at_ms: row.try_get(7)?,
                players: Vec::new(),
            });
        }
        let Some(seat) = row.try_get::<_, Option<i32>>(8)? else { continue };
        let outcome: &str = row.try_get(12)?;
        let outcome = Outcome::parse(outcome).ok_or_else(|| {
            Failure::Store(StoreError::Internal(format!("unknown outcome {outcome:?}")))
        })?;
        matches.last_mut().expect("pushed above").players.push(MatchPlayer {
            seat,
            user_id: row.try_get(9)?,
            nickname: row.try_get(10)?,
            placement: row.try_get(11)?,
            outcome,
            score: row.try_get(13)?,
            stats_json: row.try_get(14)?,
        });
    }
    Ok(matches)
}

impl Store for PostgresStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn migrate(&mut self, now_ms: i64) -> Result<SchemaStatus, StoreError> {
        migrate::run_steps(|| {
            self.run(|session| {
                let step = session.migrate_step(now_ms);
                if matches!(step, Ok(Ok(_))) {
                    session.statements.clear();
                }
                step
            })
        })
    }

    fn schema_status(&mut self) -> Result<SchemaStatus, StoreError> {
        let applied = self.run(|session| Ok(session.applied()?))?;
        migrate::plan(&applied, MIGRATIONS)?;
        Ok(migrate::status(&applied))
    }

    fn create_user(&mut self, user: &NewUser) -> Result<User, StoreError> {
        self.run(|session| {
            let insert_user = session.statement(INSERT_USER)?;
            let insert_profile = session.statement(INSERT_PROFILE)?;
            let key = user.username.as_deref().map(username_key);
            let mut transaction = session.client.transaction()?;
            transaction.execute(
                &insert_user,
                &[
                    &user.id,
                    &user.username,
                    &key,
                    &user.nickname,
                    &user.password_hash,
                    &user.role.as_str(),
                    &user.now_ms,
                ],
            )?;
            transaction.execute(&insert_profile, &[&user.id, &user.now_ms])?;
            transaction.commit()?;
            Ok(User {
                id: user.id,
                username: user.username.clone(),
                nickname: user.nickname.clone(),
                password_hash: user.password_hash.clone(),
                role: user.role,
                created_at_ms: user.now_ms,
                updated_at_ms: user.now_ms,
            })
        })
    }

    fn user_by_id(&mut self, id: i64) -> Result<Option<User>, StoreError> {
        self.run(|session| {
            let statement = session.statement(USER_BY_ID)?;
            let row = session.client.query_opt(&statement, &[&id])?;
            row.as_ref().map(user_from_row).transpose()
        })
    }

    fn user_by_username(&mut self, username: &str) -> Result<Option<User>, StoreError> {
        let key = username_key(username);
        self.run(|session| {
            let statement = session.statement(USER_BY_KEY)?;
            let row = session.client.query_opt(&statement, &[&key])?;
            row.as_ref().map(user_from_row).transpose()
        })
    }

    fn upgrade_guest(
        &mut self,
        id: i64,
        username: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<Option<User>, StoreError> {
        let key = username_key(username);
        self.run(|session| {
            let statement = session.statement(UPGRADE_GUEST)?;
            let row = session
                .client
                .query_opt(&statement, &[&id, &username, &key, &password_hash, &now_ms])?;
            row.as_ref().map(user_from_row).transpose()
        })
    }

    fn set_role(&mut self, id: i64, role: Role, now_ms: i64) -> Result<bool, StoreError> {
        self.run(|session| {
            let statement = session.statement(SET_ROLE)?;
            Ok(session.client.execute(&statement, &[&id, &role.as_str(), &now_ms])? == 1)
        })
    }

    fn set_password_hash(
        &mut self,
        id: i64,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.run(|session| {
            let statement = session.statement(SET_PASSWORD_HASH)?;
            Ok(session.client.execute(&statement, &[&id, &password_hash, &now_ms])? == 1)
        })
    }

    fn profile(&mut self, user_id: i64) -> Result<Option<Profile>, StoreError> {
        self.run(|session| {
            let statement = session.statement(PROFILE)?;
            let row = session.client.query_opt(&statement, &[&user_id])?;
            row.as_ref().map(profile_from_row).transpose()
        })
    }

    fn update_profile(
        &mut self,
        user_id: i64,
        fields: &ProfileFields,
        now_ms: i64,
    ) -> Result<Option<Profile>, StoreError> {
        self.run(|session| {
            let set_nickname = session.statement(SET_NICKNAME)?;
            let upsert = session.statement(UPSERT_PROFILE)?;
            let profile = session.statement(PROFILE)?;
            let mut transaction = session.client.transaction()?;
            if transaction.execute(&set_nickname, &[&user_id, &fields.nickname, &now_ms])? == 0 {
                return Ok(None);
            }
            transaction.execute(&upsert, &[&user_id, &fields.bio, &fields.country, &now_ms])?;
            let row = transaction.query_one(&profile, &[&user_id])?;
            let profile = profile_from_row(&row)?;
            transaction.commit()?;
            Ok(Some(profile))
        })
    }

    fn insert_refresh_token(&mut self, token: &RefreshToken) -> Result<(), StoreError> {
        self.run(|session| {
            let statement = session.statement(INSERT_TOKEN)?;
            session.client.execute(
                &statement,
                &[
                    &token.token_hash,
                    &token.user_id,
                    &token.family_id,
                    &token.issued_at_ms,
                    &token.expires_at_ms,
                ],
            )?;
            Ok(())
        })
    }

    fn rotate_refresh_token(
        &mut self,
        old_hash: &str,
        new: &RefreshToken,
        now_ms: i64,
    ) -> Result<Rotation, StoreError> {
        self.run(|session| {
            let select = session.statement(TOKEN_BY_HASH_FOR_UPDATE)?;
            let revoke = session.statement(REVOKE_FAMILY)?;
            let mark_used = session.statement(MARK_TOKEN_USED)?;
            let insert = session.statement(INSERT_TOKEN)?;
            let mut transaction = session.client.transaction()?;
            let Some(row) = transaction.query_opt(&select, &[&old_hash])? else {
                return Ok(Rotation::Unknown);
            };
            let old = token_from_row(&row)?;
            let rotation = if old.revoked_at_ms.is_some() {
                Rotation::Dead
            } else if old.used_at_ms.is_some() {
                // Checked before expiry: a used token shown again means a
                // copy is out there, however old it is.
                transaction.execute(&revoke, &[&old.family_id, &now_ms])?;
                Rotation::Reused { user_id: old.user_id, family_id: old.family_id }
            } else if old.expires_at_ms <= now_ms {
                Rotation::Dead
            } else {
                transaction.execute(&mark_used, &[&old_hash, &now_ms])?;
                transaction.execute(
                    &insert,
                    &[
                        &new.token_hash,
                        &old.user_id,
                        &old.family_id,
                        &new.issued_at_ms,
                        &new.expires_at_ms,
                    ],
                )?;
                Rotation::Rotated { user_id: old.user_id }
            };
            transaction.commit()?;
            Ok(rotation)
        })
    }

    fn revoke_refresh_family(
        &mut self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.run(|session| {
            let select = session.statement(TOKEN_BY_HASH)?;
            let revoke = session.statement(REVOKE_FAMILY)?;
            // A token's family never changes, so the two statements need
            // no transaction between them.
            let Some(row) = session.client.query_opt(&select, &[&token_hash])? else {
                return Ok(None);
            };
            let token = token_from_row(&row)?;
            session.client.execute(&revoke, &[&token.family_id, &now_ms])?;
            Ok(Some(token.user_id))
        })
    }

    fn refresh_token(&mut self, token_hash: &str) -> Result<Option<RefreshToken>, StoreError> {
        self.run(|session| {
            let statement = session.statement(TOKEN_BY_HASH)?;
            let row = session.client.query_opt(&statement, &[&token_hash])?;
            row.as_ref().map(token_from_row).transpose()
        })
    }

    fn record_match(&mut self, record: &MatchRecord) -> Result<(), StoreError> {
        self.run(|session| {
            let statements = MatchStatements {
                seat: session.statement(INSERT_SEAT)?,
                stats: session.statement(ADD_STATS)?,
                rating: session.statement(INITIAL_RATING)?,
            };
            let insert_match = session.statement(INSERT_MATCH)?;
            let mut transaction = session.client.transaction()?;
            transaction.execute(
                &insert_match,
                &[
                    &record.id,
                    &record.room_id,
                    &record.game,
                    &record.mode,
                    &record.tournament_id,
                    &record.seed,
                    &record.started_at_ms,
                    &record.ended_at_ms,
                ],
            )?;
            for player in &record.players {
                record_seat(&mut transaction, &statements, record, player)?;
            }
            transaction.commit()?;
            Ok(())
        })
    }

    fn player_matches(
        &mut self,
        user_id: i64,
        query: &HistoryQuery,
    ) -> Result<Vec<MatchRecord>, StoreError> {
        let Some((id_max, rows_max)) = query.page_bounds() else { return Ok(Vec::new()) };
        let rows_max = i64::from(rows_max);
        self.run(|session| {
            let page = session.statement(PLAYER_MATCH_IDS_SQL)?;
            let load = session.statement(MATCHES_WITH_SEATS)?;
            let ids: Vec<i64> = session
                .client
                .query(
                    &page,
                    &[
                        &user_id,
                        &id_max,
                        &query.mode,
                        &query.game,
                        &query.from_ms,
                        &query.to_ms,
                        &rows_max,
                    ],
                )?
                .iter()
                .map(|row| row.try_get(0))
                .collect::<Result<_, _>>()?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            matches_from_rows(&session.client.query(&load, &[&ids])?)
        })
    }

    fn match_by_id(&mut self, id: i64) -> Result<Option<MatchRecord>, StoreError> {
        self.run(|session| {
            let load = session.statement(MATCHES_WITH_SEATS)?;
            let rows = session.client.query(&load, &[&vec![id]])?;
            Ok(matches_from_rows(&rows)?.pop())
        })
    }

    fn stats(&mut self, user_id: i64) -> Result<Vec<GameStats>, StoreError> {
        self.run(|session| {
            let statement = session.statement(STATS)?;
            let rows = session.client.query(&statement, &[&user_id])?;
            rows.iter().map(stats_from_row).collect()
        })
    }

    fn set_rating(
        &mut self,
        user_id: i64,
        game: &str,
        rating: Rating,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.run(|session| {
            let statement = session.statement(SET_RATING)?;
            session.client.execute(
                &statement,
                &[&user_id, &game, &rating.rating, &rating.deviation, &rating.volatility, &now_ms],
            )?;
            Ok(())
        })
    }

    fn leaderboard(
        &mut self,
        game: &str,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<LeaderboardEntry>, StoreError> {
        let limit = i64::from(limit.min(LEADERBOARD_PAGE_MAX));
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        self.run(|session| {
            let statement = session.statement(LEADERBOARD)?;
            let rows = session.client.query(&statement, &[&game, &limit, &offset])?;
            let mut entries = Vec::with_capacity(rows.len());
            for (index, row) in rows.iter().enumerate() {
                entries.push(LeaderboardEntry {
                    rank: offset.saturating_add(index as i64 + 1),
                    user_id: row.try_get(0)?,
                    nickname: row.try_get(1)?,
                    rating: Rating {
                        rating: row.try_get(2)?,
                        deviation: row.try_get(3)?,
                        volatility: row.try_get(4)?,
                    },
                    matches: row.try_get(5)?,
                });
            }
            Ok(entries)
        })
    }
}

/// The statements one seat of `record_match` runs, prepared before the
/// transaction starts.
struct MatchStatements {
    seat: Statement,
    stats: Statement,
    rating: Statement,
}

/// One seat: its row, and for an account in a match that counts in stats
/// its stats and (first time in this game) its initial rating.
fn record_seat(
    transaction: &mut ::postgres::Transaction<'_>,
    statements: &MatchStatements,
    record: &MatchRecord,
    player: &MatchPlayer,
) -> Result<(), Failure> {
    transaction.execute(
        &statements.seat,
        &[
            &record.id,
            &player.seat,
            &player.user_id,
            &player.nickname,
            &player.placement,
            &player.outcome.as_str(),
            &player.score,
            &player.stats_json,
        ],
    )?;
    let Some(user_id) = player.user_id.filter(|_| record.counts_in_stats()) else {
        return Ok(());
    };
    let (wins, losses, draws) = player.outcome.counts();
    transaction.execute(&statements.stats, &[&user_id, &record.game, &wins, &losses, &draws])?;
    let initial = Rating::INITIAL;
    transaction.execute(
        &statements.rating,
        &[
            &user_id,
            &record.game,
            &initial.rating,
            &initial.deviation,
            &initial.volatility,
            &record.ended_at_ms,
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_fills_in_timeouts_and_keeps_given_options() {
        let mut config = ::postgres::Config::new();
        config.host("127.0.0.1").user("ludus").options("-c search_path=s1");
        let store = PostgresStore::new(config);
        let config = store.config();
        assert_eq!(config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(config.get_application_name(), Some("ludus"));
        assert_eq!(config.get_options(), Some("-c search_path=s1 -c statement_timeout=5000"));
        assert!(!store.is_connected());

        let store = PostgresStore::from_url(
            "postgres://u@h/db?options=-c%20statement_timeout%3D100&connect_timeout=1",
        )
        .unwrap();
        assert_eq!(store.config().get_options(), Some("-c statement_timeout=100"));
        assert_eq!(store.config().get_connect_timeout(), Some(&Duration::from_secs(1)));
        assert!(matches!(
            PostgresStore::from_url("postgres://h:notaport/"),
            Err(StoreError::Internal(_))
        ));
    }

    #[test]
    fn unique_constraints_map_to_conflicts() {
        assert_eq!(unique_conflict("users_pkey"), Some(Conflict::UserId));
        assert_eq!(unique_conflict("users_username_key_unique"), Some(Conflict::Username));
        assert_eq!(unique_conflict("refresh_tokens_pkey"), Some(Conflict::RefreshToken));
        assert_eq!(unique_conflict("matches_room_started_unique"), Some(Conflict::Match));
        assert_eq!(unique_conflict("match_players_pkey"), None);
    }

    /// Every constraint name the mapping knows is declared by a migration,
    /// so a renamed constraint cannot silently turn conflicts into
    /// internal errors.
    #[test]
    fn mapped_constraints_exist_in_the_migrations() {
        let sql: String = MIGRATIONS.iter().map(|migration| migration.sql).collect();
        for name in [
            "users_pkey",
            "users_username_key_unique",
            "refresh_tokens_pkey",
            "matches_pkey",
            "matches_room_started_unique",
        ] {
            assert!(sql.contains(&format!("CONSTRAINT {name} ")), "{name}");
            assert!(unique_conflict(name).is_some(), "{name}");
        }
    }
}
