"""Queues and limits on real instances started with a configuration
(``flux start -c FILE``): submission checks and their messages, default
queue and duration (a ``jobspec-update`` event), queue enable/disable and
start/stop (a stopped queue's jobs wait in SCHED), drain and idle, the
``flux queue`` and ``flux jobs -q`` commands, the state kept across a
restart, and a configuration that cannot be read.

Ordering is shown without sleeps: sched serves jobs in submission order,
so a job submitted after another to a started queue finishing while the
first is still in SCHED shows the first was never asked for."""

import errno
import json
import math
import os

import pytest

import flux
import flux.job
from conftest import run_flux, start_many
from flux.job import JobspecV1
from flux.queue import QueueList

CONFIG = """
[[resource.config]]
ranks = "0"
properties = ["debug"]

[policy.jobspec.defaults.system]
duration = "1h"
queue = "batch"

[policy.limits]
duration = "2h"

[queues.batch]

[queues.debug]
requires = ["debug"]

[queues.debug.policy.limits]
duration = "5m"
job-size.max.ncores = 1

[queues.debug.policy.jobspec.defaults.system]
duration = "1m"

[queues.big.policy.limits.job-size.min]
ncores = 2
"""


def write_config(tmp_path, text):
    path = tmp_path / "queues.toml"
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    path = write_config(tmp_path_factory.mktemp("conf"), CONFIG)
    with start_many(1, "-Sresource.cores=2", "-c", path) as instance:
        yield instance


@pytest.fixture
def h(inst):
    handle = inst.handle()
    yield handle
    # every test leaves the queues enabled and started
    handle.rpc("job-manager.queue-enable", {"all": True, "enable": True}).get()
    handle.rpc("job-manager.queue-start", {"all": True, "start": True}).get()


def cli(inst, *args):
    return run_flux(*args, env=inst.env())


def jobspec(command=("true",), queue=None, duration=None, ncores=1, nodes=None):
    spec = JobspecV1.from_command(list(command), num_tasks=1, cores_per_task=ncores,
                                  num_nodes=nodes)
    if queue is not None:
        spec.setattr("system.queue", queue)
    if duration is not None:
        spec.duration = duration
    return spec


def refused(h, spec):
    with pytest.raises(OSError) as info:
        flux.job.submit(h, spec)
    assert info.value.errno == errno.EINVAL
    return info.value.strerror


def events(h, jobid):
    lines = flux.job.job_kvs_lookup(h, jobid, keys=["eventlog"], decode=False)
    return [json.loads(line) for line in lines["eventlog"].splitlines()]


# -- submission -----------------------------------------------------------------------


def test_refusals_name_the_queue_or_limit(h, inst):
    assert refused(h, jobspec(queue="nope")) == "'nope' is not a valid queue"
    assert refused(h, jobspec(duration=3 * 3600)) == \
        "requested duration exceeds policy limit of 2h"
    assert refused(h, jobspec(queue="debug", duration=600)) == \
        "requested duration exceeds policy limit of 5m"
    assert refused(h, jobspec(queue="debug", ncores=2)) == \
        "requested ncores exceeds policy limit of 1"
    assert refused(h, jobspec(queue="big", ncores=1)) == \
        "requested ncores is less than policy minimum of 2"
    # the command line says the same, one line, exit 1
    proc = cli(inst, "submit", "-q", "nope", "true")
    assert proc.returncode == 1
    assert proc.stderr == "flux-submit: 'nope' is not a valid queue\n"


def test_default_queue_and_duration_as_jobspec_update(h):
    jobid = flux.job.submit(h, jobspec(), waitable=True)
    assert flux.job.wait(h, jobid).success
    evs = events(h, jobid)
    assert [e["name"] for e in evs[:3]] == ["submit", "jobspec-update", "validate"]
    assert evs[1]["context"] == {"attributes.system.queue": "batch",
                                 "attributes.system.duration": 3600.0}
    info = flux.job.job_list_id(h, jobid, attrs=["queue", "duration"]).get_jobinfo()
    assert (info.queue, info.duration) == ("batch", 3600.0)
    # the queue's own default, and a duration given is kept
    jobid = flux.job.submit(h, jobspec(queue="debug"), waitable=True)
    assert flux.job.wait(h, jobid).success
    assert events(h, jobid)[1]["context"] == {"attributes.system.duration": 60.0}
    jobid = flux.job.submit(h, jobspec(queue="batch", duration=30), waitable=True)
    assert flux.job.wait(h, jobid).success
    assert "jobspec-update" not in [e["name"] for e in events(h, jobid)]
    # R's expiration comes from the duration the job was given
    R = flux.job.job_kvs_lookup(h, jobid, keys=["R"])["R"]
    execution = R["execution"]
    assert execution["expiration"] == pytest.approx(execution["starttime"] + 30)


