"""job-exec as a service (no broker): it declares no request topics (it
talks with the job-manager in exec protocol messages only, see
test_exec_protocol.py), so a request to ``job-exec.*`` is ENOSYS, from the
owner as from a guest, and no handler is filled in by hand."""

import errno

import pytest

from flux.constants import (
    FLUX_MSGTYPE_REQUEST,
    FLUX_NODEID_ANY,
    FLUX_ROLE_LOCAL,
    FLUX_ROLE_OWNER,
    FLUX_ROLE_USER,
)
from flux.message import Message
from fluxrm.broker.router import Router
from fluxrm.modules.job_exec import JobExec


class BrokerStub:
    rank = 0

    def __init__(self):
        self.router = Router(self)

    def log(self, level, text, appname="broker"):
        pass


class Sender:
    ident = "client-1"
    closed = False

    def __init__(self):
        self.services_used = set()
        self.sent = []

    def send(self, msg):
        self.sent.append(msg)


def test_job_exec_declares_no_topics():
    assert JobExec._topics == {}
    assert JobExec.owner_only == frozenset()
    assert JobExec(BrokerStub()).handlers == {}


@pytest.mark.parametrize("topic", ["job-exec.start", "job-exec.kill", "job-exec.handle"])
@pytest.mark.parametrize("rolemask", [
    FLUX_ROLE_OWNER | FLUX_ROLE_LOCAL | FLUX_ROLE_USER,
    FLUX_ROLE_USER | FLUX_ROLE_LOCAL,
])
def test_a_request_to_job_exec_is_enosys(topic, rolemask):
    broker = BrokerStub()
    broker.router.add_service(JobExec(broker))
    msg = Message.build(FLUX_MSGTYPE_REQUEST, topic, {}, matchtag=7,
                        nodeid=FLUX_NODEID_ANY)
    msg.rolemask = rolemask
    msg.userid = 1234
    sender = Sender()
    broker.router.dispatch(msg, sender)
    assert [m.errnum for m in sender.sent] == [errno.ENOSYS]
