"""``TreePool``: an ``Rv1Pool`` that places GPU slots by sub-node topology
(spec 21.8), and ``amend(R, hwloc_xml=None)`` which writes that topology.

The topology lives in ``R["scheduling"]``::

    {"writer": "flux.resource.TreePool",
     "children": {"0-3": [{"core": "0-3", "gpu": "0"},
                          {"core": "4-7", "gpu": "1"}]}}

Each key of ``children`` is an idset of ranks sharing one layout; each list
item is a domain (for example a socket) of cores and GPUs close to each
other. A rank's cores or GPUs missing from every domain form one more
domain. A slot that asks for GPUs takes its cores and GPUs from one
domain; other slots are placed as by ``Rv1Pool``. The module attribute
``pool_class`` names the class for pool loaders.
"""

import xml.etree.ElementTree as ET

from flux.idset import IDset
from flux.resource.Rv1Pool import Rv1Pool

__all__ = ["TreePool", "amend", "pool_class"]

WRITER = "flux.resource.TreePool"


class TreePool(Rv1Pool):
    """An ``Rv1Pool`` keeping ``R.scheduling`` and placing GPU slots in
    one topology domain each."""

    def __init__(self, arg=None, log=None, **kwargs):
        kwargs.setdefault("keep_scheduling", True)
        super().__init__(arg, log=log, **kwargs)

    def domains(self, rank):
        """The (cores, gpus) IDset pairs of ``rank``'s domains."""
        children = (self.scheduling or {}).get("children") or {}
        result = []
        for ranks, layout in children.items():
            if rank in IDset(ranks):
                for domain in layout:
                    result.append((IDset(domain.get("core", "")),
                                   IDset(domain.get("gpu", ""))))
                break
        cores, gpus = self.cores(rank), self.gpus(rank)
        result = [(c.intersect(cores), g.intersect(gpus)) for c, g in result]
        for c, g in result:
            cores, gpus = cores.difference(c), gpus.difference(g)
        if cores or gpus:
            result.append((cores, gpus))
        return result

    def _free_domains(self, rank, free):
        free_cores, free_gpus = free(rank)
        return [(c.intersect(free_cores), g.intersect(free_gpus))
                for c, g in self.domains(rank)]

    @staticmethod
    def _slots_in(cores, gpus, request):
        per_core = len(cores) // request.slot_size if request.slot_size else None
        per_gpu = len(gpus) // request.gpus
        return per_gpu if per_core is None else min(per_core, per_gpu)

    def _fits(self, rank, request, free):
        if not request.gpus or request.exclusive:
            return super()._fits(rank, request, free)
        return sum(self._slots_in(c, g, request)
                   for c, g in self._free_domains(rank, free))

    def _take_ids(self, rank, nslots, request):
        if not request.gpus or request.exclusive:
            return super()._take_ids(rank, nslots, request)
        take_cores, take_gpus = IDset(), IDset()
        for cores, gpus in self._free_domains(rank, self._free_ids):
            n = min(self._slots_in(cores, gpus, request), nslots)
            take_cores.add(IDset(list(cores)[:n * request.slot_size]))
            take_gpus.add(IDset(list(gpus)[:n * request.gpus]))
            nslots -= n
            if not nslots:
                break
        return take_cores, take_gpus


pool_class = TreePool


def _even_domains(cores, gpus):
    """Split a node's cores evenly among its GPUs (one domain per GPU)."""
    cores, gpus = list(cores), list(gpus)
    if len(gpus) < 2:
        return [{"core": str(IDset(cores)), "gpu": str(IDset(gpus))}]
    share, extra = divmod(len(cores), len(gpus))
    domains, start = [], 0
    for index, gpu in enumerate(gpus):
        size = share + (1 if index < extra else 0)
        domains.append({"core": str(IDset(cores[start:start + size])),
                        "gpu": str(gpu)})
        start += size
    return domains


def _xml_domains(hwloc_xml, cores, gpus):
    """Domains from an hwloc XML topology: one per Package, holding as
    many of the node's cores (and GPUs, in order) as the package has."""
    root = ET.fromstring(hwloc_xml)
    cores, gpus = list(cores), list(gpus)
    domains = []
    for package in root.iter("object"):
        if package.get("type") != "Package":
            continue
        ncores = sum(1 for o in package.iter("object") if o.get("type") == "Core")
        ngpus = sum(1 for o in package.iter("object")
                    if o.get("type") == "OSDev" and o.get("osdev_type") in ("1", "5"))
        domains.append({"core": str(IDset(cores[:ncores])),
                        "gpu": str(IDset(gpus[:ngpus]))})
        cores, gpus = cores[ncores:], gpus[ngpus:]
    if not domains:
        raise ValueError("hwloc XML has no Package objects")
    return domains


def amend(R, hwloc_xml=None):
    """Add ``scheduling`` (see the module docstring) to R version 1 dict
    ``R`` and return it. Without ``hwloc_xml`` each node's cores are split
    evenly among its GPUs (fake resources); with it, by the XML's
    packages."""
    children = {}
    for entry in R["execution"]["R_lite"]:
        cores = IDset(entry["children"].get("core", ""))
        gpus = IDset(entry["children"].get("gpu", ""))
        if hwloc_xml is not None:
            children[entry["rank"]] = _xml_domains(hwloc_xml, cores, gpus)
        else:
            children[entry["rank"]] = _even_domains(cores, gpus)
    R["scheduling"] = {"writer": WRITER, "children": children}
    return R