def test_disabled_queue_refuses_with_reason(h, inst):
    proc = cli(inst, "queue", "disable", "-q", "debug", "being", "fixed")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "debug: Job submission is disabled: being fixed\n"
    assert refused(h, jobspec(queue="debug")) == "queue debug is disabled: being fixed"
    jobid = flux.job.submit(h, jobspec(queue="batch"), waitable=True)  # others take jobs
    assert flux.job.wait(h, jobid).success
    status = h.rpc("job-manager.queue-status", {"name": "debug"}).get()
    assert status == {"enable": False, "start": True, "disable_reason": "being fixed"}
    assert cli(inst, "queue", "enable", "-q", "debug").returncode == 0
    jobid = flux.job.submit(h, jobspec(queue="debug"), waitable=True)
    assert flux.job.wait(h, jobid).success


def test_stopped_queue_jobs_wait_in_sched(h, inst):
    assert cli(inst, "queue", "stop", "-q", "debug", "maint").returncode == 0
    waiting = flux.job.submit(h, jobspec(queue="debug"), waitable=True)
    later = flux.job.submit(h, jobspec(queue="batch"), waitable=True)
    assert flux.job.wait(h, later).success
    assert flux.job.job_list_id(h, waiting).get_jobinfo().state_single == "S"
    proc = cli(inst, "queue", "status", "-q", "debug")
    assert proc.stdout == ("debug: Job submission is enabled\n"
                           "debug: Scheduling is stopped: maint\n")
    proc = cli(inst, "jobs", "-q", "debug", "-n", "-o", "{id} {queue} {status_abbrev}")
    assert proc.stdout.split() == [str(waiting), "debug", "S"]
    assert cli(inst, "queue", "start", "-q", "debug").returncode == 0
    assert flux.job.wait(h, waiting).success


def test_stop_takes_back_a_job_already_at_sched(h, inst):
    # two cores, both busy: the debug job is queued at sched when its queue stops
    blockers = [flux.job.submit(h, jobspec(["sleep", "300"], queue="batch"))
                for _ in range(2)]
    for jobid in blockers:
        flux.job.event_wait(h, jobid, "start")
    queued = flux.job.submit(h, jobspec(queue="debug"), waitable=True)
    flux.job.event_wait(h, queued, "priority")
    assert cli(inst, "queue", "stop", "-q", "debug").returncode == 0
    for jobid in blockers:
        flux.job.cancel(h, jobid)
    # the cores are free, and a later job in a started queue runs first
    later = flux.job.submit(h, jobspec(queue="batch"), waitable=True)
    assert flux.job.wait(h, later).success
    assert flux.job.job_list_id(h, queued).get_jobinfo().state_single == "S"
    assert cli(inst, "queue", "start", "-q", "debug").returncode == 0
    assert flux.job.wait(h, queued).success


def test_drain_and_idle_answer_once_jobs_are_done(h, inst):
    jobid = flux.job.submit(h, jobspec(["sleep", "300"], queue="batch"))
    flux.job.event_wait(h, jobid, "start")
    drain = h.rpc("job-manager.drain", {})
    idle = h.rpc("job-manager.idle", {})
    debug_drain = h.rpc("job-manager.drain", {"name": "debug"})
    assert debug_drain.get() == {}  # no debug job is active
    with pytest.raises(OSError) as info:
        drain.wait_for(0.2)
    assert info.value.errno == errno.ETIMEDOUT
    proc = cli(inst, "queue", "drain", "--timeout=0.1")
    assert (proc.returncode, proc.stderr) == (1, "flux-queue: drain: timeout\n")
    flux.job.cancel(h, jobid)
    assert drain.get() == {}
    assert idle.get() == {"pending": 0}
    proc = cli(inst, "queue", "idle")
    assert (proc.returncode, proc.stdout) == (0, "0 pending jobs\n")
    assert cli(inst, "queue", "drain").returncode == 0


def test_idle_counts_pending_jobs(h, inst):
    assert cli(inst, "queue", "stop", "-q", "debug").returncode == 0
    jobid = flux.job.submit(h, jobspec(queue="debug"))
    flux.job.event_wait(h, jobid, "priority")
    assert h.rpc("job-manager.idle", {}).get() == {"pending": 1}
    assert cli(inst, "queue", "start", "-q", "debug").returncode == 0
    flux.job.event_wait(h, jobid, "clean")


def test_queue_list_and_python_api(h, inst):
    proc = cli(inst, "queue", "list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["QUEUE", "EN", "ST", "TDEFAULT", "TLIMIT", "NNODES",
                                "NCORES", "NGPUS"]
    assert lines[1].split() == ["batch*", "✔", "✔", "1h", "2h", "0-inf", "0-inf",
                                "0-inf"]
    assert lines[2].split() == ["debug", "✔", "✔", "1m", "5m", "0-inf", "0-1", "0-inf"]
    assert lines[3].split() == ["big", "✔", "✔", "1h", "2h", "0-inf", "2-inf", "0-inf"]
    ql = QueueList(h)
    assert [q.name for q in ql] == ["batch", "debug", "big"]
    assert ql.default_queue == "batch" and ql.batch.is_default
    assert ql["debug"].requires == ["debug"]
    assert ql["debug"].limits.max.ncores == 1
    assert ql["debug"].limits.timelimit == 300.0
    assert ql["big"].limits.max.nnodes == math.inf
    with pytest.raises(KeyError):
        ql["nope"]
    with pytest.raises(ValueError, match="No such queue: nope"):
        QueueList(h, ["nope"])
    proc = cli(inst, "queue", "stop", "maint")
    assert proc.returncode == 1
    assert "use --queue=NAME or --all" in proc.stderr
    assert h.rpc("job-manager.queue-list").get() == {"queues": ["batch", "debug", "big"]}


