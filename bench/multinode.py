#!/usr/bin/env python3
"""Jobs across ranks: latency of a job on every rank, and one-node jobs
spread over the ranks.

RUNS times, in a fresh ``flux start --test-size=SIZE`` (default 8; every
broker on this machine), from inside the instance (after a few warm-up
jobs):

- run -N: M (default 20) sequential ``flux run -NSIZE -nSIZE true`` as a
  subprocess (interpreter start-up included, as a user sees it); the
  sample is the median milliseconds per command (upstream, ANCHORS.md:
  245 ms at SIZE 8); interleaved with as many ``flux run true`` (one task,
  placed on rank 0), the same command's cost without other ranks;
- api -N: N (default 50) sequential ``submit(waitable=True)`` + ``wait``
  of the same job through the API: the job's own latency, without the
  command's start-up; the sample is the median milliseconds;
- cc: one ``flux submit --cc=1-K --wait -N1 -n1 true`` (K default 500),
  the jobs spread over the ranks by the scheduler; the sample is K / its
  wall time in job/s (upstream: 42.9 job/s at SIZE 8), and the CPU all
  brokers used during it per job (from /proc).

Prints the median over the runs and its spread (min/max of the runs).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import (  # noqa: E402
    Report, add_args, broker_pids, flux_command, process_cpu, progress)
from latency import WARMUP, api_latency  # noqa: E402

UPSTREAM_RUN_MS = 245.0  # flux run -N8 -n8 true on --test-size=8
UPSTREAM_CC_RATE = 42.9  # flux submit --cc=1-500 --wait -N1 -n1 true, same


def inner(m, n, k):
    """Run inside the instance: print the figures as JSON."""
    import flux
    import flux.job

    h = flux.Flux()
    pids = broker_pids(h)
    size = len(pids)
    spread = [f"-N{size}", f"-n{size}"]
    times = {"spread": [], "one": []}
    for i in range(WARMUP + m):  # interleaved: the same conditions for both
        for kind, opts in (("spread", spread), ("one", [])):
            t0 = time.perf_counter()
            res = subprocess.run([flux_command(), "run", *opts, "true"],
                                 stdin=subprocess.DEVNULL, capture_output=True)
            elapsed = time.perf_counter() - t0
            if res.returncode != 0:
                raise RuntimeError(f"flux run {' '.join(opts)} true: {res.stderr!r}")
            if i >= WARMUP:
                times[kind].append(elapsed * 1e3)
    run_ms = statistics.median(times["spread"])
    one_ms = statistics.median(times["one"])
    api_ms = api_latency(h, n, flux.job.JobspecV1.from_command(
        ["true"], num_tasks=size, num_nodes=size).dumps())
    cc_cmd = [flux_command(), "submit", f"--cc=1-{k}", "--wait", "-N1", "-n1", "true"]
    cpu0 = sum(process_cpu(p) for p in pids)
    t0 = time.perf_counter()
    res = subprocess.run(cc_cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    cpu = sum(process_cpu(p) for p in pids) - cpu0
    if res.returncode != 0 or len(res.stdout.split()) != k:
        raise RuntimeError(f"flux submit --cc=1-{k}: {res.returncode}: {res.stderr!r}")
    ranks = {job.get("ranks") for job in flux.job.job_list(
        h, max_entries=k, attrs=["ranks"]).get_jobs()}
    print(json.dumps({"run_ms": run_ms, "one_ms": one_ms, "api_ms": api_ms, "cc_rate": k / elapsed,
                      "cc_cpu_us": cpu / k * 1e6, "cc_ranks": len(ranks)}))


def one_run(args):
    cmd = [flux_command(), "start", f"--test-size={args.size}"]
    for item in args.setattr:
        cmd.extend(["-S", item])
    cmd += [sys.executable, os.path.abspath(__file__), "--inner",
            f"{args.m},{args.n},{args.k}"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        raise RuntimeError(f"flux start --test-size={args.size} failed: {res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_args(parser, runs=3)
    parser.add_argument("--size", type=int, default=8, help="brokers (default 8)")
    parser.add_argument("-m", type=int, default=20,
                        help="'flux run -NSIZE -nSIZE true' per run (default 20)")
    parser.add_argument("-n", type=int, default=50,
                        help="API jobs on every rank per run (default 50)")
    parser.add_argument("-k", type=int, default=500,
                        help="jobs of 'flux submit --cc=1-K --wait -N1' (default 500)")
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(*(int(v) for v in args.inner.split(",")))
        return 0
    if args.smoke:
        args.runs, args.size, args.m, args.n, args.k = 1, 2, 2, 3, 10
    report = Report("multinode", args, width=44)
    samples = []
    for i in range(args.runs):
        s = one_run(args)
        samples.append(s)
        progress(f"multinode run {i + 1}/{args.runs}: flux run -N{args.size}"
                 f" {s['run_ms']:.1f} ms (-N1 {s['one_ms']:.1f} ms), api {s['api_ms']:.2f} ms, submit --cc"
                 f" {s['cc_rate']:,.0f} job/s ({s['cc_cpu_us']:,.0f} us broker CPU"
                 f" per job, {s['cc_ranks']} ranks used)")
    size = args.size
    print(f"multinode: --test-size={size}, {args.runs} fresh instances")
    upstream = size == 8
    report.add(f"flux run -N{size} -n{size} true (shell)", [s["run_ms"] for s in samples],
               "ms", UPSTREAM_RUN_MS if upstream else None, "{:,.1f}",
               higher_is_better=False)
    report.add("flux run true (shell, one task)", [s["one_ms"] for s in samples],
               "ms", None, "{:,.1f}", higher_is_better=False)
    report.add(f"-N{size} -n{size} true (API)", [s["api_ms"] for s in samples], "ms",
               None, "{:,.2f}", higher_is_better=False)
    report.add(f"submit --cc=1-{args.k} --wait -N1", [s["cc_rate"] for s in samples],
               "job/s", UPSTREAM_CC_RATE if upstream and args.k == 500 else None,
               "{:,.0f}")
    report.add("  broker CPU per job (all ranks)", [s["cc_cpu_us"] for s in samples],
               "us", None, "{:,.0f}", higher_is_better=False)
    report.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
