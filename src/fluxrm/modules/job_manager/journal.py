"""The job-manager's journal (a part of job-manager, ``JobManager``'s base
class ``Journal``): every main-eventlog event of every job, in order, to
whoever follows it.

Over RPC, ``job-manager.events-journal`` and
``job-manager.events-journal-cancel`` (see ``fluxrm.modules.job_manager``
for the topics): every event posted in a loop turn goes to each stream at
the end of the turn, in one response; a guest's stream holds only that
guest's jobs.

In process, a service follows the journal with
``journal_subscribe(on_entry, on_purge=None)`` (job-list does: the journal
is all it learns of jobs, as upstream's job-list):

- ``on_entry(id, event, data)`` is called for each event as it is posted,
  first for every event of every active job (the replay, in order, job by
  job), then live.  ``event`` is the eventlog entry (a dict, shared: read
  it, never change it).  ``data`` is the job's ``JobRequest`` for
  ``submit`` (the shared, immutable request parsed at ingest; the submit
  context holds ``userid``, ``urgency`` and ``flags``), its R for
  ``alloc``, else None;
- ``on_purge(purged)`` is called when inactive jobs are purged:
  ``[(id, info text)]``, the ``info`` column of each row deleted.

A subscriber is called synchronously from ``post``: it must be quick and
must not post events itself.
"""

import asyncio
import errno
import json

from flux.constants import FLUX_ROLE_OWNER
from flux.message import MSGFLAG_NORESPONSE
from fluxrm.broker import payload
from fluxrm.broker.service import request_handler
from fluxrm.job import MAIN


class Journal:
    """The journal's handlers and subscriptions; they use ``JobManager``'s
    ``journal`` (streams: (sender, matchtag) -> request), ``_journal_batch``,
    ``_journal_flush_scheduled``, ``subscribers``, ``purge_subscribers``,
    ``active``, ``respond`` and ``respond_error``."""

    # -- in process ---------------------------------------------------------------------
    def journal_subscribe(self, on_entry, on_purge=None):
        """Follow the journal in process (see the module docstring)."""
        for job in list(self.active.values()):
            request, R = job.request, job.R
            for line in job.logs[MAIN]:
                event = json.loads(line)
                name = event["name"]
                on_entry(job.id, event, request if name == "submit"
                         else R if name == "alloc" else None)
        self.subscribers.append(on_entry)
        if on_purge is not None:
            self.purge_subscribers.append(on_purge)

    # -- the events journal ------------------------------------------------------------
    @request_handler("events-journal", allow_guest=True)
    def h_journal(self, msg):
        req = payload.request(msg, required=False)
        replay = []
        if payload.boolean(req, "full", False):
            for job in self.active.values():
                if self._journal_visible(msg, job):
                    for line in job.logs[MAIN]:
                        replay.append({"id": job.id, "entry": json.loads(line)})
        self.respond(msg, {"events": replay, "sentinel": True})
        self.journal[(msg.sender, msg.matchtag)] = msg

    @request_handler("events-journal-cancel", allow_guest=True)
    def h_journal_cancel(self, msg):
        req = payload.request(msg)
        matchtag = payload.integer(req, "matchtag", lo=0, hi=0xFFFFFFFF)
        stream = self.journal.pop((msg.sender, matchtag), None)
        if stream is not None:
            self.respond_error(stream, errno.ENODATA)
        if not msg.flags & MSGFLAG_NORESPONSE:
            # upstream's clients send it without expecting an answer; one
            # that does expect one gets {} rather than waiting forever
            self.respond(msg, {})

    @staticmethod
    def _journal_visible(msg, job):
        return msg.rolemask & FLUX_ROLE_OWNER or msg.userid == job.userid

    def _journal_add(self, job, event):
        self._journal_batch.append((job, event))
        if not self._journal_flush_scheduled:
            self._journal_flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._journal_flush)

    def _journal_flush(self):
        self._journal_flush_scheduled = False
        batch, self._journal_batch = self._journal_batch, []
        everything = [{"id": job.id, "entry": event} for job, event in batch]
        for key, msg in list(self.journal.items()):
            if msg.sender.closed:
                del self.journal[key]
                continue
            if msg.rolemask & FLUX_ROLE_OWNER:
                events = everything
            else:
                events = [e for (job, _ev), e in zip(batch, everything)
                          if job.userid == msg.userid]
            if events:
                self.respond(msg, {"events": events})
