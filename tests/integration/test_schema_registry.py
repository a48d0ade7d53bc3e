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
"""

import json
import os
import pathlib
import urllib.error
import urllib.request
import uuid

import pytest

from fleet import MockLLM, free_port, openai_deployment  # noqa: F401
from fleet import fleet  # noqa: F401 (fixture)
from gwlib import make_request

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
