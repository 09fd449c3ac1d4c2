#!/usr/bin/env python3
"""shmq's remote backend (shmq-bench --transport shmq-remote, the C++
library's Client(Endpoint)) beside boto3, against the same SQS endpoint in
one session.

The endpoint is a shmqd this script starts, in a fresh namespace, with its
SQS bridge on 127.0.0.1 (a free port) checking SigV4 signatures with
credentials made up for the session; or --endpoint URL (Amazon SQS or any
SQS-compatible service), with credentials and region from the usual AWS
places (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws),
which both clients read.

Both sides do the same work, with the same message size and counts, each
call answered before the next is made:

  sends/s, one a call   1 producer sends N messages with SendMessage
  sends/s, batches      1 producer sends them with SendMessageBatch of 10
  receive + delete/s    then 1 consumer receives them, up to 10 a call, and
                        deletes each lot (DeleteMessageBatch; DeleteMessage
                        when one came), until all N are gone
  round trip p50        process ping sends; process pong receives, deletes
                        and sends the message back; ping receives and
                        deletes it: the time from ping's send to its delete

and, shmq-remote only (boto3 has no such client), the buffered sender's
gain: sends/s of 1 producer whose single sends go through
shmq::BufferedSender (include/shmq/buffered_sender.hpp), which sends them
in batches of up to 10, over sends/s of plain single sends.

The sends are timed alone, before any consumer runs (shmq-bench's stream
--sequential), and the receives alone afterwards; receive + delete/s is the
median over the drains of both send kinds. Receives ask for all attributes
(as the library does) and are long polls of 1 s (WaitTimeSeconds=1), or
with --wait spin short polls (WaitTimeSeconds=0), repeated until a message
comes. Every run must deliver each message exactly once, or the script
fails. Each measurement runs --runs times, the two clients taking turns;
the table gives the medians and the ratios shmq-remote / boto3 (above 1:
shmq-remote is faster, except for the p50, where below 1 is faster).

    bench/remote_bench.py [--runs 3] [--messages 2000] [--iterations 300] [--size 64]
                          [--wait block|spin] [--pin CPU,CPU] [--endpoint URL [--region R]]
                          [--netns NAME --address A] [--json]

--netns NAME --address A starts the daemon inside an existing network
namespace (ip netns exec NAME, so usually as root), its bridge listening on
A, an address of that namespace the benchmark's processes reach (e.g. one
end of a veth pair); the script does not create the namespace:

    ip netns add shmqb; ip link add veth0 type veth peer name veth1
    ip link set veth1 netns shmqb; ip addr add 10.77.0.1/24 dev veth0; ip link set veth0 up
    ip -n shmqb addr add 10.77.0.2/24 dev veth1; ip -n shmqb link set veth1 up
    bench/remote_bench.py --netns shmqb --address 10.77.0.2

--pin A,B runs the producer and ping on CPU A, the consumer and pong on B,
on both sides. Each measurement creates its queues (named with a process
id) and deletes them afterwards, on Amazon SQS too. Needs python3-boto3
(Debian) and a build (build/bin, or --bench and --shmqd).
"""

import argparse
import importlib.util
import json
import math
import multiprocessing
import os
import platform
import queue
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import bench_daemon
from bench_daemon import DEFAULT_BIN

LOCAL_REGION = "us-east-1"
LOCAL_ACCESS_KEY = "remote-bench"
SEQUENCE_DIGITS = 16  # each body starts with its number in 16 hex digits, as shmq-bench's do
VISIBILITY_TIMEOUT = "43200"  # as shmq-bench's channels: nothing is delivered twice within a run

FIGURES = [
    # key, label, unit
    ("send", "sends/s, SendMessage (one message a call)", "/s"),
    ("send_batch", "sends/s, SendMessageBatch of 10", "/s"),
    ("send_buffered", "sends/s, single sends through shmq::BufferedSender", "/s"),
    ("receive_delete", "receive + delete/s (ReceiveMessage of up to 10, then DeleteMessageBatch)", "/s"),
    ("p50_ms", "round trip p50 in ms (send, receive, delete; there and back)", "ms"),
]


# --- the endpoint ------------------------------------------------------------


