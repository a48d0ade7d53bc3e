"""Issue 13: no lease or single-flight lock outlives its request.

One worker with Redis state (a private redis-server), 4,096 requests in
flight, 20,000 pre-published requests with unique prompts (so every request
takes an idempotency lease and a cache lock), Redis command timeout 100 ms.
Redis is frozen with CLIENT PAUSE for 1.5 s in the middle of the run: the
worker's admissions and completions time out (the open failure policy
carries the requests on) while the scripts already sent still run when the
pause ends. Every request must be answered, and when the worker is done not
one lease (il:) or lock (cl:) key may be left: a lease or lock whose answer
was lost is released by its request's completion call, by owner, and fenced
against a late copy of its own claim.
"""

import time
import uuid

from fleet import RedisServer, Tail, fleet, redis_settings, scan_keys  # noqa: F401
from gwlib import make_request
from pipelib import mock_dep

COUNT = 20000


def _leftovers(redis, prefix):
    """Leases and locks still held. A released one is left as "~<owner>" for
    a while (a fence against a late copy of its owner's claim): free for
    anyone else, so not held."""
    keys = scan_keys(redis.cli, prefix)
    held = []
    for k in keys:
        if k[len(prefix):].startswith(("il:", "cl:")):
            v = redis.cli("GET", k)
            if v and not v.startswith("~"):
                held.append(k)
    return held


def test_no_lease_or_lock_left_after_timeouts(fleet, start_process, tmp_path):  # noqa: F811
    redis = RedisServer(start_process, tmp_path)
    prefix = f"mgwtest:leaks-{uuid.uuid4().hex[:8]}:"
    run = uuid.uuid4().hex[:6]
    dep = mock_dep("leak-mock", mock={"latency_ms": 0, "ttft_ms": 0, "chunk_delay_ms": 0,
                                      "failure_rate": 0.0})
    over = {
        "worker": {"max_in_flight": 4096},
        "kafka": {"max_partition_runahead": 20000, "prefetch_max_kbytes": 16384},
        "failure_policy": {"limits": "open", "cache": "open", "idempotency": "open"},
        # leases and locks long enough that expiry cannot hide a leak
        "cache": {"enabled": True, "ttl_s": 600, "singleflight_wait_ms": 300000},
        "idempotency": {"enabled": True, "lease_ms": 300000, "result_ttl_s": 600},
        "log": {"level": "warn"},
    }
    rs = redis_settings("127.0.0.1", redis.port, prefix, command_timeout_ms=100,
                        reconnect_min_ms=50, reconnect_max_ms=200)
    reqs = [make_request(f"lk-{run}-{i}", text=f"leak check {run} {i}", temperature=0.0,
                         max_tokens=16) for i in range(COUNT)]
    fleet.produce_spread("normal", reqs)
    responses = Tail(fleet, "responses")
    proc = fleet.start_worker("leaky", [dep], rs, over)

    # Freeze Redis once the worker is busy: wait for its first keys.
    deadline = time.monotonic() + 60
    while not scan_keys(redis.cli, prefix) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert scan_keys(redis.cli, prefix), "the worker wrote nothing to Redis"
    assert redis.cli("CLIENT", "PAUSE", "1500", "ALL") == "OK"
    pause_ends = time.monotonic() + 1.5

    ids = {r["request_id"] for r in reqs}
    got = responses.wait_ids(ids, timeout=240)
    answered = {r["request_id"] for r in got}
    assert answered == ids
    failed = [r for r in got if r["error"] is not None]
    assert not failed, [r["error"] for r in failed[:3]]
    fleet.check_alive([proc])

    # The writes that follow the answers (completions, and those sent again
    # after the pause, paced and with backoff) settle within seconds (up to
    # about 30 s on a loaded machine), far less than the 300 s a leaked key
    # would live; then nothing is held.
    # A fast worker can answer everything while Redis is still paused: the
    # claims and completions it queued then run after the pause (the
    # completions that timed out again later, with backoff), so a first look
    # can see neither a lease nor an answer of the same request. Settled
    # means both: no lease or lock held and every answer kept (for
    # redeliveries, those whose claim was lost to a timeout too).
    time.sleep(max(0.0, pause_ends - time.monotonic()))

    def kept():
        return [k for k in scan_keys(redis.cli, prefix) if k[len(prefix):].startswith("id:")]

    settle_s = 150  # well inside the 300 s a leaked lease or lock would be held
    deadline = time.monotonic() + settle_s
    left, n_kept = _leftovers(redis, prefix), len(kept())
    while (left or n_kept != COUNT) and time.monotonic() < deadline:
        time.sleep(0.5)
        left, n_kept = _leftovers(redis, prefix), len(kept())
    detail = [(k, redis.cli("GET", k), redis.cli("PTTL", k)) for k in left[:5]]
    assert left == [], f"{len(left)} lease/lock keys left, e.g. {detail}\n{proc.describe(3000)}"
    assert n_kept == COUNT, n_kept
    print(f"settled {time.monotonic() - deadline + settle_s:.1f} s after the pause ended")
    responses.close()
