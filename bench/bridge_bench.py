#!/usr/bin/env python3
"""Throughput of shmqd's SQS HTTP bridge, beside the HTTP floor measured in
the same run.

For each --bridge-threads value, shmq-http-floor (shmqd's own HTTP server
answering a fixed 200, on as many threads) and a shmqd in a fresh namespace
with one queue run side by side, and wrk drives, in each of --rounds rounds:
the floor with SendMessage's request, then the bridge with SendMessage,
ReceiveMessage + DeleteMessage, and ReceiveMessage of 10 +
DeleteMessageBatch, over keep-alive connections (AWS JSON 1.0). wrk and the
server share the machine's cores in every run, so the figures mean something
as ratios to the floor of the same round, not across machines.

    bench/bridge_bench.py [--duration 3] [--rounds 3] [--threads 1] [--connections 16]
                          [--bridge-threads 1,2] [--scenarios ...] [--json]

Every answer must be a 2xx: a run with errors, or a receive that found the
queue empty, is reported as failed (exit status 1), never as a fast result.
Needs wrk (tools/install-deps.sh installs it) and a build (build/bin).
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import bench_daemon
from bench_daemon import DEFAULT_BIN, cpu_seconds

SCRIPTS = Path(__file__).resolve().parent / "bridge"

# name: (wrk script, its arguments after the queue URL, what one operation is)
SCENARIOS = {
    "send": ("send_message.lua", ["json"], "SendMessage"),
    "send-query": ("send_message.lua", ["query"], "SendMessage, Query protocol"),
    "send-batch": ("send_message_batch.lua", [], "SendMessageBatch of 10"),
    "receive-delete": ("receive_delete.lua", ["1"], "ReceiveMessage + DeleteMessage"),
    "receive-delete-10": ("receive_delete.lua", ["10"], "ReceiveMessage of 10 + DeleteMessageBatch"),
}
DEFAULT_SCENARIOS = ["send", "receive-delete", "receive-delete-10"]


class BenchError(RuntimeError):
    pass


class Floor:
    """shmq-http-floor on a free port, stopped on exit."""

    def __init__(self, path, threads):
        self.args = [str(path), "--listen", "127.0.0.1:0", "--threads", str(threads)]
        self.process = None
        self._dir = tempfile.TemporaryDirectory(prefix="shmq-floor-")

    def __enter__(self):
        port_file = Path(self._dir.name) / "port"
        self.process = subprocess.Popen(self.args + ["--port-file", str(port_file)])
        try:
            self.port = bench_daemon.wait_for_port_file(port_file, self.process, "shmq-http-floor")
        except RuntimeError:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        bench_daemon.stop_process(self.process)
        self._dir.cleanup()
        return False


def run_wrk(opts, port, pid, script, script_args):
    """One wrk run against 127.0.0.1:port. Returns the script's JSON report
    plus rates and the server's CPU time per request."""
    command = [
        opts.wrk, f"-t{opts.threads}", f"-c{opts.connections}", f"-d{opts.duration}s", f"--timeout={opts.timeout}s",
        "--latency", "-s", str(SCRIPTS / script), f"http://127.0.0.1:{port}", "--", *script_args
    ]
    cpu_before = cpu_seconds(pid)
    done = subprocess.run(command, capture_output=True, text=True, timeout=opts.duration + 60)
    cpu = cpu_seconds(pid) - cpu_before
    lines = [line for line in done.stdout.splitlines() if line.startswith("SHMQ_WRK_JSON ")]
    if done.returncode != 0 or not lines:
        raise BenchError(f"wrk failed ({' '.join(command)}):\n{done.stdout}{done.stderr}")
    r = json.loads(lines[-1].split(" ", 1)[1])
    seconds = r["duration_us"] / 1e6
    r["seconds"] = seconds
    r["requests_per_s"] = r["requests"] / seconds
    r["socket_errors"] = sum(r[k] for k in ("errors_connect", "errors_read", "errors_write", "errors_timeout"))
    r["server_cpu_us_per_request"] = cpu * 1e6 / r["requests"] if r["requests"] else None
    return r


def fill(opts, daemon, client, url, target):
    """Sends batches of 10 (wrk, send_message_batch.lua) until `target`
    messages are visible."""
    for _ in range(100):
        visible, _ = client.queue_counts(url)
        if visible >= target:
            return
        r = run_wrk(argparse.Namespace(**{**vars(opts), "duration": 1}), daemon.port, daemon.pid,
                    "send_message_batch.lua", [url, str(opts.body_bytes)])
        if r["non_2xx"] or r["socket_errors"] or r["messages"] == 0:
            raise BenchError(f"filling the queue failed: {r}")
    raise BenchError(f"could not fill the queue to {target} messages")


