"""bench/multinode.py still runs (tiny sizes; no timing is asserted)."""

import os
import subprocess
import sys

BENCH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "bench")


def test_multinode_bench_smoke():
    env = dict(os.environ)
    env.pop("FLUX_URI", None)
    res = subprocess.run([sys.executable, os.path.join(BENCH, "multinode.py"), "--smoke"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    assert "multinode submit --cc=1-10 --wait -N1" in res.stdout
