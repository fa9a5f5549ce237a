"""flux.resource.list: what the scheduler says of the resources (spec 21.4).

``resource_list(h)`` sends ``resource.sched-status`` to rank 0 (or the
topic in ``$FLUX_RESOURCE_LIST_RPC``; on ENOSYS, ``sched.resource-status``)
and returns a ``ResourceListRPC`` future whose ``get()`` gives a new
``SchedResourceList``: ``all``, ``down``, ``allocated`` (``ResourceSet``s
whose ``state`` is that name) and, computed on first use, ``up`` (all -
down) and ``free`` (up - allocated).
"""

import errno
import os

from flux.future import FutureExt
from flux.idset import IDset
from flux.resource.ResourceSet import ResourceSet

__all__ = ["resource_list", "ResourceListRPC", "SchedResourceList"]

_STATES = ("all", "down", "allocated")


class SchedResourceList:
    """The scheduler's view of the resources (see the module docstring)."""

    def __init__(self, resp):
        for state in _STATES:
            R = resp.get(state) if resp else None
            rset = ResourceSet(R) if R else ResourceSet()
            rset.state = state
            setattr(self, f"_{state}", rset)
        self._up = None
        self._free = None

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError
        if name in _STATES:
            return getattr(self, f"_{name}")
        if name == "up":
            if self._up is None:
                self._up = self._all - self._down
                self._up.state = "up"
            return self._up
        if name == "free":
            if self._free is None:
                self._free = self.up - self._allocated
                self._free.state = "free"
            return self._free
        raise AttributeError

    def __getitem__(self, name):
        return getattr(self, name)

    def filter(self, include):
        """Keep only ``include`` (ranks, or host names); return self."""
        try:
            ranks = IDset(include)
        except (ValueError, TypeError, OSError):
            ranks = IDset(self._all.host_ranks(include, ignore_nomatch=True))
        for state in _STATES:
            rset = getattr(self, f"_{state}")
            setattr(self, f"_{state}", rset.copy_ranks(ranks))
        return self

    def copy_constraint(self, constraint):
        new = SchedResourceList(None)
        for state in _STATES:
            setattr(new, f"_{state}", getattr(self, f"_{state}").copy_constraint(constraint))
        return new


class ResourceListRPC(FutureExt):
    """The future of ``resource_list``; ``get()`` -> ``SchedResourceList``."""

    def __init__(self, flux_handle, topic=None, nodeid=0):
        self.topic = topic or os.environ.get("FLUX_RESOURCE_LIST_RPC",
                                             "resource.sched-status")
        self.nodeid = nodeid
        super().__init__(self._init, flux_handle=flux_handle)

    def _init(self, future):
        h = future.get_flux()

        def answered(rpc, retried):
            try:
                resp = rpc.get()
            except OSError as exc:
                if exc.errno == errno.ENOSYS and not retried:
                    h.rpc("sched.resource-status", nodeid=self.nodeid).then(
                        answered, True)
                    return
                self.fulfill_error(exc.errno, exc.strerror)
                return
            self.fulfill(resp)

        h.rpc(self.topic, nodeid=self.nodeid).then(answered, False)

    def get(self):
        return SchedResourceList(super().get())


def resource_list(flux_handle):
    """Ask rank 0 for the scheduler's view: a ``ResourceListRPC``."""
    return ResourceListRPC(flux_handle)
