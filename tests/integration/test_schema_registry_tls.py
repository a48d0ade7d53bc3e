"""The schema registry's TLS options (docs/schemas.md, "Registry auth and TLS")
against a real TLS endpoint: a proxy run by this test that speaks TLS 1.2+,
requires a client certificate signed by the test's CA, and forwards every
request to the real registry (MODELGW_REGISTRY). Certificates are made by the
test (the cryptography package), the client's private key encrypted with a
password the worker reads from the variable named by
schema_registry.tls.key_password_env; basic auth (username, password_env)
goes inside the same connection.

A worker given the CA, the client certificate and the key registers its
output schemas through the proxy (the proxy saw the client certificate's
name) and starts; one that trusts only the system's CAs, and one without a
client certificate, cannot (the start fails, the reason in the log);
tls.verify = false accepts the unknown server certificate.
"""

import base64
import datetime
import ipaddress
import json
import os
import ssl
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fleet import fleet, wait_for  # noqa: F401 (fixture)

REGISTRY = os.environ.get("MODELGW_REGISTRY", "http://127.0.0.1:18081/apis/ccompat/v7")
CLIENT_CN = "modelgw-registry-client"
KEY_PASSWORD = "registry-key-SECRET-7"
BASIC_PASSWORD = "registry-basic-SECRET-3"


