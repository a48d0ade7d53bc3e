"""Broker restarts against a private Kafka the test starts (tools/services
with its own run folder and ports; the shared broker is never touched).

Static membership (kafka.group_instance_id) is what Kubernetes StatefulSets
use; with librdkafka 2.0.2 a coordinator restart longer than the session
timeout fences the static member's own handle fatally. The worker must
replace its consumer and carry on, losing no request; only a second live
process with the same group.instance.id stops it, with a clear log line."""

import collections
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from gwlib import TIERS, GwEnv, ids_of, make_request, start_worker


def _free_port_pair():
    """A port p with p and p + 1 free (broker and controller listeners)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p + 1 >= 65535:
            continue
        try:
            with socket.socket() as s2:
                s2.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    pytest.fail("no free port pair for the private broker")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateKafka:
    """A one-node Kafka in the test's tmp dir, on ports of its own (only
    Kafka: `tools/services start kafka`). auto_create=False starts it with
    auto.create.topics.enable=false, as production brokers run.
    extra_properties(port) -> text: lines appended to the broker's
    server.properties (MODELGW_KAFKA_EXTRA_PROPERTIES of tools/services), for
    extra listeners, SASL or an authorizer; port is the PLAINTEXT one."""

    def __init__(self, source_dir, tmp_path, auto_create=True, extra_properties=None):
        self.script = str(source_dir / "tools" / "services")
        port = _free_port_pair()
        self.env = dict(os.environ, MODELGW_RUN_DIR=str(tmp_path / "private-services"),
                        MODELGW_KAFKA_PORT=str(port),
                        MODELGW_KAFKA_CONTROLLER_PORT=str(port + 1),
                        MODELGW_KAFKA_AUTO_CREATE="true" if auto_create else "false",
                        MODELGW_REDIS_PORT=str(_free_port()))
        if extra_properties is not None:
            path = tmp_path / "extra-server.properties"
            path.write_text(extra_properties(port))
            self.env["MODELGW_KAFKA_EXTRA_PROPERTIES"] = str(path)
        self.bootstrap = f"127.0.0.1:{port}"

    def run(self, *args, timeout=180):
        res = subprocess.run([self.script, *args], env=self.env, capture_output=True, text=True,
                             timeout=timeout)
        if res.returncode != 0:
            pytest.fail(f"tools/services {' '.join(args)} failed:\n{res.stderr}")
        return res

    def start(self):
        t0 = time.monotonic()
        self.run("start", "kafka")
        return time.monotonic() - t0

    def stop_kafka(self):
        self.run("stop", "kafka")

    def stop_all(self):
        subprocess.run([self.script, "stop", "kafka"], env=self.env, capture_output=True,
                       timeout=120)

    def admin(self):
        from confluent_kafka.admin import AdminClient

        if getattr(self, "_admin", None) is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap})
        return self._admin

    def create_topic(self, name, partitions=3, config=None):
        """Create a topic and wait until every partition has a leader."""
        from confluent_kafka.admin import NewTopic

        admin = self.admin()
        fut = admin.create_topics([NewTopic(name, num_partitions=partitions,
                                            replication_factor=1, config=config or {})])
        fut[name].result(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            md = admin.list_topics(name, timeout=5).topics.get(name)
            if md and not md.error and all(p.leader >= 0 for p in md.partitions.values()):
                return name
            time.sleep(0.1)
        pytest.fail(f"topic {name} has no leader")


@pytest.fixture(scope="module")
def private_kafka(source_dir, tmp_path_factory):
    """One private broker for the module (started once: a JVM start is seconds)."""
    k = PrivateKafka(source_dir, tmp_path_factory.mktemp("private-kafka"))
    k.start()
    yield k
    k.stop_all()


@pytest.fixture
def private_env(private_kafka, unique_name, tmp_path):
    return GwEnv(private_kafka.bootstrap, private_kafka.create_topic, unique_name, tmp_path,
                 partitions=2)


def _member_conf(env, name, static=True, admin_port=0):
    kafka = {"session_timeout_ms": 6000}
    if static:
        kafka["group_instance_id"] = name
    return env.config(name, kafka=kafka, worker={"max_in_flight": 32}, mock={"latency_ms": 20},
                      extra=f"admin: {{ port = {admin_port}; }};")


def _get(port, path):
    """(status, JSON body) of the admin endpoint; (0, None) when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
    except (urllib.error.URLError, OSError):
        return 0, None


def _holds_partitions(worker):
    """The last assignment event in the worker's log gave it partitions."""
    events = [line for line in worker.stderr.splitlines()
              if '"partitions_assigned"' in line or '"partitions_revoked"' in line]
    return bool(events) and '"partitions_assigned"' in events[-1] and '"count":"0"' not in events[-1]


