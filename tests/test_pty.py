"""Jobs on a pseudo-terminal (``-o pty``) and ``flux job attach`` driving
one from a terminal, against real instances.

Interactive runs are driven through a pty made here (``Terminal``): the
``flux`` command gets its slave as stdin, stdout, stderr and controlling
terminal, the test types into and reads from the master.
"""

import errno
import fcntl
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest

from conftest import poll, start_many

FLUX = [sys.executable, "-m", "fluxrm.cli.main"]


def flux(*args, env=None, input=None, timeout=60):
    """The flux command with stdin not a terminal (``/dev/null`` or
    ``input``), whatever the test runner's stdin is."""
    kw = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
    return subprocess.run([*FLUX, *args], capture_output=True, text=True,
                          env=env, timeout=timeout, **kw)


def _take_terminal():
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A flux command run on a pty of ours, of ``rows`` x ``cols``."""

    def __init__(self, args, env=None, rows=24, cols=80):
        self.master, self.slave = os.openpty()
        self.resize(rows, cols)
        self.settings = termios.tcgetattr(self.slave)
        self.out = b""
        self.proc = subprocess.Popen(
            [*FLUX, *args], stdin=self.slave, stdout=self.slave,
            stderr=self.slave, env=env, start_new_session=True,
            preexec_fn=_take_terminal)

    def resize(self, rows, cols):
        fcntl.ioctl(self.master, termios.TIOCSWINSZ,
                    struct.pack("HHHH", rows, cols, 0, 0))

    def type(self, data):
        os.write(self.master, data)

    def _read(self, timeout):
        ready, _, _ = select.select([self.master], [], [], timeout)
        if ready:
            self.out += os.read(self.master, 65536)

    def expect(self, pattern, timeout=30.0):
        """Read until ``pattern`` (a bytes regex) matches what the command
        printed since the last match; return the match."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            m = regex.search(self.out)
            if m:
                self.out = self.out[m.end():]
                return m
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {pattern!r}; got {self.out!r}"
            self._read(min(left, 0.5))

    def wait(self, timeout=30.0):
        code = self.proc.wait(timeout)
        for _ in range(100):  # what is left to read (bounded)
            before = len(self.out)
            self._read(0.05)
            if len(self.out) == before:
                break
        return code

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def terminal():
    made = []

    def make(*args, **kw):
        t = Terminal(args, **kw)
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()


# -- a task on a pty -----------------------------------------------------------------------------
def test_pty_gives_task0_a_terminal(instance):
    res = flux("run", "tty")
    assert res.returncode == 1 and res.stdout.strip() == "not a tty"
    res = flux("run", "-o", "pty", "tty")
    assert res.returncode == 0, res.stderr
    assert re.fullmatch(r"/dev/pts/\d+\r?\n", res.stdout), res.stdout


