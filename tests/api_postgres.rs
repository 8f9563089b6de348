//! The REST API of a real `ludus serve` on real Postgres.
//!
//! - The account flow on the shared database (a schema of the test's own):
//!   what the API acknowledges is in the tables, refresh tokens are stored
//!   as hashes only, and refused requests store nothing.
//! - Solo results and match history on the shared database: what the API
//!   acknowledges is in `matches` and `match_players` and nowhere else;
//!   history pages and filters; a page is an index range scan.
//! - An outage, on a cluster the test starts and then kills: while Postgres
//!   is down the API answers 503 with Retry-After at once, the process
//!   lives on, it recovers by itself when Postgres returns, and no write it
//!   acknowledged is lost.
//!
//! Without Postgres (the shared server, or initdb and pg_ctl for the own
//! cluster) these tests fail, saying what is missing: they never skip.

mod support;
#[path = "support/postgres.rs"]
mod support_postgres;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ludus::services::auth::jwt::{AccessClaims, JwtKeys};
use ludus::services::auth::refresh::token_hash;
use ludus::services::store::postgres::{
    PostgresStore, ALIVE_CHECK_AFTER_IDLE, PLAYER_MATCH_IDS_SQL, RECONNECT_DELAY_MAX,
};
use ludus::services::store::{Store, ACCOUNT_ID_MIN, MIGRATIONS};
use serde_json::{json, Value};
use support::{http, http_json, start_server_with, HttpAnswer, ServerOptions, STARTUP_TIMEOUT};
use support_postgres::{OwnCluster, TestSchema};

const SECRET: &str = "k1:an-api-postgres-test-secret-of-32-bytes";
/// Cheap argon2 for tests; the defaults are measured in benches/auth.rs.
const CHEAP_ARGON2: &str = "[api]\nargon2_memory_kib = 1024\nargon2_iterations = 1\n";

fn register(address: SocketAddr, username: &str, password: &str) -> HttpAnswer {
    let body = json!({ "username": username, "password": password });
    http_json(address, "POST", "/api/auth/register", None, &body)
}

fn login(address: SocketAddr, username: &str, password: &str) -> HttpAnswer {
    let body = json!({ "username": username, "password": password });
    http_json(address, "POST", "/api/auth/login", None, &body)
}

fn refresh(address: SocketAddr, token: &str) -> HttpAnswer {
    http_json(address, "POST", "/api/auth/refresh", None, &json!({ "refresh_token": token }))
}

fn me(address: SocketAddr, token: &str) -> HttpAnswer {
    http(address, "GET", "/api/players/me", &[("authorization", &format!("Bearer {token}"))], b"")
}

fn tokens(answer: &HttpAnswer) -> (String, String) {
    let body = answer.json();
    let access = body["access_token"].as_str().expect("an access token").to_owned();
    let refresh = body["refresh_token"].as_str().expect("a refresh token").to_owned();
    (access, refresh)
}

fn user_id(answer: &HttpAnswer) -> i64 {
    answer.json()["user"]["id"].as_str().expect("a user id").parse().unwrap()
}

fn text(answer: &HttpAnswer) -> String {
    format!("{} {}", answer.status, String::from_utf8_lossy(&answer.body))
}

/// Rows of every table in `schema` whose text form contains `needle`.
fn rows_containing(db: &mut postgres::Client, schema: &str, needle: &str) -> i64 {
    let tables: Vec<String> = db
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(tables.iter().any(|table| table == "refresh_tokens"), "{tables:?}");
    tables
        .iter()
        .map(|table| {
            let sql = format!("SELECT count(*) FROM {table} t WHERE strpos(t::text, $1) > 0");
            db.query_one(&sql, &[&needle]).unwrap().get::<_, i64>(0)
        })
        .sum()
}

/// (family, used, revoked) of the stored token whose secret is `secret`.
fn stored_token(db: &mut postgres::Client, secret: &str) -> Option<(String, bool, bool)> {
    let row = db
        .query_opt(
            "SELECT family_id, used_at_ms IS NOT NULL, revoked_at_ms IS NOT NULL \
             FROM refresh_tokens WHERE token_hash = $1",
            &[&token_hash(secret)],
        )
        .unwrap()?;
    Some((row.get(0), row.get(1), row.get(2)))
}

fn count(db: &mut postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).unwrap().get(0)
}

