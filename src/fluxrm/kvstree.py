"""KVS tree semantics over a ``Store``: keys, namespaces, lookups, commits.

This is the sans-I/O core of the KVS service (``fluxrm.modules.kvs``): no
sockets, no event loop, no messages; just the rules of Flux's key-value
store applied to SQLite tables.  Unit tests drive it directly.

Model
    A namespace is a tree.  Keys are dot-separated paths, normalised by
    ``normalize_key`` (repeated dots collapse, leading/trailing dots are
    dropped; the root is ``""`` here and ``"."`` to users).  Every entry is
    one of ``VAL`` (raw bytes), ``DIR`` (possibly empty) or ``SYMLINK`` (an
    absolute key in the same namespace, possibly dangling).  Invariant: every
    stored entry's ancestors are stored directories, so an entry found under
    its full key is reachable, and values and symlinks have no descendants.

Schema (in the shared store)
    ``kvs_namespace(name PK, owner, flags, version)``; ``version`` counts
    commits ("rootseq").
    ``kvs_entry(ns, key, parent, type, value)`` with primary key
    ``(ns, key)`` and an index on ``(ns, parent, key)``: a lookup is one
    B-tree probe, a directory listing one index range scan, removing a
    subtree one primary-key range delete (``key > 'a.' AND key < 'a/'``).
    ``kvs_checkpoint(id PK, sequence, timestamp, rootref)``.

Operations (``KVSTree.commit(ns, ops)``), applied in order, atomically:
    ``("put", key, bytes)``        value; creates parents, a value on the
                                   path becomes a directory, symlinks on the
                                   path are followed
    ``("append", key, bytes)``     append to a value (created if missing)
    ``("mkdir", key)``             replace whatever is there with an empty dir
    ``("unlink", key)``            remove key and its subtree; missing is fine
    ``("symlink", key, target)``   link to the absolute key ``target``
"""

import errno
import os
import time
import hashlib

VAL = 0
DIR = 1
SYMLINK = 2

TYPE_NAMES = {VAL: "val", DIR: "dir", SYMLINK: "symlink"}

PRIMARY = "primary"
SYMLINK_LIMIT = 10

SCHEMA = """
CREATE TABLE IF NOT EXISTS kvs_namespace (
    name    TEXT PRIMARY KEY,
    owner   INTEGER NOT NULL,
    flags   INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS kvs_entry (
    ns     TEXT NOT NULL,
    key    TEXT NOT NULL,
    parent TEXT NOT NULL,
    type   INTEGER NOT NULL,
    value  BLOB,
    PRIMARY KEY (ns, key)
);
CREATE INDEX IF NOT EXISTS kvs_entry_parent ON kvs_entry (ns, parent, key);
CREATE TABLE IF NOT EXISTS kvs_checkpoint (
    id        INTEGER PRIMARY KEY,
    sequence  INTEGER NOT NULL,
    timestamp REAL NOT NULL,
    rootref   TEXT NOT NULL
);
"""


def oserror(errnum, text=None):
    return OSError(errnum, text or os.strerror(errnum))


def normalize_key(key):
    """Normalise a user key: ``"..a..b."`` -> ``"a.b"``; the root is ``""``.

    An empty or non-string key raises EINVAL.
    """
    if not isinstance(key, str) or not key:
        raise oserror(errno.EINVAL)
    if "." not in key:
        return key
    return ".".join(c for c in key.split(".") if c)


def _split(key):
    return [c for c in key.split(".") if c]


def _parent(key):
    i = key.rfind(".")
    return key[:i] if i >= 0 else ""


def _next_after_prefix(key):
    """Upper bound of the range of keys strictly below ``key``."""
    return key + "/"  # "/" sorts right after "."


class Entry:
    """One looked-up entry: ``type`` (VAL/DIR/SYMLINK), ``value`` (bytes for a
    value, target str for a symlink, None for a directory) and ``key`` (the
    normalised key where it was found, after following symlinks)."""

    __slots__ = ("key", "type", "value")

    def __init__(self, key, type_, value):
        self.key = key
        self.type = type_
        self.value = value

    def __repr__(self):
        return f"Entry({self.key!r}, {TYPE_NAMES[self.type]}, {self.value!r})"


