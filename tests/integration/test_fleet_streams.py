"""Issue 4: 2,000 concurrent streamed requests from ONE worker through
modelgw-mockllm (OpenAI dialect over HTTP) all complete, every chunk in seq
order, and the concatenated chunk text equals the response content.

The mock answers every stream after a time to first token of 1.5 s and then
one word every 20 ms, so the 2,000 calls are in flight together; the overlap
is checked from the usage events (start = timestamp - latency).
"""

import uuid
from collections import defaultdict

from fleet import MockLLM, Tail, fleet, make_request, openai_deployment  # noqa: F401

N = 2000
TTFT_MS = 1500


def test_2000_concurrent_streams_one_worker(fleet, start_process, binary, tmp_path):  # noqa: F811
    mock = MockLLM(start_process, binary, tmp_path, ttft_ms=TTFT_MS, token_delay_ms=20, tokens=16)
    dep = openai_deployment("oa-stream", mock.url, model="mock-stream")
    over = {"worker": {"max_in_flight": 2500, "chunk_coalesce_ms": 30,
                       "chunk_coalesce_bytes": 48}}
    (worker,) = fleet.start_workers(1, [dep], over=over)

    run = uuid.uuid4().hex[:8]
    reqs = [make_request(f"s-{run}-{i}", text=f"stream number {i % 97} of run {run}",
                         stream=True, max_tokens=64, enable_cache=False)
            for i in range(N)]
    fleet.produce("normal", reqs)

    responses = Tail(fleet, "responses")
    chunks = Tail(fleet, "chunks")
    usage = Tail(fleet, "usage")
    ids = {r["request_id"] for r in reqs}
    resp = {r["request_id"]: r for r in responses.wait_ids(ids, timeout=180)}
    chunks.until(lambda recs: sum(1 for c in recs if c["is_final"]) >= N, timeout=60,
                 what="final chunks")
    usage.wait_ids(ids, timeout=60)
    responses.poll(1.0)
    chunks.poll(1.0)
    assert worker.running(), worker.describe()

    # Exactly one response per request, all successful.
    assert len(responses.records) == N, len(responses.records)
    bad = [(r["request_id"], r["error"]) for r in resp.values() if r["error"] is not None]
    assert not bad, bad[:5]
    assert all(r["finish_reason"] == "stop" for r in resp.values())
    assert all(r["provider"] == "openai" for r in resp.values())

    # Chunks: per request, in Kafka order (one partition per key), seq 0..n-1,
    # exactly one final chunk and it is the last; the text equals the content.
    by_id = defaultdict(list)
    for c in chunks.records:
        by_id[c["request_id"]].append(c)
    assert set(by_id) == ids
    for rid, cs in by_id.items():
        cs.sort(key=lambda c: (c["_partition"], c["_offset"]))
        assert len({c["_partition"] for c in cs}) == 1, rid
        assert [c["seq"] for c in cs] == list(range(len(cs))), (rid, [c["seq"] for c in cs])
        assert [c["_headers"].get("chunk_seq") for c in cs] == [str(i) for i in range(len(cs))]
        assert [c["is_final"] for c in cs] == [False] * (len(cs) - 1) + [True], rid
        final = cs[-1]
        assert final["error"] is None and final["finish_reason"] == "stop", final
        assert final["token_usage"]["completion_tokens"] == 16, final
        text = "".join(c["content"] for c in cs)
        assert text == resp[rid]["content"], (rid, text, resp[rid]["content"])
        assert len(text.split()) == 16, text
    # More than one chunk per stream on average: text went out as it arrived.
    assert len(chunks.records) > 2 * N, len(chunks.records)

    # The mock's own answer for the same prompt is what the gateway returned.
    sample = reqs[5]
    assert mock.chat(sample["messages"][0]["content"]) == resp[sample["request_id"]]["content"]

    # The calls overlapped: at some instant most of the 2,000 were in flight.
    spans = sorted((u["timestamp_ms"] - u["latency_ms"], u["timestamp_ms"])
                   for u in usage.records if u["request_id"] in ids)
    assert all(end - start >= TTFT_MS * 0.9 for start, end in spans)
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    peak = cur = 0
    for _, d in events:
        cur += d
        peak = max(peak, cur)
    print(f"peak concurrent streams: {peak}, chunks: {len(chunks.records)}")
    assert peak >= N // 2, peak
    assert mock.total() == N + 1  # one upstream call per request, plus the check above
    for t in (responses, chunks, usage):
        t.close()
