"""Hostile bytes on the wire, against a real broker and a fake one.

Raw socket clients speak the msgpack stream by hand (``RawClient``): each
malformed field of a message is refused on its own (an EPROTO answer, or
dropped), and the broker keeps serving that connection and the others.
Size limits, a client that never reads, the broker killed under a client in
``reactor_run()``, and forged responses from a fake broker to the client
library are covered here too.
"""

import contextlib
import errno
import os
import signal
import socket
import threading

import msgpack
import pytest

import flux
import flux.job
from flux.constants import (
    FLUX_MSGTYPE_CONTROL,
    FLUX_MSGTYPE_REQUEST,
    FLUX_MSGTYPE_RESPONSE,
    FLUX_NODEID_ANY,
    FLUX_RPC_STREAMING,
)
from flux.message import MAX_INFLIGHT, MAX_MESSAGE, Decoder, Message

from conftest import _start_instance

TIMEOUT = 20  # seconds any single socket read may block before the test fails
U32 = 0xFFFFFFFF


@pytest.fixture(scope="module")
def inst():
    """A private instance: these tests attack it."""
    with _start_instance() as inst:
        yield inst


def fields(topic="broker.ping", payload=None, matchtag=1, mtype=FLUX_MSGTYPE_REQUEST,
           flags=0, **over):
    """A well-formed 13-field request array; ``over`` replaces fields by name."""
    f = [mtype, flags, topic, matchtag, FLUX_NODEID_ANY, U32, 0, 0, None,
         None, payload, None, 0]
    for name, value in over.items():
        f[FIELD[name]] = value
    return f


FIELD = {"type": 0, "flags": 1, "topic": 2, "matchtag": 3, "nodeid": 4, "userid": 5,
         "rolemask": 6, "errnum": 7, "errstr": 8, "raw": 9, "obj": 10, "route": 11,
         "seq": 12}


