"""FluxExecutor / FluxExecutorFuture against real instances.

Every test uses real jobs.  Waits are on futures, events and threads, never
on sleeps; the ``timeout=`` arguments only turn a hang into a failure.
Where a future must still be queued when it is cancelled, the executor
thread is held inside an event callback that the test itself triggers.
"""

import concurrent.futures as cf
import signal
import threading

import pytest

import flux
import flux.job
from flux.job import FluxExecutor, FluxExecutorFuture, JobException, JobspecV1
from flux.job.executor import FluxExecutor as FluxExecutor2

HANG = 60  # seconds after which a wait means a hang


def simulated(duration="0s", **test):
    js = JobspecV1.from_command(["true"])
    js.setattr("system.exec.test", {"run_duration": duration, **test})
    return js


def command(*argv):
    return JobspecV1.from_command(list(argv))


EXPECTED = ["submit", "depend", "priority", "alloc", "start", "finish", "release",
            "free", "clean"]


# -- basics --------------------------------------------------------------------------------
def test_exports():
    assert FluxExecutor is FluxExecutor2
    assert flux.job.FluxExecutorFuture is FluxExecutorFuture
    assert issubclass(FluxExecutorFuture, cf.Future)
    assert FluxExecutor.EVENTS == flux.job.MAIN_EVENTS
    assert "validate" not in FluxExecutor.EVENTS
    assert not hasattr(FluxExecutor, "map")


def test_threads_argument(instance):
    with pytest.raises(ValueError):
        FluxExecutor(threads=-1)
    ex = FluxExecutor(threads=0)
    with pytest.raises(RuntimeError):
        ex.submit(command("true"))
    ex.shutdown()
    with FluxExecutor(threads=3, thread_name_prefix="exe") as ex:
        names = sorted(t.name for t in ex._threads)
        assert names == ["exe-0", "exe-1", "exe-2"]
        assert all(t.daemon for t in ex._threads)
        futs = [ex.submit(command("true")) for _ in range(6)]
        assert {f._owner for f in futs} == set(ex._threads)  # round robin
        assert [f.result(timeout=HANG) for f in futs] == [0] * 6
    with FluxExecutor() as ex:
        assert ex._threads[0].name.startswith("FluxExecutor-")


def test_as_completed_and_exit_codes(instance):
    with FluxExecutor() as ex:
        futs = [ex.submit(command("true")) for _ in range(5)]
        futs.append(ex.submit(command("false")))
        futs.append(ex.submit(command("sh", "-c", "exit 3")))
        codes = sorted(f.result() for f in cf.as_completed(futs, timeout=HANG))
        assert codes == [0, 0, 0, 0, 0, 1, 3]
        jobids = [f.jobid() for f in futs]
        assert all(isinstance(j, flux.job.JobID) for j in jobids)
        assert len(set(jobids)) == len(futs)
        done, not_done = cf.wait(futs, timeout=HANG)
        assert len(done) == len(futs) and not not_done


def test_signals(instance, h):
    with FluxExecutor() as ex:
        # a task killed by a signal exits 128+N, as under upstream's job shell
        fut = ex.submit(command("sh", "-c", "kill -KILL $$"))
        assert fut.result(timeout=HANG) == 128 + signal.SIGKILL
        started = threading.Event()
        sleeper = ex.submit(command("sleep", "60"))
        sleeper.add_event_callback("start", lambda f, e: started.set())
        assert started.wait(HANG)
        flux.job.kill(h, sleeper.jobid(), signal.SIGUSR1)
        assert sleeper.result(timeout=HANG) == 128 + signal.SIGUSR1
        # a finish status that says "signalled" (the shell itself) gives -signum
        shell = ex.submit(simulated(wait_status=int(signal.SIGTERM)))
        assert shell.result(timeout=HANG) == -signal.SIGTERM


