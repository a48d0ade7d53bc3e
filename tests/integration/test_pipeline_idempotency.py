"""Idempotency through a real worker on Redis: a request id answered once is
republished, never served twice; a copy that arrives while another holds the
lease waits for that answer instead of calling the provider.

(The fleet cases, kill -9 mid-flight and Redis restarts, are in the fleet
tests.) The cache is off so that only the idempotency claim can prevent a
second provider call; modelgw-mockllm counts calls per request id.
"""

import socket

import pytest

from gwlib import make_request, start_worker
from pipelib import PipeEnv, openai_dep, start_mock, wait_ready


@pytest.fixture
def idem_env(kafka_bootstrap, create_topic, unique_name, tmp_path, start_process, binary,
             redis_addr, redis_prefix):
    env = PipeEnv(kafka_bootstrap, create_topic, unique_name, tmp_path, partitions=1)
    mock = start_mock(start_process, binary, tmp_path, args=["--latency-ms", "1500"])
    conf = env.pipeline_config("w1", redis_addr, redis_prefix, [openai_dep("a", mock.url)],
                               sections={"cache": {"enabled": False},
                                         "idempotency": {"lease_ms": 20000}})
    w = start_worker(start_process, binary, conf, name="w1")
    wait_ready(w)
    return env, mock, w


def value(rec):
    """A record's value (collect adds _offset, _headers)."""
    return {k: v for k, v in rec.items() if not k.startswith("_")}


def all_for(env, out, rid, n):
    got = env.collect(out, lambda rs: sum(r["request_id"] == rid for r in rs) >= n)
    return [r for r in got if r["request_id"] == rid]


def test_concurrent_copies_wait_for_the_lease_holder_and_redelivery_republishes(idem_env):
    env, mock, w = idem_env
    r = make_request(text="answer me once")
    env.produce("normal", [r, r])  # two copies at once: one calls, one waits for the lease
    rid = r["request_id"]
    responses = all_for(env, "responses", rid, 2)
    usage = all_for(env, "usage", rid, 3)
    assert [x["error"] for x in responses] == [None, None]
    assert value(responses[0]) == value(responses[1])  # the replay is the answer as it was
    # The waiting copy replays the kept answer: the success event again, the
    # same event (same event_id: a consumer counts the call once), then its
    # own duplicate event at no cost.
    assert sorted(u["outcome"] for u in usage) == ["duplicate", "success", "success"]
    ok = [u for u in usage if u["outcome"] == "success"]
    assert value(ok[0]) == value(ok[1]) and ok[0]["cost_usd"] > 0
    dup = next(u for u in usage if u["outcome"] == "duplicate")
    assert dup["event_id"] != ok[0]["event_id"]
    assert dup["cost_usd"] == 0 and dup["total_tokens"] == 0
    assert mock.calls(rid) == 1

    # Later redelivery of the same id (streamed this time): republished as chunks.
    env.produce("high", [dict(r, stream=True)])
    responses = all_for(env, "responses", rid, 3)
    assert responses[-1]["content"] == responses[0]["content"]
    chunks = all_for(env, "chunks", rid, 1)
    assert chunks[-1]["is_final"] and "".join(c["content"] for c in chunks) == \
        responses[0]["content"]
    assert mock.calls(rid) == 1
    assert w.running(), w.describe()


class RedisConn:
    """One raw RESP connection (EXISTS right after a response is read, with no
    process start in between)."""

    def __init__(self, addr):
        host, _, port = addr.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.rf = self.sock.makefile("rb")

    def exists(self, key):
        k = key.encode()
        self.sock.sendall(b"*2\r\n$6\r\nEXISTS\r\n$%d\r\n%s\r\n" % (len(k), k))
        line = self.rf.readline()
        assert line.startswith(b":"), line
        return int(line[1:]) == 1

    def close(self):
        self.rf.close()
        self.sock.close()


