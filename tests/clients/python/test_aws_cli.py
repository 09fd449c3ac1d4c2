"""All 23 SQS actions through the aws CLI (Debian's 2.9, Query protocol),
`aws --endpoint-url ... sqs <command> --output json`, as a user would type
them. Each CLI run costs about half a second: one run per action and a few
errors."""

import json
import time

import pytest

from sqs_md5 import md5_of_attributes, md5_of_body
from shmq_clients import ACCOUNT, REGION, CliError


def arn(name):
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def test_queue_actions(daemon):
    # CreateQueue, GetQueueUrl, ListQueues, GetQueueAttributes,
    # SetQueueAttributes, PurgeQueue, DeleteQueue.
    url = daemon.cli("create-queue", "--queue-name", "cli-admin", "--attributes", "VisibilityTimeout=40")["QueueUrl"]
    assert url == f"{daemon.endpoint}/{ACCOUNT}/cli-admin"
    assert daemon.cli("create-queue", "--queue-name", "cli-admin-2")["QueueUrl"].endswith("/cli-admin-2")
    with pytest.raises(CliError) as e:
        daemon.cli("create-queue", "--queue-name", "cli-admin", "--attributes", "VisibilityTimeout=41")
    assert e.value.code == "QueueAlreadyExists"
    assert daemon.cli("get-queue-url", "--queue-name", "cli-admin") == {"QueueUrl": url}
    with pytest.raises(CliError) as e:
        daemon.cli("get-queue-url", "--queue-name", "cli-missing")
    assert e.value.code == "AWS.SimpleQueueService.NonExistentQueue"
    # --page-size: the CLI pages with MaxResults=1 and follows NextToken.
    listed = daemon.cli("list-queues", "--queue-name-prefix", "cli-admin", "--page-size", "1")
    assert sorted(listed["QueueUrls"]) == [url, url + "-2"]
    daemon.cli("set-queue-attributes", "--queue-url", url, "--attributes", "DelaySeconds=0,MaximumMessageSize=4096")
    a = daemon.cli("get-queue-attributes", "--queue-url", url, "--attribute-names", "All")["Attributes"]
    assert a["VisibilityTimeout"] == "40"
    assert a["MaximumMessageSize"] == "4096"
    assert a["QueueArn"] == arn("cli-admin")
    daemon.cli("purge-queue", "--queue-url", url)
    with pytest.raises(CliError) as e:
        daemon.cli("purge-queue", "--queue-url", url)
    assert e.value.code == "AWS.SimpleQueueService.PurgeQueueInProgress"
    daemon.cli("delete-queue", "--queue-url", url + "-2")
    assert daemon.cli("list-queues", "--queue-name-prefix", "cli-admin")["QueueUrls"] == [url]


