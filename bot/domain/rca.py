"""Root-cause analysis as pure functions over what an incident already has and what
responders tell warroom in the facts form.

Reading. Every alert of the incident is flattened into named fields (Alertmanager and Grafana
labels, annotations and values; the generic schema's metrics and evidence; the anomaly
detector's metric, value and PSI). Fields with known names become observations (drift score,
adversarial score, similar prompts, distinct users or keys, high-precision queries); others
pre-fill the form (model, model version, last training date, deploys and config changes).

Analyses, each a function of its own (thresholds from the `rca:` config section):

* Data: data-quality indicators in the alerts are `data_quality` (medium); poisoning signs
  (label_flip, backdoor_trigger, …) are `data_poisoning` (high), with training-data sources
  that look untrusted added as evidence.
* Model behaviour: a drift (PSI) score above `drift` is `model_drift` (high); an adversarial
  score above `adversarial` is `adversarial_attack` (critical); a model last trained more than
  `stale_training_days` days before the incident is `stale_training_data` (medium). A score
  exactly at its threshold is no finding.
* User interactions: at least `similar_prompts` near-identical prompts from at most
  `few_principals` users or keys is a `prompt_campaign` (high); at least `precision_burst`
  high-precision queries is an `extraction_burst` (high).
* System state: a deploy or config change at most `change_window` before the first alert is a
  `recent_change` (medium); changes after the first alert, or without a time, are not.
* External factors: each one responders entered is an `external_factor` (low).

Correlation (`build_chain`). The trigger is the responders' suspected trigger, else the suspect
change closest before the first alert, else the first alert itself. The primary cause is the
most severe data, model or user finding (ties in `CAUSE_PRIORITY` order); without one, the
suspect change; without that, the classification, marked as not established. Every other
finding is a contributing factor. Each finding carries one recommendation, so every
recommendation names the finding it answers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from bot.domain.vocabulary import IncidentType, Role, Severity
from bot.errors import UserError

# Who may confirm or correct an analysis.
CONFIRMERS = (Role.INCIDENT_COMMANDER, Role.AI_SAFETY_LEAD, Role.DATA_SCIENTIST)

MAX_TEXT = 2000
MAX_LINES = 20


class FindingKind(StrEnum):
    DATA_QUALITY = "data_quality"
    DATA_POISONING = "data_poisoning"
    MODEL_DRIFT = "model_drift"
    ADVERSARIAL_ATTACK = "adversarial_attack"
    STALE_TRAINING_DATA = "stale_training_data"
    PROMPT_CAMPAIGN = "prompt_campaign"
    EXTRACTION_BURST = "extraction_burst"
    RECENT_CHANGE = "recent_change"
    EXTERNAL_FACTOR = "external_factor"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()

    @property
    def area(self) -> str:
        """Which of the five analyses finds it."""
        return _AREA[self]


_AREA = {
    FindingKind.DATA_QUALITY: "data",
    FindingKind.DATA_POISONING: "data",
    FindingKind.MODEL_DRIFT: "model",
    FindingKind.ADVERSARIAL_ATTACK: "model",
    FindingKind.STALE_TRAINING_DATA: "model",
    FindingKind.PROMPT_CAMPAIGN: "users",
    FindingKind.EXTRACTION_BURST: "users",
    FindingKind.RECENT_CHANGE: "system",
    FindingKind.EXTERNAL_FACTOR: "external",
}

# Which finding becomes the primary cause when several are equally severe.
CAUSE_PRIORITY = (
    FindingKind.ADVERSARIAL_ATTACK,
    FindingKind.DATA_POISONING,
    FindingKind.EXTRACTION_BURST,
    FindingKind.PROMPT_CAMPAIGN,
    FindingKind.MODEL_DRIFT,
    FindingKind.DATA_QUALITY,
    FindingKind.STALE_TRAINING_DATA,
)

DATA_QUALITY_INDICATORS = frozenset(
    {
        "data_quality_drop",
        "missing_values",
        "missing_features",
        "null_rate_spike",
        "schema_violation",
        "schema_drift",
        "duplicate_records",
        "label_noise",
        "stale_features",
        "pipeline_failure",
        "data_pipeline_failure",
    }
)
POISONING_INDICATORS = frozenset(
    {
        "training_anomaly",
        "label_flip",
        "backdoor_trigger",
        "poisoned_samples",
        "trigger_phrase",
        "data_poisoning",
    }
)
_UNTRUSTED_SOURCE = re.compile(
    r"\b(scraped|crawl(?:ed)?|user[\s-]?(?:submitted|generated|feedback)|unverified|"
    r"unvetted|third[\s-]party|crowd[\s-]?sourced|public)\b",
    re.IGNORECASE,
)


class Signal(StrEnum):
    DRIFT_SCORE = "drift_score"
    ADVERSARIAL_SCORE = "adversarial_score"
    SIMILAR_PROMPTS = "similar_prompts"
    PRINCIPALS = "principals"
    HIGH_PRECISION_QUERIES = "high_precision_queries"

    @property
    def label(self) -> str:
        return _SIGNAL_LABEL[self]


_SIGNAL_LABEL = {
    Signal.DRIFT_SCORE: "drift score (PSI)",
    Signal.ADVERSARIAL_SCORE: "adversarial score",
    Signal.SIMILAR_PROMPTS: "similar prompts",
    Signal.PRINCIPALS: "distinct users or keys",
    Signal.HIGH_PRECISION_QUERIES: "high-precision queries",
}

# Field names (normalised) that carry each signal, whichever monitor sent them.
SIGNAL_FIELDS: Mapping[Signal, frozenset[str]] = {
    Signal.DRIFT_SCORE: frozenset({"drift_score", "drift_psi", "psi", "drift"}),
    Signal.ADVERSARIAL_SCORE: frozenset({"adversarial_score"}),
    Signal.SIMILAR_PROMPTS: frozenset(
        {"similar_prompts", "similar_prompt_count", "repeated_prompts"}
    ),
    Signal.PRINCIPALS: frozenset(
        {"distinct_users", "distinct_keys", "unique_users", "unique_keys", "principals"}
    ),
    Signal.HIGH_PRECISION_QUERIES: frozenset(
        {"high_precision_queries", "high_precision_query_count"}
    ),
}
_MODEL_FIELDS = ("model",)
_VERSION_FIELDS = ("model_version", "version")
_TRAINED_FIELDS = ("last_trained", "last_training", "trained_at", "training_date")
_CHANGE_FIELDS = ("deploy", "deployment", "last_deploy", "change", "config_change")


# --- inputs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertSeen:
    """One alert of the incident as stored: where from, what, when, and its raw body."""

    source: str
    title: str
    starts_at: datetime
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class Observation:
    """A number an alert carried that an analysis reads."""

    signal: Signal
    value: float
    source: str
    model: str | None = None
    at: datetime | None = None

    def describe(self) -> str:
        where = f" on {self.model}" if self.model else ""
        return f"{self.signal.label} {_number(self.value)}{where} ({self.source})"


@dataclass(frozen=True)
class Change:
    """A deploy or configuration change; `at` is None when nobody knows when."""

    description: str
    at: datetime | None = None

    def line(self) -> str:
        stamp = self.at.strftime("%Y-%m-%d %H:%M") + " " if self.at else ""
        return stamp + self.description


@dataclass(frozen=True)
class AlertReading:
    """What the incident's alerts say, read once."""

    observations: tuple[Observation, ...] = ()
    indicators: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    model_versions: tuple[str, ...] = ()
    last_trained: date | None = None
    changes: tuple[Change, ...] = ()
    first_alert_at: datetime | None = None
    first_alert_title: str = ""

    def strongest(self, signal: Signal) -> Observation | None:
        """The largest observation of a signal (the smallest for distinct principals)."""
        found = [o for o in self.observations if o.signal is signal]
        if not found:
            return None
        if signal is Signal.PRINCIPALS:
            return min(found, key=lambda o: o.value)
        return max(found, key=lambda o: o.value)


