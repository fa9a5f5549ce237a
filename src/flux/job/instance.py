"""What a job that is a Flux instance is doing: the ``instance.*`` fields
of ``flux jobs`` (spec 14.3).

``InstanceInfo(uri=None, timeout=QUERY_TIMEOUT)`` asks the instance at
``uri`` (the job's ``uri`` memo) for its job counts (``job-list.job-stats``)
and its resources (``resource.sched-status``); every value is blank when
there is no URI or the instance does not answer within ``timeout``
seconds (connecting included).  Its attributes:

- ``stats``: a ``StatsInfo`` (a ``JobStats``) printing as
  ``PD:<pending> R:<running> CD:<successful> F:<failed>``; ``stats.total``...
- ``resources.{all,up,down,allocated,free}.{ncores,ngpus,nnodes}``;
- ``utilization`` / ``gpu_utilization``: allocated / up cores (GPUs), a
  fraction (``{instance.utilization:5.0%h}``); blank without any;
- ``progress``: inactive / total jobs, a fraction; blank with no jobs.

``prefetch(jobs, timeout=QUERY_TIMEOUT)`` fills the ``instance`` of many
``JobInfo``s at once: the running jobs with a URI are asked in parallel
(``WORKERS`` at a time, each in a daemon thread, so an instance that hangs
delays the listing by at most ``timeout`` seconds and shows blank), the
others get a blank ``InstanceInfo``.
"""

from flux.job.stats import JobStats

__all__ = ["InstanceInfo", "StatsInfo", "prefetch"]

QUERY_TIMEOUT = 5.0  # seconds an instance is given to answer
WORKERS = 8  # instances asked at once


def _empty():
    from flux.job.info import EmptyObject

    return EmptyObject()


class StatsInfo(JobStats):
    """Job counts of an instance; ``str()`` is ``PD:n R:n CD:n F:n``."""

    def __str__(self):
        return (f"PD:{self.pending} R:{self.running} "
                f"CD:{self.successful} F:{self.failed}")

    def __format__(self, spec):
        return format(str(self), spec)


class _ResourceCount:
    """``ncores ngpus nnodes`` of a set of resources."""

    def __init__(self, per_rank):
        self.ncores = sum(c for c, _ in per_rank.values())
        self.ngpus = sum(g for _, g in per_rank.values())
        self.nnodes = len(per_rank)


def _per_rank(R):
    """{rank: (ncores, ngpus)} of an R object (empty if it is not one)."""
    from flux.idset import IDset

    out = {}
    try:
        for entry in R["execution"]["R_lite"]:
            children = entry.get("children") or {}
            ncores = IDset(children.get("core") or "").count()
            ngpus = IDset(children.get("gpu") or "").count()
            for rank in IDset(entry["rank"]):
                prev = out.get(rank, (0, 0))
                out[rank] = (prev[0] + ncores, prev[1] + ngpus)
    except (KeyError, TypeError, ValueError, AttributeError):
        pass
    return out


class _Resources:
    """``all up down allocated free`` of a ``resource.sched-status`` answer."""

    def __init__(self, status):
        allr = _per_rank(status.get("all"))
        down = _per_rank(status.get("down"))
        alloc = _per_rank(status.get("allocated"))
        up = {r: v for r, v in allr.items() if r not in down}
        free = {}
        for rank, (ncores, ngpus) in up.items():
            used = alloc.get(rank, (0, 0))
            left = (max(ncores - used[0], 0), max(ngpus - used[1], 0))
            if left != (0, 0):
                free[rank] = left
        self.all = _ResourceCount(allr)
        self.down = _ResourceCount(down)
        self.up = _ResourceCount(up)
        self.allocated = _ResourceCount(alloc)
        self.free = _ResourceCount(free)
        self.free.nnodes = sum(1 for r in up if r not in alloc)


def _query(uri, timeout):
    """``(StatsInfo, _Resources)`` of the instance at ``uri`` (blocking;
    raises OSError or ValueError)."""
    import flux
    from flux.uri import JobURI

    h = flux.Flux(JobURI(str(uri)).local)
    stats_rpc = h.rpc("job-list.job-stats", {})
    status_rpc = h.rpc("resource.sched-status", nodeid=0)
    stats = StatsInfo(h)
    stats._apply(stats_rpc.wait_for(timeout).get())
    status = status_rpc.wait_for(timeout).get()
    return stats, _Resources(status if isinstance(status, dict) else {})


def query_many(uris, timeout=QUERY_TIMEOUT):
    """{uri: (stats, resources)} of the instances that answered in time."""
    import queue
    import threading

    uris = list(dict.fromkeys(uris))
    results = {}
    if not uris:
        return results
    todo = queue.Queue()
    for uri in uris:
        todo.put(uri)
    done = queue.Queue()

    def worker():
        while True:
            try:
                uri = todo.get_nowait()
            except queue.Empty:
                return
            try:
                done.put((uri, _query(uri, timeout)))
            except (OSError, ValueError, TypeError, KeyError, AttributeError):
                done.put((uri, None))

    for i in range(min(WORKERS, len(uris))):
        threading.Thread(target=worker, name=f"instance-info-{i}", daemon=True).start()
    # wait while answers keep coming: a hung instance costs one timeout
    waiting = len(uris)
    while waiting:
        try:
            uri, result = done.get(timeout=timeout)
        except queue.Empty:
            break
        waiting -= 1
        if result is not None:
            results[uri] = result
    return results


class InstanceInfo:
    """The ``instance.*`` fields of one job (see the module docstring)."""

    def __init__(self, uri=None, timeout=QUERY_TIMEOUT, _result=None):
        self.initialized = False
        self.stats = _empty()
        self.resources = _empty()
        if _result is None and uri:
            _result = query_many([uri], timeout).get(uri)
        if _result is not None:
            self.stats, self.resources = _result
            self.initialized = True

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _empty()

    @staticmethod
    def _ratio(part, whole):
        return part / whole if whole > 0 else _empty()

    @property
    def utilization(self):
        if not self.initialized:
            return _empty()
        return self._ratio(self.resources.allocated.ncores, self.resources.up.ncores)

    @property
    def gpu_utilization(self):
        if not self.initialized:
            return _empty()
        return self._ratio(self.resources.allocated.ngpus, self.resources.up.ngpus)

    @property
    def progress(self):
        if not self.initialized:
            return _empty()
        return self._ratio(self.stats.inactive, self.stats.total)


def prefetch(jobs, timeout=QUERY_TIMEOUT):
    """Give each ``JobInfo`` of ``jobs`` its ``instance``, asking the
    running instances in parallel."""
    from flux.constants import FLUX_JOB_STATE_RUN

    wanted = {}
    for job in jobs:
        uri = job.uri if job.state_id == FLUX_JOB_STATE_RUN else None
        wanted[id(job)] = str(uri) if uri else None
    results = query_many([u for u in wanted.values() if u], timeout)
    for job in jobs:
        uri = wanted[id(job)]
        job._instance = InstanceInfo(_result=results.get(uri) if uri else None)
