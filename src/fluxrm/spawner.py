"""The spawner: a helper process that starts, signals and reaps job tasks.

job-exec starts it (``SpawnerProcess`` below, the broker's end) as ``python
-m fluxrm.spawner FD``, FD being its end of a UNIX stream socketpair.  The
work that used to block the broker's event loop for each task (the
``posix_spawn`` itself, which holds the GIL until the child has exec'd, the
affinity changes around it, pipes, reaping) happens here, in parallel with
the broker.

Both directions carry a stream of msgpack arrays (msgpack's own framing,
``use_bin_type``: text is str, output data is bytes).  Each side writes all
it has for one turn of its loop in one write.

broker -> spawner

``["spawn", key, argv, env, cwd, stdin, stdout, stderr, tasks]``
    Start the tasks of one job.  ``key``: the job id (int); ``argv``: the
    command (its program is looked up on the job's ``PATH``, relative to
    ``cwd``); ``env``: the environment common to all tasks; ``cwd``: the
    working directory; ``stdin``: null (``/dev/null``) or a file path;
    ``stdout``: null (a pipe, forwarded as ``out``) or ``[path, truncate]``;
    ``stderr``: the same, or ``"stdout"`` (the stdout file).  Files are
    opened once per job.  ``tasks``: ``[[rank, cpus, env], ...]`` with
    ``cpus`` a list of CPU numbers to bind the task to (null: not bound) and
    ``env`` the task's extra variables.  Each task is a process group leader.
``["kill", key, signum]``
    Send ``signum`` to the process group of each task of the job that has
    not been reaped yet (so never to a pid that may have been reused).
end of file
    The broker is gone: SIGKILL the process group of every task not reaped
    yet, reap those tasks, exit.

spawner -> broker

``["started", key, pids, error]``
    The answer to ``spawn``: the pids of the tasks started, in order, and
    ``error``: null, or ``[rank, errno, text]`` for the task that could not
    be started (tasks after it were not started either).
``["out", key, rank, stream, data]``
    Output of a task: ``stream`` 1 (stdout) or 2 (stderr), ``data`` bytes.
``["exit", key, rank, status]``
    The task has been reaped (``status``: its wait status) and its output
    pipes are at end of file: every ``out`` of the task came before.
``["log", text]``
    An error the broker should log (a request the spawner cannot read).
"""

import errno
import os
import select
import shutil
import signal
import socket
import sys

import msgpack

READ_SIZE = 65536
RECV_SIZE = 1 << 20

# signals Python ignores or handles, reset to default in tasks
SIGDEF = [s for s in (signal.SIGPIPE, getattr(signal, "SIGXFSZ", None),
                      signal.SIGINT, signal.SIGTERM, signal.SIGHUP,
                      signal.SIGCHLD, signal.SIGUSR1, signal.SIGUSR2,
                      signal.SIGALRM)
          if s is not None]

_pack = msgpack.Packer(use_bin_type=True, autoreset=True).pack


def _unpacker():
    return msgpack.Unpacker(raw=False, strict_map_key=False,
                            max_buffer_size=1 << 30)


def _killpg(pid, signum):
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


# -- the helper process ---------------------------------------------------------------

class _Task:
    __slots__ = ("job", "rank", "pid", "status", "nopen")

    def __init__(self, job, rank, pid, nopen):
        self.job = job
        self.rank = rank
        self.pid = pid
        self.status = None  # wait status once reaped
        self.nopen = nopen  # output pipes not yet at end of file


class _Job:
    __slots__ = ("key", "tasks", "nleft")

    def __init__(self, key):
        self.key = key
        self.tasks = []
        self.nleft = 0  # tasks whose "exit" is not sent yet