@dataclass(frozen=True)
class RcaFacts:
    """What responders know and warroom cannot: entered (pre-filled) in the facts form."""

    model: str = ""
    model_version: str = ""
    last_trained: date | None = None
    training_data: str = ""
    changes: tuple[Change, ...] = ()
    drift_score: float | None = None
    adversarial_score: float | None = None
    suspected_trigger: str = ""
    external_factors: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_version": self.model_version,
            "last_trained": self.last_trained.isoformat() if self.last_trained else None,
            "training_data": self.training_data,
            "changes": [
                {"description": c.description, "at": c.at.isoformat() if c.at else None}
                for c in self.changes
            ],
            "drift_score": self.drift_score,
            "adversarial_score": self.adversarial_score,
            "suspected_trigger": self.suspected_trigger,
            "external_factors": list(self.external_factors),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RcaFacts:
        trained = data.get("last_trained")
        return cls(
            model=str(data.get("model") or ""),
            model_version=str(data.get("model_version") or ""),
            last_trained=date.fromisoformat(trained) if trained else None,
            training_data=str(data.get("training_data") or ""),
            changes=tuple(
                Change(
                    description=str(c["description"]),
                    at=datetime.fromisoformat(c["at"]) if c.get("at") else None,
                )
                for c in data.get("changes") or ()
            ),
            drift_score=_optional_float(data.get("drift_score")),
            adversarial_score=_optional_float(data.get("adversarial_score")),
            suspected_trigger=str(data.get("suspected_trigger") or ""),
            external_factors=tuple(str(f) for f in data.get("external_factors") or ()),
        )


