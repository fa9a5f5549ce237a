"""Watches, a part of the KVS service (``KVSService``'s base class
``Watches``): the ``kvs-watch.lookup`` and ``kvs-watch.cancel`` topics
(described with the others in ``fluxrm.modules.kvs``).

A watch is a streaming request, kept per (requester, matchtag) in
``watches``.  It waits for its namespace (``WAIT_NS``, with
FLUX_KVS_WAITCREATE; in ``ns_waiters``), then for its key (``WAIT_KEY``),
is ``ACTIVE`` from its first value on, and ends (``DONE``) with an error
response.  A commit triggers the watches on a key it names
(``by_key``) and, in its namespace, those with FLUX_KVS_WATCH_FULL
(``full``): each one's value is read at once, and its answer sent once the
commit is durable (the service's outbox, ``_queue``).

The service calls ``watch_init()`` when built, ``notify_watches(ns, keys)``
after each commit, ``namespace_created(name)`` / ``namespace_removed(name)``
and ``drop_watches(sender)`` / ``end_watches()``; these methods use its
``tree``, ``_queue``, ``_check_access`` and request helpers (``_request``,
``_ns``, ``_key``, ``_flags``).
"""

import errno

from flux.constants import (
    FLUX_KVS_WAITCREATE,
    FLUX_KVS_WATCH_APPEND,
    FLUX_KVS_WATCH_FULL,
    FLUX_KVS_WATCH_UNIQ,
)
from flux.message import MSGFLAG_NORESPONSE
from fluxrm.broker import payload
from fluxrm.broker.service import request_handler
from fluxrm.kvstree import DIR, VAL, normalize_key, oserror
from fluxrm.modules.kvs.treeobj import treeobj

MATCHTAG_MAX = (1 << 32) - 1


class Watch:
    """One watch: its request, namespace, key (normalized, and as asked),
    flags, state, and the last value it sent."""

    __slots__ = ("msg", "ns", "key", "reqkey", "flags", "state", "prev", "sent")

    WAIT_NS = 0
    WAIT_KEY = 1
    ACTIVE = 2
    DONE = 3

    def __init__(self, msg, ns, key, reqkey, flags):
        self.msg = msg
        self.reqkey = reqkey
        self.ns = ns
        self.key = key
        self.flags = flags
        self.state = Watch.WAIT_KEY
        self.prev = None  # last value sent (bytes)
        self.sent = 0  # responses sent


