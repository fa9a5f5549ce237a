"""``flux start``: exit codes, teardown, signals, broker options."""

import os
import signal
import subprocess
import sys

import pytest

from conftest import poll, start_many

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


def wait_gone(pid, timeout=30.0):
    """Poll until ``pid`` is gone (or a zombie); a failure after ``timeout``."""
    return poll(lambda: not pid_alive(pid), f"pid {pid} to end", timeout)


def kill_quietly(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


PRINT_PIDS_AND_WAIT = (
    "import flux, os, sys, time; "
    "print(os.getpid(), flux.Flux().attr_get('broker.pid'), flush=True); "
    "time.sleep(60)")


def proc_state(pid):
    """The state letter of ``pid`` in /proc (R, S, T, Z...), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0]
    except FileNotFoundError:
        return None


def wait_state(pid, state, timeout=30.0):
    return poll(lambda: proc_state(pid) == state, f"pid {pid} in state {state}",
                timeout)


def test_sigterm_to_start_and_command_at_once_never_hangs():
    """What ``timeout``, a closed terminal or a batch system does: both get
    SIGTERM.  flux start used to reap the command inside its signal handler
    and then wait forever for an exit it had already seen.  The order is
    made certain: flux start is stopped until the command is a zombie and
    the SIGTERM for flux start is pending."""
    env = dict(os.environ)
    env.pop("FLUX_URI", None)
    proc = subprocess.Popen([*FLUX, "start", sys.executable, "-c", PRINT_PIDS_AND_WAIT],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        cmd_pid, broker_pid = map(int, proc.stdout.readline().split())
        os.kill(proc.pid, signal.SIGSTOP)
        # kill() returns before the target stops: wait until it has
        assert wait_state(proc.pid, "T")
        os.kill(cmd_pid, signal.SIGTERM)
        assert wait_state(cmd_pid, "Z")
        os.kill(proc.pid, signal.SIGTERM)
        os.kill(proc.pid, signal.SIGCONT)
        assert proc.wait(60) == 128 + signal.SIGTERM
        assert wait_gone(broker_pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_broker_death_stops_everything_the_command_started():
    getattr_cmd = f"{sys.executable} -m fluxrm.cli.main getattr broker.pid"
    res = flux_start("sh", "-c", f"sleep 2005 & echo $!; kill -KILL $({getattr_cmd}); wait")
    sleeper = int(res.stdout.split()[0])
    try:
        assert res.returncode != 0
        assert "broker exited unexpectedly" in res.stderr
        assert wait_gone(sleeper), "the command's background child outlived flux start"
    finally:
        kill_quietly(sleeper)


def test_sigterm_reaches_the_commands_process_group():
    env = dict(os.environ)
    env.pop("FLUX_URI", None)
    proc = subprocess.Popen([*FLUX, "start", "sh", "-c", "sleep 2006 & echo $!; wait"],
                            stdout=subprocess.PIPE, text=True, env=env)
    sleeper = int(proc.stdout.readline())
    try:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 128 + signal.SIGTERM
        assert wait_gone(sleeper)
    finally:
        kill_quietly(sleeper)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_broker_goes_when_flux_start_is_killed():
    env = dict(os.environ)
    env.pop("FLUX_URI", None)
    proc = subprocess.Popen([*FLUX, "start", sys.executable, "-c", PRINT_PIDS_AND_WAIT],
                            stdout=subprocess.PIPE, text=True, env=env)
    cmd_pid, broker_pid = map(int, proc.stdout.readline().split())
    try:
        proc.kill()
        proc.wait()
        assert wait_gone(broker_pid), "broker outlived a SIGKILLed flux start"
    finally:
        kill_quietly(broker_pid)
        kill_quietly(cmd_pid)


def test_statedir_and_store_are_owner_only_whatever_the_umask(tmp_path):
    statedir = tmp_path / "state"
    stat_cmd = f"stat -c '%a %n' {statedir} {statedir}/*"
    res = flux_start(f"-Sstatedir={statedir}", "sh", "-c", f"flux run true && {stat_cmd}",
                     preexec_fn=lambda: os.umask(0))
    assert res.returncode == 0, res.stderr
    modes = dict(line.split()[::-1] for line in res.stdout.splitlines())
    assert modes[str(statedir)] == "700"
    store = f"{statedir}/content.sqlite"
    assert modes[store] == "600"
    assert modes[store + "-wal"] == "600"
    assert "readable by others" not in res.stderr


def test_existing_statedir_readable_by_others_gets_a_warning(tmp_path):
    statedir = tmp_path / "open"
    statedir.mkdir()
    statedir.chmod(0o755)
    res = flux_start(f"-Sstatedir={statedir}", "true")
    assert res.returncode == 0, res.stderr
    warnings = [line for line in res.stderr.splitlines() if "readable by others" in line]
    assert len(warnings) == 1 and str(statedir) in warnings[0]
    assert (statedir / "content.sqlite").stat().st_mode & 0o777 == 0o600


def test_test_size_brokers_ignore_sigpipe():
    """A write to a client that went away is EPIPE for the broker, not its
    death: brokers forked by --test-size ignore SIGPIPE as exec'd ones do."""
    with start_many(2) as inst:
        for rank in range(2):
            h = inst.handle(rank)
            pid = int(h.attr_get("broker.pid"))
            with open(f"/proc/{pid}/status") as status:
                ignored = next(int(line.split()[1], 16) for line in status
                               if line.startswith("SigIgn:"))
            assert ignored & (1 << (signal.SIGPIPE - 1)), f"rank {rank}"
