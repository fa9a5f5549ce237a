"""The benchmarks still run (tiny sizes; no timing is asserted)."""

import os
import subprocess
import sys

BENCH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "bench")


def run(script, *args):
    env = dict(os.environ)
    env.pop("FLUX_URI", None)
    res = subprocess.run([sys.executable, os.path.join(BENCH, script), *args],
                         capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_rpc_bench_smoke():
    out = run("rpc.py", "--smoke")
    assert "rpc round trip" in out and "median" in out


def test_codec_bench_runs():
    out = run("codec.py", "--smoke")
    assert "codec ratio" in out
