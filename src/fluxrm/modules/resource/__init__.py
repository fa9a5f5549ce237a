"""resource: the instance's resource inventory.

Every rank runs it; each discovers its own node.  RPC topics:

- ``resource.sched-status``  -> {all, allocated, down}  (R version 1
  objects; guests allowed; ``down``: the ranks that get no new work,
  offline, torpid or drained)
- ``resource.status``        -> {R, online, offline, ...}  (summary; guests)
- ``resource.register`` {rank, hostname, ncores, ngpus}  (owner; no
  response): another rank's node, sent to rank 0 when that rank starts
- ``resource.acquire``  (owner; streaming): what the scheduler may use:
  ``{resources: R, up: idset, down: idset}`` at once for the ranks known
  (``down``: those drained), then ``{resources: R, up: idset}`` each time a
  rank registers, ``{down: idset}`` when ranks are drained and ``{up:
  idset}`` when they are undrained
- ``resource.drain`` {targets: idset, reason?: str, mode?: "overwrite" |
  "update"} -> {}  (owner): no new work on those ranks; running jobs go
  on.  A rank already drained: EEXIST unless ``mode`` says to overwrite its
  reason (or ``update``: keep drained ones as they are)
- ``resource.undrain`` {targets: idset} -> {}  (owner): back in service;
  EINVAL naming the ranks that are not drained
- ``resource.journal``, ``resource.journal-cancel``: the resource events
  (``resource-define`` once every rank is known, ``online``, ``offline``,
  ``drain``, ``undrain``, ``torpid``, ``lively``), see
  ``fluxrm.modules.resource.journal``

Drained nodes are kept in the shared store (table ``resource_drain``), so
they stay drained when rank 0 restarts on its state directory.

On a rank other than 0 only ``register`` is served here (sent on to rank 0);
the others go up the tree to rank 0, which holds the inventory.

``all`` and ``down`` are this service's own; what is allocated only the
scheduler knows: ``resource.sched-status`` asks it with a request
``sched.resource-status`` (``broker.rpc``, as the requester: its userid
and roles) and answers once sched has answered (with sched's error,
if any; nothing allocated if no scheduler is loaded: ENOSYS).

Cores come from the broker's CPU affinity (``os.sched_getaffinity``).  GPUs
come from the broker attribute ``resource.gpus`` (a count) or, failing
that, the ``CUDA_VISIBLE_DEVICES`` the broker was started with.  The
attribute ``resource.cores=N`` presents N cores instead (tasks are then bound
round-robin to the real CPUs), which tests use to model larger nodes.

Core and GPU ids in R are logical indices 0..n-1; ``cpus`` maps a core
index to the CPU it is bound to.

Node properties come from the configuration's ``[[resource.config]]``
entries (``fluxrm.modules.resource.properties``): R's ``properties`` key
(``{name: rank idset}``) in what ``acquire`` and ``status`` give.  A
configuration that cannot be read is logged and its properties ignored.
"""

import errno
import os
import socket
import time

from flux.hostlist import Hostlist
from flux.idset import IDset
from fluxrm.broker import payload
from fluxrm.broker.service import Service, request_handler
from fluxrm.modules.resource.journal import ResourceJournal
from fluxrm.modules.resource.properties import PropertyRules
from fluxrm.store import shared_store

LOG_ERR = 3
LOG_WARNING = 4
LOG_INFO = 6

# the resource service's own table in the shared store
DRAIN_SCHEMA = """CREATE TABLE IF NOT EXISTS resource_drain (
    rank INTEGER PRIMARY KEY, timestamp REAL NOT NULL, reason TEXT NOT NULL)"""


class Rank:
    """The resources of one broker rank."""

    def __init__(self, rank, hostname, cpus, ngpus, gpu_ids):
        self.rank = rank
        self.hostname = hostname
        self.cpus = cpus  # core index -> CPU id
        self.ncores = len(cpus)
        self.ngpus = ngpus
        self.gpu_ids = gpu_ids  # gpu index -> device id for CUDA_VISIBLE_DEVICES


