"""``jobid:PATH``: the URI of a Flux instance run by a job (spec 24.2).

PATH is a ``/``-separated list of components, resolved from the enclosing
instance (``flux.uri.enclosing_uri()``) one level at a time:

- empty or ``.``: the current instance (its ``local-uri``);
- a leading ``/``: the root instance (``parent-uri`` followed while
  ``instance-level`` > 0);
- ``..``: the parent instance (the current one at the root);
- a job id (any encoding): the instance that job runs.  The job must be
  running; its URI is the ``uri`` memo it posted (``annotations.user.uri``,
  see ``fluxrm.broker.nested``).  A running job that has not posted one yet
  is waited for, at most ``RUNNING_GRACE`` seconds.  With ``?wait`` (first
  component only) a job that has not started yet is waited for too, as
  long as it takes, until it posts its URI or finishes.

Errors (``flux.uri.ResolveError``): ENOENT "jobid X not found"; EINVAL
"jobid X is not running", "URI not found for job X" (not an instance, or
it did not say where it is in time), "jobid X finished before posting its
URI"; an id that does not parse is JobID's own ``ValueError``.
"""

import errno
import os
import time

from flux.uri.uri import JobURI, ResolveError, URIResolverPlugin, enclosing_uri

RUNNING_GRACE = 10.0  # seconds a running job is given to post its URI
RPC_TIMEOUT = 30.0  # seconds an instance is given to answer one request
ENDING_EVENTS = ("finish", "clean")


def _handle(uri):
    import flux

    return flux.Flux(JobURI(uri).local)


def _attr(h, name):
    try:
        return h.attr_get(name)
    except FileNotFoundError:
        return None


def _level(h):
    text = _attr(h, "instance-level") or "0"
    return int(text) if text.isdigit() else 0


def _parent_uri(uri):
    h = _handle(uri)
    parent = _attr(h, "parent-uri")
    if parent and _level(h) > 0:
        return parent
    return _attr(h, "local-uri") or uri


def _root_uri(uri):
    for _ in range(1024):  # instance levels: a bound against a cycle
        h = _handle(uri)
        parent = _attr(h, "parent-uri")
        if not parent or _level(h) == 0:
            return _attr(h, "local-uri") or uri
        uri = parent
    raise ResolveError(errno.ELOOP, "too many levels of instances")


def _memo_uri(info):
    user = (info.get("annotations") or {}).get("user")
    uri = user.get("uri") if isinstance(user, dict) else None
    return uri if isinstance(uri, str) and uri else None


def _wait_for_uri(h, jobid, text, deadline):
    """Follow the job's eventlog until a ``uri`` memo (returned), its end
    (an error), or ``deadline`` (monotonic seconds, None: no limit)."""
    from flux.job.event import event_watch_async

    future = event_watch_async(h, jobid)
    try:
        while True:
            timeout = -1.0 if deadline is None else max(deadline - time.monotonic(), 0.0)
            try:
                future.wait_for(timeout)
            except TimeoutError:
                raise ResolveError(errno.EINVAL, f"URI not found for job {text}") from None
            event = future.get_event()
            if event is None:
                break
            if event.name == "memo" and _memo_uri({"annotations": {"user": event.context}}):
                return event.context["uri"]
            if event.name in ENDING_EVENTS:
                break
    finally:
        future.cancel()
    raise ResolveError(errno.EINVAL, f"jobid {text} finished before posting its URI")


def job_uri(uri, text, wait=False):
    """The URI of the instance job ``text`` runs in the instance at ``uri``."""
    from flux.constants import FLUX_JOB_STATE_RUN
    from flux.job import JobID

    jobid = JobID(text)
    h = _handle(uri)
    try:
        info = h.rpc("job-list.list-id", {"id": int(jobid),
                                          "attrs": ["state", "annotations"]}
                     ).wait_for(RPC_TIMEOUT).get()["job"]
    except FileNotFoundError:
        raise ResolveError(errno.ENOENT, f"jobid {text} not found") from None
    state = info.get("state")
    found = _memo_uri(info)
    if state == FLUX_JOB_STATE_RUN:
        if found:
            return found
        return _wait_for_uri(h, jobid, text, time.monotonic() + RUNNING_GRACE)
    if wait and isinstance(state, int) and state < FLUX_JOB_STATE_RUN:
        return _wait_for_uri(h, jobid, text, None)
    raise ResolveError(errno.EINVAL, f"jobid {text} is not running")


def resolve_path(path, base, wait=False, local=False):
    """The URI of ``path`` (see the module docstring) from ``base``."""
    uri = base
    if path.startswith("/"):
        uri = _root_uri(uri)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts:
        return _attr(_handle(uri), "local-uri") or uri
    for index, part in enumerate(parts):
        if part == "..":
            uri = _parent_uri(uri)
        else:
            uri = job_uri(uri, part, wait=wait and index == 0)
        if local:
            uri = JobURI(uri).local
    return uri


class URIResolver(URIResolverPlugin):
    """The ``jobid:`` scheme (the default one)."""

    def describe(self):
        return "Get URI for a given Flux JOBID"

    def resolve(self, uri):
        query = uri.query_dict
        local = "local" in query or bool(os.environ.get("FLUX_URI_RESOLVE_LOCAL"))
        return resolve_path(uri.path, enclosing_uri(), wait="wait" in query,
                            local=local)
