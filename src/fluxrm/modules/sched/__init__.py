"""sched: a first-fit scheduler with EASY backfill over the resource inventory.

RPC topics (its own; allows guests):

- ``sched.resource-status`` -> {all, allocated, down}  (R version 1
  objects: the pool sched allocates from, what running jobs hold, and
  what is down, nothing yet); ``resource.sched-status`` asks it this way
  for the allocated set.

It talks with the job-manager in the
scheduler protocol's messages only (RFC 27's shape: ``hello``, ``alloc``
answered by R, a denial with a note, or ``cancel``, maybe ``annotate``d
before; ``free``, ``cancel``,
``prioritize``, ``expiration`` (a running job's new end); see ``fluxrm.modules.job_manager.sched_client``): ``handle`` takes
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
own copy, and needs no answer.

The pass allocates from the head of the queue, first fit, until a job
does not fit now: that job gets a reservation (EASY backfill,
``fluxrm.modules.sched.backfill``): the earliest time it fits as the
running jobs' R expire, and the resources it would take then.  At most
``QUEUE_DEPTH`` (32) jobs behind it are considered in the same pass; one
starts if it fits now and either ends before the reservation (its
duration) or uses only what the reservation leaves over.  A running job
without a time limit never ends as far as sched can tell: if the head
needs what it holds there is no reservation and nothing passes the head
(strict priority order, as without backfill).  So a pass costs what it
allocates plus, when the head is blocked, a walk of the jobs ending
before the reservation and at most 32 jobs (those of a shape that already
failed in the pass are skipped at once; with no core free none are).
Running jobs are kept ordered by expiration (``Ending``).

The blocked head is annotated (an ``annotate`` message: ``{"sched":
{"reason_pending": "insufficient resources", "t_estimate": T}}``, T only
with a reservation), once per change, if it is still the blocked head
``ANNOTATE_DELAY`` (50 ms) later (jobs streaming through cost nothing); the annotations are cleared (None
values) when it is allocated, with the ``alloc`` answer, or when another
job becomes the head.

What a job asks for is the ``shape`` of the ``alloc`` request's
``request`` (``fluxrm.jobrequest``: the jobspec parsed once, at ingest):
``slot>core[,gpu]`` and ``node>slot>core[,gpu]``, with ``exclusive``
nodes (whole idle nodes; an allocation never shares a core or gpu).  A
request of another shape (``shape_error``; job-ingest refuses those
unless FLUX_JOB_NOVALIDATE) is denied at once, as is one that could never
fit: the job gets a fatal ``alloc`` exception ("unsatisfiable request:
..."), once every broker rank has joined the pool.

Where a job may go (``fluxrm.modules.sched.placement``): its RFC 31
constraint (``attributes.system.constraints``, from ``--requires``)
and-ed with its queue's ``requires`` (sent by the job-manager with the
``alloc`` request) select ranks by ``properties`` (R's ``properties``
key, from the configuration's ``[[resource.config]]``), ``hostlist`` and
``ranks``; the matching ranks are computed once per distinct constraint
and again only when ranks join (``Placement``).

The pool (ranks, their cores, gpus, hostnames and properties) comes from
the resource service's ``resource.acquire`` (streaming: the ranks known
at start, then each rank that registers later, in an instance of several
brokers).  Per-job state, its own, keyed by job id: ``entries`` (the
job's place in the queue, with its ``JobRequest`` and ``Placement``),
``allocations`` (the cores and gpus it holds, per rank), ``ending`` (its
expiration) and ``annotated`` (the annotations it was sent).
In an instance nested in a job (broker attribute ``resource.expiration``,
``fluxrm.cli.nesting``) no job's R ends after the instance's.
"""

import asyncio
import heapq
import time

from flux.idset import IDset
from fluxrm.broker.service import Service, request_handler
from fluxrm.modules.resource import make_R
from fluxrm.modules.sched.backfill import Backfill, Ending
from fluxrm.modules.sched.placement import (  # noqa: F401 (ranks_of_R: sched's API)
    Placement,
    RankState,
    capacity,
    job_constraint,
    ranks_of_R,
)


LOG_ERR = 3
BULK_DEFER = 0.005  # s a pass waits while a bulk submission is taken in


