"""flux.kvs against a real instance (spec section 11)."""

import base64
import errno
import gc
import itertools
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import flux
import flux.kvs as kvs
from flux.constants import (
    FLUX_KVS_NO_MERGE,
    FLUX_KVS_SYNC,
    FLUX_KVS_TXN_COMPACT,
)
from flux.kvs import KVSDir, KVSTxn

_counter = itertools.count()


@pytest.fixture
def ns(h, monkeypatch):
    """A fresh namespace, made the default through $FLUX_KVS_NAMESPACE."""
    name = f"test-{os.getpid()}-{next(_counter)}"
    kvs.namespace_create(h, name)
    monkeypatch.setenv("FLUX_KVS_NAMESPACE", name)
    yield name
    kvs.namespace_remove(h, name)


def raises(errnum, fn, *args, **kwargs):
    with pytest.raises(OSError) as e:
        fn(*args, **kwargs)
    assert e.value.errno == errnum, e.value
    return e.value


def stored(h, key, namespace):
    """The raw bytes stored at key."""
    rsp = h.rpc("kvs.lookup", {"key": key, "namespace": namespace}).get()
    return base64.b64decode(rsp["val"]["data"])


def putc(h, key, value, **kw):
    kvs.put(h, key, value, **kw)
    kvs.commit(h)


# -- 11.1 encoding ------------------------------------------------------------------
@pytest.mark.parametrize("value, raw, expected", [
    ("5", False, "5"),
    ("5", True, 5),
    (b"{}", False, {}),
    (b"{", False, "{"),
    (bytes.fromhex("deadbeef"), False, bytes.fromhex("deadbeef")),
    (b"ab\x00cd", False, "ab"),
    (b"", True, None),
    ("", False, ""),
    (None, False, None),
    (42, False, 42),
    (1.5, False, 1.5),
    (True, False, True),
    ([1, "x"], False, [1, "x"]),
    ((1, 2), False, [1, 2]),
    ({"a": {"b": 1}}, False, {"a": {"b": 1}}),
    ("☺", False, "☺"),
    ("☺", True, "☺"),
    (b"\xff\x00\x01", False, b"\xff"),
    (b"plain text", False, "plain text"),
])
def test_round_trip(h, ns, value, raw, expected):
    putc(h, "k", value, raw=raw)
    got = kvs.get(h, "k")
    assert got == expected and type(got) is type(expected)


def test_stored_text_uses_python_json_defaults(h, ns):
    kvs.put(h, "d", {"a": 1, "b": [1, 2]})
    kvs.put(h, "s", "☺")
    kvs.put(h, "n", None)
    kvs.put(h, "b", b"\x00raw")
    kvs.commit(h)
    assert stored(h, "d", ns) == b'{"a": 1, "b": [1, 2]}'
    assert stored(h, "s", ns) == b'"\\u263a"'
    assert stored(h, "n", ns) == b"null"
    assert stored(h, "b", ns) == b"\x00raw"
    assert kvs.exists(h, "n")  # None is a value, not a deletion


@pytest.mark.parametrize("value", [{1, 2}, bytearray(b"x"), object()])
def test_unencodable_values_raise_typeerror(h, value):
    with pytest.raises(TypeError):
        kvs.put(h, "k", value)


@pytest.mark.parametrize("value", [1, 1.5, None, [1], bytearray(b"x")])
def test_raw_non_string_raises_attributeerror(h, value):
    with pytest.raises(AttributeError):
        kvs.put(h, "k", value, raw=True)


# -- keys and errors --------------------------------------------------------------------
@pytest.mark.parametrize("fn, args", [
    (kvs.get, ()), (kvs.get_key_direct, ()), (kvs.exists, ()), (kvs.isdir, ()),
    (kvs.get_dir, ()), (kvs.put, (1,)), (kvs.put_mkdir, ()), (kvs.put_unlink, ()),
    (kvs.put_symlink, ("a",)), (kvs.kvs_watch_async, ()),
])
def test_empty_key_is_einval(h, fn, args):
    e = raises(errno.EINVAL, fn, h, "", *args)
    assert e.strerror == "EINVAL: Invalid argument"
    assert h.aux_txn is None or len(h.aux_txn) == 0


def test_missing_key(h, ns):
    e = raises(errno.ENOENT, kvs.get, h, "nope")
    assert isinstance(e, FileNotFoundError)
    assert e.strerror == "ENOENT: No such file or directory"
    raises(errno.ENOENT, kvs.get_key_direct, h, "nope.deeper")


