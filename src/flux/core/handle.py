"""The Flux handle: a connection to an instance plus its reactor.

``flux.Flux()`` returns an instance of ``flux.core.handle.Flux``.  Each handle
object opens its own connection; ``future.get_flux()`` returns a new handle
object sharing the future's connection (and, inside a blocking ``get()``, the
future's private reactor).
"""

import errno
import fnmatch
import os

from flux.constants import (
    FLUX_MSGTYPE_ANY,
    FLUX_MSGTYPE_EVENT,
    FLUX_NODEID_ANY,
    FLUX_MATCHTAG_NONE,
    FLUX_O_NONBLOCK,
    FLUX_RPC_NORESPONSE,
)
from flux.core.connection import Connection
from flux.core.reactor import Reactor, running_stack
from flux.core import watchers as _w
from flux.message import Message, check_topic
from flux.wrapper import MissingFunctionError

DEFAULT_URI = "local:///run/flux/local"


def _resolve_uri(url):
    """The native URI to connect to for ``url`` (or ``FLUX_URI``): a path
    in the instance hierarchy, or a target (``jobid:ID``, ``pid:PID``, a
    bare job id: anything without ``://``) resolved by ``flux.uri``."""
    if isinstance(url, bytes):
        url = url.decode()
    if url is None or url == "":
        url = os.environ.get("FLUX_URI") or DEFAULT_URI
    elif url.startswith(".") or url.startswith("/"):
        return _resolve_path(url)
    if "://" in url:
        return url
    from flux.uri import resolve_local

    return resolve_local(url)


def _resolve_path(path):
    """Resolve an instance-hierarchy path: '.', '..', '../..', '/'."""
    uri = os.environ.get("FLUX_URI") or DEFAULT_URI
    if path == "/":
        while True:
            parent = _attr_of(uri, "parent-uri")
            if not parent:
                return uri
            uri = parent
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part != "..":
            raise OSError(errno.EINVAL, f"invalid instance path '{path}'")
        parent = _attr_of(uri, "parent-uri")
        if not parent:
            raise OSError(errno.ENOENT, f"instance at {uri} has no parent")
        uri = parent
    return uri


def _attr_of(uri, name):
    h = Flux(uri)
    try:
        return h.attr_get(name)
    except FileNotFoundError:
        return None