@dataclass(frozen=True)
class IncidentEvidence:
    """The incident as the analyses need it."""

    incident_type: IncidentType
    title: str
    declared_at: datetime
    reading: AlertReading = field(default_factory=AlertReading)
    classified_indicators: tuple[str, ...] = ()
    explanation: str = ""

    @property
    def started_at(self) -> datetime:
        """When the incident began as far as warroom knows: the first alert, or declaring."""
        return self.reading.first_alert_at or self.declared_at

    @property
    def indicators(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.classified_indicators, *self.reading.indicators)))


@dataclass(frozen=True)
class RcaThresholds:
    """The `rca:` config section as plain values (the seed's numbers by default)."""

    drift: float = 0.15
    adversarial: float = 0.7
    stale_training_days: int = 90
    change_window: timedelta = timedelta(hours=2)
    similar_prompts: int = 20
    few_principals: int = 3
    precision_burst: int = 100


# --- findings --------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """What one analysis found, the evidence for it and what to do about it."""

    key: str
    kind: FindingKind
    severity: Severity
    summary: str
    evidence: tuple[str, ...]
    recommendation: str
    incident_type: IncidentType | None = None
    at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind.value,
            "area": self.kind.area,
            "severity": self.severity.value,
            "summary": self.summary,
            "evidence": list(self.evidence),
            "recommendation": self.recommendation,
            "incident_type": self.incident_type.value if self.incident_type else None,
            "at": self.at.isoformat() if self.at else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        return cls(
            key=str(data["key"]),
            kind=FindingKind(data["kind"]),
            severity=Severity(data["severity"]),
            summary=str(data["summary"]),
            evidence=tuple(str(e) for e in data.get("evidence") or ()),
            recommendation=str(data.get("recommendation") or ""),
            incident_type=IncidentType(data["incident_type"])
            if data.get("incident_type")
            else None,
            at=datetime.fromisoformat(data["at"]) if data.get("at") else None,
        )


def data_findings(evidence: IncidentEvidence, facts: RcaFacts) -> list[Finding]:
    """Data-quality indicators and poisoning signs in the incident's alerts."""
    indicators = evidence.indicators
    findings: list[Finding] = []
    quality = [i for i in indicators if i in DATA_QUALITY_INDICATORS]
    if quality:
        findings.append(
            Finding(
                key=FindingKind.DATA_QUALITY.value,
                kind=FindingKind.DATA_QUALITY,
                severity=Severity.MEDIUM,
                summary="Data-quality problems in the model's input data",
                evidence=(f"Data-quality indicators in the alerts: {', '.join(quality)}",),
                recommendation="Add validation (schema, null rates, duplicates) to the data "
                "pipeline feeding the model, and alert when it fails.",
            )
        )
    poisoning = [i for i in indicators if i in POISONING_INDICATORS]
    if poisoning:
        proof = [f"Poisoning signs in the alerts: {', '.join(poisoning)}"]
        untrusted = sorted(
            {m.group(0).lower() for m in _UNTRUSTED_SOURCE.finditer(facts.training_data)}
        )
        if untrusted:
            proof.append(
                f"Training data includes sources that are hard to vet ({', '.join(untrusted)}): "
                f"{_clip(facts.training_data, 300)}"
            )
        findings.append(
            Finding(
                key=FindingKind.DATA_POISONING.value,
                kind=FindingKind.DATA_POISONING,
                severity=Severity.HIGH,
                summary="Signs that the training data was poisoned",
                evidence=tuple(proof),
                recommendation="Audit the training-data sources, remove suspect samples and "
                "retrain from the last known-good data snapshot.",
                incident_type=IncidentType.DATA_POISONING,
            )
        )
    return findings