def test_exec_failure_raises_job_exception(instance):
    with FluxExecutor() as ex:
        fut = ex.submit(command("/nonexistent/command"))
        exc = fut.exception(timeout=HANG)
        assert isinstance(exc, JobException)
        assert exc.type == "exec"
        with pytest.raises(JobException):
            fut.result()


def test_submit_kwargs(instance, h):
    with FluxExecutor() as ex:
        fut = ex.submit(command("true"), urgency=3, waitable=True)
        assert fut.result(timeout=HANG) == 0
        status = flux.job.wait(h, fut.jobid())
        assert status.success
        fut = ex.submit(simulated(), urgency=0)  # held: never runs
        jobid = fut.jobid(timeout=HANG)
        flux.job.cancel(h, jobid)
        assert fut.exception(timeout=HANG).type == "cancel"


# -- errors ---------------------------------------------------------------------------------
def test_bad_jobspec_and_keywords(instance):
    with FluxExecutor() as ex:
        bad = ex.submit("{}")
        assert isinstance(bad.exception(timeout=HANG), OSError)
        with pytest.raises(RuntimeError, match="job could not be submitted due to OSError"):
            bad.jobid()
        kw = ex.submit(command("true"), no_such_keyword=1)
        assert isinstance(kw.exception(timeout=HANG), TypeError)
        with pytest.raises(RuntimeError, match="could not be submitted due to TypeError"):
            kw.jobid()
        notype = ex.submit(12345)
        assert isinstance(notype.exception(timeout=HANG), TypeError)
        urgency = ex.submit(command("true"), urgency=99)
        assert isinstance(urgency.exception(timeout=HANG), OSError)
        # the executor is still usable
        assert ex.submit(command("true")).result(timeout=HANG) == 0


def test_submit_after_shutdown(instance):
    ex = FluxExecutor()
    fut = ex.submit(command("true"))
    ex.shutdown(wait=True)
    assert fut.done() and fut.result() == 0
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        ex.submit(command("true"))
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        ex.attach(fut.jobid())
    ex.shutdown()  # idempotent
    ex.shutdown(wait=False, cancel_futures=True)
    assert not any(t.is_alive() for t in ex._threads)


def test_context_manager_does_not_suppress(instance):
    with pytest.raises(ZeroDivisionError):
        with FluxExecutor() as ex:
            fut = ex.submit(command("true"))
            1 / 0
    assert fut.result() == 0  # shutdown(wait=True) ran


# -- callbacks and events ------------------------------------------------------------------------
def test_future_callbacks(instance):
    with FluxExecutor() as ex:
        fut = ex.submit(command("true"))
        seen = []
        assert fut.add_jobid_callback(lambda f: seen.append(("jobid", f.jobid()))) is fut
        assert fut.add_done_callback(lambda f: seen.append(("done", f.result()))) is fut
        assert fut.add_event_callback("start", lambda f, e: seen.append(e.name)) is fut
        with pytest.raises(ValueError):
            fut.add_event_callback("validate", lambda f, e: None)
        with pytest.raises(ValueError):
            fut.add_event_callback("no-such-event", lambda f, e: None)
        assert fut.result(timeout=HANG) == 0
    assert ("jobid", fut.jobid()) in seen
    assert ("done", 0) in seen
    assert "start" in seen
    # late registrations replay immediately, in this thread
    late = []
    fut.add_jobid_callback(lambda f: late.append("jobid"))
    fut.add_event_callback("clean", lambda f, e: late.append(e.name))
    fut.add_event_callback("exception", lambda f, e: late.append(e.name))
    assert late == ["jobid", "clean"]


def test_callback_exceptions_are_logged_and_ignored(instance, caplog):
    def boom(*args):
        raise RuntimeError("callback failure")

    with FluxExecutor() as ex:
        fut = ex.submit(command("true"))
        fut.add_event_callback("submit", boom).add_jobid_callback(boom)
        assert fut.result(timeout=HANG) == 0
        assert ex.submit(command("true")).result(timeout=HANG) == 0
    assert "callback failure" in caplog.text


