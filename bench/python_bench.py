#!/usr/bin/env python3
"""Throughput of the Python package shmq, beside boto3 over shmqd's SQS
bridge and Python's multiprocessing.Queue, measured in one run on this
machine.

Three workloads, each in worker processes of their own (spawned, so that no
process inherits another's Client), 64-byte bodies by default:

  send           1 producer sends N messages one call each
  receive+delete 1 consumer receives and deletes them, one message a call
                 (multiprocessing.Queue: get(); it has nothing to delete)
  pair           1 producer and 1 consumer at once; N messages through

Each workload runs --rounds times; the table gives the medians and the
ratios of shmq to each of the others. multiprocessing.Queue.put() only
hands the object to the queue's feeder thread, so its "send" is what the
caller waits for, not a delivery.

Then the binding's own cost per call, from Python in one process: send,
send + receive + delete of one 64-byte message, and the same in batches of
10, beside the C++ library's BM_SendReceiveDelete/64 and BM_BatchOfTen from
shmq-micro-bench (when it is built next to shmqd).

    bench/python_bench.py [--messages 20000] [--boto3-messages 1000] [--rounds 5] [--quick] [--json]
"""

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import bench_daemon

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PYTHONPATH = REPO / "build" / "python"
TRANSPORTS = ("shmq", "boto3", "mp_queue")
WORKLOADS = ("send", "receive_delete", "pair")
LABELS = {
    "send": "send (1 producer)",
    "receive_delete": "receive + delete (1 consumer)",
    "pair": "producer + consumer pair",
    "shmq": "shmq (Python package)",
    "boto3": "boto3 over the SQS bridge",
    "mp_queue": "multiprocessing.Queue",
}


# --- the workers (run in spawned processes) --------------------------------


def boto3_client(endpoint):
    import boto3
    import botocore.config

    config = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=30)
    return boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                 region_name="us-east-1").client("sqs", endpoint_url=endpoint, config=config)


def pin(role):
    """With --pin (SHMQ_BENCH_PIN in the workers' environment): producers on
    the first CPU, consumers on the second."""
    if os.environ.get("SHMQ_BENCH_PIN") == "1":
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[0] if role == "producer" else cpus[1 % len(cpus)]})


def producer(target, n, body, go, results):
    """Sends n messages once `go` is set; reports (start, end) on the monotonic clock."""
    pin("producer")
    kind, where = target
    if kind == "shmq":
        import shmq
        client = shmq.Client(where["ns"])
        q = client.open_queue(where["queue"])
        send = q.send
    elif kind == "boto3":
        sqs = boto3_client(where["endpoint"])
        url = where["url"]

        def send(b):
            sqs.send_message(QueueUrl=url, MessageBody=b)
    else:
        send = where["queue"].put
    go.wait()
    start = time.monotonic()
    for _ in range(n):
        send(body)
    results.put(("producer", start, time.monotonic()))


def consumer(target, n, go, results):
    """Receives (and deletes) n messages once `go` is set, waiting when the
    queue is empty; reports (start, end) on the monotonic clock."""
    pin("consumer")
    kind, where = target
    got = 0
    if kind == "shmq":
        import shmq
        client = shmq.Client(where["ns"])
        q = client.open_queue(where["queue"])
        go.wait()
        start = time.monotonic()
        while got < n:
            for m in q.receive(max_messages=1, wait_time=1):
                q.delete(m.receipt_handle)
                got += 1
    elif kind == "boto3":
        sqs = boto3_client(where["endpoint"])
        url = where["url"]
        go.wait()
        start = time.monotonic()
        while got < n:
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1).get("Messages", []):
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                got += 1
    else:
        q = where["queue"]
        go.wait()
        start = time.monotonic()
        for _ in range(n):
            q.get()
    results.put(("consumer", start, time.monotonic()))


# --- running them ----------------------------------------------------------


