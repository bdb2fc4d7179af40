"""Incident service: declare, change and read incidents. Database only; no Slack here."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError

from bot.clock import Clock
from bot.config import WarroomConfig
from bot.domain.audit import AuditAction
from bot.domain.classification import Classification, Classifier, Report
from bot.domain.incident import Declaration, Incident, IncidentSummary, TimelineEvent
from bot.domain.lifecycle import check_transition
from bot.domain.reminders import ReminderKind, monitoring_checkins
from bot.domain.vocabulary import AiActCase, IncidentState, Role, Severity
from bot.errors import InvalidTransitionError, NotFoundError, NotInWarRoomError, UserError
from bot.logging_setup import tag_incident
from bot.services.deadline_planner import DeadlinePlanner
from bot.services.history import record_change

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

# The counter lock serialises declarations, so a duplicate is normally seen before the insert;
# under weaker isolation the loser of a race meets the unique key and looks again.
_DUPLICATE_RACE_RETRIES = 3


@dataclass(frozen=True)
class DeclarationResult:
    incident: Incident
    created: bool


@dataclass(frozen=True)
class RoleChange:
    incident: Incident
    role: Role
    user_id: str
    previous_id: str | None
    actor_id: str


@dataclass(frozen=True)
class SeverityChange:
    incident: Incident
    previous: Severity
    actor_id: str


@dataclass(frozen=True)
class StateChange:
    incident: Incident
    previous: IncidentState
    actor_id: str


@dataclass(frozen=True)
class FlagChange:
    incident: Incident
    flags: tuple[str, ...]
    actor_id: str


@dataclass(frozen=True)
class IncidentStatus:
    incident: Incident
    timeline_count: int


class IncidentService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        config: WarroomConfig,
        classifier: Classifier,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._config = config
        self._classifier = classifier
        self._planner = DeadlinePlanner(config)

    def declare(self, declaration: Declaration) -> DeclarationResult:
        """Store a new incident with its on-call roles, or return the one this request made."""
        for _ in range(_DUPLICATE_RACE_RETRIES):
            with self._uow() as uow:
                try:
                    result = self.declare_in(uow, declaration)
                    if result.created:
                        uow.commit()
                except IntegrityError:
                    continue
            if result.created:
                log.info(
                    "declared incident #%d (%s)", result.incident.number, declaration.dedup_key
                )
            return result
        raise UserError("warroom could not number the incident; please declare it again.")

    def classify(self, declarations: Sequence[Declaration]) -> list[Classification]:
        """How each declaration would be classified, read by the text model together."""
        return self._classifier.classify_many(
            [
                Report(
                    title=declaration.title,
                    description=declaration.description,
                    indicators=tuple(declaration.indicators),
                    base_severity=declaration.severity,
                    personal_data=declaration.personal_data,
                    incident_type=declaration.incident_type,
                )
                for declaration in declarations
            ]
        )

    def declare_in(
        self,
        uow: UnitOfWork,
        declaration: Declaration,
        *,
        classification: Classification | None = None,
    ) -> DeclarationResult:
        """Declare inside the caller's transaction, which the caller commits; with the
        `classification` of this declaration when the caller already has it."""
        number = uow.incidents.next_number()
        existing = uow.incidents.id_by_dedup_key(declaration.dedup_key)
        if existing is not None:
            incident = uow.incidents.get(existing)
            assert incident is not None
            return DeclarationResult(incident=incident, created=False)
        if classification is None:
            [classification] = self.classify([declaration])
        now = self._clock.now()
        incident_id = uow.incidents.add(
            declaration, number=number, classification=classification, now=now
        )
        self._record_declaration(uow, incident_id, declaration, classification, now)
        uow.audit.start(
            incident_id,
            actor=declaration.reporter_id,
            action=AuditAction.DECLARED,
            now=now,
            detail={
                "source": declaration.source.value,
                "dedup_key": declaration.dedup_key,
                "type": classification.incident_type.value,
                "severity": classification.severity.value,
            },
        )
        incident = uow.incidents.get(incident_id)
        assert incident is not None
        self._planner.plan_declared(uow, incident, now=now)
        return DeclarationResult(incident=incident, created=True)

    def _record_declaration(
        self,
        uow: UnitOfWork,
        incident_id: int,
        declaration: Declaration,
        classification: Classification,
        now: datetime,
    ) -> None:
        rota = {
            role: on_call
            for role in Role
            if (on_call := self._config.roles.primary(role)) is not None
        }
        uow.roles.add_holders(incident_id, rota, assigned_by="rota", now=now)
        uow.timeline.add_many(
            [
                TimelineEvent(
                    incident_id=incident_id,
                    kind="declared",
                    actor_id=declaration.reporter_id,
                    summary=f"Declared ({declaration.severity.value}) "
                    f"via {declaration.source.value}",
                    occurred_at=now,
                    data={
                        "severity": declaration.severity.value,
                        "source": declaration.source.value,
                    },
                ),
                TimelineEvent(
                    incident_id=incident_id,
                    kind="classified",
                    actor_id="warroom",
                    summary=classification.explanation,
                    occurred_at=now,
                    data={
                        "type": classification.incident_type.value,
                        "severity": classification.severity.value,
                        "confidence": classification.confidence,
                        "method": classification.method,
                        "indicators": list(classification.indicators),
                        "atlas": list(classification.atlas),
                        "owasp": list(classification.owasp),
                    },
                ),
                *(
                    TimelineEvent(
                        incident_id=incident_id,
                        kind="role_assigned",
                        actor_id="rota",
                        summary=f"{role.label}: <@{on_call}> (on call)",
                        occurred_at=now,
                        data={"role": role.value, "user_id": on_call, "previous_id": None},
                    )
                    for role, on_call in rota.items()
                ),
            ]
        )

    def get(self, incident_id: int) -> Incident:
        with self._uow(read_only=True) as uow:
            incident = uow.incidents.get(incident_id)
        if incident is None:
            raise NotFoundError(f"There is no incident with id {incident_id}.")
        return incident

    def get_in_war_room_or_raise(self, channel_id: str) -> Incident:
        """The incident whose war room this channel is, or NotInWarRoomError."""
        with self._uow(read_only=True) as uow:
            incident = uow.incidents.get_by_channel(channel_id)
        if incident is None:
            raise NotInWarRoomError(
                "This command works in an incident's war-room channel. "
                "Use `/incident list` to find it."
            )
        tag_incident(incident.number)
        return incident

    def list_open(self) -> list[Incident]:
        with self._uow(read_only=True) as uow:
            return uow.incidents.list_open()

    def list_open_summaries(self, *, limit: int) -> tuple[list[IncidentSummary], int]:
        """The newest `limit` open incidents, and how many are open."""
        return self._uow.reads.open_summaries(limit=limit)

    def status(self, incident_id: int) -> IncidentStatus:
        with self._uow(read_only=True) as uow:
            incident = uow.incidents.get(incident_id)
            if incident is None:
                raise NotFoundError(f"There is no incident with id {incident_id}.")
            return IncidentStatus(
                incident=incident,
                timeline_count=len(uow.timeline.list_for(incident_id)),
            )

    def assign_role(
        self, *, incident_id: int, role: Role, user_id: str, actor_id: str
    ) -> RoleChange:
        """Give the role to the user, replacing the previous holder."""
        with self._uow() as uow:
            current = self._open_or_raise(uow, incident_id)
            if current.holder(role) == user_id:
                raise UserError(f"<@{user_id}> is already the {role.label}.")
            now = self._clock.now()
            previous = uow.roles.assign(incident_id, role, user_id, assigned_by=actor_id, now=now)
            record_change(
                uow,
                incident_id,
                AuditAction.ROLE_ASSIGNED,
                actor=actor_id,
                now=now,
                summary=f"{role.label}: <@{user_id}>"
                + (f" (replacing <@{previous}>)" if previous else ""),
                data={"role": role.value, "user_id": user_id, "previous_id": previous},
            )
            incident = uow.incidents.get(incident_id)
            uow.commit()
        assert incident is not None
        return RoleChange(
            incident=incident, role=role, user_id=user_id, previous_id=previous, actor_id=actor_id
        )

    def change_severity(
        self, *, incident_id: int, severity: Severity, actor_id: str
    ) -> SeverityChange:
        with self._uow() as uow:
            current = self._open_or_raise(uow, incident_id)
            if current.severity is severity:
                raise UserError(f"The severity is already {severity.value}.")
            now = self._clock.now()
            uow.incidents.set_severity(incident_id, severity, now=now)
            record_change(
                uow,
                incident_id,
                AuditAction.SEVERITY_CHANGED,
                actor=actor_id,
                now=now,
                summary=f"Severity {current.severity.value} → {severity.value}",
                data={"from": current.severity.value, "to": severity.value},
            )
            incident = uow.incidents.get(incident_id)
            assert incident is not None
            self._planner.replan_changed(uow, incident, now=now)
            uow.commit()
        assert incident is not None
        return SeverityChange(incident=incident, previous=current.severity, actor_id=actor_id)

    def replan_in(self, uow: UnitOfWork, incident: Incident, *, now: datetime) -> None:
        """Plan what a change made elsewhere (an escalating alert) newly calls for."""
        self._planner.replan_changed(uow, incident, now=now)

    def set_flags(
        self,
        *,
        incident_id: int,
        personal_data: bool = False,
        public_facing: bool = False,
        ai_act_case: AiActCase | None = None,
        actor_id: str,
    ) -> FlagChange:
        """Mark the incident as touching personal data, public-facing, or an EU AI Act serious
        incident; new audiences and legal clocks are planned from now."""
        with self._uow() as uow:
            current = self._open_or_raise(uow, incident_id)
            flags: list[str] = []
            if personal_data and not current.personal_data:
                flags.append("personal_data")
            if public_facing and not current.public_facing:
                flags.append("public_facing")
            if ai_act_case is not None and ai_act_case is not current.ai_act_case:
                flags.append(f"ai_act:{ai_act_case.value}")
            if not flags:
                raise UserError("Nothing new: the incident is already flagged that way.")
            now = self._clock.now()
            uow.incidents.set_flags(
                incident_id,
                personal_data=personal_data,
                public_facing=public_facing,
                ai_act_case=ai_act_case,
                now=now,
            )
            record_change(
                uow,
                incident_id,
                AuditAction.FLAGGED,
                actor=actor_id,
                now=now,
                summary="Flagged: " + ", ".join(flag.replace("_", " ") for flag in flags),
                data={"flags": flags},
            )
            incident = uow.incidents.get(incident_id)
            assert incident is not None
            self._planner.replan_changed(uow, incident, now=now)
            uow.commit()
        return FlagChange(incident=incident, flags=tuple(flags), actor_id=actor_id)

    def resolve(self, *, incident_id: int, actor_id: str) -> StateChange:
        return self._transition(incident_id, IncidentState.RESOLVED, actor_id=actor_id)

    def _transition(self, incident_id: int, target: IncidentState, *, actor_id: str) -> StateChange:
        with self._uow() as uow:
            current = uow.incidents.get(incident_id)
            if current is None:
                raise NotFoundError(f"There is no incident with id {incident_id}.")
            check_transition(current.state, target)
            now = self._clock.now()
            # Conditional, so two people changing the state at once cannot both succeed.
            if not uow.incidents.move_state(incident_id, to=target, when=current.state, now=now):
                raise InvalidTransitionError(
                    f"Incident #{current.number} changed state meanwhile; check /incident status."
                )
            record_change(
                uow,
                incident_id,
                AuditAction.STATE_CHANGED,
                actor=actor_id,
                now=now,
                summary=f"State {current.state.value} → {target.value}",
                data={"from": current.state.value, "to": target.value},
            )
            if not target.is_open:
                # Status updates are owed only while the incident is open.
                uow.reminders.cancel(incident_id, ReminderKind.CADENCE, now=now)
            if target is IncidentState.RESOLVED:
                self._start_monitoring(uow, current, now=now)
            incident = uow.incidents.get(incident_id)
            uow.commit()
        assert incident is not None
        return StateChange(incident=incident, previous=current.state, actor_id=actor_id)

    def reopen(self, *, incident_id: int, actor_id: str) -> StateChange:
        """Back to declared (a related alert fired during enhanced monitoring)."""
        change = self._transition(incident_id, IncidentState.DECLARED, actor_id=actor_id)
        with self._uow() as uow:
            now = self._clock.now()
            uow.recovery.end_window(incident_id, now=now)
            uow.reminders.cancel(incident_id, ReminderKind.CHECKIN, now=now)
            self._planner.reset_cadence(uow, change.incident, after=now)
            record_change(
                uow,
                incident_id,
                AuditAction.REOPENED,
                actor=actor_id,
                now=now,
                summary="Re-opened during enhanced monitoring",
                data={},
            )
            uow.commit()
        return change

    def _start_monitoring(self, uow: UnitOfWork, incident: Incident, *, now: datetime) -> None:
        """48 hours (configurable) of tighter thresholds and check-ins after resolution."""
        settings = self._config.recovery
        ends_at = now + settings.monitoring_window
        if not uow.recovery.open_window(
            incident.id, started_at=now, ends_at=ends_at, models=list(incident.affected_systems)
        ):
            return
        for checkin in monitoring_checkins(
            started_at=now, ends_at=ends_at, interval=settings.checkin_interval
        ):
            uow.reminders.add(incident.id, checkin)
        record_change(
            uow,
            incident.id,
            AuditAction.MONITORING_STARTED,
            actor="warroom",
            now=now,
            summary=(
                f"Enhanced monitoring until {ends_at:%Y-%m-%d %H:%M} UTC"
                + (
                    f" of {', '.join(incident.affected_systems)}"
                    if incident.affected_systems
                    else ""
                )
            ),
            data={"ends_at": ends_at.isoformat(), "models": list(incident.affected_systems)},
        )

    def _open_or_raise(self, uow: UnitOfWork, incident_id: int) -> Incident:
        incident = uow.incidents.get(incident_id)
        if incident is None:
            raise NotFoundError(f"There is no incident with id {incident_id}.")
        if not incident.state.is_open:
            raise UserError(f"Incident #{incident.number} is {incident.state.value}.")
        return incident