class RawClient:
    """A client socket that sends hand-built msgpack and decodes what comes back."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(path)
        self.decoder = Decoder(1 << 30, 1 << 30)
        self.pending = []
        self.eof = False
        hello = self.recv()
        assert hello.type == FLUX_MSGTYPE_CONTROL and not hello.errnum

    def send(self, f):
        self.sock.sendall(f if isinstance(f, bytes) else msgpack.packb(f))

    def _read(self):
        data = self.sock.recv(1 << 20)  # the socket timeout bounds this
        if not data:
            self.eof = True
            return
        self.pending.extend(self.decoder.feed(data))
        assert not self.decoder.rejected, "the broker sent a malformed message"

    def recv(self):
        """The next message; None at end of file."""
        while not self.pending and not self.eof:
            self._read()
        return self.pending.pop(0) if self.pending else None

    def until_eof(self):
        out = []
        while True:
            msg = self.recv()
            if msg is None:
                return out
            out.append(msg)

    def ping(self, tag):
        """A ping on this connection is answered (the connection is alive)."""
        self.send(fields(matchtag=tag, payload={"tag": tag}))
        rsp = self.recv()
        assert rsp is not None and rsp.matchtag == tag and not rsp.errnum, rsp
        return rsp

    def close(self):
        self.sock.close()


@contextlib.contextmanager
def raw_client(inst):
    c = RawClient(os.path.join(inst.rundir, "local"))
    try:
        yield c
    finally:
        c.close()


def other_client_ok(inst):
    """Another connection still gets answers: a ping and a job submission."""
    h = inst.handle()
    assert h.rpc("broker.ping").get()["route"] == "0"
    jobid = flux.job.submit(h, flux.job.JobspecV1.from_command(["true"]))
    assert jobid > 0
    assert inst.proc.poll() is None


def dmesg(h):
    f = h.rpc("log.dmesg", {}, flags=FLUX_RPC_STREAMING)
    out = []
    while True:
        try:
            out.append(f.get()["message"])
        except OSError as e:
            assert e.errno == errno.ENODATA
            return out
        f.reset()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


# -- each malformed field, refused on its own -----------------------------------------

ANSWERED = [  # (field, bad value, word expected in the error)
    ("flags", "x", "flags"), ("flags", 1 << 10, "flags"), ("flags", -1, "flags"),
    ("flags", True, "flags"),
    ("topic", 42, "topic"), ("topic", ["broker.ping"], "topic"),
    ("topic", "x" * 5000, "topic"), ("topic", b"broker.ping", "topic"),
    ("nodeid", -1, "nodeid"), ("nodeid", 1 << 32, "nodeid"), ("nodeid", "0", "nodeid"),
    ("userid", "root", "userid"), ("userid", 1 << 40, "userid"),
    ("rolemask", 1.5, "rolemask"), ("rolemask", None, "rolemask"),
    ("errnum", 1 << 31, "errnum"), ("errnum", "EPERM", "errnum"),
    ("errstr", 5, "errstr"), ("errstr", b"bytes", "errstr"),
    ("raw", "text", "raw"), ("raw", 5, "raw"), ("raw", [b"x"], "raw"),
    ("route", "c1", "route"), ("route", 7, "route"), ("route", [1], "route"),
    ("route", ["x" * 300], "route"), ("route", ["c"] * 40, "route"),
    ("seq", -1, "seq"), ("seq", 1 << 63, "seq"), ("seq", None, "seq"),
]


@pytest.mark.parametrize("name,value,word", ANSWERED,
                         ids=[f"{n}={v!r}"[:30] for n, v, _ in ANSWERED])
def test_bad_field_gets_eproto(inst, name, value, word):
    with raw_client(inst) as c:
        c.send(fields(matchtag=7, **{name: value}))
        rsp = c.recv()
        assert rsp.type == FLUX_MSGTYPE_RESPONSE and rsp.matchtag == 7
        assert rsp.errnum == errno.EPROTO
        assert word in rsp.errstr and "malformed message" in rsp.errstr
        c.ping(8)  # the same connection is still served
    assert inst.handle().rpc("broker.ping").get()["route"] == "0"


def test_raw_and_object_payload_both_set(inst):
    with raw_client(inst) as c:
        c.send(fields(matchtag=3, raw=b"{}", obj={}))
        rsp = c.recv()
        assert rsp.errnum == errno.EPROTO and "both" in rsp.errstr
        c.ping(4)


DROPPED = [  # nobody to answer: no usable matchtag, or not a request
    ("matchtag", "7"), ("matchtag", [7]), ("matchtag", -7), ("matchtag", 1 << 32),
    ("matchtag", 0), ("type", "1"), ("type", 3), ("type", True), ("type", None),
]


@pytest.mark.parametrize("name,value", DROPPED,
                         ids=[f"{n}={v!r}" for n, v in DROPPED])
def test_unanswerable_bad_message_is_dropped(inst, name, value):
    with raw_client(inst) as c:
        bad = fields(matchtag=7, route=5)
        bad[FIELD[name]] = value
        c.send(bad)
        # the next message on the connection is the answer to the next ping
        c.ping(9)
    assert inst.handle().rpc("broker.ping").get()["route"] == "0"


def test_bad_messages_mixed_in_one_read(inst):
    """Bad and good messages in one write: each good one is answered."""
    with raw_client(inst) as c:
        stream = b"".join(msgpack.packb(f) for f in [
            fields(matchtag=1, payload={"i": 1}),
            fields(matchtag=2, route=5),
            fields(matchtag=3, payload={"i": 3}),
            fields(matchtag=[4]),
            fields(matchtag=5, flags=b"x"),
            fields(matchtag=6, payload={"i": 6}),
        ])
        c.send(stream)
        got = {}
        for _ in range(5):
            rsp = c.recv()
            got[rsp.matchtag] = rsp.errnum
        assert got == {1: 0, 2: errno.EPROTO, 3: 0, 5: errno.EPROTO, 6: 0}
        c.ping(10)
    h = inst.handle()
    assert any("refused" in m and "malformed" in m for m in dmesg(h))


def test_bad_submit_mixed_with_honest_submissions(inst):
    """A wrong-typed field in job-ingest.submit, in the middle of honest
    submissions from other clients: the honest ones are all answered."""
    jobspec = flux.job.JobspecV1.from_command(["true"])
    handles = [inst.handle() for _ in range(3)]
    payload = {"J": jobspec.dumps(), "urgency": 16, "flags": 0}
    with raw_client(inst) as c:
        futures = [flux.job.submit_async(h, jobspec) for h in handles for _ in range(5)]
        for h in handles:
            h._conn.flush()
        c.send(b"".join(msgpack.packb(f) for f in [
            fields("job-ingest.submit", payload, matchtag=1, route=5),
            fields("job-ingest.submit", payload, matchtag=2, flags=b"\x04"),
            fields("job-ingest.submit", payload, matchtag=3, userid=-1),
        ]))
        futures += [flux.job.submit_async(h, jobspec) for h in handles for _ in range(5)]
        answers = [c.recv() for _ in range(3)]
        assert sorted(r.matchtag for r in answers) == [1, 2, 3]
        assert all(r.errnum == errno.EPROTO for r in answers)
        ids = [f.get_id() for f in futures]
        assert len(set(ids)) == 30
        c.ping(4)
    other_client_ok(inst)


def test_provider_malformed_response_reaches_requester_as_eproto(inst):
    """A service provider answering with a malformed field: its requester
    gets EPROTO instead of waiting forever."""
    with raw_client(inst) as provider:
        provider.send(fields("service.add", {"service": "rawsvc"}, matchtag=1))
        assert provider.recv().errnum == 0
        h = inst.handle()
        f = h.rpc("rawsvc.hello", {})
        h._conn.flush()
        req = provider.recv()
        assert req.topic == "rawsvc.hello" and req.route
        provider.send([FLUX_MSGTYPE_RESPONSE, 0, req.topic, req.matchtag, 0, 0, 0, 0,
                       5, None, {}, req.route, 0])  # errstr 5: malformed
        with pytest.raises(OSError) as e:
            f.get()
        assert e.value.errno == errno.EPROTO and "malformed response" in e.value.strerror
        provider.ping(2)
        # a request whose route could not grow by one more hop is refused
        with raw_client(inst) as c:
            c.send(fields("rawsvc.hello", {}, matchtag=3, route=["x"] * 32))
            rsp = c.recv()
            assert rsp.matchtag == 3 and rsp.errnum == errno.EPROTO
            assert "route too long" in rsp.errstr


# -- deep nesting and bad JSON ------------------------------------------------------------


def test_deep_json_payload_is_eproto(inst):
    h = inst.handle()
    for text in ("[" * 100000 + "]" * 100000, "{not json"):
        with pytest.raises(OSError) as e:
            h.rpc("broker.ping", text).get()
        assert e.value.errno == errno.EPROTO
        assert "internal error" not in e.value.strerror
    assert h.rpc("broker.ping").get()["route"] == "0"


def test_deep_msgpack_nesting_is_refused_clearly(inst):
    """Nesting past msgpack's limit loses the framing: one clear CONTROL
    error, then the broker hangs up on that client only."""
    deep = b"\x91" * 5000 + b"\xc0"  # [[[...nil...]]]
    with raw_client(inst) as c:
        f = msgpack.packb(fields(matchtag=1, obj=None))
        c.send(f[:-3] + deep + f[-2:])  # the object payload, replaced
        msgs = c.until_eof()
        assert [m.type for m in msgs] == [FLUX_MSGTYPE_CONTROL]
        assert msgs[0].errnum == errno.EPROTO and "nested too deeply" in msgs[0].errstr
    other_client_ok(inst)


# -- sizes -------------------------------------------------------------------------------


def _send_in_thread(sock, data):
    """sendall() from a thread, as the broker may hang up before it is done."""
    def run():
        with contextlib.suppress(OSError):
            sock.sendall(data)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_oversized_message_is_refused(inst):
    before = rss_kib(inst.proc.pid)
    with raw_client(inst) as c:
        big = msgpack.packb(fields(matchtag=1, raw=b"x" * (MAX_MESSAGE + 1)))
        t = _send_in_thread(c.sock, big)
        msgs = c.until_eof()
        t.join(TIMEOUT)
        assert not t.is_alive()
        assert [m.type for m in msgs] == [FLUX_MSGTYPE_CONTROL]
        assert msgs[0].errnum == errno.EMSGSIZE and "too large" in msgs[0].errstr
    h = inst.handle()
    assert any("too large" in m and "dropping the connection" in m for m in dmesg(h))
    other_client_ok(inst)
    # the buffered bytes are released with the connection
    assert rss_kib(inst.proc.pid) < before + 32 * 1024


def test_in_flight_bytes_are_bounded(inst):
    """A message announcing 1 GiB is refused once the limit is buffered, not
    after the broker has taken it all in."""
    before = rss_kib(inst.proc.pid)
    with raw_client(inst) as c:
        header = msgpack.packb(fields(matchtag=1, raw=b""))[:-4]
        header = header[:-1] + b"\xc6" + (1 << 30).to_bytes(4, "big")  # bin32, 1 GiB
        t = _send_in_thread(c.sock, header + b"y" * (MAX_INFLIGHT + (8 << 20)))
        msgs = c.until_eof()
        t.join(TIMEOUT)
        assert msgs and msgs[-1].errnum == errno.EMSGSIZE
    other_client_ok(inst)
    assert rss_kib(inst.proc.pid) < before + 32 * 1024


def test_large_honest_message_is_accepted(inst):
    h = inst.handle()
    data = "z" * (8 << 20)
    assert h.rpc("broker.ping", {"data": data}).get()["data"] == data


def test_client_refuses_to_send_an_oversized_message(inst):
    h = inst.handle()
    with pytest.raises(OSError) as e:
        h.rpc("broker.ping", b"x" * (MAX_MESSAGE + 1))
    assert e.value.errno == errno.EMSGSIZE
    assert h.rpc("broker.ping").get()["route"] == "0"  # the connection lives on


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_client_that_does_not_read_is_paused():
    """96 MiB of pings with large payloads, answers unread: the broker stops
    reading that client once its output backs up, rather than holding 96 MiB
    of answers; others are served meanwhile, and every answer comes."""
    n, size = 1536, 64 << 10
    with _start_instance() as inst, raw_client(inst) as c:
        before = peak_rss_kib(inst.proc.pid)
        stream = b"".join(msgpack.packb(fields(matchtag=i + 1, payload={"d": "p" * size}))
                          for i in range(n))
        t = _send_in_thread(c.sock, stream)
        t.join(2)  # an unpaused broker takes it all in meanwhile
        assert t.is_alive(), "the broker read everything without its answers being read"
        other_client_ok(inst)
        for i in range(n):
            rsp = c.recv()
            assert rsp.matchtag == i + 1 and not rsp.errnum
        t.join(TIMEOUT)
        assert not t.is_alive()
        assert peak_rss_kib(inst.proc.pid) < before + 48 * 1024


def test_client_that_never_reads_events_is_dropped():
    """Events pile up for a subscriber that never reads: past the output
    limit the broker drops it, with a log line, and serves the others."""
    with _start_instance("connector.out-limit=1048576") as inst, \
            raw_client(inst) as c:
        c.send(fields("event.subscribe", {"topic": "flood"}, matchtag=1))
        assert c.recv().errnum == 0
        h = inst.handle()
        for _ in range(200):  # 12.5 MiB of events, far past the limit
            h.rpc("event.pub", {"topic": "flood", "payload": {"d": "e" * 65536}}).get()
        assert any("output unread; dropping the connection" in m for m in dmesg(h))
        with contextlib.suppress(ConnectionResetError):
            c.until_eof()  # what the kernel held, then end of file
        other_client_ok(inst)


# -- the broker goes away under a client ----------------------------------------------------


def test_broker_killed_under_reactor_run():
    """Every pending future fails with ECONNRESET and reactor_run() returns."""
    with _start_instance() as inst:
        h = inst.handle()
        provider = inst.handle()
        provider.service_register("hang").get()  # requests to it are never answered
        errors = []

        def record(f):
            try:
                f.get()
            except OSError as e:
                errors.append(e)
                return
            f.reset()
            if inst.proc.poll() is None:  # the first log entry: kill the broker
                inst.proc.send_signal(signal.SIGKILL)
                inst.proc.wait()

        h.rpc("hang.forever").then(record)
        h.rpc("hang.again", {}).then(record)
        h.rpc("log.dmesg", {"follow": True}, flags=FLUX_RPC_STREAMING).then(record)
        assert h.reactor_run() >= 0
        assert inst.proc.returncode == -signal.SIGKILL
        assert len(errors) == 3
        for e in errors:
            assert e.errno == errno.ECONNRESET
            assert "lost connection to the broker" in e.strerror
        with pytest.raises(OSError) as e:
            h.rpc("broker.ping").get()
        assert e.value.errno == errno.ECONNRESET


def test_broker_killed_under_blocking_get():
    with _start_instance() as inst:
        h = inst.handle()
        f = h.rpc("log.dmesg", {"follow": True, "nobacklog": True},
                  flags=FLUX_RPC_STREAMING)
        h.rpc("broker.ping").get()
        inst.proc.send_signal(signal.SIGKILL)
        inst.proc.wait()
        with pytest.raises(OSError) as e:
            f.get()
        assert e.value.errno == errno.ECONNRESET


def test_broker_refusal_reason_reaches_pending_futures(inst):
    """The broker's CONTROL error is what pending RPCs fail with."""
    h = inst.handle()
    f = h.rpc("log.dmesg", {"follow": True, "nobacklog": True},
              flags=FLUX_RPC_STREAMING)
    h.rpc("broker.ping").get()
    # push a message past the broker's limit, bypassing the client's own check
    conn = h._conn
    header = msgpack.packb(fields(matchtag=99, raw=b""))[:-4]
    header = header[:-1] + b"\xc6" + (1 << 30).to_bytes(4, "big")
    conn.outbuf.append(header + b"y" * (MAX_INFLIGHT + (1 << 20)))
    conn.outlen = 1
    with pytest.raises(OSError) as e:
        for _ in range(100):  # the log line about us may come first
            f.get()
            f.reset()
    assert e.value.errno == errno.EMSGSIZE and "too large" in e.value.strerror
    other_client_ok(inst)