def test_every_event_once_over_1000_jobs(instance, h):
    njobs = 1000
    jobspec = simulated()
    lock = threading.Lock()
    seen = {}

    def record(fut, event):
        with lock:
            seen.setdefault(fut, []).append(event)

    with FluxExecutor() as ex:
        futs = []
        foreign = []
        for i in range(njobs):
            fut = ex.submit(jobspec)
            for name in FluxExecutor.EVENTS:
                fut.add_event_callback(name, record)
            futs.append(fut)
            if i % 100 == 0:  # other clients' jobs show up in the journal too
                foreign.append(flux.job.submit_async(h, jobspec))
        foreign = [f.get_id() for f in foreign]
        cf.wait(futs, timeout=HANG)
        for jobid in foreign:
            flux.job.event_wait(h, jobid, "clean")
    # events of jobs that were never ours were not kept
    assert ex._threads[0]._buffer == {}
    assert all(f.done() and f.result() == 0 for f in futs)
    for fut in futs:
        events = sorted(seen[fut], key=lambda e: e.timestamp)
        assert [e.name for e in events] == EXPECTED, fut.jobid()
    for fut in futs[:3] + futs[-3:]:
        log = [e for e in flux.job.event_watch(h, fut.jobid())
               if e.name in FluxExecutor.EVENTS]
        assert sorted(seen[fut], key=lambda e: e.timestamp) == log


# -- cancel ------------------------------------------------------------------------------------------
def test_cancel_queued_futures(instance, h):
    entered = threading.Event()
    gate = threading.Event()

    def hold(fut, event):
        # runs in the executor thread: block it so that later futures stay queued
        entered.set()
        assert gate.wait(HANG)

    with FluxExecutor() as ex:
        holder = ex.submit(simulated("1h"))
        holder.add_event_callback("exception", hold)
        flux.job.cancel(h, holder.jobid(timeout=HANG))
        assert entered.wait(HANG)
        queued = [ex.submit(command("true")) for _ in range(4)]
        assert not any(f.running() or f.done() for f in queued)
        assert queued[0].cancel() is True
        assert queued[0].cancel() is True  # still cancelled
        assert queued[0].cancelled()
        with pytest.raises(cf.CancelledError):
            queued[0].jobid()
        with pytest.raises(cf.CancelledError):
            queued[0].result()
        ids = []
        queued[1].add_jobid_callback(lambda f: ids.append(f.cancelled()))
        ex.shutdown(wait=False, cancel_futures=True)
        assert all(f.cancelled() for f in queued)
        assert ids == [True]
        gate.set()
    exc = holder.exception()
    assert isinstance(exc, JobException) and exc.type == "cancel"
    assert all(f.cancelled() for f in queued)
    done, not_done = cf.wait(queued, timeout=0)
    assert not not_done


def test_wait_inside_callback_raises(instance, h):
    errors = []
    done = threading.Event()
    with FluxExecutor() as ex:
        long = ex.submit(simulated("1h"))
        other = ex.submit(simulated("1h"))
        other.jobid(timeout=HANG)

        def cb(fut, event):
            for call in (other.result, other.exception):
                try:
                    call()
                except RuntimeError as exc:
                    errors.append(str(exc))
            done.set()

        long.add_event_callback("exception", cb)
        flux.job.cancel(h, long.jobid(timeout=HANG))
        assert done.wait(HANG)
        flux.job.cancel(h, other.jobid())
    assert errors == ["Cannot wait for future from inside callback"] * 2


def test_cancel_running_future_fails(instance, h):
    started = threading.Event()
    with FluxExecutor() as ex:
        fut = ex.submit(command("sleep", "60"))
        fut.add_event_callback("start", lambda f, e: started.set())
        assert started.wait(HANG)
        assert fut.cancel() is False
        assert not fut.cancelled()
        flux.job.cancel(h, fut.jobid())
        exc = fut.exception(timeout=HANG)
        assert isinstance(exc, JobException)
        assert exc.type == "cancel"
        with pytest.raises(JobException):
            fut.result()
    names = []
    fut.add_event_callback("finish", lambda f, e: names.append(e.name))
    fut.add_event_callback("clean", lambda f, e: names.append(e.name))
    assert names == ["finish", "clean"]  # watching continued after completion


