"""HTTP routes: Slack's single endpoint, health and metrics."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.domain.vocabulary import IncidentSource
from bot.logging_setup import log_context
from bot.metrics import TrafficMetrics
from bot.services.alerts import Ingested

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_KEY = REQUEST_ID_HEADER.encode()


class HttpMetrics:
    """Request counts and latencies, in a registry of the app's own."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "warroom_http_requests",
            "HTTP requests served",
            ["route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "warroom_http_request_seconds",
            "Time to answer an HTTP request",
            ["route"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )

        self.alerts = Counter(
            "warroom_alerts",
            "Alerts received on the webhooks",
            ["source", "outcome"],
            registry=registry,
        )

    def count_alerts(self, source: IncidentSource, outcome: Ingested) -> None:
        self.alerts.labels(source=source.value, outcome="new").inc(outcome.new)
        self.alerts.labels(source=source.value, outcome="duplicate").inc(outcome.duplicates)

    def observe(self, route: str, status: int, started: float) -> None:
        self.requests.labels(route=route, status=str(status)).inc()
        self.latency.labels(route=route).observe(time.perf_counter() - started)


class RequestContext:
    """ASGI middleware: tags the request's log lines with a request id (the caller's
    X-Request-Id, else a new one, echoed in the answer) and counts /webhooks/* answers by
    route and outcome."""

    def __init__(self, app: ASGIApp, *, traffic: TrafficMetrics | None = None) -> None:
        self.app = app
        self.traffic = traffic

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope.get("headers") or () if k == _REQUEST_ID_KEY), b"")
        request_id = given.decode("latin-1")[:64] or secrets.token_hex(8)
        counted = self.traffic is not None and str(scope.get("path", "")).startswith("/webhooks/")
        started = False

        async def send_tagged(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                # Counted as the answer starts: a webhook's background follow-up runs after.
                if counted and self.traffic is not None:
                    self.traffic.count_webhook(scope["path"], int(message["status"]))
                headers = list(message.get("headers") or [])
                headers.append((_REQUEST_ID_KEY, request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        with log_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_tagged)
            except Exception:
                if counted and not started and self.traffic is not None:
                    self.traffic.count_webhook(scope["path"], 500)
                raise


def build_routes(
    *,
    bolt: App,
    database_ok: Callable[[], bool],
    metrics: HttpMetrics,
    scheduler_running: Callable[[], bool] = lambda: False,
) -> list[BaseRoute]:
    async def slack_events(request: Request) -> Response:
        started = time.perf_counter()
        body = await request.body()
        # Bolt's App is synchronous: run it off the event loop so one slow ack blocks no other.
        bolt_response = await run_in_threadpool(bolt.dispatch, to_bolt_request(request, body))
        metrics.observe("/slack/events", bolt_response.status, started)
        return to_starlette_response(bolt_response)

    async def healthz(request: Request) -> Response:
        """200 while the database answers, 503 when it does not; the scheduler's state is
        reported but a stopped scheduler (Socket Mode tests, a draining replica) is no 503."""
        scheduler = "running" if scheduler_running() else "stopped"
        if await run_in_threadpool(database_ok):
            return JSONResponse({"status": "ok", "database": "ok", "scheduler": scheduler})
        return JSONResponse(
            {
                "status": "unavailable",
                "reason": "database",
                "database": "unavailable",
                "scheduler": scheduler,
            },
            status_code=503,
        )

    async def prometheus(request: Request) -> Response:
        # The database collector queries at scrape time: off the event loop.
        text = await run_in_threadpool(generate_latest, metrics.registry)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/slack/events", slack_events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]