@pytest.mark.parametrize("static", [True, False], ids=["static", "dynamic"])
def test_members_survive_a_broker_restart(private_kafka, private_env, start_process, binary,
                                          wait_until, static):
    env = private_env
    first = {t: [make_request(text=f"{t} first {i}") for i in range(50)] for t in TIERS}
    second = {t: [make_request(text=f"{t} second {i}") for i in range(50)] for t in TIERS}
    port = _free_port()
    a = start_worker(start_process, binary, _member_conf(env, "wa", static, port), "wa")
    b = start_worker(start_process, binary, _member_conf(env, "wb", static), "wb")
    wait_until(lambda: _holds_partitions(a) and _holds_partitions(b), 60,
               "both members hold partitions")
    for t in TIERS:
        env.produce(t, first[t])
    want_first = {r["request_id"] for t in TIERS for r in first[t]}
    env.collect("responses", lambda rs: set(ids_of(rs)) >= want_first, timeout=120)

    # Down for longer than the session timeout: the members' sessions expire
    # (a static member's rejoin then fences its own old handle, often).
    t_down = time.monotonic()
    private_kafka.stop_kafka()
    # A broker outage shows in /ready (and the /health body), never as a
    # liveness failure.
    wait_until(lambda: _get(port, "/ready")[0] == 503, 30, "/ready 503 with the broker down")
    status, ready = _get(port, "/ready")
    assert "no Kafka broker connected" in ready["not_ready"], ready
    status, health = _get(port, "/health")
    assert status == 200 and health["live"] is True and health["ready"] is False, health
    time.sleep(max(0.0, 8.0 - (time.monotonic() - t_down)))
    private_kafka.start()
    t_up = time.monotonic()
    print(f"broker down for {t_up - t_down:.1f} s")
    env.producer = __import__("confluent_kafka").Producer(
        {"bootstrap.servers": env.bootstrap, "linger.ms": 5})
    for t in TIERS:
        env.produce(t, second[t])
    want = want_first | {r["request_id"] for t in TIERS for r in second[t]}
    responses = env.collect("responses", lambda rs: set(ids_of(rs)) >= want, timeout=120)
    print(f"all {len(want)} answered {time.monotonic() - t_up:.1f} s after the broker was back")
    counts = collections.Counter(ids_of(responses))
    assert set(counts) == want, "no request lost"
    print(f"duplicates: {sum(n - 1 for n in counts.values())}")
    assert a.running(), a.describe()
    assert b.running(), b.describe()
    # Both members are back in the group (a fenced handle was replaced, a
    # stuck one rejoined) and serve again.
    wait_until(lambda: _holds_partitions(a) and _holds_partitions(b), 90,
               "both members hold partitions again")
    print(f"both members hold partitions {time.monotonic() - t_up:.1f} s after the broker was back")
    wait_until(lambda: _get(port, "/ready")[0] == 200, 30, "/ready 200 again")
    fenced = a.stderr.count('"consumer_fenced"') + b.stderr.count('"consumer_fenced"')
    print(f"fenced handles replaced: {fenced}")
    assert '"consumer_fenced_again"' not in a.stderr + b.stderr
    assert a.stop() == 0, a.describe()
    assert b.stop() == 0, b.describe()


def test_second_process_with_the_same_instance_id_stops(private_env, start_process, binary):
    """Deterministic fences: the second process fences the first, which
    replaces its handle and fences the second in turn, which does the same;
    the first, fenced again at once, stops (exit 1, consumer_fenced_again)."""
    env = private_env
    a = start_worker(start_process, binary, _member_conf(env, "same"), "first")
    reqs = [make_request(text=f"dup {i}") for i in range(30)]
    env.produce("normal", reqs)
    env.collect("responses", lambda rs: len(rs) >= 30, timeout=120)
    b = start_worker(start_process, binary, _member_conf(env, "same"), "second")
    deadline = time.monotonic() + 90
    while a.running() and b.running() and time.monotonic() < deadline:
        time.sleep(0.5)
    stopped = [p for p in (a, b) if not p.running()]
    assert stopped, "one of two processes with the same group.instance.id stops"
    for p in stopped:
        assert p.wait(30) == 1, p.describe()
        assert '"consumer_fenced_again"' in p.stderr, p.describe()
    survivor = [p for p in (a, b) if p.running()]
    assert survivor, "the other one carries on"
    more = [make_request(text=f"after {i}") for i in range(30)]
    env.produce("normal", more)
    want = {r["request_id"] for r in reqs + more}
    env.collect("responses", lambda rs: set(ids_of(rs)) >= want, timeout=120)
    assert len([p for p in (a, b) if p.running()]) == 1, "exactly one of them stopped"
