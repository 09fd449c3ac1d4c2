"""tools/systemd/shmqd.service as systemd reads it: `systemd-analyze
verify` accepts it (with ExecStart pointed at the built shmqd and a user
that exists here), it is Type=notify, and its ExecStart is a command line
shmqd accepts."""

import configparser
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from shmq_clients import REPO, SHMQD

UNIT = REPO / "tools" / "systemd" / "shmqd.service"


def service_section():
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def test_the_unit_is_a_notify_service_that_keeps_the_queues():
    s = service_section()
    assert s["Type"] == "notify"
    assert s["RemoveIPC"] == "no" and s["PrivateDevices"] == "no", "the queues live in the host's /dev/shm"
    argv = shlex.split(s["ExecStart"])
    assert argv[0] == "/usr/local/bin/shmqd", "where cmake --install puts it"
    r = subprocess.run([SHMQD, *argv[1:], "--version"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verifies_the_unit():
    text = UNIT.read_text().replace("/usr/local/bin/shmqd", SHMQD)
    text = text.replace("User=shmq", "User=root").replace("Group=shmq", "Group=root")
    with tempfile.TemporaryDirectory() as scratch:
        unit = Path(scratch) / "shmqd.service"
        unit.write_text(text)
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                           timeout=60)
    assert r.returncode == 0 and not r.stderr.strip(), r.stdout + r.stderr
