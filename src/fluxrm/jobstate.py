"""The broker's names for the job state machine (RFC 21).

The rule itself lives in the client package, ``flux.eventlog``, so that
the job manager and ``flux.job.result`` derive state and result from an
eventlog the same way: ``JobView`` (what the events say about one job),
``apply(view, event)`` (the only transition function, returning the new
state if it changed) and ``replay(events)`` (a view rebuilt from a stored
eventlog after a restart) are its objects, not copies.  State names come
from ``flux.job.state``.

Here, besides those names: the state constants as short names
(``NEW`` ... ``INACTIVE``) and the default priority plugin
``urgency_to_priority``.
"""

from flux.constants import (  # noqa: F401
    FLUX_JOB_PRIORITY_MAX as PRIORITY_MAX,
    FLUX_JOB_STATE_CLEANUP as CLEANUP,
    FLUX_JOB_STATE_DEPEND as DEPEND,
    FLUX_JOB_STATE_INACTIVE as INACTIVE,
    FLUX_JOB_STATE_NEW as NEW,
    FLUX_JOB_STATE_PRIORITY as PRIORITY,
    FLUX_JOB_STATE_RUN as RUN,
    FLUX_JOB_STATE_SCHED as SCHED,
)
from flux.eventlog import (  # noqa: F401
    STATE_TIMESTAMP,
    TRANSITIONS,
    JobView,
    apply,
    replay,
)
from flux.job.state import STATE_NAMES  # noqa: F401


def urgency_to_priority(urgency):
    """The default priority plugin: hold at 0, expedite at 31."""
    if urgency == 0:
        return 0
    if urgency == 31:
        return PRIORITY_MAX
    return urgency
