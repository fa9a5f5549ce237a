"""``flux.scheduler``: a Python RFC 27 scheduler base class (spec §22).

``Scheduler(h, *args)`` is a ``flux.brokermod.BrokerModule``: load a
subclass with ``flux module load sched-x.py [args]`` after ``flux module
remove sched`` (the built-in one) and the job-manager sends it its
requests (``fluxrm.modules.job_manager.sched_client``: the RPC path).  A
subclass normally overrides only ``schedule()``.

Services it registers: ``sched`` and ``feasibility``.  RPC topics it
answers (owner only):

- ``sched.alloc {id, priority, userid, t_submit, jobspec}``: queued as an
  ``AllocRequest``; answered ``{id, type: 0 (R) | 1 (annotations) |
  2 (deny, note) | 3 (cancel)}``;
- ``sched.free {id, R, final?}``, ``sched.cancel {id}``,
  ``sched.prioritize {jobs: [[id, priority]...]}``: no response (a
  cancel answers the job's alloc request with type 3);
- ``sched.expiration {id, expiration}`` -> null (EINVAL if negative);
- ``sched.resource-status`` -> ``{all, allocated, down}`` (R objects);
- ``feasibility.check {jobspec}`` -> ``{}``, or EOVERFLOW when it could
  never run;
- ``<name>.stats-get`` -> ``{sched_passes, sched_yields, forecast_passes,
  forecast_yields, sched_delay, sched_duration_ewma, sched_interval_ewma,
  pending_jobs}``.

Start-up (``run``): register the services, ``set_running``, take the
resources (``resource.acquire``, streaming; later updates applied as they
come), say hello (``job-manager.sched-hello``: each running job's R, read
from the KVS, is registered as allocated), then ``job-manager.sched-ready``
and the reactor.

Module arguments: ``queue-depth=N|unlimited`` (and the legacy
``mode=unlimited``, ``mode=limited=N``), ``log-level=NAME``,
``pool-class=MODULE[:CLASS]``; others collect in ``_pending_args`` for
the subclass, and any left when the most derived ``__init__`` returns are
``ValueError("unknown argument ...")`` (the load fails with EINVAL).

Deviations, said here: an alloc success is not committed to the KVS by the
scheduler: our KVS serves ``job.*`` read-only from the job-manager, which
stores the R it receives in the response (and shows it at
``job.<id>.R``).  The pool is ``SimplePool`` below (first fit over the
up ranks, in rank order; ``slot>core[,gpu]`` and ``node>slot>...``
requests), not upstream's worst-fit ``Rv1Pool``: ``flux.resource``'s pools
(spec 21.8) have another interface than the one this class's passes use;
a scheduler configured with ``pool-class`` naming one of them gets R as
that pool in ``hello`` and ``free``, and must do its own matching.
"""

import errno
import heapq
import importlib
import math
import time

from flux.brokermod import BrokerModule, request_handler
from flux.constants import FLUX_RPC_STREAMING
from flux.idset import IDset

__all__ = ["Scheduler", "AllocRequest", "PendingJob", "SimplePool",
           "InsufficientResources", "InfeasibleRequest"]

SCHED_DELAY_MAX = 1.0
SCHED_EWMA_ALPHA = 0.25

try:  # the scheduler-side pools of flux.resource (§21.8), when present
    from flux.resource import (ResourcePool, InsufficientResources,  # noqa: F401
                               InfeasibleRequest)
except ImportError:
    ResourcePool = None

    class InsufficientResources(OSError):
        """Not now."""

    class InfeasibleRequest(OSError):
        """Never."""


def _dothex(jobid):
    text = f"{jobid:016x}"
    return ".".join(text[i:i + 4] for i in range(0, 16, 4))


# -- the fallback pool ---------------------------------------------------------------

class _Request:
    __slots__ = ("nnodes", "nslots", "cores", "gpus", "duration")

    def __init__(self, nnodes, nslots, cores, gpus, duration):
        self.nnodes, self.nslots, self.cores, self.gpus = nnodes, nslots, cores, gpus
        self.duration = duration


def _count(vertex):
    count = vertex.get("count", 1)
    if isinstance(count, dict):
        raise InfeasibleRequest("only fixed counts are supported")
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"invalid count for {vertex.get('type')}")
    return count


