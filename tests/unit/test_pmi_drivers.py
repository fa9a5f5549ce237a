"""Both PMI server drivers (asyncio, thread) over real socketpairs in this
process, with PMIClients and raw sockets in threads as the other ends."""

import asyncio
import os
import socket
import threading

import pytest
from conftest import poll

from fluxrm.pmi import AsyncioPMIServer, PMIClient, PMIError, PMIServerCore, ThreadedPMIServer
from fluxrm.pmi.wire import MAX_LINE, parse_line

KINDS = ["asyncio", "threaded"]


class Events:
    def __init__(self):
        self.aborts = []
        self.lost = []

    def core(self, size, **kw):
        return PMIServerCore(size, "kvs", on_abort=lambda *a: self.aborts.append(a),
                             on_lost=lambda *a: self.lost.append(a), **kw)


def serve(kind, core, nranks, body):
    """Serve ``core`` with driver ``kind``; run ``body(server, fds)`` (the
    children's ends of ``nranks`` socketpairs) in a thread; return its result."""
    if kind == "threaded":
        server = ThreadedPMIServer(core)
        server.start()
        fds = [server.socketpair_for(rank) for rank in range(nranks)]
        try:
            return body(server, fds)
        finally:
            server.close()
            _close_all(fds)

    async def main():
        server = AsyncioPMIServer(core)
        fds = [server.socketpair_for(rank) for rank in range(nranks)]
        try:
            return await asyncio.wait_for(asyncio.to_thread(body, server, fds), 60)
        finally:
            server.close()
            _close_all(fds)
    return asyncio.run(main())


def _close_all(fds):
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass  # the client closed it


def client(fd, rank, size, timeout=30):
    return PMIClient(fd, rank, size, timeout=timeout)


def in_threads(func, n):
    """Run ``func(i)`` for i in range(n) in threads; results, or the first error."""
    results = [None] * n
    errors = []

    def run(i):
        try:
            results[i] = func(i)
        except BaseException as exc:
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), "a PMI client thread hung"
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [1, 4])
def test_cards_exchange(kind, size):
    ev = Events()
    core = ev.core(size)

    def body(server, fds):
        def rank_main(rank):
            pmi = client(fds[rank], rank, size)
            pmi.init()
            pmi.put(str(rank), f'{{"rank": {rank}, "uri": "ipc:///tmp/r {rank}"}}')
            pmi.barrier()
            cards = [pmi.get(str(r)) for r in range(size)]
            pmi.barrier()
            pmi.finalize()
            return cards
        results = in_threads(rank_main, size)
        poll(lambda: server.ranks == [], "the server to see every client close")
        return results
    results = serve(kind, core, size, body)
    expect = [f'{{"rank": {r}, "uri": "ipc:///tmp/r {r}"}}' for r in range(size)]
    assert results == [expect] * size
    assert core.finished and ev.lost == [] and ev.aborts == []


@pytest.mark.parametrize("kind", KINDS)
def test_garbage_and_overlong_lines_get_errors_and_the_server_goes_on(kind):
    ev = Events()

    def body(server, fds):
        sock = socket.socket(fileno=fds[0])
        fds[0] = -1
        with sock, sock.makefile("rb") as f:
            sock.sendall(b"\x00\xffgarbage\n")
            assert parse_line(f.readline().decode())["cmd"] == "error"
            sock.sendall(b"cmd=put kvsname=kvs key=a value=" + b"v" * (3 * MAX_LINE))
            sock.sendall(b"v" * 10000 + b"\ncmd=get_maxes\n")
            reply = parse_line(f.readline().decode())
            assert reply["cmd"] == "put_result" and "longer than" in reply["msg"]
            assert parse_line(f.readline().decode())["cmd"] == "maxes"
        # the other rank is served as usual
        pmi = client(fds[1], 1, 2)
        pmi.init()
        with pytest.raises(PMIError, match="key 'a' not found"):
            pmi.get("a")
        poll(lambda: server.ranks == [1], "the server to see rank 0 close")
    serve(kind, ev.core(2), 2, body)
    assert [rank for rank, _ in ev.lost] == [0]


