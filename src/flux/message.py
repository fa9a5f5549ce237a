"""Flux messages and the wire codec.

A message is a request, a response, an event or a control message.  On the
wire each message is one msgpack array; a byte stream is simply a sequence of
such arrays, so framing is msgpack's own (see ``bench/codec.py`` for the
measurement that chose msgpack over length-prefixed JSON).

Wire layout (index: field)::

    0 type        1 flags      2 topic      3 matchtag   4 nodeid
    5 userid      6 rolemask   7 errnum     8 errstr     9 raw payload
    10 object payload          11 route     12 sequence

A payload travels either as raw bytes (what the user gave as ``str``/
``bytes``) or as a decoded JSON-compatible object (what the user gave as a
dict, list, ...).  Each side converts lazily: ``payload`` parses raw text only
when asked, ``payload_str`` serialises an object only when asked, so services
that pass objects around never pay for JSON.

This module is sans-I/O: ``encode()`` returns bytes and ``Decoder.feed()``
takes bytes; sockets live elsewhere.
"""

import errno
import json
import os

import msgpack

from flux.constants import (
    FLUX_MSGTYPE_REQUEST,
    FLUX_MSGTYPE_RESPONSE,
    FLUX_MSGTYPE_EVENT,
    FLUX_MSGTYPE_CONTROL,
    FLUX_NODEID_ANY,
    FLUX_USERID_UNKNOWN,
    FLUX_ROLE_NONE,
)

# message flags (carried in field 1)
MSGFLAG_STREAMING = 0x01
MSGFLAG_NORESPONSE = 0x02
MSGFLAG_UPSTREAM = 0x04

_TYPESTR = {
    FLUX_MSGTYPE_REQUEST: "request",
    FLUX_MSGTYPE_RESPONSE: "response",
    FLUX_MSGTYPE_EVENT: "event",
    FLUX_MSGTYPE_CONTROL: "control",
}


def msg_typestr(msgtype):
    """Name of a message type: request, response, event, control or unknown."""
    return _TYPESTR.get(msgtype, "unknown")


def encode_payload(payload):
    """Split a user payload into (raw bytes, object) per the API's rules.

    ``None`` means no payload; ``str``/``bytes`` are sent verbatim; anything
    else is JSON data.
    """
    if payload is None:
        return None, None
    if isinstance(payload, bytes):
        return payload, None
    if isinstance(payload, str):
        return payload.encode("utf-8"), None
    return None, payload


def check_topic(topic):
    """Validate a topic argument and return it as ``str``."""
    if topic is None:
        raise OSError(errno.EINVAL, "Topic must not be None/NULL")
    if isinstance(topic, bytes):
        return topic.decode("utf-8")
    if not isinstance(topic, str):
        raise TypeError(f"topic must be str or bytes, not {type(topic).__name__}")
    return topic


