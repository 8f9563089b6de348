//! The embedded adapter: one SQLite file under the data directory, for a
//! single server without Postgres.
//!
//! Owns one `rusqlite::Connection` (WAL, `synchronous = FULL`, foreign keys
//! on, 5 s busy timeout) and its cache of prepared statements. Every write
//! that spans several statements runs in a `BEGIN IMMEDIATE` transaction:
//! taking the write lock up front lets the busy timeout wait for another
//! writer, where a read transaction upgraded later would fail at once.
//! `synchronous = FULL` makes every commit durable before `Ok` is returned
//! (WAL with `NORMAL` could lose the last commits on power loss).

use std::path::Path;
use std::time::Duration;

use rusqlite::types::Type;
use rusqlite::{
    ffi, params, Connection, ErrorCode, OptionalExtension, Row, Transaction, TransactionBehavior,
};

use super::migrate::{self, MIGRATIONS, VERSIONS_TABLE_SQL};
use super::{
    username_key, Conflict, GameStats, HistoryQuery, LeaderboardEntry, MatchPlayer, MatchRecord,
    NewUser, Outcome, Profile, ProfileFields, Rating, RefreshToken, Role, Rotation, SchemaStatus,
    Store, StoreError, User, LEADERBOARD_PAGE_MAX,
};

/// The database file's name inside the data directory.
pub const SQLITE_FILE_NAME: &str = "ludus.sqlite3";
/// How long a statement waits for another connection's write lock before
/// the call fails with [`StoreError::Unavailable`].
pub const BUSY_TIMEOUT: Duration = Duration::from_millis(5_000);
/// Prepared statements kept per connection; more than this adapter has, so
/// none is ever prepared twice.
const STATEMENT_CACHE_CAPACITY: usize = 64;

const USER_COLUMNS: &str =
    "id, username, nickname, password_hash, role, created_at_ms, updated_at_ms";
const TOKEN_COLUMNS: &str =
    "token_hash, user_id, family_id, issued_at_ms, expires_at_ms, used_at_ms, revoked_at_ms";

/// One page of a player's match ids, newest first: a backwards range scan
/// of `match_players_user_match` (`user_id = ?1 AND match_id <= ?2`), each
/// row joined to its match by primary key for the filters, stopping at
/// `?7` distinct matches. (GROUP BY keeps a match whose seats the account
/// held twice from showing twice; the index order satisfies it, so
/// nothing is sorted.) Public for the query-plan test.
pub const PLAYER_MATCH_IDS_SQL: &str = "SELECT p.match_id FROM match_players p \
    JOIN matches m ON m.id = p.match_id \
    WHERE p.user_id = ?1 AND p.match_id <= ?2 \
    AND (?3 IS NULL OR m.mode = ?3) AND (?4 IS NULL OR m.game = ?4) \
    AND (?5 IS NULL OR m.started_at_ms >= ?5) AND (?6 IS NULL OR m.started_at_ms < ?6) \
    GROUP BY p.match_id ORDER BY p.match_id DESC LIMIT ?7";
/// The matches whose ids are in the JSON array `?1`, each row one seat
/// (or a match without seats: NULL seat columns), newest match first,
/// seats in order.
const MATCHES_WITH_SEATS_SQL: &str = "SELECT m.id, m.room_id, m.game, m.mode, \
    m.tournament_id, m.seed, m.started_at_ms, m.ended_at_ms, p.seat, p.user_id, p.nickname, \
    p.placement, p.outcome, p.score, p.stats_json \
    FROM matches m LEFT JOIN match_players p ON p.match_id = m.id \
    WHERE m.id IN (SELECT value FROM json_each(?1)) ORDER BY m.id DESC, p.seat";

/// A [`Store`] on one SQLite connection.
pub struct SqliteStore {
    connection: Connection,
}