def test_key_normalisation(h, ns):
    putc(h, "..a..b.", 1)
    assert kvs.get(h, "a.b") == 1
    assert kvs.get(h, ".a.b") == 1
    assert kvs.isdir(h, "a.")


def test_path_through_value_is_enoent(h, ns):
    putc(h, "v", 1)
    raises(errno.ENOENT, kvs.get, h, "v.w")
    assert not kvs.exists(h, "v.w")


def test_directory_reads(h, ns):
    putc(h, "d.x", 1)
    d = kvs.get(h, "d")
    assert isinstance(d, KVSDir) and d.path == "d"
    raises(errno.EISDIR, kvs.get_key_direct, h, "d")
    assert kvs.get_dir(h, "d").path == "d"
    root = kvs.get_dir(h)
    assert root.path == "." and "d" in list(root)


def test_exists_and_isdir(h, ns):
    kvs.put(h, "val", 1)
    kvs.put(h, "dir.x", 1)
    kvs.put_symlink(h, "ldir", "dir")
    kvs.put_symlink(h, "lval", "val")
    kvs.put_symlink(h, "dangling", "no.where")
    kvs.commit(h)
    table = {
        "val": (True, False), "dir": (True, True), "ldir": (True, True),
        "lval": (True, False), "dangling": (False, False), "missing": (False, False),
        ".": (True, True), "dir.x": (True, False),
    }
    for key, (ex, isd) in table.items():
        assert kvs.exists(h, key) is ex, key
        assert kvs.isdir(h, key) is isd, key
    assert kvs.get(h, "lval") == 1
    assert kvs.get(h, "ldir.x") == 1
    raises(errno.ENOENT, kvs.get, h, "dangling")


def test_unknown_namespace(h):
    raises(errno.ENOTSUP, kvs.get, h, "a", namespace="no-such-ns")
    raises(errno.ENOTSUP, kvs.exists, h, "a", namespace="no-such-ns")
    raises(errno.ENOTSUP, kvs.isdir, h, "a", namespace="no-such-ns")
    raises(errno.ENOTSUP, KVSDir, h, ".", namespace="no-such-ns")
    kvs.put(h, "a", 1)
    raises(errno.ENOTSUP, kvs.commit, h, namespace="no-such-ns")
    assert h.aux_txn is None


# -- 11.3 implicit transaction -----------------------------------------------------------
def test_put_semantics(h, ns):
    putc(h, "a", 1)
    putc(h, "a.x", 2)  # the value on the path becomes a directory
    assert kvs.isdir(h, "a") and kvs.get(h, "a.x") == 2
    putc(h, "p.q.r", 3)  # parents created
    assert kvs.isdir(h, "p.q")
    kvs.put_mkdir(h, "p")  # replaces the contents
    kvs.commit(h)
    assert kvs.isdir(h, "p") and list(kvs.get_dir(h, "p")) == []
    kvs.put_unlink(h, "never.existed")
    kvs.commit(h)
    kvs.put_symlink(h, "link", "no.such.target")
    kvs.commit(h)
    assert not kvs.exists(h, "link")
    putc(h, "no.such.target", "t")
    assert kvs.get(h, "link") == "t"


def test_operations_apply_in_order_atomically(h, ns):
    kvs.put(h, "k", 1)
    kvs.put_unlink(h, "k")
    kvs.put(h, "k", 2)
    kvs.commit(h)
    assert kvs.get(h, "k") == 2
    kvs.put(h, "k", 3)
    kvs.put(h, ".", 4)
    e = raises(errno.EINVAL, kvs.commit, h)
    assert e.strerror == "EINVAL: Invalid argument"
    assert h.aux_txn is None  # discarded on failure
    assert kvs.get(h, "k") == 2  # nothing applied


def test_commit_nothing_staged(h):
    assert h.aux_txn is None
    assert kvs.commit(h) is None


def test_staging_is_per_handle(h, ns):
    h2 = flux.Flux()
    kvs.put(h, "mine", 1)
    kvs.commit(h2)
    assert not kvs.exists(h, "mine")
    kvs.commit(h)
    assert kvs.get(h2, "mine") == 1


