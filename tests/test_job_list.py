"""job-list against real instances, plus the service's pure parts.

A private instance with 8 (presented) cores is shared by this module so
that which jobs run, which wait and the counters are all deterministic.
Jobs use simulated execution (``attributes.system.exec.test``); long ones
are canceled by the tests that start them.  Completion is awaited with
``job-manager.wait`` (jobs are waitable) or an eventlog watch, never sleep.
"""

import errno
import json
import os

import pytest

import flux
import flux.job
from conftest import launch
from flux.constants import (
    FLUX_JOB_RESULT_CANCELED,
    FLUX_JOB_RESULT_COMPLETED,
    FLUX_JOB_RESULT_FAILED,
    FLUX_JOB_STATE_INACTIVE,
    FLUX_JOB_STATE_RUN,
    FLUX_JOB_STATE_SCHED,
    FLUX_RPC_STREAMING,
    FLUX_USERID_UNKNOWN,
)
from flux.job import JobInfo, JobList, JobStats, get_job, job_list, job_list_id
from flux.job import job_list_inactive
from fluxrm.jobrequest import JobRequest, listing_of
from fluxrm.jobstate import DEPEND, INACTIVE, RUN
from fluxrm.jobstore import JobStore
from fluxrm.modules import job_list as svcmod
from fluxrm.modules.job_list import constraint as constraints
from fluxrm.store import Store

NCORES = 8


def make_jobspec(run="0.01s", ncores=1, name=None, queue=None, cwd=None,
                 command=("true",), duration=0, nodes=None, exclusive=False,
                 ntasks_total=None, project=None, bank=None):
    slot = {"type": "slot", "count": 1, "label": "task",
            "with": [{"type": "core", "count": ncores}]}
    resources = [slot]
    if nodes is not None:
        node = {"type": "node", "count": nodes, "with": [slot]}
        if exclusive:
            node["exclusive"] = True
        resources = [node]
    count = {"total": ntasks_total} if ntasks_total else {"per_slot": 1}
    system = {"duration": duration, "exec": {"test": {"run_duration": run}}}
    if name is not None:
        system["job"] = {"name": name}
    for key, value in (("queue", queue), ("cwd", cwd), ("project", project),
                       ("bank", bank)):
        if value is not None:
            system[key] = value
    return {
        "resources": resources,
        "tasks": [{"command": list(command), "slot": "task", "count": count}],
        "attributes": {"system": system},
        "version": 1,
    }


def submit(h, urgency=16, **kw):
    return flux.job.submit(h, json.dumps(make_jobspec(**kw)), urgency=urgency,
                           waitable=True)


def wait(h, jobid):
    return h.rpc("job-manager.wait", {"id": int(jobid)}).get()


def started(h, jobid):
    flux.job.event_wait(h, jobid, "start")


def cancel(h, *jobids):
    """Cancel the jobs in the order given and wait for each to end.

    Name queued jobs before running ones: canceling a running job frees its
    cores, and a short queued job could then run and end before its own
    cancel arrives (which would fail with "job is inactive")."""
    for jobid in jobids:
        flux.job.cancel(h, jobid)
    for jobid in jobids:
        wait(h, jobid)


def list_all(h, **kw):
    return job_list(h, max_entries=0, userid=FLUX_USERID_UNKNOWN, **kw).get_jobs()


def mine(jobs, ids):
    ids = {int(i) for i in ids}
    return [j for j in jobs if j["id"] in ids]


@pytest.fixture(scope="module")
def inst():
    instance = launch(f"resource.cores={NCORES}")
    yield instance
    instance.stop()


@pytest.fixture
def h(inst):
    return flux.Flux(inst.uri)


# ---------------------------------------------------------------------------
# Ordering and omission


