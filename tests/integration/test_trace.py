"""Trace context end to end (docs/observability.md, "Traces").

A real worker on real Kafka sends its spans as OTLP/HTTP JSON to a small
collector run by this test (a Python HTTP server that records every export
request), and calls a small OpenAI-compatible provider run by this test that
records the headers of every call (modelgw-mockllm does not report request
headers). Checked: a request's traceparent reaches the provider call as a
child span of the gateway's request span, with its tracestate; a request
without one gets a new trace id; the outputs' and the usage event's headers,
the request_done log line, the usage event's trace_id and span_id fields and
the exported spans all carry the same trace id;
the spans (request, each provider attempt, cache and limit decisions) are
linked parent to child and carry the GenAI attribute names; an unsampled
trace exports nothing.
"""

import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fleet import Tail, fleet, make_request, openai_deployment, wait_for  # noqa: F401 (fixture)

TP_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class Recorder:
    """An HTTP server on a free port in a thread; handle(handler, body) answers."""

    def __init__(self, handle):
        rec = self
        self.calls = []
        self.lock = threading.Lock()

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with rec.lock:
                    rec.calls.append((self.path, {k.lower(): v for k, v in self.headers.items()},
                                      body))
                status, out = handle(self.path, self.headers, body)
                data = json.dumps(out).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def snapshot(self):
        with self.lock:
            return list(self.calls)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def provider_answer(seen_flaky):
    """OpenAI chat completions; a prompt with "flaky" fails once per request id (503)."""

    def handle(path, headers, body):
        req = json.loads(body)
        text = req["messages"][-1]["content"]
        rid = headers.get("x-request-id")
        if "flaky" in text and rid not in seen_flaky:
            seen_flaky.add(rid)
            return 503, {"error": {"message": "try again", "type": "overloaded"}}
        return 200, {"id": "c-" + uuid.uuid4().hex, "object": "chat.completion",
                     "model": req["model"],
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": "ok: " + text}}],
                     "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}

    return handle


def spans_of(collector):
    """Every exported span as a dict with attributes flattened, plus the resource."""
    out = []
    for path, headers, body in collector.snapshot():
        assert path == "/v1/traces"
        assert headers["content-type"] == "application/json"
        doc = json.loads(body)  # every export is one valid JSON document
        for rs in doc["resourceSpans"]:
            res = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}
            for ss in rs["scopeSpans"]:
                assert ss["scope"]["name"] == "modelgw"
                for s in ss["spans"]:
                    attrs = {}
                    for a in s["attributes"]:
                        (kind, v), = a["value"].items()
                        attrs[a["key"]] = int(v) if kind == "intValue" else v
                    out.append(dict(s, attrs=attrs, resource=res))
    return out


@pytest.fixture
def servers():
    flaky = set()
    provider = Recorder(provider_answer(flaky))
    collector = Recorder(lambda p, h, b: (200, {}))
    yield provider, collector
    provider.close()
    collector.close()


