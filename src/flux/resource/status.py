"""flux.resource.status: the execution state of the nodes (spec 21.5).

``resource_status(h)`` sends ``resource.status`` and ``job-manager.stats-get``
at once (and ``resource_list`` when ``get()`` is called) and returns a
``ResourceStatusRPC`` whose ``get()`` gives a ``ResourceStatus``:
``online``, ``offline``, ``exclude``, ``torpid``, ``allocated``,
``housekeeping``, ``drained`` (drained and idle), ``draining`` (drained,
still allocated) and ``avail`` (all but excluded, drained, draining and
torpid: offline nodes stay "avail"), as ``IDset``s of ranks, and
``drain_info`` (``DrainInfo(ranks, timestamp, reason)``).  Only errors of
``resource.status`` are raised; the other two queries failing leave their
sets empty.
"""

from collections import namedtuple

from flux.hostlist import Hostlist
from flux.idset import IDset
from flux.resource.list import resource_list
from flux.resource.ResourceSet import ResourceSet

__all__ = ["resource_status", "ResourceStatusRPC", "ResourceStatus", "DrainInfo"]

DrainInfo = namedtuple("DrainInfo", ["ranks", "timestamp", "reason"])

_SETS = ("online", "offline", "exclude", "torpid")


class ResourceStatus:
    """The execution state of the resources (see the module docstring)."""

    def __init__(self, rstatus=None, allocated_ranks=None, housekeeping_ranks=None):
        rstatus = rstatus or {}
        self.rstatus = rstatus
        self.rset = ResourceSet(rstatus["R"]) if rstatus.get("R") else ResourceSet()
        self.nodelist = self.rset.nodelist
        self._allocated_ranks = IDset(allocated_ranks or "")
        self.housekeeping = IDset(housekeeping_ranks or "")
        self._compute(None)

    def _compute(self, include):
        rstatus = self.rstatus
        self.all = self.rset.ranks
        for name in _SETS:
            setattr(self, name, IDset(rstatus.get(name) or ""))
        self.allocated = IDset(self._allocated_ranks)
        drain = IDset()
        self.drain_info = []
        for ranks, info in (rstatus.get("drain") or {}).items():
            ids = IDset(ranks)
            if include is not None:
                ids = ids.intersect(include)
                if not ids:
                    continue
            drain.add(ids)
            self.drain_info.append(DrainInfo(ids, info.get("timestamp", 0.0),
                                             info.get("reason", "")))
        if include is not None:
            self.all = self.all.intersect(include)
            for name in _SETS + ("allocated",):
                setattr(self, name, getattr(self, name).intersect(include))
        self.drained = drain.difference(self.allocated)
        self.draining = drain.intersect(self.allocated)
        self.avail = self.all.difference(
            self.exclude.union(self.drained, self.draining, self.torpid))

    def __getitem__(self, name):
        return getattr(self, name)

    def get_idset(self, *names):
        result = IDset()
        for name in names:
            result.add(getattr(self, name))
        return result

    def get_drain_info(self, rank):
        if rank not in self.all:
            raise ValueError("invalid rank {rank}")
        for info in self.drain_info:
            if rank in info.ranks:
                return info
        return None

    def filter(self, include):
        """Restrict everything but ``housekeeping`` to ``include`` (ranks,
        or host names); return self."""
        try:
            ranks = IDset(include)
        except (ValueError, TypeError, OSError):
            ranks = IDset(self.nodelist.index(Hostlist(include), ignore_nomatch=True))
        self._compute(ranks)
        return self


class ResourceStatusRPC:
    """The pending queries of ``resource_status``; ``get()`` -> ``ResourceStatus``."""

    def __init__(self, h):
        self.h = h
        self.rstatus = h.rpc("resource.status", nodeid=0)
        self.stats = h.rpc("job-manager.stats-get", nodeid=0)
        self.rlist = None

    def get(self):
        if self.rlist is None:
            self.rlist = resource_list(self.h)
        rstatus = self.rstatus.get()
        try:
            allocated = self.rlist.get().allocated.ranks
        except OSError:
            allocated = IDset()
        housekeeping = IDset()
        try:
            stats = self.stats.get() or {}
            for job in (stats.get("housekeeping") or {}).get("running") or ():
                housekeeping.add(IDset(job.get("allocated", "")))
        except (OSError, ValueError, TypeError, AttributeError):
            pass
        return ResourceStatus(rstatus, allocated, housekeeping)


def resource_status(h):
    """Ask for the resources' execution state: a ``ResourceStatusRPC``."""
    return ResourceStatusRPC(h)
