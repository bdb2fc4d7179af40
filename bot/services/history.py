"""An incident's history, written twice on purpose: the timeline people read and the
hash-chained audit log that proves it. One call keeps the two in step."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.domain.audit import AuditAction

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWork


def record_change(
    uow: UnitOfWork,
    incident_id: int,
    action: AuditAction,
    *,
    actor: str,
    summary: str,
    data: dict[str, Any],
    now: datetime,
) -> None:
    """A timeline event (kind = the audit action) and its audit entry, in the caller's
    transaction."""
    uow.timeline.add(
        incident_id, kind=action.value, actor_id=actor, summary=summary, now=now, data=data
    )
    uow.audit.append(incident_id, actor=actor, action=action, detail=data, now=now)
