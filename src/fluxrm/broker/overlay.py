"""The overlay: this broker's links to its parent and children in the tree.

A broker of rank R in an instance of size N (N > 1) binds one ZeroMQ ROUTER
socket if it has children, and connects one DEALER socket to its parent
unless it is rank 0.  Every overlay socket uses CURVE: a parent knows its
children's public keys (from the bootstrap) and its ZAP handler refuses any
other key, with a log line naming it.  A child's routing id is a fresh uuid
per boot, so a restarted broker is a new peer.

What travels is what travels on a client connection (``flux.message``): a
ZeroMQ message from a peer is one frame holding one or more msgpack-encoded
messages.  Messages queued for one peer during a loop turn leave together
in one frame (``queue``/``_flush``), so a busy broker pays one ZeroMQ send
per peer per turn, not one per message.

Hello: a child's first message is the request ``overlay.hello {rank, uuid,
hostname, version}``.  The parent refuses a rank that is not its child, a
host name other than the one the bootstrap gave for that rank, or another
major.minor version; a hello from a rank already online under another uuid
replaces the old peer.  Anything else from a routing id that has not said
hello is dropped (once logged).  Until the hello is answered a child
accepts nothing else from its parent.

Routing (``Router.dispatch_request`` asks ``route_request``): a request for
rank T goes down to the child whose subtree holds T, else up to the parent;
``FLUX_NODEID_UPSTREAM`` goes up as ``FLUX_NODEID_ANY``; a request for a
topic no local service has goes up (rank 0 answers ENOSYS).  A forwarding
broker pushes the sender's ident on the request's route, as for a
client-provided service, so the response retraces the path; each peer
remembers the requests forwarded to it (``Peer.inflight``) so that, if the
peer goes away, each one is answered EHOSTUNREACH.  Messages from a peer
lose the ``FLUX_ROLE_LOCAL`` role.

Events: only rank 0 numbers them (``Router.publish_message``); it sends
each to every child, and each broker delivers it to its own subscribers and
sends it on to its children.  An event published on another rank goes up
unnumbered and comes back down.

Shutdown goes leaves first: ``overlay.shutdown`` goes down the tree; a
broker that gets it waits (bounded) until its children have said
``overlay.goodbye``, then stops its services, says goodbye itself and exits.
"""

import asyncio
import errno
import uuid

import zmq
from zmq.auth.base import Authenticator

from flux.constants import (
    FLUX_MSGTYPE_EVENT,
    FLUX_MSGTYPE_REQUEST,
    FLUX_MSGTYPE_RESPONSE,
    FLUX_NODEID_ANY,
    FLUX_ROLE_LOCAL,
)
from flux.message import MSGFLAG_NORESPONSE, Decoder, Message, ProtocolError, encode
from fluxrm.broker.liveness import Liveness

LOG_ERR = 3
LOG_WARNING = 4
LOG_INFO = 6
LOG_DEBUG = 7

HELLO = "overlay.hello"
GOODBYE = "overlay.goodbye"
SHUTDOWN = "overlay.shutdown"
KEEPALIVE = "overlay.keepalive"
ZAP_DOMAIN = "flux"
NOT_LOCAL = ~FLUX_ROLE_LOCAL
HANDSHAKE_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
PARENT_EVENTS = HANDSHAKE_FAILED | zmq.EVENT_DISCONNECTED
HANDSHAKE_TRIES = 3  # failed handshakes before a child gives up on its parent
REFUSED_LOG_PERIOD = 10.0  # seconds between log lines about refused peers


def version_key(version):
    """The major.minor part of a version string, which peers must share."""
    return ".".join(str(version).split(".")[:2])