/// The whole account flow against the shared Postgres, checked in the
/// tables after each step: register, login, profile read and edit,
/// rotation, reuse detection, guest upgrade, refused requests.
#[test]
fn the_account_flow_on_postgres_stores_exactly_what_it_acknowledges() {
    let mut schema = TestSchema::create();
    let server = start_server_with(&ServerOptions {
        shards: 2,
        env: vec![("JWT_SECRET".into(), SECRET.into()), ("DATABASE_URL".into(), schema.url())],
        config_toml: Some(CHEAP_ARGON2.to_owned()),
    });
    let address = server.http;
    let mut db = schema.client();

    let ready = http(address, "GET", "/api/ready", &[], b"");
    assert_eq!(ready.status, 200, "{}", text(&ready));
    assert_eq!(ready.json()["store"], "postgres");
    let newest = MIGRATIONS.last().unwrap().version;
    assert_eq!(ready.json()["schema_version"], newest);
    assert_eq!(count(&mut db, "SELECT max(version) FROM schema_migrations"), newest);

    // Register: the user, its profile and one refresh token, by hash.
    let password = "correct horse battery";
    let created = register(address, "Alice", password);
    assert_eq!(created.status, 201, "{}", text(&created));
    let alice = user_id(&created);
    let (access, first_refresh) = tokens(&created);
    let row = db
        .query_one(
            "SELECT username, username_key, nickname, password_hash, role FROM users WHERE id = $1",
            &[&alice],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "Alice");
    assert_eq!(row.get::<_, String>(1), "alice");
    assert_eq!(row.get::<_, String>(2), "Alice");
    assert!(row.get::<_, String>(3).starts_with("$argon2id$"), "{}", row.get::<_, String>(3));
    assert_eq!(row.get::<_, String>(4), "player");
    let profile = db
        .query_one("SELECT bio, country FROM player_profiles WHERE user_id = $1", &[&alice])
        .unwrap();
    assert_eq!(
        (profile.get::<_, String>(0), profile.get::<_, Option<String>>(1)),
        ("".into(), None)
    );
    let (first_family, used, revoked) = stored_token(&mut db, &first_refresh).expect("stored");
    assert!(!used && !revoked);
    assert_eq!(rows_containing(&mut db, &schema.name, &first_refresh), 0, "secret stored");
    assert_eq!(rows_containing(&mut db, &schema.name, password), 0, "password stored");

    // Login (any case) starts a second family; me reads what is stored.
    let logged_in = login(address, "ALICE", password);
    assert_eq!(logged_in.status, 200, "{}", text(&logged_in));
    let (_, login_refresh) = tokens(&logged_in);
    let (login_family, _, _) = stored_token(&mut db, &login_refresh).expect("stored");
    assert_ne!(login_family, first_family);
    let profile = me(address, &access);
    assert_eq!(profile.status, 200, "{}", text(&profile));
    assert_eq!(
        (profile.json()["id"].clone(), profile.json()["nickname"].clone()),
        (json!(alice.to_string()), json!("Alice"))
    );

    // PUT me: nickname on users, bio and country on the profile.
    let update = json!({ "nickname": "Alice ♠", "bio": "plays T-spins", "country": "FR" });
    let updated = http_json(address, "PUT", "/api/players/me", Some(&access), &update);
    assert_eq!(updated.status, 200, "{}", text(&updated));
    let row = db
        .query_one(
            "SELECT u.nickname, p.bio, p.country FROM users u \
             JOIN player_profiles p ON p.user_id = u.id WHERE u.id = $1",
            &[&alice],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "Alice ♠");
    assert_eq!(row.get::<_, String>(1), "plays T-spins");
    assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some("FR"));
    assert_eq!(me(address, &access).json()["bio"], "plays T-spins");

    // Refresh rotates within the family: the old token is spent.
    let rotated = refresh(address, &first_refresh);
    assert_eq!(rotated.status, 200, "{}", text(&rotated));
    let (_, second_refresh) = tokens(&rotated);
    assert_eq!(stored_token(&mut db, &first_refresh), Some((first_family.clone(), true, false)));
    assert_eq!(stored_token(&mut db, &second_refresh), Some((first_family.clone(), false, false)));
    assert_eq!(rows_containing(&mut db, &schema.name, &second_refresh), 0, "secret stored");

    // The spent token again: the whole family is revoked, the other login
    // is not.
    let replay = refresh(address, &first_refresh);
    assert_eq!((replay.status, replay.error_code().as_str()), (401, "refresh_token_reused"));
    let family_alive: i64 = db
        .query_one(
            "SELECT count(*) FROM refresh_tokens WHERE family_id = $1 AND revoked_at_ms IS NULL",
            &[&first_family],
        )
        .unwrap()
        .get(0);
    assert_eq!(family_alive, 0, "every token of the reused family is revoked");
    assert_eq!(stored_token(&mut db, &login_refresh), Some((login_family, false, false)));
    assert_eq!(refresh(address, &second_refresh).status, 401);
    let other = refresh(address, &login_refresh);
    assert_eq!(other.status, 200, "the other login lives: {}", text(&other));
    let (_, other_refresh) = tokens(&other);

    // A guest, then its upgrade: the same row becomes a player.
    let guest = http_json(address, "POST", "/api/auth/guest", None, &json!({"nickname": "zoë"}));
    assert_eq!(guest.status, 201, "{}", text(&guest));
    let guest_id = user_id(&guest);
    let (guest_access, guest_refresh) = tokens(&guest);
    let row = db
        .query_one("SELECT username, password_hash, role FROM users WHERE id = $1", &[&guest_id])
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0), None);
    assert_eq!(row.get::<_, Option<String>>(1), None);
    assert_eq!(row.get::<_, String>(2), "guest");
    assert!(stored_token(&mut db, &guest_refresh).is_some());
    let body = json!({ "username": "zoe", "password": "now with a password" });
    let upgraded = http_json(address, "POST", "/api/auth/upgrade", Some(&guest_access), &body);
    assert_eq!(upgraded.status, 200, "{}", text(&upgraded));
    assert_eq!(user_id(&upgraded), guest_id);
    let row = db
        .query_one(
            "SELECT username, username_key, password_hash, role, nickname FROM users WHERE id = $1",
            &[&guest_id],
        )
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("zoe"));
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("zoe"));
    assert!(row.get::<_, Option<String>>(2).unwrap().starts_with("$argon2id$"));
    assert_eq!(row.get::<_, String>(3), "player");
    assert_eq!(row.get::<_, String>(4), "zoë");
    assert_eq!(count(&mut db, "SELECT count(*) FROM users"), 2, "alice and zoe, one row each");
    assert_eq!(login(address, "zoe", "now with a password").status, 200);

    refused_requests_store_nothing(address, &mut db, &access, &schema.name);

    // The database ends the server's idle sessions (a failover, an idle
    // timeout, an administrator): no request fails for it. The test's own
    // connection is one of them.
    let warm: Vec<u16> = (0..12).map(|_| me(address, &access).status).collect();
    assert!(warm.iter().all(|status| *status == 200), "{warm:?}");
    drop(db);
    let ended = schema.terminate_sessions();
    assert!(ended >= 1, "the server's sessions were found: {ended}");
    thread::sleep(ALIVE_CHECK_AFTER_IDLE + Duration::from_millis(100));
    let after: Vec<u16> = (0..12).map(|_| me(address, &access).status).collect();
    assert!(after.iter().all(|status| *status == 200), "after {ended} sessions ended: {after:?}");
    let mut db = schema.client();

    // Logout revokes that login's family in the table.
    let body = json!({ "refresh_token": other_refresh });
    let logout = http_json(address, "POST", "/api/auth/logout", None, &body);
    assert_eq!(logout.status, 204, "{}", text(&logout));
    let (other_family, _, revoked) = stored_token(&mut db, &other_refresh).expect("stored");
    assert!(revoked);
    let alive: i64 = db
        .query_one(
            "SELECT count(*) FROM refresh_tokens WHERE family_id = $1 AND revoked_at_ms IS NULL",
            &[&other_family],
        )
        .unwrap()
        .get(0);
    assert_eq!(alive, 0);
}

