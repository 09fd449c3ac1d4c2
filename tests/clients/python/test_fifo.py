"""FIFO queues through boto3: message groups, order, deduplication,
sequence numbers."""

import time

import pytest
from botocore.exceptions import ClientError

from sqs_md5 import md5_of_body
from shmq_clients import error_code, http_status


def receive(sqs, queue, **kwargs):
    return sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, **kwargs).get("Messages", [])


def receive_when_any(sqs, queue, timeout=20, **kwargs):
    """Receives (long polls of a second) until a receive returns messages or
    `timeout` seconds have passed; returns the last receive's messages."""
    deadline = time.monotonic() + timeout
    while True:
        got = receive(sqs, queue, WaitTimeSeconds=1, **kwargs)
        if got or time.monotonic() > deadline:
            return got


def test_create_fifo_queue(sqs, unique):
    name = unique("orders") + ".fifo"
    url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"]
    assert url.endswith("/" + name)
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert a["FifoQueue"] == "true"
    assert a["ContentBasedDeduplication"] == "false"


def test_fifo_queue_name_must_end_with_fifo(sqs, unique):
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName=unique("nosuffix"), Attributes={"FifoQueue": "true"})
    assert error_code(e) == "InvalidParameterValue"


def test_message_group_id_is_required(fifo_queue, sqs):
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=fifo_queue, MessageBody="x", MessageDeduplicationId="d")
    assert error_code(e) == "MissingParameter"


def test_deduplication_id_or_content_based_deduplication_is_required(fifo_queue, sqs):
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=fifo_queue, MessageBody="x", MessageGroupId="g")
    assert error_code(e) == "InvalidParameterValue"


def test_per_message_delay_is_refused(fifo_queue, sqs):
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=fifo_queue, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="d",
                         DelaySeconds=2)
    assert error_code(e) == "InvalidParameterValue"
    assert e.value.response["Error"]["Message"] == (
        "Value 2 for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid "
        "for this queue type.")


def test_per_message_delay_of_zero_is_accepted_and_the_queues_delay_still_applies(sqs, unique):
    # AWS accepts DelaySeconds=0 on a FIFO queue's messages, single and in
    # a batch; the queue's own DelaySeconds is what delays them.
    url = sqs.create_queue(QueueName=unique("delayed") + ".fifo",
                           Attributes={"FifoQueue": "true", "DelaySeconds": "1"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="one", MessageGroupId="g", MessageDeduplicationId="d1",
                     DelaySeconds=0)
    sent = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "two", "MessageBody": "two", "MessageGroupId": "g2", "MessageDeduplicationId": "d2",
         "DelaySeconds": 0}])
    assert [s["Id"] for s in sent.get("Successful", [])] == ["two"] and not sent.get("Failed")
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10), "the queue's delay"
    got = []
    deadline = time.monotonic() + 5
    while len(got) < 2 and time.monotonic() < deadline:
        got += receive(sqs, url, WaitTimeSeconds=1)
    assert sorted(m["Body"] for m in got) == ["one", "two"]


def test_deduplication_by_message_deduplication_id(fifo_queue, sqs):
    first = sqs.send_message(QueueUrl=fifo_queue, MessageBody="a", MessageGroupId="g", MessageDeduplicationId="d1")
    again = sqs.send_message(QueueUrl=fifo_queue, MessageBody="b", MessageGroupId="g", MessageDeduplicationId="d1")
    assert again["MessageId"] == first["MessageId"]
    other = sqs.send_message(QueueUrl=fifo_queue, MessageBody="a", MessageGroupId="g", MessageDeduplicationId="d2")
    assert other["MessageId"] != first["MessageId"]
    got = receive(sqs, fifo_queue, AttributeNames=["MessageDeduplicationId"])
    assert [(m["Body"], m["Attributes"]["MessageDeduplicationId"]) for m in got] == [("a", "d1"), ("a", "d2")]


