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


class Frobnicator(FrobnicatorPlugin):
    def configure(self, args, config):
        self.defaults = _system_defaults(config)
        queues = config.get("queues", {})
        self.queue_defaults = {name: _system_defaults(table)
                               for name, table in queues.items()
                               if isinstance(table, dict)}

    def frob(self, jobspec, userid, urgency, flags):
        system = jobspec.setdefault("attributes", {}).setdefault("system", {})
        if "queue" not in system and "queue" in self.defaults:
            system["queue"] = self.defaults["queue"]
        defaults = dict(self.defaults)
        defaults.update(self.queue_defaults.get(system.get("queue"), {}))
        if not system.get("duration") and "duration" in defaults:
            duration = defaults["duration"]
            system["duration"] = (parse_fsd(duration) if isinstance(duration, str)
                                  else float(duration))