class Flux:
    """A connection to a Flux instance (see ``flux.Flux``)."""

    def __init__(self, url=None, flags=0, handle=None, _reactor=None):
        self._watchers = set()
        self.flags = flags
        self.aux_txn = None
        self._conf = None
        if handle is not None:
            other = handle
            self._conn = other._conn
            self._reactor = _reactor or other._reactor
            self.uri = other.uri
            return
        try:
            uri = _resolve_uri(url)
        except OSError as exc:
            detail = exc.strerror or str(exc)
            if not detail.startswith("Unable to connect to Flux"):
                detail = f"Unable to connect to Flux: {detail}"
            raise OSError(exc.errno or errno.EINVAL, detail) from None
        self.uri = uri
        reactor = Reactor()
        self._reactor = reactor
        if uri.startswith("loop://"):
            self._conn = _loopback(reactor)
            return
        try:
            self._conn = Connection.open(uri, reactor)
        except OSError as exc:
            detail = exc.strerror or str(exc)
            raise OSError(exc.errno or errno.ECONNREFUSED,
                          f"Unable to connect to Flux: {detail} ({uri})") from None

    # -- dynamic C functions (not provided) ------------------------------------------
    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)

        def missing(*args, **kwargs):
            raise MissingFunctionError(f"flux_{name}: no such function")

        return missing

    def future_create(self, init=None, arg=None):
        """A bare future of this handle, for ``flux.future.Future(...)``,
        fulfilled by hand through ``future.pimpl`` (upstream's
        ``flux_future_create``; an init callback is not supported)."""
        from flux.future import _State

        if init is not None:
            raise MissingFunctionError("flux_future_create: init callbacks "
                                       "are not supported")
        return _State(self)

    def close(self):
        raise RuntimeError("Flux handles are closed when garbage collected")

    def fatal_error(self, msg):
        """Log ``msg`` and stop the reactor with an error."""
        try:
            self.log(2, str(msg))
        except OSError:
            pass
        self._reactor.stop_error()

    # -- messaging ---------------------------------------------------------------------
    def rpc(self, topic, payload=None, nodeid=FLUX_NODEID_ANY, flags=0):
        from flux.rpc import RPC

        return RPC(self, topic, payload, nodeid, flags)

    def get_rank(self):
        return self._conn.rank

    def send(self, msg, flags=0):
        if msg._topic is None:
            raise OSError(errno.EINVAL, "message has no topic")
        self._conn.send(msg, flush=True)
        return 0

    def recv(self, type_mask=FLUX_MSGTYPE_ANY, match_tag=FLUX_MATCHTAG_NONE,
             topic_glob=None, flags=0):
        if isinstance(topic_glob, bytes):
            topic_glob = topic_glob.decode()
        conn = self._conn

        def find():
            for i, msg in enumerate(conn.recvq):
                if not msg.type & type_mask:
                    continue
                if match_tag and msg.matchtag != match_tag:
                    continue
                if topic_glob and not fnmatch.fnmatchcase(msg._topic or "", topic_glob):
                    continue
                del conn.recvq[i]
                return msg
            return None

        while True:
            msg = find()
            if msg is not None:
                return msg
            if conn.dead is not None:
                raise OSError(conn.dead.errno, conn.dead.strerror)
            if conn.loopback:
                raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))
            if not conn.read_some():
                if (flags | self.flags) & FLUX_O_NONBLOCK:
                    raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))
                conn.wait_readable()

    def respond(self, msg, payload=None):
        rsp = msg.response(payload)
        self._conn.send(rsp, flush=True)
        return 0

    def respond_error(self, msg, errnum, errstr=None):
        rsp = msg.response(errnum=errnum, errstr=errstr)
        self._conn.send(rsp, flush=True)
        return 0

    # -- events ---------------------------------------------------------------------------
    def event_subscribe(self, topic):
        topic = check_topic(topic)
        subs = self._conn.subscriptions
        subs[topic] = subs.get(topic, 0) + 1
        if subs[topic] == 1 and not self._conn.loopback:
            # synchronous, so events sent after this call are delivered
            self.rpc("event.subscribe", {"topic": topic}).get()
        return 0

    def event_unsubscribe(self, topic):
        topic = check_topic(topic)
        subs = self._conn.subscriptions
        if topic not in subs:
            raise OSError(errno.ENOENT, f"not subscribed to {topic}")
        subs[topic] -= 1
        if subs[topic] == 0:
            del subs[topic]
            if not self._conn.loopback:
                self.rpc("event.unsubscribe", {"topic": topic}).get()
        return 0

    def event_create(self, topic, payload=None):
        return Message.build(FLUX_MSGTYPE_EVENT, check_topic(topic), payload)

    def event_send(self, topic, payload=None):
        self._conn.send(self.event_create(topic, payload), flush=True)
        return 0

    def event_recv(self, topic=None):
        return self.recv(type_mask=FLUX_MSGTYPE_EVENT, topic_glob=topic)

    # -- services ----------------------------------------------------------------------
    def service_register(self, name):
        from flux.future import Future

        return Future(self.rpc("service.add", {"service": check_topic(name)}))

    def service_unregister(self, name):
        from flux.future import Future

        return Future(self.rpc("service.remove", {"service": check_topic(name)}))

    # -- attributes, config, log -----------------------------------------------------
    def attr_get(self, name):
        if isinstance(name, bytes):
            name = name.decode()
        if not isinstance(name, str):
            raise ValueError("attribute name must be a str")
        return self.rpc("attr.get", {"name": name}).get()["value"]

    def attr_set(self, name, value):
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValueError("attribute name and value must be str")
        self.rpc("attr.set", {"name": name, "value": value}).get()

    def attr_remove(self, name):
        if not isinstance(name, str):
            raise ValueError("attribute name must be a str")
        self.rpc("attr.rm", {"name": name}).get()

    def conf_get(self, key=None, default=None, update=False):
        """The instance configuration, or the value of dotted ``key`` in it
        (``default`` if a level is missing).

        The first call on this handle object, or one with ``update=True``,
        fetches it (``config.get``); later calls read that copy, so a
        ``flux config load`` is seen only after ``update=True``.  The cached
        dict itself is returned (as upstream's).  A key that goes through a
        value that is not a table raises ``AttributeError``, as upstream's
        ``get_treedict`` does.
        """
        if self._conf is None or update:
            conf = self.rpc("config.get").get()
            self._conf = conf if isinstance(conf, dict) else {}
        if key is None:
            return self._conf
        value = self._conf
        for part in key.split("."):
            if not isinstance(value, dict):
                raise AttributeError(f"'{type(value).__name__}' object has no "
                                     f"attribute 'get' (config key '{key}')")
            if part not in value:
                return default
            value = value[part]
        return value

    def log(self, level, fmt, *args):
        if isinstance(fmt, bytes):
            fmt = fmt.decode("utf-8", errors="replace")
        self.rpc("log.append",
                 {"level": int(level), "message": str(fmt),
                  "appname": os.path.basename(_argv0())},
                 flags=FLUX_RPC_NORESPONSE)
        return 0

    # -- watchers ----------------------------------------------------------------------
    def msg_watcher_create(self, callback, type_mask=FLUX_MSGTYPE_ANY, topic_glob="*",
                           args=None, match_tag=FLUX_MATCHTAG_NONE, rolemask=None):
        return _w.MessageWatcher(self, callback, type_mask, topic_glob, args,
                                 match_tag, rolemask)

    def timer_watcher_create(self, after, callback, repeat=0.0, args=None):
        return _w.TimerWatcher(self, after, callback, repeat, args)

    def signal_watcher_create(self, signum, callback, args=None):
        return _w.SignalWatcher(self, signum, callback, args)

    def fd_watcher_create(self, fd, callback, events=None, args=None):
        from flux.constants import FLUX_POLLIN, FLUX_POLLOUT, FLUX_POLLERR

        if events is None:
            events = FLUX_POLLIN | FLUX_POLLOUT | FLUX_POLLERR
        return _w.FDWatcher(self, fd, events, callback, args)

    def prepare_watcher_create(self, callback, args=None):
        return _w.PrepareWatcher(self, callback, args)

    def check_watcher_create(self, callback, args=None):
        return _w.CheckWatcher(self, callback, args)

    def idle_watcher_create(self, callback=None, args=None):
        return _w.IdleWatcher(self, callback or (lambda *a: None), args)

    def add_watcher(self, watcher):
        self._watchers.add(watcher)

    def del_watcher(self, watcher):
        self._watchers.discard(watcher)

    # -- reactor ---------------------------------------------------------------------------
    def get_reactor(self):
        return self._reactor

    def reactor_run(self, reactor=None, flags=0):
        r = self._reactor
        conn = self._conn
        if not conn.loopback and conn.dead is None:
            r.add_connection(conn)
        try:
            rc = r.run(flags)
        finally:
            # what the last callbacks sent (before a reactor_stop(), or in a
            # NOWAIT/ONCE pass) must not wait for the next run
            for c in list(r.connections):
                c.flush()
            conn.flush()
        exc = r.take_exception()
        if exc is not None:
            raise exc
        return rc

    def reactor_stop(self, reactor=None):
        self._reactor.stop(0)

    def reactor_stop_error(self, reactor=None):
        self._reactor.stop_error()

    @classmethod
    def reactor_running(cls):
        return bool(running_stack())


def _argv0():
    import sys

    return sys.argv[0] if sys.argv and sys.argv[0] else "python"


def _loopback(reactor):
    conn = Connection.__new__(Connection)
    Connection.__init__(conn, _NullSocket(), reactor)
    conn.loopback = True
    return conn


class _NullSocket:
    def fileno(self):
        return -1

    def close(self):
        pass
