"""Helpers for the worker's integration tests.

Avro requests are encoded with fastavro from the repository's schemas/ and
published to the real Kafka with confluent_kafka; worker processes are started
from MODELGW_BUILD_DIR with a generated libconfig file whose topics and
consumer group are unique to the test; outputs (responses, chunks, usage, DLQ)
are collected from the beginning of their topics and decoded.

Framing: requests go out bare (the worker decodes with framing=auto: a bare
datum whose request_id is not empty never starts with 0x00 or 0xC3); outputs
are read in whatever framing the worker wrote (single-object by default).
"""

import io
import json
import pathlib
import time
import uuid

import fastavro
import pytest

SOURCE_DIR = pathlib.Path(__file__).resolve().parents[2]
SCHEMA_DIR = SOURCE_DIR / "schemas"
TIERS = ("high", "normal", "low")


def _load_schema(name):
    return fastavro.parse_schema(json.loads((SCHEMA_DIR / f"{name}.avsc").read_text()))


SCHEMAS = {
    "request": _load_schema("InferenceRequest"),
    "response": _load_schema("InferenceResponse"),
    "chunk": _load_schema("StreamChunk"),
    "usage": _load_schema("UsageEvent"),
}


def encode(kind, record):
    out = io.BytesIO()
    fastavro.schemaless_writer(out, SCHEMAS[kind], record)
    return out.getvalue()


def decode(kind, data):
    if data[:2] == b"\xc3\x01":
        data = data[10:]
    elif data[:1] == b"\x00":
        data = data[5:]
    return fastavro.schemaless_reader(io.BytesIO(data), SCHEMAS[kind])


def make_request(request_id=None, text="hello", **fields):
    """A v2 InferenceRequest dict with defaults; fields override."""
    req = {
        "request_id": request_id or str(uuid.uuid4()),
        "agent_did": "did:example:test",
        "messages": [{"role": "USER", "content": text, "name": None}],
        "system_prompt": None,
        "temperature": 0.5,
        "max_tokens": 64,
        "capabilities": [],
        "enable_cache": True,
        "metadata": {},
        "routing_strategy": "BALANCED",
        "stream": False,
        "model": None,
        "deadline_ms": None,
        "reply_topic": None,
        "batch_id": None,
        "custom_id": None,
        "tenant_id": None,
    }
    req.update(fields)
    return req


def libconfig_value(v):
    """One libconfig value: scalar, [array], (list of groups) or inline { group }."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        if v and isinstance(v[0], dict):
            return "(" + ", ".join(libconfig_value(x) for x in v) + ")"
        return "[" + ", ".join(libconfig_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + " ".join(f"{k} = {libconfig_value(x)};" for k, x in v.items()) + " }"
    return str(v)


def libconfig_text(settings):
    """Nested dicts -> libconfig text, one setting per line: a dict is a group,
    a list of dicts a list of groups, anything else a scalar or an array."""

    def group(d, indent):
        pad = "  " * indent
        out = []
        for key, v in d.items():
            if isinstance(v, dict):
                out.append(f"{pad}{key}: {{\n{group(v, indent + 1)}\n{pad}}};")
            elif isinstance(v, (list, tuple)) and v and isinstance(v[0], dict):
                items = ",\n".join(f"{pad}  {{\n{group(x, indent + 2)}\n{pad}  }}" for x in v)
                out.append(f"{pad}{key} = (\n{items}\n{pad});")
            else:
                out.append(f"{pad}{key} = {libconfig_value(v)};")
        return "\n".join(out)

    return group(settings, 0) + "\n"


class GwEnv:
    """Unique topics and group for one test, and the worker config that uses them."""

    def __init__(self, bootstrap, create_topic, unique_name, tmp_path, partitions=3):
        self.bootstrap = bootstrap
        self.tmp_path = tmp_path
        self.group = unique_name("group")
        self.topics = {t: create_topic(unique_name(f"req-{t}"), partitions) for t in TIERS}
        for out in ("responses", "chunks", "usage", "dlq"):
            self.topics[out] = create_topic(unique_name(out), partitions)
        from confluent_kafka import Producer

        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})

    def config(self, name="worker", worker=None, kafka=None, mock=None, extra=""):
        """Writes a libconfig file and returns its path."""
        w = {"max_in_flight": 256, "drain_timeout_ms": 20000, "max_tokens_limit": 4096,
             "chunk_coalesce_ms": 5, "chunk_coalesce_bytes": 64}
        w.update(worker or {})
        k = {"bootstrap": self.bootstrap, "group_id": self.group, "client_id": name,
             "commit_interval_ms": 200, "session_timeout_ms": 6000,
             "max_partition_runahead": 1000}
        k.update(kafka or {})
        m = {"latency_ms": 0, "ttft_ms": 0, "chunk_delay_ms": 0, "failure_rate": 0.0}
        m.update(mock or {})

        def block(d):
            return "\n".join(f"  {key} = {libconfig_value(v)};" for key, v in d.items())

        topics = "\n".join(f"    {t} = {json.dumps(self.topics[t])};" for t in self.topics)
        text = f"""
