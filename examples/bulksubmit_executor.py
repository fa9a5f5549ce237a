#!/usr/bin/env python3
"""Seed part (b): submit one command N times through FluxExecutor.

Usage: bulksubmit_executor.py [-n N] [-q] COMMAND...

Every job is submitted with ``FluxExecutor.submit``; the submission is timed
until every future knows its job ID (the jobs are then in the instance).
``concurrent.futures.as_completed`` then collects the jobs as they finish,
with a progress bar.  Prints submit and run rates in jobs per second.
"""

import argparse
import concurrent.futures
import sys
import time

from flux.job import FluxExecutor, JobspecV1

LABEL = "bulksubmit_executor"


def progress(done, total, rate, width=58, stream=sys.stdout):
    filled = int(width * done / total) if total else width
    bar = "█" * filled + " " * (width - filled)
    stream.write(f"\r|{bar}| {100.0 * done / total:5.1f}% ({rate:.1f} job/s)")
    stream.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--njobs", type=int, default=100, metavar="N",
                        help="number of jobs to run (default 100)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if not args.command:
        args.command = ["true"]
    total = args.njobs

    jobspec = JobspecV1.from_command(args.command)
    failed = 0
    t0 = time.perf_counter()
    with FluxExecutor() as executor:
        futures = [executor.submit(jobspec) for _ in range(total)]
        for fut in futures:
            fut.jobid()  # the job is in the instance
        elapsed = time.perf_counter() - t0
        print(f"{LABEL}: submitted {total} jobs in {elapsed:.2f}s. "
              f"{total / elapsed:.2f}job/s")
        for done, fut in enumerate(concurrent.futures.as_completed(futures), 1):
            if fut.exception() is not None or fut.result() != 0:
                failed += 1
            now = time.perf_counter() - t0
            if done == 1:
                print(f"{LABEL}: First job finished in about {now:.3f}s")
            if not args.quiet and (done == total or done % 16 == 0):
                progress(done, total, done / now)
    elapsed = time.perf_counter() - t0
    if not args.quiet and total:
        print()
    print(f"{LABEL}: Ran {total} jobs in {elapsed:.1f}s. {total / elapsed:.1f} job/s")
    if failed:
        print(f"{LABEL}: {failed} job(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
