"""The schema registry path (docs/schemas.md, "Schema registry") against a
real registry: Apicurio Registry's Confluent-compatible API, started by
tools/services (MODELGW_REGISTRY), a real Kafka and a real worker.

A producer using confluent-kafka's SchemaRegistryClient and AvroSerializer
registers a newer, compatible InferenceRequest (a field the worker does not
know, fields it knows left out so their defaults apply, a float where the
worker reads a double, the fields in reverse order) and sends Confluent-framed
requests; the worker, which has no id mapped, fetches the writer schema,
resolves it and answers every request. An incompatible writer schema, an id
the registry does not know, and a registry that does not answer each send
the message to the DLQ with its own error name, and the partition goes on.

Output schemas (docs/schemas.md, "Output schemas"): a worker with
schema_registry.register_outputs registers InferenceResponse, StreamChunk and
UsageEvent under "<topic>-value" at start and writes its outputs as 00 + id +
datum; confluent-kafka's AvroDeserializer with a SchemaRegistryClient reads
the responses, chunks, usage events and a reply topic's response, and each id
resolves to the repository's schema. A registry that does not answer at start
and one that refuses the schema (incompatible with the subject's versions)
each stop the start before anything is consumed.
"""

import json
import os
import pathlib
import urllib.error
import urllib.request
import uuid

import pytest

from fastavro.schema import parse_schema, to_parsing_canonical_form

from fleet import MockLLM, free_port, openai_deployment, wait_for  # noqa: F401
from fleet import fleet  # noqa: F401 (fixture)
from gwlib import decode, make_request

ROOT = pathlib.Path(__file__).resolve().parents[2]
REGISTRY = os.environ.get("MODELGW_REGISTRY", "http://127.0.0.1:18081/apis/ccompat/v7")


@pytest.fixture(scope="module")
def registry_url():
    try:
        with urllib.request.urlopen(REGISTRY + "/subjects", timeout=5) as r:
            assert r.status == 200
    except (OSError, urllib.error.URLError) as exc:
        pytest.fail(f"schema registry at {REGISTRY} (MODELGW_REGISTRY) is not reachable: {exc}; "
                    "start it with `tools/services start registry`")
    return REGISTRY


def reader_schema():
    return json.loads((ROOT / "schemas/InferenceRequest.avsc").read_text())


def newer_writer_schema():
    """A producer's next version: one new field, some optional fields gone, a
    float for the double, every field in reverse order."""
    s = reader_schema()
    fields = [f for f in s["fields"] if f["name"] not in ("batch_id", "custom_id", "tools")]
    for f in fields:
        if f["name"] == "temperature":
            f["type"] = "float"
            f["default"] = 0.5
    fields.append({"name": "client_note", "type": ["null", "string"], "default": None})
    s["fields"] = list(reversed(fields))
    return s


def serializer(registry_url, schema, subject=None):
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroSerializer

    client = SchemaRegistryClient({"url": registry_url})
    conf = {"auto.register.schemas": True}
    if subject is not None:
        conf["subject.name.strategy"] = lambda ctx, name: subject
    return client, AvroSerializer(client, json.dumps(schema), conf=conf)


def framed(ser, topic, rec):
    from confluent_kafka.serialization import MessageField, SerializationContext

    return ser(rec, SerializationContext(topic, MessageField.VALUE))


def request_dict(text):
    r = make_request(text=text)
    r = {k: v for k, v in r.items() if k not in ("batch_id", "custom_id", "tools")}
    r["temperature"] = 0.25
    r["client_note"] = "from a newer producer"
    return r


def dlq_names(fleet, n):
    recs = fleet.collect("dlq", lambda rs: len(rs) >= n, timeout=60)
    return recs


