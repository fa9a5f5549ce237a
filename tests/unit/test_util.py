"""Tests for flux.util (spec sections 1.5, 12.1, 12.3 named formats, 12.4):
durations, parse_datetime, UtilConfig, dict helpers, Fileref, Tree,
ColorAction, encode_topic and CLIMain."""

import argparse
import base64
import errno
import json
import logging
import math
import os
import re
import stat
import time
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

import flux.util
from flux.util import (
    CLIMain,
    ColorAction,
    Fileref,
    Tree,
    UtilConfig,
    del_treedict,
    dict_merge,
    encode_payload,
    encode_topic,
    fsd,
    get_treedict,
    parse_datetime,
    parse_fsd,
    set_treedict,
)


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def eastern(monkeypatch):
    monkeypatch.setenv("TZ", "EST5EDT,M3.2.0,M11.1.0")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# ------------------------------------------------------------------ parse_fsd


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0", 0.0),
        ("1", 1.0),
        ("1.5", 1.5),
        ("1s", 1.0),
        ("500ms", 0.5),
        ("1.5m", 90.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1e3", 1000.0),
        ("1e3s", 1000.0),
        (" 2", 2.0),
        ("1_0", 10.0),
        ("0.5d", 43200.0),
    ],
)
def test_parse_fsd(text, expected):
    assert parse_fsd(text) == expected
    assert isinstance(parse_fsd(text), float)


@pytest.mark.parametrize("text", ["inf", "infinity", "INF", "INFINITY"])
def test_parse_fsd_infinity(text):
    assert parse_fsd(text) == math.inf


@pytest.mark.parametrize(
    "text",
    ["Inf", "Infinity", "infs", "-1", "-1s", "nan", "NaN", "10h5m", "", "ms", "s",
     "junk", "1x", "1ns", "1.5.5", "1e999"],
)
def test_parse_fsd_invalid(text):
    with pytest.raises(ValueError, match="^invalid Flux standard duration$"):
        parse_fsd(text)


# ------------------------------------------------------------------------ fsd


@pytest.mark.parametrize(
    "secs, expected",
    [
        (math.inf, "inf"),
        (0, "0s"),
        (0.0009, "0s"),
        (-5, "0s"),
        (0.001, "0.001s"),
        (1, "1.000s"),
        (9.9999, "10.000s"),
        (10, "10s"),
        (59.99999, "60s"),
        (60, "1m"),
        (90, "1.5m"),
        (3600, "1h"),
        (3725, "1.035h"),
        (86400, "1d"),
        (172800, "2d"),
    ],
)
def test_fsd(secs, expected):
    assert fsd(secs) == expected


def test_fsd_rejects_strings():
    with pytest.raises(TypeError):
        fsd("10")


@given(st.floats(min_value=0.001, max_value=1e9))
def test_fsd_round_trips_approximately(secs):
    assert parse_fsd(fsd(secs)) == pytest.approx(secs, rel=1e-3, abs=5.01e-4)


# ------------------------------------------------------------- parse_datetime

NOW_NAIVE = datetime(2021, 6, 10, 8, 0)  # a Thursday


def local(*args):
    return datetime(*args).astimezone()


def test_parse_datetime_now_returns_now():
    now = datetime(2021, 6, 10, 8, 0, 0, 123456).astimezone()
    assert parse_datetime("now", now) is now
    current = parse_datetime("now")
    assert current.tzinfo is not None
    assert abs(current - datetime.now().astimezone()) < timedelta(seconds=5)


def test_parse_datetime_offsets():
    now = datetime(2021, 6, 10, 8, 0, 0, 500000).astimezone()
    assert parse_datetime("+1.5m", now) == now + timedelta(seconds=90)
    assert parse_datetime("-1h", now) == now - timedelta(hours=1)
    assert parse_datetime("+0.25s", now).microsecond == 750000
    assert parse_datetime("+10", now).tzinfo is now.tzinfo
    later = parse_datetime("+1m")
    assert later.tzinfo is not None
    assert timedelta(seconds=50) < later - datetime.now().astimezone() < timedelta(seconds=70)


def test_parse_datetime_offset_from_naive_now_is_aware(utc):
    result = parse_datetime("+1h", NOW_NAIVE)
    assert result.tzinfo is not None
    assert result == local(2021, 6, 10, 9, 0)


