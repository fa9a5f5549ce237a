"""Durations and output formatting behind `flux.util`.

This module holds the formatting half of `flux.util` (everything here is
re-exported from there, which is the public import path):

- `parse_fsd` / `fsd`: Flux Standard Durations (RFC 23);
- `UtilDatetime`: a datetime whose format spec is ``STRFTIME::PYSPEC``;
- `UtilFormatter`: a `string.Formatter` with the Flux conversions
  (``!d !D !F !H !P``) and spec suffixes (``h`` and ``+``);
- `OutputFormat`: the ``flux jobs -o`` format language (sort prefix,
  ``?:`` / ``+:`` / ``?+:`` sentinels, headers, filtering, printing);
- `DisplayValue`: the ordering used when sorting displayed values.

A format spec as handled here has up to three parts: an optional strftime
part ending in ``::`` (datetime fields only), a standard Python format spec,
and the Flux suffixes ``h`` then ``+``.
"""

import math
import re
import shutil
import string
import time
from datetime import datetime, timedelta, timezone
from functools import total_ordering
from operator import attrgetter

__all__ = [
    "parse_fsd",
    "fsd",
    "UtilDatetime",
    "UtilFormatter",
    "OutputFormat",
    "DisplayValue",
    "FormatSpec",
    "empty_outputs",
]

# ---------------------------------------------------------------------------
# Flux Standard Duration (RFC 23)

_FSD_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_FSD_INFINITY = ("inf", "infinity", "INF", "INFINITY")


def parse_fsd(fsd_string):
    """Return the number of seconds (a float) in Flux Standard Duration
    ``fsd_string``, e.g. ``"1.5m"`` -> 90.0.

    One unit suffix (``ms s m h d``; none means seconds) is stripped and the
    rest is parsed by `float()`. Exactly ``inf``, ``infinity``, ``INF`` and
    ``INFINITY`` mean infinity. Anything else that is negative, NaN, infinite
    or unparsable raises ``ValueError("invalid Flux standard duration")``.
    """
    if fsd_string in _FSD_INFINITY:
        return math.inf
    number, multiplier = fsd_string, 1.0
    for unit in ("ms", "s", "m", "h", "d"):
        if fsd_string.endswith(unit):
            number, multiplier = fsd_string[: -len(unit)], _FSD_UNITS[unit]
            break
    try:
        value = float(number) * multiplier
    except ValueError:
        raise ValueError("invalid Flux standard duration") from None
    if value < 0 or math.isnan(value) or math.isinf(value):
        raise ValueError("invalid Flux standard duration")
    return value


def fsd(secs):
    """Render ``secs`` as a short Flux Standard Duration string.

    ``inf`` -> ``"inf"``; under 1ms (negatives too) -> ``"0s"``; under 10s
    ``"%.3fs"``; under a minute ``"%.4gs"``; then ``"%.4g"`` followed by
    ``m``, ``h`` or ``d``. A non-numeric argument raises `TypeError`.
    """
    if secs == math.inf:
        return "inf"
    if secs < 1.0e-3:
        return "0s"
    if secs < 10.0:
        return "%.3fs" % secs
    if secs < 60.0:
        return "%.4gs" % secs
    if secs < 3600.0:
        return "%.4gm" % (secs / 60.0)
    if secs < 86400.0:
        return "%.4gh" % (secs / 3600.0)
    return "%.4gd" % (secs / 86400.0)


# ---------------------------------------------------------------------------
# Datetimes and the Flux string.Formatter


_EPOCH_ISO = {}  # the local time zone (as time.tzset() leaves it) -> text


def _local_epoch_iso():
    """The epoch in local time, ``%FT%T`` (computed once per time zone:
    it is compared with every value of an ``h`` column)."""
    zone = (time.timezone, time.altzone, time.daylight, time.tzname)
    text = _EPOCH_ISO.get(zone)
    if text is None:
        text = _EPOCH_ISO[zone] = datetime.fromtimestamp(0.0).strftime("%FT%T")
    return text


def empty_outputs():
    """Strings that the ``h`` suffix (and the ``?:`` sentinel) treat as empty:
    ``"" "0s" "0.0" "0:00:00" "1970-01-01T00:00:00"`` and the local epoch
    in ``%FT%T`` form."""
    return ("", "0s", "0.0", "0:00:00", "1970-01-01T00:00:00", _local_epoch_iso())


