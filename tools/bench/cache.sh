#!/usr/bin/env bash
# Benchmark 5: cache hits vs misses, Redis commands per request, and the
# limiter's overhead, one worker with the built-in mock at zero latency and
# the Redis state backend.
#
# A private redis-server on a free port (so INFO commandstats counts this
# worker's commands only, not other users of the shared one). Each run
# pre-publishes COUNT requests (prompts "0 xxx...", "1 xxx...": the same
# COUNT prompts in every run) and records the commandstats deltas / COUNT:
#   nocache   enable_cache=false on every request, no limits
#   miss      enable_cache=true, a fresh key prefix: every request misses and stores
#   hit       the same prompts again on the miss run's key prefix: every request hits
#   limits    as nocache, with agent RPM/TPM limits far above the load
# Usage: tools/bench/cache.sh [COUNT]
source "$(dirname "$0")/lib.sh"
COUNT=${1:-10000}
RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >"$OUT/redis.log" 2>&1 &
bench_pids+=($!)
for _ in $(seq 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
BASE=(--set mock.latency_ms=0 --set mock.ttft_ms=0 --set mock.chunk_delay_ms=0
      --set worker.max_in_flight=1024 --set kafka.prefetch_max_kbytes=16384
      --set kafka.max_partition_runahead=20000 --set state.backend=redis
      --set redis.host=127.0.0.1 --set "redis.port=$RPORT")
LIMITS=(--set limits.default_rpm=1000000000 --set limits.default_tpm=1000000000000)

stats() { redis-cli -p "$RPORT" INFO commandstats | tr -d '\r' | grep '^cmdstat_'; }

# one NAME I KEYPREFIX BENCHFLAGS -- WORKERFLAGS
one() {
    local name=$1 i=$2 kp=$3
    shift 3
    stats >"$OUT/$name-$i.before"
    prepublished "$OUT/$name-$i.json" "$COUNT" "$ROOT/config/dev.conf" "$@" --set "redis.key_prefix=$kp"
    stats >"$OUT/$name-$i.after"
    python3 "$ROOT/tools/bench/redis_delta.py" "$OUT/$name-$i.before" "$OUT/$name-$i.after" "$COUNT" \
        >"$OUT/$name-$i.redis"
    echo "$name run $i: $(cat "$OUT/$name-$i.json") redis per request: $(cat "$OUT/$name-$i.redis") load $(loadavg)"
}

echo "private redis on $RPORT; load before: $(loadavg)"
# Commands the worker itself sends (not those run inside its Lua scripts), by
# MONITOR on a small run: count_sent NAME KP BENCHFLAGS -- WORKERFLAGS
count_sent() {
    local name=$1 kp=$2
    shift 2
    redis-cli -p "$RPORT" MONITOR >"$OUT/$name.monitor" 2>&1 &
    local mp=$!
    COUNT=$MON_COUNT one "$name-monitor" 1 "$kp" "$@"
    kill $mp
    wait $mp 2>/dev/null || true
    echo "$name: commands sent by the worker per request (MONITOR, $MON_COUNT requests):" \
        "$(grep -v ' lua\]' "$OUT/$name.monitor" | grep -v '"MONITOR"\|"INFO"\|"PING"' |
            awk -v n="$MON_COUNT" '$4 {c[tolower($4)]++; t++} END {for (k in c) printf "%s=%.2f ", k, c[k]/n; printf "total=%.2f", t/n}')"
}

export SETTLE=2
MON_COUNT=${MON_COUNT:-2000}
for i in $(seq "$RUNS"); do
    kp="bench$RANDOM$i:"
    one nocache "$i" "$kp" -- "${BASE[@]}"
    one miss "$i" "$kp" --cache -- "${BASE[@]}"
    one hit "$i" "$kp" --cache -- "${BASE[@]}"
    one limits "$i" "$kp" -- "${BASE[@]}" "${LIMITS[@]}"
done
for n in nocache miss hit limits; do summarize "$n" "$OUT"/$n-[0-9]*.json; done
kp="benchmon$RANDOM:"
count_sent nocache "$kp" -- "${BASE[@]}"
count_sent miss "$kp" --cache -- "${BASE[@]}"
count_sent hit "$kp" --cache -- "${BASE[@]}"
count_sent limits "$kp" -- "${BASE[@]}" "${LIMITS[@]}"
