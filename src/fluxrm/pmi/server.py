"""The PMI-1 server's logic, without any I/O.

One server serves one group of ``size`` processes (ranks 0..size-1) sharing
one key-value space named ``kvsname``.  Each process talks over its own
connection, so the driver that owns the connections knows which rank sent a
line and passes it in: ``feed(rank, line)`` returns the answers to send, as
``(rank, line)`` pairs (a barrier's completion answers every rank at once).

What each request does:

- ``init pmi_version=1``: accepted (``response_to_init rc=0``, we speak
  1.1); another major version is refused with rc=-1.
- ``get_maxes``, ``get_appnum``, ``get_universe_size`` (the group's size),
  ``get_my_kvsname``: constant facts.
- ``put kvsname= key= value=``: stores the pair; a key already present
  (put, or pre-put by the owner) is refused: values never change.  All
  pairs together are bounded (``max_kvs_bytes``, 64 MiB by default).
- ``get kvsname= key=``: the value, or rc=-1 at once if it is not there yet
  (processes get each other's keys only after a barrier).
- ``barrier_in``: held until every rank has entered, then ``barrier_out
  rc=0`` goes to all.  A rank that can never enter (it finalized, aborted,
  or its connection was lost) makes the barrier fail (rc=-1, saying which)
  for every rank waiting now or entering later, instead of hanging.
- ``finalize``: ``finalize_ack``; later requests from that rank are refused.
- ``abort exitcode= error_msg=``: no answer; reported to the owner with
  ``on_abort(rank, exitcode, message)``.
- ``mcmd=spawn`` ... ``endcmd``: refused (``spawn_result rc=-1``).
- anything else, or a malformed or over-long line: an error answer naming
  the problem; the connection stays usable.  Blank lines are ignored.

The driver calls ``lost(rank)`` when a connection closes; a rank lost before
finalize (or abort) is reported with ``on_lost(rank, message)``, the message
saying which ranks now wait in a barrier that cannot complete, so the owner
can fail the instance or job with that text.  A barrier failed that way (or
because a rank finalized or aborted) is reported with ``on_stuck(message)``.
Callbacks run inside ``feed``/``lost`` and must not raise.

**A subset of the group** (``local_ranks``, with ``on_barrier``): a job
whose tasks run on several brokers has one core per broker, each serving
the ranks that run there, and the barrier is completed outside: once every
local rank has entered, ``on_barrier(pairs)`` gets the pairs put here since
the last barrier (a dict), and the owner, once the other brokers' ranks
have entered too, calls ``barrier_done(pairs)`` with every new pair of the
group (those put here included; a key already here is kept) or
``barrier_failed(why)``; each returns the answers for the local ranks in the
barrier.  ``get`` is then answered from the local copy.  A local rank that
can never enter still fails the barrier here (``on_stuck``), as above.
"""

from fluxrm.pmi.wire import (
    KEYLEN_MAX, KVSNAME_MAX, VALLEN_MAX, WireError, format_line, parse_line,
    reply_name, request_name,
)

__all__ = ["PMIServerCore"]

PMI_VERSION = 1
PMI_SUBVERSION = 1
# what all puts together may hold (keys and values, in characters)
MAX_KVS_BYTES = 64 * 1024 * 1024