def test_newer_schema_incompatible_and_unknown_ids(fleet, registry_url, start_process, binary):
    mock = MockLLM(start_process, binary, fleet.tmp_path)
    topic = fleet.topics["normal"]
    client, ser = serializer(registry_url, newer_writer_schema())
    reqs = [request_dict(f"registry question {i}") for i in range(5)]
    values = [framed(ser, topic, r) for r in reqs]
    ids = {int.from_bytes(v[1:5], "big") for v in values}
    assert all(v[0] == 0 for v in values) and len(ids) == 1

    # An incompatible writer: request_id as an int (no promotion to string).
    bad = reader_schema()
    for f in bad["fields"]:
        if f["name"] == "request_id":
            f["type"] = "int"
    _, bad_ser = serializer(registry_url, bad, subject=f"bad-{uuid.uuid4().hex}")
    bad_rec = make_request(text="never answered")
    bad_rec["request_id"] = 7
    bad_value = framed(bad_ser, topic, bad_rec)
    unknown_value = b"\x00" + (2**31 - 5).to_bytes(4, "big") + b"\x02x"

    w = fleet.start_worker("w0", [openai_deployment("reg-a", mock.url)],
                           over={"schema_registry": {"url": registry_url},
                                 "log": {"level": "info"}})
    fleet.wait_assigned([w])
    for r, v in zip(reqs, values):
        fleet.produce_raw("normal", v, key=r["request_id"].encode(), partition=0)
    fleet.produce_raw("normal", bad_value, key=b"bad", partition=0)
    fleet.produce_raw("normal", unknown_value, key=b"unknown", partition=0)
    # Behind the failures on the same partition: still answered.
    after = request_dict("after the failures")
    fleet.produce_raw("normal", framed(ser, topic, after), key=after["request_id"].encode(),
                      partition=0)

    want = {r["request_id"] for r in reqs} | {after["request_id"]}
    got = fleet.collect("responses", lambda rs: want <= {r["request_id"] for r in rs})
    for r in got:
        assert r["error"] is None, r
        assert r["content"]
    dlq = dlq_names(fleet, 2)
    by_key = {r["_key"]: r["_headers"] for r in dlq}
    assert by_key[b"bad"]["error_name"] == "CODEC_INCOMPATIBLE", by_key
    assert by_key[b"unknown"]["error_name"] == "CODEC_UNKNOWN_SCHEMA", by_key
    assert w.stop() == 0, w.describe()
    log = [json.loads(line) for line in w.stderr_path.read_text().splitlines()]
    resolved = [e for e in log if e["event"] == "schema_registry_resolved"]
    assert {int(e["schema_id"]) for e in resolved} == ids  # fetched once, then cached
    failed = {e["error"]: e for e in log if e["event"] == "schema_registry_failed"}
    assert "request_id" in failed["CODEC_INCOMPATIBLE"]["why"]


def test_registry_down_goes_to_dlq_without_stalling(fleet, registry_url, start_process, binary):
    mock = MockLLM(start_process, binary, fleet.tmp_path)
    topic = fleet.topics["normal"]
    _, ser = serializer(registry_url, newer_writer_schema())
    waiting = request_dict("the registry is down")
    value = framed(ser, topic, waiting)
    dead = free_port()
    w = fleet.start_worker("w0", [openai_deployment("reg-b", mock.url)],
                           over={"schema_registry": {"url": f"http://127.0.0.1:{dead}",
                                                     "max_wait_ms": 1000, "timeout_ms": 200}})
    fleet.wait_assigned([w])
    fleet.produce_raw("normal", value, key=b"waiting", partition=0)
    plain = make_request(text="an ordinary request behind it")
    fleet.produce_to("normal", [plain], partition=0)  # single-object framing: no registry
    got = fleet.collect("responses", lambda rs: plain["request_id"] in {r["request_id"] for r in rs})
    assert [r for r in got if r["request_id"] == plain["request_id"]][0]["error"] is None
    dlq = dlq_names(fleet, 1)
    assert dlq[0]["_key"] == b"waiting"
    assert dlq[0]["_headers"]["error_name"] == "CODEC_REGISTRY"
    assert w.stop() == 0, w.describe()


# --- output schemas -----------------------------------------------------------------


def mock_dep(dep_id):
    return {"id": dep_id, "provider": "mock", "model": dep_id + "-model",
            "capabilities": ["text"], "context_window": 8192}