/// Bad password policy, injection-looking names, a duplicate username, an
/// upgrade of a player: each refused, and the tables are as before.
fn refused_requests_store_nothing(
    address: SocketAddr,
    db: &mut postgres::Client,
    player_access: &str,
    schema: &str,
) {
    const SNAPSHOT: &str = "SELECT (SELECT count(*) FROM users) * 1000000 \
        + (SELECT count(*) FROM refresh_tokens) * 1000 + (SELECT count(*) FROM player_profiles)";
    let users_before = count(db, "SELECT count(*) FROM users");
    let before = count(db, SNAPSHOT);
    let injection = "x'; DROP TABLE users; --";

    let short = register(address, "erin", "short");
    assert_eq!((short.status, short.error_code().as_str()), (400, "invalid_request"));
    let bad_name = register(address, injection, "a fine password");
    assert_eq!((bad_name.status, bad_name.error_code().as_str()), (400, "invalid_request"));
    let injected = login(address, injection, "' OR '1'='1");
    assert_eq!((injected.status, injected.error_code().as_str()), (401, "invalid_credentials"));
    let injected = login(address, "alice' --", "' OR '1'='1");
    assert_eq!(injected.status, 401);
    let duplicate = register(address, "ALICE", "another fine password");
    assert_eq!((duplicate.status, duplicate.error_code().as_str()), (409, "username_taken"));
    let body = json!({ "username": "erin", "password": "a fine password" });
    let not_guest = http_json(address, "POST", "/api/auth/upgrade", Some(player_access), &body);
    assert_eq!((not_guest.status, not_guest.error_code().as_str()), (409, "not_a_guest"));
    let bad_profile = json!({ "nickname": "x", "country": "France" });
    let put = http_json(address, "PUT", "/api/players/me", Some(player_access), &bad_profile);
    assert_eq!(put.status, 400);

    assert_eq!(count(db, SNAPSHOT), before, "users, tokens and profiles unchanged");
    assert_eq!(count(db, "SELECT count(*) FROM users"), users_before, "the table is still there");
    assert_eq!(count(db, "SELECT count(*) FROM users WHERE username_key = 'erin'"), 0);
    assert_eq!(count(db, "SELECT count(*) FROM users WHERE username_key = 'alice'"), 1);
    assert_eq!(rows_containing(db, schema, "DROP TABLE"), 0);
    assert_eq!(count(db, "SELECT count(*) FROM users WHERE nickname = 'x'"), 0);
}

