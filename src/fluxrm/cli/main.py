"""``flux``: dispatch to a subcommand module.

Each subcommand lives in ``fluxrm.cli.<module>`` and exposes ``main(argv)``
returning an exit code.  Modules are imported only when their command runs,
so ``flux run`` pays for nothing else.  ``flux mini CMD`` is an alias of
``flux CMD``, as the seed documents use it.
"""

import os
import sys

COMMANDS = {
    "start": ("start", "start a Flux instance and run a command in it"),
    "kvs": ("kvs", "read and write the key-value store"),
    "dmesg": ("dmesg", "print or clear the broker log ring buffer"),
    "getattr": ("attr", "print the value of a broker attribute"),
    "setattr": ("attr", "set a broker attribute"),
    "lsattr": ("attr", "list broker attributes"),
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
}


def usage(stream):
    print("Usage: flux [--help] COMMAND [ARGS...]", file=stream)
    print("\nCommands:", file=stream)
    for name, (_mod, text) in sorted(COMMANDS.items()):
        print(f"  {name:<10} {text}", file=stream)


def run_command(name, argv):
    """Import and run one subcommand; turn expected errors into one line."""
    import importlib

    modname = COMMANDS[name][0]
    module = importlib.import_module(f"fluxrm.cli.{modname}")
    try:
        return module.main(argv, prog=f"flux-{name}", command=name)
    except BrokenPipeError:
        # the reader went away (`flux jobs | head -1`): quietly stop writing
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        text = exc.strerror or str(exc)
        print(f"flux-{name}: {text}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


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
