"""flux.job.output (spec 3.6, 6.5, 14.2).

Typed events, ``Taskset`` and the chunk mapping are tested from plain
entries; the rest reads the output of real jobs (small shell commands).
"""

import errno

import pytest

from flux.idset import IDset
from flux.job import JobID, JobspecV1
from flux.job.event import JobException, event_wait
from flux.job.kill import cancel
from flux.job.output import (
    LOG_DEBUG,
    LOG_ERROR,
    LOG_FATAL,
    LOG_NOTICE,
    LOG_QUIET,
    LOG_TRACE,
    LOG_WARN,
    JobExceptionEvent,
    JobOutput,
    JobOutputEvent,
    LogEvent,
    OutputEvent,
    OutputHeaderEvent,
    RedirectEvent,
    Taskset,
    _chunk,
    job_output,
    output_event_watch,
    output_event_watch_async,
    output_watch,
    output_watch_async,
    output_watch_lines,
)
from flux.job.submit import submit


def entry(name, **context):
    return {"timestamp": 10.0, "name": name, "context": context}


def sh(h, script, **kw):
    return submit(h, JobspecV1.from_command(["sh", "-c", script], **kw))


def sim(h, **kw):
    js = JobspecV1.from_command(["true"])
    js.setattr("system.exec.test", {"run_duration": "0.01s"})
    return submit(h, js, **kw)


def raises(errnum, fn, *args, **kwargs):
    with pytest.raises(OSError) as e:
        fn(*args, **kwargs)
    assert e.value.errno == errnum, e.value
    return e.value


def drain(future):
    out = []
    while (ev := future.get_event()) is not None:
        out.append(ev)
    return out


def per_stream(chunks):
    out = {}
    for stream, data in chunks:
        out[stream] = out.get(stream, "") + data
    return out


# -- constants, Taskset ---------------------------------------------------------------------------
def test_log_levels():
    assert (LOG_QUIET, LOG_FATAL, LOG_ERROR, LOG_WARN, LOG_NOTICE, LOG_DEBUG, LOG_TRACE) \
        == (-1, 0, 3, 4, 5, 6, 7)


def test_taskset():
    for all_ in ("all", "*"):
        ts = Taskset(all_)
        assert str(ts) == "all"
        assert ts
        assert 1000 in ts
    ts = Taskset("0-3,7")
    assert str(ts) == "0-3,7"
    assert 7 in ts and 5 not in ts
    assert str(Taskset(IDset("1-2"))) == "1-2"
    assert str(Taskset(ts)) == "0-3,7"
    assert not Taskset("")
    assert str(Taskset("all").intersect("2-3")) == "2-3"
    assert str(Taskset("2-5").intersect("*")) == "2-5"
    assert str(Taskset("0-3").intersect(Taskset("2-9"))) == "2-3"
    assert not Taskset("0-1").intersect("5")
    with pytest.raises(ValueError):
        Taskset("zero")


# -- typed events -------------------------------------------------------------------------------
def test_output_event_data():
    ev = JobOutputEvent.from_event(entry("data", stream="stdout", rank="0", data="hi\n"))
    assert isinstance(ev, OutputEvent)
    assert (ev.stream, str(ev.rank), ev.data, ev.eof) == ("stdout", "0", "hi\n", False)
    assert ev.timestamp == 10.0
    assert isinstance(ev.rank, Taskset)


def test_output_event_eof_only():
    ev = OutputEvent(entry("data", stream="stderr", rank="3", eof=True))
    assert ev.data is None
    assert ev.eof is True
    both = OutputEvent(entry("data", stream="stderr", rank="3", data="x", eof=True))
    assert (both.data, both.eof) == ("x", True)


def test_output_event_base64_and_repeat():
    ev = OutputEvent(entry("data", stream="stdout", rank="0", encoding="base64",
                           data="/2E="))  # b"\xffa"
    assert ev.data == "\udcffa"
    assert ev.data.encode("utf-8", "surrogateescape") == b"\xffa"
    ev = OutputEvent(entry("data", stream="stdout", rank="0-2", data="ab\n", repeat=3))
    assert ev.data == "ab\nab\nab\n"


def test_output_event_labelio():
    ev = OutputEvent(entry("data", stream="stdout", rank="1", data="a\nb\n"), labelio=True)
    assert ev.data == "1: a\n1: b\n"
    ev = OutputEvent(entry("data", stream="stdout", rank="2", data="partial"),
                     labelio=True)
    assert ev.data == "2: partial\n"


