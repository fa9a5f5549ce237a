"""fluxrm.store: WAL, group commit, savepoints, durability."""

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from fluxrm.store import Store


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "test.sqlite")
    s.script("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER)")
    yield s
    s.close()


def other_conn(store):
    return sqlite3.connect(store.path)


def committed(store):
    with other_conn(store) as c:
        return sorted(c.execute("SELECT k, v FROM t").fetchall())


def test_wal_mode(store):
    assert store.query_one("PRAGMA journal_mode")[0] == "wal"


def test_reads_see_pending_writes_before_flush(store):
    store.execute("INSERT INTO t VALUES ('a', 1)")
    assert store.in_batch
    assert store.query("SELECT k, v FROM t") == [("a", 1)]
    assert committed(store) == []  # another connection sees nothing yet
    store.flush()
    assert not store.in_batch
    assert committed(store) == [("a", 1)]


def test_executemany_and_close_flushes(tmp_path):
    s = Store(tmp_path / "x.sqlite")
    s.script("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
    s.executemany("INSERT INTO t VALUES (?, ?)", [("a", 1), ("b", 2)])
    s.close()
    s.close()  # idempotent
    with pytest.raises(sqlite3.ProgrammingError):
        s.execute("INSERT INTO t VALUES ('c', 3)")
    s2 = Store(tmp_path / "x.sqlite")
    assert s2.query("SELECT k, v FROM t ORDER BY k") == [("a", 1), ("b", 2)]
    s2.close()


def test_savepoint_rolls_back_only_its_block(store):
    store.execute("INSERT INTO t VALUES ('a', 1)")
    with pytest.raises(RuntimeError):
        with store.savepoint():
            store.execute("INSERT INTO t VALUES ('b', 2)")
            raise RuntimeError("boom")
    with store.savepoint():
        store.execute("INSERT INTO t VALUES ('c', 3)")
    store.flush()
    assert committed(store) == [("a", 1), ("c", 3)]


def test_on_durable_without_batch_runs_at_once(store):
    calls = []
    store.on_durable(calls.append)
    assert calls == [None]


def test_on_durable_after_flush(store):
    calls = []
    store.execute("INSERT INTO t VALUES ('a', 1)")
    store.on_durable(calls.append)
    assert calls == []
    store.flush(sync=True)
    assert calls == [None]


def test_failed_commit_reports_error(store):
    store.script("CREATE TABLE IF NOT EXISTS p (id INTEGER PRIMARY KEY);"
                 "CREATE TABLE IF NOT EXISTS c (pid INTEGER REFERENCES p(id)"
                 " DEFERRABLE INITIALLY DEFERRED)")
    store.execute("INSERT INTO t VALUES ('a', 1)")
    store.execute("INSERT INTO c VALUES (42)")  # violates the FK at COMMIT
    calls = []
    store.on_durable(calls.append)
    with pytest.raises(sqlite3.IntegrityError):
        store.flush()
    assert len(calls) == 1 and isinstance(calls[0], sqlite3.IntegrityError)
    assert committed(store) == []  # the whole batch was rolled back
    store.execute("INSERT INTO t VALUES ('b', 2)")  # the store is usable again
    store.flush()
    assert committed(store) == [("b", 2)]


def test_group_commit_one_transaction_per_loop_turn(store):
    commits = []

    async def main():
        # count COMMITs through the durable callbacks: all writes issued in one
        # turn share one batch, hence one callback invocation per batch
        for i in range(5):
            store.execute("INSERT INTO t VALUES (?, ?)", (f"k{i}", i))
            store.on_durable(lambda exc, i=i: commits.append((i, exc)))
        assert store.in_batch
        await store.durable()
        assert not store.in_batch
        first = list(commits)
        store.execute("INSERT INTO t VALUES ('z', 9)")
        fut = store.durable()
        assert not fut.done()
        await fut
        return first

    first = asyncio.run(main())
    assert first == [(i, None) for i in range(5)]
    assert len(committed(store)) == 6


def test_durable_resolved_when_idle(store):
    async def main():
        fut = store.durable()
        assert fut.done()
        await fut

    asyncio.run(main())


def test_killed_writer_keeps_committed_batches(tmp_path):
    """SIGKILL after a flushed batch: the batch survives, the open one is lost."""
    path = tmp_path / "kill.sqlite"
    code = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {os.path.join(os.path.dirname(__file__), '..', 'src')!r})
        from fluxrm.store import Store
        s = Store({str(path)!r})
        s.script("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
        s.execute("INSERT INTO t VALUES ('kept', 1)")
        s.flush()
        s.execute("INSERT INTO t VALUES ('lost', 2)")
        print("ready", flush=True)
        sys.stdin.read()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    s = Store(path)
    assert s.query("SELECT k FROM t") == [("kept",)]
    s.close()


def test_bad_synchronous_mode(tmp_path):
    with pytest.raises(ValueError):
        Store(tmp_path / "y.sqlite", synchronous="bogus")


def test_before_commit_writes_join_the_batch_once(store):
    calls = []

    def write_dirty():
        calls.append("write")
        store.execute("INSERT INTO t VALUES ('late', 7)")

    async def main():
        store.before_commit(write_dirty)  # opens a batch
        assert store.in_batch
        store.execute("INSERT INTO t VALUES ('a', 1)")
        assert calls == []  # not before the commit
        await store.durable()
        return list(calls)

    assert asyncio.run(main()) == ["write"]
    assert committed(store) == [("a", 1), ("late", 7)]
    store.flush()
    assert calls == ["write"]  # once per batch, not again


def test_before_commit_callback_may_register_another(store):
    order = []

    def second():
        order.append(2)
        store.execute("INSERT INTO t VALUES ('b', 2)")

    def first():
        order.append(1)
        store.before_commit(second)

    store.before_commit(first)
    store.flush()
    assert order == [1, 2]
    assert committed(store) == [("b", 2)]


def test_before_commit_failure_rolls_back_the_batch(store):
    def bad_write():
        store.execute("INSERT INTO t VALUES ('a', 2)")  # duplicate key

    store.execute("INSERT INTO t VALUES ('a', 1)")
    store.before_commit(bad_write)
    calls = []
    store.on_durable(calls.append)
    with pytest.raises(sqlite3.IntegrityError):
        store.flush()
    assert len(calls) == 1 and isinstance(calls[0], sqlite3.IntegrityError)
    assert committed(store) == []
    assert not store.in_batch
    store.execute("INSERT INTO t VALUES ('c', 3)")  # usable again
    store.flush()
    assert committed(store) == [("c", 3)]


def test_any_error_in_a_before_commit_callback_rolls_back(tmp_path):
    # text SQLite cannot store (a lone surrogate) raises UnicodeEncodeError,
    # not an sqlite3.Error: the batch must still be rolled back, or every
    # later BEGIN fails with "cannot start a transaction within a transaction"
    logged = []
    store = Store(tmp_path / "t.sqlite", log=logged.append)
    store.script("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")

    def bad_write():
        store.execute("INSERT INTO t VALUES (?, 2)", ("caf\udce9",))

    store.execute("INSERT INTO t VALUES ('a', 1)")
    store.before_commit(bad_write)
    calls = []
    store.on_durable(calls.append)
    with pytest.raises(UnicodeEncodeError):
        store.flush()
    assert len(calls) == 1 and isinstance(calls[0], UnicodeEncodeError)
    assert len(logged) == 1 and "rolled back" in logged[0]
    assert not store.in_batch
    store.execute("INSERT INTO t VALUES ('c', 3)")  # usable again
    store.flush()
    assert committed(store) == [("c", 3)]
    store.close()


def test_a_failing_waiter_does_not_skip_the_others(tmp_path):
    logged = []
    store = Store(tmp_path / "t.sqlite", log=logged.append)
    store.script("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
    store.execute("INSERT INTO t VALUES ('a', 1)")
    calls = []

    def bad_waiter(exc):
        raise TypeError("a bug in one waiter")

    store.on_durable(calls.append)
    store.on_durable(bad_waiter)
    store.on_durable(calls.append)
    store.flush()
    assert calls == [None, None]
    assert len(logged) == 1 and "a bug in one waiter" in logged[0]
    assert committed(store) == [("a", 1)]
    store.close()


def test_scheduled_flush_survives_any_error(tmp_path):
    # the loop's flush must neither raise into the event loop nor wedge
    store = Store(tmp_path / "t.sqlite", log=lambda text: None)
    store.script("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")

    async def main():
        store.execute("INSERT INTO t VALUES ('a', 1)")
        store.before_commit(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            await store.durable()
        store.execute("INSERT INTO t VALUES ('b', 2)")
        await store.durable()

    asyncio.run(main())
    assert committed(store) == [("b", 2)]
    store.close()
