"""``flux kvs`` command line."""

import itertools
import os
import subprocess
import sys

import pytest

import flux.kvs as kvs

_counter = itertools.count()


@pytest.fixture
def ns(h, instance):
    name = f"cli-{os.getpid()}-{next(_counter)}"
    kvs.namespace_create(h, name)
    yield name
    kvs.namespace_remove(h, name)


@pytest.fixture
def run(instance, ns, flux_cli):
    """Run ``flux kvs ARGS`` in the test namespace (via the environment)."""
    env = instance.env(FLUX_KVS_NAMESPACE=ns)

    def _run(*args, input=None):
        return flux_cli("kvs", *args, env=env, input=input)

    return _run


def ok(proc):
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def fails(proc, text, rc=1):
    assert proc.returncode == rc, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert text in lines[0], lines[0]
    return lines[0]


def test_put_get(run, h, ns):
    ok(run("put", "a=5", "b.c=hello", 'b.d={"x": 1}', "e="))
    assert ok(run("get", "a", "b.c", "b.d", "e")) == '5\nhello\n{"x": 1}\n\n'
    # the python API sees what the command stored
    assert kvs.get(h, "a", namespace=ns) == 5
    assert kvs.get(h, "b.c", namespace=ns) == "hello"
    assert kvs.get(h, "b.d", namespace=ns) == {"x": 1}
    assert ok(run("get", "-l", "a")) == "a=5\n"


def test_get_errors(run):
    ok(run("put", "d.x=1"))
    line = fails(run("get", "missing"), "missing: No such file or directory")
    assert line.startswith("flux-kvs: ")
    fails(run("get", "d"), "d: Is a directory")


def test_raw(run, h, ns):
    data = "raw\x01data"
    ok(run("put", "-r", "r=-", input=data))
    assert ok(run("get", "-r", "r")) == data
    kvs.put(h, "json", {"k": [1, 2]})
    kvs.commit(h, namespace=ns)
    assert ok(run("get", "json")) == '{"k": [1, 2]}\n'


def test_append(run):
    ok(run("put", "log=a"))
    ok(run("put", "-A", "log=b", "log=c"))
    assert ok(run("get", "log")) == "abc\n"


def test_ls_and_dir(run):
    ok(run("put", "a=1", "d.x=2", "d.sub.y=3"))
    ok(run("link", "d", "lnk"))
    assert ok(run("ls")) == "a\nd\nlnk\n"
    assert ok(run("ls", "-F")) == "a\nd.\nlnk@\n"
    assert ok(run("ls", "-R", "d")) == "d:\nsub\nx\n\nd.sub:\ny\n"
    assert ok(run("ls", "-d", "d")) == "d\n"
    assert ok(run("dir", "d")) == "d.sub.\nd.x = 2\n"
    assert ok(run("dir", "-R")) == "a = 1\nd.sub.y = 3\nd.x = 2\nlnk -> d\n"
    assert ok(run("dir", "-R", "-d", "d")) == "d.sub.y = \nd.x = \n"
    fails(run("dir", "a"), "a: Not a directory")
    fails(run("ls", "nope"), "nope: No such file or directory")


def test_unlink(run):
    ok(run("put", "d.x=1", "v=2", "e.y=3"))
    ok(run("unlink", "v"))
    fails(run("get", "v"), "No such file or directory")
    fails(run("unlink", "d"), "d: cannot unlink non-empty directory")
    ok(run("unlink", "-R", "d"))
    fails(run("unlink", "gone"), "gone: No such file or directory")
    ok(run("unlink", "-f", "gone"))
    ok(run("mkdir", "empty"))
    ok(run("unlink", "empty"))
    fails(run("ls", "empty"), "No such file or directory")


def test_mkdir_link_readlink(run):
    ok(run("mkdir", "m"))
    fails(run("mkdir", "m"), "m: File exists")
    ok(run("put", "m.v=1"))
    ok(run("link", "m.v", "l"))
    assert ok(run("readlink", "l")) == "m.v\n"
    assert ok(run("get", "l")) == "1\n"
    fails(run("readlink", "m.v"), "m.v: not a symlink")


def test_watch_count(run, instance, ns):
    ok(run("put", "w=first"))
    env = instance.env(FLUX_KVS_NAMESPACE=ns)
    proc = subprocess.Popen(
        [sys.executable, "-m", "fluxrm.cli.main", "kvs", "watch", "-c", "3", "w"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline() == "first\n"  # the watch is established
        ok(run("put", "w=second"))
        ok(run("put", "w=third"))
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out == "second\nthird\n"


def test_watch_waitcreate(run, instance, ns):
    env = instance.env(FLUX_KVS_NAMESPACE=ns)
    proc = subprocess.Popen(
        [sys.executable, "-m", "fluxrm.cli.main", "kvs", "get", "--watch", "-W",
         "-c", "1", "created"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        # no readiness signal exists before the key does; the watch may be
        # registered after the put, in which case it sees the value at once
        ok(run("put", "created=yes"))
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out == "yes\n"


def test_watch_missing(run):
    fails(run("watch", "nothere"), "nothere: No such file or directory")


def test_namespaces(run, flux_cli, instance, h):
    name = f"clins-{os.getpid()}"
    env = instance.env()
    ok(flux_cli("kvs", "namespace", "create", name, env=env))
    try:
        fails(flux_cli("kvs", "namespace", "create", name, env=env), name)
        out = ok(flux_cli("kvs", "namespace", "list", env=env))
        lines = out.splitlines()
        assert lines[0].split() == ["NAMESPACE", "OWNER", "FLAGS"]
        assert {ln.split()[0] for ln in lines[1:]} >= {"primary", name}
        ok(flux_cli("kvs", "-N", name, "put", "k=1", env=env))
        assert ok(flux_cli("kvs", "get", "-N", name, "k", env=env)) == "1\n"
        assert kvs.get(h, "k", namespace=name) == 1
    finally:
        ok(flux_cli("kvs", "namespace", "remove", name, env=env))
    fails(flux_cli("kvs", "namespace", "remove", "primary", env=env),
          "primary: Operation not supported")
    fails(flux_cli("kvs", "-N", name, "get", "k", env=env), "Operation not supported")


@pytest.mark.parametrize("args, text", [
    ((), "missing subcommand"),
    (("bogus",), "invalid choice"),
    (("put", "novalue"), "key=value"),
    (("get",), "required"),
    (("namespace",), "missing subcommand"),
    (("watch", "-c", "x", "k"), "invalid int value"),
])
def test_usage_errors(run, args, text):
    proc = run(*args)
    assert proc.returncode != 0
    fails(proc, text, rc=proc.returncode)


def test_no_instance(flux_cli, tmp_path):
    env = dict(os.environ, FLUX_URI=f"local://{tmp_path}/nonexistent")
    fails(flux_cli("kvs", "get", "a", env=env), "Unable to connect to Flux")


def test_help(flux_cli):
    proc = flux_cli("kvs", "--help")
    assert proc.returncode == 0 and "get" in proc.stdout
