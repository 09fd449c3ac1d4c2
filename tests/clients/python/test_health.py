"""Is shmqd serving? As an operator, a probe and a service manager ask it:
`shmqctl health` (exit status), the bridge's GET /health, and systemd's
readiness protocol (READY=1 on $NOTIFY_SOCKET, then STOPPING=1)."""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from shmq_clients import SHMQCTL, SHMQD, Daemon


def shmqctl(ns, *args):
    return subprocess.run([SHMQCTL, "--namespace", ns, *args], capture_output=True, text=True, timeout=30)


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_shmqctl_health_answers_while_the_daemon_serves_and_fails_after():
    d = Daemon()
    try:
        sqs = d.client()
        for name in ("a", "b"):
            sqs.create_queue(QueueName=name)
        r = shmqctl(d.ns, "health", "--json")
        assert r.returncode == 0, r
        health = json.loads(r.stdout)
        assert health["status"] == "serving"
        assert health["queues"] == 2
        assert health["refused_queues"] == 0
        assert health["reaper_threads"] >= 1, "queues are served by reapers"
        assert health["pid"] == d.proc.pid
        assert health["version"] == shmqctl(d.ns, "--version").stdout.split()[1]
    finally:
        d.stop()
    r = shmqctl(d.ns, "health")
    assert r.returncode == 1, r
    assert "daemon_unavailable" in r.stderr, r.stderr


def test_the_bridge_answers_get_health():
    d = Daemon()
    try:
        d.client().create_queue(QueueName="jobs")
        status, headers, body = get(f"{d.endpoint}/health")
        assert status == 200, body
        assert headers["Content-Type"] == "application/json"
        health = json.loads(body)
        assert (health["status"], health["queues"]) == ("serving", 1)
        # Not an SQS action: a queue named "health" is still an SQS queue.
        url = d.client().create_queue(QueueName="health")["QueueUrl"]
        assert url.endswith("/000000000000/health")
        assert json.loads(get(f"{d.endpoint}/health")[2])["queues"] == 2
    finally:
        d.stop()


def test_readiness_is_told_to_the_service_manager_once_the_bridge_serves():
    with tempfile.TemporaryDirectory() as scratch:
        path = str(Path(scratch) / "notify")
        manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        manager.bind(path)
        manager.settimeout(30)
        port_file = Path(scratch) / "port"
        ns = f"pyh{os.getpid()}"
        proc = subprocess.Popen(
            [SHMQD, "--namespace", ns, "--bridge-listen", "127.0.0.1:0", "--bridge-port-file", str(port_file),
             "--log-level", "warn"],
            env={**os.environ, "NOTIFY_SOCKET": path}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            ready = manager.recv(4096).decode()
            assert "READY=1" in ready.split("\n"), ready
            assert f"STATUS=serving namespace {ns}" in ready, ready
            # Ready means serving: the bridge answers at once.
            port = int(port_file.read_text())
            assert get(f"http://127.0.0.1:{port}/health")[0] == 200
            assert shmqctl(ns, "health").returncode == 0
            proc.send_signal(signal.SIGTERM)
            assert "STOPPING=1" in manager.recv(4096).decode()
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            manager.close()
            for f in os.listdir("/dev/shm"):
                if f.startswith(f"shmq.{ns}."):
                    os.unlink(f"/dev/shm/{f}")



def test_with_a_stop_drain_health_says_stopping_while_everything_else_still_serves():
    d = Daemon(["--stop-drain", "3"])
    try:
        sqs = d.client()
        url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
        assert get(f"{d.endpoint}/health")[0] == 200
        d.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        deadline = signalled + 2
        while json.loads(get(f"{d.endpoint}/health")[2])["status"] != "stopping":
            assert time.monotonic() < deadline, "health still says serving after the signal"
            time.sleep(0.05)
        status, _, body = get(f"{d.endpoint}/health")
        assert status == 503, body
        r = shmqctl(d.ns, "health", "--json")
        assert r.returncode == 1, r
        assert json.loads(r.stdout)["status"] == "stopping"
        # Requests in progress and new ones are served until the drain ends.
        sqs.send_message(QueueUrl=url, MessageBody="during the drain")
        assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "during the drain"
        assert d.proc.poll() is None
        assert d.proc.wait(timeout=30) == 0
        took = time.monotonic() - signalled
        assert 2.5 <= took < 10, took
    finally:
        d.stop()


def test_a_second_signal_cuts_the_drain_short():
    d = Daemon(["--stop-drain", "60"])
    try:
        d.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while get(f"{d.endpoint}/health")[0] != 503:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(timeout=10) == 0
    finally:
        d.stop()


def test_a_drain_out_of_range_is_refused():
    r = subprocess.run([SHMQD, "--stop-drain", "301", "--bridge-listen", "off"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2, r
    assert "--stop-drain: 0 to 300 seconds" in r.stderr
