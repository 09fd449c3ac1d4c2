"""What the real-client tests share: a shmqd with its SQS bridge on a free
port of 127.0.0.1, in its own namespace, and clients for it: boto3, the aws
CLI (both Query protocol) and shmqctl (libshmq). Importing this module first
isolates the process from the user's AWS set-up.

ctest passes the binaries as SHMQD and SHMQCTL; by hand:
    SHMQD=build/bin/shmqd SHMQCTL=build/bin/shmqctl python3 -m pytest -q tests/clients/python
"""

import atexit
import glob
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
SHMQD = os.environ.get("SHMQD") or str(REPO / "build" / "bin" / "shmqd")
SHMQCTL = os.environ.get("SHMQCTL") or str(REPO / "build" / "bin" / "shmqctl")
# Debian's aws CLI (2.9, /usr/bin) before any other on PATH.
AWS = shutil.which("aws", path="/usr/bin") or shutil.which("aws") or "aws"
REGION = "us-east-1"
ACCOUNT = "000000000000"


def _merged_sqs_model() -> str:
    """Debian's botocore and awscli predate StartMessageMoveTask,
    CancelMessageMoveTask, ListMessageMoveTasks and MessageSystemAttributeNames:
    writes the installed SQS model plus those (sqs_model_additions.json) to a
    directory for AWS_DATA_PATH, which both botocore and the CLI search before
    their own models."""
    import botocore.loaders

    model = botocore.loaders.Loader().load_service_model("sqs", "service-2", "2012-11-05")
    additions = json.loads((HERE / "sqs_model_additions.json").read_text())
    for name, op in additions["operations"].items():
        model["operations"].setdefault(name, op)
    for name, shape in additions["shapes"].items():
        model["shapes"].setdefault(name, shape)
    for shape, members in additions["members"].items():
        for name, member in members.items():
            model["shapes"][shape]["members"].setdefault(name, member)
    root = tempfile.mkdtemp(prefix="shmq-sqs-model-")
    atexit.register(shutil.rmtree, root, True)
    target = Path(root) / "sqs" / "2012-11-05"
    target.mkdir(parents=True)
    (target / "service-2.json").write_text(json.dumps(model))
    return root


# Never the user's AWS set-up: dummy credentials, no config files, no
# profiles, no proxies for 127.0.0.1, no retries that would hide an error.
for _var in list(os.environ):
    if _var.startswith("AWS_"):
        del os.environ[_var]
os.environ.update(
    AWS_ACCESS_KEY_ID="test",
    AWS_SECRET_ACCESS_KEY="test",
    AWS_CONFIG_FILE="/dev/null",
    AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    AWS_DEFAULT_REGION=REGION,
    AWS_EC2_METADATA_DISABLED="true",
    AWS_MAX_ATTEMPTS="1",
    AWS_RETRY_MODE="standard",
    AWS_PAGER="",
    NO_PROXY="127.0.0.1,localhost",
    no_proxy="127.0.0.1,localhost",
)
os.environ["AWS_DATA_PATH"] = _merged_sqs_model()

import boto3  # noqa: E402  (after the environment above)
import botocore.config  # noqa: E402
import botocore.exceptions  # noqa: E402

_namespaces = itertools.count()


def _die_with_parent():
    """In the child before exec: SIGTERM when the test process dies, even by
    SIGKILL (a ctest timeout), so no daemon outlives its tests."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class CliError(Exception):
    """The aws CLI exited non-zero; code is the SQS error code it printed."""

    def __init__(self, code, stderr):
        super().__init__(f"{code}: {stderr.strip()}")
        self.code = code
        self.stderr = stderr


class Daemon:
    """One shmqd with its bridge on a free port (or where `listen` says);
    stop() ends it with SIGTERM and removes its segments. `preexec` runs in
    the child before exec (e.g. to set resource limits). `ns`: serve that
    namespace (say, the segments an earlier daemon left) instead of a new one."""

    def __init__(self, extra_args=(), listen="127.0.0.1:0", preexec=None, ns=None, log_level="warn"):
        self.ns = ns or f"pyc{os.getpid()}x{next(_namespaces)}"
        self.dir = tempfile.mkdtemp(prefix=f"shmq-{self.ns}-")
        port_file = Path(self.dir) / "port"
        self.log_path = Path(self.dir) / "shmqd.log"
        args = [
            SHMQD,
            "--namespace", self.ns,
            "--bridge-listen", listen,
            "--bridge-port-file", str(port_file),
            "--log-level", log_level,
            *extra_args,
        ]
        with open(self.log_path, "wb") as log:
            def before_exec():
                _die_with_parent()
                if preexec:
                    preexec()

            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, preexec_fn=before_exec)
        atexit.register(self.stop)
        deadline = time.monotonic() + 15
        self.port = None
        while self.port is None:
            if self.proc.poll() is not None:
                log = self.log_path.read_text(errors="replace")
                self._cleanup()
                raise RuntimeError(f"shmqd exited with {self.proc.returncode} at start:\n{log}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("shmqd did not write its bridge port within 15 s")
            try:
                self.port = int(port_file.read_text().strip())
            except (OSError, ValueError):
                time.sleep(0.02)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._cleanup()

    def _cleanup(self):
        for path in glob.glob(f"/dev/shm/shmq.{self.ns}.*"):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # --- clients ---------------------------------------------------------

    def client(self, access_key="test", secret_key="test", read_timeout=30):
        session = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=REGION
        )
        config = botocore.config.Config(
            retries={"max_attempts": 1, "mode": "standard"},
            read_timeout=read_timeout,
            connect_timeout=5,
            max_pool_connections=20,
        )
        return session.client("sqs", endpoint_url=self.endpoint, config=config)

    def cli(self, command, *args):
        """Runs `aws sqs COMMAND ARGS --output json`; returns the parsed
        output ({} when it printed nothing), raises CliError."""
        cmd = [AWS, "--endpoint-url", self.endpoint, "--region", REGION, "--output", "json",
               "sqs", command, *[str(a) for a in args]]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            m = re.search(r"An error occurred \(([^)]+)\)", r.stderr)
            raise CliError(m.group(1) if m else None, r.stderr)
        return json.loads(r.stdout) if r.stdout.strip() else {}

    def shmqctl(self, *args, check=True):
        cmd = [SHMQCTL, "--namespace", self.ns, *[str(a) for a in args]]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if check and r.returncode != 0:
            raise AssertionError(f"{cmd} exited {r.returncode}: {r.stderr}")
        return r


def raw_http(port, request: bytes, timeout=10) -> bytes:
    """Sends `request` as it is on a new connection to 127.0.0.1:port and
    returns everything the server sent until it closed."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
        return answer


def error_code(excinfo) -> str:
    """The SQS error code of a boto3 ClientError."""
    return excinfo.value.response["Error"]["Code"]


def http_status(excinfo) -> int:
    return excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]