@pytest.mark.parametrize("kind", KINDS)
def test_client_that_never_reads_is_dropped(kind):
    ev = Events()
    core = ev.core(2)

    def body(server, fds):
        sock = socket.socket(fileno=fds[0])
        fds[0] = -1
        with sock:
            request = b"cmd=get_my_kvsname\n" * 1000
            try:
                for _ in range(200):  # ~2 MB of answers the server cannot send
                    sock.sendall(request)
            except OSError:
                pass  # dropped while we were still sending
            poll(lambda: ev.lost, "the server to drop the client")
        return server.ranks
    assert serve(kind, core, 2, body) == [1]
    assert ev.lost == [(0, "PMI rank 0 was dropped (over 262144 bytes of answers "
                           "left unread) before finalize")]


@pytest.mark.parametrize("kind", KINDS)
def test_dead_client_fails_the_barrier_clearly(kind):
    ev = Events()
    size = 3

    def body(server, fds):
        def rank_main(rank):
            pmi = client(fds[rank], rank, size)
            pmi.init()
            if rank == 2:
                os.close(fds[rank])  # dies before the barrier
                return None
            with pytest.raises(PMIError) as info:
                pmi.barrier()
            return str(info.value)
        return in_threads(rank_main, size)
    results = serve(kind, ev.core(size), size, body)
    assert results[:2] == ["PMI: barrier: rc=-1 (barrier can never complete: "
                           "rank 2 disconnected)"] * 2
    assert [rank for rank, _ in ev.lost] == [2]


@pytest.mark.parametrize("kind", KINDS)
def test_abort_reaches_the_owner(kind):
    ev = Events()

    def body(server, fds):
        client(fds[0], 0, 1).abort(5, "cannot bind tcp://x")
        poll(lambda: ev.aborts, "the abort")
    serve(kind, ev.core(1), 1, body)
    assert ev.aborts == [(0, 5, "cannot bind tcp://x")]
    assert ev.lost == []


def test_socketpair_for_checks_the_rank():
    server = ThreadedPMIServer(PMIServerCore(2, "kvs"))
    try:
        fd = server.socketpair_for(0)
        assert not os.get_inheritable(fd)
        os.close(fd)
        with pytest.raises(ValueError, match="already has a connection"):
            server.socketpair_for(0)
        with pytest.raises(ValueError, match="outside"):
            server.socketpair_for(2)
        assert server.ranks == [0]
    finally:
        server.close()
    assert server.ranks == []
    server.close()  # twice is fine


def test_threaded_server_may_be_closed_from_a_callback():
    holder = {}
    core = PMIServerCore(1, "kvs", on_abort=lambda *a: holder["server"].close())
    server = holder["server"] = ThreadedPMIServer(core)
    fd = server.socketpair_for(0)
    server.start()
    client(fd, 0, 1).abort(1, "bye")
    server._thread.join(timeout=30)
    assert not server._thread.is_alive()
    assert server.ranks == []


def test_threaded_server_hangs_up_if_a_callback_raises(monkeypatch):
    def broken(*args):
        raise RuntimeError("owner bug")
    caught = []
    monkeypatch.setattr(threading, "excepthook", caught.append)
    server = ThreadedPMIServer(PMIServerCore(2, "kvs", on_abort=broken))
    fds = [server.socketpair_for(rank) for rank in range(2)]
    server.start()
    try:
        client(fds[0], 0, 2).abort(1, "x")
        with pytest.raises(PMIError, match="the PMI server closed the connection"):
            client(fds[1], 1, 2).init()
        server._thread.join(timeout=30)
        assert [str(args.exc_value) for args in caught] == ["owner bug"]
    finally:
        server.close()
        os.close(fds[1])
