#!/usr/bin/env python3
"""The REST API benchmarks of `make bench`: `ludus serve` (one shard, pinned
to core 0) against wrk (pinned to core 1), over HTTP/1.1 on loopback.

For each store (the embedded SQLite, and Postgres when reachable at
--database-url; each run gets a fresh schema):
  - GET /api/players/me with a bearer token: requests/s and latency
    (a JWT check on the shard, one indexed read on a storage worker);
  - login: the time of one POST /api/auth/login, sequentially, with the
    default argon2id parameters (the configured cost, end to end).
Then the shards' tick: `ludus bots` plays arena rooms over WebSocket twice,
once alone and once while wrk hammers /api/players/me. Both runs record the
bots' input-to-ack and state-jitter percentiles and, from /api/stats, the
server's own count of how late each room tick ran after its deadline (the
measure the load generator's scheduling cannot blur).

    python3 scripts/bench-api.py [--duration 10] [--connections 32]
        [--database-url postgres://postgres@127.0.0.1:5432/test] [--out target/bench]

Writes OUT/api.json and prints a summary. Needs target/release/ludus
(`make build`) and wrk (`apt-get install wrk`).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LUDUS = os.path.join(ROOT, "target", "release", "ludus")
SECRET = "k1:bench-secret-bench-secret-bench-secret"
# Every request comes from 127.0.0.1 and one account: lift the limits that
# defend the real world (per-address and per-account rates).
CONFIG = """[serve]
max_tcp_connections_per_ip = 20000
[api]
ip_rate_per_s = 1000000
ip_burst = 1000000
account_rate_per_s = 1000000
account_burst = 1000000
auth_per_minute = 1000000
"""


def pinned(core, command):
    return (["taskset", "-c", str(core)] if shutil.which("taskset") else []) + command


def start_server(data_dir, database_url):
    config = os.path.join(data_dir, "bench.toml")
    with open(config, "w") as file:
        file.write(CONFIG)
    env = {"PATH": os.environ.get("PATH", ""), "RUST_LOG": "warn", "JWT_SECRET": SECRET}
    if database_url:
        env["DATABASE_URL"] = database_url
    args = [LUDUS, "--config", config, "serve", "--shards", "1", "--cores", "0",
            "--udp", "127.0.0.1:0", "--https", "127.0.0.1:0", "--http", "127.0.0.1:0",
            "--data-dir", data_dir]
    server = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, env=env)
    listening, cert = None, None
    deadline = time.time() + 60
    while (listening is None or cert is None) and time.time() < deadline:
        line = server.stdout.readline()
        if not line:
            break
        if line.startswith("listening "):
            listening = dict(field.split("=", 1) for field in line.split()[1:])
        if line.startswith("certificate sha-256 (hex): "):
            cert = line.split(": ", 1)[1].strip()
    if listening is None:
        server.kill()
        sys.exit("ludus serve did not start")
    return server, listening, cert


def post(address, path, body, token=None):
    request = urllib.request.Request(f"http://{address}{path}", data=json.dumps(body).encode(),
                                     method="POST", headers={"content-type": "application/json"})
    if token:
        request.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wrk(address, token, seconds, connections, core=1):
    command = pinned(core, ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
                            "-H", f"Authorization: Bearer {token}",
                            f"http://{address}/api/players/me"])
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    latency = {q: re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
               for q in ("50", "99")}
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)

    def ms(match):
        if not match:
            return None
        value, unit = float(match.group(1)), match.group(2)
        return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 3)

    return {"requests_per_s": float(rate.group(1)) if rate else None,
            "latency_ms_p50": ms(latency["50"]), "latency_ms_p99": ms(latency["99"]),
            "non_2xx": int(non_2xx.group(1)) if non_2xx else 0, "connections": connections,
            "seconds": seconds}


def logins(address, username, password, count=20):
    times = []
    for _ in range(count):
        started = time.perf_counter()
        post(address, "/api/auth/login", {"username": username, "password": password})
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"count": count, "p50_ms": round(times[count // 2], 2), "max_ms": round(times[-1], 2)}


def tick_lateness(address):
    """The shard's room-tick lateness counters (from /api/stats)."""
    with urllib.request.urlopen(f"http://{address}/api/stats", timeout=30) as response:
        shard = json.loads(response.read())["shards"][0]
    return shard["tick_late_ms"]


def lateness_summary(before, after):
    """Ticks in the window by lateness bucket, and the bucket holding p50
    and p99 (`<= bound` ms; None past the last bound)."""
    counts = [b - a for a, b in zip(before["counts"], after["counts"])]
    total = sum(counts)
    bounds = before["bounds"]

    def quantile(q):
        seen = 0
        for index, count in enumerate(counts):
            seen += count
            if total and seen >= q * total:
                return bounds[index] if index < len(bounds) else None
        return None

    return {"ticks": total, "counts": counts, "bounds_ms": bounds,
            "p50_at_most_ms": quantile(0.5), "p99_at_most_ms": quantile(0.99),
            "p999_at_most_ms": quantile(0.999), "max_ms_since_start": after["max"]}


