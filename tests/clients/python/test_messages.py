"""Message actions through boto3 (Query protocol): SendMessage,
SendMessageBatch, ReceiveMessage (long polls included), DeleteMessage,
DeleteMessageBatch, ChangeMessageVisibility, ChangeMessageVisibilityBatch;
MD5 digests checked against sqs_md5, an implementation of AWS's algorithm."""

import threading
import time

import pytest
from botocore.exceptions import ClientError

from sqs_md5 import md5_of_attributes, md5_of_body
from shmq_clients import ACCOUNT, error_code

ATTRIBUTES = {
    "name": {"DataType": "String", "StringValue": "Zoë ✓"},
    "count": {"DataType": "Number", "StringValue": "42"},
    "ratio": {"DataType": "Number.float", "StringValue": "3.25"},
    "blob": {"DataType": "Binary", "BinaryValue": bytes(range(256))},
    "thumbnail": {"DataType": "Binary.png", "BinaryValue": b"\x89PNG\r\n\x1a\n"},
    "color.primary": {"DataType": "String.colour", "StringValue": "red"},
    "color.secondary": {"DataType": "String", "StringValue": "blue"},
}
TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def receive_one(sqs, queue, **kwargs):
    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5, **kwargs).get("Messages", [])
    assert len(messages) == 1, messages
    return messages[0]


def drain(sqs, queue, expect, **kwargs):
    """Receives until `expect` messages came (or 5 s of nothing)."""
    got = []
    while len(got) < expect:
        batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=5, **kwargs)
        if "Messages" not in batch:
            break
        got += batch["Messages"]
    return got


def test_send_message_digests(queue, sqs):
    body = "héllo ✓ 𝄞 <xml & friends>"
    sent = sqs.send_message(
        QueueUrl=queue,
        MessageBody=body,
        MessageAttributes=ATTRIBUTES,
        MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": TRACE}},
    )
    assert sent["MD5OfMessageBody"] == md5_of_body(body)
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(ATTRIBUTES)
    assert sent["MD5OfMessageSystemAttributes"] == md5_of_attributes(
        {"AWSTraceHeader": {"DataType": "String", "StringValue": TRACE}}
    )
    m = receive_one(sqs, queue, MessageAttributeNames=["All"], AttributeNames=["AWSTraceHeader"])
    assert m["MessageId"] == sent["MessageId"]
    assert m["Body"] == body
    assert m["MD5OfBody"] == md5_of_body(body)
    assert m["MessageAttributes"] == ATTRIBUTES
    assert m["MD5OfMessageAttributes"] == md5_of_attributes(ATTRIBUTES)
    assert m["Attributes"] == {"AWSTraceHeader": TRACE}


