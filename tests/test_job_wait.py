"""flux.job.wait: result()/result_async() and wait()/wait_async() (spec 3.4, 10).

The result rule itself (flux.eventlog's replay) is tested without an
instance in tests/unit/test_eventlog.py; here it meets real (simulated)
jobs.  Tests of ``FLUX_JOBID_ANY`` use a private instance, since any
unwaited waitable job of the shared one would answer them.
"""

import errno

import pytest

from flux.constants import (
    FLUX_JOB_RESULT_CANCELED,
    FLUX_JOB_RESULT_COMPLETED,
    FLUX_JOB_RESULT_FAILED,
    FLUX_JOB_RESULT_TIMEOUT,
    FLUX_JOBID_ANY,
)
from flux.job import JobspecV1
from flux.job.event import event_wait, event_watch
from flux.job.kill import cancel
from flux.job.submit import submit
from flux.job.wait import (
    JobResultFuture,
    JobWaitFuture,
    JobWaitResult,
    result,
    result_async,
    wait,
    wait_async,
    wait_get_status,
)


def spec(run_duration="0.01s", **test):
    js = JobspecV1.from_command(["true"])
    js.setattr("system.exec.test", {"run_duration": run_duration, **test})
    return js


def release(h, jobid):
    h.rpc("job-manager.urgency", {"id": int(jobid), "urgency": 16}).get()


def raises(errnum, fn, *args, **kwargs):
    with pytest.raises(OSError) as e:
        fn(*args, **kwargs)
    assert e.value.errno == errnum, e.value
    return e.value


def test_job_wait_result_is_a_namedtuple():
    r = JobWaitResult(1, True, b"")
    assert r._fields == ("jobid", "success", "errstr")
    jobid, success, errstr = r
    assert (jobid, success, errstr) == (1, True, b"")


# -- result against an instance ------------------------------------------------------------------
def test_result_dict_of_completed_job(h):
    jobid = submit(h, spec())
    f = result_async(h, jobid)
    assert isinstance(f, JobResultFuture)
    assert f.get() is None
    data = f.get_dict()
    events = {e.name: e for e in event_watch(h, jobid)}
    assert data["id"] == jobid
    assert data["t_submit"] == events["submit"].timestamp
    assert data["t_run"] == events["alloc"].timestamp
    assert data["t_run"] != events["start"].timestamp
    assert data["t_cleanup"] == events["finish"].timestamp
    assert data["waitstatus"] == 0
    assert data["exception_occurred"] is False
    assert data["result"] == FLUX_JOB_RESULT_COMPLETED
    # any number of times, for a job that is not waitable
    assert result_async(h, jobid).get_dict() == data
    assert f.get_dict() == data


def test_result_returns_jobinfo(h):
    pytest.importorskip("flux.job.info")
    jobid = submit(h, spec(wait_status=256))
    info = result(h, jobid)
    assert info.id == jobid
    assert info.result == "FAILED"
    assert info.returncode == 1
    assert info.waitstatus == 256
    assert result_async(h, jobid).get_info().t_run == info.t_run


def test_result_failed_and_canceled(h):
    jobid = submit(h, spec(wait_status=256))
    data = result_async(h, jobid).get_dict()
    assert data["waitstatus"] == 256
    assert data["result"] == FLUX_JOB_RESULT_FAILED
    held = submit(h, spec(), urgency=0)
    f = result_async(h, held)
    with pytest.raises(TimeoutError):
        f.wait_for(0.05)  # still pending
    cancel(h, held, "not today")
    data = f.get_dict()
    assert data["result"] == FLUX_JOB_RESULT_CANCELED
    assert data["exception_note"] == "not today"
    assert "t_run" not in data


def test_result_timeout(h):
    js = spec(run_duration="60s")
    js.duration = 0.01
    data = result_async(h, submit(h, js)).get_dict()
    assert data["exception_type"] == "timeout"
    assert data["result"] == FLUX_JOB_RESULT_TIMEOUT


def test_result_with_then(h):
    ids = [submit(h, spec()) for _ in range(3)]
    seen = {}

    def cb(f, jobid):
        seen[jobid] = f.get_dict()["result"]

    for jobid in ids:
        result_async(h, jobid).then(cb, jobid)
    h.reactor_run()
    assert seen == {jobid: FLUX_JOB_RESULT_COMPLETED for jobid in ids}


