"""bench/overlay.py and bench/failure.py still run (tiny sizes; no timing
is asserted)."""

import os
import subprocess
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "bench")


@pytest.mark.parametrize("bench, expect", [
    ("overlay.py", "broker CPU per routed message"),
    ("failure.py", "its node allocatable"),
])
def test_bench_smoke(bench, expect):
    env = dict(os.environ)
    env.pop("FLUX_URI", None)
    res = subprocess.run([sys.executable, os.path.join(BENCH, bench), "--smoke"],
                         capture_output=True, text=True, timeout=180, env=env)
    assert res.returncode == 0, res.stderr
    assert expect in res.stdout
