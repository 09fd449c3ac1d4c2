#!/usr/bin/env python3
"""Runs shmq-bench --transport all in the configurations the README reports
(64 B messages, two processes pinned to two CPUs): ping-pong with spinning
receivers, with sleeping receivers, and with receivers that spin 50 us before
they sleep; a stream with each kind of receiver. Writes each run's JSON and
SVG chart into --out, and prints the README's Markdown tables.

    bench/run_comparison.py [--bench build/bin/shmq-bench] [--out bench/results] [--pin 0,1]
"""

import argparse
import json
import os
import subprocess
import sys

RUNS = [
    ("pingpong-spin", ["--workload", "pingpong", "--wait", "spin"]),
    ("pingpong-block", ["--workload", "pingpong", "--wait", "block"]),
    ("pingpong-block-spin50", ["--workload", "pingpong", "--wait", "block", "--block-spin-us", "50"]),
    ("stream-spin", ["--workload", "stream", "--wait", "spin"]),
    ("stream-block", ["--workload", "stream", "--wait", "block"]),
]


def run(bench, out, name, args, pin):
    json_path = os.path.join(out, name + ".json")
    command = [bench, "--transport", "all", "--json", "--plot", os.path.join(out, name + ".svg"), *args]
    if pin:
        command += ["--pin", pin]
    print("running:", " ".join(command), file=sys.stderr)
    done = subprocess.run(command, stdout=subprocess.PIPE, check=False)
    if done.returncode not in (0, 1):  # 1: a transport failed; it is reported in the table
        sys.exit(f"shmq-bench exited with {done.returncode}")
    with open(json_path, "wb") as f:
        f.write(done.stdout)
    return json.loads(done.stdout)


def ns(value):
    return f"{value / 1000:.2f} µs" if value >= 1000 else f"{value:.0f} ns"


def cell(result, key, fmt):
    if result["status"] != "ok":
        return result["status"]
    return fmt(result[key])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", default="build/bin/shmq-bench")
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--pin", default="0,1", help="CPUs for the two processes ('' for none)")
    options = parser.parse_args()
    os.makedirs(options.out, exist_ok=True)
    runs = {name: run(options.bench, options.out, name, args, options.pin) for name, args in RUNS}

    machine = runs["pingpong-spin"]["machine"]
    print(f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['kernel']}.\n")
    transports = [r["transport"] for r in runs["pingpong-spin"]["results"]]
    by_name = {name: {r["transport"]: r for r in data["results"]} for name, data in runs.items()}

    print("Round trip, 64 B (p50 / p99; x shmq = p50 over shmq's p50, above 1 is slower):\n")
    print("| transport | spin | x shmq | block | x shmq | block, 50 µs spin first | x shmq |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for t in transports:
        row = [t]
        for name in ("pingpong-spin", "pingpong-block", "pingpong-block-spin50"):
            r = by_name[name][t]
            row.append(cell(r, "p50_ns", ns) + (" / " + ns(r["p99_ns"]) if r["status"] == "ok" else ""))
            row.append(cell(r, "x_shmq", lambda x: f"{x:.2f}"))
        print("| " + " | ".join(row) + " |")

    print("\nStream, 64 B, consumers receive up to 10 and delete (messages/s; x shmq above 1 is faster):\n")
    print("| transport | spin | x shmq | block | x shmq |")
    print("| --- | --- | --- | --- | --- |")
    for t in transports:
        row = [t]
        for name in ("stream-spin", "stream-block"):
            r = by_name[name][t]
            row.append(cell(r, "messages_per_s", lambda v: f"{v:,.0f}"))
            row.append(cell(r, "x_shmq", lambda x: f"{x:.2f}"))
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
