"""flux submit / bulksubmit / batch, and the seed's part (a) sequence:
``flux mini run --dry-run -n1 sleep 0 > jobs/0.json``, copies, then
examples/bulksubmit.py over jobs/*.json inside the instance."""

import json
import os
import re
import shutil
import subprocess
import sys


F58 = re.compile(r"^[f\u0192][1-9A-HJ-NP-Za-km-z]+$")
SIM = "--setattr=system.exec.test.run_duration=0s"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_seed_part_a_sequence(instance, flux_cli, tmp_path):
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    proc = flux_cli("mini", "run", "--dry-run", "-n1", "sleep", "0")
    assert proc.returncode == 0, proc.stderr
    (jobs / "0.json").write_text(proc.stdout)
    for i in range(1, 64):
        shutil.copy(jobs / "0.json", jobs / f"{i}.json")
    files = sorted(str(p) for p in jobs.glob("*.json"))
    script = os.path.join(ROOT, "examples", "bulksubmit.py")
    run = subprocess.run([sys.executable, script, *files], capture_output=True,
                         text=True, timeout=120, env=instance.env())
    assert run.returncode == 0, run.stderr
    assert "bulksubmit: submitted 64 jobs" in run.stdout
    assert "bulksubmit: Ran 64 jobs" in run.stdout


def test_submit_prints_f58(instance, flux_cli):
    proc = flux_cli("submit", SIM, "true")
    assert proc.returncode == 0, proc.stderr
    assert F58.match(proc.stdout.strip()), proc.stdout
    proc = flux_cli("mini", "submit", "--quiet", SIM, "true")
    assert (proc.returncode, proc.stdout) == (0, "")


def test_submit_cc_watch(instance, flux_cli):
    proc = flux_cli("submit", "--cc=1-3", "--watch", "sh", "-c",
                    "echo cc=$FLUX_JOB_CC arg={cc}")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    ids = [line for line in lines if F58.match(line)]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert sorted(line for line in lines if line.startswith("cc=")) == [
        "cc=1 arg=1", "cc=2 arg=2", "cc=3 arg=3"]


def test_submit_bcc_no_env(instance, flux_cli):
    proc = flux_cli("submit", "--bcc=0-1", "--watch", "--quiet", "sh", "-c",
                    "echo x${FLUX_JOB_CC}x")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["xx", "xx"]


def test_submit_wait_exit_codes(instance, flux_cli):
    proc = flux_cli("submit", "--cc=1-3", "--wait", "--quiet", "sh", "-c",
                    "exit {cc}")
    assert proc.returncode == 3, proc.stderr
    proc = flux_cli("submit", "--wait", "--quiet", "/nonexistent/cmd")
    assert proc.returncode == 127
    assert "type=exec" in proc.stderr
    proc = flux_cli("submit", "--wait", "--quiet", "-n", "100000", "true")
    assert proc.returncode == 1
    assert "type=alloc" in proc.stderr


def test_submit_wait_many_simulated(instance, flux_cli):
    proc = flux_cli("submit", "--cc=1-200", "--wait", "--progress", "--jps", SIM,
                    "true")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.split()) == 200
    # not a tty: one final progress line with the counts
    assert re.search(r"PD:0 +R:0 +CD:200 F:0", proc.stderr), proc.stderr
    assert "job/s" in proc.stderr


def test_submit_wait_event(instance, flux_cli):
    proc = flux_cli("submit", "--wait-event=start", "--quiet",
                    "--setattr=system.exec.test.run_duration=1h", "true")
    assert proc.returncode == 0, proc.stderr
    proc = flux_cli("cancel", "--all", "-q")
    assert proc.returncode == 0
    proc = flux_cli("submit", "--wait-event=exec.shell.init", "--quiet", SIM, "true")
    assert proc.returncode == 0, proc.stderr
    proc = flux_cli("submit", "--wait-event=start", "--quiet", "-n", "100000",
                    "true")
    assert proc.returncode == 1
    assert "eventlog ended before event='start'" in proc.stderr


def test_submit_errors(instance, flux_cli):
    proc = flux_cli("submit", "--cc=1-2", "--bcc=3", "true")
    assert proc.returncode == 1
    assert proc.stderr == "flux-submit: --cc and --bcc are mutually exclusive\n"
    proc = flux_cli("submit", "--cc=3-1", "true")
    assert proc.returncode == 1 and "invalid idset" in proc.stderr
    proc = flux_cli("submit", "--flags=waitable,nope", "true")
    assert proc.returncode == 1 and "nope" in proc.stderr
    proc = flux_cli("submit")
    assert proc.returncode == 1 and "command" in proc.stderr


