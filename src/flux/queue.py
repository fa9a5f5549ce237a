"""``flux.queue``: the instance's queues, their state, limits and defaults.

- ``QueueList(h, queues=None)``: asks ``config.get``, then
  ``job-manager.queue-status`` once per queue (``{}`` once when no queues
  are configured: the anonymous queue ``""``).  ``queues``: names to keep
  (None or empty: all); an unconfigured name raises ``ValueError("No such
  queue: X")``.  ``ql["batch"]`` / ``ql.batch`` (``KeyError`` for an
  unknown name, both ways), iteration in config order; ``default_queue``
  is ``policy.jobspec.defaults.system.queue`` or ``""``.
- ``QueueInfo``: ``name``, ``is_default``, ``enabled``, ``started``,
  ``disable_reason``, ``stop_reason``, ``config``, ``parent``,
  ``requires``, ``limits`` (``QueueLimits(min, max, duration)``, each of
  min and max a ``QueueResourceCounts(nnodes, ncores, ngpus)``; ``inf``
  for no limit, a negative configured size meaning ``inf``) and
  ``defaults`` (``QueueDefaults(duration)``); ``timelimit`` is a synonym
  of ``duration`` on both.  Each key is looked up in the queue's table,
  then its parent's, then the top level.

- ``QueueInfo.resources``: a ``QueueResources``, the instance's
  ``flux.resource.SchedResourceList`` (``all up down allocated free``)
  restricted to the nodes with the queue's ``requires`` properties (its
  own, else its parent's), the whole instance without; the list is asked
  for (``resource_list``) once per ``QueueList``, overlapping its other
  requests, and restricted when first used.
"""

import math
from dataclasses import dataclass

from flux._format import parse_fsd

__all__ = ["QueueList", "QueueInfo", "QueueLimits", "QueueDefaults",
           "QueueResourceCounts", "QueueResources"]


class QueueResources:
    """A queue's view of the instance's resources: attribute access goes to
    the ``SchedResourceList`` restricted by the queue's ``requires``
    (computed on first use, from ``resource_list``'s future or list)."""

    def __init__(self, rlist, requires):
        self._source = rlist
        self._requires = list(requires or [])
        self._view = None

    def _list(self):
        if self._view is None:
            rlist = self._source
            if hasattr(rlist, "get") and not hasattr(rlist, "copy_constraint"):
                rlist = rlist.get()  # the ResourceListRPC future
            if self._requires:
                rlist = rlist.copy_constraint({"properties": self._requires})
            self._view = rlist
        return self._view

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._list(), name)


@dataclass
class QueueResourceCounts:
    nnodes: float
    ncores: float
    ngpus: float


@dataclass
class QueueLimits:
    min: QueueResourceCounts
    max: QueueResourceCounts
    duration: float

    @property
    def timelimit(self):
        return self.duration


@dataclass
class QueueDefaults:
    duration: float

    @property
    def timelimit(self):
        return self.duration


def _get(table, path):
    for part in path.split("."):
        if not isinstance(table, dict) or part not in table:
            return None
        table = table[part]
    return table


def _fsd(value):
    if value is None:
        return math.inf
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return parse_fsd(value)


def _size(value, default):
    if value is None:
        return default
    return math.inf if value < 0 else value


class QueueInfo:
    def __init__(self, name, config, resources, enabled, started, default,
                 parent="", blocked=None, disable_reason=None, stop_reason=None):
        self.name = name
        self.config = config or {}
        self.resources = resources
        self.enabled = enabled
        self.started = started
        self.is_default = default
        self.parent = parent or ""
        self.blocked = blocked
        self.disable_reason = disable_reason
        self.stop_reason = stop_reason
        queues = self.config.get("queues") or {}
        own = queues.get(name) or {} if name else {}
        parent_table = {}
        if self.parent:
            if self.parent not in queues:
                raise ValueError(f"queue '{name}': parent queue '{self.parent}'"
                                 " is not configured")
            parent_table = queues[self.parent] or {}
        tables = [own, parent_table, self.config]
        self.requires = own.get("requires") or parent_table.get("requires") or []
        if resources is not None and not isinstance(resources, QueueResources):
            self.resources = QueueResources(resources, self.requires)

        def lookup(path):
            for table in tables:
                value = _get(table, path)
                if value is not None:
                    return value
            return None

        self.defaults = QueueDefaults(
            _fsd(lookup("policy.jobspec.defaults.system.duration")))
        counts = {}
        for which, default in (("min", 0), ("max", math.inf)):
            counts[which] = QueueResourceCounts(*(
                _size(lookup(f"policy.limits.job-size.{which}.{key}"), default)
                for key in ("nnodes", "ncores", "ngpus")))
        self.limits = QueueLimits(counts["min"], counts["max"],
                                  _fsd(lookup("policy.limits.duration")))

    def __repr__(self):
        return f"<QueueInfo {self.name!r} enabled={self.enabled} started={self.started}>"


class QueueList:
    def __init__(self, h, queues=None):
        from flux.resource import resource_list

        config_future = h.rpc("config.get")
        rlist = resource_list(h)  # overlaps the other requests; read when used
        config = config_future.get() or {}
        configured = list((config.get("queues") or {}).keys())
        if queues:
            for name in queues:
                if name not in configured:
                    raise ValueError(f"No such queue: {name}")
            names = [name for name in queues]
        else:
            names = configured
        self.default_queue = _get(config, "policy.jobspec.defaults.system.queue") or ""
        if configured:
            futures = [(name, h.rpc("job-manager.queue-status", {"name": name}))
                       for name in names]
        else:
            futures = [("", h.rpc("job-manager.queue-status", {}))]
        self._queues = {}
        for name, future in futures:
            status = future.get()
            parent = (config.get("queues") or {}).get(name, {}).get("parent", "") \
                if name else ""
            self._queues[name] = QueueInfo(
                name, config, rlist, status["enable"], status["start"],
                name == self.default_queue and bool(name), parent=parent,
                blocked=status.get("blocked"),
                disable_reason=status.get("disable_reason"),
                stop_reason=status.get("stop_reason"))

    def __getitem__(self, name):
        if name is None:
            name = ""
        return self._queues[name]

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._queues[name]

    def __iter__(self):
        return iter(self._queues.values())
