"""flux.scheduler: a user's scheduler subclass replaces the built-in one
(``flux module remove sched`` / ``flux module load fifo.py``), jobs run
under it with its R; removed, jobs wait; ``flux module load sched``
brings the built-in one back."""

import errno
import json
import textwrap
import time

import pytest

import flux.job
from conftest import _start_instance, poll, run_flux
from flux.job import JobspecV1

FIFO = textwrap.dedent('''
    import heapq
    from flux.scheduler import Scheduler, InfeasibleRequest, InsufficientResources

    class FIFO(Scheduler):
        def schedule(self):
            while self._queue:
                job = self._queue[0]
                try:
                    alloc = self.resources.alloc(job.jobid, job.resource_request)
                except InsufficientResources:
                    return
                except InfeasibleRequest as exc:
                    heapq.heappop(self._queue)
                    job.request.deny(str(exc))
                    continue
                heapq.heappop(self._queue)
                job.request.success(alloc, annotations={"sched": {"by": "fifo"}})
''')


@pytest.fixture(scope="module")
def inst():
    with _start_instance() as instance:
        yield instance


def submit(h, ncores=1):
    return flux.job.submit(h, JobspecV1.from_command(["true"], num_tasks=1,
                                                      cores_per_task=ncores))


def eventlog(h, jobid):
    """The job's events so far, by name (the last of each name)."""
    text = flux.job.job_kvs_lookup(h, jobid, keys=["eventlog"], decode=False)["eventlog"]
    return {e["name"]: e for e in map(json.loads, text.splitlines())}


def _until(h, jobid, name, timeout=60):
    def reached():
        seen = eventlog(h, jobid)
        return seen if name in seen else None

    return poll(reached, f"event {name} of job {jobid}", timeout=timeout)


def state_is_sched(h, jobid):
    """The job reached SCHED (its priority event), not yet allocated."""
    seen = _until(h, jobid, "priority")
    return "alloc" not in seen


def test_user_scheduler_replaces_builtin(inst, tmp_path):
    env = inst.env()
    h = inst.handle()
    fifo = tmp_path / "fifo.py"
    fifo.write_text(FIFO)
    out = run_flux("module", "remove", "sched", env=env)
    assert out.returncode == 0, out.stderr
    try:
        waiting = submit(h)
        assert state_is_sched(h, waiting)  # no scheduler: it waits in SCHED
        loaded_at = time.time()
        out = run_flux("module", "load", str(fifo), env=env)
        assert out.returncode == 0, out.stderr
        seen = _until(h, waiting, "clean")
        assert seen["alloc"]["timestamp"] >= loaded_at  # it waited for the scheduler
        assert seen["alloc"]["context"]["annotations"]["sched"]["by"] == "fifo"
        jobs = [submit(h) for _ in range(4)]
        for jobid in jobs:
            seen = _until(h, jobid, "clean")
            assert seen["alloc"]["context"]["annotations"]["sched"]["by"] == "fifo"
            R = flux.job.job_kvs_lookup(h, jobid, keys=["R"])["R"]
            assert R["execution"]["R_lite"][0]["rank"] == "0"
        stats = h.rpc("fifo.stats-get").get()
        assert stats["sched_passes"] >= 1 and stats["pending_jobs"] == 0
        status = h.rpc("sched.resource-status").get()
        assert status["all"]["execution"]["R_lite"]
        # a job bigger than the instance is denied, not kept
        too_big = submit(h, ncores=4096)
        seen = _until(h, too_big, "clean")
        assert "exception" in seen
        out = run_flux("module", "list", env=env)
        assert "fifo" in out.stdout
    finally:
        out = run_flux("module", "remove", "fifo", env=env)
    assert out.returncode == 0, out.stderr
    later = submit(h)
    assert state_is_sched(h, later)  # removed: jobs wait again
    loaded_at = time.time()
    out = run_flux("module", "load", "sched", env=env)
    assert out.returncode == 0, out.stderr
    seen = _until(h, later, "clean")
    assert seen["alloc"]["timestamp"] >= loaded_at
    assert "alloc" in seen and "annotations" not in seen["alloc"].get("context", {})


def test_unknown_argument_fails_load(inst, tmp_path):
    fifo = tmp_path / "fifo2.py"
    fifo.write_text(FIFO)
    env = inst.env()
    assert run_flux("module", "remove", "sched", env=env).returncode == 0
    try:
        out = run_flux("module", "load", str(fifo), "bogus=1", env=env)
        assert out.returncode == 1
        assert "unknown argument 'bogus=1'" in out.stderr
        out = run_flux("module", "load", str(fifo), "queue-depth=0", env=env)
        assert out.returncode == 1 and "invalid queue-depth" in out.stderr
    finally:
        assert run_flux("module", "load", "sched", env=env).returncode == 0
    with pytest.raises(OSError) as err:
        inst.handle().rpc("module.load", {"name": "sched", "path": ""}).get()
    assert err.value.errno == errno.EEXIST


def test_builtin_other_than_sched_cannot_be_removed(inst):
    out = run_flux("module", "remove", "kvs", env=inst.env())
    assert out.returncode == 1 and "built in" in out.stderr
    poll(lambda: inst.handle().rpc("broker.ping", {}).get(), "the broker")
