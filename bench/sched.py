#!/usr/bin/env python3
"""The scheduler's pass cost, in process (no broker): sched's protocol
driven directly, on one node of 1,024 cores (``-Sresource.cores=1024``).

10,000 pending jobs of mixed sizes (1 to 256 cores, random with a fixed
seed; time limits of 1 min to 1 h) are queued; then:

1. the first pass, from an idle node: allocates from the head of the
   queue until a job does not fit; that one gets a reservation and the
   jobs behind it are considered for backfill;
2. FREES steady-state passes (default 2,000): the running job that ends
   first is freed and one pass runs.

Printed: microseconds per pass and per job considered (a job sched tried
to place: allocated, the blocked head, or one behind it looked at for
backfill), and how many jobs were started.  ``--unlimited`` gives the
jobs no time limit (no reservation can be computed: the pass stops at
the first job that does not fit).  The same script runs against any
tree with sched's message protocol (``PYTHONPATH=OTHER/src``), to compare.
"""

import argparse
import asyncio
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

from flux.job import JobspecV1  # noqa: E402
from fluxrm.jobrequest import JobRequest  # noqa: E402
from fluxrm.modules.resource import Rank  # noqa: E402
from fluxrm.modules.sched import Sched  # noqa: E402

SIZES = [1, 1, 1, 1, 2, 2, 4, 8, 16, 32, 64, 256]


def requests(unlimited):
    """A few distinct requests (identical submissions share one, as
    job-ingest's cache makes them)."""
    out = {}
    for cores in sorted(set(SIZES)):
        for minutes in (1, 10, 60):
            js = JobspecV1.from_command(["true"], num_tasks=cores)
            if not unlimited:
                js.duration = minutes * 60
            out[cores, minutes] = JobRequest(json.loads(js.dumps()))
    return out


def make_sched(ncores):
    sched = Sched(None)
    sched.add_nodes([Rank(0, "node0", list(range(ncores)), 0, [])])
    sched.manager_handle = lambda payload: None
    return sched


def counting(sched):
    """Wrap the placement attempts to count the jobs considered."""
    count = [0]
    for name in ("try_alloc", "try_alloc_capped"):
        inner = getattr(sched, name, None)
        if inner is None:
            continue

        def wrapped(*args, _inner=inner, **kwargs):
            count[0] += 1
            return _inner(*args, **kwargs)
        setattr(sched, name, wrapped)
    return count


def scenario(args, count_jobs):
    rng = random.Random(1)
    reqs = requests(args.unlimited)
    jobs = [[i + 1, 16, 1, 1.0, reqs[rng.choice(SIZES), rng.choice((1, 10, 60))]]
            for i in range(args.jobs)]
    sched = make_sched(args.cores)
    count = counting(sched) if count_jobs else [0]
    out = {}

    async def go():
        sched.handle({"msgs": [{"type": "alloc", "jobs": jobs}]})
        sched._pass_scheduled = False
        t0 = time.perf_counter()
        sched.schedule()
        out["first_pass_s"] = time.perf_counter() - t0
        out["first_pass_jobs"] = count[0]
        started = len(sched.allocations)
        out["first_pass_started"] = started
        sched._to_manager.clear()
        count[0] = 0
        elapsed = 0.0
        passes = 0
        for _ in range(args.frees):
            if not sched.allocations:
                break
            # the job that ends first: the smallest expiration of its R
            jobid = min(sched.allocations)
            sched.free(jobid)
            sched._pass_scheduled = False
            t0 = time.perf_counter()
            sched.schedule()
            elapsed += time.perf_counter() - t0
            passes += 1
            sched._to_manager.clear()
        out["passes"] = passes
        out["steady_s"] = elapsed
        out["steady_jobs"] = count[0]
        out["steady_started"] = len(sched.allocations) + passes - started
    asyncio.run(go())
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--cores", type=int, default=1024)
    parser.add_argument("--frees", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--unlimited", action="store_true",
                        help="jobs without time limits")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run")
    args = parser.parse_args()
    if args.smoke:
        args.jobs, args.frees, args.runs = 500, 50, 1
    counts = scenario(args, count_jobs=True)
    best = None
    for _ in range(args.runs):
        t = scenario(args, count_jobs=False)
        if best is None or t["steady_s"] < best["steady_s"]:
            best = t
    first_us = best["first_pass_s"] * 1e6
    steady_us = best["steady_s"] * 1e6
    print(f"sched pass cost: {args.jobs} pending jobs of mixed sizes on "
          f"{args.cores} cores{' (no time limits)' if args.unlimited else ''}")
    print(f"  first pass:   {first_us / 1000:8.2f} ms, {counts['first_pass_jobs']} jobs "
          f"considered ({first_us / max(counts['first_pass_jobs'], 1):.2f} us/job), "
          f"{best['first_pass_started']} started")
    print(f"  steady state: {best['passes']} passes, {steady_us / max(best['passes'], 1):.1f}"
          f" us/pass, {counts['steady_jobs']} jobs considered "
          f"({steady_us / max(counts['steady_jobs'], 1):.2f} us/job), "
          f"{best['steady_started']} started")


if __name__ == "__main__":
    main()
