"""Rate limits and budgets through a real worker on Redis.

Agent limits are checked before the cache and routing (one round trip with
the budget); deployment limits per attempt. The cache is off here so every
request reaches a provider (the built-in mock deployments).
"""

import pytest

from gwlib import make_request, start_worker
from pipelib import PipeEnv, mock_dep, wait_ready


@pytest.fixture
def limits_env(kafka_bootstrap, create_topic, unique_name, tmp_path, start_process, binary,
               redis_addr, redis_prefix):
    env = PipeEnv(kafka_bootstrap, create_topic, unique_name, tmp_path)

    def worker(limits, budgets=None, deps=None):
        sections = {"cache": {"enabled": False}, "limits": limits}
        if budgets:
            sections["budgets"] = budgets
        conf = env.pipeline_config("w1", redis_addr, redis_prefix, deps or [mock_dep("m")],
                                   sections=sections)
        w = start_worker(start_process, binary, conf, name="w1")
        wait_ready(w)
        return w

    return env, worker


def serve(env, reqs):
    env.produce("normal", reqs)
    ids = [r["request_id"] for r in reqs]
    return env.responses_for(ids), env.usage_for(ids)


def test_reject_with_retry_after_and_limit_name(limits_env):
    env, worker = limits_env
    w = worker({"on_limit": "reject",
                "agents": [{"agent": "did:example:slow", "rpm": 2, "tpm": 100000}]})
    reqs = [make_request(text=f"q{i}", agent_did="did:example:slow") for i in range(5)]
    resp, usage = serve(env, reqs)
    ok = [r for r in resp.values() if r["error"] is None]
    limited = [r for r in resp.values() if r["error"] is not None]
    assert len(ok) == 2 and len(limited) == 3
    for r in limited:
        e = r["error"]
        assert e["code"] == "E4300" and e["retryable"] is True
        assert e["details"]["limit"] == "agent_rpm"
        # one request per 30 s: the next allowance is at most 30 s away
        assert 0 < int(e["details"]["retry_after_ms"]) <= 30000
        assert usage[r["request_id"]]["outcome"] == "rate_limited"
    # a request that could never fit the TPM bucket is not retryable
    big = make_request(text="huge", agent_did="did:example:small-tpm", max_tokens=4000)
    w.stop()
    w = worker({"on_limit": "reject",
                "agents": [{"agent": "did:example:small-tpm", "rpm": 100, "tpm": 1000}]})
    resp, _ = serve(env, [big])
    e = resp[big["request_id"]]["error"]
    assert e["code"] == "E4301" and e["retryable"] is False
    assert e["details"]["limit"] == "agent_tpm"


def test_all_or_nothing_agent_denials_leave_deployment_untouched(limits_env):
    env, worker = limits_env
    # deployment: 3 requests per minute fleet-wide; agent A: 1 per minute.
    w = worker({"on_limit": "reject",
                "agents": [{"agent": "did:example:a", "rpm": 1, "tpm": 100000}]},
               deps=[mock_dep("m", rpm=3)])
    a = [make_request(text=f"a{i}", agent_did="did:example:a") for i in range(3)]
    resp, _ = serve(env, a)
    assert sum(r["error"] is None for r in resp.values()) == 1
    assert sum(r["error"] is not None and r["error"]["code"] == "E4300"
               for r in resp.values()) == 2
    # Agent B (unlimited) gets the two deployment slots A's denials did not take.
    b = [make_request(text=f"b{i}", agent_did="did:example:b") for i in range(2)]
    resp, _ = serve(env, b)
    assert all(r["error"] is None for r in resp.values()), resp
    # and the deployment is now full: the next request finds nowhere to go
    c = make_request(text="c", agent_did="did:example:b")
    resp, _ = serve(env, [c])
    assert resp[c["request_id"]]["error"]["code"] == "E4102"
    assert w.running(), w.describe()


def test_budget_exceeded(limits_env):
    env, worker = limits_env
    worker({"on_limit": "reject"},
           budgets={"agents": [{"agent": "did:example:poor", "daily_usd": 0.000001,
                                "monthly_usd": 0.0}]})
    poor = make_request(text="expensive", agent_did="did:example:poor")
    rich = make_request(text="fine", agent_did="did:example:rich")
    resp, usage = serve(env, [poor, rich])
    e = resp[poor["request_id"]]["error"]
    assert e["code"] == "E4302" and e["retryable"] is False
    assert e["details"]["period"] == "day"
    assert resp[rich["request_id"]]["error"] is None


def test_delay_mode_answers_later(limits_env):
    env, worker = limits_env
    # 30 per minute, burst 30: the 31st and 32nd wait about 2 s and 4 s.
    w = worker({"on_limit": "delay", "max_delay_ms": 10000,
                "agents": [{"agent": "did:example:patient", "rpm": 30, "tpm": 1000000}]})
    reqs = [make_request(text=f"p{i}", agent_did="did:example:patient") for i in range(32)]
    resp, usage = serve(env, reqs)
    assert all(r["error"] is None for r in resp.values()), [
        r["error"] for r in resp.values() if r["error"]]
    assert all(u["outcome"] == "success" for u in usage.values())
    slowest = sorted(u["latency_ms"] for u in usage.values())[-2:]
    assert slowest[0] > 1000  # held on a timer, not rejected
    assert w.running(), w.describe()
