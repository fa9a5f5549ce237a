"""The handle, RPCs, futures and the reactor against a real broker."""

import errno
import os
import signal
import threading

import pytest

import flux
import flux.core.handle
from flux.constants import (
    FLUX_MSGTYPE_EVENT,
    FLUX_MSGTYPE_REQUEST,
    FLUX_NODEID_UPSTREAM,
    FLUX_POLLIN,
    FLUX_REACTOR_NOWAIT,
    FLUX_REACTOR_ONCE,
    FLUX_RPC_STREAMING,
)
from flux.future import Future, FutureExt, WaitAllFuture


# -- connecting ------------------------------------------------------------------------

def test_flux_is_a_factory(h):
    assert not isinstance(flux.Flux, type)
    assert isinstance(h, flux.core.handle.Flux)
    with pytest.raises(RuntimeError):
        h.close()


def test_no_instance_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FLUX_URI", f"local://{tmp_path}/nothing")
    with pytest.raises(OSError) as e:
        flux.Flux()
    assert e.value.errno == errno.ENOENT
    assert str(e.value.strerror).startswith("Unable to connect to Flux:")


def test_unsupported_scheme():
    with pytest.raises(OSError) as e:
        flux.Flux("ssh://host/path")
    assert "Unable to connect to Flux" in e.value.strerror


def test_url_argument_wins(instance, monkeypatch):
    monkeypatch.setenv("FLUX_URI", "local:///nonexistent/local")
    h = flux.Flux(instance.uri)
    assert h.attr_get("local-uri") == instance.uri
    monkeypatch.setenv("FLUX_URI", instance.uri)
    assert flux.Flux(".").attr_get("local-uri") == instance.uri
    assert flux.Flux("/").attr_get("local-uri") == instance.uri


# -- rpc ------------------------------------------------------------------------------------

def test_ping_roundtrip(h):
    rsp = h.rpc("broker.ping", {"seq": 1, "data": "☺"}).get()
    assert rsp["seq"] == 1 and rsp["data"] == "☺"
    assert rsp["userid"] == os.getuid()
    assert h.get_rank() == 0


def test_rpc_payload_types(h):
    assert h.rpc("broker.ping", '{"x": 2}').get()["x"] == 2
    assert h.rpc("broker.ping", b'{"y": 3}').get_str().startswith("{")
    with pytest.raises(OSError) as e:
        h.rpc(None)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(TypeError):
        h.rpc(42)
    with pytest.raises(TypeError):
        h.rpc("broker.ping", {"s": {1, 2}})


def test_unknown_service_is_enosys(h):
    with pytest.raises(OSError) as e:
        h.rpc("foo.bar").get()
    assert e.value.errno == errno.ENOSYS
    with pytest.raises(OSError) as e:
        h.rpc("broker.nosuchmethod").get()
    assert e.value.errno == errno.ENOSYS


def test_nodeid(h):
    assert h.rpc("broker.ping", nodeid=0).get()["route"] == "0"
    assert h.rpc("broker.ping", nodeid=FLUX_NODEID_UPSTREAM).get()
    with pytest.raises(OSError) as e:
        h.rpc("broker.ping", nodeid=5).get()
    assert e.value.errno == errno.EHOSTUNREACH


def test_attributes(h, instance):
    assert h.attr_get("local-uri") == instance.uri
    assert h.attr_get("size") == "1"
    assert int(h.attr_get("broker.pid")) == instance.proc.pid
    for name in ("rank", "rundir", "statedir", "instance-level", "hostlist"):
        assert isinstance(h.attr_get(name), str)
    with pytest.raises(FileNotFoundError):
        h.attr_get("no-such-attr")
    h.attr_set("test.attr", "42")
    assert h.attr_get("test.attr") == "42"
    h.attr_remove("test.attr")
    with pytest.raises(FileNotFoundError):
        h.attr_get("test.attr")
    with pytest.raises(OSError):
        h.attr_set("local-uri", "x")
    with pytest.raises(ValueError):
        h.attr_set("x", 1)
    assert h.conf_get() == {}
    assert h.conf_get("a.b", default=5) == 5


def test_error_string_and_wait_for(h):
    f = h.rpc("foo.bar")
    f.wait_for(10)
    assert f.is_ready()
    assert f.error_string() == os.strerror(errno.ENOSYS)


# -- a client-provided service, used for streaming and timeouts -----------------------