# -- forged responses from a fake broker -------------------------------------------------


class FakeBroker:
    """A UNIX socket server that greets one client, then answers each request
    with what ``respond(request_fields)`` returns (a list of byte strings)."""

    def __init__(self, path, respond, hello=None):
        self.path = path
        self.respond = respond
        self.hello = hello if hello is not None else msgpack.packb(
            [FLUX_MSGTYPE_CONTROL, 0, "hello", 0, U32, U32, 0, 0, None, None,
             {"rank": 0, "size": 1}, None, 0])
        self.conn = None
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)
        self.server.settimeout(TIMEOUT)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        self.conn = conn
        with conn:
            conn.settimeout(TIMEOUT)
            conn.sendall(self.hello)
            unpacker = msgpack.Unpacker(raw=False)
            try:
                while True:
                    data = conn.recv(1 << 16)
                    if not data:
                        return
                    unpacker.feed(data)
                    for req in unpacker:
                        for out in self.respond(req):
                            if out is None:
                                return  # hang up
                            conn.sendall(out)
            except OSError:
                return

    def close(self):
        self.server.close()
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.shutdown(socket.SHUT_RDWR)  # ends the thread's recv()
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()


@contextlib.contextmanager
def fake_broker(tmp_path, respond, hello=None):
    fb = FakeBroker(str(tmp_path / "fake"), respond, hello)
    try:
        yield "local://" + fb.path
    finally:
        fb.close()


