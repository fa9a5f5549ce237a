"""flux.job.event and flux.job.kill (spec sections 3.2, 3.3, 6.3, 6.4).

The first tests need no instance (EventLogEvent, JobException,
MAIN_EVENTS); the rest watch real jobs, mostly simulated ones
(``attributes.system.exec.test``) that start no process.
"""

import errno
import gc
import json
import os

import pytest

import flux
from flux.constants import FLUX_JOB_EVENT_WATCH_WAITCREATE
from flux.job import JobspecV1
from flux.job.event import (
    MAIN_EVENTS,
    EventLogEvent,
    JobEventWatchFuture,
    JobException,
    event_wait,
    event_watch,
    event_watch_async,
)
from flux.job.kill import (
    cancel,
    cancel_async,
    job_raise,
    job_raise_async,
    kill,
    kill_async,
)
from flux.job.submit import submit


def spec(cmd=("true",), **test):
    js = JobspecV1.from_command(list(cmd))
    if test:
        js.setattr("system.exec.test", test)
    return js


def sim(h, run_duration="0.01s", **kw):
    """Submit a simulated job."""
    return submit(h, spec(run_duration=run_duration), **kw)


@pytest.fixture
def held(h):
    """A job held in PRIORITY with urgency 0; cancelled afterwards."""
    jobid = sim(h, urgency=0)
    event_wait(h, jobid, "priority")
    yield jobid
    try:
        cancel(h, jobid)
    except FileNotFoundError:
        pass  # already inactive


def raises(errnum, fn, *args, **kwargs):
    with pytest.raises(OSError) as e:
        fn(*args, **kwargs)
    assert e.value.errno == errnum, e.value
    return e.value


def names(events):
    return [e.name for e in events]


def release(h, jobid):
    """Let a held job run (raw RPC: urgency is not this module's API)."""
    h.rpc("job-manager.urgency", {"id": int(jobid), "urgency": 16}).get()


# -- EventLogEvent, JobException, MAIN_EVENTS ----------------------------------------------
def test_eventlog_event_from_json_line():
    ev = EventLogEvent('{"timestamp":1552593348.073045,"name":"submit",'
                       '"context":{"userid":1000,"urgency":16,"flags":0,"version":1}}')
    assert isinstance(ev, dict)
    assert ev.name == "submit"
    assert ev.timestamp == 1552593348.073045
    assert ev.context == {"userid": 1000, "urgency": 16, "flags": 0, "version": 1}
    assert ev.context_string == '{"flags":0,"urgency":16,"userid":1000,"version":1}'
    assert str(ev) == ("1552593348.07305: submit "
                       "{'userid': 1000, 'urgency': 16, 'flags': 0, 'version': 1}")


def test_eventlog_event_from_dict_without_context():
    ev = EventLogEvent({"timestamp": 2, "name": "clean"})
    assert ev.context == {}
    assert ev["context"] == {}
    assert ev.context_string == ""
    assert isinstance(ev.timestamp, float)
    assert str(ev) == "2.00000: clean {}"
    assert EventLogEvent(b'{"timestamp":1,"name":"x"}').name == "x"


def test_job_exception():
    ev = EventLogEvent({"timestamp": 1.5, "name": "exception",
                        "context": {"type": "cancel", "severity": 0, "note": "bye"}})
    exc = JobException(ev)
    assert isinstance(exc, Exception)
    assert (exc.timestamp, exc.type, exc.severity, exc.note) == (1.5, "cancel", 0, "bye")
    assert str(exc) == "job.exception: type=cancel: bye"
    with pytest.raises(JobException, match="type=cancel: bye"):
        raise exc


def test_main_events():
    assert isinstance(MAIN_EVENTS, frozenset)
    assert MAIN_EVENTS == {
        "submit", "depend", "priority", "flux-restart", "urgency", "alloc", "free",
        "start", "release", "finish", "clean", "debug", "exception",
    }
    for name in ("validate", "memo", "jobspec-update", "invalidate"):
        assert name not in MAIN_EVENTS


# -- watching ------------------------------------------------------------------------------------
def test_event_watch_typical_job(h):
    jobid = sim(h)
    events = list(event_watch(h, jobid))
    assert all(isinstance(e, EventLogEvent) for e in events)
    assert names(events) == ["submit", "validate", "depend", "priority", "alloc",
                             "start", "finish", "release", "free", "clean"]
    assert events[0].context["urgency"] == 16
    assert events[0].context["version"] == 1
    assert events[6].context == {"status": 0}
    stamps = [e.timestamp for e in events]
    assert stamps == sorted(stamps)
    # an inactive job's eventlog replays the same way
    assert list(event_watch(h, jobid)) == events


def test_exec_eventlog(h):
    jobid = sim(h)
    events = list(event_watch(h, jobid, "guest.exec.eventlog"))
    assert names(events) == ["init", "starting", "shell.init", "shell.start",
                             "complete", "done"]
    init = events[2].context
    assert init["leader-rank"] == 0 and init["size"] == 1
    assert init["service"] == f"{os.getuid()}-shell-{jobid.f58}"
    assert events[3].context["taskmap"]["version"] == 1
    assert events[4].context == {"status": 0}


