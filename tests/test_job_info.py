"""JobInfo, JobInfoFormat and job_fields_to_attrs (no instance needed)."""

import os
import pwd
import signal
import time

import pytest

from flux.constants import (
    FLUX_JOB_RESULT_CANCELED,
    FLUX_JOB_RESULT_COMPLETED,
    FLUX_JOB_RESULT_FAILED,
    FLUX_JOB_RESULT_TIMEOUT,
    FLUX_JOB_STATE_CLEANUP,
    FLUX_JOB_STATE_DEPEND,
    FLUX_JOB_STATE_INACTIVE,
    FLUX_JOB_STATE_PRIORITY,
    FLUX_JOB_STATE_RUN,
    FLUX_JOB_STATE_SCHED,
)
from flux.job import JobID, JobInfo, JobInfoFormat, job_fields_to_attrs
from flux.job.info import EmptyObject, resulttostr, statetostr

JOBID = 1924145338957824


def inactive(**kw):
    base = {
        "id": JOBID, "userid": os.getuid(), "urgency": 16, "priority": 16,
        "state": FLUX_JOB_STATE_INACTIVE, "t_submit": 100.0, "t_depend": 100.5,
        "t_run": 101.0, "t_cleanup": 103.5, "t_inactive": 104.0,
        "name": "sleep", "ntasks": 2, "ncores": 2, "nnodes": 1, "ranks": "0",
        "nodelist": "host0", "success": True, "result": FLUX_JOB_RESULT_COMPLETED,
        "exception_occurred": False, "waitstatus": 0, "expiration": 0.0,
    }
    base.update(kw)
    return JobInfo(base)


def pending(**kw):
    base = {"id": JOBID, "userid": os.getuid(), "urgency": 16,
            "state": FLUX_JOB_STATE_SCHED, "t_submit": 100.0, "duration": 60.0}
    base.update(kw)
    return JobInfo(base)


# ---------------------------------------------------------------------------
# JobInfo


def test_defaults_and_renames():
    info = JobInfo({"id": JOBID, "state": FLUX_JOB_STATE_SCHED})
    assert isinstance(info.id, JobID) and info.id == JOBID
    assert info.state_id == FLUX_JOB_STATE_SCHED
    assert info.result_id == ""
    for key in ("t_depend", "t_priority", "t_sched", "t_run", "t_cleanup",
                "t_inactive", "duration", "expiration"):
        assert getattr(info, key) == 0.0
    for key in ("name", "cwd", "queue", "project", "bank", "ntasks", "ncores",
                "nnodes", "priority", "ranks", "nodelist", "success", "result",
                "waitstatus"):
        assert getattr(info, key) == "", key
    with pytest.raises(AttributeError, match="invalid JobInfo attribute 'bogus'"):
        info.bogus  # noqa: B018
    assert not hasattr(info, "nosuch")


def test_state_and_result_names():
    names = {FLUX_JOB_STATE_DEPEND: ("DEPEND", "D"),
             FLUX_JOB_STATE_PRIORITY: ("PRIORITY", "P"),
             FLUX_JOB_STATE_SCHED: ("SCHED", "S"), FLUX_JOB_STATE_RUN: ("RUN", "R"),
             FLUX_JOB_STATE_CLEANUP: ("CLEANUP", "C"),
             FLUX_JOB_STATE_INACTIVE: ("INACTIVE", "I")}
    emojis = set()
    for state, (name, single) in names.items():
        info = JobInfo({"id": 1, "state": state})
        assert (info.state, info.state_single) == (name, single)
        assert statetostr(state) == name and statetostr(state, True) == single
        emojis.add(info.state_emoji)
    assert "" not in emojis and len(emojis) == len(names)
    results = {FLUX_JOB_RESULT_COMPLETED: ("COMPLETED", "CD"),
               FLUX_JOB_RESULT_FAILED: ("FAILED", "F"),
               FLUX_JOB_RESULT_CANCELED: ("CANCELED", "CA"),
               FLUX_JOB_RESULT_TIMEOUT: ("TIMEOUT", "TO")}
    for result, (name, abbrev) in results.items():
        info = inactive(result=result)
        assert (info.result, info.result_abbrev) == (name, abbrev)
        assert resulttostr(result, abbrev=True) == abbrev
        assert info.result_emoji
        assert (info.status, info.status_abbrev) == (name, abbrev)
        assert info.status_emoji == info.result_emoji
    active = pending()
    assert (active.result, active.result_abbrev, active.result_emoji) == ("", "", "")
    assert (active.status, active.status_abbrev) == ("SCHED", "S")
    assert active.status_emoji == active.state_emoji


