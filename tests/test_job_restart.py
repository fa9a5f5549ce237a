"""Jobs survive an instance restart on the same state directory."""

import signal

import pytest

import flux
import flux.job
from flux.job import JobspecV1


def sim(duration):
    js = JobspecV1.from_command(["true"])
    js.setattr("system.exec.test", {"run_duration": duration})
    return js


def names(h, jobid):
    return [e.name for e in flux.job.event_watch(h, jobid)]


def test_restart_keeps_queue_and_fails_running_jobs(start_instance, tmp_path):
    statedir = tmp_path / "state"
    with start_instance(f"statedir={statedir}", "resource.cores=1") as inst:
        h = inst.handle()
        done = flux.job.submit(h, sim("0s"), waitable=True)
        assert flux.job.wait(h, done).success
        running = flux.job.submit(h, sim("1h"), waitable=True)
        flux.job.event_wait(h, running, "start")
        queued = [flux.job.submit(h, sim("0s"), waitable=True) for _ in range(3)]
        held = flux.job.submit(h, sim("0s"), urgency=0)
        # the instance dies without any chance to clean up
        inst.proc.send_signal(signal.SIGKILL)
        inst.proc.wait()

    with start_instance(f"statedir={statedir}", "resource.cores=1") as inst:
        h = inst.handle()
        # the finished job is still there; its wait result was consumed
        assert names(h, done)[-1] == "clean"
        with pytest.raises(ChildProcessError):
            flux.job.wait(h, done)
        # the running job got an exception and ended
        res = flux.job.wait(h, running)
        assert not res.success
        assert b"type=exec" in res.errstr
        evs = names(h, running)
        assert "flux-restart" in evs and evs[-1] == "clean"
        # the queued jobs ran after the restart, in order
        for jobid in queued:
            assert flux.job.wait(h, jobid).success
        # the held job is still held: replayed, never allocated
        log = h.rpc("job-info.lookup", {"id": held, "keys": ["eventlog"]}).get()
        assert "flux-restart" in log["eventlog"]
        assert '"alloc"' not in log["eventlog"]
        # new ids keep increasing across the restart
        newer = flux.job.submit(h, sim("0s"), waitable=True)
        assert newer > max(queued + [held])
        assert flux.job.wait(h, newer).success
        flux.job.cancel(h, held)


def test_graceful_restart(start_instance, tmp_path):
    statedir = tmp_path / "state"
    with start_instance(f"statedir={statedir}") as inst:
        h = inst.handle()
        ids = [flux.job.submit(h, sim("0s")) for _ in range(5)]
        for jobid in ids:
            flux.job.event_wait(h, jobid, "clean")
    with start_instance(f"statedir={statedir}") as inst:
        h = inst.handle()
        for jobid in ids:
            info = flux.job.result(h, jobid)
            assert info.result == "COMPLETED"
            assert names(h, jobid)[-1] == "clean"


def test_J_returned_as_submitted_before_and_after_restart(start_instance, tmp_path):
    """job-ingest keeps J only when it is not the plain "none" signature of
    the jobspec; either way lookups return the submitted text exactly."""
    import base64
    import os

    from flux.job.submit import sign_none

    text = sim("0s").dumps()
    plain = sign_none(text)
    # a valid "none" signature with its header keys in another order
    header = f"userid\0i{os.getuid()}\0version\0i1\0mechanism\0snone\0".encode()
    odd = "{}.{}.none".format(base64.b64encode(header).decode(),
                              base64.b64encode(text.encode()).decode())
    statedir = tmp_path / "state"
    with start_instance(f"statedir={statedir}") as inst:
        h = inst.handle()
        ids = {flux.job.submit(h, J, pre_signed=True, waitable=True): J
               for J in (plain, odd)}
        for jobid, J in ids.items():
            assert flux.job.wait(h, jobid).success
            assert h.rpc("job-info.lookup", {"id": jobid, "keys": ["J"]}).get()["J"] == J

    with start_instance(f"statedir={statedir}") as inst:
        h = inst.handle()
        for jobid, J in ids.items():  # now read from the store
            got = h.rpc("job-info.lookup", {"id": jobid, "keys": ["J", "jobspec"]}).get()
            assert got["J"] == J
            assert got["jobspec"] == text


