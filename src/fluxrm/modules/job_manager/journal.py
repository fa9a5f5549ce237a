"""The job-manager's events journal (a part of job-manager, ``JobManager``'s
base class ``Journal``): ``job-manager.events-journal`` and
``job-manager.events-journal-cancel`` (see ``fluxrm.modules.job_manager``
for the topics).  Every main-eventlog event posted in a loop turn goes to
each journal stream at the end of the turn, in one response; a guest's
stream holds only that guest's jobs.
"""

import asyncio
import errno
import json

from flux.constants import FLUX_ROLE_OWNER
from flux.message import MSGFLAG_NORESPONSE
from fluxrm.broker import payload
from fluxrm.job import MAIN


class Journal:
    """The journal's handlers; they use ``JobManager``'s ``journal``
    (streams: (sender, matchtag) -> request), ``_journal_batch``,
    ``_journal_flush_scheduled``, ``active``, ``respond`` and
    ``respond_error``."""

    # -- the events journal ------------------------------------------------------------
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
