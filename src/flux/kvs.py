"""The Flux key-value store (``flux.kvs``).

Keys are dot-separated paths (``"a.b.c"``); ``"."`` is the root directory.
``namespace=None`` means ``$FLUX_KVS_NAMESPACE`` if set, else ``"primary"``.

Reading: ``get``, ``get_key_direct``, ``exists``, ``isdir``, ``get_dir``,
``KVSDir``, ``walk``.  Writing: ``put``, ``put_mkdir``, ``put_unlink``,
``put_symlink`` stage operations in the handle's implicit transaction
(``h.aux_txn``) which ``commit``/``commit_async`` send; ``KVSTxn`` is an
explicit transaction.  Also ``namespace_create/remove/list``,
``kvs_watch_async`` (-> ``KVSWatchFuture``, a ``flux.watch.
WatchImplementation``) and ``kvs_checkpoint_lookup``.

Values (see the spec, section 11.1): by default ``json.dumps(value)`` is
stored; ``bytes`` are stored verbatim; ``raw=True`` stores a ``str`` as UTF-8
and ``bytes`` verbatim.  Reading returns ``None`` for an empty value, stops
at the first NUL, and returns decoded JSON, else ``str``, else ``bytes``.

Errors raised by synchronous calls are ``OSError(errno, "<ERRNAME>:
<strerror>")``.  The wire protocol is documented in ``fluxrm.modules.kvs``.
"""

import base64
import errno
import json
import os
from collections import abc

from flux.constants import (
    FLUX_KVS_READDIR,
    FLUX_KVS_WATCH,
    FLUX_KVS_WAITCREATE,
    FLUX_KVS_WATCH_FULL,
    FLUX_KVS_WATCH_UNIQ,
    FLUX_RPC_NORESPONSE,
    FLUX_RPC_STREAMING,
)
from flux.future import Future
from flux.watch import WatchImplementation

__all__ = [
    "get", "get_key_direct", "exists", "isdir", "get_dir", "put", "put_mkdir",
    "put_unlink", "put_symlink", "commit", "commit_async", "KVSTxn", "KVSDir",
    "walk", "join", "namespace_create", "namespace_remove", "namespace_list",
    "kvs_watch_async", "KVSWatchFuture", "WatchImplementation",
    "kvs_checkpoint_lookup",
]

_OWNER_DEFAULT = os.getuid()


# -- helpers --------------------------------------------------------------------
def _errname(errnum):
    name = errno.errorcode.get(errnum, f"E{errnum}")
    return OSError(errnum, f"{name}: {os.strerror(errnum)}")


def _sync(fn, *args):
    """Run ``fn(*args)``; re-raise its OSError in the "ENAME: strerror" form."""
    try:
        return fn(*args)
    except OSError as exc:
        if not exc.errno:
            raise
        raise _errname(exc.errno) from None


def _namespace(namespace):
    if namespace is None:
        return os.environ.get("FLUX_KVS_NAMESPACE") or "primary"
    return namespace


def _check_key(key):
    if isinstance(key, bytes):
        key = key.decode("utf-8")
    if not isinstance(key, str):
        raise TypeError(f"key must be a string, not {type(key).__name__}")
    if not key:
        raise _errname(errno.EINVAL)
    return key


def _encode_value(value, raw=False):
    """The bytes stored for ``value`` (spec 11.1)."""
    if raw:
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, bytes):
            return value
        raise AttributeError(
            f"'{type(value).__name__}' object has no attribute 'encode'")
    if isinstance(value, bytes):
        return value
    try:
        return json.dumps(value).encode("utf-8")
    except (TypeError, ValueError):
        raise TypeError from None


def decode_value(data):
    """Turn stored bytes into a Python value (spec 11.1)."""
    if data is None or len(data) == 0:
        return None
    nul = data.find(b"\0")
    if nul >= 0:
        data = data[:nul]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    try:
        return json.loads(text)
    except ValueError:
        return text


def _val_data(treeobj):
    if not isinstance(treeobj, dict) or treeobj.get("type") != "val":
        raise _errname(errno.EPROTO)
    return base64.b64decode(treeobj.get("data") or "")


def _val_treeobj(data):
    return {"ver": 1, "type": "val", "data": base64.b64encode(data).decode("ascii")}


