"""Parse an RFC 46 resource shape into an RFC 14 ``resources`` list.

``ShapeParser().parse("node=2/slot=4/core{x}")`` gives::

    [{"type": "node", "count": 2, "with": [
        {"type": "slot", "count": 4, "label": "task", "with": [
            {"type": "core", "count": 1, "exclusive": True}]}]}]

Grammar (whitespace between tokens is ignored)::

    shape     := list
    list      := vertex ("," vertex)*          siblings
    vertex    := TYPE ["=" count] ["{" props "}"] ["/" child]
    child     := vertex | "[" list "]"
    count     := INT | INT "+" | INT "-" INT [":" INT [":" OP]]
    props     := prop ("," prop)*
    prop      := "x" [":" BOOL] | "label" ":" NAME | "unit" ":" NAME
    BOOL      := 0 | 1 | true | false

A count defaults to 1; ``N+`` is ``{"min": N}``; ``N-M:K:OP`` is
``{"min", "max", "operand", "operator"}`` (OP one of ``+ * ^``, default
``+``, operand default 1).  ``{x}`` marks the vertex exclusive.  A ``slot``
is labelled ``task`` unless ``{label:NAME}`` says otherwise.  Anything else
raises ``ShapeSyntaxError`` (a ``ValueError``) naming the offset.
"""

import re

__all__ = ["ShapeParser", "ShapeSyntaxError"]

_TOKEN = re.compile(r"\s*(?:(?P<int>\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)"
                    r"|(?P<op>[=/{}\[\],:+\-*^]))")


class ShapeSyntaxError(ValueError):
    """A shape that does not follow the grammar."""


class _Tokens:
    def __init__(self, text):
        self.items = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if m is None:
                bad = text[pos:].lstrip()[0]
                where = len(text) - len(text[pos:].lstrip())
                raise ShapeSyntaxError(f"unexpected character {bad!r} at offset {where}")
            kind = m.lastgroup
            self.items.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        self.items.append(("end", "", len(text)))
        self.index = 0

    def peek(self, value=None):
        kind, val, _ = self.items[self.index]
        return val == value and kind == "op" if value is not None else (kind, val)

    def take(self, kind=None, value=None, what=None):
        k, val, pos = self.items[self.index]
        if (kind and k != kind) or (value is not None and val != value):
            found = "end of shape" if k == "end" else repr(val)
            raise ShapeSyntaxError(f"expected {what or value or kind} at offset {pos}, "
                                   f"found {found}")
        self.index += 1
        return val

    def accept(self, value):
        if self.peek(value):
            self.index += 1
            return True
        return False


class ShapeParser:
    """RFC 46 shape -> RFC 14 resources (see the module)."""

    def parse(self, shape):
        if not isinstance(shape, str):
            raise TypeError("shape must be a string")
        tokens = _Tokens(shape)
        if tokens.peek() == ("end", ""):
            raise ShapeSyntaxError("empty shape")
        resources = self._list(tokens)
        tokens.take("end", what="end of shape")
        return resources

    def _list(self, tokens):
        items = [self._vertex(tokens)]
        while tokens.accept(","):
            items.append(self._vertex(tokens))
        return items

    def _vertex(self, tokens):
        vertex = {"type": tokens.take("name", what="a resource type"), "count": 1}
        if tokens.accept("="):
            vertex["count"] = self._count(tokens)
        if vertex["type"] == "slot":
            vertex["label"] = "task"
        if tokens.accept("{"):
            self._props(tokens, vertex)
            tokens.take("op", "}")
        if tokens.accept("/"):
            if tokens.accept("["):
                vertex["with"] = self._list(tokens)
                tokens.take("op", "]")
            else:
                vertex["with"] = [self._vertex(tokens)]
        return vertex

    @staticmethod
    def _int(tokens, what):
        value = int(tokens.take("int", what=what))
        if value < 1:
            raise ShapeSyntaxError(f"{what} must be at least 1")
        return value

    def _count(self, tokens):
        low = self._int(tokens, "a count")
        if tokens.accept("+"):
            return {"min": low}
        if not tokens.accept("-"):
            return low
        high = self._int(tokens, "a maximum count")
        if high < low:
            raise ShapeSyntaxError(f"count range {low}-{high} is empty")
        count = {"min": low, "max": high, "operand": 1, "operator": "+"}
        if tokens.accept(":"):
            count["operand"] = self._int(tokens, "an operand")
            if tokens.accept(":"):
                kind, op = tokens.peek()
                if kind != "op" or op not in "+*^":
                    tokens.take(value="+", what="an operator (+ * ^)")
                tokens.take("op")
                count["operator"] = op
        return count

    @staticmethod
    def _props(tokens, vertex):
        while True:
            key = tokens.take("name", what="a property")
            if key == "x":
                value = True
                if tokens.accept(":"):
                    raw = tokens.take(what="0, 1, true or false")
                    if raw not in ("0", "1", "true", "false"):
                        raise ShapeSyntaxError(f"x: expected 0, 1, true or false, not {raw!r}")
                    value = raw in ("1", "true")
                vertex["exclusive"] = value
            elif key in ("label", "unit"):
                tokens.take("op", ":")
                vertex[key] = tokens.take("name", what=f"a {key}")
            else:
                raise ShapeSyntaxError(f"unknown property {key!r}")
            if not tokens.accept(","):
                return
