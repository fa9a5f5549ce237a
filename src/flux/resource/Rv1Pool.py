"""``Rv1Pool``: R version 1 resources a scheduler allocates from (spec 21.8).

An ``Rv1Set`` plus, per rank, whether it is up and which core and GPU ids
are allocated (and to which job).  ``alloc(jobid, request)`` chooses
worst-fit among up ranks that pass the request's constraints (most free
cores first; override ``_sort_candidates``/``_select_resources``) and
returns the allocation as a new pool; ``free`` gives it back.  A ranged
count (``"2-5"``, ``"1+"``) takes as much as is available up to its
maximum; a stepped or idset count is never satisfiable.
``ResourceRequest.from_jobspec`` reads what a jobspec asks for.

A shortage is ``InsufficientResources("insufficient resources")`` (not
now); a request the whole pool could never satisfy is
``InfeasibleRequest("unsatisfiable request: need ...")`` (never).
"""

import time

from flux.idset import IDset
from flux.job.JobID import JobID
from flux.resource.ResourceCount import ResourceCount
from flux.resource.Rv1Set import Rv1Set

__all__ = ["Rv1Pool", "ResourceRequest", "InsufficientResources", "InfeasibleRequest"]


class InsufficientResources(OSError):
    """Not enough resources now."""


class InfeasibleRequest(OSError):
    """Not enough resources ever."""


class ResourceRequest:
    """What a jobspec asks for: ``nnodes`` (0: any), ``nslots``,
    ``slot_size`` (cores), ``gpus`` per slot, ``exclusive``, ``duration``,
    ``constraint``."""

    def __init__(self, nnodes=0, nslots=1, slot_size=1, gpus=0, exclusive=False,
                 duration=0.0, constraint=None):
        self.nnodes = nnodes
        self.nslots = nslots
        self.slot_size = slot_size
        self.gpus = gpus
        self.exclusive = exclusive
        self.duration = duration
        self.constraint = constraint
        # the jobspec's counts: {"node"|"slot"|"core"|"gpu": ResourceCount};
        # "slot" counts slots per node when there is a node vertex
        self.counts = {}
        self.slot_mult = 1  # counts between node and slot multiply slots
        self.node_mult = 1  # counts above node multiply nodes

    def unsupported_count(self):
        """The first stepped or idset count (never satisfiable), or None."""
        for kind, count in self.counts.items():
            if count is not None and count.values is not None:
                return kind, count
        return None

    def is_ranged(self):
        return any(c is not None and c.max != c.min for c in self.counts.values())

    def sized(self, node=None, slot=None, core=None, gpu=None):
        """A copy of this request with the given values of ranged counts
        (None: the count's minimum)."""
        def pick(kind, value):
            count = self.counts.get(kind)
            if count is None:
                return 0
            return count.min if value is None else value

        nnodes, per_node = pick("node", node) * self.node_mult, pick("slot", slot)
        nslots = per_node * (nnodes or 1) * self.slot_mult
        new = ResourceRequest(nnodes=nnodes, nslots=nslots,
                              slot_size=pick("core", core), gpus=pick("gpu", gpu),
                              exclusive=self.exclusive, duration=self.duration,
                              constraint=self.constraint)
        new.counts, new.slot_mult = self.counts, self.slot_mult
        new.node_mult = self.node_mult
        return new

    @classmethod
    def from_jobspec(cls, jobspec):
        resources = jobspec.get("resources") if isinstance(jobspec, dict) else None
        if not resources:
            raise ValueError("jobspec has no resources")
        found = {}

        def walk(items, mult):
            for res in items:
                rcount = ResourceCount.from_count_spec(res.get("count", 1))
                count = rcount.min
                kind = res.get("type")
                if kind in ("node", "slot", "core", "gpu"):
                    found[kind] = (count, mult, res)
                    counts[kind] = rcount
                walk(res.get("with") or (), mult if kind == "node" else mult * count)

        counts = {}

        walk(resources, 1)
        if "slot" not in found:
            raise ValueError("Unable to determine slot count")
        if "core" not in found and "gpu" not in found:
            raise ValueError("Unable to determine slot size")
        scount, smult, _ = found["slot"]
        nnodes = 0
        exclusive = False
        if "node" in found:
            ncount, nmult, node = found["node"]
            nnodes = ncount * nmult
            exclusive = bool(node.get("exclusive"))
            scount *= ncount
        nslots = scount * smult
        system = (jobspec.get("attributes") or {}).get("system") or {}
        if jobspec.get("version") == 1 and "duration" not in system:
            raise ValueError("getting duration: Object item not found: system|duration")
        request = cls(nnodes=nnodes, nslots=nslots,
                      slot_size=found["core"][0] if "core" in found else 0,
                      gpus=found["gpu"][0] if "gpu" in found else 0,
                      exclusive=exclusive,
                      duration=float(system.get("duration") or 0),
                      constraint=system.get("constraints"))
        request.counts = {kind: counts.get(kind) for kind in found}
        if "node" in found:
            # slots per node: the slot count times the vertices between them
            request.slot_mult = smult // nmult
            request.node_mult = nmult
        else:
            request.slot_mult = smult
        return request


