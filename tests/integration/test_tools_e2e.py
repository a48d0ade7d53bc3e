"""Tool calling end to end: InferenceRequest v3 written by fastavro, produced
to the real Kafka, served by a real worker through modelgw-mockllm in the
OpenAI, Anthropic, Ollama, Bedrock Converse (SigV4-signed, streamed over
the AWS event stream) and Gemini dialects; the tool call comes back in the
response and in StreamChunks (pieces as the provider streams them), the
follow-up with the tool's result completes, also when the conversation fails
over from one provider to another (Gemini's calls answered elsewhere and the
other way round); a deployment without the `tools` capability never gets a
request with tools.

One worker (Redis state), one mock; deployments:
  oa     OpenAI dialect, tools
  an     Anthropic dialect, tools
  ol     Ollama dialect, tools, the cheapest
  br     Bedrock Converse, tools, low quality and dear (never picked unless pinned)
  gm     Gemini dialect, tools, low quality and dear (never picked unless pinned)
  down   Anthropic dialect, tools, best quality, always 503 (the mock's rule)
  plain  OpenAI dialect, no tools capability, quality above all that work
  gmtwin Gemini dialect, tools, model twin-model, always 503 (a rule on the Gemini path)
  antwin Anthropic dialect, tools, model twin-model, below gmtwin in quality
"""

import json
import uuid

import pytest

from gwlib import make_request, start_worker
from pipelib import PipeEnv, openai_dep, start_mock, wait_ready

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": json.dumps({"type": "object",
                              "properties": {"city": {"type": "string"},
                                             "days": {"type": "integer"}},
                              "required": ["city"]}),
}
ASK = {"role": "USER", "content": "What is the weather in Paris?", "name": None,
       "tool_calls": [], "tool_call_id": None}


@pytest.fixture
def setup(kafka_bootstrap, create_topic, unique_name, tmp_path, start_process, binary,
          redis_addr, redis_prefix, monkeypatch):
    # the worker signs Bedrock calls with these; the mock verifies the signatures
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDE2ETEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "e2e-test-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    env = PipeEnv(kafka_bootstrap, create_topic, unique_name, tmp_path)
    key_env = "MODELGW_E2E_GEMINI_KEY_" + uuid.uuid4().hex[:8].upper()
    monkeypatch.setenv(key_env, "gem-e2e-" + uuid.uuid4().hex)  # the mock wants x-goog-api-key
    mock = start_mock(start_process, binary, tmp_path,
                      rules=[{"model": "down-model", "fault": "status:503"},
                             {"model": "twin-model", "fault": "status:503",
                              "path": "/v1beta/models/{model}:generateContent"}],
                      args=["--aws-secret-env", "AWS_SECRET_ACCESS_KEY"])
    tools = ["text", "tools"]
    deps = [
        openai_dep("oa", mock.url, capabilities=tools, quality=0.5),
        dict(openai_dep("an", mock.url, capabilities=tools, quality=0.6), provider="anthropic"),
        dict(openai_dep("ol", mock.url, capabilities=tools, quality=0.7,
                        price_in_usd_per_mtok=0.5), provider="ollama"),
        dict(openai_dep("down", mock.url, capabilities=tools, quality=0.9), provider="anthropic"),
        openai_dep("plain", mock.url, capabilities=["text"], quality=0.95),
        dict(openai_dep("br", mock.url, capabilities=tools, quality=0.4,
                        price_in_usd_per_mtok=3.0, price_out_usd_per_mtok=6.0),
             provider="bedrock", region="us-east-1"),
        dict(openai_dep("gm", mock.url, capabilities=tools, quality=0.4,
                        price_in_usd_per_mtok=3.0), provider="gemini", api_key_env=key_env),
        dict(openai_dep("gmtwin", mock.url, capabilities=tools, quality=0.3,
                        price_in_usd_per_mtok=3.0), provider="gemini", api_key_env=key_env,
             model="twin-model"),
        dict(openai_dep("antwin", mock.url, capabilities=tools, quality=0.2,
                        price_in_usd_per_mtok=3.0), provider="anthropic", model="twin-model"),
    ]
    conf = env.pipeline_config("w1", redis_addr, redis_prefix, deps, sections={
        "retry": {"max_attempts_per_deployment": 1, "base_backoff_ms": 10,
                  "max_backoff_ms": 50},
        "breaker": {"consecutive_failures": 1000, "min_calls": 100000, "local_cache_ms": 0},
        "cache": {"enabled": False},
    })
    worker = start_worker(start_process, binary, conf, name="w1")
    wait_ready(worker)
    return env, mock, worker


def tool_req(model=None, messages=(ASK,), **kw):
    kw.setdefault("routing_strategy", "BEST_QUALITY")
    return make_request(messages=list(messages), tools=[WEATHER], model=model, **kw)


