"""When brokers fail: a rank killed with SIGKILL (a leaf, and one with
children) costs the jobs that were on it and nothing else; a client waiting
on it gets EHOSTUNREACH; a stopped broker turns torpid, then lost; the
others exit when rank 0 dies.  All on ``flux start --test-size`` with
``--test-exit-mode=leader`` (flux start keeps going when another rank
dies)."""

import errno
import os
import signal
import subprocess

import pytest

import flux
import flux.job
from flux.constants import FLUX_RPC_STREAMING
from conftest import poll, run_flux, start_many

MARK = "3107"  # sleep MARK: this test's tasks, to look for leftovers


def _pid(h, rank):
    return int(h.rpc("attr.get", {"name": "broker.pid"}, nodeid=rank).get()["value"])


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _leftover_tasks():
    out = subprocess.run(["pgrep", "-f", f"^sleep {MARK}$"], capture_output=True,
                         text=True).stdout.split()
    return [int(p) for p in out if _alive(int(p))]


def _status(env):
    proc = run_flux("resource", "status", "-n", "-o", "{state} {ranks}", env=env)
    assert proc.returncode == 0, proc.stderr
    return dict(line.split() for line in proc.stdout.splitlines())


def test_killed_leaf_and_router_cost_only_their_jobs():
    opts = ["--test-exit-mode=leader", "-Stbon.fanout=2", "-Sresource.cores=1"]
    with start_many(8, *opts) as inst:
        h = inst.handle(0)
        spec = flux.job.JobspecV1.from_command(["sleep", MARK], num_nodes=1)
        jobs = [flux.job.submit(h, spec, waitable=True) for _ in range(8)]
        poll(lambda: all(flux.job.get_job(h, j)["state"] == "RUN" for j in jobs),
             "every job to run")
        on = {int(flux.job.get_job(h, j)["ranks"]): j for j in jobs}
        assert sorted(on) == list(range(8))
        pids = {r: _pid(h, r) for r in range(8)}

        # a leaf (7, under 3), then a broker with children (2: 5 and 6)
        os.kill(pids[7], signal.SIGKILL)
        result = flux.job.wait(h, on[7])
        assert not result.success
        info = flux.job.result(h, on[7])
        assert info.exception.type == "node-failure"
        assert info.exception.note.endswith("(rank 7)")
        os.kill(pids[2], signal.SIGKILL)
        for rank in (2, 5, 6):
            assert not flux.job.wait(h, on[rank]).success
        poll(lambda: not any(_alive(pids[r]) for r in (5, 6)),
             "ranks 5 and 6 to exit with their parent")
        # the jobs elsewhere still run
        for rank in (0, 1, 3, 4):
            assert flux.job.get_job(h, on[rank])["state"] == "RUN"
        status = _status(inst.env(0))
        assert status["offline"] == "2,5-7"
        for rank in (0, 1, 3, 4):
            flux.job.cancel(h, on[rank])
            flux.job.wait(h, on[rank])
            assert flux.job.result(h, on[rank]).result == "CANCELED"
        # new work goes to the nodes that remain
        proc = run_flux("run", "-N4", "-n4", "--label-io", "printenv", "FLUX_TASK_RANK",
                        env=inst.env(0))
        assert proc.returncode == 0, proc.stderr
    assert inst.proc.returncode == 0, inst.stderr
    poll(lambda: not _leftover_tasks(), "no task left behind")


def test_a_client_waiting_on_a_dying_rank_gets_ehostunreach():
    with start_many(3, "--test-exit-mode=leader") as inst:
        h = inst.handle(0)
        pid = _pid(h, 2)
        fut = h.rpc("rexec.exec", {"cmd": ["sleep", MARK]}, nodeid=2,
                    flags=FLUX_RPC_STREAMING)
        assert fut.get()["type"] == "started"
        fut.reset()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(OSError) as exc:
            while True:  # any output first, then the error
                fut.get()
                fut.reset()
        assert exc.value.errno == errno.EHOSTUNREACH
        with pytest.raises(OSError) as exc:
            h.rpc("broker.ping", {}, nodeid=2).get()
        assert exc.value.errno == errno.EHOSTUNREACH
    # (a flux exec command is no job: nothing kills it when its broker dies)
    subprocess.run(["pkill", "-f", f"^sleep {MARK}$"])


def test_a_stopped_broker_is_torpid_then_lost_and_exits():
    opts = ["--test-exit-mode=leader", "-Stbon.torpid_max=1", "-Stbon.lost_timeout=4"]
    with start_many(3, *opts) as inst:
        h = inst.handle(0)
        pid = _pid(h, 2)
        os.kill(pid, signal.SIGSTOP)
        try:
            poll(lambda: _status(inst.env(0)).get("torpid") == "2", "rank 2 torpid")
            poll(lambda: _status(inst.env(0)).get("offline") == "2", "rank 2 lost")
        finally:
            os.kill(pid, signal.SIGCONT)
        # its parent no longer knows it, and it no longer hears its parent
        poll(lambda: not _alive(pid), "rank 2 to exit on its own")
        assert flux.job.wait(h, flux.job.submit(h, flux.job.JobspecV1.from_command(
            ["true"], num_nodes=2, num_tasks=2), waitable=True)).success
    assert inst.proc.returncode == 0, inst.stderr


def test_the_others_exit_when_rank0_dies():
    with start_many(4, "--test-exit-mode=leader", "--test-exit-timeout=120",
                    "-Stbon.fanout=1") as inst:
        h = inst.handle(0)
        pids = [_pid(h, r) for r in range(4)]
        job = flux.job.submit(h, flux.job.JobspecV1.from_command(
            ["sleep", MARK], num_nodes=4, num_tasks=4))
        poll(lambda: flux.job.get_job(h, job)["state"] == "RUN", "the job to run")
        os.kill(pids[0], signal.SIGKILL)
        # a chain 0-1-2-3: each notices its parent is gone, well before
        # flux start would kill what is left (120 s)
        poll(lambda: not any(_alive(p) for p in pids[1:]), "ranks 1-3 to exit")
        inst.stop()
    poll(lambda: not _leftover_tasks(), "no task left behind")