def reply(req, **over):
    """A response to ``req`` with some fields replaced (by name)."""
    f = [FLUX_MSGTYPE_RESPONSE, 0, req[2], req[3], 0, U32, 0, 0, None, None,
         {"ok": True}, None, 0]
    for name, value in over.items():
        f[FIELD[name]] = value
    return msgpack.packb(f)


FORGED = [  # (fields replaced in the response to the request, errno of get())
    ({"topic": ["a", "list"]}, errno.EPROTO),
    ({"errnum": U32}, errno.EPROTO),
    ({"errstr": ["x"]}, errno.EPROTO),
    ({"raw": "str", "obj": None}, errno.EPROTO),
    ({"route": {"a": 1}}, errno.EPROTO),
    ({"flags": "x"}, errno.EPROTO),
    ({"raw": b"{not json", "obj": None}, errno.EPROTO),
    ({"raw": b"[" * 100000 + b"]" * 100000, "obj": None}, errno.EPROTO),
]


@pytest.mark.parametrize("over,errnum", FORGED, ids=[str(o)[:30] for o, _ in FORGED])
def test_forged_response_fails_only_its_rpc(tmp_path, over, errnum):
    def respond(req):
        if req[2] == "bad":
            # first a response nobody can match (a list matchtag), then the
            # forged one, then an answer to a matchtag nobody waits for
            return [reply(req, matchtag=[req[3]]), reply(req, **over),
                    reply(req, matchtag=req[3] + 1000)]
        return [reply(req)]

    with fake_broker(tmp_path, respond) as uri:
        h = flux.Flux(uri)
        with pytest.raises(OSError) as e:
            h.rpc("bad").get()
        assert e.value.errno == errnum
        assert h.rpc("good").get() == {"ok": True}  # the connection lives on


