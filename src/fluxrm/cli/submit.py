"""``flux submit [OPTIONS] COMMAND [ARGS...]``: submit jobs, print their ids.

One jobspec is built from the options (see `fluxrm.cli.submitopts`);
``--cc IDSET``/``--bcc IDSET`` submit one copy per id (``{cc}`` in the
command, ``--output``/``--error``/``--input``/``--job-name``/``--cwd`` and
``--setattr``/``--setopt``/``--env`` is the id;
``--cc`` also sets ``FLUX_JOB_CC``).  Job ids are printed in f58, one per
line, in submission order (``--quiet``: not printed).

Waiting (``--wait``, ``--wait-event``, ``--watch``, ``--progress``) follows
every job through one ``job-manager.events-journal`` stream, opened before
the first submission, rather than one eventlog stream per job; ``--watch``
adds each job's ``guest.output`` stream and prints the output as it comes.
Exit status: without waiting, 1 if any submission failed; with waiting,
the largest exit code of the jobs (128+N for signal N, 1 for a job that
failed before it started).

`BulkSubmit` is the engine, shared with ``flux bulksubmit``.
"""

import errno
import json
import sys
import time

from fluxrm.cli import submitopts

DESCRIPTION = """\
Submit a job (or --cc copies of it) and print the job id(s).

Examples:
  flux submit -n4 ./app
  flux submit --cc=1-100 --wait ./task {cc}
  flux submit --dry-run sleep 0
"""

STATE_ABBREV = ("PD", "R", "CD", "F")


class JobRecord:
    __slots__ = ("index", "id", "f58", "started", "finished", "status",
                 "fatal", "done", "output_done", "event_seen")

    def __init__(self, index):
        self.index = index
        self.id = None
        self.f58 = None
        self.started = False
        self.finished = False
        self.status = None
        self.fatal = None
        self.done = False
        self.output_done = True
        self.event_seen = False

    def exit_code(self):
        from fluxrm.cli.attach import exit_code

        if self.status is not None:
            code = exit_code(self.status)
            if code == 0 and self.fatal is not None:
                code = 1
            return code
        return 1 if self.fatal is not None or not self.event_seen else 0