/// The pages of a player's history through `next_cursor`, concatenated.
fn walk_history(address: SocketAddr, player_id: i64, query: &str) -> Vec<Value> {
    let (mut matches, mut cursor) = (Vec::new(), None::<String>);
    for _ in 0..100 {
        let mut path = format!("/api/players/{player_id}/matches?{query}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = http(address, "GET", &path, &[], b"");
        assert_eq!(page.status, 200, "{path}: {}", text(&page));
        let body = page.json();
        matches.extend(body["matches"].as_array().unwrap().iter().cloned());
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return matches,
        }
    }
    panic!("the cursor never ends");
}

/// Solo results and match history on Postgres, checked in the tables:
/// each acknowledged result is one `matches` row (mode solo, its own id
/// as room id, started duration_ms before it ended) and one seat (the
/// caller, first of one, the figures in stats_json), and nothing in
/// player_stats or ratings; GET /api/matches/{id} and the history (paged
/// through the cursor, filtered) read back exactly what was posted; a
/// post without a valid token is 401 and stores nothing.
#[test]
fn solo_results_and_match_history_on_postgres() {
    let schema = TestSchema::create();
    let server = start_server_with(&ServerOptions {
        shards: 2,
        env: vec![("JWT_SECRET".into(), SECRET.into()), ("DATABASE_URL".into(), schema.url())],
        config_toml: Some(CHEAP_ARGON2.to_owned()),
    });
    let address = server.http;
    let mut db = schema.client();
    let guest = http_json(address, "POST", "/api/auth/guest", None, &json!({"nickname": "ann"}));
    assert_eq!(guest.status, 201, "{}", text(&guest));
    let ann = user_id(&guest);
    let (access, _) = tokens(&guest);

    let mut posted = Vec::new();
    for index in 0..5i64 {
        let body = json!({
            "game": "tetris", "score": 1_000 * index, "lines": index, "level": 1, "pieces": 3 * index,
            "duration_ms": 10_000 * (index % 2), "seed": format!("{}", u64::MAX / 2 + index as u64),
        });
        let answer = http_json(address, "POST", "/api/solo_results", Some(&access), &body);
        assert_eq!(answer.status, 201, "{}", text(&answer));
        posted.push(answer.json());
    }
    let id_of = |record: &Value| record["id"].as_str().unwrap().parse::<i64>().unwrap();
    posted.sort_by_key(|record| std::cmp::Reverse(id_of(record)));

    assert_eq!(count(&mut db, "SELECT count(*) FROM matches"), 5);
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM matches WHERE mode = 'solo' AND room_id = id"),
        5
    );
    assert_eq!(count(&mut db, "SELECT count(*) FROM match_players"), 5);
    assert_eq!(count(&mut db, "SELECT count(*) FROM player_stats"), 0, "solo counts in no stats");
    assert_eq!(count(&mut db, "SELECT count(*) FROM ratings"), 0, "nor in ratings");
    let newest = &posted[0];
    let row = db
        .query_one(
            "SELECT m.started_at_ms, m.ended_at_ms, m.seed, p.seat, p.user_id, p.nickname, \
             p.placement, p.outcome, p.score, p.stats_json \
             FROM matches m JOIN match_players p ON p.match_id = m.id WHERE m.id = $1",
            &[&id_of(newest)],
        )
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), newest["started_at_ms"].as_i64().unwrap());
    assert_eq!(row.get::<_, i64>(1), newest["ended_at_ms"].as_i64().unwrap());
    assert_eq!((row.get::<_, i64>(2) as u64).to_string(), newest["seed"].as_str().unwrap());
    assert_eq!((row.get::<_, i32>(3), row.get::<_, Option<i64>>(4)), (0, Some(ann)));
    assert_eq!((row.get::<_, String>(5), row.get::<_, i32>(6)), ("ann".to_owned(), 1));
    assert_eq!(row.get::<_, String>(7), "win");
    assert_eq!(row.get::<_, i64>(8), newest["players"][0]["score"].as_i64().unwrap());
    let stats: Value = serde_json::from_str(&row.get::<_, String>(9)).unwrap();
    assert_eq!(stats, newest["players"][0]["stats"]);
    assert_eq!(stats.as_object().unwrap().len(), 4, "lines, level, pieces, duration_ms: {stats}");

    for record in &posted {
        let read = http(address, "GET", &format!("/api/matches/{}", id_of(record)), &[], b"");
        assert_eq!((read.status, &read.json()), (200, record));
    }
    let missing = http(address, "GET", "/api/matches/1", &[], b"");
    assert_eq!((missing.status, missing.error_code().as_str()), (404, "match_not_found"));
    assert_eq!(walk_history(address, ann, "limit=2"), posted, "newest first, each once");
    assert_eq!(walk_history(address, ann, "limit=1&mode=solo&game=tetris"), posted);
    assert_eq!(walk_history(address, ann, "mode=versus"), Vec::<Value>::new());
    // The 10 s runs started before the instant ones: a window ending just
    // after the earliest start holds only (some of) them.
    let starts = posted.iter().map(|record| record["started_at_ms"].as_i64().unwrap());
    let to = starts.min().unwrap() + 1;
    let before_to: Vec<Value> = posted
        .iter()
        .filter(|record| record["started_at_ms"].as_i64().unwrap() < to)
        .cloned()
        .collect();
    assert!(!before_to.is_empty() && before_to.len() <= 2, "{before_to:?}");
    assert_eq!(walk_history(address, ann, &format!("limit=1&from=0&to={to}")), before_to);

    let keys = JwtKeys::from_config(SECRET).unwrap();
    let now_s =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
            as i64;
    let expired = keys.sign(&AccessClaims::new(ann, "guest", "ann", now_s - 3_600));
    let body = json!({
        "game": "tetris", "score": 1, "lines": 1, "level": 1, "pieces": 1, "duration_ms": 1,
    });
    for (token, code) in [(None, "missing_token"), (Some(expired.as_str()), "token_expired")] {
        let refused = http_json(address, "POST", "/api/solo_results", token, &body);
        assert_eq!((refused.status, refused.error_code().as_str()), (401, code));
    }
    let mut unknown_field = body.clone();
    unknown_field["mode"] = json!("versus");
    let refused = http_json(address, "POST", "/api/solo_results", Some(&access), &unknown_field);
    assert_eq!(refused.status, 400);
    assert_eq!(count(&mut db, "SELECT count(*) FROM matches"), 5, "nothing stored");
}