class Spawner:
    """The helper's state and loop (one per process)."""

    def __init__(self, sock):
        self.sock = sock
        self.chan = sock.fileno()
        self.unpacker = _unpacker()
        self.out = []  # packed messages for the broker, sent once per turn
        self.jobs = {}  # key -> _Job with tasks whose exit is not sent
        self.by_pid = {}  # pid -> _Task not reaped yet
        self.pipes = {}  # read fd -> (_Task, stream)
        self.which = {}  # (PATH, program, cwd) -> path
        self.home = os.open(".", os.O_RDONLY | os.O_CLOEXEC
                            | getattr(os, "O_DIRECTORY", 0))
        try:
            self.all_cpus = os.sched_getaffinity(0)
        except AttributeError:  # no affinity on this system
            self.all_cpus = None
        self.cpus = self.all_cpus
        self.ep = select.epoll()
        self.sig_r, sig_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        os.set_blocking(sig_w, False)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # ends with the channel
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        signal.set_wakeup_fd(sig_w, warn_on_full_buffer=False)
        self.ep.register(self.chan, select.EPOLLIN)
        self.ep.register(self.sig_r, select.EPOLLIN)

    def run(self):
        chan, sig_r, ep = self.chan, self.sig_r, self.ep
        while True:
            for fd, _mask in ep.poll():
                if fd == chan:
                    if not self.read_channel():
                        self.shutdown()
                        return
                elif fd == sig_r:
                    try:
                        os.read(sig_r, 4096)
                    except BlockingIOError:
                        pass
                    self.reap()
                else:
                    self.read_pipe(fd)
            if self.out:
                data = b"".join(self.out)
                self.out.clear()
                try:
                    self.sock.sendall(data)
                except OSError:  # the broker is gone
                    self.shutdown()
                    return

    def log(self, text):
        self.out.append(_pack(["log", text]))

    # requests ------------------------------------------------------------------------
    def read_channel(self):
        try:
            data = self.sock.recv(RECV_SIZE, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            data = b""
        if not data:
            return False
        self.unpacker.feed(data)
        try:
            for msg in self.unpacker:
                self.request(msg)
        except ValueError as exc:  # not msgpack: nothing more can be trusted
            self.log(f"unreadable request stream: {exc}")
            return False
        finally:
            os.fchdir(self.home)
            if self.cpus != self.all_cpus:
                os.sched_setaffinity(0, self.all_cpus)
                self.cpus = self.all_cpus
        return True

    def request(self, msg):
        kind = msg[0] if type(msg) is list and msg else None
        if kind == "spawn" and len(msg) == 9:
            self.spawn(*msg[1:])
        elif kind == "kill" and len(msg) == 3:
            job = self.jobs.get(msg[1])
            if job is not None:
                for task in job.tasks:
                    if task.status is None:
                        _killpg(task.pid, msg[2])
        else:
            self.log(f"malformed request {str(msg)[:200]}")

    def spawn(self, key, argv, env, cwd, stdin, stdout, stderr, tasks):
        if key in self.jobs:
            self.out.append(_pack(["started", key, [], [
                0, errno.EEXIST, f"job {key} already has running tasks"]]))
            return
        job = _Job(key)
        pids = []
        fds = []
        try:
            error = self.start_tasks(job, argv, env, cwd, stdin, stdout, stderr,
                                     tasks, pids, fds)
        except Exception as exc:  # bad request or bug: fail the job, not the helper
            error = [len(pids), 0, f"spawner: {exc!r}"]
        finally:
            for fd in fds:
                os.close(fd)
        self.out.append(_pack(["started", key, pids, error]))
        if job.tasks:
            self.jobs[key] = job

    def start_tasks(self, job, argv, env, cwd, stdin, stdout, stderr, tasks,
                    pids, fds):
        try:
            stdin_fd = out_fd = err_fd = None
            if stdin is not None:
                stdin_fd = os.open(stdin, os.O_RDONLY | os.O_CLOEXEC)
                fds.append(stdin_fd)
            if stdout is not None:
                out_fd = _open_output(*stdout)
                fds.append(out_fd)
            if stderr == "stdout":
                err_fd = out_fd
            elif stderr is not None:
                err_fd = _open_output(*stderr)
                fds.append(err_fd)
        except OSError as exc:
            return [0, exc.errno, f"{exc.filename}: {exc.strerror}"]
        try:
            os.chdir(cwd)
        except OSError as exc:
            return [0, exc.errno, f"chdir {cwd}: {exc.strerror}"]
        try:
            path = self.resolve(argv[0], env.get("PATH", os.defpath), cwd)
        except OSError as exc:
            return [0, exc.errno, exc.strerror]
        for rank, cpus, extra in tasks:
            tenv = env | extra if extra else env
            try:
                pid = self.spawn_task(job, rank, path, argv, tenv, cpus,
                                      stdin_fd, out_fd, err_fd)
            except OSError as exc:
                return [rank, exc.errno, exc.strerror]
            pids.append(pid)
        return None

    def spawn_task(self, job, rank, path, argv, env, cpus, stdin_fd, out_fd, err_fd):
        if stdin_fd is None:
            actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)]
        else:
            actions = [(os.POSIX_SPAWN_DUP2, stdin_fd, 0)]
        readers = []
        writers = []
        try:
            for stream, fd in ((1, out_fd), (2, err_fd)):
                if fd is None:
                    r, w = os.pipe2(os.O_CLOEXEC)
                    readers.append((r, stream))
                    writers.append(w)
                    fd = w
                actions.append((os.POSIX_SPAWN_DUP2, fd, stream))
            if self.all_cpus is not None:
                want = set(cpus) if cpus is not None else self.all_cpus
                if want != self.cpus:
                    os.sched_setaffinity(0, want)
                    self.cpus = want
            pid = os.posix_spawn(path, argv, env, file_actions=actions,
                                 setpgroup=0, setsigdef=SIGDEF, setsigmask=())
        except OSError:
            for r, _stream in readers:
                os.close(r)
            raise
        finally:
            for w in writers:
                os.close(w)
        task = _Task(job, rank, pid, len(readers))
        job.tasks.append(task)
        job.nleft += 1
        self.by_pid[pid] = task
        for r, stream in readers:
            self.pipes[r] = (task, stream)
            self.ep.register(r, select.EPOLLIN)
        return pid

    def resolve(self, prog, path, cwd):
        """The program's path, found the way a shell would with the job's PATH.

        A PATH search costs a stat per directory; the answer is cached and
        re-checked with one ``access()`` (a program that moved is searched
        again).
        """
        if "/" in prog:
            full = prog if os.path.isabs(prog) else os.path.join(cwd, prog)
            if not os.path.exists(full):
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
            if not os.access(full, os.X_OK) or os.path.isdir(full):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
            return full
        key = (path, prog, cwd)
        found = self.which.get(key)
        if found is not None and os.access(found, os.X_OK):
            return found
        found = shutil.which(prog, path=path)  # relative entries: from cwd
        if found is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
        if not os.path.isabs(found):
            found = os.path.join(cwd, found)
        if len(self.which) > 4096:
            self.which.clear()
        self.which[key] = found
        return found

    # tasks ---------------------------------------------------------------------------
    def read_pipe(self, fd):
        task, stream = self.pipes[fd]
        try:
            data = os.read(fd, READ_SIZE)
        except OSError:
            data = b""
        if data:
            self.out.append(_pack(["out", task.job.key, task.rank, stream, data]))
            return
        self.ep.unregister(fd)
        os.close(fd)
        del self.pipes[fd]
        task.nopen -= 1
        if task.nopen == 0 and task.status is not None:
            self.exited(task)

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            task = self.by_pid.pop(pid, None)
            if task is not None:
                task.status = status
                if task.nopen == 0:
                    self.exited(task)

    def exited(self, task):
        job = task.job
        self.out.append(_pack(["exit", job.key, task.rank, task.status]))
        job.nleft -= 1
        if job.nleft == 0:
            del self.jobs[job.key]

    def shutdown(self):
        """The broker is gone: no task outlives it."""
        for task in self.by_pid.values():
            _killpg(task.pid, signal.SIGKILL)
        for pid in list(self.by_pid):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.by_pid.clear()


