"""Root-cause analysis: the facts form pre-filled from the incident's alerts, the analyses and
causal chain posted in the war room, confirmation or correction by the people who may, and
the rule proposals a confirmed analysis teaches."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bot.clock import Clock
from bot.config import WarroomConfig
from bot.domain.audit import AuditAction
from bot.domain.incident import Incident
from bot.domain.rca import (
    CONFIRMERS,
    IncidentEvidence,
    RcaFacts,
    RcaState,
    RcaThresholds,
    RcaVersion,
    analyse,
    correct_chain,
    correction_from_form,
    facts_from_form,
    prefill_facts,
    read_alerts,
)
from bot.domain.vocabulary import IncidentType
from bot.errors import NotFoundError, UserError
from bot.presenters import incident_context
from bot.rendering import Renderer
from bot.services.history import record_change, require_role_holder
from bot.services.rules import RulesService
from bot.services.war_room import WarRoomService
from bot.slack_gateway import SlackGateway

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWork, UnitOfWorkFactory

# The chain message lists this many contributing factors, then "and N more".
FACTORS_SHOWN = 15
RECOMMENDATIONS_SHOWN = 20


@dataclass(frozen=True)
class OpenRcaForm:
    trigger_id: str
    incident_id: int


@dataclass(frozen=True)
class PublishRca:
    analysis_id: int


@dataclass(frozen=True)
class OpenRcaCorrection:
    trigger_id: str
    analysis_id: int
    user_id: str


@dataclass(frozen=True)
class RcaDecided:
    """A version was confirmed (or a correction made one): refresh the messages, post what
    it teaches."""

    incident_id: int
    analysis_id: int
    previous_id: int | None
    proposal_ids: tuple[int, ...]
    message: str


class RcaService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        config: WarroomConfig,
        renderer: Renderer,
        slack: SlackGateway,
        war_rooms: WarRoomService,
        rules: RulesService,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._renderer = renderer
        self._slack = slack
        self._war_rooms = war_rooms
        self._rules = rules
        rca = config.rca
        self._thresholds = RcaThresholds(
            drift=rca.drift_threshold,
            adversarial=rca.adversarial_threshold,
            stale_training_days=rca.stale_training_days,
            change_window=rca.change_window,
            similar_prompts=rca.similar_prompts,
            few_principals=rca.few_principals,
            precision_burst=rca.precision_burst,
        )

    # -- the facts form ------------------------------------------------------------------

    def facts_form(self, incident_id: int) -> dict[str, Any]:
        """The facts modal, pre-filled from the incident's alerts and what the detector
        watches for its model."""
        with self._uow(read_only=True) as uow:
            incident = _incident(uow, incident_id)
            alerts = uow.rca.alerts(incident_id)
            reading = read_alerts(alerts)
            facts = prefill_facts(reading, affected=incident.affected_systems)
            monitored = uow.rca.monitored([facts.model] if facts.model else [])
        return self._renderer.render(
            "rca/facts_modal",
            incident=incident_context(incident),
            private_metadata=str(incident.id),
            facts=facts_context(facts),
            alert_count=len(alerts),
            observations=[o.describe() for o in reading.observations][:10],
            monitored=sorted(metric for _, metric in monitored),
            thresholds={
                "drift": self._thresholds.drift,
                "adversarial": self._thresholds.adversarial,
                "stale_days": self._thresholds.stale_training_days,
                "window_minutes": int(self._thresholds.change_window / timedelta(minutes=1)),
            },
        )

    def open_facts_form(self, work: OpenRcaForm) -> None:
        """Show the facts form; the trigger is valid for 3 seconds."""
        self._slack.open_view(work.trigger_id, self.facts_form(work.incident_id))

    def analyse(self, incident_id: int, *, form: Mapping[str, str], actor_id: str) -> PublishRca:
        """Run the analyses on the submitted facts and store a new version awaiting
        confirmation (FormError names a field that cannot be used)."""
        now = self._clock.now()
        with self._uow() as uow:
            incident = _incident(uow, incident_id)
            evidence = self._evidence(uow, incident)
            facts = facts_from_form(form, day=evidence.started_at.date(), today=now.date())
            result = analyse(evidence, facts, self._thresholds)
            version = uow.rca.add(
                incident.id,
                facts=facts,
                findings=result.findings,
                chain=result.chain,
                created_by=actor_id,
                now=now,
            )
            record_change(
                uow,
                incident.id,
                AuditAction.RCA_ANALYSED,
                actor=actor_id,
                now=now,
                summary=f"Root-cause analysis version {version.version}: "
                f"{result.chain.primary_cause.summary}",
                data={
                    "analysis": version.id,
                    "version": version.version,
                    "findings": [f.key for f in result.findings],
                    "primary_type": result.chain.primary_type.value,
                },
            )
            uow.commit()
        return PublishRca(version.id)

    def _evidence(self, uow: UnitOfWork, incident: Incident) -> IncidentEvidence:
        return IncidentEvidence(
            incident_type=incident.incident_type,
            title=incident.title,
            declared_at=incident.declared_at,
            reading=read_alerts(uow.rca.alerts(incident.id)),
            classified_indicators=incident.indicators,
            explanation=incident.explanation,
        )

    # -- the chain in the war room -------------------------------------------------------

    def publish(self, analysis_id: int) -> None:
        """Post the causal chain in the war room (once), or refresh it where it is."""
        version, incident, newer = self._load(analysis_id)
        message = self.render(version, incident, newer)
        if version.channel_id and version.message_ts:
            self._slack.update(version.channel_id, version.message_ts, message)
            return
        if not incident.channel_id:
            return
        key = f"rca:{version.id}"
        self._war_rooms.post_once(incident, key, incident.channel_id, message)
        where = self._war_rooms.sent(incident.id, key)
        if where and where["channel_id"] and where["ts"]:
            with self._uow() as uow:
                uow.rca.set_message(version.id, channel_id=where["channel_id"], ts=where["ts"])
                uow.commit()

    def render(
        self, version: RcaVersion, incident: Incident, newer: int | None = None
    ) -> dict[str, Any]:
        return self._renderer.render(
            "rca/chain",
            incident=incident_context(incident),
            rca=chain_context(version, newer),
            confirmers=[incident.holder(role) for role in CONFIRMERS if incident.holder(role)],
        )

    # -- confirming and correcting -------------------------------------------------------

    def check_confirmer(self, analysis_id: int, user_id: str, *, attempted: str) -> None:
        """Refuse (audited) anyone but the commander, the AI safety lead and the data
        scientist of the incident."""
        version, incident, _ = self._load(analysis_id)
        require_role_holder(
            self._uow,
            incident,
            user_id,
            CONFIRMERS,
            attempted={"attempted": attempted, "analysis": version.id},
            now=self._clock.now(),
            refusal="Only the incident commander, the AI safety lead and the data scientist "
            "may confirm or correct the root cause",
            nobody="nobody (no one holds those roles)",
        )

    def confirm(self, analysis_id: int, *, user_id: str) -> RcaDecided:
        """Confirm a version (once, whatever the clicks) and propose what it teaches."""
        now = self._clock.now()
        with self._uow() as uow:
            version = _version(uow, analysis_id)
            if not uow.rca.confirm(analysis_id, by=user_id, now=now):
                current = _version(uow, analysis_id)
                if current.state is RcaState.CONFIRMED:
                    return RcaDecided(
                        current.incident_id,
                        analysis_id,
                        None,
                        (),
                        f"Version {current.version} is already confirmed by "
                        f"<@{current.confirmed_by}>.",
                    )
                raise UserError(
                    f"Version {current.version} was replaced by a correction; confirm or "
                    "correct the newest version."
                )
            confirmed = _version(uow, analysis_id)
            incident = _incident(uow, version.incident_id)
            record_change(
                uow,
                incident.id,
                AuditAction.RCA_CONFIRMED,
                actor=user_id,
                now=now,
                summary=f"Root cause confirmed by <@{user_id}> (version {version.version}): "
                f"{version.chain.primary_cause.summary}",
                data={
                    "analysis": version.id,
                    "version": version.version,
                    "primary_type": version.chain.primary_type.value,
                },
            )
            proposals = self._rules.propose_in(uow, incident, confirmed, now=now)
            uow.commit()
        return RcaDecided(
            incident.id,
            analysis_id,
            None,
            tuple(proposals),
            f"Root cause confirmed (version {version.version})." + _proposed(len(proposals)),
        )

    def correction_form(self, analysis_id: int, *, user_id: str) -> dict[str, Any]:
        """The modal to correct trigger, primary cause and contributing factors."""
        self.check_confirmer(analysis_id, user_id, attempted="rca_correct_form")
        version, _, _ = self._load(analysis_id)
        chain = version.chain
        return self._renderer.render(
            "rca/correct_modal",
            private_metadata=str(version.id),
            version=version.version,
            trigger=chain.trigger.summary,
            primary=chain.primary_cause.summary,
            primary_type=chain.primary_type.value,
            primary_type_label=chain.primary_type.label,
            factors="\n".join(link.summary for link in chain.contributing_factors),
            types=[{"value": t.value, "label": t.label} for t in IncidentType],
        )

    def open_correction_form(self, work: OpenRcaCorrection) -> None:
        self._slack.open_view(
            work.trigger_id, self.correction_form(work.analysis_id, user_id=work.user_id)
        )

    def correct(self, analysis_id: int, *, form: Mapping[str, str], user_id: str) -> RcaDecided:
        """Store the corrected chain as a new version, confirmed by whoever corrected it."""
        correction = correction_from_form(form)
        self.check_confirmer(analysis_id, user_id, attempted="rca_correct")
        now = self._clock.now()
        with self._uow() as uow:
            old = _version(uow, analysis_id)
            if not uow.rca.supersede(analysis_id):
                raise UserError(
                    f"Version {old.version} was already corrected; correct the newest version."
                )
            incident = _incident(uow, old.incident_id)
            new = uow.rca.add(
                incident.id,
                facts=old.facts,
                findings=old.findings,
                chain=correct_chain(old.chain, correction),
                created_by=user_id,
                now=now,
                confirmed=True,
            )
            record_change(
                uow,
                incident.id,
                AuditAction.RCA_CORRECTED,
                actor=user_id,
                now=now,
                summary=f"Root cause corrected and confirmed by <@{user_id}> (version "
                f"{new.version}): {new.chain.primary_cause.summary}",
                data={
                    "analysis": new.id,
                    "version": new.version,
                    "replaces": old.version,
                    "primary_type": new.chain.primary_type.value,
                },
            )
            proposals = self._rules.propose_in(uow, incident, new, now=now)
            uow.commit()
        return RcaDecided(
            incident.id,
            new.id,
            old.id,
            tuple(proposals),
            f"Root cause corrected: version {new.version} is confirmed."
            + _proposed(len(proposals)),
        )

    def after_decision(self, work: RcaDecided) -> None:
        """The Slack side of a confirmation or correction: the chain messages, then the rule
        proposals, each with Apply / Dismiss."""
        if work.previous_id is not None:
            self.publish(work.previous_id)
        self.publish(work.analysis_id)
        self._rules.publish(work.incident_id)

    # -- for the postmortem --------------------------------------------------------------

    def confirmed(self, incident_id: int) -> dict[str, Any] | None:
        """The newest confirmed analysis as plain data, or None when none is confirmed."""
        with self._uow(read_only=True) as uow:
            version = uow.rca.newest_confirmed(incident_id)
        if version is None:
            return None
        chain = version.chain.to_dict()
        return {
            "version": version.version,
            "trigger": chain["trigger"],
            "primary_cause": chain["primary_cause"],
            "contributing_factors": chain["contributing_factors"],
            "recommendations": chain["recommendations"],
            "findings": [f.to_dict() for f in version.findings],
            "facts": version.facts.to_dict(),
            "confirmed_by": version.confirmed_by,
            "confirmed_at": version.confirmed_at,
        }

    # -- plumbing ------------------------------------------------------------------------

    def _load(self, analysis_id: int) -> tuple[RcaVersion, Incident, int | None]:
        """A version, its incident and the number of the version that replaced it."""
        with self._uow(read_only=True) as uow:
            version = _version(uow, analysis_id)
            incident = _incident(uow, version.incident_id)
            newer = [
                v.version for v in uow.rca.versions(incident.id) if v.version > version.version
            ]
        replaced_by = newer[0] if version.state is RcaState.SUPERSEDED and newer else None
        return version, incident, replaced_by


def _incident(uow: UnitOfWork, incident_id: int) -> Incident:
    incident = uow.incidents.get(incident_id)
    if incident is None:
        raise NotFoundError(f"There is no incident with id {incident_id}.")
    return incident


def _version(uow: UnitOfWork, analysis_id: int) -> RcaVersion:
    version = uow.rca.get(analysis_id)
    if version is None:
        raise NotFoundError("That root-cause analysis no longer exists.")
    return version


def _proposed(count: int) -> str:
    if not count:
        return " No new detection or classification change to propose."
    return f" {count} rule change{'s' if count > 1 else ''} proposed for detection, below."


def facts_context(facts: RcaFacts) -> dict[str, Any]:
    """The facts as the form shows them (text fields as typed)."""
    return {
        "model": facts.model,
        "model_version": facts.model_version,
        "last_trained": facts.last_trained.isoformat() if facts.last_trained else None,
        "training_data": facts.training_data,
        "changes": "\n".join(change.line() for change in facts.changes),
        "drift_score": "" if facts.drift_score is None else f"{facts.drift_score:g}",
        "adversarial_score": (
            "" if facts.adversarial_score is None else f"{facts.adversarial_score:g}"
        ),
        "suspected_trigger": facts.suspected_trigger,
        "external_factors": "\n".join(facts.external_factors),
    }


def chain_context(version: RcaVersion, replaced_by: int | None = None) -> dict[str, Any]:
    """A version of the analysis as the war-room message shows it."""
    chain = version.chain
    findings = {f.key: f for f in version.findings}

    def link(summary: str, evidence: tuple[str, ...], key: str | None) -> dict[str, Any]:
        finding = findings.get(key) if key else None
        return {
            "summary": summary,
            "evidence": list(evidence),
            "severity": finding.severity.value if finding else None,
            "area": finding.kind.area if finding else None,
        }

    factors = [link(f.summary, f.evidence, f.finding) for f in chain.contributing_factors]
    return {
        "id": version.id,
        "button_value": str(version.id),
        "version": version.version,
        "state": version.state.value,
        "trigger": link(chain.trigger.summary, chain.trigger.evidence, chain.trigger.finding),
        "primary": {
            **link(
                chain.primary_cause.summary,
                chain.primary_cause.evidence,
                chain.primary_cause.finding,
            ),
            "type_label": chain.primary_type.label,
            "established": chain.established,
        },
        "factors": factors[:FACTORS_SHOWN],
        "factors_more": max(0, len(factors) - FACTORS_SHOWN),
        "recommendations": [
            {
                "text": r.text,
                "finding": findings[r.finding].summary if r.finding in findings else r.finding,
            }
            for r in chain.recommendations[:RECOMMENDATIONS_SHOWN]
        ],
        "model": version.facts.model,
        "model_version": version.facts.model_version,
        "findings_count": len(findings),
        "created_by": version.created_by,
        "created_at": version.created_at,
        "confirmed_by": version.confirmed_by,
        "confirmed_at": version.confirmed_at,
        "replaced_by": replaced_by,
    }