def test_username():
    assert inactive(userid=0).username == pwd.getpwuid(0).pw_name
    unknown = 4000000000
    try:
        pwd.getpwuid(unknown)
    except KeyError:
        assert inactive(userid=unknown).username == str(unknown)


def test_runtime_and_t_remaining():
    assert inactive().runtime == pytest.approx(2.5)
    assert pending().runtime == 0.0
    t_run = time.time() - 1000.0
    running = JobInfo({"id": 1, "state": FLUX_JOB_STATE_RUN, "t_run": t_run,
                       "expiration": t_run + 5000.0})
    assert running.runtime >= 1000.0
    assert 0.0 < running.t_remaining <= 4000.0
    expired = JobInfo({"id": 1, "state": FLUX_JOB_STATE_RUN, "t_run": t_run,
                       "expiration": t_run + 1.0})
    assert expired.t_remaining == 0.0
    assert inactive(expiration=1e12).t_remaining == 0.0
    assert pending().t_remaining == 0.0


def test_returncode():
    assert pending().returncode == ""
    running = JobInfo({"id": 1, "state": FLUX_JOB_STATE_CLEANUP, "waitstatus": 0})
    assert running.returncode == ""
    assert inactive(waitstatus=0).returncode == 0
    assert inactive(waitstatus=256, result=FLUX_JOB_RESULT_FAILED).returncode == 1
    assert inactive(waitstatus=143 << 8,
                    result=FLUX_JOB_RESULT_CANCELED).returncode == 143
    assert inactive(waitstatus=signal.SIGKILL,
                    result=FLUX_JOB_RESULT_FAILED).returncode == -signal.SIGKILL
    never_ran = {"waitstatus": "", "t_run": 0.0}
    assert inactive(result=FLUX_JOB_RESULT_CANCELED, **never_ran).returncode == -128
    assert inactive(result=FLUX_JOB_RESULT_FAILED, **never_ran).returncode == 1
    assert inactive(result=FLUX_JOB_RESULT_TIMEOUT, **never_ran).returncode == ""
    # a result() dict (no state) is inactive
    from_result = JobInfo({"id": 1, "result": FLUX_JOB_RESULT_FAILED,
                           "waitstatus": 512, "exception_occurred": False})
    assert from_result.returncode == 2
    assert from_result.status == "FAILED"


def test_exception_object():
    info = inactive(result=FLUX_JOB_RESULT_FAILED, exception_occurred=True,
                    exception_type="exec", exception_severity=0,
                    exception_note="no such file")
    exc = info.exception
    assert (exc.occurred, exc.severity, exc.type, exc.note) == (
        True, 0, "exec", "no such file")
    assert info.exception_type == "exec"
    exc = pending().exception
    assert (exc.occurred, exc.severity, exc.type, exc.note) == ("", "", "", "")


def test_annotations_sched_user():
    info = pending(annotations={"sched": {"reason_pending": "no cores",
                                          "t_estimate": 2000.0},
                                "user": {"uri": "ssh://host/tmp/sock", "n": 3}})
    assert info.annotations.sched.reason_pending == "no cores"
    assert info.sched.t_estimate == 2000.0
    assert info.user.n == 3
    assert isinstance(info.sched.nosuch, EmptyObject)
    assert f"{info.sched.nosuch.deeper:>4}" == "    "
    assert f"{info.sched.nosuch:.2f}" == ""
    assert info.sched.nosuch == ""
    assert not info.sched.nosuch
    assert '"reason_pending": "no cores"' in str(info.annotations)
    assert info.uri == "ssh://host/tmp/sock"
    assert info.uri.local == "local:///tmp/sock"
    empty = pending()
    assert str(empty.annotations) == ""
    assert isinstance(empty.sched, EmptyObject)
    assert isinstance(empty.user.uri, EmptyObject)
    assert str(empty.uri) == "" and str(empty.uri.local) == ""


def test_dependencies():
    info = JobInfo({"id": 1, "state": FLUX_JOB_STATE_DEPEND,
                    "dependencies": ["after:f1", "begin-time:100"]})
    assert list(info.dependencies) == ["after:f1", "begin-time:100"]
    assert str(info.dependencies) == "after:f1,begin-time:100"
    assert f"{info.dependencies:<25}|" == "after:f1,begin-time:100  |"
    assert info.contextual_info == "depends:after:f1,begin-time:100"
    assert list(pending().dependencies) == []


