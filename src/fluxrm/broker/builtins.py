"""Services built into every broker.

RPC topics:

- ``broker.ping``            echo the payload, plus ``route`` and ``userid``
- ``broker.shutdown``        (owner) stop the instance
- ``broker.online`` {rank, hostname}  (owner, to rank 0) that rank has
                                          started its services
- ``broker.offline`` {ranks, reason, lost}  (owner, to rank 0) those ranks
                                          left or were lost: rank 0 marks
                                          them offline and publishes the
                                          event ``broker.offline``
- ``broker.torpid`` {ranks, torpid}     (owner, to rank 0) a rank stopped
                                          answering, or answers again: the
                                          event ``broker.torpid``
- ``attr.get``   {name}                  -> {value, flags}
- ``attr.set``   {name, value}           -> {}   (owner; immutable names: EPERM)
- ``attr.rm``    {name}                  -> {}   (owner)
- ``attr.list``                          -> {names}
- ``config.get``                         -> the instance configuration object
- ``config.load`` {the new configuration} -> (no payload) (owner) replace this
                                          broker's configuration (what
                                          ``flux config load`` sends; services
                                          that read it at start keep theirs)
- ``log.append`` {level, message, appname?} (usually no response)
- ``log.dmesg``  {follow?, nobacklog?}   streaming {timestamp, level, rank,
                                          appname, message}, ends ENODATA
- ``log.clear``                          -> {}   (owner)
- ``service.add`` (owner) / ``service.remove`` {service} register (remove) a
                                          service provided by the requesting
                                          client
- ``overlay.status``                     -> {size, topo, ranks: [{rank,
                                          parent, host, state}]}  (rank 0
                                          answers; state online or offline)
- ``event.pub``  {topic, payload?}       publish an event, -> {seq}
- ``event.subscribe`` / ``event.unsubscribe`` {topic}  -> {}: events whose
                                          topic starts with ``topic`` reach the
                                          requesting client from now on

The topics marked (owner) are owner-only (refused EPERM "Request requires
owner credentials"); the others allow guests.  Each is declared by
``request_handler`` on its method.

Request fields are read through ``fluxrm.broker.payload``: a missing or
wrongly typed field is EPROTO, an empty name EINVAL.  Payloads that are sent
back or on (``broker.ping``, ``event.pub``) may nest at most ``MAX_NESTING``
levels, and strings kept to be sent later (attribute names and values, log
lines) must be valid Unicode, so that they can always be encoded again.
"""

import errno
import os
import time

from fluxrm.broker import payload
from fluxrm.broker.service import Service, request_handler

ATTR_IMMUTABLE = 1
ATTR_RUNTIME = 2
MAX_NESTING = 64  # levels of arrays/objects in an echoed or published payload
LOG_LEVELS = (0, 7)  # LOG_EMERG .. LOG_DEBUG


def check_nesting(value, field):
    """Refuse (EPROTO) a JSON value nested deeper than ``MAX_NESTING``.

    Iterative, and quick for the usual flat payload.
    """
    stack = [(value, 1)]
    while stack:
        value, depth = stack.pop()
        if type(value) is dict:
            children = value.values()
        elif type(value) is list:
            children = value
        else:
            continue
        if depth > MAX_NESTING:
            raise OSError(errno.EPROTO, f"malformed request: {field}: nested "
                          f"deeper than {MAX_NESTING} levels")
        stack.extend((child, depth + 1) for child in children
                     if type(child) in (dict, list))


def stored_text(req, field, default=payload.MISSING, max_length=payload.STRING_MAX):
    """A string field kept and sent back later (an attribute, a log line).

    JSON text may carry a lone surrogate (``"\\ud800"``), which no message
    can encode: kept, it would break every later ``attr.list`` or ``dmesg``.
    """
    text = payload.string(req, field, default, max_length)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise OSError(errno.EPROTO, f"malformed request: {field}: "
                          "not valid Unicode") from None
    return text


def name_field(req, field, what):
    """A required non-empty string field (EPROTO if not a string)."""
    name = stored_text(req, field)
    if not name:
        raise OSError(errno.EINVAL, f"{what} must be a non-empty string")
    return name


