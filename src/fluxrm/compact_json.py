"""Compact JSON text for what the broker stores and sends: ``dumps(obj)``.

The same text as ``json.dumps(obj, separators=(",", ":"),
ensure_ascii=False)``, made by one C encoder built once at import instead
of a new encoder per call: about half the cost for the small objects of
the job pipeline (eventlog contexts, R, a job's list info), which are
encoded a dozen times per job.  Objects must not be circular (nothing
the broker encodes is), and keys must be strings, numbers, booleans or
None, as for ``json.dumps``.
"""

import json
from json import encoder as _encoder

__all__ = ["dumps"]


def _unencodable(obj):
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


if _encoder.c_make_encoder is not None:
    _encode = _encoder.c_make_encoder(
        None,  # no circular-reference markers
        _unencodable,
        _encoder.c_encode_basestring,  # ensure_ascii=False
        None,  # no indent
        ":", ",",
        False,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan, as json.dumps
    )

    def dumps(obj):
        """Compact JSON text of ``obj`` (see the module docstring)."""
        return "".join(_encode(obj, 0))
else:  # a Python without the _json accelerator
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
