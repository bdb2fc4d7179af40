"""Plain dicts of regulatory clocks, reminders and draft reports for the regulatory/ templates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.domain.regulatory import ClockReminder, RegulatoryClock, ReportField, describe_duration


def remaining_text(due_at: datetime, *, now: datetime) -> str:
    """`2 days 5 hours left`, `due now` or `overdue by 3 hours`."""
    left = due_at - now
    if left > timedelta(0):
        return f"{describe_duration(left)} left"
    if left > -timedelta(minutes=1):
        return "due now"
    return f"overdue by {describe_duration(left)}"


def clock_context(
    clock: RegulatoryClock,
    *,
    now: datetime,
    submitted_by: str | None = None,
    submitted_at: datetime | None = None,
) -> dict[str, Any]:
    """Everything a template may show about a clock, as of `now`."""
    submitted = submitted_at is not None
    return {
        "regime": clock.regime.value,
        "case": clock.case,
        "title": clock.title,
        "legal_basis": clock.legal_basis,
        "authority": clock.authority,
        "started_at": clock.started_at,
        "due_at": clock.due_at,
        "remaining": remaining_text(clock.due_at, now=now),
        "overdue": now > clock.due_at,
        "submitted": submitted,
        "submitted_by": submitted_by,
        "submitted_at": submitted_at,
        "submitted_late": submitted_at is not None and submitted_at > clock.due_at,
    }


def reminder_context(reminder: ClockReminder) -> dict[str, Any]:
    """What a reminder message says about itself."""
    return {"key": reminder.key, "label": reminder.label}


def report_context(fields: Sequence[ReportField]) -> list[dict[str, Any]]:
    """The draft report's fields in order."""
    return [{"name": f.name, "label": f.label, "value": f.value, "known": f.known} for f in fields]