def test_contextual_info_and_time():
    assert JobInfo({"id": 1, "state": FLUX_JOB_STATE_PRIORITY}).contextual_info \
        == "priority-wait"
    assert pending().contextual_info == ""
    eta = pending(annotations={"sched": {"t_estimate": time.time() + 3600}})
    assert eta.contextual_info.startswith("eta:")
    late = pending(annotations={"sched": {"t_estimate": time.time() - 10}})
    assert late.contextual_info == "eta:now"
    assert inactive().contextual_info == "host0"
    assert pending().contextual_time == 60.0
    assert inactive().contextual_time == pytest.approx(2.5)


def test_inactive_reason():
    assert pending().inactive_reason == ""
    assert inactive().inactive_reason == "Exit 0"
    assert inactive(waitstatus=512,
                    result=FLUX_JOB_RESULT_FAILED).inactive_reason == "Exit 2"
    canceled = dict(result=FLUX_JOB_RESULT_CANCELED, exception_occurred=True,
                    exception_type="cancel", exception_severity=0)
    assert inactive(exception_note="", **canceled).inactive_reason == "Canceled"
    assert inactive(exception_note="bye", **canceled).inactive_reason \
        == "Canceled: bye"
    assert inactive(result=FLUX_JOB_RESULT_TIMEOUT).inactive_reason == "Timeout"
    exc = inactive(result=FLUX_JOB_RESULT_FAILED, exception_occurred=True,
                   exception_type="alloc", exception_severity=0,
                   exception_note="unsatisfiable", waitstatus="")
    assert exc.inactive_reason == "Exception: type=alloc unsatisfiable"
    sig = inactive(result=FLUX_JOB_RESULT_FAILED, waitstatus=signal.SIGKILL)
    assert sig.inactive_reason == signal.strsignal(signal.SIGKILL)
    assert inactive(result=FLUX_JOB_RESULT_FAILED,
                    waitstatus=127 << 8).inactive_reason == "command not found"


def test_to_dict():
    info = inactive()
    full = info.to_dict(filtered=False)
    assert full["id"] == JOBID and full["jobid"] == JobID(JOBID).f58
    assert full["state"] == "INACTIVE" and full["result"] == "COMPLETED"
    assert full["status"] == "COMPLETED"
    assert full["username"] == info.username
    assert full["returncode"] == 0
    assert full["runtime"] == pytest.approx(2.5)
    assert full["annotations"] == {}
    assert full["dependencies"] == []
    assert full["exception"] == {"occurred": False, "severity": "", "type": "",
                                 "note": ""}
    for key in JobInfo.defaults:
        assert key in full
    assert full["t_priority"] == 0.0 and full["cwd"] == ""
    assert "uri" not in full
    short = info.to_dict()
    assert "t_priority" not in short and "cwd" not in short
    assert "expiration" not in short and "t_remaining" not in short
    assert short["t_run"] == 101.0 and short["waitstatus"] == 0
    assert short["exception"] == {"occurred": False}
    assert short["duration"] == 0.0
    p = pending(annotations={"user": {"uri": "ssh://h/x"}}).to_dict()
    assert "runtime" not in p and "returncode" not in p and "result" not in p
    assert p["uri"] == "ssh://h/x"
    assert p["annotations"] == {"user": {"uri": "ssh://h/x"}}
    exc = inactive(exception_occurred=True, exception_type="cancel",
                   exception_severity=0, exception_note="",
                   result=FLUX_JOB_RESULT_CANCELED).to_dict()
    assert exc["exception"] == {"occurred": True, "severity": 0, "type": "cancel",
                                "note": ""}


# ---------------------------------------------------------------------------
# JobInfoFormat


def test_format_headings_and_lines():
    fmt = JobInfoFormat("{id.f58:>12} {username:<8} {state:<8} {status_abbrev:>2}"
                        " {name:<6} {ntasks:>6} {nnodes:>6h} {runtime!F:>6}"
                        " {returncode:>2}")
    assert fmt.header() == (
        "       JOBID USER     STATE    ST NAME   NTASKS NNODES RUNTIME RC")
    line = fmt.format(inactive())
    assert line == (f"{JobID(JOBID).f58:>12} {inactive().username:<8} INACTIVE CD"
                    " sleep       2      1 2.500s  0")
    line = fmt.format(pending())
    assert " SCHED     S " in line and line.split()[-2:] == ["-", "0s"]


