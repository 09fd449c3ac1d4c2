"""The aws CLI v1 (awscli 1.x from pip, in a Python of its own, with its own
botocore) against the bridge, as a user would type it. A botocore that new
speaks SQS's JSON protocol (the CLI 2.9 of test_aws_cli.py speaks Query).

It runs with AWS_DATA_PATH unset: the SQS model that shmq_clients merges for
Debian's older botocore has the same API version, so it would shadow the CLI's
own newer model and make it speak Query. Found on PATH or in pyenv's versions;
without one these tests are skipped."""

import base64
import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from sqs_md5 import md5_of_attributes, md5_of_body
from shmq_clients import ACCOUNT, REGION


def _v1_environment():
    """The test process's environment (shmq_clients' dummy credentials and
    no AWS config files) without AWS_DATA_PATH and without Debian's Python
    settings."""
    env = {k: v for k, v in os.environ.items() if k != "AWS_DATA_PATH" and not k.startswith("PYTHON")}
    env.update(PYTHONUTF8="1", PYTHONIOENCODING="utf-8")
    return env


def _find_v1_cli():
    """The first `aws` on PATH, then in pyenv's versions, whose `aws --version`
    says aws-cli/1.; None when there is none. pyenv's shims are passed over:
    the executables they stand for are searched."""
    pyenv = Path(os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv"))
    candidates = [Path(d) / "aws" for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    candidates += sorted(pyenv.glob("versions/*/bin/aws"), reverse=True)
    seen = set()
    for path in candidates:
        if path.parent.name == "shims" or not (path.is_file() and os.access(path, os.X_OK)):
            continue
        real = path.resolve()
        if real in seen:
            continue
        seen.add(real)
        try:
            r = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=60,
                               env=_v1_environment())
        except (OSError, subprocess.TimeoutExpired):
            continue
        # Older v1 releases print their version on stderr.
        if r.returncode == 0 and (r.stdout + r.stderr).strip().startswith("aws-cli/1."):
            return str(path)
    return None


class CliV1:
    def __init__(self, executable, endpoint):
        self.executable = executable
        self.endpoint = endpoint

    def run(self, command, *args, debug=False):
        """`aws [--debug] --endpoint-url ... sqs COMMAND ARGS --output json`."""
        cmd = [self.executable, *(["--debug"] if debug else []), "--endpoint-url", self.endpoint,
               "--region", REGION, "--output", "json", "sqs", command, *[str(a) for a in args]]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=_v1_environment())

    def __call__(self, command, *args):
        """Its parsed output ({} when it printed nothing); fails the test when
        the CLI exited non-zero."""
        r = self.run(command, *args)
        assert r.returncode == 0, f"aws sqs {command} exited {r.returncode}: {r.stderr.strip()}"
        return json.loads(r.stdout) if r.stdout.strip() else {}


@pytest.fixture(scope="module")
def aws_v1():
    executable = _find_v1_cli()
    if executable is None:
        pytest.skip("aws CLI v1 not installed (searched PATH and pyenv's versions); "
                    "v2 is covered by test_aws_cli.py")
    return executable


@pytest.fixture
def cli(aws_v1, daemon):  # aws_v1 first: skipped before a daemon starts
    return CliV1(aws_v1, daemon.endpoint)


