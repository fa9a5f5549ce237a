"""EASY backfill's arithmetic (a part of sched).

When the highest-priority job does not fit, it gets a reservation: the
earliest time its request fits if the running jobs end at their R's
expiration, and the resources it would take then
(``reservation()``).  A running job without an expiration (no time
limit) never ends as far as this can tell: if the head job needs
resources such a job holds, no reservation can be computed, and nothing
may pass the head job (sched's pass stops there, as without backfill).

Lower-priority jobs (at most ``QUEUE_DEPTH`` of them per pass) may start
ahead of a reservation at time T if they fit now and either end before
T (their duration) or use only what the reservation leaves over at T
(``Caps``: per rank, what is free at T minus what is reserved; a job
running past T takes from it).

``Backfill`` is ``Sched``'s base class with the pass's part of it
(``blocked``, called with the head of the queue that does not fit);
it uses sched's ``queue``, ``entries``, ``ranks``, ``up_ranks``,
``allocations``, ``ending``, ``annotated``, ``try_alloc``, ``allocate``,
``annotate`` and ``unannotate``.

``Ending`` keeps the running jobs ordered by expiration (a sorted list,
bisected on allocation and free), so finding T walks only the jobs
ending before it.
"""

import asyncio
import heapq
import time
from bisect import bisect_left, insort

from fluxrm.modules.sched.placement import plan_counts

INF = float("inf")
QUEUE_DEPTH = 32  # jobs behind a blocked head considered per pass
ANNOTATE_DELAY = 0.05  # s a head stays blocked before it is annotated
REASON_RESOURCES = "insufficient resources"


class Ending:
    """Running jobs by expiration: ``items``, sorted (expiration, id)."""

    def __init__(self):
        self.items = []
        self.key_of = {}

    def add(self, jobid, expiration):
        key = (expiration if expiration and expiration > 0 else INF, jobid)
        self.key_of[jobid] = key
        insort(self.items, key)

    def remove(self, jobid):
        key = self.key_of.pop(jobid, None)
        if key is None:
            return
        items = self.items
        i = bisect_left(items, key)
        if i < len(items) and items[i] == key:
            del items[i]


def reservation(req, allowed, up_ranks, ending, allocations):
    """``(T, plan, state)``: the earliest time ``req`` fits (``plan``:
    ``{rank: (cores, gpus)}`` it would take; ``state``: the counts free
    then), or None if it cannot be told."""
    state = {r.rank: [len(r.free_cores), len(r.free_gpus), r.ncores, r.ngpus]
             for r in up_ranks}
    items = ending.items
    i, n = 0, len(items)
    while i < n:
        t = items[i][0]
        if t == INF:
            return None
        while i < n and items[i][0] == t:
            for rank, (cores, gpus) in allocations.get(items[i][1], {}).items():
                counts = state.get(rank)
                if counts is not None:
                    counts[0] += len(cores)
                    counts[1] += len(gpus)
            i += 1
        plan = plan_counts(req, state, allowed)
        if plan is not None:
            return t, plan, state
    return None


class Caps:
    """What jobs running past a reservation may use, per rank."""

    def __init__(self, plan, state):
        self.left = {}
        for rank, (fc, fg, _nc, _ng) in state.items():
            cores, gpus = plan.get(rank, (0, 0))
            self.left[rank] = [fc - cores, fg - gpus]

    def usable(self, up_ranks):
        """Counts usable now, as ``plan_counts`` takes them."""
        left = self.left
        out = {}
        for r in up_ranks:
            cap = left.get(r.rank)
            if cap is None:
                continue
            out[r.rank] = [min(len(r.free_cores), cap[0]), min(len(r.free_gpus), cap[1]),
                           r.ncores, r.ngpus]
        return out

    def take(self, plan):
        for rank, (cores, gpus) in plan.items():
            cap = self.left[rank]
            cap[0] -= cores
            cap[1] -= gpus


class Backfill:
    """The reservation and the jobs that may pass it (see the module
    docstring)."""

    annotate_delay = ANNOTATE_DELAY
    head_note = None  # (job id, annotations) of the blocked head, not sent yet
    _note_scheduled = False

    def blocked(self, head):
        """The head of the queue does not fit: its reservation (annotated
        as ``t_estimate``), then the jobs behind it that may start ahead."""
        _prio, jobid, request, placement = head
        req = request.shape
        allowed = None if placement is None else placement.allowed(self.ranks,
                                                                   self.generation)
        found = reservation(req, allowed, self.up_ranks, self.ending, self.allocations)
        if found is None:
            self.note_head(jobid, {"reason_pending": REASON_RESOURCES})
            return  # nothing may pass it: when it can start is not known
        t_estimate, plan, state = found
        self.note_head(jobid, {"reason_pending": REASON_RESOURCES,
                               "t_estimate": t_estimate})
        if any(r.free_cores for r in self.up_ranks):
            self.backfill(t_estimate, Caps(plan, state))

    def note_head(self, jobid, sched):
        """The blocked head's annotations, sent ``annotate_delay`` later if
        it is still the blocked head then: while jobs stream through (a
        bulk submission), heads last a pass and are never annotated."""
        self.head_note = (jobid, sched)
        if not self._note_scheduled:
            self._note_scheduled = True
            asyncio.get_running_loop().call_later(self.annotate_delay, self._send_note)

    def _send_note(self):
        self._note_scheduled = False
        note, self.head_note = self.head_note, None
        jobid = note[0] if note else None
        for other in [j for j in self.annotated if j != jobid]:
            self.unannotate(other)
        if note is not None and jobid in self.entries:
            self.annotate(*note)

    def backfill(self, t_estimate, caps):
        """Start the jobs behind the head (at most ``QUEUE_DEPTH``) that
        end before ``t_estimate`` or fit in what ``caps`` leaves."""
        queue = self.queue
        kept = [heapq.heappop(queue)]  # the head
        failed = set()  # shapes that did not fit this pass
        now = time.time()
        considered = 0
        while queue and considered < QUEUE_DEPTH:
            entry = heapq.heappop(queue)
            prio, jobid, request, placement = entry
            if request is None:
                continue
            kept.append(entry)
            if prio == 0:
                break
            considered += 1
            req = request.shape
            key = (req.nnodes, req.nslots, req.cores, req.gpus, req.exclusive,
                   req.duration, placement)
            if key in failed:
                continue
            if 0 < req.duration and now + req.duration <= t_estimate:
                alloc = self.try_alloc(req, placement)
            else:
                alloc = self.try_alloc_capped(req, placement, caps)
            if alloc is None:
                failed.add(key)
                continue
            kept.pop()
            del self.entries[jobid]
            self.allocate(jobid, req, alloc)
        for entry in kept:
            heapq.heappush(queue, entry)

    def try_alloc_capped(self, req, placement, caps):
        """``try_alloc`` within what the reservation leaves over."""
        allowed = None if placement is None else placement.allowed(self.ranks,
                                                                   self.generation)
        plan = plan_counts(req, caps.usable(self.up_ranks), allowed)
        if plan is None:
            return None
        caps.take(plan)
        by_rank = self.by_rank
        return {rank: by_rank[rank].take(cores // req.cores, req, whole=req.exclusive)
                for rank, (cores, _gpus) in plan.items()}

