"""flux.progress: elapsed time formats, and the bottom line of a real
pseudo-terminal (its size set by ioctl) drawn by Bottombar/ProgressBar."""

import fcntl
import io
import os
import struct
import termios

import pytest

from flux.progress import Bottombar, ElapsedTime, ProgressBar


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def tty():
    """A pty of 40 columns by 10 rows: (writer stream, read-all function)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 10, 40, 0, 0))
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.OPOST  # no newline translation
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    stream = os.fdopen(slave, "w", encoding="utf-8")
    os.set_blocking(master, False)

    def read():
        data = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except BlockingIOError:
                return data.decode()
            if not chunk:
                return data.decode()
            data += chunk

    yield stream, read
    stream.close()
    os.close(master)


def test_elapsed_time_formats():
    clock = Clock()
    elapsed = ElapsedTime(clock=clock)
    clock.now += 3725.5
    assert format(elapsed) == "1:02:05" == str(elapsed)
    assert format(elapsed, ".1f") == "3725.5"
    assert format(elapsed, "dhms") == "1.035h"
    assert elapsed.elapsed == 3725.5


def test_bottombar_reserves_and_releases_the_last_line(tty):
    stream, read = tty
    bar = Bottombar("state: {state}", stream=stream, state="init").start()
    out = read()
    assert "\033[1;9r" in out  # scroll region above the last of 10 rows
    assert "\033[10;1H\033[Kstate: init" in out
    bar.update(state="running")
    assert "\033[10;1H\033[Kstate: running" in read()
    bar.stop()
    out = read()
    assert "\033[r" in out and out.endswith("\033[10;1H\n")
    bar.update(state="late")  # stopped: nothing drawn
    assert read() == ""


def test_progress_bar_fills_to_the_terminal_width(tty):
    stream, read = tty
    clock = Clock()
    bar = ProgressBar(4, before="{count}/{total} ", after=" {percent:5.1f}% {elapsed}",
                      style="ascii", stream=stream, clock=clock).start()
    read()
    clock.now += 61
    bar.update()
    line = read().split("\033[K")[-1].split("\0338")[0]
    assert line == "1/4 [" + "#" * 4 + "." * 15 + "]  25.0% 0:01:01"
    assert len(line) == 40
    bar.update(advance=3)  # total reached: autostop
    out = read()
    assert "4/4 [" + "#" * 19 + "] 100.0%" in out and "\033[r" in out
    assert not bar.active


def test_progress_bar_without_autostop_and_user_fields(tty):
    stream, read = tty
    bar = ProgressBar(2, after=" {name}", autostop=False, stream=stream,
                      name="a").start()
    bar.update(advance=2, name="b")
    assert bar.active and "\u2502 b" in read()
    bar.stop()


def test_not_a_terminal_draws_nothing():
    out = io.StringIO()
    bar = ProgressBar(2, stream=out).start()
    bar.update()
    bar.update()
    assert out.getvalue() == "" and bar.count == 2 and not bar.active


def test_bad_arguments():
    with pytest.raises(ValueError):
        ProgressBar(3, style="fancy")
    with pytest.raises(ValueError):
        ProgressBar(-1)
    with pytest.raises(TypeError):
        Bottombar(42)