def test_cancel_job_queued_in_scheduler(start_instance):
    with start_instance("resource.cores=1") as inst:
        h = inst.handle()
        with FluxExecutor(handle_args=(inst.uri,)) as ex:
            running = ex.submit(simulated("1h"))
            started = threading.Event()
            running.add_event_callback("start", lambda f, e: started.set())
            assert started.wait(HANG)
            waiting = ex.submit(simulated("0s"))
            flux.job.event_wait(h, waiting.jobid(timeout=HANG), "priority")
            flux.job.cancel(h, waiting.jobid(), "not needed")
            exc = waiting.exception(timeout=HANG)
            assert isinstance(exc, JobException) and exc.type == "cancel"
            assert exc.note == "not needed"
            flux.job.cancel(h, running.jobid())
        names = []
        for name in FluxExecutor.EVENTS:
            waiting.add_event_callback(name, lambda f, e: names.append((e.timestamp, e.name)))
        assert [n for _, n in sorted(names)] == [
            "submit", "depend", "priority", "exception", "clean"]


# -- attach ------------------------------------------------------------------------------------------
def test_attach_finished_job(instance, h):
    jobid = flux.job.submit(h, command("sh", "-c", "exit 5"))
    flux.job.result(h, jobid)
    with FluxExecutor() as ex:
        fut = ex.attach(jobid)
        assert fut.result(timeout=HANG) == 5
        assert fut.jobid() == jobid
        names = []
        for name in FluxExecutor.EVENTS:
            fut.add_event_callback(name, lambda f, e: names.append((e.timestamp, e.name)))
    assert [n for _, n in sorted(names)] == EXPECTED


def test_attach_running_job_then_cancel(instance, h):
    jobid = flux.job.submit(h, simulated("1h"))
    flux.job.event_wait(h, jobid, "start")
    seen = []
    lock = threading.Lock()
    with FluxExecutor() as ex:
        fut = ex.attach(str(jobid))
        assert fut.jobid(timeout=HANG) == jobid
        started = threading.Event()
        for name in FluxExecutor.EVENTS:
            fut.add_event_callback(name, lambda f, e: (lock.acquire(), seen.append(e),
                                                       lock.release()))
        fut.add_event_callback("start", lambda f, e: started.set())
        assert started.wait(HANG)
        assert not fut.done()
        flux.job.cancel(h, jobid)
        exc = fut.exception(timeout=HANG)
        assert isinstance(exc, JobException) and exc.type == "cancel"
    log = [e for e in flux.job.event_watch(h, jobid) if e.name in FluxExecutor.EVENTS]
    assert sorted(seen, key=lambda e: e.timestamp) == log  # nothing missed or doubled


def test_attach_unknown_job(instance):
    with FluxExecutor() as ex:
        fut = ex.attach(123456789)
        exc = fut.exception(timeout=HANG)
        assert isinstance(exc, ValueError)
        assert "does not match any job" in str(exc)
        bad = ex.attach("not-a-jobid")
        assert bad.exception(timeout=HANG) is not None


def test_submit_and_attach_same_job(instance):
    with FluxExecutor(threads=2) as ex:
        fut = ex.submit(command("true"))
        twin = ex.attach(fut.jobid(timeout=HANG))
        assert fut.result(timeout=HANG) == twin.result(timeout=HANG) == 0


