"""The README's quick starts, run as written against a real daemon: the
shmqctl walkthrough line by line, the aws CLI lines, the boto3 snippet and
the JavaScript one. Only the endpoint (127.0.0.1:9324) and the namespace
are the test's own; a line that fails as written fails the test."""

import os
import re
import shlex
import subprocess
import tempfile
from pathlib import Path

import pytest

from shmq_clients import AWS, REPO, SHMQCTL, Daemon

README = (REPO / "README.md").read_text()


def code_block(section, language):
    """The first ```language block under the '## section' heading."""
    body = README.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(rf"```{language}\n(.*?)```", body, re.S)
    assert match, f"no {language} block under '{section}'"
    return match.group(1)


def commands(block):
    """The block's commands: continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if shlex.split(line, comments=True)]


@pytest.fixture
def readme_daemon():
    """A daemon of its own for each test: both use a queue named jobs."""
    d = Daemon()
    yield d
    d.stop()


def test_the_shmqctl_walkthrough_runs_as_written(readme_daemon):
    handle = None
    lines = commands(code_block("Quick start: shmqctl", "sh"))
    assert lines and all(argv[0] == "build/bin/shmqctl" for argv in lines), lines
    for argv in lines:
        args = [handle if a == "<ReceiptHandle>" else a for a in argv[1:]]
        assert None not in args, "a receipt handle is used before a receive printed one"
        if "--wait" in args:  # the walkthrough's 20 s long poll; the message is there
            args[args.index("--wait") + 1] = "1"
        r = subprocess.run([SHMQCTL, "--namespace", readme_daemon.ns, *args], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, f"{shlex.join(argv)}\n{r.stdout}{r.stderr}"
        found = re.search(r"^ReceiptHandle: (\S+)$", r.stdout, re.M)
        if found:
            handle = found.group(1)
    assert handle, "the walkthrough's receive printed no message"


def endpoint_of(text, daemon):
    return text.replace("http://127.0.0.1:9324", daemon.endpoint)


def test_the_bridge_quick_starts_run_as_written(readme_daemon):
    section = "Quick start: the SQS bridge"
    env = dict(os.environ)
    for argv in commands(code_block(section, "sh")):
        if argv[0] == "export":
            env.update(a.split("=", 1) for a in argv[1:])
            continue
        assert argv[0] == "aws", argv
        argv = [AWS, *[endpoint_of(a, readme_daemon) for a in argv[1:]]]
        if "--wait-time-seconds" in argv:
            argv[argv.index("--wait-time-seconds") + 1] = "1"
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 0, f"{shlex.join(argv)}\n{r.stdout}{r.stderr}"

    python = endpoint_of(code_block(section, "python"), readme_daemon).replace("WaitTimeSeconds=20", "WaitTimeSeconds=1")
    exec(compile(python, "README.md", "exec"), {})

    # As the README says: a file send.mjs where @aws-sdk/client-sqs is installed.
    assert "npm install @aws-sdk/client-sqs" in README and "send.mjs" in README
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "node_modules").symlink_to(REPO / "tests" / "clients" / "js" / "node_modules")
        script = Path(scratch) / "send.mjs"
        script.write_text(endpoint_of(code_block(section, "js"), readme_daemon))
        r = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
    got = readme_daemon.client().receive_message(
        QueueUrl=f"{readme_daemon.endpoint}/000000000000/jobs", MaxNumberOfMessages=10, WaitTimeSeconds=1)
    assert [m["Body"] for m in got.get("Messages", [])] == ["resize image 42"], "the JavaScript send arrived"


def test_the_c_quick_start_builds_and_runs_as_written(readme_daemon, tmp_path):
    program = code_block("Quick start: C", "c")
    # The daemon's namespace is the test's own.
    assert "shmq_client_open(NULL, &client)" in program
    (tmp_path / "app.c").write_text(program.replace("shmq_client_open(NULL,", f'shmq_client_open("{readme_daemon.ns}",'))
    build = REPO / "build"
    compiled = subprocess.run(
        ["cc", "-std=c99", "-Wall", "-Werror", "-o", str(tmp_path / "app"), str(tmp_path / "app.c"),
         f"-I{REPO / 'include'}", f"-I{build / 'include'}", f"-L{build / 'libshmq'}", "-lshmq"],
        capture_output=True, text=True, timeout=120)
    assert compiled.returncode == 0, compiled.stderr
    ran = subprocess.run([str(tmp_path / "app")], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "LD_LIBRARY_PATH": str(build / "libshmq")})
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "resize image 42\n"
