"""Observability of one real worker (docs/observability.md): a UsageEvent per
request outcome with costs from the registry's prices, /metrics parsed by the
real Prometheus parser, /health and /ready following Redis and the breakers,
and JSON log lines that never hold a secret.

Real Kafka, the real `modelgw` worker and `modelgw-mockllm` (OpenAI dialect);
Redis tests use a private redis-server that the test stops and restarts.
"""

import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleet import (MockLLM, RedisServer, Tail, fleet, free_port,  # noqa: F401 (fixture)
                   make_request, openai_deployment, redis_settings, wait_for)

# Prices chosen so that one request costs cents: every cent must add up.
PRICES = {"obs-a": (1000.0, 2000.0), "obs-b": (3000.0, 6000.0)}


def deployments(mock, **over):
    return [openai_deployment(d, mock.url, price_in_usd_per_mtok=pin, price_out_usd_per_mtok=pout,
                              **over)
            for d, (pin, pout) in PRICES.items()]


def admin_over(port, level="info", **more):
    over = {"admin": {"listen": "127.0.0.1", "port": port}, "log": {"level": level}}
    over.update(more)
    return over


def http_get(port, path, timeout=5):
    """(status, body) of GET http://127.0.0.1:port/path; 503 is an answer, not an error."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(port):
    """{(name, frozenset(labels)): value} of every sample; the parser must accept all of it."""
    status, text = http_get(port, "/metrics")
    assert status == 200, text
    samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def total(samples, name, **labels):
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def expected_cost(dep, prompt, completion):
    pin, pout = PRICES[dep]
    return prompt * pin / 1e6 + completion * pout / 1e6


def start(fleet, mock, name="w0", redis=None, level="info", **more):
    port = free_port()
    over = admin_over(port, level, **more)
    w = fleet.start_worker(name, deployments(mock), redis=redis, over=over)
    fleet.wait_assigned([w])
    return w, port


def test_usage_events_metrics_and_costs(fleet, start_process, binary):
    mock = MockLLM(start_process, binary, fleet.tmp_path,
                   rules=[{"prompt_contains": "please fail", "fault": "status:400"}])
    worker, port = start(fleet, mock, cache={"enabled": True})
    wait_for(lambda: http_get(port, "/ready")[0] == 200, 30, "/ready 200")
    before = scrape(port)
    usage = Tail(fleet, "usage")
    responses = Tail(fleet, "responses")

    ok = [make_request(text=f"obs {i}", model="obs-a" if i < 6 else "obs-b",
                       enable_cache=False, batch_id="batch-1", custom_id=f"c{i}",
                       tenant_id="tenant-x" if i % 2 else None) for i in range(10)]
    err = make_request(text="please fail", model="obs-a", enable_cache=False)
    invalid = make_request(text="bad", temperature=5.0)
    expired = make_request(text="late", deadline_ms=int(time.time() * 1000) - 60_000)
    cacheable = make_request(text="cache me", model="obs-a", temperature=0.0, enable_cache=True)
    fleet.produce("high", ok[:5] + [err])
    fleet.produce("normal", ok[5:] + [invalid])
    fleet.produce("low", [expired, cacheable])
    first = [r["request_id"] for r in ok + [err, invalid, expired, cacheable]]
    usage.wait_ids(first, timeout=60)
    # The same prompt again: a cache hit once the first answer is stored.
    again = dict(cacheable, request_id=str(uuid.uuid4()))
    fleet.produce("normal", [again])
    usage.wait_ids([again["request_id"]], timeout=60)
    responses.wait_ids(first + [again["request_id"]], timeout=60)
    time.sleep(1.0)  # anything published twice would show up now
    usage.poll(0.5)

    by_id = {}
    for u in usage.records:
        assert u["request_id"] not in by_id, f"two usage events for {u['request_id']}"
        by_id[u["request_id"]] = u
    assert len({u["event_id"] for u in usage.records}) == len(usage.records)
    resp = {r["request_id"]: r for r in responses.records}

    billed = 0.0
    for r in ok:
        u = by_id[r["request_id"]]
        dep = r["model"]
        assert (u["outcome"], u["model_id"], u["provider"]) == ("success", dep, "openai"), u
        assert u["agent_did"] == r["agent_did"]
        assert u["tenant_id"] == (r["tenant_id"] or r["agent_did"])
        assert (u["batch_id"], u["custom_id"]) == ("batch-1", r["custom_id"])
        tu = resp[r["request_id"]]["token_usage"]
        assert (u["prompt_tokens"], u["completion_tokens"]) == (tu["prompt_tokens"],
                                                                tu["completion_tokens"])
        assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
        assert u["completion_tokens"] > 0
        assert u["cost_usd"] == pytest.approx(
            expected_cost(dep, u["prompt_tokens"], u["completion_tokens"]), abs=1e-9)
        assert u["saved_cost_usd"] == 0 and not u["cached"] and u["cache_tier"] is None
        assert u["attempts"] == 1 and u["failovers"] == 0 and u["error_code"] is None
        assert u["ttft_ms"] is not None and u["latency_ms"] > 0 and u["timestamp_ms"] > 0
        billed += u["cost_usd"]
    assert {by_id[r["request_id"]]["priority"] for r in ok[:5]} == {"high"}
    # The known workload to the cent, recomputed from the responses and the prices.
    want = sum(expected_cost(r["model"], resp[r["request_id"]]["token_usage"]["prompt_tokens"],
                             resp[r["request_id"]]["token_usage"]["completion_tokens"])
               for r in ok)
    assert round(billed, 2) == round(want, 2) and billed > 0.5

    u = by_id[err["request_id"]]
    assert u["outcome"] == "error" and u["error_code"] and u["cost_usd"] == 0, u
    assert u["attempts"] >= 1 and u["model_id"] in PRICES
    u = by_id[invalid["request_id"]]
    assert (u["outcome"], u["error_code"], u["cost_usd"], u["attempts"]) == ("invalid", "E4004",
                                                                             0, 0), u
    assert u["model_id"] is None and u["priority"] == "normal"
    u = by_id[expired["request_id"]]
    assert (u["outcome"], u["error_code"], u["cost_usd"], u["attempts"]) == ("expired", "E4007",
                                                                             0, 0), u
    first_cost = by_id[cacheable["request_id"]]["cost_usd"]
    assert by_id[cacheable["request_id"]]["outcome"] == "success" and first_cost > 0
    hit = by_id[again["request_id"]]
    if hit["outcome"] != "cached":
        pytest.skip(f"the response cache is not wired into the worker yet: {hit}")
    assert hit["cached"] and hit["cache_tier"] == "exact" and hit["cost_usd"] == 0
    assert hit["saved_cost_usd"] == pytest.approx(first_cost, abs=1e-9)
    assert hit["attempts"] == 0

    after = scrape(port)

    def delta(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("modelgw_requests_total", outcome="success") == 11
    assert delta("modelgw_requests_total", outcome="success", tier="high") == 5
    assert delta("modelgw_requests_total", outcome="error") == 1
    assert delta("modelgw_requests_total", outcome="invalid") == 1
    assert delta("modelgw_requests_total", outcome="expired") == 1
    assert delta("modelgw_requests_total", outcome="cached") == 1
    assert delta("modelgw_request_duration_seconds_count") == 15
    assert delta("modelgw_time_to_first_token_seconds_count", model="obs-b") == 4
    prompt = sum(by_id[r["request_id"]]["prompt_tokens"] for r in ok + [cacheable]
                 if r["model"] == "obs-a")
    assert delta("modelgw_tokens_total", model="obs-a", kind="prompt") == prompt
    cost_a = sum(by_id[r["request_id"]]["cost_usd"] for r in ok + [cacheable]
                 if r["model"] == "obs-a")
    assert delta("modelgw_cost_usd_total", model="obs-a") == pytest.approx(cost_a, abs=1e-9)
    assert delta("modelgw_provider_calls_total", code="OK") == 11
    assert delta("modelgw_provider_calls_total", code="OK", deployment="obs-b") == 4
    assert delta("modelgw_provider_calls_total") >= 12
    assert delta("modelgw_cache_operations_total", tier="exact", result="hit") == 1
    assert delta("modelgw_cache_operations_total", tier="exact", result="miss") >= 1
    assert delta("modelgw_cache_operations_total", tier="exact", result="store") >= 1
    assert total(after, "modelgw_in_flight_requests") == 0
    assert ("modelgw_breaker_state", frozenset({("deployment", "obs-a")})) in after
    # Lag comes from librdkafka statistics (every 2 s), one series per assigned partition.
    wait_for(lambda: any(n == "modelgw_consumer_lag_messages" for n, _ in scrape(port)), 15,
             "consumer lag series")
    assert worker.running(), worker.describe()


def test_dlq_and_chunks_are_counted(fleet, start_process, binary):
    mock = MockLLM(start_process, binary, fleet.tmp_path)
    worker, port = start(fleet, mock)
    fleet.produce_raw("normal", b"\x07not avro at all", key=b"k")
    fleet.produce("high", [make_request(text="stream me", stream=True, model="obs-a")])
    wait_for(lambda: total(scrape(port), "modelgw_dlq_messages_total") == 1, 30, "DLQ counted")
    wait_for(lambda: total(scrape(port), "modelgw_stream_chunks_total") >= 1, 30,
             "chunks counted")
    health = json.loads(http_get(port, "/health")[1])
    assert health["registry"]["total_models"] == 2
    assert health["queue"]["pending_requests"] >= 0
    assert set(health["providers"]) == {"obs-a", "obs-b"}
    assert worker.running(), worker.describe()


def test_health_follows_redis(fleet, start_process, binary, unique_name):
    redis = RedisServer(start_process, fleet.tmp_path)
    mock = MockLLM(start_process, binary, fleet.tmp_path)
    prefix = "mgwtest:" + unique_name("obs") + ":"
    worker, port = start(fleet, mock, redis=redis_settings("127.0.0.1", redis.port, prefix))
    wait_for(lambda: http_get(port, "/health")[0] == 200, 30, "/health 200")
    wait_for(lambda: http_get(port, "/ready")[0] == 200, 30, "/ready 200")
    body = json.loads(http_get(port, "/health")[1])
    assert body["gateway"] == "healthy" and body["redis"]["connected"] is True, body
    assert body["kafka"]["assigned_total"] == 9, body
    assert body["timestamp"].endswith("Z")

    # Redis down is a dependency outage: /ready says so (503, with the
    # reason), the body of /health too, but liveness stays 200 so that a
    # probe never restarts a worker that only waits for Redis.
    redis.stop()
    wait_for(lambda: http_get(port, "/ready")[0] == 503, 30, "/ready 503 with Redis down")
    status, text = http_get(port, "/health")
    body = json.loads(text)
    assert status == 200 and body["live"] is True, body
    assert body["gateway"] == "unhealthy" and body["redis"]["connected"] is False, body
    assert body["ready"] is False and "Redis unreachable" in body["not_ready"], body
    assert "Redis unreachable" in json.loads(http_get(port, "/ready")[1])["not_ready"]

    redis.start()
    wait_for(lambda: http_get(port, "/ready")[0] == 200, 30, "/ready 200 after restart")
    body = json.loads(http_get(port, "/health")[1])
    assert body["gateway"] == "healthy" and body["ready"] is True, body
    assert worker.running(), worker.describe()


def test_health_when_every_breaker_is_open(fleet, start_process, binary):
    mock = MockLLM(start_process, binary, fleet.tmp_path,
                   rules=[{"path": "/v1/chat/completions", "fault": "status:503"}])
    breaker = {"min_calls": 2, "failure_rate": 0.5, "consecutive_failures": 2,
               "open_base_ms": 1000, "open_max_ms": 1500, "jitter": 0.0, "window_ms": 10000,
               "bucket_ms": 1000, "local_cache_ms": 0}
    worker, port = start(fleet, mock, breaker=breaker)
    assert http_get(port, "/health")[0] == 200

    def push_and_check(gateway):
        fleet.produce("high", [make_request(text=f"b {uuid.uuid4()}", enable_cache=False)
                               for _ in range(3)])
        time.sleep(0.2)
        status, text = http_get(port, "/health")
        # every provider down is a dependency outage: liveness stays 200
        return status == 200 and json.loads(text)["gateway"] == gateway

    wait_for(lambda: push_and_check("unhealthy"), 60, "gateway unhealthy with every breaker open")
    body = json.loads(http_get(port, "/health")[1])
    assert {p["breaker_state"] for p in body["providers"].values()} <= {"open", "half_open"}, body
    metrics = scrape(port)
    assert total(metrics, "modelgw_breaker_state") >= 2  # at least one deployment open
    mock.restart([])  # the provider recovers; probes close the breakers
    wait_for(lambda: push_and_check("healthy"), 60, "gateway healthy after recovery")
    assert worker.running(), worker.describe()


def test_logs_are_json_and_never_hold_the_key(fleet, start_process, binary, monkeypatch):
    key = "obsFAKE" + uuid.uuid4().hex
    monkeypatch.setenv("MODELGW_OBS_TEST_KEY", key)
    mock = MockLLM(start_process, binary, fleet.tmp_path,
                   rules=[{"prompt_contains": "echo", "fault": "echo-auth"}])
    port = free_port()
    deps = deployments(mock, api_key_env="MODELGW_OBS_TEST_KEY")
    worker = fleet.start_worker("w0", deps, over=admin_over(port, "debug"))
    fleet.wait_assigned([worker])
    usage = Tail(fleet, "usage")
    responses = Tail(fleet, "responses")
    reqs = [make_request(text=f"echo {i}", model="obs-a", enable_cache=False) for i in range(3)]
    reqs += [make_request(text="fine", model="obs-b", enable_cache=False)]
    fleet.produce("high", reqs)
    usage.wait_ids([r["request_id"] for r in reqs], timeout=60)
    responses.wait_ids([r["request_id"] for r in reqs], timeout=60)
    assert {u["outcome"] for u in usage.records} == {"error", "success"}
    assert worker.stop() == 0, worker.describe()

    raw = worker.stderr_path.read_bytes()
    assert key.encode() not in raw, "the API key reached the logs"
    for r in responses.records:
        assert key not in json.dumps(r, default=str), "the API key reached Kafka"
    events = []
    for line in raw.decode().splitlines():
        obj = json.loads(line)  # every line is one JSON object
        assert isinstance(obj, dict) and {"time", "level", "event"} <= set(obj), line
        events.append(obj)
    done = [e for e in events if e["event"] == "request_done"]
    assert {e["request_id"] for e in done} == {r["request_id"] for r in reqs}
    failed = [e for e in done if e["outcome"] == "error"]
    assert len(failed) == 3 and all(e["level"] == "warn" for e in failed)
    assert all(e["model"] and e["agent"] for e in done)
    # The provider answered 401 with the echoed headers (what the key could leak through).
    assert all("obs-a:E4207:401" in (e.get("attempt_log") or "") for e in failed), failed
    # No prompt or completion text without log.debug_content.
    assert not any(e.get("prompt") or e.get("completion") for e in done)
