"""The job-manager's side of the scheduler protocol (a part of job-manager,
``JobManager``'s base class ``SchedClient``).

The job-manager and sched talk only in messages, RFC 27's shape; one
message per loop turn each way carries every item of that turn, in order:
``{"msgs": [item, ...]}``.  Items the job-manager sends:

- ``{"type": "hello", "jobs": [{"id", "R"}...]}``: at start-up, the jobs
  holding resources (recovered running ones), which sched counts as
  allocated until they are freed;
- ``{"type": "alloc", "jobs": [[id, priority, userid, t_submit,
  request, constraint?]...]}``: jobs entered SCHED (``request``: the job's
  ``JobRequest``; in process the object itself, between ranks its jobspec
  would travel instead; ``constraint``: the RFC 31 ``properties``
  constraint of the job's queue's ``requires``, only for a queue that has
  one); consecutive requests share one item, a list per
  job rather than a dict (a bulk submission puts thousands in one message);
- ``{"type": "prioritize", "jobs": [[id, priority]...]}``: a job already
  asked for took a new priority (an urgency change);
- ``{"type": "cancel", "id"}``: a job asked for no longer wants resources;
- ``{"type": "free", "id"}``: a job's resources are released;
- ``{"type": "expiration", "id", "expiration"}``: a running job's R has a
  new end (``flux update JOBID duration=``; 0: none); no answer.

sched knows nothing of queues: the job-manager sends no ``alloc`` for a
job of a stopped queue, and takes back (``cancel``) those already sent
when the queue stops or a job's request is updated; once the cancel is
answered, it asks again if the queue runs (``Queues.sched_answered``).

Before answering, sched may annotate a pending job (RFC 27's annotate):
``{"type": "annotate", "id", "annotations": {"sched": {...}}}``
(``t_estimate``, ``reason_pending``; a None value removes a key); it is
posted as a volatile ``annotations`` event (the journal and job-list see
it, the stored eventlog does not) for a job still in SCHED.

sched answers each ``alloc`` once: ``{"type": "alloc", "id", "R",
"annotations"?}``, ``{"type": "deny", "id", "note"}`` (the request can
never be met: the job gets a fatal ``alloc`` exception with the note), or
``{"type": "cancel", "id"}`` (after a cancel).  An ``alloc`` answer for a
job that is no longer in SCHED (cancelled while the answer was on its way)
is freed at once.

The job-manager's per-job protocol state: ``alloc_pending``, the ids of
jobs with an ``alloc`` not answered yet.  The in-process fast path: the
message goes to ``Sched.handle`` on the next loop turn (``call_soon``);
sched's goes to ``SchedClient.sched_handle`` the same way.

**An external scheduler** (a ``flux.scheduler.Scheduler`` module, loaded
with ``flux module load`` once the built-in one is removed, see
``fluxrm.broker.modules``) is reached over RPC, as upstream's job-manager
reaches its scheduler.  ``sched_detach`` (``flux module remove sched``)
replaces the in-process sched by a ``RemoteSched``, which translates the
same items: ``alloc`` -> a ``sched.alloc`` request per job ``{id,
priority, userid, t_submit, jobspec}``, its responses ``{id, type: 0
(R) | 1 (annotate) | 2 (deny, note) | 3 (cancel)}`` turned back into
answers for ``sched_handle``; ``free`` -> ``sched.free {id, R, final}``,
``cancel`` -> ``sched.cancel {id}``, ``prioritize`` -> ``sched.prioritize
{jobs}`` (those three get no response), ``expiration`` -> a
``sched.expiration {id, expiration}`` request (an error answer is logged).  Until a scheduler says it is
ready, nothing is sent: jobs wait in SCHED.  The scheduler's handshake,
two topics of this service (owner only):

- ``job-manager.sched-hello {partial-ok?}``  streaming: ``{id, priority,
  userid, t_submit}`` for each job holding resources (the scheduler reads
  its R from the KVS), then ENODATA;
- ``job-manager.sched-ready {mode, limit?}`` -> ``{count}``: the
  scheduler takes requests now; every job in SCHED is asked for.

A scheduler that goes away is noticed by its requests' error answers
(ENOSYS): the jobs it had not answered wait in SCHED for the next one.
``sched_attach`` brings an in-process sched back (``flux module load
sched``): hello with the jobs holding resources, then every job in SCHED
is asked for again.
"""

import asyncio
import errno
import json

from fluxrm.broker import payload
from fluxrm.broker.service import request_handler
from fluxrm.jobstate import CLEANUP, RUN, SCHED

# RFC 27 alloc response types
ALLOC_SUCCESS, ALLOC_ANNOTATE, ALLOC_DENY, ALLOC_CANCEL = 0, 1, 2, 3


