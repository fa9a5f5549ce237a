"""``strsignal(signum)`` (``flux.compat36``): the C library's description of
a signal (``"Terminated"`` for 15).  Signal 0 or a number the C library
does not know raises a bare ``ValueError``, as upstream's."""

import signal

__all__ = ["strsignal"]


def strsignal(signum):
    signum = int(signum)
    if signum <= 0 or signum >= signal.NSIG:
        raise ValueError
    text = signal.strsignal(signum)
    if text is None:  # a number glibc reserves (32, 33) has no description
        raise ValueError
    return text