def _lookup(flux_handle, key, namespace, flags=0, **extra):
    payload = {"key": key, "namespace": _namespace(namespace), "flags": flags}
    payload.update(extra)
    return _sync(lambda: flux_handle.rpc("kvs.lookup", payload).get())


class _Ops:
    """A list of staged operations (the value kept in ``h.aux_txn``)."""

    __slots__ = ("ops",)

    def __init__(self):
        self.ops = []

    def __len__(self):
        return len(self.ops)


def _stage(flux_handle, op, _kvstxn):
    if _kvstxn is not None:
        _kvstxn._ops.append(op)
        return
    txn = flux_handle.aux_txn
    if txn is None:
        txn = flux_handle.aux_txn = _Ops()
    txn.ops.append(op)


def _commit_rpc(flux_handle, ops, flags, namespace):
    return flux_handle.rpc("kvs.commit", {
        "namespace": _namespace(namespace), "flags": flags, "ops": ops})


# -- reading --------------------------------------------------------------------
def get_key_direct(flux_handle, key, namespace=None):
    """The value at ``key``; a directory raises EISDIR."""
    key = _check_key(key)
    rsp = _lookup(flux_handle, key, namespace)
    return decode_value(_val_data(rsp["val"]))


def get(flux_handle, key, namespace=None, _kvstxn=None):
    """The value at ``key``, or a ``KVSDir`` for a directory."""
    try:
        return get_key_direct(flux_handle, key, namespace)
    except OSError as exc:
        if exc.errno != errno.EISDIR:
            raise
    return get_dir(flux_handle, key, namespace, _kvstxn=_kvstxn)


def exists(flux_handle, key, namespace=None):
    try:
        get_key_direct(flux_handle, key, namespace)
        return True
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        if exc.errno == errno.EISDIR:
            return True
        raise


def isdir(flux_handle, key, namespace=None):
    try:
        get_key_direct(flux_handle, key, namespace)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        if exc.errno == errno.EISDIR:
            return True
        raise
    return False


def get_dir(flux_handle, key=".", namespace=None, _kvstxn=None):
    return KVSDir(flux_handle, key, namespace=namespace, _kvstxn=_kvstxn)


# -- writing --------------------------------------------------------------------
def put(flux_handle, key, value, raw=False, _kvstxn=None):
    """Stage ``key = value`` (committed by ``commit``)."""
    key = _check_key(key)
    data = _encode_value(value, raw)
    _stage(flux_handle, {"key": key, "flags": 0, "dirent": _val_treeobj(data)}, _kvstxn)


def put_mkdir(flux_handle, key, _kvstxn=None):
    """Stage replacing ``key`` with an empty directory."""
    key = _check_key(key)
    _stage(flux_handle, {"key": key, "flags": 0,
                         "dirent": {"ver": 1, "type": "dir", "data": {}}}, _kvstxn)


def put_unlink(flux_handle, key, _kvstxn=None):
    """Stage removing ``key`` (a missing key is not an error)."""
    key = _check_key(key)
    _stage(flux_handle, {"key": key, "flags": 0, "dirent": None}, _kvstxn)


def put_symlink(flux_handle, key, target, _kvstxn=None):
    """Stage a symlink ``key`` -> the absolute key ``target``."""
    key = _check_key(key)
    if isinstance(target, bytes):
        target = target.decode("utf-8")
    if not isinstance(target, str):
        raise TypeError("symlink target must be a string")
    _stage(flux_handle, {"key": key, "flags": 0, "dirent": {
        "ver": 1, "type": "symlink", "data": {"target": target}}}, _kvstxn)


def commit(flux_handle, flags=0, namespace=None, _kvstxn=None):
    """Commit the handle's implicit transaction (or ``_kvstxn``, uncleared)."""
    if _kvstxn is None:
        txn = flux_handle.aux_txn
        flux_handle.aux_txn = None
        if txn is None or not txn.ops:
            return None
        ops = txn.ops
    else:
        ops = list(_kvstxn._ops)
        if not ops:
            return None
    _sync(lambda: _commit_rpc(flux_handle, ops, flags, namespace).get())
    return None


def commit_async(flux_handle, flags=0, namespace=None, _kvstxn=None):
    """Send the transaction now; return a ``Future`` (``get()`` -> None)."""
    if _kvstxn is None:
        txn = flux_handle.aux_txn
        flux_handle.aux_txn = None
        ops = txn.ops if txn is not None else []
    else:
        ops = list(_kvstxn._ops)
    return Future(_commit_rpc(flux_handle, ops, flags, namespace))


