"""``flux.subprocess`` against real brokers: background processes of the
rexec service, waited for with their output, signalled, listed, by pid or
label, on rank 0 and on another rank."""

import errno
import os
import signal
import subprocess
import sys

import pytest

import flux
import flux.subprocess as fsp
from conftest import poll, start_many


def test_command_create_checks_its_arguments():
    assert fsp.command_create(["true"], cwd="/", env={"A": "1"}, label="x") == {
        "cmd": ["true"], "cwd": "/", "env": {"A": "1"}, "label": "x"}
    with pytest.raises(TypeError):
        fsp.command_create("true")
    with pytest.raises(ValueError):
        fsp.command_create([])
    with pytest.raises(TypeError):
        fsp.command_create(["true"], env={"A": 1})


def test_background_output_and_status_are_kept_until_waited(h):
    cmd = fsp.command_create(["sh", "-c", "printf 'out\\377'; echo err >&2; exit 3"])
    started = fsp.rexec_bg(h, cmd)
    pid = started.get_pid()
    assert pid > 0 and started.get_rank() == 0
    done = fsp.wait(h, pid=pid)
    assert os.WIFEXITED(done.get_status()) and os.WEXITSTATUS(done.get_status()) == 3
    assert done.stdout == b"out\xff"
    assert done.stderr == b"err\n"
    with pytest.raises(OSError) as exc:  # waited for: forgotten
        fsp.wait(h, pid=pid).get()
    assert exc.value.errno == errno.ESRCH


def test_label_list_kill_and_wait(h):
    cmd = fsp.command_create(["sleep", "300"], label="sleeper")
    pid = fsp.rexec_bg(h, cmd).get_pid()
    try:
        with pytest.raises(OSError) as exc:
            fsp.rexec_bg(h, cmd).get()
        assert exc.value.errno == errno.EEXIST
        procs = {p.pid: p for p in fsp.list(h).get()}
        assert procs[pid] == fsp.Subprocess(pid=pid, rank=0, label="sleeper",
                                            cmd=["sleep", "300"], background=True,
                                            state="running")
    finally:
        fsp.kill(h, signal.SIGTERM, label="sleeper").get()
    status = fsp.wait(h, label="sleeper").get_status()
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
    assert pid not in {p.pid for p in fsp.list(h).get()}


def test_background_process_outlives_its_requester(instance, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    starter = subprocess.run(
        [sys.executable, "-c",
         "import sys, flux, flux.subprocess as f\n"
         "cmd = f.command_create(['sh', '-c', 'read x <\"$0\"; echo $x', sys.argv[1]])\n"
         "print(f.rexec_bg(flux.Flux(), cmd).get_pid())\n", str(fifo)],
        capture_output=True, text=True, env=instance.env(), timeout=60, check=True)
    pid = int(starter.stdout)
    # The requester has exited; the process still reads the fifo (opening
    # it without a reader would fail with ENXIO).
    fd = poll(lambda: _open_writer(fifo), "the process opens the fifo")
    os.write(fd, b"done\n")
    os.close(fd)
    done = fsp.wait(flux.Flux(instance.uri), pid=pid)
    assert done.get_status() == 0 and done.stdout == b"done\n"


def _open_writer(path):
    try:
        return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            return None
        raise


def test_exactly_one_of_pid_or_label(h):
    for call in (fsp.kill, fsp.wait):
        with pytest.raises(ValueError):
            call(h)
        with pytest.raises(ValueError):
            call(h, pid=1, label="x")


def test_errors_of_the_service(h):
    with pytest.raises(OSError) as exc:
        fsp.wait(h, label="no-such-label").get()
    assert exc.value.errno == errno.ESRCH
    with pytest.raises(OSError) as exc:
        fsp.kill(h, pid=999999).get()
    assert exc.value.errno == errno.ESRCH
    with pytest.raises(OSError) as exc:
        fsp.rexec_bg(h, fsp.command_create(["/no/such/program"])).get_pid()
    assert exc.value.errno == errno.ENOENT


def test_foreground_process_cannot_be_waited(h):
    stream = h.rpc("rexec.exec", {"cmd": ["sleep", "300"], "label": "fg"},
                   flags=flux.constants.FLUX_RPC_STREAMING)
    pid = stream.get()["pid"]
    try:
        with pytest.raises(OSError) as exc:
            fsp.wait(h, pid=pid).get()
        assert exc.value.errno == errno.EINVAL
    finally:
        fsp.kill(h, signal.SIGKILL, pid=pid).get()


def test_get_rank_on_another_rank():
    with start_many(2) as inst:
        h = inst.handle(0)
        started = fsp.rexec_bg(h, fsp.command_create(["sh", "-c", "echo $FLUX_URI"]),
                               nodeid=1)
        assert started.get_rank() == 1
        done = fsp.wait(h, pid=started.get_pid(), nodeid=1)
        assert done.get_status() == 0
        assert done.stdout.decode().strip() == inst.rank_uri(1)
        assert fsp.list(h, nodeid=1).get() == []
