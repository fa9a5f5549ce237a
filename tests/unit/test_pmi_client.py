"""PMIClient against a scripted peer on a socketpair: the environment, the
requests it sends, and a clear PMIError for every way the server fails."""

import errno
import os
import socket
import threading

import pytest

from fluxrm.pmi.client import PMIClient, PMIError
from fluxrm.pmi.wire import parse_line


@pytest.fixture
def pair():
    """(client fd, server socket); both closed at the end."""
    ours, theirs = socket.socketpair()
    fd = theirs.detach()
    yield fd, ours
    ours.close()
    try:
        os.close(fd)
    except OSError:
        pass  # the client closed it


class Script:
    """A peer that answers the client's lines from a list, in a thread."""

    def __init__(self, sock, answers):
        self.sock = sock
        self.answers = list(answers)
        self.received = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        f = self.sock.makefile("rb")
        for answer in self.answers:
            line = f.readline()
            if not line:
                return
            self.received.append(parse_line(line.decode()))
            if answer is not None:
                self.sock.sendall(answer.encode())

    def join(self):
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


INIT = ["cmd=response_to_init rc=0 pmi_version=1 pmi_subversion=1\n",
        "cmd=maxes rc=0 kvsname_max=64 keylen_max=16 vallen_max=100\n",
        "cmd=my_kvsname rc=0 kvsname=job42\n"]


def client(fd, **kw):
    return PMIClient.from_environ({"PMI_FD": str(fd), "PMI_RANK": "1", "PMI_SIZE": "2"}, **kw)


def test_no_pmi_fd_means_no_client():
    assert PMIClient.from_environ({}) is None
    assert PMIClient.from_environ({"PMI_RANK": "0", "PMI_SIZE": "4"}) is None


@pytest.mark.parametrize("env, text, err", [
    ({"PMI_FD": "x", "PMI_RANK": "0", "PMI_SIZE": "1"}, "PMI_FD='x': not a number",
     errno.EINVAL),
    ({"PMI_FD": "9999", "PMI_RANK": "0", "PMI_SIZE": "1"},
     "PMI_FD=9999: bad file descriptor", errno.EBADF),
    ({"PMI_FD": "0", "PMI_SIZE": "1"}, "PMI_FD is set but PMI_RANK is not", errno.EINVAL),
    ({"PMI_FD": "0", "PMI_RANK": "2", "PMI_SIZE": "2"},
     "PMI_RANK=2 PMI_SIZE=2: rank must be in 0..size-1", errno.EINVAL),
    ({"PMI_FD": "0", "PMI_RANK": "0", "PMI_SIZE": "0"}, "rank must be in", errno.EINVAL),
])
def test_bad_environment(env, text, err):
    with pytest.raises(PMIError) as info:
        PMIClient.from_environ(env)
    assert isinstance(info.value, OSError)
    assert text in str(info.value) and info.value.errno == err


def test_from_environ_makes_the_fd_close_on_exec(pair):
    fd, _ = pair
    os.set_inheritable(fd, True)
    pmi = client(fd)
    assert (pmi.fd, pmi.rank, pmi.size) == (fd, 1, 2)
    assert not os.get_inheritable(fd)


def test_a_whole_session(pair):
    fd, peer = pair
    script = Script(peer, INIT + [
        "cmd=put_result rc=0\n", "cmd=barrier_out rc=0\n",
        "cmd=get_result rc=0 value={\"uri\": \"tcp://a b\"}\n",
        "cmd=finalize_ack rc=0\n"])
    pmi = client(fd)
    pmi.init()
    assert (pmi.kvsname, pmi.keylen_max, pmi.vallen_max) == ("job42", 16, 100)
    pmi.put("1", "card one")
    pmi.barrier()
    assert pmi.get("0") == "{\"uri\": \"tcp://a b\"}"
    pmi.finalize()
    script.join()
    assert [r["cmd"] for r in script.received] == [
        "init", "get_maxes", "get_my_kvsname", "put", "barrier_in", "get", "finalize"]
    assert script.received[0] == {"cmd": "init", "pmi_version": "1", "pmi_subversion": "1"}
    assert script.received[3] == {"cmd": "put", "kvsname": "job42", "key": "1",
                                  "value": "card one"}
    with pytest.raises(PMIError, match="the connection is closed"):
        pmi.barrier()


