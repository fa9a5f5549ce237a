"""``ResourceSetImplementation``: what a resource set version provides.

``flux.resource.ResourceSet`` wraps one of these (version 1:
``flux.resource.Rv1Set``) and delegates every operation to it.  A
subclass implements the abstract methods below; the set operations take
and return implementations of the same class.
"""

from abc import ABC, abstractmethod


class ResourceSetImplementation(ABC):
    """The operations a resource set version implements."""

    version = None

    @abstractmethod
    def dumps(self):
        """The short text form."""

    @abstractmethod
    def encode(self):
        """The R JSON text."""

    @abstractmethod
    def to_dict(self):
        """The R object."""

    @abstractmethod
    def count(self, name):
        """How many resources of type ``name`` (``core``, ``gpu``)."""

    @abstractmethod
    def ranks(self):
        """The ranks, an ``IDset``."""

    @abstractmethod
    def nodelist(self):
        """The host names in rank order, a ``Hostlist``."""

    @abstractmethod
    def copy(self):
        """A copy."""

    @abstractmethod
    def copy_ranks(self, ranks):
        """A copy holding only ``ranks`` (an ``IDset``)."""

    @abstractmethod
    def remove_ranks(self, ranks):
        """Remove ``ranks`` (an ``IDset``) in place."""

    @abstractmethod
    def union(self, *others):
        """A new set: this one and ``others`` merged."""

    @abstractmethod
    def diff(self, *others):
        """A new set: this one without ``others``."""

    @abstractmethod
    def intersect(self, *others):
        """A new set: what this one shares with ``others``."""

    @abstractmethod
    def append(self, *others):
        """Merge ``others`` in place."""

    @abstractmethod
    def add(self, *others):
        """Merge ``others`` in place, taking only new ranks' properties."""

    @abstractmethod
    def copy_constraint(self, constraint):
        """A copy holding the ranks that match an RFC 31 constraint (dict)."""

    @abstractmethod
    def set_property(self, name, ranks=None):
        """Give property ``name`` to ``ranks`` (all if None)."""

    @abstractmethod
    def get_properties(self):
        """The RFC 20 properties object as JSON text."""

    @abstractmethod
    def host_ranks(self, hosts, ignore_nomatch=False):
        """The ranks of ``hosts``, in the order given."""
