"""Fires reminders when they come due: messages due soon, status updates owed, legal clocks.

Each reminder row is claimed before it fires, so two replicas give it once; what it says is
decided at that moment (a message sent meanwhile, a report filed, an incident resolved all
silence it).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.clock import Clock
from bot.config import WarroomConfig
from bot.domain.incident import Incident
from bot.domain.notifications import NotificationState
from bot.domain.regulatory import describe_clock, describe_duration
from bot.domain.reminders import Reminder, ReminderKind, cadence_reminder
from bot.domain.vocabulary import NotificationTier, RegulatoryRegime, Role
from bot.errors import ExternalServiceError, UserError
from bot.logging_setup import log_context
from bot.presenters import incident_context, notification_context
from bot.regulatory_presenters import clock_context
from bot.rendering import Renderer
from bot.services.war_room import WarRoomService
from bot.slack_gateway import SlackGateway

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

STALE_REMINDER = timedelta(minutes=2)
SNOOZE_CHOICES = (30, 60)


class ReminderService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        slack: SlackGateway,
        renderer: Renderer,
        config: WarroomConfig,
        clock: Clock,
        war_rooms: WarRoomService,
    ) -> None:
        self._uow = uow
        self._slack = slack
        self._renderer = renderer
        self._config = config
        self._clock = clock
        self._war_rooms = war_rooms

    def run_due(self) -> int:
        """Give every reminder that has come due; how many were given (silenced ones count)."""
        now = self._clock.now()
        with self._uow(read_only=True) as uow:
            due = uow.reminders.due_ids(now=now, stale_before=now - STALE_REMINDER)
        return sum(self.fire(reminder_id) for reminder_id in due)

    def fire(self, reminder_id: int) -> bool:
        """Give one reminder if it is due and nobody else is giving it. When Slack refuses,
        the reminder is given back (the sweep tries again) and the refusal logged."""
        now = self._clock.now()
        with self._uow() as uow:
            if not uow.reminders.claim(reminder_id, now=now, stale_before=now - STALE_REMINDER):
                return False
            reminder = uow.reminders.get(reminder_id)
            assert reminder is not None
            incident = uow.incidents.get(reminder.incident_id)
            assert incident is not None
            message = self._message(uow, reminder, incident)
            if reminder.kind is ReminderKind.CADENCE and incident.state.is_open:
                # The next one is planned with this one, so a crash cannot end the cadence.
                uow.reminders.add(
                    incident.id,
                    cadence_reminder(
                        after=now,
                        interval=self._config.cadence.for_severity(incident.severity),
                    ),
                )
            uow.commit()
        with log_context(incident=incident.number):
            try:
                if message is not None and incident.channel_id:
                    self._war_rooms.post_once(
                        incident, f"reminder:{reminder.id}", incident.channel_id, message
                    )
            except ExternalServiceError as error:
                with self._uow() as uow:
                    uow.reminders.release(reminder_id)
                    uow.commit()
                log.warning("reminder %d not given yet (the sweep retries): %s", reminder_id, error)
                return False
            with self._uow() as uow:
                uow.reminders.finish(reminder_id, now=self._clock.now())
                uow.commit()
        return True

    def _message(
        self, uow: UnitOfWork, reminder: Reminder, incident: Incident
    ) -> dict[str, Any] | None:
        """What the reminder says now, or None when there is nothing left to remind of."""
        match reminder.kind:
            case ReminderKind.NOTIFICATION:
                return self._notification_message(uow, reminder, incident)
            case ReminderKind.CADENCE:
                if not incident.state.is_open:
                    return None
                return self.cadence_message(uow, reminder, incident)
            case ReminderKind.REGULATORY:
                return self._regulatory_message(uow, reminder, incident)
            case ReminderKind.CHECKIN:
                return self._checkin_message(uow, reminder, incident)

    def _notification_message(
        self, uow: UnitOfWork, reminder: Reminder, incident: Incident
    ) -> dict[str, Any] | None:
        tier = NotificationTier(reminder.data["tier"])
        due_at = datetime.fromisoformat(reminder.data["due_at"])
        pending = [
            n
            for n in uow.notifications.list_for(incident.id)
            if n.tier is tier and n.due_at == due_at and n.state is NotificationState.PENDING
        ]
        if not pending:
            return None
        return self._renderer.render(
            "notifications/reminder",
            incident=incident_context(incident),
            tier=tier.value,
            due_at=due_at,
            pending=[notification_context(n) for n in pending],
            auto_send=self._config.notifications.auto_send,
            comms_lead_id=_comms_lead(incident),
        )

    def cadence_message(
        self,
        uow: UnitOfWork,
        reminder: Reminder,
        incident: Incident,
        *,
        outcome: str | None = None,
        actor_id: str | None = None,
        until: datetime | None = None,
    ) -> dict[str, Any]:
        events = uow.timeline.list_for(incident.id)
        updates = [e["occurred_at"] for e in events if e["kind"] == "status_update"]
        return self._renderer.render(
            "notifications/cadence",
            incident=incident_context(incident),
            interval=describe_duration(self._config.cadence.for_severity(incident.severity)),
            last_update_at=updates[-1] if updates else incident.declared_at,
            comms_lead_id=_comms_lead(incident),
            reminder_id=reminder.id,
            outcome=outcome,
            actor_id=actor_id,
            until=until,
        )

    def _regulatory_message(
        self, uow: UnitOfWork, reminder: Reminder, incident: Incident
    ) -> dict[str, Any] | None:
        regime = RegulatoryRegime(reminder.data["regime"])
        records = [c for c in uow.clocks.list_for(incident.id) if c.regime is regime]
        if not records or records[0].submitted_at is not None:
            return None
        record = records[0]
        clock = describe_clock(
            regime=record.regime,
            case=record.case,
            started_at=record.started_at,
            due_at=record.due_at,
        )
        return self._renderer.render(
            "regulatory/reminder",
            incident=incident_context(incident),
            clock=clock_context(clock, now=self._clock.now()),
            reminder={"key": reminder.key, "label": reminder.data.get("label", "")},
            legal_advisor_id=incident.holder(Role.LEGAL_ADVISOR)
            or incident.holder(Role.INCIDENT_COMMANDER),
        )

    def _checkin_message(
        self, uow: UnitOfWork, reminder: Reminder, incident: Incident
    ) -> dict[str, Any] | None:
        window = uow.recovery.window(incident.id)
        if window is None or incident.state.is_open:
            return None  # re-opened: the incident is being handled again
        now = self._clock.now()
        final = bool(reminder.data.get("final"))
        return self._renderer.render(
            "recovery/checkin",
            incident=incident_context(incident),
            window={
                "models": list(window.models),
                "ends_at": window.ends_at,
                "reopen_prompted_at": window.reopen_prompted_at,
            },
            final=final,
            remaining=describe_duration(max(window.ends_at - now, timedelta(0))),
            z_threshold=self._config.detection.z_threshold
            * self._config.recovery.monitoring_factor,
        )

    # -- the cadence buttons -------------------------------------------------------------

    def snooze(self, reminder_id: int, *, minutes: int, user_id: str) -> dict[str, Any]:
        """Remind again in 30 or 60 minutes instead of at the usual interval; the reminder
        message, updated to say so."""
        if minutes not in SNOOZE_CHOICES:
            raise UserError("Snooze for 30 or 60 minutes.")
        now = self._clock.now()
        until = now + timedelta(minutes=minutes)
        with self._uow() as uow:
            reminder, incident = self._cadence(uow, reminder_id)
            uow.reminders.cancel(incident.id, ReminderKind.CADENCE, now=now)
            uow.reminders.add(
                incident.id,
                cadence_reminder(after=now, interval=timedelta(minutes=minutes), note="snoozed"),
            )
            uow.timeline.add(
                incident.id,
                kind="cadence_snoozed",
                actor_id=user_id,
                summary=f"Status-update reminder snoozed for {minutes} minutes",
                now=now,
                data={"minutes": minutes},
            )
            message = self.cadence_message(
                uow, reminder, incident, outcome="snoozed", actor_id=user_id, until=until
            )
            uow.commit()
        return message

    def dismiss(self, reminder_id: int, *, user_id: str) -> dict[str, Any]:
        """Acknowledge this reminder; the next comes at the usual interval."""
        with self._uow(read_only=True) as uow:
            reminder, incident = self._cadence(uow, reminder_id)
            return self.cadence_message(
                uow, reminder, incident, outcome="dismissed", actor_id=user_id
            )

    def close_cadence_reminder(self, incident_id: int, *, actor_id: str) -> None:
        """After an update: the last status-update reminder says so and loses its buttons
        (snoozing it now would undo the cadence the update just restarted)."""
        with self._uow(read_only=True) as uow:
            reminder = uow.reminders.last_given(incident_id, ReminderKind.CADENCE)
            incident = uow.incidents.get(incident_id)
            if reminder is None or incident is None:
                return
            sent = uow.outbound.sent(incident_id, f"reminder:{reminder.id}")
            message = self.cadence_message(
                uow, reminder, incident, outcome="updated", actor_id=actor_id
            )
        if sent and sent["channel_id"] and sent["ts"]:
            self._slack.update(sent["channel_id"], sent["ts"], message)

    def _cadence(self, uow: UnitOfWork, reminder_id: int) -> tuple[Reminder, Incident]:
        reminder = uow.reminders.get(reminder_id)
        if reminder is None or reminder.kind is not ReminderKind.CADENCE:
            raise UserError("That reminder no longer exists.")
        incident = uow.incidents.get(reminder.incident_id)
        assert incident is not None
        if not incident.state.is_open:
            raise UserError(f"Incident #{incident.number} is {incident.state.value}.")
        return reminder, incident


def _comms_lead(incident: Incident) -> str | None:
    return incident.holder(Role.COMMUNICATIONS_LEAD) or incident.holder(Role.INCIDENT_COMMANDER)