class Rv1Pool(Rv1Set):
    """Allocatable R version 1 resources (see the module docstring)."""

    def __init__(self, arg=None, log=None, **kwargs):
        super().__init__(arg, **kwargs)
        self.log = log
        self.up = IDset()  # ranks up
        self.alloc_cores = {}  # rank -> IDset of allocated cores
        self.alloc_gpus = {}  # rank -> IDset of allocated gpus
        self.allocations = {}  # jobid -> Rv1Set allocated
        self.job_end = {}  # jobid -> expiration
        self.generation = 0

    # -- state ---------------------------------------------------------------------------
    def _bump(self):
        self.generation += 1

    def mark_up(self, ranks):
        ranks = self.ranks() if ranks == "all" else IDset(ranks)
        self.up.add(ranks.intersect(self.ranks()))
        self._bump()

    def mark_down(self, ranks):
        ranks = self.ranks() if ranks == "all" else IDset(ranks)
        self.up.subtract(ranks)
        self._bump()

    def remove_ranks(self, ranks):
        super().remove_ranks(IDset(ranks))
        self.up.subtract(IDset(ranks))
        self._bump()
        return self

    def _free_ids(self, rank):
        cores = self.cores(rank).difference(self.alloc_cores.get(rank, IDset()))
        gpus = self.gpus(rank).difference(self.alloc_gpus.get(rank, IDset()))
        return cores, gpus

    def register_alloc(self, jobid, R):
        alloc = R if isinstance(R, Rv1Set) else Rv1Set(R)
        for rank in alloc.ranks():
            self.alloc_cores.setdefault(rank, IDset()).add(alloc.cores(rank))
            self.alloc_gpus.setdefault(rank, IDset()).add(alloc.gpus(rank))
        self.allocations[int(jobid)] = alloc
        self.job_end[int(jobid)] = alloc.expiration
        self._bump()

    def free(self, jobid, R=None, final=False):
        jobid = int(jobid)
        tracked = self.allocations.get(jobid)
        alloc = tracked if R is None else (R if isinstance(R, Rv1Set) else Rv1Set(R))
        if final and R is not None and tracked is not None \
                and alloc.dumps() != tracked.dumps():
            raise ValueError(f"free: {JobID(jobid).f58}: final R mismatch:"
                             f" {alloc.dumps()} != {tracked.dumps()}")
        if alloc is None:
            return
        for rank in alloc.ranks():
            if rank in self.alloc_cores:
                self.alloc_cores[rank] = self.alloc_cores[rank].difference(alloc.cores(rank))
                self.alloc_gpus[rank] = self.alloc_gpus[rank].difference(alloc.gpus(rank))
        if final or R is None:
            self.allocations.pop(jobid, None)
            self.job_end.pop(jobid, None)
        self._bump()

    def update_expiration(self, expiration):
        self.expiration = float(expiration)
        self._bump()

    def job_end_times(self):
        return dict(self.job_end)

    def parse_resource_request(self, jobspec):
        return ResourceRequest.from_jobspec(jobspec)

    # -- allocation -----------------------------------------------------------------------
    def _candidates(self, request, only_up=True):
        ranks = self.ranks()
        if request.constraint:
            ranks = self.copy_constraint(request.constraint).ranks()
        if only_up:
            ranks = ranks.intersect(self.up)
        return list(ranks)

    def _sort_candidates(self, ranks):
        """Worst fit: the most free cores first, then the lowest rank."""
        return sorted(ranks, key=lambda r: (-len(self._free_ids(r)[0]), r))

    def _fits(self, rank, request, free):
        cores, gpus = free(rank)
        if request.exclusive and (len(cores) < len(self.cores(rank))
                                  or len(gpus) < len(self.gpus(rank))):
            return 0
        per_core = len(cores) // request.slot_size if request.slot_size else request.nslots
        per_gpu = len(gpus) // request.gpus if request.gpus else request.nslots
        return min(per_core, per_gpu)

    def _select_resources(self, request, ranks, free):
        """{rank: nslots} satisfying ``request`` from ``ranks``, or None."""
        ranks = self._sort_candidates(ranks)
        if request.nnodes:
            per_node = -(-request.nslots // request.nnodes)
            chosen = [r for r in ranks if self._fits(r, request, free) >= per_node]
            if len(chosen) < request.nnodes:
                return None
            chosen = chosen[:request.nnodes]
            left, plan = request.nslots, {}
            for rank in chosen:
                n = min(per_node, left)
                plan[rank] = n
                left -= n
            return plan
        left, plan = request.nslots, {}
        for rank in ranks:
            n = min(self._fits(rank, request, free), left)
            if n > 0:
                plan[rank] = n
                left -= n
            if not left:
                return plan
        return None

    def _grow(self, request, plan, candidates):
        """Take as much as is available, up to each ranged count's maximum.

        Counts grow one at a time (nodes, slots, cores, gpus per slot),
        each to the largest value that still fits with the others fixed,
        found by bisection (a larger value never fits where a smaller does
        not). Returns the grown request and its plan.
        """
        free_cores = sum(len(self._free_ids(r)[0]) for r in candidates)
        free_gpus = sum(len(self._free_ids(r)[1]) for r in candidates)
        caps = {"node": len(candidates), "slot": max(free_cores, free_gpus, 1),
                "core": max((len(self._free_ids(r)[0]) for r in candidates),
                            default=0),
                "gpu": max((len(self._free_ids(r)[1]) for r in candidates),
                           default=0)}
        chosen = {}
        for kind in ("node", "slot", "core", "gpu"):
            count = request.counts.get(kind)
            if count is None or count.max == count.min:
                continue
            values = sorted(count.valid_counts(max(caps[kind], count.min)))
            lo, hi = 0, len(values) - 1  # values[lo] fits (it is the minimum)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                trial = request.sized(**chosen, **{kind: values[mid]})
                if self._select_resources(trial, candidates, self._free_ids):
                    lo = mid
                else:
                    hi = mid - 1
            chosen[kind] = values[lo]
        grown = request.sized(**chosen)
        return grown, self._select_resources(grown, candidates, self._free_ids)

    def _take_ids(self, rank, nslots, request):
        """The (cores, gpus) IDsets to allocate for ``nslots`` on ``rank``:
        everything for an exclusive request, else the lowest free ids."""
        cores, gpus = self._free_ids(rank)
        if request.exclusive:
            return cores, gpus
        return (IDset(list(cores)[:nslots * request.slot_size]),
                IDset(list(gpus)[:nslots * request.gpus]))

    def check_feasibility(self, request):
        if not isinstance(request, ResourceRequest):
            request = ResourceRequest.from_jobspec(request)
        unsupported = request.unsupported_count()
        if unsupported is not None:
            kind, count = unsupported
            raise InfeasibleRequest(
                f"unsatisfiable request: stepped or idset {kind} count"
                f" {count.values} is not supported")
        everything = self._candidates(request, only_up=False)
        plan = self._select_resources(request, everything,
                                      lambda r: (self.cores(r), self.gpus(r)))
        if plan is None:
            raise InfeasibleRequest(
                f"unsatisfiable request: need {request.nslots} slots of"
                f" {request.slot_size} cores, {request.gpus} gpus"
                + (f" on {request.nnodes} nodes" if request.nnodes else ""))

    def alloc(self, jobid, request):
        if not isinstance(request, ResourceRequest):
            request = ResourceRequest.from_jobspec(request)
        self.check_feasibility(request)
        candidates = self._candidates(request)
        plan = self._select_resources(request, candidates, self._free_ids)
        if plan is None:
            raise InsufficientResources("insufficient resources")
        if request.is_ranged():
            request, plan = self._grow(request, plan, candidates)
        result = self.__class__.__new__(self.__class__)
        Rv1Pool.__init__(result, log=self.log)
        result._has_nodelist = True
        for rank, nslots in sorted(plan.items()):
            take_cores, take_gpus = self._take_ids(rank, nslots, request)
            Rv1Set._take(result, rank, take_cores, take_gpus, self.host(rank))
        for name, ranks in self._properties.items():
            mine = ranks.intersect(result.ranks())
            if mine and not name.startswith("+"):
                result._properties[name] = mine
        now = time.time()
        result.starttime = now
        result.expiration = (now + request.duration if request.duration
                             else self.expiration or 0.0)
        result.nslots = request.nslots
        self.register_alloc(jobid, result)
        return result

    # -- views ---------------------------------------------------------------------------
    def copy_allocated(self):
        new = Rv1Set()
        for alloc in self.allocations.values():
            new.append(alloc)
        return new

    def to_rv1set(self):
        """The pool's resources as a plain ``Rv1Set``."""
        return Rv1Set(self.to_dict())

    def copy_down(self):
        return self.to_rv1set().copy_ranks(self.ranks().difference(self.up))

    def copy(self):
        new = type(self)(self.to_dict(), log=self.log)
        new.up = IDset(self.up)
        for jobid, alloc in self.allocations.items():
            new.register_alloc(jobid, alloc)
        new.generation = self.generation
        return new