def bots(listening, cert, server_pid, seconds, out, name):
    report = os.path.join(out, f"api-ticks-{name}.json")
    before = tick_lateness(listening["http"])
    command = pinned(1, [LUDUS, "bots", "--server", f"ws://{listening['http']}", "--transport",
                         "ws", "--cert-hash", cert, "--game", "arena", "--players", "200",
                         "--duration", str(seconds), "--ramp", "2", "--warmup", "3",
                         "--server-pid", str(server_pid), "--json", report, "--quiet",
                         "--threads", "1"])
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=seconds + 120)
    after = tick_lateness(listening["http"])
    with open(report) as file:
        data = json.load(file)
    return {"input_to_ack_ms": data["latency_ms"], "jitter_ms": data["jitter_ms"],
            "errors": data["errors_total"], "states_per_s": data["states_per_s"],
            "tick_late_ms": lateness_summary(before, after)}


def store_run(args, name, database_url):
    data_dir = tempfile.mkdtemp(prefix="ludus-bench-api-")
    server, listening, cert = start_server(data_dir, database_url)
    try:
        address = listening["http"]
        password = "bench password"
        signed = post(address, "/api/auth/register", {"username": "bench", "password": password})
        token = signed["access_token"]
        result = {"store": name, "me": wrk(address, token, args.duration, args.connections),
                  "login": logins(address, "bench", password)}
        if name == "sqlite":
            result["ticks_alone"] = bots(listening, cert, server.pid, args.duration, args.out,
                                         "alone")
            api_load = subprocess.Popen(
                pinned(1, ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration + 10}s",
                           "-H", f"Authorization: Bearer {token}",
                           f"http://{address}/api/players/me"]),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            result["ticks_with_api_load"] = bots(listening, cert, server.pid, args.duration,
                                                 args.out, "with-api-load")
            api_load.wait(timeout=120)
        return result
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


def postgres_schema(url):
    """A fresh schema for this run; the URL that selects it."""
    schema = f"ludus_bench_{uuid.uuid4().hex[:12]}"
    subprocess.run(["psql", url, "-qc", f"CREATE SCHEMA {schema}"], check=True,
                   capture_output=True)
    separator = "&" if "?" in url else "?"
    return schema, f"{url}{separator}options=-c%20search_path%3D{schema}"


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/test")
    parser.add_argument("--out", default=os.path.join(ROOT, "target", "bench"))
    args = parser.parse_args()
    for tool in (LUDUS, shutil.which("wrk")):
        if not tool or not os.path.exists(tool):
            sys.exit("needs target/release/ludus (make build) and wrk (apt-get install wrk)")
    os.makedirs(args.out, exist_ok=True)
    runs = [store_run(args, "sqlite", None)]
    try:
        schema, url = postgres_schema(args.database_url)
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"postgres: skipped ({error})", file=sys.stderr)
    else:
        try:
            runs.append(store_run(args, "postgres", url))
        finally:
            subprocess.run(["psql", args.database_url, "-qc", f"DROP SCHEMA {schema} CASCADE"],
                           capture_output=True)
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpu_count": os.cpu_count(), "runs": runs}
    with open(os.path.join(args.out, "api.json"), "w") as file:
        json.dump(result, file, indent=2)
    for run in runs:
        me, login = run["me"], run["login"]
        print(f"{run['store']:>8}: GET /api/players/me {me['requests_per_s']} req/s "
              f"(p50 {me['latency_ms_p50']} ms, p99 {me['latency_ms_p99']} ms, "
              f"non-2xx {me['non_2xx']}); login p50 {login['p50_ms']} ms")
        if "ticks_alone" in run:
            for name in ("ticks_alone", "ticks_with_api_load"):
                ticks = run[name]
                late = ticks["tick_late_ms"]
                print(f"          {name}: input->ack p50 {ticks['input_to_ack_ms']['p50']} "
                      f"p99 {ticks['input_to_ack_ms']['p99']} ms, jitter p99 "
                      f"{ticks['jitter_ms']['p99']} ms, errors {ticks['errors']}; server tick "
                      f"lateness p50 <= {late['p50_at_most_ms']} p99 <= {late['p99_at_most_ms']} "
                      f"p99.9 <= {late['p999_at_most_ms']} ms over {late['ticks']} ticks "
                      f"{late['counts']}")


if __name__ == "__main__":
    main()
