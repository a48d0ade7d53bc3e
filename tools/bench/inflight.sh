#!/usr/bin/env bash
# Benchmark 2: COUNT requests in flight at once in one worker (mock latency
# 2 s, max_in_flight above COUNT), with the worker's peak RSS. The requests
# are pre-published, so intake is not the limit; the peak number in flight is
# estimated by modelgw-bench --window-ms 1900: the most answers that arrived
# within 1.9 s, each of which was taken in before its window opened (2 s
# latency) and answered inside it, so all were in flight together.
# Usage: tools/bench/inflight.sh [COUNT]
source "$(dirname "$0")/lib.sh"
COUNT=${1:-10000}
W=(--set mock.latency_ms=2000 --set mock.ttft_ms=0 --set mock.chunk_delay_ms=0
   --set "worker.max_in_flight=$((COUNT + COUNT / 5))" --set kafka.prefetch_max_kbytes=16384
   --set "kafka.max_partition_runahead=$((COUNT + COUNT / 5))")
echo "load before: $(loadavg)"
for i in $(seq "$RUNS"); do
    prepublished "$OUT/inflight-$i.json" "$COUNT" "$ROOT/config/dev.conf" --window-ms 1900 -- "${W[@]}"
    echo "in-flight run $i: $(cat "$OUT/inflight-$i.json") load $(loadavg)"
done
summarize "inflight-$COUNT" "$OUT"/inflight-*.json
