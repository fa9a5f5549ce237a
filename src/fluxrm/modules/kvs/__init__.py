"""The KVS service: Flux's key-value store, persisted in SQLite.

Data lives in ``<statedir>/content.sqlite`` (the broker's shared
``fluxrm.store.Store``, see ``shared_store``), so an instance restarted with the same
``-Sstatedir`` finds its keys again.  The tree rules (keys, directories,
symlinks, namespaces, ordered atomic transactions) are in
``fluxrm.kvstree``; this module adds the RPC interface, watches and group
commit: a commit is answered once the SQLite transaction holding it is
committed (one transaction per loop turn for all commits of that turn).

Tree objects on the wire (after RFC 11)::

    value    {"ver": 1, "type": "val", "data": "<base64>"}
    dir      {"ver": 1, "type": "dir", "data": {name: treeobj, ...}}
    symlink  {"ver": 1, "type": "symlink", "data": {"target": "a.b"}}

``namespace`` defaults to ``"primary"`` in every request.  Request fields
are read through ``fluxrm.broker.payload``: a missing or wrongly typed field
is EPROTO, an empty key or namespace EINVAL (as is a malformed commit
operation, below).

RPC topics
----------
Each is declared by ``request_handler`` on its method; the ``kvs-watch.*``,
``content.*`` and ``content-backing.*`` ones with ``prefix=False`` (the KVS
is routed those words too).  All but the namespace create and remove allow
guests; lookup, commit, getroot and watches then check the namespace (EPERM
unless the requester owns it).

``kvs.lookup``  ``{key, namespace?, flags?, nodata?}``
    -> ``{key, namespace, val: treeobj}``.  Symlinks are followed.  Flags:
    ``FLUX_KVS_READDIR`` returns a directory as a ``dir`` treeobj listing its
    entries (subdirectories as ``{"ver":1,"type":"dir"}`` without data,
    values without ``data`` when ``nodata`` is true); without it a directory
    is EISDIR; READDIR on a value is ENOTDIR.  ``FLUX_KVS_READLINK`` returns
    a symlink itself (EINVAL if not a symlink).  ``FLUX_KVS_WATCH`` turns
    the request into a watch (see ``kvs-watch.lookup``).  Errors: ENOENT,
    EISDIR, ENOTDIR, ELOOP, EINVAL (empty key), ENOTSUP (no such namespace).
``kvs.commit``  ``{ops: [{key, flags, dirent}], namespace?, flags?}``
    -> ``{namespace, rootseq}``.  ``dirent`` is a treeobj (a value: put, or
    append with op flag ``FLUX_KVS_APPEND``; a dir: mkdir, its entries put
    below it; a symlink) or ``null`` (unlink).  Applied in order,
    atomically; answered once durable.  ``FLUX_KVS_SYNC`` in ``flags``
    (primary only) also checkpoints and syncs the database.  Errors: EINVAL
    (malformed op, an op on the root), ENOTSUP, EPERM.
``kvs.getroot``  ``{namespace?}`` -> ``{namespace, rootseq, owner, flags}``
``kvs.namespace-create``  ``{namespace, owner?, flags?}`` -> ``{}``; EEXIST.
    Owner only.
``kvs.namespace-remove``  ``{namespace}`` -> ``{}``; owner only; unknown
    names succeed; ``primary`` is ENOTSUP.  Watches in the namespace end with ENOTSUP.
``kvs.namespace-list``  -> ``{namespaces: [{namespace, owner, flags, rootseq}]}``
``kvs-watch.lookup``  ``{key, namespace?, flags}`` (streaming)
    -> ``{key, namespace, val: treeobj}``, first the current value, then one
    response per commit naming the key (even if unchanged).  Flags:
    ``FLUX_KVS_WAITCREATE`` (wait for the key, or the namespace, to exist
    instead of ENOENT/ENOTSUP), ``FLUX_KVS_WATCH_UNIQ`` (only changed
    values), ``FLUX_KVS_WATCH_FULL`` (also changes made without naming the
    key: a parent replaced or removed), ``FLUX_KVS_WATCH_APPEND`` (after
    the first response, only the bytes appended since).  The stream ends
    with an error: ENOENT once the key is gone, EISDIR for a directory,
    ENOTSUP when the namespace is removed, ENODATA after a cancel.
    ``kvs.lookup`` with ``FLUX_KVS_WATCH`` is the same request.
``kvs-watch.cancel``  ``{matchtag}``
    ends the requester's watch with that matchtag (ENODATA).  No response
    (the request is normally sent with FLUX_RPC_NORESPONSE); ``{}`` is sent
    only if the request expects one.
``content.checkpoint-get`` / ``content-backing.checkpoint-get``  ``{}``
    -> ``{checkpoints: [{version: 1, sequence, timestamp, rootref}]}``, or
    ENOENT if no checkpoint has been taken (one is taken by SYNC commits and
    at shutdown).
``content.flush`` / ``content.dropcache`` -> ``{}`` (flush commits the store).

In-process API (for other services of the same broker)
------------------------------------------------------
``kvs = broker.router.services["kvs"]``, then:
``kvs.lookup(namespace, key)`` -> bytes (EISDIR for a directory, ENOENT...),
``kvs.lookup_entry(namespace, key, follow=True)`` -> ``kvstree.Entry``,
``kvs.readdir(namespace, key)`` -> ``[(name, type, value)]``,
``kvs.commit_ops(namespace, ops, flags=0)`` -> rootseq (ops are the tuples
of ``fluxrm.kvstree``; applied at once, watchers notified once durable;
``await kvs.store.durable()`` to wait for durability),
``kvs.namespace_create(name, owner, flags=0)``, ``kvs.namespace_remove(name)``.
"""

