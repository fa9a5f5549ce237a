"""Config access: ``config.get``/``config.load``, ``Flux.conf_get`` and its
cache (spec 31), ``flux config get|load|builtin``, ``flux.conf_builtin``."""

import errno
import json
import sys

import pytest

from flux.conf_builtin import NAMES, conf_builtin_get
from conftest import run_flux

CONFIG = {"a": {"foo": "bar", "n": 3, "t": "1.5m", "flag": True,
                "list": [1, "x"]},
          "queues": {"debug": {"policy": {"limits": {"duration": "1h"}}}}}


@pytest.fixture(scope="module")
def inst():
    from conftest import _start_instance

    with _start_instance() as inst:
        inst.handle().rpc("config.load", CONFIG).get()
        yield inst


def flux_cmd(inst, *args, input=None):
    return run_flux(*args, env=inst.env(), input=input)


# -- the RPCs and conf_get -----------------------------------------------------------------

def test_config_get_returns_the_loaded_object(inst):
    assert inst.handle().rpc("config.get").get() == CONFIG


def test_conf_get_keys_and_defaults(inst):
    h = inst.handle()
    assert h.conf_get() == CONFIG
    assert h.conf_get("a.foo") == "bar"
    assert h.conf_get("queues.debug.policy.limits.duration") == "1h"
    assert h.conf_get("a.missing") is None
    assert h.conf_get("a.missing", default=7) == 7
    assert h.conf_get("nothing.at.all", default="d") == "d"
    with pytest.raises(AttributeError):
        h.conf_get("a.foo.bar")  # through a string, as upstream's get_treedict


def test_conf_get_returns_its_cached_dict(inst):
    h = inst.handle()
    conf = h.conf_get()
    assert h.conf_get() is conf
    conf["a"]["foo"] = "changed here"
    assert h.conf_get("a.foo") == "changed here"
    assert h.conf_get("a.foo", update=True) == "bar"  # fetched again
    assert inst.handle().conf_get("a.foo") == "bar"  # other handles: own cache


def test_load_is_seen_only_after_update():
    from conftest import _start_instance

    with _start_instance() as inst:
        h = inst.handle()
        assert h.conf_get() == {}
        other = inst.handle()
        assert other.rpc("config.load", {"x": {"y": 1}}).get() is None
        assert h.conf_get("x.y") is None  # cached before the load
        assert h.conf_get("x.y", update=True) == 1
        assert inst.handle().conf_get() == {"x": {"y": 1}}
        # a load replaces everything
        other.rpc("config.load", {"z": 2}).get()
        assert h.conf_get(update=True) == {"z": 2}


@pytest.mark.parametrize("payload", [None, "[1,2]", "3", "not json"])
def test_load_refuses_what_is_not_an_object(inst, payload):
    h = inst.handle()
    with pytest.raises(OSError) as e:
        h.rpc("config.load", payload).get()
    assert e.value.errno == errno.EPROTO
    assert h.rpc("config.get").get() == CONFIG  # unchanged, broker alive


# -- flux config ------------------------------------------------------------------------------

def test_flux_config_get_whole_and_values(inst):
    res = flux_cmd(inst, "config", "get")
    assert res.returncode == 0 and json.loads(res.stdout) == CONFIG
    out = {key: flux_cmd(inst, "config", "get", key).stdout
           for key in ("a.foo", "a.n", "a.flag", "a.list", "queues.debug")}
    assert out == {"a.foo": "bar\n", "a.n": "3\n", "a.flag": "true\n",
                   "a.list": '[1,"x"]\n',
                   "queues.debug": '{"policy":{"limits":{"duration":"1h"}}}\n'}


