"""``ResourceCount``: an RFC 14 / RFC 45 resource count (spec 21.7).

``ResourceCount.from_count_spec(v, default=1)`` parses a count given as an
int, a dict ``{min, max?, operator="+", operand=1}`` or a string (``"4"``,
``"2-8"``, ``"2+"``, ``"2-8:2:*"``, ``"[2,3,5]"``); other types give
``(default, default)``.  A count is ``min``, ``max`` (``None``: unbounded)
and, for stepped or listed counts, the explicit ``values`` (an ``IDset``).
"""

from flux.idset import IDset

__all__ = ["ResourceCount"]

MAX_VALUES = 65536


def _expand(lo, hi, operator, operand, rfc="RFC 14 count"):
    if operator not in ("+", "*", "^"):
        raise ValueError(f"{rfc}: invalid operator '{operator}'")
    if operator == "+" and operand <= 0:
        raise ValueError(f"{rfc}: operand must be > 0 for '+'")
    if operator in ("*", "^") and operand <= 1:
        raise ValueError(f"{rfc}: operand must be > 1 for '{operator}'")
    if operator == "^" and lo < 2:
        raise ValueError(f"{rfc}: min must be >= 2 for '^'")
    values = []
    v = lo
    while v <= hi:
        values.append(v)
        if len(values) > MAX_VALUES:
            raise ValueError(f"{rfc}: more than {MAX_VALUES} values")
        v = v + operand if operator == "+" else v * operand if operator == "*" else v ** operand
    if not values:
        raise ValueError(f"{rfc}: no values")
    return IDset(values)


class ResourceCount:
    """A count: ``min``, ``max`` (None: unbounded), explicit ``values``."""

    __slots__ = ("min", "max", "_values")

    def __init__(self, min, max, values=None):
        self.min = min
        self.max = max
        self._values = values

    @property
    def values(self):
        return self._values

    @classmethod
    def from_count_spec(cls, v, default=1):
        if isinstance(v, int):  # bool too
            v = int(v)
            if v < 1:
                raise ValueError(f"RFC 14 count: {v} must be >= 1")
            return cls(v, v)
        if isinstance(v, dict):
            return cls._from_dict(v, default)
        if isinstance(v, str):
            return cls._from_string(v)
        return cls(default, default)

    @classmethod
    def _from_dict(cls, spec, default):
        lo = spec.get("min", default)
        hi = spec.get("max")
        operator = spec.get("operator", "+")
        operand = spec.get("operand", 1)
        if not isinstance(lo, int) or lo < 1:
            raise ValueError(f"RFC 14 count: min ({lo}) must be an integer >= 1")
        if hi is None:
            if operator != "+" or operand != 1:
                raise ValueError("RFC 14 unbounded count: only operator '+' with"
                                 " operand 1 is allowed")
            return cls(lo, None)
        if not isinstance(hi, int) or hi < lo:
            raise ValueError(f"RFC 14 count: max ({hi}) must be >= min ({lo})")
        if not isinstance(operand, int):
            raise ValueError(f"RFC 14 count: operand ({operand}) must be an integer")
        if operator == "+" and operand == 1:
            return cls(lo, hi)
        return cls(lo, hi, _expand(lo, hi, operator, operand))

    @classmethod
    def _from_string(cls, text):
        text = text.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1].strip()
        if "+" in text.split(":")[0]:
            head, _, rest = text.partition(":")
            if not head.endswith("+") or (rest and rest != "1:+"):
                raise ValueError(f"RFC 45 unbounded count '{text}': only"
                                 " 'N+' or 'N+:1:+' is allowed")
            lo = int(head[:-1])
            if lo < 1:
                raise ValueError(f"RFC 14 count: {lo} must be >= 1")
            return cls(lo, None)
        if ":" in text:
            parts = text.split(":")
            if len(parts) > 3:
                raise ValueError(f"RFC 14 count: invalid count '{text}'")
            lo, hi = cls._range(parts[0])
            operand = int(parts[1])
            operator = parts[2] if len(parts) == 3 else "+"
            if operator == "+" and operand == 1:
                return cls(lo, hi)
            return cls(lo, hi, _expand(lo, hi, operator, operand))
        if "," in text:
            values = IDset(text)
            if not values:
                raise ValueError("RFC 14 count: empty idset")
            if values.first() < 1:
                raise ValueError("RFC 14 count: values must be >= 1")
            return cls(values.first(), values.last(), values)
        lo, hi = cls._range(text)
        return cls(lo, hi)

    @staticmethod
    def _range(text):
        if "-" in text:
            a, _, b = text.partition("-")
            lo, hi = int(a), int(b)
        else:
            lo = hi = int(text)
        if lo < 1:
            raise ValueError(f"RFC 14 count: {lo} must be >= 1")
        if hi < lo:
            raise ValueError(f"RFC 14 count: max ({hi}) must be >= min ({lo})")
        return lo, hi

    def scaled(self, factor):
        if factor == 1:
            return self
        values = None
        if self._values is not None:
            values = IDset([v * factor for v in self._values])
        hi = None if self.max is None else self.max * factor
        return ResourceCount(self.min * factor, hi, values)

    def valid_counts(self, avail):
        """The valid counts <= min(avail, max), largest first, down to min."""
        if avail < self.min:
            return
        top = avail if self.max is None else min(avail, self.max)
        if self._values is not None:
            for v in reversed(list(self._values)):
                if v <= top:
                    yield v
            return
        yield from range(top, self.min - 1, -1)

    def __repr__(self):
        if self._values is not None:
            return f"ResourceCount({self.min}, {self.max}, values={self._values!r})"
        return f"ResourceCount({self.min}, {self.max})"
