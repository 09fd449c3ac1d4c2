"""Who can use the bridge. On loopback it refuses Host values that are not
its own (DNS rebinding) and requests from web pages (an Origin header) unless
--cors-allow-origin allows them; SQS clients, which send neither, keep
working. On a Unix socket the file's permissions say who may connect. Without
--auth the daemon says, loudly, that every local user can use it."""

import json
import os
import socket
import tempfile
from pathlib import Path

import pytest

from shmq_clients import Daemon, raw_http


def query(port, host=b"127.0.0.1", extra=b""):
    """A Query-protocol ListQueues with this Host (None: no Host) and extra header lines."""
    host_line = b"Host: " + host + b"\r\n" if host is not None else b""
    return raw_http(port, b"GET /?Action=ListQueues HTTP/1.1\r\n" + host_line + extra + b"Connection: close\r\n\r\n")


def status(answer):
    return int(answer.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def bridge():
    d = Daemon(extra_args=("--allow-host", "sqs.internal", "--advertise-url", "http://queues.test:9324"))
    yield d
    d.stop()


@pytest.mark.parametrize("host", [b"127.0.0.1", b"127.0.0.1:PORT", b"127.7.7.7:9", b"localhost", b"LOCALHOST:PORT",
                                  b"app.localhost", b"[::1]:PORT", b"sqs.internal:PORT", b"queues.test:9324"])
def test_loopback_and_configured_hosts_are_served(bridge, host):
    answer = query(bridge.port, host.replace(b"PORT", str(bridge.port).encode()))
    assert status(answer) == 200, answer


@pytest.mark.parametrize("host", [b"attacker.example", b"attacker.example:PORT", b"127.0.0.1.attacker.example",
                                  b"10.1.2.3", b"localhost.attacker.example"])
def test_a_foreign_host_is_refused_with_access_denied(bridge, host):
    answer = query(bridge.port, host.replace(b"PORT", str(bridge.port).encode()))
    assert status(answer) == 403, answer
    assert b"<Code>AccessDenied</Code>" in answer, answer
    assert b"--allow-host" in answer, answer


def test_a_request_from_a_web_page_is_refused(bridge):
    answer = query(bridge.port, extra=b"Origin: http://attacker.example\r\n")
    assert status(answer) == 403, answer
    assert b"<Code>AccessDenied</Code>" in answer, answer
    assert b"--cors-allow-origin" in answer, answer


def test_a_json_request_from_a_web_page_is_refused_in_json(bridge):
    body = b"{}"
    answer = raw_http(bridge.port, b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: null\r\n"
                      b"X-Amz-Target: AmazonSQS.ListQueues\r\nContent-Type: application/x-amz-json-1.0\r\n"
                      b"Content-Length: 2\r\nConnection: close\r\n\r\n" + body)
    assert status(answer) == 403, answer
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert b"x-amzn-query-error: AccessDenied;Sender" in head, answer
    assert json.loads(payload)["__type"].endswith("#AccessDenied"), answer


def test_sqs_clients_keep_working(bridge):
    sqs = bridge.client()
    url = sqs.create_queue(QueueName="through-admission")["QueueUrl"]
    assert url == "http://queues.test:9324/000000000000/through-admission"


def test_an_allowed_origin_is_served_with_cors_headers():
    d = Daemon(extra_args=("--cors-allow-origin", "http://localhost:3000"))
    try:
        answer = query(d.port, extra=b"Origin: http://localhost:3000\r\n")
        assert status(answer) == 200, answer
        assert b"Access-Control-Allow-Origin: http://localhost:3000\r\n" in answer, answer
        preflight = raw_http(d.port, b"OPTIONS / HTTP/1.1\r\nHost: localhost\r\nOrigin: http://localhost:3000\r\n"
                             b"Access-Control-Request-Method: POST\r\n"
                             b"Access-Control-Request-Headers: content-type, x-amz-target\r\n"
                             b"Connection: close\r\n\r\n")
        assert status(preflight) == 204, preflight
        assert b"Access-Control-Allow-Headers: content-type, x-amz-target\r\n" in preflight, preflight
        other = query(d.port, extra=b"Origin: http://localhost:3001\r\n")
        assert status(other) == 403, other
    finally:
        d.stop()


def test_without_auth_the_daemon_warns_that_every_local_user_can_use_the_bridge(bridge):
    assert "EVERY LOCAL USER" in bridge.log(), bridge.log()


# --- a Unix socket -----------------------------------------------------------


def unix_query(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(path))
        s.sendall(b"GET /?Action=ListQueues HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
        return answer


def connect_as_nobody(path):
    """Connects to the socket as uid/gid 65534 in a forked child: 0 if it
    could, else the errno."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(str(path))
            code = 0
        except OSError as e:
            code = e.errno
        finally:
            os._exit(code)
    _, wait_status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wait_status)


@pytest.fixture
def socket_dir():
    # Traversable by everyone: only the socket's own mode keeps others out.
    path = Path(tempfile.mkdtemp(prefix="shmq-sock-"))
    path.chmod(0o755)
    yield path
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


def test_a_unix_socket_serves_its_owner_only(socket_dir):
    path = socket_dir / "sqs.sock"
    d = Daemon(listen=f"unix:{path}")
    try:
        assert path.is_socket()
        assert path.stat().st_mode & 0o777 == 0o600
        answer = unix_query(path)
        assert status(answer) == 200, answer
        assert b"<ListQueuesResponse" in answer, answer
        assert connect_as_nobody(path) == 13  # EACCES
    finally:
        d.stop()
    assert not path.exists(), "the socket file is removed at stop"


def test_a_unix_socket_mode_lets_others_in(socket_dir):
    path = socket_dir / "shared.sock"
    d = Daemon(listen=f"unix:{path}", extra_args=("--bridge-socket-mode", "0666"))
    try:
        assert path.stat().st_mode & 0o777 == 0o666
        assert connect_as_nobody(path) == 0
    finally:
        d.stop()
