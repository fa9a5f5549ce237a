"""How a broker learns its place in the instance: rank, size, parent, keys.

Three methods, one result (``BootInfo``), tried in this order unless the
attribute ``broker.boot-method`` names one:

- **config**: the instance configuration has a ``[bootstrap]`` table
  (``fluxrm.boot.config``): rank = this host's entry in its hosts list,
  size = the number of hosts, one CURVE certificate shared by every broker,
  URIs from the table.  No exchange.
- **pmi**: ``PMI_FD`` (with ``PMI_RANK``, ``PMI_SIZE``) is in the
  environment, as ``flux start --test-size=N``, ``srun --mpi=pmi2`` or a
  parent instance's job give it: the PMI-1 simple protocol
  (``fluxrm.pmi.client``).  Each broker makes a CURVE key pair, binds if it
  has children, puts its card ``{"host", "pubkey", "uri"}`` under its rank,
  enters a barrier, reads its parent's card and its children's (not all N:
  boot stays O(fanout) per broker), and enters a second barrier so every
  parent accepts before any child connects.
- **single**: neither: a size-1 instance.  A broker that a launcher
  started as one of several tasks (``PMI_SIZE`` or ``SLURM_NTASKS`` above
  1) but that has no working PMI refuses to start, rather than becoming
  one of several separate one-broker instances.

``begin()`` learns rank and size (before the broker sets up its run
directory, whose names depend on the rank); ``BootInfo.exchange(endpoint)``
does the rest once the overlay has bound its socket (the endpoint goes in
this broker's card).
"""

import json
import os
import re
import socket

from fluxrm.boot.topology import parse_topo

DEFAULT_TOPO = "kary:32"
MAPPING_RE = re.compile(r"\(vector,((?:\(\d+,\d+,\d+\),?)+)\)")


class BootError(OSError):
    """The broker cannot join its instance; the text says why."""


def hostname():
    """This broker's host name (``FLUX_FAKE_HOSTNAME`` stands in for it
    under ``flux start --test-hosts``)."""
    return os.environ.get("FLUX_FAKE_HOSTNAME") or socket.gethostname()


class BootInfo:
    """What a broker knows of the instance after the bootstrap."""

    def __init__(self, method, rank=0, size=1):
        self.method = method
        self.rank = rank
        self.size = size
        self.hostname = hostname()
        self.hostlist = None  # every rank's host, when the method knows them
        self.topology = None
        self.public_key = self.secret_key = None
        self.bind_uri = None  # what to bind, if this rank has children
        self.parent_uri = None
        self.parent_key = None
        self.child_keys = []
        self.child_hosts = {}  # child rank -> host name its card gave
        self.same_node = True  # every broker on this host: ipc, not tcp
        self.mapping = None  # PMI_process_mapping, as the launcher gave it
        self._pmi = None

    @property
    def children(self):
        return self.topology.children(self.rank) if self.topology else []

    def exchange(self, endpoint):
        """Publish our card, learn our neighbours' (PMI); nothing to do for
        the other methods."""
        if self._pmi is None:
            return
        pmi = self._pmi
        try:
            card = {"host": self.hostname, "pubkey": self.public_key.decode(),
                    "uri": endpoint or ""}
            pmi.put(str(self.rank), json.dumps(card, separators=(",", ":")))
            pmi.barrier()
            parent = self.topology.parent(self.rank)
            if parent is not None:
                pcard = _card(pmi.get(str(parent)), parent)
                self.parent_uri = pcard["uri"]
                self.parent_key = pcard["pubkey"].encode()
                if not self.parent_uri:
                    raise BootError(0, f"bootstrap: rank {parent}'s card has no URI")
            for child in self.children:
                ccard = _card(pmi.get(str(child)), child)
                self.child_keys.append(ccard["pubkey"].encode())
                self.child_hosts[child] = ccard["host"]
            pmi.barrier()
            pmi.finalize()
        except BootError:
            raise
        except OSError as exc:
            raise BootError(exc.errno or 0, f"bootstrap: {exc.strerror or exc}") from None
        self._pmi = None


def _card(text, rank):
    try:
        card = json.loads(text)
        if (isinstance(card, dict) and isinstance(card.get("host"), str)
                and isinstance(card.get("pubkey"), str)
                and isinstance(card.get("uri"), str)):
            return card
    except ValueError:
        pass
    raise BootError(0, f"bootstrap: rank {rank}'s card is malformed: {text[:80]!r}")


def single_node(mapping, size):
    """Whether a ``PMI_process_mapping`` value puts all ``size`` ranks on
    one node: ``(vector,(0,1,N))`` (start node, node count, ranks per node)."""
    if not mapping:
        return False
    m = MAPPING_RE.fullmatch(mapping.strip())
    if m is None:
        return False
    blocks = re.findall(r"\((\d+),(\d+),(\d+)\)", m.group(1))
    return len(blocks) == 1 and int(blocks[0][1]) == 1 and int(blocks[0][2]) >= size


