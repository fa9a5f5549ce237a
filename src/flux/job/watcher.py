"""Following many jobs at once: what ``flux submit/bulksubmit --watch`` uses.

- ``JobStatus(job)``: a ``JobInfo``'s status as ``pending``, ``running``,
  ``complete`` or ``failed``, with its exit code and a per-name event counter.
- ``JobProgressBar(h, starttime=None, jps=False, counter_width=3,
  update_interval=0.25)``: ``PD:n R:n CD:n F:n`` counts, a bar and the
  elapsed time (or jobs per second), redrawn by an unref'd timer.
- ``JobWatcher(h, jobs=None, progress=False, jps=False, wait="clean",
  watch=True, log_events=False, log_status=False, stdout=sys.stdout,
  stderr=sys.stderr, labelio=False, starttime=None, output_callback=None)``:
  watches each job's main eventlog (``job-info.eventlog-watch``) until the
  job's ``wait`` event (default ``clean``; ``exec.NAME`` waits for an exec
  eventlog event), optionally prints its output as it comes (the exec
  eventlog until ``shell.init``, then ``output_watch_async(nowait=True)``),
  logs events and status lines, and keeps ``exitcode``: the largest exit
  code (128+signal for a signalled job), at least 1 if a job failed before
  it started.

The watcher never stops the reactor: ``h.reactor_run()`` returns once
every watch it started has ended.

Beyond upstream, for a caller about to submit many jobs (``flux submit
--cc``): ``follow_new_jobs()`` opens one ``job-manager.events-journal``
stream, and the main events of jobs added afterwards (which must have been
submitted after that call) come from it instead of one eventlog stream per
job; ``no_more_new_jobs()`` says that every such job has been added, so the
stream ends with the last of them.  With ``watch`` (and neither
``exec.*`` waits nor ``log_events``) the output stream is opened at
``start`` rather than after an exec eventlog stream sees ``shell.init``.
The output and the exit code are the same either way.
"""

import os
import re
import sys
import time

from flux.constants import FLUX_JOB_STATE_SCHED, FLUX_RPC_NORESPONSE
from flux.eventlog import EventLogEvent
from flux.job.event import event_watch_async
from flux.job.info import JobInfo
from flux.job.JobID import JobID
from flux.job.output import JobExceptionEvent, output_watch_async

__all__ = ["JobStatus", "JobProgressBar", "JobWatcher"]

_JOURNAL = "journal"  # _Job.main of a job followed through the events journal
_PENDING = ("DEPEND", "PRIORITY", "SCHED")
_RUNNING = ("RUN", "CLEANUP")
_FAILED = ("FAILED", "CANCELED", "TIMEOUT")


class JobStatus:
    """The status of one watched job (built from a ``JobInfo``)."""

    def __init__(self, job):
        if not isinstance(job, JobInfo):
            raise ValueError("JobStatus requires an object of type JobInfo")
        self.job = job
        self.id = job.id
        status = job.status
        self.exitcode = 0
        if status in _PENDING:
            self.status = "pending"
        elif status in _RUNNING:
            self.status = "running"
        elif status == "COMPLETED":
            self.status = "complete"
        elif status in _FAILED:
            self.status = "failed"
            self.exitcode = job.returncode
        else:
            raise ValueError(f"unknown job status {status}")
        self.events = {}

    @property
    def active(self):
        return self.status in ("pending", "running")

    def add_event(self, name):
        self.events[name] = self.events.get(name, 0) + 1

    def event_count(self, name):
        return self.events.get(name, 0)

    def has_event(self, name):
        return name in self.events


def _hms(seconds):
    secs = int(seconds)
    return f"{secs // 3600}:{secs // 60 % 60:02d}:{secs % 60:02d}"


