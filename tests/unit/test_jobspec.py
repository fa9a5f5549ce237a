"""Tests for flux.job.Jobspec / JobspecV1 / validate_jobspec, spec 2.1-2.4."""

import argparse
import copy
import json
import math
import os
import pathlib
import resource
import signal as signal_module
import stat
import subprocess
import sys
from collections import OrderedDict, defaultdict
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flux.job import Jobspec, JobspecV1, validate_jobspec
from flux.job.Jobspec import (
    constraint_from_query,
    filtered_environment,
    parse_dependency,
    propagated_rlimits,
)


def make_doc(**overrides):
    doc = {
        "resources": [
            {"type": "slot", "count": 1, "label": "task",
             "with": [{"type": "core", "count": 1}]}
        ],
        "tasks": [{"command": ["true"], "slot": "task", "count": {"per_slot": 1}}],
        "attributes": {"system": {"duration": 0}},
        "version": 1,
    }
    doc.update(overrides)
    return doc


def with_resource(res):
    """A doc whose only resource is ``res``."""
    return make_doc(resources=[res])


def with_count(count, rtype="core"):
    label = {"label": "x"} if rtype == "slot" else {}
    return with_resource({"type": rtype, "count": count, **label})


def with_task(**changes):
    task = {"command": ["true"], "slot": "task", "count": {"per_slot": 1}}
    task.update(changes)
    return make_doc(tasks=[task])


def without_task_key(key):
    doc = make_doc()
    del doc["tasks"][0][key]
    return doc


def with_system(**system):
    return make_doc(attributes={"system": {"duration": 0, **system}})


def small_env(monkeypatch):
    """Replace the process environment with just PATH=/bin (call it inside
    the test body: pytest adds PYTEST_CURRENT_TEST after fixture setup)."""
    for key in list(os.environ):
        monkeypatch.delenv(key)
    monkeypatch.setenv("PATH", "/bin")


# --- construction ------------------------------------------------------------


def test_valid_doc_stored_without_copying():
    doc = make_doc()
    js = JobspecV1(**doc)
    assert list(js.jobspec) == ["resources", "tasks", "attributes", "version"]
    assert js.resources is doc["resources"]
    assert js.tasks is doc["tasks"]
    assert js.attributes is doc["attributes"]
    assert js.version == 1


def test_jobspec_v1_version_defaults_to_1():
    doc = make_doc()
    del doc["version"]
    assert JobspecV1(**doc).version == 1


def test_sections_are_read_only():
    js = JobspecV1(**make_doc())
    for name in ("resources", "tasks", "attributes", "version"):
        with pytest.raises(AttributeError):
            setattr(js, name, None)


def test_no_from_json():
    assert not hasattr(Jobspec, "from_json")
    assert not hasattr(JobspecV1, "from_json")


BASE_ERRORS = [
    # top level
    (make_doc(resources="slot"), TypeError),
    (make_doc(resources={"type": "slot"}), TypeError),
    (make_doc(resources=None), TypeError),
    (make_doc(tasks="true"), TypeError),
    (make_doc(tasks={}), TypeError),
    (make_doc(attributes=[]), TypeError),
    (make_doc(version="1"), TypeError),
    (make_doc(version=1.0), TypeError),
    (make_doc(version=True), TypeError),
    (make_doc(version=0), ValueError),
    (make_doc(version=-1), ValueError),
    # resources
    (make_doc(resources=["slot"]), TypeError),
    (with_resource({"count": 1}), ValueError),
    (with_resource({"type": 1, "count": 1}), TypeError),
    (with_resource({"type": "core"}), ValueError),
    (with_count(0, "node"), ValueError),
    (with_count(0, "slot"), ValueError),
    (with_count(0, "core"), ValueError),
    (with_count(-1, "gpu"), ValueError),
    (with_count(1.5), TypeError),
    (with_count(None), TypeError),
    (with_count(True), TypeError),
    (with_count([1]), TypeError),
    (with_resource({"type": "core", "count": 1, "id": 1}), TypeError),
    (with_resource({"type": "core", "count": 1, "unit": 1}), TypeError),
    (with_resource({"type": "core", "count": 1, "label": 1}), TypeError),
    (with_resource({"type": "core", "count": 1, "exclusive": "yes"}), TypeError),
    (with_resource({"type": "core", "count": 1, "exclusive": 1}), TypeError),
    (with_resource({"type": "slot", "count": 1}), ValueError),
    (with_resource({"type": "node", "count": 1, "with": "core"}), TypeError),
    (with_resource({"type": "node", "count": 1,
                    "with": [{"type": "slot", "count": 1}]}), ValueError),
    (with_resource({"type": "node", "count": 1,
                    "with": [{"type": "core", "count": 0}]}), ValueError),
    # range dict counts
    (with_count({"max": 3}), ValueError),
    (with_count({"min": 0}), ValueError),
    (with_count({"min": "1"}), TypeError),
    (with_count({"min": 1, "max": 0}), ValueError),
    (with_count({"min": 2, "max": 1}), ValueError),
    (with_count({"min": 1, "max": 1.5}), TypeError),
    (with_count({"min": 1, "operand": 2}), ValueError),
    (with_count({"min": 1, "operator": "+"}), ValueError),
    (with_count({"min": 1, "operand": 2, "operator": "/"}), ValueError),
    (with_count({"min": 1, "operand": 2, "operator": 2}), TypeError),
    (with_count({"min": 1, "operand": 0, "operator": "+"}), ValueError),
    (with_count({"min": 1, "operand": 1, "operator": "*"}), ValueError),
    (with_count({"min": 2, "operand": 1, "operator": "^"}), ValueError),
    (with_count({"min": 1, "operand": 2, "operator": "^"}), ValueError),
    (with_count({"min": 1, "foo": 2}), ValueError),
    # string counts
    (with_count(""), ValueError),
    (with_count("abc"), ValueError),
    (with_count("4-1"), ValueError),
    (with_count("1-4:0"), ValueError),
    (with_count("1-4:2:/"), ValueError),
    (with_count("1-4:1:*"), ValueError),
    (with_count("1+:2:^"), ValueError),
    (with_count("0"), ValueError),
    (with_count("0-3"), ValueError),
    # tasks
    (make_doc(tasks=["true"]), TypeError),
    (with_task(count=[1]), TypeError),
    (with_task(count={}), ValueError),
    (with_task(count={"per_slot": 1, "total": 1}), ValueError),
    (with_task(count={"per_slot": 1, "foo": 1}), ValueError),
    (with_task(count={"per_slot": 0}), ValueError),
    (with_task(count={"total": -1}), ValueError),
    (with_task(count={"total": "1"}), TypeError),
    (with_task(count={"per_slot": 1.0}), TypeError),
    (with_task(slot=1), TypeError),
    (with_task(command="hostname"), TypeError),
    (with_task(command=[]), TypeError),
    (with_task(command=["a", 1]), TypeError),
    (with_task(command=("a",)), TypeError),
    (with_task(attributes=[]), TypeError),
    # attributes
    (make_doc(attributes={"foo": {}}), ValueError),
    (make_doc(attributes={"system": []}), TypeError),
    (make_doc(attributes={"system": {"duration": 0}, "user": "x"}), TypeError),
    (with_system(dependencies="afterok"), TypeError),
    (with_system(dependencies=[1]), TypeError),
    (with_system(dependencies=[{"scheme": "afterok"}]), ValueError),
    (with_system(dependencies=[{"value": "1"}]), ValueError),
    (with_system(dependencies=[{"scheme": 1, "value": "x"}]), TypeError),
    (with_system(dependencies=[{"scheme": "afterok", "value": 1}]), TypeError),
    # constraints (RFC 31)
    (with_system(constraints=[]), TypeError),
    (with_system(constraints={"foo": ["x"]}), TypeError),
    (with_system(constraints={"properties": "x"}), TypeError),
    (with_system(constraints={"properties": [1]}), TypeError),
    (with_system(constraints={"hostlist": [1]}), TypeError),
    (with_system(constraints={"and": [1]}), TypeError),
    (with_system(constraints={"and": {"properties": ["x"]}}), TypeError),
    (with_system(constraints={"or": [{"bogus": []}]}), TypeError),
    (with_system(constraints={"not": [{"properties": [None]}]}), TypeError),
    (with_system(constraints={"ranks": [1.5]}), TypeError),
    (with_system(constraints={"ranks": ["x"]}), ValueError),
]


