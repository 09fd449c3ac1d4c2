"""Hostile requests to the bridge, as raw HTTP so that the bytes are exactly
the ones a client can send: each gets a 400 with the SQS error code (a 500
would be a bug), and the daemon keeps serving everyone else."""

import hashlib
import hmac
import http.client
import json
import socket
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from urllib.parse import quote

import pytest

from shmq_clients import ACCOUNT, REGION, Daemon

NS = "{http://queue.amazonaws.com/doc/2012-11-05/}"


def post(daemon, body, headers=None, path="/"):
    """POSTs `body` (bytes or str) as it is; returns (status, headers, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
    try:
        if isinstance(body, str):
            body = body.encode()
        all_headers = dict(headers or {})
        # One Content-Type: the bridge tells the protocols apart by it.
        if not any(name.lower() == "content-type" for name in all_headers):
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request("POST", path, body=body, headers=all_headers)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def raw_request(daemon, data):
    """Sends `data` as the whole request; returns (status, body bytes)."""
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=60) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def query_error(body):
    """The Code of a Query protocol error; the XML must be well-formed."""
    return ET.fromstring(body).find(f"{NS}Error/{NS}Code").text


def json_error(headers, body):
    """The code of a JSON protocol error; the body must be UTF-8 JSON."""
    doc = json.loads(body.decode("utf-8"))
    assert doc["__type"].startswith("com.amazonaws.sqs#")
    return headers["x-amzn-query-error"].split(";")[0]


def json_call(daemon, action, body):
    return post(daemon, body, {"X-Amz-Target": f"AmazonSQS.{action}",
                               "Content-Type": "application/x-amz-json-1.0"})


def still_serves(daemon):
    status, _, body = post(daemon, "Action=ListQueues")
    assert status == 200, body


def rss_mb(daemon):
    for line in open(f"/proc/{daemon.proc.pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def queue_url(daemon, unique):
    name = unique("hard")
    status, _, body = post(daemon, f"Action=CreateQueue&QueueName={name}")
    assert status == 200, body
    return f"http://127.0.0.1:{daemon.port}/{ACCOUNT}/{name}"


# --- errors render whatever the bytes -----------------------------------------

def test_non_utf8_target_header_gets_400(daemon):
    status, headers, body = post(daemon, b"{}", {"X-Amz-Target": b"AmazonSQS.\xff",
                                                "Content-Type": "application/x-amz-json-1.0"})
    assert status == 400
    assert json_error(headers, body) == "InvalidAction"
    still_serves(daemon)


def test_non_utf8_action_gets_well_formed_xml_error(daemon):
    status, _, body = post(daemon, "Action=%FF%FE%01")
    assert status == 400
    assert query_error(body) == "InvalidAction"
    still_serves(daemon)


# --- nesting is bounded on both protocols -------------------------------------

def test_deeply_nested_query_key_gets_400(daemon):
    status, _, body = post(daemon, "Action=ListQueues&" + "a." * 50000 + "a=1")
    assert status == 400
    assert query_error(body) == "MalformedQueryString"
    still_serves(daemon)


def test_deeply_nested_json_parameter_gets_400(daemon):
    n = 70000
    status, headers, body = json_call(daemon, "ListQueues", '{"MaxResults":' + "[" * n + "]" * n + "}")
    assert status == 400
    assert json_error(headers, body) == "InvalidParameterValue"
    still_serves(daemon)


def test_json_nested_as_deep_as_sqs_shapes_is_accepted(daemon, queue_url):
    entry = {"Id": "a", "MessageBody": "b",
             "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}}
    status, _, body = json_call(daemon, "SendMessageBatch", json.dumps({"QueueUrl": queue_url, "Entries": [entry]}))
    assert status == 200, body
    assert [s["Id"] for s in json.loads(body)["Successful"]] == ["a"]


# --- Query list indexes: sparse and bounded -----------------------------------

def test_huge_list_indexes_neither_grow_the_daemon_nor_succeed(daemon):
    before = rss_mb(daemon)
    # Each key names item 1000 of its own list: 6,000 lists of 1,000 items
    # if lists were dense.
    body = "Action=ListQueues&" + "&".join(f"k.{i}.{j}.1000=x" for i in range(1, 11) for j in range(1, 601))
    assert len(body) < 100_000
    status, _, answer = post(daemon, body)
    assert status == 400
    assert query_error(answer) == "InvalidParameterValue"
    assert rss_mb(daemon) < before + 50
    still_serves(daemon)


def test_a_body_of_many_parameters_is_refused_without_growing_the_daemon(daemon):
    before = rss_mb(daemon)
    body = "Action=ListQueues&" + "&".join(f"k{i:x}=" for i in range(1, 500000))  # just under 4 MiB
    status, _, answer = post(daemon, body)
    assert status == 400
    assert query_error(answer) == "MalformedQueryString"
    assert rss_mb(daemon) < before + 50
    still_serves(daemon)


def test_sparse_entry_index_is_one_entry(daemon, queue_url):
    status, _, body = post(daemon, f"Action=SendMessageBatch&QueueUrl={quote(queue_url)}"
                                   "&SendMessageBatchRequestEntry.7.Id=seven"
                                   "&SendMessageBatchRequestEntry.7.MessageBody=hello")
    assert status == 200, body
    ids = [e.text for e in ET.fromstring(body).iter(f"{NS}Id")]
    assert ids == ["seven"]


@pytest.mark.parametrize("form, code", [
    ("Action=DeleteMessageBatch&QueueUrl={url}&DeleteMessageBatchRequestEntry.11.Id=a"
     "&DeleteMessageBatchRequestEntry.11.ReceiptHandle=h", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"),
    ("Action=SendMessage&QueueUrl={url}&MessageBody=x&MessageAttribute.11.Name=a"
     "&MessageAttribute.11.Value.DataType=String&MessageAttribute.11.Value.StringValue=v", "InvalidParameterValue"),
    ("Action=TagQueue&QueueUrl={url}&Tag.1001.Key=k&Tag.1001.Value=v", "InvalidParameterValue"),
    ("Action=GetQueueAttributes&QueueUrl={url}&AttributeName.0=All", "MalformedQueryString"),
], ids=["entry-11", "message-attribute-11", "tag-1001", "index-0"])
def test_list_index_out_of_range_gets_400(daemon, queue_url, form, code):
    status, _, body = post(daemon, form.format(url=quote(queue_url)))
    assert status == 400
    assert query_error(body) == code


# --- client mistakes are 400s, not 500s ----------------------------------------

@pytest.mark.parametrize("form, code", [
    ("Action=CreateQueue&QueueName=nested-name&Attribute.1.Name.x=1", "InvalidParameterValue"),
    ("Action=DeleteMessageBatch&QueueUrl={url}&DeleteMessageBatchRequestEntry.99999999999999999999.Id=a",
     "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"),
    ("Action=ReceiveMessage&QueueUrl={url}&MaxNumberOfMessages=%FF", "InvalidParameterValue"),
    ("Action=ListQueues&1=x", "MalformedQueryString"),
    ("Action=TagQueue&QueueUrl={url}&Tag.1.Key=k&Tag.1.Value=%FF", "InvalidParameterValue"),
    ("Action=CreateQueue&QueueName=%FF", "InvalidParameterValue"),
    ("Action=SetQueueAttributes&QueueUrl={url}&Attribute.1.Name=DelaySeconds&Attribute.1.Name.x=1",
     "MalformedQueryString"),
    ("Action=CreateQueue&QueueName=q&Attribute.1.Value=1", "MissingParameter"),
    ("Action=ListQueues&a..b=1", "MalformedQueryString"),
], ids=["name-is-a-structure", "huge-index", "non-utf8-integer", "numeric-top-level-key", "non-utf8-tag-value",
        "non-utf8-queue-name", "value-and-structure", "attribute-without-name", "empty-segment"])
def test_client_mistakes_get_400_not_500(daemon, queue_url, form, code):
    status, _, body = post(daemon, form.format(url=quote(queue_url)))
    assert status == 400, body
    assert query_error(body) == code
    still_serves(daemon)


def test_non_utf8_queue_in_the_request_path_gets_400(daemon):
    body = b"Action=PurgeQueue"
    status, answer = raw_request(daemon, b"POST /000000000000/\xfdq HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                         b"Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n"
                                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    assert status == 400, answer
    assert query_error(answer) == "InvalidParameterValue"
    still_serves(daemon)


@pytest.mark.parametrize("action, params, code", [
    ("ReceiveMessage", {"MaxNumberOfMessages": 18446744073709551615}, "InvalidParameterValue"),
    ("ReceiveMessage", {"MaxNumberOfMessages": {"a": [1]}}, "InvalidParameterValue"),
    ("SendMessageBatch", {"Entries": [5, "x"]}, "AWS.SimpleQueueService.InvalidBatchEntryId"),
], ids=["unsigned-max", "structure-integer", "entries-not-objects"])
def test_json_client_mistakes_get_400_not_500(daemon, queue_url, action, params, code):
    status, headers, body = json_call(daemon, action, json.dumps({"QueueUrl": queue_url, **params}))
    assert status == 400, body
    assert json_error(headers, body) == code


# --- SigV4: what is signed is what is done ----------------------------------------

KEY, SECRET = "AKIASHMQHARDENING001", "hardening-secret"


@pytest.fixture(scope="module")
def secured():
    d = Daemon(["--auth", f"{KEY}:{SECRET}"])
    yield d
    d.stop()


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signed_headers(daemon, body, signed=("content-type", "host", "x-amz-date"), scope_date=None,
                   region=REGION, service="sqs", terminator="aws4_request", extra=None):
    """Headers of a POST / with `body`, signed by hand as SigV4 describes, with
    the chosen SignedHeaders and credential scope."""
    now = datetime.now(timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    scope_date = scope_date or amz_date[:8]
    headers = {"content-type": "application/x-www-form-urlencoded", "host": f"127.0.0.1:{daemon.port}",
               "x-amz-date": amz_date, **(extra or {})}
    names = sorted(signed)
    canonical = "\n".join(["POST", "/", "", *[f"{n}:{headers[n]}" for n in names], "", ";".join(names),
                           hashlib.sha256(body.encode()).hexdigest()])
    scope = f"{scope_date}/{region}/{service}/{terminator}"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = _hmac(("AWS4" + SECRET).encode(), scope_date)
    for part in (region, service, terminator):
        k = _hmac(k, part)
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={KEY}/{scope}, SignedHeaders={';'.join(names)}, "
                                f"Signature={signature}")
    return headers


def test_hand_signed_request_is_accepted(secured):
    body = "Action=ListQueues"
    status, _, answer = post(secured, body, signed_headers(secured, body))
    assert status == 200, answer


def test_content_hash_header_cannot_stand_in_for_the_body(secured):
    status, _, answer = post(secured, "Action=CreateQueue&QueueName=authq",
                             signed_headers(secured, "Action=CreateQueue&QueueName=authq"))
    assert status == 200, answer
    url = f"http://127.0.0.1:{secured.port}/{ACCOUNT}/authq"
    # A captured, signed ListQueues; resent with its body's hash claimed in
    # x-amz-content-sha256 and another body.
    original = "Action=ListQueues"
    headers = signed_headers(secured, original)
    headers["x-amz-content-sha256"] = hashlib.sha256(original.encode()).hexdigest()
    status, _, answer = post(secured, f"Action=DeleteQueue&QueueUrl={quote(url)}", headers)
    assert status == 403
    assert query_error(answer) == "SignatureDoesNotMatch"
    body = "Action=ListQueues"
    status, _, answer = post(secured, body, signed_headers(secured, body))
    assert status == 200
    assert url in answer.decode()


def test_matching_content_hash_header_is_accepted(secured):
    body = "Action=ListQueues"
    headers = signed_headers(secured, body)
    headers["x-amz-content-sha256"] = hashlib.sha256(body.encode()).hexdigest()
    status, _, answer = post(secured, body, headers)
    assert status == 200, answer


@pytest.mark.parametrize("kwargs, code", [
    ({"signed": ("content-type", "x-amz-date")}, "IncompleteSignature"),
    ({"signed": ("host", "x-amz-date")}, "IncompleteSignature"),
    ({"signed": ("content-type", "host", "x-amz-date"),
      "extra": {"x-amz-target": "AmazonSQS.ListQueues", "content-type": "application/x-amz-json-1.0"}},
     "IncompleteSignature"),
    ({"scope_date": "20000101"}, "SignatureDoesNotMatch"),
    ({"region": "eu-west-3"}, "SignatureDoesNotMatch"),
    ({"service": "s3"}, "SignatureDoesNotMatch"),
    ({"terminator": "aws4_other"}, "SignatureDoesNotMatch"),
], ids=["host-unsigned", "content-type-unsigned", "target-unsigned", "scope-date", "scope-region", "scope-service",
        "scope-terminator"])
def test_signature_must_cover_what_matters(secured, kwargs, code):
    json_protocol = "x-amz-target" in kwargs.get("extra", {})
    body = "{}" if json_protocol else "Action=ListQueues"
    status, headers, answer = post(secured, body, signed_headers(secured, body, **kwargs))
    assert status in (400, 403), answer
    assert (json_error(headers, answer) if json_protocol else query_error(answer)) == code


def test_long_poll_answers_after_its_queue_is_deleted(daemon, queue_url):
    """A long poll's answer is rendered on another thread: its error is a 400
    for that request, and the daemon lives on."""
    import threading

    result = {}

    def poll():
        result["answer"] = post(daemon, f"Action=ReceiveMessage&QueueUrl={quote(queue_url)}&WaitTimeSeconds=5")

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.5)
    status, _, body = post(daemon, f"Action=DeleteQueue&QueueUrl={quote(queue_url)}")
    assert status == 200, body
    t.join(30)
    assert not t.is_alive()
    status, _, body = result["answer"]
    assert status in (200, 400), body
    still_serves(daemon)
