"""Plain dicts (and a named tuple for list lines) of incidents for templates: templates
never see ORM rows or domain objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from bot.domain.incident import Incident, IncidentSummary
from bot.domain.notifications import NotificationRecord, NotificationState
from bot.domain.redaction import is_external
from bot.domain.roles import RESPONSIBILITIES
from bot.domain.vocabulary import (
    AiActCase,
    Audience,
    IncidentSource,
    IncidentType,
    Role,
    Severity,
)

_AI_ACT_CHOICES = {
    AiActCase.SERIOUS: "Serious incident: report within 15 days",
    AiActCase.DEATH: "A death: report within 10 days",
    AiActCase.WIDESPREAD: "Widespread or critical infrastructure: 2 days",
}


def incident_context(incident: Incident) -> dict[str, Any]:
    """Everything a template may show about an incident."""
    return {
        "id": incident.id,
        "number": incident.number,
        "title": incident.title,
        "description": incident.description,
        "type": incident.incident_type.value,
        "type_label": incident.incident_type.label,
        "severity": incident.severity.value,
        "severity_emoji": incident.severity.emoji,
        "is_critical": incident.severity is Severity.CRITICAL,
        "state": incident.state.value,
        "is_open": incident.state.is_open,
        "reporter_id": incident.reporter_id,
        "reporter_is_user": incident.reporter_id.startswith(("U", "W")),
        "source": incident.source.value,
        "is_drill": incident.source is IncidentSource.DRILL,
        "declared_at": incident.declared_at,
        "resolved_at": incident.resolved_at,
        "affected_systems": list(incident.affected_systems),
        "personal_data": incident.personal_data,
        "public_facing": incident.public_facing,
        "ai_act_case": incident.ai_act_case.value if incident.ai_act_case else None,
        "ai_act_label": incident.ai_act_case.label if incident.ai_act_case else None,
        "channel_id": incident.channel_id,
        "channel_name": incident.channel_name,
        "indicators": list(incident.indicators),
        "atlas": list(incident.atlas),
        "owasp": list(incident.owasp),
        "confidence": incident.confidence,
        "classified_by": incident.classified_by,
        "explanation": incident.explanation,
        "roles": [
            {"role": role.value, "label": role.label, "user_id": incident.holder(role)}
            for role in Role
        ],
    }


def notification_context(record: NotificationRecord) -> dict[str, Any]:
    """A planned message as templates show it: who, which tier, when due, where it stands."""
    return {
        "id": record.id,
        "button_value": str(record.id),
        "audience": record.audience.value,
        "audience_label": record.audience.label,
        "external": is_external(record.audience.value),
        "tier": record.tier.value,
        "tier_label": record.tier.label,
        "due_at": record.due_at,
        "state": record.state.value,
        "is_open": record.state.is_open,
        "sent_at": record.sent_at,
        "outcome": record.outcome.value if record.outcome else None,
        "reason": record.reason,
        "decided_by": record.decided_by,
        "decided_by_user": bool(record.decided_by and record.decided_by.startswith(("U", "W"))),
        "skip_reason": record.skip_reason,
        "edited": record.edited_text is not None,
    }


def deadline_lines(
    notifications: list[NotificationRecord], *, channels: Mapping[Audience, list[str]]
) -> list[dict[str, Any]]:
    """Every message deadline, soonest first, with a word for where it stands."""
    lines = []
    for record in notifications:
        context = notification_context(record)
        context["unconfigured"] = not channels.get(record.audience)
        context["status"] = _deadline_status(record, unconfigured=context["unconfigured"])
        lines.append(context)
    return lines


def _deadline_status(record: NotificationRecord, *, unconfigured: bool) -> str:
    state = record.state
    if state is NotificationState.SENT:
        return f"sent, {record.outcome.value if record.outcome else 'met'}"
    if state is NotificationState.SKIPPED:
        return "skipped"
    if state is NotificationState.ESCALATED:
        return "late, with the commander"
    if state is NotificationState.FAILED:
        return "not sent: no channel configured" if unconfigured else "not sent: Slack refused"
    if unconfigured:
        return "pending, but no channel is configured"
    return "sending" if state is NotificationState.SENDING else "pending"


class SummaryLine(NamedTuple):
    """What a line in a list of incidents shows, in the order the list template unpacks it
    (`{% for emoji, number, … in incidents %}`: no lookup per field, the hot path of
    `/incident list`)."""

    severity_emoji: str
    number: int
    title: str
    severity: str
    state: str
    type_label: str
    channel_id: str | None


def summary_context(summary: IncidentSummary) -> SummaryLine:
    """What a line in a list of incidents shows."""
    return SummaryLine(
        summary.severity.emoji,
        summary.number,
        summary.title,
        summary.severity.value,
        summary.state.value,
        summary.incident_type.label,
        summary.channel_id,
    )


def role_context(role: Role) -> dict[str, Any]:
    return {
        "role": role.value,
        "label": role.label,
        "responsibilities": list(RESPONSIBILITIES[role]),
    }


def vocabulary_context() -> dict[str, Any]:
    """The choices a declaration form offers."""
    return {
        "severities": [{"value": s.value, "label": s.value.capitalize()} for s in Severity],
        "types": [{"value": t.value, "label": t.label} for t in IncidentType],
        "ai_act_cases": [
            {"value": case.value, "label": _AI_ACT_CHOICES[case]} for case in AiActCase
        ],
    }
