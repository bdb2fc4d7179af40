"""An incident's history, written twice on purpose: the timeline people read and the
hash-chained audit log that proves it. One call keeps the two in step."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.domain.audit import AuditAction, AuditNote
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


@dataclass(frozen=True)
class Change:
    """One change for `record_changes`: what `record_change` takes."""

    incident_id: int
    action: AuditAction
    actor: str
    summary: str
    data: dict[str, Any]
    now: datetime


def record_changes(uow: UnitOfWork, changes: Sequence[Change]) -> None:
    """`record_change` for many changes at once (a batch of sends), with the audit heads of
    their incidents read together, in the caller's transaction."""
    for change in changes:
        uow.timeline.add(
            change.incident_id,
            kind=change.action.value,
            actor_id=change.actor,
            summary=change.summary,
            now=change.now,
            data=change.data,
        )
    uow.audit.append_many(
        [
            AuditNote(
                incident_id=change.incident_id,
                actor=change.actor,
                action=change.action,
                detail=change.data,
                at=change.now,
            )
            for change in changes
        ]
    )


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
