"""HTTP front of the emulator: a threaded stdlib server that slack_sdk's WebClient can call.

Point a client at it with `WebClient(token="xoxb-…", base_url=emulator.api_url)`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bot.emulator.state import RecordedCall, ValidationFailure, WorkspaceState

# Form-encoded calls carry these as JSON strings; decoding them keeps recorded params and
# state identical whichever encoding slack_sdk picked.
_JSON_FORM_FIELDS = frozenset({"blocks", "attachments", "view", "metadata"})
_VALID_TOKEN_PREFIXES = ("xoxb-", "xoxp-")


@dataclass
class _Fault:
    status: int
    retry_after: int | None
    error: str
    remaining: int


class SlackEmulator:
    """A local fake of the Slack Web API with state, call recording and fault injection."""

    def __init__(
        self,
        *,
        port: int = 0,
        latency: float = 0.0,
        state: WorkspaceState | None = None,
    ) -> None:
        self.state = state or WorkspaceState()
        self.latency = latency
        self._requested_port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._faults: dict[str, deque[_Fault]] = {}
        self._faults_lock = threading.Lock()

    # ----- lifecycle ------------------------------------------------------------------

    def start(self) -> SlackEmulator:
        """Bind and serve on a daemon thread; returns self."""
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(("127.0.0.1", self._requested_port), _make_handler(self))
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
        """Stop serving and release the port."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

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

    # ----- request handling -------------------------------------------------------------

    def _answer(
        self, method: str, params: dict[str, Any], authorization: str | None
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        token = params.pop("token", None)
        if self.latency > 0:
            time.sleep(self.latency)
        fault = self._take_fault(method)
        status, headers, body = 200, {}, {}
        if fault is not None:
            status = fault.status
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            body = {"ok": False, "error": fault.error}
        elif method == "response_url":
            body = self.state.handle_response_url(str(params.get("response_url_key", "")), params)
        else:
            auth_error = _check_auth(authorization, token)
            body = (
                {"ok": False, "error": auth_error}
                if auth_error
                else self.state.handle(method, params)
            )
        self.state.record(
            RecordedCall(method=method, params=params, at=time.time(), status=status, response=body)
        )
        return status, headers, body


def _check_auth(authorization: str | None, form_token: Any) -> str | None:
    token: str | None = None
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    elif isinstance(form_token, str) and form_token:
        token = form_token
    if not token:
        return "not_authed"
    if not token.startswith(_VALID_TOKEN_PREFIXES):
        return "invalid_auth"
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
