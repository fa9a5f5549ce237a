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
- ``{"type": "free", "id"}``: a job's resources are released.

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
"""

import asyncio

from fluxrm.jobstate import SCHED


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

    def sched_free(self, job):
        if self.sched is not None:
            self.sched_send({"type": "free", "id": job.id})

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

