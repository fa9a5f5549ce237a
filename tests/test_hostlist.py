"""Tests for flux.hostlist (RFC 29 hostlists), spec section 13.3."""

import errno
import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flux.hostlist import Hostlist, decode
from flux.idset import IDset

# --- decoding ---------------------------------------------------------------


@pytest.mark.parametrize(
    "s, hosts",
    [
        ("", []),
        ("foo", ["foo"]),
        ("foo,bar", ["foo", "bar"]),
        ("foo bar\tbaz\n", ["foo", "bar", "baz"]),
        ("foo,,bar, ,", ["foo", "bar"]),
        ("foo[3,1,2]", ["foo3", "foo1", "foo2"]),
        ("foo[1-3,2]", ["foo1", "foo2", "foo3", "foo2"]),
        ("foo[01-03]", ["foo01", "foo02", "foo03"]),
        ("foo[1-1]", ["foo1"]),
        ("[1-3]", ["1", "2", "3"]),
        ("a[1-2]b[1-2]", ["a1b[1-2]", "a2b[1-2]"]),
        ("foo[1-2]-ib", ["foo1-ib", "foo2-ib"]),
        ("foo[1,2] bar[3]", ["foo1", "foo2", "bar3"]),
    ],
)
def test_decode(s, hosts):
    assert Hostlist(s).expand() == hosts
    assert decode(s).expand() == hosts


def test_decode_width():
    hl = Hostlist("foo[01-10]")
    assert hl.expand() == [f"foo{i:02d}" for i in range(1, 11)]
    assert Hostlist("foo[8-10]").expand() == ["foo8", "foo9", "foo10"]


@pytest.mark.parametrize(
    "s",
    [
        "[]", "foo[]", "foo[", "foo[1,3", "foo[[1,3]", "foo]", "foo[x-y]",
        "foo[0-1,2--5]", "foo[5-3]", "foo[1,,2]", "foo[1-]", "foo[-1]",
        "foo[1 ,2]", "a,b[1]]", "foo[1]bar[",
    ],
)
def test_decode_invalid(s):
    with pytest.raises(ValueError) as exc:
        Hostlist(s)
    assert str(exc.value) == f"Invalid hostlist: '{s}'"


# --- encoding ---------------------------------------------------------------


@pytest.mark.parametrize(
    "s, encoded",
    [
        ("foo0,foo1", "foo[0-1]"),
        ("node1,node2,node3,node5", "node[1-3,5]"),
        ("node[1-3,5]", "node[1-3,5]"),
        ("foo[0-3,7-9,1],bar,bar[0-1]", "foo[0-3,7-9,1],bar,bar[0-1]"),
        ("foo1,bar,foo2", "foo1,bar,foo2"),
        ("foo0", "foo0"),
        ("1,2,3", "[1-3]"),
        ("foo9,foo10", "foo[9-10]"),
        ("foo08,foo09,foo10", "foo[08-10]"),
        ("foo[0-1],foo[00-01]", "foo[0-1,00-01]"),
        ("foo1-ib,foo2-ib", "foo1-ib,foo2-ib"),
        ("foo[1-2]-ib", "foo1-ib,foo2-ib"),
        ("foo3,foo2,foo1", "foo[3,2,1]"),
        ("foo1,foo1", "foo[1,1]"),
        ("foo9,foo010", "foo[9,010]"),
        ("foo99,foo100", "foo[99-100]"),
        ("", ""),
    ],
)
def test_encode(s, encoded):
    hl = Hostlist(s)
    assert str(hl) == encoded
    assert repr(hl) == f"Hostlist('{encoded}')"


# --- construction -----------------------------------------------------------


def test_construct_iterable():
    hl = Hostlist(["foo[1-2]", "bar", "foo3"])
    assert hl.expand() == ["foo1", "foo2", "bar", "foo3"]
    assert str(Hostlist(("a1", "a2"))) == "a[1-2]"
    assert Hostlist(Hostlist("x[1-3]")).expand() == ["x1", "x2", "x3"]
    with pytest.raises(TypeError):
        Hostlist(["foo", 1])
    with pytest.raises(ValueError, match=r"Invalid hostlist: 'foo\['"):
        Hostlist(["bar", "foo["])


