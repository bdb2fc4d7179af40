"""Alerts in, incidents out: record every alert, group it, declare or attach, escalate."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import InterfaceError, OperationalError

from bot.clock import Clock
from bot.domain.alerts import Alert, AlertStatus, GroupAlerts, GroupTally, ReceivedDelivery
from bot.domain.audit import AuditAction
from bot.domain.classification import Classification
from bot.domain.drills import as_drill, drill_of_alert
from bot.domain.incident import Declaration, TimelineEvent
from bot.domain.vocabulary import IncidentSource, Severity
from bot.errors import ExternalServiceError, StorageUnavailableError
from bot.group_commit import GroupCommit
from bot.logging_setup import log_context
from bot.services.history import record_change
from bot.services.incidents import IncidentService, SeverityChange
from bot.services.war_room import WarRoomService

if TYPE_CHECKING:
    from storage.recovery_repositories import MonitoringWindow
    from storage.repositories import AlertGroup, AlertSummary
    from storage.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

# The war room hears about a group's new alerts at most once a minute.
SUMMARY_INTERVAL = timedelta(minutes=1)
ALERT_ACTOR = "alert"
# Deliveries recorded in one transaction at most: enough to share a commit among every
# sender of a storm, few enough that one batch holds the write lock for milliseconds.
MAX_BATCH = 32


@dataclass(frozen=True)
class ReopenPrompt:
    """A firing alert about a model of a resolved incident under enhanced monitoring."""

    incident_id: int
    alert_title: str
    declared: tuple[int, ...]  # incidents the same delivery declared


@dataclass
class Ingested:
    """What one webhook delivery did."""

    received: int = 0
    new: int = 0
    declared: list[int] = field(default_factory=list)  # incident ids
    escalations: list[SeverityChange] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    reopen_prompts: list[ReopenPrompt] = field(default_factory=list)

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
        self._writer: GroupCommit[_Delivery, Ingested] = GroupCommit(
            self._write, max_batch=MAX_BATCH
        )

    def ingest(self, source: IncidentSource, alerts: list[Alert], body: Any) -> Ingested:
        """Record the delivery and its alerts, and declare or attach; returns once committed.

        Deliveries that arrive together are recorded in one transaction (group commit)."""
        delivery = _Delivery(source, alerts, _by_group(alerts), body, self._clock.now())
        return self._writer.run(delivery)

    @property
    def batches_written(self) -> int:
        """Transactions that recorded deliveries so far (each holds one or more)."""
        return self._writer.batches

    def ingest_load(self, window: float) -> float:
        """The share of the last `window` seconds spent recording deliveries (0 to 1)."""
        return self._writer.load(window)

    def ingest_in(
        self,
        uow: UnitOfWork,
        source: IncidentSource,
        alerts: list[Alert],
        body: Any,
        *,
        now: datetime,
    ) -> Ingested:
        """Record inside the caller's transaction (the caller commits)."""
        return self._record(uow, [_Delivery(source, alerts, _by_group(alerts), body, now)])[0]

    def _write(self, deliveries: list[_Delivery]) -> list[Ingested | BaseException]:
        """One transaction for the batch. If it fails for a reason other than the database,
        each delivery is tried alone, so one bad body fails nobody else."""
        try:
            with self._uow() as uow:
                outcomes = self._record(uow, deliveries)
                uow.commit()
            return list(outcomes)
        except (OperationalError, InterfaceError) as error:
            reason = str(error).splitlines()[0]
            return [StorageUnavailableError(reason) for _ in deliveries]
        except Exception as error:
            if len(deliveries) == 1:
                return [error]
            log.warning(
                "a batch of %d deliveries failed; recording them one by one", len(deliveries)
            )
            return [outcome for delivery in deliveries for outcome in self._write([delivery])]

    def _record(self, uow: UnitOfWork, deliveries: list[_Delivery]) -> list[Ingested]:
        """Record the deliveries in order, as if one after the other, with a few statements
        for the whole batch."""
        now = deliveries[-1].now
        sources: dict[str, IncidentSource] = {}
        for delivery in deliveries:
            for group_key in delivery.by_group:
                sources.setdefault(group_key, delivery.source)
        # The groups' locks make the dedup query below final.
        groups = uow.alerts.lock_groups(sources, now=now)
        known = uow.alerts.known_dedup_keys(
            [
                key
                for delivery in deliveries
                for keyed in delivery.by_group.values()
                for key in keyed
            ]
        )
        fresh_by_delivery: list[dict[str, dict[str, Alert]]] = []
        for delivery in deliveries:
            fresh = {
                group_key: {key: alert for key, alert in keyed.items() if key not in known}
                for group_key, keyed in delivery.by_group.items()
            }
            for new in fresh.values():
                known.update(new)  # a later delivery of the batch repeating them adds nothing
            fresh_by_delivery.append(fresh)
        outcomes = [
            Ingested(received=len(d.alerts), new=sum(len(new) for new in fresh.values()))
            for d, fresh in zip(deliveries, fresh_by_delivery, strict=True)
        ]
        delivery_ids = uow.alerts.record_deliveries(
            [
                ReceivedDelivery(
                    source=d.source,
                    body=d.body,
                    alert_count=len(d.alerts),
                    new_alerts=outcome.new,
                    received_at=d.now,
                )
                for d, outcome in zip(deliveries, outcomes, strict=True)
            ]
        )
        batch = _Batch(groups, classified=self._classify_ahead(groups, fresh_by_delivery))
        for delivery, fresh, delivery_id, outcome in zip(
            deliveries, fresh_by_delivery, delivery_ids, outcomes, strict=True
        ):
            for group_key, new in fresh.items():
                if new:
                    self._ingest_group(uow, batch, delivery, group_key, new, delivery_id, outcome)
        uow.alerts.add_alerts(batch.alerts)
        uow.alerts.count_alerts(list(batch.tallies.values()))
        uow.timeline.add_many(batch.events)
        windows = uow.recovery.active_windows(now)
        if windows:
            for delivery, outcome in zip(deliveries, outcomes, strict=True):
                self._find_related(uow, windows, delivery.alerts, now=now, outcome=outcome)
        return outcomes

    def _classify_ahead(
        self, groups: dict[str, AlertGroup], fresh_by_delivery: list[dict[str, dict[str, Alert]]]
    ) -> dict[str, tuple[Declaration, Classification]]:
        """The declarations the batch is going to make (by dedup key), classified in one
        pass of the text model instead of one pass each."""
        opening: dict[str, Declaration] = {}
        for fresh in fresh_by_delivery:
            for group_key, new in fresh.items():
                group = groups[group_key]
                if group_key in opening or _has_open_incident(group):
                    continue
                firing = [a for a in new.values() if a.status is AlertStatus.FIRING]
                if firing:
                    opening[group_key] = _declaration(group, firing)
        declarations = list(opening.values())
        return {
            declaration.dedup_key: (declaration, classification)
            for declaration, classification in zip(
                declarations, self._incidents.classify(declarations), strict=True
            )
        }

    def _find_related(
        self,
        uow: UnitOfWork,
        windows: list[MonitoringWindow],
        alerts: list[Alert],
        *,
        now: datetime,
        outcome: Ingested,
    ) -> None:
        """A firing alert about a model under enhanced monitoring prompts its resolved
        incident to re-open (once per window)."""
        for alert in alerts:
            if alert.status is not AlertStatus.FIRING:
                continue
            named = {alert.model, *alert.systems} - {None}
            for window in windows:
                if named & set(window.models) and uow.recovery.mark_prompted(window.id, now=now):
                    outcome.reopen_prompts.append(
                        ReopenPrompt(window.incident_id, alert.title, tuple(outcome.declared))
                    )

    def _ingest_group(
        self,
        uow: UnitOfWork,
        batch: _Batch,
        delivery: _Delivery,
        group_key: str,
        fresh: dict[str, Alert],
        delivery_id: int,
        outcome: Ingested,
    ) -> None:
        """Attach the group's unseen alerts (keyed by dedup key) or declare for them."""
        group, now, source = batch.groups[group_key], delivery.now, delivery.source
        new, keys = list(fresh.values()), list(fresh)

        def add_alerts(incident_id: int | None) -> None:
            batch.alerts.append(
                GroupAlerts(
                    alerts=new,
                    dedup_keys=keys,
                    delivery_id=delivery_id,
                    group_id=group.id,
                    incident_id=incident_id,
                    received_at=now,
                )
            )

        outcome.groups.append(group.id)
        firing = [a for a in new if a.status is AlertStatus.FIRING]
        resolved = len(new) - len(firing)
        severity = group.incident_severity
        if _has_open_incident(group):
            assert group.incident_id is not None and severity is not None
            incident_id = group.incident_id
            add_alerts(incident_id)
            batch.tally(group.id, now, added=len(new), firing=len(firing), resolved=resolved)
            batch.events.append(
                TimelineEvent(
                    incident_id=incident_id,
                    kind="alerts_received",
                    actor_id=ALERT_ACTOR,
                    summary=f"{len(firing)} firing and {resolved} resolved alerts "
                    f"from {source.value}",
                    occurred_at=now,
                    data={"group": group.group_key, "firing": len(firing), "resolved": resolved},
                )
            )
            worst = _worst(firing)
            if worst is not None and worst.severity.rank < severity.rank:
                # The timeline tells the alerts before the escalation they caused.
                uow.timeline.add_many(batch.events)
                batch.events.clear()
                change = self._escalate(uow, incident_id, worst, now)
                outcome.escalations.append(change)
                batch.groups[group_key] = replace(group, incident_severity=worst.severity)
            return
        if not firing:
            # A resolved alert for a group without an open incident is evidence, nothing more.
            add_alerts(None)
            batch.tally(group.id, now, added=len(new))
            return
        declaration = _declaration(group, firing)
        ahead = batch.classified.get(declaration.dedup_key)
        result = self._incidents.declare_in(
            uow,
            declaration,
            classification=ahead[1] if ahead and ahead[0] == declaration else None,
        )
        incident = result.incident
        add_alerts(incident.id)
        # Before any tally of this batch is written: a new generation clears what the war
        # room has yet to hear, and the alerts attached after it must count.
        uow.alerts.start_generation(group.id, incident_id=incident.id, added=len(new), now=now)
        batch.groups[group_key] = replace(
            group,
            incident_id=incident.id,
            generation=group.generation + 1,
            incident_state=incident.state,
            incident_severity=incident.severity,
        )
        outcome.declared.append(incident.id)

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
        for prompt in outcome.reopen_prompts:
            if self._on_related_alert is not None:
                self._on_related_alert(
                    prompt.incident_id, prompt.alert_title, list(prompt.declared)
                )
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