def test_content_based_deduplication(sqs, unique):
    url = sqs.create_queue(
        QueueName=unique("cbd") + ".fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    first = sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
    again = sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
    assert again["MessageId"] == first["MessageId"]
    sqs.send_message(QueueUrl=url, MessageBody="different", MessageGroupId="g")
    assert [m["Body"] for m in receive(sqs, url)] == ["same", "different"]


def test_sequence_numbers(fifo_queue, sqs):
    sent = [
        sqs.send_message(QueueUrl=fifo_queue, MessageBody=f"m{i}", MessageGroupId="g", MessageDeduplicationId=f"d{i}")
        for i in range(3)
    ]
    numbers = [s["SequenceNumber"] for s in sent]
    assert all(n.isdigit() for n in numbers)
    assert [int(n) for n in numbers] == sorted(int(n) for n in numbers)
    assert len(set(numbers)) == 3
    got = receive(sqs, fifo_queue, AttributeNames=["All"])
    assert [m["Attributes"]["SequenceNumber"] for m in got] == numbers
    assert {m["Attributes"]["MessageGroupId"] for m in got} == {"g"}
    assert [m["MD5OfBody"] for m in got] == [md5_of_body(f"m{i}") for i in range(3)]


def test_order_within_a_group_and_groups_blocked_while_in_flight(fifo_queue, sqs):
    for i in range(3):
        sqs.send_message(QueueUrl=fifo_queue, MessageBody=f"a{i}", MessageGroupId="A", MessageDeduplicationId=f"a{i}")
    sqs.send_message(QueueUrl=fifo_queue, MessageBody="b0", MessageGroupId="B", MessageDeduplicationId="b0")
    first = sqs.receive_message(QueueUrl=fifo_queue, MaxNumberOfMessages=1)["Messages"]
    assert [m["Body"] for m in first] == ["a0"]
    # a1 and a2 wait while a0 is in flight; group B is free.
    assert [m["Body"] for m in receive(sqs, fifo_queue)] == ["b0"]
    sqs.delete_message(QueueUrl=fifo_queue, ReceiptHandle=first[0]["ReceiptHandle"])
    assert [m["Body"] for m in receive(sqs, fifo_queue)] == ["a1", "a2"]


def test_send_message_batch_to_a_fifo_queue(fifo_queue, sqs):
    r = sqs.send_message_batch(
        QueueUrl=fifo_queue,
        Entries=[
            {"Id": f"e{i}", "MessageBody": f"m{i}", "MessageGroupId": "g", "MessageDeduplicationId": f"d{i}"}
            for i in range(4)
        ],
    )
    assert [s["Id"] for s in r["Successful"]] == ["e0", "e1", "e2", "e3"]
    assert all(s["SequenceNumber"].isdigit() for s in r["Successful"])
    assert not r.get("Failed")
    assert [m["Body"] for m in receive(sqs, fifo_queue)] == ["m0", "m1", "m2", "m3"]


def test_a_fifo_batch_with_an_entry_missing_its_group_or_deduplication_id_fails_whole(fifo_queue, sqs):
    # AWS refuses the whole request (400) and sends none of its entries.
    ok = {"Id": "ok", "MessageBody": "ok", "MessageGroupId": "g", "MessageDeduplicationId": "d-ok"}
    with pytest.raises(ClientError) as e:
        sqs.send_message_batch(QueueUrl=fifo_queue, Entries=[
            ok, {"Id": "nogroup", "MessageBody": "x", "MessageDeduplicationId": "dx"}])
    assert (error_code(e), http_status(e)) == ("MissingParameter", 400)
    assert e.value.response["Error"]["Message"] == "The request must contain the parameter MessageGroupId."
    with pytest.raises(ClientError) as e:
        sqs.send_message_batch(QueueUrl=fifo_queue, Entries=[
            ok, {"Id": "nodedup", "MessageBody": "x", "MessageGroupId": "g"}])
    assert (error_code(e), http_status(e)) == ("InvalidParameterValue", 400)
    assert e.value.response["Error"]["Message"] == (
        "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided "
        "explicitly")
    assert receive(sqs, fifo_queue) == [], "an entry of a refused batch was sent"
    # The same for a single send.
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=fifo_queue, MessageBody="x", MessageGroupId="g")
    assert e.value.response["Error"]["Message"].startswith("The queue should either have ContentBasedDeduplication")


def test_a_handle_whose_visibility_timeout_ran_out_deletes_nothing(fifo_queue, sqs):
    # AWS refuses it on a FIFO queue (a standard queue's delete succeeds).
    sqs.send_message(QueueUrl=fifo_queue, MessageBody="m", MessageGroupId="g", MessageDeduplicationId="d")
    first = receive(sqs, fifo_queue, VisibilityTimeout=1)
    assert [m["Body"] for m in first] == ["m"]
    time.sleep(1.5)
    handle = first[0]["ReceiptHandle"]
    with pytest.raises(ClientError) as e:
        sqs.delete_message(QueueUrl=fifo_queue, ReceiptHandle=handle)
    assert (error_code(e), http_status(e)) == ("InvalidParameterValue", 400)
    assert e.value.response["Error"]["Message"] == (
        f"Value {handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.")
    again = receive(sqs, fifo_queue, VisibilityTimeout=30)
    assert [m["Body"] for m in again] == ["m"], "the refused delete deleted the message"
    r = sqs.delete_message_batch(QueueUrl=fifo_queue, Entries=[{"Id": "old", "ReceiptHandle": handle}])
    assert [(f["Id"], f["Code"], f["Message"]) for f in r["Failed"]] == [
        ("old", "ReceiptHandleIsInvalid", "The receipt handle has expired")]
    sqs.delete_message(QueueUrl=fifo_queue, ReceiptHandle=again[0]["ReceiptHandle"])
    assert receive(sqs, fifo_queue, VisibilityTimeout=0) == []


