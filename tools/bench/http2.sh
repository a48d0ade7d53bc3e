#!/usr/bin/env bash
# HTTP/2 against HTTP/1.1 on the provider path: one worker, COUNT
# pre-published requests, streamed and not, against the same TLS upstream
# (tools/bench/tls-upstream.mjs: ALPN h2 and http/1.1 on one port, OpenAI
# dialect, 16-token answers, a certificate from a CA made for the run and
# given to the deployment as tls.ca_file). The only difference between the
# two runs of a pair is the deployment's http_version (auto = HTTP/2, 1.1).
# Prints the worker's CPU per request, throughput and peak RSS, and the
# upstream's count of TLS connections.
# Usage: tools/bench/http2.sh [COUNT]   (BENCH_RUNS=3 pairs by default)
source "$(dirname "$0")/lib.sh"
COUNT=${1:-10000}
KAFKA=(--set kafka.prefetch_max_kbytes=16384 --set kafka.max_partition_runahead=20000
       --set worker.max_in_flight=4096)
command -v node >/dev/null || { echo "http2.sh: needs node" >&2; exit 2; }
(
    cd "$OUT"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
        -subj "/CN=modelgw bench CA" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
        -subj "/CN=127.0.0.1" 2>/dev/null
    echo "subjectAltName=IP:127.0.0.1" >san.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
        -days 2 -extfile san.ext 2>/dev/null
)
node "$ROOT/tools/bench/tls-upstream.mjs" --cert "$OUT/server.pem" --key "$OUT/server.key" \
    --port 0 --port-file "$OUT/upstream.port" >"$OUT/upstream.log" 2>&1 &
UP_PID=$!
bench_pids+=($UP_PID)
for _ in $(seq 100); do [ -s "$OUT/upstream.port" ] && break; sleep 0.05; done
URL="https://127.0.0.1:$(cat "$OUT/upstream.port")"
conns() { curl -s --cacert "$OUT/ca.pem" "$URL/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tls_connections"])'; }
echo "upstream at $URL; load before: $(loadavg)"
for mode in plain stream; do
    sflag=()
    [ "$mode" = stream ] && sflag=(--stream)
    for i in $(seq "$RUNS"); do
        for v in 1.1 auto; do
            c0=$(conns)
            f="$OUT/h2-$v-$mode-$i.json"
            prepublished "$f" "$COUNT" "$ROOT/tools/bench/openai.conf" "${sflag[@]}" -- "${KAFKA[@]}" \
                --set "deployments[0].base_url=$URL" --set "deployments[0].tls.ca_file=$OUT/ca.pem" \
                --set "deployments[0].http_version=$v"
            echo "http_version=$v $mode run $i: $(cat "$f") tls connections $(($(conns) - c0 - 1)) load $(loadavg)"
        done
    done
    summarize "http1.1-$mode" "$OUT"/h2-1.1-$mode-*.json
    summarize "http2-$mode" "$OUT"/h2-auto-$mode-*.json
done