def test_commit_async(h, ns):
    kvs.put(h, "x", 1)
    f = kvs.commit_async(h)
    assert h.aux_txn is None  # detached at once
    assert isinstance(f, flux.future.Future)
    assert f.get() is None
    assert kvs.get(h, "x") == 1
    assert kvs.commit_async(h).get() is None  # an empty one is still sent
    kvs.put(h, ".", 1)
    raises(errno.EINVAL, kvs.commit_async(h).get)
    kvs.put(h, "y", 1)
    raises(errno.ENOTSUP, kvs.commit_async(h, namespace="no-such-ns").get)


@pytest.mark.parametrize("flags", [FLUX_KVS_NO_MERGE, FLUX_KVS_TXN_COMPACT,
                                   FLUX_KVS_SYNC])
def test_commit_flags(h, flags):
    key = f"test-flags.{flags}.{os.getpid()}"
    kvs.put(h, key, flags)
    kvs.commit(h, flags=flags, namespace="primary")
    assert kvs.get(h, key, namespace="primary") == flags


# -- 11.4 KVSTxn --------------------------------------------------------------------------
def test_kvstxn_paths(h, ns):
    with KVSTxn(h, "base") as t:
        assert t.path == "base" and t.namespace is None
        t.put("a", 1)
        t.mkdir("d")
        t.symlink("l", "base.a")  # the target is never prefixed
    assert kvs.get(h, "base.a") == 1 and kvs.isdir(h, "base.d")
    assert kvs.get(h, "base.l") == 1
    for path, key in [(".", "p1"), ("", "p2"), ("pre.", "pre.p3")]:
        t = KVSTxn(h, path)
        t.put(key.rsplit(".", 1)[-1], "v")
        t.commit()
        assert kvs.get(h, key) == "v"
    t = KVSTxn(h, "base")
    t.unlink("a")
    t.commit()
    assert not kvs.exists(h, "base.a")


def test_kvstxn_independent_and_clear(h, ns):
    t1, t2 = KVSTxn(h), KVSTxn(h)
    t1.put("one", 1)
    t2.put("two", 2)
    kvs.put(h, "three", 3)
    t2.clear()
    t2.commit()  # empty: nothing sent
    t1.commit()
    assert kvs.exists(h, "one") and not kvs.exists(h, "two")
    assert not kvs.exists(h, "three")
    kvs.commit(h)
    assert kvs.get(h, "three") == 3


def test_kvstxn_commit_clears_even_on_failure(h, ns):
    t = KVSTxn(h)
    t.put("ok", 1)
    t.put(".", 1)
    raises(errno.EINVAL, t.commit)
    t.commit()  # nothing left
    assert not kvs.exists(h, "ok")
    t.put("later", 1)
    assert t.commit_async().get() is None
    assert kvs.get(h, "later") == 1
    assert t.commit_async().get() is None  # always sends


def test_kvstxn_namespace(h, ns):
    t = KVSTxn(h, namespace="primary")
    key = f"test-txn-ns-{os.getpid()}"
    t.put(key, 1)
    t.commit()
    assert kvs.get(h, key, namespace="primary") == 1
    assert not kvs.exists(h, key)
    with pytest.raises(ValueError):
        KVSTxn()


def test_kvstxn_context_commits_even_if_block_raised(h, ns):
    with pytest.raises(RuntimeError):
        with KVSTxn(h) as t:
            t.put("committed", 1)
            raise RuntimeError("boom")
    assert kvs.get(h, "committed") == 1


def test_module_api_with_kvstxn(h, ns):
    t = KVSTxn(h, "ignored.path")
    kvs.put(h, "tx.a", 1, _kvstxn=t)
    kvs.put_mkdir(h, "tx.d", _kvstxn=t)
    kvs.put_symlink(h, "tx.l", "tx.a", _kvstxn=t)
    assert h.aux_txn is None
    kvs.commit(h, _kvstxn=t)
    assert kvs.get(h, "tx.a") == 1 and kvs.get(h, "tx.l") == 1
    # not cleared: a later commit replays every operation
    putc(h, "tx.a", 99)
    kvs.put_unlink(h, "tx.d", _kvstxn=t)
    kvs.commit(h, _kvstxn=t)
    assert kvs.get(h, "tx.a") == 1 and not kvs.exists(h, "tx.d")
    # uses the namespace argument, not t.namespace
    t2 = KVSTxn(h, namespace="no-such-ns")
    kvs.put(h, "tx.b", 2, _kvstxn=t2)
    kvs.commit(h, namespace=ns, _kvstxn=t2)
    assert kvs.get(h, "tx.b") == 2
    assert kvs.commit_async(h, namespace=ns, _kvstxn=t2).get() is None
    assert isinstance(kvs.get(h, "tx", _kvstxn=t2), KVSDir)
    assert kvs.get_dir(h, "tx", _kvstxn=t2)._txn is t2