def test_purge_queue_ends_the_deduplication_window(fifo_queue, sqs):
    first = sqs.send_message(QueueUrl=fifo_queue, MessageBody="before", MessageGroupId="g",
                             MessageDeduplicationId="same")
    sqs.purge_queue(QueueUrl=fifo_queue)
    again = sqs.send_message(QueueUrl=fifo_queue, MessageBody="after", MessageGroupId="g",
                             MessageDeduplicationId="same")
    assert again["MessageId"] != first["MessageId"], "deduplicated against a message sent before the purge"
    assert [m["Body"] for m in receive(sqs, fifo_queue)] == ["after"]


def test_receive_request_attempt_id_returns_the_same_messages(fifo_queue, sqs):
    for i in range(2):
        sqs.send_message(QueueUrl=fifo_queue, MessageBody=f"m{i}", MessageGroupId="g", MessageDeduplicationId=f"d{i}")
    first = receive(sqs, fifo_queue, ReceiveRequestAttemptId="attempt-1")
    retry = receive(sqs, fifo_queue, ReceiveRequestAttemptId="attempt-1")
    assert [m["MessageId"] for m in retry] == [m["MessageId"] for m in first]
    assert [m["Body"] for m in first] == ["m0", "m1"]


def test_a_message_made_visible_again_is_received_again_while_the_next_stays_in_flight(fifo_queue, sqs):
    # As SQS: a group is blocked after its first in-flight message, not as a whole.
    for i in (1, 2, 3):
        sqs.send_message(QueueUrl=fifo_queue, MessageBody=f"m{i}", MessageGroupId="g1", MessageDeduplicationId=f"d{i}")
    first = sqs.receive_message(QueueUrl=fifo_queue, MaxNumberOfMessages=2)["Messages"]
    assert [m["Body"] for m in first] == ["m1", "m2"]
    sqs.change_message_visibility(QueueUrl=fifo_queue, ReceiptHandle=first[0]["ReceiptHandle"], VisibilityTimeout=0)
    again = receive(sqs, fifo_queue, AttributeNames=["ApproximateReceiveCount"])
    # m1 again; not m2 (still in flight) nor m3 (behind m2).
    assert [(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in again] == [("m1", "2")]
    assert receive(sqs, fifo_queue) == []
    sqs.delete_message(QueueUrl=fifo_queue, ReceiptHandle=first[1]["ReceiptHandle"])  # m2's handle still works
    assert receive(sqs, fifo_queue) == [], "m3 waits behind m1, in flight again"
    sqs.delete_message(QueueUrl=fifo_queue, ReceiptHandle=again[0]["ReceiptHandle"])
    assert [m["Body"] for m in receive(sqs, fifo_queue)] == ["m3"]


def test_a_message_kept_in_flight_holds_back_the_rest_of_its_group_when_the_others_come_back(fifo_queue, sqs):
    # As SQS: m1, m2, m3 received together; m2's visibility is extended.
    # When m1 and m3 are visible again, a receive returns m1 only: m3 comes
    # after m2, still in flight, and waits until m2 is released.
    for i in (1, 2, 3):
        sqs.send_message(QueueUrl=fifo_queue, MessageBody=f"m{i}", MessageGroupId="g", MessageDeduplicationId=f"d{i}")
    first = receive(sqs, fifo_queue, VisibilityTimeout=3)
    assert [m["Body"] for m in first] == ["m1", "m2", "m3"]
    m2 = first[1]
    sqs.change_message_visibility(QueueUrl=fifo_queue, ReceiptHandle=m2["ReceiptHandle"], VisibilityTimeout=60)
    again = receive_when_any(sqs, fifo_queue, VisibilityTimeout=60, AttributeNames=["ApproximateReceiveCount"])
    assert [(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in again] == [("m1", "2")]
    assert receive(sqs, fifo_queue) == [], "m3 was delivered while m2, before it, is in flight"
    sqs.delete_message(QueueUrl=fifo_queue, ReceiptHandle=again[0]["ReceiptHandle"])
    assert receive(sqs, fifo_queue) == [], "m3 was delivered while m2, before it, is in flight"
    sqs.change_message_visibility(QueueUrl=fifo_queue, ReceiptHandle=m2["ReceiptHandle"], VisibilityTimeout=0)
    rest = receive(sqs, fifo_queue, AttributeNames=["ApproximateReceiveCount"])
    assert [(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in rest] == [("m2", "2"), ("m3", "2")]