class RemoteSched:
    """The scheduler protocol's items sent over RPC to a scheduler module."""

    def __init__(self, manager):
        self.manager = manager
        self.broker = manager.broker
        self.ready = False
        self.generation = 0  # bumped by each hello: older answers are dropped
        self.granted = {}  # job id -> R it was given (sent back with free)

    def handle(self, message):
        manager = self.manager
        for item in message["msgs"]:
            kind = item["type"]
            if kind == "alloc":
                for jobid, priority, userid, t_submit, _request in item["jobs"]:
                    if self.ready:
                        self._alloc(jobid, priority, userid, t_submit)
                    else:  # asked again once a scheduler is ready
                        manager.alloc_pending.discard(jobid)
            elif not self.ready:
                self.granted.pop(item.get("id"), None)
            elif kind == "free":
                jobid = item["id"]
                R = self.granted.pop(jobid, None)
                job = manager.active.get(jobid)
                if R is None and job is not None:
                    R = job.R
                self._notify("sched.free", {"id": jobid, "R": R, "final": True})
            elif kind == "cancel":
                self._notify("sched.cancel", {"id": item["id"]})
            elif kind == "prioritize":
                self._notify("sched.prioritize", {"jobs": item["jobs"]})
            elif kind == "expiration":
                self._expiration(item["id"], item["expiration"])

    def _expiration(self, jobid, expiration):
        def answered(rsp):
            if rsp.errnum:
                self.manager.log(3, f"sched.expiration {jobid}: {rsp.errstr}")

        self.broker.rpc.call("sched.expiration",
                             {"id": jobid, "expiration": expiration},
                             self.broker.rank, on_response=answered)

    def _notify(self, topic, body):
        self.broker.rpc.notify(topic, body, self.broker.rank)

    def _alloc(self, jobid, priority, userid, t_submit):
        job = self.manager.active.get(jobid)
        try:
            jobspec = json.loads(job.jobspec_text) if job.jobspec_text else {}
        except (AttributeError, ValueError):
            jobspec = {}
        generation = self.generation

        def answered(rsp):
            self._answered(rsp, jobid, generation, answered)

        self.broker.rpc.call("sched.alloc",
                             {"id": jobid, "priority": priority, "userid": userid,
                              "t_submit": t_submit, "jobspec": jobspec},
                             self.broker.rank, on_response=answered)

    def _answered(self, rsp, jobid, generation, callback):
        manager = self.manager
        if generation != self.generation:
            return
        if rsp.errnum:
            # the scheduler went away (ENOSYS) or failed: the job waits
            self.ready = False
            manager.alloc_pending.discard(jobid)
            return
        try:
            body = rsp.get_object() or {}
            kind = body["type"]
        except (OSError, KeyError, TypeError, ValueError):
            manager.log(3, f"sched.alloc {jobid}: malformed response")
            return
        if kind == ALLOC_ANNOTATE:
            # more answers follow on this request: keep listening
            self.broker.rpc._pending[rsp.matchtag] = (callback, False)
            return
        if kind == ALLOC_SUCCESS:
            R = body.get("R")
            if not isinstance(R, dict):
                manager.log(3, f"sched.alloc {jobid}: success without R")
                return
            self.granted[jobid] = R
            answer = {"type": "alloc", "id": jobid, "R": R}
            if body.get("annotations"):
                answer["annotations"] = body["annotations"]
        elif kind == ALLOC_DENY:
            answer = {"type": "deny", "id": jobid, "note": body.get("note") or ""}
        elif kind == ALLOC_CANCEL:
            answer = {"type": "cancel", "id": jobid}
        else:
            manager.log(3, f"sched.alloc {jobid}: unknown response type {kind}")
            return
        manager.sched_handle({"msgs": [answer]})


