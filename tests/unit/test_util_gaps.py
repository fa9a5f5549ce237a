"""flux.util names and OutputFormat details of spec section 30 (pure)."""

import argparse
import errno
import os
import signal
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

import flux.util
from flux.util import (
    AltField,
    Deduplicator,
    FilterAction,
    FilterActionSetUpdate,
    FilterActionUser,
    FilterTrueAction,
    OutputFormat,
    TreedictAction,
    YesNoAction,
    check_future_error,
    empty_outputs,
    encode_payload,
    encode_topic,
    help_formatter,
    interruptible,
    xdg_searchpath,
)

HEADINGS = {"s": "STRING", "i": "INTEGER", "f": "FLOAT", "a.b": "DOTTED"}


def item(s="", i=0, f=0.0):
    return SimpleNamespace(s=s, i=i, f=f)


# -- OutputFormat -------------------------------------------------------------


def test_constructor_fourth_argument_is_ignored():
    o = OutputFormat("+:{s:5.5} {i:4d}", HEADINGS, "0.", True)
    assert o.get_format_prepended("") == "+:{s:5.5} {i:4d}"
    assert o.copy(nullify_expansion=True).get_format_prepended("") == "{s} {i:4d}"


@pytest.mark.parametrize("fmt", ["sort:{s}", "sort: {s}", "sort:\t{s}", "sort:"])
def test_sort_prefix_without_keys_raises_unbound_local_error(fmt):
    with pytest.raises(UnboundLocalError):
        OutputFormat(fmt, headings=HEADINGS)


def test_sort_prefix_space_is_reemitted_only_if_given():
    assert OutputFormat("sort:i{s}", HEADINGS).get_format() == "sort:i{0.s}"
    assert OutputFormat("sort:i {s}", HEADINGS).get_format() == "sort:i {0.s}"
    assert OutputFormat("sort:,i {s}", HEADINGS).get_format() == "sort:i {0.s}"
    o = OutputFormat("sort:i  {s}", HEADINGS)
    assert o.get_format(include_sort_prefix=False) == " {0.s}"
    o = OutputFormat("{s}", HEADINGS)
    o.set_sort_keys("-i")
    assert o.get_format() == "sort:-i {0.s}"


def test_set_sort_keys_skips_empty_keys():
    o = OutputFormat("{s}", HEADINGS)
    o.set_sort_keys("")
    assert o.sort_keys == []
    o.set_sort_keys(",s")
    assert o.sort_keys == [("s", False)]
    o.set_sort_keys(" , s , , i , ")
    assert o.sort_keys == [("s", False), ("i", False)]
    with pytest.raises(ValueError, match=r"^Invalid sort key: $"):
        o.set_sort_keys("-")


def test_sort_items_dotted_and_missing_attribute():
    o = OutputFormat("sort:-a.b {s}", HEADINGS)
    items = [SimpleNamespace(s=x, a=SimpleNamespace(b=v))
             for x, v in (("p", "10abc"), ("q", 3), ("r", None), ("t", "1e5"),
                          ("u", float("nan")), ("v", "-"))]
    o.sort_items(items)
    assert [x.s for x in items][0] == "p"  # strings after every number
    assert [x.s for x in items][-2:] == ["r", "v"]  # empties last, stable
    assert items[1].s == "t"  # "1e5" is 100000
    with pytest.raises(AttributeError):
        o.sort_items([SimpleNamespace(s="x")])


def test_fields_include_sort_keys():
    o = OutputFormat("sort:-f {s} {i} {s}", HEADINGS)
    assert sorted(o.fields) == ["f", "i", "s"]


def test_filter_keeps_text_before_next_field():
    o = OutputFormat("sort:-i ?:{s:>6} {i}", HEADINGS)
    assert o.filter([item(i=1), item(i=2)]) == "sort:-i  {i}"


def test_filter_integer_zero_is_not_empty():
    o = OutputFormat("?:{i} ?:{s}", HEADINGS)
    assert o.filter([item(i=0, s="0s")]) == "{i}"


def test_print_items_reparses_the_filtered_format(capsys):
    o = OutputFormat("sort:-i ?:{s:>6} {i}", HEADINGS)
    used = o.print_items([item(i=1), item(i=2)], no_header=True)
    assert capsys.readouterr().out == " 2\n 1\n"
    assert used.get_format(include_sort_prefix=False) == " {0.i}"


def test_header_prints_unfiltered_sentinels():
    assert OutputFormat("?:{s} {i}", HEADINGS).header() == "?:STRING INTEGER"


def test_class_attributes():
    assert OutputFormat.formatter is flux.util.UtilFormatter
    assert OutputFormat.headings == {}
    header = OutputFormat.HeaderFormatter()
    assert header.format("{a.b:>8}|", **HEADINGS) == "  DOTTED|"
    spec = OutputFormat.FormatSpec("*^+z#012,.3fh+")
    assert (spec.fill, spec.align, spec.sign, spec.pos_zero, spec.alt,
            spec.zero_pad, spec.width_str, spec.grouping, spec.decimal,
            spec.precision_str, spec.type, spec.hyphen, spec.truncate) == (
        "*", "^", "+", "z", "#", "0", "12", ",", ".", "3", "f", "h", "+")
    assert str(spec) == "*^+z#012,.3fh+"
    spec = OutputFormat.FormatSpec("%H:%M::<5.5+")
    assert spec.timefmt == "%H:%M" and spec.width == 5
    spec.width = 9
    assert str(spec) == "%H:%M::<9.9+"
    numeric = OutputFormat.FormatSpec(".2f")
    numeric.width = 9
    assert str(numeric) == "9.2f"
    with pytest.raises(ValueError):
        OutputFormat.FormatSpec("<<junk")


# -- other names ------------------------------------------------------------------