class BrokerService(Service):
    name = "broker"

    @request_handler("ping", allow_guest=True)
    def ping(self, msg):
        echo = msg.get_object() or {}  # EPROTO if not JSON
        check_nesting(echo, "payload")
        if not isinstance(echo, dict):
            echo = {"data": echo}
        echo = dict(echo)
        echo["route"] = str(self.broker.rank)
        echo["userid"] = msg.userid
        echo["rolemask"] = msg.rolemask
        self.respond(msg, echo)

    @request_handler("shutdown")
    def shutdown(self, msg):
        self.respond(msg, {})
        self.broker.request_shutdown(0)

    @request_handler("online")
    def online(self, msg):
        """A rank of the instance has started its services (to rank 0)."""
        req = payload.request(msg)
        rank = payload.integer(req, "rank", lo=1, hi=self.broker.size - 1)
        hostname = payload.string(req, "hostname")
        self.broker.node_online(rank, hostname)

    @request_handler("offline")
    def offline(self, msg):
        """Ranks left the instance, or were lost (to rank 0, from the broker
        that saw it): ``{ranks, reason, lost}``."""
        req = payload.request(msg)
        ranks = self._ranks(req)
        reason = payload.string(req, "reason", "")
        lost = payload.boolean(req, "lost", True)
        self.broker.ranks_offline(ranks, reason, lost)

    @request_handler("torpid")
    def torpid(self, msg):
        """A rank stopped answering (``torpid: true``) or answers again."""
        req = payload.request(msg)
        self._ranks(req)
        torpid = payload.boolean(req, "torpid")
        self.broker.router.publish("broker.torpid", {"ranks": req["ranks"],
                                                     "torpid": torpid})

    def _ranks(self, req):
        from flux.idset import IDset

        text = payload.string(req, "ranks")
        try:
            ranks = list(IDset(text))
        except (OSError, ValueError, TypeError):
            raise OSError(errno.EPROTO, f"invalid ranks '{text}'") from None
        if not ranks or ranks[-1] >= self.broker.size or ranks[0] < 1:
            raise OSError(errno.EPROTO, f"ranks '{text}' out of range")
        return ranks

    async def start(self):
        if self.broker.rank != 0:
            # rank 0 sends the instance's host list once every rank is online
            self.broker.router.subscribe("broker.hostlist", self)

    def deliver_event(self, msg):
        if msg._topic == "broker.hostlist":
            hostlist = (msg.get_object() or {}).get("hostlist")
            if isinstance(hostlist, str):
                self.broker.attrs["hostlist"] = (hostlist, 0)


class AttrService(Service):
    name = "attr"

    @staticmethod
    def _name(req):
        return name_field(req, "name", "attribute name")

    @request_handler("get", allow_guest=True)
    def get(self, msg):
        name = self._name(payload.request(msg))
        entry = self.broker.attrs.get(name)
        if entry is None:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
        value, flags = entry
        self.respond(msg, {"value": value, "flags": flags})

    @request_handler("set")
    def set(self, msg):
        req = payload.request(msg)
        name = self._name(req)
        value = stored_text(req, "value")
        entry = self.broker.attrs.get(name)
        if entry is not None and entry[1] & ATTR_IMMUTABLE:
            raise OSError(errno.EPERM, f"attribute {name} is immutable")
        self.broker.attrs[name] = (value, ATTR_RUNTIME)
        self.respond(msg, {})

    @request_handler("rm")
    def rm(self, msg):
        name = self._name(payload.request(msg))
        entry = self.broker.attrs.get(name)
        if entry is None:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
        if entry[1] & ATTR_IMMUTABLE:
            raise OSError(errno.EPERM, f"attribute {name} is immutable")
        del self.broker.attrs[name]
        self.respond(msg, {})

    @request_handler("list", allow_guest=True)
    def list(self, msg):
        self.respond(msg, {"names": sorted(self.broker.attrs)})


class ConfigService(Service):
    name = "config"

    @request_handler("get", allow_guest=True)
    def get(self, msg):
        self.respond(msg, self.broker.config)

    @request_handler("load")
    def load(self, msg):
        config = payload.request(msg)
        check_nesting(config, "payload")
        self.broker.config = config
        self.respond(msg, None)  # no payload, as upstream


