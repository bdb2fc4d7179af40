"""Workers (running warroom processes) and how their claims are taken over when they die.

A claim names the worker that holds it. A worker beats while it lives; one whose last beat
is older than the claimant's `dead_before` has died, and its claims are anybody's at once,
instead of when they grow stale (minutes, sized for the slowest honest send)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from storage.models import WorkerRow


@dataclass(frozen=True)
class ClaimHolder:
    """The worker making a claim, and the last beat a living worker must have made."""

    worker_id: str
    dead_before: datetime


def abandoned(
    expired: ColumnElement[bool],
    claimed_by: InstrumentedAttribute[Any],
    holder: ClaimHolder | None,
) -> ColumnElement[bool]:
    """The condition under which a held claim (or lease) may be taken over: it has
    `expired`, or the worker that holds it stopped beating. Never the claimant's own claims
    by the second rule: a worker that is late with its own beat is not dead to itself."""
    if holder is None:
        return expired
    return expired | held_by_dead(claimed_by, holder)


def claimant(holder: ClaimHolder | None) -> str | None:
    """What a claim records as its holder (nobody, for a process that does not beat)."""
    return holder.worker_id if holder is not None else None


def held_by_dead(
    claimed_by: InstrumentedAttribute[Any], holder: ClaimHolder
) -> ColumnElement[bool]:
    """The claim's worker stopped beating before `holder.dead_before` (and is not `holder`)."""
    silent = select(WorkerRow.id).where(
        WorkerRow.beat_at < holder.dead_before, WorkerRow.id != holder.worker_id
    )
    result: ColumnElement[bool] = claimed_by.in_(silent)
    return result


class WorkerRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def beat(self, worker_id: str, *, host: str, now: datetime) -> None:
        """Say the worker is alive (registering it on its first beat)."""
        result = self._session.execute(
            update(WorkerRow)
            .where(WorkerRow.id == worker_id)
            .values(beat_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            self._session.add(WorkerRow(id=worker_id, host=host, started_at=now, beat_at=now))
            self._session.flush()

    def sign_off(self, worker_id: str, *, dead_since: datetime) -> None:
        """A worker that stopped: dead from now on for everyone. Its row stays (pruned with
        the long dead), so that whatever it still held when it stopped, if a send outlasted
        the stop, is taken over at the next beat of a live worker rather than when stale."""
        self._session.execute(
            update(WorkerRow)
            .where(WorkerRow.id == worker_id)
            .values(beat_at=dead_since)
            .execution_options(synchronize_session=False)
        )

    def prune(self, *, silent_since: datetime) -> int:
        """Forget workers dead for so long that every claim they held is stale anyway."""
        result = self._session.execute(delete(WorkerRow).where(WorkerRow.beat_at < silent_since))
        return int(result.rowcount)  # type: ignore[attr-defined]

    def alive(self, *, dead_before: datetime, besides: str) -> list[str]:
        """Workers other than `besides` that beat at or after `dead_before`."""
        return list(
            self._session.scalars(
                select(WorkerRow.id).where(
                    WorkerRow.beat_at >= dead_before, WorkerRow.id != besides
                )
            )
        )
