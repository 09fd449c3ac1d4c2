"""Queues declared in shmqd's config file ([queue.NAME] sections): made at
start-up with their attributes, dead-letter queue and tags, checked (never
changed) when they exist, and refused with the file and line when wrong."""

import json
import os
import shutil
import subprocess
import textwrap

import pytest

from shmq_clients import ACCOUNT, SHMQD, Daemon

CONFIG = """\
    [queue.jobs]
    VisibilityTimeout = 45
    dead-letter-queue = jobs-dlq
    max-receive-count = 3
    tags = team=imaging,env=dev

    [queue.jobs-dlq]
    MessageRetentionPeriod = 1209600

    [queue.orders.fifo]
    ContentBasedDeduplication = true
"""


def write_config(tmp_path, text, name="shmqd.conf"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def attributes(sqs, daemon, name):
    url = f"{daemon.endpoint}/{ACCOUNT}/{name}"
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_declared_queues_are_made_at_start_up(tmp_path):
    d = Daemon(["--config", str(write_config(tmp_path, CONFIG))])
    try:
        sqs = d.client()
        urls = sqs.list_queues()["QueueUrls"]
        assert sorted(u.rsplit("/", 1)[1] for u in urls) == ["jobs", "jobs-dlq", "orders.fifo"]
        jobs = attributes(sqs, d, "jobs")
        assert jobs["VisibilityTimeout"] == "45"
        assert json.loads(jobs["RedrivePolicy"]) == {
            "deadLetterTargetArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:jobs-dlq", "maxReceiveCount": 3}
        assert sqs.list_queue_tags(QueueUrl=f"{d.endpoint}/{ACCOUNT}/jobs")["Tags"] == {"team": "imaging", "env": "dev"}
        assert attributes(sqs, d, "jobs-dlq")["MessageRetentionPeriod"] == "1209600"
        fifo = attributes(sqs, d, "orders.fifo")
        assert (fifo["FifoQueue"], fifo["ContentBasedDeduplication"]) == ("true", "true")
    finally:
        d.stop()


def test_an_existing_queue_that_differs_is_reported_and_left_as_it_is(tmp_path):
    first = Daemon(["--config", str(write_config(tmp_path, CONFIG))])
    first.client().send_message(QueueUrl=f"{first.endpoint}/{ACCOUNT}/jobs", MessageBody="kept")
    # Stopped, its queues left in shared memory for the next daemon.
    first.proc.terminate()
    assert first.proc.wait(timeout=30) == 0
    shutil.rmtree(first.dir, ignore_errors=True)
    changed = write_config(tmp_path, CONFIG.replace("VisibilityTimeout = 45", "VisibilityTimeout = 50"), "changed.conf")
    d = Daemon(["--config", str(changed)], ns=first.ns)
    try:
        sqs = d.client()
        assert attributes(sqs, d, "jobs")["VisibilityTimeout"] == "45", "not changed by the config file"
        got = sqs.receive_message(QueueUrl=f"{d.endpoint}/{ACCOUNT}/jobs", WaitTimeSeconds=1).get("Messages", [])
        assert [m["Body"] for m in got] == ["kept"]
        log = d.log()
        assert "queue jobs exists with attributes other than the config file's; left as it is" in log, log
    finally:
        d.stop()


@pytest.mark.parametrize("text, line, what", [
    ("[queue.jobs]\nmax-receive-count = 0\n", 2, "from 1 to 1000"),
    ("log-level = warn\n[queue.jobs]\ntags = nokey\n", 3, "tags are KEY=VALUE,KEY=VALUE"),
    ("[queue.jobs]\ndead-letter-queue = dlq\n", None, "dead-letter-queue and max-receive-count go together"),
])
def test_a_bad_queue_section_is_refused_with_the_file_and_line(tmp_path, text, line, what):
    path = write_config(tmp_path, text)
    r = subprocess.run([SHMQD, "--namespace", f"pyq{os.getpid()}", "--bridge-listen", "off", "--config", str(path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r
    where = f"{path}:{line}: " if line else f"{path}: "
    assert where in r.stderr and what in r.stderr, r.stderr


def test_a_declared_queue_the_daemon_cannot_make_stops_the_start(tmp_path):
    path = write_config(tmp_path, "[queue.jobs]\nVisibilityTimeout = 99999\n")
    ns = f"pyq{os.getpid()}b"
    r = subprocess.run([SHMQD, "--namespace", ns, "--bridge-listen", "off", "--config", str(path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r
    assert "[queue.jobs]" in r.stderr and "VisibilityTimeout" in r.stderr, r.stderr
    assert not [f for f in os.listdir("/dev/shm") if f.startswith(f"shmq.{ns}.")], "nothing left behind"
