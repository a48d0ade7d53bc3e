"""Authorisation faults, on a private broker with SASL/PLAIN and the
StandardAuthorizer (allow.everyone.if.no.acl.found=false): the worker logs in
as its own user through a SASL listener, with the password from an
environment variable (kafka.sasl_password_env); the test's clients use the
PLAINTEXT listener, whose ANONYMOUS principal is the super user.

The worker's user is granted READ on the request topics and the group and
WRITE on the outputs; each test takes one right away and checks what the
worker does, request ids counted, with good requests after the fault:
  - no WRITE on the usage topic (or the responses topic): every output to it
    is dead-lettered at once (TOPIC_AUTHORIZATION_FAILED is as permanent as a
    missing topic), named in the log and in modelgw_output_failures_total;
    the offsets move on; once WRITE is granted again (and librdkafka's next
    metadata refresh saw it) the outputs go to their topic;
  - no WRITE on the DLQ: a poison message cannot be dead-lettered; the
    worker says so (output_undeliverable), keeps serving the partition and
    leaves that offset uncommitted, so the next owner (after the grant)
    dead-letters it: nothing is lost;
  - no READ on one request topic (with or without DESCRIBE): the other tiers
    are served; the log, /health and modelgw_consumer_errors_total name the
    topic and the error; after the grant the tier is served;
  - no READ on the group: no partitions, a named error, no crash; after the
    grant every request is answered;
  - a reply_topic the worker may not write: an E4001 error response naming
    the authorisation failure on the default responses topic;
  - a wrong password: named, not ready, the worker stays up.
The password never appears in the worker's log. About 55 s with the broker's
start (about 4 s); before the fixes that came with it, a refused output was
dead-lettered as "unknown topic or queue full" whatever the reason, an output
the broker refused as not authorised was produced again for
kafka.output_retry_ms first, and neither /health nor a metric named a topic
or group the worker may not read."""

import collections
import json
import secrets
import time
import urllib.error
import urllib.request

import pytest

from gwlib import GwEnv, decode, encode, ids_of, make_request
from test_broker_restart import PrivateKafka, _free_port

USER = "gwworker"
PASSWORD_ENV = "MODELGW_TEST_SASL_PASSWORD"
RETRY_MS = 2000


class AclKafka:
    """The private broker, its SASL address and the worker user's password."""

    def __init__(self, source_dir, tmp_path):
        self.sasl_port = _free_port()
        self.password = "pw-" + secrets.token_hex(12)
        self.kafka = PrivateKafka(source_dir, tmp_path, auto_create=False,
                                  extra_properties=self._properties)
        self.bootstrap = self.kafka.bootstrap
        self.sasl_bootstrap = f"127.0.0.1:{self.sasl_port}"

    def _properties(self, port):
        sp = self.sasl_port
        return f"""listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{port + 1},\
SASL_PLAINTEXT://127.0.0.1:{sp}
advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sp}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,\
SASL_PLAINTEXT:SASL_PLAINTEXT
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=\
org.apache.kafka.common.security.plain.PlainLoginModule required user_{USER}="{self.password}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS
allow.everyone.if.no.acl.found=false
"""

    def _binding(self, rtype, name, op, cls=None):
        from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType,
                                           ResourcePatternType, ResourceType)

        return (cls or AclBinding)(getattr(ResourceType, rtype), name, ResourcePatternType.LITERAL,
                          f"User:{USER}", "*", getattr(AclOperation, op), AclPermissionType.ALLOW)

    def grant(self, rtype, name, op):
        fut = self.kafka.admin().create_acls([self._binding(rtype, name, op)])
        for f in fut.values():
            f.result(timeout=30)

    def revoke(self, rtype, name, op):
        from confluent_kafka.admin import AclBindingFilter

        fut = self.kafka.admin().delete_acls([self._binding(rtype, name, op, AclBindingFilter)])
        for f in fut.values():
            f.result(timeout=30)


@pytest.fixture(scope="module")
def acl_kafka(source_dir, tmp_path_factory):
    k = AclKafka(source_dir, tmp_path_factory.mktemp("acl-kafka"))
    k.kafka.start()
    yield k
    k.kafka.stop_all()


