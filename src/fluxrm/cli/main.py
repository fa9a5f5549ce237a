"""``flux``: dispatch to a subcommand module.

Each subcommand lives in ``fluxrm.cli.<module>`` and exposes ``main(argv)``
returning an exit code.  Modules are imported only when their command runs,
so ``flux run`` pays for nothing else.  ``flux mini CMD`` is an alias of
``flux CMD``, as the seed documents use it.

Errors: an exception escaping a subcommand is printed here as one line on
stderr and the exit status is 1 (130 for Ctrl-C, which prints nothing).  An
``OSError`` prints ``flux-CMD: <strerror>``; anything else prints
``flux-CMD: ERROR: <text>`` as upstream's ``CLIMain``, with the exception's
type before the text unless it is a ``ValueError`` (the type commands raise
for bad input on purpose).  With ``FLUX_PYCLI_LOGLEVEL=debug`` (or a logging
level number of at most 10, upstream's form) the traceback follows the line.
Subcommand modules that catch their own errors may call `report_error` to
print them the same way.
"""

import os
import sys

COMMANDS = {
    "start": ("start", "start a Flux instance and run a command in it"),
    "broker": ("broker", "start one broker of an instance (what a job runs to nest one)"),
    "kvs": ("kvs", "read and write the key-value store"),
    "dmesg": ("dmesg", "print or clear the broker log ring buffer"),
    "getattr": ("attr", "print the value of a broker attribute"),
    "setattr": ("attr", "set a broker attribute"),
    "lsattr": ("attr", "list broker attributes"),
    "exec": ("exec", "run a command on the instance's brokers' nodes"),
    "overlay": ("overlay", "show the tree of brokers"),
    "ping": ("ping", "send echo requests to a broker service"),
    "python": ("python", "run the Python interpreter that has this flux package"),
    "env": ("env", "print or run with the Flux environment"),
    "version": ("version", "print version information"),
    "run": ("run", "run a job interactively"),
    "submit": ("submit", "submit jobs and print their ids"),
    "bulksubmit": ("bulksubmit", "submit one job per input, as GNU parallel"),
    "batch": ("batch", "submit a batch script to run in a new instance"),
    "alloc": ("batch", "run a new instance interactively on allocated resources"),
    "job": ("job", "look at and control single jobs (attach, info, kill...)"),
    "cancel": ("cancel", "cancel jobs"),
    "jobs": ("jobs", "list jobs"),
    "resource": ("resource", "list resources and their state"),
    "uptime": ("uptime", "show how long this instance has been running"),
    "pgrep": ("pgrep", "list jobs whose name matches a pattern"),
    "pkill": ("pgrep", "cancel jobs whose name matches a pattern"),
    "keygen": ("keygen", "write a CURVE certificate for the brokers' network"),
    "queue": ("queue", "list, enable, start, drain queues"),
    "update": ("update", "change a pending job's duration, queue or name"),
    "uri": ("uri", "print the URI of an instance (a job id, jobid:, pid:)"),
    "proxy": ("proxy", "run a command connected to another instance"),
    "module": ("module", "load, list, remove broker modules (Python)"),
    "config": ("config", "print or replace the instance configuration"),
}


def usage(stream):
    print("Usage: flux [--help] COMMAND [ARGS...]", file=stream)
    print("\nCommands:", file=stream)
    for name, (_mod, text) in sorted(COMMANDS.items()):
        print(f"  {name:<10} {text}", file=stream)


def debug_enabled():
    """True when ``FLUX_PYCLI_LOGLEVEL`` asks for debug output.

    Upstream reads a Python logging level number there (10 is DEBUG); the
    level's name, ``debug``, is accepted too.
    """
    value = os.environ.get("FLUX_PYCLI_LOGLEVEL", "").strip()
    if not value:
        return False
    if value.lower() == "debug":
        return True
    try:
        return int(value) <= 10
    except ValueError:
        return False


def error_text(exc):
    """The one-line text for an exception a command did not expect."""
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    text = " ".join(str(exc).split())  # one line whatever the message
    if isinstance(exc, ValueError) and text:
        return f"ERROR: {text}"
    name = type(exc).__name__
    return f"ERROR: {name}: {text}" if text else f"ERROR: {name}"


def report_error(prog, exc, text=None):
    """Print ``<prog>: <text>`` on stderr, then the traceback if debugging.

    ``text`` defaults to `error_text(exc)`.  Call it from an ``except``
    block handling ``exc``.
    """
    try:
        print(f"{prog}: {text if text is not None else error_text(exc)}",
              file=sys.stderr, flush=True)
        if debug_enabled():
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
    except OSError:
        pass  # stderr is gone: nothing more can be said


def run_command(name, argv):
    """Import and run one subcommand; any exception becomes one line."""
    import importlib

    prog = f"flux-{name}"
    try:
        module = importlib.import_module(f"fluxrm.cli.{COMMANDS[name][0]}")
        return module.main(argv, prog=prog, command=name)
    except BrokenPipeError:
        # the reader went away (`flux jobs | head -1`): quietly stop writing
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        report_error(prog, exc)
        return 1


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    while argv and argv[0] == "mini":
        argv = argv[1:]
    if not argv or argv[0] in ("-h", "--help", "help"):
        usage(sys.stdout if argv else sys.stderr)
        return 0 if argv else 1
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"flux: '{name}' is not a flux command.  See 'flux --help'.",
              file=sys.stderr)
        return 1
    # let subcommands find this interpreter and package
    os.environ.setdefault("FLUX_PYTHON", sys.executable)
    return run_command(name, rest)


if __name__ == "__main__":
    sys.exit(main())