def test_watch_async_with_then(h):
    jobid = sim(h)
    seen = []

    def cb(f):
        ev = f.get_event()
        seen.append(ev.name if ev else None)

    f = event_watch_async(h, jobid)
    assert isinstance(f, JobEventWatchFuture)
    f.then(cb)
    h.reactor_run()
    assert seen[-1] is None
    assert seen[:-1][0] == "submit" and seen[-2] == "clean"


def test_get_event_autoreset_false(h):
    jobid = sim(h)
    f = event_watch_async(h, jobid)
    first = f.get_event(autoreset=False)
    assert f.get_event(autoreset=False) == first
    f.reset()
    assert f.get_event().name == "validate"
    rest = []
    while (ev := f.get_event()) is not None:
        rest.append(ev.name)
    assert rest[-1] == "clean"
    assert f.get_event() is None  # stays ended


def test_cancel_ends_stream(h, held):
    f = event_watch_async(h, held)
    assert names([f.get_event() for _ in range(4)]) == [
        "submit", "validate", "depend", "priority"]
    f.cancel()
    assert f.get_event() is None
    assert f.get_event() is None
    f.cancel()  # again: harmless


def test_cancel_stop_suppresses_callbacks(h, held):
    seen = []

    def cb(f):
        seen.append(f.get_event().name)
        f.cancel(stop=True)

    event_watch_async(h, held).then(cb)
    h.reactor_run()
    assert seen == ["submit"]


def test_gc_cancels_watch(h, held, monkeypatch):
    cancelled = []
    orig = JobEventWatchFuture.watch_cancel

    def spy(self):
        cancelled.append(self._matchtag)
        orig(self)

    monkeypatch.setattr(JobEventWatchFuture, "watch_cancel", spy)
    f = event_watch_async(h, held)
    assert f.get_event().name == "submit"
    tag = f._matchtag
    del f
    gc.collect()
    assert cancelled == [tag]
    h.rpc("broker.ping", {}).get()  # the stream's ENODATA came before this
    assert tag not in h._conn.rpcs


def test_generator_close_cancels(h, held):
    gen = event_watch(h, held)
    assert next(gen).name == "submit"
    gen.close()
    h.rpc("broker.ping", {}).get()
    assert not h._conn.rpcs


def test_watch_follows_new_events(h, held):
    f = event_watch_async(h, held)
    for _ in range(4):
        f.get_event()
    cancel(h, held, "enough")
    ev = f.get_event()
    assert ev.name == "exception"
    assert ev.context["type"] == "cancel"
    assert ev.context["severity"] == 0
    assert ev.context["note"] == "enough"
    assert f.get_event().name == "clean"
    assert f.get_event() is None


def test_guest_watch_waits_for_start(h, held):
    f = event_watch_async(h, held, "guest.exec.eventlog")
    with pytest.raises(TimeoutError):
        f.wait_for(0.05)  # nothing: the job has not started
    release(h, held)
    assert f.get_event().name == "init"
    rest = []
    while (ev := f.get_event()) is not None:
        rest.append(ev.name)
    assert rest[-1] == "done"


def test_guest_watch_of_job_that_never_ran(h, held):
    cancel(h, held)
    assert list(event_watch(h, held, "guest.exec.eventlog")) == []
    assert list(event_watch(h, held, "guest.output")) == []


def test_watch_unknown_job(h):
    e = raises(errno.ENOENT, event_watch_async(h, 12345678).get_event)
    assert isinstance(e, FileNotFoundError)
    with pytest.raises(FileNotFoundError):
        list(event_watch(h, 12345678))


def test_watch_errors_before_sending(h):
    raises(errno.EINVAL, event_watch_async, None, 1)
    with pytest.raises(ValueError):
        event_watch_async(h, "not-a-job-id")


def test_watch_missing_key_is_enoent(h):
    jobid = sim(h)
    raises(errno.ENOENT, event_watch_async(h, jobid, "nosuchlog").get_event)


def test_watch_with_waitcreate_flag(h):
    from flux.job.event import _watch

    jobid = sim(h)
    f = _watch(h, jobid, "eventlog", FLUX_JOB_EVENT_WATCH_WAITCREATE)
    assert f.get_event().name == "submit"
    f.cancel()


def test_event_wait(h):
    jobid = sim(h)
    ev = event_wait(h, jobid, "start")
    assert ev.name == "start"
    assert event_wait(h, jobid, "shell.init", eventlog="guest.exec.eventlog").context[
        "leader-rank"] == 0


def test_event_wait_raises_job_exception(h, held):
    cancel(h, held, "no start for you")
    with pytest.raises(JobException) as e:
        event_wait(h, held, "start")
    assert e.value.type == "cancel"
    assert e.value.note == "no start for you"
    assert e.value.severity == 0
    e = raises(errno.ENODATA, event_wait, h, held, "start", raiseJobException=False)
    assert e.strerror == "eventlog ended before event='start'"


