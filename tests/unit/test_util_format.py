"""Tests for the formatting half of flux.util (spec section 12.2, 12.3):
UtilDatetime, UtilFormatter, OutputFormat and DisplayValue."""

import time
from datetime import datetime
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flux.util import DisplayValue, OutputFormat, UtilDatetime, UtilFormatter

HEADINGS = {"s": "STRING", "i": "INTEGER", "f": "FLOAT", "d": "DATETIME"}


def item(s="foo", i=42, f=1234.567, d=978336000.0):
    return SimpleNamespace(s=s, i=i, f=f, d=d)


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def fmt(spec, *args, **kwargs):
    return UtilFormatter().format(spec, *args, **kwargs)


# ---------------------------------------------------------------- UtilDatetime


def test_utildatetime_examples():
    epoch = UtilDatetime.fromtimestamp(0.0)
    t = UtilDatetime(2021, 6, 10, 8, 0)
    assert f"{epoch:::h}" == "-"
    assert f"{epoch:%FT%T::<6h}" == "-     "
    assert f"{epoch}" == ""
    assert f"{t:%b%d %R::>12}" == " Jun10 08:00"
    assert f"{t}" == "2021-06-10T08:00:00"
    assert f"{t:%H:%M}" == "08:00"
    assert f"{t:::h}" == "2021-06-10T08:00:00"


def test_utildatetime_aware_epoch_renders_empty():
    epoch = UtilDatetime.fromtimestamp(0.0).astimezone()
    assert f"{epoch:::>3h}" == "  -"


# --------------------------------------------------------------- UtilFormatter


def test_conversion_d(utc):
    assert fmt("{0!d:%H:%M::>8}", 3600.0) == "   01:00"
    assert fmt("{0!d}", 978336000.0) == "2001-01-01T08:00:00"
    assert fmt("{0!d}", "") == ""
    assert fmt("{0!d:::h}", "") == "-"
    assert isinstance(UtilFormatter().convert_field(5.0, "d"), UtilDatetime)


def test_conversion_D(utc):
    assert fmt("{0!D}", 978336000.0) == "2001-01-01T08:00:00"
    for falsy in (0, 0.0, "", None):
        assert fmt("{0!D}", falsy) == ""


def test_conversion_F():
    assert fmt("{0!F}", 90) == "1.5m"
    assert fmt("{0!F}", "") == ""
    assert fmt("{0!F:>6}", 1) == "1.000s"


def test_conversion_H():
    assert fmt("{0!H}", 3725) == "1:02:05"
    assert fmt("{0!H}", 90000) == "1 day, 1:00:00"
    assert fmt("{0!H}", 0.2) == "0:00:01"
    assert fmt("{0!H}", 0) == "0:00:00"
    assert fmt("{0!H}", "") == ""


def test_conversion_P():
    assert fmt("{0!P}", 0.001) == "0.10%"
    assert fmt("{0!P}", 0.5) == "50%"
    assert fmt("{0!P}", 1) == "100%"
    assert fmt("{0!P}", 0) == "0%"
    assert fmt("{0!P}", "") == ""


@pytest.mark.parametrize("conv", ["d", "D", "F", "H", "P"])
def test_conversions_reject_non_numeric(conv):
    with pytest.raises(TypeError):
        fmt("{0!" + conv + "}", "abc")


def test_standard_conversions_still_work():
    assert fmt("{0!r}", "x") == "'x'"
    assert fmt("{0!s:>3}", 1) == "  1"


@pytest.mark.parametrize("value", ["", "0s", "0.0", "0:00:00", "1970-01-01T00:00:00", 0.0])
def test_h_suffix_empty_values(value):
    assert fmt("{0:h}", value) == "-"
    assert fmt("{0:>3h}", value) == "  -"


def test_h_suffix_local_epoch_and_int_zero():
    local_epoch = datetime.fromtimestamp(0.0).strftime("%FT%T")
    assert fmt("{0:h}", local_epoch) == "-"
    assert fmt("{0:h}", 0) == "0"
    assert fmt("{0:>4h}", 42) == "  42"
    assert fmt("{0!F:h}", 0.0001) == "-"
    assert fmt("{0!H:h}", 0) == "-"


