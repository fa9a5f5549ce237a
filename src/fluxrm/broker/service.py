"""Base class of in-process broker services, and how they declare topics.

A service owns the request topics under its name (``kvs.get`` belongs to
``kvs``).  Its handlers are declared next to their code, as upstream's
``flux.brokermod`` does (spec §23.2)::

    class Attr(Service):
        name = "attr"

        @request_handler("get", allow_guest=True)   # topic attr.get
        def get(self, msg): ...

        @request_handler("set")                      # owner only
        def set(self, msg): ...

``request_handler(topic, prefix=True, allow_guest=False)`` only records
``{"topic", "prefix", "allow_guest"}`` on the function (``_flux_handler``)
and returns it unchanged.  The full topic is ``"<name>.<topic>"``, or
``topic`` as given with ``prefix=False`` (a service answering topics of
another first word, as the KVS answers ``kvs-watch.*`` and ``content.*``:
it is registered under those words too, see ``ServiceAlias``).

When a subclass is created its decorated methods, through the MRO, are
collected once into a table ``topic -> method name`` (``_topics``) and the
set of owner-only topics (``owner_only``); two methods claiming one topic is
a ``TypeError`` then.  A subclass overriding a decorated method by name,
decorated or not, keeps (or redeclares) the topic.  A class without a
``name`` (an abstract base) is resolved in each named subclass.
``Service.__init__`` binds the table into ``self.handlers`` (``topic ->
bound method``): dispatch is one dict lookup, as before.

**Requests are owner-only by default** (upstream's default rolemask);
``allow_guest=True`` lets any user in (the handler then checks, per request,
what a guest may do: its own jobs, its own namespace).  The router refuses
a request without ``FLUX_ROLE_OWNER`` to an owner-only topic with EPERM
``OWNER_ONLY_ERROR``, before the handler runs: the one place the check is
made.  ``handlers`` stays a plain dict: an entry added by hand (a service
not yet converted) is not in ``owner_only``, so such a handler checks its
caller itself (``require_owner``).

A handler may be a plain function or a coroutine function.  It answers
with ``self.respond(msg, payload)`` (several times for a streaming request,
ending with ``self.respond_error(msg, errno.ENODATA)``), or raises
``OSError(errno, text)``, which the router turns into an error response.
Request fields are read through ``fluxrm.broker.payload``, which raises such
an ``OSError`` (EPROTO or EINVAL, naming the field) for a bad request.  Any
other exception a handler raises is a bug: the router logs its traceback and
answers EIO "internal error in service <name>".  ``disconnect(sender)`` is
called when a client that sent requests to this service goes away, so the
service can drop its streams.
"""

import errno

from flux.constants import FLUX_ROLE_OWNER

# upstream's answer to a request whose rolemask its handler does not allow
OWNER_ONLY_ERROR = "Request requires owner credentials"


def request_handler(topic, prefix=True, allow_guest=False):
    """Declare the decorated method the handler of request ``topic``.

    ``prefix``: the topic is ``"<service name>.<topic>"`` (else as given);
    ``allow_guest``: users other than the instance owner may call it (the
    default is owner only).  The function is returned unchanged.
    """
    if not isinstance(topic, str) or not topic:
        raise TypeError("request_handler: topic must be a non-empty string")

    def decorate(func):
        func._flux_handler = {"topic": topic, "prefix": bool(prefix),
                              "allow_guest": bool(allow_guest)}
        return func

    return decorate


def _declared(value):
    """The ``_flux_handler`` metadata of a class attribute, or None."""
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    return getattr(value, "_flux_handler", None)


class Service:
    name = None
    _topics = {}  # topic -> method name (set per class, see __init_subclass__)
    owner_only = frozenset()  # topics refused to requests without FLUX_ROLE_OWNER
    _foreign = {}  # a first word other than name -> its topics

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        specs = {}  # method name -> its declaration, the most derived one
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                spec = _declared(value)
                if spec is not None:
                    specs[attr] = spec
        if cls.name is None:
            if any(spec["prefix"] for spec in specs.values()):
                cls._topics, cls.owner_only, cls._foreign = {}, frozenset(), {}
                return  # abstract: resolved in each named subclass
        topics, owner_only = {}, set()
        for attr, spec in specs.items():
            topic = spec["topic"]
            if spec["prefix"]:
                topic = f"{cls.name}.{topic}"
            other = topics.get(topic)
            if other is not None:
                raise TypeError(f"{cls.__qualname__}: topic {topic} is declared "
                                f"by both {other} and {attr}")
            topics[topic] = attr
            if not spec["allow_guest"]:
                owner_only.add(topic)
        cls._topics = topics
        cls.owner_only = frozenset(owner_only)
        words = {topic.partition(".")[0] for topic in topics}
        cls._foreign = {word: frozenset(t for t in topics if t.partition(".")[0] == word)
                        for word in words if word != cls.name}

    def __init__(self, broker):
        self.broker = broker
        self.handlers = {topic: getattr(self, attr)
                         for topic, attr in self._topics.items()}
        if self._foreign:
            # topics under other first words: route those words here too
            router = broker.router
            for word, topics in self._foreign.items():
                if word not in router.services:
                    router.add_service(ServiceAlias(self, word, topics))

    # lifecycle -----------------------------------------------------------
    async def start(self):
        """Called once after all services are constructed."""

    async def stop(self):
        """Called once at shutdown, in reverse start order."""

    def disconnect(self, sender):
        """A client that used this service has disconnected."""

    # helpers -------------------------------------------------------------
    def log(self, level, text):
        self.broker.log(level, f"{self.name}: {text}")

    @staticmethod
    def respond(msg, payload=None):
        sender = msg.sender
        if sender is not None and not sender.closed:
            sender.send(msg.response(payload))

    @staticmethod
    def respond_error(msg, errnum, errstr=None):
        sender = msg.sender
        if sender is not None and not sender.closed:
            sender.send(msg.response(errnum=errnum, errstr=errstr))

    @staticmethod
    def require_owner(msg):
        """Raise EPERM unless the request comes from the instance owner.

        For handlers registered by hand in ``handlers``; a declared handler
        is owner-only unless ``allow_guest`` (the router checks).
        """
        if not msg.rolemask & FLUX_ROLE_OWNER:
            raise OSError(errno.EPERM, OWNER_ONLY_ERROR)


class ServiceAlias:
    """The routing entry for topics of ``owner`` under another first word.

    Registered by ``Service.__init__`` (unless that word is taken) for each
    first word of ``prefix=False`` topics other than the service's name;
    its ``handlers`` are the owner's bound methods, and a client that used
    it going away is the owner's ``disconnect``.
    """

    def __init__(self, owner, name, topics):
        self.owner = owner
        self.name = name
        self.handlers = {topic: owner.handlers[topic] for topic in topics}
        self.owner_only = owner.owner_only & topics

    def disconnect(self, sender):
        self.owner.disconnect(sender)
