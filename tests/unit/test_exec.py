"""Unit tests of the WebSocket exec client: frames, the handshake, channel demux and errors.

The server side of ``run()`` is a socket pair fed with the bytes an API server sent
(tests/unit/fixtures/exec_frames.json); the client's frames are read back and unmasked.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import threading

import pytest

from ansible_collections.datastore.kubernetes.plugins.module_utils import _exec, _kubeconfig
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import (
    ExecError,
    ExecTimeout,
    KubeApiError,
    NotFound,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import KubeClient

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "exec_frames.json")
with open(FIXTURES) as _handle:
    RECORDED = json.load(_handle)


def server_frame(payload, opcode=_exec.OP_BINARY, fin=True):
    """A server frame: never masked."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    if len(payload) < 126:
        head.append(len(payload))
    elif len(payload) < 65536:
        head.append(126)
        head += struct.pack("!H", len(payload))
    else:
        head.append(127)
        head += struct.pack("!Q", len(payload))
    return bytes(head) + payload


def client_frames(data):
    reader = _exec.FrameReader()
    reader.feed(data)
    return list(reader.messages())


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_client_frames_are_masked_and_round_trip(size):
    payload = os.urandom(size)
    frame = _exec.encode_frame(payload, mask_key=b"\x01\x02\x03\x04")
    assert frame[1] & 0x80, "client frames must be masked"
    if size:
        # the bytes on the wire are the payload masked (a random payload may reappear by chance elsewhere in
        # the frame, so only the payload's own place is compared)
        assert frame[len(frame) - size:] != payload
    assert client_frames(frame) == [(_exec.OP_BINARY, payload)]


def test_reader_takes_bytes_one_at_a_time_and_joins_fragments():
    data = (server_frame(b"\x01hel", _exec.OP_BINARY, fin=False) + server_frame(b"\x0a", _exec.OP_PING)
            + server_frame(b"lo", _exec.OP_CONT, fin=False) + server_frame(b"!", _exec.OP_CONT))
    reader = _exec.FrameReader()
    got = []
    for byte in data:
        reader.feed(bytes([byte]))
        got.extend(reader.messages())
    assert got == [(_exec.OP_PING, b"\x0a"), (_exec.OP_BINARY, b"\x01hello!")]


def test_reader_refuses_a_stray_continuation():
    reader = _exec.FrameReader()
    reader.feed(server_frame(b"x", _exec.OP_CONT))
    with pytest.raises(ExecError, match="continuation"):
        list(reader.messages())


