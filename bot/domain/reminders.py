"""Timed nudges to people: a message due soon, a status update owed, a legal clock running.

A reminder is a row with a due time; it is claimed when it fires, so it is given once. What it
says is decided when it fires, from the state of things then (a message sent in the meantime
needs no reminder).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.domain.vocabulary import NotificationTier


class ReminderKind(StrEnum):
    NOTIFICATION = "notification"  # to the communications lead: messages due soon
    CADENCE = "cadence"  # to the communications lead: a status update is owed
    REGULATORY = "regulatory"  # to the legal advisor: a legal clock is running
    CHECKIN = "checkin"  # to the war room: enhanced monitoring after resolution


class ReminderState(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Reminder:
    id: int
    incident_id: int
    kind: ReminderKind
    key: str
    state: ReminderState
    due_at: datetime
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedReminder:
    kind: ReminderKind
    key: str
    due_at: datetime
    data: dict[str, Any] = field(default_factory=dict)


def notification_reminder(
    *, tier: NotificationTier, planned_at: datetime, due_at: datetime, fraction: float
) -> PlannedReminder:
    """The reminder for the messages of one tier planned at one moment, `fraction` of the way
    from planning to the deadline (one reminder per batch, not one per audience)."""
    at = planned_at + (due_at - planned_at) * fraction
    return PlannedReminder(
        kind=ReminderKind.NOTIFICATION,
        key=f"notify:{tier.value}:{due_at.strftime('%Y%m%dT%H%M%S.%f')}",
        due_at=at,
        data={"tier": tier.value, "due_at": due_at.isoformat()},
    )


def monitoring_checkins(
    *, started_at: datetime, ends_at: datetime, interval: timedelta
) -> list[PlannedReminder]:
    """Check-ins every `interval` through an enhanced-monitoring window, and one at its end."""
    checkins = []
    at = started_at + interval
    while at < ends_at:
        checkins.append(at)
        at += interval
    checkins.append(ends_at)
    return [
        PlannedReminder(
            kind=ReminderKind.CHECKIN,
            key=f"checkin:{moment.strftime('%Y%m%dT%H%M%S')}",
            due_at=moment,
            data={"final": moment == ends_at},
        )
        for moment in checkins
    ]


def cadence_reminder(*, after: datetime, interval: timedelta, note: str = "") -> PlannedReminder:
    """The next status-update reminder, `interval` after the last update (or declaration)."""
    due = after + interval
    return PlannedReminder(
        kind=ReminderKind.CADENCE,
        key=f"cadence:{due.strftime('%Y%m%dT%H%M%S.%f')}",
        due_at=due,
        data={"interval_seconds": int(interval.total_seconds()), "note": note},
    )
