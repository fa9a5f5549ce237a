"""Job output: reading a job's ``guest.output`` eventlog (RFC 24).

The job shell records output in the eventlog ``guest.output``: a
``header``, then ``data`` entries (``stream``, ``rank`` idset, ``data``,
optional ``encoding: base64``, ``repeat``, ``eof``), ``redirect`` entries
when a stream goes to a file, and ``log`` entries (shell log messages).

- ``job_output(h, jobid, tasks="*", labelio=False, nowait=False,
  log_stderr_level=LOG_TRACE)`` waits for the output to be complete and
  returns ``JobOutput(stdout, stderr, log)``.
- ``output_event_watch(h, jobid, labelio=False, nowait=False)`` yields typed
  events: ``OutputEvent``, ``LogEvent``, ``OutputHeaderEvent``,
  ``RedirectEvent`` and ``JobExceptionEvent`` (exceptions posted to the main
  eventlog before ``finish``).  ``output_event_watch_async`` returns the
  future behind it (``get_event()``, ``None`` at the end).
- ``output_watch(...)`` yields ``(stream, data)`` chunks;
  ``output_watch_async(...).get_output()`` returns them one by one and
  ``(None, None)`` at the end; ``output_watch_lines`` yields lines.

Watching follows the job: the main eventlog until ``start``, then the exec
eventlog until ``shell.init`` (the output eventlog exists from then on),
then ``guest.output`` to its end.  The watch ends once the output is closed
and ``finish`` was seen.  A job that ends without starting fails the watch
with ``OSError(EIO, "job <id> never started")``; an unknown job with
``OSError(ENOENT, "job <id> not found")``.  ``nowait=True`` goes straight to
the output eventlog.
"""

import base64
import errno
from typing import NamedTuple

from flux.job.event import (
    EventLogEvent,
    JobException,
    _ComposedFuture,
    _watch,
)

__all__ = [
    "LOG_QUIET",
    "LOG_FATAL",
    "LOG_ERROR",
    "LOG_WARN",
    "LOG_NOTICE",
    "LOG_DEBUG",
    "LOG_TRACE",
    "Taskset",
    "JobOutput",
    "JobOutputEvent",
    "OutputEvent",
    "LogEvent",
    "OutputHeaderEvent",
    "RedirectEvent",
    "JobExceptionEvent",
    "JobOutputEventWatch",
    "JobOutputWatch",
    "JobOutputWatchLines",
    "JobOutputEventWatchFuture",
    "JobOutputWatchFuture",
    "job_output",
    "output_event_watch_async",
    "output_event_watch",
    "output_watch_async",
    "output_watch",
    "output_watch_lines_async",
    "output_watch_lines",
]

LOG_QUIET = -1
LOG_FATAL = 0
LOG_ERROR = 3
LOG_WARN = 4
LOG_NOTICE = 5
LOG_DEBUG = 6
LOG_TRACE = 7

class JobOutput(NamedTuple):
    """A job's whole output, as ``job_output`` returns it."""

    stdout: str
    stderr: str
    log: str


class Taskset:
    """A set of task ranks: ``"all"``/``"*"`` or an idset."""

    def __init__(self, tasks="all"):
        from flux.idset import IDset

        self.ids = None  # None means all
        if isinstance(tasks, Taskset):
            if tasks.ids is not None:
                self.ids = tasks.ids.copy()
        elif isinstance(tasks, IDset):
            self.ids = tasks.copy()
        elif isinstance(tasks, int) and not isinstance(tasks, bool):
            self.ids = IDset(str(tasks))
        elif isinstance(tasks, str):
            if tasks not in ("all", "*"):
                self.ids = IDset(tasks)
        else:
            raise TypeError("tasks must be 'all', '*', an idset string or an IDset")

    @property
    def all(self):
        return self.ids is None

    def __str__(self):
        return "all" if self.ids is None else str(self.ids)

    def __repr__(self):
        return f"Taskset('{self}')"

    def __bool__(self):
        return self.ids is None or bool(self.ids)

    def __eq__(self, other):
        if not isinstance(other, Taskset):
            try:
                other = Taskset(other)
            except (TypeError, ValueError, OSError):
                return NotImplemented
        return str(self) == str(other)

    def __hash__(self):
        return hash(str(self))

    def __contains__(self, rank):
        return self.ids is None or self.ids.test(int(rank))

    def intersect(self, other):
        """The tasks in both ``self`` and ``other`` (a ``Taskset``)."""
        other = other if isinstance(other, Taskset) else Taskset(other)
        if self.ids is None:
            return Taskset(other)
        if other.ids is None:
            return Taskset(self)
        return Taskset(self.ids.intersect(other.ids))


