"""Queue actions through boto3 (Query protocol): CreateQueue, DeleteQueue,
GetQueueUrl, ListQueues, GetQueueAttributes, SetQueueAttributes, PurgeQueue."""

import pytest
from botocore.exceptions import ClientError

from shmq_clients import ACCOUNT, REGION, error_code, http_status


def test_create_queue_returns_its_url_and_is_idempotent(daemon, sqs, unique):
    name = unique("orders")
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "40"})["QueueUrl"]
    assert url == f"{daemon.endpoint}/{ACCOUNT}/{name}"
    # The same name with the same attributes: the same queue, no error.
    again = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "40"})["QueueUrl"]
    assert again == url


def test_create_queue_with_other_attributes_is_a_name_conflict(sqs, unique):
    name = unique("conflict")
    sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "40"})
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "50"})
    assert error_code(e) == "QueueAlreadyExists"
    assert http_status(e) == 400


def test_create_queue_refuses_a_bad_name(sqs):
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName="no spaces allowed")
    assert error_code(e) == "InvalidParameterValue"


def test_create_queue_refuses_an_unknown_attribute(sqs, unique):
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName=unique("attr"), Attributes={"NoSuchAttribute": "1"})
    assert error_code(e) == "InvalidAttributeName"


def test_get_queue_url(daemon, sqs, unique):
    name = unique("lookup")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url


def test_get_queue_url_of_a_missing_queue(sqs):
    with pytest.raises(ClientError) as e:
        sqs.get_queue_url(QueueName="never-created")
    assert error_code(e) == "AWS.SimpleQueueService.NonExistentQueue"
    assert http_status(e) == 400


def test_list_queues_by_prefix(sqs, unique):
    prefix = unique("listing")
    urls = {sqs.create_queue(QueueName=f"{prefix}-{i}")["QueueUrl"] for i in range(3)}
    sqs.create_queue(QueueName=unique("other"))
    listed = sqs.list_queues(QueueNamePrefix=prefix)
    assert set(listed["QueueUrls"]) == urls
    assert "NextToken" not in listed
    assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix="nothing-starts-like-this")


def test_list_queues_pages_with_max_results_and_next_token(sqs, unique):
    prefix = unique("paged")
    urls = {sqs.create_queue(QueueName=f"{prefix}-{i}")["QueueUrl"] for i in range(5)}
    seen, pages, token = [], 0, None
    while True:
        kwargs = {"QueueNamePrefix": prefix, "MaxResults": 2}
        if token:
            kwargs["NextToken"] = token
        page = sqs.list_queues(**kwargs)
        pages += 1
        assert 1 <= len(page["QueueUrls"]) <= 2
        seen += page["QueueUrls"]
        token = page.get("NextToken")
        if not token:
            break
        assert pages < 10
    assert pages == 3
    assert sorted(seen) == sorted(urls)


def test_list_queues_max_results_out_of_range(sqs):
    with pytest.raises(ClientError) as e:
        sqs.list_queues(MaxResults=1001)
    assert error_code(e) == "InvalidParameterValue"


def test_get_queue_attributes_all(sqs, unique):
    name = unique("attrs")
    url = sqs.create_queue(QueueName=name, Attributes={"DelaySeconds": "2", "VisibilityTimeout": "45"})["QueueUrl"]
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert a["QueueArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
    assert a["DelaySeconds"] == "2"
    assert a["VisibilityTimeout"] == "45"
    for key in (
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
        "CreatedTimestamp",
        "LastModifiedTimestamp",
        "MaximumMessageSize",
        "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds",
    ):
        assert key in a, key
    assert a["ApproximateNumberOfMessages"] == "0"
    assert "FifoQueue" not in a  # only FIFO queues have it


def test_get_queue_attributes_specific_and_queue_arn(sqs, unique):
    name = unique("some")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout", "QueueArn"])["Attributes"]
    assert a == {"VisibilityTimeout": "30", "QueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"}
    only_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    assert only_arn == {"QueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"}


def test_get_queue_attributes_unknown_name(queue, sqs):
    with pytest.raises(ClientError) as e:
        sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["NoSuchAttribute"])
    assert error_code(e) == "InvalidAttributeName"


def test_set_queue_attributes(queue, sqs):
    sqs.set_queue_attributes(
        QueueUrl=queue,
        Attributes={
            "VisibilityTimeout": "120",
            "DelaySeconds": "3",
            "ReceiveMessageWaitTimeSeconds": "1",
            "MaximumMessageSize": "2048",
            "MessageRetentionPeriod": "600",
        },
    )
    a = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert a["VisibilityTimeout"] == "120"
    assert a["DelaySeconds"] == "3"
    assert a["ReceiveMessageWaitTimeSeconds"] == "1"
    assert a["MaximumMessageSize"] == "2048"
    assert a["MessageRetentionPeriod"] == "600"


def test_set_queue_attributes_unknown_name(queue, sqs):
    with pytest.raises(ClientError) as e:
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"NoSuchAttribute": "1"})
    assert error_code(e) == "InvalidAttributeName"