class Endpoint:
    """Where both clients go, and the environment that gives them their
    credentials and region. A local daemon is started on entry and stopped
    (its segments removed) on exit."""

    def __init__(self, opts):
        self.opts = opts
        self.process = None
        self.namespace = bench_daemon.fresh_namespace("remotebench")
        self.region = opts.region
        self.env = dict(os.environ)
        self.url = opts.endpoint
        self.started = opts.endpoint is None
        self._dir = None
        self._log = None

    def __enter__(self):
        if self.started:
            self._start_daemon()
        elif self.region is None:
            self.region = self._region_of_chain()
        return self

    def _region_of_chain(self):
        """The region as the C++ library finds it, passed to both clients so
        that they sign for the same one: an Amazon host name's, else
        AWS_REGION, AWS_DEFAULT_REGION, the profile's, else us-east-1."""
        match = re.search(r"sqs[.-]([a-z0-9-]+)\.amazonaws\.com", self.url)
        if match:
            return match.group(1)
        for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            if os.environ.get(name):
                return os.environ[name]
        import boto3
        return boto3.session.Session().region_name or LOCAL_REGION

    def __exit__(self, *exc):
        bench_daemon.stop_process(self.process)
        self.process = None
        if self.started:
            for path in Path("/dev/shm").glob(f"shmq.{self.namespace}.*"):
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
        if self._log:
            self._log.close()
        if self._dir:
            self._dir.cleanup()
        return False

    def describe(self):
        if not self.started:
            return f"{self.url} (--endpoint; credentials from the AWS chain; region {self.region})"
        where = f"in network namespace {self.opts.netns}" if self.opts.netns else "on this host"
        return f"{self.url}: shmqd's SQS bridge {where}, started for this session, SigV4 checked (--auth)"

    def _start_daemon(self):
        self._dir = tempfile.TemporaryDirectory(prefix="remote-bench-")
        port_file = Path(self._dir.name) / "port"
        secret = secrets.token_hex(16)
        self.region = self.region or LOCAL_REGION
        address = self.opts.address
        args = [
            str(self.opts.shmqd), "--namespace", self.namespace, "--log-level", "warn", "--bridge-listen",
            f"{address}:0", "--bridge-port-file",
            str(port_file), "--auth", f"{LOCAL_ACCESS_KEY}:{secret}", "--region", self.region
        ]
        if self.opts.netns:
            args = ["ip", "netns", "exec", self.opts.netns, *args]
        self._log = open(Path(self._dir.name) / "shmqd.log", "w+")
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            port = bench_daemon.wait_for_port_file(port_file, self.process, "shmqd")
        except RuntimeError as e:
            self._log.flush()
            self._log.seek(0)
            command = " ".join(args).replace(secret, "SECRET")
            raise RuntimeError(f"{e}: {command}\n{self._log.read()[-2000:]}") from None
        host = f"[{address}]" if ":" in address else address
        self.url = f"http://{host}:{port}"
        # Both clients take these first in their chains; nothing else is read.
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            self.env.pop(name, None)
        self.env.update(AWS_ACCESS_KEY_ID=LOCAL_ACCESS_KEY, AWS_SECRET_ACCESS_KEY=secret, AWS_REGION=self.region,
                        AWS_DEFAULT_REGION=self.region)
        no_proxy = [p for p in self.env.get("NO_PROXY", "").split(",") if p] + [address]
        self.env["NO_PROXY"] = self.env["no_proxy"] = ",".join(no_proxy)


# --- shmq-remote: shmq-bench ---------------------------------------------------


def run_shmq_bench(opts, endpoint, args):
    """The shmq-remote result of one shmq-bench run (its JSON)."""
    command = [
        str(opts.bench), "--transport", "shmq-remote", "--endpoint", endpoint.url, "--size",
        str(opts.size), "--wait", opts.wait, "--json", *args
    ]
    if endpoint.region:
        command += ["--region", endpoint.region]
    if opts.pin:
        command += ["--pin", opts.pin]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=endpoint.env, timeout=opts.timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{' '.join(command)} did not finish within {opts.timeout} s") from None
    try:
        doc = json.loads(done.stdout)
        result = doc["results"][0]
    except (ValueError, KeyError, IndexError):
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}") from None
    if result["status"] != "ok":
        raise RuntimeError(f"shmq-bench shmq-remote {result['status']}: {result['reason']}\n{done.stderr}")
    return doc, result


