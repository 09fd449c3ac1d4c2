"""How the bridge routes a request, as AWS does: the protocol by the body's
Content-Type, account actions only at the account's endpoint, unknown
actions and bare GETs refused in AWS's words."""

import pytest

from shmq_clients import ACCOUNT, Daemon, raw_http

FORM = b"Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n"


@pytest.fixture(scope="module")
def bridge():
    d = Daemon()
    yield d
    d.stop()


def post(bridge, path, body, extra=b""):
    return raw_http(bridge.port, b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1:" + str(bridge.port).encode()
                    + b"\r\n" + FORM + extra + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def status_and_body(answer):
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], body


def test_an_account_action_sent_to_a_queue_url_is_invalid_action(bridge):
    bridge.client().create_queue(QueueName="routed")
    for action in (b"CreateQueue&QueueName=other", b"ListQueues"):
        status, body = status_and_body(post(bridge, b"/" + ACCOUNT.encode() + b"/routed", b"Action=" + action))
        assert status == b"HTTP/1.1 400 Bad Request", body
        assert b"<Code>InvalidAction</Code>" in body, body
        name = action.split(b"&")[0]
        assert b"<Message>The action " + name + b" is not valid for this endpoint.</Message>" in body, body
    assert "other" not in " ".join(bridge.client().list_queues().get("QueueUrls", []))


def test_an_unknown_action_is_invalid_action(bridge):
    status, body = status_and_body(post(bridge, b"/", b"Action=FooBar"))
    assert status == b"HTTP/1.1 400 Bad Request", body
    assert b"<Code>InvalidAction</Code>" in body, body
    assert b"<Message>The action FooBar is not valid for this endpoint.</Message>" in body, body


@pytest.mark.parametrize("path", [b"/", b"/" + ACCOUNT.encode() + b"/routed"])
def test_a_get_without_an_action_is_404_unknown_operation(bridge, path):
    bridge.client().create_queue(QueueName="routed")
    request = b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    status, body = status_and_body(raw_http(bridge.port, request))
    assert status == b"HTTP/1.1 404 Not Found", body
    assert b"UnknownOperationException" in body, body


def test_a_form_encoded_query_request_with_an_x_amz_target_header_is_a_query_request(bridge):
    # As Debian's Perl Amazon::SQS::Simple sends it.
    status, body = status_and_body(post(bridge, b"/", b"Action=CreateQueue&QueueName=perl-made&Version=2012-11-05",
                                        b"X-Amz-Target: AmazonSQSv20121105.CreateQueue\r\n"))
    assert status == b"HTTP/1.1 200 OK", body
    assert b"<CreateQueueResponse" in body and b"/perl-made</QueueUrl>" in body, body


def test_queue_urls_name_the_port_the_request_arrived_on_when_the_host_header_names_none(bridge):
    # As Ruby's aws-sdk 1.x and Perl's Amazon::SQS::Simple send it.
    body = b"Action=CreateQueue&QueueName=portless"
    answer = raw_http(bridge.port, b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + FORM + b"Content-Length: "
                      + str(len(body)).encode() + b"\r\n\r\n" + body)
    status, reply = status_and_body(answer)
    assert status == b"HTTP/1.1 200 OK", reply
    url = f"http://127.0.0.1:{bridge.port}/{ACCOUNT}/portless".encode()
    assert b"<QueueUrl>" + url + b"</QueueUrl>" in reply, reply
