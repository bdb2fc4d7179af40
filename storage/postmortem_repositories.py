"""The lessons-learned document: its stored versions, the 📌/✅ marks captured from the war
room, the responders' lessons, and a read of everything else the document shows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from bot.domain.containment import ContainmentAction
from bot.domain.postmortem import (
    ContainmentStep,
    IncidentRecord,
    LegalClock,
    Lesson,
    Mark,
    RecordEvent,
    RecoveryStep,
    StakeholderMessage,
    StoredPostmortem,
)
from bot.domain.vocabulary import Audience
from storage.models import (
    AlertRow,
    AuditEntryRow,
    ContainmentActionRow,
    ContainmentDecisionRow,
    ContainmentProposalRow,
    LessonRow,
    MessageMarkRow,
    NotificationRow,
    PostmortemRow,
    RcaAnalysisRow,
    RecoveryPlanRow,
    RecoveryStepRow,
    RegulatoryClockRow,
    TimelineEventRow,
)
from storage.repositories import insert_unless_taken

# Audited decisions that the timeline table does not already hold.
_AUDIT_ONLY = ("refused", "expired")


def _stored(row: PostmortemRow) -> StoredPostmortem:
    return StoredPostmortem(
        id=row.id,
        incident_id=row.incident_id,
        version=row.version,
        markdown=row.markdown,
        figures=dict(row.figures or {}),
        built_by=row.built_by,
        built_at=row.built_at,
        published_via=row.published_via,
        canvas_id=row.canvas_id,
        file_id=row.file_id,
        permalink=row.permalink,
    )


class PostmortemRepository:
    """Versions of the document, and the incident's record as the document reads it."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def next_version(self, incident_id: int) -> int:
        latest = self._session.scalar(
            select(func.max(PostmortemRow.version)).where(PostmortemRow.incident_id == incident_id)
        )
        return (latest or 0) + 1

    def add_version(
        self,
        incident_id: int,
        *,
        version: int,
        markdown: str,
        figures: dict[str, Any],
        built_by: str,
        now: datetime,
    ) -> StoredPostmortem | None:
        """Store this version; None when another build took the number first (the unique
        incident + version), so the caller renders the next one."""
        row = PostmortemRow(
            incident_id=incident_id,
            version=version,
            markdown=markdown,
            figures=figures,
            built_by=built_by,
            built_at=now,
        )
        return _stored(row) if insert_unless_taken(self._session, row) else None

    def set_published(
        self,
        postmortem_id: int,
        *,
        via: str,
        canvas_id: str | None = None,
        file_id: str | None = None,
        permalink: str | None = None,
    ) -> None:
        self._session.execute(
            update(PostmortemRow)
            .where(PostmortemRow.id == postmortem_id)
            .values(published_via=via, canvas_id=canvas_id, file_id=file_id, permalink=permalink)
            .execution_options(synchronize_session=False)
        )

    def latest(self, incident_id: int) -> StoredPostmortem | None:
        row = self._session.scalar(
            select(PostmortemRow)
            .where(PostmortemRow.incident_id == incident_id)
            .order_by(PostmortemRow.version.desc())
            .limit(1)
        )
        return _stored(row) if row else None

    def latest_canvas(self, incident_id: int) -> StoredPostmortem | None:
        """The newest version published as a canvas, whose canvas a rebuild replaces."""
        row = self._session.scalar(
            select(PostmortemRow)
            .where(PostmortemRow.incident_id == incident_id, PostmortemRow.canvas_id.is_not(None))
            .order_by(PostmortemRow.version.desc())
            .limit(1)
        )
        return _stored(row) if row else None

    def incident_record(self, incident_id: int, *, marks: bool = True) -> IncidentRecord:
        """The timeline, audited refusals, stakeholder messages, legal clocks, alerts,
        containment, recovery, the newest confirmed RCA and the lessons shared."""
        events = [
            RecordEvent(
                at=row.occurred_at,
                kind=row.kind,
                actor_id=row.actor_id,
                summary=row.summary,
                data=dict(row.data or {}),
            )
            for row in self._session.scalars(
                select(TimelineEventRow)
                .where(TimelineEventRow.incident_id == incident_id)
                .order_by(TimelineEventRow.occurred_at, TimelineEventRow.id)
            )
        ]
        events += [
            RecordEvent(
                at=row.at,
                kind=f"containment_{row.action}",
                actor_id=row.actor,
                summary=_audit_summary(row.action, row.actor, dict(row.detail or {})),
                data=dict(row.detail or {}),
            )
            for row in self._session.scalars(
                select(AuditEntryRow)
                .where(
                    AuditEntryRow.incident_id == incident_id,
                    AuditEntryRow.action.in_(_AUDIT_ONLY),
                )
                .order_by(AuditEntryRow.seq)
            )
        ]
        first_alert = self._session.execute(
            select(AlertRow.starts_at, AlertRow.title)
            .where(AlertRow.incident_id == incident_id)
            .order_by(AlertRow.starts_at, AlertRow.id)
            .limit(1)
        ).first()
        alert_count = self._session.scalar(
            select(func.count()).select_from(AlertRow).where(AlertRow.incident_id == incident_id)
        )
        recovered_at = self._session.scalar(
            select(func.max(RecoveryPlanRow.completed_at)).where(
                RecoveryPlanRow.incident_id == incident_id
            )
        )
        return IncidentRecord(
            events=tuple(sorted(events, key=lambda e: e.at)),
            messages=tuple(self._messages(incident_id)),
            clocks=tuple(self._clocks(incident_id)),
            containment=tuple(self._containment(incident_id)),
            recovery=tuple(self._recovery(incident_id)),
            recovered_at=recovered_at,
            first_alert_at=first_alert.starts_at if first_alert else None,
            first_alert_title=first_alert.title if first_alert else None,
            alert_count=int(alert_count or 0),
            rca=self.confirmed_rca(incident_id),
            lessons=tuple(LessonRepository(self._session).for_incident(incident_id)),
            marks=tuple(MarkRepository(self._session).for_incident(incident_id)) if marks else (),
        )

    def confirmed_rca(self, incident_id: int) -> dict[str, Any] | None:
        """The newest confirmed root-cause analysis, in the shape RcaService.confirmed gives."""
        row = self._session.scalar(
            select(RcaAnalysisRow)
            .where(RcaAnalysisRow.incident_id == incident_id, RcaAnalysisRow.state == "confirmed")
            .order_by(RcaAnalysisRow.version.desc())
            .limit(1)
        )
        if row is None:
            return None
        chain = dict(row.chain or {})
        return {
            "trigger": chain.get("trigger"),
            "primary_cause": chain.get("primary_cause"),
            "contributing_factors": list(chain.get("contributing_factors") or []),
            "recommendations": list(chain.get("recommendations") or []),
            "findings": list(row.findings or []),
            "confirmed_by": row.confirmed_by,
            "confirmed_at": row.confirmed_at,
            "version": row.version,
        }

    def _messages(self, incident_id: int) -> Iterable[StakeholderMessage]:
        for row in self._session.scalars(
            select(NotificationRow)
            .where(NotificationRow.incident_id == incident_id)
            .order_by(NotificationRow.due_at, NotificationRow.id)
        ):
            audience = Audience(row.audience)
            yield StakeholderMessage(
                audience=audience.value,
                audience_label=audience.label,
                tier=row.tier,
                state=row.state,
                due_at=row.due_at,
                sent_at=row.sent_at,
                outcome=row.outcome,
                decided_by=row.decided_by,
                skip_reason=row.skip_reason,
            )

    def _clocks(self, incident_id: int) -> Iterable[LegalClock]:
        for row in self._session.scalars(
            select(RegulatoryClockRow)
            .where(RegulatoryClockRow.incident_id == incident_id)
            .order_by(RegulatoryClockRow.due_at)
        ):
            yield LegalClock(
                regime=row.regime,
                case=row.case,
                started_at=row.started_at,
                due_at=row.due_at,
                submitted_at=row.submitted_at,
                submitted_by=row.submitted_by,
            )

    def _containment(self, incident_id: int) -> Iterable[ContainmentStep]:
        decisions: dict[int, list[tuple[str, str, datetime]]] = {}
        for decision in self._session.execute(
            select(
                ContainmentDecisionRow.action_id,
                ContainmentDecisionRow.user_id,
                ContainmentDecisionRow.decision,
                ContainmentDecisionRow.decided_at,
            )
            .join(ContainmentActionRow, ContainmentActionRow.id == ContainmentDecisionRow.action_id)
            .where(ContainmentActionRow.incident_id == incident_id)
            .order_by(ContainmentDecisionRow.id)
        ):
            decisions.setdefault(decision.action_id, []).append(
                (decision.user_id, decision.decision, decision.decided_at)
            )
        rows = self._session.execute(
            select(ContainmentActionRow, ContainmentProposalRow)
            .join(
                ContainmentProposalRow,
                ContainmentProposalRow.id == ContainmentActionRow.proposal_id,
            )
            .where(ContainmentActionRow.incident_id == incident_id)
            .order_by(ContainmentActionRow.proposal_id, ContainmentActionRow.id)
        )
        for action, proposal in rows:
            yield ContainmentStep(
                proposal_id=proposal.id,
                proposed_at=proposal.proposed_at,
                proposed_by=proposal.proposed_by,
                kind=action.kind,
                label=_action_label(action.kind),
                state=action.state,
                target=action.target_override or action.target,
                updated_at=action.updated_at,
                decisions=tuple(decisions.get(action.id, ())),
                result=dict(action.result or {}),
            )

    def _recovery(self, incident_id: int) -> Iterable[RecoveryStep]:
        for row in self._session.scalars(
            select(RecoveryStepRow)
            .where(RecoveryStepRow.incident_id == incident_id)
            .order_by(RecoveryStepRow.plan_id, RecoveryStepRow.seq)
        ):
            yield RecoveryStep(
                seq=row.seq,
                system=row.system,
                kind=row.kind,
                title=row.title,
                state=row.state,
                updated_at=row.updated_at,
                result=dict(row.result or {}),
            )


