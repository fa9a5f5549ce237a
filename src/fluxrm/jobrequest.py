"""A job's request: its jobspec parsed once, at ingest.

``JobRequest(jobspec)`` reads a decoded jobspec once into what the job
services need of it, and is never modified afterwards (setting an
attribute raises): job-ingest builds it in its cached validation, so
identical submissions share one object; the job-manager builds it again
for the jobs it recovers at restart; sched, job-exec and job-list read
``job.request`` and never the jobspec itself.

- for sched: ``shape`` (a ``Shape``: nodes, slots, cores and gpus per slot,
  node exclusivity, duration) or, for a shape sched cannot serve,
  ``shape_error`` (the text; job-ingest refuses it, a job submitted with
  FLUX_JOB_NOVALIDATE or recovered gets the ``alloc`` exception);
- for job-exec: ``command``, ``environment``, ``cwd``, ``shell_options``
  (a mapping), ``files`` (``attributes.system.files``, None if absent),
  ``exec_test`` (``attributes.system.exec.test``, None if
  absent) and ``ntasks(R)``, the number of tasks to start on R;
- for job-list: ``listing``, the attributes a jobspec determines (name,
  cwd, queue, project, bank, ntasks, ncores, nnodes, duration), a dict
  shared by every job of the request (read only);
- ``jobspec``: the decoded jobspec itself, read only, for the rare paths
  that need it whole (job-list applying a ``jobspec-update``).

Any decoded JSON is taken (jobs submitted without validation, rows stored
by older versions): what does not parse becomes ``shape_error``, None
fields or an ``ntasks`` that raises ValueError, never another exception
at construction.
"""

import os

from flux.idset import IDset
from flux.job.Jobspec import TASKS_MAX


class Shape:
    """The resources a job asks for, in the shapes sched supports."""

    __slots__ = ("nnodes", "nslots", "cores", "gpus", "exclusive", "duration")

    def __init__(self, nnodes, nslots, cores, gpus, exclusive, duration):
        self.nnodes = nnodes  # None: slots may go anywhere
        self.nslots = nslots  # per node when nnodes is set, else in total
        self.cores = cores  # per slot
        self.gpus = gpus  # per slot
        self.exclusive = exclusive
        self.duration = duration  # seconds, 0.0: unlimited

    def total_slots(self):
        return self.nslots * (self.nnodes or 1)


_BAD_COUNT = object()  # a per-resource or task count that is not a number


class JobRequest:
    """What a jobspec asks for (see the module docstring); immutable."""

    __slots__ = ("jobspec", "shape", "shape_error", "command", "environment",
                 "cwd", "shell_options", "files", "exec_test", "per_resource",
                 "ntasks_total", "ntasks_per_slot", "listing")

    def __init__(self, jobspec):
        put = object.__setattr__
        put(self, "jobspec", jobspec)
        try:
            shape, error = parse_shape(jobspec), None
        except (ValueError, TypeError, AttributeError) as exc:
            shape, error = None, str(exc)
        put(self, "shape", shape)
        put(self, "shape_error", error)
        system = _system(jobspec)
        task = _first_task(jobspec)
        command = task.get("command")
        put(self, "command", command if isinstance(command, list) else None)
        env = system.get("environment")
        put(self, "environment", env if isinstance(env, dict) else None)
        cwd = system.get("cwd")
        put(self, "cwd", cwd if isinstance(cwd, str) and cwd else None)
        shell = system.get("shell")
        options = shell.get("options") if isinstance(shell, dict) else None
        put(self, "shell_options", options if isinstance(options, dict) else {})
        put(self, "files", system.get("files"))
        exec_ = system.get("exec")
        put(self, "exec_test", exec_.get("test") if isinstance(exec_, dict) else None)
        per_resource = self.shell_options.get("per-resource")
        if isinstance(per_resource, dict):
            try:
                per_resource = (per_resource.get("type"),
                                int(per_resource.get("count", 1)))
            except (TypeError, ValueError, OverflowError):
                per_resource = _BAD_COUNT
        else:
            per_resource = None
        put(self, "per_resource", per_resource)
        total = per_slot = None
        count = task.get("count") or {}
        try:
            if "total" in count:
                total = int(count["total"])
            else:
                per_slot = int(count.get("per_slot", 1))
        except (TypeError, ValueError, OverflowError, AttributeError):
            total = _BAD_COUNT
        put(self, "ntasks_total", total)
        put(self, "ntasks_per_slot", per_slot)
        put(self, "listing", listing_of(jobspec))

    def __setattr__(self, name, value):
        raise AttributeError(f"a JobRequest is immutable (setting {name!r})")

    def ntasks(self, R):
        """The number of tasks to start on R: the ``per-resource`` shell
        option (per node or per core of R), else the task count (``total``,
        or ``per_slot`` times R's slots).  ValueError or KeyError if it
        cannot be told."""
        execution = R["execution"]
        per_resource = self.per_resource
        if per_resource is _BAD_COUNT:
            raise ValueError("per-resource count is not a number")
        if per_resource is not None:
            rtype, count = per_resource
            if rtype == "node":
                return count * len(execution["nodelist"])
            if rtype == "core":
                return count * sum(
                    len(IDset(e["children"].get("core", ""))) * len(IDset(e["rank"]))
                    for e in execution["R_lite"])
        total = self.ntasks_total
        if total is _BAD_COUNT:
            raise ValueError("task count is not a number")
        if total is not None:
            return total
        return self.ntasks_per_slot * execution.get("nslots", 1)

    def __repr__(self):
        return f"<JobRequest {self.listing.get('name')!r} shape={self.shape_error or 'ok'}>"


