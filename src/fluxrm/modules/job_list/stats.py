"""job-list's counters (a part of job-list): ``JobStats``, the numbers
``job-list.job-stats`` answers, kept incrementally: jobs by state and the
inactive ones by result, in all and per queue, and the purged ones.  No I/O.

A job is counted in the state it is in (not while NEW); an inactive one
also by its result.  Purged jobs leave the inactive counts and add to
``purged`` (in the totals only; a queue's own ``inactive_purged`` stays 0).
"""

from flux.constants import (
    FLUX_JOB_RESULT_CANCELED,
    FLUX_JOB_RESULT_COMPLETED,
    FLUX_JOB_RESULT_FAILED,
    FLUX_JOB_RESULT_TIMEOUT,
)
from flux.job import state as jobstates
from fluxrm.jobstate import CLEANUP, DEPEND, INACTIVE, NEW, PRIORITY, RUN, SCHED

STAT_STATES = tuple((name.lower(), mask) for mask, name, *_ in jobstates.STATES
                    if mask != NEW)
RESULT_STAT = {
    FLUX_JOB_RESULT_COMPLETED: "successful",
    FLUX_JOB_RESULT_FAILED: "failed",
    FLUX_JOB_RESULT_CANCELED: "canceled",
    FLUX_JOB_RESULT_TIMEOUT: "timeout",
}


class Counts:
    __slots__ = ("states", "results", "purged")

    def __init__(self):
        self.states = dict.fromkeys((DEPEND, PRIORITY, SCHED, RUN, CLEANUP,
                                     INACTIVE), 0)
        self.results = dict.fromkeys(RESULT_STAT, 0)
        self.purged = 0

    def to_dict(self):
        states = {name: self.states[s] for name, s in STAT_STATES}
        states["total"] = sum(self.states.values())
        out = {"job_states": states}
        for result, name in RESULT_STAT.items():
            out[name] = self.results[result]
        out["inactive_purged"] = self.purged
        return out


class JobStats:
    """``total``: the ``Counts`` of every job; ``queues``: queue -> its own."""

    def __init__(self):
        self.total = Counts()
        self.queues = {}

    def _queue(self, queue):
        counts = self.queues.get(queue)
        if counts is None:
            counts = self.queues[queue] = Counts()
        return counts

    def count_state(self, rec, old, new):
        """Job ``rec`` (a ``JobRecord``, in queue ``rec.queue``) went from
        state ``old`` to ``new``."""
        targets = (self.total,) if rec.queue is None else (
            self.total, self._queue(rec.queue))
        for counts in targets:
            if old != NEW:
                counts.states[old] -= 1
            if new != NEW:
                counts.states[new] += 1
            if new == INACTIVE:
                counts.results[rec.view.result()] += 1

    def move_queue(self, state, old_queue, new_queue):
        """A ``jobspec-update`` moved a job in ``state`` to another queue."""
        if state == NEW:
            return
        if old_queue is not None:
            self._queue(old_queue).states[state] -= 1
        if new_queue is not None:
            self._queue(new_queue).states[state] += 1

    def count_inactive(self, rows):
        """Add ``n`` inactive jobs per ``(queue, result, n)`` (-1: one
        purged); a result unknown here counts as failed."""
        for queue, result, n in rows:
            targets = (self.total,) if queue is None else (
                self.total, self._queue(queue))
            for counts in targets:
                counts.states[INACTIVE] += n
                if result in counts.results:
                    counts.results[result] += n
                else:
                    counts.results[FLUX_JOB_RESULT_FAILED] += n

    def to_dict(self):
        out = self.total.to_dict()
        out["queues"] = [dict(counts.to_dict(), name=name)
                         for name, counts in sorted(self.queues.items())]
        return out
