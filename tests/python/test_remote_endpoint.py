"""The package shmq against an SQS endpoint, as users will use it.

Another host: a shmqd in a network namespace of its own, linked to this one
by a veth pair and reached by address only (its control socket, an abstract
Unix socket, is out of reach there, as on another machine). Over HTTP, and
over HTTPS through a TLS terminator (stunnel) with a certificate of a CA
the test makes. These need root (ip netns); they are skipped without it.

Faults, against a local daemon's bridge: a proxy that throttles or fails
the first requests, a wrong secret, and the daemon killed with SIGKILL and
restarted on the same port while a producer sends.
"""

import collections
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from shmq_clients import SHMQD, Daemon, _die_with_parent

import shmq

ACCESS_KEY = "AKIDREMOTETEST"
SECRET_KEY = "remote-endpoint-test-secret"
AUTH = f"{ACCESS_KEY}:{SECRET_KEY}"
REGION = "us-east-1"  # the bridge's --region, which it verifies signatures for
BRIDGE_PORT = 9324
TLS_PORT = 9443


def remote_client(url, **options):
    options.setdefault("access_key_id", ACCESS_KEY)
    options.setdefault("secret_access_key", SECRET_KEY)
    options.setdefault("region", REGION)
    return shmq.Client(endpoint=url, **options)


