#!/usr/bin/env python3
"""Smoke test of the benchmark scripts: runs one briefly with --json and
checks that it exits 0, that its figures are there and positive, and that
no request failed. Timing is not asserted: these machines are noisy.

    bench_smoke.py bridge --shmqd PATH --floor PATH
    bench_smoke.py memory --shmqd PATH --shmqctl PATH
    bench_smoke.py many-queues --shmqd PATH
    bench_smoke.py comparison --bench PATH
    bench_smoke.py python --shmqd PATH --pythonpath DIR
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent.parent / "bench"


def run(script, args):
    """The JSON document `script` prints; fails the test on a non-zero exit."""
    command = [sys.executable, str(BENCH / script), *args, "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=100)
    if done.returncode != 0:
        sys.exit(f"FAIL: {' '.join(command)} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout)


class Checks:
    def __init__(self):
        self.failures = []

    def positive(self, where, value):
        if not (isinstance(value, (int, float)) and value > 0):
            self.failures.append(f"{where} = {value!r}, expected a positive figure")

    def equal(self, where, value, expected):
        if value != expected:
            self.failures.append(f"{where} = {value!r}, expected {expected!r}")

    def at_least(self, where, value, bound):
        if value < bound:
            self.failures.append(f"{where} = {value!r}, expected at least {bound!r}")


def check_bridge(opts, c):
    if shutil.which("wrk") is None:
        sys.exit("FAIL: wrk is not installed: run tools/install-deps.sh (it installs Debian's wrk)")
    doc = run("bridge_bench.py",
              ["--shmqd", opts.shmqd, "--floor", opts.floor, "--duration", "1", "--rounds", "2"])
    c.equal("problems", doc["problems"], [])
    for run_ in doc["runs"]:
        medians = {"floor": run_["floor"], **run_["scenarios"]}
        every_round = [(f"round {i + 1} {name}", r) for i, results in enumerate(run_["rounds"])
                       for name, r in results.items()]
        for name, r in [*medians.items(), *every_round]:
            for key in ("requests", "requests_per_s", "latency_p50_us", "latency_p99_us"):
                c.positive(f"{name}.{key}", r[key])
            c.equal(f"{name}.non_2xx", r["non_2xx"], 0)
            c.equal(f"{name}.socket_errors", r["socket_errors"], 0)
        c.positive("send.vs_floor", medians["send"]["vs_floor"])
        for name, r in every_round:
            if "receive-delete" not in name:
                continue
            for key in ("pairs_per_s", "messages_per_s", "deleted"):
                c.positive(f"{name}.{key}", r[key])
            c.equal(f"{name}.empty_receives", r["empty_receives"], 0)
            c.equal(f"{name}.ran_dry", r["ran_dry"], False)
            c.equal(f"{name}.failed_entries", r["failed_entries"], 0)
            # Every delete the client saw answered was of a received message,
            # and the daemon deleted at least those (a last few may be
            # answered after wrk stopped counting).
            c.at_least(f"{name}.received", r["received"], r["deleted"])
            c.at_least(f"{name}.server_deleted", r["server_deleted"], r["deleted"])


def check_memory(opts, c):
    doc = run("memory_report.py", ["--shmqd", opts.shmqd, "--shmqctl", opts.shmqctl, "--messages", "2000",
                                   "--queues", "20", "--burst", "200000", "--backlog", opts.backlog])
    burst = doc["burst"]
    c.equal("burst.messages", burst["messages"], 200000)
    c.equal("burst.received", burst["received"], 200000)
    c.at_least("burst.resident_full", burst["resident_full"], burst["resident_given_back"] + (16 << 20))
    for key in ("idle_daemon", "idle_daemon_bridge_off"):
        for figure in ("vm_rss", "pss", "threads"):
            c.positive(f"{key}.{figure}", doc[key][figure])
    for figure in ("slots", "segment_reserved", "segment_resident"):
        c.positive(f"queue.{figure}", doc["queue"][figure])
    for figure in ("resident_per_message", "arena_per_message", "descriptor_bytes", "min_block_bytes"):
        c.positive(f"messages.{figure}", doc["messages"][figure])
    c.equal("messages.slots_used", doc["messages"]["slots_used"], doc["messages"]["count"])
    for figure in ("segment_reserved_per_queue", "segment_resident_per_queue", "daemon_rss_per_queue"):
        c.positive(f"empty_queues.{figure}", doc["empty_queues"][figure])


def check_many_queues(opts, c):
    queues, polled = 300, 130
    doc = run("many_queues.py", ["--shmqd", opts.shmqd, "--queues", str(queues), "--long-polled", str(polled),
                                 "--idle-seconds", "0.5"])
    c.equal("queues", doc["queues"], queues)
    for key in ("idle", "created", "deleted"):
        for figure in ("threads", "vm_rss"):
            c.positive(f"{key}.{figure}", doc[key][figure])
    for figure in ("create_total_s", "create_per_queue_median_s", "create_per_queue_p99_s"):
        c.positive(f"created.{figure}", doc["created"][figure])
    c.at_least("created.create_total_s vs the median", doc["created"]["create_total_s"],
               queues * doc["created"]["create_per_queue_median_s"] / 2)
    c.at_least("created.create_per_queue_p99_s", doc["created"]["create_per_queue_p99_s"],
               doc["created"]["create_per_queue_median_s"])
    c.at_least("created.idle_cpu_s", doc["created"]["idle_cpu_s"], 0)
    lp = doc["long_polled"]
    c.equal("long_polled.queues", lp["queues"], polled)
    c.equal("long_polled.answered_with_a_message", lp["answered_with_a_message"], polled)
    c.equal("long_polled.errors", lp["errors"], [])
    # Consistent figures: the threads counted come back to the idle count.
    c.equal("deleted.threads", doc["deleted"]["threads"], doc["idle"]["threads"])


def check_comparison(opts, c):
    """One quick round of run_comparison.py: every configuration ran, and the
    targets table lists each target with a measured ratio, its bound and a verdict."""
    with tempfile.TemporaryDirectory(prefix="shmq-comparison-smoke-") as out:
        command = [sys.executable, str(BENCH / "run_comparison.py"), "--bench", opts.bench, "--out", out,
                   "--rounds", "1", "--messages", "3000", "--iterations", "300", "--backlog", "1000"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=400)
        if done.returncode != 0:
            sys.exit(f"FAIL: {' '.join(command)} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
        summary = json.loads((Path(out) / "summary.json").read_text())
        for name in ("pingpong-spin", "stream-spin", "stream-4x4-backlog", "stream-fifo"):
            for suffix in ("", "-pinned"):
                for ext in (".json", ".svg"):
                    if not (Path(out) / (name + suffix + ext)).is_file():
                        c.failures.append(f"{name + suffix + ext} was not written")
    for key in ("start", "end", "before_runs_min", "before_runs_max", "other_cpu_seconds"):
        c.at_least(f"load.{key}", summary["load"][key], 0)
    lines = done.stdout.splitlines()
    try:
        table = lines[lines.index("#### Targets (ratios of the medians above, from this one run)") + 2:]
    except ValueError:
        c.failures.append("no targets table in the output:\n" + done.stdout)
        return
    c.equal("targets table header", table[0], "| target | bound | unpinned | met | pinned | met |")
    rows = [line for line in table[2:] if line.startswith("| ")]
    for mode in ("unpinned", "pinned"):
        targets = summary["targets"][mode]
        c.equal(f"{mode} targets", len(targets), 12)
        c.equal(f"{mode} targets in the table", len(rows), len(targets))
        for t in targets:
            c.positive(f"{mode} {t['target']}", t["ratio"])
            c.equal(f"{mode} {t['target']} verdict", type(t["met"]), bool)
            if not any(row.startswith(f"| {t['target']} | {t['bound']} |") for row in rows):
                c.failures.append(f"no row for {t['target']} ({t['bound']}) in the targets table")
        for name, medians in summary["medians"][mode].items():
            c.equal(f"{mode} {name} shmq", medians["shmq"]["status"], "ok")


def check_python(opts, c):
    """bench/python_bench.py --quick: every transport's three workloads and
    the per-call figures are there."""
    doc = run("python_bench.py", ["--shmqd", opts.shmqd, "--pythonpath", opts.pythonpath, "--quick"])
    c.equal("transports", doc["transports"], ["shmq", "boto3", "mp_queue"])
    for kind in doc["transports"]:
        for workload in ("send", "receive_delete", "pair"):
            c.positive(f"{kind}.{workload}", doc["medians"][kind][workload])
    for figure in ("send_ns", "send_receive_delete_ns", "batch_of_ten_per_message_ns", "send_beside_busy_thread_ns"):
        c.positive(f"per_call.{figure}", doc["per_call"][figure])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("which", choices=["bridge", "memory", "many-queues", "comparison", "python"])
    p.add_argument("--shmqd")
    p.add_argument("--bench")
    p.add_argument("--shmqctl")
    p.add_argument("--floor")
    p.add_argument("--backlog")
    p.add_argument("--pythonpath")
    opts = p.parse_args()
    c = Checks()
    if opts.which == "bridge":
        check_bridge(opts, c)
    elif opts.which == "many-queues":
        check_many_queues(opts, c)
    elif opts.which == "comparison":
        check_comparison(opts, c)
    elif opts.which == "python":
        check_python(opts, c)
    else:
        check_memory(opts, c)
    for failure in c.failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    if not c.failures:
        print(f"ok: {opts.which}")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