class Watches:
    """The KVS service's watches (see the module docstring)."""

    def watch_init(self):
        self.watches = {}  # (sender, matchtag) -> Watch
        self.by_key = {}  # (ns, key) -> set of Watch (named-key triggers)
        self.full = {}  # ns -> set of Watch with WATCH_FULL
        self.ns_waiters = {}  # ns -> set of Watch waiting for the namespace

    def namespace_created(self, name):
        """Start the watches that waited for namespace ``name``."""
        for w in self.ns_waiters.pop(name, ()):
            if w.state == Watch.WAIT_NS:
                self._start_watch(w)

    def namespace_removed(self, name):
        """End the watches in namespace ``name`` (ENOTSUP)."""
        for w in [w for w in self.watches.values() if w.ns == name]:
            if w.state != Watch.WAIT_NS:
                self._end(w, errno.ENOTSUP)

    def drop_watches(self, sender):
        """``sender`` went away: forget its watches (no answer)."""
        for key in [k for k in self.watches if k[0] is sender]:
            self._unregister(self.watches[key])

    def end_watches(self):
        """End every watch (ENODATA): the service stops."""
        for w in list(self.watches.values()):
            self._end(w, errno.ENODATA)

    @request_handler("kvs-watch.lookup", prefix=False, allow_guest=True)
    def h_watch(self, msg):
        req = self._request(msg)
        ns = self._ns(req)
        reqkey = self._key(req)
        key = normalize_key(reqkey)
        flags = self._flags(req)
        if (msg.sender, msg.matchtag) in self.watches:
            raise oserror(errno.EEXIST, "duplicate watch matchtag")
        w = Watch(msg, ns, key, reqkey, flags)
        if ns not in self.tree.namespaces:
            if not flags & FLUX_KVS_WAITCREATE:
                raise oserror(errno.ENOTSUP)
            w.state = Watch.WAIT_NS
            self.ns_waiters.setdefault(ns, set()).add(w)
            self.watches[(msg.sender, msg.matchtag)] = w
            return
        self._check_access(msg, ns)
        self.watches[(msg.sender, msg.matchtag)] = w
        self._start_watch(w)

    def _start_watch(self, w):
        """Initial lookup of a watch; register its triggers if it goes on."""
        w.state = Watch.WAIT_KEY
        self.by_key.setdefault((w.ns, w.key), set()).add(w)
        if w.flags & FLUX_KVS_WATCH_FULL:
            self.full.setdefault(w.ns, set()).add(w)
        value, errnum = self._current(w)
        if errnum == errno.ENOENT and w.flags & FLUX_KVS_WAITCREATE:
            return
        if errnum:
            self._end(w, errnum)
            return
        w.state = Watch.ACTIVE
        self._send(w, value)

    def _current(self, w):
        """(value, 0) or (None, errnum) for the watched key now."""
        if not w.key:
            return None, errno.EISDIR
        try:
            entry = self.tree.lookup(w.ns, w.key)
        except OSError as exc:
            return None, exc.errno
        if entry.type == DIR:
            return None, errno.EISDIR
        return entry.value, 0

    def _send(self, w, value):
        data = value
        if w.flags & FLUX_KVS_WATCH_APPEND and w.sent:
            prev = w.prev or b""
            if not value.startswith(prev):
                self._end(w, errno.EINVAL, "watched value was not appended to")
                return
            data = value[len(prev):]
            if not data:
                return
        w.prev = value
        w.sent += 1
        self.respond(w.msg, {"key": w.reqkey, "namespace": w.ns,
                             "val": treeobj(VAL, data)})

    def _end(self, w, errnum, errstr=None):
        self._unregister(w)
        self.respond_error(w.msg, errnum, errstr)

    def _unregister(self, w):
        w.state = Watch.DONE
        self.watches.pop((w.msg.sender, w.msg.matchtag), None)
        for index, k in ((self.by_key, (w.ns, w.key)), (self.full, w.ns),
                         (self.ns_waiters, w.ns)):
            s = index.get(k)
            if s is not None:
                s.discard(w)
                if not s:
                    del index[k]

    def notify_watches(self, ns, keys):
        """A commit to ``ns`` named ``keys``: queue watch responses."""
        named = set(keys)
        cands = set()
        for k in named:
            s = self.by_key.get((ns, k))
            if s:
                cands |= s
        full = self.full.get(ns)
        if full:
            cands |= full
        for w in cands:
            value, errnum = self._current(w)
            is_named = w.key in named
            self._queue(self._make_update(w, value, errnum, is_named))

    def _make_update(self, w, value, errnum, is_named):
        def update(exc):
            if exc is not None or w.state == Watch.DONE:
                return
            if w.state == Watch.WAIT_KEY:
                if errnum == errno.ENOENT:
                    return
                if errnum:
                    self._end(w, errnum)
                    return
                w.state = Watch.ACTIVE
                self._send(w, value)
                return
            if errnum:
                self._end(w, errnum)
                return
            if value == w.prev and (w.flags & FLUX_KVS_WATCH_UNIQ or not is_named):
                return
            self._send(w, value)

        return update

    @request_handler("kvs-watch.cancel", prefix=False, allow_guest=True)
    def h_watch_cancel(self, msg):
        req = self._request(msg)
        matchtag = payload.integer(req, "matchtag", lo=0, hi=MATCHTAG_MAX)
        w = self.watches.get((msg.sender, matchtag))
        if w is not None:
            self._end(w, errno.ENODATA)
        if not msg.flags & MSGFLAG_NORESPONSE:
            self.respond(msg, {})

