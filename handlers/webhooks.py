"""The /webhooks/* routes: authenticate, bound, parse, record in one transaction, answer 202.

Senders retry on 5xx and connection errors, so: a repeat of a recorded alert is still a 202,
bad input is a 4xx that names the field (a retry would not help), and a database outage is a
503 (a retry will)."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.alert_payloads import PayloadError, generic_alert_schema, parse_payload
from bot.domain.anomaly import SampleError, parse_samples
from bot.domain.vocabulary import IncidentSource
from bot.errors import StorageUnavailableError
from bot.services.alerts import AlertService, Ingested
from bot.services.anomalies import AnomalyService

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # 1 MiB


class _TooLarge(Exception):
    """The body is over MAX_BODY."""


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_bounded(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY:
            raise _TooLarge
    return bytes(body)


def build_webhook_routes(
    *,
    token: str | None,
    alerts: AlertService,
    anomalies: AnomalyService,
    now: Callable[[], datetime],
    follow_up: Callable[[Ingested], None],
    on_delivery: Callable[[IncidentSource, Ingested], None] | None = None,
) -> list[BaseRoute]:
    """The webhook routes; without a token they answer 503 and accept nothing. `follow_up`
    takes each recorded delivery's Slack work (it must not block)."""

    def authorised(request: Request) -> Response | None:
        if token is None:
            return _error(503, "webhooks are disabled: WARROOM_WEBHOOK_TOKEN is not set")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return _error(401, "missing or wrong bearer token")
        return None

    async def read_json(request: Request) -> Any:
        """The authorised, bounded, parsed body; or the Response that refuses it."""
        refused = authorised(request)
        if refused is not None:
            return refused
        try:
            raw = await _read_bounded(request)
        except _TooLarge:
            return _error(413, f"body larger than {MAX_BODY} bytes")
        except ClientDisconnect:
            return _error(400, "the body was not received")
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return _error(400, f"body is not valid JSON: {error}")

    def accepted(outcome: Ingested, **extra: Any) -> Response:
        return JSONResponse(
            {
                "status": "accepted",
                **extra,
                "alerts": outcome.received,
                "new": outcome.new,
                "duplicates": outcome.duplicates,
                "incidents_declared": len(outcome.declared),
            },
            status_code=202,
        )

    def parse_and_ingest(source: IncidentSource, body: Any) -> Ingested:
        return alerts.ingest(source, parse_payload(source, body, now=now()), body)

    def receiver(source: IncidentSource) -> Callable[[Request], Awaitable[Response]]:
        async def receive(request: Request) -> Response:
            body = await read_json(request)
            if isinstance(body, Response):
                return body
            try:
                # Parsing (pydantic) and recording both run off the event loop.
                outcome = await run_in_threadpool(parse_and_ingest, source, body)
            except PayloadError as error:
                return _error(400, error.user_message)
            except StorageUnavailableError as error:
                log.error("database unavailable for a %s delivery: %s", source.value, error)
                return _error(503, "database unavailable; retry later")
            follow_up(outcome)
            if on_delivery is not None:
                on_delivery(source, outcome)
            return accepted(outcome)

        return receive

    async def receive_metrics(request: Request) -> Response:
        body = await read_json(request)
        if isinstance(body, Response):
            return body
        try:
            samples = parse_samples(body, received_at=now())
        except SampleError as error:
            return _error(400, f"{error.field}: {error.problem}")
        try:
            observed = await run_in_threadpool(anomalies.observe, samples, body)
        except StorageUnavailableError as error:
            log.error("database unavailable for metric samples: %s", error)
            return _error(503, "database unavailable; retry later")
        follow_up(observed.alerts)
        if on_delivery is not None:
            on_delivery(IncidentSource.ANOMALY_DETECTOR, observed.alerts)
        return accepted(
            observed.alerts,
            samples=observed.samples,
            anomalies=[a.to_dict() for a in observed.anomalies],
        )

    async def schema(request: Request) -> Response:
        return JSONResponse(generic_alert_schema())

    return [
        Route("/webhooks/alertmanager", receiver(IncidentSource.ALERTMANAGER), methods=["POST"]),
        Route("/webhooks/grafana", receiver(IncidentSource.GRAFANA), methods=["POST"]),
        Route("/webhooks/generic", receiver(IncidentSource.GENERIC_WEBHOOK), methods=["POST"]),
        Route("/webhooks/generic/schema", schema, methods=["GET"]),
        Route("/webhooks/metrics", receive_metrics, methods=["POST"]),
    ]
