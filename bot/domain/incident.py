"""Plain snapshots of an incident and its people, as services hand them to the edges."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from bot.domain.vocabulary import (
    AiActCase,
    IncidentSource,
    IncidentState,
    IncidentType,
    Role,
    Severity,
)


@dataclass(frozen=True)
class RoleHolder:
    role: Role
    user_id: str


@dataclass(frozen=True)
class Incident:
    id: int
    number: int
    title: str
    description: str
    incident_type: IncidentType
    severity: Severity
    state: IncidentState
    reporter_id: str
    source: IncidentSource
    declared_at: datetime
    updated_at: datetime
    affected_systems: tuple[str, ...] = ()
    personal_data: bool = False
    public_facing: bool = False
    ai_act_case: AiActCase | None = None
    indicators: tuple[str, ...] = ()
    atlas: tuple[str, ...] = ()
    owasp: tuple[str, ...] = ()
    confidence: float | None = None
    classified_by: str = ""
    explanation: str = ""
    channel_id: str | None = None
    channel_name: str | None = None
    card_ts: str | None = None
    resolved_at: datetime | None = None
    war_room_opened_at: datetime | None = None
    roles: tuple[RoleHolder, ...] = field(default=())

    def holder(self, role: Role) -> str | None:
        """The user holding the role, if anyone does."""
        for assignment in self.roles:
            if assignment.role is role:
                return assignment.user_id
        return None


@dataclass(frozen=True)
class Declaration:
    """What a person or an alert asks to declare."""

    title: str
    severity: Severity
    reporter_id: str
    source: IncidentSource
    dedup_key: str
    description: str = ""
    incident_type: IncidentType | None = None
    affected_systems: tuple[str, ...] = ()
    personal_data: bool = False
    public_facing: bool = False
    ai_act_case: AiActCase | None = None
    indicators: tuple[str, ...] = ()


@dataclass(frozen=True)
class TimelineEvent:
    """A line of an incident's timeline, to be written."""

    incident_id: int
    kind: str
    actor_id: str
    summary: str
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)


class IncidentSummary(NamedTuple):
    """The few fields a list of incidents shows. A named tuple, not a frozen dataclass: a
    list makes forty at a time, and a frozen dataclass sets each field through
    object.__setattr__ (three times the cost)."""

    id: int
    number: int
    title: str
    incident_type: IncidentType
    severity: Severity
    state: IncidentState
    channel_id: str | None
