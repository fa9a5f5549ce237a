"""Shared fixtures: real instances started the way users start them.

- ``instance`` (session): a broker started through ``flux start``'s broker
  launcher; sets ``FLUX_URI`` for the whole test session.
- ``h``: a fresh ``flux.Flux()`` handle on that instance.
- ``start_instance(*attrs)``: context manager for a private instance (for
  restart and fault tests); yields an ``Instance`` with ``uri``, ``proc``
  and ``stop()``.
- ``start_many(size, *options)``: context manager for an instance of
  ``size`` brokers (``flux start --test-size``), which lives until the
  block ends; yields a ``ManyInstance`` (``uri``, ``rank_uri(r)``,
  ``handle(r)``, ``env(r)``, and ``stop()`` giving flux start's status).
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


class ManyInstance:
    """An instance of several brokers run by ``flux start --test-size``,
    whose initial program waits for its standard input to close."""

    def __init__(self, proc, uri, size):
        self.proc = proc
        self.uri = uri
        self.size = size
        self.rundir = os.path.dirname(uri[len("local://"):])
        self.stderr = None

    def rank_uri(self, rank):
        return f"local://{self.rundir}/local-{rank}" if self.size > 1 else self.uri

    def handle(self, rank=0):
        import flux

        return flux.Flux(self.rank_uri(rank))

    def env(self, rank=0, **extra):
        env = dict(os.environ)
        env["FLUX_URI"] = self.rank_uri(rank)
        env.update(extra)
        return env

    def stop(self, timeout=60):
        """End the initial program; flux start's exit status."""
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.stderr is None:
            self.stderr = self.proc.stderr.read()
        return self.proc.returncode


@contextlib.contextmanager
def start_many(size, *options, env=None, timeout=60):
    """``flux start --test-size=SIZE OPTIONS``; yields a ``ManyInstance``."""
    import select

    proc = subprocess.Popen(
        [sys.executable, "-m", "fluxrm.cli.main", "start", f"--test-size={size}",
         *options, "sh", "-c", 'echo "$FLUX_URI"; exec cat >/dev/null'],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env)
    inst = None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        uri = proc.stdout.readline().strip() if ready else ""
        if not uri:
            proc.kill()
            _, err = proc.communicate(timeout=30)
            raise RuntimeError(f"flux start --test-size={size} failed: {err}")
        inst = ManyInstance(proc, uri, size)
        yield inst
    finally:
        if inst is not None:
            inst.stop(timeout)
        elif proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def start_many_brokers():
    return start_many


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
