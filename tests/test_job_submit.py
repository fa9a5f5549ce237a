"""flux.job.submit, flux.job.kvslookup and flux.job.timeleft (spec 3.1, 3.7, 9).

Most jobs here are simulated (``attributes.system.exec.test``) so that no
process is started.
"""

import base64
import errno
import inspect
import json
import math
import os

import pytest

import flux
from flux.constants import (
    FLUX_JOB_LOOKUP_JSON_DECODE,
    FLUX_JOB_RESULT_COMPLETED,
)
from flux.job import JobID, JobspecV1
from flux.job.event import JobException, event_wait, event_watch
from flux.job.kill import cancel
from flux.job.kvslookup import (
    JobKVSLookup,
    job_info_lookup,
    job_kvs,
    job_kvs_guest,
    job_kvs_lookup,
)
from flux.job.submit import (
    SubmitFuture,
    sign_none,
    submit,
    submit_async,
    submit_get_id,
)
from flux.job.timeleft import timeleft
from flux.job.wait import result_async, wait


def spec(cmd=("true",), run_duration="0.01s", **test):
    js = JobspecV1.from_command(list(cmd))
    if run_duration is not None:
        js.setattr("system.exec.test", {"run_duration": run_duration, **test})
    return js


def raises(errnum, fn, *args, **kwargs):
    with pytest.raises(OSError) as e:
        fn(*args, **kwargs)
    assert e.value.errno == errnum, e.value
    return e.value


def submit_context(h, jobid):
    return next(iter(event_watch(h, jobid))).context


# -- signing ---------------------------------------------------------------------------------
def test_sign_none_format():
    J = sign_none('{"a": 1}', userid=1234)
    header, payload, mech = J.split(".")
    assert mech == "none"
    assert base64.b64decode(header) == (
        b"version\0i1\0userid\0i1234\0mechanism\0snone\0")
    assert base64.b64decode(payload) == b'{"a": 1}'
    assert sign_none(b"x").split(".")[0] == sign_none("x", os.getuid()).split(".")[0]


# -- submit ----------------------------------------------------------------------------------
def test_submit_returns_jobid(h):
    jobid = submit(h, spec())
    assert isinstance(jobid, JobID)
    assert isinstance(jobid, int)
    assert jobid > 0
    event_wait(h, jobid, "clean")


def test_submit_future_get_is_none(h):
    f = submit_async(h, spec())
    assert isinstance(f, SubmitFuture)
    assert f.get() is None  # the base method, not the id
    jobid = f.get_id()
    assert isinstance(jobid, JobID)
    assert submit_get_id(f) == jobid
    assert f.get_id() == jobid


def test_submit_get_id_none():
    raises(errno.EINVAL, submit_get_id, None)


def test_submit_jobspec_types(h):
    js = spec()
    for jobspec in (js, js.dumps(), js.dumps().encode()):
        assert submit(h, jobspec) > 0
    raises(errno.EINVAL, submit_async, h, None)
    for bad in (42, {"version": 1}, ["x"]):
        with pytest.raises(TypeError):
            submit_async(h, bad)


def test_submit_has_no_novalidate():
    assert "novalidate" not in inspect.signature(submit).parameters
    assert "novalidate" in inspect.signature(submit_async).parameters
    with pytest.raises(TypeError):
        submit(None, "{}", novalidate=True)


def test_urgency_range(h):
    for urgency in (-1, 32, 100):
        e = raises(errno.EINVAL, submit, h, spec(), urgency=urgency)
        assert e.strerror == "urgency range is [0:31]"


def test_urgency_and_flags_recorded(h):
    ctx = submit_context(h, submit(h, spec(), urgency=7))
    assert ctx["urgency"] == 7
    assert ctx["flags"] == 0
    assert ctx["userid"] == os.getuid()
    assert ctx["version"] == 1
    jobid = submit(h, spec(), waitable=True, debug=True)
    assert submit_context(h, jobid)["flags"] == 4 | 2
    wait(h, jobid)
    jobid = submit_async(h, spec(), novalidate=True).get_id()
    assert submit_context(h, jobid)["flags"] == 8


def test_validation_errors(h):
    doc = json.loads(spec().dumps())
    del doc["tasks"]
    e = raises(errno.EINVAL, submit, h, json.dumps(doc))
    assert e.strerror == "Missing key (tasks)"


def test_validation_error_missing_duration(h):
    doc = json.loads(spec().dumps())
    del doc["attributes"]["system"]["duration"]
    e = raises(errno.EINVAL, submit, h, json.dumps(doc))
    assert e.strerror == "attributes.system.duration is a required key"


def test_invalid_json(h):
    e = raises(errno.EINVAL, submit, h, "{not json")
    assert e.strerror.startswith("jobspec: invalid JSON: ")


def test_pre_signed(h):
    J = sign_none(spec().dumps())
    jobid = submit(h, J, pre_signed=True)
    assert submit_context(h, jobid)["flags"] == 1
    event_wait(h, jobid, "clean")
    # signed by someone else: refused
    e = raises(errno.EPERM, submit, h, sign_none(spec().dumps(), os.getuid() + 1),
               pre_signed=True)
    assert isinstance(e, PermissionError)


def test_unsatisfiable_is_accepted_then_fails(h):
    js = JobspecV1.from_command(["true"], num_tasks=100000)
    jobid = submit(h, js)
    with pytest.raises(JobException) as e:
        event_wait(h, jobid, "start")
    assert e.value.type == "alloc"
    assert e.value.note.startswith("unsatisfiable request")


def test_many_async_submits(h):
    futures = [submit_async(h, spec()) for _ in range(50)]
    ids = [f.get_id() for f in futures]
    assert len(set(ids)) == 50
    assert ids == sorted(ids)
    for jobid in ids:
        result_async(h, jobid).get()


