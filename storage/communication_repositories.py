"""Planned messages, reminders and regulatory clocks: deadlines kept as rows.

Every state change that decides who acts is a conditional UPDATE (`... WHERE state = 'pending'`)
whose row count says whether this caller won; two replicas running the same timer never both
send, on SQLite or PostgreSQL, without holding locks across a Slack call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, or_, select, update
from sqlalchemy.orm import Session

from bot.domain.notifications import (
    DeadlineOutcome,
    NotificationRecord,
    NotificationState,
    PlannedMessage,
)
from bot.domain.reminders import PlannedReminder, Reminder, ReminderKind, ReminderState
from bot.domain.vocabulary import Audience, NotificationTier, RegulatoryRegime
from storage.models import NotificationRow, RegulatoryClockRow, ReminderRow
from storage.repositories import insert_ignoring_conflicts, insert_unless_taken
from storage.worker_repositories import ClaimHolder, abandoned, claimant, held_by_dead

_N = NotificationState
_NOTIFICATIONS_TABLE = cast(Table, NotificationRow.__table__)
_REMINDERS_TABLE = cast(Table, ReminderRow.__table__)


def _won(result: Any) -> bool:
    return bool(result.rowcount == 1)


def _record(row: NotificationRow) -> NotificationRecord:
    return NotificationRecord(
        id=row.id,
        incident_id=row.incident_id,
        audience=Audience(row.audience),
        tier=NotificationTier(row.tier),
        state=NotificationState(row.state),
        due_at=row.due_at,
        created_at=row.created_at,
        sent_at=row.sent_at,
        outcome=DeadlineOutcome(row.outcome) if row.outcome else None,
        reason=row.reason,
        decided_by=row.decided_by,
        skip_reason=row.skip_reason,
        edited_text=row.edited_text,
        draft_channel_id=row.draft_channel_id,
        draft_ts=row.draft_ts,
        attempts=row.attempts,
    )


def _abandoned(stale_before: datetime, holder: ClaimHolder | None) -> ColumnElement[bool]:
    return abandoned(NotificationRow.claimed_at < stale_before, NotificationRow.claimed_by, holder)


class NotificationRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add_planned(
        self, incident_id: int, planned: Sequence[PlannedMessage], *, now: datetime
    ) -> None:
        """Insert the planned messages not already recorded (one per audience and tier)."""
        insert_ignoring_conflicts(
            self._session,
            _NOTIFICATIONS_TABLE,
            [
                {
                    "incident_id": incident_id,
                    "audience": message.audience.value,
                    "tier": message.tier.value,
                    "state": _N.PENDING.value,
                    "due_at": message.due_at,
                    "created_at": now,
                    "reason": message.reason,
                    "attempts": 0,
                }
                for message in planned
            ],
        )

    def record_sent(
        self,
        incident_id: int,
        audience: Audience,
        tier: NotificationTier,
        *,
        due_at: datetime,
        now: datetime,
        outcome: DeadlineOutcome = DeadlineOutcome.MET,
    ) -> None:
        """Record that the audience got its message of this tier, sent by another path
        (the critical alarm); planned or not, it is never sent again."""
        row = self._session.scalar(
            select(NotificationRow).where(
                NotificationRow.incident_id == incident_id,
                NotificationRow.audience == audience.value,
                NotificationRow.tier == tier.value,
            )
        )
        if row is None:
            self._session.add(
                NotificationRow(
                    incident_id=incident_id,
                    audience=audience.value,
                    tier=tier.value,
                    state=_N.SENT.value,
                    due_at=due_at,
                    sent_at=now,
                    created_at=now,
                    outcome=outcome.value,
                    decided_by="warroom",
                    reason="",
                    attempts=1,
                )
            )
        elif row.state != _N.SENT.value:
            row.state, row.sent_at, row.outcome = _N.SENT.value, now, outcome.value
            row.decided_by = row.decided_by or "warroom"
        self._session.flush()

    def get(self, notification_id: int) -> NotificationRecord | None:
        row = self._session.get(NotificationRow, notification_id, populate_existing=True)
        return _record(row) if row else None

    def list_for(self, incident_id: int) -> list[NotificationRecord]:
        """The incident's planned messages, soonest deadline first."""
        rows = self._session.scalars(
            select(NotificationRow)
            .where(NotificationRow.incident_id == incident_id)
            .order_by(NotificationRow.due_at, NotificationRow.id)
        )
        return [_record(row) for row in rows]

    def due_ids(
        self,
        *,
        now: datetime,
        stale_before: datetime,
        holder: ClaimHolder | None = None,
        limit: int = 500,
    ) -> list[int]:
        """Messages whose deadline has come and that nobody is sending (or whose sender died)."""
        return list(
            self._session.scalars(
                select(NotificationRow.id)
                .where(
                    or_(
                        (NotificationRow.state == _N.PENDING.value)
                        & (NotificationRow.due_at <= now),
                        (NotificationRow.state == _N.SENDING.value)
                        & _abandoned(stale_before, holder),
                    )
                )
                .order_by(NotificationRow.due_at, NotificationRow.id)
                .limit(limit)
            )
        )

    def orphaned_ids(self, holder: ClaimHolder) -> list[int]:
        """Messages a dead worker was sending when it died, soonest deadline first."""
        return list(
            self._session.scalars(
                select(NotificationRow.id)
                .where(
                    NotificationRow.state == _N.SENDING.value,
                    held_by_dead(NotificationRow.claimed_by, holder),
                )
                .order_by(NotificationRow.due_at, NotificationRow.id)
            )
        )

    def pending_schedule(self) -> list[tuple[int, datetime]]:
        """(id, due_at) of every message still waiting for its deadline: timers to rebuild."""
        rows = self._session.execute(
            select(NotificationRow.id, NotificationRow.due_at).where(
                NotificationRow.state == _N.PENDING.value
            )
        )
        return [(row.id, row.due_at) for row in rows]

    def claim(
        self,
        notification_id: int,
        *,
        now: datetime,
        stale_before: datetime,
        from_states: Iterable[NotificationState] = (_N.PENDING,),
        due_by: datetime | None = None,
        holder: ClaimHolder | None = None,
    ) -> bool:
        """Take the message for sending: True for exactly one caller. A claim older than
        `stale_before`, or held by a worker that stopped beating, belongs to a worker that
        died and is taken over."""
        won = self.claim_many(
            [notification_id],
            now=now,
            stale_before=stale_before,
            from_states=from_states,
            due_by=due_by,
            holder=holder,
        )
        return notification_id in won

    def claim_many(
        self,
        notification_ids: Sequence[int],
        *,
        now: datetime,
        stale_before: datetime,
        from_states: Iterable[NotificationState] = (_N.PENDING,),
        due_by: datetime | None = None,
        holder: ClaimHolder | None = None,
    ) -> set[int]:
        """`claim` for many messages in one statement: the ids this caller took."""
        if not notification_ids:
            return set()
        fresh: ColumnElement[bool] = NotificationRow.state.in_([s.value for s in from_states])
        if due_by is not None:
            fresh = fresh & (NotificationRow.due_at <= due_by)
        stale = (NotificationRow.state == _N.SENDING.value) & _abandoned(stale_before, holder)
        result = self._session.execute(
            update(NotificationRow)
            .where(NotificationRow.id.in_(list(notification_ids)), or_(fresh, stale))
            .values(
                state=_N.SENDING.value,
                claimed_at=now,
                claimed_by=claimant(holder),
                attempts=NotificationRow.attempts + 1,
            )
            .returning(NotificationRow.id)
            .execution_options(synchronize_session=False)
        )
        return set(result.scalars())

    def mark_sent(
        self,
        notification_id: int,
        *,
        now: datetime,
        outcome: DeadlineOutcome,
        by: str,
    ) -> None:
        self._session.execute(
            update(NotificationRow)
            .where(NotificationRow.id == notification_id)
            .values(
                state=_N.SENT.value,
                sent_at=now,
                outcome=outcome.value,
                decided_by=by,
                error=None,
            )
            .execution_options(synchronize_session=False)
        )

    def mark_many_sent(
        self, outcomes: dict[int, DeadlineOutcome], *, now: datetime, by: str
    ) -> None:
        """`mark_sent` for many messages at once, each met or late."""
        if not outcomes:
            return
        table = cast(Table, NotificationRow.__table__)
        self._session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                state=_N.SENT.value,
                sent_at=now,
                outcome=bindparam("b_outcome"),
                decided_by=by,
                error=None,
            ),
            [
                {"b_id": notification_id, "b_outcome": outcome.value}
                for notification_id, outcome in outcomes.items()
            ],
        )

    def release(self, notification_id: int, *, back_to: NotificationState, error: str) -> None:
        """Give a claimed message back after a failed send, to be tried again."""
        self._session.execute(
            update(NotificationRow)
            .where(NotificationRow.id == notification_id, NotificationRow.state == _N.SENDING.value)
            .values(state=back_to.value, error=error[:2000], claimed_at=None)
            .execution_options(synchronize_session=False)
        )

    def escalate(self, notification_id: int, *, now: datetime) -> bool:
        """Mark a due, unsent message as the commander's to decide (and late); True once."""
        result = self._session.execute(
            update(NotificationRow)
            .where(
                NotificationRow.id == notification_id,
                NotificationRow.state == _N.PENDING.value,
                NotificationRow.due_at <= now,
            )
            .values(state=_N.ESCALATED.value, outcome=DeadlineOutcome.LATE.value)
            .execution_options(synchronize_session=False)
        )
        return _won(result)

    def skip(self, notification_id: int, *, by: str, reason: str, now: datetime) -> bool:
        """Decide not to send; True when this call decided it (it was still open)."""
        result = self._session.execute(
            update(NotificationRow)
            .where(
                NotificationRow.id == notification_id,
                NotificationRow.state.in_([_N.PENDING.value, _N.ESCALATED.value]),
            )
            .values(state=_N.SKIPPED.value, skip_reason=reason, decided_by=by, sent_at=None)
            .execution_options(synchronize_session=False)
        )
        return _won(result)

    def set_edited_text(self, notification_id: int, *, text: str, by: str) -> bool:
        """Replace the template's text with a person's; only while the message is open."""
        result = self._session.execute(
            update(NotificationRow)
            .where(
                NotificationRow.id == notification_id,
                NotificationRow.state.in_([_N.PENDING.value, _N.ESCALATED.value]),
            )
            .values(edited_text=text, decided_by=by)
            .execution_options(synchronize_session=False)
        )
        return _won(result)

    def give_up(self, notification_id: int, *, error: str) -> None:
        self._session.execute(
            update(NotificationRow)
            .where(NotificationRow.id == notification_id)
            .values(state=_N.FAILED.value, error=error[:2000])
            .execution_options(synchronize_session=False)
        )

    def set_draft(
        self, notification_id: int, *, channel_id: str, ts: str, shows: NotificationState
    ) -> None:
        self._session.execute(
            update(NotificationRow)
            .where(NotificationRow.id == notification_id)
            .values(draft_channel_id=channel_id, draft_ts=ts, draft_state=shows.value)
            .execution_options(synchronize_session=False)
        )

    def mark_drafts_shown(self, shown: dict[int, NotificationState]) -> None:
        """Record the state each draft now shows in the war room."""
        for notification_id, state in shown.items():
            self._session.execute(
                update(NotificationRow)
                .where(NotificationRow.id == notification_id)
                .values(draft_state=state.value)
                .execution_options(synchronize_session=False)
            )

    def stale_drafts(self, *, limit: int = 500) -> list[tuple[int, int]]:
        """(id, incident id) of posted drafts showing a state their row has since left (a
        refresh lost in a crash, or still queued); rows being sent are left to their sender."""
        rows = self._session.execute(
            select(NotificationRow.id, NotificationRow.incident_id)
            .where(
                NotificationRow.draft_ts.is_not(None),
                NotificationRow.state != _N.SENDING.value,
                or_(
                    NotificationRow.draft_state.is_(None),
                    NotificationRow.draft_state != NotificationRow.state,
                ),
            )
            .order_by(NotificationRow.id)
            .limit(limit)
        )
        return [(row.id, row.incident_id) for row in rows]

    def get_many(self, notification_ids: Iterable[int]) -> dict[int, NotificationRecord]:
        """The rows as they stand, by id (ids that are gone are left out)."""
        rows = self._session.scalars(
            select(NotificationRow)
            .where(NotificationRow.id.in_(list(notification_ids)))
            .execution_options(populate_existing=True)
        )
        return {row.id: _record(row) for row in rows}

    def incidents_missing_drafts(self) -> list[int]:
        """Incidents with an open planned message whose draft is not in the war room yet."""
        return list(
            self._session.scalars(
                select(NotificationRow.incident_id)
                .where(
                    NotificationRow.draft_ts.is_(None),
                    NotificationRow.state.in_([_N.PENDING.value, _N.ESCALATED.value]),
                )
                .distinct()
            )
        )

    def notified_audiences(self, incident_id: int) -> list[Audience]:
        """Audiences that have been sent at least one planned message, in first-sent order."""
        rows = self._session.scalars(
            select(NotificationRow.audience)
            .where(
                NotificationRow.incident_id == incident_id,
                NotificationRow.state == _N.SENT.value,
            )
            .order_by(NotificationRow.sent_at, NotificationRow.id)
        )
        seen: list[Audience] = []
        for value in rows:
            audience = Audience(value)
            if audience not in seen:
                seen.append(audience)
        return seen


