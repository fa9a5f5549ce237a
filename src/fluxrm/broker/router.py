"""Message routing inside one broker.

Requests go to the service that owns the topic's first word (or a longer
dotted name registered by a client); a topic nobody owns gets ENOSYS.
Responses from client-registered services travel back along the route stack
of the request.  Events are published to every subscriber whose topic prefix
matches, in-process callbacks and client connections alike.

Every request carries a destination ``nodeid``: our own rank is served
here; another rank of the instance is reached through the overlay (down to
the child whose subtree holds it, else up), a rank outside the instance gets
EHOSTUNREACH.  ``FLUX_NODEID_ANY`` is served here if a local service has
the topic, else sent up (rank 0 answers ENOSYS); ``FLUX_NODEID_UPSTREAM``
always goes up (served here on rank 0).  See ``fluxrm.broker.overlay``.

Events are numbered by rank 0 only: one published here on another rank
goes up first, and reaches the subscribers of every rank (this one too) on
its way back down.

A request without ``FLUX_ROLE_OWNER`` to a topic its service declared
owner-only (``fluxrm.broker.service.request_handler``: the default) is
answered EPERM "Request requires owner credentials" before its handler
runs: the one place that rule is checked.

A handler's exception costs only its own request.  An ``OSError`` with an
errno is a deliberate answer: the requester gets that errno and text (request
fields are checked by ``fluxrm.broker.payload``, which raises EPROTO or
EINVAL naming the field).  A ``RecursionError`` is taken for a payload nested
too deeply to walk: EPROTO.  Any other exception is a bug in the service: its
traceback goes to the broker log (LOG_ERR) and the requester gets EIO with
"<topic>: internal error in service <name> (see the broker log)", so a bug
never passes for a bad request.  The same holds for a coroutine handler's
exception.  Messages reach the router already checked field by field
(``flux.message``); the connector also guards each dispatch.
"""

import asyncio
import errno
import os
import traceback

from flux.constants import (
    FLUX_MSGTYPE_REQUEST,
    FLUX_MSGTYPE_RESPONSE,
    FLUX_MSGTYPE_EVENT,
    FLUX_NODEID_ANY,
    FLUX_NODEID_UPSTREAM,
    FLUX_ROLE_OWNER,
)
from flux.message import MAX_ROUTE, Message, MSGFLAG_NORESPONSE, MSGFLAG_STREAMING
from fluxrm.broker.service import OWNER_ONLY_ERROR

LOG_ERR = 3
LOG_DEBUG = 7


class ClientService:
    """A service registered by a client connection (``service_register``).

    Requests in flight are remembered so that, if the provider goes away,
    each requester gets an error instead of waiting forever.
    """

    def __init__(self, name, conn):
        self.name = name
        self.conn = conn
        self.inflight = {}  # (requester ident, matchtag) -> request

    def forward(self, msg, sender):
        if not msg.flags & MSGFLAG_NORESPONSE:
            self.inflight[(sender.ident, msg.matchtag)] = msg
        msg.route = (msg.route or []) + [sender.ident]
        self.conn.send(msg)

    def answered(self, rsp, ident):
        if not rsp.flags & MSGFLAG_STREAMING or rsp.errnum:
            self.inflight.pop((ident, rsp.matchtag), None)


