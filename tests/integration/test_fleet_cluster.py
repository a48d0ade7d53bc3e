"""Redis Cluster (issue 13): two workers with redis.mode = "cluster" under load,
and a master killed mid-run.

The cluster is PRIVATE to this test: three masters with a replica each,
started by tools/redis-cluster on its own ports and in the test's own folder
(cluster-node-timeout 1000 ms), stopped at the end; the shared services and
the shared cluster of `tools/services start redis-cluster` are never touched.

Two `modelgw` workers serve a steady load that uses every Redis feature
(idempotency claim and result, agent RPM/TPM limits far above the load and a
daily budget, the exact cache with unique prompts so every request takes the
lock and stores, the breaker and latency statistics). Limits and cache fail
open, idempotency fails closed. One master is killed (SIGKILL); its replica
takes over.

Checked: no worker exits, every request id gets exactly one response; before
the kill and after the failover every request succeeds; in between only
E4501 (idempotency, closed) is refused; a redelivered request id is answered
from the kept answer; the keys are on several masters and every key has a
TTL.
"""

import os
import pathlib
import random
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter

import pytest

from fleet import (  # noqa: F401
    MockLLM, Tail, error_code, fleet, make_request, openai_deployment, redis_settings,
    wait_for,
)

REPO = pathlib.Path(__file__).resolve().parents[2]


def _port_free(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class PrivateCluster:
    """tools/redis-cluster on free ports under tmp_path."""

    def __init__(self, tmp_path):
        self.run_dir = tmp_path / "cluster-run"
        self.run_dir.mkdir()
        self.base = None
        last = ""
        for _ in range(5):
            base = 24000 + random.randrange(200) * 10
            if not all(_port_free(base + i) and _port_free(base + i + 10000) for i in range(6)):
                continue
            res = subprocess.run([str(REPO / "tools/redis-cluster"), "start"], env=self._env(base),
                                 capture_output=True, text=True, timeout=90)
            if res.returncode == 0:
                self.base = base
                break
            last = res.stderr
        if self.base is None:
            pytest.fail(f"tools/redis-cluster could not start a private cluster:\n{last}")
        self.ports = [self.base + i for i in range(6)]
        self.nodes = ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def _env(self, base):
        env = dict(os.environ)
        env.update(MODELGW_RUN_DIR=str(self.run_dir), MODELGW_REDIS_CLUSTER_PORT=str(base),
                   MODELGW_REDIS_CLUSTER_NODE_TIMEOUT_MS="1000")
        return env

    def cli(self, port, *args):
        return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True,
                              text=True, timeout=10).stdout

    def masters(self):
        out = []
        for port in self.ports:
            for line in self.cli(port, "cluster", "nodes").splitlines():
                f = line.split()
                if len(f) > 2 and "myself" in f[2] and "master" in f[2] and "fail" not in f[2]:
                    out.append(port)
        return out

    def kill(self, port):
        pid = int((self.run_dir / f"services/redis-cluster/{port}/redis.pid").read_text())
        os.kill(pid, signal.SIGKILL)

    def ok(self, alive):
        return all("cluster_state:ok" in self.cli(p, "cluster", "info") for p in alive)

    def keys(self, prefix):
        """(port, key) for every key of prefix on every live master."""
        return [(p, k) for p in self.masters()
                for k in self.cli(p, "--scan", "--pattern", prefix + "*").split() if k]

    def stop(self):
        subprocess.run([str(REPO / "tools/redis-cluster"), "stop"], env=self._env(self.base),
                       capture_output=True, text=True, timeout=90)


class Load:
    def __init__(self, env, rate, run, agent):
        self.env, self.rate, self.run, self.agent = env, rate, run, agent
        self.sent = []  # (request id, wall ms when produced)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self):
        i = 0
        while not self._stop.is_set():
            req = make_request(f"c-{self.run}-{i}", text=f"cluster failover {self.run} {i}",
                               agent_did=self.agent, max_tokens=32)
            self.env.produce_to("normal", [req], partition=i % 3)
            self.sent.append((req["request_id"], time.time() * 1000))
            i += 1
            self._stop.wait(1.0 / self.rate)

    def stop(self):
        self._stop.set()
        self._t.join(30)
        return self.sent


def test_cluster_master_killed_under_load(fleet, start_process, binary, tmp_path):  # noqa: F811
    cluster = PrivateCluster(tmp_path)
    try:
        _run(fleet, start_process, binary, tmp_path, cluster)
    finally:
        cluster.stop()


