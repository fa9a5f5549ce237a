"""flux.constraint.parser: RFC 35 queries, precedence and exact errors."""

import pytest

from flux.constraint.parser import (
    ConstraintParser,
    ConstraintSyntaxError,
    MiniConstraintParser,
    requires_constraint,
)
from flux.job._utils import MiniConstraintParser as Reexported


class TParser(ConstraintParser):
    operator_map = {None: "t", "p": "props"}
    split_values = {"t": ","}
    combined_terms = {"t"}


class Strict(ConstraintParser):
    operator_map = {"h": "hostlist"}


def T(*values):
    return {"t": list(values)}


@pytest.mark.parametrize("query, expected", [
    ("a", T("a")),
    ("a,b", T("a", "b")),
    ("xx and yy", T("xx", "yy")),
    ("a & b && c", T("a", "b", "c")),
    ("a | b", {"or": [T("a"), T("b")]}),
    ("a|b", {"or": [T("a"), T("b")]}),
    ("a || b or c", {"or": [T("a"), T("b"), T("c")]}),
    ("(a|b)|c", {"or": [T("a"), T("b"), T("c")]}),
    ("a|b&c", {"or": [T("a"), T("b", "c")]}),
    ("a|b c", {"and": [{"or": [T("a"), T("b")]}, T("c")]}),
    ("a b|c d", {"and": [{"or": [T("a", "b"), T("c")]}, T("d")]}),
    ("not a|b", {"or": [{"not": [T("a")]}, T("b")]}),
    ("not (xx yy)", {"not": [T("xx", "yy")]}),
    ("-a", {"not": [T("a")]}),
    ("node-1", T("node-1")),
    ("a -b", {"and": [T("a"), {"not": [T("b")]}]}),
    ("time:11:00am", {"time": ["11:00am"]}),
    ("p:x", {"props": ["x"]}),
    ("p:'a b'", {"props": ["a b"]}),
    ('p:"x|(y)"', {"props": ["x|(y)"]}),
    ("AND", T("AND")),
    ("a AND b", T("a", "AND", "b")),
    ("p:x p:y", {"and": [{"props": ["x"]}, {"props": ["y"]}]}),
    ("a or b and c", {"or": [T("a"), T("b", "c")]}),
])
def test_parse(query, expected):
    assert TParser().parse(query) == expected


@pytest.mark.parametrize("query, message", [
    ("a|", "Unexpected end of input in 'a|'"),
    ("", "Unexpected end of input in ''"),
    ("not", "Unexpected end of input in 'not'"),
    ("(a", "Unclosed parenthesis in position 0"),
    ("a (b (c)", "Unclosed parenthesis in position 5"),
    ("a)", "Mismatched parentheses starting at position {self.lexer.last_rparens}."),
    ("-(a|b)", "Invalid token '(' at position 1"),
    ("a | | b", "Invalid token '|' at position 4"),
    ("and a", "Invalid token 'and' at position 0"),
    ("()", "Invalid token ')' at position 1"),
    ("p:'abc", "Unclosed quote \"'\" at position 2"),
    ('x "abc', "Unclosed quote '\"' at position 2"),
    ("a:", "Missing argument to token 'a:'"),
    ("4g,host:foo", "invalid character ',' in operator '4g,host:'"),
    ("a\nb", "Illegal character '\n' at position 1"),
])
def test_errors(query, message):
    with pytest.raises(ConstraintSyntaxError) as info:
        TParser().parse(query)
    assert str(info.value) == message
    assert not isinstance(info.value, SyntaxError)


def test_bare_term_needs_an_operator_without_a_default():
    with pytest.raises(ConstraintSyntaxError, match='Missing required operator in "foo"'):
        Strict().parse("foo")
    assert Strict().parse("h:n1") == {"hostlist": ["n1"]}


def test_parser_is_reusable_after_an_error():
    parser = TParser()
    with pytest.raises(ConstraintSyntaxError):
        parser.parse("p:")
    assert parser.parse("x") == T("x")


@pytest.mark.parametrize("query, expected", [
    ("foo,bar", {"properties": ["foo", "bar"]}),
    ("foo bar", {"properties": ["foo", "bar"]}),
    ("^bar", {"properties": ["^bar"]}),
    ("host:n[1-2] rank:0", {"and": [{"hostlist": ["n[1-2]"]}, {"ranks": ["0"]}]}),
    ("hosts:a,b", {"hostlist": ["a,b"]}),
    ("foo:bar", {"foo": ["bar"]}),
])
def test_mini_parser(query, expected):
    assert MiniConstraintParser().parse(query) == expected
    assert Reexported is MiniConstraintParser


def test_requires_joins_and_wraps_errors():
    assert requires_constraint(["foo", "rank:1"]) == {
        "and": [{"properties": ["foo"]}, {"ranks": ["1"]}]}
    with pytest.raises(ValueError) as info:
        requires_constraint(["foo", "bar|"])
    assert str(info.value) == "--requires='foo bar|': Unexpected end of input in 'foo bar|'"