# -- a dying instance ------------------------------------------------------------------------------------
def test_instance_killed_under_running_executor(start_instance):
    with start_instance("resource.cores=2") as inst:
        h = inst.handle()
        ex = FluxExecutor(threads=2, handle_args=(inst.uri,))
        finished = ex.submit(simulated("0s"))
        assert finished.result(timeout=HANG) == 0
        running = [ex.submit(simulated("1h")) for _ in range(2)]
        started = threading.Semaphore(0)
        for fut in running:
            fut.add_event_callback("start", lambda f, e: started.release())
        for _ in running:
            assert started.acquire(timeout=HANG)
        pending = ex.submit(simulated("1h"))  # no core left: stays queued
        flux.job.event_wait(h, pending.jobid(timeout=HANG), "priority")
        inst.proc.kill()
        inst.proc.wait()
        done, not_done = cf.wait(running + [pending], timeout=HANG)
        assert not not_done, "futures hang after the instance died"
        for fut in running + [pending]:
            assert isinstance(fut.exception(), OSError)
        with pytest.raises(RuntimeError, match="Executor is broken"):
            ex.submit(simulated())
        with pytest.raises(RuntimeError, match="Executor is broken"):
            ex.attach(running[0].jobid())
        ex.shutdown(wait=True)  # returns: threads have exited
        assert not any(t.is_alive() for t in ex._threads)
        assert finished.result() == 0


def test_no_instance_raises_at_construction(tmp_path):
    with pytest.raises(OSError, match="Unable to connect to Flux"):
        FluxExecutor(handle_args=(f"local://{tmp_path}/nothing",))


def test_jobid_timeout(start_instance):
    # a future that cannot get an id yet: the executor thread is held
    with start_instance() as inst:
        h = inst.handle()
        entered, gate = threading.Event(), threading.Event()
        with FluxExecutor(handle_args=(inst.uri,)) as ex:
            holder = ex.submit(simulated("1h"))
            holder.add_event_callback(
                "exception", lambda f, e: (entered.set(), gate.wait(HANG)))
            flux.job.cancel(h, holder.jobid(timeout=HANG))
            assert entered.wait(HANG)
            fut = ex.submit(simulated())
            with pytest.raises(cf.TimeoutError):
                fut.jobid(timeout=0)
            with pytest.raises(cf.TimeoutError):
                fut.result(timeout=0)
            gate.set()
            assert fut.result(timeout=HANG) == 0


# -- the journal buffer (sans I/O) ------------------------------------------------------------------------
class _FakeJournal:
    def __init__(self, rsp):
        self.rsp = rsp

    def get(self):
        return self.rsp

    def reset(self):
        pass


class _Recorder:
    def __init__(self):
        self.events = []

    def _record_event(self, event):
        self.events.append(event.name)

    def done(self):
        return True


def test_journal_buffer_is_bounded():
    """Events of unknown ids wait for submit responses, then are dropped."""
    import collections
    from flux.job.executor import _ExecutorThread

    t = _ExecutorThread.__new__(_ExecutorThread)
    t._broken_exc = None
    t._jobs, t._buffer, t._tick = {}, {}, 0
    t._pending = collections.OrderedDict()
    t._stop_requested = False

    def journal(*items):
        t._on_journal(_FakeJournal({"events": [
            {"id": jid, "entry": {"timestamp": 1.0, "name": name, "context": {}}}
            for jid, name in items]}))

    journal((1, "submit"))  # nothing outstanding: not ours, not kept
    assert t._buffer == {}
    t._pending[0] = [t._tick, None]  # a submission is sent at tick 1
    journal((2, "submit"), (3, "submit"))  # tick 2: may be ours
    t._pending[1] = [t._tick, None]  # another one at tick 2
    journal((2, "depend"), (4, "submit"))  # tick 3
    assert set(t._buffer) == {2, 3, 4}
    # the first submission is answered: job 3 was ours
    fut = _Recorder()
    del t._pending[0]
    t._jobs[3] = fut
    for entry in t._buffer.pop(3)[1:]:
        t._dispatch(3, fut, entry)
    t._prune_buffer()
    assert fut.events == ["submit"]
    # job 2 was first seen at tick 2, when the oldest outstanding submission
    # (sent at tick 2) could not have produced it yet: dropped; job 4 may be ours
    assert set(t._buffer) == {4}
    del t._pending[1]
    t._prune_buffer()
    assert t._buffer == {}