def follow_up(call, result='{"temp_c": 21}'):
    """The conversation after a tool call: the call, then its result."""
    return [ASK,
            {"role": "ASSISTANT", "content": "", "name": None, "tool_calls": [call],
             "tool_call_id": None},
            {"role": "TOOL", "content": result, "name": call["name"], "tool_calls": [],
             "tool_call_id": call["id"]}]


def assert_weather_call(resp, model_id):
    assert resp["error"] is None, resp
    assert resp["model_id"] == model_id, resp
    assert resp["finish_reason"] == "tool_calls", resp
    assert resp["content"] == ""
    (call,) = resp["tool_calls"]
    assert call["name"] == "get_weather" and call["id"]
    args = json.loads(call["arguments"])
    assert isinstance(args["city"], str) and isinstance(args["days"], int)
    return call


def test_tool_call_and_follow_up_each_dialect(setup):
    env, mock, worker = setup
    first = {m: tool_req(model=m) for m in ("oa", "an", "ol", "br", "gm")}
    env.produce("normal", first.values())
    got = env.responses_for([r["request_id"] for r in first.values()])
    calls = {m: assert_weather_call(got[r["request_id"]], m) for m, r in first.items()}
    # the same prompt and schema give the same arguments in every dialect
    assert len({c["arguments"] for c in calls.values()}) == 1

    second = {m: tool_req(model=m, messages=follow_up(calls[m])) for m in calls}
    # across dialects: Anthropic's call answered on Bedrock (toolUse / toolResult
    # blocks with its toolu_ id), Bedrock's on OpenAI
    cross = {"br": tool_req(model="br", messages=follow_up(calls["an"])),
             "oa": tool_req(model="oa", messages=follow_up(calls["br"]))}
    env.produce("normal", list(second.values()) + list(cross.values()))
    got = env.responses_for([r["request_id"] for r in list(second.values()) + list(cross.values())])
    for m, r in list(second.items()) + list(cross.items()):
        resp = got[r["request_id"]]
        assert resp["error"] is None and resp["model_id"] == m, resp
        assert resp["finish_reason"] == "stop" and resp["tool_calls"] == [], (m, resp)
        assert len(resp["content"].split()) > 0
    assert worker.running(), worker.describe()


def test_streamed_tool_call_chunks_assemble(setup):
    env, mock, worker = setup
    reqs = {m: tool_req(model=m, stream=True) for m in ("oa", "an", "ol", "br", "gm")}
    env.produce("normal", reqs.values())
    ids = {r["request_id"] for r in reqs.values()}
    got = env.responses_for(ids)
    chunks = env.collect("chunks", lambda cs: ids <= {c["request_id"] for c in cs
                                                      if c["is_final"]})
    for m, r in reqs.items():
        mine = sorted((c for c in chunks if c["request_id"] == r["request_id"]),
                      key=lambda c: c["seq"])
        assert [c["seq"] for c in mine] == list(range(len(mine)))
        assert mine[-1]["is_final"] and mine[-1]["finish_reason"] == "tool_calls"
        assembled = {}
        for c in mine:
            for d in c["tool_calls"]:
                a = assembled.setdefault(d["index"], {"id": None, "name": None, "arguments": ""})
                a["id"] = a["id"] or d["id"]
                a["name"] = a["name"] or d["name"]
                a["arguments"] += d["arguments"]
        assert [assembled[i] for i in sorted(assembled)] == got[r["request_id"]]["tool_calls"]
        assert_weather_call(got[r["request_id"]], m)
        # The pieces go out as they arrive (the first chunk at once, the rest
        # coalesced at 16 bytes), not as one whole delta on the final chunk:
        # the mock streams OpenAI and Anthropic arguments in 8-byte pieces,
        # Bedrock's in 8-byte pieces too, Ollama's and Gemini's calls whole.
        with_tools = [c for c in mine if c["tool_calls"]]
        heads = [d for c in mine for d in c["tool_calls"] if d["name"] is not None]
        assert len(heads) == 1, (m, mine)
        assert with_tools[0]["tool_calls"][0]["name"] == "get_weather"
        if m in ("ol", "gm"):
            assert len(with_tools) >= 1, mine
        else:
            assert len(with_tools) >= 2, (m, mine)
            assert not with_tools[0]["is_final"], (m, mine)
    # Bedrock answered over ConverseStream (the AWS event stream), signed
    assert mock.stats()["paths"].get("/model/br-model/converse-stream", 0) == 1