# -- typed events ---------------------------------------------------------------------
class JobOutputEvent:
    """Base of the typed output events (built from an ``EventLogEvent``)."""

    def __init__(self, event):
        if not isinstance(event, EventLogEvent):
            event = EventLogEvent(event)
        self.event = event
        self.name = event.name
        self.timestamp = event.timestamp
        self.context = event.context

    @staticmethod
    def from_event(event, labelio=False):
        """Return the typed event for an output eventlog entry."""
        if not isinstance(event, EventLogEvent):
            event = EventLogEvent(event)
        name = event.name
        if name == "data":
            return OutputEvent(event, labelio=labelio)
        if name == "log":
            return LogEvent(event)
        if name == "header":
            return OutputHeaderEvent(event)
        if name == "redirect":
            return RedirectEvent(event)
        if name == "exception":
            return JobExceptionEvent(event)
        raise ValueError(f"event {name} is not a supported output event type")

    def render(self):
        return ""

    def __repr__(self):
        return f"{type(self).__name__}({dict(self.event)!r})"


def _label(data, rank):
    lines = data.splitlines()
    return "".join(f"{rank}: {line}\n" for line in lines)


class OutputEvent(JobOutputEvent):
    """Data (and/or EOF) on ``stdout``/``stderr`` from the tasks ``rank``."""

    def __init__(self, event, labelio=False):
        super().__init__(event)
        ctx = self.context
        self.stream = ctx.get("stream")
        self.rank = Taskset(ctx.get("rank", "all"))
        self.eof = bool(ctx.get("eof", False))
        data = ctx.get("data")
        if data is not None:
            if ctx.get("encoding") == "base64":
                data = base64.b64decode(data).decode("utf-8", errors="surrogateescape")
            repeat = ctx.get("repeat", 1)
            if isinstance(repeat, int) and repeat > 1:
                data = data * repeat
            if labelio:
                data = _label(data, self.rank)
        self.data = data

    def render(self):
        return self.data or ""


_LEVELSTR = {0: "FATAL", 1: "FATAL", 2: "FATAL", 3: "ERROR", 4: " WARN",
             5: "", 6: "DEBUG", 7: "TRACE"}


class LogEvent(JobOutputEvent):
    """A job shell log message."""

    def __init__(self, event):
        super().__init__(event)
        ctx = self.context
        self.level = ctx.get("level", LOG_NOTICE)
        self.message = ctx.get("message", "")
        self.rank = ctx.get("rank", -1)
        self.component = ctx.get("component")
        self.file = ctx.get("file")
        self.line = ctx.get("line", -1)
        self.levelstr = _LEVELSTR.get(self.level, "")

    def render(self, include_file_and_line=False):
        out = f"flux-shell[{self.rank}]: "
        if self.levelstr:
            out += f"{self.levelstr}: "
        if self.component:
            out += f"{self.component}: "
        if include_file_and_line and self.file and self.line is not None \
                and self.line >= 0:
            out += f"{self.file}:{self.line}: "
        return out + self.message


class OutputHeaderEvent(JobOutputEvent):
    """The output eventlog header: version, per-stream counts and encodings."""

    def __init__(self, event):
        super().__init__(event)
        ctx = self.context
        count = ctx.get("count", {})
        encoding = ctx.get("encoding", {})
        self.version = ctx.get("version", 1)
        self.stdout_count = count.get("stdout", 0)
        self.stderr_count = count.get("stderr", 0)
        self.stdout_encoding = encoding.get("stdout", "UTF-8")
        self.stderr_encoding = encoding.get("stderr", "UTF-8")
        self.options = ctx.get("options", {})


class RedirectEvent(JobOutputEvent):
    """A stream of some tasks was redirected to a file."""

    def __init__(self, event):
        super().__init__(event)
        ctx = self.context
        self.stream = ctx.get("stream")
        self.rank = Taskset(ctx.get("rank", "all"))
        self.path = ctx.get("path")

    def render(self):
        return f"{self.rank}: {self.stream} redirected to {self.path}"


class JobExceptionEvent(JobOutputEvent):
    """An exception posted to the job's main eventlog."""

    def __init__(self, event):
        super().__init__(event)
        ctx = self.context
        self.severity = ctx.get("severity", 0)
        self.exc_type = ctx.get("type")
        self.note = ctx.get("note", "")

    def render(self):
        out = f"job.exception: type={self.exc_type} severity={self.severity}"
        if self.note:
            out += f" {self.note}"
        return out

    def exception(self):
        """The ``JobException`` for this event."""
        return JobException(self.event)


