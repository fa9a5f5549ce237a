"""Hostile jobspecs and requests (issue 10): refused at submission with one
clear error naming the field, never an internal error, a stuck store or a
broker that stops answering; a job stored before these checks existed
cannot lock the instance up either, across restarts.
"""

import errno
import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

import flux
import flux.job
from flux.constants import (
    FLUX_JOB_NOVALIDATE,
    FLUX_JOB_RESULT_FAILED,
)
from flux.job import JobspecV1

from conftest import run_flux

WAIT = 30  # s: a bound on every wait for a job, never reached when all is well


def spec_doc():
    """A valid V1 jobspec as a dict, ``true`` on one core."""
    doc = json.loads(JobspecV1.from_command(["true"]).dumps())
    doc["attributes"]["system"]["environment"] = {"PATH": "/usr/bin:/bin"}
    return doc


def submit_text(h, text, flags=0):
    """Submit JSON text as it is (no client-side checks)."""
    from flux.job.submit import sign_none

    return h.rpc("job-ingest.submit",
                 {"J": sign_none(text), "urgency": 16, "flags": flags}).get()["id"]


def refused(h, text, flags=0):
    with pytest.raises(OSError) as info:
        submit_text(h, text, flags)
    assert info.value.errno == errno.EINVAL, info.value
    return info.value.strerror


def wait_inactive(h, jobid):
    """The job's result dict (bounded wait)."""
    return flux.job.result_async(h, jobid).wait_for(WAIT).get_dict()


def mutate(path, value):
    doc = spec_doc()
    node = doc
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
    node[path[-1]] = value
    return doc


SYSTEM = ("attributes", "system")
TASK = ("tasks", 0)

# (where, value, words the error must contain)
RFC_CASES = [
    (("tasks",), [], "tasks must not be empty"),
    (TASK + ("command",), [], "task command must not be empty"),
    (TASK + ("command",), [""], "task command must not start with an empty string"),
    (TASK + ("command",), ["echo", "a\0b"], "tasks[0].command[1]: string contains a NUL"),
    (SYSTEM + ("environment",), {"X": "a\0b"},
     "attributes.system.environment.X: string contains a NUL"),
    (SYSTEM + ("environment",), {"X": 1}, "environment: the value of 'X' must be a string"),
    (SYSTEM + ("environment",), {"A=B": "1"}, "environment: invalid variable name 'A=B'"),
    (SYSTEM + ("environment",), ["X=1"], "attributes.system.environment must be a mapping"),
    (SYSTEM + ("cwd",), 42, "attributes.system.cwd must be a string"),
    (SYSTEM + ("cwd",), ["/tmp"], "attributes.system.cwd must be a string"),
    (TASK + ("count",), {"per_slot": 2**31}, "task count per_slot must be <= 2147483647"),
    (TASK + ("count",), {"per_slot": 2**22 + 1}, "is more than a system can run"),
    (TASK + ("count",), {"total": 2**40}, "task count total must be <="),
    (("resources", 0, "count"), 2**40, "slot count must be <= 2147483647"),
    (("resources", 0, "with", 0, "count"), 2**31, "core count must be <= 2147483647"),
    (SYSTEM + ("duration",), 2**31, "attributes.system.duration"),
    (SYSTEM + ("duration",), 10**400, "attributes.system.duration"),
    (SYSTEM + ("duration",), -1, "attributes.system.duration"),
    (("attributes", "user", "x"), 2**64, "attributes.user.x: integer is out of range"),
    (("attributes", "user", "x"), -2**63 - 1, "attributes.user.x: integer is out of range"),
    (SYSTEM + ("shell",), [1], "attributes.system.shell must be a mapping"),
    (SYSTEM + ("shell",), {"options": None}, "attributes.system.shell.options must be"),
    (SYSTEM + ("shell",), {"options": {"output": {"stdout": ["x"]}}},
     "attributes.system.shell.options.output.stdout must be a mapping"),
    (SYSTEM + ("shell",), {"options": {"input": {"stdin": {"path": 1}}}},
     "attributes.system.shell.options.input.stdin.path must be a string"),
    (SYSTEM + ("exec",), {"test": [1]}, "attributes.system.exec.test must be a mapping"),
    (SYSTEM + ("exec",), 1, "attributes.system.exec must be a mapping"),
    (TASK + ("command",), ["echo", "caf\udc80"], "tasks[0].command[1]: string is not valid Unicode"),
    (SYSTEM + ("job",), {"name": "caf\udc80"}, "attributes.system.job.name: string is not valid"),
    (SYSTEM + ("cwd",), "/tmp/caf\udc80", "attributes.system.cwd: string is not valid Unicode"),
    (SYSTEM + ("environment",), {"caf\udc80": "1"},
     "attributes.system.environment.caf\\udc80: key is not valid Unicode"),
    (SYSTEM + ("environment",), {"A\0": "1"},
     "attributes.system.environment.A\\0: key contains a NUL"),
]


