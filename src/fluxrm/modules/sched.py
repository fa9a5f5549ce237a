"""sched: a first-fit scheduler over the resource inventory.

RPC topics: none of its own (the job-manager hands it jobs in process);
``resource.sched-status`` (in ``resource``) asks it for the allocated set.

Jobs are served in priority order, then submission (id) order; priority 0
(urgency 0, held) is never scheduled.  One pass runs per loop turn however
many jobs arrived; while a bulk submission is coming in (job-ingest's
``bulk_in_progress``), a pass waits ``BULK_DEFER`` (5 ms) so the broker
takes the submissions in first: starting jobs between them slows down the
script that submits, while the run rate, bounded by the cores, is the same
or better (bench/bulksubmit.py, interleaved A/B: submit ~15,000 -> ~17,000
job/s, run ~845 -> ~877 job/s).  The pass allocates from the head of the
queue and stops at the first job that does not fit now (no backfill), so a
pass costs only what it allocates.  A request that could never fit, even on an idle
instance, gets a fatal ``alloc`` exception at once.

Supported shapes (RFC 25 subset, checked by ``parse_request``, which
job-ingest also calls to reject other shapes at submission):
``slot>core[,gpu]`` and ``node>slot>core[,gpu]``, with ``exclusive`` nodes.
``parse_request`` takes any decoded JSON (jobs submitted without
validation too) and refuses more tasks than a system can run
(``flux.job.Jobspec.TASKS_MAX``) with a message, never a Python error.
"""

import asyncio
import heapq
import time

from flux.job.Jobspec import TASKS_MAX
from fluxrm.broker.service import Service
from fluxrm.modules.resource import make_R


BULK_DEFER = 0.005  # s a pass waits while a bulk submission is taken in


class Request:
    """What a jobspec asks for."""

    __slots__ = ("nnodes", "nslots", "cores", "gpus", "exclusive", "duration")

    def __init__(self, nnodes, nslots, cores, gpus, exclusive, duration):
        self.nnodes = nnodes  # None: slots may go anywhere
        self.nslots = nslots  # per node when nnodes is set, else in total
        self.cores = cores  # per slot
        self.gpus = gpus  # per slot
        self.exclusive = exclusive
        self.duration = duration

    def total_slots(self):
        return self.nslots * (self.nnodes or 1)


def _count(res, what):
    count = res.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError(f"{what} count must be a non-negative integer")
    return count


def _mapping(value, what):
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a mapping")
    return value


def _children(res, what):
    children = res.get("with") or []
    if not isinstance(children, list):
        raise ValueError(f"{what} 'with' must be a list")
    return [_mapping(child, "resource") for child in children]


def _duration(jobspec):
    """``attributes.system.duration`` in seconds (0: unlimited)."""
    attributes = jobspec.get("attributes") or {}
    system = _mapping(attributes, "attributes").get("system") or {}
    duration = _mapping(system, "attributes.system").get("duration") or 0
    if (type(duration) not in (int, float)
            or not 0 <= duration < (1 << 31)):  # false for NaN as well
        raise ValueError("attributes.system.duration must be a number of"
                         " seconds >= 0 and < 2**31")
    return float(duration)


def _slot_shape(slot):
    if slot.get("type") != "slot":
        raise ValueError(f"expected a slot, found '{slot.get('type')}'")
    cores = gpus = 0
    for child in _children(slot, "slot"):
        ctype = child.get("type")
        if ctype == "core":
            cores = _count(child, "core")
        elif ctype == "gpu":
            gpus = _count(child, "gpu")
        else:
            raise ValueError(f"resource type '{ctype}' is not supported in a slot")
        if child.get("with"):
            raise ValueError(f"{ctype} cannot contain other resources")
    if cores < 1:
        raise ValueError("a slot must contain at least one core")
    return cores, gpus


def parse_request(jobspec):
    """Turn a jobspec into a ``Request``; ``ValueError`` for unsupported shapes.

    Any decoded JSON is taken (a job submitted with FLUX_JOB_NOVALIDATE
    skips the RFC 25 checks): the error is then a message for the job's
    exception note, never another Python exception.
    """
    resources = _mapping(jobspec, "jobspec").get("resources")
    if not isinstance(resources, list) or len(resources) != 1:
        raise ValueError("jobspec must have exactly one top-level resource")
    top = _mapping(resources[0], "resource")
    exclusive = False
    if top.get("type") == "node":
        nnodes = _count(top, "node")
        if nnodes < 1:
            raise ValueError("node count must be at least 1")
        exclusive = bool(top.get("exclusive", False))
        children = _children(top, "node")
        if len(children) != 1:
            raise ValueError("a node must contain exactly one slot")
        slot = children[0]
    elif top.get("type") == "slot":
        nnodes = None
        slot = top
    else:
        raise ValueError(f"top-level resource '{top.get('type')}' is not supported;"
                         " use node or slot")
    nslots = _count(slot, "slot")
    if nslots < 1:
        raise ValueError("slot count must be at least 1")
    cores, gpus = _slot_shape(slot)
    duration = _duration(jobspec)
    _check_ntasks(jobspec, nslots * (nnodes or 1), cores)
    return Request(nnodes, nslots, cores, gpus, exclusive, duration)


