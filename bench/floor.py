#!/usr/bin/env python3
"""The physical floor: how fast a plain Python loop starts and reaps a command.

One sample = N times ``os.posix_spawn`` of the command (resolved on PATH
once, current environment, inherited stdio) followed by ``os.waitpid`` of
that child, one at a time, in this process; the rate is N / elapsed.  That
is the most a job runner written in Python could do with one core for that
command, so the benchmarks of real jobs report their run rate as a ratio to
the floor measured in the same run (``floor_rate``).

Run on its own it prints the median and spread of RUNS samples for
``/bin/true`` and ``sleep 0`` (ANCHORS.md: about 1,600-1,800/s here).
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _stats import summary  # noqa: E402

ANCHOR_FLOOR = (1600 + 1800) / 2  # ANCHORS.md: "about 1,600-1,800 per second"


def _resolve(argv):
    path = argv[0] if "/" in argv[0] else shutil.which(argv[0])
    if path is None:
        raise FileNotFoundError(argv[0])
    return path


def floor_rate(argv, n=500):
    """Spawn-and-reap rate of ``argv`` (per second), one sample of ``n``."""
    path = _resolve(argv)
    env = dict(os.environ)
    spawn, waitpid = os.posix_spawn, os.waitpid
    t0 = time.perf_counter()
    for _ in range(n):
        pid = spawn(path, argv, env)
        _, status = waitpid(pid, 0)
        if status != 0:
            raise RuntimeError(f"{argv}: wait status {status}")
    return n / (time.perf_counter() - t0)


def floor_median(argv, n=500, runs=3):
    """Median of ``runs`` samples of ``floor_rate``."""
    return statistics.median(floor_rate(argv, n) for _ in range(runs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("-n", type=int, default=1000, help="spawns per sample")
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.n = 2, 50
    results = {}
    for argv in (["/bin/true"], ["sleep", "0"]):
        rates = [floor_rate(argv, args.n) for _ in range(args.runs)]
        label = f"floor {' '.join(argv)}:".ljust(22)
        print(f"{label} {summary(rates, 'spawn/s', '{:,.0f}')}"
              f"  | ANCHORS ~{ANCHOR_FLOOR:,.0f} spawn/s (/bin/true)", flush=True)
        results[" ".join(argv)] = {"unit": "spawn/s", "values": rates,
                                   "median": statistics.median(rates)}
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"bench": "floor", "smoke": args.smoke, "results": results}, out,
                      indent=1)
            out.write("\n")


if __name__ == "__main__":
    main()
