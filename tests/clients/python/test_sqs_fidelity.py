"""What Amazon SQS answers, through boto3 (Query protocol), where the other
suites do not pin it down yet: a standard queue's expired receipt handle,
what a message keeps in a dead-letter queue, and the error texts of
message attributes, permission labels and batches, in AWS's words."""

import json
import time

import pytest
from botocore.exceptions import ClientError

from shmq_clients import error_code, http_status

TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def eventually(predicate, timeout=10.0, interval=0.1):
    """predicate()'s first true value, or its last value after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def counts(sqs, url):
    a = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def failure(call):
    with pytest.raises(ClientError) as e:
        call()
    return error_code(e), e.value.response["Error"]["Message"]


def test_a_standard_queue_deletes_with_a_handle_whose_visibility_timeout_ran_out(queue, sqs):
    # As AWS answers a standard queue (a FIFO queue refuses the handle).
    sqs.send_message(QueueUrl=queue, MessageBody="late delete")
    m = sqs.receive_message(QueueUrl=queue, VisibilityTimeout=1, WaitTimeSeconds=5)["Messages"][0]
    assert eventually(lambda: counts(sqs, queue) == (1, 0)), "the message did not become visible again"
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    assert counts(sqs, queue) == (0, 0)
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)


def test_a_message_moved_to_the_dead_letter_queue_keeps_its_attributes_and_trace_header(sqs, unique):
    dlq = sqs.create_queue(QueueName=unique("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = sqs.create_queue(QueueName=unique("source"), Attributes={
        "VisibilityTimeout": "1",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"}),
    })["QueueUrl"]
    source_arn = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"color": {"DataType": "String", "StringValue": "red"},
                  "count": {"DataType": "Number", "StringValue": "7"}}
    sent = sqs.send_message(QueueUrl=source, MessageBody="poison", MessageAttributes=attributes,
                            MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": TRACE}})
    assert sqs.receive_message(QueueUrl=source, WaitTimeSeconds=5)["Messages"][0]["MessageId"] == sent["MessageId"]

    def in_dlq():
        sqs.receive_message(QueueUrl=source)  # what moves it, once its visibility ran out
        return sqs.receive_message(QueueUrl=dlq, AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages")

    moved = eventually(in_dlq)
    assert moved, "the message did not reach the dead-letter queue"
    m = moved[0]
    assert (m["MessageId"], m["Body"]) == (sent["MessageId"], "poison")
    assert m["MessageAttributes"] == attributes
    assert m["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert m["Attributes"]["AWSTraceHeader"] == TRACE
    assert m["Attributes"]["DeadLetterQueueSourceArn"] == source_arn
    assert m["Attributes"]["ApproximateReceiveCount"] == "2"


@pytest.mark.parametrize(
    "attributes, message",
    [
        ({"has space": {"DataType": "String", "StringValue": "x"}},
         "The message attribute name 'has space' is invalid. Attribute name can contain A-Z, a-z, 0-9, underscore "
         "(_), hyphen (-), and period (.) characters."),
        ({"t": {"DataType": "Integer", "StringValue": "1"}},
         "The message attribute 't' has an invalid message attribute type, the set of supported type prefixes is "
         "Binary, Number, and String."),
        ({"e": {"DataType": "String", "StringValue": ""}},
         "Message (user) attribute 'e' must contain a non-empty value of type 'String'."),
    ],
    ids=["bad-name", "bad-type", "empty-value"],
)
def test_message_attribute_errors_in_aws_words(queue, sqs, attributes, message):
    assert failure(lambda: sqs.send_message(QueueUrl=queue, MessageBody="x", MessageAttributes=attributes)) == (
        "InvalidParameterValue", message)


def test_permission_label_errors_in_aws_words(queue, sqs):
    sqs.add_permission(QueueUrl=queue, Label="once", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    assert failure(lambda: sqs.add_permission(
        QueueUrl=queue, Label="once", AWSAccountIds=["111122223333"], Actions=["SendMessage"])) == (
        "InvalidParameterValue", "Value once for parameter Label is invalid. Reason: Already exists.")
    assert failure(lambda: sqs.remove_permission(QueueUrl=queue, Label="never")) == (
        "InvalidParameterValue", "Value never for parameter Label is invalid. Reason: can't find label.")


@pytest.mark.parametrize("action, extra", [("delete_message_batch", {}),
                                           ("change_message_visibility_batch", {"VisibilityTimeout": 1})],
                         ids=["delete", "change-visibility"])
def test_delete_and_change_visibility_batch_errors_in_aws_words(queue, sqs, action, extra):
    def batch(entries):
        return lambda: getattr(sqs, action)(QueueUrl=queue, Entries=entries)

    def entry(entry_id):
        return {"Id": entry_id, "ReceiptHandle": "h", **extra}

    assert failure(batch([entry(f"e{i}") for i in range(11)])) == (
        "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        "Maximum number of entries per request are 10. You have sent 11.")
    assert failure(batch([entry("same"), entry("same")])) == (
        "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "Id same repeated.")
    assert failure(batch([entry("a b")])) == (
        "AWS.SimpleQueueService.InvalidBatchEntryId",
        "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 "
        "letters long.")


def test_a_fifo_send_without_a_group_id_in_aws_words(fifo_queue, sqs):
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=fifo_queue, MessageBody="x", MessageDeduplicationId="d")
    assert (error_code(e), http_status(e), e.value.response["Error"]["Message"]) == (
        "MissingParameter", 400, "The request must contain the parameter MessageGroupId.")