def test_the_x_amzn_trace_id_header_becomes_the_messages_aws_trace_header(daemon, queue):
    # As on AWS (X-Ray): the request header, where the message sets no
    # AWSTraceHeader of its own; one it sets wins.
    traced = daemon.client()

    def add_trace_header(request, **_):
        request.headers["X-Amzn-Trace-Id"] = TRACE

    traced.meta.events.register("before-sign.sqs.*", add_trace_header)
    traced.send_message(QueueUrl=queue, MessageBody="traced")
    m = receive_one(traced, queue, AttributeNames=["AWSTraceHeader"])
    assert m.get("Attributes") == {"AWSTraceHeader": TRACE}
    traced.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    own = "Root=1-00000000-000000000000000000000000;Sampled=0"
    traced.send_message(QueueUrl=queue, MessageBody="its own",
                        MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": own}})
    assert receive_one(traced, queue, AttributeNames=["AWSTraceHeader"])["Attributes"] == {"AWSTraceHeader": own}


def test_send_message_without_attributes_has_no_attribute_digest(queue, sqs):
    sent = sqs.send_message(QueueUrl=queue, MessageBody="plain")
    assert sent["MD5OfMessageBody"] == md5_of_body("plain")
    assert "MD5OfMessageAttributes" not in sent
    assert "MD5OfMessageSystemAttributes" not in sent
    m = receive_one(sqs, queue, MessageAttributeNames=["All"])
    assert "MessageAttributes" not in m
    assert "MD5OfMessageAttributes" not in m


def test_receive_selects_message_attributes_by_name_and_prefix(queue, sqs):
    sqs.send_message(QueueUrl=queue, MessageBody="x", MessageAttributes=ATTRIBUTES)

    def received(names):
        m = receive_one(sqs, queue, MessageAttributeNames=names, VisibilityTimeout=0)
        return m.get("MessageAttributes", {}), m.get("MD5OfMessageAttributes")

    colors = {k: v for k, v in ATTRIBUTES.items() if k.startswith("color.")}
    assert received(["color.*"]) == (colors, md5_of_attributes(colors))
    assert received(["count"]) == ({"count": ATTRIBUTES["count"]}, md5_of_attributes({"count": ATTRIBUTES["count"]}))
    assert received([".*"]) == (ATTRIBUTES, md5_of_attributes(ATTRIBUTES))
    assert received(["nothing-like-this"]) == ({}, None)


def test_a_name_ending_in_dot_star_selects_the_names_that_start_with_what_comes_before(queue, sqs):
    # As AWS answers: "Hel.*" is Hello and Help.Me, "Custom.*" is Custom1;
    # "All", ".*" and "*" are every attribute.
    attrs = {name: {"DataType": "String", "StringValue": name.lower()}
             for name in ("Hello", "Help.Me", "Other", "Custom1")}
    sqs.send_message(QueueUrl=queue, MessageBody="x", MessageAttributes=attrs)

    def received(names):
        m = receive_one(sqs, queue, MessageAttributeNames=names, VisibilityTimeout=0)
        return sorted(m.get("MessageAttributes", {}))

    assert received(["Hel.*"]) == ["Hello", "Help.Me"]
    assert received(["Custom.*"]) == ["Custom1"]
    assert received(["Help.*"]) == ["Help.Me"]
    for every in (["All"], [".*"], ["*"]):
        assert received(every) == sorted(attrs), every


def test_receive_with_an_empty_list_of_attribute_names(queue, sqs):
    # botocore sends an empty list as "MessageAttributeName=" (no index).
    sqs.send_message(QueueUrl=queue, MessageBody="x", MessageAttributes=ATTRIBUTES)
    m = receive_one(sqs, queue, MessageAttributeNames=[], AttributeNames=[])
    assert "MessageAttributes" not in m
    assert "Attributes" not in m


def test_receive_system_attributes_all_and_specific(queue, sqs):
    sqs.send_message(QueueUrl=queue, MessageBody="x")
    m = receive_one(sqs, queue, AttributeNames=["All"], VisibilityTimeout=0)
    a = m["Attributes"]
    assert a["SenderId"]
    assert a["ApproximateReceiveCount"] == "1"
    assert int(a["SentTimestamp"]) <= int(a["ApproximateFirstReceiveTimestamp"])
    assert abs(int(a["SentTimestamp"]) / 1000 - time.time()) < 60
    m = receive_one(sqs, queue, AttributeNames=["ApproximateReceiveCount"], VisibilityTimeout=0)
    assert m["Attributes"] == {"ApproximateReceiveCount": "2"}
    m = receive_one(sqs, queue, MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
                    VisibilityTimeout=0)
    assert set(m["Attributes"]) == {"SentTimestamp", "ApproximateReceiveCount"}
    m = receive_one(sqs, queue, MessageSystemAttributeNames=["All"])
    assert m["Attributes"]["ApproximateReceiveCount"] == "4"


def test_receive_without_attribute_names_returns_no_attributes(queue, sqs):
    sqs.send_message(QueueUrl=queue, MessageBody="x", MessageAttributes=ATTRIBUTES)
    m = receive_one(sqs, queue)
    assert "Attributes" not in m
    assert "MessageAttributes" not in m


def test_receive_max_number_of_messages(queue, sqs):
    bodies = {f"m{i}" for i in range(5)}
    for b in sorted(bodies):
        sqs.send_message(QueueUrl=queue, MessageBody=b)
    first = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=3)["Messages"]
    assert 1 <= len(first) <= 3
    rest = drain(sqs, queue, 5 - len(first))
    assert {m["Body"] for m in first + rest} == bodies
    assert len(first + rest) == 5


