"""job-exec and sched through the public API: real processes on counted cores."""

import errno
import json
import os
import signal
import socket
import subprocess
import sys

import pytest

import flux
from conftest import poll
import flux.job
import flux.kvs
from flux.job import JobspecV1


def run(h, js, **kw):
    """Submit a waitable job, wait for it, return (jobid, JobWaitResult)."""
    jobid = flux.job.submit(h, js, waitable=True, **kw)
    return jobid, flux.job.wait(h, jobid)


def output_of(h, jobid):
    out = flux.job.job_output(h, jobid)
    return out.stdout, out.stderr


def events(h, jobid, path="eventlog"):
    return [e.name for e in flux.job.event_watch(h, jobid, path)]


def sh(script, **kw):
    js = JobspecV1.from_command(["sh", "-c", script], **kw)
    js.cwd = os.getcwd()
    return js


def test_main_eventlog_sequence(h):
    jobid, res = run(h, sh("true"))
    assert res.success and res.errstr == b""
    assert events(h, jobid) == ["submit", "validate", "depend", "priority", "alloc",
                                "start", "finish", "release", "free", "clean"]
    assert events(h, jobid, "guest.exec.eventlog") == [
        "init", "starting", "shell.init", "shell.start", "complete", "done"]


def test_exit_code_and_output(h):
    jobid, res = run(h, sh("echo out; echo err >&2; exit 3"))
    assert not res.success
    assert res.errstr == b"task(s) exited with exit code 3"
    assert output_of(h, jobid) == ("out\n", "err\n")
    info = flux.job.result(h, jobid)
    assert info.returncode == 3


def test_environment_and_cwd(h, tmp_path):
    js = JobspecV1.from_command(
        ["sh", "-c", "pwd; echo $FLUX_JOB_ID $FLUX_JOB_SIZE $FLUX_JOB_NNODES "
         "$FLUX_TASK_RANK $FLUX_TASK_LOCAL_ID $FLUX_URI $MYVAR"],
        environment={"PATH": os.environ["PATH"], "MYVAR": "hello"})
    js.cwd = str(tmp_path)
    jobid, res = run(h, js)
    assert res.success
    lines = output_of(h, jobid)[0].splitlines()
    assert lines[0] == str(tmp_path)
    fields = lines[1].split()
    assert flux.job.JobID(fields[0]) == jobid
    assert fields[1:5] == ["1", "1", "0", "0"]
    assert fields[5] == h.attr_get("local-uri")
    assert fields[6] == "hello"


def test_multiple_tasks_have_ranks(h, start_instance):
    with start_instance("resource.cores=4") as inst:
        h4 = inst.handle()
        js = sh("echo $FLUX_TASK_RANK", num_tasks=4)
        jobid, res = run(h4, js)
        assert res.success
        out = flux.job.job_output(h4, jobid, labelio=True).stdout
        assert sorted(out.splitlines()) == ["0: 0", "1: 1", "2: 2", "3: 3"]


def test_cpu_affinity_is_the_allocation(h):
    js = sh("grep Cpus_allowed_list /proc/self/status")
    jobid, res = run(h, js)
    assert res.success
    allowed = output_of(h, jobid)[0].split(":")[1].strip()
    R = flux.job.job_kvs_lookup(h, jobid, keys=["R"])["R"]
    cores = R["execution"]["R_lite"][0]["children"]["core"]
    real = sorted(os.sched_getaffinity(0))
    assert allowed == str(real[int(cores)])


def test_gpus_from_attribute(start_instance):
    with start_instance("resource.gpus=2") as inst:
        h2 = inst.handle()
        js = sh("echo $CUDA_VISIBLE_DEVICES", gpus_per_task=1)
        jobid, res = run(h2, js)
        assert res.success
        assert output_of(h2, jobid)[0].strip() == "0"
        R = flux.job.job_kvs_lookup(h2, jobid, keys=["R"])["R"]
        assert R["execution"]["R_lite"][0]["children"]["gpu"] == "0"
        # a job without gpus sees none
        jobid, res = run(h2, sh("echo ${CUDA_VISIBLE_DEVICES-unset}"))
        assert output_of(h2, jobid)[0].strip() == "-1"


def test_unsatisfiable_request_fails_at_once(h):
    ncores = len(os.sched_getaffinity(0))
    js = sh("true", num_tasks=ncores + 1)
    jobid, res = run(h, js)
    assert not res.success
    assert b"unsatisfiable request" in res.errstr
    with pytest.raises(flux.job.JobException) as e:
        flux.job.event_wait(h, jobid, "alloc")
    assert e.value.type == "alloc"
    js = sh("true", gpus_per_task=1)
    jobid, res = run(h, js)
    assert b"unsatisfiable request" in res.errstr