def test_order_pending_running_inactive(h):
    done = []
    for _ in range(2):
        jobid = submit(h)
        wait(h, jobid)
        done.append(jobid)
    running = []
    for _ in range(3):
        jobid = submit(h, run="1h")
        started(h, jobid)
        running.append(jobid)
    filler = submit(h, run="1h", ncores=NCORES - 3)
    started(h, filler)
    # every core is busy now: these wait in SCHED
    p5 = submit(h, urgency=5)
    p20a = submit(h, urgency=20)
    p20b = submit(h, urgency=20)
    p10 = submit(h, urgency=10)
    held = submit(h, urgency=0)
    try:
        jobs = mine(list_all(h), done + running + [filler, p5, p20a, p20b, p10, held])
        order = [j["id"] for j in jobs]
        expected = [p20a, p20b, p10, p5, held, filler, *reversed(running),
                    *reversed(done)]
        assert order == [int(i) for i in expected]
        states = {j["id"]: j["state"] for j in jobs}
        assert states[held] == FLUX_JOB_STATE_SCHED
        assert states[filler] == FLUX_JOB_STATE_RUN
        assert states[done[0]] == FLUX_JOB_STATE_INACTIVE
        # max_entries counts from the head of that order
        head = job_list(h, max_entries=2, userid=FLUX_USERID_UNKNOWN).get_jobs()
        assert [j["id"] for j in head] == [p20a, p20b]
    finally:
        cancel(h, held, p10, p20b, p20a, p5, filler, *running)


def test_omission_rules(h):
    pending_id = submit(h, urgency=0)
    run_id = submit(h, run="1h", duration=3600)
    started(h, run_id)
    try:
        pend = job_list_id(h, pending_id).get_job()
        assert pend["priority"] == 0
        for key in ("t_submit", "t_depend", "t_priority", "t_sched", "name",
                    "ntasks", "ncores", "duration", "urgency", "userid"):
            assert key in pend, key
        for key in ("t_run", "t_cleanup", "t_inactive", "ranks", "nodelist",
                    "expiration", "success", "result", "exception_occurred",
                    "exception_type", "waitstatus", "nnodes", "queue", "cwd",
                    "annotations", "dependencies", "project", "bank"):
            assert key not in pend, key
        run = job_list_id(h, run_id).get_job()
        assert run["state"] == FLUX_JOB_STATE_RUN
        for key in ("t_run", "ranks", "nodelist", "expiration", "nnodes"):
            assert key in run, key
        assert run["ranks"] == "0"
        assert run["nnodes"] == 1
        assert run["expiration"] == pytest.approx(run["t_run"] + 3600, abs=5)
        for key in ("t_cleanup", "success", "result", "waitstatus",
                    "exception_occurred"):
            assert key not in run, key
    finally:
        cancel(h, pending_id, run_id)
    # a job canceled while pending never ran
    pend = job_list_id(h, pending_id).get_job()
    assert pend["state"] == FLUX_JOB_STATE_INACTIVE
    assert pend["result"] == FLUX_JOB_RESULT_CANCELED
    assert pend["success"] is False
    assert pend["exception_occurred"] is True
    assert pend["exception_type"] == "cancel"
    assert pend["exception_severity"] == 0
    assert pend["exception_note"] == ""
    for key in ("t_run", "ranks", "nodelist", "expiration", "waitstatus"):
        assert key not in pend, key
    assert pend["t_cleanup"] <= pend["t_inactive"]
    # a canceled running job was signaled
    run = job_list_id(h, run_id).get_job()
    assert run["result"] == FLUX_JOB_RESULT_CANCELED
    assert "waitstatus" in run


def test_completed_job_attributes(h):
    jobid = submit(h, name="myname", cwd="/tmp", queue="qattr", project="p1",
                   bank="b1", ncores=2)
    wait(h, jobid)
    job = job_list_id(h, jobid).get_job()
    assert job["id"] == jobid
    assert job["state"] == FLUX_JOB_STATE_INACTIVE
    assert job["result"] == FLUX_JOB_RESULT_COMPLETED
    assert job["success"] is True
    assert job["exception_occurred"] is False
    assert "exception_type" not in job
    assert job["waitstatus"] == 0
    assert job["name"] == "myname"
    assert job["cwd"] == "/tmp"
    assert job["queue"] == "qattr"
    assert (job["project"], job["bank"]) == ("p1", "b1")
    assert (job["ntasks"], job["ncores"], job["nnodes"]) == (1, 2, 1)
    assert job["userid"] == os.getuid()
    assert job["urgency"] == 16 and job["priority"] == 16
    assert (job["t_submit"] <= job["t_depend"] <= job["t_priority"]
            <= job["t_sched"] <= job["t_run"] <= job["t_cleanup"]
            <= job["t_inactive"])
    assert job["nodelist"]
    assert job["duration"] == 0.0


