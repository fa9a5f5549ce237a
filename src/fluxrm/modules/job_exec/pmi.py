"""Simple PMI for every job (a part of job-exec, ``JobExec``'s base class
``ExecPMI``): how the tasks of a job, MPI programs and nested brokers,
learn their rank and size and swap their business cards, across ranks.

Unless the shell option ``pmi`` is ``off`` (``flux run -o pmi=off``; the
task environment then has no ``PMI_FD``/``PMI_RANK``/``PMI_SIZE``), each
task is spawned with one end of a Unix socketpair of its own as
``PMI_FD`` (``spawn`` dup2s it onto itself, which clears close-on-exec in
that child only), ``PMI_RANK`` its rank in the job, ``PMI_SIZE`` the job's
task count.  The other end is served on the broker's loop by
``fluxrm.pmi.drivers.AsyncioPMIServer`` around this module's ``JobPMI``,
which creates the job's ``fluxrm.pmi.server.PMIServerCore`` only when a
task sends its first line: a job whose tasks never speak PMI (nearly all)
pays a socketpair and a watched descriptor per task, and nothing else.
The kvsname is the job id in decimal; ``PMI_process_mapping`` is pre-put,
MPICH's ``(vector,(nodeid,nnodes,ppn)...)`` form of the job's task map
(``fluxrm.taskmap.process_mapping``), so MPI knows which ranks share a node.

A job whose tasks all run on one broker completes its barriers in that
broker's core.  A job whose tasks run on several brokers has one core per
broker, serving the tasks there (``local_ranks``), and rank 0's job-exec,
which already tracks the job's shares, is the barrier's leader: once every
task of a broker has entered, that broker sends the pairs its tasks put
since the last barrier to rank 0; once every broker with tasks has, rank 0
sends the merged pairs to each of them, which answer ``barrier_out`` to
their tasks; ``get`` is then answered locally.  Rank 0 takes part without
messages to itself.  Messages are batched like ``job-exec.report``: one
per peer rank per loop turn, carrying every job's items.

RPC topics (owner only, no response):

- ``job-exec.pmi-up`` (rank 0): ``{"rank": R, "enter": [[id, {key:
  value}]...], "fatal": [[id, note]...]}``: rank R's tasks of job ``id``
  have all entered the barrier, with their new pairs; or a task aborted
  (or a barrier can never complete there), so the job must fail.
- ``job-exec.pmi-down`` (other ranks): ``{"exit": [[id, {key: value}]...],
  "fail": [[id, note]...]}``: the barrier completed, with every new pair of
  the job; or it can never complete (answered rc=-1, ``note``).

Failures never hang a job: a task's PMI ``abort``, or a barrier that can
never complete (a task finalized, aborted or lost its connection while
others wait in it; on another rank: every task of a broker with tasks
exited, or its share ended, while others wait) raises a fatal ``exec``
exception on the job, with a note saying which task on which host; the
job-manager then kills it.  A job's PMI state (its sockets, its core, the
leader's merge) is freed when the job completes on that rank
(``pmi_close``).
"""

import errno

from fluxrm.broker import payload
from fluxrm.broker.service import request_handler
from fluxrm.pmi.drivers import AsyncioPMIServer
from fluxrm.pmi.server import MAX_KVS_BYTES, PMIServerCore
from fluxrm.pmi.wire import VALLEN_MAX
from fluxrm.taskmap import process_mapping

LOG_ERR = 3
PMI_ENV = ("PMI_FD", "PMI_RANK", "PMI_SIZE")


