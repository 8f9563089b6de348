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
//! application ([`new_user_id`], [`new_match_id`]), times are Unix
//! milliseconds.

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
/// Matches one page of a player's history may ask for.
pub const HISTORY_PAGE_MAX: u32 = 100;

/// The mode of a match one player played alone (a sprint, a marathon):
/// stored in the history, never counted in stats or ratings.
pub const SOLO_MODE: &str = "solo";

/// Random low bits of a match id, under its end time.
pub const MATCH_ID_RANDOM_BITS: u32 = 20;
/// The latest end time a match id can carry: 2^43 - 1 ms after 1970 (the
/// year 2248), so that the id stays a positive i64.
pub const MATCH_ENDED_AT_MS_MAX: i64 = (1 << (63 - MATCH_ID_RANDOM_BITS)) - 1;

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

/// A fresh, time-ordered match id: `ended_at_ms << 20 | 20 random bits`
/// (the operating system's CSPRNG). Ordering matches by id orders them by
/// end time, to the millisecond (matches that end in the same millisecond
/// come in a random order), which is what lets a history page be one
/// index range scan on `(user_id, match_id)` with the id as its cursor.
///
/// Today's ids are about 2^60.6, above every room id the shards make
/// (below 2^58), so a match may use its own id as its room id (solo
/// results do). Two matches ending in the same millisecond collide with
/// probability 2^-20: the write fails with [`Conflict::Match`] and the
/// caller retries with a new id.
///
/// Panics unless `1 <= ended_at_ms <= MATCH_ENDED_AT_MS_MAX` (the id must
/// be positive).
pub fn new_match_id(ended_at_ms: i64) -> i64 {
    use ring::rand::{SecureRandom, SystemRandom};
    assert!(
        (1..=MATCH_ENDED_AT_MS_MAX).contains(&ended_at_ms),
        "a match id carries an end time from 1 to {MATCH_ENDED_AT_MS_MAX} ms, not {ended_at_ms}"
    );
    let mut bytes = [0u8; 4];
    SystemRandom::new().fill(&mut bytes).expect("the OS random source works");
    let random = i64::from(u32::from_le_bytes(bytes) & ((1 << MATCH_ID_RANDOM_BITS) - 1));
    let id = (ended_at_ms << MATCH_ID_RANDOM_BITS) | random;
    debug_assert!(id > 0 && match_id_ended_at_ms(id) == ended_at_ms);
    id
}