def test_name_from_command_and_task_counts(h):
    a = submit(h, command=("/bin/echo", "hi"))
    b = submit(h, ntasks_total=3, nodes=1)
    c = submit(h, nodes=1, exclusive=True)
    for jobid in (a, b, c):
        wait(h, jobid)
    ja = job_list_id(h, a, ["name", "ntasks"]).get_job()
    assert ja == {"id": a, "name": "echo", "ntasks": 1}
    jb = job_list_id(h, b, ["ntasks", "nnodes", "ncores"]).get_job()
    assert jb == {"id": b, "ntasks": 3, "nnodes": 1, "ncores": 1}
    # exclusive node: cores are known from R only
    jc = job_list_id(h, c, ["nnodes", "ncores"]).get_job()
    assert jc["nnodes"] == 1
    assert jc["ncores"] == NCORES


def test_failed_job(h):
    spec = make_jobspec()
    spec["attributes"]["system"]["exec"]["test"]["wait_status"] = 256
    bad = flux.job.submit(h, json.dumps(spec), waitable=True)
    wait(h, bad)
    job = job_list_id(h, bad).get_job()
    assert job["result"] == FLUX_JOB_RESULT_FAILED
    assert job["waitstatus"] == 256
    info = JobInfo(job)
    assert info.returncode == 1
    assert info.result == "FAILED"


# ---------------------------------------------------------------------------
# Filters, constraints, attributes


def test_attrs_selection(h):
    jobid = submit(h)
    wait(h, jobid)
    job = job_list_id(h, jobid, ["state", "name"]).get_job()
    assert job == {"id": jobid, "state": FLUX_JOB_STATE_INACTIVE, "name": "true"}
    assert job_list_id(h, jobid, []).get_job() == {"id": jobid}
    jobs = job_list(h, max_entries=1, attrs=["userid"]).get_jobs()
    assert set(jobs[0]) == {"id", "userid"}


def test_filters_and_constraint(h):
    a = submit(h, name="flt-a", queue="fq1")
    b = submit(h, name="flt-b", queue="fq2")
    wait(h, a)
    wait(h, b)
    held = submit(h, urgency=0, name="flt-a", queue="fq1")
    try:
        ids = [a, b, held]
        got = mine(job_list(h, max_entries=0, name="flt-a").get_jobs(), ids)
        assert [j["id"] for j in got] == [held, a]
        got = mine(job_list(h, max_entries=0, queue="fq2").get_jobs(), ids)
        assert [j["id"] for j in got] == [b]
        got = mine(job_list(h, max_entries=0, name="flt-a",
                            states=FLUX_JOB_STATE_INACTIVE).get_jobs(), ids)
        assert [j["id"] for j in got] == [a]
        got = mine(job_list(h, max_entries=0, states=FLUX_JOB_STATE_SCHED,
                            results=FLUX_JOB_RESULT_COMPLETED).get_jobs(), ids)
        assert [j["id"] for j in got] == [held, b, a]
        c = {"or": [{"name": ["flt-b"]},
                    {"and": [{"queue": ["fq1"]}, {"states": ["pending"]}]}]}
        got = mine(list_all(h, constraint=c), ids)
        assert [j["id"] for j in got] == [held, b]
        c = {"and": [{"name": ["flt-a", "flt-b"]}, {"not": [{"queue": ["fq1"]}]}]}
        got = mine(list_all(h, constraint=c), ids)
        assert [j["id"] for j in got] == [b]
        got = mine(list_all(h, constraint={"results": ["completed"]}), ids)
        assert [j["id"] for j in got] == [b, a]
        got = mine(list_all(h, constraint={"states": [FLUX_JOB_STATE_SCHED]}), ids)
        assert [j["id"] for j in got] == [held]
        hostname = job_list_id(h, a).get_job()["nodelist"]
        got = mine(list_all(h, constraint={"hostlist": [hostname]}), ids)
        assert [j["id"] for j in got] == [b, a]
        assert mine(list_all(h, constraint={"hostlist": ["nosuchhost"]}), ids) == []
        got = mine(list_all(h, constraint={"ranks": ["0"]}), ids)
        assert [j["id"] for j in got] == [b, a]
        assert mine(list_all(h, constraint={"userid": [os.getuid() + 1]}), ids) == []
        got = mine(list_all(h, constraint={"userid": [FLUX_USERID_UNKNOWN]}), ids)
        assert len(got) == 3
        t_a = job_list_id(h, a).get_job()["t_inactive"]
        got = mine(list_all(h, constraint={"t_inactive": [f">{t_a}"]}), ids)
        assert [j["id"] for j in got] == [b]
    finally:
        cancel(h, held)


