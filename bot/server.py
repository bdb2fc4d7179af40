"""Serving the ASGI app with uvicorn: in the foreground for `serve`, in a thread for tests."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp


def _config(app: ASGIApp, *, host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        # uvicorn's records go through warroom's root handler (JSON, secrets masked).
        log_config=None,
        lifespan="off",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


class _DrainingServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM once it has drained its requests, which would end the process
    before warroom drains its own work after the ack; this server simply returns instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def serve_forever(app: ASGIApp, *, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM, drain open requests, then return to the caller."""
    _DrainingServer(_config(app, host=host, port=port, log_level="info")).run()


class BackgroundServer:
    """The real server on an ephemeral port in a daemon thread."""

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on such sockets, and without it
        # uvicorn's separate header and body writes wait ~40 ms on Nagle and delayed ACKs.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        self._server = uvicorn.Server(
            _config(app, host=self.host, port=self.port, log_level="warning")
        )
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            daemon=True,
            name="warroom-http",
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