def test_event_wait_missing_event(h):
    jobid = sim(h)
    e = raises(errno.ENODATA, event_wait, h, jobid, "nosuchevent")
    assert str(e) == "[Errno 61] eventlog ended before event='nosuchevent'"


def test_event_wait_ignores_nonfatal_exception(h, held):
    job_raise(h, held, "test", severity=3, note="just so you know")
    ev = event_wait(h, held, "exception")
    assert ev.context["severity"] == 3
    release(h, held)
    assert event_wait(h, held, "clean").name == "clean"


# -- kill, cancel, raise ------------------------------------------------------------------------
def test_kill_bad_jobid_raises_valueerror(h):
    with pytest.raises(ValueError):
        kill(h, "abc")
    with pytest.raises(ValueError):
        cancel(h, "abc")
    with pytest.raises(ValueError):
        job_raise(h, "abc", "test")


def test_kill_unknown_is_einval_cancel_unknown_is_enoent(h):
    e = raises(errno.EINVAL, kill, h, 12345678)
    assert e.strerror == "unknown job id"
    e = raises(errno.ENOENT, cancel, h, 12345678)
    assert e.strerror == "unknown job id"
    assert isinstance(e, FileNotFoundError)
    e = raises(errno.ENOENT, job_raise, h, 12345678, "test")
    assert e.strerror == "unknown job id"


def test_kill_and_cancel_inactive(h):
    jobid = sim(h)
    event_wait(h, jobid, "clean")
    assert raises(errno.EINVAL, kill, h, jobid).strerror == "job is inactive"
    assert raises(errno.ENOENT, cancel, h, jobid).strerror == "job is inactive"


def test_kill_pending_job(h, held):
    assert raises(errno.EINVAL, kill, h, held).strerror == "job is not running"


def test_kill_invalid_signal(h, held):
    for signum in (-1, 65, 1000):
        e = raises(errno.EINVAL, kill, h, held, signum)
        assert e.strerror == "Invalid signal number"


def test_kill_running_job(h):
    jobid = submit(h, spec(["sleep", "30"]))
    event_wait(h, jobid, "start")
    f = kill_async(h, jobid)
    assert isinstance(f, flux.future.Future)
    assert f.get() is None
    finish = event_wait(h, jobid, "finish")
    assert finish.context["status"] == (128 + 15) << 8  # SIGTERM, as a shell reports it


def test_kill_with_signal(h):
    jobid = submit(h, spec(["sleep", "30"]))
    event_wait(h, jobid, "start")
    assert kill(h, jobid, 9) is None
    assert event_wait(h, jobid, "finish").context["status"] == (128 + 9) << 8


def test_cancel_pending(h, held):
    f = cancel_async(h, held, "changed my mind")
    assert f.get() is None
    events = list(event_watch(h, held))
    assert names(events) == ["submit", "validate", "depend", "priority", "exception",
                             "clean"]
    assert events[4].context["type"] == "cancel"
    assert events[4].context["note"] == "changed my mind"


def test_cancel_without_reason_has_empty_note(h, held):
    assert cancel(h, held) is None
    ev = event_wait(h, held, "exception")
    assert ev.context["note"] == ""
    assert ev.context["severity"] == 0


def test_cancel_running_job(h):
    jobid = submit(h, spec(["sleep", "30"]))
    event_wait(h, jobid, "start")
    cancel(h, jobid)
    events = names(event_watch(h, jobid))
    assert events.index("exception") < events.index("finish") < events.index("clean")


def test_job_raise_checks(h, held):
    for severity in (-1, 8):
        raises(errno.EPROTO, job_raise, h, held, "test", severity)
    for exc_type in ("", "two words", "a=b", "tab\there"):
        raises(errno.EPROTO, job_raise, h, held, exc_type)
    raises(errno.EINVAL, job_raise_async, None, held, "test")


def test_job_raise_nonfatal_keeps_job(h, held):
    f = job_raise_async(h, held, "mytype", severity=5, note="heads up")
    assert f.get() is None
    ev = event_wait(h, held, "exception")
    assert ev.context["type"] == "mytype"
    assert ev.context["severity"] == 5
    assert ev.context["note"] == "heads up"
    # still pending: it can be cancelled and has not been cleaned up
    cancel(h, held)
    events = names(event_watch(h, held))
    assert events.count("exception") == 2


def test_job_raise_fatal_ends_job(h, held):
    job_raise(h, held, "mytype")
    events = list(event_watch(h, held))
    assert names(events)[-2:] == ["exception", "clean"]
    assert events[-2].context["note"] == ""


def test_events_are_json_lines(h):
    """Raw check of the wire format the client decodes."""
    jobid = sim(h)
    event_wait(h, jobid, "clean")
    rpc = h.rpc("job-info.eventlog-watch", {"id": int(jobid), "path": "eventlog",
                                            "flags": 0}, flags=2)
    line = rpc.get()["event"]
    assert "\n" not in line
    assert json.loads(line)["name"] == "submit"
    count = 0
    with pytest.raises(OSError) as e:
        while True:
            rpc.reset()
            rpc.get()
            count += 1
    assert e.value.errno == errno.ENODATA
    assert count == 9
