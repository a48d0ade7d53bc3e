"""The worker against the real Kafka: every request answered, streams, DLQ,
invalid and expired requests, and priorities. See tests/integration/gwlib.py."""

import collections
import time

import pytest

from gwlib import TIERS, GwEnv, ids_of, make_request, start_worker

PRICES = {"mock-a": (1.0, 2.0), "mock-b": (3.0, 6.0)}  # gwlib's deployments, USD per Mtok


@pytest.fixture
def env(kafka_bootstrap, create_topic, unique_name, tmp_path):
    return GwEnv(kafka_bootstrap, create_topic, unique_name, tmp_path)


def test_every_request_gets_exactly_one_response(env, start_process, binary):
    reqs = {t: [make_request(text=f"{t} question {i}") for i in range(100)] for t in TIERS}
    for t in TIERS:
        env.produce(t, reqs[t])
    worker = start_worker(start_process, binary, env.config())
    want = {r["request_id"] for t in TIERS for r in reqs[t]}
    responses = env.collect("responses", lambda rs: len(rs) >= len(want))
    usage = env.collect("usage", lambda rs: len(rs) >= len(want))
    assert worker.running(), worker.describe()
    assert sorted(ids_of(responses)) == sorted(want)
    for r in responses:
        assert r["error"] is None, r
        assert r["content"], r
        assert r["model_id"] in PRICES  # BALANCED routing picks among the registry
        assert r["_key"] == r["request_id"].encode()
        assert r["_headers"]["request_id"] == r["request_id"]
        assert "inferenceresponse+avro" in r["_headers"]["content-type"]
    assert sorted(ids_of(usage)) == sorted(want)
    by_tier = collections.Counter(u["priority"] for u in usage)
    assert by_tier == {"high": 100, "normal": 100, "low": 100}
    for u in usage:
        assert u["outcome"] == "success"
        p_in, p_out = PRICES[u["model_id"]]
        expected = u["prompt_tokens"] * p_in / 1e6 + u["completion_tokens"] * p_out / 1e6
        assert u["cost_usd"] == pytest.approx(expected)
    assert worker.stop() == 0, worker.describe()


def test_stream_chunks_concatenate_to_the_response(env, start_process, binary):
    reqs = [make_request(text=f"stream me {i}", stream=True, max_tokens=200) for i in range(20)]
    # One clipped stream: finish_reason "length".
    reqs.append(make_request(text="clip me", stream=True, max_tokens=3))
    env.produce("normal", reqs, headers=[("traceparent", b"00-abc-def-01"),
                                         ("x-correlation-id", b"corr-1"), ("other", b"no")])
    worker = start_worker(start_process, binary, env.config(
        mock={"ttft_ms": 5, "chunk_delay_ms": 2}))
    responses = env.collect("responses", lambda rs: len(rs) >= len(reqs))
    finals = lambda rs: sum(1 for c in rs if c["is_final"]) >= len(reqs)
    chunks = env.collect("chunks", finals)
    by_id = collections.defaultdict(list)
    for c in chunks:
        by_id[c["request_id"]].append(c)
    for r in responses:
        cs = by_id[r["request_id"]]
        assert [c["seq"] for c in cs] == list(range(len(cs))), "chunks in seq order"
        assert [c["is_final"] for c in cs].count(True) == 1 and cs[-1]["is_final"]
        assert "".join(c["content"] for c in cs) == r["content"]
        assert cs[-1]["token_usage"] == r["token_usage"]
        assert cs[-1]["finish_reason"] == r["finish_reason"]
        assert cs[0]["_headers"]["chunk_seq"] == "0"
        assert cs[0]["_headers"]["traceparent"] == "00-abc-def-01"
        assert r["_headers"]["x-correlation-id"] == "corr-1"
        assert "other" not in r["_headers"]
    clipped = [r for r in responses if r["request_id"] == reqs[-1]["request_id"]][0]
    assert clipped["finish_reason"] == "length"
    assert clipped["token_usage"]["completion_tokens"] == 3
    assert worker.stop() == 0, worker.describe()


