"""Services declare their topics on their handlers (no broker).

``request_handler(topic, prefix=True, allow_guest=False)``, as upstream's
``flux.brokermod``: the topic is "<name>.<topic>" (or as given with
``prefix=False``), collected once per class into ``handlers``; requests are
owner-only unless ``allow_guest``, refused by the router with EPERM
"Request requires owner credentials" before the handler runs.  A guest
cannot connect to the socket, so the access rule is tried here with
messages whose rolemask lacks FLUX_ROLE_OWNER.
"""

import errno
import importlib

import pytest

from flux.constants import (
    FLUX_MSGTYPE_REQUEST,
    FLUX_NODEID_ANY,
    FLUX_ROLE_LOCAL,
    FLUX_ROLE_OWNER,
    FLUX_ROLE_USER,
)
from flux.message import MSGFLAG_NORESPONSE, Message
from fluxrm.broker.service import (
    OWNER_ONLY_ERROR,
    Service,
    ServiceAlias,
    request_handler,
)
from fluxrm.broker.services import SERVICES
from fakes import BrokerStub, Sender

OWNER = FLUX_ROLE_OWNER | FLUX_ROLE_LOCAL | FLUX_ROLE_USER
GUEST = FLUX_ROLE_USER | FLUX_ROLE_LOCAL


class Demo(Service):
    name = "demo"

    def __init__(self, broker):
        super().__init__(broker)
        self.calls = []

    @request_handler("secret")
    def h_secret(self, msg):
        self.calls.append("secret")
        self.respond(msg, {"secret": 42})

    @request_handler("mine", allow_guest=True)
    def h_mine(self, msg):
        self.calls.append("mine")
        self.respond(msg, {"userid": msg.userid})

    @request_handler("demo-watch.follow", prefix=False, allow_guest=True)
    def h_follow(self, msg):
        self.calls.append("follow")
        self.respond(msg, {})

    def not_a_handler(self, msg):
        raise AssertionError("never routed")


def request(topic, rolemask, flags=0):
    msg = Message.build(FLUX_MSGTYPE_REQUEST, topic, {}, matchtag=3,
                        nodeid=FLUX_NODEID_ANY, flags=flags)
    msg.rolemask = rolemask
    msg.userid = 1234
    return msg


@pytest.fixture
def setup():
    broker = BrokerStub()
    svc = Demo(broker)
    broker.router.add_service(svc)
    return broker.router, svc, Sender()


# -- declaration ------------------------------------------------------------------
def test_decorator_only_records_metadata():
    def f(self, msg):
        pass

    assert request_handler("x", allow_guest=True)(f) is f
    assert f._flux_handler == {"topic": "x", "prefix": True, "allow_guest": True}
    with pytest.raises(TypeError):
        request_handler("")


def test_topics_are_collected_once_per_class(setup):
    router, svc, _ = setup
    assert Demo._topics == {"demo.secret": "h_secret", "demo.mine": "h_mine",
                            "demo-watch.follow": "h_follow"}
    assert svc.handlers == {"demo.secret": svc.h_secret, "demo.mine": svc.h_mine,
                            "demo-watch.follow": svc.h_follow}
    # bound methods in a plain dict: dispatch is one lookup
    assert svc.handlers["demo.secret"].__self__ is svc
    assert Demo.owner_only == frozenset({"demo.secret"})


def test_a_topic_under_another_word_routes_to_the_service(setup):
    router, svc, sender = setup
    alias = router.services["demo-watch"]
    assert isinstance(alias, ServiceAlias) and alias.owner is svc
    assert alias.handlers == {"demo-watch.follow": svc.h_follow}
    router.dispatch(request("demo-watch.follow", GUEST), sender)
    assert sender.sent[-1].errnum == 0 and svc.calls == ["follow"]


def test_duplicate_topic_is_an_error_at_class_creation():
    with pytest.raises(TypeError, match="topic dup.x is declared by both a and b"):
        class Dup(Service):
            name = "dup"

            @request_handler("x")
            def a(self, msg):
                pass

            @request_handler("dup.x", prefix=False)
            def b(self, msg):
                pass


def test_subclass_inherits_overrides_and_adds():
    class Base(Service):
        name = "base"

        @request_handler("get", allow_guest=True)
        def h_get(self, msg):
            return "base get"

        @request_handler("set")
        def h_set(self, msg):
            return "base set"

    class Derived(Base):
        def h_get(self, msg):  # overridden undecorated: keeps topic and rule
            return "derived get"

        @request_handler("put")  # redeclared: a new topic, owner only
        def h_set(self, msg):
            return "derived put"

        @request_handler("extra", allow_guest=True)
        def h_extra(self, msg):
            return "extra"

    d = Derived(BrokerStub())
    assert set(d.handlers) == {"base.get", "base.put", "base.extra"}
    assert d.handlers["base.get"](None) == "derived get"
    assert d.handlers["base.put"](None) == "derived put"
    assert Derived.owner_only == frozenset({"base.put"})
    assert set(Base(BrokerStub()).handlers) == {"base.get", "base.set"}

    class Renamed(Base):
        name = "renamed"  # prefixed topics follow the subclass's name

    assert set(Renamed._topics) == {"renamed.get", "renamed.set"}

    with pytest.raises(TypeError, match="declared by both"):
        class Clash(Base):
            @request_handler("get")  # a second method for base.get
            def h_other(self, msg):
                pass


