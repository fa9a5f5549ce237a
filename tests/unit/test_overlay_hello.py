"""The overlay's hello checks and version rule, without sockets: a parent
refuses a rank that is not its child, a host the bootstrap did not give
that rank, and another major.minor version."""

from flux.constants import FLUX_MSGTYPE_REQUEST
from flux.message import Message
from fluxrm.boot.topology import KaryTopology
from fluxrm.broker.bootstrap import BootInfo, single_node
from fluxrm.broker.overlay import HELLO, Overlay, version_key


class _Router:
    overlay = None


class _Broker:
    rank = 0
    router = _Router()

    def __init__(self, version="0.1.0"):
        self.version = version

    def attr(self, name, default=None):
        return self.version if name == "version" else default

    def log(self, level, text):
        pass


def _overlay(rank=0, size=7, k=2, hosts=None, version="0.1.0"):
    info = BootInfo("pmi", rank, size)
    info.topology = KaryTopology(k, size)
    info.child_hosts = hosts or {}
    return Overlay(_Broker(version), info)


def _hello(**fields):
    return Message.build(FLUX_MSGTYPE_REQUEST, HELLO, fields)


def test_children_with_the_right_host_and_version_are_welcome():
    ov = _overlay(hosts={1: "n1", 2: "n2"})
    assert ov._check_hello(_hello(rank=1, hostname="n1", version="0.1.7",
                                  uuid="x")) is None
    assert ov._check_hello(_hello(rank=2, hostname="n2", version="0.1.0",
                                  uuid="y")) is None


def test_not_a_child_wrong_host_other_version_malformed():
    ov = _overlay(hosts={1: "n1", 2: "n2"})
    assert "not a child of rank 0" in ov._check_hello(
        _hello(rank=3, hostname="n3", version="0.1.0"))
    assert "not a child" in ov._check_hello(_hello(rank=True, hostname="n1",
                                                   version="0.1.0"))
    assert "bootstrap puts it on n1" in ov._check_hello(
        _hello(rank=1, hostname="evil", version="0.1.0"))
    assert "runs version '0.2.0'" in ov._check_hello(
        _hello(rank=1, hostname="n1", version="0.2.0"))
    assert ov._check_hello(_hello(rank=1, hostname=7, version="0.1.0")) \
        == "malformed hello: hostname"
    assert ov._check_hello(Message.build(FLUX_MSGTYPE_REQUEST, HELLO, [1])) \
        == "malformed hello"


def test_a_middle_rank_knows_its_own_children():
    ov = _overlay(rank=1, size=7, k=2)  # children of 1 under kary:2: 3, 4
    assert ov.child_ranks == [3, 4]
    assert ov._check_hello(_hello(rank=4, hostname="h", version="0.1.0")) is None
    assert ov._check_hello(_hello(rank=5, hostname="h", version="0.1.0")) is not None


def test_version_key_and_process_mapping():
    assert version_key("0.88.1") == version_key("0.88.0") == "0.88"
    assert version_key(None) == "None"
    assert single_node("(vector,(0,1,4))", 4)
    assert not single_node("(vector,(0,2,2))", 4)
    assert not single_node("(vector,(0,1,2),(1,1,2))", 4)
    assert not single_node("", 4) and not single_node("garbage", 4)
