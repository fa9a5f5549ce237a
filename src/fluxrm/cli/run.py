"""``flux run [OPTIONS] COMMAND [ARGS...]``: run a job and wait for it.

Builds the jobspec from the options (see `fluxrm.cli.submitopts`),
submits it, then attaches as ``flux job attach`` would (`Attach`): the
job's output is streamed as it is produced and ``flux run`` exits with
the job's exit code (128+N for signal N; 1 for a job that failed without
an exit code).  ``--dry-run`` prints the jobspec as one JSON line and
exits without connecting.  ``-v`` prints the job id on stderr, ``-vv``
the job's events, ``-vvv`` its exec events as well.  With ``-o pty``
task 0 runs on a pseudo-terminal; when our stdin is a terminal
``pty.interactive`` is added and that terminal drives the job's (see
``fluxrm.cli.attach``).

Start-up is paid per job, so this module imports only the standard
library, the core handle and the jobspec module.
"""

import os
import sys

from fluxrm.cli import submitopts

DESCRIPTION = """\
Run a job interactively: submit COMMAND as a job, stream its standard
output and error, and exit with its exit code.

Examples:
  flux run -n4 hostname
  flux run -N2 -t 10 ./app --input data
  flux run --dry-run -n1 sleep 0 > job.json
"""


def submit_payload(jobspec_text, args):
    """The ``job-ingest.submit`` request for a jobspec (JSON text)."""
    from fluxrm.cli.lazy import job_module

    from flux.constants import (
        FLUX_JOB_DEBUG, FLUX_JOB_NOVALIDATE, FLUX_JOB_WAITABLE,
    )

    flags = submitopts.submit_flags(args)
    mask = 0
    if flags["waitable"]:
        mask |= FLUX_JOB_WAITABLE
    if flags["debug"]:
        mask |= FLUX_JOB_DEBUG
    if flags["novalidate"]:
        mask |= FLUX_JOB_NOVALIDATE
    J = job_module("submit").sign_none(jobspec_text)
    return {"J": J, "urgency": args.urgency, "flags": mask}


def prepare(args, command, prog, check=None, adjust=None):
    """The submit request of a parsed command line, or the exit status to
    return at once: 0 after ``--dry-run`` printed the jobspec, or that of a
    bad option (reported on one line).  ``check(args)`` may raise
    ``CLIError`` before the jobspec is built, ``adjust(jobspec)`` change
    it after."""
    try:
        submitopts.check_urgency(args)
        submitopts.submit_flags(args)
        if check is not None:
            check(args)
        jobspec = submitopts.build_jobspec(args, command)
        if adjust is not None:
            adjust(jobspec)
        text = jobspec.dumps()
        if args.dry_run:
            print(text)
            return 0
        return submit_payload(text, args)
    except (submitopts.CLIError, ValueError, TypeError, OSError) as exc:
        return submitopts.report(prog, exc)


def main(argv, prog="flux-run", command="run"):
    args = submitopts.parse_command_line("run", prog, DESCRIPTION, argv)
    pty = []

    def adjust(jobspec):
        # a job on a pty, run from a terminal: that terminal drives it
        # (unless we leave before the job ends: --wait-event)
        interactive = args.wait_event in (None, "finish") and stdin_is_tty()
        pty.append(submitopts.pty_option(jobspec, interactive=interactive))

    payload = prepare(args, "run", prog, adjust=adjust)
    if isinstance(payload, int):
        return payload

    import flux
    from fluxrm.cli.attach import Attach

    h = flux.Flux()
    jobid = h.rpc("job-ingest.submit", payload).get()["id"]
    if args.verbose:
        from fluxrm.cli.lazy import f58

        print(f"jobid: {f58(jobid)}", file=sys.stderr, flush=True)
    attach = Attach(
        h,
        jobid,
        prog="flux-job",
        label=args.label_io,
        show_events=args.verbose >= 2,
        show_exec=args.verbose >= 3,
        wait_event=args.wait_event,
        pty=pty[0] or False,
    )
    return attach.run()


def stdin_is_tty():
    try:
        return os.isatty(0)
    except OSError:
        return False