def test_kept_response_is_stored_before_the_response_is_visible(idem_env, redis_addr,
                                                                redis_prefix):
    """A worker that dies right after publishing must not leave a published
    answer without its kept copy (a redelivery would call the provider again):
    every response read from Kafka already has its idempotency result key."""
    env, mock, w = idem_env
    reqs = [make_request(text=f"kept first {i}", stream=i % 3 == 0) for i in range(30)]
    ids = {r["request_id"] for r in reqs}
    env.produce("normal", reqs)
    conn = RedisConn(redis_addr)
    seen, missing = set(), []

    def check(records):
        for rec in records:
            rid = rec["request_id"]
            if rid in ids and rid not in seen:
                seen.add(rid)
                if not conn.exists(f"{redis_prefix}id:{{{rid}}}"):
                    missing.append(rid)
        return seen == ids

    try:
        env.collect("responses", check)
    finally:
        conn.close()
    assert missing == [], f"responses visible before their kept copy: {missing}"
    assert all(mock.calls(rid) == 1 for rid in ids)
    assert w.running(), w.describe()


def test_reused_request_id_gets_e4012_never_the_other_answer(
        kafka_bootstrap, create_topic, unique_name, tmp_path, start_process, binary, redis_addr,
        redis_prefix, wait_until):
    """Issue 14: 100 requests answered, then their ids sent again, half with
    other content (E4012 REQUEST_ID_REUSED, field request_id, outcome
    invalid: never the first request's answer), half as they were (the kept
    answer replayed, the same bytes); the provider is called once per id and
    each id has one success usage event."""
    env = PipeEnv(kafka_bootstrap, create_topic, unique_name, tmp_path, partitions=1)
    mock = start_mock(start_process, binary, tmp_path, args=["--latency-ms", "20"])
    conf = env.pipeline_config("w1", redis_addr, redis_prefix, [openai_dep("a", mock.url)],
                               sections={"cache": {"enabled": False}})
    w = start_worker(start_process, binary, conf, name="w1")
    wait_ready(w)
    originals = [make_request(text=f"original {i}") for i in range(100)]
    env.produce("normal", originals)
    ids = [r["request_id"] for r in originals]
    env.collect("responses", lambda rs: {r["request_id"] for r in rs} >= set(ids))
    reused = [make_request(r["request_id"], text=f"other content {i}")
              for i, r in enumerate(originals[:50])]
    again = originals[50:]
    env.produce("normal", reused + again)
    responses = env.collect("responses", lambda rs: len(rs) >= 200)
    by_id = {}
    for r in responses:
        by_id.setdefault(r["request_id"], []).append(r)
    assert sorted(by_id) == sorted(ids) and all(len(v) == 2 for v in by_id.values())
    for req in reused:
        first, second = by_id[req["request_id"]]
        assert first["error"] is None and first["content"]
        assert second["error"] is not None and second["error"]["code"] == "E4012", second
        assert second["error"]["details"].get("field") == "request_id", second["error"]
        assert first["content"] not in (second["content"] or ""), "never the other answer"
    for req in again:
        first, second = by_id[req["request_id"]]
        assert first["error"] is None and value(first) == value(second), "a true replay"
    # 100 first answers, 50 invalid, 50 replays (the kept success event and a duplicate one)
    env.collect("usage", lambda rs: len(rs) >= 250)
    usage = env.collect_all("usage", quiet_s=2)
    success = {}
    for u in usage:
        if u["outcome"] == "success":
            success.setdefault(u["request_id"], {}).setdefault(u["event_id"], []).append(value(u))
    assert sorted(success) == sorted(ids)
    for rid, events in success.items():
        assert len(events) == 1, (rid, "one success event per provider call", events)
        copies = next(iter(events.values()))
        assert all(c == copies[0] for c in copies), (rid, copies)
    invalid = sorted(u["request_id"] for u in usage if u["outcome"] == "invalid")
    assert invalid == sorted(r["request_id"] for r in reused)
    assert all(mock.calls(rid) == 1 for rid in ids), {rid: mock.calls(rid) for rid in ids}
    wait_until(lambda: env.committed()[("normal", 0)] == 200, 30, "the partition committed")
    assert w.running(), w.describe()
    assert w.stop() == 0, w.describe()
