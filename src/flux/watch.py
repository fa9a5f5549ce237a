"""``WatchImplementation``: the base of futures over a streaming watch RPC.

Shared by ``flux.kvs.KVSWatchFuture`` and the job eventlog watchers.  A
subclass wraps a streaming RPC future (it becomes a view sharing that
future's state, so ``then``/``reset``/``wait_for``/``is_ready`` act on the
stream) and implements two methods:

``watch_get()``
    decode the response at the head of the stream and return it (raising
    ``OSError`` for an error response);
``watch_cancel()``
    ask the server to end the stream (it answers with a final ENODATA).

On top of them this class provides:

``get(autoreset=True)``
    block for the next response and return ``watch_get()``; then, unless
    ``autoreset=False``, ``reset()`` so that the next call waits for the
    next response (with ``autoreset=False`` it returns the same response
    until ``reset()``).  Once the stream has ended with ENODATA (after
    ``cancel()``), it returns ``None``, on every later call too.  Other
    errors raise ``OSError(errno, <the future's error string>)``.
``cancel(stop=False)``
    send the cancel (once); ``stop=True`` also stops ``then`` callbacks.
Garbage collection of a watch that was neither cancelled nor ended sends
the cancel.
"""

import errno

from flux.future import Future


class WatchImplementation(Future):
    def __init__(self, future_handle):
        super().__init__(future_handle)
        self._watch_cancelled = False

    # -- to implement ------------------------------------------------------------
    def watch_get(self):
        raise NotImplementedError

    def watch_cancel(self):
        raise NotImplementedError

    # -- public --------------------------------------------------------------------
    def get(self, autoreset=True):
        try:
            value = self.watch_get()
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                return None
            raise
        if autoreset:
            self.reset()
        return value

    def cancel(self, stop=False):
        if not self._watch_cancelled and not self._state.final:
            self._watch_cancelled = True
            self.watch_cancel()
        if stop:
            self.stop()

    def __del__(self):
        try:
            st = self._state
            if not self._watch_cancelled and not st.final and st.handle is not None \
                    and (st.conn is None or st.conn.dead is None):
                self._watch_cancelled = True
                self.watch_cancel()
        except Exception:  # never raise from a finaliser
            pass
