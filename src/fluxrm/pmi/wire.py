"""The PMI-1 "simple" wire protocol: one message per line.

A message is one line of words separated by spaces, each word ``key=value``,
the first one ``cmd=NAME`` (``mcmd=NAME`` opens a multi-line command, which
runs until a line ``endcmd``; we only ever refuse those).  A few keys, once
met, take the whole rest of the line as their value, spaces included:
``value=`` (put, get_result), and the texts ``msg=`` (an error's) and
``error_msg=`` (abort's), which stop early only at a ``value=`` word
(MPICH's hydra answers ``rc=0 msg=success value=...``).  A writer puts such
a word last; at most one per line.  (A strict one-word-per-key reader, as
in older MPICH clients, may refuse a ``msg=`` with spaces; it only ever
comes with rc!=0.)  A missing ``rc=`` means success (some servers omit it).

The client speaks first and the server answers each request with one line,
except ``barrier_in`` (answered once every rank has entered) and ``abort``
(never answered).  Our server's answers all carry ``rc=`` (0 is success)
and, on failure, ``msg=``.

Bounds (what the server announces in ``maxes``): a kvsname of at most
``KVSNAME_MAX`` characters, a key of ``KEYLEN_MAX``, a value of
``VALLEN_MAX``; a whole line of at most ``MAX_LINE`` characters (newline not
counted).  A longer line is an error, never a crash or an unbounded buffer.

``parse_line(line) -> dict`` (raises ``WireError``), ``format_line(cmd,
**fields) -> str`` (ends with a newline), ``reply_name(cmd)``, and
``LineSplitter``, the bounded bytes -> lines framing both ends use
(``decode_line``/``encode_line``: UTF-8, any bytes round-trip).
"""

__all__ = [
    "KVSNAME_MAX", "KEYLEN_MAX", "VALLEN_MAX", "MAX_LINE", "REST_OF_LINE",
    "WireError", "parse_line", "format_line", "request_name", "reply_name",
    "LineSplitter", "decode_line", "encode_line",
]

KVSNAME_MAX = 64
KEYLEN_MAX = 64
VALLEN_MAX = 1024
# room for "cmd=put kvsname=K key=K value=V" at the maxima, and then some
MAX_LINE = 2048

# keys whose value is the rest of the line
REST_OF_LINE = ("value", "msg", "error_msg")

# the name of the answer to each request the protocol defines
_REPLIES = {
    "init": "response_to_init",
    "get_maxes": "maxes",
    "get_appnum": "appnum",
    "get_universe_size": "universe_size",
    "get_my_kvsname": "my_kvsname",
    "put": "put_result",
    "get": "get_result",
    "barrier_in": "barrier_out",
    "finalize": "finalize_ack",
    "spawn": "spawn_result",
}


class WireError(ValueError):
    """A line that is not a well-formed PMI-1 message (the text says why)."""


def request_name(line):
    """The NAME of a line starting ``cmd=NAME`` (even a malformed or
    over-long one), else None: used to name the answer to a bad request."""
    if not line.startswith("cmd="):
        return None
    name = line[4:].split(" ", 1)[0].rstrip("\r\n")
    return name if name.isidentifier() else None


def reply_name(cmd):
    """The ``cmd=`` of the answer to request ``cmd`` (``error`` if unknown)."""
    return _REPLIES.get(cmd, "error")


def parse_line(line):
    """Parse one message (a str, its newline optional) into a dict of its
    words.  Raises WireError for an empty or over-long line, a word that is
    not ``key=value``, a key given twice, or a first word other than
    ``cmd=``/``mcmd=``."""
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    if len(line) > MAX_LINE:
        raise WireError(f"line longer than {MAX_LINE} characters")
    if "\n" in line:
        raise WireError("newline inside a line")
    fields = {}
    pos = 0
    end = len(line)
    while pos < end:
        if line[pos] == " ":
            pos += 1
            continue
        stop = line.find(" ", pos)
        if stop < 0:
            stop = end
        key, eq, value = line[pos:stop].partition("=")
        if not fields and (key not in ("cmd", "mcmd") or not eq):
            raise WireError("line does not start with cmd= or mcmd=")
        if not eq or not key:
            raise WireError(f"word '{_clip(line[pos:stop])}' is not key=value")
        if key in REST_OF_LINE:
            stop = end
            if key != "value":  # a text: up to a value= word, if one follows
                later = line.find(" value=", pos)
                stop = end if later < 0 else later
            value = line[pos + len(key) + 1:stop]
        if key in fields:
            raise WireError(f"key '{_clip(key)}' given twice")
        fields[key] = value
        pos = stop
    if not fields:
        raise WireError("empty line")
    return fields


def format_line(cmd, **fields):
    """One message: ``cmd=CMD`` then ``key=value`` for each field in order
    (ints are written in decimal), rest-of-line keys last; ends with "\\n".
    A value that would break the framing is a programming error
    (ValueError)."""
    words = [f"cmd={cmd}"]
    tail = None
    for key, value in fields.items():
        value = str(value)
        if "\n" in value:
            raise ValueError(f"PMI field {key}: newline in value")
        if key in REST_OF_LINE:
            if tail is not None:
                raise ValueError("PMI: two rest-of-line fields in one message")
            tail = f"{key}={value}"
        elif " " in value:
            raise ValueError(f"PMI field {key}: space in value {value!r}")
        else:
            words.append(f"{key}={value}")
    if tail is not None:
        words.append(tail)
    return " ".join(words) + "\n"


def _clip(text, limit=40):
    return text if len(text) <= limit else text[:limit] + "..."


class LineSplitter:
    """Bounded framing of a byte stream into lines (str, no newline).

    ``feed(data)`` returns the complete lines now available.  A line longer
    than ``limit`` bytes is cut: its first ``limit + 1`` bytes are returned
    (so ``parse_line`` refuses it as too long, and the answer can still be
    named after its ``cmd=``) and the rest, up to its newline, is dropped.
    At most ``limit + 1`` bytes are ever held.  Bytes are decoded as UTF-8
    with surrogate escapes, so any byte string round-trips through
    ``encode_line``.
    """

    __slots__ = ("limit", "_buf", "_discarding")

    def __init__(self, limit=MAX_LINE):
        self.limit = limit
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data):
        lines = []
        start = 0
        while start < len(data):
            nl = data.find(b"\n", start)
            piece = data[start:] if nl < 0 else data[start:nl]
            start = len(data) if nl < 0 else nl + 1
            if self._discarding:
                if nl >= 0:
                    self._discarding = False
                continue
            room = self.limit + 1 - len(self._buf)
            if len(piece) >= room:  # the line is over the limit
                self._buf += piece[:room]
                lines.append(decode_line(bytes(self._buf)))
                self._buf.clear()
                self._discarding = nl < 0
                continue
            if nl < 0:
                self._buf += piece
                continue
            if self._buf:
                self._buf += piece
                piece = bytes(self._buf)
                self._buf.clear()
            lines.append(decode_line(piece))
        return lines

    @property
    def pending(self):
        """Bytes of an unfinished line held (at most ``limit``)."""
        return len(self._buf)


def decode_line(data):
    return data.decode("utf-8", "surrogateescape")


def encode_line(text):
    return text.encode("utf-8", "surrogateescape")
