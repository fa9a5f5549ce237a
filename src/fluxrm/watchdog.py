"""job-exec's watchdog: nothing a job started outlives its broker, even a SIGKILLed one.

job-exec starts it (``Watchdog`` below is the broker's end) as ``python -m
fluxrm.watchdog FD --uri=URI``, FD being its end of a UNIX
``SOCK_SEQPACKET`` socketpair and URI the instance's ``local-uri``, and hands
it a pidfd of each task it starts.  The watchdog sleeps; when the broker's
end closes without a goodbye (the broker died), it kills (SIGKILL) the
process group of every task still running, then every process whose
environment (as it started) has ``FLUX_URI=URI`` and a ``FLUX_JOB_ID``: the
tasks' children that left the task's process group or session, or outlived
their task (job-exec gives every task those two variables), and any
descendant of those; it scans ``/proc`` again until a scan finds nothing (a
process forking meanwhile), at most ``MAX_SCANS`` times, then exits.  The
broker stopping normally (it killed its jobs itself) says goodbye first
(``STOP``) and the watchdog exits without killing anything.

Protocol, broker -> watchdog only: each message's data is the tasks' pids
as native 32-bit ints, and its SCM_RIGHTS ancillary data the tasks' pidfds,
in the same order (at most ``MAX_FDS`` per message); or exactly ``STOP``.
Through the pidfd the watchdog tells a running task from one whose pid may
have been reused; it drops the pidfds of tasks that have ended each time a
message comes.

The broker sends the first task after a quiet spell at the end of that
loop turn and later ones at most every ``BATCH_DELAY`` seconds, so at high
job rates the watchdog wakes a few times a second, not once per job (a task
younger than that when the broker dies is still found by its environment).
The tasks stay the broker's children; the watchdog only holds pidfds.

``proc_table``, ``descendants`` and ``job_marker`` (reading ``/proc``) also
serve job-exec, to find what a job started when it cancels or cleans it up.
"""

import array
import os
import select
import signal
import socket
import sys

MAX_FDS = 250  # per message; the kernel's limit (SCM_MAX_FD) is 253
BATCH_DELAY = 0.05
STOP = b"\0stop"  # the broker's goodbye: not a multiple of a pid's size
MAX_SCANS = 10


# -- finding processes through /proc ---------------------------------------------------
def proc_table():
    """``{pid: (ppid, pgid, sid)}`` of every live process (zombies left out)."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split(None, 5)
        except OSError:  # gone meanwhile
            continue
        if len(fields) < 5 or fields[0] in (b"Z", b"X"):
            continue
        table[int(name)] = (int(fields[1]), int(fields[2]), int(fields[3]))
    return table


def descendants(table, roots):
    """The pids in ``table`` below ``roots`` (their children, theirs...)."""
    children = {}
    for pid, (ppid, _pgid, _sid) in table.items():
        children.setdefault(ppid, []).append(pid)
    found = set()
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def job_marker(pid):
    """``(FLUX_URI, FLUX_JOB_ID)`` (bytes, or None) from the environment
    ``pid`` started with; None if it cannot be read."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read()
    except OSError:  # gone, or not ours to read
        return None
    uri = jobid = None
    for entry in env.split(b"\0"):
        if entry.startswith(b"FLUX_URI="):
            uri = entry[9:]
        elif entry.startswith(b"FLUX_JOB_ID="):
            jobid = entry[12:]
    return uri, jobid


def _kill(pid, signum):
    try:
        os.kill(pid, signum)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def kill_jobs_of(uri):
    """SIGKILL every process of a job of the instance at ``uri`` (see above);
    return how many were signalled."""
    uri = uri.encode()
    seen = {os.getpid()}  # and the ones already signalled (dying) or not ours
    killed = 0
    for _scan in range(MAX_SCANS):
        try:
            table = proc_table()
        except OSError:  # no /proc
            break
        marked = set()
        for pid in table:
            if pid not in seen:
                marker = job_marker(pid)
                if marker is not None and marker[0] == uri and marker[1] is not None:
                    marked.add(pid)
        targets = (marked | descendants(table, marked)) - seen
        if not targets:
            break
        seen |= targets
        killed += sum(_kill(pid, signal.SIGKILL) for pid in targets)
    return killed


def _exited(pidfds):
    """The subset of ``pidfds`` whose process has exited."""
    poller = select.poll()
    for fd in pidfds:
        poller.register(fd, select.POLLIN)
    return {fd for fd, _events in poller.poll(0)}


def run(sock, uri=None):
    """Hold the tasks' pidfds until end of file, then kill what still runs
    (and the jobs' other processes, given the instance's ``uri``); return
    how many processes were signalled.  At ``STOP``, return 0 at once."""
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
        if data == STOP and not fds:
            return 0
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
    killed = len(running)
    if uri is not None:
        killed += kill_jobs_of(uri)
    return killed


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    uri = None
    if len(argv) == 2 and argv[1].startswith("--uri=") and len(argv[1]) > 6:
        uri = argv.pop()[6:]
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m fluxrm.watchdog FD [--uri=URI]\n"
              "(started by job-exec; FD is its end of a UNIX seqpacket socketpair,\n"
              "URI the instance's local-uri, which its jobs have as FLUX_URI)",
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
    run(sock, uri)
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
    text)``.  ``close()`` says goodbye and lets the watchdog exit, killing
    nothing; reaping it (``pid``) is the caller's business.  Given ``uri``
    (the instance's ``local-uri``), a watchdog outliving its broker also
    kills the processes of the instance's jobs found by their environment.
    """

    def __init__(self, loop, on_error, uri=None):
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
            argv = [sys.executable, "-m", "fluxrm.watchdog", str(fd)]
            if uri:
                argv.append(f"--uri={uri}")
            # a session of its own: a signal to the broker's process group
            # (kill -9 -PGID) must not take the watchdog with the broker
            self.pid = os.posix_spawn(
                sys.executable, argv, env, setsigmask=(), setsid=True, file_actions=[
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
        try:  # goodbye: the broker lives on, so nothing is to be killed
            self.sock.send(STOP)
        except OSError:  # it died; or its queue is full, which happens only when
            pass  # the broker stops, having killed its jobs itself
        self.sock.close()


if __name__ == "__main__":
    sys.exit(main())
