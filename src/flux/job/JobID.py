"""Flux job ids (RFC 19 FLUIDs) and their string encodings.

A job id is a 64-bit FLUID: 40 bits of milliseconds since the instance
epoch, 14 bits of generator id, 10 bits of sequence number.  It has several
human-facing spellings, all accepted by `id_parse` and produced by
`id_encode`:

============  ==========================================================
``dec``       ``6787342413402046``
``hex``       ``0x181d0d4d850fbe``
``dothex``    ``0018.1d0d.4d85.0fbe`` (four 16-bit groups)
``kvs``       ``job.0018.1d0d.4d85.0fbe``
``f58``       ``ƒuzzybunny`` (base58; ``f`` prefix outside UTF-8 locales)
``f58plain``  ``fuzzybunny`` (always the ASCII ``f`` prefix)
``words``     ``cake-plume-nepal--neuron-pencil-academy`` (mnemonicode)
``emoji``     ``👴😱🔚🎮🕙🚩`` (base 576)
============  ==========================================================

`JobID` is an `int` subclass carrying the string it was made from
(``.orig``) and one property per encoding.  The word list and emoji table
are package data, loaded on first use only.
"""

import errno
import locale
import os
import re

__all__ = ["JobID", "id_parse", "id_encode"]

#: Exclusive upper bound of a FLUID's timestamp field (``id >> 24``).
TIMESTAMP_LIMIT = 1 << 40
_U64_LIMIT = 1 << 64

F58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_F58_VALUE = {ch: i for i, ch in enumerate(F58_ALPHABET)}
_F58_MAX_DIGITS = 12
_F58_UTF8_PREFIX = "\u0192"  # ƒ

_EMOJI_BASE = 576
_EMOJI_MAX_DIGITS = 7  # 576**7 > 2**64

_MN_BASE = 1626  # words used for full 32-bit groups (of 1633)

_DOTHEX = re.compile(r"([0-9a-fA-F]{1,4})\.([0-9a-fA-F]{1,4})\."
                     r"([0-9a-fA-F]{1,4})\.([0-9a-fA-F]{1,4})")
_DEC = re.compile(r"([0-9]+)\s*")
_HEX = re.compile(r"0x([0-9a-fA-F]+)\s*")


# ---------------------------------------------------------------------------
# Package data (lazy)

_tables = {}


def _load_table(filename):
    """Return the non-comment lines of package data file ``filename``."""
    table = _tables.get(filename)
    if table is None:
        from importlib import resources

        text = resources.files("flux.job").joinpath("data", filename).read_text(
            encoding="utf-8"
        )
        table = [
            line.strip()
            for line in text.splitlines()
            if line.strip() and not line.startswith("#")
        ]
        _tables[filename] = table
    return table


def _words():
    return _load_table("mnemonicode-words.txt")


def _emoji():
    return _load_table("fluid-emoji.txt")


def _index(filename):
    """Return (and cache) a reverse lookup table: entry -> value."""
    key = filename + ":index"
    index = _tables.get(key)
    if index is None:
        index = {entry: i for i, entry in enumerate(_load_table(filename))}
        _tables[key] = index
    return index


# ---------------------------------------------------------------------------
# Encoders: int (0 <= id < 2**64) -> str


def _digits(value, base):
    """Digits of ``value`` in ``base``, most significant first (0 -> [0])."""
    digits = []
    while True:
        value, rem = divmod(value, base)
        digits.append(rem)
        if value == 0:
            return digits[::-1]


def f58_prefix():
    """Return the f58 prefix for this process: ``ƒ`` or ``f``.

    ``ƒ`` is used only when the locale's character set is multibyte UTF-8
    and ``FLUX_F58_FORCE_ASCII`` is not set in the environment.
    """
    if "FLUX_F58_FORCE_ASCII" in os.environ:
        return "f"
    try:
        codeset = locale.nl_langinfo(locale.CODESET)
    except (AttributeError, ValueError):  # platforms without nl_langinfo
        codeset = locale.getpreferredencoding(False)
    if codeset.upper().replace("-", "") == "UTF8":
        return _F58_UTF8_PREFIX
    return "f"


