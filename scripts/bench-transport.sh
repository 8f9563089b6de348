#!/usr/bin/env bash
# Transport benchmark: `ludus serve` against a wtransport echo peer
# (examples/wtransport_echo.rs), driven by the load core (src/load, through
# examples/echo_load.rs).
#
#   bash scripts/bench-transport.sh
#
# For SHARDS in 1 2: starts `ludus serve --shards S --cores ...` and runs
# three echo loads against it (WebTransport datagram Pings, WebTransport
# control-stream Pings, WebSocket over TLS), then the two WebTransport
# loads against the wtransport peer on S tokio threads on the same cores.
# Each load: CLIENTS clients, one Ping every INTERVAL_MS each, a measure
# window of DURATION seconds after the ramp and a 1 s warm-up. The load
# process reads the server's CPU time (utime + stime, /proc/PID/stat) at
# both ends of the window: server CPU microseconds per echo, handshakes
# excluded. Then the memory of idle WebTransport sessions: IDLE_SESSIONS
# clients (one UDP socket each) connect to a fresh 1-shard server and stay
# idle (heartbeats only); VmRSS before and after gives KiB per session.
#
# Writes target/bench-transport.json and prints a table. Environment:
#   CLIENTS=200 INTERVAL_MS=20 DURATION=6 SHARD_COUNTS="1 2"
#   IDLE_SESSIONS=10000 IDLE_RAMP=800 MEMORY=1 (0 skips the memory part)
#   WTRANSPORT=1 (0 skips the wtransport peer)
# Needs: jq, taskset. Numbers on a shared machine are noisy: compare the
# ratios within one run.
set -euo pipefail

cd "$(dirname "$0")/.."
root="$(pwd)"

CLIENTS="${CLIENTS:-200}"
INTERVAL_MS="${INTERVAL_MS:-20}"
DURATION="${DURATION:-6}"
SHARD_COUNTS="${SHARD_COUNTS:-1 2}"
IDLE_SESSIONS="${IDLE_SESSIONS:-10000}"
IDLE_RAMP="${IDLE_RAMP:-800}"
MEMORY="${MEMORY:-1}"
WTRANSPORT="${WTRANSPORT:-1}"
RAMP="${RAMP:-1000}"

export RUST_LOG=warn

for tool in jq taskset; do
    command -v "$tool" >/dev/null || { echo "bench-transport: needs $tool" >&2; exit 1; }
done

echo "== building (cargo build --release --bin ludus --examples --features wtransport-peer)"
cargo build --release --bin ludus --examples --features wtransport-peer
ludus="$root/target/release/ludus"
peer="$root/target/release/examples/wtransport_echo"
load="$root/target/release/examples/echo_load"

# One UDP socket per WebTransport client: take the hard limit.
ulimit -n "$(ulimit -Hn)"

work="$(mktemp -d)"
results="$work/results.jsonl"
: > "$results"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cores_total="$(nproc)"
cpu_model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "== machine: $cpu_model, nproc=$cores_total, kernel $(uname -r)"

# Server cores 0..S-1; the load generator gets the cores after them, or
# shares the last core when there are none to spare.
plan_cores() {
    local shards=$1
    server_cores="0-$((shards - 1))"
    if [ "$cores_total" -gt "$shards" ]; then
        load_cores_list="$(seq -s, "$shards" $((cores_total - 1)))"
        load_threads=$((cores_total - shards))
        sharing="load generator on core(s) $load_cores_list, alone"
    else
        load_cores_list="$((cores_total - 1))"
        load_threads=1
        sharing="load generator on core $load_cores_list, SHARED with server core $load_cores_list (no spare core)"
    fi
}

# Starts a server, waits for its `listening` line; sets server_pid and
# server_out.
start_server() {
    local name=$1
    shift
    server_out="$work/$name.out"
    "$@" > "$server_out" 2> "$work/$name.err" &
    server_pid=$!
    pids+=("$server_pid")
    for _ in $(seq 1 600); do
        if grep -qs '^listening' "$server_out" && grep -qs 'sha-256 (hex)' "$server_out"; then
            return 0
        fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "bench-transport: $name exited:" >&2
            cat "$work/$name.err" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "bench-transport: $name did not print its addresses" >&2
    exit 1
}

# SIGTERM drains (ludus waits for open connections); after 3 s, SIGKILL.
stop_server() {
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 30); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
}

field() { grep -o "$1=[^ ]*" "$server_out" | head -1 | cut -d= -f2; }
cert_hash() { grep 'sha-256 (hex)' "$server_out" | awk '{print $NF}'; }