class LogService(Service):
    name = "log"

    def __init__(self, broker):
        super().__init__(broker)
        self.followers = {}  # (sender, matchtag) -> msg

    @request_handler("append", allow_guest=True)
    def append(self, msg):
        req = payload.request(msg, required=False)
        level = payload.integer(req, "level", 6, *LOG_LEVELS)
        text = stored_text(req, "message", "")
        appname = stored_text(req, "appname", "client", max_length=256)
        self.broker.log(level, text, appname=appname)
        if not msg.flags & 0x02:  # MSGFLAG_NORESPONSE
            self.respond(msg, {})

    @request_handler("dmesg", allow_guest=True)
    def dmesg(self, msg):
        req = payload.request(msg, required=False)
        nobacklog = payload.boolean(req, "nobacklog", False)
        follow = payload.boolean(req, "follow", False)
        if not nobacklog:
            for entry in list(self.broker.logbuf):
                self.respond(msg, entry)
        if follow:
            self.followers[(msg.sender, msg.matchtag)] = msg
        else:
            self.respond_error(msg, errno.ENODATA)

    @request_handler("clear")
    def clear(self, msg):
        self.broker.logbuf.clear()
        self.respond(msg, {})

    def new_entry(self, entry):
        """Called by the broker for each log entry: feed ``dmesg --follow``."""
        for (sender, _tag), msg in list(self.followers.items()):
            if sender.closed:
                del self.followers[(sender, _tag)]
            else:
                self.respond(msg, entry)

    def disconnect(self, sender):
        for key in [k for k in self.followers if k[0] is sender]:
            del self.followers[key]


class ServiceRegistry(Service):
    """Lets clients provide services (``h.service_register``)."""

    name = "service"

    @staticmethod
    def _service_name(msg):
        return name_field(payload.request(msg), "service", "service name")

    @request_handler("add")
    def add(self, msg):
        self.broker.router.register_client_service(self._service_name(msg), msg.sender)
        self.respond(msg, {})

    @request_handler("remove", allow_guest=True)
    def remove(self, msg):
        self.broker.router.unregister_client_service(self._service_name(msg), msg.sender)
        self.respond(msg, {})


class OverlayService(Service):
    """What rank 0 knows of the tree (the overlay itself is
    ``fluxrm.broker.overlay``, not a service)."""

    name = "overlay"

    @request_handler("status", allow_guest=True)
    def status(self, msg):
        broker = self.broker
        if broker.rank != 0:
            broker.router.forward_up(msg, msg.sender)
            return
        topo = broker.boot.topology
        ranks = []
        for rank in range(broker.size):
            host = broker.online.get(rank)
            ranks.append({
                "rank": rank,
                "parent": topo.parent(rank) if topo is not None else None,
                "host": host or "",
                "state": "online" if host is not None else "offline"})
        self.respond(msg, {"size": broker.size,
                           "topo": broker.attr("tbon.topo", "kary:32"),
                           "ranks": ranks})


class EventService(Service):
    name = "event"

    @staticmethod
    def _topic(msg):
        return payload.string(payload.request(msg), "topic")

    @request_handler("subscribe", allow_guest=True)
    def subscribe(self, msg):
        self.broker.router.subscribe(self._topic(msg), msg.sender)
        self.respond(msg, {})

    @request_handler("unsubscribe", allow_guest=True)
    def unsubscribe(self, msg):
        self.broker.router.unsubscribe(self._topic(msg), msg.sender)
        self.respond(msg, {})

    @request_handler("pub", allow_guest=True)
    def pub(self, msg):
        if self.broker.rank != 0:
            # rank 0 numbers events: it answers with the sequence number
            self.broker.router.forward_up(msg, msg.sender)
            return
        req = payload.request(msg)
        topic = name_field(req, "topic", "event.pub: topic")
        event = req.get("payload")
        check_nesting(event, "payload")
        self.broker.router.publish(topic, event)
        self.respond(msg, {"seq": self.broker.router.event_seq})


def log_entry(rank, level, appname, text):
    return {
        "timestamp": time.time(),
        "level": level,
        "rank": rank,
        "appname": appname,
        "message": text,
    }