class Message:
    """One Flux message (``flux.message.Message``)."""

    __slots__ = (
        "type",
        "flags",
        "_topic",
        "matchtag",
        "nodeid",
        "userid",
        "rolemask",
        "errnum",
        "errstr",
        "_raw",
        "_obj",
        "route",
        "seq",
        "sender",
        "__weakref__",
    )

    def __init__(self, type_id=FLUX_MSGTYPE_REQUEST, handle=None, destruct=False):
        self.type = type_id
        self.flags = 0
        self._topic = None
        self.matchtag = 0
        self.nodeid = FLUX_NODEID_ANY
        self.userid = FLUX_USERID_UNKNOWN
        self.rolemask = FLUX_ROLE_NONE
        self.errnum = 0
        self.errstr = None
        self._raw = None
        self._obj = None
        self.route = None
        self.seq = 0
        self.sender = None

    # -- construction helpers -------------------------------------------
    @classmethod
    def build(cls, msgtype, topic, payload=None, matchtag=0, nodeid=FLUX_NODEID_ANY,
              flags=0):
        msg = cls.__new__(cls)
        msg.type = msgtype
        msg.flags = flags
        msg._topic = topic
        msg.matchtag = matchtag
        msg.nodeid = nodeid
        msg.userid = FLUX_USERID_UNKNOWN
        msg.rolemask = FLUX_ROLE_NONE
        msg.errnum = 0
        msg.errstr = None
        msg._raw, msg._obj = encode_payload(payload)
        msg.route = None
        msg.seq = 0
        msg.sender = None
        return msg

    def response(self, payload=None, errnum=0, errstr=None):
        """Build the response to this request (same topic, matchtag, route)."""
        rsp = Message.__new__(Message)
        rsp.type = FLUX_MSGTYPE_RESPONSE
        rsp.flags = self.flags & MSGFLAG_STREAMING
        rsp._topic = self._topic
        rsp.matchtag = self.matchtag
        rsp.nodeid = self.nodeid
        rsp.userid = self.userid
        rsp.rolemask = self.rolemask
        rsp.errnum = errnum
        rsp.errstr = errstr
        if errnum:
            rsp._raw = rsp._obj = None
        else:
            rsp._raw, rsp._obj = encode_payload(payload)
        rsp.route = list(self.route) if self.route else None
        rsp.seq = 0
        rsp.sender = None
        return rsp

    # -- properties -----------------------------------------------------
    @property
    def topic(self):
        if self._topic is None:
            raise OSError(errno.EPROTO, os.strerror(errno.EPROTO))
        return self._topic

    @topic.setter
    def topic(self, value):
        self._topic = check_topic(value)

    @property
    def type_str(self):
        return msg_typestr(self.type)

    @property
    def payload_str(self):
        if self._raw is not None:
            return self._raw.decode("utf-8", errors="surrogateescape")
        if self._obj is not None:
            return json.dumps(self._obj, ensure_ascii=False)
        return None

    @property
    def payload_raw(self):
        """The payload as bytes, or None."""
        if self._raw is not None:
            return self._raw
        if self._obj is not None:
            return json.dumps(self._obj, ensure_ascii=False).encode("utf-8")
        return None

    @property
    def payload(self):
        if self._obj is not None:
            return self._obj
        return json.loads(self.payload_str)

    @payload.setter
    def payload(self, value):
        self._raw, self._obj = encode_payload(value)

    def has_payload(self):
        return self._raw is not None or self._obj is not None

    def get_object(self):
        """The payload decoded as JSON, or None when there is none.

        Used by services, which always want a dict.
        """
        if self._obj is not None:
            return self._obj
        if self._raw is None or not self._raw:
            return None
        return json.loads(self._raw)

    def decode(self):
        """Return (type, topic, payload_str); raise OSError for an error response."""
        if self.errnum:
            raise OSError(self.errnum, self.errstr or os.strerror(self.errnum))
        return self.type, self.topic, self.payload_str

    def __repr__(self):
        return (
            f"<Message {self.type_str} topic={self._topic!r} "
            f"matchtag={self.matchtag} errnum={self.errnum}>"
        )


# ---------------------------------------------------------------------------
# codec

_packb = msgpack.Packer(use_bin_type=True, autoreset=True).pack


def _fields(msg, obj):
    return [
        msg.type,
        msg.flags,
        msg._topic,
        msg.matchtag,
        msg.nodeid,
        msg.userid,
        msg.rolemask,
        msg.errnum,
        msg.errstr,
        msg._raw,
        obj,
        msg.route,
        msg.seq,
    ]


def encode(msg):
    """Encode one message to bytes."""
    try:
        return _packb(_fields(msg, msg._obj))
    except (OverflowError, TypeError, ValueError):
        # Not representable in msgpack (huge int, odd key): fall back to JSON
        # text, which raises TypeError itself for values JSON cannot carry.
        raw = json.dumps(msg._obj, ensure_ascii=False).encode("utf-8")
        fields = _fields(msg, None)
        fields[9] = raw
        return _packb(fields)


def _from_fields(f):
    msg = Message.__new__(Message)
    (
        msg.type,
        msg.flags,
        msg._topic,
        msg.matchtag,
        msg.nodeid,
        msg.userid,
        msg.rolemask,
        msg.errnum,
        msg.errstr,
        msg._raw,
        msg._obj,
        msg.route,
        msg.seq,
    ) = f
    msg.sender = None
    return msg


def decode(data):
    """Decode exactly one message from bytes."""
    return _from_fields(msgpack.unpackb(data, raw=False, strict_map_key=False))


class ProtocolError(Exception):
    """The peer sent bytes that are not a Flux message stream."""


class Decoder:
    """Incremental decoder: feed bytes, iterate complete messages."""

    __slots__ = ("_unpacker",)

    def __init__(self, max_buffer_size=1 << 30):
        self._unpacker = msgpack.Unpacker(
            raw=False, strict_map_key=False, max_buffer_size=max_buffer_size
        )

    def feed(self, data):
        """Add bytes; return the list of messages now complete."""
        self._unpacker.feed(data)
        out = []
        try:
            for fields in self._unpacker:
                if type(fields) is not list or len(fields) != 13:
                    raise ProtocolError("malformed message")
                out.append(_from_fields(fields))
        except (ValueError, msgpack.ExtraData, msgpack.FormatError,
                msgpack.StackError) as exc:
            raise ProtocolError(str(exc)) from exc
        return out
