"""`modelgw --dev`: the embedded Kafka (librdkafka mock cluster) and the mock
provider, with nothing else running. A plain Kafka client talks to it through
the bootstrap address the worker writes to $MODELGW_RUN_DIR/dev.bootstrap."""

import signal
import time

from gwlib import decode, encode, make_request


def test_dev_mode_answers_a_request(start_process, binary, tmp_path, wait_until):
    run_dir = tmp_path / "run"
    worker = start_process([binary("modelgw"), "--dev", "--set", "kafka.group_id=dev-test"],
                           env={"MODELGW_RUN_DIR": str(run_dir)}, name="dev")
    boot_file = run_dir / "dev.bootstrap"
    wait_until(lambda: boot_file.exists() and boot_file.read_text().strip(), timeout=30,
               what="dev.bootstrap")
    bootstrap = boot_file.read_text().strip()
    assert bootstrap in worker.stdout
    from confluent_kafka import Consumer, Producer

    req = make_request(text="hello dev", stream=True)
    p = Producer({"bootstrap.servers": bootstrap})
    p.produce("llm.requests.normal", key=req["request_id"].encode(), value=encode("request", req))
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "dev-reader",
                  "auto.offset.reset": "earliest"})
    c.subscribe(["llm.responses"])
    got = None
    deadline = time.monotonic() + 60
    while got is None and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got = decode("response", m.value())
    c.close()
    assert got is not None, worker.describe()
    assert got["request_id"] == req["request_id"]
    assert got["error"] is None and got["content"]
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.describe()