def _action_label(kind: str) -> str:
    try:
        return ContainmentAction(kind).label
    except ValueError:
        return kind.replace("_", " ")


def _audit_summary(action: str, actor: str, detail: dict[str, Any]) -> str:
    what = detail.get("action") or detail.get("attempted") or "containment"
    what = _action_label(str(what)) if isinstance(what, str) else "containment"
    if action == "refused":
        return f"Refused: <@{actor}> may not decide on {what}"
    return f"{what.capitalize()} expired before it was decided"


class MarkRepository:
    """📌 and ✅ reactions on war-room messages, one row per message, reaction and person."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self,
        incident_id: int,
        *,
        channel_id: str,
        message_ts: str,
        reaction: str,
        user_id: str,
        now: datetime,
    ) -> bool:
        """False when this person's mark was already recorded (a redelivered event)."""
        return insert_unless_taken(
            self._session,
            MessageMarkRow(
                incident_id=incident_id,
                channel_id=channel_id,
                message_ts=message_ts,
                reaction=reaction,
                user_id=user_id,
                marked_at=now,
            ),
        )

    def remove(self, *, channel_id: str, message_ts: str, reaction: str, user_id: str) -> bool:
        result = self._session.execute(
            delete(MessageMarkRow).where(
                MessageMarkRow.channel_id == channel_id,
                MessageMarkRow.message_ts == message_ts,
                MessageMarkRow.reaction == reaction,
                MessageMarkRow.user_id == user_id,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def for_incident(self, incident_id: int) -> list[Mark]:
        rows = self._session.execute(
            select(MessageMarkRow.message_ts, MessageMarkRow.reaction, MessageMarkRow.user_id)
            .where(MessageMarkRow.incident_id == incident_id)
            .order_by(MessageMarkRow.id)
        )
        return [Mark(row.message_ts, row.reaction, row.user_id) for row in rows]

    def replace(
        self, incident_id: int, *, channel_id: str, marks: Iterable[Mark], now: datetime
    ) -> None:
        """Make the stored marks of the war room exactly `marks` (read from the channel),
        keeping when each surviving one was first recorded."""
        wanted = set(marks)
        stored = set(self.for_incident(incident_id))
        for mark in stored - wanted:
            self.remove(
                channel_id=channel_id,
                message_ts=mark.message_ts,
                reaction=mark.reaction,
                user_id=mark.user_id,
            )
        for mark in wanted - stored:
            self.add(
                incident_id,
                channel_id=channel_id,
                message_ts=mark.message_ts,
                reaction=mark.reaction,
                user_id=mark.user_id,
                now=now,
            )


class LessonRepository:
    """What each responder says went well, went badly and where the team got lucky."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def save(
        self,
        incident_id: int,
        *,
        user_id: str,
        went_well: str,
        went_badly: str,
        got_lucky: str,
        now: datetime,
    ) -> None:
        """One answer per person: a second submission replaces the first."""
        values = {
            "went_well": went_well,
            "went_badly": went_badly,
            "got_lucky": got_lucky,
            "submitted_at": now,
        }
        row = LessonRow(incident_id=incident_id, user_id=user_id, **values)
        if not insert_unless_taken(self._session, row):
            self._session.execute(
                update(LessonRow)
                .where(LessonRow.incident_id == incident_id, LessonRow.user_id == user_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    def get(self, incident_id: int, user_id: str) -> Lesson | None:
        row = self._session.scalar(
            select(LessonRow).where(
                LessonRow.incident_id == incident_id, LessonRow.user_id == user_id
            )
        )
        return _lesson(row) if row else None

    def for_incident(self, incident_id: int) -> list[Lesson]:
        rows = self._session.scalars(
            select(LessonRow)
            .where(LessonRow.incident_id == incident_id)
            .order_by(LessonRow.submitted_at, LessonRow.id)
        )
        return [_lesson(row) for row in rows]


def _lesson(row: LessonRow) -> Lesson:
    return Lesson(
        user_id=row.user_id,
        went_well=row.went_well,
        went_badly=row.went_badly,
        got_lucky=row.got_lucky,
        submitted_at=row.submitted_at,
    )
