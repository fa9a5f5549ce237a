"""job-exec's watchdog: no task outlives its broker, even a SIGKILLed one.

job-exec starts it (``Watchdog`` below is the broker's end) as ``python -m
fluxrm.watchdog FD``, FD being its end of a UNIX ``SOCK_SEQPACKET``
socketpair, and hands it a pidfd of each task it starts.  The watchdog
sleeps; when the broker's end closes (the broker exited or died), it kills
(SIGKILL) the process group of every task still running, then exits.

Protocol, broker -> watchdog only: each message's data is the tasks' pids
as native 32-bit ints, and its SCM_RIGHTS ancillary data the tasks' pidfds,
in the same order (at most ``MAX_FDS`` per message).  Through the pidfd the
watchdog tells a running task from one whose pid may have been reused; it
drops the pidfds of tasks that have ended each time a message comes.

The broker sends the first task after a quiet spell at the end of that
loop turn and later ones at most every ``BATCH_DELAY`` seconds, so at high
job rates the watchdog wakes a few times a second, not once per job (the
price: a task younger than that when the broker dies may be missed).  The
tasks stay the broker's children; the watchdog only holds pidfds.
"""

import array
import os
import select
import signal
import socket
import sys

MAX_FDS = 250  # per message; the kernel's limit (SCM_MAX_FD) is 253
BATCH_DELAY = 0.05


def _exited(pidfds):
    """The subset of ``pidfds`` whose process has exited."""
    poller = select.poll()
    for fd in pidfds:
        poller.register(fd, select.POLLIN)
    return {fd for fd, _events in poller.poll(0)}


def run(sock):
    """Hold the tasks' pidfds until end of file, then kill what still runs."""
    tasks = {}  # pidfd -> pid
    while True:
        try:
            data, fds, _flags, _addr = socket.recv_fds(
                sock, 4 * MAX_FDS, MAX_FDS)
        except InterruptedError:
            continue
        except OSError:
            data, fds = b"", []
        if not data and not fds:
            break
        pids = array.array("i")
        pids.frombytes(data[:len(data) - len(data) % pids.itemsize])
        if len(pids) != len(fds):
            print(f"fluxrm.watchdog: message with {len(pids)} pid(s) and "
                  f"{len(fds)} pidfd(s) ignored", file=sys.stderr)
            for fd in fds:
                os.close(fd)
            continue
        tasks.update(zip(fds, pids))
        for fd in _exited(tasks):
            del tasks[fd]
            os.close(fd)
    running = set(tasks) - _exited(tasks)
    for fd in running:
        pid = tasks[fd]
        try:
            # the pidfd says the task runs, so its pid (= its process group)
            # is still its own
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return len(running)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m fluxrm.watchdog FD\n"
              "(started by job-exec; FD is its end of a UNIX seqpacket socketpair)",
              file=sys.stderr)
        return 2
    fd = int(argv[0])
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        print(f"fluxrm.watchdog: file descriptor {fd}: {exc.strerror}", file=sys.stderr)
        return 2
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_SEQPACKET:
        print(f"fluxrm.watchdog: file descriptor {fd} is not a UNIX seqpacket socket",
              file=sys.stderr)
        return 2
    os.set_inheritable(fd, False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # it ends with the broker
    _raise_fd_limit()  # one pidfd per running task: thousands on a big node
    sock.setblocking(True)
    run(sock)
    return 0


def _raise_fd_limit():
    """Lift the soft limit on open files to the hard one, if allowed."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


def _close_inherited(keep):
    """posix_spawn actions closing this process's inheritable fds but ``keep``."""
    actions = []
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return actions
    for name in names:
        fd = int(name)
        if fd > 2 and fd != keep:
            try:
                if os.get_inheritable(fd):
                    actions.append((os.POSIX_SPAWN_CLOSE, fd))
            except OSError:  # the listing's own fd, closed since
                pass
    return actions


class Watchdog:
    """The broker's end: start the watchdog, hand it the tasks' pidfds.

    ``add(pid)`` right after a task is spawned (the task is this process's
    unreaped child, so its pid is still its own).  A watchdog that cannot
    be written to any more is closed and reported with ``on_error(self,
    text)``.  ``close()`` lets the watchdog exit; reaping it (``pid``) is
    the caller's business.
    """

    def __init__(self, loop, on_error):
        self.loop = loop
        self.on_error = on_error
        self.pending = []  # (pid, pidfd) not sent yet
        self.handle = None
        self.last_send = 0.0
        self.closed = False
        self.sock, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            fd = child.fileno()
            os.set_inheritable(fd, True)
            env = dict(os.environ)
            # the watchdog imports this very package, wherever it comes from
            top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            pypath = env.get("PYTHONPATH")
            env["PYTHONPATH"] = top + (os.pathsep + pypath if pypath else "")
            self.pid = os.posix_spawn(
                sys.executable, [sys.executable, "-m", "fluxrm.watchdog", str(fd)],
                env, setsigmask=(), file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                    *_close_inherited(fd)],
                setsigdef=[signal.SIGINT, signal.SIGTERM, signal.SIGPIPE])
        except BaseException:
            self.sock.close()
            raise
        finally:
            child.close()
        self.sock.setblocking(False)

    def add(self, pid):
        """Protect a task just started: its pidfd goes out soon."""
        if self.closed:
            return
        self.pending.append((pid, os.pidfd_open(pid)))
        if self.handle is None:
            self.schedule()

    def schedule(self):
        delay = self.last_send + BATCH_DELAY - self.loop.time()
        if delay > 0:
            self.handle = self.loop.call_later(delay, self.send)
        else:
            self.handle = self.loop.call_soon(self.send)

    def send(self):
        self.handle = None
        self.last_send = self.loop.time()
        while self.pending:
            chunk = self.pending[:MAX_FDS]
            pids = array.array("i", [pid for pid, _fd in chunk])
            try:
                socket.send_fds(self.sock, [pids.tobytes()], [fd for _pid, fd in chunk])
            except (BlockingIOError, InterruptedError):  # full: a bit later
                self.schedule()
                return
            except OSError as exc:
                self.close()
                self.on_error(self, exc.strerror)
                return
            del self.pending[:MAX_FDS]
            for _pid, fd in chunk:
                os.close(fd)

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        for _pid, fd in self.pending:
            os.close(fd)
        self.pending = []
        self.sock.close()


if __name__ == "__main__":
    sys.exit(main())
