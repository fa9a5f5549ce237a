"""``Rv1Set``: a resource set of R version 1 (RFC 20), in pure Python.

The set is a map rank -> (core ids, GPU ids) with a host name per rank,
properties (name -> ranks), ``starttime``, ``expiration`` and ``nslots``
(and ``scheduling`` with ``keep_scheduling=True``).  Semantics (spec 21.3):

- ``R_lite`` expands to per-rank core and GPU sets; ``nodelist`` names are
  given to ranks in ascending order, others are ``rank<N>``;
- the short form groups ranks with identical ids:
  ``rank[0-3]/core[0-3],gpu0 rank4/core,gpu0``;
- union, append and add merge the ids of a shared rank, diff subtracts ids
  and drops ranks left empty, intersect keeps whole ranks present in both;
  the left operand's times are kept, ``nslots`` and ``scheduling`` are
  dropped by every copy and set operation;
- RFC 31 constraints (``properties``, ``hostlist``, ``ranks``, ``and``,
  ``or``, ``not``) are matched rank by rank.
"""

import json

from flux.hostlist import Hostlist
from flux.idset import IDSET_FLAG_BRACKETS, IDSET_FLAG_RANGE, IDset
from flux.resource.ResourceSetImplementation import ResourceSetImplementation

_SHORT = IDSET_FLAG_RANGE | IDSET_FLAG_BRACKETS


def _ids(text):
    return IDset(text or "")


def _short(ids):
    return ids.encode(_SHORT)


def _as_idset(ranks):
    if isinstance(ranks, IDset):
        return ranks
    return IDset(ranks)


