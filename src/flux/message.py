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

Decoding checks every field of every message (a few type tests and range
tests per message, see ``_from_fields``): type one of the four known types,
flags within the known bits, topic a str of at most ``MAX_TOPIC`` characters
or None, matchtag/nodeid/userid/rolemask integers in the uint32 range,
errnum in 0..2**31-1, errstr a str or None, raw payload bytes or None (not
with an object payload too), route None or a list of at most ``MAX_ROUTE``
str of at most ``MAX_ROUTE_ID`` characters, seq a non-negative int below
2**63; the object payload may be any msgpack value.  A message that fails
is refused on its own: ``Decoder.feed()`` leaves it in ``Decoder.rejected``
(see ``Rejected``) and returns the other messages of the same read as
usual.  Bytes that are not a stream of 13-field msgpack arrays lose the
framing: ``feed()`` raises ``ProtocolError``.

Sizes (defaults, which the broker uses; the client allows its broker more):
no str or bin field may exceed ``MAX_MESSAGE`` (64 MiB) and a decoder buffers
at most ``MAX_INFLIGHT`` (64 + 4 MiB) of an incomplete message, so one peer
cannot make us hold more than that; arrays and maps are limited to
``MAX_ITEMS`` entries and nesting to msgpack's 1024 levels.  A raw JSON
payload that is invalid or nested too deeply to parse raises
``PayloadError``, an ``OSError`` with EPROTO.
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
_MSGFLAG_BITS = 3  # flags must be below 1 << 3

# limits checked when decoding (see the module docstring)
MAX_MESSAGE = 64 << 20  # largest str/bin field, and largest message we send
MAX_INFLIGHT = MAX_MESSAGE + (4 << 20)  # bytes of one peer's unread stream
MAX_ITEMS = 1 << 22  # entries in one array or map (msgpack preallocates them)
MAX_TOPIC = 1024
MAX_ROUTE = 32
MAX_ROUTE_ID = 256

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


class PayloadError(OSError, ValueError):
    """A raw payload that is not JSON (or nested too deeply to parse).

    An ``OSError`` with errno EPROTO, and a ``ValueError`` as ``json.loads``
    raises for text that is not JSON (what callers of upstream expect).
    """


