"""argparse helpers of `flux.util`: `ColorAction`, `TreedictAction`, the
``Filter*`` actions, `YesNoAction` and `help_formatter`."""

import argparse
import json
import os
import sys

from flux.cli.argparse import help_formatter
from flux.util.treedict import dict_merge, set_treedict

__all__ = [
    "ColorWhen",
    "ColorAction",
    "TreedictAction",
    "FilterAction",
    "FilterActionSetUpdate",
    "FilterActionUser",
    "FilterTrueAction",
    "YesNoAction",
    "help_formatter",
]


class ColorWhen(str):
    """The value of a ``--color`` option: ``auto``, ``always`` or ``never``."""

    @property
    def enabled(self):
        if self == "always":
            return True
        if self == "never":
            return False
        return sys.stdout.isatty()


class ColorAction(argparse.Action):
    """argparse action for ``--color[=WHEN]``.

    WHEN is ``auto``, ``always`` or ``never``; a bare ``--color`` means
    ``always``. The default is ``auto``, or ``never`` when ``$NO_COLOR`` is
    set and non-empty. The stored value is a `ColorWhen` (a `str` with an
    ``enabled`` property; ``auto`` means "stdout is a terminal").
    """

    choices_list = ("auto", "always", "never")

    def __init__(
        self,
        option_strings,
        dest,
        nargs="?",
        const="always",
        default=None,
        choices=choices_list,
        metavar="WHEN",
        **kwargs,
    ):
        if default is None:
            default = "never" if os.environ.get("NO_COLOR") else "auto"
        super().__init__(
            option_strings,
            dest,
            nargs=nargs,
            const=const,
            default=ColorWhen(default),
            choices=choices,
            metavar=metavar,
            **kwargs,
        )

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, ColorWhen(values))


class TreedictAction(argparse.Action):
    """argparse action building a nested dict from ``KEY=VALUE`` arguments.

    ``KEY`` is dotted (``a.b=1`` gives ``{"a": {"b": 1}}``); ``VALUE`` is
    decoded as JSON when it parses, else kept as a string. Repeated
    options merge into one dict. A missing ``=`` raises
    ``ValueError("Missing required value for key KEY")``.
    """

    def __init__(self, option_strings, dest, default=None, **kwargs):
        super().__init__(option_strings, dest, default=default, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        result = getattr(namespace, self.dest, None)
        if not isinstance(result, dict):
            result = {}
        if isinstance(values, str):
            values = [values]
        for arg in values:
            key, sep, text = arg.partition("=")
            if not sep:
                raise ValueError(f"Missing required value for key {arg}")
            try:
                value = json.loads(text)
            except ValueError:
                value = text
            update = {}
            set_treedict(update, key, value)
            dict_merge(result, update)
        setattr(namespace, self.dest, result)


def _mark_filtered(namespace, user=False):
    namespace.filtered = True
    if user:
        namespace.filtereduser = True


class FilterAction(argparse.Action):
    """Store the value and set ``namespace.filtered``."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        _mark_filtered(namespace)


class FilterActionSetUpdate(argparse.Action):
    """Add the comma-separated values to the destination set and set
    ``namespace.filtered``."""

    def __call__(self, parser, namespace, values, option_string=None):
        current = getattr(namespace, self.dest, None)
        current = set() if current is None else current
        current.update(values.split(","))
        setattr(namespace, self.dest, current)
        _mark_filtered(namespace)


class FilterActionUser(argparse.Action):
    """Store the value and set ``namespace.filtered`` and
    ``namespace.filtereduser``."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        _mark_filtered(namespace, user=True)


class FilterTrueAction(argparse.Action):
    """A flag (no value) storing True and setting ``namespace.filtered``."""

    def __init__(self, option_strings, dest, default=False, required=False,
                 help=None):  # noqa: A002 - argparse's keyword
        super().__init__(option_strings, dest, nargs=0, const=True,
                         default=default, required=required, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, self.const)
        _mark_filtered(namespace)


class YesNoAction(argparse.Action):
    """``--opt[=yes|no]``: a bare option or ``yes`` stores True, ``no``
    False; anything else raises
    ``ValueError("--opt requires either 'yes' or 'no'")``."""

    def __init__(self, option_strings, dest, help=None, **kwargs):  # noqa: A002
        kwargs.setdefault("default", None)
        super().__init__(option_strings, dest, nargs="?", metavar="[yes|no]",
                         help=help, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if values is None or values == "yes":
            setattr(namespace, self.dest, True)
        elif values == "no":
            setattr(namespace, self.dest, False)
        else:
            raise ValueError(f"{option_string} requires either 'yes' or 'no'")