class Runner:
    def __init__(self, opts, daemon):
        self.opts = opts
        self.daemon = daemon
        self.ctx = multiprocessing.get_context("spawn")
        self.body = "x" * opts.body_bytes
        self.sqs = boto3_client(f"http://127.0.0.1:{daemon.port}") if "boto3" in opts.transports else None
        import shmq
        self.client = shmq.Client(daemon.namespace)
        self.queues = 0

    def target(self, kind):
        """A fresh, empty queue of this transport, as the workers are given it."""
        self.queues += 1
        name = f"bench-{self.queues}"
        if kind == "mp_queue":
            return (kind, {"queue": self.ctx.Queue()})
        self.client.create_queue(name)
        where = {"ns": self.daemon.namespace, "queue": name}
        if kind == "boto3":
            where.update(endpoint=f"http://127.0.0.1:{self.daemon.port}",
                         url=self.sqs.get_queue_url(QueueName=name)["QueueUrl"])
        return (kind, where)

    def drop(self, target):
        kind, where = target
        if kind != "mp_queue":
            self.client.delete_queue(where["queue"])

    def run(self, workers):
        """Starts the workers, lets them go together, and returns their (start, end) by role."""
        go, results = self.ctx.Event(), self.ctx.Queue()
        processes = [self.ctx.Process(target=f, args=(*args, go, results)) for f, args in workers]
        for p in processes:
            p.start()
        time.sleep(0.3 if self.opts.quick else 1.0)  # the workers import and connect before the clock starts
        go.set()
        times = {}
        for _ in processes:
            role, start, end = results.get(timeout=600)
            times[role] = (start, end)
        for p in processes:
            p.join(60)
            if p.exitcode != 0:
                raise RuntimeError(f"a worker exited with {p.exitcode}")
        return times

    def round(self, kind):
        """One round of the three workloads; messages per second of each."""
        n = self.opts.boto3_messages if kind == "boto3" else self.opts.messages
        out = {}
        # send, then receive + delete of what was sent, on one queue. For
        # multiprocessing.Queue the two overlap: its pipe holds 64 KiB, so
        # its feeder writes as the consumer reads.
        t = self.target(kind)
        if kind == "mp_queue":
            times = self.run([(producer, (t, n, self.body)), (consumer, (t, n))])
            # A consumer that was let go at once would time the producer's
            # pace; so the consumer's rate is measured in the pair below and
            # only put() is timed here.
            out["send"] = n / (times["producer"][1] - times["producer"][0])
            t2 = self.target(kind)
            feeder = self.ctx.Process(target=fill_mp_queue, args=(t2[1]["queue"], n, self.body))
            feeder.start()
            times = self.run([(consumer, (t2, n))])
            feeder.join(60)
            out["receive_delete"] = n / (times["consumer"][1] - times["consumer"][0])
        else:
            times = self.run([(producer, (t, n, self.body))])
            out["send"] = n / (times["producer"][1] - times["producer"][0])
            times = self.run([(consumer, (t, n))])
            out["receive_delete"] = n / (times["consumer"][1] - times["consumer"][0])
        self.drop(t)
        t = self.target(kind)
        times = self.run([(producer, (t, n, self.body)), (consumer, (t, n))])
        out["pair"] = n / (max(e for _, e in times.values()) - min(s for s, _ in times.values()))
        self.drop(t)
        return out


def fill_mp_queue(q, n, body):
    """Puts n messages into a multiprocessing.Queue ahead of a consumer (its
    feeder thread writes them as the consumer reads)."""
    pin("producer")
    for _ in range(n):
        q.put(body)
    q.close()
    q.join_thread()