# -- no queues configured; a configuration error; restart ------------------------------


def test_anonymous_queue(tmp_path):
    path = write_config(tmp_path, '[policy.limits]\nduration = "10m"\n')
    with start_many(1, "-c", path) as inst:
        h = inst.handle()
        assert [q.name for q in QueueList(h)] == [""]
        assert refused(h, jobspec(duration=3600)) == \
            "requested duration exceeds policy limit of 10m"
        # without queues, the queue a jobspec names is not checked
        jobid = flux.job.submit(h, jobspec(queue="anything", duration=1), waitable=True)
        assert flux.job.wait(h, jobid).success
        proc = run_flux("queue", "disable", "going", "down", env=inst.env())
        assert proc.stdout == "Job submission is disabled: going down\n"
        assert refused(h, jobspec(duration=1)) == "job submission is disabled: going down"
        proc = run_flux("queue", "list", env=inst.env())
        assert proc.stdout.splitlines()[1].split() == ["✗", "✔", "inf", "10m", "0-inf",
                                                       "0-inf", "0-inf"]


def test_no_default_queue(tmp_path):
    path = write_config(tmp_path, "[queues.a]\n[queues.b]\n")
    with start_many(1, "-c", path) as inst:
        h = inst.handle()
        assert refused(h, jobspec()) == "no queue specified"
        jobid = flux.job.submit(h, jobspec(queue="b"), waitable=True)
        assert flux.job.wait(h, jobid).success


def test_bad_configuration_is_one_line(tmp_path):
    path = write_config(tmp_path, '[policy.limits]\nduration = "soon"\n')
    # the instance stops at once (its initial program with it)
    proc = run_flux("start", "-c", path, "sleep", "120", timeout=60)
    assert proc.returncode != 0
    assert "policy.limits.duration: invalid Flux standard duration" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_queue_state_survives_restart(tmp_path):
    path = write_config(tmp_path, CONFIG)
    statedir = tmp_path / "state"
    statedir.mkdir()
    opts = ("-c", path, f"-Sstatedir={statedir}")
    with start_many(1, *opts) as inst:
        h = inst.handle()
        h.rpc("job-manager.queue-start", {"name": "debug", "start": False,
                                          "reason": "maint"}).get()
        h.rpc("job-manager.queue-enable", {"name": "big", "enable": False,
                                           "reason": "later"}).get()
        jobid = flux.job.submit(h, jobspec(queue="debug"), waitable=True)
        flux.job.event_wait(h, jobid, "priority")
    with start_many(1, *opts) as inst:
        h = inst.handle()
        assert h.rpc("job-manager.queue-status", {"name": "debug"}).get() == \
            {"enable": True, "start": False, "stop_reason": "maint"}
        assert h.rpc("job-manager.queue-status", {"name": "big"}).get() == \
            {"enable": False, "start": True, "disable_reason": "later"}
        later = flux.job.submit(h, jobspec(queue="batch"), waitable=True)
        assert flux.job.wait(h, later).success
        assert flux.job.job_list_id(h, jobid).get_jobinfo().state_single == "S"
        h.rpc("job-manager.queue-start", {"name": "debug", "start": True}).get()
        assert flux.job.wait(h, jobid).success
    assert os.path.isdir(statedir)


def test_queue_requests_refuse_bad_input(h, inst):
    for topic, payload, text in (
            ("job-manager.queue-status", {"name": "x"}, "'x' is not a valid queue"),
            ("job-manager.queue-enable", {"name": "x", "enable": True},
             "'x' is not a valid queue"),
            ("job-manager.drain", {"name": "x"}, "'x' is not a valid queue")):
        with pytest.raises(OSError) as info:
            h.rpc(topic, payload).get()
        assert (info.value.errno, info.value.strerror) == (errno.EINVAL, text)
    with pytest.raises(OSError) as info:
        h.rpc("job-manager.queue-start", {"all": True, "start": "yes"}).get()
    assert info.value.errno == errno.EPROTO
    assert h.rpc("job-manager.queue-list").get()["queues"][0] == "batch"


def test_queue_resources_are_restricted_by_requires(tmp_path):
    """QueueInfo.resources: the nodes with the queue's properties (rank 0
    is the only debug node), the whole instance for a queue without."""
    path = write_config(tmp_path, CONFIG)
    with start_many(2, "-Sresource.cores=2", "-c", path) as two:
        ql = QueueList(two.handle())
        debug, batch = ql["debug"].resources, ql["batch"].resources
        assert (debug.all.nnodes, debug.up.ncores) == (1, 2)
        assert (batch.all.nnodes, batch.free.ncores) == (2, 4)
        assert str(debug.all.ranks) == "0"
