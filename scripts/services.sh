#!/usr/bin/env bash
# Starts the services the integration tests use, on loopback, unless they
# already run: PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`) and
# nats-server with JetStream on 127.0.0.1:4222. Reuses running ones.
set -euo pipefail

log() { printf 'services: %s\n' "$*"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {
    local port=$1 name=$2
    for _ in $(seq 1 50); do
        port_open "$port" && return 0
        sleep 0.2
    done
    log "$name did not come up on 127.0.0.1:$port" >&2
    return 1
}

start_postgres() {
    if port_open 5432; then
        log "postgres already running on 127.0.0.1:5432"
    else
        local version
        version=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -n 1)
        if [ -z "$version" ]; then
            log "postgresql is not installed (run scripts/setup.sh)" >&2
            return 1
        fi
        # Trust auth on loopback, for tests only.
        local hba="/etc/postgresql/$version/main/pg_hba.conf"
        if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
            sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
        fi
        log "starting postgres $version"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start
        wait_for_port 5432 postgres
    fi
    if ! psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname = 'test'" | grep -q 1; then
        psql -h 127.0.0.1 -U postgres -qc "create database test"
    fi
}

start_nats() {
    if port_open 4222; then
        log "nats already running on 127.0.0.1:4222"
        return 0
    fi
    local store=/var/lib/nats-server
    mkdir -p "$store"
    log "starting nats-server with JetStream"
    start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server)" -- \
        -a 127.0.0.1 -p 4222 -js -sd "$store" -l /var/log/nats-server.log
    wait_for_port 4222 nats-server
}

start_postgres
start_nats
