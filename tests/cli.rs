//! The `ludus` binary as a user meets it: exit statuses, what lands on
//! stdout and stderr, and the files `ludus cert` writes. Each test runs the
//! built binary in a fresh temp dir with a cleared environment, so neither
//! a `ludus.toml` nor variables of the machine running the tests leak in.

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine;
use sha2::{Digest, Sha256};

const EXIT_USAGE: i32 = 2;

struct Run {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Run {
            status: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status {:?}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

fn ludus(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ludus"));
    command.current_dir(cwd).env_clear().args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run ludus").into()
}

fn ludus_in_temp(args: &[&str], env: &[(&str, &str)]) -> (Run, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (ludus(dir.path(), args, env), dir)
}

#[test]
fn help_lists_every_subcommand() {
    let (run, _dir) = ludus_in_temp(&["--help"], &[]);
    assert_eq!(run.status, Some(0), "{run:?}");
    for command in ["serve", "config", "cert", "bots", "migrate", "replay", "games"] {
        assert!(
            run.stdout.lines().any(|line| line.trim_start().starts_with(command)),
            "{command} missing: {run:?}"
        );
    }
}

#[test]
fn config_prints_defaults() {
    let (run, _dir) = ludus_in_temp(&["config"], &[]);
    assert_eq!(run.status, Some(0), "{run:?}");
    for line in [
        "data_dir = \"./data\"",
        "udp = \"0.0.0.0:4433\"",
        "https = \"0.0.0.0:8443\"",
        "http = \"127.0.0.1:8080\"",
        "games_env = \"development\"",
        "region = \"us-east-1\"",
        "level = \"info\"",
        "format = \"human\"",
    ] {
        assert!(run.stdout.contains(line), "{line} missing: {run:?}");
    }
}

#[test]
fn unknown_key_in_config_file_is_a_usage_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("custom.toml"), "[listen]\nudp_port = 1\n").unwrap();
    let run = ludus(dir.path(), &["config", "--config", "custom.toml"], &[]);
    assert_eq!(run.status, Some(EXIT_USAGE), "{run:?}");
    assert!(run.stderr.contains("udp_port"), "{run:?}");
    assert!(run.stderr.contains("custom.toml"), "{run:?}");
}

#[test]
fn missing_explicit_config_file_is_a_usage_error() {
    let (run, _dir) = ludus_in_temp(&["config", "--config", "absent.toml"], &[]);
    assert_eq!(run.status, Some(EXIT_USAGE), "{run:?}");
    assert!(run.stderr.contains("absent.toml"), "{run:?}");
}

#[test]
fn default_config_file_is_read_and_env_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ludus.toml"),
        "[listen]\nudp = \"127.0.0.1:1111\"\nhttps = \"127.0.0.1:2222\"\n[shards]\ncount = 1\n",
    )
    .unwrap();
    let run = ludus(dir.path(), &["config"], &[("LUDUS_UDP", "127.0.0.2:3333"), ("PORT", "4444")]);
    assert_eq!(run.status, Some(0), "{run:?}");
    assert!(run.stdout.contains("udp = \"127.0.0.2:3333\""), "{run:?}");
    assert!(run.stdout.contains("https = \"127.0.0.1:4444\""), "{run:?}");
    assert!(run.stdout.contains("count = 1"), "{run:?}");

    let env = [("LUDUS_UDP", "127.0.0.2:3333")];
    let run = ludus(dir.path(), &["config", "--udp", "127.0.0.3:5555"], &env);
    assert!(run.stdout.contains("udp = \"127.0.0.3:5555\""), "{run:?}");
}

#[test]
fn bad_environment_value_is_a_usage_error_naming_it() {
    let (run, _dir) = ludus_in_temp(&["config"], &[("LUDUS_CORES", "3-1")]);
    assert_eq!(run.status, Some(EXIT_USAGE), "{run:?}");
    assert!(run.stderr.contains("LUDUS_CORES") && run.stderr.contains("3-1"), "{run:?}");
}

#[test]
fn secrets_are_redacted_in_config_output() {
    let env = [
        ("JWT_SECRET", "hunter2-jwt"),
        ("S3_SECRET_KEY", "hunter2-s3"),
        ("DATABASE_URL", "postgres://ludus:hunter2-db@db:5432/ludus"),
    ];
    let (run, _dir) = ludus_in_temp(&["config"], &env);
    assert_eq!(run.status, Some(0), "{run:?}");
    assert!(!run.stdout.contains("hunter2"), "{run:?}");
    assert!(run.stdout.contains("jwt_secret = \"***\""), "{run:?}");
    assert!(run.stdout.contains("postgres://ludus:***@db:5432/ludus"), "{run:?}");
}

