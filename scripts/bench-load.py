#!/usr/bin/env python3
"""The standard load scenarios of `make bench`: `ludus serve` and `ludus bots`
as separate processes, pinned to different cores where there are several.

Capacity: for each game (arena: rooms of 8 at 30 Hz inputs and states;
tetris: 2-player rooms at a steady pieces-per-second), the server runs on one
shard and the bots step up their count. A step passes when every bot
connected, no bot had an error, and the input-to-acknowledgement p99 stayed
under 50 ms. The capacity is the largest passing count. Each step records the
server's CPU time per delivered state message (from /proc, over the measure
window) and the bots' own CPU, because on a small machine the load generator
competes for the same cores.

    python3 scripts/bench-load.py [--games arena,tetris] [--steps 500,1000,...]
        [--duration 10] [--transport ws|wt] [--out target/bench]

Writes OUT/load.json (every step's bots report plus the verdicts) and
OUT/load-<game>-<clients>.svg (each step's latency plot), and prints a
summary table. Needs target/release/ludus (`make build`).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LUDUS = os.path.join(ROOT, "target", "release", "ludus")
P99_LIMIT_MS = 50.0
DEFAULT_STEPS = {
    "arena": [500, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000],
    "tetris": [500, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000],
}


def cpu_model():
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def noise_floor(core, seconds=5.0):
    """How late a 1 ms sleep wakes up on `core` (ms percentiles): the
    machine's own scheduling noise (a virtual machine's stolen time shows
    here), the floor under every latency figure of the run."""
    if core is not None:
        os.sched_setaffinity(0, {core})
    late = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        before = time.perf_counter()
        time.sleep(0.001)
        late.append((time.perf_counter() - before - 0.001) * 1e3)
    os.sched_setaffinity(0, set(range(os.cpu_count())))
    late.sort()
    pick = lambda q: round(late[min(len(late) - 1, int(len(late) * q))], 3)
    return {"samples": len(late), "p50_ms": pick(0.5), "p99_ms": pick(0.99),
            "p999_ms": pick(0.999), "max_ms": round(late[-1], 3)}


def steal_share():
    """Share of CPU time the hypervisor took since boot (/proc/stat steal)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    return round(fields[7] / max(1, sum(fields)), 4) if len(fields) > 7 else None


def start_server(cores, data_dir):
    # Every bot connects from 127.0.0.1: lift the per-address TCP limit
    # (4,096 by default, a defence for the real world, not for this run).
    config = os.path.join(data_dir, "bench.toml")
    with open(config, "w") as file:
        file.write("[serve]\nmax_tcp_connections_per_ip = 20000\n")
    args = [LUDUS, "--config", config, "serve", "--shards", "1", "--udp", "127.0.0.1:0",
            "--https", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data-dir", data_dir]
    if cores:
        args += ["--cores", str(cores[0])]
    env = {"PATH": os.environ.get("PATH", ""), "RUST_LOG": "warn"}
    server = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              env=env, text=True)
    listening, cert = None, None
    deadline = time.time() + 30
    while (listening is None or cert is None) and time.time() < deadline:
        line = server.stdout.readline()
        if not line:
            break
        if line.startswith("listening "):
            listening = dict(part.split("=", 1) for part in line.split()[1:])
        elif line.startswith("certificate sha-256 (hex): "):
            cert = line.split(": ", 1)[1].strip()
    if listening is None or cert is None:
        server.kill()
        sys.exit("bench-load: ludus serve did not print its addresses")
    return server, listening, cert


