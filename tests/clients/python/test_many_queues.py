"""Many queues at once: long polls on hundreds of queues over the bridge,
and the daemon's threads, which must not grow with the number of queues or
outlive the queues' deletion. Requests in the SQS JSON protocol (AWS JSON
1.0) over plain HTTP, one connection per long poll."""

import http.client
import json
import os
import threading
import time

import pytest

from shmq_clients import Daemon

QUEUES = 300
# The threads a daemon may add for any number of queues: a reaper thread per
# 127 queues and the bridge's own. Far below one per queue.
SPARE_THREADS = 12


def threads_of(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def wait_until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def call(port, action, params, timeout=60):
    """(HTTP status, decoded answer) of one SQS JSON request on a new connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", "/", body=json.dumps(params), headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AmazonSQS.{action}"})
        response = connection.getresponse()
        text = response.read().decode()
        return response.status, json.loads(text) if text else {}
    finally:
        connection.close()


class LongPolls:
    """ReceiveMessage long polls, one thread each; answers in `results`."""

    def __init__(self, port, urls, wait_seconds=20):
        self.results = {}
        self.started = {}
        self.answered = {}
        self._threads = [threading.Thread(target=self._poll, args=(port, url, wait_seconds)) for url in urls]
        for t in self._threads:
            t.start()

    def _poll(self, port, url, wait_seconds):
        self.started[url] = time.monotonic()
        try:
            self.results[url] = call(port, "ReceiveMessage", {"QueueUrl": url, "WaitTimeSeconds": wait_seconds})
        except Exception as e:  # the assertion names it
            self.results[url] = (None, repr(e))
        self.answered[url] = time.monotonic()

    def join(self, timeout=60):
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)


@pytest.fixture
def fresh_daemon():
    """A daemon of this test's own: its thread count is the test's subject."""
    d = Daemon(extra_args=["--max-messages", "1024", "--arena-mib", "2"])
    yield d
    d.stop()


def idle_threads(daemon):
    time.sleep(0.5)  # threads the daemon starts reach their idle state
    return threads_of(daemon.proc.pid)


def create_queues(daemon, count, stem="q"):
    urls = []
    for i in range(count):
        status, answer = call(daemon.port, "CreateQueue", {"QueueName": f"{stem}{i}"})
        assert status == 200, answer
        urls.append(answer["QueueUrl"])
    return urls


def test_long_polls_on_many_queues_use_a_bounded_number_of_threads_and_leave_none(fresh_daemon):
    pid = fresh_daemon.proc.pid
    idle = idle_threads(fresh_daemon)
    urls = create_queues(fresh_daemon, QUEUES)
    assert threads_of(pid) <= idle + SPARE_THREADS, "threads grow with the number of queues"

    polls = LongPolls(fresh_daemon.port, urls)
    # Wait until every poll is in the daemon's hands (its request sent), then
    # check the daemon did not start a thread per long-polled queue.
    assert wait_until(lambda: len(polls.started) == QUEUES)
    time.sleep(1.0)
    assert not polls.answered, "a long poll on an empty queue was answered early"
    assert threads_of(pid) <= idle + SPARE_THREADS, "threads grow with the number of long-polled queues"

    # A message on any queue answers that queue's poll.
    for i, url in enumerate(urls):
        status, answer = call(fresh_daemon.port, "SendMessage", {"QueueUrl": url, "MessageBody": f"m{i}"})
        assert status == 200, answer
    assert polls.join(30), "long polls not answered after their messages came"
    for i, url in enumerate(urls):
        status, answer = polls.results[url]
        assert status == 200, answer
        assert [m["Body"] for m in answer.get("Messages", [])] == [f"m{i}"]

    for url in urls:
        status, answer = call(fresh_daemon.port, "DeleteQueue", {"QueueUrl": url})
        assert status == 200, answer
    assert wait_until(lambda: threads_of(pid) <= idle), \
        f"{threads_of(pid)} threads after deleting every queue, {idle} before any"


def test_long_polls_of_deleted_queues_get_queue_does_not_exist_and_free_their_threads(fresh_daemon):
    pid = fresh_daemon.proc.pid
    idle = idle_threads(fresh_daemon)
    urls = create_queues(fresh_daemon, QUEUES, stem="gone")
    polls = LongPolls(fresh_daemon.port, urls)
    assert wait_until(lambda: len(polls.started) == QUEUES)
    time.sleep(1.0)
    for url in urls:
        status, answer = call(fresh_daemon.port, "DeleteQueue", {"QueueUrl": url})
        assert status == 200, answer
    assert polls.join(30), "long polls of deleted queues not answered"
    for url in urls:
        status, answer = polls.results[url]
        assert status == 400, answer
        assert answer.get("__type", "").endswith("QueueDoesNotExist"), answer
    assert wait_until(lambda: threads_of(pid) <= idle), \
        f"{threads_of(pid)} threads after deleting every queue, {idle} before any"


def test_long_polls_on_many_queues_end_after_their_wait_time(fresh_daemon):
    urls = create_queues(fresh_daemon, 150, stem="quiet")  # more than one futex wait takes
    polls = LongPolls(fresh_daemon.port, urls, wait_seconds=2)
    assert polls.join(30), "long polls not answered within 30 s of a 2 s wait"
    for url in urls:
        status, answer = polls.results[url]
        assert status == 200, answer
        assert "Messages" not in answer or answer["Messages"] == []
        assert polls.answered[url] - polls.started[url] >= 1.9, "answered before the wait time ended"