@pytest.mark.parametrize("doc, exc", BASE_ERRORS)
def test_base_validation_errors(doc, exc):
    for cls in (Jobspec, JobspecV1):
        with pytest.raises(exc):
            cls(**copy.deepcopy(doc))


@pytest.mark.parametrize("key", ["command", "slot", "count"])
def test_missing_task_key_message(key):
    with pytest.raises(ValueError, match=rf"^Missing key \({key}\)$"):
        Jobspec(**without_task_key(key))


def test_extraneous_attribute_message():
    with pytest.raises(ValueError, match=r"^Extraneous key \(foo\)$"):
        Jobspec(**make_doc(attributes={"system": {}, "foo": 1}))


def test_first_failure_wins():
    with pytest.raises(TypeError):
        Jobspec(**make_doc(resources="x", version=0))
    with pytest.raises(TypeError):  # resource checked before task
        Jobspec(**make_doc(resources=[1], tasks=[{"command": ["x"]}]))


BASE_VALID = [
    with_count(0, "gpu"),
    with_count(0, "memory"),
    with_count({"min": 1}),
    with_count({"min": 1, "max": 4}),
    with_count({"min": 4, "max": 4}),
    with_count({"min": 1, "max": 8, "operand": 2, "operator": "*"}),
    with_count({"min": 1, "operand": 1, "operator": "+"}),
    with_count({"min": 2, "max": 16, "operand": 2, "operator": "^"}),
    with_count("1"),
    with_count("1-4"),
    with_count("1,3,5-7"),
    with_count("2+"),
    with_count("1-8:2"),
    with_count("1-8:2:*"),
    with_count("2+:2:^"),
    with_count("0", "gpu"),
    with_resource({"type": "core", "count": 1, "id": "x", "unit": "u",
                   "label": "l", "exclusive": False, "extra": 1}),
    with_task(count={"per_resource": 2}),
    with_task(count={"per_resource": {"type": "node", "count": 1}}),
    with_task(attributes={"x": 1}, extra="allowed"),
    make_doc(attributes={"system": {"duration": 0}, "user": {"x": 1}}),
    with_system(dependencies=[]),
    with_system(dependencies=[{"scheme": "afterok", "value": "f2", "extra": 1}]),
    with_system(constraints={}),
    with_system(constraints={"properties": ["a", "^b"]}),
    with_system(constraints={"hostlist": ["host[1-3]"], "ranks": ["0-3", 5]}),
    with_system(constraints={"and": [{"properties": ["a"]},
                                     {"or": [{"not": [{"hostlist": ["h1"]}]},
                                             {"ranks": ["1"]}]}]}),
]


@pytest.mark.parametrize("doc", BASE_VALID)
def test_base_accepts(doc):
    js = Jobspec(**doc)
    assert js.jobspec["resources"] is doc["resources"]


def test_base_accepts_other_versions_and_no_system():
    js = Jobspec(**make_doc(version=2, attributes={}))
    assert js.version == 2
    assert js.duration is None


def test_tuples_are_sequences():
    doc = make_doc()
    js = Jobspec(tuple(doc["resources"]), tuple(doc["tasks"]),
                 doc["attributes"], 1)
    assert isinstance(js.resources, tuple)


# --- JobspecV1 restrictions --------------------------------------------------


V1_ERRORS = [
    (make_doc(version=2), ValueError),
    (make_doc(attributes={}), ValueError),
    (make_doc(attributes={"user": {}}), ValueError),
    (make_doc(attributes={"system": {}}), ValueError),
    (make_doc(attributes={"system": {"duration": "1m"}}), TypeError),
    (make_doc(attributes={"system": {"duration": None}}), TypeError),
    (make_doc(attributes={"system": {"duration": True}}), TypeError),
    (make_doc(attributes={"system": {"duration": -1}}), ValueError),
    (make_doc(attributes={"system": {"duration": math.inf}}), ValueError),
    (with_task(count={"per_resource": 1}), ValueError),
    (with_count({"min": 1}), ValueError),
    (with_count("1-4"), ValueError),
    (with_count("2"), ValueError),
    (with_resource({"type": "node", "count": 1,
                    "with": [{"type": "slot", "label": "task",
                              "count": {"min": 1}}]}), ValueError),
]


@pytest.mark.parametrize("doc, exc", V1_ERRORS)
def test_v1_errors(doc, exc):
    with pytest.raises(exc):
        JobspecV1(**doc)


@pytest.mark.parametrize("doc", [d for d, _ in V1_ERRORS if d["version"] == 1
                                 and "system" in d["attributes"]
                                 and not isinstance(
                                     d["attributes"]["system"].get("duration", 0),
                                     (str, type(None), bool))
                                 and d["attributes"]["system"].get("duration", 0) == 0])
def test_v1_only_restrictions_pass_base(doc):
    Jobspec(**doc)


def test_v1_version_checked_after_base():
    with pytest.raises(TypeError):
        JobspecV1(**make_doc(version=2, resources="x"))


def test_v1_accepts_float_duration_and_no_rfc25_shape():
    js = JobspecV1(**make_doc(attributes={"system": {"duration": 1.5}},
                              resources=[{"type": "core", "count": 2},
                                         {"type": "memory", "count": 0}]))
    assert js.duration == 1.5


# --- YAML --------------------------------------------------------------------

YAML_DOC = """\
version: 1
resources:
  - type: slot
    count: 2
    label: default
    with:
      - type: core
        count: 4
tasks:
  - command: [app, --flag]
    slot: default
    count:
      per_slot: 1
attributes:
  system:
    duration: 3600
"""


def test_from_yaml_stream():
    js = JobspecV1.from_yaml_stream(YAML_DOC)
    assert isinstance(js, JobspecV1)
    assert js.tasks[0]["command"] == ["app", "--flag"]
    assert dict(js.resource_counts()) == {"slot": 2, "core": 8}


def test_from_yaml_stream_file_object(tmp_path):
    path = tmp_path / "js.yaml"
    path.write_text(YAML_DOC)
    with open(path) as stream:
        assert JobspecV1.from_yaml_stream(stream).duration == 3600


def test_from_yaml_file(tmp_path):
    path = tmp_path / "js.yaml"
    path.write_text(YAML_DOC)
    assert JobspecV1.from_yaml_file(str(path)).duration == 3600
    # JSON is YAML
    path.write_text(json.dumps(make_doc()))
    assert JobspecV1.from_yaml_file(path).jobspec == make_doc()


def test_from_yaml_missing_key():
    with pytest.raises(ValueError, match=r"Missing key \(version\)"):
        JobspecV1.from_yaml_stream(YAML_DOC.replace("version: 1\n", ""))


def test_from_yaml_extraneous_key():
    with pytest.raises(ValueError, match=r"Extraneous key \(extra\)"):
        JobspecV1.from_yaml_stream(YAML_DOC + "extra: 1\n")


def test_from_yaml_not_a_mapping():
    with pytest.raises(TypeError):
        Jobspec.from_yaml_stream("- 1\n- 2\n")


