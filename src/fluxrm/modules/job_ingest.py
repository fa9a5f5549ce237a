"""job-ingest: accept job submissions.

RPC topics (allows guests: owner-only flags are checked per request):

- ``job-ingest.submit`` {J, urgency, flags} -> {id}

``J`` is the signed jobspec; for the instance owner the "none" mechanism
``<base64 header>.<base64 jobspec>.none`` (header: NUL-separated
``version i1 userid i<uid> mechanism snone``).  A bare JSON jobspec is
accepted too.  Checks, in order: flags and urgency (EINVAL "urgency range
is [0:31]"), owner-only flags (EPERM), the signer is the requester
(EPERM), the JSON (EINVAL "jobspec: invalid JSON: ..."; like upstream's
parser, ``parse_text`` also refuses NUL characters and lone surrogates in
strings, integers beyond 64 bits and non-finite numbers, naming the path,
e.g. "jobspec: tasks[0].command[1]: string contains a NUL character"), the
V1 rules (EINVAL with the validator's message; FLUX_JOB_NOVALIDATE skips
them, but not ``check_runnable``: the command, environment, cwd and shell
options job-exec reads must have the right types), and a resource shape
the scheduler can serve (EINVAL), then the queue and its limits (the
job-manager's ``queue_admit``: EINVAL "'x' is not a valid queue",
"requested duration exceeds policy limit of 1h"...).  A valid request
larger than the instance is accepted and then gets a fatal ``alloc``
exception "unsatisfiable request ..." from sched, as upstream.

Submissions arriving in one loop turn form one batch: ids are assigned in
arrival order, the jobs go to the job-manager together, and every request
is answered once the batch is committed to the store (if that fails: EIO,
and the jobs, already in the job-manager, get a fatal ``ingest`` exception
so none runs).  Validation results
are cached by jobspec text, so a thousand copies of one jobspec are
validated once (and unwrapping a J is remembered the same way).  A batch
of ``BULK_BATCH`` or more is a bulk submission in progress: before handing
it to the job-manager, job-ingest tells the scheduler in a message
(``{"msgs": [{"type": "hint", "bulk-window": BULK_WINDOW}]}`` to
``Sched.handle``, in process) that more is expected within
``BULK_WINDOW``, so it takes submissions in before starting jobs.
"""

import asyncio
import base64
import binascii
import errno
import json
import math
import re
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
from fluxrm.broker import payload
from fluxrm.broker.service import Service, request_handler
from fluxrm.jobstore import JobStore
from fluxrm.jobrequest import JobRequest
from fluxrm.modules.job_manager.depend import dependencies_of
from fluxrm.store import shared_store

VALID_FLAGS = FLUX_JOB_PRE_SIGNED | FLUX_JOB_DEBUG | FLUX_JOB_WAITABLE | FLUX_JOB_NOVALIDATE
OWNER_FLAGS = FLUX_JOB_WAITABLE | FLUX_JOB_NOVALIDATE
CACHE_SIZE = 256
BULK_BATCH = 32  # submissions in one loop turn that make a bulk submission
BULK_WINDOW = 0.002  # s after such a batch that the bulk is still coming
UNWRAPPED_MAX_SIZE = 1 << 16  # longer J texts are unwrapped every time
LOG_ERR = 3


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


def _refuse_constant(name):
    raise ValueError(f"{name} is not allowed")


class _Numbers:
    """Set by the decoder's number hooks when a number may be one upstream's
    parser refuses (an integer of 19 characters or more, which may not fit
    in 64 bits; a float that overflowed to infinity).  The broker decodes
    on one thread, so a flag reset before each decode will do."""

    suspect = False


def _parse_int(text):
    if len(text) > 18:
        _Numbers.suspect = True
    return int(text)


def _parse_float(text):
    value = float(text)
    if value in (math.inf, -math.inf):
        _Numbers.suspect = True
    return value


