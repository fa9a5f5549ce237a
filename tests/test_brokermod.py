"""flux.brokermod and ``flux module``: a Python module in its own process,
answering its topics, listed, its stats, removed cleanly; a crashing
module is reported and removed, the broker unharmed."""

import errno
import os
import textwrap

import pytest

from conftest import _start_instance, poll, run_flux
from flux.brokermod import BrokerLogger, BrokerModule, request_handler, resolve_entry_point

ECHO = textwrap.dedent('''
    from flux.brokermod import BrokerModule, request_handler

    class Echo(BrokerModule):
        def __init__(self, h, *args):
            super().__init__(h, *args)
            self.count = 0

        @request_handler("hello")
        def hello(self, msg):
            self.count += 1
            self.handle.respond(msg, {"name": self.name, "args": list(self.args),
                                      "pid": __import__("os").getpid()})

        @request_handler("crash")
        def crash(self, msg):
            raise RuntimeError("module bug")

        def stats_get(self):
            return {"hellos": self.count}
''')


@pytest.fixture(scope="module")
def inst():
    with _start_instance() as instance:
        yield instance


def listed(inst):
    out = run_flux("module", "list", env=inst.env())
    assert out.returncode == 0, out.stderr
    return {line.split()[0]: line for line in out.stdout.splitlines()[1:]}


def test_load_rpc_list_stats_remove(inst, tmp_path):
    path = tmp_path / "echo.py"
    path.write_text(ECHO)
    out = run_flux("module", "load", str(path), "a", "b=1", env=inst.env())
    assert out.returncode == 0, out.stderr
    try:
        h = inst.handle()
        answer = h.rpc("echo.hello").get()
        assert answer["name"] == "echo" and answer["args"] == ["a", "b=1"]
        assert answer["pid"] != os.getpid()
        assert "echo" in listed(inst)
        assert "sched" in listed(inst)  # the built-in ones are listed too
        out = run_flux("module", "stats", "echo", env=inst.env())
        assert out.returncode == 0, out.stderr
        assert '"hellos": 1' in out.stdout and '"requests": 1' in out.stdout
        out = run_flux("module", "load", str(path), env=inst.env())
        assert out.returncode == 1 and "already loaded" in out.stderr
    finally:
        out = run_flux("module", "remove", "echo", env=inst.env())
    assert out.returncode == 0, out.stderr
    assert "echo" not in listed(inst)
    with pytest.raises(OSError) as err:
        inst.handle().rpc("echo.hello").get()
    assert err.value.errno == errno.ENOSYS
    with pytest.raises(ProcessLookupError):
        os.kill(answer["pid"], 0)


def test_crashing_module_is_reported_and_removed(inst, tmp_path):
    path = tmp_path / "echo.py"
    path.write_text(ECHO)
    assert run_flux("module", "load", str(path), env=inst.env()).returncode == 0
    h = inst.handle()
    pid = h.rpc("echo.hello").get()["pid"]
    with pytest.raises(OSError) as err:
        h.rpc("echo.crash").get()  # the module dies: its request fails
    assert err.value.errno == errno.ENOSYS
    poll(lambda: "echo" not in listed(inst), "the dead module to leave the list")
    log = run_flux("dmesg", env=inst.env()).stdout
    assert "module bug" in log and "module echo exited" in log
    assert h.rpc("broker.ping", {}).get()["route"] == "0"  # the broker lives
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.parametrize("source, text", [
    ("x = 1\n", "no mod_main() or BrokerModule subclass found"),
    ("from flux.brokermod import BrokerModule\nclass A(BrokerModule): pass\n"
     "class B(BrokerModule): pass\n", "multiple BrokerModule subclasses found (A, B)"),
    ("def mod_main(h, *args):\n    raise ValueError('bad arg ' + ' '.join(args))\n",
     "bad arg q"),
])
def test_load_failures_are_one_line(inst, tmp_path, source, text):
    path = tmp_path / "broken.py"
    path.write_text(source)
    out = run_flux("module", "load", str(path), "q", env=inst.env())
    assert out.returncode == 1
    assert text in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "broken" not in listed(inst)


def test_load_by_name_on_module_path_and_missing(inst, tmp_path):
    (tmp_path / "pathmod.py").write_text(ECHO.replace("class Echo", "class PathMod"))
    env = inst.env(FLUX_MODULE_PATH=f"/nonexistent:{tmp_path}")
    out = run_flux("module", "load", "pathmod", env=env)
    assert out.returncode == 0, out.stderr
    try:
        assert inst.handle().rpc("pathmod.hello").get()["name"] == "pathmod"
    finally:
        assert run_flux("module", "remove", "pathmod", env=env).returncode == 0
    out = run_flux("module", "load", "nosuchmod", env=env)
    assert out.returncode == 1 and "module not found" in out.stderr
    out = run_flux("module", "remove", "nosuchmod", env=env)
    assert out.returncode == 1 and "not loaded" in out.stderr
    assert run_flux("module", "remove", "-f", "nosuchmod", env=env).returncode == 0


def test_broker_shutdown_stops_modules(tmp_path):
    path = tmp_path / "echo.py"
    path.write_text(ECHO)
    with _start_instance() as other:
        assert run_flux("module", "load", str(path), env=other.env()).returncode == 0
        pid = other.handle().rpc("echo.hello").get()["pid"]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_decorators_logger_entry_point():
    @request_handler("x", prefix=False, allow_guest=True)
    def func(self, msg):
        pass

    assert func._flux_handler["topic"] == "x" and not func._flux_handler["prefix"]

    class FakeHandle:
        def __init__(self):
            self.lines = []

        def log(self, level, msg):
            self.lines.append((level, msg))

    fake = FakeHandle()
    log = BrokerLogger(fake)
    assert log.level == 7
    log.level = "Warning"
    assert log.level_name == "warning"
    log.info("dropped")
    log.error("kept")
    assert fake.lines == [(3, "kept")]
    with pytest.raises(ValueError, match="invalid log level 'verbose'"):
        log.level = "verbose"
    log.level = 42
    assert log.level_name == "42"

    class Mod:
        __name__ = "m"

    mod = Mod()
    mod.BrokerModule = BrokerModule  # imported base class does not count
    with pytest.raises(ValueError, match="no mod_main"):
        resolve_entry_point(mod)
    mod.mod_main = lambda h: None
    assert resolve_entry_point(mod) is mod.mod_main
