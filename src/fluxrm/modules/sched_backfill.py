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

``Ending`` keeps the running jobs ordered by expiration (a sorted list,
bisected on allocation and free), so finding T walks only the jobs
ending before it.
"""

from bisect import bisect_left, insort

from fluxrm.modules.sched_placement import plan_counts

INF = float("inf")
QUEUE_DEPTH = 32  # jobs behind a blocked head considered per pass


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