def test_trace_context_end_to_end(fleet, servers):
    provider, collector = servers
    dep = openai_deployment("tr-a", f"http://127.0.0.1:{provider.port}", model="model-a")
    over = {"log": {"level": "debug"}, "cache": {"enabled": True},
            "retry": {"base_backoff_ms": 10, "max_backoff_ms": 20},
            "trace": {"endpoint": f"http://127.0.0.1:{collector.port}/v1/traces",
                      "service_name": "modelgw-test", "flush_interval_ms": 100,
                      "batch_spans": 4}}
    worker = fleet.start_worker("w0", [dep], over=over)
    fleet.wait_assigned([worker])
    responses, usage = Tail(fleet, "responses"), Tail(fleet, "usage")

    t1, p1 = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    a = make_request(text="hello traced")
    b = make_request(text="flaky untraced")
    e_trace = uuid.uuid4().hex
    e = make_request(text="hello unsampled", enable_cache=False)
    fleet.produce("normal", [a], headers=[("traceparent", f"00-{t1}-{p1}-01".encode()),
                                          ("tracestate", b"vendor=abc,other=1")])
    fleet.produce("normal", [b])
    fleet.produce("normal", [e], headers=[("traceparent",
                                           f"00-{e_trace}-{uuid.uuid4().hex[:16]}-00".encode())])
    responses.wait_ids([a["request_id"], b["request_id"], e["request_id"]])
    # The same prompt again, after the first answer is cached: a cache hit.
    d = make_request(text="hello traced")
    fleet.produce("normal", [d])
    ids = [a["request_id"], b["request_id"], d["request_id"], e["request_id"]]
    recs = {r["request_id"]: r for r in responses.wait_ids(ids)}
    assert recs[d["request_id"]]["cached"] is True
    uses = {u["request_id"]: u for u in usage.wait_ids(ids)}

    # Outputs: traceparent names the trace, with the gateway's request span as parent.
    out_tp = {}
    for rid in ids:
        m = TP_RE.match(recs[rid]["_headers"]["traceparent"])
        assert m, recs[rid]["_headers"]
        assert uses[rid]["_headers"]["traceparent"] == recs[rid]["_headers"]["traceparent"]
        out_tp[rid] = m.groups()
    assert out_tp[a["request_id"]][0] == t1 and out_tp[a["request_id"]][1] != p1
    assert recs[a["request_id"]]["_headers"]["tracestate"] == "vendor=abc,other=1"
    assert out_tp[e["request_id"]][0] == e_trace and out_tp[e["request_id"]][2] == "00"
    new_traces = {out_tp[b["request_id"]][0], out_tp[d["request_id"]][0]}
    assert len(new_traces) == 2 and not new_traces & {t1, e_trace, "0" * 32}
    trace_of = {rid: tp[0] for rid, tp in out_tp.items()}
    span_of = {rid: tp[1] for rid, tp in out_tp.items()}
    # The usage event's own fields (UsageEvent v2) name the same trace and request span:
    # the caller's trace id when it sent one, a new one otherwise (also unsampled).
    for rid in ids:
        assert uses[rid]["trace_id"] == trace_of[rid], uses[rid]
        assert uses[rid]["span_id"] == span_of[rid], uses[rid]
    assert uses[a["request_id"]]["trace_id"] == t1
    assert uses[e["request_id"]]["trace_id"] == e_trace

    # Provider calls: traceparent = the trace with a fresh child span id per attempt.
    calls = {}
    for path, headers, body in provider.snapshot():
        assert path == "/v1/chat/completions"
        calls.setdefault(headers["x-request-id"], []).append(headers)
    assert d["request_id"] not in calls  # the cache answered
    assert len(calls[b["request_id"]]) == 2  # 503, then the answer
    sent = {}
    for rid in (a["request_id"], b["request_id"], e["request_id"]):
        for h in calls[rid]:
            m = TP_RE.match(h["traceparent"])
            assert m and m.group(1) == trace_of[rid], h
            assert m.group(2) != span_of[rid]
            sent.setdefault(rid, []).append(m.group(2))
    assert len(set(sent[b["request_id"]])) == 2
    assert calls[a["request_id"]][0]["tracestate"] == "vendor=abc,other=1"
    assert "tracestate" not in calls[b["request_id"]][0]

    # Spans: wait for the four request spans of the sampled traces.
    sampled = [a["request_id"], b["request_id"], d["request_id"]]

    def request_spans():
        return [s for s in spans_of(collector) if s["name"] == "modelgw.request"]

    wait_for(lambda: {s["attrs"].get("modelgw.request_id") for s in request_spans()}
             >= set(sampled), 30, "request spans of the sampled requests")
    spans = spans_of(collector)
    assert not [s for s in spans if s["traceId"] == e_trace], "an unsampled trace was exported"
    assert all(s["resource"]["service.name"] == {"stringValue": "modelgw-test"} for s in spans)
    by_trace = {}
    for s in spans:
        by_trace.setdefault(s["traceId"], []).append(s)
        assert int(s["endTimeUnixNano"]) >= int(s["startTimeUnixNano"]) > 0

    for rid in sampled:
        ts = by_trace[trace_of[rid]]
        req = [s for s in ts if s["name"] == "modelgw.request"]
        assert len(req) == 1
        req = req[0]
        assert req["spanId"] == span_of[rid] and req["kind"] == 5
        assert req["attrs"]["messaging.system"] == "kafka"
        assert req["attrs"]["messaging.destination.name"] == fleet.topics["normal"]
        assert req["attrs"]["gen_ai.operation.name"] == "chat"
        children = [s for s in ts if s is not req]
        assert all(s["parentSpanId"] == req["spanId"] for s in children)
        names = sorted(s["name"] for s in children)
        assert "modelgw.limits" in names and "modelgw.cache" in names, names
        lim = next(s for s in children if s["name"] == "modelgw.limits")
        assert lim["attrs"]["modelgw.limit.result"] == "allowed"
        attempts = [s for s in children if s["kind"] == 3]
        assert sorted(s["spanId"] for s in attempts) == sorted(sent.get(rid, []))
        for s in attempts:
            assert s["name"] == "chat model-a"
            assert s["attrs"]["gen_ai.provider.name"] == "openai"
            assert s["attrs"]["gen_ai.request.model"] == "model-a"
            assert s["attrs"]["modelgw.deployment"] == "tr-a"
        ok = [s for s in attempts if s["attrs"]["http.response.status_code"] == 200]
        if rid != d["request_id"]:
            assert len(ok) == 1
            assert ok[0]["attrs"]["gen_ai.usage.input_tokens"] == 7
            assert ok[0]["attrs"]["gen_ai.usage.output_tokens"] == 3
            assert req["attrs"]["gen_ai.usage.input_tokens"] == 7
    assert by_trace[t1][0]["traceId"] == t1
    req_a = next(s for s in by_trace[t1] if s["name"] == "modelgw.request")
    assert req_a["parentSpanId"] == p1  # the caller's span
    req_b = next(s for s in by_trace[trace_of[b["request_id"]]] if s["name"] == "modelgw.request")
    assert "parentSpanId" not in req_b  # a new trace: the request span is its root
    failed = [s for s in by_trace[trace_of[b["request_id"]]]
              if s["kind"] == 3 and s["attrs"]["http.response.status_code"] == 503]
    assert len(failed) == 1 and failed[0]["status"]["code"] == 2
    assert failed[0]["attrs"]["error.type"].startswith("E42")
    cache = {rid: next(s for s in by_trace[trace_of[rid]] if s["name"] == "modelgw.cache")
             for rid in (a["request_id"], d["request_id"])}
    assert cache[a["request_id"]]["attrs"]["modelgw.cache.result"] == "miss"
    assert cache[d["request_id"]]["attrs"]["modelgw.cache.result"] == "hit"
    assert cache[d["request_id"]]["attrs"]["modelgw.cache.tier"] == "exact"

    # Logs: request_done carries the same trace id and span id.
    assert worker.stop() == 0, worker.describe()
    done = {}
    for line in worker.stderr_path.read_text().splitlines():
        ev = json.loads(line)
        if ev["event"] == "request_done":
            done[ev["request_id"]] = ev
    for rid in ids:
        assert done[rid]["trace_id"] == trace_of[rid]
        assert done[rid]["span_id"] == span_of[rid]


