#!/usr/bin/env python3
"""Seed part (a): 1025 ``sleep 0`` jobspec files, submit_async, then wait each.

Writes N (default 1025) jobspec files (``JobspecV1.from_command(["sleep",
"0"]).dumps()``) to a temporary directory once.  Then, RUNS times:

1. the floor: spawn-and-reap rate of ``sleep 0`` from a plain Python loop
   (``floor.floor_rate``), measured right before the instance starts;
2. a fresh instance; timed exactly as examples/bulksubmit.py does: from
   before reading the first file, every file is read and submitted with
   ``flux.job.submit_async(h, text, waitable=True).then(cb)`` and one
   ``reactor_run()`` collects the IDs (-> submit job/s); then
   ``flux.job.wait(h)`` once per job (-> run job/s = N / time from the
   start to the last wait).

Prints the median and spread of submit job/s, run job/s, the floor and the
ratio run/floor (per run), with upstream's figures from ANCHORS.md.

``--test-size=K`` (K > 1) runs each sample inside ``flux start
--test-size=K`` instead (the script re-runs itself there with ``--inner``);
if ``flux start`` refuses K brokers, it prints "skipped" and exits 0.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import Instance, Report, add_args, flux_command, progress  # noqa: E402
from floor import floor_rate  # noqa: E402

import flux  # noqa: E402
import flux.job  # noqa: E402

COMMAND = ["sleep", "0"]
UPSTREAM = {1: (1293, 56.5), 3: (1353, 50.2)}  # ANCHORS.md: submit, run job/s


def write_jobspecs(directory, n):
    text = flux.job.JobspecV1.from_command(COMMAND).dumps()
    paths = []
    for i in range(n):
        path = os.path.join(directory, f"job{i:05d}.json")
        with open(path, "w") as out:
            out.write(text)
        paths.append(path)
    return paths


def one_run(h, paths):
    """The seed's part (a) against handle ``h``; return (submit/s, run/s)."""
    jobs = []

    def submit_cb(future):
        jobs.append(future.get_id())

    t0 = time.perf_counter()
    for path in paths:
        with open(path) as jobspec:
            flux.job.submit_async(h, jobspec.read(), waitable=True).then(submit_cb)
    if h.reactor_run() < 0:
        raise RuntimeError("reactor_run failed")
    submit_elapsed = time.perf_counter() - t0
    total = len(jobs)
    if total != len(paths):
        raise RuntimeError(f"only {total} of {len(paths)} jobs submitted")
    failed = 0
    for _ in range(total):
        if not flux.job.wait(h).success:
            failed += 1
    run_elapsed = time.perf_counter() - t0
    if failed:
        raise RuntimeError(f"{failed} job(s) failed")
    return total / submit_elapsed, total / run_elapsed


def specdir_paths(directory):
    return sorted(os.path.join(directory, name) for name in os.listdir(directory))


def inner(args):
    """One sample in the instance of FLUX_URI; print it as a JSON line."""
    h = flux.Flux()
    submit, run = one_run(h, specdir_paths(args.specdir))
    print(json.dumps({"submit": submit, "run": run}), flush=True)


def test_size_supported(size):
    """(ok, why): does ``flux start --test-size=size`` run a command?"""
    env = dict(os.environ)
    env.pop("FLUX_URI", None)
    res = subprocess.run([flux_command(), "start", f"--test-size={size}", "true"],
                         capture_output=True, text=True, env=env, timeout=120)
    why = (res.stderr.strip().splitlines() or [f"exit status {res.returncode}"])[-1]
    return res.returncode == 0, why


def run_in_flux_start(args):
    """One sample through ``flux start --test-size``: (submit/s, run/s)."""
    env = dict(os.environ)
    env.pop("FLUX_URI", None)
    cmd = [flux_command(), "start", f"--test-size={args.test_size}"]
    for item in args.setattr:
        cmd.extend(["-S", item])
    cmd += [sys.executable, os.path.abspath(__file__), "--inner", "--specdir", args.specdir]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"flux start --test-size={args.test_size} failed: {res.stderr}")
    data = json.loads(res.stdout.strip().splitlines()[-1])
    return data["submit"], data["run"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_args(parser, runs=5)
    parser.add_argument("-n", type=int, default=1025, help="jobs (default 1025)")
    parser.add_argument("--test-size", type=int, default=1, metavar="K",
                        help="brokers in the instance (K > 1: via flux start)")
    parser.add_argument("--floor-n", type=int, default=500,
                        help="spawns per floor sample (default 500)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--specdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        return inner(args)
    if args.smoke:
        args.runs, args.n, args.floor_n = min(args.runs, 2), 20, 20

    name = "bulksubmit" if args.test_size == 1 else f"bulksubmit[test-size={args.test_size}]"
    report = Report(name, args)
    if args.test_size != 1:
        ok, why = test_size_supported(args.test_size)
        if not ok:
            report.note(f"skipped: flux start --test-size={args.test_size} refused ({why})")
            report.close()
            return 0

    submit, run, floors, ratios = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-bulksubmit-") as tmp:
        paths = write_jobspecs(tmp, args.n)
        args.specdir = tmp
        for i in range(args.runs):
            fl = floor_rate(COMMAND, args.floor_n)
            if args.test_size == 1:
                with Instance(args) as inst:
                    s, r = one_run(inst.handle, paths)
            else:
                s, r = run_in_flux_start(args)
            submit.append(s)
            run.append(r)
            floors.append(fl)
            ratios.append(r / fl)
            progress(f"{name} run {i + 1}/{args.runs}: submit {s:,.0f} job/s, "
                     f"run {r:,.1f} job/s, floor {fl:,.0f}/s")
    up_submit, up_run = UPSTREAM.get(args.test_size, (None, None))
    print(f"{name}: {args.n} x '{' '.join(COMMAND)}', {args.runs} fresh instances")
    report.add("submit", submit, "job/s", up_submit, "{:,.0f}")
    report.add("run", run, "job/s", up_run)
    report.add("floor (sleep 0)", floors, "spawn/s", None, "{:,.0f}")
    report.add("run/floor", ratios, "x", None, "{:.3f}")
    if up_run is not None:
        report.note(f"upstream run/floor (vs ANCHORS floor ~1,700/s): "
                    f"{up_run / 1700:.3f}; ours/upstream run: "
                    f"{statistics.median(run) / up_run:.1f}x")
    report.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
