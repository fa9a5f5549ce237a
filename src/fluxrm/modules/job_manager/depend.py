"""Job dependencies, RFC 26 (a part of job-manager, ``JobManager``'s base
class ``Depend``).

A job lists its dependencies in ``attributes.system.dependencies``, each
``{scheme, value}`` (``flux submit --dependency=SCHEME:VALUE``,
``--begin-time``).  The schemes, with the description each gets in the
job's eventlog:

- ``after:ID`` (``after-start=ƒID``): the target job started running
  (reached RUN);
- ``afterany:ID`` and its alias ``afterfinish:ID`` (``after-finish=ƒID``):
  the target is inactive, whatever its result;
- ``afterok:ID`` (``after-success=ƒID``): the target completed (result
  COMPLETED: it ran and finished with status 0);
- ``afternotok:ID`` (``after-failure=ƒID``): the target ended with any
  other result (failed, canceled, timed out);
- ``begin-time:T`` (``begin-time=T``, T seconds since the epoch, three
  decimals): not before T;
- ``singleton`` (``singleton``): only one job of the same user and job
  name may be past DEPEND at a time: the job waits while another such job
  is active and past DEPEND; when the last of those ends, the oldest
  waiting singleton job goes on (one at a time).  It is judged after the
  job's other dependencies are met.

Target ids may be in any encoding (F58, decimal, hex, dothex, words, kvs).

At submission (``depend_check``, called by job-ingest for the jobs that
have dependencies): an unknown scheme is EINVAL ``dependency scheme "X" is
not supported``, a malformed value EINVAL, an unknown target ENOENT
``dependency: afterok: job ƒID not found``, another user's target EPERM
unless the submitter is the instance owner.

In DEPEND (``depend_enter``): each dependency not met yet gets a
``dependency-add {description}`` event, and a ``dependency-remove`` once
met; the job gets ``depend`` (and goes on to PRIORITY) when none is left.
A dependency that can never be met (a target that ends without meeting
it, or a target gone from the store) raises a fatal ``dependency``
exception, e.g. ``dependency: afterok: job ƒID failed``.

Waiting jobs are indexed by target id (``dep_by_target``), so a target's
RUN entry or end costs O(its dependents); a job without dependencies
costs one dict lookup in its jobspec.  ``begin-time`` is a loop timer per
job.  Singleton keys (userid, job name) are tracked only while a
singleton job waits on them (``dep_singletons``): the active jobs of the
key past DEPEND ("holders") are counted once, by a scan of the active
jobs, and followed afterwards as they pass DEPEND or end.

After a restart with a state directory, a job in DEPEND enters it again
(``fluxrm.modules.job_manager.recover``): the dependencies its stored
eventlog shows as met are not judged again; those still pending are
judged again against their targets, active or stored (a target that ended
while the instance was down is judged by its stored result), without a
second ``dependency-add``.
"""

import asyncio
import errno
import json
import math
import time
from collections import OrderedDict, deque

from flux.constants import FLUX_JOB_RESULT_COMPLETED
from flux.job.JobID import JobID, id_encode
from fluxrm import jobstate
from fluxrm.job import MAIN
from fluxrm.jobstate import CLEANUP, INACTIVE, PRIORITY, RUN, SCHED

# after-type scheme -> the description prefix upstream uses
AFTER_SCHEMES = {
    "after": "after-start",
    "afterany": "after-finish",
    "afterfinish": "after-finish",
    "afterok": "after-success",
    "afternotok": "after-failure",
}
SCHEMES = (*AFTER_SCHEMES, "begin-time", "singleton")
PAST_DEPEND = PRIORITY | SCHED | RUN | CLEANUP
_U64_LIMIT = 1 << 64


class Dependency:
    """One parsed dependency: ``scheme`` as written, ``description`` (its
    name in the eventlog), ``target`` (an after-type scheme's job id) or
    ``begin`` (begin-time's timestamp)."""

    __slots__ = ("scheme", "description", "target", "begin")

    def __init__(self, scheme, description, target=None, begin=None):
        self.scheme = scheme
        self.description = description
        self.target = target
        self.begin = begin


def dependencies_of(jobspec):
    """A jobspec's ``attributes.system.dependencies`` if it has any, else
    None (a few dict lookups: the path of every job)."""
    attributes = jobspec.get("attributes")
    if type(attributes) is dict:
        system = attributes.get("system")
        if type(system) is dict:
            return system.get("dependencies") or None
    return None


def _jobid_text(jobid):
    return id_encode(jobid, "f58")