class Rv1Set(ResourceSetImplementation):
    """R version 1 resources (see the module docstring)."""

    version = 1

    def __init__(self, arg=None, keep_scheduling=False):
        self._nodes = {}  # rank -> [cores IDset, gpus IDset]
        self._hosts = {}  # rank -> host name
        self._properties = {}  # name -> IDset
        self.starttime = 0.0
        self.expiration = 0.0
        self.nslots = 0
        self._scheduling = None
        self._has_nodelist = False
        if arg is None:
            return
        if isinstance(arg, str):
            arg = json.loads(arg)
        self._parse(arg, keep_scheduling)

    # -- parsing ---------------------------------------------------------------------------
    def _parse(self, R, keep_scheduling):
        execution = R.get("execution") or {}
        for entry in execution.get("R_lite") or ():
            children = entry.get("children") or {}
            cores, gpus = _ids(children.get("core")), _ids(children.get("gpu"))
            for rank in _ids(entry.get("rank")):
                node = self._nodes.setdefault(rank, [IDset(), IDset()])
                node[0].add(cores)
                node[1].add(gpus)
        self._nodes = dict(sorted(self._nodes.items()))
        nodelist = execution.get("nodelist")
        if nodelist:
            self._has_nodelist = True
            names = Hostlist(nodelist).expand()
            for rank, name in zip(self._nodes, names):
                self._hosts[rank] = name
        for name, ranks in (execution.get("properties") or {}).items():
            self._properties[name] = _ids(ranks)
        self.starttime = float(execution.get("starttime") or 0.0)
        self.expiration = float(execution.get("expiration") or 0.0)
        self.nslots = int(execution.get("nslots") or 0)
        if keep_scheduling:
            self._scheduling = R.get("scheduling")

    @property
    def scheduling(self):
        return self._scheduling

    @scheduling.setter
    def scheduling(self, value):
        self._scheduling = value

    # -- queries --------------------------------------------------------------------------
    def host(self, rank):
        return self._hosts.get(rank, f"rank{rank}")

    def ranks(self):
        return IDset(list(self._nodes))

    def nodelist(self):
        return Hostlist([self.host(r) for r in self._nodes])

    def count(self, name):
        if name == "core":
            return sum(len(n[0]) for n in self._nodes.values())
        if name == "gpu":
            return sum(len(n[1]) for n in self._nodes.values())
        return 0

    def nnodes(self):
        return len(self._nodes)

    def cores(self, rank):
        return self._nodes[rank][0]

    def gpus(self, rank):
        return self._nodes[rank][1]

    def property_names(self):
        return list(self._properties)

    def rank_properties(self, rank):
        return [name for name, ranks in self._properties.items() if rank in ranks]

    # -- text and JSON ----------------------------------------------------------------------
    def _groups(self):
        """[(ranks IDset, cores, gpus)] of ranks with identical ids, by lowest rank."""
        groups = {}
        for rank, (cores, gpus) in self._nodes.items():
            key = (str(cores), str(gpus))
            group = groups.get(key)
            if group is None:
                groups[key] = group = (IDset(), cores, gpus)
            group[0].set(rank)
        return list(groups.values())

    def dumps(self):
        parts = []
        for ranks, cores, gpus in self._groups():
            text = f"rank{_short(ranks)}/core{_short(cores)}"
            if gpus:
                text += f",gpu{_short(gpus)}"
            parts.append(text)
        return " ".join(parts)

    def to_dict(self):
        rlite = []
        for ranks, cores, gpus in self._groups():
            children = {"core": str(cores)}
            if gpus:
                children["gpu"] = str(gpus)
            rlite.append({"rank": str(ranks), "children": children})
        execution = {"R_lite": rlite, "starttime": float(self.starttime),
                     "expiration": float(self.expiration)}
        if self.nslots and self.nslots > 0:
            execution["nslots"] = self.nslots
        if self._has_nodelist:
            execution["nodelist"] = [str(self.nodelist())] if self._nodes else []
        props = {name: str(ranks) for name, ranks in self._properties.items() if ranks}
        if props:
            execution["properties"] = props
        R = {"version": 1, "execution": execution}
        if self._scheduling:
            R["scheduling"] = self._scheduling
        return R

    def encode(self):
        return json.dumps(self.to_dict())

    def __str__(self):
        return self.dumps()

    # -- copies ---------------------------------------------------------------------------
    def _empty_like(self):
        new = self.__class__.__new__(self.__class__)
        Rv1Set.__init__(new)
        new.starttime = self.starttime
        new.expiration = self.expiration
        new._has_nodelist = self._has_nodelist
        return new

    def _take(self, rank, cores, gpus, host):
        node = self._nodes.get(rank)
        if node is None:
            last = next(reversed(self._nodes), -1)
            self._nodes[rank] = [IDset(cores), IDset(gpus)]
            if rank < last:  # keep the ranks in ascending order
                self._nodes = dict(sorted(self._nodes.items()))
        else:
            node[0].add(cores)
            node[1].add(gpus)
        if host is not None and rank not in self._hosts:
            self._hosts[rank] = host

    def copy(self):
        return self.copy_ranks(self.ranks())

    def copy_ranks(self, ranks):
        ranks = _as_idset(ranks)
        new = self._empty_like()
        for rank, (cores, gpus) in self._nodes.items():
            if rank in ranks:
                new._take(rank, cores, gpus, self._hosts.get(rank))
        new._restrict_properties(self._properties)
        return new

    def _restrict_properties(self, properties):
        keep = self.ranks()
        for name, ranks in properties.items():
            mine = ranks.intersect(keep)
            if mine:
                self._properties[name] = mine

    def remove_ranks(self, ranks):
        ranks = _as_idset(ranks)
        for rank in list(self._nodes):
            if rank in ranks:
                del self._nodes[rank]
                self._hosts.pop(rank, None)
        for name in list(self._properties):
            self._properties[name] = self._properties[name].difference(ranks)
            if not self._properties[name]:
                del self._properties[name]
        return self

    # -- set operations ------------------------------------------------------------------------
    def _merge(self, other, all_properties=True):
        new_ranks = other.ranks().difference(self.ranks())
        for rank, (cores, gpus) in other._nodes.items():
            self._take(rank, cores, gpus, other._hosts.get(rank))
        self._has_nodelist = self._has_nodelist or other._has_nodelist
        for name, ranks in other._properties.items():
            if not all_properties:
                ranks = ranks.intersect(new_ranks)
            if ranks:
                self._properties.setdefault(name, IDset()).add(ranks)

    def append(self, *others):
        for other in others:
            self._merge(other)
        return self

    def add(self, *others):
        for other in others:
            self._merge(other, all_properties=False)
        return self

    def union(self, *others):
        new = self.copy()
        return new.append(*others)

    def diff(self, *others):
        new = self.copy()
        for other in others:
            for rank, (cores, gpus) in other._nodes.items():
                node = new._nodes.get(rank)
                if node is None:
                    continue
                node[0] = node[0].difference(cores)
                node[1] = node[1].difference(gpus)
                if not node[0] and not node[1]:
                    del new._nodes[rank]
        return new._pruned()

    def intersect(self, *others):
        keep = self.ranks()
        for other in others:
            keep = keep.intersect(other.ranks())
        return self.copy_ranks(keep)

    def _pruned(self):
        props, self._properties = self._properties, {}
        self._hosts = {r: h for r, h in self._hosts.items() if r in self._nodes}
        self._restrict_properties(props)
        return self

    # -- properties ---------------------------------------------------------------------------
    def set_property(self, name, ranks=None):
        if not name:
            raise ValueError("property name must not be empty")
        if "^" in name:
            raise ValueError(f"invalid property name '{name}': '^' is reserved"
                             " for constraint negation")
        if ranks is None:
            ranks = self.ranks()
        elif not isinstance(ranks, IDset):
            try:
                ranks = IDset(ranks)
            except (ValueError, TypeError, OSError) as exc:
                raise ValueError(f"invalid rank idset '{ranks}': {exc}") from None
        missing = ranks.difference(self.ranks())
        if missing:
            raise ValueError(f"ranks {missing} not in resource set")
        if ranks:
            self._properties.setdefault(name, IDset()).add(ranks)
        return self

    def get_properties(self):
        return json.dumps({name: str(ranks) for name, ranks in self._properties.items()
                           if ranks})

    # -- hosts --------------------------------------------------------------------------------
    def host_ranks(self, hosts, ignore_nomatch=False):
        by_host = {}
        for rank in self._nodes:
            by_host.setdefault(self.host(rank), []).append(rank)
        result, missing = [], []
        for host in Hostlist(hosts):
            ranks = by_host.get(host)
            if ranks is None:
                missing.append(host)
            else:
                result.extend(ranks)
        if missing and not ignore_nomatch:
            raise FileNotFoundError(f"host(s) not found: {Hostlist(missing)}")
        return result

    # -- constraints (RFC 31) ------------------------------------------------------------------
    def copy_constraint(self, constraint):
        if isinstance(constraint, str):
            constraint = json.loads(constraint)
        match = _compile(constraint)
        keep = IDset([r for r in self._nodes if match(self, r)])
        return self.copy_ranks(keep)


