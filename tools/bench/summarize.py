#!/usr/bin/env python3
"""Median and range of modelgw-bench JSON results: summarize.py NAME FILE..."""
import json
import statistics
import sys


def get(d, path):
    for k in path.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


FIELDS = [
    ("throughput_rps", "req/s"),
    ("worker.cpu_us_per_request", "CPU us/req"),
    ("worker.peak_rss_kib", "peak RSS KiB"),
    ("latency_ms.p50", "p50 ms"),
    ("latency_ms.p99", "p99 ms"),
    ("max_answers_in_window", "max answers in window"),
    ("answered", "answered"),
    ("errors", "errors"),
    ("cached", "cached"),
]


def main():
    name, files = sys.argv[1], sys.argv[2:]
    runs = []
    for f in files:
        try:
            with open(f) as fh:
                runs.append(json.loads(fh.read().strip().splitlines()[-1]))
        except (OSError, ValueError, IndexError) as e:
            print(f"{name}: {f}: no result ({e})", file=sys.stderr)
    out = {"name": name, "runs": len(runs)}
    for path, label in FIELDS:
        vals = [v for v in (get(r, path) for r in runs) if v is not None]
        if vals:
            out[path] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
