#!/usr/bin/env python3
"""Broker memory: resident set size as inactive jobs accumulate.

RUNS times, in a fresh instance: read the broker's VmRSS (from
/proc/<pid>/status, pid = broker attribute ``broker.pid``) when it is
ready, then run simulated jobs (``system.exec.test`` run_duration 0s,
see pipeline.py) in windows of at most WINDOW: submit the window
(waitable) with submit_async + then, wait for all of it with wait_async +
then, so every job is inactive and reaped before the next window.  At
each checkpoint (default 10,000, 50,000 and 100,000 inactive jobs) read
VmRSS again.

Prints, in MiB, the median and spread of the RSS at start and at each
checkpoint, the growth from the first to the last checkpoint (per job in
bytes: the goal is "bounded", i.e. inactive jobs live in SQLite, not in
RAM), the peak RSS (VmHWM, which also counts the window of active
jobs: see --window), and the end-to-end job rate of each segment.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import Instance, Report, add_args, progress, rss_kib  # noqa: E402
from pipeline import WINDOW, parse_sizes, simulated_jobspec, submit_window, wait_window  # noqa: E402


def one_run(h, checkpoints, window):
    """{checkpoint or 0: RSS KiB}, {checkpoint: segment job/s}, peak RSS KiB."""
    pid = int(h.attr_get("broker.pid"))
    jobspec = simulated_jobspec()
    rss = {0: rss_kib(pid)}
    rates = {}
    done = 0
    for cp in checkpoints:
        t0 = time.perf_counter()
        start = done
        while done < cp:
            k = min(window, cp - done)
            submit_window(h, jobspec, k)
            failed = wait_window(h, k)
            if failed:
                raise RuntimeError(f"{failed} job(s) failed")
            done += k
        rates[cp] = (done - start) / (time.perf_counter() - t0)
        rss[cp] = rss_kib(pid)
    return rss, rates, rss_kib(pid, "VmHWM")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_args(parser, runs=2)
    parser.add_argument("--checkpoints", type=parse_sizes, default=[10000, 50000, 100000],
                        help="inactive job counts to read RSS at (default 10000,50000,100000)")
    parser.add_argument("--window", type=int, default=WINDOW,
                        help=f"jobs submitted then waited at a time (default {WINDOW})")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.checkpoints, args.window = 1, [50, 200], 50
    checkpoints = sorted(args.checkpoints)
    report = Report("memory", args, width=44)
    samples = {cp: [] for cp in [0] + checkpoints}
    rates = {cp: [] for cp in checkpoints}
    peaks = []
    for i in range(args.runs):
        with Instance(args) as inst:
            rss, rate, peak = one_run(inst.handle, checkpoints, args.window)
        peaks.append(peak / 1024)
        for cp, kib in rss.items():
            samples[cp].append(kib / 1024)
        for cp, r in rate.items():
            rates[cp].append(r)
        progress(f"memory run {i + 1}/{args.runs}: "
                 + ", ".join(f"{cp:,}: {kib / 1024:.1f} MiB" for cp, kib in rss.items()))
    print(f"memory: broker VmRSS, simulated jobs submitted and waited in windows of "
          f"{args.window:,}, {args.runs} fresh instances")
    for cp in [0] + checkpoints:
        label = "RSS at start" if cp == 0 else f"RSS after {cp:,} inactive jobs"
        report.add(label, samples[cp], "MiB", None, "{:,.1f}", higher_is_better=False)
    report.add("peak RSS (VmHWM)", peaks, "MiB", None, "{:,.1f}", higher_is_better=False)
    prev = 0
    for cp in checkpoints:
        report.add(f"job/s, jobs {prev:,}-{cp:,}", rates[cp], "job/s", None, "{:,.0f}")
        prev = cp
    if len(checkpoints) > 1:
        first, last = checkpoints[0], checkpoints[-1]
        growth = [b - a for a, b in zip(samples[first], samples[last])]
        report.add(f"growth {first:,} -> {last:,}", growth, "MiB", None, "{:,.1f}",
                   higher_is_better=False)
        per_job = statistics.median(growth) * 1024 * 1024 / (last - first)
        report.note(f"growth per inactive job: {per_job:,.0f} bytes (median)")
        report.data["growth bytes/job"] = per_job
    report.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