def test_joblist_class(h):
    a = submit(h)
    wait(h, a)
    held = submit(h, urgency=0)
    try:
        jl = JobList(h, filters=["pending"], max_entries=0)
        infos = jl.jobs()
        assert all(isinstance(j, JobInfo) for j in infos)
        assert int(held) in [int(j.id) for j in infos]
        assert all(j.state in ("DEPEND", "PRIORITY", "SCHED") for j in infos)
        jl = JobList(h, filters=["completed,sched"], max_entries=0)
        ids = [int(j.id) for j in jl.jobs()]
        assert int(a) in ids and int(held) in ids
        jl = JobList(h, filters=["failed"], max_entries=0)
        assert int(a) not in [int(j.id) for j in jl.jobs()]
        # ids ignore the other filters; unknown ids become errors
        bogus = flux.job.JobID(12345)
        jl = JobList(h, filters=["failed"], ids=[a, bogus, "f1"])
        infos = jl.jobs()
        assert [int(j.id) for j in infos] == [a]
        assert jl.errors == [f"JobID {bogus.orig} unknown", "JobID f1 unknown"]
        jl = JobList(h, user="all", max_entries=0)
        assert int(a) in [int(j.id) for j in jl.jobs()]
        jl = JobList(h, user=str(os.getuid()), max_entries=0)
        assert int(a) in [int(j.id) for j in jl.jobs()]
        jl = JobList(h, user="root")
        assert jl.userid == 0
    finally:
        cancel(h, held)


def test_joblist_invalid_arguments(h):
    with pytest.raises(ValueError, match="Invalid filter"):
        JobList(h, filters=["bogus"])
    with pytest.raises(ValueError):
        JobList(h, filters=["pending,nope"])
    with pytest.raises(ValueError, match="Invalid user"):
        JobList(h, user="no-such-user-xyz")


def test_list_id_and_get_job(h):
    jobid = submit(h)
    wait(h, jobid)
    info = job_list_id(h, jobid).get_jobinfo()
    assert isinstance(info, JobInfo)
    assert info.id == jobid
    assert info.state == "INACTIVE"
    flat = get_job(h, jobid)
    assert flat["id"] == jobid
    assert flat["state"] == "INACTIVE"
    assert flat["result"] == "COMPLETED"
    assert flat["jobid"] == flux.job.JobID(jobid).f58
    assert "job" not in flat
    assert get_job(h, flux.job.JobID(jobid).f58)["id"] == jobid
    assert get_job(h, 12345) is None
    with pytest.raises(FileNotFoundError):
        job_list_id(h, 12345).get_job()


def test_request_errors(h):
    with pytest.raises(OSError) as exc:
        job_list(h, attrs=["nosuchattr"]).get_jobs()
    assert exc.value.errno == errno.EINVAL
    with pytest.raises(OSError) as exc:
        job_list(h, constraint={"bogus": [1]}).get_jobs()
    assert exc.value.errno == errno.EPROTO
    with pytest.raises(OSError) as exc:
        job_list(h, constraint={"states": ["nostate"]}).get_jobs()
    assert exc.value.errno == errno.EPROTO
    with pytest.raises(OSError) as exc:
        job_list(h, constraint={"userid": "x"}).get_jobs()
    assert exc.value.errno == errno.EPROTO
    with pytest.raises(OSError) as exc:
        job_list(h, max_entries=-1).get_jobs()
    assert exc.value.errno == errno.EPROTO
    with pytest.raises(OSError) as exc:
        h.rpc("job-list.list", {"max_entries": 1}).get()
    assert exc.value.errno == errno.EPROTO
    with pytest.raises(OSError) as exc:
        h.rpc("job-list.list-id", {"id": "x", "attrs": []}).get()
    assert exc.value.errno == errno.EPROTO
    with pytest.raises(OSError) as exc:
        job_list_id(h, 1, attrs=["nope"]).get_job()
    assert exc.value.errno == errno.EINVAL


def test_streaming_and_plain_requests(h):
    for _ in range(3):
        wait(h, submit(h))
    payload = {"max_entries": 3, "attrs": [], "since": 0.0}
    rpc = h.rpc("job-list.list", payload, flags=FLUX_RPC_STREAMING)
    first = rpc.get()
    assert first["version"] == 1
    assert len(first["jobs"]) == 3
    rpc.reset()
    with pytest.raises(OSError) as exc:
        rpc.get()
    assert exc.value.errno == errno.ENODATA
    # a plain (non-streaming) request gets one response
    rsp = h.rpc("job-list.list", payload).get()
    assert [j["id"] for j in rsp["jobs"]] == [j["id"] for j in first["jobs"]]


