"""Booting from the ``[bootstrap]`` table of the instance configuration.

Every host runs the same command with the same configuration; each finds
its own place in it by name, with no exchange between brokers::

    [bootstrap]
    curve_cert = "/etc/flux/curve.cert"   # one certificate for all brokers
    default_port = 8050
    default_bind = "tcp://eth0:%p"        # %p: the port, %h: the host
    default_connect = "tcp://%h:%p"
    hosts = [
        { host = "login" },                               # rank 0
        { host = "node[0-15]" },                          # ranks 1-16
        { host = "gw", bind = "tcp://*:9000", parent = "login" },
    ]

`boot_from_config` turns that and this host's name into a `BootInfo`:
rank (the place of this host in the expanded list), size, the host list,
this rank's bind URI, its parent's connect URI (from the parent's entry,
``%h`` being the parent's name), and the tree's shape: flat (or the given
``tbon.topo``) unless an entry names a ``parent``, in which case every
host without one hangs under rank 0.  A configuration without ``hosts``
is a size-1 instance.

`resolve_connect_uri` looks up the host of a ``tcp://`` URI once, so that
a name that does not resolve is an error now rather than ZeroMQ retrying
it forever without a word.

Every fault is one line: `BootError` (a ``ValueError``) for the
configuration, ``OSError`` for files and names that cannot be found.
"""

import dataclasses
import errno
import ipaddress
import re
import socket

from fluxrm.boot.topology import ParentTopology, parse_topo

__all__ = ["BootError", "BootInfo", "boot_from_config", "resolve_connect_uri"]

_BOOTSTRAP_KEYS = ("curve_cert", "default_port", "default_bind", "default_connect",
                   "hosts", "enable_ipv6")
_HOST_KEYS = ("host", "bind", "connect", "parent")
_SUBST = re.compile(r"%(.?)")


class BootError(ValueError):
    """The ``[bootstrap]`` table is wrong, or does not fit this host."""

    def __init__(self, message):
        super().__init__(f"bootstrap: {message}")


@dataclasses.dataclass(frozen=True)
class BootInfo:
    """This broker's place in the instance, as the configuration gives it."""

    rank: int
    size: int
    hostname: str            # this host's name, as matched in the hosts list
    hosts: tuple             # every host's name, in rank order
    hostlist: str            # ``hosts`` as one compact hostlist string
    topology: object         # a KaryTopology or ParentTopology of ``size`` ranks
    bind_uri: str | None     # where this rank listens (None if none configured)
    parent_uri: str | None   # where the parent listens (None on rank 0)
    curve_cert: str | None   # the certificate's path (None for size 1 without one)
    curve_keys: tuple | None  # (public, secret) Z85 bytes read from curve_cert
    enable_ipv6: bool

    @property
    def parent_host(self):
        parent = self.topology.parent(self.rank)
        return None if parent is None else self.hosts[parent]


def _table(config):
    if not isinstance(config, dict):
        raise BootError(f"the configuration must be a table, not {type(config).__name__}")
    table = config.get("bootstrap", {})
    if not isinstance(table, dict):
        raise BootError(f"[bootstrap] must be a table, not {type(table).__name__}")
    for key in table:
        if key not in _BOOTSTRAP_KEYS:
            raise BootError(f"unknown key '{key}' (known: {', '.join(_BOOTSTRAP_KEYS)})")
    return table


def _string(value, what):
    if value is not None and (not isinstance(value, str) or not value):
        raise BootError(f"{what} must be a non-empty string, not {value!r}")
    return value


