#!/usr/bin/env python3
"""Job pipeline with simulated execution: ingest, manager, scheduler, events.

Jobs are ``true`` with ``attributes.system.exec.test = {"run_duration":
"0s"}``, so job-exec starts no process: what is measured is everything
else a job goes through.  For each size N (default 1,024, 2,048 and
100,000) and RUNS times (default 5; 3 for sizes over 20,000, see
--big-runs), in a fresh instance:

1. submit: ``flux.job.submit_async(h, J, waitable=True).then(cb)`` for all N
   jobs, in windows of at most WINDOW (default 10,000) with one
   ``reactor_run()`` per window, so the client never holds more than WINDOW
   futures (-> submit job/s = N / time to the last submit response);
2. wait: ``flux.job.wait_async(h).then(cb)`` (any job) N times, in the same
   windows (-> end-to-end job/s = N / time from the first submit to the
   last wait response).

Prints the median and spread of both per size (and of the broker's CPU
time per job, which a busy machine disturbs less), upstream's figures from
ANCHORS.md, and the end-to-end rate of every size relative to the
smallest (the goal: at 100K within 10% of 1K).
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import Instance, Report, add_args, progress  # noqa: E402

import flux.job  # noqa: E402

# ANCHORS.md: size -> (submit job/s, end-to-end job/s)
UPSTREAM = {1024: (None, 135.5), 2048: (1377, 126), 8192: (None, 93.0),
            16384: (None, 77.6)}
WINDOW = 10000


def simulated_jobspec(command=("true",), duration="0s"):
    """The text of a jobspec whose execution is simulated by job-exec."""
    js = flux.job.JobspecV1.from_command(list(command))
    js.setattr("system.exec.test", {"run_duration": duration})
    return js.dumps()


def submit_window(h, jobspec, n):
    """Submit ``n`` waitable jobs with submit_async + then; one reactor_run."""
    done = [0]

    def cb(future):
        future.get_id()  # raises if the submission failed
        done[0] += 1

    submit_async = flux.job.submit_async
    for _ in range(n):
        submit_async(h, jobspec, waitable=True).then(cb)
    if h.reactor_run() < 0:
        raise RuntimeError("reactor_run failed")
    if done[0] != n:
        raise RuntimeError(f"only {done[0]} of {n} submissions answered")


def wait_window(h, n):
    """Wait for ``n`` waitable jobs (any); one reactor_run; return failures."""
    results = [0, 0]  # answered, failed

    def cb(future):
        results[0] += 1
        if not future.get_status().success:
            results[1] += 1

    wait_async = flux.job.wait_async
    for _ in range(n):
        wait_async(h).then(cb)
    if h.reactor_run() < 0:
        raise RuntimeError("reactor_run failed")
    if results[0] != n:
        raise RuntimeError(f"only {results[0]} of {n} waits answered")
    return results[1]


def one_run(h, n, window=WINDOW, jobspec=None):
    """Submit all ``n`` then wait all: (submit job/s, end-to-end job/s)."""
    jobspec = jobspec or simulated_jobspec()
    t0 = time.perf_counter()
    left = n
    while left:
        k = min(window, left)
        submit_window(h, jobspec, k)
        left -= k
    t_submit = time.perf_counter() - t0
    failed, left = 0, n
    while left:
        k = min(window, left)
        failed += wait_window(h, k)
        left -= k
    t_all = time.perf_counter() - t0
    if failed:
        raise RuntimeError(f"{failed} job(s) failed")
    return n / t_submit, n / t_all


def parse_sizes(text):
    return [int(s.replace("_", "")) for s in text.split(",") if s.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_args(parser, runs=5)  # the 1K run lasts ~0.15 s: more samples
    parser.add_argument("-n", type=int, help="one size only (N jobs)")
    parser.add_argument("--sizes", type=parse_sizes, default=[1024, 2048, 100000],
                        help="comma-separated sizes (default 1024,2048,100000)")
    parser.add_argument("--big-runs", type=int, default=3,
                        help="runs for sizes over 20,000 (default 3)")
    parser.add_argument("--window", type=int, default=WINDOW,
                        help=f"max futures the client holds (default {WINDOW})")
    args = parser.parse_args()
    if args.n is not None:
        args.sizes = [args.n]
    if args.smoke:
        args.runs, args.sizes, args.window, args.big_runs = min(args.runs, 2), [50, 200], 64, 1
    big_runs = args.big_runs or args.runs

    report = Report("pipeline", args, width=40)
    print(f"pipeline: simulated execution (system.exec.test run_duration=0s), "
          f"window {args.window:,}; submit all, then wait all; fresh instance per run")
    jobspec = simulated_jobspec()
    e2e = {}
    for n in args.sizes:
        runs = big_runs if n > 20000 else args.runs
        submit, total, cpu = [], [], []
        for i in range(runs):
            with Instance(args) as inst:
                cpu0 = inst.broker_cpu()
                s, t = one_run(inst.handle, n, args.window, jobspec)
                cpu1 = inst.broker_cpu()
            submit.append(s)
            total.append(t)
            if cpu0 is not None and cpu1 is not None:
                cpu.append((cpu1 - cpu0) / n * 1e6)
            progress(f"pipeline {n:,} run {i + 1}/{runs}: submit {s:,.0f} job/s, "
                     f"end to end {t:,.1f} job/s")
        up_submit, up_e2e = UPSTREAM.get(n, (None, None))
        report.add(f"{n:,} submit", submit, "job/s", up_submit, "{:,.0f}")
        report.add(f"{n:,} end to end", total, "job/s", up_e2e, "{:,.1f}")
        if cpu:
            report.add(f"{n:,} broker CPU per job", cpu, "us", None, "{:,.0f}",
                       higher_is_better=False)
        e2e[n] = statistics.median(total)
    base = min(e2e)
    for n in sorted(e2e):
        if n != base:
            ratio = e2e[n] / e2e[base]
            goal = "  (goal >= 0.90)" if n >= 100000 else ""
            report.note(f"end to end at {n:,} / at {base:,}: {ratio:.3f}{goal}")
            report.data[f"ratio {n}/{base}"] = ratio
    if len(e2e) > 1:
        report.note("upstream end to end at 8K / 1K: 0.686, 16K / 1K: 0.573")
    report.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
