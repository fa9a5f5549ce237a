#!/usr/bin/env python3
"""Seed part (b): ``FluxExecutor``, N x ``true`` and 200 x ``/bin/sleep 0``.

For each workload, RUNS times: the floor (spawn-and-reap rate of the same
command from a plain Python loop, ``floor.floor_rate``) right before a
fresh instance; then, timed as examples/bulksubmit_executor.py does: N
``executor.submit(jobspec)`` and ``fut.jobid()`` for each (-> submit job/s,
the jobs are then in the instance); ``as_completed`` over the futures, then
the executor's ``with`` block exits (it waits until every job is clean)
(-> run job/s = N / time from the first submit to that exit).

Prints the median and spread of submit job/s, run job/s, the floor and
run/floor (per run), with upstream's figures from ANCHORS.md (for 200 x
``/bin/sleep 0``; there is none for ``true``).
"""

import argparse
import concurrent.futures
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import Instance, Report, add_args, progress  # noqa: E402
from floor import floor_rate  # noqa: E402

from flux.job import FluxExecutor, JobspecV1  # noqa: E402

UPSTREAM = {"/bin/sleep 0": (512, 50.0)}  # ANCHORS.md: submit, run job/s


def one_run(uri, command, n):
    """Part (b) against the instance at ``uri``: (submit/s, run/s)."""
    jobspec = JobspecV1.from_command(command)
    failed = 0
    t0 = time.perf_counter()
    with FluxExecutor(handle_args=(uri,)) as executor:
        futures = [executor.submit(jobspec) for _ in range(n)]
        for fut in futures:
            fut.jobid()
        submit_elapsed = time.perf_counter() - t0
        for fut in concurrent.futures.as_completed(futures):
            if fut.exception() is not None or fut.result() != 0:
                failed += 1
    run_elapsed = time.perf_counter() - t0
    if failed:
        raise RuntimeError(f"{failed} job(s) failed")
    return n / submit_elapsed, n / run_elapsed


def workload(args, report, command, n):
    label = " ".join(command)
    submit, run, floors, ratios = [], [], [], []
    for i in range(args.runs):
        fl = floor_rate(command, args.floor_n)
        with Instance(args) as inst:
            s, r = one_run(inst.uri, command, n)
        submit.append(s)
        run.append(r)
        floors.append(fl)
        ratios.append(r / fl)
        progress(f"executor {n} x {label} run {i + 1}/{args.runs}: submit {s:,.0f} job/s, "
                 f"run {r:,.1f} job/s, floor {fl:,.0f}/s")
    up_submit, up_run = UPSTREAM.get(label, (None, None))
    tag = f"{n} x {label}"
    report.add(f"{tag} submit", submit, "job/s", up_submit, "{:,.0f}")
    report.add(f"{tag} run", run, "job/s", up_run)
    report.add(f"{tag} floor", floors, "spawn/s", None, "{:,.0f}")
    report.add(f"{tag} run/floor", ratios, "x", None, "{:.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_args(parser, runs=5)
    parser.add_argument("-n", type=int, default=1000, help="jobs of 'true' (default 1000)")
    parser.add_argument("--sleep-n", type=int, default=200,
                        help="jobs of '/bin/sleep 0' (default 200)")
    parser.add_argument("--floor-n", type=int, default=500,
                        help="spawns per floor sample (default 500)")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.n, args.sleep_n, args.floor_n = min(args.runs, 2), 20, 10, 20
    report = Report("executor", args, width=44)
    print(f"executor: FluxExecutor, {args.runs} fresh instances per workload")
    workload(args, report, ["true"], args.n)
    workload(args, report, ["/bin/sleep", "0"], args.sleep_n)
    report.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
