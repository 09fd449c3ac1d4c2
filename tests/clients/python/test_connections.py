"""The bridge's connections: many idle keep-alive connections cost little and
do not stop others being served; a silent client is cut off after the idle
timeout; a body over the limit is refused with 413."""

import socket
import time

from shmq_clients import Daemon


def test_two_thousand_idle_connections_do_not_stop_service():
    d = Daemon()
    try:
        sqs = d.client()
        url = sqs.create_queue(QueueName="busy")["QueueUrl"]
        idle = []
        try:
            for _ in range(2000):
                s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
                idle.append(s)
            # Every one of them is open, and a new client is still served at once.
            sqs.send_message(QueueUrl=url, MessageBody="through the crowd")
            got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
            assert [m["Body"] for m in got] == ["through the crowd"]
        finally:
            for s in idle:
                s.close()
    finally:
        d.stop()


def test_a_silent_client_is_disconnected_after_the_idle_timeout():
    d = Daemon(extra_args=("--bridge-idle-timeout", "1"))
    try:
        silent = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        half = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        half.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nAction=Li")  # then nothing
        start = time.monotonic()
        assert silent.recv(1) == b"", "the server should close a silent connection"
        assert half.recv(1) == b"", "the server should close a connection stuck inside a request"
        waited = time.monotonic() - start
        assert 0.5 < waited < 8, f"closed after {waited:.1f} s with a 1 s timeout"
        silent.close()
        half.close()
        # The bridge itself is fine.
        assert "QueueUrls" not in d.client().list_queues()
    finally:
        d.stop()


def test_a_body_over_the_limit_is_refused():
    d = Daemon()
    try:
        body = b"Action=ListQueues&x=" + b"a" * (5 << 20)
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        try:
            s.sendall(body)
        except OSError:
            pass  # the server may close before reading it all
        answer = s.recv(200)
        assert answer.startswith(b"HTTP/1.1 413"), answer
        s.close()
    finally:
        d.stop()