class EchoService:
    """Serves ``NAME.stream {n}`` (n responses then ENODATA), ``NAME.echo`` and
    ``NAME.silent`` (never answers) from a thread with its own handle."""

    def __init__(self, uri, name):
        self.name = name
        self.ready = threading.Event()
        self.h = flux.Flux(uri)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        self.ready.wait(30)

    def run(self):
        h = self.h
        h.service_register(self.name).get()

        def cb(h, w, msg, arg):
            method = msg.topic.split(".", 1)[1]
            if method == "stream":
                for i in range(msg.payload["n"]):
                    h.respond(msg, {"i": i})
                h.respond_error(msg, errno.ENODATA)
            elif method == "echo":
                h.respond(msg, msg.payload)
            elif method == "quit":
                h.respond(msg, {})
                h.reactor_stop()

        self.w = h.msg_watcher_create(cb, FLUX_MSGTYPE_REQUEST, f"{self.name}.*")
        self.w.start()
        self.ready.set()
        h.reactor_run()
        h.service_unregister(self.name).get()

    def stop(self, client):
        client.rpc(f"{self.name}.quit").get()
        self.thread.join(30)


@pytest.fixture
def echo(instance, h):
    svc = EchoService(instance.uri, "echo")
    yield svc
    svc.stop(h)


def test_service_register_errors(h, echo):
    with pytest.raises(FileExistsError):
        h.service_register("echo").get()
    with pytest.raises(FileNotFoundError):
        h.service_unregister("never-registered").get()
    assert h.service_register("mine").get() is None
    assert h.service_unregister("mine").get() is None


def test_client_service_roundtrip(h, echo):
    assert h.rpc("echo.echo", {"x": [1, 2]}).get() == {"x": [1, 2]}


def test_streaming_blocking(h, echo):
    f = h.rpc("echo.stream", {"n": 5}, flags=FLUX_RPC_STREAMING)
    got = []
    while True:
        try:
            got.append(f.get()["i"])
        except OSError as e:
            assert e.errno == errno.ENODATA
            break
        f.reset()
    assert got == [0, 1, 2, 3, 4]


def test_streaming_then(h, echo):
    got = []

    def cb(f):
        try:
            got.append(f.get()["i"])
        except OSError as e:
            got.append(e.errno)
            return
        f.reset()

    h.rpc("echo.stream", {"n": 100}, flags=FLUX_RPC_STREAMING).then(cb)
    assert h.reactor_run() >= 0
    assert got == list(range(100)) + [errno.ENODATA]


def test_then_timeout(h, echo):
    errors = []

    def cb(f):
        try:
            f.get()
        except OSError as e:
            errors.append(e.errno)
        f.stop()

    h.rpc("echo.silent").then(cb, timeout=0.05)
    h.reactor_run()
    assert errors == [errno.ETIMEDOUT]


def test_wait_for_timeout_leaves_unfulfilled(h, echo):
    f = h.rpc("echo.silent")
    with pytest.raises(TimeoutError):
        f.wait_for(0.05)
    assert not f.is_ready()
    with pytest.raises(TimeoutError):
        f.wait_for(0)


def test_then_rules(h):
    f = h.rpc("broker.ping")
    with pytest.raises(ValueError):
        f.then(None)
    f.then(lambda f: None)
    with pytest.raises(FileExistsError):
        f.then(lambda f: None)
    h.reactor_run()


def test_then_args_and_kwargs(h):
    seen = []

    def cb(f, a, b=2, c=3):
        seen.append((a, b, c))

    h.rpc("broker.ping").then(cb, 1, c=9)
    h.reactor_run()
    assert seen == [(1, 2, 9)]


def test_blocking_get_runs_no_other_callbacks(h):
    called = []
    h.rpc("broker.ping").then(lambda f: called.append(1))
    h.rpc("broker.ping").get()
    assert called == []
    h.reactor_run()
    assert called == [1]


def test_blocking_get_inside_callback(h):
    out = []

    def cb(f):
        out.append(h.rpc("broker.ping", {"inner": 1}).get()["inner"])

    h.rpc("broker.ping").then(cb)
    h.reactor_run()
    assert out == [1]


def test_many_outstanding_futures(h):
    count = [0]

    def cb(f):
        assert f.get()["i"] >= 0
        count[0] += 1

    for i in range(10000):
        h.rpc("broker.ping", {"i": i}).then(cb)
    assert h.reactor_run() == 0
    assert count[0] == 10000


def test_future_wraps_same_state(h):
    f = h.rpc("broker.ping", {"a": 1})
    g = Future(f)
    assert g.get() is None  # base class get
    assert f.get() == {"a": 1, "route": "0", "userid": os.getuid(), "rolemask": 7}
    assert g.is_ready()


def test_future_context_manager(h):
    with h.rpc("broker.ping") as f:
        assert f.get()["route"] == "0"


