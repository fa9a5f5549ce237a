"""Errors of upstream's dynamic C-function wrapper, kept for compatibility.

fluxrm has no C library; calling an unknown ``h.<name>()`` raises
``MissingFunctionError``.
"""


class MissingFunctionError(Exception):
    pass


class WrongNumArguments(ValueError):
    pass


class InvalidArguments(ValueError):
    pass
