"""Queues and job policy read from the instance configuration (a part of
job-manager; pure: no service, no I/O).

``QueueConfig(config)`` reads, from the configuration dict
(``broker.config``, ``flux start -c DIR`` / ``--conf``):

- ``[queues.NAME]`` tables, in config order (``names``); each may hold
  ``requires = [property, ...]`` (``requires[NAME]``: the nodes the
  queue's jobs may use, for the scheduler's placement; see below) and a
  ``policy`` table overriding the instance's;
- ``[policy]``: ``policy.jobspec.defaults.system.queue`` (the default
  queue), ``policy.jobspec.defaults.system.duration`` (the duration of a
  job that asks for none), ``policy.limits.duration`` (the longest a job
  may ask for) and ``policy.limits.job-size.{max,min}.{nnodes,ncores,ngpus}``
  (a negative maximum means no limit).  Durations are Flux standard
  durations (``"1h"``) or numbers of seconds.

Each key is looked up in the queue's own ``policy`` table, then the
instance's, as upstream.  With no ``[queues]`` there is one anonymous
queue, ``""``, with the instance's policy; the queue a job names is then
not checked (as before queues existed here: jobspecs may carry any
``attributes.system.queue``).

A queue's ``requires`` is kept here (``QueueConfig.requires``) and, for
the queues that have one, as an RFC 31 constraint
(``QueueConfig.constraints``: ``{name: {"properties": [...]}}``), which
the job-manager sends sched with each of that queue's ``alloc`` requests
(``sched_client``): its jobs run only on nodes with those properties.

``defaults(request)``: the ``jobspec-update`` context that gives a job
without a queue the default queue, and a job without a duration its
queue's default duration (None if nothing applies); ``check(request,
queue)``: refuses, with ``OSError(EINVAL)`` naming the limit, a job its
queue's limits do not allow.  Messages follow upstream's:
"no queue specified", "'x' is not a valid queue", "requested duration
exceeds policy limit of 1h", "requested nnodes exceeds policy limit of 2",
"requested ncores is less than policy minimum of 2".

A configuration that cannot be read raises ``ValueError`` naming the key.
"""

import errno
import math

from flux._format import fsd, parse_fsd
from fluxrm.job import updated_jobspec

SIZE_KEYS = ("nnodes", "ncores", "ngpus")
QUEUE_KEY = "attributes.system.queue"
DURATION_KEY = "attributes.system.duration"


def _table(value, where):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a table")
    return value


def _lookup(tables, path):
    """The value at dotted ``path`` in the first table holding it, else None."""
    for table, where in tables:
        node = table
        for i, part in enumerate(path):
            if not isinstance(node, dict) or part not in node:
                node = None
                break
            node = node[part]
            if i < len(path) - 1 and node is not None and not isinstance(node, dict):
                raise ValueError(f"{where}.{'.'.join(path[:i + 1])} must be a table")
        if node is not None:
            return node, f"{where}.{'.'.join(path)}"
    return None, None


def _duration(value, where):
    """Seconds of a configured duration (FSD string or number)."""
    if isinstance(value, bool):
        raise ValueError(f"{where}: invalid Flux standard duration")
    if isinstance(value, (int, float)):
        if value < 0 or math.isnan(value):
            raise ValueError(f"{where}: invalid Flux standard duration")
        return float(value)
    if isinstance(value, str):
        try:
            return parse_fsd(value)
        except ValueError:
            raise ValueError(f"{where}: invalid Flux standard duration") from None
    raise ValueError(f"{where}: invalid Flux standard duration")


def _size(value, where):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where} must be an integer")
    return value


class Policy:
    """One queue's effective policy (seconds; ``inf``: no limit; a
    default duration of 0: none)."""

    __slots__ = ("default_duration", "max_duration", "max", "min")

    def __init__(self, tables):
        value, where = _lookup(tables, ("jobspec", "defaults", "system", "duration"))
        self.default_duration = 0.0 if value is None else _duration(value, where)
        if self.default_duration == math.inf:
            self.default_duration = 0.0  # unlimited: what no duration means
        value, where = _lookup(tables, ("limits", "duration"))
        self.max_duration = math.inf if value is None else _duration(value, where)
        if self.max_duration == 0:
            self.max_duration = math.inf  # 0 is unlimited, as in a jobspec
        self.max, self.min = {}, {}
        for key in SIZE_KEYS:
            value, where = _lookup(tables, ("limits", "job-size", "max", key))
            limit = math.inf if value is None else _size(value, where)
            self.max[key] = math.inf if limit < 0 else limit
            value, where = _lookup(tables, ("limits", "job-size", "min", key))
            limit = 0 if value is None else _size(value, where)
            self.min[key] = math.inf if limit < 0 else limit

    def as_dict(self):
        """What ``flux queue list`` shows (``inf`` as the string "inf")."""
        def num(value):
            return "inf" if value == math.inf else value
        return {"defaults": {"duration": self.default_duration},
                "limits": {"duration": num(self.max_duration),
                           "max": {k: num(v) for k, v in self.max.items()},
                           "min": {k: num(v) for k, v in self.min.items()}}}