impl SqliteStore {
    /// Opens (creating if absent) the database file at `path`; its directory
    /// must exist. Migrations are not applied here.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let connection = Connection::open(path).map_err(|error| {
            StoreError::Internal(format!("opening the SQLite database {}: {error}", path.display()))
        })?;
        let journal_mode: String = connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(store_error)?;
        if !journal_mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Internal(format!(
                "{} cannot use write-ahead logging (journal_mode is {journal_mode})",
                path.display()
            )));
        }
        SqliteStore::configure(connection)
    }

    /// A private database that lives as long as this store (tests).
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        SqliteStore::configure(Connection::open_in_memory().map_err(store_error)?)
    }

    fn configure(connection: Connection) -> Result<SqliteStore, StoreError> {
        connection.pragma_update(None, "synchronous", "FULL").map_err(store_error)?;
        connection.pragma_update(None, "foreign_keys", "ON").map_err(store_error)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(store_error)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        let foreign_keys: i64 = connection
            .query_row("PRAGMA foreign_keys", [], |row| row.get(0))
            .map_err(store_error)?;
        if foreign_keys != 1 {
            return Err(StoreError::Internal("SQLite refused to enforce foreign keys".to_owned()));
        }
        Ok(SqliteStore { connection })
    }

    /// Runs SQL text as is, outside the port (tests and tools only).
    pub fn execute_batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.connection.execute_batch(sql).map_err(store_error)
    }

    /// The first column of the first row of a query, as an integer (tests
    /// and tools only).
    pub fn query_i64(&mut self, sql: &str) -> Result<i64, StoreError> {
        self.connection.query_row(sql, [], |row| row.get(0)).map_err(store_error)
    }

    fn write_transaction(&mut self) -> Result<Transaction<'_>, StoreError> {
        self.connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(store_error)
    }

    fn user_where(
        &mut self,
        condition: &str,
        key: &dyn rusqlite::ToSql,
    ) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {condition}");
        let mut statement = self.connection.prepare_cached(&sql).map_err(store_error)?;
        statement.query_row([key], user_from_row).optional().map_err(store_error)
    }

    /// Applies the first pending migration, if any, in one transaction.
    /// Returns the version applied, or `None` with the database's version
    /// when it is current.
    fn migrate_step(&mut self, now_ms: i64) -> Result<Result<i64, i64>, StoreError> {
        let transaction = self.write_transaction()?;
        transaction.execute_batch(VERSIONS_TABLE_SQL).map_err(store_error)?;
        let applied = read_applied(&transaction)?;
        let pending = migrate::plan(&applied, MIGRATIONS)?;
        let Some(next) = pending.first() else {
            return Ok(Err(migrate::database_version(&applied)));
        };
        transaction.execute_batch(next.sql).map_err(|error| match store_error(error) {
            StoreError::Unavailable(message) => StoreError::Unavailable(message),
            other => migrate::MigrationError::Failed {
                version: next.version,
                message: other.to_string(),
            }
            .into(),
        })?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at_ms) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![next.version, next.name, migrate::checksum(next.sql), now_ms],
            )
            .map_err(store_error)?;
        transaction.commit().map_err(store_error)?;
        Ok(Ok(next.version))
    }
}

/// The (version, checksum) rows of `schema_migrations`.
fn read_applied(connection: &Connection) -> Result<Vec<(i64, String)>, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT version, checksum FROM schema_migrations ORDER BY version")
        .map_err(store_error)?;
    let rows =
        statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).map_err(store_error)?;
    rows.collect::<Result<_, _>>().map_err(store_error)
}

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        username: row.get(1)?,
        nickname: row.get(2)?,
        password_hash: row.get(3)?,
        role: role_from_text(&row.get::<_, String>(4)?, 4)?,
        created_at_ms: row.get(5)?,
        updated_at_ms: row.get(6)?,
    })
}

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<RefreshToken> {
    Ok(RefreshToken {
        token_hash: row.get(0)?,
        user_id: row.get(1)?,
        family_id: row.get(2)?,
        issued_at_ms: row.get(3)?,
        expires_at_ms: row.get(4)?,
        used_at_ms: row.get(5)?,
        revoked_at_ms: row.get(6)?,
    })
}

fn role_from_text(text: &str, column: usize) -> rusqlite::Result<Role> {
    Role::parse(text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            Type::Text,
            format!("unknown role {text:?}").into(),
        )
    })
}