def test_since_and_inactive_listing(h):
    ids = []
    for _ in range(3):
        jobid = submit(h)
        wait(h, jobid)
        ids.append(jobid)
    jobs = job_list_inactive(h, max_entries=3).get_jobs()
    assert [j["id"] for j in jobs] == list(reversed(ids))
    since = jobs[2]["t_inactive"]
    newer = job_list_inactive(h, since=since, max_entries=0).get_jobs()
    assert [j["id"] for j in newer] == [ids[2], ids[1]]
    assert job_list_inactive(h, since=jobs[0]["t_inactive"]).get_jobs() == []
    one = job_list_inactive(h, max_entries=1, attrs=["t_inactive"]).get_jobs()
    assert one == [{"id": ids[2], "t_inactive": jobs[0]["t_inactive"]}]


# ---------------------------------------------------------------------------
# Stats


def test_stats(h):
    q = "statq"
    before = JobStats(h).update_sync()
    with pytest.raises(ValueError, match=f"no stats available for queue {q}"):
        JobStats(h, queue=q).update_sync()
    ok = submit(h, queue=q)
    spec = make_jobspec(queue=q)
    spec["attributes"]["system"]["exec"]["test"]["wait_status"] = 256
    bad = flux.job.submit(h, json.dumps(spec), waitable=True)
    wait(h, ok)
    wait(h, bad)
    held = submit(h, urgency=0, queue=q)
    canceled = submit(h, urgency=0, queue=q)
    cancel(h, canceled)
    try:
        stats = JobStats(h, queue=q).update_sync()
        assert (stats.sched, stats.inactive, stats.total) == (1, 3, 4)
        assert (stats.successful, stats.canceled, stats.timeout) == (1, 1, 0)
        assert stats.failed == 2  # one FAILED, plus the canceled one
        assert (stats.pending, stats.running, stats.active) == (1, 0, 1)
        both = JobStats(h, queue=[q, q]).update_sync()
        assert both.total == 8
        after = JobStats(h).update_sync()
        assert after.total - before.total == 4
        assert after.inactive - before.inactive == 3
        assert after.successful - before.successful == 1
        calls = []

        def cb(stats, tag):
            calls.append((stats.total, tag))
            h.reactor_stop()

        async_stats = JobStats(h, queue=q)
        assert async_stats.total == -1
        async_stats.update(cb, tag="x")
        h.reactor_run()
        assert calls == [(4, "x")]
    finally:
        cancel(h, held)


# ---------------------------------------------------------------------------
# Restart


def test_inactive_listing_and_stats_survive_restart(tmp_path):
    statedir = tmp_path / "state"
    attrs = (f"statedir={statedir}", "resource.cores=2")
    inst = launch(*attrs)
    try:
        h = flux.Flux(inst.uri)
        done = [submit(h) for _ in range(3)]
        for jobid in done:
            wait(h, jobid)
        held = submit(h, urgency=0, name="held")
        before = list_all(h)
        stats = JobStats(h).update_sync()
        assert (stats.inactive, stats.successful, stats.sched) == (3, 3, 1)
    finally:
        inst.stop()
    inst = launch(*attrs)
    try:
        h = flux.Flux(inst.uri)
        after = list_all(h)
        assert [j["id"] for j in after] == [j["id"] for j in before]
        assert after[0]["id"] == held and after[0]["name"] == "held"
        assert after[1:] == before[1:]
        stats = JobStats(h).update_sync()
        assert (stats.inactive, stats.successful, stats.sched) == (3, 3, 1)
        assert stats.total == 4
        assert job_list_id(h, done[0]).get_job() == before[3]
        cancel(h, held)
        stats = JobStats(h).update_sync()
        assert (stats.inactive, stats.canceled, stats.total) == (4, 1, 4)
    finally:
        inst.stop()


# ---------------------------------------------------------------------------
# Service internals (no instance)


