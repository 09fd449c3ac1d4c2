"""shmqd's logs as a log pipeline reads them: --log-format json (one JSON
object a line) and --access-log (a line for each bridge request: action,
queue, HTTP status, duration)."""

import json
import re
import subprocess

import pytest
from botocore.exceptions import ClientError

from shmq_clients import SHMQD, Daemon


def test_json_logs_with_an_access_line_for_each_request():
    d = Daemon(["--log-format", "json", "--access-log"], log_level="info")
    try:
        sqs = d.client()
        url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody='a "quoted" body\nwith a newline')
        with pytest.raises(ClientError):
            sqs.get_queue_url(QueueName="never-created")
        log = d.log()
    finally:
        d.stop()
    lines = [line for line in log.splitlines() if line]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(set(r) == {"time", "level", "pid", "message"} for r in records), records
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", r["time"]) for r in records)
    access = [r["message"] for r in records if r["message"].startswith("access ")]
    fields = [dict(kv.split("=", 1) for kv in m.split()[1:]) for m in access]
    assert [(f["action"], f["queue"], f["status"]) for f in fields] == [
        ("CreateQueue", "jobs", "200"), ("SendMessage", "jobs", "200"), ("GetQueueUrl", "never-created", "400")]
    assert all(float(f["ms"]) >= 0 for f in fields)


def test_an_access_line_cannot_be_forged_by_a_queue_url():
    d = Daemon(["--access-log"], log_level="info")
    try:
        sqs = d.client()
        with pytest.raises(ClientError):
            sqs.get_queue_attributes(QueueUrl=f"{d.endpoint}/000000000000/x\naccess action=DeleteQueue queue=jobs",
                                     AttributeNames=["All"])
        log = d.log()
    finally:
        d.stop()
    access = [line for line in log.splitlines() if " access " in line or line.startswith("access ")]
    assert len(access) == 1, log
    assert "action=GetQueueAttributes queue=x?access?action=DeleteQueue?queue=jobs status=400" in access[0], access


def test_without_access_log_requests_are_not_logged():
    d = Daemon(log_level="info")
    try:
        d.client().create_queue(QueueName="jobs")
        log = d.log()
    finally:
        d.stop()
    assert "access " not in log
    assert re.search(r"^\d{4}-\d\d-\d\dT\S+ info ", log, re.M), log


def test_an_unknown_log_format_is_refused():
    r = subprocess.run([SHMQD, "--log-format", "xml", "--bridge-listen", "off"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2, r
    assert "--log-format 'xml': text or json" in r.stderr
