"""Containment endpoints over real HTTP: a local recording server answers from a script, and
the executor's retries, idempotency key and circuit breaker are read off what it received."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time

from bot.clock import SystemClock
from bot.config import parse_config
from bot.containment_executor import ActionExecutor
from bot.domain.containment import ContainmentAction
from bot.domain.incident import Incident
from bot.domain.vocabulary import IncidentSource, IncidentState, IncidentType, Severity
from tests.support_http import CLOSE, RecordingServer, Reply

pytestmark = pytest.mark.integration

SM = ContainmentAction.SAFE_MODE
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
INCIDENT = Incident(
    id=7,
    number=42,
    title="Support bot answering with other customers' orders",
    description="",
    incident_type=IncidentType.DATA_LEAK,
    severity=Severity.HIGH,
    state=IncidentState.DECLARED,
    reporter_id="U0REPORTER",
    source=IncidentSource.SLASH_COMMAND,
    declared_at=T0,
    updated_at=T0,
    affected_systems=("support-bot",),
)


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as running:
        yield running


def executor(base_url: str, **endpoint: Any) -> tuple[ActionExecutor, list[float]]:
    sleeps: list[float] = []
    config = parse_config(
        {
            "containment": {
                "actions": {
                    "safe_mode": {
                        "url": base_url + "/models/{model}/safe-mode?incident={incident}",
                        "headers": {"Authorization": "Bearer ${GATEWAY_TOKEN}"},
                        **endpoint,
                    }
                }
            }
        }
    ).containment
    runner = ActionExecutor(
        config,
        environ={"GATEWAY_TOKEN": "tok-123"},
        clock=SystemClock(),
        sleep=sleeps.append,
    )
    return runner, sleeps


def test_a_successful_call_is_made_once_with_the_idempotency_key(
    server: RecordingServer,
) -> None:
    server.script(Reply(status=202, body='{"mode": "safe"}'))
    runner, sleeps = executor(server.url)

    result = runner.execute(SM, INCIDENT, idempotency_key="inc-42-safe_mode")

    [request] = server.requests
    assert request.method == "POST"
    assert request.path == "/models/support-bot/safe-mode?incident=42"
    assert request.headers["idempotency-key"] == "inc-42-safe_mode"
    assert request.headers["authorization"] == "Bearer tok-123"
    assert json.loads(request.body) == {
        "action": "safe_mode",
        "incident": 42,
        "target": "support-bot",
    }
    assert (result.ok, result.status_code, result.attempts) == (True, 202, 1)
    assert result.response_excerpt == '{"mode": "safe"}'
    assert result.error is None
    assert result.latency_ms >= 0
    assert sleeps == []


def test_two_server_errors_then_success_take_three_attempts_with_one_key(
    server: RecordingServer,
) -> None:
    server.script(503, 500, 200)
    runner, sleeps = executor(server.url)

    result = runner.execute(SM, INCIDENT, idempotency_key="inc-42-safe_mode")

    assert [r.headers["idempotency-key"] for r in server.requests] == ["inc-42-safe_mode"] * 3
    assert (result.ok, result.status_code, result.attempts) == (True, 200, 3)
    assert sleeps == [0.5, 1.0]


def test_a_client_error_is_not_retried(server: RecordingServer) -> None:
    server.script(Reply(status=404, body='{"error": "no such model"}'))
    runner, sleeps = executor(server.url)

    result = runner.execute(SM, INCIDENT, idempotency_key="k")

    assert len(server.requests) == 1
    assert (result.ok, result.status_code, result.attempts) == (False, 404, 1)
    assert result.error == "HTTP 404 from the endpoint"
    assert result.response_excerpt == '{"error": "no such model"}'
    assert sleeps == []


def test_a_refused_connection_is_retried_then_reported() -> None:
    # A bound socket that never listens: connecting to it is refused, and no one else can
    # take the port while the test runs.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        runner, sleeps = executor(f"http://127.0.0.1:{port}", retries=2)

        result = runner.execute(SM, INCIDENT, idempotency_key="k")

    assert not result.ok
    assert result.status_code is None
    assert result.attempts == 3
    assert result.error is not None and result.error.startswith("could not connect")
    assert sleeps == [0.5, 1.0]


def test_a_dropped_connection_is_retried(server: RecordingServer) -> None:
    server.script(CLOSE, 200)
    runner, _ = executor(server.url)

    result = runner.execute(SM, INCIDENT, idempotency_key="k")

    assert len(server.requests) == 2
    assert (result.ok, result.attempts) == (True, 2)


def test_a_slow_endpoint_times_out_and_is_retried(server: RecordingServer) -> None:
    server.script(Reply(delay=0.5), Reply(delay=0.5))
    runner, _ = executor(server.url, timeout=0.1, retries=1)

    result = runner.execute(SM, INCIDENT, idempotency_key="k")

    assert (result.ok, result.attempts) == (False, 2)
    assert result.error == "timed out after 0.1s"
    assert len(server.requests) == 2


def test_five_failed_executions_open_the_breaker_until_one_trial_call(
    server: RecordingServer,
) -> None:
    with freeze_time(T0) as frozen:
        runner, _ = executor(server.url, retries=1)
        server.script(*[503] * 10)
        for number in range(5):
            failed = runner.execute(SM, INCIDENT, idempotency_key=f"k{number}")
            assert (failed.ok, failed.breaker_open, failed.attempts) == (False, False, 2)
        assert len(server.requests) == 10

        refused = runner.execute(SM, INCIDENT, idempotency_key="k5")
        assert refused.breaker_open
        assert refused.attempts == 0
        assert len(server.requests) == 10

        frozen.tick(timedelta(seconds=299))
        assert runner.execute(SM, INCIDENT, idempotency_key="k5").breaker_open
        assert len(server.requests) == 10

        frozen.tick(timedelta(seconds=1))
        server.script(503)
        trial = runner.execute(SM, INCIDENT, idempotency_key="k5")
        assert (trial.breaker_open, trial.attempts, trial.status_code) == (False, 1, 503)
        assert len(server.requests) == 11, "a half-open breaker lets exactly one call through"

        reopened = runner.execute(SM, INCIDENT, idempotency_key="k5")
        assert reopened.breaker_open
        assert len(server.requests) == 11

        frozen.tick(timedelta(seconds=300))
        recovered = runner.execute(SM, INCIDENT, idempotency_key="k5")
        assert (recovered.ok, recovered.attempts) == (True, 1)
        assert runner.execute(SM, INCIDENT, idempotency_key="k6").ok
        assert len(server.requests) == 13


def test_client_errors_do_not_open_the_breaker(server: RecordingServer) -> None:
    server.script(*[400] * 6)
    runner, _ = executor(server.url)

    results = [runner.execute(SM, INCIDENT, idempotency_key=f"k{n}") for n in range(6)]

    assert [r.status_code for r in results] == [400] * 6
    assert not any(r.breaker_open for r in results)
    assert len(server.requests) == 6


def test_each_action_has_its_own_breaker(server: RecordingServer) -> None:
    config = parse_config(
        {
            "containment": {
                "actions": {
                    name: {"url": f"{server.url}/{name}/{{model}}", "retries": 0}
                    for name in ("safe_mode", "model_shutdown")
                }
            }
        }
    ).containment
    runner = ActionExecutor(config, environ={}, clock=SystemClock(), sleep=lambda s: None)
    server.script(*[500] * 5)
    for number in range(5):
        runner.execute(SM, INCIDENT, idempotency_key=f"k{number}")

    assert runner.execute(SM, INCIDENT, idempotency_key="k5").breaker_open
    shutdown = runner.execute(ContainmentAction.MODEL_SHUTDOWN, INCIDENT, idempotency_key="s")
    assert shutdown.ok
    assert server.requests[-1].path == "/model_shutdown/support-bot"
