#!/usr/bin/env python3
"""Runs shmq-bench in the configurations the README reports (64 B messages):
ping-pong with spinning receivers, with sleeping receivers, and with
receivers that spin 50 us before they sleep, and a stream with each kind of
receiver, over every transport; then, over shmq alone, a stream with 4
producers and 4 consumers (with an empty queue and with a backlog), and a
stream through a FIFO queue over 100 message groups.

Every configuration runs once per round, unpinned (as users run programs)
and pinned to --pin, and a round runs them all before the next begins, so
that a quiet or a busy minute of the machine falls on every transport alike.
Figures are medians over the rounds. Writes each configuration's rounds and
medians as JSON and the median round's SVG chart into --out
(NAME.json/.svg unpinned, NAME-pinned.json/.svg pinned, summary.json),
prints the README's Markdown tables and a table of the speed targets: each
target, its measured ratio, the bound, met or not. The machine's load
average is recorded before every run and printed.

    bench/run_comparison.py [--bench build/bin/shmq-bench] [--out bench/results] [--rounds 5] [--pin 0,1]
    bench/run_comparison.py --rounds 1 --messages 20000 --iterations 2000 --backlog 10000   # a quick look
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# name, shmq-bench flags, transports
CONFIGS = [
    ("pingpong-spin", ["--workload", "pingpong", "--wait", "spin"], "all"),
    ("pingpong-block", ["--workload", "pingpong", "--wait", "block"], "all"),
    ("pingpong-block-spin50", ["--workload", "pingpong", "--wait", "block", "--block-spin-us", "50"], "all"),
    ("stream-spin", ["--workload", "stream", "--wait", "spin"], "all"),
    ("stream-block", ["--workload", "stream", "--wait", "block"], "all"),
    ("stream-4x4", ["--workload", "stream", "--wait", "spin", "--producers", "4", "--consumers", "4"], "shmq"),
    ("stream-4x4-backlog", ["--workload", "stream", "--wait", "spin", "--producers", "4", "--consumers", "4",
                            "--backlog", "{backlog}"], "shmq"),
    ("stream-fifo", ["--workload", "stream", "--wait", "spin", "--fifo-groups", "{fifo_groups}"], "shmq"),
]
MODES = ("unpinned", "pinned")
FIGURES = ("p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns", "mean_ns", "round_trips_per_s", "messages_per_s",
           "mb_per_s", "seconds")


def load1():
    return os.getloadavg()[0]


def busy_seconds():
    """CPU time the whole machine has spent busy (not idle or waiting), over all cores."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_seconds():
    t = os.times()
    return t.children_user + t.children_system


def run_bench(options, config, mode, plot):
    name, flags, transports = config
    flags = [f.format(backlog=options.backlog, fifo_groups=options.fifo_groups) for f in flags]
    command = [options.bench, "--transport", transports, "--json", "--plot", plot, *flags]
    if "pingpong" in name and options.iterations:
        command += ["--iterations", str(options.iterations)]
    if "stream" in name and options.messages:
        command += ["--messages", str(options.messages)]
    if mode == "pinned":
        command += ["--pin", options.pin]
    load = load1()
    print(f"running (load {load:.2f}):", " ".join(command), file=sys.stderr)
    done = subprocess.run(command, stdout=subprocess.PIPE, check=False)
    if done.returncode not in (0, 1):  # 1: a transport failed; it is reported in the tables
        sys.exit(f"shmq-bench exited with {done.returncode}")
    doc = json.loads(done.stdout)
    doc["load_before"] = load
    return doc


def median_of(rounds):
    """{transport: result} with each figure the median over the rounds in which it ran."""
    merged = {}
    for transport in [r["transport"] for r in rounds[0]["results"]]:
        runs = [next(r for r in doc["results"] if r["transport"] == transport) for doc in rounds]
        ok = [r for r in runs if r["status"] == "ok"]
        if not ok:
            merged[transport] = {"transport": transport, "status": runs[0]["status"], "reason": runs[0]["reason"]}
            continue
        m = {"transport": transport, "status": "ok", "rounds": len(ok),
             "failed_rounds": [r["reason"] for r in runs if r["status"] != "ok"]}
        for key in FIGURES:
            if key in ok[0]:
                m[key] = statistics.median(r[key] for r in ok)
                m[key + "_all"] = [r[key] for r in ok]
        merged[transport] = m
    shmq = merged.get("shmq")
    for m in merged.values():
        if shmq and shmq["status"] == "ok" and m["status"] == "ok":
            key = "p50_ns" if "p50_ns" in m else "messages_per_s"
            m["x_shmq"] = m[key] / shmq[key]
    return merged


