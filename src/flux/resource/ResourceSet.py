"""``ResourceSet``: a resource set of any supported R version (spec 21.2).

``ResourceSet(arg=None, version=1, **kwargs)`` wraps an implementation
(version 1: ``Rv1Set``): from nothing (empty), R JSON text, an R mapping or
an implementation.  It adds a free-form ``state`` carried over by copies
and set operations, and converts operands of the set operations.
"""

import json
from collections.abc import Mapping

from flux.idset import IDset
from flux.resource.ResourceSetImplementation import ResourceSetImplementation
from flux.resource.Rv1Set import Rv1Set

_VERSIONS = {1: Rv1Set}


def _ranks_arg(ranks):
    if isinstance(ranks, IDset):
        return ranks
    return IDset(ranks)


class ResourceSet:
    """A set of resources (see the module docstring)."""

    def __init__(self, arg=None, version=1, **kwargs):
        self.state = None
        if isinstance(arg, ResourceSetImplementation):
            self.impl = arg
            self.version = arg.version
            return
        if arg is None:
            pass
        elif isinstance(arg, str):
            arg = json.loads(arg)
            version = arg["version"]
        elif isinstance(arg, Mapping):
            version = arg["version"]
        else:
            raise TypeError(f"ResourceSet cannot be instantiated from {type(arg)}")
        cls = _VERSIONS.get(version)
        if cls is None:
            raise ValueError(f"R version {version} not supported")
        self.version = version
        self.impl = cls(arg, **kwargs)

    def _wrap(self, impl):
        new = ResourceSet(impl)
        new.state = self.state
        return new

    @staticmethod
    def _impl_of(arg):
        if isinstance(arg, ResourceSet):
            return arg.impl
        return ResourceSet(arg).impl

    # -- text -------------------------------------------------------------------------------
    def __str__(self):
        return self.impl.dumps()

    def dumps(self):
        return self.impl.dumps()

    @property
    def rlist(self):
        return self.impl.dumps()

    def encode(self):
        return self.impl.encode()

    def to_dict(self):
        return self.impl.to_dict()

    # -- counts -------------------------------------------------------------------------------
    def count(self, name):
        return self.impl.count(name)

    @property
    def nnodes(self):
        return len(self.impl.ranks())

    @property
    def ncores(self):
        return self.impl.count("core")

    @property
    def ngpus(self):
        return self.impl.count("gpu")

    @property
    def ranks(self):
        return self.impl.ranks()

    @property
    def nodelist(self):
        return self.impl.nodelist()

    @property
    def properties(self):
        return ",".join(json.loads(self.impl.get_properties()))

    def get_properties(self):
        return self.impl.get_properties()

    @property
    def expiration(self):
        return self.impl.expiration

    @expiration.setter
    def expiration(self, value):
        self.impl.expiration = float(value)

    @property
    def starttime(self):
        return self.impl.starttime

    @starttime.setter
    def starttime(self, value):
        self.impl.starttime = float(value)

    # -- copies and set operations ----------------------------------------------------------------
    def copy(self):
        return self._wrap(self.impl.copy())

    def copy_ranks(self, ranks):
        return self._wrap(self.impl.copy_ranks(_ranks_arg(ranks)))

    def copy_constraint(self, constraint):
        if isinstance(constraint, str):
            constraint = json.loads(constraint)
        return self._wrap(self.impl.copy_constraint(constraint))

    def remove_ranks(self, ranks):
        self.impl.remove_ranks(_ranks_arg(ranks))
        return self

    def union(self, *args):
        return self._wrap(self.impl.union(*(self._impl_of(a) for a in args)))

    def diff(self, *args):
        return self._wrap(self.impl.diff(*(self._impl_of(a) for a in args)))

    def intersect(self, *args):
        return self._wrap(self.impl.intersect(*(self._impl_of(a) for a in args)))

    def append(self, *args):
        self.impl.append(*(self._impl_of(a) for a in args))
        return self

    def add(self, *args):
        self.impl.add(*(self._impl_of(a) for a in args))
        return self

    __or__ = union
    __sub__ = diff
    __and__ = intersect

    def set_property(self, name, ranks=None):
        self.impl.set_property(name, ranks)
        return self

    def host_ranks(self, hosts, ignore_nomatch=False):
        return self.impl.host_ranks(hosts, ignore_nomatch=ignore_nomatch)
