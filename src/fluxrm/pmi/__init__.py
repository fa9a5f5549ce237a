"""Simple PMI (PMI-1 wire protocol): how a group of processes started
together learn their rank and size and swap small key-value pairs.

- ``wire``: parsing and formatting the one-line messages, and their bounds.
- ``server``: ``PMIServerCore``, the protocol's state without I/O.
- ``drivers``: ``AsyncioPMIServer`` and ``ThreadedPMIServer``, serving a core
  over one socketpair per rank.
- ``client``: ``PMIClient``, the blocking client a broker uses at boot.
"""

from fluxrm.pmi.client import DEFAULT_TIMEOUT, PMIClient, PMIError
from fluxrm.pmi.drivers import AsyncioPMIServer, ThreadedPMIServer
from fluxrm.pmi.server import PMIServerCore

__all__ = [
    "DEFAULT_TIMEOUT", "PMIClient", "PMIError", "PMIServerCore",
    "AsyncioPMIServer", "ThreadedPMIServer",
]