class Peer:
    """A neighbour in the tree, seen by the router as a connection.

    ``ident`` is ``"parent"`` or ``"child-<rank>"``: what a forwarded
    request pushes on its route.
    """

    __slots__ = ("overlay", "ident", "rank", "zid", "closed", "inflight",
                 "subscriptions", "client_services", "services_used",
                 "decoder", "hostname", "last_seen", "torpid")

    def __init__(self, overlay, ident, rank, zid=None, hostname=None):
        self.overlay = overlay
        self.ident = ident
        self.rank = rank
        self.zid = zid
        self.hostname = hostname
        self.closed = False
        self.inflight = {}  # (sender ident, matchtag) -> request sent to it
        self.subscriptions = set()
        self.client_services = set()
        self.services_used = set()
        self.decoder = Decoder()
        self.last_seen = 0.0  # loop time of the last frame from it
        self.torpid = False

    def __repr__(self):
        return f"<Peer {self.ident}>"

    def send(self, msg):
        self.overlay.queue(self, msg)

    def deliver_event(self, msg):
        self.overlay.queue(self, msg)


class _KeyCheck:
    """The ZAP callback: allow the public keys the bootstrap gave."""

    def __init__(self, overlay):
        self.overlay = overlay

    def callback(self, domain, key):
        if key in self.overlay.allowed_keys:
            return True
        self.overlay.log(LOG_ERR, f"refused a peer with an unknown CURVE key"
                         f" {key.decode(errors='replace')}")
        return False


