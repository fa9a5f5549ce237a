"""Resources of an instance of several brokers: every rank's node in R,
per-node status, drain and undrain (no new work on a drained node)."""

import json

import flux
import flux.job
from conftest import poll, run_flux, start_many


def _lines(proc):
    assert proc.returncode == 0, proc.stderr
    return [line.split() for line in proc.stdout.splitlines()]


def test_every_rank_in_R_and_drain_undrain():
    with start_many(3, "-Sresource.cores=1") as inst:
        env = inst.env(2)  # from a leaf: the requests go up to rank 0
        rows = _lines(run_flux("resource", "list", "-s", "free", "-n",
                               "-o", "{nnodes} {ncores}", env=env))
        assert rows == [["3", "3"]]
        R = json.loads(run_flux("resource", "R", env=env).stdout)
        assert R["execution"]["R_lite"] == [{"rank": "0-2", "children": {"core": "0"}}]

        proc = run_flux("resource", "drain", "1", "disk", "trouble", env=env)
        assert proc.returncode == 0, proc.stderr
        status = {row[0]: row for row in _lines(run_flux(
            "resource", "status", "-n", "-o", "{state} {ranks}", env=env))}
        assert status["avail"][1] == "0,2" and status["drained"][1] == "1"
        listing = run_flux("resource", "drain", env=env).stdout
        assert "disk trouble" in listing
        # draining twice is refused unless forced
        proc = run_flux("resource", "drain", "1", env=env)
        assert proc.returncode == 1 and "already drained" in proc.stderr
        assert run_flux("resource", "drain", "-f", "1", "other", env=env).returncode == 0
        proc = run_flux("resource", "undrain", "2", env=env)
        assert proc.returncode == 1 and "not drained" in proc.stderr
        proc = run_flux("resource", "drain", "7", env=env)
        assert proc.returncode == 1 and "ranks 0-2" in proc.stderr

        # a job that needs all three nodes waits while one is drained
        h = inst.handle(0)
        jobid = flux.job.submit(h, flux.job.JobspecV1.from_command(
            ["true"], num_nodes=3, num_tasks=3), waitable=True)
        poll(lambda: flux.job.get_job(h, jobid)["state"] == "SCHED",
             "the job to wait in SCHED")
        assert run_flux("resource", "undrain", "1", env=env).returncode == 0
        result = flux.job.wait(h, jobid)
        assert result.success, result.errstr

        # drained while a job runs there: draining, then drained when it ends
        small = flux.job.submit(h, flux.job.JobspecV1.from_command(
            ["sleep", "30"], num_nodes=1, num_tasks=1))
        poll(lambda: flux.job.get_job(h, small)["state"] == "RUN", "the job to run")
        rank = flux.job.get_job(h, small)["ranks"]
        assert run_flux("resource", "drain", rank, env=env).returncode == 0
        states = {row[0]: row[1] for row in _lines(run_flux(
            "resource", "status", "-n", "-o", "{state} {ranks}", env=env))}
        assert states["draining"] == rank
        flux.job.cancel(h, small)
        poll(lambda: flux.job.get_job(h, small)["state"] == "INACTIVE",
             "the job to end")
        states = {row[0]: row[1] for row in _lines(run_flux(
            "resource", "status", "-n", "-o", "{state} {ranks}", env=env))}
        assert states["drained"] == rank and "draining" not in states
        assert run_flux("resource", "undrain", rank, env=env).returncode == 0
    assert inst.proc.returncode == 0, inst.stderr


def test_drained_stays_drained_across_a_restart(start_instance, tmp_path):
    statedir = str(tmp_path / "state")
    with start_instance(f"statedir={statedir}") as inst:
        proc = run_flux("resource", "drain", "0", "bad", "fan", env=inst.env())
        assert proc.returncode == 0, proc.stderr
    with start_instance(f"statedir={statedir}") as inst:
        listing = run_flux("resource", "drain", env=inst.env()).stdout
        assert "bad fan" in listing
        states = dict(line.split() for line in run_flux(
            "resource", "status", "-n", "-o", "{state} {ranks}", env=inst.env()
        ).stdout.splitlines())
        assert states == {"drained": "0"}
        assert run_flux("resource", "undrain", "0", env=inst.env()).returncode == 0
    with start_instance(f"statedir={statedir}") as inst:
        assert "bad fan" not in run_flux("resource", "drain", env=inst.env()).stdout