def _system(jobspec):
    attributes = jobspec.get("attributes") if isinstance(jobspec, dict) else None
    system = attributes.get("system") if isinstance(attributes, dict) else None
    return system if isinstance(system, dict) else {}


def _first_task(jobspec):
    tasks = jobspec.get("tasks") if isinstance(jobspec, dict) else None
    if isinstance(tasks, list) and tasks and isinstance(tasks[0], dict):
        return tasks[0]
    return {}


# -- the shape (sched) ---------------------------------------------------------------


def _count(res, what):
    count = res.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError(f"{what} count must be a non-negative integer")
    return count


def _mapping(value, what):
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a mapping")
    return value


def _children(res, what):
    children = res.get("with") or []
    if not isinstance(children, list):
        raise ValueError(f"{what} 'with' must be a list")
    return [_mapping(child, "resource") for child in children]


def _duration(jobspec):
    """``attributes.system.duration`` in seconds (0: unlimited)."""
    attributes = jobspec.get("attributes") or {}
    system = _mapping(attributes, "attributes").get("system") or {}
    duration = _mapping(system, "attributes.system").get("duration") or 0
    if (type(duration) not in (int, float)
            or not 0 <= duration < (1 << 31)):  # false for NaN as well
        raise ValueError("attributes.system.duration must be a number of"
                         " seconds >= 0 and < 2**31")
    return float(duration)


def _slot_shape(slot):
    if slot.get("type") != "slot":
        raise ValueError(f"expected a slot, found '{slot.get('type')}'")
    cores = gpus = 0
    for child in _children(slot, "slot"):
        ctype = child.get("type")
        if ctype == "core":
            cores = _count(child, "core")
        elif ctype == "gpu":
            gpus = _count(child, "gpu")
        else:
            raise ValueError(f"resource type '{ctype}' is not supported in a slot")
        if child.get("with"):
            raise ValueError(f"{ctype} cannot contain other resources")
    if cores < 1:
        raise ValueError("a slot must contain at least one core")
    return cores, gpus


def parse_shape(jobspec):
    """A jobspec's ``Shape``; ValueError (or TypeError, AttributeError)
    with the reason for a shape sched does not support (RFC 25 subset:
    ``slot>core[,gpu]`` and ``node>slot>core[,gpu]``, exclusive nodes) or
    more tasks than a system can run (``flux.job.Jobspec.TASKS_MAX``)."""
    resources = _mapping(jobspec, "jobspec").get("resources")
    if not isinstance(resources, list) or len(resources) != 1:
        raise ValueError("jobspec must have exactly one top-level resource")
    top = _mapping(resources[0], "resource")
    exclusive = False
    if top.get("type") == "node":
        nnodes = _count(top, "node")
        if nnodes < 1:
            raise ValueError("node count must be at least 1")
        exclusive = bool(top.get("exclusive", False))
        children = _children(top, "node")
        if len(children) != 1:
            raise ValueError("a node must contain exactly one slot")
        slot = children[0]
    elif top.get("type") == "slot":
        nnodes = None
        slot = top
    else:
        raise ValueError(f"top-level resource '{top.get('type')}' is not supported;"
                         " use node or slot")
    nslots = _count(slot, "slot")
    if nslots < 1:
        raise ValueError("slot count must be at least 1")
    cores, gpus = _slot_shape(slot)
    duration = _duration(jobspec)
    _check_ntasks(jobspec, nslots * (nnodes or 1), cores)
    return Shape(nnodes, nslots, cores, gpus, exclusive, duration)


