"""Smoke test of librdkafka against the real broker (issue 2).

tests/integration/kafka_smoke.c produces messages with headers through an
idempotent acks=all producer into a fresh 3-partition topic and consumes them
back in a fresh consumer group, checking every payload, key and header.
The Python client then reads the same topic independently as a cross-check.
"""

from confluent_kafka import Consumer

COUNT = 300


def test_librdkafka_roundtrip(kafka_bootstrap, create_topic, unique_name, binary, run_process):
    topic = create_topic(partitions=3)
    res = run_process(
        [binary("kafka_smoke"), "--bootstrap", kafka_bootstrap, "--topic", topic,
         "--group", unique_name("group"), "--count", COUNT],
        timeout=180,
    )
    assert f"produced {COUNT}, consumed {COUNT}, partitions 3, ok" in res.stdout, res.stderr


def test_python_reads_what_c_wrote(kafka_bootstrap, create_topic, unique_name, binary, run_process):
    topic = create_topic(partitions=3)
    run_process(
        [binary("kafka_smoke"), "--bootstrap", kafka_bootstrap, "--topic", topic,
         "--group", unique_name("group"), "--count", 50],
        timeout=180,
    )
    consumer = Consumer({
        "bootstrap.servers": kafka_bootstrap,
        "group.id": unique_name("pygroup"),
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    seen = {}
    try:
        consumer.subscribe([topic])
        for _ in range(600):
            if len(seen) == 50:
                break
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            headers = dict(msg.headers() or [])
            seq = int(headers["seq"])
            seen[seq] = (msg.key(), msg.value(), headers)
    finally:
        consumer.close()
    assert sorted(seen) == list(range(50))
    for seq, (key, value, headers) in seen.items():
        assert key == f"key-{seq}".encode()
        assert value == f"payload {seq} of {topic}".encode()
        assert headers["marker"] == b"modelgw-smoke"
        assert headers["binary"] == b"\x00\x01\x02\x03"


def test_smoke_rejects_bad_arguments(binary, run_process):
    res = run_process([binary("kafka_smoke"), "--count", "5"], check=False, timeout=30)
    assert res.returncode == 2
    assert "usage" in res.stderr