def test_receive_visibility_timeout(queue, sqs):
    sqs.send_message(QueueUrl=queue, MessageBody="comes back")
    m = receive_one(sqs, queue, VisibilityTimeout=1)
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)
    again = receive_one(sqs, queue, AttributeNames=["ApproximateReceiveCount"])  # waits up to 5 s
    assert again["MessageId"] == m["MessageId"]
    assert again["ReceiptHandle"] != m["ReceiptHandle"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"


def test_long_poll_is_woken_by_a_send_from_another_thread(daemon, queue, sqs):
    result = {}

    def poll():
        started = time.monotonic()
        # Its own client: a boto3 client is not shared across threads here.
        r = daemon.client().receive_message(QueueUrl=queue, WaitTimeSeconds=15)
        result["elapsed"] = time.monotonic() - started
        result["messages"] = r.get("Messages", [])

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.7)
    sqs.send_message(QueueUrl=queue, MessageBody="wake up")
    t.join(20)
    assert not t.is_alive()
    assert [m["Body"] for m in result["messages"]] == ["wake up"]
    assert result["elapsed"] < 10


def test_long_poll_on_an_empty_queue_waits_then_returns_nothing(queue, sqs):
    started = time.monotonic()
    r = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)
    assert "Messages" not in r
    assert time.monotonic() - started >= 0.9


def test_queue_receive_wait_time_is_the_default_wait(sqs, unique):
    url = sqs.create_queue(QueueName=unique("waits"), Attributes={"ReceiveMessageWaitTimeSeconds": "1"})["QueueUrl"]
    started = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    assert time.monotonic() - started >= 0.9
    # A change of the attribute applies to the next receive.
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"ReceiveMessageWaitTimeSeconds": "0"})
    started = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    assert time.monotonic() - started < 0.5


def test_delay_seconds(queue, sqs):
    sqs.send_message(QueueUrl=queue, MessageBody="later", DelaySeconds=1)
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)
    a = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert a["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"
    assert receive_one(sqs, queue)["Body"] == "later"


def test_delete_message(queue, sqs):
    sqs.send_message(QueueUrl=queue, MessageBody="done")
    m = receive_one(sqs, queue, VisibilityTimeout=1)
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    time.sleep(1.2)
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)
    a = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert a["ApproximateNumberOfMessages"] == "0"
    assert a["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_delete_message_with_a_garbage_receipt_handle(queue, sqs):
    with pytest.raises(ClientError) as e:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle="not-a-receipt-handle")
    assert error_code(e) == "ReceiptHandleIsInvalid"
    assert e.value.response["Error"]["Message"] == "The input receipt handle is invalid."


