"""Submitting jobs: ``submit_async``, ``submit``, ``submit_get_id``.

A job is submitted to ``job-ingest.submit`` as ``{J, urgency, flags}``,
where ``J`` is the jobspec signed by the submitter.  Without a security
library the owner uses "none" signing (``sign_none``):
``<base64 header>.<base64 jobspec>.none``, the header being the NUL
separated key/typed-value pairs ``version i1 userid i<uid> mechanism snone``.
``pre_signed=True`` sends the given jobspec as ``J`` unchanged.

``SubmitFuture.get()`` is the base method and returns ``None``; use
``get_id()`` (or ``submit_get_id(future)``) for the new ``JobID``.
"""

import base64
import errno
import functools
import os

from flux.constants import (
    FLUX_JOB_DEBUG,
    FLUX_JOB_NOVALIDATE,
    FLUX_JOB_PRE_SIGNED,
    FLUX_JOB_URGENCY_DEFAULT,
    FLUX_JOB_WAITABLE,
)
from flux.future import Future

__all__ = ["SubmitFuture", "submit_async", "submit", "submit_get_id", "sign_none"]


def _kv_encode(pairs):
    """Encode ``(key, typed value)`` pairs the way libutil's kv does."""
    out = bytearray()
    for key, value in pairs:
        if isinstance(value, bool):
            raise TypeError("booleans are not supported")
        if isinstance(value, int):
            typed = f"i{value}"
        else:
            typed = f"s{value}"
        out += key.encode() + b"\0" + typed.encode() + b"\0"
    return bytes(out)


def sign_none(payload, userid=None):
    """Wrap ``payload`` (bytes or str) in a "none" signature for ``userid``."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    if userid is None:
        userid = os.getuid()
    return "{}.{}.none".format(
        _none_header(int(userid)),
        base64.b64encode(payload).decode("ascii"),
    )


@functools.lru_cache(maxsize=64)
def _none_header(userid):
    """The base64 header of a "none" signature by ``userid``."""
    header = _kv_encode([("version", 1), ("userid", userid), ("mechanism", "none")])
    return base64.b64encode(header).decode("ascii")


def unwrap_none(signed):
    """Return the payload (bytes) of a "none"-signed string."""
    if isinstance(signed, bytes):
        signed = signed.decode("utf-8")
    parts = signed.split(".")
    if len(parts) != 3:
        raise ValueError("J is not a signed jobspec")
    return base64.b64decode(parts[1])


class SubmitFuture(Future):
    """The future of a submission.  ``get()`` returns ``None``."""

    def get_id(self):
        """Wait for the submission and return the new job's ``JobID``."""
        from flux.job.JobID import JobID
        from flux.rpc import RPC

        return JobID(RPC.get(self)["id"])


def _encode_jobspec(jobspec):
    if jobspec is None:
        raise OSError(errno.EINVAL, "jobspec must not be None")
    if isinstance(jobspec, (bytes, bytearray)):
        return bytes(jobspec)
    if isinstance(jobspec, str):
        try:
            return jobspec.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate (surrogateescape)
            raise OSError(errno.EINVAL, "jobspec is not valid UTF-8 text: "
                          f"{exc.object[exc.start:exc.end]!r} at offset {exc.start}"
                          ) from None
    from flux.job.Jobspec import Jobspec

    if isinstance(jobspec, Jobspec):
        return jobspec.dumps().encode("utf-8")
    raise TypeError("jobspec must be a Jobspec, str or bytes")


def submit_async(flux_handle, jobspec, urgency=FLUX_JOB_URGENCY_DEFAULT,
                 waitable=False, debug=False, pre_signed=False, novalidate=False):
    """Submit ``jobspec`` (a ``Jobspec``, ``str`` or ``bytes``).

    Returns a ``SubmitFuture``.  ``waitable`` and ``novalidate`` are for the
    instance owner only.  With ``pre_signed`` the jobspec is already signed
    and sent as is.
    """
    data = _encode_jobspec(jobspec)
    if flux_handle is None:
        raise OSError(errno.EINVAL, "flux handle must not be None")
    flags = 0
    if waitable:
        flags |= FLUX_JOB_WAITABLE
    if debug:
        flags |= FLUX_JOB_DEBUG
    if pre_signed:
        flags |= FLUX_JOB_PRE_SIGNED
    if novalidate:
        flags |= FLUX_JOB_NOVALIDATE
    if pre_signed:
        J = data.decode("utf-8")
    else:
        J = sign_none(data)
    rpc = flux_handle.rpc("job-ingest.submit",
                          {"J": J, "urgency": int(urgency), "flags": flags})
    return SubmitFuture(rpc)


def submit_get_id(future):
    """Wait for a ``SubmitFuture`` and return the ``JobID``."""
    if future is None:
        raise OSError(errno.EINVAL, "future must not be None")
    return future.get_id()


def submit(flux_handle, jobspec, urgency=FLUX_JOB_URGENCY_DEFAULT, waitable=False,
           debug=False, pre_signed=False):
    """Submit ``jobspec`` and return its ``JobID`` (see ``submit_async``)."""
    future = submit_async(flux_handle, jobspec, urgency=urgency, waitable=waitable,
                          debug=debug, pre_signed=pre_signed)
    return future.get_id()
