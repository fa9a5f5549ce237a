"""`parse_datetime`: human readable times and offsets (part of `flux.util`)."""

import time
from datetime import datetime, timedelta

from flux._format import parse_fsd


def parse_datetime(string, now=None):
    """Parse a human readable time or offset into a `datetime`.

    ``now`` (default: the current local time, timezone-aware) is the
    reference. ``"now"`` returns ``now`` itself; ``"+FSD"`` / ``"-FSD"`` add
    or subtract a Flux Standard Duration (sub-second precision kept);
    anything else is parsed in natural language by parsedatetime, relative
    to ``now`` with days starting at 00:00, giving a local, timezone-aware
    result in whole seconds. Failure raises `ValueError`.
    """
    if now is None:
        now = datetime.now().astimezone()
    if string == "now":
        return now
    if string.startswith(("+", "-")):
        seconds = parse_fsd(string[1:])
        try:
            delta = timedelta(seconds=seconds)
            result = now + delta if string[0] == "+" else now - delta
        except OverflowError:  # "+inf" or beyond year 9999
            raise ValueError(f'Invalid datetime: "{string}"') from None
        return result if result.tzinfo is not None else result.astimezone()

    from flux.utils.parsedatetime import VERSION_CONTEXT_STYLE, Calendar

    calendar = Calendar(version=VERSION_CONTEXT_STYLE)
    calendar.ptc.StartHour = 0
    time_struct, context = calendar.parse(string, sourceTime=now.timetuple())
    if not context.hasDateOrTime:
        raise ValueError(f'Invalid datetime: "{string}"')
    return datetime.fromtimestamp(time.mktime(time_struct)).astimezone()