def _run(fleet, start_process, binary, tmp_path, cluster):  # noqa: F811
    mock = MockLLM(start_process, binary, tmp_path, latency_ms=20)
    prefix = f"mgwtest:fleet-cluster-{uuid.uuid4().hex[:8]}:"
    run = uuid.uuid4().hex[:8]
    agent = f"did:example:cluster-{run}"
    dep = openai_deployment("oa-cluster", mock.url, model="cluster-model")
    over = {
        "failure_policy": {"limits": "open", "cache": "open", "idempotency": "closed",
                           "breaker": "open"},
        "limits": {"agents": [{"agent": agent, "rpm": 100000, "tpm": 100000000}]},
        "budgets": {"agents": [{"agent": agent, "daily_usd": 1000.0}]},
        "cache": {"enabled": True, "ttl_s": 600, "singleflight_wait_ms": 2000},
        "idempotency": {"enabled": True, "lease_ms": 5000, "result_ttl_s": 600},
        "retry": {"max_attempts_per_deployment": 1},
    }
    rs = redis_settings("127.0.0.1", cluster.ports[0], prefix, command_timeout_ms=300,
                        reconnect_min_ms=50, reconnect_max_ms=400, expected_workers=2,
                        mode="cluster", nodes=cluster.nodes)
    procs = [fleet.start_worker(f"w{i}", [dep], rs, over) for i in range(2)]
    fleet.wait_assigned(procs)
    responses = Tail(fleet, "responses")

    load = Load(fleet, rate=40, run=run, agent=agent)
    time.sleep(3.0)
    masters = cluster.masters()
    assert len(masters) == 3, masters
    spread = {p for p, _ in cluster.keys(prefix)}
    assert len(spread) >= 2, f"the keys are not spread over the masters: {spread}"
    victim = masters[0]
    down_ms = time.time() * 1000
    cluster.kill(victim)
    alive = [p for p in cluster.ports if p != victim]
    wait_for(lambda: len(cluster.masters()) == 3 and cluster.ok(alive), 30,
             "a replica to take over the killed master")
    up_ms = time.time() * 1000
    time.sleep(4.0)
    sent = load.stop()

    ids = {rid for rid, _ in sent}
    resp = {r["request_id"]: r for r in responses.wait_ids(ids, timeout=90)}
    responses.poll(1.0)
    fleet.check_alive(procs)
    sent_at = dict(sent)

    codes = {}
    for rid, r in resp.items():
        codes.setdefault(error_code(r), []).append(rid)
    print("cluster failover", {c: len(v) for c, v in codes.items()},
          f"failover took {(up_ms - down_ms) / 1000:.1f} s")
    before = [rid for rid, t in sent if t < down_ms - 500]
    after = [rid for rid, t in sent if t > up_ms + 1500]
    assert before and after
    assert all(resp[rid]["error"] is None for rid in before), [
        resp[rid]["error"] for rid in before if resp[rid]["error"]][:3]
    assert all(resp[rid]["error"] is None for rid in after), [
        resp[rid]["error"] for rid in after if resp[rid]["error"]][:3]
    # Only the closed feature refuses, only around the outage, retryable.
    assert set(codes) <= {None, "E4501"}, {c: v[:3] for c, v in codes.items()}
    refused = codes.get("E4501", [])
    assert all(down_ms - 1000 <= sent_at[rid] <= up_ms + 1500 for rid in refused)
    assert all(resp[rid]["error"]["retryable"] for rid in refused)

    # Exactly one response per request id.
    count = Counter(r["request_id"] for r in responses.records)
    assert all(count[rid] == 1 for rid in ids), [rid for rid in ids if count[rid] != 1][:5]

    # A redelivery of an answered request (the same request again): its kept
    # answer, no provider call.
    dup_id = after[-1]
    calls = mock.total()
    fleet.produce_to("normal", [make_request(dup_id, text=f"cluster failover {run} "
                                             f"{dup_id.rsplit('-', 1)[1]}", agent_did=agent,
                                             max_tokens=32)], partition=0)
    responses.until(lambda recs: sum(r["request_id"] == dup_id for r in recs) == 2, 60,
                    "the redelivered request's answer")
    dup = [r for r in responses.records if r["request_id"] == dup_id][-1]
    assert dup["error"] is None
    assert mock.total() == calls

    # Every key has a TTL (checked on the node that holds it).
    keys = cluster.keys(prefix)
    assert any(run in k for _, k in keys)
    without = [k for p, k in keys if cluster.cli(p, "PTTL", k).strip() == "-1"]
    assert without == [], without[:5]
    responses.close()