def test_result_blocking_inside_callback(h):
    jobid = submit(h, spec())
    out = []
    h.rpc("broker.ping").then(lambda f: out.append(result_async(h, jobid).get_dict()))
    h.reactor_run()
    assert out[0]["result"] == FLUX_JOB_RESULT_COMPLETED


def test_result_errors(h):
    e = raises(errno.ENOENT, result_async(h, 12345678).get_dict)
    assert isinstance(e, FileNotFoundError)
    raises(errno.EINVAL, result_async, None, 1)
    with pytest.raises(ValueError):
        result_async(h, "abc")


# -- wait ------------------------------------------------------------------------------------------
def test_wait_success(h):
    jobid = submit(h, spec(), waitable=True)
    f = wait_async(h, jobid)
    assert isinstance(f, JobWaitFuture)
    status = f.get_status()
    assert isinstance(status, JobWaitResult)
    assert status == (jobid, True, b"")
    assert type(status.jobid) is int
    assert isinstance(status.errstr, bytes)
    assert wait_get_status(f) == status
    assert f.get() is None


def test_wait_consumes_once(h):
    jobid = submit(h, spec(), waitable=True)
    assert wait(h, jobid).success is True
    e = raises(errno.ECHILD, wait, h, jobid)
    assert isinstance(e, ChildProcessError)
    assert e.strerror == "invalid job id, or job may be inactive and not waitable"


def test_wait_failures_errstr_is_bytes(h):
    jobid = submit(h, spec(wait_status=256), waitable=True)
    assert wait(h, jobid) == (jobid, False, b"task(s) exited with exit code 1")
    held = submit(h, spec(), urgency=0, waitable=True)
    cancel(h, held, "reason")
    status = wait(h, held)
    assert status.success is False
    assert status.errstr == b"Fatal exception type=cancel reason"


def test_wait_not_waitable(h):
    held = submit(h, spec(), urgency=0)
    try:
        e = raises(errno.ECHILD, wait, h, held)
        assert e.strerror == "job was not submitted with FLUX_JOB_WAITABLE"
    finally:
        cancel(h, held)
    event_wait(h, held, "clean", raiseJobException=False)
    e = raises(errno.ECHILD, wait, h, held)
    assert e.strerror == "invalid job id, or job may be inactive and not waitable"
    e = raises(errno.ECHILD, wait, h, 12345678)
    assert e.strerror == "invalid job id, or job may be inactive and not waitable"


def test_wait_already_has_a_waiter(h):
    held = submit(h, spec(), urgency=0, waitable=True)
    first = wait_async(h, held)
    second = wait_async(h, held)
    e = raises(errno.ECHILD, second.get_status)
    assert e.strerror == "job id already has a waiter"
    with pytest.raises(TimeoutError):
        first.wait_for(0.05)
    release(h, held)
    assert first.get_status() == (held, True, b"")


def test_wait_errors_before_sending(h):
    raises(errno.EINVAL, wait_get_status, None)
    raises(errno.EINVAL, wait_async, None)
    with pytest.raises(ValueError):
        wait(h, "abc")


def test_wait_any(start_instance):
    with start_instance() as inst:
        h = inst.handle()
        e = raises(errno.ECHILD, wait, h)
        assert e.strerror == "there are no more waitable jobs"
        submit(h, spec())  # not waitable: not counted
        ids = {submit(h, spec(), waitable=True) for _ in range(3)}
        got = {wait(h).jobid for _ in range(3)}
        assert got == ids
        raises(errno.ECHILD, wait, h, FLUX_JOBID_ANY)
        # a waiter for any job gets the next waitable job to finish
        held = submit(h, spec(), urgency=0, waitable=True)
        f = wait_async(h)
        with pytest.raises(TimeoutError):
            f.wait_for(0.05)
        # more waiters than waitable jobs
        e = raises(errno.ECHILD, wait, h)
        assert e.strerror == "there are no more waitable jobs"
        release(h, held)
        assert f.get_status() == (held, True, b"")
