"""``flux submit [OPTIONS] COMMAND [ARGS...]``: submit jobs, print their ids.

One jobspec is built from the options (see `fluxrm.cli.submitopts`);
``--cc IDSET``/``--bcc IDSET`` submit one copy per id (``{cc}`` in the
command, ``--output``/``--error``/``--input``/``--job-name``/``--cwd`` and
``--setattr``/``--setopt``/``--env`` is the id;
``--cc`` also sets ``FLUX_JOB_CC``).  Job ids are printed in f58, one per
line, in submission order (``--quiet``: not printed).

Waiting (``--wait``, ``--wait-event``, ``--watch``, ``--progress``,
``--jps``, ``-v``/``-vv`` for status and event lines) is
``flux.job.watcher.JobWatcher``'s, as upstream's: each job is followed to its
wait event and, with ``--watch``, its output printed as it comes.  The
jobs' main events come through one events-journal stream opened before the
first submission (``JobWatcher.follow_new_jobs()``).  Exit status: without waiting, 1 if any submission failed; with
waiting, the largest of that and the jobs' exit codes (128+N for signal N,
1 for a job that failed before it started).

`BulkSubmit` is the engine, shared with ``flux bulksubmit``.
"""

import errno
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

class BulkSubmit:
    """Submit many jobspecs at once; optionally follow the jobs to the end.

    Following (``--wait``, ``--wait-event``, ``--watch``, ``--progress``)
    is ``flux.job.watcher.JobWatcher``'s: each job is added to it as soon
    as its id is known.
    """

    def __init__(self, h, args, prog):
        self.h = h
        self.args = args
        self.prog = prog
        self.watch = bool(getattr(args, "watch", False))
        self.wait_event = getattr(args, "wait_event", None)
        self.progress = bool(getattr(args, "progress", False))
        self.jps = bool(getattr(args, "jps", False))
        wait = bool(getattr(args, "wait", False)) or self.watch or (
            self.progress and not self.wait_event)
        if wait and not self.wait_event:
            self.wait_event = "clean"
        self.following = self.wait_event is not None
        self.ids = []  # job ids in submission order (None: not yet, False: failed)
        self.printed = 0
        self.nfailed_submit = 0
        self.nanswered = 0
        self.t0 = time.time()
        self.out = sys.stdout
        self.err = sys.stderr
        self._logfiles = []
        if getattr(args, "log", None):
            self.out = self.err = self._open_log(args.log)
        if getattr(args, "log_stderr", None):
            self.err = self._open_log(args.log_stderr)
        self.watcher = None
        if self.following:
            from flux.job.watcher import JobWatcher

            verbose = getattr(args, "verbose", 0) or 0
            self.watcher = JobWatcher(
                h, progress=self.progress, jps=self.jps and self.progress,
                log_events=verbose > 1, log_status=verbose > 0,
                labelio=bool(getattr(args, "label_io", False)),
                wait=self.wait_event, watch=self.watch,
                stdout=self.out, stderr=self.err, starttime=self.t0)
            self.out, self.err = self.watcher.stdout, self.watcher.stderr
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

    def _clear_progress(self):
        if self.watcher is not None and self.watcher.progress is not None:
            self.watcher.progress.clear()

    def message(self, text):
        self.out.flush()
        self._clear_progress()
        print(text, file=self.err, flush=True)

    # -- submission --------------------------------------------------------------------
    def submit(self, jobspec_text):
        """Queue one submission (answered while the reactor runs)."""
        index = len(self.ids)
        self.ids.append(None)
        f = self.h.rpc("job-ingest.submit",
                       {"J": self.sign(jobspec_text), "urgency": self.urgency,
                        "flags": self.flags})
        f.then(self.on_submit, index)

    def on_submit(self, f, index):
        try:
            jobid = f.get()["id"]
        except OSError as exc:
            self.nfailed_submit += 1
            self.ids[index] = False
            self.message(f"{self.prog}: {exc.strerror or exc}")
        else:
            self.ids[index] = jobid
            if self.watcher is not None:
                self.watcher.add_jobid(jobid, wait=self.wait_event)
        self.nanswered += 1
        if self.nanswered == len(self.ids) and self.watcher is not None:
            self.watcher.no_more_new_jobs()
        self._print_ids()

    def _print_ids(self):
        """Print ids in submission order as they become known."""
        quiet = getattr(self.args, "quiet", False)
        lines = []
        while self.printed < len(self.ids):
            jobid = self.ids[self.printed]
            if jobid is None:
                break
            if jobid is not False and not quiet:
                lines.append(self.f58(jobid, "f58"))
            self.printed += 1
        if lines:
            self._clear_progress()
            self.out.write("\n".join(lines) + "\n")
            self.out.flush()

    # -- driving -----------------------------------------------------------------------------
    def run(self, jobspecs):
        """Submit every jobspec text of ``jobspecs``; return the exit code."""
        if self.watcher is not None:
            self.watcher.follow_new_jobs().start()
        for text in jobspecs:
            self.submit(text)
        if self.ids:
            self.h.reactor_run()
        if self.watcher is not None:
            self.watcher.stop()
        if self.jps and not self.progress:
            elapsed = time.time() - self.t0
            n = len(self.ids)
            rate = n / elapsed if elapsed > 0 else 0.0
            self.message(f"{self.prog}: {n} jobs in {elapsed:.2f}s, {rate:.1f} job/s")
        self.out.flush()
        sys.stdout.flush()
        for fp in self._logfiles:
            fp.close()
        code = 1 if self.nfailed_submit else 0
        if self.watcher is not None:
            code = max(code, self.watcher.exitcode)
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