def test_plus_suffix_marks_truncation():
    assert fmt("{0:<4.4+}", "abcdefgh") == "abc+"
    assert fmt("{0:<4.4+}", "abcd") == "abcd"
    assert fmt("{0:<6.6+}", "abc") == "abc   "
    assert fmt("{0:.3h+}", "abcdef") == "ab+"
    assert fmt("{0:.3h+}", "") == "-"


def test_plus_suffix_on_datetime():
    t = UtilDatetime(2021, 6, 10, 8, 0)
    assert fmt("{0:%b%d %R::.5+}", t) == "Jun1+"
    assert fmt("{0:%b%d::.5+}", t) == "Jun10"


# -------------------------------------------------------------- OutputFormat


def test_example_basic():
    o = OutputFormat("{s:<6} {i:>7d}", headings=HEADINGS)
    assert o.get_format(include_sort_prefix=False) == "{0.s:<6} {0.i:>7d}"
    assert o.header_format() == "{s:<6} {i:>7}"
    assert o.header() == "STRING INTEGER"
    assert o.format(item()) == "foo         42"
    assert o.fields == ["s", "i"]
    assert o.sort_keys == []


def test_example_sort_and_datetime(utc):
    o = OutputFormat("sort:i,-d {i:>7d} {d!d:%b%d %R::^20}", headings=HEADINGS)
    assert o.header() == "INTEGER       DATETIME      "
    assert o.format(item()) == "     42     Jan01 08:00     "
    assert o.sort_keys == [("i", False), ("d", True)]
    assert o.get_format() == "sort:i,-d {0.i:>7d} {0.d!d:%b%d %R::^20}"
    assert o.get_format(orig=True) == "sort:i,-d {i:>7d} {d!d:%b%d %R::^20}"
    assert o.get_format(include_sort_prefix=False) == "{0.i:>7d} {0.d!d:%b%d %R::^20}"


def test_headings_class_attribute_and_unknown_field():
    class MyFormat(OutputFormat):
        headings = {"a": "A", "b.c": "BC"}

    o = MyFormat("{a} {b.c:>4}")
    assert o.fields == ["a", "b.c"]
    assert o.header() == "A   BC"
    assert o.format(SimpleNamespace(a=1, b=SimpleNamespace(c=2))) == "1    2"
    with pytest.raises(ValueError, match="Unknown format field: x"):
        MyFormat("{a} {x}")


def test_prefixed_fields_accepted():
    o = OutputFormat("{0.s} {i}", headings=HEADINGS)
    assert o.fields == ["s", "i"]
    assert o.get_format() == "{0.s} {0.i}"


def test_fields_distinct_plus_sort_keys():
    o = OutputFormat("sort:f,i {i} {s} {i:>3}", headings=HEADINGS)
    assert o.fields == ["i", "s", "f"]


def test_sort_prefix_parsing():
    o = OutputFormat("sort:i,,-s{s}", headings=HEADINGS)
    assert o.sort_keys == [("i", False), ("s", True)]
    assert o.get_format_prepended("", include_sort_prefix=False) == "{s}"
    o = OutputFormat("sort:i  {s}", headings=HEADINGS)
    assert o.get_format_prepended("", include_sort_prefix=False) == " {s}"
    with pytest.raises(UnboundLocalError):  # spec 30.1: an upstream quirk
        OutputFormat("sort: {s}", headings=HEADINGS)
    with pytest.raises(ValueError, match="Invalid sort key: x"):
        OutputFormat("sort:i,-x {s}", headings=HEADINGS)


def test_set_sort_keys_and_sort_items():
    o = OutputFormat("{s} {i}", headings=HEADINGS)
    o.set_sort_keys("-i,s")
    assert o.sort_keys == [("i", True), ("s", False)]
    items = [item("b", 1), item("a", 1), item("c", 2), item("a", "")]
    o.sort_items(items)
    assert [(x.s, x.i) for x in items] == [("c", 2), ("a", 1), ("b", 1), ("a", "")]
    with pytest.raises(ValueError, match="Invalid sort key: q"):
        o.set_sort_keys("q")


def test_sort_items_is_stable_and_in_place():
    o = OutputFormat("sort:-i {s}", headings=HEADINGS)
    items = [item("x", 5), item("y", ""), item("z", 10), item("w", "")]
    o.sort_items(items)
    assert [x.s for x in items] == ["z", "x", "y", "w"]