/// Maps a SQLite error: a broken unique rule to the [`Conflict`] it means
/// (SQLite names the table and columns, "UNIQUE constraint failed:
/// users.username_key"), a lock held too long to `Unavailable`, anything
/// else to `Internal`.
fn store_error(error: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, message) = &error {
        match failure.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return StoreError::Unavailable(error.to_string())
            }
            ErrorCode::ConstraintViolation
                if matches!(
                    failure.extended_code,
                    ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                ) =>
            {
                if let Some(conflict) = message.as_deref().and_then(unique_conflict) {
                    return StoreError::Conflict(conflict);
                }
            }
            _ => {}
        }
    }
    StoreError::Internal(error.to_string())
}

fn unique_conflict(message: &str) -> Option<Conflict> {
    let columns = message.strip_prefix("UNIQUE constraint failed: ")?;
    match columns.split(", ").next()? {
        "users.id" => Some(Conflict::UserId),
        "users.username_key" => Some(Conflict::Username),
        "refresh_tokens.token_hash" => Some(Conflict::RefreshToken),
        "matches.id" | "matches.room_id" => Some(Conflict::Match),
        _ => None,
    }
}

impl Store for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn migrate(&mut self, now_ms: i64) -> Result<SchemaStatus, StoreError> {
        migrate::run_steps(|| self.migrate_step(now_ms))
    }

    fn schema_status(&mut self) -> Result<SchemaStatus, StoreError> {
        let tables: i64 = self
            .connection
            .prepare_cached(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
            )
            .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
            .map_err(store_error)?;
        let applied = if tables == 0 { Vec::new() } else { read_applied(&self.connection)? };
        migrate::plan(&applied, MIGRATIONS)?;
        Ok(migrate::status(&applied))
    }

    fn create_user(&mut self, user: &NewUser) -> Result<User, StoreError> {
        let transaction = self.write_transaction()?;
        transaction
            .prepare_cached(
                "INSERT INTO users (id, username, username_key, nickname, password_hash, role, \
                 created_at_ms, updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    user.id,
                    user.username,
                    user.username.as_deref().map(username_key),
                    user.nickname,
                    user.password_hash,
                    user.role.as_str(),
                    user.now_ms,
                ])
            })
            .map_err(store_error)?;
        transaction
            .prepare_cached(
                "INSERT INTO player_profiles (user_id, bio, country, updated_at_ms) \
                 VALUES (?1, '', NULL, ?2)",
            )
            .and_then(|mut statement| statement.execute(params![user.id, user.now_ms]))
            .map_err(store_error)?;
        transaction.commit().map_err(store_error)?;
        Ok(User {
            id: user.id,
            username: user.username.clone(),
            nickname: user.nickname.clone(),
            password_hash: user.password_hash.clone(),
            role: user.role,
            created_at_ms: user.now_ms,
            updated_at_ms: user.now_ms,
        })
    }

    fn user_by_id(&mut self, id: i64) -> Result<Option<User>, StoreError> {
        self.user_where("id = ?1", &id)
    }

    fn user_by_username(&mut self, username: &str) -> Result<Option<User>, StoreError> {
        self.user_where("username_key = ?1", &username_key(username))
    }

    fn upgrade_guest(
        &mut self,
        id: i64,
        username: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<Option<User>, StoreError> {
        let sql = format!(
            "UPDATE users SET username = ?2, username_key = ?3, password_hash = ?4, \
             role = 'player', updated_at_ms = ?5 WHERE id = ?1 AND role = 'guest' \
             RETURNING {USER_COLUMNS}"
        );
        let mut statement = self.connection.prepare_cached(&sql).map_err(store_error)?;
        statement
            .query_row(
                params![id, username, username_key(username), password_hash, now_ms],
                user_from_row,
            )
            .optional()
            .map_err(store_error)
    }

    fn set_role(&mut self, id: i64, role: Role, now_ms: i64) -> Result<bool, StoreError> {
        let mut statement = self
            .connection
            .prepare_cached("UPDATE users SET role = ?2, updated_at_ms = ?3 WHERE id = ?1")
            .map_err(store_error)?;
        let changed = statement.execute(params![id, role.as_str(), now_ms]).map_err(store_error)?;
        Ok(changed == 1)
    }

    fn set_password_hash(
        &mut self,
        id: i64,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut statement = self
            .connection
            .prepare_cached(
                "UPDATE users SET password_hash = ?2, updated_at_ms = ?3 \
                 WHERE id = ?1 AND password_hash IS NOT NULL",
            )
            .map_err(store_error)?;
        let changed = statement.execute(params![id, password_hash, now_ms]).map_err(store_error)?;
        Ok(changed == 1)
    }

    fn profile(&mut self, user_id: i64) -> Result<Option<Profile>, StoreError> {
        profile_of(&self.connection, user_id)
    }

    fn update_profile(
        &mut self,
        user_id: i64,
        fields: &ProfileFields,
        now_ms: i64,
    ) -> Result<Option<Profile>, StoreError> {
        let transaction = self.write_transaction()?;
        let changed = transaction
            .prepare_cached("UPDATE users SET nickname = ?2, updated_at_ms = ?3 WHERE id = ?1")
            .and_then(|mut statement| statement.execute(params![user_id, fields.nickname, now_ms]))
            .map_err(store_error)?;
        if changed == 0 {
            return Ok(None);
        }
        transaction
            .prepare_cached(
                "INSERT INTO player_profiles (user_id, bio, country, updated_at_ms) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (user_id) DO UPDATE SET \
                 bio = excluded.bio, country = excluded.country, \
                 updated_at_ms = excluded.updated_at_ms",
            )
            .and_then(|mut statement| {
                statement.execute(params![user_id, fields.bio, fields.country, now_ms])
            })
            .map_err(store_error)?;
        let profile = profile_of(&transaction, user_id)?;
        transaction.commit().map_err(store_error)?;
        Ok(profile)
    }

    fn insert_refresh_token(&mut self, token: &RefreshToken) -> Result<(), StoreError> {
        insert_token(&self.connection, token, &token.family_id, token.user_id)
    }

    fn rotate_refresh_token(
        &mut self,
        old_hash: &str,
        new: &RefreshToken,
        now_ms: i64,
    ) -> Result<Rotation, StoreError> {
        let transaction = self.write_transaction()?;
        let Some(old) = token_by_hash(&transaction, old_hash)? else {
            return Ok(Rotation::Unknown);
        };
        let rotation = if old.revoked_at_ms.is_some() {
            Rotation::Dead
        } else if old.used_at_ms.is_some() {
            // Checked before expiry: a used token shown again means a copy
            // is out there, however old it is.
            revoke_family(&transaction, &old.family_id, now_ms)?;
            Rotation::Reused { user_id: old.user_id, family_id: old.family_id }
        } else if old.expires_at_ms <= now_ms {
            Rotation::Dead
        } else {
            transaction
                .prepare_cached("UPDATE refresh_tokens SET used_at_ms = ?2 WHERE token_hash = ?1")
                .and_then(|mut statement| statement.execute(params![old_hash, now_ms]))
                .map_err(store_error)?;
            insert_token(&transaction, new, &old.family_id, old.user_id)?;
            Rotation::Rotated { user_id: old.user_id }
        };
        transaction.commit().map_err(store_error)?;
        Ok(rotation)
    }

    fn revoke_refresh_family(
        &mut self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let transaction = self.write_transaction()?;
        let Some(token) = token_by_hash(&transaction, token_hash)? else {
            return Ok(None);
        };
        revoke_family(&transaction, &token.family_id, now_ms)?;
        transaction.commit().map_err(store_error)?;
        Ok(Some(token.user_id))
    }

    fn refresh_token(&mut self, token_hash: &str) -> Result<Option<RefreshToken>, StoreError> {
        token_by_hash(&self.connection, token_hash)
    }

    fn record_match(&mut self, record: &MatchRecord) -> Result<(), StoreError> {
        let transaction = self.write_transaction()?;
        transaction
            .prepare_cached(
                "INSERT INTO matches (id, room_id, game, mode, tournament_id, seed, \
                 started_at_ms, ended_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    record.id,
                    record.room_id,
                    record.game,
                    record.mode,
                    record.tournament_id,
                    record.seed,
                    record.started_at_ms,
                    record.ended_at_ms,
                ])
            })
            .map_err(store_error)?;
        for player in &record.players {
            record_seat(&transaction, record, player)?;
        }
        transaction.commit().map_err(store_error)
    }

    fn player_matches(
        &mut self,
        user_id: i64,
        query: &HistoryQuery,
    ) -> Result<Vec<MatchRecord>, StoreError> {
        let Some((id_max, rows_max)) = query.page_bounds() else { return Ok(Vec::new()) };
        let mut statement =
            self.connection.prepare_cached(PLAYER_MATCH_IDS_SQL).map_err(store_error)?;
        let rows = statement
            .query_map(
                params![
                    user_id,
                    id_max,
                    query.mode,
                    query.game,
                    query.from_ms,
                    query.to_ms,
                    rows_max
                ],
                |row| row.get::<_, i64>(0),
            )
            .map_err(store_error)?;
        let ids: Vec<i64> = rows.collect::<Result<_, _>>().map_err(store_error)?;
        drop(statement);
        matches_with_seats(&self.connection, &ids)
    }

    fn match_by_id(&mut self, id: i64) -> Result<Option<MatchRecord>, StoreError> {
        Ok(matches_with_seats(&self.connection, &[id])?.pop())
    }

    fn stats(&mut self, user_id: i64) -> Result<Vec<GameStats>, StoreError> {
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT s.game, s.matches, s.wins, s.losses, s.draws, \
                 r.rating, r.deviation, r.volatility \
                 FROM player_stats s LEFT JOIN ratings r \
                 ON r.user_id = s.user_id AND r.game = s.game \
                 WHERE s.user_id = ?1 ORDER BY s.game",
            )
            .map_err(store_error)?;
        let rows = statement
            .query_map([user_id], |row| {
                let rating = Rating::from_columns(row.get(5)?, row.get(6)?, row.get(7)?);
                Ok(GameStats {
                    game: row.get(0)?,
                    matches: row.get(1)?,
                    wins: row.get(2)?,
                    losses: row.get(3)?,
                    draws: row.get(4)?,
                    rating,
                })
            })
            .map_err(store_error)?;
        rows.collect::<Result<_, _>>().map_err(store_error)
    }

    fn set_rating(
        &mut self,
        user_id: i64,
        game: &str,
        rating: Rating,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut statement = self
            .connection
            .prepare_cached(
                "INSERT INTO ratings (user_id, game, rating, deviation, volatility, updated_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (user_id, game) DO UPDATE SET \
                 rating = excluded.rating, deviation = excluded.deviation, \
                 volatility = excluded.volatility, updated_at_ms = excluded.updated_at_ms",
            )
            .map_err(store_error)?;
        statement
            .execute(params![
                user_id,
                game,
                rating.rating,
                rating.deviation,
                rating.volatility,
                now_ms
            ])
            .map_err(store_error)?;
        Ok(())
    }

    fn leaderboard(
        &mut self,
        game: &str,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<LeaderboardEntry>, StoreError> {
        let limit = i64::from(limit.min(LEADERBOARD_PAGE_MAX));
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT r.user_id, u.nickname, r.rating, r.deviation, r.volatility, \
                 COALESCE(s.matches, 0) \
                 FROM ratings r JOIN users u ON u.id = r.user_id \
                 LEFT JOIN player_stats s ON s.user_id = r.user_id AND s.game = r.game \
                 WHERE r.game = ?1 \
                 ORDER BY r.rating DESC, r.deviation ASC, r.user_id ASC LIMIT ?2 OFFSET ?3",
            )
            .map_err(store_error)?;
        let rows = statement
            .query_map(params![game, limit, offset], |row| {
                Ok(LeaderboardEntry {
                    rank: 0,
                    user_id: row.get(0)?,
                    nickname: row.get(1)?,
                    rating: Rating {
                        rating: row.get(2)?,
                        deviation: row.get(3)?,
                        volatility: row.get(4)?,
                    },
                    matches: row.get(5)?,
                })
            })
            .map_err(store_error)?;
        let mut entries: Vec<LeaderboardEntry> =
            rows.collect::<Result<_, _>>().map_err(store_error)?;
        for (index, entry) in entries.iter_mut().enumerate() {
            entry.rank = offset.saturating_add(index as i64 + 1);
        }
        Ok(entries)
    }
}

