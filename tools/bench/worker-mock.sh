#!/usr/bin/env bash
# Benchmark 1: one worker, built-in mock provider at zero latency.
#   a) pre-published, worker defaults: COUNT requests published, then the
#      worker started; throughput from the first answer to the last.
#   b) the same with a larger prefetch and run-ahead (see docs/benchmarks.md).
#   c) live: modelgw-bench publishes at --rate RATE while the worker runs.
# Usage: tools/bench/worker-mock.sh [COUNT] [RATE]
source "$(dirname "$0")/lib.sh"
COUNT=${1:-100000}
RATE=${2:-10000}
# receive.message.max.bytes: see "Kafka fetch limits" in docs/benchmarks.md.
MOCK0=(--set mock.latency_ms=0 --set mock.ttft_ms=0 --set mock.chunk_delay_ms=0
       --set worker.max_in_flight=4096)
DEFAULTS=(--set kafka.properties=receive.message.max.bytes=2162688)
TUNED=(--set kafka.prefetch_max_kbytes=16384 --set kafka.max_partition_runahead=20000)
echo "load before: $(loadavg)"
[ -n "${SKIP_DEFAULTS:-}" ] || for i in $(seq "$RUNS"); do
    prepublished "$OUT/mock-pre-$i.json" "$COUNT" "$ROOT/config/dev.conf" -- "${MOCK0[@]}" "${DEFAULTS[@]}"
    echo "prepublished, defaults, run $i: $(cat "$OUT/mock-pre-$i.json") load $(loadavg)"
done
summarize mock-prepublished-defaults "$OUT"/mock-pre-*.json
for i in $(seq "$RUNS"); do
    prepublished "$OUT/mock-tuned-$i.json" "$COUNT" "$ROOT/config/dev.conf" -- "${MOCK0[@]}" "${TUNED[@]}"
    echo "prepublished, tuned, run $i: $(cat "$OUT/mock-tuned-$i.json") load $(loadavg)"
done
summarize mock-prepublished-tuned "$OUT"/mock-tuned-*.json
for i in $(seq "$RUNS"); do
    live "$OUT/mock-live-$i.json" "$ROOT/config/dev.conf" --count $((RATE * 10)) --rate "$RATE" \
        --concurrency 20000 -- "${MOCK0[@]}" "${TUNED[@]}"
    echo "live, tuned, run $i: $(cat "$OUT/mock-live-$i.json") load $(loadavg)"
done
summarize "mock-live-tuned-rate-$RATE" "$OUT"/mock-live-*.json
