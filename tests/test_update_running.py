"""``flux update JOBID duration=...`` on a running job (the instance
owner), on a real instance with a policy limit of 1h: the job's end moves
(``jobspec-update`` then ``resource-update {expiration}``), job-exec's
timer follows (an extended job outlives its old limit and ends with
status 0; a shortened one gets a ``timeout``), sched's reservation for a
blocked job follows, and job-list, ``flux job timeleft`` (inside the job
and from outside) and ``flux job info R`` show the new end.  Refusals are
checked by their messages.  Outcomes are read from events, never from
wall-clock durations."""

import errno
import json
import sys
import time

import pytest

import flux
import flux.job
from conftest import poll, run_flux, start_many
from flux.job import JobspecV1

CONFIG = """
[policy.limits]
duration = "1h"
"""
DURATION = "attributes.system.duration"


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    conf = tmp_path_factory.mktemp("conf") / "limits.toml"
    conf.write_text(CONFIG)
    with start_many(1, "-Sresource.cores=2", "-c", str(conf)) as instance:
        yield instance


@pytest.fixture
def h(inst):
    return inst.handle()


def submit(h, command, duration, ncores=1):
    spec = JobspecV1.from_command(list(command), num_tasks=1, cores_per_task=ncores)
    spec.duration = duration
    jobid = flux.job.submit(h, spec, waitable=True)
    return jobid


def R_of(h, jobid, base=False):
    return flux.job.job_kvs_lookup(h, jobid, keys=["R"], base=base)["R"]["execution"]


def update(h, jobid, **updates):
    return h.rpc("job-manager.update", {"id": jobid, "updates": updates}).get()


def refused(h, jobid, updates, errnum=errno.EINVAL):
    with pytest.raises(OSError) as info:
        update(h, jobid, **updates)
    assert info.value.errno == errnum
    return info.value.strerror


def events(h, jobid, name):
    lines = flux.job.job_kvs_lookup(h, jobid, keys=["eventlog"], decode=False)
    return [event for event in map(json.loads, lines["eventlog"].splitlines())
            if event["name"] == name]


def finish(h, jobid):
    flux.job.cancel(h, jobid)
    flux.job.wait(h, jobid)


def test_extended_job_outlives_its_old_limit(h, inst, tmp_path):
    go, out = tmp_path / "go", tmp_path / "timeleft"
    script = (f"while [ ! -e {go} ]; do sleep 0.05; done;"
              f" {sys.executable} -m fluxrm.cli.main job timeleft > {out}")
    jobid = submit(h, ["sh", "-c", script], 5)
    try:
        flux.job.event_wait(h, jobid, "start")
        old = R_of(h, jobid)
        update(h, jobid, **{DURATION: 60})
        # the job is past its old limit before it may end
        poll(lambda: time.time() > old["expiration"] + 0.5, "the old limit to pass")
        go.touch()
        result = flux.job.wait(h, jobid)
    finally:
        if not go.exists():
            finish(h, jobid)
    assert result.success, result.errstr
    assert events(h, jobid, "exception") == []
    assert [e["context"] for e in events(h, jobid, "jobspec-update")][-1] == {DURATION: 60}
    (resource_update,) = events(h, jobid, "resource-update")
    new = old["starttime"] + 60
    assert resource_update["context"]["expiration"] == pytest.approx(new)
    # the stored R is the one allocated; the current one has the new end
    assert R_of(h, jobid, base=True)["expiration"] == old["expiration"]
    assert R_of(h, jobid)["expiration"] == pytest.approx(new)
    info = flux.job.job_list_id(h, jobid, attrs=["expiration", "duration"]).get_jobinfo()
    assert (info.duration, info.expiration) == (60.0, pytest.approx(new))
    # inside the job, past the old limit, timeleft read the new one
    assert 0 < float(out.read_text()) <= 60
    proc = run_flux("job", "info", str(jobid), "R", env=inst.env())
    assert json.loads(proc.stdout)["execution"]["expiration"] == pytest.approx(new)


def test_shortened_job_times_out(h, inst):
    jobid = submit(h, ["sleep", "300"], 3600)
    try:
        flux.job.event_wait(h, jobid, "start")
        start = R_of(h, jobid)["starttime"]
        proc = run_flux("job", "timeleft", str(jobid), env=inst.env())
        assert float(proc.stdout) > 60
        duration = time.time() - start + 1.0
        update(h, jobid, **{DURATION: duration})
        proc = run_flux("job", "timeleft", str(jobid), env=inst.env())
        assert proc.returncode == 0, proc.stderr
        assert float(proc.stdout) <= 1.0
        result = flux.job.wait(h, jobid)
    except BaseException:
        finish(h, jobid)
        raise
    assert not result.success
    (exception,) = events(h, jobid, "exception")
    assert exception["context"]["type"] == "timeout"
    assert exception["context"]["note"] == "resource allocation expired"
    assert events(h, jobid, "resource-update")[0]["context"]["expiration"] == \
        pytest.approx(start + duration)


def test_sched_reservation_follows_the_new_end(h, inst):
    running = submit(h, ["sleep", "300"], 1800, ncores=2)
    blocked = None
    try:
        flux.job.event_wait(h, running, "start")
        blocked = submit(h, ["true"], 60, ncores=2)

        def t_estimate():
            job = flux.job.job_list_id(h, blocked, ["annotations"]).get()["job"]
            return (job.get("annotations") or {}).get("sched", {}).get("t_estimate")

        old = R_of(h, running)["expiration"]
        assert poll(lambda: t_estimate() == old, "the reservation at the old end")
        update(h, running, **{DURATION: 3000})
        new = R_of(h, running)["expiration"]
        assert new == pytest.approx(R_of(h, running)["starttime"] + 3000)
        assert poll(lambda: t_estimate() == new, "the reservation at the new end")
    finally:
        for jobid in (blocked, running):
            if jobid is not None:
                finish(h, jobid)


def test_refusals(h, inst):
    jobid = submit(h, ["sleep", "300"], 600)
    try:
        flux.job.event_wait(h, jobid, "start")
        assert refused(h, jobid, {DURATION: 0.001}).startswith(
            "new expiration would be in the past (the job has run for ")
        assert refused(h, jobid, {DURATION: 7200}) == \
            "requested duration exceeds policy limit of 1h"
        assert refused(h, jobid, {DURATION: 0}) == \
            "requested duration exceeds policy limit of 1h"
        assert refused(h, jobid, {DURATION: 60, "attributes.system.job.name": "x"}) == \
            "only the duration of a running job may be updated"
        assert refused(h, jobid, {"attributes.system.job.name": "x"}) == \
            "job is not pending"
        proc = run_flux("update", str(jobid), "duration=1ms", env=inst.env())
        assert proc.returncode == 1
        assert proc.stderr.count("\n") == 1
        assert "new expiration would be in the past" in proc.stderr
        assert events(h, jobid, "resource-update") == []
        assert refused(h, 123456789, {DURATION: 60}, errno.ENOENT) == "unknown job id"
        # the job still has its limit: dry run shows, nothing changes
        spec = h.rpc("job-manager.update", {"id": jobid, "updates": {DURATION: 120},
                                            "dry_run": True}).get()["jobspec"]
        assert spec["attributes"]["system"]["duration"] == 120
        assert events(h, jobid, "resource-update") == []
        # relative forms, from the command line
        proc = run_flux("update", str(jobid), "duration=+10m", env=inst.env())
        assert (proc.returncode, proc.stderr) == (0, "")
        execution = R_of(h, jobid)
        assert execution["expiration"] == pytest.approx(execution["starttime"] + 1200)
    finally:
        finish(h, jobid)