class JobPMI:
    """One job's PMI on this broker: its tasks' connections, and the
    ``PMIServerCore`` once a task speaks (see the module docstring).  To
    the driver it is the core (``size``, ``feed``, ``lost``)."""

    __slots__ = ("svc", "ej", "size", "size_text", "local", "server", "core",
                 "silent", "multi")

    def __init__(self, svc, ej, ntasks, local):
        self.svc = svc
        self.ej = ej
        self.size = ntasks
        self.size_text = str(ntasks)
        self.local = local  # the task ranks run here
        self.server = AsyncioPMIServer(self, svc.loop)
        self.core = None
        self.silent = None  # ranks gone before the core existed
        self.multi = False  # the barrier completes at rank 0 (several brokers)

    def connect(self, rank, env):
        """The socketpair of task ``rank``: set its PMI variables in
        ``env``; return the task's end (the caller closes it after the
        spawn)."""
        fd = self.server.socketpair_for(rank)
        env["PMI_FD"] = str(fd)
        env["PMI_RANK"] = env.get("FLUX_TASK_RANK") or str(rank)
        env["PMI_SIZE"] = self.size_text
        return fd

    # -- the core, to the driver --------------------------------------------------------
    def feed(self, rank, line):
        core = self.core
        if core is None:
            core = self._make_core()
        return core.feed(rank, line)

    def lost(self, rank, why):
        core = self.core
        if core is None:  # never spoke PMI (``true``): nothing to tell
            if self.silent is None:
                self.silent = []
            self.silent.append((rank, why))
            answers = []
        else:
            answers = core.lost(rank, why)
        if self.multi and not self.server.count and self.svc.broker.rank == 0:
            self.svc.pmi_check(self.ej)  # rank 0's tasks can enter no more
        return answers

    def _make_core(self):
        svc, ej = self.svc, self.ej
        layout = None
        if svc.broker.size > 1 and not svc.on_this_rank_only(ej.R):
            layout = svc.layout(ej.R, ej.request, self.size)
        if layout is None:
            mapping = f"(vector,(0,1,{self.size}))"
        else:
            mapping = process_mapping(layout.taskmap)
            self.multi = len(layout.placement) > 1
        preput = {"PMI_process_mapping": mapping} if len(mapping) <= VALLEN_MAX else {}
        core = self.core = PMIServerCore(
            self.size, str(ej.id), preput=preput,
            on_abort=self._aborted, on_stuck=self._stuck,
            local_ranks=self.local if self.multi else None,
            on_barrier=self._entered if self.multi else None)
        if self.silent:
            for rank, why in self.silent:
                core.lost(rank, why)
            self.silent = None
        return core

    # -- what the core reports ---------------------------------------------------------------
    def _host(self):
        return f"{self.svc.resource.local.hostname} (rank {self.svc.broker.rank})"

    def _aborted(self, rank, code, message):
        note = f"task {rank} on {self._host()}: PMI abort (exit code {code})"
        self.svc.pmi_fatal(self.ej, note + (f": {message}" if message else ""))

    def _stuck(self, why):
        self.svc.pmi_fatal(self.ej, f"{why} (tasks on {self._host()})")

    def _entered(self, pairs):
        self.svc.pmi_entered(self.ej, pairs)

    # -- the leader's answers ------------------------------------------------------------------
    def barrier_done(self, pairs):
        if self.core is not None:
            self.server.deliver(self.core.barrier_done(pairs))

    def barrier_failed(self, why):
        if self.core is not None:
            self.server.deliver(self.core.barrier_failed(why))

    def close(self):
        self.server.close()
        self.core = None


class Group:
    """Rank 0's state of the barriers of a job on several brokers: the
    ranks with tasks, those in the current barrier, its new pairs."""

    __slots__ = ("ranks", "entered", "pairs", "nbytes")

    def __init__(self, ranks):
        self.ranks = ranks  # frozenset of broker ranks
        self.entered = set()
        self.pairs = {}
        self.nbytes = 0  # of every pair so far