def receive_scenario(opts, daemon, client, url, script_args, estimate):
    """A receive/delete run on a queue filled beforehand. Messages still
    visible at the end prove that no receive found the queue empty (nothing
    else receives, and no message comes back within the visibility
    timeout); if it ran dry, the queue is filled with twice what was used and
    the run repeated once."""
    target = estimate
    for _ in range(2):
        fill(opts, daemon, client, url, target)
        visible, in_flight = client.queue_counts(url)
        r = run_wrk(opts, daemon.port, daemon.pid, "receive_delete.lua", [url, *script_args])
        visible_after, in_flight_after = client.queue_counts(url)
        r["server_deleted"] = (visible + in_flight) - (visible_after + in_flight_after)
        r["ran_dry"] = visible_after == 0
        r["fill_target"] = target
        if not r["ran_dry"]:
            break
        target = 2 * (visible - visible_after) + 1000
    seconds = r["seconds"]
    r["pairs_per_s"] = r["deletes"] / seconds
    r["messages_per_s"] = r["deleted"] / seconds
    return r


def run_scenario(opts, daemon, client, url, name, send_rps):
    """One wrk run of scenario `name` against the daemon's bridge."""
    script, script_args, _ = SCENARIOS[name]
    if script == "receive_delete.lua":
        # Measured: about 0.5 (one at a time) and 2 (ten at a time) messages
        # for each send a second; with a margin, this many messages last the
        # run (receive_scenario refills and repeats if not).
        per_s = send_rps * (0.75 if script_args == ["1"] else 3)
        estimate = min(int(per_s * opts.duration) + 1000, opts.max_messages * 9 // 10)
        return receive_scenario(opts, daemon, client, url, script_args, estimate)
    args = [url, str(opts.body_bytes)] + ([] if script == "send_message_batch.lua" else script_args)
    r = run_wrk(opts, daemon.port, daemon.pid, script, args)
    r["messages_per_s"] = r["messages"] / r["seconds"]
    return r


def median_round(results, key):
    """The result whose `key` is the median (the lower of the middle two),
    with every round's value of `key` beside it."""
    ranked = sorted(results, key=lambda r: r[key] or 0)
    chosen = dict(ranked[(len(ranked) - 1) // 2])
    chosen["rounds_" + key] = [r[key] for r in results]
    return chosen


def bridge_run(opts, bridge_threads):
    """--rounds rounds, each the floor and then every scenario, for one
    --bridge-threads value. A round's ratios are to that round's floor, so
    that load elsewhere on the machine, which comes and goes, weighs on both
    sides of a ratio alike; the report takes each scenario's median round."""
    rounds = []
    namespace = bench_daemon.fresh_namespace(f"bridgebench{bridge_threads}x")
    daemon_args = ["--bridge-threads", str(bridge_threads), "--max-messages", str(opts.max_messages)]
    with Floor(opts.floor, bridge_threads) as floor, \
            bench_daemon.Daemon(opts.shmqd, namespace, extra_args=daemon_args) as daemon:
        client = daemon.client()
        url = client.create_queue("bench")
        # The floor gets the same script and bytes as SendMessage and ignores them.
        floor_args = [f"http://127.0.0.1:{floor.port}/000000000000/bench", str(opts.body_bytes), "json"]
        for _ in range(opts.rounds):
            results = {"floor": run_wrk(opts, floor.port, floor.process.pid, "send_message.lua", floor_args)}
            floor_rps = results["floor"]["requests_per_s"]
            floor_cpu = results["floor"]["server_cpu_us_per_request"]
            send_rps = floor_rps
            for name in opts.scenarios:
                r = run_scenario(opts, daemon, client, url, name, send_rps)
                if name == "send":
                    send_rps = r["requests_per_s"]
                r["vs_floor"] = r["requests_per_s"] / floor_rps if floor_rps else None
                # The server's CPU time per request: the floor's over this
                # one's is the rate ratio the bridge would reach if the server
                # alone were the bottleneck.
                cpu = r["server_cpu_us_per_request"]
                r["cpu_vs_floor"] = floor_cpu / cpu if floor_cpu and cpu else None
                results[name] = r
            rounds.append(results)
        client.close()
    return {
        "bridge_threads": bridge_threads,
        "floor": median_round([r["floor"] for r in rounds], "requests_per_s"),
        "scenarios": {name: median_round([r[name] for r in rounds], "vs_floor") for name in opts.scenarios},
        "rounds": rounds,
    }


def problems(run):
    """What makes a run's figures invalid, as sentences."""
    found = []
    for i, results in enumerate(run["rounds"]):
        for name, r in results.items():
            where = f"bridge threads {run['bridge_threads']}, round {i + 1}, {name}"
            if not r["requests"]:
                found.append(f"{where}: no request was answered")
            if r.get("non_2xx"):
                found.append(f"{where}: {r['non_2xx']} answers were not 2xx")
            if r["socket_errors"]:
                kinds = ", ".join(f"{r['errors_' + k]} {k}" for k in ("connect", "read", "write", "timeout")
                                  if r["errors_" + k])
                found.append(f"{where}: socket errors: {kinds}")
            if r.get("empty_receives"):
                found.append(f"{where}: {r['empty_receives']} receives found the queue empty")
            if r.get("ran_dry"):
                found.append(f"{where}: the queue ran dry; raise --max-messages")
            if r.get("failed_entries"):
                found.append(f"{where}: {r['failed_entries']} batch entries failed")
    return found


def print_table(opts, runs):
    print(f"wrk -t{opts.threads} -c{opts.connections} -d{opts.duration}s, {opts.rounds} rounds, "
          f"{opts.body_bytes} B bodies, AWS JSON 1.0 over keep-alive connections")
    header = (f"{'':44} {'req/s':>8} {'ops/s':>8} {'msgs/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
              f"{'CPU us/req':>10} {'vs floor':>8} {'CPU vs floor':>12}  vs floor by round")
    for run in runs:
        print(f"\nbridge threads {run['bridge_threads']}")
        print(header)
        rows = [("HTTP floor: fixed 200 (shmq-http-floor)", run["floor"])]
        rows += [(SCENARIOS[name][2], r) for name, r in run["scenarios"].items()]
        for label, r in rows:
            ops = r.get("pairs_per_s", r["requests_per_s"])
            msgs = f"{r['messages_per_s']:.0f}" if "messages_per_s" in r else ""
            ratio = f"{r['vs_floor']:.2f}" if r.get("vs_floor") else ""
            cpu_ratio = f"{r['cpu_vs_floor']:.2f}" if r.get("cpu_vs_floor") else ""
            by_round = " ".join(f"{v:.2f}" for v in r.get("rounds_vs_floor", []) if v)
            print(f"{label:44} {r['requests_per_s']:8.0f} {ops:8.0f} {msgs:>8} "
                  f"{r['latency_p50_us'] / 1000:7.2f} {r['latency_p99_us'] / 1000:7.2f} "
                  f"{r['server_cpu_us_per_request'] or 0:10.1f} {ratio:>8} {cpu_ratio:>12}  {by_round}")
    print("\nEach line is its median round (by vs floor; the floor's by req/s). ops/s: requests, or receive+delete "
          "pairs.\nCPU us/req: the server's CPU time per request, all its threads. vs floor: req/s over the same "
          "round's floor.\nCPU vs floor: the floor's CPU us/req over this one's, the ratio if the server alone "
          "were the bottleneck.")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shmqd", default=str(DEFAULT_BIN / "shmqd"))
    p.add_argument("--floor", default=str(DEFAULT_BIN / "shmq-http-floor"), help="shmq-http-floor")
    p.add_argument("--wrk", default="wrk")
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (keep-alive)")
    p.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    p.add_argument("--rounds", type=int, default=3, help="rounds of the floor and every scenario; medians reported")
    p.add_argument("--timeout", type=int, default=5,
                   help="seconds after which wrk counts a request as an error (its default is 2: too short for a "
                        "machine with other load)")
    p.add_argument("--bridge-threads", default="2", help="comma-separated --bridge-threads values to run")
    p.add_argument("--body-bytes", type=int, default=64, help="message body size")
    p.add_argument("--max-messages", type=int, default=1 << 21,
                   help="slots of the benchmark queue (shmqd --max-messages): room for the receive runs")
    p.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS),
                   help=f"comma-separated, of: {', '.join(SCENARIOS)}")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    opts = p.parse_args(argv)
    if opts.duration < 1 or opts.rounds < 1:
        p.error("--duration and --rounds: at least 1")
    opts.bridge_threads = [int(t) for t in opts.bridge_threads.split(",")]
    opts.scenarios = opts.scenarios.split(",")
    unknown = [s for s in opts.scenarios if s not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenarios {unknown}; choose from {list(SCENARIOS)}")
    return opts


def main(argv):
    opts = parse_args(argv)
    if shutil.which(opts.wrk) is None:
        sys.exit(f"{opts.wrk} not found: run tools/install-deps.sh (it installs Debian's wrk)")
    bench_daemon.require_file(opts.shmqd, "shmqd")
    bench_daemon.require_file(opts.floor, "shmq-http-floor")
    bench_daemon.exit_on_signals()

    runs = [bridge_run(opts, t) for t in opts.bridge_threads]
    found = [p for run in runs for p in problems(run)]
    if opts.json:
        config = {k: getattr(opts, k) for k in ("threads", "connections", "duration", "rounds", "body_bytes",
                                                "bridge_threads")}
        print(json.dumps({"config": config, "runs": runs, "problems": found}, indent=2))
    else:
        print_table(opts, runs)
    for p in found:
        print(f"ERROR: {p}: these figures are not valid", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    bench_daemon.run_main(main, "bridge_bench")
