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

The class tuples ``states``, ``stats`` and ``derived_stats`` name those
attributes; ``JobStats.QueueStats(entry=None)`` holds the counters of one
stats entry (``queue_name`` is its ``name``, ``"all"`` without one; all 0
and ``""`` with no entry), and ``+=`` adds another one's counters and
appends ``","`` and its name.
"""

__all__ = ["JobStats"]

_STATES = ("depend", "priority", "sched", "run", "cleanup", "inactive", "total")
_RESULTS = ("successful", "failed", "timeout", "canceled", "inactive_purged")


class _QueueStats:
    """The counters of one ``job-list.job-stats`` entry (whole or one queue)."""

    def __init__(self, stats=None):
        if stats is None:
            self.queue_name = ""
            for attr in _STATES + _RESULTS:
                setattr(self, attr, 0)
            return
        self.queue_name = stats.get("name", "all")
        states = stats.get("job_states", {})
        for attr in _STATES:
            setattr(self, attr, states.get(attr, 0))
        for attr in _RESULTS:
            setattr(self, attr, stats.get(attr, 0))

    def __iadd__(self, other):
        for attr in _STATES + _RESULTS:
            setattr(self, attr, getattr(self, attr) + getattr(other, attr))
        self.queue_name += "," + other.queue_name
        return self


class JobStats:
    """Job counts of an instance, optionally of some queues."""

    states = _STATES
    stats = _RESULTS
    derived_stats = ("pending", "running", "active")
    QueueStats = _QueueStats

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
        total = _QueueStats()
        for source in sources:
            total += _QueueStats(source)
        for attr in _STATES + _RESULTS:
            setattr(self, attr, getattr(total, attr))
        self.pending = self.depend + self.priority + self.sched
        self.running = self.run + self.cleanup
        self.active = self.total - self.inactive
        self.failed += self.timeout + self.canceled

    def _update_cb(self, future):
        self._apply(future.get())
        if self.callback is not None:
            self.callback(self, **self.cb_kwargs)

    def update(self, callback=None, **kwargs):
        """Request new values; they (and ``callback``) arrive in the reactor.

        The callback is stored (or cleared, if ``None``) on each call."""
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
