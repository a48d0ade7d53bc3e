#!/usr/bin/env bash
# Peers side by side: modelgw (through Kafka, in-memory state) and the
# gateways a user would pick instead, LiteLLM proxy and Portkey gateway, on
# this machine against the same upstream (modelgw-mockllm's OpenAI dialect at
# zero latency, 16-token answers), at the same concurrency, non-streamed and
# streamed. For each: throughput, CPU per request of the gateway's processes
# (utime + stime from /proc, the process and its children), peak RSS (sum
# of VmHWM), errors; for modelgw also the Kafka broker's CPU per request,
# listed apart (the broker is shared: it includes other users' load).
#
# The peers are installed on first use into $PEERS_DIR (default
# $MODELGW_BUILD_DIR/peers: a build directory, never the repo) with pinned
# versions: a Python venv for LiteLLM, a private npm prefix for Portkey.
# This is a benchmark, not a test; nothing here is a CI dependency.
#
# Usage: tools/bench/peers.sh [COUNT]    (BENCH_CONC, default 32 in flight;
#        PEERS="modelgw litellm portkey"; MODES="plain stream")
source "$(dirname "$0")/lib.sh"
COUNT=${1:-5000}
CONC=${BENCH_CONC:-32}
PEERS=${PEERS:-modelgw portkey litellm}
MODES=${MODES:-plain stream}
PEERS_DIR=${PEERS_DIR:-$BUILD/peers}
LITELLM_VERSION=1.80.0
PORTKEY_VERSION=1.15.2
WARMUP=${BENCH_WARMUP:-300}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$PEERS_DIR"

install_litellm() {
    [ -x "$PEERS_DIR/venv/bin/litellm" ] && "$PEERS_DIR/venv/bin/python" -c \
        "import importlib.metadata as m, sys; sys.exit(m.version('litellm') != '$LITELLM_VERSION')" &&
        return 0
    python3 -m venv "$PEERS_DIR/venv"
    "$PEERS_DIR/venv/bin/pip" install -q "litellm[proxy]==$LITELLM_VERSION"
}

install_portkey() {
    local d="$PEERS_DIR/portkey"
    [ -f "$d/node_modules/@portkey-ai/gateway/build/start-server.js" ] &&
        [ "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' \
            "$d/node_modules/@portkey-ai/gateway/package.json")" = "$PORTKEY_VERSION" ] &&
        return 0
    mkdir -p "$d"
    (cd "$d" && { [ -f package.json ] || npm init -y >/dev/null; } &&
        npm install --no-audit --no-fund "@portkey-ai/gateway@$PORTKEY_VERSION" >/dev/null)
}

# tree_pids PID: PID and its descendants
tree_pids() {
    local all=" $1 " changed=1 pid ppid
    while [ $changed = 1 ]; do
        changed=0
        for s in /proc/[0-9]*/stat; do
            read -r pid _ _ ppid _ 2>/dev/null <"$s" || continue
            case "$all" in *" $ppid "*) case "$all" in *" $pid "*) ;; *) all="$all$pid "; changed=1 ;; esac ;; esac
        done
    done
    echo $all
}

# cpu_ticks PID...: utime + stime (+ reaped children's) in clock ticks
cpu_ticks() {
    local t=0 p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12+$13+$14+$15}')))
    done
    echo $t
}