def make_certs(d):
    """CA, server (127.0.0.1) and client certificates as PEM files in d."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def build(cn, key, issuer, issuer_key, ca=False, san=None, usage=None):
        b = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(issuer)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(hours=1))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        if usage:
            b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    def write(path, data):
        path.write_bytes(data)
        return str(path)

    def pem(cert):
        return cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(key, password=None):
        enc = (serialization.BestAvailableEncryption(password.encode()) if password
               else serialization.NoEncryption())
        return key.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.PKCS8, enc)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = build("modelgw test CA", ca_key, name("modelgw test CA"), ca_key, ca=True)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = build("127.0.0.1", srv_key, ca.subject, ca_key,
                san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
                usage=ExtendedKeyUsageOID.SERVER_AUTH)
    cli_key = ec.generate_private_key(ec.SECP256R1())
    cli = build(CLIENT_CN, cli_key, ca.subject, ca_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    return {"ca": write(d / "ca.pem", pem(ca)),
            "server_cert": write(d / "server.pem", pem(srv)),
            "server_key": write(d / "server.key", key_pem(srv_key)),
            "client_cert": write(d / "client.pem", pem(cli)),
            "client_key": write(d / "client.key", key_pem(cli_key, KEY_PASSWORD))}


class TlsProxy:
    """TLS in front of the registry; records (method, path, client CN) per request."""

    def __init__(self, certs):
        proxy = self
        self.seen = []
        self.auth = []
        self.lock = threading.Lock()

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self, method):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n) if n else None
                peer = self.connection.getpeercert() or {}
                cn = dict(x[0] for x in peer.get("subject", ())).get("commonName")
                with proxy.lock:
                    proxy.seen.append((method, self.path, cn))
                    proxy.auth.append(self.headers.get("Authorization"))
                req = urllib.request.Request(REGISTRY + self.path, data=body, method=method,
                                             headers={"Content-Type": self.headers.get(
                                                 "Content-Type", "application/json")})
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        status, data = r.status, r.read()
                except urllib.error.HTTPError as e:
                    status, data = e.code, e.read()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self.forward("GET")

            def do_POST(self):
                self.forward("POST")

            def log_message(self, *args):
                pass

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(certs["server_cert"], certs["server_key"])
        ctx.load_verify_locations(certs["ca"])
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.set_alpn_protocols(["http/1.1"])
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.server.handle_error = lambda *a: None  # refused handshakes are expected
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def snapshot(self):
        with self.lock:
            return list(self.seen)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(tmp_path):
    try:
        with urllib.request.urlopen(REGISTRY + "/subjects", timeout=5) as r:
            assert r.status == 200
    except (OSError, urllib.error.URLError) as exc:
        pytest.fail(f"schema registry at {REGISTRY} (MODELGW_REGISTRY) is not reachable: {exc}; "
                    "start it with `tools/services start registry`")
    certs = make_certs(tmp_path)
    p = TlsProxy(certs)
    p.certs = certs
    yield p
    p.close()


def mock_dep():
    return [{"id": "tls", "provider": "mock", "model": "tls-model", "capabilities": ["text"]}]


def events(proc):
    return [json.loads(line) for line in proc.stderr_path.read_text().splitlines()
            if line.startswith("{")]


def start(fleet, name, registry):
    over = {"schema_registry": dict({"register_outputs": True, "register_timeout_ms": 1000,
                                     "timeout_ms": 2000}, **registry),
            "kafka": {"output_framing": "confluent"}}
    return fleet.start_worker(name, mock_dep(), over=over)


def started(proc):
    wait_for(lambda: not proc.running() or any(e["event"] == "worker_started"
                                                for e in events(proc)), 60, "the start")
    return proc.running()


def test_registry_tls_options(fleet, proxy, monkeypatch):
    monkeypatch.setenv("MODELGW_TEST_REGISTRY_KEY_PASSWORD", KEY_PASSWORD)
    monkeypatch.setenv("MODELGW_TEST_REGISTRY_PASSWORD", BASIC_PASSWORD)
    c = proxy.certs
    tls = {"ca_file": c["ca"], "cert_file": c["client_cert"], "key_file": c["client_key"],
           "key_password_env": "MODELGW_TEST_REGISTRY_KEY_PASSWORD"}
    full = {"url": proxy.url, "username": "gw", "password_env": "MODELGW_TEST_REGISTRY_PASSWORD",
            "tls": tls}
    no_ca = dict(full, tls={k: v for k, v in tls.items() if k != "ca_file"})

    # CA + client certificate with its encrypted key: registered through the proxy.
    w = start(fleet, "w-full", full)
    assert started(w), w.describe()
    assert w.stop() == 0, w.describe()
    posts = [s for s in proxy.snapshot() if s[0] == "POST"]
    assert len(posts) == 3 and all(cn == CLIENT_CN for _, _, cn in posts), posts
    assert {p for _, p, _ in posts} == {f"/subjects/{fleet.topics[t]}-value/versions"
                                        for t in ("responses", "chunks", "usage")}
    want = "Basic " + base64.b64encode(f"gw:{BASIC_PASSWORD}".encode()).decode()
    assert proxy.auth == [want] * 3  # basic auth rides inside the TLS connection
    log = w.stderr_path.read_text()
    assert KEY_PASSWORD not in log and BASIC_PASSWORD not in log
    assert [e for e in events(w) if e["event"] == "schema_registry"][0]["tls_client_cert"] == "yes"

    # The system's CAs do not know the test CA: no start.
    n = len(proxy.snapshot())
    w = start(fleet, "w-noca", no_ca)
    assert w.wait(60) == 1, w.describe()
    retry = [e for e in events(w) if e["event"] == "schema_register_retry"]
    assert retry and "certificate" in retry[0]["why"].lower(), retry
    assert len(proxy.snapshot()) == n  # never got past the handshake

    # Verification off: the unknown server certificate is accepted.
    w = start(fleet, "w-noverify", dict(no_ca, tls=dict(no_ca["tls"], verify=False)))
    assert started(w), w.describe()
    assert w.stop() == 0, w.describe()
    assert len(proxy.snapshot()) == n + 3

    # No client certificate: the proxy refuses the handshake.
    w = start(fleet, "w-nocert", {"url": proxy.url, "tls": {"ca_file": c["ca"]}})
    assert w.wait(60) == 1, w.describe()
    assert [e for e in events(w) if e["event"] == "schema_register_failed"], w.describe()
    assert len(proxy.snapshot()) == n + 3

    # The wrong key password: the key does not load, nothing reaches the proxy.
    monkeypatch.setenv("MODELGW_TEST_REGISTRY_KEY_PASSWORD", "not-the-password")
    w = start(fleet, "w-badpass", full)
    assert w.wait(60) == 1, w.describe()
    retry = [e for e in events(w) if e["event"] == "schema_register_retry"]
    assert retry and "private key" in retry[0]["why"], retry
    assert len(proxy.snapshot()) == n + 3
