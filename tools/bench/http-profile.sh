#!/usr/bin/env bash
# Where the worker's CPU goes on the HTTP provider path: one pre-published run
# of COUNT requests against modelgw-mockllm's OpenAI dialect at zero latency
# (as tools/bench/http.sh), with `perf record --call-graph dwarf` attached to the worker,
# then the breakdown by component (tools/bench/perf_breakdown.py).
# Usage: tools/bench/http-profile.sh [COUNT] [plain|stream]
source "$(dirname "$0")/lib.sh"
COUNT=${1:-20000}
MODE=${2:-plain}
KAFKA=(--set kafka.prefetch_max_kbytes=16384 --set kafka.max_partition_runahead=20000
       --set worker.max_in_flight=4096)
sflag=()
[ "$MODE" = stream ] && sflag=(--stream)
start_mockllm --latency-ms 0 --ttft-ms 0 --token-delay-ms 0 --tokens 16
echo "mockllm at $MOCK_URL; load before: $(loadavg)"
BENCH_PERF="$OUT/perf-$MODE.data" prepublished "$OUT/profile-$MODE.json" "$COUNT" \
    "$ROOT/tools/bench/openai.conf" "${sflag[@]}" -- "${KAFKA[@]}" \
    --set "deployments[0].base_url=$MOCK_URL"
echo "openai $MODE: $(cat "$OUT/profile-$MODE.json") load $(loadavg)"
perf report -i "$OUT/perf-$MODE.data" --no-children --sort dso,sym -F overhead,dso,sym \
    --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' >"$OUT/perf-$MODE.txt" || true
python3 "$ROOT/tools/bench/perf_breakdown.py" "$OUT/perf-$MODE.data"
echo "raw: $OUT/perf-$MODE.data, flat: $OUT/perf-$MODE.txt"
