"""A status line kept at the bottom of a vt100 terminal, and a progress bar
drawn in it.

- ``ElapsedTime(start=None, clock=time.time)``: time since ``start``;
  ``format(e)`` is ``H:MM:SS``, ``format(e, "dhms")`` the short form of
  ``flux.util.fsd`` (``1.5m``, ``1.035h``), any other spec formats the seconds as a
  float (``format(e, ".1f")``).  ``.elapsed`` is the seconds.
- ``Bottombar(formatter, stream=sys.stdout, handle=None, interval=0.25,
  **fields)``: ``formatter`` is a format string or a callable
  ``formatter(bar, width) -> str`` (``bar.fields`` holds the fields).
  ``start()`` reserves the terminal's last line (a scroll region above it,
  so other output scrolls normally); ``update(**fields)`` changes fields
  and redraws; ``stop()`` gives the line back, leaving the final text on
  it.  With ``handle``, an unref'd timer of that handle also redraws every
  ``interval`` seconds (for clocks).  When ``stream`` is not a terminal
  nothing is drawn.
- ``ProgressBar(total, style="default", before="", after="",
  autostop=True, **kw)``: a ``Bottombar`` whose line is ``before``, the
  bar, then ``after``.  ``before``/``after`` are format strings with the
  fields ``count``, ``total``, ``percent`` (0-100), ``elapsed``
  (an ``ElapsedTime``) and any given to the constructor or ``update``.
  ``update(advance=1, **fields)`` counts; reaching ``total`` stops the bar
  when ``autostop``.  Styles: ``default`` (``│███   │``) and ``ascii``
  (``[###...]``); another raises ``ValueError``.  ``kw`` are passed to
  ``Bottombar`` (``stream``, ``handle``, ``interval``, fields).
"""

import os
import sys
import time

from flux.util import fsd

__all__ = ["Bottombar", "ElapsedTime", "ProgressBar"]

DEFAULT_SIZE = (80, 24)


class ElapsedTime:
    """Seconds since a start time, formattable."""

    def __init__(self, start=None, clock=time.time):
        self.clock = clock
        self.start = clock() if start is None else start

    @property
    def elapsed(self):
        return max(self.clock() - self.start, 0.0)

    def __format__(self, spec):
        seconds = self.elapsed
        if not spec:
            whole = int(seconds)
            return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
        if spec == "dhms":
            return fsd(seconds)
        return format(seconds, spec)

    def __str__(self):
        return format(self)


class Bottombar:
    """The last line of a vt100 terminal, kept for a status line."""

    def __init__(self, formatter, stream=None, handle=None, interval=0.25, **fields):
        if not (isinstance(formatter, str) or callable(formatter)):
            raise TypeError("formatter must be a format string or a callable")
        self.formatter = formatter
        self.stream = sys.stdout if stream is None else stream
        self.handle = handle
        self.interval = interval
        self.fields = dict(fields)
        self.timer = None
        self.active = False
        try:
            self.isatty = self.stream.isatty()
        except (AttributeError, ValueError):
            self.isatty = False

    def size(self):
        """``(columns, rows)`` of the terminal."""
        try:
            cols, rows = os.get_terminal_size(self.stream.fileno())
        except (AttributeError, ValueError, OSError):
            return DEFAULT_SIZE
        return (cols, rows) if cols > 0 and rows > 1 else DEFAULT_SIZE

    def text(self, width):
        """The status line for ``width`` columns (cut to fit)."""
        if callable(self.formatter):
            line = self.formatter(self, width)
        else:
            line = self.formatter.format(**self.fields)
        return line[:width]

    def _write(self, data):
        self.stream.write(data)
        self.stream.flush()

    def start(self):
        if self.active:
            return self
        self.active = True
        if self.isatty:
            _, rows = self.size()
            # Scroll once so the cursor is not on the last line, then keep
            # rows 1..rows-1 for ordinary output.
            self._write(f"\n\0337\033[1;{rows - 1}r\0338\033[1A")
            self.redraw()
        if self.handle is not None and self.timer is None:
            self.timer = self.handle.timer_watcher_create(
                self.interval, lambda *_: self.redraw(), repeat=self.interval)
            self.timer.start()
            self.timer.unref()
        return self

    def redraw(self):
        if not (self.active and self.isatty):
            return
        cols, rows = self.size()
        self._write(f"\0337\033[{rows};1H\033[K{self.text(cols)}\0338")

    def update(self, **fields):
        self.fields.update(fields)
        self.redraw()
        return self

    def stop(self):
        if not self.active:
            return self
        if self.timer is not None:
            self.timer.stop()
            self.timer = None
        self.redraw()
        self.active = False
        if self.isatty:
            _, rows = self.size()
            # Give the whole screen back and leave the cursor after the line.
            self._write(f"\0337\033[r\0338\033[{rows};1H\n")
        return self


STYLES = {
    "default": ("\u2502", "\u2588", " ", "\u2502"),
    "ascii": ("[", "#", ".", "]"),
}


class ProgressBar(Bottombar):
    """A progress bar at the bottom of the terminal."""

    def __init__(self, total, style="default", before="", after="",
                 autostop=True, **kw):
        if style not in STYLES:
            raise ValueError(f"unknown progress bar style {style!r}")
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise ValueError("total must be a non-negative integer")
        self.total = total
        self.count = 0
        self.style = style
        self.before = before
        self.after = after
        self.autostop = autostop
        self.elapsed = ElapsedTime(clock=kw.pop("clock", time.time))
        super().__init__(ProgressBar._format, **kw)

    @property
    def percent(self):
        return 100.0 * self.count / self.total if self.total else 100.0

    def _fields(self):
        return dict(self.fields, count=self.count, total=self.total,
                    percent=self.percent, elapsed=self.elapsed)

    def _format(self, width):
        fields = self._fields()
        before = self.before.format(**fields)
        after = self.after.format(**fields)
        left, fill, empty, right = STYLES[self.style]
        room = max(width - len(before) - len(after) - len(left) - len(right), 0)
        filled = min(int(room * self.percent / 100.0), room)
        return f"{before}{left}{fill * filled}{empty * (room - filled)}{right}{after}"

    def update(self, advance=1, **fields):
        self.count = min(self.count + advance, self.total) if self.total else 0
        super().update(**fields)
        if self.autostop and self.count >= self.total:
            self.stop()
        return self
