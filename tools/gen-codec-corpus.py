#!/usr/bin/env python3
"""Writes the codec's test inputs (the outputs are committed):

  tests/data/avro/hostile/*.bin + MANIFEST   hostile inputs, one expected error each
  tests/data/avro/valid/*.bin + MANIFEST     fastavro-written records that must decode
  tests/fuzz/corpus/decode/*                 seed corpus for fuzz_decode (both of the above)

MANIFEST lines: <file> <kind> <expected>, kind in request|response|chunk|usage,
expected a gw_err name (OK for valid files). Files decode with AUTO framing and
Confluent ids 7 -> InferenceRequest v2, 8 -> v1, 12 -> v3 (as
tests/unit/test_codec_util.h configures). Bare files are written with the
current schemas (bare means current); older versions appear single-object and
Confluent-framed only. Needs fastavro. Run from anywhere: python3 tools/gen-codec-corpus.py
"""
import io
import json
import os
import struct
import sys

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMAS = os.path.join(ROOT, "schemas")


def load(name):
    with open(os.path.join(SCHEMAS, name + ".avsc")) as f:
        return fastavro.parse_schema(json.load(f))


def fp_bytes(schema):
    # fastavro prints the fingerprint as the little-endian bytes of the header
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


def datum(schema, rec):
    b = io.BytesIO()
    fastavro.schemaless_writer(b, schema, rec)
    return b.getvalue()


def zz(v):
    z = (v << 1) ^ (v >> 63)
    z &= (1 << 64) - 1
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def s(text):
    raw = text.encode() if isinstance(text, str) else text
    return zz(len(raw)) + raw


REQ = load("InferenceRequest")
REQ2 = load("InferenceRequest.v2")
REQ1 = load("InferenceRequest.v1")
RESP = load("InferenceResponse")
RESP1 = load("InferenceResponse.v1")
CHUNK = load("StreamChunk")
CHUNK1 = load("StreamChunk.v1")
USAGE = load("UsageEvent")
USAGE1 = load("UsageEvent.v1")

V1_REQ = {
    "request_id": "r-1", "agent_did": "did:example:a",
    "messages": [{"role": "SYSTEM", "content": "Be brief.", "name": None},
                 {"role": "USER", "content": "Capital of France?", "name": "bob"},
                 {"role": "ASSISTANT", "content": "Paris", "name": None}],
    "system_prompt": None, "temperature": 0.2, "max_tokens": 64, "capabilities": ["chat"],
    "enable_cache": True, "metadata": {"k": "v"},
}
V2_REQ = dict(V1_REQ, routing_strategy="FASTEST", stream=True, model="m1", deadline_ms=1790000000000,
              reply_topic=None, batch_id="b1", custom_id="c1", tenant_id=None)
