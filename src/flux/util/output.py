"""Output helpers of `flux.util` built on `OutputFormat`:

- `Deduplicator`: folds items whose formatted lines are identical;
- `AltField`: a value with a default and an ASCII rendering.
"""


class Deduplicator:
    """Collect items, folding those that format identically.

    ``formatter`` is an `OutputFormat`; two items are duplicates when their
    lines, formatted without ``except_fields`` and with expansion
    sentinels nullified, are equal. `append` calls ``combine(existing,
    new)`` on a duplicate (if ``combine`` is given) and otherwise keeps the
    new item. Iterating yields the first-seen item of each group, in order,
    as often as wanted.
    """

    def __init__(self, formatter, except_fields=None, combine=None):
        self.formatter = formatter.copy(
            except_fields=except_fields, nullify_expansion=True
        )
        self.combine = combine
        self.items = {}  # formatted line -> first item seen

    def append(self, item):
        key = self.formatter.format(item)
        existing = self.items.get(key)
        if existing is None:
            self.items[key] = item
        elif self.combine is not None:
            self.combine(existing, item)

    def __iter__(self):
        return iter(list(self.items.values()))

    def __len__(self):
        return len(self.items)


class AltField:
    """A display value with an ASCII alternative: ``str()`` and ``format()``
    give ``default``; ``{x.ascii}`` gives the ASCII form."""

    def __init__(self, default, ascii):  # noqa: A002 - the spec's name
        self.default = default
        self.ascii = ascii

    def __str__(self):
        return self.default

    def __format__(self, spec):
        return format(self.default, spec)

    def __repr__(self):
        return f"AltField({self.default!r}, {self.ascii!r})"
