"""flux.resource.ResourceCount (spec 21.7)."""

import pytest

from flux.idset import IDset
from flux.resource import ResourceCount


@pytest.mark.parametrize("spec, expected", [
    (3, "ResourceCount(3, 3)"),
    (True, "ResourceCount(1, 1)"),
    ({"min": 2}, "ResourceCount(2, None)"),
    ({"min": 2, "max": 8, "operator": "*", "operand": 2},
     "ResourceCount(2, 8, values=IDset('2,4,8'))"),
    ("2-8:2:*", "ResourceCount(2, 8, values=IDset('2,4,8'))"),
    ("2-5:3", "ResourceCount(2, 5, values=IDset('2,5'))"),
    ("[2,3,4,5]", "ResourceCount(2, 5, values=IDset('2-5'))"),
    (" 2-4 ", "ResourceCount(2, 4)"),
    ("4", "ResourceCount(4, 4)"),
    ("2+", "ResourceCount(2, None)"),
    ("2+:1:+", "ResourceCount(2, None)"),
    (1.5, "ResourceCount(1, 1)"),
    (None, "ResourceCount(1, 1)"),
])
def test_from_count_spec(spec, expected):
    assert repr(ResourceCount.from_count_spec(spec)) == expected


@pytest.mark.parametrize("spec", ["0", "3-0", "4.2", "1-2x", "[]", "2+:2:*",
                                  "1-16:2:^", 0, -1, {"min": 0},
                                  {"min": 3, "max": 2},
                                  {"min": 2, "operator": "*", "operand": 2},
                                  {"min": 1, "max": 4, "operator": "*", "operand": 1},
                                  {"min": 1, "max": 10 ** 6, "operand": 2}])
def test_malformed_counts(spec):
    with pytest.raises(ValueError):
        ResourceCount.from_count_spec(spec)


def test_rfc14_messages():
    with pytest.raises(ValueError, match="^RFC 14 count"):
        ResourceCount.from_count_spec("0")
    with pytest.raises(ValueError, match="^RFC 45 unbounded count"):
        ResourceCount.from_count_spec("2+:2:*")
    with pytest.raises(ValueError, match="^RFC 14 unbounded count"):
        ResourceCount.from_count_spec({"min": 2, "operator": "*", "operand": 2})


def test_default_and_scaling():
    assert repr(ResourceCount.from_count_spec({}, default=3)) == "ResourceCount(3, None)"
    assert repr(ResourceCount.from_count_spec(None, default=2)) == "ResourceCount(2, 2)"
    c = ResourceCount.from_count_spec("2-8:2:*")
    assert c.scaled(1) is c
    assert c.scaled(2).values == IDset("4,8,16") and c.scaled(2).min == 4


def test_valid_counts_descend():
    assert list(ResourceCount.from_count_spec("2-8:2:*").valid_counts(5)) == [4, 2]
    assert list(ResourceCount.from_count_spec("2-4").valid_counts(10)) == [4, 3, 2]
    assert list(ResourceCount.from_count_spec("2+").valid_counts(3)) == [3, 2]
    assert list(ResourceCount.from_count_spec("3").valid_counts(2)) == []