def shmq_stream(opts, endpoint, sends):
    """sends: "single", "batch" (SendMessageBatch of 10) or "buffered" (BufferedSender)."""
    how = {"single": ["--send-batch", "1"], "batch": ["--send-batch", "10"], "buffered": ["--buffered-sender"]}
    doc, r = run_shmq_bench(opts, endpoint,
                            ["--workload", "stream", "--sequential", "--messages",
                             str(opts.messages), *how[sends]])
    return doc, {"send": r["sends_per_s"], "receive_delete": r["receives_per_s"]}


def shmq_pingpong(opts, endpoint):
    doc, r = run_shmq_bench(opts, endpoint, ["--iterations", str(opts.iterations), "--warmup", str(opts.warmup)])
    return doc, r["p50_ns"] / 1e6


# --- boto3: the same work, in worker processes ----------------------------------


def boto3_client(where):
    import boto3
    import botocore.config

    # Attempts as the C++ library makes them by default (3, AWS_MAX_ATTEMPTS).
    config = botocore.config.Config(retries={"max_attempts": 3, "mode": "standard"}, read_timeout=30)
    return boto3.session.Session(region_name=where["region"]).client("sqs", endpoint_url=where["url"],
                                                                     config=config)


def pin(cpu):
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def stamp(n, size):
    """The body of message n: its number in 16 hex digits, then 'x' to `size` bytes."""
    return f"{n:016x}" + "x" * (size - SEQUENCE_DIGITS)


def receive_arguments(sqs, url, max_messages, wait):
    """ReceiveMessage as the C++ library sends it: every attribute asked for."""
    args = dict(QueueUrl=url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=wait, AttributeNames=["All"],
                MessageAttributeNames=["All"])
    members = sqs.meta.service_model.operation_model("ReceiveMessage").input_shape.members
    if "MessageSystemAttributeNames" in members:
        args["MessageSystemAttributeNames"] = ["All"]
    return args


def acknowledge(sqs, url, messages):
    """Deletes what was received: one by DeleteMessage, more by DeleteMessageBatch."""
    if len(messages) == 1:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
        return
    entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
    failed = sqs.delete_message_batch(QueueUrl=url, Entries=entries).get("Failed", [])
    if failed:
        raise RuntimeError(f"DeleteMessageBatch: {failed}")


def receive_some(sqs, args):
    while True:
        messages = sqs.receive_message(**args).get("Messages", [])
        if messages:
            return messages


def worker(body, args, cpu, ready, go, results):
    """Runs body(*args, start) in a spawned process, `start` being what body
    calls once set up: it waits until every worker is, and the parent lets
    them go. Reports ("ok", what body returned) or ("error", why); a worker
    that fails before the start breaks the barrier, so none waits for it."""
    def start():
        ready.wait()
        go.wait()

    try:
        pin(cpu)
        results.put(("ok", body(*args, start)))
    except Exception as e:  # the parent fails the run with this
        ready.abort()
        results.put(("error", f"{body.__name__}: {type(e).__name__}: {e}"))


def producer(where, n, size, batch, start):
    """Sends messages 0..n-1, `batch` a call; returns its (start, end)."""
    sqs = boto3_client(where)
    url = sqs.get_queue_url(QueueName=where["queue"])["QueueUrl"]  # and the connection is open
    start()
    t0 = time.monotonic()
    if batch == 1:
        for i in range(n):
            sqs.send_message(QueueUrl=url, MessageBody=stamp(i, size))
    else:
        for first in range(0, n, batch):
            entries = [{"Id": str(j), "MessageBody": stamp(first + j, size)} for j in range(min(batch, n - first))]
            failed = sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed", [])
            if failed:
                raise RuntimeError(f"SendMessageBatch: {failed}")
    return t0, time.monotonic()


def consumer(where, n, wait, start):
    """Receives (up to 10 a call) and deletes until n messages are gone;
    returns its (start, last consumed). Each number must come exactly once."""
    sqs = boto3_client(where)
    url = sqs.get_queue_url(QueueName=where["queue"])["QueueUrl"]
    args = receive_arguments(sqs, url, 10, wait)
    seen = [0] * n
    start()
    t0 = time.monotonic()
    got = 0
    while got < n:
        messages = receive_some(sqs, args)
        acknowledge(sqs, url, messages)
        for m in messages:
            seen[int(m["Body"][:SEQUENCE_DIGITS], 16)] += 1
        got += len(messages)
    t1 = time.monotonic()
    missing = seen.count(0)
    twice = sum(1 for c in seen if c > 1)
    if got != n or missing or twice:
        raise RuntimeError(f"received {got} of {n}: {missing} missing, {twice} more than once")
    return t0, t1