def _launcher_size(environ):
    for name in ("PMI_SIZE", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE"):
        value = environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            return name, int(value)
    return None, 1


def begin(attrs, config, environ=None):
    """Learn rank and size: a ``BootInfo`` (``exchange`` still to do)."""
    environ = os.environ if environ is None else environ
    method = attrs.get("broker.boot-method")
    if method is None:
        if (config or {}).get("bootstrap"):
            method = "config"
        elif environ.get("PMI_FD"):
            method = "pmi"
        else:
            method = "single"
    if method == "single":
        name, n = _launcher_size(environ)
        if name is not None:
            raise BootError(0, f"bootstrap: {name}={n} says this broker is one of"
                            f" {n}, but there is no PMI to join the others"
                            " (PMI_FD is not set): start it with a launcher that"
                            " offers PMI (e.g. srun --mpi=pmi2), or set"
                            " broker.boot-method")
        return BootInfo("single")
    if method == "pmi":
        return _begin_pmi(attrs, environ)
    if method == "config":
        return _begin_config(attrs, config)
    raise BootError(0, f"bootstrap: unknown broker.boot-method {method!r}"
                    " (use config, pmi or single)")


def _topology(attrs, size):
    spec = attrs.get("tbon.topo")
    fanout = attrs.get("tbon.fanout")
    if spec is None and fanout is not None:
        spec = f"kary:{fanout}"
    try:
        return parse_topo(spec or DEFAULT_TOPO, size)
    except ValueError as exc:
        raise BootError(0, f"bootstrap: {exc}") from None


def _begin_pmi(attrs, environ):
    import zmq

    from fluxrm.pmi.client import PMIClient

    try:
        pmi = PMIClient.from_environ(environ)
        if pmi is None:
            raise BootError(0, "bootstrap: broker.boot-method=pmi but PMI_FD is not set")
        pmi.init()
        rank, size = pmi.rank, pmi.size
        mapping = None
        if size > 1:
            try:
                mapping = pmi.get("PMI_process_mapping")
            except OSError:
                mapping = None
    except BootError:
        raise
    except OSError as exc:
        raise BootError(exc.errno or 0, f"bootstrap: {exc.strerror or exc}") from None
    info = BootInfo("pmi", rank, size)
    info.mapping = mapping
    info.topology = _topology(attrs, size)
    if size == 1:
        pmi.finalize()
        return info
    info._pmi = pmi
    info.same_node = single_node(mapping, size) and attrs.get("tbon.prefertcp", "0") == "0"
    info.public_key, info.secret_key = zmq.curve_keypair()
    # bind_uri stays None: the broker picks it (``bind_uri``), knowing its rundir
    return info


def _begin_config(attrs, config):
    from fluxrm.boot.config import boot_from_config, resolve_connect_uri

    topo = attrs.get("tbon.topo")
    if topo is None and attrs.get("tbon.fanout") is not None:
        topo = f"kary:{attrs['tbon.fanout']}"
    try:
        cfg = boot_from_config(config, hostname(), topo)
        info = BootInfo("config", cfg.rank, cfg.size)
        info.hostname = cfg.hostname
        info.hostlist = cfg.hostlist
        info.topology = cfg.topology
        if cfg.size > 1:
            info.same_node = False
            info.public_key, info.secret_key = cfg.curve_keys
            # one certificate for every broker: the parent's key is ours,
            # and so is the one key a parent lets in
            info.parent_key = info.public_key
            info.child_keys = [info.public_key]
            info.bind_uri = cfg.bind_uri
            if cfg.parent_uri:
                info.parent_uri = resolve_connect_uri(cfg.parent_uri, cfg.enable_ipv6)
            info.child_hosts = {child: cfg.hosts[child] for child in info.children}
        return info
    except (OSError, ValueError) as exc:
        text = str(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc)
        if not text.startswith("bootstrap:"):
            text = f"bootstrap: {text}"
        raise BootError(0, text) from None


def bind_uri(info, rundir, hint=None):
    """Where a broker with children binds: ipc in the run directory when
    every broker shares this host, else tcp with a port the system picks,
    on ``hint`` (``tbon.interface-hint``: an interface name or an address,
    as ZeroMQ takes them) or this host's address."""
    if info.bind_uri:
        return info.bind_uri
    if info.same_node:
        return f"ipc://{os.path.join(rundir, f'tbon-{info.rank}')}"
    return f"tcp://{hint or _host_address()}:*"


def _host_address():
    try:
        infos = socket.getaddrinfo(hostname(), None, socket.AF_INET)
        for *_, addr in infos:
            if not addr[0].startswith("127."):
                return addr[0]
    except OSError:
        pass
    return "127.0.0.1"
