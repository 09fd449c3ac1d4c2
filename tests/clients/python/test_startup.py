"""shmqd's start-up as a service manager sees it: a daemon that cannot start
exits non-zero (1) with the reason on stderr, bad usage exits 2, and a host
name for --bridge-listen is resolved."""

import itertools
import os
import socket
import subprocess

from shmq_clients import SHMQD, Daemon

_names = itertools.count()


def run_shmqd(*args):
    ns = f"pys{os.getpid()}x{next(_names)}"
    return subprocess.run([SHMQD, "--namespace", ns, *args], capture_output=True, text=True, timeout=30)


def test_a_taken_bridge_port_makes_start_up_fail():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run_shmqd("--bridge-listen", f"127.0.0.1:{port}")
    assert r.returncode == 1, r
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in r.stderr, r.stderr


def test_an_unresolvable_bridge_host_makes_start_up_fail():
    r = run_shmqd("--bridge-listen", "no-such-host.invalid:0")
    assert r.returncode == 1, r
    assert "no-such-host.invalid" in r.stderr, r.stderr


def test_a_second_daemon_for_a_namespace_exits_1():
    first = Daemon()
    try:
        r = subprocess.run([SHMQD, "--namespace", first.ns, "--bridge-listen", "off"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 1, r
        assert first.ns in r.stderr, r.stderr
    finally:
        first.stop()


def test_a_host_name_for_the_bridge_is_resolved():
    d = Daemon(listen="localhost:0")
    try:
        assert "QueueUrls" not in d.client().list_queues()  # the client connects to 127.0.0.1
    finally:
        d.stop()


def test_an_unknown_log_level_is_refused_with_the_levels():
    r = run_shmqd("--log-level", "verbose", "--bridge-listen", "off")
    assert r.returncode == 2, r
    assert "--log-level 'verbose'" in r.stderr, r.stderr
    assert "trace, debug, info, warn, error, critical, off" in r.stderr, r.stderr



def test_a_bad_config_file_line_is_named_with_the_file_and_its_line(tmp_path):
    cases = [
        ("log-level = warn\n\n# queues are not set here\nqueues = 3\n", 4, "unrecognised option 'queues'"),
        ("log-level = warn\nthis line has no value\n", 2, "invalid line 'this line has no value'"),
        ("[bridge]\nlisten = 127.0.0.1:0\n", 2, "unrecognised option 'bridge.listen'"),
        ("bridge-listen = off\nmax-messages = lots\n", 2, "('lots') for option 'max-messages' is invalid"),
        ("log-level = warn\nlog-level = info\n", 2, "'log-level' cannot be specified more than once"),
    ]
    for i, (text, line, what) in enumerate(cases):
        path = tmp_path / f"shmqd-{i}.conf"
        path.write_text(text)
        r = run_shmqd("--config", str(path))
        assert r.returncode == 2, r
        assert f"shmqd: {path}:{line}: " in r.stderr and what in r.stderr, r.stderr
