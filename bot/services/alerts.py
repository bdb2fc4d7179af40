"""Alerts in, incidents out: record every alert, group it, declare or attach, escalate."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import InterfaceError, OperationalError

from bot.clock import Clock
from bot.domain.alerts import Alert, AlertStatus
from bot.domain.audit import AuditAction
from bot.domain.drills import as_drill, drill_of_alert
from bot.domain.incident import Declaration
from bot.domain.vocabulary import IncidentSource, Severity
from bot.errors import ExternalServiceError, StorageUnavailableError
from bot.logging_setup import log_context
from bot.services.history import record_change
from bot.services.incidents import IncidentService, SeverityChange
from bot.services.war_room import WarRoomService

if TYPE_CHECKING:
    from storage.repositories import AlertGroup, AlertSummary
    from storage.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

# The war room hears about a group's new alerts at most once a minute.
SUMMARY_INTERVAL = timedelta(minutes=1)
ALERT_ACTOR = "alert"


@dataclass
class Ingested:
    """What one webhook delivery did."""

    received: int = 0
    new: int = 0
    declared: list[int] = field(default_factory=list)  # incident ids
    escalations: list[SeverityChange] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    # (resolved incident under enhanced monitoring, the related alert's title)
    reopen_prompts: list[tuple[int, str]] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return self.received - self.new


class AlertService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        incidents: IncidentService,
        war_rooms: WarRoomService,
        after_opening: Callable[[int], None] | None = None,
        after_replan: Callable[[int], None] | None = None,
        on_related_alert: Callable[[int, str, list[int]], None] | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._incidents = incidents
        self._war_rooms = war_rooms
        # Called with the incident id once its war room is open (critical containment).
        self._after_opening = after_opening
        # Called with the incident id after an escalation re-planned its messages.
        self._after_replan = after_replan
        # Called with (resolved incident id, alert title, incidents just declared).
        self._on_related_alert = on_related_alert

    def ingest(self, source: IncidentSource, alerts: list[Alert], body: Any) -> Ingested:
        """Record the delivery and its alerts, and declare or attach, in one transaction."""
        now = self._clock.now()
        outcome = Ingested(received=len(alerts))
        by_group = _by_group(alerts)  # hashed before the write lock is taken
        try:
            with self._uow() as uow:
                self._record(uow, source, alerts, by_group, body, now=now, outcome=outcome)
                uow.commit()
        except (OperationalError, InterfaceError) as error:
            raise StorageUnavailableError(str(error).splitlines()[0]) from error
        return outcome

    def ingest_in(
        self,
        uow: UnitOfWork,
        source: IncidentSource,
        alerts: list[Alert],
        body: Any,
        *,
        now: datetime,
        outcome: Ingested,
    ) -> None:
        """Record inside the caller's transaction (the caller commits)."""
        self._record(uow, source, alerts, _by_group(alerts), body, now=now, outcome=outcome)

    def _record(
        self,
        uow: UnitOfWork,
        source: IncidentSource,
        alerts: list[Alert],
        by_group: dict[str, dict[str, Alert]],
        body: Any,
        *,
        now: datetime,
        outcome: Ingested,
    ) -> None:
        # Groups lock in a fixed order, so two deliveries naming the same groups cannot
        # deadlock each other (PostgreSQL); the lock makes the dedup query below final.
        groups = {key: uow.alerts.lock_group(key, source, now=now) for key in sorted(by_group)}
        known = uow.alerts.known_dedup_keys([key for keyed in by_group.values() for key in keyed])
        fresh = {
            group_key: {key: alert for key, alert in keyed.items() if key not in known}
            for group_key, keyed in by_group.items()
        }
        outcome.new = sum(len(new) for new in fresh.values())
        delivery_id = uow.alerts.record_delivery(
            source, body, alert_count=len(alerts), now=now, new_alerts=outcome.new
        )
        for group_key, new in fresh.items():
            if new:
                self._ingest_group(uow, source, groups[group_key], new, delivery_id, now, outcome)
        self._find_related(uow, alerts, now=now, outcome=outcome)

    def _find_related(
        self, uow: UnitOfWork, alerts: list[Alert], *, now: datetime, outcome: Ingested
    ) -> None:
        """A firing alert about a model under enhanced monitoring prompts its resolved
        incident to re-open (once per window)."""
        windows = uow.recovery.active_windows(now)
        if not windows:
            return
        for alert in alerts:
            if alert.status is not AlertStatus.FIRING:
                continue
            named = {alert.model, *alert.systems} - {None}
            for window in windows:
                if named & set(window.models) and uow.recovery.mark_prompted(window.id, now=now):
                    outcome.reopen_prompts.append((window.incident_id, alert.title))

    def _ingest_group(
        self,
        uow: UnitOfWork,
        source: IncidentSource,
        group: AlertGroup,
        fresh: dict[str, Alert],
        delivery_id: int,
        now: datetime,
        outcome: Ingested,
    ) -> None:
        """Attach the group's unseen alerts (keyed by dedup key) or declare for them."""
        new, keys = list(fresh.values()), list(fresh)

        def add_alerts(incident_id: int | None) -> None:
            uow.alerts.add_alerts(
                new,
                delivery_id=delivery_id,
                group_id=group.id,
                incident_id=incident_id,
                now=now,
                dedup_keys=keys,
            )

        outcome.groups.append(group.id)
        firing = [a for a in new if a.status is AlertStatus.FIRING]
        resolved = len(new) - len(firing)
        state, severity = group.incident_state, group.incident_severity
        if group.incident_id is not None and state is not None and state.is_open:
            assert severity is not None
            incident_id = group.incident_id
            add_alerts(incident_id)
            uow.alerts.update_group(
                group.id,
                now=now,
                added=len(new),
                pending_firing=len(firing),
                pending_resolved=resolved,
            )
            uow.timeline.add(
                incident_id,
                kind="alerts_received",
                actor_id=ALERT_ACTOR,
                summary=f"{len(firing)} firing and {resolved} resolved alerts from {source.value}",
                now=now,
                data={"group": group.group_key, "firing": len(firing), "resolved": resolved},
            )
            worst = _worst(firing)
            if worst is not None and worst.severity.rank < severity.rank:
                outcome.escalations.append(self._escalate(uow, incident_id, worst, now))
            return
        if not firing:
            # A resolved alert for a group without an open incident is evidence, nothing more.
            add_alerts(None)
            uow.alerts.update_group(group.id, now=now, added=len(new))
            return
        result = self._incidents.declare_in(uow, _declaration(group, firing))
        incident_id = result.incident.id
        add_alerts(incident_id)
        uow.alerts.update_group(
            group.id, now=now, added=len(new), incident_id=incident_id, new_generation=True
        )
        outcome.declared.append(incident_id)

    def _escalate(
        self, uow: UnitOfWork, incident_id: int, alert: Alert, now: datetime
    ) -> SeverityChange:
        current = uow.incidents.get(incident_id)
        assert current is not None
        uow.incidents.set_severity(incident_id, alert.severity, now=now)
        record_change(
            uow,
            incident_id,
            AuditAction.SEVERITY_CHANGED,
            actor=ALERT_ACTOR,
            now=now,
            summary=f"Severity {current.severity.value} → {alert.severity.value} "
            f"(escalated by alert: {alert.title})",
            data={
                "from": current.severity.value,
                "to": alert.severity.value,
                "alert": alert.fingerprint,
            },
        )
        escalated = uow.incidents.get(incident_id)
        assert escalated is not None
        self._incidents.replan_in(uow, escalated, now=now)
        return SeverityChange(incident=escalated, previous=current.severity, actor_id=ALERT_ACTOR)

    # -- after the 202 ------------------------------------------------------------------

    def follow_up(self, outcome: Ingested) -> None:
        """Slack work for a delivery: open new war rooms, tell escalations, summarise."""
        for incident_id in outcome.declared:
            self._war_rooms.open_war_room(incident_id)
            if self._after_opening is not None:
                self._after_opening(incident_id)
        for change in outcome.escalations:
            self._war_rooms.refresh_card(change.incident.id)
            self._war_rooms.post_notice(
                change.incident,
                {
                    "kind": "escalated",
                    "previous": change.previous.value,
                    "actor_id": change.actor_id,
                },
            )
            if change.incident.severity is Severity.CRITICAL:
                self._war_rooms.raise_critical_alarm(change.incident.id)
                if self._after_opening is not None:
                    self._after_opening(change.incident.id)
            if self._after_replan is not None:
                self._after_replan(change.incident.id)
        for incident_id, title in outcome.reopen_prompts:
            if self._on_related_alert is not None:
                self._on_related_alert(incident_id, title, outcome.declared)
        self.post_summaries(outcome.groups)

    def post_summaries(self, group_ids: list[int] | None = None) -> int:
        """Tell each war room about its group's new alerts, at most once a minute per group."""
        now = self._clock.now()
        cut_off = now - SUMMARY_INTERVAL
        if group_ids is not None and not group_ids:
            return 0
        # A read first: most deliveries come within the minute of the group's last summary
        # (or before its war room has a channel), and then no write transaction is needed.
        # take_summary checks again under the lock.
        with self._uow(read_only=True) as uow:
            group_ids = uow.alerts.groups_due_a_summary(not_told_since=cut_off, among=group_ids)
        posted = 0
        for group_id in group_ids:
            with self._uow() as uow:
                summary = uow.alerts.take_summary(group_id, now=now, not_told_since=cut_off)
                incident = uow.incidents.get(summary.incident_id) if summary else None
                if summary is None or incident is None or not incident.channel_id:
                    continue  # nothing new, told recently, or the war room is still opening
                uow.commit()
            with log_context(incident=incident.number):
                try:
                    self._war_rooms.post_alert_summary(incident, _summary_context(summary))
                    posted += 1
                except ExternalServiceError as error:
                    # Kept for the next pass; the other war rooms still get theirs.
                    self._restore(summary)
                    log.warning("alert summary not posted yet: %s", error)
                except BaseException:
                    self._restore(summary)
                    raise
        return posted

    def _restore(self, summary: AlertSummary) -> None:
        with self._uow() as uow:
            uow.alerts.restore_summary(summary)
            uow.commit()


