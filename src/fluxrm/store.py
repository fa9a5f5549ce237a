"""SQLite persistence for the broker's services, with group commit.

One ``Store`` wraps one SQLite database file (normally
``<statedir>/content.sqlite``) opened in WAL mode with a single connection
that lives on the broker's asyncio loop.  Every service of the broker shares
it (the KVS, and the job tables through ``fluxrm.jobstore``), each in
its own tables.

Group commit
    Writes never commit one by one.  The first write of a loop turn opens a
    transaction (``BEGIN``) and schedules a flush with ``loop.call_soon``;
    every write issued during the same turn joins that transaction; the flush
    then ``COMMIT``s them all at once.  Under load commits are paced: a
    batch opened less than ``MIN_COMMIT_INTERVAL`` after the last commit
    waits out the rest of that interval, gathering more writes (an idle
    store still commits at the end of the turn, so latency stays low).  Reads on the connection see the
    uncommitted writes of the batch, so callers never need to flush before
    reading.  Without a running loop (scripts, unit tests) the batch stays
    open until ``flush()`` or ``close()``.

API
    ``Store(path, synchronous="NORMAL", log=None)``
        open or create the database.  ``path=":memory:"`` works for tests.
        ``log(text)``, if given, is told of the errors the store handles
        itself (a failed commit, a waiter that raised).
    ``execute(sql, params=())`` / ``executemany(sql, seq)``
        run a write statement inside the current batch; return the cursor.
    ``query(sql, params=())`` / ``query_one(sql, params=())``
        read rows (a list / the first row or ``None``); sees pending writes.
    ``script(sql)``
        run DDL (``CREATE TABLE IF NOT EXISTS ...``) outside any batch,
        committing the open batch first.
    ``savepoint()``
        context manager making a group of writes atomic *within* the batch:
        if the block raises, its writes are rolled back and the exception
        propagates; the rest of the batch is unaffected.
    ``durable()``
        an ``asyncio.Future`` resolved (with ``None``) once every write issued
        so far is committed, or failed with the error if the commit failed.
        Already resolved when nothing is pending.
    ``on_durable(callback)``
        call ``callback(exc)`` once the writes issued so far are committed
        (``exc`` is ``None``) or failed (``exc`` is the error).  Runs at once,
        synchronously, when nothing is pending.  Every waiter is called even
        if another one raises (that is logged).
    ``before_commit(callback)``
        call ``callback()`` just before the open batch commits, opening a
        batch if none is open.  A service that keeps dirty state in memory
        (the job manager) writes it here, once per commit, instead of once
        per loop turn; its writes join the batch being committed.
    ``flush(sync=False)``
        commit the current batch now; raises the error if the commit
        failed.  ``sync=True`` additionally checkpoints
        the WAL into the main database file with ``fsync`` (a "hard" flush).
    ``close()``
        flush, then close the connection.  Further writes raise
        ``sqlite3.ProgrammingError``.
    ``in_batch`` and ``closed`` (properties), ``path`` (attribute), ``conn`` (the
    ``sqlite3.Connection``, for read-only use by callers that need cursors).

Sharing
    ``shared_store(broker)`` returns the broker's one ``Store`` on
    ``<statedir>/content.sqlite``, opening it on first use and keeping it in
    ``broker.store``; every service should use it rather than open its own
    connection (one writer).  The KVS service, loaded first, closes it when
    it stops (services stop in reverse order, so after everyone else).

Failures: any exception raised by a before-commit callback or by
``COMMIT`` itself (an ``sqlite3.Error``, but also a ``UnicodeEncodeError``
for text SQLite cannot store) rolls the whole batch back, is logged, and is
given to the batch's waiters; the store is then ready for the next batch.

Durability: with the default ``synchronous=NORMAL`` a committed batch
survives the broker being killed (SIGKILL) but not necessarily a power loss;
``flush(sync=True)`` or ``synchronous="FULL"`` covers that too.
"""

import asyncio
import contextlib
import itertools
import os
import sqlite3

__all__ = ["Store", "shared_store", "STORE_FILENAME"]

STORE_FILENAME = "content.sqlite"
MIN_COMMIT_INTERVAL = 0.003  # seconds
LOG_ERR = 3


def shared_store(broker):
    """The broker's shared store (opened on first use)."""
    store = getattr(broker, "store", None)
    if store is None or store.closed:
        store = Store(os.path.join(broker.statedir, STORE_FILENAME),
                      log=lambda text: broker.log(LOG_ERR, text, "store"))
        broker.store = store
    return store


