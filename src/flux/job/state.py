"""Job state and result names <-> values: the one table of both.

Client (``flux.job.info``, ``flux.job.list``, the ``flux`` commands) and
broker (``fluxrm.jobstate``, the job-list service) read names from here
instead of keeping their own copies.

- ``STATES`` / ``RESULTS``: one row per state / result, ``(value, NAME,
  short name, symbol)`` in RFC 21 order.  The short names are upstream's
  (``S`` for SCHED, ``CD`` for COMPLETED); the symbols are what ``flux jobs``
  shows for ``{state_emoji}`` / ``{result_emoji}``.
- ``STATE_NAMES`` / ``RESULT_NAMES``: value -> upper-case name.
- ``STATE_MASKS`` / ``RESULT_MASKS``: lower-case filter name -> mask.  The
  state filters add the groups ``pending``, ``running`` and ``active``
  (the ``FLUX_JOB_STATE_*`` masks of those names: ``active`` does not
  include NEW).
- ``statetostr``/``resulttostr`` (upstream's ``flux.job.info`` helpers) and
  ``strtostate``/``strtoresult`` (upstream's ``flux_job_strtostate`` and
  ``flux_job_strtoresult``) convert one value.

Nothing here imports more than ``flux.constants``.
"""

import errno

from flux.constants import (
    FLUX_JOB_RESULT_CANCELED,
    FLUX_JOB_RESULT_COMPLETED,
    FLUX_JOB_RESULT_FAILED,
    FLUX_JOB_RESULT_TIMEOUT,
    FLUX_JOB_STATE_ACTIVE,
    FLUX_JOB_STATE_CLEANUP,
    FLUX_JOB_STATE_DEPEND,
    FLUX_JOB_STATE_INACTIVE,
    FLUX_JOB_STATE_NEW,
    FLUX_JOB_STATE_PENDING,
    FLUX_JOB_STATE_PRIORITY,
    FLUX_JOB_STATE_RUN,
    FLUX_JOB_STATE_RUNNING,
    FLUX_JOB_STATE_SCHED,
)

__all__ = [
    "STATES",
    "RESULTS",
    "STATE_NAMES",
    "RESULT_NAMES",
    "STATE_MASKS",
    "RESULT_MASKS",
    "ALL_STATES",
    "ALL_RESULTS",
    "statetostr",
    "resulttostr",
    "stateemoji",
    "resultemoji",
    "strtostate",
    "strtoresult",
]

STATES = (
    (FLUX_JOB_STATE_NEW, "NEW", "N", "\N{SQUARED NEW}"),
    (FLUX_JOB_STATE_DEPEND, "DEPEND", "D", "\N{LINK SYMBOL}"),
    (FLUX_JOB_STATE_PRIORITY, "PRIORITY", "P", "\N{INPUT SYMBOL FOR NUMBERS}"),
    (FLUX_JOB_STATE_SCHED, "SCHED", "S", "\N{TEAR-OFF CALENDAR}"),
    (FLUX_JOB_STATE_RUN, "RUN", "R", "\N{RUNNER}"),
    (FLUX_JOB_STATE_CLEANUP, "CLEANUP", "C", "\N{BROOM}"),
    (FLUX_JOB_STATE_INACTIVE, "INACTIVE", "I", "\N{SLEEPING SYMBOL}"),
)
RESULTS = (
    (FLUX_JOB_RESULT_COMPLETED, "COMPLETED", "CD", "\N{HEAVY CHECK MARK}"),
    (FLUX_JOB_RESULT_FAILED, "FAILED", "F", "\N{CROSS MARK}"),
    (FLUX_JOB_RESULT_CANCELED, "CANCELED", "CA", "\N{NO ENTRY SIGN}"),
    (FLUX_JOB_RESULT_TIMEOUT, "TIMEOUT", "TO", "\N{ALARM CLOCK}"),
)

STATE_NAMES = {row[0]: row[1] for row in STATES}
RESULT_NAMES = {row[0]: row[1] for row in RESULTS}

#: every state bit / every result bit
ALL_STATES = 0
for _row in STATES:
    ALL_STATES |= _row[0]
ALL_RESULTS = 0
for _row in RESULTS:
    ALL_RESULTS |= _row[0]
del _row

STATE_MASKS = {row[1].lower(): row[0] for row in STATES}
STATE_MASKS.update(pending=FLUX_JOB_STATE_PENDING, running=FLUX_JOB_STATE_RUNNING,
                   active=FLUX_JOB_STATE_ACTIVE)
RESULT_MASKS = {row[1].lower(): row[0] for row in RESULTS}

# value -> row, and any spelling (long or short, any case) -> value
_STATE_ROWS = {row[0]: row for row in STATES}
_RESULT_ROWS = {row[0]: row for row in RESULTS}
_STATE_VALUES = {**{row[1]: row[0] for row in STATES},
                 **{row[2]: row[0] for row in STATES}}
_RESULT_VALUES = {**{row[1]: row[0] for row in RESULTS},
                  **{row[2]: row[0] for row in RESULTS}}


def _short(fmt):
    # upstream's fmt is "L" (long) or "S" (short); older callers pass a bool
    if fmt is True or fmt is False:
        return fmt
    if fmt in ("S", "s"):
        return True
    if fmt in ("L", "l"):
        return False
    raise ValueError(f"invalid name format {fmt!r} (use 'L' or 'S')")


def statetostr(state, fmt="L", single=False):
    """``"SCHED"`` for a state, ``"S"`` with ``fmt="S"`` (or ``single``); ``""`` if unknown."""
    row = _STATE_ROWS.get(state)
    if row is None:
        return ""
    return row[2] if single or _short(fmt) else row[1]


def resulttostr(result, fmt="L", abbrev=False):
    """``"COMPLETED"`` for a result, ``"CD"`` with ``fmt="S"`` (or ``abbrev``); ``""`` if unknown."""
    row = _RESULT_ROWS.get(result)
    if row is None:
        return ""
    return row[2] if abbrev or _short(fmt) else row[1]


def stateemoji(state):
    """The symbol ``flux jobs`` shows for a state; ``""`` if unknown."""
    row = _STATE_ROWS.get(state)
    return row[3] if row else ""


def resultemoji(result):
    """The symbol ``flux jobs`` shows for a result; ``""`` if unknown."""
    row = _RESULT_ROWS.get(result)
    return row[3] if row else ""


def strtostate(name):
    """The state named ``name`` (long or short, any case); OSError(EINVAL) if none."""
    value = _STATE_VALUES.get(name.upper()) if isinstance(name, str) else None
    if value is None:
        raise OSError(errno.EINVAL, f"invalid job state {name!r}")
    return value


def strtoresult(name):
    """The result named ``name`` (long or short, any case); OSError(EINVAL) if none."""
    value = _RESULT_VALUES.get(name.upper()) if isinstance(name, str) else None
    if value is None:
        raise OSError(errno.EINVAL, f"invalid job result {name!r}")
    return value
