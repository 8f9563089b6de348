//! Schema migrations: the SQL files in `migrations/`, compiled into the
//! binary, and the one planning rule both adapters follow.
//!
//! Owns: [`MIGRATIONS`] (version, name, SQL), their checksums, and
//! [`plan`], a pure function from what a database says it has applied to
//! what must run next, or why nothing may run. Never does: I/O. Each adapter
//! reads `schema_migrations` ([`VERSIONS_TABLE_SQL`]) inside a transaction
//! that excludes other migrators (SQLite `BEGIN IMMEDIATE`, Postgres
//! `pg_advisory_xact_lock`), asks [`plan`], applies the first pending
//! migration and records it in the same transaction, and repeats.
//!
//! Rules: versions run from 1 without gaps; an applied migration whose SQL
//! changed since is refused ([`MigrationError::Edited`]); a database that
//! knows versions this binary does not is refused
//! ([`MigrationError::NewerDatabase`]) rather than run against a schema the
//! code was not written for.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::postgres::PostgresStore;
use super::sqlite::{SqliteStore, SQLITE_FILE_NAME};
use super::{Store, StoreError};
use crate::config::Config;

/// One schema change, applied once, in a transaction of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    pub version: i64,
    /// The file name without the version and extension, e.g. "initial".
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration this binary knows, by version from 1 without gaps. A
/// test checks this list against the files in `migrations/`.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "initial",
    sql: include_str!("../../../migrations/0001_initial.sql"),
}];

/// The schema version this binary was written for.
pub fn binary_version() -> i64 {
    MIGRATIONS.last().map_or(0, |migration| migration.version)
}

/// Creates the versions table; both databases accept it and it is a no-op
/// when the table exists.
pub const VERSIONS_TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at_ms BIGINT NOT NULL
)";

/// The SHA-256 of a migration's SQL, hex. Line endings are normalised first
/// so that a checkout with CRLF endings (git on Windows) builds a binary that
/// agrees with one built from LF.
pub fn checksum(sql: &str) -> String {
    let mut hasher = Sha256::new();
    for (index, line) in sql.split('\n').enumerate() {
        if index > 0 {
            hasher.update(b"\n");
        }
        hasher.update(line.strip_suffix('\r').unwrap_or(line).as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Where a database's schema stands relative to this binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The highest version applied (0: none).
    pub database_version: i64,
    /// The highest version this binary knows.
    pub binary_version: i64,
    /// Versions this call applied, in order (empty for a read).
    pub applied_now: Vec<i64>,
}

impl SchemaStatus {
    /// The schema is exactly what this binary was written for.
    pub fn is_current(&self) -> bool {
        self.database_version == self.binary_version
    }

    /// `Ok` when current, else why the server must not use the database yet.
    pub fn require_current(&self) -> Result<(), MigrationError> {
        if self.database_version > self.binary_version {
            Err(MigrationError::NewerDatabase {
                database: self.database_version,
                binary: self.binary_version,
            })
        } else if self.database_version < self.binary_version {
            Err(MigrationError::Behind {
                database: self.database_version,
                binary: self.binary_version,
            })
        } else {
            Ok(())
        }
    }
}

/// Why migrations cannot run or the schema cannot be used. Each message
/// tells the operator what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "migration {version:04}_{name} was applied to this database but its SQL has changed \
         since; migrations must never be edited after release: restore the original file \
         and add a new migration instead"
    )]
    Edited { version: i64, name: String },
    #[error(
        "the database schema is at version {database} but this ludus only knows up to \
         version {binary}: run a newer ludus (or restore a backup made for this version)"
    )]
    NewerDatabase { database: i64, binary: i64 },
    #[error(
        "migration {version:04} failed and was rolled back: {message}; fix the cause and run \
         `ludus migrate` again"
    )]
    Failed { version: i64, message: String },
    #[error(
        "the database schema is at version {database} but this ludus needs version {binary}: \
         run `ludus migrate`"
    )]
    Behind { database: i64, binary: i64 },
}