def test_submit_dry_run_cc(flux_cli):
    env = dict(os.environ, FLUX_URI="local:///nonexistent")
    proc = flux_cli("submit", "--dry-run", "--cc=1-2", "-S", "user.n={cc}",
                    "--job-name=j{cc}", "echo", "{cc}", env=env)
    assert proc.returncode == 0, proc.stderr
    docs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [d["tasks"][0]["command"] for d in docs] == [["echo", "1"], ["echo", "2"]]
    assert [d["attributes"]["system"]["environment"]["FLUX_JOB_CC"] for d in docs] \
        == ["1", "2"]
    assert [d["attributes"]["user"]["n"] for d in docs] == [1, 2]
    assert [d["attributes"]["system"]["job"]["name"] for d in docs] == ["j1", "j2"]


def test_submit_log_file(instance, flux_cli, tmp_path):
    log = tmp_path / "log"
    proc = flux_cli("submit", f"--log={log}", SIM, "true")
    assert (proc.returncode, proc.stdout) == (0, "")
    assert F58.match(log.read_text().strip())


def test_bulksubmit_inputs(instance, flux_cli, tmp_path):
    proc = flux_cli("bulksubmit", "--watch", "--quiet", "echo", "{}", "{1}",
                    ":::", "a", "b", ":::", "x", "y")
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == ["a x", "a y", "b x", "b y"]
    proc = flux_cli("bulksubmit", "--watch", "--quiet", "echo", "{0}-{1}",
                    ":::", "a", "b", ":::+", "x", "y")
    assert sorted(proc.stdout.splitlines()) == ["a-x", "b-y"]
    listing = tmp_path / "inputs"
    listing.write_text("dir/f1.txt\nf2.c\n")
    proc = flux_cli("bulksubmit", "--watch", "--quiet", "--define=up=x.upper()",
                    "echo", "{seq}", "{.%}", "{./}", "{up}", "::::", str(listing))
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == [
        "0 dir/f1 f1.txt DIR/F1.TXT", "1 f2 f2.c F2.C"]


def test_bulksubmit_stdin_and_ids(instance, flux_cli):
    proc = flux_cli("bulksubmit", SIM, "--job-name=n{}", "true", input="1\n2\n3\n")
    assert proc.returncode == 0, proc.stderr
    ids = proc.stdout.split()
    assert len(ids) == 3 and all(F58.match(i) for i in ids)
    proc = flux_cli("jobs", "-a", "-n", "-o", "{name}", *ids)
    assert sorted(proc.stdout.split()) == ["n1", "n2", "n3"]


def test_bulksubmit_errors(flux_cli):
    proc = flux_cli("bulksubmit", "--dry-run", "echo", "{5}", ":::", "a")
    assert proc.returncode == 1 and proc.stderr.startswith("flux-bulksubmit: ")
    proc = flux_cli("bulksubmit", "--dry-run", "--define=bad", "echo", ":::", "a")
    assert proc.returncode == 1 and "--define" in proc.stderr


def test_batch_and_alloc_dry_run(flux_cli, tmp_path):
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    env = dict(os.environ, FLUX_URI="local:///nonexistent")
    proc = flux_cli("mini", "batch", "--dry-run", "-n2", str(script), "a", env=env)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["tasks"][0]["command"] == ["flux", "broker", "{{tmpdir}}/script", "a"]
    files = doc["attributes"]["system"]["files"]
    assert files["script"]["data"] == "#!/bin/sh\necho hi\n"
    assert doc["attributes"]["system"]["shell"]["options"]["output"]["stdout"][
        "path"] == "flux-{{id}}.out"
    proc = flux_cli("batch", "--dry-run", "-N1", "--wrap", "echo", "a b", env=env)
    doc = json.loads(proc.stdout)
    assert doc["attributes"]["system"]["files"]["script"]["data"] == \
        "#!/bin/sh\necho 'a b'\n"
    proc = flux_cli("batch", "--dry-run", str(script), env=env)
    assert proc.returncode == 1 and "--nslots or --nodes" in proc.stderr
    proc = flux_cli("alloc", "--dry-run", "-N1", env=env)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["resources"][0]["exclusive"] is True