def test_deduplicator_folds_identical_lines():
    fmt = OutputFormat("+:{s:5.5} {i:4d} {f:.2f}", HEADINGS)
    seen = []
    dedup = Deduplicator(fmt, except_fields=["f"],
                         combine=lambda old, new: seen.append((old.f, new.f)))
    for x in (item("a", 1, 1.0), item("a", 1, 2.0), item("b", 1, 3.0),
              item("a", 1, 4.0)):
        dedup.append(x)
    assert [(x.s, x.f) for x in dedup] == [("a", 1.0), ("b", 3.0)]
    assert [(x.s, x.f) for x in dedup] == [("a", 1.0), ("b", 3.0)]
    assert seen == [(1.0, 2.0), (1.0, 4.0)]
    plain = Deduplicator(fmt)
    plain.append(item("a", 1, 1.0))
    plain.append(item("a", 1, 1.0))
    assert len(list(plain)) == 1


def test_altfield():
    field = AltField("├─", "|-")
    assert str(field) == "├─"
    assert f"{field:>4}" == "  ├─"
    assert "{x.ascii}".format(x=field) == "|-"


def parse(action, args, **kwargs):
    parser = argparse.ArgumentParser()
    parser.add_argument("--opt", action=action, **kwargs)
    return parser.parse_args(args)


def test_treedict_action():
    ns = parse(TreedictAction, ["--opt", "a.b=1", "--opt", "a.c=x", "--opt",
                                'd={"e": [1]}'])
    assert ns.opt == {"a": {"b": 1, "c": "x"}, "d": {"e": [1]}}
    with pytest.raises(ValueError, match="^Missing required value for key k$"):
        parse(TreedictAction, ["--opt", "k"])


def test_filter_actions():
    ns = parse(FilterAction, ["--opt", "x"])
    assert ns.opt == "x" and ns.filtered is True
    ns = parse(FilterActionSetUpdate, ["--opt", "a,b", "--opt", "c"], default=set())
    assert ns.opt == {"a", "b", "c"} and ns.filtered
    ns = parse(FilterActionUser, ["--opt", "bob"])
    assert ns.opt == "bob" and ns.filtered and ns.filtereduser
    ns = parse(FilterTrueAction, ["--opt"])
    assert ns.opt is True and ns.filtered
    ns = parse(FilterTrueAction, [])
    assert ns.opt is False and not hasattr(ns, "filtered")


def test_yes_no_action():
    assert parse(YesNoAction, ["--opt"]).opt is True
    assert parse(YesNoAction, ["--opt=yes"]).opt is True
    assert parse(YesNoAction, ["--opt=no"]).opt is False
    with pytest.raises(ValueError, match="^--opt requires either 'yes' or 'no'$"):
        parse(YesNoAction, ["--opt=maybe"])
    parser = argparse.ArgumentParser()
    parser.add_argument("--opt", action=YesNoAction)
    assert "--opt [[yes|no]]" in parser.format_help()


def test_help_formatter():
    cls = help_formatter(argwidth=12, raw_description=True)
    assert issubclass(cls, argparse.RawDescriptionHelpFormatter)
    assert issubclass(help_formatter(), argparse.HelpFormatter)
    parser = argparse.ArgumentParser(prog="p", formatter_class=cls,
                                     description="a\n  b")
    assert "a\n  b" in parser.format_help()


def test_xdg_searchpath(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", "/h")
    monkeypatch.setenv("XDG_CONFIG_DIRS", "/x:/y")
    assert xdg_searchpath("jobs") == [Path("/h/flux/jobs"), Path("/x/flux/jobs"),
                                      Path("/y/flux/jobs")]
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.delenv("XDG_CONFIG_DIRS")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert xdg_searchpath() == [tmp_path / ".config/flux", Path("/etc/xdg/flux")]


def test_empty_outputs():
    empties = empty_outputs()
    assert isinstance(empties, tuple)
    assert empties[:5] == ("", "0s", "0.0", "0:00:00", "1970-01-01T00:00:00")
    assert len(empties) == 6


def test_encode_payload_and_topic():
    assert encode_payload(None) is None
    assert encode_payload(b"\xff") == b"\xff"
    assert encode_payload("\udcff") == b"\xff"
    assert encode_payload({"a": "é"}) == '{"a": "é"}'.encode()
    with pytest.raises(TypeError) as exc:
        encode_topic(42)
    assert exc.value.args == (errno.EINVAL, "Topic must be a string, not <class 'int'>")


class FakeFuture:
    def __init__(self, message):
        self.message = message

    def error_string(self):
        return self.message

    @check_future_error
    def get(self, err):
        raise OSError(err, os.strerror(err))


def test_check_future_error():
    with pytest.raises(OSError) as exc:
        FakeFuture("no such job").get(errno.ENOENT)
    assert exc.value.errno == errno.ENOENT and exc.value.strerror == "no such job"
    with pytest.raises(OSError) as exc:
        FakeFuture(None).get(errno.EPERM)
    assert exc.value.strerror == os.strerror(errno.EPERM)
    assert FakeFuture.get.__name__ == "get"


def test_interruptible_restores_handler():
    def custom(signum, frame):
        pass

    previous = signal.signal(signal.SIGINT, custom)
    try:
        seen = []

        @interruptible
        def blocking():
            seen.append(signal.getsignal(signal.SIGINT))
            return 7

        assert blocking() == 7
        assert seen == [signal.default_int_handler]
        assert signal.getsignal(signal.SIGINT) is custom
        result = []
        thread = threading.Thread(target=lambda: result.append(blocking()))
        thread.start()
        thread.join(timeout=10)
        assert result == [7] and seen[-1] is custom
    finally:
        signal.signal(signal.SIGINT, previous)
