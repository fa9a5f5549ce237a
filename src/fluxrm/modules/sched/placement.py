"""sched's view of the nodes and where a request may go (a part of sched).

- ``ranks_of_R(R)``: the ranks of an R version 1 (``_Node``: rank,
  hostname, cores, gpus and the properties R's ``properties`` key gives
  them);
- ``RankState``: one rank's free cores and gpus (sets of ids);
- ``matches(constraint, node)``: does a node satisfy an RFC 31 constraint
  (``properties``: every name, ``^name`` forbids one; ``hostlist``;
  ``ranks``; ``and``/``or``/``not``)?  ValueError for one that is not
  RFC 31;
- ``Placement``: a constraint and the ranks of the pool matching it,
  computed again only when the pool changed (``generation``); sched keeps
  one per distinct constraint, so jobs of one queue or one ``--requires``
  share it;
- ``job_constraint(request, queue_constraint)``: a job's own constraint
  (``attributes.system.constraints``) and-ed with its queue's
  (``requires``), or None;
- ``plan_counts(req, state, allowed)``: where a request would go on a pool
  given as counts (``{rank: [free cores, free gpus, ncores, ngpus]}``),
  first fit in rank order: ``{rank: (cores, gpus)}`` or None.  Backfill's
  simulations use it; allocation itself works on ``RankState`` (sched's
  ``try_alloc``).
"""

import json

from flux.hostlist import Hostlist
from flux.idset import IDset


class _Node:
    """One rank of an R: what ``RankState`` is made from."""

    __slots__ = ("rank", "hostname", "ncores", "ngpus", "properties")

    def __init__(self, rank, hostname, ncores, ngpus, properties=()):
        self.rank, self.hostname, self.ncores, self.ngpus = rank, hostname, ncores, ngpus
        self.properties = frozenset(properties)


def ranks_of_R(R):
    """The ranks of an R version 1, as ``_Node``s in rank order."""
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
    props = {}
    for name, ranks in (execution.get("properties") or {}).items():
        for rank in IDset(ranks):
            props.setdefault(rank, []).append(name)
    return [_Node(rank, hosts[i] if i < len(hosts) else str(rank), ncores, ngpus,
                  props.get(rank, ()))
            for i, (rank, ncores, ngpus) in enumerate(nodes)]


class RankState:
    """Free resources of one rank."""

    __slots__ = ("rank", "free_cores", "free_gpus", "ncores", "ngpus", "hostname",
                 "properties")

    def __init__(self, node):
        self.rank = node.rank
        self.ncores = node.ncores
        self.ngpus = node.ngpus
        self.hostname = node.hostname
        self.properties = frozenset(getattr(node, "properties", ()))
        self.free_cores = set(range(node.ncores))
        self.free_gpus = set(range(node.ngpus))

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


def capacity(node, req):
    """Slots of ``req`` an idle node holds."""
    n = node.ncores // req.cores
    if req.gpus:
        n = min(n, node.ngpus // req.gpus)
    return n


# -- constraints ------------------------------------------------------------------------
def matches(constraint, node):
    """Does ``node`` (rank, hostname, properties) satisfy ``constraint``?"""
    if not isinstance(constraint, dict):
        raise ValueError("constraint must be an object")
    for op, values in constraint.items():
        if not isinstance(values, list):
            raise ValueError(f"constraint operator '{op}' requires a list")
        if op == "properties":
            for name in values:
                if not isinstance(name, str):
                    raise ValueError(f"property constraint must be a string, "
                                     f"got {type(name).__name__}")
                if name.startswith("^"):
                    if name[1:] in node.properties:
                        return False
                elif name not in node.properties:
                    return False
        elif op == "hostlist":
            if not any(node.hostname in Hostlist(str(v)) for v in values):
                return False
        elif op == "ranks":
            if not any(node.rank in IDset(str(v)) for v in values):
                return False
        elif op == "and":
            if not all(matches(c, node) for c in values):
                return False
        elif op == "or":
            if not any(matches(c, node) for c in values):
                return False
        elif op == "not":
            if not values:
                raise ValueError("not requires a non-empty list")
            if matches(values[0], node):
                return False
        else:
            raise ValueError(f"unknown constraint operator '{op}'")
    return True


def job_constraint(request, queue_constraint=None):
    """The job's constraint and its queue's, and-ed; None if neither."""
    jobspec = request.jobspec
    own = None
    if isinstance(jobspec, dict):
        system = (jobspec.get("attributes") or {}).get("system")
        if isinstance(system, dict):
            own = system.get("constraints") or None
    if own is None:
        return queue_constraint
    if queue_constraint is None:
        return own
    return {"and": [queue_constraint, own]}


class Placement:
    """The ranks of the pool a constraint allows, kept up to date."""

    __slots__ = ("constraint", "text", "generation", "ranks", "error")

    def __init__(self, constraint):
        self.constraint = constraint
        self.text = json.dumps(constraint, sort_keys=True)
        self.generation = -1
        self.ranks = frozenset()
        self.error = None

    def allowed(self, pool, generation):
        """The matching ranks of ``pool`` (RankStates); ``generation``
        tells when the pool changed."""
        if generation != self.generation:
            self.generation = generation
            try:
                self.ranks = frozenset(r.rank for r in pool if matches(self.constraint, r))
                self.error = None
            except (ValueError, TypeError, OSError) as exc:
                self.ranks, self.error = frozenset(), f"invalid constraint: {exc}"
        return self.ranks


# -- plans on counts (backfill's simulations) ----------------------------------------------
def plan_counts(req, state, allowed=None):
    """First fit of ``req`` on ``state`` ({rank: [free cores, free gpus,
    ncores, ngpus]}, rank order): ``{rank: (cores, gpus)}`` or None."""
    if req.nnodes is not None:
        chosen = {}
        for rank, (fc, fg, nc, ng) in state.items():
            if allowed is not None and rank not in allowed:
                continue
            if req.exclusive:
                if fc == nc and fg == ng and _slots(nc, ng, req) >= req.nslots:
                    chosen[rank] = (nc, ng)
            elif _slots(fc, fg, req) >= req.nslots:
                chosen[rank] = (req.nslots * req.cores, req.nslots * req.gpus)
            if len(chosen) == req.nnodes:
                return chosen
        return None
    need = req.nslots
    plan = {}
    for rank, (fc, fg, _nc, _ng) in state.items():
        if allowed is not None and rank not in allowed:
            continue
        n = min(_slots(fc, fg, req), need)
        if n:
            plan[rank] = (n * req.cores, n * req.gpus)
            need -= n
            if need == 0:
                return plan
    return None


def _slots(cores, gpus, req):
    n = cores // req.cores
    if req.gpus:
        n = min(n, gpus // req.gpus)
    return n