def wait_for_port(host, port, proc, what, timeout=15):
    """Until `host:port` accepts a connection; fails if `proc` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} at start")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not listen on {host}:{port} within {timeout} s")
            time.sleep(0.05)


def stop_process(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def receive_all(queue, expected=None, rounds=50):
    """Receives and deletes until `expected` messages came, or until two
    receives in a row find none; returns them in the order received."""
    got = []
    empty = 0
    for _ in range(rounds):
        batch = queue.receive(max_messages=10, wait_time=0 if expected is None else 1)
        if not batch:
            empty += 1
            if expected is None and empty >= 2:
                break
            continue
        empty = 0
        for m in batch:
            got.append(m)
            m.delete()
        if expected is not None and len(got) >= expected:
            break
    return got


# --- another host: a network namespace --------------------------------------


def _netns_unavailable():
    """Why another host cannot be made here, or None if it can."""
    if os.geteuid() != 0:
        return "needs root to make a network namespace and a veth pair"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"ip netns is unavailable: {r.stderr.strip()}"
    return None


class OtherHost:
    """A network namespace linked to this one by a veth pair: `local` is
    this side's address, `address` the other side's. close() ends what runs
    in it and removes the namespace and both ends of the pair."""

    def __init__(self):
        pid = os.getpid()
        self.name = f"shmq-t-{pid}"
        self.outer = f"sq{pid}o"  # interface names: at most 15 characters
        self.inner = f"sq{pid}i"
        self.procs = []
        self.dir = tempfile.mkdtemp(prefix=f"shmq-netns-{pid}-")
        subnet = self._free_subnet(pid)
        self.local = f"10.231.{subnet}.1"
        self.address = f"10.231.{subnet}.2"
        try:
            self._ip("netns", "add", self.name)
            self._ip("link", "add", self.outer, "type", "veth", "peer", "name", self.inner)
            self._ip("link", "set", self.inner, "netns", self.name)
            self._ip("addr", "add", f"{self.local}/30", "dev", self.outer)
            self._ip("link", "set", self.outer, "up")
            self._ip("netns", "exec", self.name, "ip", "addr", "add", f"{self.address}/30", "dev", self.inner)
            self._ip("netns", "exec", self.name, "ip", "link", "set", self.inner, "up")
            self._ip("netns", "exec", self.name, "ip", "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _free_subnet(pid):
        """A 10.231.X.0/30 no interface of this namespace has an address in."""
        used = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True).stdout
        for i in range(254):
            x = (pid + i) % 254 + 1
            if f" 10.231.{x}." not in used:
                return x
        raise RuntimeError("no free 10.231.X.0/30 subnet")

    @staticmethod
    def _ip(*args):
        r = subprocess.run(["ip", *args], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")

    def start(self, args, log_name):
        """Runs `args` in the namespace (ip netns exec executes it in place:
        the process is the program itself), output into a log file."""
        log_path = Path(self.dir) / log_name
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(["ip", "netns", "exec", self.name, *args], stdout=log,
                                    stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        proc.log_path = log_path
        self.procs.append(proc)
        return proc

    def close(self):
        for proc in reversed(self.procs):
            stop_process(proc)
        # Ends anything else left in the namespace before it goes.
        pids = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        # Deleting the namespace deletes its end of the pair, and so both;
        # this is for a namespace that was never made.
        subprocess.run(["ip", "link", "del", self.outer], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def other_host():
    reason = _netns_unavailable()
    if reason:
        pytest.skip(reason)
    host = OtherHost()
    try:
        yield host
    finally:
        host.close()


@pytest.fixture(scope="module")
def far_daemon(other_host):
    """shmqd in the other host, its bridge on the host's address, checking
    signatures. The namespace's /dev/shm is this one's (a network namespace
    does not separate mounts): its shmq namespace is one of its own."""
    ns = f"pyfar{os.getpid()}"
    proc = other_host.start(
        [SHMQD, "--namespace", ns, "--bridge-listen", f"{other_host.address}:{BRIDGE_PORT}",
         "--auth", AUTH, "--log-level", "warn"], "shmqd.log")
    try:
        wait_for_port(other_host.address, BRIDGE_PORT, proc, "shmqd in the network namespace")
        proc.ns = ns
        proc.url = f"http://{other_host.address}:{BRIDGE_PORT}"
        yield proc
    finally:
        stop_process(proc)
        for path in Path("/dev/shm").glob(f"shmq.{ns}.*"):
            path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def far(far_daemon):
    with remote_client(far_daemon.url) as c:
        yield c


def test_another_host_is_reached_by_its_address_only(far_daemon, far):
    assert far.remote
    assert far.endpoint_url == far_daemon.url
    assert far.namespace is None
    assert repr(far) == f"<shmq.Client endpoint={far_daemon.url}>"
    # Its control socket is in the other network namespace: no local client.
    with pytest.raises(shmq.DaemonUnavailable):
        shmq.Client(far_daemon.ns)
    assert far.list_queues(prefix="no-such-prefix") == []


def test_queues_and_messages_over_http(far, unique):
    name = unique("far")
    far.create_queue(name, {"VisibilityTimeout": 20}, tags={"team": "remote"})
    far.create_queue(name, {"VisibilityTimeout": 20})  # the same again: nothing happens
    assert name in far.list_queues(prefix="far")
    attributes = far.get_queue_attributes(name)
    assert attributes["VisibilityTimeout"] == "20"
    assert attributes["QueueArn"].endswith(f":{name}")
    assert far.list_queue_tags(name) == {"team": "remote"}
    with pytest.raises(shmq.QueueNameExists):
        far.create_queue(name, {"VisibilityTimeout": 21})

    with far.open_queue(name) as q:
        assert q.remote
        sent = q.send("héllo from afar", attributes={
            "kind": "image",
            "n": 42,
            "raw": b"\x00\xff\x10",
            "typed": shmq.MessageAttribute("Number.int", "7"),
            "blob": shmq.MessageAttribute("Binary.gz", b"\x1f\x8b\x00"),
        })
        assert len(sent.message_id) == 36
        assert sent.sequence_number is None
        (m,) = q.receive(max_messages=10, wait_time=1)
        assert m.text == "héllo from afar"
        assert m.body == "héllo from afar".encode()
        assert m.message_id == sent.message_id
        assert m.receive_count == 1
        assert abs(m.sent_timestamp_ms / 1000 - time.time()) < 60
        assert m.attributes == {
            "kind": shmq.MessageAttribute("String", "image"),
            "n": shmq.MessageAttribute("Number", "42"),
            "raw": shmq.MessageAttribute("Binary", b"\x00\xff\x10"),
            "typed": shmq.MessageAttribute("Number.int", "7"),
            "blob": shmq.MessageAttribute("Binary.gz", b"\x1f\x8b\x00"),
        }
        assert q.counts().in_flight == 1
        m.delete()
        assert q.receive(wait_time=0) == []
        assert q.counts().in_flight == 0

        # What SQS refuses is refused, and nothing is sent.
        with pytest.raises(shmq.InvalidParameter):
            q.send("")
        with pytest.raises(shmq.InvalidParameter):
            q.send("x", delay_seconds=901)
        with pytest.raises(shmq.InvalidReceiptHandle):
            q.delete("not-a-receipt-handle")
        assert q.receive(wait_time=0) == []

    far.delete_queue(name)
    assert name not in far.list_queues()
    with pytest.raises(shmq.QueueDoesNotExist):
        far.open_queue(name)


def test_batches_over_http(far, unique):
    name = unique("far-batch")
    far.create_queue(name)
    with far.open_queue(name) as q:
        entries = ["plain body", b"bytes body"]
        entries += [{"body": f"entry {i}", "id": f"e{i}", "attributes": {"i": i}} for i in range(8)]
        results = q.send_batch(entries)
        assert [r.ok for r in results] == [True] * 10
        assert [r.id for r in results] == ["0", "1"] + [f"e{i}" for i in range(8)]
        assert len({r.message_id for r in results}) == 10

        got = []
        for _ in range(20):
            got += q.receive(max_messages=10, wait_time=1)
            if len(got) >= 10:
                break
        assert sorted(m.text for m in got) == sorted(["plain body", "bytes body"] + [f"entry {i}" for i in range(8)])
        assert {m.message_id for m in got} == {r.message_id for r in results}
        by_text = {m.text: m for m in got}
        assert by_text["entry 3"].attributes == {"i": shmq.MessageAttribute("Number", "3")}

        # Two given back at once, received again; the rest deleted in one
        # batch, with a bad handle failing alone.
        again = [by_text["plain body"], by_text["bytes body"]]
        assert [r.ok for r in q.change_visibility_batch([(m, 0) for m in again])] == [True, True]
        rest = [m for m in got if m not in again]
        results = q.delete_batch(rest + ["bogus-handle"])
        assert [r.ok for r in results] == [True] * 8 + [False]
        assert isinstance(results[-1].error, shmq.InvalidReceiptHandle)
        redelivered = []
        for _ in range(10):
            redelivered += q.receive(max_messages=10, wait_time=1)
            if len(redelivered) >= 2:
                break
        assert sorted(m.text for m in redelivered) == ["bytes body", "plain body"]
        assert [m.receive_count for m in redelivered] == [2, 2]
        assert [r.ok for r in q.delete_batch(redelivered)] == [True, True]
        with pytest.raises(shmq.InvalidParameter):
            q.send_batch([str(i) for i in range(11)])
        counts = q.counts()
        assert (counts.visible, counts.in_flight, counts.delayed) == (0, 0, 0)
    far.delete_queue(name)


def test_fifo_groups_keep_their_order_over_http(far, unique):
    name = unique("far-orders") + ".fifo"
    far.create_queue(name, {"FifoQueue": True, "ContentBasedDeduplication": True})
    with far.open_queue(name) as q:
        sequence = []
        for i in range(5):
            for group in ("a", "b", "c"):
                sent = q.send(f"{group}{i}", group_id=group)
                sequence.append(int(sent.sequence_number))
        assert sequence == sorted(sequence)
        # The same body in the same group within five minutes: deduplicated.
        q.send("a0", group_id="a")
        q.send("b1", group_id="b", deduplication_id="explicit-id")  # another id: a new message

        got = receive_all(q, expected=16)
        order = collections.defaultdict(list)
        for m in got:
            assert m.group_id == m.text[0]
            assert m.sequence_number is not None
            order[m.group_id].append(m.text)
        assert order == {
            "a": ["a0", "a1", "a2", "a3", "a4"],
            "b": ["b0", "b1", "b2", "b3", "b4", "b1"],
            "c": ["c0", "c1", "c2", "c3", "c4"],
        }
        with pytest.raises(shmq.InvalidParameter):
            q.send("no group")
        assert q.receive(wait_time=0) == []
    far.delete_queue(name)


def test_delays_and_visibility_over_http(far, unique):
    name = unique("far-delay")
    far.create_queue(name, {"ReceiveMessageWaitTimeSeconds": 1})
    with far.open_queue(name) as q:
        start = time.monotonic()
        q.send("later", delay_seconds=2)
        assert q.counts().delayed == 1
        assert q.receive(wait_time=0) == []
        (m,) = q.receive(wait_time=5)
        waited = time.monotonic() - start
        assert m.text == "later"
        assert 1.5 <= waited < 4.5

        # Hidden for the visibility timeout the receive asked for, until
        # given back.
        m.change_visibility(30)
        assert q.receive(wait_time=0) == []
        assert q.counts().in_flight == 1
        m.change_visibility(0)
        (again,) = q.receive(wait_time=1, visibility_timeout=30)
        assert again.message_id == m.message_id
        assert again.receive_count == 2
        q.change_visibility(again.receipt_handle, 0)
        (third,) = q.receive(wait_time=1)
        assert third.receive_count == 3
        third.delete()

        # No wait_time: the queue's ReceiveMessageWaitTimeSeconds (1 s).
        start = time.monotonic()
        assert q.receive() == []
        assert 0.8 <= time.monotonic() - start < 3
    far.delete_queue(name)


def test_shmq_endpoint_points_an_unchanged_program_at_another_host(far_daemon, far, unique):
    """A program written for the local daemon (shmq.Client() with no
    arguments) runs against another host when SHMQ_ENDPOINT says so, with
    the credentials and region from the AWS environment."""
    name = unique("far-env")
    far.create_queue(name)
    program = (
        "import shmq, sys\n"
        "with shmq.Client() as client:\n"
        "    print(client.remote, client.endpoint_url)\n"
        "    with client.open_queue(sys.argv[1]) as q:\n"
        "        q.send('sent by an unchanged program')\n"
    )
    env = dict(os.environ, SHMQ_ENDPOINT=far_daemon.url, AWS_ACCESS_KEY_ID=ACCESS_KEY,
               AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_REGION=REGION)
    r = subprocess.run([sys.executable, "-c", program, name], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", far_daemon.url]
    with far.open_queue(name) as q:
        assert [m.text for m in receive_all(q, expected=1)] == ["sent by an unchanged program"]
    far.delete_queue(name)


# --- another host over HTTPS --------------------------------------------------


def _openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {r.stderr.strip()}")


@pytest.fixture(scope="module")
def tls_endpoint(other_host, far_daemon, tmp_path_factory):
    """stunnel in the other host, terminating TLS on TLS_PORT for the
    bridge, with a server certificate for the host's address (an IP SAN)
    signed by a CA made here. Yields (https URL, the CA's PEM file)."""
    stunnel = shutil.which("stunnel4") or shutil.which("stunnel")
    if stunnel is None:
        pytest.skip("stunnel is not installed (Debian package stunnel4; tools/install-deps.sh installs it)")
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    d = tmp_path_factory.mktemp("tls")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=shmq test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=d)
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={other_host.address}", cwd=d)
    (d / "server.ext").write_text(f"subjectAltName=IP:{other_host.address}\nbasicConstraints=CA:FALSE\n"
                                  "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "server.ext", cwd=d)
    (d / "stunnel.conf").write_text(
        "foreground = yes\n"
        "pid =\n"
        "[https]\n"
        f"accept = {other_host.address}:{TLS_PORT}\n"
        f"connect = {other_host.address}:{BRIDGE_PORT}\n"
        f"cert = {d / 'server.pem'}\n"
        f"key = {d / 'server.key'}\n")
    proc = other_host.start([stunnel, str(d / "stunnel.conf")], "stunnel.log")
    try:
        wait_for_port(other_host.address, TLS_PORT, proc, "stunnel")
        yield f"https://{other_host.address}:{TLS_PORT}", str(d / "ca.pem")
    finally:
        stop_process(proc)


def test_https_with_the_endpoints_ca(tls_endpoint, unique):
    url, ca_file = tls_endpoint
    name = unique("tls")
    with remote_client(url, ca_file=ca_file) as c:
        assert c.endpoint_url == url
        c.create_queue(name)
        with c.open_queue(name) as q:
            sent = q.send("over TLS", attributes={"raw": b"\x01\x02"})
            (m,) = q.receive(wait_time=1)
            assert (m.text, m.message_id) == ("over TLS", sent.message_id)
            assert m.attributes["raw"].value == b"\x01\x02"
            m.delete()
            assert q.receive(wait_time=0) == []
        c.delete_queue(name)


def test_https_refuses_a_certificate_the_system_does_not_trust(tls_endpoint):
    url, _ = tls_endpoint
    c = remote_client(url)  # the system's store, which does not have the test's CA
    with pytest.raises(shmq.Error) as failed:
        c.list_queues()
    assert "certificate verify failed" in str(failed.value)
    assert url in str(failed.value)
    with pytest.raises(shmq.Error, match="certificate verify failed"):
        c.open_queue("anything")


def test_an_untrusted_certificate_is_refused_at_once_not_retried(tmp_path):
    """A certificate that does not verify will not on the next try either:
    one handshake, however many attempts the client may make."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    import ssl
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
             "key.pem", "-out", "cert.pem", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
             "subjectAltName=IP:127.0.0.1", cwd=tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted = []

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
            try:
                context.wrap_socket(conn, server_side=True).close()
            except (ssl.SSLError, OSError):
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        c = remote_client(f"https://127.0.0.1:{port}", max_attempts=5, retry_base=0.2)
        with pytest.raises(shmq.Error, match="certificate verify failed"):
            c.list_queues()
        assert len(accepted) == 1, "an untrusted certificate was tried again"
    finally:
        listener.close()


def test_https_without_verification(tls_endpoint, unique):
    url, _ = tls_endpoint
    name = unique("tls-noverify")
    with remote_client(url, verify_tls=False) as c:
        c.create_queue(name)
        with c.open_queue(name) as q:
            q.send("unverified")
            assert [m.text for m in receive_all(q, expected=1)] == ["unverified"]
        c.delete_queue(name)


def test_a_ca_file_that_cannot_be_read_is_refused_at_once(tls_endpoint, tmp_path):
    url, _ = tls_endpoint
    missing = tmp_path / "no-such-ca.pem"
    with pytest.raises(shmq.InvalidParameter, match=str(missing)):
        remote_client(url, ca_file=str(missing))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(shmq.InvalidParameter, match=str(garbage)):
        remote_client(url, ca_file=str(garbage))


# --- faults -------------------------------------------------------------------

THROTTLED = (400, b'{"__type":"com.amazonaws.sqs#RequestThrottled","message":"Rate exceeded"}')
UNAVAILABLE = (503, b'{"__type":"com.amazonaws.sqs#ServiceUnavailable"}')
TOO_MANY = (429, b"<html><body>429 Too Many Requests</body></html>")  # a load balancer's, not SQS's


class FaultyProxy:
    """An HTTP proxy on 127.0.0.1 in front of a bridge: answers the first
    requests after reset() with the canned (status, body) failures given,
    forwards the others unchanged (the Host header too, which the signature
    covers), and counts every request."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.lock = threading.Lock()
        self.failures = []
        self.requests = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as SQS clients use it

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy.lock:
                    proxy.requests += 1
                    n = proxy.requests
                    failure = proxy.failures[n - 1] if n <= len(proxy.failures) else None
                if failure:
                    status, payload = failure
                    headers = [("Content-Type", "application/x-amz-json-1.0")]
                else:
                    upstream = HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                    upstream.request("POST", self.path, body, headers=dict(self.headers.items()))
                    answer = upstream.getresponse()
                    status, payload = answer.status, answer.read()
                    headers = [(k, v) for k, v in answer.getheaders()
                               if k.lower() not in ("content-length", "connection", "date", "server")]
                    upstream.close()
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self, failures=()):
        with self.lock:
            self.failures = list(failures)
            self.requests = 0

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def bridge():
    """A local shmqd whose bridge checks signatures."""
    d = Daemon(extra_args=["--auth", AUTH])
    yield d
    d.stop()


