"""How errors reach a person: one line from a command, a traceback on demand.

- A command that fails (an unknown job, a missing key...) prints one line on
  stderr, no traceback, and exits non-zero; the broker logs no internal
  error for such requests.
- ``FLUX_PYCLI_LOGLEVEL=debug`` (or upstream's number, 10) adds the
  traceback after the line.
- An exception a command did not expect is printed by ``fluxrm.cli.main``
  as ``flux-CMD: ERROR: <type>: <text>`` (exit 1); Ctrl-C exits 130.

What the router does with a handler's bug is in
``tests/unit/test_router_errors.py``.
"""

import os
import sys
import types

import pytest

from fluxrm.cli import main as cli_main

NO_BROKER = "local:///nonexistent/flux/socket"


@pytest.mark.parametrize("args, words", [
    (["job", "info", "f1234", "R"], "f1234"),
    (["job", "eventlog", "f1234"], "f1234"),
    (["job", "kill", "f1234"], "f1234"),
    (["cancel", "f1234"], "f1234"),
    (["kvs", "get", "missing.key"], "missing.key"),
    (["kvs", "put", "a"], "key=value"),
    (["resource", "list", "-s", "bogus"], "bogus"),
    (["getattr", "nosuchattr"], "nosuchattr"),
], ids=" ".join)
def test_failing_command_prints_one_line(instance, flux_cli, args, words):
    proc = flux_cli(*args)
    assert proc.returncode == 1, proc
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"flux-{args[0]}: "), proc.stderr
    assert words in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_requests_log_no_internal_error(instance, flux_cli):
    for args in (["job", "info", "f1234", "R"], ["kvs", "get", "missing.key"],
                 ["cancel", "f1234"]):
        assert flux_cli(*args).returncode == 1
    proc = flux_cli("dmesg")
    assert proc.returncode == 0, proc.stderr
    assert "internal error" not in proc.stdout


@pytest.mark.parametrize("level", ["debug", "DEBUG", "10"])
def test_debug_level_adds_the_traceback(flux_cli, level):
    env = dict(os.environ, FLUX_URI=NO_BROKER, FLUX_PYCLI_LOGLEVEL=level)
    proc = flux_cli("jobs", env=env)
    assert proc.returncode == 1
    first, *rest = proc.stderr.splitlines()
    assert first.startswith("flux-jobs: ") and "nonexistent" in first
    assert rest[0] == "Traceback (most recent call last):", proc.stderr
    assert rest[-1].startswith("FileNotFoundError: "), proc.stderr


@pytest.mark.parametrize("args", [
    ["kvs", "get", "missing.key"],          # kvs's own OSError line
    ["jobs", "-o", "{nosuchfield}"],         # flux jobs' own format error line
    ["submit", "--urgency=99", "true"],     # run/submit/bulksubmit's report()
], ids=" ".join)
def test_commands_printing_their_own_line_add_the_traceback_too(instance, flux_cli, args):
    plain = flux_cli(*args)
    debug = flux_cli(*args, env=dict(os.environ, FLUX_PYCLI_LOGLEVEL="debug"))
    assert plain.returncode == debug.returncode != 0
    assert plain.stderr.count("\n") == 1 and "Traceback" not in plain.stderr, plain.stderr
    assert debug.stderr.splitlines()[0] == plain.stderr.strip()
    assert "Traceback (most recent call last):" in debug.stderr, debug.stderr


@pytest.mark.parametrize("level", [None, "20", "info", "bogus"])
def test_no_traceback_otherwise(flux_cli, level):
    env = dict(os.environ, FLUX_URI=NO_BROKER)
    env.pop("FLUX_PYCLI_LOGLEVEL", None)
    if level is not None:
        env["FLUX_PYCLI_LOGLEVEL"] = level
    proc = flux_cli("jobs", env=env)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr


# -- what main does with any exception (a stand-in command, in process) --------

@pytest.fixture
def command(monkeypatch):
    """Install ``flux boom``, whose main raises what ``boom.exc`` holds."""
    module = types.ModuleType("fluxrm.cli._test_boom")
    state = types.SimpleNamespace(exc=None)

    def boom_main(argv, prog, command):
        raise state.exc

    module.main = boom_main
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(cli_main.COMMANDS, "boom", ("_test_boom", "raise"))
    monkeypatch.delenv("FLUX_PYCLI_LOGLEVEL", raising=False)
    return state


@pytest.mark.parametrize("exc, line", [
    (KeyError("id"), "flux-boom: ERROR: KeyError: 'id'"),
    (AttributeError("'NoneType' object has no attribute 'x'"),
     "flux-boom: ERROR: AttributeError: 'NoneType' object has no attribute 'x'"),
    (RuntimeError(), "flux-boom: ERROR: RuntimeError"),
    (ValueError("invalid thing\n  on two lines"), "flux-boom: ERROR: invalid thing on two lines"),
    (OSError(2, "No such file or directory"), "flux-boom: No such file or directory"),
])
def test_unexpected_exception_is_one_line(command, capsys, exc, line):
    command.exc = exc
    assert cli_main.main(["boom"]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", line + "\n")


def test_unexpected_exception_traceback_under_debug(command, capsys, monkeypatch):
    monkeypatch.setenv("FLUX_PYCLI_LOGLEVEL", "debug")
    command.exc = KeyError("id")
    assert cli_main.main(["boom"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "flux-boom: ERROR: KeyError: 'id'"
    assert lines[1] == "Traceback (most recent call last):"
    assert any("in boom_main" in text for text in lines)
    assert lines[-1] == "KeyError: 'id'"


def test_keyboard_interrupt_exits_130_quietly(command, capsys):
    command.exc = KeyboardInterrupt()
    assert cli_main.main(["boom"]) == 130
    assert capsys.readouterr() == ("", "")


def test_system_exit_passes_through(command):
    command.exc = SystemExit(3)
    with pytest.raises(SystemExit) as info:
        cli_main.main(["boom"])
    assert info.value.code == 3