def test_delete_message_batch(queue, sqs):
    for i in range(3):
        sqs.send_message(QueueUrl=queue, MessageBody=f"m{i}")
    got = drain(sqs, queue, 3)
    entries = [{"Id": f"e{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
    entries.append({"Id": "bad", "ReceiptHandle": "garbage"})
    r = sqs.delete_message_batch(QueueUrl=queue, Entries=entries)
    assert sorted(s["Id"] for s in r["Successful"]) == ["e0", "e1", "e2"]
    assert len(r["Failed"]) == 1
    failed = r["Failed"][0]
    assert failed["Id"] == "bad"
    assert failed["Code"] == "ReceiptHandleIsInvalid"
    assert failed["Message"] == 'The input receipt handle "garbage" is not a valid receipt handle.'
    assert failed["SenderFault"] is True
    a = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert a["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_change_message_visibility_to_zero_makes_it_visible(queue, sqs):
    sqs.send_message(QueueUrl=queue, MessageBody="again")
    m = receive_one(sqs, queue, VisibilityTimeout=300)
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    again = sqs.receive_message(QueueUrl=queue)["Messages"][0]
    assert again["MessageId"] == m["MessageId"]


def test_change_message_visibility_with_a_handle_whose_timeout_ran_out(queue, sqs):
    # As AWS answers a standard queue: 200, and the message stays visible.
    sqs.send_message(QueueUrl=queue, MessageBody="x")
    m = receive_one(sqs, queue, VisibilityTimeout=300)
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=300)
    assert receive_one(sqs, queue)["MessageId"] == m["MessageId"]


def test_change_message_visibility_of_a_deleted_message(queue, sqs):
    sqs.send_message(QueueUrl=queue, MessageBody="x")
    m = receive_one(sqs, queue)
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    with pytest.raises(ClientError) as e:
        sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=10)
    assert error_code(e) == "InvalidParameterValue"
    assert e.value.response["Error"]["Message"] == (
        f"Value {m['ReceiptHandle']} for parameter ReceiptHandle is invalid. Reason: Message does not exist or is "
        "not available for visibility timeout change.")


def test_change_message_visibility_with_a_garbage_handle(queue, sqs):
    with pytest.raises(ClientError) as e:
        sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle="garbage", VisibilityTimeout=10)
    assert error_code(e) == "ReceiptHandleIsInvalid"
    assert e.value.response["Error"]["Message"] == "The input receipt handle is invalid."


def test_change_message_visibility_out_of_range(queue, sqs):
    sqs.send_message(QueueUrl=queue, MessageBody="x")
    m = receive_one(sqs, queue)
    with pytest.raises(ClientError) as e:
        sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=43201)
    assert error_code(e) == "InvalidParameterValue"


