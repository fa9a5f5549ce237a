"""Instances inside jobs: ``flux batch``, ``flux alloc``, ``flux broker``,
jobspec files and ``{{tmpdir}}``, against real instances (each test its own
parent, so that nested brokers and their jobs never share a parent with
other tests)."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import flux
import flux.job
from conftest import poll, run_flux, start_many
from flux.job import JobspecV1


@pytest.fixture
def parent():
    """A parent instance of one broker presenting 4 cores."""
    with start_many(1, "-Sresource.cores=4") as inst:
        yield inst


def flux_ok(inst, *args, **kw):
    proc = run_flux(*args, env=inst.env(), **kw)
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc.stdout


def script(tmp_path, name, text):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(text))
    path.chmod(0o755)
    return str(path)


def wait_result(inst, jobid, timeout=120):
    future = flux.job.result_async(inst.handle(), jobid)
    future.wait_for(timeout)  # TimeoutError rather than a hang
    return future.get_info()


def test_batch_runs_100_jobs_invisible_to_parent(parent, tmp_path):
    go = tmp_path / "go"
    path = script(tmp_path, "many.sh", f"""\
        set -e
        flux submit --cc=1-100 --quiet --wait sh -c 'echo $FLUX_TASK_RANK'
        echo done $(flux jobs -a -n -f completed | wc -l)
        echo level $(flux getattr instance-level) size $(flux getattr size)
        flux resource list -n -s free -o '{{ncores}}'
        touch {tmp_path}/ran
        # wait (bounded) until the test has used the parent's other cores
        n=0; while [ ! -e {go} ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done
        """)
    out = flux_ok(parent, "batch", "-n2", "--output", f"{tmp_path}/out.txt", path)
    jobid = flux.job.JobID(out.strip())
    poll(lambda: (tmp_path / "ran").exists(), "the batch script's jobs")
    # the two cores the batch job did not get stay usable meanwhile
    flux_ok(parent, "run", "-n2", "true")
    # the child's 100 jobs are not the parent's
    listed = flux_ok(parent, "jobs", "-a", "-n", "-o", "{id}").split()
    assert len(listed) == 2
    go.touch()
    assert wait_result(parent, jobid).returncode == 0
    lines = (tmp_path / "out.txt").read_text().splitlines()
    assert lines == ["done 100", "level 1 size 1", "2"]


def test_batch_exit_status_is_the_job_s(parent, tmp_path):
    path = script(tmp_path, "fail.sh", "exit 3\n")
    out = flux_ok(parent, "batch", "-n1", "--output", f"{tmp_path}/o", path)
    assert wait_result(parent, flux.job.JobID(out.strip())).returncode == 3


def test_batch_default_output_and_attributes(parent, tmp_path):
    path = script(tmp_path, "attrs.sh", """\
        for a in jobid instance-level parent-kvs-namespace parent-uri; do
            echo "$a=$(flux getattr $a)"
        done
        """)
    proc = subprocess.run([sys.executable, "-m", "fluxrm.cli.main", "batch",
                           "-N1", path], env=parent.env(), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    jobid = flux.job.JobID(proc.stdout.strip())
    assert wait_result(parent, jobid).returncode == 0
    text = (tmp_path / f"flux-{jobid.f58}.out").read_text()
    attrs = dict(line.split("=", 1) for line in text.split("\n") if line)
    assert attrs["jobid"] == str(int(jobid))
    assert attrs["instance-level"] == "1"
    assert attrs["parent-kvs-namespace"] == f"job-{int(jobid)}"
    assert attrs["parent-uri"] == parent.uri
    # -N1 gets the whole node: the child sees the parent's 4 cores
    info = flux_ok(parent, "job", "info", str(jobid), "R")
    assert json.loads(info)["execution"]["R_lite"][0]["children"]["core"] == "0-3"


def test_nested_two_levels(parent, tmp_path):
    inner = script(tmp_path, "inner.sh", """\
        echo inner $(flux getattr instance-level) $(flux getattr jobid)
        """)
    outer = script(tmp_path, "outer.sh", f"""\
        set -e
        echo outer $(flux getattr instance-level) $(flux getattr jobid)
        id=$(flux batch -n1 --output={tmp_path}/inner.out {inner})
        flux job wait-event -t 60 $id clean >/dev/null
        echo child $(flux job id --to=dec $id)
        flux job status $id
        """)
    out = flux_ok(parent, "batch", "-n2", "--output", f"{tmp_path}/outer.out", outer)
    jobid = flux.job.JobID(out.strip())
    assert wait_result(parent, jobid).returncode == 0
    outer_lines = (tmp_path / "outer.out").read_text().split("\n")
    assert outer_lines[0] == f"outer 1 {int(jobid)}"
    child = outer_lines[1].split()[1]
    assert (tmp_path / "inner.out").read_text() == f"inner 2 {child}\n"


def test_alloc_command_output_and_status(parent):
    proc = run_flux("alloc", "-n2", "flux", "resource", "list", "-n", "-s", "free",
                    "-o", "{ncores}", env=parent.env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2"
    proc = run_flux("alloc", "-n1", "sh", "-c", "exit 5", env=parent.env())
    assert proc.returncode == 5


def test_cancelled_allocation_shuts_down_cleanly(parent, tmp_path):
    path = script(tmp_path, "hold.sh", f"""\
        echo $(flux getattr broker.pid) $(flux getattr rundir) > {tmp_path}/info
        flux submit --quiet sleep 300
        exec sleep 300
        """)
    out = flux_ok(parent, "batch", "-n1", "--output", f"{tmp_path}/o", path)
    jobid = flux.job.JobID(out.strip())
    info = poll(lambda: (tmp_path / "info").exists()
                and (tmp_path / "info").read_text().split(), "the child's broker")
    pid, rundir = int(info[0]), info[1]
    flux_ok(parent, "cancel", str(jobid))
    result = wait_result(parent, jobid)
    assert result.exception_occurred and result.exception_type == "cancel"

    def gone():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return not os.path.exists(rundir)
        return False

    poll(gone, "the child's broker and run directory to go", timeout=60)


def test_alloc_bg_runs_until_cancelled(parent):
    proc = run_flux("alloc", "-n1", "--bg", env=parent.env())
    assert proc.returncode == 0, proc.stderr
    jobid = flux.job.JobID(proc.stdout.strip())
    # it returned once the instance was up: reachable at once
    out = flux_ok(parent, "proxy", str(jobid), sys.executable, "-m",
                  "fluxrm.cli.main", "getattr", "jobid")
    assert out.strip() == str(int(jobid))
    flux_ok(parent, "cancel", str(jobid))
    assert wait_result(parent, jobid).exception_type == "cancel"


def test_from_batch_command_through_the_api(parent, tmp_path):
    js = JobspecV1.from_batch_command(
        "#!/bin/sh\necho args \"$@\" level $(flux getattr instance-level)\n",
        "api-batch", args=["a", "b"], num_slots=1)
    js.stdout = str(tmp_path / "api.out")
    js.environment = dict(os.environ)
    js.cwd = str(tmp_path)
    h = parent.handle()
    jobid = flux.job.submit(h, js)
    assert wait_result(parent, jobid).returncode == 0
    assert (tmp_path / "api.out").read_text() == "args a b level 1\n"
    assert flux.job.get_job(h, jobid)["name"] == "api-batch"


def test_from_nest_command_with_conf(parent, tmp_path):
    # the broker is given -c{{tmpdir}}/conf.json; its initial program
    # shows the file is there
    js = JobspecV1.from_nest_command(
        ["sh", "-c", "cat $FLUX_JOB_TMPDIR/conf.json"],
        num_slots=1, conf={"tag": {"value": 7}})
    js.stdout = str(tmp_path / "nest.out")
    js.environment = dict(os.environ)
    h = parent.handle()
    jobid = flux.job.submit(h, js)
    assert wait_result(parent, jobid).returncode == 0
    assert json.loads((tmp_path / "nest.out").read_text()) == {"tag": {"value": 7}}


def test_jobspec_files_and_tmpdir(parent, tmp_path):
    js = JobspecV1.from_command(
        ["sh", "-c", 'cat {{tmpdir}}/a.txt; stat -c %a {{tmpdir}}/run.sh; '
         '{{tmpdir}}/run.sh; cat "$FLUX_JOB_TMPDIR/bin"; echo; echo $FLUX_JOB_TMPDIR'])
    js.add_file("a.txt", "text\n")
    js.add_file("run.sh", "#!/bin/sh\necho ran\n", perms=0o700)
    js.setattr("system.files.bin", {"mode": 0o100600, "data": "aGk=",
                                    "encoding": "base64"})
    js.stdout = str(tmp_path / "files.out")
    h = parent.handle()
    jobid = flux.job.submit(h, js)
    assert wait_result(parent, jobid).returncode == 0
    lines = (tmp_path / "files.out").read_text().split("\n")
    assert lines[:4] == ["text", "700", "ran", "hi"]
    tmpdir = lines[4]
    assert tmpdir.startswith(parent.rundir) and not os.path.exists(tmpdir)


@pytest.mark.parametrize("entry, why", [
    ({"../x": {"data": "y"}}, "not a relative path"),
    ({"x": {"data": "%%%", "encoding": "base64"}}, "invalid base64"),
    ({"x": {"nodata": 1}}, "needs 'data'"),
])
def test_bad_jobspec_files_fail_the_job(parent, entry, why):
    js = JobspecV1.from_command(["true"])
    js.setattr("system.files", entry)
    h = parent.handle()
    jobid = flux.job.submit(h, js)
    result = wait_result(parent, jobid)
    assert result.exception_type == "exec" and why in result.exception_note


def test_flux_broker_without_initial_program_stops_on_sigterm(tmp_path):
    """``flux broker -Sbroker.rc2_none=1`` runs until signalled."""
    rundir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "FLUX_URI"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fluxrm.cli.main", "broker", "-Sbroker.rc2_none=1",
         f"-Srundir={rundir}"], env=env,
        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        poll(lambda: (rundir / "local").exists() or proc.poll() is not None,
             "the broker to start")
        assert proc.poll() is None, proc.stderr.read()
        h = flux.Flux(f"local://{rundir}/local")
        assert h.attr_get("size") == "1"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_interactive_alloc_through_a_terminal(parent):
    """``flux alloc`` with no command on a terminal: a shell on a pty in
    the new instance; what is typed runs there; ``exit`` ends it."""
    from test_pty import Terminal

    t = Terminal(["alloc", "-n1"], env=parent.env(SHELL="/bin/sh", PS1="prompt> "))
    try:
        t.expect(rb"prompt> ")
        t.type(b"echo level=$(flux getattr instance-level)\n")
        t.expect(rb"level=1\r\n")
        t.type(b"exit 4\n")
        assert t.wait(60) == 4
    finally:
        t.close()


# -- across the brokers of the parent ---------------------------------------------------
@pytest.fixture(scope="module")
def two_nodes():
    """A parent of two brokers (one module-wide: its tests leave it idle)."""
    with start_many(2) as inst:
        yield inst


def test_alloc_across_two_nodes(two_nodes):
    proc = run_flux("alloc", "-N2", "flux", "resource", "list", "-n", "-s", "free",
                    "-o", "{nnodes}", env=two_nodes.env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2"


def test_batch_across_two_nodes_runs_on_both(two_nodes, tmp_path):
    path = script(tmp_path, "two.sh", """\
        echo size $(flux getattr size)
        flux run -N2 -n2 -l flux getattr rank | sort
        """)
    out = flux_ok(two_nodes, "batch", "-N2", "--output", f"{tmp_path}/o", path)
    jobid = flux.job.JobID(out.strip())
    assert wait_result(two_nodes, jobid).returncode == 0
    assert (tmp_path / "o").read_text() == "size 2\n0: 0\n1: 1\n"


def test_interactive_alloc_across_two_nodes(two_nodes):
    """The shell's broker (task 0) is on a pty and still gets its PMI."""
    from test_pty import Terminal

    t = Terminal(["alloc", "-N2"], env=two_nodes.env(SHELL="/bin/sh",
                                                     PS1="prompt> "))
    try:
        t.expect(rb"prompt> ")
        t.type(b"echo size=$(flux getattr size)\n")
        t.expect(rb"size=2\r\n")
        t.type(b"exit\n")
        assert t.wait(60) == 0
    finally:
        t.close()


def test_broker_opts_and_conf_reach_the_child(parent):
    """``--broker-opts`` and ``--conf`` (shipped as conf.json) configure the
    new instance: an attribute, and a queue from its configuration."""
    proc = run_flux("alloc", "-n1", "--broker-opts=-Sfoo.bar=42",
                    "--conf=queues.debug={}", "sh", "-c",
                    "flux getattr foo.bar && flux queue list -n", env=parent.env())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "42" and lines[1].split()[0] == "debug"


def test_batch_across_nodes_without_pmi_is_an_error(two_nodes, tmp_path):
    """Not two instances of one broker each: one clear error per node."""
    path = script(tmp_path, "nopmi.sh", "echo ran\n")
    out = flux_ok(two_nodes, "batch", "-N2", "-o", "pmi=off", "--output",
                  f"{tmp_path}/o", path)
    jobid = flux.job.JobID(out.strip())
    assert wait_result(two_nodes, jobid).returncode == 1
    text = (tmp_path / "o").read_text()
    assert "ran" not in text
    assert "spans 2 nodes but has no PMI" in text
