"""Queue metadata through boto3: TagQueue, UntagQueue, ListQueueTags,
AddPermission, RemovePermission (the Policy attribute),
ListDeadLetterSourceQueues, dead-letter redrive and StartMessageMoveTask,
CancelMessageMoveTask, ListMessageMoveTasks."""

import json
import time

import pytest
from botocore.exceptions import ClientError

from shmq_clients import ACCOUNT, REGION, error_code, http_status


def arn_of(sqs, url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def eventually(predicate, timeout=8.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return value
        time.sleep(interval)


# --- tags ---------------------------------------------------------------


def test_tag_untag_list_queue_tags(queue, sqs):
    assert sqs.list_queue_tags(QueueUrl=queue).get("Tags", {}) == {}
    sqs.tag_queue(QueueUrl=queue, Tags={"team": "payments", "env": "test", "empty": ""})
    assert sqs.list_queue_tags(QueueUrl=queue)["Tags"] == {"team": "payments", "env": "test", "empty": ""}
    sqs.tag_queue(QueueUrl=queue, Tags={"team": "billing"})
    sqs.untag_queue(QueueUrl=queue, TagKeys=["env", "not-there"])
    assert sqs.list_queue_tags(QueueUrl=queue)["Tags"] == {"team": "billing", "empty": ""}


def test_create_queue_with_tags(sqs, unique):
    url = sqs.create_queue(QueueName=unique("tagged"), tags={"owner": "me"})["QueueUrl"]
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"owner": "me"}


def test_tags_of_a_missing_queue(daemon, sqs):
    url = f"{daemon.endpoint}/{ACCOUNT}/no-such-queue"
    with pytest.raises(ClientError) as e:
        sqs.list_queue_tags(QueueUrl=url)
    assert error_code(e) == "AWS.SimpleQueueService.NonExistentQueue"


def test_tag_errors_in_aws_words(queue, sqs):
    name = queue.rsplit("/", 1)[1]
    with pytest.raises(ClientError) as e:
        sqs.tag_queue(QueueUrl=queue, Tags={})
    assert error_code(e) == "MissingParameter"
    assert e.value.response["Error"]["Message"] == "The request must contain the parameter Tags."
    with pytest.raises(ClientError) as e:
        sqs.untag_queue(QueueUrl=queue, TagKeys=[])
    assert error_code(e) == "MissingParameter"
    assert e.value.response["Error"]["Message"] == "The request must contain the parameter TagKeys."
    # 51 in one request, and 51 in all after an earlier 40: neither lands.
    for tags in ({f"k{i}": "v" for i in range(51)}, {f"later{i}": "v" for i in range(11)}):
        if len(tags) == 11:
            sqs.tag_queue(QueueUrl=queue, Tags={f"k{i}": "v" for i in range(40)})
        with pytest.raises(ClientError) as e:
            sqs.tag_queue(QueueUrl=queue, Tags=tags)
        assert error_code(e) == "InvalidParameterValue"
        assert e.value.response["Error"]["Message"] == f"Too many tags added for queue {name}."
    assert len(sqs.list_queue_tags(QueueUrl=queue)["Tags"]) == 40


# --- permissions ----------------------------------------------------------


def statements(sqs, url):
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {})
    if "Policy" not in a:
        return {}
    return {s["Sid"]: s for s in json.loads(a["Policy"])["Statement"]}


def actions_of(statement):
    actions = statement["Action"]
    return sorted(a.lower() for a in ([actions] if isinstance(actions, str) else actions))


def principals_of(statement):
    aws = statement["Principal"]["AWS"]
    return sorted([aws] if isinstance(aws, str) else aws)


