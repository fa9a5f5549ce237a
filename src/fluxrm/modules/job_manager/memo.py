"""Memos on jobs (a part of job-manager, ``JobManager``'s base class
``Memo``): ``job-manager.memo`` {id, memo, volatile?} -> {}.

A memo is a small JSON object of user data attached to an active job: it
is posted as a ``memo`` event whose context is ``memo``, and job-list folds
it into the job's ``annotations.user`` (a ``null`` value removes that key),
so it shows in ``flux jobs -o {user.KEY}``.  A child Flux instance
publishes its URI this way (``{"uri": ...}``, ``fluxrm.broker.nested``).

- the instance owner may annotate any job, a guest only their own (EPERM);
- ``memo`` must be a non-empty JSON object (EPROTO if it is not an object,
  EINVAL if it is empty); ``volatile`` a boolean;
- an unknown job is ENOENT "unknown job id"; a job that is no longer
  active EINVAL "job is inactive";
- ``volatile``: the event goes to the journal (job-list and other
  followers see it) but not to the stored eventlog, so it is forgotten
  when the instance restarts.
"""

import errno

from flux.constants import FLUX_ROLE_OWNER
from fluxrm import jobstate
from fluxrm.broker import payload
from fluxrm.broker.service import request_handler
from fluxrm.job import make_event


class Memo:
    """The memo handler; it uses ``JobManager``'s ``active``, ``find``,
    ``load_inactive``, ``post``, ``subscribers``, ``journal``,
    ``_journal_add`` and ``respond``."""

    @request_handler("memo", allow_guest=True)
    def h_memo(self, msg):
        req = payload.request(msg)
        jobid = payload.jobid(req)
        memo = payload.optional_dict(req, "memo")
        if memo is None:
            raise OSError(errno.EPROTO, "malformed request: memo: missing")
        if not memo:
            raise OSError(errno.EINVAL, "memo must not be empty")
        volatile = payload.boolean(req, "volatile", False)
        job = self.active.get(jobid)
        if job is None:
            if self.find(jobid) is not None or self.load_inactive(jobid, "id"):
                raise OSError(errno.EINVAL, "job is inactive")
            raise OSError(errno.ENOENT, "unknown job id")
        if msg.userid != job.userid and not msg.rolemask & FLUX_ROLE_OWNER:
            raise OSError(errno.EPERM, "guests can only add memos to their own jobs")
        if volatile:
            self.post_volatile(job, "memo", memo)
        else:
            self.post(job, "memo", memo)
        self.respond(msg, {})

    def post_volatile(self, job, name, context):
        """Tell the journal's followers of an event without storing it in
        the job's eventlog (it must not change the job's state)."""
        event = make_event(name, context)
        jobstate.apply(job.view, event)
        for on_entry in self.subscribers:
            on_entry(job.id, event, None)
        if self.journal:
            self._journal_add(job, event)
