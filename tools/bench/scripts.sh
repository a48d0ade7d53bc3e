#!/usr/bin/env bash
# Redis CPU per call of the request path's Lua scripts, one script at a time,
# on a private redis-server: each script is run N times (redis-cli -r) with
# the arguments a worker sends and INFO commandstats gives usec_per_call of
# EVALSHA (Redis's own time inside the call, not the client's).
#   admit-miss   claim + cache read + 2 limiter keys + budget + lock (a new request)
#   (keys carry __rand_int__: redis-benchmark -r gives each call fresh ones)
#   admit-hit    claim + cache hit kept as the answer + 2 limiter keys
#   complete     keep the answer, store the cache entry, reconcile 1 key, charge the budget
#   breaker-batch, latency-batch: one flush of a deployment's batch
# Usage: tools/bench/scripts.sh [N]   (needs a build: MODELGW_BUILD_DIR for nothing; reads src/)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-20000}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 &
RPID=$!
trap 'kill $RPID 2>/dev/null || true' EXIT
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
cli() { redis-cli -p "$PORT" "$@"; }
load() { cli SCRIPT LOAD "$(cat "$ROOT/src/$1.lua")"; }
usec() { cli INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),usec=\([0-9]*\),.*/\1 \2/p'; }
run() { # NAME SHA NKEYS ARGS...
    local name=$1
    shift
    cli CONFIG RESETSTAT >/dev/null
    # __rand_int__ gives each call fresh request ids and keys (redis-benchmark -r)
    redis-benchmark -p "$PORT" -c 4 -n "$N" -r 100000000 EVALSHA "$@" >/dev/null
    read -r calls us < <(usec)
    printf '%-15s %6.2f us per call (%s calls)\n' "$name" "$(echo "$us / $calls" | bc -l)" "$calls"
}
ADMIT=$(load state/lua/admit)
COMPLETE=$(load state/lua/complete)
BRK=$(load route/lua/breaker_record)
LAT=$(load route/lua/latency_record)
K="p:id:{r__rand_int__} p:il:{r__rand_int__} p:c:{k__rand_int__} p:cl:{k__rand_int__} p:b:{a}:d p:b:{a}:m p:rl:{a}:rpm p:rl:{a}:tpm"
# a miss: a fresh request id and prompt per call
run admit-miss "$ADMIT" 8 $K 1 w1 10000 2 30000 86400 1 1000 100000000 1000000000 2 \
    1000000 1000000 1 1 1000000000 1000000000 80 0
cli SET 'p:c:{k}' "$(head -c 600 /dev/zero | tr '\0' x)" EX 600 >/dev/null
KH="p:id:{r__rand_int__} p:il:{r__rand_int__} p:c:{k} p:cl:{k} p:b:{a}:d p:b:{a}:m p:rl:{a}:rpm p:rl:{a}:tpm"
run admit-hit "$ADMIT" 8 $KH 1 w1 10000 1 30000 86400 1 1000 100000000 1000000000 2 \
    1000000 1000000 1 1 1000000000 1000000000 80 0
BODY=$(head -c 600 /dev/zero | tr '\0' y)
run complete "$COMPLETE" 9 'p:id:{r__rand_int__}' 'p:il:{r__rand_int__}' 'p:c:{k__rand_int__}' \
    'p:cl:{k__rand_int__}' 'p:rr:{r__rand_int__}' 'p:bc:{r__rand_int__}' \
    'p:b:{a}:d' 'p:b:{a}:m' 'p:rl:{a}:tpm' "$BODY" w1 1 86400 1 600 86400000 1200 172800 2851200 1 \
    30000 1000000000 -40
run breaker-batch "$BRK" 2 'p:brk:{d}' 'p:brk:{d}:probe' 4 0 '' -1 0.5 1000 30000 10 0.5 5 5000 \
    60000 0.2 2 3600000 1000 10000 60 4 0
run latency-batch "$LAT" 1 'p:lat:{d}' 64 86400000 120 0.0001 20 0.01 22 40 0.0001 8 0.01 9