def _counts(request):
    """``{nnodes, ncores, ngpus}`` a request asks for (nnodes 0: any), or
    None for a shape sched cannot read."""
    shape = request.shape
    if shape is None:
        return None
    nslots = shape.total_slots()
    return {"nnodes": shape.nnodes or 0, "ncores": nslots * shape.cores,
            "ngpus": nslots * shape.gpus}


def einval(text):
    return OSError(errno.EINVAL, text)


class QueueConfig:
    """The queues and policies of one configuration (see the module
    docstring)."""

    def __init__(self, config):
        config = _table(config, "configuration")
        queues = _table(config.get("queues"), "queues")
        top = _table(config.get("policy"), "policy")
        self.names = list(queues)
        self.named = bool(self.names)
        self.requires = {}
        self.constraints = {}  # queue -> RFC 31 constraint of its requires
        self.policies = {}
        for name in self.names:
            where = f"queues.{name}"
            table = _table(queues[name], where)
            requires = table.get("requires", [])
            if (not isinstance(requires, list)
                    or not all(isinstance(p, str) for p in requires)):
                raise ValueError(f"{where}.requires must be a list of strings")
            self.requires[name] = requires
            if requires:
                self.constraints[name] = {"properties": list(requires)}
            own = _table(table.get("policy"), f"{where}.policy")
            self.policies[name] = Policy([(own, f"{where}.policy"), (top, "policy")])
        if not self.named:
            self.policies[""] = Policy([(top, "policy")])
        value, where = _lookup([(top, "policy")], ("jobspec", "defaults", "system", "queue"))
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{where} must be a string")
        self.default_queue = value or None
        if self.default_queue is not None and self.default_queue not in self.policies:
            raise ValueError(f"{where}: '{self.default_queue}' is not a configured queue")
        # with nothing configured, submissions need no look at all
        self.trivial = not self.named and not _policy_set(self.policies[""])
        self._defaults = {}  # JobRequest -> (context or None, updated request)

    # -- which queue ------------------------------------------------------------------
    def queue_of(self, request):
        """The queue a job of this request belongs to: its
        ``attributes.system.queue`` when queues are configured, else the
        anonymous queue ``""``."""
        if not self.named:
            return ""
        return request.listing["queue"] or ""

    def lookup(self, name):
        """Refuse a queue name that is not configured (EINVAL)."""
        if self.named:
            if not name:
                raise einval("no queue specified")
            if name not in self.policies:
                raise einval(f"'{name}' is not a valid queue")
        elif name:
            raise einval(f"'{name}' is not a valid queue")
        return name

    # -- defaults ------------------------------------------------------------------
    def defaults(self, request):
        """``(jobspec-update context, updated JobRequest)`` for a job
        submitted with this request, or None when no default applies.
        Remembered per request (one object per distinct jobspec text)."""
        if self.trivial:
            return None
        try:
            return self._defaults[request]
        except KeyError:
            pass
        ctx = {}
        queue = request.listing["queue"]
        if self.named and not queue and self.default_queue:
            queue = ctx[QUEUE_KEY] = self.default_queue
        policy = self.policies.get(queue if self.named else "")
        if policy is not None and policy.default_duration and _duration_of(request) == 0:
            ctx[DURATION_KEY] = policy.default_duration
        result = (ctx, updated_request(request, [ctx])) if ctx else None
        if len(self._defaults) >= 256:
            self._defaults.clear()
        self._defaults[request] = result
        return result

    # -- limits ------------------------------------------------------------------
    def check(self, request):
        """Refuse (EINVAL) a request that names no valid queue or that its
        queue's limits do not allow; the request is the one with the
        defaults applied.  Returns the queue name."""
        queue = self.lookup(self.queue_of(request))
        policy = self.policies[queue]
        limit = policy.max_duration
        if limit != math.inf:
            duration = _duration_of(request)
            if duration == 0 or duration > limit:
                raise einval(f"requested duration exceeds policy limit of {fsd(limit)}")
        counts = _counts(request)
        if counts is not None:
            for key in SIZE_KEYS:
                count = counts[key]
                if key == "nnodes" and count == 0:
                    continue  # no node count asked: not one to compare
                if count > policy.max[key]:
                    raise einval(f"requested {key} exceeds policy limit of"
                                 f" {policy.max[key]}")
                if count < policy.min[key]:
                    raise einval(f"requested {key} is less than policy minimum of"
                                 f" {policy.min[key]}")
        return queue


def _policy_set(policy):
    return bool(policy.default_duration or policy.max_duration != math.inf
                or any(v != math.inf for v in policy.max.values())
                or any(policy.min.values()))


def _duration_of(request):
    shape = request.shape
    if shape is not None:
        return shape.duration
    return request.listing["duration"] or 0.0


def updated_request(request, contexts):
    """The ``JobRequest`` of ``request``'s jobspec after ``contexts``."""
    from fluxrm.jobrequest import JobRequest

    return JobRequest(updated_jobspec(request.jobspec, contexts))
