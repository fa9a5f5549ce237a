"""Requests that a broker's own services send (to this or another rank).

``broker.rpc.call(topic, payload, nodeid)`` returns an asyncio future for
the response payload (an ``OSError`` for an error response);
``call(..., on_response=fn)`` calls ``fn(msg)`` for every response of a
streaming request instead; ``notify(...)`` sends a request nobody answers.
The requests carry the instance owner's credentials.  To the router this
object is one more connection (ident ``broker``): a response finds its way
back to it along the request's route like any other.
"""

import asyncio
import itertools
import os

from flux.constants import FLUX_MSGTYPE_REQUEST, FLUX_ROLE_OWNER
from flux.message import MSGFLAG_NORESPONSE, MSGFLAG_STREAMING, Message


class BrokerRPC:
    ident = "broker"

    def __init__(self, router):
        self.router = router
        self.closed = False
        self.subscriptions = set()
        self.client_services = set()
        self.services_used = set()
        self._tags = itertools.count(1)
        self._pending = {}  # matchtag -> future or callback
        router.add_connection(self)

    def _request(self, topic, payload, nodeid, flags):
        msg = Message.build(FLUX_MSGTYPE_REQUEST, topic, payload, nodeid=nodeid,
                            flags=flags)
        msg.userid = os.getuid()
        msg.rolemask = FLUX_ROLE_OWNER
        return msg

    def notify(self, topic, payload, nodeid):
        """Send a request that asks for no response."""
        msg = self._request(topic, payload, nodeid, MSGFLAG_NORESPONSE)
        self.router.dispatch(msg, self)

    def call(self, topic, payload, nodeid, on_response=None):
        """Send a request; a future of its response payload, or (with
        ``on_response``) a streaming request whose every response is
        passed to ``on_response(msg)`` until an error response ends it."""
        tag = next(self._tags)
        if on_response is None:
            waiter = asyncio.get_running_loop().create_future()
            flags = 0
        else:
            waiter = on_response
            flags = MSGFLAG_STREAMING
        self._pending[tag] = waiter
        msg = self._request(topic, payload, nodeid, flags)
        msg.matchtag = tag
        self.router.dispatch(msg, self)
        return waiter if on_response is None else tag

    # the router's side: the connection interface (a response for us)
    def send(self, rsp):
        waiter = self._pending.get(rsp.matchtag)
        if waiter is None:
            return
        if not isinstance(waiter, asyncio.Future):
            if rsp.errnum:
                del self._pending[rsp.matchtag]
            waiter(rsp)
            return
        del self._pending[rsp.matchtag]
        if waiter.done():
            return
        if rsp.errnum:
            waiter.set_exception(OSError(rsp.errnum, rsp.errstr
                                         or os.strerror(rsp.errnum)))
        else:
            waiter.set_result(rsp.get_object())

    def deliver_event(self, msg):
        """Not a subscriber of anything."""
