#!/usr/bin/env python3
"""Latency of one job (API round trip, ``flux run true``) and ``flux submit --cc``.

RUNS times, in a fresh instance each (after a few warm-up jobs):

- api: N (default 50) sequential ``flux.job.submit(h, J, waitable=True)``
  then ``flux.job.wait(h, id)`` of ``true``; the sample is the median
  milliseconds per job over the N;
- cli: M (default 20) sequential ``<venv>/bin/flux run true`` as a
  subprocess with FLUX_URI set to the instance; the sample is the median
  milliseconds per command (interpreter start-up included, as a user sees
  it);
- cc: one ``<venv>/bin/flux submit --cc=1-K --wait true`` (K default
  1000) as a subprocess; the sample is K / its wall time in job/s.

Prints the median over the runs and its spread (min/max of the per-run
medians), with upstream's figures from ANCHORS.md (46.8 ms 138 ms and 46 job/s),
and for reference the time of one spawn-and-reap of ``true`` (the floor).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import Instance, Report, add_args, flux_command, progress  # noqa: E402
from floor import floor_rate  # noqa: E402

import flux.job  # noqa: E402

UPSTREAM_API_MS = 46.8
UPSTREAM_CLI_MS = 138.0
UPSTREAM_CC_RATE = 1000 / 21.9  # flux submit --cc=1-1000 --wait true: 21.9 s
WARMUP = 3


def api_latency(h, n, jobspec=None):
    """Median ms of submit(waitable) + wait of ``jobspec`` (default: one
    task of ``true``), sequential, after ``WARMUP`` jobs."""
    if jobspec is None:
        jobspec = flux.job.JobspecV1.from_command(["true"]).dumps()
    times = []
    for i in range(WARMUP + n):
        t0 = time.perf_counter()
        jobid = flux.job.submit(h, jobspec, waitable=True)
        result = flux.job.wait(h, jobid)
        elapsed = time.perf_counter() - t0
        if not result.success:
            raise RuntimeError(f"job {jobid} failed: {result.errstr!r}")
        if i >= WARMUP:
            times.append(elapsed * 1e3)
    return statistics.median(times)


def cli_latency(uri, m):
    """Median ms of ``flux run true`` as a subprocess."""
    env = dict(os.environ)
    env["FLUX_URI"] = uri
    cmd = [flux_command(), "run", "true"]
    times = []
    for i in range(1 + m):
        t0 = time.perf_counter()
        res = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL,
                             capture_output=True)
        elapsed = time.perf_counter() - t0
        if res.returncode != 0:
            raise RuntimeError(f"flux run true: exit {res.returncode}: {res.stderr!r}")
        if i >= 1:
            times.append(elapsed * 1e3)
    return statistics.median(times)


def cc_rate(uri, k):
    """job/s of one ``flux submit --cc=1-K --wait true`` (start-up included)."""
    env = dict(os.environ)
    env["FLUX_URI"] = uri
    cmd = [flux_command(), "submit", f"--cc=1-{k}", "--wait", "true"]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"flux submit --cc: exit {res.returncode}: {res.stderr!r}")
    if len(res.stdout.split()) != k:
        raise RuntimeError(f"flux submit --cc=1-{k} printed {len(res.stdout.split())} ids")
    return k / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_args(parser, runs=3)
    parser.add_argument("-n", type=int, default=50, help="API jobs per run (default 50)")
    parser.add_argument("-m", type=int, default=20,
                        help="'flux run true' per run (default 20)")
    parser.add_argument("-k", type=int, default=1000,
                        help="jobs of 'flux submit --cc=1-K --wait' (default 1000)")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.n, args.m, args.k = 1, 5, 2, 10
    report = Report("latency", args, width=40)
    api, cli, cc, spawn = [], [], [], []
    for i in range(args.runs):
        spawn.append(1e3 / floor_rate(["true"], 200 if not args.smoke else 20))
        with Instance(args) as inst:
            a = api_latency(inst.handle, args.n)
            c = cli_latency(inst.uri, args.m)
            r = cc_rate(inst.uri, args.k)
        api.append(a)
        cli.append(c)
        cc.append(r)
        progress(f"latency run {i + 1}/{args.runs}: api {a:.2f} ms, flux run {c:.1f} ms, "
                 f"submit --cc {r:,.0f} job/s")
    print(f"latency: sequential, {args.n} API jobs and {args.m} 'flux run true' "
          f"per run, {args.runs} fresh instances")
    report.add("submit+wait true (API)", api, "ms", UPSTREAM_API_MS, "{:,.2f}",
               higher_is_better=False)
    report.add("flux run true (shell)", cli, "ms", UPSTREAM_CLI_MS, "{:,.1f}",
               higher_is_better=False)
    report.add(f"flux submit --cc=1-{args.k} --wait", cc, "job/s", UPSTREAM_CC_RATE,
               "{:,.0f}")
    report.add("floor: spawn+reap true", spawn, "ms", None, "{:,.2f}",
               higher_is_better=False)
    report.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
