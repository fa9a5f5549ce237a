"""fluxrm.jobstore: the job tables on an in-memory store, without a broker."""

import json
import sqlite3

import pytest

from flux.job.submit import sign_none
from fluxrm import jobstate
from fluxrm.jobstate import INACTIVE, SCHED
from fluxrm.jobstore import JOBSPEC_SQL, JobStore, storable
from fluxrm.job import MAIN, OUTPUT, Job, event_line, make_event, signed_J
from fluxrm.jobrequest import JobRequest
from fluxrm.store import Store

UID = 1000
SPEC = json.dumps({"version": 1, "tasks": [{"command": ["true"]}]})
OTHER_SPEC = json.dumps({"version": 1, "tasks": [{"command": ["false"]}]})


@pytest.fixture
def store():
    s = Store(":memory:")
    yield s
    s.close()


@pytest.fixture
def logged():
    return []


@pytest.fixture
def jobs(store, logged):
    return JobStore(store, log=logged.append)


def post(job, name, context=None, timestamp=1.0):
    """What the job-manager does for an event: apply it, append its line."""
    event = make_event(name, context, timestamp)
    jobstate.apply(job.view, event)
    job.logs[MAIN].append(event_line(event))
    job.dirty.add(MAIN)


def new_job(jobid, text=SPEC, userid=UID, t=1.0, J=None):
    job = Job(jobid, JobRequest(json.loads(text)), J, text)
    post(job, "submit", {"userid": userid, "urgency": 16, "flags": 0, "version": 1}, t)
    post(job, "validate", timestamp=t)
    post(job, "depend", timestamp=t)
    post(job, "priority", {"priority": 16}, t)
    return job


def end_job(job, t, note="canceled"):
    post(job, "exception", {"type": "cancel", "severity": 0, "note": note}, t)
    post(job, "clean", timestamp=t)
    assert job.state == INACTIVE


def info_of(job):
    return json.dumps({"queue": None, "result": job.view.result(), "t": job.view.t_inactive})


def write(jobs, store, batch, waiting=()):
    """Write rows as the job-manager's before-commit callback does, and the
    info of the inactive ones as job-list's does, then commit."""
    failed = jobs.write_rows(batch, waiting)
    assert jobs.write_info([(job.id, info_of(job)) for job in batch
                            if job.state == INACTIVE and job not in failed]) == []
    store.flush()
    return failed


# -- schema -------------------------------------------------------------------------------

