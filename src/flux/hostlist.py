"""Ordered lists of hostnames and their RFC 29 compressed string form.

A hostlist string is a list of entries separated by commas or whitespace.
Each entry is a plain hostname or ``prefix[ranges]suffix``, where ``ranges``
is a comma-separated list of ``N`` or ``N-M`` (any order, repeats allowed;
leading zeros fix the width): ``"node[1-3,5],login0"``.  Only the first
bracket of an entry expands; the rest is kept literally in every host.

:class:`Hostlist` keeps the expanded hostnames in order (duplicates
included) and compresses them again when converted to a string: adjacent
hosts with the same prefix share one bracket, and consecutive numbers of a
compatible width become ``lo-hi`` ranges.
"""

import errno
import os
import re

__all__ = ["Hostlist", "HostlistTypeError", "decode"]

#: Largest number of hosts a single ``N-M`` range may expand to.
MAX_RANGE = 1 << 20

_RANGE = re.compile(r"([0-9]+)(?:-([0-9]+))?")
_NUMBERED = re.compile(r"(.*?)([0-9]+)", re.DOTALL)


class HostlistTypeError(TypeError, ValueError):
    """A hostname argument that is not a ``str``."""


def _oserror(code, msg=None):
    return OSError(code, msg or os.strerror(code))


def _invalid(s):
    return ValueError(f"Invalid hostlist: '{s}'")


def _entries(s):
    """Split a hostlist string into entries, or raise ValueError."""
    entries, cur, inside = [], [], False
    for ch in s:
        if ch == "[":
            if inside:
                raise _invalid(s)
            inside = True
        elif ch == "]":
            if not inside:
                raise _invalid(s)
            inside = False
        elif not inside and (ch == "," or ch.isspace()):
            if cur:
                entries.append("".join(cur))
                cur = []
            continue
        cur.append(ch)
    if inside:
        raise _invalid(s)
    if cur:
        entries.append("".join(cur))
    return entries


def _decode(s):
    """Expand a hostlist string into a list of hostnames."""
    hosts = []
    for entry in _entries(s):
        start = entry.find("[")
        if start < 0:
            hosts.append(entry)
            continue
        end = entry.index("]", start)
        prefix, suffix = entry[:start], entry[end + 1 :]
        for elem in entry[start + 1 : end].split(","):
            m = _RANGE.fullmatch(elem)
            if not m:
                raise _invalid(s)
            lo = int(m.group(1))
            hi = lo if m.group(2) is None else int(m.group(2))
            if hi < lo or hi - lo >= MAX_RANGE:
                raise _invalid(s)
            width = len(m.group(1))
            hosts.extend(f"{prefix}{n:0{width}d}{suffix}" for n in range(lo, hi + 1))
    return hosts


def _split(host):
    """Return (prefix, digits) for a host ending in digits, else None."""
    m = _NUMBERED.fullmatch(host)
    return (m.group(1), m.group(2)) if m else None


def _sort_key(host):
    """Order by prefix, then plain names, then width, then number.

    Two numbered hosts with the same prefix compare by number when their
    widths are compatible and the narrower one first otherwise; that
    relation is exactly the order of (width, number).
    """
    parts = _split(host)
    if parts is None:
        return (host.encode(), 0, 0, 0)
    prefix, digits = parts
    return (prefix.encode(), 1, len(digits), int(digits))


def _encode(hosts):
    """Compress a list of hostnames into a hostlist string."""
    out = []
    parsed = [_split(h) for h in hosts]
    i, n = 0, len(hosts)
    while i < n:
        if parsed[i] is None:
            out.append(hosts[i])
            i += 1
            continue
        prefix = parsed[i][0]
        start = i
        ranges = []  # [lo, hi, width]
        while i < n and parsed[i] is not None and parsed[i][0] == prefix:
            digits = parsed[i][1]
            num = int(digits)
            last = ranges[-1] if ranges else None
            if last and num == last[1] + 1 and f"{num:0{last[2]}d}" == digits:
                last[1] = num
            else:
                ranges.append([num, num, len(digits)])
            i += 1
        if i - start == 1:
            out.append(hosts[start])
            continue
        body = ",".join(
            f"{lo:0{w}d}" if lo == hi else f"{lo:0{w}d}-{hi:0{w}d}"
            for lo, hi, w in ranges
        )
        out.append(f"{prefix}[{body}]")
    return ",".join(out)


