"""Interop of the C codec with third-party Avro, through the real Kafka broker.

Python (fastavro) writes records bare, single-object (C3 01 + fastavro's
CRC-64-AVRO fingerprint) and Confluent-framed (00 + schema id, framed by hand
because confluent-kafka's AvroSerializer needs a live Schema Registry); they are
produced to a fresh topic of the real broker, consumed back, and decoded by the
C codec (modelgw-avro decode). The other way, modelgw-avro encode writes all
four record types bare and single-object; the bytes pass through Kafka and
fastavro reads them, including current-schema requests read with the v1
reader schema, and v3 requests (tools, tool calls, structured output) with a
v2 reader. Needs MODELGW_KAFKA (default 127.0.0.1:19092) and
MODELGW_BUILD_DIR (where modelgw-avro is); fails loudly when either is missing.
"""
import io
import json
import os
import struct
import subprocess
import uuid

import fastavro
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from fastavro.schema import fingerprint, to_parsing_canonical_form

ROOT = os.environ.get("MODELGW_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
KAFKA = os.environ.get("MODELGW_KAFKA", "127.0.0.1:19092")
KINDS = {"request": "InferenceRequest", "response": "InferenceResponse",
         "chunk": "StreamChunk", "usage": "UsageEvent"}
V2_DEFAULTS = {"routing_strategy": "BALANCED", "stream": False, "model": None, "deadline_ms": None,
               "reply_topic": None, "batch_id": None, "custom_id": None, "tenant_id": None}
V3_DEFAULTS = {"tools": [], "tool_choice": None, "response_format": None, "stop": [], "top_p": None,
               "seed": None}
MSG_V3_DEFAULTS = {"tool_calls": [], "tool_call_id": None}


def as_current(req):
    """An older request as the C side prints it: the current schema's defaults filled in."""
    out = dict(V2_DEFAULTS, **V3_DEFAULTS)
    out.update(req)
    out["messages"] = [dict(MSG_V3_DEFAULTS, **m) for m in req["messages"]]
    return out


def schema(name):
    with open(os.path.join(ROOT, "schemas", name + ".avsc")) as f:
        return fastavro.parse_schema(json.load(f))


def fp_le(parsed):
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


def write(parsed, rec):
    b = io.BytesIO()
    fastavro.schemaless_writer(b, parsed, rec)
    return b.getvalue()


def read(writer, data, reader=None):
    b = io.BytesIO(data)
    rec = fastavro.schemaless_reader(b, writer, reader) if reader else \
        fastavro.schemaless_reader(b, writer)
    assert b.read() == b"", "trailing bytes after the datum"
    return rec


@pytest.fixture(scope="module")
def tool():
    build = os.environ.get("MODELGW_BUILD_DIR")
    assert build, "MODELGW_BUILD_DIR is not set (the directory holding modelgw-avro)"
    path = os.path.join(build, "modelgw-avro")
    assert os.access(path, os.X_OK), f"{path} is missing: build the modelgw-avro target"
    return path


@pytest.fixture(scope="module")
def topic():
    admin = AdminClient({"bootstrap.servers": KAFKA})
    try:
        admin.list_topics(timeout=10)
    except Exception as e:  # noqa: BLE001 - any failure means no broker
        pytest.fail(f"Kafka at {KAFKA} is not reachable ({e}); run tools/services start")
    name = f"it.avro-interop.{uuid.uuid4().hex[:12]}"
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(30)
    yield name
    admin.delete_topics([name])


def through_kafka(topic, payloads):
    """Produces the payloads (in order, one partition) and returns the bytes consumed back."""
    p = Producer({"bootstrap.servers": KAFKA, "enable.idempotence": True})
    run = uuid.uuid4().bytes
    for i, data in enumerate(payloads):
        p.produce(topic, value=data, key=run + struct.pack(">I", i))
    assert p.flush(30) == 0, "produce did not complete"
    c = Consumer({"bootstrap.servers": KAFKA, "group.id": "it-avro-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got = {}
    try:
        for _ in range(300):
            if len(got) == len(payloads):
                break
            m = c.poll(0.2)
            if m is None or m.error():
                continue
            if m.key()[:16] == run:
                got[struct.unpack(">I", m.key()[16:])[0]] = m.value()
    finally:
        c.close()
    assert len(got) == len(payloads), f"consumed {len(got)} of {len(payloads)} messages"
    return [got[i] for i in range(len(payloads))]


def run_tool(tool, args, text):
    r = subprocess.run([tool] + args, input=text, capture_output=True, text=True, timeout=60)
    return r


REQ_V1 = {
    "request_id": "py-1", "agent_did": "did:example:py",
    "messages": [{"role": "SYSTEM", "content": "Be brief.", "name": None},
                 {"role": "USER", "content": "Grüße, 東京? \U0001F600", "name": "bob"},
                 {"role": "TOOL", "content": "{\"ok\": true}", "name": "lookup"}],
    "system_prompt": "sys", "temperature": 0.3, "max_tokens": 77, "capabilities": ["chat", "vision"],
    "enable_cache": False, "metadata": {"team": "a", "x": ""},
}
REQ_V2 = dict(REQ_V1, request_id="py-2", routing_strategy="CAPABILITY_MATCH", stream=True,
              model="m-large", deadline_ms=1790000000123, reply_topic="replies",
              batch_id="b-9", custom_id="c-9", tenant_id="ten")
REQ_V2_MIN = dict(REQ_V1, request_id="py-3", messages=[], capabilities=[], metadata={},
                  system_prompt=None, **V2_DEFAULTS)
CALL = {"id": "call_7", "name": "get_weather", "arguments": "{\"city\": \"東京\"}"}
REQ_V3 = dict(
    REQ_V2, request_id="py-4",
    messages=[{"role": "USER", "content": "Weather in Tokyo?", "name": None, "tool_calls": [],
               "tool_call_id": None},
              {"role": "ASSISTANT", "content": "", "name": None, "tool_calls": [CALL],
               "tool_call_id": None},
              {"role": "TOOL", "content": "{\"temp_c\": 21}", "name": "get_weather",
               "tool_calls": [], "tool_call_id": "call_7"}],
    tools=[{"name": "get_weather", "description": "Current weather for a city",
            "parameters": json.dumps({"type": "object", "properties": {"city": {"type": "string"}},
                                      "required": ["city"]})},
           {"name": "noop", "description": None, "parameters": None}],
    tool_choice="auto",
    response_format={"type": "json_schema", "name": "weather", "schema": "{\"type\": \"object\"}",
                     "strict": True},
    stop=["\n\n"], top_p=0.95, seed=1234)
REQ_V3_MIN = as_current(REQ_V2_MIN) | {"request_id": "py-5"}
TOKENS = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
ERROR = {"code": "E4102", "message": "all models unavailable", "retryable": True,
         "details": {"tried": "m1,m2"}}
SAMPLES = {
    "request": [REQ_V3, REQ_V3_MIN],
    "response": [
        {"request_id": "r", "content": "Paris", "model_id": "m1", "provider": "mock",
         "token_usage": TOKENS, "latency_ms": 12.25, "cached": False, "finish_reason": "stop",
         "error": None, "metadata": {"k": "v"}, "custom_id": "c", "batch_id": None,
         "tool_calls": []},
        {"request_id": "r2", "content": "", "model_id": "", "provider": "", "token_usage": TOKENS,
         "latency_ms": 0.5, "cached": True, "finish_reason": None, "error": ERROR,
         "metadata": {}, "custom_id": None, "batch_id": "b", "tool_calls": [CALL]},
    ],
    "chunk": [
        {"request_id": "r", "seq": 0, "content": "Pa", "is_final": False, "token_usage": None,
         "finish_reason": None, "error": None,
         "tool_calls": [{"index": 0, "id": "call_7", "name": "get_weather", "arguments": "{\"ci"}]},
        {"request_id": "r", "seq": 1, "content": "ris", "is_final": True, "token_usage": TOKENS,
         "finish_reason": "tool_calls", "error": ERROR,
         "tool_calls": [{"index": 0, "id": None, "name": None, "arguments": "ty\": \"東京\"}"}]},
    ],
    "usage": [
        {"event_id": "e1", "request_id": "r", "agent_did": "a", "tenant_id": "t", "batch_id": "b",
         "custom_id": "c", "model_id": "m", "provider": "p", "priority": "high", "prompt_tokens": 1,
         "completion_tokens": 2, "total_tokens": 3, "cost_usd": 0.0125, "saved_cost_usd": 0.0,
         "latency_ms": 99.5, "ttft_ms": 10.5, "cached": False, "cache_tier": None,
         "cache_similarity": None, "attempts": 2, "failovers": 1, "outcome": "success",
         "error_code": None, "timestamp_ms": 1790000000000,
         "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"},
        {"event_id": "e2", "request_id": "r", "agent_did": "a", "tenant_id": "t", "batch_id": None,
         "custom_id": None, "model_id": None, "provider": None, "priority": "low",
         "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "cost_usd": 0.0,
         "saved_cost_usd": 0.5, "latency_ms": 1.0, "ttft_ms": None, "cached": True,
         "cache_tier": "semantic", "cache_similarity": 0.93, "attempts": 0, "failovers": 0,
         "outcome": "cached", "error_code": "E4200", "timestamp_ms": 1, "trace_id": None,
         "span_id": None},
    ],
}


def test_fingerprints_and_canonical_forms_match_fastavro(tool):
    r = run_tool(tool, ["schemas"], "")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert {row["name"] for row in rows} == {
        "InferenceRequest.v1", "InferenceRequest.v2", "InferenceRequest", "InferenceResponse.v1",
        "InferenceResponse", "StreamChunk.v1", "StreamChunk", "UsageEvent.v1", "UsageEvent"}
    for row in rows:
        parsed = schema(row["name"])
        assert row["canonical_form"] == to_parsing_canonical_form(parsed), row["name"]
        assert row["fingerprint_le_hex"] == fingerprint(to_parsing_canonical_form(parsed),
                                                        "CRC-64-AVRO"), row["name"]


def test_shared_named_types_are_identical_everywhere():
    """Message, TokenUsage and GatewayError are inlined in each schema file: the copies must agree."""
    seen = {}

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") in ("record", "enum") and "name" in node:
                canon = to_parsing_canonical_form(fastavro.parse_schema(
                    dict(node, namespace="io.modelgw")))
                seen.setdefault(node["name"], set()).add(canon)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for name in ["InferenceRequest", "InferenceResponse", "StreamChunk"]:
        with open(os.path.join(ROOT, "schemas", name + ".avsc")) as f:
            walk(json.load(f))
    for name in ["Message", "MessageRole", "TokenUsage", "GatewayError", "ToolCall"]:
        assert len(seen[name]) == 1, f"{name} differs between the current schema files"
    # the older versions share theirs too (Message grew the tool fields in request v3)
    seen.clear()
    for name in ["InferenceRequest.v1", "InferenceRequest.v2", "InferenceResponse.v1",
                 "StreamChunk.v1", "StreamChunk", "InferenceResponse"]:
        with open(os.path.join(ROOT, "schemas", name + ".avsc")) as f:
            walk(json.load(f))
    for name in ["Message", "MessageRole", "TokenUsage", "GatewayError"]:
        assert len(seen[name]) == 1, f"{name} differs between schema files"


def test_fastavro_to_c_through_kafka(tool, topic):
    v1, v2, v3 = schema("InferenceRequest.v1"), schema("InferenceRequest.v2"), \
        schema("InferenceRequest")
    cases = [  # (bytes, expected record as the C side prints it, expected framing/version)
        (write(v3, REQ_V3), REQ_V3, ("bare", 3)),
        (write(v3, REQ_V3_MIN), REQ_V3_MIN, ("bare", 3)),
        (b"\xc3\x01" + fp_le(v3) + write(v3, REQ_V3), REQ_V3, ("single-object", 3)),
        (b"\xc3\x01" + fp_le(v2) + write(v2, REQ_V2), as_current(REQ_V2), ("single-object", 2)),
        (b"\xc3\x01" + fp_le(v1) + write(v1, REQ_V1), as_current(REQ_V1), ("single-object", 1)),
        (b"\x00" + struct.pack(">I", 42) + write(v3, REQ_V3), REQ_V3, ("confluent", 3)),
        (b"\x00" + struct.pack(">I", 41) + write(v2, REQ_V2), as_current(REQ_V2), ("confluent", 2)),
        (b"\x00" + struct.pack(">I", 40) + write(v1, REQ_V1), as_current(REQ_V1), ("confluent", 1)),
    ]
    consumed = through_kafka(topic, [c[0] for c in cases])
    assert consumed == [c[0] for c in cases]
    r = run_tool(tool, ["decode", "--meta", "--confluent", "40=request:1", "--confluent",
                        "41=request:2", "--confluent", "42=request:3"],
                 "".join(b.hex() + "\n" for b in consumed))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(lines) == len(cases)
    for got, (_, want, (framing, version)) in zip(lines, cases):
        assert got["framing"] == framing
        assert got["writer_version"] == version
        assert got["record"] == want

    # the other record kinds, bare and single-object
    for kind, recs in SAMPLES.items():
        if kind == "request":
            continue
        s = schema(KINDS[kind])
        payloads = [write(s, rec) for rec in recs] + \
                   [b"\xc3\x01" + fp_le(s) + write(s, rec) for rec in recs]
        consumed = through_kafka(topic, payloads)
        r = run_tool(tool, ["decode", "--kind", kind], "".join(b.hex() + "\n" for b in consumed))
        assert r.returncode == 0, r.stdout + r.stderr
        assert [json.loads(line) for line in r.stdout.splitlines()] == recs + recs


def test_hostile_bytes_from_kafka_get_named_errors(tool, topic):
    good = write(schema("InferenceRequest"), REQ_V3)
    payloads = [good[:20], b"\xc3\x01" + b"\x99" * 8 + good, good + b"\x00",
                b"\xc3\x02" + b"\x00" * 8 + good]
    consumed = through_kafka(topic, payloads)
    r = run_tool(tool, ["decode"], "".join(b.hex() + "\n" for b in consumed))
    assert r.returncode == 1
    errors = [json.loads(line)["error"] for line in r.stdout.splitlines()]
    assert errors == ["CODEC_TRUNCATED", "CODEC_UNKNOWN_SCHEMA", "CODEC_TRAILING",
                      "CODEC_BAD_MAGIC"]


@pytest.mark.parametrize("framing", ["bare", "single-object"])
def test_c_to_fastavro_through_kafka(tool, topic, framing):
    for kind, recs in SAMPLES.items():
        s = schema(KINDS[kind])
        r = run_tool(tool, ["encode", "--kind", kind, "--framing", framing],
                     "".join(json.dumps(rec) + "\n" for rec in recs))
        assert r.returncode == 0, r.stderr
        written = [bytes.fromhex(line) for line in r.stdout.splitlines()]
        assert len(written) == len(recs)
        consumed = through_kafka(topic, written)
        for data, rec in zip(consumed, recs):
            if framing == "single-object":
                assert data[:2] == b"\xc3\x01"
                assert data[2:10] == fp_le(s)
                data = data[10:]
            assert read(s, data) == rec


def test_current_writer_read_with_v1_reader_schema(tool, topic):
    v1, v2, v3 = schema("InferenceRequest.v1"), schema("InferenceRequest.v2"), \
        schema("InferenceRequest")
    r = run_tool(tool, ["encode", "--framing", "bare"], json.dumps(REQ_V3) + "\n")
    assert r.returncode == 0, r.stderr
    (data,) = through_kafka(topic, [bytes.fromhex(r.stdout.strip())])
    # an old consumer skips what it does not know: the tools, the tool fields of messages
    plain = [{k: m[k] for k in ("role", "content", "name")} for m in REQ_V3["messages"]]
    assert read(v3, data, reader=v1) == dict(REQ_V1, request_id="py-4", messages=plain)
    assert read(v3, data, reader=v2) == dict(REQ_V2, request_id="py-4", messages=plain)
    # and v1 written by C (an older producer) resolves to the current schema's defaults
    r = run_tool(tool, ["encode", "--framing", "bare", "--version", "1"], json.dumps(REQ_V1) + "\n")
    assert r.returncode == 0, r.stderr
    (data,) = through_kafka(topic, [bytes.fromhex(r.stdout.strip())])
    assert read(v1, data, reader=v3) == as_current(REQ_V1)
    # responses and chunks: v1 readers skip tool_calls; usage: trace_id and span_id
    for kind, old, added in (("response", "InferenceResponse.v1", {"tool_calls"}),
                             ("chunk", "StreamChunk.v1", {"tool_calls"}),
                             ("usage", "UsageEvent.v1", {"trace_id", "span_id"})):
        recs = SAMPLES[kind]
        r = run_tool(tool, ["encode", "--kind", kind, "--framing", "bare"],
                     "".join(json.dumps(rec) + "\n" for rec in recs))
        assert r.returncode == 0, r.stderr
        for line, rec in zip(r.stdout.splitlines(), recs):
            got = read(schema(KINDS[kind]), bytes.fromhex(line), reader=schema(old))
            assert got == {k: v for k, v in rec.items() if k not in added}


def test_missing_request_id_gets_a_uuid(tool):
    rec = {k: v for k, v in REQ_V1.items() if k != "request_id"}
    r = run_tool(tool, ["encode", "--framing", "bare"], json.dumps(rec) + "\n")
    assert r.returncode == 0, r.stderr
    got = read(schema("InferenceRequest"), bytes.fromhex(r.stdout.strip()))
    assert str(uuid.UUID(got["request_id"])) == got["request_id"]
