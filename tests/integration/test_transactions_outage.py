"""kafka.transactional through a broker outage longer than one blocking
transaction call (10 s), against a private Kafka the test starts (the shared
broker is never touched).

One transactional worker serves requests; the broker is stopped for 20 s
(under kafka.transaction_timeout_ms, 60 s) while outputs are in flight, so
the transaction's end cannot finish until it is back. The transaction calls
run on the worker's transaction thread: the loop must keep answering /health
all along (polled every 0.5 s, each answer within 2 s: a liveness property,
not a speed one; with the calls on the loop it went unanswered for ~10 s at
a time), /health and /metrics must show the commit in progress, /ready must
say it waits for Kafka, the worker must not exit, and once the broker is
back every request is answered exactly once for a read_committed reader.
Twice: with a session timeout that outlasts the outage, and with one that
does not (the assignment is lost during the outage, its transaction
aborted without the loop waiting, the static member fenced and replaced
when the broker is back).
"""

import collections
import json
import time
import urllib.error
import urllib.request

import pytest

from gwlib import make_request, start_worker
from test_broker_restart import (  # noqa: F401
    PrivateKafka, _free_port, private_env, private_kafka,
)

OUTAGE_S = 20.0
PROBE_TIMEOUT_S = 2.0


def _conf(env, admin_port, session_timeout_ms):
    # The mock answers after 6 s, so requests taken before the stop publish
    # while the broker is away.
    return env.config("txo", kafka={"session_timeout_ms": session_timeout_ms,
                                    "group_instance_id": "txo",
                                    "transactional": True, "commit_interval_ms": 300,
                                    "transaction_timeout_ms": 60000},
                      worker={"max_in_flight": 64}, mock={"latency_ms": 6000},
                      extra=f"admin: {{ port = {admin_port}; }};")


def _probe(port, path):
    """(status, body, seconds) of one admin request; status 0 when it did not
    answer within PROBE_TIMEOUT_S."""
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                    timeout=PROBE_TIMEOUT_S) as r:
            return r.status, json.loads(r.read()), time.monotonic() - t0
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), time.monotonic() - t0
    except (urllib.error.URLError, OSError):
        return 0, None, time.monotonic() - t0


def _gauge(port, name):
    """The value of an unlabelled gauge on /metrics; None when unanswered."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                    timeout=PROBE_TIMEOUT_S) as r:
            text = r.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def _ids(records):
    return {r["request_id"] for r in records}


# kept: the session timeout outlasts the outage, the worker keeps its
# partitions. lost: it does not; the consumer declares the assignment lost
# during the outage (its transaction is aborted without the loop waiting)
# and, a static member, is fenced when the broker is back and replaced.
@pytest.mark.parametrize("session_timeout_ms", [45000, 6000], ids=["kept", "lost"])
def test_outage_loop_live_exactly_once(
        private_kafka, private_env, start_process, binary, session_timeout_ms):
    env = private_env
    port = _free_port()
    w = start_worker(start_process, binary, _conf(env, port, session_timeout_ms), "txo")
    first = [make_request(text=f"before {i}") for i in range(40)]
    env.produce("normal", first)
    want = _ids(first)
    env.collect("responses", lambda rs: _ids(rs) >= want, timeout=90)

    # Taken now, answered by the mock 6 s later: their outputs are produced
    # while the broker is away.
    during = [make_request(text=f"during {i}") for i in range(40)]
    env.produce("normal", during)
    time.sleep(1.0)
    t_down = time.monotonic()
    private_kafka.stop_kafka()
    print(f"broker stopped in {time.monotonic() - t_down:.1f} s")
    probes, phases, ready_reasons = [], collections.Counter(), set()
    commit_s = []  # modelgw_txn_commit_in_progress_seconds while a commit waits
    while time.monotonic() - t_down < OUTAGE_S:
        status, body, took = _probe(port, "/health")
        probes.append((round(time.monotonic() - t_down, 1), status, round(took, 2)))
        if body is not None:
            txns = body["kafka"]["transactions"]
            phases[txns["commit_phase"]] += 1
            ready_reasons.update(body["not_ready"])
            if txns["commit_in_progress"] and txns["commit_ms"] > 2000 and not commit_s:
                commit_s.append(_gauge(port, "modelgw_txn_commit_in_progress_seconds"))
        assert w.running(), w.describe()
        time.sleep(max(0.0, 0.5 - took))
    private_kafka.start()
    env.producer = __import__("confluent_kafka").Producer(
        {"bootstrap.servers": env.bootstrap, "linger.ms": 5})
    after = [make_request(text=f"after {i}") for i in range(40)]
    env.produce("normal", after)
    want |= _ids(during + after)

    unanswered = [p for p in probes if p[1] != 200]
    print(f"/health during the outage: {len(probes)} probes, slowest "
          f"{max(p[2] for p in probes)} s, phases {dict(phases)}, not ready for "
          f"{sorted(ready_reasons)}, commit gauge {commit_s}")
    assert unanswered == [], f"/health unanswered (t, status, s): {unanswered}"
    if session_timeout_ms > OUTAGE_S * 1000:
        # With its partitions kept, the outputs of the requests taken before
        # the stop hold the interval's commit for the whole outage. (A lost
        # assignment mutes them; when the loss comes is the broker's.)
        assert phases["flush"] + phases["commit"] > 0, "no commit was under way in the outage"
        assert "transaction commit waiting for Kafka" in ready_reasons
        assert commit_s and commit_s[0] is not None and commit_s[0] > 1.0, commit_s

    env.collect("responses", lambda rs: _ids(rs) >= want, timeout=120)
    time.sleep(1.0)  # anything committed late still arrives
    responses = env.collect_all("responses", quiet_s=1.5, timeout=60)
    usage = env.collect_all("usage", quiet_s=1.5, timeout=60)
    assert w.running(), w.describe()
    status, body, _ = _probe(port, "/health")
    assert status == 200 and body["kafka"]["transactions"]["held_outputs"] == 0, body
    assert w.stop() == 0, w.describe()
    assert '"txn_fatal"' not in w.stderr

    counts = collections.Counter(r["request_id"] for r in responses)
    assert set(counts) == want, f"missing: {len(want - set(counts))}"
    assert {rid: n for rid, n in counts.items() if n != 1} == {}
    success = collections.Counter(r["request_id"] for r in usage if r["outcome"] == "success")
    assert {rid: n for rid, n in success.items() if n != 1} == {}
    assert set(success) == want
    stats = [line for line in w.stderr.splitlines() if '"txn_stats"' in line]
    lost = w.stderr.count('"lost":"true"')
    print(f"aborts {w.stderr.count('txn_aborted')}, rewinds {w.stderr.count('txn_rewind')}, "
          f"lost assignments {lost}, fenced {w.stderr.count('consumer_fenced')}; "
          f"{stats[-1] if stats else 'no txn_stats'}")
