"""Helpers for the fleet tests (tests/integration/test_fleet_*.py).

A fleet test runs several real `modelgw` worker processes in one consumer
group, against the real Kafka and a Redis (the shared one, or a private
redis-server the test starts), calling a real `modelgw-mockllm` through the
OpenAI adapter. This module adds what gwlib.py does not have:

* `MockLLM`: a modelgw-mockllm process on a free port (fault rules, timings,
  /stats counters per request id, reset, restart on the same port).
* `Fleet`: a GwEnv (unique topics and group) whose worker configs are
  written from nested dicts (any setting, any deployments), plus starting N
  workers and waiting until the group has assigned every partition.
* `Tail`: an incremental reader of one output topic (responses, chunks,
  usage) that keeps what it has read, for tests that act in phases.
* `RedisServer`: a private redis-server on a free port that the test may stop
  and restart (the shared one is never touched).
* small helpers: free ports, polling /stats, scanning a Redis prefix.

Everything is bounded in time: every wait has a timeout and fails the test
with what it saw.
"""

import json
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid

import pytest

from gwlib import GwEnv, decode, encode, libconfig_text, make_request  # noqa: F401

__all__ = [
    "MockLLM", "Fleet", "Tail", "RedisServer", "free_port", "openai_deployment",
    "make_request", "scan_keys", "keys_without_ttl", "group_assignment", "fleet",
    "StatsRecorder", "redis_settings", "wait_for", "error_code", "partition_of",
]


def free_port():
    """A TCP port that was free a moment ago (bind to 0, read, close)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _merge(base, over):
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base


def openai_deployment(dep_id, base_url, model=None, **over):
    """An OpenAI-dialect deployment pointing at a mockllm."""
    d = {
        "id": dep_id, "provider": "openai", "model": model or dep_id, "base_url": base_url,
        "capabilities": ["text"], "context_window": 8192,
        "price_in_usd_per_mtok": 1.0, "price_out_usd_per_mtok": 2.0, "quality": 0.5,
        "latency_prior_ms": 100.0, "ttft_prior_ms": 50.0, "max_concurrency": 4096,
        "timeouts": {"connect_ms": 3000, "first_token_ms": 30000, "idle_ms": 30000,
                     "total_ms": 60000},
    }
    return _merge(d, over)


# --- modelgw-mockllm -------------------------------------------------------------


class MockLLM:
    """One modelgw-mockllm process on a free port.

    rules: list of {"model"|"path"|"prompt_contains": ..., "fault": spec}.
    """

    def __init__(self, start_process, binary, tmp_path, name="mockllm", rules=None,
                 latency_ms=0, ttft_ms=0, token_delay_ms=0, tokens=16, port=None):
        self._start_process = start_process
        self._binary = binary("modelgw-mockllm")
        self._tmp = tmp_path
        self.name = name
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = {"latency_ms": latency_ms, "ttft_ms": ttft_ms,
                         "token_delay_ms": token_delay_ms, "tokens": tokens}
        self.proc = None
        self.generation = 0
        self.start(rules or [])

    def start(self, rules):
        """(Re)starts the server on the same port with these rules."""
        self.generation += 1
        conf = self._tmp / f"{self.name}-{self.generation}.json"
        conf.write_text(json.dumps(dict(self.settings, rules=rules)))
        args = [self._binary, "--port", self.port, "--config", conf]
        deadline = time.monotonic() + 15
        while True:  # the old socket may linger for a moment after a restart
            self.proc = self._start_process(args, name=f"{self.name}-{self.generation}")
            while self.proc.running() and "listening on" not in self.proc.stdout:
                if time.monotonic() > deadline:
                    pytest.fail(f"mockllm did not start\n{self.proc.describe()}")
                time.sleep(0.02)
            if self.proc.running():
                return
            if time.monotonic() > deadline:
                pytest.fail(f"mockllm did not start\n{self.proc.describe()}")
            time.sleep(0.2)

    def restart(self, rules):
        self.proc.stop()
        self.start(rules)

    def _http(self, method, path, body=None, timeout=10):
        req = urllib.request.Request(self.url + path, method=method, data=body)
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read() or b"null")

    def stats(self):
        """{"total", "paths", "request_ids", "models", "overflow"}."""
        return self._http("GET", "/stats")

    def total(self):
        return self.stats()["total"]

    def reset(self):
        self._http("POST", "/stats/reset", b"")

    def chat(self, text, model="m", max_tokens=64):
        """The mock's own non-streamed answer to one user message (counts as a call)."""
        body = json.dumps({"model": model, "max_tokens": max_tokens,
                           "messages": [{"role": "user", "content": text}]}).encode()
        req = urllib.request.Request(self.url + "/v1/chat/completions", data=body,
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())["choices"][0]["message"]["content"]