fn profile_of(connection: &Connection, user_id: i64) -> Result<Option<Profile>, StoreError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT u.id, u.username, u.nickname, u.role, COALESCE(p.bio, ''), p.country, \
             u.created_at_ms, COALESCE(p.updated_at_ms, u.updated_at_ms) \
             FROM users u LEFT JOIN player_profiles p ON p.user_id = u.id WHERE u.id = ?1",
        )
        .map_err(store_error)?;
    statement
        .query_row([user_id], |row| {
            Ok(Profile {
                user_id: row.get(0)?,
                username: row.get(1)?,
                nickname: row.get(2)?,
                role: role_from_text(&row.get::<_, String>(3)?, 3)?,
                bio: row.get(4)?,
                country: row.get(5)?,
                created_at_ms: row.get(6)?,
                updated_at_ms: row.get(7)?,
            })
        })
        .optional()
        .map_err(store_error)
}

fn token_by_hash(connection: &Connection, hash: &str) -> Result<Option<RefreshToken>, StoreError> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM refresh_tokens WHERE token_hash = ?1");
    let mut statement = connection.prepare_cached(&sql).map_err(store_error)?;
    statement.query_row([hash], token_from_row).optional().map_err(store_error)
}

/// Stores a live token (never used, never revoked) of this family and user.
fn insert_token(
    connection: &Connection,
    token: &RefreshToken,
    family_id: &str,
    user_id: i64,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO refresh_tokens ({TOKEN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL)"
    );
    let mut statement = connection.prepare_cached(&sql).map_err(store_error)?;
    statement
        .execute(params![
            token.token_hash,
            user_id,
            family_id,
            token.issued_at_ms,
            token.expires_at_ms
        ])
        .map_err(store_error)?;
    Ok(())
}

