"""flux.eventlog.EventLogFormatter (spec 16.2), BatchConfig (17.5), JobStatus (18.1)
and JobStats.QueueStats (20): the parts that need no instance."""

import datetime
import json
import os

import pytest

from flux.eventlog import EventLogEvent, EventLogFormatter
from flux.job import BatchConfig, JobInfo
from flux.job.stats import JobStats
from flux.job.watcher import JobProgressBar, JobStatus

ESC = "\033"
ENTRY = {"timestamp": 1738774194.0947378, "name": "alloc",
         "context": {"annotations": {"sched": {"resource_summary": "rank0/core0"}}}}


def test_formatter_validation():
    with pytest.raises(ValueError, match="^Invalid entry_fmt: yaml$"):
        EventLogFormatter(format="yaml")
    with pytest.raises(ValueError, match="^Invalid timestamp_fmt: epoch$"):
        EventLogFormatter(timestamp_format="epoch")
    with pytest.raises(ValueError, match="^Invalid color: sometimes$"):
        EventLogFormatter(color="sometimes")
    assert EventLogFormatter(timestamp_format="reltime").timestamp_fmt == "human"


def test_text_and_json():
    fmt = EventLogFormatter(color="never")
    assert fmt.format(ENTRY) == ('1738774194.094738 alloc annotations='
                                 '{"sched":{"resource_summary":"rank0/core0"}}')
    line = {"timestamp": 1.5, "name": "release",
            "context": {"ranks": "all", "final": True, "x": None, "n": [1, 2]}}
    assert fmt.format(json.dumps(line)) == \
        '   1.500000 release ranks="all" final=true x=null n=[1,2]'
    js = EventLogFormatter(format="json", color="always")
    assert js.format({"timestamp": 1738774194.0947378, "name": "validate",
                      "context": {}}) == \
        '{"timestamp":1738774194.0947378,"name":"validate"}'
    assert js.format(EventLogEvent({"name": "x", "timestamp": 2, "context": {"é": 1}})) \
        == '{"name":"x","timestamp":2,"context":{"é":1}}'


def test_offset_and_human():
    fmt = EventLogFormatter(timestamp_format="offset", color="never")
    assert fmt.format({"timestamp": 100.0, "name": "a"}) == "       0.000000 a"
    assert fmt.format({"timestamp": 101.25, "name": "b"}) == "       1.250000 b"
    hum = EventLogFormatter(timestamp_format="human", color="never")
    first = hum.format({"timestamp": 1000.0, "name": "a"})
    stamp = datetime.datetime.fromtimestamp(1000.0).strftime("[%b%d %H:%M]")
    assert first == f"{stamp} a"
    # deltas count from the last minute break, not from the previous event
    assert hum.format({"timestamp": 1010.5, "name": "b"}) == "[ +10.500000] b"
    assert hum.format({"timestamp": 1020.0, "name": "c"}) == "[ +20.000000] c"
    assert hum.format({"timestamp": 999.0, "name": "d"}) == "[  -1.000000] d"
    later = hum.format({"timestamp": 1060.0, "name": "e"})
    assert later.startswith("[") and "+" not in later


def test_iso_truncates_and_z():
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    try:
        import time

        time.tzset()
        fmt = EventLogFormatter(timestamp_format="iso", color="never")
        assert fmt.format(ENTRY).startswith("2025-02-05T16:49:54.094737Z alloc")
    finally:
        if saved is None:
            os.environ.pop("TZ")
        else:
            os.environ["TZ"] = saved
        time.tzset()


def test_colors():
    fmt = EventLogFormatter(color="always")
    line = fmt.format({"timestamp": 1.0, "name": "exception",
                       "context": {"severity": 0, "ok": True, "note": "x"}})
    reset = f"{ESC}[0m"
    assert line == (f"{ESC}[32m   1.000000{reset} {ESC}[1m{ESC}[31mexception{reset} "
                    f"{ESC}[34mseverity{reset}={ESC}[37m0{reset} "
                    f"{ESC}[34mok{reset}={ESC}[35mtrue{reset} "
                    f"{ESC}[34mnote{reset}={ESC}[35m\"x\"{reset}")
    assert set(EventLogFormatter.eventlog_colors) == {
        "name", "time", "timebreak", "key", "value", "number", "exception"}


