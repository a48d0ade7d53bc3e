#!/usr/bin/env bash
# Benchmark 3: the HTTP provider path's cost next to the in-process mock.
# One worker, COUNT pre-published requests, streamed and not:
#   mock    the built-in mock provider at zero latency (config/dev.conf)
#   openai  the OpenAI adapter against modelgw-mockllm at zero latency
#           (tools/bench/openai.conf, 16-token answers either way)
# Usage: tools/bench/http.sh [COUNT]
source "$(dirname "$0")/lib.sh"
COUNT=${1:-30000}
KAFKA=(--set kafka.prefetch_max_kbytes=16384 --set kafka.max_partition_runahead=20000
       --set worker.max_in_flight=4096)
MOCK0=(--set mock.latency_ms=0 --set mock.ttft_ms=0 --set mock.chunk_delay_ms=0)
start_mockllm --latency-ms 0 --ttft-ms 0 --token-delay-ms 0 --tokens 16
echo "mockllm at $MOCK_URL; load before: $(loadavg)"
for mode in plain stream; do
    sflag=()
    [ "$mode" = stream ] && sflag=(--stream)
    for i in $(seq "$RUNS"); do
        prepublished "$OUT/http-mock-$mode-$i.json" "$COUNT" "$ROOT/config/dev.conf" "${sflag[@]}" \
            -- "${KAFKA[@]}" "${MOCK0[@]}"
        echo "mock $mode run $i: $(cat "$OUT/http-mock-$mode-$i.json") load $(loadavg)"
        mcpu0=$(awk '{print $14+$15}' /proc/$MOCK_PID/stat)
        prepublished "$OUT/http-openai-$mode-$i.json" "$COUNT" "$ROOT/tools/bench/openai.conf" \
            "${sflag[@]}" -- "${KAFKA[@]}" --set "deployments[0].base_url=$MOCK_URL"
        mcpu1=$(awk '{print $14+$15}' /proc/$MOCK_PID/stat)
        echo "openai $mode run $i: $(cat "$OUT/http-openai-$mode-$i.json") mockllm cpu ticks $((mcpu1 - mcpu0)) load $(loadavg)"
    done
    summarize "mock-$mode" "$OUT"/http-mock-$mode-*.json
    summarize "openai-$mode" "$OUT"/http-openai-$mode-*.json
done