# -- explicit transactions --------------------------------------------------------
class KVSTxn:
    """An explicit transaction; keys are relative to ``path``."""

    def __init__(self, flux_handle=None, path=".", namespace=None):
        if flux_handle is None:
            raise ValueError("flux_handle must be specified")
        self.fhdl = flux_handle
        self.path = path
        self.namespace = namespace
        self._ops = []

    def _prefix(self, key):
        key = _check_key(key)
        path = self.path
        if not path or path == ".":
            return key
        if path.endswith("."):
            return path + key
        return f"{path}.{key}"

    def put(self, key, value, raw=False):
        put(self.fhdl, self._prefix(key), value, raw=raw, _kvstxn=self)

    def mkdir(self, key):
        put_mkdir(self.fhdl, self._prefix(key), _kvstxn=self)

    def unlink(self, key):
        put_unlink(self.fhdl, self._prefix(key), _kvstxn=self)

    def symlink(self, key, target):
        put_symlink(self.fhdl, self._prefix(key), target, _kvstxn=self)

    def clear(self):
        self._ops = []

    def commit(self, flags=0):
        ops, self._ops = self._ops, []
        if not ops:
            return None
        _sync(lambda: _commit_rpc(self.fhdl, ops, flags, self.namespace).get())
        return None

    def commit_async(self, flags=0):
        ops, self._ops = self._ops, []
        return Future(_commit_rpc(self.fhdl, ops, flags, self.namespace))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.commit()
        return False


# -- directories ----------------------------------------------------------------
class KVSDir(abc.MutableMapping):
    """A mapping over one KVS directory (see the spec, section 11.5).

    Iteration, ``len()``, ``files()``, ``directories()`` and ``list_all()``
    show the directory as it was when this object was made; item reads look
    up fresh.  Writes are staged in this object's transaction (shared with
    subdirectories obtained by ``kd[name]``) until ``commit()``.
    """

    def __init__(self, flux_handle=None, path=".", handle=None, namespace=None,
                 _kvstxn=None):
        if flux_handle is None and handle is None:
            raise ValueError("flux_handle or handle must be specified")
        if flux_handle is None:
            flux_handle = getattr(handle, "fhdl", None)
        self.fhdl = flux_handle
        self.path = path
        self.namespace = namespace
        if isinstance(handle, KVSDir):
            self._entries = list(handle._entries)
        else:
            key = _check_key(path)
            rsp = _lookup(flux_handle, key, namespace, FLUX_KVS_READDIR, nodata=True)
            data = rsp["val"].get("data") or {}
            self._entries = sorted(
                (name.encode("utf-8"), name, obj.get("type") == "dir")
                for name, obj in data.items())
            self._entries = [(name, is_dir) for _b, name, is_dir in self._entries]
        if _kvstxn is None:
            _kvstxn = KVSTxn(flux_handle, namespace=namespace)
        self._txn = _kvstxn

    def __repr__(self):
        return f"KVSDir(path={self.path!r}, namespace={self.namespace!r})"

    # -- keys ---------------------------------------------------------------------
    def key_at(self, key):
        if self.path == ".":
            return key
        if self.path.endswith("."):
            return self.path + key
        return f"{self.path}.{key}"

    def exists(self, name):
        return exists(self.fhdl, self.key_at(name), self.namespace)

    # -- mapping --------------------------------------------------------------------
    def __getitem__(self, key):
        try:
            return get(self.fhdl, self.key_at(key), namespace=self.namespace,
                       _kvstxn=self._txn)
        except (OSError, TypeError):
            raise KeyError(f"{key} not found under directory {self.key_at('')}") from None

    def __setitem__(self, key, value):
        put(self.fhdl, self.key_at(key), value, _kvstxn=self._txn)

    def __delitem__(self, key):
        put_unlink(self.fhdl, self.key_at(key), _kvstxn=self._txn)

    def __iter__(self):
        return iter([name for name, _d in self._entries])

    def __len__(self):
        return len(self._entries)

    def files(self):
        for name, is_dir in self._entries:
            if not is_dir:
                yield name

    def directories(self):
        for name, is_dir in self._entries:
            if is_dir:
                yield name

    def list_all(self):
        return list(self.files()), list(self.directories())

    # -- writing ------------------------------------------------------------------------
    def commit(self, flags=0):
        return self._txn.commit(flags)

    def commit_async(self, flags=0):
        return self._txn.commit_async(flags)

    def fill(self, contents):
        if contents is None:
            raise ValueError("contents must be non-None")
        try:
            for key, value in contents.items():
                self[key] = value
        finally:
            self.commit()

    def mkdir(self, key, contents=None):
        put_mkdir(self.fhdl, self.key_at(key), _kvstxn=self._txn)
        self.commit()
        if contents is not None:
            KVSDir(self.fhdl, self.key_at(key), namespace=self.namespace).fill(contents)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.commit()
        return False


