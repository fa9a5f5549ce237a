"""flux.resource.journal: follow the resource journal (spec 21.6).

``ResourceJournalConsumer(h, since=0.0, include_sentinel=False)`` reads
``resource.journal`` (always the full history, sorted, then live events);
each event is a ``ResourceJournalEvent(event, R=None)``, ``R`` set for
``resource-define`` only.
"""

from flux.abc import JournalConsumerBase, JournalEventBase

__all__ = ["ResourceJournalConsumer", "ResourceJournalEvent"]


class ResourceJournalEvent(JournalEventBase):
    """One resource event; ``R`` comes with ``resource-define``."""

    def __init__(self, event, R=None):
        super().__init__(event)
        self.R = R


class ResourceJournalConsumer(JournalConsumerBase):
    """Follow ``resource.journal`` (see the module docstring)."""

    def __init__(self, h, since=0.0, include_sentinel=False):
        super().__init__(h, "resource.journal", full=True, since=since,
                         include_sentinel=include_sentinel)

    def process_response(self, resp):
        return {"R": resp.get("R")}

    def create_event(self, entry, R=None):
        return ResourceJournalEvent(entry, R=R)
