"""The admin endpoint and the secrets of a real worker under hostile probes:
a flood of hanging connections never locks /health and /ready out,
/metrics wants its bearer token, libmicrohttpd's messages are JSON log
lines, and secrets given through *_env never reach the log."""

import json
import socket
import time
import urllib.error
import urllib.request

from gwlib import GwEnv, ids_of, make_request, start_worker


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path, token=None, timeout=5):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, OSError) as e:  # not listening (yet), refused, timed out
        return 0, str(e)


def test_probes_answer_through_a_flood_and_metrics_want_the_token(
        kafka_bootstrap, create_topic, unique_name, tmp_path, start_process, binary, wait_until):
    env = GwEnv(kafka_bootstrap, create_topic, unique_name, tmp_path)
    port = free_port()
    token = "tok-" + unique_name("t")
    sasl = "sasl-secret-" + unique_name("s")
    rack = "r" * 700  # kafka.properties values were cut at 512 bytes
    conf = env.config(
        kafka={"sasl_password_env": "MGW_TEST_SASL_PASSWORD",
               "properties": [f"client.rack={rack}"]},
        extra=f'admin: {{ port = {port}; max_connections = 32; connection_timeout_s = 3; '
              f'token_env = "MGW_TEST_ADMIN_TOKEN"; }};')
    worker = start_process([binary("modelgw"), "-c", conf], name="worker",
                           env={"MGW_TEST_ADMIN_TOKEN": token, "MGW_TEST_SASL_PASSWORD": sasl})
    wait_until(lambda: get(port, "/ready")[0] == 200, 60, "/ready 200")

    # 150 connections that never finish their headers, five times the budget.
    flood = []
    for _ in range(150):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        flood.append(s)
    try:
        for _ in range(5):
            status, body = get(port, "/health")
            assert status == 200 and json.loads(body)["live"] is True, body
            assert get(port, "/ready")[0] == 200
            for s in flood[:10]:  # keep some of them dripping
                try:
                    s.sendall(b"a")
                except OSError:
                    pass
        reqs = [make_request(text=f"during flood {i}") for i in range(30)]
        env.produce("normal", reqs)
        env.collect("responses", lambda rs: set(ids_of(rs)) >= {r["request_id"] for r in reqs})
    finally:
        for s in flood:
            s.close()

    assert get(port, "/metrics")[0] == 401
    assert get(port, "/metrics", token="wrong")[0] == 401
    status, text = get(port, "/metrics", token=token)
    assert status == 200 and "modelgw_requests_total" in text
    assert worker.stop() == 0, worker.describe()
    err = worker.stderr
    lines = [line for line in err.splitlines() if line.strip()]
    for line in lines:
        json.loads(line)  # every line JSON, libmicrohttpd's included
    assert any('"admin_http"' in line for line in lines), "libmicrohttpd's messages were logged"
    assert token not in err and sasl not in err, "no secret in the log"
