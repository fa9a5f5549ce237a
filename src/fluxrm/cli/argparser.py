"""`Parser`: the argparse parser of every ``flux`` subcommand.

Errors are one line on stderr (``<prog>: <message>``) and exit 2, as bad
usage should; ``--help`` is argparse's.  While a parser is being built
(``building(True)``), one fixed-width help formatter is reused for the
metavar checks ``add_argument`` makes, instead of one per option (which
also imports ``shutil`` for the terminal width): a parser with fifty
options builds in half the time.
"""

import argparse


class Parser(argparse.ArgumentParser):
    _build_formatter = None

    def error(self, message):
        self.exit(2, f"{self.prog}: {message}\n")

    def _get_formatter(self):
        if self._build_formatter is not None:
            return self._build_formatter
        return super()._get_formatter()

    def building(self, on):
        self._build_formatter = (
            argparse.RawDescriptionHelpFormatter(prog=self.prog, width=80)
            if on else None
        )


def subcommands(parser, dest="subcommand"):
    """Add required subcommands to ``parser`` (one-line errors too)."""
    sub = parser.add_subparsers(dest=dest, metavar="COMMAND",
                                parser_class=Parser)
    sub.required = True
    return sub
