"""Tests for flux.idset (RFC 22 idsets), spec section 13.1-13.2."""

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flux.idset import (
    IDSET_FLAG_BRACKETS,
    IDSET_FLAG_RANGE,
    IDSET_INVALID_ID,
    IDset,
    decode,
)

MAX_ID = 2**31 - 1


def test_constants():
    assert IDSET_FLAG_BRACKETS == 2
    assert IDSET_FLAG_RANGE == 4
    assert IDSET_INVALID_ID == 4294967294


# --- decoding ---------------------------------------------------------------


@pytest.mark.parametrize(
    "s, ids",
    [
        ("", []),
        ("0", [0]),
        ("0-3", [0, 1, 2, 3]),
        ("0-3,7", [0, 1, 2, 3, 7]),
        ("1,,3", [1, 3]),
        (",", []),
        ("[0-3]", [0, 1, 2, 3]),
        ("[]", []),
        ("0-3,4-5", [0, 1, 2, 3, 4, 5]),
        ("10,20,30-31", [10, 20, 30, 31]),
        (str(MAX_ID), [MAX_ID]),
    ],
)
def test_decode_valid(s, ids):
    assert IDset(s).expand() == ids
    assert decode(s).expand() == ids


@pytest.mark.parametrize(
    "s",
    [
        "3,1", "1,1", "0-3,2", "3-3", "5-3", "01", "0, 1", "[0",
        " 0", "0 ", "-1", "+1", "1-", "-", "a", "0-01", "[[0]]", "0]",
        "1-2-3", str(2**31), "0-2147483648", "\u0661",
    ],
)
def test_decode_invalid(s):
    with pytest.raises(ValueError) as exc:
        IDset(s)
    assert str(exc.value) == f"IDset(): Invalid argument: {s}"


# --- encoding ---------------------------------------------------------------


def test_encode_flags():
    s = IDset("0-3")
    assert str(s) == "0-3"
    assert s.encode(IDSET_FLAG_RANGE | IDSET_FLAG_BRACKETS) == "[0-3]"
    assert s.encode(IDSET_FLAG_BRACKETS) == "[0,1,2,3]"
    assert s.encode(0) == "0,1,2,3"
    assert IDset("3,4").encode() == "3-4"
    assert IDset("5").encode(IDSET_FLAG_RANGE | IDSET_FLAG_BRACKETS) == "5"
    assert IDset("5").encode(IDSET_FLAG_BRACKETS) == "5"
    assert IDset("").encode(IDSET_FLAG_RANGE | IDSET_FLAG_BRACKETS) == ""
    assert IDset("1,3").encode(IDSET_FLAG_BRACKETS) == "[1,3]"


def test_str_uses_flags_repr_does_not():
    s = IDset("0-3", flags=IDSET_FLAG_BRACKETS)
    assert str(s) == "[0,1,2,3]"
    assert repr(s) == "IDset('0-3')"
    assert s.set_flags(IDSET_FLAG_RANGE | IDSET_FLAG_BRACKETS) is s
    assert str(s) == "[0-3]"
    assert s.encode(flags=0) == "0,1,2,3"
    assert s.encode() == "[0-3]"
    # copy() and operation results revert to RANGE
    assert str(s.copy()) == "0-3"
    assert str(s | "7") == "0-3,7"
    assert str(s & "1-2") == "1-2"
    assert str(s - "0") == "1-3"
    # in-place operations keep the flags
    s += "5"
    assert str(s) == "[0-3,5]"


def test_bad_flags():
    with pytest.raises(OSError) as exc:
        IDset("1").encode(8)
    assert exc.value.errno == errno.EINVAL
    with pytest.raises(TypeError):
        IDset("1").set_flags("x")


# --- construction -----------------------------------------------------------


def test_construct_from_other_types():
    a = IDset("1-3")
    b = IDset(a)
    assert b == a and b is not a
    b.set(9)
    assert str(a) == "1-3"
    assert str(IDset(5)) == "5"
    assert str(IDset(0)) == "0"
    assert str(IDset()) == ""
    assert str(IDset([42, 41, 40])) == "40-42"
    assert str(IDset({7, 1, 2})) == "1-2,7"
    assert str(IDset(range(3, 9))) == "3-8"
    assert str(IDset(x for x in (3, 1))) == "1,3"
    assert str(IDset([])) == ""


@pytest.mark.parametrize("arg", [[1, 1], [-1, 2], [2**31]])
def test_construct_bad_iterable(arg):
    with pytest.raises(ValueError, match=r"^IDset\(\): Invalid argument: "):
        IDset(arg)


