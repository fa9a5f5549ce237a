"""Job results and waiting: ``result_async``/``result`` and ``wait_async``/``wait``.

``result_async(h, jobid)`` works for any job, any number of times: it
watches the job's main eventlog to its end and accumulates a dict
(``id``, ``t_submit``, ``t_run`` from ``alloc``, ``t_cleanup`` and
``waitstatus`` from ``finish``, ``exception_*``, and ``result``).
``JobResultFuture.get_dict()`` returns that dict and ``get_info()`` a
``flux.job.info.JobInfo`` made from it.

``wait_async(h, jobid=FLUX_JOBID_ANY)`` asks the job manager for the
result of a job submitted with ``waitable=True`` (each result is consumed
once); ``wait()`` and ``wait_get_status()`` return a ``JobWaitResult``
``(jobid, success, errstr)`` whose ``errstr`` is ``bytes``.
"""

import collections
import errno

from flux.constants import (
    FLUX_JOB_RESULT_CANCELED,
    FLUX_JOB_RESULT_COMPLETED,
    FLUX_JOB_RESULT_FAILED,
    FLUX_JOB_RESULT_TIMEOUT,
    FLUX_JOBID_ANY,
)
from flux.future import Future
from flux.job.event import EventLogEvent, _ComposedFuture, _watch

__all__ = [
    "JobWaitResult",
    "JobWaitFuture",
    "JobResultFuture",
    "wait_async",
    "wait",
    "wait_get_status",
    "result_async",
    "result",
]

JobWaitResult = collections.namedtuple("JobWaitResult", "jobid success errstr")


# -- result ---------------------------------------------------------------------------
class _ResultAccumulator:
    """Fold main eventlog events into the dict that ``result()`` reports."""

    def __init__(self, jobid):
        self.data = {"id": int(jobid), "exception_occurred": False}

    def add(self, event):
        if not isinstance(event, EventLogEvent):
            event = EventLogEvent(event)
        name = event.name
        data = self.data
        if name == "submit":
            data["t_submit"] = event.timestamp
        elif name == "alloc":
            data["t_run"] = event.timestamp
        elif name == "finish":
            data["t_cleanup"] = event.timestamp
            data["waitstatus"] = event.context.get("status", 0)
        elif name == "exception":
            ctx = event.context
            severity = ctx.get("severity", 0)
            stored = data.get("exception_severity")
            # a later exception replaces the stored one unless the stored
            # one has a severity > 0 that is lower than the new one
            if not (data["exception_occurred"] and 0 < stored < severity):
                data["exception_type"] = ctx.get("type")
                data["exception_note"] = ctx.get("note", "")
                data["exception_severity"] = severity
            data["exception_occurred"] = True

    def result(self):
        data = dict(self.data)
        if data.get("t_run", 0) > 0 and data.get("waitstatus") == 0:
            res = FLUX_JOB_RESULT_COMPLETED
        elif data["exception_occurred"] and data.get("exception_type") == "cancel":
            res = FLUX_JOB_RESULT_CANCELED
        elif data["exception_occurred"] and data.get("exception_type") == "timeout":
            res = FLUX_JOB_RESULT_TIMEOUT
        else:
            res = FLUX_JOB_RESULT_FAILED
        data["result"] = res
        return data


def result_from_events(jobid, events):
    """The ``result()`` dict of job ``jobid`` given its whole main eventlog."""
    acc = _ResultAccumulator(jobid)
    for event in events:
        acc.add(event)
    return acc.result()


def _result_init(future, jobid):
    acc = _ResultAccumulator(jobid)
    try:
        watch = _watch(future.get_flux(), jobid, "eventlog")
    except OSError as exc:
        future.fulfill_error(exc.errno, exc.strerror)
        return

    def on_event(w):
        try:
            event = w.get_event()
        except OSError as exc:
            w.stop()
            future.fulfill_error(exc.errno, exc.strerror)
            return
        if event is None:
            w.stop()
            future.fulfill(acc.result())
        else:
            acc.add(event)

    watch.then(on_event)


class JobResultFuture(_ComposedFuture):
    """The result of a job, once its main eventlog has ended.

    ``get()`` waits and returns ``None``; ``get_dict()`` returns the result
    dict; ``get_info()`` a ``flux.job.info.JobInfo``.
    """

    def __init__(self, flux_handle, jobid):
        self.jobid = int(jobid)
        super().__init__(_result_init, self.jobid, flux_handle=flux_handle)

    def get(self):
        self._head()
        return None

    def get_dict(self):
        return dict(self._head())

    def get_info(self):
        from flux.job.info import JobInfo

        return JobInfo(self.get_dict())


def result_async(flux_handle, jobid, flags=0):
    """Return a ``JobResultFuture`` for job ``jobid`` (any job, any time)."""
    jobid = int(jobid)
    if flux_handle is None:
        raise OSError(errno.EINVAL, "flux handle must not be None")
    return JobResultFuture(flux_handle, jobid)


def result(flux_handle, jobid, flags=0):
    """Wait for job ``jobid`` to become inactive; return its ``JobInfo``."""
    return result_async(flux_handle, jobid, flags).get_info()


# -- wait -------------------------------------------------------------------------------
class JobWaitFuture(Future):
    """The answer to ``job-manager.wait``.  ``get()`` returns ``None``."""

    def get_status(self):
        """Return the ``JobWaitResult``; raise ``ChildProcessError`` on error."""
        from flux.rpc import RPC

        rsp = RPC.get(self)
        errstr = rsp.get("errstr") or ""
        if isinstance(errstr, str):
            errstr = errstr.encode("utf-8")
        return JobWaitResult(int(rsp["id"]), bool(rsp["success"]), errstr)


def wait_async(flux_handle, jobid=FLUX_JOBID_ANY):
    """Wait for a waitable job (``FLUX_JOBID_ANY``: any); return a future."""
    jobid = int(jobid)
    if flux_handle is None:
        raise OSError(errno.EINVAL, "flux handle must not be None")
    return JobWaitFuture(flux_handle.rpc("job-manager.wait", {"id": jobid}))


def wait_get_status(future):
    """Return the ``JobWaitResult`` of a ``JobWaitFuture``."""
    if future is None:
        raise OSError(errno.EINVAL, "future must not be None")
    return future.get_status()


def wait(flux_handle, jobid=FLUX_JOBID_ANY):
    """Wait for a waitable job to finish; return its ``JobWaitResult``."""
    return wait_async(flux_handle, jobid).get_status()