class Sched(Backfill, Service):
    name = "sched"

    def __init__(self, broker):
        super().__init__(broker)
        self.queue = []  # heap of [-priority, id, JobRequest or None, Placement or None]
        self.entries = {}  # job id -> heap entry
        self.allocations = {}  # job id -> {rank: (cores, gpus)}
        self.ending = Ending()  # running jobs by expiration (backfill)
        self.ranks = []  # every rank's RankState, in rank order
        self.by_rank = {}  # rank -> RankState
        self.up_ranks = []  # the ranks new work may go to (not drained)
        self.down = set()  # drained ranks
        self.hostnames = {}  # rank -> hostname, for R
        self.generation = 0  # bumped when ranks join (Placement caches)
        self.placements = {}  # constraint text -> Placement
        self.annotated = {}  # job id -> the sched annotations it was sent
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
        ``hostname``, ``ncores``, ``ngpus`` and maybe ``properties``);
        ``down``: the drained ranks, if that changed."""
        complete_before = self.pool_complete
        for node in nodes:
            if node.rank not in self.by_rank:
                state = RankState(node)
                self.ranks.append(state)
                self.by_rank[node.rank] = state
                self.hostnames[node.rank] = node.hostname
                self.generation += 1
        self.ranks.sort(key=lambda r: r.rank)
        if down is not None:
            self.down = down
        # what allocation walks: the ranks in service
        self.up_ranks = [r for r in self.ranks if r.rank not in self.down]
        if self.pool_complete and not complete_before:
            self.deny_never_fitting()

    @property
    def pool_complete(self):
        """Has every broker rank joined the pool?  Until then a request that
        does not fit the pool may still fit once the rest arrives."""
        size = getattr(self.broker, "size", None) if self.broker is not None else None
        return size is None or len(self.ranks) >= size

    def deny_never_fitting(self):
        for jobid, entry in list(self.entries.items()):
            why = self.never_fits(entry[2].shape, entry[3])
            if why:
                self.dequeue(jobid)
                self.deny(jobid, why)

    # -- the scheduler protocol -----------------------------------------------------------
    def handle(self, payload):
        """The job-manager's message: ``{"msgs": [item...]}``, in order."""
        for msg in payload["msgs"]:
            kind = msg["type"]
            if kind == "alloc":
                for job in msg["jobs"]:
                    self.enqueue(job[0], job[1], job[4], job[5] if len(job) > 5 else None)
            elif kind == "free":
                self.free(msg["id"])
            elif kind == "expiration":
                self.expiration(msg["id"], msg["expiration"])
            elif kind == "cancel":
                if self.dequeue(msg["id"]):
                    self.send({"type": "cancel", "id": msg["id"]})
                    self.schedule_soon()  # what passed it may start now
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

    def deny(self, jobid, why):
        self.send({"type": "deny", "id": jobid, "note": f"unsatisfiable request: {why}"})

    def annotate(self, jobid, sched):
        """Tell the job-manager a pending job's ``sched`` annotations
        (``t_estimate``, ``reason_pending``) if they changed."""
        if self.annotated.get(jobid) != sched:
            self.annotated[jobid] = sched
            self.send({"type": "annotate", "id": jobid, "annotations": {"sched": sched}})

    def unannotate(self, jobid, send=True):
        """The annotations sent for a job, cleared (None values); None if
        there were none.  ``send``: tell the job-manager now."""
        old = self.annotated.pop(jobid, None)
        if old is None:
            return None
        cleared = {"sched": dict.fromkeys(old)}
        if send:
            self.send({"type": "annotate", "id": jobid, "annotations": cleared})
        return cleared

    # -- the queue ---------------------------------------------------------------------
    def placement(self, request, queue_constraint):
        constraint = job_constraint(request, queue_constraint)
        if constraint is None:
            return None
        placement = Placement(constraint)
        return self.placements.setdefault(placement.text, placement)

    def enqueue(self, jobid, priority, request, queue_constraint=None):
        req = request.shape
        if req is None:
            self.deny(jobid, request.shape_error)
            return
        placement = self.placement(request, queue_constraint)
        why = self.never_fits(req, placement)
        if why and (self.pool_complete or (placement and placement.error)):
            self.deny(jobid, why)
            return
        entry = [-priority, jobid, request, placement]
        self.entries[jobid] = entry
        heapq.heappush(self.queue, entry)
        self.schedule_soon()

    def dequeue(self, jobid):
        entry = self.entries.pop(jobid, None)
        if entry is None:
            return False
        entry[2] = None  # removed lazily from the heap
        self.unannotate(jobid, send=False)
        return True

    def prioritize(self, jobid, priority):
        entry = self.entries.get(jobid)
        if entry is None or -entry[0] == priority:
            return
        request, placement = entry[2], entry[3]
        entry[2] = None
        entry = [-priority, jobid, request, placement]
        self.entries[jobid] = entry
        heapq.heappush(self.queue, entry)
        self.schedule_soon()

    def hello(self, jobid, R):
        """A job holding resources at start-up: they are allocated."""
        by_rank = self.by_rank
        alloc = {}
        expiration = 0.0
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
            expiration = float(R["execution"].get("expiration") or 0.0)
        except (KeyError, TypeError, ValueError, AttributeError):
            pass  # an odd R holds what could be read of it
        self.allocations[jobid] = alloc
        self.ending.add(jobid, expiration)

    def never_fits(self, req, placement=None):
        ranks = self.ranks
        if placement is not None:
            allowed = placement.allowed(ranks, self.generation)
            if placement.error:
                return placement.error
            ranks = [r for r in ranks if r.rank in allowed]
            if not ranks:
                return "no node satisfies the constraints"
        where = "the instance" if placement is None else "the nodes the constraints allow"
        if req.nnodes is not None:
            if req.nnodes > len(ranks):
                return (f"requested {req.nnodes} nodes but {where} "
                        f"{'has' if placement is None else 'are'} {len(ranks)}")
            fit = sorted((capacity(r, req) for r in ranks), reverse=True)
            if fit[req.nnodes - 1] < req.nslots:
                return (f"requested {req.nslots} slot(s) of {req.cores} core(s)"
                        f"{self._gpu_text(req)} per node; a node has "
                        f"{max(r.ncores for r in ranks)} cores, "
                        f"{max(r.ngpus for r in ranks)} gpus")
            return None
        total = sum(capacity(r, req) for r in ranks)
        if total < req.nslots:
            return (f"requested {req.nslots} slot(s) of {req.cores} core(s)"
                    f"{self._gpu_text(req)}; {where} "
                    f"{'has' if placement is None else 'have'} "
                    f"{sum(r.ncores for r in ranks)} cores, "
                    f"{sum(r.ngpus for r in ranks)} gpus")
        return None

    @staticmethod
    def _gpu_text(req):
        return f" and {req.gpus} gpu(s)" if req.gpus else ""

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
        """Allocate from the head of the queue until something does not
        fit; that job gets a reservation and the jobs behind it may
        backfill (``blocked``)."""
        self._pass_scheduled = False
        queue = self.queue
        while queue:
            prio, jobid, request, placement = queue[0]
            if request is None:
                heapq.heappop(queue)
                continue
            if prio == 0:
                break  # held jobs (priority 0) wait for a new urgency
            req = request.shape
            alloc = self.try_alloc(req, placement)
            if alloc is None:
                self.blocked(queue[0])
                break
            heapq.heappop(queue)
            del self.entries[jobid]
            self.allocate(jobid, req, alloc)

    def allowed_ranks(self, placement):
        if placement is None:
            return self.up_ranks
        allowed = placement.allowed(self.ranks, self.generation)
        return [r for r in self.up_ranks if r.rank in allowed]

    def try_alloc(self, req, placement=None):
        ranks = self.up_ranks if placement is None else self.allowed_ranks(placement)
        if req.nnodes is not None:
            chosen = []
            for r in ranks:
                if req.exclusive:
                    if r.idle and capacity(r, req) >= req.nslots:
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

    # -- allocation ----------------------------------------------------------------------
    def allocate(self, jobid, req, alloc):
        self.allocations[jobid] = alloc
        now = time.time()
        expiration = now + req.duration if req.duration > 0 else 0.0
        if self.instance_expiration and (
                not expiration or expiration > self.instance_expiration):
            expiration = self.instance_expiration
        self.ending.add(jobid, expiration)
        R = make_R(alloc, self.hostnames, starttime=now,
                   expiration=expiration, nslots=req.total_slots())
        answer = {"type": "alloc", "id": jobid, "R": R}
        if self.annotated:
            cleared = self.unannotate(jobid, send=False)
            if cleared is not None:
                answer["annotations"] = cleared
        self.send(answer)

    def free(self, jobid):
        alloc = self.allocations.pop(jobid, None)
        if alloc is None:
            return
        self.ending.remove(jobid)
        by_rank = self.by_rank
        for rank, (cores, gpus) in alloc.items():
            by_rank[rank].give(cores, gpus)
        self.schedule_soon()

    def expiration(self, jobid, expiration):
        """A running job's time limit changed (``flux update``): its place
        in ``ending``, and so the reservation a pass computes, moves."""
        if jobid not in self.allocations:
            return
        self.ending.remove(jobid)
        self.ending.add(jobid, expiration)
        if self.queue:
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