@pytest.mark.parametrize("text", ["-", "+", "+x", "+1ns", "+-1", "-Inf"])
def test_parse_datetime_bad_offsets(text):
    with pytest.raises(ValueError, match="invalid Flux standard duration"):
        parse_datetime(text)


@pytest.mark.parametrize("text", ["+inf", "-INFINITY", "+1e12d"])
def test_parse_datetime_offsets_out_of_range(text):
    with pytest.raises(ValueError, match=re.escape(f'Invalid datetime: "{text}"')):
        parse_datetime(text)


@pytest.mark.parametrize("tz", ["utc", "eastern"])
@pytest.mark.parametrize(
    "text, expected",
    [
        ("6/10/2021 08:00", (2021, 6, 10, 8, 0)),
        ("2021-06-10 08:00:00", (2021, 6, 10, 8, 0)),
        ("Jun 10, 2021 8am", (2021, 6, 10, 8, 0)),
        ("in 10 min", (2021, 6, 10, 8, 10)),
        ("tomorrow", (2021, 6, 11, 0, 0)),
        ("noon tomorrow", (2021, 6, 11, 12, 0)),
        ("last wed", (2021, 6, 9, 0, 0)),
    ],
)
def test_parse_datetime_natural_language(request, tz, text, expected):
    request.getfixturevalue(tz)
    for now in (NOW_NAIVE, NOW_NAIVE.astimezone()):
        result = parse_datetime(text, now)
        assert result == local(*expected)
        assert result.tzinfo is not None
        assert result.microsecond == 0
        assert result.utcoffset() == local(*expected).utcoffset()


@pytest.mark.parametrize("text", ["blursday", "6/45/2021", ""])
def test_parse_datetime_invalid(text):
    with pytest.raises(ValueError, match=f'^Invalid datetime: "{text}"$'):
        parse_datetime(text, NOW_NAIVE)


def test_parsedatetime_shim():
    import parsedatetime

    from flux.utils import parsedatetime as vendored
    from flux.utils.parsedatetime import VERSION_FLAG_STYLE, Calendar, Constants

    assert Calendar is parsedatetime.Calendar
    assert Constants is parsedatetime.Constants
    assert VERSION_FLAG_STYLE == parsedatetime.VERSION_FLAG_STYLE
    assert vendored.__version__ == parsedatetime.__version__
    assert "time" not in vendored.__all__


# ----------------------------------------------------------- dict helpers


def test_get_treedict():
    d = {"a": {"b": {"c": 42}}, "x": 1}
    assert get_treedict(d, "a.b.c") == 42
    assert get_treedict(d, "a.b") == {"c": 42}
    assert get_treedict(d, "x") == 1
    assert get_treedict(d, "a.z") is None
    assert get_treedict(d, "x.y", default="no") == "no"
    assert get_treedict(d, "q", 5) == 5


def test_set_treedict():
    d = {}
    set_treedict(d, "a.b.c", 42)
    set_treedict(d, "a.d", 1)
    set_treedict(d, "e", 2)
    assert d == {"a": {"b": {"c": 42}, "d": 1}, "e": 2}


def test_del_treedict():
    d = {"a": {"b": {"c": 42}}}
    del_treedict(d, "a.b.c")
    assert d == {"a": {"b": {}}}
    d = {"a": {"b": {"c": 42}}}
    del_treedict(d, "a.b.c", remove_empty=True)
    assert d == {}
    d = {"a": {"b": {"c": 42}, "k": 1}}
    del_treedict(d, "a.b.c", remove_empty=True)
    assert d == {"a": {"k": 1}}
    for key in ("a.x", "z", "a.k.q"):
        with pytest.raises(KeyError):
            del_treedict({"a": {"k": 1}}, key)


def test_dict_merge():
    dst = {"a": {"b": 1, "c": {"d": 2}}, "e": 3, "f": {"g": 1}}
    src = {"a": {"c": {"x": 9}, "y": 8}, "e": {"new": 1}, "f": 5}
    result = dict_merge(dst, src)
    assert result is dst
    assert dst == {"a": {"b": 1, "c": {"d": 2, "x": 9}, "y": 8}, "e": {"new": 1}, "f": 5}


# ---------------------------------------------------------------- UtilConfig

BUILTIN = {
    "formats": {
        "default": {"description": "Default format", "format": "{id} {name}"},
        "long": {"description": "Long format", "format": "{id} {name} {state}"},
    }
}