# -- 11.5 KVSDir ----------------------------------------------------------------------------
def test_kvsdir_construction(h, ns):
    putc(h, "v", 1)
    with pytest.raises(ValueError):
        KVSDir()
    e = raises(errno.ENOENT, KVSDir, h, "missing")
    assert "No such file or directory" in str(e)
    raises(errno.ENOTDIR, KVSDir, h, "v")
    raises(errno.EINVAL, KVSDir, h, "")
    d = KVSDir(h)
    assert d.path == "." and d.namespace is None and d.fhdl is h


def test_kvsdir_snapshot_and_fresh_reads(h, ns):
    kvs.put(h, "d.b", 2)
    kvs.put(h, "d.a", 1)
    kvs.put(h, "d.B", 0)
    kvs.put(h, "d.sub.x", 3)
    kvs.commit(h)
    d = kvs.get_dir(h, "d")
    assert list(d) == ["B", "a", "b", "sub"]  # byte order
    putc(h, "d.c", 4)
    assert len(d) == 4 and "c" not in list(d.keys())
    assert d["c"] == 4 and "c" in d and d.get("c") == 4  # fresh
    assert d.exists("c") and not d.exists("zz")
    assert d.get("zz", "dflt") == "dflt"
    with pytest.raises(KeyError) as e:
        d["zz"]
    assert str(e.value) == repr("zz not found under directory d.")


def test_kvsdir_files_directories(h, ns):
    kvs.put(h, "f", 1)
    kvs.put(h, "sub.x", 1)
    kvs.put_symlink(h, "lnk", "sub")
    kvs.commit(h)
    d = kvs.get_dir(h)
    assert sorted(d.files()) == ["f", "lnk"]  # a symlink, even to a dir, is a file
    assert list(d.directories()) == ["sub"]
    files, dirs = d.list_all()
    assert sorted(files) == ["f", "lnk"] and dirs == ["sub"]


def test_kvsdir_writes_share_transaction(h, ns):
    putc(h, "top.a.b.placeholder", 0)
    kd = kvs.get_dir(h, "top")
    kd["a"]["b"]["c"] = 1
    assert not kvs.exists(h, "top.a.b.c")
    kd["x.y"] = "dotted"
    kd.commit()
    assert kvs.get(h, "top.a.b.c") == 1
    assert kvs.get(h, "top.x.y") == "dotted"
    # each get_dir has its own transaction
    d1, d2 = kvs.get_dir(h, "top"), kvs.get_dir(h, "top")
    d1["one"] = 1
    d2.commit()
    assert not kvs.exists(h, "top.one")
    d1.commit()
    assert kvs.get(h, "top.one") == 1


def test_kvsdir_delete(h, ns):
    putc(h, "dd.k", 1)
    d = kvs.get_dir(h, "dd")
    del d["k"]
    del d["never"]  # not an error
    assert d["k"] == 1  # still readable until commit
    d.commit()
    assert "k" not in d


def test_kvsdir_mixins(h, ns):
    kvs.put(h, "m.a", 1)
    kvs.put(h, "m.b", 2)
    kvs.commit(h)
    d = kvs.get_dir(h, "m")
    assert dict(d.items()) == {"a": 1, "b": 2}
    assert sorted(d.values()) == [1, 2]
    assert d == {"a": 1, "b": 2}
    assert d.setdefault("a", 5) == 1
    assert d.pop("b") == 2
    d.update({"c": 3})
    assert d.popitem() == ("a", 1)
    d.commit()
    assert sorted(kvs.get_dir(h, "m")) == ["c"]


def test_kvsdir_key_at(h, ns):
    putc(h, "t.x", 1)
    assert kvs.get_dir(h, "t").key_at("meh") == "t.meh"
    assert kvs.get_dir(h).key_at("meh") == "meh"
    assert kvs.get_dir(h, "t.").key_at("meh") == "t.meh"


