#!/usr/bin/env bash
# Installs what tests/acceptance.rs needs, skipping whatever is already there
# (idempotent, quiet; run as root on Debian):
#   - Debian's chromium (driven by playwright-core; `npx playwright install`
#     cannot download browsers here), python3-venv, nodejs/npm, curl
#   - a Python venv at target/acceptance-venv with aioquic (tests/interop/)
#     and schemathesis (tests/api_schema.rs)
#   - tests/browser/node_modules with playwright-core (tests/browser/package.json)
# Environment: ACCEPTANCE_VENV overrides the venv path (tests/acceptance.rs
# and tests/api_schema.rs read the same variable).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
log() { printf 'acceptance-deps: %s\n' "$*"; }

# --- Debian packages -------------------------------------------------------
wanted=(chromium python3 python3-venv curl)
missing=()
for package in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# node and npm by command: a nodesource nodejs ships npm and conflicts with
# Debian's npm package.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        log "missing Debian packages (${missing[*]}) and not root: install them and re-run" >&2
        exit 1
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt_log=$(mktemp)
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$apt_log" 2>&1; then
        cat "$apt_log" >&2
        rm -f "$apt_log"
        log "apt-get failed" >&2
        exit 1
    fi
    rm -f "$apt_log"
fi
if [ ! -x /usr/bin/chromium ]; then
    log "/usr/bin/chromium is missing after installing the chromium package" >&2
    exit 1
fi

# --- Python venv with aioquic and schemathesis ------------------------------
# Debian's interpreter (its python3-venv is what makes `-m venv` work).
venv=${ACCEPTANCE_VENV:-$root/target/acceptance-venv}
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3)
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import aioquic' 2>/dev/null; then
    log "creating $venv with aioquic"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "aioquic>=1.7,<2"
fi
# schemathesis pinned: its CLI and its checks change between releases, and
# tests/api_schema.rs passes flags of this one (4.x, on Python >= 3.10).
schemathesis_version=4.32.5
if [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" != "$schemathesis_version" ]; then
    log "installing schemathesis $schemathesis_version into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$schemathesis_version"
fi

# --- playwright-core --------------------------------------------------------
browser="$root/tests/browser"
if ! (cd "$browser" && node -e "require.resolve('playwright-core')" 2>/dev/null); then
    log "installing playwright-core into tests/browser/node_modules"
    if [ -f "$browser/package-lock.json" ]; then
        npm ci --prefix "$browser" --no-audit --no-fund --loglevel=error >/dev/null
    else
        npm install --prefix "$browser" --no-audit --no-fund --loglevel=error >/dev/null
    fi
fi
log "ok"
