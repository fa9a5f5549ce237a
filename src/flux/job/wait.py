"""Job results and waiting: ``result_async``/``result`` and ``wait_async``/``wait``.

``result_async(h, jobid)`` works for any job, any number of times: it
watches the job's main eventlog to its end, applying each event to a
``flux.eventlog.JobView`` (the replay rule the job manager uses too), and
reports ``flux.eventlog.result_dict``: ``id``, ``t_submit``, ``t_run``
from ``alloc``, ``t_cleanup`` and ``waitstatus`` from ``finish``,
``exception_*`` and ``result``.  ``result_from_events(jobid, events)``
gives the same dict from a list of events.
``JobResultFuture.get_dict()`` returns that dict and ``get_info()`` a
``flux.job.info.JobInfo`` made from it.

``wait_async(h, jobid=FLUX_JOBID_ANY)`` asks the job manager for the
result of a job submitted with ``waitable=True`` (each result is consumed
once); ``wait()`` and ``wait_get_status()`` return a ``JobWaitResult``
``(jobid, success, errstr)`` whose ``errstr`` is ``bytes``.
"""

import collections
import errno

from flux.constants import FLUX_JOBID_ANY
from flux.eventlog import JobView, apply, replay, result_dict
from flux.future import Future
from flux.job.event import _ComposedFuture, _watch

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
def result_from_events(jobid, events):
    """The ``result()`` dict of job ``jobid`` given its whole main eventlog."""
    return result_dict(replay(events), jobid)


def _result_init(future, jobid):
    view = JobView()
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
            future.fulfill(result_dict(view, jobid))
        else:
            apply(view, event)

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