class SchedClient:
    """The job-manager's methods of the scheduler protocol; they use its
    ``active``, ``post``, ``mark`` and ``raise_exception``."""

    def sched_init(self, sched):
        """``sched``: the scheduler service in process (None: none loaded)."""
        self.sched = sched
        self.alloc_pending = set()
        self._to_sched = []
        self.stopped_queues = set()  # kept by ``Queues``: no alloc for their jobs
        self.sched_requeue = set()  # ids cancelled at sched, to ask again

    def sched_send(self, item):
        out = self._to_sched
        if not out:
            asyncio.get_running_loop().call_soon(self._sched_flush)
        out.append(item)

    def _sched_flush(self):
        msgs, self._to_sched = self._to_sched, []
        if msgs:
            self.sched.handle({"msgs": msgs})

    # -- requests -----------------------------------------------------------------
    def sched_hello(self, jobs):
        """``jobs``: those holding resources at start-up."""
        if self.sched is not None:
            self.sched_send({"type": "hello",
                             "jobs": [{"id": job.id, "R": job.R} for job in jobs]})

    def sched_alloc(self, job):
        """The job entered SCHED: ask for resources (or reorder its request)."""
        view = job.view
        if job.id in self.alloc_pending:
            self.sched_send({"type": "prioritize",
                             "jobs": [[job.id, view.priority or 0]]})
            return
        if self.stopped_queues and self.queue_stopped(job):
            return  # asked for when its queue starts (``Queues``)
        self.alloc_pending.add(job.id)
        request = [job.id, view.priority or 0, view.userid, view.t_submit,
                   job.request]
        config = getattr(self, "queue_config", None)  # (``Queues``)
        if config is not None and config.constraints:
            constraint = config.constraints.get(config.queue_of(job.request))
            if constraint is not None:
                request.append(constraint)
        out = self._to_sched
        if out and out[-1]["type"] == "alloc":
            out[-1]["jobs"].append(request)
        else:
            self.sched_send({"type": "alloc", "jobs": [request]})

    def sched_cancel(self, job):
        if job.id in self.alloc_pending:
            self.sched_send({"type": "cancel", "id": job.id})

    def sched_expiration(self, job, expiration):
        """A running job's R has a new ``expiration`` (``resource-update``)."""
        if self.sched is not None:
            self.sched_send({"type": "expiration", "id": job.id,
                             "expiration": expiration})

    def sched_free(self, job):
        if self.sched is not None:
            self.sched_send({"type": "free", "id": job.id})

    # -- changing schedulers (fluxrm.broker.modules) ------------------------------
    def sched_detach(self, old):
        """The in-process sched ``old`` is removed: from now on a scheduler
        module is reached over RPC once it says it is ready."""
        old.manager_handle = _discard  # its late answers are dropped
        self._to_sched = []
        self._abandon_requests()
        self.sched = RemoteSched(self)

    def sched_attach(self, sched):
        """An in-process sched takes over: it learns what runs, then is
        asked for every job waiting in SCHED."""
        self._abandon_requests()
        self.sched = sched
        self.sched_hello(self._holding_resources())
        for job in self._waiting_in_sched():
            self.sched_alloc(job)

    def _abandon_requests(self):
        """The requests of a scheduler that is gone will not be answered."""
        self.alloc_pending.clear()
        for jobid in list(self.sched_requeue):
            self.sched_requeue.discard(jobid)

    def _holding_resources(self):
        return [job for job in self.active.values()
                if job.R is not None and job.state in (RUN, CLEANUP)
                and not job.releasing]

    def _waiting_in_sched(self):
        jobs = [job for job in self.active.values() if job.state == SCHED]
        jobs.sort(key=lambda job: (-(job.view.priority or 0), job.id))
        return jobs

    def _remote(self, msg):
        if not isinstance(self.sched, RemoteSched):
            raise OSError(errno.EEXIST, "a scheduler is already loaded "
                          "(flux module remove sched first)")
        return self.sched

    @request_handler("sched-hello")
    def h_sched_hello(self, msg):
        remote = self._remote(msg)
        payload.request(msg, required=False)
        remote.generation += 1  # a new scheduler: older requests are void
        remote.ready = False
        self.alloc_pending.clear()
        remote.granted = {}
        for job in self._holding_resources():
            view = job.view
            remote.granted[job.id] = job.R
            self.respond(msg, {"id": job.id, "priority": view.priority or 0,
                               "userid": view.userid, "t_submit": view.t_submit})
        self.respond_error(msg, errno.ENODATA)

    @request_handler("sched-ready")
    def h_sched_ready(self, msg):
        remote = self._remote(msg)
        req = payload.request(msg)
        mode = payload.string(req, "mode")
        if mode not in ("unlimited", "limited"):
            raise OSError(errno.EPROTO, f"invalid sched-ready mode '{mode}'")
        remote.ready = True
        waiting = self._waiting_in_sched()
        self.respond(msg, {"count": len(waiting)})
        for job in waiting:
            self.sched_alloc(job)

    # -- answers --------------------------------------------------------------------
    def sched_handle(self, payload):
        """sched's message: the answers to ``alloc`` requests."""
        for msg in payload["msgs"]:
            jobid = msg["id"]
            kind = msg["type"]
            if kind == "annotate":
                job = self.active.get(jobid)
                if job is not None and job.state == SCHED:
                    self.post_volatile(job, "annotations",
                                       {"annotations": msg["annotations"]})
                continue
            self.alloc_pending.discard(jobid)
            if jobid in self.sched_requeue:  # a queue stopped, a job updated
                self.sched_answered(jobid, kind)
            if kind == "cancel":
                continue
            job = self.active.get(jobid)
            if job is None or job.state != SCHED:
                if kind == "alloc":  # cancelled while the answer came
                    self.sched_send({"type": "free", "id": jobid})
                continue
            if kind == "alloc":
                job.R = msg["R"]
                self.mark(job, "R")
                annotations = msg.get("annotations")
                self.post(job, "alloc",
                          {"annotations": annotations} if annotations else None)
            elif kind == "deny":
                self.raise_exception(job, "alloc", 0, msg["note"])



def _discard(_message):
    """Where a removed in-process sched's answers go."""
