"""warroom over Socket Mode (slack_bolt's SocketModeHandler) against the emulator's WebSocket."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine

from bot.app import Warroom, create_app
from bot.config import WarroomConfig
from bot.emulator.server import SlackEmulator
from bot.emulator.socket_mode import (
    CLOSE_PROTOCOL_ERROR,
    CLOSE_UNSUPPORTED_DATA,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    accept_key,
    encode_frame,
)
from tests.conftest import make_settings

pytestmark = pytest.mark.integration

APP_TOKEN = "xapp-1-test"


def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.fixture
def socket_app(
    emulator: SlackEmulator, sqlite_engine: Engine, config: WarroomConfig
) -> Iterator[Warroom]:
    """warroom connected over Socket Mode, as `warroom serve --socket-mode` connects it."""
    app = create_app(make_settings(emulator), config, engine=sqlite_engine, socket_mode=True)
    # No web_client= needed: the handler calls apps.connections.open through app.client, which
    # already points at the emulator's api_url.
    handler = SocketModeHandler(app.bolt, APP_TOKEN)
    handler.connect()  # type: ignore[no-untyped-call]
    try:
        assert emulator.socket_connected(timeout=5)
        yield app
    finally:
        handler.close()  # type: ignore[no-untyped-call]
        app.close()


def test_slash_commands_over_socket_mode(socket_app: Warroom, emulator: SlackEmulator) -> None:
    opened = emulator.calls("apps.connections.open")
    assert [call.ok for call in opened] == [True]
    assert opened[0].response["url"].startswith(f"ws://127.0.0.1:{emulator.socket_port}/link/")

    listed = emulator.deliver_slash_command({"text": "list", "user_id": "U0REPORTER"})
    assert listed["text"] == "0 open incidents"
    assert listed["response_type"] == "ephemeral"

    declared = emulator.deliver_slash_command(
        {"text": "declare high Socket mode declaration", "user_id": "U0REPORTER"}
    )
    assert "Declaring incident #1" in declared["text"]
    wait_for(lambda: emulator.calls("pins.add"))
    assert len(emulator.calls("conversations.create")) == 1
    assert emulator.state.channel_by_name("inc-1-socket-mode-declaration") is not None

    # Slack redelivers an envelope it thinks was lost: same fields, same trigger_id.
    first = emulator.socket_envelopes()[-1]["payload"]
    again = emulator.deliver_slash_command(first)
    assert "already declared" in again["text"]
    assert len(emulator.calls("conversations.create")) == 1

    envelopes, acks = emulator.socket_envelopes(), emulator.socket_acks()
    assert [e["type"] for e in envelopes] == ["slash_commands"] * 3
    assert all(e["accepts_response_payload"] for e in envelopes)
    assert [a["envelope_id"] for a in acks] == [e["envelope_id"] for e in envelopes]
    assert envelopes[1]["envelope_id"] != envelopes[2]["envelope_id"]
    assert emulator.validation_failures() == []


def test_the_client_reconnects_when_slack_asks(
    socket_app: Warroom, emulator: SlackEmulator
) -> None:
    assert emulator.request_socket_refresh() == 1
    wait_for(lambda: emulator.socket_hellos() == 2 and emulator.socket_connections() == 1)
    assert len(emulator.calls("apps.connections.open")) == 2
    assert emulator.deliver_slash_command({"text": "list"})["text"] == "0 open incidents"


def test_warroom_serve_socket_mode_end_to_end(tmp_path: Path, emulator: SlackEmulator) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "WARROOM_"))}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **clean,
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_API_URL": emulator.api_url,
        "WARROOM_PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--socket-mode"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert emulator.socket_connected(timeout=20), "warroom serve --socket-mode never connected"
        reply = emulator.deliver_slash_command({"text": "list"})
        assert reply["text"] == "0 open incidents"
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    assert "connected to Slack over Socket Mode" in output


def test_apps_connections_open_wants_an_app_token(emulator: SlackEmulator) -> None:
    def error_of(call: Callable[[], Any]) -> str:
        with pytest.raises(SlackApiError) as raised:
            call()
        return str(raised.value.response["error"])

    client = WebClient(base_url=emulator.api_url)
    assert error_of(lambda: client.apps_connections_open(app_token="xoxb-bot")) == (
        "not_allowed_token_type"
    )
    assert error_of(lambda: client.apps_connections_open(app_token="nope")) == "invalid_auth"
    app_client = WebClient(token=APP_TOKEN, base_url=emulator.api_url)
    assert error_of(app_client.auth_test) == "not_allowed_token_type"
    url = client.apps_connections_open(app_token=APP_TOKEN)["url"]
    assert url.startswith("ws://127.0.0.1:") and "ticket=" in url
    assert [call.ok for call in emulator.calls("apps.connections.open")] == [False, False, True]


# ----- the WebSocket protocol, byte by byte --------------------------------------------


class RawClient:
    """A minimal RFC 6455 client on a bare socket, to check the server's side of the protocol."""

    def __init__(self, url: str) -> None:
        rest = url.removeprefix("ws://")
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {self.key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        self.buffer = b""
        self.pings = 0
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        self.headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (
                line.decode().partition(":") for line in head.split(b"\r\n")[1:] if line
            )
        }

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def send(self, opcode: int, payload: bytes) -> None:
        self.sock.sendall(encode_frame(opcode, payload, mask=os.urandom(4)))

    def recv(self) -> tuple[int, bytes]:
        """The next frame other than the server's keep-alive pings (which are answered)."""
        while True:
            opcode, data = self._frame()
            if opcode != OP_PING:
                return opcode, data
            self.pings += 1
            self.send(OP_PONG, data)

    def _frame(self) -> tuple[int, bytes]:
        first, second = self._exactly(2)
        assert first & 0x80, "server frames are final"
        assert not second & 0x80, "server frames are not masked"
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._exactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._exactly(8))
        return first & 0x0F, self._exactly(length)

    def recv_json(self) -> dict[str, Any]:
        opcode, data = self.recv()
        assert opcode == OP_TEXT
        message = json.loads(data)
        assert isinstance(message, dict)
        return message

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def ws_url(emulator: SlackEmulator) -> str:
    client = WebClient(base_url=emulator.api_url)
    return str(client.apps_connections_open(app_token=APP_TOKEN)["url"])


