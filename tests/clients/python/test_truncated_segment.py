"""A queue's segment file truncated by another process while shmqd runs:
requests over the bridge that touch it, a redrive into it, and reads of its
attributes get SQS errors, the daemon stays up (the same process) and keeps
serving the other queues, over the bridge and to libshmq clients."""

import json
import subprocess
import time

import botocore.exceptions
import pytest

from shmq_clients import ACCOUNT, REGION, Daemon

MISSING = {"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"}


@pytest.fixture
def daemon():
    d = Daemon()
    yield d
    d.stop()


def segment(daemon, name):
    return f"/dev/shm/shmq.{daemon.ns}.{name}"


def truncate(daemon, name, size):
    # From another process, as a user allowed to open the file would.
    subprocess.run(["truncate", "-s", str(size), segment(daemon, name)], check=True)


def alive(daemon, pid):
    return daemon.proc.poll() is None and daemon.proc.pid == pid


def sqs_error(call, *args, **kwargs):
    """The SQS error code `call` fails with; fails the test on success or on a 5xx."""
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(*args, **kwargs)
    status = e.value.response["ResponseMetadata"]["HTTPStatusCode"]
    assert status < 500, f"{e.value.response['Error']} with HTTP {status}"
    return e.value.response["Error"]["Code"]


def eventually(check, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def send_and_receive_over_bridge(sqs, url, body):
    sqs.send_message(QueueUrl=url, MessageBody=body)
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5).get("Messages", [])
    assert [m["Body"] for m in got] == [body]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])


def send_and_receive_with_libshmq(daemon, name, body):
    daemon.shmqctl("send", name, body)
    out = daemon.shmqctl("--json", "receive", name, "--wait", "5", "--delete").stdout
    assert body in out, out


def test_bridge_requests_to_a_truncated_queue_get_errors_and_the_others_are_served(daemon):
    sqs = daemon.client()
    pid = daemon.proc.pid
    a = sqs.create_queue(QueueName="a")["QueueUrl"]
    b = sqs.create_queue(QueueName="b")["QueueUrl"]
    # The bridge maps both queues now, and has messages in them.
    for i in range(20):
        sqs.send_message(QueueUrl=a, MessageBody=f"a{i}")
    send_and_receive_over_bridge(sqs, b, "before")

    truncate(daemon, "a", 4096)  # the header alone is left
    # Sends, receives and deletes touch the pages that are gone.
    for i in range(5):
        assert sqs_error(sqs.send_message, QueueUrl=a, MessageBody=f"after{i}") in MISSING
        assert sqs_error(sqs.receive_message, QueueUrl=a, MaxNumberOfMessages=10) in MISSING
    assert alive(daemon, pid), daemon.log()

    send_and_receive_over_bridge(sqs, b, "over the bridge")
    send_and_receive_with_libshmq(daemon, "b", "with libshmq")
    assert sqs.list_queues()["QueueUrls"] == [b]
    assert alive(daemon, pid), daemon.log()
    assert "its segment file was truncated while attached" in daemon.log()

    # delete-queue frees the name.
    daemon.shmqctl("delete-queue", "a")
    a = sqs.create_queue(QueueName="a")["QueueUrl"]
    send_and_receive_over_bridge(sqs, a, "a again")
    assert alive(daemon, pid)


def test_fifo_sends_to_a_truncated_queue_get_errors_and_the_others_are_served(daemon):
    # A FIFO send reads its deduplication bucket before it takes the lock:
    # that read, of a page that is gone, must not take the daemon down.
    sqs = daemon.client()
    pid = daemon.proc.pid
    a = sqs.create_queue(QueueName="a.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    b = sqs.create_queue(QueueName="b")["QueueUrl"]
    for i in range(20):
        sqs.send_message(QueueUrl=a, MessageBody=f"a{i}", MessageGroupId=f"g{i % 3}", MessageDeduplicationId=f"d{i}")

    truncate(daemon, "a.fifo", 4096)  # the header alone is left
    for i in range(5):
        assert (
            sqs_error(
                sqs.send_message, QueueUrl=a, MessageBody="after", MessageGroupId="g0", MessageDeduplicationId=f"d{i}"
            )
            in MISSING
        )
        assert sqs_error(sqs.receive_message, QueueUrl=a, MaxNumberOfMessages=10) in MISSING
    assert alive(daemon, pid), daemon.log()
    send_and_receive_over_bridge(sqs, b, "over the bridge")
    assert alive(daemon, pid), daemon.log()


def test_attribute_and_tag_reads_of_a_truncated_queue_get_errors(daemon):
    sqs = daemon.client()
    pid = daemon.proc.pid
    a = sqs.create_queue(QueueName="a", tags={"team": "x"})["QueueUrl"]
    b = sqs.create_queue(QueueName="b")["QueueUrl"]
    sqs.send_message(QueueUrl=a, MessageBody="m")

    truncate(daemon, "a", 0)  # the header too
    assert sqs_error(sqs.get_queue_attributes, QueueUrl=a, AttributeNames=["All"]) in MISSING
    assert sqs_error(sqs.list_queue_tags, QueueUrl=a) in MISSING
    assert sqs_error(sqs.send_message, QueueUrl=a, MessageBody="m") in MISSING
    assert alive(daemon, pid), daemon.log()

    assert sqs.get_queue_attributes(QueueUrl=b, AttributeNames=["All"])["Attributes"]["QueueArn"].endswith(":b")
    send_and_receive_over_bridge(sqs, b, "still served")
    assert alive(daemon, pid)


def test_redrive_into_a_truncated_dead_letter_queue_keeps_the_message(daemon):
    sqs = daemon.client()
    pid = daemon.proc.pid
    # src before dlq: the reaper serves src's turn, and the redrive into dlq,
    # before it looks at dlq's own state.
    src = sqs.create_queue(QueueName="src")["QueueUrl"]
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    policy = json.dumps({"deadLetterTargetArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:dlq", "maxReceiveCount": 1})
    sqs.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": policy})
    sqs.send_message(QueueUrl=src, MessageBody="precious")

    # Received once, visible again two seconds later: past maxReceiveCount,
    # the reaper moves it to the dead-letter queue, whose pages are gone by
    # then (the receive woke the reaper; it sleeps until the deadline now).
    got = sqs.receive_message(QueueUrl=src, VisibilityTimeout=2, WaitTimeSeconds=5)["Messages"]
    assert [m["Body"] for m in got] == ["precious"]
    time.sleep(0.2)
    truncate(daemon, "dlq", 4096)
    assert eventually(lambda: "dlq" not in " ".join(sqs.list_queues().get("QueueUrls", []))), daemon.log()
    assert alive(daemon, pid), daemon.log()

    # The message waits in src for a dead-letter queue; a new one gets it.
    daemon.shmqctl("delete-queue", "dlq")
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    moved = []
    assert eventually(
        lambda: moved.extend(sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages", [])) or moved,
        seconds=20,
    ), daemon.log()
    assert [m["Body"] for m in moved] == ["precious"]
    assert alive(daemon, pid)