/// With enough rows for the planner to care (50 accounts of 800 matches
/// each: 20000 matches of two seats, analysed), a history page on
/// Postgres, filtered or not, is a backwards scan of
/// `match_players_user_match` bounded on user and id, each match found by
/// its key, nothing sorted: LIMIT stops the scan.
#[test]
fn a_history_page_is_an_index_range_scan_on_postgres() {
    let schema = TestSchema::create();
    let mut store = PostgresStore::from_url(&schema.url()).unwrap();
    store.migrate(1).unwrap();
    let mut db = schema.client();
    db.batch_execute(&format!(
        "INSERT INTO users (id, nickname, role, created_at_ms, updated_at_ms) \
         SELECT {ACCOUNT_ID_MIN} + g, 'p' || g, 'guest', 0, 0 FROM generate_series(1, 50) g; \
         INSERT INTO matches (id, room_id, game, mode, seed, started_at_ms, ended_at_ms) \
         SELECT g, g, CASE WHEN g % 2 = 0 THEN 'tetris' ELSE 'arena' END, 'versus', 0, g, g \
         FROM generate_series(1, 20000) g; \
         INSERT INTO match_players (match_id, seat, user_id, nickname, placement, outcome, score) \
         SELECT g, s, {ACCOUNT_ID_MIN} + 1 + (g * 7 + s * 13) % 50, 'p', s, 'win', 0 \
         FROM generate_series(1, 20000) g, generate_series(0, 1) s; \
         ANALYZE"
    ))
    .unwrap();
    let user_id = ACCOUNT_ID_MIN + 8;
    let no_time: Option<i64> = None;
    for (mode, game, from_ms) in
        [(None, None, None), (Some("versus".to_owned()), Some("tetris".to_owned()), Some(10i64))]
    {
        let rows = db
            .query(
                &format!("EXPLAIN {PLAYER_MATCH_IDS_SQL}"),
                &[&user_id, &i64::MAX, &mode, &game, &from_ms, &no_time, &20i64],
            )
            .unwrap();
        let plan: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
        let text = plan.join("\n");
        assert!(
            plan.iter().any(|line| line.contains("Scan Backward using match_players_user_match")),
            "{text}"
        );
        assert!(text.contains("Index Cond: ((user_id = "), "{text}");
        assert!(text.contains("AND (match_id <= "), "{text}");
        assert!(!text.contains("Sort") && !text.contains("Seq Scan"), "{text}");
    }
    let page =
        store.player_matches(user_id, &ludus::services::store::HistoryQuery::newest(20)).unwrap();
    assert_eq!(page.len(), 20);
    assert!(page.windows(2).all(|pair| pair[0].id > pair[1].id));
    assert!(page.iter().all(|record| record.players.len() == 2));
}

