#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian machine (run as root),
# skipping whatever is already there. Safe to run again.
set -euo pipefail

log() { printf 'setup: %s\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1; then
    log "cargo is missing: install a Rust toolchain (rustup, stable >= 1.95) first" >&2
    exit 1
fi

# Debian packages: the build of quiche's BoringSSL (cmake, libclang), the
# services the integration tests talk to, node for the JavaScript codec tests,
# wrk for the REST API benchmark.
wanted=(build-essential pkg-config cmake clang libclang-dev postgresql nats-server nodejs python3 python3-venv curl wrk)
missing=()
for package in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        log "missing Debian packages (${missing[*]}) and not root: install them and re-run" >&2
        exit 1
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The fuzz smoke run needs the nightly toolchain and cargo-fuzz. Nightly
# cannot be fetched here when absent (no rustup mirror): the fuzz step then
# says so and is skipped; cargo-fuzz comes from crates.io.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    if ! command -v cargo-fuzz >/dev/null 2>&1; then
        log "installing cargo-fuzz"
        cargo install cargo-fuzz --locked --quiet
    fi
else
    log "no nightly toolchain: the fuzz smoke run will be skipped"
fi
log "ok"