@pytest.mark.parametrize("arg", [None, 1.0, 2.5, object()])
def test_construct_bad_type(arg):
    with pytest.raises(TypeError):
        IDset(arg)


def test_construct_int_out_of_range():
    with pytest.raises(ValueError):
        IDset(-1)
    with pytest.raises(OSError) as exc:
        IDset(2**31)
    assert exc.value.errno == errno.ERANGE


# --- queries ----------------------------------------------------------------


def test_len_iter_bool():
    s = IDset("1-3,7")
    assert len(s) == 4 and s.count() == 4
    assert list(s) == [1, 2, 3, 7]
    assert s.expand() == [1, 2, 3, 7]
    assert s
    assert not IDset()
    assert len(IDset()) == 0


def test_membership():
    s = IDset("1-3,7")
    for i in range(10):
        expected = i in (1, 2, 3, 7)
        assert (i in s) is expected
        assert s[i] is expected
        assert s.test(i) is expected
    assert MAX_ID not in s
    assert 2**40 not in s
    with pytest.raises(TypeError):
        "1" in s
    with pytest.raises(TypeError):
        s[1.0]
    with pytest.raises(TypeError):
        s.test(None)
    with pytest.raises(ValueError):
        -1 in s
    with pytest.raises(ValueError):
        s[-1]
    with pytest.raises(ValueError):
        s.test(-5)


def test_first_last_next():
    s = IDset("3-5,9")
    assert s.first() == 3
    assert s.last() == 9
    assert s.next(0) == 3
    assert s.next(3) == 4
    assert s.next(5) == 9
    assert s.next(9) == IDSET_INVALID_ID
    assert s.next(2**40) == IDSET_INVALID_ID
    e = IDset()
    assert e.first() == IDSET_INVALID_ID
    assert e.last() == IDSET_INVALID_ID
    assert e.next(0) == IDSET_INVALID_ID
    # walking with first/next visits every id
    ids, i = [], s.first()
    while i != IDSET_INVALID_ID:
        ids.append(i)
        i = s.next(i)
    assert ids == [3, 4, 5, 9]


# --- modification -----------------------------------------------------------


def test_setitem_spec_example():
    s = IDset("0-9")
    s[10] = True
    s[21] = 1
    s[5] = False
    assert str(s) == "0-4,6-10,21"
    s[21] = 0
    assert str(s) == "0-4,6-10"


@pytest.mark.parametrize("value", [2, -1, None, "1", 1.0])
def test_setitem_bad_value(value):
    s = IDset()
    with pytest.raises(TypeError):
        s[1] = value


def test_set_clear():
    s = IDset()
    assert s.set(3) is s
    assert s.set(5, 8) is s
    assert str(s) == "3,5-8"
    assert s.set(4) is s and str(s) == "3-8"
    assert s.clear(6, 7) is s and str(s) == "3-5,8"
    assert s.clear(100) is s and str(s) == "3-5,8"
    s.set(0, MAX_ID)
    assert len(s) == 2**31
    s.clear(1, MAX_ID - 1)
    assert str(s) == f"0,{MAX_ID}"
    with pytest.raises(ValueError):
        s.set(5, 4)
    with pytest.raises(ValueError):
        s.clear(5, 4)
    with pytest.raises(ValueError):
        s.set(-1)
    with pytest.raises(TypeError):
        s.set("1")


@pytest.mark.parametrize("method", ["set", "clear"])
@pytest.mark.parametrize(
    "args, code",
    [
        ((2**31,), errno.ERANGE),
        ((0, 2**31), errno.ERANGE),
        ((IDSET_INVALID_ID - 1,), errno.ERANGE),
        ((IDSET_INVALID_ID,), errno.EINVAL),
        ((0, IDSET_INVALID_ID), errno.EINVAL),
        ((2**32,), errno.EINVAL),
    ],
)
def test_set_clear_out_of_range(method, args, code):
    s = IDset("1")
    with pytest.raises(OSError) as exc:
        getattr(s, method)(*args)
    assert exc.value.errno == code
    assert str(s) == "1"


def test_setitem_out_of_range():
    s = IDset()
    with pytest.raises(OSError) as exc:
        s[2**31] = True
    assert exc.value.errno == errno.ERANGE
    with pytest.raises(OSError) as exc:
        s[IDSET_INVALID_ID] = True
    assert exc.value.errno == errno.EINVAL


# --- set operations ---------------------------------------------------------


def test_spec_difference_example():
    assert str(IDset("0-10").difference("5-7", "1-3")) == "0,4,8-10"