def test_from_yaml_class_decides_validation():
    text = YAML_DOC.replace("version: 1", "version: 2")
    assert Jobspec.from_yaml_stream(text).version == 2
    with pytest.raises(ValueError):
        JobspecV1.from_yaml_stream(text)


# --- properties --------------------------------------------------------------


@pytest.fixture
def js():
    return JobspecV1(**make_doc())


@pytest.mark.parametrize("value, expected", [
    (10, 10.0), (0, 0.0), (1.5, 1.5), ("30", 30.0), ("1m", 60.0),
    ("1.5h", 5400.0), ("2d", 172800.0), ("500ms", 0.5), ("0", 0.0),
    (timedelta(minutes=2), 120.0), (timedelta(0), 0.0),
])
def test_duration_setter(js, value, expected):
    js.duration = value
    assert js.duration == expected
    assert type(js.attributes["system"]["duration"]) is float


@pytest.mark.parametrize("value, exc", [
    (None, TypeError), ([1], TypeError), (True, TypeError), (b"1m", TypeError),
    (-1, ValueError), (-0.5, ValueError), ("-1m", ValueError),
    ("inf", ValueError), ("infinity", ValueError), (math.inf, ValueError),
    (math.nan, ValueError), ("nan", ValueError), ("bogus", ValueError),
    ("1x", ValueError), ("", ValueError), (timedelta(seconds=-1), ValueError),
])
def test_duration_setter_errors(js, value, exc):
    with pytest.raises(exc):
        js.duration = value
    assert js.duration == 0


def test_duration_unset_is_none():
    assert Jobspec(**make_doc(attributes={"system": {}})).duration is None


def test_cwd(js):
    assert js.cwd is None
    js.cwd = "/tmp"
    assert js.cwd == "/tmp" and js.attributes["system"]["cwd"] == "/tmp"
    js.cwd = pathlib.Path("/var")
    assert js.attributes["system"]["cwd"] == "/var"
    for bad in (1, None, b"/tmp"):
        with pytest.raises(ValueError):
            js.cwd = bad


def test_environment(js):
    assert js.environment is None
    env = {"A": "1"}
    js.environment = env
    assert js.attributes["system"]["environment"] is env
    env["B"] = "2"
    assert js.environment["B"] == "2"
    for bad in ([("A", "1")], "A=1", None):
        with pytest.raises(ValueError):
            js.environment = bad


def test_queue(js):
    assert js.queue is None
    js.queue = "batch"
    assert js.attributes["system"]["queue"] == "batch"
    with pytest.raises(TypeError):
        js.queue = 1


@pytest.mark.parametrize("prop, alias, path", [
    ("stdin", "input", ("input", "stdin")),
    ("stdout", "output", ("output", "stdout")),
    ("stderr", "error", ("output", "stderr")),
])
def test_stdio(js, prop, alias, path):
    assert getattr(js, prop) is None and getattr(js, alias) is None
    setattr(js, prop, "/tmp/a")
    options = js.attributes["system"]["shell"]["options"]
    assert options[path[0]][path[1]] == {"type": "file", "path": "/tmp/a"}
    assert getattr(js, alias) == "/tmp/a"
    setattr(js, alias, pathlib.Path("/tmp/b"))
    assert getattr(js, prop) == "/tmp/b"
    for bad in (None, 1, ["x"]):
        with pytest.raises(TypeError):
            setattr(js, prop, bad)
        with pytest.raises(TypeError):
            setattr(js, alias, bad)


UNBUFFERED_OPTIONS = {
    "output": {"stdout": {"buffer": {"type": "none"}},
               "stderr": {"buffer": {"type": "none"}},
               "batch-timeout": 0.05},
    "input": {"batch-timeout": 0.0},
}


def test_unbuffered(js):
    assert js.unbuffered is False
    js.unbuffered = True
    assert js.unbuffered is True
    assert js.attributes["system"]["shell"]["options"] == UNBUFFERED_OPTIONS
    js.unbuffered = False
    assert js.unbuffered is False
    assert js.jobspec == make_doc()


def test_unbuffered_false_keeps_changed_settings(js):
    js.stdout = "out"
    js.unbuffered = True
    js.setattr_shell_option("output.batch-timeout", 1.0)
    js.unbuffered = False
    assert js.attributes["system"]["shell"]["options"] == {
        "output": {"stdout": {"type": "file", "path": "out"},
                   "batch-timeout": 1.0},
    }


@pytest.mark.parametrize("bad", [1, 0, None, "yes"])
def test_unbuffered_type(js, bad):
    with pytest.raises(TypeError):
        js.unbuffered = bad


# --- setattr / getattr -------------------------------------------------------


@pytest.mark.parametrize("key, path", [
    ("cow", ["attributes", "system", "cow"]),
    ("a.b", ["attributes", "system", "a", "b"]),
    ("system.cow", ["attributes", "system", "cow"]),
    ("user.x", ["attributes", "user", "x"]),
    ("attributes.goat", ["attributes", "goat"]),
    ("attributes.system.x", ["attributes", "system", "x"]),
    ("userx", ["attributes", "system", "userx"]),
])
def test_setattr_key_rewriting(js, key, path):
    js.setattr(key, 42)
    node = js.jobspec
    for part in path:
        node = node[part]
    assert node == 42
    assert js.getattr(key) == 42


def test_setattr_creates_intermediates(js):
    js.setattr("user.a.b.c", "x")
    assert js.attributes["user"] == {"a": {"b": {"c": "x"}}}
    js.setattr("user.a.d", 1)
    assert js.attributes["user"] == {"a": {"b": {"c": "x"}, "d": 1}}


def test_getattr_missing(js):
    with pytest.raises(KeyError):
        js.getattr("nope")
    with pytest.raises(KeyError):
        js.getattr("user.x")
    with pytest.raises(KeyError):
        js.getattr("duration.x")
    js.setattr("x", None)
    with pytest.raises(KeyError):
        js.getattr("x")
    assert js.getattr("duration") == 0


def test_setattr_shell_option(js):
    js.setattr_shell_option("mpi", "none")
    js.setattr_shell_option("output.stdout.label", True)
    assert js.attributes["system"]["shell"]["options"] == {
        "mpi": "none", "output": {"stdout": {"label": True}}}
    assert js.getattr("shell.options.mpi") == "none"


# --- add_file ----------------------------------------------------------------


def test_add_file_content(js):
    js.add_file("script.sh", "#!/bin/sh\ntrue\n")
    assert js.attributes["system"]["files"]["script.sh"] == {
        "mode": stat.S_IFREG | 0o600, "data": "#!/bin/sh\ntrue\n",
        "encoding": "utf-8"}


def test_add_file_perms_and_encoding(js):
    js.add_file("a", "no newline", perms=0o755, encoding="utf-8")
    js.add_file("b", "aGVsbG8=", encoding="base64")
    files = js.attributes["system"]["files"]
    assert files["a"] == {"mode": stat.S_IFREG | 0o755, "data": "no newline",
                          "encoding": "utf-8"}
    assert files["b"] == {"mode": stat.S_IFREG | 0o600, "data": "aGVsbG8=",
                          "encoding": "base64"}


def test_add_file_mapping(js):
    js.add_file("conf.json", {"a": 1})
    entry = js.attributes["system"]["files"]["conf.json"]
    assert entry == {"mode": stat.S_IFREG | 0o600, "data": {"a": 1}}
    assert type(entry) is dict
    js.add_file("c2", OrderedDict(b=2), perms=0o644)
    assert js.attributes["system"]["files"]["c2"]["mode"] == stat.S_IFREG | 0o644