# -- watching ------------------------------------------------------------------------------
def _jobid_str(jobid):
    try:
        from flux.job.JobID import JobID

        return str(JobID(jobid))
    except Exception:  # pragma: no cover - JobID must always work
        return str(jobid)


class _OutputWatch:
    """The state machine behind ``JobOutputEventWatchFuture``."""

    def __init__(self, future, jobid, labelio, nowait):
        self.future = future
        self.jobid = jobid
        self.labelio = labelio
        self.nowait = nowait
        self.h = future.get_flux()
        self.main = self.exec = self.output = None
        self.started = False
        self.finished = False  # ``finish`` seen (or main eventlog over)
        self.output_done = False
        self.done = False

    # -- plumbing --------------------------------------------------------------------
    def start(self):
        try:
            if self.nowait:
                self.finished = True
                self.output = self._open("guest.output", self._on_output)
            else:
                self.main = self._open("eventlog", self._on_main)
        except OSError as exc:
            self.fail(exc.errno, exc.strerror)

    def _open(self, path, cb):
        watch = _watch(self.h, self.jobid, path)
        watch.then(cb)
        # opened from a stream callback: send now rather than at the next
        # reactor turn, so that following the job never waits on a buffer
        conn = getattr(self.h, "_conn", None)
        if conn is not None and not conn.loopback:
            conn.flush()
        return watch

    def _next(self, watch):
        """The next event of ``watch``, ``None`` at its end; fails on error."""
        try:
            return watch.get_event(), True
        except OSError as exc:
            watch.stop()
            if exc.errno == errno.ENOENT and watch is self.main:
                self.fail(errno.ENOENT, f"job {_jobid_str(self.jobid)} not found")
            else:
                self.fail(exc.errno, exc.strerror)
            return None, False

    def emit(self, event):
        if not self.done:
            self.future._emit(event)

    def fail(self, errnum, errstr):
        if not self.done:
            self.done = True
            self.cancel()
            self.future.fulfill_error(errnum, errstr)

    def end(self):
        if not self.done:
            self.done = True
            self.cancel()
            self.future.fulfill_error(errno.ENODATA, "end of output")

    def cancel(self):
        for watch in (self.main, self.exec, self.output):
            if watch is not None:
                watch.cancel(stop=True)

    def check_end(self):
        if self.output_done and self.finished:
            self.end()

    # -- callbacks -------------------------------------------------------------------
    def _on_main(self, watch):
        event, ok = self._next(watch)
        if not ok or self.done:
            return
        if event is None:
            watch.stop()
            if not self.started:
                self.fail(errno.EIO, f"job {_jobid_str(self.jobid)} never started")
                return
            self.finished = True
            self.check_end()
            return
        if event.name == "exception":
            self.emit(JobExceptionEvent(event))
        elif event.name == "start" and not self.started:
            self.started = True
            self.exec = self._open("guest.exec.eventlog", self._on_exec)
        elif event.name == "finish":
            self.finished = True
            watch.cancel(stop=True)
            if not self.started:
                # finished without a start event: there is no output
                self.fail(errno.EIO, f"job {_jobid_str(self.jobid)} never started")
                return
            self.check_end()

    def _on_exec(self, watch):
        event, ok = self._next(watch)
        if not ok or self.done:
            return
        if event is None:
            # the exec system finished without starting any shell: no output
            watch.stop()
            if self.output is None:
                self.output_done = True
                self.check_end()
            return
        if event.name == "shell.init":
            watch.cancel(stop=True)
            self.output = self._open("guest.output", self._on_output)

    def _on_output(self, watch):
        event, ok = self._next(watch)
        if not ok or self.done:
            return
        if event is None:
            watch.stop()
            self.output_done = True
            self.check_end()
            return
        try:
            typed = JobOutputEvent.from_event(event, labelio=self.labelio)
        except ValueError:
            return  # an entry type this client does not know: skip it
        self.emit(typed)


def _output_init(future, jobid, labelio, nowait):
    future._machine = _OutputWatch(future, jobid, labelio, nowait)
    future._machine.start()


def _jobid(jobid):
    """``jobid`` (int, ``JobID`` or any string ``JobID`` parses) as an int."""
    from flux.job.JobID import JobID

    return int(JobID(jobid))


