"""sched: a first-fit scheduler over the resource inventory.

RPC topics (its own; allows guests):

- ``sched.resource-status`` -> {all, allocated, down}  (R version 1
  objects: the pool sched allocates from, what running jobs hold, and
  what is down, nothing yet); ``resource.sched-status`` asks it this way
  for the allocated set.

It talks with the job-manager in the
scheduler protocol's messages only (RFC 27's shape: ``hello``, ``alloc``
answered by R, a denial with a note, or ``cancel``; ``free``, ``cancel``,
``prioritize``; see ``fluxrm.modules.job_manager.sched_client``): ``handle`` takes
the job-manager's message, ``send`` queues an answer (one message per loop
turn carries them all).  It never sees a ``Job``.

Jobs are served in priority order, then submission (id) order; priority 0
(urgency 0, held) is never scheduled.  One pass runs per loop turn however
many jobs arrived.  While a bulk submission is coming in, a pass waits
``BULK_DEFER`` (5 ms) so the broker takes the submissions in first:
starting jobs between them slows down the script that submits, while the
run rate, bounded by the cores, is the same or better (bench/bulksubmit.py,
interleaved A/B: submit ~15,000 -> ~17,000 job/s, run ~845 -> ~877 job/s).
job-ingest says so in a message to ``handle``, ``{"msgs": [{"type":
"hint", "bulk-window": s}]}``, sent with each large batch before its jobs
reach the job-manager: more submissions are expected within ``s`` seconds
of its arrival; sched keeps the end of that window (``bulk_until``), its
own copy, and needs no answer.  The pass allocates from the head of the
queue and stops at the first job that does not fit now (no backfill), so a
pass costs only what it allocates.  A request that could never fit, even on an idle
instance, gets a fatal ``alloc`` exception at once.

What a job asks for is the ``shape`` of the ``alloc`` request's
``request`` (``fluxrm.jobrequest``: the jobspec parsed once, at ingest):
``slot>core[,gpu]`` and ``node>slot>core[,gpu]``, with ``exclusive``
nodes.  A request of another shape (``shape_error``; job-ingest refuses
those unless FLUX_JOB_NOVALIDATE) is denied at once, as is one that could
never fit: the job gets a fatal ``alloc`` exception.

The pool (ranks, their cores, gpus and hostnames) comes from the resource
service's ``resource.acquire`` (streaming: the ranks known at start, then
each rank that registers later, in an instance of several brokers).  Per-job state, its own,
keyed by job id: ``entries`` (the job's place in the queue, with its
``JobRequest``) and ``allocations`` (the cores and gpus it holds, per
rank).
In an instance nested in a job (broker attribute ``resource.expiration``,
``fluxrm.cli.nesting``) no job's R ends after the instance's.
"""

import asyncio
import heapq
import time

from flux.idset import IDset
from fluxrm.broker.service import Service, request_handler
from fluxrm.modules.resource import make_R


LOG_ERR = 3
BULK_DEFER = 0.005  # s a pass waits while a bulk submission is taken in


class _Node:
    """One rank of an R: what ``RankState`` is made from."""

    __slots__ = ("rank", "hostname", "ncores", "ngpus")

    def __init__(self, rank, hostname, ncores, ngpus):
        self.rank, self.hostname, self.ncores, self.ngpus = rank, hostname, ncores, ngpus


