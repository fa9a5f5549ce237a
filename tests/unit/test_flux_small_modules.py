"""Small internal modules of the flux package (spec 32): flux.importer,
flux.compat36, flux.memoized_property, flux.cli.argparse."""

import signal

import pytest

from flux.cli.argparse import FluxArgumentParser
from flux.compat36 import strsignal
from flux.importer import import_path, import_plugins
from flux.memoized_property import memoized_property


def test_import_path_names_module_as_upstream(tmp_path):
    path = tmp_path / "happy.py"
    path.write_text("VALUE = 42\n")
    module = import_path(path)
    assert module.VALUE == 42 and module.__name__ == "ha"  # rstrip(".py")
    bad = tmp_path / "broken.py"
    bad.write_text("def (:\n")
    with pytest.raises(SyntaxError):
        import_path(bad)


def test_import_plugins(tmp_path):
    assert import_plugins("no_such_package_here") == {}
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "zz_extra_plugin.py").write_text("NAME = 'extra'\n")
    plugins = import_plugins("flux.cli.plugins", [str(extra)])
    assert plugins["zz_extra_plugin"].NAME == "extra"


def test_strsignal():
    assert strsignal(signal.SIGTERM) == "Terminated"
    assert strsignal(9) == "Killed"
    for bad in (0, -1, 200):
        with pytest.raises(ValueError):
            strsignal(bad)


def test_memoized_property():
    calls = []

    class Thing:
        @memoized_property
        def value(self):
            calls.append(1)
            return 5

    t = Thing()
    assert (t.value, t.value, t._value, len(calls)) == (5, 5, 5, 1)
    with pytest.raises(AttributeError):
        t.value = 3  # read-only


def test_flux_argument_parser_no_abbreviations_and_posix():
    p = FluxArgumentParser(prog="x")
    p.add_argument("--wait-event")
    with pytest.raises(SystemExit):
        p.parse_args(["--wait", "x"])
    posix = FluxArgumentParser(prog="x", posix=True)
    posix.add_argument("-n", type=int)
    posix.add_argument("-v", action="store_true")
    posix.add_argument("command", nargs="*")
    args = posix.parse_args(["-n", "2", "cmd", "-v", "--x"])
    assert (args.n, args.v, args.command) == (2, False, ["cmd", "-v", "--x"])


def test_hidden_aliases(capsys):
    p = FluxArgumentParser(prog="x")
    sub = p.add_subparsers(dest="cmd")
    sub.add_parser("list", hidden_aliases=["ls"])
    assert p.parse_args(["ls"]).cmd == "ls"
    p.print_help()
    assert "ls" not in capsys.readouterr().out.replace("list", "")
