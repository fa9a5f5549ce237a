'''Job directives in batch scripts (RFC 36, ``flux.job.directives``).

A directive is a comment line of the script whose text starts with
``flux:``: ``#flux: -N2 --queue=batch`` (``#``, ``--`` or ``//`` comments,
spaces allowed around them).  Its words are split as a shell would
(``shlex``); ``"""`` starts a value that runs over the following directive
lines up to the closing ``"""``, kept as one word with its line breaks::

    #flux: --conf=resource.noverify=true
    #flux: --setattr=user.note="""
    #flux: first line
    #flux: second line
    #flux: """

Directives are read up to the first line that is neither blank nor a
comment; one found after it is an error, as is a change of the comment
style between directives.  ``DirectiveParser(file)`` takes an open text
file, a string or any iterable of lines; ``.directives`` is the list of
`Directive` (``action`` ``SETARGS`` with ``args``, or ``NOOP`` for an empty
one; ``lineno``), ``.script`` the whole text.  Errors are
``ValueError("line N: ...")``.
'''

import re
import shlex

__all__ = ["Directive", "DirectiveParser"]

_DIRECTIVE = re.compile(r"^\s*(#|--|//)\s*flux:(.*?)\r?\n?$")
_COMMENT = re.compile(r"^\s*(#|--|//)")
_TRIPLE = '"""'


class Directive:
    """One directive: ``action`` (``SETARGS`` or ``NOOP``), ``args`` (the
    words of a ``SETARGS``) and ``lineno`` (its first line, from 1)."""

    def __init__(self, action, args=None, lineno=-1):
        self.action = action
        self.args = list(args or [])
        self.lineno = lineno

    def __repr__(self):
        return f"Directive({self.action!r}, {self.args!r}, lineno={self.lineno})"

    def __str__(self):
        return f"{self.action} {shlex.join(self.args)}".rstrip()


def _split(text, lineno):
    """The shell words of ``text``, with each ``\"\"\"...\"\"\"`` one word."""
    parts = text.split(_TRIPLE)
    if len(parts) % 2 == 0:
        raise ValueError(f"line {lineno}: unterminated triple quote")
    pieces = []
    for i, part in enumerate(parts):
        pieces.append(shlex.quote(part) if i % 2 else part)
    try:
        return shlex.split("".join(pieces))
    except ValueError as exc:
        raise ValueError(f"line {lineno}: {exc}") from None


class DirectiveParser:
    def __init__(self, inputfile):
        if isinstance(inputfile, str):
            lines = inputfile.splitlines(keepends=True)
        else:
            lines = list(inputfile)
        self.script = "".join(lines)
        self.directives = []
        self.sentinel = None
        self._parse(lines)

    def _parse(self, lines):
        in_header = True
        pending = None  # (first lineno, text so far) inside a """ value
        for lineno, line in enumerate(lines, start=1):
            match = _DIRECTIVE.match(line)
            if pending is not None:
                if match is None:
                    raise ValueError(f"line {pending[0]}: unterminated triple quote")
                text = pending[1] + "\n" + match.group(2).strip()
                if text.count(_TRIPLE) % 2 == 0:
                    self._add(text, pending[0])
                    pending = None
                else:
                    pending = (pending[0], text)
                continue
            if match is not None:
                if not in_header:
                    raise ValueError(f"line {lineno}: orphan 'flux:' directive "
                                     "after the first non-comment line")
                sentinel = match.group(1)
                if self.sentinel is None:
                    self.sentinel = sentinel
                elif sentinel != self.sentinel:
                    raise ValueError(f"line {lineno}: directive comment "
                                     f"'{sentinel}' differs from '{self.sentinel}'")
                text = match.group(2)
                if text.count(_TRIPLE) % 2:
                    pending = (lineno, text)
                else:
                    self._add(text, lineno)
            elif in_header and line.strip() and not _COMMENT.match(line):
                in_header = False
        if pending is not None:
            raise ValueError(f"line {pending[0]}: unterminated triple quote")

    def _add(self, text, lineno):
        words = _split(text, lineno)
        if words:
            self.directives.append(Directive("SETARGS", words, lineno))
        else:
            self.directives.append(Directive("NOOP", lineno=lineno))