def test_pty_task_is_session_leader_with_controlling_terminal(instance):
    code = ("import os, sys; print(sys.stdin.isatty(), sys.stdout.isatty(),"
            " os.getsid(0) == os.getpid(), os.tcgetpgrp(0) == os.getpgrp());"
            " os.close(os.open('/dev/tty', os.O_RDWR))")
    res = flux("run", "-o", "pty", "python3", "-c", code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["True"] * 4


def test_pty_ranks_and_exit_status(instance):
    res = flux("run", "-n2", "--label-io", "-o", "pty.ranks=all", "sh", "-c",
               "test -t 0 && echo tty || echo pipe; exit 3")
    assert res.returncode == 3
    assert sorted(res.stdout.replace("\r", "").splitlines()) == ["0: tty", "1: tty"]
    res = flux("run", "-n2", "--label-io", "-o", "pty", "sh", "-c",
               "test -t 0 && echo tty || echo pipe")
    assert sorted(res.stdout.replace("\r", "").splitlines()) == ["0: tty", "1: pipe"]


def test_pty_output_in_eventlog_for_a_later_attach(instance):
    res = flux("submit", "-o", "pty", "sh", "-c", "echo out; echo err >&2")
    assert res.returncode == 0, res.stderr
    jobid = res.stdout.strip()
    res = flux("job", "attach", jobid)
    assert res.returncode == 0, res.stderr
    # one terminal: both streams are the task's stdout
    assert res.stdout.replace("\r", "") == "out\nerr\n"


def test_bad_pty_option_fails_the_job(instance):
    res = flux("run", "-o", "pty.ranks=nonsense", "true")
    assert res.returncode != 0
    assert "invalid shell option pty.ranks" in res.stderr


def test_pty_options_merge_on_the_command_line(instance):
    res = flux("run", "--dry-run", "-o", "pty", "-o", "pty.ranks=all", "true")
    options = json.loads(res.stdout)["attributes"]["system"]["shell"]["options"]
    assert options["pty"] == {"ranks": "all"}


def test_alloc_pty_only_from_a_terminal(instance, terminal):
    res = flux("alloc", "--dry-run", "-N1", "true")
    options = json.loads(res.stdout)["attributes"]["system"]["shell"]["options"]
    assert "pty" not in options
    t = terminal("alloc", "--dry-run", "-N1", "true")
    assert t.wait() == 0
    spec = json.loads(t.out.replace(b"\r", b""))
    assert spec["attributes"]["system"]["shell"]["options"]["pty"] == {"interactive": 1}


# -- interactive ---------------------------------------------------------------------------------
def test_interactive_echo_eof_and_terminal_restored(instance, terminal):
    t = terminal("run", "-o", "pty", "sh", "-c", "echo ready; exec cat")
    t.expect(rb"ready\r\n")
    t.type(b"hello there\r")
    # the job's terminal echoes the line, then cat prints it
    t.expect(rb"hello there\r\nhello there\r\n")
    t.type(b"\x04")
    assert t.wait() == 0
    assert termios.tcgetattr(t.slave) == t.settings


def test_interactive_window_size_and_changes(instance, terminal):
    t = terminal("run", "-o", "pty", "sh", "-c",
                 "stty size; echo ready; while read x; do stty size; done",
                 rows=33, cols=101)
    t.expect(rb"33 101\r\nready\r\n")  # set before the task started
    t.resize(40, 120)  # SIGWINCH to flux run, which sends the new size

    def new_size():
        t.type(b"x\r")
        m = t.expect(rb"(\d+) (\d+)\r\n")
        return m.group(0) == b"40 120\r\n"

    poll(new_size, "the new window size in the job")
    t.type(b"\x04")
    assert t.wait() == 0
    assert termios.tcgetattr(t.slave) == t.settings


def test_interactive_ctrl_c_goes_to_the_job(instance, terminal):
    t = terminal("run", "-o", "pty", "sh", "-c", "echo ready; exec sleep 100")
    t.expect(rb"ready\r\n")
    t.type(b"\x03")  # the job's terminal turns it into SIGINT
    assert t.wait() == 128 + signal.SIGINT
    assert termios.tcgetattr(t.slave) == t.settings


def test_terminal_restored_when_attach_is_signalled(instance, terminal):
    t = terminal("run", "-o", "pty", "sh", "-c", "echo ready; exec sleep 100")
    t.expect(rb"ready\r\n")
    assert termios.tcgetattr(t.slave) != t.settings  # raw now
    t.proc.send_signal(signal.SIGTERM)  # forwarded to the job, which dies of it
    assert t.wait() == 128 + signal.SIGTERM
    assert termios.tcgetattr(t.slave) == t.settings


def test_stdin_not_a_terminal_feeds_an_interactive_pty(instance):
    res = flux("run", "-o", "pty.interactive", "cat", input="one\ntwo\n")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.replace("\r", "").splitlines()
    assert lines.count("one") == 2 and lines.count("two") == 2  # echo, cat


def test_interactive_job_cancelled_while_waiting_for_its_terminal(instance):
    res = flux("submit", "-o", "pty.interactive", "echo", "never")
    jobid = res.stdout.strip()
    assert flux("cancel", jobid).returncode == 0
    res = flux("job", "wait-event", "-t", "30", jobid, "clean")
    assert res.returncode == 0, res.stderr
    res = flux("job", "attach", jobid)
    assert "never" not in res.stdout
    assert res.returncode != 0


def test_interactive_job_starts_without_a_terminal_after_the_wait(start_instance):
    with start_instance("job-exec.pty-wait=0.2") as inst:
        env = inst.env()
        res = flux("submit", "-o", "pty.interactive", "echo", "alone", env=env)
        jobid = res.stdout.strip()
        res = flux("job", "attach", "--read-only", jobid, env=env)
        assert res.returncode == 0, res.stderr
        assert res.stdout.replace("\r", "") == "alone\n"


# -- another rank -------------------------------------------------------------------------------
def test_pty_job_on_rank_1(terminal):
    with start_many(2, "-Sresource.cores=1") as many:
        env = many.env()
        assert flux("resource", "drain", "0", env=env).returncode == 0
        res = flux("run", "-o", "pty", "sh", "-c", "tty; echo $FLUX_URI",
                   env=env)
        assert res.returncode == 0, res.stderr
        out = res.stdout.splitlines()
        assert re.fullmatch(r"/dev/pts/\d+", out[0]) and out[1] == many.rank_uri(1)
        t = terminal("run", "-o", "pty", "sh", "-c",
                     "stty size; echo ready; exec cat", env=env, rows=21, cols=77)
        t.expect(rb"21 77\r\nready\r\n")
        t.type(b"far away\r")
        t.expect(rb"far away\r\nfar away\r\n")
        t.type(b"\x04")
        assert t.wait() == 0
        assert termios.tcgetattr(t.slave) == t.settings


# -- bad requests --------------------------------------------------------------------------------
def test_pty_input_errors(h):
    with pytest.raises(OSError) as exc:
        h.rpc("job-exec.pty-input", {"id": 123456789, "data": "x"}).get()
    assert exc.value.errno == errno.ENOENT
    res = flux("submit", "sleep", "100")
    jobid = json.loads(flux("job", "id", "--to=dec", res.stdout.strip()).stdout)
    try:
        flux("job", "wait-event", "-t", "30", str(jobid), "start")
        with pytest.raises(OSError) as exc:
            h.rpc("job-exec.pty-input", {"id": jobid, "data": "x"}).get()
        assert exc.value.errno == errno.EINVAL
        assert "no pty" in exc.value.strerror
        for bad in ({"id": jobid, "winsize": {"rows": "a", "cols": 1}},
                    {"id": jobid, "data": "%%", "encoding": "base64"},
                    {"id": jobid, "data": 5}):
            with pytest.raises(OSError) as exc:
                h.rpc("job-exec.pty-input", bad).get()
            assert exc.value.errno == errno.EPROTO
    finally:
        flux("cancel", str(jobid))


def test_attach_to_a_job_without_pty_from_a_terminal(instance, terminal):
    t = terminal("run", "sh", "-c", "echo plain; test -t 0 || echo notty")
    assert t.wait() == 0
    assert t.out.replace(b"\r", b"") == b"plain\nnotty\n"


def test_pty_input_only_from_the_jobs_owner():
    """The service alone (no broker): a guest may write to the pty of its
    own job only; the owner to any."""
    from flux.constants import (FLUX_MSGTYPE_REQUEST, FLUX_NODEID_ANY,
                                FLUX_ROLE_LOCAL, FLUX_ROLE_OWNER, FLUX_ROLE_USER)
    from flux.message import Message
    from fluxrm.broker.router import Router
    from fluxrm.modules.job_exec import JobExec
    from fluxrm.modules.job_exec.execjob import ExecJob, Task
    from fluxrm.modules.job_exec.pty import PtyTask

    class Broker:
        rank, size = 0, 1

        def __init__(self):
            self.router = Router(self)

        def log(self, level, text, appname="broker"):
            pass

    class Sender:
        ident, closed = "client-1", False

        def __init__(self):
            self.sent = []
            self.services_used = set()

        def send(self, msg):
            self.sent.append(msg)

    broker = Broker()
    service = JobExec(broker)
    broker.router.add_service(service)
    master, slave = os.openpty()
    try:
        ej = ExecJob(42, 5001, {}, None)
        service.jobs[42] = ej
        service.ptys[42] = PtyTask(ej, Task(0), master, None, os.ttyname(slave))

        def ask(userid, rolemask):
            msg = Message.build(FLUX_MSGTYPE_REQUEST, "job-exec.pty-input",
                                {"id": 42, "data": "hi\n"}, matchtag=7,
                                nodeid=FLUX_NODEID_ANY)
            msg.userid, msg.rolemask = userid, rolemask
            sender = Sender()
            broker.router.dispatch(msg, sender)
            return sender.sent[0].errnum

        guest = FLUX_ROLE_USER | FLUX_ROLE_LOCAL
        assert ask(5002, guest) == errno.EPERM
        assert ask(5001, guest) == 0
        assert ask(5002, FLUX_ROLE_OWNER | guest) == 0
        # the task's side reads the two lines written (canonical mode: one a read)
        assert [os.read(slave, 100) for _ in range(2)] == [b"hi\n", b"hi\n"]
    finally:
        os.close(master)
        os.close(slave)