def test_failed_get_says_what_and_why(pair):
    fd, peer = pair
    Script(peer, INIT + ["cmd=get_result rc=-1 msg=key 'x' not found\n"])
    pmi = client(fd)
    pmi.init()
    with pytest.raises(PMIError) as info:
        pmi.get("x")
    assert str(info.value) == "PMI: get key 'x': rc=-1 (key 'x' not found)"


def test_answers_without_rc_are_success(pair):
    fd, peer = pair
    Script(peer, INIT + ["cmd=barrier_out\n", "cmd=get_result msg=success value=a b\n",
                         "cmd=finalize_ack\n"])
    pmi = client(fd)
    pmi.init()
    pmi.barrier()
    assert pmi.get("k") == "a b"
    pmi.finalize()


def test_refused_init(pair):
    fd, peer = pair
    Script(peer, ["cmd=response_to_init rc=-1 pmi_version=2 pmi_subversion=0\n"])
    with pytest.raises(PMIError, match=r"^PMI: init: rc=-1$"):
        client(fd).init()


@pytest.mark.parametrize("answer, text", [
    ("cmd=barrier_out rc=0\n", "PMI: init: expected cmd=response_to_init, got 'cmd=barrier_out"),
    ("garbage\n", "PMI: init: bad answer from the server (line does not start"),
    ("cmd=response_to_init rc=1\n", "PMI: init: rc=1"),
    ("cmd=response_to_init rc=0 x=" + "y" * 5000 + "\n",
     "PMI: init: bad answer from the server (line longer than 2048 characters)"),
])
def test_bad_answers(pair, answer, text):
    fd, peer = pair
    Script(peer, [answer])
    with pytest.raises(PMIError) as info:
        client(fd).init()
    assert str(info.value).startswith(text)


def test_server_closed_the_connection(pair):
    fd, peer = pair
    peer.close()
    with pytest.raises(PMIError) as info:
        client(fd).init()
    assert str(info.value) == "PMI: init: the PMI server closed the connection"
    assert info.value.errno in (errno.ECONNRESET, errno.EPIPE)


def test_server_closes_while_we_wait(pair):
    fd, peer = pair
    script = Script(peer, [None])  # reads the request, never answers

    def hang_up():
        script.join()
        peer.shutdown(socket.SHUT_RDWR)
    threading.Thread(target=hang_up, daemon=True).start()
    pmi = client(fd, timeout=30)
    with pytest.raises(PMIError, match="^PMI: barrier: the PMI server closed the connection$"):
        pmi.barrier()
    assert script.received == [{"cmd": "barrier_in"}]


def test_silent_server_times_out(pair):
    fd, _peer = pair
    pmi = client(fd, timeout=0.05)
    with pytest.raises(PMIError) as info:
        pmi.init()
    assert str(info.value) == "PMI: init: no answer from the PMI server in 0.05 s"
    assert info.value.errno == errno.ETIMEDOUT


@pytest.mark.parametrize("key, value, text", [
    ("a b", "v", "keys are one word"),
    ("", "v", "keys are one word"),
    ("k=v", "v", "keys are one word"),
    ("k" * 17, "v", "over the server's limit 16"),
    ("k", "v" * 101, "value is 101 characters, over the server's limit 100"),
    ("k", "a\nb", "newline in value"),
])
def test_bad_put_is_refused_before_sending(pair, key, value, text):
    fd, peer = pair
    script = Script(peer, INIT)
    pmi = client(fd)
    pmi.init()
    script.join()
    with pytest.raises(PMIError, match=text) as info:
        pmi.put(key, value)
    assert info.value.errno == errno.EINVAL


def test_put_before_init(pair):
    fd, _ = pair
    with pytest.raises(PMIError, match="init"):
        client(fd).put("a", "b")


def test_abort_sends_one_line_and_closes(pair):
    fd, peer = pair
    pmi = client(fd)
    pmi.abort(3, "broker: cannot\nbind")
    assert peer.recv(4096) == b"cmd=abort exitcode=3 error_msg=broker: cannot bind\n"
    assert peer.recv(4096) == b""  # closed
    pmi.close()  # twice is fine