def run_step(args, server, listening, cert, game, clients, cores, out):
    report_path = os.path.join(out, f"load-{game}-{clients}.json")
    plot_path = os.path.join(out, f"load-{game}-{clients}.svg")
    if args.transport == "ws":
        target = ["--server", f"ws://{listening['http']}", "--transport", "ws"]
    else:
        target = ["--server", f"https://{listening['udp']}", "--transport", "wt"]
    command = [LUDUS, "bots", *target, "--cert-hash", cert, "--game", game,
               "--players", str(clients), "--duration", str(args.duration),
               "--ramp", str(args.ramp), "--warmup", "3", "--pps", str(args.pps),
               "--server-pid", str(server.pid), "--json", report_path,
               "--plot", plot_path, "--quiet", "--threads", "1"]
    if len(cores) > 1:
        command += ["--cores", str(cores[1])]
    started = time.time()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, timeout=600)
    try:
        with open(report_path) as file:
            report = json.load(file)
    except (OSError, ValueError):
        return {"clients": clients, "passed": False,
                "why": f"no report (exit {result.returncode}): {result.stderr.strip()[-300:]}"}
    p99 = report["latency_ms"]["p99"]
    problems = []
    if report["clients_connected_at_end"] != clients:
        problems.append(f"{report['clients_connected_at_end']} of {clients} connected")
    if report["errors_total"]:
        problems.append(f"{report['errors_total']} errors {report['errors']}")
    if report["latency_ms"]["count"] == 0:
        problems.append("no input was acknowledged")
    elif p99 >= P99_LIMIT_MS:
        problems.append(f"p99 {p99} ms >= {P99_LIMIT_MS} ms")
    window_s = report["duration_s"]
    per_state = report.get("server_cpu_us_per_state")
    states_per_client = report["states_per_s"] / max(1, clients - report["spectators"])
    return {
        "clients": clients,
        "passed": not problems,
        # Clients one server core could serve at 100% CPU at this step's
        # cost per state (CPU alone, latency aside).
        "cpu_bound_clients": int(1e6 / (per_state * states_per_client)) if per_state else None,
        "why": "; ".join(problems),
        "rooms": report["rooms"],
        "latency_ms": report["latency_ms"],
        "jitter_ms": report["jitter_ms"],
        "rtt_ms": report["rtt_ms"],
        "states_per_s": report["states_per_s"],
        "msgs_in_per_s": report["msgs_in_per_s"],
        "msgs_out_per_s": report["msgs_out_per_s"],
        "server_cpu_share": report.get("server_cpu_share"),
        "server_cpu_us_per_state": report.get("server_cpu_us_per_state"),
        "bots_cpu_share": round(report["bots_cpu_s"] / report["elapsed_s"], 3),
        "wall_s": round(time.time() - started, 1),
        "window_s": window_s,
        "report": os.path.relpath(report_path, ROOT),
        "plot": os.path.relpath(plot_path, ROOT),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", default="arena,tetris")
    parser.add_argument("--steps", help="comma-separated client counts (all games)")
    parser.add_argument("--duration", type=int, default=10, help="measure window, s")
    parser.add_argument("--ramp", type=int, default=1000, help="connects per second")
    parser.add_argument("--pps", type=float, default=2.0, help="Tetris pieces per second")
    parser.add_argument("--transport", choices=["ws", "wt"], default="ws")
    parser.add_argument("--out", default=os.path.join(ROOT, "target", "bench"))
    args = parser.parse_args()
    if not os.access(LUDUS, os.X_OK):
        sys.exit(f"bench-load: {LUDUS} is missing: run `make build`")
    os.makedirs(args.out, exist_ok=True)
    cores = sorted(os.sched_getaffinity(0))
    cores = cores[:2] if len(cores) >= 2 else []
    summary = {
        "machine": {"cores": os.cpu_count(), "cpu": cpu_model()},
        "pinning": {"server_core": cores[0], "bots_core": cores[1]} if cores else None,
        "transport": args.transport,
        "p99_limit_ms": P99_LIMIT_MS,
        "games": {},
        "steal_share_since_boot": steal_share(),
        "noise_floor_1ms_sleep_late": noise_floor(cores[0] if cores else None),
    }
    print(f"machine noise: a 1 ms sleep wakes late by {summary['noise_floor_1ms_sleep_late']} "
          f"(steal since boot {summary['steal_share_since_boot']})", flush=True)
    for game in args.games.split(","):
        steps = [int(n) for n in args.steps.split(",")] if args.steps else DEFAULT_STEPS[game]
        with tempfile.TemporaryDirectory() as data_dir:
            server, listening, cert = start_server(cores, data_dir)
            results = []
            try:
                for clients in steps:
                    step = run_step(args, server, listening, cert, game, clients, cores, args.out)
                    results.append(step)
                    verdict = "pass" if step["passed"] else f"FAIL ({step['why']})"
                    p99 = step.get("latency_ms", {}).get("p99")
                    print(f"{game:6} {clients:6} clients: p99 {p99} ms, server CPU "
                          f"{step.get('server_cpu_share')} of a core, "
                          f"{step.get('server_cpu_us_per_state')} us/state "
                          f"(CPU-bound at {step.get('cpu_bound_clients')} clients), bots CPU "
                          f"{step.get('bots_cpu_share')}: {verdict}", flush=True)
                    # Past the limit: one more step shows the trend, then stop.
                    if not step["passed"] and (len(results) >= 2 and not results[-2]["passed"]):
                        break
                    if not step["passed"] and "connected" in step["why"]:
                        break
                    time.sleep(2)  # the last step's sessions close
            finally:
                server.kill()
                server.wait()
        passed = [step["clients"] for step in results if step["passed"]]
        bounds = [step["cpu_bound_clients"] for step in results if step.get("cpu_bound_clients")]
        summary["games"][game] = {
            "capacity": max(passed) if passed else 0,
            # At the largest step measured: per-state cost falls as load grows.
            "cpu_bound_clients": bounds[-1] if bounds else None,
            "steps": results,
        }
    path = os.path.join(args.out, "load.json")
    with open(path, "w") as file:
        json.dump(summary, file, indent=2)
        file.write("\n")
    for game, result in summary["games"].items():
        print(f"capacity {game}: {result['capacity']} clients on one server core "
              f"(p99 < {P99_LIMIT_MS} ms, no errors); CPU-bound at "
              f"{result['cpu_bound_clients']} clients")
    print(f"report: {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()