def ping(where, total, warmup, size, wait, start):
    """Sends message i on "ping", waits for it on "pong" and deletes it;
    returns the round trips after the warm-up, in ns."""
    sqs = boto3_client(where)
    ping_url = sqs.get_queue_url(QueueName=where["ping"])["QueueUrl"]
    pong_url = sqs.get_queue_url(QueueName=where["pong"])["QueueUrl"]
    args = receive_arguments(sqs, pong_url, 1, wait)
    samples = []
    start()
    for i in range(total):
        body = stamp(i, size)
        t0 = time.perf_counter_ns()
        sqs.send_message(QueueUrl=ping_url, MessageBody=body)
        reply = receive_some(sqs, args)
        acknowledge(sqs, pong_url, reply)
        t1 = time.perf_counter_ns()
        if reply[0]["Body"] != body:
            raise RuntimeError(f"reply to message {i} is {reply[0]['Body'][:SEQUENCE_DIGITS]!r}")
        if i >= warmup:
            samples.append(t1 - t0)
    return samples


def pong(where, total, wait, start):
    """Sends back on "pong" each message it receives (and deletes) on "ping"."""
    sqs = boto3_client(where)
    ping_url = sqs.get_queue_url(QueueName=where["ping"])["QueueUrl"]
    pong_url = sqs.get_queue_url(QueueName=where["pong"])["QueueUrl"]
    args = receive_arguments(sqs, ping_url, 1, wait)
    start()
    for _ in range(total):
        message = receive_some(sqs, args)
        acknowledge(sqs, ping_url, message)
        sqs.send_message(QueueUrl=pong_url, MessageBody=message[0]["Body"])


def nearest_rank(sorted_samples, q):
    """As shmq-bench's latency summary: the smallest sample with at least q of all at or below it."""
    rank = math.ceil(q * len(sorted_samples))
    return sorted_samples[min(max(rank, 1), len(sorted_samples)) - 1]


class Boto3Side:
    def __init__(self, opts, endpoint):
        self.opts = opts
        self.ctx = multiprocessing.get_context("spawn")
        self.where = {"url": endpoint.url, "region": endpoint.region}
        # The spawned workers inherit the credentials and the region.
        os.environ.clear()
        os.environ.update(endpoint.env)
        self.sqs = boto3_client(self.where)
        self.queues = 0
        cpus = [int(c) for c in opts.pin.split(",")] if opts.pin else []
        self.cpu = lambda i: cpus[i % len(cpus)] if cpus else None

    def _queue(self):
        self.queues += 1
        name = f"{bench_daemon.fresh_namespace('remotebench')}-boto3-{self.queues}"
        url = self.sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": VISIBILITY_TIMEOUT})["QueueUrl"]
        return name, url

    def _run(self, workers):
        """Starts the workers (body, args, cpu), lets them go together once
        all are set up, and returns what each returned, in order."""
        ready = self.ctx.Barrier(len(workers) + 1)
        go = self.ctx.Event()
        results = [self.ctx.Queue() for _ in workers]
        processes = [
            self.ctx.Process(target=worker, args=(body, args, cpu, ready, go, q))
            for (body, args, cpu), q in zip(workers, results)
        ]
        for p in processes:
            p.start()
        try:
            try:
                ready.wait(timeout=120)
            except threading.BrokenBarrierError:
                pass  # a worker failed while setting up: its report says why
            go.set()
            out = []
            for q in results:
                try:
                    status, value = q.get(timeout=self.opts.timeout)
                except queue.Empty:
                    raise RuntimeError(f"a boto3 worker reported nothing within {self.opts.timeout} s") from None
                if status != "ok":
                    raise RuntimeError(f"boto3 {value}")
                out.append(value)
            return out
        finally:
            for p in processes:
                p.join(10)
                if p.is_alive():
                    p.kill()
                    p.join()

    def stream(self, send_batch):
        name, url = self._queue()
        where = {**self.where, "queue": name}
        n = self.opts.messages
        try:
            (start, end), = self._run([(producer, (where, n, self.opts.size, send_batch), self.cpu(0))])
            sends = n / (end - start)
            (start, end), = self._run([(consumer, (where, n, self.opts.wait_seconds), self.cpu(1))])
            return {"send": sends, "receive_delete": n / (end - start)}
        finally:
            self.sqs.delete_queue(QueueUrl=url)

    def pingpong(self):
        (ping_name, ping_url), (pong_name, pong_url) = self._queue(), self._queue()
        where = {**self.where, "ping": ping_name, "pong": pong_name}
        total = self.opts.warmup + self.opts.iterations
        w = self.opts.wait_seconds
        try:
            samples, _ = self._run([
                (ping, (where, total, self.opts.warmup, self.opts.size, w), self.cpu(0)),
                (pong, (where, total, w), self.cpu(1)),
            ])
            return nearest_rank(sorted(samples), 0.5) / 1e6
        finally:
            self.sqs.delete_queue(QueueUrl=ping_url)
            self.sqs.delete_queue(QueueUrl=pong_url)