def test_change_message_visibility_batch(queue, sqs):
    for i in range(2):
        sqs.send_message(QueueUrl=queue, MessageBody=f"m{i}")
    got = drain(sqs, queue, 2, VisibilityTimeout=300)
    assert len(got) == 2
    entries = [{"Id": f"e{i}", "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(got)]
    entries.append({"Id": "bad", "ReceiptHandle": "garbage", "VisibilityTimeout": 0})
    r = sqs.change_message_visibility_batch(QueueUrl=queue, Entries=entries)
    assert sorted(s["Id"] for s in r["Successful"]) == ["e0", "e1"]
    assert [(f["Id"], f["Code"], f["SenderFault"], f["Message"]) for f in r["Failed"]] == [
        ("bad", "ReceiptHandleIsInvalid", True, 'The input receipt handle "garbage" is not a valid receipt handle.')]
    again = drain(sqs, queue, 2)
    assert len(again) == 2
    # A handle of the queue's whose message was received again since.
    r = sqs.change_message_visibility_batch(QueueUrl=queue, Entries=[
        {"Id": "old", "ReceiptHandle": got[0]["ReceiptHandle"], "VisibilityTimeout": 5}])
    assert [(f["Id"], f["Code"], f["Message"]) for f in r["Failed"]] == [(
        "old", "InvalidParameterValue", f"Value {got[0]['ReceiptHandle']} for parameter ReceiptHandle is invalid. "
        "Reason: Message does not exist or is not available for visibility timeout change.")]


def test_send_message_batch(queue, sqs):
    entries = [
        {"Id": "plain", "MessageBody": "one"},
        {"Id": "with-attributes", "MessageBody": "two", "MessageAttributes": ATTRIBUTES},
        {"Id": "delayed_0", "MessageBody": "three", "DelaySeconds": 0},
    ]
    r = sqs.send_message_batch(QueueUrl=queue, Entries=entries)
    assert r.get("Failed", []) == []
    by_id = {s["Id"]: s for s in r["Successful"]}
    assert set(by_id) == {"plain", "with-attributes", "delayed_0"}
    for e in entries:
        s = by_id[e["Id"]]
        assert s["MessageId"]
        assert s["MD5OfMessageBody"] == md5_of_body(e["MessageBody"])
        if "MessageAttributes" in e:
            assert s["MD5OfMessageAttributes"] == md5_of_attributes(e["MessageAttributes"])
        else:
            assert "MD5OfMessageAttributes" not in s
    got = drain(sqs, queue, 3, MessageAttributeNames=["All"])
    assert sorted(m["Body"] for m in got) == ["one", "three", "two"]
    two = next(m for m in got if m["Body"] == "two")
    assert two["MessageAttributes"] == ATTRIBUTES
    assert two["MessageId"] == by_id["with-attributes"]["MessageId"]


def test_send_message_batch_reports_failures_per_entry(queue, sqs):
    r = sqs.send_message_batch(
        QueueUrl=queue,
        Entries=[
            {"Id": "good", "MessageBody": "fine"},
            {"Id": "control-char", "MessageBody": "bad \x01 body"},
            {"Id": "too-late", "MessageBody": "x", "DelaySeconds": 901},
        ],
    )
    assert [s["Id"] for s in r["Successful"]] == ["good"]
    failed = {f["Id"]: f for f in r["Failed"]}
    assert set(failed) == {"control-char", "too-late"}
    assert failed["control-char"]["Code"] == "InvalidMessageContents"
    assert failed["too-late"]["Code"] == "InvalidParameterValue"
    assert all(f["SenderFault"] is True for f in failed.values())
    assert [m["Body"] for m in drain(sqs, queue, 1)] == ["fine"]


@pytest.mark.parametrize(
    "entries, code",
    [
        ([], "AWS.SimpleQueueService.EmptyBatchRequest"),
        ([{"Id": f"e{i}", "MessageBody": "x"} for i in range(11)], "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"),
        ([{"Id": "same", "MessageBody": "x"}, {"Id": "same", "MessageBody": "y"}],
         "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"),
        ([{"Id": "not valid!", "MessageBody": "x"}], "AWS.SimpleQueueService.InvalidBatchEntryId"),
    ],
    ids=["empty", "eleven", "duplicate-ids", "bad-id"],
)
def test_send_message_batch_errors(queue, sqs, entries, code):
    with pytest.raises(ClientError) as e:
        sqs.send_message_batch(QueueUrl=queue, Entries=entries)
    assert error_code(e) == code
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)


@pytest.mark.parametrize(
    "action, entries, code",
    [
        ("delete_message_batch", [], "AWS.SimpleQueueService.EmptyBatchRequest"),
        ("delete_message_batch", [{"Id": "a", "ReceiptHandle": "h"}] * 2, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"),
        ("delete_message_batch", [{"Id": f"e{i}", "ReceiptHandle": "h"} for i in range(11)],
         "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"),
        ("change_message_visibility_batch", [], "AWS.SimpleQueueService.EmptyBatchRequest"),
        ("change_message_visibility_batch", [{"Id": "a", "ReceiptHandle": "h", "VisibilityTimeout": 1}] * 2,
         "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"),
        ("change_message_visibility_batch",
         [{"Id": f"e{i}", "ReceiptHandle": "h", "VisibilityTimeout": 1} for i in range(11)],
         "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"),
        ("change_message_visibility_batch", [{"Id": "bad id", "ReceiptHandle": "h", "VisibilityTimeout": 1}],
         "AWS.SimpleQueueService.InvalidBatchEntryId"),
    ],
    ids=["delete-empty", "delete-duplicate-ids", "delete-eleven", "visibility-empty", "visibility-duplicate-ids",
         "visibility-eleven", "visibility-bad-id"],
)
def test_delete_and_change_visibility_batch_errors(queue, sqs, action, entries, code):
    with pytest.raises(ClientError) as e:
        getattr(sqs, action)(QueueUrl=queue, Entries=entries)
    assert error_code(e) == code


@pytest.mark.parametrize(
    "kwargs",
    [{"MaxNumberOfMessages": 11}, {"MaxNumberOfMessages": 0}, {"WaitTimeSeconds": 21}, {"VisibilityTimeout": 43201}],
    ids=["max-11", "max-0", "wait-21", "visibility-43201"],
)
def test_receive_parameter_out_of_range(queue, sqs, kwargs):
    with pytest.raises(ClientError) as e:
        sqs.receive_message(QueueUrl=queue, **kwargs)
    assert error_code(e) == "InvalidParameterValue"


@pytest.mark.parametrize("body", ["nul \x00 byte", "bell \x07", "\ufffe non-character", "lone \x1f unit separator"],
                         ids=["nul", "bell", "fffe", "x1f"])
def test_send_message_with_characters_sqs_refuses(queue, sqs, body):
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    assert error_code(e) == "InvalidMessageContents"


def test_send_message_with_every_allowed_kind_of_character(queue, sqs):
    body = "tab\t newline\n return\r ascii ~ bmp \ud7ff \ue000 \ufffd astral \U0001f600 \U0010ffff"
    sent = sqs.send_message(QueueUrl=queue, MessageBody=body)
    assert sent["MD5OfMessageBody"] == md5_of_body(body)
    assert receive_one(sqs, queue)["Body"] == body


def test_send_message_larger_than_maximum_message_size(sqs, unique):
    url = sqs.create_queue(QueueName=unique("small"), Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x" * 1024)
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x" * 1025)
    assert error_code(e) == "InvalidParameterValue"


def test_send_message_empty_body(queue, sqs):
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=queue, MessageBody="")
    assert error_code(e) in ("InvalidParameterValue", "MissingParameter")


def test_send_message_delay_out_of_range(queue, sqs):
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=queue, MessageBody="x", DelaySeconds=901)
    assert error_code(e) == "InvalidParameterValue"


def test_a_large_message_round_trips(queue, sqs):
    body = "0123456789abcdef" * 16384  # 256 KiB
    sent = sqs.send_message(QueueUrl=queue, MessageBody=body)
    assert sent["MD5OfMessageBody"] == md5_of_body(body)
    m = receive_one(sqs, queue)
    assert m["Body"] == body


def test_queue_url_with_another_host_name_names_the_same_queue(daemon, queue, sqs):
    other = queue.replace("127.0.0.1", "localhost")
    sqs.send_message(QueueUrl=other, MessageBody="by any name")
    assert receive_one(sqs, queue)["Body"] == "by any name"
    assert f"/{ACCOUNT}/" in queue


def test_send_message_batch_where_every_entry_fails_sends_nothing(queue, sqs):
    r = sqs.send_message_batch(
        QueueUrl=queue,
        Entries=[{"Id": "late", "MessageBody": "x", "DelaySeconds": 901},
                 {"Id": "nobody", "MessageBody": ""}],
    )
    assert r.get("Successful", []) == []
    assert sorted(f["Id"] for f in r["Failed"]) == ["late", "nobody"]
    assert "Messages" not in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)


