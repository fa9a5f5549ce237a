"""job-exec as a service (no broker): its request topics are those of
jobs across ranks, ``job-exec.tasks`` (rank 0 -> another rank) and
``job-exec.report`` (another rank -> rank 0), both owner-only, and
``job-exec.pty-input`` (see test_pty.py); anything
else under ``job-exec.`` is ENOSYS (the job-manager talks with it in exec
protocol messages, see test_exec_protocol.py).  A request sent to the
wrong rank, or malformed, is answered with a clear error."""

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
from fluxrm.broker.service import OWNER_ONLY_ERROR
from fluxrm.modules.job_exec import JobExec

OWNER = FLUX_ROLE_OWNER | FLUX_ROLE_LOCAL | FLUX_ROLE_USER
GUEST = FLUX_ROLE_USER | FLUX_ROLE_LOCAL


class BrokerStub:
    def __init__(self, rank=0, size=1):
        self.rank = rank
        self.size = size
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


def ask(broker, topic, payload, rolemask=OWNER):
    broker.router.add_service(JobExec(broker))
    msg = Message.build(FLUX_MSGTYPE_REQUEST, topic, payload, matchtag=7,
                        nodeid=FLUX_NODEID_ANY)
    msg.rolemask = rolemask
    msg.userid = 1234
    sender = Sender()
    broker.router.dispatch(msg, sender)
    return sender.sent


def test_job_exec_declares_the_topics_of_jobs_across_ranks_owner_only():
    assert JobExec._topics == {"job-exec.tasks": "tasks", "job-exec.report": "report",
                               "job-exec.pty-input": "pty_input",
                               "job-exec.pmi-up": "pmi_up",
                               "job-exec.pmi-down": "pmi_down"}
    # a job's owner writes to its pty: checked per request
    assert JobExec.owner_only == frozenset(JobExec._topics) - {"job-exec.pty-input"}
    assert set(JobExec(BrokerStub()).handlers) == set(JobExec._topics)


@pytest.mark.parametrize("topic", ["job-exec.start", "job-exec.kill", "job-exec.handle"])
@pytest.mark.parametrize("rolemask", [OWNER, GUEST])
def test_another_request_to_job_exec_is_enosys(topic, rolemask):
    assert [m.errnum for m in ask(BrokerStub(), topic, {}, rolemask)] == [errno.ENOSYS]


@pytest.mark.parametrize("topic", ["job-exec.tasks", "job-exec.report",
                                   "job-exec.pmi-up", "job-exec.pmi-down"])
def test_a_guest_may_not_send_tasks_or_reports(topic):
    rsp, = ask(BrokerStub(1, 4), topic, {}, GUEST)
    assert (rsp.errnum, rsp.errstr) == (errno.EPERM, OWNER_ONLY_ERROR)


def test_tasks_go_to_ranks_other_than_0_and_reports_to_rank_0():
    rsp, = ask(BrokerStub(0, 4), "job-exec.tasks", {})
    assert rsp.errnum == errno.EINVAL and "rank 0" in rsp.errstr
    rsp, = ask(BrokerStub(2, 4), "job-exec.report", {"rank": 2})
    assert rsp.errnum == errno.EINVAL and "rank 0" in rsp.errstr
    rsp, = ask(BrokerStub(0, 1), "job-exec.report", {"rank": 2})
    assert rsp.errnum == errno.EINVAL  # an instance of one broker takes none


@pytest.mark.parametrize("body, field", [
    ({"start": "x"}, "start"),
    ({"start": [[1, 2, 3]]}, "start"),
    ({"specs": ["{}"], "start": [[1, 0, 5, {}, [0], 1, 1]]}, "start"),
    ({"specs": ["not json"]}, "JSON"),
    ({"specs": [7]}, "specs"),
    ({"kill": [[1, 99, True]]}, "kill"),
    ({"kill": [[1, 15]]}, "kill"),
])
def test_a_malformed_tasks_request_is_eproto(body, field):
    rsp, = ask(BrokerStub(1, 4), "job-exec.tasks", body)
    assert rsp.errnum == errno.EPROTO and field in rsp.errstr, rsp.errstr


@pytest.mark.parametrize("body, field", [
    ({}, "rank"),
    ({"rank": 9}, "rank"),
    ({"rank": 1, "started": "x"}, "started"),
    ({"rank": 1, "done": [[1]]}, "done"),
    ({"rank": 1, "done": [[1, 1 << 20]]}, "done"),
    ({"rank": 1, "failed": [[1, 2]]}, "failed"),
    ({"rank": 1, "output": [[1, "stdin", 0, b"x", False]]}, "output"),
    ({"rank": 1, "output": [[1, "stdout", 0, "text", False]]}, "output"),
])
def test_a_malformed_report_is_refused(body, field):
    rsp, = ask(BrokerStub(0, 4), "job-exec.report", body)
    assert rsp.errnum in (errno.EPROTO, errno.EINVAL) and field in rsp.errstr, \
        rsp.errstr


def test_a_report_about_jobs_not_running_here_is_ignored():
    # no response (a report asks for none), and no error either
    assert ask(BrokerStub(0, 4), "job-exec.report", {
        "rank": 1, "started": [5], "failed": [[5, "n"]], "done": [[5, 0]],
        "output": [[5, "stdout", 0, b"x", True]]}) == []
