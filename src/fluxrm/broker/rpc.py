"""Requests that a broker's own services send (to this or another rank).

``broker.rpc.call(topic, payload, nodeid)`` returns an asyncio future for
the response payload (an ``OSError`` for an error response);
``call(..., on_response=fn)`` calls ``fn(msg)`` with the response instead
(with every response, for ``streaming=True``); ``notify(...)`` sends a
request nobody answers.  The requests carry the instance owner's
credentials, or the ``cred`` given (a service asking on behalf of the
client that asked it).  To the router this
object is one more connection (ident ``broker``): a response finds its way
back to it along the request's route like any other.
"""

import asyncio
import itertools
import os

from flux.constants import FLUX_MSGTYPE_REQUEST, FLUX_NODEID_ANY, FLUX_ROLE_OWNER
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

    def call(self, topic, payload, nodeid=FLUX_NODEID_ANY, on_response=None,
             streaming=False, cred=None):
        """Send a request.  Without ``on_response``: a future of its
        response payload.  With it: ``on_response(msg)`` is called with the
        response (every response of a ``streaming`` request, until an
        error ends it).  ``cred``: ``(userid, rolemask)`` to send it with
        instead of the owner's (a service asking on behalf of its own
        requester)."""
        tag = next(self._tags)
        if on_response is None:
            waiter = asyncio.get_running_loop().create_future()
        else:
            waiter = (on_response, streaming)
        self._pending[tag] = waiter
        msg = self._request(topic, payload, nodeid,
                            MSGFLAG_STREAMING if streaming else 0)
        msg.matchtag = tag
        if cred is not None:
            msg.userid, msg.rolemask = cred
        self.router.dispatch(msg, self)
        return waiter if on_response is None else tag

    # the router's side: the connection interface (a response for us)
    def send(self, rsp):
        waiter = self._pending.get(rsp.matchtag)
        if waiter is None:
            return
        if type(waiter) is tuple:
            callback, streaming = waiter
            if rsp.errnum or not streaming:
                del self._pending[rsp.matchtag]
            callback(rsp)
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