def test_kvsdir_fill(h, ns):
    d = kvs.get_dir(h)
    with pytest.raises(ValueError, match="contents must be non-None"):
        d.fill(None)
    d.fill({"f1": 1, "dir.k": "v"})
    assert kvs.get(h, "f1") == 1 and kvs.get(h, "dir.k") == "v"

    class Bad(dict):
        def items(self):
            yield "before", 1
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        d.fill(Bad())
    assert kvs.get(h, "before") == 1  # committed even though it raised


def test_kvsdir_mkdir(h, ns):
    putc(h, "mk.old", 1)
    d = kvs.get_dir(h)
    d["pending"] = 1
    d.mkdir("mk")  # flushes pending writes, replaces contents
    assert kvs.get(h, "pending") == 1
    assert list(kvs.get_dir(h, "mk")) == []
    d.mkdir("mk", {"a": 1, "b.c": 2})
    assert kvs.get(h, "mk.a") == 1 and kvs.get(h, "mk.b.c") == 2
    sub = kvs.get_dir(h, "mk")
    sub.mkdir("inner", {"z": 26})  # fills <path>.<key>
    assert kvs.get(h, "mk.inner.z") == 26


def test_kvsdir_context_manager(h, ns):
    with pytest.raises(RuntimeError):
        with kvs.get_dir(h) as d:
            d["ctx"] = 1
            raise RuntimeError
    assert kvs.get(h, "ctx") == 1


def test_kvsdir_in_namespace(h, ns):
    key = f"test-kvsdir-ns-{os.getpid()}"
    putc(h, f"{key}.x", 1)
    d = KVSDir(h, ".", namespace="primary")
    d[f"{key}.y"] = 2
    d.commit()
    assert kvs.get(h, f"{key}.y", namespace="primary") == 2
    assert not kvs.exists(h, f"{key}.y")


# -- 11.6 walk and join ---------------------------------------------------------------------
def _listify(gen):
    return [(p, list(d), list(f)) for p, d, f in gen]


def test_walk(h, ns):
    kvs.get_dir(h).fill({"w.f": 1, "w.b.g": 2, "w.b.c": None})
    kvs.put_mkdir(h, "w.b.c")
    kvs.commit(h)
    assert _listify(kvs.walk("w", flux_handle=h)) == [
        ("b.c", [], []), ("b", ["c"], ["g"]), ("", ["b"], ["f"])]
    assert _listify(kvs.walk(kvs.get_dir(h, "w"), topdown=True)) == [
        ("", ["b"], ["f"]), ("b", ["c"], ["g"]), ("b.c", [], [])]


def test_walk_requires_handle_at_call_time():
    with pytest.raises(ValueError, match="flux_handle must be specified"):
        kvs.walk("some.key")


def test_walk_namespace_argument(h, ns):
    putc(h, "nw.sub.x", 1)
    d = KVSDir(h, "nw", namespace=ns)
    assert _listify(kvs.walk(d, namespace=ns)) == [("sub", [], ["x"]), ("", ["sub"], [])]


def test_join():
    assert kvs.join("a", "", "b", "c") == "a.b.c"
    assert kvs.join() == ""
    assert kvs.join("", "x") == "x"


# -- 11.7 namespaces ---------------------------------------------------------------------------
def test_namespaces(h):
    name = f"nstest-{os.getpid()}"
    kvs.namespace_create(h, name)
    try:
        assert name in kvs.namespace_list(h) and "primary" in kvs.namespace_list(h)
        e = raises(errno.EEXIST, kvs.namespace_create, h, name)
        assert isinstance(e, FileExistsError)
        key = f"isolated-{os.getpid()}"
        kvs.put(h, key, 1)
        kvs.commit(h, namespace=name)
        assert kvs.get(h, key, namespace=name) == 1
        raises(errno.ENOENT, kvs.get, h, key, namespace="primary")
        rsp = h.rpc("kvs.namespace-list").get()
        assert any(n["namespace"] == name for n in rsp["namespaces"])
    finally:
        assert kvs.namespace_remove(h, name) is None
    assert kvs.namespace_remove(h, name) is None  # unknown: fine
    raises(errno.ENOTSUP, kvs.namespace_remove, h, "primary")
    raises(errno.ENOTSUP, kvs.get, h, key, namespace=name)


