"""What monitors send to /webhooks/*: pydantic models of each payload and their alerts.

Label conventions (Alertmanager and Grafana): `severity` (critical/high/warning/info or
warroom's four), `indicator` or `ai_indicators` (comma-separated), `model`, `service`;
annotations `summary` (the title) and `description`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.domain.alerts import (
    Alert,
    AlertStatus,
    alert_severity,
    parse_alert_severity,
    split_indicators,
    stable_hash,
)
from bot.domain.vocabulary import IncidentSource
from bot.errors import UserError

MAX_TITLE = 300


class PayloadError(UserError):
    """A webhook body that cannot be used; the message names the field."""


class _Sender(BaseModel):
    # Monitors add fields over time; unknown ones are kept in the raw copy, not refused.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class PrometheusAlert(_Sender):
    status: Literal["firing", "resolved"] | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    starts_at: AwareDatetime = Field(alias="startsAt")
    ends_at: AwareDatetime | None = Field(default=None, alias="endsAt")
    generator_url: str | None = Field(default=None, alias="generatorURL")
    fingerprint: str | None = None
    # Grafana-managed alerts only
    dashboard_url: str | None = Field(default=None, alias="dashboardURL")
    values: dict[str, float | None] | None = None


class AlertmanagerPayload(_Sender):
    """Prometheus Alertmanager's webhook body, version 4 (Grafana's adds a few fields)."""

    version: str | None = None
    group_key: str | None = Field(default=None, alias="groupKey")
    status: Literal["firing", "resolved"]
    receiver: str = ""
    group_labels: dict[str, str] = Field(default={}, alias="groupLabels")
    common_labels: dict[str, str] = Field(default={}, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default={}, alias="commonAnnotations")
    external_url: str | None = Field(default=None, alias="externalURL")
    alerts: list[PrometheusAlert] = Field(min_length=1, max_length=5000)

    @field_validator("version")
    @classmethod
    def _version_4(cls, value: str | None) -> str | None:
        if value is not None and value != "4":
            raise ValueError("warroom reads Alertmanager's version 4 payload")
        return value


class GrafanaPayload(AlertmanagerPayload):
    """Grafana alerting's webhook body: Alertmanager's shape plus title, state and message."""

    org_id: int | None = Field(default=None, alias="orgId")
    title: str | None = None
    state: str | None = None
    message: str | None = None


class GenericAlert(BaseModel):
    """warroom's own alert schema, for model monitors and anything else that can POST JSON."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "title": "warroom generic alert",
            "examples": [
                {
                    "title": "Support bot answering with its system prompt",
                    "description": "Canary string from the system prompt seen in 14 replies.",
                    "severity": "high",
                    "indicators": ["system_prompt_leak"],
                    "model": "support-bot-v2",
                    "systems": ["support-chat"],
                    "source": "llm-guard",
                    "fingerprint": "support-bot-v2:prompt-leak",
                    "status": "firing",
                    "occurred_at": "2026-11-26T09:30:00Z",
                    "metrics": {"leaked_replies": 14},
                    "evidence": {"sample_reply_ids": ["r-8812", "r-8813"]},
                }
            ],
        },
    )

    title: str = Field(min_length=1, max_length=MAX_TITLE)
    description: str = Field(default="", max_length=10_000)
    severity: str = Field(
        default="medium",
        description="critical, high, medium, low, sev1…sev4, or warning/info",
    )
    indicators: list[str] = Field(default=[], max_length=50)
    model: str | None = Field(default=None, max_length=200)
    systems: list[str] = Field(default=[], max_length=50)
    source: str = Field(default="generic", max_length=100, description="the sending monitor")
    fingerprint: str | None = Field(
        default=None,
        max_length=255,
        description="alerts with the same fingerprint group into one incident; "
        "default: a hash of source, title and model",
    )
    status: Literal["firing", "resolved"] = "firing"
    occurred_at: AwareDatetime | None = Field(
        default=None,
        description="when it happened; default: the minute it was received (a repeat without "
        "occurred_at within the same minute counts as the same alert)",
    )
    metrics: dict[str, float] = Field(default={}, max_length=100)
    evidence: Any = Field(default=None, description="free-form; kept as evidence")

    @field_validator("severity")
    @classmethod
    def _known_severity(cls, value: str) -> str:
        if parse_alert_severity(value) is None:
            raise ValueError("use critical, high, medium, low, sev1…sev4, warning or info")
        return value


