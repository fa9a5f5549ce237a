"""Job counters from job-list: ``JobStats``.

``JobStats(handle, queue=None)`` has attributes ``depend priority sched run
cleanup inactive total successful failed timeout canceled inactive_purged``
and the derived ``pending running active``, all -1 until fetched.
``update_sync()`` fetches them (``job-list.job-stats``) and returns self;
``update(callback=None, **kwargs)`` only sends the request: the values change,
and ``callback(stats, **kwargs)`` runs, when the reactor runs.  ``queue`` (a
name or an iterable of names) sums the statistics of those queues; an unknown
queue raises ``ValueError("no stats available for queue Q")``.  ``failed``
counts every unsuccessful job (``timeout`` and ``canceled`` included).
"""

__all__ = ["JobStats"]

_STATES = ("depend", "priority", "sched", "run", "cleanup", "inactive", "total")
_RESULTS = ("successful", "failed", "timeout", "canceled", "inactive_purged")


class JobStats:
    """Job counts of an instance, optionally of some queues."""

    def __init__(self, handle, queue=None):
        self.handle = handle
        self.callback = None
        self.cb_kwargs = {}
        if queue is None or isinstance(queue, str):
            self.queue = queue
        else:
            self.queue = list(queue)
        for attr in _STATES + _RESULTS + ("pending", "running", "active"):
            setattr(self, attr, -1)

    def _queues(self):
        if self.queue is None:
            return None
        if isinstance(self.queue, str):
            return [self.queue]
        return self.queue

    def _apply(self, resp):
        queues = self._queues()
        if queues is None:
            sources = [resp]
        else:
            by_name = {q.get("name"): q for q in resp.get("queues") or []}
            sources = []
            for name in queues:
                if name not in by_name:
                    raise ValueError(f"no stats available for queue {name}")
                sources.append(by_name[name])
        for attr in _STATES:
            setattr(self, attr, sum(s.get("job_states", {}).get(attr, 0)
                                    for s in sources))
        for attr in _RESULTS:
            setattr(self, attr, sum(s.get(attr, 0) for s in sources))
        self.pending = self.depend + self.priority + self.sched
        self.running = self.run + self.cleanup
        self.active = self.total - self.inactive
        self.failed += self.timeout + self.canceled

    def _update_cb(self, future):
        self._apply(future.get())
        if self.callback is not None:
            self.callback(self, **self.cb_kwargs)

    def update(self, callback=None, **kwargs):
        """Request new values; they (and ``callback``) arrive in the reactor."""
        if callback is not None:
            self.callback = callback
            self.cb_kwargs = kwargs
        self.handle.rpc("job-list.job-stats", {}).then(self._update_cb)

    def update_sync(self):
        """Fetch new values now; return self."""
        self._apply(self.handle.rpc("job-list.job-stats", {}).get())
        return self

    def __repr__(self):
        return ("JobStats(" + ", ".join(
            f"{a}={getattr(self, a)}" for a in _STATES + _RESULTS) + ")")