# --- the session -------------------------------------------------------------------


def machine(doc):
    """CPU model and cores, as shmq-bench probed them (bench/machine_info), else /proc/cpuinfo."""
    if doc and "machine" in doc:
        m = doc["machine"]
        return f"{m['cpu']}, {m['cores']} cores, {m['kernel']}"
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def session(opts, endpoint):
    boto3_side = Boto3Side(opts, endpoint)
    runs = {"shmq-remote": {k: [] for k, *_ in FIGURES}, "boto3": {k: [] for k, *_ in FIGURES}}
    doc = None
    for r in range(opts.runs):
        for sends, send_batch, key in (("single", 1, "send"), ("batch", 10, "send_batch")):
            progress(opts, f"run {r + 1}/{opts.runs}: stream, send batch {send_batch}")
            doc, shmq = shmq_stream(opts, endpoint, sends)
            boto = boto3_side.stream(send_batch)
            for side, figures in (("shmq-remote", shmq), ("boto3", boto)):
                runs[side][key].append(figures["send"])
                runs[side]["receive_delete"].append(figures["receive_delete"])
        progress(opts, f"run {r + 1}/{opts.runs}: stream, BufferedSender")
        # Its drain is left out of receive + delete/s: boto3 has no third drain beside it.
        _, shmq = shmq_stream(opts, endpoint, "buffered")
        runs["shmq-remote"]["send_buffered"].append(shmq["send"])
        progress(opts, f"run {r + 1}/{opts.runs}: pingpong")
        _, p50 = shmq_pingpong(opts, endpoint)
        runs["shmq-remote"]["p50_ms"].append(p50)
        runs["boto3"]["p50_ms"].append(boto3_side.pingpong())
    medians = {
        side: {k: statistics.median(v) if v else None for k, v in figures.items()}
        for side, figures in runs.items()
    }
    single = medians["shmq-remote"]["send"]
    import boto3
    return {
        "machine": machine(doc),
        "endpoint": endpoint.describe(),
        "runs": opts.runs,
        "messages": opts.messages,
        "iterations": opts.iterations,
        "warmup": opts.warmup,
        "size": opts.size,
        "wait_time_seconds": opts.wait_seconds,
        "pin": opts.pin,
        "boto3": boto3.__version__,
        "python": platform.python_version(),
        "every_run": runs,
        "medians": medians,
        "ratios": {
            k: medians["shmq-remote"][k] / medians["boto3"][k] if medians["boto3"][k] else None
            for k, *_ in FIGURES
        },
        "buffered_sender_gain": medians["shmq-remote"]["send_buffered"] / single if single else None,
    }


def grouped(value):
    return f"{value:,.0f}"


def print_table(result):
    m = result["medians"]
    print("## shmq-remote (C++ Client(Endpoint), via shmq-bench) and boto3, same SQS endpoint\n")
    print(f"- machine: {result['machine']}")
    print(f"- endpoint: {result['endpoint']}")
    print(f"- {result['messages']:,} messages of {result['size']} B per stream run; "
          f"{result['iterations']:,} round trips ({result['warmup']:,} before them unmeasured) per pingpong run; "
          f"medians of {result['runs']} run{'s' if result['runs'] != 1 else ''}")
    wait = result["wait_time_seconds"]
    print(f"- receives: up to 10 a call ({'long polls of 1 s' if wait else 'short polls'}, WaitTimeSeconds={wait}); "
          f"boto3 {result['boto3']} on Python {result['python']}" +
          (f"; pinned to CPUs {result['pin']}" if result["pin"] else ""))
    print()
    print("| measurement | shmq-remote | boto3 | shmq-remote / boto3 |")
    print("|---|---:|---:|---:|")
    for key, label, unit in FIGURES:
        ratio = result["ratios"][key]
        cells = []
        for side in ("shmq-remote", "boto3"):
            v = m[side][key]
            cells.append("-" if v is None else f"{v:.2f}" if unit == "ms" else grouped(v))
        print(f"| {label} | {' | '.join(cells)} | {'-' if ratio is None else f'{ratio:.2f}'} |")
    print()
    print("Notes:")
    print("- Ratios: above 1, shmq-remote is faster, except the p50 row, where below 1 is faster.")
    print("- Each send figure is timed alone (no consumer running); receive + delete/s drains those messages "
          "afterwards (median over both send kinds' drains). Every message must arrive exactly once.")
    print("- Both clients sign every request with SigV4 and keep their connections open between calls; but for "
          "the BufferedSender, each makes one call at a time, after the previous one's answer.")
    gain = result["buffered_sender_gain"]
    print(f"- Buffered sender: {gain:.2f} x the sends/s of single sends, with the same single send() calls "
          "(shmq::BufferedSender, default options: batches of up to 10 within 20 ms, up to 4 on their way at "
          "once; every answer collected before the clock stops). boto3 has no buffered client: no figure.")


