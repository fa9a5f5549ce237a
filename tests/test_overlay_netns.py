"""Four brokers on four "hosts": network namespaces made by this test, one
broker per namespace with its own host name (``unshare --uts``), booted from
one configuration file with a ``flux keygen`` certificate, talking tcp over
a bridge that lives in a namespace of its own.  Addresses exist only inside
those namespaces, and everything is removed at the end, even on failure.

Needs root, ``ip`` and ``unshare`` (CI runs as root); skipped, saying why,
where namespaces cannot be made."""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import poll, run_flux

NODES = 4
SUBNET = "10.231.7"  # only ever configured inside this test's namespaces
PORT = 8050


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True,
                          timeout=30, check=check)


def _can_make_namespaces():
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            return f"needs the {tool} command"
    name = f"fxprobe{os.getpid()}"
    if _ip("netns", "add", name, check=False).returncode != 0:
        return "cannot create a network namespace here"
    _ip("netns", "del", name, check=False)
    return None


@pytest.fixture
def cluster(tmp_path):
    why = _can_make_namespaces()
    if why:
        pytest.skip(why)
    tag = f"fx{os.getpid() % 100000}"
    switch = f"{tag}-sw"
    nodes = [f"{tag}-n{i}" for i in range(NODES)]
    made = []
    try:
        _ip("netns", "add", switch)
        made.append(switch)
        _ip("-n", switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", switch, "link", "set", "br0", "up")
        for i, ns in enumerate(nodes):
            _ip("netns", "add", ns)
            made.append(ns)
            _ip("link", "add", f"{tag}v{i}", "netns", switch, "type", "veth",
                "peer", "name", "eth0", "netns", ns)
            _ip("-n", switch, "link", "set", f"{tag}v{i}", "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{SUBNET}.{i + 1}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield tag, nodes
    finally:
        for ns in reversed(made):
            _ip("netns", "del", ns, check=False)


def _config(tmp_path, cert):
    hosts = ",\n    ".join(
        f'{{ host = "node{i}", bind = "tcp://{SUBNET}.{i + 1}:{PORT}",'
        f' connect = "tcp://{SUBNET}.{i + 1}:{PORT}" }}' for i in range(NODES))
    path = tmp_path / "boot.toml"
    path.write_text(textwrap.dedent(f"""\
        [bootstrap]
        curve_cert = "{cert}"
        hosts = [
            {hosts}
        ]
        """))
    return str(path)


def _in_node(ns, host, argv):
    """argv, run in namespace ``ns`` with host name ``host``."""
    return ["ip", "netns", "exec", ns, "unshare", "--uts", "sh", "-c",
            'hostname "$0" && exec "$@"', host, *argv]


def test_four_namespaces_one_instance(cluster, tmp_path):
    tag, nodes = cluster
    cert = str(tmp_path / "curve.cert")
    assert run_flux("keygen", cert).returncode == 0
    config = _config(tmp_path, cert)
    flux = [sys.executable, "-m", "fluxrm.cli.main"]
    followers = []
    try:
        for i in range(1, NODES):
            followers.append(subprocess.Popen(
                _in_node(nodes[i], f"node{i}", [*flux, "start", "-c", config]),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        script = (f"{' '.join(flux)} getattr size;"
                  f" {' '.join(flux)} getattr hostlist;"
                  f" {' '.join(flux)} exec -l hostname;"
                  f" {' '.join(flux)} run -N{NODES} -n{2 * NODES} --label-io"
                  " sh -c 'echo $(hostname) $FLUX_TASK_RANK'")
        leader = subprocess.run(
            _in_node(nodes[0], "node0", [*flux, "start", "-c", config,
                                         "sh", "-c", script]),
            capture_output=True, text=True, timeout=120)
        assert leader.returncode == 0, leader.stderr
        lines = leader.stdout.split("\n")
        assert lines[0] == str(NODES)
        assert lines[1] == f"node[0-{NODES - 1}]"
        assert sorted(lines[2:2 + NODES]) == [f"{i}: node{i}" for i in range(NODES)]
        # a job across the four hosts: tasks 2i and 2i+1 on node i
        tasks = sorted(lines[2 + NODES:2 + 3 * NODES], key=lambda t: int(t.split(":")[0]))
        assert tasks == [f"{t}: node{t // 2} {t}" for t in range(2 * NODES)]
        for proc in followers:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
    finally:
        for proc in followers:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)


def test_a_cut_link_then_a_restart(cluster, tmp_path):
    """node3's link goes down: it is torpid, then lost (and its broker,
    hearing nothing from its parent, exits); the link comes back, its
    broker is started again, and node3 returns to service."""
    tag, nodes = cluster
    cert = str(tmp_path / "curve.cert")
    assert run_flux("keygen", cert).returncode == 0
    config = _config(tmp_path, cert)
    flux = [sys.executable, "-m", "fluxrm.cli.main"]
    fast = ["-Stbon.torpid_max=1", "-Stbon.lost_timeout=3"]
    procs = []

    def follower(i):
        procs.append(subprocess.Popen(
            _in_node(nodes[i], f"node{i}", [*flux, "start", "-c", config, *fast]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        return procs[-1]

    try:
        for i in range(1, NODES):
            follower(i)
        leader = subprocess.Popen(
            _in_node(nodes[0], "node0", [*flux, "start", "-c", config, *fast, "sh", "-c",
                                         'echo "$FLUX_URI"; exec cat']),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        procs.append(leader)
        uri = leader.stdout.readline().strip()
        assert uri.startswith("local://")

        def states():
            out = subprocess.run(
                ["ip", "netns", "exec", nodes[0], *flux, "resource", "status", "-n",
                 "-o", "{state} {ranks}"], env=dict(os.environ, FLUX_URI=uri),
                capture_output=True, text=True, timeout=60).stdout
            return dict(line.split() for line in out.splitlines())

        cut = procs[NODES - 2]  # node3's flux start
        _ip("-n", nodes[3], "link", "set", "eth0", "down")
        try:
            poll(lambda: states().get("torpid") == "3", "node3 torpid")
            poll(lambda: states().get("offline") == "3", "node3 lost")
            cut.communicate(timeout=60)  # its broker gave up on its parent
            assert cut.returncode != 0
        finally:
            _ip("-n", nodes[3], "link", "set", "eth0", "up")
        follower(3)
        poll(lambda: states() == {"avail": "0-3"}, "node3 back in service")
        job = subprocess.run(
            ["ip", "netns", "exec", nodes[0], *flux, "run", "-N4", "-n4", "true"],
            env=dict(os.environ, FLUX_URI=uri), capture_output=True, text=True,
            timeout=60)
        assert job.returncode == 0, job.stderr
        _, err = leader.communicate(timeout=60)
        assert leader.returncode == 0, err
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                proc.communicate(timeout=30)
