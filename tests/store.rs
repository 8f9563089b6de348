//! The storage conformance suite against a real Postgres, plus what only a
//! server can show: concurrent migrators, an unreachable database, a
//! connection that breaks and comes back.
//!
//! The database comes from `LUDUS_TEST_DATABASE_URL` (default
//! [`DEFAULT_DATABASE_URL`]). Each test works in a schema of its own,
//! `ludus_test_<random hex>`, reached through `search_path` and dropped at
//! the end, so tests run in parallel and leave nothing behind. Without a
//! reachable Postgres these tests fail, saying so: they never skip.

use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ludus::services::store::conformance::{Fixture, Harness};
use ludus::services::store::postgres::{PostgresStore, CONNECT_TIMEOUT, RECONNECT_DELAY_MIN};
use ludus::services::store::{Store, StoreError, MIGRATIONS};

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn database_url() -> String {
    std::env::var("LUDUS_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}

fn base_config() -> postgres::Config {
    let url = database_url();
    url.parse().unwrap_or_else(|error| panic!("LUDUS_TEST_DATABASE_URL={url:?}: {error}"))
}

/// A schema of this test's own, dropped with everything in it on drop.
struct TestSchema {
    name: String,
    admin: postgres::Client,
}

impl TestSchema {
    fn create() -> TestSchema {
        let url = database_url();
        let mut admin = base_config().connect(postgres::NoTls).unwrap_or_else(|error| {
            panic!(
                "the store tests need Postgres at {url} (set LUDUS_TEST_DATABASE_URL to use \
                 another) and could not connect: {error}: {cause}",
                cause = std::error::Error::source(&error).map_or(String::new(), |c| c.to_string())
            )
        });
        let name = format!("ludus_test_{:016x}", ludus::services::store::new_user_id());
        admin.batch_execute(&format!("CREATE SCHEMA {name}")).unwrap();
        TestSchema { name, admin }
    }

    /// The test database's configuration with this schema first on the
    /// search path.
    fn config(&self) -> postgres::Config {
        let mut config = base_config();
        config.options(&format!("-c search_path={}", self.name));
        config
    }

    /// The same, through another address (`host` and `port` append to a
    /// configuration's lists, so this starts from an empty one).
    fn config_via(&self, host: &str, port: u16) -> postgres::Config {
        let base = self.config();
        let mut config = postgres::Config::new();
        config.host(host).port(port).options(base.get_options().unwrap_or(""));
        if let Some(user) = base.get_user() {
            config.user(user);
        }
        if let Some(password) = base.get_password() {
            config.password(password);
        }
        if let Some(dbname) = base.get_dbname() {
            config.dbname(dbname);
        }
        config
    }

    fn store(&self) -> PostgresStore {
        PostgresStore::new(self.config())
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        if let Err(error) = self.admin.batch_execute(&sql) {
            eprintln!("could not drop the test schema {}: {error}", self.name);
        }
    }
}

/// A store in a fresh schema; the store closes before the schema drops.
struct PostgresFixture {
    store: PostgresStore,
    _schema: TestSchema,
}

impl Fixture for PostgresFixture {
    fn harness(&mut self) -> &mut dyn Harness {
        &mut self.store
    }
}

fn postgres_fixture() -> PostgresFixture {
    let schema = TestSchema::create();
    PostgresFixture { store: schema.store(), _schema: schema }
}

ludus::store_conformance_tests!(conformance_on_postgres, postgres_fixture());

/// Two processes starting at once on a fresh database both migrate
/// successfully, and each migration is applied exactly once (the advisory
/// lock serialises them, including the creation of the versions table).
#[test]
fn concurrent_migrators_apply_each_migration_once() {
    let schema = TestSchema::create();
    let start = Arc::new(Barrier::new(2));
    let migrators: Vec<_> = (0..2)
        .map(|index| {
            let mut store = schema.store();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                // Connect before the barrier so both race in migrate itself.
                assert_eq!(store.schema_status().unwrap().database_version, 0);
                start.wait();
                store.migrate(1_000 + index)
            })
        })
        .collect();
    let mut applied: Vec<i64> = Vec::new();
    for migrator in migrators {
        let status = migrator.join().unwrap().expect("both migrators succeed");
        assert!(status.is_current(), "{status:?}");
        applied.extend(&status.applied_now);
    }
    applied.sort_unstable();
    let all: Vec<i64> = MIGRATIONS.iter().map(|migration| migration.version).collect();
    assert_eq!(applied, all);
    let mut store = schema.store();
    assert_eq!(
        store.query_i64("SELECT count(*) FROM schema_migrations").unwrap(),
        MIGRATIONS.len() as i64
    );
}

