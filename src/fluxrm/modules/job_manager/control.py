"""Requests that act on jobs (a part of job-manager, ``JobManager``'s base
class ``Control``): ``raise``, ``kill`` and ``urgency`` (any user, on their
own jobs; the instance owner on any) and ``raiseall`` (owner only).  See
``fluxrm.modules.job_manager`` for the topics.

A request naming a job that is not active fails: ENOENT (EINVAL for
``kill``) "job is inactive" if it is known, else "unknown job id"; a guest
acting on another user's job gets EPERM.
"""

import errno
import signal

from flux.constants import FLUX_ROLE_OWNER
from fluxrm import jobstate
from fluxrm.broker import payload
from fluxrm.broker.service import request_handler
from fluxrm.jobstate import CLEANUP, DEPEND, INACTIVE, NEW, PRIORITY, RUN, SCHED


class Control:
    """The handlers; they use ``JobManager``'s ``active``, ``find``,
    ``load_inactive``, ``post``, ``raise_exception``, ``exec_running``,
    ``exec_kill`` and ``respond``."""

    def _job_for_request(self, msg, jobid, errnum):
        job = self.active.get(jobid)
        if job is None:
            if self.find(jobid) is not None or self.load_inactive(jobid, "id"):
                raise OSError(errnum, "job is inactive")
            raise OSError(errnum, "unknown job id")
        if msg.userid != job.userid and not msg.rolemask & FLUX_ROLE_OWNER:
            raise OSError(errno.EPERM, "guests can only act on their own jobs")
        return job

    @staticmethod
    def exception_args(req):
        """``(type, severity, note)`` of a raise request."""
        severity = req.get("severity", 0)
        if type(severity) is not int or not 0 <= severity <= 7:
            raise OSError(errno.EPROTO, "severity must be 0-7")
        etype = req.get("type")
        if (type(etype) is not str or not etype
                or any(c.isspace() or c == "=" for c in etype)):
            raise OSError(errno.EPROTO, "invalid exception type")
        return etype, severity, payload.string(req, "note", "")

    @request_handler("raise", allow_guest=True)
    def h_raise(self, msg):
        req = payload.request(msg)
        etype, severity, note = self.exception_args(req)
        job = self._job_for_request(msg, payload.jobid(req), errno.ENOENT)
        self.raise_exception(job, etype, severity, note, userid=msg.userid)
        self.respond(msg, {})

    @request_handler("raiseall")
    def h_raiseall(self, msg):
        req = payload.request(msg)
        etype, severity, note = self.exception_args(req)
        states = (payload.integer(req, "states", 0, 0, 0xFF)
                  or (DEPEND | PRIORITY | SCHED | RUN | NEW))
        userid = payload.integer(req, "userid", None)
        dry_run = payload.boolean(req, "dry_run", False)
        targets = [j for j in self.active.values()
                   if j.state & states and (userid in (None, 0xFFFFFFFF)
                                            or j.userid == userid)]
        if not dry_run:
            for job in targets:
                if job.state != INACTIVE:
                    self.raise_exception(job, etype, severity, note,
                                         userid=msg.userid)
        self.respond(msg, {"count": len(targets), "errors": 0})

    @request_handler("kill", allow_guest=True)
    def h_kill(self, msg):
        req = payload.request(msg)
        signum = req.get("signum")
        if type(signum) is not int or not 0 < signum < signal.NSIG:
            raise OSError(errno.EINVAL, "Invalid signal number")
        job = self._job_for_request(msg, payload.jobid(req), errno.EINVAL)
        if job.state not in (RUN, CLEANUP) or job.id not in self.exec_running:
            raise OSError(errno.EINVAL, "job is not running")
        self.exec_kill(job, signum)
        self.respond(msg, {})

    @request_handler("urgency", allow_guest=True)
    def h_urgency(self, msg):
        req = payload.request(msg)
        urgency = req.get("urgency")
        if type(urgency) is not int or not 0 <= urgency <= 31:
            raise OSError(errno.EINVAL, "urgency range is [0:31]")
        job = self._job_for_request(msg, payload.jobid(req), errno.ENOENT)
        if urgency > 16 and not msg.rolemask & FLUX_ROLE_OWNER:
            raise OSError(errno.EPERM, "only the instance owner can expedite")
        old = job.view.urgency
        if job.state in (RUN, CLEANUP):
            raise OSError(errno.EINVAL, "urgency cannot be changed once the job runs")
        self.post(job, "urgency", {"urgency": urgency, "userid": msg.userid})
        if job.state == PRIORITY:
            # back from SCHED: take the new priority (sched reorders its
            # request, see SchedClient.sched_alloc)
            self.post(job, "priority",
                      {"priority": jobstate.urgency_to_priority(urgency)})
        self.respond(msg, {"old_urgency": old})
