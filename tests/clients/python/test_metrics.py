"""GET /metrics as Prometheus scrapes it: text that the Prometheus project's
own parser (python3-prometheus-client) reads and its linter (promtool) passes,
with per-queue figures that follow the messages as they move, the bridge's
requests by action and status code, and the process's figures."""

import shutil
import subprocess
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shmq_clients import Daemon


def scrape(daemon):
    with urllib.request.urlopen(f"{daemon.endpoint}/metrics", timeout=30) as answer:
        assert answer.status == 200
        content_type = answer.headers["Content-Type"]
        text = answer.read().decode()
    assert content_type.startswith("text/plain; version=0.0.4"), content_type
    return text


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(text, name, **labels):
    """The sample `name` with exactly these labels; None when absent."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


def eventually(check, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def test_a_scrape_parses_and_passes_promtool(daemon, sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="m")
    sqs.list_queues()
    text = scrape(daemon)
    found = families(text)
    # Types as the conventions say: _total families are counters, state a label.
    assert found["shmq_queue_messages"].type == "gauge"
    assert found["shmq_queue_messages_sent"].type == "counter"  # the parser drops _total from a counter's name
    assert found["shmq_bridge_requests"].type == "counter"
    assert found["shmq_bridge_request_duration_seconds"].type == "histogram"
    assert found["process_cpu_seconds"].type == "counter"
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: tools/install-deps.sh installs Debian's prometheus"
    lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_queue_figures_follow_the_messages(daemon, sqs, unique):
    name = unique("jobs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    text = scrape(daemon)
    for state in ("visible", "in_flight", "delayed"):
        assert value(text, "shmq_queue_messages", queue=name, state=state) == 0
    assert value(text, "shmq_queue_oldest_message_age_seconds", queue=name) == 0

    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    time.sleep(1.1)
    text = scrape(daemon)
    assert value(text, "shmq_queue_messages", queue=name, state="visible") == 3
    assert value(text, "shmq_queue_messages", queue=name, state="delayed") == 1
    assert value(text, "shmq_queue_messages_sent_total", queue=name) == 4
    assert value(text, "shmq_queue_oldest_message_age_seconds", queue=name) >= 1.0
    assert value(text, "shmq_queue_memory_bytes", queue=name) > 0

    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=60)["Messages"]
    assert len(got) == 2
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
    text = scrape(daemon)
    assert value(text, "shmq_queue_messages", queue=name, state="visible") == 1
    assert value(text, "shmq_queue_messages", queue=name, state="in_flight") == 1
    assert value(text, "shmq_queue_messages_received_total", queue=name) == 2
    assert value(text, "shmq_queue_messages_deleted_total", queue=name) == 1

    sqs.delete_queue(QueueUrl=url)
    assert value(scrape(daemon), "shmq_queue_messages", queue=name, state="visible") is None, "a deleted queue goes"


def test_the_memory_limit_is_the_queues():
    d = Daemon(["--queue-memory-mib", "64"])
    try:
        d.client().create_queue(QueueName="limited")
        assert value(scrape(d), "shmq_queue_memory_limit_bytes", queue="limited") == 64 << 20
    finally:
        d.stop()


def test_dead_lettered_messages_are_counted_in_the_source(daemon, sqs, unique):
    dlq_name = unique("dlq")
    dlq = sqs.create_queue(QueueName=dlq_name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    name = unique("src")
    url = sqs.create_queue(
        QueueName=name,
        Attributes={"RedrivePolicy": f'{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"1"}}'},
    )["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    assert len(sqs.receive_message(QueueUrl=url, VisibilityTimeout=1)["Messages"]) == 1
    # Received once, its timeout over: it moves to the dead-letter queue.
    def moved():
        text = scrape(daemon)
        return (value(text, "shmq_queue_messages_dead_lettered_total", queue=name) == 1
                and value(text, "shmq_queue_messages", queue=dlq_name, state="visible") == 1)

    assert eventually(moved), scrape(daemon)
    text = scrape(daemon)
    assert value(text, "shmq_queue_messages_dead_lettered_total", queue=dlq_name) == 0
    assert value(text, "shmq_queue_messages_deleted_total", queue=name) == 0, "moving is not deleting"
    assert value(text, "shmq_queue_messages_expired_total", queue=name) == 0


def test_bridge_requests_are_counted_by_action_and_code(daemon, sqs):
    before = scrape(daemon)
    sqs.list_queues()
    sqs.list_queues()
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName="no-such-queue")
    text = scrape(daemon)

    def delta(**labels):
        return (value(text, "shmq_bridge_requests_total", **labels) or 0) - (
            value(before, "shmq_bridge_requests_total", **labels) or 0)

    assert delta(action="ListQueues", code="200") == 2
    assert delta(action="GetQueueUrl", code="400") == 1
    # The histogram is whole: cumulative buckets, +Inf equal to the count.
    buckets = [s for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "shmq_bridge_request_duration_seconds_bucket" and s.labels["action"] == "ListQueues"]
    counts = [s.value for s in sorted(buckets, key=lambda s: float(s.labels["le"]))]
    assert counts == sorted(counts) and counts[-1] == value(
        text, "shmq_bridge_request_duration_seconds_count", action="ListQueues")
    assert value(text, "shmq_bridge_request_duration_seconds_sum", action="ListQueues") > 0


def test_an_action_the_bridge_does_not_serve_is_one_label_whatever_its_name(daemon):
    for name in ("Frobnicate", "Frobnicate2"):
        request = urllib.request.Request(f"{daemon.endpoint}/?Action={name}", method="POST", data=b"")
        try:
            urllib.request.urlopen(request, timeout=30)
        except urllib.error.HTTPError as e:
            assert e.code == 400
    text = scrape(daemon)
    assert "Frobnicate" not in text, "a caller must not be able to make series without bound"
    assert value(text, "shmq_bridge_requests_total", action="unknown", code="400") >= 2


def test_the_process_figures_are_the_daemons(daemon):
    text = scrape(daemon)
    started = value(text, "process_start_time_seconds")
    assert time.time() - 600 < started <= time.time(), started
    assert value(text, "process_resident_memory_bytes") > 1 << 20
    assert value(text, "process_open_fds") >= 3
    assert value(text, "process_max_fds") >= value(text, "process_open_fds")
    assert value(text, "process_cpu_seconds_total") >= 0
    assert value(text, "shmq_queues") >= 0
    build = [s for f in text_string_to_metric_families(text) for s in f.samples if s.name == "shmq_build_info"]
    assert len(build) == 1 and build[0].value == 1 and build[0].labels["version"]