V3_REQ = dict(V2_REQ, messages=[
    {"role": "USER", "content": "Weather in Paris?", "name": None, "tool_calls": [], "tool_call_id": None},
    {"role": "ASSISTANT", "content": "", "name": None, "tool_call_id": None,
     "tool_calls": [{"id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}]},
    {"role": "TOOL", "content": "{\"temp_c\":21}", "name": "get_weather", "tool_calls": [],
     "tool_call_id": "call_1"}],
    tools=[{"name": "get_weather", "description": "Current weather",
            "parameters": "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}"}],
    tool_choice="auto",
    response_format={"type": "json_schema", "name": "w", "schema": "{\"type\":\"object\"}", "strict": True},
    stop=["\n\n"], top_p=0.9, seed=42)
RESP1_REC = {"request_id": "r-1", "content": "Paris", "model_id": "m1", "provider": "mock",
            "token_usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
            "latency_ms": 1.5, "cached": False, "finish_reason": "stop",
            "error": {"code": "E4200", "message": "x", "retryable": True, "details": {"a": "b"}},
            "metadata": {}, "custom_id": None, "batch_id": None}
RESP_REC = dict(RESP1_REC, finish_reason="tool_calls", error=None,
                tool_calls=[{"id": "call_1", "name": "get_weather", "arguments": "{}"}])
CHUNK1_REC = {"request_id": "r-1", "seq": 3, "content": "Pa", "is_final": True,
             "token_usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
             "finish_reason": "stop", "error": None}
CHUNK_REC = dict(CHUNK1_REC, tool_calls=[{"index": 0, "id": "call_1", "name": "get_weather",
                                          "arguments": "{\"ci"}])
USAGE_REC = {"event_id": "e", "request_id": "r", "agent_did": "a", "tenant_id": "t", "batch_id": None,
             "custom_id": None, "model_id": "m1", "provider": "p", "priority": "high",
             "prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3, "cost_usd": 0.1,
             "saved_cost_usd": 0.0, "latency_ms": 5.0, "ttft_ms": 1.0, "cached": False,
             "cache_tier": None, "cache_similarity": None, "attempts": 1, "failovers": 0,
             "outcome": "success", "error_code": None, "timestamp_ms": 1790000000000}
USAGE1_REC = USAGE_REC
USAGE_REC = dict(USAGE1_REC, trace_id="4bf92f3577b34da6a3ce929d0e0e4736", span_id="00f067aa0ba902b7")


def so(schema, body):
    return b"\xc3\x01" + fp_bytes(schema) + body


def req_head(request_id=s("r"), agent=s("d")):
    return request_id + agent


# v3's fields after v2's: tools [], tool_choice null, response_format null, stop [],
# top_p null, seed null
V3_TAIL = zz(0) * 6


def req_tail_after_messages():
    # system_prompt null, temperature, max_tokens, caps [], enable_cache, metadata {},
    # routing BALANCED, stream false, six null optionals, then v3's tail
    return zz(0) + struct.pack("<d", 0.5) + zz(10) + zz(0) + b"\x01" + zz(0) + zz(3) + b"\x00" + zz(0) * 6 \
        + V3_TAIL


def one_msg(role=1, content=s("hi"), name=zz(0), tool_calls=zz(0)):
    # a v3 Message: role, content, name, tool_calls, tool_call_id null
    return zz(role) + content + name + tool_calls + zz(0)


def req_with(messages_block=None, **over):
    msgs = messages_block if messages_block is not None else zz(1) + one_msg() + zz(0)
    return req_head() + msgs + req_tail_after_messages()


def valid_files():
    return {
        "req_v3_bare": ("request", datum(REQ, V3_REQ)),
        "req_v3_single_object": ("request", so(REQ, datum(REQ, V3_REQ))),
        "req_v3_confluent": ("request", b"\x00" + struct.pack(">I", 12) + datum(REQ, V3_REQ)),
        "req_v2_defaults_bare": ("request", datum(REQ, V2_REQ)),
        "req_v2_single_object": ("request", so(REQ2, datum(REQ2, V2_REQ))),
        "req_v1_single_object": ("request", so(REQ1, datum(REQ1, V1_REQ))),
        "req_v2_confluent": ("request", b"\x00" + struct.pack(">I", 7) + datum(REQ2, V2_REQ)),
        "req_v1_confluent": ("request", b"\x00" + struct.pack(">I", 8) + datum(REQ1, V1_REQ)),
        "req_handmade": ("request", req_with()),
        # NaN is a valid Avro double (fuzz_decode found that JSON cannot print it)
        "req_nan_temperature": ("request", req_head() + zz(0) + zz(0) + struct.pack("<d", float("nan"))
                                + req_tail_after_messages()[9:]),
        "resp_bare": ("response", datum(RESP, RESP_REC)),
        "resp_single_object": ("response", so(RESP, datum(RESP, RESP_REC))),
        "resp_v1_single_object": ("response", so(RESP1, datum(RESP1, RESP1_REC))),
        "chunk_bare": ("chunk", datum(CHUNK, CHUNK_REC)),
        "chunk_single_object": ("chunk", so(CHUNK, datum(CHUNK, CHUNK_REC))),
        "chunk_v1_single_object": ("chunk", so(CHUNK1, datum(CHUNK1, CHUNK1_REC))),
        "usage_bare": ("usage", datum(USAGE, USAGE_REC)),
        "usage_single_object": ("usage", so(USAGE, datum(USAGE, USAGE_REC))),
        "usage_v1_single_object": ("usage", so(USAGE1, datum(USAGE1, USAGE1_REC))),
    }


def hostile_files():
    good = datum(REQ, V3_REQ)
    msgs_tail = req_tail_after_messages()
    h = {}
    h["empty"] = ("request", b"", "CODEC_TRUNCATED")
    h["single_object_header_cut"] = ("request", b"\xc3\x01\x00\x11", "CODEC_TRUNCATED")
    h["single_object_magic_only"] = ("request", b"\xc3", "CODEC_TRUNCATED")
    h["wrong_magic_c3_02"] = ("request", b"\xc3\x02" + fp_bytes(REQ) + good, "CODEC_BAD_MAGIC")
    h["unknown_fingerprint"] = ("request", b"\xc3\x01" + b"\x01\x02\x03\x04\x05\x06\x07\x08" + good,
                                "CODEC_UNKNOWN_SCHEMA")
    h["response_fingerprint_as_request"] = ("request", so(RESP, good), "CODEC_UNKNOWN_SCHEMA")
    h["confluent_unknown_id"] = ("request", b"\x00\x00\x00\x00\x63" + good, "CODEC_UNKNOWN_SCHEMA")
    h["confluent_header_cut"] = ("request", b"\x00\x00\x01", "CODEC_TRUNCATED")
    h["string_len_2_pow_46"] = ("request", zz(1 << 46) + b"abc", "CODEC_LIMIT")
    h["string_len_2_pow_62"] = ("request", zz(1 << 62), "CODEC_LIMIT")
    h["string_len_over_limit"] = ("request", zz(256 * 1024 + 1) + b"x", "CODEC_LIMIT")
    h["string_len_negative"] = ("request", zz(-5) + b"abcde", "CODEC_BAD_DATA")
    h["string_cut"] = ("request", zz(10) + b"abc", "CODEC_TRUNCATED")
    h["varint_11_bytes"] = ("request", b"\xff" * 10 + b"\x01", "CODEC_BAD_DATA")
    h["varint_10th_byte_overflow"] = ("request", b"\xff" * 9 + b"\x02", "CODEC_BAD_DATA")
    h["varint_unterminated"] = ("request", b"\x82\x80\x80", "CODEC_TRUNCATED")
    h["messages_count_2_pow_46"] = ("request", req_head() + zz(1 << 46) + b"\x02", "CODEC_LIMIT")
    h["messages_count_257"] = ("request", req_head() + zz(257) + one_msg() * 257 + zz(0) + msgs_tail,
                               "CODEC_LIMIT")
    h["messages_count_over_remaining"] = ("request", req_head() + zz(200) + one_msg(), "CODEC_TRUNCATED")
    h["block_count_int64_min"] = ("request", req_head() + b"\xff" * 9 + b"\x01", "CODEC_BAD_DATA")
    h["block_negative_size"] = ("request", req_head() + zz(-1) + zz(-7) + one_msg() + zz(0) + msgs_tail,
                                "CODEC_BAD_DATA")
    h["role_enum_4"] = ("request", req_with(zz(1) + one_msg(role=4) + zz(0)), "CODEC_BAD_DATA")
    h["role_enum_negative"] = ("request", req_with(zz(1) + one_msg(role=-1) + zz(0)), "CODEC_BAD_DATA")
    h["union_index_2"] = ("request", req_with(zz(1) + one_msg(name=zz(2)) + zz(0)), "CODEC_BAD_DATA")
    h["union_index_negative"] = ("request", req_with(zz(1) + one_msg(name=zz(-1)) + zz(0)),
                                 "CODEC_BAD_DATA")
    strategy_bad = req_head() + zz(1) + one_msg() + zz(0) + msgs_tail
    # routing_strategy sits before stream, the six nulls and v3's tail
    cut = len(strategy_bad) - 8 - len(V3_TAIL)
    h["strategy_enum_5"] = ("request", strategy_bad[:cut] + zz(5) + strategy_bad[cut + 1:], "CODEC_BAD_DATA")
    bool_bad = bytearray(strategy_bad)
    bool_bad[cut + 1] = 2
    h["boolean_2"] = ("request", bytes(bool_bad), "CODEC_BAD_DATA")
    h["int_out_of_range"] = ("request", req_head() + zz(0) + zz(0) + struct.pack("<d", 1) + zz(1 << 40),
                             "CODEC_BAD_DATA")
    h["utf8_overlong"] = ("request", s(b"\xc0\x80"), "CODEC_BAD_UTF8")
    h["utf8_surrogate"] = ("request", s(b"\xed\xa0\x80"), "CODEC_BAD_UTF8")
    h["utf8_above_10ffff"] = ("request", s(b"\xf4\x90\x80\x80"), "CODEC_BAD_UTF8")
    h["utf8_lone_continuation"] = ("request", s(b"ab\x80cd"), "CODEC_BAD_UTF8")
    h["utf8_cut_sequence"] = ("request", s(b"ab\xe2\x82"), "CODEC_BAD_UTF8")
    h["string_with_nul"] = ("request", s(b"ab\x00cd"), "CODEC_BAD_UTF8")
    h["trailing_byte"] = ("request", good + b"\x00", "CODEC_TRAILING")
    h["trailing_after_single_object"] = ("request", so(REQ, good) + b"junk", "CODEC_TRAILING")
    h["cut_in_the_middle"] = ("request", good[: len(good) // 2], "CODEC_TRUNCATED")
    h["v1_datum_bare"] = ("request", datum(REQ1, V1_REQ), "CODEC_TRUNCATED")
    # v3: tools, tool calls, response_format
    no_tools = req_head() + zz(1) + one_msg() + zz(0) + msgs_tail[:-len(V3_TAIL)]
    tool = s("t") + zz(0) + zz(0)
    h["tools_129"] = ("request", no_tools + zz(129) + tool * 129 + zz(0) + zz(0) * 5, "CODEC_LIMIT")
    h["tools_count_over_remaining"] = ("request", no_tools + zz(100) + tool, "CODEC_TRUNCATED")
    call = s("id") + s("f") + s("{}")
    h["tool_calls_65"] = ("request", req_with(zz(1) + one_msg(tool_calls=zz(65) + call * 65 + zz(0))
                                              + zz(0)), "CODEC_LIMIT")
    h["response_format_union_2"] = ("request", no_tools + zz(0) + zz(0) + zz(2) + s("json_object"),
                                    "CODEC_BAD_DATA")
    h["tool_call_bad_utf8"] = ("request", req_with(zz(1) + one_msg(
        tool_calls=zz(1) + s("id") + s("f") + s(b"{\xc0\x80}") + zz(0)) + zz(0)), "CODEC_BAD_UTF8")
    resp1 = datum(RESP1, dict(RESP1_REC, error=None))
    h["response_tool_calls_65"] = ("response", resp1 + zz(65) + call * 65 + zz(0), "CODEC_LIMIT")
    h["response_v1_datum_bare"] = ("response", resp1, "CODEC_TRUNCATED")
    chunk1 = datum(CHUNK1, CHUNK1_REC)
    h["chunk_delta_index_over_int32"] = ("chunk", chunk1 + zz(1) + zz(1 << 33), "CODEC_BAD_DATA")
    h["map_65_entries"] = ("request", req_head() + zz(0) + zz(0) + struct.pack("<d", 1) + zz(1) + zz(0)
                           + b"\x01" + zz(65) + (s("k") + s("v")) * 65 + zz(0), "CODEC_LIMIT")
    h["capabilities_33"] = ("request", req_head() + zz(0) + zz(0) + struct.pack("<d", 1) + zz(1)
                            + zz(33) + s("c") * 33 + zz(0), "CODEC_LIMIT")
    h["response_error_union_3"] = ("response", s("r") + s("c") + s("m") + s("p") + zz(1) * 3
                                   + struct.pack("<d", 1) + b"\x00" + zz(0) + zz(3), "CODEC_BAD_DATA")
    h["chunk_seq_over_int32"] = ("chunk", s("r") + zz(1 << 33), "CODEC_BAD_DATA")
    h["usage_cut_double"] = ("usage", datum(USAGE, USAGE_REC)[:60], "CODEC_TRUNCATED")
    h["chunk_as_usage_fingerprint"] = ("usage", so(CHUNK, datum(CHUNK, CHUNK_REC)), "CODEC_UNKNOWN_SCHEMA")
    h["response_v1_fingerprint_as_chunk"] = ("chunk", so(RESP1, resp1), "CODEC_UNKNOWN_SCHEMA")
    return h


def write_set(folder, files):
    os.makedirs(folder, exist_ok=True)
    for old in os.listdir(folder):
        os.remove(os.path.join(folder, old))
    lines = []
    for name, entry in sorted(files.items()):
        kind, data = entry[0], entry[1]
        expected = entry[2] if len(entry) > 2 else "OK"
        with open(os.path.join(folder, name + ".bin"), "wb") as f:
            f.write(data)
        lines.append(f"{name}.bin {kind} {expected}")
    with open(os.path.join(folder, "MANIFEST"), "w") as f:
        f.write("# file kind expected-error (generated by tools/gen-codec-corpus.py)\n")
        f.write("\n".join(lines) + "\n")


def main():
    valid = valid_files()
    hostile = hostile_files()
    write_set(os.path.join(ROOT, "tests/data/avro/valid"), valid)
    write_set(os.path.join(ROOT, "tests/data/avro/hostile"), hostile)
    corpus = os.path.join(ROOT, "tests/fuzz/corpus/decode")
    os.makedirs(corpus, exist_ok=True)
    for old in os.listdir(corpus):
        os.remove(os.path.join(corpus, old))
    for name, entry in list(valid.items()) + list(hostile.items()):
        with open(os.path.join(corpus, name), "wb") as f:
            f.write(entry[1])
    print(f"{len(valid)} valid, {len(hostile)} hostile files written", file=sys.stderr)


if __name__ == "__main__":
    main()
