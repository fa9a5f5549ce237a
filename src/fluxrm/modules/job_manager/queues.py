"""Queues: their state, submission checks and defaults, drain and idle (a
part of job-manager, ``JobManager``'s base class ``Queues``).

The queues and their policy come from the configuration
(``fluxrm.modules.job_manager.limits.QueueConfig``).  Each queue is
enabled or disabled (a disabled queue refuses submissions, with its
reason) and started or stopped (a stopped queue's jobs wait in SCHED: no
``alloc`` request goes to sched for them, and those already asked for are
cancelled, so the scheduler needs to know nothing of queues; starting the
queue asks again).  The state survives a restart with a state directory
(job-manager meta key ``queue-state``), as upstream's checkpoint.

RPC topics:

- ``job-manager.queue-list`` {} -> {queues: [name...]} (config order; []
  without queues) (guests too)
- ``job-manager.queue-status`` {name?} -> {enable, start, disable_reason?,
  stop_reason?} (guests too; ``name`` required when queues are configured)
- ``job-manager.queue-enable`` {name? | all, enable, reason?} -> {}
- ``job-manager.queue-start`` {name? | all, start, reason?} -> {}
  (without ``name`` nor ``all``, with queues configured: EINVAL)
- ``job-manager.drain`` {name?} -> {} once no job is active (in queue
  ``name``)
- ``job-manager.idle`` {} -> {pending: N} once no job is running (RUN or
  CLEANUP); N: the active jobs not yet running

Errors: EINVAL "'x' is not a valid queue", "no queue specified".

In process: ``queue_admit(request)`` (job-ingest, before a job is
accepted: raises OSError(EINVAL) "no queue specified", "'x' is not a
valid queue", "queue x is disabled: REASON" (the anonymous queue: "job
submission is disabled: REASON") or a limit's message), and
``queue_apply_defaults(job)`` (the job-manager at submit: posts the
``jobspec-update`` giving the job its default queue and duration, and
gives the job the updated ``JobRequest``).
"""

import errno
import json

from fluxrm.broker import payload
from fluxrm.broker.service import request_handler
from fluxrm.jobstate import CLEANUP, INACTIVE, RUN, SCHED
from fluxrm.modules.job_manager.limits import QueueConfig, einval

LOG_ERR = 3
STATE_KEY = "queue-state"


class QueueState:
    __slots__ = ("enable", "disable_reason", "start", "stop_reason")

    def __init__(self, enable=True, disable_reason=None, start=True, stop_reason=None):
        self.enable = enable
        self.disable_reason = disable_reason
        self.start = start
        self.stop_reason = stop_reason

    def as_dict(self):
        out = {"enable": self.enable, "start": self.start}
        if not self.enable and self.disable_reason is not None:
            out["disable_reason"] = self.disable_reason
        if not self.start and self.stop_reason is not None:
            out["stop_reason"] = self.stop_reason
        return out