@pytest.fixture
def proxy(bridge):
    p = FaultyProxy(bridge.port)
    yield p
    p.close()


def test_how_a_client_is_chosen(bridge, monkeypatch, unique):
    name = unique("chosen")
    monkeypatch.delenv("SHMQ_ENDPOINT", raising=False)
    with pytest.raises(ValueError, match="not both"):
        shmq.Client(bridge.ns, endpoint=bridge.endpoint)
    with pytest.raises(ValueError, match="need an endpoint"):
        shmq.Client(access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY)
    with pytest.raises(shmq.InvalidParameter, match="ftp"):
        shmq.Client(endpoint="ftp://127.0.0.1/")
    with pytest.raises(shmq.InvalidParameter, match="secret_access_key"):
        shmq.Client(endpoint=bridge.endpoint, access_key_id=ACCESS_KEY)
    with pytest.raises(ValueError, match="request_timeout"):
        remote_client(bridge.endpoint, request_timeout=0)

    # SHMQ_ENDPOINT: Client() goes there, and takes the options given;
    # Client(namespace) stays local.
    monkeypatch.setenv("SHMQ_ENDPOINT", bridge.endpoint)
    with shmq.Client(access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, region=REGION) as c:
        assert c.remote and c.endpoint_url == bridge.endpoint
        c.create_queue(name)
        with c.open_queue(name) as q:
            assert q.remote
            q.send("via SHMQ_ENDPOINT")
        assert q.remote and q.closed
    with shmq.Client(bridge.ns) as local:
        assert not local.remote and local.endpoint_url is None and local.namespace == bridge.ns
        with local.open_queue(name) as lq:
            assert not lq.remote
            assert [m.text for m in receive_all(lq)] == ["via SHMQ_ENDPOINT"]
        local.delete_queue(name)
    with shmq.Client() as c:  # the credentials of the environment (shmq_clients sets dummy ones): refused
        assert c.endpoint_url == bridge.endpoint
        with pytest.raises(shmq.PermissionDenied):
            c.list_queues()