def test_log_event():
    ev = JobOutputEvent.from_event(entry("log", level=3, message="oops", rank=1,
                                         component="output", file="x.c", line=7))
    assert isinstance(ev, LogEvent)
    assert (ev.level, ev.rank, ev.message, ev.component, ev.file, ev.line) == (
        3, 1, "oops", "output", "x.c", 7)
    assert ev.levelstr == "ERROR"
    assert ev.render() == "flux-shell[1]: ERROR: output: oops"
    assert ev.render(include_file_and_line=True) == (
        "flux-shell[1]: ERROR: output: x.c:7: oops")
    plain = LogEvent(entry("log", level=5, message="hello", rank=0))
    assert plain.line == -1
    assert plain.component is None and plain.file is None
    assert plain.render() == "flux-shell[0]: hello"
    assert plain.render(include_file_and_line=True) == "flux-shell[0]: hello"
    levels = [LogEvent(entry("log", level=n, message="m", rank=0)).levelstr
              for n in range(8)]
    assert levels == ["FATAL", "FATAL", "FATAL", "ERROR", " WARN", "", "DEBUG", "TRACE"]
    assert LogEvent(entry("log", level=4, message="m", rank=2)).render() == (
        "flux-shell[2]:  WARN: m")


def test_header_redirect_exception_events():
    hdr = JobOutputEvent.from_event(entry(
        "header", version=1, encoding={"stdout": "UTF-8", "stderr": "base64"},
        count={"stdout": 4, "stderr": 2}, options={}))
    assert isinstance(hdr, OutputHeaderEvent)
    assert (hdr.version, hdr.stdout_count, hdr.stderr_count, hdr.stdout_encoding,
            hdr.stderr_encoding) == (1, 4, 2, "UTF-8", "base64")
    red = JobOutputEvent.from_event(entry("redirect", stream="stdout", rank="0-3",
                                          path="/tmp/out"))
    assert isinstance(red, RedirectEvent)
    assert red.render() == "0-3: stdout redirected to /tmp/out"
    exc = JobOutputEvent.from_event(entry("exception", type="cancel", severity=0,
                                          note="bye"))
    assert isinstance(exc, JobExceptionEvent)
    assert (exc.exc_type, exc.severity, exc.note) == ("cancel", 0, "bye")
    assert exc.render() == "job.exception: type=cancel severity=0 bye"
    assert JobExceptionEvent(entry("exception", type="timeout", severity=0,
                                   note="")).render() == (
        "job.exception: type=timeout severity=0")
    assert isinstance(exc.exception(), JobException)


def test_unsupported_event():
    with pytest.raises(ValueError) as e:
        JobOutputEvent.from_event(entry("memo", x=1))
    assert str(e.value) == "event memo is not a supported output event type"


def test_chunk_mapping():
    data = OutputEvent(entry("data", stream="stdout", rank="0", data="x"))
    assert _chunk(data, LOG_TRACE) == ("stdout", "x")
    assert _chunk(OutputEvent(entry("data", stream="stdout", rank="0", eof=True)),
                  LOG_TRACE) is None
    log = LogEvent(entry("log", level=LOG_WARN, message="w", rank=0))
    assert _chunk(log, LOG_TRACE) == ("stderr", "flux-shell[0]:  WARN: w\n")
    assert _chunk(log, LOG_WARN) == ("stderr", "flux-shell[0]:  WARN: w\n")
    assert _chunk(log, LOG_ERROR) == ("log", "flux-shell[0]:  WARN: w\n")
    assert _chunk(log, LOG_QUIET)[0] == "log"
    red = RedirectEvent(entry("redirect", stream="stderr", rank="0", path="/p"))
    assert _chunk(red, LOG_TRACE) == ("stderr", "0: stderr redirected to /p\n")
    exc = JobExceptionEvent(entry("exception", type="cancel", severity=0, note=""))
    assert _chunk(exc, LOG_TRACE) == ("stderr", "job.exception: type=cancel severity=0\n")
    hdr = OutputHeaderEvent(entry("header", version=1))
    assert _chunk(hdr, LOG_TRACE) is None