def per_call_costs(runner, iterations):
    """ns from Python, in this process, the best of three runs on fresh
    queues: a send of one message; a send + receive + delete of one (the C++
    micro benchmark's loop); per message of send_batch of 10 + receive of
    10 + delete_batch of 10 (BM_BatchOfTen's); and a send while another
    Python thread of the process keeps busy (a call that released the GIL
    would wait for that thread's switch interval to take it back)."""
    body = "x" * 64
    batch = [body] * 10

    def send(q):
        for _ in range(iterations):
            q.send(body)
        return iterations

    def one_through(q):
        for _ in range(iterations):
            q.send(body)
            q.delete(q.receive(max_messages=1, wait_time=0)[0].receipt_handle)
        return iterations

    def ten_through(q):
        for _ in range(iterations // 10):
            q.send_batch(batch)
            q.delete_batch(q.receive(max_messages=10, wait_time=0))
        return iterations // 10 * 10

    def send_beside_busy_thread(q):
        stop = threading.Event()

        def busy():
            while not stop.is_set():
                pass

        thread = threading.Thread(target=busy)
        thread.start()
        time.sleep(0.05)  # running, and holding the GIL whenever it can
        try:
            return send(q)
        finally:
            stop.set()
            thread.join()

    loops = {"send_ns": send, "send_receive_delete_ns": one_through, "batch_of_ten_per_message_ns": ten_through,
             "send_beside_busy_thread_ns": send_beside_busy_thread}
    best = dict.fromkeys(loops, float("inf"))
    for run in range(3):
        for i, (figure, loop) in enumerate(loops.items()):
            name = f"per-call-{run}-{i}"
            runner.client.create_queue(name)
            q = runner.client.open_queue(name)
            start = time.perf_counter_ns()
            n = loop(q)
            best[figure] = min(best[figure], (time.perf_counter_ns() - start) / n)
            q.close()
            runner.client.delete_queue(name)
    return best


def cxx_micro_bench(micro_bench, quick):
    """shmq-micro-bench's ns per message of BM_SendReceiveDelete/64 and
    BM_BatchOfTen (best repetition), or {} if it is not built."""
    if not micro_bench or not Path(micro_bench).is_file():
        return {}
    done = subprocess.run([str(micro_bench), "--benchmark_filter=BM_SendReceiveDelete/64$|BM_BatchOfTen",
                           "--benchmark_format=json", f"--benchmark_min_time={0.05 if quick else 0.5}",
                           *([] if quick else ["--benchmark_repetitions=3"])],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        return {}
    out = {}
    for b in json.loads(done.stdout)["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        unit = {"ns": 1, "us": 1e3, "ms": 1e6}[b["time_unit"]]
        name = b["name"].split("/repeats")[0]
        figure = "cxx_send_receive_delete_ns" if name.startswith("BM_SendReceiveDelete") else \
            "cxx_batch_of_ten_per_message_ns"
        per_message = b["real_time"] * unit / (10 if figure == "cxx_batch_of_ten_per_message_ns" else 1)
        out[figure] = min(out.get(figure, float("inf")), per_message)
    return out


def machine():
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown")
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "kernel": platform.release()}


def table(doc):
    m = doc["machine"]
    kinds = doc["transports"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, Linux {m['kernel']}. "
             f"{doc['body_bytes']}-byte bodies; medians of {doc['rounds']} rounds "
             f"({doc['messages']} messages a round, {doc['boto3_messages']} for boto3); "
             + ("pinned: producers on one CPU, consumers on another." if doc["pinned"] else "processes not pinned."),
             ""]
    header = ["workload", *(f"{LABELS[k]}, msg/s" for k in kinds)]
    header += [f"shmq / {LABELS[k]}" for k in kinds if k != "shmq"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for w in WORKLOADS:
        med = {k: doc["medians"][k][w] for k in kinds}
        row = [LABELS[w], *(f"{med[k]:,.0f}" for k in kinds)]
        row += [f"{med['shmq'] / med[k]:.1f}x" for k in kinds if k != "shmq"]
        lines.append("| " + " | ".join(row) + " |")
    c = doc["per_call"]
    lines += ["", "| 64-byte messages, one process | Python package | C++ library | binding overhead |",
              "|---|---:|---:|---:|",
              f"| send, per call | {c['send_ns']:,.0f} ns | | |"]
    for figure, label, calls in (("send_receive_delete_ns", "send + receive + delete, per message", 3),
                                 ("batch_of_ten_per_message_ns", "batches of 10 (send, receive, delete), per message",
                                  0.3)):
        py, cxx = c[figure], c.get("cxx_" + figure)
        if cxx:
            lines.append(f"| {label} | {py:,.0f} ns | {cxx:,.0f} ns | {py - cxx:,.0f} ns "
                         f"({(py - cxx) / calls:,.0f} ns a{' batch' if calls < 1 else ''} call) |")
        else:
            lines.append(f"| {label} | {py:,.0f} ns | (shmq-micro-bench not built) | |")
    lines.append(f"| send, per call, beside a busy Python thread | {c['send_beside_busy_thread_ns']:,.0f} ns | | |")
    return "\n".join(lines)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shmqd", default=str(bench_daemon.DEFAULT_BIN / "shmqd"))
    p.add_argument("--micro-bench", help="shmq-micro-bench (default: beside shmqd)")
    p.add_argument("--pythonpath", default=str(DEFAULT_PYTHONPATH), help="where the package shmq is built")
    p.add_argument("--messages", type=int, default=20000, help="per round, for shmq and multiprocessing.Queue")
    p.add_argument("--boto3-messages", type=int, default=1000, help="per round, for boto3")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--body-bytes", type=int, default=64)
    p.add_argument("--transports", default=",".join(TRANSPORTS))
    p.add_argument("--quick", action="store_true", help="a short run (smoke test): 1 round of few messages")
    p.add_argument("--json", action="store_true", help="print the figures as JSON, not the table")
    p.add_argument("--pin", action="store_true", help="producers on the first CPU, consumers on the second")
    opts = p.parse_args(argv)
    if opts.quick:
        opts.messages, opts.boto3_messages, opts.rounds = 2000, 100, 1
    opts.transports = [t for t in opts.transports.split(",") if t]
    if "shmq" not in opts.transports or set(opts.transports) - set(TRANSPORTS):
        p.error(f"--transports: shmq and any of {', '.join(TRANSPORTS[1:])}")
    bench_daemon.require_file(opts.shmqd, "shmqd")
    micro_bench = opts.micro_bench or str(Path(opts.shmqd).parent / "shmq-micro-bench")

    # The package for this process and the spawned workers.
    sys.path.insert(0, opts.pythonpath)
    os.environ["PYTHONPATH"] = os.pathsep.join([opts.pythonpath, str(Path(__file__).resolve().parent),
                                                os.environ.get("PYTHONPATH", "")])
    for var in [v for v in os.environ if v.startswith("AWS_")]:
        del os.environ[var]
    os.environ.update(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                      AWS_EC2_METADATA_DISABLED="true", NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")

    if opts.pin:
        os.environ["SHMQ_BENCH_PIN"] = "1"
    bench_daemon.exit_on_signals()
    doc = {"machine": machine(), "pinned": opts.pin, "transports": opts.transports, "rounds": opts.rounds, "messages": opts.messages,
           "boto3_messages": opts.boto3_messages, "body_bytes": opts.body_bytes}
    with bench_daemon.Daemon(opts.shmqd, bench_daemon.fresh_namespace("pybench")) as daemon:
        runner = Runner(opts, daemon)
        rounds = {k: [] for k in opts.transports}
        for _ in range(opts.rounds):
            for kind in opts.transports:  # interleaved, so that a slow spell of the machine hits all alike
                rounds[kind].append(runner.round(kind))
        doc["rounds_detail"] = rounds
        doc["medians"] = {k: {w: statistics.median(r[w] for r in rounds[k]) for w in WORKLOADS} for k in rounds}
        doc["per_call"] = per_call_costs(runner, 2000 if opts.quick else 50000)
        runner.client.close()
    doc["per_call"].update(cxx_micro_bench(micro_bench, opts.quick))
    print(json.dumps(doc, indent=2) if opts.json else table(doc))
    return 0


if __name__ == "__main__":
    bench_daemon.run_main(main, "python_bench")
