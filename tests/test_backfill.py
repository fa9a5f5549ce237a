"""EASY backfill on a real instance (``-Sresource.cores=4``): a wide job
blocked behind a running one gets a reservation at that job's expiration;
short jobs that end before it start in the gap, while jobs that would run
past it (a stream of them) wait until the wide job has started.  Order
is read from the jobs' ``start`` events, never from wall time.  The
pending job's expected start and reason show in ``flux jobs``."""

import flux
import flux.job
from conftest import poll, run_flux, start_many


def submit(inst, *args):
    proc = run_flux("submit", *args, env=inst.env())
    assert proc.returncode == 0, proc.stderr
    return flux.job.JobID(proc.stdout.strip())


def start_time(h, jobid):
    return flux.job.event_wait(h, jobid, "start").timestamp


def test_reservation_lets_short_jobs_fill_the_gap_and_stops_starvation():
    with start_many(1, "-Sresource.cores=4") as inst:
        h = inst.handle()
        running = submit(inst, "-n2", "-t", "20s", "sleep", "3")
        flux.job.event_wait(h, running, "start")
        expiration = flux.job.job_kvs_lookup(h, running, keys=["R"])["R"]
        expiration = expiration["execution"]["expiration"]
        wide = submit(inst, "-n4", "-t", "10s", "true")
        short = [submit(inst, "-n1", "-t", "2s", "sleep", "0.2") for _ in range(3)]
        long = [submit(inst, "-n1", "-t", "1m", "sleep", "0.2") for _ in range(4)]

        # the wide job's expected start and reason while it waits
        def shown():
            out = run_flux("jobs", "-no", "{sched.t_estimate} | {sched.reason_pending} | "
                           "{contextual_info}", str(wide), env=inst.env()).stdout
            return out if "insufficient resources" in out else None
        line = poll(shown, "the wide job's annotations")
        t_estimate, reason, info = [f.strip() for f in line.split("|")]
        assert reason == "insufficient resources"
        assert info.startswith("eta:")
        job = flux.job.job_list_id(h, wide, ["annotations"]).get()["job"]
        assert job["annotations"]["sched"]["t_estimate"] == expiration

        t_wide = start_time(h, wide)
        for jobid in short:  # they fill the gap in front of the reservation
            assert start_time(h, jobid) < t_wide
        for jobid in long:  # they would have delayed it: they wait
            assert start_time(h, jobid) > t_wide
        # started, the wide job's sched annotations are gone
        job = flux.job.job_list_id(h, wide, ["annotations"]).get()["job"]
        assert "sched" not in (job.get("annotations") or {})
        for jobid in long:
            flux.job.event_wait(h, jobid, "clean")


def test_without_time_limits_the_queue_stays_in_order():
    with start_many(1, "-Sresource.cores=2") as inst:
        h = inst.handle()
        running = submit(inst, "-n1", "sleep", "2")
        flux.job.event_wait(h, running, "start")
        wide = submit(inst, "-n2", "true")
        small = submit(inst, "-n1", "-t", "1s", "true")
        line = poll(lambda: run_flux("jobs", "-no", "{sched.reason_pending}:{sched.t_estimate}",
                                     str(wide), env=inst.env()).stdout.strip(),
                    "the wide job's reason")
        assert line.startswith("insufficient resources:")
        assert start_time(h, small) > start_time(h, wide)
