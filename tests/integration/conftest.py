"""Shared fixtures for the integration tests (tests/integration/test_*.py).

The tests run against the real services that `tools/services start` brings up
(Kafka in KRaft mode and redis-server). Addresses come from the environment:

    MODELGW_KAFKA      Kafka bootstrap, default 127.0.0.1:19092
    MODELGW_REDIS      Redis host:port, default 127.0.0.1:16379
    MODELGW_BUILD_DIR  where the built binaries are, default <repo>/build

A service that does not answer FAILS the test (never a silent skip).
Every test isolates itself: topic names, consumer groups and Redis key
prefixes carry a per-run random suffix (see `unique_name`, `redis_prefix`).

Fixtures:
    source_dir              repository root (pathlib.Path)
    build_dir               build directory (pathlib.Path), must exist
    binary(name)            path of a built program, fails clearly when missing
    kafka_bootstrap         "host:port" of a broker that answered a metadata request
    kafka_admin             confluent_kafka AdminClient for it
    create_topic(...)       creates a topic (default 3 partitions), deleted after the test
    redis_addr              "host:port" of a Redis that answered PING
    redis_host_port         (host, port) of the same
    redis_cli(*args)        runs redis-cli against it, returns stdout (str)
    redis_prefix            unique key prefix; its keys are deleted after the test
    unique_name(prefix)     unique name for topics, groups, ids
    start_process(args,...) starts a program, collects its output, ends it after the test
    run_process(args,...)   runs a program to completion (with a timeout)
    wait_until(pred,...)    polls pred() until true or fails after a timeout
"""

import os
import pathlib
import re
import signal
import socket
import subprocess
import time
import uuid

import pytest

SOURCE_DIR = pathlib.Path(
    os.environ.get("MODELGW_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2])
)
RUN_ID = uuid.uuid4().hex[:10]
SERVICES_HINT = "start the services with: tools/services start"


def _split_addr(addr):
    host, _, port = addr.rpartition(":")
    return host or "127.0.0.1", int(port)


# --- paths -------------------------------------------------------------------


@pytest.fixture(scope="session")
def source_dir():
    return SOURCE_DIR


@pytest.fixture(scope="session")
def build_dir():
    path = pathlib.Path(os.environ.get("MODELGW_BUILD_DIR", SOURCE_DIR / "build"))
    if not path.is_dir():
        pytest.fail(f"build directory {path} does not exist (set MODELGW_BUILD_DIR or build first)")
    return path


@pytest.fixture(scope="session")
def binary(build_dir):
    def find(name):
        path = build_dir / name
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"program {name} not built in {build_dir} (run ninja -C {build_dir})")
        return path

    return find


# --- names -------------------------------------------------------------------


@pytest.fixture
def unique_name(request):
    """unique_name("topic") -> "topic-<test>-<run id>-<n>"; safe for Kafka and Redis."""
    test = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:40].strip("-")
    counter = iter(range(1_000_000))

    def make(prefix="mgw"):
        return f"{prefix}-{test}-{RUN_ID}-{next(counter)}"

    return make


# --- Kafka -------------------------------------------------------------------


@pytest.fixture(scope="session")
def kafka_bootstrap():
    addr = os.environ.get("MODELGW_KAFKA", "127.0.0.1:19092")
    try:
        from confluent_kafka.admin import AdminClient
    except ImportError:
        pytest.fail("python package confluent-kafka missing: run tools/install-deps")
    try:
        md = AdminClient({"bootstrap.servers": addr}).list_topics(timeout=15)
    except Exception as exc:  # KafkaException: not reachable
        pytest.fail(f"Kafka at {addr} (MODELGW_KAFKA) is not reachable: {exc}; {SERVICES_HINT}")
    if not md.brokers:
        pytest.fail(f"Kafka at {addr} returned no brokers; {SERVICES_HINT}")
    return addr


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture
def create_topic(kafka_admin, unique_name):
    """create_topic(name=None, partitions=3, config=None) -> topic name.

    Waits until every partition has a leader; deletes the topics after the test.
    """
    from confluent_kafka.admin import NewTopic

    created = []

    def create(name=None, partitions=3, config=None):
        name = name or unique_name("topic")
        futures = kafka_admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
            operation_timeout=30,
        )
        futures[name].result(timeout=30)
        created.append(name)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            md = kafka_admin.list_topics(name, timeout=5).topics.get(name)
            if md and not md.error and len(md.partitions) == partitions and all(
                p.leader >= 0 for p in md.partitions.values()
            ):
                return name
            time.sleep(0.1)
        pytest.fail(f"topic {name} has no leaders after 30 s")

    yield create
    if created:
        for fut in kafka_admin.delete_topics(created, operation_timeout=30).values():
            try:
                fut.result(timeout=30)
            except Exception:
                pass  # cleanup only; the topic name was unique anyway