def test_set_queue_attributes_value_out_of_range(queue, sqs, unique):
    for name, value in (("VisibilityTimeout", "43201"), ("DelaySeconds", "soon"), ("MessageRetentionPeriod", "59")):
        with pytest.raises(ClientError) as e:
            sqs.set_queue_attributes(QueueUrl=queue, Attributes={name: value})
        assert (error_code(e), e.value.response["Error"]["Message"]) == (
            "InvalidAttributeValue", f"Invalid value for the parameter {name}.")
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName=unique("q"), Attributes={"MaximumMessageSize": "1023"})
    assert e.value.response["Error"]["Message"] == "Invalid value for the parameter MaximumMessageSize."


def test_purge_queue_and_a_second_purge_within_60_seconds(queue, sqs):
    for i in range(3):
        sqs.send_message(QueueUrl=queue, MessageBody=f"m{i}")
    sqs.purge_queue(QueueUrl=queue)
    assert "Messages" not in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
    a = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert a["ApproximateNumberOfMessages"] == "0"
    with pytest.raises(ClientError) as e:
        sqs.purge_queue(QueueUrl=queue)
    assert error_code(e) == "AWS.SimpleQueueService.PurgeQueueInProgress"
    assert http_status(e) == 403


def test_delete_queue(sqs, unique):
    name = unique("doomed")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="lost with its queue")
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(ClientError) as e:
        sqs.get_queue_url(QueueName=name)
    assert error_code(e) == "AWS.SimpleQueueService.NonExistentQueue"
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x")
    assert error_code(e) == "AWS.SimpleQueueService.NonExistentQueue"
    assert name not in " ".join(sqs.list_queues().get("QueueUrls", []))


def test_actions_on_a_missing_queue(daemon, sqs):
    url = f"{daemon.endpoint}/{ACCOUNT}/no-such-queue"
    calls = [
        lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]),
        lambda: sqs.get_queue_attributes(QueueUrl=url),  # no attributes asked for: still an error
        lambda: sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "1"}),
        lambda: sqs.purge_queue(QueueUrl=url),
        lambda: sqs.send_message(QueueUrl=url, MessageBody="x"),
        lambda: sqs.receive_message(QueueUrl=url),
        lambda: sqs.delete_queue(QueueUrl=url),
    ]
    for call in calls:
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == "AWS.SimpleQueueService.NonExistentQueue"
        # The Query protocol's wording (the JSON protocol's lacks the wsdl).
        assert e.value.response["Error"]["Message"] == "The specified queue does not exist for this wsdl version."


def test_fifo_only_attributes_on_a_standard_queue(sqs, unique):
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName=unique("std"), Attributes={"ContentBasedDeduplication": "true"})
    assert error_code(e) == "InvalidAttributeName"


def test_set_and_get_a_policy(queue, sqs):
    import json

    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "own", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                       "Action": "SQS:SendMessage", "Resource": arn}],
    }
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps(policy)})
    got = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["Policy"])["Attributes"]["Policy"]
    assert json.loads(got) == policy


def error_message(excinfo) -> str:
    return excinfo.value.response["Error"]["Message"]


def test_encryption_attributes_as_aws_answers(queue, sqs):
    # SQS-managed encryption is on by default (as on AWS since 2022); a KMS
    # key replaces it, and clearing the key takes its reuse period away too.
    a = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert a["SqsManagedSseEnabled"] == "true"
    assert "KmsDataKeyReusePeriodSeconds" not in a
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"KmsMasterKeyId": "alias/aws/sqs"})
    a = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert (a["SqsManagedSseEnabled"], a["KmsDataKeyReusePeriodSeconds"]) == ("false", "300")
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"KmsMasterKeyId": ""})
    a = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert "KmsMasterKeyId" not in a and "KmsDataKeyReusePeriodSeconds" not in a


def test_fifo_queue_attribute_as_aws_answers(sqs, unique, queue, fifo_queue):
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName=unique("plain"), Attributes={"FifoQueue": "false"})
    assert (error_code(e), error_message(e)) == ("InvalidAttributeName", "Unknown Attribute FifoQueue.")
    with pytest.raises(ClientError) as e:
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"FifoQueue": "false"})
    assert (error_code(e), error_message(e)) == ("InvalidAttributeName", "Unknown Attribute FifoQueue.")
    with pytest.raises(ClientError) as e:
        sqs.set_queue_attributes(QueueUrl=fifo_queue, Attributes={"FifoQueue": "false"})
    assert (error_code(e), error_message(e)) == (
        "InvalidAttributeValue",
        "Value false for parameter FifoQueue is invalid. Reason: Modifying queue type is not supported.")
    name = fifo_queue.rsplit("/", 1)[1]
    assert sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"] == fifo_queue


def test_booleans_in_any_case_and_unknown_attributes(sqs, unique, queue):
    url = sqs.create_queue(QueueName=unique("b") + ".fifo",
                           Attributes={"FifoQueue": "True", "ContentBasedDeduplication": "TRUE"})["QueueUrl"]
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (a["FifoQueue"], a["ContentBasedDeduplication"]) == ("true", "true")
    with pytest.raises(ClientError) as e:
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"NoSuchThing": "1"})
    assert (error_code(e), error_message(e)) == ("InvalidAttributeName", "Unknown Attribute NoSuchThing.")
    with pytest.raises(ClientError) as e:
        sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["NoSuchThing"])
    assert (error_code(e), error_message(e)) == ("InvalidAttributeName", "Unknown Attribute NoSuchThing.")