def test_handshake_hello_ping_and_large_frames(emulator: SlackEmulator, ws_url: str) -> None:
    raw = RawClient(ws_url)
    try:
        assert raw.status == 101
        assert raw.headers["sec-websocket-accept"] == accept_key(raw.key)
        hello = raw.recv_json()
        assert hello["type"] == "hello" and hello["num_connections"] == 1
        assert hello["connection_info"] == {"app_id": "A0WARROOM"}
        assert {"host", "build_number", "approximate_connection_time"} <= set(hello["debug_info"])
        assert emulator.socket_connected(timeout=1)

        raw.send(OP_PING, b"are you there")
        assert raw.recv() == (OP_PONG, b"are you there")

        # 70 KB down (64-bit length) and a ~1 KB ack up (16-bit length).
        big = {"type": "block_actions", "filler": "x" * 70_000}
        answers: list[dict[str, Any]] = []
        sender = threading.Thread(target=lambda: answers.append(emulator.deliver_interactive(big)))
        sender.start()
        envelope = raw.recv_json()
        assert envelope["type"] == "interactive" and envelope["payload"] == big
        assert envelope["accepts_response_payload"] is False
        ack = {"envelope_id": envelope["envelope_id"], "payload": {"text": "y" * 1000}}
        raw.send(OP_TEXT, json.dumps(ack).encode())
        sender.join(timeout=5)
        assert answers == [{"text": "y" * 1000}]

        # Slack (and the emulator) ping clients to keep the link alive.
        while raw.pings == 0:
            opcode, data = raw._frame()
            assert opcode == OP_PING and data
            raw.pings += 1
            raw.send(OP_PONG, data)

        raw.send(OP_CLOSE, struct.pack("!H", 1000) + b"bye")
        assert raw.recv() == (OP_CLOSE, struct.pack("!H", 1000))
        wait_for(lambda: emulator.socket_connections() == 0)
    finally:
        raw.close()


def test_tickets_are_single_use(emulator: SlackEmulator, ws_url: str) -> None:
    first = RawClient(ws_url)
    second = RawClient(ws_url)
    try:
        assert first.status == 101
        assert second.status == 401
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (encode_frame(OP_TEXT, b"{}"), CLOSE_PROTOCOL_ERROR),  # unmasked
        (bytes([0x01, 0x82]) + b"\0\0\0\0{}", CLOSE_UNSUPPORTED_DATA),  # first fragment
        (encode_frame(0x2, b"\x00", mask=b"abcd"), CLOSE_UNSUPPORTED_DATA),  # binary
    ],
    ids=["unmasked", "fragmented", "binary"],
)
def test_refused_frames_close_the_connection(
    emulator: SlackEmulator, ws_url: str, frame: bytes, code: int
) -> None:
    raw = RawClient(ws_url)
    try:
        raw.recv_json()  # hello
        raw.sock.sendall(frame)
        opcode, data = raw.recv()
        assert opcode == OP_CLOSE
        assert struct.unpack("!H", data[:2])[0] == code
    finally:
        raw.close()


def test_delivery_without_a_client_times_out(emulator: SlackEmulator) -> None:
    assert not emulator.socket_connected(timeout=0.05)
    with pytest.raises(TimeoutError):
        emulator.deliver_slash_command({"text": "list"}, timeout=0.1)
