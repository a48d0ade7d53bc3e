#!/usr/bin/env bash
# The HTTP path at saturation, one setting against another: COUNT
# pre-published requests through the OpenAI adapter against modelgw-mockllm
# at zero latency (as tools/bench/http.sh's openai rows), BENCH_RUNS runs per
# mode, extra worker flags from SAT_WORKER_ARGS (e.g. "--set
# kafka.compression=none"). Reports throughput and worker CPU per request.
# SAT_PROVIDER=mock: the built-in mock provider at zero latency instead
# (config/dev.conf, as tools/bench/worker-mock.sh's tuned rows).
# Usage: SAT_WORKER_ARGS="..." SAT_MODES="plain stream" tools/bench/saturation.sh [COUNT]
source "$(dirname "$0")/lib.sh"
COUNT=${1:-30000}
read -r -a EXTRA <<<"${SAT_WORKER_ARGS:-}"
KAFKA=(--set kafka.prefetch_max_kbytes=16384 --set kafka.max_partition_runahead=20000
       --set worker.max_in_flight=4096)
start_mockllm --latency-ms 0 --ttft-ms 0 --token-delay-ms 0 --tokens 16
echo "load before: $(loadavg); worker flags: ${EXTRA[*]:-none}"
for mode in ${SAT_MODES:-plain stream}; do
    sflag=()
    [ "$mode" = stream ] && sflag=(--stream)
    for i in $(seq "$RUNS"); do
        f="$OUT/sat-$mode-$i.json"
        if [ "${SAT_PROVIDER:-http}" = mock ]; then
            prepublished "$f" "$COUNT" "$ROOT/config/dev.conf" "${sflag[@]}" -- "${KAFKA[@]}" \
                --set mock.latency_ms=0 --set mock.ttft_ms=0 --set mock.chunk_delay_ms=0 "${EXTRA[@]}"
        else
            prepublished "$f" "$COUNT" "$ROOT/tools/bench/openai.conf" "${sflag[@]}" -- "${KAFKA[@]}" \
                --set "deployments[0].base_url=$MOCK_URL" "${EXTRA[@]}"
        fi
        python3 - "$f" "$mode" "$(loadavg)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
w = r.get("worker", {})
print(f"{sys.argv[2]:6} {r['answered']:>6} answered  {r['throughput_rps']:8.0f} req/s  "
      f"{w.get('cpu_us_per_request', 0):6.1f} us/req  errors {r['errors']}  load {sys.argv[3]}")
PY
    done
done
