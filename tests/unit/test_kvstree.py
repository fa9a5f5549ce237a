"""fluxrm.kvstree: the KVS rules without a broker (sans-I/O)."""

import copy
import errno
import itertools

import pytest
from hypothesis import given, settings, strategies as st

from fluxrm.kvstree import DIR, SYMLINK, VAL, KVSTree, normalize_key
from fluxrm.store import Store


@pytest.fixture
def tree():
    store = Store(":memory:")
    yield KVSTree(store, owner=1234)
    store.close()


def err(fn, *args):
    with pytest.raises(OSError) as e:
        fn(*args)
    return e.value.errno


@pytest.mark.parametrize("key, norm", [
    ("a", "a"), ("a.b", "a.b"), ("..a..b.", "a.b"), (".", ""), ("...", ""),
    (".a", "a"), ("a.", "a"),
])
def test_normalize(key, norm):
    assert normalize_key(key) == norm


@pytest.mark.parametrize("key", ["", None, 3])
def test_normalize_invalid(key):
    assert err(normalize_key, key) == errno.EINVAL


def test_primary_exists(tree):
    assert tree.namespace_info("primary") == {"owner": 1234, "flags": 0, "version": 0}
    assert tree.lookup("primary", ".").type == DIR
    assert tree.readdir("primary", ".") == []


def test_put_creates_parents_and_replaces_values(tree):
    tree.commit("primary", [("put", "a", b"1")])
    version, keys = tree.commit("primary", [("put", "a.x", b"2")])
    assert version == 2 and keys == ["a.x"]
    assert tree.lookup("primary", "a").type == DIR
    assert tree.lookup("primary", "..a..x.").value == b"2"
    tree.commit("primary", [("put", "a", b"3")])  # a dir replaced by a value
    assert tree.lookup("primary", "a").value == b"3"
    assert err(tree.lookup, "primary", "a.x") == errno.ENOENT


def test_path_through_value_is_enoent(tree):
    tree.commit("primary", [("put", "v", b"1")])
    assert err(tree.lookup, "primary", "v.w") == errno.ENOENT
    assert err(tree.readdir, "primary", "v") == errno.ENOTDIR


def test_mkdir_replaces_contents(tree):
    tree.commit("primary", [("put", "d.x", b"1"), ("put", "d.y.z", b"2")])
    tree.commit("primary", [("mkdir", "d")])
    assert tree.readdir("primary", "d") == []
    assert err(tree.lookup, "primary", "d.y.z") == errno.ENOENT


def test_unlink(tree):
    tree.commit("primary", [("put", "d.x", b"1"), ("put", "d.y.z", b"2"),
                            ("put", "dd", b"3")])
    tree.commit("primary", [("unlink", "d"), ("unlink", "missing"),
                            ("unlink", "dd.below.value")])
    assert [n for n, _t, _v in tree.readdir("primary", ".")] == ["dd"]


def test_ops_apply_in_order(tree):
    tree.commit("primary", [("put", "k", b"1"), ("unlink", "k"), ("put", "k", b"2"),
                            ("mkdir", "j"), ("put", "j.a", b"x")])
    assert tree.lookup("primary", "k").value == b"2"
    assert tree.readdir("primary", "j") == [("a", VAL, b"x")]


def test_commit_is_atomic(tree):
    tree.commit("primary", [("put", "keep", b"1")])
    assert err(tree.commit, "primary", [("put", "x", b"1"), ("put", ".", b"2")]) \
        == errno.EINVAL
    assert err(tree.commit, "primary", [("put", "d.x", b"1"), ("append", "d", b"2")]) \
        == errno.EISDIR
    assert err(tree.lookup, "primary", "x") == errno.ENOENT
    assert err(tree.lookup, "primary", "d") == errno.ENOENT
    assert tree.version("primary") == 1


@pytest.mark.parametrize("op", [
    ("put", ".", b"1"), ("mkdir", "."), ("unlink", ".."), ("symlink", ".", "a"),
    ("put", "", b"1"), ("put", "k", "not bytes"), ("bogus", "k"), ("put", "k"),
    ("symlink", "k", 5), "junk",
])
def test_invalid_ops(tree, op):
    assert err(tree.commit, "primary", [op]) == errno.EINVAL


def test_append(tree):
    tree.commit("primary", [("append", "log", b"a"), ("append", "log", b"b")])
    tree.commit("primary", [("append", "log", b"c")])
    assert tree.lookup("primary", "log").value == b"abc"


def test_symlinks(tree):
    tree.commit("primary", [("put", "a.b.c", b"1"), ("symlink", "l", "a.b"),
                            ("symlink", "dangle", "nowhere"), ("symlink", "root", ".")])
    assert tree.lookup("primary", "l.c").value == b"1"
    assert tree.lookup("primary", "l").key == "a.b"
    assert tree.lookup("primary", "l", follow=False).type == SYMLINK
    assert tree.readdir("primary", "l") == [("c", VAL, b"1")]
    assert err(tree.lookup, "primary", "dangle") == errno.ENOENT
    assert tree.lookup("primary", "root.a.b.c").value == b"1"
    # writes through a symlink land in the target
    tree.commit("primary", [("put", "l.d", b"2"), ("put", "dangle.x", b"3")])
    assert tree.lookup("primary", "a.b.d").value == b"2"
    assert tree.lookup("primary", "nowhere.x").value == b"3"
    # a put on the link itself replaces the link
    tree.commit("primary", [("put", "l", b"4")])
    assert tree.lookup("primary", "a.b.d").value == b"2"
    # unlink through a link
    tree.commit("primary", [("symlink", "l2", "a"), ("unlink", "l2.b.d")])
    assert err(tree.lookup, "primary", "a.b.d") == errno.ENOENT