def test_message_actions(daemon):
    # SendMessage, ReceiveMessage, ChangeMessageVisibility, DeleteMessage,
    # SendMessageBatch, ChangeMessageVisibilityBatch, DeleteMessageBatch.
    url = daemon.cli("create-queue", "--queue-name", "cli-messages")["QueueUrl"]
    attributes = {
        "text": {"DataType": "String", "StringValue": "héllo"},
        "n": {"DataType": "Number.int", "StringValue": "7"},
        "raw": {"DataType": "Binary", "BinaryValue": "AAEC/w=="},  # the CLI takes base64
    }
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
    sent = daemon.cli(
        "send-message", "--queue-url", url, "--message-body", "cli body ✓",
        "--message-attributes", json.dumps(attributes),
        "--message-system-attributes", json.dumps({"AWSTraceHeader": {"DataType": "String", "StringValue": trace}}),
    )
    expected = dict(attributes, raw={"DataType": "Binary", "BinaryValue": b"\x00\x01\x02\xff"})
    assert sent["MD5OfMessageBody"] == md5_of_body("cli body ✓")
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(expected)
    got = daemon.cli("receive-message", "--queue-url", url, "--attribute-names", "All",
                     "--message-attribute-names", "All", "--wait-time-seconds", "5", "--visibility-timeout", "60")
    [m] = got["Messages"]
    assert m["MessageId"] == sent["MessageId"]
    assert m["Body"] == "cli body ✓"
    assert m["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert m["MessageAttributes"]["raw"]["BinaryValue"] == "AAEC/w=="
    assert m["Attributes"]["AWSTraceHeader"] == trace
    daemon.cli("change-message-visibility", "--queue-url", url, "--receipt-handle", m["ReceiptHandle"],
               "--visibility-timeout", "0")
    [m] = daemon.cli("receive-message", "--queue-url", url, "--wait-time-seconds", "5")["Messages"]
    daemon.cli("delete-message", "--queue-url", url, "--receipt-handle", m["ReceiptHandle"])
    with pytest.raises(CliError) as e:
        daemon.cli("delete-message", "--queue-url", url, "--receipt-handle", "garbage")
    assert e.value.code == "ReceiptHandleIsInvalid"

    batch = daemon.cli("send-message-batch", "--queue-url", url, "--entries", json.dumps(
        [{"Id": f"e{i}", "MessageBody": f"batch {i}"} for i in range(3)]))
    assert sorted(s["Id"] for s in batch["Successful"]) == ["e0", "e1", "e2"]
    assert all(s["MD5OfMessageBody"] == md5_of_body(f"batch {s['Id'][1:]}") for s in batch["Successful"])
    received = []
    deadline = time.monotonic() + 5
    while len(received) < 3 and time.monotonic() < deadline:
        received += daemon.cli("receive-message", "--queue-url", url, "--max-number-of-messages", "10",
                               "--wait-time-seconds", "2").get("Messages", [])
    assert sorted(m["Body"] for m in received) == ["batch 0", "batch 1", "batch 2"]
    handles = [{"Id": f"h{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)]
    changed = daemon.cli("change-message-visibility-batch", "--queue-url", url, "--entries",
                         json.dumps([dict(h, VisibilityTimeout=120) for h in handles]))
    assert sorted(s["Id"] for s in changed["Successful"]) == ["h0", "h1", "h2"]
    deleted = daemon.cli("delete-message-batch", "--queue-url", url, "--entries", json.dumps(handles))
    assert sorted(s["Id"] for s in deleted["Successful"]) == ["h0", "h1", "h2"]
    with pytest.raises(CliError) as e:
        daemon.cli("receive-message", "--queue-url", url, "--max-number-of-messages", "11")
    assert e.value.code == "InvalidParameterValue"


def test_metadata_actions(daemon):
    # TagQueue, ListQueueTags, UntagQueue, AddPermission, RemovePermission,
    # ListDeadLetterSourceQueues, StartMessageMoveTask, ListMessageMoveTasks,
    # CancelMessageMoveTask.
    dlq = daemon.cli("create-queue", "--queue-name", "cli-dlq")["QueueUrl"]
    redrive = json.dumps({"deadLetterTargetArn": arn("cli-dlq"), "maxReceiveCount": "3"})
    source = daemon.cli("create-queue", "--queue-name", "cli-source",
                        "--attributes", json.dumps({"RedrivePolicy": redrive}))["QueueUrl"]

    daemon.cli("tag-queue", "--queue-url", source, "--tags", "team=core,env=test")
    assert daemon.cli("list-queue-tags", "--queue-url", source)["Tags"] == {"team": "core", "env": "test"}
    daemon.cli("untag-queue", "--queue-url", source, "--tag-keys", "env")
    assert daemon.cli("list-queue-tags", "--queue-url", source)["Tags"] == {"team": "core"}

    daemon.cli("add-permission", "--queue-url", source, "--label", "cli-grant",
               "--aws-account-ids", "111122223333", "--actions", "SendMessage")
    a = daemon.cli("get-queue-attributes", "--queue-url", source, "--attribute-names", "Policy")["Attributes"]
    [statement] = json.loads(a["Policy"])["Statement"]
    assert statement["Sid"] == "cli-grant"
    assert statement["Resource"] == arn("cli-source")
    daemon.cli("remove-permission", "--queue-url", source, "--label", "cli-grant")
    a = daemon.cli("get-queue-attributes", "--queue-url", source, "--attribute-names", "Policy").get("Attributes", {})
    assert "Policy" not in a or json.loads(a["Policy"]).get("Statement", []) == []

    assert daemon.cli("list-dead-letter-source-queues", "--queue-url", dlq)["queueUrls"] == [source]

    # Thirty messages at one a second: the task still runs when it is
    # cancelled, however slowly the CLI starts on a loaded machine.
    sqs = daemon.client()
    for batch in range(3):
        sqs.send_message_batch(QueueUrl=dlq, Entries=[{"Id": f"d{i}", "MessageBody": f"dead {batch}.{i}"}
                                                      for i in range(10)])
    handle = daemon.cli("start-message-move-task", "--source-arn", arn("cli-dlq"),
                        "--destination-arn", arn("cli-source"), "--max-number-of-messages-per-second", "1")["TaskHandle"]
    tasks = daemon.cli("list-message-move-tasks", "--source-arn", arn("cli-dlq"))["Results"]
    assert tasks[0]["SourceArn"] == arn("cli-dlq")
    assert tasks[0]["DestinationArn"] == arn("cli-source")
    assert tasks[0]["Status"] == "RUNNING"
    cancelled = daemon.cli("cancel-message-move-task", "--task-handle", handle)
    assert 0 <= cancelled["ApproximateNumberOfMessagesMoved"] < 30
