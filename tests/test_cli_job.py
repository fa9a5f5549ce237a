"""flux job subcommands, flux cancel and flux pgrep/pkill, as subprocesses."""

import json
import re

import pytest

SIM = "--setattr=system.exec.test.run_duration=0s"
LONG = "--setattr=system.exec.test.run_duration=1h"


def submit(flux_cli, *args):
    proc = flux_cli("submit", *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_attach_output_and_exit_code(instance, flux_cli):
    jobid = submit(flux_cli, "sh", "-c", "echo hello; echo oops >&2; exit 4")
    proc = flux_cli("job", "attach", jobid)
    assert proc.returncode == 4
    assert proc.stdout == "hello\n"
    assert "oops\n" in proc.stderr
    assert "flux-job: task(s) exited with exit code 4" in proc.stderr
    # attaching again replays the output
    proc = flux_cli("job", "attach", "-l", jobid)
    assert proc.stdout == "0: hello\n"


def test_attach_unknown_and_canceled(instance, flux_cli):
    proc = flux_cli("job", "attach", "f1234")
    assert proc.returncode == 1
    assert proc.stderr == "flux-job: Failed to attach to f1234: No such job\n"
    jobid = submit(flux_cli, "--urgency=hold", "true")
    assert flux_cli("job", "cancel", jobid, "--", "not", "today").returncode == 0
    proc = flux_cli("job", "attach", jobid)
    assert proc.returncode == 1
    assert re.search(r"^\d+\.\d{3}s: job\.exception \S+ type=cancel severity=0 "
                     r"not today$", proc.stderr, re.M), proc.stderr


def test_eventlog_formats(instance, flux_cli):
    jobid = submit(flux_cli, "--wait", SIM, "true")
    proc = flux_cli("job", "eventlog", jobid)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    names = [line.split()[1] for line in lines]
    assert names[0] == "submit" and names[-1] == "clean"
    assert "start" in names and "finish" in names
    assert re.match(r"^\d+\.\d{6} submit userid=\d+ urgency=16 flags=0 version=1$",
                    lines[0])
    assert re.match(r"^\d+\.\d{6} release ranks=\"all\" final=true$",
                    next(line for line in lines if " release " in line))
    proc = flux_cli("job", "eventlog", "-f", "json", jobid)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["name"] for e in events] == names
    proc = flux_cli("job", "eventlog", "-T", "offset", jobid)
    assert proc.stdout.startswith("       0.000000 submit")  # %15.6f
    proc = flux_cli("job", "eventlog", "-T", "iso", "-p", "exec", jobid)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z init$",
                    proc.stdout.splitlines()[0])
    proc = flux_cli("job", "eventlog", "-F", "-H", jobid)
    assert proc.returncode == 0
    assert re.match(r"^\[\w{3}\d\d \d\d:\d\d\] submit", proc.stdout)
    assert re.search(r"^\[ +\+\d+\.\d{6}\] clean$", proc.stdout, re.M)
    proc = flux_cli("job", "eventlog", "-p", "bogus", jobid)
    assert proc.returncode == 1 and "bogus" in proc.stderr


def test_info(instance, flux_cli):
    jobid = submit(flux_cli, "--wait", SIM, "--job-name=info", "true")
    proc = flux_cli("job", "info", jobid, "R")
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    R = json.loads(line)
    assert R["version"] == 1 and '"version": 1, "execution": {' in line
    proc = flux_cli("job", "info", jobid, "jobspec")
    jobspec = json.loads(proc.stdout)
    assert jobspec["attributes"]["system"]["job"]["name"] == "info"
    proc = flux_cli("job", "info", "--original", jobid, "jobspec")
    assert json.loads(proc.stdout)["tasks"] == jobspec["tasks"]
    proc = flux_cli("job", "info", jobid, "eventlog")
    first = json.loads(proc.stdout.splitlines()[0])
    assert first["name"] == "submit"
    proc = flux_cli("job", "info", jobid, "nokey")
    assert proc.returncode == 1 and "nokey" in proc.stderr
    proc = flux_cli("job", "info", "f1234", "R")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1


def test_wait_event(instance, flux_cli):
    jobid = submit(flux_cli, "sleep", "300")
    proc = flux_cli("job", "wait-event", jobid, "start")
    assert proc.returncode == 0, proc.stderr
    assert re.match(r"^\d+\.\d{6} start$", proc.stdout)
    proc = flux_cli("job", "wait-event", "-t", "0.2", jobid, "finish")
    assert proc.returncode == 1
    assert proc.stderr == "flux-job: wait-event timeout on event 'finish'\n"
    assert flux_cli("job", "kill", jobid).returncode == 0
    proc = flux_cli("job", "wait-event", "-q", jobid, "clean")
    assert (proc.returncode, proc.stdout) == (0, "")
    proc = flux_cli("job", "wait-event", "-v", "-m", "type=cancel", jobid,
                    "exception")
    assert proc.returncode == 1  # killed, not canceled: no such exception
    assert "eventlog ended before event='exception'" in proc.stderr
    assert "submit" in proc.stdout


def test_id_conversions(flux_cli):
    proc = flux_cli("job", "id", "--to=f58", "6787342413402046")
    assert proc.stdout.strip() in ("\u0192uzzybunny", "fuzzybunny")
    proc = flux_cli("job", "id", "--to=dothex", "fuzzybunny")
    assert proc.stdout == "0018.1d0d.4d85.0fbe\n"
    proc = flux_cli("job", "id", "--to=words", input="0\n1\n")
    assert proc.stdout.splitlines() == [
        "academy-academy-academy--academy-academy-academy",
        "acrobat-academy-academy--academy-academy-academy"]
    proc = flux_cli("job", "id", "--from=dec", "fuzzybunny")
    assert proc.returncode == 1
    proc = flux_cli("job", "id", "--to=nope", "1")
    assert proc.returncode == 2


