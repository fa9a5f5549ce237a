"""flux.job output-watching futures (spec 17.2-17.4) against a real instance."""

import errno
import os
import subprocess
import sys
import textwrap

import pytest

import flux.job
from flux.job import JobID, JobspecV1
from flux.job.output import JobOutputWatchLines


def _submit(h, *command, **kw):
    js = JobspecV1.from_command(list(command), **kw)
    js.environment = dict(os.environ)
    return flux.job.submit(h, js)


def test_follow_running_job_lines(instance):
    """An upstream-style script following a running job line by line."""
    script = textwrap.dedent("""
        import sys, flux, flux.job
        from flux.job import JobspecV1
        h = flux.Flux()
        js = JobspecV1.from_command(
            ["sh", "-c", "echo one; echo two >&2; sleep 0.3; printf 'three\\nfour'"])
        js.environment = {"PATH": "/usr/bin:/bin"}
        jobid = flux.job.submit(h, js)
        seen = []
        def cb(f):
            stream, line = f.getline()
            seen.append((stream, line))
            if stream is None:
                return
        flux.job.output_watch_lines_async(h, jobid, keepends=True).then(cb)
        h.reactor_run()
        for item in seen:
            print(repr(item))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    seen = [eval(line) for line in proc.stdout.splitlines()]  # noqa: S307 - our own reprs
    assert seen[-1] == (None, None)  # the callback also gets the end
    assert seen.count((None, None)) == 1
    assert [s for s in seen if s[0] == "stdout"] == [
        ("stdout", "one\n"), ("stdout", "three\n"), ("stdout", "four")]
    assert ("stderr", "two\n") in seen


def test_lines_without_keepends_and_get_semantics(h):
    jobid = _submit(h, "printf", "a\\nb\\n")
    f = flux.job.output_watch_lines_async(h, JobID(jobid).f58)  # a string id
    assert isinstance(f, JobOutputWatchLines)
    got = []
    while (item := f.getline()) != (None, None):
        got.append(item)
    assert got == [("stdout", "a"), ("stdout", "b")]
    assert f.get() == (None, None) and f.getline() == (None, None)  # stays ended
    assert list(flux.job.output_watch_lines(h, jobid, keepends=True)) == [
        ("stdout", "a\n"), ("stdout", "b\n")]


def test_event_watch_get_does_not_reset(h):
    jobid = _submit(h, "echo", "hi")
    f = flux.job.output_event_watch_async(h, jobid, labelio=True)
    first = f.get()
    assert f.get() is first  # get() alone does not advance
    assert f.get_event(autoreset=False) is first
    assert f.get_event() is first
    events = []
    while (ev := f.get_event()) is not None:
        events.append(ev)
    assert [e.data for e in events if e.name == "data" and e.data] == ["0: hi\n"]
    assert f.get_event() is None


def test_never_started(h):
    jobid = _submit(h, "true", num_tasks=100000)
    f = flux.job.output_watch_async(h, jobid)
    stream, text = f.get_output()
    assert stream == "stderr"
    assert text.startswith("job.exception: type=alloc severity=0 ") and text.endswith("\n")
    with pytest.raises(OSError) as exc:
        f.get_output()
    assert exc.value.errno == errno.EIO
    assert exc.value.strerror == f"job {JobID(jobid)} never started"


def test_unknown_job(h):
    with pytest.raises(FileNotFoundError) as exc:
        list(flux.job.output_watch(h, 123456789))
    assert str(exc.value.strerror) == f"job {JobID(123456789)} not found"
    with pytest.raises(OSError) as exc:
        list(flux.job.output_watch(h, 123456789, nowait=True))
    assert exc.value.errno == errno.ENOENT


def test_log_stderr_level(h):
    jobid = _submit(h, "sh", "-c", "echo out")
    chunks = list(flux.job.output_watch(h, jobid, log_stderr_level=-1))
    assert ("stdout", "out\n") in chunks
    assert all(stream != "stderr" for stream, _ in chunks)


def test_callback_exception_surfaces(h):
    jobid = _submit(h, "echo", "x")

    def cb(f):
        raise NameError("boom")

    flux.job.output_watch_async(h, jobid).then(cb)
    with pytest.raises(NameError, match="boom"):
        h.reactor_run()
