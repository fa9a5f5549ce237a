"""The shape of the broker tree: who is whose parent, child and ancestor.

Two shapes, one interface:

- `KaryTopology`: a k-ary tree in heap order, as ``tbon.topo = "kary:K"``
  asks: rank ``i > 0`` hangs under ``(i - 1) // K`` and the children of
  ``i`` are ``K*i + 1 .. K*i + K`` (those below ``size``).  ``kary:0`` is
  flat: every other rank hangs directly under rank 0.  Nothing is stored
  per rank; every answer is computed in time proportional to the tree's
  depth.
- `ParentTopology`: an explicit parent for every rank (the config file's
  ``parent = "host"`` entries).  Built once in O(size); each answer then
  costs O(depth) at most.

Both give ``size``, ``maxlevel``, ``parent(rank)`` (None for rank 0),
``children(rank)``, ``level(rank)`` (rank 0 is level 0),
``descendants(rank)`` (how many ranks lie below, the rank itself not
counted) and ``subtree_child(rank, target)`` (the child of ``rank`` whose
subtree holds ``target``, or None when ``target`` is not below ``rank``):
the routing question "which way down?".  A rank outside ``0 .. size-1`` is
a ``ValueError``.
"""

__all__ = ["KaryTopology", "ParentTopology", "parse_topo"]


def _check_size(size):
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"topology size must be a positive integer, not {size!r}")


class _Topology:
    size = 1

    def _check(self, rank):
        # cheap on purpose: routing asks these questions per message
        if not 0 <= rank < self.size:
            raise ValueError(f"rank {rank!r} is not in 0..{self.size - 1}")


class KaryTopology(_Topology):
    """A heap-ordered tree where each rank has at most ``k`` children
    (``k = 0``: flat, everything under rank 0)."""

    def __init__(self, k, size):
        _check_size(size)
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"kary fanout must be an integer >= 0, not {k!r}")
        self.k = k
        self.size = size

    def __repr__(self):
        return f"KaryTopology(k={self.k}, size={self.size})"

    @property
    def spec(self):
        return f"kary:{self.k}"

    @property
    def maxlevel(self):
        # in heap order the last rank is among the deepest
        return self.level(self.size - 1)

    def parent(self, rank):
        self._check(rank)
        if rank == 0:
            return None
        return 0 if self.k == 0 else (rank - 1) // self.k

    def children(self, rank):
        self._check(rank)
        if self.k == 0:
            return list(range(1, self.size)) if rank == 0 else []
        first = self.k * rank + 1
        return list(range(first, min(first + self.k, self.size)))

    def descendants(self, rank):
        self._check(rank)
        if self.k == 0:
            return self.size - 1 if rank == 0 else 0
        # the subtree's ranks at each level below form one contiguous range
        count, lo, hi = 0, rank, rank
        while lo < self.size:
            count += min(hi, self.size - 1) - lo + 1
            lo, hi = self.k * lo + 1, self.k * hi + self.k
        return count - 1

    def level(self, rank):
        self._check(rank)
        if self.k == 0:
            return min(rank, 1)
        if self.k == 1:
            return rank
        depth = 0
        while rank:
            rank = (rank - 1) // self.k
            depth += 1
        return depth

    def subtree_child(self, rank, target):
        self._check(rank)
        self._check(target)
        if self.k == 0:
            return target if rank == 0 and target != 0 else None
        # heap order: every rank below ``rank`` has a larger number
        while target > rank:
            up = (target - 1) // self.k
            if up == rank:
                return target
            target = up
        return None


class ParentTopology(_Topology):
    """A tree given as ``parents[rank]`` (``parents[0]`` is None).

    ``names`` (optional, one per rank) only make error messages readable.
    Refused with a ``ValueError``: a root with a parent, another rank
    without one, a parent out of range, a rank its own parent, a cycle.
    """

    def __init__(self, parents, names=None):
        parents = list(parents)
        _check_size(len(parents))
        self.size = len(parents)
        self._parents = parents
        self._names = names

        if parents[0] is not None:
            raise ValueError(f"{self._name(0)} is the root and cannot have a parent")
        for rank, up in enumerate(parents[1:], 1):
            if isinstance(up, bool) or not isinstance(up, int) or not 0 <= up < self.size:
                raise ValueError(f"{self._name(rank)} has parent {up!r}, "
                                 f"not a rank in 0..{self.size - 1}")
            if up == rank:
                raise ValueError(f"{self._name(rank)} is its own parent")
        self._check_cycles()

        self._children = [[] for _ in parents]
        for rank, up in enumerate(parents[1:], 1):
            self._children[up].append(rank)
        self._descendants = [0] * self.size
        order = self._post_order()
        for rank in order:
            up = parents[rank]
            if up is not None:
                self._descendants[up] += self._descendants[rank] + 1
        self._levels = [0] * self.size
        for rank in reversed(order):  # parents before children
            if rank:
                self._levels[rank] = self._levels[parents[rank]] + 1
        self.maxlevel = max(self._levels)

    def __repr__(self):
        return f"ParentTopology({self._parents!r})"

    def _name(self, rank):
        if self._names is not None:
            return f"{self._names[rank]} (rank {rank})"
        return f"rank {rank}"

    def _check_cycles(self):
        state = [0] * self.size  # 0: unseen, 1: on the current walk, 2: reaches 0
        state[0] = 2
        for start in range(1, self.size):
            walk, rank = [], start
            while state[rank] == 0:
                state[rank] = 1
                walk.append(rank)
                rank = self._parents[rank]
            if state[rank] == 1:
                loop = walk[walk.index(rank):] + [rank]
                raise ValueError("parent cycle: " + " -> ".join(self._name(r) for r in loop))
            for r in walk:
                state[r] = 2

    def _post_order(self):
        order, stack = [], [0]
        while stack:
            rank = stack.pop()
            order.append(rank)
            stack.extend(self._children[rank])
        order.reverse()
        return order

    def parent(self, rank):
        self._check(rank)
        return self._parents[rank]

    def children(self, rank):
        self._check(rank)
        return list(self._children[rank])

    def descendants(self, rank):
        self._check(rank)
        return self._descendants[rank]

    def level(self, rank):
        self._check(rank)
        return self._levels[rank]

    def subtree_child(self, rank, target):
        self._check(rank)
        self._check(target)
        while target != 0:
            up = self._parents[target]
            if up == rank:
                return target
            target = up
        return None


def parse_topo(spec, size):
    """The topology ``spec`` names, for ``size`` ranks.

    ``"kary:K"`` (K >= 0; ``kary:0`` is flat) is the only form: anything
    else is a ``ValueError`` saying what is accepted.
    """
    if not isinstance(spec, str):
        raise ValueError(f"tbon.topo must be a string such as 'kary:32', not {spec!r}")
    kind, sep, arg = spec.partition(":")
    if kind != "kary":
        raise ValueError(f"tbon.topo '{spec}' is not supported: use kary:K "
                         f"(K children per rank, kary:0 for flat)")
    if not sep or not arg.isdigit() or not arg.isascii():
        raise ValueError(f"tbon.topo '{spec}': K in kary:K must be an integer >= 0")
    return KaryTopology(int(arg), size)
