"""flux.resource.ResourceSet / Rv1Set: parsing, short form, encoding, set
operations, properties, constraints, host ranks (spec 21.2, 21.3)."""

import json

import pytest

from flux.hostlist import Hostlist
from flux.idset import IDset
from flux.resource import ResourceSet, Rv1Set


def R(*entries, nodelist=None, properties=None, **execution):
    rlite = [{"rank": r, "children": dict(c)} for r, c in entries]
    ex = {"R_lite": rlite, "starttime": 0.0, "expiration": 0.0, **execution}
    if nodelist is not None:
        ex["nodelist"] = nodelist
    if properties is not None:
        ex["properties"] = properties
    return {"version": 1, "execution": ex}


GPU4 = R(("0-3", {"core": "0-3", "gpu": "0"}), ("4", {"gpu": "0"}),
         nodelist=["n[0-4]"], properties={"big": "0-1"})


def test_counts_lists_and_short_form():
    rs = ResourceSet(GPU4)
    assert str(rs) == rs.dumps() == rs.rlist == "rank[0-3]/core[0-3],gpu0 rank4/core,gpu0"
    assert (rs.nnodes, rs.ncores, rs.ngpus, rs.count("memory")) == (5, 16, 5, 0)
    assert rs.ranks == IDset("0-4")
    assert str(rs.nodelist) == "n[0-4]" and isinstance(rs.nodelist, Hostlist)
    assert rs.properties == "big" and rs.get_properties() == '{"big": "0-1"}'
    assert str(ResourceSet()) == "" and ResourceSet().get_properties() == "{}"


def test_encoding_is_json_dumps_in_upstream_key_order():
    rs = ResourceSet(GPU4)
    assert rs.encode() == json.dumps(rs.to_dict())
    assert list(rs.to_dict()["execution"]) == [
        "R_lite", "starttime", "expiration", "nodelist", "properties"]
    assert rs.to_dict()["execution"]["R_lite"][1] == {
        "rank": "4", "children": {"core": "", "gpu": "0"}}
    # no nodelist in, none out; missing names are rank<N>
    plain = ResourceSet(R(("0-1", {"core": "0"})))
    assert "nodelist" not in plain.to_dict()["execution"]
    assert str(plain.nodelist) == "rank[0-1]"


def test_nslots_and_scheduling_are_lost_by_copies():
    rs = ResourceSet(dict(R(("0", {"core": "0"}), nslots=2), scheduling={"x": 1}),
                     keep_scheduling=True)
    assert rs.to_dict()["execution"]["nslots"] == 2 and rs.to_dict()["scheduling"]
    assert "scheduling" not in ResourceSet(rs.to_dict()).to_dict()
    for other in (rs.copy(), rs | ResourceSet(), rs - ResourceSet()):
        assert "nslots" not in other.to_dict()["execution"]
        assert "scheduling" not in other.to_dict()


def test_construction_errors():
    with pytest.raises(ValueError):
        ResourceSet("")
    with pytest.raises(ValueError):
        ResourceSet("{")
    with pytest.raises(KeyError):
        ResourceSet({"execution": {}})
    with pytest.raises(TypeError, match="ResourceSet cannot be instantiated from"):
        ResourceSet(42)
    with pytest.raises(ValueError, match="R version 2 not supported"):
        ResourceSet({"version": 2})
    assert ResourceSet(Rv1Set(GPU4)).nnodes == 5
    assert ResourceSet(json.dumps(GPU4)).ncores == 16