def test_send_message_batch_too_long(queue, sqs):
    body = "x" * (200 * 1024)
    with pytest.raises(ClientError) as e:
        sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": f"e{i}", "MessageBody": body} for i in range(10)])
    assert error_code(e) == "AWS.SimpleQueueService.BatchRequestTooLong"


@pytest.mark.parametrize(
    "attributes",
    [
        {"n": {"DataType": "Number", "StringValue": "not-a-number"}},
        {"empty": {"DataType": "String", "StringValue": ""}},
        {"AWS.reserved": {"DataType": "String", "StringValue": "x"}},
        {"has space": {"DataType": "String", "StringValue": "x"}},
        {f"a{i}": {"DataType": "String", "StringValue": "x"} for i in range(11)},
        {"t": {"DataType": "Integer", "StringValue": "1"}},
    ],
    ids=["bad-number", "empty-value", "reserved-prefix", "space-in-name", "eleven", "unknown-type"],
)
def test_send_message_with_invalid_message_attributes(queue, sqs, attributes):
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=queue, MessageBody="x", MessageAttributes=attributes)
    assert error_code(e) == "InvalidParameterValue"


def test_deduplication_id_on_a_standard_queue_is_refused(queue, sqs):
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=queue, MessageBody="x", MessageDeduplicationId="d")
    assert error_code(e) == "InvalidParameterValue"


