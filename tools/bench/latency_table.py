#!/usr/bin/env python3
"""Table of tools/bench/latency.sh results: one row per run file
lat-VARIANT-MODE-LOAD-RUN.json (modelgw-bench --open-loop --json).

Times in ms from the scheduled send; for streamed rows "total" is the final
response and TTFT the first chunk. errors = answered with an error plus
never answered. lag99 = the bench's own p99 lag behind its schedule."""
import json
import os
import re
import sys

NAME = re.compile(r"lat-(\w+)-(plain|stream)-(\d+)-(\d+)\.json$")


def row(path):
    m = NAME.search(os.path.basename(path))
    try:
        with open(path) as f:
            r = json.load(f)
    except (OSError, ValueError):
        return None
    variant, mode, load, run = m.group(1), m.group(2), int(m.group(3)), int(m.group(4))
    lat, t = r["latency_ms"], r.get("ttft_ms")
    fmt = lambda d: "%6.2f %6.2f %7.2f %7.2f" % (d["p50"], d["p99"], d["p999"], d["max"])
    ttft = fmt(t) if t else "%6s %6s %7s %7s" % ("-", "-", "-", "-")
    cpu = r.get("worker", {}).get("cpu_us_per_request", -1)
    errors = r["errors"] + (r["sent"] - r["answered"])
    lag = r.get("send_lag_ms", {}).get("p99", 0)
    key = (variant, mode, load, run)
    return key, "%-5s %-6s %6d %3d %8.1f | %s | %s | %6d %7.1f %6.2f" % (
        variant, mode, load, run, r["throughput_rps"], fmt(lat), ttft, errors, cpu, lag)


def main(paths):
    rows = sorted(filter(None, (row(p) for p in paths)))
    print("%-5s %-6s %6s %3s %8s | %-6s %6s %7s %7s | %-6s %6s %7s %7s | %6s %7s %6s" % (
        "var", "mode", "offer", "run", "achieved", "p50", "p99", "p99.9", "max",
        "ttft50", "ttft99", "ttft999", "ttftmax", "errors", "cpu_us", "lag99"))
    for _, line in rows:
        print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
