"""fluxrm.boot.config: this host's place from the [bootstrap] table."""

import errno
import re
import socket

import pytest

from fluxrm.boot.cert import write_certificate
from fluxrm.boot.config import BootError, boot_from_config, resolve_connect_uri
from fluxrm.boot.topology import KaryTopology, ParentTopology
from fluxrm.config import apply_overrides, load_config


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    path = tmp_path_factory.mktemp("cert") / "curve.cert"
    write_certificate(path, metadata={"name": "test"})
    return str(path)


def bootstrap(cert, **table):
    table.setdefault("curve_cert", cert)
    table.setdefault("default_port", 8050)
    table.setdefault("default_bind", "tcp://eth0:%p")
    table.setdefault("default_connect", "tcp://%h:%p")
    return {"bootstrap": table}


def test_flat_cluster_from_a_config_file(tmp_path, cert):
    (tmp_path / "bootstrap.toml").write_text(f'''
[bootstrap]
curve_cert = "{cert}"
default_port = 8050
default_bind = "tcp://eth0:%p"
default_connect = "tcp://%h:%p"
hosts = [{{host = "login"}}, {{host = "node[0-15]"}}]
''')
    config = load_config(tmp_path)
    root = boot_from_config(config, hostname="login")
    assert (root.rank, root.size) == (0, 17)
    assert root.hostlist == "login,node[0-15]"
    assert root.hosts[:3] == ("login", "node0", "node1") and len(root.hosts) == 17
    assert root.bind_uri == "tcp://eth0:8050" and root.parent_uri is None
    assert root.parent_host is None
    assert isinstance(root.topology, KaryTopology) and root.topology.k == 0
    assert root.topology.children(0) == list(range(1, 17))
    public, secret = root.curve_keys
    assert len(public) == 40 and len(secret) == 40 and root.curve_cert == cert

    leaf = boot_from_config(config, hostname="node7")
    assert (leaf.rank, leaf.size) == (8, 17)
    assert leaf.parent_uri == "tcp://login:8050" and leaf.parent_host == "login"
    assert leaf.bind_uri == "tcp://eth0:8050"  # configured; used only with children
    assert leaf.curve_keys == root.curve_keys

    apply_overrides(config, ["bootstrap.default_port=9000"])
    assert boot_from_config(config, hostname="node0").parent_uri == "tcp://login:9000"


def test_hostname_defaults_to_this_host(cert):
    me = socket.gethostname()
    info = boot_from_config(bootstrap(cert, hosts=[{"host": "other"}, {"host": me}]))
    assert info.rank == 1 and info.hostname == me


def test_no_hosts_is_size_one():
    for config in ({}, {"bootstrap": {}}, {"bootstrap": {"hosts": []}}):
        info = boot_from_config(config, hostname="solo[1]")
        assert (info.rank, info.size, info.hosts) == (0, 1, ("solo[1]",))
        assert info.bind_uri is None and info.parent_uri is None
        assert info.curve_keys is None and info.topology.maxlevel == 0


def test_one_host_needs_no_cert_or_uris():
    info = boot_from_config({"bootstrap": {"hosts": [{"host": "a"}]}}, hostname="a")
    assert (info.rank, info.size, info.hostlist) == (0, 1, "a")


def test_per_entry_uris_and_substitution(cert):
    config = bootstrap(cert, default_bind="tcp://*:%p", hosts=[
        {"host": "gw", "bind": "tcp://10.0.0.1:9%p", "connect": "tcp://gw.example:%p"},
        {"host": "n[1-2]", "connect": "tcp://%h-ib:%p"},
        {"host": "pct", "bind": "ipc:///tmp/%h-%%-%p"},
    ])
    assert boot_from_config(config, hostname="gw").bind_uri == "tcp://10.0.0.1:98050"
    n1 = boot_from_config(config, hostname="n1")
    assert n1.parent_uri == "tcp://gw.example:8050" and n1.bind_uri == "tcp://*:8050"
    assert boot_from_config(config, hostname="pct").bind_uri == "ipc:///tmp/pct-%-8050"


def test_topo_applies_without_parents(cert):
    config = bootstrap(cert, hosts=[{"host": "n[0-9]"}])
    info = boot_from_config(config, hostname="n9", topo="kary:2")
    assert info.topology.parent(9) == 4 and info.parent_uri == "tcp://n4:8050"
    with pytest.raises(BootError, match="^bootstrap: tbon.topo 'binomial' is not supported"):
        boot_from_config(config, hostname="n0", topo="binomial")


