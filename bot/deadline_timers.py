"""APScheduler timers for deadline rows: a faster way to notice a row came due, never the
record of it. Job ids are derived from the row, so scheduling twice replaces rather than
doubles; at start-up every pending row gets its timer back, and rows that came due while
warroom was down fire at once (and are recorded late by the service they call)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from apscheduler.schedulers.base import BaseScheduler

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWorkFactory


def notification_job_id(notification_id: int) -> str:
    return f"warroom:notification:{notification_id}"


def reminder_job_id(reminder_id: int) -> str:
    return f"warroom:reminder:{reminder_id}"


class DeadlineTimers:
    def __init__(
        self,
        scheduler: BaseScheduler,
        *,
        uow: UnitOfWorkFactory,
        fire_notification: Callable[[int], object],
        fire_reminder: Callable[[int], object],
    ) -> None:
        self._scheduler = scheduler
        self._uow = uow
        self._fire_notification = fire_notification
        self._fire_reminder = fire_reminder

    def rebuild(self) -> int:
        """A timer for every pending row; how many timers there are."""
        with self._uow(read_only=True) as uow:
            notifications = uow.notifications.pending_schedule()
            reminders = uow.reminders.pending_schedule()
        return self._arm(notifications, reminders)

    def schedule_incident(self, incident_id: int) -> int:
        """Timers for the incident's pending rows (after a declaration or a re-plan)."""
        with self._uow(read_only=True) as uow:
            notifications = [
                (n.id, n.due_at)
                for n in uow.notifications.list_for(incident_id)
                if n.state.value == "pending"
            ]
            reminders = [(r.id, r.due_at) for r in uow.reminders.pending_all(incident_id)]
        return self._arm(notifications, reminders)

    def _arm(
        self,
        notifications: list[tuple[int, datetime]],
        reminders: list[tuple[int, datetime]],
    ) -> int:
        # Slack's refusals are logged, with the incident, by the services the timers call.
        for notification_id, due_at in notifications:
            self._add(
                notification_job_id(notification_id),
                due_at,
                self._fire_notification,
                notification_id,
            )
        for reminder_id, due_at in reminders:
            self._add(reminder_job_id(reminder_id), due_at, self._fire_reminder, reminder_id)
        return len(notifications) + len(reminders)

    def _add(self, job_id: str, at: datetime, work: Callable[[int], object], row_id: int) -> None:
        self._scheduler.add_job(
            work,
            "date",
            run_date=at,
            args=[row_id],
            id=job_id,
            replace_existing=True,
            # Late is still worth doing: the service records it as late.
            misfire_grace_time=None,
            coalesce=True,
        )