def _hosts_of(arg):
    """Expand a str or an iterable of str into a list of hostnames."""
    if isinstance(arg, str):
        return _decode(arg)
    if isinstance(arg, Hostlist):
        return list(arg._hosts)
    if isinstance(arg, (bytes, bytearray)) or not hasattr(arg, "__iter__"):
        raise TypeError(f"Hostlist: invalid argument type {type(arg).__name__}")
    hosts = []
    for item in arg:
        if not isinstance(item, str):
            raise TypeError(f"Hostlist: invalid item type {type(item).__name__}")
        hosts.extend(_decode(item))
    return hosts


class Hostlist:
    """An ordered list of hostnames (RFC 29), duplicates allowed.

    ``arg`` is a hostlist string or an iterable of hostlist strings.
    """

    def __init__(self, arg=""):
        self._hosts = _hosts_of(arg)

    def __str__(self):
        return _encode(self._hosts)

    def encode(self):
        """Return the compressed hostlist string."""
        return _encode(self._hosts)

    def __repr__(self):
        return f"Hostlist('{self}')"

    def count(self):
        """Return the number of hosts."""
        return len(self._hosts)

    def __len__(self):
        return len(self._hosts)

    def __iter__(self):
        return iter(list(self._hosts))

    def expand(self):
        """Return the hostnames as a list."""
        return list(self._hosts)

    def copy(self):
        """Return a new Hostlist with the same hosts."""
        return Hostlist(self)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Hostlist(self._hosts[index])
        if isinstance(index, int):
            if not -len(self._hosts) <= index < len(self._hosts):
                raise IndexError("Hostlist index out of range")
            return self._hosts[index]
        if isinstance(index, (str, bytes)) or not hasattr(index, "__iter__"):
            raise TypeError("Hostlist indices must be int, slice or iterable of int")
        result = Hostlist()
        for i in index:
            if not isinstance(i, int):
                raise TypeError("Hostlist indices must be int")
            result._hosts.append(self[i])
        return result

    def find(self, host):
        """Return the index of the first occurrence of ``host``.

        Raises FileNotFoundError if it is missing and OSError(EINVAL) if
        ``host`` is not a single valid hostname.
        """
        if not isinstance(host, str):
            raise HostlistTypeError(f"hostname must be a str, not {type(host).__name__}")
        if not host or any(c in "[]," or c.isspace() for c in host):
            raise _oserror(errno.EINVAL)
        try:
            return self._hosts.index(host)
        except ValueError:
            raise _oserror(errno.ENOENT) from None

    def __contains__(self, host):
        try:
            self.find(host)
        except FileNotFoundError:
            return False
        return True

    def index(self, hosts, ignore_nomatch=False):
        """Return the index of the first occurrence of each host in ``hosts``.

        Unless ``ignore_nomatch`` is true, raise FileNotFoundError naming the
        hosts that are missing.
        """
        result, missing = [], []
        for host in Hostlist(hosts):
            try:
                result.append(self.find(host))
            except FileNotFoundError:
                missing.append(host)
        if missing and not ignore_nomatch:
            word = "host" if len(missing) == 1 else "hosts"
            raise _oserror(errno.ENOENT, f"{word} '{Hostlist(missing)}' not found")
        return result

    def append(self, *args):
        """Append hosts from each argument; return the number added."""
        added = [h for arg in args for h in _hosts_of(arg)]
        self._hosts.extend(added)
        return len(added)

    def delete(self, hosts):
        """Remove the first occurrence of each host in ``hosts``.

        Return the number of hosts removed; unknown hosts are ignored.
        """
        try:
            names = _hosts_of(hosts)
        except ValueError as exc:
            raise _oserror(errno.EINVAL, str(exc)) from None
        count = 0
        for name in names:
            try:
                self._hosts.remove(name)
                count += 1
            except ValueError:
                pass
        return count

    def sort(self):
        """Sort the hosts in place (keeping duplicates); return self."""
        self._hosts.sort(key=_sort_key)
        return self

    def uniq(self):
        """Sort the hosts and drop duplicates; return self."""
        self.sort()
        self._hosts = [
            h for i, h in enumerate(self._hosts) if i == 0 or h != self._hosts[i - 1]
        ]
        return self


def decode(arg):
    """Decode a hostlist; the same as ``Hostlist(arg)``."""
    return Hostlist(arg)