def test_identical_jobspecs_stored_once(start_instance, tmp_path):
    import sqlite3

    statedir = tmp_path / "state"
    text = sim("0s").dumps()
    other = sim("1s").dumps()
    with start_instance(f"statedir={statedir}") as inst:
        h = inst.handle()
        ids = [flux.job.submit(h, t, waitable=True) for t in (text, text, text, other)]
        for jobid in ids:
            assert flux.job.wait(h, jobid).success
    with sqlite3.connect(statedir / "content.sqlite") as db:
        assert db.execute("SELECT count(*) FROM jobspecs").fetchone()[0] == 2
    with start_instance(f"statedir={statedir}") as inst:
        h = inst.handle()
        for jobid, t in zip(ids, (text, text, text, other)):
            got = h.rpc("job-info.lookup", {"id": jobid, "keys": ["jobspec"]}).get()
            assert got["jobspec"] == t


def test_store_from_before_jobspec_table_still_reads(start_instance, tmp_path):
    """A job row with its jobspec inline (no jobspecs table, no jobspec_id
    column: an older store) is read back, and new jobs are added beside it."""
    import json
    import os
    import sqlite3

    statedir = tmp_path / "state"
    os.makedirs(statedir)
    text = sim("0s").dumps()
    events = [{"timestamp": 1.0, "name": "submit",
               "context": {"userid": os.getuid(), "urgency": 16, "flags": 0,
                           "version": 1}},
              {"timestamp": 1.1, "name": "exception",
               "context": {"type": "cancel", "severity": 0, "note": ""}},
              {"timestamp": 1.2, "name": "clean"}]
    eventlog = "".join(json.dumps(e) + "\n" for e in events)
    old_id = 1 << 40
    with sqlite3.connect(statedir / "content.sqlite") as db:
        db.executescript("""
            CREATE TABLE jobs (id INTEGER PRIMARY KEY, userid INTEGER NOT NULL,
                state INTEGER NOT NULL, flags INTEGER NOT NULL DEFAULT 0,
                t_submit REAL NOT NULL, t_inactive REAL NOT NULL DEFAULT 0,
                J TEXT, jobspec TEXT, R TEXT, eventlog TEXT NOT NULL DEFAULT '',
                exec_eventlog TEXT, output TEXT, input TEXT, info TEXT,
                wait_pending INTEGER NOT NULL DEFAULT 0);""")
        db.execute("INSERT INTO jobs (id, userid, state, t_submit, t_inactive, J,"
                   " jobspec, eventlog) VALUES (?, ?, 64, 1.0, 1.2, ?, ?, ?)",
                   (old_id, os.getuid(), text, text, eventlog))
    with start_instance(f"statedir={statedir}") as inst:
        h = inst.handle()
        got = h.rpc("job-info.lookup", {"id": old_id, "keys": ["jobspec", "J"]}).get()
        assert got["jobspec"] == text and got["J"] == text
        new = flux.job.submit(h, text, waitable=True)
        assert flux.job.wait(h, new).success
        got = h.rpc("job-info.lookup", {"id": new, "keys": ["jobspec"]}).get()
        assert got["jobspec"] == text


def test_rows_written_again_after_a_failed_commit(start_instance, tmp_path):
    """A batch that cannot be committed (here: another process holds the
    database's write lock) fails the submissions it carried with EIO; the
    job rows it held are written again with the next batch, not lost."""
    import errno
    import sqlite3

    statedir = tmp_path / "state"
    with start_instance(f"statedir={statedir}") as inst:
        h = inst.handle()
        first = flux.job.submit(h, sim("0s"), waitable=True)
        assert flux.job.wait(h, first).success
        blocker = sqlite3.connect(statedir / "content.sqlite", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # hold the write lock
        try:
            with pytest.raises(OSError) as info:
                flux.job.submit(h, sim("0s"), urgency=0)
            assert info.value.errno == errno.EIO
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        # the job whose submission failed was ended, not left to run
        failed = [j for j in flux.job.job_list(h, attrs=["exception_type"]).get_jobs()
                  if j.get("exception_type") == "ingest"]
        assert len(failed) == 1
        # the next batch commits, and carries the rows of the failed one
        later = flux.job.submit(h, sim("0s"), waitable=True)
        assert flux.job.wait(h, later).success
        ids = {row["id"] for row in flux.job.job_list(h, attrs=["state"]).get_jobs()}
    with sqlite3.connect(statedir / "content.sqlite") as db:
        stored = {row[0] for row in db.execute("SELECT id FROM jobs")}
    assert ids <= stored and len(stored) == 3