def test_throttling_is_retried_until_it_passes(bridge, proxy, unique):
    name = unique("throttled")
    with shmq.Client(bridge.ns) as local:
        local.create_queue(name)
        patient = remote_client(proxy.url, max_attempts=5, retry_base=0.01)
        q = patient.open_queue(name)
        proxy.reset([THROTTLED, UNAVAILABLE, TOO_MANY])
        sent = q.send("after three refusals")
        assert proxy.requests == 4  # three failures, then the one the bridge took
        with local.open_queue(name) as lq:
            got = receive_all(lq)
            assert [(m.text, m.message_id) for m in got] == [("after three refusals", sent.message_id)]

        # Throttled past the last attempt: Throttled, after exactly max_attempts requests.
        hasty = remote_client(proxy.url, max_attempts=2, retry_base=0.01)
        q2 = hasty.open_queue(name)
        proxy.reset([THROTTLED] * 5)
        with pytest.raises(shmq.Throttled) as failed:
            q2.send("never sent")
        assert failed.value.code == "throttled"
        assert "throttled" in str(failed.value)
        assert proxy.requests == 2
        # An admin call keeps the endpoint's own words.
        proxy.reset([THROTTLED] * 5)
        with pytest.raises(shmq.Throttled, match="RequestThrottled: Rate exceeded"):
            hasty.get_queue_attributes(name)
        assert proxy.requests == 2
        with local.open_queue(name) as lq:
            assert lq.receive(wait_time=0) == []
        local.delete_queue(name)


