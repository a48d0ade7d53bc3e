#!/usr/bin/env bash
# Benchmark 4: routing + breaker, the state operations, the semantic lookups.
# Each run RUNS times (default 3); raw output in $OUT.
# Usage: tools/bench/components.sh [route|state|semantic]...
source "$(dirname "$0")/lib.sh"
WHAT=${*:-route state semantic}
echo "load before: $(loadavg)"
for w in $WHAT; do
    case $w in
    route)
        for i in $(seq "$RUNS"); do
            "$BUILD/modelgw-route-bench" --redis "$MODELGW_REDIS" --requests 200000 \
                >"$OUT/route-$i.txt" 2>&1
            echo "== route run $i (load $(loadavg))"; cat "$OUT/route-$i.txt"
        done ;;
    state)
        for i in $(seq "$RUNS"); do
            MODELGW_STATE_BENCH_N=100000 "$BUILD/test_state_bench" >"$OUT/state-$i.txt" 2>&1
            echo "== state run $i (load $(loadavg))"; cat "$OUT/state-$i.txt"
        done ;;
    semantic)
        for args in "--redis $MODELGW_REDIS --entries 10000" \
            "--redis $MODELGW_REDIS --entries 100000" "--memory --entries 10000" \
            "--memory --entries 100000"; do
            for i in $(seq "$RUNS"); do
                f="$OUT/semantic-$(echo "$args" | tr ' :' '__')-$i.txt"
                # shellcheck disable=SC2086
                timeout "${SEM_TIMEOUT:-300}" "$BUILD/modelgw-semantic-bench" $args >"$f" 2>&1 ||
                    echo "(exit $?: timed out after ${SEM_TIMEOUT:-300} s?)" >>"$f"
                echo "== semantic $args run $i (load $(loadavg))"; cat "$f"
            done
        done ;;
    esac
done