def test_add_subtract_in_place():
    s = IDset("1-3")
    assert s.add("5") is s
    assert s.add(IDset("7-8")) is s
    assert s.add([10, 11]) is s
    assert s.add(0) is s
    assert str(s) == "0-3,5,7-8,10-11"
    assert s.subtract("2-7") is s
    assert s.subtract(10) is s
    assert s.subtract([11]) is s
    assert str(s) == "0-1,8"
    t = s
    t += "4"
    assert t is s and str(s) == "0-1,4,8"
    t -= IDset("0-1")
    assert t is s and str(s) == "4,8"


def test_operations_return_new_sets():
    a = IDset("0-5")
    b = IDset("4-9")
    for result, expected in [
        (a + b, "0-9"),
        (a | b, "0-9"),
        (a & b, "4-5"),
        (a - b, "0-3"),
        (a.union(b, "20"), "0-9,20"),
        (a.intersect(b, "5-30"), "5"),
        (a.intersect(), "0-5"),
        (a.union(), "0-5"),
        (a.difference(), "0-5"),
        (a | 7, "0-5,7"),
        (a & [1, 2, 9], "1-2"),
        ("7" + a, "0-5,7"),
        ("3-4" - IDset("4"), "3"),
    ]:
        assert isinstance(result, IDset)
        assert result is not a and result is not b
        assert str(result) == expected
    assert str(a) == "0-5" and str(b) == "4-9"


def test_equality():
    assert IDset("1-3") == IDset("1,2,3")
    assert IDset("1-3") != IDset("1-4")
    assert IDset("1-3").equal(IDset("1-3"))
    assert not IDset("1-3").equal(IDset("1"))
    assert IDset() == IDset("")
    for other in ["1-3", [1, 2, 3], 1, None]:
        with pytest.raises(TypeError):
            IDset("1-3") == other
        with pytest.raises(TypeError):
            IDset("1-3") != other
        with pytest.raises(TypeError):
            IDset("1-3").equal(other)
        with pytest.raises(TypeError):
            other == IDset("1-3")


def test_not_hashable():
    with pytest.raises(TypeError):
        hash(IDset("1"))
    with pytest.raises(TypeError):
        {IDset("1")}


# --- properties -------------------------------------------------------------

ids_st = st.one_of(
    st.sets(st.integers(0, 64), max_size=40),
    st.sets(st.integers(0, MAX_ID), max_size=20),
)
flags_st = st.sampled_from(
    [0, IDSET_FLAG_RANGE, IDSET_FLAG_BRACKETS, IDSET_FLAG_RANGE | IDSET_FLAG_BRACKETS]
)


@settings(max_examples=200, deadline=None)
@given(ids_st, flags_st)
def test_prop_round_trip(ids, flags):
    s = IDset(ids)
    assert s.expand() == sorted(ids)
    assert len(s) == len(ids)
    text = s.encode(flags)
    assert IDset(text) == s
    assert eval(repr(s), {"IDset": IDset}) == s
    if flags & IDSET_FLAG_BRACKETS and len(ids) > 1:
        assert text.startswith("[") and text.endswith("]")
    else:
        assert "[" not in text
    if not flags & IDSET_FLAG_RANGE:
        assert "-" not in text


@settings(max_examples=200, deadline=None)
@given(ids_st, ids_st, ids_st)
def test_prop_set_operations(a, b, c):
    x, y = IDset(a), IDset(b)
    assert set(x | y) == a | b
    assert set(x & y) == a & b
    assert set(x - y) == a - b
    assert set(x.union(b, c)) == a | b | c
    assert set(x.intersect(b, c)) == a & b & c
    assert set(x.difference(b, c)) == a - b - c
    assert set(x.copy().add(y)) == a | b
    assert set(x.copy().subtract(y)) == a - b
    assert (x == y) == (a == b)
    assert x.first() == (min(a) if a else IDSET_INVALID_ID)
    assert x.last() == (max(a) if a else IDSET_INVALID_ID)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 80), st.integers(0, 10)),
        max_size=30,
    ),
    st.integers(0, 100),
)
def test_prop_set_clear_model(ops, probe):
    s, model = IDset(), set()
    for do_set, start, n in ops:
        ids = set(range(start, start + n + 1))
        if do_set:
            s.set(start, start + n)
            model |= ids
        else:
            s.clear(start, start + n)
            model -= ids
        # internal ranges stay sorted, disjoint and non-adjacent
        r = s._ranges
        assert all(lo <= hi for lo, hi in r)
        assert all(r[i][1] + 1 < r[i + 1][0] for i in range(len(r) - 1))
    assert s.expand() == sorted(model)
    assert (probe in s) == (probe in model)
    later = [i for i in model if i > probe]
    assert s.next(probe) == (min(later) if later else IDSET_INVALID_ID)