def test_seed_event_loop_example(h):
    """The seed's asynchronous example: submit, then result, from callbacks."""
    results = []

    def result_cb(fut):
        results.append(fut.get_dict())

    def submit_cb(fut, flux_handle):
        jobid = fut.get_id()
        result_fut = flux.job.result_async(flux_handle, jobid)
        result_fut.then(result_cb)

    for _ in range(5):
        submit_async(h, spec()).then(submit_cb, h)
    h.reactor_run()
    assert len(results) == 5
    assert all(r["result"] == FLUX_JOB_RESULT_COMPLETED for r in results)


def test_seed_example_get_info(h):
    pytest.importorskip("flux.job.info")
    out = []
    submit_async(h, spec()).then(
        lambda f: result_async(h, f.get_id()).then(lambda r: out.append(r.get_info())))
    h.reactor_run()
    assert out[0].result == "COMPLETED"


# -- KVS and lookup --------------------------------------------------------------------------
def test_job_kvs(h):
    jobid = submit(h, spec())
    event_wait(h, jobid, "clean")
    kd = job_kvs(h, jobid)
    assert isinstance(kd, flux.kvs.KVSDir)
    assert kd.path == "job." + jobid.dothex
    assert kd.path == jobid.kvs
    for key in ("jobspec", "eventlog", "R", "J"):
        assert key in kd
    assert kd["jobspec"]["tasks"][0]["command"] == ["true"]
    guest = job_kvs_guest(h, jobid)
    assert guest.path == jobid.kvs + ".guest"
    assert "exec.eventlog" in list(guest) or "exec" in list(guest)


def test_job_kvs_lookup(h):
    js = spec()
    jobid = submit(h, js)
    event_wait(h, jobid, "clean")
    data = job_kvs_lookup(h, jobid)
    assert data["id"] == jobid
    assert isinstance(data["jobspec"], dict)
    assert data["jobspec"]["tasks"] == json.loads(js.dumps())["tasks"]
    raw = job_kvs_lookup(h, jobid, decode=False)
    assert isinstance(raw["jobspec"], str)
    assert json.loads(raw["jobspec"]) == data["jobspec"]
    both = job_kvs_lookup(h, jobid, keys=["jobspec", "R"])
    assert both["R"]["version"] == 1
    assert "R_lite" in both["R"]["execution"]
    orig = job_kvs_lookup(h, jobid, original=True)
    assert "J" not in orig
    assert orig["jobspec"] == json.loads(js.dumps())
    assert job_kvs_lookup(h, jobid, keys=["eventlog"], base=True)["eventlog"].startswith(
        '{"timestamp":')


def test_job_kvs_lookup_unknown_job(h):
    assert job_kvs_lookup(h, 12345678) is None


def test_job_info_lookup_raw(h):
    jobid = submit(h, spec())
    event_wait(h, jobid, "clean")
    rsp = job_info_lookup(h, jobid, keys=["jobspec", "R"],
                          flags=FLUX_JOB_LOOKUP_JSON_DECODE).get()
    assert rsp["id"] == jobid
    assert isinstance(rsp["R"], dict)
    rsp = job_info_lookup(h, jobid, keys=["J"]).get()
    assert rsp["J"].endswith(".none")
    with pytest.raises(FileNotFoundError):
        job_info_lookup(h, 12345678).get()


def test_job_kvs_lookup_many(h):
    ids = [submit(h, spec()) for _ in range(3)]
    for jobid in ids:
        event_wait(h, jobid, "clean")
    lookup = JobKVSLookup(h, ids + [12345678], keys=["jobspec"])
    data = lookup.data()
    assert [d["id"] for d in data] == ids
    assert all(isinstance(d["jobspec"], dict) for d in data)
    assert len(lookup.errors) == 1
    assert "unknown" in lookup.errors[0]


# -- timeleft --------------------------------------------------------------------------------
def test_timeleft_outside_a_job(h, monkeypatch):
    monkeypatch.delenv("FLUX_JOB_ID", raising=False)
    assert timeleft(h) == math.inf
    assert timeleft() == math.inf


def test_timeleft_of_a_running_job(h, monkeypatch):
    js = spec(run_duration="60s")
    js.duration = 100
    jobid = submit(h, js)
    event_wait(h, jobid, "start")
    try:
        monkeypatch.setenv("FLUX_JOB_ID", jobid.f58)
        left = timeleft(h)
        assert 0 < left <= 100
        monkeypatch.setenv("FLUX_JOB_ID", str(int(jobid)))
        assert 0 < timeleft(h) <= left
    finally:
        cancel(h, jobid)


def test_timeleft_unlimited_and_expired(h, monkeypatch):
    jobid = submit(h, spec(run_duration="60s"))
    event_wait(h, jobid, "start")
    monkeypatch.setenv("FLUX_JOB_ID", str(int(jobid)))
    try:
        assert timeleft(h) == math.inf
    finally:
        cancel(h, jobid)
    js = spec(run_duration="60s")
    js.duration = 0.01
    jobid = submit(h, js)
    exc = event_wait(h, jobid, "exception", raiseJobException=False)
    assert exc.context["type"] == "timeout"
    monkeypatch.setenv("FLUX_JOB_ID", str(int(jobid)))
    assert timeleft(h) == 0.0


def test_timeleft_pending_job(h, monkeypatch):
    jobid = submit(h, spec(), urgency=0)
    monkeypatch.setenv("FLUX_JOB_ID", str(int(jobid)))
    try:
        with pytest.raises(OSError):
            timeleft(h)
    finally:
        cancel(h, jobid)
