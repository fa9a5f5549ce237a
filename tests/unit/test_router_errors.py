"""What the router answers and logs when a handler raises (no broker).

A deliberate ``OSError`` is the answer; a ``RecursionError`` is a payload
nested too deeply (EPROTO); anything else is a bug in the service: its
traceback in the broker log at LOG_ERR and an EIO answer that says
"internal error in service <name>" without Python text, for plain and
coroutine handlers alike.
"""

import asyncio
import errno

import pytest

from flux.constants import FLUX_MSGTYPE_REQUEST, FLUX_NODEID_ANY
from flux.message import MSGFLAG_NORESPONSE, Message
from fluxrm.broker.router import LOG_ERR, Router
from fluxrm.broker.service import Service
from fakes import Sender


class BrokerStub:
    rank = 0

    def __init__(self):
        self.logged = []  # (level, text)

    def log(self, level, text, appname="broker"):
        self.logged.append((level, text))


class Boom(Service):
    name = "boom"

    def __init__(self, broker):
        super().__init__(broker)
        self.handlers = {
            "boom.key": self.h_key,
            "boom.type": self.h_type,
            "boom.value": self.h_value,
            "boom.enoent": self.h_enoent,
            "boom.deep": self.h_deep,
            "boom.ok": self.h_ok,
            "boom.coro": self.h_coro,
            "boom.coro-oserror": self.h_coro_oserror,
        }

    def h_key(self, msg):
        return {}["missing"]  # a bug: KeyError

    def h_type(self, msg):
        return None + 1  # a bug: TypeError

    def h_value(self, msg):
        return int("not a number")  # a bug: ValueError

    def h_enoent(self, msg):
        raise OSError(errno.ENOENT, "no such thing")

    def h_deep(self, msg):
        raise RecursionError("maximum recursion depth exceeded")

    def h_ok(self, msg):
        self.respond(msg, {"ok": True})

    async def h_coro(self, msg):
        await asyncio.sleep(0)
        raise KeyError("id")

    async def h_coro_oserror(self, msg):
        await asyncio.sleep(0)
        raise OSError(errno.EPERM, "not yours")


@pytest.fixture
def setup():
    broker = BrokerStub()
    router = Router(broker)
    router.add_service(Boom(broker))
    return broker, router, Sender()


def request(topic, flags=0):
    return Message.build(FLUX_MSGTYPE_REQUEST, topic, {}, matchtag=7,
                         nodeid=FLUX_NODEID_ANY, flags=flags)


def errors_logged(broker):
    return [text for level, text in broker.logged if level <= LOG_ERR]


@pytest.mark.parametrize("topic, exc_name", [("boom.key", "KeyError"),
                                              ("boom.type", "TypeError"),
                                              ("boom.value", "ValueError")])
def test_bug_is_logged_and_answered_as_internal_error(setup, topic, exc_name):
    broker, router, sender = setup
    router.dispatch(request(topic), sender)
    [rsp] = sender.sent
    assert rsp.matchtag == 7
    assert rsp.errnum == errno.EIO
    assert rsp.errstr == f"{topic}: internal error in service boom (see the broker log)"
    [line] = errors_logged(broker)
    assert line.startswith(f"boom: internal error handling {topic}: Traceback")
    assert f"in h_{topic.split('.')[1]}" in line  # the handler's frame
    assert f"\n{exc_name}: " in line
    # the service goes on answering
    router.dispatch(request("boom.ok"), sender)
    assert sender.sent[-1].errnum == 0 and sender.sent[-1].payload == {"ok": True}


def test_deliberate_oserror_is_the_answer_and_not_logged(setup):
    broker, router, sender = setup
    router.dispatch(request("boom.enoent"), sender)
    [rsp] = sender.sent
    assert (rsp.errnum, rsp.errstr) == (errno.ENOENT, "no such thing")
    assert errors_logged(broker) == []


def test_recursion_is_a_payload_nested_too_deeply(setup):
    broker, router, sender = setup
    router.dispatch(request("boom.deep"), sender)
    [rsp] = sender.sent
    assert rsp.errnum == errno.EPROTO
    assert rsp.errstr == "boom.deep: payload is nested too deeply"
    assert errors_logged(broker) == []


def test_bug_without_response_is_still_logged(setup):
    broker, router, sender = setup
    router.dispatch(request("boom.key", flags=MSGFLAG_NORESPONSE), sender)
    assert sender.sent == []
    [line] = errors_logged(broker)
    assert "KeyError" in line


@pytest.mark.parametrize("topic, errnum, errstr, logged", [
    ("boom.coro", errno.EIO,
     "boom.coro: internal error in service boom (see the broker log)", True),
    ("boom.coro-oserror", errno.EPERM, "not yours", False),
])
def test_coroutine_handler(setup, topic, errnum, errstr, logged):
    broker, router, sender = setup

    async def scenario():
        sender.arrived = asyncio.get_running_loop().create_future()
        router.dispatch(request(topic), sender)
        return await asyncio.wait_for(sender.arrived, 10)

    rsp = asyncio.run(scenario())
    assert (rsp.errnum, rsp.errstr) == (errnum, errstr)
    lines = errors_logged(broker)
    if logged:
        [line] = lines
        assert line.startswith(f"boom: internal error handling {topic}: Traceback")
        assert "in h_coro" in line and "\nKeyError: 'id'" in line
    else:
        assert lines == []
    assert not router._tasks
