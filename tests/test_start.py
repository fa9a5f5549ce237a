"""``flux start``: exit codes, teardown, signals, broker options."""

import os
import signal
import subprocess
import sys

import pytest

FLUX = [sys.executable, "-m", "fluxrm.cli.main"]


def flux_start(*args, timeout=60, **kw):
    env = dict(os.environ)
    env.pop("FLUX_URI", None)
    env.pop("FLUX_INSTANCE_LEVEL", None)
    return subprocess.run([*FLUX, "start", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, **kw)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); check its state
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


REPORT = ("import flux; h = flux.Flux(); "
          "print(h.attr_get('broker.pid'), h.attr_get('rundir'), "
          "h.attr_get('statedir'))")


def test_runs_command_with_uri_and_tears_down():
    res = flux_start(sys.executable, "-c", REPORT)
    assert res.returncode == 0, res.stderr
    pid, rundir, statedir = res.stdout.split()
    assert not os.path.exists(rundir)
    assert not os.path.exists(statedir)
    assert not pid_alive(int(pid))


@pytest.mark.parametrize("code", [0, 1, 7, 255])
def test_exit_status_passes_through(code):
    assert flux_start("sh", "-c", f"exit {code}").returncode == code


def test_command_killed_by_signal():
    assert flux_start("sh", "-c", "kill -TERM $$").returncode == 128 + signal.SIGTERM


def test_missing_command():
    res = flux_start("/nonexistent/program")
    assert res.returncode == 127
    assert "/nonexistent/program" in res.stderr
    assert "Traceback" not in res.stderr


def test_default_command_is_shell():
    env = dict(os.environ, SHELL="/bin/sh")
    env.pop("FLUX_URI", None)
    res = subprocess.run([*FLUX, "start"], input="echo $FLUX_URI\n", text=True,
                         capture_output=True, env=env, timeout=60)
    assert res.returncode == 0
    assert res.stdout.startswith("local://")


def test_broker_opts_and_log_filename(tmp_path):
    log = tmp_path / "out"
    res = flux_start(f"-o,-S,log-filename={log}", "-Sfoo=bar", sys.executable, "-c",
                     "import flux; print(flux.Flux().attr_get('foo'))")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "bar"
    assert "broker ready" in log.read_text()


def test_broker_death_is_reported():
    getattr_cmd = f"{sys.executable} -m fluxrm.cli.main getattr broker.pid"
    res = flux_start("sh", "-c", f"kill -KILL $({getattr_cmd}); sleep 30")
    assert res.returncode != 0
    assert "broker exited unexpectedly" in res.stderr


def test_sigterm_shuts_down_cleanly():
    env = dict(os.environ)
    env.pop("FLUX_URI", None)
    proc = subprocess.Popen(
        [*FLUX, "start", sys.executable, "-c",
         REPORT + "; import sys, time; sys.stdout.flush(); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    pid, rundir, _ = line.split()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 128 + signal.SIGTERM
    assert not os.path.exists(rundir)
    # flux start reaps the broker before it exits
    assert not pid_alive(int(pid))


def test_nested_instance_level():
    inner = ("import flux; print(flux.Flux().attr_get('instance-level'), "
             "flux.Flux().attr_get('parent-uri'))")
    res = flux_start(*FLUX, "start", sys.executable, "-c", inner)
    assert res.returncode == 0, res.stderr
    level, parent = res.stdout.split()
    assert level == "1"
    assert parent.startswith("local://")


def test_bad_test_size():
    res = flux_start("--test-size=0", "true")
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