class Router:
    def __init__(self, broker):
        self.broker = broker
        self.services = {}  # name -> Service or ClientService
        self.dotted_services = False
        self.subscriptions = {}  # topic prefix -> set of subscribers
        self.connections = {}  # ident -> connection
        self.event_seq = 0
        self.overlay = None  # fluxrm.broker.overlay.Overlay when size > 1
        self._tasks = set()

    # -- services ------------------------------------------------------------
    def add_service(self, service):
        self.services[service.name] = service

    def register_client_service(self, name, conn):
        if name in self.services:
            raise OSError(errno.EEXIST, f"service {name} already registered")
        self.services[name] = ClientService(name, conn)
        if "." in name:
            self.dotted_services = True
        conn.client_services.add(name)

    def unregister_client_service(self, name, conn):
        svc = self.services.get(name)
        if not isinstance(svc, ClientService) or svc.conn is not conn:
            raise OSError(errno.ENOENT, f"service {name} is not registered")
        del self.services[name]
        conn.client_services.discard(name)

    def lookup(self, topic):
        name, _, _ = topic.partition(".")
        svc = self.services.get(name)
        if self.dotted_services:
            # a longer registered name wins over its first word
            parts = topic.split(".")
            for i in range(len(parts) - 1, 1, -1):
                longer = self.services.get(".".join(parts[:i]))
                if longer is not None:
                    return longer
        return svc

    # -- connections ---------------------------------------------------------
    def add_connection(self, conn):
        self.connections[conn.ident] = conn

    def drop_connection(self, conn):
        self.connections.pop(conn.ident, None)
        for prefix in list(conn.subscriptions):
            self.unsubscribe(prefix, conn)
        for name in list(conn.client_services):
            svc = self.services.pop(name, None)
            for req in svc.inflight.values() if svc else ():
                self.error(req, errno.ENOSYS, f"service {name} went away")
        for name in conn.services_used:
            svc = self.services.get(name)
            if svc is not None and hasattr(svc, "disconnect"):
                try:
                    svc.disconnect(conn)
                except Exception:  # a service bug must not take the broker down
                    self.broker.log(LOG_ERR, f"{name}: disconnect: "
                                    + traceback.format_exc())

    # -- dispatch ------------------------------------------------------------
    def dispatch(self, msg, sender):
        """Route one message that arrived from ``sender``."""
        mtype = msg.type
        if mtype == FLUX_MSGTYPE_REQUEST:
            self.dispatch_request(msg, sender)
        elif mtype == FLUX_MSGTYPE_RESPONSE:
            self.dispatch_response(msg)
        elif mtype == FLUX_MSGTYPE_EVENT:
            self.publish_message(msg)

    def dispatch_request(self, msg, sender):
        msg.sender = sender
        nodeid = msg.nodeid
        rank = self.broker.rank
        if nodeid != FLUX_NODEID_ANY and nodeid != rank:
            if nodeid == FLUX_NODEID_UPSTREAM:
                if rank != 0:  # rank 0 has no upstream: serve here, as upstream does
                    self.forward_up(msg, sender)
                    return
            elif nodeid >= self.broker.size or self.overlay is None:
                self.error(msg, errno.EHOSTUNREACH, f"No route to rank {nodeid}")
                return
            else:
                if not self.overlay.forward(msg, sender, nodeid):
                    self.error(msg, errno.EHOSTUNREACH, f"rank {nodeid} is offline")
                return
        topic = msg._topic or ""
        svc = self.lookup(topic)
        if svc is None:
            if nodeid == FLUX_NODEID_ANY and rank != 0:
                self.forward_up(msg, sender)
                return
            self.error(msg, errno.ENOSYS, None)
            return
        if isinstance(svc, ClientService):
            if msg.route and len(msg.route) >= MAX_ROUTE:
                # one more hop and the provider's answer could not come back
                self.error(msg, errno.EPROTO, f"{topic}: route too long")
                return
            svc.forward(msg, sender)
            return
        sender.services_used.add(svc.name)
        handler = svc.handlers.get(topic)
        if handler is None:
            if nodeid == FLUX_NODEID_ANY and rank != 0:
                # a service present on every rank serves some topics at rank 0 only
                self.forward_up(msg, sender)
                return
            self.error(msg, errno.ENOSYS, None)
            return
        if not msg.rolemask & FLUX_ROLE_OWNER and topic in svc.owner_only:
            self.error(msg, errno.EPERM, OWNER_ONLY_ERROR)
            return
        try:
            result = handler(msg)
        except Exception as exc:
            self.handler_failed(svc, msg, exc)
            return
        if asyncio.iscoroutine(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(lambda t, s=svc, m=msg: self._task_done(t, s, m))

    def forward_up(self, msg, sender):
        """Send a request on to the parent (as ``FLUX_NODEID_ANY``)."""
        if self.overlay is None or not self.overlay.forward_up(msg, sender):
            self.error(msg, errno.EHOSTUNREACH, "the parent broker is unreachable")

    def unroute_error(self, req, errnum, errstr):
        """Answer a request this broker forwarded to a peer that is gone:
        the error retraces the route the request took to here."""
        if req.flags & MSGFLAG_NORESPONSE or not req.route:
            return
        self.dispatch_response(req.response(errnum=errnum, errstr=errstr))

    def _task_done(self, task, svc, msg):
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.handler_failed(svc, msg, exc)

    def handler_failed(self, svc, msg, exc):
        """Answer a request whose handler (or its coroutine) raised ``exc``."""
        if isinstance(exc, OSError) and exc.errno:
            self.error(msg, exc.errno, exc.strerror)
            return
        if isinstance(exc, RecursionError):
            # a payload nested too deeply to walk (flux.message bounds what it
            # decodes, but a handler may still recurse through a value);
            # logged at debug level in case it was a runaway recursion instead
            self.broker.log(LOG_DEBUG, f"{svc.name}: {msg._topic}: "
                            + "".join(traceback.format_exception(exc, limit=-3)))
            self.error(msg, errno.EPROTO, f"{msg._topic}: payload is nested too deeply")
            return
        self.internal_error(msg, svc.name, exc)

    def internal_error(self, msg, name, exc):
        """Log ``exc`` with its traceback and answer ``msg`` with EIO.

        ``exc`` is a bug in service ``name`` met while handling ``msg``.  The
        answer says so without Python text; the log has the details.  EIO,
        not EPROTO or EINVAL: the request may have been fine, the service
        failed.
        """
        topic = msg._topic
        self.broker.log(LOG_ERR, f"{name}: internal error handling {topic}: "
                        + "".join(traceback.format_exception(exc)).rstrip("\n"))
        self.error(msg, errno.EIO,
                   f"{topic}: internal error in service {name} (see the broker log)")

    def error(self, msg, errnum, errstr):
        """Answer a request with an error unless it asked for no response."""
        if msg.flags & MSGFLAG_NORESPONSE:
            return
        sender = msg.sender
        if sender is not None and not sender.closed:
            sender.send(msg.response(errnum=errnum,
                                     errstr=errstr or os.strerror(errnum)))

    def dispatch_response(self, msg):
        route = msg.route
        if not route:
            return
        ident = route.pop()
        svc = self.lookup(msg._topic or "")
        if isinstance(svc, ClientService):
            svc.answered(msg, ident)
        conn = self.connections.get(ident)
        if conn is not None and not conn.closed:
            conn.send(msg)

    # -- events ----------------------------------------------------------------
    def subscribe(self, prefix, subscriber):
        self.subscriptions.setdefault(prefix, set()).add(subscriber)
        if hasattr(subscriber, "subscriptions"):
            subscriber.subscriptions.add(prefix)

    def unsubscribe(self, prefix, subscriber):
        subs = self.subscriptions.get(prefix)
        if subs is not None:
            subs.discard(subscriber)
            if not subs:
                del self.subscriptions[prefix]
        if hasattr(subscriber, "subscriptions"):
            subscriber.subscriptions.discard(prefix)

    def publish(self, topic, payload=None):
        """Publish an event originating in this broker."""
        self.publish_message(Message.build(FLUX_MSGTYPE_EVENT, topic, payload))

    def publish_message(self, msg):
        """Publish an event: numbered and sent down the tree at rank 0,
        sent up from any other rank (it comes back down numbered)."""
        overlay = self.overlay
        if overlay is not None and self.broker.rank != 0:
            msg.seq = 0
            if not overlay.send_up(msg):
                self.broker.log(LOG_ERR, f"event {msg._topic}: no parent to"
                                " publish it through; dropped")
            return
        self.event_seq += 1
        msg.seq = self.event_seq
        if overlay is not None:
            overlay.multicast(msg)
        self.deliver_event(msg)

    def event_from_parent(self, msg):
        """A numbered event from the parent: deliver here, pass it down."""
        self.event_seq = msg.seq
        self.overlay.multicast(msg)
        self.deliver_event(msg)

    def event_from_child(self, msg):
        """An event published below us: up it goes (rank 0 numbers it)."""
        self.publish_message(msg)

    def deliver_event(self, msg):
        """Deliver an event to this broker's subscribers."""
        topic = msg._topic or ""
        delivered = set()
        for prefix, subs in list(self.subscriptions.items()):
            if topic.startswith(prefix):
                for sub in list(subs):
                    if sub in delivered:
                        continue
                    delivered.add(sub)
                    sub.deliver_event(msg)
