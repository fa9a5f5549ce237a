"""The KVS service: Flux's key-value store, persisted in SQLite.

Data lives in ``<statedir>/content.sqlite`` (the broker's shared
``fluxrm.store.Store``, see ``shared_store``), so an instance restarted with the same
``-Sstatedir`` finds its keys again.  The tree rules (keys, directories,
symlinks, namespaces, ordered atomic transactions) are in
``fluxrm.kvstree``; this package adds the RPC interface, watches and group
commit: a commit is answered once the SQLite transaction holding it is
committed (one transaction per loop turn for all commits of that turn).
Its parts: this module, the service (lookups, commits and the outbox of
answers waiting for durability, namespaces, content); ``watch.py``, the
watches (``kvs-watch.*``, their triggers); ``treeobj.py``, tree objects
and commit operations on the wire; ``jobs.py``, the read-only ``job.<id>``
view of the job services' jobs.

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

import errno
import os
import sqlite3

from flux.constants import (
    FLUX_KVS_READDIR,
    FLUX_KVS_READLINK,
    FLUX_KVS_WATCH,
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
from fluxrm.modules.kvs.treeobj import ops_from_wire, treeobj
from fluxrm.modules.kvs.watch import Watches
from fluxrm.store import shared_store

LOG_ERR = 3
USERID_MAX = (1 << 32) - 1


class KVSService(Watches, Service):
    name = "kvs"

    def __init__(self, broker):
        super().__init__(broker)
        self.store = None
        self.tree = None
        self.jobs_view = JobKVSView(broker)
        self.watch_init()
        self._outbox = []  # callables(exc), run once the store batch is durable
        self._outbox_pending = False

    # -- lifecycle ---------------------------------------------------------------
    async def start(self):
        self.store = shared_store(self.broker)
        self.tree = KVSTree(self.store, owner=self.broker.owner_uid)
        self.store.flush()

    async def stop(self):
        self.end_watches()
        if self.store is not None:
            self.tree.checkpoint_put(PRIMARY)
            self.store.close()

    def disconnect(self, sender):
        self.drop_watches(sender)

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
        self.notify_watches(namespace, keys)
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
        self.namespace_created(name)

    def namespace_remove(self, name):
        if self.tree.namespace_remove(name):
            self.namespace_removed(name)

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
