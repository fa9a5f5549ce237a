"""job-ingest: accept job submissions.

RPC topics:

- ``job-ingest.submit`` {J, urgency, flags} -> {id}

``J`` is the signed jobspec; for the instance owner the "none" mechanism
``<base64 header>.<base64 jobspec>.none`` (header: NUL-separated
``version i1 userid i<uid> mechanism snone``).  A bare JSON jobspec is
accepted too.  Checks, in order: flags and urgency (EINVAL "urgency range
is [0:31]"), owner-only flags (EPERM), the signer is the requester
(EPERM), the JSON (EINVAL "jobspec: invalid JSON: ..."), the V1 rules
(EINVAL with the validator's message, unless FLUX_JOB_NOVALIDATE), and a
resource shape the scheduler can serve (EINVAL).

Submissions arriving in one loop turn form one batch: ids are assigned in
arrival order, the jobs go to the job-manager together, and every request
is answered once the batch is committed to the store (if that fails: EIO,
and the jobs, already in the job-manager, get a fatal ``ingest`` exception
so none runs).  Validation results
are cached by jobspec text, so a thousand copies of one jobspec are
validated once (and unwrapping a J is remembered the same way).  A batch
of ``BULK_BATCH`` or more marks a bulk submission in progress for
``BULK_WINDOW`` (``bulk_in_progress(now)``), which the scheduler uses to
take submissions in before starting jobs.
"""

import asyncio
import base64
import binascii
import errno
import json
import time
from collections import OrderedDict

from flux.constants import (
    FLUX_JOB_DEBUG,
    FLUX_JOB_NOVALIDATE,
    FLUX_JOB_PRE_SIGNED,
    FLUX_JOB_WAITABLE,
    FLUX_ROLE_OWNER,
)
from flux.job.fluid import FluidGenerator
from flux.job.submit import sign_none
from fluxrm.broker.service import Service
from fluxrm.modules.job_manager import Job
from fluxrm.modules.sched import request_error

VALID_FLAGS = FLUX_JOB_PRE_SIGNED | FLUX_JOB_DEBUG | FLUX_JOB_WAITABLE | FLUX_JOB_NOVALIDATE
OWNER_FLAGS = FLUX_JOB_WAITABLE | FLUX_JOB_NOVALIDATE
CACHE_SIZE = 256
BULK_BATCH = 32  # submissions in one loop turn that make a bulk submission
BULK_WINDOW = 0.002  # s after such a batch that the bulk is still coming
UNWRAPPED_MAX_SIZE = 1 << 16  # longer J texts are unwrapped every time


def unwrap_J(J, userid):
    """Return the jobspec text inside a signed J; check the signer."""
    if not isinstance(J, str):
        raise OSError(errno.EINVAL, "J must be a string")
    stripped = J.lstrip()
    if stripped.startswith("{"):
        return J
    parts = J.split(".")
    if len(parts) != 3:
        raise OSError(errno.EINVAL, "J: not a signed jobspec")
    try:
        header = base64.b64decode(parts[0], validate=True)
        payload = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise OSError(errno.EINVAL, "J: invalid base64") from None
    fields = header.split(b"\0")
    pairs = dict(zip(fields[0::2], fields[1::2]))
    if pairs.get(b"mechanism") != b"snone" or parts[2] != "none":
        raise OSError(errno.EINVAL, "J: unsupported signing mechanism")
    signer = pairs.get(b"userid", b"")
    if not signer.startswith(b"i") or not signer[1:].isdigit():
        raise OSError(errno.EINVAL, "J: header has no userid")
    if int(signer[1:]) != userid:
        raise OSError(errno.EPERM, "J: signer is not the submitting user")
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise OSError(errno.EINVAL, "jobspec: invalid JSON: not UTF-8") from None


def validate_text(text):
    """Validate jobspec text; return the decoded dict or raise OSError(EINVAL)."""
    try:
        jobspec = json.loads(text)
    except ValueError as exc:
        raise OSError(errno.EINVAL, f"jobspec: invalid JSON: {exc}") from None
    from flux.job.Jobspec import validate_jobspec

    try:
        validate_jobspec(text, require_version=1)
    except (TypeError, ValueError, KeyError) as exc:
        raise OSError(errno.EINVAL, str(exc).strip("'\"") or type(exc).__name__) from None
    why = request_error(jobspec)
    if why:
        raise OSError(errno.EINVAL, f"unsupported resource request: {why}")
    return jobspec