def test_explicit_parents(cert):
    config = bootstrap(cert, hosts=[
        {"host": "root"},
        {"host": "mid[1-2]"},
        {"host": "leaf[1-2]", "parent": "mid1", "connect": "tcp://%h.leaf:%p"},
        {"host": "leaf3", "parent": "mid2"},
        {"host": "deep", "parent": "leaf3"},
    ])
    deep = boot_from_config(config, hostname="deep", topo="kary:1")  # parents win
    t = deep.topology
    assert isinstance(t, ParentTopology)
    assert [t.parent(r) for r in range(t.size)] == [None, 0, 0, 1, 1, 2, 5]
    assert t.maxlevel == 3 and deep.parent_host == "leaf3"
    assert deep.parent_uri == "tcp://leaf3:8050"
    leaf1 = boot_from_config(config, hostname="leaf1")
    assert leaf1.parent_uri == "tcp://mid1:8050"  # the parent's connect, not its own
    assert boot_from_config(config, hostname="mid2").topology.children(2) == [5]


def test_children_need_a_bind_uri(cert):
    table = bootstrap(cert, hosts=[{"host": "a"}, {"host": "b"}])
    del table["bootstrap"]["default_bind"]
    assert boot_from_config(table, hostname="b").parent_uri == "tcp://a:8050"
    with pytest.raises(BootError, match="^bootstrap: host a has children but no bind URI"):
        boot_from_config(table, hostname="a")


def test_parent_needs_a_connect_uri(cert):
    table = bootstrap(cert, hosts=[{"host": "a"}, {"host": "b"}])
    del table["bootstrap"]["default_connect"]
    with pytest.raises(BootError, match="no connect URI for host a, the parent of b"):
        boot_from_config(table, hostname="b")


def test_more_hosts_need_a_certificate():
    config = {"bootstrap": {"default_port": 1, "default_bind": "tcp://*:%p",
                            "default_connect": "tcp://%h:%p",
                            "hosts": [{"host": "a"}, {"host": "b"}]}}
    with pytest.raises(BootError, match="curve_cert is required .* flux keygen"):
        boot_from_config(config, hostname="a")


def test_certificate_open_to_others_is_refused(tmp_path):
    path = tmp_path / "c"
    write_certificate(path)
    path.chmod(0o644)
    config = bootstrap(str(path), hosts=[{"host": "a"}, {"host": "b"}])
    with pytest.raises(OSError) as info:
        boot_from_config(config, hostname="a")
    assert info.value.errno == errno.EPERM and "mode 0644" in info.value.strerror