def test_abstract_base_is_resolved_in_named_subclasses():
    class Stats(Service):  # no name: like upstream's "<module>.stats-get"
        @request_handler("stats-get")
        def h_stats(self, msg):
            pass

    class A(Stats):
        name = "a"

    class B(Stats):
        name = "b"

    assert Stats._topics == {}
    assert A._topics == {"a.stats-get": "h_stats"}
    assert B.owner_only == frozenset({"b.stats-get"})


# -- the access rule, at the router -------------------------------------------------------
def test_owner_only_by_default_refuses_a_guest(setup):
    router, svc, sender = setup
    router.dispatch(request("demo.secret", GUEST), sender)
    [rsp] = sender.sent
    assert (rsp.errnum, rsp.errstr) == (errno.EPERM, OWNER_ONLY_ERROR)
    assert rsp.matchtag == 3
    assert svc.calls == []  # refused before the handler ran


def test_owner_may_call_owner_only(setup):
    router, svc, sender = setup
    router.dispatch(request("demo.secret", OWNER), sender)
    [rsp] = sender.sent
    assert rsp.errnum == 0 and rsp.payload == {"secret": 42}


def test_guest_allowed_topic(setup):
    router, svc, sender = setup
    router.dispatch(request("demo.mine", GUEST), sender)
    [rsp] = sender.sent
    assert rsp.errnum == 0 and rsp.payload == {"userid": 1234}


def test_refusal_without_response_sends_nothing(setup):
    router, svc, sender = setup
    router.dispatch(request("demo.secret", GUEST, flags=MSGFLAG_NORESPONSE), sender)
    assert sender.sent == [] and svc.calls == []


def test_unknown_topic_is_enosys_even_for_a_guest(setup):
    router, svc, sender = setup
    router.dispatch(request("demo.not_a_handler", GUEST), sender)
    assert sender.sent[-1].errnum == errno.ENOSYS


def test_handlers_filled_by_hand_still_work(setup):
    router, _, sender = setup

    class Manual(Service):
        name = "manual"

        def __init__(self, broker):
            super().__init__(broker)
            self.handlers = {"manual.x": self.h_x}

        def h_x(self, msg):
            self.require_owner(msg)  # its own check
            self.respond(msg, {})

    router.add_service(Manual(BrokerStub()))
    router.dispatch(request("manual.x", OWNER), sender)
    assert sender.sent[-1].errnum == 0
    router.dispatch(request("manual.x", GUEST), sender)
    assert (sender.sent[-1].errnum, sender.sent[-1].errstr) == (errno.EPERM,
                                                                OWNER_ONLY_ERROR)


# -- the services themselves ---------------------------------------------------------
def service_classes():
    for spec in SERVICES:
        modname, _, clsname = spec.partition(":")
        yield getattr(importlib.import_module(modname), clsname)


def test_services_list_is_complete_and_ordered():
    names = [cls.name for cls in service_classes()]
    assert names[:8] == ["broker", "attr", "config", "log", "service", "event",
                         "overlay", "rexec"]
    assert names[8:] == ["kvs", "resource", "sched", "job-exec", "job-manager",
                         "job-ingest", "job-info", "job-list", "module"]


# today's access rule of each converted topic: only these are owner-only
OWNER_ONLY = {
    "broker.shutdown", "attr.set", "attr.rm", "log.clear", "service.add",
    "kvs.namespace-create", "kvs.namespace-remove",
    "broker.online", "broker.offline", "broker.torpid", "rexec.exec", "rexec.kill",
    "rexec.wait", "rexec.list",
    "resource.register",
    "resource.acquire", "resource.drain", "resource.undrain",
    "config.load",
}
CONVERTED = ("broker", "attr", "config", "log", "service", "event", "overlay",
             "rexec", "kvs",
             "resource", "sched", "job-ingest", "job-info", "job-list")


def test_converted_services_keep_their_access_rules():
    declared = {}
    for cls in service_classes():
        if cls.name in CONVERTED:
            declared.update(dict.fromkeys(cls._topics, cls))
            assert cls.owner_only <= OWNER_ONLY
    assert OWNER_ONLY <= set(declared)
    assert {"kvs-watch.lookup", "content.flush", "content.dropcache",
            "content-backing.checkpoint-get", "job-ingest.submit",
            "job-list.list", "job-info.lookup", "resource.status",
            "event.subscribe", "broker.ping"} <= set(declared)