def test_add_file_from_disk(js, tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("hello")
    path.chmod(0o640)
    js.add_file("data.txt", str(path))
    assert js.attributes["system"]["files"]["data.txt"] == {
        "mode": stat.S_IFREG | 0o640, "size": 5, "data": "hello",
        "encoding": "utf-8"}


def test_add_file_from_disk_binary(js, tmp_path):
    path = tmp_path / "bin"
    path.write_bytes(b"\xff\x00")
    js.add_file("bin", str(path))
    assert js.attributes["system"]["files"]["bin"]["encoding"] == "base64"


def test_add_file_missing_local_file(js, tmp_path):
    with pytest.raises(FileNotFoundError):
        js.add_file("x", str(tmp_path / "missing"))


@pytest.mark.parametrize("bad", [1, None, b"data", ["a"]])
def test_add_file_type(js, bad):
    with pytest.raises(TypeError):
        js.add_file("x", bad)


def test_add_file_keeps_existing_files(js):
    js.add_file("a", "1\n")
    js.add_file("b", "2\n")
    assert list(js.attributes["system"]["files"]) == ["a", "b"]


# --- dumps, str, repr --------------------------------------------------------


def test_dumps(js):
    assert js.dumps() == json.dumps(make_doc())
    assert json.loads(js.dumps(indent=2)) == make_doc()
    assert js.dumps(separators=(",", ":")).startswith('{"resources":[{')
    js.setattr("user.name", "café ✓")
    assert "café ✓" in js.dumps()


def test_str(js):
    assert str(js) == str(make_doc())


@pytest.mark.parametrize("cls, doc", [
    (JobspecV1, make_doc()),
    (Jobspec, make_doc(version=3, attributes={"user": {"x": [1, 2]}})),
])
def test_repr_round_trip(cls, doc):
    js = cls(**doc)
    text = repr(js)
    assert text.startswith(f"{cls.__name__}([{{")
    assert ", attributes=" in text and text.endswith(f", version={doc['version']})")
    again = eval(text, {"Jobspec": Jobspec, "JobspecV1": JobspecV1})
    assert type(again) is cls
    assert again.jobspec == js.jobspec


# --- resource walking --------------------------------------------------------

NESTED = [
    {"type": "node", "count": 2, "with": [
        {"type": "slot", "count": 2, "label": "task", "with": [
            {"type": "core", "count": 4},
            {"type": "gpu", "count": 1},
        ]},
        {"type": "memory", "count": 16, "unit": "GB"},
    ]},
]


def test_iteration_depth_first_preorder():
    js = JobspecV1(**make_doc(resources=NESTED))
    assert [r["type"] for r in js] == ["node", "slot", "core", "gpu", "memory"]


def test_resource_walk():
    js = JobspecV1(**make_doc(resources=NESTED))
    walk = [(p and p["type"], r["type"], n) for p, r, n in js.resource_walk()]
    assert walk == [
        (None, "node", 2),
        ("node", "slot", 4),
        ("slot", "core", 16),
        ("slot", "gpu", 4),
        ("node", "memory", 32),
    ]


def test_resource_counts():
    js = JobspecV1(**make_doc(resources=NESTED))
    counts = js.resource_counts()
    assert isinstance(counts, defaultdict)
    assert dict(counts) == {"node": 2, "slot": 4, "core": 16, "gpu": 4,
                            "memory": 32}
    assert counts["nothing"] == 0


def test_resource_counts_slot_core():
    resources = [{"type": "slot", "count": 2, "label": "x",
                  "with": [{"type": "core", "count": 4}]}]
    assert dict(JobspecV1(**make_doc(resources=resources)).resource_counts()) == {
        "slot": 2, "core": 8}


def test_resource_counts_with_ranges_use_minimum():
    resources = [{"type": "node", "count": {"min": 2, "max": 4}, "with": [
        {"type": "core", "count": "3-5"}]}]
    assert dict(Jobspec(**make_doc(resources=resources)).resource_counts()) == {
        "node": 2, "core": 6}


# --- from_command ------------------------------------------------------------


def test_from_command_canonical_hostname(monkeypatch):
    small_env(monkeypatch)
    js = JobspecV1.from_command(["hostname"])
    assert js.dumps() == (
        '{"resources": [{"type": "slot", "count": 1, "with": '
        '[{"type": "core", "count": 1}], "label": "task"}], '
        '"tasks": [{"command": ["hostname"], "slot": "task", '
        '"count": {"per_slot": 1}}], '
        '"attributes": {"system": {"duration": 0, '
        '"environment": {"PATH": "/bin"}}}, "version": 1}'
    )
    assert type(js.attributes["system"]["duration"]) is int
    assert js.cwd is None


def test_from_command_canonical_full_environ():
    js = JobspecV1.from_command(["hostname"])
    expected = {
        "resources": [{"type": "slot", "count": 1,
                       "with": [{"type": "core", "count": 1}], "label": "task"}],
        "tasks": [{"command": ["hostname"], "slot": "task",
                   "count": {"per_slot": 1}}],
        "attributes": {"system": {"duration": 0,
                                  "environment": dict(os.environ)}},
        "version": 1,
    }
    assert js.dumps() == json.dumps(expected, ensure_ascii=False)
    assert js.environment is not os.environ
    assert type(js.environment) is dict


def test_from_command_is_class_aware():
    class MyJobspec(JobspecV1):
        pass

    assert type(MyJobspec.from_command(["true"])) is MyJobspec


def res_json(js):
    return json.dumps(js.resources, separators=(",", ":"))


@pytest.mark.parametrize("kwargs, resources, count", [
    ({"num_tasks": 4, "cores_per_task": 2},
     '[{"type":"slot","count":4,"with":[{"type":"core","count":2}],"label":"task"}]',
     {"per_slot": 1}),
    ({"gpus_per_task": 0},
     '[{"type":"slot","count":1,"with":[{"type":"core","count":1}],"label":"task"}]',
     {"per_slot": 1}),
    ({"gpus_per_task": 2},
     '[{"type":"slot","count":1,"with":[{"type":"core","count":1},'
     '{"type":"gpu","count":2}],"label":"task"}]',
     {"per_slot": 1}),
    ({"num_tasks": 4, "num_nodes": 2},
     '[{"type":"node","count":2,"with":[{"type":"slot","count":2,'
     '"with":[{"type":"core","count":1}],"label":"task"}]}]',
     {"per_slot": 1}),
    ({"num_tasks": 3, "num_nodes": 2, "exclusive": True, "gpus_per_task": 1},
     '[{"type":"node","count":2,"exclusive":true,"with":[{"type":"slot",'
     '"count":2,"with":[{"type":"core","count":1},{"type":"gpu","count":1}],'
     '"label":"task"}]}]',
     {"total": 3}),
    ({"num_tasks": 5, "num_nodes": 5, "exclusive": False},
     '[{"type":"node","count":5,"with":[{"type":"slot","count":1,'
     '"with":[{"type":"core","count":1}],"label":"task"}]}]',
     {"per_slot": 1}),
])
def test_from_command_layouts(kwargs, resources, count):
    js = JobspecV1.from_command(["app"], environment={}, **kwargs)
    assert res_json(js) == resources
    assert js.tasks == [{"command": ["app"], "slot": "task", "count": count}]


@pytest.mark.parametrize("kwargs", [
    {"num_tasks": 0}, {"num_tasks": -1}, {"num_tasks": "1"}, {"num_tasks": 1.0},
    {"cores_per_task": 0}, {"cores_per_task": None},
    {"gpus_per_task": -1}, {"gpus_per_task": 1.5},
    {"num_nodes": 0}, {"num_nodes": "1"},
    {"num_tasks": 2, "num_nodes": 3},
    {"exclusive": True},
    {"environment": ["A=1"]}, {"environment": "A=1"},
    {"env_expand": ["x"]}, {"rlimits": 1},
    {"duration": -1}, {"duration": "bogus"}, {"cwd": 1},
])
def test_from_command_value_errors(kwargs):
    with pytest.raises(ValueError):
        JobspecV1.from_command(["app"], **kwargs)


@pytest.mark.parametrize("kwargs", [
    {"duration": [1]}, {"queue": 1}, {"output": 1}, {"input": 2},
    {"unbuffered": "yes"},
])
def test_from_command_type_errors(kwargs):
    with pytest.raises(TypeError):
        JobspecV1.from_command(["app"], **kwargs)


@pytest.mark.parametrize("command", ["hostname", [], ["a", None], ("a",)])
def test_from_command_bad_command(command):
    with pytest.raises(TypeError):
        JobspecV1.from_command(command)


def test_from_command_all_options():
    env = {"A": "1"}
    js = JobspecV1.from_command(
        ["app"], duration="1m", environment=env, env_expand={"X": "{{id}}"},
        cwd=pathlib.Path("/work"), rlimits={"nofile": -1}, name="myjob",
        input="in.txt", output="out.txt", error="err.txt", label_io=True,
        unbuffered=True, queue="debug", bank="physics",
    )
    system = js.attributes["system"]
    assert list(system) == ["duration", "environment", "shell", "cwd", "job",
                            "queue", "bank"]
    assert system["duration"] == 60.0
    assert system["environment"] is env
    assert system["cwd"] == "/work"
    assert system["job"] == {"name": "myjob"}
    assert system["queue"] == "debug" and system["bank"] == "physics"
    assert system["shell"]["options"] == {
        "env-expand": {"X": "{{id}}"},
        "rlimit": {"nofile": -1},
        "input": {"stdin": {"type": "file", "path": "in.txt"},
                  "batch-timeout": 0.0},
        "output": {
            "stdout": {"type": "file", "path": "out.txt", "label": True,
                       "buffer": {"type": "none"}},
            "stderr": {"type": "file", "path": "err.txt", "label": True,
                       "buffer": {"type": "none"}},
            "batch-timeout": 0.05,
        },
    }
    assert js.unbuffered and js.stdin == "in.txt" and js.stdout == "out.txt"


@pytest.mark.parametrize("value", ["none", "kvs"])
def test_from_command_output_none_kvs_ignored(value):
    js = JobspecV1.from_command(["app"], environment={}, output=value, error=value)
    assert js.stdout is None and js.stderr is None
    assert "shell" not in js.attributes["system"]


def test_from_command_duration_float():
    js = JobspecV1.from_command(["app"], duration=5)
    assert js.attributes["system"]["duration"] == 5.0
    assert type(js.attributes["system"]["duration"]) is float


def test_from_command_environment_copy_of_environ(monkeypatch):
    monkeypatch.setenv("FLUXRM_TEST_VAR", "x")
    js = JobspecV1.from_command(["app"])
    assert js.environment["FLUXRM_TEST_VAR"] == "x"
    monkeypatch.setenv("FLUXRM_TEST_VAR", "y")
    assert js.environment["FLUXRM_TEST_VAR"] == "x"


def test_from_command_validates_with_validate_jobspec():
    js = JobspecV1.from_command(["app"], num_tasks=3, num_nodes=2, duration=10)
    ok, obj = validate_jobspec(js.dumps(), require_version=1)
    assert ok is True and obj.jobspec == js.jobspec


# --- per_resource ------------------------------------------------------------


@pytest.mark.parametrize("kwargs, resources", [
    ({"ncores": 4},
     '[{"type":"slot","count":4,"with":[{"type":"core","count":1}],"label":"task"}]'),
    ({"ncores": 8, "nnodes": 2},
     '[{"type":"node","count":2,"with":[{"type":"slot","count":1,'
     '"with":[{"type":"core","count":4}],"label":"task"}]}]'),
    ({"nnodes": 3, "exclusive": True},
     '[{"type":"node","count":3,"exclusive":true,"with":[{"type":"slot",'
     '"count":1,"with":[{"type":"core","count":1}],"label":"task"}]}]'),
    ({"ncores": 2, "nnodes": 2, "gpus_per_node": 2, "exclusive": True},
     '[{"type":"node","count":2,"exclusive":true,"with":[{"type":"slot",'
     '"count":1,"with":[{"type":"core","count":1},{"type":"gpu","count":2}],'
     '"label":"task"}]}]'),
])
def test_per_resource_layouts(kwargs, resources):
    js = JobspecV1.per_resource(["app"], environment={}, **kwargs)
    assert res_json(js) == resources
    assert js.tasks[0]["count"] == {"per_slot": 1}
    assert "shell" not in js.attributes["system"]


def test_per_resource_shell_option_and_kwargs():
    js = JobspecV1.per_resource(["app"], ncores=4, per_resource_type="core",
                                per_resource_count=2, duration=60, cwd="/tmp")
    assert js.attributes["system"]["shell"]["options"]["per-resource"] == {
        "type": "core", "count": 2}
    assert js.duration == 60.0 and js.cwd == "/tmp"
    assert "PATH" in js.environment or js.environment == dict(os.environ)


@pytest.mark.parametrize("kwargs", [
    {"ncores": 4, "per_resource_type": "node"},
    {"ncores": 4, "per_resource_count": 1},
    {"ncores": 4, "per_resource_type": "socket", "per_resource_count": 1},
    {"ncores": 4, "per_resource_type": "node", "per_resource_count": 0},
    {"ncores": 4, "gpus_per_node": 1},
    {"ncores": 4, "exclusive": True},
    {"nnodes": 2},
    {},
    {"ncores": 2, "nnodes": 3},
    {"ncores": 5, "nnodes": 2},
    {"ncores": 0},
    {"nnodes": 0, "exclusive": True},
])
def test_per_resource_errors(kwargs):
    with pytest.raises(ValueError):
        JobspecV1.per_resource(["app"], **kwargs)


def test_per_resource_unknown_keyword():
    with pytest.raises(TypeError):
        JobspecV1.per_resource(["app"], ncores=1, num_tasks=2)


# --- nest and batch ----------------------------------------------------------


def test_from_nest_command():
    js = JobspecV1.from_nest_command(["app", "x"], num_slots=2, cores_per_slot=3,
                                     num_nodes=2, broker_opts=["-v"],
                                     environment={}, duration=10)
    assert js.tasks[0]["command"] == ["flux", "broker", "-v", "app", "x"]
    assert res_json(js) == (
        '[{"type":"node","count":2,"with":[{"type":"slot","count":1,'
        '"with":[{"type":"core","count":3}],"label":"task"}]}]')
    assert js.attributes["system"]["shell"]["options"] == {
        "per-resource": {"type": "node"}, "mpi": "none", "exit-timeout": "none"}
    assert js.duration == 10.0


def test_from_nest_command_conf():
    opts = ["-Sx=1"]
    js = JobspecV1.from_nest_command(["app"], broker_opts=opts,
                                     conf={"resource": {"noverify": True}})
    assert js.tasks[0]["command"] == [
        "flux", "broker", "-Sx=1", "-c{{tmpdir}}/conf.json", "app"]
    assert opts == ["-Sx=1"]  # caller's list untouched
    assert js.attributes["system"]["files"]["conf.json"] == {
        "mode": stat.S_IFREG | 0o600, "data": {"resource": {"noverify": True}}}


SCRIPT = "#!/bin/sh\necho hi\n"


def test_from_batch_command():
    js = JobspecV1.from_batch_command(SCRIPT, "myjob", args=["a", "b"],
                                      num_slots=2, environment={})
    assert js.tasks[0]["command"] == ["flux", "broker", "{{tmpdir}}/script",
                                      "a", "b"]
    system = js.attributes["system"]
    assert system["job"] == {"name": "myjob"}
    assert system["files"]["script"] == {
        "mode": stat.S_IFREG | 0o700, "data": SCRIPT, "encoding": "utf-8"}
    assert system["shell"]["options"]["per-resource"] == {"type": "node"}
    assert dict(js.resource_counts()) == {"slot": 2, "core": 2}


def test_from_batch_command_single_line_script_is_content():
    js = JobspecV1.from_batch_command("#!/bin/true", "j")
    assert js.attributes["system"]["files"]["script"]["data"] == "#!/bin/true"


def test_from_batch_command_needs_shebang():
    with pytest.raises(ValueError) as exc:
        JobspecV1.from_batch_command("echo hi\n", "myjob")
    assert str(exc.value) == "myjob does not appear to start with '#!'"


# --- validate_jobspec --------------------------------------------------------


def test_validate_jobspec_inputs():
    text = json.dumps(make_doc())
    for arg in (text, text.encode(), JobspecV1(**make_doc())):
        ok, obj = validate_jobspec(arg)
        assert ok is True
        assert type(obj) is JobspecV1
        assert obj.jobspec == make_doc()


def test_validate_jobspec_version_choice():
    text = json.dumps(make_doc(version=2))
    ok, obj = validate_jobspec(text)
    assert type(obj) is Jobspec and obj.version == 2
    with pytest.raises(ValueError):
        validate_jobspec(text, require_version=1)
    with pytest.raises(ValueError):
        validate_jobspec(json.dumps(make_doc()), require_version=2)


def test_validate_jobspec_require_v1_checks_v1_rules():
    doc = make_doc(attributes={"system": {}})
    assert validate_jobspec(json.dumps(make_doc(version=2, attributes={})))[0]
    with pytest.raises(ValueError):
        validate_jobspec(json.dumps(doc), require_version=1)


@pytest.mark.parametrize("doc, message", [
    ({k: v for k, v in make_doc().items() if k != "tasks"}, r"Missing key \(tasks\)"),
    (make_doc(extra=1), r"Extraneous key \(extra\)"),
])
def test_validate_jobspec_top_level_keys(doc, message):
    with pytest.raises(ValueError, match=message):
        validate_jobspec(json.dumps(doc))


@pytest.mark.parametrize("text", ["{", "", "not json", b"\xff"])
def test_validate_jobspec_bad_json(text):
    with pytest.raises(ValueError):
        validate_jobspec(text)


def test_validate_jobspec_not_an_object():
    with pytest.raises(TypeError):
        validate_jobspec("[1, 2]")


def test_validate_jobspec_errors_propagate():
    with pytest.raises(TypeError):
        validate_jobspec(json.dumps(with_task(command="hostname")))


# --- import cost -------------------------------------------------------------


def test_import_is_lazy():
    code = ("import sys, flux.job\n"
            "flux.job.JobspecV1.from_command(['x'])\n"
            "for mod in ('yaml', 'flux.util', 'flux.idset'):\n"
            "    assert mod not in sys.modules, mod\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- properties (hypothesis) -------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    num_tasks=st.integers(1, 64),
    cores=st.integers(1, 8),
    gpus=st.one_of(st.none(), st.integers(0, 4)),
    nodes=st.one_of(st.none(), st.integers(1, 64)),
    exclusive=st.booleans(),
)
def test_from_command_property(num_tasks, cores, gpus, nodes, exclusive):
    if nodes is not None and nodes > num_tasks:
        with pytest.raises(ValueError):
            JobspecV1.from_command(["x"], num_tasks, cores, gpus, nodes)
        return
    if nodes is None:
        exclusive = False
    js = JobspecV1.from_command(["x"], num_tasks, cores, gpus, nodes, exclusive,
                                environment={})
    counts = js.resource_counts()
    slots = num_tasks if nodes is None else -(-num_tasks // nodes) * nodes
    assert counts["slot"] == slots >= num_tasks
    assert counts["core"] == slots * cores
    assert counts["gpu"] == (slots * gpus if gpus else 0)
    assert counts["node"] == (nodes or 0)
    # every resource dict uses the canonical key order
    order = ["type", "count", "exclusive", "with", "label"]
    for res in js:
        keys = list(res)
        assert keys == sorted(keys, key=order.index)
    ok, again = validate_jobspec(js.dumps(), require_version=1)
    assert again.jobspec == js.jobspec
    assert eval(repr(js), {"JobspecV1": JobspecV1}).jobspec == js.jobspec


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_duration_round_trip(seconds):
    js = JobspecV1(**make_doc())
    js.duration = seconds
    assert js.duration == seconds
    js.duration = timedelta(seconds=seconds)
    assert math.isclose(js.duration, seconds, rel_tol=1e-9, abs_tol=1e-6)
    js.duration = f"{seconds!r}s"
    assert js.duration == seconds


count_values = st.one_of(
    st.integers(-2, 5), st.none(), st.booleans(), st.floats(allow_nan=False),
    st.text(max_size=6),
    st.dictionaries(st.sampled_from(["min", "max", "operand", "operator", "x"]),
                    st.one_of(st.integers(-1, 4), st.sampled_from("+*^/")),
                    max_size=4),
)


@settings(max_examples=300)
@given(st.sampled_from(["node", "slot", "core", "gpu"]), count_values)
def test_count_validation_never_crashes(rtype, count):
    """Any count is accepted or rejected with TypeError/ValueError only."""
    res = {"type": rtype, "count": count, "label": "x"}
    try:
        js = Jobspec(**make_doc(resources=[res]))
    except (TypeError, ValueError):
        return
    assert js.resource_counts()[rtype] >= (1 if rtype != "gpu" else 0)


# --- apply_options and the high-level factories (v0.85) ----------------------

def fresh():
    return JobspecV1.from_command(["app"], environment={"KEEP": "1"})


def shell_options(js):
    return js.attributes["system"].get("shell", {}).get("options", {})


def test_apply_options_returns_self_and_no_op_by_default():
    js = fresh()
    before = copy.deepcopy(js.jobspec)
    assert js.apply_options() is js
    assert js.jobspec == before  # env/rlimit untouched unless asked


def test_apply_options_unknown_keyword():
    with pytest.raises(TypeError, match="bogus"):
        fresh().apply_options(bogus=1)


ENVIRON = {"HOME": "/home/u", "PATH": "/bin", "LANG": "C", "LC_ALL": "C",
           "FOO_1": "a", "FOO_2": "b"}


@pytest.mark.parametrize("rules, env, expand", [
    ([], ENVIRON, {}),
    (["-LC_*"], {k: v for k, v in ENVIRON.items() if k != "LC_ALL"}, {}),
    (["-*", "PATH"], {"PATH": "/bin"}, {}),
    (["-*", "FOO_*"], {"FOO_1": "a", "FOO_2": "b"}, {}),
    (["-/^FOO_[12]$/", "-/^L/"], {"HOME": "/home/u", "PATH": "/bin"}, {}),
    (["-*", "X=1", "Y=$X:${X}2"], {"X": "1", "Y": "1:12"}, {}),
    (["-*", "P=$PATH:/usr/bin"], None, None),
    (["-*", "T={{tmpdir}}/x"], {}, {"T": "{{tmpdir}}/x"}),
    (["-*", "MISSING"], {}, {}),
])
def test_filtered_environment(rules, env, expand):
    if env is None:  # $PATH was removed by -*: substitution fails
        with pytest.raises(ValueError, match="PATH"):
            filtered_environment(rules, ENVIRON)
        return
    assert filtered_environment(rules, ENVIRON) == (env, expand)


def test_filtered_environment_rule_file(tmp_path):
    path = tmp_path / "rules"
    path.write_text("# comment\n-*\n\nHOME\nZ=$HOME/z\n")
    env, _ = filtered_environment([f"^{path}"], ENVIRON)
    assert env == {"HOME": "/home/u", "Z": "/home/u/z"}


def test_filtered_environment_does_not_modify_source():
    source = dict(ENVIRON)
    filtered_environment(["-*", "A=1"], source)
    assert source == ENVIRON


def test_apply_options_env(monkeypatch):
    monkeypatch.setenv("FLUXRM_X", "x")
    js = fresh().apply_options(env=["-*", "FLUXRM_X", "ID={{id}}"])
    assert js.environment == {"FLUXRM_X": "x"}
    assert shell_options(js)["env-expand"] == {"ID": "{{id}}"}
    js = fresh().apply_options(env=[])
    assert js.environment == dict(os.environ)


def test_propagated_rlimits_default():
    limits = propagated_rlimits()
    for skipped in ("memlock", "ofile", "msgqueue", "nice", "rtprio", "rttime",
                    "sigpending"):
        assert skipped not in limits
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert limits["nofile"] == (-1 if soft == resource.RLIM_INFINITY else soft)
    assert all(isinstance(v, int) and v >= -1 for v in limits.values())
    assert list(limits) == sorted(limits)


def test_propagated_rlimits_rules():
    assert propagated_rlimits(["-*"]) == {}
    assert propagated_rlimits(["-*", "core=unlimited", "nofile=100"]) == {
        "core": -1, "nofile": 100}
    assert "memlock" in propagated_rlimits(["memlock"])
    assert "core" not in propagated_rlimits(["-core"])
    for bad in (["bogus"], ["bogus=1"], ["core=lots"], ["core=-5"]):
        with pytest.raises(ValueError):
            propagated_rlimits(bad)


def test_apply_options_rlimit():
    js = fresh().apply_options(rlimit=["-*", "core=0"])
    assert shell_options(js)["rlimit"] == {"core": 0}


@pytest.mark.parametrize("spec, expected", [
    ("", {"signum": signal_module.SIGUSR1, "timeleft": 60}),
    ("@", {"signum": signal_module.SIGUSR1, "timeleft": 60}),
    ("SIGTERM", {"signum": signal_module.SIGTERM, "timeleft": 60}),
    ("term@2m", {"signum": signal_module.SIGTERM, "timeleft": 120.0}),
    ("10@30", {"signum": 10, "timeleft": 30.0}),
    ("@1h", {"signum": signal_module.SIGUSR1, "timeleft": 3600.0}),
])
def test_apply_options_signal(spec, expected):
    assert shell_options(fresh().apply_options(signal=spec))["signal"] == expected


@pytest.mark.parametrize("spec", ["SIGBOGUS", "0", "999", "USR1@bogus", "@-1",
                                  "SIG_DFL"])
def test_apply_options_signal_errors(spec):
    with pytest.raises(ValueError):
        fresh().apply_options(signal=spec)


@pytest.mark.parametrize("spec, expected", [
    ("block", {"scheme": "block", "value": ""}),
    ("cyclic", {"scheme": "cyclic", "value": ""}),
    ("cyclic:4", {"scheme": "cyclic", "value": "4"}),
    ("manual:[[0,1,1,1]]", {"scheme": "manual", "value": "[[0,1,1,1]]"}),
])
def test_apply_options_taskmap(spec, expected):
    assert shell_options(fresh().apply_options(taskmap=spec))["taskmap"] == expected


def test_apply_options_taskmap_hostfile(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("node1\nnode2\n\nnode3\n")
    taskmap = shell_options(fresh().apply_options(taskmap=f"hostfile:{path}"))
    assert taskmap["taskmap"] == {"scheme": "hostfile", "value": "node[1-3]"}


@pytest.mark.parametrize("spec", ["", ":x", "cyclic:0", "cyclic:x", "hostfile"])
def test_apply_options_taskmap_errors(spec):
    with pytest.raises(ValueError):
        fresh().apply_options(taskmap=spec)


@pytest.mark.parametrize("uri, expected", [
    ("afterok:ƒ2", {"scheme": "afterok", "value": "ƒ2"}),
    ("after:123?delay=5&x=y", {"scheme": "after", "value": "123", "delay": 5,
                               "x": "y"}),
    ("singleton", {"scheme": "singleton", "value": ""}),
])
def test_parse_dependency(uri, expected):
    assert parse_dependency(uri) == expected


@pytest.mark.parametrize("uri", ["", ":x", "1abc:x", "a b:c"])
def test_parse_dependency_errors(uri):
    with pytest.raises(ValueError):
        parse_dependency(uri)


def test_apply_options_dependency():
    js = fresh().apply_options(dependency=["afterok:f2", "afterany:f3"])
    assert js.attributes["system"]["dependencies"] == [
        {"scheme": "afterok", "value": "f2"}, {"scheme": "afterany", "value": "f3"}]
    js = fresh().apply_options(dependency="afterok:f2")
    assert len(js.attributes["system"]["dependencies"]) == 1


@pytest.mark.parametrize("query, expected", [
    ("foo", {"properties": ["foo"]}),
    ("foo bar", {"properties": ["foo", "bar"]}),
    ("foo and ^bar", {"properties": ["foo", "^bar"]}),
    ("foo or bar", {"or": [{"properties": ["foo"]}, {"properties": ["bar"]}]}),
    ("foo|bar", {"or": [{"properties": ["foo"]}, {"properties": ["bar"]}]}),
    ("foo | bar", {"or": [{"properties": ["foo"]}, {"properties": ["bar"]}]}),
    ("host:node[1-4]", {"hostlist": ["node[1-4]"]}),
    ("hosts:a,b", {"hostlist": ["a,b"]}),
    ("rank:0-3", {"ranks": ["0-3"]}),
    ("-host:node1", {"not": [{"hostlist": ["node1"]}]}),
    ("not foo", {"not": [{"properties": ["foo"]}]}),
    ("(foo or bar) and rank:0", {"and": [
        {"or": [{"properties": ["foo"]}, {"properties": ["bar"]}]},
        {"ranks": ["0"]}]}),
    ("a and (b and c)", {"properties": ["a", "b", "c"]}),
    ('rank:"0-1"', {"ranks": ["0-1"]}),
    ("'a b' c", {"properties": ["a b", "c"]}),
])
def test_constraint_from_query(query, expected):
    assert constraint_from_query(query) == expected
    Jobspec(**with_system(constraints=expected))


def test_constraint_from_several_queries():
    assert constraint_from_query(["foo", "rank:1"]) == {
        "and": [{"properties": ["foo"]}, {"ranks": ["1"]}]}


@pytest.mark.parametrize("query", ["", "(foo", "foo)", "and foo", "foo or",
                                   "host:", "not"])
def test_constraint_from_query_errors(query):
    with pytest.raises(ValueError):
        constraint_from_query(query)


def test_apply_options_requires():
    # joined with a space, as upstream: juxtaposition binds looser than or
    js = fresh().apply_options(requires=["foo", "host:n1 or host:n2"])
    assert js.attributes["system"]["constraints"] == {"or": [
        {"and": [{"properties": ["foo"]}, {"hostlist": ["n1"]}]},
        {"hostlist": ["n2"]}]}


def test_apply_options_shell_options_and_attributes():
    js = fresh().apply_options(
        shell_options={"mpi": "none", "cpu-affinity": "off", "a.b": 1},
        attributes={"x": 1, "user.y": 2, ".user.z": 3, "system.w": 4},
    )
    assert shell_options(js) == {"mpi": "none", "cpu-affinity": "off",
                                 "a": {"b": 1}}
    system = js.attributes["system"]
    assert system["x"] == 1 and system["w"] == 4
    assert js.attributes["user"] == {"y": 2, "z": 3}


def test_apply_options_attributes_validated():
    with pytest.raises(ValueError, match=r"Extraneous key \(foo\)"):
        fresh().apply_options(attributes={".foo": 5})
    with pytest.raises(TypeError):
        fresh().apply_options(attributes=[("x", 1)])


@pytest.mark.parametrize("value, seconds", [
    ("5", 300.0), ("1.5", 90.0), ("30s", 30.0), ("2h", 7200.0), ("0", 0.0),
    (10, 10.0), (timedelta(minutes=1), 60.0),
])
def test_apply_options_time_limit(value, seconds):
    assert fresh().apply_options(time_limit=value).duration == seconds


def test_apply_options_time_limit_rejects_clock_format():
    with pytest.raises(ValueError, match="invalid Flux standard duration"):
        fresh().apply_options(time_limit="00:30")


def test_apply_options_add_file(tmp_path):
    local = tmp_path / "local.txt"
    local.write_text("abc")
    js = fresh().apply_options(add_file=[
        "a.sh:755=#!/bin/sh\ntrue\n",
        "b=line\n",
        f"c={local}",
        str(local),
    ])
    files = js.attributes["system"]["files"]
    assert files["a.sh"] == {"mode": stat.S_IFREG | 0o755,
                             "data": "#!/bin/sh\ntrue\n", "encoding": "utf-8"}
    assert files["b"]["data"] == "line\n"
    assert files["c"]["data"] == "abc"
    assert files["local.txt"]["data"] == "abc"
    with pytest.raises(ValueError):
        fresh().apply_options(add_file=["no name\n"])


def test_apply_options_from_args_namespace(monkeypatch, tmp_path):
    monkeypatch.setenv("FLUXRM_A", "a")
    attr_file = tmp_path / "v.json"
    attr_file.write_text('{"k": [1, 2]}')
    args = argparse.Namespace(
        env=["-*", "FLUXRM_A"], env_remove=["FLUXRM_A"], env_file=None,
        rlimit=None, setopt=["mpi=none", "flag", "n=5", "j={\"a\":1}"],
        setattr=["user.s=text", f"^user.f={attr_file}"], time_limit="2",
        signal=None, taskmap=None, dependency=None, requires=None,
        add_file=None,
    )
    js = fresh().apply_options(args)
    assert js.environment == {}
    assert shell_options(js)["mpi"] == "none"
    assert shell_options(js)["flag"] == 1
    assert shell_options(js)["n"] == 5
    assert shell_options(js)["j"] == {"a": 1}
    assert "rlimit" in shell_options(js)  # args given: rlimits propagate
    assert js.attributes["user"] == {"s": "text", "f": {"k": [1, 2]}}
    assert js.duration == 120.0


def test_apply_options_keywords_win_over_args():
    args = argparse.Namespace(time_limit="2", env=None)
    assert fresh().apply_options(args, time_limit="1s").duration == 1.0


def test_from_submit(monkeypatch):
    monkeypatch.setenv("FLUXRM_SUBMIT", "1")
    js = JobspecV1.from_submit(["app", "x"], ntasks=4, nodes=2, cores_per_task=2,
                               name="n", queue="q", time_limit="1",
                               output="out.{{id}}")
    assert js.tasks[0]["command"] == ["app", "x"]
    assert dict(js.resource_counts()) == {"node": 2, "slot": 4, "core": 8}
    system = js.attributes["system"]
    assert system["cwd"] == os.getcwd()
    assert system["environment"]["FLUXRM_SUBMIT"] == "1"
    assert "rlimit" in system["shell"]["options"]
    assert system["job"] == {"name": "n"} and system["queue"] == "q"
    assert js.duration == 60.0
    assert js.stdout == "out.{{id}}"


def test_from_submit_explicit_env_and_cwd():
    js = JobspecV1.from_submit(["app"], env=["-*", "A=1"], rlimit=["-*"],
                               cwd="/tmp")
    assert js.environment == {"A": "1"}
    assert js.cwd == "/tmp"
    assert shell_options(js)["rlimit"] == {}


def test_from_submit_unknown_keyword():
    with pytest.raises(TypeError):
        JobspecV1.from_submit(["app"], num_tasks=2)


def test_from_alloc_nodes_only():
    js = JobspecV1.from_alloc(nodes=2)
    # no initial program: the instance's shell is the broker's default
    assert js.tasks[0]["command"] == ["flux", "broker"]
    node = js.resources[0]
    assert node["type"] == "node" and node["count"] == 2 and node["exclusive"]
    slot = node["with"][0]
    assert slot["type"] == "slot" and slot["count"] == 1
    assert slot["with"] == [{"type": "core", "count": 1}]
    options = shell_options(js)
    assert options["per-resource"] == {"type": "node"}
    assert options["mpi"] == "none" and options["exit-timeout"] == "none"
    assert "pty" not in options  # never interactive: the CLI decides that
    assert js.cwd == os.getcwd()
    assert "rlimit" in options


def test_from_alloc_takes_no_command():
    with pytest.raises(TypeError):
        JobspecV1.from_alloc(["myscript.sh"], nslots=4)
    js = JobspecV1.from_alloc(nslots=4, cores_per_slot=2)
    assert js.tasks[0]["command"] == ["flux", "broker"]
    assert dict(js.resource_counts()) == {"slot": 4, "core": 8}


def test_from_alloc_bg():
    js = JobspecV1.from_alloc(nslots=1, bg=True)
    assert js.tasks[0]["command"] == ["flux", "broker", "-Sbroker.rc2_none=1"]
    assert shell_options(js)["pty"] == {"capture": 1}


def test_from_alloc_needs_size():
    with pytest.raises(ValueError, match=r"^from_alloc\(\) requires nslots or nodes$"):
        JobspecV1.from_alloc()


def test_from_batch_file(tmp_path):
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\nflux run hostname\n")
    js = JobspecV1.from_batch(script, nslots=2)  # a PathLike, too
    system = js.attributes["system"]
    assert system["job"] == {"name": "job.sh"}
    assert js.stdout == "flux-{{id}}.out"
    assert system["files"]["script"]["data"] == script.read_text()
    assert system["files"]["script"]["mode"] & 0o777 == 0o700
    assert js.tasks[0]["command"] == ["flux", "broker", "{{tmpdir}}/script"]
    assert js.cwd == os.getcwd()
    with pytest.raises(TypeError):
        JobspecV1.from_batch(str(script), nslots=1, script_args=["a"])


def test_from_batch_content_and_wrap():
    js = JobspecV1.from_batch(content="hostname\n", wrap=True, nodes=1,
                              output="o.txt")
    system = js.attributes["system"]
    assert system["files"]["script"]["data"] == "#!/bin/sh\nhostname\n"
    assert system["job"] == {"name": "batch"}
    assert js.stdout == "o.txt"
    assert js.resources[0]["exclusive"] is True
    # wrap leaves a script that has its own shebang as it is
    js = JobspecV1.from_batch(content="#!/bin/bash\necho\n", wrap=True)
    assert js.attributes["system"]["files"]["script"]["data"] == "#!/bin/bash\necho\n"


def test_from_batch_defaults_to_one_slot():
    js = JobspecV1.from_batch(content="#!/bin/sh\ntrue\n")
    assert dict(js.resource_counts()) == {"slot": 1, "core": 1}


def test_from_batch_errors(tmp_path):
    with pytest.raises(TypeError, match="^from_batch\\(\\) accepts 'script' or "
                       "'content', not both$"):
        JobspecV1.from_batch(str(tmp_path / "x"), content="#!/bin/sh\n")
    with pytest.raises(TypeError, match="^from_batch\\(\\) requires 'script' "
                       "\\(file path\\) or 'content' \\(inline script\\)$"):
        JobspecV1.from_batch(nslots=1)
    with pytest.raises(ValueError, match="^batch does not appear to start with"):
        JobspecV1.from_batch(content="hostname\n", nslots=1)