def parse(deps):
    """``attributes.system.dependencies`` -> a list of ``Dependency``, one
    per description; OSError(EINVAL) for an unknown scheme or a bad value."""
    if not isinstance(deps, list):
        raise OSError(errno.EINVAL, "dependencies must be a list")
    parsed = {}
    for dep in deps:
        if not isinstance(dep, dict) or not isinstance(dep.get("scheme"), str):
            raise OSError(errno.EINVAL, "dependency must be a mapping with a scheme")
        scheme = dep["scheme"]
        value = dep.get("value", "")
        if scheme in AFTER_SCHEMES:
            target = _target_id(scheme, value)
            item = Dependency(scheme, f"{AFTER_SCHEMES[scheme]}={_jobid_text(target)}",
                              target=target)
        elif scheme == "begin-time":
            begin = _timestamp(value)
            item = Dependency(scheme, f"begin-time={begin:.3f}", begin=begin)
        elif scheme == "singleton":
            item = Dependency(scheme, "singleton")
        else:
            shown = json.dumps(scheme, ensure_ascii=False)
            raise OSError(errno.EINVAL, f"dependency scheme {shown} is not supported")
        parsed.setdefault(item.description, item)
    return list(parsed.values())


def _target_id(scheme, value):
    if type(value) is int and 0 <= value < _U64_LIMIT:
        return value
    if isinstance(value, str) and value:
        try:
            return int(JobID(value))
        except (ValueError, TypeError, OverflowError):
            pass
    shown = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)
    raise OSError(errno.EINVAL, f"dependency: {scheme}: invalid job id {shown}")


def _timestamp(value):
    try:
        begin = float(value)
    except (TypeError, ValueError):
        begin = math.nan
    if type(value) is bool or not math.isfinite(begin) or begin < 0:
        shown = json.dumps(value) if isinstance(value, str) else repr(value)
        raise OSError(errno.EINVAL, f"dependency: begin-time: invalid timestamp {shown}")
    return begin


# a judgment of one dependency now
MET, WAIT = "met", "wait"  # anything else: the text of why it never will be


def judge_target(dep, view):
    """MET, WAIT or why ``dep`` can never be met, from its target's view."""
    kind = AFTER_SCHEMES[dep.scheme]
    if kind == "after-start":
        if view.t_run:
            return MET
        return WAIT if view.state != INACTIVE else "never started"
    if view.state != INACTIVE:
        return WAIT
    if kind == "after-finish":
        return MET
    completed = view.result() == FLUX_JOB_RESULT_COMPLETED
    if kind == "after-success":
        if completed:
            return MET
        return {"cancel": "was canceled", "timeout": "timed out"}.get(
            view.exception_type, "failed")
    return "completed successfully" if completed else MET  # after-failure


def check_targets(deps, userid, owner, lookup):
    """The submission-time checks of parsed dependencies: each target
    exists (``lookup(id)`` gives its owner's userid, or None) and belongs to
    the submitter unless ``owner``; OSError ENOENT/EPERM."""
    for dep in deps:
        if dep.target is None:
            continue
        target_user = lookup(dep.target)
        if target_user is None:
            raise OSError(errno.ENOENT, f"dependency: {dep.scheme}: job"
                          f" {_jobid_text(dep.target)} not found")
        if target_user != userid and not owner:
            raise OSError(errno.EPERM, f"dependency: {dep.scheme}: job"
                          f" {_jobid_text(dep.target)} belongs to another user")


class _Waiting:
    """A job in DEPEND with dependencies not met: ``unmet`` (description ->
    ``Dependency``), its begin-time ``timers``."""

    __slots__ = ("job", "unmet", "timers")

    def __init__(self, job):
        self.job = job
        self.unmet = {}
        self.timers = []


class _Singleton:
    """One (userid, job name) while singleton jobs wait on it: ``holders``
    (ids of its active jobs past DEPEND), ``waiting`` (job id -> ``_Waiting``,
    in the order they queued)."""

    __slots__ = ("holders", "waiting")

    def __init__(self, holders):
        self.holders = holders
        self.waiting = OrderedDict()


def _singleton_key(job):
    return (job.userid, job.request.listing.get("name"))