class JobOutputEventWatch(_ComposedFuture):
    """A stream of the typed output events of a job (spec 17.2).

    Each fulfilment is one event (``OutputEvent``, ``LogEvent``,
    ``OutputHeaderEvent``, ``RedirectEvent`` or ``JobExceptionEvent``);
    the end of the stream is ``None``.  ``get()`` returns the current one;
    ``get_event(autoreset=True)`` also resets the future (not at the end).
    Errors raise ``OSError``.  The work starts on the first ``then()`` or
    ``get()``; ``cancel()`` stops watching.
    """

    _END = None  # what get() returns at the end of the stream

    def __init__(self, flux_handle, jobid, labelio=False, nowait=False):
        self.jobid = _jobid(jobid)
        self._machine = None
        super().__init__(_output_init, self.jobid, labelio, nowait,
                         flux_handle=flux_handle)

    def _emit(self, event):
        self.fulfill(event)

    def get(self):
        try:
            return self._head()
        except OSError as exc:
            if exc.errno == errno.ENODATA:  # only ever the end of the stream
                return self._END
            raise

    def _get_and_reset(self, autoreset=True):
        value = self.get()
        if autoreset and value is not self._END:
            self.reset()
        return value

    def get_event(self, autoreset=True):
        """The next event (``None`` at the end); resets unless told not to."""
        return self._get_and_reset(autoreset)

    def cancel(self, stop=False):
        """Stop watching; the stream then ends."""
        if self._machine is not None:
            self._machine.end()
        if stop:
            self.stop()


class JobOutputWatch(JobOutputEventWatch):
    """A stream of ``(stream, data)`` tuples, ``(None, None)`` at the end (17.3)."""

    _END = (None, None)

    def __init__(self, flux_handle, jobid, labelio=False, nowait=False,
                 log_stderr_level=LOG_TRACE):
        self.log_stderr_level = log_stderr_level
        super().__init__(flux_handle, jobid, labelio=labelio, nowait=nowait)

    def _emit(self, event):
        chunk = _chunk(event, self.log_stderr_level)
        if chunk is not None:
            self.fulfill(chunk)

    def get_output(self):
        """``get()`` then ``reset()`` (no reset if ``get()`` raises)."""
        return self._get_and_reset()


class JobOutputWatchLines(JobOutputWatch):
    """``JobOutputWatch`` with each chunk split into lines (17.4).

    Each ``str.splitlines(keepends)`` piece is a fulfilment ``(stream,
    line)``; there is no buffering across chunks.
    """

    def __init__(self, flux_handle, jobid, labelio=False, nowait=False,
                 log_stderr_level=LOG_TRACE, keepends=False):
        self.keepends = keepends
        super().__init__(flux_handle, jobid, labelio=labelio, nowait=nowait,
                         log_stderr_level=log_stderr_level)

    def _emit(self, event):
        chunk = _chunk(event, self.log_stderr_level)
        if chunk is not None:
            stream, data = chunk
            for line in data.splitlines(self.keepends):
                self.fulfill((stream, line))

    def getline(self):
        """``get()`` then ``reset()``: the next ``(stream, line)``."""
        return self._get_and_reset()


# the names this module used before upstream's were known
JobOutputEventWatchFuture = JobOutputEventWatch
JobOutputWatchFuture = JobOutputWatch


def _chunk(event, log_stderr_level):
    """The ``(stream, data)`` tuple ``output_watch`` reports for ``event``."""
    if isinstance(event, OutputEvent):
        if event.data is None:
            return None
        return (event.stream, event.data)
    if isinstance(event, LogEvent):
        stream = "stderr" if event.level <= log_stderr_level else "log"
        return (stream, event.render() + "\n")
    if isinstance(event, (RedirectEvent, JobExceptionEvent)):
        return ("stderr", event.render() + "\n")
    return None


def _check_handle(flux_handle):
    if flux_handle is None:
        raise OSError(errno.EINVAL, "flux handle must not be None")


def output_event_watch_async(flux_handle, jobid, labelio=False, nowait=False):
    """Return a ``JobOutputEventWatch`` for job ``jobid``."""
    _check_handle(flux_handle)
    return JobOutputEventWatch(flux_handle, jobid, labelio=labelio, nowait=nowait)


def output_event_watch(flux_handle, jobid, labelio=False, nowait=False):
    """Yield the typed output events of job ``jobid`` until the output ends."""
    future = output_event_watch_async(flux_handle, jobid, labelio=labelio, nowait=nowait)
    try:
        while True:
            event = future.get_event()
            if event is None:
                return
            yield event
    finally:
        future.cancel()


