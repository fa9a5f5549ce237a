"""Commands made of subcommands (``flux job``, ``flux resource``).

``run_subcommand(argv, command, prog, table, width, synopsis)`` runs one entry of
``table`` (``name -> (setup(parser), run(args), one-line help)``): with no
argument, ``-h``, ``--help`` or ``help`` it prints the list of
subcommands (exit 0, or 2 on stderr when nothing was given); an unknown
name is one line on stderr and exit 2.  ``run(args)`` returns the exit
status; a ``Fail`` it raises is printed as ``<prog>: <message>`` and exits
with its code, and so is a ``ValueError`` or ``TypeError`` (exit 1, with the
traceback too under ``FLUX_PYCLI_LOGLEVEL=debug``).  Any other exception is
left to ``fluxrm.cli.main``, which prints it as one line.
"""

import sys

from fluxrm.cli.argparser import Parser


class Fail(Exception):
    """An error to print as one line, with an exit code."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


def usage(command, table, width, synopsis, stream):
    print(f"Usage: flux {command} {synopsis}\n\nSubcommands:", file=stream)
    for name, (_setup, _run, text) in table.items():
        print(f"  {name:<{width}} {text}", file=stream)


def run_subcommand(argv, command, prog, table, width,
                   synopsis="SUBCOMMAND [OPTIONS...]"):
    if not argv or argv[0] in ("-h", "--help", "help"):
        usage(command, table, width, synopsis, sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in table:
        print(f"{prog}: unknown subcommand '{name}'. See 'flux {command} --help'.",
              file=sys.stderr)
        return 2
    setup, run, text = table[name]
    parser = Parser(prog=f"flux {command} {name}",
                    description=text[0].upper() + text[1:] + ".")
    parser.building(True)
    setup(parser)
    parser.building(False)
    args = parser.parse_args(rest)
    try:
        return run(args)
    except Fail as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.code
    except (ValueError, TypeError) as exc:
        from fluxrm.cli.main import report_error

        report_error(prog, exc, str(exc))
        return 1