def walk(directory, topdown=False, flux_handle=None, namespace=None):
    """Yield ``(relpath, dirs, files)`` for a directory tree (like ``os.walk``)."""
    if isinstance(directory, str):
        if flux_handle is None:
            raise ValueError("If directory is a key, flux_handle must be specified")
        directory = KVSDir(flux_handle, directory, namespace=namespace)
    return _walk(directory, "", topdown, namespace)


def _walk(kvsdir, relpath, topdown, namespace):
    if topdown:
        yield relpath, kvsdir.directories(), kvsdir.files()
    for name in kvsdir.directories():
        sub = KVSDir(kvsdir.fhdl, kvsdir.key_at(name), namespace=namespace)
        yield from _walk(sub, join(relpath, name), topdown, namespace)
    if not topdown:
        yield relpath, kvsdir.directories(), kvsdir.files()


def join(*parts):
    """Dot-join the non-empty parts."""
    return ".".join(p for p in parts if p)


# -- namespaces ---------------------------------------------------------------------
def namespace_create(flux_handle, namespace, owner=_OWNER_DEFAULT, flags=0):
    _sync(lambda: flux_handle.rpc("kvs.namespace-create", {
        "namespace": namespace, "owner": owner, "flags": flags}).get())


def namespace_remove(flux_handle, namespace):
    _sync(lambda: flux_handle.rpc("kvs.namespace-remove",
                                  {"namespace": namespace}).get())


def namespace_list(flux_handle):
    rsp = _sync(lambda: flux_handle.rpc("kvs.namespace-list").get())
    return [ns["namespace"] for ns in rsp["namespaces"]]


# -- watching -------------------------------------------------------------------------
class KVSWatchFuture(WatchImplementation):
    """A stream of values of one key (see ``kvs_watch_async``)."""

    def __init__(self, rpc):
        super().__init__(rpc)
        self._matchtag = rpc._state.matchtag

    def watch_get(self):
        from flux.rpc import RPC

        rsp = RPC.get(self)
        return decode_value(_val_data(rsp["val"]))

    def watch_cancel(self):
        handle = self._state.handle
        handle.rpc("kvs-watch.cancel", {"matchtag": self._matchtag},
                   flags=FLUX_RPC_NORESPONSE)


def kvs_watch_async(flux_handle, key, namespace=None, waitcreate=False, uniq=False,
                    full=False):
    """Watch ``key``: the current value, then one response per change."""
    key = _check_key(key)
    flags = FLUX_KVS_WATCH
    if waitcreate:
        flags |= FLUX_KVS_WAITCREATE
    if uniq:
        flags |= FLUX_KVS_WATCH_UNIQ
    if full:
        flags |= FLUX_KVS_WATCH_FULL
    rpc = flux_handle.rpc("kvs-watch.lookup", {
        "key": key, "namespace": _namespace(namespace), "flags": flags},
        flags=FLUX_RPC_STREAMING)
    return KVSWatchFuture(rpc)


# -- checkpoints ------------------------------------------------------------------------
def kvs_checkpoint_lookup(flux_handle, cache_bypass=False):
    """The list of KVS checkpoints; ENOENT if there is none."""
    topic = "content-backing.checkpoint-get" if cache_bypass else "content.checkpoint-get"
    rsp = _sync(lambda: flux_handle.rpc(topic, {}).get()) or {}
    if "checkpoints" in rsp:
        return list(rsp["checkpoints"])
    value = rsp.get("value", rsp)
    return value if isinstance(value, list) else [value]