fn revoke_family(connection: &Connection, family_id: &str, now_ms: i64) -> Result<(), StoreError> {
    let mut statement = connection
        .prepare_cached(
            "UPDATE refresh_tokens SET revoked_at_ms = ?2 \
             WHERE family_id = ?1 AND revoked_at_ms IS NULL",
        )
        .map_err(store_error)?;
    statement.execute(params![family_id, now_ms]).map_err(store_error)?;
    Ok(())
}

/// One seat: its row, and for an account in a match that counts in stats
/// its stats and (first time in this game) its initial rating.
fn record_seat(
    connection: &Connection,
    record: &MatchRecord,
    player: &MatchPlayer,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO match_players (match_id, seat, user_id, nickname, placement, outcome, \
             score, stats_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                record.id,
                player.seat,
                player.user_id,
                player.nickname,
                player.placement,
                player.outcome.as_str(),
                player.score,
                player.stats_json,
            ])
        })
        .map_err(seat_error)?;
    let Some(user_id) = player.user_id.filter(|_| record.counts_in_stats()) else {
        return Ok(());
    };
    let (wins, losses, draws) = player.outcome.counts();
    connection
        .prepare_cached(
            "INSERT INTO player_stats (user_id, game, matches, wins, losses, draws) \
             VALUES (?1, ?2, 1, ?3, ?4, ?5) ON CONFLICT (user_id, game) DO UPDATE SET \
             matches = player_stats.matches + 1, wins = player_stats.wins + excluded.wins, \
             losses = player_stats.losses + excluded.losses, \
             draws = player_stats.draws + excluded.draws",
        )
        .and_then(|mut statement| {
            statement.execute(params![user_id, record.game, wins, losses, draws])
        })
        .map_err(store_error)?;
    let initial = Rating::INITIAL;
    connection
        .prepare_cached(
            "INSERT INTO ratings (user_id, game, rating, deviation, volatility, updated_at_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (user_id, game) DO NOTHING",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                user_id,
                record.game,
                initial.rating,
                initial.deviation,
                initial.volatility,
                record.ended_at_ms,
            ])
        })
        .map_err(store_error)?;
    Ok(())
}

