"""The bridge's developer endpoint GET /_aws/sqs/messages?QueueUrl=...
(LocalStack's path): a queue's messages without receiving them, as
ReceiveMessage would show them, in XML or (Accept: application/json) JSON."""

import json
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

from shmq_clients import ACCOUNT, Daemon

NS = "{http://queue.amazonaws.com/doc/2012-11-05/}"


def get(url, accept=None):
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def peek_url(daemon, queue_url, **flags):
    return f"{daemon.endpoint}/_aws/sqs/messages?" + urllib.parse.urlencode({"QueueUrl": queue_url, **flags})


def test_messages_are_shown_without_being_received(daemon, sqs, unique):
    url = sqs.create_queue(QueueName=unique("peeked"))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="first", MessageAttributes={"kind": {"DataType": "String",
                                                                                  "StringValue": "report"}})
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=600)
    sqs.send_message(QueueUrl=url, MessageBody="third")
    taken = sqs.receive_message(QueueUrl=url, VisibilityTimeout=600)["Messages"]
    assert [m["Body"] for m in taken] == ["first"]

    for _ in range(3):
        status, body = get(peek_url(daemon, url), accept="application/json")
        assert status == 200, body
        shown = json.loads(body)["Messages"]
        assert [m["Body"] for m in shown] == ["third"], "visible messages only, by default"
        assert shown[0]["Attributes"]["ApproximateReceiveCount"] == "0"
        assert "ReceiptHandle" not in shown[0], "a look receives nothing"

    status, body = get(peek_url(daemon, url, ShowInvisible="true", ShowDelayed="true"))
    assert status == 200, body
    messages = ET.fromstring(body).findall(f"{NS}ReceiveMessageResult/{NS}Message")
    assert [m.find(f"{NS}Body").text for m in messages] == ["first", "later", "third"], "send order"
    first = messages[0]
    assert first.find(f"{NS}MessageAttribute/{NS}Name").text == "kind"

    # The first N in send order, of which the visible: here none.
    status, body = get(peek_url(daemon, url, MaxNumberOfMessages="1"), accept="application/json")
    assert (status, json.loads(body).get("Messages", [])) == (200, [])
    status, body = get(peek_url(daemon, url, MaxNumberOfMessages="11"), accept="application/json")
    assert status == 400 and json.loads(body)["__type"].endswith("#InvalidParameterValueException")

    # None of it counted: the next receive is the message's first.
    got = sqs.receive_message(QueueUrl=url, AttributeNames=["ApproximateReceiveCount"])["Messages"]
    assert [(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in got] == [("third", "1")]


def test_a_peek_without_a_queue_is_an_sqs_error(daemon):
    status, body = get(f"{daemon.endpoint}/_aws/sqs/messages", accept="application/json")
    assert status == 400
    assert json.loads(body)["__type"] == "com.amazonaws.sqs#MissingRequiredParameterException"
    status, body = get(peek_url(daemon, f"{daemon.endpoint}/{ACCOUNT}/no-such-queue"))
    assert status == 400
    assert ET.fromstring(body).find(f"{NS}Error/{NS}Code").text == "AWS.SimpleQueueService.NonExistentQueue"


def test_with_signatures_checked_an_unsigned_peek_is_refused():
    d = Daemon(["--auth", "key:secret"])
    try:
        url = d.client("key", "secret").create_queue(QueueName="private")["QueueUrl"]
        status, body = get(peek_url(d, url))
        assert status == 403, body
        assert ET.fromstring(body).find(f"{NS}Error/{NS}Code").text == "MissingAuthenticationToken"
    finally:
        d.stop()
