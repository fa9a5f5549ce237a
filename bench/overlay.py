#!/usr/bin/env python3
"""The tree of brokers: boot time, and broker CPU per routed message.

- boot: wall time of ``flux start --test-size=N true`` (start every broker,
  boot over PMI, wait for all ranks online, run ``true``, shut down leaves
  first), N = 4, 16, 64 by default; median of RUNS.  Upstream's figures
  from ANCHORS.md: 1.68 s, 3.73 s, 14.2 s.
- routed: in ``flux start --test-size=7 -Stbon.fanout=2`` (three levels:
  0; 1, 2; 3-6), K ``broker.ping`` requests from a client of rank 0 to
  rank 6, pipelined (a window of 64 in flight).  Each request and each
  response crosses two links (0-2, 2-6), so 4K messages are routed; the
  figure is the CPU all brokers used (from /proc) per routed message, and
  the client's request rate.

Prints medians and spreads over the runs.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import broker_pids, flux_command, process_cpu  # noqa: E402
from _stats import summary  # noqa: E402

UPSTREAM_BOOT = {4: 1.68, 16: 3.73, 64: 14.2}
WINDOW = 64
G = "{:.3g}"  # figures in three significant digits


def boot_time(size):
    t0 = time.perf_counter()
    res = subprocess.run([flux_command(), "start", f"--test-size={size}", "true"],
                         capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"flux start --test-size={size} true: {res.stderr}")
    return elapsed


def inner_routed(count):
    """Run inside the instance: print {"cpu_us": ..., "rate": ...}."""
    import flux

    h = flux.Flux()
    pids = broker_pids(h)
    target = len(pids) - 1
    for _ in range(200):  # warm up
        h.rpc("broker.ping", {}, nodeid=target).get()
    cpu0 = sum(process_cpu(p) for p in pids)
    t0 = time.perf_counter()
    inflight = []
    for _ in range(count):
        inflight.append(h.rpc("broker.ping", {}, nodeid=target))
        if len(inflight) >= WINDOW:
            inflight.pop(0).get()
    for fut in inflight:
        fut.get()
    elapsed = time.perf_counter() - t0
    cpu = sum(process_cpu(p) for p in pids) - cpu0
    print(json.dumps({"cpu_us": cpu / (4 * count) * 1e6, "rate": count / elapsed}))


def routed(count):
    cmd = [flux_command(), "start", "--test-size=7", "-Stbon.fanout=2",
           sys.executable, os.path.abspath(__file__), "--inner-routed", str(count)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        raise RuntimeError(f"routed run failed: {res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="4,16,64")
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--inner-routed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner_routed:
        inner_routed(args.inner_routed)
        return 0
    if args.smoke:
        args.runs, args.sizes, args.count = 1, "2", 500
    for size in (int(s) for s in args.sizes.split(",")):
        times = [boot_time(size) for _ in range(args.runs)]
        upstream = UPSTREAM_BOOT.get(size)
        ratio = f"; upstream {upstream} s, {upstream / statistics.median(times):.1f}x" \
            if upstream else ""
        print(f"boot --test-size={size}: {summary(times, 's', G)}{ratio}", flush=True)
    samples = [routed(args.count) for _ in range(args.runs)]
    print(f"routed (3 levels, {args.count} pings to rank 6): broker CPU per routed"
          f" message {summary([s['cpu_us'] for s in samples], 'us', G)};"
          f" {summary([s['rate'] for s in samples], 'req/s', G)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