class JobIngest(Service):
    name = "job-ingest"

    def __init__(self, broker):
        super().__init__(broker)
        self.handlers = {"job-ingest.submit": self.h_submit}
        self.pending = []  # (msg, job, submit context)
        self._flush_scheduled = False
        self.cache = OrderedDict()  # jobspec text -> (error, jobspec, text)
        self.unwrapped = {}  # (J, userid) -> (jobspec text, J to keep)
        self.fluid = None
        self.last_bulk = float("-inf")  # loop time of the last large batch

    async def start(self):
        self.manager = self.broker.router.services["job-manager"]
        self.store = self.manager.store
        epoch = self.manager.meta_get("fluid-epoch")
        if epoch is None:
            epoch = str(int(time.time() * 1000))
            self.manager.meta_set("fluid-epoch", epoch)
        self.fluid = FluidGenerator(self.broker.rank, int(epoch),
                                    after=self.manager.max_jobid or None)

    def bulk_in_progress(self, now):
        """Did a large batch of submissions arrive just now?"""
        return now - self.last_bulk < BULK_WINDOW

    def unwrap(self, J, userid):
        """``(jobspec text, J to keep)`` of a submitted J, remembered for
        repeats.  The J kept is None when it is just ``sign_none(text,
        userid)``, which ``signed_J`` rebuilds when asked."""
        key = (J, userid)
        try:
            return self.unwrapped[key]
        except (KeyError, TypeError):  # TypeError: J is not hashable
            pass
        text = unwrap_J(J, userid)
        keep = None if text is not J and J == sign_none(text, userid) else J
        if len(J) <= UNWRAPPED_MAX_SIZE:
            if len(self.unwrapped) >= CACHE_SIZE:
                self.unwrapped.clear()
            self.unwrapped[key] = (text, keep)
        return text, keep

    def check(self, text):
        """Validate with a small cache keyed by the exact text; return
        ``(jobspec, text)``.

        Identical submissions share one decoded jobspec, which no service
        modifies, and one text object (the first one seen).
        """
        cached = self.cache.get(text)
        if cached is not None:
            self.cache.move_to_end(text)
            err, jobspec, first = cached
            if err is not None:
                raise OSError(errno.EINVAL, err)
            return jobspec, first
        try:
            jobspec = validate_text(text)
        except OSError as exc:
            self.cache[text] = (exc.strerror, None, text)
            self._trim()
            raise
        self.cache[text] = (None, jobspec, text)
        self._trim()
        return jobspec, text

    def _trim(self):
        while len(self.cache) > CACHE_SIZE:
            self.cache.popitem(last=False)

    def h_submit(self, msg):
        req = msg.get_object()
        if not isinstance(req, dict):
            raise OSError(errno.EPROTO, "job-ingest.submit: malformed request")
        flags = req.get("flags", 0)
        urgency = req.get("urgency", 16)
        if not isinstance(flags, int) or flags & ~VALID_FLAGS:
            raise OSError(errno.EINVAL, "invalid submit flags")
        if not isinstance(urgency, int) or not 0 <= urgency <= 31:
            raise OSError(errno.EINVAL, "urgency range is [0:31]")
        owner = bool(msg.rolemask & FLUX_ROLE_OWNER)
        if not owner and (flags & OWNER_FLAGS or urgency > 16):
            raise OSError(errno.EPERM, "only the instance owner may use these flags"
                          " or an urgency above 16")
        text, J = self.unwrap(req.get("J"), msg.userid)
        if flags & FLUX_JOB_NOVALIDATE:
            try:
                jobspec = json.loads(text)
            except ValueError as exc:
                raise OSError(errno.EINVAL, f"jobspec: invalid JSON: {exc}") from None
            if not isinstance(jobspec, dict):
                raise OSError(errno.EINVAL, "jobspec: not a JSON object")
        else:
            jobspec, text = self.check(text)
        job = Job(0, jobspec, J=J, jobspec_text=text)
        job.waitable = bool(flags & FLUX_JOB_WAITABLE)
        ctx = {"userid": msg.userid, "urgency": urgency, "flags": flags, "version": 1}
        self.pending.append((msg, job, ctx))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self):
        """Assign ids to this turn's submissions and hand them over as one batch."""
        self._flush_scheduled = False
        batch, self.pending = self.pending, []
        if not batch:
            return
        if len(batch) >= BULK_BATCH:
            self.last_bulk = asyncio.get_running_loop().time()
        for _msg, job, _ctx in batch:
            job.id = self.fluid.next()
        self.manager.submit([(job, ctx) for _msg, job, ctx in batch])
        # the job manager writes the new jobs in the commit answer() waits for

        def answer(exc):
            for msg, job, _ctx in batch:
                if exc is None:
                    self.respond(msg, {"id": job.id})
                else:
                    self.respond_error(msg, errno.EIO, f"job store: {exc}")
                    # the submitter was told it failed: the job must not run
                    if self.manager.active.get(job.id) is job:
                        self.manager.raise_exception(
                            job, "ingest", 0, f"job store: {exc}")

        self.store.on_durable(answer)