def test_failover_mid_conversation_keeps_tool_semantics(setup):
    env, mock, worker = setup
    # "down" ranks first by quality and answers 503: the tool call comes from
    # the next deployment with tools ("ol"), never from "plain"
    first = tool_req()
    env.produce("normal", [first])
    resp = env.responses_for([first["request_id"]])[first["request_id"]]
    call = assert_weather_call(resp, "ol")
    usage = env.usage_for([first["request_id"]])[first["request_id"]]
    assert usage["failovers"] == 1, usage

    # the follow-up prefers the OpenAI deployment's neighbour in quality order:
    # down (503) -> ol; pinned to "an" it is rendered as Anthropic tool_use /
    # tool_result blocks from the Ollama-made call
    second = [tool_req(messages=follow_up(call)),
              tool_req(model="an", messages=follow_up(call))]
    env.produce("normal", second)
    got = env.responses_for([r["request_id"] for r in second])
    a, b = (got[r["request_id"]] for r in second)
    assert a["error"] is None and a["model_id"] == "ol" and a["finish_reason"] == "stop", a
    assert b["error"] is None and b["model_id"] == "an" and b["finish_reason"] == "stop", b
    assert a["content"] and b["content"]

    # without tools, "plain" (best working quality) answers: it was eligible all along
    plain = make_request(text="no tools here", routing_strategy="BEST_QUALITY")
    env.produce("normal", [plain])
    assert env.responses_for([plain["request_id"]])[plain["request_id"]]["model_id"] == "plain"
    models = mock.stats()["models"]
    assert models.get("plain-model", 0) == 1, models
    assert models.get("down-model", 0) == 2, models


def test_gemini_conversation_fails_over_both_ways(setup):
    env, mock, worker = setup
    # Gemini gives no call ids: the gateway names the call; the follow-up
    # asks for twin-model, whose Gemini deployment (first by quality) answers
    # 503, and the Anthropic one continues the conversation from that id
    first = tool_req(model="gm")
    env.produce("normal", [first])
    resp = env.responses_for([first["request_id"]])[first["request_id"]]
    assert resp["provider"] == "gemini", resp
    call = assert_weather_call(resp, "gm")
    assert call["id"] == "call_0", call
    # billed at the deployment's configured prices (3.0 in, 2.0 out per Mtok)
    u = env.usage_for([first["request_id"]])[first["request_id"]]
    assert u["provider"] == "gemini" and u["prompt_tokens"] > 0 and u["completion_tokens"] > 0
    assert u["cost_usd"] == pytest.approx(
        (u["prompt_tokens"] * 3.0 + u["completion_tokens"] * 2.0) / 1e6), u
    moved = tool_req(model="twin-model", messages=follow_up(call))
    # and a call made by Anthropic is answered on Gemini (a functionResponse
    # named after the call it answers)
    theirs = tool_req(model="an")
    env.produce("normal", [moved, theirs])
    got = env.responses_for([moved["request_id"], theirs["request_id"]])
    r = got[moved["request_id"]]
    assert r["error"] is None and r["finish_reason"] == "stop" and r["content"], r
    assert r["model_id"] == "antwin" and r["provider"] == "anthropic", r
    attempts = env.usage_for([moved["request_id"]])[moved["request_id"]]
    assert attempts["failovers"] == 1, attempts
    an_call = assert_weather_call(got[theirs["request_id"]], "an")
    back = tool_req(model="gm", messages=follow_up(an_call))
    env.produce("normal", [back])
    r = env.responses_for([back["request_id"]])[back["request_id"]]
    assert r["error"] is None and r["model_id"] == "gm", r
    assert r["finish_reason"] == "stop" and r["tool_calls"] == [] and r["content"], r
    models = mock.stats()["models"]
    assert models.get("twin-model", 0) == 2 and models.get("gm-model", 0) == 2, models
    assert mock.stats()["paths"].get("/v1beta/models/twin-model:generateContent") == 1
    assert worker.running(), worker.describe()


def test_structured_output_and_unsupported_tool_choice(setup):
    env, mock, worker = setup
    # a structured-output request works on the OpenAI deployment ...
    fmt = {"type": "json_schema", "name": "weather", "schema": WEATHER["parameters"],
           "strict": True}
    ok = make_request(text="weather as JSON", model="oa", response_format=fmt,
                      routing_strategy="BEST_QUALITY")
    # ... and "required" cannot be honoured by Ollama: ranked first (cheapest)
    # it fails over to the next deployment with tools instead of sending it;
    # pinned to it, the answer names why
    forced = tool_req(tool_choice="required", routing_strategy="CHEAPEST")
    pinned = tool_req(model="ol", tool_choice="required")
    env.produce("normal", [ok, forced, pinned])
    got = env.responses_for([ok["request_id"], forced["request_id"], pinned["request_id"]])
    r = got[ok["request_id"]]
    assert r["error"] is None and r["finish_reason"] == "stop", r
    doc = json.loads(r["content"])
    assert isinstance(doc["city"], str) and isinstance(doc["days"], int)
    r = got[forced["request_id"]]
    assert r["error"] is None and r["model_id"] in ("oa", "an"), r
    assert r["tool_calls"][0]["name"] == "get_weather"
    usage = env.usage_for([forced["request_id"]])[forced["request_id"]]
    assert usage["failovers"] >= 1, usage
    r = got[pinned["request_id"]]
    assert r["error"] is not None, r
    attempts = json.loads(r["error"]["details"]["attempts"])
    assert [(a["deployment"], a["code"]) for a in attempts] == [("ol", "E4213")]
    assert mock.stats()["models"].get("ol-model", 0) == 0  # nothing was sent to Ollama