def discover(broker):
    """The local rank's resources, from affinity, attributes and environment."""
    try:
        real = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        real = list(range(os.cpu_count() or 1))
    ncores = broker.attr("resource.cores")
    if ncores is not None:
        n = int(ncores)
        cpus = [real[i % len(real)] for i in range(n)]
    else:
        cpus = real
    gpu_attr = broker.attr("resource.gpus")
    if gpu_attr is not None:
        ngpus = int(gpu_attr)
        gpu_ids = [str(i) for i in range(ngpus)]
    else:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        gpu_ids = [g for g in visible.split(",") if g.strip() and g.strip() != "-1"]
        ngpus = len(gpu_ids)
    boot = getattr(broker, "boot", None)
    hostname = boot.hostname if boot is not None else socket.gethostname()
    return Rank(broker.rank, hostname, cpus, ngpus, gpu_ids)


def rlite_entry(rank, cores, gpus):
    children = {"core": str(IDset(sorted(cores)))} if cores else {"core": ""}
    if gpus:
        children["gpu"] = str(IDset(sorted(gpus)))
    return {"rank": str(rank), "children": children}


_SHAPES = {}  # allocation key -> (R_lite, nodelist), shared by R objects
_SHAPES_MAX = 256


def make_R(per_rank, hostnames, starttime=0.0, expiration=0.0, nslots=None):
    """Build R version 1 from {rank: (cores, gpus)}; merge identical ranks.

    R objects are never modified once made: jobs allocated the same
    resources share one ``R_lite`` and ``nodelist`` (a bulk submission
    allocates the same few shapes over and over).
    """
    key = tuple((rank, tuple(sorted(cores)), tuple(sorted(gpus)), hostnames[rank])
                for rank, (cores, gpus) in sorted(per_rank.items()))
    shape = _SHAPES.get(key)
    if shape is None:
        if len(_SHAPES) >= _SHAPES_MAX:
            _SHAPES.clear()
        shape = _SHAPES[key] = _rlite_and_nodelist(per_rank, hostnames)
    rlite, nodelist = shape
    execution = {
        "R_lite": rlite,
        "starttime": float(starttime),
        "expiration": float(expiration),
    }
    if nslots is not None:
        execution["nslots"] = nslots
    execution["nodelist"] = nodelist
    return {"version": 1, "execution": execution}


def _rlite_and_nodelist(per_rank, hostnames):
    merged = []  # (children, [ranks])
    for rank in sorted(per_rank):
        cores, gpus = per_rank[rank]
        entry = rlite_entry(rank, cores, gpus)
        for children, ranks in merged:
            if children == entry["children"]:
                ranks.append(rank)
                break
        else:
            merged.append((entry["children"], [rank]))
    rlite = [{"rank": str(IDset(ranks)), "children": children}
             for children, ranks in merged]
    return rlite, [hostnames[r] for r in sorted(per_rank)]


