"""Lessons learned feeding back into detection: rule proposals from a confirmed root cause,
decided by the commander or the AI safety lead, and the rules in force for the classifier and
the anomaly detector (applied ones take effect without a restart)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import InterfaceError, OperationalError

from bot.clock import Clock
from bot.domain.anomaly import DetectionRules
from bot.domain.audit import AuditAction
from bot.domain.classification import Classifier, IndicatorRules
from bot.domain.incident import Incident
from bot.domain.rca import RcaVersion, read_alerts
from bot.domain.rule_proposals import (
    DECIDERS,
    AnomalySeen,
    LessonInputs,
    Lessons,
    ProposalKind,
    ProposalRecord,
    ProposalState,
    indicators_by_type,
    propose_rules,
)
from bot.domain.vocabulary import IncidentType
from bot.errors import NotFoundError
from bot.presenters import incident_context
from bot.rendering import Renderer
from bot.services.history import record_change, require_role_holder
from bot.services.war_room import WarRoomService
from bot.slack_gateway import SlackGateway

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

# How stale this process's copy of the applied rules may get: what another replica applied
# reaches this one within this long.
LESSONS_MAX_AGE = timedelta(seconds=30)
# `/incident rules` lists this many applied lessons, newest first.
RULES_LISTED = 15


@dataclass(frozen=True)
class RuleDecided:
    """A proposal was applied or dismissed (or already had been): refresh its message."""

    proposal_id: int
    message: str


class AppliedRules:
    """The applied lessons, cached in this process: loaded from the database on first use,
    again once the copy is `max_age` old, and at once when this process applies one."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        detection: DetectionRules,
        max_age: timedelta = LESSONS_MAX_AGE,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._detection = detection
        self._max_age = max_age
        self._lock = threading.Lock()
        self._lessons: Lessons | None = None
        self._loaded_at: datetime | None = None
        self._merged: tuple[IndicatorRules, Lessons, IndicatorRules] | None = None

    @property
    def base_detection(self) -> DetectionRules:
        return self._detection

    def lessons(self) -> Lessons:
        """The lessons in force (from the cache unless it is too old)."""
        with self._lock:
            now = self._clock.now()
            if self._lessons is None or self._loaded_at is None:
                return self._load(now)
            if now - self._loaded_at >= self._max_age:
                try:
                    return self._load(now)
                except (OperationalError, InterfaceError) as error:
                    # Keep deciding with what we know; the next read tries again.
                    log.warning("applied rules not reloaded: %s", str(error).splitlines()[0])
            return self._lessons

    def refresh(self) -> Lessons:
        """Reload from the database now (after this process applied a rule)."""
        with self._lock:
            return self._load(self._clock.now())

    def _load(self, now: datetime) -> Lessons:
        with self._uow(read_only=True) as uow:
            records = uow.rule_proposals.in_state(ProposalState.APPLIED)
        self._lessons, self._loaded_at = Lessons.from_records(records), now
        return self._lessons

    def indicator_rules(self, base: IndicatorRules) -> IndicatorRules:
        """The classifier's indicator rules with the applied mappings (what it reads)."""
        lessons = self.lessons()
        cached = self._merged
        if cached is not None and cached[0] is base and cached[1] == lessons:
            return cached[2]
        merged = lessons.indicator_rules(base)
        self._merged = (base, lessons, merged)
        return merged

    def detection_rules(self, model: str, metric: str) -> DetectionRules:
        """The detector's rules for one model's metric, applied thresholds included."""
        lessons = self.lessons()
        if not lessons.tunes(model, metric):
            return self._detection
        return lessons.detection_rules(self._detection, model, metric)


