"""The HTTP side of recovery: restore and stage endpoints, and validation checks."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from bot.config import Recovery
from bot.containment_executor import ExecutionResult, call_endpoint
from bot.domain.recovery import CheckVerdict, StepKind, judge_http_check

_SECRET_FREE_HEADERS = {"User-Agent": "warroom"}


class RecoveryRunner:
    def __init__(
        self,
        config: Recovery,
        *,
        environ: Mapping[str, str] = os.environ,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._config = config
        self._environ = environ
        self._sleep = sleep
        self._client = httpx.Client(
            transport=transport, follow_redirects=False, headers=_SECRET_FREE_HEADERS
        )

    def close(self) -> None:
        self._client.close()

    def has_endpoint(self, system: str, kind: StepKind) -> bool:
        settings = self._config.system(system)
        return (settings.restore if kind is StepKind.RESTORE else settings.stage) is not None

    def change(
        self,
        *,
        system: str,
        kind: StepKind,
        percent: int | None,
        incident_number: int,
        idempotency_key: str,
    ) -> ExecutionResult:
        """Call the system's restore or stage endpoint."""
        settings = self._config.system(system)
        endpoint = settings.restore if kind is StepKind.RESTORE else settings.stage
        if endpoint is None:
            raise ValueError(f"{system} has no {kind.value} endpoint")
        url = _fill(endpoint.url, system=system, incident=incident_number)
        body: dict[str, str | int | None] | None = None
        if endpoint.method in ("POST", "PUT", "PATCH"):
            body = {"system": system, "incident": incident_number, "step": kind.value}
            if percent is not None:
                body["percent"] = percent
        return call_endpoint(
            self._client,
            endpoint,
            url=url,
            body=body,
            idempotency_key=idempotency_key,
            environ=self._environ,
            sleep=self._sleep,
        )

    def check(self, check: Mapping[str, Any], *, system: str, incident_number: int) -> CheckVerdict:
        """Run one HTTP validation check once and judge its answer."""
        url = _fill(str(check["url"]), system=system, incident=incident_number)
        headers: dict[str, str] = {}
        for name, template in dict(check.get("headers") or {}).items():
            value = _fill_env(str(template), self._environ)
            if value is None:
                return CheckVerdict(False, f"header {name}: an environment variable is not set")
            headers[name] = value
        try:
            response = self._client.request(
                str(check.get("method", "GET")),
                url,
                headers=headers,
                timeout=float(check.get("timeout_seconds", 10)),
            )
        except httpx.TimeoutException:
            return judge_http_check(check, status=None, body=None, error="timed out")
        except httpx.TransportError as error:
            return judge_http_check(
                check, status=None, body=None, error=f"could not connect ({type(error).__name__})"
            )
        try:
            body: Any = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        return judge_http_check(check, status=response.status_code, body=body)


def _fill(url: str, *, system: str, incident: int) -> str:
    return (
        url.replace("{model}", quote(system, safe=""))
        .replace("{system}", quote(system, safe=""))
        .replace("{incident}", str(incident))
    )


def _fill_env(template: str, environ: Mapping[str, str]) -> str | None:
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        found = environ.get(match.group(1))
        if not found:
            missing = True
            return ""
        return found

    filled = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", value, template)
    return None if missing else filled
