"""The response cache through real workers sharing Redis (exact and semantic).

Two worker processes of one group, one after the other, with the same Redis
key prefix: what the first stored, the second answers from the cache
without calling the provider (modelgw-mockllm counts calls per request id).
"""

import pytest

from gwlib import make_request, start_worker
from pipelib import PipeEnv, openai_dep, start_mock, wait_ready


@pytest.fixture
def cache_env(kafka_bootstrap, create_topic, unique_name, tmp_path, start_process, binary,
              redis_addr, redis_prefix):
    env = PipeEnv(kafka_bootstrap, create_topic, unique_name, tmp_path)
    mock = start_mock(start_process, binary, tmp_path, args=["--tokens", "40"])
    deps = [openai_dep("a", mock.url, quality=0.9), openai_dep("b", mock.url, quality=0.5)]
    sections = {
        "cache": {"enabled": True, "ttl_s": 120, "store_finish_reasons": ["stop", "length"]},
        "retry": {"max_attempts_per_deployment": 1},
    }

    def worker(name, semantic=False):
        s = dict(sections)
        if semantic:
            s["cache"] = dict(s["cache"], semantic={"enabled": True, "threshold": 0.85})
        conf = env.pipeline_config(name, redis_addr, redis_prefix, deps, sections=s)
        w = start_worker(start_process, binary, conf, name=name)
        wait_ready(w)
        return w

    return env, mock, worker


def req(text, **kw):
    kw.setdefault("routing_strategy", "BEST_QUALITY")
    kw.setdefault("max_tokens", 256)
    return make_request(text=text, **kw)


def serve(env, reqs, tier="normal"):
    env.produce(tier, reqs)
    ids = [r["request_id"] for r in reqs]
    return env.responses_for(ids), env.usage_for(ids)


def test_exact_hit_across_workers_streamed_replay_and_isolation(cache_env):
    env, mock, worker = cache_env
    text = "Name three rivers of Europe."
    w1 = worker("w1")
    first = req(text, tenant_id="tenant-1", system_prompt="be brief", temperature=0.2)
    resp, usage = serve(env, [first])
    original = resp[first["request_id"]]
    assert original["error"] is None and original["cached"] is False
    assert usage[first["request_id"]]["outcome"] == "success"
    w1.stop()

    w2 = worker("w2")
    same = dict(first, request_id=req("x")["request_id"])
    streamed = dict(first, request_id=req("y")["request_id"], stream=True)
    others = {
        "tenant": dict(first, request_id=req("t")["request_id"], tenant_id="tenant-2"),
        "system": dict(first, request_id=req("s")["request_id"], system_prompt="be verbose"),
        "model": dict(first, request_id=req("m")["request_id"], model="b"),
        "temperature": dict(first, request_id=req("p")["request_id"], temperature=0.3),
    }
    resp, usage = serve(env, [same, streamed, *others.values()])

    hit, u = resp[same["request_id"]], usage[same["request_id"]]
    assert hit["cached"] is True and hit["content"] == original["content"], hit
    assert hit["model_id"] == original["model_id"]
    assert u["cached"] is True and u["cache_tier"] == "exact" and u["outcome"] == "cached"
    assert u["cost_usd"] == 0 and u["prompt_tokens"] == 0 and u["completion_tokens"] == 0
    assert u["saved_cost_usd"] > 0
    assert mock.calls(same["request_id"]) == 0

    # A streamed request is answered from the stored answer as chunks.
    chunks = env.collect("chunks", lambda cs: any(
        c["request_id"] == streamed["request_id"] and c["is_final"] for c in cs))
    mine = sorted((c for c in chunks if c["request_id"] == streamed["request_id"]),
                  key=lambda c: c["seq"])
    assert [c["seq"] for c in mine] == list(range(len(mine)))
    assert len(mine) > 2 and mine[-1]["is_final"] and mine[-1]["error"] is None
    assert "".join(c["content"] for c in mine) == original["content"]
    assert resp[streamed["request_id"]]["cached"] is True
    assert mock.calls(streamed["request_id"]) == 0

    # The same prompt under another tenant, system prompt, model or temperature never hits.
    for name, r in others.items():
        assert resp[r["request_id"]]["cached"] is False, name
        assert resp[r["request_id"]]["error"] is None, name
        assert mock.calls(r["request_id"]) == 1, name
    assert w2.running(), w2.describe()


def test_errors_and_truncated_streams_are_never_cached(cache_env):
    env, mock, worker = cache_env
    w = worker("w1")
    failing = req("always failing [mock-fault:status:503]", model="a")
    cut = req("broken stream please [mock-fault:cut]", model="a", stream=True)
    resp, _ = serve(env, [failing, cut])
    assert resp[failing["request_id"]]["error"] is not None
    assert resp[cut["request_id"]]["error"] is not None
    again = [dict(failing, request_id=req("f2")["request_id"]),
             dict(cut, request_id=req("c2")["request_id"])]
    resp, usage = serve(env, again)
    for r in again:
        assert resp[r["request_id"]]["cached"] is False
        assert resp[r["request_id"]]["error"] is not None
        assert usage[r["request_id"]]["cached"] is False
        assert mock.calls(r["request_id"]) >= 1
    assert w.running(), w.describe()


def test_semantic_hit_across_workers_and_isolation(cache_env):
    env, mock, worker = cache_env
    w1 = worker("w1", semantic=True)
    first = req("What is the capital city of France?", tenant_id="tenant-1")
    resp, _ = serve(env, [first])
    original = resp[first["request_id"]]
    assert original["error"] is None and original["cached"] is False
    w1.stop()

    w2 = worker("w2", semantic=True)
    similar = req("what is the capital city of france", tenant_id="tenant-1")
    other_tenant = req("what is the capital city of france", tenant_id="tenant-2")
    other_system = req("what is the capital city of france", tenant_id="tenant-1",
                       system_prompt="answer in German")
    negated = req("What is not the capital city of France?", tenant_id="tenant-1")
    resp, usage = serve(env, [similar, other_tenant, other_system, negated])

    hit, u = resp[similar["request_id"]], usage[similar["request_id"]]
    assert hit["cached"] is True and hit["content"] == original["content"], hit
    sim = float(hit["metadata"]["cache_similarity"])
    assert 0.85 <= sim <= 1.0
    assert u["cache_tier"] == "semantic" and u["cached"] is True
    assert u["cache_similarity"] == pytest.approx(sim, abs=1e-3)
    assert mock.calls(similar["request_id"]) == 0
    for r in (other_tenant, other_system, negated):
        assert resp[r["request_id"]]["cached"] is False, r
        assert usage[r["request_id"]]["cache_tier"] is None
        assert mock.calls(r["request_id"]) == 1
    assert w2.running(), w2.describe()
