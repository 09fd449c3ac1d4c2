"""The same queues through HTTP (boto3) and through libshmq (shmqctl)."""

import json
import threading
import time

from sqs_md5 import md5_of_body


def test_sent_over_http_received_through_libshmq(daemon, sqs, unique):
    name = unique("http-to-lib")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sent = sqs.send_message(QueueUrl=url, MessageBody="from boto3 ✓")
    r = daemon.shmqctl("receive", name, "--json", "--delete", "--wait", "5")
    messages = json.loads(r.stdout)["Messages"]
    assert [(m["MessageId"], m["Body"]) for m in messages] == [(sent["MessageId"], "from boto3 ✓")]
    # Deleted through the library: gone over HTTP too.
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert a["ApproximateNumberOfMessages"] == "0"
    assert a["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_sent_through_libshmq_received_over_http(daemon, sqs, unique):
    name = unique("lib-to-http")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    r = daemon.shmqctl("--json", "send", name, "from shmqctl ✓")
    message_id = json.loads(r.stdout)["MessageId"]
    m = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, AttributeNames=["All"])["Messages"][0]
    assert m["MessageId"] == message_id
    assert m["Body"] == "from shmqctl ✓"
    assert m["MD5OfBody"] == md5_of_body("from shmqctl ✓")
    assert m["Attributes"]["ApproximateReceiveCount"] == "1"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_queue_created_through_libshmq_is_listed_over_http(daemon, sqs, unique):
    name = unique("made-by-shmqctl")
    daemon.shmqctl("create-queue", name, "-a", "VisibilityTimeout=77")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    assert a == {"VisibilityTimeout": "77"}


def test_long_poll_over_http_is_woken_by_a_send_from_another_process(daemon, sqs, unique):
    name = unique("wake")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    result = {}

    def poll():
        started = time.monotonic()
        r = daemon.client().receive_message(QueueUrl=url, WaitTimeSeconds=15)
        result["elapsed"] = time.monotonic() - started
        result["bodies"] = [m["Body"] for m in r.get("Messages", [])]

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.7)
    daemon.shmqctl("send", name, "from another process")
    t.join(20)
    assert result["bodies"] == ["from another process"]
    assert result["elapsed"] < 10