class ResourceService(ResourceJournal, Service):
    name = "resource"

    def __init__(self, broker):
        super().__init__(broker)
        self.local = discover(broker)  # this rank's node (job-exec binds tasks with it)
        self.ranks = [self.local]  # rank 0: every rank registered so far, in order
        self.acquirers = []  # resource.acquire requests (streaming)
        self.drained = {}  # rank -> (timestamp, reason)
        self.offline = set()  # ranks lost or gone (event broker.offline)
        self.store = None  # rank 0: the shared store (the drained nodes)
        self.torpid = set()  # ranks not answering (event broker.torpid)
        self.defined = False  # rank 0: resource-define posted (every rank known)
        self.journal_init()
        self.properties = self._property_rules()
        if broker.rank != 0:
            # the inventory is rank 0's: its requests go up the tree
            for topic in list(self.handlers):
                if topic != "resource.register":
                    del self.handlers[topic]

    async def start(self):
        if self.broker.rank == 0:
            self.broker.router.subscribe("broker.offline", self)
            self.broker.router.subscribe("broker.torpid", self)
            # drained nodes stay drained across a restart on the state directory
            self.store = shared_store(self.broker)
            self.store.script(DRAIN_SCHEMA)
            for rank, stamp, reason in self.store.query(
                    "SELECT rank, timestamp, reason FROM resource_drain"):
                if rank < self.broker.size:
                    self.drained[rank] = (stamp, reason)
            self._maybe_define()
        if self.broker.rank != 0:
            local = self.local
            self.broker.rpc.notify("resource.register", {
                "rank": local.rank, "hostname": local.hostname,
                "ncores": local.ncores, "ngpus": local.ngpus}, 0)

    def _property_rules(self):
        try:
            return PropertyRules(getattr(self.broker, "config", None) or {})
        except ValueError as exc:
            if self.broker.rank == 0:
                self.log(LOG_ERR, f"configuration error: {exc}; properties ignored")
            return PropertyRules({})

    @property
    def hostnames(self):
        return {r.rank: r.hostname for r in self.ranks}

    @request_handler("register")
    def register(self, msg):
        req = payload.request(msg)
        size = self.broker.size
        rank = payload.integer(req, "rank", lo=1, hi=size - 1)
        hostname = payload.string(req, "hostname")
        ncores = payload.integer(req, "ncores", lo=0, hi=1 << 20)
        ngpus = payload.integer(req, "ngpus", lo=0, hi=1 << 16)
        if self.broker.rank != 0:
            self.broker.router.forward_up(msg, msg.sender)
            return
        before = self.available()
        self.offline.discard(rank)
        self.torpid.discard(rank)
        if any(r.rank == rank for r in self.ranks):
            # back after it was lost (a broker restarted on its node)
            self.log(LOG_INFO, f"rank {rank} is back")
            self._changed(before)
            if self.defined:
                self.journal_post("online", {"idset": str(rank)})
            return
        node = Rank(rank, hostname, list(range(ncores)), ngpus,
                    [str(i) for i in range(ngpus)])
        self.ranks.append(node)
        self.ranks.sort(key=lambda r: r.rank)
        self._changed(before, {"resources": self._R_of([node])}, new=rank)
        self._maybe_define()

    def _maybe_define(self):
        """Once every rank is known: ``resource-define`` with R, the ranks
        online and the nodes drained so far, in the journal."""
        if self.defined or len(self.ranks) < self.broker.size:
            return
        self.defined = True
        self.journal_post("resource-define", {"method": "dynamic-discovery"},
                          R=self.all_R())
        online = sorted({r.rank for r in self.ranks} - self.offline)
        if online:
            self.journal_post("online", {"idset": str(IDset(online))})
        for ranks, info in self._drain_groups().items():
            self.journal_post("drain", {"idset": ranks, "nodelist": self._nodelist(ranks),
                                        "reason": info["reason"], "overwrite": 0})
        torpid = sorted(self.torpid - self.offline)
        if torpid:
            self.journal_post("torpid", {"idset": str(IDset(torpid))})

    def _nodelist(self, ranks):
        hosts = self.hostnames
        return str(Hostlist([hosts.get(r, f"rank{r}") for r in IDset(ranks)]))

    def available(self):
        """The ranks new work may go to: registered, online, responsive
        and not drained."""
        return ({r.rank for r in self.ranks} - self.offline - self.torpid
                - set(self.drained))

    def _changed(self, before, update=None, new=None):
        """Tell the scheduler which ranks came up or went down since
        ``before`` (``available()`` then); a ``new`` rank is one or the
        other."""
        after = self.available()
        up, down = after - before, before - after
        if new is not None and new not in after:
            down.add(new)
        update = dict(update or {})
        if up:
            update["up"] = str(IDset(sorted(up)))
        if down:
            update["down"] = str(IDset(sorted(down)))
        if update:
            self._tell_acquirers(update)

    def deliver_event(self, msg):
        """``broker.offline`` and ``broker.torpid`` (rank 0)."""
        event = msg.get_object() or {}
        try:
            ranks = set(IDset(event.get("ranks", "")))
        except (OSError, ValueError, TypeError):
            return
        before = self.available()
        if msg._topic == "broker.offline":
            news, name = ranks - self.offline, "offline"
            self.offline |= ranks
        elif msg._topic == "broker.torpid":
            if event.get("torpid"):
                news, name = ranks - self.torpid, "torpid"
                self.torpid |= ranks
            else:
                news, name = ranks & self.torpid, "lively"
                self.torpid -= ranks
        else:
            return
        self._changed(before)
        if news and self.defined:
            self.journal_post(name, {"idset": str(IDset(sorted(news)))})

    @request_handler("acquire")
    def acquire(self, msg):
        self.acquirers.append(msg)
        every = {r.rank for r in self.ranks}
        up = self.available()
        self.respond(msg, {"resources": self.all_R(), "up": str(IDset(sorted(up))),
                           "down": str(IDset(sorted(every - up)))})

    def _tell_acquirers(self, update):
        for req_msg in self.acquirers:
            self.respond(req_msg, update)

    def _targets(self, req):
        text = payload.string(req, "targets")
        try:
            ranks = sorted(IDset(text))
        except (OSError, ValueError, TypeError):
            raise OSError(errno.EINVAL, f"invalid targets '{text}': an idset of"
                          " ranks is expected") from None
        bad = [r for r in ranks if r >= self.broker.size]
        if bad or not ranks:
            raise OSError(errno.EINVAL, f"invalid targets '{text}': the instance"
                          f" has ranks 0-{self.broker.size - 1}")
        return ranks

    @request_handler("drain")
    def drain(self, msg):
        req = payload.request(msg)
        ranks = self._targets(req)
        reason = payload.string(req, "reason", "")
        mode = payload.string(req, "mode", "")
        if mode not in ("", "overwrite", "update"):
            raise OSError(errno.EINVAL, f"invalid drain mode '{mode}'")
        already = [r for r in ranks if r in self.drained]
        if already and not mode:
            raise OSError(errno.EEXIST, f"ranks {IDset(already)} already drained")
        now = time.time()
        before = self.available()
        rows = []
        for rank in ranks:
            if rank in self.drained and mode == "update":
                continue
            self.drained[rank] = (now, reason)
            rows.append((rank, now, reason))
        self.store.executemany("INSERT OR REPLACE INTO resource_drain"
                               " (rank, timestamp, reason) VALUES (?, ?, ?)", rows)
        self._changed(before)
        if rows:
            idset = str(IDset([rank for rank, _t, _r in rows]))
            self.journal_post("drain", {
                "idset": idset, "nodelist": self._nodelist(idset), "reason": reason,
                "overwrite": {"": 0, "overwrite": 1, "update": 2}[mode]})
        self.respond(msg, {})

    @request_handler("undrain")
    def undrain(self, msg):
        ranks = self._targets(payload.request(msg))
        missing = [r for r in ranks if r not in self.drained]
        if missing:
            raise OSError(errno.EINVAL, f"ranks {IDset(missing)} are not drained")
        before = self.available()
        for rank in ranks:
            del self.drained[rank]
        self.store.executemany("DELETE FROM resource_drain WHERE rank = ?",
                               [(rank,) for rank in ranks])
        self._changed(before)
        idset = str(IDset(ranks))
        self.journal_post("undrain", {"idset": idset, "nodelist": self._nodelist(idset)})
        self.respond(msg, {})

    def _drain_groups(self):
        """``{idset: {timestamp, reason}}``, ranks of one drain together."""
        groups = {}
        for rank, (stamp, reason) in sorted(self.drained.items()):
            groups.setdefault((stamp, reason), []).append(rank)
        return {str(IDset(ranks)): {"timestamp": stamp, "reason": reason}
                for (stamp, reason), ranks in groups.items()}

    def disconnect(self, sender):
        self.acquirers = [m for m in self.acquirers if m.sender is not sender]
        self.journal_disconnect(sender)

    def _R_of(self, nodes):
        R = make_R({r.rank: (range(r.ncores), range(r.ngpus)) for r in nodes},
                   {r.rank: r.hostname for r in nodes})
        properties = self.properties.of(nodes)
        if properties:
            R["execution"]["properties"] = properties
        return R

    def all_R(self):
        return self._R_of(self.ranks)

    @request_handler("sched-status", allow_guest=True)
    def sched_status(self, msg):
        self.broker.rpc.call("sched.resource-status", None, self.broker.rank,
                             on_response=lambda rsp: self._sched_answered(msg, rsp),
                             cred=(msg.userid, msg.rolemask))

    def _sched_answered(self, msg, rsp):
        if rsp.errnum == errno.ENOSYS:  # no scheduler: nothing is allocated
            allocated = make_R({}, {})
        elif rsp.errnum:
            self.respond_error(msg, rsp.errnum, rsp.errstr)
            return
        else:
            answer = rsp.get_object()
            allocated = answer.get("allocated") if isinstance(answer, dict) else None
            if not isinstance(allocated, dict):
                self.respond_error(msg, errno.EPROTO,
                                   "sched.resource-status: no allocated set in the answer")
                return
        up = self.available()
        down = [r for r in self.ranks if r.rank not in up]
        self.respond(msg, {"all": self.all_R(), "allocated": allocated,
                           "down": self._R_of(down)})

    @request_handler("status", allow_guest=True)
    def status(self, msg):
        online = {r.rank for r in self.ranks} - self.offline
        offline = [r for r in range(self.broker.size) if r not in online]
        self.respond(msg, {"R": self.all_R(),
                           "online": str(IDset(sorted(online))),
                           "offline": str(IDset(offline)), "exclude": "",
                           "torpid": str(IDset(sorted(self.torpid - self.offline))),
                           "drain": self._drain_groups()})