import base64
import errno
import os
import sqlite3

from flux.constants import (
    FLUX_KVS_READDIR,
    FLUX_KVS_READLINK,
    FLUX_KVS_WATCH,
    FLUX_KVS_WAITCREATE,
    FLUX_KVS_APPEND,
    FLUX_KVS_WATCH_FULL,
    FLUX_KVS_WATCH_UNIQ,
    FLUX_KVS_WATCH_APPEND,
    FLUX_KVS_SYNC,
    FLUX_ROLE_OWNER,
)
from flux.message import MSGFLAG_NORESPONSE
from fluxrm.broker import payload
from fluxrm.broker.service import Service, request_handler
from fluxrm.kvstree import (
    KVSTree,
    PRIMARY,
    VAL,
    DIR,
    SYMLINK,
    normalize_key,
    oserror,
)
from fluxrm.modules.kvs.jobs import TOP as JOBS_TOP, JobKVSView
from fluxrm.store import shared_store

LOG_ERR = 3
USERID_MAX = (1 << 32) - 1
MATCHTAG_MAX = (1 << 32) - 1


# -- tree objects ---------------------------------------------------------------
def treeobj(type_, value, nodata=False):
    if type_ == VAL:
        obj = {"ver": 1, "type": "val"}
        if not nodata:
            obj["data"] = base64.b64encode(value).decode("ascii")
        return obj
    if type_ == SYMLINK:
        return {"ver": 1, "type": "symlink", "data": {"target": value}}
    return {"ver": 1, "type": "dir"}


def _b64decode(data):
    if not isinstance(data, str):
        raise oserror(errno.EINVAL, "treeobj: val data must be a base64 string")
    try:
        return base64.b64decode(data, validate=True)
    except ValueError:
        raise oserror(errno.EINVAL, "treeobj: invalid base64 data") from None


