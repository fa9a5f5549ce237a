"""job-list and the store: it writes the ``info`` of inactive jobs itself,
after the job-manager has written their rows; a row without it (the broker
died between the two writes) is still answered, counted, and gets its
info at the next start."""

import json
import signal
import sqlite3

import flux
import flux.job
from flux.constants import FLUX_JOB_RESULT_COMPLETED, FLUX_JOB_RESULT_FAILED
from flux.job import JobspecV1


def sim(command="true", duration="0s"):
    js = JobspecV1.from_command([command])
    js.setattr("system.exec.test", {"run_duration": duration})
    return js


def stored_info(statedir):
    with sqlite3.connect(statedir / "content.sqlite") as db:
        return dict(db.execute("SELECT id, info FROM jobs WHERE state = 64"))


def listed(h):
    return flux.job.job_list(h, attrs=["all"]).get_jobs()


def stats(h):
    return h.rpc("job-list.job-stats", {}).get()


def test_a_row_without_info_is_answered_counted_and_healed(start_instance, tmp_path):
    statedir = tmp_path / "state"
    with start_instance(f"statedir={statedir}") as inst:
        h = inst.handle()
        ok = flux.job.submit(h, sim(), waitable=True)
        assert flux.job.wait(h, ok).success
        bad = flux.job.submit(h, sim(), waitable=True, urgency=0)  # held
        flux.job.cancel(h, bad)
        assert not flux.job.wait(h, bad).success
        before = listed(h)
        before_stats = stats(h)
        one = flux.job.job_list_id(h, ok, attrs=["all"]).get_job()
    infos = stored_info(statedir)
    assert set(infos) == {ok, bad} and all(infos.values())
    assert json.loads(infos[ok])["result"] == FLUX_JOB_RESULT_COMPLETED
    # as if the broker had died between the job-manager's rows and
    # job-list's info
    with sqlite3.connect(statedir / "content.sqlite") as db:
        db.execute("UPDATE jobs SET info = NULL")
    with start_instance(f"statedir={statedir}") as inst:
        h = inst.handle()
        assert listed(h) == before
        assert stats(h) == before_stats
        assert flux.job.job_list_id(h, ok, attrs=["all"]).get_job() == one
    healed = stored_info(statedir)
    assert {jobid: json.loads(text) for jobid, text in healed.items()} == \
        {jobid: json.loads(text) for jobid, text in infos.items()}


def test_jobs_ended_while_the_broker_died_are_listed_after_restart(start_instance,
                                                                  tmp_path):
    """Running jobs get an exception when the job-manager recovers, before
    job-list starts: job-list finds them inactive in the store, counts
    them, and stores their info."""
    statedir = tmp_path / "state"
    with start_instance(f"statedir={statedir}") as inst:
        h = inst.handle()
        running = [flux.job.submit(h, sim(duration="1h")) for _ in range(2)]
        for jobid in running:
            flux.job.event_wait(h, jobid, "start")
        inst.proc.send_signal(signal.SIGKILL)
        inst.proc.wait()
    with start_instance(f"statedir={statedir}") as inst:
        h = inst.handle()
        st = stats(h)
        assert (st["job_states"]["inactive"], st["failed"], st["job_states"]["total"]) \
            == (2, 2, 2)
        jobs = listed(h)
        assert sorted(j["id"] for j in jobs) == sorted(running)
        assert all(j["result"] == FLUX_JOB_RESULT_FAILED and j["exception_type"] == "exec"
                   for j in jobs)
        new = flux.job.submit(h, sim(), waitable=True)
        assert flux.job.wait(h, new).success
        assert stats(h)["job_states"]["inactive"] == 3
    infos = stored_info(statedir)
    assert set(infos) == set(running) | {new} and all(infos.values())


def test_jobs_just_ended_are_listed_before_their_info_is_stored(start_instance):
    """Between two store commits a job that ended is answered from
    job-list's memory, in its place among the stored ones."""
    with start_instance() as inst:
        h = inst.handle()
        ids = []
        for _ in range(3):
            ids.append(flux.job.submit(h, sim(), waitable=True))
            assert flux.job.wait(h, ids[-1]).success
        # each list right after the wait: the last one may not be stored yet
        jobs = flux.job.job_list(h, attrs=["t_inactive"]).get_jobs()
        assert [j["id"] for j in jobs] == ids[::-1]
        t = [j["t_inactive"] for j in jobs]
        assert t == sorted(t, reverse=True)
        job = flux.job.job_list_id(h, ids[-1], attrs=["result"]).get_job()
        assert job["result"] == FLUX_JOB_RESULT_COMPLETED