def test_batchconfig(tmp_path, monkeypatch):
    conf = BatchConfig()
    assert conf.config is None and conf.get("a.b", 5) == 5
    assert conf.update("resource.noverify=true") is conf
    conf.update("a=1").update("tbon.topo=kary:2").update("s=some text")
    assert conf.config == {"resource": {"noverify": True}, "a": 1,
                           "tbon": {"topo": "kary:2"}, "s": "some text"}
    assert conf.get("resource.noverify") is True
    conf.update('{"resource": {"exclude": "0"}}\n')
    assert conf.get("resource") == {"noverify": True, "exclude": "0"}
    conf.update("[sched]\nplugin = 'x'\n")
    assert conf.get("sched.plugin") == "x"
    with pytest.raises(ValueError, match="^--conf: failed to parse multiline as TOML or JSON$"):
        BatchConfig().update("{nope\n=")
    bad = tmp_path / "bad.toml"
    bad.write_text("= = =\n")
    with pytest.raises(ValueError, match=f"^--conf: parse error: {bad}: "):
        BatchConfig().update(str(bad))
    with pytest.raises(ValueError, match="^--conf: .*No such file"):
        BatchConfig().update(str(tmp_path / "missing.json"))
    home = tmp_path / "home"
    (home / "flux" / "config").mkdir(parents=True)
    (home / "flux" / "config" / "mine.json").write_text('{"j": 1}')
    (home / "flux" / "config" / "mine.toml").write_text("t = 2\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "none"))
    assert BatchConfig().update("mine").config == {"t": 2}  # TOML first
    with pytest.raises(ValueError, match="^--conf: named config 'other' not found$"):
        BatchConfig().update("other")
    assert BatchConfig.normalize("x.y=2") == {"x": {"y": 2}}
    assert BatchConfig.normalize(conf) is conf.config


def test_from_alloc_normalises_conf():
    from flux.job import JobspecV1

    for conf in ("a.b=1", BatchConfig().update("a.b=1"), {"a": {"b": 1}}):
        js = JobspecV1.from_batch(content="#!/bin/sh\ntrue\n", nslots=1, conf=conf)
        assert js.attributes["system"]["files"]["conf.json"]["data"] == {"a": {"b": 1}}


def _info(state, **kw):
    return JobInfo({"id": 1234, "state": state, "t_submit": 1.0, **kw})


def test_jobstatus():
    with pytest.raises(ValueError, match="^JobStatus requires an object of type JobInfo$"):
        JobStatus({"id": 1})
    assert JobStatus(_info(8)).status == "pending"  # SCHED
    running = JobStatus(_info(16))
    assert (running.status, running.active, running.exitcode) == ("running", True, 0)
    failed = JobStatus(_info(64, result=2, waitstatus=3 << 8))
    assert (failed.status, failed.active, failed.exitcode) == ("failed", False, 3)
    done = JobStatus(_info(64, result=1, waitstatus=0))
    assert (done.status, done.exitcode) == ("complete", 0)
    done.add_event("x")
    done.add_event("x")
    assert (done.event_count("x"), done.has_event("x"), done.has_event("y")) == (2, True, False)


def test_progressbar_counts():
    bar = JobProgressBar(None, starttime=0.0)
    bar.add_job(_info(8))
    from flux.job import JobID

    with pytest.raises(ValueError, match=f"^job {JobID(1234)} is already being monitored$"):
        bar.add_job(_info(8))
    with pytest.raises(ValueError):
        bar.add_job({"id": 5})
    bar.process_event(1234, EventLogEvent({"timestamp": 1, "name": "alloc"}))
    assert "PD:0   R:1   CD:0   F:0" in bar.line()
    bar.process_event(1234, EventLogEvent({"timestamp": 2, "name": "finish",
                                           "context": {"status": 256}}))
    bar.process_event(1234)
    bar.process_event(1234)  # once per job
    line = bar.line()
    assert line.startswith("PD:0   R:0   CD:0   F:1   ") and "100.0%" in line


def test_queuestats():
    empty = JobStats.QueueStats()
    assert empty.queue_name == "" and empty.run == 0 and empty.failed == 0
    a = JobStats.QueueStats({"name": "a", "job_states": {"run": 2, "total": 3},
                             "failed": 1})
    b = JobStats.QueueStats({"job_states": {"run": 1}, "successful": 4})
    assert b.queue_name == "all"
    a += b
    assert (a.run, a.total, a.failed, a.successful, a.queue_name) == (3, 3, 1, 4, "a,all")
    assert JobStats.states[0] == "depend" and JobStats.derived_stats == (
        "pending", "running", "active")
    assert "inactive_purged" in JobStats.stats
