# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a command in a pod's container through the API server (``pods/exec``).

The API server upgrades the request to a WebSocket and relays the container's streams,
each message prefixed with its channel: 0 stdin, 1 stdout, 2 stderr, 3 the final status
(a ``metav1.Status`` that carries the exit code), 4 resize. ``v5.channel.k8s.io`` adds
channel 255, by which the client closes one of its streams (stdin, so that a command
reading it sees the end); ``v4.channel.k8s.io`` is asked for as well, for older servers.

The WebSocket client is small and written here so that no library beyond urllib3 is
needed: it opens its own TLS connection with the client's settings (CA, client
certificate, server name, bearer token, impersonation), sends masked frames and reads
the server's unmasked ones until the server closes the stream.
"""

from __future__ import annotations

__metaclass__ = type

import base64
import hashlib
import json
import os
import select
import socket
import ssl
import struct
import time
from typing import TYPE_CHECKING, Any, Iterator, Sequence, cast
from urllib.parse import urlencode, urlsplit

from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import (
    ExecError,
    ExecTimeout,
    InvalidInput,
    KubeApiError,
    NotFound,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Obj

if TYPE_CHECKING:
    from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import KubeClient  # pragma: no cover

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
# Output kept per stream; what is beyond is dropped and the result says so.
MAX_OUTPUT = 16 * 1024 * 1024
CHUNK = 65536


class ExecResult:
    """What a command run in a pod gave back."""

    def __init__(self, rc: int, stdout: bytes, stderr: bytes, protocol: str | None,
                 truncated: bool = False) -> None:
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.protocol = protocol
        self.truncated = truncated

    @property
    def stdout_text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return "ExecResult(rc=%r, stdout=%d bytes, stderr=%d bytes, protocol=%r)" % (
            self.rc, len(self.stdout), len(self.stderr), self.protocol)


# -- frames ------------------------------------------------------------------------
def encode_frame(payload: bytes, opcode: int = OP_BINARY, mask_key: bytes | None = None) -> bytes:
    """One final, masked client frame (RFC 6455 section 5.2: clients always mask)."""
    mask_key = os.urandom(4) if mask_key is None else mask_key
    length = len(payload)
    head = bytearray([0x80 | opcode])
    if length < 126:
        head.append(0x80 | length)
    elif length < 65536:
        head.append(0x80 | 126)
        head += struct.pack("!H", length)
    else:
        head.append(0x80 | 127)
        head += struct.pack("!Q", length)
    return bytes(head) + mask_key + mask(payload, mask_key)


def mask(payload: bytes, key: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``key`` repeated (the same operation unmasks)."""
    if not payload:
        return b""
    repeated = (key * (len(payload) // 4 + 1))[:len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")


class FrameReader:
    """Reassembles WebSocket frames from bytes as they arrive."""

    def __init__(self) -> None:
        self.buf = b""
        self._fragments: list[bytes] | None = None
        self._fragment_opcode: int | None = None

    def feed(self, data: bytes) -> None:
        self.buf += data

    def messages(self) -> Iterator[tuple[int, bytes]]:
        """Yield ``(opcode, payload)`` for each complete message (control frames included)."""
        while True:
            frame = self._frame()
            if frame is None:
                return
            fin, opcode, payload = frame
            if opcode >= 0x8:
                yield opcode, payload
            elif opcode == OP_CONT:
                if self._fragments is None:
                    raise ExecError("WebSocket: a continuation frame without a first fragment")
                self._fragments.append(payload)
                if fin:
                    data, opcode = b"".join(self._fragments), cast(int, self._fragment_opcode)
                    self._fragments = self._fragment_opcode = None
                    yield opcode, data
            elif fin:
                yield opcode, payload
            else:
                self._fragments, self._fragment_opcode = [payload], opcode

    def _frame(self) -> tuple[bool, int, bytes] | None:
        buf = self.buf
        if len(buf) < 2:
            return None
        fin, opcode = bool(buf[0] & 0x80), buf[0] & 0x0F
        masked, length = bool(buf[1] & 0x80), buf[1] & 0x7F
        pos = 2
        if length == 126:
            if len(buf) < 4:
                return None
            length = struct.unpack("!H", buf[2:4])[0]
            pos = 4
        elif length == 127:
            if len(buf) < 10:
                return None
            length = struct.unpack("!Q", buf[2:10])[0]
            pos = 10
        key = b""
        if masked:
            if len(buf) < pos + 4:
                return None
            key = buf[pos:pos + 4]
            pos += 4
        if len(buf) < pos + length:
            return None
        payload = buf[pos:pos + length]
        self.buf = buf[pos + length:]
        return fin, opcode, mask(payload, key) if masked else payload


def exit_code(status: Obj) -> int | None:
    """The exit code a channel-3 ``Status`` reports; ``None`` when the command did not run.

    Success is 0; a non-zero exit comes as ``reason: NonZeroExitCode`` with a cause
    ``ExitCode`` whose message is the number.
    """
    if status.get("status") == "Success":
        return 0
    if status.get("reason") == "NonZeroExitCode":
        for cause in (status.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode":
                try:
                    return int(cause.get("message"))
                except (TypeError, ValueError):
                    break
    return None


# -- connection --------------------------------------------------------------------
def _ssl_context(configuration: Any) -> ssl.SSLContext:
    verify = bool(getattr(configuration, "verify_ssl", True))
    context = ssl.create_default_context()
    ca_file = getattr(configuration, "ssl_ca_cert", None)
    ca_data = getattr(configuration, "ca_cert_data", None)
    if ca_file or ca_data:
        context = ssl.create_default_context(cafile=ca_file or None, cadata=(
            ca_data.decode("ascii") if isinstance(ca_data, bytes) else ca_data) or None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    cert, key = getattr(configuration, "cert_file", None), getattr(configuration, "key_file", None)
    if cert:
        context.load_cert_chain(cert, key or None)
    # The WebSocket upgrade is an HTTP/1.1 request: no ALPN h2.
    context.set_alpn_protocols(["http/1.1"])
    return context


def _connect(configuration: Any, timeout: float) -> tuple[socket.socket, str]:
    parts = urlsplit(configuration.host)
    if getattr(configuration, "proxy", None):
        raise InvalidInput("proxy", "running a command in a pod through a proxy is not supported")
    secure = parts.scheme != "http"
    port = parts.port or (443 if secure else 80)
    try:
        sock = socket.create_connection((parts.hostname, port), timeout=timeout)
    except OSError as exc:
        raise ExecError("cannot reach the Kubernetes API server at %s: %s" % (configuration.host, exc))
    if secure:
        server_name = getattr(configuration, "tls_server_name", None) or parts.hostname
        try:
            sock = _ssl_context(configuration).wrap_socket(sock, server_hostname=server_name)
        except (ssl.SSLError, OSError) as exc:
            sock.close()
            raise ExecError("TLS to the Kubernetes API server at %s failed: %s" % (configuration.host, exc))
    return sock, parts.path.rstrip("/")


def _handshake_request(client: KubeClient, path: str, host_header: str) -> tuple[bytes, str]:
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    # pylint: disable-next=protected-access
    headers = [(k, v) for k, v in client._headers().items() if k not in ("Accept",)]
    headers += list(getattr(client, "_repeated_headers", []))
    lines = ["GET %s HTTP/1.1" % path, "Host: %s" % host_header, "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: %s" % key, "Sec-WebSocket-Version: 13",
             "Sec-WebSocket-Protocol: %s" % ", ".join(PROTOCOLS)]
    lines += ["%s: %s" % (k, v) for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), key


def parse_handshake_response(head: bytes) -> tuple[int, dict[str, str]]:
    """``(status, headers)`` of the server's answer to the upgrade request (header names lowered)."""
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        raise ExecError("WebSocket: the API server answered %r" % lines[0][:100])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return status, headers


def accept_value(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + WS_GUID).digest()).decode("ascii")


def _api_error(where: str, status: int, body: bytes) -> KubeApiError:
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        data = {}
    message = data.get("message") or body[:300].decode("utf-8", "replace")
    text = "exec in %s: %s %s" % (where, status, message)
    if status == 404:
        return NotFound(text, status=status, reason=data.get("reason"))
    return KubeApiError(text, status=status, reason=data.get("reason"))


class _Stream:
    """One exec WebSocket: the socket, the negotiated protocol and a frame reader."""

    def __init__(self, sock: socket.socket, protocol: str | None, leftover: bytes, where: str) -> None:
        self.sock = sock
        self.protocol = protocol
        self.reader = FrameReader()
        self.reader.feed(leftover)
        self.where = where

    def send(self, payload: bytes, opcode: int = OP_BINARY) -> None:
        self.sock.sendall(encode_frame(payload, opcode))

    def close(self) -> None:
        try:
            self.send(struct.pack("!H", 1000), OP_CLOSE)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def _open(client: KubeClient, namespace: str, pod: str, container: str | None, command: Sequence[str],
          stdin: bytes | None, timeout: float, deadline: float) -> _Stream:
    query = [("command", arg) for arg in command]
    if container:
        query.append(("container", container))
    query += [("stdout", "true"), ("stderr", "true"), ("stdin", "true" if stdin is not None else "false"),
              ("tty", "false")]
    where = "pod %s/%s%s" % (namespace, pod, " container %s" % container if container else "")
    sock, prefix = _connect(client.configuration, timeout)
    parts = urlsplit(client.configuration.host)
    path = "%s%s?%s" % (prefix, client.path("v1", "Pod", namespace, pod, "exec"), urlencode(query))
    request, key = _handshake_request(client, path, parts.netloc)
    try:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = _recv(sock, deadline, where)
            if not chunk:
                raise ExecError("exec in %s: the API server closed the connection during the upgrade" % where,
                                pod=pod, container=container)
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        status, headers = parse_handshake_response(head)
        if status != 101:
            length = int(headers.get("content-length") or 0)
            while len(rest) < length:
                chunk = _recv(sock, deadline, where)
                if not chunk:
                    break
                rest += chunk
            raise _api_error(where, status, rest)
        if headers.get("sec-websocket-accept") != accept_value(key):
            raise ExecError("exec in %s: the API server's WebSocket accept key does not match" % where,
                            pod=pod, container=container)
        protocol = headers.get("sec-websocket-protocol")
        if protocol not in PROTOCOLS:
            raise ExecError("exec in %s: the API server chose subprotocol %r; this client speaks %s"
                            % (where, protocol, ", ".join(PROTOCOLS)), pod=pod, container=container)
    except BaseException:
        sock.close()
        raise
    return _Stream(sock, protocol, rest, where)


def _recv(sock: socket.socket, deadline: float, where: str) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ExecTimeout("exec in %s: no answer in time" % where)
    # An SSL socket may hold decrypted bytes that select() does not see.
    pending = sock.pending() if hasattr(sock, "pending") else 0
    if not pending:
        ready, _w, _x = select.select([sock], [], [], remaining)
        if not ready:
            raise ExecTimeout("exec in %s: no answer in time" % where)
    try:
        return sock.recv(CHUNK)
    except (ssl.SSLError, OSError) as exc:
        raise ExecError("exec in %s: the stream broke: %s" % (where, exc))


def run(client: KubeClient, namespace: str, pod: str, command: Sequence[str], container: str | None = None,
        stdin: bytes | str | None = None, timeout: float = 60.0, max_output: int = MAX_OUTPUT) -> ExecResult:
    """Run ``command`` (a list of arguments, no shell) in ``pod`` and return an ``ExecResult``.

    ``stdin`` (bytes or text) is sent on channel 0 and then closed (v5); with a server
    that speaks only v4 the stream cannot be closed, so a command that reads stdin to
    its end would wait until ``timeout``. The command's non-zero exit is reported in
    ``rc``; ``ExecError`` means it could not be run (no such executable, the pod went away),
    ``ExecTimeout`` that it did not finish within ``timeout`` seconds.
    """
    if not isinstance(command, (list, tuple)) or not command or not all(isinstance(arg, str) for arg in command):
        raise InvalidInput("command", "must be a non-empty list of strings")
    if isinstance(stdin, str):
        stdin = stdin.encode("utf-8")
    deadline = time.monotonic() + timeout
    where = "pod %s/%s%s" % (namespace, pod, " container %s" % container if container else "")
    stream = _open(client, namespace, pod, container, command, stdin, min(timeout, client.request_timeout),
                   deadline)
    out: dict[int, list[bytes]] = {STDOUT: [], STDERR: []}
    size = {STDOUT: 0, STDERR: 0}
    truncated = False
    status: Obj | None = None
    try:
        if stdin is not None:
            for start in range(0, len(stdin), CHUNK):
                stream.send(bytes([STDIN]) + stdin[start:start + CHUNK])
            if stream.protocol == PROTOCOLS[0]:
                stream.send(bytes([CLOSE, STDIN]))
        closed = False
        # The answer to the upgrade may already hold frames: read them before waiting for more.
        chunk = b""
        while not closed:
            stream.reader.feed(chunk)
            for opcode, payload in stream.reader.messages():
                if opcode == OP_PING:
                    stream.send(payload, OP_PONG)
                elif opcode == OP_CLOSE:
                    closed = True
                elif opcode in (OP_BINARY, OP_TEXT) and payload:
                    channel, data = payload[0], payload[1:]
                    if channel in out:
                        keep = max(0, min(len(data), max_output - size[channel]))
                        truncated = truncated or keep < len(data)
                        out[channel].append(data[:keep])
                        size[channel] += keep
                    elif channel == ERROR and data:
                        try:
                            status = json.loads(data.decode("utf-8", "replace"))
                        except ValueError:
                            status = {"status": "Failure", "message": data.decode("utf-8", "replace")}
            if not closed:
                chunk = _recv(stream.sock, deadline, where)
                if not chunk:
                    break
    except ExecTimeout:
        raise ExecTimeout("exec in %s: %s did not finish within %s seconds" % (where, command[0], timeout),
                          pod=pod, container=container)
    except ExecError as exc:
        exc.details.update(pod=pod, container=container)
        raise
    finally:
        stream.close()
    if status is None:
        raise ExecError("exec in %s: the stream ended without an exit status" % where, pod=pod,
                        container=container)
    rc = exit_code(status)
    if rc is None:
        raise ExecError("exec in %s: %s could not be run: %s" % (where, command[0], status.get("message")),
                        pod=pod, container=container, reason=status.get("reason"))
    return ExecResult(rc, b"".join(out[STDOUT]), b"".join(out[STDERR]), stream.protocol, truncated)
