"""The adaptive in-flight cap of a deployment (docs/routing.md, "Adaptive
concurrency") through a real worker: real Kafka, the Redis state backend
(the cap is shared through the latency statistics' batched flush) and
`modelgw-mockllm` over HTTP.

One OpenAI-dialect deployment "cc" with max_concurrency 8. The cap is read
from /metrics (modelgw_deployment_concurrency_limit) and /health: it starts
at 8, halves on each 429 (the waves are spaced beyond the hold, and beyond
the breaker's 429 cool-down, so each counts once), stops at the floor of 1,
climbs back to 8 on successes (+1 per cap successes), and halves again on a
success whose rate-limit headers say 1 % of the requests are left.
"""

import json
import time

from prometheus_client.parser import text_string_to_metric_families

from fleet import (MockLLM, Tail, fleet, free_port,  # noqa: F401 (fixture)
                   make_request, openai_deployment, redis_settings, wait_for)
from test_observe import http_get

DEP = "cc"
WAVE_GAP_S = 1.3  # > the hold (1 s at most before samples) and the 1 s 429 cool-down


def limit(port):
    status, text = http_get(port, "/metrics")
    assert status == 200, text
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "modelgw_deployment_concurrency_limit" and s.labels == {"deployment": DEP}:
                return s.value
    return None


def health_limit(port):
    _, body = http_get(port, "/health")
    return json.loads(body)["providers"][DEP]["concurrency_limit"]


def send(fleet, tail, texts):
    reqs = [make_request(text=t, model=DEP, enable_cache=False) for t in texts]
    fleet.produce("normal", reqs)
    ids = [r["request_id"] for r in reqs]
    tail.wait_ids(ids, timeout=60)
    return {u["request_id"]: u for u in tail.records if u["request_id"] in set(ids)}


def test_cap_falls_under_429s_and_recovers(fleet, start_process, binary, redis_host_port,
                                           redis_prefix):
    mock = MockLLM(start_process, binary, fleet.tmp_path)
    host, port_r = redis_host_port
    port = free_port()
    over = {"admin": {"listen": "127.0.0.1", "port": port},
            "breaker": {"local_cache_ms": 0},
            "cache": {"enabled": False},
            "retry": {"base_backoff_ms": 10, "max_backoff_ms": 20}}
    dep = openai_deployment(DEP, mock.url, max_concurrency=8)
    w = fleet.start_worker("w0", [dep], redis=redis_settings(host, port_r, redis_prefix),
                           over=over)
    fleet.wait_assigned([w])
    wait_for(lambda: http_get(port, "/ready")[0] == 200, 30, "/ready 200")
    usage = Tail(fleet, "usage")

    assert limit(port) == 8
    assert health_limit(port) == 8
    send(fleet, usage, [f"warm {i}" for i in range(10)])  # samples: the hold becomes 100 ms
    assert limit(port) == 8  # successes at the max leave it there

    for want in (4, 2, 1, 1):
        send(fleet, usage, ["too many [mock-fault:429:0]"])
        wait_for(lambda: limit(port) == want, 10, f"concurrency limit {want}")
        time.sleep(WAVE_GAP_S)
    assert health_limit(port) == 1
    assert w.running(), w.describe()

    # 1 -> 8 takes about (8^2 - 1) / 2 = 32 successes; 60 leave room.
    # The queue behind the cap holds them; none is refused (the breaker's 429
    # cool-down is over, and the router must see that too).
    fine = send(fleet, usage, [f"fine {i}" for i in range(60)])
    assert [u["outcome"] for u in fine.values()] == ["success"] * 60, fine
    wait_for(lambda: limit(port) == 8, 20, "concurrency limit back to 8")
    assert health_limit(port) == 8

    # A success that says 1 of 100 requests is left (under the 5 % threshold).
    send(fleet, usage, ["nearly out [mock-fault:ratelimit:1]"])
    wait_for(lambda: limit(port) == 4, 10, "concurrency limit 4 after a low remaining header")
    assert w.running(), w.describe()
