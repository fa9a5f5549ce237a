"""job-list's constraints: an RFC 31 style constraint object compiled
into a predicate (a part of job-list, no state, no I/O).

``compile_constraint(c)`` -> ``(pred, states)``: ``pred(get)`` tells
whether a job matches, ``get(attr)`` giving the job's value of a list
attribute (None if unset), and ``states`` is the mask of the states a
matching job can be in (job-list skips the others without looking).
Operators: ``and or not userid name queue states results hostlist ranks``
and every ``t_*`` (values ``"<T" "<=T" ">T" ">=T"`` or a number, read
as ``>=``).  A malformed constraint is EPROTO naming what is wrong: a
wrong type, an unknown operator or state or result name, nesting deeper
than ``MAX_CONSTRAINT_DEPTH``, hostlists naming more than ``MAX_HOSTS``
hosts in all.  ``_userid_pushdown(c)``: the user ids every match must
have, if the constraint says so at its top (for the store's query).
"""

import errno
import re

from flux.constants import FLUX_USERID_UNKNOWN
from flux.hostlist import Hostlist
from flux.idset import IDset
from flux.job import state as jobstates
from fluxrm.jobstate import INACTIVE, NEW

MAX_CONSTRAINT_DEPTH = 64  # and/or/not nesting in a constraint
MAX_HOSTS = 1 << 16  # hosts named by the hostlists of one constraint (~50 ms)

TIME_ATTRS = ("t_submit", "t_depend", "t_priority", "t_sched", "t_run",
              "t_cleanup", "t_inactive")
ALL_STATES = jobstates.ALL_STATES
# the names a constraint may use (flux.job.state's one table); here
# "active" also takes NEW in, which a job passes through within a loop turn
STATE_MASKS = {**jobstates.STATE_MASKS,
               "active": jobstates.STATE_MASKS["active"] | NEW}
RESULT_MASKS = jobstates.RESULT_MASKS
ALL_RESULTS = jobstates.ALL_RESULTS


def _eproto(text):
    return OSError(errno.EPROTO, text)


def _time_pred(attr, values):
    tests = []
    for value in values:
        if not isinstance(value, str):
            if type(value) not in (int, float):
                raise _eproto(f"{attr}: invalid value of type {type(value).__name__}")
            try:
                tests.append((">=", float(value)))
                continue
            except OverflowError:  # an int beyond any float
                raise _eproto(f"{attr}: value out of range") from None
        for op in (">=", "<=", ">", "<", "="):
            if value.startswith(op):
                try:
                    tests.append((op, float(value[len(op):])))
                except ValueError:
                    raise _eproto(f"{attr}: invalid value '{value}'") from None
                break
        else:
            raise _eproto(f"{attr}: invalid comparison '{value}'")

    def pred(get):
        t = get(attr)
        if t is None:
            return False
        for op, ref in tests:
            if not ((op == ">=" and t >= ref) or (op == "<=" and t <= ref)
                    or (op == ">" and t > ref) or (op == "<" and t < ref)
                    or (op == "=" and t == ref)):
                return False
        return True

    return pred


def _mask(values, names, what):
    mask = 0
    for value in values:
        if isinstance(value, bool):
            raise _eproto(f"invalid {what} value {value!r}")
        if isinstance(value, int):
            mask |= value
        elif isinstance(value, str) and value.lower() in names:
            mask |= names[value.lower()]
        else:
            raise _eproto(f"{value} is not a valid {what}")
    return mask


class _Budget:
    """What is left of the hosts one constraint's hostlists may name."""

    __slots__ = ("hosts",)

    def __init__(self):
        self.hosts = MAX_HOSTS


def compile_constraint(c, depth=0, budget=None):
    """Turn a constraint into ``(predicate(get), possible state mask)``.

    ``get(attr)`` returns a job's attribute value, or None if omitted.
    The mask is the set of states a matching job can be in, so listing can
    skip whole categories (e.g. never read the store for ``pending``).
    ``depth`` is the and/or/not nesting so far (EPROTO past
    ``MAX_CONSTRAINT_DEPTH``); ``budget`` the hosts left for hostlists.
    """
    if c is None:
        return (lambda get: True), ALL_STATES
    if not isinstance(c, dict):
        raise _eproto("constraint must be a JSON object")
    if depth > MAX_CONSTRAINT_DEPTH:
        raise _eproto(f"constraint nested deeper than {MAX_CONSTRAINT_DEPTH} levels")
    if budget is None:
        budget = _Budget()
    parts = []
    for op, values in c.items():
        if not isinstance(values, list):
            raise _eproto(f"operator {op} values must be an array")
        parts.append(_compile_op(op, values, depth, budget))
    if not parts:
        return (lambda get: True), ALL_STATES
    if len(parts) == 1:
        return parts[0]
    return _and(parts)