class Store:
    def __init__(self, path, synchronous="NORMAL", log=None):
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"invalid synchronous mode {synchronous!r}")
        self.path = str(path)
        # isolation_level=None: the module never opens transactions behind
        # our back; we issue BEGIN/COMMIT ourselves.
        self.conn = sqlite3.connect(self.path, isolation_level=None,
                                    check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={synchronous}")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self._in_batch = False
        self._flush_handle = None
        self._waiters = []  # callbacks(exc) for the open batch
        self._precommit = []  # callbacks() to run before the batch commits
        self._sp_counter = itertools.count(1)
        self._closed = False
        self._last_commit = 0.0
        self._log = log

    def _report(self, text):
        if self._log is not None:
            try:
                self._log(text)
            except Exception:
                pass  # logging must never take the store down with it

    # -- writes ------------------------------------------------------------------
    @property
    def closed(self):
        return self._closed

    @property
    def in_batch(self):
        return self._in_batch

    def _begin(self):
        if self._closed:
            raise sqlite3.ProgrammingError("Cannot operate on a closed store")
        if self._in_batch:
            return
        self.conn.execute("BEGIN")
        self._in_batch = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            delay = self._last_commit + MIN_COMMIT_INTERVAL - loop.time()
            if delay > 0:
                self._flush_handle = loop.call_later(delay, self._scheduled_flush)
            else:
                self._flush_handle = loop.call_soon(self._scheduled_flush)

    def execute(self, sql, params=()):
        self._begin()
        return self.conn.execute(sql, params)

    def executemany(self, sql, seq):
        self._begin()
        return self.conn.executemany(sql, seq)

    def before_commit(self, callback):
        self._begin()
        self._precommit.append(callback)

    @contextlib.contextmanager
    def savepoint(self):
        self._begin()
        name = f"sp{next(self._sp_counter)}"
        self.conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.conn.execute(f"ROLLBACK TO {name}")
            self.conn.execute(f"RELEASE {name}")
            raise
        self.conn.execute(f"RELEASE {name}")

    def script(self, sql):
        self.flush()
        self.conn.executescript(sql)

    # -- reads ---------------------------------------------------------------------
    def query(self, sql, params=()):
        return self.conn.execute(sql, params).fetchall()

    def query_one(self, sql, params=()):
        return self.conn.execute(sql, params).fetchone()

    # -- commit ----------------------------------------------------------------------
    def _scheduled_flush(self):
        self._flush_handle = None
        try:
            self.flush()
        except Exception:
            pass  # already logged and reported to the waiters
        self._last_commit = asyncio.get_running_loop().time()

    def flush(self, sync=False):
        """Commit the open batch (if any); notify waiters.

        Raises the error if the commit fails (the batch is then rolled
        back and every waiter receives the error).
        """
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        exc = self._commit() if self._in_batch else None
        waiters, self._waiters = self._waiters, []
        if exc is None and sync and not self._closed:
            self.conn.execute("PRAGMA wal_checkpoint(FULL)")
        for cb in waiters:
            try:
                cb(exc)
            except Exception as cb_exc:  # one waiter must not skip the others
                self._report(f"commit waiter {cb!r} raised: {cb_exc!r}")
        if exc is not None:
            raise exc

    def _commit(self):
        """Run the before-commit callbacks, then COMMIT (ROLLBACK if
        anything fails); return the error or None.

        Whatever the error (not only ``sqlite3.Error``: a callback may
        raise anything), the transaction is rolled back, or the next
        ``BEGIN`` would fail for good ("cannot start a transaction within
        a transaction")."""
        try:
            while self._precommit:  # a callback may register another
                callbacks, self._precommit = self._precommit, []
                for callback in callbacks:
                    callback()
            self.conn.execute("COMMIT")
        except Exception as exc:
            self._precommit = []
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # COMMIT failed and SQLite already rolled back
            self._report(f"commit failed, batch rolled back: {exc!r}")
            return exc
        finally:
            self._in_batch = False
        return None

    def on_durable(self, callback):
        if not self._in_batch:
            callback(None)
        else:
            self._waiters.append(callback)

    def durable(self):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        def done(exc):
            if fut.done():
                return
            if exc is None:
                fut.set_result(None)
            else:
                fut.set_exception(exc)

        self.on_durable(done)
        return fut

    def close(self):
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