def test_collector_down_costs_spans_not_requests(fleet, servers):
    """Exports to a port where nothing listens fail; the worker answers every
    request, logs the failure, and stops cleanly."""
    provider, _ = servers
    from fleet import free_port
    dead = free_port()
    dep = openai_deployment("tr-b", f"http://127.0.0.1:{provider.port}", model="model-b")
    over = {"trace": {"endpoint": f"http://127.0.0.1:{dead}/v1/traces",
                      "flush_interval_ms": 50, "batch_spans": 2, "queue_spans": 8,
                      "timeout_ms": 500}}
    worker = fleet.start_worker("w0", [dep], over=over)
    fleet.wait_assigned([worker])
    responses = Tail(fleet, "responses")
    reqs = [make_request(text=f"q{i}", enable_cache=False) for i in range(20)]
    fleet.produce("normal", reqs)
    got = responses.wait_ids([r["request_id"] for r in reqs])
    assert all(r["error"] is None for r in got)
    assert worker.stop() == 0, worker.describe()
    events = [json.loads(line) for line in worker.stderr_path.read_text().splitlines()]
    failed = [ev for ev in events if ev["event"] == "trace_export_failed"]
    assert failed and failed[0]["error"] != "", failed
    stop = [ev for ev in events if ev["event"] == "trace_export_stopping"]
    assert len(stop) == 1 and stop[0]["spans_exported"] == "0"
