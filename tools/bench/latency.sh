#!/usr/bin/env bash
# Benchmark: produce-to-response latency at fixed offered loads, through the
# Kafka broker, with a zero-latency model, so the numbers are what the
# gateway (and Kafka) add on top of the model.
#
# modelgw-bench --open-loop sends request i at t0 + i/rate whatever is still
# outstanding and measures each latency from that scheduled time (no
# coordinated omission; its own lag behind the schedule is reported apart).
# For each variant, one worker (every kafka.* and worker.* setting at its
# built-in default: tools/bench/latency.conf, in-memory state) on a fresh
# topic prefix and group, a warm-up, then for each offered load and each of
# plain and streamed requests, BENCH_RUNS runs of LAT_DURATION s each:
#   mock   the built-in mock provider at zero latency
#   http   the OpenAI adapter against modelgw-mockllm at zero latency
#          (tools/bench/latency-http.conf), 16-token answers either way
#   echo   no worker: the bench consumes its own requests (--echo), one
#          Kafka hop with the same clients and broker; a gateway answer
#          takes two such hops, so mock - 2 x echo is what the worker adds
# Streamed: TTFT is the first chunk's arrival, total the final response's.
# Worker CPU per request is utime+stime over the run / answered.
#
# Usage: tools/bench/latency.sh     (environment, all optional:)
#   LAT_LOADS="100 1000 5000"   offered loads, requests/s
#   LAT_DURATION=10             seconds per run
#   BENCH_RUNS=2                runs per point
#   LAT_VARIANTS="echo mock http"    which variants
#   LAT_MODES="plain stream"
#   LAT_STATE=memory|redis      redis: the running one ($MODELGW_REDIS)
#   LAT_CONF=FILE               the mock variant's worker config (default
#                               tools/bench/latency.conf), e.g. with kafka.properties
#   LAT_WORKER_ARGS="--set kafka.linger_ms=0"   extra worker flags
#   LAT_BENCH_ARGS="--kafka-property socket.nagle.disable=true"   extra bench flags
#   LAT_WARMUP="1000 3000"      warm-up rate and count per variant and mode (a
#                               fresh broker's JIT compiles during the first
#                               seconds of traffic: a short warm-up measures that)
#   LAT_BROKER=own|running      own (the default when MODELGW_KAFKA is not
#                               set): a private broker with Kafka's own JVM
#                               settings (1 GiB heap, G1, full JIT) started for
#                               the run on a free port and stopped after it, so
#                               the tails are the gateway's and not those of the
#                               test suite's small broker (docs/benchmarks.md 9);
#                               running (the default when MODELGW_KAFKA is set):
#                               that broker, as it is configured
LAT_BROKER=${LAT_BROKER:-$([ -n "${MODELGW_KAFKA:-}" ] && echo running || echo own)}
source "$(dirname "$0")/lib.sh"
if [ "$LAT_BROKER" = own ]; then
    LAT_BROKER_DIR="$OUT/broker"
    LAT_BROKER_PORT=$(python3 -c 'import socket
while True:
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1)); break  # the controller listener takes port + 1
    except OSError:
        a.close()
    finally:
        b.close()
print(p)')
    stop_own_broker() {
        bench_cleanup
        MODELGW_RUN_DIR="$LAT_BROKER_DIR" MODELGW_KAFKA_PORT=$LAT_BROKER_PORT \
            "$ROOT/tools/services" stop >/dev/null 2>&1 || true
    }
    trap stop_own_broker EXIT
    echo "starting a private broker with Kafka's own JVM settings on 127.0.0.1:$LAT_BROKER_PORT"
    MODELGW_KAFKA_JVM=production MODELGW_RUN_DIR="$LAT_BROKER_DIR" MODELGW_KAFKA_PORT=$LAT_BROKER_PORT \
        "$ROOT/tools/services" start kafka >/dev/null
    export MODELGW_KAFKA=127.0.0.1:$LAT_BROKER_PORT
else
    echo "using the running broker $MODELGW_KAFKA (its JVM settings shape the tails)"