def raw_records(bootstrap, topic, until, timeout=60):
    """(key, value, headers) of topic from the beginning, until until(records)."""
    import time

    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "raw-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    out = []
    deadline = time.monotonic() + timeout
    try:
        while not until(out):
            if time.monotonic() > deadline:
                pytest.fail(f"timed out reading {topic}: have {len(out)} records")
            for m in c.consume(100, 0.5):
                if m.error() is None:
                    out.append((m.key(), m.value(), dict(m.headers() or [])))
    finally:
        c.close()
    return out


def canonical(schema_json):
    return to_parsing_canonical_form(parse_schema(json.loads(schema_json)))


def log_events(proc):
    return [json.loads(line) for line in proc.stderr_path.read_text().splitlines()
            if line.startswith("{")]


def test_outputs_registered_and_confluent_framed(fleet, registry_url, create_topic,
                                                 unique_name):
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    reply = create_topic(unique_name("reply"), 1)
    over = {"schema_registry": {"url": registry_url, "register_outputs": True},
            "kafka": {"output_framing": "confluent", "reply_topics": [reply, "replies.*"]}}
    w = fleet.start_worker("w0", [mock_dep("reg-out")], over=over)
    fleet.wait_assigned([w])
    plain = make_request(text="registered outputs")
    streamed = make_request(text="registered outputs, streamed", stream=True)
    replied = make_request(text="to my own topic", reply_topic=reply)
    fleet.produce("normal", [plain, streamed, replied])

    t = fleet.topics
    ids = {plain["request_id"], streamed["request_id"]}
    resp = raw_records(fleet.bootstrap, t["responses"],
                       lambda rs: ids <= {k.decode() for k, _, _ in rs})
    usage = raw_records(fleet.bootstrap, t["usage"], lambda rs: len(rs) >= 3)
    chunks = raw_records(fleet.bootstrap, t["chunks"],
                         lambda rs: any(decode("chunk", v)["is_final"] for _, v, _ in rs))
    mine = raw_records(fleet.bootstrap, reply, lambda rs: len(rs) >= 1)

    client = SchemaRegistryClient({"url": registry_url})
    want = {"responses": "InferenceResponse", "chunks": "StreamChunk", "usage": "UsageEvent"}
    subject_ids = {}
    for out, name in want.items():
        reg = client.get_latest_version(f"{t[out]}-value")
        assert canonical(reg.schema.schema_str) == canonical(
            (ROOT / f"schemas/{name}.avsc").read_text()), out
        subject_ids[out] = reg.schema_id
    reg = client.get_latest_version(f"{reply}-value")
    assert canonical(reg.schema.schema_str) == canonical(
        (ROOT / "schemas/InferenceResponse.avsc").read_text())

    de = AvroDeserializer(client)  # the writer schema by the id in each record
    read = {}
    for out, recs in (("responses", resp), ("chunks", chunks), ("usage", usage),
                      ("reply", mine)):
        for key, value, headers in recs:
            assert value[0] == 0, (out, value[:8])
            sid = int.from_bytes(value[1:5], "big")
            assert sid == subject_ids["responses" if out == "reply" else out], (out, sid)
            assert headers["content-type"].decode().endswith(";framing=confluent")
            topic = reply if out == "reply" else t[out]
            rec = de(value, SerializationContext(topic, MessageField.VALUE))
            assert rec["request_id"] == key.decode()
            read.setdefault(out, []).append(rec)
    by_id = {r["request_id"]: r for r in read["responses"]}
    assert by_id[plain["request_id"]]["error"] is None and by_id[plain["request_id"]]["content"]
    assert [r["request_id"] for r in read["reply"]] == [replied["request_id"]]
    assert read["reply"][0]["content"]
    assert any(c["is_final"] for c in read["chunks"])
    assert {c["request_id"] for c in read["chunks"]} == {streamed["request_id"]}
    uses = {u["request_id"]: u for u in read["usage"]}
    assert set(uses) == {plain["request_id"], streamed["request_id"], replied["request_id"]}
    assert all(len(u["trace_id"]) == 32 and len(u["span_id"]) == 16 for u in uses.values())

    assert w.stop() == 0, w.describe()
    registered = {e["subject"]: int(e["schema_id"]) for e in log_events(w)
                  if e["event"] == "schema_registered"}
    assert registered == {f"{t['responses']}-value": subject_ids["responses"],
                          f"{t['chunks']}-value": subject_ids["chunks"],
                          f"{t['usage']}-value": subject_ids["usage"],
                          f"{reply}-value": reg.schema_id}  # the pattern names no subject

    # A second start registers again and gets the same ids (one version per subject).
    w1 = fleet.start_worker("w1", [mock_dep("reg-out")], over=over)
    wait_for(lambda: any(e["event"] == "worker_started" for e in log_events(w1)), 60,
             "the second worker's start")
    assert w1.stop() == 0, w1.describe()
    again = {e["subject"]: int(e["schema_id"]) for e in log_events(w1)
             if e["event"] == "schema_registered"}
    assert again == registered
    assert client.get_versions(f"{t['usage']}-value") == [1]


