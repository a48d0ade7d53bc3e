"""Provider calls over TLS to a private endpoint, over HTTP/2 and HTTP/1.1.

A real TLS upstream (tools/bench/tls-upstream.mjs, Node.js: ALPN h2 and
http/1.1 on one port, OpenAI dialect) with a certificate from a CA made for
the test: the worker verifies it through the deployment's `tls.ca_file`, and
the upstream reports which HTTP version each call came in on.

* `http_version = "auto"`: every call uses HTTP/2 and the calls share a few
  TLS connections (multiplexed), streamed and not;
* `http_version = "1.1"`: every call uses HTTP/1.1;
* without the CA file the certificate is refused: the calls fail with the
  named transport error, the worker stays up.
"""

import json
import pathlib
import shutil
import subprocess
import time
import urllib.request
import ssl

import pytest

from gwlib import make_request, start_worker
from pipelib import PipeEnv, openai_dep, wait_ready

ROOT = pathlib.Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("node") is None or shutil.which("openssl") is None,
                                reason="needs node (the TLS upstream) and openssl (its CA)")


def make_ca(d):
    """A CA and a server certificate for 127.0.0.1 signed by it."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=modelgw test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    return d / "ca.pem", d / "server.pem", d / "server.key"


@pytest.fixture
def upstream(tmp_path, start_process):
    ca, cert, key = make_ca(tmp_path)
    pf = tmp_path / "upstream.port"
    proc = start_process(["node", ROOT / "tools/bench/tls-upstream.mjs", "--cert", cert,
                          "--key", key, "--port", "0", "--port-file", pf], name="tls-upstream")
    deadline = time.monotonic() + 20
    while not (pf.exists() and pf.read_text()) and time.monotonic() < deadline:
        assert proc.running(), proc.describe()
        time.sleep(0.05)
    url = f"https://127.0.0.1:{pf.read_text()}"
    ctx = ssl.create_default_context(cafile=str(ca))

    def stats():
        with urllib.request.urlopen(url + "/stats", context=ctx, timeout=5) as r:
            return json.loads(r.read())
    return url, ca, stats


def run_worker(env, start_process, binary, redis_addr, redis_prefix, dep, name):
    conf = env.pipeline_config(name, redis_addr, redis_prefix, [dep],
                               sections={"cache": {"enabled": False}}, backend="memory")
    w = start_worker(start_process, binary, conf, name=name)
    wait_ready(w)
    return w


@pytest.mark.parametrize("version", ["auto", "1.1"])
def test_private_ca_and_http_version(kafka_bootstrap, create_topic, unique_name, tmp_path,
                                     start_process, binary, redis_addr, redis_prefix, upstream,
                                     version):
    url, ca, stats = upstream
    env = PipeEnv(kafka_bootstrap, create_topic, unique_name, tmp_path)
    dep = openai_dep("tls", url, http_version=version, tls={"ca_file": str(ca)})
    w = run_worker(env, start_process, binary, redis_addr, redis_prefix, dep, "w-" + version)
    reqs = [make_request(text=f"over tls {i}", enable_cache=False, stream=i % 2 == 1)
            for i in range(40)]
    env.produce("normal", reqs)
    got = env.responses_for([r["request_id"] for r in reqs])
    assert all(r["error"] is None for r in got.values()), [r["error"] for r in got.values()][:3]
    assert all(r["content"].split() == [f"tok{i}" for i in range(16)] for r in got.values())
    s = stats()
    want = "2.0" if version == "auto" else "1.1"
    assert s["requests"] == {want: 40}, s
    if version == "auto":
        # multiplexed: far fewer TLS connections than calls (one stats call of ours)
        assert s["tls_connections"] <= 10, s
    assert w.running(), w.describe()


def test_unknown_ca_is_refused(kafka_bootstrap, create_topic, unique_name, tmp_path,
                               start_process, binary, redis_addr, redis_prefix, upstream):
    url, _, stats = upstream
    env = PipeEnv(kafka_bootstrap, create_topic, unique_name, tmp_path)
    w = run_worker(env, start_process, binary, redis_addr, redis_prefix,
                   openai_dep("tls", url), "w-noca")
    req = make_request(text="who signed this", enable_cache=False)
    env.produce("normal", [req])
    r = env.responses_for([req["request_id"]])[req["request_id"]]
    assert r["error"] is not None
    assert "E4209" in json.dumps(r["error"]), r["error"]  # PROVIDER_TRANSPORT in the attempt log
    assert stats()["requests"] == {}, "a call got through an unverified certificate"
    assert w.running(), w.describe()
