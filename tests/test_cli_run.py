"""flux run: --dry-run jobspecs (spec 2.3 + 8.2), running jobs, exit codes,
option errors.  Every test runs the command line as a subprocess."""

import json
import os
import resource

import pytest

from flux.job import JobspecV1


def test_dry_run_layout_without_an_instance(flux_cli, tmp_path):
    env = dict(os.environ, FLUX_URI="local:///nonexistent/socket", FOO="bar")
    proc = flux_cli("run", "--dry-run", "hostname", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    text = proc.stdout
    assert text.count("\n") == 1 and text.endswith("}\n")
    assert '", "' in text and '": ' in text  # json.dumps default separators
    doc = json.loads(text)
    js = JobspecV1(**doc)
    assert js.resources == [
        {"type": "slot", "count": 1, "with": [{"type": "core", "count": 1}],
         "label": "task"}
    ]
    # key order inside a resource: type, count, with, label
    pairs = json.loads(text, object_pairs_hook=lambda p: p)
    slot = dict(pairs)["resources"][0]
    assert [k for k, _ in slot] == ["type", "count", "with", "label"]
    assert [k for k, _ in pairs] == ["resources", "tasks", "attributes", "version"]
    assert js.tasks == [{"command": ["hostname"], "slot": "task",
                         "count": {"per_slot": 1}}]
    system = doc["attributes"]["system"]
    assert list(system) == ["duration", "environment", "cwd", "shell"]
    assert system["duration"] == 0 and isinstance(system["duration"], int)
    assert system["cwd"] == os.getcwd()
    assert system["environment"]["FOO"] == "bar"
    assert system["environment"]["FLUX_URI"] == "local:///nonexistent/socket"
    assert list(system["shell"]) == ["options"]
    assert list(system["shell"]["options"]) == ["rlimit"]
    rlimit = system["shell"]["options"]["rlimit"]
    soft, _ = resource.getrlimit(resource.RLIMIT_STACK)
    assert rlimit["stack"] == (-1 if soft == resource.RLIM_INFINITY else soft)
    for skipped in ("memlock", "ofile", "msgqueue", "nice", "rtprio", "rttime",
                    "sigpending"):
        assert skipped not in rlimit
    assert doc["version"] == 1


def test_dry_run_options(flux_cli, tmp_path):
    envfile = tmp_path / "envfile"
    envfile.write_text("KEEP_*\nEXTRA=1\n")
    env = dict(os.environ, KEEP_A="a", DROP_B="b")
    proc = flux_cli(
        "run", "--dry", "-N2", "-n4", "-c2", "-t", "5", "--job-name=jn",
        "--cwd", str(tmp_path), "--env=-*", f"--env-file={envfile}",
        "--env=X=$KEEP_A-x", "--env=T={{tmpdir}}/t", "--rlimit=-*",
        "--rlimit=nofile=128", "-o", "cpu-affinity=off", "-o", "verbose",
        "-S", "user.tag=[1,2]", "-S", "system.foo=bar", "--urgency=expedite",
        "--output=out.{{id}}", "--error=err.{{id}}", "-u", "-l",
        "--dependency=afterok:f1", "--queue=batch", "--", "app", "-n", "1",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    js = JobspecV1(**doc)
    node = js.resources[0]
    assert node["type"] == "node" and node["count"] == 2
    assert node["with"][0]["count"] == 2  # slots per node
    assert node["with"][0]["with"][0] == {"type": "core", "count": 2}
    assert js.tasks[0]["command"] == ["app", "-n", "1"]
    system = doc["attributes"]["system"]
    assert system["duration"] == 300.0
    assert system["job"]["name"] == "jn"
    assert system["cwd"] == str(tmp_path)
    assert system["queue"] == "batch"
    assert system["environment"] == {"KEEP_A": "a", "EXTRA": "1", "X": "a-x"}
    opts = system["shell"]["options"]
    assert opts["env-expand"] == {"T": "{{tmpdir}}/t"}
    assert opts["rlimit"] == {"nofile": 128}
    assert opts["cpu-affinity"] == "off" and opts["verbose"] == 1
    assert opts["output"]["stdout"]["path"] == "out.{{id}}"
    assert opts["output"]["stderr"]["path"] == "err.{{id}}"
    assert opts["output"]["stdout"]["label"] is True
    assert opts["output"]["stdout"]["buffer"]["type"] == "none"
    assert system["foo"] == "bar"
    assert doc["attributes"]["user"]["tag"] == [1, 2]
    assert system["dependencies"] == [{"scheme": "afterok", "value": "f1"}]


def test_dry_run_per_resource_and_nodes(flux_cli):
    proc = flux_cli("run", "--dry-run", "-N1", "hostname")
    node = json.loads(proc.stdout)["resources"][0]
    assert node["exclusive"] is True and node["count"] == 1
    proc = flux_cli("run", "--dry-run", "--cores=4", "--tasks-per-core=2", "x")
    doc = json.loads(proc.stdout)
    assert doc["resources"][0]["count"] == 4
    assert doc["attributes"]["system"]["shell"]["options"]["per-resource"] == {
        "type": "core", "count": 2}


@pytest.mark.parametrize("args, message", [
    (["-t", "00:30", "true"], "invalid Flux standard duration"),
    (["-x", "true"], "-N"),
    (["-n2", "--cores=2", "true"], "per-resource"),
    (["--urgency=40", "true"], "urgency range is [0:31]"),
    (["--flags=bogus", "true"], "bogus"),
    (["--env=X=$NOPE_NOT_SET", "true"], "NOPE_NOT_SET"),
    (["--rlimit=nosuchlimit=1", "true"], "nosuchlimit"),
    ([], "command"),
])
def test_dry_run_errors(flux_cli, args, message):
    proc = flux_cli("run", "--dry-run", *args)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [["-n", "0", "true"], ["--ntasks=x", "true"],
                                  ["--bogus", "true"], ["-n"]])
def test_usage_errors(flux_cli, args):
    proc = flux_cli("run", *args)
    assert proc.returncode == 2
    assert proc.stderr.startswith("flux-run: ")
    assert proc.stderr.count("\n") == 1


def test_mini_alias_same_output(flux_cli):
    env = dict(os.environ, FLUX_URI="local:///nonexistent")
    a = flux_cli("mini", "run", "--dry-run", "-n1", "sleep", "0", env=env)
    b = flux_cli("run", "--dry-run", "-n1", "sleep", "0", env=env)
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout


def test_run_output_and_exit_codes(instance, flux_cli):
    proc = flux_cli("run", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert proc.returncode == 3
    assert proc.stdout == "out\n"
    assert "err\n" in proc.stderr
    assert "flux-job: task(s) exited with exit code 3" in proc.stderr
    proc = flux_cli("run", "true")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_run_labels_and_tasks(instance, flux_cli):
    proc = flux_cli("run", "-n2", "-l", "sh", "-c", "echo task $FLUX_TASK_RANK")
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == ["0: task 0", "1: task 1"]


def test_labels_are_per_line_when_a_task_writes_a_line_in_pieces(instance, flux_cli):
    # the pieces reach the output eventlog as separate chunks (the task
    # waits between them); each line is labelled once, a last line without
    # its newline is ended at the end of the stream
    proc = flux_cli("run", "-n1", "-l", "sh", "-c",
                    "printf a; sleep 0.2; echo b; printf c; sleep 0.2; printf d")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "0: ab\n0: cd\n"


def test_run_signal_and_exec_failure(instance, flux_cli):
    proc = flux_cli("run", "sh", "-c", "kill -9 $$")
    assert proc.returncode == 128 + 9
    # the exec system reports a signalled task as exit code 128+N (as the
    # upstream job shell does) or as the signal itself
    assert ("task(s) Killed" in proc.stderr
            or "task(s) exited with exit code 137" in proc.stderr)
    proc = flux_cli("run", "/nonexistent/command")
    assert proc.returncode == 127
    assert "job.exception" in proc.stderr and "type=exec" in proc.stderr


def test_run_verbose_and_cwd(instance, flux_cli, tmp_path):
    proc = flux_cli("run", "-vv", f"--cwd={tmp_path}", "pwd")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path)
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("jobid: ")
    assert any("job.start" in line for line in lines)
    assert any("job.finish" in line for line in lines)


def test_run_unsatisfiable(instance, flux_cli):
    proc = flux_cli("run", "-n", "100000", "true")
    assert proc.returncode == 1
    assert "type=alloc" in proc.stderr


def test_run_simulated_and_wait_event(instance, flux_cli):
    proc = flux_cli("run", "--setattr=system.exec.test.run_duration=0s",
                    "--wait-event=start", "true")
    assert proc.returncode == 0, proc.stderr


def test_run_output_file(instance, flux_cli, tmp_path):
    proc = flux_cli("run", f"--cwd={tmp_path}", "--output=out.{{id}}",
                    "echo", "hello")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    files = list(tmp_path.glob("out.*"))
    assert len(files) == 1 and files[0].read_text() == "hello\n"
    assert files[0].name.startswith("out.f") or files[0].name.startswith("out.\u0192")


def test_no_instance_one_line(flux_cli):
    env = dict(os.environ, FLUX_URI="local:///nonexistent/socket")
    proc = flux_cli("run", "true", env=env)
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


def _start_attached(instance, *args):
    """Start ``flux run -v ARGS`` and return (process, jobid) once it runs."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "fluxrm.cli.main", "run", "-v", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=instance.env())
    line = proc.stderr.readline()
    assert line.startswith("jobid: "), line
    jobid = line.split()[1]
    wait = subprocess.run(
        [sys.executable, "-m", "fluxrm.cli.main", "job", "wait-event", "-q",
         jobid, "start"], env=instance.env(), timeout=60)
    assert wait.returncode == 0
    return proc, jobid


def test_run_forwards_sigterm(instance):
    import signal

    proc, _jobid = _start_attached(instance, "sleep", "300")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in err


def test_run_double_ctrl_c_cancels(instance, flux_cli):
    import signal

    proc, jobid = _start_attached(instance, "sh", "-c",
                                  "trap '' INT; sleep 300")
    proc.send_signal(signal.SIGINT)
    # the warning tells us the first ctrl-C was handled
    line = proc.stderr.readline()
    assert "one more ctrl-C within 2s to cancel" in line
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    events = flux_cli("job", "eventlog", jobid).stdout
    assert 'type="cancel"' in events