# NaN and Infinity are not JSON (json.loads takes them; upstream does not)
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant,
                            parse_int=_parse_int, parse_float=_parse_float)
# an escape that may hide what upstream's parser refuses in a string: a
# surrogate (\ud800-\udfff, lone or not) or NUL.  Searched only in text
# that has an escape at all: a regular expression over a whole jobspec
# costs more than decoding it (measured: 60 us against 11 us for a 2 KB
# jobspec with its environment), and submissions that differ per job
# (flux submit --cc sets one variable per job) are validated one by one.
_ESCAPE = re.compile(r"\\u(?:[dD][89a-fA-F]|0000)").search
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def _path_text(path):
    """``("tasks", (0, ("command", None)))``-style linked path -> text."""
    parts = []
    while path is not None:
        key, path = path
        if isinstance(key, int):
            parts.append(f"[{key}]")
        else:  # shown escaped: an error text must itself be sendable
            key = key.encode("utf-8", "backslashreplace").decode("utf-8")
            parts.append("." + key.replace("\0", "\\0"))
    text = "".join(reversed(parts))
    return text[1:] if text.startswith(".") else text or "(top)"


def _string_error(text):
    if "\0" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate escape)"
    return None


def _bad_value(doc):
    """The first value of a decoded document that upstream's JSON parser
    refuses, as ``(path text, why)``, or None.  Iterative: documents can
    be nested as deep as the decoder allows."""
    stack = [(doc, None)]
    while stack:
        value, path = stack.pop()
        kind = type(value)
        if kind is dict:
            for key, item in value.items():
                here = (key, path)
                why = _string_error(key)
                if why:
                    return _path_text(here), f"key {why}"
                stack.append((item, here))
        elif kind is list:
            stack.extend((item, (i, path)) for i, item in enumerate(value))
        elif kind is str:
            why = _string_error(value)
            if why:
                return _path_text(path), f"string {why}"
        elif kind is int:
            if not INT64_MIN <= value <= INT64_MAX:
                return _path_text(path), "integer is out of range"
        elif kind is float:
            if not math.isfinite(value):
                return _path_text(path), "number is out of range"
    return None


def parse_text(text):
    """Decode jobspec text as upstream's JSON parser would, or raise
    OSError(EINVAL): besides invalid JSON, it refuses NUL characters and
    lone surrogates in strings (text a process or SQLite cannot take),
    integers beyond 64 bits and numbers beyond a double, each named by its
    path.  The walk over the document only happens when the text holds
    something suspect, so plain jobspecs cost one scan of the text."""
    try:
        _Numbers.suspect = False
        doc = _DECODER.decode(text)
    except ValueError as exc:
        raise OSError(errno.EINVAL, f"jobspec: invalid JSON: {exc}") from None
    except RecursionError:
        raise OSError(errno.EINVAL, "jobspec: invalid JSON: nested too deeply") from None
    suspect = _Numbers.suspect or ("\\u" in text and _ESCAPE(text) is not None)
    if not suspect and not text.isascii():
        suspect = _string_error(text) is not None
    if suspect:
        bad = _bad_value(doc)
        if bad is not None:
            raise OSError(errno.EINVAL, f"jobspec: {bad[0]}: {bad[1]}")
    return doc


def parse_object(text):
    """``parse_text``, and the document must be a JSON object."""
    jobspec = parse_text(text)
    if not isinstance(jobspec, dict):
        raise OSError(errno.EINVAL, "jobspec: not a JSON object")
    return jobspec


def _check_stdio_options(options):
    """The shell options job-exec reads to open files: ``input.stdin`` and
    ``output.stdout``/``output.stderr`` mappings of string ``type`` and
    ``path``; ``output.mode`` a string."""
    where = "attributes.system.shell.options"
    for name, streams in (("input", ("stdin",)), ("output", ("stdout", "stderr"))):
        group = options.get(name) or {}
        if not isinstance(group, dict):
            raise TypeError(f"{where}.{name} must be a mapping")
        if not isinstance(group.get("mode", ""), str):
            raise TypeError(f"{where}.{name}.mode must be a string")
        for stream in streams:
            spec = group.get(stream) or {}
            if not isinstance(spec, dict):
                raise TypeError(f"{where}.{name}.{stream} must be a mapping")
            for key in ("type", "path"):
                if not isinstance(spec.get(key, ""), str):
                    raise TypeError(f"{where}.{name}.{stream}.{key} must be a string")