class JobProgressBar:
    """A progress bar of watched jobs: ``PD:n R:n CD:n F:n |bar| pct% time``.

    The bar is drawn on ``stream`` (stderr): redrawn in place by a timer
    when it is a terminal, else printed once by ``stop()``.  ``clear()``
    erases it so that other output can be written.
    """

    WIDTH = 30

    def __init__(self, h, starttime=None, jps=False, counter_width=3,
                 update_interval=0.25, stream=None):
        self.h = h
        self.starttime = time.time() if starttime is None else starttime
        self.jps = jps
        self.counter_width = counter_width
        self.update_interval = update_interval
        self.stream = stream if stream is not None else sys.stderr
        self.jobs = {}
        self.counts = {"pending": 0, "running": 0, "complete": 0, "failed": 0}
        self.total = 0
        self.count = 0  # jobs the bar has advanced for
        self.timer = None
        self.shown = False
        try:
            self.isatty = self.stream.isatty()
        except (AttributeError, ValueError):
            self.isatty = False

    def add_job(self, job):
        """Follow a ``JobInfo``."""
        if not isinstance(job, JobInfo):
            raise ValueError("JobProgressBar.add_job requires a JobInfo object")
        if job.id in self.jobs:
            raise ValueError(f"job {job.id} is already being monitored")
        status = JobStatus(job)
        self.jobs[job.id] = status
        self.counts[status.status] += 1
        self.total += 1
        return self

    def _move(self, status, new):
        self.counts[status.status] -= 1
        status.status = new
        self.counts[new] += 1

    def process_event(self, jobid, event=None):
        """Account for ``event`` (an ``EventLogEvent``) of job ``jobid``;
        ``None`` advances the bar once for the job."""
        status = self.jobs[jobid]
        if event is None:
            if not status.has_event(None):
                status.add_event(None)
                self.count += 1
            return
        name = event.name
        status.add_event(name)
        if name == "alloc" and status.status == "pending":
            self._move(status, "running")
        elif (name == "exception" and status.status == "pending"
              and event.context.get("severity", 0) == 0):
            self._move(status, "failed")
        elif name == "finish" and status.active:
            self._move(status, "complete" if event.context.get("status", 0) == 0
                       else "failed")

    def line(self):
        """The progress line."""
        w = self.counter_width
        counts = (f"PD:{self.counts['pending']:<{w}} R:{self.counts['running']:<{w}} "
                  f"CD:{self.counts['complete']:<{w}} F:{self.counts['failed']:<{w}} ")
        frac = self.count / self.total if self.total else 0.0
        filled = int(self.WIDTH * frac)
        bar = "\u2588" * filled + " " * (self.WIDTH - filled)
        elapsed = max(time.time() - self.starttime, 0.0)
        if self.jps:
            rate = self.count / elapsed if elapsed > 0 else 0.0
            tail = f"{rate:4.1f} job/s"
        else:
            tail = f"{100 * frac:5.1f}% {_hms(elapsed)}"
        return f"{counts}\u2502{bar}\u2502 {tail}"

    def redraw(self):
        if self.isatty:
            self.stream.write("\r\033[K" + self.line())
            self.stream.flush()
            self.shown = True

    def clear(self):
        """Erase the bar (before other output is written)."""
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False

    def start(self):
        if self.isatty and self.timer is None:
            self.timer = self.h.timer_watcher_create(
                0.0, lambda *_: self.redraw(), repeat=self.update_interval)
            self.timer.start()
            self.timer.unref()
        return self

    def stop(self):
        if self.timer is not None:
            self.timer.stop()
            self.timer = None
        self.clear()
        self.stream.write(self.line() + "\n")
        self.stream.flush()
        return self


# cursor movement, scroll regions and screen control; SGR (``m``) is kept
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ABCDEFGHJKSTfhlnrsu]|\x1b[78DEM]|\x1bc")


