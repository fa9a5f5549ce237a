"""The resource journal: what happened to the instance's resources, in
order (a part of the resource service on rank 0, ``ResourceService``'s base
class ``ResourceJournal``).  RPC topics:

- ``resource.journal`` {}  (guests allowed; streaming): the history, in
  responses of up to 100 events ``{events: [...]}`` (a ``resource-define``
  event alone in its response, with ``R``), then ``{events: []}``, then
  each event as it is posted, ``{events: [event]}`` (``R`` with
  ``resource-define``);
- ``resource.journal-cancel`` {matchtag}: ends that stream (ENODATA); the
  cancel itself is answered {} only if sent expecting an answer.

Events (RFC 18 entries): ``resource-define`` {method} once every rank's
resources are known; ``online``/``offline`` {idset}; ``drain`` {idset,
nodelist, reason, overwrite} (overwrite 0: new, 1: reason replaced, 2:
updated); ``undrain`` {idset, nodelist}; ``torpid``/``lively`` {idset}.
The history keeps the definition and the last ``JOURNAL_MAX`` other events.
"""

import errno
import time

from flux.message import MSGFLAG_NORESPONSE
from fluxrm.broker import payload
from fluxrm.broker.service import request_handler

JOURNAL_MAX = 10000
BATCH = 100


class ResourceJournal:
    """The journal's state and handlers; ``journal_init()`` first."""

    def journal_init(self):
        self.journal_events = []  # entries, in order
        self.journal_R = {}  # id(resource-define entry) -> R
        self.journal_streams = {}  # (sender, matchtag) -> request

    def journal_post(self, name, context=None, R=None):
        """Add an event to the journal and send it to every follower."""
        event = {"timestamp": time.time(), "name": name, "context": context or {}}
        events = self.journal_events
        events.append(event)
        if R is not None:
            self.journal_R[id(event)] = R
        if len(events) > JOURNAL_MAX:
            for i, old in enumerate(events):
                if id(old) not in self.journal_R:
                    del events[i]
                    break
        rsp = {"events": [event]}
        if R is not None:
            rsp["R"] = R
        for key, msg in list(self.journal_streams.items()):
            if msg.sender.closed:
                del self.journal_streams[key]
            else:
                self.respond(msg, rsp)

    @request_handler("journal", allow_guest=True)
    def h_resource_journal(self, msg):
        batch = []
        for event in self.journal_events:
            R = self.journal_R.get(id(event))
            if R is not None or len(batch) == BATCH:
                if batch:
                    self.respond(msg, {"events": batch})
                batch = []
            if R is not None:
                self.respond(msg, {"events": [event], "R": R})
            else:
                batch.append(event)
        if batch:
            self.respond(msg, {"events": batch})
        self.respond(msg, {"events": []})
        self.journal_streams[(msg.sender, msg.matchtag)] = msg

    @request_handler("journal-cancel", allow_guest=True)
    def h_resource_journal_cancel(self, msg):
        req = payload.request(msg)
        matchtag = payload.integer(req, "matchtag", lo=0, hi=0xFFFFFFFF)
        stream = self.journal_streams.pop((msg.sender, matchtag), None)
        if stream is not None:
            self.respond_error(stream, errno.ENODATA)
        if not msg.flags & MSGFLAG_NORESPONSE:
            self.respond(msg, {})

    def journal_disconnect(self, sender):
        for key in [k for k in self.journal_streams if k[0] is sender]:
            del self.journal_streams[key]
