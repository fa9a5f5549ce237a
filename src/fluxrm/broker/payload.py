"""Checking request payloads at the edge of a service.

A handler reads its request through these functions instead of indexing the
decoded payload directly, so that a field of the wrong type or out of range
is answered with one clear error naming the field, never with a Python
exception that the router would report as an internal error (an
``OverflowError`` from SQLite for an id of 2**64, a ``TypeError`` for a list
where a number belongs...).

Errors follow upstream: a payload that is not what the topic takes (not a
JSON object, a missing or wrongly typed field) is ``EPROTO``; a field of the
right type with a value out of range is ``EINVAL``.

    req = payload.request(msg)                  # the payload, a dict
    jobid = payload.jobid(req)                  # req["id"]: a job id
    flags = payload.integer(req, "flags", 0)    # optional, default 0
    note = payload.string(req, "note", "")
    keys = payload.strings(req, "keys", [])

Each getter takes the field name, then a default; without a default the
field is required.  Integers are checked to fit the store's 64-bit signed
INTEGER unless narrower bounds are given; ``bool`` is not an integer here.
"""

import errno

__all__ = ["request", "jobid", "integer", "number", "string", "strings",
           "boolean", "optional_dict", "MISSING", "INT64_MAX", "JOBID_MAX"]

MISSING = object()
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
JOBID_MAX = INT64_MAX  # ids are stored as SQLite INTEGER (signed 64 bits)
STRING_MAX = 1 << 20  # characters in a string field, unless said otherwise


def _protocol_error(field, what):
    return OSError(errno.EPROTO, f"malformed request: {field}: {what}")


def request(msg, required=True):
    """The request's payload as a dict.

    Without a payload, ``{}`` when ``required`` is false; anything else that
    is not a JSON object is ``EPROTO``.
    """
    try:
        req = msg.get_object()
    except OSError:
        raise
    except (ValueError, RecursionError):
        raise OSError(errno.EPROTO, "malformed request: payload is not valid JSON") from None
    if req is None and not required:
        return {}
    if not isinstance(req, dict):
        raise OSError(errno.EPROTO, "malformed request: payload must be a JSON object")
    return req


def _get(req, field, default):
    value = req.get(field, MISSING)
    if value is MISSING or (value is None and default is not MISSING):
        if default is MISSING:
            raise _protocol_error(field, "missing")
        return default, True
    return value, False


def integer(req, field, default=MISSING, lo=INT64_MIN, hi=INT64_MAX):
    """An integer field within ``[lo, hi]`` (``EINVAL`` outside)."""
    value, defaulted = _get(req, field, default)
    if defaulted:
        return value
    if type(value) is not int:
        raise _protocol_error(field, "must be an integer")
    if not lo <= value <= hi:
        raise OSError(errno.EINVAL, f"{field}: {value} is out of range [{lo}:{hi}]")
    return value


def jobid(req, field="id", default=MISSING):
    """A job id: an integer in ``[0, JOBID_MAX]``.

    An id beyond what the store can hold cannot name any job: ``EPROTO``,
    as upstream answers an id that does not decode.
    """
    value, defaulted = _get(req, field, default)
    if defaulted:
        return value
    if type(value) is not int or not 0 <= value <= JOBID_MAX:
        raise _protocol_error(field, "not a valid job id")
    return value


def number(req, field, default=MISSING, lo=None, hi=None):
    """An int or float field (``bool`` excluded), finite, within bounds."""
    value, defaulted = _get(req, field, default)
    if defaulted:
        return value
    if type(value) not in (int, float) or value != value or value in (
            float("inf"), float("-inf")):
        raise _protocol_error(field, "must be a finite number")
    if type(value) is int and not INT64_MIN <= value <= INT64_MAX:
        raise OSError(errno.EINVAL, f"{field}: {value} is out of range")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise OSError(errno.EINVAL, f"{field}: {value} is out of range")
    return value


def string(req, field, default=MISSING, max_length=STRING_MAX):
    """A string field of at most ``max_length`` characters."""
    value, defaulted = _get(req, field, default)
    if defaulted:
        return value
    if type(value) is not str:
        raise _protocol_error(field, "must be a string")
    if len(value) > max_length:
        raise OSError(errno.EINVAL, f"{field}: longer than {max_length} characters")
    return value


def strings(req, field, default=MISSING, max_count=1 << 16):
    """A list of strings."""
    value, defaulted = _get(req, field, default)
    if defaulted:
        return value
    if type(value) is not list or not all(type(v) is str for v in value):
        raise _protocol_error(field, "must be a list of strings")
    if len(value) > max_count:
        raise OSError(errno.EINVAL, f"{field}: more than {max_count} entries")
    return value


def boolean(req, field, default=MISSING):
    """A boolean field; 0 and 1 are accepted as upstream's C API does."""
    value, defaulted = _get(req, field, default)
    if defaulted:
        return value
    if type(value) is bool:
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise _protocol_error(field, "must be a boolean")


def optional_dict(req, field):
    """A JSON object field, or None when absent."""
    value, defaulted = _get(req, field, None)
    if defaulted:
        return None
    if type(value) is not dict:
        raise _protocol_error(field, "must be a JSON object")
    return value