class KVSTree:
    def __init__(self, store, owner=None):
        self.store = store
        store.script(SCHEMA)
        self.namespaces = {}  # name -> {"owner", "flags", "version"}
        self.reload_namespaces()
        if PRIMARY not in self.namespaces:
            self.namespace_create(PRIMARY, os.getuid() if owner is None else owner)

    # -- namespaces ------------------------------------------------------------
    def reload_namespaces(self):
        self.namespaces = {
            name: {"owner": owner, "flags": flags, "version": version}
            for name, owner, flags, version in self.store.query(
                "SELECT name, owner, flags, version FROM kvs_namespace")
        }

    def namespace_create(self, name, owner, flags=0):
        if not isinstance(name, str) or not name:
            raise oserror(errno.EINVAL)
        if name in self.namespaces:
            raise oserror(errno.EEXIST)
        self.store.execute(
            "INSERT INTO kvs_namespace (name, owner, flags, version) VALUES (?,?,?,0)",
            (name, int(owner), int(flags)))
        self.namespaces[name] = {"owner": int(owner), "flags": int(flags), "version": 0}

    def namespace_remove(self, name):
        """Remove a namespace and its data; unknown names are fine."""
        if name == PRIMARY:
            raise oserror(errno.ENOTSUP)
        if name not in self.namespaces:
            return False
        self.store.execute("DELETE FROM kvs_entry WHERE ns = ?", (name,))
        self.store.execute("DELETE FROM kvs_namespace WHERE name = ?", (name,))
        del self.namespaces[name]
        return True

    def namespace_info(self, name):
        info = self.namespaces.get(name)
        if info is None:
            raise oserror(errno.ENOTSUP)
        return info

    def version(self, name):
        return self.namespace_info(name)["version"]

    # -- raw entry access --------------------------------------------------------
    def _get(self, ns, key):
        row = self.store.query_one(
            "SELECT type, value FROM kvs_entry WHERE ns = ? AND key = ?", (ns, key))
        return row

    def _get_many(self, ns, keys):
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        rows = self.store.query(
            f"SELECT key, type, value FROM kvs_entry WHERE ns = ? AND key IN ({marks})",
            (ns, *keys))
        return {k: (t, v) for k, t, v in rows}

    def _set(self, ns, key, type_, value=None):
        self.store.execute(
            "INSERT OR REPLACE INTO kvs_entry (ns, key, parent, type, value)"
            " VALUES (?,?,?,?,?)", (ns, key, _parent(key), type_, value))

    def _delete_below(self, ns, key):
        if key:
            self.store.execute(
                "DELETE FROM kvs_entry WHERE ns = ? AND key > ? AND key < ?",
                (ns, key + ".", _next_after_prefix(key)))
        else:
            self.store.execute("DELETE FROM kvs_entry WHERE ns = ?", (ns,))

    def _delete(self, ns, key, old_type):
        """Delete ``key`` (of type ``old_type``) and, for a dir, its subtree."""
        self.store.execute("DELETE FROM kvs_entry WHERE ns = ? AND key = ?", (ns, key))
        if old_type == DIR:
            self._delete_below(ns, key)

    # -- lookup --------------------------------------------------------------------
    def lookup(self, ns, key, follow=True):
        """Find ``key`` in namespace ``ns``; return an ``Entry``.

        Symlinks on the path are followed, and the final one too when
        ``follow``.  Missing (or a path through a value, or a dangling
        symlink) raises ENOENT; a symlink loop ELOOP; an unknown namespace
        ENOTSUP.
        """
        self.namespace_info(ns)
        return self._resolve(ns, _split(normalize_key(key)), follow, 0)

    def _resolve(self, ns, comps, follow, depth):
        if depth > SYMLINK_LIMIT:
            raise oserror(errno.ELOOP)
        if not comps:
            return Entry("", DIR, None)
        key = ".".join(comps)
        row = self._get(ns, key)
        if row is not None:
            type_, value = row
            if type_ == SYMLINK and follow:
                return self._resolve(ns, _split(value) , True, depth + 1)
            return Entry(key, type_, value)
        # Not stored under its full key: a symlink on the path may lead there.
        prefixes = [".".join(comps[:i]) for i in range(1, len(comps))]
        found = self._get_many(ns, prefixes)
        for i in range(len(comps) - 1, 0, -1):
            hit = found.get(prefixes[i - 1])
            if hit is None:
                continue
            type_, value = hit
            if type_ == SYMLINK:
                return self._resolve(ns, _split(value) + comps[i:], follow, depth + 1)
            break  # a directory without that child, or a value on the path
        raise oserror(errno.ENOENT)

    def readdir(self, ns, key):
        """List a directory: ``[(name, type, value)]`` sorted by name.

        ``key`` may be a symlink to a directory.  A value raises ENOTDIR.
        """
        entry = self.lookup(ns, key)
        if entry.type != DIR:
            raise oserror(errno.ENOTDIR)
        return self.children(ns, entry.key)

    def children(self, ns, dirkey):
        rows = self.store.query(
            "SELECT key, type, value FROM kvs_entry WHERE ns = ? AND parent = ?"
            " ORDER BY key", (ns, dirkey))
        cut = len(dirkey) + 1 if dirkey else 0
        return [(k[cut:], t, v) for k, t, v in rows]

    # -- commit --------------------------------------------------------------------
    @staticmethod
    def check_ops(ops):
        """Validate a list of operation tuples; return them with normalised keys."""
        if not isinstance(ops, (list, tuple)):
            raise oserror(errno.EINVAL, "ops must be a list")
        out = []
        for op in ops:
            if not isinstance(op, (list, tuple)) or not op:
                raise oserror(errno.EINVAL, "malformed operation")
            kind = op[0]
            if kind in ("put", "append", "symlink"):
                if len(op) != 3:
                    raise oserror(errno.EINVAL, f"{kind}: malformed operation")
            elif kind in ("mkdir", "unlink"):
                if len(op) != 2:
                    raise oserror(errno.EINVAL, f"{kind}: malformed operation")
            else:
                raise oserror(errno.EINVAL, f"unknown operation {kind!r}")
            key = normalize_key(op[1])
            if not key:
                raise oserror(errno.EINVAL, "cannot modify the root directory")
            if kind in ("put", "append"):
                value = op[2]
                if isinstance(value, (bytearray, memoryview)):
                    value = bytes(value)
                if not isinstance(value, bytes):
                    raise oserror(errno.EINVAL, f"{kind}: value must be bytes")
                out.append((kind, key, value))
            elif kind == "symlink":
                if not isinstance(op[2], str):
                    raise oserror(errno.EINVAL, "symlink: target must be a string")
                out.append((kind, key, op[2]))
            else:
                out.append((kind, key))
        return out

    def commit(self, ns, ops):
        """Apply ``ops`` to ``ns`` atomically; return ``(version, keys)``.

        ``keys`` is the list of normalised keys the operations named.  On
        error nothing is changed and OSError is raised.
        """
        info = self.namespace_info(ns)
        ops = self.check_ops(ops)
        with self.store.savepoint():
            for op in ops:
                self._apply(ns, op)
            version = info["version"] + 1
            self.store.execute("UPDATE kvs_namespace SET version = ? WHERE name = ?",
                               (version, ns))
        info["version"] = version
        return version, [op[1] for op in ops]

    def _apply(self, ns, op):
        kind, key = op[0], op[1]
        comps = _split(key)
        if kind == "unlink":
            dirkey = self._find_dir(ns, comps[:-1], 0)
            if dirkey is None:
                return
            full = f"{dirkey}.{comps[-1]}" if dirkey else comps[-1]
            row = self._get(ns, full)
            if row is not None:
                self._delete(ns, full, row[0])
            return
        dirkey = self._ensure_dir(ns, comps[:-1], 0)
        full = f"{dirkey}.{comps[-1]}" if dirkey else comps[-1]
        row = self._get(ns, full)
        if kind == "append" and row is not None:
            if row[0] == VAL:
                self._set(ns, full, VAL, bytes(row[1]) + op[2])
                return
            raise oserror(errno.EISDIR if row[0] == DIR else errno.EINVAL,
                          f"cannot append to {TYPE_NAMES[row[0]]} {key}")
        if row is not None and row[0] == DIR:
            self._delete_below(ns, full)
        if kind in ("put", "append"):
            self._set(ns, full, VAL, op[2])
        elif kind == "mkdir":
            self._set(ns, full, DIR)
        else:  # symlink
            self._set(ns, full, SYMLINK, op[2])

    def _ensure_dir(self, ns, comps, depth):
        """Make ``comps`` a directory, following symlinks; return its key."""
        if depth > SYMLINK_LIMIT:
            raise oserror(errno.ELOOP)
        if not comps:
            return ""
        key = ".".join(comps)
        row = self._get(ns, key)
        if row is not None and row[0] == DIR:
            return key  # fast path: all ancestors are directories
        cur = ""
        for i, name in enumerate(comps):
            k = f"{cur}.{name}" if cur else name
            row = self._get(ns, k)
            if row is None or row[0] == VAL:
                self._set(ns, k, DIR)
            elif row[0] == SYMLINK:
                return self._ensure_dir(ns, _split(row[1]) + comps[i + 1:], depth + 1)
            cur = k
        return cur

    def _find_dir(self, ns, comps, depth):
        """Key of the existing directory ``comps`` (following symlinks), or None."""
        if depth > SYMLINK_LIMIT:
            raise oserror(errno.ELOOP)
        try:
            entry = self._resolve(ns, comps, True, depth)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise
        return entry.key if entry.type == DIR else None

    # -- checkpoints -----------------------------------------------------------------
    def checkpoint_put(self, ns=PRIMARY):
        """Record a checkpoint of ``ns``'s current root."""
        version = self.version(ns)
        stamp = time.time()
        rootref = "sha1-" + hashlib.sha1(f"{ns}:{version}:{stamp}".encode()).hexdigest()
        self.store.execute(
            "INSERT OR REPLACE INTO kvs_checkpoint (id, sequence, timestamp, rootref)"
            " VALUES (1, ?, ?, ?)", (version, stamp, rootref))
        return self.checkpoint_get()

    def checkpoint_get(self):
        """The checkpoint list (newest first); ENOENT if there is none."""
        rows = self.store.query(
            "SELECT sequence, timestamp, rootref FROM kvs_checkpoint ORDER BY id")
        if not rows:
            raise oserror(errno.ENOENT)
        return [{"version": 1, "sequence": s, "timestamp": t, "rootref": r}
                for s, t, r in rows]