def test_namespace_from_environment(h, ns, monkeypatch):
    putc(h, "envkey", 1)
    assert kvs.get(h, "envkey", namespace=ns) == 1
    monkeypatch.delenv("FLUX_KVS_NAMESPACE")
    assert not kvs.exists(h, "envkey")


# -- 11.8 watch ------------------------------------------------------------------------------------
def test_watch_every_commit_naming_the_key(h, ns):
    putc(h, "w", 1)
    w = kvs.kvs_watch_async(h, "w")
    assert w.get() == 1
    putc(h, "w", 1)  # unchanged, but named
    putc(h, "other", 1)  # not named: no response
    putc(h, "w", 2)
    assert w.get() == 1
    assert w.get() == 2
    w.cancel()
    assert w.get() is None
    assert w.get() is None  # every later call too


def test_watch_no_merge_sees_every_value(h, ns):
    putc(h, "seq", 0)
    w = kvs.kvs_watch_async(h, "seq")
    assert w.get() == 0
    futures = []
    for i in range(1, 6):
        kvs.put(h, "seq", i)
        futures.append(kvs.commit_async(h, flags=FLUX_KVS_NO_MERGE))
    for f in futures:
        f.get()
    assert [w.get() for _ in range(5)] == [1, 2, 3, 4, 5]
    w.cancel()


def test_watch_uniq(h, ns):
    putc(h, "u", 1)
    w = kvs.kvs_watch_async(h, "u", uniq=True)
    assert w.get() == 1
    putc(h, "u", 1)
    putc(h, "u", 2)
    assert w.get() == 2
    w.cancel()
    assert w.get() is None


def test_watch_autoreset_false(h, ns):
    putc(h, "ar", "x")
    w = kvs.kvs_watch_async(h, "ar")
    assert w.get(autoreset=False) == "x"
    assert w.get(autoreset=False) == "x"
    putc(h, "ar", "y")
    w.reset()
    assert w.get() == "y"
    w.cancel()


def test_watch_missing_key(h, ns):
    w = kvs.kvs_watch_async(h, "absent")
    with pytest.raises(OSError) as e:
        w.get()
    assert e.value.errno == errno.ENOENT
    assert e.value.strerror == "No such file or directory"


def test_watch_waitcreate(h, ns):
    w = kvs.kvs_watch_async(h, "later", waitcreate=True)
    putc(h, "unrelated", 1)
    assert not w.is_ready()
    raises(errno.ETIMEDOUT, w.wait_for, 0)
    putc(h, "later", "here")
    assert w.get() == "here"
    putc(h, "later", "again")
    assert w.get() == "again"
    w.cancel()
    assert w.get() is None


def test_watch_unlink_ends_stream(h, ns):
    putc(h, "gone", 1)
    w = kvs.kvs_watch_async(h, "gone")
    assert w.get() == 1
    kvs.put_unlink(h, "gone")
    kvs.commit(h)
    raises(errno.ENOENT, w.get)


def test_watch_directory_is_eisdir(h, ns):
    putc(h, "wd.x", 1)
    raises(errno.EISDIR, kvs.kvs_watch_async(h, "wd").get)


def test_watch_parent_changes_need_full(h, ns):
    putc(h, "par.k", 1)
    plain = kvs.kvs_watch_async(h, "par.k")
    full = kvs.kvs_watch_async(h, "par.k", full=True)
    assert plain.get() == 1 and full.get() == 1
    kvs.put_mkdir(h, "par")
    kvs.put(h, "par.k", 2)
    kvs.commit(h)  # names par.k
    assert plain.get() == 2 and full.get() == 2
    kvs.get_dir(h).fill({"par": {"k": 3}})  # par replaced by a value: k vanishes
    raises(errno.ENOENT, full.get)
    putc(h, "par.k", 4)  # the plain watch never noticed; it sees the next put
    assert plain.get() == 4
    plain.cancel()
    assert plain.get() is None


def test_watch_full_sees_replaced_parent(h, ns):
    putc(h, "rp.k", "old")
    w = kvs.kvs_watch_async(h, "rp.k", full=True)
    assert w.get() == "old"
    t = KVSTxn(h)
    t.mkdir("rp")
    t.put("rp.k", "new")
    t.commit()
    assert w.get() == "new"
    kvs.put(h, "elsewhere.k", "via-link")
    kvs.put_unlink(h, "rp")
    kvs.put_symlink(h, "rp", "elsewhere")
    kvs.commit(h)
    assert w.get() == "via-link"
    w.cancel()


