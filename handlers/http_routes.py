"""HTTP routes: Slack's single endpoint, health and metrics."""

from __future__ import annotations

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

from bot.domain.vocabulary import IncidentSource
from bot.services.alerts import Ingested


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


def build_routes(
    *, bolt: App, database_ok: Callable[[], bool], metrics: HttpMetrics
) -> list[BaseRoute]:
    async def slack_events(request: Request) -> Response:
        started = time.perf_counter()
        body = await request.body()
        # Bolt's App is synchronous: run it off the event loop so one slow ack blocks no other.
        bolt_response = await run_in_threadpool(bolt.dispatch, to_bolt_request(request, body))
        metrics.observe("/slack/events", bolt_response.status, started)
        return to_starlette_response(bolt_response)

    async def healthz(request: Request) -> Response:
        if await run_in_threadpool(database_ok):
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable", "reason": "database"}, status_code=503)

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/slack/events", slack_events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]