def loads_payload(raw):
    """Parse a raw JSON payload; raise ``PayloadError`` (EPROTO) if it is not.

    As upstream's JSON parser: the text must be UTF-8 (``json.loads`` would
    guess UTF-16 or UTF-32 from bytes), and a ``\\u`` escape of a lone
    surrogate is refused, since no UTF-8 text can carry it onwards (checked
    only when the text has such an escape at all).
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
        obj = json.loads(text)
        if "\\ud" in text or "\\uD" in text:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        return obj
    except RecursionError:
        raise PayloadError(errno.EPROTO, "payload is nested too deeply") from None
    except UnicodeEncodeError:
        raise PayloadError(errno.EPROTO, "payload is not valid JSON:"
                           " a \\u escape of a lone surrogate") from None
    except UnicodeDecodeError:
        raise PayloadError(errno.EPROTO, "payload is not valid JSON: not UTF-8") from None
    except ValueError as exc:  # JSONDecodeError
        raise PayloadError(errno.EPROTO, f"payload is not valid JSON: {exc}") from None


def dumps_payload(obj):
    """JSON text of an object payload that came off the wire.

    Any msgpack value may arrive; one JSON cannot carry (bytes, a bytes key,
    nesting too deep) raises ``PayloadError`` (EPROTO).
    """
    try:
        return json.dumps(obj, ensure_ascii=False)
    except RecursionError:
        raise PayloadError(errno.EPROTO, "payload is nested too deeply") from None
    except (TypeError, ValueError) as exc:
        raise PayloadError(errno.EPROTO, f"payload is not JSON data: {exc}") from None


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
            return dumps_payload(self._obj)
        return None

    @property
    def payload_raw(self):
        """The payload as bytes, or None."""
        if self._raw is not None:
            return self._raw
        if self._obj is not None:
            return dumps_payload(self._obj).encode("utf-8")
        return None

    @property
    def payload(self):
        if self._obj is not None:
            return self._obj
        if self._raw is None:
            return json.loads(None)  # TypeError, as upstream
        return loads_payload(self._raw)

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
        return loads_payload(self._raw)

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
    """Build a Message from 13 decoded fields, or return None if one is bad.

    The common case costs one chained type test and a few comparisons;
    ``_field_error()`` names the bad field only when this one fails.
    """
    (mtype, flags, topic, matchtag, nodeid, userid, rolemask, errnum, errstr,
     raw, obj, route, seq) = f
    # ``type(x) is int`` also refuses bools; OR-ing the uint32 fields and
    # shifting tests them all at once (a negative one stays negative).
    if not (type(mtype) is type(flags) is type(matchtag) is type(nodeid)
            is type(userid) is type(rolemask) is type(errnum) is type(seq) is int
            and mtype in _TYPESTR
            and not flags >> _MSGFLAG_BITS
            and not (matchtag | nodeid | userid | rolemask) >> 32
            and not errnum >> 31  # a C int: os.strerror() takes no more
            and not seq >> 63
            and (topic is None or (type(topic) is str and len(topic) <= MAX_TOPIC))
            and (errstr is None or type(errstr) is str)
            and (raw is None or (type(raw) is bytes and obj is None))
            and (route is None or _route_ok(route))):
        return None
    msg = Message.__new__(Message)
    msg.type = mtype
    msg.flags = flags
    msg._topic = topic
    msg.matchtag = matchtag
    msg.nodeid = nodeid
    msg.userid = userid
    msg.rolemask = rolemask
    msg.errnum = errnum
    msg.errstr = errstr
    msg._raw = raw
    msg._obj = obj
    msg.route = route
    msg.seq = seq
    msg.sender = None
    return msg


def _route_ok(route):
    if type(route) is not list or len(route) > MAX_ROUTE:
        return False
    for hop in route:
        if type(hop) is not str or len(hop) > MAX_ROUTE_ID:
            return False
    return True


def _is_u32(value):
    return type(value) is int and 0 <= value <= 0xFFFFFFFF


_UINT32_FIELDS = ((3, "matchtag"), (4, "nodeid"), (5, "userid"), (6, "rolemask"))


def _field_error(f):
    """Name the first malformed field of a 13-field message (slow path)."""
    mtype, flags, topic = f[0], f[1], f[2]
    if type(mtype) is not int or mtype not in _TYPESTR:
        return "type must be 1, 2, 4 or 8"
    if type(flags) is not int or flags >> _MSGFLAG_BITS:
        return f"flags must be an integer below {1 << _MSGFLAG_BITS}"
    if topic is not None and (type(topic) is not str or len(topic) > MAX_TOPIC):
        return f"topic must be a string of at most {MAX_TOPIC} characters"
    for i, name in _UINT32_FIELDS:
        if not _is_u32(f[i]):
            return f"{name} must be an integer in 0..4294967295"
    if type(f[7]) is not int or not 0 <= f[7] < 1 << 31:
        return "errnum must be an integer in 0..2147483647"
    if f[8] is not None and type(f[8]) is not str:
        return "errstr must be a string or nil"
    if f[9] is not None and type(f[9]) is not bytes:
        return "raw payload must be bytes or nil"
    if f[9] is not None and f[10] is not None:
        return "raw and object payload must not both be set"
    if f[11] is not None and not _route_ok(f[11]):
        return (f"route must be a list of at most {MAX_ROUTE} strings"
                f" of at most {MAX_ROUTE_ID} characters")
    if type(f[12]) is not int or not 0 <= f[12] < 1 << 63:
        return "seq must be a non-negative integer below 2**63"
    return "malformed message"  # not reached while the two checks agree


class Rejected:
    """A framed message with a malformed field, refused on its own."""

    __slots__ = ("fields", "reason")

    def __init__(self, fields):
        self.fields = fields
        self.reason = _field_error(fields)

    @property
    def matchtag(self):
        """The message's matchtag if usable (a non-zero uint32), else None."""
        tag = self.fields[3]
        return tag if _is_u32(tag) and tag else None

    def is_type(self, msgtype):
        mtype = self.fields[0]
        return type(mtype) is int and mtype == msgtype

    def error_response(self):
        """An EPROTO response naming the bad field, for a request someone
        may wait for (a usable matchtag, and no NORESPONSE flag among valid
        flags); else None."""
        flags = self.fields[1]
        if (not self.is_type(FLUX_MSGTYPE_REQUEST) or self.matchtag is None
                or (type(flags) is int and not flags >> _MSGFLAG_BITS
                    and flags & MSGFLAG_NORESPONSE)):
            return None
        return self._error(f"malformed message: {self.reason}")

    def error_for_requester(self):
        """For a malformed response from a service provider that still has
        a usable matchtag and route: the EPROTO response its requester gets
        instead (routed like the original); else None."""
        route = self.fields[11]
        if (not self.is_type(FLUX_MSGTYPE_RESPONSE) or self.matchtag is None
                or route is None or not route or not _route_ok(route)):
            return None
        rsp = self._error(f"malformed response from the service: {self.reason}")
        rsp.route = list(route)
        return rsp

    def _error(self, text):
        topic = self.fields[2]
        if type(topic) is not str or len(topic) > MAX_TOPIC:
            topic = None
        rsp = Message.build(FLUX_MSGTYPE_RESPONSE, topic, matchtag=self.matchtag)
        rsp.errnum = errno.EPROTO
        rsp.errstr = text
        return rsp

    def __repr__(self):
        return f"<Rejected {self.reason}>"