kafka: {{
{block(k)}
  topics: {{
{topics}
  }};
}};
worker: {{
{block(w)}
}};
state: {{ backend = "memory"; }};
mock: {{
{block(m)}
}};
log: {{ level = "info"; }};
deployments = (
  {{ id = "mock-a"; provider = "mock"; model = "mock-a-1"; capabilities = ["text"];
     context_window = 8192; price_in_usd_per_mtok = 1.0; price_out_usd_per_mtok = 2.0;
     quality = 0.5; latency_prior_ms = 10.0; ttft_prior_ms = 5.0; }},
  {{ id = "mock-b"; provider = "mock"; model = "mock-b-1"; capabilities = ["text", "code"];
     context_window = 8192; price_in_usd_per_mtok = 3.0; price_out_usd_per_mtok = 6.0;
     quality = 0.8; latency_prior_ms = 10.0; ttft_prior_ms = 5.0; }}
);
{extra}
"""
        path = self.tmp_path / f"{name}.conf"
        path.write_text(text)
        return path

    def produce(self, tier, reqs, headers=None):
        for r in reqs:
            self.producer.produce(self.topics[tier], key=r["request_id"].encode(),
                                  value=encode("request", r), headers=headers)
            self.producer.poll(0)
        self.producer.flush(30)

    def produce_raw(self, tier, value, key=None, headers=None, partition=None):
        kw = {} if partition is None else {"partition": partition}
        self.producer.produce(self.topics[tier], key=key, value=value, headers=headers, **kw)
        self.producer.flush(30)

    def collect(self, out, until, timeout=90, kind=None):
        """Reads topic `out` from the beginning, decoding each value, until
        until(records) is true; fails the test after timeout seconds."""
        from confluent_kafka import Consumer

        kind = kind or {"responses": "response", "chunks": "chunk", "usage": "usage"}.get(out)
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "c-" + uuid.uuid4().hex,
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe([self.topics[out]])
        records = []
        deadline = time.monotonic() + timeout
        try:
            while not until(records):
                if time.monotonic() > deadline:
                    pytest.fail(f"timed out collecting {out}: have {len(records)} records")
                for m in c.consume(500, 0.5):
                    if m.error():
                        continue
                    rec = decode(kind, m.value()) if kind else {"value": m.value()}
                    rec["_headers"] = {k: (v.decode() if v is not None else None)
                                       for k, v in (m.headers() or [])}
                    rec["_key"] = m.key()
                    rec["_partition"] = m.partition()
                    rec["_offset"] = m.offset()
                    rec["_timestamp_ms"] = m.timestamp()[1]
                    records.append(rec)
        finally:
            c.close()
        return records

    def collect_all(self, out, quiet_s=3.0, timeout=60, kind=None):
        """Everything in topic `out` (read until nothing new came for quiet_s)."""
        state = {"n": -1, "since": time.monotonic()}

        def quiet(records):
            if len(records) != state["n"]:
                state["n"], state["since"] = len(records), time.monotonic()
            return time.monotonic() - state["since"] >= quiet_s

        return self.collect(out, quiet, timeout=timeout, kind=kind)

    def committed(self, group=None):
        """{(tier, partition): committed offset} for the worker group."""
        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group or self.group,
                      "enable.auto.commit": False})
        try:
            tps = []
            for t in TIERS:
                md = c.list_topics(self.topics[t], timeout=10).topics[self.topics[t]]
                tps += [TopicPartition(self.topics[t], p) for p in md.partitions]
            res = c.committed(tps, timeout=15)
            names = {self.topics[t]: t for t in TIERS}
            # A partition without a commit (OFFSET_INVALID, negative) counts as 0.
            return {(names[tp.topic], tp.partition): max(tp.offset, 0) for tp in res}
        finally:
            c.close()


def ids_of(records):
    return [r["request_id"] for r in records]


def start_worker(start_process, binary, conf, name="worker", sets=()):
    args = [binary("modelgw"), "-c", conf]
    for s in sets:
        args += ["--set", s]
    return start_process(args, name=name)
