"""The bridge's memory budget for request bodies (--bridge-max-buffered-mib):
many connections that each declare a body near the 4 MiB limit and send it
slowly cannot make the daemon hold more than the budget. A request whose
body does not fit is answered 503 ServiceUnavailable, in its protocol,
before its body is read, and closed; the budget comes back as requests end
or their connections close, and full service with it."""

import json
import subprocess
import select
import socket
import time

from shmq_clients import SHMQD, Daemon

BUDGET_MIB = 8
BODY = 4_194_000  # just under the 4 MiB body limit: two fill the budget
HEADER = (
    "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    "Content-Length: {}\r\n\r\n"
)


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def padded_body(size):
    """A ListQueues request of exactly `size` bytes, padded with a long
    QueueNamePrefix (answered, whether or not the action takes it)."""
    head = "Action=ListQueues&Version=2012-11-05&QueueNamePrefix="
    return (head + "p" * (size - len(head))).encode()


def answer_of(s, timeout=10):
    """The whole answer on `s` until the server closes or `timeout` passes."""
    s.settimeout(timeout)
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data:
                head, _, rest = data.partition(b"\r\n\r\n")
                length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if length and len(rest) >= length[0]:
                    break
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def status_of(answer):
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None


def small_request(port, protocol="query"):
    """A 2,000-byte request on a connection of its own: (status, answer)."""
    if protocol == "json":
        body = json.dumps({"QueueNamePrefix": "x" * 1950}).encode()
        head = (
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.0\r\n"
            f"X-Amz-Target: AmazonSQS.ListQueues\r\nContent-Length: {len(body)}\r\n\r\n"
        )
    else:
        body = padded_body(2000)
        head = HEADER.format(len(body))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head.encode() + body)
        answer = answer_of(s)
    return status_of(answer), answer


def test_bodies_past_the_budget_are_refused_with_503_and_memory_stays_bounded():
    d = Daemon(extra_args=("--bridge-max-buffered-mib", str(BUDGET_MIB)))
    slow = []
    try:
        sqs = d.client()
        url = sqs.create_queue(QueueName="budget")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="warm up")
        rss_before = vm_rss_kib(d.proc.pid)

        # 40 clients each send a header and all but the last 10 bytes of their body.
        body = padded_body(BODY)
        for _ in range(40):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
            try:
                s.sendall(HEADER.format(BODY).encode() + body[:-10])
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused, and the rest of its body not read: fine
            slow.append(s)

        # Two fit the budget; every other one is answered 503 at once (within 10 s).
        answers = {}
        deadline = time.monotonic() + 10
        while len(answers) < 38 and time.monotonic() < deadline:
            readable, _, _ = select.select([s for s in slow if s not in answers], [], [], 0.5)
            for s in readable:
                answers[s] = answer_of(s)
        refused = [a for a in answers.values() if status_of(a) == 503]
        assert len(refused) == 38, f"{len(refused)} of 40 refused: {[a[:40] for a in answers.values()]}"
        assert all(b"<Code>ServiceUnavailable</Code>" in a for a in refused), refused[0]
        assert all(b"Retry-After: 1" in a for a in refused), refused[0]
        held = [s for s in slow if s not in answers]
        assert len(held) == 2

        # The daemon holds the two bodies it reads, not forty (160 MB).
        grown_mib = (vm_rss_kib(d.proc.pid) - rss_before) / 1024
        assert grown_mib < 48, f"VmRSS grew by {grown_mib:.0f} MiB with a budget of {BUDGET_MIB} MiB"

        # The budget is full: a small request is refused too, in its protocol.
        status, answer = small_request(d.port)
        assert status == 503 and b"<Code>ServiceUnavailable</Code>" in answer, answer[:300]
        status, answer = small_request(d.port, "json")
        assert status == 503 and b"ServiceUnavailable" in answer, answer[:300]

        # One slow request completes: it is served, and its room is given back.
        held[0].sendall(body[-10:])
        answer = answer_of(held[0])
        assert status_of(answer) not in (None, 503) and status_of(answer) < 500, answer[:300]
        status, answer = small_request(d.port)
        assert status == 200, answer[:300]
        assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "warm up"

        # The other one's client goes away: its room comes back too, and a
        # request of the largest size is read and answered again.
        held[1].close()
        deadline = time.monotonic() + 10
        while True:
            with socket.create_connection(("127.0.0.1", d.port), timeout=30) as s:
                s.sendall(HEADER.format(BODY).encode() + body)
                status = status_of(answer_of(s, timeout=30))
            if status != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert status not in (None, 503) and status < 500, f"a full-size request after the slow clients left: {status}"
        assert d.proc.poll() is None
    finally:
        for s in slow:
            s.close()
        d.stop()


def test_a_budget_smaller_than_one_full_body_is_refused_at_start():
    r = subprocess.run([SHMQD, "--namespace", "budgetflag", "--bridge-max-buffered-mib", "3"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "--bridge-max-buffered-mib: 4 to 1048576" in r.stderr
