"""Plain dicts of incidents for templates: templates never see ORM rows or domain objects."""

from __future__ import annotations

from typing import Any

from bot.domain.incident import Incident, IncidentSummary
from bot.domain.roles import RESPONSIBILITIES
from bot.domain.vocabulary import IncidentType, Role, Severity


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
        "declared_at": incident.declared_at,
        "resolved_at": incident.resolved_at,
        "affected_systems": list(incident.affected_systems),
        "personal_data": incident.personal_data,
        "public_facing": incident.public_facing,
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


def summary_context(summary: IncidentSummary) -> dict[str, Any]:
    """What a line in a list of incidents shows."""
    return {
        "number": summary.number,
        "title": summary.title,
        "type_label": summary.incident_type.label,
        "severity": summary.severity.value,
        "severity_emoji": summary.severity.emoji,
        "state": summary.state.value,
        "channel_id": summary.channel_id,
    }


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
    }