def ranks_of_R(R):
    """The ranks of an R version 1, as ``_Node``s in rank order."""
    from flux.hostlist import Hostlist

    execution = R["execution"]
    nodes = []
    for entry in execution["R_lite"]:
        children = entry["children"]
        ncores = len(IDset(children.get("core", "")))
        ngpus = len(IDset(children.get("gpu", "")))
        for rank in IDset(entry["rank"]):
            nodes.append((rank, ncores, ngpus))
    nodes.sort()
    hosts = []
    for item in execution.get("nodelist", []):
        hosts.extend(Hostlist(item))
    return [_Node(rank, hosts[i] if i < len(hosts) else str(rank), ncores, ngpus)
            for i, (rank, ncores, ngpus) in enumerate(nodes)]


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
        self.queue = []  # heap of [-priority, id, JobRequest or None]
        self.entries = {}  # job id -> heap entry
        self.allocations = {}  # job id -> {rank: (cores, gpus)}
        self.ranks = []  # every rank's RankState, in rank order
        self.by_rank = {}  # rank -> RankState
        self.up_ranks = []  # the ranks new work may go to (not drained)
        self.down = set()  # drained ranks
        self.hostnames = {}  # rank -> hostname, for R
        self._pass_scheduled = False
        self.bulk_until = float("-inf")  # loop time a bulk submission may last to
        self._to_manager = []  # answers of this loop turn
        self.manager_handle = None
        self.instance_expiration = 0.0  # the end of a nested instance's R

    async def start(self):
        services = self.broker.router.services
        try:  # an instance nested in a job ends with that job's R
            self.instance_expiration = float(
                self.broker.attr("resource.expiration") or 0.0)
        except ValueError:
            self.log(LOG_ERR, "resource.expiration: not a number; ignored")
        # the in-process fast path of the scheduler protocol
        self.manager_handle = services["job-manager"].sched_handle
        # the pool: resource.acquire answers at once with the ranks known,
        # then again as more ranks register (an instance of several brokers)
        self.broker.rpc.call("resource.acquire", {}, self.broker.rank,
                             on_response=self.acquired, streaming=True)

    def acquired(self, msg):
        """A ``resource.acquire`` response: ranks join the pool."""
        if msg.errnum:
            self.log(LOG_ERR, f"resource.acquire: {msg.errstr}")
            return
        try:
            update = msg.get_object()
            new = ranks_of_R(update["resources"]) if "resources" in update else []
            down = set(IDset(update.get("down", "")))
            up = set(IDset(update.get("up", "")))
        except (OSError, KeyError, TypeError, ValueError, AttributeError) as exc:
            self.log(LOG_ERR, f"resource.acquire: malformed update: {exc}")
            return
        self.add_nodes(new, down=(self.down | down) - (up - down))
        if self.queue:
            self.schedule_soon()

    def add_nodes(self, nodes, down=None):
        """Ranks join the pool (``nodes``: objects with ``rank``,
        ``hostname``, ``ncores``, ``ngpus``); ``down``: the drained ranks,
        if that changed."""
        for node in nodes:
            if node.rank not in self.by_rank:
                state = RankState(node)
                self.ranks.append(state)
                self.by_rank[node.rank] = state
                self.hostnames[node.rank] = node.hostname
        self.ranks.sort(key=lambda r: r.rank)
        if down is not None:
            self.down = down
        # what allocation walks: the ranks in service
        self.up_ranks = [r for r in self.ranks if r.rank not in self.down]

    # -- the scheduler protocol -----------------------------------------------------------
    def handle(self, payload):
        """The job-manager's message: ``{"msgs": [item...]}``, in order."""
        for msg in payload["msgs"]:
            kind = msg["type"]
            if kind == "alloc":
                for jobid, priority, _userid, _t_submit, request in msg["jobs"]:
                    self.enqueue(jobid, priority, request)
            elif kind == "free":
                self.free(msg["id"])
            elif kind == "cancel":
                if self.dequeue(msg["id"]):
                    self.send({"type": "cancel", "id": msg["id"]})
            elif kind == "prioritize":
                for jobid, priority in msg["jobs"]:
                    self.prioritize(jobid, priority)
            elif kind == "hello":
                for job in msg["jobs"]:
                    self.hello(job["id"], job["R"])
            elif kind == "hint":
                self.hint(msg)

    def hint(self, msg):
        """job-ingest's ``{"type": "hint", "bulk-window": s}``: a bulk
        submission is coming in, more of it within ``s`` seconds (a window
        that is not a number of seconds in (0, 1) is ignored)."""
        window = msg.get("bulk-window")
        if type(window) in (int, float) and 0 < window < 1:
            until = asyncio.get_running_loop().time() + window
            if until > self.bulk_until:
                self.bulk_until = until

    def send(self, msg):
        out = self._to_manager
        if not out:
            asyncio.get_running_loop().call_soon(self._flush)
        out.append(msg)

    def _flush(self):
        msgs, self._to_manager = self._to_manager, []
        if msgs:
            self.manager_handle({"msgs": msgs})

    # -- the queue ---------------------------------------------------------------------
    def enqueue(self, jobid, priority, request):
        req = request.shape
        why = request.shape_error if req is None else self.never_fits(req)
        if why:
            self.send({"type": "deny", "id": jobid,
                       "note": f"unsatisfiable request: {why}"})
            return
        entry = [-priority, jobid, request]
        self.entries[jobid] = entry
        heapq.heappush(self.queue, entry)
        self.schedule_soon()

    def dequeue(self, jobid):
        entry = self.entries.pop(jobid, None)
        if entry is None:
            return False
        entry[2] = None  # removed lazily from the heap
        return True

    def prioritize(self, jobid, priority):
        entry = self.entries.get(jobid)
        if entry is None or -entry[0] == priority:
            return
        request = entry[2]
        self.dequeue(jobid)
        entry = [-priority, jobid, request]
        self.entries[jobid] = entry
        heapq.heappush(self.queue, entry)
        self.schedule_soon()

    def hello(self, jobid, R):
        """A job holding resources at start-up: they are allocated."""
        by_rank = self.by_rank
        alloc = {}
        try:
            for entry in R["execution"]["R_lite"]:
                children = entry["children"]
                for rank in IDset(entry["rank"]):
                    r = by_rank.get(rank)
                    if r is None:
                        continue
                    cores = set(IDset(children.get("core", ""))) & r.free_cores
                    gpus = set(IDset(children.get("gpu", ""))) & r.free_gpus
                    r.free_cores -= cores
                    r.free_gpus -= gpus
                    alloc[rank] = (sorted(cores), sorted(gpus))
        except (KeyError, TypeError, ValueError, AttributeError):
            pass  # an odd R holds what could be read of it
        self.allocations[jobid] = alloc

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
        if loop.time() < self.bulk_until:
            # a bulk submission is coming in: take it in first
            loop.call_later(BULK_DEFER, self.schedule)
        else:
            loop.call_soon(self.schedule)

    def schedule(self):
        """Allocate from the head of the queue until something does not fit."""
        self._pass_scheduled = False
        queue = self.queue
        while queue:
            prio, jobid, request = queue[0]
            if request is None:
                heapq.heappop(queue)
                continue
            if prio == 0:
                break  # held jobs (priority 0) wait for a new urgency
            req = request.shape
            alloc = self.try_alloc(req)
            if alloc is None:
                break
            heapq.heappop(queue)
            del self.entries[jobid]
            self.allocate(jobid, req, alloc)

    def try_alloc(self, req):
        ranks = self.up_ranks
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

    def allocate(self, jobid, req, alloc):
        self.allocations[jobid] = alloc
        now = time.time()
        expiration = now + req.duration if req.duration > 0 else 0.0
        if self.instance_expiration and (
                not expiration or expiration > self.instance_expiration):
            expiration = self.instance_expiration
        R = make_R(alloc, self.hostnames, starttime=now,
                   expiration=expiration, nslots=req.total_slots())
        self.send({"type": "alloc", "id": jobid, "R": R})

    def free(self, jobid):
        alloc = self.allocations.pop(jobid, None)
        if alloc is None:
            return
        by_rank = self.by_rank
        for rank, (cores, gpus) in alloc.items():
            by_rank[rank].give(cores, gpus)
        self.schedule_soon()

    # -- what is allocated ----------------------------------------------------------------
    @request_handler("resource-status", allow_guest=True)
    def h_resource_status(self, msg):
        self.respond(msg, {"all": self.all_R(), "allocated": self.allocated_R(),
                           "down": make_R({r: (range(self.by_rank[r].ncores),
                                               range(self.by_rank[r].ngpus))
                                           for r in sorted(self.down)
                                           if r in self.by_rank}, self.hostnames)})

    def all_R(self):
        return make_R({r.rank: (range(r.ncores), range(r.ngpus)) for r in self.ranks},
                      self.hostnames)

    def allocated_R(self):
        merged = {}
        for alloc in self.allocations.values():
            for rank, (cores, gpus) in alloc.items():
                c, g = merged.setdefault(rank, (set(), set()))
                c.update(cores)
                g.update(gpus)
        return make_R(merged, self.hostnames)

