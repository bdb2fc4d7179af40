"""Carrying out containment actions over HTTP, for actions with an endpoint in the YAML.

Each call fills the endpoint's URL template from the incident, reads header secrets from the
environment (`${NAME}`; the YAML never holds them), sends an `Idempotency-Key` that stays the
same on every attempt, and retries connect errors, timeouts and 5xx answers with exponential
backoff (tenacity). A circuit breaker per action (pybreaker) stops calling an endpoint after
five consecutive failed executions and, five minutes later, lets one trial call through (a
single attempt): success closes it, failure opens it for another five minutes.

Nothing here raises for an HTTP or network failure: the `ExecutionResult` says what happened,
so the caller can store it and show it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pybreaker
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from bot.clock import Clock
from bot.config import Containment, ContainmentEndpoint
from bot.domain.containment import ContainmentAction
from bot.domain.incident import Incident
from bot.errors import ConfigurationError

BREAKER_FAILURES = 5
BREAKER_RECOVERY = timedelta(seconds=300)
EXCERPT_LIMIT = 500
# Backoff before retry n (1-based): 0.5 s, 1 s, 2 s, ... capped at 8 s.
BACKOFF_MULTIPLIER = 0.5
BACKOFF_MAX = 8.0

_SECRET = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_BODY_METHODS = ("POST", "PUT", "PATCH")


@dataclass(frozen=True)
class ExecutionResult:
    """What one execution of an action's endpoint came to.

    `latency_ms` is the last attempt's; `attempts` is 0 when no call was made (a missing
    target or secret, or the breaker open); `breaker_open` is True only when the call was
    skipped because the endpoint's breaker was open.
    """

    ok: bool
    status_code: int | None
    latency_ms: float
    response_excerpt: str
    error: str | None
    attempts: int
    breaker_open: bool = False


class ActionExecutor:
    """Executes containment actions against their configured HTTP endpoints."""

    def __init__(
        self,
        config: Containment,
        *,
        environ: Mapping[str, str] = os.environ,
        clock: Clock,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._endpoints = {
            ContainmentAction(name): endpoint for name, endpoint in config.actions.items()
        }
        for action, endpoint in self._endpoints.items():
            _check_url(action, endpoint)
        self._environ = environ
        self._sleep = sleep
        self._client = httpx.Client(
            transport=transport, follow_redirects=False, headers={"User-Agent": "warroom"}
        )
        self._storages = {action: _ClockedStorage(clock) for action in self._endpoints}
        self._breakers = {
            action: _breaker(action, storage) for action, storage in self._storages.items()
        }

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def has_endpoint(self, action: ContainmentAction) -> bool:
        """True when the YAML gives this action an endpoint to call."""
        return action in self._endpoints

    def required_fields(self, action: ContainmentAction) -> set[str]:
        """The incident fields the action's URL needs: some of `model`, `system`, `incident`."""
        endpoint = self._endpoints.get(action)
        return set(endpoint.url_fields()) if endpoint is not None else set()

    def missing_fields(
        self, action: ContainmentAction, incident: Incident, *, target: str | None = None
    ) -> set[str]:
        """The fields the URL needs that neither the incident nor `target` supplies."""
        values = _field_values(incident, target)
        return {name for name in self.required_fields(action) if values.get(name) is None}

    def execute(
        self,
        action: ContainmentAction,
        incident: Incident,
        *,
        idempotency_key: str,
        target: str | None = None,
    ) -> ExecutionResult:
        """Call the action's endpoint (with retries, behind its breaker) and report the result."""
        endpoint = self._endpoints.get(action)
        if endpoint is None:
            raise ValueError(f"{action.value} has no endpoint in containment.actions")
        missing = self.missing_fields(action, incident, target=target)
        if missing:
            names = ", ".join(sorted(missing))
            return _not_called(f"target needed: the incident names no {names}")
        headers, unset = _resolve_headers(endpoint.headers, self._environ)
        if unset is not None:
            return _not_called(f"{unset} is not set")
        values = _field_values(incident, target)
        url = endpoint.url
        for name in endpoint.url_fields():
            url = url.replace(f"{{{name}}}", quote(values[name] or "", safe=""))
        headers["Idempotency-Key"] = idempotency_key
        body: dict[str, str | int | None] | None = None
        if endpoint.method in _BODY_METHODS:
            body = {
                "action": action.value,
                "incident": incident.number,
                "target": values["model"],
            }
        call = _Call(self._client, endpoint, url, headers, body, self._sleep)
        breaker = self._breakers[action]
        try:
            # Evaluated inside the breaker's lock, after an expired open window has turned
            # half-open: the trial is a single attempt, not a burst of retries.
            return breaker.call(
                lambda: call.run(trial=breaker.current_state == pybreaker.STATE_HALF_OPEN)
            )
        except pybreaker.CircuitBreakerError:
            reopens = self._storages[action].reopens_at()
            return _not_called(
                f"circuit breaker open after {BREAKER_FAILURES} consecutive failures; "
                f"next trial call after {reopens:%Y-%m-%d %H:%M:%S} UTC",
                breaker_open=True,
            )
        except _EndpointFailed as failed:
            return failed.result


