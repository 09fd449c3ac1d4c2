"""The Python package shmq as its users see it, against a real shmqd: what
it sends, other clients (boto3 over the SQS bridge, shmqctl over libshmq)
receive, and the other way round; FIFO order and deduplication; a long
poll that leaves other Python threads running and that Ctrl-C ends; a
consumer killed before it deletes; the exceptions raised."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import shmq


# --- the package -----------------------------------------------------------


def test_package_imports_from_the_build_tree():
    assert shmq.__version__.count(".") == 2
    assert issubclass(shmq.QueueDoesNotExist, shmq.Error)
    assert issubclass(shmq.InvalidParameter, ValueError)


def test_client_and_queue_are_context_managers(daemon, unique):
    name = unique("ctx")
    with shmq.Client(daemon.ns) as c:
        assert c.namespace == daemon.ns
        c.create_queue(name)
        with c.open_queue(name) as q:
            assert q.name == name
            q.send("one")
        assert q.closed
        with pytest.raises(ValueError):
            q.send("two")
    assert c.closed
    with pytest.raises(ValueError):
        c.list_queues()


def test_admin_calls(client, unique):
    name = unique("admin")
    client.create_queue(name, {"VisibilityTimeout": 7, "DelaySeconds": "0"}, tags={"team": "a"})
    assert name in client.list_queues(prefix="admin")
    assert client.get_queue_attributes(name)["VisibilityTimeout"] == "7"
    client.set_queue_attributes(name, {"VisibilityTimeout": 9})
    assert client.get_queue_attributes(name, ["VisibilityTimeout"]) == {"VisibilityTimeout": "9"}
    assert client.list_queue_tags(name) == {"team": "a"}
    with client.open_queue(name) as q:
        q.send_batch(["a", "b", "c"])
        assert client.purge_queue(name) == 3
        assert q.receive(max_messages=10) == []
    client.delete_queue(name)
    assert name not in client.list_queues()


# --- round trips with other clients ----------------------------------------


def test_python_to_boto3_and_back(client, sqs, unique):
    name = unique("boto")
    client.create_queue(name)
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    q = client.open_queue(name)

    sent = q.send("from python", attributes={"kind": "greeting", "n": 42, "raw": b"\x00\xff"})
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2,
                              MessageAttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in got] == ["from python"]
    assert got[0]["MessageId"] == sent.message_id
    assert got[0]["MessageAttributes"] == {
        "kind": {"DataType": "String", "StringValue": "greeting"},
        "n": {"DataType": "Number", "StringValue": "42"},
        "raw": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
    }
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])

    sent = sqs.send_message(QueueUrl=url, MessageBody="from boto3 é", MessageAttributes={
        "kind": {"DataType": "String.custom", "StringValue": "reply"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x01\x02"},
    })
    got = q.receive(max_messages=10, wait_time=2)
    assert len(got) == 1
    m = got[0]
    assert m.message_id == sent["MessageId"]
    assert m.body == "from boto3 é".encode()
    assert m.text == "from boto3 é"
    assert m.attributes == {
        "kind": shmq.MessageAttribute("String.custom", "reply"),
        "blob": shmq.MessageAttribute("Binary", b"\x01\x02"),
    }
    assert m.receive_count == 1
    assert abs(m.sent_timestamp_ms / 1000 - time.time()) < 60
    m.delete()
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []


def test_python_to_shmqctl_and_back(daemon, client, unique):
    name = unique("ctl")
    client.create_queue(name)
    q = client.open_queue(name)

    sent = q.send("from python, ünïcode", attributes={"k": "v"})
    out = json.loads(daemon.shmqctl("--json", "receive", name, "--max", "10", "--delete").stdout)
    assert [m["Body"] for m in out["Messages"]] == ["from python, ünïcode"]
    assert out["Messages"][0]["MessageId"] == sent.message_id
    assert out["Messages"][0]["MessageAttributes"] == {"k": {"DataType": "String", "StringValue": "v"}}
    assert q.counts().visible == 0 and q.counts().in_flight == 0

    daemon.shmqctl("send", name, "from shmqctl", "--message-attribute", "n=Number:7",
                   "--message-attribute", "b=Binary:AAE=")
    got = q.receive(wait_time=2)
    assert [m.text for m in got] == ["from shmqctl"]
    assert got[0].attributes == {"n": shmq.MessageAttribute("Number", "7"),
                                 "b": shmq.MessageAttribute("Binary", b"\x00\x01")}
    got[0].delete()
    assert q.counts().visible == 0 and q.counts().in_flight == 0


def test_batches(queue):
    results = queue.send_batch(["a", {"id": "second", "body": b"b", "attributes": {"x": "1"}}])
    assert [r.id for r in results] == ["0", "second"]
    assert all(r.ok and r.message_id for r in results)
    got = queue.receive(max_messages=10)
    assert sorted(m.text for m in got) == ["a", "b"]
    results = queue.change_visibility_batch([(got[0], 0), ("not-a-handle", 0)])
    assert results[0].ok
    assert not results[1].ok
    assert isinstance(results[1].error, shmq.InvalidReceiptHandle)
    assert results[1].error.code == "invalid_receipt_handle"
    again = queue.receive(max_messages=10)
    assert [m.message_id for m in again] == [got[0].message_id]
    results = queue.delete_batch([again[0], got[1].receipt_handle])
    assert all(r.ok for r in results)
    assert queue.counts().visible + queue.counts().in_flight == 0


# --- FIFO ------------------------------------------------------------------


def test_fifo_order_within_each_group(client, unique):
    name = unique("order") + ".fifo"
    client.create_queue(name, {"FifoQueue": True})
    q = client.open_queue(name)
    for i in range(30):
        group = "ab"[i % 2]
        r = q.send(f"{group}{i}", group_id=group, deduplication_id=f"d{i}")
        assert r.sequence_number is not None and not r.duplicate
    seen = {"a": [], "b": []}
    while True:
        got = q.receive(max_messages=7)
        if not got:
            break
        for m in got:
            seen[m.group_id].append(int(m.text[1:]))
            m.delete()
    assert seen["a"] == list(range(0, 30, 2))
    assert seen["b"] == list(range(1, 30, 2))


def test_fifo_holds_a_group_while_a_message_is_in_flight(client, unique):
    name = unique("held") + ".fifo"
    client.create_queue(name, {"FifoQueue": True, "ContentBasedDeduplication": True})
    q = client.open_queue(name)
    q.send("first", group_id="g")
    q.send("second", group_id="g")
    first = q.receive(max_messages=1)
    assert [m.text for m in first] == ["first"]
    assert q.receive(max_messages=10) == []  # "second" waits for "first"
    first[0].delete()
    assert [m.text for m in q.receive(max_messages=10)] == ["second"]


def test_fifo_deduplication_id_is_honoured(client, unique):
    name = unique("dedup") + ".fifo"
    client.create_queue(name, {"FifoQueue": True})
    q = client.open_queue(name)
    one = q.send("once", group_id="g", deduplication_id="same")
    two = q.send("once, again", group_id="g", deduplication_id="same")
    assert not one.duplicate
    assert two.duplicate
    assert two.message_id == one.message_id
    q.send("other", group_id="g", deduplication_id="other")
    got = q.receive(max_messages=10)
    assert [m.text for m in got] == ["once", "other"]
    assert [m.deduplication_id for m in got] == ["same", "other"]
    with pytest.raises(shmq.InvalidParameter) as e:
        q.send("no dedup id, no content-based deduplication", group_id="g")
    assert e.value.code == "invalid_parameter_value"


# --- the GIL ---------------------------------------------------------------


def test_long_poll_leaves_other_threads_running_and_wakes_on_send(queue):
    got, returned = [], threading.Event()

    def consumer():
        got.extend(queue.receive(wait_time=5))
        returned.set()

    started = time.monotonic()
    threading.Thread(target=consumer, daemon=True).start()
    time.sleep(0.2)  # the consumer is in its wait
    # This thread counts for half a second: with the GIL held by the wait,
    # it would not run at all.
    count, until = 0, time.monotonic() + 0.5
    while time.monotonic() < until:
        count += 1
    assert not returned.is_set(), "the long poll returned before anything was sent"
    assert count > 10_000, f"only {count} iterations beside a long poll: is the GIL held?"

    sent = queue.send("wake up")
    assert returned.wait(10)
    assert [m.message_id for m in got] == [sent.message_id]
    assert time.monotonic() - started < 4.5, "the long poll ran to its end instead of waking on the send"


def test_long_poll_ends_empty_after_its_wait(queue):
    started = time.monotonic()
    assert queue.receive(wait_time=1) == []
    assert time.monotonic() - started >= 0.95


POLLER = """
import sys, shmq
q = shmq.Client(sys.argv[1]).open_queue(sys.argv[2])
print("waiting", flush=True)
try:
    q.receive(wait_time=20)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_ctrl_c_interrupts_a_long_poll(daemon, client, unique):
    name = unique("sigint")
    client.create_queue(name)
    poller = subprocess.Popen([sys.executable, "-c", POLLER, daemon.ns, name], stdout=subprocess.PIPE, text=True)
    try:
        assert poller.stdout.readline() == "waiting\n"
        time.sleep(0.3)
        started = time.monotonic()
        poller.send_signal(signal.SIGINT)
        out, _ = poller.communicate(timeout=10)
        assert out == "interrupted\n"
        assert time.monotonic() - started < 5, "SIGINT was seen only when the 20 s wait ended"
    finally:
        if poller.poll() is None:
            poller.kill()
            poller.wait()


