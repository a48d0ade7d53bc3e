"""modelgw-cli against the real Kafka broker and a real worker (`modelgw`
with the mock provider): batch on a 1,000-line file (all results matched by
custom_id), batch resumed after killing the CLI mid-way, ask/produce/tail
smoke tests, and the documented exit codes."""

import json
import os
import signal
import subprocess
import time

import pytest


def worker_args(binary, source_dir, bootstrap, prefix, group):
    args = [str(binary("modelgw")), "-c", str(source_dir / "config" / "dev.conf"),
            "--set", "worker.dev=false", "--set", f"kafka.bootstrap={bootstrap}",
            "--set", f"kafka.group_id={group}", "--set", "mock.latency_ms=0",
            "--set", "mock.ttft_ms=0", "--set", "mock.chunk_delay_ms=0",
            "--set", "log.level=warn"]
    for t in ("high", "normal", "low"):
        args += ["--set", f"kafka.topics.{t}={prefix}.requests.{t}"]
    for t in ("responses", "chunks", "usage", "dlq"):
        args += ["--set", f"kafka.topics.{t}={prefix}.{t}"]
    return args


@pytest.fixture
def gw(binary, source_dir, kafka_bootstrap, unique_name, create_topic, start_process):
    prefix = unique_name("cli")
    for t in ("requests.high", "requests.normal", "requests.low", "responses", "chunks",
              "usage", "dlq"):
        create_topic(f"{prefix}.{t}")
    start_process(worker_args(binary, source_dir, kafka_bootstrap, prefix, unique_name("grp")),
                  name="worker")
    env = dict(os.environ, MODELGW_KAFKA=kafka_bootstrap)
    return {"prefix": prefix, "env": env, "cli": str(binary("modelgw-cli"))}


def cli(gw, *args, timeout=120, input=None):
    return subprocess.run([gw["cli"], *args, "--topic-prefix", gw["prefix"]], env=gw["env"],
                          capture_output=True, text=True, timeout=timeout, input=input)


def write_batch(path, n):
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"custom_id": f"task-{i}", "method": "POST",
                                "url": "/v1/chat/completions",
                                "body": {"model": "auto", "max_tokens": 16,
                                         "messages": [{"role": "user",
                                                       "content": f"question {i}"}]}}) + "\n")


def read_results(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_batch_1000_matched_by_custom_id(gw, tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_batch(inp, 1000)
    res = cli(gw, "batch", str(inp), "-o", str(out), "--timeout", "60")
    assert res.returncode == 0, res.stderr
    results = read_results(out)
    assert len(results) == 1000
    assert {r["custom_id"] for r in results} == {f"task-{i}" for i in range(1000)}
    for r in results:
        assert r["response"]["status_code"] == 200
        assert r["response"]["body"]["object"] == "chat.completion"
        assert r["response"]["body"]["choices"][0]["message"]["content"]


def test_batch_resume_after_kill(gw, tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_batch(inp, 1000)
    proc = subprocess.Popen([gw["cli"], "batch", str(inp), "-o", str(out), "--topic-prefix",
                             gw["prefix"], "--max-pending", "50", "--no-progress"],
                            env=gw["env"], stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and (not out.exists() or len(read_results(out)) < 100):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = {r["custom_id"] for r in read_results(out)}
    assert 0 < len(first) < 1000, "the kill should land mid-way"
    batch_id = json.loads((tmp_path / "out.jsonl.state").read_text().splitlines()[0])["batch_id"]
    res = cli(gw, "batch", str(inp), "-o", str(out), "--timeout", "60")
    assert res.returncode == 0, res.stderr
    assert batch_id in res.stderr
    results = read_results(out)
    ids = [r["custom_id"] for r in results]
    assert len(ids) == 1000 and len(set(ids)) == 1000
    # a third run has nothing left to do
    res = cli(gw, "batch", str(inp), "-o", str(out), "--timeout", "5")
    assert res.returncode == 0 and "0 to ask" in res.stderr


def test_ask_answer_json_and_errors(gw):
    res = cli(gw, "ask", "--timeout", "30", "Hello, how are you?")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip()
    res = cli(gw, "ask", "--json", "--timeout", "30", "What is 2+2?")
    assert res.returncode == 0, res.stderr
    resp = json.loads(res.stdout)
    assert resp["provider"] == "mock" and resp["content"]
    res = cli(gw, "ask", "--temperature", "5", "--timeout", "30", "x")
    assert res.returncode == 1 and "E4004" in res.stderr
    res = cli(gw, "ask", "--priority", "urgent", "x")
    assert res.returncode == 2
    res = cli(gw, "ask", "--stream", "--max-tokens", "40", "--timeout", "30",
              "Explain machine learning")
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.split()) > 3


def test_ask_timeout_exit_code(binary, kafka_bootstrap, unique_name):
    # no worker consumes this prefix: the answer never comes
    res = subprocess.run([str(binary("modelgw-cli")), "ask", "--topic-prefix",
                          unique_name("noworker"), "--timeout", "2", "hi"],
                         env=dict(os.environ, MODELGW_KAFKA=kafka_bootstrap),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 3, res.stderr


def test_kafka_unreachable_exit_code(binary):
    res = subprocess.run([str(binary("modelgw-cli")), "tail", "responses", "--bootstrap",
                          "127.0.0.1:1", "--count", "1"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 4


def test_produce_and_tail(gw):
    tail = subprocess.Popen([gw["cli"], "tail", "responses", "--topic-prefix", gw["prefix"],
                             "--count", "3", "--timeout", "60"], env=gw["env"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # tail assigns the partitions at their end first
    lines = "\n".join([
        json.dumps({"request_id": "p-1", "prompt": "one"}),
        "not json",
        json.dumps({"request_id": "p-2", "messages": [{"role": "USER", "content": "two"}],
                    "priority": "high"}),
        json.dumps({"request_id": "p-3", "prompt": "three", "priority": "low"}),
    ])
    res = cli(gw, "produce", input=lines)
    assert res.returncode == 2, res.stderr  # one invalid line, the rest published
    assert "line 2:" in res.stderr and "published 3" in res.stderr
    out, err = tail.communicate(timeout=90)
    assert tail.returncode == 0, err
    got = {json.loads(line)["request_id"] for line in out.splitlines()}
    assert got == {"p-1", "p-2", "p-3"}
