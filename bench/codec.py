#!/usr/bin/env python3
"""Wire codec: msgpack stream (what we use) vs length-prefixed JSON.

Encodes and decodes a typical job-submit request (a ~700 byte jobspec
payload) and a small response, in a stream of 20,000 messages, several
times; prints median messages per second for each codec and their ratio.
"""

import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _stats import summary  # noqa: E402

from flux.constants import FLUX_MSGTYPE_REQUEST, FLUX_MSGTYPE_RESPONSE  # noqa: E402
from flux.message import Decoder, Message, encode  # noqa: E402

N = 20000
RUNS = 5

JOBSPEC = {
    "resources": [{"type": "slot", "count": 1, "label": "task",
                   "with": [{"type": "core", "count": 1}]}],
    "tasks": [{"command": ["sleep", "0"], "slot": "task", "count": {"per_slot": 1}}],
    "attributes": {"system": {"duration": 0, "cwd": "/home/user/work",
                              "environment": {"PATH": "/usr/bin:/bin", "HOME": "/home/user",
                                              "LANG": "C.UTF-8", "SHELL": "/bin/bash"},
                              "shell": {"options": {"rlimit": {"nofile": 1024}}}}},
    "version": 1,
}


def sample_messages():
    req = Message.build(FLUX_MSGTYPE_REQUEST, "job-ingest.submit",
                        {"J": json.dumps(JOBSPEC), "urgency": 16, "flags": 4},
                        matchtag=1)
    rsp = Message.build(FLUX_MSGTYPE_RESPONSE, "job-ingest.submit",
                        {"id": 123456789012345}, matchtag=1)
    return [req, rsp]


def json_encode(msg):
    body = json.dumps([msg.type, msg.flags, msg._topic, msg.matchtag, msg.nodeid,
                       msg.userid, msg.rolemask, msg.errnum, msg.errstr,
                       msg.payload_str, msg.route, msg.seq]).encode()
    return struct.pack("!I", len(body)) + body


def json_decode_stream(data):
    out, off = [], 0
    while off < len(data):
        (n,) = struct.unpack_from("!I", data, off)
        f = json.loads(data[off + 4:off + 4 + n])
        out.append(json.loads(f[9]) if f[9] else None)
        off += 4 + n
    return out


def run_msgpack(msgs):
    t0 = time.perf_counter()
    data = b"".join(encode(msgs[i & 1]) for i in range(N))
    out = Decoder().feed(data)
    for m in out:
        m.payload  # noqa: B018 - the consumer reads the payload
    return N / (time.perf_counter() - t0)


def run_json(msgs):
    t0 = time.perf_counter()
    data = b"".join(json_encode(msgs[i & 1]) for i in range(N))
    json_decode_stream(data)
    return N / (time.perf_counter() - t0)


def main():
    global N, RUNS
    if "--smoke" in sys.argv:
        N, RUNS = 200, 2
    msgs = sample_messages()
    mp = [run_msgpack(msgs) for _ in range(RUNS)]
    js = [run_json(msgs) for _ in range(RUNS)]
    print(f"codec msgpack: {summary(mp, 'msg/s', '{:,.0f}')}")
    print(f"codec json:    {summary(js, 'msg/s', '{:,.0f}')}")
    import statistics

    print(f"codec ratio msgpack/json: {statistics.median(mp) / statistics.median(js):.2f}x")


if __name__ == "__main__":
    main()