def model_findings(
    evidence: IncidentEvidence, facts: RcaFacts, thresholds: RcaThresholds
) -> list[Finding]:
    """Drift, adversarial inputs and stale training, against the configured thresholds."""
    findings: list[Finding] = []
    reading = evidence.reading
    model = f" of {facts.model}" if facts.model else ""
    target = f"model {facts.model}" if facts.model else "the model"
    drift = facts.drift_score
    if drift is not None and drift > thresholds.drift:
        findings.append(
            Finding(
                key=FindingKind.MODEL_DRIFT.value,
                kind=FindingKind.MODEL_DRIFT,
                severity=Severity.HIGH,
                summary=f"The input or prediction distribution{model} drifted",
                evidence=(
                    _score_evidence(
                        Signal.DRIFT_SCORE, drift, thresholds.drift, reading, "PSI above"
                    ),
                ),
                recommendation="Retrain or recalibrate the model on recent data and keep a "
                "drift (PSI) alert on its inputs and predictions.",
                incident_type=IncidentType.MODEL_DRIFT,
            )
        )
    adversarial = facts.adversarial_score
    if adversarial is not None and adversarial > thresholds.adversarial:
        findings.append(
            Finding(
                key=FindingKind.ADVERSARIAL_ATTACK.value,
                kind=FindingKind.ADVERSARIAL_ATTACK,
                severity=Severity.CRITICAL,
                summary=f"Adversarial inputs were sent to {target}",
                evidence=(
                    _score_evidence(
                        Signal.ADVERSARIAL_SCORE,
                        adversarial,
                        thresholds.adversarial,
                        reading,
                        "above",
                    ),
                ),
                recommendation="Filter or rate-limit inputs with a high adversarial score, and "
                "add such examples to adversarial training.",
                incident_type=IncidentType.ADVERSARIAL_ATTACK,
            )
        )
    if facts.last_trained is not None:
        age = (evidence.started_at.date() - facts.last_trained).days
        if age > thresholds.stale_training_days:
            findings.append(
                Finding(
                    key=FindingKind.STALE_TRAINING_DATA.value,
                    kind=FindingKind.STALE_TRAINING_DATA,
                    severity=Severity.MEDIUM,
                    summary=f"The model{model} was trained on stale data",
                    evidence=(
                        f"Last trained {facts.last_trained.isoformat()}, {age} days before the "
                        f"incident (more than {thresholds.stale_training_days})",
                    ),
                    recommendation=f"Schedule retraining: the model was last trained {age} days "
                    "before the incident.",
                    incident_type=IncidentType.MODEL_DRIFT,
                )
            )
    return findings


def user_findings(evidence: IncidentEvidence, thresholds: RcaThresholds) -> list[Finding]:
    """Campaigns of similar prompts from few users or keys, and extraction bursts."""
    findings: list[Finding] = []
    reading = evidence.reading
    similar = reading.strongest(Signal.SIMILAR_PROMPTS)
    principals = reading.strongest(Signal.PRINCIPALS)
    if (
        similar is not None
        and principals is not None
        and similar.value >= thresholds.similar_prompts
        and principals.value <= thresholds.few_principals
    ):
        kind = evidence.incident_type
        if kind not in (IncidentType.PROMPT_INJECTION, IncidentType.JAILBREAK_ATTEMPT):
            kind = IncidentType.PROMPT_INJECTION
        findings.append(
            Finding(
                key=FindingKind.PROMPT_CAMPAIGN.value,
                kind=FindingKind.PROMPT_CAMPAIGN,
                severity=Severity.HIGH,
                summary=f"{_number(similar.value)} near-identical prompts came from "
                f"{_number(principals.value)} users or keys",
                evidence=(
                    similar.describe() + f", at least {thresholds.similar_prompts}",
                    principals.describe() + f", at most {thresholds.few_principals}",
                ),
                recommendation="Rate-limit or block the users and keys behind the repeated "
                "prompts, and add the prompt pattern to the input filters.",
                incident_type=kind,
                at=similar.at,
            )
        )
    burst = reading.strongest(Signal.HIGH_PRECISION_QUERIES)
    if burst is not None and burst.value >= thresholds.precision_burst:
        findings.append(
            Finding(
                key=FindingKind.EXTRACTION_BURST.value,
                kind=FindingKind.EXTRACTION_BURST,
                severity=Severity.HIGH,
                summary=f"A burst of {_number(burst.value)} high-precision queries",
                evidence=(burst.describe() + f", at least {thresholds.precision_burst}",),
                recommendation="Cap high-precision (log-probability) queries per key and watch "
                "query volume per key.",
                incident_type=IncidentType.MODEL_EXTRACTION,
                at=burst.at,
            )
        )
    return findings


