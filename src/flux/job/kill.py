"""Signalling, cancelling and raising exceptions on jobs.

- ``kill_async(h, jobid, signum=None)`` / ``kill``: send a signal (default
  SIGTERM) to the tasks of a running job (``job-manager.kill``).  Errors are
  ``OSError(EINVAL)``: unknown job, inactive, not running, bad signal.
- ``job_raise_async(h, jobid, exc_type, severity=0, note=None)`` /
  ``job_raise``: post an exception (``job-manager.raise``).  A severity-0
  exception ends the job.  A severity outside 0-7 or a type that is empty,
  contains whitespace or ``=`` gives ``OSError(EPROTO)``; an unknown or
  inactive job ``OSError(ENOENT)``.
- ``cancel_async(h, jobid, reason=None)`` / ``cancel``: a severity-0
  ``cancel`` exception with ``reason`` as the note.

The ``_async`` forms return a ``flux.future.Future``; the others wait and
return ``None``.  ``jobid`` is converted with ``int()`` first.
"""

import errno
import signal

from flux.future import Future

__all__ = [
    "kill_async", "kill", "cancel_async", "cancel", "job_raise_async", "job_raise",
]


def _check_handle(flux_handle):
    if flux_handle is None:
        raise OSError(errno.EINVAL, "flux handle must not be None")


def kill_async(flux_handle, jobid, signum=None):
    """Send ``signum`` (SIGTERM if falsy) to job ``jobid``; return a Future."""
    jobid = int(jobid)
    _check_handle(flux_handle)
    if not signum:
        signum = signal.SIGTERM
    signum = int(signum)
    if signum < 1 or signum >= signal.NSIG:
        raise OSError(errno.EINVAL, "Invalid signal number")
    return Future(flux_handle.rpc("job-manager.kill", {"id": jobid, "signum": signum}))


def kill(flux_handle, jobid, signum=None):
    """Send ``signum`` (SIGTERM if falsy) to job ``jobid`` and wait."""
    return kill_async(flux_handle, jobid, signum).get()


def _valid_type(exc_type):
    return (isinstance(exc_type, str) and exc_type != ""
            and "=" not in exc_type and not any(c.isspace() for c in exc_type))


def job_raise_async(flux_handle, jobid, exc_type, severity=0, note=None):
    """Raise an exception of type ``exc_type`` on a job; return a Future."""
    jobid = int(jobid)
    _check_handle(flux_handle)
    if isinstance(severity, bool) or not isinstance(severity, int) \
            or not 0 <= severity <= 7:
        raise OSError(errno.EPROTO, "exception severity must be 0-7")
    if not _valid_type(exc_type):
        raise OSError(errno.EPROTO,
                      "exception type must be non-empty, without whitespace or '='")
    payload = {"id": jobid, "type": exc_type, "severity": severity}
    if note is not None:
        payload["note"] = str(note)
    return Future(flux_handle.rpc("job-manager.raise", payload))


def job_raise(flux_handle, jobid, exc_type, severity=0, note=None):
    """Raise an exception on a job and wait for the acknowledgement."""
    return job_raise_async(flux_handle, jobid, exc_type, severity, note).get()


def cancel_async(flux_handle, jobid, reason=None):
    """Cancel a job (a severity-0 ``cancel`` exception); return a Future."""
    return job_raise_async(flux_handle, jobid, "cancel", 0, reason or "")


def cancel(flux_handle, jobid, reason=None):
    """Cancel a job and wait for the acknowledgement."""
    return cancel_async(flux_handle, jobid, reason).get()