def _check_ntasks(jobspec, nslots, cores):
    """Refuse more tasks than a system can run (job-ingest's validation
    does too; this also covers jobs submitted without it)."""
    tasks = jobspec.get("tasks")
    if not isinstance(tasks, list) or len(tasks) != 1:
        raise ValueError("tasks must contain exactly one task")
    count = _mapping(_mapping(tasks[0], "task").get("count"), "task count")
    if "total" in count:
        ntasks = count["total"]
    else:
        ntasks = count.get("per_slot", 1)
        if type(ntasks) is int:
            ntasks *= nslots
    if type(ntasks) is not int or not 1 <= ntasks <= TASKS_MAX:
        raise ValueError(f"the task count must be an integer in [1:{TASKS_MAX}]")
    system = (jobspec.get("attributes") or {}).get("system") or {}
    options = (system.get("shell") or {}).get("options") if isinstance(
        system.get("shell"), dict) else None
    per_resource = options.get("per-resource") if isinstance(options, dict) else None
    if isinstance(per_resource, dict):
        n = per_resource.get("count", 1)
        if type(n) is not int or not 1 <= n * nslots * cores <= TASKS_MAX:
            raise ValueError("the per-resource task count must be an integer"
                             f" giving at most {TASKS_MAX} tasks")


# -- the listing (job-list) ----------------------------------------------------------


def _list_count(res):
    """A resource count: an int, or the ``min`` of a range object."""
    count = res.get("count", 1)
    if isinstance(count, dict):
        count = count.get("min", 1)
    if isinstance(count, bool) or not isinstance(count, int):
        raise ValueError("invalid count")
    return count


def _find_slot(resources, mult=1, nodes=None, exclusive=False):
    """Walk to the slot: (slot, slots in total, node count, node exclusive)."""
    for res in resources or ():
        rtype = res.get("type")
        count = _list_count(res)
        if rtype == "slot":
            return res, mult * count, nodes, exclusive
        if rtype == "node":
            found = _find_slot(res.get("with"), mult * count,
                               (nodes or 1) * count, bool(res.get("exclusive")))
        else:
            found = _find_slot(res.get("with"), mult * count, nodes, exclusive)
        if found is not None:
            return found
    return None


def _cores_in(resources):
    total = 0
    for res in resources or ():
        count = _list_count(res)
        if res.get("type") == "core":
            total += count
        else:
            total += count * _cores_in(res.get("with"))
    return total


def listing_of(jobspec):
    """The job-list attributes a jobspec determines (None where it does not)."""
    out = {"name": None, "cwd": None, "queue": None, "project": None,
           "bank": None, "ntasks": None, "ncores": None, "nnodes": None,
           "duration": 0.0}
    if not isinstance(jobspec, dict):
        return out
    system = _system(jobspec)
    for key in ("cwd", "queue", "project", "bank"):
        value = system.get(key)
        if isinstance(value, str) and value:
            out[key] = value
    try:
        out["duration"] = float(system.get("duration") or 0.0)
    except (TypeError, ValueError):
        pass
    name = None
    job = system.get("job")
    if isinstance(job, dict) and isinstance(job.get("name"), str):
        name = job["name"]
    tasks = jobspec.get("tasks")
    if not isinstance(tasks, list):
        tasks = []
    if name is None and tasks and isinstance(tasks[0], dict):
        command = tasks[0].get("command")
        if isinstance(command, list) and command:
            command = command[0]
        if isinstance(command, str) and command:
            name = os.path.basename(command) or command
    out["name"] = name if name is not None else ""
    try:
        found = _find_slot(jobspec.get("resources"))
    except (AttributeError, TypeError, ValueError, RecursionError):
        found = None
    if found is None:
        return out
    slot, nslots, nnodes, exclusive = found
    out["nnodes"] = nnodes
    try:
        if not exclusive:
            out["ncores"] = nslots * _cores_in(slot.get("with"))
        ntasks = 0
        for task in tasks:
            count = task.get("count") or {}
            if "total" in count:
                ntasks += int(count["total"])
            elif "per_slot" in count:
                ntasks += int(count["per_slot"]) * nslots
        out["ntasks"] = ntasks if tasks else None
    except (AttributeError, TypeError, ValueError, RecursionError):
        pass
    return out