_empty_strings = empty_outputs


class UtilDatetime(datetime):
    """A `datetime` with a two-part format spec, ``STRFTIME::PYSPEC``.

    The strftime part (default ``%FT%T``) renders the time as a string, then
    the Python spec (e.g. ``>12``) is applied to that string. The epoch
    renders as ``""``; a trailing ``h`` on the Python spec turns an empty
    result into ``"-"``. Example: ``f"{t:%b%d %R::>12}"`` -> ``" Jun10 08:00"``.
    """

    def _is_epoch(self):
        if self.tzinfo is None:
            return self == datetime.fromtimestamp(0.0)
        return self == datetime.fromtimestamp(0.0, timezone.utc)

    def __format__(self, spec):
        timefmt, _, pyspec = spec.partition("::")
        text = "" if self._is_epoch() else self.strftime(timefmt or "%FT%T")
        if pyspec.endswith("h"):
            pyspec = pyspec[:-1]
            if not text:
                text = "-"
        return format(text, pyspec)


def _reject_string(value, conv):
    if isinstance(value, (str, bytes)):
        raise TypeError(f"conversion !{conv} needs a number, got {value!r}")


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_spec(spec):
    """True if ``spec`` ends in a numeric presentation type (``.1%``, ``.2f``)."""
    match = _SPEC_RE.match(spec)
    return bool(match and match.group("type") and match.group("type") not in "s")


def _text_spec(spec):
    """``spec`` without a numeric type and precision, to print ``"-"`` with."""
    match = _SPEC_RE.match(spec)
    if not match or not _number_spec(spec):
        return spec
    return (match.group("fill_align") or "") + (match.group("width") or "")


class UtilFormatter(string.Formatter):
    """`string.Formatter` with Flux conversions and spec suffixes.

    Conversions: ``!d`` epoch -> `UtilDatetime`; ``!D`` epoch -> local
    ``%FT%T`` string; ``!F`` seconds -> `fsd`; ``!H`` seconds -> ``H:MM:SS``;
    ``!P`` fraction -> percentage. An empty string converts to an empty
    result (``!d``: the epoch, which renders empty); another non-numeric
    value raises `TypeError`.

    Spec suffixes, at the end in the order ``h`` then ``+``: ``h`` prints
    ``"-"`` for an empty-looking value (see `_empty_strings`), ``+`` marks a
    truncated result by replacing its last character with ``+``.
    """

    def convert_field(self, value, conversion):
        if conversion == "d":
            if value == "":
                return UtilDatetime.fromtimestamp(0.0)
            _reject_string(value, conversion)
            return UtilDatetime.fromtimestamp(value)
        if conversion == "D":
            if not value:
                return ""
            _reject_string(value, conversion)
            return datetime.fromtimestamp(value).strftime("%FT%T")
        if conversion == "F":
            if value == "":
                return ""
            _reject_string(value, conversion)
            return fsd(value)
        if conversion == "H":
            if value == "":
                return ""
            _reject_string(value, conversion)
            if 0 < value < 1:
                # never show a nonzero duration as zero
                value = 1
            return str(timedelta(seconds=round(value)))
        if conversion == "P":
            if value == "":
                return ""
            _reject_string(value, conversion)
            percent = value * 100
            if 0 < percent < 1:
                return f"{percent:.2f}%"
            return f"{percent:.3g}%"
        return super().convert_field(value, conversion)

    def format_field(self, value, format_spec):
        mark_truncation = format_spec.endswith("+")
        if mark_truncation:
            format_spec = format_spec[:-1]
        if isinstance(value, UtilDatetime):
            # UtilDatetime handles its own "h" suffix
            result = format(value, format_spec)
            untruncated = format(value, format_spec.partition("::")[0])
        else:
            if format_spec.endswith("h"):
                format_spec = format_spec[:-1]
                text = str(value)
                if text in _empty_strings():
                    value = "-"
                    format_spec = _text_spec(format_spec)
                elif not _is_number(value) or not _number_spec(format_spec):
                    value = text  # a number keeps its type for {x:.1%h}
            result = super().format_field(value, format_spec)
            untruncated = str(value)
        if mark_truncation and len(result) < len(untruncated):
            result = result[:-1] + "+"
        return result


