"""Sets of non-negative integer ids and their RFC 22 string form.

An idset string is a comma-separated list of ids (``N``) and inclusive
ranges (``N-M`` with ``M > N``), in strictly ascending, non-overlapping
order, optionally wrapped in one pair of brackets: ``"0-3,7"``,
``"[1,5-9]"``.  Decoding is strict: no leading zeros, signs or whitespace.

:class:`IDset` stores its ids as a sorted list of disjoint, non-adjacent
inclusive ``(lo, hi)`` ranges, so sparse or dense sets of ids up to 2^31 stay
small and membership tests are a binary search.
"""

import errno
import os
import re
from bisect import bisect_left, bisect_right

__all__ = [
    "IDSET_FLAG_BRACKETS",
    "IDSET_FLAG_RANGE",
    "IDSET_INVALID_ID",
    "IDset",
    "decode",
]

IDSET_FLAG_BRACKETS = 2
IDSET_FLAG_RANGE = 4
IDSET_INVALID_ID = 4294967294

_ENCODE_FLAGS = IDSET_FLAG_BRACKETS | IDSET_FLAG_RANGE
_MAX_ID = 2**31 - 1  # largest id an IDset can hold
_ELEMENT = re.compile(r"(0|[1-9][0-9]*)(?:-(0|[1-9][0-9]*))?")


def _lo(r):
    return r[0]


def _hi(r):
    return r[1]


def _oserror(code):
    return OSError(code, os.strerror(code))


def _check_id(i):
    """Validate an id used as a query (membership, ``next``)."""
    if isinstance(i, bool) or not isinstance(i, int):
        raise TypeError(f"idset id must be an int, not {type(i).__name__}")
    if i < 0:
        raise ValueError(f"idset id must be non-negative: {i}")
    return i


def _check_flags(flags):
    if isinstance(flags, bool) or not isinstance(flags, int):
        raise TypeError("idset flags must be an int")
    if flags & ~_ENCODE_FLAGS:
        raise _oserror(errno.EINVAL)
    return flags


def _parse(s):
    """Decode an RFC 22 idset string into a list of ranges, or None."""
    if s.startswith("[") and s.endswith("]"):
        s = s[1:-1]
    ranges = []
    for elem in s.split(","):
        if not elem:
            continue
        m = _ELEMENT.fullmatch(elem)
        if not m:
            return None
        lo = int(m.group(1))
        hi = lo if m.group(2) is None else int(m.group(2))
        if hi > _MAX_ID or (m.group(2) is not None and hi <= lo):
            return None
        if ranges and lo <= ranges[-1][1]:
            return None  # not strictly ascending
        if ranges and lo == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], hi)
        else:
            ranges.append((lo, hi))
    return ranges