def call_endpoint(
    client: httpx.Client,
    endpoint: ContainmentEndpoint,
    *,
    url: str,
    body: dict[str, str | int | None] | None,
    idempotency_key: str,
    environ: Mapping[str, str] = os.environ,
    sleep: Callable[[float], None] = time.sleep,
) -> ExecutionResult:
    """Call a configured endpoint once (with its retries on transient failures), outside any
    breaker: what recovery steps use, since each is approved and run by hand."""
    headers, unset = _resolve_headers(endpoint.headers, environ)
    if unset is not None:
        return _not_called(f"{unset} is not set")
    headers["Idempotency-Key"] = idempotency_key
    try:
        return _Call(client, endpoint, url, headers, body, sleep).run(trial=False)
    except _EndpointFailed as failed:
        return failed.result


class _EndpointFailed(Exception):
    """An execution that counts against the breaker (5xx or network failure after retries)."""

    def __init__(self, result: ExecutionResult) -> None:
        super().__init__(result.error)
        self.result = result


class _ServerError(Exception):
    """A 5xx answer, raised so that tenacity retries it."""

    def __init__(self, response: httpx.Response, latency_ms: float) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.latency_ms = latency_ms


class _Call:
    """One execution: up to 1 + retries attempts with exponential backoff between them (one
    attempt only when it is the half-open breaker's trial)."""

    def __init__(
        self,
        client: httpx.Client,
        endpoint: ContainmentEndpoint,
        url: str,
        headers: dict[str, str],
        body: dict[str, str | int | None] | None,
        sleep: Callable[[float], None],
    ) -> None:
        self._client = client
        self._endpoint = endpoint
        self._url = url
        self._headers = headers
        self._body = body
        self._sleep = sleep
        self._attempts = 0
        self._latency_ms = 0.0

    def run(self, *, trial: bool) -> ExecutionResult:
        retrying = Retrying(
            stop=stop_after_attempt(1 if trial else self._endpoint.retries + 1),
            wait=wait_exponential(multiplier=BACKOFF_MULTIPLIER, max=BACKOFF_MAX),
            retry=retry_if_exception(_is_transient),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            response = retrying(self._attempt)
        except _ServerError as error:
            raise _EndpointFailed(
                ExecutionResult(
                    ok=False,
                    status_code=error.response.status_code,
                    latency_ms=error.latency_ms,
                    response_excerpt=_excerpt(error.response),
                    error=f"HTTP {error.response.status_code} from the endpoint",
                    attempts=self._attempts,
                )
            ) from None
        except httpx.TransportError as error:
            raise _EndpointFailed(
                ExecutionResult(
                    ok=False,
                    status_code=None,
                    latency_ms=self._latency_ms,
                    response_excerpt="",
                    error=_describe_transport_error(error, self._endpoint),
                    attempts=self._attempts,
                )
            ) from None
        ok = response.is_success
        return ExecutionResult(
            ok=ok,
            status_code=response.status_code,
            latency_ms=self._latency_ms,
            response_excerpt=_excerpt(response),
            error=None if ok else f"HTTP {response.status_code} from the endpoint",
            attempts=self._attempts,
        )

    def _attempt(self) -> httpx.Response:
        self._attempts += 1
        started = time.perf_counter()
        try:
            response = self._client.request(
                self._endpoint.method,
                self._url,
                headers=self._headers,
                json=self._body,
                timeout=self._endpoint.timeout.total_seconds(),
            )
        finally:
            self._latency_ms = round((time.perf_counter() - started) * 1000, 1)
        if response.is_server_error:
            raise _ServerError(response, self._latency_ms)
        return response


class _ClockedStorage(pybreaker.CircuitMemoryStorage):
    """pybreaker's in-memory state, timed by warroom's clock rather than the wall clock.

    pybreaker decides that the open window has passed by comparing `datetime.now(UTC)` with
    `opened_at`. Reporting `opened_at` as "now, less the time that has passed on our clock
    since the breaker opened" makes that comparison follow the injected clock, so a test's
    clock (or freezegun) moves the breaker through its window without real waiting.
    """

    def __init__(self, clock: Clock) -> None:
        super().__init__(pybreaker.STATE_CLOSED)
        self._clock = clock
        self._opened_on_clock: datetime | None = None

    @property
    def opened_at(self) -> datetime | None:
        if self._opened_on_clock is None:
            return None
        return datetime.now(UTC) - (self._clock.now() - self._opened_on_clock)

    @opened_at.setter
    def opened_at(self, value: datetime) -> None:
        self._opened_on_clock = self._clock.now()

    def reopens_at(self) -> datetime:
        """When the breaker, opened now or earlier, lets its trial call through."""
        opened = self._opened_on_clock or self._clock.now()
        return opened + BREAKER_RECOVERY


def _breaker(action: ContainmentAction, storage: _ClockedStorage) -> pybreaker.CircuitBreaker:
    # throw_new_error_on_trip=False: the call that trips the breaker still reports its own
    # failure; only later calls are refused with CircuitBreakerError. The breaker's lock is
    # held for the whole call, so calls to one endpoint run one at a time and half-open lets
    # exactly one trial through.
    return pybreaker.CircuitBreaker(
        fail_max=BREAKER_FAILURES,
        reset_timeout=BREAKER_RECOVERY.total_seconds(),
        state_storage=storage,
        name=action.value,
        throw_new_error_on_trip=False,
    )


def _check_url(action: ContainmentAction, endpoint: ContainmentEndpoint) -> None:
    sample = endpoint.url
    for name in endpoint.url_fields():
        sample = sample.replace(f"{{{name}}}", "x")
    try:
        host = httpx.URL(sample).host
    except httpx.InvalidURL as error:
        host, problem = "", str(error)
    else:
        problem = "it names no host"
    if not host:
        raise ConfigurationError(
            f"containment.actions.{action.value}.url is not a usable URL: {problem}"
        )


def _field_values(incident: Incident, target: str | None) -> dict[str, str | None]:
    chosen = (target or "").strip() or (
        incident.affected_systems[0] if incident.affected_systems else None
    )
    return {"model": chosen, "system": chosen, "incident": str(incident.number)}


def _resolve_headers(
    templates: Mapping[str, str], environ: Mapping[str, str]
) -> tuple[dict[str, str], str | None]:
    """Header values with `${NAME}` filled from `environ`, or the first variable not set."""
    headers: dict[str, str] = {}
    for name, template in templates.items():
        for variable in _SECRET.findall(template):
            if not environ.get(variable):
                return {}, variable
        headers[name] = _SECRET.sub(lambda match: environ[match.group(1)], template)
    return headers, None


def _is_transient(error: BaseException) -> bool:
    return isinstance(
        error,
        _ServerError | httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError,
    )


def _describe_transport_error(error: httpx.TransportError, endpoint: ContainmentEndpoint) -> str:
    if isinstance(error, httpx.TimeoutException):
        return f"timed out after {endpoint.timeout.total_seconds():g}s"
    if isinstance(error, httpx.ConnectError):
        return f"could not connect: {error}"
    if isinstance(error, httpx.RemoteProtocolError):
        return f"the endpoint closed the connection: {error}"
    return f"{type(error).__name__}: {error}"


def _excerpt(response: httpx.Response) -> str:
    return response.text[:EXCERPT_LIMIT]


def _not_called(error: str, *, breaker_open: bool = False) -> ExecutionResult:
    return ExecutionResult(
        ok=False,
        status_code=None,
        latency_ms=0.0,
        response_excerpt="",
        error=error,
        attempts=0,
        breaker_open=breaker_open,
    )