def test_set_operations():
    a = ResourceSet(R(("0", {"core": "0-3"})))
    b = ResourceSet(R(("0", {"gpu": "0"})))
    assert str(a | b) == "rank0/core[0-3],gpu0"
    assert str(a.union(b.to_dict())) == "rank0/core[0-3],gpu0"  # operands converted
    big = ResourceSet(R(("0-1", {"core": "0-3"})))
    assert str(big - ResourceSet(R(("0", {"core": "0-1"})))) == \
        "rank0/core[2-3] rank1/core[0-3]"
    assert str(big - ResourceSet(R(("0", {"core": "0-3"})))) == "rank1/core[0-3]"
    # intersect keeps whole ranks present in both
    assert str(big & ResourceSet(R(("1", {"core": "0"})))) == "rank1/core[0-3]"
    big.state = "up"
    assert (big & a).state == "up" and big.copy().state == "up"
    assert big.copy_ranks(1).ranks == IDset("1") and big.copy_ranks("0").nnodes == 1
    assert big.copy().remove_ranks("0").ranks == IDset("1")
    c = ResourceSet(R(("0", {"core": "0"})))
    assert c.append(ResourceSet(R(("2", {"core": "0"})))) is c and c.ranks == IDset("0,2")


def test_properties_follow_ranks():
    a = ResourceSet(R(("0-1", {"core": "0"}), properties={"p": "0-1"}))
    b = ResourceSet(R(("1-2", {"core": "1"}), properties={"q": "1-2"}))
    assert json.loads((a | b).get_properties()) == {"p": "0-1", "q": "1-2"}
    assert json.loads(a.copy().add(b).get_properties()) == {"p": "0-1", "q": "2"}
    assert json.loads((a - ResourceSet(R(("0", {"core": "0"})))).get_properties()) == \
        {"p": "1"}
    a.set_property("new", "1")
    assert json.loads(a.get_properties())["new"] == "1"
    assert a.set_property("all") is a and json.loads(a.get_properties())["all"] == "0-1"
    for args, msg in [(("^x",), "invalid property name '^x': '^' is reserved"),
                      (("",), "property name must not be empty"),
                      (("x", "bogus"), "invalid rank idset 'bogus'"),
                      (("x", "5"), "ranks 5 not in resource set")]:
        with pytest.raises(ValueError, match=msg.replace("^", r"\^")):
            a.set_property(*args)


def test_times_are_settable_and_kept_from_the_left():
    a = ResourceSet(R(("0", {"core": "0"}), starttime=5.0, expiration=10.0))
    a.expiration = 20
    assert a.expiration == 20.0 and a.starttime == 5.0
    b = ResourceSet(R(("1", {"core": "0"}), starttime=1.0, expiration=2.0))
    assert (a | b).expiration == 20.0 and (a | b).starttime == 5.0


def test_constraints():
    rs = ResourceSet(R(("0-3", {"core": "0"}), nodelist=["n[0-3]"],
                       properties={"a": "0-1", "b": "1-2"}))
    assert rs.copy_constraint({"properties": ["a"]}).ranks == IDset("0-1")
    assert rs.copy_constraint({"properties": ["a", "^b"]}).ranks == IDset("0")
    assert rs.copy_constraint({"properties": ["nope"]}).ranks == IDset()
    assert rs.copy_constraint('{"hostlist": ["n[2-3]"]}').ranks == IDset("2-3")
    assert rs.copy_constraint({"or": [{"ranks": ["0"]}, {"properties": ["b"]}]}).ranks \
        == IDset("0-2")
    assert rs.copy_constraint({"not": [{"properties": ["a"]}]}).ranks == IDset("2-3")
    assert rs.copy_constraint({"and": [{"ranks": ["0-2"]}, {"properties": ["b"]}]}) \
        .ranks == IDset("1-2")
    for bad, msg in [({"properties": [1]}, "property constraint must be a string, got int"),
                     ({"and": {}}, "'and' operand must be a list, got dict"),
                     ({"foo": []}, r"unknown constraint operator\(s\): \['foo'\]")]:
        with pytest.raises(ValueError, match=msg):
            rs.copy_constraint(bad)


def test_host_ranks_in_the_order_given():
    rs = ResourceSet(GPU4)
    assert rs.host_ranks("n[3,1]") == [3, 1]
    with pytest.raises(FileNotFoundError):
        rs.host_ranks("n9")
    assert rs.host_ranks("n[9,0]", ignore_nomatch=True) == [0]
