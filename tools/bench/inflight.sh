#!/usr/bin/env bash
# Benchmark 2: COUNT requests in flight at once in one worker (mock latency
# 2 s, max_in_flight above COUNT), with the worker's peak RSS. The requests
# are pre-published, so intake is not the limit; the peak number in flight is
# estimated by modelgw-bench --window-ms 1900: the most answers that arrived
# within 1.9 s, each of which was taken in before its window opened (2 s
# latency) and answered inside it, so all were in flight together. When the
# worker has an admin port, its modelgw_in_flight_requests gauge is also
# sampled every 100 ms and the highest value reported.
# Usage: tools/bench/inflight.sh [COUNT]
source "$(dirname "$0")/lib.sh"
COUNT=${1:-10000}
W=(--set mock.latency_ms=2000 --set mock.ttft_ms=0 --set mock.chunk_delay_ms=0
   --set "worker.max_in_flight=$((COUNT + COUNT / 5))" --set kafka.prefetch_max_kbytes=16384
   --set "kafka.max_partition_runahead=$((COUNT + COUNT / 5))"
   --set "deployments[mock-fast].max_concurrency=$((COUNT + COUNT / 5))"
   --set "deployments[mock-smart].max_concurrency=$((COUNT + COUNT / 5))")
echo "load before: $(loadavg)"
# poll_gauge PORT FILE: highest modelgw_in_flight_requests seen, until killed.
poll_gauge() {
    local max=0 v
    while true; do
        v=$(curl -s --max-time 1 "http://127.0.0.1:$1/metrics" |
            awk '/^modelgw_in_flight_requests/ {s += $2} END {print s + 0}') || v=0
        v=${v%.*}
        [ "${v:-0}" -gt "$max" ] && max=$v && echo "$max" >"$2"
        sleep 0.1
    done
}
for i in $(seq "$RUNS"); do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo 0 >"$OUT/gauge-$i.txt"
    poll_gauge "$port" "$OUT/gauge-$i.txt" &
    gp=$!
    prepublished "$OUT/inflight-$i.json" "$COUNT" "$ROOT/config/dev.conf" --window-ms 1900 -- "${W[@]}" \
        --set "admin.port=$port"
    kill $gp; wait $gp 2>/dev/null || true
    echo "in-flight run $i: $(cat "$OUT/inflight-$i.json") gauge max $(cat "$OUT/gauge-$i.txt") load $(loadavg)"
done
summarize "inflight-$COUNT" "$OUT"/inflight-*.json