# --- a consumer killed mid-batch --------------------------------------------

CONSUMER = """
import sys, time, shmq
with shmq.Client(sys.argv[1]) as c:
    got = c.open_queue(sys.argv[2]).receive(max_messages=10, wait_time=5, visibility_timeout=2)
    print(time.monotonic(), " ".join(m.message_id for m in got), flush=True)
    time.sleep(60)  # "processing"; killed before it deletes
"""


def test_messages_of_a_killed_consumer_come_back_after_the_visibility_timeout(daemon, client, unique):
    name = unique("killed")
    client.create_queue(name)
    q = client.open_queue(name)
    sent = {q.send(f"job {i}").message_id for i in range(5)}

    consumer = subprocess.Popen([sys.executable, "-c", CONSUMER, daemon.ns, name], stdout=subprocess.PIPE, text=True)
    try:
        received_at, *taken = consumer.stdout.readline().split()
        assert set(taken) == sent
        os.kill(consumer.pid, signal.SIGKILL)
        consumer.wait(10)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait()
    assert consumer.returncode == -signal.SIGKILL
    if time.monotonic() - float(received_at) < 1.5:  # (a slow machine may have let the 2 s pass)
        assert q.receive(max_messages=10) == []  # still in flight
        assert q.counts().in_flight == 5

    again = []
    deadline = time.monotonic() + 10
    while len(again) < 5 and time.monotonic() < deadline:
        again += q.receive(max_messages=10, wait_time=1)
    assert {m.message_id for m in again} == sent
    assert {m.receive_count for m in again} == {2}
    for m in again:
        m.delete()
    assert q.counts().in_flight == 0