def test_format_heading_table():
    fields = {
        "id": "JOBID", "id.words": "JOBID", "userid": "UID", "urgency": "URG",
        "priority": "PRI", "state_single": "S", "result_abbrev": "RS",
        "waitstatus": "WSTATUS", "returncode": "RC",
        "exception.occurred": "EXCEPTION-OCCURRED", "exception.note":
        "EXCEPTION-NOTE", "contextual_info": "INFO", "contextual_time": "TIME",
        "inactive_reason": "INACTIVE-REASON", "sched": "SCHED",
        "annotations.sched.t_estimate": "T_ESTIMATE",
        "sched.reason_pending": "REASON",
        "sched.resource_summary": "RESOURCES", "user": "USER",
        "uri.local": "URI", "instance.stats.total": "NJOBS",
        "instance.utilization": "CORE%", "instance.gpu_utilization": "GPU%",
        "instance.progress": "PROG", "instance.resources.all.ncores": "CORES",
        "instance.resources.all.ngpus": "GPUS",
        "instance.resources.up.nnodes": "UP",
        "instance.resources.allocated.ncores": "USED",
        "instance.resources.free.ngpus": "FREE", "t_inactive": "T_INACTIVE",
        "expiration": "EXPIRATION", "t_remaining": "T_REMAINING",
    }
    for field, heading in fields.items():
        assert JobInfoFormat("{" + field + "}").header() == heading, field


def test_format_dynamic_fields():
    fmt = JobInfoFormat("{annotations.user.color} {sched.foo} {user.bar}"
                        " {instance.resources.weird.x}")
    assert fmt.header() == "USER.COLOR SCHED.FOO USER.BAR WEIRD.X"
    info = pending(annotations={"user": {"color": "red", "bar": 7}})
    assert fmt.format(info) == "red  7 "
    assert "annotations.user.color" in JobInfoFormat.headings
    fmt = JobInfoFormat("sort:-annotations.user.rank {id}")
    assert fmt.sort_keys == [("annotations.user.rank", True)]
    with pytest.raises(ValueError, match="Unknown format field: bogus"):
        JobInfoFormat("{bogus}")
    with pytest.raises(ValueError, match="Unknown format field: annotationsx"):
        JobInfoFormat("{annotationsx}")


def test_format_ignores_headings_argument():
    fmt = JobInfoFormat("{name}", headings={"x": "X"}, prepend="1.")
    assert fmt.header() == "NAME"
    assert fmt.format(inactive()) == "sleep"


def test_format_conversions_on_missing_values():
    info = pending()
    fmt = JobInfoFormat("{t_run!d:%H:%M::>6}|{t_run!D:>4h}|{sched.t_estimate!d:%H:%M::>5h}"
                        "|{expiration!F}|{priority:>3h}")
    assert fmt.format(info) == "      |   -|    -|0s|  -"
    fmt = JobInfoFormat("{dependencies} {exception.type:>4} {uri:>3}")
    assert fmt.format(info) == "         "


def test_format_filter_sort_and_print(capsys):
    items = [inactive(id=JOBID + 2, ntasks=1),
             inactive(id=JOBID + 1, ntasks=10), pending(id=JOBID)]
    fmt = JobInfoFormat("sort:-ntasks {id.dec:>20} ?:{queue:>8} +:{name:<2}")
    fmt.print_items(items)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "               JOBID NAME "
    assert [line.split()[0] for line in out[1:]] == [
        str(JOBID + 1), str(JOBID + 2), str(JOBID)]


def test_job_fields_to_attrs():
    assert job_fields_to_attrs(["id", "id.f58"]) == set()
    assert job_fields_to_attrs(["runtime"]) == {"t_run", "t_cleanup"}
    assert job_fields_to_attrs(["annotations.sched.x", "sched.y", "user.z"]) == {
        "annotations"}
    assert job_fields_to_attrs(["instance.stats.total"]) == {
        "annotations", "state", "result"}
    assert job_fields_to_attrs(["username", "status"]) == {
        "userid", "state", "result"}
    assert "exception_note" in job_fields_to_attrs(["exception.note"])
    with pytest.raises(KeyError):
        job_fields_to_attrs(["nosuchfield"])
    # every non-dynamic heading maps to attributes
    for field in list(JobInfoFormat.headings):
        if not field.startswith(("annotations.", "sched.", "user.", "instance.")):
            job_fields_to_attrs([field])


def test_instance_fields_without_instance():
    info = pending()
    fmt = JobInfoFormat("{instance.stats.total:>5h} {instance.utilization!P:>5h}"
                        " {instance.resources.all.ncores:>5}")
    assert fmt.format(info) == "    -     -      "