@pytest.mark.parametrize("where,value,words", RFC_CASES,
                         ids=[f"{'.'.join(map(str, c[0]))}={c[1]!r:.20}" for c in RFC_CASES])
def test_rfc_violations_refused_naming_the_field(h, where, value, words):
    # json.dumps escapes lone surrogates and NUL as \udc80 and \u0000,
    # exactly what a client sends for a non-UTF-8 file name
    strerror = refused(h, json.dumps(mutate(where, value)))
    assert words in strerror
    assert "internal error" not in strerror and "Traceback" not in strerror


@pytest.mark.parametrize("text,words", [
    ('{"version": NaN}', "NaN is not allowed"),
    ('{"version": 1e400}', "(top).version: number is out of range"),
    ("[" * 100000 + "]" * 100000, "nested too deeply"),
    ('{"a": "\\u0000"}', "a: string contains a NUL character"),
], ids=["nan", "inf", "deep", "nul"])
def test_json_upstream_refuses_is_refused_even_without_validation(h, text, words):
    for flags in (0, FLUX_JOB_NOVALIDATE):
        strerror = refused(h, text, flags)
        assert words.replace("(top).", "") in strerror


def test_surrogate_jobs_refused_and_instance_keeps_running(instance, h):
    for where, value in ((TASK + ("command",), ["echo", "caf\udc80"]),
                         (SYSTEM + ("job",), {"name": "caf\udc80"}),
                         (SYSTEM + ("cwd",), "/tmp/caf\udc80")):
        for flags in (0, FLUX_JOB_NOVALIDATE):
            assert "not valid Unicode" in refused(h, json.dumps(mutate(where, value)),
                                                  flags)
    proc = run_flux("run", "true", env=instance.env(), timeout=WAIT)
    assert proc.returncode == 0, proc.stderr
    assert run_flux("jobs", "-a", env=instance.env(), timeout=WAIT).returncode == 0


def test_python_api_surrogate_gets_einval(h):
    js = JobspecV1.from_command(["echo", "caf\udce9"])
    with pytest.raises(OSError) as info:
        flux.job.submit(h, js)
    assert info.value.errno == errno.EINVAL
    assert "tasks[0].command[1]" in info.value.strerror


def test_python_api_text_jobspec_with_a_raw_surrogate_gets_einval(h):
    """A jobspec given as text holding an unpaired surrogate (what
    surrogateescape makes of a non-UTF-8 byte) cannot even be sent."""
    text = JobspecV1.from_command(["echo", "x"]).dumps().replace('"x"', '"caf\udce9"')
    with pytest.raises(OSError) as info:
        flux.job.submit(h, text)
    assert info.value.errno == errno.EINVAL
    assert "not valid UTF-8" in info.value.strerror


# -- requests with wrong types and ids of 2**64 ------------------------------------------

BIG = [2**63, 2**64 - 1, 2**64]