@pytest.fixture
def xdg(tmp_path, monkeypatch):
    system1, system2, home = (tmp_path / n for n in ("sys1", "sys2", "home"))
    for d in (system1, system2, home):
        (d / "flux").mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_DIRS", f"{system1}:{system2}")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.delenv("FLUX_JOBS_FORMAT_DEFAULT", raising=False)
    return system1 / "flux", system2 / "flux", home / "flux"


def test_config_builtins_only(xdg):
    config = UtilConfig("flux-jobs", initial_dict=BUILTIN).load()
    assert config.get_format_string("default") == "{id} {name}"
    assert config.get_format_string("long") == "{id} {name} {state}"
    assert config.get_format_string("{x} {y}") == "{x} {y}"
    assert config.get("formats.long.description") == "Long format"
    # the initial dict is not modified
    assert set(BUILTIN["formats"]) == {"default", "long"}


def test_config_merges_files_later_wins(xdg):
    sys1, sys2, home = xdg
    (sys2 / "flux-jobs.toml").write_text(
        '[formats.mine]\ndescription = "sys2"\nformat = "{sys2}"\n'
        '[formats.other]\nformat = "{other}"\n'
    )
    (sys1 / "flux-jobs.json").write_text(
        json.dumps({"formats": {"mine": {"description": "sys1", "format": "{sys1}"}}})
    )
    (home / "flux-jobs.yaml").write_text(
        "formats:\n  mine:\n    description: home\n    format: '{home}'\n"
    )
    config = UtilConfig("flux-jobs", initial_dict=BUILTIN).load()
    assert config.get_format_string("mine") == "{home}"
    assert config.get_format_string("other") == "{other}"
    assert config.get_format_string("default") == "{id} {name}"
    (home / "flux-jobs.yaml").unlink()
    config = UtilConfig("flux-jobs", initial_dict=BUILTIN).load()
    assert config.get_format_string("mine") == "{sys1}"


