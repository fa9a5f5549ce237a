"""The job-manager declares its topics on its handlers, in the class and
its parts (``Journal``, ``Control``, ``Wait``, ``Purge``), with the access
rules it always had: ``wait``, ``raiseall``, ``purge`` and ``purge-id``
for the instance owner only, the others for any user (on their own jobs).
A guest is refused an owner-only topic by the router (no broker: a
router and an unstarted job-manager)."""

import errno

from flux.constants import (
    FLUX_MSGTYPE_REQUEST,
    FLUX_NODEID_ANY,
    FLUX_ROLE_LOCAL,
    FLUX_ROLE_USER,
)
from flux.message import Message
from fluxrm.broker.service import OWNER_ONLY_ERROR
from fluxrm.modules.job_manager import JobManager
from fakes import BrokerStub, Sender

GUEST = FLUX_ROLE_USER | FLUX_ROLE_LOCAL

OWNER_ONLY = {"job-manager.wait", "job-manager.raiseall", "job-manager.purge",
              "job-manager.purge-id", "job-manager.queue-enable",
              "job-manager.queue-start", "job-manager.drain",
              "job-manager.sched-hello", "job-manager.sched-ready"}
ANY_USER = {"job-manager.raise", "job-manager.kill", "job-manager.urgency",
            "job-manager.getinfo", "job-manager.events-journal",
            "job-manager.events-journal-cancel", "job-manager.queue-list",
            "job-manager.queue-status", "job-manager.idle", "job-manager.update",
            "job-manager.memo"}


def test_topics_and_access_rules():
    assert set(JobManager._topics) == OWNER_ONLY | ANY_USER
    assert JobManager.owner_only == OWNER_ONLY
    broker = BrokerStub()
    manager = JobManager(broker)
    # the handlers of the parts are bound to the one service
    assert manager.handlers["job-manager.purge"] == manager.h_purge
    assert manager.handlers["job-manager.events-journal"] == manager.h_journal
    assert manager.handlers["job-manager.wait"] == manager.h_wait


def test_a_guest_is_refused_owner_only_topics_by_the_router():
    broker = BrokerStub()
    broker.router.add_service(JobManager(broker))
    sender = Sender("guest-1")
    for topic in sorted(OWNER_ONLY):
        msg = Message.build(FLUX_MSGTYPE_REQUEST, topic, {}, matchtag=1,
                            nodeid=FLUX_NODEID_ANY)
        msg.rolemask, msg.userid = GUEST, 1234
        broker.router.dispatch(msg, sender)
        reply = sender.sent[-1]
        assert (reply.errnum, reply.errstr) == (errno.EPERM, OWNER_ONLY_ERROR), topic
    # a topic for any user reaches its handler
    msg = Message.build(FLUX_MSGTYPE_REQUEST, "job-manager.getinfo", {}, matchtag=2,
                        nodeid=FLUX_NODEID_ANY)
    msg.rolemask, msg.userid = GUEST, 1234
    broker.router.dispatch(msg, sender)
    reply = sender.sent[-1]
    assert reply.errnum == 0 and reply.payload == {"max_jobid": 0, "active": 0}
