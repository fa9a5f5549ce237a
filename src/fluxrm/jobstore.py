"""The job store: every SQL statement on the job tables, in one place.

``JobStore(store, log=None)`` wraps the broker's shared ``fluxrm.store.Store``
and is the only code that reads or writes these tables (the services call
its methods; the KVS keeps its own tables in ``fluxrm.kvstree``).  It keeps
nothing of a service's: each service opens its own on the shared store
(the job-manager and job-list do), and one JobStore is all its user needs:

``jobs``
    one row per job not yet purged: ``id`` (primary key), ``userid``,
    ``state`` (a ``fluxrm.jobstate`` state bit), ``flags``, ``t_submit``,
    ``t_inactive``, ``J`` (NULL when it is just ``sign_none(jobspec,
    userid)``, see ``fluxrm.job.signed_J``), ``jobspec_id`` (the row of its text in
    ``jobspecs``), ``jobspec`` (the text inline: rows written before
    ``jobspecs`` existed), ``R``, the eventlogs ``eventlog``,
    ``exec_eventlog``, ``output``, ``input``, ``info`` (job-list's attribute
    dict of an inactive job, JSON, written by job-list alone; NULL until
    then) and ``wait_pending`` (1 for an inactive waitable job not yet
    waited for).  Indexes: the inactive jobs by
    ``(t_inactive, id)`` (partial: ``state = INACTIVE``), and
    ``jobspec_id``.
``jobspecs``
    each distinct jobspec text once: ``id``, ``digest`` (SHA-256, unique),
    ``text``.  A bulk submission sends the same jobspec thousands of times;
    sharing it keeps job rows small, so writing and rewriting them is cheap.
``job_meta``
    ``key`` -> ``value`` texts of the job services (``fluid-epoch``,
    ``inactive-purged``).

Opening a ``JobStore`` creates the tables, or brings a store written by an
older version up to date: a ``jobs`` table without ``jobspec_id`` gets the
column (its rows keep their inline jobspec and still read back), and the old
``jobs_inactive`` index is replaced.  ``log(text)``, if given, is told of
rows the store handles itself (see ``write_rows``).

Methods, by user:

job-manager
    ``write_rows(jobs, waiting)``: write the rows of in-memory jobs, from
    the ``Store.before_commit`` callback (once per commit for all the jobs
    changed since the last one: the hottest path of the store).  A job
    (``fluxrm.job.Job``) with ``new`` set gets its whole row but ``info``
    (an insert, or an update of a row already there; all of them in one
    ``executemany``), else an ``UPDATE`` of ``state`` and the columns named
    in its ``dirty`` set (eventlog paths or ``"R"``); both are then cleared.
    An inactive job also gets ``t_inactive`` and ``wait_pending`` (its id in
    ``waiting``).  If
    the batch raises for a value (``ROW_ERRORS``: text with lone
    surrogates, an integer beyond 64 bits...) each row is written alone in
    a savepoint with the job's texts made ``storable`` (in memory too);
    the jobs whose row still fails are returned (normally ``[]``).  Of a
    job it reads ``id``, ``state``, ``view`` (``userid``, ``flags``,
    ``t_submit``, ``t_inactive``), ``J``, ``jobspec_text``, ``R`` (a dict
    or None), ``log_text(path)`` and, in the fallback, ``logs``.
    ``max_id()``, ``load_active()`` (restart: the rows of every job not
    inactive), ``load_waiting()`` (restart: inactive jobs not yet waited
    for), ``set_waited(id)``, ``load_row(id, columns)`` (a stored row as a
    dict), ``data(id, keys)`` (job data texts by ``DATA_COLUMNS`` key),
    ``meta_get(key)`` / ``meta_set(key, value)``, and for the
    ``job.<dothex>`` KVS view (which reads through the job-manager)
    ``ids()`` (every stored id, ascending, read lazily).
jobspec texts
    ``jobspec_id(text)``: the ``jobspecs`` row of a text, inserted if new;
    recent texts are remembered, so a repeat costs one dict lookup (and
    forgotten if a batch that inserted texts fails to commit).
    ``JOBSPEC_SQL``: a job row's jobspec text as an SQL expression.
job-list
    ``write_info(rows)``: the ``info`` of jobs that became inactive, one
    ``executemany`` per batch (from job-list's own ``before_commit``
    callback, after the job-manager's has written the rows);
    ``inactive_rows(since, userids)``: ``(id, t_inactive, info)`` of
    inactive jobs, the latest ended first, read incrementally through the
    index; ``inactive_counts()``: ``(queue, result, n)`` over the stored
    ``info`` of inactive jobs; ``inactive_ids_without_info()``;
    ``load_row``; ``purged_total()``.
purge (the job-manager)
    ``count_inactive(ended_before=None)``, ``oldest_inactive(n)``
    (``(id, wait_pending)`` of the ``n`` first ended), ``state_of(id)``,
    ``purge(ids)``: delete those rows and the jobspec texts no row uses
    any more; returns ``[(id, info)]`` of the rows deleted;
    ``add_purged(n)`` to ``purged_total()`` (kept in ``job_meta``).

Reads see the writes of the open batch (``Store.query``), but not what a
service holds in memory until it writes it (the job-manager its dirty
rows, job-list the info of jobs that just became inactive).
"""