class IDset:
    """A set of non-negative integer ids (RFC 22).

    ``arg`` may be another IDset (copied), an int (one id), an idset string,
    or any other iterable of ids (sorted, joined with commas and decoded).
    ``flags`` (``IDSET_FLAG_RANGE``, ``IDSET_FLAG_BRACKETS``) control how
    ``str()`` encodes the set.
    """

    __hash__ = None  # mutable

    def __init__(self, arg="", flags=IDSET_FLAG_RANGE):
        self._flags = _check_flags(flags)
        self._ranges = []
        if isinstance(arg, IDset):
            self._ranges = list(arg._ranges)
            return
        if isinstance(arg, int) and not isinstance(arg, bool):
            self.set(arg)
            return
        if isinstance(arg, (str, float)) or arg is None:
            pass
        elif hasattr(arg, "__iter__"):
            arg = ",".join(str(i) for i in sorted(arg))
        if not isinstance(arg, str):
            raise TypeError(f"IDset(): invalid argument type {type(arg).__name__}")
        ranges = _parse(arg)
        if ranges is None:
            raise ValueError(f"IDset(): Invalid argument: {arg}")
        self._ranges = ranges

    # --- encoding -------------------------------------------------------

    def set_flags(self, flags):
        """Set the default flags used by ``str()`` and ``encode()``."""
        self._flags = _check_flags(flags)
        return self

    def encode(self, flags=None):
        """Return the idset string, using ``flags`` or the set's own flags."""
        flags = self._flags if flags is None else _check_flags(flags)
        parts = []
        for lo, hi in self._ranges:
            if flags & IDSET_FLAG_RANGE and hi > lo:
                parts.append(f"{lo}-{hi}")
            else:
                parts.extend(str(i) for i in range(lo, hi + 1))
        result = ",".join(parts)
        if flags & IDSET_FLAG_BRACKETS and self.count() > 1:
            result = f"[{result}]"
        return result

    def __str__(self):
        return self.encode()

    def __repr__(self):
        return f"IDset('{self.encode(IDSET_FLAG_RANGE)}')"

    # --- queries --------------------------------------------------------

    def count(self):
        """Return the number of ids in the set."""
        return sum(hi - lo + 1 for lo, hi in self._ranges)

    __len__ = count

    def __bool__(self):
        return bool(self._ranges)

    def __iter__(self):
        for lo, hi in self._ranges:
            yield from range(lo, hi + 1)

    def expand(self):
        """Return the ids as an ascending list."""
        return list(self)

    def test(self, i):
        """Return True if id ``i`` is in the set."""
        _check_id(i)
        k = bisect_right(self._ranges, i, key=_lo) - 1
        return k >= 0 and self._ranges[k][1] >= i

    __contains__ = test
    __getitem__ = test

    def first(self):
        """Return the smallest id, or ``IDSET_INVALID_ID`` if empty."""
        return self._ranges[0][0] if self._ranges else IDSET_INVALID_ID

    def last(self):
        """Return the largest id, or ``IDSET_INVALID_ID`` if empty."""
        return self._ranges[-1][1] if self._ranges else IDSET_INVALID_ID

    def next(self, i):
        """Return the smallest id greater than ``i``, or ``IDSET_INVALID_ID``."""
        _check_id(i)
        k = bisect_left(self._ranges, i + 1, key=_hi)
        if k == len(self._ranges):
            return IDSET_INVALID_ID
        return max(self._ranges[k][0], i + 1)

    def equal(self, other):
        """Return True if ``other`` (an IDset) holds the same ids."""
        if not isinstance(other, IDset):
            raise TypeError("IDset can only be compared with another IDset")
        return self._ranges == other._ranges

    __eq__ = equal

    def __ne__(self, other):
        return not self.equal(other)

    # --- modification ---------------------------------------------------

    def _check_range(self, start, end):
        end = start if end is None else end
        _check_id(start)
        _check_id(end)
        if end < start:
            raise ValueError(f"end ({end}) is less than start ({start})")
        if end >= IDSET_INVALID_ID:
            raise _oserror(errno.EINVAL)
        if end > _MAX_ID:
            raise _oserror(errno.ERANGE)
        return start, end

    def _insert(self, lo, hi):
        r = self._ranges
        i = bisect_left(r, lo - 1, key=_hi)
        j = bisect_right(r, hi + 1, key=_lo)
        if i < j:
            lo, hi = min(lo, r[i][0]), max(hi, r[j - 1][1])
        r[i:j] = [(lo, hi)]

    def _remove(self, lo, hi):
        r = self._ranges
        i = bisect_left(r, lo, key=_hi)
        j = bisect_right(r, hi, key=_lo)
        keep = []
        if i < j:
            if r[i][0] < lo:
                keep.append((r[i][0], lo - 1))
            if r[j - 1][1] > hi:
                keep.append((hi + 1, r[j - 1][1]))
        r[i:j] = keep

    def set(self, start, end=None):
        """Add ids ``start`` through ``end`` (inclusive); return self."""
        self._insert(*self._check_range(start, end))
        return self

    def clear(self, start, end=None):
        """Remove ids ``start`` through ``end`` (inclusive); return self."""
        self._remove(*self._check_range(start, end))
        return self

    def __setitem__(self, i, value):
        if not isinstance(value, int) or value not in (0, 1):
            raise TypeError("IDset item value must be True, False, 1 or 0")
        if value:
            self.set(i)
        else:
            self.clear(i)

    # --- set operations -------------------------------------------------

    def copy(self):
        """Return a copy (with the default flags)."""
        return IDset(self)

    def add(self, x):
        """Add the ids in ``x`` (IDset, str, iterable or int); return self."""
        for lo, hi in IDset(x)._ranges:
            self._insert(lo, hi)
        return self

    def subtract(self, x):
        """Remove the ids in ``x`` (IDset, str, iterable or int); return self."""
        for lo, hi in IDset(x)._ranges:
            self._remove(lo, hi)
        return self

    def union(self, *args):
        """Return a new set with the ids of self and every argument."""
        result = self.copy()
        for x in args:
            result.add(x)
        return result

    def difference(self, *args):
        """Return a new set with the ids of self not in any argument."""
        result = self.copy()
        for x in args:
            result.subtract(x)
        return result

    def intersect(self, *args):
        """Return a new set with the ids present in self and every argument."""
        ranges = self._ranges
        for x in args:
            ranges = _intersect(ranges, IDset(x)._ranges)
        result = IDset()
        result._ranges = list(ranges)
        return result

    def __iadd__(self, x):
        return self.add(x)

    def __isub__(self, x):
        return self.subtract(x)

    __add__ = __or__ = __radd__ = __ror__ = union
    __and__ = __rand__ = intersect
    __sub__ = difference

    def __rsub__(self, x):
        return IDset(x).subtract(self)


def _intersect(a, b):
    """Intersect two sorted lists of disjoint ranges."""
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def decode(s):
    """Decode an idset string; the same as ``IDset(s)``."""
    return IDset(s)