def test_unsupported_shape_rejected_at_submit(h):
    js = JobspecV1.from_command(["true"])
    js.jobspec["resources"] = [{"type": "core", "count": 1}]
    with pytest.raises(OSError) as e:
        flux.job.submit(h, json.dumps(js.jobspec))
    assert e.value.errno == errno.EINVAL


def test_command_not_found_is_exec_exception(h):
    js = JobspecV1.from_command(["/nonexistent/prog"])
    jobid, res = run(h, js)
    assert not res.success
    assert b"type=exec" in res.errstr
    info = flux.job.result(h, jobid)
    assert info.exception.type == "exec"
    assert "/nonexistent/prog" in info.exception.note
    finish = flux.job.event_wait(h, jobid, "finish", raiseJobException=False)
    assert finish.context["status"] == 127 << 8


def test_time_limit_timeout(h):
    js = sh("sleep 30", duration=0.2)
    jobid, res = run(h, js)
    assert not res.success
    info = flux.job.result(h, jobid)
    assert info.result == "TIMEOUT"
    assert info.exception.type == "timeout"
    assert info.exception.note == "resource allocation expired"


def test_cancel_running_job_is_sigterm(h):
    jobid = flux.job.submit(h, sh("sleep 30"), waitable=True)
    flux.job.event_wait(h, jobid, "start")
    flux.job.cancel(h, jobid)
    res = flux.job.wait(h, jobid)
    assert not res.success
    info = flux.job.result(h, jobid)
    assert info.result == "CANCELED"
    assert info.returncode == 128 + signal.SIGTERM  # as a job shell reports it
    finish = flux.job.event_wait(h, jobid, "finish", raiseJobException=False)
    assert finish.context["status"] == (128 + signal.SIGTERM) << 8


def test_cancel_escalates_to_sigkill(start_instance):
    with start_instance("job-exec.kill-timeout=0.2") as inst:
        hk = inst.handle()
        jobid = flux.job.submit(hk, sh("trap '' TERM; echo ready; sleep 30 & wait"),
                                waitable=True)
        flux.job.event_wait(hk, jobid, "start")
        for stream, _data in flux.job.output_watch(hk, jobid):
            break  # the trap is installed once "ready" is printed
        flux.job.cancel(hk, jobid)
        flux.job.wait(hk, jobid)
        finish = flux.job.event_wait(hk, jobid, "finish", raiseJobException=False)
        assert finish.context["status"] == (128 + signal.SIGKILL) << 8


def test_kill_delivers_signal(h):
    jobid = flux.job.submit(h, sh("trap 'echo got USR1; exit 0' USR1; echo ready; "
                                  "while :; do sleep 0.01; done"), waitable=True)
    for _stream, data in flux.job.output_watch(h, jobid):
        if "ready" in data:
            break
    flux.job.kill(h, jobid, signal.SIGUSR1)
    res = flux.job.wait(h, jobid)
    assert res.success
    assert "got USR1" in output_of(h, jobid)[0]


def test_binary_output_is_base64(h):
    jobid, res = run(h, sh(r"printf '\377\376'"))
    assert res.success
    lines = flux.kvs.get(h, flux.job.JobID(jobid).kvs + ".guest.output")
    assert '"encoding":"base64"' in lines


def test_output_limit(start_instance):
    with start_instance("job-exec.output-limit=1000") as inst:
        hl = inst.handle()
        jobid, res = run(hl, sh("head -c 100000 /dev/zero | tr '\\0' x"))
        assert res.success
        out = flux.job.job_output(hl, jobid)
        assert len(out.stdout) == 1000
        assert "output limit" in out.stderr + out.log


def test_stdin_and_output_files(h, tmp_path):
    (tmp_path / "in.txt").write_text("from a file\n")
    js = JobspecV1.from_command(["cat"], input=str(tmp_path / "in.txt"),
                                output=str(tmp_path / "out-{{id}}.txt"))
    js.cwd = str(tmp_path)
    jobid, res = run(h, js)
    assert res.success
    path = tmp_path / f"out-{flux.job.JobID(jobid).f58}.txt"
    assert path.read_text() == "from a file\n"


def test_missing_input_file_is_exec_exception(h, tmp_path):
    js = JobspecV1.from_command(["cat"], input=str(tmp_path / "nope.txt"))
    jobid, res = run(h, js)
    assert not res.success
    info = flux.job.result(h, jobid)
    assert info.exception.type == "exec"
    assert "nope.txt: No such file or directory" in info.exception.note
    finish = flux.job.event_wait(h, jobid, "finish", raiseJobException=False)
    assert finish.context["status"] == 127 << 8