# -- job_output ----------------------------------------------------------------------------------
def test_job_output(h):
    jobid = sh(h, "echo out; echo err >&2")
    out = job_output(h, jobid)
    assert isinstance(out, JobOutput)
    assert out == ("out\n", "err\n", "")
    assert out.stdout == "out\n" and out.stderr == "err\n" and out.log == ""


def test_job_output_tasks_and_labelio(h):
    jobid = sh(h, "echo task$FLUX_TASK_RANK", num_tasks=2)
    out = job_output(h, jobid)
    assert sorted(out.stdout.splitlines()) == ["task0", "task1"]
    assert job_output(h, jobid, tasks="1").stdout == "task1\n"
    assert job_output(h, jobid, tasks=Taskset("0")).stdout == "task0\n"
    assert job_output(h, jobid, tasks="5").stdout == ""
    labelled = job_output(h, jobid, labelio=True).stdout
    assert sorted(labelled.splitlines()) == ["0: task0", "1: task1"]


def test_job_output_not_utf8(h):
    jobid = sh(h, r"printf '\377ok\n'")
    assert job_output(h, jobid).stdout == "\udcffok\n"


def test_job_output_simulated_job_is_empty(h):
    assert job_output(h, sim(h)) == ("", "", "")


def test_job_output_unknown_job(h):
    with pytest.raises(FileNotFoundError):
        job_output(h, 12345678)


def test_job_output_never_started(h):
    held = sim(h, urgency=0)
    cancel(h, held, "nope")
    with pytest.raises(JobException) as e:
        job_output(h, held)
    assert e.value.type == "cancel"
    assert e.value.note == "nope"


def test_job_output_nowait(h):
    held = sim(h, urgency=0)
    try:
        with pytest.raises(FileNotFoundError) as e:
            job_output(h, held, nowait=True)
        assert str(e.value.strerror) == (
            f"job {JobID(held)} does not exist or output not ready")
    finally:
        cancel(h, held)
    with pytest.raises(FileNotFoundError):
        job_output(h, 12345678, nowait=True)
    jobid = sh(h, "echo done")
    event_wait(h, jobid, "clean")
    assert job_output(h, jobid, nowait=True).stdout == "done\n"


def test_job_output_redirected(h, tmp_path):
    js = JobspecV1.from_command(["sh", "-c", "echo to-file; echo err >&2"])
    path = tmp_path / "out.txt"
    js.stdout = str(path)
    jobid = submit(h, js)
    assert job_output(h, jobid) == ("", "", "")  # redirects are not data
    assert path.read_text() == "to-file\nerr\n"  # stderr follows stdout
    events = list(output_event_watch(h, jobid))
    redirects = [e for e in events if isinstance(e, RedirectEvent)]
    assert {e.stream for e in redirects} == {"stdout", "stderr"}
    assert redirects[0].path == str(path)
    chunks = list(output_watch(h, jobid))
    assert chunks == [("stderr", f"0: {e.stream} redirected to {path}\n")
                      for e in redirects]


# -- watching ------------------------------------------------------------------------------------
def test_output_watch(h):
    jobid = sh(h, "echo out; echo err >&2")
    chunks = list(output_watch(h, jobid))
    assert all(isinstance(c, tuple) and len(c) == 2 for c in chunks)
    assert per_stream(chunks) == {"stdout": "out\n", "stderr": "err\n"}
    assert per_stream(output_watch(h, jobid, labelio=True)) == {
        "stdout": "0: out\n", "stderr": "0: err\n"}


def test_output_watch_lines(h):
    jobid = sh(h, r"printf 'a\nb\nc\n'")
    assert list(output_watch_lines(h, jobid)) == [
        ("stdout", "a"), ("stdout", "b"), ("stdout", "c")]
    assert list(output_watch_lines(h, jobid, keepends=True)) == [
        ("stdout", "a\n"), ("stdout", "b\n"), ("stdout", "c\n")]


def test_output_watch_async_then(h):
    jobid = sh(h, "echo one; echo two")
    got = []

    def cb(f):
        got.append(f.get_output())

    output_watch_async(h, jobid).then(cb)
    h.reactor_run()
    assert got[-1] == (None, None)
    assert per_stream(got[:-1]) == {"stdout": "one\ntwo\n"}


def test_output_watch_async_blocking(h):
    jobid = sh(h, "echo x")
    f = output_watch_async(h, jobid)
    assert f.get_output() == ("stdout", "x\n")
    assert f.get_output() == (None, None)
    assert f.get_output() == (None, None)