# run_load SERVER_KIND SHARDS LOAD_ARGS...: one echo load, appended to
# the results.
run_load() {
    local kind=$1 shards=$2
    shift 2
    local label="$kind/$shards/$*"
    echo "   load: $kind, $shards core(s): $*" >&2
    local commandline=(taskset -c "$load_cores_list" "$load" --server-pid "$server_pid"
        --clients "$CLIENTS" --ramp "$RAMP" --interval-ms "$INTERVAL_MS" --duration-s "$DURATION"
        --threads "$load_threads" --pin-cores "$load_cores_list" --label "$label" "$@")
    "${commandline[@]}" > "$work/run.json"
    jq -c --arg kind "$kind" --argjson shards "$shards" --arg sharing "$sharing" \
        --arg command "${commandline[*]}" \
        '. + {server_kind: $kind, server_cores: $shards, sharing: $sharing, command: $command}' \
        "$work/run.json" >> "$results"
    jq -r '"         \(.echoes_per_second) echoes/s, rtt p50/p99 \(.rtt_us.p50)/\(.rtt_us.p99) us, server \(.server.cpu_us_per_echo) us CPU per echo, errors \(.errors_total)"' \
        "$work/run.json" >&2
}

server_commands=()
for shards in $SHARD_COUNTS; do
    plan_cores "$shards"
    echo "== $shards shard(s): server on cores $server_cores; $sharing"
    ludus_command=(taskset -c "$server_cores" "$ludus" serve --shards "$shards"
        --cores "$server_cores" --udp 127.0.0.1:0 --https 127.0.0.1:0 --http 127.0.0.1:0
        --data-dir "$work/data-$shards")
    server_commands+=("RUST_LOG=warn ${ludus_command[*]}")
    start_server "ludus-$shards" "${ludus_command[@]}"
    udp="$(field udp)"
    https="$(field https)"
    hash="$(cert_hash)"
    run_load ludus "$shards" --transport wt --wt "$udp" --cert-sha256 "$hash" --channel datagram
    run_load ludus "$shards" --transport wt --wt "$udp" --cert-sha256 "$hash" --channel stream
    run_load ludus "$shards" --transport ws --ws "wss://$https/ws" --cert-sha256 "$hash" --channel stream
    stop_server

    if [ "$WTRANSPORT" = "1" ]; then
        peer_command=(taskset -c "$server_cores" "$peer" --udp 127.0.0.1:0 --threads "$shards")
        server_commands+=("${peer_command[*]}")
        start_server "wtransport-$shards" "${peer_command[@]}"
        udp="$(field udp)"
        hash="$(cert_hash)"
        run_load wtransport "$shards" --transport wt --wt "$udp" --cert-sha256 "$hash" --channel datagram
        run_load wtransport "$shards" --transport wt --wt "$udp" --cert-sha256 "$hash" --channel stream
        stop_server
    fi
done

memory_runs="$work/memory.jsonl"
: > "$memory_runs"
if [ "$MEMORY" = "1" ]; then
    plan_cores 1
    echo "== memory: $IDLE_SESSIONS idle WebTransport sessions at $IDLE_RAMP/s, 1 shard on core 0; $sharing"
    idle_load() {
        local kind=$1
        local commandline=(taskset -c "$load_cores_list" "$load" --server-pid "$server_pid"
            --transport wt --wt "$(field udp)" --cert-sha256 "$(cert_hash)"
            --clients "$IDLE_SESSIONS" --ramp "$IDLE_RAMP" --interval-ms 0 --duration-s 2 --warmup-s 3
            --threads "$load_threads" --pin-cores "$load_cores_list" --label "idle/$kind")
        "${commandline[@]}" > "$work/idle.json"
        jq -c --arg kind "$kind" --arg command "${commandline[*]}" \
            '{server_kind: $kind, sessions_target: .clients_target,
              sessions_reached: .clients_connected_at_end,
              sessions_connected_total: .clients_connected_total, connect_failures, errors,
              rss_kib_before: .server.rss_kib_start, rss_kib_after: .server.rss_kib_window_end,
              kib_per_session: .server.rss_kib_per_session,
              load_kib_per_session: ((.load_rss_kib_window_end / ([.clients_connected_at_end, 1] | max)) * 100 | round / 100),
              nofile_limit,
              command: $command}' "$work/idle.json" >> "$memory_runs"
        jq -r '"         \(.sessions_reached)/\(.sessions_target) sessions, \(.kib_per_session) KiB per session (RSS \(.rss_kib_before) -> \(.rss_kib_after) KiB), failures \(.connect_failures)"' \
            <(tail -1 "$memory_runs") >&2
    }
    memory_command=(taskset -c 0 "$ludus" serve --shards 1 --cores 0 --udp 127.0.0.1:0
        --https 127.0.0.1:0 --http 127.0.0.1:0 --data-dir "$work/data-memory")
    server_commands+=("RUST_LOG=warn ${memory_command[*]}")
    start_server ludus-memory "${memory_command[@]}"
    idle_load ludus
    stop_server
    if [ "$WTRANSPORT" = "1" ]; then
        peer_command=(taskset -c 0 "$peer" --udp 127.0.0.1:0 --threads 1)
        server_commands+=("${peer_command[*]}")
        start_server wtransport-memory "${peer_command[@]}"
        idle_load wtransport
        stop_server
    fi
