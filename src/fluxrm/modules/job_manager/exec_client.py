"""The job-manager's side of the exec protocol (a part of job-manager,
``JobManager``'s base class ``ExecClient``).

The job-manager and job-exec talk only in messages, RFC 32's shape; one
message per loop turn each way carries every item of that turn, in order:
``{"msgs": [item, ...]}``.  Items the job-manager sends:

- ``{"type": "start", "jobs": [[id, userid, R, request]...]}``: jobs
  entered RUN (``request``: the job's ``JobRequest``; in process the
  object itself, between ranks its jobspec would travel instead, parsed
  again there, once per distinct text); consecutive starts share one item,
  a list per job rather than a dict;
- ``{"type": "kill", "id", "signum", "terminate"}``: signal a running
  job's tasks; with ``terminate`` (a fatal exception hit it: SIGALRM for a
  ``timeout``, else SIGTERM) job-exec also signals whatever else the job
  started and escalates to SIGKILL after ``job-exec.kill-timeout``;
- ``{"type": "expiration", "id", "expiration"}``: a running job's time
  limit changed (``flux update JOBID duration=``): its timer is set again
  for the new end (0: none); no answer.

job-exec answers each ``start``, in this order for one job:

- ``{"type": "eventlog", "id", "path", "entries": [entry...], "close"}``:
  entries (``make_event`` dicts) for the job's ``guest.exec.eventlog`` or
  ``guest.output``, consecutive ones of a job and path in one item;
  ``close``: no more will come to that eventlog;
- ``{"type": "start", "id"}``: the tasks started (the ``start`` event);
- ``{"type": "exception", "id", "data": {"type", "severity", "note"}}``:
  raise an exception on the job (a start failure, a ``timeout``; a
  ``timeout`` is ignored unless the job is still in RUN);
- ``{"type": "finish", "id", "status"}``: the tasks are over (the
  ``finish`` event, with the largest wait status);
- ``{"type": "release", "id", "ranks": "all", "final": true}``: job-exec
  holds nothing more of the job: it is released, freed and cleaned.

The job-manager's per-job protocol state: ``exec_running``, the ids of the
jobs started and not finished (a cancel terminates them, ``job-manager.kill``
signals them), and ``exec_finished``, those finished and not released yet.
The in-process fast path: the message goes to ``JobExec.handle`` on the next
loop turn (``call_soon``), or at once at the end of a batch of sched's
answers (the jobs allocated start in the same turn, as a direct call
would); job-exec's goes to ``ExecClient.exec_handle`` the same way, at once
at the end of ``JobExec.handle`` and of a SIGCHLD's reaping.  The items are
the same either way: only when a message leaves changes.
"""

import asyncio
import signal

from fluxrm.jobstate import RUN


class ExecClient:
    """The job-manager's methods of the exec protocol; they use its
    ``active``, ``append``, ``close_log``, ``post``, ``raise_exception`` and
    ``release``."""

    def exec_init(self, exec_service):
        """``exec_service``: job-exec in process (None: none loaded)."""
        self.exec = exec_service
        self.exec_running = set()
        self.exec_finished = set()
        self._to_exec = []

    def exec_send(self, item):
        out = self._to_exec
        if not out:
            asyncio.get_running_loop().call_soon(self._exec_flush)
        out.append(item)

    def _exec_flush(self):
        msgs, self._to_exec = self._to_exec, []
        if msgs:
            self.exec.handle({"msgs": msgs})

    # -- requests -----------------------------------------------------------------
    def exec_start(self, job):
        """The job entered RUN: start its tasks."""
        if self.exec is None:
            self.raise_exception(job, "exec", 0, "no job-exec loaded")
            return
        self.exec_running.add(job.id)
        start = [job.id, job.userid, job.R, job.request]
        out = self._to_exec
        if out and out[-1]["type"] == "start":
            out[-1]["jobs"].append(start)
        else:
            self.exec_send({"type": "start", "jobs": [start]})

    def exec_kill(self, job, signum):
        """``job-manager.kill``: signal the tasks of a running job."""
        self.exec_send({"type": "kill", "id": job.id, "signum": signum,
                        "terminate": False})

    def exec_expiration(self, job, expiration):
        """A running job's R has a new ``expiration`` (``resource-update``)."""
        if self.exec is not None and job.id in self.exec_running:
            self.exec_send({"type": "expiration", "id": job.id,
                            "expiration": expiration})

    def exec_cleanup(self, job):
        """The job entered CLEANUP: True if job-exec still holds it (its
        ``release`` continues the cleanup); a running one is terminated."""
        jobid = job.id
        if jobid in self.exec_running:
            fatal = job.view.fatal
            signum = signal.SIGALRM if fatal and fatal[0] == "timeout" \
                else signal.SIGTERM
            self.exec_send({"type": "kill", "id": jobid, "signum": signum,
                            "terminate": True})
            return True
        return jobid in self.exec_finished

    # -- answers --------------------------------------------------------------------
    def exec_handle(self, payload):
        """job-exec's message: the answers to ``start`` requests."""
        active = self.active
        for msg in payload["msgs"]:
            job = active.get(msg["id"])
            if job is None:
                continue
            kind = msg["type"]
            if kind == "eventlog":
                path = msg["path"]
                append = self.append
                for entry in msg["entries"]:
                    append(job, path, entry)
                if msg["close"]:
                    self.close_log(job, path)
            elif kind == "start":
                self.post(job, "start")
            elif kind == "finish":
                self.exec_running.discard(job.id)
                self.exec_finished.add(job.id)
                self.post(job, "finish", {"status": msg["status"]})
            elif kind == "release":
                self.exec_running.discard(job.id)  # (a release without finish)
                self.exec_finished.discard(job.id)
                self.release(job)
            elif kind == "exception":
                data = msg["data"]
                if data["type"] == "timeout" and job.state != RUN:
                    continue  # cancelled meanwhile: its time limit is moot
                self.raise_exception(job, data["type"], data["severity"],
                                     data["note"])