def _port(table):
    port = table.get("default_port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                             or not 1 <= port <= 65535):
        raise BootError(f"default_port must be an integer from 1 to 65535, not {port!r}")
    return port


def _expand_entries(entries):
    """[(host, entry)] in rank order, from the ``hosts`` array of tables."""
    from flux.hostlist import Hostlist

    if not isinstance(entries, list):
        raise BootError(f"hosts must be an array of tables, not {type(entries).__name__}")
    out, seen = [], {}
    for i, entry in enumerate(entries):
        where = f"hosts[{i}]"
        if not isinstance(entry, dict):
            raise BootError(f"{where} must be a table such as {{host = \"node0\"}}, "
                            f"not {entry!r}")
        for key in entry:
            if key not in _HOST_KEYS:
                raise BootError(f"{where}: unknown key '{key}' "
                                f"(known: {', '.join(_HOST_KEYS)})")
        if "host" not in entry:
            raise BootError(f"{where} has no 'host' key")
        for key in _HOST_KEYS:
            _string(entry.get(key), f"{where}.{key}")
        try:
            names = list(Hostlist(entry["host"]))
        except (ValueError, OSError) as exc:
            raise BootError(f"{where}.host: {exc}") from None
        if not names:
            raise BootError(f"{where}.host '{entry['host']}' names no host")
        for name in names:
            if name in seen:
                raise BootError(f"host {name} appears twice in the hosts list "
                                f"(hosts[{seen[name]}] and {where})")
            seen[name] = i
            out.append((name, entry))
    return out


def _topology(expanded, index, topo):
    if not any("parent" in entry for _host, entry in expanded):
        try:
            return parse_topo(topo or "kary:0", len(expanded))
        except ValueError as exc:
            raise BootError(str(exc)) from None
    parents = [None] * len(expanded)
    for rank, (host, entry) in enumerate(expanded):
        name = entry.get("parent")
        if name is None:
            parents[rank] = 0 if rank else None
        elif name not in index:
            raise BootError(f"host {host}: parent '{name}' is not in the hosts list")
        else:
            parents[rank] = index[name]
    try:
        return ParentTopology(parents, names=[h for h, _e in expanded])
    except ValueError as exc:
        raise BootError(str(exc)) from None


def _substitute(uri, host, port, what):
    def one(match):
        code = match.group(1)
        if code == "h":
            return host
        if code == "p":
            if port is None:
                raise BootError(f"{what} '{uri}' uses %p but default_port is not set")
            return str(port)
        if code == "%":
            return "%"
        raise BootError(f"{what} '{uri}': unknown '%{code}' (use %h, %p or %%)")

    text = _SUBST.sub(one, uri)
    if "://" not in text:
        raise BootError(f"{what} '{uri}' is not a URI such as tcp://%h:%p")
    return text


def boot_from_config(config, hostname=None, topo=None):
    """This host's `BootInfo` from the instance ``config`` (a dict).

    ``hostname`` defaults to ``socket.gethostname()``; ``topo`` is the
    ``tbon.topo`` to use when no host entry names a parent (default
    ``"kary:0"``, flat).  The certificate, if any, is read and checked
    here.  Raises `BootError`, or ``OSError`` for the certificate file.
    """
    table = _table(config)
    port = _port(table)
    default_bind = _string(table.get("default_bind"), "default_bind")
    default_connect = _string(table.get("default_connect"), "default_connect")
    cert = _string(table.get("curve_cert"), "curve_cert")
    ipv6 = table.get("enable_ipv6", False)
    if not isinstance(ipv6, bool):
        raise BootError(f"enable_ipv6 must be true or false, not {ipv6!r}")
    if hostname is None:
        hostname = socket.gethostname()

    entries = table.get("hosts")
    # no hosts: an instance of this one host, whatever its name looks like
    if entries is None or entries == []:
        expanded = [(hostname, {})]
    else:
        expanded = _expand_entries(entries)
    index = {host: rank for rank, (host, _e) in enumerate(expanded)}
    if hostname not in index:
        raise BootError(f"host {hostname} is not in the [bootstrap] hosts list")
    rank, size = index[hostname], len(expanded)
    topology = _topology(expanded, index, topo)

    entry = expanded[rank][1]
    bind = entry.get("bind", default_bind)
    bind_uri = None if bind is None else _substitute(bind, hostname, port,
                                                     f"host {hostname}: bind URI")
    if bind_uri is None and topology.children(rank):
        raise BootError(f"host {hostname} has children but no bind URI "
                        f"(set default_bind, or bind in its hosts entry)")
    parent_uri = None
    parent = topology.parent(rank)
    if parent is not None:
        phost, pentry = expanded[parent]
        connect = pentry.get("connect", default_connect)
        if connect is None:
            raise BootError(f"no connect URI for host {phost}, the parent of {hostname} "
                            f"(set default_connect, or connect in its hosts entry)")
        parent_uri = _substitute(connect, phost, port, f"host {phost}: connect URI")

    keys = None
    if cert is not None:
        from fluxrm.boot.cert import load_curve_cert

        keys = load_curve_cert(cert)
    elif size > 1:
        raise BootError("curve_cert is required when there is more than one host "
                        "(make one with flux keygen)")

    from flux.hostlist import Hostlist

    hosts = tuple(h for h, _e in expanded)
    return BootInfo(rank=rank, size=size, hostname=hostname, hosts=hosts,
                    hostlist=str(Hostlist(list(hosts))), topology=topology,
                    bind_uri=bind_uri, parent_uri=parent_uri, curve_cert=cert,
                    curve_keys=keys, enable_ipv6=ipv6)


def _split_tcp(uri):
    """(prefix, host, port) of ``tcp://[SOURCE;]HOST:PORT``."""
    rest = uri[len("tcp://"):]
    prefix = "tcp://"
    if ";" in rest:
        source, rest = rest.rsplit(";", 1)
        prefix += source + ";"
    host, sep, port = rest.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"'{uri}' is not a connect URI of the form tcp://HOST:PORT")
    return prefix, host, port


def resolve_connect_uri(uri, ipv6=False):
    """``uri`` with the host of a ``tcp://`` URI replaced by its address.

    Other schemes (``ipc://``, ``inproc://``...) come back unchanged, and
    so does an address.  An IPv4 address is preferred; an IPv6 one is used
    (in brackets) only with ``ipv6``, as ZeroMQ needs its IPv6 option for
    it.  A name that does not resolve is an ``OSError`` (EHOSTUNREACH)
    naming it; a malformed URI a ``ValueError``.
    """
    if not uri.startswith("tcp://"):
        return uri
    prefix, host, port = _split_tcp(uri)
    try:
        ipaddress.ip_address(host)
        return uri
    except ValueError:
        pass
    family = socket.AF_UNSPEC if ipv6 else socket.AF_INET
    try:
        infos = socket.getaddrinfo(host, int(port), family, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise OSError(errno.EHOSTUNREACH,
                      f"cannot resolve host '{host}' of {uri}: {reason}") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, address = infos[0][0], infos[0][4][0]
    if family == socket.AF_INET6:
        address = f"[{address}]"
    return f"{prefix}{address}:{port}"
