"""Recovery plans and their steps, and the enhanced-monitoring windows after resolution.

A step moves between states only by conditional UPDATE (`... WHERE state IN (...)`), so a
double click or two replicas never run a step twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.domain.recovery import PlanState, Step, StepKind, StepSpec, StepState
from storage.models import MonitoringWindowRow, RecoveryPlanRow, RecoveryStepRow
from storage.repositories import insert_unless_taken


@dataclass(frozen=True)
class StepRecord:
    id: int
    plan_id: int
    incident_id: int
    seq: int
    system: str
    kind: StepKind
    title: str
    state: StepState
    stage_percent: int | None
    spec: dict[str, Any]
    idempotency_key: str
    approved_by: str | None
    result: dict[str, Any]
    updated_at: datetime

    @property
    def manual(self) -> bool:
        return bool(self.spec.get("manual"))

    def as_step(self) -> Step:
        return Step(
            id=self.id,
            seq=self.seq,
            system=self.system,
            kind=self.kind,
            title=self.title,
            state=self.state,
            manual=self.manual,
            stage_percent=self.stage_percent,
        )


@dataclass(frozen=True)
class PlanRecord:
    id: int
    incident_id: int
    state: PlanState
    created_by: str
    created_at: datetime
    completed_at: datetime | None
    channel_id: str | None
    message_ts: str | None


@dataclass(frozen=True)
class MonitoringWindow:
    id: int
    incident_id: int
    started_at: datetime
    ends_at: datetime
    models: tuple[str, ...]
    reopen_prompted_at: datetime | None


def _step(row: RecoveryStepRow) -> StepRecord:
    return StepRecord(
        id=row.id,
        plan_id=row.plan_id,
        incident_id=row.incident_id,
        seq=row.seq,
        system=row.system,
        kind=StepKind(row.kind),
        title=row.title,
        state=StepState(row.state),
        stage_percent=row.stage_percent,
        spec=dict(row.spec or {}),
        idempotency_key=row.idempotency_key,
        approved_by=row.approved_by,
        result=dict(row.result or {}),
        updated_at=row.updated_at,
    )


def _plan(row: RecoveryPlanRow) -> PlanRecord:
    return PlanRecord(
        id=row.id,
        incident_id=row.incident_id,
        state=PlanState(row.state),
        created_by=row.created_by,
        created_at=row.created_at,
        completed_at=row.completed_at,
        channel_id=row.channel_id,
        message_ts=row.message_ts,
    )


class RecoveryRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add_plan(
        self,
        incident_id: int,
        specs: Sequence[StepSpec],
        *,
        created_by: str,
        now: datetime,
        incident_number: int,
    ) -> int:
        plan = RecoveryPlanRow(
            incident_id=incident_id,
            state=PlanState.IN_PROGRESS.value,
            created_by=created_by,
            created_at=now,
        )
        self._session.add(plan)
        self._session.flush()
        for spec in specs:
            self._session.add(
                RecoveryStepRow(
                    plan_id=plan.id,
                    incident_id=incident_id,
                    seq=spec.seq,
                    system=spec.system,
                    kind=spec.kind.value,
                    title=spec.title,
                    stage_percent=spec.stage_percent,
                    spec={"check": dict(spec.check), "manual": spec.manual},
                    state=StepState.PENDING.value,
                    idempotency_key=(
                        f"warroom-{incident_number}-recovery-{plan.id}-{spec.seq}-"
                        f"{uuid.uuid4().hex[:12]}"
                    ),
                    result={},
                    updated_at=now,
                )
            )
        self._session.flush()
        return plan.id

    def open_plan(self, incident_id: int) -> PlanRecord | None:
        """The incident's newest plan that has not completed."""
        row = self._session.scalar(
            select(RecoveryPlanRow)
            .where(
                RecoveryPlanRow.incident_id == incident_id,
                RecoveryPlanRow.state != PlanState.COMPLETED.value,
            )
            .order_by(RecoveryPlanRow.id.desc())
            .limit(1)
        )
        return _plan(row) if row else None

    def latest_plan(self, incident_id: int) -> PlanRecord | None:
        row = self._session.scalar(
            select(RecoveryPlanRow)
            .where(RecoveryPlanRow.incident_id == incident_id)
            .order_by(RecoveryPlanRow.id.desc())
            .limit(1)
        )
        return _plan(row) if row else None

    def plan(self, plan_id: int) -> PlanRecord | None:
        row = self._session.get(RecoveryPlanRow, plan_id, populate_existing=True)
        return _plan(row) if row else None

    def steps(self, plan_id: int) -> list[StepRecord]:
        rows = self._session.scalars(
            select(RecoveryStepRow)
            .where(RecoveryStepRow.plan_id == plan_id)
            .order_by(RecoveryStepRow.seq)
            .execution_options(populate_existing=True)
        )
        return [_step(row) for row in rows]

    def step(self, step_id: int) -> StepRecord | None:
        row = self._session.get(RecoveryStepRow, step_id, populate_existing=True)
        return _step(row) if row else None

    def move_step(
        self,
        step_id: int,
        *,
        from_states: Iterable[StepState],
        to: StepState,
        now: datetime,
        approved_by: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> bool:
        """Move the step if it is still in one of `from_states`; True for the one caller
        that moved it."""
        values: dict[str, Any] = {"state": to.value, "updated_at": now}
        if approved_by is not None:
            values["approved_by"] = approved_by
        if result is not None:
            values["result"] = result
        moved = self._session.execute(
            update(RecoveryStepRow)
            .where(
                RecoveryStepRow.id == step_id,
                RecoveryStepRow.state.in_([state.value for state in from_states]),
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(moved.rowcount == 1)  # type: ignore[attr-defined]

    def set_plan_state(
        self, plan_id: int, state: PlanState, *, completed_at: datetime | None = None
    ) -> None:
        self._session.execute(
            update(RecoveryPlanRow)
            .where(RecoveryPlanRow.id == plan_id)
            .values(state=state.value, completed_at=completed_at)
            .execution_options(synchronize_session=False)
        )

    def set_plan_message(self, plan_id: int, *, channel_id: str, ts: str) -> None:
        self._session.execute(
            update(RecoveryPlanRow)
            .where(RecoveryPlanRow.id == plan_id)
            .values(channel_id=channel_id, message_ts=ts)
            .execution_options(synchronize_session=False)
        )

    # -- enhanced monitoring -------------------------------------------------------------

    def open_window(
        self, incident_id: int, *, started_at: datetime, ends_at: datetime, models: list[str]
    ) -> bool:
        row = MonitoringWindowRow(
            incident_id=incident_id, started_at=started_at, ends_at=ends_at, models=models
        )
        return insert_unless_taken(self._session, row)

    def window(self, incident_id: int) -> MonitoringWindow | None:
        row = self._session.scalar(
            select(MonitoringWindowRow).where(MonitoringWindowRow.incident_id == incident_id)
        )
        return _window(row) if row else None

    def active_windows(self, now: datetime) -> list[MonitoringWindow]:
        rows = self._session.scalars(
            select(MonitoringWindowRow).where(
                MonitoringWindowRow.started_at <= now, MonitoringWindowRow.ends_at > now
            )
        )
        return [_window(row) for row in rows]

    def mark_prompted(self, window_id: int, *, now: datetime) -> bool:
        """Record the re-open prompt; True the first time only."""
        moved = self._session.execute(
            update(MonitoringWindowRow)
            .where(
                MonitoringWindowRow.id == window_id,
                MonitoringWindowRow.reopen_prompted_at.is_(None),
            )
            .values(reopen_prompted_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(moved.rowcount == 1)  # type: ignore[attr-defined]

    def end_window(self, incident_id: int, *, now: datetime) -> None:
        self._session.execute(
            update(MonitoringWindowRow)
            .where(MonitoringWindowRow.incident_id == incident_id)
            .values(ends_at=now)
            .execution_options(synchronize_session=False)
        )


def _window(row: MonitoringWindowRow) -> MonitoringWindow:
    return MonitoringWindow(
        id=row.id,
        incident_id=row.incident_id,
        started_at=row.started_at,
        ends_at=row.ends_at,
        models=tuple(row.models or ()),
        reopen_prompted_at=row.reopen_prompted_at,
    )