# --- Redis -------------------------------------------------------------------


def _redis_ping(host, port):
    with socket.create_connection((host, port), timeout=3) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64)


@pytest.fixture(scope="session")
def redis_host_port():
    addr = os.environ.get("MODELGW_REDIS", "127.0.0.1:16379")
    host, port = _split_addr(addr)
    try:
        reply = _redis_ping(host, port)
    except OSError as exc:
        pytest.fail(f"Redis at {addr} (MODELGW_REDIS) is not reachable: {exc}; {SERVICES_HINT}")
    if not reply.startswith(b"+PONG"):
        pytest.fail(f"Redis at {addr} answered PING with {reply!r}")
    return host, port


@pytest.fixture(scope="session")
def redis_addr(redis_host_port):
    return f"{redis_host_port[0]}:{redis_host_port[1]}"


@pytest.fixture(scope="session")
def redis_cli(redis_host_port):
    host, port = redis_host_port

    def cli(*args):
        out = subprocess.run(
            ["redis-cli", "-h", host, "-p", str(port), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return out.stdout.strip()

    return cli


@pytest.fixture
def redis_prefix(redis_cli, unique_name):
    """A key prefix ("mgwtest:<test>-<run>:") owned by this test; its keys are deleted after it."""
    prefix = "mgwtest:" + unique_name("r") + ":"
    yield prefix
    keys = redis_cli("--scan", "--pattern", prefix + "*").split()
    for i in range(0, len(keys), 500):
        redis_cli("DEL", *keys[i : i + 500])


# --- processes ---------------------------------------------------------------


class ManagedProcess:
    """A started program whose stdout and stderr go to files in the test's tmp dir."""

    def __init__(self, args, out_dir, name, env=None, cwd=None):
        self.args = [str(a) for a in args]
        self.stdout_path = out_dir / f"{name}.stdout"
        self.stderr_path = out_dir / f"{name}.stderr"
        full_env = dict(os.environ)
        full_env.update(env or {})
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.args, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                env=full_env, cwd=cwd, start_new_session=True,
            )

    @property
    def pid(self):
        return self.proc.pid

    @property
    def stdout(self):
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    def running(self):
        return self.proc.poll() is None

    def wait(self, timeout=60):
        """Waits for exit; fails the test (with the output) when it takes longer."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"{self.args[0]} did not exit within {timeout} s\n{self.describe()}")

    def signal(self, sig):
        if self.running():
            self.proc.send_signal(sig)

    def stop(self, timeout=15):
        """SIGTERM, then SIGKILL after timeout; returns the exit code."""
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def describe(self, limit=4000):
        return (
            f"command: {' '.join(self.args)}\nexit: {self.proc.poll()}\n"
            f"--- stdout ---\n{self.stdout[-limit:]}\n--- stderr ---\n{self.stderr[-limit:]}"
        )


@pytest.fixture
def start_process(tmp_path):
    """start_process(args, env=None, cwd=None, name=None) -> ManagedProcess (ended after the test)."""
    procs = []

    def start(args, env=None, cwd=None, name=None):
        name = name or f"{pathlib.Path(str(args[0])).name}-{len(procs)}"
        proc = ManagedProcess(args, tmp_path, name, env=env, cwd=cwd)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()


@pytest.fixture
def run_process():
    """run_process(args, timeout=120, env=None, check=True) -> CompletedProcess (text).

    With check=True a non-zero exit fails the test and shows the output.
    """

    def run(args, timeout=120, env=None, check=True, cwd=None, input=None):
        full_env = dict(os.environ)
        full_env.update(env or {})
        args = [str(a) for a in args]
        try:
            res = subprocess.run(
                args, capture_output=True, text=True, timeout=timeout, env=full_env,
                cwd=cwd, input=input,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"{' '.join(args)} timed out after {timeout} s\n{exc.stdout}\n{exc.stderr}")
        if check and res.returncode != 0:
            pytest.fail(
                f"{' '.join(args)} exited {res.returncode}\n--- stdout ---\n{res.stdout}"
                f"\n--- stderr ---\n{res.stderr}"
            )
        return res

    return run


@pytest.fixture(scope="session")
def wait_until():
    """wait_until(pred, timeout=30, what="condition", interval=0.1) -> pred()'s truthy value."""

    def wait(pred, timeout=30, what="condition", interval=0.1):
        deadline = time.monotonic() + timeout
        while True:
            value = pred()
            if value:
                return value
            if time.monotonic() >= deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {what}")
            time.sleep(interval)

    return wait