@pytest.mark.parametrize("topic,payload", [
    # (2**64 - 1 is FLUX_JOBID_ANY for wait)
    *[("job-manager.wait", {"id": v}) for v in (2**63, 2**64, -1)],
    *[("job-manager.raise", {"id": v, "type": "cancel", "severity": 0}) for v in BIG],
    *[("job-manager.kill", {"id": v, "signum": 15}) for v in BIG],
    *[("job-manager.urgency", {"id": v, "urgency": 16}) for v in BIG],
    ("job-manager.raise", {"id": [1], "type": "cancel"}),
    ("job-manager.raise", {"id": 1, "type": "cancel", "severity": 2**64}),
    ("job-manager.raise", {"id": 1, "type": "cancel", "note": ["x"]}),
    ("job-manager.kill", {"id": "1", "signum": 15}),
    ("job-manager.kill", {"id": 1, "signum": 2**64}),
    ("job-manager.urgency", {"id": 1, "urgency": [16]}),
    ("job-manager.urgency", {"id": 1, "urgency": 2**64}),
    ("job-manager.raiseall", {"type": "cancel", "severity": 0, "userid": 2**64}),
    ("job-manager.raiseall", {"type": "cancel", "severity": 0, "states": 2**64}),
    ("job-manager.raiseall", {"type": "cancel", "severity": 0, "dry_run": [1]}),
    ("job-manager.events-journal-cancel", {"matchtag": 2**64}),
    ("job-manager.events-journal-cancel", {"matchtag": "x"}),
    ("job-manager.wait", [1]),
    ("job-ingest.submit", {"J": "{}", "urgency": 2**64}),
    ("job-ingest.submit", {"J": "{}", "urgency": [1]}),
    ("job-ingest.submit", {"J": "{}", "flags": 2**64}),
    ("job-ingest.submit", {"J": "{}", "flags": "x"}),
    ("job-ingest.submit", {"J": 2**64}),
    ("job-ingest.submit", [2**64]),
], ids=lambda v: v if isinstance(v, str) else repr(v)[:40])
def test_bad_request_fields_are_einval_or_eproto(h, topic, payload):
    with pytest.raises(OSError) as info:
        h.rpc(topic, payload).wait_for(WAIT).get()
    assert info.value.errno in (errno.EINVAL, errno.EPROTO), info.value
    assert "internal error" not in (info.value.strerror or "")
    assert h.rpc("broker.ping", {"seq": 1}).wait_for(WAIT).get()["seq"] == 1


# -- a job stored before these checks: restart on its statedir -----------------------------

POISON = "caf\udc80"


def stopped_instance_with_one_job(start_instance, tmp_path):
    """Run one job on a new statedir and stop the instance: ``(statedir,
    that job's id)``; ids above it are free for rows written by hand."""
    statedir = tmp_path / "state"
    statedir.mkdir()
    with start_instance(f"statedir={statedir}") as inst:
        h = inst.handle()
        first = flux.job.submit(h, JobspecV1.from_command(["true"]))
        wait_inactive(h, first)
    return statedir, first


def poisoned_row(conn, jobid, urgency, **changes):
    """Write a pending job straight into a stopped instance's store: its
    jobspec holds lone surrogates (as stored by a version without the
    checks), ``changes`` placed into a valid jobspec."""
    doc = spec_doc()
    for where, value in changes.items():
        if where == "command":
            doc["tasks"][0]["command"] = value
        elif where == "name":
            doc["attributes"]["system"]["job"] = {"name": value}
        elif where == "cwd":
            doc["attributes"]["system"]["cwd"] = value
    text = json.dumps(doc)  # ASCII text, \udc80 escaped: storable
    now = time.time()
    priority = urgency  # the default priority plugin for 1-30
    events = [
        {"timestamp": now, "name": "submit",
         "context": {"userid": os.getuid(), "urgency": urgency, "flags": 0, "version": 1}},
        {"timestamp": now, "name": "validate"},
        {"timestamp": now, "name": "depend"},
        {"timestamp": now, "name": "priority", "context": {"priority": priority}},
    ]
    eventlog = "".join(json.dumps(ev, separators=(",", ":")) + "\n" for ev in events)
    conn.execute("INSERT INTO jobs (id, userid, state, flags, t_submit, jobspec,"
                 " eventlog) VALUES (?, ?, 8, 0, ?, ?, ?)",
                 (jobid, os.getuid(), now, text, eventlog))