def test_registry_down_at_start_stops_the_start(fleet, start_process):
    dead = free_port()
    w = fleet.start_worker("w0", [mock_dep("reg-down")],
                           over={"schema_registry": {"url": f"http://127.0.0.1:{dead}",
                                                     "register_outputs": True,
                                                     "register_timeout_ms": 1500,
                                                     "timeout_ms": 200},
                                 "kafka": {"output_framing": "confluent"}})
    assert w.wait(60) == 1, w.describe()
    events = log_events(w)
    names = [e["event"] for e in events]
    assert "worker_started" not in names  # nothing subscribed, nothing consumed
    retries = [e for e in events if e["event"] == "schema_register_retry"]
    assert len(retries) >= 2 and "unreachable" in retries[0]["why"], retries
    failed = [e for e in events if e["event"] == "schema_register_failed"]
    assert len(failed) == 1 and failed[0]["error"] == "CODEC_REGISTRY", failed
    assert "no schema id in time" in failed[0]["why"]


def test_incompatible_subject_refuses_at_once(fleet, registry_url):
    """The usage topic's subject already holds another record under BACKWARD
    compatibility: the registry answers 409, asked again three times (a 409
    may be the registry's race between workers registering at once), then
    the start fails."""
    subject = f"{fleet.topics['usage']}-value"
    other = {"type": "record", "name": "Other", "namespace": "io.example",
             "fields": [{"name": "a", "type": "int"}]}

    def call(method, path, body):
        req = urllib.request.Request(registry_url + path, data=json.dumps(body).encode(),
                                     method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    call("PUT", f"/config/{subject}", {"compatibility": "BACKWARD"})
    call("POST", f"/subjects/{subject}/versions", {"schema": json.dumps(other)})
    w = fleet.start_worker("w0", [mock_dep("reg-409")],
                           over={"schema_registry": {"url": registry_url,
                                                     "register_outputs": True}})
    assert w.wait(60) == 1, w.describe()
    events = log_events(w)
    assert "worker_started" not in [e["event"] for e in events]
    retries = [e for e in events if e["event"] == "schema_register_retry"]
    assert [e["subject"] for e in retries] == [subject] * 3, retries
    assert all("HTTP 409" in e["why"] for e in retries)
    failed = [e for e in events if e["event"] == "schema_register_failed"]
    assert len(failed) == 1, events
    assert failed[0]["error"] == "CODEC_REGISTRY"
    assert failed[0]["why"].startswith(f"subject {subject}: the registry refused the schema "
                                       "(HTTP 409"), failed


def test_workers_starting_together_all_register(fleet, registry_url):
    """Three workers register the same new subjects at the same moment (a
    registry may answer such a race with 409): every one starts, with the
    same ids."""
    over = {"schema_registry": {"url": registry_url, "register_outputs": True},
            "kafka": {"output_framing": "confluent"}}
    procs = fleet.start_workers(3, [mock_dep("reg-race")], over=over)
    req = make_request(text="after a crowded start")
    fleet.produce("normal", [req])
    got = fleet.collect("responses", lambda rs: req["request_id"] in {r["request_id"] for r in rs})
    assert got[0]["error"] is None
    ids = []
    for p in procs:
        assert p.stop() == 0, p.describe()
        ids.append({e["subject"]: e["schema_id"] for e in log_events(p)
                    if e["event"] == "schema_registered"})
    assert len(ids[0]) == 3 and ids[0] == ids[1] == ids[2], ids