def test_non_json_object_payload_from_broker(tmp_path):
    """Any msgpack value is a valid object payload; as text it is EPROTO."""
    def respond(req):
        return [reply(req, obj={"b": b"\x00bytes", "deep": [[[[1]]]]})]

    with fake_broker(tmp_path, respond) as uri:
        h = flux.Flux(uri)
        assert h.rpc("a").get()["b"] == b"\x00bytes"
        with pytest.raises(OSError) as e:
            h.rpc("b").get_str()
        assert e.value.errno == errno.EPROTO


def test_garbage_from_broker_fails_pending_rpcs(tmp_path):
    # a map with a list as key cannot even be decoded: the framing is lost
    def respond(req):
        return [b"\x81\x91\x01\x02"]

    with fake_broker(tmp_path, respond) as uri:
        h = flux.Flux(uri)
        f1 = h.rpc("a")
        with pytest.raises(OSError) as e:
            h.rpc("b").get()
        assert e.value.errno == errno.EPROTO and "protocol error" in e.value.strerror
        with pytest.raises(OSError):
            f1.get()


def test_broker_hangs_up_mid_reactor_run(tmp_path):
    def respond(req):
        return [None] if req[2] == "bye" else []

    with fake_broker(tmp_path, respond) as uri:
        h = flux.Flux(uri)
        seen = []

        def cb(f):
            try:
                f.get()
            except OSError as e:
                seen.append(e.errno)

        for i in range(5):
            h.rpc("pending").then(cb)
        h.rpc("bye").then(cb)
        assert h.reactor_run() >= 0
        assert seen == [errno.ECONNRESET] * 6