@pytest.mark.parametrize("arg", [1, 1.5, None, b"foo"])
def test_construct_bad_type(arg):
    with pytest.raises(TypeError):
        Hostlist(arg)


def test_len_iter_copy():
    hl = Hostlist("foo[1-3],bar")
    assert len(hl) == 4 and hl.count() == 4
    assert list(hl) == ["foo1", "foo2", "foo3", "bar"]
    cp = hl.copy()
    assert cp is not hl and cp.expand() == hl.expand()
    cp.append("baz")
    assert len(hl) == 4
    assert not Hostlist()


def test_no_eq():
    a, b = Hostlist("foo1"), Hostlist("foo1")
    assert a != b
    assert a == a


# --- indexing ---------------------------------------------------------------


def test_getitem():
    hl = Hostlist("foo[0-9]")
    assert hl[0] == "foo0"
    assert hl[9] == "foo9"
    assert hl[-1] == "foo9"
    assert hl[-10] == "foo0"
    for bad in (10, -11, 100):
        with pytest.raises(IndexError, match="^Hostlist index out of range$"):
            hl[bad]
    sub = hl[1:4]
    assert isinstance(sub, Hostlist) and str(sub) == "foo[1-3]"
    assert str(hl[::-3]) == "foo[9,6,3,0]"
    assert str(hl[[3, 1, 2]]) == "foo[3,1-2]"
    assert str(hl[IDset("0,5-6")]) == "foo[0,5-6]"
    assert str(hl[(i for i in (9, 9))]) == "foo[9,9]"
    with pytest.raises(IndexError):
        hl[[1, 20]]
    for bad in ("1", 1.0, None, ["1"]):
        with pytest.raises(TypeError):
            hl[bad]


def test_find_and_contains():
    hl = Hostlist("foo[1-3],bar,foo2")
    assert hl.find("foo1") == 0
    assert hl.find("foo2") == 1
    assert hl.find("bar") == 3
    with pytest.raises(FileNotFoundError) as exc:
        hl.find("foo4")
    assert exc.value.errno == errno.ENOENT
    for bad in ("foo[1-2]", "foo[1]", "foo]", ""):
        with pytest.raises(OSError) as exc:
            hl.find(bad)
        assert exc.value.errno == errno.EINVAL
    assert "foo3" in hl
    assert "foo9" not in hl
    with pytest.raises(ValueError):
        1 in hl
    with pytest.raises(ValueError):
        hl.find(None)


def test_index():
    hl = Hostlist("foo[1-10]")
    assert hl.index("foo1") == [0]
    assert hl.index("foo[3,1],foo10") == [2, 0, 9]
    assert hl.index(Hostlist("foo5")) == [4]
    assert hl.index(["foo2", "foo4"]) == [1, 3]
    with pytest.raises(FileNotFoundError, match="host 'foo11' not found") as exc:
        hl.index("foo11")
    assert exc.value.errno == errno.ENOENT
    assert exc.value.strerror == "host 'foo11' not found"
    with pytest.raises(FileNotFoundError) as exc:
        hl.index("foo[1,11-12],bar")
    assert exc.value.strerror == "hosts 'foo[11-12],bar' not found"
    assert hl.index("foo[1,11-12],bar", ignore_nomatch=True) == [0]


# --- modification -----------------------------------------------------------


def test_append():
    hl = Hostlist("foo[0-3]")
    assert hl.append("foo[7-9]") == 3
    assert str(hl) == "foo[0-3,7-9]"
    assert hl.append() == 0
    assert hl.append("bar", Hostlist("baz[1-2]"), ["qux"]) == 4
    assert str(hl) == "foo[0-3,7-9],bar,baz[1-2],qux"
    with pytest.raises(ValueError):
        hl.append("foo[")
    with pytest.raises(TypeError):
        hl.append(3)


def test_delete():
    hl = Hostlist("foo[1-3],foo2,bar")
    assert hl.delete("foo2") == 1
    assert str(hl) == "foo[1,3,2],bar"
    assert hl.delete("foo[2-3],nothere") == 2
    assert str(hl) == "foo1,bar"
    assert hl.delete("nope") == 0
    assert hl.delete(Hostlist("bar")) == 1
    assert str(hl) == "foo1"
    hl = Hostlist("a,a,a")
    assert hl.delete("a,a") == 2 and str(hl) == "a"
    for bad in ("foo[", "foo[5-3]"):
        with pytest.raises(OSError) as exc:
            hl.delete(bad)
        assert exc.value.errno == errno.EINVAL


