"""SigV4 verification: a daemon started with --auth KEY:SECRET."""

import os
import subprocess

import pytest
from botocore.exceptions import ClientError

from shmq_clients import AWS, REGION, Daemon, error_code, http_status

KEY, SECRET = "AKIASHMQTESTKEY00001", "s3cr3t/with+special=chars"


@pytest.fixture(scope="module")
def secured():
    d = Daemon(["--auth", f"{KEY}:{SECRET}"])
    yield d
    d.stop()


def test_right_credentials_are_accepted(secured):
    sqs = secured.client(KEY, SECRET)
    url = sqs.create_queue(QueueName="signed", Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="signed body with spaces & symbols +=/",
                     MessageAttributes={"a": {"DataType": "String", "StringValue": "x y"}})
    m = sqs.receive_message(QueueUrl=url, AttributeNames=["SenderId"], MessageAttributeNames=["All"])["Messages"][0]
    assert m["Body"] == "signed body with spaces & symbols +=/"
    assert m["Attributes"]["SenderId"] == KEY
    assert url in sqs.list_queues()["QueueUrls"]


def test_wrong_secret_is_refused(secured):
    with pytest.raises(ClientError) as e:
        secured.client(KEY, "wrong-secret").list_queues()
    assert error_code(e) == "SignatureDoesNotMatch"
    assert http_status(e) == 403


def test_unknown_access_key_is_refused(secured):
    with pytest.raises(ClientError) as e:
        secured.client("AKIAUNKNOWN000000000", SECRET).list_queues()
    assert error_code(e) == "InvalidClientTokenId"
    assert http_status(e) == 403


def test_the_aws_cli_signs_too(secured):
    # The CLI takes its credentials from the environment.
    env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)
    r = subprocess.run([AWS, "--endpoint-url", secured.endpoint, "--region", REGION, "--output", "json",
                        "sqs", "list-queues"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    env["AWS_SECRET_ACCESS_KEY"] = "wrong"
    r = subprocess.run([AWS, "--endpoint-url", secured.endpoint, "--region", REGION, "--output", "json",
                        "sqs", "list-queues"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode != 0
    assert "SignatureDoesNotMatch" in r.stderr
