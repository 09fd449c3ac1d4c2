"""What the bridge answers to HTTP it cannot take: a malformed request gets
400 and the connection closes, a request that stops half-way gets 408, and a
client that asks for `100 Continue` before sending its body gets it."""

import socket

import pytest

from shmq_clients import Daemon, raw_http

HOST = b"Host: 127.0.0.1\r\n"

MALFORMED = {
    "bare LF line endings": b"GET / HTTP/1.1\nHost: 127.0.0.1\n\n",
    "NUL in a header value": b"GET / HTTP/1.1\r\n" + HOST + b"X-Note: a\x00b\r\n\r\n",
    "HTTP/2.0 request line": b"GET / HTTP/2.0\r\n" + HOST + b"\r\n",
    "Transfer-Encoding and Content-Length": b"POST / HTTP/1.1\r\n" + HOST
    + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two different Content-Lengths": b"POST / HTTP/1.1\r\n" + HOST
    + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "negative Content-Length": b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: -3\r\n\r\nabc",
    "control character in the target": b"GET /\x7f HTTP/1.1\r\n" + HOST + b"\r\n",
    "invalid method token": b"G(T / HTTP/1.1\r\n" + HOST + b"\r\n",
}


@pytest.fixture(scope="module")
def bridge():
    d = Daemon()
    yield d
    d.stop()


@pytest.mark.parametrize("request_bytes", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_request_gets_400_and_the_connection_closes(bridge, request_bytes):
    answer = raw_http(bridge.port, request_bytes)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Connection: close" in head, answer
    assert body.startswith(b"malformed request: "), answer
    # The bridge goes on serving.
    assert "QueueUrls" not in bridge.client().list_queues()


def test_expect_100_continue_is_answered_before_the_body(bridge):
    body = b"Action=ListQueues"
    with socket.create_connection(("127.0.0.1", bridge.port), timeout=10) as s:
        s.sendall(b"POST / HTTP/1.1\r\n" + HOST + b"Content-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\nExpect: 100-continue\r\n\r\n")
        interim = s.recv(4096)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n", interim
        s.sendall(body)
        final = s.recv(65536)
        assert final.startswith(b"HTTP/1.1 200 OK\r\n"), final
        assert b"<ListQueuesResponse" in final, final


def test_expect_100_continue_with_a_body_over_the_limit_gets_413_and_no_100(bridge):
    answer = raw_http(bridge.port, b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: " + str(64 << 20).encode()
                      + b"\r\nExpect: 100-continue\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert b"100 Continue" not in answer, answer


def test_a_request_that_stops_half_way_gets_408():
    d = Daemon(extra_args=("--bridge-idle-timeout", "1"))
    try:
        answer = raw_http(d.port, b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 100\r\n\r\nAction=Li")
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
        head = raw_http(d.port, b"POST / HTTP/1.1\r\n" + HOST + b"Content-Le")
        assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), head
        # A connection that never sent a byte is just closed.
        assert raw_http(d.port, b"") == b""
    finally:
        d.stop()
