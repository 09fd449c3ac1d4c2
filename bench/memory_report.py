#!/usr/bin/env python3
"""What shmq costs in memory: the idle daemon's RSS, and the shared memory a
queue and a message slot take.

    bench/memory_report.py [--messages 10000] [--queues 100] [--json]

Starts shmqd with its defaults in fresh namespaces (once with the SQS bridge
on a free port, once with --bridge-listen off) and reports:
  - the idle daemon: VmRSS, Pss (/proc/PID/smaps_rollup), threads;
  - one queue of the default capacity, standard and FIFO: its segment's
    size (the /dev/shm file's st_size: address space reserved) and the bytes
    resident in it (st_blocks * 512) right after creation;
  - per message slot: the resident bytes that --messages messages of
    --body-bytes add, sent with SendMessageBatch over the bridge, beside the
    descriptor and the smallest arena block that libshmq/segment_layout.hpp
    defines;
  - per empty queue, over --queues more: resident shared memory, and the
    daemon's RSS, threads (a reaper thread per 127 queues) and address space;
  - a burst and drain: --burst messages of --body-bytes sent to one default
    queue with shmq-backlog (libshmq, batches of ten), the queue's resident
    shared memory when full, right after the drain, and once the daemon has
    given it back (an emptied queue is trimmed after a second idle).
Memory is in bytes. Python standard library only.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import bench_daemon
from bench_daemon import DEFAULT_BIN, REPO, proc_status, smaps_rollup

LAYOUT_HEADER = REPO / "libshmq" / "segment_layout.hpp"
SETTLE_S = 0.3  # for threads a daemon starts to reach their idle state


def layout_constants():
    """The descriptor size and smallest arena block, read from the segment
    layout header so that the report follows the format."""
    text = LAYOUT_HEADER.read_text()
    descriptor = re.search(r"sizeof\(MessageDescriptor\) == (\d+)", text)
    min_order = re.search(r"kMinOrder = (\d+);", text)
    return {
        "descriptor_bytes": int(descriptor.group(1)) if descriptor else None,
        "min_block_bytes": 1 << int(min_order.group(1)) if min_order else None,
    }


def process_memory(pid):
    """The figures of a running process that the report uses."""
    status = proc_status(pid)
    rollup = smaps_rollup(pid)
    return {
        "vm_rss": status["VmRSS"],
        "rss_anon": status["RssAnon"],
        "rss_file": status["RssFile"],
        "rss_shmem": status["RssShmem"],
        "pss": rollup.get("Pss"),
        "vm_size": status["VmSize"],
        "threads": int(status["Threads"]),
    }


def segment_bytes(paths):
    """(reserved, resident) bytes of segment files: st_size and st_blocks * 512."""
    reserved = resident = 0
    for path in paths:
        st = os.stat(path)
        reserved += st.st_size
        resident += st.st_blocks * 512
    return reserved, resident


def queue_stats(shmqctl, namespace, queue):
    done = subprocess.run([str(shmqctl), "--namespace", namespace, "stats", queue, "--json"],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def idle_daemon(opts, bridge):
    name = "memidle" if bridge else "memidleoff"
    with bench_daemon.Daemon(opts.shmqd, bench_daemon.fresh_namespace(name), bridge=bridge) as daemon:
        time.sleep(SETTLE_S)
        return process_memory(daemon.pid)


def queue_costs(opts):
    """One queue, its messages, then --queues empty queues, in one daemon."""
    out = {}
    namespace = bench_daemon.fresh_namespace("memq")
    with bench_daemon.Daemon(opts.shmqd, namespace) as daemon:
        client = daemon.client()
        time.sleep(SETTLE_S)
        before = process_memory(daemon.pid)

        url = client.create_queue("first")
        time.sleep(SETTLE_S)
        segment = f"/dev/shm/shmq.{namespace}.first"
        reserved, resident = segment_bytes([segment])
        stats = queue_stats(opts.shmqctl, namespace, "first")
        out["queue"] = {
            "slots": stats["max_messages"],
            "arena_bytes": stats["arena_bytes"],
            "segment_reserved": reserved,
            "segment_resident": resident,
            "daemon_after": process_memory(daemon.pid),
        }

        client.create_queue("first.fifo", {"FifoQueue": "true"})
        reserved_fifo, resident_fifo = segment_bytes([f"/dev/shm/shmq.{namespace}.first.fifo"])
        out["fifo_queue"] = {"segment_reserved": reserved_fifo, "segment_resident": resident_fifo}

        body = ("0123456789abcdef" * (opts.body_bytes // 16 + 1))[:opts.body_bytes]
        sent = 0
        while sent < opts.messages:
            n = min(10, opts.messages - sent)
            entries = [{"Id": f"m{i}", "MessageBody": body} for i in range(n)]
            answer = client.call("SendMessageBatch", {"QueueUrl": url, "Entries": entries})
            if answer.get("Failed"):
                raise RuntimeError(f"SendMessageBatch failed: {answer['Failed']}")
            sent += n
        _, resident_after = segment_bytes([segment])
        stats = queue_stats(opts.shmqctl, namespace, "first")
        out["messages"] = {
            "count": sent,
            "body_bytes": opts.body_bytes,
            "slots_used": stats["slots_ever_used"],
            "arena_bytes_used": stats["arena_bytes"] - stats["arena_free_bytes"],
            "resident_added": resident_after - resident,
            "resident_per_message": (resident_after - resident) / sent,
            "arena_per_message": (stats["arena_bytes"] - stats["arena_free_bytes"]) / sent,
            **layout_constants(),
        }

        first_segments = set(daemon.segments())
        mid = process_memory(daemon.pid)
        for i in range(opts.queues):
            client.create_queue(f"empty{i}")
        time.sleep(SETTLE_S)
        after = process_memory(daemon.pid)
        reserved, resident = segment_bytes(set(daemon.segments()) - first_segments)
        n = opts.queues
        out["empty_queues"] = {
            "count": n,
            "segment_reserved_per_queue": reserved / n,
            "segment_resident_per_queue": resident / n,
            "daemon_rss_per_queue": (after["vm_rss"] - mid["vm_rss"]) / n,
            "daemon_rss_anon_per_queue": (after["rss_anon"] - mid["rss_anon"]) / n,
            "daemon_rss_shmem_per_queue": (after["rss_shmem"] - mid["rss_shmem"]) / n,
            "daemon_pss_per_queue": (after["pss"] - mid["pss"]) / n,
            "daemon_threads_per_queue": (after["threads"] - mid["threads"]) / n,
            "daemon_vm_size_per_queue": (after["vm_size"] - mid["vm_size"]) / n,
            "daemon_before": mid,
            "daemon_after": after,
        }
        out["daemon_before_queues"] = before
        client.close()
    return out


def burst_and_drain(opts):
    """--burst messages into a default queue, then out again: resident shared
    memory at each step."""
    namespace = bench_daemon.fresh_namespace("memburst")
    with bench_daemon.Daemon(opts.shmqd, namespace, bridge=False) as daemon:
        tool = [opts.backlog, "--namespace", namespace, "--queue", "burst"]
        subprocess.run([str(opts.shmqctl), "--namespace", namespace, "create-queue", "burst"],
                       check=True, capture_output=True)
        segment = f"/dev/shm/shmq.{namespace}.burst"
        _, empty = segment_bytes([segment])
        fill = json.loads(subprocess.run([*tool, "--fill", str(opts.burst), "--size", str(opts.body_bytes)],
                                         check=True, capture_output=True, text=True).stdout)
        _, full = segment_bytes([segment])
        full_stats = queue_stats(opts.shmqctl, namespace, "burst")
        drain = json.loads(subprocess.run([*tool, "--drain"], check=True, capture_output=True,
                                          text=True).stdout)
        _, drained = segment_bytes([segment])
        start = time.monotonic()
        while time.monotonic() - start < 60:
            _, trimmed = segment_bytes([segment])
            stats = queue_stats(opts.shmqctl, namespace, "burst")
            if stats["trims"] > 0 and trimmed < empty + (4 << 20):
                break
            time.sleep(0.1)
        given_back_s = time.monotonic() - start
        _, trimmed = segment_bytes([segment])
        return {
            "messages": fill["sent"],
            "body_bytes": opts.body_bytes,
            "send_seconds": fill["seconds"],
            "drain_seconds": drain["seconds"],
            "received": drain["received"],
            "resident_empty": empty,
            "resident_full": full,
            "memory_bytes_full": full_stats["memory_bytes"],
            "memory_limit_bytes": full_stats["memory_limit_bytes"],
            "resident_drained": drained,
            "resident_given_back": trimmed,
            "given_back_after_s": given_back_s,
            "daemon_after": process_memory(daemon.pid),
        }


def kib(n):
    return f"{n / 1024:,.1f} KiB"


def mib(n):
    return f"{n / (1 << 20):,.1f} MiB"


def print_report(r):
    rows = []
    for label, key in (("bridge on", "idle_daemon"), ("bridge off", "idle_daemon_bridge_off")):
        d = r[key]
        rows.append((f"idle shmqd, {label}: VmRSS / Pss / threads",
                     f"{kib(d['vm_rss'])} / {kib(d['pss'])} / {d['threads']}"))
    q = r["queue"]
    rows.append((f"queue of {q['slots']:,} slots, {mib(q['arena_bytes'])} arena: segment size (reserved)",
                 mib(q["segment_reserved"])))
    rows.append(("  resident right after creation", kib(q["segment_resident"])))
    f = r["fifo_queue"]
    rows.append(("the same, FIFO (with its deduplication window): reserved / resident",
                 f"{mib(f['segment_reserved'])} / {kib(f['segment_resident'])}"))
    m = r["messages"]
    rows.append((f"{m['count']:,} messages of {m['body_bytes']} B: resident added", kib(m["resident_added"])))
    rows.append(("  resident per message slot", f"{m['resident_per_message']:.1f} B"))
    rows.append(("  of which arena (buddy block) per message", f"{m['arena_per_message']:.1f} B"))
    rows.append(("  descriptor / smallest arena block (segment_layout.hpp)",
                 f"{m['descriptor_bytes']} B / {m['min_block_bytes']} B"))
    e = r["empty_queues"]
    rows.append((f"per empty queue (over {e['count']}): segment reserved / resident",
                 f"{mib(e['segment_reserved_per_queue'])} / {kib(e['segment_resident_per_queue'])}"))
    rows.append(("  daemon RSS / Pss per queue",
                 f"{kib(e['daemon_rss_per_queue'])} / {kib(e['daemon_pss_per_queue'])}"))
    rows.append(("  daemon RSS per queue: anonymous / shared memory",
                 f"{kib(e['daemon_rss_anon_per_queue'])} / {kib(e['daemon_rss_shmem_per_queue'])}"))
    rows.append(("  daemon threads / address space per queue",
                 f"{e['daemon_threads_per_queue']:.2f} / {mib(e['daemon_vm_size_per_queue'])}"))
    b = r.get("burst")
    if b:
        rows.append((f"burst of {b['messages']:,} messages of {b['body_bytes']} B into a default queue: "
                     f"sent / drained in", f"{b['send_seconds']:.1f} s / {b['drain_seconds']:.1f} s"))
        rows.append(("  resident: empty / full / just drained / given back",
                     f"{kib(b['resident_empty'])} / {mib(b['resident_full'])} / {mib(b['resident_drained'])} / "
                     f"{kib(b['resident_given_back'])}"))
        rows.append(("  per message when full / memory limit",
                     f"{b['resident_full'] / max(b['messages'], 1):.1f} B / {mib(b['memory_limit_bytes'])}"))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:{width}}  {value}")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shmqd", default=str(DEFAULT_BIN / "shmqd"))
    p.add_argument("--shmqctl", default=None, help="default: shmqctl beside shmqd")
    p.add_argument("--messages", type=int, default=10000, help="messages sent to measure a slot")
    p.add_argument("--body-bytes", type=int, default=64)
    p.add_argument("--queues", type=int, default=100, help="empty queues created to measure a queue")
    p.add_argument("--burst", type=int, default=10_000_000,
                   help="messages of the burst-and-drain (0: skip it); needs shmq-backlog")
    p.add_argument("--backlog", default=None, help="shmq-backlog (default: build/bin beside shmqd)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    opts = p.parse_args(argv)
    if opts.shmqctl is None:
        opts.shmqctl = str(Path(opts.shmqd).parent / "shmqctl")
    if opts.backlog is None:
        opts.backlog = str(Path(opts.shmqd).parent / "shmq-backlog")
    if opts.messages < 1 or opts.queues < 1:
        p.error("--messages and --queues: at least 1")
    return opts


def main(argv):
    opts = parse_args(argv)
    bench_daemon.require_file(opts.shmqd, "shmqd")
    bench_daemon.require_file(opts.shmqctl, "shmqctl")
    bench_daemon.exit_on_signals()
    report = {
        "idle_daemon": idle_daemon(opts, bridge=True),
        "idle_daemon_bridge_off": idle_daemon(opts, bridge=False),
        **queue_costs(opts),
    }
    if opts.burst > 0:
        bench_daemon.require_file(opts.backlog, "shmq-backlog")
        report["burst"] = burst_and_drain(opts)
    if opts.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    bench_daemon.run_main(main, "memory_report")