class _Allocation:
    """An allocated R (``to_dict``), what ``alloc`` returns."""

    def __init__(self, R):
        self.R = R

    def to_dict(self):
        return self.R


class SimplePool:
    """Ranks with cores and gpus, which are up, and what jobs hold."""

    def __init__(self, R, log=None, **kwargs):
        if isinstance(R, str):
            import json

            R = json.loads(R)
        self.R = R
        self.ranks = {}  # rank -> (cores set, gpus set)
        self.hosts = {}
        execution = R.get("execution", {})
        for entry in execution.get("R_lite", []):
            children = entry.get("children", {})
            cores = set(IDset(children.get("core", "")))
            gpus = set(IDset(children.get("gpu", "")))
            for rank in IDset(entry["rank"]):
                self.ranks[rank] = (cores, gpus)
        from flux.hostlist import Hostlist

        hosts = []
        for item in execution.get("nodelist", []):
            hosts.extend(Hostlist(item))
        for i, rank in enumerate(sorted(self.ranks)):
            self.hosts[rank] = hosts[i] if i < len(hosts) else str(rank)
        self.expiration = float(execution.get("expiration", 0) or 0)
        self.up = set(self.ranks)
        self.used = {rank: (set(), set()) for rank in self.ranks}
        self.jobs = {}  # jobid -> {rank: (cores, gpus)}

    def _ids(self, ids):
        return set(self.ranks) if ids == "all" else set(IDset(ids)) & set(self.ranks)

    def mark_up(self, ids):
        self.up |= self._ids(ids)

    def mark_down(self, ids):
        self.up -= self._ids(ids)

    def remove_ranks(self, ids):
        for rank in self._ids(ids):
            self.ranks.pop(rank, None)
            self.up.discard(rank)

    def parse_resource_request(self, jobspec):
        resources = jobspec.get("resources")
        if not resources:
            raise ValueError("jobspec has no resources")
        nnodes, nslots, cores, gpus = 0, 0, 0, 0
        vertex = resources[0]
        multiplier = 1
        while vertex:
            kind = vertex.get("type")
            if kind == "node":
                nnodes = _count(vertex)
            elif kind == "slot":
                nslots = _count(vertex) * (nnodes or 1)
                for child in vertex.get("with", []):
                    if child.get("type") == "core":
                        cores = _count(child)
                    elif child.get("type") == "gpu":
                        gpus = _count(child)
                break
            elif kind == "core":  # a bare core count
                nslots, cores = _count(vertex) * multiplier, 1
                break
            children = vertex.get("with") or []
            vertex = children[0] if children else None
        if not nslots or not cores:
            raise ValueError("Unable to determine slot count")
        system = jobspec.get("attributes", {}).get("system", {})
        duration = float(system.get("duration", 0) or 0)
        return _Request(nnodes, nslots, cores, gpus, duration)

    def _fits(self, rank, req, idle_only):
        cores, gpus = self.ranks[rank]
        used_cores, used_gpus = self.used[rank]
        if idle_only and (used_cores or used_gpus):
            return 0
        n = (len(cores) - len(used_cores)) // req.cores
        if req.gpus:
            n = min(n, (len(gpus) - len(used_gpus)) // req.gpus)
        return n

    def check_feasibility(self, req):
        total = 0
        for cores, gpus in self.ranks.values():
            n = len(cores) // req.cores
            if req.gpus:
                n = min(n, len(gpus) // req.gpus)
            total += n if not req.nnodes else (1 if n >= math.ceil(req.nslots / req.nnodes) else 0)
        need = req.nnodes or req.nslots
        if total < need:
            raise InfeasibleRequest(f"unsatisfiable request: need {need} "
                                    f"{'nodes' if req.nnodes else 'slots'}, "
                                    f"have {total}")

    def alloc(self, jobid, req):
        self.check_feasibility(req)
        take = {}  # rank -> slots
        if req.nnodes:
            per_node = math.ceil(req.nslots / req.nnodes)
            ranks = [r for r in sorted(self.up) if self._fits(r, req, True) >= per_node]
            if len(ranks) < req.nnodes:
                raise InsufficientResources("insufficient resources")
            take = {rank: None for rank in ranks[:req.nnodes]}  # whole nodes
        else:
            left = req.nslots
            for rank in sorted(self.up):
                n = min(self._fits(rank, req, False), left)
                if n:
                    take[rank] = n
                    left -= n
                if not left:
                    break
            if left:
                raise InsufficientResources("insufficient resources")
        held = {}
        for rank, slots in take.items():
            cores, gpus = self.ranks[rank]
            used_cores, used_gpus = self.used[rank]
            if slots is None:
                mine = (set(cores), set(gpus))
            else:
                mine = (set(sorted(cores - used_cores)[:slots * req.cores]),
                        set(sorted(gpus - used_gpus)[:slots * req.gpus]))
            used_cores |= mine[0]
            used_gpus |= mine[1]
            held[rank] = mine
        self.jobs[jobid] = held
        now = time.time()
        expiration = now + req.duration if req.duration else self.expiration
        return _Allocation(self._R(held, now, expiration))

    def _R(self, held, start=0.0, expiration=0.0):
        R_lite = []
        for rank in sorted(held):
            cores, gpus = held[rank]
            children = {"core": str(IDset(sorted(cores)))}
            if gpus:
                children["gpu"] = str(IDset(sorted(gpus)))
            R_lite.append({"rank": str(rank), "children": children})
        return {"version": 1, "execution": {
            "R_lite": R_lite, "starttime": start, "expiration": expiration,
            "nodelist": [self.hosts[r] for r in sorted(held)]}}

    def register_alloc(self, jobid, R):
        R = R.to_dict() if hasattr(R, "to_dict") else R
        held = {}
        for entry in R.get("execution", {}).get("R_lite", []):
            children = entry.get("children", {})
            cores = set(IDset(children.get("core", "")))
            gpus = set(IDset(children.get("gpu", "")))
            for rank in IDset(entry["rank"]):
                if rank in self.used:
                    held[rank] = (cores, gpus)
                    self.used[rank][0].update(cores)
                    self.used[rank][1].update(gpus)
        self.jobs[jobid] = held

    def free(self, jobid, R=None, final=False):
        for rank, (cores, gpus) in self.jobs.pop(jobid, {}).items():
            if rank in self.used:
                self.used[rank][0].difference_update(cores)
                self.used[rank][1].difference_update(gpus)

    def to_dict(self):
        return self._R({r: self.ranks[r] for r in self.ranks})

    def copy_allocated(self):
        return self._R({r: self.used[r] for r in self.used if self.used[r][0] or self.used[r][1]})

    def copy_down(self):
        return self._R({r: self.ranks[r] for r in self.ranks if r not in self.up})

    def dumps(self):
        return " ".join(f"rank{r}/core{len(c)}" for r, (c, _g) in sorted(self.ranks.items()))


# -- requests and the queue ---------------------------------------------------------

class AllocRequest:
    """One ``sched.alloc`` request; answer it once."""

    def __init__(self, sched, msg, jobid):
        self.sched = sched
        self.msg = msg
        self.jobid = jobid
        self.finalized = False
        self._annotated = set()

    def _respond(self, body, final=True):
        if self.finalized:
            return
        self.finalized = final
        self.sched.handle.respond(self.msg, dict(body, id=self.jobid))

    def success(self, R, annotations=None, clear=True):
        R = R.to_dict() if hasattr(R, "to_dict") else R
        body = {"type": 0, "R": R}
        annotations = dict(annotations or {})
        if clear:
            sched_keys = annotations.setdefault("sched", {})
            for key in self._annotated - set(sched_keys):
                sched_keys[key] = None
            if not sched_keys:
                del annotations["sched"]
        if annotations:
            body["annotations"] = annotations
        self._respond(body)

    def deny(self, note=None):
        body = {"type": 2}
        if note is not None:
            body["note"] = note
        self._respond(body)

    def cancel(self):
        self._respond({"type": 3})

    def annotate(self, d):
        if self.finalized:
            return
        self._annotated.update((d.get("sched") or {}).keys())
        self._respond({"type": 1, "annotations": d}, final=False)


class PendingJob:
    """A queued job: higher priority first, then lower id."""

    __slots__ = ("jobid", "priority", "t_submit", "request", "resource_request")

    def __init__(self, jobid, priority, t_submit, request, resource_request):
        self.jobid, self.priority, self.t_submit = jobid, priority, t_submit
        self.request, self.resource_request = request, resource_request

    def __lt__(self, other):
        return (-self.priority, self.jobid) < (-other.priority, other.jobid)


# -- the scheduler --------------------------------------------------------------------

class Scheduler(BrokerModule):
    queue_depth = "unlimited"
    hello_partial_ok = True
    pool_class = None
    pool_kwargs = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        def wrapped(self, *args, **kw):
            depth = self.__dict__.get("_init_depth", 0)
            self._init_depth = depth + 1
            try:
                init(self, *args, **kw)
            finally:
                self._init_depth = depth
            if depth == 0:
                self._check_args()

        cls.__init__ = wrapped

    def __init__(self, h, *args):
        super().__init__(h, *args)
        self.pool_kwargs = dict(self.pool_kwargs)
        self._queue = []
        self.resources = None
        self._pending_args = []
        self._pass_timer = None
        self._generator = None
        self.stats = {"sched_passes": 0, "sched_yields": 0, "forecast_passes": 0,
                      "forecast_yields": 0, "sched_delay": 0.0,
                      "sched_duration_ewma": 0.0, "sched_interval_ewma": 0.0}
        self.log.level = "info"
        for arg in args:
            key, _, value = arg.partition("=")
            if key == "queue-depth":
                self.queue_depth = self._depth(value)
            elif key == "mode":
                if value == "unlimited":
                    self.queue_depth = "unlimited"
                elif value.startswith("limited="):
                    self.queue_depth = self._depth(value[len("limited="):])
                else:
                    raise ValueError(f"invalid mode '{value}': expected unlimited "
                                     "or limited=N")
            elif key == "log-level":
                self.log.level = value
            elif key == "pool-class":
                self.pool_class = self._resolve_pool_class(value)
            else:
                self._pending_args.append(arg)
        if self.__dict__.get("_init_depth", 0) == 0:
            self._check_args()

    @staticmethod
    def _depth(value):
        if value == "unlimited":
            return value
        try:
            depth = int(value)
        except ValueError:
            depth = 0
        if depth < 1:
            raise ValueError(f"invalid queue-depth '{value}': expected a positive "
                             "integer or unlimited")
        return depth

    @staticmethod
    def _resolve_pool_class(uri):
        modname, _, clsname = uri.partition(":")
        try:
            module = importlib.import_module(modname.replace("-", "_"))
            return getattr(module, clsname or "pool_class")
        except (ImportError, AttributeError):
            raise ValueError(f"invalid pool-class '{uri}': not found") from None

    def _check_args(self):
        if self._pending_args:
            raise ValueError(f"unknown argument '{self._pending_args[0]}': built-in "
                             "options are queue-depth, log-level, pool-class")

    # -- start-up ------------------------------------------------------------------
    def run(self):
        h = self.handle
        try:
            h.service_register("sched").get()
            h.service_register("feasibility").get()
            self.set_running()
            self._acquire()
            self._hello()
            self._ready()
        except OSError as exc:
            self.log.error(f"initialization failed: {exc.strerror or exc}")
            raise
        super().run()

    def _make_pool(self, R):
        # SimplePool unless a pool class is configured: flux.resource's
        # pools (spec 21.8) have another interface than the one this
        # class's queue and passes use (see the module docstring)
        cls = self.pool_class or SimplePool
        return cls(R, **self.pool_kwargs)

    def _resource_pools(self):
        """Whether R goes to the override points as a flux.resource pool."""
        return ResourcePool is not None and self.pool_class is not None \
            and issubclass(self.pool_class, ResourcePool)

    def _acquire(self):
        future = self.handle.rpc("resource.acquire", {}, flags=FLUX_RPC_STREAMING)
        update = future.get()
        self.resources = self._make_pool(update["resources"])
        self.resources.mark_down("all")
        self._apply(update)
        future.reset()
        future.then(self._acquired)
        self._acquire_future = future

    def _apply(self, update):
        if "resources" in update and self.resources is not None:
            known = getattr(self.resources, "ranks", None)
            new = SimplePool(update["resources"]).ranks if isinstance(known, dict) else {}
            for rank, value in new.items():  # ranks that registered later
                if rank not in known:
                    known[rank] = value
                    self.resources.used[rank] = (set(), set())
                    self.resources.hosts.setdefault(rank, str(rank))
        if update.get("up"):
            self.resources.mark_up(update["up"])
        if update.get("down"):
            self.resources.mark_down(update["down"])
        if update.get("shrink"):
            self.resources.remove_ranks(update["shrink"])

    def _acquired(self, future):
        try:
            update = future.get()
        except OSError as exc:
            self.log.error(f"resource.acquire: {exc.strerror or exc}")
            self.stop()
            return
        future.reset()
        self._apply(update)
        self.resource_update()
        self.request_pass()

    def _hello(self):
        import flux.kvs

        future = self.handle.rpc("job-manager.sched-hello",
                                 {"partial-ok": self.hello_partial_ok},
                                 flags=FLUX_RPC_STREAMING)
        while True:
            try:
                job = future.get()
            except OSError as exc:
                if exc.errno == errno.ENODATA:
                    return
                raise
            future.reset()
            jobid = job["id"]
            try:
                R = flux.kvs.get(self.handle, f"job.{_dothex(jobid)}.R")
                self.hello(jobid, job["priority"], job["userid"], job["t_submit"],
                           self._make_pool(R) if self._resource_pools() else R)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self.log.error(f"hello: {jobid}: {exc}")
                self.handle.rpc("job-manager.raise",
                                {"id": jobid, "type": "scheduler-restart",
                                 "severity": 0,
                                 "note": "failed to reallocate R for running job"})

    def _ready(self):
        if self.queue_depth == "unlimited":
            body = {"mode": "unlimited"}
        else:
            body = {"mode": "limited", "limit": self.queue_depth}
        self.handle.rpc("job-manager.sched-ready", body).get()
        self.log.info(f"ready: queue-depth={self.queue_depth} "
                      f"log-level={self.log.level_name} "
                      f"pool-class={type(self.resources).__name__} Rv1 "
                      f"{self.resources.dumps()}")

    # -- override points --------------------------------------------------------------
    def hello(self, jobid, priority, userid, t_submit, R):
        self.resources.register_alloc(jobid, R)

    def alloc(self, request, jobid, priority, userid, t_submit, jobspec):
        try:
            resource_request = self.resources.parse_resource_request(jobspec)
        except Exception as exc:
            request.deny(f"cannot parse jobspec: {exc}")
            return
        heapq.heappush(self._queue, PendingJob(jobid, priority, t_submit, request,
                                               resource_request))

    def free(self, jobid, R, final=False):
        self.resources.free(jobid, R, final)

    def cancel(self, jobid):
        for job in self._queue:
            if job.jobid == jobid:
                self._queue.remove(job)
                heapq.heapify(self._queue)
                job.request.cancel()
                return

    def prioritize(self, jobs):
        priorities = dict((jobid, priority) for jobid, priority in jobs)
        for job in self._queue:
            if job.jobid in priorities:
                job.priority = priorities[job.jobid]
        heapq.heapify(self._queue)

    def schedule(self):
        """One pass (the default: first fit from the head of the queue,
        stopping at the first job that does not fit now)."""
        while self._queue:
            job = self._queue[0]
            try:
                alloc = self.resources.alloc(job.jobid, job.resource_request)
            except InsufficientResources:
                return
            except InfeasibleRequest as exc:
                heapq.heappop(self._queue)
                job.request.deny(str(exc))
                continue
            heapq.heappop(self._queue)
            job.request.success(alloc)

    def forecast(self):
        """Run after a pass that left jobs queued (nothing by default)."""

    def resource_update(self):
        """Called after each resource update."""

    def expiration(self, msg, jobid, expiration):
        self.handle.respond(msg, None)

    def feasibility_check(self, msg, jobspec):
        try:
            req = self.resources.parse_resource_request(jobspec)
            self.resources.check_feasibility(req)
        except InfeasibleRequest as exc:
            self.handle.respond_error(msg, errno.EOVERFLOW, str(exc))
            return
        except OSError as exc:
            self.handle.respond_error(msg, exc.errno or errno.EINVAL, str(exc))
            return
        except Exception as exc:
            self.handle.respond_error(msg, errno.EINVAL, str(exc))
            return
        self.handle.respond(msg, {})

    def stats_get(self):
        return dict(self.stats, pending_jobs=len(self._queue))

    # -- passes ------------------------------------------------------------------------
    def request_pass(self):
        if not self._queue:
            return
        if self._generator is not None:
            self._generator.close()  # a new event: a fresh pass
            self._generator = None
        if self._pass_timer is None:
            self._pass_timer = self.handle.timer_watcher_create(
                self.stats["sched_delay"], self._run_pass)
            self._pass_timer.start()

    def start_schedule(self):
        result = self.schedule()
        if hasattr(result, "send"):
            self._generator = result
            self._advance()

    def _run_pass(self, *_args):
        self._pass_timer.stop()
        self._pass_timer = None
        started = time.monotonic()
        last = getattr(self, "_last_pass", None)
        self.stats["sched_passes"] += 1
        self.start_schedule()
        duration = time.monotonic() - started
        a = SCHED_EWMA_ALPHA
        self.stats["sched_duration_ewma"] += a * (duration - self.stats["sched_duration_ewma"])
        if last is not None:
            interval = started - last
            self.stats["sched_interval_ewma"] += a * (interval - self.stats["sched_interval_ewma"])
            if self._generator is None and interval < self.stats["sched_duration_ewma"]:
                self.stats["sched_delay"] = min(self.stats["sched_duration_ewma"],
                                                SCHED_DELAY_MAX)
        self._last_pass = started
        if self._generator is None and self._queue:
            self.stats["forecast_passes"] += 1
            self.forecast()

    def _advance(self, *_args):
        gen = self._generator
        if gen is None:
            return
        try:
            next(gen)
        except StopIteration:
            self._generator = None
            return
        self.stats["sched_yields"] += 1
        timer = self.handle.timer_watcher_create(0, lambda *a: (timer.stop(),
                                                                self._advance()))
        timer.start()

    # -- message handlers ------------------------------------------------------------------
    def _guard(self, what, func, *args):
        try:
            func(*args)
        except Exception as exc:
            self.log.error(f"{what} callback raised: {exc}")
            self.stop_error()

    @request_handler("sched.alloc", prefix=False)
    def _alloc_msg(self, msg):
        body = msg.get_object()
        jobid = body["id"]
        request = AllocRequest(self, msg, jobid)
        self._guard("alloc", self.alloc, request, jobid, body.get("priority", 0),
                    body.get("userid"), body.get("t_submit"), body.get("jobspec") or {})
        self.request_pass()

    @request_handler("sched.free", prefix=False)
    def _free_msg(self, msg):
        body = msg.get_object()
        R = body.get("R")
        if self._resource_pools() and isinstance(R, dict):
            R = self._make_pool(R)
        self._guard("free", self.free, body["id"], R, body.get("final", False))
        self.request_pass()

    @request_handler("sched.cancel", prefix=False)
    def _cancel_msg(self, msg):
        self._guard("cancel", self.cancel, msg.get_object()["id"])
        self.request_pass()

    @request_handler("sched.prioritize", prefix=False)
    def _prioritize_msg(self, msg):
        self._guard("prioritize", self.prioritize, msg.get_object()["jobs"])
        self.request_pass()

    @request_handler("sched.expiration", prefix=False)
    def _expiration_msg(self, msg):
        body = msg.get_object()
        exp = body.get("expiration")
        if not isinstance(exp, (int, float)) or exp < 0:
            self.handle.respond_error(msg, errno.EINVAL, f"invalid expiration {exp}")
            return
        try:
            self.expiration(msg, body["id"], exp)
        except Exception as exc:
            self.handle.respond_error(msg, errno.EINVAL, str(exc))

    @request_handler("sched.resource-status", prefix=False, allow_guest=True)
    def _resource_status_msg(self, msg):
        pool = self.resources
        try:
            body = {"all": pool.to_dict(),
                    "allocated": _as_dict(pool.copy_allocated()),
                    "down": _as_dict(pool.copy_down())}
        except Exception as exc:
            self.handle.respond_error(msg, errno.EINVAL, str(exc))
            return
        self.handle.respond(msg, body)

    @request_handler("feasibility.check", prefix=False)
    def _feasibility_msg(self, msg):
        try:
            self.feasibility_check(msg, (msg.get_object() or {}).get("jobspec") or {})
        except Exception as exc:
            self.handle.respond_error(msg, errno.EINVAL, str(exc))


def _as_dict(value):
    return value.to_dict() if hasattr(value, "to_dict") else value