def _utf8_stream(stream):
    """``stream`` writing UTF-8 with surrogateescape (reconfigured in place)."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(encoding="utf-8", errors="surrogateescape")
        return stream
    return open(stream.fileno(), "w", encoding="utf-8", errors="surrogateescape",
                closefd=False)


class _Job:
    """One watched job."""

    __slots__ = ("id", "f58", "stdout", "stderr", "wait", "exec_wait", "main",
                 "exec", "output", "started", "shell_init", "waited", "done",
                 "t_submit")

    def __init__(self, jobid, stdout, stderr, wait):
        self.id = jobid
        self.f58 = JobID(jobid).f58
        self.stdout = stdout
        self.stderr = stderr
        self.wait = wait
        self.exec_wait = wait[len("exec."):] if wait.startswith("exec.") else None
        self.main = self.exec = self.output = None
        self.started = self.shell_init = self.waited = self.done = False


class JobWatcher:
    """Watch jobs to their ``wait`` event, printing output and progress."""

    def __init__(self, h, jobs=None, progress=False, jps=False, wait="clean",
                 watch=True, log_events=False, log_status=False,
                 stdout=sys.stdout, stderr=sys.stderr, labelio=False,
                 starttime=None, output_callback=None):
        self.h = h
        self.wait = wait
        self.watch = watch
        self.log_events = log_events
        self.log_status = log_status
        self.labelio = labelio
        self.output_callback = output_callback
        if output_callback is None:
            stdout = _utf8_stream(stdout)
            stderr = _utf8_stream(stderr)
        self.stdout = stdout
        self.stderr = stderr
        self.t0 = starttime
        self.exitcode = 0
        self.jobs = {}
        self.journal = None  # the events journal of follow_new_jobs()
        self.early = None  # id -> events that came before the job was added
        self.journal_jobs = 0  # jobs still followed through the journal
        self.progress = None
        if progress or jps:
            self.progress = JobProgressBar(h, starttime=starttime, jps=jps,
                                           stream=stderr if output_callback is None
                                           else sys.stderr)
        if jobs:
            self.add_jobs(*jobs)

    # -- public ---------------------------------------------------------------------
    def start(self):
        if self.progress is not None:
            self.progress.start()
        return self

    def stop(self):
        if self.progress is not None:
            self.progress.stop()
        return self

    def follow_new_jobs(self):
        """Follow jobs added from now on through the events journal."""
        from flux.constants import FLUX_RPC_STREAMING

        if self.journal is None:
            self.journal = self.h.rpc("job-manager.events-journal", {},
                                      flags=FLUX_RPC_STREAMING)
            self.journal.get()  # the sentinel: live from here on
            self.journal.reset()
            self.early = {}
            self.journal.then(self._on_journal)
        return self

    def no_more_new_jobs(self):
        """Every job submitted since ``follow_new_jobs()`` has been added."""
        self.early = None
        self._check_journal()
        return self

    def _check_journal(self):
        if self.journal is not None and self.early is None and not self.journal_jobs:
            self.journal.stop()
            self.h.rpc("job-manager.events-journal-cancel",
                       {"matchtag": self.journal._state.matchtag},
                       flags=FLUX_RPC_NORESPONSE)
            self.journal = None

    def _on_journal(self, f):
        try:
            rsp = f.get()
        except OSError:
            f.stop()
            self.journal = None
            return
        f.reset()
        for item in rsp.get("events", ()):
            job = self.jobs.get(item["id"])
            if job is None or job.main is not _JOURNAL:
                if self.early is not None and job is None:
                    self.early.setdefault(item["id"], []).append(item["entry"])
                continue
            self._main_event(job, EventLogEvent(item["entry"]))

    def add_jobs(self, *jobs, stdout=None, stderr=None, wait="clean"):
        for info in jobs:
            if not isinstance(info, JobInfo):
                raise ValueError("JobWatcher.add_jobs requires JobInfo objects")
            self._add(info, stdout, stderr, wait)
        return self

    def add_jobid(self, jobid, stdout=None, stderr=None, wait="clean"):
        info = JobInfo({"id": int(jobid), "state": FLUX_JOB_STATE_SCHED, "t_submit": time.time()})
        return self._add(info, stdout, stderr, wait)

    # -- per job ----------------------------------------------------------------------
    def _add(self, info, stdout, stderr, wait):
        if self.output_callback is None:
            stdout = self.stdout if stdout is None else _utf8_stream(stdout)
            stderr = self.stderr if stderr is None else _utf8_stream(stderr)
        job = _Job(int(info.id), stdout, stderr, wait)
        self.jobs[job.id] = job
        self._seen_time(getattr(info, "t_submit", None))
        if self.progress is not None:
            self.progress.add_job(info)
        if self.journal is not None:
            job.main = _JOURNAL
            self.journal_jobs += 1
            for entry in self.early.pop(job.id, ()) if self.early else ():
                if job.main is _JOURNAL:
                    self._main_event(job, EventLogEvent(entry))
        else:
            job.main = event_watch_async(self.h, job.id)
            job.main.then(self._on_main, job)
        return self

    def _main_ended(self, job):
        """The job's main eventlog is over."""
        if job.main is _JOURNAL:
            self.journal_jobs -= 1
            self._check_journal()
        job.main = None
        if not job.waited and not (job.exec_wait and job.exec is not None):
            self._log(job, f"eventlog ended before event='{job.wait}'")
            self._done(job)

    def _seen_time(self, ts):
        if ts and (self.t0 is None or ts < self.t0):
            self.t0 = ts

    def _log(self, job, text):
        self._clear_progress()
        print(f"{job.f58}: {text}", file=job.stderr, flush=True)

    def _log_event(self, job, event, prefix=""):
        self._seen_time(event.timestamp)
        dt = event.timestamp - self.t0
        self._log(job, f"{dt:4.3f}s: {prefix}{event.name} {event.context_string}")

    def _clear_progress(self):
        if self.progress is not None:
            self.progress.clear()

    def _on_main(self, f, job):
        try:
            event = f.get_event()
        except OSError as exc:
            f.stop()
            job.main = None
            self._log(job, exc.strerror or str(exc))
            self.exitcode = max(self.exitcode, 1)
            self._done(job)
            return
        if event is None:
            f.stop()
            self._main_ended(job)
            return
        self._main_event(job, event)

    def _main_event(self, job, event):
        if self.log_events:
            self._log_event(job, event)
        if self.progress is not None:
            self.progress.process_event(job.id, event)
        name = event.name
        if name == "exception" and event.context.get("severity", 0) == 0:
            if not job.started:
                self.exitcode = max(self.exitcode, 1)
            if not job.shell_init:
                self._clear_progress()
                print(JobExceptionEvent(event).render(), file=job.stderr, flush=True)
        elif name == "start":
            job.started = True
            if self.watch and not job.exec_wait and not self.log_events:
                self._open_output(job)  # the output eventlog waits for shell.init
            elif self.watch or job.exec_wait:
                job.exec = event_watch_async(self.h, job.id, "guest.exec.eventlog")
                job.exec.then(self._on_exec, job)
        elif name == "finish":
            status = event.context.get("status", 0)
            if os.WIFSIGNALED(status):
                code = 128 + os.WTERMSIG(status)
            else:
                code = os.WEXITSTATUS(status)
            self.exitcode = max(self.exitcode, code)
            if self.log_status:
                self._seen_time(event.timestamp)
                state = "complete" if status == 0 else "failed"
                self._log(job, f"{event.timestamp - self.t0:4.3f}s: {state}: "
                               f"status={status}")
        if name == job.wait:
            if name != "clean":  # after clean the stream ends by itself
                self._cancel_main(job)
            self._done(job)
        if name == "clean" and job.main is _JOURNAL:
            self._main_ended(job)

    def _cancel_main(self, job):
        if job.main is _JOURNAL:
            self.journal_jobs -= 1
            self._check_journal()
        elif job.main is not None:
            job.main.cancel(stop=True)
        job.main = None

    def _open_output(self, job):
        job.output = output_watch_async(self.h, job.id, nowait=True,
                                        labelio=self.labelio)
        job.output.then(self._on_output, job)

    def _on_exec(self, f, job):
        try:
            event = f.get_event()
        except OSError:
            event = None
        if event is None:
            f.stop()
            job.exec = None
            if job.exec_wait and not job.waited:
                self._log(job, f"eventlog ended before event='{job.wait}'")
                self._done(job)
            self._finish(job)
            return
        if self.log_events:
            self._log_event(job, event, prefix="exec.")
        if event.name == "shell.init" and not job.shell_init:
            job.shell_init = True
            if self.watch and job.output is None:
                self._open_output(job)
            if not job.exec_wait:
                f.cancel(stop=True)
                job.exec = None
        if job.exec_wait and event.name == job.exec_wait:
            f.cancel(stop=True)
            job.exec = None
            self._cancel_main(job)
            self._done(job)

    def _on_output(self, f, job):
        try:
            stream, data = f.get()
        except OSError as exc:
            f.stop()
            self._log(job, exc.strerror or str(exc))
            stream = data = None
        else:
            if stream is not None:
                f.reset()
        if stream is None:
            f.stop()
            job.output = None
            if self.output_callback is not None:
                self.output_callback(job.id, None, None)
            else:
                job.stdout.flush()
                job.stderr.flush()
            self._finish(job)
            return
        job.shell_init = True  # output exists: the shell is up
        if self.output_callback is not None:
            self.output_callback(job.id, stream, data)
            return
        if self.labelio:
            data = "".join(f"{job.f58}: {line}" for line in data.splitlines(True))
        if self.progress is not None:
            data = _CONTROL.sub("", data)
            self.progress.clear()
        out = job.stdout if stream == "stdout" else job.stderr
        out.write(data)
        if out is job.stderr or self.progress is not None:
            out.flush()

    def _done(self, job):
        """The job's wait event came (or never will)."""
        if not job.waited:
            job.waited = True
            if self.progress is not None:
                self.progress.process_event(job.id, None)
        self._finish(job)

    def _finish(self, job):
        """Done with the job once it was waited for and its output is over
        (an exec watch still open may yet start the output)."""
        if job.done or not job.waited or job.output is not None \
                or job.exec is not None:
            return
        job.done = True
        if job.exec is not None:
            job.exec.cancel(stop=True)
            job.exec = None

