"""The counts `/metrics` reads at scrape time: one short, read-only query per family.

Every figure comes from the rows, so each replica reports the same numbers. Drills are
practice: they are left out of every figure that describes incidents."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from bot.domain.vocabulary import IncidentSource, IncidentState
from bot.errors import StorageUnavailableError
from storage.db import READ_ONLY
from storage.models import AlertDeliveryRow, ContainmentActionRow, IncidentRow, NotificationRow

_DRILL = IncidentSource.DRILL.value
_CLOSED_STATES = [IncidentState.RESOLVED.value, IncidentState.CLOSED.value]


@dataclass(frozen=True)
class NotificationTiming:
    """One notification with a deadline outcome: how late it went (None if never sent)."""

    late_by_seconds: float | None
    outcome: str | None


@dataclass(frozen=True)
class OperationalFigures:
    """Everything the database-backed metric families show."""

    declared: list[tuple[str, str, int]] = field(default_factory=list)  # type, severity, n
    open_by_severity: list[tuple[str, int]] = field(default_factory=list)
    alerts_by_source: list[tuple[str, int, int]] = field(default_factory=list)  # received, new
    notifications: list[NotificationTiming] = field(default_factory=list)
    containment_by_state: list[tuple[str, int]] = field(default_factory=list)


def _seconds_late(due_at: datetime, sent_at: datetime | None) -> float | None:
    return None if sent_at is None else (sent_at - due_at).total_seconds()


def read_operational_figures(engine: Engine) -> OperationalFigures:
    """Counts of incidents, alerts, notifications and containment actions, as stored now."""
    real = IncidentRow.source != _DRILL
    try:
        with engine.execution_options(**{READ_ONLY: True}).connect() as connection:
            declared = connection.execute(
                select(IncidentRow.incident_type, IncidentRow.severity, func.count())
                .where(real)
                .group_by(IncidentRow.incident_type, IncidentRow.severity)
            ).all()
            open_incidents = connection.execute(
                select(IncidentRow.severity, func.count())
                .where(real, IncidentRow.state.not_in(_CLOSED_STATES))
                .group_by(IncidentRow.severity)
            ).all()
            alerts = connection.execute(
                select(
                    AlertDeliveryRow.source,
                    func.coalesce(func.sum(AlertDeliveryRow.alert_count), 0),
                    func.coalesce(func.sum(AlertDeliveryRow.new_alerts), 0),
                ).group_by(AlertDeliveryRow.source)
            ).all()
            # Lateness is a difference of two timestamps, which SQLite and PostgreSQL spell
            # differently; only rows with an outcome are read, a few per incident.
            notifications = connection.execute(
                select(NotificationRow.due_at, NotificationRow.sent_at, NotificationRow.outcome)
                .join(IncidentRow, IncidentRow.id == NotificationRow.incident_id)
                .where(real, NotificationRow.outcome.is_not(None))
            ).all()
            containment = connection.execute(
                select(ContainmentActionRow.state, func.count())
                .join(IncidentRow, IncidentRow.id == ContainmentActionRow.incident_id)
                .where(real)
                .group_by(ContainmentActionRow.state)
            ).all()
    except SQLAlchemyError as error:
        raise StorageUnavailableError(str(error).strip().splitlines()[0]) from error
    return OperationalFigures(
        declared=[(str(t), str(s), int(n)) for t, s, n in declared],
        open_by_severity=[(str(s), int(n)) for s, n in open_incidents],
        alerts_by_source=[(str(source), int(r), int(new)) for source, r, new in alerts],
        notifications=[
            NotificationTiming(_seconds_late(due, sent), outcome)
            for due, sent, outcome in notifications
        ],
        containment_by_state=[(str(state), int(n)) for state, n in containment],
    )
