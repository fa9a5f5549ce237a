"""Stand-ins for unit tests of services and the router, without a broker
process: a broker with a real ``Router`` (and ``broker.rpc``), and a
sender that records what it is sent."""

from fluxrm.broker.router import Router
from fluxrm.broker.rpc import BrokerRPC


class BrokerStub:
    """Rank 0 of a size-1 instance: a real router, a log kept in
    ``logged``, attributes from ``attrs``."""

    rank = 0
    size = 1

    def __init__(self, attrs=None):
        self.router = Router(self)
        self.rpc = BrokerRPC(self.router)
        self.logged = []
        self.attrs = dict(attrs or {})

    def attr(self, name, default=None):
        return self.attrs.get(name, default)

    def log(self, level, text, appname="broker"):
        self.logged.append((level, text))


class Sender:
    """A connection that keeps the messages sent to it in ``sent``."""

    closed = False

    def __init__(self, ident="client-1"):
        self.ident = ident
        self.services_used = set()
        self.sent = []
        self.arrived = None  # an asyncio future the first send sets, if given

    def send(self, msg):
        self.sent.append(msg)
        if self.arrived is not None and not self.arrived.done():
            self.arrived.set_result(msg)
