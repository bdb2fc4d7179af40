"""An incident's history, written twice on purpose: the timeline people read and the
hash-chained audit log that proves it. One call keeps the two in step."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.domain.audit import AuditAction
from bot.domain.incident import Incident
from bot.domain.vocabulary import Role
from bot.errors import PermissionDeniedError

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWork, UnitOfWorkFactory


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


def require_role_holder(
    uow_factory: UnitOfWorkFactory,
    incident: Incident,
    user_id: str,
    roles: Iterable[Role],
    *,
    attempted: dict[str, Any],
    now: datetime,
    refusal: str,
    nobody: str,
) -> None:
    """Let through a holder of one of `roles` on the incident; refuse anyone else, with the
    refusal in the audit log and a message naming who may (`refusal` + ": " + mentions, or
    `nobody` when no one holds those roles)."""
    allowed = [holder for holder in (incident.holder(role) for role in roles) if holder]
    if user_id in allowed:
        return
    with uow_factory() as uow:
        uow.audit.append(
            incident.id, actor=user_id, action=AuditAction.REFUSED, now=now, detail=attempted
        )
        uow.commit()
    who = ", ".join(f"<@{u}>" for u in allowed) or nobody
    raise PermissionDeniedError(f"{refusal}: {who}.")