/// A `ludus serve` on Postgres whose stderr the test reads (to find
/// panics) and whose exit it can see; killed on drop.
struct Serve {
    child: Child,
    http: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Serve {
    fn start(database_url: &str, config_toml: &str) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ludus.toml"), config_toml).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ludus"))
            .current_dir(dir.path())
            .env_clear()
            .env("JWT_SECRET", SECRET)
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", std::env::var("SERVER_LOG").unwrap_or("warn".into()))
            .args(["serve", "--shards", "2", "--udp", "127.0.0.1:0", "--https", "127.0.0.1:0"])
            .args(["--http", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ludus serve");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        // SERVER_LOG=debug shows the server's log; the default level's
        // warnings (one per 503) are only kept, to look for panics.
        let echo = std::env::var_os("SERVER_LOG").is_some();
        let (pipe, lines) = (child.stderr.take().unwrap(), Arc::clone(&stderr));
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("server: {line}");
                }
                lines.lock().unwrap().push(line);
            }
        });
        let (stdout, (sender, receiver)) = (child.stdout.take().unwrap(), mpsc::channel());
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let http = loop {
            let line =
                receiver.recv_timeout(STARTUP_TIMEOUT).expect("ludus serve printed its addresses");
            let Some(rest) = line.strip_prefix("listening ") else { continue };
            let field = rest.split_whitespace().find_map(|field| field.strip_prefix("http="));
            break field.expect("http= in the listening line").parse().unwrap();
        };
        Serve { child, http, stderr, _dir: dir }
    }

    /// Still running, and no thread of it has panicked (caught or not).
    fn assert_alive_without_panics(&mut self) {
        let exited = self.child.try_wait().unwrap();
        assert!(exited.is_none(), "ludus serve exited: {exited:?}");
        let stderr = self.stderr.lock().unwrap();
        let panics: Vec<&String> = stderr.iter().filter(|line| line.contains("panicked")).collect();
        assert!(panics.is_empty(), "the server panicked: {panics:?}");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The longest a request may take while the database is down: the answer
/// must come from the server noticing, not from a client giving up.
const OUTAGE_ANSWER_MAX: Duration = Duration::from_secs(10);
/// How long Postgres stays down at least.
const OUTAGE_MIN: Duration = Duration::from_secs(2);
/// The longest the API may take to serve again once Postgres is back:
/// each storage worker tries again when its reconnect backoff (at most
/// RECONNECT_DELAY_MAX) has passed; the rest is slack for a slow machine.
const RECOVERY_MAX: Duration = Duration::from_secs(RECONNECT_DELAY_MAX.as_secs() + 10);
const OUTAGE_PASSWORD: &str = "survives the outage";
/// Answers in a row that count as every storage worker serving again
/// (the server has 4 by default).
const STABLE_RUN: usize = 16;

/// Postgres stopped mid-run (crash-like), on a cluster of the test's own,
/// with a client writing throughout: every store call answers 503
/// `unavailable` with Retry-After, quickly; health stays 200 and ready goes
/// 503; the process lives on without a panic; when Postgres returns the
/// API serves again by itself; every account acknowledged (201) before,
/// during or after the outage can log in.
#[test]
fn postgres_stopped_mid_run_answers_503_recovers_and_loses_no_acknowledged_write() {
    let cluster = OwnCluster::start();
    let config = format!(
        "{CHEAP_ARGON2}ip_rate_per_s = 10000\nip_burst = 10000\nauth_per_minute = 1000000\n\
         account_rate_per_s = 10000\naccount_burst = 10000\n"
    );
    let mut serve = Serve::start(&cluster.url(), &config);
    let address = serve.http;
    let ready = http(address, "GET", "/api/ready", &[], b"");
    assert_eq!((ready.status, ready.json()["store"].clone()), (200, json!("postgres")));

    let mut acknowledged: Vec<String> = Vec::new();
    for index in 0..3 {
        let name = format!("before{index}");
        let created = register(address, &name, OUTAGE_PASSWORD);
        assert_eq!(created.status, 201, "{}", text(&created));
        acknowledged.push(name);
    }
    let signed_in = login(address, "before0", OUTAGE_PASSWORD);
    assert_eq!(signed_in.status, 200, "{}", text(&signed_in));
    let (access, refresh_token) = tokens(&signed_in);

    let writer = Writer::start(address);
    thread::sleep(Duration::from_millis(300));
    cluster.stop_immediately();
    let stopped_at = Instant::now();
    eprintln!("postgres stopped (immediate)");

    // Each probe several times, so that every storage worker (4 by default)
    // meets the dead connection, then the refused connect, then its backoff.
    const ROUNDS: usize = 4;
    let mut latencies = Vec::new();
    for round in 0..ROUNDS {
        for (what, probe) in outage_probes(round, &access, &refresh_token) {
            let started = Instant::now();
            let answer = probe(address);
            let elapsed = started.elapsed();
            latencies.push(elapsed);
            assert_eq!(answer.status, 503, "{what} during the outage: {}", text(&answer));
            assert_eq!(answer.error_code(), "unavailable", "{what}");
            let retry_after: u32 = answer
                .header("retry-after")
                .unwrap_or_else(|| panic!("{what}: no Retry-After"))
                .parse()
                .unwrap();
            assert!((1..=60).contains(&retry_after), "{what}: Retry-After {retry_after}");
            assert!(elapsed < OUTAGE_ANSWER_MAX, "{what} took {elapsed:?}");
        }
        if round == ROUNDS / 2 {
            // Long enough down for the reconnect backoff to grow past its
            // first steps while the writer keeps knocking.
            thread::sleep(OUTAGE_MIN.saturating_sub(stopped_at.elapsed()));
        }
    }
    let health = http(address, "GET", "/api/health", &[], b"");
    assert_eq!(health.status, 200, "liveness is the shard's: {}", text(&health));
    serve.assert_alive_without_panics();
    latencies.sort();
    eprintln!(
        "outage answers: {} probes, median {:?}, max {:?}",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies.last().unwrap()
    );

    cluster.start_again();
    let restarted_at = Instant::now();
    eprintln!("postgres restarted after {:?} down", stopped_at.elapsed());
    let mut statuses = Vec::new();
    let recovered_after = loop {
        let created = register(address, "after0", OUTAGE_PASSWORD);
        statuses.push(created.status);
        if created.status == 201 {
            acknowledged.push("after0".to_owned());
            break restarted_at.elapsed();
        }
        assert_eq!(created.status, 503, "while recovering: {}", text(&created));
        assert!(restarted_at.elapsed() < RECOVERY_MAX, "no recovery: {statuses:?}");
        thread::sleep(Duration::from_millis(100));
    };
    eprintln!("first write {recovered_after:?} after the restart; before it: {statuses:?}");
    // Each storage worker reconnects on its own, once its backoff (at most
    // RECONNECT_DELAY_MAX) has passed: until then some requests still get
    // 503, and only 503.
    let (stable_after, stragglers) = until_stable(address, &access, restarted_at);
    eprintln!(
        "every request served {stable_after:?} after the restart; 503s meanwhile: {stragglers}"
    );
    thread::sleep(Duration::from_millis(200));
    let written = writer.stop();
    let writer_acknowledged: Vec<&String> =
        written.iter().filter(|(_, status)| *status == 201).map(|(name, _)| name).collect();
    let unexpected: Vec<&(String, u16)> =
        written.iter().filter(|(_, status)| ![201, 503].contains(status)).collect();
    eprintln!(
        "writer: {} registrations, {} acknowledged",
        written.len(),
        writer_acknowledged.len()
    );
    assert!(unexpected.is_empty(), "only 201 or 503 while Postgres comes and goes: {unexpected:?}");
    assert!(
        written.iter().any(|(_, status)| *status == 503),
        "the writer met the outage: {written:?}"
    );
    acknowledged.extend(writer_acknowledged.into_iter().cloned());

    // No acknowledged write lost: each account logs in, and its row is there.
    let mut db = cluster.client();
    for name in &acknowledged {
        let answer = login_eventually(address, name, restarted_at);
        assert_eq!(answer.status, 200, "{name} was acknowledged: {}", text(&answer));
        let key = name.to_ascii_lowercase();
        let rows = db.query("SELECT 1 FROM users WHERE username_key = $1", &[&key]).unwrap();
        assert_eq!(rows.len(), 1, "{name}");
    }
    let ready = http(address, "GET", "/api/ready", &[], b"");
    assert_eq!(ready.status, 200, "{}", text(&ready));
    let rotated = refresh(address, &refresh_token);
    assert_eq!(rotated.status, 200, "the refresh token from before the outage: {}", text(&rotated));
    assert_eq!(me(address, &access).status, 200);

    // A restart with no traffic meanwhile costs no request: sessions the
    // restart closed are noticed before use, not by failing a request.
    let statuses: Vec<u16> = (0..12).map(|_| me(address, &access).status).collect();
    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    cluster.stop_immediately();
    cluster.start_again();
    thread::sleep(ALIVE_CHECK_AFTER_IDLE + Duration::from_millis(100));
    let statuses: Vec<u16> = (0..12).map(|_| me(address, &access).status).collect();
    assert!(statuses.iter().all(|status| *status == 200), "after an idle restart: {statuses:?}");
    serve.assert_alive_without_panics();
}

/// Polls `GET /api/players/me` until [`STABLE_RUN`] answers in a row are
/// 200 (so that every storage worker has served one); every other answer
/// must be 503 `unavailable`. The time since `restarted_at` and how many
/// 503s there were.
fn until_stable(address: SocketAddr, access: &str, restarted_at: Instant) -> (Duration, usize) {
    let (mut in_a_row, mut unavailable) = (0, 0);
    while in_a_row < STABLE_RUN {
        let answer = me(address, access);
        if answer.status == 200 {
            in_a_row += 1;
            continue;
        }
        assert_eq!((answer.status, answer.error_code().as_str()), (503, "unavailable"));
        assert!(restarted_at.elapsed() < RECOVERY_MAX, "no full recovery: {unavailable} 503s");
        (in_a_row, unavailable) = (0, unavailable + 1);
        thread::sleep(Duration::from_millis(50));
    }
    (restarted_at.elapsed(), unavailable)
}

/// Logs in, trying again while the answer is 503 `unavailable` (a storage
/// worker still backing off) until [`RECOVERY_MAX`] after `restarted_at`.
fn login_eventually(address: SocketAddr, name: &str, restarted_at: Instant) -> HttpAnswer {
    loop {
        let answer = login(address, name, OUTAGE_PASSWORD);
        if answer.status != 503 || restarted_at.elapsed() > RECOVERY_MAX {
            return answer;
        }
        assert_eq!(answer.error_code(), "unavailable");
        thread::sleep(Duration::from_millis(50));
    }
}

type Probe = Box<dyn Fn(SocketAddr) -> HttpAnswer>;

/// The API calls that need the store, one of each.
fn outage_probes(round: usize, access: &str, refresh_token: &str) -> Vec<(&'static str, Probe)> {
    let (access, refresh_token) = (access.to_owned(), refresh_token.to_owned());
    vec![
        (
            "register",
            Box::new(move |address| register(address, &format!("during{round}"), OUTAGE_PASSWORD)),
        ),
        ("login", Box::new(|address| login(address, "before1", OUTAGE_PASSWORD))),
        ("me", Box::new(move |address| me(address, &access))),
        ("refresh", Box::new(move |address| refresh(address, &refresh_token))),
        (
            "leaderboard",
            Box::new(|address| http(address, "GET", "/api/leaderboards/tetris", &[], b"")),
        ),
        ("ready", Box::new(|address| http(address, "GET", "/api/ready", &[], b""))),
    ]
}

/// A client registering accounts one after another across the outage.
struct Writer {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<Vec<(String, u16)>>,
}

impl Writer {
    fn start(address: SocketAddr) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let mut written = Vec::new();
            for index in 0.. {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let name = format!("writer{index}");
                let status = register(address, &name, OUTAGE_PASSWORD).status;
                written.push((name, status));
                thread::sleep(Duration::from_millis(20));
            }
            written
        });
        Writer { stop, handle }
    }

    /// Every registration tried, with its status.
    fn stop(self) -> Vec<(String, u16)> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("the writer thread")
    }
}