def decode(data):
    """Decode exactly one message from bytes; ProtocolError if malformed."""
    try:
        fields = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError) as exc:
        raise ProtocolError(_unpack_error(exc)) from exc
    if type(fields) is not list or len(fields) != 13:
        raise ProtocolError("malformed message: not a 13-field array")
    msg = _from_fields(fields)
    if msg is None:
        raise ProtocolError(f"malformed message: {_field_error(fields)}")
    return msg


class ProtocolError(Exception):
    """The peer sent bytes that are not a Flux message stream.

    ``errno`` is EPROTO, or EMSGSIZE for a message over the size limits;
    ``messages`` holds the messages decoded before the error in the same
    ``feed()``; ``not_msgpack`` is true when the bytes are not msgpack at all.
    """

    def __init__(self, text, errnum=errno.EPROTO, messages=(), not_msgpack=False):
        super().__init__(text)
        self.errno = errnum
        self.messages = messages
        self.not_msgpack = not_msgpack  # not even msgpack: a stranger


def _unpack_error(exc):
    if isinstance(exc, msgpack.StackError):
        return "message nested too deeply"
    if isinstance(exc, UnicodeDecodeError):
        return "a string is not valid UTF-8"
    if isinstance(exc, msgpack.FormatError):
        return "not a msgpack stream"
    return str(exc) or type(exc).__name__


class Decoder:
    """Incremental decoder: feed bytes, iterate complete messages.

    Messages with a malformed field are appended to ``rejected`` (a list of
    ``Rejected`` the caller handles and clears); bytes that break the framing
    raise ``ProtocolError``, after which the decoder is done.  The buffer
    keeps the size of the largest message seen until the decoder goes (an
    unpacker cannot tell whether it holds part of the next message).
    """

    __slots__ = ("_unpacker", "_max", "_max_field", "_max_items", "rejected")

    def __init__(self, max_buffer_size=MAX_INFLIGHT, max_field=MAX_MESSAGE,
                 max_items=MAX_ITEMS):
        self._max = max_buffer_size
        self._max_field = min(max_field, max_buffer_size)
        self._max_items = max_items
        self._unpacker = self._new_unpacker()
        self.rejected = []

    def _new_unpacker(self):
        limit = self._max_field
        return msgpack.Unpacker(
            raw=False, strict_map_key=False, max_buffer_size=self._max,
            read_size=min(self._max, 1 << 20), max_str_len=limit,
            max_bin_len=limit, max_array_len=self._max_items,
            max_map_len=self._max_items, max_ext_len=limit,
        )

    def feed(self, data):
        """Add bytes; return the list of messages now complete."""
        unpacker = self._unpacker
        if unpacker is None:
            raise ProtocolError("the stream broke earlier")
        error = None
        try:
            unpacker.feed(data)
        except msgpack.BufferFull:
            error = ProtocolError(
                f"message too large: more than {self._max} bytes buffered",
                errno.EMSGSIZE)
        out = []
        try:
            if error is None:
                for fields in unpacker:
                    if type(fields) is not list or len(fields) != 13:
                        error = ProtocolError("malformed message: not a 13-field array",
                                              messages=out)
                        break
                    msg = _from_fields(fields)
                    if msg is None:
                        self.rejected.append(Rejected(fields))
                    else:
                        out.append(msg)
        except (ValueError, TypeError, MemoryError, msgpack.ExtraData,
                msgpack.FormatError, msgpack.StackError) as exc:
            # past an error inside a message the unpacker has lost the framing
            if "exceeds max" in str(exc):  # e.g. "N exceeds max_bin_len(M)"
                error = ProtocolError(f"message too large: {exc}", errno.EMSGSIZE, out)
            else:
                error = ProtocolError(_unpack_error(exc), errno.EPROTO, out,
                                      isinstance(exc, msgpack.FormatError))
        if error is not None:
            # free the buffer now: no traceback may keep it (the broker's
            # garbage collections are rare)
            self._unpacker = unpacker = None
            raise error
        return out
