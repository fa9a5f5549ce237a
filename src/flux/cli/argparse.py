"""``FluxArgumentParser`` (``flux.cli.argparse``): the argument parser of
Flux's commands.

``FluxArgumentParser(posix=False, raw_description=False, argwidth=40,
**argparse_kwargs)``:

- long options are never abbreviated (``--wait`` does not match
  ``--wait-event``);
- ``posix=True`` stops option parsing at the first word that is not an
  option or an option's value, as POSIX ``getopt`` does: the rest (``flux run
  -n2 cmd -x``) goes to the positional arguments;
- ``raw_description`` keeps the description's line breaks, ``argwidth`` is
  the width of the options column in ``--help``;
- ``add_subparsers()`` gives an action whose ``add_parser(name,
  hidden_aliases=[...])`` accepts extra names not shown in the help.
"""

import argparse

__all__ = ["FluxArgumentParser"]


def help_formatter(argwidth=40, raw_description=False):
    """A ``HelpFormatter`` class with an options column ``argwidth`` wide
    (keeping the description's line breaks with ``raw_description``)."""
    base = (argparse.RawDescriptionHelpFormatter if raw_description
            else argparse.HelpFormatter)

    class FluxHelpFormatter(base):
        def __init__(self, prog, **kwargs):
            kwargs.setdefault("max_help_position", argwidth)
            super().__init__(prog, **kwargs)

    return FluxHelpFormatter


class _SubParsersAction(argparse._SubParsersAction):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._visible = [] if self.metavar is None else None

    def add_parser(self, name, **kwargs):
        hidden = kwargs.pop("hidden_aliases", None) or []
        parser = super().add_parser(name, **kwargs)
        for alias in hidden:
            self._name_parser_map[alias] = parser
        if self._visible is not None:  # list the visible names only
            self._visible.append(name)
            self._visible.extend(kwargs.get("aliases", ()))
            self.metavar = "{" + ",".join(self._visible) + "}"
        return parser


class FluxArgumentParser(argparse.ArgumentParser):
    def __init__(self, *args, posix=False, raw_description=False, argwidth=40,
                 **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", help_formatter(
            argwidth=argwidth, raw_description=raw_description))
        super().__init__(*args, **kwargs)
        self.posix = posix
        self.register("action", "parsers", _SubParsersAction)

    def _split_posix(self, args):
        """Put ``--`` before the first word that is not an option nor an
        option's value, so that argparse leaves the rest alone."""
        takes_value = {}
        for action in self._actions:
            for opt in action.option_strings:
                takes_value[opt] = action.nargs != 0
        i = 0
        while i < len(args):
            word = args[i]
            if word == "--":
                return args
            if not word.startswith("-") or word == "-":
                return args[:i] + ["--"] + args[i:]
            if word.startswith("--"):
                if "=" not in word and takes_value.get(word, False):
                    i += 1
            else:
                for j in range(1, len(word)):
                    opt = "-" + word[j]
                    if opt not in takes_value:
                        break
                    if takes_value[opt]:
                        if j == len(word) - 1:
                            i += 1
                        break
            i += 1
        return args

    def parse_known_args(self, args=None, namespace=None):
        if self.posix:
            import sys

            args = list(sys.argv[1:] if args is None else args)
            args = self._split_posix(args)
        return super().parse_known_args(args, namespace)