import hashlib
import json
import re
import sqlite3

from fluxrm.job import signed_J
from fluxrm.compact_json import dumps
from fluxrm.jobstate import INACTIVE

__all__ = ["JobStore", "JOBSPEC_SQL", "LOG_COLUMNS", "DATA_COLUMNS",
           "ROW_ERRORS", "signed_J", "storable"]

# eventlog path (as job-info and the KVS name it) -> jobs column
LOG_COLUMNS = {"eventlog": "eventlog", "guest.exec.eventlog": "exec_eventlog",
               "guest.output": "output", "guest.input": "input"}
_MAIN, _EXEC, _OUTPUT, _INPUT = LOG_COLUMNS
# every job datum by key -> jobs column
DATA_COLUMNS = {"jobspec": "jobspec", "R": "R", "J": "J", **LOG_COLUMNS}

# errors writing one job's row that are about that row's values (text with
# lone surrogates, an integer beyond 64 bits...), not about the store
ROW_ERRORS = (ValueError, TypeError, OverflowError, sqlite3.InterfaceError,
              sqlite3.IntegrityError)

REMEMBERED = 1024  # distinct jobspec texts kept in memory
_PURGED_KEY = "inactive-purged"  # job_meta: purged_total()

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    userid INTEGER NOT NULL,
    state INTEGER NOT NULL,
    flags INTEGER NOT NULL DEFAULT 0,
    t_submit REAL NOT NULL,
    t_inactive REAL NOT NULL DEFAULT 0,
    J TEXT,
    jobspec TEXT,
    R TEXT,
    eventlog TEXT NOT NULL DEFAULT '',
    exec_eventlog TEXT,
    output TEXT,
    input TEXT,
    info TEXT,
    wait_pending INTEGER NOT NULL DEFAULT 0
);
DROP INDEX IF EXISTS jobs_inactive;
CREATE INDEX IF NOT EXISTS jobs_inactive_by_time ON jobs (t_inactive, id)
    WHERE state = {INACTIVE:d};
CREATE TABLE IF NOT EXISTS job_meta (key TEXT PRIMARY KEY, value TEXT);
"""

JOBSPECS_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobspecs (
    id INTEGER PRIMARY KEY,
    digest BLOB NOT NULL UNIQUE,
    text TEXT NOT NULL
);
"""

JOBSPEC_SQL = ("COALESCE(jobs.jobspec,"
               " (SELECT text FROM jobspecs WHERE jobspecs.id = jobs.jobspec_id))")

# a job's whole row but ``info`` (job-list's, see ``write_info``): a row
# written again (after a failed batch) keeps the info it has
_ROW_COLUMNS = ("id", "userid", "state", "flags", "t_submit", "t_inactive", "J",
                "jobspec_id", "R", "eventlog", "exec_eventlog", "output", "input",
                "wait_pending")
_INSERT_ROW = (
    f"INSERT INTO jobs ({', '.join(_ROW_COLUMNS)})"
    f" VALUES ({','.join('?' * len(_ROW_COLUMNS))})"
    " ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _ROW_COLUMNS[1:]))

_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text):
    """JSON text as SQLite (and the wire) can carry it.

    A Python string may hold lone surrogates (a non-UTF-8 file name in an
    error message, a jobspec stored before job-ingest refused them), which
    cannot be encoded as UTF-8.  In JSON text they can only sit inside
    string literals, so writing each as its ``\\uXXXX`` escape is lossless:
    the text decodes to the same value.
    """
    if text is None or text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text


