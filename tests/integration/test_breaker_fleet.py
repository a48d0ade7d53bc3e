"""Fleet-wide circuit breaker: three processes share one breaker through Redis.

Each process is `modelgw-route-fleet`, which drives the real Redis breaker
backend exactly as a worker does (allow -> call -> record) against a
scripted provider, one call at a time, and logs every call it made (start
and end in ms since a shared epoch, whether it was the half-open probe, and
the result). The pipeline-level version of these tests (three `modelgw`
workers and a failing modelgw-mockllm) comes with the worker integration.

Breaker settings of the driver: trip after 3 consecutive failures, cool-down
300 ms * 2^(n-1) capped at 1200 ms, jitter 0.2 (so each cool-down is at least
0.8 of its nominal value), 2 successful probes close, local cache off.
"""

import json
import time

WORKERS = 3
FLUSH_MS = 100  # the worker's tick: batched outcomes reach Redis this often
CALL_MS = 20    # modelgw-route-fleet's default --call-ms
MIN_COOLDOWN_MS = [240, 480, 960, 960]  # 0.8 * min(300 * 2^(n-1), 1200)


def run_fleet(binary, start_process, redis_addr, prefix, duration_ms, extra=None):
    epoch = int(time.time() * 1000) + 1500  # everyone starts at the same instant
    procs = []
    for w in range(WORKERS):
        args = [
            binary("modelgw-route-fleet"), "--redis", redis_addr, "--prefix", prefix,
            "--worker", w, "--epoch-ms", epoch, "--duration-ms", duration_ms,
            "--flush-ms", FLUSH_MS,
        ]
        args += (extra or {}).get(w, []) + (extra or {}).get("all", [])
        procs.append(start_process(args, name=f"fleet-{w}"))
    calls, summaries = [], []
    for p in procs:
        assert p.wait(timeout=60) == 0, p.describe()
        for line in p.stdout.splitlines():
            ev = json.loads(line)
            (summaries if ev.get("summary") else calls).append(ev)
    assert len(summaries) == WORKERS
    assert all(s["state_errors"] == 0 for s in summaries), summaries
    return sorted(calls, key=lambda c: (c["start"], c["w"])), summaries


def test_breaker_opens_for_all_probes_once_grows_and_recovers(
    binary, start_process, redis_addr, redis_prefix
):
    calls, _ = run_fleet(
        binary, start_process, redis_addr, redis_prefix, 4500,
        extra={"all": ["--fail-until-ms", "1500"]},
    )
    probes = [c for c in calls if c["probe"]]
    failed_probes = [c for c in probes if c["result"] == "fail"]
    ok_probes = [c for c in probes if c["result"] == "ok"]
    assert len(failed_probes) >= 2, calls
    assert len(ok_probes) == 2, probes  # half_open_successes

    # The breaker opened for every worker: before the first probe, only the
    # calls made before the failures reached Redis failed. Outcomes are sent
    # in batches every FLUSH_MS (docs/routing.md): at most one flush interval
    # of calls per worker beyond the threshold, plus the one in flight.
    first_probe = probes[0]["start"]
    early = [c for c in calls if not c["probe"] and c["start"] < first_probe]
    assert all(c["result"] == "fail" for c in early)
    assert 3 <= len(early) <= 3 + WORKERS * (FLUSH_MS // CALL_MS + 1), early

    # Until it closed (the second successful probe ended), nothing but probes
    # reached the provider, from any worker.
    closed_at = ok_probes[-1]["end"]
    between = [c for c in calls if not c["probe"] and first_probe <= c["start"] < closed_at]
    assert between == [], between

    # Exactly one probe at a time across the fleet: probe calls never overlap.
    for a, b in zip(probes, probes[1:]):
        assert b["start"] >= a["end"], (a, b)

    # Each failed probe re-opened it with a longer cool-down: the silence after
    # failed probe n is at least the n+1-th minimum cool-down, and it grows.
    gaps = []
    for n, (a, b) in enumerate(zip(failed_probes, probes[1:])):
        gap = b["start"] - a["end"]
        assert gap >= MIN_COOLDOWN_MS[n + 1] - 1, (n, a, b)
        gaps.append(gap)
    assert all(y > x for x, y in zip(gaps, gaps[1:])) or len(gaps) == 1, gaps

    # Recovery: every worker calls again, successfully, after it closed.
    after = [c for c in calls if c["start"] >= closed_at]
    assert {c["w"] for c in after} == set(range(WORKERS)), after[:10]
    assert all(c["result"] == "ok" and not c["probe"] for c in after)


def test_429_retry_after_blocks_every_worker_without_tripping(
    binary, start_process, redis_addr, redis_prefix, redis_cli
):
    calls, _ = run_fleet(
        binary, start_process, redis_addr, redis_prefix, 5000,
        extra={0: ["--emit-429-at-ms", "600", "--retry-after-ms", "3000"]},
    )
    limited = [c for c in calls if c["result"] == "429"]
    assert len(limited) == 1, limited
    t = limited[0]["end"]
    # Calls admitted before the 429 was recorded may still start a moment
    # later; after that nobody calls until Retry-After has passed.
    blocked = [c for c in calls if t + 100 <= c["start"] < t + 2900]
    assert blocked == [], blocked
    resumed = [c for c in calls if c["start"] >= t + 2900]
    assert {c["w"] for c in resumed} == set(range(WORKERS)), resumed[:10]
    assert min(c["start"] for c in resumed) >= t + 3000 - 100
    # A 429 is not a failure: no trip, no probes.
    assert not any(c["probe"] for c in calls)
    key = redis_prefix + "brk:{fleet-dep}"
    assert redis_cli("HGET", key, "st").strip() == "0"
    assert redis_cli("HGET", key, "oc").strip() == "0"
    ttl = int(redis_cli("PTTL", key).strip())
    assert 0 < ttl <= 60000