def test_output_event_watch_types(h):
    jobid = sh(h, "echo out; echo err >&2")
    events = list(output_event_watch(h, jobid))
    assert isinstance(events[0], OutputHeaderEvent)
    assert events[0].stdout_count == 1 and events[0].stderr_count == 1
    data = [e for e in events[1:] if e.data is not None]
    assert {(e.stream, e.data) for e in data} == {("stdout", "out\n"), ("stderr", "err\n")}
    eofs = [e for e in events[1:] if e.eof]
    assert sorted(e.stream for e in eofs) == ["stderr", "stdout"]
    assert all(isinstance(e, OutputEvent) for e in events[1:])
    assert [type(e) for e in output_event_watch(h, jobid, nowait=True)] == [
        type(e) for e in events]


def test_output_event_watch_follows_running_job(h):
    """Output and exceptions of a running job arrive while it runs."""
    jobid = sh(h, "echo started; exec sleep 30")
    f = output_event_watch_async(h, jobid)
    assert isinstance(f.get_event(), OutputHeaderEvent)
    ev = f.get_event()
    assert (ev.stream, ev.data) == ("stdout", "started\n")
    cancel(h, jobid, "stop now")
    rest = drain(f)
    exceptions = [e for e in rest if isinstance(e, JobExceptionEvent)]
    assert len(exceptions) == 1
    assert exceptions[0].render() == "job.exception: type=cancel severity=0 stop now"
    assert sum(1 for e in rest if isinstance(e, OutputEvent) and e.eof) == 2
    assert f.get_event() is None


def test_output_watch_reports_exception_on_stderr(h):
    jobid = sh(h, "exec sleep 30")
    f = output_watch_async(h, jobid)
    event_wait(h, jobid, "start")
    cancel(h, jobid)
    chunks = []
    while (chunk := f.get_output()) != (None, None):
        chunks.append(chunk)
    assert chunks == [("stderr", "job.exception: type=cancel severity=0\n")]


def test_output_event_watch_never_started(h):
    held = sim(h, urgency=0)
    cancel(h, held, "gone")
    gen = output_event_watch(h, held)
    first = next(gen)
    assert isinstance(first, JobExceptionEvent)
    assert first.note == "gone"
    with pytest.raises(OSError) as e:
        next(gen)
    assert e.value.errno == errno.EIO
    assert e.value.strerror == f"job {JobID(held)} never started"


def test_output_event_watch_unknown_job(h):
    f = output_event_watch_async(h, 12345678)
    e = raises(errno.ENOENT, f.get_event)
    assert e.strerror == f"job {JobID(12345678)} not found"
    with pytest.raises(FileNotFoundError):
        list(output_watch(h, 12345678))


def test_output_watch_errors_before_sending(h):
    raises(errno.EINVAL, output_watch_async, None, 1)
    raises(errno.EINVAL, output_event_watch_async, None, 1)
    raises(errno.EINVAL, job_output, None, 1)
    with pytest.raises(ValueError):
        output_watch_async(h, "abc")


def test_closing_generator_cancels_watches(h):
    jobid = sh(h, "echo first; exec sleep 30")
    gen = output_watch(h, jobid)
    assert next(gen) == ("stdout", "first\n")
    gen.close()
    h.rpc("broker.ping", {}).get()  # the streams' ENODATA came before this
    assert not h._conn.rpcs
    cancel(h, jobid)


def test_log_entries(start_instance):
    with start_instance("job-exec.output-limit=4") as inst:
        h = inst.handle()
        jobid = sh(h, "echo 0123456789")
        events = list(output_event_watch(h, jobid))
        logs = [e for e in events if isinstance(e, LogEvent)]
        assert len(logs) == 1
        log = logs[0]
        assert log.level == LOG_ERROR and log.component == "output"
        rendered = log.render()
        assert rendered.startswith("flux-shell[0]: ERROR: output: ")
        out = job_output(h, jobid)
        assert out.stdout == "0123"
        assert out.stderr == rendered  # no newline added
        assert out.log == ""
        quiet = job_output(h, jobid, log_stderr_level=LOG_QUIET)
        assert (quiet.stderr, quiet.log) == ("", rendered)
        chunks = list(output_watch(h, jobid, log_stderr_level=LOG_FATAL))
        assert ("log", rendered + "\n") in chunks
        assert ("stderr", rendered + "\n") in list(output_watch(h, jobid))
