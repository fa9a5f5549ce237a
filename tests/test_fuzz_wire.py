"""Fuzz the broker's wire: random 13-field messages and random bytes.

Each example opens a raw connection to a private instance and sends either a
13-field msgpack array whose fields are each a right-typed value or any
msgpack value (topics mostly real ones, payloads anything), followed by a
sentinel ping, or a random byte string.  After each example: no answer says
"internal error", the broker is alive, and another client's ping is answered.
At the end the broker's log holds no traceback.  The run is bounded by
``max_examples`` (and by socket timeouts per read).
"""

import errno
import os
import socket

import msgpack
from hypothesis import HealthCheck, given, settings, strategies as st

from flux.constants import (
    FLUX_MSGTYPE_CONTROL,
    FLUX_NODEID_ANY,
    FLUX_NODEID_UPSTREAM,
    FLUX_RPC_STREAMING,
)
from flux.message import Decoder

from conftest import _start_instance

EXAMPLES = 400
TIMEOUT = 20  # seconds any single read may block before the example fails
SENTINEL_TAG = 0xFFFFFFFF

TOPICS = [
    "attr.get", "attr.list", "attr.rm", "broker.ping", "config.get", "event.pub",
    "event.subscribe", "event.unsubscribe", "job-info.eventlog-watch",
    "job-info.lookup", "job-ingest.submit", "job-list.job-stats", "job-list.list",
    "job-list.list-id", "job-manager.events-journal", "job-manager.getinfo",
    "job-manager.purge-id", "job-manager.urgency", "job-manager.wait",
    "kvs-watch.lookup", "kvs.commit", "kvs.getroot", "kvs.lookup",
    "kvs.namespace-list", "log.append", "log.dmesg", "resource.status",
    "service.add", "service.remove", "no-such.service",
]

scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
           | st.floats() | st.text(max_size=12) | st.binary(max_size=12))
anything = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=8) | st.integers(-3, 3), inner, max_size=3),
    max_leaves=8,
)
json_text = st.sampled_from([b"{}", b"[]", b"null", b"{\"a\":", b"[" * 5000,
                             b"{\"id\": 18446744073709551616}", b"\xff\xfe"])


def field(good):
    """Mostly a right-typed value, sometimes anything at all."""
    return st.one_of(good, good, anything)


messages = st.tuples(
    field(st.sampled_from([1, 2, 4, 8])),                                 # type
    field(st.integers(0, 7)),                                             # flags
    field(st.sampled_from(TOPICS) | st.text(max_size=20)),                # topic
    field(st.integers(1, SENTINEL_TAG - 1)),                              # matchtag
    field(st.sampled_from([FLUX_NODEID_ANY, FLUX_NODEID_UPSTREAM, 0, 1])),  # nodeid
    field(st.integers(0, 2**32 - 1)),                                     # userid
    field(st.integers(0, 2**32 - 1)),                                     # rolemask
    field(st.integers(0, 200)),                                           # errnum
    field(st.none() | st.text(max_size=20)),                              # errstr
    field(st.none() | json_text | st.binary(max_size=30)),                # raw
    anything,                                                             # object
    field(st.none() | st.lists(st.text(max_size=6), max_size=3)),         # route
    field(st.integers(0, 2**63 - 1)),                                     # seq
).map(list)

examples = st.one_of(messages, messages, messages, st.binary(min_size=1, max_size=64))


def connect(inst):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    sock.connect(os.path.join(inst.rundir, "local"))
    return sock


def read_until(sock, decoder, done):
    """Messages read until ``done(msg)`` is true or end of file."""
    out = []
    while True:
        data = sock.recv(1 << 20)  # bounded by the socket timeout
        if not data:
            return out
        for msg in decoder.feed(data):
            out.append(msg)
            if done(msg):
                return out
        assert not decoder.rejected, "the broker sent a malformed message"


def sentinel(msg):
    return (msg.matchtag == SENTINEL_TAG and isinstance(msg._obj, dict)
            and msg._obj.get("fuzz") == "sentinel")


def test_fuzz_wire(capsys):
    tried = {"messages": 0, "bytes": 0}
    with _start_instance() as inst:
        h = inst.handle()

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow,
                                         HealthCheck.data_too_large])
        @given(examples)
        def one(example):
            sock = connect(inst)
            decoder = Decoder(1 << 30, 1 << 30)
            try:
                hello = read_until(sock, decoder, lambda m: True)
                assert hello and hello[0].type == FLUX_MSGTYPE_CONTROL
                if isinstance(example, list):
                    tried["messages"] += 1
                    ping = [1, 0, "broker.ping", SENTINEL_TAG, FLUX_NODEID_ANY, 0, 0, 0,
                            None, None, {"fuzz": "sentinel"}, None, 0]
                    try:
                        data = msgpack.packb(example) + msgpack.packb(ping)
                    except (OverflowError, ValueError, TypeError):
                        return  # not representable in msgpack (nothing to send)
                    sock.sendall(data)
                    # a 13-field array never breaks the framing: the ping is answered
                    got = read_until(sock, decoder, sentinel)
                    assert got and sentinel(got[-1]), got
                else:
                    tried["bytes"] += 1
                    sock.sendall(example)
                    sock.shutdown(socket.SHUT_WR)
                    got = read_until(sock, decoder, lambda m: False)
            finally:
                sock.close()
            for msg in got:
                assert "internal error" not in (msg.errstr or ""), (example, msg.errstr)
            assert inst.proc.poll() is None, "the broker died"
            assert h.rpc("broker.ping").get()["route"] == "0"

        one()
        assert inst.proc.poll() is None
        # nothing failed unseen either (requests without response, events)
        log = h.rpc("log.dmesg", {}, flags=FLUX_RPC_STREAMING)
        for _ in range(100000):
            try:
                entry = log.get()
            except OSError as e:
                assert e.errno == errno.ENODATA
                break
            assert "Traceback" not in entry["message"], entry["message"]
            assert "internal error" not in entry["message"], entry["message"]
            log.reset()
    with capsys.disabled():
        print(f"\nfuzz: {tried['messages']} messages and {tried['bytes']} byte strings tried")
    assert sum(tried.values()) >= EXAMPLES // 2
