"""Node properties from the instance configuration (for ``resource``).

Upstream's ``[resource]`` table lists nodes with their properties::

    [[resource.config]]
    hosts = "node[0-1]"          # a hostlist, matched against hostnames
    properties = ["debug"]

    [[resource.config]]
    ranks = "2-3"                # or an idset of broker ranks (ours)
    properties = ["batch", "big"]

Only ``hosts``, ``ranks`` and ``properties`` are read here (cores and gpus
are still discovered).  ``PropertyRules(config)`` reads them once
(``ValueError`` naming the entry for a table that is not right);
``rules.of(ranks)`` gives R version 1's ``properties`` key for a list of
nodes (objects with ``rank`` and ``hostname``): ``{name: rank idset}``,
``{}`` if none applies.  Property names are words (letters, digits and
``. _ + @ -``), never starting with ``^`` (RFC 31's negation).
"""

import re

from flux.hostlist import Hostlist
from flux.idset import IDset

_NAME = re.compile(r"[\w.+@-]+")


class PropertyRules:
    """``[[resource.config]]`` entries: (hosts, ranks, properties)."""

    def __init__(self, config):
        self.rules = []
        resource = (config or {}).get("resource", {})
        if not isinstance(resource, dict):
            raise ValueError("resource must be a table")
        entries = resource.get("config", [])
        if not isinstance(entries, list):
            raise ValueError("resource.config must be an array of tables")
        for i, entry in enumerate(entries):
            where = f"resource.config[{i}]"
            if not isinstance(entry, dict):
                raise ValueError(f"{where} must be a table")
            props = entry.get("properties", [])
            if (not isinstance(props, list)
                    or not all(isinstance(p, str) and _NAME.fullmatch(p) for p in props)):
                raise ValueError(f"{where}.properties must be a list of property "
                                 "names (letters, digits, . _ + @ -)")
            hosts = ranks = None
            try:
                if "hosts" in entry:
                    hosts = set(Hostlist(str(entry["hosts"])))
                if "ranks" in entry:
                    ranks = set(IDset(str(entry["ranks"])))
            except (ValueError, TypeError, OSError) as exc:
                raise ValueError(f"{where}: {exc}") from None
            if hosts is None and ranks is None:
                raise ValueError(f"{where} must name hosts or ranks")
            if props:
                self.rules.append((hosts, ranks, props))

    def of(self, nodes):
        """``{property: rank idset}`` of these nodes."""
        if not self.rules:
            return {}
        found = {}
        for node in nodes:
            for hosts, ranks, props in self.rules:
                if ((hosts is not None and node.hostname in hosts)
                        or (ranks is not None and node.rank in ranks)):
                    for name in props:
                        found.setdefault(name, set()).add(node.rank)
        return {name: str(IDset(sorted(ranks))) for name, ranks in found.items()}