@pytest.mark.parametrize("hello", [
    msgpack.packb([FLUX_MSGTYPE_CONTROL, 0, "hello", 0, U32, U32, 0, 0, None, None,
                   ["not", "a", "dict"], None, 0]),
    msgpack.packb([FLUX_MSGTYPE_CONTROL, 0, "hello", 0, U32, U32, 0, 0, None, None,
                   {"rank": "zero"}, None, 0]),
    msgpack.packb([FLUX_MSGTYPE_CONTROL, 0, ["hello"], 0, U32, U32, 0, 0, None, None,
                   None, None, 0]),
    msgpack.packb([1, 2, 3]),
    b"\xc1",
], ids=["list", "rank-str", "topic-list", "short", "not-msgpack"])
def test_bad_hello_is_a_clear_error(tmp_path, hello):
    with fake_broker(tmp_path, lambda req: [], hello=hello) as uri:
        with pytest.raises(OSError) as e:
            flux.Flux(uri)
        assert e.value.errno == errno.EPROTO
        assert "Unable to connect to Flux" in e.value.strerror


def test_in_flight_bytes_are_bounded_over_all_connections():
    """Each connection within its own limit, several together are still held
    to the broker's budget: the one that passes it is refused (ENOBUFS), the
    others, and new clients, are served."""
    limit = 40 << 20
    with _start_instance(f"connector.inflight-limit={limit}") as inst:
        clients = []
        try:
            for i in range(3):  # 3 x 14 MiB of a message announcing 16 MiB
                c = RawClient(os.path.join(inst.rundir, "local"))
                clients.append(c)
                header = msgpack.packb(fields(matchtag=1, raw=b""))[:-4]
                header = header[:-1] + b"\xc6" + (16 << 20).to_bytes(4, "big")
                c.sock.sendall(header + b'"' + b"y" * ((14 << 20) - 1))  # JSON text
                if i < 2:
                    # the broker took it in: a ping on another connection is
                    # answered after the broker read what came before it
                    assert inst.handle().rpc("broker.ping").get()
            msgs = clients[2].until_eof()
            assert msgs and msgs[-1].errnum == errno.ENOBUFS
            assert "limit" in msgs[-1].errstr
            clients[2].close()
            clients.pop()
            # the first two still complete their messages and are answered
            for c in clients:
                # the rest of the raw payload, then obj, route, seq
                c.sock.sendall(b"y" * ((2 << 20) - 1) + b'"' + b"\xc0\xc0\x00")
                rsp = c.recv()
                assert rsp.matchtag == 1 and rsp.errnum == 0
            other_client_ok(inst)
        finally:
            for c in clients:
                c.close()


def test_unencodable_response_reaches_the_requester_as_an_error():
    """No input reaches a service that would make it answer with a lone
    surrogate any more; should a service still build such a response, the
    requester gets an EPROTO error instead of waiting forever."""
    import asyncio

    from fluxrm.broker.connector import ClientConnection

    class Broker:
        router = None
        logs = []

        def log(self, level, text):
            self.logs.append(text)

    class Transport:
        written = b""

        def write(self, data):
            self.written += data

        def get_write_buffer_size(self):
            return 0

    req = Message.build(FLUX_MSGTYPE_REQUEST, "svc.get", matchtag=7)

    async def answer():
        conn = ClientConnection(Broker())
        conn.transport = Transport()
        conn.send(req.response({"text": "caf\udce9"}))
        conn.send(req.response(errnum=errno.ENOENT, errstr="no key \udce9"))
        await asyncio.sleep(0)
        return conn.transport.written

    msgs = Decoder().feed(asyncio.run(answer()))
    assert [(m.matchtag, m.errnum) for m in msgs] == [(7, errno.EPROTO)] * 2
    assert "could not be encoded" in msgs[0].errstr
    assert any("cannot be encoded" in line for line in Broker.logs)
