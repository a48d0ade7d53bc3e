"""Routing and failover through a real worker, against modelgw-mockllm faults.

One worker, Redis state, three OpenAI-compatible deployments on one mock:
"a" (best quality, ranked first by BEST_QUALITY), "b", and "c" (an anthropic
deployment whose API key variable is unset, so its provider kind is not
configured). Faults are injected by the mock's rules (per model, or by a
marker in the prompt), and the mock counts calls per request id.
"""

import json
import uuid

import pytest

from gwlib import make_request, start_worker
from pipelib import PipeEnv, openai_dep, start_mock, wait_ready


@pytest.fixture
def setup(kafka_bootstrap, create_topic, unique_name, tmp_path, start_process, binary,
          redis_addr, redis_prefix):
    env = PipeEnv(kafka_bootstrap, create_topic, unique_name, tmp_path)
    mock = start_mock(start_process, binary, tmp_path, rules=[
        {"model": "a-model", "prompt_contains": "a-is-down", "fault": "status:503"},
        {"prompt_contains": "everything-down", "fault": "status:503"},
        {"prompt_contains": "caller-error", "fault": "status:400"},
    ])
    deps = [
        openai_dep("a", mock.url, quality=0.9),
        openai_dep("b", mock.url, quality=0.6),
        dict(openai_dep("c", mock.url, quality=0.1), provider="anthropic",
             api_key_env="MODELGW_TEST_UNSET_" + uuid.uuid4().hex[:8].upper()),
    ]
    conf = env.pipeline_config("w1", redis_addr, redis_prefix, deps, sections={
        "retry": {"max_attempts_per_deployment": 2, "base_backoff_ms": 10,
                  "max_backoff_ms": 50},
        "breaker": {"consecutive_failures": 50, "min_calls": 1000, "local_cache_ms": 0},
        "cache": {"enabled": False},
    })
    worker = start_worker(start_process, binary, conf, name="w1")
    wait_ready(worker)
    return env, mock, worker


def req(text, **kw):
    kw.setdefault("routing_strategy", "BEST_QUALITY")
    return make_request(text=text, **kw)


def test_failover_matrix(setup):
    env, mock, worker = setup
    cases = {
        "ok": req("plain question"),
        "retried": req("flaky once [mock-fault:fail:1]"),
        "failover": req("a-is-down please answer"),
        "caller": req("caller-error in this prompt"),
        "all_down": req("everything-down now"),
    }
    env.produce("normal", cases.values())
    ids = {k: r["request_id"] for k, r in cases.items()}
    resp = env.responses_for(ids.values())
    usage = env.usage_for(ids.values())
    assert worker.running(), worker.describe()

    r, u = resp[ids["ok"]], usage[ids["ok"]]
    assert r["error"] is None and r["model_id"] == "a", r
    assert (u["attempts"], u["failovers"], u["outcome"]) == (1, 0, "success")

    # 503 once on the same request id, then the retry on the same deployment succeeds.
    r, u = resp[ids["retried"]], usage[ids["retried"]]
    assert r["error"] is None and r["model_id"] == "a", r
    assert (u["attempts"], u["failovers"]) == (2, 0)
    assert mock.calls(ids["retried"]) == 2

    # a fails twice (max_attempts_per_deployment = 2), then b answers.
    r, u = resp[ids["failover"]], usage[ids["failover"]]
    assert r["error"] is None and r["model_id"] == "b", r
    assert (u["attempts"], u["failovers"]) == (3, 1)
    assert mock.calls(ids["failover"]) == 3

    # A caller error (400) stops at once: one call, not retryable, no E4102.
    r, u = resp[ids["caller"]], usage[ids["caller"]]
    assert r["error"] is not None and r["error"]["code"] != "E4102", r
    assert r["error"]["retryable"] is False
    assert mock.calls(ids["caller"]) == 1
    assert u["outcome"] == "error" and u["attempts"] == 1

    # Every configured deployment fails: E4102 with the attempt log.
    r, u = resp[ids["all_down"]], usage[ids["all_down"]]
    assert r["error"]["code"] == "E4102", r
    details = r["error"]["details"]
    attempts = json.loads(details["attempts"])
    assert int(details["attempt_count"]) == len(attempts) == 4
    assert [a["deployment"] for a in attempts] == ["a", "a", "b", "b"]
    assert all(a["code"] == "E4206" or a["http_status"] == 503 for a in attempts), attempts
    assert mock.calls(ids["all_down"]) == 4
    assert u["error_code"] == "E4102" and u["attempts"] == 4 and u["failovers"] == 1


def test_preferred_model_and_unconfigured_provider(setup):
    env, mock, worker = setup
    cases = {
        "by_model": req("prefer b", model="b-model"),
        "by_id": req("prefer b by id", model="b"),
        "unconfigured": req("prefer c", model="c-model"),
        "unknown": req("prefer nothing", model="no-such-model"),
    }
    env.produce("high", cases.values())
    ids = {k: r["request_id"] for k, r in cases.items()}
    resp = env.responses_for(ids.values())
    assert resp[ids["by_model"]]["model_id"] == "b"
    assert resp[ids["by_id"]]["model_id"] == "b"
    assert resp[ids["unconfigured"]]["error"]["code"] == "E4002"
    assert resp[ids["unknown"]]["error"]["code"] == "E4008"
    assert mock.calls(ids["unconfigured"]) == 0
    assert worker.running(), worker.describe()
