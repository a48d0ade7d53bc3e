"""Output topics that do not exist, on a private broker started with
auto.create.topics.enable=false (as production brokers run; the shared test
broker creates topics on first use, so it cannot show this fault).

A configured output topic (here the usage topic) or an allowed reply_topic
that is missing must not stall the partition. librdkafka waits
topic.metadata.propagation.max.ms (30 s by default; 1 s here through
kafka.properties, to stay short) for the topic to appear, then fails the
queued outputs (Broker: Unknown topic or partition) and from then on refuses
every produce to it at once. Retrying cannot mend either, so the worker
replaces the output at once (not after kafka.output_retry_ms): a DLQ record
with the reason for a configured output, an E4001 error response on the
default responses topic for a reply_topic. Each test sends a second batch
after the topic is known missing (the refused-at-once path), and asserts:
every request answered once, one success usage event per request, the
committed offset at the end of the partition, no topic created, the worker
alive. Before the worker replaced these outputs, both tests stalled: the
refused produce was retried every second without end and the offset never
moved."""

import collections
import time

import pytest

from gwlib import GwEnv, decode, encode, ids_of, make_request, start_worker
from test_broker_restart import PrivateKafka

RETRY_MS = 2000
PROPAGATION_MS = 1000


@pytest.fixture(scope="module")
def strict_kafka(source_dir, tmp_path_factory):
    """A private broker that never creates a topic on first use."""
    k = PrivateKafka(source_dir, tmp_path_factory.mktemp("strict-kafka"), auto_create=False)
    k.start()
    yield k
    k.stop_all()


@pytest.fixture
def strict_env(strict_kafka, unique_name, tmp_path):
    def create_topic(name, partitions=1, config=None):
        return strict_kafka.create_topic(name, partitions, config)

    env = GwEnv(strict_kafka.bootstrap, create_topic, unique_name, tmp_path, partitions=1)
    env.admin, env.create_topic = strict_kafka.admin(), create_topic
    return env


def _topic_exists(env, name):
    return name in env.admin.list_topics(timeout=10).topics


def _produce_p0(env, tier, reqs):
    for r in reqs:
        env.producer.produce(env.topics[tier], key=r["request_id"].encode(),
                             value=encode("request", r), partition=0)
        env.producer.poll(0)
    env.producer.flush(30)


def _conf(env, **kafka):
    k = {"output_retry_ms": RETRY_MS,
         "properties": [f"topic.metadata.propagation.max.ms={PROPAGATION_MS}"]}
    k.update(kafka)
    return env.config(kafka=k, worker={"max_in_flight": 64})


def _wait_committed(env, wait_until, tier, want):
    wait_until(lambda: env.committed().get((tier, 0)) == want, 60,
               f"committed offset of {tier}/0 at {want}")


def test_missing_usage_topic_is_dead_lettered(strict_env, start_process, binary, wait_until,
                                              unique_name):
    env = strict_env
    env.topics["usage"] = unique_name("usage-missing")
    first = [make_request(text=f"first {i}") for i in range(100)]
    later = [make_request(text=f"later {i}") for i in range(100)]
    worker = start_worker(start_process, binary, _conf(env))
    _produce_p0(env, "normal", first)
    want_first = {r["request_id"] for r in first}
    # Every usage event goes to the DLQ, after its retries, with the reason.
    env.collect("dlq", lambda rs: {d["_key"].decode() for d in rs} >= want_first, kind=None)
    # A later batch on the same partition (the topic is now known to be
    # missing, so each produce fails at once) is answered and dead-lettered too.
    _produce_p0(env, "normal", later)
    want = want_first | {r["request_id"] for r in later}
    responses = env.collect("responses", lambda rs: set(ids_of(rs)) >= want)
    dlq = env.collect("dlq", lambda rs: {d["_key"].decode() for d in rs} >= want, kind=None)
    counts = collections.Counter(ids_of(responses))
    assert set(counts) == want and max(counts.values()) == 1, "each answered once"
    assert all(r["error"] is None for r in responses)
    for d in dlq:
        h = d["_headers"]
        assert h["output_topic"] == env.topics["usage"], h
        assert "unknown topic" in h["delivery_error"].lower(), h
        assert h["source_topic"] == env.topics["normal"] and h["source_partition"] == "0", h
        usage = decode("usage", d["value"])
        assert usage["request_id"] == d["_key"].decode() and usage["outcome"] == "success"
    # One success usage event per request, each in the DLQ once.
    assert sorted(d["_key"].decode() for d in dlq) == sorted(want)
    _wait_committed(env, wait_until, "normal", len(want))
    assert '"output_replaced"' in worker.stderr
    assert not _topic_exists(env, env.topics["usage"]), "the worker created no topic"
    assert worker.running(), worker.describe()
    assert worker.stop() == 0, worker.describe()


def test_missing_reply_topic_gets_an_error_response(strict_env, start_process, binary,
                                                    wait_until, unique_name):
    env = strict_env
    base = unique_name("replies")
    # Both allowed by the pattern; only the first exists.
    allowed = env.create_topic(base + ".ok")
    missing = base + ".missing"
    worker = start_worker(start_process, binary, _conf(env, reply_topics=[base + ".*"]))
    env.topics["allowed"] = allowed  # after the config: only for collect()
    reqs, want_reply, want_error = [], set(), set()
    for i in range(80):
        good = make_request(text=f"good {i}")
        to_allowed = make_request(text=f"to allowed {i}", reply_topic=allowed)
        to_missing = make_request(text=f"to missing {i}", reply_topic=missing)
        reqs += [good, to_allowed, to_missing]
        want_reply.add(to_allowed["request_id"])
        want_error.add(to_missing["request_id"])
    # Two halves: the second produced after the topic is known to be missing.
    half = len(reqs) // 2
    _produce_p0(env, "high", reqs[:half])
    env.collect("responses", lambda rs: set(ids_of(rs)) >= {
        r["request_id"] for r in reqs[:half] if r["request_id"] in want_error})
    _produce_p0(env, "high", reqs[half:])
    default_ids = {r["request_id"] for r in reqs} - want_reply
    responses = env.collect("responses", lambda rs: set(ids_of(rs)) >= default_ids)
    replies = env.collect("allowed", lambda rs: set(ids_of(rs)) >= want_reply, kind="response")
    assert set(ids_of(replies)) == want_reply
    by_id = collections.defaultdict(list)
    for r in responses:
        by_id[r["request_id"]].append(r)
    for rid in want_error:
        errs = [r["error"] for r in by_id[rid]]
        assert len(errs) == 1 and errs[0] is not None and errs[0]["code"] == "E4001", (rid, errs)
        assert errs[0]["details"].get("field") == "reply_topic", errs
        assert "undeliverable" in errs[0]["message"], errs
        assert "unknown topic" in errs[0]["message"].lower(), errs
    for rid in default_ids - want_error:
        assert len(by_id[rid]) == 1 and by_id[rid][0]["error"] is None, by_id[rid]
    assert env.collect_all("dlq", quiet_s=1, kind=None) == [], "nothing dead-lettered"
    usage = env.collect_all("usage", quiet_s=2)
    assert all(u["outcome"] == "success" for u in usage)
    assert sorted(ids_of(usage)) == sorted(r["request_id"] for r in reqs), "one usage event each"
    _wait_committed(env, wait_until, "high", len(reqs))
    assert not _topic_exists(env, missing), "the worker created no topic"
    assert worker.running(), worker.describe()
    assert worker.stop() == 0, worker.describe()
