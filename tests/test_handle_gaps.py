"""Handle and future gaps (spec 31) and "a call sends at once" (issue 16)."""

import errno
import threading
import time

import pytest

import flux
import flux.job
from flux.constants import FLUX_MSGTYPE_REQUEST
from flux.future import Future
from flux.job import JobID, JobspecV1


def wait_event(h, jobid, name, timeout=30.0):
    """The first event ``name`` of the job's eventlog, waiting at most
    ``timeout`` seconds (OSError ETIMEDOUT after that)."""
    deadline = time.monotonic() + timeout
    watch = flux.job.event_watch_async(h, jobid)
    try:
        while True:
            watch.wait_for(max(0.0, deadline - time.monotonic()))
            event = watch.get_event()
            assert event is not None, f"eventlog ended without {name}"
            if event.name == name:
                return event
    finally:
        watch.cancel(stop=True)


def _sleep_job(h):
    jobid = flux.job.submit(h, JobspecV1.from_command(["sleep", "300"]),
                            waitable=True)
    wait_event(h, jobid, "start")
    return jobid


# -- a call sends at once ------------------------------------------------------------------

def test_fire_and_forget_cancel_from_a_thread_without_reactor(h):
    jobid = _sleep_job(h)
    sent = threading.Event()
    release = threading.Event()
    kept = []

    def fire():
        th = flux.Flux()
        # the future is kept alive (and the handle) but never waited for,
        # and no reactor ever runs in this thread
        kept.append((th, flux.job.cancel_async(th, jobid)))
        sent.set()
        release.wait(60)

    thread = threading.Thread(target=fire)
    thread.start()
    try:
        assert sent.wait(30)
        event = wait_event(h, jobid, "exception")
        assert event.context["type"] == "cancel"
    finally:
        release.set()
        thread.join(30)
    flux.job.wait(h, jobid)


def test_dropped_future_is_sent(h):
    jobid = _sleep_job(h)
    flux.job.cancel_async(flux.Flux(), jobid)  # handle and future dropped
    assert wait_event(h, jobid, "exception")
    flux.job.wait(h, jobid)


def test_send_inside_callback_that_stops_reactor_is_sent(h):
    jobid = _sleep_job(h)
    h2 = flux.Flux()

    def ping_cb(f):
        flux.job.cancel_async(h2, jobid)
        h2.reactor_stop()

    h2.rpc("broker.ping", {}).then(ping_cb)
    h2.reactor_run()
    # h2 is kept but no reactor runs on it any more
    assert wait_event(h, jobid, "exception")
    flux.job.wait(h, jobid)


def test_fire_and_forget_then_exit_is_sent(h):
    """A script that sends and exits at once: what is pending is written
    before the process ends."""
    import subprocess
    import sys

    jobid = _sleep_job(h)
    script = ("import flux, flux.job, sys; "
              "flux.job.cancel_async(flux.Flux(), int(sys.argv[1]))")
    proc = subprocess.run([sys.executable, "-c", script, str(int(jobid))],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert wait_event(h, jobid, "exception")
    flux.job.wait(h, jobid)


def test_a_loop_s_sends_are_written_together(h):
    """Outside a reactor, a burst of sends leaves in few writes, not one
    system call per message (flux.core.flusher)."""
    writes = []
    conn = h._conn
    real_send = conn.sock.send

    class CountingSocket:
        def __getattr__(self, name):
            return getattr(real_sock, name)

        def send(self, data, *args):
            writes.append(len(data))
            return real_send(data, *args)

    real_sock = conn.sock
    conn.sock = CountingSocket()
    try:
        futures = [h.rpc("broker.ping", {}) for _ in range(200)]
        for f in futures:
            f.get()
    finally:
        conn.sock = real_sock
    assert 1 <= len(writes) < 100, len(writes)


# -- payloads ----------------------------------------------------------------------------------

class ProbeService:
    """``probe.show`` answers what it received (``raw``: the payload text or
    None); ``probe.empty`` answers with no payload; ``probe.quit`` stops."""

    def __init__(self, uri):
        self.ready = threading.Event()
        self.h = flux.Flux(uri)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        assert self.ready.wait(30)

    def run(self):
        h = self.h
        h.service_register("probe").get()

        def cb(h, w, msg, arg):
            method = msg.topic.split(".", 1)[1]
            if method == "show":
                h.respond(msg, {"raw": msg.payload_str})
            elif method == "empty":
                h.respond(msg, None)
            elif method == "quit":
                h.respond(msg, {})
                h.reactor_stop()

        w = h.msg_watcher_create(cb, FLUX_MSGTYPE_REQUEST, "probe.*")
        w.start()
        self.ready.set()
        h.reactor_run()
        h.service_unregister("probe").get()

    def stop(self, client):
        client.rpc("probe.quit").get()
        self.thread.join(30)


@pytest.fixture
def probe(instance, h):
    svc = ProbeService(instance.uri)
    yield svc
    svc.stop(h)


def test_payload_none_sends_no_payload(h, probe):
    assert h.rpc("probe.show").get() == {"raw": None}
    assert h.rpc("probe.show", None).get() == {"raw": None}
    assert h.rpc("probe.show", "null").get() == {"raw": "null"}
    assert h.rpc("probe.show", {"a": 1}).get()["raw"].replace(" ", "") == '{"a":1}'


def test_empty_response_gets_none(h, probe):
    f = h.rpc("probe.empty")
    assert f.get() is None
    assert f.get_str() is None
    assert h.attr_set("probe-gaps", "1") is None  # attr.set answers {}: None too


# -- bare futures, Future(other) ------------------------------------------------------------

def test_bare_future_fulfilled_by_hand(h):
    f = Future(h.future_create(None, None))
    assert not f.is_ready()
    with pytest.raises(OSError) as e:
        f.wait_for(0)
    assert e.value.errno == errno.ETIMEDOUT
    f.pimpl.fulfill(None, None)
    assert f.is_ready()
    assert f.wait_for(0) is f
    assert f.get() is None


def test_bare_future_fulfilled_with_an_error(h):
    f = Future(h.future_create(None, None))
    f.pimpl.fulfill_error(errno.EPERM, "not yours")
    with pytest.raises(OSError) as e:
        f.get()
    assert e.value.errno == errno.EPERM and e.value.strerror == "not yours"


def test_future_of_a_deleted_enosys_rpc(h):
    other = h.rpc("no-such-service.method")
    f = Future(other)
    del other
    with pytest.raises(OSError) as e:
        f.get()
    assert e.value.errno == errno.ENOSYS
    assert f.is_ready()


# -- JobID edge cases --------------------------------------------------------------------------

def test_jobid_minus_one():
    j = JobID(-1)
    assert int(j) == -1
    for show in (str, repr, lambda x: x.f58, lambda x: x.dec, lambda x: x.dothex,
                 lambda x: x.encode("hex"), lambda x: x.words, lambda x: x.emoji):
        with pytest.raises(OverflowError):
            show(j)
    with pytest.raises(ValueError, match="^-1 is not a valid Flux jobid$"):
        JobID(JobID(-1))


def test_jobid_any_and_copies():
    from flux.constants import FLUX_JOBID_ANY

    assert JobID(FLUX_JOBID_ANY).f58plain == "fjpXCZedGfVQ"
    j = JobID("ƒuzzybunny")
    copy = JobID(j)
    assert copy == j == 6787342413402046 and copy.orig == "ƒuzzybunny"
    assert repr(copy) == "JobID(6787342413402046)"
