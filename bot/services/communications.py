"""Everything that keeps stakeholders told, as the rest of warroom sees it: what to do after a
war room opens or an incident changes, and the sweep that catches whatever timers missed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.deadline_timers import DeadlineTimers
from bot.delivery_queue import DeliveryQueue
from bot.errors import ExternalServiceError
from bot.services.deadline_view import incident_deadlines
from bot.services.notifications import NotificationService
from bot.services.regulatory import RegulatoryService
from bot.services.reminders import ReminderService
from bot.services.status_updates import StatusUpdateService
from bot.worker_heartbeat import WorkerHeartbeat

if TYPE_CHECKING:
    from bot.clock import Clock
    from bot.config import WarroomConfig
    from storage.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)

# Due messages handed to the sending threads at start-up; the sweep finds any beyond.
CATCH_UP_LIMIT = 10_000


@dataclass
class Communications:
    notifications: NotificationService
    reminders: ReminderService
    regulatory: RegulatoryService
    updates: StatusUpdateService
    timers: DeadlineTimers
    sends: DeliveryQueue
    heartbeat: WorkerHeartbeat
    uow: UnitOfWorkFactory
    config: WarroomConfig
    clock: Clock

    def start(self) -> None:
        """Send timed messages in batches from their own threads, and redraw drafts off
        them (before this, timers send and redraw in their own thread); hand those threads
        at once what came due while warroom was down, before thousands of timers are armed.
        First of all, beat: from then on this process's claims name it, and what a dead one
        was sending is this one's to send (the catch-up below finds it too)."""
        self.heartbeat.start()
        self.sends.start()
        self.notifications.drafts.start()
        for notification_id in self.notifications.due_now(limit=CATCH_UP_LIMIT):
            self.sends.submit(notification_id)

    def close(self) -> None:
        """Finish the sends in hand, then stop beating: whatever outlasted the stop is
        another process's to send at once."""
        self.sends.close()
        self.notifications.drafts.close()
        self.notifications.close()
        self.heartbeat.close()

    def take_over(self, notification_ids: list[int]) -> None:
        """Messages a dead worker was sending: to this process's sending threads."""
        for notification_id in notification_ids:
            self.fire_notification(notification_id)

    def fire_notification(self, notification_id: int) -> object:
        """A message's timer: queue it for the sending threads, or send it now."""
        if self.sends.submit(notification_id):
            return True
        return self.notifications.fire(notification_id)

    def after_change(self, incident_id: int) -> None:
        """After a declaration or a re-plan: timers for the new rows, drafts and draft reports
        in the war room. Slack failures are left to the sweep."""
        self.timers.schedule_incident(incident_id)
        for step in (self.notifications.post_drafts, self.regulatory.post_reports):
            try:
                step(incident_id)
            except ExternalServiceError as error:
                log.warning("incident id %d: %s (the sweep retries)", incident_id, error)

    def sweep(self) -> None:
        """Send what came due, give due reminders, post drafts and reports still missing,
        redraw drafts whose redraw was lost."""
        self.notifications.run_due()
        self.reminders.run_due()
        self.notifications.redraw_stale_drafts()  # logs Slack's refusals per incident
        with self.uow(read_only=True) as uow:
            drafts = uow.notifications.incidents_missing_drafts()
            reports = uow.clocks.incidents_missing_reports()
        for incident_id in drafts:
            self._quietly(self.notifications.post_drafts, incident_id)
        for incident_id in reports:
            self._quietly(self.regulatory.post_reports, incident_id)

    def _quietly(self, step: Any, incident_id: int) -> None:
        try:
            step(incident_id)
        except ExternalServiceError as error:
            log.warning("incident id %d: %s", incident_id, error)

    def deadlines(self, incident_id: int) -> dict[str, list[dict[str, Any]]]:
        """Every message deadline and legal clock of the incident, for status and the card."""
        with self.uow(read_only=True) as uow:
            return incident_deadlines(uow, incident_id, config=self.config, now=self.clock.now())
