#!/usr/bin/env python3
"""Seed part (a): submit jobspec files with submit_async, then wait for each.

Usage: bulksubmit.py [-q] JOBSPEC_FILE...

Every file is submitted (waitable) with ``flux.job.submit_async``; the
reactor runs until every submission is answered; then ``flux.job.wait``
collects each job as it completes, with a progress bar.  Prints submit and
run rates in jobs per second.
"""

import argparse
import sys
import time

import flux
import flux.job


def progress(done, total, rate, width=58, stream=sys.stdout):
    filled = int(width * done / total) if total else width
    bar = "█" * filled + " " * (width - filled)
    stream.write(f"\r|{bar}| {100.0 * done / total:5.1f}% ({rate:.1f} job/s)")
    stream.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("files", nargs="+", metavar="JOBSPEC_FILE")
    args = parser.parse_args()

    h = flux.Flux()
    jobs = []
    first_finished = []

    def submit_cb(future):
        jobs.append(future.get_id())

    print("bulksubmit: Starting...")
    t0 = time.perf_counter()
    for path in args.files:
        with open(path) as jobspec:
            flux.job.submit_async(h, jobspec.read(), waitable=True).then(submit_cb)
    if h.reactor_run() < 0:
        h.fatal_error("reactor start failed")
    elapsed = time.perf_counter() - t0
    total = len(jobs)
    print(f"bulksubmit: submitted {total} jobs in {elapsed:.2f}s. "
          f"{total / elapsed:.2f}job/s")

    failed = 0
    for done in range(1, total + 1):
        result = flux.job.wait(h)
        if not result.success:
            failed += 1
        now = time.perf_counter() - t0
        if done == 1:
            first_finished.append(now)
            print(f"bulksubmit: First job finished in about {now:.3f}s")
        if not args.quiet and (done == total or done % 16 == 0):
            progress(done, total, done / now)
    elapsed = time.perf_counter() - t0
    if not args.quiet:
        print()
    print(f"bulksubmit: Ran {total} jobs in {elapsed:.1f}s. {total / elapsed:.1f} job/s")
    if failed:
        print(f"bulksubmit: {failed} job(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
