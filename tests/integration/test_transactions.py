"""Issue 14 item 6: exactly-once outputs (kafka.transactional = true).

Two transactional `modelgw` workers (static members w0, w1, so each has a
stable transactional.id) share a Redis for idempotency; the mock answers
after 300 ms, one in four requests is streamed. 300 requests flow for about
6 s; after a third of them a third worker w2 joins (a rebalance: revoked
partitions commit their transaction first, jobs still in flight on them
publish nothing); half-way, w0 is killed with SIGKILL (its open transaction
holds outputs, and the requests they answer were done but not committed)
and started again with the same group.instance.id, whose init_transactions
aborts what the dead process left open. Then:

* a read_committed consumer sees exactly one response per request id, none
  an error; exactly one `success` usage event per request id and no event
  twice (a request whose answer was in the aborted transaction is answered
  again from the idempotency store: the kept success event, and a
  `duplicate` event at cost 0); exactly one final chunk per streamed request
  id;
* a read_uncommitted consumer sees every request id at least once, and at
  least as many responses as the read_committed one;
* a request whose answer was produced before the kill reached the provider
  exactly once (the idempotency store answered its second reading);
* the group's committed offsets cover every request.
"""

import json
import signal
import time
import uuid
from collections import Counter

from fleet import (  # noqa: F401
    MockLLM, Tail, fleet, make_request, openai_deployment, redis_settings, wait_for,
)

N = 300


def _over(name):
    return {"idempotency": {"enabled": True, "lease_ms": 3000, "result_ttl_s": 600},
            "cache": {"enabled": False},
            "kafka": {"transactional": True, "transactional_id_prefix": "txntest",
                      "transaction_timeout_ms": 20000, "commit_interval_ms": 500,
                      "session_timeout_ms": 6000, "client_id": name,
                      "group_instance_id": name}}


def test_kill9_read_committed_sees_each_answer_once(
    fleet, start_process, binary, tmp_path, redis_addr, redis_prefix  # noqa: F811
):
    mock = MockLLM(start_process, binary, tmp_path, latency_ms=300, ttft_ms=100,
                   token_delay_ms=5)
    host, port = redis_addr.rsplit(":", 1)
    dep = openai_deployment("oa-txn", mock.url, model="txn-model")
    # Static members: the group.instance.id prefix makes the run's ids unique.
    run = uuid.uuid4().hex[:8]
    names = [f"w0-{run}", f"w1-{run}", f"w2-{run}"]
    redis = redis_settings(host, port, redis_prefix)
    victim, survivor = (fleet.start_worker(n, [dep], redis, _over(n)) for n in names[:2])
    fleet.wait_assigned([victim, survivor])
    for w in (victim, survivor):
        assert '"txn_ready"' in w.stderr + w.stdout, w.describe()

    committed_resp = Tail(fleet, "responses")
    uncommitted_resp = Tail(fleet, "responses", isolation="read_uncommitted")
    usage = Tail(fleet, "usage")
    chunks = Tail(fleet, "chunks")

    reqs = [make_request(f"x-{run}-{i}", text=f"exactly once {run} {i}", enable_cache=False,
                         stream=(i % 4 == 0)) for i in range(N)]
    streamed = {r["request_id"] for r in reqs if r["stream"]}
    kill_ms = None
    third = None
    for i in range(0, N, 15):
        fleet.produce_spread("normal", reqs[i:i + 15])
        if third is None and i >= N // 3:
            third = fleet.start_worker(names[2], [dep], redis, _over(names[2]))
        if kill_ms is None and i >= N // 2:
            kill_ms = time.time() * 1000
            victim.signal(signal.SIGKILL)
            victim.proc.wait(10)
        time.sleep(0.3)
    assert victim.proc.returncode == -signal.SIGKILL
    # The same static member again: its init_transactions aborts the dead
    # process's open transaction, and it gets its partitions back.
    again = fleet.start_worker(names[0] + "-again", [dep], redis, _over(names[0]))
    again.client_id = names[0]
    fleet.wait_assigned([again, survivor, third])

    ids = {r["request_id"] for r in reqs}
    committed_resp.wait_ids(ids, timeout=45)
    # Both workers end cleanly: their last transactions are committed, so no
    # more output can become visible after this.
    assert again.stop() == 0, again.describe()
    assert survivor.stop() == 0, survivor.describe()
    assert third.stop() == 0, third.describe()
    stats = [json.loads(line) for w in (again, survivor, third) for line in w.stderr.splitlines()
             if '"txn_stats"' in line]
    assert len(stats) == 3 and all(int(s["commits"]) > 0 for s in stats), stats
    committed_resp.poll(1.0)
    usage.until(lambda recs: ids <= {r["request_id"] for r in recs}, 15, "usage events")
    usage.poll(1.0)
    chunks.until(lambda recs: streamed <= {r["request_id"] for r in recs if r["is_final"]}, 15,
                 "final chunks")
    chunks.poll(1.0)
    uncommitted_resp.wait_ids(ids, timeout=15)
    uncommitted_resp.poll(1.0)

    per_id = Counter(r["request_id"] for r in committed_resp.records)
    twice = {rid: n for rid, n in per_id.items() if n != 1}
    assert not twice, sorted(twice.items())[:10]
    assert set(per_id) == ids
    errors = [(r["request_id"], r["error"]) for r in committed_resp.records if r["error"]]
    assert not errors, errors[:5]

    # Billing: exactly one success event per request (a request answered
    # again from the idempotency store publishes the kept success event,
    # same event_id, and a duplicate event of its own at cost 0).
    outcomes = Counter(r["outcome"] for r in usage.records)
    assert set(outcomes) <= {"success", "duplicate"}, outcomes
    success = Counter(r["request_id"] for r in usage.records if r["outcome"] == "success")
    assert set(success) == ids
    assert {rid: n for rid, n in success.items() if n != 1} == {}
    events = Counter(r["event_id"] for r in usage.records)
    assert {e: n for e, n in events.items() if n != 1} == {}

    finals = Counter(r["request_id"] for r in chunks.records if r["is_final"])
    assert set(finals) == streamed
    assert max(finals.values()) == 1, finals.most_common(3)

    seen_uncommitted = Counter(r["request_id"] for r in uncommitted_resp.records)
    assert set(seen_uncommitted) == ids
    assert len(uncommitted_resp.records) >= len(committed_resp.records)

    # Answered before the kill (produced, so kept in Redis first): one call.
    calls = mock.stats()["request_ids"]
    before = {r["request_id"] for r in uncommitted_resp.records if r["_ts"] < kill_ms}
    assert before, "nothing was answered before the kill"
    called_twice = sorted(rid for rid in before if calls.get(rid, 0) != 1)
    assert not called_twice, [(rid, calls.get(rid)) for rid in called_twice[:10]]

    committed = fleet.committed()
    produced = Counter(p for p in (i % fleet.partitions for i in range(N)))
    assert {p: committed[("normal", p)] for p in produced} == dict(produced), committed

    print(f"responses: read_committed {len(committed_resp.records)}, read_uncommitted "
          f"{len(uncommitted_resp.records)}; usage outcomes {dict(outcomes)}; chunks "
          f"{len(chunks.records)}; answered before the kill {len(before)}; provider calls "
          f"{sum(calls.values())} for {N} requests; {stats}")
    for t in (committed_resp, uncommitted_resp, usage, chunks):
        t.close()