class RulesService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        renderer: Renderer,
        slack: SlackGateway,
        war_rooms: WarRoomService,
        applied: AppliedRules,
        classifier: Classifier,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._renderer = renderer
        self._slack = slack
        self._war_rooms = war_rooms
        self._applied = applied
        self._classifier = classifier

    # -- proposing -----------------------------------------------------------------------

    def propose_in(
        self, uow: UnitOfWork, incident: Incident, analysis: RcaVersion, *, now: datetime
    ) -> list[int]:
        """Store what a confirmed analysis teaches, in the caller's transaction; the ids of
        the proposals that are new (the same lesson twice is proposed once)."""
        alerts = uow.rca.alerts(incident.id)
        reading = read_alerts(alerts)
        models = tuple(dict.fromkeys(m for m in (analysis.facts.model, *reading.models) if m))
        findings = {f.key: f for f in analysis.findings}
        chain = analysis.chain
        causes = [findings[link.finding] for link in chain.contributing_factors if link.finding]
        inputs = LessonInputs(
            incident_number=incident.number,
            confirmed_type=chain.primary_type,
            cause_types=tuple(f.incident_type for f in causes if f.incident_type),
            indicators_seen=tuple(dict.fromkeys((*incident.indicators, *reading.indicators))),
            anomalies=tuple(seen for seen in (AnomalySeen.from_raw(a.raw) for a in alerts) if seen),
            models=models,
            monitored=uow.rca.monitored(models),
        )
        proposals = propose_rules(
            inputs, indicators=self._classifier.rules, detection=self._applied.detection_rules
        )
        added = [(p, uow.rule_proposals.add(incident.id, p, now=now)) for p in proposals]
        new = [(p, proposal_id) for p, proposal_id in added if proposal_id is not None]
        if new:
            record_change(
                uow,
                incident.id,
                AuditAction.RULE_PROPOSED,
                actor="warroom",
                now=now,
                summary=f"{len(new)} detection and classification changes proposed from the "
                f"confirmed root cause (version {analysis.version})",
                data={"analysis": analysis.id, "proposals": [p.key for p, _ in new]},
            )
        return [proposal_id for _, proposal_id in new]

    def publish(self, incident_id: int) -> None:
        """Post each of the incident's proposals not yet in its war room, with Apply /
        Dismiss, once (what a Slack failure left unposted goes out next time)."""
        with self._uow(read_only=True) as uow:
            incident = uow.incidents.get(incident_id)
            unposted = [p for p in uow.rule_proposals.for_incident(incident_id) if not p.message_ts]
        if incident is None or not incident.channel_id:
            return
        for record in unposted:
            key = f"rule-proposal:{record.id}"
            self._war_rooms.post_once(
                incident, key, incident.channel_id, self.render(record, incident)
            )
            where = self._war_rooms.sent(incident.id, key)
            if where and where["channel_id"] and where["ts"]:
                with self._uow() as uow:
                    uow.rule_proposals.set_message(
                        record.id, channel_id=where["channel_id"], ts=where["ts"]
                    )
                    uow.commit()

    def refresh_message(self, proposal_id: int) -> None:
        """Show the decision on the proposal's message, in place."""
        record, incident = self._load(proposal_id)
        if record.channel_id and record.message_ts:
            self._slack.update(record.channel_id, record.message_ts, self.render(record, incident))

    def render(self, record: ProposalRecord, incident: Incident) -> dict[str, Any]:
        return self._renderer.render(
            "rca/rule_proposal",
            incident=incident_context(incident),
            proposal=proposal_context(record),
            deciders=[incident.holder(role) for role in DECIDERS if incident.holder(role)],
        )

    # -- deciding ------------------------------------------------------------------------

    def check_decider(self, proposal_id: int, user_id: str, *, attempted: str) -> None:
        """Refuse (audited) anyone but the incident commander and the AI safety lead."""
        record, incident = self._load(proposal_id)
        require_role_holder(
            self._uow,
            incident,
            user_id,
            DECIDERS,
            attempted={"attempted": attempted, "proposal": record.id},
            now=self._clock.now(),
            refusal="Only the incident commander and the AI safety lead may apply or dismiss "
            "a rule proposal",
            nobody="nobody (no commander or lead assigned)",
        )

    def apply(self, proposal_id: int, *, user_id: str) -> RuleDecided:
        """Put the proposal in force (once, whatever the clicks); the classifier and the
        detector use it from the next call on."""
        decided = self._decide(proposal_id, ProposalState.APPLIED, user_id)
        self._applied.refresh()
        return decided

    def dismiss(self, proposal_id: int, *, user_id: str) -> RuleDecided:
        return self._decide(proposal_id, ProposalState.DISMISSED, user_id)

    def _decide(self, proposal_id: int, to: ProposalState, user_id: str) -> RuleDecided:
        now = self._clock.now()
        with self._uow() as uow:
            if not uow.rule_proposals.decide(proposal_id, to=to, by=user_id, now=now):
                current = uow.rule_proposals.get(proposal_id)
                if current is None:
                    raise NotFoundError("That rule proposal no longer exists.")
                return RuleDecided(
                    proposal_id,
                    f"That proposal was already {current.state.value} by <@{current.decided_by}>.",
                )
            record = uow.rule_proposals.get(proposal_id)
            assert record is not None
            applied = to is ProposalState.APPLIED
            record_change(
                uow,
                record.incident_id,
                AuditAction.RULE_APPLIED if applied else AuditAction.RULE_DISMISSED,
                actor=user_id,
                now=now,
                summary=f"Rule {'applied' if applied else 'dismissed'} by <@{user_id}>: "
                f"{record.summary}",
                data={
                    "proposal": record.id,
                    "kind": record.kind.value,
                    "key": record.key,
                    "payload": record.payload,
                },
            )
            uow.commit()
        if applied:
            return RuleDecided(proposal_id, f"Applied: {record.summary}. It is in force now.")
        return RuleDecided(proposal_id, f"Dismissed: {record.summary}.")

    def _load(self, proposal_id: int) -> tuple[ProposalRecord, Incident]:
        with self._uow(read_only=True) as uow:
            record = uow.rule_proposals.get(proposal_id)
            incident = uow.incidents.get(record.incident_id) if record else None
        if record is None or incident is None:
            raise NotFoundError("That rule proposal no longer exists.")
        return record, incident

    # -- what is in force ----------------------------------------------------------------

    def rules_message(self) -> dict[str, Any]:
        """`/incident rules`: classification and detection rules, lessons included."""
        lessons = self._applied.lessons()
        with self._uow(read_only=True) as uow:
            applied = uow.rule_proposals.in_state(ProposalState.APPLIED)
            open_count = uow.rule_proposals.count_open()
        return self._renderer.render(
            "rca/rules",
            **rules_context(
                indicators=self._classifier.rules,
                detection=self._applied.base_detection,
                lessons=lessons,
                applied=applied,
                open_count=open_count,
            ),
        )


