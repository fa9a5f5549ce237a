"""Waiting for jobs (a part of job-manager, ``JobManager``'s base class
``Wait``): ``job-manager.wait`` {id} -> {id, success, errstr}, owner only.

Only jobs submitted with ``FLUX_JOB_WAITABLE`` can be waited for, each once.
``id`` ``FLUX_JOB_ANY`` waits for any of them: the first inactive one not
yet waited for (a "zombie"), else the next to become inactive; ECHILD if
no waitable job is left for it.  A given id waits for that job: ECHILD if
it is unknown, not waitable, inactive and already waited for, or already
has a waiter.  A zombie's result is kept in memory (``zombies``) and its
row is marked ``wait_pending`` so that it can still be waited for after a
restart (``fluxrm.modules.job_manager.recover``).
"""

import errno

from flux.constants import FLUX_JOBID_ANY
from fluxrm.broker import payload
from fluxrm.broker.service import request_handler
from fluxrm.job import MAIN, wait_errstr


class Wait:
    """The wait handler; it uses ``JobManager``'s ``zombies`` (id ->
    result), ``any_waiters``, ``id_waiters`` (id -> request),
    ``nwaitable_active``, ``active``, ``jobstore``, ``mark`` and
    ``respond``."""

    @staticmethod
    def wait_result(job):
        errstr = wait_errstr(job.view)
        return {"id": job.id, "success": job.view.success(), "errstr": errstr}

    def reap(self, job):
        """A waitable job became inactive: answer its waiter, or keep it."""
        result = self.wait_result(job)
        msg = self.id_waiters.pop(job.id, None)
        if msg is not None:
            self.respond(msg, result)
            return
        if self.any_waiters:
            self.respond(self.any_waiters.popleft(), result)
            return
        self.zombies[job.id] = result
        self.mark(job, MAIN)  # persist wait_pending

    @request_handler("wait")
    def h_wait(self, msg):
        req = payload.request(msg)
        jobid = req.get("id")
        if type(jobid) is not int or jobid != FLUX_JOBID_ANY:
            jobid = payload.jobid(req)
        if jobid == FLUX_JOBID_ANY:
            if self.zombies:
                jobid, result = self.zombies.popitem(last=False)
                self.jobstore.set_waited(jobid)
                self.respond(msg, result)
            elif self.nwaitable_active > len(self.any_waiters) + len(self.id_waiters):
                self.any_waiters.append(msg)
            else:
                raise OSError(errno.ECHILD, "there are no more waitable jobs")
            return
        if jobid in self.zombies:
            result = self.zombies.pop(jobid)
            self.jobstore.set_waited(jobid)
            self.respond(msg, result)
            return
        job = self.active.get(jobid)
        if job is None:
            raise OSError(errno.ECHILD,
                          "invalid job id, or job may be inactive and not waitable")
        if not job.waitable:
            raise OSError(errno.ECHILD, "job was not submitted with FLUX_JOB_WAITABLE")
        if job.id in self.id_waiters:
            raise OSError(errno.ECHILD, "job id already has a waiter")
        self.id_waiters[job.id] = msg
