//! The one conformance suite every [`Store`] adapter must pass.
//!
//! Each check is a `pub fn` taking a fresh, *unmigrated* database through a
//! [`Harness`] (the port plus two raw-SQL helpers, so a check can look at
//! rows the port does not expose and corrupt the versions table on
//! purpose). [`store_conformance_tests!`](crate::store_conformance_tests)
//! turns the list of checks into one `#[test]` per check for a fixture;
//! the SQLite adapter's unit tests and `tests/store.rs` (Postgres) invoke it,
//! and a test below keeps the list and the functions in step.
//!
//! Times are fixed numbers of Unix milliseconds: the store reads no clock,
//! so expiry is driven by the `now_ms` each call passes.

use sha2::{Digest, Sha256};

use super::migrate::{self, MIGRATIONS};
use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;
use super::{
    Conflict, GameStats, HistoryQuery, MatchPlayer, MatchRecord, MigrationError, NewUser, Outcome,
    Profile, ProfileFields, Rating, RefreshToken, Role, Rotation, SchemaStatus, Store, StoreError,
    User, ACCOUNT_ID_MIN, BIO_LEN_MAX, HISTORY_PAGE_MAX, SOLO_MODE,
};

/// A store the suite can also reach with raw SQL. Both helpers panic on
/// error: they are test tools.
pub trait Harness: Store {
    /// Runs SQL text (one or more statements) as is.
    fn execute_sql(&mut self, sql: &str);
    /// The first column of the first row of a query, as an integer.
    fn select_i64(&mut self, sql: &str) -> i64;
}

impl Harness for SqliteStore {
    fn execute_sql(&mut self, sql: &str) {
        self.execute_batch(sql).unwrap_or_else(|error| panic!("{sql}: {error}"));
    }

    fn select_i64(&mut self, sql: &str) -> i64 {
        self.query_i64(sql).unwrap_or_else(|error| panic!("{sql}: {error}"))
    }
}

impl Harness for PostgresStore {
    fn execute_sql(&mut self, sql: &str) {
        self.execute_batch(sql).unwrap_or_else(|error| panic!("{sql}: {error}"));
    }

    fn select_i64(&mut self, sql: &str) -> i64 {
        self.query_i64(sql).unwrap_or_else(|error| panic!("{sql}: {error}"))
    }
}

/// What a test keeps alive while a check runs: a harness, and whatever must
/// outlive it (a temporary directory, a Postgres schema to drop).
pub trait Fixture {
    fn harness(&mut self) -> &mut dyn Harness;
}

impl<H: Harness> Fixture for H {
    fn harness(&mut self) -> &mut dyn Harness {
        self
    }
}

/// Expands to a module `$module` with one `#[test]` per conformance check,
/// each on a fresh fixture from `$make` (an expression evaluated per test,
/// in the caller's scope, whose value implements
/// [`Fixture`](crate::services::store::conformance::Fixture)).
#[macro_export]
macro_rules! store_conformance_tests {
    ($module:ident, $make:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $crate::store_conformance_tests!(@checks $make;
                // conformance-list-start
                migrate_is_idempotent_and_reports_status,
                users_are_created_and_read_back,
                usernames_are_unique_ignoring_ascii_case,
                user_id_collision_is_a_conflict,
                guests_upgrade_once,
                profiles_update,
                roles_change,
                password_hashes_are_replaced_for_accounts_with_one,
                refresh_tokens_rotate_and_detect_reuse,
                refresh_tokens_expire_and_unknown_ones_are_unknown,
                refresh_family_is_revoked_on_logout,
                refresh_token_hash_collisions_conflict,
                record_match_updates_stats_and_ratings,
                duplicate_match_is_a_conflict_and_changes_nothing,
                solo_matches_change_no_stats_or_ratings,
                a_match_reads_back_with_every_seat_in_order,
                player_matches_page_newest_first_through_the_cursor,
                player_matches_filter_by_mode_game_and_start_time,
                leaderboard_orders_and_pages,
                hostile_text_is_stored_verbatim,
                deleting_a_user_keeps_match_history,
                edited_migration_is_refused,
                newer_database_is_refused,
                // conformance-list-end
            );
        }
    };
    (@checks $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let mut fixture = $make;
                $crate::services::store::conformance::$check(
                    $crate::services::store::conformance::Fixture::harness(&mut fixture),
                );
            }
        )*
    };
}

/// An arbitrary "now": 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;
const HOUR_MS: i64 = 3_600_000;

fn migrated(store: &mut dyn Harness) {
    let status = store.migrate(T0).expect("migrate a fresh database");
    assert!(status.is_current(), "{status:?}");
}

fn id(n: i64) -> i64 {
    ACCOUNT_ID_MIN + n
}

