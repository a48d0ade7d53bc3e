"""modelgw-cli reading outputs a real worker writes in the Confluent wire
format (`schema_registry.register_outputs = true`, `kafka.output_framing =
"confluent"`), with the real schema registry of tools/services
(MODELGW_REGISTRY): `ask` (plain and streamed) and `tail` decode them through
`--schema-registry`; a record with an id the registry does not know is a
named `undecodable` line naming the id, and the CLI goes on; without
`--schema-registry` the same records are named errors that say what is
missing."""

import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest

REGISTRY = os.environ.get("MODELGW_REGISTRY", "http://127.0.0.1:18081/apis/ccompat/v7")
UNKNOWN_ID = 2_000_000_000  # no registry of the tests hands out ids that high


@pytest.fixture(scope="module")
def registry_url():
    try:
        with urllib.request.urlopen(REGISTRY + "/subjects", timeout=5) as r:
            assert r.status == 200
    except (OSError, urllib.error.URLError) as exc:
        pytest.fail(f"schema registry at {REGISTRY} (MODELGW_REGISTRY) is not reachable: {exc}; "
                    "start it with `tools/services start registry`")
    return REGISTRY


@pytest.fixture
def gw(binary, source_dir, kafka_bootstrap, unique_name, create_topic, start_process,
       registry_url):
    prefix = unique_name("clicf")
    for t in ("requests.high", "requests.normal", "requests.low", "chunks", "usage", "dlq"):
        create_topic(f"{prefix}.{t}")
    create_topic(f"{prefix}.responses", 1)  # one partition: records in the order written
    args = [str(binary("modelgw")), "-c", str(source_dir / "config" / "dev.conf"),
            "--set", "worker.dev=false", "--set", f"kafka.bootstrap={kafka_bootstrap}",
            "--set", f"kafka.group_id={unique_name('grp')}", "--set", "mock.latency_ms=0",
            "--set", "mock.ttft_ms=0", "--set", "mock.chunk_delay_ms=0",
            "--set", "log.level=warn",
            "--set", f"schema_registry.url={registry_url}",
            "--set", "schema_registry.register_outputs=true",
            "--set", "kafka.output_framing=confluent"]
    for t in ("high", "normal", "low"):
        args += ["--set", f"kafka.topics.{t}={prefix}.requests.{t}"]
    for t in ("responses", "chunks", "usage", "dlq"):
        args += ["--set", f"kafka.topics.{t}={prefix}.{t}"]
    start_process(args, name="worker")
    env = dict(os.environ, MODELGW_KAFKA=kafka_bootstrap)
    return {"prefix": prefix, "env": env, "cli": str(binary("modelgw-cli")),
            "registry": registry_url, "bootstrap": kafka_bootstrap}


def cli(gw, *args, timeout=120, registry=True):
    extra = ["--schema-registry", gw["registry"]] if registry else []
    return subprocess.run([gw["cli"], *args, "--topic-prefix", gw["prefix"], *extra],
                          env=gw["env"], capture_output=True, text=True, timeout=timeout)


def produce_raw(gw, topic, key, value):
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": gw["bootstrap"]})
    p.produce(topic, key=key, value=value)
    assert p.flush(30) == 0


def raw_first_byte_and_id(gw, topic):
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": gw["bootstrap"], "group.id": "raw",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    try:
        for _ in range(60):
            m = c.poll(1.0)
            if m is not None and m.error() is None and m.value()[:1] == b"\x00" \
                    and int.from_bytes(m.value()[1:5], "big") != UNKNOWN_ID:
                return m.value()[0], int.from_bytes(m.value()[1:5], "big")
    finally:
        c.close()
    pytest.fail(f"no Confluent-framed record of the worker on {topic}")