def _check_ntasks(jobspec, nslots, cores):
    """Refuse more tasks than a system can run (job-ingest's validation
    does too; this also covers jobs submitted without it)."""
    tasks = jobspec.get("tasks")
    if not isinstance(tasks, list) or len(tasks) != 1:
        raise ValueError("tasks must contain exactly one task")
    count = _mapping(_mapping(tasks[0], "task").get("count"), "task count")
    if "total" in count:
        ntasks = count["total"]
    else:
        ntasks = count.get("per_slot", 1)
        if type(ntasks) is int:
            ntasks *= nslots
    if type(ntasks) is not int or not 1 <= ntasks <= TASKS_MAX:
        raise ValueError(f"the task count must be an integer in [1:{TASKS_MAX}]")
    system = (jobspec.get("attributes") or {}).get("system") or {}
    options = (system.get("shell") or {}).get("options") if isinstance(
        system.get("shell"), dict) else None
    per_resource = options.get("per-resource") if isinstance(options, dict) else None
    if isinstance(per_resource, dict):
        n = per_resource.get("count", 1)
        if type(n) is not int or not 1 <= n * nslots * cores <= TASKS_MAX:
            raise ValueError("the per-resource task count must be an integer"
                             f" giving at most {TASKS_MAX} tasks")


class RankState:
    """Free resources of one rank."""

    __slots__ = ("rank", "free_cores", "free_gpus", "ncores", "ngpus")

    def __init__(self, rank):
        self.rank = rank.rank
        self.ncores = rank.ncores
        self.ngpus = rank.ngpus
        self.free_cores = set(range(rank.ncores))
        self.free_gpus = set(range(rank.ngpus))

    @property
    def idle(self):
        return len(self.free_cores) == self.ncores and len(self.free_gpus) == self.ngpus

    def slots_that_fit(self, req):
        n = len(self.free_cores) // req.cores
        if req.gpus:
            n = min(n, len(self.free_gpus) // req.gpus)
        return n

    def take(self, nslots, req, whole=False):
        if whole:
            cores, gpus = sorted(self.free_cores), sorted(self.free_gpus)
        else:
            cores = sorted(self.free_cores)[: nslots * req.cores]
            gpus = sorted(self.free_gpus)[: nslots * req.gpus]
        self.free_cores.difference_update(cores)
        self.free_gpus.difference_update(gpus)
        return cores, gpus

    def give(self, cores, gpus):
        self.free_cores.update(cores)
        self.free_gpus.update(gpus)


class Sched(Service):
    name = "sched"

    def __init__(self, broker):
        super().__init__(broker)
        self.queue = []  # heap of [-priority, id, job]
        self.entries = {}  # job id -> heap entry
        self.allocations = {}  # job id -> {rank: (cores, gpus)}
        self.ranks = []
        self._pass_scheduled = False
        self.manager = None
        self._last_parsed = None  # (jobspec, its Request)

    async def start(self):
        services = self.broker.router.services
        self.resource = services["resource"]
        self.manager = services["job-manager"]
        self.ranks = [RankState(r) for r in self.resource.ranks]
        self.ingest = services.get("job-ingest")

    # -- the queue ---------------------------------------------------------------------
    def enqueue(self, job):
        jobspec = job.jobspec
        last = self._last_parsed
        if last is not None and last[0] is jobspec:
            # identical submissions share one decoded jobspec (job-ingest's
            # cache), and a Request is never modified: parse it once
            req = last[1]
        else:
            try:
                req = parse_request(jobspec)
            except (ValueError, TypeError, AttributeError) as exc:
                self.manager.raise_exception(job, "alloc", 0,
                                             f"unsatisfiable request: {exc}")
                return
            self._last_parsed = (jobspec, req)
        why = self.never_fits(req)
        if why:
            self.manager.raise_exception(job, "alloc", 0, f"unsatisfiable request: {why}")
            return
        job.sched_data = req
        entry = [-(job.view.priority or 0), job.id, job]
        self.entries[job.id] = entry
        heapq.heappush(self.queue, entry)
        self.schedule_soon()

    def dequeue(self, job):
        entry = self.entries.pop(job.id, None)
        if entry is not None:
            entry[2] = None  # removed lazily from the heap

    def never_fits(self, req):
        ranks = self.ranks
        if req.nnodes is not None:
            if req.nnodes > len(ranks):
                return (f"requested {req.nnodes} nodes but the instance has "
                        f"{len(ranks)}")
            fit = sorted((self._capacity(r, req) for r in ranks), reverse=True)
            if fit[req.nnodes - 1] < req.nslots:
                return (f"requested {req.nslots} slot(s) of {req.cores} core(s)"
                        f"{self._gpu_text(req)} per node; a node has "
                        f"{max(r.ncores for r in ranks)} cores, "
                        f"{max(r.ngpus for r in ranks)} gpus")
            return None
        total = sum(self._capacity(r, req) for r in ranks)
        if total < req.nslots:
            return (f"requested {req.nslots} slot(s) of {req.cores} core(s)"
                    f"{self._gpu_text(req)}; the instance has "
                    f"{sum(r.ncores for r in ranks)} cores, "
                    f"{sum(r.ngpus for r in ranks)} gpus")
        return None

    @staticmethod
    def _gpu_text(req):
        return f" and {req.gpus} gpu(s)" if req.gpus else ""

    @staticmethod
    def _capacity(rank, req):
        n = rank.ncores // req.cores
        if req.gpus:
            n = min(n, rank.ngpus // req.gpus)
        return n

    def schedule_soon(self):
        if self._pass_scheduled:
            return
        self._pass_scheduled = True
        loop = asyncio.get_running_loop()
        if self.ingest is not None and self.ingest.bulk_in_progress(loop.time()):
            # a bulk submission is coming in: take it in first
            loop.call_later(BULK_DEFER, self.schedule)
        else:
            loop.call_soon(self.schedule)

    def schedule(self):
        """Allocate from the head of the queue until something does not fit."""
        self._pass_scheduled = False
        queue = self.queue
        while queue:
            prio, _jobid, job = queue[0]
            if job is None:
                heapq.heappop(queue)
                continue
            if prio == 0:
                break  # held jobs (priority 0) wait for a new urgency
            alloc = self.try_alloc(job.sched_data)
            if alloc is None:
                break
            heapq.heappop(queue)
            del self.entries[job.id]
            self.allocate(job, alloc)

    def try_alloc(self, req):
        ranks = self.ranks
        if req.nnodes is not None:
            chosen = []
            for r in ranks:
                if req.exclusive:
                    if r.idle and self._capacity(r, req) >= req.nslots:
                        chosen.append(r)
                elif r.slots_that_fit(req) >= req.nslots:
                    chosen.append(r)
                if len(chosen) == req.nnodes:
                    break
            else:
                return None
            return {r.rank: r.take(req.nslots, req, whole=req.exclusive)
                    for r in chosen}
        need = req.nslots
        plan = []
        for r in ranks:
            n = min(r.slots_that_fit(req), need)
            if n:
                plan.append((r, n))
                need -= n
                if need == 0:
                    break
        if need:
            return None
        return {r.rank: r.take(n, req) for r, n in plan}

    def allocate(self, job, alloc):
        self.allocations[job.id] = alloc
        req = job.sched_data
        now = time.time()
        expiration = now + req.duration if req.duration > 0 else 0.0
        R = make_R(alloc, self.resource.hostnames, starttime=now,
                   expiration=expiration, nslots=req.total_slots())
        self.manager.alloc(job, R)

    def free(self, job):
        alloc = self.allocations.pop(job.id, None)
        if alloc is None:
            return
        by_rank = {r.rank: r for r in self.ranks}
        for rank, (cores, gpus) in alloc.items():
            by_rank[rank].give(cores, gpus)
        self.schedule_soon()

    def allocated_R(self):
        merged = {}
        for alloc in self.allocations.values():
            for rank, (cores, gpus) in alloc.items():
                c, g = merged.setdefault(rank, (set(), set()))
                c.update(cores)
                g.update(gpus)
        return make_R(merged, self.resource.hostnames)


def request_error(jobspec):
    """The message job-ingest gives for a shape we cannot schedule, or None."""
    try:
        parse_request(jobspec)
    except (ValueError, TypeError, AttributeError) as exc:
        return str(exc)
    return None

