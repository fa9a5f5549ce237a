"""Tree objects on the wire, a part of the KVS service (``fluxrm.modules.kvs``).

RFC 11's JSON tree objects (their three shapes are in the package
docstring), as the KVS's requests and answers carry them, and their
conversion to and from ``fluxrm.kvstree``'s terms.  ``treeobj`` builds
one for an answer; ``ops_from_wire`` turns the ``ops`` of a
``kvs.commit`` into ``kvstree`` operation tuples, or raises
OSError(EINVAL) naming what is malformed.  No state, no I/O.
"""

import base64
import errno

from flux.constants import FLUX_KVS_APPEND
from fluxrm.kvstree import SYMLINK, VAL, oserror


def treeobj(type_, value, nodata=False):
    """The treeobj of one entry: a value (without its data if ``nodata``),
    a symlink, or a directory (without its entries)."""
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
