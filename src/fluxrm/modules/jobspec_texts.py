"""Jobspec texts stored once: the ``jobspecs`` table of the job store.

A bulk submission sends the same jobspec thousands of times.  Each distinct
text is kept once, in ``jobspecs (id, digest, text)``; a job row refers to
it by ``jobs.jobspec_id`` and leaves ``jobs.jobspec`` NULL (rows written
before this table existed keep their text inline, and still read back).
Job rows stay small, so inserting a job and rewriting it as it runs write
a fraction of the bytes (bench/bulksubmit.py's 2.3 KB jobspec was over
half of every row).

- ``JobspecTexts(store)``: creates the table (and the ``jobspec_id`` column
  of a ``jobs`` table from before it) on the shared ``fluxrm.store.Store``.
- ``id_of(text)``: the row id of ``text``, inserting it if new (inside the
  store's open batch).  Recent texts are remembered in memory, so a repeat
  costs one dict lookup; if a batch that inserted texts fails to commit,
  the memory is forgotten, since those rows were rolled back.
- ``forget_unused(ids)``: delete those texts no job refers to (after a
  purge); ``jobs.jobspec_id`` is indexed for it.
- ``JOBSPEC_SQL``: the SQL expression of a job row's jobspec text, for
  ``SELECT`` lists (``... AS jobspec``).
"""

import hashlib

__all__ = ["JobspecTexts", "JOBSPEC_SQL"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobspecs (
    id INTEGER PRIMARY KEY,
    digest BLOB NOT NULL UNIQUE,
    text TEXT NOT NULL
);
"""

JOBSPEC_SQL = ("COALESCE(jobs.jobspec,"
               " (SELECT text FROM jobspecs WHERE jobspecs.id = jobs.jobspec_id))")

REMEMBERED = 1024  # distinct texts kept in memory


class JobspecTexts:
    def __init__(self, store):
        self.store = store
        store.script(SCHEMA)
        columns = [row[1] for row in store.query("PRAGMA table_info(jobs)")]
        if "jobspec_id" not in columns:
            store.script("ALTER TABLE jobs ADD COLUMN jobspec_id INTEGER")
        store.script("CREATE INDEX IF NOT EXISTS jobs_by_jobspec ON jobs (jobspec_id)")
        self._ids = {}  # text -> jobspecs.id
        self._watching_batch = False

    def id_of(self, text):
        sid = self._ids.get(text)
        if sid is not None:
            return sid
        digest = hashlib.sha256(text.encode("utf-8")).digest()
        store = self.store
        store.execute("INSERT OR IGNORE INTO jobspecs (digest, text) VALUES (?, ?)",
                      (digest, text))
        sid = store.query_one("SELECT id FROM jobspecs WHERE digest = ?", (digest,))[0]
        if len(self._ids) >= REMEMBERED:
            self._ids.clear()
        self._ids[text] = sid
        if not self._watching_batch:
            self._watching_batch = True
            store.on_durable(self._batch_done)
        return sid

    def forget_unused(self, ids):
        """Delete the texts of ``ids`` that no job refers to any more."""
        store = self.store
        gone = False
        for sid in ids:
            if store.query_one("SELECT 1 FROM jobs WHERE jobspec_id = ? LIMIT 1",
                               (sid,)) is None:
                store.execute("DELETE FROM jobspecs WHERE id = ?", (sid,))
                gone = True
        if gone:
            self._ids.clear()  # a text seen again gets a new row

    def _batch_done(self, exc):
        self._watching_batch = False
        if exc is not None:
            self._ids.clear()  # rows inserted by the failed batch are gone
