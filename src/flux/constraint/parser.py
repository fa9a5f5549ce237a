"""RFC 35 constraint query syntax -> RFC 31 constraint objects.

``ConstraintParser().parse(query)`` turns a query such as
``host:n[1-2] and (gpu | -debug)`` into an RFC 31 dict
(``{"and": [{"hostlist": ["n[1-2]"]}, {"or": [...]}]}``).  A subclass
configures it with three class attributes:

- ``operator_map``: shorthand -> operator name; the key ``None`` names the
  operator of a bare term (without it a bare term is an error);
- ``split_values``: operator -> the separator its value is split at;
- ``combined_terms``: operators whose and-ed terms merge into one list.

The syntax: whitespace separates terms; ``&``, ``&&``, ``and`` are AND,
``|``, ``||``, ``or`` are OR, ``not`` is NOT (keywords in lower case only);
parentheses group; ``-`` before a term negates that one term; a term is
``[operator:]value`` split at its first colon, the value may be quoted.
Precedence, as upstream's grammar resolves it: NOT binds tightest, then
``&``, then ``|``; juxtaposition (an implicit AND) binds loosest, except
before a ``not`` or ``-`` term, which it takes in (``a|b c`` is
``(a|b) c``, ``a|b -c`` is ``a|(b -c)``).  The parser is a shift-reduce
parser driven by those precedences.

Errors are ``ConstraintSyntaxError`` (not a ``SyntaxError``), with
upstream's texts.  ``MiniConstraintParser`` is the ``--requires``
configuration (``flux.job._utils`` re-exports it).
"""

import re

__all__ = ["ConstraintSyntaxError", "ConstraintParser", "MiniConstraintParser"]


class ConstraintSyntaxError(Exception):
    """A constraint query that does not parse."""


_OPERATOR_NAME = re.compile(r"[\w.+@-]+")
_BAD_OPERATOR_CHAR = re.compile(r"[^\w.+@-]")
_SPECIAL = set("()|&'\" \t")

# token kinds
_TERM, _AND, _OR, _NOT, _NEG, _LPAREN, _RPAREN = range(7)

# the level a lookahead token takes against a rule on the stack; a token
# that starts an operand (a term, "(") has none: rules before it reduce
_LOOKAHEAD_LEVEL = {_OR: 1, _AND: 2, _NOT: 3, _NEG: 4, _TERM: 0, _LPAREN: 0}
# rules: (level, left associative)
_RULES = {"or": (1, True), "and": (2, True), "juxt": (2, True), "not": (3, False)}


class _Token:
    __slots__ = ("kind", "text", "pos", "op", "value")

    def __init__(self, kind, text, pos, op=None, value=None):
        self.kind, self.text, self.pos, self.op, self.value = kind, text, pos, op, value


class _Lexer:
    """Tokens of one query, made as the parser asks for them."""

    def __init__(self, query):
        self.query = query
        self.parens_level = 0
        self.last_lparens = 0

    def tokens(self):
        text, pos, end = self.query, 0, len(self.query)
        while pos < end:
            char = text[pos]
            if char in " \t":
                pos += 1
            elif char == "(":
                self.parens_level += 1
                self.last_lparens = pos
                yield _Token(_LPAREN, char, pos)
                pos += 1
            elif char == ")":
                self.parens_level -= 1
                if self.parens_level < 0:
                    raise ConstraintSyntaxError(
                        "Mismatched parentheses starting at position "
                        "{self.lexer.last_rparens}.")
                yield _Token(_RPAREN, char, pos)
                pos += 1
            elif char in "&|":
                width = 2 if text.startswith(char * 2, pos) else 1
                yield _Token(_AND if char == "&" else _OR, text[pos:pos + width], pos)
                pos += width
            elif char == "-":
                yield _Token(_NEG, char, pos)
                pos += 1
            elif not char.isprintable() or char.isspace():
                raise ConstraintSyntaxError(f"Illegal character '{char}' at position {pos}")
            else:
                token, pos = self.word(pos)
                yield token
        if self.parens_level > 0:
            raise ConstraintSyntaxError(
                f"Unclosed parenthesis in position {self.last_lparens}")

    def word(self, start):
        """A keyword or a term from ``start``: (token, position after)."""
        text, pos, end = self.query, start, len(self.query)
        pieces, op, quoted = [], None, False
        while pos < end:
            char = text[pos]
            if char in "'\"":
                close = text.find(char, pos + 1)
                if close < 0:
                    quote = '"' if char == "'" else "'"
                    raise ConstraintSyntaxError(
                        f"Unclosed quote {quote}{char}{quote} at position {pos}")
                pieces.append(text[pos + 1:close])
                quoted = True
                pos = close + 1
            elif char in _SPECIAL or not char.isprintable() or char.isspace():
                break
            else:
                if char == ":" and op is None and not quoted:
                    op = "".join(pieces)
                    pieces = []
                else:
                    pieces.append(char)
                pos += 1
        raw = text[start:pos]
        value = "".join(pieces)
        if op is None and not quoted:
            if value in ("and", "or", "not"):
                kind = {"and": _AND, "or": _OR, "not": _NOT}[value]
                return _Token(kind, value, start), pos
        if op is not None:
            if not value and not quoted:
                raise ConstraintSyntaxError(f"Missing argument to token '{raw}'")
            bad = _BAD_OPERATOR_CHAR.search(op)
            if bad or not op:
                char = bad.group() if bad else ":"
                raise ConstraintSyntaxError(
                    f"invalid character '{char}' in operator '{op}:'")
        return _Token(_TERM, raw, start, op, value), pos


