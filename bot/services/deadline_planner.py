"""Turns an incident into deadline rows inside the transaction that declares or changes it.

Messages, the reminders before them, the status-update cadence and the regulatory clocks are
all rows before anything is sent, so a crash right after the declaration loses none of them;
timers are only a faster way to notice that a row came due.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from bot.config import WarroomConfig
from bot.domain.audit import AuditAction
from bot.domain.drills import is_drill
from bot.domain.incident import Incident
from bot.domain.notifications import (
    ExistingNotification,
    PlannedMessage,
    TierDeadlines,
    plan_notifications,
    replan,
)
from bot.domain.regulatory import (
    RegulatoryClock,
    clocks_for,
    describe_clock,
    regulatory_clock_applies,
    reminder_times,
    replan_clocks,
)
from bot.domain.reminders import (
    PlannedReminder,
    ReminderKind,
    cadence_reminder,
    notification_reminder,
)
from bot.services.history import record_change

if TYPE_CHECKING:
    from storage.communication_repositories import ClockRecord
    from storage.unit_of_work import UnitOfWork


class DeadlinePlanner:
    def __init__(self, config: WarroomConfig) -> None:
        self._config = config
        self._deadlines = TierDeadlines.from_lookup(config.deadlines.for_tier)
        self._rules = config.regulatory.to_rules()

    def regulatory_clock(self, incident: Incident) -> bool:
        """Whether any legal clock applies, which puts the regulator in the plan (never in a
        drill)."""
        return not is_drill(incident) and regulatory_clock_applies(incident, self._rules)

    def plan_declared(self, uow: UnitOfWork, incident: Incident, *, now: datetime) -> None:
        """Every row a new incident needs: messages, reminders, cadence, legal clocks."""
        planned = plan_notifications(
            incident, deadlines=self._deadlines, regulatory_clock=self.regulatory_clock(incident)
        )
        self._add_messages(uow, incident, planned, planned_at=now)
        self._start_clocks(
            uow, incident, clocks_for(incident, aware_at=now, rules=self._rules), now=now
        )
        uow.reminders.add(
            incident.id,
            cadence_reminder(
                after=now, interval=self._config.cadence.for_severity(incident.severity)
            ),
        )

    def replan_changed(self, uow: UnitOfWork, incident: Incident, *, now: datetime) -> None:
        """After a severity change or a new flag: only what is newly called for, due from now;
        the cadence follows the new severity."""
        existing = [
            ExistingNotification(audience=n.audience, tier=n.tier, due_at=n.due_at)
            for n in uow.notifications.list_for(incident.id)
        ]
        running = [_running_clock(record) for record in uow.clocks.list_for(incident.id)]
        clocks = replan_clocks(running, incident, aware_at=now, rules=self._rules)
        applies = bool(running) or bool(clocks) or self.regulatory_clock(incident)
        planned = replan(
            existing,
            incident,
            changed_at=now,
            deadlines=self._deadlines,
            regulatory_clock=applies,
        )
        self._add_messages(uow, incident, planned, planned_at=now)
        self._start_clocks(uow, incident, clocks, now=now)
        self.reset_cadence(uow, incident, after=now)

    def reset_cadence(self, uow: UnitOfWork, incident: Incident, *, after: datetime) -> None:
        """The next status-update reminder one interval after `after` (an update, a change)."""
        uow.reminders.cancel(incident.id, ReminderKind.CADENCE, now=after)
        if incident.state.is_open:
            uow.reminders.add(
                incident.id,
                cadence_reminder(
                    after=after, interval=self._config.cadence.for_severity(incident.severity)
                ),
            )

    def _add_messages(
        self,
        uow: UnitOfWork,
        incident: Incident,
        planned: tuple[PlannedMessage, ...],
        *,
        planned_at: datetime,
    ) -> None:
        if not planned:
            return
        uow.notifications.add_planned(incident.id, planned, now=planned_at)
        uow.reminders.add(
            incident.id,
            *(
                notification_reminder(
                    tier=tier,
                    planned_at=planned_at,
                    due_at=due_at,
                    fraction=self._config.notifications.reminder_at,
                )
                for due_at, tier in sorted({(m.due_at, m.tier) for m in planned})
            ),
        )

    def _start_clocks(
        self,
        uow: UnitOfWork,
        incident: Incident,
        clocks: tuple[RegulatoryClock, ...],
        *,
        now: datetime,
    ) -> None:
        if is_drill(incident):
            return  # a drill practises the decision; no legal clock starts
        existing = {record.regime: record for record in uow.clocks.list_for(incident.id)}
        for clock in clocks:
            record = existing.get(clock.regime)
            if record is None:
                if (
                    uow.clocks.add(
                        incident.id,
                        regime=clock.regime,
                        case=clock.case,
                        started_at=clock.started_at,
                        due_at=clock.due_at,
                    )
                    is None
                ):
                    continue
            elif not uow.clocks.shorten(record.id, case=clock.case, due_at=clock.due_at):
                continue
            else:
                # The deadline moved earlier: the old reminders no longer fit it.
                uow.reminders.cancel(
                    incident.id,
                    ReminderKind.REGULATORY,
                    key_prefix=f"regulatory:{clock.regime.value}:",
                    now=now,
                )
            uow.reminders.add(
                incident.id,
                *(
                    PlannedReminder(
                        kind=ReminderKind.REGULATORY,
                        key=f"regulatory:{clock.regime.value}:{clock.case}:{reminder.key}",
                        due_at=reminder.at,
                        data={"regime": clock.regime.value, "label": reminder.label},
                    )
                    for reminder in reminder_times(clock, self._rules)
                ),
            )
            record_change(
                uow,
                incident.id,
                AuditAction.REGULATORY_CLOCK_STARTED,
                actor="warroom",
                now=now,
                summary=(
                    f"{clock.title}: due {clock.due_at:%Y-%m-%d %H:%M} UTC ({clock.legal_basis})"
                ),
                data={
                    "regime": clock.regime.value,
                    "case": clock.case,
                    "due_at": clock.due_at.isoformat(),
                },
            )


def _running_clock(record: ClockRecord) -> RegulatoryClock:
    """A stored clock as the domain describes it, to re-plan against."""
    return describe_clock(
        regime=record.regime, case=record.case, started_at=record.started_at, due_at=record.due_at
    )