def _reminder(row: ReminderRow) -> Reminder:
    return Reminder(
        id=row.id,
        incident_id=row.incident_id,
        kind=ReminderKind(row.kind),
        key=row.key,
        state=ReminderState(row.state),
        due_at=row.due_at,
        data=dict(row.data or {}),
    )


class ReminderRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, incident_id: int, *planned: PlannedReminder) -> None:
        """Insert the reminders whose keys are free, in one statement."""
        insert_ignoring_conflicts(
            self._session,
            _REMINDERS_TABLE,
            [
                {
                    "incident_id": incident_id,
                    "kind": reminder.kind.value,
                    "key": reminder.key,
                    "state": ReminderState.PENDING.value,
                    "due_at": reminder.due_at,
                    "data": reminder.data,
                }
                for reminder in planned
            ],
        )

    def get(self, reminder_id: int) -> Reminder | None:
        row = self._session.get(ReminderRow, reminder_id, populate_existing=True)
        return _reminder(row) if row else None

    def due_ids(self, *, now: datetime, stale_before: datetime, limit: int = 500) -> list[int]:
        return list(
            self._session.scalars(
                select(ReminderRow.id)
                .where(
                    or_(
                        (ReminderRow.state == ReminderState.PENDING.value)
                        & (ReminderRow.due_at <= now),
                        (ReminderRow.state == ReminderState.CLAIMED.value)
                        & (ReminderRow.claimed_at < stale_before),
                    )
                )
                .order_by(ReminderRow.due_at, ReminderRow.id)
                .limit(limit)
            )
        )

    def pending_schedule(self) -> list[tuple[int, datetime]]:
        rows = self._session.execute(
            select(ReminderRow.id, ReminderRow.due_at).where(
                ReminderRow.state == ReminderState.PENDING.value
            )
        )
        return [(row.id, row.due_at) for row in rows]

    def claim(self, reminder_id: int, *, now: datetime, stale_before: datetime) -> bool:
        result = self._session.execute(
            update(ReminderRow)
            .where(
                ReminderRow.id == reminder_id,
                or_(
                    (ReminderRow.state == ReminderState.PENDING.value)
                    & (ReminderRow.due_at <= now),
                    (ReminderRow.state == ReminderState.CLAIMED.value)
                    & (ReminderRow.claimed_at < stale_before),
                ),
            )
            .values(state=ReminderState.CLAIMED.value, claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        return _won(result)

    def finish(self, reminder_id: int, *, now: datetime) -> None:
        self._session.execute(
            update(ReminderRow)
            .where(ReminderRow.id == reminder_id)
            .values(state=ReminderState.DONE.value, done_at=now)
            .execution_options(synchronize_session=False)
        )

    def release(self, reminder_id: int) -> None:
        self._session.execute(
            update(ReminderRow)
            .where(ReminderRow.id == reminder_id, ReminderRow.state == ReminderState.CLAIMED.value)
            .values(state=ReminderState.PENDING.value, claimed_at=None)
            .execution_options(synchronize_session=False)
        )

    def cancel(
        self, incident_id: int, kind: ReminderKind, *, key_prefix: str = "", now: datetime
    ) -> int:
        """Cancel the incident's pending reminders of a kind; how many were cancelled."""
        condition = (
            (ReminderRow.incident_id == incident_id)
            & (ReminderRow.kind == kind.value)
            & (ReminderRow.state == ReminderState.PENDING.value)
        )
        if key_prefix:
            condition = condition & ReminderRow.key.startswith(key_prefix, autoescape=True)
        result = self._session.execute(
            update(ReminderRow)
            .where(condition)
            .values(state=ReminderState.CANCELLED.value, done_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def pending_all(self, incident_id: int) -> list[Reminder]:
        rows = self._session.scalars(
            select(ReminderRow)
            .where(
                ReminderRow.incident_id == incident_id,
                ReminderRow.state == ReminderState.PENDING.value,
            )
            .order_by(ReminderRow.due_at)
        )
        return [_reminder(row) for row in rows]

    def last_given(self, incident_id: int, kind: ReminderKind) -> Reminder | None:
        """The reminder of this kind given most recently, if any."""
        row = self._session.scalar(
            select(ReminderRow)
            .where(
                ReminderRow.incident_id == incident_id,
                ReminderRow.kind == kind.value,
                ReminderRow.state == ReminderState.DONE.value,
            )
            .order_by(ReminderRow.done_at.desc(), ReminderRow.id.desc())
            .limit(1)
        )
        return _reminder(row) if row else None

    def pending(self, incident_id: int, kind: ReminderKind) -> list[Reminder]:
        rows = self._session.scalars(
            select(ReminderRow)
            .where(
                ReminderRow.incident_id == incident_id,
                ReminderRow.kind == kind.value,
                ReminderRow.state == ReminderState.PENDING.value,
            )
            .order_by(ReminderRow.due_at)
        )
        return [_reminder(row) for row in rows]


@dataclass(frozen=True)
class ClockRecord:
    """A regulatory clock as stored."""

    id: int
    incident_id: int
    regime: RegulatoryRegime
    case: str
    started_at: datetime
    due_at: datetime
    submitted_by: str | None
    submitted_at: datetime | None
    report_channel_id: str | None
    report_ts: str | None


def _clock(row: RegulatoryClockRow) -> ClockRecord:
    return ClockRecord(
        id=row.id,
        incident_id=row.incident_id,
        regime=RegulatoryRegime(row.regime),
        case=row.case,
        started_at=row.started_at,
        due_at=row.due_at,
        submitted_by=row.submitted_by,
        submitted_at=row.submitted_at,
        report_channel_id=row.report_channel_id,
        report_ts=row.report_ts,
    )


class RegulatoryClockRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self,
        incident_id: int,
        *,
        regime: RegulatoryRegime,
        case: str,
        started_at: datetime,
        due_at: datetime,
    ) -> int | None:
        row = RegulatoryClockRow(
            incident_id=incident_id,
            regime=regime.value,
            case=case,
            started_at=started_at,
            due_at=due_at,
        )
        return row.id if insert_unless_taken(self._session, row) else None

    def shorten(self, clock_id: int, *, case: str, due_at: datetime) -> bool:
        """Move the deadline earlier (a graver case); never later. True when it moved."""
        result = self._session.execute(
            update(RegulatoryClockRow)
            .where(
                RegulatoryClockRow.id == clock_id,
                RegulatoryClockRow.due_at > due_at,
                RegulatoryClockRow.submitted_at.is_(None),
            )
            .values(case=case, due_at=due_at)
            .execution_options(synchronize_session=False)
        )
        return _won(result)

    def get(self, clock_id: int) -> ClockRecord | None:
        row = self._session.get(RegulatoryClockRow, clock_id, populate_existing=True)
        return _clock(row) if row else None

    def incidents_missing_reports(self) -> list[int]:
        return list(
            self._session.scalars(
                select(RegulatoryClockRow.incident_id)
                .where(RegulatoryClockRow.report_ts.is_(None))
                .distinct()
            )
        )

    def list_for(self, incident_id: int) -> list[ClockRecord]:
        rows = self._session.scalars(
            select(RegulatoryClockRow)
            .where(RegulatoryClockRow.incident_id == incident_id)
            .order_by(RegulatoryClockRow.due_at)
        )
        return [_clock(row) for row in rows]

    def mark_submitted(self, clock_id: int, *, by: str, now: datetime) -> bool:
        """Record the report as filed; True for the first person to say so."""
        result = self._session.execute(
            update(RegulatoryClockRow)
            .where(RegulatoryClockRow.id == clock_id, RegulatoryClockRow.submitted_at.is_(None))
            .values(submitted_by=by, submitted_at=now)
            .execution_options(synchronize_session=False)
        )
        return _won(result)

    def set_report(self, clock_id: int, *, channel_id: str, ts: str) -> None:
        self._session.execute(
            update(RegulatoryClockRow)
            .where(RegulatoryClockRow.id == clock_id)
            .values(report_channel_id=channel_id, report_ts=ts)
            .execution_options(synchronize_session=False)
        )
