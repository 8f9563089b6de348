//! Real Postgres for integration tests: a schema of a test's own on the
//! shared database, and a whole cluster of a test's own for tests that must
//! stop the database.
//!
//! The shared database comes from `LUDUS_TEST_DATABASE_URL` (default
//! [`DEFAULT_DATABASE_URL`]); it is never stopped or altered outside the
//! test's schema. An own cluster is made with `initdb` and run with
//! `pg_ctl` from the postgresql package, as the `postgres` OS user when the
//! tests run as root (initdb refuses root), listening on 127.0.0.1 only.
//! Without Postgres these helpers fail, saying what is missing: they never
//! skip.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Where Debian and Ubuntu put the server binaries, one directory per major
/// version.
pub const POSTGRES_LIB_DIR: &str = "/usr/lib/postgresql";
/// The OS user that owns an own cluster when the tests run as root.
pub const CLUSTER_OS_USER: &str = "postgres";
/// Longest wait for `pg_ctl start` to see the server accept connections.
pub const CLUSTER_START_TIMEOUT_S: u32 = 60;

pub fn database_url() -> String {
    std::env::var("LUDUS_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}

/// A schema of this test's own on the shared database, `ludus_test_<hex>`,
/// dropped with everything in it on drop.
pub struct TestSchema {
    pub name: String,
    admin: postgres::Client,
}

impl TestSchema {
    pub fn create() -> TestSchema {
        let url = database_url();
        let mut admin = connect(&url).unwrap_or_else(|error| {
            panic!(
                "these tests need Postgres at {url} (set LUDUS_TEST_DATABASE_URL to use \
                 another) and could not connect: {error}"
            )
        });
        let name = format!("ludus_test_{:016x}", ludus::services::store::new_user_id());
        admin.batch_execute(&format!("CREATE SCHEMA {name}")).unwrap();
        TestSchema { name, admin }
    }

    /// The shared database's URL with this schema alone on the search path
    /// and the schema's name as `application_name` (so the test can find its
    /// server's sessions in `pg_stat_activity`), for a `DATABASE_URL`.
    pub fn url(&self) -> String {
        let base = database_url();
        let separator = if base.contains('?') { '&' } else { '?' };
        let name = &self.name;
        format!("{base}{separator}options=-c%20search_path%3D{name}&application_name={name}")
    }

    /// Ends every session that connected with [`TestSchema::url`] except
    /// the caller's, the way a failover or an administrator would; how many.
    pub fn terminate_sessions(&mut self) -> i64 {
        let sql = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                   WHERE application_name = $1 AND pid <> pg_backend_pid()";
        self.admin.query_one(sql, &[&self.name]).unwrap().get(0)
    }

    /// A connection of the test's own to the same schema.
    pub fn client(&self) -> postgres::Client {
        connect(&self.url()).expect("connect to the test schema")
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

/// Connects with a short timeout; the error text includes its causes.
pub fn connect(url: &str) -> Result<postgres::Client, String> {
    let mut config: postgres::Config = url.parse().map_err(|error| format!("{url}: {error}"))?;
    config.connect_timeout(Duration::from_secs(3));
    config.connect(postgres::NoTls).map_err(|error| {
        let cause = std::error::Error::source(&error).map_or(String::new(), |c| format!(": {c}"));
        format!("{error}{cause}")
    })
}

/// A Postgres cluster of the test's own: its data directory in a temporary
/// directory, trust authentication, TCP on 127.0.0.1 only, no Unix socket
/// (so it cannot collide with the machine's). Dropping it stops the server
/// (immediate mode) and deletes the directory, also when the test failed.
pub struct OwnCluster {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    /// Deleted after `drop` has stopped the server.
    dir: tempfile::TempDir,
}

impl OwnCluster {
    /// Makes the cluster with `initdb` and starts it on a free port.
    pub fn start() -> OwnCluster {
        let bin = postgres_bin_dir();
        let dir = tempfile::tempdir().expect("a temporary directory for the cluster");
        if running_as_root() {
            // initdb refuses root: the cluster belongs to the postgres user,
            // who must be able to write the directory.
            run(Command::new("chown").arg(CLUSTER_OS_USER).arg(dir.path()), "chown");
        }
        let data = dir.path().join("data");
        let log = dir.path().join("postgres.log");
        let mut initdb = as_cluster_owner(&bin.join("initdb"));
        initdb.args(["--auth=trust", "--username=postgres", "--encoding=UTF8", "--locale=C"]);
        initdb.arg("--no-sync").arg("-D").arg(&data);
        run(&mut initdb, "initdb");
        let port = free_port();
        let settings = format!(
            "\n# Added by tests/support/postgres.rs\nlisten_addresses = '127.0.0.1'\n\
             port = {port}\nunix_socket_directories = ''\nshared_buffers = 16MB\n\
             max_connections = 40\nfsync = on\nsynchronous_commit = on\n"
        );
        append(&data.join("postgresql.conf"), &settings);
        let cluster = OwnCluster { port, bin, data, log, dir };
        cluster.start_again();
        cluster
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn client(&self) -> postgres::Client {
        connect(&self.url()).unwrap_or_else(|error| panic!("connect to {}: {error}", self.url()))
    }

    /// Kills the server the way a crash would: `pg_ctl stop -m immediate`
    /// (no checkpoint; the next start replays the WAL).
    pub fn stop_immediately(&self) {
        let mut stop = self.pg_ctl();
        stop.args(["stop", "-m", "immediate", "-w", "-t", "30"]);
        run(&mut stop, "pg_ctl stop");
    }

    /// Starts the server on the same port and data directory and waits
    /// until it accepts connections.
    pub fn start_again(&self) {
        let mut start = self.pg_ctl();
        start.arg("-l").arg(&self.log);
        start.args(["start", "-w", "-t", &CLUSTER_START_TIMEOUT_S.to_string()]);
        let started = Instant::now();
        let output = start.output().expect("run pg_ctl start");
        if !output.status.success() {
            panic!(
                "pg_ctl start failed after {:?}: {}\nserver log:\n{}",
                started.elapsed(),
                describe_output(&output),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }

    fn pg_ctl(&self) -> Command {
        let mut command = as_cluster_owner(&self.bin.join("pg_ctl"));
        command.arg("-D").arg(&self.data);
        command
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let mut stop = self.pg_ctl();
        stop.args(["stop", "-m", "immediate", "-w", "-t", "30"]);
        // Fails harmlessly when the server is already stopped.
        let _ = stop.output();
        // A postmaster that survived the stop would outlive the test.
        let pid_file = std::fs::read_to_string(self.data.join("postmaster.pid")).ok();
        if let Some(pid) = pid_file.as_deref().and_then(|text| text.lines().next()) {
            eprintln!("pg_ctl stop left the postmaster {pid} running: killing it");
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).output();
        }
        // `dir` is deleted after this, with the data directory in it.
    }
}

/// The directory holding `initdb` and `pg_ctl`: `LUDUS_TEST_POSTGRES_BIN`,
/// else the newest `/usr/lib/postgresql/<major>/bin`.
pub fn postgres_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("LUDUS_TEST_POSTGRES_BIN") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("initdb").is_file() && dir.join("pg_ctl").is_file(),
            "LUDUS_TEST_POSTGRES_BIN={} holds no initdb and pg_ctl (from the postgresql package)",
            dir.display()
        );
        return dir;
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(POSTGRES_LIB_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "this test starts a Postgres cluster of its own and needs initdb and pg_ctl, \
             found in none of {POSTGRES_LIB_DIR}/<version>/bin: install the postgresql \
             package (apt-get install postgresql), or set LUDUS_TEST_POSTGRES_BIN to the \
             directory holding them"
        ),
    }
}

/// Whether this process's effective user is root (Linux: /proc).
fn running_as_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(str::to_owned));
    effective.as_deref() == Some("0")
}

/// `program` run as the cluster's owner: via runuser when we are root.
fn as_cluster_owner(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", CLUSTER_OS_USER, "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command, what: &str) {
    let output =
        command.output().unwrap_or_else(|error| panic!("run {what} ({command:?}): {error}"));
    assert!(output.status.success(), "{what} ({command:?}) failed: {}", describe_output(&output));
}

fn describe_output(output: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// A loopback port nobody listens on now (the kernel's pick).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
