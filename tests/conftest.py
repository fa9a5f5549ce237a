"""Shared fixtures: real instances started the way users start them.

- ``instance`` (session): a broker started through ``flux start``'s broker
  launcher; sets ``FLUX_URI`` for the whole test session.
- ``h``: a fresh ``flux.Flux()`` handle on that instance.
- ``start_instance(*attrs)``: context manager for a private instance (for
  restart and fault tests); yields an ``Instance`` with ``uri``, ``proc``
  and ``stop()``.
"""

import contextlib
import os
import subprocess
import sys
import time

import pytest

from fluxrm.cli.start import start_broker, stop_broker


class Instance:
    def __init__(self, proc, uri):
        self.proc = proc
        self.uri = uri
        self.rundir = os.path.dirname(uri[len("local://"):])

    def env(self, **extra):
        env = dict(os.environ)
        env["FLUX_URI"] = self.uri
        env.update(extra)
        return env

    def handle(self):
        import flux

        return flux.Flux(self.uri)

    def stop(self):
        stop_broker(self.proc)
        return self.proc.returncode


def launch(*attrs):
    cmd = [sys.executable, "-m", "fluxrm.broker"]
    for attr in attrs:
        cmd.extend(["-S", attr])
    proc, uri = start_broker(cmd, "test")
    if uri is None:
        proc.wait()
        raise RuntimeError("broker failed to start")
    return Instance(proc, uri)


@contextlib.contextmanager
def _start_instance(*attrs):
    inst = launch(*attrs)
    try:
        yield inst
    finally:
        inst.stop()


@pytest.fixture
def start_instance():
    return _start_instance


@pytest.fixture(scope="session")
def instance():
    inst = launch()
    saved = os.environ.get("FLUX_URI")
    os.environ["FLUX_URI"] = inst.uri
    yield inst
    if saved is None:
        os.environ.pop("FLUX_URI", None)
    else:
        os.environ["FLUX_URI"] = saved
    inst.stop()


@pytest.fixture
def h(instance):
    import flux

    return flux.Flux()


def run_flux(*args, env=None, input=None, timeout=60):
    """Run the ``flux`` command line; return the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "fluxrm.cli.main", *args],
        capture_output=True, text=True, env=env, input=input, timeout=timeout,
    )


@pytest.fixture
def flux_cli():
    return run_flux


def poll(predicate, what, timeout=30.0):
    """Call ``predicate`` until it returns something true (returned), for at
    most ``timeout`` seconds: a failure naming ``what``, never a hang."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