def _dumps_or_none(obj):
    return None if obj is None else dumps(obj)


def _select_expr(column):
    """A column of ``jobs`` as a SELECT list item (see ``load_row``)."""
    if column == "jobspec":
        return f"{JOBSPEC_SQL} AS jobspec"
    if column == "*":
        return f"*, {JOBSPEC_SQL} AS jobspec"  # the later "jobspec" wins
    return column


class JobStore:
    def __init__(self, store, log=None):
        self.store = store
        self._log = log
        store.script(SCHEMA)
        store.script(JOBSPECS_SCHEMA)
        columns = [row[1] for row in store.query("PRAGMA table_info(jobs)")]
        if "jobspec_id" not in columns:  # a store from before jobspecs
            store.script("ALTER TABLE jobs ADD COLUMN jobspec_id INTEGER")
        store.script("CREATE INDEX IF NOT EXISTS jobs_by_jobspec ON jobs (jobspec_id)")
        self._spec_ids = {}  # jobspec text -> jobspecs.id (only cleared in place)
        self._watching_batch = False

    def _report(self, text):
        if self._log is not None:
            self._log(text)

    # -- job rows (job-manager) ------------------------------------------------------
    def write_rows(self, jobs, waiting):
        """Write the rows of ``jobs`` into the open batch (see the module
        docstring); return the jobs whose row could not be written."""
        try:
            self._write_rows(jobs, waiting)
        except ROW_ERRORS as exc:
            # one bad row must not fail the whole batch (and every batch
            # after it, since failed rows are written again); errors of the
            # store itself (locked, full disk) do fail the batch
            return self._write_rows_one_by_one(jobs, waiting, exc)
        return []

    def _write_rows(self, jobs, waiting):
        execute = self.store.execute
        spec_ids = self._spec_ids
        inserts = []
        for job in jobs:
            if job.new:
                job.new = False
                job.dirty.clear()
                view = job.view
                text = job.jobspec_text
                if text is None:
                    sid = None
                else:
                    sid = spec_ids.get(text)
                    if sid is None:
                        sid = self.jobspec_id(text)
                state = job.state
                inserts.append((
                    job.id, view.userid, state, view.flags, view.t_submit,
                    view.t_inactive, job.J, sid, _dumps_or_none(job.R),
                    job.log_text(_MAIN), job.log_text(_EXEC),
                    job.log_text(_OUTPUT), job.log_text(_INPUT),
                    1 if job.id in waiting else 0,
                ))
                continue
            cols = job.dirty
            job.dirty = set()
            sets, params = ["state = ?"], [job.state]
            for col in cols:
                if col in LOG_COLUMNS:
                    sets.append(f"{LOG_COLUMNS[col]} = ?")
                    params.append(job.log_text(col))
                elif col == "R":
                    sets.append("R = ?")
                    params.append(_dumps_or_none(job.R))
            if job.state == INACTIVE:
                sets += ["t_inactive = ?", "wait_pending = ?"]
                params += [job.view.t_inactive, 1 if job.id in waiting else 0]
            params.append(job.id)
            execute(f"UPDATE jobs SET {', '.join(sets)} WHERE id = ?", params)
        if inserts:
            self.store.executemany(_INSERT_ROW, inserts)

    def _write_rows_one_by_one(self, jobs, waiting, error):
        """Writing a batch of rows failed: write each whole row in its own
        savepoint, its texts made storable; return the jobs whose row still
        fails (logged), so one job never stops the others being stored."""
        self._report(f"writing job rows: {error!r}; writing them one by one")
        failed = []
        for job in jobs:
            job.J = storable(job.J)
            job.jobspec_text = storable(job.jobspec_text)
            for path, lines in job.logs.items():
                job.logs[path] = [storable(line) for line in lines]
            job.new = True  # the whole row (statements done so far are redone)
            try:
                with self.store.savepoint():
                    self._write_rows([job], waiting)
            except ROW_ERRORS as exc:
                self._report(f"job {job.id}: its row cannot be stored: {exc!r}")
                failed.append(job)
        return failed

    def set_waited(self, jobid):
        self.store.execute("UPDATE jobs SET wait_pending = 0 WHERE id = ?", (jobid,))

    # -- reading rows ----------------------------------------------------------------
    def max_id(self):
        """The largest stored job id (0 if none)."""
        row = self.store.query_one("SELECT max(id) FROM jobs")
        return row[0] or 0 if row else 0

    def load_row(self, jobid, columns="*"):
        """The stored row of a job as a dict of column -> value, or None.

        ``columns``: the ``jobs`` columns to read, comma-separated; the
        ``jobspec`` column reads the text wherever it is stored.
        """
        select = ", ".join(_select_expr(c.strip()) for c in columns.split(","))
        cur = self.store.conn.execute(f"SELECT {select} FROM jobs WHERE id = ?",
                                      (jobid,))
        row = cur.fetchone()
        if row is None:
            return None
        names = [d[0] for d in cur.description]
        return dict(zip(names, row))

    def data(self, jobid, keys):
        """``{key: text or None}`` for keys of ``DATA_COLUMNS`` (J as
        submitted), in one query; None if the job is not stored."""
        cols = [DATA_COLUMNS[k] for k in keys]
        if "J" in keys:
            cols += ["userid", "jobspec"]  # to rebuild a J stored as NULL
        row = self.load_row(jobid, ", ".join(cols) or "id")
        if row is None:
            return None
        data = {key: row[DATA_COLUMNS[key]] for key in keys}
        if "J" in keys:
            data["J"] = signed_J(data["J"], row["jobspec"], row["userid"])
        return data

    def load_active(self):
        """Every job not inactive, by id: a list of ``(id, J, jobspec text,
        R, eventlog, exec_eventlog, output, input)``."""
        return self.store.query(
            f"SELECT id, J, {JOBSPEC_SQL}, R, eventlog, exec_eventlog, output, input"
            " FROM jobs WHERE state != ? ORDER BY id", (INACTIVE,))

    def load_waiting(self):
        """``(id, eventlog)`` of the inactive jobs not yet waited for."""
        return self.store.query(
            "SELECT id, eventlog FROM jobs WHERE wait_pending = 1 AND state = ?",
            (INACTIVE,))

    # -- job_meta --------------------------------------------------------------------
    def meta_get(self, key):
        row = self.store.query_one("SELECT value FROM job_meta WHERE key = ?", (key,))
        return row[0] if row else None

    def meta_set(self, key, value):
        self.store.execute(
            "INSERT OR REPLACE INTO job_meta (key, value) VALUES (?, ?)", (key, value))

    # -- jobspec texts ---------------------------------------------------------------
    def jobspec_id(self, text):
        """The ``jobspecs`` row id of ``text``, inserted (in the open batch)
        if new."""
        sid = self._spec_ids.get(text)
        if sid is not None:
            return sid
        digest = hashlib.sha256(text.encode("utf-8")).digest()
        store = self.store
        store.execute("INSERT OR IGNORE INTO jobspecs (digest, text) VALUES (?, ?)",
                      (digest, text))
        sid = store.query_one("SELECT id FROM jobspecs WHERE digest = ?", (digest,))[0]
        if len(self._spec_ids) >= REMEMBERED:
            self._spec_ids.clear()
        self._spec_ids[text] = sid
        if not self._watching_batch:
            self._watching_batch = True
            store.on_durable(self._batch_done)
        return sid

    def _batch_done(self, exc):
        self._watching_batch = False
        if exc is not None:
            self._spec_ids.clear()  # rows inserted by the failed batch are gone

    def _forget_unused_texts(self, ids):
        """Delete the texts of ``ids`` that no job refers to any more."""
        store = self.store
        gone = False
        for sid in ids:
            if store.query_one("SELECT 1 FROM jobs WHERE jobspec_id = ? LIMIT 1",
                               (sid,)) is None:
                store.execute("DELETE FROM jobspecs WHERE id = ?", (sid,))
                gone = True
        if gone:
            self._spec_ids.clear()  # a text seen again gets a new row

    # -- job-list --------------------------------------------------------------------
    def write_info(self, rows):
        """Set the ``info`` of jobs, ``rows`` ``[(id, info text)]``, in the
        open batch (one statement for all); return the ids of those without
        a row yet (the job-manager has not written it), whose info is not
        set."""
        cur = self.store.executemany("UPDATE jobs SET info = ? WHERE id = ?",
                                     [(text, jobid) for jobid, text in rows])
        if cur.rowcount == len(rows):
            return []
        query_one = self.store.query_one
        return [jobid for jobid, _text in rows
                if query_one("SELECT 1 FROM jobs WHERE id = ?", (jobid,)) is None]

    def inactive_rows(self, since=0, userids=None):
        """``(id, t_inactive, info)`` of the inactive jobs, the latest ended
        first (then the highest id): only those ended after ``since`` if it
        is > 0, of the users in ``userids`` unless it is None.  A generator
        reading the rows as they are consumed."""
        # the literal state lets SQLite use the partial index of inactive jobs
        sql = f"SELECT id, t_inactive, info FROM jobs WHERE state = {INACTIVE:d}"
        params = []
        if since > 0:
            sql += " AND t_inactive > ?"
            params.append(since)
        if userids is not None:
            sql += f" AND userid IN ({','.join('?' * len(userids))})"
            params.extend(sorted(userids))
        sql += " ORDER BY t_inactive DESC, id DESC"
        cur = self.store.conn.execute(sql, params)
        while True:
            rows = cur.fetchmany(256)
            if not rows:
                return
            yield from rows

    def inactive_counts(self):
        """``[(queue, result, n)]``: the inactive jobs with a stored
        ``info``, counted by its ``queue`` and ``result``."""
        store = self.store
        try:
            return store.query(
                "SELECT json_extract(info, '$.queue'),"
                " json_extract(info, '$.result'), count(*)"
                " FROM jobs WHERE state = ? AND info IS NOT NULL"
                " GROUP BY 1, 2", (INACTIVE,))
        except Exception:  # no JSON1: decode in Python
            counts = {}
            for (info,) in store.query(
                    "SELECT info FROM jobs WHERE state = ? AND info IS NOT NULL",
                    (INACTIVE,)):
                try:
                    d = json.loads(info)
                except ValueError:
                    d = {}
                if not isinstance(d, dict):
                    d = {}
                key = (d.get("queue"), d.get("result"))
                counts[key] = counts.get(key, 0) + 1
            return [(q, r, n) for (q, r), n in counts.items()]

    def inactive_ids_without_info(self):
        """Ids of the inactive jobs stored without ``info``."""
        return [jobid for (jobid,) in self.store.query(
            "SELECT id FROM jobs WHERE state = ? AND info IS NULL", (INACTIVE,))]

    # -- purge -----------------------------------------------------------------------
    def purged_total(self):
        """How many jobs were purged from this store, ever."""
        value = self.meta_get(_PURGED_KEY)
        return int(value) if value else 0

    def add_purged(self, n):
        self.meta_set(_PURGED_KEY, str(self.purged_total() + n))

    def count_inactive(self, ended_before=None):
        """How many inactive jobs are stored (that ended before the time
        ``ended_before``, if given)."""
        inactive = f"FROM jobs WHERE state = {INACTIVE:d}"
        if ended_before is None:
            return self.store.query_one(f"SELECT count(*) {inactive}")[0]
        return self.store.query_one(f"SELECT count(*) {inactive} AND t_inactive < ?",
                                    (ended_before,))[0]

    def oldest_inactive(self, n):
        """``(id, wait_pending)`` of the ``n`` inactive jobs that ended
        first, in that order (an iterator read as it is consumed)."""
        return self.store.conn.execute(
            f"SELECT id, wait_pending FROM jobs WHERE state = {INACTIVE:d}"
            " ORDER BY t_inactive, id LIMIT ?", (n,))

    def state_of(self, jobid):
        """The stored state of a job, or None if it is not stored."""
        row = self.store.query_one("SELECT state FROM jobs WHERE id = ?", (jobid,))
        return None if row is None else row[0]

    def purge(self, ids):
        """Delete the rows of ``ids`` (those stored), then the jobspec texts
        no row refers to any more; ``[(id, info)]`` of the rows deleted."""
        store = self.store
        purged = []
        spec_ids = set()
        for jobid in ids:
            row = store.query_one("SELECT info, jobspec_id FROM jobs WHERE id = ?",
                                  (jobid,))
            if row is None:
                continue
            purged.append((jobid, row[0]))
            if row[1] is not None:
                spec_ids.add(row[1])
            store.execute("DELETE FROM jobs WHERE id = ?", (jobid,))
        self._forget_unused_texts(spec_ids)
        return purged

    # -- the job.<dothex> KVS view ---------------------------------------------------------
    def ids(self):
        """Every stored job id, ascending (read as it is consumed)."""
        for (jobid,) in self.store.conn.execute("SELECT id FROM jobs ORDER BY id"):
            yield jobid