def test_listing_of():
    d = listing_of(make_jobspec(ncores=3, name="n", queue="q"))
    assert d["name"] == "n" and d["queue"] == "q"
    assert (d["ntasks"], d["ncores"], d["nnodes"]) == (1, 3, None)
    d = listing_of(make_jobspec(nodes=2, ncores=2))
    assert (d["ntasks"], d["ncores"], d["nnodes"]) == (2, 4, 2)
    d = listing_of(make_jobspec(nodes=2, exclusive=True))
    assert d["ncores"] is None and d["nnodes"] == 2
    d = listing_of(make_jobspec(command=("/usr/bin/env",),
                                           duration=60))
    assert d["name"] == "env" and d["duration"] == 60.0
    assert listing_of({})["name"] == ""
    assert listing_of("junk")["ntasks"] is None


def test_compile_constraint_masks():
    pred, mask = constraints.compile_constraint({"states": ["pending"]})
    assert mask == svcmod.PENDING
    pred, mask = constraints.compile_constraint(
        {"or": [{"states": ["run"]}, {"results": ["failed"]}]})
    assert mask == RUN | INACTIVE
    values = {"state": INACTIVE, "result": FLUX_JOB_RESULT_FAILED}
    assert pred(values.get)
    values = {"state": INACTIVE, "result": FLUX_JOB_RESULT_COMPLETED}
    assert not pred(values.get)
    pred, mask = constraints.compile_constraint(
        {"and": [{"states": ["inactive"]}, {"states": ["pending"]}]})
    assert mask == 0
    pred, mask = constraints.compile_constraint({})
    assert pred({}.get) and mask == constraints.ALL_STATES
    pred, _ = constraints.compile_constraint({"not": [{"name": ["x"]}]})
    assert pred({"name": "y"}.get) and not pred({"name": "x"}.get)
    pred, _ = constraints.compile_constraint({"or": []})
    assert not pred({}.get)
    for bad in ([], {"and": {}}, {"name": [1]}, {"t_run": ["~3"]},
                {"ranks": ["x"]}, {"results": ["bogus"]}):
        with pytest.raises(OSError) as exc:
            constraints.compile_constraint(bad)
        assert exc.value.errno == errno.EPROTO
    assert constraints._userid_pushdown({"and": [{"userid": [5]}]}) == {5}
    assert constraints._userid_pushdown({"or": [{"userid": [5]}]}) is None


# -- the journal consumer, without a broker ----------------------------------------------

R2 = {"version": 1, "execution": {
    "R_lite": [{"rank": "0-1", "children": {"core": "0-3"}}],
    "nodelist": ["n[0-1]"], "starttime": 1.0, "expiration": 100.0}}


@pytest.fixture
def offline():
    """A job-list with an in-memory store and no broker, fed by hand."""
    store = Store(":memory:")
    svc = svcmod.JobList(None)
    svc.store, svc.jobstore = store, JobStore(store)
    yield svc
    store.close()


def _entry(svc, jobid, name, context=None, data=None, ts=1.0):
    event = {"timestamp": ts, "name": name}
    if context:
        event["context"] = context
    svc.journal_entry(jobid, event, data)


def _run_to_end(svc, jobid, t_end, userid=5, request=None, status=0):
    _entry(svc, jobid, "submit", {"userid": userid, "urgency": 16, "flags": 0},
           request or JobRequest(make_jobspec()))
    for name in ("validate", "depend"):
        _entry(svc, jobid, name)
    _entry(svc, jobid, "priority", {"priority": 16})
    _entry(svc, jobid, "alloc", None, R2)
    _entry(svc, jobid, "finish", {"status": status})
    _entry(svc, jobid, "release", {"ranks": "all", "final": True})
    _entry(svc, jobid, "clean", ts=t_end)


def _store_row(svc, jobid, t_inactive, userid=5):
    """The row the job-manager would have written (no info: job-list's)."""
    svc.store.execute("INSERT INTO jobs (id, userid, state, t_submit, t_inactive)"
                      " VALUES (?, ?, ?, 1.0, ?)",
                      (jobid, userid, INACTIVE, t_inactive))