def rules_context(
    *,
    indicators: IndicatorRules,
    detection: DetectionRules,
    lessons: Lessons,
    applied: Sequence[ProposalRecord],
    open_count: int,
) -> dict[str, Any]:
    """What `/incident rules` shows: indicators by type (lessons marked), the detector's
    thresholds, tightened thresholds, monitoring to add and the lessons applied."""
    learned = set(lessons.mappings)
    by_type = indicators_by_type(indicators)
    newest = sorted(applied, key=lambda r: r.decided_at or r.created_at, reverse=True)
    return {
        "classification": [
            {
                "type": kind.value,
                "type_label": kind.label,
                "indicators": [
                    {"name": name, "lesson": (name, kind) in learned} for name in by_type[kind]
                ],
            }
            for kind in IncidentType
            if by_type.get(kind)
        ],
        "detection": {
            "z_threshold": detection.z_threshold,
            "warmup_samples": detection.warmup_samples,
            "sustain_samples": detection.sustain_samples,
            "psi_threshold": detection.psi_threshold,
            "adversarial_limit": detection.spec_for("adversarial_score").limit,
            "metrics": len(detection.metrics),
        },
        "tuned": [proposal_context(r) for r in newest if r.kind is ProposalKind.THRESHOLD],
        "gaps": [proposal_context(r) for r in newest if r.kind is ProposalKind.MONITORING_GAP],
        "lessons": [proposal_context(r) for r in newest[:RULES_LISTED]],
        "lessons_total": len(newest),
        "open_proposals": open_count,
    }


def proposal_context(record: ProposalRecord) -> dict[str, Any]:
    """A proposal as templates show it."""
    return {
        "id": record.id,
        "button_value": str(record.id),
        "kind": record.kind.value,
        "kind_label": record.kind.label,
        "summary": record.summary,
        "rationale": record.rationale,
        "state": record.state.value,
        "is_open": record.state is ProposalState.PROPOSED,
        "decided_by": record.decided_by,
        "decided_at": record.decided_at,
        "incident_number": record.incident_number,
    }