def generic_alert_schema() -> dict[str, Any]:
    """The JSON Schema of the generic webhook body, generated from the model."""
    return GenericAlert.model_json_schema()


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ""
    for part in first["loc"]:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    return f"{where or 'body'}: {first['msg']}"


def parse_payload(source: IncidentSource, body: Any, *, now: datetime) -> list[Alert]:
    """The alerts in a webhook body; PayloadError names the first bad field."""
    try:
        if source is IncidentSource.ALERTMANAGER:
            return _prometheus_alerts(source, AlertmanagerPayload.model_validate(body), body)
        if source is IncidentSource.GRAFANA:
            return _prometheus_alerts(source, GrafanaPayload.model_validate(body), body)
        if source is IncidentSource.GENERIC_WEBHOOK:
            return [_generic_alert(GenericAlert.model_validate(body), body, now=now)]
    except ValidationError as error:
        raise PayloadError(_describe(error)) from None
    raise ValueError(f"no payload parser for {source}")


def _prometheus_alerts(
    source: IncidentSource, payload: AlertmanagerPayload, body: dict[str, Any]
) -> list[Alert]:
    """The payload's alerts; each keeps its JSON as received (`body`, which validated as
    `payload`), next to the group's."""
    group = payload.group_key or stable_hash(
        payload.receiver, *sorted(f"{k}={v}" for k, v in payload.group_labels.items())
    )
    common_labels, common_notes = payload.common_labels, payload.common_annotations
    raw_common = {key: value for key, value in body.items() if key != "alerts"}
    alerts = []
    for item, raw_item in zip(payload.alerts, body["alerts"], strict=True):
        labels = {**common_labels, **item.labels}
        notes = {**common_notes, **item.annotations}
        title = (
            notes.get("summary")
            or notes.get("title")
            or labels.get("alertname")
            or getattr(payload, "title", None)
            or "Alert without a summary"
        )
        fingerprint = item.fingerprint or stable_hash(
            *sorted(f"{k}={v}" for k, v in item.labels.items())
        )
        alerts.append(
            Alert(
                source=source,
                fingerprint=fingerprint,
                group_key=f"{source.value}:{group}",
                status=AlertStatus(item.status or payload.status),
                title=title[:MAX_TITLE],
                severity=alert_severity(labels.get("severity")),
                starts_at=item.starts_at.astimezone(UTC),
                description=notes.get("description", ""),
                indicators=split_indicators(labels.get("indicator"), labels.get("ai_indicators")),
                model=labels.get("model"),
                systems=tuple(s for s in (labels.get("service"),) if s),
                link=item.generator_url or item.dashboard_url,
                metrics={k: v for k, v in (item.values or {}).items() if v is not None},
                raw={"alert": raw_item, "group": raw_common},
            )
        )
    return alerts


def _generic_alert(alert: GenericAlert, body: Any, *, now: datetime) -> Alert:
    fingerprint = alert.fingerprint or stable_hash(alert.source, alert.title, alert.model or "")
    # Without a time, a delivery repeated within the same minute is the same alert.
    occurred = (alert.occurred_at or now.replace(second=0, microsecond=0)).astimezone(UTC)
    return Alert(
        source=IncidentSource.GENERIC_WEBHOOK,
        fingerprint=fingerprint,
        group_key=f"generic:{fingerprint}",
        status=AlertStatus(alert.status),
        title=alert.title,
        severity=alert_severity(alert.severity),
        starts_at=occurred,
        description=alert.description,
        indicators=split_indicators(*alert.indicators),
        model=alert.model,
        systems=tuple(alert.systems),
        metrics=dict(alert.metrics),
        raw=body if isinstance(body, dict) else {"body": body},
    )
