"""``timeleft(h=None)``: the seconds left before a job's time limit.

The job is ``$FLUX_JOB_ID`` in the instance ``h`` is connected to; without
it, the instance itself, if it runs as a job of a parent instance (its
``jobid`` attribute, looked up in ``parent-uri``).  The answer comes from
``execution.expiration`` in the job's ``R``: ``inf`` when there is no limit
(or no enclosing job at all), ``0.0`` once expired.  A job that has no
``R`` yet (still pending) raises ``OSError``.
"""

import errno
import math
import os
import time

from flux.constants import FLUX_JOB_LOOKUP_CURRENT, FLUX_JOB_LOOKUP_JSON_DECODE

__all__ = ["timeleft"]


def _parse_jobid(value):
    from flux.job.JobID import JobID

    try:
        return int(JobID(value))
    except (ValueError, TypeError, OSError):
        raise OSError(errno.EINVAL, f"invalid jobid '{value}'") from None


def _enclosing_job(flux_handle):
    """Return ``(handle, jobid)`` of the job to ask about, or ``None``."""
    env = os.environ.get("FLUX_JOB_ID")
    if env:
        return flux_handle, _parse_jobid(env)
    try:
        jobid = flux_handle.attr_get("jobid")
    except OSError:
        return None
    try:
        parent_uri = flux_handle.attr_get("parent-uri")
    except OSError:
        return None
    import flux

    return flux.Flux(parent_uri), _parse_jobid(jobid)


def timeleft(flux_handle=None):
    """Return the seconds left for the enclosing job (``inf`` if unlimited)."""
    import flux

    if flux_handle is None:
        flux_handle = flux.Flux()
    found = _enclosing_job(flux_handle)
    if found is None:
        return math.inf
    handle, jobid = found
    payload = {"id": jobid, "keys": ["R"],
               "flags": FLUX_JOB_LOOKUP_JSON_DECODE | FLUX_JOB_LOOKUP_CURRENT}
    try:
        rsp = handle.rpc("job-info.lookup", payload).get()
    except FileNotFoundError:
        raise OSError(errno.ENODATA,
                      f"job {jobid} has no resources allocated (pending?)") from None
    R = rsp.get("R")
    if isinstance(R, str):
        import json

        R = json.loads(R)
    expiration = (R or {}).get("execution", {}).get("expiration", 0) or 0
    if expiration <= 0:
        return math.inf
    return max(0.0, float(expiration) - time.time())