def _check_exec_test(system):
    """``attributes.system.exec.test`` (simulated execution) must be a
    mapping; the values in it are job-exec's to check (a bad one fails the
    job with an exception, as upstream's testexec)."""
    where = "attributes.system.exec"
    exec_ = system.get("exec", {})
    if not isinstance(exec_, dict):
        raise TypeError(f"{where} must be a mapping")
    if not isinstance(exec_.get("test", {}), dict):
        raise TypeError(f"{where}.test must be a mapping")


def check_runnable(jobspec):
    """What job-exec reads to start the tasks, which RFC 25 leaves loose or
    which a job submitted without validation (FLUX_JOB_NOVALIDATE) must
    still have right: a command (a list of strings), an environment of
    strings, a cwd string, the shell's stdio options (see
    ``_check_stdio_options``) and simulated execution's attributes (see
    ``_check_exec_test``).  Raises OSError(EINVAL) naming the field."""
    from flux.job.Jobspec import _check_command, _check_environment

    try:
        tasks = jobspec.get("tasks")
        if not isinstance(tasks, list) or not tasks or not isinstance(tasks[0], dict):
            raise ValueError("tasks must contain a task")
        _check_command(tasks[0].get("command"))
        attributes = jobspec.get("attributes", {})
        if not isinstance(attributes, dict):
            raise TypeError("attributes must be a mapping")
        system = attributes.get("system", {})
        if not isinstance(system, dict):
            raise TypeError("attributes.system must be a mapping")
        if "environment" in system:
            _check_environment(system["environment"])
        if not isinstance(system.get("cwd", ""), str):
            raise TypeError("attributes.system.cwd must be a string")
        shell = system.get("shell", {})
        if not isinstance(shell, dict):
            raise TypeError("attributes.system.shell must be a mapping")
        options = shell.get("options", {})
        if not isinstance(options, dict):
            raise TypeError("attributes.system.shell.options must be a mapping")
        _check_stdio_options(options)
        _check_exec_test(system)
    except (TypeError, ValueError) as exc:
        raise OSError(errno.EINVAL, str(exc)) from None


def validate_text(text):
    """Validate jobspec text; return its ``JobRequest`` or raise OSError(EINVAL)."""
    jobspec = parse_object(text)
    from flux.job.Jobspec import validate_jobspec

    try:
        validate_jobspec(jobspec, require_version=1)
    except RecursionError:
        raise OSError(errno.EINVAL, "jobspec: nested too deeply") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        # str() of a KeyError is the repr of the key: give the key itself
        text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        raise OSError(errno.EINVAL, text or type(exc).__name__) from None
    check_runnable(jobspec)
    request = JobRequest(jobspec)
    if request.shape_error is not None:
        raise OSError(errno.EINVAL,
                      f"unsupported resource request: {request.shape_error}")
    return request