class BulkSubmit:
    """Submit many jobspecs at once; optionally follow the jobs to the end."""

    def __init__(self, h, args, prog):
        self.h = h
        self.args = args
        self.prog = prog
        self.watch = bool(getattr(args, "watch", False))
        self.wait_event = getattr(args, "wait_event", None)
        self.progress = bool(getattr(args, "progress", False))
        self.wait = bool(getattr(args, "wait", False)) or self.watch or (
            self.progress and not self.wait_event)
        if self.wait and not self.wait_event:
            self.wait_event = "clean"
        self.following = self.wait or self.wait_event is not None
        self.exec_event = None
        if self.wait_event and self.wait_event.startswith("exec."):
            self.exec_event = self.wait_event[len("exec."):]
        self.jobs = []
        self.by_id = {}
        self.early = {}  # events for ids not yet known
        self.printed = 0
        self.nsubmitted = 0
        self.nfailed_submit = 0
        self.nremaining = 0
        self.counts = {"PD": 0, "R": 0, "CD": 0, "F": 0}
        self.t0 = time.monotonic()
        self.journal = None
        self.progress_timer = None
        self.isatty_err = False
        self.out = sys.stdout
        self.err = sys.stderr
        self._logfiles = []
        if getattr(args, "log", None):
            self.out = self.err = self._open_log(args.log)
        if getattr(args, "log_stderr", None):
            self.err = self._open_log(args.log_stderr)
        self.urgency = args.urgency
        flags = submitopts.submit_flags(args)
        from flux.constants import (
            FLUX_JOB_DEBUG, FLUX_JOB_NOVALIDATE, FLUX_JOB_WAITABLE,
        )

        self.flags = ((FLUX_JOB_WAITABLE if flags["waitable"] else 0)
                      | (FLUX_JOB_DEBUG if flags["debug"] else 0)
                      | (FLUX_JOB_NOVALIDATE if flags["novalidate"] else 0))
        from fluxrm.cli.lazy import job_module

        self.sign = job_module("submit").sign_none
        self.f58 = job_module("JobID").id_encode

    def _open_log(self, path):
        fp = open(path, "a", encoding="utf-8")
        self._logfiles.append(fp)
        return fp

    def message(self, text):
        self.out.flush()
        self._clear_progress()
        print(text, file=self.err, flush=True)

    # -- journal --------------------------------------------------------------------------
    def open_journal(self):
        """Follow every job event; wait for the stream to be live."""
        from flux.constants import FLUX_RPC_STREAMING

        self.journal = self.h.rpc("job-manager.events-journal", {},
                                  flags=FLUX_RPC_STREAMING)
        self.journal.get()  # the sentinel: live from here on
        self.journal.reset()
        self.journal.then(self.on_journal)

    def on_journal(self, f):
        try:
            rsp = f.get()
        except OSError as exc:
            f.stop()
            if exc.errno != errno.ENODATA:
                self.message(f"{self.prog}: events journal: {exc.strerror}")
                self.h.reactor_stop_error()
            return
        f.reset()
        for item in rsp.get("events", ()):
            job = self.by_id.get(item["id"])
            if job is None:
                if self.nsubmitted + self.nfailed_submit < len(self.jobs):
                    self.early.setdefault(item["id"], []).append(item["entry"])
                continue
            self.on_event(job, item["entry"])
        self.update_progress()

    def on_event(self, job, event):
        if job.done:
            return
        name = event["name"]
        ctx = event.get("context") or {}
        if name == "exception":
            if ctx.get("severity", 0) == 0 and job.fatal is None:
                job.fatal = ctx
                self.message(f"{job.f58}: job.exception type={ctx.get('type')} "
                             f"severity=0 {ctx.get('note', '')}".rstrip())
        elif name == "start":
            job.started = True
            self._count(job, "R")
            if self.exec_event:
                self._watch_exec(job)
        elif name == "finish":
            job.finished = True
            job.status = ctx.get("status", 0)
            if job.status and self.watch:
                from fluxrm.cli.attach import status_message

                self.message(f"{self.prog}: {job.f58}: "
                             f"{status_message(job.status)}")
        elif name == "clean":
            ok = job.status == 0 and job.fatal is None
            self._count(job, "CD" if ok else "F")
        if name == self.wait_event:
            job.event_seen = True
            self._check_done(job)
        elif name == "clean":
            if self.wait_event not in ("clean", None) and not job.event_seen \
                    and not self.exec_event:
                self.message(f"{self.prog}: {job.f58}: eventlog ended before "
                             f"event='{self.wait_event}'")
            if not self.exec_event:
                job.event_seen = job.event_seen or self.wait_event == "clean"
                self._finish(job)

    def _count(self, job, state):
        prev = "R" if state != "R" and job.started else "PD"
        if state in ("CD", "F") and not job.started:
            prev = "PD"
        self.counts[prev] -= 1
        self.counts[state] += 1

    def _check_done(self, job):
        if job.event_seen and job.output_done:
            self._finish(job)

    def _finish(self, job):
        if job.done:
            return
        if not job.output_done:
            return  # output stream still open: finish when it closes
        job.done = True
        self.nremaining -= 1
        if self.nremaining == 0 and self.nsubmitted + self.nfailed_submit == len(self.jobs):
            self.h.reactor_stop()

    # -- exec eventlog (--wait-event=exec.NAME) ---------------------------------------
    def _watch_exec(self, job):
        from flux.constants import FLUX_RPC_STREAMING

        f = self.h.rpc("job-info.eventlog-watch",
                       {"id": job.id, "path": "guest.exec.eventlog", "flags": 0},
                       flags=FLUX_RPC_STREAMING)

        def on_exec(f, job=job):
            try:
                rsp = f.get()
            except OSError:
                f.stop()
                if not job.event_seen:
                    self.message(f"{self.prog}: {job.f58}: eventlog ended before "
                                 f"event='{self.wait_event}'")
                self._finish(job)
                return
            f.reset()
            event = json.loads(rsp["event"])
            if event["name"] == self.exec_event and not job.event_seen:
                job.event_seen = True
                self._finish(job)

        f.then(on_exec)

    # -- output (--watch) --------------------------------------------------------------------
    def _watch_output(self, job):
        from flux.constants import FLUX_RPC_STREAMING

        job.output_done = False
        f = self.h.rpc("job-info.eventlog-watch",
                       {"id": job.id, "path": "guest.output", "flags": 0},
                       flags=FLUX_RPC_STREAMING)
        label = self.args.label_io

        def on_output(f, job=job):
            try:
                rsp = f.get()
            except OSError:
                f.stop()
                job.output_done = True
                if job.event_seen:
                    self._finish(job)
                return
            f.reset()
            event = json.loads(rsp["event"])
            ctx = event.get("context") or {}
            if event["name"] == "data" and ctx.get("data") is not None:
                data = ctx["data"]
                if ctx.get("encoding") == "base64":
                    import base64

                    raw = base64.b64decode(data)
                else:
                    raw = data.encode("utf-8", "surrogateescape")
                raw *= int(ctx.get("repeat", 1) or 1)
                if label:
                    from fluxrm.cli.attach import Attach

                    raw = Attach._labeled(raw, ctx.get("rank", "0"))
                self._clear_progress()
                stream = sys.stderr if ctx.get("stream") == "stderr" else sys.stdout
                stream.flush()
                stream.buffer.write(raw)
                stream.buffer.flush()
            elif event["name"] == "log":
                from fluxrm.cli.attach import Attach

                self.message(Attach._render_log(ctx))

        f.then(on_output)

    # -- submission --------------------------------------------------------------------
    def submit(self, jobspec_text):
        """Queue one submission (answered while the reactor runs)."""
        job = JobRecord(len(self.jobs))
        self.jobs.append(job)
        f = self.h.rpc("job-ingest.submit",
                       {"J": self.sign(jobspec_text), "urgency": self.urgency,
                        "flags": self.flags})
        f.then(self.on_submit, job)

    def on_submit(self, f, job):
        try:
            job.id = f.get()["id"]
        except OSError as exc:
            self.nfailed_submit += 1
            job.done = True
            self.message(f"{self.prog}: {exc.strerror or exc}")
            self._print_ids()
            self._maybe_stop()
            return
        job.f58 = self.f58(job.id, "f58")
        self.nsubmitted += 1
        if self.following:
            self.by_id[job.id] = job
            self.nremaining += 1
            self.counts["PD"] += 1
            if self.watch:
                self._watch_output(job)
            for entry in self.early.pop(job.id, ()):
                self.on_event(job, entry)
            if self.nsubmitted + self.nfailed_submit == len(self.jobs):
                self.early.clear()
        self._print_ids()
        self._maybe_stop()

    def _maybe_stop(self):
        if self.nsubmitted + self.nfailed_submit == len(self.jobs):
            if not self.following or self.nremaining == 0:
                self.h.reactor_stop()

    def _print_ids(self):
        """Print ids in submission order as they become known."""
        quiet = getattr(self.args, "quiet", False)
        lines = []
        while self.printed < len(self.jobs):
            job = self.jobs[self.printed]
            if job.id is None and not job.done:
                break
            if job.id is not None and not quiet:
                lines.append(job.f58)
            self.printed += 1
        if lines:
            self._clear_progress()
            self.out.write("\n".join(lines) + "\n")
            self.out.flush()

    # -- progress ------------------------------------------------------------------------
    def _start_progress(self):
        if not self.progress:
            return
        self.isatty_err = self.err.isatty()
        if self.isatty_err:
            self.progress_timer = self.h.timer_watcher_create(
                0.1, lambda *a: self._render_progress(), repeat=0.25)
            self.progress_timer.start()
            self.progress_timer.unref()

    def update_progress(self):
        pass  # rendered by the timer (a tty) or once at the end

    def _progress_line(self):
        total = len(self.jobs)
        done = self.counts["CD"] + self.counts["F"]
        frac = done / total if total else 1.0
        width = 30
        bar = "\u2588" * int(width * frac) + " " * (width - int(width * frac))
        counts = " ".join(f"{k}:{self.counts[k]}" for k in STATE_ABBREV)
        elapsed = time.monotonic() - self.t0
        if getattr(self.args, "jps", False):
            tail = f"{done / elapsed if elapsed > 0 else 0.0:6.1f} job/s"
        else:
            secs = int(elapsed)
            tail = f"{secs // 3600}:{secs // 60 % 60:02d}:{secs % 60:02d}"
        return f"{counts} \u2502{bar}\u2502{100 * frac:5.1f}% {tail}"

    def _render_progress(self):
        self.err.write("\r" + self._progress_line())
        self.err.flush()
        self._progress_shown = True

    def _clear_progress(self):
        if self.progress and self.isatty_err and getattr(self, "_progress_shown", False):
            self.err.write("\r\033[K")
            self._progress_shown = False

    # -- driving -----------------------------------------------------------------------------
    def run(self, jobspecs):
        """Submit every jobspec text of ``jobspecs``; return the exit code."""
        if self.following:
            self.open_journal()
        self._start_progress()
        for text in jobspecs:
            self.submit(text)
        if self.jobs:
            self.h.reactor_run()
        if self.progress_timer is not None:
            self.progress_timer.stop()
        if self.progress:
            if self.isatty_err:
                self._render_progress()
                self.err.write("\n")
            else:
                self.err.write(self._progress_line() + "\n")
            self.err.flush()
        elif getattr(self.args, "jps", False):
            elapsed = time.monotonic() - self.t0
            n = len(self.jobs)
            rate = n / elapsed if elapsed > 0 else 0.0
            self.message(f"{self.prog}: {n} jobs in {elapsed:.2f}s, {rate:.1f} job/s")
        sys.stdout.flush()
        for fp in self._logfiles:
            fp.close()
        if not self.following:
            return 1 if self.nfailed_submit else 0
        code = 1 if self.nfailed_submit else 0
        for job in self.jobs:
            if job.id is not None:
                code = max(code, job.exit_code())
        return code