def _by_group(alerts: list[Alert]) -> dict[str, dict[str, Alert]]:
    """Each group's alerts by dedup key, computed once; the same alert twice in one body
    counts once."""
    from storage.repositories import alert_dedup_key

    by_group: dict[str, dict[str, Alert]] = defaultdict(dict)
    for alert in alerts:
        by_group[alert.group_key].setdefault(alert_dedup_key(alert), alert)
    return by_group


def _worst(alerts: list[Alert]) -> Alert | None:
    return min(alerts, key=lambda a: a.severity.rank) if alerts else None


def _declaration(group: AlertGroup, firing: list[Alert]) -> Declaration:
    worst = _worst(firing)
    assert worst is not None
    indicators = tuple(dict.fromkeys(i for a in firing for i in a.indicators))
    models = tuple(dict.fromkeys(a.model for a in firing if a.model))
    systems = tuple(dict.fromkeys(s for a in firing for s in a.systems))
    extra = f"\n\n{len(firing)} alerts firing in this group." if len(firing) > 1 else ""
    declaration = Declaration(
        title=worst.title,
        severity=worst.severity,
        reporter_id=worst.source.value,
        source=worst.source,
        # One incident per group and generation: the group's row lock and this unique key
        # make concurrent deliveries of the same group declare once.
        dedup_key=f"alerts:{group.id}:{group.generation + 1}",
        description=(worst.description + extra).strip(),
        affected_systems=models + systems,
        indicators=indicators,
        incident_type=worst.incident_type,
    )
    # A drill's alerts (marked by `warroom drill` or `/incident drill`) declare its practice
    # incident, one per run, never a real one.
    marker = drill_of_alert(worst.fingerprint, worst.model, worst.systems)
    return as_drill(declaration, marker) if marker else declaration


def _summary_context(summary: AlertSummary) -> dict[str, Any]:
    return {
        "firing": summary.firing,
        "resolved": summary.resolved,
        "total": summary.total,
        "latest": list(summary.latest),
        "group_key": summary.group_key,
    }
