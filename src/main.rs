//! The `ludus` binary: everything lives in the library; see [`ludus::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    ludus::cli::run()
}
