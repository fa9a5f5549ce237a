"""`flux.utils.parsedatetime`: the PyPI `parsedatetime` package under the
import path where upstream Flux vendors it.

The public names of `parsedatetime` (``Calendar``, ``Constants``,
``VERSION_FLAG_STYLE``, ``pdtContext``, ...) are available from here; the
standard-library modules it happens to import are not.
"""

import __future__
import types

import parsedatetime as _parsedatetime


def _is_public(name, value):
    if name.startswith("_") or isinstance(value, __future__._Feature):
        return False
    if isinstance(value, types.ModuleType):
        return value.__name__.startswith("parsedatetime")
    return True


__version__ = _parsedatetime.__version__
__all__ = sorted(
    name for name, value in vars(_parsedatetime).items() if _is_public(name, value)
)
globals().update({name: getattr(_parsedatetime, name) for name in __all__})