fi
LOADS=${LAT_LOADS:-100 1000 5000}
DURATION=${LAT_DURATION:-10}
RUNS=${BENCH_RUNS:-2}
VARIANTS=${LAT_VARIANTS:-echo mock http}
MODES=${LAT_MODES:-plain stream}
read -r WARM_RATE WARM_COUNT <<<"${LAT_WARMUP:-1000 3000}"
read -r -a EXTRA <<<"${LAT_WORKER_ARGS:-}"
read -r -a BEXTRA <<<"${LAT_BENCH_ARGS:-}"
STATE=()
if [ "${LAT_STATE:-memory}" = redis ]; then
    STATE=(--set state.backend=redis --set "redis.host=${MODELGW_REDIS%:*}"
           --set "redis.port=${MODELGW_REDIS##*:}")
fi

# make_topics: every topic of prefix $P, 3 partitions each (a worker
# subscribed to a missing tier topic logs errors and refreshes metadata)
make_topics() {
    python3 - "$MODELGW_KAFKA" "$P" <<'PY'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({"bootstrap.servers": sys.argv[1]})
names = ["requests.high", "requests.normal", "requests.low", "responses", "chunks", "usage", "dlq"]
fs = a.create_topics([NewTopic(sys.argv[2] + "." + n, 3, 1) for n in names])
for f in fs.values():
    f.result(10)
PY
    sleep 1 # fresh partitions: let their leaders settle
}

# one_run FILE LOAD COUNT [--stream]: an open-loop run against the worker
one_run() {
    local file=$1 load=$2 count=$3
    shift 3
    local pid=()
    [ -n "$WPID" ] && pid=(--worker-pid "$WPID")
    "$BUILD/modelgw-bench" --topic-prefix "$P" --open-loop --rate "$load" --count "$count" \
        "${pid[@]}" --timeout 10 --json "${BEXTRA[@]}" "$@" >"$file" 2>"$file.err" || true
}

echo "load before: $(loadavg); loads: $LOADS req/s, ${DURATION} s per run, $RUNS runs per point"
for variant in $VARIANTS; do
    new_prefix
    if [ "$variant" = echo ]; then
        WPID=
        make_topics
        one_run "$OUT/warmup-echo.json" "$WARM_RATE" "$WARM_COUNT" --echo
        for load in $LOADS; do
            count=$(python3 -c "print(max(1, int($load * $DURATION)))")
            for i in $(seq "$RUNS"); do
                f="$OUT/lat-echo-plain-$load-$i.json"
                one_run "$f" "$load" "$count" --echo
                echo "echo $load req/s run $i: $(cat "$f") load $(loadavg)"
            done
        done
        continue
    fi
    wflags=("${STATE[@]}" --set "redis.key_prefix=$P:" "${EXTRA[@]}")
    conf=${LAT_CONF:-$ROOT/tools/bench/latency.conf}
    if [ "$variant" = http ]; then
        start_mockllm --latency-ms 0 --ttft-ms 0 --token-delay-ms 0 --tokens 16
        conf=$ROOT/tools/bench/latency-http.conf
        wflags+=(--set "deployments[0].base_url=$MOCK_URL")
    fi
    make_topics
    start_worker "$OUT/$P.pid" "$conf" "${wflags[@]}"
    WPID=$(cat "$OUT/$P.pid")
    sleep 3
    for mode in $MODES; do # warm-up: connections, first fetches
        sflag=()
        [ "$mode" = stream ] && sflag=(--stream)
        one_run "$OUT/warmup-$variant-$mode.json" "$WARM_RATE" "$WARM_COUNT" "${sflag[@]}"
    done
    for load in $LOADS; do
        count=$(python3 -c "print(max(1, int($load * $DURATION)))")
        for mode in $MODES; do
            sflag=()
            [ "$mode" = stream ] && sflag=(--stream)
            for i in $(seq "$RUNS"); do
                f="$OUT/lat-$variant-$mode-$load-$i.json"
                one_run "$f" "$load" "$count" "${sflag[@]}"
                echo "$variant $mode $load req/s run $i: $(cat "$f") load $(loadavg)"
            done
        done
    done
    stop_worker "$OUT/$P.pid"
    [ "$variant" = http ] && kill "$MOCK_PID" 2>/dev/null && wait "$MOCK_PID" 2>/dev/null
done
echo "load after: $(loadavg)"
python3 "$ROOT/tools/bench/latency_table.py" "$OUT"/lat-*.json