/// The matches with these ids (those that exist), each with its seats, in
/// the order [`MATCHES_WITH_SEATS_SQL`] gives: newest first.
fn matches_with_seats(
    connection: &Connection,
    ids: &[i64],
) -> Result<Vec<MatchRecord>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids_json = serde_json::to_string(ids).expect("integers serialise");
    let mut statement = connection.prepare_cached(MATCHES_WITH_SEATS_SQL).map_err(store_error)?;
    let mut rows = statement.query([ids_json]).map_err(store_error)?;
    let mut matches: Vec<MatchRecord> = Vec::with_capacity(ids.len());
    while let Some(row) = rows.next().map_err(store_error)? {
        let id: i64 = row.get(0).map_err(store_error)?;
        if matches.last().is_none_or(|last| last.id != id) {
            matches.push(match_from_row(row).map_err(store_error)?);
        }
        if let Some(seat) = seat_from_row(row).map_err(store_error)? {
            matches.last_mut().expect("pushed above").players.push(seat);
        }
    }
    Ok(matches)
}

fn match_from_row(row: &Row<'_>) -> rusqlite::Result<MatchRecord> {
    Ok(MatchRecord {
        id: row.get(0)?,
        room_id: row.get(1)?,
        game: row.get(2)?,
        mode: row.get(3)?,
        tournament_id: row.get(4)?,
        seed: row.get(5)?,
        started_at_ms: row.get(6)?,
        ended_at_ms: row.get(7)?,
        players: Vec::new(),
    })
}

