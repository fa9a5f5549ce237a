"""``flux batch`` and ``flux alloc``: jobs that start a new Flux instance.

``flux batch [OPTIONS] SCRIPT [ARGS...]`` (or the script on stdin, or
``--wrap COMMAND...``) submits a job running a new instance whose initial
program is the script, and prints its id.  The script's ``#flux:``
directives (RFC 36) give options, which the command line's override; output goes to
``flux-{{id}}.out`` by default.  ``flux alloc [OPTIONS] [COMMAND...]``
submits a new instance running COMMAND (default: an interactive shell)
and attaches to it like ``flux run``; ``--bg`` (without COMMAND) waits
until the instance is up (its URI published in a ``memo`` event), prints
the job id and leaves it running.  Resources are slots: ``-n N``
slots of ``-c`` cores and ``-g`` GPUs, or ``-N`` whole nodes.

The jobspecs are those of ``JobspecV1.from_batch``/``from_alloc`` (spec
2.4) and ``--dry-run`` prints them, but for ``flux alloc``'s pty: the
instance runs on a pty driven by our terminal (``pty.interactive``) when
our stdin is one, else on pipes unless ``-o pty`` asks for one.  Running them needs an exec system that
provides the job's ``{{tmpdir}}`` files and a ``flux broker`` command.
"""

import sys

from fluxrm.cli import submitopts

DESCRIPTIONS = {
    "batch": """\
Submit a batch job: SCRIPT runs as the initial program of a new Flux
instance on the allocated resources.  Prints the job id.

Examples:
  flux batch -N2 job.sh
  flux batch -n4 --wrap ./app input
""",
    "alloc": """\
Allocate resources and run COMMAND (default: an interactive shell) in a
new Flux instance on them, attached to this terminal.

Example:
  flux alloc -N1 flux run -n2 hostname
""",
}


def _need_script(args):
    if not args.command and not args.wrap and sys.stdin.isatty():
        raise submitopts.CLIError("batch script required (a file, stdin "
                                  "or --wrap COMMAND)")


def main(argv, prog="flux-batch", command="batch"):
    from fluxrm.cli.run import prepare

    args = submitopts.parse_command_line(command, prog, DESCRIPTIONS[command], argv)
    if command == "batch" and not args.wrap:
        try:
            args = _with_directives(args, argv, prog)
        except (OSError, ValueError) as exc:
            return submitopts.report(prog, exc)
    pty = []

    def adjust(jobspec):
        pty.append(_alloc_pty(jobspec, args))

    payload = prepare(args, command, prog,
                      check=_need_script if command == "batch" else None,
                      adjust=adjust if command == "alloc" else None)
    if isinstance(payload, int):
        return payload

    import flux

    from fluxrm.cli.lazy import f58

    h = flux.Flux()
    jobid = h.rpc("job-ingest.submit", payload).get()["id"]
    if command == "alloc" and args.bg:
        return _wait_for_instance(h, jobid, prog, f58(jobid))
    if command == "batch":
        print(f58(jobid))
        return 0
    from fluxrm.cli.attach import Attach

    if args.verbose:
        print(f"jobid: {f58(jobid)}", file=sys.stderr, flush=True)
    return Attach(h, jobid, prog="flux-job", show_events=args.verbose >= 2,
                  show_exec=args.verbose >= 3, pty=pty[0] or False).run()


def _with_directives(args, argv, prog):
    """``flux batch``: the options of the script's ``#flux:`` directives
    (RFC 36, ``flux.job.directives``) come first, so that the command
    line's override them (and add to the list options).  A script read
    from standard input is kept for the jobspec."""
    import io

    from flux.job.directives import DirectiveParser

    if args.command:
        name = args.command[0]
        with open(name, encoding="utf-8") as fp:
            content = fp.read()
    elif not sys.stdin.isatty():
        name = "stdin"
        content = sys.stdin.read()
        sys.stdin = io.StringIO(content)
    else:
        return args
    try:
        directives = DirectiveParser(content).directives
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    words = []
    for item in directives:
        if item.action != "SETARGS":
            continue
        alone = submitopts.parse_command_line("batch", prog, DESCRIPTIONS["batch"],
                                              item.args)
        if alone.command:
            raise ValueError(f"{name}: line {item.lineno}: directives take only "
                             f"options, not '{alone.command[0]}'")
        words.extend(item.args)
    if not words:
        return args
    return submitopts.parse_command_line("batch", prog, DESCRIPTIONS["batch"],
                                         words + list(argv))


def _alloc_pty(jobspec, args):
    """``flux alloc``'s instance runs on a pty driven by our terminal
    (``pty.interactive``; ``from_alloc`` never sets it); with our stdin not a
    terminal it gets pipes instead (its output is not for a terminal),
    unless ``-o pty...`` asked for a pty.  Returns the ``pty`` option."""
    from fluxrm.cli.run import stdin_is_tty

    if stdin_is_tty() and not args.bg:
        jobspec.setattr_shell_option("pty.interactive", 1)
        return submitopts.pty_option(jobspec)
    if not any(o == "pty" or o.startswith(("pty.", "pty="))
               for o in args.setopt or ()):
        options = jobspec.attributes["system"].get("shell", {}).get("options", {})
        options.pop("pty", None)
    return submitopts.pty_option(jobspec)


def _wait_for_instance(h, jobid, prog, name):
    """``flux alloc --bg``: wait until the new instance is up (its rank 0
    publishes its URI in a ``memo`` event, ``fluxrm.broker.nested``), then
    print the job id.  A job that ends first, or an exception, is an error
    (exit 1); Ctrl-C leaves the job as it is."""
    import flux.job

    try:
        for event in flux.job.event_watch(h, jobid):
            if event.name == "memo" and "uri" in event.context:
                print(name)
                return 0
            if event.name == "exception" and event.context.get("severity") == 0:
                print(f"{prog}: {name}: job exception: "
                      f"{event.context.get('note', '')}", file=sys.stderr)
                return 1
            if event.name in ("finish", "clean"):
                break
    except KeyboardInterrupt:
        print(f"{prog}: {name}: no longer waiting for the instance to start",
              file=sys.stderr)
        return 1
    print(f"{prog}: {name}: the job ended before its instance started",
          file=sys.stderr)
    return 1