# ---------------------------------------------------------------------------
# Format spec surgery used by OutputFormat

_SPEC_RE = re.compile(
    r"(?P<fill_align>(?P<fill>.)?(?P<align>[<>=^]))?"
    r"(?P<sign>[-+ ])?(?P<z>z)?(?P<alt>\#)?(?P<zero>0)?"
    r"(?P<width>\d+)?(?P<grouping>[,_])?"
    r"(?:\.(?P<precision>\d+))?"
    r"(?P<type>[bcdeEfFgGnosxX%])?"
    r"(?P<suffix>h?\+?)\Z",
    re.DOTALL,
)


class _Spec:
    """A format spec split into its strftime part and standard-spec parts."""

    def __init__(self, spec, conv):
        self.timefmt = None
        pyspec = spec
        if conv == "d" or "::" in spec:
            self.timefmt, _, pyspec = spec.partition("::")
        match = _SPEC_RE.match(pyspec)
        self.parts = match.groupdict() if match else None
        self.raw = pyspec

    @property
    def width(self):
        if self.parts and self.parts["width"]:
            return int(self.parts["width"])
        return 0

    def is_string_type(self):
        return bool(self.parts) and self.parts["type"] in (None, "s")

    def set_width(self, width, raise_precision=False):
        if self.parts is None:
            return
        self.parts["width"] = str(width)
        precision = self.parts["precision"]
        if raise_precision and precision and int(precision) < width:
            self.parts["precision"] = str(width)

    def clear_width(self):
        if self.parts is None:
            return
        self.parts["width"] = self.parts["precision"] = None

    def header_spec(self):
        """Only alignment and width (no fill, type, or Flux suffixes)."""
        if self.parts is None:
            return ""
        align = self.parts["align"] or ""
        if align == "=":
            align = ">"  # "=" is not allowed for strings
        return align + (self.parts["width"] or "")

    def __str__(self):
        pyspec = self.raw
        if self.parts is not None:
            part = self.parts
            pyspec = "".join(
                [
                    part["fill_align"] or "",
                    part["sign"] or "",
                    part["z"] or "",
                    part["alt"] or "",
                    part["zero"] or "",
                    part["width"] or "",
                    part["grouping"] or "",
                    "." + part["precision"] if part["precision"] else "",
                    part["type"] or "",
                    part["suffix"],
                ]
            )
        if self.timefmt is None:
            return pyspec
        if pyspec:
            return f"{self.timefmt}::{pyspec}"
        return self.timefmt


def _sentinel(text):
    """Return the column sentinel at the end of literal ``text``, or ""."""
    for sentinel in ("?+:", "?:", "+:"):
        if text.endswith(sentinel):
            return sentinel
    return ""


def _escape(text):
    return text.replace("{", "{{").replace("}", "}}")


def _field_string(text, field, spec, conv, prefix):
    """Reassemble one (text, field, spec, conv) tuple as format-string text."""
    result = _escape(text)
    if field is None:
        return result
    result += "{" + prefix + field
    if conv:
        result += "!" + conv
    if spec:
        result += ":" + spec
    return result + "}"


def _truncate(line, width):
    """Cut ``line`` to ``width`` columns, marking the cut with ``+``.
    A width of 0 means the terminal width, a negative width no limit."""
    if width == 0:
        width = shutil.get_terminal_size().columns
    if 0 < width < len(line):
        return line[: width - 1] + "+"
    return line


# ---------------------------------------------------------------------------
# OutputFormat: the `flux jobs -o` language


class _HeaderFormatter(string.Formatter):
    """Looks up headings by the literal field name (``id.f58`` is one key)."""

    def get_field(self, field_name, args, kwargs):
        return kwargs[field_name], field_name


_SORT_PREFIX_RE = re.compile(r"sort:([^\s{]*)( ?)")