class Depend:
    """The dependency part; it uses ``JobManager``'s ``active``, ``find``,
    ``load_inactive``, ``post`` and ``raise_exception``."""

    def __init__(self, broker):
        super().__init__(broker)
        self.dep_waiting = {}  # job id -> _Waiting
        self.dep_by_target = {}  # target id -> {waiting job id: _Waiting}
        self.dep_singletons = {}  # (userid, name) -> _Singleton
        self.dep_holder_key = {}  # holder job id -> its (userid, name)
        self.dep_work = deque()  # (func, args) to run after the current one
        self.dep_working = False

    # -- at submission (job-ingest) -------------------------------------------------------
    def depend_check(self, deps, userid, owner):
        """Refuse a submission whose dependencies are malformed or name a
        job that does not exist or (unless ``owner``) is not the user's."""
        check_targets(parse(deps), userid, owner, self._target_userid)

    def _target_userid(self, jobid):
        job = self.find(jobid)
        if job is not None:
            return job.userid
        row = self.load_inactive(jobid, "userid")
        return None if row is None else row["userid"]

    def _target_view(self, jobid):
        """A job's ``JobView``, from memory or its stored eventlog; None if
        the job is unknown."""
        job = self.find(jobid)
        if job is not None:
            return job.view
        row = self.load_inactive(jobid, "eventlog")
        if row is None:
            return None
        try:
            return jobstate.replay(json.loads(line) for line in
                                   (row["eventlog"] or "").splitlines())
        except (ValueError, KeyError, TypeError):  # a damaged row
            return None

    # -- in DEPEND ---------------------------------------------------------------------------
    def depend_enter(self, job):
        """The job entered DEPEND (or is in it at a restart)."""
        deps = dependencies_of(job.request.jobspec)
        if deps is None:
            self._depend_pass(job)
            return
        try:
            parsed = parse(deps)
        except OSError as exc:  # stored before these checks, or not validated
            self.raise_exception(job, "dependency", 0, exc.strerror)
            return
        added, removed = _recorded(job)
        waiting = _Waiting(job)
        met_again = []
        for dep in parsed:
            if dep.description in removed:
                continue  # met before a restart
            verdict = self._judge(dep)
            if verdict is MET:
                if dep.description in added:
                    met_again.append(dep)
            elif verdict is WAIT:
                waiting.unmet[dep.description] = dep
            else:
                self._never(job, dep, verdict)
                return
        if list(waiting.unmet) == ["singleton"] and self._singleton_free(job):
            dep = waiting.unmet.pop("singleton")  # met at once: not added
            if dep.description in added:
                met_again.append(dep)
        for dep in met_again:
            self.post(job, "dependency-remove", {"description": dep.description})
        for description, dep in waiting.unmet.items():
            if description not in added:
                self.post(job, "dependency-add", {"description": description})
            self._register(waiting, dep)
        if waiting.unmet:
            self.dep_waiting[job.id] = waiting
        self._others_met(waiting)

    def _judge(self, dep):
        if dep.target is not None:
            view = self._target_view(dep.target)
            if view is None:
                return "not found"
            return judge_target(dep, view)
        if dep.begin is not None:
            return MET if time.time() >= dep.begin else WAIT
        return WAIT  # singleton: judged once the others are met

    def _never(self, job, dep, why):
        target = "" if dep.target is None else f" job {_jobid_text(dep.target)}"
        self.raise_exception(job, "dependency", 0,
                             f"dependency: {dep.scheme}:{target} {why}")

    def _register(self, waiting, dep):
        if dep.target is not None:
            self.dep_by_target.setdefault(dep.target, {})[waiting.job.id] = waiting
        elif dep.begin is not None:
            loop = asyncio.get_running_loop()
            waiting.timers.append(loop.call_later(
                max(0.0, dep.begin - time.time()), self._begin_time, waiting, dep))

    def _begin_time(self, waiting, dep):
        if self.dep_waiting.get(waiting.job.id) is not waiting:
            return
        left = dep.begin - time.time()
        if left > 0:  # the loop's clock ran ahead of the wall clock
            waiting.timers.append(asyncio.get_running_loop().call_later(
                left, self._begin_time, waiting, dep))
            return
        self._met(waiting, dep)

    def _met(self, waiting, dep):
        job = waiting.job
        del waiting.unmet[dep.description]
        if dep.target is not None and not any(
                other.target == dep.target for other in waiting.unmet.values()):
            self._forget_target(dep.target, job.id)
        self.post(job, "dependency-remove", {"description": dep.description})
        self._others_met(waiting)

    def _others_met(self, waiting):
        """If only a singleton (or nothing) is left: judge it, or go on."""
        unmet = waiting.unmet
        if unmet and (len(unmet) > 1 or "singleton" not in unmet):
            return
        job = waiting.job
        if unmet:
            if self._singleton_free(job):
                self._met(waiting, unmet["singleton"])
            else:
                self.dep_singletons[_singleton_key(job)].waiting[job.id] = waiting
            return
        self._unregister(waiting)
        self._depend_pass(job)

    def _depend_pass(self, job):
        """The job's dependencies are met: ``depend``."""
        if self.dep_singletons:  # a job of a watched key becomes a holder
            key = _singleton_key(job)
            state = self.dep_singletons.get(key)
            if state is not None:
                state.holders.add(job.id)
                self.dep_holder_key[job.id] = key
        self.post(job, "depend")

    def _unregister(self, waiting):
        jobid = waiting.job.id
        if self.dep_waiting.get(jobid) is waiting:
            del self.dep_waiting[jobid]
        for timer in waiting.timers:
            timer.cancel()
        waiting.timers.clear()
        for dep in waiting.unmet.values():
            if dep.target is not None:
                self._forget_target(dep.target, jobid)
        if "singleton" in waiting.unmet:
            key = _singleton_key(waiting.job)
            state = self.dep_singletons.get(key)
            if state is not None and state.waiting.pop(jobid, None) is not None:
                self._drop_singleton(key, state)

    def _forget_target(self, target, jobid):
        dependents = self.dep_by_target.get(target)
        if dependents is not None:
            dependents.pop(jobid, None)
            if not dependents:
                del self.dep_by_target[target]

    # -- singleton keys ------------------------------------------------------------------------
    def _singleton_free(self, job):
        """Can the job's singleton be met now (no other job of its key past
        DEPEND, none queued before it)?  If not, its key is followed."""
        key = _singleton_key(job)
        state = self.dep_singletons.get(key)
        if state is None:
            holders = {other.id for other in self.active.values()
                       if other.state & PAST_DEPEND and _singleton_key(other) == key}
            if not holders:
                return True
            state = self.dep_singletons[key] = _Singleton(holders)
            for holder in holders:
                self.dep_holder_key[holder] = key
        return not state.holders and not state.waiting

    def _drop_singleton(self, key, state):
        """Stop following a key no singleton job waits on."""
        if state.waiting:
            return
        del self.dep_singletons[key]
        for holder in state.holders:
            self.dep_holder_key.pop(holder, None)

    def _holder_ended(self, jobid):
        key = self.dep_holder_key.pop(jobid, None)
        state = self.dep_singletons.get(key)
        if state is None:
            return
        state.holders.discard(jobid)
        if state.holders or not state.waiting:
            return
        _, waiting = state.waiting.popitem(last=False)
        self._drop_singleton(key, state)
        self._met(waiting, waiting.unmet["singleton"])

    # -- targets moving on -----------------------------------------------------------------------
    def depend_started(self, job):
        """``job`` entered RUN: its ``after`` dependents are met."""
        dependents = self.dep_by_target.get(job.id)
        if dependents:
            self._dep_do(self._target_started, job, list(dependents.values()))

    def depend_inactive(self, job):
        """``job`` became inactive: it no longer waits, and its dependents
        and the singleton jobs waiting on it are judged."""
        waiting = self.dep_waiting.get(job.id)
        if waiting is not None:
            self._unregister(waiting)
        dependents = self.dep_by_target.pop(job.id, None)
        if dependents:
            self._dep_do(self._target_ended, job, list(dependents.values()))
        if job.id in self.dep_holder_key:
            self._dep_do(self._holder_ended, job.id)

    def _dep_do(self, func, *args):
        """Run ``func(*args)`` now, unless this is inside such a call: then
        after it.  A chain of dependents failing one after the other (each
        one's end judges the next) is a loop, not a recursion."""
        self.dep_work.append((func, args))
        if self.dep_working:
            return
        self.dep_working = True
        try:
            while self.dep_work:
                func, args = self.dep_work.popleft()
                func(*args)
        finally:
            self.dep_working = False

    def _target_started(self, target, dependents):
        for waiting in dependents:
            for dep in list(waiting.unmet.values()):
                if self.dep_waiting.get(waiting.job.id) is not waiting:
                    break
                if dep.target == target.id and AFTER_SCHEMES[dep.scheme] == "after-start":
                    self._met(waiting, dep)

    def _target_ended(self, target, dependents):
        for waiting in dependents:
            for dep in list(waiting.unmet.values()):
                if self.dep_waiting.get(waiting.job.id) is not waiting:
                    break
                if dep.target != target.id:
                    continue
                verdict = judge_target(dep, target.view)
                if verdict is MET:
                    self._met(waiting, dep)
                else:
                    self._unregister(waiting)
                    self._never(waiting.job, dep, verdict)
                    break

def _recorded(job):
    """``(added, removed)``: the descriptions of the ``dependency-add`` and
    ``dependency-remove`` events already in the job's eventlog (after a
    restart)."""
    added, removed = set(), set()
    for line in job.logs.get(MAIN, ()):
        if '"dependency-' not in line:
            continue
        event = json.loads(line)
        description = (event.get("context") or {}).get("description")
        if event["name"] == "dependency-add":
            added.add(description)
        elif event["name"] == "dependency-remove":
            removed.add(description)
    return added, removed

