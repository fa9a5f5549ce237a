"""The request payload checks shared by the services (fluxrm.broker.payload)."""

import errno

import pytest

from flux.constants import FLUX_MSGTYPE_REQUEST
from flux.message import Message
from fluxrm.broker import payload


def msg_with(obj):
    return Message.build(FLUX_MSGTYPE_REQUEST, "x.y", obj)


def errnum(fn, *args, **kw):
    with pytest.raises(OSError) as info:
        fn(*args, **kw)
    return info.value.errno


def test_request_must_be_an_object():
    assert payload.request(msg_with({"a": 1})) == {"a": 1}
    assert payload.request(msg_with(None), required=False) == {}
    assert errnum(payload.request, msg_with(None)) == errno.EPROTO
    assert errnum(payload.request, msg_with([1])) == errno.EPROTO
    assert errnum(payload.request, msg_with("{not json")) == errno.EPROTO


def test_jobid_bounds_and_types():
    assert payload.jobid({"id": 5}) == 5
    for bad in (2**64, 2**63, -1, "5", 5.0, True, [5], None):
        assert errnum(payload.jobid, {"id": bad}) == errno.EPROTO
    assert errnum(payload.jobid, {}) == errno.EPROTO
    assert payload.jobid({}, default=None) is None


def test_integer_range_is_einval_and_type_is_eproto():
    assert payload.integer({"n": 3}, "n", lo=0, hi=5) == 3
    assert payload.integer({}, "n", 7) == 7
    assert errnum(payload.integer, {"n": 9}, "n", lo=0, hi=5) == errno.EINVAL
    assert errnum(payload.integer, {"n": 2**64}, "n") == errno.EINVAL
    assert errnum(payload.integer, {"n": "3"}, "n") == errno.EPROTO
    assert errnum(payload.integer, {"n": False}, "n") == errno.EPROTO
    with pytest.raises(OSError, match="n"):
        payload.integer({"n": []}, "n")


def test_number_string_strings_boolean_dict():
    assert payload.number({"t": 1.5}, "t") == 1.5
    assert errnum(payload.number, {"t": float("nan")}, "t") == errno.EPROTO
    assert errnum(payload.number, {"t": -1}, "t", lo=0) == errno.EINVAL
    assert payload.string({"s": "a"}, "s") == "a"
    assert errnum(payload.string, {"s": 1}, "s") == errno.EPROTO
    assert errnum(payload.string, {"s": "ab"}, "s", max_length=1) == errno.EINVAL
    assert payload.strings({"k": ["a"]}, "k") == ["a"]
    assert errnum(payload.strings, {"k": ["a", 1]}, "k") == errno.EPROTO
    assert payload.boolean({"b": 1}, "b") is True
    assert errnum(payload.boolean, {"b": 2}, "b") == errno.EPROTO
    assert payload.optional_dict({}, "d") is None
    assert errnum(payload.optional_dict, {"d": [1]}, "d") == errno.EPROTO