_FORMAT_SPEC_RE = re.compile(
    r"(?:(?P<fill>.)?(?P<align>[<>=^]))?"
    r"(?P<sign>[-+ ])?(?P<pos_zero>z)?(?P<alt>\#)?(?P<zero_pad>0)?"
    r"(?P<width_str>\d+)?(?P<grouping>[,_])?"
    r"(?:(?P<decimal>\.)(?P<precision_str>\d+))?"
    r"(?P<type>[bcdeEfFgGnosxX%])?"
    r"(?P<hyphen>h)?(?P<truncate>\+)?\Z",
    re.DOTALL,
)


class FormatSpec:
    """A format spec split into its parts: ``fill align sign pos_zero alt
    zero_pad width_str grouping decimal precision_str type hyphen
    truncate`` (each ``""`` when absent; ``hyphen`` is the Flux ``h``
    suffix, ``truncate`` the ``+`` suffix).

    A leading ``STRFTIME::`` part (datetime fields) is kept in
    ``timefmt`` and only the rest is split. ``str()`` reassembles the spec.
    Setting ``width`` also raises a smaller precision of a string spec.
    A spec that is not a standard one raises `ValueError`.
    """

    _parts = ("fill align sign pos_zero alt zero_pad width_str grouping"
              " decimal precision_str type hyphen truncate").split()

    def __init__(self, spec):
        self.timefmt = None
        if "::" in spec:
            self.timefmt, _, spec = spec.partition("::")
        match = _FORMAT_SPEC_RE.match(spec)
        if match is None:
            raise ValueError(f"Invalid format spec: {spec!r}")
        for name, value in match.groupdict().items():
            setattr(self, name, value or "")

    @property
    def width(self):
        return int(self.width_str) if self.width_str else 0

    @width.setter
    def width(self, value):
        self.width_str = str(value)
        if self.type in ("", "s") and self.precision_str \
                and int(self.precision_str) < value:
            self.precision_str = str(value)

    @property
    def precision(self):
        return int(self.precision_str) if self.precision_str else None

    def __str__(self):
        spec = "".join(getattr(self, name) for name in self._parts)
        if self.timefmt is None:
            return spec
        return f"{self.timefmt}::{spec}"

    def __repr__(self):
        return f"FormatSpec({str(self)!r})"


def _no_sort_keys():
    """Upstream fails on ``sort:`` followed directly by ``{`` or white
    space because a local variable is left unset; keep that error."""
    raise UnboundLocalError(
        "cannot access local variable 'sort_keys' where it is not associated"
        " with a value"
    )