def system_findings(
    evidence: IncidentEvidence, facts: RcaFacts, thresholds: RcaThresholds
) -> list[Finding]:
    """Deploys and config changes shortly before the first alert, closest first."""
    start = evidence.started_at
    suspects = [
        change
        for change in facts.changes
        if change.at is not None and start - thresholds.change_window <= change.at <= start
    ]
    suspects.sort(key=lambda c: c.at or start, reverse=True)
    findings = []
    for index, change in enumerate(suspects, start=1):
        assert change.at is not None
        minutes = int((start - change.at).total_seconds() // 60)
        findings.append(
            Finding(
                key=f"{FindingKind.RECENT_CHANGE.value}:{index}",
                kind=FindingKind.RECENT_CHANGE,
                severity=Severity.MEDIUM,
                summary=f"Change shortly before the first alert: {_clip(change.description, 200)}",
                evidence=(
                    f"{change.at:%Y-%m-%d %H:%M} UTC, {minutes} min before the first alert "
                    f"({start:%H:%M} UTC; window {_duration(thresholds.change_window)})",
                ),
                recommendation=f"Review “{_clip(change.description, 120)}” and roll it back "
                "if it is the cause; gate similar changes behind a canary evaluation.",
                at=change.at,
            )
        )
    return findings


def external_findings(facts: RcaFacts) -> list[Finding]:
    """What responders entered as external factors."""
    return [
        Finding(
            key=f"{FindingKind.EXTERNAL_FACTOR.value}:{index}",
            kind=FindingKind.EXTERNAL_FACTOR,
            severity=Severity.LOW,
            summary=f"External factor: {_clip(factor, 200)}",
            evidence=("Entered by responders in the facts form",),
            recommendation=f"Add “{_clip(factor, 120)}” to the runbook and watch for it.",
        )
        for index, factor in enumerate(facts.external_factors, start=1)
    ]


def find_all(
    evidence: IncidentEvidence, facts: RcaFacts, thresholds: RcaThresholds
) -> list[Finding]:
    """Every analysis in turn: data, model, users, system, external."""
    return [
        *data_findings(evidence, facts),
        *model_findings(evidence, facts, thresholds),
        *user_findings(evidence, thresholds),
        *system_findings(evidence, facts, thresholds),
        *external_findings(facts),
    ]


# --- the causal chain ------------------------------------------------------------------


@dataclass(frozen=True)
class ChainLink:
    """One step of the chain: what, why we think so, and the finding it comes from."""

    summary: str
    evidence: tuple[str, ...] = ()
    finding: str | None = None
    at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "evidence": list(self.evidence),
            "finding": self.finding,
            "at": self.at.isoformat() if self.at else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChainLink:
        return cls(
            summary=str(data["summary"]),
            evidence=tuple(str(e) for e in data.get("evidence") or ()),
            finding=data.get("finding"),
            at=datetime.fromisoformat(data["at"]) if data.get("at") else None,
        )


@dataclass(frozen=True)
class Recommendation:
    text: str
    finding: str

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "finding": self.finding}


@dataclass(frozen=True)
class CausalChain:
    """Trigger event → primary cause, with contributing factors and what to do."""

    trigger: ChainLink
    primary_cause: ChainLink
    primary_type: IncidentType
    established: bool
    contributing_factors: tuple[ChainLink, ...]
    recommendations: tuple[Recommendation, ...]

    def finding_keys(self) -> set[str]:
        links = (self.trigger, self.primary_cause, *self.contributing_factors)
        return {link.finding for link in links if link.finding}

    def to_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger.to_dict(),
            "primary_cause": {
                **self.primary_cause.to_dict(),
                "incident_type": self.primary_type.value,
                "established": self.established,
            },
            "contributing_factors": [f.to_dict() for f in self.contributing_factors],
            "recommendations": [r.to_dict() for r in self.recommendations],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CausalChain:
        primary = data["primary_cause"]
        return cls(
            trigger=ChainLink.from_dict(data["trigger"]),
            primary_cause=ChainLink.from_dict(primary),
            primary_type=IncidentType(primary["incident_type"]),
            established=bool(primary.get("established", True)),
            contributing_factors=tuple(
                ChainLink.from_dict(f) for f in data.get("contributing_factors") or ()
            ),
            recommendations=tuple(
                Recommendation(text=str(r["text"]), finding=str(r["finding"]))
                for r in data.get("recommendations") or ()
            ),
        )


def _link(finding: Finding) -> ChainLink:
    return ChainLink(finding.summary, finding.evidence, finding.key, finding.at)


def _cause_rank(finding: Finding) -> tuple[int, int]:
    return finding.severity.rank, CAUSE_PRIORITY.index(finding.kind)


