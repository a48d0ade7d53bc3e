#!/usr/bin/env bash
# Instructions per request of the worker on the HTTP provider path, counted by
# callgrind (repeatable on a loaded machine, unlike CPU time): the worker runs
# under `valgrind --tool=callgrind` for two pre-published runs of N1 and N2
# requests against modelgw-mockllm's OpenAI dialect at zero latency, and the
# difference of the two totals divided by N2 - N1 is the cost per request
# (start-up, group join and shutdown cancel out).
# BENCH_TARGET=mock counts the built-in mock provider instead (config/dev.conf
# at zero latency), the reference of the HTTP path's aims.
# BENCH_CG_VECTOR_STRINGS=1 makes glibc's memset and memcpy use vector stores
# at every size instead of `rep stosb` / `rep movsb` above a few KiB, which
# valgrind counts as one instruction per byte: librdkafka zeroes a 64 KiB
# LZ4 frame buffer for every produce batch, ~65,000 "instructions" that are
# ~4,000 vector stores (docs/benchmarks.md section 3f). Off by default, so
# counts stay comparable with earlier runs.
# Usage: tools/bench/http-callgrind.sh [plain|stream] [N1] [N2]
source "$(dirname "$0")/lib.sh"
MODE=${1:-plain}
N1=${2:-1000}
N2=${3:-3000}
sflag=()
[ "$MODE" = stream ] && sflag=(--stream)
KAFKA=(--set kafka.prefetch_max_kbytes=16384 --set kafka.max_partition_runahead=20000
       --set worker.max_in_flight=4096)
start_mockllm --latency-ms 0 --ttft-ms 0 --token-delay-ms 0 --tokens 16
total() { # callgrind output file -> total Ir
    callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ && !t {gsub(",","",$1); t=$1} END {print t}'
}
declare -A IR
TARGET=${BENCH_TARGET:-openai}
if [ "$TARGET" = mock ]; then
    CONF=$ROOT/config/dev.conf
    WFLAGS=(--set mock.latency_ms=0 --set mock.ttft_ms=0 --set mock.chunk_delay_ms=0)
else
    CONF=$ROOT/tools/bench/openai.conf
    WFLAGS=(--set "deployments[0].base_url=$MOCK_URL")
fi
WRAP=()
if [ -n "${BENCH_CG_VECTOR_STRINGS:-}" ]; then
    WRAP=(env "GLIBC_TUNABLES=glibc.cpu.x86_rep_stosb_threshold=1099511627776:glibc.cpu.x86_rep_movsb_threshold=1099511627776")
fi
for n in "$N1" "$N2"; do
    BENCH_WRAP="${WRAP[*]} valgrind --tool=callgrind --callgrind-out-file=$OUT/cg-$MODE-$n.out" \
        prepublished "$OUT/cg-$MODE-$n.json" "$n" "$CONF" "${sflag[@]}" -- \
        "${KAFKA[@]}" "${WFLAGS[@]}"
    sleep 1
    IR[$n]=$(total "$OUT/cg-$MODE-$n.out")
    echo "$MODE $n requests: answered $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["answered"])' "$OUT/cg-$MODE-$n.json") instructions ${IR[$n]}"
done
echo "$TARGET $MODE: $(( (IR[$N2] - IR[$N1]) / (N2 - N1) )) instructions per request (worker, callgrind)"