def test_literal_braces_survive():
    o = OutputFormat("{{{s}}} x", headings=HEADINGS)
    assert o.get_format() == "{{{0.s}}} x"
    assert o.format(item()) == "{foo} x"
    assert o.header() == "{STRING} x"


def test_header_format_keeps_align_and_width_only():
    o = OutputFormat(
        "{s:*^10.3h+} {i:=+08,d} {f!F:>8h} {d!d:%R} {d!d:%R::<9h}",
        headings=HEADINGS,
    )
    assert o.header_format() == "{s:^10} {i:>8} {f:>8} {d} {d:<9}"


def test_header_width_truncation(monkeypatch):
    o = OutputFormat("{s:<10} {i:>10}", headings=HEADINGS)
    assert o.header(width=8) == "STRING +"
    assert o.header(width=100) == o.header()
    monkeypatch.setenv("COLUMNS", "5")
    assert o.header(width=0) == "STRI+"


def test_header_prints_sentinels_literally_if_unfiltered():
    o = OutputFormat("?:{s} +:{i}", headings=HEADINGS)
    assert o.header() == "?:STRING +:INTEGER"


def test_format_errors():
    o = OutputFormat("{s} {i}", headings=HEADINGS)
    with pytest.raises(AttributeError):
        o.format(SimpleNamespace(s="x"))
    o = OutputFormat("{s[k]}", headings={"s[k]": "K"})
    with pytest.raises(KeyError, match="Invalid format field"):
        o.format(SimpleNamespace(s={}))
    assert o.format(SimpleNamespace(s={"k": 3})) == "3"


FILTER_ITEMS = [
    item(s="", i=0, f=2.2),
    item(s="", i=1, f=1.1),
    item(s="", i=23456789, f=1.0),
]


def test_filter_examples():
    o = OutputFormat("?+:{i:>7} ?:{s:>6} ?:{f:8.2}", headings=HEADINGS)
    assert o.filter(FILTER_ITEMS) == "{i:>8} {f:8.2}"
    o = OutputFormat("?+:{i:>7} ?:{s:>6} ?+:{f:.2f}", headings=HEADINGS)
    assert o.filter(FILTER_ITEMS) == "{i:>8} {f:5.2f}"
    o = OutputFormat("?+:{i:>7} ?:{s:>6} ?+:{f:.2f}", headings=HEADINGS)
    assert o.filter(FILTER_ITEMS, no_header=True) == "{i:>8} {f:3.2f}"
    items = [item(s="x" * 16), item(s="short")]
    assert OutputFormat("+:{s:5.5}", headings=HEADINGS).filter(items) == "{s:16.16}"


def test_filter_keeps_sort_prefix_and_rewrites_object():
    o = OutputFormat("sort:-i ?+:{i:>3} +:{s:2.2} {f}", headings=HEADINGS)
    assert o.filter(FILTER_ITEMS) == "sort:-i {i:>8} {s:6.6} {f}"
    # stored widths were rewritten, "+:" dropped, "?:" kept
    assert o.get_format_prepended("") == "sort:-i ?:{i:>8} {s:6.6} {f}"


def test_filter_keeps_column_when_any_value_nonempty():
    items = [item(s=""), item(s="x")]
    o = OutputFormat("{i} ?:{s}", headings=HEADINGS)
    assert o.filter(items) == "{i} {s}"


def test_filter_empty_uses_conversions_and_h_strings(utc):
    items = [item(d=0.0, f=0.0), item(d="", f=0.0)]
    o = OutputFormat("{i} ?:{d!d:%b%d::>10} ?:{f!F} ?:{s}", headings=HEADINGS)
    assert o.filter(items) == "{i} {s}"


def test_filter_datetime_widening_uses_strftime_part(utc):
    o = OutputFormat("+:{d!d:%b%d::<3}", headings={"d": "D"})
    assert o.filter([item()]) == "{d!d:%b%d::<5}"


def test_filter_widening_without_width_and_non_string():
    o = OutputFormat("+:{i} +:{s:.1}", headings={"i": "I", "s": "S"})
    assert o.filter([item(i=12345, s="abcd")]) == "{i:5} {s:4.4}"


def test_filter_drops_text_only_when_blank():
    o = OutputFormat("{i} | ?:{s}|", headings=HEADINGS)
    assert o.filter([item(s="")]) == "{i} | |"