def cc_ids(args):
    """The ids of ``--cc``/``--bcc`` (None without either)."""
    if args.cc is not None and args.bcc is not None:
        raise submitopts.CLIError("--cc and --bcc are mutually exclusive")
    spec = args.cc if args.cc is not None else args.bcc
    if spec is None:
        return None
    from flux.idset import IDset

    try:
        return list(IDset(spec))
    except (ValueError, TypeError):
        raise submitopts.CLIError(f"--{'cc' if args.cc else 'bcc'}: invalid "
                                  f"idset '{spec}'") from None


CC_OPTIONS = ("output", "error", "input", "job_name", "cwd")
CC_LIST_OPTIONS = ("setattr", "setopt", "env")


def jobspec_copies(args, command, build):
    """Yield the jobspec texts to submit (one, or one per --cc/--bcc id).

    ``build(args)`` returns a jobspec; ``{cc}`` is substituted in the
    command and in the ``CC_OPTIONS`` before building each copy.
    """
    ids = cc_ids(args)
    if ids is None:
        yield build(args).dumps()
        return
    templated = any("{cc}" in a for a in args.command) or any(
        "{cc}" in (getattr(args, o, None) or "") for o in CC_OPTIONS) or any(
        "{cc}" in v for o in CC_LIST_OPTIONS for v in getattr(args, o, None) or ())
    base = None if templated else build(args)
    for cc in ids:
        if templated:
            copy = _substitute_cc(args, cc)
            jobspec = build(copy)
        else:
            jobspec = base
        if args.cc is not None:
            env = jobspec.environment
            if env is not None:
                env["FLUX_JOB_CC"] = str(cc)
        yield jobspec.dumps()