# -- reactor semantics --------------------------------------------------------------------

def test_callback_exception_reraised(h):
    def cb(f):
        raise ValueError("boom")

    h.rpc("broker.ping").then(cb)
    with pytest.raises(ValueError, match="boom"):
        h.reactor_run()
    # the handle is still usable
    assert h.rpc("broker.ping").get()["route"] == "0"


def test_reactor_stop_and_stop_error(h):
    def stop(handle, w, revents, arg):
        handle.reactor_stop()

    w = h.timer_watcher_create(0.01, stop, repeat=0.01).start()
    assert h.reactor_run() > 0  # the repeating timer is still active
    w.stop()

    def stop_err(handle, w, revents, arg):
        handle.reactor_stop_error()

    h.timer_watcher_create(0.01, stop_err).start()
    assert h.reactor_run() < 0


def test_reactor_runs_out_of_work(h):
    fired = []
    h.timer_watcher_create(0.01, lambda *a: fired.append(1)).start()
    assert h.reactor_run() == 0
    assert fired == [1]


def test_reactor_nowait_and_once(h):
    fired = []
    w = h.timer_watcher_create(0.0, lambda *a: fired.append(1), repeat=0.001).start()
    h.reactor_run(flags=FLUX_REACTOR_NOWAIT)
    h.reactor_run(flags=FLUX_REACTOR_ONCE)
    assert 1 <= len(fired) <= 2
    w.destroy()
    w.destroy()  # idempotent


def test_reactor_running_is_per_thread(h):
    seen = []

    def cb(*a):
        seen.append(flux.core.handle.Flux.reactor_running())

    assert not flux.core.handle.Flux.reactor_running()
    h.timer_watcher_create(0, cb).start()
    h.reactor_run()
    assert seen == [True]


def test_timer_reset_and_context_manager(h):
    fired = []
    w = h.timer_watcher_create(5.0, lambda *a: fired.append(1))
    w.reset(after=0.01)
    with w:
        h.reactor_run()
    assert fired == [1]
    with pytest.raises(OSError) as e:
        h.timer_watcher_create(-1, lambda *a: None)
    assert e.value.errno == errno.EINVAL


def test_unref_watcher_does_not_keep_reactor_alive(h):
    w = h.timer_watcher_create(3600, lambda *a: None).start()
    w.unref()
    assert h.reactor_run() == 0
    w.destroy()


def test_fd_watcher(h):
    r, wfd = os.pipe()
    got = []

    def cb(handle, watcher, fd, revents, arg):
        got.append((os.read(fd, 10), revents & FLUX_POLLIN, arg))
        watcher.stop()

    h.fd_watcher_create(r, cb, events=FLUX_POLLIN, args="x").start()
    os.write(wfd, b"hi")
    h.reactor_run()
    assert got == [(b"hi", FLUX_POLLIN, "x")]
    os.close(r)
    os.close(wfd)


def test_signal_watcher(h):
    got = []

    def cb(handle, watcher, signum, arg):
        got.append(signum)
        watcher.stop()

    h.signal_watcher_create(signal.SIGUSR1, cb).start()
    h.timer_watcher_create(0.01, lambda *a: os.kill(os.getpid(), signal.SIGUSR1)).start()
    h.reactor_run()
    assert got == [signal.SIGUSR1]
    with pytest.raises(OSError, match="invalid signal number"):
        h.signal_watcher_create(0, cb)


def test_prepare_check_idle(h):
    calls = []

    def prep(handle, w, revents, arg):
        calls.append("prepare")

    def check(handle, w, revents, arg):
        calls.append("check")

    p = h.prepare_watcher_create(prep).start()
    c = h.check_watcher_create(check).start()
    i = h.idle_watcher_create().start()
    h.timer_watcher_create(0.01, lambda handle, *a: handle.reactor_stop()).start()
    h.reactor_run()
    assert "prepare" in calls and "check" in calls
    for w in (p, c, i):
        w.destroy()


def test_watcher_survives_without_reference(h):
    import gc

    count = [0]

    def cb(handle, w, revents, arg):
        count[0] += 1
        if count[0] == 3:
            w.destroy()

    h.timer_watcher_create(0, cb, repeat=0.001).start()
    gc.collect()
    h.reactor_run()
    assert count[0] == 3


# -- events ---------------------------------------------------------------------------------

