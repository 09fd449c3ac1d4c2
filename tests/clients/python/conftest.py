"""Fixtures of the real-client tests: a shmqd per test module (see
shmq_clients.Daemon), a boto3 client for it, fresh queues."""

import itertools

import pytest

from shmq_clients import Daemon


@pytest.fixture(scope="module")
def daemon():
    d = Daemon()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def sqs(daemon):
    return daemon.client()


_queue_names = itertools.count()


@pytest.fixture
def unique():
    """unique("jobs") -> "jobs-3": distinct queue names within a daemon."""
    return lambda stem: f"{stem}-{next(_queue_names)}"


@pytest.fixture
def queue(sqs, unique):
    """A fresh standard queue's URL."""
    return sqs.create_queue(QueueName=unique("q"))["QueueUrl"]


@pytest.fixture
def fifo_queue(sqs, unique):
    return sqs.create_queue(QueueName=unique("f") + ".fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
