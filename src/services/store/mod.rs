//! The storage port: everything Ludus keeps in SQL, behind one trait with
//! two adapters, [`postgres::PostgresStore`] (production, `DATABASE_URL`)
//! and [`sqlite::SqliteStore`] (the embedded default, a file in the data
//! dir). One conformance suite ([`conformance`]) runs against both.
//!
//! Contract: a `Store` is one connection, owned by one worker thread of the
//! storage pool; it blocks. Shards never hold one. Every method either
//! commits what it wrote before returning `Ok` or leaves nothing behind, so
//! an answer built from `Ok` never reports a write that a crash could lose.
//! Times are Unix milliseconds passed in by the caller (the store reads no
//! clock), so the suite can drive expiry without sleeping.
//!
//! The SQL is one dialect both databases accept (BIGINT, TEXT, DOUBLE
//! PRECISION, no generated ids, no booleans): ids are made by the
//! application ([`new_user_id`]), times are Unix milliseconds.

pub mod conformance;
pub mod migrate;
pub mod postgres;
pub mod sqlite;

pub use migrate::{MigrationError, SchemaStatus, MIGRATIONS};

/// Account ids live in `[2^62, 2^63)`: positive as an i64, and disjoint
/// from the guest and room ids the shards make (shard << 48 | counter,
/// below 2^58). JSON carries them as strings (JavaScript numbers stop being
/// exact at 2^53).
pub const ACCOUNT_ID_MIN: i64 = 1 << 62;

/// Longest username, nickname and bio the store accepts (the API checks
/// the finer rules; these are the columns' hard bounds).
pub const USERNAME_LEN_MAX: usize = 32;
pub const NICKNAME_LEN_MAX: usize = 32;
pub const BIO_LEN_MAX: usize = 280;
/// Rows one leaderboard page may ask for.
pub const LEADERBOARD_PAGE_MAX: u32 = 100;

/// A fresh account id from the operating system's CSPRNG, in
/// `[ACCOUNT_ID_MIN, i64::MAX]`. Collisions (2^-62 per pair) surface as
/// [`StoreError::Conflict`] with [`Conflict::UserId`] and are retried by
/// the caller.
pub fn new_user_id() -> i64 {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 8];
    SystemRandom::new().fill(&mut bytes).expect("the OS random source works");
    let id = (u64::from_le_bytes(bytes) >> 2) as i64 | ACCOUNT_ID_MIN;
    debug_assert!(id >= ACCOUNT_ID_MIN);
    id
}

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Guest,
    Player,
    Moderator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Guest => "guest",
            Role::Player => "player",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "guest" => Some(Role::Guest),
            "player" => Some(Role::Player),
            "moderator" => Some(Role::Moderator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// An account. Guests have no username and no password until upgraded.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: i64,
    /// As typed at registration; unique ignoring ASCII case.
    pub username: Option<String>,
    pub nickname: String,
    /// The argon2id PHC string.
    pub password_hash: Option<String>,
    pub role: Role,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A user to create (`created_at_ms = updated_at_ms = now_ms`). A profile
/// row is created with it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUser {
    pub id: i64,
    pub username: Option<String>,
    pub nickname: String,
    pub password_hash: Option<String>,
    pub role: Role,
    pub now_ms: i64,
}

/// The public face of an account.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub user_id: i64,
    pub username: Option<String>,
    pub nickname: String,
    pub role: Role,
    pub bio: String,
    /// ISO 3166-1 alpha-2, upper case, when the player set one.
    pub country: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// The editable fields of a profile; `update_profile` replaces all three.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileFields {
    pub nickname: String,
    pub bio: String,
    pub country: Option<String>,
}

/// One refresh token, stored by the SHA-256 of its secret (hex), never
/// the secret itself. Tokens of one login share a `family_id`; rotation
/// marks the old one used and adds the new one to the family.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshToken {
    pub token_hash: String,
    pub user_id: i64,
    pub family_id: String,
    pub issued_at_ms: i64,
    pub expires_at_ms: i64,
    pub used_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
}

/// What presenting a refresh token for rotation found.
#[derive(Debug, Clone, PartialEq)]
pub enum Rotation {
    /// The old token was live: it is now used, the new one stored.
    Rotated { user_id: i64 },
    /// The old token had been used before: the whole family is now revoked
    /// (someone holds a stolen copy), the new one was not stored.
    Reused { user_id: i64, family_id: String },
    /// Revoked (logout, or an earlier reuse) or expired: nothing changed.
    Dead,
    /// No such token.
    Unknown,
}

/// A player's record in one game.
#[derive(Debug, Clone, PartialEq)]
pub struct GameStats {
    pub game: String,
    pub matches: i64,
    pub wins: i64,
    pub losses: i64,
    pub draws: i64,
    pub rating: Rating,
}

/// Glicko-2 state; new players start at [`Rating::INITIAL`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rating {
    pub rating: f64,
    pub deviation: f64,
    pub volatility: f64,
}

impl Rating {
    pub const INITIAL: Rating = Rating { rating: 1500.0, deviation: 350.0, volatility: 0.06 };

    /// A stored rating's columns (all NULL for a player not rated yet).
    pub fn from_columns(
        rating: Option<f64>,
        deviation: Option<f64>,
        volatility: Option<f64>,
    ) -> Rating {
        match (rating, deviation, volatility) {
            (Some(rating), Some(deviation), Some(volatility)) => {
                Rating { rating, deviation, volatility }
            }
            _ => Rating::INITIAL,
        }
    }
}