def output_watch_async(flux_handle, jobid, labelio=False, log_stderr_level=LOG_TRACE,
                       nowait=False):
    """Return a ``JobOutputWatch``: ``get_output()`` gives the chunks."""
    _check_handle(flux_handle)
    return JobOutputWatch(flux_handle, jobid, labelio=labelio, nowait=nowait,
                          log_stderr_level=log_stderr_level)


def output_watch(flux_handle, jobid, labelio=False, log_stderr_level=LOG_TRACE,
                 nowait=False):
    """Yield ``(stream, data)`` chunks of a job's output until it ends.

    ``stream`` is ``"stdout"``, ``"stderr"`` or ``"log"`` (shell log messages
    above ``log_stderr_level``).
    """
    future = output_watch_async(flux_handle, jobid, labelio=labelio,
                                log_stderr_level=log_stderr_level, nowait=nowait)
    try:
        while True:
            stream, data = future.get_output()
            if stream is None:
                return
            yield stream, data
    finally:
        future.cancel()


def output_watch_lines_async(flux_handle, jobid, labelio=False,
                             log_stderr_level=LOG_TRACE, nowait=False, keepends=False):
    """Return a ``JobOutputWatchLines``: ``getline()`` gives the lines."""
    _check_handle(flux_handle)
    return JobOutputWatchLines(flux_handle, jobid, labelio=labelio, nowait=nowait,
                               log_stderr_level=log_stderr_level, keepends=keepends)


def output_watch_lines(flux_handle, jobid, labelio=False, log_stderr_level=LOG_TRACE,
                       nowait=False, keepends=False):
    """Yield ``(stream, line)`` for each line of a job's output."""
    future = output_watch_lines_async(flux_handle, jobid, labelio=labelio,
                                      log_stderr_level=log_stderr_level,
                                      nowait=nowait, keepends=keepends)
    try:
        while True:
            stream, line = future.getline()
            if stream is None:
                return
            yield stream, line
    finally:
        future.cancel()


# -- job_output -----------------------------------------------------------------------------
def _wait_shell_init(flux_handle, jobid):
    """Wait for ``shell.init``; on failure explain it with the main eventlog."""
    from flux.job.event import event_wait, event_watch

    try:
        event_wait(flux_handle, jobid, "shell.init", eventlog="guest.exec.eventlog")
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise
        for event in event_watch(flux_handle, jobid):
            if event.name == "exception" and event.context.get("severity", 0) == 0:
                raise JobException(event) from None
        raise


def _output_now(flux_handle, jobid):
    """The entries of the output eventlog as they are now."""
    from flux.job.kvslookup import job_info_lookup

    missing = FileNotFoundError(
        errno.ENOENT, f"job {_jobid_str(jobid)} does not exist or output not ready")
    try:
        rsp = job_info_lookup(flux_handle, jobid, keys=["guest.output"]).get()
    except FileNotFoundError:
        raise missing from None
    text = (rsp or {}).get("guest.output")
    if not text:
        raise missing
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return [EventLogEvent(line) for line in text.splitlines() if line.strip()]


def job_output(flux_handle, jobid, tasks="*", labelio=False, nowait=False,
               log_stderr_level=LOG_TRACE):
    """Return a job's whole output as ``JobOutput(stdout, stderr, log)``.

    Waits for the job to start and its output to be complete, unless
    ``nowait`` (then what exists now is read).  ``tasks`` selects the tasks
    whose data is kept.  Shell log messages at ``log_stderr_level`` or below
    go to ``stderr``, the others to ``log``.
    """
    _check_handle(flux_handle)
    jobid = _jobid(jobid)
    tasks = Taskset(tasks)
    if nowait:
        entries = _output_now(flux_handle, jobid)
    else:
        _wait_shell_init(flux_handle, jobid)
        from flux.job.event import event_watch

        entries = event_watch(flux_handle, jobid, "guest.output")
    stdout = []
    stderr = []
    log = []
    for entry in entries:
        if entry.name == "data":
            event = OutputEvent(entry, labelio=labelio)
            if event.data and tasks.intersect(event.rank):
                (stdout if event.stream == "stdout" else stderr).append(event.data)
        elif entry.name == "log":
            event = LogEvent(entry)
            (stderr if event.level <= log_stderr_level else log).append(event.render())
    return JobOutput("".join(stdout), "".join(stderr), "".join(log))