#[test]
fn serve_reports_an_address_it_cannot_bind_and_exits_1() {
    // An address of another host cannot be bound: serve must say so and
    // fail, after logging its configuration without secrets.
    let (run, _dir) = ludus_in_temp(
        &["serve", "--udp", "192.0.2.1:4433", "--shards", "1"],
        &[("JWT_SECRET", "hunter2-jwt-secret-long-enough-for-hs256")],
    );
    assert_eq!(run.status, Some(1), "{run:?}");
    assert!(run.stderr.contains("binding UDP 192.0.2.1:4433"), "{run:?}");
    assert!(run.stderr.contains("effective configuration"), "{run:?}");
    assert!(!run.stderr.contains("hunter2"), "{run:?}");
}

#[test]
fn stubs_say_not_yet_and_exit_2() {
    let (run, _dir) = ludus_in_temp(&["games"], &[]);
    assert_eq!(run.status, Some(EXIT_USAGE), "{run:?}");
    assert!(run.stderr.contains("not yet"), "{run:?}");
}

/// `replay` refuses what is not a room id (2) and says when there is no
/// log or no match to audit (1); tests/history.rs audits real matches.
#[test]
fn replay_needs_a_room_id_and_a_record() {
    let (run, _dir) = ludus_in_temp(&["replay", "room-42"], &[]);
    assert_eq!(run.status, Some(EXIT_USAGE), "{run:?}");
    assert!(run.stderr.contains("not a room id"), "{run:?}");
    let (run, _dir) = ludus_in_temp(&["replay", "42"], &[]);
    assert_eq!(run.status, Some(1), "{run:?}");
    assert!(run.stderr.contains("no event log"), "{run:?}");
}

/// Without DATABASE_URL, migrate creates the data directory and the
/// embedded database, applies every migration once and says so; a second
/// run applies nothing.
#[test]
fn migrate_applies_the_migrations_to_the_embedded_database_once() {
    let dir = tempfile::tempdir().unwrap();
    let run = ludus(dir.path(), &["migrate", "--data-dir", "state"], &[]);
    assert_eq!(run.status, Some(0), "{run:?}");
    assert!(dir.path().join("state/ludus.sqlite3").is_file(), "{run:?}");
    assert!(run.stdout.contains("applied 0001_initial"), "{run:?}");
    let again = ludus(dir.path(), &["migrate", "--data-dir", "state"], &[]);
    assert_eq!(again.status, Some(0), "{again:?}");
    assert!(again.stdout.contains("nothing to apply"), "{again:?}");
    assert!(!again.stdout.contains("applied 0001"), "{again:?}");
}

/// An unreachable DATABASE_URL is reported (without its password) with
/// exit status 1.
#[test]
fn migrate_reports_an_unreachable_database_and_exits_1() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://ludus:hunter2@127.0.0.1:{port}/ludus");
    let (run, _dir) = ludus_in_temp(&["migrate"], &[("DATABASE_URL", &url)]);
    assert_eq!(run.status, Some(1), "{run:?}");
    assert!(run.stderr.contains("unavailable"), "{run:?}");
    assert!(!run.stdout.contains("hunter2") && !run.stderr.contains("hunter2"), "{run:?}");
}

#[test]
fn cert_writes_pems_and_prints_the_hash_of_the_der() {
    let dir = tempfile::tempdir().unwrap();
    let run = ludus(dir.path(), &["cert", "--out", "tls-out", "--san", "game.test"], &[]);
    assert_eq!(run.status, Some(0), "{run:?}");
    let cert_pem = std::fs::read_to_string(dir.path().join("tls-out/cert.pem")).unwrap();
    let key_pem = std::fs::read_to_string(dir.path().join("tls-out/key.pem")).unwrap();
    assert!(key_pem.contains("-----BEGIN PRIVATE KEY-----"));

    let printed_hash = run
        .stdout
        .split_whitespace()
        .find(|word| word.len() == 64 && word.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no 64-hex-digit hash in {run:?}"));
    let der = pem_body(&cert_pem, "CERTIFICATE");
    assert_eq!(printed_hash, hex::encode(Sha256::digest(&der)));
}

#[cfg(unix)]
#[test]
fn cert_defaults_to_data_dir_and_keeps_the_key_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let run = ludus(dir.path(), &["cert"], &[("LUDUS_DATA_DIR", "state")]);
    assert_eq!(run.status, Some(0), "{run:?}");
    let key = dir.path().join("state/tls/key.pem");
    let mode = std::fs::metadata(key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(dir.path().join("state/tls/cert.pem").exists());
}

#[test]
fn cert_rejects_more_than_14_days() {
    let (run, dir) = ludus_in_temp(&["cert", "--days", "15", "--out", "tls"], &[]);
    assert_eq!(run.status, Some(EXIT_USAGE), "{run:?}");
    assert!(!dir.path().join("tls").exists());
}

/// The DER bytes between the BEGIN/END lines of the first `label` block.
fn pem_body(pem: &str, label: &str) -> Vec<u8> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body: String = pem
        .lines()
        .skip_while(|line| line.trim() != begin)
        .skip(1)
        .take_while(|line| line.trim() != end)
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).expect("PEM body is base64")
}