def test_a_wrong_secret_is_refused_without_retries(bridge, proxy, unique):
    name = unique("refused")
    proxy.reset()
    wrong = remote_client(proxy.url, secret_access_key="not-the-secret", max_attempts=5, retry_base=0.01)
    with pytest.raises(shmq.PermissionDenied) as failed:
        wrong.create_queue(name)
    assert failed.value.code == "permission_denied"
    assert isinstance(failed.value, PermissionError)
    assert "SignatureDoesNotMatch" in str(failed.value)
    assert proxy.requests == 1
    unknown = remote_client(proxy.url, access_key_id="AKIDNOBODYHAS", max_attempts=5, retry_base=0.01)
    with pytest.raises(shmq.PermissionDenied):
        unknown.open_queue(name)
    assert proxy.requests == 2
    with shmq.Client(bridge.ns) as local:
        assert name not in local.list_queues()


def test_a_remote_long_poll_leaves_other_threads_running(bridge, unique):
    name = unique("remote-poll")
    with shmq.Client(bridge.ns) as local:
        local.create_queue(name)
        q = remote_client(bridge.endpoint).open_queue(name)
        got = []
        poller = threading.Thread(target=lambda: got.extend(q.receive(wait_time=5)))

        def spin(seconds):
            n, end = 0, time.monotonic() + seconds
            while time.monotonic() < end:
                n += 1
            return n

        alone = spin(0.3)
        start = time.monotonic()
        poller.start()
        beside = spin(0.3)  # while the poll waits on the network
        assert beside > alone * 0.3, (alone, beside)
        with local.open_queue(name) as lq:
            lq.send("wake up")
        poller.join(10)
        assert [m.text for m in got] == ["wake up"]
        assert time.monotonic() - start < 3  # woken by the send, not by the end of its wait
        got[0].delete()
        local.delete_queue(name)


