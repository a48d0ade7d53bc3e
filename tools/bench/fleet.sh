#!/usr/bin/env bash
# Benchmark: fleet mode. One worker with the built-in mock provider at zero
# latency, default settings, COUNT pre-published requests, with
#   memory   in-memory state (one process: the ceiling)
#   redis    Redis state on a private redis-server (so INFO commandstats and
#            its CPU count this worker only)
#   hit      Redis state, enable_cache=true, the same prompts as a first
#            (miss) pass on the same key prefix: every request is a hit
#   cluster  (FLEET_CLUSTER=1) Redis state on a private 3-master cluster
#            (tools/redis-cluster on ports 45400-45405), no cache; its CPU is
#            the sum over the six nodes
#   redis2   (FLEET_TWO=1) as redis, with two workers in one group (the
#            bench's CPU figure is the first worker's only)
# and prints, per run: throughput, worker CPU per request, and for Redis the
# script calls and commands executed per request (INFO commandstats deltas)
# and redis-server's own CPU per request (utime + stime of its process from
# /proc/<pid>/stat over the run).
# Usage: tools/bench/fleet.sh [COUNT]   (BENCH_RUNS=3 by default)
source "$(dirname "$0")/lib.sh"
COUNT=${1:-20000}
RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >"$OUT/redis.log" 2>&1 &
RPID=$!
bench_pids+=($RPID)
for _ in $(seq 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
MOCK0=(--set mock.latency_ms=0 --set mock.ttft_ms=0 --set mock.chunk_delay_ms=0)
REDIS=(--set state.backend=redis --set redis.host=127.0.0.1 --set "redis.port=$RPORT")
TICKS=$(getconf CLK_TCK)

CPIDS=()
if [ -n "${FLEET_CLUSTER:-}" ]; then
    export MODELGW_RUN_DIR="$OUT/cluster-run" MODELGW_REDIS_CLUSTER_PORT=${FLEET_CLUSTER_PORT:-45400}
    "$ROOT/tools/redis-cluster" start >"$OUT/cluster.env"
    trap '"$ROOT/tools/redis-cluster" stop >/dev/null 2>&1 || true; bench_cleanup' EXIT
    for p in $(seq "$MODELGW_REDIS_CLUSTER_PORT" $((MODELGW_REDIS_CLUSTER_PORT + 5))); do
        CPIDS+=("$(cat "$MODELGW_RUN_DIR/services/redis-cluster/$p/redis.pid")")
    done
    NODES=$(seq -s, -f "127.0.0.1:%g" "$MODELGW_REDIS_CLUSTER_PORT" $((MODELGW_REDIS_CLUSTER_PORT + 2)))
    CLUSTER=(--set state.backend=redis --set redis.mode=cluster --set "redis.nodes=$NODES")
fi

redis_cpu() { awk '{print $14 + $15}' "/proc/$RPID/stat"; }
cluster_cpu() {
    local t=0 p
    for p in "${CPIDS[@]}"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
    echo "$t"
}
stats() { redis-cli -p "$RPORT" INFO commandstats | tr -d '\r' | grep '^cmdstat_'; }

# one NAME I KEYPREFIX BENCHFLAGS -- WORKERFLAGS
one() {
    local name=$1 i=$2 kp=$3
    shift 3
    stats >"$OUT/$name-$i.before"
    local c0 c1 cpu=redis_cpu
    [ "$name" = cluster ] && cpu=cluster_cpu
    c0=$($cpu)
    prepublished "$OUT/$name-$i.json" "$COUNT" "$ROOT/config/dev.conf" "$@" --set "redis.key_prefix=$kp"
    c1=$($cpu)
    stats >"$OUT/$name-$i.after"
    python3 "$ROOT/tools/bench/redis_delta.py" "$OUT/$name-$i.before" "$OUT/$name-$i.after" "$COUNT" "$c0" "$c1" "$TICKS" \
        >"$OUT/$name-$i.redis"
    echo "$name run $i: $(cat "$OUT/$name-$i.json") redis per request: $(cat "$OUT/$name-$i.redis") load $(loadavg)"
}

echo "private redis on $RPORT (pid $RPID); load before: $(loadavg)"
for i in $(seq "$RUNS"); do
    kp="fleet$RANDOM$i:"
    one memory "$i" "$kp" -- "${MOCK0[@]}"
    one redis "$i" "$kp" -- "${MOCK0[@]}" "${REDIS[@]}"
    one miss "$i" "$kp" --cache -- "${MOCK0[@]}" "${REDIS[@]}"
    one hit "$i" "$kp" --cache -- "${MOCK0[@]}" "${REDIS[@]}"
    if [ -n "${FLEET_CLUSTER:-}" ]; then one cluster "$i" "$kp" -- "${MOCK0[@]}" "${CLUSTER[@]}"; fi
    if [ -n "${FLEET_TWO:-}" ]; then SECOND_WORKER=1 one redis2 "$i" "$kp" -- "${MOCK0[@]}" "${REDIS[@]}"; fi
done
NAMES="memory redis miss hit"
[ -n "${FLEET_CLUSTER:-}" ] && NAMES="$NAMES cluster"
[ -n "${FLEET_TWO:-}" ] && NAMES="$NAMES redis2"
for n in $NAMES; do summarize "$n" "$OUT"/$n-[0-9]*.json; done
