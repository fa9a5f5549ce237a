"""resource.sched-status asks sched with a request through the router and
answers when sched answers (broker.rpc); a real Router, stand-in services,
no broker process."""

import errno

from flux.constants import (
    FLUX_MSGTYPE_REQUEST,
    FLUX_NODEID_ANY,
    FLUX_ROLE_LOCAL,
    FLUX_ROLE_USER,
)
from flux.message import Message
from fluxrm.broker.service import Service, request_handler
from fluxrm.modules.resource import ResourceService, make_R
from fakes import BrokerStub, Sender

GUEST = FLUX_ROLE_USER | FLUX_ROLE_LOCAL
HELD = make_R({0: ([0, 1], [])}, {0: "node0"})


class SchedStandIn(Service):
    """Answers sched.resource-status as told: a set, an error, a bug, or later."""

    name = "sched"

    def __init__(self, broker, answer):
        super().__init__(broker)
        self.answer = answer
        self.asked = []

    @request_handler("resource-status", allow_guest=True)
    def h_status(self, msg):
        self.asked.append((msg.userid, msg.rolemask))
        if isinstance(self.answer, Exception):
            raise self.answer
        if self.answer == "later":
            self.later = msg
            return
        self.respond(msg, self.answer)


def ask(sched_answer=None, with_sched=True):
    broker = BrokerStub({"resource.cores": "4"})
    resource = ResourceService(broker)
    broker.router.add_service(resource)
    sched = None
    if with_sched:
        sched = SchedStandIn(broker, sched_answer)
        broker.router.add_service(sched)
    client = Sender()
    msg = Message.build(FLUX_MSGTYPE_REQUEST, "resource.sched-status", None,
                        matchtag=7, nodeid=FLUX_NODEID_ANY)
    msg.userid, msg.rolemask = 4321, GUEST
    broker.router.dispatch(msg, client)
    return client.sent, sched, broker


def test_answer_holds_scheds_allocated_set():
    sent, sched, _ = ask({"all": {}, "allocated": HELD, "down": {}})
    (rsp,) = sent
    assert rsp.errnum == 0 and rsp.matchtag == 7
    answer = rsp.get_object()
    assert answer["allocated"] == HELD
    assert answer["all"]["execution"]["R_lite"] == [
        {"rank": "0", "children": {"core": "0-3"}}]
    assert answer["down"]["execution"]["R_lite"] == []
    assert sched.asked == [(4321, GUEST)]  # asked as the requester


def test_answer_waits_for_sched():
    sent, sched, _ = ask("later")
    assert sent == []
    sched.respond(sched.later, {"allocated": HELD})
    sched.respond(sched.later, {"allocated": {}})  # a second answer is dropped
    (rsp,) = sent
    assert rsp.get_object()["allocated"] == HELD


def test_no_scheduler_means_nothing_allocated():
    sent, _, _ = ask(with_sched=False)
    (rsp,) = sent
    assert rsp.errnum == 0
    assert rsp.get_object()["allocated"]["execution"]["R_lite"] == []


def test_scheds_errors_reach_the_requester():
    sent, _, _ = ask(OSError(errno.EAGAIN, "not ready"))
    (rsp,) = sent
    assert (rsp.errnum, rsp.errstr) == (errno.EAGAIN, "not ready")
    sent, _, broker = ask(KeyError("bug"))
    (rsp,) = sent
    assert rsp.errnum == errno.EIO
    assert "internal error in service sched" in rsp.errstr
    assert any("KeyError" in text for _, text in broker.logged)
    for bad in ({"allocated": None}, {"x": 1}, [1]):
        sent, _, _ = ask(bad)
        (rsp,) = sent
        assert rsp.errnum == errno.EPROTO
        assert rsp.errstr == "sched.resource-status: no allocated set in the answer"