def _substitute_cc(args, cc):
    from types import SimpleNamespace

    values = dict(vars(args))
    values["command"] = [a.replace("{cc}", str(cc)) for a in args.command]
    for opt in CC_OPTIONS:
        if isinstance(values.get(opt), str):
            values[opt] = values[opt].replace("{cc}", str(cc))
    for opt in CC_LIST_OPTIONS:
        if values.get(opt):
            values[opt] = [v.replace("{cc}", str(cc)) for v in values[opt]]
    # apply_options consumes list options; give each copy its own lists
    for key, value in values.items():
        if isinstance(value, list) and key != "command":
            values[key] = list(value)
    return SimpleNamespace(**values)


def main(argv, prog="flux-submit", command="submit"):
    args = submitopts.parse_command_line("submit", prog, DESCRIPTION, argv)
    try:
        submitopts.check_urgency(args)
        submitopts.submit_flags(args)
        texts = jobspec_copies(args, "submit",
                               lambda a: submitopts.build_jobspec(a, "submit"))
        if args.dry_run:
            for text in texts:
                print(text)
            return 0
        texts = list(texts)
    except (submitopts.CLIError, ValueError, TypeError, OSError) as exc:
        return submitopts.report(prog, exc)

    import flux

    h = flux.Flux()
    try:
        return BulkSubmit(h, args, prog).run(texts)
    except OSError as exc:
        if exc.errno == errno.ENOSYS:
            return submitopts.report(prog, exc)
        raise