def test_watch_then_callbacks(h, ns):
    putc(h, "cb", 0)
    seen = []

    def cb(f):
        value = f.get()
        if value is None:
            seen.append("end")
            return
        seen.append(value)
        if value < 3:
            putc(h, "cb", value + 1)  # blocking calls are fine in callbacks
        else:
            f.cancel()

    kvs.kvs_watch_async(h, "cb").then(cb)
    h.reactor_run()
    assert seen == [0, 1, 2, 3, "end"]


def test_watch_cancel_stop(h, ns):
    putc(h, "cs", 0)
    seen = []

    def cb(f):
        seen.append(f.get())
        f.cancel(stop=True)

    kvs.kvs_watch_async(h, "cs").then(cb)
    h.reactor_run()
    assert seen == [0]


def test_watch_in_namespace_waitcreate(h):
    name = f"later-ns-{os.getpid()}"
    w = kvs.kvs_watch_async(h, "k", namespace=name, waitcreate=True)
    raises(errno.ENOTSUP, kvs.kvs_watch_async(h, "k", namespace=name).get)
    kvs.namespace_create(h, name)
    try:
        kvs.put(h, "k", "v")
        kvs.commit(h, namespace=name)
        assert w.get() == "v"
    finally:
        kvs.namespace_remove(h, name)
    raises(errno.ENOTSUP, w.get)  # the namespace went away


def test_watch_gc_cancels(h, ns):
    putc(h, "gc", 1)
    w = kvs.kvs_watch_async(h, "gc")
    assert w.get() == 1
    tag = w._matchtag
    del w
    gc.collect()
    h.rpc("broker.ping", {}).get()  # the cancel and its ENODATA went before this
    assert tag not in h._conn.rpcs


