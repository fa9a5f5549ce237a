"""The wire codec, without sockets: property tests over random messages."""

import json

import pytest
from hypothesis import given, settings, strategies as st

from flux.constants import (
    FLUX_MSGTYPE_REQUEST,
    FLUX_MSGTYPE_RESPONSE,
    FLUX_MSGTYPE_EVENT,
    FLUX_NODEID_ANY,
)
from flux.message import Decoder, Message, ProtocolError, decode, encode, msg_typestr

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)

payloads = st.none() | st.binary(max_size=64) | st.text(max_size=64) | \
    st.dictionaries(st.text(max_size=8), json_values, max_size=4)


@st.composite
def messages(draw):
    msg = Message.build(
        draw(st.sampled_from([FLUX_MSGTYPE_REQUEST, FLUX_MSGTYPE_RESPONSE,
                              FLUX_MSGTYPE_EVENT])),
        draw(st.text(min_size=1, max_size=30)),
        draw(payloads),
        matchtag=draw(st.integers(0, 2**32 - 1)),
        nodeid=draw(st.sampled_from([FLUX_NODEID_ANY, 0, 1, 4095])),
        flags=draw(st.integers(0, 7)),
    )
    if draw(st.booleans()):
        msg.errnum = draw(st.integers(1, 133))
        msg.errstr = draw(st.none() | st.text(max_size=20))
    msg.route = draw(st.none() | st.lists(st.text(max_size=5), max_size=3))
    return msg


def same(a, b):
    assert a.type == b.type
    assert a.flags == b.flags
    assert a.topic == b.topic
    assert a.matchtag == b.matchtag
    assert a.nodeid == b.nodeid
    assert a.errnum == b.errnum
    assert a.errstr == b.errstr
    assert a.route == b.route
    assert a.payload_str == b.payload_str


@settings(max_examples=200, deadline=None)
@given(messages())
def test_roundtrip_one(msg):
    same(msg, decode(encode(msg)))


@settings(max_examples=100, deadline=None)
@given(st.lists(messages(), min_size=1, max_size=8), st.integers(1, 17))
def test_stream_any_split(msgs, chunk):
    """Framing holds however the byte stream is cut."""
    data = b"".join(encode(m) for m in msgs)
    dec = Decoder()
    out = []
    for i in range(0, len(data), chunk):
        out.extend(dec.feed(data[i:i + chunk]))
    assert len(out) == len(msgs)
    for a, b in zip(msgs, out):
        same(a, b)


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_object_payload_reads_as_json(value):
    msg = Message.build(FLUX_MSGTYPE_REQUEST, "a.b", {"v": value})
    out = decode(encode(msg))
    assert out.payload == {"v": value}
    assert json.loads(out.payload_str) == {"v": value}


def test_raw_payloads_verbatim():
    msg = Message.build(FLUX_MSGTYPE_REQUEST, "a.b", b"\xde\xad\xbe\xef")
    assert decode(encode(msg)).payload_raw == b"\xde\xad\xbe\xef"
    msg = Message.build(FLUX_MSGTYPE_REQUEST, "a.b", '{"x": 1}')
    out = decode(encode(msg))
    assert out.payload_str == '{"x": 1}'
    assert out.payload == {"x": 1}


def test_huge_int_falls_back_to_json():
    msg = Message.build(FLUX_MSGTYPE_REQUEST, "a.b", {"big": 2**70})
    assert decode(encode(msg)).payload == {"big": 2**70}


def test_unencodable_payload_raises_typeerror():
    msg = Message.build(FLUX_MSGTYPE_REQUEST, "a.b", {"s": {1, 2}})
    with pytest.raises(TypeError):
        encode(msg)


def test_garbage_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        Decoder().feed(b"\x93\x01\x02\x03")  # a 3-element array: not a message
    with pytest.raises(ProtocolError):
        Decoder().feed(b"\xc1")  # never-used msgpack byte


def test_message_properties():
    msg = Message()
    assert msg.type_str == "request"
    with pytest.raises(OSError) as e:
        msg.topic
    assert e.value.errno == 71  # EPROTO
    with pytest.raises(OSError):
        msg.topic = None
    with pytest.raises(TypeError):
        msg.topic = 42
    msg.topic = b"foo.bar"
    assert msg.topic == "foo.bar"
    assert msg.payload_str is None
    with pytest.raises(TypeError):
        msg.payload
    msg.payload = "not json"
    with pytest.raises(ValueError):
        msg.payload
    assert msg.decode() == (FLUX_MSGTYPE_REQUEST, "foo.bar", "not json")
    msg.errnum = 2
    with pytest.raises(FileNotFoundError):
        msg.decode()
    assert msg_typestr(8) == "control"
    assert msg_typestr(99) == "unknown"


def test_raw_json_payload_is_strict_utf8_without_lone_surrogates():
    """As upstream's JSON parser: bytes are UTF-8 (never guessed UTF-16),
    and a lone surrogate escape is refused; a surrogate pair is fine."""
    import errno as _errno

    from flux.message import loads_payload

    assert loads_payload(b'{"a": "\\ud83d\\ude00"}') == {"a": "\U0001F600"}
    for raw in (b'{"a": "\\ud800"}', b'{"\\uDC80": 1}', "1\x00".encode("utf-16-le"),
                b'"\xff"'):
        with pytest.raises(OSError) as info:
            loads_payload(raw)
        assert info.value.errno == _errno.EPROTO