def build_chain(
    evidence: IncidentEvidence, facts: RcaFacts, findings: Sequence[Finding]
) -> CausalChain:
    """Correlate findings into trigger, primary cause and contributing factors."""
    changes = [f for f in findings if f.kind is FindingKind.RECENT_CHANGE]
    causes = sorted((f for f in findings if f.kind in CAUSE_PRIORITY), key=_cause_rank)
    trigger_finding: Finding | None = None
    if facts.suspected_trigger.strip():
        trigger = ChainLink(
            _clip(facts.suspected_trigger.strip(), 300),
            ("Named by responders as the suspected trigger",),
        )
    elif changes:
        trigger_finding = changes[0]  # the closest before the first alert
        trigger = _link(trigger_finding)
    else:
        reading = evidence.reading
        title = reading.first_alert_title or evidence.title
        trigger = ChainLink(
            f"First alert: {_clip(title, 200)}",
            (f"Received {evidence.started_at:%Y-%m-%d %H:%M} UTC",),
            at=evidence.started_at,
        )
    # Without a data, model or user cause, a change other than the trigger is the suspect.
    others = [c for c in changes if c is not trigger_finding]
    primary_finding = causes[0] if causes else (others[0] if others else None)
    if primary_finding is not None:
        primary = _link(primary_finding)
        primary_type = primary_finding.incident_type or evidence.incident_type
        established = True
    else:
        primary_type = evidence.incident_type
        proof = [f"Classified as {primary_type.label.lower()}"]
        if evidence.classified_indicators:
            proof.append(f"Indicators: {', '.join(evidence.classified_indicators)}")
        if evidence.explanation:
            proof.append(_clip(evidence.explanation, 500))
        primary = ChainLink(
            f"Not established: no analysis found a cause; {primary_type.label.lower()} as "
            "classified",
            tuple(proof),
        )
        established = False
    used = {trigger_finding.key if trigger_finding else None, primary.finding}
    contributing = tuple(
        _link(f) for f in sorted(findings, key=lambda f: f.severity.rank) if f.key not in used
    )
    ordered = [f for f in (primary_finding, trigger_finding) if f is not None]
    ordered += [f for f in findings if f.key not in used]
    return CausalChain(
        trigger=trigger,
        primary_cause=primary,
        primary_type=primary_type,
        established=established,
        contributing_factors=contributing,
        recommendations=tuple(Recommendation(f.recommendation, f.key) for f in ordered),
    )


@dataclass(frozen=True)
class Analysis:
    findings: tuple[Finding, ...]
    chain: CausalChain


def analyse(evidence: IncidentEvidence, facts: RcaFacts, thresholds: RcaThresholds) -> Analysis:
    """Run every analysis and correlate the findings into a causal chain."""
    findings = find_all(evidence, facts, thresholds)
    return Analysis(tuple(findings), build_chain(evidence, facts, findings))


@dataclass(frozen=True)
class Correction:
    """What a responder changed in the chain (texts as typed; factors one per line)."""

    trigger: str
    primary_cause: str
    primary_type: IncidentType
    contributing_factors: tuple[str, ...]


def correct_chain(chain: CausalChain, correction: Correction) -> CausalChain:
    """The chain as corrected: unchanged texts keep their evidence and finding, changed ones
    become the responder's word; recommendations stay for the findings still in the chain."""

    def keep_or_new(text: str, originals: Iterable[ChainLink]) -> ChainLink:
        text = text.strip()
        for link in originals:
            if link.summary.strip() == text:
                return link
        return ChainLink(_clip(text, 500), ("Corrected by a responder",))

    factors = (chain.trigger, chain.primary_cause, *chain.contributing_factors)
    corrected = replace(
        chain,
        trigger=keep_or_new(correction.trigger, (chain.trigger,)),
        primary_cause=keep_or_new(correction.primary_cause, factors),
        primary_type=correction.primary_type,
        established=True,
        contributing_factors=tuple(
            keep_or_new(line, factors) for line in correction.contributing_factors if line.strip()
        ),
    )
    kept = corrected.finding_keys()
    return replace(
        corrected,
        recommendations=tuple(r for r in chain.recommendations if r.finding in kept),
    )


# --- reading alerts --------------------------------------------------------------------