fi

# Ratios ludus / wtransport per (cores, channel): throughput per server
# core (echoes per server CPU second) and p99 RTT.
report="$root/target/bench-transport.json"
rustc_version="$(rustc --version)"
printf '%s\n' "${server_commands[@]}" | jq -R . | jq -s . > "$work/servers.json"
jq -s \
    --arg cpu "$cpu_model" --argjson nproc "$cores_total" --arg kernel "$(uname -r)" \
    --arg rustc "$rustc_version" --argjson clients "$CLIENTS" \
    --argjson interval_ms "$INTERVAL_MS" --argjson duration_s "$DURATION" \
    --slurpfile memory <(jq -s . "$memory_runs") --slurpfile servers "$work/servers.json" \
    '
    def find($kind; $cores; $transport; $channel):
        map(select(.server_kind == $kind and .server_cores == $cores
            and .transport == $transport and .channel == $channel)) | first;
    . as $runs
    | {
        machine: {cpu_model: $cpu, nproc: $nproc, kernel: $kernel, rustc: $rustc},
        load: {clients: $clients, ping_interval_ms: $interval_ms, window_s: $duration_s},
        server_commands: $servers[0],
        runs: $runs,
        ratios: [
            $runs[] | select(.server_kind == "ludus" and .transport == "wt")
            | . as $l
            | ($runs | find("wtransport"; $l.server_cores; "wt"; $l.channel)) as $w
            | select($w != null)
            | {
                server_cores: $l.server_cores,
                channel: $l.channel,
                echoes_per_cpu_second: {ludus: $l.server.echoes_per_cpu_second,
                                        wtransport: $w.server.echoes_per_cpu_second},
                throughput_per_core_ludus_over_wtransport:
                    (($l.server.echoes_per_cpu_second / $w.server.echoes_per_cpu_second) * 100 | round / 100),
                rtt_p99_us: {ludus: $l.rtt_us.p99, wtransport: $w.rtt_us.p99},
                rtt_p99_ludus_over_wtransport:
                    (($l.rtt_us.p99 / $w.rtt_us.p99) * 100 | round / 100)
              }
        ],
        memory: $memory[0]
      }
    ' "$results" > "$report"

echo
echo "== results (server CPU per echo measured over the window only)"
{
    printf 'server\tcores\ttransport\tchannel\techoes/s\tp50us\tp90us\tp99us\tp999us\tmaxus\tsrvCPUus/echo\techoes/srvCPUs\tsrvCore%%\tlost\tudpRcvbufErr\tlate\tloadCPUs\terrors\n'
    jq -r '.runs[] | [.server_kind, .server_cores, .transport, .channel, (.echoes_per_second | round),
        .rtt_us.p50, .rtt_us.p90, .rtt_us.p99, .rtt_us.p999, .rtt_us.max,
        .server.cpu_us_per_echo, .server.echoes_per_cpu_second,
        (.server.cpu_share_of_one_core * 100 | round), .pongs_missing,
        .server.udp_receive_buffer_errors_window, .pings_late, .load_cpu_s, .errors_total] | @tsv' "$report"
} | column -t -s $'\t'
echo
echo "== ludus / wtransport (throughput per server core: higher is better for ludus; p99: lower is better)"
{
    printf 'cores\tchannel\tthroughput/core ratio\tp99 ratio\tp99 ludus\tp99 wtransport\n'
    jq -r '.ratios[] | [.server_cores, .channel, .throughput_per_core_ludus_over_wtransport,
        .rtt_p99_ludus_over_wtransport, .rtt_p99_us.ludus, .rtt_p99_us.wtransport] | @tsv' "$report"
} | column -t -s $'\t'
if [ "$MEMORY" = "1" ]; then
    echo
    echo "== idle WebTransport sessions (server VmRSS growth per session)"
    {
        printf 'server\treached\ttarget\tKiB/session\tRSS before KiB\tRSS after KiB\tload process KiB/session\n'
        jq -r '.memory[] | [.server_kind, .sessions_reached, .sessions_target, .kib_per_session,
            .rss_kib_before, .rss_kib_after, .load_kib_per_session] | @tsv' "$report"
    } | column -t -s $'\t'
fi
echo
echo "wrote $report"