def test_copy_examples():
    o = OutputFormat("+:{s:5.5} {i:4d} {f:.2f}", headings=HEADINGS)
    c = o.copy(except_fields=["s", "f"])
    assert type(c) is OutputFormat
    assert c.get_format_prepended("") == " {i:4d}"
    assert c.get_format(orig=True) == " {i:4d}"
    c = o.copy(nullify_expansion=True)
    assert c.get_format_prepended("") == "{s} {i:4d} {f:.2f}"
    # the original is unchanged
    assert o.get_format_prepended("") == "+:{s:5.5} {i:4d} {f:.2f}"


def test_get_format_prepended_options(utc):
    o = OutputFormat("sort:s ?+:{s:<5.5h} +:{d!d:%R::>8} {i}", headings=HEADINGS)
    assert (
        o.get_format_prepended("x.", nullify_expansion_sentinel=True)
        == "sort:s ?:{x.s:<h} {x.d!d:%R::>} {x.i}"
    )
    assert (
        o.get_format_prepended("", except_fields=["d"], include_sort_prefix=False)
        == "?+:{s:<5.5h} {i}"
    )


def test_copy_of_subclass_keeps_class():
    class MyFormat(OutputFormat):
        headings = HEADINGS

    c = MyFormat("{s} {i}").copy(except_fields=["i"])
    assert isinstance(c, MyFormat)
    assert c.fields == ["s"]


def test_print_items(capsys):
    o = OutputFormat("sort:-i ?:{s:>4} +:{i:>2}", headings=HEADINGS)
    items = [item(s="", i=5), item(s="", i=100), item(s="", i=7)]
    seen = []
    used = o.print_items(
        items,
        pre=lambda x: seen.append(("pre", x.i)),
        post=lambda x: seen.append(("post", x.i)),
    )
    out = capsys.readouterr().out
    assert out == " INTEGER\n     100\n       7\n       5\n"
    assert [x.i for x in items] == [100, 7, 5]
    assert seen == [(when, i) for i in (100, 7, 5) for when in ("pre", "post")]
    assert used.get_format_prepended("") == "sort:-i  {i:>7}"


def test_print_items_no_header_width_and_blank_lines(capsys):
    o = OutputFormat("{s}", headings=HEADINGS)
    items = [item(s="abcdefgh"), item(s=""), item(s="   "), item(s="ab")]
    o.print_items(items, no_header=True, width=4)
    assert capsys.readouterr().out == "abc+\nab\n"


def test_print_items_header_truncated(capsys):
    o = OutputFormat("{s:<10} {i}", headings=HEADINGS)
    o.print_items(iter([item()]), width=9)
    assert capsys.readouterr().out == "STRING  +\nfoo     +\n"


def test_filter_empty_alias():
    o = OutputFormat("?:{s}", headings=HEADINGS)
    assert o.filter_empty([item(s="")]) == ""


# --------------------------------------------------------------- DisplayValue


def test_displayvalue_examples():
    assert sorted([5, "", 10, ""], key=DisplayValue) == ["", "", 5, 10]
    assert sorted([5, "", 10, ""], key=DisplayValue, reverse=True) == [10, 5, "", ""]
    assert DisplayValue("10") == DisplayValue(10)
    assert DisplayValue(True) == DisplayValue(1)
    assert DisplayValue(None) == DisplayValue("") == DisplayValue("-")
    assert DisplayValue("-10") < DisplayValue("1e5") < DisplayValue("abc")
    assert DisplayValue("-") < DisplayValue(-1e9) < DisplayValue("a")
    assert DisplayValue("b") > DisplayValue("a")
    assert DisplayValue("10") == 10
    assert hash(DisplayValue("10")) == hash(DisplayValue(10.0))


def test_displayvalue_ties_keep_input_order():
    values = ["b", 1, "1", None, "-", True, "a"]
    result = sorted(values, key=DisplayValue)
    assert result == [None, "-", 1, "1", True, "a", "b"]


DISPLAY_VALUES = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(alphabet="ab-19e. ", max_size=4),  # no "nan" strings
)


@given(st.lists(DISPLAY_VALUES))
def test_displayvalue_sort_is_consistent(values):
    keys = sorted(map(DisplayValue, values))
    for a, b in zip(keys, keys[1:]):
        assert a <= b
        assert not b < a