class Queues:
    """The handlers and hooks; they use ``JobManager``'s ``active``,
    ``post``, ``sched_alloc``, ``sched_cancel``, ``alloc_pending``,
    ``meta_get``/``meta_set``, ``store`` and ``respond``."""

    # until queues_init (and in a job-manager never started): nobody waits
    drain_waiters = ()
    idle_waiters = ()

    def queues_init(self):
        """Read the queues from the configuration and their saved state.
        A configuration that cannot be read is logged (one line) and stops
        the instance; meanwhile its one queue is disabled and stopped."""
        try:
            self.queue_config = QueueConfig(getattr(self.broker, "config", None) or {})
            error = None
        except ValueError as exc:
            error = f"configuration error: {exc}"
            self.log(LOG_ERR, error)
            self.broker.request_shutdown(1)
            self.queue_config = QueueConfig({})
        names = self.queue_config.names or [""]
        self.queue_states = {name: QueueState() for name in names}
        self.drain_waiters = []  # (request, queue name or None)
        self.idle_waiters = []
        if error is not None:  # nothing runs meanwhile: the instance stops
            self.queue_states[""] = QueueState(False, error, False, error)
            self._queue_sets()
            return
        self.stopped_queues = set()
        self.disabled_queues = set()
        saved = self.meta_get(STATE_KEY)
        if saved:
            try:
                for name, state in json.loads(saved).items():
                    if name in self.queue_states:
                        self.queue_states[name] = QueueState(
                            bool(state["enable"]), state.get("disable_reason"),
                            bool(state["start"]), state.get("stop_reason"))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                self.log(LOG_ERR, f"saved queue state ignored: {exc!r}")
        self._queue_sets()

    def _queue_sets(self):
        states = self.queue_states.items()
        self.stopped_queues = {n for n, s in states if not s.start}
        self.disabled_queues = {n for n, s in states if not s.enable}

    def _queue_save(self):
        self._queue_sets()
        self.meta_set(STATE_KEY, json.dumps(
            {n: {"enable": s.enable, "disable_reason": s.disable_reason,
                 "start": s.start, "stop_reason": s.stop_reason}
             for n, s in self.queue_states.items()}))

    # -- submissions ---------------------------------------------------------------
    def queue_admit(self, request):
        """Refuse (OSError EINVAL) a submission its queue does not take."""
        config = self.queue_config
        if config.trivial and not self.disabled_queues:
            return
        defaults = config.defaults(request)
        queue = config.check(defaults[1] if defaults else request)
        if queue in self.disabled_queues:
            raise einval(self.disabled_text(queue))

    def disabled_text(self, queue):
        reason = self.queue_states[queue].disable_reason
        head = f"queue {queue} is disabled" if queue else "job submission is disabled"
        return f"{head}: {reason}" if reason else head

    def queue_apply_defaults(self, job):
        """At submit: the job's default queue and duration, as a
        ``jobspec-update`` event."""
        defaults = self.queue_config.defaults(job.request)
        if defaults is not None:
            ctx, request = defaults
            job.request = request
            self.post(job, "jobspec-update", dict(ctx))

    def queue_stopped(self, job):
        """Is this job's queue stopped (its jobs wait in SCHED)?"""
        return (bool(self.stopped_queues)
                and self.queue_config.queue_of(job.request) in self.stopped_queues)

    def sched_reask(self, job):
        """Ask sched again for a job already asked for (its request or
        queue changed): cancel now, ask again when the cancel is
        answered (``sched_answered``)."""
        if job.id in self.alloc_pending:
            self.sched_requeue.add(job.id)
            self.sched_cancel(job)

    def sched_answered(self, jobid, kind):
        """sched answered an ``alloc`` request (``kind``: its answer's
        type): a job cancelled to be asked again is asked again if the
        cancel took and the job is still in SCHED (``sched_alloc`` asks
        nothing for a stopped queue)."""
        self.sched_requeue.discard(jobid)
        if kind == "cancel":
            job = self.active.get(jobid)
            if job is not None and job.state == SCHED:
                self.sched_alloc(job)

    # -- state changes -----------------------------------------------------------
    def _targets(self, req):
        names = self.queue_config.names
        name = payload.string(req, "name", None)
        if payload.boolean(req, "all", False):
            return names or [""]
        if name is not None:
            return [self.queue_config.lookup(name)]
        if names:
            raise einval("Named queues are configured: use --queue=NAME or --all")
        return [""]

    def _reason(self, req):
        reason = payload.string(req, "reason", None, max_length=1024)
        return reason or None

    def _respond_durable(self, msg):
        self.store.on_durable(
            lambda exc: self.respond(msg, {}) if exc is None
            else self.respond_error(msg, errno.EIO, f"queue state: {exc}"))

    @request_handler("queue-enable")
    def h_queue_enable(self, msg):
        req = payload.request(msg)
        enable = payload.boolean(req, "enable")
        targets = self._targets(req)
        reason = self._reason(req)
        for name in targets:
            state = self.queue_states[name]
            state.enable = enable
            state.disable_reason = None if enable else reason
        self._queue_save()
        self._respond_durable(msg)

    @request_handler("queue-start")
    def h_queue_start(self, msg):
        req = payload.request(msg)
        start = payload.boolean(req, "start")
        targets = self._targets(req)
        reason = self._reason(req)
        changed = []
        for name in targets:
            state = self.queue_states[name]
            if state.start != start:
                changed.append(name)
            state.start = start
            state.stop_reason = None if start else reason
        self._queue_save()
        if changed:
            self._queue_sched(set(changed), start)
        self._respond_durable(msg)

    def _queue_sched(self, names, start):
        """Jobs of queues just started are asked for; those of queues just
        stopped are taken back from sched."""
        queue_of = self.queue_config.queue_of
        for job in list(self.active.values()):
            if job.state != SCHED or queue_of(job.request) not in names:
                continue
            if start:
                if job.id not in self.alloc_pending:
                    self.sched_alloc(job)
            else:
                self.sched_reask(job)  # asked again only once started

    @request_handler("queue-status", allow_guest=True)
    def h_queue_status(self, msg):
        req = payload.request(msg, required=False)
        name = payload.string(req, "name", None)
        if self.queue_config.named or name is not None:
            name = self.queue_config.lookup(name or "")
        else:
            name = ""
        self.respond(msg, self.queue_states[name].as_dict())

    @request_handler("queue-list", allow_guest=True)
    def h_queue_list(self, msg):
        self.respond(msg, {"queues": list(self.queue_config.names)})

    # -- drain and idle -----------------------------------------------------------
    @request_handler("drain")
    def h_drain(self, msg):
        req = payload.request(msg, required=False)
        name = payload.string(req, "name", None)
        if name is not None:
            self.queue_config.lookup(name)
        self.drain_waiters.append((msg, name))
        self.queue_check_waiters()

    @request_handler("idle", allow_guest=True)
    def h_idle(self, msg):
        payload.request(msg, required=False)
        self.idle_waiters.append(msg)
        self.queue_check_waiters()

    def queue_check_waiters(self):
        """Answer the drain and idle requests whose condition holds (called
        as a job becomes inactive while there are any)."""
        active = [job for job in self.active.values() if job.state != INACTIVE]
        if self.drain_waiters:
            queue_of = self.queue_config.queue_of
            busy = {queue_of(job.request) for job in active}
            waiting = []
            for msg, name in self.drain_waiters:
                if (name is None and not active) or (name is not None
                                                     and name not in busy):
                    self.respond(msg, {})
                else:
                    waiting.append((msg, name))
            self.drain_waiters = waiting
        if self.idle_waiters and not any(job.state in (RUN, CLEANUP) for job in active):
            waiters, self.idle_waiters = self.idle_waiters, []
            for msg in waiters:
                self.respond(msg, {"pending": len(active)})

    def queue_disconnect(self, sender):
        self.drain_waiters = [w for w in self.drain_waiters if w[0].sender is not sender]
        self.idle_waiters = [m for m in self.idle_waiters if m.sender is not sender]
