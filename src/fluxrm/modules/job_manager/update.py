"""``job-manager.update``: change a pending job's jobspec, or a running
job's duration (a part of job-manager, ``JobManager``'s base class
``Update``).

RPC topic (guests too, on their own jobs):

- ``job-manager.update`` {id, updates: {key: value...}, dry_run?} -> {}
  (with ``dry_run``: {jobspec}, the jobspec the update would give, and
  nothing changes)

Keys: ``attributes.system.duration`` (seconds, a number >= 0, 0:
unlimited), ``attributes.system.queue`` (a configured queue, enabled)
and ``attributes.system.job.name`` (a string).  The updated jobspec must
pass its queue's limits (``fluxrm.modules.job_manager.limits``), as a
submission would.

A pending job (DEPEND, PRIORITY or SCHED): the update is posted as one
``jobspec-update`` event (job-list shows the new values; a restart
replays it); the job gets the updated ``JobRequest``, and a job already
asked for at sched is asked for again with it.

A running job (RUN): only its duration, and only by the instance owner
(as upstream).  Its new expiration is R's ``starttime`` plus the new
duration (no later than a nested instance's own ``resource.expiration``;
a duration of 0 is unlimited, or that instance expiration); one in the
past is refused.  ``jobspec-update`` then ``resource-update
{expiration}`` are posted, and job-exec (the job's timer, an
``expiration`` item of the exec protocol) and sched (its record of the
job's end, for backfill reservations; an ``expiration`` item of the
scheduler protocol) learn the new end.  The stored R stays as allocated:
``job-info.lookup`` with FLUX_JOB_LOOKUP_CURRENT applies the event.

Errors: ENOENT "unknown job id" / "job is inactive", EPERM for another
user's job and for a guest updating a running job, EINVAL "update of KEY
is not supported", "KEY: ..." for a value of the wrong type, a limit's or
queue's message, "job is not pending" (a job in CLEANUP, or a running
job's other keys), "new expiration would be in the past (the job has
run for ...)".
"""

import errno
import math
import time

from flux.constants import FLUX_ROLE_OWNER
from fluxrm.broker import payload
from fluxrm.broker.service import request_handler
from fluxrm.jobstate import DEPEND, NEW, PRIORITY, RUN, SCHED
from flux._format import fsd
from fluxrm.modules.job_manager.limits import (DURATION_KEY, QUEUE_KEY, einval,
                                               updated_request)

NAME_KEY = "attributes.system.job.name"
PENDING = (NEW, DEPEND, PRIORITY, SCHED)


def _check_value(key, value):
    if key == DURATION_KEY:
        if (type(value) not in (int, float) or math.isnan(value)
                or not 0 <= value < (1 << 31)):
            raise einval(f"{key}: must be a number of seconds >= 0 and < 2**31")
    elif key in (QUEUE_KEY, NAME_KEY):
        if not isinstance(value, str) or (key == NAME_KEY and not value):
            raise einval(f"{key}: must be a non-empty string")
    else:
        raise einval(f"update of {key} is not supported")


class Update:
    """The handler; it uses ``JobManager``'s ``_job_for_request``,
    ``queue_config``, ``disabled_queues``, ``post``, ``sched_reask``."""

    @request_handler("update", allow_guest=True)
    def h_update(self, msg):
        req = payload.request(msg)
        jobid = payload.jobid(req)
        updates = payload.optional_dict(req, "updates")
        dry_run = payload.boolean(req, "dry_run", False)
        if not updates:
            raise OSError(errno.EPROTO, "malformed request: updates: required,"
                          " a non-empty object")
        job = self._job_for_request(msg, jobid, errno.ENOENT)
        for key, value in updates.items():
            _check_value(key, value)
        if job.state == RUN and DURATION_KEY in updates:
            self._update_running(msg, job, updates, dry_run)
            return
        if job.state not in PENDING:
            raise einval("job is not pending")
        request = updated_request(job.request, [updates])
        config = self.queue_config
        old_queue = config.queue_of(job.request)
        queue = config.check(request)
        if queue != old_queue and queue in self.disabled_queues:
            raise einval(self.disabled_text(queue))
        if dry_run:
            self.respond(msg, {"jobspec": request.jobspec})
            return
        job.request = request
        self.post(job, "jobspec-update", dict(updates))
        if job.state == SCHED:
            if job.id in self.alloc_pending:
                self.sched_reask(job)
            else:  # its queue was stopped (and still may be)
                self.sched_alloc(job)
        self.respond(msg, {})

    def _update_running(self, msg, job, updates, dry_run):
        """A running job's new duration: its new expiration, everywhere."""
        if not msg.rolemask & FLUX_ROLE_OWNER:
            raise OSError(errno.EPERM, "only the instance owner may update"
                          " a running job's duration")
        if len(updates) > 1:
            raise einval("only the duration of a running job may be updated")
        request = updated_request(job.request, [updates])
        self.queue_config.check(request)
        duration = updates[DURATION_KEY]
        execution = (job.R or {}).get("execution") or {}
        start = execution.get("starttime") or job.view.t_alloc or time.time()
        expiration = self._instance_expiration()
        if duration > 0 and (not expiration or start + duration < expiration):
            expiration = start + duration
        now = time.time()
        if expiration and expiration <= now:
            raise einval(f"new expiration would be in the past (the job has"
                         f" run for {fsd(now - start)})")
        if dry_run:
            self.respond(msg, {"jobspec": request.jobspec})
            return
        job.request = request
        self.post(job, "jobspec-update", dict(updates))
        self.post(job, "resource-update", {"expiration": expiration})
        self.exec_expiration(job, expiration)
        self.sched_expiration(job, expiration)
        self.respond(msg, {})

    def _instance_expiration(self):
        """A nested instance's own end (broker attribute
        ``resource.expiration``), 0.0 if none: no job's R ends later."""
        try:
            return float(self.broker.attr("resource.expiration") or 0.0)
        except (TypeError, ValueError, AttributeError):
            return 0.0
