"""The audit log and evidence preservation: recording decisions, verifying the chain, and
snapshotting what warroom knows before anything is changed."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bot.clock import Clock
from bot.domain.audit import (
    AuditAction,
    AuditEntry,
    ChainCheck,
    EvidenceKind,
    EvidenceRecord,
    to_json_value,
    verify_chain,
)
from bot.errors import NotFoundError
from bot.slack_gateway import SlackGateway

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

# conversations.history page size; a longer war room is preserved as its newest messages.
HISTORY_LIMIT = 200


class AuditService:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def record(
        self,
        incident_id: int,
        *,
        actor: str,
        action: AuditAction,
        detail: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one decision to the incident's audit log in a transaction of its own."""
        with self._uow() as uow:
            entry = self.record_in(uow, incident_id, actor=actor, action=action, detail=detail)
            uow.commit()
        return entry

    def record_in(
        self,
        uow: UnitOfWork,
        incident_id: int,
        *,
        actor: str,
        action: AuditAction,
        detail: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append inside the caller's transaction: the entry commits or rolls back with it."""
        return uow.audit.append(
            incident_id,
            actor=actor,
            action=action,
            detail=dict(detail or {}),
            now=self._clock.now(),
        )

    def verify(self, incident_number: int) -> ChainCheck:
        """Check the incident's chain; NotFoundError when there is no such incident."""
        with self._uow(read_only=True) as uow:
            incident = uow.incidents.get_by_number(incident_number)
            if incident is None:
                raise NotFoundError(f"There is no incident #{incident_number}.")
            entries = uow.audit.entries(incident.id)
        return verify_chain(entries)


class EvidenceService:
    def __init__(
        self, *, uow: UnitOfWorkFactory, slack: SlackGateway, audit: AuditService, clock: Clock
    ) -> None:
        self._uow = uow
        self._slack = slack
        self._audit = audit
        self._clock = clock

    def preserve(
        self, incident_id: int, *, reason: str, actor: str = "warroom"
    ) -> list[EvidenceRecord]:
        """Snapshot the incident record, its raw alerts and the war room's messages so far,
        each with its SHA-256, and audit the digests; all in one transaction."""
        with self._uow(read_only=True) as uow:
            incident = uow.incidents.get(incident_id)
        if incident is None:
            raise NotFoundError(f"There is no incident with id {incident_id}.")
        # Slack is read before the write transaction, which must not wait on the network.
        messages = self._war_room_messages(incident.channel_id)
        with self._uow() as uow:
            current = uow.incidents.get(incident_id)
            assert current is not None
            now = self._clock.now()
            alerts = uow.evidence.raw_alerts(incident_id)
            contents: list[tuple[EvidenceKind, dict[str, Any]]] = [
                (EvidenceKind.INCIDENT_RECORD, {"incident": to_json_value(current)}),
                (EvidenceKind.ALERTS, {"count": len(alerts), "alerts": alerts}),
                (EvidenceKind.WAR_ROOM_MESSAGES, messages),
            ]
            records = [
                uow.evidence.add(incident_id, kind=kind, reason=reason, content=content, now=now)
                for kind, content in contents
            ]
            self._audit.record_in(
                uow,
                incident_id,
                actor=actor,
                action=AuditAction.EVIDENCE_PRESERVED,
                detail={
                    "reason": reason,
                    "evidence": [
                        {
                            "id": record.id,
                            "kind": record.kind.value,
                            "sha256": record.sha256,
                            "size": record.size,
                        }
                        for record in records
                    ],
                },
            )
            uow.commit()
        log.info("preserved evidence for incident #%d (%s)", incident.number, reason)
        return records

    def _war_room_messages(self, channel_id: str | None) -> dict[str, Any]:
        """The channel's messages oldest first, or why there are none to read."""
        if channel_id is None:
            return {"channel_id": None, "messages": [], "error": "no_war_room_yet"}
        messages, error = self._slack.history(channel_id, limit=HISTORY_LIMIT)
        if error is not None:
            log.warning("cannot read war room %s for evidence: %s", channel_id, error)
        return {
            "channel_id": channel_id,
            "messages": list(reversed(messages)),
            "error": error,
            "truncated": len(messages) >= HISTORY_LIMIT,
        }
