"""Attribute values at and past SQS's size limits, through boto3: the bridge
answers as SQS does (a Policy over 8,192 bytes is OverLimit, "Submitted
policy is over max allowed size."), whether the value is just over the
limit or far over what one control request carries, and the queue is left
as it was."""

import json

import pytest
from botocore.exceptions import ClientError

from shmq_clients import error_code, http_status

POLICY_LIMIT = 8192
CONTROL_REQUEST_LIMIT = 256 << 10
TOO_LARGE = "Submitted policy is over max allowed size."


def policy_of_size(size):
    """A valid policy document of exactly `size` bytes."""
    head, tail = '{"Version":"2012-10-17","Id":"', '","Statement":[]}'
    return head + "p" * (size - len(head) - len(tail)) + tail


def refused_as_too_large(excinfo):
    assert error_code(excinfo) == "OverLimit"
    assert http_status(excinfo) == 403
    assert excinfo.value.response["Error"]["Message"] == TOO_LARGE


def stored_policy(sqs, url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {}).get("Policy")


def test_policy_of_the_limit_is_accepted_by_set_queue_attributes(queue, sqs):
    policy = policy_of_size(POLICY_LIMIT)
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": policy})
    assert stored_policy(sqs, queue) == policy


@pytest.mark.parametrize("size", [POLICY_LIMIT + 1, CONTROL_REQUEST_LIMIT + 1])
def test_policy_over_the_limit_is_refused_by_set_queue_attributes(queue, sqs, size):
    kept = policy_of_size(100)
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": kept})
    with pytest.raises(ClientError) as e:
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": policy_of_size(size)})
    refused_as_too_large(e)
    assert stored_policy(sqs, queue) == kept


def test_policy_of_the_limit_is_accepted_by_create_queue(sqs, unique):
    policy = policy_of_size(POLICY_LIMIT)
    url = sqs.create_queue(QueueName=unique("policy"), Attributes={"Policy": policy})["QueueUrl"]
    assert stored_policy(sqs, url) == policy


@pytest.mark.parametrize("size", [POLICY_LIMIT + 1, CONTROL_REQUEST_LIMIT + 1])
def test_policy_over_the_limit_is_refused_by_create_queue(sqs, unique, size):
    name = unique("policy")
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName=name, Attributes={"Policy": policy_of_size(size)})
    refused_as_too_large(e)
    # Nothing was created.
    assert name not in " ".join(sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", []))


def test_add_permission_past_the_policy_limit_is_refused(queue, sqs):
    # Each statement names 50 accounts; a few of them fill 8 KiB.
    accounts = [f"{n:012d}" for n in range(50)]
    with pytest.raises(ClientError) as e:
        for n in range(100):
            sqs.add_permission(QueueUrl=queue, Label=f"label{n}", AWSAccountIds=accounts, Actions=["SendMessage"])
    refused_as_too_large(e)
    assert len(stored_policy(sqs, queue)) <= POLICY_LIMIT
    assert json.loads(stored_policy(sqs, queue))["Statement"]