def test_kill_cancel_raise_urgency(instance, flux_cli):
    held = submit(flux_cli, "--urgency=hold", "true")
    proc = flux_cli("job", "urgency", "-v", held, "default")
    assert proc.returncode == 0, proc.stderr
    assert "urgency changed from hold to default" in proc.stderr
    proc = flux_cli("job", "kill", "f1234")
    assert proc.returncode == 1
    proc = flux_cli("job", "kill", "-s", "NOSIG", held)
    assert proc.returncode == 1 and "invalid signal" in proc.stderr
    running = submit(flux_cli, LONG, "true")
    assert flux_cli("job", "wait-event", "-q", running, "start").returncode == 0
    proc = flux_cli("job", "raise", "-t", "test", "-s", "3", running, "--",
                    "just", "info")
    assert proc.returncode == 0, proc.stderr
    assert flux_cli("cancel", running).returncode == 0
    proc = flux_cli("job", "eventlog", running)
    assert 'type="test" severity=3 note="just info"' in proc.stdout
    assert 'type="cancel" severity=0' in proc.stdout
    proc = flux_cli("cancel", running)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"flux-cancel: {running}: ")


def test_wait_waitable(instance, flux_cli):
    ok = submit(flux_cli, "--flags=waitable", "true")
    bad = submit(flux_cli, "--flags=waitable", "false")
    assert flux_cli("job", "wait", ok).returncode == 0
    proc = flux_cli("job", "wait", bad)
    assert proc.returncode == 1
    assert proc.stderr == f"{bad}: task(s) exited with exit code 1\n"
    proc = flux_cli("job", "wait", ok)  # already consumed
    assert proc.returncode == 2
    plain = submit(flux_cli, SIM, "true")
    proc = flux_cli("job", "wait", plain)
    assert proc.returncode == 2 and "waitable" in proc.stderr
    submit(flux_cli, "--flags=waitable", SIM, "true")
    submit(flux_cli, "--flags=waitable", "false")
    proc = flux_cli("job", "wait", "--all", "-v")
    assert proc.returncode == 1
    proc = flux_cli("job", "wait")
    assert proc.returncode == 2
    assert "no more waitable jobs" in proc.stderr


def test_status_last_timeleft(instance, flux_cli):
    a = submit(flux_cli, "sh", "-c", "exit 5")
    b = submit(flux_cli, SIM, "true")
    proc = flux_cli("job", "status", "-v", a, b)
    assert proc.returncode == 5
    assert f"{a}: exited with exit code 5" in proc.stderr
    proc = flux_cli("job", "last")
    assert proc.stdout.strip() == b
    proc = flux_cli("job", "last", "[:2]")
    assert proc.stdout.split() == [b, a]
    held = submit(flux_cli, "--urgency=hold", "true")
    proc = flux_cli("job", "status", "-e", "9", held, input=None) if False else None
    assert flux_cli("cancel", held).returncode == 0
    proc = flux_cli("job", "status", "-e", "9", held)
    assert proc.returncode == 9
    proc = flux_cli("job", "timeleft", b)
    assert proc.stdout.strip() == "infinity"


def test_list_and_stats(instance, flux_cli):
    jobid = submit(flux_cli, "--wait", SIM, "true")
    proc = flux_cli("job", "list-ids", jobid)
    assert json.loads(proc.stdout)["state"] == 64
    proc = flux_cli("job", "list", "-s", "inactive", "-c", "1")
    assert len(proc.stdout.splitlines()) == 1
    proc = flux_cli("job", "stats")
    assert "job_states" in json.loads(proc.stdout)


def test_cancel_all_and_pgrep(instance, flux_cli):
    flux_cli("cancel", "--all", "-q")
    a = submit(flux_cli, LONG, "--job-name=pg-alpha", "true")
    b = submit(flux_cli, "--urgency=hold", "--job-name=pg-beta", "true")
    proc = flux_cli("pgrep", "pg-")
    assert proc.returncode == 0
    assert sorted(proc.stdout.split()) == sorted([a, b])
    proc = flux_cli("pgrep", "-c", "alpha$")
    assert proc.stdout.strip() == "1"
    proc = flux_cli("pgrep", "-o", "{id.f58} {name}", "beta")
    assert proc.stdout.strip() == f"{b} pg-beta"
    assert flux_cli("pgrep", "no-such-name").returncode == 1
    proc = flux_cli("cancel", "-n", "--all")
    assert proc.stderr == "flux-cancel: Would cancel 2 jobs\n"
    proc = flux_cli("pkill", "beta")
    assert proc.returncode == 0 and "Canceled 1 jobs" in proc.stderr
    proc = flux_cli("cancel", "--all", "-m", "bye")
    assert proc.stderr == "flux-cancel: Canceled 1 jobs (0 errors)\n"
    proc = flux_cli("cancel", "--all")
    assert proc.stderr == "flux-cancel: Matched 0 jobs\n"
    proc = flux_cli("cancel", "--all", a)
    assert proc.returncode == 2
    proc = flux_cli("cancel")
    assert proc.returncode == 2


@pytest.mark.parametrize("args", [["bogus"], ["attach"], ["kill", "x"],
                                  ["urgency", "f1", "max"]])
def test_usage_errors(flux_cli, args):
    proc = flux_cli("job", *args)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
