"""Helpers for the pipeline tests (routing, limits, cache) through real workers.

A PipeEnv is a GwEnv (unique topics and group) whose worker configs are
written in full here: the Redis state backend under the test's own key
prefix, any deployments (typically OpenAI-compatible ones pointing at a
modelgw-mockllm started by `start_mock`), and any extra settings.

    mock = start_mock(start_process, binary, tmp_path)
    conf = env.pipeline_config("w1", redis_addr, redis_prefix,
                               deployments=[openai_dep("a", mock.url)],
                               sections={"cache": {"ttl_s": 60}})
    start_worker(start_process, binary, conf, name="w1")
    env.produce("normal", [make_request(...)])
    mock.stats()["request_ids"]  # provider calls per request id
"""

import json
import re
import time
import urllib.request

from gwlib import GwEnv, decode, make_request  # noqa: F401  (re-exported for tests)
from gwlib import libconfig_value as fmt


def openai_dep(dep_id, base_url, **over):
    """An OpenAI-compatible deployment served by modelgw-mockllm."""
    d = {"id": dep_id, "provider": "openai", "model": dep_id + "-model", "base_url": base_url,
         "capabilities": ["text"], "context_window": 8192, "price_in_usd_per_mtok": 1.0,
         "price_out_usd_per_mtok": 2.0, "quality": 0.5, "latency_prior_ms": 50.0,
         "ttft_prior_ms": 20.0}
    d.update(over)
    return d


def mock_dep(dep_id, **over):
    d = {"id": dep_id, "provider": "mock", "model": dep_id + "-model", "capabilities": ["text"],
         "context_window": 8192, "price_in_usd_per_mtok": 1.0, "price_out_usd_per_mtok": 2.0,
         "quality": 0.5, "latency_prior_ms": 10.0, "ttft_prior_ms": 5.0}
    d.update(over)
    return d


class PipeEnv(GwEnv):
    def pipeline_config(self, name, redis_addr, redis_prefix, deployments, sections=None,
                        backend="redis"):
        host, _, port = redis_addr.rpartition(":")
        s = {
            "kafka": {"bootstrap": self.bootstrap, "group_id": self.group, "client_id": name,
                      "commit_interval_ms": 200, "session_timeout_ms": 6000},
            "worker": {"max_in_flight": 256, "drain_timeout_ms": 20000,
                       "max_tokens_limit": 4096, "chunk_coalesce_ms": 5,
                       "chunk_coalesce_bytes": 16},
            "state": {"backend": backend},
            "redis": {"host": host, "port": int(port), "key_prefix": redis_prefix},
            "retry": {"base_backoff_ms": 20, "max_backoff_ms": 100},
            "breaker": {"local_cache_ms": 0},
            "log": {"level": "info"},
        }
        for k, v in (sections or {}).items():
            s.setdefault(k, {}).update(v)
        topics = " ".join(f"{t} = {json.dumps(self.topics[t])};" for t in self.topics)
        lines = []
        for sec, vals in s.items():
            body = " ".join(f"{k} = {fmt(v)};" for k, v in vals.items())
            if sec == "kafka":
                body += f" topics: {{ {topics} }};"
            lines.append(f"{sec}: {{ {body} }};")
        lines.append("deployments = " + fmt(list(deployments)) + ";")
        path = self.tmp_path / f"{name}.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def responses_for(self, ids, timeout=90):
        want = set(ids)
        got = self.collect("responses", lambda rs: want <= {r["request_id"] for r in rs},
                           timeout=timeout)
        return {r["request_id"]: r for r in got if r["request_id"] in want}

    def usage_for(self, ids, timeout=90):
        want = set(ids)
        got = self.collect("usage", lambda rs: want <= {r["request_id"] for r in rs},
                           timeout=timeout)
        return {r["request_id"]: r for r in got if r["request_id"] in want}


class Mock:
    def __init__(self, proc, url):
        self.proc = proc
        self.url = url

    def stats(self):
        with urllib.request.urlopen(self.url + "/stats", timeout=5) as r:
            return json.loads(r.read())

    def calls(self, request_id):
        return self.stats().get("request_ids", {}).get(request_id, 0)


def start_mock(start_process, binary, tmp_path, rules=None, name="mockllm", args=()):
    cmd = [binary("modelgw-mockllm"), "--port", "0"]
    if rules is not None:
        cfg = tmp_path / f"{name}.json"
        cfg.write_text(json.dumps({"rules": rules}))
        cmd += ["--config", cfg]
    cmd += list(args)
    proc = start_process(cmd, name=name)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        m = re.search(r"listening on ([0-9.]+):(\d+)", proc.stdout)
        if m:
            return Mock(proc, f"http://{m.group(1)}:{m.group(2)}")
        if not proc.running():
            break
        time.sleep(0.05)
    raise AssertionError("modelgw-mockllm did not start\n" + proc.describe())


def wait_ready(worker, timeout=30):
    """Until the worker logged its identity and got partitions (or fail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = worker.stdout + worker.stderr
        if "partitions_assigned" in out:
            return
        if not worker.running():
            break
        time.sleep(0.1)
    raise AssertionError("worker not ready\n" + worker.describe())