def test_change_message_visibility_batch_entry_out_of_range(queue, sqs):
    sqs.send_message(QueueUrl=queue, MessageBody="x")
    m = receive_one(sqs, queue)
    r = sqs.change_message_visibility_batch(
        QueueUrl=queue, Entries=[{"Id": "big", "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 43201}]
    )
    assert r.get("Successful", []) == []
    assert [(f["Id"], f["Code"]) for f in r["Failed"]] == [("big", "InvalidParameterValue")]


def test_purge_removes_messages_in_flight_too(queue, sqs):
    for i in range(3):
        sqs.send_message(QueueUrl=queue, MessageBody=f"m{i}")
    receive_one(sqs, queue)
    sqs.purge_queue(QueueUrl=queue)
    a = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert (a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")


def test_two_long_polls_and_one_message(daemon, queue, sqs):
    results = []

    def poll():
        r = daemon.client().receive_message(QueueUrl=queue, WaitTimeSeconds=2)
        results.append([m["Body"] for m in r.get("Messages", [])])

    threads = [threading.Thread(target=poll) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.7)
    sqs.send_message(QueueUrl=queue, MessageBody="only one")
    for t in threads:
        t.join(10)
    assert sorted(results) == [[], ["only one"]]


def test_long_polls_do_not_hold_up_other_requests(daemon, queue, sqs):
    # More long polls than the bridge has threads (2 by default): requests
    # that come after them are still served while they wait.
    pollers = [threading.Thread(target=lambda: daemon.client().receive_message(QueueUrl=queue, WaitTimeSeconds=4))
               for _ in range(8)]
    for t in pollers:
        t.start()
    time.sleep(0.7)
    started = time.monotonic()
    other = sqs.create_queue(QueueName=f"{queue.rsplit('/', 1)[1]}-other")["QueueUrl"]
    sqs.send_message(QueueUrl=other, MessageBody="x")
    assert receive_one(sqs, other)["Body"] == "x"
    sqs.list_queues()
    assert time.monotonic() - started < 2.5  # not once the polls end, 3.3 s from here
    for t in pollers:
        t.join(15)


def test_a_maximum_size_message_round_trips(queue, sqs):
    body = "é" * (1048576 // 2)  # 1 MiB of UTF-8; 3 MiB percent-encoded on the wire
    sent = sqs.send_message(QueueUrl=queue, MessageBody=body)
    assert sent["MD5OfMessageBody"] == md5_of_body(body)
    assert receive_one(sqs, queue)["Body"] == body
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=queue, MessageBody=body + "x")
    assert error_code(e) == "InvalidParameterValue"


def test_message_validation_as_aws_answers(queue, sqs):
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=queue, MessageBody="")
    assert (error_code(e), e.value.response["Error"]["Message"]) == (
        "MissingParameter", "The request must contain the parameter MessageBody.")
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=queue, MessageBody="x",
                         MessageAttributes={"a": {"DataType": "String", "StringValue": "bell \x07"}})
    assert error_code(e) == "InvalidParameterValue", "a control character in an attribute's value"
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=queue, MessageBody="x", MessageGroupId="")
    assert error_code(e) == "InvalidParameterValue", "an empty MessageGroupId on a standard queue"
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=queue, MessageBody="x", MessageDeduplicationId="d1")
    assert (error_code(e), e.value.response["Error"]["Message"]) == (
        "InvalidParameterValue", "Value d1 for parameter MessageDeduplicationId is invalid. Reason: The request "
        "include parameter that is not valid for this queue type.")
    name = "attr.1øßä"
    sqs.send_message(QueueUrl=queue, MessageBody="letters",
                     MessageAttributes={name: {"DataType": "String", "StringValue": "v"}})
    m = receive_one(sqs, queue, MessageAttributeNames=["All"])
    assert list(m["MessageAttributes"]) == [name]


