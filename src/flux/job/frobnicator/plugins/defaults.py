"""Frobnicator plugin ``defaults``: fill in the instance's jobspec
defaults from the configuration ``[policy.jobspec.defaults.system]``
(``duration`` as an FSD string or seconds, ``queue``), and a queue's own
``[queues.NAME.policy.jobspec.defaults.system]`` over those.  Only missing
values (a duration of 0 or none, no queue) are filled."""

from flux.job.frobnicator import FrobnicatorPlugin
from flux.util import parse_fsd


def _system_defaults(table):
    try:
        found = table["policy"]["jobspec"]["defaults"]["system"]
    except (KeyError, TypeError):
        return {}
    return found if isinstance(found, dict) else {}


def _checked(defaults, where):
    """``defaults`` with its duration in seconds; a bad one is a
    ``ValueError`` at configuration time."""
    defaults = dict(defaults)
    if "duration" in defaults:
        duration = defaults["duration"]
        try:
            if isinstance(duration, bool):
                raise ValueError
            seconds = parse_fsd(duration) if isinstance(duration, str) else float(duration)
            if seconds < 0:
                raise ValueError
        except (TypeError, ValueError):
            raise ValueError(f"{where}.jobspec.defaults.system.duration: "
                             f"invalid duration {duration!r}") from None
        defaults["duration"] = seconds
    return defaults


class Frobnicator(FrobnicatorPlugin):
    def configure(self, args, config):
        self.defaults = _checked(_system_defaults(config), "policy")
        queues = config.get("queues")
        queues = queues if isinstance(queues, dict) else {}
        self.queue_defaults = {name: _checked(_system_defaults(table), f"queues.{name}")
                               for name, table in queues.items()}

    def frob(self, jobspec, userid, urgency, flags):
        system = jobspec.setdefault("attributes", {}).setdefault("system", {})
        if "queue" not in system and "queue" in self.defaults:
            system["queue"] = self.defaults["queue"]
        defaults = dict(self.defaults)
        defaults.update(self.queue_defaults.get(system.get("queue"), {}))
        if not system.get("duration") and "duration" in defaults:
            system["duration"] = defaults["duration"]
