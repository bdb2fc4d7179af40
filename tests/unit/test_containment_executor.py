"""The containment executor without a network: URL fields, header secrets, the endpoint
configuration it accepts, backoff and the breaker's window (httpx.MockTransport in-process)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.config import Containment, parse_config
from bot.containment_executor import ActionExecutor, ExecutionResult
from bot.domain.containment import ContainmentAction
from bot.domain.incident import Incident
from bot.domain.vocabulary import IncidentSource, IncidentState, IncidentType, Severity
from bot.errors import ConfigurationError

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SM = ContainmentAction.SAFE_MODE
SD = ContainmentAction.MODEL_SHUTDOWN
AR = ContainmentAction.ACCESS_REVOCATION
NI = ContainmentAction.NETWORK_ISOLATION


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta


def make_incident(*, systems: tuple[str, ...] = ("fraud-scorer",), number: int = 42) -> Incident:
    return Incident(
        id=7,
        number=number,
        title="Model leaking card numbers",
        description="",
        incident_type=IncidentType.DATA_LEAK,
        severity=Severity.HIGH,
        state=IncidentState.DECLARED,
        reporter_id="U0REPORTER",
        source=IncidentSource.SLASH_COMMAND,
        declared_at=T0,
        updated_at=T0,
        affected_systems=systems,
    )


def containment(actions: dict[str, Any]) -> Containment:
    return parse_config({"containment": {"actions": actions}}).containment


class Recorder:
    """An in-process endpoint: answers from a list of statuses and keeps every request."""

    def __init__(self, *statuses: int, body: str = "ok") -> None:
        self.statuses = list(statuses)
        self.body = body
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.statuses.pop(0) if self.statuses else 200
        return httpx.Response(status, text=self.body)


def executor(
    actions: dict[str, Any],
    handler: Callable[[httpx.Request], httpx.Response] | None = None,
    *,
    environ: dict[str, str] | None = None,
    clock: FakeClock | None = None,
    sleeps: list[float] | None = None,
) -> ActionExecutor:
    return ActionExecutor(
        containment(actions),
        environ=environ if environ is not None else {},
        clock=clock or FakeClock(),
        transport=httpx.MockTransport(handler or Recorder()),
        sleep=(sleeps.append if sleeps is not None else lambda seconds: None),
    )


ENDPOINTS = {
    "safe_mode": {"url": "https://gw.example/models/{model}/safe-mode"},
    "model_shutdown": {"url": "https://gw.example/incidents/{incident}/systems/{system}"},
    "access_revocation": {"url": "https://gw.example/incidents/{incident}/revoke"},
}


def test_required_fields_are_the_url_placeholders() -> None:
    runner = executor(ENDPOINTS)
    assert runner.required_fields(SM) == {"model"}
    assert runner.required_fields(SD) == {"incident", "system"}
    assert runner.required_fields(AR) == {"incident"}
    assert runner.required_fields(NI) == set()


def test_only_actions_with_an_endpoint_have_one() -> None:
    runner = executor(ENDPOINTS)
    assert runner.has_endpoint(SM)
    assert not runner.has_endpoint(NI)


def test_an_incident_naming_no_system_leaves_the_model_missing() -> None:
    runner = executor(ENDPOINTS)
    unnamed = make_incident(systems=())
    assert runner.missing_fields(SM, unnamed) == {"model"}
    assert runner.missing_fields(SD, unnamed) == {"system"}
    assert runner.missing_fields(AR, unnamed) == set()
    assert runner.missing_fields(SM, make_incident()) == set()


def test_a_target_set_by_hand_supplies_the_model() -> None:
    runner = executor(ENDPOINTS)
    assert runner.missing_fields(SM, make_incident(systems=()), target="support-bot") == set()
    assert runner.missing_fields(SM, make_incident(systems=()), target="  ") == {"model"}


def test_the_url_is_filled_from_the_incident_and_escaped() -> None:
    recorder = Recorder()
    runner = executor(ENDPOINTS, recorder)
    runner.execute(SD, make_incident(systems=("scorer v2/eu", "other")), idempotency_key="k1")
    runner.execute(SM, make_incident(), idempotency_key="k2", target="support-bot")
    assert [str(r.url) for r in recorder.requests] == [
        "https://gw.example/incidents/42/systems/scorer%20v2%2Feu",
        "https://gw.example/models/support-bot/safe-mode",
    ]


def test_an_action_whose_target_is_missing_is_not_called() -> None:
    recorder = Recorder()
    result = executor(ENDPOINTS, recorder).execute(
        SM, make_incident(systems=()), idempotency_key="k"
    )
    assert recorder.requests == []
    assert result == ExecutionResult(
        ok=False,
        status_code=None,
        latency_ms=0.0,
        response_excerpt="",
        error="target needed: the incident names no model",
        attempts=0,
    )


def test_header_secrets_are_read_from_the_environment_when_called() -> None:
    recorder = Recorder()
    actions = {
        "safe_mode": {
            "url": "https://gw.example/{model}",
            "headers": {
                "Authorization": "Bearer ${GATEWAY_TOKEN}",
                "X-Tenant": "${TENANT}-prod",
                "Accept": "application/json",
            },
        }
    }
    environ = {"GATEWAY_TOKEN": "s3cr3t-token", "TENANT": "acme"}
    executor(actions, recorder, environ=environ).execute(SM, make_incident(), idempotency_key="k")
    [request] = recorder.requests
    assert request.headers["Authorization"] == "Bearer s3cr3t-token"
    assert request.headers["X-Tenant"] == "acme-prod"
    assert request.headers["Accept"] == "application/json"


@pytest.mark.parametrize("environ", [{}, {"GATEWAY_TOKEN": ""}])
def test_a_missing_secret_is_named_and_nothing_is_called(environ: dict[str, str]) -> None:
    recorder = Recorder()
    actions = {
        "safe_mode": {
            "url": "https://gw.example/{model}",
            "headers": {"Authorization": "Bearer ${GATEWAY_TOKEN}"},
        }
    }
    result = executor(actions, recorder, environ=environ).execute(
        SM, make_incident(), idempotency_key="k"
    )
    assert recorder.requests == []
    assert result.error == "GATEWAY_TOKEN is not set"
    assert not result.ok
    assert result.attempts == 0


def test_the_response_excerpt_is_at_most_500_characters() -> None:
    result = executor(ENDPOINTS, Recorder(200, body="x" * 2000)).execute(
        SM, make_incident(), idempotency_key="k"
    )
    assert result.ok
    assert result.response_excerpt == "x" * 500


def test_retries_back_off_exponentially() -> None:
    sleeps: list[float] = []
    recorder = Recorder(500, 502, 503, 504)
    result = executor(ENDPOINTS, recorder, sleeps=sleeps).execute(
        SM, make_incident(), idempotency_key="k"
    )
    assert sleeps == [0.5, 1.0, 2.0]
    assert result.attempts == 4
    assert result.status_code == 504
    assert result.error == "HTTP 504 from the endpoint"


def test_the_breaker_follows_the_injected_clock() -> None:
    clock = FakeClock()
    recorder = Recorder(*[503] * 6)
    actions = {"safe_mode": {"url": "https://gw.example/{model}", "retries": 0}}
    runner = executor(actions, recorder, clock=clock)
    for number in range(5):
        assert runner.execute(SM, make_incident(), idempotency_key=f"k{number}").attempts == 1
    clock.advance(timedelta(seconds=299))
    refused = runner.execute(SM, make_incident(), idempotency_key="k5")
    assert refused.breaker_open
    assert refused.error is not None and "2026-03-01 09:05:00 UTC" in refused.error
    assert len(recorder.requests) == 5
    clock.advance(timedelta(seconds=1))
    trial = runner.execute(SM, make_incident(), idempotency_key="k6")
    assert not trial.breaker_open
    assert len(recorder.requests) == 6


def test_an_action_without_an_endpoint_cannot_be_executed() -> None:
    with pytest.raises(ValueError, match="network_isolation has no endpoint"):
        executor(ENDPOINTS).execute(NI, make_incident(), idempotency_key="k")


@pytest.mark.parametrize("url", ["http:///models/{model}", "http://[::1/{model}"])
def test_a_url_without_a_usable_host_is_refused_when_the_executor_is_built(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"containment\.actions\.safe_mode\.url is not"):
        executor({"safe_mode": {"url": url}})


def test_endpoint_defaults() -> None:
    config = parse_config(
        {"containment": {"actions": {"safe_mode": {"url": "https://gw.example/{model}"}}}}
    ).containment
    endpoint = config.actions["safe_mode"]
    assert (endpoint.method, endpoint.headers, endpoint.retries) == ("POST", {}, 3)
    assert endpoint.timeout == timedelta(seconds=10)
    assert config.two_person == []
    assert config.proposal_ttl == timedelta(minutes=30)


def test_two_person_actions_and_proposal_ttl_are_read() -> None:
    config = parse_config(
        {"containment": {"two_person": ["model_shutdown"], "proposal_ttl": "45m"}}
    ).containment
    assert config.two_person == ["model_shutdown"]
    assert config.proposal_ttl == timedelta(minutes=45)


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer ${GATEWAY_TOKEN}"},
        {"X-Api-Key": "${GATEWAY_KEY}"},
        {"Content-Type": "application/json", "X-Tenant": "${TENANT}-prod"},
        {"Anthropic-Version": "2023-06-01"},
    ],
)
def test_headers_without_literal_secrets_are_accepted(headers: dict[str, str]) -> None:
    endpoint = {"url": "https://gw.example/{model}", "headers": headers}
    assert containment({"safe_mode": endpoint}).actions["safe_mode"].headers == headers


def _endpoint(**fields: Any) -> dict[str, Any]:
    return {"containment": {"actions": {"safe_mode": {"url": "https://gw/{model}", **fields}}}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            _endpoint(url="https://gw/{modle}"),
            "containment.actions.safe_mode.url: Value error, unknown placeholder '{modle}'; "
            "known: {model}, {system}, {incident}",
        ),
        (_endpoint(url="https://gw/{model"), "safe_mode.url: Value error, unbalanced brace"),
        (
            _endpoint(headers={"Authorization": "Bearer sk-live-abc"}),
            "safe_mode.headers: Value error, header 'Authorization' carries a credential",
        ),
        (
            _endpoint(headers={"X-Gateway-Token": "hunter2"}),
            "header 'X-Gateway-Token' carries a credential",
        ),
        (
            _endpoint(headers={"X-Customer": "cus_9f8e7d6c5b4a3f2e1d"}),
            "header 'X-Customer' looks like it holds a secret",
        ),
        (
            _endpoint(headers={"X-Tenant": "$TENANT"}),
            "header 'X-Tenant': write environment variables as ${NAME}",
        ),
        (
            _endpoint(headers={"Idempotency-Key": "fixed"}),
            "'Idempotency-Key' is set by warroom",
        ),
        (_endpoint(headers={"Bad Name": "x"}), "'Bad Name' is not a header name"),
        (_endpoint(timeout="soon"), "containment.actions.safe_mode.timeout"),
        (_endpoint(retries=-1), "containment.actions.safe_mode.retries"),
        (_endpoint(timeot="5s"), "unknown key 'containment.actions.safe_mode.timeot'"),
        (
            {"containment": {"two_person": ["nuke"]}},
            "containment.two_person: Value error, unknown action 'nuke'",
        ),
        ({"containment": {"proposal_ttl": "0m"}}, "containment.proposal_ttl"),
        ({"containment": {"actions": {"kill": {"url": "https://gw"}}}}, "unknown action 'kill'"),
    ],
)
def test_bad_endpoint_configuration_names_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_config(data, source="warroom.yml")
    assert message in str(raised.value)


def test_a_refused_secret_is_not_echoed_in_the_error() -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_config(_endpoint(headers={"Authorization": "Bearer sk-live-abc"}))
    assert "sk-live-abc" not in str(raised.value)