class OutputFormat:
    """A parsed output format string, e.g. ``"{id.f58:>12} ?:{name:<10.10+}"``.

    Each field names an attribute of the item being formatted (dotted names
    allowed) and must be a key of ``headings`` (the argument, else the class
    attribute). A leading ``sort:KEY[,-KEY...]`` sets sort keys. Literal text
    ending in ``?:`` (drop the column if empty for every item), ``+:`` (widen
    the column to fit) or ``?+:`` (both) marks the following field; see
    `filter`.
    """

    headings = {}
    formatter = UtilFormatter
    HeaderFormatter = _HeaderFormatter
    FormatSpec = FormatSpec

    def __init__(self, fmt, headings=None, prepend="0.",
                 nullify_expansion_sentinel=False):
        # nullify_expansion_sentinel is accepted and ignored, as upstream
        # does (use copy(nullify_expansion=True)).
        if headings is not None:
            self.headings = headings
        self.fmt = fmt
        self.prepend = prepend
        self.sort_keys = []
        self._sort_space = " "  # after keys set later by set_sort_keys()
        body = fmt
        match = _SORT_PREFIX_RE.match(fmt)
        if match:
            if not match.group(1):
                _no_sort_keys()
            self.set_sort_keys(match.group(1))
            self._sort_space = match.group(2)
            body = fmt[match.end() :]
        self._body = body
        # list of (text, field, spec, conv); field has no prefix, None for
        # trailing text
        self.format_list = []
        for text, field, spec, conv in string.Formatter().parse(body):
            if field is not None:
                if prepend and field.startswith(prepend):
                    field = field[len(prepend) :]
                if field not in self.headings:
                    raise ValueError(f"Unknown format field: {field}")
            self.format_list.append((text, field, spec or "", conv))

    # -- fields and sort keys -------------------------------------------

    @property
    def fields(self):
        """Distinct field names in order of appearance, then sort keys."""
        names = []
        for _, field, _, _ in self.format_list:
            if field is not None and field not in names:
                names.append(field)
        for key, _ in self.sort_keys:
            if key not in names:
                names.append(key)
        return names

    def set_sort_keys(self, keys):
        """Set sort keys from ``"K1,-K2"`` (``-`` sorts descending; white
        space around keys and empty keys are ignored)."""
        sort_keys = []
        for key in keys.split(","):
            key = key.strip()
            if not key:
                continue
            reverse = key.startswith("-")
            name = key[1:] if reverse else key
            if name not in self.headings:
                raise ValueError(f"Invalid sort key: {name}")
            sort_keys.append((name, reverse))
        self.sort_keys = sort_keys

    def _sort_prefix(self):
        if not self.sort_keys:
            return ""
        keys = ",".join(("-" if rev else "") + key for key, rev in self.sort_keys)
        return f"sort:{keys}{self._sort_space}"

    def _value(self, item, field):
        obj, _ = self.formatter().get_field(self.prepend + field, (item,), {})
        return obj

    def sort_items(self, items):
        """Stable in-place sort of ``items`` by the sort keys (last key
        applied first), comparing values as `DisplayValue`."""
        for key, reverse in reversed(self.sort_keys):
            getter = attrgetter(key)
            items.sort(
                key=lambda item, getter=getter: DisplayValue(getter(item)),
                reverse=reverse,
            )

    # -- format strings ---------------------------------------------------

    def _build(
        self,
        prefix,
        skip=lambda index, field: False,
        strip_sentinels=False,
        nullify_expansion=False,
        include_sort_prefix=True,
    ):
        out = [self._sort_prefix()] if include_sort_prefix else []
        for index, (text, field, spec, conv) in enumerate(self.format_list):
            if field is None:
                out.append(_escape(text))
                continue
            sentinel = _sentinel(text)
            lead = text[: len(text) - len(sentinel)]
            if skip(index, field):
                # keep the leading text only if it is more than spaces
                if lead.strip():
                    out.append(_escape(lead))
                continue
            if strip_sentinels:
                text = lead
            elif nullify_expansion and "+" in sentinel:
                text = lead + ("?:" if sentinel == "?+:" else "")
                parsed = _Spec(spec, conv)
                parsed.clear_width()
                spec = str(parsed)
            out.append(_field_string(text, field, spec, conv, prefix))
        return "".join(out)

    def get_format_prepended(
        self,
        prepend,
        except_fields=None,
        include_sort_prefix=True,
        nullify_expansion_sentinel=False,
    ):
        """Return the format string with ``prepend`` before every field name.

        Fields in ``except_fields`` are left out (with their leading text if
        that is only spaces and a sentinel). ``nullify_expansion_sentinel``
        removes ``+:`` sentinels together with the width and precision of
        their fields.
        """
        excluded = set(except_fields or ())
        return self._build(
            prepend,
            skip=lambda index, field: field in excluded,
            nullify_expansion=nullify_expansion_sentinel,
            include_sort_prefix=include_sort_prefix,
        )

    def get_format(self, orig=False, include_sort_prefix=True):
        """Return the format string with fields prefixed (``0.`` by default),
        or with ``orig=True`` the string as given."""
        if orig:
            return self.fmt if include_sort_prefix else self._body
        return self.get_format_prepended(
            self.prepend, include_sort_prefix=include_sort_prefix
        )

    def copy(self, except_fields=None, nullify_expansion=False):
        """Return a new formatter of the same class, optionally without
        ``except_fields`` or with expansion sentinels nullified."""
        fmt = self.get_format_prepended(
            "",
            except_fields=except_fields,
            nullify_expansion_sentinel=nullify_expansion,
        )
        return type(self)(fmt, headings=self.headings, prepend=self.prepend)

    # -- headers and lines ------------------------------------------------

    def header_format(self):
        """The format for the header line: field names keep only alignment
        and width, conversions are dropped."""
        return "".join(
            _field_string(text, field, _Spec(spec, conv).header_spec(), None, "")
            for text, field, spec, conv in self.format_list
        )

    def header(self, width=-1):
        """Render the headings (truncated to ``width`` if > 0, to the
        terminal width if 0)."""
        line = _HeaderFormatter().format(self.header_format(), **self.headings)
        return _truncate(line, width)

    def format(self, item):
        """Format one item."""
        fmt = self.get_format(include_sort_prefix=False)
        try:
            return self.formatter().format(fmt, item)
        except KeyError as exc:
            raise KeyError(f"Invalid format field {exc} for {type(item)}") from None

    # -- sentinels ----------------------------------------------------------

    def _measure(self, formatter, item, field, spec, conv):
        """Return (converted value, its string without the Python spec)."""
        value = formatter.convert_field(self._value(item, field), conv)
        if isinstance(value, UtilDatetime):
            return value, format(value, _Spec(spec, conv).timefmt or "")
        return value, format(value, "")

    def filter(self, items, no_header=False):
        """Apply the sentinels for ``items`` and return the resulting format
        (with the sort prefix, without field prefixes, without sentinels).

        ``?:`` columns empty for every item are dropped. ``+:`` columns are
        widened to the largest of their width, the heading length (unless
        ``no_header``) and the widest value; this rewrites the stored spec
        and removes ``+:`` from this object.
        """
        items = list(items)
        formatter = self.formatter()
        empty = _empty_strings()
        dropped = set()
        for index, (text, field, spec, conv) in enumerate(self.format_list):
            sentinel = _sentinel(text) if field is not None else ""
            if not sentinel:
                continue
            measured = [self._measure(formatter, i, field, spec, conv) for i in items]
            if "?" in sentinel and all(s in empty for _, s in measured):
                dropped.add(index)
                continue
            if "+" in sentinel:
                parsed = _Spec(spec, conv)
                candidates = [parsed.width] + [len(s) for _, s in measured]
                if not no_header:
                    candidates.append(len(str(self.headings[field])))
                stringy = parsed.is_string_type() and all(
                    isinstance(v, (str, datetime)) for v, _ in measured
                )
                parsed.set_width(max(candidates), raise_precision=stringy)
                text = text[: -len(sentinel)] + ("?:" if sentinel == "?+:" else "")
                self.format_list[index] = (text, field, str(parsed), conv)
        return self._build(
            "",
            skip=lambda index, field: index in dropped,
            strip_sentinels=True,
        )

    filter_empty = filter

    def print_items(self, items, no_header=False, width=-1, pre=None, post=None):
        """Filter, sort and print ``items``: a header line (unless
        ``no_header``) then one line per item. Empty lines are skipped,
        lines are truncated to ``width`` (0: terminal width), and ``pre`` /
        ``post`` are called with the item around each printed line.
        Returns the formatter actually used."""
        if not isinstance(items, list):
            items = list(items)
        fmt = self.filter(items, no_header=no_header)
        formatter = type(self)(fmt, headings=self.headings, prepend=self.prepend)
        formatter.sort_items(items)
        if not no_header:
            print(formatter.header(width=width))
        for item in items:
            line = formatter.format(item)
            if not line or line.isspace():
                continue
            if pre:
                pre(item)
            print(_truncate(line, width))
            if post:
                post(item)
        return formatter


# ---------------------------------------------------------------------------
# DisplayValue: ordering of displayed values

_EMPTY, _NUMERIC, _STRING = 0, 1, 2


@total_ordering
class DisplayValue:
    """Wrap a value for sorting as it would be displayed.

    Empty values (``None``, ``""``, ``"-"``) sort first, then numbers
    (bools, ints, floats, and strings `float()` accepts such as ``"1e5"``)
    by value, then everything else compared as `str`.
    """

    __slots__ = ("value", "_key")

    def __init__(self, value):
        self.value = value
        self._key = self._sort_key(value)

    @staticmethod
    def _sort_key(value):
        if value is None or (isinstance(value, str) and value in ("", "-")):
            return (_EMPTY, 0)
        try:
            return (_NUMERIC, float(value))
        except (TypeError, ValueError, OverflowError):
            return (_STRING, str(value))

    @staticmethod
    def _wrap(other):
        return other if isinstance(other, DisplayValue) else DisplayValue(other)

    def __eq__(self, other):
        return self._key == self._wrap(other)._key

    def __lt__(self, other):
        return self._key < self._wrap(other)._key

    def __hash__(self):
        return hash(self._key)

    def __repr__(self):
        return f"DisplayValue({self.value!r})"
