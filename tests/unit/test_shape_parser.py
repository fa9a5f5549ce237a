"""flux.shape.parser: RFC 46 shapes to RFC 14 resources, and the errors."""

import pytest

from flux.shape.parser import ShapeParser, ShapeSyntaxError


def parse(text):
    return ShapeParser().parse(text)


@pytest.mark.parametrize("text, expected", [
    ("node", [{"type": "node", "count": 1}]),
    ("slot=2/core{x:1}",
     [{"type": "slot", "count": 2, "label": "task",
       "with": [{"type": "core", "count": 1, "exclusive": True}]}]),
    ("node=2/slot=4/core{x}",
     [{"type": "node", "count": 2, "with": [
         {"type": "slot", "count": 4, "label": "task",
          "with": [{"type": "core", "count": 1, "exclusive": True}]}]}]),
    ("slot/[core=2,gpu{x:false}]",
     [{"type": "slot", "count": 1, "label": "task", "with": [
         {"type": "core", "count": 2},
         {"type": "gpu", "count": 1, "exclusive": False}]}]),
    ("node , slot", [{"type": "node", "count": 1},
                     {"type": "slot", "count": 1, "label": "task"}]),
    ("core=2+", [{"type": "core", "count": {"min": 2}}]),
    ("core=2-8", [{"type": "core", "count": {"min": 2, "max": 8, "operand": 1,
                                             "operator": "+"}}]),
    ("core=2-8:2:*", [{"type": "core", "count": {"min": 2, "max": 8, "operand": 2,
                                                 "operator": "*"}}]),
    ("slot{label:foo,x}/ core",
     [{"type": "slot", "count": 1, "label": "foo", "exclusive": True,
       "with": [{"type": "core", "count": 1}]}]),
    ("memory=4{unit:GB}", [{"type": "memory", "count": 4, "unit": "GB"}]),
])
def test_shapes(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize("text, message", [
    ("", "empty shape"),
    ("   ", "empty shape"),
    ("node=", "expected a count at offset 5, found end of shape"),
    ("node=0", "a count must be at least 1"),
    ("core=4-2", "count range 4-2 is empty"),
    ("core=2-4:1:%", "unexpected character '%' at offset 11"),
    ("core=2-4:1:-", "expected an operator (+ * ^) at offset 11"),
    ("slot/[core", "expected ] at offset 10"),
    ("core{y}", "unknown property 'y'"),
    ("core{x:2}", "x: expected 0, 1, true or false, not '2'"),
    ("node node", "expected end of shape at offset 5, found 'node'"),
    ("=2", "expected a resource type at offset 0, found '='"),
    ("slot/", "expected a resource type at offset 5"),
    ("x;", "unexpected character ';' at offset 1"),
])
def test_syntax_errors(text, message):
    with pytest.raises(ShapeSyntaxError) as exc:
        parse(text)
    assert message in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_not_a_string():
    with pytest.raises(TypeError):
        parse(["node"])
