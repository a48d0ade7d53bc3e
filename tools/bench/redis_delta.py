"""INFO commandstats before and after a run, per request.

Usage: redis_delta.py BEFORE AFTER COUNT [CPU0 CPU1 CLK_TCK]
BEFORE/AFTER hold `INFO commandstats` lines (cmdstat_<name>:calls=N,...);
with the CPU ticks of redis-server at both ends (utime + stime from
/proc/<pid>/stat) it also prints redis-server CPU per request. Prints one
line: scripts= commands= [redis_cpu_us=] and every command's calls per
request (tools/bench/cache.sh, fleet.sh).
"""
import re
import sys


def read(path):
    calls = {}
    for line in open(path):
        m = re.match(r"cmdstat_([^:]+):calls=(\d+)", line)
        if m:
            calls[m.group(1)] = int(m.group(2))
    return calls


def main(argv):
    a, b, n = read(argv[1]), read(argv[2]), int(argv[3])
    delta = {k: b.get(k, 0) - a.get(k, 0) for k in b}
    skip = ("info", "ping", "client|setname", "select")
    delta = {k: v for k, v in delta.items() if v > 0 and k not in skip}
    scripts = delta.get("evalsha", 0) + delta.get("eval", 0)
    out = [f"scripts={scripts / n:.2f}", f"commands={sum(delta.values()) / n:.2f}"]
    if len(argv) >= 7:
        c0, c1, hz = float(argv[4]), float(argv[5]), float(argv[6])
        out.append(f"redis_cpu_us={(c1 - c0) / hz * 1e6 / n:.1f}")
    out += [f"{k}={v / n:.2f}" for k, v in sorted(delta.items())]
    print(" ".join(out))


if __name__ == "__main__":
    main(sys.argv)