class Overlay:
    """The tree links of one broker.  See the module docstring.

    ``info`` is the bootstrap's result (``fluxrm.broker.bootstrap.BootInfo``):
    rank, size, topology, keys, this broker's bind URI and its parent's
    connect URI and public key, its children's public keys and host names.
    """

    def __init__(self, broker, info):
        self.broker = broker
        self.router = broker.router
        self.info = info
        self.rank = info.rank
        self.size = info.size
        self.topology = info.topology
        self.allowed_keys = set()  # children's public keys (Z85): after exchange()
        self.child_ranks = list(self.topology.children(self.rank))
        self.ctx = None
        self.router_sock = None
        self.dealer_sock = None
        self.auth = None
        self.parent = None  # Peer, once the hello is answered
        self.children = {}  # rank -> Peer
        self.by_zid = {}  # routing id -> Peer
        self.endpoint = None  # what we bound, for tbon.endpoint
        self.uuid = uuid.uuid4().hex
        self._pending = {}  # Peer -> [bytes]
        self._flush_scheduled = False
        self._hello_future = None
        self._unknown_logged = set()
        self.goodbyes = {}  # rank -> asyncio.Event set when a child leaves
        self.loop = None
        self._accepting = False
        self._router_monitor = None
        self._refused = 0
        self._refused_logged = -REFUSED_LOG_PERIOD
        self._handshake_failures = 0
        self._parent_monitor = None
        self._tasks = set()
        self.last_sent_up = 0.0  # loop time of our last frame to the parent
        self.parent_last_seen = 0.0  # and of its last frame to us
        self.liveness = Liveness(self)

    def log(self, level, text):
        self.broker.log(level, f"overlay: {text}")

    # -- sockets -----------------------------------------------------------
    def bind(self, uri):
        """Bind the socket children connect to (before the loop runs: the
        bootstrap puts the endpoint in this broker's card)."""
        info = self.info
        if self.ctx is None:
            self.ctx = zmq.Context()
        self.auth = Authenticator(self.ctx)
        self.auth.start()
        self.auth.configure_curve_callback(ZAP_DOMAIN, _KeyCheck(self))
        sock = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.setsockopt(zmq.LINGER, 1000)
        sock.curve_secretkey = info.secret_key
        sock.curve_publickey = info.public_key
        sock.curve_server = True
        sock.zap_domain = ZAP_DOMAIN.encode()
        try:
            sock.bind(uri)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            raise OSError(exc.errno, f"overlay: cannot bind {uri}: {exc}") from None
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.router_sock = sock
        return self.endpoint

    def start(self):
        """Watch the sockets from the running loop; connect to the parent."""
        self.loop = loop = asyncio.get_running_loop()
        info = self.info
        self.allowed_keys = set(info.child_keys)
        if self.ctx is None:
            self.ctx = zmq.Context()
        self.liveness.start(loop)
        if self.rank == 0:
            self.accept_children()
        else:
            sock = self.ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.SNDHWM, 0)
            sock.setsockopt(zmq.RCVHWM, 0)
            sock.setsockopt(zmq.LINGER, 1000)
            sock.setsockopt(zmq.ROUTING_ID, self.uuid.encode())
            sock.curve_secretkey = info.secret_key
            sock.curve_publickey = info.public_key
            sock.curve_serverkey = info.parent_key
            sock.connect(info.parent_uri)
            self.dealer_sock = sock
            loop.add_reader(sock.getsockopt(zmq.FD), self._drain)

    def accept_children(self):
        """Serve the children (rank 0 at once; the others once their own
        hello is answered, so that nothing a child sends finds us without
        a way up)."""
        if self.router_sock is None:
            return
        loop = self.loop
        loop.add_reader(self.auth.zap_socket.getsockopt(zmq.FD), self._drain_zap)
        loop.add_reader(self.router_sock.getsockopt(zmq.FD), self._drain)
        self._router_monitor = self.router_sock.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
            | zmq.EVENT_DISCONNECTED)
        loop.add_reader(self._router_monitor.getsockopt(zmq.FD),
                        self._drain_router_monitor)
        # a ZeroMQ fd signals only once its events have been read: read them
        loop.call_soon(self._drain_router_monitor)
        loop.call_soon(self._drain_zap)
        loop.call_soon(self._drain)
        self._accepting = True

    async def hello(self, timeout):
        """Say hello to the parent and wait for its answer (rank > 0)."""
        info = self.info
        parent_rank = self.topology.parent(self.rank)
        self._hello_future = self.loop.create_future()
        msg = Message.build(FLUX_MSGTYPE_REQUEST, HELLO, {
            "rank": self.rank, "uuid": self.uuid, "hostname": info.hostname,
            "version": self.broker.attr("version")}, nodeid=parent_rank)
        self.dealer_sock.send(encode(msg), zmq.NOBLOCK)
        self.loop.call_soon(self._drain)
        # ZeroMQ says nothing when the parent refuses our key: its monitor does
        monitor = self.dealer_sock.get_monitor_socket(PARENT_EVENTS)
        self._parent_monitor = monitor
        self._handshake_failures = 0
        self.loop.add_reader(monitor.getsockopt(zmq.FD), self._drain_monitor, monitor)
        self.loop.call_soon(self._drain_monitor, monitor)
        try:
            rsp = await asyncio.wait_for(self._hello_future, timeout)
        except asyncio.TimeoutError:
            raise OSError(errno.ETIMEDOUT, f"no answer from the parent (rank"
                          f" {parent_rank}) at {info.parent_uri} within"
                          f" {timeout:g}s: is it running?") from None
        if isinstance(rsp, str):
            raise OSError(errno.EPERM, f"the parent (rank {parent_rank}) at"
                          f" {info.parent_uri} {rsp}")
        if rsp.errnum:
            raise OSError(rsp.errnum, f"the parent (rank {parent_rank}) refused"
                          f" us: {rsp.errstr}")
        self.parent = Peer(self, "parent", parent_rank)
        self.parent_last_seen = self.last_sent_up = self.loop.time()
        self.router.add_connection(self.parent)
        self.log(LOG_DEBUG, f"connected to the parent (rank {parent_rank})")
        self.accept_children()

    def _drain_monitor(self, monitor):
        from zmq.utils.monitor import recv_monitor_message

        try:
            while monitor.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)["event"]
                if event == zmq.EVENT_DISCONNECTED:
                    if self.parent is not None:
                        self.parent_lost("its connection closed")
                    continue
                future = self._hello_future
                if future is None or future.done():
                    continue
                # a refused key says so (AUTH); a parent with another key
                # cannot read our handshake at all (NO_DETAIL, PROTOCOL):
                # ZeroMQ would retry forever, we give up after a few tries
                self._handshake_failures += 1
                if (event == zmq.EVENT_HANDSHAKE_FAILED_AUTH
                        or self._handshake_failures >= HANDSHAKE_TRIES):
                    future.set_result("refused our CURVE key (another"
                                      " certificate, or the wrong parent key?)")
        except zmq.ZMQError:
            pass

    def _drain_router_monitor(self):
        """Log peers whose handshake failed (a wrong certificate, or bytes
        that are not ZeroMQ): at most one line per ``REFUSED_LOG_PERIOD``."""
        from zmq.utils.monitor import recv_monitor_message

        monitor = self._router_monitor
        if monitor is None:
            return
        disconnected = False
        try:
            while monitor.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                if recv_monitor_message(monitor, zmq.NOBLOCK)["event"] \
                        == zmq.EVENT_DISCONNECTED:
                    disconnected = True
                else:
                    self._refused += 1
        except zmq.ZMQError:
            return
        if disconnected:
            # which child went away ZeroMQ does not say: a send to it fails
            self.probe_children()
        now = self.loop.time()
        if self._refused and now >= self._refused_logged + REFUSED_LOG_PERIOD:
            self.log(LOG_ERR, f"refused a peer: {self._refused} failed handshake(s)"
                     " (another CURVE certificate, or not a broker)")
            self._refused = 0
            self._refused_logged = now

    def close(self):
        loop = self.loop
        self._flush()
        if self._parent_monitor is not None:
            loop.remove_reader(self._parent_monitor.getsockopt(zmq.FD))
            self.dealer_sock.disable_monitor()
            self._parent_monitor.close(linger=0)
            self._parent_monitor = None
        self.liveness.stop()
        if self._router_monitor is not None:
            loop.remove_reader(self._router_monitor.getsockopt(zmq.FD))
            self.router_sock.disable_monitor()
            self._router_monitor.close(linger=0)
            self._router_monitor = None
        for sock in (self.router_sock, self.dealer_sock):
            if sock is not None:
                try:
                    loop.remove_reader(sock.getsockopt(zmq.FD))
                except Exception:
                    pass
                sock.close(linger=1000)
        if self.auth is not None:
            try:
                loop.remove_reader(self.auth.zap_socket.getsockopt(zmq.FD))
            except Exception:
                pass
            self.auth.stop()
        if self.ctx is not None:
            self.ctx.term()
        self.router_sock = self.dealer_sock = self.ctx = self.auth = None

    # -- sending -------------------------------------------------------------
    def queue(self, peer, msg):
        """Send ``msg`` to ``peer`` at the end of this loop turn."""
        try:
            data = encode(msg)
        except (TypeError, ValueError, RecursionError) as exc:
            self.log(LOG_ERR, f"{peer.ident}: {msg!r} cannot be encoded: {exc}")
            return
        self.queue_bytes(peer, data)

    def queue_bytes(self, peer, data):
        if peer.closed:
            return
        pending = self._pending.get(peer)
        if pending is None:
            self._pending[peer] = [data]
        else:
            pending.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self):
        self._flush_scheduled = False
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        for peer, chunks in pending.items():
            data = b"".join(chunks)
            if peer.closed:
                continue
            try:
                if peer is self.parent:
                    self.dealer_sock.send(data, zmq.NOBLOCK)
                    self.last_sent_up = self.loop.time()
                else:
                    self.router_sock.send_multipart([peer.zid, data], zmq.NOBLOCK)
            except zmq.ZMQError as exc:
                self.log(LOG_ERR, f"{peer.ident}: send failed: {exc}")
                if peer is not self.parent:
                    self.child_lost(peer, f"send failed: {exc}")
        # a send may have eaten the edge that would announce input: look now
        self._drain()

    def multicast(self, msg):
        """Send an event to every child that is online."""
        if not self.children:
            return
        data = encode(msg)
        for peer in self.children.values():
            self.queue_bytes(peer, data)

    def send_up(self, msg):
        if self.parent is None:
            return False
        self.queue(self.parent, msg)
        return True

    # -- receiving -----------------------------------------------------------
    def _drain(self):
        """Read everything the sockets hold (ZeroMQ's fd is edge-triggered)."""
        for sock in (self.router_sock if self._accepting else None, self.dealer_sock):
            if sock is None:
                continue
            try:
                while sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                    if sock is self.router_sock:
                        if len(frames) == 2:
                            self._from_child(frames[0], frames[1])
                    else:
                        self._from_parent(frames[-1])
            except zmq.Again:
                pass
            except zmq.ZMQError as exc:
                if exc.errno != zmq.ETERM:
                    self.log(LOG_ERR, f"receive failed: {exc}")

    def _drain_zap(self):
        sock = self.auth.zap_socket if self.auth else None
        if sock is None:
            return
        try:
            while sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                frames = sock.recv_multipart(zmq.NOBLOCK)
                task = self.loop.create_task(self.auth.handle_zap_message(frames))
                self._tasks.add(task)
                task.add_done_callback(self._zap_done)
        except zmq.Again:
            pass

    def _zap_done(self, task):
        self._tasks.discard(task)
        # the answer went out on the ZAP socket: it may hold the next request
        self.loop.call_soon(self._drain_zap)

    def _decode(self, peer, data, what):
        try:
            msgs = peer.decoder.feed(data)
        except ProtocolError as exc:
            self.log(LOG_ERR, f"{what}: protocol error: {exc}; messages dropped")
            peer.decoder = Decoder()
            return exc.messages
        if peer.decoder.rejected:
            self.log(LOG_ERR, f"{what}: {len(peer.decoder.rejected)} malformed"
                     " message(s) dropped")
            peer.decoder.rejected.clear()
        return msgs

    def _from_parent(self, data):
        if self.parent is None:
            self._before_hello(data)
            return
        peer = self.parent
        self.parent_last_seen = self.loop.time()
        dispatch = self.router.dispatch
        for msg in self._decode(peer, data, "parent"):
            msg.rolemask &= NOT_LOCAL
            mtype = msg.type
            if mtype == FLUX_MSGTYPE_REQUEST and msg._topic == KEEPALIVE:
                continue  # the parent's probe
            if mtype == FLUX_MSGTYPE_EVENT:
                self.router.event_from_parent(msg)
            elif mtype == FLUX_MSGTYPE_RESPONSE:
                self._answered(peer, msg)
                dispatch(msg, peer)
            elif mtype == FLUX_MSGTYPE_REQUEST and msg._topic == SHUTDOWN:
                self._shutdown_from_parent(msg)
            else:
                dispatch(msg, peer)

    def _before_hello(self, data):
        """Only the answer to our hello counts until it comes."""
        try:
            msgs = Decoder().feed(data)
        except ProtocolError:
            return
        for msg in msgs:
            if (msg.type == FLUX_MSGTYPE_RESPONSE and msg._topic == HELLO
                    and self._hello_future is not None
                    and not self._hello_future.done()):
                self._hello_future.set_result(msg)

    def _from_child(self, zid, data):
        peer = self.by_zid.get(zid)
        if peer is None:
            self._hello_from(zid, data)
            return
        peer.last_seen = self.loop.time()
        if peer.torpid:
            self.liveness.heard(peer)
        dispatch = self.router.dispatch
        for msg in self._decode(peer, data, peer.ident):
            msg.rolemask &= NOT_LOCAL
            mtype = msg.type
            if mtype == FLUX_MSGTYPE_REQUEST and msg._topic == KEEPALIVE:
                continue  # only says it is alive
            if mtype == FLUX_MSGTYPE_EVENT:
                self.router.event_from_child(msg)
            elif mtype == FLUX_MSGTYPE_RESPONSE:
                self._answered(peer, msg)
                dispatch(msg, peer)
            elif mtype == FLUX_MSGTYPE_REQUEST and msg._topic == GOODBYE:
                self.child_gone(peer)
            else:
                dispatch(msg, peer)

    @staticmethod
    def _answered(peer, rsp):
        """A response came back from ``peer``: forget the request, unless
        more responses are to come."""
        route = rsp.route
        if route and (not rsp.flags & 1 or rsp.errnum):  # 1: streaming
            peer.inflight.pop((route[-1], rsp.matchtag), None)

    # -- hello / goodbye ----------------------------------------------------
    def _hello_from(self, zid, data):
        try:
            msgs = Decoder().feed(data)
        except ProtocolError:
            msgs = []
        msg = msgs[0] if msgs else None
        if msg is None or msg.type != FLUX_MSGTYPE_REQUEST or msg._topic != HELLO:
            if zid not in self._unknown_logged and len(self._unknown_logged) < 64:
                self._unknown_logged.add(zid)
                self.log(LOG_WARNING, "dropped a message from a peer that has"
                         " not said hello")
            return
        error = self._check_hello(msg)
        if error is not None:
            self.log(LOG_ERR, f"refused hello: {error}")
            rsp = msg.response(errnum=errno.EPERM, errstr=error)
            self._send_to_zid(zid, rsp)
            return
        req = msg.get_object()
        rank = req["rank"]
        old = self.children.get(rank)
        if old is not None:
            self.child_lost(old, "it said hello again (restarted)")
        peer = Peer(self, f"child-{rank}", rank, zid, req["hostname"])
        peer.last_seen = self.loop.time()
        self.children[rank] = peer
        self.by_zid[zid] = peer
        self.router.add_connection(peer)
        self._send_to_zid(zid, msg.response({"rank": self.rank}))
        self.log(LOG_DEBUG, f"rank {rank} ({req['hostname']}) said hello")

    def _check_hello(self, msg):
        try:
            req = msg.get_object()
        except OSError:
            req = None
        if not isinstance(req, dict):
            return "malformed hello"
        rank, hostname = req.get("rank"), req.get("hostname")
        if type(rank) is not int or rank not in self.child_ranks:
            return f"rank {rank!r} is not a child of rank {self.rank}"
        if not isinstance(hostname, str):
            return "malformed hello: hostname"
        expected = self.info.child_hosts.get(rank)
        if expected is not None and hostname != expected:
            return (f"rank {rank} says it runs on {hostname}, but the"
                    f" bootstrap puts it on {expected}")
        mine = version_key(self.broker.attr("version"))
        if version_key(req.get("version")) != mine:
            return (f"rank {rank} runs version {req.get('version')!r}; this"
                    f" instance runs {mine}")
        return None

    def _send_to_zid(self, zid, msg):
        try:
            self.router_sock.send_multipart([zid, encode(msg)], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            self.log(LOG_ERR, f"cannot answer a hello: {exc}")

    def child_gone(self, peer):
        """A child said goodbye: it is offline, not lost."""
        self._drop_child(peer, errno.EHOSTUNREACH,
                         f"rank {peer.rank} has left the instance")
        event = self.goodbyes.get(peer.rank)
        if event is not None:
            event.set()
        self.log(LOG_DEBUG, f"rank {peer.rank} said goodbye")
        if peer.rank not in self.goodbyes:  # not our own shutdown: say so
            self.report_offline(peer.rank, "it left the instance", lost=False)

    def child_lost(self, peer, why):
        if peer.closed:
            return
        self.log(LOG_ERR, f"lost rank {peer.rank}: {why}")
        host = peer.hostname or "?"
        self._drop_child(peer, errno.EHOSTUNREACH,
                         f"node failure on {host} (rank {peer.rank})")
        self.report_offline(peer.rank, why, lost=True)

    def subtree(self, rank):
        """``rank`` and every rank below it."""
        ranks, todo = [], [rank]
        while todo:
            r = todo.pop()
            ranks.append(r)
            todo.extend(self.topology.children(r))
        return sorted(ranks)

    def report_offline(self, rank, why, lost):
        """Tell rank 0 that ``rank``'s subtree is offline."""
        from flux.idset import IDset

        self.broker.rpc.notify("broker.offline", {
            "ranks": str(IDset(self.subtree(rank))), "reason": why,
            "lost": lost}, 0)

    def report_torpid(self, peer, torpid):
        self.broker.rpc.notify("broker.torpid", {"ranks": str(peer.rank),
                                                 "torpid": torpid}, 0)

    def send_keepalive(self):
        """Tell the parent we are alive (when we have sent it nothing lately)."""
        if self.parent is not None:
            self.queue(self.parent, Message.build(
                FLUX_MSGTYPE_REQUEST, KEEPALIVE, nodeid=self.parent.rank,
                flags=MSGFLAG_NORESPONSE))

    def probe_children(self):
        """Send every child a keepalive now: a send to one whose connection
        is gone fails, and that child is lost."""
        for peer in list(self.children.values()):
            self.queue(peer, Message.build(FLUX_MSGTYPE_REQUEST, KEEPALIVE,
                                           nodeid=peer.rank, flags=MSGFLAG_NORESPONSE))
        self._flush()

    def parent_lost(self, why):
        """Our parent is gone for good: shut down (children and tasks too)."""
        if self.broker.shutting_down() or self.parent is None or self.parent.closed:
            return
        self.log(LOG_ERR, f"lost the parent (rank {self.parent.rank}): {why};"
                 " shutting down")
        self.parent.closed = True
        self.broker.request_shutdown(1)

    def _drop_child(self, peer, errnum, text):
        if self.children.get(peer.rank) is peer:
            del self.children[peer.rank]
        self.by_zid.pop(peer.zid, None)
        peer.closed = True
        self._pending.pop(peer, None)
        self.router.drop_connection(peer)
        inflight, peer.inflight = peer.inflight, {}
        for req in inflight.values():
            self.router.unroute_error(req, errnum, text)

    # -- routing ---------------------------------------------------------------
    def forward(self, msg, sender, target):
        """Send a request toward rank ``target`` (not this rank); False if
        there is no way there now."""
        child = self.topology.subtree_child(self.rank, target)
        if child is None:
            peer = self.parent
        else:
            peer = self.children.get(child)
        if peer is None or peer.closed:
            return False
        self._forward_to(peer, msg, sender)
        return True

    def forward_up(self, msg, sender):
        """Send a request to the parent (as ``FLUX_NODEID_ANY``)."""
        peer = self.parent
        if peer is None or peer.closed:
            return False
        msg.nodeid = FLUX_NODEID_ANY
        self._forward_to(peer, msg, sender)
        return True

    def _forward_to(self, peer, msg, sender):
        ident = sender.ident
        route = msg.route
        msg.route = route + [ident] if route else [ident]
        if not msg.flags & MSGFLAG_NORESPONSE:
            peer.inflight[(ident, msg.matchtag)] = msg
        self.queue(peer, msg)

    # -- shutdown --------------------------------------------------------------
    def send_shutdown(self):
        """Tell every child to shut down (leaves first)."""
        for rank, peer in list(self.children.items()):
            self.goodbyes.setdefault(rank, asyncio.Event())
            self.queue(peer, Message.build(FLUX_MSGTYPE_REQUEST, SHUTDOWN,
                                           nodeid=rank, flags=MSGFLAG_NORESPONSE))

    def _shutdown_from_parent(self, msg):
        self.log(LOG_DEBUG, "the parent asks us to shut down")
        self.broker.request_shutdown(0)

    async def wait_children_gone(self, timeout):
        """Wait until every child that was told to shut down said goodbye
        (or ``timeout``); return the ranks still there."""
        waits = [event.wait() for rank, event in self.goodbyes.items()
                 if rank in self.children]
        if waits:
            try:
                await asyncio.wait_for(asyncio.gather(*waits), timeout)
            except asyncio.TimeoutError:
                pass
        return sorted(self.children)

    def say_goodbye(self):
        """Tell the parent we are leaving (sent at once)."""
        if self.parent is None or self.dealer_sock is None:
            return
        msg = Message.build(FLUX_MSGTYPE_REQUEST, GOODBYE,
                            nodeid=self.parent.rank, flags=MSGFLAG_NORESPONSE)
        self.queue(self.parent, msg)
        self._flush()
