"""Reactor watchers: timer, fd, signal, prepare, check, idle and message.

Watchers are created stopped; ``start()`` returns the watcher (``None`` for
message watchers, as upstream).  A started, referenced watcher keeps
``reactor_run()`` going.  Watchers register with their handle when created,
so a started watcher keeps firing with no Python reference until
``destroy()``.  An exception raised by a callback stops the reactor with an
error and is re-raised by ``reactor_run()``.
"""

import errno
import fnmatch
import selectors
import signal as _signal
import time

from flux.constants import (
    FLUX_POLLIN,
    FLUX_POLLOUT,
    FLUX_POLLERR,
    FLUX_MSGTYPE_ANY,
    FLUX_MATCHTAG_NONE,
    FLUX_ROLE_OWNER,
)
from flux.core.reactor import signal_dispatcher


class Watcher:
    def __init__(self, handle, callback, args=None):
        self.handle = handle
        self.reactor = handle._reactor
        self.callback = callback
        self.args = args
        self.active = False
        self.referenced = True
        self.destroyed = False
        handle._watchers.add(self)

    # control -------------------------------------------------------------------
    def start(self):
        if not self.active and not self.destroyed:
            self.active = True
            if self.referenced:
                self.reactor.ref()
            self._start()
        return self

    def stop(self):
        if self.active:
            self.active = False
            if self.referenced:
                self.reactor.unref()
            self._stop()
        return self

    def ref(self):
        if not self.referenced:
            self.referenced = True
            if self.active:
                self.reactor.ref()
        return self

    def unref(self):
        if self.referenced:
            self.referenced = False
            if self.active:
                self.reactor.unref()
        return self

    def destroy(self):
        if self.destroyed:
            return
        self.stop()
        self.destroyed = True
        self.handle._watchers.discard(self)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def __del__(self):
        pass

    # hooks -------------------------------------------------------------------
    def _start(self):
        pass

    def _stop(self):
        pass

    def _call(self, *cbargs):
        try:
            self.callback(self.handle, self, *cbargs, self.args)
        except BaseException as exc:
            self.reactor.fail(exc)


class TimerWatcher(Watcher):
    def __init__(self, handle, after, callback, repeat=0.0, args=None):
        if after < 0 or repeat < 0:
            raise OSError(errno.EINVAL, "timer values must be non-negative")
        super().__init__(handle, callback, args)
        self.after = float(after)
        self.repeat = float(repeat)
        self._entry = None

    def _start(self):
        self._entry = self.reactor.add_timer(time.monotonic() + self.after, self)

    def _stop(self):
        if self._entry is not None:
            self._entry[2] = None
            self._entry = None

    def reset(self, after=None, repeat=None):
        if after is not None:
            self.after = float(after)
        if repeat is not None:
            self.repeat = float(repeat)
        if self.active:
            self._stop()
            self._start()
        return self

    def _expire(self, reactor):
        self._entry = None
        if self.repeat > 0:
            self._entry = reactor.add_timer(time.monotonic() + self.repeat, self)
        else:
            self.stop()
        self._call(0)


class FDWatcher(Watcher):
    def __init__(self, handle, fd, events, callback, args=None):
        super().__init__(handle, callback, args)
        self.fd = fd
        self.events = events

    def selector_events(self):
        ev = 0
        if self.events & (FLUX_POLLIN | FLUX_POLLERR):
            ev |= selectors.EVENT_READ
        if self.events & FLUX_POLLOUT:
            ev |= selectors.EVENT_WRITE
        return ev

    def _start(self):
        self.reactor.add_fd(self)

    def _stop(self):
        self.reactor.remove_fd(self)

    def _ready(self, reactor, mask):
        revents = 0
        if mask & selectors.EVENT_READ:
            revents |= FLUX_POLLIN
        if mask & selectors.EVENT_WRITE:
            revents |= FLUX_POLLOUT
        self._call(self.fd, revents)


class SignalWatcher(Watcher):
    def __init__(self, handle, signum, callback, args=None):
        if not isinstance(signum, int) or signum < 1 or signum >= _signal.NSIG:
            raise OSError(errno.EINVAL, "invalid signal number")
        super().__init__(handle, callback, args)
        self.signum = signum
        self.fd = signal_dispatcher().rfd

    def selector_events(self):
        return selectors.EVENT_READ

    def _start(self):
        signal_dispatcher().add(self)
        self.reactor.add_fd(self)

    def _stop(self):
        signal_dispatcher().remove(self)
        self.reactor.remove_fd(self)

    def _ready(self, reactor, mask):
        dispatcher = signal_dispatcher()
        for signum in dispatcher.drain():
            for w in list(dispatcher.watchers.get(signum, ())):
                if w.active:
                    w.reactor.call_soon(w._call, signum)


class _ListWatcher(Watcher):
    listname = None

    def _start(self):
        getattr(self.reactor, self.listname).append(self)

    def _stop(self):
        lst = getattr(self.reactor, self.listname)
        if self in lst:
            lst.remove(self)

    def _fire(self, reactor):
        self._call(0)


class PrepareWatcher(_ListWatcher):
    listname = "prepare"


class CheckWatcher(_ListWatcher):
    listname = "check"


class IdleWatcher(_ListWatcher):
    listname = "idle"


class MessageWatcher(Watcher):
    """Delivers matching incoming messages: ``cb(handle, watcher, msg, args)``."""

    def __init__(self, handle, callback, type_mask=FLUX_MSGTYPE_ANY, topic_glob="*",
                 args=None, match_tag=FLUX_MATCHTAG_NONE, rolemask=None):
        if isinstance(topic_glob, bytes):
            topic_glob = topic_glob.decode()
        if not isinstance(topic_glob, str):
            raise TypeError("topic_glob must be a str or bytes")
        super().__init__(handle, callback, args)
        self.type_mask = type_mask
        self.topic_glob = topic_glob
        self.match_tag = match_tag
        self.rolemask = FLUX_ROLE_OWNER if rolemask is None else rolemask
        self._plain = not any(c in topic_glob for c in "*?[")

    def matches(self, msg):
        if not msg.type & self.type_mask:
            return False
        if self.match_tag and msg.matchtag != self.match_tag:
            return False
        topic = msg._topic or ""
        if self.topic_glob == "*":
            return True
        if self._plain:
            return topic == self.topic_glob
        return fnmatch.fnmatchcase(topic, self.topic_glob)

    def start(self):
        super().start()
        return None

    def stop(self):
        super().stop()
        return None

    def _start(self):
        self.handle._conn.msg_watchers.append(self)

    def _stop(self):
        watchers = self.handle._conn.msg_watchers
        if self in watchers:
            watchers.remove(self)

    def deliver(self, msg):
        self.reactor.call_soon(self._fire_msg, msg)

    def _fire_msg(self, msg):
        if self.active:
            self.callback(self.handle, self, msg, self.args)