class StatsRecorder:
    """Polls a MockLLM's /stats total every `interval` s: [(monotonic time, total)]."""

    def __init__(self, mock, interval=0.02):
        import threading

        self.mock, self.interval = mock, interval
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), self.mock.total()))
            except OSError:
                pass  # a restart in progress
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        return self.samples

    def steps(self):
        """[(time, increment)] for every sample where the total grew."""
        out = []
        for (t0, a), (t1, b) in zip(self.samples, self.samples[1:]):
            if b != a:
                out.append((t1, b - a))
        return out


# --- Kafka output reader ----------------------------------------------------------


class Tail:
    """Reads one output topic of a Fleet from the beginning, incrementally.
    isolation: librdkafka's isolation.level (its default is read_committed)."""

    def __init__(self, env, out, kind=None, isolation="read_committed"):
        from confluent_kafka import Consumer

        self.kind = kind or {"responses": "response", "chunks": "chunk", "usage": "usage"}[out]
        self.out = out
        self.records = []
        self._c = Consumer({"bootstrap.servers": env.bootstrap, "group.id": "t-" + uuid.uuid4().hex,
                            "auto.offset.reset": "earliest", "enable.auto.commit": False,
                            "isolation.level": isolation})
        self._c.subscribe([env.topics[out]])

    def poll(self, seconds=0.2):
        deadline = time.monotonic() + seconds
        new = []
        while True:
            left = deadline - time.monotonic()
            msgs = self._c.consume(1000, max(left, 0.0))
            for m in msgs:
                if m.error():
                    continue
                rec = decode(self.kind, m.value())
                rec["_headers"] = {k: (v.decode() if v is not None else None)
                                   for k, v in (m.headers() or [])}
                rec["_partition"], rec["_offset"] = m.partition(), m.offset()
                rec["_ts"] = m.timestamp()[1]
                rec["_seen"] = time.monotonic()
                new.append(rec)
            if time.monotonic() >= deadline:
                break
        self.records += new
        return new

    def until(self, pred, timeout=60, what=None):
        deadline = time.monotonic() + timeout
        while not pred(self.records):
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {what or 'records'} on "
                            f"{self.out}: have {len(self.records)}")
            self.poll(0.2)
        return self.records

    def ids(self):
        return {r["request_id"] for r in self.records}

    def wait_ids(self, ids, timeout=60):
        ids = set(ids)
        self.until(lambda recs: ids <= {r["request_id"] for r in recs}, timeout,
                   what=f"{len(ids)} request ids")
        return [r for r in self.records if r["request_id"] in ids]

    def close(self):
        self._c.close()


# --- workers ----------------------------------------------------------------------


def group_assignment(admin, group):
    """{client_id: [(topic, partition)]} of a consumer group, or None if not stable."""
    fut = admin.describe_consumer_groups([group], request_timeout=10)[group]
    desc = fut.result(timeout=15)
    if str(desc.state).split(".")[-1] != "STABLE":
        return None
    return {m.client_id: sorted((tp.topic, tp.partition) for tp in m.assignment.topic_partitions)
            for m in desc.members}


