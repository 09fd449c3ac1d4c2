"""Fixtures of the Python package's tests: a real shmqd per test module, with
its SQS bridge (shmq_clients.Daemon of the real-client tests), an
shmq.Client for its namespace, a boto3 client, and fresh queue names.

ctest sets SHMQD, SHMQCTL and PYTHONPATH (the build tree's python dir); by hand:
    SHMQD=build/bin/shmqd SHMQCTL=build/bin/shmqctl PYTHONPATH=build/python \\
        python3 -m pytest -q tests/python
"""

import itertools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "clients" / "python"))

from shmq_clients import Daemon  # noqa: E402  (after the path above)

import shmq  # noqa: E402


@pytest.fixture(scope="module")
def daemon():
    d = Daemon()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def client(daemon):
    with shmq.Client(daemon.ns) as c:
        yield c


@pytest.fixture(scope="module")
def sqs(daemon):
    return daemon.client()


_names = itertools.count()


@pytest.fixture
def unique():
    """unique("jobs") -> "jobs-3": distinct queue names within a daemon."""
    return lambda stem: f"{stem}-{next(_names)}"


@pytest.fixture
def queue(client, unique):
    """A fresh standard queue, opened."""
    name = unique("q")
    client.create_queue(name)
    with client.open_queue(name) as q:
        yield q