def test_symlink_loop(tree):
    tree.commit("primary", [("symlink", "x", "y"), ("symlink", "y", "x")])
    assert err(tree.lookup, "primary", "x") == errno.ELOOP
    assert err(tree.commit, "primary", [("put", "x.z", b"1")]) == errno.ELOOP


def test_namespaces(tree):
    tree.namespace_create("ns", 42)
    assert err(tree.namespace_create, "ns", 42) == errno.EEXIST
    tree.commit("ns", [("put", "k", b"1")])
    assert err(tree.lookup, "primary", "k") == errno.ENOENT
    assert tree.lookup("ns", "k").value == b"1"
    assert tree.version("ns") == 1 and tree.version("primary") == 0
    assert tree.namespace_remove("ns") is True
    assert tree.namespace_remove("ns") is False
    assert err(tree.lookup, "ns", "k") == errno.ENOTSUP
    assert err(tree.commit, "ns", [("put", "k", b"1")]) == errno.ENOTSUP
    assert err(tree.namespace_remove, "primary") == errno.ENOTSUP
    tree.namespace_create("ns", 42)  # recreated empty
    assert tree.readdir("ns", ".") == []


def test_persistence(tmp_path):
    path = tmp_path / "kvs.sqlite"
    store = Store(path)
    tree = KVSTree(store)
    tree.namespace_create("other", 7)
    tree.commit("primary", [("put", "a.b", b"1"), ("symlink", "s", "a")])
    tree.checkpoint_put()
    store.close()
    store = Store(path)
    tree = KVSTree(store)
    assert tree.lookup("primary", "s.b").value == b"1"
    assert tree.version("primary") == 1
    assert "other" in tree.namespaces
    assert tree.checkpoint_get()[0]["sequence"] == 1
    store.close()


def test_checkpoint_absent(tree):
    assert err(tree.checkpoint_get) == errno.ENOENT
    cp = tree.checkpoint_put()
    assert cp[0]["version"] == 1 and cp[0]["rootref"].startswith("sha1-")


def test_children_sorted_bytewise(tree):
    names = ["b", "a", "B", "é", "a1", "aa"]
    tree.commit("primary", [("put", f"d.{n}", b"") for n in names])
    got = [n for n, _t, _v in tree.readdir("primary", "d")]
    assert got == sorted(names, key=lambda s: s.encode())


# -- model-based property test -----------------------------------------------------
COMPS = ["a", "b", "c"]
KEYS = [".".join(p) for n in (1, 2, 3) for p in itertools.product(COMPS, repeat=n)]


class ModelError(Exception):
    pass


def model_apply(root, op):
    kind, key = op[0], op[1]
    comps = key.split(".")
    node = root
    if kind == "unlink":
        for c in comps[:-1]:
            node = node.get(c)
            if not isinstance(node, dict):
                return
        node.pop(comps[-1], None)
        return
    for c in comps[:-1]:
        if not isinstance(node.get(c), dict):
            node[c] = {}
        node = node[c]
    last = comps[-1]
    if kind == "put":
        node[last] = op[2]
    elif kind == "mkdir":
        node[last] = {}
    elif kind == "append":
        old = node.get(last)
        if isinstance(old, dict):
            raise ModelError
        node[last] = (old or b"") + op[2]


def model_lookup(root, key):
    node = root
    for c in key.split("."):
        if not isinstance(node, dict) or c not in node:
            return None
        node = node[c]
    return node


op_strategy = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(KEYS), st.binary(max_size=3)),
    st.tuples(st.just("append"), st.sampled_from(KEYS), st.binary(max_size=3)),
    st.tuples(st.just("mkdir"), st.sampled_from(KEYS)),
    st.tuples(st.just("unlink"), st.sampled_from(KEYS)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(op_strategy, min_size=1, max_size=4), max_size=6))
def test_matches_model(commits):
    store = Store(":memory:")
    tree = KVSTree(store)
    model = {}
    for ops in commits:
        trial = copy.deepcopy(model)
        try:
            for op in ops:
                model_apply(trial, op)
        except ModelError:
            assert err(tree.commit, "primary", ops) == errno.EISDIR
            continue
        tree.commit("primary", ops)
        model = trial
    for key in KEYS:
        want = model_lookup(model, key)
        if want is None:
            assert err(tree.lookup, "primary", key) == errno.ENOENT
        elif isinstance(want, dict):
            got = tree.readdir("primary", key)
            assert [n for n, _t, _v in got] == sorted(want)
            for name, type_, value in got:
                sub = want[name]
                assert type_ == (DIR if isinstance(sub, dict) else VAL)
                if type_ == VAL:
                    assert value == sub
        else:
            assert tree.lookup("primary", key).value == want
    store.close()
