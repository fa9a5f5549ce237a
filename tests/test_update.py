"""``flux update`` / ``job-manager.update`` on a real instance with queues
and limits: a pending job's duration (absolute and relative), name and
queue change through one ``jobspec-update`` event, which job-list shows
and the job runs with (its R's expiration), also after a restart; each
refusal is checked by its message."""

import errno
import json

import pytest

import flux
import flux.job
from conftest import run_flux, start_many
from flux.job import JobspecV1

CONFIG = """
[policy.jobspec.defaults.system]
duration = "1h"
queue = "batch"

[policy.limits]
duration = "2h"

[queues.batch]

[queues.debug]

[queues.debug.policy.limits]
duration = "5m"

[queues.closed]
"""

HOLD = 0
DEFAULT_URGENCY = 16


def write_config(path):
    conf = path / "queues.toml"
    conf.write_text(CONFIG)
    return str(conf)


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    path = write_config(tmp_path_factory.mktemp("conf"))
    with start_many(1, "-Sresource.cores=2", "-c", path) as instance:
        h = instance.handle()
        h.rpc("job-manager.queue-enable", {"name": "closed", "enable": False,
                                           "reason": "no more"}).get()
        yield instance


@pytest.fixture
def h(inst):
    return inst.handle()


def held(h, queue=None, command=("true",)):
    spec = JobspecV1.from_command(list(command))
    if queue:
        spec.setattr("system.queue", queue)
    jobid = flux.job.submit(h, spec, urgency=HOLD, waitable=True)
    flux.job.event_wait(h, jobid, "priority")
    return jobid


def update(h, jobid, **updates):
    return h.rpc("job-manager.update", {"id": jobid, "updates": updates}).get()


def refused(h, jobid, updates, errnum=errno.EINVAL):
    with pytest.raises(OSError) as info:
        h.rpc("job-manager.update", {"id": jobid, "updates": updates}).get()
    assert info.value.errno == errnum
    return info.value.strerror


def listed(h, jobid):
    return flux.job.job_list_id(h, jobid, attrs=["name", "queue", "duration",
                                                 "state"]).get_jobinfo()


def cli(inst, *args):
    return run_flux(*args, env=inst.env())


def set_urgency(h, jobid, urgency):
    h.rpc("job-manager.urgency", {"id": jobid, "urgency": urgency}).get()


def release_and_check_duration(h, jobid, seconds):
    set_urgency(h, jobid, DEFAULT_URGENCY)
    assert flux.job.wait(h, jobid).success
    execution = flux.job.job_kvs_lookup(h, jobid, keys=["R"])["R"]["execution"]
    assert execution["expiration"] == pytest.approx(execution["starttime"] + seconds)


def test_update_pending_job_from_the_command_line(h, inst):
    jobid = held(h)
    proc = cli(inst, "update", str(jobid), "duration=+30m", "name=renamed")
    assert (proc.returncode, proc.stderr) == (0, "")
    info = listed(h, jobid)
    assert (info.name, info.queue, info.duration) == ("renamed", "batch", 5400.0)
    lines = flux.job.job_kvs_lookup(h, jobid, keys=["eventlog"], decode=False)
    updates = [json.loads(line)["context"] for line in lines["eventlog"].splitlines()
               if json.loads(line)["name"] == "jobspec-update"]
    assert updates[-1] == {"attributes.system.duration": 5400.0,
                           "attributes.system.job.name": "renamed"}
    assert cli(inst, "update", str(jobid), "duration=-1h").returncode == 0
    assert listed(h, jobid).duration == 1800.0
    assert cli(inst, "update", str(jobid), "duration=90s").returncode == 0
    # the held job had been asked for at sched: it is asked for again, with
    # the new duration, which R's expiration shows
    release_and_check_duration(h, jobid, 90)


def test_update_queue_of_pending_job(h, inst):
    jobid = held(h)
    assert refused(h, jobid, {"attributes.system.queue": "nope"}) == \
        "'nope' is not a valid queue"
    assert refused(h, jobid, {"attributes.system.queue": "closed"}) == \
        "queue closed is disabled: no more"
    # debug's limit is 5m, and the job has the default 1h
    assert refused(h, jobid, {"attributes.system.queue": "debug"}) == \
        "requested duration exceeds policy limit of 5m"
    update(h, jobid, **{"attributes.system.queue": "debug",
                        "attributes.system.duration": 60})
    proc = cli(inst, "jobs", "-q", "debug", "-n", "-o", "{id} {queue}")
    assert str(jobid) in proc.stdout.split()
    release_and_check_duration(h, jobid, 60)


