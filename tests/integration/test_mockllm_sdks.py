"""modelgw-mockllm speaks the real dialects: the official `openai`,
`anthropic` and `google-genai` SDKs, the `ollama` client and boto3's
`bedrock-runtime` client read its answers, streamed and not, with the same
text both ways. Also its fault injection, /stats and embeddings.

Needs only the build (MODELGW_BUILD_DIR); no Kafka or Redis.
"""

import json
import subprocess
import urllib.error
import urllib.request

import anthropic
import boto3
import botocore.config
import botocore.exceptions
import ollama
import openai
import pytest

PROMPT = [{"role": "user", "content": "What is the capital of France?"}]
BEDROCK_SECRET = "mock-secret/with+slash"


@pytest.fixture(scope="module")
def mock_url(request):
    import os
    import pathlib

    build = pathlib.Path(os.environ.get("MODELGW_BUILD_DIR", "build"))
    exe = build / "modelgw-mockllm"
    if not exe.exists():
        pytest.fail(f"{exe} not built (set MODELGW_BUILD_DIR)")
    proc = subprocess.Popen(
        # Bedrock requests must carry SigV4 signatures made with this secret
        [str(exe), "--port", "0", "--tokens", "12", "--aws-secret-env", "MOCK_AWS_SECRET"],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, MOCK_AWS_SECRET=BEDROCK_SECRET),
    )
    line = proc.stdout.readline()
    assert line.startswith("listening on "), line
    url = "http://" + line.split()[-1]
    yield url
    proc.terminate()
    assert proc.wait(timeout=10) == 0


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def post(url):
    req = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_openai_sdk_plain_and_stream(mock_url):
    client = openai.OpenAI(base_url=mock_url + "/v1", api_key="sk-test", max_retries=0)
    full = client.chat.completions.create(model="gpt-test", messages=PROMPT)
    text = full.choices[0].message.content
    assert text and len(text.split()) == 12
    assert full.choices[0].finish_reason == "stop"
    assert full.usage.completion_tokens == 12
    assert full.usage.total_tokens == full.usage.prompt_tokens + 12

    parts, usage = [], None
    stream = client.chat.completions.create(
        model="gpt-test",
        messages=PROMPT,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                parts.append(choice.delta.content)
    assert "".join(parts) == text
    assert usage is not None and usage.completion_tokens == 12

    short = client.chat.completions.create(model="gpt-test", messages=PROMPT, max_tokens=3)
    assert short.choices[0].finish_reason == "length"
    assert short.choices[0].message.content == " ".join(text.split()[:3])


def test_anthropic_sdk_plain_and_stream(mock_url):
    client = anthropic.Anthropic(base_url=mock_url, api_key="ant-test", max_retries=0)
    msg = client.messages.create(
        model="claude-test", max_tokens=100, system="Be brief", messages=PROMPT
    )
    text = "".join(b.text for b in msg.content)
    assert len(text.split()) == 12
    assert msg.stop_reason == "end_turn"
    assert msg.usage.output_tokens == 12

    with client.messages.stream(
        model="claude-test", max_tokens=100, system="Be brief", messages=PROMPT
    ) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 12

    short = client.messages.create(model="claude-test", max_tokens=4, messages=PROMPT)
    assert short.stop_reason == "max_tokens"


def test_ollama_client_plain_and_stream(mock_url):
    client = ollama.Client(host=mock_url)
    resp = client.chat(model="llama-test", messages=PROMPT, stream=False)
    text = resp["message"]["content"]
    assert len(text.split()) == 12
    assert resp["done"] is True
    assert resp["eval_count"] == 12 and resp["prompt_eval_count"] > 0

    parts, last = [], None
    for part in client.chat(model="llama-test", messages=PROMPT, stream=True):
        parts.append(part["message"]["content"])
        last = part
    assert "".join(parts) == text
    assert last["done"] is True and last["eval_count"] == 12


def test_embeddings(mock_url):
    client = openai.OpenAI(base_url=mock_url + "/v1", api_key="sk-test", max_retries=0)
    a = client.embeddings.create(model="emb", input=["hello", "world"])
    assert len(a.data) == 2 and len(a.data[0].embedding) == 64
    b = client.embeddings.create(model="emb", input="hello", encoding_format="float")
    assert b.data[0].embedding == pytest.approx(a.data[0].embedding, abs=1e-5)
    norm = sum(x * x for x in a.data[0].embedding)
    assert norm == pytest.approx(1.0, abs=1e-3)
    e = ollama.Client(host=mock_url).embed(model="emb", input=["hello"])
    assert len(e["embeddings"][0]) == 64


def test_sdk_errors_from_faults(mock_url):
    client = openai.OpenAI(base_url=mock_url + "/v1", api_key="sk-test", max_retries=0)
    with pytest.raises(openai.RateLimitError) as ei:
        client.chat.completions.create(
            model="gpt-test", messages=PROMPT, extra_headers={"x-mock-fault": "429:7"}
        )
    assert ei.value.response.headers["retry-after"] == "7"
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="fault-status:503", messages=PROMPT)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": "x [mock-fault:context]"}],
        )
    aclient = anthropic.Anthropic(base_url=mock_url, api_key="ant-test", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as ai:
        aclient.messages.create(
            model="fault-echo-auth", max_tokens=10, messages=PROMPT
        )
    assert "ant-test" in str(ai.value)  # the mock echoes it; the gateway must redact it
    with pytest.raises(anthropic.APIError):
        with aclient.messages.stream(
            model="fault-sse-error", max_tokens=10, messages=PROMPT
        ) as s:
            "".join(s.text_stream)


def test_fail_n_times_then_succeed_with_sdk_retries(mock_url):
    post(mock_url + "/stats/reset")
    client = openai.OpenAI(base_url=mock_url + "/v1", api_key="sk-test", max_retries=2)
    rid = "sdk-retry-1"
    resp = client.chat.completions.create(
        model="gpt-test",
        messages=PROMPT,
        extra_headers={"x-mock-fault": "fail:2:503,", "x-request-id": rid},
    )
    assert resp.choices[0].message.content
    stats = get_json(mock_url + "/stats")
    assert stats["request_ids"][rid] == 3
    assert stats["paths"]["/v1/chat/completions"] == 3
    assert stats["models"]["gpt-test"] == 3


def test_health_and_unknown_route(mock_url):
    assert get_json(mock_url + "/health") == {"status": "ok"}
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(mock_url + "/nope", timeout=5)
    assert ei.value.code == 404


# --- tool calling and structured output, as the SDKs see them -------------------

WEATHER_PARAMS = {"type": "object",
                  "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                  "required": ["city"]}
OPENAI_TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city", "parameters": WEATHER_PARAMS}}]
ANTHROPIC_TOOLS = [{"name": "get_weather", "description": "Weather for a city",
                    "input_schema": WEATHER_PARAMS}]


def check_weather_args(args):
    assert set(args) == {"city", "days"}
    assert isinstance(args["city"], str) and isinstance(args["days"], int)


def test_openai_sdk_tool_calls(mock_url):
    client = openai.OpenAI(base_url=mock_url + "/v1", api_key="sk-test", max_retries=0)
    full = client.chat.completions.create(model="gpt-test", messages=PROMPT, tools=OPENAI_TOOLS)
    choice = full.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather" and call.id
    check_weather_args(json.loads(call.function.arguments))

    # streamed: the SDK's own accumulation of the deltas gives the same call
    with client.chat.completions.stream(model="gpt-test", messages=PROMPT,
                                        tools=OPENAI_TOOLS) as stream:
        pieces = [e for e in stream if e.type == "tool_calls.function.arguments.delta"]
        final = stream.get_final_completion()
    assert len(pieces) > 1
    scall = final.choices[0].message.tool_calls[0]
    assert (scall.id, scall.function.name, scall.function.arguments) == \
        (call.id, "get_weather", call.function.arguments)
    assert final.choices[0].finish_reason == "tool_calls"

    # the follow-up with the tool's result is answered in text
    follow = PROMPT + [choice.message.model_dump(exclude_none=True),
                       {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'}]
    done = client.chat.completions.create(model="gpt-test", messages=follow, tools=OPENAI_TOOLS)
    assert done.choices[0].finish_reason == "stop"
    assert len(done.choices[0].message.content.split()) == 12

    # tool_choice: a named function, and none
    forced = client.chat.completions.create(
        model="gpt-test", messages=PROMPT, tools=OPENAI_TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert forced.choices[0].message.tool_calls[0].function.name == "get_weather"
    none = client.chat.completions.create(model="gpt-test", messages=PROMPT, tools=OPENAI_TOOLS,
                                          tool_choice="none")
    assert none.choices[0].message.tool_calls is None
    assert none.choices[0].finish_reason == "stop"


def test_openai_sdk_structured_output(mock_url):
    client = openai.OpenAI(base_url=mock_url + "/v1", api_key="sk-test", max_retries=0)
    fmt = {"type": "json_schema",
           "json_schema": {"name": "weather", "schema": WEATHER_PARAMS, "strict": True}}
    full = client.chat.completions.create(model="gpt-test", messages=PROMPT, response_format=fmt)
    check_weather_args(json.loads(full.choices[0].message.content))
    parts = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="gpt-test", messages=PROMPT, response_format=fmt, stream=True) if c.choices]
    assert "".join(parts) == full.choices[0].message.content
    obj = client.chat.completions.create(model="gpt-test", messages=PROMPT,
                                         response_format={"type": "json_object"})
    assert isinstance(json.loads(obj.choices[0].message.content), dict)


def test_anthropic_sdk_tool_use(mock_url):
    client = anthropic.Anthropic(base_url=mock_url, api_key="ant-test", max_retries=0)
    msg = client.messages.create(model="claude-test", max_tokens=100, messages=PROMPT,
                                 tools=ANTHROPIC_TOOLS)
    assert msg.stop_reason == "tool_use"
    (block,) = [b for b in msg.content if b.type == "tool_use"]
    assert block.name == "get_weather" and block.id.startswith("toolu_")
    check_weather_args(block.input)

    # streamed: input_json deltas, accumulated by the SDK into the same input
    with client.messages.stream(model="claude-test", max_tokens=100, messages=PROMPT,
                                tools=ANTHROPIC_TOOLS) as stream:
        partial = [e.partial_json for e in stream if e.type == "input_json"]
        final = stream.get_final_message()
    assert len(partial) > 1
    (sblock,) = [b for b in final.content if b.type == "tool_use"]
    assert (sblock.id, sblock.name, sblock.input) == (block.id, block.name, block.input)
    assert final.stop_reason == "tool_use"

    # the follow-up with a tool_result block is answered in text
    follow = PROMPT + [
        {"role": "assistant", "content": [b.model_dump() for b in msg.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id,
                                      "content": '{"temp_c": 21}'}]}]
    done = client.messages.create(model="claude-test", max_tokens=100, messages=follow,
                                  tools=ANTHROPIC_TOOLS)
    assert done.stop_reason == "end_turn"
    assert len("".join(b.text for b in done.content).split()) == 12

    forced = client.messages.create(model="claude-test", max_tokens=100, messages=PROMPT,
                                    tools=ANTHROPIC_TOOLS,
                                    tool_choice={"type": "tool", "name": "get_weather"})
    assert forced.content[0].type == "tool_use"
    with pytest.raises(anthropic.BadRequestError):  # input_schema is required
        client.messages.create(model="claude-test", max_tokens=100, messages=PROMPT,
                               tools=[{"name": "x"}])


def test_ollama_client_tools(mock_url):
    client = ollama.Client(host=mock_url)
    resp = client.chat(model="llama-test", messages=PROMPT, tools=OPENAI_TOOLS, stream=False)
    (call,) = resp["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    check_weather_args(call["function"]["arguments"])
    calls = [c for part in client.chat(model="llama-test", messages=PROMPT, tools=OPENAI_TOOLS,
                                       stream=True)
             for c in (part["message"].get("tool_calls") or [])]
    assert [c["function"]["arguments"] for c in calls] == [call["function"]["arguments"]]
    done = client.chat(model="llama-test", stream=False, tools=OPENAI_TOOLS, messages=PROMPT + [
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": '{"temp_c": 21}'}])
    assert not done["message"].get("tool_calls") and len(done["message"]["content"].split()) == 12
    fmt = client.chat(model="llama-test", messages=PROMPT, format=WEATHER_PARAMS, stream=False)
    check_weather_args(json.loads(fmt["message"]["content"]))


def test_azure_openai_sdk(mock_url):
    """openai's AzureOpenAI client: deployment in the path, api-version in the query."""
    client = openai.AzureOpenAI(azure_endpoint=mock_url, api_key="az-test",
                                api_version="2024-10-21", max_retries=0)
    full = client.chat.completions.create(model="my-gpt4o-deployment", messages=PROMPT)
    assert len(full.choices[0].message.content.split()) == 12
    assert full.choices[0].finish_reason == "stop"
    parts = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="my-gpt4o-deployment", messages=PROMPT, stream=True) if c.choices]
    assert "".join(parts) == full.choices[0].message.content
    calls = client.chat.completions.create(model="my-gpt4o-deployment", messages=PROMPT,
                                           tools=OPENAI_TOOLS)
    assert calls.choices[0].message.tool_calls[0].function.name == "get_weather"
    # without an api-version the route does not exist, as on Azure
    req = urllib.request.Request(mock_url + "/openai/deployments/x/chat/completions",
                                 data=b'{"model":"x","messages":[]}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 404


# --- AWS Bedrock Converse, through boto3 (SigV4-signed, event stream) ----------

BEDROCK_TOOLS = {"tools": [{"toolSpec": {"name": "get_weather", "description": "Weather for a city",
                                         "inputSchema": {"json": WEATHER_PARAMS}}}]}
BEDROCK_PROMPT = [{"role": "user", "content": [{"text": "What is the capital of France?"}]}]
BEDROCK_MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"  # ':' is escaped in the path


def bedrock_client(mock_url, secret=BEDROCK_SECRET, token=None):
    return boto3.client("bedrock-runtime", endpoint_url=mock_url, region_name="us-east-1",
                        aws_access_key_id="AKIDMOCKTEST", aws_secret_access_key=secret,
                        aws_session_token=token,
                        config=botocore.config.Config(retries={"max_attempts": 1}))


def test_bedrock_boto3_converse(mock_url):
    client = bedrock_client(mock_url)
    full = client.converse(modelId=BEDROCK_MODEL, messages=BEDROCK_PROMPT,
                           system=[{"text": "Be brief."}], inferenceConfig={"maxTokens": 100})
    text = full["output"]["message"]["content"][0]["text"]
    assert len(text.split()) == 12
    assert full["stopReason"] == "end_turn"
    assert full["usage"]["outputTokens"] == 12
    assert full["usage"]["totalTokens"] == full["usage"]["inputTokens"] + 12

    # ConverseStream: boto3 decodes the event stream frames (and checks their CRCs)
    events = list(client.converse_stream(modelId=BEDROCK_MODEL, messages=BEDROCK_PROMPT,
                                         system=[{"text": "Be brief."}],
                                         inferenceConfig={"maxTokens": 100})["stream"])
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    parts = [e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e]
    assert "".join(parts) == text
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    assert events[-1]["metadata"]["usage"]["outputTokens"] == 12

    short = client.converse(modelId=BEDROCK_MODEL, messages=BEDROCK_PROMPT,
                            inferenceConfig={"maxTokens": 3})
    assert short["stopReason"] == "max_tokens"


def test_bedrock_boto3_tool_use(mock_url):
    client = bedrock_client(mock_url)
    full = client.converse(modelId=BEDROCK_MODEL, messages=BEDROCK_PROMPT, toolConfig=BEDROCK_TOOLS)
    assert full["stopReason"] == "tool_use"
    (block,) = full["output"]["message"]["content"]
    use = block["toolUse"]
    assert use["name"] == "get_weather" and use["toolUseId"].startswith("tooluse_")
    check_weather_args(use["input"])

    # streamed: contentBlockStart names the call, the input comes in pieces
    events = list(client.converse_stream(modelId=BEDROCK_MODEL, messages=BEDROCK_PROMPT,
                                         toolConfig=BEDROCK_TOOLS)["stream"])
    start = [e["contentBlockStart"]["start"]["toolUse"] for e in events if "contentBlockStart" in e]
    assert start == [{"toolUseId": use["toolUseId"], "name": "get_weather"}]
    pieces = [e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events
              if "contentBlockDelta" in e]
    assert len(pieces) > 1 and json.loads("".join(pieces)) == use["input"]
    assert [e["messageStop"]["stopReason"] for e in events if "messageStop" in e] == ["tool_use"]

    # the follow-up with a toolResult block is answered in text
    follow = BEDROCK_PROMPT + [
        full["output"]["message"],
        {"role": "user", "content": [{"toolResult": {"toolUseId": use["toolUseId"],
                                                     "content": [{"text": '{"temp_c": 21}'}]}}]}]
    done = client.converse(modelId=BEDROCK_MODEL, messages=follow, toolConfig=BEDROCK_TOOLS)
    assert done["stopReason"] == "end_turn"
    assert len(done["output"]["message"]["content"][0]["text"].split()) == 12

    forced = client.converse(modelId=BEDROCK_MODEL, messages=BEDROCK_PROMPT,
                             toolConfig=dict(BEDROCK_TOOLS,
                                             toolChoice={"tool": {"name": "get_weather"}}))
    assert forced["output"]["message"]["content"][0]["toolUse"]["name"] == "get_weather"
    # toolUse / toolResult blocks without a toolConfig are refused, as on Bedrock
    with pytest.raises(client.exceptions.ValidationException):
        client.converse(modelId=BEDROCK_MODEL, messages=follow)


def test_bedrock_errors(mock_url):
    client = bedrock_client(mock_url)
    with pytest.raises(client.exceptions.ThrottlingException):
        client.converse(modelId="fault-status:429", messages=BEDROCK_PROMPT)
    # an exception message in the middle of the event stream
    stream = client.converse_stream(modelId="fault-sse-error", messages=BEDROCK_PROMPT)["stream"]
    with pytest.raises(botocore.exceptions.EventStreamError) as ei:
        list(stream)
    assert "modelStreamErrorException" in str(ei.value)
    stream = client.converse_stream(modelId="fault-throttle-event",
                                    messages=BEDROCK_PROMPT)["stream"]
    with pytest.raises(botocore.exceptions.EventStreamError) as ei:
        list(stream)
    assert "throttlingException" in str(ei.value)
    # boto3's signatures (with its own headers and a session token) pass the
    # mock's verification; a wrong secret does not
    assert bedrock_client(mock_url, token="SESSION/TOKEN==").converse(
        modelId=BEDROCK_MODEL, messages=BEDROCK_PROMPT)["stopReason"] == "end_turn"
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        bedrock_client(mock_url, secret="wrong-secret").converse(modelId=BEDROCK_MODEL,
                                                                 messages=BEDROCK_PROMPT)
    assert ei.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # an unsigned request is refused
    req = urllib.request.Request(mock_url + "/model/m/converse", method="POST",
                                 data=json.dumps({"messages": BEDROCK_PROMPT}).encode(),
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 401
    assert e.value.headers["x-amzn-ErrorType"].startswith("UnrecognizedClientException")


# --- Gemini: the official google-genai SDK ----------------------------------------

def gemini_client(mock_url):
    from google import genai
    from google.genai import types

    return genai.Client(api_key="gem-test",
                        http_options=types.HttpOptions(base_url=mock_url, api_version="v1beta"))


def test_google_genai_sdk_plain_and_stream(mock_url):
    from google.genai import errors, types

    client = gemini_client(mock_url)
    question = "What is the capital of France?"
    full = client.models.generate_content(model="gemini-test", contents=question)
    assert len(full.text.split()) == 12
    assert full.candidates[0].finish_reason == types.FinishReason.STOP
    assert full.usage_metadata.candidates_token_count == 12
    assert full.usage_metadata.total_token_count == full.usage_metadata.prompt_token_count + 12

    chunks = list(client.models.generate_content_stream(model="gemini-test", contents=question))
    assert len(chunks) > 12
    assert "".join(c.text or "" for c in chunks) == full.text
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == 12

    cfg = types.GenerateContentConfig(max_output_tokens=3, system_instruction="Be brief.")
    short = client.models.generate_content(model="gemini-test", contents=question, config=cfg)
    assert short.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert len(short.text.split()) == 3

    with pytest.raises(errors.ClientError) as ei:
        client.models.generate_content(model="fault-429:5", contents=question)
    assert ei.value.code == 429 and ei.value.status == "RESOURCE_EXHAUSTED"
    with pytest.raises(errors.ServerError):
        client.models.generate_content(model="fault-status:503", contents=question)

    # the key goes in x-goog-api-key; without one Google (and the mock) answer 403
    req = urllib.request.Request(mock_url + "/v1beta/models/gemini-test:generateContent",
                                 data=b'{"contents":[{"parts":[{"text":"x"}]}]}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 403


def test_google_genai_sdk_function_calls(mock_url):
    from google.genai import types

    client = gemini_client(mock_url)
    decl = types.FunctionDeclaration(name="get_weather", description="Weather for a city",
                                     parameters=WEATHER_PARAMS)
    cfg = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[decl])])
    question = types.Content(role="user", parts=[types.Part(text="Weather in Paris?")])
    resp = client.models.generate_content(model="gemini-test", contents=[question], config=cfg)
    (call,) = resp.function_calls
    assert call.name == "get_weather"
    check_weather_args(call.args)

    # streamed: the call arrives whole in one chunk, equal to the one above
    scalls = [fc for chunk in client.models.generate_content_stream(
        model="gemini-test", contents=[question], config=cfg) for fc in (chunk.function_calls or [])]
    assert [(c.name, c.args) for c in scalls] == [(call.name, call.args)]

    # the follow-up with a functionResponse part is answered in text
    result = types.Content(role="user", parts=[
        types.Part.from_function_response(name="get_weather", response={"temp_c": 21})])
    done = client.models.generate_content(
        model="gemini-test", contents=[question, resp.candidates[0].content, result], config=cfg)
    assert not done.function_calls and len(done.text.split()) == 12

    # toolConfig: ANY with a named function, and NONE
    forced = types.GenerateContentConfig(
        tools=cfg.tools, tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(
            mode="ANY", allowed_function_names=["get_weather"])))
    r = client.models.generate_content(model="gemini-test", contents=[question], config=forced)
    assert r.function_calls[0].name == "get_weather"
    none = types.GenerateContentConfig(tools=cfg.tools, tool_config=types.ToolConfig(
        function_calling_config=types.FunctionCallingConfig(mode="NONE")))
    r = client.models.generate_content(model="gemini-test", contents=[question], config=none)
    assert not r.function_calls and len(r.text.split()) == 12

    # structured output: responseMimeType + responseSchema
    fmt = types.GenerateContentConfig(response_mime_type="application/json",
                                      response_schema=WEATHER_PARAMS)
    r = client.models.generate_content(model="gemini-test", contents=[question], config=fmt)
    check_weather_args(json.loads(r.text))