def ops_from_wire(ops):
    """Convert ``kvs.commit`` ops into ``kvstree`` operation tuples."""
    if not isinstance(ops, list):
        raise oserror(errno.EINVAL, "ops must be an array")
    out = []
    for op in ops:
        if not isinstance(op, dict) or not isinstance(op.get("key"), str):
            raise oserror(errno.EINVAL, "malformed operation")
        flags = op.get("flags") or 0
        if type(flags) is not int:
            raise oserror(errno.EINVAL, "malformed operation: flags must be an integer")
        _op_from_wire(op["key"], flags, op.get("dirent"), out)
    return out


def _op_from_wire(key, flags, dirent, out):
    # A directory treeobj holds treeobjs to any depth: walk them with a
    # stack (in order: a directory before its entries), not recursion.
    stack = [(key, flags, dirent)]
    while stack:
        key, flags, dirent = stack.pop()
        if dirent is None:
            out.append(("unlink", key))
            continue
        if not isinstance(dirent, dict):
            raise oserror(errno.EINVAL, "treeobj must be an object or null")
        kind = dirent.get("type")
        data = dirent.get("data")
        if kind == "val":
            out.append(("append" if flags & FLUX_KVS_APPEND else "put", key,
                        _b64decode(data)))
        elif kind == "dir":
            out.append(("mkdir", key))
            if data:
                if not isinstance(data, dict):
                    raise oserror(errno.EINVAL, "treeobj: dir data must be an object")
                entries = []
                for name, sub in data.items():
                    if not isinstance(name, str):
                        raise oserror(errno.EINVAL, "treeobj: dir entry names must be strings")
                    entries.append((f"{key}.{name}", 0, sub))
                stack.extend(reversed(entries))
        elif kind == "symlink":
            target = data.get("target") if isinstance(data, dict) else None
            if not isinstance(target, str):
                raise oserror(errno.EINVAL, "treeobj: symlink needs a target")
            out.append(("symlink", key, target))
        elif isinstance(kind, str):
            raise oserror(errno.EINVAL, f"treeobj: unknown type {kind!r}")
        else:
            raise oserror(errno.EINVAL, "treeobj: type must be a string")


# -- watches --------------------------------------------------------------------
class Watch:
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