def test_it_speaks_the_json_protocol_and_the_bridge_answers_in_json(cli):
    r = cli.run("list-queues", debug=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert re.search(r"'X-Amz-Target': b?'AmazonSQS\.ListQueues'", r.stderr), "not the JSON protocol"
    assert re.search(r"Response headers: \{[^}]*'Content-Type': 'application/x-amz-json-1\.0'", r.stderr)


def test_send_receive_delete_on_a_standard_queue(cli):
    url = cli("create-queue", "--queue-name", "v1-standard")["QueueUrl"]
    assert url == f"{cli.endpoint}/{ACCOUNT}/v1-standard"
    # v1 sends what is typed as a Binary value's bytes (v2 decodes base64).
    attributes = {
        "text": {"DataType": "String", "StringValue": "héllo"},
        "n": {"DataType": "Number", "StringValue": "7"},
        "raw": {"DataType": "Binary", "BinaryValue": "bytes as typed"},
    }
    sent = cli("send-message", "--queue-url", url, "--message-body", "v1 body ✓",
               "--message-attributes", json.dumps(attributes))
    as_sent = dict(attributes, raw={"DataType": "Binary", "BinaryValue": b"bytes as typed"})
    assert sent["MD5OfMessageBody"] == md5_of_body("v1 body ✓")
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(as_sent)

    got = cli("receive-message", "--queue-url", url, "--message-attribute-names", "All",
              "--attribute-names", "All", "--wait-time-seconds", "5", "--visibility-timeout", "60")
    [m] = got["Messages"]
    assert m["MessageId"] == sent["MessageId"]
    assert m["Body"] == "v1 body ✓"
    assert m["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert m["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert m["MessageAttributes"] == dict(
        attributes, raw={"DataType": "Binary", "BinaryValue": base64.b64encode(b"bytes as typed").decode()})
    assert m["Attributes"]["ApproximateReceiveCount"] == "1"
    assert m["Attributes"]["SentTimestamp"].isdigit()
    assert m["Attributes"]["ApproximateFirstReceiveTimestamp"].isdigit()

    cli("change-message-visibility", "--queue-url", url, "--receipt-handle", m["ReceiptHandle"],
        "--visibility-timeout", "0")
    [again] = cli("receive-message", "--queue-url", url, "--attribute-names", "ApproximateReceiveCount",
                  "--wait-time-seconds", "5", "--visibility-timeout", "60")["Messages"]
    assert (again["MessageId"], again["Attributes"]["ApproximateReceiveCount"]) == (sent["MessageId"], "2")
    cli("delete-message", "--queue-url", url, "--receipt-handle", again["ReceiptHandle"])

    assert "Messages" not in cli("receive-message", "--queue-url", url, "--visibility-timeout", "0")
    counts = cli("get-queue-attributes", "--queue-url", url, "--attribute-names",
                 "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")["Attributes"]
    assert counts == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_a_fifo_batch_is_received_in_order(cli):
    url = cli("create-queue", "--queue-name", "v1-orders.fifo",
              "--attributes", "FifoQueue=true,ContentBasedDeduplication=true")["QueueUrl"]
    bodies = ["first", "second", "third"]
    sent = cli("send-message-batch", "--queue-url", url, "--entries", json.dumps(
        [{"Id": f"e{i}", "MessageBody": body, "MessageGroupId": "g"} for i, body in enumerate(bodies)]))
    assert not sent.get("Failed")
    by_id = {s["Id"]: s for s in sent["Successful"]}
    assert sorted(by_id) == ["e0", "e1", "e2"]
    numbers = [by_id[f"e{i}"]["SequenceNumber"] for i in range(3)]
    assert all(n.isdigit() for n in numbers)
    assert int(numbers[0]) < int(numbers[1]) < int(numbers[2])

    # AWS may hand the group out in several receives: each part is deleted
    # before the next receive, which the group's lock would otherwise hold.
    received = []
    deadline = time.monotonic() + 15
    while len(received) < 3 and time.monotonic() < deadline:
        part = cli("receive-message", "--queue-url", url, "--max-number-of-messages", "10",
                   "--attribute-names", "All", "--wait-time-seconds", "1").get("Messages", [])
        if part:
            deleted = cli("delete-message-batch", "--queue-url", url, "--entries", json.dumps(
                [{"Id": f"h{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(part)]))
            assert len(deleted["Successful"]) == len(part), deleted
        received += part
    assert [m["Body"] for m in received] == bodies
    assert [m["MessageId"] for m in received] == [by_id[f"e{i}"]["MessageId"] for i in range(3)]
    assert [m["Attributes"]["SequenceNumber"] for m in received] == numbers
    assert {m["Attributes"]["MessageGroupId"] for m in received} == {"g"}
    # Content-based deduplication: the id is the body's SHA-256.
    assert [m["Attributes"]["MessageDeduplicationId"] for m in received] == [
        hashlib.sha256(b.encode()).hexdigest() for b in bodies]
    assert "Messages" not in cli("receive-message", "--queue-url", url, "--max-number-of-messages", "10")


def test_get_queue_url_of_a_missing_queue(cli):
    # JSON protocol: the error shape is QueueDoesNotExist, but SQS's
    # x-amzn-query-error header carries the Query code, which botocore prints.
    r = cli.run("get-queue-url", "--queue-name", "v1-missing")
    assert r.returncode == 255, (r.returncode, r.stderr)
    assert r.stdout == ""
    assert re.search(r"An error occurred \(AWS\.SimpleQueueService\.NonExistentQueue\) when calling the "
                     r"GetQueueUrl operation( \(reached max retries: \d+\))?: The specified queue does not exist\.",
                     r.stderr), r.stderr
