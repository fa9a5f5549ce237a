"""job-exec's end of the exec protocol (a part of job-exec, ``JobExec``'s
base class ``ExecProtocol``).

In: ``handle(payload)``, the job-manager's message ``{"msgs": [item...]}``:
``{"type": "start", "jobs": [[id, userid, R, request]...]}`` and
``{"type": "kill", "id", "signum", "terminate"}`` and ``{"type":
"expiration", "id", "expiration"}`` (a running job's new end: its timer,
``ExecJob.expire_handle``, set again; 0: none), in order.  The timer of a
job across ranks lives here, with the job (the other ranks run shares
without one): a timeout terminates every share through ``kill``.

Out: the items of one loop turn, in order, in one message to the
job-manager (``manager_handle``): ``eventlog`` (``id``, ``path``,
``entries``, ``close``; consecutive entries of a job for one path share an
item), ``start``, ``exception`` (``data``: type, severity, note),
``finish`` (``status``) and ``release`` (``ranks``, ``final``).  ``flush``
sends them, after turning the turn's output into ``guest.output`` entries:
at the end of ``handle`` and of the reaping of a SIGCHLD (the answers go
at once), else from a ``call_soon`` queued by the turn's first item.  A job
with tasks on other ranks is sent there at the end of ``handle`` too
(``ShareDispatch.flush_ranks``), its ``kill`` items likewise.
"""

from fluxrm.job import EXEC, OUTPUT


class ExecProtocol:
    """The methods of ``JobExec`` that read and write exec protocol
    messages (see the module docstring); they use ``JobExec``'s ``jobs``,
    ``loop``, ``manager_handle``, the turn's batch (``_to_manager``,
    ``_open_logs``, ``_flush_scheduled``, ``_out_dirty``), and its
    ``start_job``, ``signal``, ``terminate``, ``flush_output`` and, for jobs
    on other ranks, ``forward_kill`` and ``flush_ranks`` (``ShareDispatch``)."""

    def handle(self, payload):
        """The job-manager's message: ``{"msgs": [item...]}``, in order."""
        for msg in payload["msgs"]:
            kind = msg["type"]
            if kind == "start":
                for jobid, userid, R, request in msg["jobs"]:
                    self.start_job(jobid, userid, R, request)
            elif kind == "kill":
                ej = self.jobs.get(msg["id"])
                if ej is None:
                    continue  # over already: its finish is on its way
                if msg["terminate"]:
                    self.terminate(ej, msg["signum"])
                else:
                    self.signal(ej, msg["signum"])
                if ej.remote:  # and on the other ranks running the job
                    self.forward_kill(ej, msg["signum"], msg["terminate"])
            elif kind == "expiration":
                ej = self.jobs.get(msg["id"])
                if ej is not None and not ej.completed:
                    self.set_expiration(ej, msg["expiration"])
        if self._to_ranks:
            self.flush_ranks()  # the other ranks' shares, one request each
        if self._to_manager:
            self.flush()  # the answers now, not a loop turn later

    def send(self, ej, item):
        """Queue an item of this loop turn for the job-manager."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)
        if self._open_logs:  # entries after this item go in new eventlog items
            self._open_logs.pop((ej.id, EXEC), None)
            self._open_logs.pop((ej.id, OUTPUT), None)
        self._to_manager.append(item)

    def log_item(self, ej, path):
        """The eventlog item of this loop turn the job's next entries for
        ``path`` go in (consecutive entries of a job share one)."""
        key = (ej.id, path)
        item = self._open_logs.get(key)
        if item is None:
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self.loop.call_soon(self.flush)
            item = self._open_logs[key] = {"type": "eventlog", "id": ej.id,
                                           "path": path, "entries": [],
                                           "close": False}
            self._to_manager.append(item)
        return item

    def append(self, ej, path, entry):
        """Queue an entry (``make_event``) for one of the job's eventlogs."""
        self.log_item(ej, path)["entries"].append(entry)

    def close_log(self, ej, path):
        """No more entries for that eventlog of the job."""
        self.log_item(ej, path)["close"] = True

    def raise_exception(self, ej, etype, note):
        self.send(ej, {"type": "exception", "id": ej.id, "data": {
            "type": etype, "severity": 0, "note": note}})

    def flush(self):
        """Once per loop turn: this turn's output as ``guest.output``
        entries, then every item of the turn to the job-manager."""
        if self._out_dirty:
            self.flush_output()
        msgs, self._to_manager = self._to_manager, []
        self._open_logs = {}
        self._flush_scheduled = False
        if msgs:
            self.manager_handle({"msgs": msgs})