class Fleet(GwEnv):
    """Unique topics and group, worker configs from nested dicts, N workers."""

    def __init__(self, bootstrap, admin, create_topic, unique_name, tmp_path, start_process,
                 binary, partitions=3):
        super().__init__(bootstrap, create_topic, unique_name, tmp_path, partitions)
        self.admin = admin
        self.partitions = partitions
        self._start_process = start_process
        self._binary = binary
        self.workers = []

    def settings(self, name, deployments, redis=None, over=None):
        """The full settings tree of one worker. redis: None (memory backend) or
        {"host", "port", "key_prefix", ...}."""
        s = {
            "kafka": {"bootstrap": self.bootstrap, "group_id": self.group, "client_id": name,
                      "commit_interval_ms": 200, "session_timeout_ms": 6000,
                      "max_partition_runahead": 5000,
                      "topics": {t: self.topics[t] for t in self.topics}},
            "worker": {"max_in_flight": 1024, "drain_timeout_ms": 20000,
                       "max_tokens_limit": 4096, "chunk_coalesce_ms": 20,
                       "chunk_coalesce_bytes": 256},
            "state": {"backend": "redis" if redis else "memory"},
            "log": {"level": "info"},
            "deployments": deployments,
        }
        if redis:
            s["redis"] = dict(redis)
        return _merge(s, over)

    def write_config(self, name, deployments, redis=None, over=None):
        path = self.tmp_path / f"{name}.conf"
        path.write_text(libconfig_text(self.settings(name, deployments, redis, over)))
        return path

    def start_worker(self, name, deployments, redis=None, over=None, sets=()):
        conf = self.write_config(name, deployments, redis, over)
        args = [self._binary("modelgw"), "-c", conf]
        for s in sets:
            args += ["--set", s]
        proc = self._start_process(args, name=name)
        proc.fleet_name = proc.client_id = name
        self.workers.append(proc)
        return proc

    def start_workers(self, n, deployments, redis=None, over=None, prefix="w"):
        procs = [self.start_worker(f"{prefix}{i}", deployments, redis, over) for i in range(n)]
        self.wait_assigned(procs)
        return procs

    def wait_assigned(self, procs, timeout=60):
        """Waits until the group is stable with exactly these workers, each holding
        at least one partition; returns {client_id: [(topic, partition)]}."""
        names = {p.client_id for p in procs}
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for p in procs:
                if not p.running():
                    pytest.fail(f"worker {p.client_id} exited\n{p.describe()}")
            try:
                last = group_assignment(self.admin, self.group)
            except Exception as exc:  # group not known yet
                last = exc
            if isinstance(last, dict) and set(last) == names and all(last.values()):
                return last
            time.sleep(0.25)
        pytest.fail(f"group {self.group} not stable with {sorted(names)}: {last}\n"
                    + "\n".join(p.describe(1500) for p in procs))

    def produce_to(self, tier, reqs, partition=None, headers=None):
        for r in reqs:
            kw = {} if partition is None else {"partition": partition}
            self.producer.produce(self.topics[tier], key=r["request_id"].encode(),
                                  value=encode("request", r), headers=headers, **kw)
            self.producer.poll(0)
        self.producer.flush(30)

    def produce_spread(self, tier, reqs, headers=None):
        """Request i goes to partition i % partitions; one flush at the end."""
        for i, r in enumerate(reqs):
            self.producer.produce(self.topics[tier], key=r["request_id"].encode(),
                                  value=encode("request", r), headers=headers,
                                  partition=i % self.partitions)
            self.producer.poll(0)
        self.producer.flush(30)

    def check_alive(self, procs=None):
        for p in procs or self.workers:
            assert p.running(), f"worker {p.client_id} died\n{p.describe()}"


def partition_of(assignment, client_id, topic):
    """The partitions of `topic` a worker holds."""
    return [p for t, p in assignment[client_id] if t == topic]


# --- Redis ------------------------------------------------------------------------


class RedisServer:
    """A private redis-server on a free port (never the shared one)."""

    def __init__(self, start_process, tmp_path, name="redis-private"):
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server not on PATH (tools/install-deps)")
        self._start_process = start_process
        self._tmp = tmp_path
        self.name = name
        self.port = free_port()
        self.proc = None
        self.generation = 0
        self.start()

    def start(self):
        self.generation += 1
        d = self._tmp / f"{self.name}-{self.generation}"
        d.mkdir()
        self.proc = self._start_process(
            ["redis-server", "--port", self.port, "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", d],
            name=f"{self.name}-{self.generation}")
        deadline = time.monotonic() + 15
        while True:
            try:
                if self.cli("PING") == "PONG":
                    return
            except subprocess.CalledProcessError:
                pass
            if time.monotonic() > deadline or not self.proc.running():
                pytest.fail(f"private redis-server did not start\n{self.proc.describe()}")
            time.sleep(0.05)

    def stop(self):
        """SIGKILL: the server vanishes with its data (no persistence)."""
        self.proc.proc.kill()
        self.proc.proc.wait(10)

    def cli(self, *args):
        out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port),
                              *map(str, args)], capture_output=True, text=True, timeout=30,
                             check=True)
        return out.stdout.strip()


def scan_keys(cli, prefix):
    return [k for k in cli("--scan", "--pattern", prefix + "*").split() if k]


def keys_without_ttl(cli, prefix):
    """Keys of the prefix whose TTL is -1 (no expiry)."""
    return [k for k in scan_keys(cli, prefix) if cli("PTTL", k).strip() == "-1"]


def redis_settings(host, port, prefix, **over):
    r = {"host": host, "port": int(port), "key_prefix": prefix, "connect_timeout_ms": 1000,
         "command_timeout_ms": 500, "reconnect_min_ms": 50, "reconnect_max_ms": 500,
         "expected_workers": 1}
    r.update(over)
    return r


def wait_for(pred, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def error_code(rec):
    err = rec.get("error")
    return err["code"] if err else None


@pytest.fixture
def fleet(kafka_bootstrap, kafka_admin, create_topic, unique_name, tmp_path, start_process,
          binary):
    """A Fleet for one test (import this name into the test module to use it)."""
    env = Fleet(kafka_bootstrap, kafka_admin, create_topic, unique_name, tmp_path,
                start_process, binary)
    yield env
    env.producer.flush(10)