@pytest.fixture
def acl_env(acl_kafka, unique_name, tmp_path):
    """Topics and group of one test, every right the worker needs granted."""
    k = acl_kafka
    env = GwEnv(k.bootstrap, lambda name, partitions=1, config=None:
                k.kafka.create_topic(name, partitions, config), unique_name, tmp_path,
                partitions=1)
    for t in ("high", "normal", "low"):
        k.grant("TOPIC", env.topics[t], "READ")
        k.grant("TOPIC", env.topics[t], "DESCRIBE_CONFIGS")
    for out in ("responses", "chunks", "usage", "dlq"):
        k.grant("TOPIC", env.topics[out], "WRITE")
    k.grant("GROUP", env.group, "READ")
    env.acl = k
    env.create_topic = lambda name, partitions=1, config=None: k.kafka.create_topic(
        name, partitions, config)
    return env


def _conf(env, port=0, refresh_ms=None, **kafka):
    props = ["security.protocol=SASL_PLAINTEXT", "sasl.mechanism=PLAIN", f"sasl.username={USER}"]
    if refresh_ms is not None:
        props.append(f"topic.metadata.refresh.interval.ms={refresh_ms}")
    k = {"bootstrap": env.acl.sasl_bootstrap, "output_retry_ms": RETRY_MS,
         "sasl_password_env": PASSWORD_ENV, "properties": props}
    k.update(kafka)
    return env.config(kafka=k, worker={"max_in_flight": 64},
                      extra=f"admin: {{ port = {port}; }};")


def _start(env, start_process, binary, conf, name="worker"):
    return start_process([binary("modelgw"), "-c", conf], name=name,
                         env={PASSWORD_ENV: env.acl.password})


def _produce(env, tier, reqs):
    for r in reqs:
        env.producer.produce(env.topics[tier], key=r["request_id"].encode(),
                             value=encode("request", r), partition=0)
        env.producer.poll(0)
    env.producer.flush(30)