def _and(parts):
    preds = [p for p, _ in parts]
    mask = ALL_STATES
    for _, m in parts:
        mask &= m
    return (lambda get: all(p(get) for p in preds)), mask


def _compile_op(op, values, depth, budget):
    if op in ("and", "or", "not"):
        parts = [compile_constraint(v, depth + 1, budget) for v in values]
    if op == "and":
        return _and(parts)
    if op == "or":
        preds = [p for p, _ in parts]
        mask = 0
        for _, m in parts:
            mask |= m
        return (lambda get: any(p(get) for p in preds)), mask
    if op == "not":
        pred, _ = _and(parts)
        return (lambda get: not pred(get)), ALL_STATES
    if op == "userid":
        uids = set()
        for value in values:
            if type(value) is not int:
                raise _eproto(f"userid value {value!r} must be an integer")
            if not -1 <= value <= FLUX_USERID_UNKNOWN:
                raise _eproto(f"userid value {value} is out of range")
            uids.add(value)
        if FLUX_USERID_UNKNOWN in uids or -1 in uids:
            return (lambda get: True), ALL_STATES
        return (lambda get: get("userid") in uids), ALL_STATES
    if op in ("name", "queue"):
        names = set()
        for value in values:
            if not isinstance(value, str):
                raise _eproto(f"{op} value {value!r} must be a string")
            names.add(value)
        return (lambda get: get(op) in names), ALL_STATES
    if op == "states":
        mask = _mask(values, STATE_MASKS, "state")
        return (lambda get: bool(get("state") & mask)), mask & ALL_STATES
    if op == "results":
        mask = _mask(values, RESULT_MASKS, "result")

        def pred(get):
            result = get("result")
            return result is not None and bool(result & mask)

        return pred, (INACTIVE if mask & ALL_RESULTS else 0)
    if op == "hostlist":
        hosts = set()
        for value in values:
            if not isinstance(value, str):
                raise _eproto(f"hostlist value {value!r} must be a string")
            budget.hosts -= _hostlist_size(value)
            if budget.hosts < 0:
                raise _eproto(f"hostlists name more than {MAX_HOSTS} hosts")
            try:
                hosts.update(Hostlist(value))
            except (TypeError, ValueError, OSError):
                raise _eproto(f"invalid hostlist '{value}'") from None

        def pred(get):
            nodelist = get("nodelist")
            if not nodelist:
                return False
            return any(host in hosts for host in Hostlist(nodelist))

        return pred, ALL_STATES
    if op == "ranks":
        ranks = IDset()
        for value in values:
            if type(value) not in (str, int):
                raise _eproto(f"ranks value of type {type(value).__name__} "
                              "must be an idset string or an integer")
            try:
                ranks.add(IDset(value))
            except (TypeError, ValueError, OSError):
                raise _eproto(f"invalid ranks '{value}'") from None

        def pred(get):
            jobranks = get("ranks")
            if not jobranks:
                return False
            return bool(ranks.intersect(IDset(jobranks)))

        return pred, ALL_STATES
    if op in TIME_ATTRS:
        return _time_pred(op, values), ALL_STATES
    raise _eproto(f"unknown constraint operator: {op}")


_BRACKETS = re.compile(r"\[([^\]]*)\]")
_SPAN = re.compile(r"([0-9]+)-([0-9]+)")


def _hostlist_size(text):
    """At least the number of hosts ``text`` expands to (cheap: no expansion)."""
    n = text.count(",") + 1
    for inner in _BRACKETS.findall(text):
        for lo, hi in _SPAN.findall(inner):
            if len(hi) > 18:  # Hostlist refuses such a range anyway
                continue
            n += max(int(hi) - int(lo), 0)
    return n


def _userid_pushdown(c):
    """A set of userids every match must have (for SQL), or None."""
    if not isinstance(c, dict) or len(c) != 1:
        return None
    (op, values), = c.items()
    if op == "userid" and isinstance(values, list) and values and all(
            isinstance(v, int) and not isinstance(v, bool)
            and v not in (FLUX_USERID_UNKNOWN, -1) for v in values):
        return set(values)
    if op == "and" and isinstance(values, list):
        for sub in values:
            uids = _userid_pushdown(sub)
            if uids is not None:
                return uids
    return None