class JobIngest(Service):
    name = "job-ingest"

    def __init__(self, broker):
        super().__init__(broker)
        self.pending = []  # (msg, job, submit context)
        self._flush_scheduled = False
        self.cache = OrderedDict()  # jobspec text -> (error, JobRequest, text)
        self.unwrapped = {}  # (J, userid) -> (jobspec text, J to keep)
        self.fluid = None
        self.sched_handle = None  # where bulk hints go (in process)

    async def start(self):
        services = self.broker.router.services
        # the in-process fast paths: the job-manager's submit message, sched's hints
        self.manager_submit = services["job-manager"].submit
        self.queue_admit = services["job-manager"].queue_admit  # queues, limits
        self.depend_check = services["job-manager"].depend_check
        sched = services.get("sched")
        if sched is not None:
            self.sched_handle = sched.handle
        self.store = shared_store(self.broker)
        jobstore = JobStore(self.store)
        epoch = jobstore.meta_get("fluid-epoch")
        if epoch is None:
            epoch = str(int(time.time() * 1000))
            jobstore.meta_set("fluid-epoch", epoch)
        # ids continue after the highest stored (the job-manager has replayed
        # the store before we start)
        self.fluid = FluidGenerator(self.broker.rank, int(epoch),
                                    after=jobstore.max_id() or None)

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
        ``(request, text)``.

        Identical submissions share one ``JobRequest`` (immutable: the
        jobspec is parsed once) and one text object (the first one seen).
        """
        cached = self.cache.get(text)
        if cached is not None:
            self.cache.move_to_end(text)
            err, request, first = cached
            if err is not None:
                raise OSError(errno.EINVAL, err)
            return request, first
        try:
            request = validate_text(text)
        except OSError as exc:
            self.cache[text] = (exc.strerror, None, text)
            self._trim()
            raise
        self.cache[text] = (None, request, text)
        self._trim()
        return request, text

    def _trim(self):
        while len(self.cache) > CACHE_SIZE:
            self.cache.popitem(last=False)

    @request_handler("submit", allow_guest=True)
    def h_submit(self, msg):
        req = payload.request(msg)
        flags = req.get("flags", 0)
        urgency = req.get("urgency", 16)
        if type(flags) is not int or flags & ~VALID_FLAGS:
            raise OSError(errno.EINVAL, "invalid submit flags")
        if type(urgency) is not int or not 0 <= urgency <= 31:
            raise OSError(errno.EINVAL, "urgency range is [0:31]")
        owner = bool(msg.rolemask & FLUX_ROLE_OWNER)
        if not owner and (flags & OWNER_FLAGS or urgency > 16):
            raise OSError(errno.EPERM, "only the instance owner may use these flags"
                          " or an urgency above 16")
        text, J = self.unwrap(req.get("J"), msg.userid)
        if flags & FLUX_JOB_NOVALIDATE:
            jobspec = parse_object(text)  # what no service could store or run
            check_runnable(jobspec)
            request = JobRequest(jobspec)  # its shape is sched's to refuse
        else:
            request, text = self.check(text)
        self.queue_admit(request)
        deps = dependencies_of(request.jobspec)
        if deps is not None:  # schemes, values and targets, checked each time
            self.depend_check(deps, msg.userid, owner)
        ctx = {"userid": msg.userid, "urgency": urgency, "flags": flags, "version": 1}
        # [id, request, J, jobspec text, waitable, submit context]: the id comes at flush
        self.pending.append((msg, [0, request, J, text, bool(flags & FLUX_JOB_WAITABLE),
                                   ctx]))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self):
        """Assign ids to this turn's submissions and hand them over as one batch."""
        self._flush_scheduled = False
        batch, self.pending = self.pending, []
        if not batch:
            return
        if len(batch) >= BULK_BATCH and self.sched_handle is not None:
            # before the jobs ask for resources: sched defers its pass
            self.sched_handle({"msgs": [{"type": "hint", "bulk-window": BULK_WINDOW}]})
        for _msg, item in batch:
            item[0] = self.fluid.next()
        self.manager_submit([item for _msg, item in batch])
        # the job manager writes the new jobs in the commit answer() waits for;
        # if that commit fails, it fails those jobs itself

        def answer(exc):
            for msg, item in batch:
                try:
                    if exc is None:
                        self.respond(msg, {"id": item[0]})
                    else:
                        self.respond_error(msg, errno.EIO, f"job store: {exc}")
                except Exception as err:  # the others still get their answer
                    self.log(LOG_ERR, f"answering a submission: {err!r}")

        self.store.on_durable(answer)
