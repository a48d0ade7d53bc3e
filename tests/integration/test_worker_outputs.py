"""Nothing stalls a partition, against the real Kafka: requests naming a
forbidden or undeliverable reply_topic, outputs the broker refuses, a request
record larger than the consumer's default fetch limit. Every test puts its
hostile records on partition 0 between good ones and asserts that every
request got its answer (or its dead letter) and that the committed offset
reached the end of the partition."""

import collections

import pytest

from gwlib import GwEnv, decode, encode, ids_of, make_request, start_worker


def produce_p0(env, tier, reqs):
    for r in reqs:
        env.producer.produce(env.topics[tier], key=r["request_id"].encode(),
                             value=encode("request", r), partition=0)
        env.producer.poll(0)
    env.producer.flush(30)


def wait_committed(env, wait_until, tier, want):
    wait_until(lambda: env.committed().get((tier, 0)) == want, 60,
               f"committed offset of {tier}/0 at {want}")


def test_reply_topic_allow_list(kafka_bootstrap, create_topic, unique_name, tmp_path,
                                start_process, binary, wait_until):
    env = GwEnv(kafka_bootstrap, create_topic, unique_name, tmp_path)
    base = unique_name("replies")
    allowed = create_topic(base + ".ok", 1)
    # Allowed by the pattern, but every response is larger than the topic takes.
    tiny = create_topic(base + ".tiny", 1, config={"max.message.bytes": "64"})
    conf = env.config(kafka={"reply_topics": [base + ".*"], "output_retry_ms": 2000})
    worker = start_worker(start_process, binary, conf)
    env.topics["allowed"], env.topics["tiny"] = allowed, tiny
    bad_topics = [env.topics["usage"], env.topics["dlq"], env.topics["high"],
                  "__consumer_offsets", "elsewhere." + base, "bad topic"]
    reqs, want_error, want_reply = [], set(), set()
    for i in range(20):
        good = make_request(text=f"good {i}")
        to_allowed = make_request(text=f"to allowed {i}", reply_topic=allowed)
        bad = bad_topics[i % len(bad_topics)]
        # Also invalid otherwise (no messages, NaN temperature): the reply_topic
        # error comes first, so nothing is ever sent to the named topic.
        forbidden = make_request(text=f"forbidden {i}", reply_topic=bad)
        if i % 3 == 1:
            forbidden["messages"] = []
        elif i % 3 == 2:
            forbidden["temperature"] = float("nan")
        undeliverable = make_request(text=f"tiny {i}", reply_topic=tiny)
        reqs += [good, to_allowed, forbidden, undeliverable]
        want_error |= {forbidden["request_id"], undeliverable["request_id"]}
        want_reply.add(to_allowed["request_id"])
    produce_p0(env, "normal", reqs)
    default_ids = {r["request_id"] for r in reqs} - want_reply
    responses = env.collect("responses", lambda rs: set(ids_of(rs)) >= default_ids)
    replies = env.collect("allowed", lambda rs: set(ids_of(rs)) >= want_reply, kind="response")
    assert set(ids_of(replies)) == want_reply
    by_id = collections.defaultdict(list)
    for r in responses:
        by_id[r["request_id"]].append(r)
    for rid in want_error:
        errs = [r["error"] for r in by_id[rid]]
        assert errs and all(e is not None and e["code"] == "E4001" for e in errs), (rid, errs)
        assert all(e["details"].get("field") == "reply_topic" for e in errs), errs
    undeliverable_errs = [r["error"] for r in responses
                          if r["request_id"] in want_error and "undeliverable" in r["error"]["message"]]
    assert len({e["message"] for e in undeliverable_errs}) >= 1, "the broker's reason is named"
    for rid in default_ids - want_error:
        assert by_id[rid] and by_id[rid][0]["error"] is None
    # Nothing reached the topics a request may not name.
    usage = env.collect_all("usage", quiet_s=2)
    assert len(set(ids_of(usage))) == len(reqs), "one usage event per request, nothing else"
    dlq = env.collect_all("dlq", quiet_s=1, kind=None)
    assert dlq == [], "no output was dead-lettered"
    wait_committed(env, wait_until, "normal", len(reqs))
    assert worker.running(), worker.describe()
    assert worker.stop() == 0, worker.describe()