def test_a_daemon_killed_and_restarted_mid_stream_loses_no_confirmed_send(capsys, unique):
    """A producer sends one message at a time while the daemon is killed
    (SIGKILL) and started again on the same port: the queue's segment
    outlives the daemon, the client retries through the gap, and every send
    that returned is received afterwards (at least once)."""
    name = unique("restart")
    first = Daemon(extra_args=["--auth", AUTH])
    second = None
    try:
        with shmq.Client(first.ns) as local:
            local.create_queue(name)
        producer = remote_client(first.endpoint, max_attempts=10, retry_base=0.2)
        q = producer.open_queue(name)
        confirmed, failed = [], []
        longest = [0.0]

        def produce():
            for i in range(300):
                start = time.monotonic()
                try:
                    q.send(f"m-{i}")
                    confirmed.append(i)
                except shmq.Error as e:
                    failed.append((i, e.code, str(e)))
                longest[0] = max(longest[0], time.monotonic() - start)

        thread = threading.Thread(target=produce)
        thread.start()
        deadline = time.monotonic() + 20
        while len(confirmed) + len(failed) < 100 and time.monotonic() < deadline:
            time.sleep(0.002)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
        killed_at = len(confirmed) + len(failed)
        time.sleep(0.3)
        second = Daemon(extra_args=["--auth", AUTH], listen=f"127.0.0.1:{first.port}", ns=first.ns)
        thread.join(120)
        assert not thread.is_alive()

        assert len(confirmed) + len(failed) == 300
        assert killed_at < 300
        # The send after the kill waited through the gap, retrying.
        assert longest[0] >= 0.3
        # Failures, if any, are few, and each says the daemon did not answer.
        assert len(failed) <= 5, failed
        assert all(code == "daemon_unavailable" for _, code, _ in failed), failed

        with shmq.Client(second.ns) as local, local.open_queue(name) as lq:
            received = collections.Counter(m.text for m in receive_all(lq))
        assert set(received) <= {f"m-{i}" for i in range(300)}
        lost = [i for i in confirmed if f"m-{i}" not in received]
        assert lost == [], f"confirmed sends not received: {lost}"
        duplicates = sum(n - 1 for n in received.values())
        with capsys.disabled():
            print(f"\n  daemon killed after {killed_at} sends: {len(confirmed)} confirmed, {len(failed)} failed "
                  f"({sum(1 for i, _, _ in failed if f'm-{i}' in received)} of those delivered all the same), "
                  f"{duplicates} duplicates received; the longest send took {longest[0]:.2f} s")
    finally:
        if second is not None:
            second.stop()
        first.stop()