class ExecPMI:
    """The methods of ``JobExec`` for PMI (see the module docstring); they
    use ``JobExec``'s ``jobs``, ``loop``, ``broker``, ``resource``,
    ``layout``, ``on_this_rank_only``, ``raise_exception``, ``flush`` and
    ``log``."""

    def init_pmi(self):
        self._pmi_up = None  # this turn's job-exec.pmi-up (ranks > 0)
        self._pmi_down = {}  # rank -> this turn's job-exec.pmi-down (rank 0)
        self._pmi_scheduled = False

    def pmi_setup(self, ej, tasks, ntasks, env):
        """Before this rank's tasks of ``ej`` are planned: ``ej.pmi`` (or
        nothing, with ``-o pmi=off``, whose tasks get no PMI variables)."""
        if ej.request.shell_options.get("pmi") == "off":
            for name in PMI_ENV:
                env.pop(name, None)
            return
        local = range(tasks) if type(tasks) is int else tasks
        if local:
            ej.pmi = JobPMI(self, ej, ntasks, local)

    def pmi_close(self, ej):
        """The job is over on this rank: its PMI sockets and state go."""
        if ej.pmi is not None:
            ej.pmi.close()
            ej.pmi = None
        ej.pmi_group = None

    # -- this rank's tasks --------------------------------------------------------------
    def pmi_fatal(self, ej, note):
        """The job must fail (a task aborted; a barrier cannot complete)."""
        if self.broker.rank != 0:
            self._up_item("fatal", [ej.id, note])
            return
        if ej.completed or ej.pmi_failed:
            return
        ej.pmi_failed = True
        self.log(LOG_ERR, f"job {ej.id}: {note}")
        self.raise_exception(ej, "exec", note)
        if self._to_manager:
            self.flush()

    def pmi_entered(self, ej, pairs):
        """Every task of ``ej`` here has entered the barrier."""
        if self.broker.rank != 0:
            self._up_item("enter", [ej.id, pairs])
        else:
            self.pmi_enter(ej, 0, pairs)

    def _up_item(self, field, item):
        up = self._pmi_up
        if up is None:
            up = self._pmi_up = {"rank": self.broker.rank, "enter": [], "fatal": []}
            self._pmi_schedule()
        up[field].append(item)

    def _down_item(self, rank, field, item):
        if rank == 0:
            ej = self.jobs.get(item[0])
            if ej is not None and ej.pmi is not None:
                if field == "exit":
                    ej.pmi.barrier_done(item[1])
                else:
                    ej.pmi.barrier_failed(item[1])
            return
        down = self._pmi_down.get(rank)
        if down is None:
            down = self._pmi_down[rank] = {"exit": [], "fail": []}
            self._pmi_schedule()
        down[field].append(item)

    def _pmi_schedule(self):
        if not self._pmi_scheduled:
            self._pmi_scheduled = True
            self.loop.call_soon(self.pmi_flush)

    def pmi_flush(self):
        """Send this turn's PMI messages: one per peer rank."""
        self._pmi_scheduled = False
        rpc = self.broker.rpc
        up, self._pmi_up = self._pmi_up, None
        if up is not None:
            rpc.notify("job-exec.pmi-up", up, 0)
        down, self._pmi_down = self._pmi_down, {}
        for rank, body in down.items():
            rpc.notify("job-exec.pmi-down", body, rank)

    # -- rank 0: the leader --------------------------------------------------------------
    def _group(self, ej):
        group = ej.pmi_group
        if group is None:
            layout = self.layout(ej.R, ej.request, ej.request.ntasks(ej.R))
            group = ej.pmi_group = Group(frozenset(r for r, _ids in layout.placement))
        return group

    def pmi_enter(self, ej, rank, pairs):
        """Rank ``rank``'s tasks of ``ej`` have entered the barrier."""
        if ej.pmi_failed:
            self._down_item(rank, "fail", [ej.id, "the job has failed"])
            return
        group = self._group(ej)
        if rank not in group.ranks or rank in group.entered:
            self.log(LOG_ERR, f"job {ej.id}: PMI barrier entered by rank {rank}"
                     " again or without tasks; ignored")
            return
        group.entered.add(rank)
        merged = group.pairs
        for key, value in pairs.items():
            if key not in merged:
                merged[key] = value
                group.nbytes += len(key) + len(value)
        if group.nbytes > MAX_KVS_BYTES:
            self.pmi_fail(ej, f"PMI: the key-value space is full ({MAX_KVS_BYTES}"
                          " bytes)")
            return
        if len(group.entered) == len(group.ranks):
            group.entered = set()
            group.pairs = {}
            for r in sorted(group.ranks):
                self._down_item(r, "exit", [ej.id, merged])
            return
        self.pmi_check(ej)

    def pmi_check(self, ej):
        """Fail the barrier of ``ej`` if a rank not in it can never enter
        it: its tasks have all closed their PMI connections (rank 0), or
        its share of the job is over (another rank)."""
        group = ej.pmi_group
        if group is None or not group.entered or ej.pmi_failed:
            return
        remote = ej.remote or ()
        for rank in sorted(group.ranks - group.entered):
            if rank == 0:
                gone = ej.pmi is None or not ej.pmi.server.count
            else:
                gone = rank not in remote
            if gone:
                host = self.hostname_of(rank)
                self.pmi_fail(ej, "PMI barrier can never complete: the tasks on"
                              f" {host} (rank {rank}) exited or closed their"
                              " PMI connections before entering it")
                return

    def pmi_fail(self, ej, note):
        """The job's barrier can never complete: fail the job, answer the
        ranks waiting in it."""
        group = self._group(ej)
        self.pmi_fatal(ej, note)
        entered, group.entered = group.entered, set()
        group.pairs = {}
        for rank in sorted(entered):
            self._down_item(rank, "fail", [ej.id, note])

    @request_handler("pmi-up")
    def pmi_up(self, msg):
        """Another rank's PMI items of one loop turn (module docstring)."""
        if self.broker.rank != 0:
            raise OSError(errno.EINVAL, "job-exec.pmi-up: only rank 0 leads barriers")
        req = payload.request(msg)
        rank = payload.integer(req, "rank", lo=1, hi=self.broker.size - 1)
        enter = _items(req, "enter", dict, "job-exec.pmi-up")
        fatal = _items(req, "fatal", str, "job-exec.pmi-up")
        jobs = self.jobs
        for jobid, note in fatal:
            ej = jobs.get(jobid)
            if ej is not None:
                self.pmi_fatal(ej, note)
        for jobid, pairs in enter:
            ej = jobs.get(jobid)
            if ej is not None and ej.share is None:
                self.pmi_enter(ej, rank, pairs)

    @request_handler("pmi-down")
    def pmi_down(self, msg):
        """Rank 0's answers to this rank's barriers (module docstring)."""
        if self.broker.rank == 0:
            raise OSError(errno.EINVAL, "job-exec.pmi-down: rank 0 leads barriers")
        req = payload.request(msg)
        exits = _items(req, "exit", dict, "job-exec.pmi-down")
        fails = _items(req, "fail", str, "job-exec.pmi-down")
        jobs = self.jobs
        for jobid, pairs in exits:
            ej = jobs.get(jobid)
            if ej is not None and ej.pmi is not None:
                ej.pmi.barrier_done(pairs)
        for jobid, note in fails:
            ej = jobs.get(jobid)
            if ej is not None and ej.pmi is not None:
                ej.pmi.barrier_failed(note)


def _items(req, field, kind, topic):
    """A list of ``[job id, value of kind]`` (pairs: a dict of str to str)."""
    items = req.get(field, [])
    ok = type(items) is list
    for item in items if ok else ():
        if not (type(item) is list and len(item) == 2 and type(item[0]) is int
                and item[0] >= 0 and type(item[1]) is kind):
            ok = False
            break
        if kind is dict and not all(type(k) is str and type(v) is str
                                    and "\n" not in v and " " not in k
                                    for k, v in item[1].items()):
            ok = False
            break
    if not ok:
        what = "{key: value}" if kind is dict else "note"
        raise OSError(errno.EPROTO, f"{topic}: {field} must be a list of"
                      f" [id, {what}]")
    return items