class ConstraintParser:
    """RFC 35 queries -> RFC 31 objects; see the module docstring."""

    operator_map = {}
    split_values = {}
    combined_terms = set()

    def parse(self, query):
        """The RFC 31 dict of ``query``; ConstraintSyntaxError if it does
        not parse."""
        if not isinstance(query, str):
            raise ConstraintSyntaxError(f"query must be a string, got {type(query).__name__}")
        self.query = query
        stack = []
        tokens = _Lexer(query).tokens()
        for token in tokens:
            kind = token.kind
            if kind == _RPAREN:
                self._reduce(stack, None)
                if len(stack) < 2 or stack[-1][0] != "E" or stack[-2][0] != "(":
                    self._invalid(token)
                value = stack.pop()
                stack[-1] = value
                continue
            self._reduce(stack, _LOOKAHEAD_LEVEL[kind])
            if kind in (_AND, _OR):
                if not stack or stack[-1][0] != "E":
                    self._invalid(token)
                stack.append(("and" if kind == _AND else "or",))
            elif kind == _NOT:
                stack.append(("not",))
            elif kind == _LPAREN:
                stack.append(("(",))
            elif kind == _NEG:
                term = next(tokens, None)
                if term is None:
                    self._end()
                if term.kind != _TERM:
                    self._invalid(term)
                stack.append(("E", {"not": [self.term(term)]}))
            else:
                stack.append(("E", self.term(token)))
        self._reduce(stack, None)
        if len(stack) != 1 or stack[0][0] != "E":
            self._end()
        return stack[0][1]

    # -- the grammar -------------------------------------------------------------------
    def _reduce(self, stack, level):
        """Reduce the rules on top of ``stack`` that bind tighter than a
        lookahead of ``level`` (None: all of them)."""
        while stack and stack[-1][0] == "E" and len(stack) >= 2:
            below = stack[-2][0]
            if below == "E":
                rule = "juxt"
            elif below == "not":
                rule = "not"
            elif below in ("and", "or") and len(stack) >= 3 and stack[-3][0] == "E":
                rule = below
            else:
                return
            rule_level, left = _RULES[rule]
            if level is not None and not (level < rule_level
                                          or (level == rule_level and left)):
                return
            right = stack.pop()[1]
            if rule == "not":
                stack[-1] = ("E", {"not": [right]})
            elif rule == "juxt":
                stack[-1] = ("E", self.combine("and", stack[-1][1], right))
            else:
                stack.pop()
                stack[-1] = ("E", self.combine(rule, stack[-1][1], right))

    def combine(self, op, left, right):
        """``left op right``, a left ``op`` extended, like terms merged."""
        if op == "and":
            merged = self._merge_terms(left, right)
            if merged is not None:
                return merged
        if list(left) == [op]:
            terms = list(left[op])
            if op == "and":
                for i, term in enumerate(terms):
                    merged = self._merge_terms(term, right)
                    if merged is not None:
                        terms[i] = merged
                        return {op: terms}
            return {op: terms + [right]}
        return {op: [left, right]}

    def _merge_terms(self, left, right):
        if len(left) == 1 and len(right) == 1:
            (op, values), = left.items()
            if op in self.combined_terms and list(right) == [op]:
                return {op: list(values) + list(right[op])}
        return None

    def term(self, token):
        op = token.op
        if op is None:
            if None not in self.operator_map:
                raise ConstraintSyntaxError(f'Missing required operator in "{token.text}"')
            op = self.operator_map[None]
        else:
            op = self.operator_map.get(op, op)
        value = token.value
        sep = self.split_values.get(op)
        values = [v for v in value.split(sep) if v] if sep else [value]
        return {op: values or [value]}

    def _invalid(self, token):
        raise ConstraintSyntaxError(f"Invalid token '{token.text}' at position {token.pos}")

    def _end(self):
        raise ConstraintSyntaxError(f"Unexpected end of input in '{self.query}'")


class MiniConstraintParser(ConstraintParser):
    """The ``--requires`` language: bare terms are properties."""

    operator_map = {None: "properties", "host": "hostlist", "hosts": "hostlist",
                    "rank": "ranks"}
    split_values = {"properties": ","}
    combined_terms = {"properties"}


def requires_constraint(requires):
    """The RFC 31 object of ``--requires`` strings (several are joined
    with spaces, so and-ed); ValueError ``--requires='...': why``."""
    if isinstance(requires, str):
        requires = [requires]
    joined = " ".join(requires)
    try:
        return MiniConstraintParser().parse(joined)
    except ConstraintSyntaxError as exc:
        raise ValueError(f"--requires='{joined}': {exc}") from None