def _encode_f58plain(value):
    return "f" + "".join(F58_ALPHABET[d] for d in _digits(value, 58))


def _encode_f58(value):
    return f58_prefix() + _encode_f58plain(value)[1:]


def _encode_dothex(value):
    return "%04x.%04x.%04x.%04x" % (
        (value >> 48) & 0xFFFF,
        (value >> 32) & 0xFFFF,
        (value >> 16) & 0xFFFF,
        value & 0xFFFF,
    )


def _encode_words(value):
    """Mnemonicode: each little-endian 32-bit half becomes three words."""
    words = _words()
    groups = []
    for half in (value & 0xFFFFFFFF, value >> 32):
        group = []
        for _ in range(3):
            half, rem = divmod(half, _MN_BASE)
            group.append(words[rem])
        groups.append("-".join(group))
    return "--".join(groups)


def _encode_emoji(value):
    table = _emoji()
    return "".join(table[d] for d in _digits(value, _EMOJI_BASE))


_ENCODERS = {
    "dec": str,
    "hex": lambda value: "0x%x" % value,
    "dothex": _encode_dothex,
    "kvs": lambda value: "job." + _encode_dothex(value),
    "words": _encode_words,
    "f58": _encode_f58,
    "f58plain": _encode_f58plain,
    "emoji": _encode_emoji,
}

#: Names accepted by `id_encode` and `JobID.encode`.
ENCODINGS = tuple(_ENCODERS)


# ---------------------------------------------------------------------------
# Decoders: str -> int, or None when the string is not valid


def _decode_dothex(s):
    m = _DOTHEX.fullmatch(s)
    if not m:
        return None
    value = 0
    for group in m.groups():
        value = (value << 16) | int(group, 16)
    return value


def _decode_words(s):
    """Decode ``w1-w2-w3--w4-w5-w6`` (any run of dashes separates words)."""
    parts = [p for p in s.lower().split("-") if p]
    if len(parts) != 6:
        return None
    index = _index("mnemonicode-words.txt")
    value = 0
    for shift, group in ((0, parts[:3]), (32, parts[3:])):
        half = 0
        for word in reversed(group):
            digit = index.get(word)
            if digit is None or digit >= _MN_BASE:
                return None
            half = half * _MN_BASE + digit
        if half >= 1 << 32:
            return None
        value |= half << shift
    return value


def _decode_f58(digits):
    if not 1 <= len(digits) <= _F58_MAX_DIGITS:
        return None
    value = 0
    for ch in digits:
        digit = _F58_VALUE.get(ch)
        if digit is None:
            return None
        value = value * 58 + digit
    return value


def _is_emoji(s):
    """True if ``s`` looks like the emoji encoding (UTF-8 starts F0 9F)."""
    return "\U0001F000" <= s[0] <= "\U0001FFFF"


def _decode_emoji(s):
    raw = s.encode("utf-8", "surrogatepass")
    if not 4 <= len(raw) <= 4 * _EMOJI_MAX_DIGITS or len(raw) % 4:
        return None
    index = _index("fluid-emoji.txt")
    value = 0
    for i in range(0, len(raw), 4):
        try:
            digit = index.get(raw[i : i + 4].decode("utf-8"))
        except UnicodeDecodeError:
            return None
        if digit is None:
            return None
        value = value * _EMOJI_BASE + digit
    return value


def _decode_number(s):
    m = _HEX.fullmatch(s)
    if m:
        return int(m.group(1), 16)
    m = _DEC.fullmatch(s)
    if m:
        return int(m.group(1))
    return None


def _decode(s):
    """Decode any encoding of a job id (RFC 19 rules), or return None."""
    s = s.lstrip()
    if s.startswith("job."):
        s = s[4:]
    if not s:
        return None
    if "." in s:
        return _decode_dothex(s)
    if "-" in s:
        return _decode_words(s)
    if s[0] in ("f", _F58_UTF8_PREFIX):
        return _decode_f58(s[1:])
    if _is_emoji(s):
        return _decode_emoji(s)
    return _decode_number(s)