def _open_output(path, truncate):
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_APPEND
    return os.open(path, flags | (os.O_TRUNC if truncate else 0), 0o666)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m fluxrm.spawner FD\n"
              "(started by job-exec; FD is its end of a UNIX socketpair)",
              file=sys.stderr)
        return 2
    fd = int(argv[0])
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        print(f"fluxrm.spawner: file descriptor {fd}: {exc.strerror}", file=sys.stderr)
        return 2
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        print(f"fluxrm.spawner: file descriptor {fd} is not a UNIX stream socket",
              file=sys.stderr)
        return 2
    os.set_inheritable(fd, False)
    sock.setblocking(True)
    Spawner(sock).run()
    return 0


# -- the broker's end -----------------------------------------------------------------

class SpawnerProcess:
    """job-exec's handle on one helper process: start it, talk to it.

    ``send(msg)`` queues a request; all requests of one loop turn go out in
    one write.  Each message received is passed to ``on_message(self, msg)``;
    at end of file (the helper died or closed its end) ``on_eof(self)`` is
    called once.  Reaping the process (``pid``) is the caller's business.
    """

    def __init__(self, loop, on_message, on_eof):
        self.loop = loop
        self.on_message = on_message
        self.on_eof = on_eof
        self.unpacker = _unpacker()
        self.wbuf = []
        self.flush_scheduled = False
        self.writing = False  # a writer waits for room in the socket
        self.closed = False
        self.pid = None
        self.status = None  # wait status once reaped
        self.sock, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            fd = child.fileno()
            os.set_inheritable(fd, True)
            env = dict(os.environ)
            # the helper imports this very package, wherever it comes from
            top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            pypath = env.get("PYTHONPATH")
            env["PYTHONPATH"] = top + (os.pathsep + pypath if pypath else "")
            self.pid = os.posix_spawn(
                sys.executable, [sys.executable, "-m", "fluxrm.spawner", str(fd)],
                env, setsigdef=SIGDEF, setsigmask=())
        except BaseException:
            self.sock.close()
            raise
        finally:
            child.close()
        self.fd = self.sock.fileno()
        self.sock.setblocking(False)
        loop.add_reader(self.fd, self.readable)

    def send(self, msg):
        """Queue a request; False if the helper's channel is closed."""
        if self.closed:
            return False
        self.wbuf.append(_pack(msg))
        if not self.flush_scheduled and not self.writing:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)
        return True

    def flush(self):
        self.flush_scheduled = False
        if self.closed or not self.wbuf:
            return
        data = self.wbuf[0] if len(self.wbuf) == 1 else b"".join(self.wbuf)
        self.wbuf.clear()
        try:
            n = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            self.eof()
            return
        if n < len(data):
            self.wbuf.append(data[n:])
            if not self.writing:
                self.writing = True
                self.loop.add_writer(self.fd, self.writable)
        elif self.writing:
            self.writing = False
            self.loop.remove_writer(self.fd)

    def writable(self):
        self.flush()

    def readable(self):
        try:
            data = self.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        self.received(data)

    def received(self, data):
        if not data:
            self.eof()
            return
        self.unpacker.feed(data)
        try:
            for msg in self.unpacker:
                self.on_message(self, msg)
        except ValueError:  # not msgpack: the helper is broken
            self.eof()

    def drain(self):
        """Read what the helper sent before it exited, up to end of file."""
        self.sock.setblocking(True)
        while not self.closed:
            try:
                data = self.sock.recv(RECV_SIZE)
            except OSError:
                data = b""
            self.received(data)

    def eof(self):
        if self.closed:
            return
        self.close()
        self.on_eof(self)

    def close(self):
        """Close the channel: the helper kills its tasks and exits."""
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self.fd)
        if self.writing:
            self.loop.remove_writer(self.fd)
            self.writing = False
        self.wbuf.clear()
        self.sock.close()


if __name__ == "__main__":
    sys.exit(main())
