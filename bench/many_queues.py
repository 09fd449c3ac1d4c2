#!/usr/bin/env python3
"""What many queues cost the daemon: threads, memory, create time, idle CPU.

    bench/many_queues.py [--queues 10000] [--long-polled 300] [--json]

Starts shmqd in a fresh namespace (bridge on a free port; new queues of
--max-messages slots and --arena-mib MiB, the daemon's options), creates
--queues standard queues with CreateQueue over one keep-alive bridge
connection, and reports:
  - the idle daemon before any queue: threads (/proc/PID/status), VmRSS;
  - after the queues: threads, VmRSS (and of it RssAnon, the daemon's own
    memory, and RssShmem, the segments' pages it touched), create time in total and per queue
    (median and 99th percentile of the CreateQueue round trips);
  - idle CPU: the daemon's user + system CPU seconds over --idle-seconds
    with every queue idle;
  - with --long-polled N: N of the queues long-polled at once over the
    bridge (ReceiveMessage, WaitTimeSeconds 20) and the daemon's threads
    while they wait; then the polls are answered by one message each and
    the threads counted again;
  - after DeleteQueue of every queue: threads and VmRSS.
Memory is in bytes, times in seconds. Python standard library only.
"""

import argparse
import json
import statistics
import sys
import threading
import time

import bench_daemon
from bench_daemon import DEFAULT_BIN, cpu_seconds, proc_status

SETTLE_S = 0.3  # for threads the daemon starts or ends to reach their state


def figures(pid):
    status = proc_status(pid)
    # RssShmem is the segments' pages the daemon touched (shared memory,
    # counted once in /dev/shm); RssAnon is the daemon's own memory.
    return {"threads": int(status["Threads"]), "vm_rss": status["VmRSS"], "rss_anon": status["RssAnon"],
            "rss_shmem": status["RssShmem"]}


