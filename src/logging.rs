//! Logging set-up: one global `tracing` subscriber writing to stderr.
//!
//! The filter string comes from the resolved [`crate::config::Config`]
//! (`log.level`), where `RUST_LOG` has already been folded in with the usual
//! precedence (flags > environment > file > defaults). That keeps the level
//! the start-up log reports equal to the level in force, and lets
//! `--log-level` beat a stray `RUST_LOG`. The string accepts full
//! `EnvFilter` directives, e.g. `info,ludus::reactor=debug`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

/// How log lines are rendered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Compact, one line per event, for a terminal.
    #[default]
    Human,
    /// One JSON object per line, for a log collector.
    Json,
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        })
    }
}

impl FromStr for LogFormat {
    type Err = LoggingError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            other => Err(LoggingError::UnknownFormat(other.to_owned())),
        }
    }
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("unknown log format {0:?} (expected \"human\" or \"json\")")]
    UnknownFormat(String),
    #[error("invalid log filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    #[error("a global logger is already installed: {0}")]
    AlreadyInitialized(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Checks that `filter` parses as `EnvFilter` directives, so a typo is a
/// configuration error at start-up rather than a silent fallback.
pub fn check_filter(filter: &str) -> Result<(), LoggingError> {
    EnvFilter::try_new(filter)?;
    Ok(())
}

/// Installs the global subscriber. Calling it a second time returns
/// [`LoggingError::AlreadyInitialized`] instead of panicking, because tests
/// and embedders may race to install one.
pub fn init(filter: &str, format: LogFormat) -> Result<(), LoggingError> {
    let filter = EnvFilter::try_new(filter)?;
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(true);
    let installed = match format {
        LogFormat::Human => builder.compact().try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(LoggingError::AlreadyInitialized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_init_is_an_error_not_a_panic() {
        let first = init("info", LogFormat::Human);
        let second = init("info", LogFormat::Json);
        // Another test may have installed the subscriber first; either way at
        // most one of the two calls succeeds.
        assert!(first.is_err() || second.is_err());
        assert!(matches!(second, Err(LoggingError::AlreadyInitialized(_))));
    }

    #[test]
    fn format_parses_and_prints_the_same_words() {
        for format in [LogFormat::Human, LogFormat::Json] {
            assert_eq!(format.to_string().parse::<LogFormat>().unwrap(), format);
        }
        assert!("xml".parse::<LogFormat>().is_err());
    }

    #[test]
    fn bad_filter_is_rejected() {
        assert!(check_filter("info,ludus=debug").is_ok());
        assert!(check_filter("ludus=notalevel").is_err());
    }
}
