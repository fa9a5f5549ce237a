"""Method decorators of `flux.util`: `check_future_error` and
`interruptible`."""

import signal
import threading
from functools import wraps


def check_future_error(func):
    """Decorate a method of a future: an `OSError` raised by the method is
    re-raised with the same errno and the future's ``error_string()`` as
    its message, when the future has one."""

    @wraps(func)
    def wrapper(calling_obj, *args, **kwargs):
        try:
            return func(calling_obj, *args, **kwargs)
        except OSError as exc:
            try:
                message = calling_obj.error_string()
            except Exception:  # noqa: BLE001 - no usable error string
                message = None
            if not message or message == exc.strerror:
                raise
            raise OSError(exc.errno, message) from exc

    return wrapper


def interruptible(func):
    """Let Ctrl-C interrupt a blocking call made on the main thread.

    While the call runs, SIGINT gets Python's default handling (raising
    `KeyboardInterrupt`), whatever handler was installed; the previous
    handler is restored afterwards. Upstream installs ``SIG_DFL`` here
    because its blocking calls are in C; ours are Python code, which
    the default Python handler interrupts without killing the process.
    On other threads the call runs unchanged (signal handlers can only
    be set from the main thread).
    """

    @wraps(func)
    def wrapper(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            return func(*args, **kwargs)
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            return func(*args, **kwargs)
        finally:
            signal.signal(signal.SIGINT, previous)

    return wrapper