@pytest.mark.parametrize("status,code", [
    ({"metadata": {}, "status": "Success"}, 0),
    ({"status": "Failure", "reason": "NonZeroExitCode", "message": "command terminated with non-zero exit code: 3",
      "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}, 3),
    ({"status": "Failure", "reason": "InternalError", "message": "executable file not found"}, None),
])
def test_exit_code(status, code):
    assert _exec.exit_code(status) == code


def test_accept_value_of_rfc6455_example():
    assert _exec.accept_value("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


# -- run() against recorded server bytes ------------------------------------------------
def make_client(token="t0ken-value"):
    cfg = _kubeconfig.ClusterConfig("https://127.0.0.1:6443")
    cfg.set_token(token)
    return KubeClient(cfg, request_timeout=5, impersonate_user="ops", impersonate_groups=["a", "b"])


class FakeServer:
    """Answers the upgrade request with a recorded answer (its accept key recomputed) and frames."""

    def __init__(self, monkeypatch, head, body, close_after=True):
        self.ours, self.theirs = socket.socketpair()
        self.head, self.body, self.close_after = head, body, close_after
        self.request = b""
        self.received = b""
        monkeypatch.setattr(_exec, "_connect", lambda configuration, timeout: (self.ours, ""))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while b"\r\n\r\n" not in self.request:
            self.request += self.theirs.recv(65536)
        key = [line.split(":", 1)[1].strip() for line in self.request.decode().split("\r\n")
               if line.lower().startswith("sec-websocket-key:")][0]
        head = self.head.replace("{accept}", _exec.accept_value(key))
        self.theirs.sendall(head.encode("latin-1") + self.body)
        self.theirs.settimeout(2)
        try:
            while True:
                chunk = self.theirs.recv(65536)
                if not chunk:
                    break
                self.received += chunk
                if self.close_after and b"\x88" in chunk[:1]:
                    break
        except OSError:
            pass
        if self.close_after:
            self.theirs.close()

    def sent_frames(self):
        self.thread.join(3)
        return client_frames(self.received)


def recorded(name):
    case = RECORDED[name]
    return case["response_head"], base64.b64decode(case["frames"])


def test_run_demuxes_stdout_stderr_and_reports_a_non_zero_exit(monkeypatch):
    head, body = recorded("exit_3")
    server = FakeServer(monkeypatch, head, body)
    result = _exec.run(make_client(), "db", "pg-0", ["sh", "-c", "echo out; echo err >&2; exit 3"],
                       container="postgres")
    assert (result.rc, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
    assert result.protocol == "v5.channel.k8s.io"
    request = server.request.decode()
    first = request.split("\r\n")[0]
    assert first.startswith("GET /api/v1/namespaces/db/pods/pg-0/exec?command=sh&command=-c&command=echo+out")
    assert "container=postgres" in first and "stdin=false" in first and "tty=false" in first
    assert "Sec-WebSocket-Protocol: v5.channel.k8s.io, v4.channel.k8s.io\r\n" in request
    assert "Authorization: Bearer t0ken-value\r\n" in request
    assert "Impersonate-User: ops\r\n" in request
    assert "Impersonate-Group: a\r\nImpersonate-Group: b\r\n" in request
    # The client closes the WebSocket when the server is done.
    assert server.sent_frames()[-1][0] == _exec.OP_CLOSE


def test_run_sends_stdin_and_closes_it_on_v5(monkeypatch):
    head, body = recorded("cat_stdin")
    server = FakeServer(monkeypatch, head, body)
    result = _exec.run(make_client(), "db", "pg-0", ["cat"], stdin="hello\n")
    assert (result.rc, result.stdout, result.stderr) == (0, b"hello\n", b"")
    frames = server.sent_frames()
    assert frames[0] == (_exec.OP_BINARY, b"\x00hello\n")
    assert frames[1] == (_exec.OP_BINARY, b"\xff\x00"), "v5 closes stdin with channel 255"
    assert "stdin=true" in server.request.decode().split("\r\n")[0]


def test_run_on_v4_does_not_send_the_close_channel(monkeypatch):
    head, body = recorded("cat_stdin")
    server = FakeServer(monkeypatch, head.replace("v5.channel", "v4.channel"), body)
    result = _exec.run(make_client(), "db", "pg-0", ["cat"], stdin=b"hello\n")
    assert result.protocol == "v4.channel.k8s.io" and result.stdout == b"hello\n"
    assert [f for f in server.sent_frames() if f[1][:1] == b"\xff"] == []


def test_run_answers_pings(monkeypatch):
    head, body = recorded("exit_3")
    server = FakeServer(monkeypatch, head, server_frame(b"are-you-there", _exec.OP_PING) + body)
    assert _exec.run(make_client(), "db", "pg-0", ["true"]).rc == 3
    assert (_exec.OP_PONG, b"are-you-there") in server.sent_frames()


def test_a_failure_status_is_an_error_with_the_server_message(monkeypatch):
    head, body = recorded("exec_refused")  # kwok's answer: its nodes run no container
    FakeServer(monkeypatch, head, body)
    with pytest.raises(ExecError) as err:
        _exec.run(make_client(), "db", "kw", ["sh"])
    assert "sh could not be run" in err.value.msg and "no exec found for container" in err.value.msg
    assert err.value.details["reason"] == "InternalError"


def test_missing_executable_is_an_error_naming_pod_and_container(monkeypatch):
    head, body = recorded("no_such_executable")
    FakeServer(monkeypatch, head, body)
    with pytest.raises(ExecError) as err:
        _exec.run(make_client(), "db", "pg-0", ["no-such-command"], container="postgres")
    assert "pod db/pg-0 container postgres" in err.value.msg and "no-such-command" in err.value.msg
    assert err.value.details["pod"] == "pg-0" and err.value.details["container"] == "postgres"


@pytest.mark.parametrize("name,error,words", [
    ("pod_not_found", NotFound, ["404", "not found"]),
    ("container_not_found", KubeApiError, ["400", "container nope is not valid"]),
])
def test_refused_upgrade_carries_the_api_server_message(monkeypatch, name, error, words):
    head, body = recorded(name)
    FakeServer(monkeypatch, head, body)
    with pytest.raises(error) as err:
        _exec.run(make_client(), "db", "pg-0", ["true"], container="nope")
    for word in words:
        assert word in err.value.msg


def test_a_bad_accept_key_is_refused(monkeypatch):
    head, body = recorded("exec_refused")
    FakeServer(monkeypatch, head.replace("{accept}", "bm9wZQ=="), body)
    with pytest.raises(ExecError, match="accept key"):
        _exec.run(make_client(), "db", "pg-0", ["true"])


def test_an_unknown_subprotocol_is_refused(monkeypatch):
    head, body = recorded("exec_refused")
    FakeServer(monkeypatch, head.replace("v5.channel.k8s.io", "channel.k8s.io"), body)
    with pytest.raises(ExecError, match="subprotocol"):
        _exec.run(make_client(), "db", "pg-0", ["true"])


def test_a_stream_without_status_is_an_error(monkeypatch):
    head, _body = recorded("exec_refused")
    FakeServer(monkeypatch, head, server_frame(b"\x01partial") + server_frame(b"\x03\xe8", _exec.OP_CLOSE))
    with pytest.raises(ExecError, match="without an exit status"):
        _exec.run(make_client(), "db", "pg-0", ["true"])


def test_a_command_that_does_not_finish_times_out(monkeypatch):
    head, _body = recorded("exec_refused")
    FakeServer(monkeypatch, head, server_frame(b"\x01"), close_after=False)
    with pytest.raises(ExecTimeout) as err:
        _exec.run(make_client(), "db", "pg-0", ["sleep", "60"], container="postgres", timeout=0.5)
    assert "pod db/pg-0 container postgres" in err.value.msg and "sleep" in err.value.msg


def test_output_beyond_the_limit_is_dropped_and_said(monkeypatch):
    head, body = recorded("exit_3")
    FakeServer(monkeypatch, head, body)
    result = _exec.run(make_client(), "db", "pg-0", ["true"], max_output=2)
    assert result.stdout == b"ou" and result.truncated


@pytest.mark.parametrize("command", [[], "ls", ["ls", 1]])
def test_command_must_be_a_list_of_strings(command):
    with pytest.raises(Exception, match="command"):
        _exec.run(make_client(), "db", "pg-0", command)


def test_proxy_is_refused_clearly():
    cfg = _kubeconfig.ClusterConfig("https://127.0.0.1:6443")
    cfg.proxy = "http://proxy:3128"
    with pytest.raises(Exception, match="proxy"):
        _exec._connect(cfg, 1)  # pylint: disable=protected-access