def _valid(value):
    return value is not None and value < _U64_LIMIT and (value >> 24) < TIMESTAMP_LIMIT


# ---------------------------------------------------------------------------
# Public functions


def id_parse(jobid_str):
    """Return the integer job id spelled by ``jobid_str`` in any encoding.

    Raises ``OSError(EINVAL)`` if the string is not a valid job id.
    """
    if isinstance(jobid_str, bytes):
        jobid_str = jobid_str.decode("utf-8", "surrogateescape")
    if not isinstance(jobid_str, str):
        raise TypeError(f"job id must be a string, not {type(jobid_str).__name__}")
    value = _decode(jobid_str)
    if not _valid(value):
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    return value


def id_encode(jobid, encoding="f58"):
    """Return job id ``jobid`` (an int) as a string in ``encoding``.

    ``encoding`` is one of `ENCODINGS` (case-insensitive); anything else
    raises ``OSError(EPROTO)``.  An id outside the unsigned 64-bit range
    raises ``OSError(EOVERFLOW)``.
    """
    value = int(jobid)
    encoder = _ENCODERS.get(encoding.lower() if isinstance(encoding, str) else None)
    if encoder is None:
        raise OSError(errno.EPROTO, f"unknown job id encoding: {encoding}")
    if not 0 <= value < _U64_LIMIT:
        raise OSError(errno.EOVERFLOW, f"job id out of range: {value}")
    return encoder(value)


class JobID(int):
    """A Flux job id: an `int` that knows its encodings.

    ``JobID(value)`` accepts an int (taken as is, not validated), another
    `JobID` (copied by parsing its ``orig`` again, so ``JobID(JobID(-1))``
    is a `ValueError`), or a string (or bytes) in any encoding; an
    unparsable string raises `ValueError`.  ``orig`` holds the original
    string form.  ``str()`` gives the f58 encoding and ``repr()``
    ``JobID(<decimal>)``; for an int outside the 64-bit unsigned range
    (``JobID(-1)``) they and every encoding raise `OverflowError`, as
    upstream's conversion to ``uint64_t`` does.
    """

    def __new__(cls, value):
        if isinstance(value, JobID):
            jobid = _decode(value.orig)
            if not _valid(jobid):
                raise ValueError(f"{value.orig} is not a valid Flux jobid")
        elif isinstance(value, int):
            jobid = value
        else:
            text = value.decode("utf-8", "surrogateescape") if isinstance(
                value, bytes
            ) else str(value)
            jobid = _decode(text)
            if not _valid(jobid):
                raise ValueError(f"{text} is not a valid Flux jobid")
        return super().__new__(cls, jobid)

    def __init__(self, value):
        if isinstance(value, JobID):
            self.orig = value.orig
        elif isinstance(value, bytes):
            self.orig = value.decode("utf-8", "surrogateescape")
        else:
            self.orig = str(value)

    def encode(self, encoding="dec"):
        """Return this id in ``encoding`` (see `ENCODINGS`)."""
        if not 0 <= self < _U64_LIMIT:
            raise OverflowError(f"job id out of range: {int(self)}")
        return id_encode(self, encoding)

    @property
    def dec(self):
        """Decimal string."""
        return self.encode("dec")

    @property
    def hex(self):
        """``0x`` hexadecimal string."""
        return self.encode("hex")

    @property
    def dothex(self):
        """Four dot-separated 16-bit hex groups."""
        return self.encode("dothex")

    @property
    def kvs(self):
        """KVS directory name: ``job.`` + dothex."""
        return self.encode("kvs")

    @property
    def words(self):
        """Mnemonicode words."""
        return self.encode("words")

    @property
    def f58(self):
        """Base58 with the locale-dependent ``ƒ``/``f`` prefix."""
        return self.encode("f58")

    @property
    def f58plain(self):
        """Base58 with the ASCII ``f`` prefix."""
        return self.encode("f58plain")

    @property
    def emoji(self):
        """Base 576 emoji digits."""
        return self.encode("emoji")

    def __str__(self):
        return self.encode("f58")

    def __repr__(self):
        return f"JobID({self.dec})"
