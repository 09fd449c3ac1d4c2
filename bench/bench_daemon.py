"""A shmqd for a benchmark: started in a fresh namespace, spoken to over the
SQS JSON protocol, measured through /proc, and removed with its segments.

Shared by bench/bridge_bench.py and bench/memory_report.py (Python standard
library only).
"""

import glob
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BIN = REPO / "build" / "bin"


def wait_for_port_file(path, process, what, timeout=10.0):
    """The port a server wrote to `path` once it listens. Raises if the
    process exits first or nothing comes within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode} before listening")
        try:
            text = Path(path).read_text()
            if text.endswith("\n"):  # written whole
                return int(text)
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{what} did not listen within {timeout} s")


def stop_process(process, timeout=10.0):
    """SIGTERM, then SIGKILL if it does not exit within `timeout` seconds."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def proc_status(pid):
    """/proc/PID/status as a dict; the kB figures converted to bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        value = value.strip()
        if value.endswith(" kB"):
            out[key] = int(value[:-3]) * 1024
        else:
            out[key] = value
    return out


def smaps_rollup(pid):
    """/proc/PID/smaps_rollup in bytes (Rss, Pss, Pss_Anon, Pss_Shmem, ...)."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        value = value.strip()
        if value.endswith(" kB"):
            out[key] = int(value[:-3]) * 1024
    return out


def cpu_seconds(pid):
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class SqsError(RuntimeError):
    pass


class SqsClient:
    """The SQS JSON protocol (AWS JSON 1.0) over one keep-alive connection,
    without signatures (shmqd checks them only under --auth)."""

    def __init__(self, port, host="127.0.0.1"):
        self.endpoint = f"http://{host}:{port}"
        self._connection = http.client.HTTPConnection(host, port, timeout=30)

    def call(self, action, params):
        """The decoded answer of `action`; raises SqsError on any status but 200."""
        body = json.dumps(params)
        headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AmazonSQS.{action}"}
        self._connection.request("POST", "/", body=body, headers=headers)
        response = self._connection.getresponse()
        text = response.read().decode()
        if response.status != 200:
            raise SqsError(f"{action}: HTTP {response.status}: {text}")
        return json.loads(text) if text else {}

    def create_queue(self, name, attributes=None):
        return self.call("CreateQueue", {"QueueName": name, "Attributes": attributes or {}})["QueueUrl"]

    def queue_counts(self, url):
        """(visible, in flight) messages of the queue at `url`."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        a = self.call("GetQueueAttributes", {"QueueUrl": url, "AttributeNames": names})["Attributes"]
        return int(a[names[0]]), int(a[names[1]])

    def close(self):
        self._connection.close()


class Daemon:
    """shmqd in a namespace of its own. Use as a context manager: on exit it
    is stopped and its segments (/dev/shm/shmq.<namespace>.*) are removed."""

    def __init__(self, shmqd, namespace, bridge=True, extra_args=()):
        self.shmqd = str(shmqd)
        self.namespace = namespace
        self.bridge = bridge
        self.extra_args = list(extra_args)
        self.process = None
        self.port = None
        self._dir = tempfile.TemporaryDirectory(prefix="shmq-bench-")
        self._log = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def pid(self):
        return self.process.pid

    def start(self):
        args = [self.shmqd, "--namespace", self.namespace, *self.extra_args]
        port_file = Path(self._dir.name) / "port"
        if self.bridge:
            args += ["--bridge-listen", "127.0.0.1:0", "--bridge-port-file", str(port_file)]
        else:
            args += ["--bridge-listen", "off"]
        self._log = open(Path(self._dir.name) / "shmqd.log", "w+")
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            if self.bridge:
                self.port = wait_for_port_file(port_file, self.process, "shmqd")
            else:
                self._wait_for_control_socket()
        except RuntimeError as e:
            message = f"{e}: {' '.join(args)}\n{self._log_tail()}"
            self.stop()
            raise RuntimeError(message) from None

    def _wait_for_control_socket(self, timeout=10.0):
        # The control socket is the abstract Unix socket "@shmq.<ns>.ctl".
        name = f"@shmq.{self.namespace}.ctl"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"shmqd exited with status {self.process.returncode} before listening")
            if any(line.endswith(" " + name) for line in Path("/proc/net/unix").read_text().splitlines()):
                return
            time.sleep(0.01)
        raise RuntimeError(f"shmqd did not open its control socket within {timeout} s")

    def _log_tail(self):
        self._log.flush()
        self._log.seek(0)
        return self._log.read()[-2000:]

    def client(self):
        return SqsClient(self.port)

    def segments(self):
        """Paths of this namespace's queue segments."""
        return sorted(glob.glob(f"/dev/shm/shmq.{glob.escape(self.namespace)}.*"))

    def stop(self):
        stop_process(self.process)
        for path in self.segments():
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        if self._log:
            self._log.close()
            self._log = None
        self._dir.cleanup()


def fresh_namespace(prefix):
    """A namespace no other run uses: the prefix and this process's id."""
    return f"{prefix}{os.getpid()}"


def exit_on_signals():
    """Turns SIGTERM and SIGHUP into SystemExit and SIGINT into
    KeyboardInterrupt (even when started in the background, where a shell
    ignores SIGINT), so that `with Daemon(...)` blocks clean up."""

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


def run_main(main, name):
    """sys.exit(main(sys.argv[1:])), with a failure (RuntimeError) or an
    interruption reported in one line rather than a traceback."""
    try:
        sys.exit(main(sys.argv[1:]))
    except RuntimeError as e:
        sys.exit(f"{name}: {e}")
    except KeyboardInterrupt:
        sys.exit(f"{name}: interrupted; daemons stopped, segments removed")


def require_file(path, what):
    if not Path(path).is_file():
        sys.exit(f"{what} not found at {path}: build first "
                 "(cmake -S . -B build && cmake --build build -j) or pass its path")
