"""Issue 6: Redis stopped and restarted under load.

The workers' Redis is a private redis-server on its own port (the shared
one is never touched). Two `modelgw` workers serve a steady load that uses
every Redis feature (idempotency claim and result, agent RPM/TPM limits far
above the load, the exact cache with unique prompts so every request takes
the lock and stores, the breaker). The server is killed (SIGKILL, no
persistence: it comes back empty) and restarted on the same port.

* fail-open (every failure_policy open): every request is answered
  successfully, during the outage too (local fallbacks);
* fail-closed (every failure_policy closed): requests decided during the
  outage get E4501 STATE_UNAVAILABLE; before and after, success;

and in both: no worker exits, every request id gets a response, the
workers reconnect (requests after the restart write keys to the new
server), and no key of the prefix is left without a TTL.
"""

import threading
import time
import uuid

import pytest

from fleet import (  # noqa: F401
    MockLLM, RedisServer, Tail, error_code, fleet, keys_without_ttl, make_request,
    openai_deployment, redis_settings, scan_keys,
)


class Load:
    def __init__(self, env, rate, run, agent):
        self.env, self.rate, self.run, self.agent = env, rate, run, agent
        self.sent = []  # (request id, wall ms when produced)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self):
        i = 0
        while not self._stop.is_set():
            req = make_request(f"r-{self.run}-{i}", text=f"redis outage {self.run} {i}",
                               agent_did=self.agent, max_tokens=32)
            self.env.produce_to("normal", [req], partition=i % 3)
            self.sent.append((req["request_id"], time.time() * 1000))
            i += 1
            self._stop.wait(1.0 / self.rate)

    def stop(self):
        self._stop.set()
        self._t.join(30)
        return self.sent


@pytest.mark.parametrize("policy", ["open", "closed"])
def test_redis_killed_and_restarted_under_load(
    fleet, start_process, binary, tmp_path, policy  # noqa: F811
):
    redis = RedisServer(start_process, tmp_path)
    mock = MockLLM(start_process, binary, tmp_path, latency_ms=20)
    prefix = f"mgwtest:fleet-redis-{uuid.uuid4().hex[:8]}:"
    run = uuid.uuid4().hex[:8]
    agent = f"did:example:redis-{run}"
    dep = openai_deployment("oa-redis", mock.url, model="redis-model")
    over = {
        "failure_policy": {"limits": policy, "cache": policy, "idempotency": policy,
                           "breaker": policy},
        "limits": {"agents": [{"agent": agent, "rpm": 100000, "tpm": 100000000}]},
        "cache": {"enabled": True, "ttl_s": 600, "singleflight_wait_ms": 2000},
        "idempotency": {"enabled": True, "lease_ms": 5000, "result_ttl_s": 600},
        "retry": {"max_attempts_per_deployment": 1},
    }
    rs = redis_settings("127.0.0.1", redis.port, prefix, command_timeout_ms=300,
                        reconnect_min_ms=50, reconnect_max_ms=400, expected_workers=2)
    procs = [fleet.start_worker(f"w{i}", [dep], rs, over) for i in range(2)]
    fleet.wait_assigned(procs)
    responses = Tail(fleet, "responses")

    load = Load(fleet, rate=40, run=run, agent=agent)
    time.sleep(3.0)
    assert scan_keys(redis.cli, prefix), "the workers wrote nothing to Redis"
    down_ms = time.time() * 1000
    redis.stop()
    time.sleep(3.0)
    up_ms = time.time() * 1000
    redis.start()
    time.sleep(4.0)
    sent = load.stop()

    ids = {rid for rid, _ in sent}
    resp = {r["request_id"]: r for r in responses.wait_ids(ids, timeout=90)}
    responses.poll(1.0)
    fleet.check_alive(procs)
    sent_at = dict(sent)

    codes = {}
    for rid, r in resp.items():
        codes.setdefault(error_code(r), []).append(rid)
    print(policy, {c: len(v) for c, v in codes.items()})
    before = [rid for rid, t in sent if t < down_ms - 500]
    after = [rid for rid, t in sent if t > up_ms + 2000]
    assert before and after
    # Before the outage and after the restart (reconnect backoff < 0.5 s) all succeed.
    assert all(resp[rid]["error"] is None for rid in before), [
        resp[rid]["error"] for rid in before if resp[rid]["error"]][:3]
    assert all(resp[rid]["error"] is None for rid in after), [
        resp[rid]["error"] for rid in after if resp[rid]["error"]][:3]
    if policy == "open":
        # Fail-open: local fallbacks; nothing is refused.
        assert set(codes) == {None}, {c: v[:3] for c, v in codes.items()}
    else:
        # Fail-closed: refused with E4501 while Redis was away, nothing else.
        assert set(codes) <= {None, "E4501"}, {c: v[:3] for c, v in codes.items()}
        refused = codes.get("E4501", [])
        assert refused, "no request was refused while Redis was down"
        assert all(down_ms - 1000 <= sent_at[rid] <= up_ms + 2000 for rid in refused)
        assert all(resp[rid]["error"]["retryable"] for rid in refused)

    # The workers reconnected: requests after the restart wrote to the new server.
    keys = scan_keys(redis.cli, prefix)
    assert any(rid in k for k in keys for rid in after[-10:]), keys[:10]
    # No key without a TTL.
    assert keys_without_ttl(redis.cli, prefix) == []
    responses.close()