def test_journal_entries_annotations_dependencies_and_counts(offline):
    svc = offline
    _entry(svc, 42, "submit", {"userid": 5, "urgency": 16, "flags": 0},
           JobRequest(make_jobspec(queue="qa")))
    _entry(svc, 42, "validate")
    assert svc.stats.total.states[DEPEND] == 1
    assert svc.stats.queues["qa"].states[DEPEND] == 1
    _entry(svc, 42, "dependency-add", {"description": "after:1"})
    _entry(svc, 42, "dependency-add", {"description": "after:2"})
    _entry(svc, 42, "dependency-remove", {"description": "after:1"})
    _entry(svc, 42, "memo", {"a": 1, "b": {"c": 2}})
    _entry(svc, 42, "memo", {"a": None})
    _entry(svc, 42, "jobspec-update", {"attributes.system.queue": "qb",
                                       "attributes.system.duration": 5.0})
    rec = svc.attrs.record(svc.jobs[42], svcmod.ATTRS)
    assert rec["dependencies"] == ["after:2"]
    assert rec["annotations"] == {"user": {"b": {"c": 2}}}
    assert rec["queue"] == "qb" and rec["duration"] == 5.0
    assert svc.stats.queues["qa"].states[DEPEND] == 0
    assert svc.stats.queues["qb"].states[DEPEND] == 1
    _entry(svc, 42, "depend")
    _entry(svc, 42, "priority", {"priority": 16})
    _entry(svc, 42, "alloc", {"annotations": {"sched": {"queue": "qb"}}}, R2)
    rec = svc.attrs.record(svc.jobs[42], svcmod.ATTRS)
    assert (rec["ranks"], rec["nodelist"], rec["expiration"]) == ("0-1", "n[0-1]", 100.0)
    assert rec["annotations"]["sched"] == {"queue": "qb"}
    assert rec["state"] == FLUX_JOB_STATE_RUN and rec["t_run"] == 1.0
    _entry(svc, 42, "resource-update", {"expiration": 200.0})
    assert svc.attrs.record(svc.jobs[42], ["expiration"])["expiration"] == 200.0
    for name, ctx in (("start", None), ("finish", {"status": 0}),
                      ("release", {"ranks": "all", "final": True}), ("free", None)):
        _entry(svc, 42, name, ctx)
    _entry(svc, 42, "clean", ts=2.0)
    assert 42 not in svc.jobs and 42 in svc.unwritten
    info = svc.attrs.record(svc.unwritten[42], svcmod.ATTRS)
    assert svc.attrs.info(svc.unwritten[42]) == info  # the stored dict, made at once
    assert info["result"] == FLUX_JOB_RESULT_COMPLETED and info["success"] is True
    assert info["t_inactive"] == 2.0
    assert svc.stats.total.states[INACTIVE] == 1
    assert svc.stats.total.results[FLUX_JOB_RESULT_COMPLETED] == 1
    assert sum(svc.stats.total.states.values()) == 1
    # the same job replayed from a stored row (what a row without info gets)
    lines = "".join(json.dumps(e) + "\n" for e in [
        {"timestamp": 1.0, "name": "submit", "context": {"userid": 5}},
        {"timestamp": 1.0, "name": "jobspec-update",
         "context": {"attributes.system.queue": "qb"}},
        {"timestamp": 2.0, "name": "exception",
         "context": {"type": "cancel", "severity": 0, "note": ""}},
        {"timestamp": 2.0, "name": "clean"}])
    rec = svcmod.stored_record(7, {"jobspec": json.dumps(make_jobspec(queue="qa")),
                                   "R": "not json", "eventlog": lines + "garbage\n"})
    d = svc.attrs.record(rec, svcmod.ATTRS)
    assert (d["queue"], d["result"], d["t_inactive"]) == ("qb", FLUX_JOB_RESULT_CANCELED, 2.0)
    assert "ranks" not in d
    assert svc.attrs.info(rec) == d


@pytest.mark.parametrize("events", [
    [("exception", {"severity": 0})],  # no type, no note
    [("exception", {"type": "x", "severity": 2, "note": "n"}),
     ("alloc", {"annotations": {"a": 1}}), ("finish", {"status": 256})],
    [("dependency-add", {"description": "d"}), ("memo", {"m": [1]}),
     ("jobspec-update", {"attributes.system.duration": 9.0,
                         "resources": [{"type": "node", "count": 2, "with": [
                             {"type": "slot", "count": 1, "label": "task",
                              "with": [{"type": "core", "count": 2}]}]}]}),
     ("alloc", None), ("resource-update", {"expiration": 5.0}),
     ("finish", {"status": 0})],
], ids=["no-type", "nonfatal-then-failed", "updated"])
def test_the_stored_info_has_the_values_of_the_getters(offline, events):
    svc = offline
    _entry(svc, 1, "submit", {"userid": 5, "urgency": 16, "flags": 0},
           JobRequest(make_jobspec(nodes=1, exclusive=True, project="p")))
    for name in ("validate", "depend"):
        _entry(svc, 1, name)
    _entry(svc, 1, "priority", {"priority": 16})
    for name, ctx in events:
        _entry(svc, 1, name, ctx, R2 if name == "alloc" else None)
    for name in ("release", "clean"):
        _entry(svc, 1, name)
    rec = svc.unwritten[1]
    assert svc.attrs.info(rec) == svc.attrs.record(rec, svcmod.ATTRS)