def test_config_default_dirs(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CONFIG_DIRS", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    dirs = UtilConfig("flux-jobs").config_dirs()
    assert dirs == ["/etc/xdg/flux", str(tmp_path / ".config" / "flux")]


def test_config_override_builtin_raises(xdg):
    (xdg[2] / "flux-jobs.toml").write_text('[formats.default]\nformat = "{x}"\n')
    with pytest.raises(ValueError):
        UtilConfig("flux-jobs", initial_dict=BUILTIN).load()


def test_config_bad_files_raise(xdg):
    (xdg[2] / "flux-jobs.toml").write_text("not = [valid toml")
    with pytest.raises(ValueError, match="flux-jobs.toml"):
        UtilConfig("flux-jobs", initial_dict=BUILTIN).load()
    (xdg[2] / "flux-jobs.toml").write_text("[formats.x]\ndescription = 'no format'\n")
    with pytest.raises(ValueError):
        UtilConfig("flux-jobs", initial_dict=BUILTIN).load()


def test_config_subcommand_table(xdg, monkeypatch):
    (xdg[2] / "flux-resource.toml").write_text(
        '[list.formats.mine]\nformat = "{nodelist}"\n'
        '[status.formats.mine]\nformat = "{state}"\n'
    )
    builtin = {"formats": {"default": {"format": "{ncores}"}}}
    config = UtilConfig(
        "flux-resource", subcommand="list", initial_dict=builtin
    ).load()
    assert config.get_format_string("mine") == "{nodelist}"
    monkeypatch.setenv("FLUX_RESOURCE_LIST_FORMAT_DEFAULT", "mine")
    assert config.get_format_string("default") == "{nodelist}"


def test_config_default_env_override(xdg, monkeypatch):
    config = UtilConfig("flux-jobs", initial_dict=BUILTIN).load()
    monkeypatch.setenv("FLUX_JOBS_FORMAT_DEFAULT", "long")
    assert config.get_format_string("default") == "{id} {name} {state}"
    monkeypatch.setenv("FLUX_JOBS_FORMAT_DEFAULT", "{custom}")
    assert config.get_format_string("default") == "{custom}"
    monkeypatch.setenv("FLUX_JOBS_FORMAT_DEFAULT", "default")
    assert config.get_format_string("default") == "{id} {name}"


def test_config_unknown_format(xdg):
    config = UtilConfig("flux-jobs", initial_dict=BUILTIN).load()
    with pytest.raises(ValueError) as exc:
        config.get_format_string("id")
    assert str(exc.value) == "--format: No such format id (Did you mean '{id}'?)"


def test_config_help_and_get_config(xdg, capsys):
    config = UtilConfig("flux-jobs", initial_dict=BUILTIN).load()
    with pytest.raises(SystemExit) as exc:
        config.get_format_string("help")
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "default" in out and "Long format" in out
    with pytest.raises(SystemExit) as exc:
        config.get_format_string("get-config=long")
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "[formats.long]"
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    assert tomllib.loads(out) == {"formats": {"long": BUILTIN["formats"]["long"]}}
    with pytest.raises(ValueError, match="No such format nope"):
        config.get_format_string("get-config=nope")


# ------------------------------------------------------------------- Fileref


def test_fileref_dict():
    ref = Fileref({"a": 1})
    assert isinstance(ref, dict)
    assert ref == {"mode": stat.S_IFREG | 0o600, "data": {"a": 1}}
    assert Fileref({}, perms=0o755)["mode"] == stat.S_IFREG | 0o755


def test_fileref_encoded_verbatim():
    assert Fileref("hello", encoding="utf-8") == {
        "mode": stat.S_IFREG | 0o600,
        "data": "hello",
        "encoding": "utf-8",
    }
    assert Fileref("aGk=", perms=0o644, encoding="base64") == {
        "mode": stat.S_IFREG | 0o644,
        "data": "aGk=",
        "encoding": "base64",
    }
    with pytest.raises(ValueError):
        Fileref("x", encoding="latin-1")


def test_fileref_from_path(tmp_path):
    text = tmp_path / "script.sh"
    text.write_text("#!/bin/sh\necho héllo\n")
    text.chmod(0o750)
    ref = Fileref(str(text))
    info = os.stat(text)
    assert ref == {
        "mode": info.st_mode,
        "size": info.st_size,
        "data": "#!/bin/sh\necho héllo\n",
        "encoding": "utf-8",
    }
    binary = tmp_path / "blob"
    binary.write_bytes(b"\xff\x00\xfe")
    ref = Fileref(binary)
    assert ref["encoding"] == "base64"
    assert base64.b64decode(ref["data"]) == b"\xff\x00\xfe"
    assert ref["size"] == 3
    with pytest.raises(FileNotFoundError):
        Fileref(str(tmp_path / "missing"))


# ---------------------------------------------------------------------- Tree


def sample_tree(combine=False):
    root = Tree("root", combine_children=combine)
    a = root.append("a")
    a.append("a1")
    a.append("a2").append("deep")
    root.append("b")
    return root


def test_tree_box(capsys):
    sample_tree().render()
    assert capsys.readouterr().out == (
        "root\n"
        "├── a\n"
        "│   ├── a1\n"
        "│   └── a2\n"
        "│       └── deep\n"
        "└── b\n"
    )


def test_tree_ascii_and_compact(capsys):
    sample_tree().render(style="ascii")
    assert capsys.readouterr().out == (
        "root\n|-- a\n|   |-- a1\n|   `-- a2\n|       `-- deep\n`-- b\n"
    )
    sample_tree().render(style="compact")
    assert capsys.readouterr().out == (
        "root\n├─a\n│ ├─a1\n│ └─a2\n│   └─deep\n└─b\n"
    )


def test_tree_level_and_skip_root(capsys):
    sample_tree().render(level=1)
    assert capsys.readouterr().out == "root\n├── a\n└── b\n"
    sample_tree().render(level=0)
    assert capsys.readouterr().out == "root\n"
    sample_tree().render(skip_root=True)
    assert capsys.readouterr().out == "a\n├── a1\n└── a2\n    └── deep\nb\n"
    sample_tree().render(skip_root=True, level=1)
    assert capsys.readouterr().out == "a\nb\n"


def test_tree_combine_children(capsys):
    root = Tree("flux", combine_children=True)
    for _ in range(3):
        child = root.append("sleep")
    assert isinstance(child, Tree) and child.label == "sleep"
    sub = root.append("sleep")
    sub.append("x")
    root.append("other")
    root.render()
    assert capsys.readouterr().out == (
        "flux\n├── 3*[sleep]\n├── sleep\n│   └── x\n└── other\n"
    )
    plain = Tree("flux")
    plain.append("s")
    plain.append("s")
    plain.render()
    assert capsys.readouterr().out == "flux\n├── s\n└── s\n"


def test_tree_prefix_and_append_tree(capsys):
    root = Tree("top", prefix="[0] ")
    sub = Tree("sub", prefix="[1] ")
    sub.append("leaf", prefix="[2] ")
    assert root.append_tree(sub) is sub
    root.render()
    assert capsys.readouterr().out == "[0] top\n[1] └── sub\n[2]     └── leaf\n"


def test_tree_truncation(capsys, monkeypatch):
    root = Tree("x" * 200)
    monkeypatch.delenv("COLUMNS", raising=False)
    root.render()
    assert capsys.readouterr().out == "x" * 131 + "+\n"
    monkeypatch.setenv("COLUMNS", "10")
    root.render()
    assert capsys.readouterr().out == "x" * 9 + "+\n"
    root.render(truncate=False)
    assert capsys.readouterr().out == "x" * 200 + "\n"
    with pytest.raises(ValueError):
        root.render(style="fancy")


# ---------------------------------------------------------------- ColorAction


def color_parser():
    parser = argparse.ArgumentParser(prog="test")
    parser.add_argument("--color", action=ColorAction)
    return parser


def test_color_action(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    parser = color_parser()
    args = parser.parse_args([])
    assert args.color == "auto" and isinstance(args.color, str)
    assert parser.parse_args(["--color"]).color == "always"
    assert parser.parse_args(["--color=never"]).color == "never"
    assert parser.parse_args(["--color", "auto"]).color == "auto"
    assert parser.parse_args(["--color=always"]).color.enabled is True
    assert parser.parse_args(["--color=never"]).color.enabled is False


def test_color_action_auto_follows_tty(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    args = color_parser().parse_args(["--color=auto"])

    class FakeStdout:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    monkeypatch.setattr("sys.stdout", FakeStdout(True))
    assert args.color.enabled is True
    monkeypatch.setattr("sys.stdout", FakeStdout(False))
    assert args.color.enabled is False


def test_color_action_no_color_and_bad_value(monkeypatch, capsys):
    monkeypatch.setenv("NO_COLOR", "1")
    assert color_parser().parse_args([]).color == "never"
    assert color_parser().parse_args(["--color"]).color == "always"
    monkeypatch.setenv("NO_COLOR", "")
    assert color_parser().parse_args([]).color == "auto"
    with pytest.raises(SystemExit):
        color_parser().parse_args(["--color=sometimes"])
    capsys.readouterr()


# ------------------------------------------------------ encode_topic, CLIMain


def test_encode_topic():
    assert encode_topic("a.b") == b"a.b"
    assert encode_topic(b"x") == b"x"
    assert encode_topic("é") == "é".encode()
    with pytest.raises(OSError) as exc:
        encode_topic(None)
    assert exc.value.errno == errno.EINVAL
    assert exc.value.strerror == "Topic must not be None/NULL"
    with pytest.raises(TypeError):
        encode_topic(42)


def test_encode_payload():
    assert encode_payload(None) is None
    assert encode_payload("é") == "é".encode()
    assert encode_payload(b"\x00") == b"\x00"
    assert encode_payload({"k": "é"}) == '{"k": "é"}'.encode()


def test_climain_success():
    ran = []
    with pytest.raises(SystemExit) as exc:
        CLIMain(logging.getLogger("t"))(lambda: ran.append(1))
    assert ran == [1]
    assert exc.value.code == 0


def test_climain_logs_strerror(caplog):
    def main():
        raise OSError(errno.ENOENT, "job 5 not found")

    with pytest.raises(SystemExit) as exc:
        CLIMain(logging.getLogger("flux-test"))(main)
    assert exc.value.code == 1
    assert [r.getMessage() for r in caplog.records] == ["job 5 not found"]


def test_climain_logs_str_and_passes_exit_codes(caplog):
    def fail():
        raise ValueError("bad value")

    with pytest.raises(SystemExit) as exc:
        CLIMain(logging.getLogger("flux-test"))(fail)
    assert exc.value.code == 1
    assert caplog.records[-1].getMessage() == "bad value"

    def leave():
        raise SystemExit(3)

    with pytest.raises(SystemExit) as exc:
        CLIMain(logging.getLogger("flux-test"))(leave)
    assert exc.value.code == 3

    with pytest.raises(SystemExit) as exc:
        with CLIMain(logging.getLogger("flux-test")):
            raise RuntimeError("ctx")
    assert exc.value.code == 1
    assert caplog.records[-1].getMessage() == "ctx"


def test_public_names():
    for name in flux.util.__all__:
        assert hasattr(flux.util, name), name
