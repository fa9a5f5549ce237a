#!/usr/bin/env python3
"""Nested instances: the seed's part (a) inside ``flux batch -N1``, and
``flux alloc -N2 true``.

RUNS times, interleaved, each in a fresh ``flux start --test-size=2``:

1. top level: the seed's part (a) (``bulksubmit.one_run``: N ``sleep 0``
   jobspec files, submit_async, then wait each) against the instance;
2. nested: the same, run as the batch script of ``flux batch -N1`` in that
   instance (so against a child instance on one node of the two);
3. ``flux alloc -N2 true``: from the command's start to its exit, a new
   two-broker instance across both brokers of the parent (PMI from the
   parent's execution service), ``ALLOCS`` times per run;
4. ANCHORS.md's MPI row: ``flux start --test-size=2 flux run -N2 -n4`` of
   an mpi4py ring (MPICH from the ``mpich`` package), start to exit
   (skipped if mpi4py cannot be imported).

Prints medians and spreads of the submit and run rates of 1 and 2 and
their ratio nested/top (per run), of the alloc time and of the MPI run.
ANCHORS.md has no upstream figure for 1-3; upstream's MPI row is 2.0 s.
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
from _common import Report, add_args, flux_command, progress  # noqa: E402
from bulksubmit import write_jobspecs  # noqa: E402

ALLOCS = 5
UPSTREAM_MPI = 2.0  # s, ANCHORS.md
RING = ("from mpi4py import MPI; c = MPI.COMM_WORLD; r, n = c.Get_rank(), "
        "c.Get_size(); t = c.sendrecv(r, dest=(r + 1) % n, source=(r - 1) % n); "
        "assert t == (r - 1) % n")
# MPICH between "nodes" on one host: TCP over the loopback (tests/test_job_pmi.py)
MPI_ENV = {"MPIR_CVAR_CH4_NETMOD": "ofi", "FI_PROVIDER": "tcp", "FI_TCP_IFACE": "lo"}
BULKSUBMIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bulksubmit.py")


def inner_alloc(args):
    """In the instance of FLUX_URI: time ``flux alloc -N2 true`` (a JSON list)."""
    times = []
    for _ in range(args.allocs):
        t0 = time.perf_counter()
        subprocess.run([flux_command(), "alloc", "-N2", "true"], check=True)
        times.append(time.perf_counter() - t0)
    print(json.dumps(times), flush=True)


def in_flux_start(args, *command):
    """Run ``command`` as the initial program of a fresh ``flux start
    --test-size=2``; its last line of output, decoded as JSON."""
    env = dict(os.environ)
    env.pop("FLUX_URI", None)
    cmd = [flux_command(), "start", "--test-size=2"]
    for item in args.setattr:
        cmd.extend(["-S", item])
    res = subprocess.run(cmd + list(command), capture_output=True, text=True,
                         env=env, timeout=600)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])}...: {res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def mpi_ring_seconds():
    """ANCHORS.md's MPI row: ``flux start`` + the ring job, start to exit."""
    env = dict(os.environ, **MPI_ENV)
    env.pop("FLUX_URI", None)
    t0 = time.perf_counter()
    subprocess.run([flux_command(), "start", "--test-size=2", "flux", "run", "-N2",
                    "-n4", sys.executable, "-c", RING], check=True, env=env,
                   timeout=300)
    return time.perf_counter() - t0


def have_mpi4py():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def part_a(args, nested):
    """The seed's part (a) at top level or inside ``flux batch -N1``:
    (submit/s, run/s)."""
    inner = [sys.executable, BULKSUBMIT, "--inner", "--specdir", args.specdir]
    if not nested:
        data = in_flux_start(args, *inner)
    else:
        out = os.path.join(args.specdir, "..", "batch.out")
        script = (f'id=$({flux_command()} batch -N1 --output={out} --wrap '
                  f'{" ".join(inner)}) && {flux_command()} job attach $id '
                  f'&& tail -n1 {out}')
        data = in_flux_start(args, "sh", "-c", script)
    return data["submit"], data["run"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_args(parser, runs=3)
    parser.add_argument("-n", type=int, default=1025, help="jobs (default 1025)")
    parser.add_argument("--allocs", type=int, default=ALLOCS,
                        help=f"flux alloc -N2 true per run (default {ALLOCS})")
    parser.add_argument("--inner-alloc", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner_alloc:
        return inner_alloc(args)
    if args.smoke:
        args.runs, args.n, args.allocs = 1, 20, 1
    report = Report("nested", args)
    figures = {key: [] for key in ("top submit", "top run", "nested submit",
                                   "nested run", "ratio", "alloc", "mpi")}
    mpi = have_mpi4py()
    with tempfile.TemporaryDirectory(prefix="bench-nested-") as tmp:
        args.specdir = os.path.join(tmp, "specs")
        os.mkdir(args.specdir)
        write_jobspecs(args.specdir, args.n)
        for i in range(args.runs):
            ts, tr = part_a(args, nested=False)
            ns, nr = part_a(args, nested=True)
            allocs = in_flux_start(args, sys.executable, os.path.abspath(__file__),
                                   "--inner-alloc", f"--allocs={args.allocs}")
            for key, value in (("top submit", ts), ("top run", tr),
                               ("nested submit", ns), ("nested run", nr),
                               ("ratio", nr / tr)):
                figures[key].append(value)
            figures["alloc"].extend(allocs)
            if mpi:
                figures["mpi"].append(mpi_ring_seconds())
            progress(f"nested run {i + 1}/{args.runs}: top {tr:,.1f} job/s, "
                     f"in flux batch -N1 {nr:,.1f} job/s, flux alloc -N2 true "
                     f"{statistics.median(allocs) * 1000:,.0f} ms")
    print(f"nested: part (a) {args.n} x 'sleep 0' on --test-size=2, top level and"
          f" inside flux batch -N1; flux alloc -N2 true; {args.runs} runs")
    report.add("top-level submit", figures["top submit"], "job/s", None, "{:,.0f}")
    report.add("top-level run", figures["top run"], "job/s")
    report.add("in flux batch -N1 submit", figures["nested submit"], "job/s",
               None, "{:,.0f}")
    report.add("in flux batch -N1 run", figures["nested run"], "job/s")
    report.add("nested/top run", figures["ratio"], "x", None, "{:.3f}")
    report.add("flux alloc -N2 true", [t * 1000 for t in figures["alloc"]], "ms",
               None, "{:,.0f}", higher_is_better=False)
    if mpi:
        report.add("MPI ring: flux start --test-size=2 + run -N2 -n4",
                   figures["mpi"], "s", UPSTREAM_MPI, "{:.2f}",
                   higher_is_better=False)
    else:
        report.note("MPI ring: skipped (mpi4py is not installed)")
    report.note("upstream: no figure in ANCHORS.md for part (a) nested or for "
                "flux alloc -N2 true")
    report.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