/// The highest applied version (0 when none).
pub fn database_version(applied: &[(i64, String)]) -> i64 {
    applied.iter().map(|(version, _)| *version).max().unwrap_or(0)
}

/// What to apply, in order, given what the database has applied (version,
/// checksum) and what the binary knows. Refuses a newer database and any
/// applied migration whose checksum differs from the binary's.
pub fn plan<'a>(
    applied: &[(i64, String)],
    binary: &'a [Migration],
) -> Result<Vec<&'a Migration>, MigrationError> {
    debug_assert!(binary.windows(2).all(|pair| pair[0].version < pair[1].version));
    let binary_version = binary.last().map_or(0, |migration| migration.version);
    let database = database_version(applied);
    if database > binary_version {
        return Err(MigrationError::NewerDatabase { database, binary: binary_version });
    }
    for (version, applied_checksum) in applied {
        match binary.iter().find(|migration| migration.version == *version) {
            Some(migration) if checksum(migration.sql) == *applied_checksum => {}
            Some(migration) => {
                return Err(MigrationError::Edited {
                    version: *version,
                    name: migration.name.to_owned(),
                })
            }
            // Below the binary's newest yet unknown to it: a version this
            // binary never had (0, negative, or a gap), so the history the
            // database went through is not this binary's.
            None => {
                return Err(MigrationError::Edited {
                    version: *version,
                    name: "(not in this binary)".to_owned(),
                })
            }
        }
    }
    Ok(binary
        .iter()
        .filter(|migration| applied.iter().all(|(version, _)| *version != migration.version))
        .collect())
}

/// Drives an adapter's migration: `step` applies the next pending
/// migration in its own transaction and returns `Ok(version)`, or
/// `Err(database_version)` when nothing is pending. One step per migration
/// plus the one that finds nothing to do; more means another process keeps
/// changing the table under us.
pub fn run_steps(
    mut step: impl FnMut() -> Result<Result<i64, i64>, StoreError>,
) -> Result<SchemaStatus, StoreError> {
    let mut applied_now = Vec::new();
    for _ in 0..=MIGRATIONS.len() {
        match step()? {
            Ok(version) => applied_now.push(version),
            Err(database_version) => {
                return Ok(SchemaStatus {
                    database_version,
                    binary_version: binary_version(),
                    applied_now,
                })
            }
        }
    }
    Err(StoreError::Internal("migrations did not converge".to_owned()))
}

/// The status after a plan, for `schema_status`: `applied_now` is empty.
pub fn status(applied: &[(i64, String)]) -> SchemaStatus {
    SchemaStatus {
        database_version: database_version(applied),
        binary_version: binary_version(),
        applied_now: Vec::new(),
    }
}

/// Opens the store the configuration names: Postgres at `DATABASE_URL`
/// (connecting lazily), else SQLite at `<data_dir>/ludus.sqlite3`, creating
/// `data_dir` if needed. Migrations are not applied here.
pub fn open_store(config: &Config) -> Result<Box<dyn Store>, StoreError> {
    match &config.services.database_url {
        Some(url) => Ok(Box::new(PostgresStore::from_url(url.expose())?)),
        None => {
            let path = sqlite_path(config);
            std::fs::create_dir_all(&config.data_dir).map_err(|error| {
                StoreError::Internal(format!(
                    "creating the data directory {}: {error}",
                    config.data_dir.display()
                ))
            })?;
            Ok(Box::new(SqliteStore::open(&path)?))
        }
    }
}