def test_client_killed_mid_watch(h, ns, instance):
    putc(h, "victim", "v0")
    code = textwrap.dedent(f"""
        import sys, flux, flux.kvs as kvs
        h = flux.Flux()
        w = kvs.kvs_watch_async(h, "victim", namespace={ns!r})
        print(w.get(), flush=True)
        sys.stdin.read()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=instance.env())
    try:
        assert proc.stdout.readline().strip() == "v0"
        other = kvs.kvs_watch_async(h, "victim")
        assert other.get() == "v0"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for i in range(1, 4):
        putc(h, "victim", f"v{i}")
    assert [other.get() for _ in range(3)] == ["v1", "v2", "v3"]
    other.cancel()
    assert h.rpc("broker.ping", {}).get()["route"] == "0"


# -- 11.9 checkpoints, persistence -----------------------------------------------------------------
def test_persistence_across_restart(start_instance, tmp_path):
    statedir = tmp_path / "state"
    with start_instance(f"statedir={statedir}") as inst:
        h = inst.handle()
        raises(errno.ENOENT, kvs.kvs_checkpoint_lookup, h)  # fresh: none yet
        kvs.put(h, "p.a", {"x": 1})
        kvs.put(h, "p.b", b"\x00\xffraw")
        kvs.put_symlink(h, "p.l", "p.a")
        kvs.commit(h)
        kvs.namespace_create(h, "keepme")
        kvs.put(h, "nsk", "nsv")
        kvs.commit(h, namespace="keepme")
        kvs.put(h, "synced", 1)
        kvs.commit(h, flags=FLUX_KVS_SYNC)
        cps = kvs.kvs_checkpoint_lookup(h)
        assert cps[0]["version"] == 1 and cps[0]["rootref"].startswith("sha1-")
        seq = cps[0]["sequence"]
        assert isinstance(seq, int) and seq >= 2
        assert kvs.kvs_checkpoint_lookup(h, cache_bypass=True) == cps
        del h
    with start_instance(f"statedir={statedir}") as inst:
        h = inst.handle()
        assert kvs.get(h, "p.a") == {"x": 1}
        assert kvs.get(h, "p.l") == {"x": 1}
        assert kvs.get(h, "p.b") == ""  # read as a C string: stops at the NUL
        assert stored(h, "p.b", "primary") == b"\x00\xffraw"
        assert kvs.get(h, "synced") == 1
        assert "keepme" in kvs.namespace_list(h)
        assert kvs.get(h, "nsk", namespace="keepme") == "nsv"
        assert kvs.kvs_checkpoint_lookup(h)[0]["sequence"] >= seq
        rsp = h.rpc("kvs.getroot", {}).get()
        assert rsp["rootseq"] >= 2


def test_no_persistence_without_statedir(start_instance):
    with start_instance() as inst:
        h = inst.handle()
        putc(h, "ephemeral", 1)
        del h
    with start_instance() as inst:
        raises(errno.ENOENT, kvs.get, inst.handle(), "ephemeral")


# -- wire-level checks ------------------------------------------------------------------------------
def test_malformed_requests_do_not_hurt(h, ns):
    for payload in [{"ops": "junk"}, {"ops": [{"key": "k", "dirent": {"type": "bogus"}}]},
                    {"ops": [{"key": "k", "dirent": {"type": "val", "data": "!!"}}]},
                    {"ops": [{"key": 5}]}]:
        with pytest.raises(OSError) as e:
            h.rpc("kvs.commit", payload).get()
        assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError):
        h.rpc("kvs.lookup", "not json").get()
    with pytest.raises(OSError) as e:
        h.rpc("kvs.lookup", {"key": "k", "flags": "x"}).get()
    assert e.value.errno == errno.EPROTO
    putc(h, "still", "fine")
    assert kvs.get(h, "still") == "fine"


def test_lookup_flags(h, ns):
    from flux.constants import FLUX_KVS_READDIR, FLUX_KVS_READLINK

    kvs.put(h, "lf.v", 1)
    kvs.put_symlink(h, "lf.l", "lf.v")
    kvs.commit(h)
    rsp = h.rpc("kvs.lookup", {"key": "lf.l", "namespace": ns,
                               "flags": FLUX_KVS_READLINK}).get()
    assert rsp["val"] == {"ver": 1, "type": "symlink", "data": {"target": "lf.v"}}
    with pytest.raises(OSError) as e:
        h.rpc("kvs.lookup", {"key": "lf.v", "namespace": ns,
                             "flags": FLUX_KVS_READLINK}).get()
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        h.rpc("kvs.lookup", {"key": "lf.v", "namespace": ns,
                             "flags": FLUX_KVS_READDIR}).get()
    assert e.value.errno == errno.ENOTDIR
    rsp = h.rpc("kvs.lookup", {"key": "lf", "namespace": ns,
                               "flags": FLUX_KVS_READDIR}).get()
    assert sorted(rsp["val"]["data"]) == ["l", "v"]


def test_append_op(h, ns):
    from flux.constants import FLUX_KVS_APPEND

    def app(data):
        h.rpc("kvs.commit", {"namespace": ns, "ops": [{
            "key": "log", "flags": FLUX_KVS_APPEND,
            "dirent": {"ver": 1, "type": "val",
                       "data": base64.b64encode(data).decode()}}]}).get()

    app(b"a")
    app(b"b")
    assert stored(h, "log", ns) == b"ab"


# -- in-process API (what other services of the broker use) --------------------------------------
def test_service_in_process_api(tmp_path):
    import asyncio

    from fluxrm.broker.broker import Broker
    from fluxrm.kvstree import DIR, VAL
    from fluxrm.modules.kvs import KVSService

    async def main(broker):
        svc = KVSService(broker)
        await svc.start()
        assert broker.router.services["kvs-watch"].owner is svc
        done = []
        v1 = svc.commit_ops("primary", [("put", "job.a.eventlog", b"e1\n"),
                                        ("append", "job.a.eventlog", b"e2\n")],
                            on_durable=done.append)
        assert svc.lookup("primary", "job.a.eventlog") == b"e1\ne2\n"  # visible now
        assert done == []  # durable at the end of this loop turn
        await svc.store.durable()
        assert done == [None]
        assert svc.readdir("primary", "job.a") == [("eventlog", VAL, b"e1\ne2\n")]
        assert svc.lookup_entry("primary", "job").type == DIR
        raises(errno.EISDIR, svc.lookup, "primary", "job")
        svc.namespace_create("job-1", 1234)
        v2 = svc.commit_ops("job-1", [("put", "x", b"1")])
        assert (v1, v2) == (1, 1)
        svc.namespace_remove("job-1")
        raises(errno.ENOTSUP, svc.lookup, "job-1", "x")
        await svc.stop()

    broker = Broker({"statedir": str(tmp_path)})
    try:
        asyncio.run(main(broker))
    finally:
        broker.cleanup()
    assert (tmp_path / "content.sqlite").exists()