/// Lower-cases ASCII only, like the `username_key` column promises; SQL
/// `lower()` would fold more, and differently between SQLite and Postgres.
pub fn username_key(username: &str) -> String {
    username.to_ascii_lowercase()
}

/// How one seat ended a match, for stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Win,
    Loss,
    Draw,
}

impl Outcome {
    /// (wins, losses, draws) the outcome adds to a player's stats.
    pub fn counts(self) -> (i64, i64, i64) {
        match self {
            Outcome::Win => (1, 0, 0),
            Outcome::Loss => (0, 1, 0),
            Outcome::Draw => (0, 0, 1),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Win => "win",
            Outcome::Loss => "loss",
            Outcome::Draw => "draw",
        }
    }
}

/// A finished match as the history design stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchRecord {
    pub id: i64,
    pub room_id: i64,
    pub game: String,
    /// "versus", "solo", ...
    pub mode: String,
    pub tournament_id: Option<i64>,
    pub seed: i64,
    pub started_at_ms: i64,
    pub ended_at_ms: i64,
    pub players: Vec<MatchPlayer>,
}

/// One seat of a [`MatchRecord`]. Guests who hold no account have no row
/// in `users`; their seats are stored with `user_id = None`.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchPlayer {
    pub seat: i32,
    pub user_id: Option<i64>,
    pub nickname: String,
    pub placement: i32,
    pub outcome: Outcome,
    pub score: i64,
    /// Game-specific figures (lines, garbage sent, ...), JSON text.
    pub stats_json: String,
}

/// One row of a leaderboard page; `rank` counts from 1 across pages.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderboardEntry {
    pub rank: i64,
    pub user_id: i64,
    pub nickname: String,
    pub rating: Rating,
    pub matches: i64,
}

/// Which unique rule a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    UserId,
    Username,
    RefreshToken,
    Match,
}

/// Why a store call failed. `Unavailable` is the only retryable one: the
/// database is unreachable (the API answers 503 with Retry-After).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("conflict on {0:?}")]
    Conflict(Conflict),
    #[error("schema: {0}")]
    Schema(#[from] MigrationError),
    #[error("database error: {0}")]
    Internal(String),
}

/// The storage port. Methods take `&mut self`: a store is one connection.
pub trait Store: Send {
    /// Which adapter this is ("postgres", "sqlite"), for logs.
    fn kind(&self) -> &'static str;
    /// Applies the migrations the database lacks (one transaction each,
    /// serialised between processes) and returns the schema status.
    fn migrate(&mut self, now_ms: i64) -> Result<SchemaStatus, StoreError>;
    /// Reads the schema status without changing anything (readiness).
    fn schema_status(&mut self) -> Result<SchemaStatus, StoreError>;

    /// Creates a user and its empty profile. `Conflict(Username)` when the
    /// username is taken ignoring ASCII case, `Conflict(UserId)` on an id
    /// collision.
    fn create_user(&mut self, user: &NewUser) -> Result<User, StoreError>;
    fn user_by_id(&mut self, id: i64) -> Result<Option<User>, StoreError>;
    /// Looks the username up ignoring ASCII case.
    fn user_by_username(&mut self, username: &str) -> Result<Option<User>, StoreError>;
    /// Gives a guest a username and password and makes it a player. `None`
    /// when the user does not exist or is not a guest.
    fn upgrade_guest(
        &mut self,
        id: i64,
        username: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<Option<User>, StoreError>;
    fn set_role(&mut self, id: i64, role: Role, now_ms: i64) -> Result<bool, StoreError>;
    /// Replaces the password hash of an account that has one (a rehash
    /// after the hashing parameters changed). False for guests and unknown
    /// ids.
    fn set_password_hash(
        &mut self,
        id: i64,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    fn profile(&mut self, user_id: i64) -> Result<Option<Profile>, StoreError>;
    /// Replaces the editable fields (the nickname lives on the user row).
    fn update_profile(
        &mut self,
        user_id: i64,
        fields: &ProfileFields,
        now_ms: i64,
    ) -> Result<Option<Profile>, StoreError>;

    fn insert_refresh_token(&mut self, token: &RefreshToken) -> Result<(), StoreError>;
    /// Atomically: if `old_hash` is live at `now_ms`, marks it used and
    /// stores `new` (same family, same user); if it was used already,
    /// revokes its whole family; see [`Rotation`].
    fn rotate_refresh_token(
        &mut self,
        old_hash: &str,
        new: &RefreshToken,
        now_ms: i64,
    ) -> Result<Rotation, StoreError>;
    /// Revokes the family of the token with this hash (logout). Returns the
    /// user, or `None` for an unknown token.
    fn revoke_refresh_family(
        &mut self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError>;
    fn refresh_token(&mut self, token_hash: &str) -> Result<Option<RefreshToken>, StoreError>;

    /// Stores a finished match with its seats and adds each seat's outcome
    /// to that account's stats, in one transaction. `Conflict(Match)` when
    /// a match with this id or this (room_id, started_at_ms) exists.
    fn record_match(&mut self, record: &MatchRecord) -> Result<(), StoreError>;
    /// The player's stats in every game played, by game name.
    fn stats(&mut self, user_id: i64) -> Result<Vec<GameStats>, StoreError>;
    fn set_rating(
        &mut self,
        user_id: i64,
        game: &str,
        rating: Rating,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Players of `game` by rating, highest first (ties by fewer deviation,
    /// then by id), `limit <= LEADERBOARD_PAGE_MAX` rows from `offset`.
    fn leaderboard(
        &mut self,
        game: &str,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<LeaderboardEntry>, StoreError>;
}