class KVSService(Service):
    name = "kvs"

    def __init__(self, broker):
        super().__init__(broker)
        self.store = None
        self.tree = None
        self.watches = {}  # (sender, matchtag) -> Watch
        self.jobs_view = JobKVSView(broker)
        self.by_key = {}  # (ns, key) -> set of Watch (named-key triggers)
        self.full = {}  # ns -> set of Watch with WATCH_FULL
        self.ns_waiters = {}  # ns -> set of Watch waiting for the namespace
        self._outbox = []  # callables(exc), run once the store batch is durable
        self._outbox_pending = False

    # -- lifecycle ---------------------------------------------------------------
    async def start(self):
        self.store = shared_store(self.broker)
        self.tree = KVSTree(self.store, owner=self.broker.owner_uid)
        self.store.flush()

    async def stop(self):
        for w in list(self.watches.values()):
            self._end(w, errno.ENODATA)
        if self.store is not None:
            self.tree.checkpoint_put(PRIMARY)
            self.store.close()

    def disconnect(self, sender):
        for key in [k for k in self.watches if k[0] is sender]:
            self._unregister(self.watches[key])

    # -- in-process API ------------------------------------------------------------
    def lookup_entry(self, namespace, key, follow=True):
        return self.tree.lookup(namespace, key, follow=follow)

    def lookup(self, namespace, key):
        entry = self.tree.lookup(namespace, key)
        if entry.type == DIR:
            raise oserror(errno.EISDIR)
        return entry.value

    def readdir(self, namespace, key):
        return self.tree.readdir(namespace, key)

    def commit_ops(self, namespace, ops, flags=0, on_durable=None):
        """Apply ``ops`` to ``namespace`` now and return the new rootseq.

        Watchers are told once the store has committed; ``on_durable(exc)``
        (optional) is called then too, after them (``exc`` is None on
        success, else the ``sqlite3.Error``).
        """
        version, keys = self.tree.commit(namespace, ops)
        self._notify(namespace, keys)
        if on_durable is not None:
            self._queue(on_durable)
        if flags & FLUX_KVS_SYNC and namespace == PRIMARY:
            self.tree.checkpoint_put(PRIMARY)
            try:
                self.store.flush(sync=True)  # delivers the outbox at once
            except sqlite3.Error:
                pass  # the outbox callbacks were given the error
        return version

    def namespace_create(self, name, owner, flags=0):
        self.tree.namespace_create(name, owner, flags)
        for w in self.ns_waiters.pop(name, ()):
            if w.state == Watch.WAIT_NS:
                self._start_watch(w)

    def namespace_remove(self, name):
        if self.tree.namespace_remove(name):
            for w in [w for w in self.watches.values() if w.ns == name]:
                if w.state != Watch.WAIT_NS:
                    self._end(w, errno.ENOTSUP)

    # -- helpers -------------------------------------------------------------------
    @staticmethod
    def _request(msg):
        return payload.request(msg, required=False)

    @staticmethod
    def _ns(req, default=PRIMARY):
        ns = payload.string(req, "namespace", default)
        if not ns:
            raise oserror(errno.EINVAL, "namespace must be a non-empty string")
        return ns

    @staticmethod
    def _flags(req):
        return payload.integer(req, "flags", 0, lo=0)

    @staticmethod
    def _key(req):
        key = payload.string(req, "key")
        if not key:
            raise oserror(errno.EINVAL, os.strerror(errno.EINVAL))
        return key

    def _check_access(self, msg, ns):
        info = self.tree.namespace_info(ns)
        if msg.rolemask & FLUX_ROLE_OWNER or msg.userid == info["owner"]:
            return
        raise oserror(errno.EPERM)

    # -- lookup -------------------------------------------------------------------
    @request_handler("lookup", allow_guest=True)
    def h_lookup(self, msg):
        req = self._request(msg)
        flags = self._flags(req)
        if flags & FLUX_KVS_WATCH:
            return self.h_watch(msg)
        ns = self._ns(req)
        key = self._key(req)
        self._check_access(msg, ns)
        readlink = bool(flags & FLUX_KVS_READLINK)
        norm = normalize_key(key)
        if ns == PRIMARY and (norm == JOBS_TOP or norm.startswith(JOBS_TOP + ".")):
            return self._lookup_jobs(msg, key, norm, flags, req)
        entry = self.tree.lookup(ns, key, follow=not readlink)
        if readlink:
            if entry.type != SYMLINK:
                raise oserror(errno.EINVAL)
            val = treeobj(SYMLINK, entry.value)
        elif entry.type == DIR:
            if not flags & FLUX_KVS_READDIR:
                raise oserror(errno.EISDIR)
            nodata = payload.boolean(req, "nodata", False)
            val = {"ver": 1, "type": "dir", "data": {
                name: treeobj(t, v, nodata)
                for name, t, v in self.tree.children(ns, entry.key)}}
            if ns == PRIMARY and entry.key == "" and self.jobs_view.any_jobs():
                val["data"][JOBS_TOP] = treeobj(DIR, None)
        else:
            if flags & FLUX_KVS_READDIR:
                raise oserror(errno.ENOTDIR)
            val = treeobj(entry.type, entry.value)
        self.respond(msg, {"key": key, "namespace": ns, "val": val})

    def _lookup_jobs(self, msg, key, norm, flags, req):
        """Keys under ``job.`` come from the job services (read-only)."""
        etype, value = self.jobs_view.lookup(norm)
        if etype == DIR:
            if not flags & FLUX_KVS_READDIR:
                raise oserror(errno.EISDIR)
            nodata = payload.boolean(req, "nodata", False)
            val = {"ver": 1, "type": "dir", "data": self.jobs_view.readdir_treeobjs(
                norm, nodata, treeobj)}
        else:
            if flags & FLUX_KVS_READDIR:
                raise oserror(errno.ENOTDIR)
            val = treeobj(VAL, value)
        self.respond(msg, {"key": key, "namespace": PRIMARY, "val": val})

    # -- commit -------------------------------------------------------------------
    @request_handler("commit", allow_guest=True)
    def h_commit(self, msg):
        req = self._request(msg)
        ns = self._ns(req)
        flags = self._flags(req)
        ops = ops_from_wire(req.get("ops", []))
        self._check_access(msg, ns)
        reply = {"namespace": ns}

        def done(exc):
            if msg.flags & MSGFLAG_NORESPONSE:
                return
            if exc is None:
                self.respond(msg, reply)
            else:
                self.respond_error(msg, errno.EIO, f"store commit failed: {exc}")

        reply["rootseq"] = self.commit_ops(ns, ops, flags, on_durable=done)

    # -- the outbox: whatever must wait until the batch is durable -----------------------
    def _queue(self, fn):
        """Run ``fn(exc)`` once the current store batch is committed."""
        self._outbox.append(fn)
        if not self._outbox_pending:
            self._outbox_pending = True
            self.store.on_durable(self._deliver_outbox)

    def _deliver_outbox(self, exc):
        self._outbox_pending = False
        items, self._outbox = self._outbox, []
        if exc is not None:
            self.log(LOG_ERR, f"store commit failed: {exc}")
            self.tree.reload_namespaces()
        for fn in items:
            try:
                fn(exc)
            except Exception as e:  # never let one client break the others
                self.log(LOG_ERR, f"outbox callback failed: {e!r}")

    @request_handler("getroot", allow_guest=True)
    def h_getroot(self, msg):
        req = self._request(msg)
        ns = self._ns(req)
        self._check_access(msg, ns)
        info = self.tree.namespace_info(ns)
        self.respond(msg, {"namespace": ns, "rootseq": info["version"],
                           "owner": info["owner"], "flags": info["flags"]})

    # -- namespaces ---------------------------------------------------------------
    @request_handler("namespace-create")
    def h_namespace_create(self, msg):
        req = self._request(msg)
        name = self._ns(req, payload.MISSING)
        # -1 (or absent) means the instance owner; user ids are 32 bits
        owner = payload.integer(req, "owner", -1, lo=-1, hi=USERID_MAX)
        if owner == -1:
            owner = self.broker.owner_uid
        self.namespace_create(name, owner, self._flags(req))
        self._queue(lambda exc: self._ack(msg, exc))

    @request_handler("namespace-remove")
    def h_namespace_remove(self, msg):
        name = self._ns(self._request(msg), payload.MISSING)
        self.namespace_remove(name)
        self._queue(lambda exc: self._ack(msg, exc))

    def _ack(self, msg, exc):
        if exc is None:
            self.respond(msg, {})
        else:
            self.respond_error(msg, errno.EIO, f"store commit failed: {exc}")

    @request_handler("namespace-list", allow_guest=True)
    def h_namespace_list(self, msg):
        self.respond(msg, {"namespaces": [
            {"namespace": name, "owner": info["owner"], "flags": info["flags"],
             "rootseq": info["version"]}
            for name, info in sorted(self.tree.namespaces.items())]})

    # -- watches ----------------------------------------------------------------------
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

    def _notify(self, ns, keys):
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

    # -- content ------------------------------------------------------------------------
    @request_handler("content.checkpoint-get", prefix=False, allow_guest=True)
    def h_checkpoint_get(self, msg):
        self.respond(msg, {"checkpoints": self.tree.checkpoint_get()})

    @request_handler("content.flush", prefix=False, allow_guest=True)
    def h_content_flush(self, msg):
        self.store.flush()
        self.respond(msg, {})

    @request_handler("content.dropcache", prefix=False, allow_guest=True)
    def h_content_dropcache(self, msg):
        self.h_content_flush(msg)

    @request_handler("content-backing.checkpoint-get", prefix=False, allow_guest=True)
    def h_backing_checkpoint_get(self, msg):
        self.h_checkpoint_get(msg)