peak_rss_kib() {
    local t=0 p v
    for p in "$@"; do
        v=$(awk '/^VmHWM/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        t=$((t + ${v:-0}))
    done
    echo $t
}

wait_http() { # URL: until it answers at all (any status)
    local i
    for i in $(seq 600); do
        curl -s -o /dev/null -m 1 "$1" && return 0
        sleep 0.1
    done
    return 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# broker_pid: the Kafka broker listening on MODELGW_KAFKA's port (other
# brokers may run on the machine), found from its server.properties
broker_pid() {
    local p args props port=${MODELGW_KAFKA##*:}
    for p in /proc/[0-9]*; do
        args=$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
        case "$args" in *"kafka.Kafka "*) ;; *) continue ;; esac
        props=${args##*kafka.Kafka }
        props=${props%% *}
        grep -q "^listeners=.*:$port\b" "$props" 2>/dev/null && { basename "$p"; return; }
    done
    true
}

TICK_US=$((1000000 / $(getconf CLK_TCK)))

# http_peer NAME MODE PID URL HEADERS...: warm up, then measure one run
http_peer() {
    local name=$1 mode=$2 gpid=$3 url=$4
    shift 4
    node "$HERE/httpload.mjs" "$url" "$WARMUP" "$CONC" "$mode" "$@" >"$OUT/$name-$mode-warmup.json"
    local pids c0 c1 m0 m1
    pids=$(tree_pids "$gpid")
    c0=$(cpu_ticks $pids)
    m0=$(cpu_ticks "$MOCK_PID")
    node "$HERE/httpload.mjs" "$url" "$COUNT" "$CONC" "$mode" "$@" >"$OUT/$name-$mode.json"
    pids=$(tree_pids "$gpid")
    c1=$(cpu_ticks $pids)
    m1=$(cpu_ticks "$MOCK_PID")
    python3 - "$OUT/$name-$mode.json" "$(( (c1 - c0) * TICK_US ))" "$(peak_rss_kib $pids)" \
        "$(( (m1 - m0) * TICK_US ))" "$(echo $pids | wc -w)" <<'PY'
import json, sys
f, cpu, rss, mcpu, nproc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
r = json.load(open(f))
n = r["answered"]
# CPU per answered request; with no answers there is nothing to divide by
r["gateway"] = {"cpu_us_per_request": round(cpu / n, 1) if n else None, "peak_rss_kib": rss,
                "processes": nproc, "cpu_us": cpu}
r["upstream_cpu_us_per_request"] = round(mcpu / n, 1) if n else None
json.dump(r, open(f, "w"))
PY
    echo "$name $mode: $(cat "$OUT/$name-$mode.json") load $(loadavg)"
}

run_portkey() {
    install_portkey
    local port pid
    port=$(free_port)
    node "$PEERS_DIR/portkey/node_modules/@portkey-ai/gateway/build/start-server.js" \
        --port="$port" --headless >"$OUT/portkey.log" 2>&1 &
    pid=$!
    bench_pids+=($pid)
    wait_http "http://127.0.0.1:$port/" || { echo "portkey did not start: $(tail -3 "$OUT/portkey.log")"; return; }
    local mode
    for mode in $MODES; do
        http_peer portkey "$mode" "$pid" "http://127.0.0.1:$port/v1/chat/completions" \
            "x-portkey-provider=openai" "x-portkey-custom-host=$MOCK_URL/v1" \
            "authorization=Bearer sk-bench"
    done
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
}

run_litellm() {
    install_litellm
    local port pid cfg="$OUT/litellm.yaml"
    port=$(free_port)
    cat >"$cfg" <<YAML
model_list:
  - model_name: bench-model
    litellm_params:
      model: openai/bench-model
      api_base: $MOCK_URL/v1
      api_key: sk-bench
litellm_settings:
  telemetry: false
  drop_params: true
YAML
    LITELLM_LOG=ERROR LITELLM_TELEMETRY=False "$PEERS_DIR/venv/bin/litellm" --config "$cfg" \
        --host 127.0.0.1 --port "$port" --num_workers 1 >"$OUT/litellm.log" 2>&1 &
    pid=$!
    bench_pids+=($pid)
    wait_http "http://127.0.0.1:$port/health/liveliness" ||
        { echo "litellm did not start: $(tail -3 "$OUT/litellm.log")"; return; }
    local mode
    for mode in $MODES; do
        http_peer litellm "$mode" "$pid" "http://127.0.0.1:$port/v1/chat/completions" \
            "authorization=Bearer sk-bench"
    done
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
}

# modelgw: one worker per mode, a warm-up of WARMUP requests (group join,
# first fetches, connections to the upstream), then the measured run through
# Kafka with modelgw-bench at the same concurrency (CPU and RSS of the worker
# from /proc over the measured run only).
run_modelgw() {
    local mode bpid b0 b1 m0 m1 sflag pidf wpid
    bpid=$(broker_pid)
    for mode in $MODES; do
        sflag=()
        [ "$mode" = stream ] && sflag=(--stream)
        new_prefix
        "$BUILD/modelgw-bench" --topic-prefix "$P" --count 1 --timeout 1 >/dev/null 2>&1 || true
        pidf="$OUT/$P.pid"
        start_worker "$pidf" "$ROOT/tools/bench/openai.conf" --set "deployments[0].base_url=$MOCK_URL"
        wpid=$(cat "$pidf")
        sleep 3 # group join
        "$BUILD/modelgw-bench" --topic-prefix "$P" --count "$WARMUP" --concurrency "$CONC" \
            "${sflag[@]}" --timeout 60 --json >"$OUT/modelgw-$mode-warmup.json" 2>&1 || true
        b0=$(cpu_ticks $bpid)
        m0=$(cpu_ticks "$MOCK_PID")
        "$BUILD/modelgw-bench" --topic-prefix "$P" --count "$COUNT" --concurrency "$CONC" \
            "${sflag[@]}" --worker-pid "$wpid" --timeout 60 --json \
            >"$OUT/modelgw-$mode.json" 2>"$OUT/modelgw-$mode.json.err" || true
        b1=$(cpu_ticks $bpid)
        m1=$(cpu_ticks "$MOCK_PID")
        stop_worker "$pidf"
        python3 - "$OUT/modelgw-$mode.json" "$(( (b1 - b0) * TICK_US ))" "$(( (m1 - m0) * TICK_US ))" <<'PY'
import json, sys
f, bcpu, mcpu = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = json.load(open(f))
n = r["answered"]
r["gateway"] = {"cpu_us_per_request": r["worker"]["cpu_us_per_request"],
                "peak_rss_kib": r["worker"]["peak_rss_kib"], "processes": 1}
# the broker is shared with everything else on the machine: an upper bound
r["broker_cpu_us_per_request"] = round(bcpu / n, 1) if n else None
r["upstream_cpu_us_per_request"] = round(mcpu / n, 1) if n else None
json.dump(r, open(f, "w"))
PY
        echo "modelgw $mode: $(cat "$OUT/modelgw-$mode.json") load $(loadavg)"
    done
}

start_mockllm --latency-ms 0 --ttft-ms 0 --token-delay-ms 0 --tokens 16
echo "mockllm at $MOCK_URL; $COUNT requests, $CONC in flight; load before: $(loadavg)"
for peer in $PEERS; do
    "run_$peer" || echo "$peer: failed (see $OUT/$peer.log)"
done
python3 - "$OUT" <<'PY'
import glob, json, os, sys
print(f"{'gateway':10} {'mode':6} {'req/s':>8} {'CPU µs/req':>11} {'peak RSS MiB':>13} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8}  broker µs/req")
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*-*.json"))):
    name = os.path.basename(f)[:-5]
    if name.endswith("warmup") or name.count("-") != 1:
        continue
    peer, mode = name.split("-")
    try:
        r = json.load(open(f))
    except ValueError:
        continue
    if "gateway" not in r:
        continue
    g = r["gateway"]
    lat = r.get("latency_ms", {})
    cpu = g["cpu_us_per_request"]  # None: nothing answered, nothing to divide by
    cpu = f"{cpu:11.1f}" if cpu is not None and r.get("answered") else f"{'-':>11}"
    tput = f"{r['throughput_rps']:8.0f}" if r.get("answered") else f"{'-':>8}"
    print(f"{peer:10} {mode:6} {tput} {cpu} "
          f"{g['peak_rss_kib'] / 1024:13.1f} {r.get('errors', 0):7} {lat.get('p50', 0):8.1f} "
          f"{lat.get('p99', 0):8.1f}  {r.get('broker_cpu_us_per_request', '')}")
PY
