"""fluxrm.boot.topology against a brute force built from the parent map."""

import random

import pytest

from fluxrm.boot.topology import KaryTopology, ParentTopology, parse_topo


class Brute:
    """Every answer found by walking the whole tree, from parents alone."""

    def __init__(self, parents):
        self.size = len(parents)
        self.parents = parents
        self.ancestors = []  # ancestors[r]: the path r, parent(r), ..., 0
        for rank in range(self.size):
            path = [rank]
            while parents[path[-1]] is not None:
                path.append(parents[path[-1]])
            self.ancestors.append(path)
        self.below = [0] * self.size
        for path in self.ancestors:
            for up in path[1:]:
                self.below[up] += 1

    def children(self, rank):
        return [r for r in range(self.size) if self.parents[r] == rank]

    def level(self, rank):
        return len(self.ancestors[rank]) - 1

    def descendants(self, rank):
        return self.below[rank]

    def subtree_child(self, rank, target):
        path = self.ancestors[target]
        if rank not in path[1:]:
            return None
        return path[path.index(rank) - 1]


def kary_parents(k, size):
    if k == 0:
        return [None] + [0] * (size - 1)
    return [None] + [(i - 1) // k for i in range(1, size)]


def check(topo, brute, ranks, targets):
    assert topo.size == brute.size
    assert topo.maxlevel == max(brute.level(r) for r in range(brute.size))
    for rank in ranks:
        assert topo.parent(rank) == brute.parents[rank]
        assert topo.children(rank) == brute.children(rank)
        assert topo.level(rank) == brute.level(rank)
        assert topo.descendants(rank) == brute.descendants(rank)
        for target in targets:
            assert topo.subtree_child(rank, target) == brute.subtree_child(rank, target), \
                (rank, target)


@pytest.mark.parametrize("k", [0, 1, 2, 3, 32])
def test_kary_every_rank_small_sizes(k):
    for size in range(1, 70):
        everyone = range(size)
        check(KaryTopology(k, size), Brute(kary_parents(k, size)), everyone, everyone)


@pytest.mark.parametrize("k", [0, 1, 2, 3, 5, 32])
def test_kary_sizes_up_to_1024(k):
    rng = random.Random(k)
    for size in range(70, 1025):
        topo = KaryTopology(k, size)
        parents = kary_parents(k, size)
        # the brute force is O(size^2) per tree: all ranks at a few sizes,
        # a sample (always the first and last ranks) at the others
        if size in (127, 128, 129, 255, 256, 511, 1023, 1024) and k != 1:
            ranks = range(size)
            targets = rng.sample(range(size), 40) + [0, size - 1]
        elif size % 37 == 0 or size == 1024:
            ranks = [0, 1, size // 2, size - 1] + rng.sample(range(size), 4)
            targets = range(size)
        else:
            # the size only changes the shape at the bottom of the tree
            last, depth = size - 1, 0
            while parents[last] is not None:
                last, depth = parents[last], depth + 1
            assert topo.maxlevel == depth
            assert topo.descendants(0) == size - 1
            assert topo.children(parents[size - 1]) == [
                r for r in range(size) if parents[r] == parents[size - 1]]
            continue
        check(topo, Brute(parents), ranks, targets)


def test_kary_known_shapes():
    t = KaryTopology(2, 7)
    assert [t.parent(r) for r in range(7)] == [None, 0, 0, 1, 1, 2, 2]
    assert t.children(1) == [3, 4] and t.children(3) == []
    assert t.maxlevel == 2 and t.descendants(1) == 2
    assert t.subtree_child(0, 6) == 2 and t.subtree_child(1, 6) is None
    flat = KaryTopology(0, 4)
    assert flat.children(0) == [1, 2, 3] and flat.maxlevel == 1
    assert flat.subtree_child(0, 3) == 3 and flat.subtree_child(2, 3) is None
    one = KaryTopology(32, 1)
    assert one.parent(0) is None and one.children(0) == [] and one.maxlevel == 0


def test_kary_deep_chain_is_not_quadratic():
    # kary:1 of a million ranks: each answer walks at most the depth
    t = KaryTopology(1, 1_000_000)
    assert t.level(999_999) == 999_999 and t.maxlevel == 999_999
    assert t.descendants(10) == 999_989
    assert t.subtree_child(0, 999_999) == 1
    wide = KaryTopology(32, 10**9)
    assert wide.descendants(0) == 10**9 - 1
    top = 10**9 - 1
    while wide.parent(top) != 0:
        top = wide.parent(top)
    assert wide.subtree_child(0, 10**9 - 1) == top and 1 <= top <= 32
    assert wide.subtree_child(wide.parent(10**9 - 1), 10**9 - 1) == 10**9 - 1


def random_parents(rng, size):
    """A random tree where ranks are not in heap order."""
    order = list(range(1, size))
    rng.shuffle(order)
    placed, parents = [0], [None] * size
    for rank in order:
        parents[rank] = rng.choice(placed)
        placed.append(rank)
    return parents


def test_parent_map_random_trees():
    rng = random.Random(1)
    for size in list(range(1, 40)) + [100, 257]:
        for _ in range(3):
            parents = random_parents(rng, size)
            everyone = range(size)
            check(ParentTopology(parents), Brute(parents), everyone, everyone)


def test_parent_map_chain_and_star():
    chain = [None, 0, 1, 2, 3]
    check(ParentTopology(chain), Brute(chain), range(5), range(5))
    backwards = [None, 2, 3, 4, 0]  # 0 <- 4 <- 3 <- 2 <- 1
    t = ParentTopology(backwards)
    assert t.maxlevel == 4 and t.level(1) == 4 and t.subtree_child(4, 1) == 3
    check(t, Brute(backwards), range(5), range(5))


@pytest.mark.parametrize("parents, match", [
    ([0, 0], "host0 \\(rank 0\\) is the root and cannot have a parent"),
    ([None, None], "host1 \\(rank 1\\) has parent None"),
    ([None, 5], "host1 \\(rank 1\\) has parent 5, not a rank in 0..1"),
    ([None, 1], "host1 \\(rank 1\\) is its own parent"),
    ([None, 2, 1], "parent cycle: host1 \\(rank 1\\) -> host2 \\(rank 2\\) -> host1"),
    ([None, 0, 3, 4, 2], "parent cycle: host2 .* -> host3 .* -> host4 .* -> host2"),
    ([], "positive integer"),
])
def test_parent_map_refused(parents, match):
    names = [f"host{i}" for i in range(len(parents))]
    with pytest.raises(ValueError, match=match):
        ParentTopology(parents, names=names)


def test_parent_map_errors_without_names():
    with pytest.raises(ValueError, match="parent cycle: rank 1 -> rank 2 -> rank 1"):
        ParentTopology([None, 2, 1])


def test_rank_out_of_range():
    for topo in (KaryTopology(2, 4), ParentTopology([None, 0, 0, 1])):
        for call in (topo.parent, topo.children, topo.level, topo.descendants):
            with pytest.raises(ValueError, match="rank 4 is not in 0..3"):
                call(4)
            with pytest.raises(ValueError, match="rank -1 is not in 0..3"):
                call(-1)
        with pytest.raises(ValueError, match="rank 9"):
            topo.subtree_child(0, 9)


@pytest.mark.parametrize("spec, k", [("kary:32", 32), ("kary:0", 0), ("kary:1", 1)])
def test_parse_topo(spec, k):
    t = parse_topo(spec, 10)
    assert isinstance(t, KaryTopology) and t.k == k and t.size == 10 and t.spec == spec


@pytest.mark.parametrize("spec, match", [
    ("binomial", "'binomial' is not supported: use kary:K"),
    ("custom", "not supported"),
    ("kary", "must be an integer >= 0"),
    ("kary:", "must be an integer >= 0"),
    ("kary:-1", "must be an integer >= 0"),
    ("kary:x", "must be an integer >= 0"),
    ("kary:²", "must be an integer >= 0"),
    (32, "must be a string"),
])
def test_parse_topo_refuses(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_topo(spec, 4)


@pytest.mark.parametrize("size", [0, -1, True, 1.5, "4"])
def test_bad_sizes(size):
    with pytest.raises(ValueError, match="positive integer"):
        KaryTopology(2, size)