# --- sort / uniq ------------------------------------------------------------


def test_sort():
    hl = Hostlist("foo10,foo9,bar2,foo1,bar10,baz,foo")
    assert hl.sort() is hl
    assert str(hl) == "bar[2,10],baz,foo,foo[1,9-10]"
    assert Hostlist("foo10,foo01,foo9").sort().expand() == ["foo9", "foo01", "foo10"]
    assert str(Hostlist("foo[5-7],foo[6-8]").sort()) == "foo[5-6,6-7,7-8]"
    assert Hostlist("foo1,fo,fooa,foo").sort().expand() == ["fo", "foo", "foo1", "fooa"]
    assert str(Hostlist("b,a,b").sort()) == "a,b,b"


def test_uniq():
    hl = Hostlist("foo[1-7,1-7,1-7]")
    assert hl.uniq() is hl
    assert str(hl) == "foo[1-7]"
    assert str(Hostlist("b2,a1,b2,a1,c").uniq()) == "a1,b2,c"
    assert str(Hostlist("foo1,foo01,foo1").uniq()) == "foo[1,01]"
    assert str(Hostlist().uniq()) == ""


# --- properties -------------------------------------------------------------

host_st = st.builds(
    lambda prefix, digits, suffix: prefix + digits + suffix,
    st.sampled_from(["", "foo", "fo", "bar", "n-", "x1y"]),
    st.one_of(st.just(""), st.from_regex(r"[0-9]{1,3}", fullmatch=True)),
    st.sampled_from(["", "", "", "-ib", "a"]),
).filter(bool)
hosts_st = st.lists(host_st, max_size=30)


def _pad(num, width):
    return max(width - len(str(num)), 0)


def _reference_cmp(a, b):
    """Pairwise host order as stated in the spec (prefix, plain, width rule)."""

    def split(h):
        digits = len(h) - len(h.rstrip("0123456789"))
        if digits == 0:
            return h.encode(), None, None
        return h[:-digits].encode(), int(h[-digits:]), digits

    pa, na, wa = split(a)
    pb, nb, wb = split(b)
    if pa != pb:
        return -1 if pa < pb else 1
    if na is None or nb is None:
        return (na is not None) - (nb is not None)
    compatible = wa == wb or not (
        _pad(na, wa) != _pad(na, wb) and _pad(nb, wb) != _pad(nb, wa)
    )
    if compatible:
        return (na > nb) - (na < nb)
    return wa - wb


@settings(max_examples=300, deadline=None)
@given(hosts_st)
def test_prop_round_trip(hosts):
    hl = Hostlist(hosts)
    assert hl.expand() == hosts
    text = str(hl)
    assert Hostlist(text).expand() == hosts


@settings(max_examples=300, deadline=None)
@given(hosts_st)
def test_prop_sort(hosts):
    hl = Hostlist(hosts).sort()
    out = hl.expand()
    assert sorted(out) == sorted(hosts)
    for a, b in zip(out, out[1:]):
        assert _reference_cmp(a, b) <= 0
    assert sorted(hosts, key=functools.cmp_to_key(_reference_cmp)) == out
    assert Hostlist(str(hl)).sort().expand() == out


@settings(max_examples=300, deadline=None)
@given(hosts_st)
def test_prop_uniq(hosts):
    out = Hostlist(hosts).uniq().expand()
    assert len(out) == len(set(out))
    assert set(out) == set(hosts)
    assert out == list(dict.fromkeys(Hostlist(hosts).sort().expand()))
    assert Hostlist(out).uniq().expand() == out


@settings(max_examples=200, deadline=None)
@given(hosts_st, st.data())
def test_prop_find_delete(hosts, data):
    hl = Hostlist(hosts)
    for h in hosts:
        assert hl.find(h) == hosts.index(h)
        assert h in hl
    if hosts:
        victim = data.draw(st.sampled_from(hosts))
        expected = list(hosts)
        expected.remove(victim)
        assert hl.delete(victim) == 1
        assert hl.expand() == expected
