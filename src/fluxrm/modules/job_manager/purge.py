"""Purging inactive jobs (a part of job-manager, ``JobManager``'s base class
``Purge``): the job-manager's ``purge`` and ``purge-id`` topics.

Inactive jobs stay in the store until purged.  Both topics are for the
instance owner only (EPERM otherwise):

- ``job-manager.purge`` {age_limit?, num_limit?, batch?, force?}
  -> {count, remaining}.  The candidates are the inactive jobs that became
  inactive more than ``age_limit`` seconds ago, and the oldest ones past the
  newest ``num_limit`` (a limit < 0 or absent is no limit; no limit at all
  means no candidates).  A job still waitable (``wait`` not yet called)
  is never a candidate.  With ``force`` the ``batch`` (default 50, at most
  1000) oldest candidates are purged and ``count`` is how many were;
  without, nothing is purged and ``count`` is how many would be.
  ``remaining`` is the number of inactive jobs left.  EINVAL for a bad
  value.
- ``job-manager.purge-id`` {jobs: [id...], force?} -> {count, errors:
  [[id, text]...]}: the same for the given jobs; an active, still waitable
  or unknown job is an error, not a purge.  EPROTO unless ``jobs`` is a list
  of ids (integers in ``[0, 2**63)``).

A purged job is gone: its row is deleted, and its jobspec text too unless
another job shares it.  The journal's subscribers learn of each purge
(``on_purge``, see ``fluxrm.modules.job_manager.journal``: job-list updates
its counts).  The number purged so far is kept in the store
(``JobStore.purged_total``).  The rows are read and deleted through the job
store (``fluxrm.jobstore``).
"""

import errno
import time

from fluxrm.broker import payload
from fluxrm.broker.service import request_handler
from fluxrm.jobstate import INACTIVE

__all__ = ["Purge"]

DEFAULT_BATCH = 50
MAX_BATCH = 1000


def _number(req, key, default, kind):
    value = req.get(key, default)
    what = "an integer" if kind is int else "a number"
    if isinstance(value, bool) or not isinstance(value, kind):
        raise OSError(errno.EINVAL, f"purge: {key} must be {what}")
    # the limits meet SQLite and time arithmetic: keep them finite, 64 bits
    if not payload.INT64_MIN <= value <= payload.INT64_MAX:
        raise OSError(errno.EINVAL, f"purge: {key} must be {what} in 64 bits")
    return value


class Purge:
    """The purge handlers; they use ``JobManager``'s ``jobstore``,
    ``active``, ``recent``, ``zombies``, ``flush``, ``purge_subscribers``
    and ``respond``."""

    # -- requests (owner only) -----------------------------------------------------------
    @request_handler("purge")
    def h_purge(self, msg):
        req = payload.request(msg)
        age_limit = _number(req, "age_limit", -1, (int, float))
        num_limit = _number(req, "num_limit", -1, int)
        batch = _number(req, "batch", DEFAULT_BATCH, int)
        if not 0 < batch <= MAX_BATCH:
            raise OSError(errno.EINVAL, f"purge: batch must be in [1:{MAX_BATCH}]")
        self.flush()  # every inactive job has its row
        selected, total = self._selected(age_limit, num_limit)
        if payload.boolean(req, "force", False):
            count = self._purge(self._purgeable(selected, batch))
            total -= count
        else:
            count = len(self._purgeable(selected))
        self.respond(msg, {"count": count, "remaining": total})

    @request_handler("purge-id")
    def h_purge_id(self, msg):
        req = payload.request(msg)
        jobs = req.get("jobs")
        if not isinstance(jobs, list) or not all(
                type(j) is int and 0 <= j <= payload.JOBID_MAX for j in jobs):
            raise OSError(errno.EPROTO, "job-manager.purge-id: jobs must be a list of ids")
        force = payload.boolean(req, "force", False)
        self.flush()  # every inactive job has its row
        ok, errors = [], []
        for jobid in dict.fromkeys(jobs):
            why = self._why_not(jobid)
            if why:
                errors.append([jobid, why])
            else:
                ok.append(jobid)
        count = self._purge(ok) if force else len(ok)
        self.respond(msg, {"count": count, "errors": errors})

    # -- choosing ----------------------------------------------------------------------
    def _selected(self, age_limit, num_limit):
        """(how many of the oldest inactive jobs the limits select, how many
        inactive jobs there are).  Either limit selects a prefix of the
        inactive jobs in the order they ended, so both together select the
        longer prefix."""
        jobstore = self.jobstore
        total = jobstore.count_inactive()
        n = 0
        if num_limit >= 0:
            n = max(n, total - num_limit)
        if age_limit >= 0:
            old = jobstore.count_inactive(ended_before=time.time() - age_limit)
            n = max(n, old)
        return n, total

    def _purgeable(self, n, most=None):
        """Ids among the ``n`` oldest inactive jobs that may be purged (not
        still waitable), oldest first, ``most`` of them at most."""
        out = []
        if n <= 0:
            return out
        for jobid, wait_pending in self.jobstore.oldest_inactive(n):
            if not wait_pending and jobid not in self.zombies:
                out.append(jobid)
                if most is not None and len(out) >= most:
                    break
        return out

    def _why_not(self, jobid):
        if jobid in self.active:
            return "cannot purge an active job"
        if jobid in self.zombies:
            return "cannot purge a job not yet waited for"
        state = self.jobstore.state_of(jobid)
        if state is None:
            return "unknown job id"
        if state != INACTIVE:
            return "cannot purge an active job"
        return None

    # -- purging -----------------------------------------------------------------------
    def _purge(self, ids):
        if not ids:
            return 0
        purged = self.jobstore.purge(ids)
        for jobid, _info in purged:
            self.recent.pop(jobid, None)
        self.jobstore.add_purged(len(purged))
        for on_purge in self.purge_subscribers:
            on_purge(purged)
        return len(purged)