/// The seat in columns 8 to 14, `None` for a match without seats.
fn seat_from_row(row: &Row<'_>) -> rusqlite::Result<Option<MatchPlayer>> {
    let Some(seat) = row.get::<_, Option<i32>>(8)? else {
        return Ok(None);
    };
    let outcome: String = row.get(12)?;
    let outcome = Outcome::parse(&outcome).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            12,
            Type::Text,
            format!("unknown outcome {outcome:?}").into(),
        )
    })?;
    Ok(Some(MatchPlayer {
        seat,
        user_id: row.get(9)?,
        nickname: row.get(10)?,
        placement: row.get(11)?,
        outcome,
        score: row.get(13)?,
        stats_json: row.get(14)?,
    }))
}

/// Two seats with one number in a record is the caller's bug, not a
/// conflict with a stored match.
fn seat_error(error: rusqlite::Error) -> StoreError {
    match store_error(error) {
        StoreError::Internal(message) if message.contains("match_players.") => {
            StoreError::Internal(format!("a match record repeats a seat: {message}"))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::store_conformance_tests!(in_memory, SqliteStore::open_in_memory().unwrap());

    /// The same suite on a file: WAL and durability settings in force.
    mod file {
        use super::*;

        pub struct FileFixture {
            store: SqliteStore,
            _dir: tempfile::TempDir,
        }

        impl crate::services::store::conformance::Fixture for FileFixture {
            fn harness(&mut self) -> &mut dyn crate::services::store::conformance::Harness {
                &mut self.store
            }
        }

        fn file_store() -> FileFixture {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::open(&dir.path().join(SQLITE_FILE_NAME)).unwrap();
            FileFixture { store, _dir: dir }
        }

        crate::store_conformance_tests!(on_disk, file_store());

        #[test]
        fn a_file_is_in_wal_mode_with_full_sync_and_survives_reopening() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(SQLITE_FILE_NAME);
            let mut store = SqliteStore::open(&path).unwrap();
            assert_eq!(store.migrate(1).unwrap().applied_now, [1]);
            assert_eq!(store.query_i64("PRAGMA synchronous").unwrap(), 2, "FULL");
            let mode: String =
                store.connection.query_row("PRAGMA journal_mode", [], |row| row.get(0)).unwrap();
            assert_eq!(mode, "wal");
            drop(store);
            let mut again = SqliteStore::open(&path).unwrap();
            let status = again.migrate(2).unwrap();
            assert!(status.applied_now.is_empty() && status.is_current(), "{status:?}");
        }

        /// Two connections migrating one fresh file at once both succeed and
        /// apply each migration once (BEGIN IMMEDIATE serialises them).
        #[test]
        fn concurrent_migrators_apply_each_migration_once() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(SQLITE_FILE_NAME);
            let start = std::sync::Arc::new(std::sync::Barrier::new(2));
            let migrators: Vec<_> = (0..2)
                .map(|index| {
                    let mut store = SqliteStore::open(&path).unwrap();
                    let start = std::sync::Arc::clone(&start);
                    std::thread::spawn(move || {
                        start.wait();
                        store.migrate(index).unwrap()
                    })
                })
                .collect();
            let mut applied: Vec<i64> = migrators
                .into_iter()
                .flat_map(|migrator| migrator.join().unwrap().applied_now)
                .collect();
            applied.sort_unstable();
            let all: Vec<i64> = MIGRATIONS.iter().map(|migration| migration.version).collect();
            assert_eq!(applied, all);
        }

        /// A second connection holding the write lock makes a write wait,
        /// then fail as Unavailable rather than Internal.
        #[test]
        fn a_held_write_lock_is_unavailable() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(SQLITE_FILE_NAME);
            let mut store = SqliteStore::open(&path).unwrap();
            store.migrate(1).unwrap();
            store.connection.busy_timeout(Duration::from_millis(50)).unwrap();
            let holder = Connection::open(&path).unwrap();
            holder.execute_batch("BEGIN IMMEDIATE").unwrap();
            let result = store.set_role(crate::services::store::ACCOUNT_ID_MIN, Role::Admin, 2);
            assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
            holder.execute_batch("ROLLBACK").unwrap();
            assert_eq!(
                store.set_role(crate::services::store::ACCOUNT_ID_MIN, Role::Admin, 2),
                Ok(false)
            );
        }
    }

    /// The query plan of `sql` with `params`, one detail line per step.
    fn plan(store: &SqliteStore, sql: &str, params: impl rusqlite::Params) -> Vec<String> {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut statement = store.connection.prepare(&explain).unwrap();
        let rows = statement.query_map(params, |row| row.get::<_, String>(3)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    /// A history page is a backwards range scan of
    /// `match_players_user_match` bounded on both columns, each row's match
    /// found by key: no table is scanned and nothing is sorted, so LIMIT
    /// stops the scan. The page's seats are found by key too.
    #[test]
    fn a_history_page_is_an_index_range_scan() {
        let mut store = SqliteStore::open_in_memory().unwrap();
        store.migrate(1).unwrap();
        let user_id = crate::services::store::ACCOUNT_ID_MIN;
        let filters = params![user_id, i64::MAX, "versus", "tetris", 0, 10, 20];
        let page = plan(&store, PLAYER_MATCH_IDS_SQL, filters);
        assert_eq!(
            page,
            [
                "SEARCH p USING COVERING INDEX match_players_user_match \
                 (user_id=? AND match_id<?)",
                "SEARCH m USING INDEX sqlite_autoindex_matches_1 (id=?)",
            ]
        );
        let seats = plan(&store, MATCHES_WITH_SEATS_SQL, ["[3,2,1]"]);
        let scans: Vec<&String> = seats
            .iter()
            .filter(|step| step.starts_with("SCAN") && !step.contains("json_each"))
            .collect();
        assert!(scans.is_empty(), "{seats:#?}");
        assert!(seats.iter().any(|step| step.contains("sqlite_autoindex_match_players_1")));
    }

    #[test]
    fn unique_messages_map_to_conflicts() {
        assert_eq!(
            unique_conflict("UNIQUE constraint failed: users.username_key"),
            Some(Conflict::Username)
        );
        assert_eq!(
            unique_conflict("UNIQUE constraint failed: matches.room_id, matches.started_at_ms"),
            Some(Conflict::Match)
        );
        assert_eq!(
            unique_conflict("UNIQUE constraint failed: match_players.match_id, match_players.seat"),
            None
        );
        assert_eq!(unique_conflict("CHECK constraint failed: users_role"), None);
    }
}
