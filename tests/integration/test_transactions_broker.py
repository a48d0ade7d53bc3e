"""Issue 14 item 6: exactly-once outputs across a broker restart, against a
private Kafka the test starts (the shared broker is never touched).

One transactional worker (static member, memory state: its idempotency
answers live in the process) serves requests while the broker goes down for
longer than the session timeout and comes back. Whatever the worker does
meanwhile (its loop waits in the commit; its consumer may be fenced and
replaced; an abortable error aborts the transaction and serves the interval
again; a fatal one exits 1, and the test then restarts it as an orchestrator
would), a read_committed consumer sees every request's response exactly
once, one success usage event per request, and no usage event twice.
"""

import collections
import time

from gwlib import make_request, start_worker
from test_broker_restart import (  # noqa: F401
    PrivateKafka, _free_port, _get, private_env, private_kafka,
)


def _conf(env, name, admin_port):
    return env.config(name, kafka={"session_timeout_ms": 6000, "group_instance_id": name,
                                   "transactional": True, "commit_interval_ms": 300,
                                   "transaction_timeout_ms": 30000},
                      worker={"max_in_flight": 64}, mock={"latency_ms": 20},
                      extra=f"admin: {{ port = {admin_port}; }};")


def _read_committed(env, out, want, timeout=120):
    recs = env.collect(out, lambda rs: {r["request_id"] for r in rs} >= want, timeout=timeout)
    time.sleep(1.0)  # anything committed late still arrives
    return env.collect_all(out, quiet_s=1.5, timeout=60)


def test_broker_restart_keeps_outputs_exactly_once(private_kafka, private_env, start_process,
                                                   binary):
    env = private_env
    port = _free_port()
    w = start_worker(start_process, binary, _conf(env, "tx", port), "tx")
    first = [make_request(text=f"before {i}") for i in range(60)]
    env.produce("normal", first)
    want = {r["request_id"] for r in first}
    env.collect("responses", lambda rs: {r["request_id"] for r in rs} >= want, timeout=90)

    # Requests in flight while the broker goes away for longer than the
    # session timeout.
    during = [make_request(text=f"during {i}") for i in range(60)]
    env.produce("normal", during)
    t_down = time.monotonic()
    private_kafka.stop_kafka()
    time.sleep(max(0.0, 8.0 - (time.monotonic() - t_down)))
    private_kafka.start()
    env.producer = __import__("confluent_kafka").Producer(
        {"bootstrap.servers": env.bootstrap, "linger.ms": 5})
    restarted, reasons = 0, collections.Counter()
    after = [make_request(text=f"after {i}") for i in range(60)]
    env.produce("normal", after)
    want |= {r["request_id"] for r in during + after}

    deadline = time.monotonic() + 120
    while True:
        got = env.collect_all("responses", quiet_s=1.0, timeout=60)
        if {r["request_id"] for r in got} >= want or time.monotonic() > deadline:
            break
        if not w.running():  # txn_fatal or the like: restart it, as an orchestrator would
            assert w.proc.returncode == 1, w.describe()
            reasons.update(e for e in ("txn_fatal", "txn_init_failed", "txn_rewind_failed",
                                       "producer_fatal", "consumer_fatal") if f'"{e}"' in w.stderr)
            restarted += 1
            w = start_worker(start_process, binary, _conf(env, "tx", port), f"tx-{restarted}")
    responses = _read_committed(env, "responses", want)
    usage = _read_committed(env, "usage", want)
    status, health = _get(port, "/health")
    txns = health["kafka"]["transactions"]
    assert status == 200 and txns["held"] == 0, health
    assert w.stop() == 0, w.describe()

    counts = collections.Counter(r["request_id"] for r in responses)
    assert set(counts) == want, f"missing: {len(want - set(counts))}"
    assert {rid: n for rid, n in counts.items() if n != 1} == {}
    success = collections.Counter(r["request_id"] for r in usage if r["outcome"] == "success")
    assert {rid: n for rid, n in success.items() if n != 1} == {}
    assert set(success) == want
    events = collections.Counter(r["event_id"] for r in usage)
    assert {e: n for e, n in events.items() if n != 1} == {}
    log = w.stderr
    print(f"answered {len(counts)}; worker restarted {restarted} times ({dict(reasons)}); aborts "
          f"{log.count('txn_aborted')}, rewinds {log.count('txn_rewind')}, fenced consumers "
          f"{log.count('consumer_fenced')}; /health transactions {txns}")