def test_a_batch_is_limited_to_1_mib_whatever_the_queues_maximum_message_size(sqs, unique):
    small = sqs.create_queue(QueueName=unique("small"), Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    r = sqs.send_message_batch(QueueUrl=small, Entries=[
        {"Id": "big", "MessageBody": "b" * 2000}, {"Id": "fits", "MessageBody": "f" * 10}])
    assert [s["Id"] for s in r["Successful"]] == ["fits"]
    assert [(f["Id"], f["Code"]) for f in r["Failed"]] == [("big", "InvalidParameterValue")], "fails alone"
    large = sqs.create_queue(QueueName=unique("large"))["QueueUrl"]
    entries = [{"Id": "one", "MessageBody": "x" * 600_000}, {"Id": "two", "MessageBody": "y" * 448_577}]
    with pytest.raises(ClientError) as e:
        sqs.send_message_batch(QueueUrl=large, Entries=entries)
    assert (error_code(e), e.value.response["Error"]["Message"]) == (
        "AWS.SimpleQueueService.BatchRequestTooLong",
        "Batch requests cannot be longer than 1048576 bytes. You have sent 1048577 bytes.")
    assert "Messages" not in sqs.receive_message(QueueUrl=large)


def test_batch_and_receive_errors_in_aws_words(queue, sqs):
    def message(call):
        with pytest.raises(ClientError) as e:
            call()
        return error_code(e), e.value.response["Error"]["Message"]

    eleven = [{"Id": f"e{i}", "MessageBody": "x"} for i in range(11)]
    assert message(lambda: sqs.send_message_batch(QueueUrl=queue, Entries=eleven)) == (
        "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        "Maximum number of entries per request are 10. You have sent 11.")
    assert message(lambda: sqs.send_message_batch(QueueUrl=queue, Entries=[])) == (
        "AWS.SimpleQueueService.EmptyBatchRequest",
        "There should be at least one SendMessageBatchRequestEntry in the request.")
    assert message(lambda: sqs.delete_message_batch(QueueUrl=queue, Entries=[])) == (
        "AWS.SimpleQueueService.EmptyBatchRequest",
        "There should be at least one DeleteMessageBatchRequestEntry in the request.")
    assert message(lambda: sqs.change_message_visibility_batch(QueueUrl=queue, Entries=[])) == (
        "AWS.SimpleQueueService.EmptyBatchRequest",
        "There should be at least one ChangeMessageVisibilityBatchRequestEntry in the request.")
    twice = [{"Id": "same", "MessageBody": "a"}, {"Id": "same", "MessageBody": "b"}]
    assert message(lambda: sqs.send_message_batch(QueueUrl=queue, Entries=twice)) == (
        "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "Id same repeated.")
    assert message(lambda: sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": "a b", "MessageBody": "x"}])) == (
        "AWS.SimpleQueueService.InvalidBatchEntryId",
        "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 "
        "letters long.")
    assert message(lambda: sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=11)) == (
        "InvalidParameterValue",
        "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.")
    assert message(lambda: sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=21)) == (
        "InvalidParameterValue",
        "Value 21 for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.")


def test_size_and_name_errors_in_aws_words(sqs, unique):
    url = sqs.create_queue(QueueName=unique("small"), Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    too_large = ("InvalidParameterValue",
                 "One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes.")
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x" * 1025)
    assert (error_code(e), e.value.response["Error"]["Message"]) == too_large
    r = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "big", "MessageBody": "x" * 1025}])
    assert [(f["Code"], f["Message"]) for f in r["Failed"]] == [too_large]
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName="no spaces")
    assert (error_code(e), e.value.response["Error"]["Message"]) == (
        "InvalidParameterValue", "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