def wait_threads(pid, predicate, timeout=10.0):
    """The daemon's figures once `predicate(threads)` holds, or after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        now = figures(pid)
        if predicate(now["threads"]) or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def long_poll(daemon, urls, results):
    """Long-polls every queue in `urls` at once, one thread and connection each."""

    def poll(url):
        client = daemon.client()
        try:
            answer = client.call("ReceiveMessage", {"QueueUrl": url, "WaitTimeSeconds": 20})
            results.append(len(answer.get("Messages", [])))
        except Exception as e:  # reported, not raised: the run goes on
            results.append(f"error: {e}")
        finally:
            client.close()

    threads = [threading.Thread(target=poll, args=(url,)) for url in urls]
    for t in threads:
        t.start()
    return threads


def run(opts):
    namespace = bench_daemon.fresh_namespace("bench-mq")
    extra = ["--max-messages", str(opts.max_messages), "--arena-mib", str(opts.arena_mib), "--log-level", "warn"]
    doc = {"queues": opts.queues, "max_messages": opts.max_messages, "arena_mib": opts.arena_mib}
    with bench_daemon.Daemon(opts.shmqd, namespace, extra_args=extra) as daemon:
        pid = daemon.pid
        time.sleep(SETTLE_S)
        doc["idle"] = figures(pid)
        client = daemon.client()
        urls = []
        times = []
        start = time.monotonic()
        for i in range(opts.queues):
            t = time.monotonic()
            urls.append(client.create_queue(f"q{i:06d}"))
            times.append(time.monotonic() - t)
        total = time.monotonic() - start
        time.sleep(SETTLE_S)
        doc["created"] = {
            **figures(pid),
            "create_total_s": total,
            "create_per_queue_median_s": statistics.median(times),
            "create_per_queue_p99_s": percentile(times, 99),
        }
        before = cpu_seconds(pid)
        time.sleep(opts.idle_seconds)
        doc["created"]["idle_cpu_s"] = cpu_seconds(pid) - before
        doc["created"]["idle_seconds"] = opts.idle_seconds

        if opts.long_polled > 0:
            polled = urls[: opts.long_polled]
            results = []
            threads = long_poll(daemon, polled, results)
            # Every poll has reached the daemon once its connection is open
            # and its request sent; give them a moment, then count.
            time.sleep(max(SETTLE_S, opts.long_polled / 500))
            waiting = figures(pid)
            for url in polled:
                client.call("SendMessage", {"QueueUrl": url, "MessageBody": "wake"})
            for t in threads:
                t.join(30)
            doc["long_polled"] = {
                "queues": len(polled),
                "threads_while_waiting": waiting["threads"],
                "answered_with_a_message": sum(1 for r in results if r == 1),
                "errors": [r for r in results if isinstance(r, str)][:5],
                "threads_after": wait_threads(pid, lambda n: n <= doc["created"]["threads"])["threads"],
            }

        start = time.monotonic()
        for url in urls:
            client.call("DeleteQueue", {"QueueUrl": url})
        doc["deleted"] = {"delete_total_s": time.monotonic() - start,
                          **wait_threads(pid, lambda n: n <= doc["idle"]["threads"])}
        client.close()
    return doc


def print_text(doc):
    idle, created, deleted = doc["idle"], doc["created"], doc["deleted"]
    mib = 1 << 20
    print(f"queues: {doc['queues']} ({doc['max_messages']} slots, {doc['arena_mib']} MiB payload space each)")
    print(f"idle daemon:     {idle['threads']} threads, VmRSS {idle['vm_rss'] / mib:.1f} MiB")
    print(f"after creating:  {created['threads']} threads, VmRSS {created['vm_rss'] / mib:.1f} MiB "
          f"({(created['vm_rss'] - idle['vm_rss']) / doc['queues'] / 1024:.1f} KiB per queue; of which anonymous "
          f"{(created['rss_anon'] - idle['rss_anon']) / doc['queues'] / 1024:.1f} KiB, segment pages "
          f"{(created['rss_shmem'] - idle['rss_shmem']) / doc['queues'] / 1024:.1f} KiB)")
    print(f"create time:     {created['create_total_s']:.2f} s in total, median "
          f"{created['create_per_queue_median_s'] * 1e3:.2f} ms, p99 {created['create_per_queue_p99_s'] * 1e3:.2f} ms"
          " per queue")
    print(f"idle CPU:        {created['idle_cpu_s']:.3f} s over {created['idle_seconds']} s")
    if "long_polled" in doc:
        lp = doc["long_polled"]
        print(f"long polls:      {lp['queues']} queues: {lp['threads_while_waiting']} threads while waiting, "
              f"{lp['answered_with_a_message']} answered with their message, {lp['threads_after']} threads after"
              + (f"; errors: {lp['errors']}" if lp["errors"] else ""))
    print(f"after deleting:  {deleted['threads']} threads, VmRSS {deleted['vm_rss'] / mib:.1f} MiB "
          f"({deleted['delete_total_s']:.2f} s)")


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shmqd", default=str(DEFAULT_BIN / "shmqd"))
    p.add_argument("--queues", type=int, default=10000)
    p.add_argument("--long-polled", type=int, default=300, help="queues to long-poll at once (0: none)")
    p.add_argument("--max-messages", type=int, default=1024, help="slots of each queue")
    p.add_argument("--arena-mib", type=int, default=2, help="payload space of each queue")
    p.add_argument("--idle-seconds", type=float, default=3.0)
    p.add_argument("--json", action="store_true")
    opts = p.parse_args(argv)
    if opts.long_polled > opts.queues:
        p.error("--long-polled exceeds --queues")
    bench_daemon.require_file(opts.shmqd, "shmqd")
    bench_daemon.exit_on_signals()
    doc = run(opts)
    if opts.json:
        json.dump(doc, sys.stdout, indent=2)
        print()
    else:
        print_text(doc)
    return 0


if __name__ == "__main__":
    bench_daemon.run_main(main, "many_queues")