def median_round(rounds, key):
    """Index of the round whose shmq figure is the median (the lower one for an even count)."""
    values = []
    for i, doc in enumerate(rounds):
        r = next((r for r in doc["results"] if r["transport"] == "shmq"), None)
        if r and r["status"] == "ok":
            values.append((r[key], i))
    if not values:
        return len(rounds) - 1
    values.sort()
    return values[(len(values) - 1) // 2][1]


def figure(medians, config, transport, key):
    r = medians.get(config, {}).get(transport)
    return r[key] if r and r["status"] == "ok" else None


def ratio(a, b):
    return a / b if a is not None and b else None


def targets(medians):
    """The speed targets: (what, how the ratio is taken, bound, 'max' or 'min', ratio or None)."""
    f = lambda config, transport, key: figure(medians, config, transport, key)  # noqa: E731
    rt = lambda t: ratio(f("pingpong-spin", "shmq", "p50_ns"), f("pingpong-spin", t, "p50_ns"))  # noqa: E731
    stream = lambda config, t: ratio(f(config, "shmq", "messages_per_s"), f(config, t, "messages_per_s"))  # noqa: E731

    def slowest(config):
        r = medians.get(config, {}).get("shmq")
        if not r or r["status"] != "ok":
            return None
        return min(r["messages_per_s_all"]) / r["messages_per_s"]

    one = f("stream-spin", "shmq", "messages_per_s")
    return [
        ("round trip p50, spin: shmq / spsc", 2.5, "max", rt("spsc")),
        ("round trip p50, spin: shmq / iceoryx", 0.5, "max", rt("iceoryx")),
        ("round trip p50, spin: shmq / boostmq (try_receive)", 0.5, "max", rt("boostmq")),
        ("stream 1x1, spin: shmq / boostmq", 2.0, "min", stream("stream-spin", "boostmq")),
        ("stream 1x1, block: shmq / boostmq", 2.0, "min", stream("stream-block", "boostmq")),
        ("stream 1x1, spin: shmq / posixmq", 10.0, "min", stream("stream-spin", "posixmq")),
        ("stream 1x1, block: shmq / posixmq", 10.0, "min", stream("stream-block", "posixmq")),
        ("no collapse, stream 1x1 spin: slowest round / median", 0.7, "min", slowest("stream-spin")),
        ("no collapse, stream 1x1 block: slowest round / median", 0.7, "min", slowest("stream-block")),
        ("stream 4x4, empty queue / stream 1x1 (spin)", 0.7, "min",
         ratio(f("stream-4x4", "shmq", "messages_per_s"), one)),
        ("stream 4x4, backlog / stream 1x1 (spin)", 0.7, "min",
         ratio(f("stream-4x4-backlog", "shmq", "messages_per_s"), one)),
        ("stream FIFO, message groups / standard (spin)", 0.5, "min",
         ratio(f("stream-fifo", "shmq", "messages_per_s"), one)),
    ]


def judged(target):
    what, bound, kind, value = target
    met = value is not None and (value <= bound if kind == "max" else value >= bound)
    return {"target": what, "bound": ("at most " if kind == "max" else "at least ") + f"{bound:g}x",
            "ratio": value, "met": met}


def ns(value):
    return f"{value / 1000:.2f} µs" if value >= 1000 else f"{value:.0f} ns"


def cell(result, key, fmt):
    if result is None:
        return "-"
    if result["status"] != "ok":
        return result["status"]
    return fmt(result[key])


def print_tables(medians, mode, rounds, options):
    how = "Unpinned" if mode == "unpinned" else f"Pinned to CPUs {options.pin}"
    print(f"\n#### {how}: medians of {rounds} round{'s' if rounds != 1 else ''}\n")
    transports = list(medians["pingpong-spin"])
    print("Round trip, 64 B (p50 / p99; x shmq = p50 over shmq's p50, above 1 is slower):\n")
    print("| transport | spin | x shmq | block | x shmq | block, 50 µs spin first | x shmq |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for t in transports:
        row = [t]
        for name in ("pingpong-spin", "pingpong-block", "pingpong-block-spin50"):
            r = medians[name].get(t)
            row.append(cell(r, "p50_ns", ns) + (" / " + ns(r["p99_ns"]) if r and r["status"] == "ok" else ""))
            row.append(cell(r, "x_shmq", lambda x: f"{x:.2f}"))
        print("| " + " | ".join(row) + " |")

    print("\nStream, 64 B, 1 producer, 1 consumer receiving up to 10 and deleting "
          "(messages/s; x shmq above 1 is faster):\n")
    print("| transport | spin | x shmq | block | x shmq |")
    print("| --- | --- | --- | --- | --- |")
    for t in transports:
        row = [t]
        for name in ("stream-spin", "stream-block"):
            r = medians[name].get(t)
            row.append(cell(r, "messages_per_s", lambda v: f"{v:,.0f}"))
            row.append(cell(r, "x_shmq", lambda x: f"{x:.2f}"))
        print("| " + " | ".join(row) + " |")

    print("\nshmq streams, 64 B, spin (messages/s: median, and slowest / fastest round):\n")
    print("| stream | median | slowest | fastest |")
    print("| --- | --- | --- | --- |")
    rows = [("1 producer, 1 consumer", "stream-spin"), ("1 producer, 1 consumer, block", "stream-block"),
            ("4 producers, 4 consumers", "stream-4x4"),
            (f"4 producers, 4 consumers, backlog {options.backlog:,}", "stream-4x4-backlog"),
            (f"FIFO over {options.fifo_groups} groups, 1 producer, 1 consumer", "stream-fifo")]
    for label, name in rows:
        r = medians[name].get("shmq")
        if not r or r["status"] != "ok":
            print(f"| {label} | {cell(r, 'messages_per_s', str)} | | |")
            continue
        every = r["messages_per_s_all"]
        print(f"| {label} | {r['messages_per_s']:,.0f} | {min(every):,.0f} | {max(every):,.0f} |")


def print_targets(judgements, modes):
    print("\n#### Targets (ratios of the medians above, from this one run)\n")
    print("| target | bound | " + " | ".join(f"{m} | met" for m in modes) + " |")
    print("| --- | --- |" + " --- | --- |" * len(modes))
    for i, first in enumerate(judgements[modes[0]]):
        row = [first["target"], first["bound"]]
        for mode in modes:
            j = judgements[mode][i]
            row.append("n/a" if j["ratio"] is None else f"{j['ratio']:.2f}x")
            row.append("yes" if j["met"] else "no")
        print("| " + " | ".join(row) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", default="build/bin/shmq-bench")
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pin", default="0,1", help="CPUs of the pinned runs, cycled over the processes")
    parser.add_argument("--modes", default=",".join(MODES), help="unpinned, pinned or both (comma-separated)")
    parser.add_argument("--messages", type=int, default=0, help="stream messages (default shmq-bench's, 1000000)")
    parser.add_argument("--iterations", type=int, default=0, help="round trips (default shmq-bench's)")
    parser.add_argument("--backlog", type=int, default=1000000, help="messages in the queue of the backlog stream")
    parser.add_argument("--fifo-groups", type=int, default=100)
    options = parser.parse_args()
    modes = [m for m in options.modes.split(",") if m]
    if options.rounds < 1 or any(m not in MODES for m in modes) or not modes:
        parser.error("--rounds at least 1; --modes from unpinned, pinned")
    os.makedirs(options.out, exist_ok=True)

    load_start = load1()
    busy_start, ours_start, wall_start = busy_seconds(), children_seconds(), time.monotonic()
    rounds = {m: {c[0]: [] for c in CONFIGS} for m in modes}
    with tempfile.TemporaryDirectory(prefix="shmq-comparison-") as charts:
        for r in range(options.rounds):
            for mode in modes:
                for config in CONFIGS:
                    plot = os.path.join(charts, f"{mode}-{config[0]}-{r}.svg")
                    rounds[mode][config[0]].append(run_bench(options, config, mode, plot))
        load_end = load1()
        wall = time.monotonic() - wall_start
        # What other programs took of the cores while this ran: the machine's busy time less the benchmarks'.
        others = max(0.0, (busy_seconds() - busy_start) - (children_seconds() - ours_start))
        medians = {}
        for mode in modes:
            medians[mode] = {}
            suffix = "" if mode == "unpinned" else "-pinned"
            for name, docs in rounds[mode].items():
                medians[mode][name] = median_of(docs)
                key = "p50_ns" if name.startswith("pingpong") else "messages_per_s"
                chosen = median_round(docs, key)
                shutil.copyfile(os.path.join(charts, f"{mode}-{name}-{chosen}.svg"),
                                os.path.join(options.out, name + suffix + ".svg"))
                with open(os.path.join(options.out, name + suffix + ".json"), "w") as f:
                    json.dump({"configuration": name, "mode": mode, "pin": options.pin if mode == "pinned" else "",
                               "median_round": chosen, "medians": medians[mode][name], "rounds": docs}, f, indent=2)
                    f.write("\n")

    judgements = {mode: [judged(t) for t in targets(medians[mode])] for mode in modes}
    loads = [doc["load_before"] for mode in modes for docs in rounds[mode].values() for doc in docs]
    machine = rounds[modes[0]]["pingpong-spin"][0]["machine"]
    summary = {"machine": machine, "rounds": options.rounds, "pin": options.pin, "backlog": options.backlog,
               "fifo_groups": options.fifo_groups, "messages": options.messages or None,
               "iterations": options.iterations or None,
               "load": {"start": load_start, "end": load_end, "before_runs_min": min(loads),
                        "before_runs_max": max(loads), "seconds": wall, "other_cpu_seconds": others,
                        "other_cpu_share": others / (wall * (os.cpu_count() or 1))},
               "targets": judgements, "medians": medians}
    with open(os.path.join(options.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")

    print(f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['kernel']}.")
    print(f"Load average (1 min): {load_start:.2f} at the start, {load_end:.2f} at the end, "
          f"{min(loads):.2f} to {max(loads):.2f} before the runs (which themselves keep it near 2). "
          f"Other programs used {others:.0f} CPU-seconds of the cores' {wall * (os.cpu_count() or 1):.0f} "
          f"({100 * summary['load']['other_cpu_share']:.1f}%) while it ran, {wall / 60:.1f} minutes.")
    for mode in modes:
        print_tables(medians[mode], mode, options.rounds, options)
    print_targets(judgements, modes)


if __name__ == "__main__":
    main()