@pytest.mark.parametrize("change, hostname, match", [
    ({"hosts": [{"host": "a"}, {"host": "b"}]}, "c",
     "host c is not in the \\[bootstrap\\] hosts list"),
    ({"hosts": [{"host": "n[1-3]"}, {"host": "n2"}]}, "n1",
     "host n2 appears twice in the hosts list \\(hosts\\[0\\] and hosts\\[1\\]\\)"),
    ({"default_port": 0}, "a", "default_port must be an integer from 1 to 65535, not 0"),
    ({"default_port": 65536}, "a", "default_port must be an integer"),
    ({"default_port": "8050"}, "a", "default_port must be an integer .* not '8050'"),
    ({"default_port": True}, "a", "default_port must be an integer"),
    ({"portt": 1}, "a", "unknown key 'portt' \\(known: curve_cert, default_port"),
    ({"hosts": [{"host": "a", "rank": 0}]}, "a", "hosts\\[0\\]: unknown key 'rank'"),
    ({"hosts": [{"bind": "tcp://*:1"}]}, "a", "hosts\\[0\\] has no 'host' key"),
    ({"hosts": [{"host": ""}]}, "a", "hosts\\[0\\].host must be a non-empty string"),
    ({"hosts": [{"host": 3}]}, "a", "hosts\\[0\\].host must be a non-empty string, not 3"),
    ({"hosts": [{"host": "n[1-"}]}, "a", "hosts\\[0\\].host: Invalid hostlist"),
    ({"hosts": [{"host": ","}]}, "a", "hosts\\[0\\].host ',' names no host"),
    ({"hosts": ["a"]}, "a", "hosts\\[0\\] must be a table"),
    ({"hosts": {"host": "a"}}, "a", "hosts must be an array of tables, not dict"),
    ({"hosts": "a"}, "a", "hosts must be an array of tables, not str"),
    ({"default_bind": 5}, "a", "default_bind must be a non-empty string"),
    ({"enable_ipv6": "yes"}, "a", "enable_ipv6 must be true or false"),
    ({"hosts": [{"host": "a"}, {"host": "b", "parent": "x"}]}, "a",
     "host b: parent 'x' is not in the hosts list"),
    ({"hosts": [{"host": "a", "parent": "b"}, {"host": "b"}]}, "a",
     "a \\(rank 0\\) is the root and cannot have a parent"),
    ({"hosts": [{"host": "a"}, {"host": "b", "parent": "c"}, {"host": "c", "parent": "b"}]},
     "a", "parent cycle: b \\(rank 1\\) -> c \\(rank 2\\) -> b"),
    ({"hosts": [{"host": "a"}, {"host": "b", "parent": "b"}]}, "a",
     "b \\(rank 1\\) is its own parent"),
    ({"default_bind": "tcp://*:%q"}, "a", "bind URI 'tcp://\\*:%q': unknown '%q'"),
    ({"default_bind": "eth0:%p"}, "a", "bind URI 'eth0:%p' is not a URI"),
])
def test_refused(cert, change, hostname, match):
    config = bootstrap(cert, hosts=[{"host": "a"}, {"host": "b"}])
    config["bootstrap"].update(change)
    with pytest.raises(BootError) as info:
        boot_from_config(config, hostname=hostname)
    message = str(info.value)
    assert message.startswith("bootstrap: ") and "\n" not in message
    assert re.search(match, message), message


def test_port_needed_for_percent_p(cert):
    config = bootstrap(cert, hosts=[{"host": "a"}, {"host": "b"}])
    del config["bootstrap"]["default_port"]
    with pytest.raises(BootError, match="uses %p but default_port is not set"):
        boot_from_config(config, hostname="a")


@pytest.mark.parametrize("config", [[], {"bootstrap": []}])
def test_not_tables(config):
    with pytest.raises(BootError, match="must be a table"):
        boot_from_config(config, hostname="a")


def test_resolve_connect_uri():
    assert resolve_connect_uri("tcp://localhost:8050") == "tcp://127.0.0.1:8050"
    assert resolve_connect_uri("tcp://127.0.0.2:1") == "tcp://127.0.0.2:1"
    assert resolve_connect_uri("tcp://[::1]:1") == "tcp://[::1]:1"
    assert resolve_connect_uri("tcp://127.0.0.1:0;localhost:9") == "tcp://127.0.0.1:0;127.0.0.1:9"
    assert resolve_connect_uri("ipc:///tmp/x") == "ipc:///tmp/x"


@pytest.mark.parametrize("uri", ["tcp://host", "tcp://:80", "tcp://h:port", "tcp://h:0",
                                 "tcp://h:70000"])
def test_resolve_malformed(uri):
    with pytest.raises(ValueError, match="is not a connect URI of the form tcp://HOST:PORT"):
        resolve_connect_uri(uri)


def test_resolve_failure_names_the_host(monkeypatch):
    # no lookup leaves the machine: the resolver's failure is simulated
    def fail(host, port, *args):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(OSError) as info:
        resolve_connect_uri("tcp://nosuch-node7:8050")
    assert info.value.errno == errno.EHOSTUNREACH
    assert info.value.strerror == ("cannot resolve host 'nosuch-node7' of "
                                   "tcp://nosuch-node7:8050: Name or service not known")


def test_resolve_prefers_ipv4_and_brackets_ipv6(monkeypatch):
    answers = []

    def fake(host, port, family, kind):
        return [a for a in answers if family in (socket.AF_UNSPEC, a[0])]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    v6 = (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fd00::5", 1, 0, 0))
    v4 = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.5", 1))
    answers[:] = [v6, v4]
    assert resolve_connect_uri("tcp://n:1", ipv6=True) == "tcp://192.0.2.5:1"
    answers[:] = [v6]
    assert resolve_connect_uri("tcp://n:1", ipv6=True) == "tcp://[fd00::5]:1"