def _key(name: Any) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def _flatten(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Named fields and indicators of one alert body, whichever monitor sent it."""
    fields: dict[str, Any] = {}
    indicators: list[str] = []
    parts: list[Any] = []
    alert = raw.get("alert")
    if isinstance(alert, Mapping):  # Alertmanager or Grafana: labels, annotations, values
        group = raw.get("group")
        group = group if isinstance(group, Mapping) else {}
        parts = [
            group.get("commonLabels"),
            group.get("commonAnnotations"),
            alert.get("labels"),
            alert.get("annotations"),
            alert.get("values"),
        ]
    else:  # the generic schema or the anomaly detector
        parts = [
            {k: v for k, v in raw.items() if not isinstance(v, Mapping | list)},
            raw.get("metrics"),
            raw.get("evidence"),
            raw.get("labels"),
        ]
        metric = raw.get("metric")
        if isinstance(metric, str) and str(raw.get("fingerprint", "")).startswith("anomaly:"):
            # The detector's reading: a PSI for drift, else the metric's value.
            psi = raw.get("psi")
            parts.append({"drift_score": psi} if psi is not None else {metric: raw.get("value")})
    for part in parts:
        if isinstance(part, Mapping):
            fields.update({_key(k): v for k, v in part.items()})
    listed = raw.get("indicators")
    if isinstance(listed, list):
        indicators += [str(i) for i in listed]
    for name in ("indicator", "ai_indicators"):
        if isinstance(fields.get(name), str):
            indicators += fields[name].split(",")
    return fields, [_key(i) for i in indicators if str(i).strip()]


def read_alerts(alerts: Sequence[AlertSeen]) -> AlertReading:
    """Observations, indicators, models, versions, training dates and changes in the alerts."""
    observations: list[Observation] = []
    indicators: list[str] = []
    models: list[str] = []
    versions: list[str] = []
    trained: list[date] = []
    changes: list[Change] = []
    ordered = sorted(alerts, key=lambda a: a.starts_at)
    for alert in ordered:
        fields, found = _flatten(alert.raw)
        indicators += found
        model = _first_text(fields, _MODEL_FIELDS)
        if model:
            models.append(model)
        version = _first_text(fields, _VERSION_FIELDS)
        if version:
            versions.append(version)
        when = _first_text(fields, _TRAINED_FIELDS)
        if when:
            parsed = _parse_date(when)
            if parsed is not None:
                trained.append(parsed)
        for name in _CHANGE_FIELDS:
            text = fields.get(name)
            if isinstance(text, str) and text.strip():
                changes += parse_changes(text, day=alert.starts_at.date())
        source = f"alert “{_clip(alert.title, 80)}” at {alert.starts_at:%H:%M} UTC"
        for signal, names in SIGNAL_FIELDS.items():
            for name in names:
                value = _optional_float(fields.get(name))
                if value is not None:
                    observations.append(
                        Observation(signal, value, source, model or None, alert.starts_at)
                    )
                    break
    first = ordered[0] if ordered else None
    return AlertReading(
        observations=tuple(observations),
        indicators=tuple(dict.fromkeys(indicators)),
        models=tuple(dict.fromkeys(models)),
        model_versions=tuple(dict.fromkeys(versions)),
        last_trained=max(trained) if trained else None,
        changes=tuple(dict.fromkeys(changes)),
        first_alert_at=first.starts_at if first else None,
        first_alert_title=first.title if first else "",
    )


def prefill_facts(reading: AlertReading, *, affected: Sequence[str] = ()) -> RcaFacts:
    """The facts form as warroom can fill it from the alerts; responders correct the rest."""
    drift = reading.strongest(Signal.DRIFT_SCORE)
    adversarial = reading.strongest(Signal.ADVERSARIAL_SCORE)
    models = reading.models or tuple(affected)
    return RcaFacts(
        model=models[0] if models else "",
        model_version=reading.model_versions[-1] if reading.model_versions else "",
        last_trained=reading.last_trained,
        changes=reading.changes,
        drift_score=drift.value if drift else None,
        adversarial_score=adversarial.value if adversarial else None,
    )


# --- the facts form --------------------------------------------------------------------


class FormError(UserError):
    """A form field that cannot be used; `field` names it so the modal can point at it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


_CHANGE_LINE = re.compile(
    r"^(?:(?P<date>\d{4}-\d{2}-\d{2})[ T])?(?P<time>\d{1,2}:\d{2})(?::\d{2}(?:\.\d+)?)?"
    r"\s*(?:Z|UTC|\+00:00)?\s+(?:[-–—:]\s*)?(?P<what>.+)$",
    re.IGNORECASE,
)


def parse_changes(text: str, *, day: date) -> tuple[Change, ...]:
    """Changes one per line: `2026-11-26 09:10 deploy v2.3`, `09:10 …` (UTC, on `day`), or
    just the description when the time is unknown."""
    changes: list[Change] = []
    for line in text.splitlines()[:MAX_LINES]:
        line = line.strip().lstrip("•-* ").strip()
        if not line:
            continue
        match = _CHANGE_LINE.match(line)
        if match is None:
            changes.append(Change(_clip(line, 300)))
            continue
        on = date.fromisoformat(match["date"]) if match["date"] else day
        hours, minutes = (int(p) for p in match["time"].split(":"))
        if hours > 23 or minutes > 59:
            changes.append(Change(_clip(line, 300)))
            continue
        at = datetime.combine(on, time(hours, minutes), tzinfo=UTC)
        changes.append(Change(_clip(match["what"].strip(), 300), at))
    return tuple(changes)


def parse_score(text: str, *, field: str, upper: float | None = None) -> float | None:
    """A score typed in the form: empty is None; FormError when it is not a number in range."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise FormError(field, f"“{_clip(text, 40)}” is not a number.") from None
    if not math.isfinite(value) or value < 0 or (upper is not None and value > upper):
        bound = f"between 0 and {_number(upper)}" if upper is not None else "0 or more"
        raise FormError(field, f"A score is a number {bound}.")
    return value


def facts_from_form(values: Mapping[str, str], *, day: date, today: date) -> RcaFacts:
    """The facts from the form's fields (strings as typed; missing means empty)."""

    def text(name: str) -> str:
        return (values.get(name) or "").strip()

    trained: date | None = None
    if text("last_trained"):
        trained = _parse_date(text("last_trained"))
        if trained is None:
            raise FormError("last_trained", "Pick a date.")
        if trained > today:
            raise FormError("last_trained", "The last training cannot be in the future.")
    return RcaFacts(
        model=_clip(text("model"), 200),
        model_version=_clip(text("model_version"), 200),
        last_trained=trained,
        training_data=_clip(text("training_data"), MAX_TEXT),
        changes=parse_changes(text("changes"), day=day),
        drift_score=parse_score(text("drift_score"), field="drift_score"),
        adversarial_score=parse_score(
            text("adversarial_score"), field="adversarial_score", upper=1.0
        ),
        suspected_trigger=_clip(text("suspected_trigger"), 300),
        external_factors=tuple(
            _clip(line.strip().lstrip("•-* ").strip(), 300)
            for line in text("external_factors").splitlines()[:MAX_LINES]
            if line.strip().lstrip("•-* ").strip()
        ),
    )


def correction_from_form(values: Mapping[str, str]) -> Correction:
    """The correction modal's fields; FormError when the primary cause or its type is empty."""
    primary = (values.get("primary_cause") or "").strip()
    if not primary:
        raise FormError("primary_cause", "Say what the primary cause was.")
    try:
        kind = IncidentType(values.get("primary_type") or "")
    except ValueError:
        raise FormError("primary_type", "Pick the type of incident the cause makes it.") from None
    return Correction(
        trigger=(values.get("trigger") or "").strip() or "Not known",
        primary_cause=primary,
        primary_type=kind,
        contributing_factors=tuple(
            line.strip().lstrip("•-* ").strip()
            for line in (values.get("contributing_factors") or "").splitlines()[:MAX_LINES]
            if line.strip().lstrip("•-* ").strip()
        ),
    )


# --- stored versions -------------------------------------------------------------------


class RcaState(StrEnum):
    PROPOSED = "proposed"
    CONFIRMED = "confirmed"
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class RcaVersion:
    """One stored version of an incident's analysis."""

    id: int
    incident_id: int
    version: int
    state: RcaState
    facts: RcaFacts
    findings: tuple[Finding, ...]
    chain: CausalChain
    created_by: str
    created_at: datetime
    confirmed_by: str | None = None
    confirmed_at: datetime | None = None
    channel_id: str | None = None
    message_ts: str | None = None


# --- helpers ---------------------------------------------------------------------------


def _score_evidence(
    signal: Signal, value: float, threshold: float, reading: AlertReading, relation: str
) -> str:
    seen = reading.strongest(signal)
    where = seen.source if seen is not None and seen.value == value else "entered by responders"
    return f"{signal.label} {_number(value)}, {relation} {_number(threshold)} ({where})"


def _first_text(fields: Mapping[str, Any], names: Sequence[str]) -> str:
    for name in names:
        value = fields.get(name)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            text = str(value).strip()
            if text:
                return _clip(text, 200)
    return ""


def _parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def _optional_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _number(value: float) -> str:
    return f"{value:g}"


def _duration(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