def test_poisoned_jobs_in_the_store_do_not_lock_up_the_instance(start_instance, tmp_path):
    statedir, first = stopped_instance_with_one_job(start_instance, tmp_path)
    conn = sqlite3.connect(statedir / "content.sqlite", isolation_level=None)
    try:
        conn.execute("BEGIN")
        held, ran, badcwd = first + 1, first + 2, first + 3
        poisoned_row(conn, held, 0, command=["echo", POISON], name=POISON)
        poisoned_row(conn, ran, 16, command=["echo", POISON], name=POISON)
        poisoned_row(conn, badcwd, 16, cwd="/nonexistent/" + POISON)
        conn.execute("COMMIT")
    finally:
        conn.close()
    for restart in range(2):  # the replay must not lock it up the second time either
        with start_instance(f"statedir={statedir}") as inst:
            h = inst.handle()
            # what job-ingest now refuses is refused at replay too (a fatal
            # exception, not a run), even for a held job
            for jobid in (held, ran, badcwd):
                res = wait_inactive(h, jobid)
                assert res["result"] == FLUX_JOB_RESULT_FAILED
                assert res["exception_type"] == "ingest"
                assert "not valid Unicode" in res["exception_note"]
            env = inst.env()
            proc = run_flux("run", "true", env=env, timeout=WAIT)
            assert proc.returncode == 0, proc.stderr
            proc = run_flux("submit", "--wait", "true", env=env, timeout=WAIT)
            assert proc.returncode == 0, proc.stderr
            proc = run_flux("jobs", "-a", "-n", env=env, timeout=WAIT)
            assert proc.returncode == 0, proc.stderr
            assert len(proc.stdout.splitlines()) >= 6
            assert "caf\\udc80" in proc.stdout  # the name, shown escaped


# -- the command line ----------------------------------------------------------------------


@pytest.mark.parametrize("args,env_extra,words", [
    (["submit", "echo", "caf\udce9"], {}, "argument 2 of the command is not valid UTF-8"),
    (["run", "echo", "caf\udce9"], {}, "argument 2 of the command is not valid UTF-8"),
    (["run", "--job-name=caf\udce9", "true"], {}, "attributes.system.job.name"),
    (["run", "true"], {"FLUXRM_TEST_X": "caf\udce9"},
     "environment variable 'FLUXRM_TEST_X' is not valid UTF-8"),
], ids=["submit-arg", "run-arg", "run-name", "run-env"])
def test_cli_non_utf8_refused_on_one_line(instance, args, env_extra, words):
    proc = run_flux(*args, env=instance.env(**env_extra), timeout=WAIT)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and words in lines[0], proc.stderr
    assert lines[0].startswith(f"flux-{args[0]}: ")


def test_cli_non_utf8_input_to_bulksubmit(instance):
    proc = subprocess.run(
        [sys.executable, "-m", "fluxrm.cli.main", "bulksubmit", "echo", "{}"],
        input=b"caf\xe9\n", capture_output=True, env=instance.env(), timeout=WAIT)
    lines = proc.stderr.decode(errors="replace").splitlines()
    assert proc.returncode == 1
    assert len(lines) == 1 and "not valid UTF-8" in lines[0], lines


def test_stored_jobspec_that_no_longer_decodes_fails_the_job(start_instance, tmp_path):
    """A pending job whose stored jobspec text is not a JSON object (a
    damaged row) gets a fatal ``ingest`` exception at replay, not a run."""
    statedir, first = stopped_instance_with_one_job(start_instance, tmp_path)
    conn = sqlite3.connect(statedir / "content.sqlite", isolation_level=None)
    try:
        conn.execute("BEGIN")
        for jobid, text in ((first + 1, '{"resources": [tru'), (first + 2, "[1, 2]")):
            poisoned_row(conn, jobid, 16)
            conn.execute("UPDATE jobs SET jobspec = ? WHERE id = ?", (text, jobid))
        conn.execute("COMMIT")
    finally:
        conn.close()
    with start_instance(f"statedir={statedir}") as inst:
        h = inst.handle()
        for jobid, why in ((first + 1, "cannot be decoded"),
                           (first + 2, "not a JSON object")):
            res = wait_inactive(h, jobid)
            assert res["result"] == FLUX_JOB_RESULT_FAILED
            assert res["exception_type"] == "ingest"
            assert why in res["exception_note"]
