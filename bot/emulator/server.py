"""HTTP front of the emulator: a threaded stdlib server that slack_sdk's WebClient can call.

Point a client at it with `WebClient(token="xoxb-…", base_url=emulator.api_url)`. Socket Mode
works too: `apps.connections.open` (with an `xapp-` token) hands out a WebSocket URL served by
`socket_mode.SocketModeServer`, and the `deliver_*` methods push envelopes down it.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bot.emulator.socket_mode import SocketModeServer, accepts_response_payload
from bot.emulator.state import (
    APP_ID,
    BOT_USER_ID,
    GENERAL_CHANNEL_ID,
    TEAM_ID,
    RecordedCall,
    ValidationFailure,
    WorkspaceState,
)

# Form-encoded calls carry these as JSON strings; decoding them keeps recorded params and
# state identical whichever encoding slack_sdk picked.
_JSON_FORM_FIELDS = frozenset({"blocks", "attachments", "view", "metadata"})
_VALID_TOKEN_PREFIXES = ("xoxb-", "xoxp-")
_APP_TOKEN_PREFIX = "xapp-"
# Methods that take only an app-level token; every other method refuses one.
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})


@dataclass
class _Fault:
    status: int
    retry_after: int | None
    error: str
    remaining: int


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a bot with a few dozen requests in flight
    # (Slack takes them all) would see connections reset.
    request_queue_size = 256


class SlackEmulator:
    """A local fake of the Slack Web API with state, call recording and fault injection."""

    def __init__(
        self,
        *,
        port: int = 0,
        latency: float = 0.0,
        state: WorkspaceState | None = None,
        channel_post_interval: float = 0.0,
    ) -> None:
        """`channel_post_interval`: Slack's posting limit per channel (about one message a
        second); a chat.postMessage to a channel sooner than this after the last one is
        answered 429 with Retry-After, as Slack does. 0 (the default) switches it off."""
        self.state = state or WorkspaceState()
        self.latency = latency
        self.channel_post_interval = channel_post_interval
        self._last_post: dict[str, float] = {}
        self._post_lock = threading.Lock()
        self.rate_limited = 0
        self._requested_port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._faults: dict[str, deque[_Fault]] = {}
        self._faults_lock = threading.Lock()
        self._socket: SocketModeServer | None = None
        self._socket_lock = threading.Lock()
        self._delivery_seq = itertools.count(1)

    # ----- lifecycle ------------------------------------------------------------------

    def start(self) -> SlackEmulator:
        """Bind and serve on a daemon thread; returns self."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", self._requested_port), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        # A short poll interval keeps stop() fast (shutdown waits for the next poll).
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="slack-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (Socket Mode included) and release the ports; recordings are kept."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
                self._thread = None
        # After the Web API, so a client reconnecting meanwhile cannot get a fresh URL.
        with self._socket_lock:
            socket_server = self._socket
        if socket_server is not None:
            socket_server.stop()

    def __enter__(self) -> SlackEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (only after start())."""
        if self._server is None:
            raise RuntimeError("emulator is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """Root URL, e.g. http://127.0.0.1:PORT."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """Web API base for WebClient(base_url=...), ending in /api/."""
        return f"{self.base_url}/api/"

    def response_url(
        self,
        key: str,
        *,
        channel: str | None = None,
        user: str | None = None,
        message_ts: str | None = None,
    ) -> str:
        """A response_url for fixtures; with channel/user, respond() posts land in the state."""
        if channel is not None or user is not None or message_ts is not None:
            self.state.register_response_url(key, channel=channel, user=user, message_ts=message_ts)
        return f"{self.base_url}/response/{key}"

    # ----- recording and faults ---------------------------------------------------------

    def calls(self, method: str | None = None) -> list[RecordedCall]:
        """Recorded calls in arrival order, optionally only one method's."""
        return self.state.calls(method)

    def reset_calls(self) -> None:
        """Forget recorded calls and validation failures."""
        self.state.reset_calls()

    def validation_failures(self) -> list[ValidationFailure]:
        """Payloads refused by the Block Kit checks."""
        return self.state.validation_failures()

    def inject_fault(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int | None = 1,
        error: str | None = None,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls of `method` fail with this HTTP status and error."""
        code = error or ("ratelimited" if status == 429 else "internal_error")
        with self._faults_lock:
            self._faults.setdefault(method, deque()).append(
                _Fault(status=status, retry_after=retry_after, error=code, remaining=times)
            )

    def clear_faults(self) -> None:
        """Drop every pending injected fault."""
        with self._faults_lock:
            self._faults.clear()

    def _take_fault(self, method: str) -> _Fault | None:
        with self._faults_lock:
            queue = self._faults.get(method)
            if not queue:
                return None
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.popleft()
            return fault

    def _channel_limit(self, method: str, params: dict[str, Any]) -> _Fault | None:
        """A 429 for a post that comes too soon after the last one in its channel."""
        if method != "chat.postMessage" or self.channel_post_interval <= 0:
            return None
        channel = str(params.get("channel", ""))
        with self._post_lock:
            now = time.monotonic()
            last = self._last_post.get(channel)
            if last is not None and now - last < self.channel_post_interval:
                self.rate_limited += 1
                return _Fault(status=429, retry_after=1, error="ratelimited", remaining=0)
            self._last_post[channel] = now
        return None

    # ----- Socket Mode ----------------------------------------------------------------

    @property
    def socket_port(self) -> int:
        """Port of the Socket Mode WebSocket server (started on first use)."""
        return self._socket_server(running=True).port

    def socket_connected(self, timeout: float = 5.0) -> bool:
        """Wait until a Socket Mode client has connected and been sent hello."""
        return self._socket_server().wait_connected(timeout)

    def socket_connections(self) -> int:
        """Socket Mode connections open right now."""
        return self._socket_server().connection_count()

    def socket_hellos(self) -> int:
        """hello messages sent so far: one per Socket Mode connection ever made."""
        return self._socket_server().hellos()

    def deliver_slash_command(self, fields: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        """Send a slash_commands envelope; returns the ack payload ({} for a bare ack)."""
        return self._deliver("slash_commands", self.slash_command_payload(fields), timeout)

    def deliver_interactive(self, payload: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        """Send an interactive envelope (block_actions, view_submission…); returns its ack."""
        return self._deliver("interactive", dict(payload), timeout)

    def deliver_event(self, event: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        """Send an events_api envelope wrapping `event` in an event_callback; returns the ack."""
        number = next(self._delivery_seq)
        callback = {
            "token": "emulator-verification-token",
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": dict(event),
            "type": "event_callback",
            "event_id": f"Ev{number:08d}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        extra = {"retry_attempt": 0, "retry_reason": ""}
        return self._deliver("events_api", callback, timeout, extra=extra)

    def request_socket_refresh(self, reason: str = "refresh_requested") -> int:
        """Send Slack's `disconnect` message so clients reconnect; returns how many got it."""
        return self._socket_server().request_refresh(reason)

    def socket_envelopes(self) -> list[dict[str, Any]]:
        """Envelopes sent over Socket Mode, oldest first."""
        return self._socket_server().envelopes()

    def socket_acks(self) -> list[dict[str, Any]]:
        """Acks received over Socket Mode (`envelope_id`, optional `payload`), oldest first."""
        return self._socket_server().acks()

    def slash_command_payload(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Slack's full slash-command field set: `fields`, plus defaults for the rest."""
        number = next(self._delivery_seq)
        channel_id = str(fields.get("channel_id", GENERAL_CHANNEL_ID))
        user_id = str(fields.get("user_id", "U0REPORTER"))
        channel = next((c for c in self.state.channels() if c["id"] == channel_id), None)
        payload: dict[str, Any] = {
            "token": "emulator-verification-token",
            "team_id": TEAM_ID,
            "team_domain": "warroom-emulator",
            "channel_id": channel_id,
            "channel_name": channel["name"] if channel else "unknown",
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": "/incident",
            "text": "",
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "trigger_id": f"{number}.{int(time.time())}.{secrets.token_hex(8)}",
            **fields,
        }
        if "response_url" not in fields:
            # Registered, so respond() from the app lands in the state like an ephemeral.
            key = f"socket-{number}"
            payload["response_url"] = self.response_url(key, channel=channel_id, user=user_id)
        return payload

    def _deliver(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        timeout: float,
        *,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        ack = self._socket_server().deliver(
            envelope_type,
            payload,
            accepts_response=accepts_response_payload(envelope_type, payload),
            timeout=timeout,
            extra=extra,
        )
        body = ack.get("payload")
        return body if isinstance(body, dict) else {}

    def _socket_server(self, *, running: bool = False) -> SocketModeServer:
        # Bound only when a URL is first handed out, so emulators that never see Socket Mode
        # open no second port; recordings stay readable after stop().
        with self._socket_lock:
            if self._socket is None:
                self._socket = SocketModeServer(app_id=APP_ID)
            if running:
                if self._server is None:
                    raise RuntimeError("emulator is not running; call start() first")
                self._socket.start()
            return self._socket

    # ----- request handling -------------------------------------------------------------

    def _answer(
        self, method: str, params: dict[str, Any], authorization: str | None
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        token = params.pop("token", None)
        if self.latency > 0:
            time.sleep(self.latency)
        fault = self._take_fault(method) or self._channel_limit(method, params)
        status, headers, body = 200, {}, {}
        if fault is not None:
            status = fault.status
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            body = {"ok": False, "error": fault.error}
        elif method == "response_url":
            body = self.state.handle_response_url(str(params.get("response_url_key", "")), params)
        else:
            auth_error = _check_auth(authorization, token, app_level=method in _APP_TOKEN_METHODS)
            if auth_error:
                body = {"ok": False, "error": auth_error}
            elif method == "apps.connections.open":
                body = {"ok": True, "url": self._socket_server(running=True).open_url()}
            else:
                body = self.state.handle(method, params)
                if method == "files.getUploadURLExternal" and body.get("ok"):
                    body["upload_url"] = f"{self.base_url}{body['upload_url']}"
        self.state.record(
            RecordedCall(method=method, params=params, at=time.time(), status=status, response=body)
        )
        return status, headers, body

    def _upload(self, file_id: str, data: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
        """The file bytes POSTed to an upload URL (step 2 of files_upload_v2); recorded as
        the pseudo-method `file_upload`."""
        fault = self._take_fault("file_upload")
        if fault is not None:
            status, body = fault.status, {"ok": False, "error": fault.error}
        elif self.state.receive_upload(file_id, data):
            status, body = 200, {"ok": True}
        else:
            status, body = 404, {"ok": False, "error": "file_not_found"}
        params = {"file_id": file_id, "bytes": len(data)}
        self.state.record(
            RecordedCall(
                method="file_upload", params=params, at=time.time(), status=status, response=body
            )
        )
        return status, {}, body


def _check_auth(authorization: str | None, form_token: Any, *, app_level: bool) -> str | None:
    token: str | None = None
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    elif isinstance(form_token, str) and form_token:
        token = form_token
    if not token:
        return "not_authed"
    is_app_token = token.startswith(_APP_TOKEN_PREFIX)
    if not is_app_token and not token.startswith(_VALID_TOKEN_PREFIXES):
        return "invalid_auth"
    # A well-formed token of the wrong kind: Slack names the mismatch rather than invalid_auth.
    if is_app_token != app_level:
        return "not_allowed_token_type"
    return None


def _parse_body(content_type: str, raw: bytes) -> dict[str, Any]:
    media = content_type.split(";", 1)[0].strip().lower()
    if not raw:
        return {}
    if media == "application/json":
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("JSON body must be an object")
        return data
    params: dict[str, Any] = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    for key in _JSON_FORM_FIELDS & params.keys():
        value = params[key]
        if isinstance(value, str) and value[:1] in ("[", "{"):
            try:
                params[key] = json.loads(value)
            except ValueError:
                pass  # left as a string so the method answers with Slack's own error
    return params


def _make_handler(emulator: SlackEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "SlackEmulator/1.0"

        def do_POST(self) -> None:
            self._dispatch()

        def do_GET(self) -> None:
            self._dispatch()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean; every call is in emulator.calls()

        def _dispatch(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if parts.path.startswith("/upload/"):
                self._send(*emulator._upload(parts.path[len("/upload/") :], raw))
                return
            try:
                params = _parse_body(self.headers.get("Content-Type", ""), raw)
            except ValueError:
                self._send(200, {}, {"ok": False, "error": "invalid_json"})
                return
            for key, value in parse_qsl(parts.query, keep_blank_values=True):
                params.setdefault(key, value)
            if parts.path.startswith("/api/") and len(parts.path) > len("/api/"):
                method = parts.path[len("/api/") :]
                status, headers, body = emulator._answer(
                    method, params, self.headers.get("Authorization")
                )
            elif parts.path.startswith("/response/"):
                params["response_url_key"] = parts.path[len("/response/") :]
                status, headers, body = emulator._answer("response_url", params, None)
            else:
                status, headers, body = 404, {}, {"ok": False, "error": "not_found"}
            self._send(status, headers, body)

        def _send(self, status: int, headers: dict[str, str], body: dict[str, Any]) -> None:
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
