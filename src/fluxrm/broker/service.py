"""Base class of in-process broker services.

A service owns the request topics under its name (``kvs.get`` belongs to
``kvs``).  Subclasses fill ``self.handlers`` with ``topic -> callable(msg)``
in ``__init__``; a handler may be a plain function or a coroutine function.
A handler answers with ``self.respond(msg, payload)`` (several times for a
streaming request, ending with ``self.respond_error(msg, errno.ENODATA)``),
or raises ``OSError(errno, text)``, which the router turns into an error
response.  Request fields are read through ``fluxrm.broker.payload``, which
raises such an ``OSError`` (EPROTO or EINVAL, naming the field) for a bad
request.  Any other exception a handler raises is a bug: the router logs its
traceback and answers EIO "internal error in service <name>".
``disconnect(sender)`` is called when a client that sent requests to this
service goes away, so the service can drop its streams.
"""

import errno
import os


class Service:
    name = None

    def __init__(self, broker):
        self.broker = broker
        self.handlers = {}

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
        """Raise EPERM unless the request comes from the instance owner."""
        from flux.constants import FLUX_ROLE_OWNER

        if not msg.rolemask & FLUX_ROLE_OWNER:
            raise OSError(errno.EPERM, os.strerror(errno.EPERM))