def test_add_and_remove_permission(queue, sqs):
    arn = arn_of(sqs, queue)
    sqs.add_permission(
        QueueUrl=queue, Label="producers", AWSAccountIds=["111122223333", "444455556666"],
        Actions=["SendMessage", "GetQueueUrl"],
    )
    sqs.add_permission(QueueUrl=queue, Label="consumers", AWSAccountIds=["111122223333"], Actions=["ReceiveMessage"])
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["Policy"])["Attributes"]["Policy"])
    # As AWS writes it: this version and id, one principal or action a string.
    assert (policy["Version"], policy["Id"]) == ("2008-10-17", arn + "/SQSDefaultPolicy")
    s = {st["Sid"]: st for st in policy["Statement"]}
    assert s["consumers"]["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    assert s["consumers"]["Action"] == "SQS:ReceiveMessage"
    assert s["producers"]["Action"] == ["SQS:SendMessage", "SQS:GetQueueUrl"]
    assert set(s) == {"producers", "consumers"}
    assert s["producers"]["Effect"] == "Allow"
    assert s["producers"]["Resource"] == arn
    assert actions_of(s["producers"]) == ["sqs:getqueueurl", "sqs:sendmessage"]
    assert principals_of(s["producers"]) == ["arn:aws:iam::111122223333:root", "arn:aws:iam::444455556666:root"]
    assert actions_of(s["consumers"]) == ["sqs:receivemessage"]
    sqs.remove_permission(QueueUrl=queue, Label="producers")
    assert set(statements(sqs, queue)) == {"consumers"}
    sqs.remove_permission(QueueUrl=queue, Label="consumers")
    assert statements(sqs, queue) == {}


def test_add_permission_with_a_label_in_use(queue, sqs):
    sqs.add_permission(QueueUrl=queue, Label="once", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    with pytest.raises(ClientError) as e:
        sqs.add_permission(QueueUrl=queue, Label="once", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    assert error_code(e) == "InvalidParameterValue"


def test_remove_permission_with_an_unknown_label(queue, sqs):
    with pytest.raises(ClientError) as e:
        sqs.remove_permission(QueueUrl=queue, Label="never-added")
    assert error_code(e) == "InvalidParameterValue"


# --- dead-letter queues -----------------------------------------------------


@pytest.fixture
def redrive(sqs, unique):
    """A source queue whose messages go to a DLQ after one receive."""
    dlq = sqs.create_queue(QueueName=unique("dlq"))["QueueUrl"]
    dlq_arn = arn_of(sqs, dlq)
    source = sqs.create_queue(
        QueueName=unique("source"),
        Attributes={
            "VisibilityTimeout": "1",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"}),
        },
    )["QueueUrl"]
    return source, dlq


def test_redrive_policy_attribute(redrive, sqs):
    source, dlq = redrive
    policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
    )
    assert policy["deadLetterTargetArn"] == arn_of(sqs, dlq)
    assert int(policy["maxReceiveCount"]) == 1


def test_list_dead_letter_source_queues(redrive, sqs):
    source, dlq = redrive
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [source]
    # The Query protocol has no way to say "an empty list": no element, no key.
    assert sqs.list_dead_letter_source_queues(QueueUrl=source).get("queueUrls", []) == []


def test_message_goes_to_the_dead_letter_queue_and_is_moved_back(redrive, sqs):
    source, dlq = redrive
    source_arn, dlq_arn = arn_of(sqs, source), arn_of(sqs, dlq)
    sent = sqs.send_message(QueueUrl=source, MessageBody="poison")
    first = sqs.receive_message(QueueUrl=source, WaitTimeSeconds=5)["Messages"]
    assert [m["MessageId"] for m in first] == [sent["MessageId"]]

    def in_dlq():
        # A receive on the source after the visibility timeout is what moves
        # it in SQS; it must not get the message a second time.
        again = sqs.receive_message(QueueUrl=source).get("Messages", [])
        assert again == [], "received past maxReceiveCount"
        return sqs.receive_message(QueueUrl=dlq, AttributeNames=["All"], VisibilityTimeout=0).get("Messages")

    moved = eventually(in_dlq)
    assert moved, "the message did not reach the dead-letter queue"
    assert moved[0]["MessageId"] == sent["MessageId"]
    assert moved[0]["Body"] == "poison"
    assert moved[0]["Attributes"]["DeadLetterQueueSourceArn"] == source_arn
    # As on AWS, it goes on counting its receives: once at the source, so its
    # first receive from the dead-letter queue is its second.
    assert moved[0]["Attributes"]["ApproximateReceiveCount"] == "2"

    task = sqs.start_message_move_task(SourceArn=dlq_arn)
    assert task["TaskHandle"]
    back = eventually(lambda: sqs.receive_message(QueueUrl=source, VisibilityTimeout=30).get("Messages"))
    assert back and back[0]["Body"] == "poison"

    def completed():
        results = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
        return results if results[0]["Status"] == "COMPLETED" else None

    results = eventually(completed)
    assert results, sqs.list_message_move_tasks(SourceArn=dlq_arn)
    assert results[0]["SourceArn"] == dlq_arn
    assert results[0]["ApproximateNumberOfMessagesMoved"] == 1
    assert "Messages" not in sqs.receive_message(QueueUrl=dlq)


def test_move_task_to_an_explicit_destination_and_cancel(redrive, sqs, unique):
    source, dlq = redrive
    dlq_arn = arn_of(sqs, dlq)
    elsewhere = sqs.create_queue(QueueName=unique("elsewhere"))["QueueUrl"]
    for i in range(10):
        sqs.send_message(QueueUrl=dlq, MessageBody=f"m{i}")
    task = sqs.start_message_move_task(
        SourceArn=dlq_arn, DestinationArn=arn_of(sqs, elsewhere), MaxNumberOfMessagesPerSecond=1
    )
    listed = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10)["Results"]
    assert listed[0]["TaskHandle"] == task["TaskHandle"]
    assert listed[0]["Status"] == "RUNNING"
    assert listed[0]["DestinationArn"] == arn_of(sqs, elsewhere)
    assert listed[0]["MaxNumberOfMessagesPerSecond"] == 1
    # A second task on the same source while one runs is refused.
    with pytest.raises(ClientError) as e:
        sqs.start_message_move_task(SourceArn=dlq_arn)
    assert (error_code(e), e.value.response["Error"]["Message"]) == (
        "InvalidParameterValue",
        "There is already a task running. Only one active task is allowed for a source queue arn at a given time.")
    cancelled = sqs.cancel_message_move_task(TaskHandle=task["TaskHandle"])
    assert 0 <= cancelled["ApproximateNumberOfMessagesMoved"] < 10
    status = eventually(
        lambda: sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"][0]["Status"] == "CANCELLED"
    )
    assert status, sqs.list_message_move_tasks(SourceArn=dlq_arn)


def test_cancel_message_move_task_with_an_unknown_handle(sqs):
    with pytest.raises(ClientError) as e:
        sqs.cancel_message_move_task(TaskHandle="not-a-task-handle")
    assert (error_code(e), http_status(e)) == ("InvalidParameterValue", 400)
    assert e.value.response["Error"]["Message"] == "Value for parameter TaskHandle is invalid."


def test_list_message_move_tasks_of_a_queue_without_tasks(redrive, sqs):
    source, dlq = redrive
    assert sqs.list_message_move_tasks(SourceArn=arn_of(sqs, dlq)).get("Results", []) == []


def test_start_message_move_task_from_a_queue_that_is_no_dead_letter_queue(queue, sqs):
    with pytest.raises(ClientError) as e:
        sqs.start_message_move_task(SourceArn=arn_of(sqs, queue))
    assert (error_code(e), e.value.response["Error"]["Message"]) == (
        "InvalidParameterValue", "Source queue must be configured as a Dead Letter Queue.")


def test_start_message_move_task_from_a_missing_queue(sqs):
    with pytest.raises(ClientError) as e:
        sqs.start_message_move_task(SourceArn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:no-such-queue")
    assert error_code(e) in ("ResourceNotFoundException", "AWS.SimpleQueueService.NonExistentQueue")


def test_list_dead_letter_source_queues_pages(sqs, unique):
    dlq = sqs.create_queue(QueueName=unique("shared-dlq"))["QueueUrl"]
    policy = json.dumps({"deadLetterTargetArn": arn_of(sqs, dlq), "maxReceiveCount": "5"})
    sources = {sqs.create_queue(QueueName=unique("src"), Attributes={"RedrivePolicy": policy})["QueueUrl"]
               for _ in range(3)}
    first = sqs.list_dead_letter_source_queues(QueueUrl=dlq, MaxResults=2)
    assert len(first["queueUrls"]) == 2
    assert first["NextToken"]
    rest = sqs.list_dead_letter_source_queues(QueueUrl=dlq, MaxResults=2, NextToken=first["NextToken"])
    assert "NextToken" not in rest
    assert set(first["queueUrls"] + rest["queueUrls"]) == sources


def test_redrive_policy_set_later_and_removed(sqs, unique):
    dlq = sqs.create_queue(QueueName=unique("later-dlq"))["QueueUrl"]
    source = sqs.create_queue(QueueName=unique("later-source"))["QueueUrl"]
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq).get("queueUrls", []) == []
    policy = json.dumps({"deadLetterTargetArn": arn_of(sqs, dlq), "maxReceiveCount": 4})
    sqs.set_queue_attributes(QueueUrl=source, Attributes={"RedrivePolicy": policy})
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [source]
    sqs.set_queue_attributes(QueueUrl=source, Attributes={"RedrivePolicy": ""})
    assert "RedrivePolicy" not in sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["All"])["Attributes"]
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq).get("queueUrls", []) == []


def test_redrive_policy_to_a_missing_queue(queue, sqs):
    policy = json.dumps({"deadLetterTargetArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:no-such-dlq", "maxReceiveCount": 1})
    with pytest.raises(ClientError) as e:
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"RedrivePolicy": policy})
    # Refused; the SQS reference does not pin down the code.
    assert error_code(e) in ("InvalidParameterValue", "InvalidAttributeValue", "AWS.SimpleQueueService.NonExistentQueue")