def test_undeliverable_output_goes_to_dlq(kafka_bootstrap, create_topic, unique_name, tmp_path,
                                          start_process, binary, wait_until):
    """The responses topic refuses every record (max.message.bytes too small):
    each response goes to the DLQ with the reason, the usage events still
    arrive, and the partition's offset moves to the end."""
    env = GwEnv(kafka_bootstrap, create_topic, unique_name, tmp_path)
    env.topics["responses"] = create_topic(unique_name("responses-tiny"), 1,
                                           config={"max.message.bytes": "64"})
    conf = env.config(kafka={"output_retry_ms": 1000})
    worker = start_worker(start_process, binary, conf)
    reqs = [make_request(text=f"r {i}") for i in range(60)]
    produce_p0(env, "high", reqs)
    want = {r["request_id"] for r in reqs}
    dlq = env.collect("dlq", lambda rs: {d["_key"].decode() for d in rs} >= want, kind=None)
    for d in dlq:
        h = d["_headers"]
        assert h["output_topic"] == env.topics["responses"], h
        assert "too large" in h["delivery_error"].lower(), h
        assert h["source_topic"] == env.topics["high"] and h["source_partition"] == "0", h
        assert decode("response", d["value"])["request_id"] == d["_key"].decode()
    usage = env.collect("usage", lambda rs: set(ids_of(rs)) >= want)
    assert {u["outcome"] for u in usage} == {"success"}
    wait_committed(env, wait_until, "high", len(reqs))
    assert '"output_replaced"' in worker.stderr
    assert worker.running(), worker.describe()
    assert worker.stop() == 0, worker.describe()


@pytest.mark.parametrize("raised_later", [False, True],
                         ids=["limit-at-start", "limit-raised-later"])
def test_oversized_request_is_fetched_and_dead_lettered(kafka_bootstrap, create_topic, kafka_admin,
                                                        unique_name, tmp_path, start_process,
                                                        binary, wait_until, raised_later):
    """A 10 MB request on a topic that accepts 12 MB is larger than the
    consumer's default receive limit: it is fetched all the same, goes to the
    DLQ as too large (payload cut, size in the headers), and the requests
    after it on its partition are answered. Either the worker read the
    topic's limit at start, or the limit was raised while it ran and the
    failed fetch made it read the limits again and replace its consumer."""
    env = GwEnv(kafka_bootstrap, create_topic, unique_name, tmp_path)
    big_limit = {"max.message.bytes": str(12 << 20)}
    env.topics["low"] = create_topic(unique_name("req-low-big"), 1,
                                     config=None if raised_later else big_limit)
    from confluent_kafka import Producer
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    worker = None
    if raised_later:
        worker = start_worker(start_process, binary, env.config())
        wait_until(lambda: '"partitions_assigned"' in worker.stderr, 60, "assignment")
        entry = ConfigEntry("max.message.bytes", str(12 << 20),
                            incremental_operation=AlterConfigOpType.SET)
        res = ConfigResource("topic", env.topics["low"], incremental_configs=[entry])
        for fut in kafka_admin.incremental_alter_configs([res]).values():
            fut.result(timeout=30)

    big_producer = Producer({"bootstrap.servers": kafka_bootstrap,
                             "message.max.bytes": 13 << 20})
    before = [make_request(text=f"before {i}") for i in range(5)]
    after = [make_request(text=f"after {i}") for i in range(20)]
    big = make_request(text="x" * (10 << 20))
    for r in before + [big] + after:
        big_producer.produce(env.topics["low"], key=r["request_id"].encode(),
                             value=encode("request", r), partition=0)
        big_producer.poll(0)
    big_producer.flush(60)
    if worker is None:
        worker = start_worker(start_process, binary, env.config())
    want = {r["request_id"] for r in before + after}
    responses = env.collect("responses", lambda rs: set(ids_of(rs)) >= want)
    assert big["request_id"] not in ids_of(responses)
    dlq = env.collect("dlq", lambda rs: len(rs) >= 1, kind=None)
    assert len(dlq) == 1 and dlq[0]["_key"].decode() == big["request_id"]
    h = dlq[0]["_headers"]
    assert h["error_code"] == "E4802", h  # CODEC_TOO_LARGE
    assert h["payload_truncated"] == "true" and int(h["payload_size"]) > 10 << 20, h
    wait_committed(env, wait_until, "low", len(before) + 1 + len(after))
    assert ('"fetch_limit_raised"' in worker.stderr) == raised_later, worker.describe()
    assert worker.running(), worker.describe()
    assert worker.stop() == 0, worker.describe()
