# tools/bench/lib.sh: helpers shared by the benchmark scripts (sourced).
#
# Every run gets a fresh topic prefix and consumer group, so runs never
# collide with each other or with tests. The worker and modelgw-mockllm are
# started by the scripts on free ports; Kafka and Redis are the running
# tools/services ones (MODELGW_KAFKA, MODELGW_REDIS).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${MODELGW_BUILD_DIR:-$ROOT/build-bench}
export MODELGW_KAFKA=${MODELGW_KAFKA:-127.0.0.1:19092}
export MODELGW_REDIS=${MODELGW_REDIS:-127.0.0.1:16379}
RUNS=${BENCH_RUNS:-3}

# The benchmarks run an optimised build of their own ($BUILD, Release unless it
# already exists): configured on first use, brought up to date on every run.
if [ ! -f "$BUILD/build.ninja" ]; then
    echo "bench: building modelgw into $BUILD (tools/install-deps, Release)" >&2
    "$ROOT/tools/install-deps" >&2
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
ninja -C "$BUILD" modelgw modelgw-bench modelgw-mockllm >/dev/null
OUT=${BENCH_OUT:-$(mktemp -d /tmp/modelgw-bench.XXXXXX)}
mkdir -p "$OUT"

bench_pids=()
bench_cleanup() {
    local p
    for p in "${bench_pids[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
    done
    bench_pids=()
}
trap bench_cleanup EXIT

# new_prefix: sets P (topic prefix) and TOPICS (the worker's --set flags).
new_prefix() {
    P="bench$(date +%s%N | tail -c 7)$RANDOM"
    TOPICS=()
    local t
    for t in high normal low; do TOPICS+=(--set "kafka.topics.$t=$P.requests.$t"); done
    for t in responses chunks usage dlq; do TOPICS+=(--set "kafka.topics.$t=$P.$t"); done
}

# start_worker OUTFILE_PID CONFIG [--set ...]: starts modelgw in the background.
start_worker() {
    local pidfile=$1 conf=$2
    shift 2
    # BENCH_WRAP: a command the worker runs under (e.g. valgrind --tool=callgrind)
    ${BENCH_WRAP:-} "$BUILD/modelgw" -c "$conf" --set worker.dev=false --set "kafka.bootstrap=$MODELGW_KAFKA" \
        --set "kafka.group_id=$P" --set log.level=warn "${TOPICS[@]}" "$@" \
        >"$OUT/worker-$P.log" 2>&1 &
    bench_pids+=($!)
    echo $! >"$pidfile"
}

stop_worker() {
    local pid
    pid=$(cat "$1")
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# start_mockllm [flags]: sets MOCK_URL and MOCK_PID.
start_mockllm() {
    local pf="$OUT/mockllm.port"
    rm -f "$pf"
    "$BUILD/modelgw-mockllm" --port 0 --port-file "$pf" "$@" >"$OUT/mockllm.log" 2>&1 &
    MOCK_PID=$!
    bench_pids+=($MOCK_PID)
    local i
    for i in $(seq 100); do [ -s "$pf" ] && break; sleep 0.05; done
    MOCK_URL="http://127.0.0.1:$(cat "$pf")"
}

# prepublished RESULT COUNT CONFIG BENCH_FLAGS -- WORKER_FLAGS:
# publishes COUNT requests, then starts the worker and times it.
prepublished() {
    local result=$1 count=$2 conf=$3
    shift 3
    local bflags=() wflags=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do bflags+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    wflags=("$@")
    new_prefix
    # creates the request and response topics
    "$BUILD/modelgw-bench" --topic-prefix "$P" --count 1 --timeout 1 >/dev/null 2>&1 || true
    sleep 1 # fresh partitions: let their leaders settle
    local ready="$OUT/$P.ready" pidf="$OUT/$P.pid"
    rm -f "$ready" "$pidf"
    "$BUILD/modelgw-bench" --topic-prefix "$P" --count "$count" --prepublish --ready-file "$ready" \
        --worker-pid-file "$pidf" --timeout 120 --json "${bflags[@]}" >"$result" 2>"$result.err" &
    local bpid=$!
    while [ ! -e "$ready" ] && kill -0 $bpid 2>/dev/null; do sleep 0.1; done
    start_worker "$pidf.tmp" "$conf" "${wflags[@]}"
    mv "$pidf.tmp" "$pidf"
    # SECOND_WORKER=1: a second worker in the same group (fleet.sh redis2)
    [ -n "${SECOND_WORKER:-}" ] && start_worker "$pidf.2" "$conf" "${wflags[@]}"
    local wpid
    wpid=$(cat "$pidf")
    # BENCH_PERF=FILE: sample the worker with `perf record --call-graph dwarf` for this run
    local perfpid=
    if [ -n "${BENCH_PERF:-}" ]; then
        perf record -q --call-graph "${BENCH_PERF_CG:-dwarf,16384}" -F "${BENCH_PERF_FREQ:-1000}" -o "$BENCH_PERF" -p "$wpid" >/dev/null 2>&1 &
        perfpid=$!
    fi
    # BENCH_STRACE=FILE: count the worker's system calls (`strace -f -c`, all
    # threads) for this run; BENCH_STRACE_ARGS replaces -c (e.g. "-s 600 -e
    # trace=sendto,recvfrom" to see the bytes of each call)
    local stracepid=
    if [ -n "${BENCH_STRACE:-}" ]; then
        # shellcheck disable=SC2086
        strace -f ${BENCH_STRACE_ARGS:--c} -o "$BENCH_STRACE" -p "$wpid" 2>/dev/null &
        stracepid=$!
    fi
    while kill -0 $bpid 2>/dev/null; do
        if ! kill -0 "$wpid" 2>/dev/null; then
            echo "worker exited early: $(tail -2 "$OUT/worker-$P.log")" >&2
            kill $bpid 2>/dev/null || true
        fi
        sleep 0.2
    done
    wait $bpid || true
    if [ -n "$perfpid" ]; then
        kill -INT "$perfpid" 2>/dev/null || true
        wait "$perfpid" 2>/dev/null || true
    fi
    if [ -n "$stracepid" ]; then
        kill -INT "$stracepid" 2>/dev/null || true
        wait "$stracepid" 2>/dev/null || true
    fi
    sleep "${SETTLE:-0}" # writes that follow the answers (cache stores) finish
    stop_worker "$pidf"
    [ -n "${SECOND_WORKER:-}" ] && stop_worker "$pidf.2"
    true
}

# live RESULT CONFIG BENCH_FLAGS -- WORKER_FLAGS: worker first, then the bench.
live() {
    local result=$1 conf=$2
    shift 2
    local bflags=() wflags=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do bflags+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    wflags=("$@")
    new_prefix
    "$BUILD/modelgw-bench" --topic-prefix "$P" --count 1 --timeout 1 >/dev/null 2>&1 || true
    local pidf="$OUT/$P.pid"
    start_worker "$pidf" "$conf" "${wflags[@]}"
    sleep 3 # group join
    "$BUILD/modelgw-bench" --topic-prefix "$P" --worker-pid "$(cat "$pidf")" --timeout 60 --json \
        "${bflags[@]}" >"$result" 2>"$result.err" || true
    stop_worker "$pidf"
}

# summarize NAME FILE...: median and range of the JSON results.
summarize() {
    local name=$1
    shift
    python3 "$ROOT/tools/bench/summarize.py" "$name" "$@"
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