def test_poison_message_goes_to_dlq_and_partition_moves_on(env, start_process, binary):
    before = [make_request(text=f"before {i}") for i in range(5)]
    after = [make_request(text=f"after {i}") for i in range(5)]
    for r in before:
        env.produce_raw("high", __import__("gwlib").encode("request", r),
                        key=r["request_id"].encode(), partition=0)
    env.produce_raw("high", b"\x02\xff\xff\xff\xff\x0fgarbage", key=b"poison", partition=0,
                    headers=[("traceparent", b"tp-poison")])
    for r in after:
        env.produce_raw("high", __import__("gwlib").encode("request", r),
                        key=r["request_id"].encode(), partition=0)
    worker = start_worker(start_process, binary, env.config())
    responses = env.collect("responses", lambda rs: len(rs) >= 10)
    assert sorted(ids_of(responses)) == sorted(r["request_id"] for r in before + after)
    dlq = env.collect("dlq", lambda rs: len(rs) >= 1)
    assert len(dlq) == 1
    d = dlq[0]
    assert d["value"] == b"\x02\xff\xff\xff\xff\x0fgarbage"
    assert d["_key"] == b"poison"
    h = d["_headers"]
    assert h["error_code"].startswith("E48"), h
    assert h["error_name"] and h["error_message"]
    assert h["source_topic"] == env.topics["high"]
    assert h["source_partition"] == "0"
    assert h["source_offset"] == "5"
    assert h["traceparent"] == "tp-poison"
    assert worker.stop() == 0, worker.describe()
    # The poison's offset was committed past: the partition did not stall.
    assert env.committed()[("high", 0)] == 11


def test_invalid_and_expired_requests_get_named_errors(env, start_process, binary):
    now_ms = int(time.time() * 1000)
    cases = {
        "E4003": make_request(messages=[]),
        "E4004": make_request(temperature=2.5),
        "E4005": make_request(max_tokens=0),
        "E4005b": make_request(max_tokens=5000),
        "E4006": make_request(text="x" * 70000),
        "E4007": make_request(deadline_ms=now_ms - 1000),
        "E4008": make_request(model="no-such-model"),
        "OK": make_request(model="mock-b-1", deadline_ms=now_ms + 600000),
    }
    env.produce("normal", list(cases.values()))
    worker = start_worker(start_process, binary, env.config(worker={"max_content_bytes": 65536}))
    responses = env.collect("responses", lambda rs: len(rs) >= len(cases))
    usage = env.collect("usage", lambda rs: len(rs) >= len(cases))
    by_id = {r["request_id"]: r for r in responses}
    usage_by_id = {u["request_id"]: u for u in usage}
    for code, req in cases.items():
        r = by_id[req["request_id"]]
        u = usage_by_id[req["request_id"]]
        if code == "OK":
            assert r["error"] is None and r["model_id"] == "mock-b"
            assert u["outcome"] == "success"
            continue
        assert r["error"]["code"] == code[:5], (code, r["error"])
        assert r["content"] == ""
        assert u["error_code"] == code[:5]
        want = {"E4007": "expired", "E4008": "error"}.get(code[:5], "invalid")
        assert u["outcome"] == want, (code, u)
        assert u["cost_usd"] == 0
    assert worker.stop() == 0, worker.describe()


def test_oversized_identifiers_and_messages_never_stall_the_partition(env, start_process, binary):
    """Outputs are keyed by the request id and echo the other identifiers: a
    request whose request_id is too long to key outputs with goes to the DLQ,
    one with an over-long custom_id gets E4001 (and a small answer), and an
    undecodable message near the topic's size limit reaches the DLQ cut down
    to fit. The requests behind them are still served and committed."""
    gwlib = __import__("gwlib")
    big_id = make_request(request_id="r" * 300)
    big_custom = make_request(custom_id="c" * 200_000)
    junk = b"\x02\xff\xff\xff\xff\x0f" + b"j" * 700_000
    after = [make_request(text=f"after {i}") for i in range(3)]
    env.produce_raw("high", gwlib.encode("request", big_id), key=b"big-id", partition=0)
    env.produce_raw("high", gwlib.encode("request", big_custom), key=b"big-custom", partition=0)
    env.produce_raw("high", junk, key=b"junk", partition=0)
    for r in after:
        env.produce_raw("high", gwlib.encode("request", r), key=r["request_id"].encode(),
                        partition=0)
    worker = start_worker(start_process, binary, env.config())
    responses = env.collect("responses", lambda rs: len(rs) >= 4)
    by_id = {r["request_id"]: r for r in responses}
    assert by_id[big_custom["request_id"]]["error"]["code"] == "E4001"
    assert by_id[big_custom["request_id"]]["custom_id"] is None
    for r in after:
        assert by_id[r["request_id"]]["error"] is None
    dlq = env.collect("dlq", lambda rs: len(rs) >= 2)
    by_key = {d["_key"]: d for d in dlq}
    assert by_key[b"big-id"]["_headers"]["error_name"] == "CODEC_LIMIT"
    cut = by_key[b"junk"]
    assert cut["_headers"]["payload_truncated"] == "true"
    assert cut["_headers"]["payload_size"] == str(len(junk))
    assert cut["value"] == junk[: len(cut["value"])] and len(cut["value"]) < len(junk)
    assert worker.stop() == 0, worker.describe()
    assert env.committed()[("high", 0)] == 6