def test_cli_reads_confluent_outputs(gw):
    responses = f"{gw['prefix']}.responses"
    # First on the responses topic: a record whose schema id the registry lacks.
    produce_raw(gw, responses, b"not-ours",
                b"\x00" + UNKNOWN_ID.to_bytes(4, "big") + b"\x02junk")

    r = cli(gw, "ask", "--json", "--timeout", "60", "hello in the confluent framing")
    assert r.returncode == 0, r.stderr
    resp = json.loads(r.stdout.strip().splitlines()[-1])
    assert resp["error"] is None and resp["content"], resp
    first, sid = raw_first_byte_and_id(gw, responses)
    assert first == 0 and sid > 0  # the worker did write the Confluent framing

    r = cli(gw, "ask", "--stream", "--timeout", "60", "stream it in the confluent framing")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip(), "no streamed text"

    # tail from the beginning: the unknown id is named, the CLI goes on to the
    # worker's two responses.
    r = cli(gw, "tail", "responses", "--from-beginning", "--count", "3", "--timeout", "60")
    assert r.returncode == 0, (r.stdout, r.stderr)
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == 3, lines
    assert lines[0]["undecodable"] == "E4804", lines[0]
    assert lines[0]["error"] == "CODEC_UNKNOWN_SCHEMA"
    assert lines[0]["schema_id"] == UNKNOWN_ID
    assert str(UNKNOWN_ID) in lines[0]["why"]
    assert all(x.get("request_id") and x["error"] is None for x in lines[1:]), lines
    assert lines[1]["request_id"] == resp["request_id"]

    r = cli(gw, "tail", "usage", "--from-beginning", "--count", "2", "--timeout", "60")
    assert r.returncode == 0, (r.stdout, r.stderr)
    usage = [json.loads(x) for x in r.stdout.splitlines()]
    assert resp["request_id"] in {u["request_id"] for u in usage}, usage
    assert all(u["outcome"] == "success" for u in usage), usage

    r = cli(gw, "tail", "chunks", "--from-beginning", "--count", "1", "--timeout", "60")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "seq" in json.loads(r.stdout.splitlines()[0])

    # Without a registry: named errors that say what is missing, never a crash.
    r = cli(gw, "tail", "responses", "--from-beginning", "--count", "3", "--timeout", "60",
            registry=False)
    assert r.returncode == 0, (r.stdout, r.stderr)
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["error"] for x in lines] == ["CODEC_UNKNOWN_SCHEMA"] * 3, lines
    assert all("--schema-registry" in x["why"] for x in lines[1:]), lines


def bench(gw, *args, registry=True):
    extra = ["--schema-registry", gw["registry"]] if registry else []
    bench_bin = gw["cli"].replace("modelgw-cli", "modelgw-bench")
    r = subprocess.run([bench_bin, "--topic-prefix", gw["prefix"], "--json", "--timeout", "60",
                        *args, *extra], env=gw["env"], capture_output=True, text=True,
                       timeout=180)
    return r, json.loads(r.stdout.strip().splitlines()[-1])


def test_bench_reads_confluent_outputs(gw):
    """modelgw-bench measures a worker that writes the Confluent framing: with
    --schema-registry every answer decodes; without it every answer is counted
    as undecodable (and as an error), with the reason named, not as a success."""
    r, res = bench(gw, "--count", "40", "--concurrency", "8")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert res["answered"] == 40 and res["errors"] == 0 and res["undecodable"] == 0, res

    r, res = bench(gw, "--count", "10", "--concurrency", "4", registry=False)
    assert r.returncode == 1, (r.stdout, r.stderr)  # answered with errors
    assert res["answered"] == 10 and res["undecodable"] == 10 and res["errors"] == 10, res

    r = subprocess.run([gw["cli"].replace("modelgw-cli", "modelgw-bench"), "--topic-prefix",
                        gw["prefix"], "--timeout", "60", "--count", "3"], env=gw["env"],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "undecodable  3 responses" in r.stdout and "--schema-registry" in r.stdout, r.stdout
