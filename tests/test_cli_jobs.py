"""flux jobs (formats, filters, JSON, stats, --watch), flux resource,
flux uptime, and what every command owes: --help, and one line on stderr
with a non-zero exit when there is no instance."""

import json
import os
import re

import pytest

from fluxrm.cli.main import COMMANDS

SIM = "--setattr=system.exec.test.run_duration=0s"
LONG = "--setattr=system.exec.test.run_duration=1h"
HEADER = re.compile(r"^ +JOBID +USER +NAME +ST +NTASKS +NNODES +TIME +INFO$")


def submit(flux_cli, *args):
    proc = flux_cli("submit", *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_jobs_default_format(instance, flux_cli):
    flux_cli("cancel", "--all", "-q")
    (running,) = submit(flux_cli, LONG, "--job-name=a-very-long-job-name", "true")
    assert flux_cli("job", "wait-event", "-q", running, "start").returncode == 0
    (held,) = submit(flux_cli, "--urgency=hold", "-n2", "true")
    proc = flux_cli("jobs")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert HEADER.match(lines[0]), lines[0]  # QUEUE hidden: no queues
    assert len(lines) == 3
    # pending first, then running
    fields = lines[1].split()
    assert fields[0] == held and fields[3] == "S" and fields[4] == "2"
    fields = lines[2].split()
    assert fields[0] == running
    assert fields[2] == "a-very-lo+"  # {name:<10.10+}
    assert fields[3] == "R" and fields[5] == "1"
    proc = flux_cli("jobs", "-n", "-o", "{id.f58} {status} {state_single}")
    assert sorted(proc.stdout.splitlines()) == sorted(
        [f"{held} SCHED S", f"{running} RUN R"])
    flux_cli("cancel", "--all", "-q")
    proc = flux_cli("jobs", "-a", "-n", "-o", "{id.f58} {status_abbrev}",
                    held, running)
    assert sorted(proc.stdout.split()) == sorted([held, "CA", running, "CA"])


def test_jobs_filters_and_formats(instance, flux_cli):
    (ok,) = submit(flux_cli, SIM, "true")
    (bad,) = submit(flux_cli, SIM, "--setattr=system.exec.test.wait_status=256",
                    "true")
    flux_cli("job", "wait-event", "-q", bad, "clean")
    flux_cli("job", "wait-event", "-q", ok, "clean")
    proc = flux_cli("jobs", "-n", "-f", "failed", "-c", "50", "-o", "{id.f58}")
    assert bad in proc.stdout.split() and ok not in proc.stdout.split()
    proc = flux_cli("jobs", "-n", "-f", "completed", "-c", "50", "-o", "{id.f58}")
    assert ok in proc.stdout.split()
    for name in ("long", "deps", "endreason", "cute"):
        proc = flux_cli("jobs", "-a", "-c", "2", "-o", name)
        assert proc.returncode == 0, proc.stderr
    proc = flux_cli("jobs", "-a", "-o", "endreason", bad)
    assert proc.stdout.splitlines()[1].split()[-2:] == ["Exit", "1"]
    proc = flux_cli("jobs", "-o", "help")
    assert proc.returncode == 0 and "endreason" in proc.stdout
    proc = flux_cli("jobs", "-o", "nosuch")
    assert proc.returncode == 1
    assert "No such format nosuch" in proc.stderr
    proc = flux_cli("jobs", "-o", "{nosuchfield}")
    assert proc.returncode == 1 and "Unknown format field" in proc.stderr
    proc = flux_cli("jobs", "-f", "bogus")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    proc = flux_cli("jobs", "-a", "-n", "-o", "sort:-returncode {returncode}",
                    ok, bad)
    assert proc.stdout.split() == ["1", "0"]
    proc = flux_cli("jobs", "--since=-1h", "-n", "-c", "1", "-o", "{status}")
    assert proc.stdout.strip() in ("COMPLETED", "FAILED", "CANCELED", "TIMEOUT")


def test_jobs_json_stats_and_unknown(instance, flux_cli):
    (jobid,) = submit(flux_cli, "--wait", SIM, "--job-name=js", "true")
    proc = flux_cli("jobs", "--json", jobid)
    job = json.loads(proc.stdout)
    assert job["jobid"] == jobid and job["name"] == "js"
    assert job["result"] == "COMPLETED"
    proc = flux_cli("jobs", "--json", "-a", "-c", "3")
    assert len(json.loads(proc.stdout)["jobs"]) == 3
    proc = flux_cli("jobs", "--stats-only")
    assert re.match(r"^\d+ running, \d+ completed, \d+ failed, \d+ pending, "
                    r"\d+ inactive purged$", proc.stdout.strip())
    proc = flux_cli("jobs", "--stats", "-a", "-c", "1")
    assert proc.stdout.splitlines()[0].endswith("inactive purged")
    assert HEADER.match(proc.stdout.splitlines()[1])
    proc = flux_cli("jobs", "f1234")
    assert proc.returncode == 1
    assert proc.stderr == "flux-jobs: JobID f1234 unknown\n"


def test_jobs_watch(instance, flux_cli):
    flux_cli("cancel", "--all", "-q")
    (jobid,) = submit(flux_cli, "--urgency=hold", "true")
    proc = flux_cli("job", "urgency", jobid, "default")
    assert proc.returncode == 0
    # the job may or may not have finished; --watch follows it to the end
    proc = flux_cli("jobs", "--watch", "-n", "-a", "-o", "{id.f58} {status}",
                    jobid)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == f"{jobid} COMPLETED"
    proc = flux_cli("jobs", "--watch")
    assert proc.returncode == 0 and HEADER.match(proc.stdout.rstrip("\n"))


def test_resource(instance, flux_cli):
    proc = flux_cli("resource", "list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["STATE", "NNODES", "NCORES", "NODELIST"]
    assert [line.split()[0] for line in lines[1:]] == ["free", "allocated", "down"]
    ncores = os.cpu_count() and len(os.sched_getaffinity(0))
    proc = flux_cli("resource", "info")
    assert re.match(r"^1 Nodes, \d+ Cores, 0 GPUs$", proc.stdout.strip())
    total = int(proc.stdout.split()[2])
    assert total >= 1 and ncores >= 1
    proc = flux_cli("resource", "list", "-n", "-s", "all", "-o",
                    "{state} {nnodes} {ncores} {ngpus}")
    rows = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()}
    assert rows["down"] == ["0", "0", "0"]
    assert int(rows["free"][1]) + int(rows["allocated"][1]) == total
    proc = flux_cli("resource", "status")
    assert proc.stdout.splitlines()[1].split()[:3] == ["avail", "\u2714", "1"]
    proc = flux_cli("resource", "R")
    assert json.loads(proc.stdout)["version"] == 1
    proc = flux_cli("resource", "list", "-s", "bogus")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    proc = flux_cli("resource")
    assert proc.returncode == 2


def test_uptime(instance, flux_cli):
    proc = flux_cli("uptime")
    assert proc.returncode == 0, proc.stderr
    assert re.match(r"^ \d\d:\d\d:\d\d run \S+,  owner \S+,  depth 0,  size 1$",
                    proc.stdout.rstrip("\n")), proc.stdout


# flux version has no options (it prints the versions whatever the args)
@pytest.mark.parametrize("name", sorted(set(COMMANDS) - {"version"}))
def test_help(flux_cli, name):
    proc = flux_cli(name, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage" in proc.stdout.lower()
    assert "Traceback" not in proc.stderr


NO_INSTANCE = [
    ["run", "true"], ["submit", "true"], ["bulksubmit", "true", ":::", "a"],
    ["batch", "-n1", "--wrap", "true"], ["jobs"], ["jobs", "-a"],
    ["job", "attach", "f1"], ["job", "eventlog", "f1"], ["job", "info", "f1", "R"],
    ["job", "wait"], ["job", "kill", "f1"], ["job", "cancel", "f1"],
    ["job", "urgency", "f1", "hold"], ["job", "last"], ["job", "status", "f1"],
    ["job", "wait-event", "f1", "start"], ["cancel", "--all"], ["cancel", "f1"],
    ["pgrep", "x"], ["pkill", "x"], ["resource", "list"], ["resource", "info"],
    ["resource", "status"], ["uptime"], ["ping", "-c1", "broker"], ["dmesg"],
    ["getattr", "size"], ["kvs", "get", "x"],
]


@pytest.mark.parametrize("args", NO_INSTANCE, ids=" ".join)
def test_no_instance(flux_cli, args):
    env = dict(os.environ, FLUX_URI="local:///nonexistent/flux/socket")
    proc = flux_cli(*args, env=env)
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "nonexistent" in proc.stderr or "connect" in proc.stderr.lower()