/// The end time a [`new_match_id`] id carries.
pub fn match_id_ended_at_ms(id: i64) -> i64 {
    id >> MATCH_ID_RANDOM_BITS
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

    pub fn parse(text: &str) -> Option<Outcome> {
        match text {
            "win" => Some(Outcome::Win),
            "loss" => Some(Outcome::Loss),
            "draw" => Some(Outcome::Draw),
            _ => None,
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

impl MatchRecord {
    /// Whether recording it adds to its players' stats and ratings: every
    /// mode but [`SOLO_MODE`] (a score alone against the clock says nothing
    /// about playing against others).
    pub fn counts_in_stats(&self) -> bool {
        self.mode != SOLO_MODE
    }
}

/// Which of a player's matches [`Store::player_matches`] reads: a page of
/// at most `limit` (capped at [`HISTORY_PAGE_MAX`]), newest first, of the
/// matches passing every filter that is set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HistoryQuery {
    /// Only matches of this mode ("versus", "solo", ...).
    pub mode: Option<String>,
    /// Only matches of this game.
    pub game: Option<String>,
    /// Only matches started at or after this time.
    pub from_ms: Option<i64>,
    /// Only matches started before this time (`[from_ms, to_ms)`).
    pub to_ms: Option<i64>,
    /// The cursor: only matches with a smaller id (the last id of the
    /// previous page); `None` starts from the newest.
    pub before_id: Option<i64>,
    pub limit: u32,
}

impl HistoryQuery {
    /// The newest `limit` matches, unfiltered.
    pub fn newest(limit: u32) -> HistoryQuery {
        HistoryQuery { limit, ..HistoryQuery::default() }
    }

    /// The largest match id the page may hold (the adapters' inclusive
    /// bound on the index range), or `None` when no id can be below the
    /// cursor.
    pub fn id_max(&self) -> Option<i64> {
        match self.before_id {
            None => Some(i64::MAX),
            Some(before_id) => before_id.checked_sub(1),
        }
    }

    /// Rows the page may hold: `limit`, at most [`HISTORY_PAGE_MAX`].
    pub fn rows_max(&self) -> u32 {
        self.limit.min(HISTORY_PAGE_MAX)
    }

    /// The page's highest match id and row count; `None` when the page
    /// can hold nothing (no rows, or a cursor below every id).
    pub fn page_bounds(&self) -> Option<(i64, u32)> {
        let id_max = self.id_max()?;
        let rows_max = self.rows_max();
        (rows_max > 0).then_some((id_max, rows_max))
    }
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

    /// Stores a finished match with its seats and, unless it is a solo
    /// match ([`MatchRecord::counts_in_stats`]), adds each account seat's
    /// outcome to that account's stats and gives it the initial rating in
    /// the game the first time, in one transaction. A solo match changes
    /// no stats and no ratings. `Conflict(Match)` when a match with this id
    /// or this (room_id, started_at_ms) exists.
    fn record_match(&mut self, record: &MatchRecord) -> Result<(), StoreError>;
    /// The matches `user_id` held a seat in, newest first by match id, each
    /// with all its seats (every player's, by seat), filtered and paged by
    /// `query` (see [`HistoryQuery`]). A page is one range scan of the
    /// `match_players_user_match` index, `(user_id, match_id)`, backwards
    /// from the cursor, plus one query for the seats of the whole page. A
    /// match is listed once even if the account held two of its seats.
    /// Unknown accounts have no matches.
    fn player_matches(
        &mut self,
        user_id: i64,
        query: &HistoryQuery,
    ) -> Result<Vec<MatchRecord>, StoreError>;
    /// One match with all its seats, by seat.
    fn match_by_id(&mut self, id: i64) -> Result<Option<MatchRecord>, StoreError>;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Match ids are positive, carry their end time in the high bits, sort
    /// by it, and differ within one millisecond.
    #[test]
    fn match_ids_order_by_end_time() {
        let now_ms = 1_700_000_000_000;
        let ids: Vec<i64> = (0..64).map(|step| new_match_id(now_ms + step / 8)).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] > 0);
            let (earlier, later) = (match_id_ended_at_ms(pair[0]), match_id_ended_at_ms(pair[1]));
            assert!(earlier <= later, "{pair:?}");
            if earlier < later {
                assert!(pair[0] < pair[1], "a later end is a larger id: {pair:?}");
            }
        }
        let same_ms: std::collections::HashSet<i64> =
            (0..16).map(|_| new_match_id(now_ms)).collect();
        assert!(same_ms.len() > 1, "20 random bits: {same_ms:?}");
        assert!(new_match_id(1) >= 1 << MATCH_ID_RANDOM_BITS);
        let last = new_match_id(MATCH_ENDED_AT_MS_MAX);
        assert!(last > 0 && match_id_ended_at_ms(last) == MATCH_ENDED_AT_MS_MAX);
    }

    #[test]
    #[should_panic(expected = "a match id carries an end time")]
    fn a_match_id_refuses_an_end_time_it_cannot_carry() {
        new_match_id(MATCH_ENDED_AT_MS_MAX + 1);
    }

    #[test]
    #[should_panic(expected = "a match id carries an end time")]
    fn a_match_id_refuses_a_time_before_1970() {
        new_match_id(0);
    }

    /// The cursor bound: everything without one, nothing below i64::MIN.
    #[test]
    fn history_queries_bound_the_id_and_the_rows() {
        assert_eq!(HistoryQuery::newest(5).id_max(), Some(i64::MAX));
        let after = |before_id| HistoryQuery { before_id: Some(before_id), ..Default::default() };
        assert_eq!(after(100).id_max(), Some(99));
        assert_eq!(after(i64::MIN).id_max(), None);
        assert_eq!(HistoryQuery::newest(u32::MAX).rows_max(), HISTORY_PAGE_MAX);
        assert_eq!(HistoryQuery::newest(7).rows_max(), 7);
    }
}