# --- errors ----------------------------------------------------------------


def test_opening_a_missing_queue_raises_queue_does_not_exist(client):
    with pytest.raises(shmq.QueueDoesNotExist) as e:
        client.open_queue("no-such-queue")
    assert e.value.code == "queue_does_not_exist"
    assert isinstance(e.value, shmq.Error)
    assert "no-such-queue" in str(e.value)


def test_bad_and_stale_receipt_handles_raise_invalid_receipt_handle(queue):
    with pytest.raises(shmq.InvalidReceiptHandle) as e:
        queue.delete("not-a-receipt-handle")
    assert e.value.code == "invalid_receipt_handle"

    queue.send("x")
    [m] = queue.receive()
    m.delete()
    with pytest.raises(shmq.InvalidReceiptHandle) as e:
        m.delete()
    assert e.value.code == "stale_receipt_handle"
    with pytest.raises(shmq.InvalidReceiptHandle):
        queue.change_visibility(m.receipt_handle, 5)


def test_other_errors(daemon, client, unique, queue):
    with pytest.raises(shmq.DaemonUnavailable) as e:
        shmq.Client(daemon.ns + "-nobody")
    assert e.value.code == "daemon_unavailable"

    name = unique("exists")
    client.create_queue(name, {"VisibilityTimeout": 5})
    with pytest.raises(shmq.QueueNameExists) as e:
        client.create_queue(name, {"VisibilityTimeout": 6})
    assert e.value.code == "queue_name_exists"

    with pytest.raises(shmq.InvalidParameter) as e:
        queue.send_batch([str(i) for i in range(11)])
    assert e.value.code == "too_many_entries_in_batch"
    with pytest.raises(shmq.InvalidParameter) as e:
        queue.receive(max_messages=11)
    assert e.value.code == "invalid_parameter_value"
    with pytest.raises(shmq.MessageTooLarge) as e:
        queue.send(b"x" * (1024 * 1024 + 1))
    assert e.value.code == "message_too_large"
    with pytest.raises(TypeError):
        queue.send(12)
    with pytest.raises(shmq.InvalidParameter) as e:
        queue.send("")  # SQS: a body has at least one character
    assert e.value.code == "missing_parameter"

    q = client.open_queue(name)
    client.delete_queue(name)
    with pytest.raises(shmq.QueueDoesNotExist):
        q.send("to a deleted queue")
