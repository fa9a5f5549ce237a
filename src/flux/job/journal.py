"""flux.job.journal: follow every job's events (spec 19.3).

``JournalConsumer(h, full=True, since=0.0, include_sentinel=False)`` reads
the ``job-manager.events-journal`` stream (request ``{"full": full}``):
responses ``{id, events, jobspec?, R?}``, the history (all jobs with
``full``, active ones otherwise) ended by ``{"id": -1, "events": []}``.
Each event is a ``JournalEvent(jobid, event, jobspec=None, R=None)``: the
job's redacted jobspec comes with ``submit`` only, R with ``alloc`` only.
``SENTINEL_EVENT`` marks the end of history (``include_sentinel``).
"""

from flux.abc import JournalConsumerBase, JournalEventBase
from flux.job.JobID import JobID

__all__ = ["JournalConsumer", "JournalEvent", "SENTINEL_EVENT"]


class JournalEvent(JournalEventBase):
    """One job event from the journal (see the module docstring)."""

    def __init__(self, jobid, event, jobspec=None, R=None):
        super().__init__(event)
        self.jobid = JobID(jobid)
        name = self.get("name")
        self.jobspec = jobspec if name == "submit" else None
        self.R = R if name == "alloc" else None

    def is_empty(self):
        return self.jobid == -1

    def __str__(self):
        if self.is_empty():
            return "-1: End of historical data stream"
        text = f"{self.jobid.f58}: {self.timestamp:.5f} {self.name}"
        if self.context_string:
            text += f" {self.context_string}"
        if self.jobspec:
            text += f" jobspec={self.jobspec}"
        if self.R:
            text += f" R={self.R}"
        return text


SENTINEL_EVENT = JournalEvent(-1, {})


class JournalConsumer(JournalConsumerBase):
    """Follow ``job-manager.events-journal`` (see the module docstring)."""

    SENTINEL_EVENT = SENTINEL_EVENT

    def __init__(self, h, full=True, since=0.0, include_sentinel=False):
        super().__init__(h, "job-manager.events-journal", full=full, since=since,
                         include_sentinel=include_sentinel)

    @property
    def request_payload(self):
        return {"full": self.full}

    def process_response(self, resp):
        return {"jobid": resp["id"], "jobspec": resp.get("jobspec"), "R": resp.get("R")}

    def create_event(self, entry, jobid, jobspec=None, R=None):
        return JournalEvent(jobid, entry, jobspec=jobspec, R=R)