fn player(n: i64, username: &str) -> NewUser {
    NewUser {
        id: id(n),
        username: Some(username.to_owned()),
        nickname: format!("player {n}"),
        password_hash: Some(format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${n}")),
        role: Role::Player,
        now_ms: T0,
    }
}

fn guest(n: i64) -> NewUser {
    NewUser {
        id: id(n),
        username: None,
        nickname: format!("Guest {n}"),
        password_hash: None,
        role: Role::Guest,
        now_ms: T0,
    }
}

fn create(store: &mut dyn Harness, user: &NewUser) -> User {
    store.create_user(user).unwrap_or_else(|error| panic!("create {user:?}: {error}"))
}

/// A token as the auth service stores it: the SHA-256 hex of a secret.
fn token(secret: &str, user_id: i64, family_id: &str, issued_at_ms: i64) -> RefreshToken {
    RefreshToken {
        token_hash: hash(secret),
        user_id,
        family_id: family_id.to_owned(),
        issued_at_ms,
        expires_at_ms: issued_at_ms + HOUR_MS,
        used_at_ms: None,
        revoked_at_ms: None,
    }
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn seat(seat: i32, user_id: Option<i64>, outcome: Outcome) -> MatchPlayer {
    MatchPlayer {
        seat,
        user_id,
        nickname: format!("seat {seat}"),
        placement: if outcome == Outcome::Win { 1 } else { 2 },
        outcome,
        score: 100 * i64::from(seat),
        stats_json: format!("{{\"seat\":{seat}}}"),
    }
}

fn a_match(id: i64, room_id: i64, game: &str, players: Vec<MatchPlayer>) -> MatchRecord {
    MatchRecord {
        id,
        room_id,
        game: game.to_owned(),
        mode: "versus".to_owned(),
        tournament_id: None,
        seed: -7,
        started_at_ms: T0 + id,
        ended_at_ms: T0 + id + 90_000,
        players,
    }
}

fn stats(game: &str, wins: i64, losses: i64, draws: i64, rating: Rating) -> GameStats {
    GameStats { game: game.to_owned(), matches: wins + losses + draws, wins, losses, draws, rating }
}

/// A fresh database is at version 0; migrating applies every migration
/// once and reports it; migrating again applies nothing.
pub fn migrate_is_idempotent_and_reports_status(store: &mut dyn Harness) {
    let binary = migrate::binary_version();
    let before = store.schema_status().unwrap();
    assert_eq!(
        before,
        SchemaStatus { database_version: 0, binary_version: binary, applied_now: vec![] }
    );
    assert_eq!(before.require_current(), Err(MigrationError::Behind { database: 0, binary }));
    let all: Vec<i64> = MIGRATIONS.iter().map(|migration| migration.version).collect();
    let current =
        SchemaStatus { database_version: binary, binary_version: binary, applied_now: all };
    assert_eq!(store.migrate(T0).unwrap(), current);
    let again = store.migrate(T0 + 1).unwrap();
    assert_eq!(again, SchemaStatus { applied_now: vec![], ..current.clone() });
    assert_eq!(store.schema_status().unwrap(), again);
    assert_eq!(store.select_i64("SELECT count(*) FROM schema_migrations"), MIGRATIONS.len() as i64);
    assert_eq!(store.select_i64("SELECT max(applied_at_ms) FROM schema_migrations"), T0);
    assert!(matches!(store.kind(), "sqlite" | "postgres"));
}

/// A created user and its empty profile read back exactly, by id and by
/// username in any ASCII case; guests have no credentials; ids outside
/// the account range are refused.
pub fn users_are_created_and_read_back(store: &mut dyn Harness) {
    migrated(store);
    let alice = player(1, "Alice");
    let created = create(store, &alice);
    let expected = User {
        id: alice.id,
        username: Some("Alice".to_owned()),
        nickname: alice.nickname.clone(),
        password_hash: alice.password_hash.clone(),
        role: Role::Player,
        created_at_ms: T0,
        updated_at_ms: T0,
    };
    assert_eq!(created, expected);
    assert_eq!(store.user_by_id(alice.id).unwrap(), Some(expected.clone()));
    for spelling in ["Alice", "alice", "ALICE", "aLiCe"] {
        assert_eq!(store.user_by_username(spelling).unwrap(), Some(expected.clone()), "{spelling}");
    }
    assert_eq!(store.user_by_username("alice ").unwrap(), None);
    assert_eq!(store.user_by_username("").unwrap(), None);
    assert_eq!(store.user_by_id(id(2)).unwrap(), None);
    assert_eq!(
        store.profile(alice.id).unwrap(),
        Some(Profile {
            user_id: alice.id,
            username: Some("Alice".to_owned()),
            nickname: alice.nickname.clone(),
            role: Role::Player,
            bio: String::new(),
            country: None,
            created_at_ms: T0,
            updated_at_ms: T0,
        })
    );

    let top = NewUser { id: i64::MAX, now_ms: T0 + 5, ..guest(0) };
    let created = create(store, &top);
    assert_eq!((created.username, created.password_hash, created.role), (None, None, Role::Guest));
    assert_eq!(store.user_by_id(i64::MAX).unwrap().unwrap().created_at_ms, T0 + 5);

    let below_range = NewUser { id: ACCOUNT_ID_MIN - 1, ..guest(0) };
    let refused = store.create_user(&below_range);
    assert!(matches!(refused, Err(StoreError::Internal(_))), "{refused:?}");
}

/// A username taken in another ASCII case is a `Conflict(Username)` that
/// leaves nothing behind; non-ASCII letters are not folded.
pub fn usernames_are_unique_ignoring_ascii_case(store: &mut dyn Harness) {
    migrated(store);
    create(store, &player(1, "Bob"));
    assert_eq!(store.create_user(&player(2, "bOB")), Err(StoreError::Conflict(Conflict::Username)));
    assert_eq!(store.user_by_id(id(2)).unwrap(), None);
    assert_eq!(store.profile(id(2)).unwrap(), None);
    assert_eq!(store.select_i64("SELECT count(*) FROM player_profiles"), 1);

    // "Émile" and "émile" differ outside ASCII, so both may exist, and a
    // lookup folds only the ASCII letters.
    create(store, &player(3, "Émile"));
    create(store, &player(4, "émile"));
    assert_eq!(store.user_by_username("ÉMILE").unwrap().unwrap().id, id(3));
    assert_eq!(store.user_by_username("éMILE").unwrap().unwrap().id, id(4));
}

/// Reusing an id is a `Conflict(UserId)`, for players and guests alike.
pub fn user_id_collision_is_a_conflict(store: &mut dyn Harness) {
    migrated(store);
    create(store, &player(1, "carol"));
    assert_eq!(store.create_user(&player(1, "dave")), Err(StoreError::Conflict(Conflict::UserId)));
    assert_eq!(store.user_by_username("dave").unwrap(), None);
    assert_eq!(store.create_user(&guest(1)), Err(StoreError::Conflict(Conflict::UserId)));
    create(store, &guest(2));
    assert_eq!(store.create_user(&guest(2)), Err(StoreError::Conflict(Conflict::UserId)));
    assert_eq!(store.select_i64("SELECT count(*) FROM users"), 2);
}

/// A guest becomes a player with a username once; players, unknown ids
/// and taken usernames are refused without changing anything.
pub fn guests_upgrade_once(store: &mut dyn Harness) {
    migrated(store);
    create(store, &guest(1));
    let upgraded = store.upgrade_guest(id(1), "Gina", "$argon2id$gina", T0 + 10).unwrap();
    let expected = User {
        id: id(1),
        username: Some("Gina".to_owned()),
        nickname: "Guest 1".to_owned(),
        password_hash: Some("$argon2id$gina".to_owned()),
        role: Role::Player,
        created_at_ms: T0,
        updated_at_ms: T0 + 10,
    };
    assert_eq!(upgraded, Some(expected.clone()));
    assert_eq!(store.user_by_username("GINA").unwrap(), Some(expected.clone()));
    assert_eq!(store.profile(id(1)).unwrap().unwrap().username.as_deref(), Some("Gina"));
    assert_eq!(store.upgrade_guest(id(1), "Other", "$argon2id$x", T0 + 11).unwrap(), None);
    assert_eq!(store.user_by_id(id(1)).unwrap(), Some(expected));

    create(store, &player(2, "Paul"));
    assert_eq!(store.upgrade_guest(id(2), "Paula", "$argon2id$x", T0 + 12).unwrap(), None);
    assert_eq!(store.upgrade_guest(id(99), "Nobody", "$argon2id$x", T0 + 12).unwrap(), None);

    create(store, &guest(3));
    assert_eq!(
        store.upgrade_guest(id(3), "PAUL", "$argon2id$x", T0 + 13),
        Err(StoreError::Conflict(Conflict::Username))
    );
    let still_guest = store.user_by_id(id(3)).unwrap().unwrap();
    assert_eq!((still_guest.role, still_guest.username), (Role::Guest, None));
    assert_eq!(store.user_by_username("paula").unwrap(), None);
}

/// `update_profile` replaces nickname, bio and country; lengths count
/// characters, not bytes, in both databases.
pub fn profiles_update(store: &mut dyn Harness) {
    migrated(store);
    create(store, &player(1, "neo"));
    let fields = ProfileFields {
        nickname: "Neo".to_owned(),
        bio: "It's \"quoted\"\nünïcödé 🎮".to_owned(),
        country: Some("SE".to_owned()),
    };
    let updated = store.update_profile(id(1), &fields, T0 + 20).unwrap();
    let expected = Profile {
        user_id: id(1),
        username: Some("neo".to_owned()),
        nickname: "Neo".to_owned(),
        role: Role::Player,
        bio: fields.bio.clone(),
        country: Some("SE".to_owned()),
        created_at_ms: T0,
        updated_at_ms: T0 + 20,
    };
    assert_eq!(updated, Some(expected.clone()));
    assert_eq!(store.profile(id(1)).unwrap(), Some(expected));
    let user = store.user_by_id(id(1)).unwrap().unwrap();
    assert_eq!((user.nickname.as_str(), user.updated_at_ms), ("Neo", T0 + 20));

    let longest =
        ProfileFields { nickname: "é".repeat(32), bio: "é".repeat(BIO_LEN_MAX), country: None };
    let updated = store.update_profile(id(1), &longest, T0 + 21).unwrap().unwrap();
    assert_eq!((updated.bio, updated.country), (longest.bio, None));
    let too_long = ProfileFields { bio: "é".repeat(BIO_LEN_MAX + 1), ..longest };
    let refused = store.update_profile(id(1), &too_long, T0 + 22);
    assert!(matches!(refused, Err(StoreError::Internal(_))), "{refused:?}");
    assert_eq!(store.profile(id(1)).unwrap().unwrap().updated_at_ms, T0 + 21);

    assert_eq!(store.update_profile(id(2), &fields, T0 + 23).unwrap(), None);
}

/// `set_role` changes the role and says whether the user exists.
pub fn roles_change(store: &mut dyn Harness) {
    migrated(store);
    create(store, &player(1, "mod"));
    assert_eq!(store.set_role(id(1), Role::Moderator, T0 + 30), Ok(true));
    let user = store.user_by_id(id(1)).unwrap().unwrap();
    assert_eq!((user.role, user.updated_at_ms), (Role::Moderator, T0 + 30));
    assert_eq!(store.set_role(id(1), Role::Admin, T0 + 31), Ok(true));
    assert_eq!(store.profile(id(1)).unwrap().unwrap().role, Role::Admin);
    assert_eq!(store.set_role(id(2), Role::Admin, T0 + 32), Ok(false));
}

/// `set_password_hash` replaces an account's hash (a rehash); guests, who
/// have none, and unknown ids are left alone.
pub fn password_hashes_are_replaced_for_accounts_with_one(store: &mut dyn Harness) {
    migrated(store);
    create(store, &player(1, "rehash"));
    create(store, &guest(2));
    let new_hash = "$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$new";
    assert_eq!(store.set_password_hash(id(1), new_hash, T0 + 40), Ok(true));
    let user = store.user_by_id(id(1)).unwrap().unwrap();
    assert_eq!((user.password_hash.as_deref(), user.updated_at_ms), (Some(new_hash), T0 + 40));
    assert_eq!(store.set_password_hash(id(2), new_hash, T0 + 41), Ok(false));
    assert_eq!(store.user_by_id(id(2)).unwrap().unwrap().password_hash, None);
    assert_eq!(store.set_password_hash(id(3), new_hash, T0 + 42), Ok(false));
}

/// Rotation marks the old token used and stores the new one in its family;
/// presenting the used token again revokes the whole family (so the newer
/// token dies too) and stores nothing; other families are untouched.
pub fn refresh_tokens_rotate_and_detect_reuse(store: &mut dyn Harness) {
    migrated(store);
    create(store, &player(1, "tok"));
    let first = token("one", id(1), "family-a", T0);
    store.insert_refresh_token(&first).unwrap();
    assert_eq!(store.refresh_token(&first.token_hash).unwrap(), Some(first.clone()));
    let other_family = token("other", id(1), "family-b", T0);
    store.insert_refresh_token(&other_family).unwrap();

    let second = token("two", id(1), "family-a", T0 + 1_000);
    let rotation = store.rotate_refresh_token(&first.token_hash, &second, T0 + 1_000).unwrap();
    assert_eq!(rotation, Rotation::Rotated { user_id: id(1) });
    let used = store.refresh_token(&first.token_hash).unwrap().unwrap();
    assert_eq!((used.used_at_ms, used.revoked_at_ms), (Some(T0 + 1_000), None));
    assert_eq!(store.refresh_token(&second.token_hash).unwrap(), Some(second.clone()));

    let third = token("three", id(1), "family-a", T0 + 2_000);
    let rotation = store.rotate_refresh_token(&first.token_hash, &third, T0 + 2_000).unwrap();
    assert_eq!(rotation, Rotation::Reused { user_id: id(1), family_id: "family-a".to_owned() });
    assert_eq!(store.refresh_token(&third.token_hash).unwrap(), None);
    for revoked in [&first, &second] {
        let row = store.refresh_token(&revoked.token_hash).unwrap().unwrap();
        assert_eq!(row.revoked_at_ms, Some(T0 + 2_000), "{row:?}");
    }
    assert_eq!(store.refresh_token(&other_family.token_hash).unwrap(), Some(other_family));

    let fourth = token("four", id(1), "family-a", T0 + 3_000);
    for presented in [&second, &first] {
        let rotation = store.rotate_refresh_token(&presented.token_hash, &fourth, T0 + 3_000);
        assert_eq!(rotation, Ok(Rotation::Dead));
    }
    assert_eq!(store.refresh_token(&fourth.token_hash).unwrap(), None);
    assert_eq!(
        store.refresh_token(&second.token_hash).unwrap().unwrap().revoked_at_ms,
        Some(T0 + 2_000),
        "a later revocation does not move the first one"
    );
}

/// A token is dead from its expiry on (nothing changes); an unknown hash
/// is Unknown.
pub fn refresh_tokens_expire_and_unknown_ones_are_unknown(store: &mut dyn Harness) {
    migrated(store);
    create(store, &player(1, "exp"));
    let old = token("old", id(1), "family", T0);
    store.insert_refresh_token(&old).unwrap();
    let new = token("new", id(1), "family", T0 + HOUR_MS);
    let at_expiry = store.rotate_refresh_token(&old.token_hash, &new, old.expires_at_ms);
    assert_eq!(at_expiry, Ok(Rotation::Dead));
    assert_eq!(store.refresh_token(&old.token_hash).unwrap(), Some(old.clone()));
    assert_eq!(store.refresh_token(&new.token_hash).unwrap(), None);

    let just_before = store.rotate_refresh_token(&old.token_hash, &new, old.expires_at_ms - 1);
    assert_eq!(just_before, Ok(Rotation::Rotated { user_id: id(1) }));

    let unknown = hash("never issued");
    assert_eq!(store.rotate_refresh_token(&unknown, &new, T0), Ok(Rotation::Unknown));
    assert_eq!(store.refresh_token(&unknown).unwrap(), None);
}

/// Logout revokes every token of the presented token's family, once, and
/// leaves the user's other families alone.
pub fn refresh_family_is_revoked_on_logout(store: &mut dyn Harness) {
    migrated(store);
    create(store, &player(1, "out"));
    let a1 = token("a1", id(1), "family-a", T0);
    let a2 = token("a2", id(1), "family-a", T0 + 1);
    let b1 = token("b1", id(1), "family-b", T0);
    for token in [&a1, &a2, &b1] {
        store.insert_refresh_token(token).unwrap();
    }
    assert_eq!(store.revoke_refresh_family(&a2.token_hash, T0 + 50), Ok(Some(id(1))));
    for revoked in [&a1, &a2] {
        let row = store.refresh_token(&revoked.token_hash).unwrap().unwrap();
        assert_eq!(row.revoked_at_ms, Some(T0 + 50));
    }
    assert_eq!(store.refresh_token(&b1.token_hash).unwrap(), Some(b1.clone()));
    let next = token("a3", id(1), "family-a", T0 + 60);
    assert_eq!(store.rotate_refresh_token(&a1.token_hash, &next, T0 + 60), Ok(Rotation::Dead));

    assert_eq!(store.revoke_refresh_family(&a1.token_hash, T0 + 70), Ok(Some(id(1))));
    let row = store.refresh_token(&a1.token_hash).unwrap().unwrap();
    assert_eq!(row.revoked_at_ms, Some(T0 + 50));
    assert_eq!(store.revoke_refresh_family(&hash("unknown"), T0 + 70), Ok(None));
}

/// A second token with a stored hash is `Conflict(RefreshToken)`, also as
/// the new token of a rotation, which then changes nothing.
pub fn refresh_token_hash_collisions_conflict(store: &mut dyn Harness) {
    migrated(store);
    create(store, &player(1, "dup"));
    let first = token("same", id(1), "family-a", T0);
    store.insert_refresh_token(&first).unwrap();
    let clash = RefreshToken { family_id: "family-b".to_owned(), ..first.clone() };
    assert_eq!(
        store.insert_refresh_token(&clash),
        Err(StoreError::Conflict(Conflict::RefreshToken))
    );

    let live = token("live", id(1), "family-c", T0);
    store.insert_refresh_token(&live).unwrap();
    let new_with_old_hash = RefreshToken { family_id: "family-c".to_owned(), ..first };
    assert_eq!(
        store.rotate_refresh_token(&live.token_hash, &new_with_old_hash, T0 + 1),
        Err(StoreError::Conflict(Conflict::RefreshToken))
    );
    assert_eq!(store.refresh_token(&live.token_hash).unwrap(), Some(live));

    let orphan = token("orphan", id(2), "family-d", T0);
    let refused = store.insert_refresh_token(&orphan);
    assert!(matches!(refused, Err(StoreError::Internal(_))), "{refused:?}");
}

/// Recording a match stores every seat (guests with no user), adds each
/// account's outcome to its stats and gives it an initial rating the
/// first time, leaving a set rating alone afterwards.
pub fn record_match_updates_stats_and_ratings(store: &mut dyn Harness) {
    migrated(store);
    create(store, &player(1, "ann"));
    create(store, &player(2, "ben"));
    let mut first = a_match(
        100,
        7,
        "tetris",
        vec![
            seat(0, Some(id(1)), Outcome::Win),
            seat(1, Some(id(2)), Outcome::Loss),
            seat(2, None, Outcome::Loss),
        ],
    );
    first.tournament_id = Some(9);
    store.record_match(&first).unwrap();
    let initial = Rating::INITIAL;
    assert_eq!(store.stats(id(1)).unwrap(), [stats("tetris", 1, 0, 0, initial)]);
    assert_eq!(store.stats(id(2)).unwrap(), [stats("tetris", 0, 1, 0, initial)]);
    assert_eq!(store.select_i64("SELECT count(*) FROM match_players WHERE match_id = 100"), 3);
    assert_eq!(
        store.select_i64("SELECT seat FROM match_players WHERE match_id = 100 AND user_id IS NULL"),
        2
    );
    assert_eq!(
        store.select_i64("SELECT count(*) FROM match_players WHERE stats_json = '{\"seat\":1}'"),
        1
    );
    assert_eq!(store.select_i64("SELECT tournament_id FROM matches WHERE id = 100"), 9);
    assert_eq!(store.select_i64("SELECT seed FROM matches WHERE id = 100"), -7);

    let draw = a_match(
        101,
        7,
        "tetris",
        vec![seat(0, Some(id(1)), Outcome::Draw), seat(1, Some(id(2)), Outcome::Draw)],
    );
    store.record_match(&draw).unwrap();
    let solo = a_match(102, 8, "arena", vec![seat(0, Some(id(1)), Outcome::Win)]);
    store.record_match(&solo).unwrap();
    assert_eq!(
        store.stats(id(1)).unwrap(),
        [stats("arena", 1, 0, 0, initial), stats("tetris", 1, 0, 1, initial)]
    );

    let rated = Rating { rating: 1620.5, deviation: 80.25, volatility: 0.0599 };
    store.set_rating(id(1), "tetris", rated, T0 + 5).unwrap();
    let loss = a_match(103, 7, "tetris", vec![seat(0, Some(id(1)), Outcome::Loss)]);
    store.record_match(&loss).unwrap();
    assert_eq!(store.stats(id(1)).unwrap()[1], stats("tetris", 1, 1, 1, rated));
    assert_eq!(
        store.select_i64(&format!("SELECT count(*) FROM ratings WHERE user_id = {}", id(1))),
        2
    );
    assert_eq!(store.stats(id(3)).unwrap(), []);
}

/// A second match with the same id or the same (room, start) is
/// `Conflict(Match)` and changes nothing; an invalid record (a repeated
/// seat, an unknown account) fails whole.
pub fn duplicate_match_is_a_conflict_and_changes_nothing(store: &mut dyn Harness) {
    migrated(store);
    create(store, &player(1, "ann"));
    let players = vec![seat(0, Some(id(1)), Outcome::Win), seat(1, None, Outcome::Loss)];
    let first = a_match(100, 5, "tetris", players.clone());
    store.record_match(&first).unwrap();

    let same_id = MatchRecord { room_id: 6, ..first.clone() };
    let same_start = MatchRecord { id: 101, ..first.clone() };
    for duplicate in [&same_id, &same_start] {
        assert_eq!(store.record_match(duplicate), Err(StoreError::Conflict(Conflict::Match)));
    }
    let unchanged = |store: &mut dyn Harness| {
        assert_eq!(store.select_i64("SELECT count(*) FROM matches"), 1);
        assert_eq!(store.select_i64("SELECT count(*) FROM match_players"), 2);
        assert_eq!(store.stats(id(1)).unwrap(), [stats("tetris", 1, 0, 0, Rating::INITIAL)]);
    };
    unchanged(store);

    let repeated_seat = a_match(102, 5, "tetris", vec![seat(0, Some(id(1)), Outcome::Win); 2]);
    let refused = store.record_match(&repeated_seat);
    assert!(matches!(refused, Err(StoreError::Internal(_))), "{refused:?}");
    let unknown_account = a_match(
        103,
        5,
        "tetris",
        vec![seat(0, Some(id(1)), Outcome::Win), seat(1, Some(id(2)), Outcome::Loss)],
    );
    let refused = store.record_match(&unknown_account);
    assert!(matches!(refused, Err(StoreError::Internal(_))), "{refused:?}");
    unchanged(store);

    let later = MatchRecord { id: 104, started_at_ms: first.started_at_ms + 1, ..first };
    store.record_match(&later).unwrap();
    assert_eq!(store.stats(id(1)).unwrap()[0].wins, 2);
}

/// A solo match is stored and read back like any other but adds nothing
/// to stats and creates no rating (so it stays off the leaderboard); the
/// versus matches around it count as before.
pub fn solo_matches_change_no_stats_or_ratings(store: &mut dyn Harness) {
    migrated(store);
    create(store, &player(1, "solo"));
    let solo = |match_id: i64| MatchRecord {
        mode: SOLO_MODE.to_owned(),
        ..a_match(match_id, match_id, "tetris", vec![seat(0, Some(id(1)), Outcome::Win)])
    };
    store.record_match(&solo(100)).unwrap();
    assert_eq!(store.stats(id(1)).unwrap(), []);
    assert_eq!(store.select_i64("SELECT count(*) FROM player_stats"), 0);
    assert_eq!(store.select_i64("SELECT count(*) FROM ratings"), 0);
    assert_eq!(store.leaderboard("tetris", 10, 0).unwrap(), []);
    assert_eq!(store.match_by_id(100).unwrap(), Some(solo(100)));

    let versus = a_match(101, 7, "tetris", vec![seat(0, Some(id(1)), Outcome::Loss)]);
    store.record_match(&versus).unwrap();
    let rated = Rating { rating: 1444.0, deviation: 120.0, volatility: 0.06 };
    store.set_rating(id(1), "tetris", rated, T0 + 1).unwrap();
    store.record_match(&solo(102)).unwrap();
    assert_eq!(store.stats(id(1)).unwrap(), [stats("tetris", 0, 1, 0, rated)]);
    let history = store.player_matches(id(1), &HistoryQuery::newest(10)).unwrap();
    assert_eq!(history.iter().map(|record| record.id).collect::<Vec<_>>(), [102, 101, 100]);
}

/// `match_by_id` returns the record as written: every seat (guests with no
/// account) in seat order whatever the order written, the tournament,
/// the seed and each seat's stats text verbatim; unknown ids are `None`.
pub fn a_match_reads_back_with_every_seat_in_order(store: &mut dyn Harness) {
    migrated(store);
    create(store, &player(1, "ann"));
    create(store, &player(2, "ben"));
    let mut guest_seat = seat(2, None, Outcome::Loss);
    guest_seat.stats_json = r#"{"note":"it's \"quoted\" \\ ünï","lines":4}"#.to_owned();
    guest_seat.nickname = "'; DROP TABLE matches; --".to_owned();
    let written = MatchRecord {
        tournament_id: Some(9),
        seed: i64::MIN,
        ..a_match(
            100,
            3,
            "arena",
            vec![
                guest_seat.clone(),
                seat(0, Some(id(1)), Outcome::Win),
                seat(1, Some(id(2)), Outcome::Loss),
            ],
        )
    };
    store.record_match(&written).unwrap();
    let mut expected = written.clone();
    expected.players.sort_by_key(|player| player.seat);
    assert_eq!(store.match_by_id(100).unwrap(), Some(expected));
    assert_eq!(store.match_by_id(101).unwrap(), None);
    assert_eq!(store.match_by_id(-100).unwrap(), None);

    let empty = a_match(101, 4, "arena", Vec::new());
    store.record_match(&empty).unwrap();
    assert_eq!(store.match_by_id(101).unwrap(), Some(empty));
}

/// Ann's matches, read a page at a time with each page's last id as the
/// cursor, come out newest first, each exactly once, each with all its
/// seats, whatever order they were recorded in; other players' matches
/// stay out, a match where she held two seats is listed once, the page
/// size is capped, and a cursor past the end gives an empty page.
pub fn player_matches_page_newest_first_through_the_cursor(store: &mut dyn Harness) {
    migrated(store);
    let (ann, ben) = (id(1), id(2));
    create(store, &player(1, "ann"));
    create(store, &player(2, "ben"));
    const MATCHES: i64 = 130;
    let record = |k: i64| -> MatchRecord {
        // Time-ordered ids as new_match_id makes them, with fixed low bits.
        let ended_at_ms = T0 + k * 1_000;
        let players = match k {
            _ if k % 5 == 4 => vec![seat(0, Some(ben), Outcome::Win), seat(1, None, Outcome::Loss)],
            3 => vec![seat(0, Some(ann), Outcome::Win), seat(1, Some(ann), Outcome::Loss)],
            _ => vec![
                seat(0, None, Outcome::Loss),
                seat(1, Some(ben), Outcome::Loss),
                seat(2, Some(ann), Outcome::Win),
            ],
        };
        MatchRecord {
            id: (ended_at_ms << 20) | ((k * 7919) % (1 << 20)),
            started_at_ms: ended_at_ms - 60_000,
            ended_at_ms,
            ..a_match(0, k + 1, "tetris", players)
        }
    };
    // Recorded in a scrambled order (37 is prime to 130).
    for step in 0..MATCHES {
        store.record_match(&record(step * 37 % MATCHES)).unwrap();
    }
    let mut expected: Vec<MatchRecord> = (0..MATCHES)
        .map(record)
        .filter(|record| record.players.iter().any(|player| player.user_id == Some(ann)))
        .collect();
    expected.reverse();
    assert!(expected.len() > HISTORY_PAGE_MAX as usize, "{}", expected.len());

    const PAGE: u32 = 7;
    let mut read: Vec<MatchRecord> = Vec::new();
    let mut query = HistoryQuery::newest(PAGE);
    let mut pages = 0;
    loop {
        let page = store.player_matches(ann, &query).unwrap();
        pages += 1;
        assert!(page.len() <= PAGE as usize);
        let full = page.len() == PAGE as usize;
        query.before_id = page.last().map(|record| record.id);
        read.extend(page);
        if !full {
            break;
        }
        assert!(pages <= MATCHES, "the cursor never ends");
    }
    assert_eq!(read.len(), expected.len());
    assert_eq!(read, expected, "every match once, newest first, with every seat");
    assert_eq!(pages, expected.len().div_ceil(PAGE as usize) as i64);

    let capped = store.player_matches(ann, &HistoryQuery::newest(u32::MAX)).unwrap();
    assert_eq!(capped.len(), HISTORY_PAGE_MAX as usize);
    assert_eq!(capped[..], expected[..HISTORY_PAGE_MAX as usize]);
    assert_eq!(store.player_matches(ann, &HistoryQuery::newest(0)).unwrap(), []);
    let oldest = expected.last().unwrap().id;
    for before_id in [oldest, 1, 0, i64::MIN] {
        let past_the_end = HistoryQuery { before_id: Some(before_id), ..HistoryQuery::newest(5) };
        assert_eq!(store.player_matches(ann, &past_the_end).unwrap(), [], "{before_id}");
    }
    let top = HistoryQuery { before_id: Some(i64::MAX), ..HistoryQuery::newest(1) };
    assert_eq!(store.player_matches(ann, &top).unwrap()[..], expected[..1]);
    // Ben's history is his own: every match but the one ann played alone.
    let oldest_of_ben = HistoryQuery { before_id: Some(record(5).id), ..HistoryQuery::newest(9) };
    let expected_of_ben: Vec<MatchRecord> = [4, 2, 1, 0].into_iter().map(record).collect();
    assert_eq!(store.player_matches(ben, &oldest_of_ben).unwrap(), expected_of_ben);
    assert_eq!(store.player_matches(id(3), &HistoryQuery::newest(10)).unwrap(), []);
}

/// Mode and game filters are exact; the start-time window is half-open,
/// `[from_ms, to_ms)`; filters combine with each other and the cursor.
pub fn player_matches_filter_by_mode_game_and_start_time(store: &mut dyn Harness) {
    migrated(store);
    create(store, &player(1, "ann"));
    create(store, &player(2, "ben"));
    // (id, game, mode): ids in start order, all ann's but 106.
    let played = [
        (100, "tetris", "versus"),
        (101, "arena", "versus"),
        (102, "tetris", SOLO_MODE),
        (103, "tetris", "versus"),
        (104, "arena", SOLO_MODE),
        (105, "tetris", "versus"),
    ];
    for (match_id, game, mode) in played {
        let players = vec![seat(0, Some(id(1)), Outcome::Win), seat(1, None, Outcome::Loss)];
        let record = MatchRecord { mode: mode.to_owned(), ..a_match(match_id, 1, game, players) };
        store.record_match(&record).unwrap();
    }
    let bens = a_match(106, 2, "tetris", vec![seat(0, Some(id(2)), Outcome::Win)]);
    store.record_match(&bens).unwrap();
    let start = |match_id: i64| T0 + match_id;
    let ids = |store: &mut dyn Harness, query: HistoryQuery| -> Vec<i64> {
        let page = store.player_matches(id(1), &query).unwrap();
        page.iter().map(|record| record.id).collect()
    };
    let all = HistoryQuery::newest(HISTORY_PAGE_MAX);
    let text = |value: &str| Some(value.to_owned());
    const NONE: [i64; 0] = [];

    assert_eq!(ids(store, all.clone()), [105, 104, 103, 102, 101, 100]);
    assert_eq!(
        ids(store, HistoryQuery { mode: text("versus"), ..all.clone() }),
        [105, 103, 101, 100]
    );
    assert_eq!(ids(store, HistoryQuery { game: text("arena"), ..all.clone() }), [104, 101]);
    let solo_tetris = HistoryQuery { mode: text(SOLO_MODE), game: text("tetris"), ..all.clone() };
    assert_eq!(ids(store, solo_tetris), [102]);
    assert_eq!(ids(store, HistoryQuery { game: text("chess"), ..all.clone() }), NONE);
    assert_eq!(ids(store, HistoryQuery { mode: text("Versus"), ..all.clone() }), NONE, "exact");

    let window = HistoryQuery { from_ms: Some(start(101)), to_ms: Some(start(104)), ..all.clone() };
    assert_eq!(ids(store, window), [103, 102, 101], "from included, to excluded");
    assert_eq!(ids(store, HistoryQuery { from_ms: Some(start(104)), ..all.clone() }), [105, 104]);
    assert_eq!(ids(store, HistoryQuery { to_ms: Some(start(101)), ..all.clone() }), [100]);
    let empty = HistoryQuery { from_ms: Some(start(103)), to_ms: Some(start(103)), ..all.clone() };
    assert_eq!(ids(store, empty), NONE);
    let inverted =
        HistoryQuery { from_ms: Some(start(105)), to_ms: Some(start(100)), ..all.clone() };
    assert_eq!(ids(store, inverted), NONE);

    // One tetris versus match a page: the cursor walks the filtered list.
    let mut query = HistoryQuery { mode: text("versus"), game: text("tetris"), ..all };
    query.limit = 1;
    let mut walked = Vec::new();
    while let [record] = &store.player_matches(id(1), &query).unwrap()[..] {
        walked.push(record.id);
        query.before_id = Some(record.id);
    }
    assert_eq!(walked, [105, 103, 100]);
}

/// The leaderboard orders by rating, then lower deviation, then id; pages
/// continue the ranks; the limit is capped; other games stay out.
pub fn leaderboard_orders_and_pages(store: &mut dyn Harness) {
    migrated(store);
    let board = [
        (1, 1600.0, 50.0),
        (2, 1700.0, 80.0),
        (3, 1600.0, 40.0),
        (4, 1600.0, 40.0),
        (5, 1400.0, 30.0),
    ];
    for (n, rating, deviation) in board {
        create(store, &player(n, &format!("p{n}")));
        let first = Rating { rating: 1.0, deviation: 1.0, volatility: 0.06 };
        store.set_rating(id(n), "tetris", first, T0).unwrap();
        store
            .set_rating(id(n), "tetris", Rating { rating, deviation, volatility: 0.06 }, T0 + 1)
            .unwrap();
    }
    create(store, &player(6, "p6"));
    store.set_rating(id(6), "arena", Rating::INITIAL, T0).unwrap();
    let played = a_match(
        100,
        1,
        "tetris",
        vec![seat(0, Some(id(2)), Outcome::Win), seat(1, Some(id(5)), Outcome::Loss)],
    );
    store.record_match(&played).unwrap();

    let ranked = |store: &mut dyn Harness, limit: u32, offset: u64| -> Vec<(i64, i64, i64)> {
        let page = store.leaderboard("tetris", limit, offset).unwrap();
        page.iter()
            .map(|entry| (entry.rank, entry.user_id - ACCOUNT_ID_MIN, entry.matches))
            .collect()
    };
    assert_eq!(ranked(store, 2, 0), [(1, 2, 1), (2, 3, 0)]);
    assert_eq!(ranked(store, 2, 2), [(3, 4, 0), (4, 1, 0)]);
    assert_eq!(ranked(store, 2, 4), [(5, 5, 1)]);
    assert_eq!(ranked(store, 2, 6), []);
    assert_eq!(ranked(store, 0, 0), []);
    assert_eq!(ranked(store, u32::MAX, 0).len(), 5);
    assert_eq!(ranked(store, 10, u64::MAX), []);

    let top = &store.leaderboard("tetris", 1, 0).unwrap()[0];
    assert_eq!(top.nickname, "player 2");
    assert_eq!(top.rating, Rating { rating: 1700.0, deviation: 80.0, volatility: 0.06 });
    let arena = store.leaderboard("arena", 10, 0).unwrap();
    assert_eq!(arena.iter().map(|entry| entry.user_id).collect::<Vec<_>>(), [id(6)]);
    assert_eq!(store.leaderboard("chess", 10, 0).unwrap(), []);
}

/// Text that looks like SQL, LIKE wildcards, quotes and backslashes are
/// data: stored and read back verbatim, matched exactly.
pub fn hostile_text_is_stored_verbatim(store: &mut dyn Harness) {
    migrated(store);
    let names = [
        "x'; DROP TABLE users; --",
        "Robert'); DROP TABLE students;--",
        "%",
        "_",
        "a\"b",
        "back\\slash",
        "  spaced  ",
        "$1",
    ];
    for (n, name) in (1..).zip(names) {
        create(store, &player(n, name));
    }
    for (n, name) in (1..).zip(names) {
        let user = store.user_by_username(name).unwrap().unwrap_or_else(|| panic!("{name}"));
        assert_eq!((user.id, user.username.as_deref()), (id(n), Some(name)));
        let shouted = name.to_ascii_uppercase();
        assert_eq!(store.user_by_username(&shouted).unwrap().unwrap().id, id(n), "{shouted}");
    }
    assert_eq!(store.user_by_username("x%").unwrap(), None);
    assert_eq!(store.select_i64("SELECT count(*) FROM users"), names.len() as i64);

    let fields = ProfileFields {
        nickname: "'; DELETE FROM users; --".to_owned(),
        bio: "line one\n\ttab ' \" \\ %s {} $$ ;".to_owned(),
        country: None,
    };
    let profile = store.update_profile(id(1), &fields, T0 + 1).unwrap().unwrap();
    assert_eq!(
        (profile.nickname.as_str(), profile.bio.as_str()),
        (fields.nickname.as_str(), fields.bio.as_str())
    );
    assert_eq!(store.select_i64("SELECT count(*) FROM player_profiles"), names.len() as i64);

    let game = "o'brien\"; --";
    store.record_match(&a_match(100, 1, game, vec![seat(0, Some(id(1)), Outcome::Win)])).unwrap();
    assert_eq!(store.stats(id(1)).unwrap()[0].game, game);
    assert_eq!(store.leaderboard(game, 10, 0).unwrap()[0].user_id, id(1));
}

/// Deleting an account (by hand: the port has no delete yet) removes its
/// tokens, profile, stats and ratings and keeps its match seats anonymous.
pub fn deleting_a_user_keeps_match_history(store: &mut dyn Harness) {
    migrated(store);
    create(store, &player(1, "gone"));
    create(store, &player(2, "stays"));
    store.insert_refresh_token(&token("t", id(1), "family", T0)).unwrap();
    let players = vec![seat(0, Some(id(1)), Outcome::Win), seat(1, Some(id(2)), Outcome::Loss)];
    store.record_match(&a_match(100, 1, "tetris", players)).unwrap();

    store.execute_sql(&format!("DELETE FROM users WHERE id = {}", id(1)));
    for table in ["refresh_tokens", "player_profiles", "player_stats", "ratings"] {
        let sql = format!("SELECT count(*) FROM {table} WHERE user_id = {}", id(1));
        assert_eq!(store.select_i64(&sql), 0, "{table}");
    }
    assert_eq!(store.select_i64("SELECT count(*) FROM match_players"), 2);
    assert_eq!(store.select_i64("SELECT seat FROM match_players WHERE user_id IS NULL"), 0);
    assert_eq!(store.stats(id(2)).unwrap().len(), 1);
    let kept = store.match_by_id(100).unwrap().unwrap();
    let seats: Vec<Option<i64>> = kept.players.iter().map(|player| player.user_id).collect();
    assert_eq!(seats, [None, Some(id(2))]);
    assert_eq!(store.player_matches(id(1), &HistoryQuery::newest(10)).unwrap(), []);
    assert_eq!(store.player_matches(id(2), &HistoryQuery::newest(10)).unwrap(), [kept]);
}

/// A migration whose recorded checksum differs from the binary's stops
/// both `migrate` and `schema_status`.
pub fn edited_migration_is_refused(store: &mut dyn Harness) {
    migrated(store);
    store.execute_sql("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1");
    let edited = MigrationError::Edited { version: 1, name: MIGRATIONS[0].name.to_owned() };
    assert_eq!(store.migrate(T0 + 1), Err(StoreError::Schema(edited.clone())));
    assert_eq!(store.schema_status(), Err(StoreError::Schema(edited)));
}

/// A database migrated by a newer binary stops both `migrate` and
/// `schema_status`, naming both versions.
pub fn newer_database_is_refused(store: &mut dyn Harness) {
    migrated(store);
    store.execute_sql(
        "INSERT INTO schema_migrations (version, name, checksum, applied_at_ms) \
         VALUES (9999, 'from_the_future', 'x', 0)",
    );
    let newer = MigrationError::NewerDatabase { database: 9999, binary: migrate::binary_version() };
    assert_eq!(store.migrate(T0 + 1), Err(StoreError::Schema(newer.clone())));
    assert_eq!(store.schema_status(), Err(StoreError::Schema(newer)));
}

#[cfg(test)]
mod tests {
    /// Every `pub fn` check in this file is in the macro's list and the
    /// other way round, so no adapter silently skips one.
    #[test]
    fn the_macro_lists_every_check() {
        let source = include_str!("conformance.rs");
        let mut checks: Vec<&str> = source
            .lines()
            .filter_map(|line| line.strip_prefix("pub fn "))
            .filter(|rest| rest.contains("(store: &mut dyn Harness)"))
            .map(|rest| &rest[..rest.find('(').unwrap()])
            .collect();
        let start = source.find("// conformance-list-start").unwrap();
        let end = source.find("// conformance-list-end").unwrap();
        let mut listed: Vec<&str> = source[start..end]
            .lines()
            .skip(1)
            .map(|line| line.trim().trim_end_matches(','))
            .filter(|name| !name.is_empty())
            .collect();
        checks.sort_unstable();
        listed.sort_unstable();
        assert!(checks.len() >= 18, "{checks:?}");
        assert_eq!(checks, listed);
    }
}