/// Where the embedded database lives for this configuration.
pub fn sqlite_path(config: &Config) -> PathBuf {
    config.data_dir.join(SQLITE_FILE_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: Migration = Migration { version: 1, name: "one", sql: "CREATE TABLE a (x BIGINT)" };
    const TWO: Migration = Migration { version: 2, name: "two", sql: "CREATE TABLE b (x BIGINT)" };
    const BOTH: &[Migration] = &[ONE, TWO];

    fn applied(migrations: &[Migration]) -> Vec<(i64, String)> {
        migrations.iter().map(|migration| (migration.version, checksum(migration.sql))).collect()
    }

    fn versions(planned: &[&Migration]) -> Vec<i64> {
        planned.iter().map(|migration| migration.version).collect()
    }

    #[test]
    fn a_fresh_database_gets_every_migration_in_order() {
        assert_eq!(versions(&plan(&[], BOTH).unwrap()), [1, 2]);
    }

    #[test]
    fn a_partly_migrated_database_gets_the_rest() {
        assert_eq!(versions(&plan(&applied(&[ONE]), BOTH).unwrap()), [2]);
    }

    #[test]
    fn a_current_database_gets_nothing() {
        assert!(plan(&applied(BOTH), BOTH).unwrap().is_empty());
    }

    #[test]
    fn an_edited_migration_is_refused_by_name() {
        let mut rows = applied(BOTH);
        rows[0].1 = checksum("CREATE TABLE a (x TEXT)");
        assert_eq!(
            plan(&rows, BOTH),
            Err(MigrationError::Edited { version: 1, name: "one".to_owned() })
        );
    }

    #[test]
    fn a_newer_database_is_refused_before_any_checksum() {
        let mut rows = applied(&[ONE]);
        rows.push((3, "whatever".to_owned()));
        assert_eq!(
            plan(&rows, BOTH),
            Err(MigrationError::NewerDatabase { database: 3, binary: 2 })
        );
        let message = MigrationError::NewerDatabase { database: 3, binary: 2 }.to_string();
        assert!(message.contains("run a newer ludus"), "{message}");
    }

    #[test]
    fn an_applied_version_the_binary_never_had_is_refused() {
        let rows = vec![(0, "x".to_owned())];
        assert!(matches!(plan(&rows, BOTH), Err(MigrationError::Edited { version: 0, .. })));
    }

    #[test]
    fn checksums_ignore_crlf_but_nothing_else() {
        assert_eq!(checksum("a\r\nb\n"), checksum("a\nb\n"));
        assert_ne!(checksum("a\nb\n"), checksum("a\nb"));
        assert_ne!(checksum("a b"), checksum("a  b"));
        assert_eq!(checksum("").len(), 64);
    }

    #[test]
    fn status_requires_the_binary_version() {
        let behind = SchemaStatus { database_version: 0, binary_version: 1, applied_now: vec![] };
        assert!(!behind.is_current());
        assert_eq!(
            behind.require_current(),
            Err(MigrationError::Behind { database: 0, binary: 1 })
        );
        assert!(behind.require_current().unwrap_err().to_string().contains("ludus migrate"));
        let current = SchemaStatus { database_version: 1, ..behind };
        assert!(current.is_current());
        assert_eq!(current.require_current(), Ok(()));
    }

    /// Every file in migrations/ is in MIGRATIONS with its own SQL, named
    /// `NNNN_name.sql`, versions from 1 without gaps.
    #[test]
    fn migrations_match_the_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        assert_eq!(files.len(), MIGRATIONS.len(), "{files:?}");
        for (index, (file, migration)) in files.iter().zip(MIGRATIONS).enumerate() {
            let expected_version = index as i64 + 1;
            assert_eq!(migration.version, expected_version, "{file}");
            let stem = file.strip_suffix(".sql").unwrap_or_else(|| panic!("{file}: not .sql"));
            let (digits, name) = stem.split_at(4);
            assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{file}: no NNNN_ prefix");
            assert_eq!(digits.parse::<i64>().unwrap(), expected_version, "{file}");
            let name = name.strip_prefix('_').unwrap_or_else(|| panic!("{file}: no _ after NNNN"));
            assert!(
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{file}: the name must be lower-case ASCII, digits and _"
            );
            assert_eq!(migration.name, name, "{file}");
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            assert_eq!(checksum(migration.sql), checksum(&text), "{file}: not the embedded SQL");
        }
        assert_eq!(binary_version(), MIGRATIONS.len() as i64);
    }
}
