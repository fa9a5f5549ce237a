"""``ResourcePool(arg=None, version=1, log=None, **kw)``: the resources a
scheduler allocates from, of any supported R version (version 1:
``Rv1Pool``).  Methods and properties are the implementation's; views
(``to_resource_set``, ``copy_allocated``, ``copy_down``) are
``ResourceSet``s and ``alloc``/``copy`` return pools of the same class.
"""

import json
from collections.abc import Mapping

from flux.resource.ResourceSet import ResourceSet
from flux.resource.Rv1Pool import Rv1Pool

__all__ = ["ResourcePool"]

_VERSIONS = {1: Rv1Pool}


class ResourcePool:
    """A scheduler's resource pool (see the module docstring)."""

    def __init__(self, arg=None, version=1, log=None, **kwargs):
        if isinstance(arg, Rv1Pool):
            self.impl = arg
            return
        if isinstance(arg, str):
            arg = json.loads(arg)
        if isinstance(arg, Mapping):
            version = arg["version"]
        cls = _VERSIONS.get(version)
        if cls is None:
            raise ValueError(f"R version {version} not supported by ResourcePool")
        self.impl = cls(arg, log=log, **kwargs)

    def mark_up(self, ranks):
        self.impl.mark_up(ranks)

    def mark_down(self, ranks):
        self.impl.mark_down(ranks)

    def remove_ranks(self, ranks):
        self.impl.remove_ranks(ranks)
        return self

    def register_alloc(self, jobid, R):
        self.impl.register_alloc(jobid, R)

    def free(self, jobid, R=None, final=False):
        self.impl.free(jobid, R, final=final)

    def update_expiration(self, expiration):
        self.impl.update_expiration(expiration)

    def job_end_times(self):
        return self.impl.job_end_times()

    def parse_resource_request(self, jobspec):
        return self.impl.parse_resource_request(jobspec)

    def alloc(self, jobid, request):
        return ResourcePool(self.impl.alloc(jobid, request))

    def check_feasibility(self, request):
        return self.impl.check_feasibility(request)

    def copy(self):
        return ResourcePool(self.impl.copy())

    def to_resource_set(self):
        return ResourceSet(self.impl.to_rv1set())

    def copy_allocated(self):
        return ResourceSet(self.impl.copy_allocated())

    def copy_down(self):
        return ResourceSet(self.impl.copy_down())

    def dumps(self):
        return self.impl.dumps()

    def to_dict(self):
        return self.impl.to_dict()

    def __str__(self):
        return self.impl.dumps()

    @property
    def expiration(self):
        return self.impl.expiration

    @property
    def generation(self):
        return self.impl.generation