class PMIServerCore:
    def __init__(self, size, kvsname, appnum=0, preput=None, *,
                 on_abort=None, on_lost=None, max_kvs_bytes=MAX_KVS_BYTES,
                 local_ranks=None, on_barrier=None, on_stuck=None):
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"PMI size must be a positive integer, not {size!r}")
        if not kvsname or len(kvsname) > KVSNAME_MAX or " " in kvsname \
                or "\n" in kvsname:
            raise ValueError(f"PMI kvsname {kvsname!r}: 1-{KVSNAME_MAX} "
                             "characters, no spaces")
        self.size = size
        self.kvsname = kvsname
        self.appnum = appnum
        self.on_abort = on_abort
        self.on_lost = on_lost
        self.max_kvs_bytes = max_kvs_bytes
        self.on_stuck = on_stuck
        if local_ranks is None:
            if on_barrier is not None:
                raise ValueError("PMI on_barrier needs local_ranks")
            self.local = None  # all ranks
            self.nlocal = size
        else:
            self.local = frozenset(local_ranks)
            if not self.local or not all(isinstance(r, int) and 0 <= r < size
                                         for r in self.local):
                raise ValueError(f"PMI local ranks must be a non-empty subset "
                                 f"of 0-{size - 1}")
            self.nlocal = len(self.local)
        self.on_barrier = on_barrier
        self._new = {}  # pairs put since the last barrier (with on_barrier)
        self._barrier_pending = False  # on_barrier called, no answer yet
        self._kvs = {}
        self._kvs_bytes = 0
        for key, value in (preput or {}).items():
            problem = (_check_pair(key, value) if isinstance(key, str)
                       and isinstance(value, str) else "keys and values must be str")
            if problem:
                raise ValueError(f"PMI preput: {problem}")
            self._kvs[key] = value
            self._kvs_bytes += len(key) + len(value)
        self._entered = set()  # ranks in the current barrier
        self._finalized = set()
        self._aborted = set()
        self._lost = set()
        self._in_mcmd = set()  # ranks inside an mcmd ... endcmd block

    # -- what the owner may read ----------------------------------------------------
    @property
    def kvs(self):
        """A copy of the key-value space (pre-put and put pairs)."""
        return dict(self._kvs)

    @property
    def finished(self):
        """True once every (local) rank has finalized, aborted or been lost."""
        return len(self._finalized | self._aborted | self._lost) == self.nlocal

    # -- input ------------------------------------------------------------------------
    def feed(self, rank, line):
        """Handle one line (str, newline optional) from ``rank``; return the
        answers as a list of ``(rank, line)``, each line ending in "\\n"."""
        self._check_rank(rank)
        if rank in self._lost:
            return []
        text = line.rstrip("\r\n")
        if rank in self._in_mcmd:
            if text == "endcmd":
                self._in_mcmd.discard(rank)
                return [(rank, format_line(
                    "spawn_result", rc=-1, msg="PMI spawn is not supported"))]
            return []
        if not text.strip(" "):
            return []
        try:
            req = parse_line(text)
        except WireError as exc:
            name = request_name(text)
            return [(rank, _fail(reply_name(name) if name else "error", exc))]
        if "cmd" not in req:  # mcmd=NAME: a block up to "endcmd"
            self._in_mcmd.add(rank)
            return []
        cmd = req["cmd"]
        if cmd == "abort":
            return self._abort(rank, req)
        if rank in self._finalized:
            return [(rank, _fail(reply_name(cmd), "request after finalize"))]
        handler = getattr(self, "_do_" + cmd, None)
        if handler is None:
            return [(rank, _fail("error", f"unknown command '{cmd[:KEYLEN_MAX]}'"))]
        return handler(rank, req)

    def lost(self, rank, why="closed its connection"):
        """The connection of ``rank`` is gone (closed, or dropped by the
        driver, ``why`` saying how).  Returns answers for the other ranks,
        like ``feed``."""
        self._check_rank(rank)
        if rank in self._lost:
            return []
        self._lost.add(rank)
        self._in_mcmd.discard(rank)
        if rank in self._finalized or rank in self._aborted:
            return []
        waiting = sorted(self._entered - {rank} - self._lost)
        message = f"PMI rank {rank} {why} before finalize"
        if rank not in self._entered and waiting:
            message += (f"; {_ranks_text(waiting)} "
                        f"wait{'s' if len(waiting) == 1 else ''} in a barrier "
                        "that can never complete")
        if self.on_lost is not None:
            self.on_lost(rank, message)
        return self._settle_barrier()

    # -- requests ---------------------------------------------------------------------
    def _do_init(self, rank, req):
        version = req.get("pmi_version")
        if version != str(PMI_VERSION):
            return [(rank, _fail(
                "response_to_init", f"PMI version {version} is not supported "
                f"(this server speaks {PMI_VERSION}.{PMI_SUBVERSION})",
                pmi_version=PMI_VERSION, pmi_subversion=PMI_SUBVERSION))]
        return [(rank, format_line("response_to_init", rc=0, pmi_version=PMI_VERSION,
                                   pmi_subversion=PMI_SUBVERSION))]

    def _do_get_maxes(self, rank, req):
        return [(rank, format_line("maxes", rc=0, kvsname_max=KVSNAME_MAX,
                                   keylen_max=KEYLEN_MAX, vallen_max=VALLEN_MAX))]

    def _do_get_appnum(self, rank, req):
        return [(rank, format_line("appnum", rc=0, appnum=self.appnum))]

    def _do_get_universe_size(self, rank, req):
        return [(rank, format_line("universe_size", rc=0, size=self.size))]

    def _do_get_my_kvsname(self, rank, req):
        return [(rank, format_line("my_kvsname", rc=0, kvsname=self.kvsname))]

    def _do_put(self, rank, req):
        key, value = req.get("key"), req.get("value")
        problem = self._check_kvsname(req) or _check_pair(key, value)
        if not problem and key in self._kvs:
            problem = f"key '{key}' is already set"
        if not problem and self._kvs_bytes + len(key) + len(value) > self.max_kvs_bytes:
            problem = f"the key-value space is full ({self.max_kvs_bytes} bytes)"
        if problem:
            return [(rank, _fail("put_result", problem))]
        self._kvs[key] = value
        self._kvs_bytes += len(key) + len(value)
        if self.on_barrier is not None:
            self._new[key] = value
        return [(rank, format_line("put_result", rc=0))]

    def _do_get(self, rank, req):
        key = req.get("key")
        problem = self._check_kvsname(req) or _check_key(key)
        if not problem and key not in self._kvs:
            problem = f"key '{key}' not found"
        if problem:
            return [(rank, _fail("get_result", problem))]
        return [(rank, format_line("get_result", rc=0, value=self._kvs[key]))]

    def _do_barrier_in(self, rank, req):
        if rank in self._entered:
            return [(rank, _fail("barrier_out", "rank already in the barrier"))]
        self._entered.add(rank)
        return self._settle_barrier()

    def _do_finalize(self, rank, req):
        self._finalized.add(rank)
        self._entered.discard(rank)
        return [(rank, format_line("finalize_ack", rc=0))] + self._settle_barrier()

    def _abort(self, rank, req):
        try:
            code = int(req.get("exitcode", "1"))
        except ValueError:
            code = 1
        message = req.get("error_msg") or req.get("msg") or ""
        if rank in self._aborted:
            return []
        self._aborted.add(rank)
        self._entered.discard(rank)
        if self.on_abort is not None:
            self.on_abort(rank, code, message)
        return self._settle_barrier()

    # -- barrier ----------------------------------------------------------------------
    def _settle_barrier(self):
        """Complete the barrier if all ranks are in; fail it if some rank
        that is not in never can be; else keep waiting."""
        if not self._entered or self._barrier_pending:
            return []
        if len(self._entered) == self.nlocal:
            if self.on_barrier is not None:  # the others' ranks, elsewhere
                self._barrier_pending = True
                new, self._new = self._new, {}
                self.on_barrier(new)
                return []
            ranks = sorted(self._entered - self._lost)
            self._entered.clear()
            line = format_line("barrier_out", rc=0)
            return [(r, line) for r in ranks]
        gone = (self._finalized | self._aborted | self._lost) - self._entered
        if not gone:
            return []
        why = "; ".join(
            f"{_ranks_text(sorted(ranks))} {what}"
            for ranks, what in ((gone & self._finalized, "finalized"),
                                (gone & self._aborted, "aborted"),
                                (gone & self._lost - self._finalized - self._aborted,
                                 "disconnected"))
            if ranks)
        if self.on_stuck is not None:
            self.on_stuck(f"PMI barrier can never complete: {why}")
        return self.barrier_failed(f"barrier can never complete: {why}")

    # -- a barrier completed outside (``local_ranks`` with ``on_barrier``) -----------
    def barrier_done(self, pairs):
        """Every rank of the group has entered: store ``pairs`` (the
        group's new pairs; keys already here are kept) and answer the
        local ranks in the barrier."""
        self._barrier_pending = False
        kvs = self._kvs
        for key, value in pairs.items():
            if key not in kvs:
                kvs[key] = value
                self._kvs_bytes += len(key) + len(value)
        ranks = sorted(self._entered - self._lost)
        self._entered.clear()
        line = format_line("barrier_out", rc=0)
        return [(r, line) for r in ranks]

    def barrier_failed(self, why):
        """The barrier cannot complete: answer the local ranks in it with
        rc=-1 and ``why``."""
        self._barrier_pending = False
        ranks = sorted(self._entered - self._lost)
        self._entered.clear()
        line = _fail("barrier_out", why)
        return [(r, line) for r in ranks]

    # -- checks -----------------------------------------------------------------------
    def _check_rank(self, rank):
        if not isinstance(rank, int) or not 0 <= rank < self.size:
            raise ValueError(f"PMI rank {rank!r} outside 0-{self.size - 1}")
        if self.local is not None and rank not in self.local:
            raise ValueError(f"PMI rank {rank} is not served here")

    def _check_kvsname(self, req):
        name = req.get("kvsname")
        if name is not None and name != self.kvsname:
            return f"unknown kvsname '{name[:KVSNAME_MAX]}'"
        return None


def _check_key(key):
    if not key:
        return "no key given"
    if len(key) > KEYLEN_MAX:
        return f"key is {len(key)} characters, over keylen_max={KEYLEN_MAX}"
    if " " in key or "\n" in key:
        return "key contains a space or newline"
    return None


def _check_pair(key, value):
    problem = _check_key(key)
    if problem:
        return problem
    if value is None:
        return f"no value given for key '{key}'"
    if len(value) > VALLEN_MAX:
        return (f"value of key '{key}' is {len(value)} characters, "
                f"over vallen_max={VALLEN_MAX}")
    if "\n" in value:
        return f"value of key '{key}' contains a newline"
    return None


def _fail(cmd, why, **fields):
    return format_line(cmd, rc=-1, **fields, msg=str(why))


def _ranks_text(ranks):
    """Sorted ranks in words: [3] -> "rank 3", [0, 1, 2, 5] -> "ranks 0-2,5"."""
    parts = []
    start = prev = ranks[0]
    for r in ranks[1:] + [None]:
        if r is not None and r == prev + 1:
            prev = r
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = r
    return ("rank " if len(ranks) == 1 else "ranks ") + ",".join(parts)