/// A closed port answers `Unavailable` well inside the connect timeout,
/// and the call after it fails fast without trying while backing off.
#[test]
fn an_unreachable_database_is_unavailable_and_backed_off() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut store =
        PostgresStore::from_url(&format!("postgres://postgres@127.0.0.1:{port}/test")).unwrap();
    let started = Instant::now();
    let first = store.schema_status();
    assert!(matches!(&first, Err(StoreError::Unavailable(_))), "{first:?}");
    assert!(started.elapsed() < CONNECT_TIMEOUT, "{:?}", started.elapsed());

    let started = Instant::now();
    let second = store.user_by_id(1);
    assert!(
        matches!(&second, Err(StoreError::Unavailable(message)) if message.contains("not reconnecting")),
        "{second:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(50), "{:?}", started.elapsed());
    assert!(!store.is_connected());
}

/// Through a proxy that first refuses, then forwards, then cuts every
/// connection: the store is Unavailable, recovers once the backoff has
/// passed, notices the cut as Unavailable and reconnects on the next call.
#[test]
fn a_store_recovers_from_refused_and_broken_connections() {
    let schema = TestSchema::create();
    let proxy = Proxy::start(&schema.config());
    let mut store = PostgresStore::new(schema.config_via("127.0.0.1", proxy.port));

    let refused = store.migrate(1);
    assert!(matches!(&refused, Err(StoreError::Unavailable(_))), "{refused:?}");
    let backing_off = store.migrate(1);
    assert!(
        matches!(&backing_off, Err(StoreError::Unavailable(message)) if message.contains("not reconnecting")),
        "{backing_off:?}"
    );

    proxy.forward.store(true, Ordering::SeqCst);
    thread::sleep(RECONNECT_DELAY_MIN + Duration::from_millis(100));
    assert!(store.migrate(1).unwrap().is_current());
    assert!(store.is_connected());

    proxy.cut();
    let cut = store.user_by_id(1);
    assert!(matches!(&cut, Err(StoreError::Unavailable(_))), "{cut:?}");
    assert!(!store.is_connected());
    assert_eq!(store.user_by_id(1), Ok(None), "reconnects at once after a broken session");
    assert!(store.is_connected());
}

/// A TCP proxy to Postgres: refuses (accepts and closes) until `forward`
/// is set; `cut` shuts every forwarded connection down.
struct Proxy {
    port: u16,
    forward: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: &postgres::Config) -> Proxy {
        let host = match &upstream.get_hosts()[0] {
            postgres::config::Host::Tcp(host) => host.clone(),
            other => panic!("the proxy test needs a TCP host, not {other:?}"),
        };
        let upstream_address = (host, upstream.get_ports().first().copied().unwrap_or(5432));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let forward = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let (forward_flag, tracked) = (Arc::clone(&forward), Arc::clone(&streams));
        // The accept loop lives until the test process ends.
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !forward_flag.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let server = TcpStream::connect(upstream_address.clone()).unwrap();
                let mut tracked = tracked.lock().unwrap();
                tracked.push(client.try_clone().unwrap());
                tracked.push(server.try_clone().unwrap());
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Proxy { port, forward, streams }
    }

    fn cut(&self) {
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    thread::spawn(move || {
        let _ = io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
    });
}
