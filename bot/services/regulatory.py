"""The legal clocks in the war room: a draft report for each, and who filed it when."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.clock import Clock
from bot.config import WarroomConfig
from bot.domain.audit import AuditAction
from bot.domain.incident import Incident
from bot.domain.regulatory import describe_clock, draft_report
from bot.domain.reminders import ReminderKind
from bot.domain.vocabulary import Role
from bot.errors import PermissionDeniedError, UserError
from bot.presenters import incident_context
from bot.regulatory_presenters import clock_context, report_context
from bot.rendering import Renderer
from bot.services.history import record_change
from bot.services.war_room import WarRoomService
from bot.slack_gateway import SlackGateway

if TYPE_CHECKING:
    from storage.communication_repositories import ClockRecord
    from storage.unit_of_work import UnitOfWorkFactory

# Who may say a report was filed: the legal advisor, and the commander standing in.
FILERS = (Role.LEGAL_ADVISOR, Role.INCIDENT_COMMANDER)


class RegulatoryService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        slack: SlackGateway,
        renderer: Renderer,
        config: WarroomConfig,
        clock: Clock,
        war_rooms: WarRoomService,
        containment_lines: Callable[[int], list[str]],
    ) -> None:
        self._uow = uow
        self._slack = slack
        self._renderer = renderer
        self._config = config
        self._clock = clock
        self._war_rooms = war_rooms
        self._containment_lines = containment_lines

    def post_reports(self, incident_id: int) -> int:
        """Post the draft report of every clock that has none yet; how many were posted."""
        with self._uow(read_only=True) as uow:
            incident = uow.incidents.get(incident_id)
            clocks = [c for c in uow.clocks.list_for(incident_id) if c.report_ts is None]
        if incident is None or incident.channel_id is None:
            return 0
        posted = 0
        for record in clocks:
            channel = incident.channel_id
            message = self.report(record, incident)
            key = f"report:{record.regime.value}"
            if self._war_rooms.post_once(incident, key, channel, message):
                sent = self._war_rooms.sent(incident.id, key)
                if sent and sent["ts"]:
                    with self._uow() as uow:
                        uow.clocks.set_report(record.id, channel_id=channel, ts=sent["ts"])
                        uow.commit()
                    posted += 1
        return posted

    def report(self, record: ClockRecord, incident: Incident) -> dict[str, Any]:
        """The draft report message: the clock, the fields the regulation asks for, and the
        Mark submitted button until someone files it."""
        now = self._clock.now()
        clock = describe_clock(
            regime=record.regime,
            case=record.case,
            started_at=record.started_at,
            due_at=record.due_at,
        )
        fields = draft_report(
            incident,
            clock,
            contact=self._config.regulatory.contact,
            measures=self._containment_lines(incident.id),
            now=record.submitted_at or now,
        )
        return self._renderer.render(
            "regulatory/report",
            incident=incident_context(incident),
            clock=clock_context(
                clock,
                now=now,
                submitted_by=record.submitted_by,
                submitted_at=record.submitted_at,
            ),
            fields=report_context(fields),
            button_value=str(record.id),
            legal_advisor_id=incident.holder(Role.LEGAL_ADVISOR),
        )

    def mark_submitted(self, clock_id: int, *, user_id: str) -> ClockRecord:
        """Record who filed the report and when; the clock's reminders stop."""
        now = self._clock.now()
        with self._uow() as uow:
            record = uow.clocks.get(clock_id)
            if record is None:
                raise UserError("That regulatory clock no longer exists.")
            incident = uow.incidents.get(record.incident_id)
            assert incident is not None
            if user_id not in {incident.holder(role) for role in FILERS}:
                raise PermissionDeniedError(
                    "Only the legal advisor or the incident commander records a filing."
                )
            if not uow.clocks.mark_submitted(clock_id, by=user_id, now=now):
                raise UserError("That report is already marked as submitted.")
            uow.reminders.cancel(
                record.incident_id,
                ReminderKind.REGULATORY,
                key_prefix=f"regulatory:{record.regime.value}:",
                now=now,
            )
            late = now > record.due_at
            record_change(
                uow,
                record.incident_id,
                AuditAction.REGULATORY_SUBMITTED,
                actor=user_id,
                now=now,
                summary=(
                    f"{record.regime.value} report submitted"
                    + (" after the deadline" if late else " in time")
                ),
                data={
                    "regime": record.regime.value,
                    "due_at": record.due_at.isoformat(),
                    "late": late,
                },
            )
            submitted = uow.clocks.get(clock_id)
            uow.commit()
        assert submitted is not None
        return submitted

    def refresh_report(self, clock_id: int) -> None:
        """Re-render the draft report where it was posted (after a filing was recorded)."""
        with self._uow(read_only=True) as uow:
            record = uow.clocks.get(clock_id)
            incident = uow.incidents.get(record.incident_id) if record else None
        if record is None or incident is None:
            return
        if record.report_channel_id and record.report_ts:
            self._slack.update(
                record.report_channel_id, record.report_ts, self.report(record, incident)
            )