def test_schema_tables_columns_and_indexes(store, jobs):
    tables = {r[0] for r in store.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"jobs", "jobspecs", "job_meta"} <= tables
    columns = [r[1] for r in store.query("PRAGMA table_info(jobs)")]
    assert columns == ["id", "userid", "state", "flags", "t_submit", "t_inactive", "J",
                       "jobspec", "R", "eventlog", "exec_eventlog", "output", "input",
                       "info", "wait_pending", "jobspec_id"]
    indexes = {r[0] for r in store.query("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"jobs_inactive_by_time", "jobs_by_jobspec"} <= indexes
    # the list and purge queries use the partial index of inactive jobs
    plan = " ".join(str(r) for r in store.query(
        f"EXPLAIN QUERY PLAN SELECT id, info FROM jobs WHERE state = {INACTIVE:d}"
        " ORDER BY t_inactive DESC, id DESC"))
    assert "jobs_inactive_by_time" in plan
    JobStore(store)  # opening it again changes nothing
    assert [r[1] for r in store.query("PRAGMA table_info(jobs)")] == columns


def test_older_store_is_migrated_and_still_reads(store):
    """A store from before the jobspecs table: the jobspec inline in its
    row, no jobspec_id column, the old index of inactive jobs."""
    store.script("""
        CREATE TABLE jobs (id INTEGER PRIMARY KEY, userid INTEGER NOT NULL,
            state INTEGER NOT NULL, flags INTEGER NOT NULL DEFAULT 0,
            t_submit REAL NOT NULL, t_inactive REAL NOT NULL DEFAULT 0,
            J TEXT, jobspec TEXT, R TEXT, eventlog TEXT NOT NULL DEFAULT '',
            exec_eventlog TEXT, output TEXT, input TEXT, info TEXT,
            wait_pending INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX jobs_inactive ON jobs (t_inactive) WHERE state = 64;""")
    store.execute("INSERT INTO jobs (id, userid, state, t_submit, t_inactive, J, jobspec,"
                  " eventlog) VALUES (7, ?, 64, 1.0, 2.0, NULL, ?, 'log')", (UID, SPEC))
    store.flush()
    jobs = JobStore(store)
    assert "jobspec_id" in [r[1] for r in store.query("PRAGMA table_info(jobs)")]
    indexes = {r[0] for r in store.query("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "jobs_inactive" not in indexes and "jobs_inactive_by_time" in indexes
    assert jobs.data(7, ["jobspec", "J", "eventlog"]) == {
        "jobspec": SPEC, "J": sign_none(SPEC, UID), "eventlog": "log"}
    assert jobs.load_row(7)["jobspec"] == SPEC  # "*" reads the text too
    # a new job beside it shares nothing with it, and stores its text apart
    job = new_job(8)
    assert write(jobs, store, [job]) == []
    assert store.query_one("SELECT jobspec, jobspec_id IS NOT NULL FROM jobs WHERE id = 8") \
        == (None, 1)
    assert jobs.data(8, ["jobspec"]) == {"jobspec": SPEC}
    assert jobs.count_inactive() == 1 and list(jobs.ids()) == [7, 8]


# -- writing rows -------------------------------------------------------------------------

def test_new_rows_then_updates(store, jobs):
    a, b = new_job(1), new_job(2, J="a signed J")
    assert write(jobs, store, [a, b]) == []
    assert not a.new and not a.dirty
    row = jobs.load_row(1, "state, userid, t_submit, jobspec, J, eventlog, R, info")
    assert row == {"state": SCHED, "userid": UID, "t_submit": 1.0, "jobspec": SPEC,
                   "J": None, "eventlog": a.log_text(MAIN), "R": None, "info": None}
    assert jobs.data(1, ["J"]) == {"J": sign_none(SPEC, UID)}  # rebuilt
    assert jobs.data(2, ["J", "jobspec"]) == {"J": "a signed J", "jobspec": SPEC}
    # an update writes the state and the dirty columns only
    a.R = {"version": 1, "execution": {"R_lite": []}}
    a.dirty.add("R")
    a.logs[OUTPUT] = ['{"name":"data"}\n']
    a.dirty.add(OUTPUT)
    post(a, "alloc", timestamp=2.0)
    store.execute("UPDATE jobs SET J = 'untouched' WHERE id = 1")
    assert write(jobs, store, [a]) == []
    row = jobs.load_row(1, "state, R, output, eventlog, J")
    assert row == {"state": a.state, "R": json.dumps(a.R, separators=(",", ":")),
                   "output": '{"name":"data"}\n', "eventlog": a.log_text(MAIN),
                   "J": "untouched"}
    assert jobs.data(1, ["R", "guest.output"]) == {"R": row["R"], "guest.output": row["output"]}
    assert jobs.data(99, ["R"]) is None and jobs.load_row(99) is None
    assert jobs.max_id() == 2


def test_inactive_rows_get_t_inactive_and_wait_pending(store, jobs):
    a, b, c = new_job(1), new_job(2), new_job(3)
    end_job(c, 3.0)  # inactive already at its first write
    assert jobs.write_rows([a, b, c], {3}) == []
    end_job(a, 4.0)
    end_job(b, 5.0)
    assert jobs.write_rows([a, b], {2: "result"}) == []
    store.flush()
    rows = store.query("SELECT id, state, t_inactive, wait_pending, info FROM jobs ORDER BY id")
    assert rows == [(1, INACTIVE, 4.0, 0, None), (2, INACTIVE, 5.0, 1, None),
                    (3, INACTIVE, 3.0, 1, None)]
    assert sorted(jobs.load_waiting()) == [(2, b.log_text(MAIN)), (3, c.log_text(MAIN))]
    jobs.set_waited(3)
    store.flush()
    assert jobs.load_waiting() == [(2, b.log_text(MAIN))]


def test_a_batch_failing_for_one_row_is_written_row_by_row(store, jobs, logged):
    """Text with lone surrogates (which SQLite cannot store) in one row: the
    rows are written one by one, that row's texts escaped; JSON text
    decodes to the same value."""
    good = new_job(1)
    bad = new_job(2, text=json.dumps({"name": "caf\udce9"}, ensure_ascii=False))
    post(bad, "exception", {"type": "exec", "severity": 1, "note": "caf\udc80"}, 2.0)
    also_good = new_job(3, text=OTHER_SPEC)
    assert write(jobs, store, [good, bad, also_good]) == []
    assert len(logged) == 1 and "one by one" in logged[0]
    assert list(jobs.ids()) == [1, 2, 3]
    data = jobs.data(2, ["jobspec", "eventlog"])
    assert data["jobspec"] == '{"name": "caf\\udce9"}'
    assert json.loads(data["jobspec"]) == {"name": "caf\udce9"}
    last = json.loads(data["eventlog"].splitlines()[-1])
    assert last["context"]["note"] == "caf\udc80"
    assert bad.jobspec_text == data["jobspec"]  # escaped in memory too
    assert jobs.data(3, ["jobspec"]) == {"jobspec": OTHER_SPEC}
    # the next batch writes the escaped texts at once
    post(bad, "urgency", {"urgency": 3}, 3.0)
    assert write(jobs, store, [bad]) == [] and len(logged) == 1


def test_a_row_that_cannot_be_written_is_returned(store, jobs, logged):
    good, bad = new_job(1), new_job(2)
    bad.view.flags = 1 << 70  # beyond 64 bits: OverflowError, whatever the escaping
    assert write(jobs, store, [good, bad]) == [bad]
    assert len(logged) == 2 and "job 2" in logged[1]
    assert list(jobs.ids()) == [1]


def test_a_store_error_fails_the_batch(store, jobs, logged):
    """An error of the store itself (here: it cannot be written at all)
    is not one row's fault: the batch fails, no row-by-row retry."""
    store.conn.execute("PRAGMA query_only = ON")
    store.before_commit(lambda: jobs.write_rows([new_job(1)], ()))
    with pytest.raises(sqlite3.OperationalError):
        store.flush()
    assert logged == []
    store.conn.execute("PRAGMA query_only = OFF")
    assert list(jobs.ids()) == []


# -- jobspec texts ------------------------------------------------------------------------

def test_identical_jobspecs_are_stored_once(store, jobs):
    batch = [new_job(i, SPEC if i % 2 else OTHER_SPEC) for i in range(1, 7)]
    assert write(jobs, store, batch) == []
    assert store.query_one("SELECT count(*) FROM jobspecs")[0] == 2
    assert store.query_one("SELECT count(*) FROM jobs WHERE jobspec IS NOT NULL")[0] == 0
    assert jobs.jobspec_id(SPEC) == store.query_one(
        "SELECT jobspec_id FROM jobs WHERE id = 1")[0]
    texts = store.query(f"SELECT id, {JOBSPEC_SQL} FROM jobs ORDER BY id")
    assert texts == [(job.id, job.jobspec_text) for job in batch]


def test_jobspec_ids_are_forgotten_when_their_batch_fails(store, jobs):
    sid = jobs.jobspec_id(SPEC)
    store.before_commit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        store.flush()
    assert store.query_one("SELECT count(*) FROM jobspecs")[0] == 0  # rolled back
    sid = jobs.jobspec_id(SPEC)  # inserted again, not the lost id
    store.flush()
    assert store.query_one("SELECT text FROM jobspecs WHERE id = ?", (sid,)) == (SPEC,)


# -- restart ------------------------------------------------------------------------------

def test_load_active_for_restart(store, jobs):
    a, b, c = new_job(3), new_job(1, text=OTHER_SPEC), new_job(2)
    c.logs[OUTPUT] = ["out\n"]
    end_job(a, 2.0)
    assert write(jobs, store, [a, b, c]) == []
    rows = jobs.load_active()
    assert [r[0] for r in rows] == [1, 2]  # not the inactive job, by id
    jobid, J, text, R, eventlog, exec_log, output, input_ = rows[1]
    assert (J, text, R, eventlog, exec_log, output, input_) == (
        None, SPEC, None, c.log_text(MAIN), None, "out\n", None)
    assert rows[0][2] == OTHER_SPEC
    assert jobs.max_id() == 3


# -- job-list -----------------------------------------------------------------------------

def test_list_queries(store, jobs):
    batch = []
    for jobid, (userid, t) in enumerate([(1, 5.0), (2, 3.0), (1, 3.0), (2, 9.0)], 1):
        job = new_job(jobid, userid=userid)
        end_job(job, t)
        batch.append(job)
    batch.append(new_job(5))  # active: never listed here
    assert write(jobs, store, batch) == []
    store.execute("UPDATE jobs SET info = NULL WHERE id = 1")
    assert list(jobs.inactive_rows()) == [
        (4, 9.0, info_of(batch[3])), (1, 5.0, None), (3, 3.0, info_of(batch[2])),
        (2, 3.0, info_of(batch[1]))]
    assert [r[0] for r in jobs.inactive_rows(since=3.0)] == [4, 1]
    assert [r[0] for r in jobs.inactive_rows(userids={1})] == [1, 3]
    assert [r[0] for r in jobs.inactive_rows(since=4, userids={2, 7})] == [4]
    assert jobs.inactive_counts() == [(None, batch[1].view.result(), 3)]
    assert jobs.inactive_ids_without_info() == [1]


def test_write_info_one_statement_and_rows_not_there_yet(store, jobs):
    a, b = new_job(1), new_job(2)
    end_job(a, 2.0)
    end_job(b, 3.0)
    assert jobs.write_rows([a], ()) == []
    # job 2's row is not written yet (the job-manager writes it first)
    assert jobs.write_info([(1, "one"), (2, "two"), (3, "three")]) == [2, 3]
    assert jobs.write_rows([b], ()) == []
    assert jobs.write_info([(2, "two")]) == []
    store.flush()
    assert store.query("SELECT id, info FROM jobs ORDER BY id") == [(1, "one"), (2, "two")]
    # the job-manager writing a whole row again (after a failed batch)
    # keeps the info: it is job-list's
    a.new = True
    post(a, "flux-restart", timestamp=4.0)
    assert jobs.write_rows([a], ()) == []
    store.flush()
    assert jobs.load_row(1, "info, eventlog") == {"info": "one", "eventlog": a.log_text(MAIN)}


def test_list_rows_are_read_incrementally(store, jobs):
    batch = [new_job(i) for i in range(1, 601)]
    for job in batch:
        end_job(job, float(job.id))
    assert write(jobs, store, batch) == []
    rows = jobs.inactive_rows()
    assert [next(rows)[0] for _ in range(3)] == [600, 599, 598]
    assert len(list(rows)) == 597


# -- purge --------------------------------------------------------------------------------

def test_purge_selection_and_deletion(store, jobs):
    batch = [new_job(i, SPEC if i < 4 else OTHER_SPEC) for i in range(1, 6)]
    for job, t in zip(batch, (4.0, 2.0, 3.0, 1.0)):
        end_job(job, t)
    assert write(jobs, store, batch, waiting={3}) == []
    assert jobs.count_inactive() == 4
    assert jobs.count_inactive(ended_before=3.0) == 2
    assert list(jobs.oldest_inactive(3)) == [(4, 0), (2, 0), (3, 1)]
    assert jobs.state_of(5) == SCHED and jobs.state_of(1) == INACTIVE
    assert jobs.state_of(42) is None
    purged = jobs.purge([4, 2, 42])
    assert purged == [(4, info_of(batch[3])), (2, info_of(batch[1]))]
    # job 4 was the only one with OTHER_SPEC... but job 5 (active) shares it
    assert store.query_one("SELECT count(*) FROM jobspecs")[0] == 2
    jobs.purge([1, 3])
    store.flush()
    assert list(jobs.ids()) == [5]
    assert [r[0] for r in store.query("SELECT text FROM jobspecs")] == [OTHER_SPEC]
    # a text whose row went is stored again when it comes back
    job = new_job(6)
    assert write(jobs, store, [job]) == []
    assert jobs.data(6, ["jobspec"]) == {"jobspec": SPEC}


# -- the KVS view, job_meta ---------------------------------------------------------------

def test_kvs_view_reads(store, jobs):
    assert list(jobs.ids()) == []
    assert write(jobs, store, [new_job(1 << 40), new_job(5)]) == []
    assert list(jobs.ids()) == [5, 1 << 40]


def test_meta(store, jobs):
    assert jobs.meta_get("fluid-epoch") is None
    jobs.meta_set("fluid-epoch", "123")
    jobs.meta_set("fluid-epoch", "456")
    assert jobs.meta_get("fluid-epoch") == "456"
    assert jobs.purged_total() == 0
    jobs.add_purged(3)
    jobs.add_purged(2)
    store.flush()
    assert JobStore(store).purged_total() == 5


# -- helpers ------------------------------------------------------------------------------

def test_storable_and_signed_J():
    assert storable(None) is None and storable("abc") == "abc"
    assert storable("café") == "café"
    assert storable('"caf\udce9"') == '"caf\\udce9"'
    assert json.loads(storable(json.dumps("\ud800x", ensure_ascii=False))) == "\ud800x"
    assert signed_J("kept", SPEC, UID) == "kept"
    assert signed_J(None, None, UID) is None
    assert signed_J(None, SPEC, UID) == sign_none(SPEC, UID)