def test_moving_to_a_stopped_queue_and_back(h, inst):
    h.rpc("job-manager.queue-start", {"name": "debug", "start": False}).get()
    try:
        jobid = held(h, queue="batch")
        set_urgency(h, jobid, DEFAULT_URGENCY)
        assert flux.job.wait(h, jobid).success
        jobid = held(h, queue="batch")
        update(h, jobid, **{"attributes.system.queue": "debug",
                            "attributes.system.duration": 10})
        set_urgency(h, jobid, DEFAULT_URGENCY)
        later = flux.job.submit(h, JobspecV1.from_command(["true"]), waitable=True)
        assert flux.job.wait(h, later).success
        assert listed(h, jobid).state_single == "S"  # its queue is stopped
        update(h, jobid, **{"attributes.system.queue": "batch"})
        assert flux.job.wait(h, jobid).success
    finally:
        h.rpc("job-manager.queue-start", {"name": "debug", "start": True}).get()


def test_refusals(h, inst):
    jobid = held(h)
    assert refused(h, jobid, {"attributes.system.duration": 3 * 3600}) == \
        "requested duration exceeds policy limit of 2h"
    assert refused(h, jobid, {"attributes.system.duration": 0}) == \
        "requested duration exceeds policy limit of 2h"
    assert refused(h, jobid, {"attributes.system.duration": -1}).startswith(
        "attributes.system.duration: must be a number")
    assert refused(h, jobid, {"attributes.system.job.name": 3}).startswith(
        "attributes.system.job.name: must be")
    assert refused(h, jobid, {"attributes.system.cwd": "/"}) == \
        "update of attributes.system.cwd is not supported"
    assert refused(h, 12345, {"attributes.system.duration": 1}, errno.ENOENT) == \
        "unknown job id"
    with pytest.raises(OSError) as info:
        h.rpc("job-manager.update", {"id": jobid, "updates": {}}).get()
    assert info.value.errno == errno.EPROTO
    proc = cli(inst, "update", str(jobid), "duration=3h")
    assert (proc.returncode, proc.stderr) == (
        1, "flux-update: requested duration exceeds policy limit of 2h\n")
    proc = cli(inst, "update", str(jobid), "duration")
    assert (proc.returncode, proc.stderr) == (
        2, "flux-update: 'duration': expected KEY=VALUE\n")
    proc = cli(inst, "update", str(jobid), "duration=soon")
    assert proc.returncode == 2
    # nothing changed
    assert listed(h, jobid).duration == 3600.0
    flux.job.cancel(h, jobid)
    flux.job.wait(h, jobid)
    assert refused(h, jobid, {"attributes.system.duration": 1}, errno.ENOENT) == \
        "job is inactive"


def test_running_job(h, inst):
    jobid = flux.job.submit(h, JobspecV1.from_command(["sleep", "300"]), waitable=True)
    flux.job.event_wait(h, jobid, "start")
    try:
        # its duration may change (tests/test_update_running.py), not the rest
        assert refused(h, jobid, {"attributes.system.duration": 3 * 3600}) == \
            "requested duration exceeds policy limit of 2h"
        assert refused(h, jobid, {"attributes.system.job.name": "x"}) == \
            "job is not pending"
    finally:
        flux.job.cancel(h, jobid)
        flux.job.wait(h, jobid)


def test_dry_run_changes_nothing(h, inst):
    jobid = held(h)
    proc = cli(inst, "update", "--dry-run", str(jobid), "queue=debug", "duration=1m")
    assert proc.returncode == 0, proc.stderr
    spec = json.loads(proc.stdout)
    assert spec["attributes"]["system"]["queue"] == "debug"
    assert spec["attributes"]["system"]["duration"] == 60.0
    info = listed(h, jobid)
    assert (info.queue, info.duration) == ("batch", 3600.0)
    flux.job.cancel(h, jobid)
    flux.job.wait(h, jobid)


def test_update_survives_restart(tmp_path):
    path = write_config(tmp_path)
    statedir = tmp_path / "state"
    statedir.mkdir()
    opts = ("-c", path, f"-Sstatedir={statedir}")
    with start_many(1, *opts) as inst:
        h = inst.handle()
        jobid = held(h)
        update(h, jobid, **{"attributes.system.duration": 20,
                            "attributes.system.queue": "debug"})
    with start_many(1, *opts) as inst:
        h = inst.handle()
        info = listed(h, jobid)
        assert (info.queue, info.duration) == ("debug", 20.0)
        release_and_check_duration(h, jobid, 20)
