"""The job-manager's journal (a part of job-manager, ``JobManager``'s base
class ``Journal``): every main-eventlog event of every job, in order, to
whoever follows it.

Over RPC, ``job-manager.events-journal`` and
``job-manager.events-journal-cancel`` {matchtag} (see
``fluxrm.modules.job_manager`` for the topics), in two formats chosen by
the request; a guest's stream holds only that guest's jobs:

- ``{full: bool}`` (upstream's, ``flux.job.journal.JournalConsumer``): the
  history first, one response ``{id, events: [...], jobspec?, R?}`` per
  job (active jobs; with ``full`` the inactive ones still stored too),
  then ``{id: -1, events: []}``, then one response per event as it is
  posted, with the redacted jobspec (no ``attributes.system.environment``)
  on ``submit`` and R on ``alloc``;
- a request without ``full`` (fluxrm's own clients: ``FluxExecutor``,
  ``JobWatcher``): ``{events: [{id, entry}], sentinel: true}`` first (no
  history), then every event posted in a loop turn in one response
  ``{events: [{id, entry}...]}`` at the end of the turn.

Events posted in the loop turn that opened a stream but before it (already
in its history) are not sent again.

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
        if "full" in (req or {}):  # upstream's format (flux.job.journal)
            full = payload.boolean(req, "full", False)
            for item in self._journal_history(msg, full):
                self.respond(msg, item)
            self.respond(msg, {"id": -1, "events": []})
            stream = JournalStream(msg, True, len(self._journal_batch))
        else:
            self.respond(msg, {"events": [], "sentinel": True})
            stream = JournalStream(msg, False, len(self._journal_batch))
        self.journal[(msg.sender, msg.matchtag)] = stream

    def _journal_history(self, msg, full):
        """Upstream's history: one ``{id, events, jobspec?, R?}`` per job
        the requester may see, inactive ones too with ``full``."""
        if full:
            for jobid in self.job_ids():
                if jobid in self.active:
                    continue
                job = self.find(jobid)
                if job is not None:
                    if self._journal_visible(msg, job):
                        yield self._journal_job(job)
                    continue
                item = self._journal_stored(msg, jobid)
                if item is not None:
                    yield item
        for job in list(self.active.values()):
            if self._journal_visible(msg, job):
                yield self._journal_job(job)

    def _journal_job(self, job):
        item = {"id": job.id, "events": [json.loads(line) for line in job.logs[MAIN]]}
        jobspec = getattr(job.request, "jobspec", None)
        if jobspec is not None:
            item["jobspec"] = redacted(jobspec)
        if job.R is not None:
            item["R"] = job.R
        return item

    def _journal_stored(self, msg, jobid):
        data = self.job_data(jobid, ["eventlog", "jobspec", "R"])
        if not data or not data["eventlog"]:
            return None
        try:
            events = [json.loads(line) for line in data["eventlog"].splitlines()]
            userid = (events[0].get("context") or {}).get("userid")
            if not (msg.rolemask & FLUX_ROLE_OWNER or msg.userid == userid):
                return None
            item = {"id": jobid, "events": events}
            if data["jobspec"]:
                item["jobspec"] = redacted(json.loads(data["jobspec"]))
            if data["R"]:
                item["R"] = json.loads(data["R"])
        except (ValueError, AttributeError, IndexError):
            return None  # a damaged row: nothing to tell of it
        return item

    @request_handler("events-journal-cancel", allow_guest=True)
    def h_journal_cancel(self, msg):
        req = payload.request(msg)
        matchtag = payload.integer(req, "matchtag", lo=0, hi=0xFFFFFFFF)
        stream = self.journal.pop((msg.sender, matchtag), None)
        if stream is not None:
            self.respond_error(stream.msg, errno.ENODATA)
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
        everything = None
        for key, stream in list(self.journal.items()):
            msg = stream.msg
            if msg.sender.closed:
                del self.journal[key]
                continue
            mine = batch
            if stream.skip:  # events posted before the stream was opened
                mine, stream.skip = batch[stream.skip:], 0
            if not msg.rolemask & FLUX_ROLE_OWNER:
                mine = [(job, ev) for job, ev in mine if job.userid == msg.userid]
            if stream.upstream:
                for job, event in mine:
                    self.respond(msg, self._journal_item(job, event))
                continue
            if mine is batch:
                if everything is None:
                    everything = [{"id": job.id, "entry": ev} for job, ev in batch]
                events = everything
            else:
                events = [{"id": job.id, "entry": ev} for job, ev in mine]
            if events:
                self.respond(msg, {"events": events})

    @staticmethod
    def _journal_item(job, event):
        """One live event in upstream's format."""
        item = {"id": job.id, "events": [event]}
        name = event.get("name")
        if name == "submit":
            jobspec = getattr(job.request, "jobspec", None)
            if jobspec is not None:
                item["jobspec"] = redacted(jobspec)
        elif name == "alloc" and job.R is not None:
            item["R"] = job.R
        return item


class JournalStream:
    """One follower of the events journal: its request, its format
    (``upstream``: one event per response) and how many events of the
    pending batch it already had in its history (``skip``)."""

    __slots__ = ("msg", "upstream", "skip")

    def __init__(self, msg, upstream, skip):
        self.msg = msg
        self.upstream = upstream
        self.skip = skip


def redacted(jobspec):
    """The jobspec without ``attributes.system.environment`` (a copy of
    what changes; the rest is shared)."""
    system = (jobspec.get("attributes") or {}).get("system") if isinstance(
        jobspec, dict) else None
    if not isinstance(system, dict) or "environment" not in system:
        return jobspec
    system = {k: v for k, v in system.items() if k != "environment"}
    attributes = dict(jobspec["attributes"], system=system)
    return dict(jobspec, attributes=attributes)