def _get(port, path):
    """(status, JSON body or text) of the admin endpoint."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    except (urllib.error.URLError, OSError):
        return 0, None  # not listening yet
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode()


def _metric(port, name, **labels):
    """The sum of the series of name whose labels include labels."""
    total = 0.0
    for line in (_get(port, "/metrics")[1] or "").splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _events(worker, event):
    out = []
    for line in worker.stderr.splitlines():
        if f'"event":"{event}"' in line:
            out.append(json.loads(line))
    return out


def _wait_committed(env, wait_until, tier, want):
    wait_until(lambda: env.committed().get((tier, 0)) == want, 60,
               f"committed offset of {tier}/0 at {want}")


def _finish(env, worker):
    assert worker.running(), worker.describe()
    assert worker.stop() == 0, worker.describe()
    assert env.acl.password not in worker.stderr + worker.stdout, "the password was logged"


def _batch(tag, n, **fields):
    return [make_request(text=f"{tag} {i}", **fields) for i in range(n)]


def test_usage_not_writable(acl_env, start_process, binary, wait_until):
    _output_not_writable(acl_env, start_process, binary, wait_until, "usage")


def test_responses_not_writable(acl_env, start_process, binary, wait_until):
    _output_not_writable(acl_env, start_process, binary, wait_until, "responses")


def _output_not_writable(acl_env, start_process, binary, wait_until, output):
    """No WRITE on an output topic: each output to it is dead-lettered at
    once with the reason (no retries for kafka.output_retry_ms, no stall),
    every request is answered or accounted once, the offsets move on; after
    the grant the outputs go to their topic again."""
    env = acl_env
    port = _free_port()
    # librdkafka holds a topic it was refused as not authorised until its
    # next metadata refresh (5 min by default): 2 s here, so that the grant
    # at the end takes effect quickly (docs/operations.md).
    worker = _start(env, start_process, binary, _conf(env, port, refresh_ms=2000))
    before, during, after = _batch("before", 20), _batch("during", 20), _batch("after", 20)
    _produce(env, "normal", before)
    env.collect(output, lambda rs: len(rs) >= 20)
    env.acl.revoke("TOPIC", env.topics[output], "WRITE")
    t0 = time.monotonic()
    _produce(env, "normal", during)
    want = {r["request_id"] for r in during}
    dlq = env.collect("dlq", lambda rs: {d["_key"].decode() for d in rs} >= want, kind=None)
    took = time.monotonic() - t0
    _wait_committed(env, wait_until, "normal", 40)
    kind = "usage" if output == "usage" else "response"
    assert sorted(d["_key"].decode() for d in dlq) == sorted(want), "each dead-lettered once"
    for d in dlq:
        h = d["_headers"]
        assert h["output_topic"] == env.topics[output], h
        assert "authorization failed" in h["delivery_error"].lower(), h
        assert h["source_topic"] == env.topics["normal"], h
        assert decode(kind, d["value"])["request_id"] == d["_key"].decode()
    other = "responses" if output == "usage" else "usage"
    got = env.collect(other, lambda rs: set(ids_of(rs)) >= want)
    assert collections.Counter(ids_of(got)).most_common(1)[0][1] == 1, "the other output once"
    replaced = [e for e in _events(worker, "output_replaced") if e["request_id"] in want]
    assert len(replaced) == 20, replaced[:3]
    assert all(e["error_name"] == "TOPIC_AUTHORIZATION_FAILED" for e in replaced), replaced[:3]
    assert _metric(port, "modelgw_output_failures_total", output=kind,
                   error="TOPIC_AUTHORIZATION_FAILED", action="replaced") == 20
    # No spinning on the refused topic: at most one failed attempt per output.
    failed = [e for e in _events(worker, "delivery_failed") + _events(worker, "produce_failed")
              if e["topic"] == env.topics[output]]
    assert len(failed) <= 20, len(failed)
    print(f"{output}: 20 outputs dead-lettered in {took:.1f} s (retry bound {RETRY_MS} ms)")

    # Granted again: the outputs go where they belong, nothing more to the DLQ.
    # Granted again: once librdkafka's next metadata refresh sees the right
    # (probed one request at a time), the outputs go where they belong.
    env.acl.grant("TOPIC", env.topics[output], "WRITE")
    t1, probes, dead = time.monotonic(), [], set(want)
    while time.monotonic() - t1 < 30:
        probe = make_request(text=f"probe {len(probes)}")
        probes.append(probe["request_id"])
        _produce(env, "normal", [probe])
        wait_until(lambda: probe["request_id"] in
                   {d["_key"].decode() for d in env.collect_all("dlq", quiet_s=0.3, kind=None)}
                   | set(ids_of(env.collect_all(output, quiet_s=0.3))), 30, "the probe")
        if probe["request_id"] in set(ids_of(env.collect_all(output, quiet_s=0.3))):
            break
        dead.add(probe["request_id"])
    print(f"{output}: writable again {time.monotonic() - t1:.1f} s after the grant "
          f"({len(probes)} probes)")
    _produce(env, "normal", after)
    want_after = {r["request_id"] for r in after}
    got = env.collect(output, lambda rs: set(ids_of(rs)) >= want_after)
    assert max(collections.Counter(ids_of(got)).values()) == 1
    _wait_committed(env, wait_until, "normal", 60 + len(probes))
    dlq_ids = [d["_key"].decode() for d in env.collect_all("dlq", quiet_s=0.5, kind=None)]
    assert sorted(dlq_ids) == sorted(dead), "only what was refused is dead-lettered, once"
    _finish(env, worker)


def test_dlq_not_writable_leaves_the_record_to_the_next_owner(acl_env, start_process, binary,
                                                              wait_until):
    """No WRITE on the DLQ: a poison message cannot be dead-lettered. The
    worker says so once (output_undeliverable, the metric), serves the
    requests after it, and leaves its offset uncommitted; the next owner,
    after the grant, dead-letters it. Nothing is lost."""
    env = acl_env
    env.acl.revoke("TOPIC", env.topics["dlq"], "WRITE")
    port = _free_port()
    worker = _start(env, start_process, binary, _conf(env, port))
    env.produce_raw("normal", b"\x00not avro at all", key=b"poison-1", partition=0)
    good = _batch("good", 10)
    _produce(env, "normal", good)
    want = {r["request_id"] for r in good}
    env.collect("responses", lambda rs: set(ids_of(rs)) >= want)
    wait_until(lambda: _metric(port, "modelgw_output_failures_total", output="dlq",
                               error="TOPIC_AUTHORIZATION_FAILED", action="undeliverable") == 1,
               30, "the DLQ failure counted")
    time.sleep(1.5)  # a spinning retry would show as more lines and counts
    lost = _events(worker, "output_undeliverable")
    assert len(lost) == 1 and lost[0]["error_name"] == "TOPIC_AUTHORIZATION_FAILED", lost
    assert lost[0]["topic"] == env.topics["dlq"], lost
    assert _metric(port, "modelgw_output_failures_total", output="dlq") == 1
    assert env.committed().get(("normal", 0)) == 0, "the poison's offset stays uncommitted"
    _finish(env, worker)

    env.acl.grant("TOPIC", env.topics["dlq"], "WRITE")
    again = _start(env, start_process, binary, _conf(env), name="next-owner")
    dlq = env.collect("dlq", lambda rs: len(rs) >= 1, kind=None)
    assert [d["_key"] for d in dlq] == [b"poison-1"], dlq
    assert dlq[0]["_headers"]["error_name"].startswith("CODEC"), dlq[0]["_headers"]
    _wait_committed(env, wait_until, "normal", 11)
    _finish(env, again)


def test_request_topic_not_readable(acl_env, start_process, binary, wait_until):
    """No right at all on the low tier's topic: it cannot even be described,
    so it is never assigned."""
    _request_topic_not_readable(acl_env, start_process, binary, wait_until, describe=False)


def test_request_topic_only_describable(acl_env, start_process, binary, wait_until):
    """DESCRIBE but no READ on the low tier's topic: it is assigned, and its
    fetches fail."""
    _request_topic_not_readable(acl_env, start_process, binary, wait_until, describe=True)


def _request_topic_not_readable(acl_env, start_process, binary, wait_until, describe):
    """No READ on the low tier: high and normal are served; the log, /health
    and the metric name the topic and the error; after the grant (and a
    metadata refresh) the low tier is served too, and /health clears."""
    env = acl_env
    env.acl.revoke("TOPIC", env.topics["low"], "READ")
    env.acl.revoke("TOPIC", env.topics["low"], "DESCRIBE_CONFIGS")
    if describe:
        env.acl.grant("TOPIC", env.topics["low"], "DESCRIBE")
    port = _free_port()
    worker = _start(env, start_process, binary, _conf(env, port, refresh_ms=1000))
    high, normal, low = _batch("high", 10), _batch("normal", 10), _batch("low", 5)
    _produce(env, "high", high)
    _produce(env, "normal", normal)
    _produce(env, "low", low)
    want = {r["request_id"] for r in high + normal}
    got = env.collect("responses", lambda rs: set(ids_of(rs)) >= want)
    assert not set(ids_of(got)) & {r["request_id"] for r in low}
    wait_until(lambda: [e for e in _events(worker, "consumer_error")
                        if e.get("topic") == env.topics["low"]], 30, "the consumer error")
    errors = [e for e in _events(worker, "consumer_error") if e.get("topic") == env.topics["low"]]
    assert errors[0]["error_name"] == "TOPIC_AUTHORIZATION_FAILED", errors
    status, health = _get(port, "/health")
    assert status == 200, health
    terr = health["kafka"]["topic_errors"]
    assert terr.get(env.topics["low"], {}).get("error") == "TOPIC_AUTHORIZATION_FAILED", health
    assert health["kafka"]["assigned_partitions"]["low"] == (1 if describe else 0), health
    assert _metric(port, "modelgw_consumer_errors_total", error="TOPIC_AUTHORIZATION_FAILED") >= 1
    assert _get(port, "/ready")[0] == 200, "the other tiers keep the worker ready"
    time.sleep(1.5)  # no error spinning: the few lines stay few
    assert len(_events(worker, "consumer_error")) <= 5, len(_events(worker, "consumer_error"))

    env.acl.grant("TOPIC", env.topics["low"], "READ")
    t0 = time.monotonic()
    want_low = {r["request_id"] for r in low}
    got = env.collect("responses", lambda rs: set(ids_of(rs)) >= want | want_low)
    print(f"low tier served {time.monotonic() - t0:.1f} s after the grant (describe={describe})")
    assert max(collections.Counter(ids_of(got)).values()) == 1
    _wait_committed(env, wait_until, "low", 5)
    wait_until(lambda: _get(port, "/health")[1]["kafka"]["topic_errors"] == {}, 30,
               "the topic error gone from /health")
    _finish(env, worker)


def test_group_not_readable(acl_env, start_process, binary, wait_until):
    """No READ on the group: the worker cannot join; it stays up, /ready says
    why, the error is named in the log and the metric; after the grant it
    joins and answers every request once."""
    env = acl_env
    env.acl.revoke("GROUP", env.group, "READ")
    port = _free_port()
    worker = _start(env, start_process, binary, _conf(env, port))
    reqs = _batch("waiting", 10)
    _produce(env, "normal", reqs)
    wait_until(lambda: _metric(port, "modelgw_consumer_errors_total",
                               error="GROUP_AUTHORIZATION_FAILED") >= 1, 30, "the group error")
    status, ready = _get(port, "/ready")
    assert status == 503, ready
    assert "not authorised to join the consumer group" in ready["not_ready"], ready
    status, health = _get(port, "/health")
    assert status == 200 and health["live"] is True, health
    assert health["kafka"]["group_error"]["error"] == "GROUP_AUTHORIZATION_FAILED", health
    errors = _events(worker, "consumer_error")
    assert any(e["error_name"] == "GROUP_AUTHORIZATION_FAILED" for e in errors), errors
    time.sleep(2)
    assert worker.running(), worker.describe()
    assert env.committed().get(("normal", 0)) == 0

    env.acl.grant("GROUP", env.group, "READ")
    want = {r["request_id"] for r in reqs}
    got = env.collect("responses", lambda rs: set(ids_of(rs)) >= want)
    assert max(collections.Counter(ids_of(got)).values()) == 1
    _wait_committed(env, wait_until, "normal", 10)
    wait_until(lambda: _get(port, "/ready")[0] == 200, 30, "/ready 200 after the grant")
    assert "group_error" not in _get(port, "/health")[1]["kafka"]
    _finish(env, worker)


def test_reply_topic_not_writable(acl_env, start_process, binary, wait_until, unique_name):
    """A reply_topic the allow-list permits but the worker may not write: an
    E4001 error response naming the authorisation failure on the default
    responses topic, once per request; requests to a writable reply_topic and
    to the default topic are answered as usual."""
    env = acl_env
    base = unique_name("replies")
    ok = env.create_topic(base + ".ok")
    denied = env.create_topic(base + ".denied")
    env.acl.grant("TOPIC", ok, "WRITE")
    port = _free_port()
    worker = _start(env, start_process, binary, _conf(env, port, reply_topics=[base + ".*"]))
    env.topics["ok"] = ok
    reqs, want_ok, want_err = [], set(), set()
    for i in range(15):
        a, b, c = (make_request(text=f"plain {i}"), make_request(text=f"ok {i}", reply_topic=ok),
                   make_request(text=f"denied {i}", reply_topic=denied))
        reqs += [a, b, c]
        want_ok.add(b["request_id"])
        want_err.add(c["request_id"])
    _produce(env, "high", reqs)
    default_ids = {r["request_id"] for r in reqs} - want_ok
    responses = env.collect("responses", lambda rs: set(ids_of(rs)) >= default_ids)
    replies = env.collect("ok", lambda rs: set(ids_of(rs)) >= want_ok, kind="response")
    assert sorted(ids_of(replies)) == sorted(want_ok)
    by_id = collections.defaultdict(list)
    for r in responses:
        by_id[r["request_id"]].append(r)
    for rid in want_err:
        errs = [r["error"] for r in by_id[rid]]
        assert len(errs) == 1 and errs[0] is not None and errs[0]["code"] == "E4001", errs
        assert errs[0]["details"].get("field") == "reply_topic", errs
        assert "authorization failed" in errs[0]["message"].lower(), errs
    for rid in default_ids - want_err:
        assert len(by_id[rid]) == 1 and by_id[rid][0]["error"] is None, by_id[rid]
    _wait_committed(env, wait_until, "high", len(reqs))
    assert _metric(port, "modelgw_output_failures_total", output="reply",
                   error="TOPIC_AUTHORIZATION_FAILED", action="replaced") == 15
    _finish(env, worker)




def test_wrong_password_is_named_and_never_logged(acl_env, start_process, binary, wait_until):
    """A SASL password the broker refuses: the worker stays up (it retries
    the connection by itself), names the failure in its log, is not ready,
    and neither the wrong password nor the right one appears in its log."""
    env = acl_env
    port = _free_port()
    wrong = "wrong-" + secrets.token_hex(12)
    worker = start_process([binary("modelgw"), "-c", _conf(env, port)], name="wrong-password",
                           env={PASSWORD_ENV: wrong})
    wait_until(lambda: any("Authentication failed" in e["error"]
                           for e in _events(worker, "kafka_error")), 30, "the named failure")
    wait_until(lambda: "Kafka authentication failed" in (_get(port, "/ready")[1] or {}).get(
        "not_ready", []), 30, "/ready naming the authentication failure")
    assert _get(port, "/ready")[0] == 503
    assert worker.running(), worker.describe()
    assert worker.stop() == 0, worker.describe()
    log = worker.stderr + worker.stdout
    assert wrong not in log and env.acl.password not in log, "a password was logged"