def test_missing_cwd_is_exec_exception(h, tmp_path):
    js = JobspecV1.from_command(["true"])
    js.cwd = str(tmp_path / "missing")
    jobid, res = run(h, js)
    assert not res.success
    info = flux.job.result(h, jobid)
    assert info.exception.type == "exec"
    assert f"chdir {tmp_path / 'missing'}: No such file or directory" in info.exception.note


def test_simulated_execution(h):
    js = JobspecV1.from_command(["true"])
    js.setattr("system.exec.test", {"run_duration": "0.01s", "wait_status": 256})
    jobid, res = run(h, js)
    assert not res.success
    assert res.errstr == b"task(s) exited with exit code 1"


def test_exclusive_node(start_instance):
    with start_instance("resource.cores=4") as inst:
        h4 = inst.handle()
        js = JobspecV1.from_command(["true"], num_nodes=1, exclusive=True)
        jobid, res = run(h4, js)
        assert res.success
        R = flux.job.job_kvs_lookup(h4, jobid, keys=["R"])["R"]
        assert R["execution"]["R_lite"][0]["children"]["core"] == "0-3"


def test_jobs_queue_when_cores_are_busy(start_instance):
    with start_instance("resource.cores=1") as inst:
        h1 = inst.handle()
        blocker = flux.job.submit(h1, sh("sleep 30"), waitable=True)
        flux.job.event_wait(h1, blocker, "start")
        queued = flux.job.submit(h1, sh("true"), waitable=True)
        # the second job cannot start while the only core is taken
        state = flux.job.job_list_id(h1, queued).get_jobinfo().state \
            if hasattr(flux.job, "job_list_id") else None
        assert state in (None, "SCHED")
        flux.job.cancel(h1, blocker)
        assert flux.job.wait(h1, queued).success


def test_priority_order_and_hold(start_instance):
    with start_instance("resource.cores=1") as inst:
        hp = inst.handle()
        blocker = flux.job.submit(hp, sh("sleep 30"), waitable=True)
        flux.job.event_wait(hp, blocker, "start")
        low = flux.job.submit(hp, sh("true"), urgency=10, waitable=True)
        high = flux.job.submit(hp, sh("true"), urgency=20, waitable=True)
        held = flux.job.submit(hp, sh("true"), urgency=0, waitable=True)
        flux.job.cancel(hp, blocker)
        flux.job.wait(hp, blocker)
        t_high = flux.job.event_wait(hp, high, "alloc").timestamp
        t_low = flux.job.event_wait(hp, low, "alloc").timestamp
        assert t_high <= t_low
        for jobid in (low, high):
            assert flux.job.wait(hp, jobid).success
        # the held job has not run; releasing it lets it run
        hp.rpc("job-manager.urgency", {"id": held, "urgency": 16}).get()
        assert flux.job.wait(hp, held).success


def test_killed_by_signal(h):
    jobid, res = run(h, sh("kill -KILL $$"))
    assert not res.success
    assert res.errstr == b"task(s) Killed"
    finish = flux.job.event_wait(h, jobid, "finish")
    assert finish.context["status"] == (128 + signal.SIGKILL) << 8
    assert flux.job.result(h, jobid).returncode == 128 + signal.SIGKILL


def test_output_without_trailing_newline(h):
    jobid, res = run(h, sh("printf 'no newline'; printf 'err' >&2"))
    assert res.success
    assert output_of(h, jobid) == ("no newline", "err")


def test_utf8_split_across_reads_is_text(h):
    # 3-byte characters written in pieces stay text, not base64
    jobid, res = run(h, sh(r"printf '\342'; sleep 0.05; printf '\202\254 euro\n'"))
    assert res.success
    assert output_of(h, jobid)[0] == "€ euro\n"


def test_many_jobs_through_wait_any(start_instance):
    with start_instance() as inst:
        _many_jobs_through_wait_any(inst.handle())


def _many_jobs_through_wait_any(h):
    js = JobspecV1.from_command(["true"])
    js.setattr("system.exec.test", {"run_duration": "0s"})
    ids = set()
    futures = [flux.job.submit_async(h, js, waitable=True) for _ in range(1000)]
    for f in futures:
        ids.add(f.get_id())
    seen = set()
    for _ in range(1000):
        res = flux.job.wait(h)
        assert res.success
        seen.add(res.jobid)
    assert seen == ids
    with pytest.raises(ChildProcessError, match="no more waitable jobs"):
        flux.job.wait(h)


def test_simulated_job_can_be_killed(h):
    js = JobspecV1.from_command(["true"])
    js.setattr("system.exec.test", {"run_duration": "1h"})
    jobid = flux.job.submit(h, js, waitable=True)
    flux.job.event_wait(h, jobid, "start")
    flux.job.kill(h, jobid, signal.SIGUSR1)
    res = flux.job.wait(h, jobid)
    assert res.errstr == b"task(s) User defined signal 1"


