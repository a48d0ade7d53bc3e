"""Gemini end to end: requests produced to the real Kafka, served by a real
worker through modelgw-mockllm's Gemini dialect (x-goog-api-key from the
environment), answered in responses, chunks and usage events; a safety block
comes back as E4214 with finish_reason content_filter and is not failed over
(another deployment would get the same content), streamed or not.

One worker (Redis state), one mock; deployments:
  gm  Gemini dialect, best quality
  oa  OpenAI dialect, the fallback a provider failure would use
"""

import uuid

import pytest

from gwlib import make_request, start_worker
from pipelib import PipeEnv, openai_dep, start_mock, wait_ready


@pytest.fixture
def setup(kafka_bootstrap, create_topic, unique_name, tmp_path, start_process, binary,
          redis_addr, redis_prefix, monkeypatch):
    env = PipeEnv(kafka_bootstrap, create_topic, unique_name, tmp_path)
    key_env = "MODELGW_E2E_GEMINI_KEY_" + uuid.uuid4().hex[:8].upper()
    key = "gem-e2e-" + uuid.uuid4().hex
    monkeypatch.setenv(key_env, key)
    mock = start_mock(start_process, binary, tmp_path)
    deps = [
        dict(openai_dep("gm", mock.url, quality=0.9, price_in_usd_per_mtok=0.3,
                        price_out_usd_per_mtok=2.5), provider="gemini", api_key_env=key_env),
        openai_dep("oa", mock.url, quality=0.5),
    ]
    conf = env.pipeline_config("w1", redis_addr, redis_prefix, deps, sections={
        "retry": {"max_attempts_per_deployment": 1, "base_backoff_ms": 10,
                  "max_backoff_ms": 50},
        "cache": {"enabled": False},
    })
    worker = start_worker(start_process, binary, conf, name="w1")
    wait_ready(worker)
    return env, mock, worker, key


def final_chunks(env, ids):
    ids = set(ids)
    chunks = env.collect("chunks", lambda cs: ids <= {c["request_id"] for c in cs
                                                      if c["is_final"]})
    by = {}
    for c in chunks:
        if c["request_id"] in ids:
            by.setdefault(c["request_id"], []).append(c)
    return {k: sorted(v, key=lambda c: c["seq"]) for k, v in by.items()}


def test_text_streamed_and_not(setup):
    env, mock, worker, key = setup
    full = make_request(text="Tell me about Kafka", routing_strategy="BEST_QUALITY")
    streamed = make_request(text="Tell me about Kafka", routing_strategy="BEST_QUALITY",
                            stream=True)
    env.produce("normal", [full, streamed])
    ids = [full["request_id"], streamed["request_id"]]
    got = env.responses_for(ids)
    a, b = got[full["request_id"]], got[streamed["request_id"]]
    for r in (a, b):
        assert r["error"] is None and r["model_id"] == "gm" and r["provider"] == "gemini", r
        assert r["finish_reason"] == "stop" and len(r["content"].split()) == 16, r
    assert a["content"] == b["content"]  # the same prompt, the same words, both ways
    mine = final_chunks(env, [streamed["request_id"]])[streamed["request_id"]]
    assert [c["seq"] for c in mine] == list(range(len(mine)))
    assert "".join(c["content"] for c in mine) == b["content"]
    assert mine[-1]["finish_reason"] == "stop" and mine[-1]["error"] is None
    usage = env.usage_for(ids)
    for rid in ids:
        u = usage[rid]
        assert u["provider"] == "gemini" and u["completion_tokens"] == 16, u
        assert u["cost_usd"] == pytest.approx(
            (u["prompt_tokens"] * 0.3 + u["completion_tokens"] * 2.5) / 1e6), u
    assert mock.stats()["paths"] == {
        "/v1beta/models/gm-model:generateContent": 1,
        "/v1beta/models/gm-model:streamGenerateContent": 1}
    assert worker.running(), worker.describe()
    assert key.encode() not in worker.stderr_path.read_bytes()


def test_safety_block_is_named_and_not_failed_over(setup):
    env, mock, worker, key = setup
    text = "[mock-fault:safety] something the filter stops"
    full = make_request(text=text, routing_strategy="BEST_QUALITY")
    streamed = make_request(text=text, routing_strategy="BEST_QUALITY", stream=True)
    env.produce("normal", [full, streamed])
    ids = [full["request_id"], streamed["request_id"]]
    got = env.responses_for(ids)
    for r in got.values():
        assert r["model_id"] == "gm" and r["content"] == "", r
        assert r["error"] is not None and r["error"]["code"] == "E4214", r
        assert r["error"]["retryable"] is False, r
        assert r["finish_reason"] == "content_filter", r
        assert r["tool_calls"] == []
    mine = final_chunks(env, [streamed["request_id"]])[streamed["request_id"]]
    assert len(mine) >= 2 and mine[0]["content"]  # words came before the block
    last = mine[-1]
    assert last["is_final"] and last["error"]["code"] == "E4214", last
    assert last["finish_reason"] == "content_filter", last
    usage = env.usage_for(ids)
    for rid in ids:
        u = usage[rid]
        assert u["error_code"] == "E4214" and u["attempts"] == 1 and u["failovers"] == 0, u
    assert mock.stats()["models"] == {"gm-model": 2}  # oa was never asked