def progress(opts, text):
    if not opts.json and sys.stderr.isatty():
        print(f"remote_bench: {text} ...", file=sys.stderr, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(description="shmq-remote beside boto3 against the same SQS endpoint.")
    p.add_argument("--bench", type=Path, default=DEFAULT_BIN / "shmq-bench", help="shmq-bench (default build/bin)")
    p.add_argument("--shmqd", type=Path, default=DEFAULT_BIN / "shmqd", help="shmqd to start (default build/bin)")
    p.add_argument("--endpoint", help="use this SQS endpoint instead of starting a shmqd (AWS credential chain)")
    p.add_argument("--region", help="region to sign for (default: from an Amazon URL, else the AWS config)")
    p.add_argument("--netns", help="start the daemon in this existing network namespace (ip netns exec)")
    p.add_argument("--address", help="the address its bridge listens on (default 127.0.0.1; needed with --netns)")
    p.add_argument("--runs", type=int, default=3, help="runs of each measurement; medians are reported (default 3)")
    p.add_argument("--messages", type=int, default=2000, help="messages per stream run (default 2000)")
    p.add_argument("--iterations", type=int, default=300, help="round trips measured per pingpong run (default 300)")
    p.add_argument("--warmup", type=int, help="round trips before those, not measured (default a tenth)")
    p.add_argument("--size", type=int, default=64, help="message size in bytes, 16 to 262144 (default 64)")
    p.add_argument("--wait", choices=["block", "spin"], default="block",
                   help="receives: long polls of 1 s (block, default) or short polls (spin)")
    p.add_argument("--pin", metavar="CPU,CPU",
                   help="producer and ping on the first CPU, consumer and pong on the second")
    p.add_argument("--timeout", type=float, default=600, help="seconds one measurement may take (default 600)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    opts = p.parse_args(argv)
    if opts.runs < 1 or opts.messages < 1 or opts.iterations < 1:
        p.error("--runs, --messages and --iterations must be positive")
    if not 16 <= opts.size <= 262144:
        p.error("--size: 16 to 262144 bytes")
    if opts.endpoint and (opts.netns or opts.address):
        p.error("--netns and --address start a daemon: not with --endpoint")
    if opts.netns and not opts.address:
        p.error("--netns needs --address: an address of the namespace that this host reaches")
    if opts.pin and not re.fullmatch(r"\d+(,\d+)*", opts.pin):
        p.error("--pin: CPU numbers, comma-separated")
    opts.address = opts.address or "127.0.0.1"
    opts.warmup = opts.iterations // 10 if opts.warmup is None else opts.warmup
    opts.wait_seconds = 1 if opts.wait == "block" else 0
    return opts


def main(argv):
    opts = parse_args(argv)
    bench_daemon.require_file(opts.bench, "shmq-bench")
    if opts.endpoint is None:
        bench_daemon.require_file(opts.shmqd, "shmqd")
    if importlib.util.find_spec("boto3") is None:
        raise RuntimeError(f"boto3 is not installed for {sys.executable}: apt-get install python3-boto3")
    bench_daemon.exit_on_signals()
    import botocore.exceptions
    with Endpoint(opts) as endpoint:
        try:
            result = session(opts, endpoint)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            raise RuntimeError(f"boto3: {e}") from None
    if opts.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    bench_daemon.run_main(main, "remote_bench")
