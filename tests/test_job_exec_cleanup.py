"""Nothing a job started outlives it, and no job waits forever for its output.

Against real instances: a task that leaves a background child holding its
stdout completes after ``job-exec.output-grace`` (the child is killed);
cancel and the watchdog reach children that left the task's process group
or session; a job stuck like that when the broker died or stopped does not
stay stuck, nor leave its processes, across a restart on the state directory.

Each test uses its own ``sleep`` duration, so leftovers are found (and killed
in a ``finally``) by their command line.
"""

import os
import signal
import socket
import subprocess
import sys

import pytest

import flux
from conftest import poll
import flux.job
from flux.job import JobspecV1
from fluxrm.watchdog import STOP

DEADLINE = 30.0  # bound on every wait: a failure, never a hang


def sh(script):
    js = JobspecV1.from_command(["sh", "-c", script])
    js.cwd = os.getcwd()
    return js


def _stat(pid):
    """(state, ppid, pgid, sid) of ``pid``, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    return fields[0], int(fields[1]), int(fields[2]), int(fields[3])


def _sleeps(seconds):
    """Live processes running ``sleep SECONDS``."""
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        st = _stat(name)
        if argv[:2] == [b"sleep", str(seconds).encode()] and st and st[0] not in "ZX":
            found.add(int(name))
    return found


def _poll(predicate, what):
    return poll(predicate, what, DEADLINE)


def _kill_sleeps(seconds):
    for pid in _sleeps(seconds):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _wait(h, jobid):
    return flux.job.wait_async(h, jobid).wait_for(DEADLINE).get_status()


def _pids(h, jobid, n):
    """The first ``n`` numbers the job prints (pids it reports)."""
    pids = []
    for _stream, data in flux.job.output_watch(h, jobid):
        pids.extend(int(w) for w in data.split() if w.isdigit())
        if len(pids) >= n:
            return pids[:n]
    raise AssertionError(f"job {jobid} ended before printing {n} pids")


def test_background_child_holding_stdout_does_not_hold_the_job(start_instance):
    try:
        with start_instance("job-exec.output-grace=0.2") as inst:
            h = inst.handle()
            jobid = flux.job.submit(h, sh("echo before; echo oops >&2; sleep 7231 & "
                                          "echo $!; exit 0"), waitable=True)
            res = _wait(h, jobid)
            assert res.success, res.errstr
            assert flux.job.result(h, jobid).returncode == 0
            out = flux.job.job_output(h, jobid)
            (pid,) = [int(w) for w in out.stdout.split() if w.isdigit()]
            assert out.stdout.startswith("before\n")  # printed before exit: kept
            assert out.stderr == "oops\n"
            _poll(lambda: not _sleeps(7231), "the background sleep to be killed")
            assert _stat(pid) is None or _stat(pid)[0] in "ZX"
            # its core is free again: the next job runs
            assert _wait(h, flux.job.submit(h, sh("true"), waitable=True)).success
    finally:
        _kill_sleeps(7231)


def test_default_grace_and_exit_status_of_the_task(start_instance):
    try:
        with start_instance() as inst:
            h = inst.handle()
            jobid = flux.job.submit(h, sh("sleep 7232 & exit 3"), waitable=True)
            res = _wait(h, jobid)
            assert not res.success
            assert flux.job.result(h, jobid).returncode == 3
            _poll(lambda: not _sleeps(7232), "the background sleep to be killed")
    finally:
        _kill_sleeps(7232)


def test_late_output_of_a_child_within_the_grace_is_kept(start_instance):
    with start_instance("job-exec.output-grace=60") as inst:
        h = inst.handle()
        # the child writes after the task exited, then closes: the job ends
        # then, without waiting for the rest of the grace
        jobid = flux.job.submit(h, sh("(sleep 0.2; echo late) & echo early"),
                                waitable=True)
        assert _wait(h, jobid).success
        assert flux.job.job_output(h, jobid).stdout == "early\nlate\n"


def test_cancel_reaches_a_setsid_child(start_instance):
    try:
        with start_instance("job-exec.kill-timeout=0.5") as inst:
            h = inst.handle()
            # the child leaves the task's session and process group, and its
            # output does not go through the job's pipes
            jobid = flux.job.submit(h, sh(
                "setsid sleep 7233 </dev/null >/dev/null 2>&1 & echo $$ $!; wait"),
                waitable=True)
            task, child = _pids(h, jobid, 2)
            # in a session of its own once setsid(1) has done its part
            _poll(lambda: _sleeps(7233) == {child}, "the child to run sleep")
            assert _stat(child)[3] == child != _stat(task)[3]
            flux.job.cancel(h, jobid)
            assert not _wait(h, jobid).success
            _poll(lambda: not _sleeps(7233), "the setsid child to be killed")
    finally:
        _kill_sleeps(7233)


def test_cancel_reaches_a_setsid_child_that_ignores_sigterm(start_instance):
    try:
        with start_instance("job-exec.kill-timeout=0.3") as inst:
            h = inst.handle()
            jobid = flux.job.submit(h, sh(
                "setsid sh -c \"trap '' TERM; echo \\$\\$; sleep 7234; :\" & wait"),
                waitable=True)
            (child,) = _pids(h, jobid, 1)
            flux.job.cancel(h, jobid)
            assert not _wait(h, jobid).success
            _poll(lambda: _stat(child) is None or _stat(child)[0] in "ZX",
                  "the setsid shell to be killed")
            _poll(lambda: not _sleeps(7234), "its sleep to be killed")
    finally:
        _kill_sleeps(7234)


@pytest.mark.parametrize("target", ["broker", "its process group"])
def test_broker_sigkill_takes_a_setsid_child_with_it(start_instance, target):
    """Also when the whole process group of the broker is killed at once
    (kill -9 -PGID): the watchdog lives in a session of its own."""
    try:
        with start_instance() as inst:
            h = inst.handle()
            jobid = flux.job.submit(h, sh("setsid sleep 7235 & echo $!; wait"),
                                    waitable=True)
            (child,) = _pids(h, jobid, 1)
            _poll(lambda: _sleeps(7235) == {child}, "the child to run sleep")
            assert _stat(child)[3] == child  # a session of its own
            if target == "broker":
                os.kill(inst.proc.pid, signal.SIGKILL)
            else:
                os.killpg(os.getpgid(inst.proc.pid), signal.SIGKILL)
            inst.proc.wait()
            _poll(lambda: not _sleeps(7235), "the setsid child to die with the broker")
    finally:
        _kill_sleeps(7235)


def _stuck_job_across_restart(start_instance, statedir, seconds, how):
    """A job whose task exited but whose child holds stdout (a long grace):
    the broker goes (``how``), the child goes with it, and at restart the job
    ends with an exception instead of staying in RUN."""
    attrs = (f"statedir={statedir}", "job-exec.output-grace=600")
    with start_instance(*attrs) as inst:
        h = inst.handle()
        jobid = flux.job.submit(h, sh(f"sleep {seconds} & echo $$; exit 0"),
                                waitable=True)
        (task,) = _pids(h, jobid, 1)
        _poll(lambda: _stat(task) is None or _stat(task)[0] in "ZX", "the task to exit")
        _poll(lambda: len(_sleeps(seconds)) == 1, "the child to run sleep")
        assert flux.job.list.get_job(h, jobid)["state"] == "RUN"
        how(inst)
    _poll(lambda: not _sleeps(seconds), "the child to die with the broker")
    with start_instance(*attrs) as inst:
        h = inst.handle()
        res = _wait(h, jobid)
        assert not res.success
        info = flux.job.result(h, jobid)
        assert info.exception.note == "job was running when the instance stopped"


def test_stuck_job_broker_sigkilled_then_restarted(start_instance, tmp_path):
    def sigkill(inst):
        os.kill(inst.proc.pid, signal.SIGKILL)
        inst.proc.wait()

    try:
        _stuck_job_across_restart(start_instance, tmp_path, 7236, sigkill)
    finally:
        _kill_sleeps(7236)


def test_stuck_job_broker_stopped_then_restarted(start_instance, tmp_path):
    try:
        _stuck_job_across_restart(start_instance, tmp_path, 7237, lambda inst: None)
    finally:
        _kill_sleeps(7237)


def test_orphaned_setsid_child_found_by_its_environment(start_instance):
    """The task exits at once; its child left the task's session and holds
    stdout: it is the broker's (a subreaper's) child now, and only its
    environment (FLUX_URI, FLUX_JOB_ID) tells which job it is of."""
    try:
        with start_instance("job-exec.output-grace=0.2") as inst:
            h = inst.handle()
            jobid = flux.job.submit(h, sh("setsid sleep 7238 & echo $!"), waitable=True)
            res = _wait(h, jobid)
            assert res.success, res.errstr
            _poll(lambda: not _sleeps(7238), "the orphan to be killed")
    finally:
        _kill_sleeps(7238)


def test_invalid_output_grace_is_logged_and_the_default_used(start_instance, flux_cli):
    try:
        with start_instance("job-exec.output-grace=soon") as inst:
            dmesg = flux_cli("dmesg", env=inst.env()).stdout
            assert "job-exec.output-grace: invalid duration 'soon'; using 2s" in dmesg
            h = inst.handle()
            jobid = flux.job.submit(h, sh("sleep 7239 & exit 0"), waitable=True)
            assert _wait(h, jobid).success
            _poll(lambda: not _sleeps(7239), "the background sleep to be killed")
    finally:
        _kill_sleeps(7239)


def test_watchdog_kills_by_environment_only_when_the_broker_dies():
    """Straight through its command line: a process with the instance's
    FLUX_URI and a FLUX_JOB_ID survives a watchdog told goodbye (the broker
    stops normally) and dies with one whose socket just closes."""
    uri = f"local:///nonexistent/fluxrm-test-{os.getpid()}/local"
    env = dict(os.environ, FLUX_URI=uri, FLUX_JOB_ID="f1")
    # it echoes lines: an answer proves it has no SIGKILL pending
    victim = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfor line in sys.stdin: print(line, end='')"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    try:
        for goodbye in (True, False):
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            proc = subprocess.Popen(
                [sys.executable, "-m", "fluxrm.watchdog", str(theirs.fileno()),
                 f"--uri={uri}"], pass_fds=[theirs.fileno()])
            theirs.close()
            if goodbye:
                ours.send(STOP)
            ours.close()
            assert proc.wait(DEADLINE) == 0
            if goodbye:
                victim.stdin.write("still here\n")
                assert victim.stdout.readline() == "still here\n"
        assert victim.wait(DEADLINE) == -signal.SIGKILL
    finally:
        victim.kill()
        victim.wait()


def test_flux_run_of_a_task_leaving_a_child_returns(start_instance, flux_cli):
    try:
        with start_instance("job-exec.output-grace=0.2") as inst:
            res = flux_cli("run", "sh", "-c", "echo hi; sleep 7241 & exit 5",
                           env=inst.env(), timeout=DEADLINE)
            assert (res.returncode, res.stdout) == (5, "hi\n"), res.stderr
            _poll(lambda: not _sleeps(7241), "the background sleep to be killed")
    finally:
        _kill_sleeps(7241)


def test_background_child_not_holding_output_ends_with_the_job(start_instance):
    """``sleep >/dev/null &`` holds no pipe, so the job completes at once;
    what was left in the task's process group goes with it."""
    try:
        with start_instance() as inst:
            h = inst.handle()
            jobid = flux.job.submit(
                h, sh("sleep 7241 >/dev/null 2>&1 & echo $!; exit 0"), waitable=True)
            (child,) = _pids(h, jobid, 1)
            assert _wait(h, jobid).success
            _poll(lambda: not _sleeps(7241), "the background child to end with its job")
    finally:
        _kill_sleeps(7241)