def test_bad_simulation_attribute_fails_the_job(h):
    js = JobspecV1.from_command(["true"])
    js.setattr("system.exec.test", {"run_duration": "0s", "wait_status": "x"})
    jobid, res = run(h, js)
    assert not res.success
    assert b"invalid system.exec.test" in res.errstr


def test_per_resource_tasks(start_instance):
    with start_instance("resource.cores=3") as inst:
        h3 = inst.handle()
        js = JobspecV1.per_resource(["sh", "-c", "echo $FLUX_TASK_RANK"], nnodes=1,
                                    per_resource_type="node", per_resource_count=2,
                                    exclusive=True)
        js.cwd = os.getcwd()
        jobid, res = run(h3, js)
        assert res.success
        assert sorted(output_of(h3, jobid)[0].split()) == ["0", "1"]
        js = JobspecV1.per_resource(["true"], ncores=3, per_resource_type="core",
                                    per_resource_count=1)
        jobid, res = run(h3, js)
        assert res.success
        header = next(e for e in flux.job.event_watch(h3, jobid, "guest.output"))
        assert header.context["count"]["stdout"] == 3


# -- the watchdog: no task outlives its broker -------------------------------------------

DEADLINE = 30.0


def _task_pids(h, jobid, n):
    """The pids the job's tasks print first (``echo $$``)."""
    pids = set()
    for _stream, data in flux.job.output_watch(h, jobid):
        pids.update(int(word) for word in data.split() if word.isdigit())
        if len(pids) >= n:
            return pids
    raise AssertionError(f"job {jobid} ended before printing {n} pids")


def _alive(pid):
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _poll(predicate, what):
    return poll(predicate, what, DEADLINE)


def _watchdogs(broker_pid):
    """Pids of the broker's live watchdog children (from /proc)."""
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().split(b"\0")
        except (OSError, ValueError):
            continue
        if int(fields[1]) == broker_pid and fields[0] != "Z" \
                and b"fluxrm.watchdog" in cmdline:
            found.add(int(name))
    return found


def test_broker_sigkill_leaves_no_task(start_instance):
    with start_instance("resource.cores=2") as inst:
        h = inst.handle()
        jobid = flux.job.submit(h, sh("echo $$; exec sleep 1000", num_tasks=2),
                                waitable=True)
        pids = _task_pids(h, jobid, 2)
        assert all(_alive(p) for p in pids)
        os.kill(inst.proc.pid, signal.SIGKILL)
        inst.proc.wait()
        _poll(lambda: not any(_alive(p) for p in pids), f"tasks {pids} to die")


def test_watchdog_replaced_when_it_dies(start_instance, flux_cli):
    with start_instance() as inst:
        h = inst.handle()
        jobid = flux.job.submit(h, sh("echo $$; exec sleep 1000"), waitable=True)
        (pid,) = _task_pids(h, jobid, 1)
        (old,) = _poll(lambda: _watchdogs(inst.proc.pid), "the watchdog")
        os.kill(old, signal.SIGKILL)
        _poll(lambda: f"watchdog (pid {old}) was killed by signal 9" in
              flux_cli("dmesg", env=inst.env()).stdout, "the log entry")
        # a new watchdog takes over the running task
        _poll(lambda: _watchdogs(inst.proc.pid) - {old}, "a new watchdog")
        os.kill(inst.proc.pid, signal.SIGKILL)
        inst.proc.wait()
        _poll(lambda: not _alive(pid), f"task {pid} to die")


def test_watchdog_command_line_errors():
    for args in ([], ["x"], ["1", "2"]):
        res = subprocess.run([sys.executable, "-m", "fluxrm.watchdog", *args],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 2
        assert "usage: python -m fluxrm.watchdog FD" in res.stderr
    res = subprocess.run([sys.executable, "-m", "fluxrm.watchdog", "987"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "file descriptor 987" in res.stderr


def test_watchdog_lifts_its_open_files_limit():
    """It holds a pidfd per running task: a soft limit of 64 open files
    would lose tasks past the 60th, so it raises the limit to the hard one."""
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 64:
        pytest.skip("hard limit on open files too low to show anything")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    proc = subprocess.Popen(
        [sys.executable, "-m", "fluxrm.watchdog", str(theirs.fileno())],
        pass_fds=[theirs.fileno()],
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard)))
    theirs.close()
    try:
        def soft_limit():
            with open(f"/proc/{proc.pid}/limits") as f:
                for line in f:
                    if line.startswith("Max open files"):
                        return line.split()[3]
            return None

        expected = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
        _poll(lambda: soft_limit() == expected, "the watchdog's soft limit to rise")
    finally:
        ours.close()  # end of file: the watchdog exits
        assert proc.wait(DEADLINE) == 0