@dataclass(frozen=True)
class _Delivery:
    """A parsed webhook body waiting for its batch."""

    source: IncidentSource
    alerts: list[Alert]
    by_group: dict[str, dict[str, Alert]]
    body: Any
    now: datetime


@dataclass
class _Batch:
    """What a batch of deliveries writes together once every delivery has been seen."""

    groups: dict[str, AlertGroup]  # as the batch has left them so far
    # The declarations the batch is expected to make, by dedup key, already classified.
    classified: dict[str, tuple[Declaration, Classification]] = field(default_factory=dict)
    alerts: list[GroupAlerts] = field(default_factory=list)
    tallies: dict[int, GroupTally] = field(default_factory=dict)
    events: list[TimelineEvent] = field(default_factory=list)

    def tally(
        self, group_id: int, at: datetime, *, added: int, firing: int = 0, resolved: int = 0
    ) -> None:
        tally = self.tallies.setdefault(group_id, GroupTally(group_id=group_id, at=at))
        tally.add(at, added=added, firing=firing, resolved=resolved)


def _by_group(alerts: list[Alert]) -> dict[str, dict[str, Alert]]:
    """Each group's alerts by dedup key, computed once; the same alert twice in one body
    counts once."""
    from storage.repositories import alert_dedup_key

    by_group: dict[str, dict[str, Alert]] = defaultdict(dict)
    for alert in alerts:
        by_group[alert.group_key].setdefault(alert_dedup_key(alert), alert)
    return by_group


def _has_open_incident(group: AlertGroup) -> bool:
    state = group.incident_state
    return group.incident_id is not None and state is not None and state.is_open


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