def test_events_pubsub(h, instance):
    sub = flux.Flux(instance.uri)
    assert sub.event_subscribe("test.ev") == 0
    h.event_send("test.ev.one", {"n": 1})
    h.event_send("other.ev", {"n": 2})
    h.event_send("test.ev.two", "text")
    msg = sub.event_recv()
    assert msg.topic == "test.ev.one" and msg.payload == {"n": 1}
    msg = sub.event_recv()
    assert msg.topic == "test.ev.two" and msg.payload_str == "text"
    assert sub.event_unsubscribe("test.ev") == 0
    with pytest.raises(FileNotFoundError):
        sub.event_unsubscribe("test.ev")


def test_event_msg_watcher(h, instance):
    sub = flux.Flux(instance.uri)
    sub.event_subscribe("wtest.")
    got = []

    def cb(handle, w, msg, arg):
        got.append(msg.payload["i"])
        if len(got) == 3:
            w.stop()

    sub.msg_watcher_create(cb, FLUX_MSGTYPE_EVENT, "wtest.*").start()
    for i in range(3):
        h.event_send("wtest.x", {"i": i})
    sub.reactor_run()
    assert got == [0, 1, 2]


def test_event_recv_topic_filter(h, instance):
    sub = flux.Flux(instance.uri)
    sub.event_subscribe("ft.")
    h.event_send("ft.a")
    h.event_send("ft.b")
    assert sub.event_recv("ft.b").topic == "ft.b"
    assert sub.event_recv().topic == "ft.a"


def test_loopback_handle():
    h = flux.Flux("loop://")
    assert h.get_rank() == 0
    msg = h.event_create("loop.ev", {"x": 1})
    h.send(msg)
    assert h.recv().payload == {"x": 1}


# -- FutureExt --------------------------------------------------------------------------

def test_future_ext_fulfill(h):
    def init(f):
        f.fulfill({"v": 1})

    f = FutureExt(init, flux_handle=h)
    assert f.get() == {"v": 1}
    f.reset()
    f.fulfill()
    assert f.get() is None
    f.reset()
    f.fulfill_error(errno.EPERM, "nope")
    with pytest.raises(PermissionError, match="nope"):
        f.get()


def _chained_pings(f, n):
    count = [0]
    handle = f.get_flux()

    def next_ping(rpc):
        count[0] += 1
        if count[0] == n:
            f.fulfill(rpc.get())
        else:
            handle.rpc("broker.ping", {"n": count[0]}).then(next_ping)

    handle.rpc("broker.ping", {"n": 0}).then(next_ping)


def test_future_ext_composes_with_blocking_get(h):
    f = FutureExt(_chained_pings, 5, flux_handle=h)
    assert f.get()["n"] == 4


def test_future_ext_composes_with_then(h):
    out = []
    FutureExt(_chained_pings, 5, flux_handle=h).then(lambda f: out.append(f.get()["n"]))
    h.reactor_run()
    assert out == [4]


def test_future_ext_on_other_handle_times_out(h):
    outer = h

    def init(f):
        outer.rpc("broker.ping").then(lambda r: f.fulfill(r.get()))

    f = FutureExt(init, flux_handle=h)
    with pytest.raises(TimeoutError):
        f.wait_for(0.1)


def test_wait_all(h):
    w = WaitAllFuture([h.rpc("broker.ping") for _ in range(3)])
    w.push(h.rpc("broker.ping"), "last")
    assert w.get() is None
    assert w.is_ready()


def test_missing_function(h):
    from flux.wrapper import MissingFunctionError

    with pytest.raises(MissingFunctionError):
        h.no_such_c_function(1)


def test_log_and_dmesg(h, flux_cli, instance):
    h.log(5, "hello from a test")
    h.rpc("broker.ping").get()  # ordered after the log message
    res = flux_cli("dmesg", env=instance.env())
    assert res.returncode == 0
    assert "hello from a test" in res.stdout


def test_provider_gone_answers_inflight_requests(instance, h):
    import subprocess
    import sys

    code = ("import flux, sys\n"
            "from flux.constants import FLUX_MSGTYPE_REQUEST\n"
            "h = flux.Flux()\n"
            "h.service_register('mute').get()\n"
            "def cb(h, w, msg, arg):\n"
            "    import os; os._exit(0)\n"  # die with the request unanswered
            "h.msg_watcher_create(cb, FLUX_MSGTYPE_REQUEST, 'mute.*').start()\n"
            "print('ready', flush=True)\n"
            "h.reactor_run()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env=instance.env(),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    with pytest.raises(OSError) as e:
        h.rpc("mute.hello").get()
    assert e.value.errno == errno.ENOSYS
    proc.wait(30)
    with pytest.raises(OSError) as e:
        h.rpc("mute.hello").get()
    assert e.value.errno == errno.ENOSYS
