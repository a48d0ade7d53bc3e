"""Issue 6: single-flight of the exact response cache across the fleet.

100 identical requests (same agent, prompt and parameters; different request
ids) go to the three partitions of one tier, i.e. to three `modelgw` workers
sharing one Redis. The mock answers after 1 s, so they all overlap: one
worker takes the cache lock and calls the provider; every other request
waits for its answer (bounded by cache.singleflight_wait_ms) and is answered
from it. The mock counts its calls: exactly one.

A second check: after that, the same prompt from another tenant misses (its
own namespace) and calls the provider again, and a repeat of the first
prompt is a hit on any worker.
"""

import uuid

from fleet import (  # noqa: F401
    MockLLM, Tail, fleet, make_request, openai_deployment, partition_of, redis_settings,
)

N = 100
WORKERS = 3


def test_singleflight_100_identical_requests_three_workers_one_call(
    fleet, start_process, binary, tmp_path, redis_addr, redis_prefix  # noqa: F811
):
    mock = MockLLM(start_process, binary, tmp_path, latency_ms=1000)
    host, port = redis_addr.rsplit(":", 1)
    dep = openai_deployment("oa-cache", mock.url, model="cache-model")
    over = {"cache": {"enabled": True, "ttl_s": 600, "singleflight_wait_ms": 20000,
                      "temperature_above_zero": True},
            "worker": {"max_in_flight": 512}}
    procs = [fleet.start_worker(f"w{i}", [dep], redis_settings(host, port, redis_prefix), over)
             for i in range(WORKERS)]
    assignment = fleet.wait_assigned(procs)
    normal = fleet.topics["normal"]
    assert all(partition_of(assignment, p.client_id, normal) for p in procs), assignment
    responses = Tail(fleet, "responses")
    usage = Tail(fleet, "usage")

    run = uuid.uuid4().hex[:8]
    agent = f"did:example:cache-{run}"
    prompt = f"what is single flight? {run}"
    reqs = [make_request(f"c-{run}-{i}", text=prompt, agent_did=agent) for i in range(N)]
    fleet.produce_spread("normal", reqs)  # all at once: they overlap the 1 s call
    ids = {r["request_id"] for r in reqs}
    resp = {r["request_id"]: r for r in responses.wait_ids(ids, timeout=90)}
    use = {u["request_id"]: u for u in usage.wait_ids(ids, timeout=60)}
    fleet.check_alive(procs)

    errors = [(rid, r["error"]) for rid, r in resp.items() if r["error"] is not None]
    assert not errors, errors[:5]
    contents = {r["content"] for r in resp.values()}
    assert len(contents) == 1 and contents.pop(), "answers differ"
    calls = mock.stats()
    print("provider calls:", calls["total"], "cached:",
          sum(1 for r in resp.values() if r["cached"]))
    assert calls["total"] == 1, calls
    # One answer came from the provider, every other one from it.
    assert sum(1 for r in resp.values() if not r["cached"]) == 1
    assert sum(1 for u in use.values() if u["cached"]) == N - 1
    # Served from the cache, nothing billed.
    assert all(u["total_tokens"] == 0 for u in use.values() if u["cached"])

    # Another tenant's identical prompt: its own namespace, a miss.
    other = make_request(f"c-{run}-other", text=prompt, agent_did=agent + "-other")
    # The first tenant again, on each partition: hits, no call.
    again = [make_request(f"c-{run}-again-{p}", text=prompt, agent_did=agent) for p in range(3)]
    fleet.produce_to("normal", [other], partition=0)
    for p, r in enumerate(again):
        fleet.produce_to("normal", [r], partition=p)
    more = {r["request_id"]: r for r in responses.wait_ids(
        {other["request_id"]} | {r["request_id"] for r in again}, timeout=60)}
    assert more[other["request_id"]]["cached"] is False
    assert all(more[r["request_id"]]["cached"] for r in again)
    assert mock.total() == 2
    for t in (responses, usage):
        t.close()