def _list_operand(op, value):
    if not isinstance(value, list):
        raise ValueError(f"'{op}' operand must be a list, got {type(value).__name__}")
    return value


def _strings(op, value):
    for item in _list_operand(op, value):
        if not isinstance(item, str):
            kind = "property" if op == "properties" else op
            raise ValueError(f"{kind} constraint must be a string, got"
                             f" {type(item).__name__}")
    return value


def _compile(constraint):
    """An RFC 31 constraint -> a predicate ``match(rv1set, rank)``."""
    if not isinstance(constraint, dict):
        raise ValueError(f"constraint must be an object, got {type(constraint).__name__}")
    unknown = [k for k in constraint
               if k not in ("properties", "hostlist", "ranks", "and", "or", "not")]
    if unknown:
        raise ValueError(f"unknown constraint operator(s): {unknown}")
    tests = []
    for op, value in constraint.items():
        if op == "properties":
            wanted = _strings("properties", value)
            tests.append(lambda s, r, w=wanted: _has_properties(s, r, w))
        elif op == "hostlist":
            hosts = set()
            for text in _strings("hostlist", value):
                hosts.update(Hostlist(text))
            tests.append(lambda s, r, h=hosts: s.host(r) in h)
        elif op == "ranks":
            ranks = IDset()
            for text in _strings("ranks", value):
                ranks.add(IDset(text))
            tests.append(lambda s, r, ids=ranks: r in ids)
        elif op in ("and", "or"):
            subs = [_compile(c) for c in _list_operand(op, value)]
            if op == "and":
                tests.append(lambda s, r, subs=subs: all(m(s, r) for m in subs))
            else:
                tests.append(lambda s, r, subs=subs: any(m(s, r) for m in subs))
        else:  # not
            items = _list_operand(op, value)
            if not items:
                raise ValueError("'not' operand must be a non-empty list")
            sub = _compile(items[0])
            tests.append(lambda s, r, sub=sub: not sub(s, r))
    return lambda s, r: all(t(s, r) for t in tests)


def _has_properties(rset, rank, wanted):
    for name in wanted:
        if name.startswith("^"):
            ranks = rset._properties.get(name[1:])
            if ranks is not None and rank in ranks:
                return False
        else:
            ranks = rset._properties.get(name)
            if ranks is None or rank not in ranks:
                return False
    return True