def test_flux_config_get_types(inst):
    def get(*args):
        res = flux_cmd(inst, "config", "get", *args)
        return res.returncode, res.stdout, res.stderr

    assert get("--type=fsd-integer", "a.t") == (0, "90\n", "")
    assert get("--type=fsd-real", "a.t") == (0, "90.0\n", "")
    assert get("--type=fsd", "a.t") == (0, "1.5m\n", "")
    assert get("--type=real", "a.n") == (0, "3.0\n", "")
    assert get("--type=integer", "a.n") == (0, "3\n", "")
    rc, out, err = get("--type=integer", "a.foo")
    assert rc == 1 and out == ""
    assert err == 'flux-config: a.foo: value is not of type integer: "bar"\n'
    rc, out, err = get("--type=fsd", "a.foo")
    assert rc == 1 and err.count("\n") == 1 and "standard duration" in err


def test_flux_config_get_missing(inst):
    res = flux_cmd(inst, "config", "get", "a.nope")
    assert (res.returncode, res.stdout, res.stderr) == (
        1, "", "flux-config: a.nope is not set\n")
    res = flux_cmd(inst, "config", "get", "-q", "a.nope")
    assert (res.returncode, res.stderr) == (1, "")
    res = flux_cmd(inst, "config", "get", "--default=5", "a.nope")
    assert (res.returncode, res.stdout) == (0, "5\n")
    res = flux_cmd(inst, "config", "get", "a.foo.x")
    assert res.returncode == 1 and res.stderr.count("\n") == 1
    assert "Traceback" not in res.stderr


def test_flux_config_load(tmp_path):
    from conftest import _start_instance

    with _start_instance() as inst:
        res = flux_cmd(inst, "config", "load", input='{"k": {"v": 1}}')
        assert res.returncode == 0, res.stderr
        assert inst.handle().conf_get("k.v") == 1
        res = flux_cmd(inst, "config", "load", input='[k]\nv = 2\n')
        assert res.returncode == 0, res.stderr
        assert inst.handle().conf_get("k.v") == 2
        (tmp_path / "a.toml").write_text("[x]\ny = 'z'\n")
        (tmp_path / "b.toml").write_text("[w]\nv = 1\n")
        res = flux_cmd(inst, "config", "load", str(tmp_path))
        assert res.returncode == 0, res.stderr
        assert inst.handle().conf_get() == {"x": {"y": "z"}, "w": {"v": 1}}
        for bad in ("[1, 2]", "not = = toml"):
            res = flux_cmd(inst, "config", "load", input=bad)
            assert res.returncode == 1 and res.stderr.count("\n") == 1
            assert res.stderr.startswith("flux-config: ")
        res = flux_cmd(inst, "config", "load", str(tmp_path / "missing"))
        assert res.returncode == 1 and res.stderr.count("\n") == 1
        assert inst.handle().conf_get() == {"x": {"y": "z"}, "w": {"v": 1}}


def test_flux_config_builtin(inst):
    res = flux_cmd(inst, "config", "builtin", "confdir")
    assert (res.returncode, res.stdout) == (0, conf_builtin_get("confdir") + "\n")
    res = flux_cmd(inst, "config", "builtin", "nope")
    assert res.returncode == 1
    assert res.stderr == "flux-config: No builtin config value for 'nope'\n"


# -- flux.conf_builtin (pure) ---------------------------------------------------------------

def test_conf_builtin_names_and_errors():
    for name in NAMES:
        for which in ("auto", "installed", "intree"):
            assert isinstance(conf_builtin_get(name, which), str)
    assert conf_builtin_get("confdir", "installed") == f"{sys.prefix}/etc/flux"
    assert conf_builtin_get("libexecdir", "installed") == f"{sys.prefix}/libexec/flux"
    with pytest.raises(ValueError, match="^which must be one of auto, installed, or intree$"):
        conf_builtin_get("confdir", "elsewhere")
    with pytest.raises(ValueError, match="^No builtin config value for 'nope'$"):
        conf_builtin_get("nope")


def test_conf_builtin_auto_is_intree_in_a_checkout():
    import os

    import flux.conf_builtin as cb

    in_checkout = os.path.isfile(os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(cb.__file__))), "pyproject.toml"))
    expect = "intree" if in_checkout else "installed"
    assert conf_builtin_get("confdir") == conf_builtin_get("confdir", expect)
