"""Socket Mode for the emulator: a stdlib WebSocket server that speaks Slack's envelope protocol.

`apps.connections.open` hands out single-use `ws://127.0.0.1:PORT/link/?ticket=…` URLs. A client
that connects is greeted with `hello`, then receives the envelopes a test delivers and answers
each with `{"envelope_id": …, "payload": …}`. Only what slack_sdk's builtin client needs of
RFC 6455 is here: the handshake, unfragmented text frames, ping/pong and close.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import secrets
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
LINK_HOST = "applink-emulator"

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_MESSAGE_TOO_BIG = 1009

# Envelopes are a few KB; the cap only stops a broken client from making the server buffer GBs.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

# slack_sdk's builtin client holds its receive lock across a blocking recv (3 s timeout), so its
# close() and its reconnects wait for the next frame to arrive; frequent pings keep both quick.
# Slack pings its clients too, only less often.
DEFAULT_PING_INTERVAL = 0.1

# Interaction payloads whose ack body Slack uses (response_action, options); others are ignored.
_RESPONDING_INTERACTIONS = frozenset({"view_submission", "block_suggestion"})


class ProtocolError(Exception):
    """A frame the server refuses; the connection is closed with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class ConnectionClosedError(Exception):
    """The peer went away in the middle of a frame."""


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2)."""
    digest = hashlib.sha1((key + WEBSOCKET_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def apply_mask(data: bytes, key: bytes) -> bytes:
    """XOR `data` with the 4-byte masking key (masking and unmasking are the same)."""
    if not data:
        return data
    # One big-integer XOR is far faster than a per-byte Python loop on multi-KB payloads.
    repeated = (key * (len(data) // 4 + 1))[: len(data)]
    mixed = int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")
    return mixed.to_bytes(len(data), "big")


def encode_frame(opcode: int, payload: bytes, *, mask: bytes | None = None) -> bytes:
    """One final frame; servers send unmasked, clients pass a 4-byte `mask`."""
    mask_bit = 0x80 if mask is not None else 0
    length = len(payload)
    header = bytes([0x80 | opcode])
    if length <= 125:
        header += bytes([mask_bit | length])
    elif length <= 0xFFFF:
        header += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        header += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if mask is None:
        return header + payload
    return header + mask + apply_mask(payload, mask)


def read_frame(
    read: Callable[[int], bytes], *, max_bytes: int = MAX_MESSAGE_BYTES
) -> tuple[int, bytes]:
    """Read one masked client frame and return (opcode, unmasked payload)."""
    first, second = _read_exactly(read, 2)
    final, reserved, opcode = first & 0x80, first & 0x70, first & 0x0F
    masked, length = second & 0x80, second & 0x7F
    if reserved:
        raise ProtocolError(CLOSE_PROTOCOL_ERROR, "reserved bits set but no extension negotiated")
    if opcode >= OP_CLOSE:
        if opcode not in (OP_CLOSE, OP_PING, OP_PONG):
            raise ProtocolError(CLOSE_PROTOCOL_ERROR, f"unknown control opcode {opcode:#x}")
        if not final or length > 125:
            raise ProtocolError(CLOSE_PROTOCOL_ERROR, "control frames must be final, <= 125 bytes")
    elif opcode not in (OP_CONTINUATION, OP_TEXT, OP_BINARY):
        raise ProtocolError(CLOSE_PROTOCOL_ERROR, f"unknown data opcode {opcode:#x}")
    elif not final or opcode == OP_CONTINUATION:
        # slack_sdk never fragments, so refusing is simpler than reassembling.
        raise ProtocolError(CLOSE_UNSUPPORTED_DATA, "fragmented messages are not supported")
    if not masked:
        raise ProtocolError(CLOSE_PROTOCOL_ERROR, "client frames must be masked")
    if length == 126:
        (length,) = struct.unpack("!H", _read_exactly(read, 2))
    elif length == 127:
        (length,) = struct.unpack("!Q", _read_exactly(read, 8))
        if length >> 63:
            raise ProtocolError(CLOSE_PROTOCOL_ERROR, "64-bit length with the high bit set")
    if length > max_bytes:
        raise ProtocolError(CLOSE_MESSAGE_TOO_BIG, f"message of {length} bytes is too big")
    key = _read_exactly(read, 4)
    return opcode, apply_mask(_read_exactly(read, length), key)


def _read_exactly(read: Callable[[int], bytes], size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = read(remaining)
        if not chunk:
            raise ConnectionClosedError(f"connection closed with {remaining} bytes missing")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def accepts_response_payload(envelope_type: str, payload: dict[str, Any]) -> bool:
    """Whether Slack would use a payload in the ack of this envelope."""
    if envelope_type == "slash_commands":
        return True
    if envelope_type == "interactive":
        return payload.get("type") in _RESPONDING_INTERACTIONS
    return False


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    ack: dict[str, Any] | None = None


class _Link:
    """One open WebSocket connection: frames go out whole under a lock (acks and pongs race)."""

    def __init__(self, sock: socket.socket, write: Callable[[bytes], Any]) -> None:
        self.sock = sock
        self._write = write
        self._send_lock = threading.Lock()
        self.open = True
        self.greeted = False
        self.close_sent = False

    def send_frame(self, opcode: int, payload: bytes) -> None:
        with self._send_lock:
            if self.close_sent:
                raise ConnectionClosedError("close frame already sent")
            if opcode == OP_CLOSE:
                self.close_sent = True
            self._write(encode_frame(opcode, payload))

    def send_json(self, message: dict[str, Any]) -> None:
        self.send_frame(OP_TEXT, json.dumps(message).encode("utf-8"))

    def send_close(self, code: int, reason: str = "") -> None:
        try:
            self.send_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode("utf-8")[:123])
        except (OSError, ConnectionClosedError):
            pass  # the peer is already gone; nothing left to tell it

    def drop(self) -> None:
        self.open = False
        try:
            # shutdown (not just close) wakes the reader thread blocked in recv.
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already disconnected: nothing to wake


class SocketModeServer:
    """The `wss://` side of Slack: tickets, hello, envelopes out, acks in, all recorded."""

    def __init__(self, *, app_id: str, ping_interval: float = DEFAULT_PING_INTERVAL) -> None:
        self.app_id = app_id
        self.ping_interval = ping_interval
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._pinger: threading.Thread | None = None
        self._stopping = threading.Event()
        self._changed = threading.Condition()
        self._tickets: set[str] = set()
        self._links: list[_Link] = []
        self._pending: dict[str, _Pending] = {}
        self._envelopes: list[dict[str, Any]] = []
        self._acks: list[dict[str, Any]] = []
        self._hellos = 0

    # ----- lifecycle ------------------------------------------------------------------

    def start(self) -> SocketModeServer:
        """Bind 127.0.0.1 on a free port and accept connections on a daemon thread."""
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="slack-emulator-socket-mode",
            daemon=True,
        )
        self._thread.start()
        self._stopping.clear()
        if self.ping_interval > 0:
            self._pinger = threading.Thread(
                target=self._ping_forever, name="slack-emulator-socket-ping", daemon=True
            )
            self._pinger.start()
        return self

    def stop(self) -> None:
        """Say "going away" to every client, close the links and release the port."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        if self._pinger is not None:
            self._pinger.join(timeout=5)
            self._pinger = None
        server.shutdown()
        with self._changed:
            links = list(self._links)
        for link in links:
            link.send_close(CLOSE_GOING_AWAY, "server stopping")
            link.drop()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def port(self) -> int:
        """The bound port (only after start())."""
        if self._server is None:
            raise RuntimeError("Socket Mode server is not running")
        return int(self._server.server_address[1])

    # ----- what apps.connections.open and the tests use ---------------------------------

    def open_url(self) -> str:
        """A fresh single-use WebSocket URL, as apps.connections.open returns."""
        ticket = secrets.token_hex(16)
        with self._changed:
            self._tickets.add(ticket)
        query = urlencode({"ticket": ticket, "app_id": self.app_id})
        return f"ws://127.0.0.1:{self.port}/link/?{query}"

    def wait_connected(self, timeout: float) -> bool:
        """True once some client is connected and has been sent hello."""
        with self._changed:
            return self._changed.wait_for(lambda: self._active() is not None, timeout)

    def connection_count(self) -> int:
        """Open connections that have been greeted."""
        with self._changed:
            return sum(1 for link in self._links if link.open and link.greeted)

    def hellos(self) -> int:
        """How many hello messages were sent since start (one per connection made)."""
        with self._changed:
            return self._hellos

    def deliver(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        *,
        accepts_response: bool,
        timeout: float,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send one envelope to the newest connection and return the client's ack message."""
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": envelope_type,
            "accepts_response_payload": accepts_response,
            **(extra or {}),
        }
        pending = _Pending()
        deadline = time.monotonic() + timeout
        with self._changed:
            self._pending[envelope_id] = pending
        try:
            self._send_somewhere(envelope, deadline)
            if not pending.done.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"no ack for {envelope_type} envelope {envelope_id}")
            assert pending.ack is not None
            return pending.ack
        finally:
            with self._changed:
                self._pending.pop(envelope_id, None)

    def request_refresh(self, reason: str = "refresh_requested") -> int:
        """Send Slack's `disconnect` message to every connection; returns how many got it."""
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": LINK_HOST}}
        sent = 0
        with self._changed:
            links = [link for link in self._links if link.open and link.greeted]
        for link in links:
            try:
                link.send_json(message)
                sent += 1
            except (OSError, ConnectionClosedError):
                link.drop()
        return sent

    def envelopes(self) -> list[dict[str, Any]]:
        """Every envelope sent to a client, oldest first."""
        with self._changed:
            return copy.deepcopy(self._envelopes)

    def acks(self) -> list[dict[str, Any]]:
        """Every envelope ack received (`envelope_id`, optional `payload`), oldest first."""
        with self._changed:
            return copy.deepcopy(self._acks)

    # ----- internals ------------------------------------------------------------------

    def _active(self) -> _Link | None:
        # The newest link: during a refresh the older one is about to be dropped by the client.
        for link in reversed(self._links):
            if link.open and link.greeted:
                return link
        return None

    def _ping_forever(self) -> None:
        while not self._stopping.wait(self.ping_interval):
            with self._changed:
                links = [link for link in self._links if link.open and link.greeted]
            for link in links:
                try:
                    link.send_frame(OP_PING, f"emulator:{time.time()}".encode("ascii"))
                except (OSError, ConnectionClosedError):
                    link.drop()

    def _send_somewhere(self, envelope: dict[str, Any], deadline: float) -> None:
        while True:
            with self._changed:
                found = self._changed.wait_for(
                    lambda: self._active() is not None, max(0.0, deadline - time.monotonic())
                )
                link = self._active()
                if not found or link is None:
                    raise TimeoutError("no Socket Mode client is connected")
                self._envelopes.append(copy.deepcopy(envelope))
            try:
                link.send_json(envelope)
                return
            except (OSError, ConnectionClosedError):
                link.drop()
                self._forget(link)

    def _redeem(self, ticket: str) -> bool:
        with self._changed:
            if ticket not in self._tickets:
                return False
            self._tickets.discard(ticket)
            return True

    def _attach(self, sock: socket.socket, write: Callable[[bytes], Any]) -> _Link:
        with self._changed:
            link = _Link(sock, write)
            self._links.append(link)
            count = sum(1 for other in self._links if other.open)
        try:
            link.send_json(self._hello(count))
        except (OSError, ConnectionClosedError):
            self._forget(link)
            raise
        with self._changed:
            link.greeted = True
            self._hellos += 1
            self._changed.notify_all()
        return link

    def _hello(self, num_connections: int) -> dict[str, Any]:
        return {
            "type": "hello",
            "num_connections": num_connections,
            "debug_info": {
                "host": LINK_HOST,
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.app_id},
        }

    def _forget(self, link: _Link) -> None:
        with self._changed:
            link.open = False
            if link in self._links:
                self._links.remove(link)
            self._changed.notify_all()

    def _received(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return  # Slack ignores what it cannot parse; so does the emulator
        if not isinstance(message, dict) or not isinstance(message.get("envelope_id"), str):
            return
        with self._changed:
            self._acks.append(copy.deepcopy(message))
            pending = self._pending.get(message["envelope_id"])
            if pending is not None and pending.ack is None:
                pending.ack = message
                pending.done.set()

    def _serve_link(self, link: _Link, read: Callable[[int], bytes]) -> None:
        try:
            while link.open:
                try:
                    opcode, data = read_frame(read)
                except ProtocolError as error:
                    link.send_close(error.code, error.reason)
                    return
                if opcode == OP_TEXT:
                    try:
                        text = data.decode("utf-8")
                    except UnicodeDecodeError:
                        link.send_close(CLOSE_INVALID_PAYLOAD, "text frame is not UTF-8")
                        return
                    self._received(text)
                elif opcode == OP_BINARY:
                    link.send_close(CLOSE_UNSUPPORTED_DATA, "Socket Mode speaks text frames only")
                    return
                elif opcode == OP_PING:
                    link.send_frame(OP_PONG, data)
                elif opcode == OP_CLOSE:
                    # Echo the peer's status code, as RFC 6455 §5.5.1 asks.
                    if len(data) == 1:
                        link.send_close(CLOSE_PROTOCOL_ERROR, "close payload of one byte")
                    elif len(data) >= 2:
                        link.send_close(struct.unpack("!H", data[:2])[0])
                    else:
                        link.send_close(CLOSE_NORMAL)
                    return
                # A pong needs no answer; the client's own pings keep the link alive.
        except (OSError, ConnectionClosedError):
            return
        finally:
            link.drop()
            self._forget(link)


def _make_handler(owner: SocketModeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # 101 Switching Protocols is HTTP/1.1 only.
        protocol_version = "HTTP/1.1"
        server_version = "SlackEmulatorSocketMode/1.0"
        # Acks and envelopes are small writes; Nagle would hold each one back ~40 ms.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean; envelopes and acks are recorded

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path.rstrip("/") != "/link":
                self.send_error(404, "not a Socket Mode endpoint")
                return
            key = self._websocket_key()
            if key is None:
                return
            ticket = parse_qs(parts.query).get("ticket", [""])[0]
            if not owner._redeem(ticket):
                self.send_error(401, "invalid or already used ticket")
                return
            self.send_response(101, "Switching Protocols")
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept_key(key))
            self.end_headers()
            self.close_connection = True
            try:
                link = owner._attach(self.connection, self.wfile.write)
            except (OSError, ConnectionClosedError):
                return
            owner._serve_link(link, self.rfile.read)

        def _websocket_key(self) -> str | None:
            upgrade = self.headers.get("Upgrade", "").lower()
            connection = {t.strip().lower() for t in self.headers.get("Connection", "").split(",")}
            if upgrade != "websocket" or "upgrade" not in connection:
                self.send_error(400, "expected a WebSocket upgrade")
                return None
            if self.headers.get("Sec-WebSocket-Version", "").strip() != "13":
                self.send_response(426, "Upgrade Required")
                self.send_header("Sec-WebSocket-Version", "13")
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                return None
            key = self.headers.get("Sec-WebSocket-Key", "").strip()
            try:
                valid = len(base64.b64decode(key, validate=True)) == 16
            except (binascii.Error, ValueError):
                valid = False
            if not valid:
                self.send_error(400, "Sec-WebSocket-Key must be 16 bytes in base64")
                return None
            return key

    return Handler