def test_entries_of_a_job_never_submitted_are_ignored(offline):
    _entry(offline, 9, "validate")
    _entry(offline, 9, "clean")
    assert offline.jobs == {} and offline.unwritten == {}
    assert offline.stats.to_dict()["job_states"]["total"] == 0


def test_info_is_written_before_the_commit_once_the_row_exists(offline):
    svc, store = offline, offline.store
    _run_to_end(svc, 1, 3.0)
    # the job-manager has not stored the row yet: the info waits, still
    # answered from memory
    store.flush()
    assert 1 in svc.unwritten
    assert store.query_one("SELECT count(*) FROM jobs")[0] == 0
    _store_row(svc, 1, 3.0)
    _run_to_end(svc, 2, 4.0)  # the next job to end writes both
    _store_row(svc, 2, 4.0)
    store.flush()
    assert svc.unwritten == {}
    stored = dict(store.query("SELECT id, info FROM jobs"))
    assert json.loads(stored[1])["t_inactive"] == 3.0
    assert json.loads(stored[2])["result"] == FLUX_JOB_RESULT_COMPLETED


def test_info_of_a_failed_batch_is_written_again(offline):
    svc, store = offline, offline.store
    _run_to_end(svc, 1, 3.0)
    _store_row(svc, 1, 3.0)
    store.before_commit(lambda: 1 / 0)  # after job-list's: the batch fails
    with pytest.raises(ZeroDivisionError):
        store.flush()
    assert 1 in svc.unwritten  # rolled back: to be written again
    _store_row(svc, 1, 3.0)
    store.flush()
    assert svc.unwritten == {}
    assert json.loads(store.query_one("SELECT info FROM jobs")[0])["id"] == 1


def test_inactive_jobs_merge_memory_and_store_in_order(offline):
    svc, store = offline, offline.store
    for jobid, t in ((1, 5.0), (2, 3.0), (3, 7.0)):
        _run_to_end(svc, jobid, t, userid=jobid)
        _store_row(svc, jobid, t, userid=jobid)
    store.flush()
    assert svc.unwritten == {}
    _run_to_end(svc, 4, 4.0, userid=4)  # not stored yet
    _run_to_end(svc, 5, 9.0, userid=5)
    _store_row(svc, 4, 4.0, userid=4)  # its row is (without info: skipped)
    assert [i for i, _ in svc._inactive(0, None)] == [5, 3, 1, 4, 2]
    assert [i for i, _ in svc._inactive(4.0, None)] == [5, 3, 1]
    assert [i for i, _ in svc._inactive(0, {2, 4})] == [4, 2]
    jobs = svc.list_jobs(["t_inactive"], lambda get: True, INACTIVE, 3, 0, None)
    assert jobs == [{"id": 5, "t_inactive": 9.0}, {"id": 3, "t_inactive": 7.0},
                    {"id": 1, "t_inactive": 5.0}]
    pred, states = constraints.compile_constraint({"userid": [4, 2]})
    jobs = svc.list_jobs(["userid"], pred, states, 0, 0, {4, 2})
    assert jobs == [{"id": 4, "userid": 4}, {"id": 2, "userid": 2}]


def test_purged_jobs_leave_the_counts(offline):
    svc = offline
    _run_to_end(svc, 1, 3.0, request=JobRequest(make_jobspec(queue="qa")))
    _run_to_end(svc, 2, 3.0, status=1 << 8)
    stats = svc.stats.to_dict()
    assert (stats["job_states"]["inactive"], stats["successful"], stats["failed"]) == (2, 1, 1)
    svc.journal_purged([(1, json.dumps({"queue": "qa", "result": FLUX_JOB_RESULT_COMPLETED})),
                        (2, None)])
    stats = svc.stats.to_dict()
    assert (stats["job_states"]["inactive"], stats["successful"], stats["failed"],
            stats["inactive_purged"]) == (0, 0, 0, 2)
    assert stats["queues"][0]["name"] == "qa"
    assert stats["queues"][0]["job_states"]["inactive"] == 0
