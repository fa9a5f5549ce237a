"""flux.job.watcher.JobWatcher (spec 18.3) and flux submit --watch on top of it."""

import io
import os
import re
import signal

import pytest

import flux.job
from flux.job import JobID, JobspecV1, JobWatcher

SIM = "--setattr=system.exec.test.run_duration=0s"


def _submit(h, *command, **kw):
    js = JobspecV1.from_command(list(command), **kw)
    js.environment = dict(os.environ)
    return flux.job.submit(h, js)


def test_output_callback_and_exitcode(h):
    ids = [_submit(h, "sh", "-c", f"echo job{i}; exit {i}") for i in range(3)]
    got = []
    watcher = JobWatcher(h, output_callback=lambda *item: got.append(item))
    for jobid in ids:
        watcher.add_jobid(jobid)
    watcher.start()
    h.reactor_run()
    watcher.stop()
    assert watcher.exitcode == 2
    for i, jobid in enumerate(ids):
        mine = [(s, d) for j, s, d in got if j == jobid]
        assert mine == [("stdout", f"job{i}\n"), (None, None)]


def test_signal_and_failed_before_start(h, tmp_path):
    killed = _submit(h, "sh", "-c", "kill -TERM $$")
    out = open(tmp_path / "out", "w")
    err = open(tmp_path / "err", "w")
    try:
        watcher = JobWatcher(h, stdout=out, stderr=err, log_status=True)
        watcher.add_jobid(killed)
        h.reactor_run()
        assert watcher.exitcode == 128 + signal.SIGTERM
        never = _submit(h, "true", num_tasks=100000)
        watcher2 = JobWatcher(h, stdout=out, stderr=err)
        watcher2.add_jobid(never)
        h.reactor_run()
        assert watcher2.exitcode == 1
    finally:
        out.close()
        err.close()
    text = (tmp_path / "err").read_text()
    assert re.search(rf"^{JobID(killed)}: \d+\.\d{{3}}s: failed: status={143 << 8}$", text, re.M)
    assert re.search(r"^job.exception: type=alloc severity=0 ", text, re.M)


def test_stringio_streams_need_callback(h):
    with pytest.raises(io.UnsupportedOperation):
        JobWatcher(h, stdout=io.StringIO(), stderr=io.StringIO())
    JobWatcher(h, stdout=io.StringIO(), output_callback=lambda *a: None)


def test_wait_is_per_job_and_log_events(h, tmp_path):
    jobid = _submit(h, "true")
    err = open(tmp_path / "err", "w")
    try:
        watcher = JobWatcher(h, wait="start", watch=False, log_events=True,
                             stderr=err, stdout=err)
        assert JobWatcher.add_jobid.__defaults__[-1] == "clean"
        watcher.add_jobid(jobid, wait="exec.shell.init")
        h.reactor_run()
    finally:
        err.close()
    lines = (tmp_path / "err").read_text().splitlines()
    f58 = str(JobID(jobid))
    assert all(line.startswith(f"{f58}: ") for line in lines)
    assert re.match(rf"^{f58}: \d+\.\d{{3}}s: submit \{{", lines[0])
    assert any(line.endswith("s: exec.shell.init " + line.split("exec.shell.init ")[-1])
               for line in lines if "exec.shell.init" in line)


def test_submit_watch_labels_and_verbose(instance, flux_cli):
    proc = flux_cli("submit", "--watch", "-l", "-v", "-n2", "echo", "hi")
    assert proc.returncode == 0, proc.stderr
    f58 = proc.stdout.splitlines()[0]
    assert sorted(proc.stdout.splitlines()[1:]) == [f"{f58}: 0: hi", f"{f58}: 1: hi"]
    assert re.search(rf"^{f58}: \d+\.\d{{3}}s: complete: status=0$", proc.stderr, re.M)
    proc = flux_cli("submit", "--cc=1-20", "--wait", "--quiet", SIM, "true")
    assert (proc.returncode, proc.stdout) == (0, "")
    proc = flux_cli("bulksubmit", "--watch", "--progress", "--quiet", "sh", "-c",
                    "echo {0}; exit {0}", ":::", "0", "3")
    assert proc.returncode == 3, proc.stderr
    assert sorted(proc.stdout.split()) == ["0", "3"]
    assert re.search(r"PD:0 +R:0 +CD:1 +F:1 ", proc.stderr)
