"""Lessons learned feeding back into detection: rule updates proposed from a confirmed
root-cause analysis, and the rules in force once people apply them.

Proposals (`propose_rules`), at most `MAX_PROPOSALS` per confirmation:

* `indicator_mapping`: an indicator seen in the incident's alerts that the classifier does not
  know yet → the confirmed incident type. Known indicators are never re-pointed: an indicator
  that already means something else would start voting for two types.
* `threshold`: each metric the anomaly detector flagged for the incident, tightened for that
  model: a limit by 10 % (down for metrics whose bad side is up, up otherwise), a PSI threshold
  by 0.05 (not below 0.05), a z threshold by 0.5 (not below 2). Nothing is proposed when the
  rule in force is already that tight.
* `monitoring_gap`: a metric that would show the confirmed cause (`WATCH_METRICS`) but that
  nobody sends for an affected model (no baseline).

Applied (`Lessons`): indicator mappings are added to the classifier's indicator table;
thresholds replace the detector's for that model and metric only, and only ever tighten;
monitoring gaps are a list of metrics to start sending.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.domain.anomaly import DetectionRules, Direction, normalize_metric_name
from bot.domain.classification import IndicatorRules, is_indicator_name, normalize_indicator
from bot.domain.vocabulary import IncidentType, Role

# Who may apply or dismiss a proposal.
DECIDERS = (Role.INCIDENT_COMMANDER, Role.AI_SAFETY_LEAD)

MAX_PROPOSALS = 12
MAX_KEY = 200
Z_FLOOR = 2.0
Z_STEP = 0.5
PSI_FLOOR = 0.05
PSI_STEP = 0.05
LIMIT_STEP = 0.10

# Metrics (the detector's names) that show each kind of incident, the one to suggest first.
WATCH_METRICS: Mapping[IncidentType, tuple[str, ...]] = {
    IncidentType.MODEL_DRIFT: ("input_drift", "prediction_drift", "embedding_distance"),
    IncidentType.ADVERSARIAL_ATTACK: ("adversarial_score",),
    IncidentType.MODEL_EXTRACTION: (
        "high_precision_queries",
        "high_precision_query_rate",
        "queries_per_key",
        "query_volume_per_key",
    ),
    IncidentType.HALLUCINATION_CASCADE: (
        "factuality_score",
        "hallucination_rate",
        "confidence_calibration",
        "calibration_error",
    ),
    IncidentType.HOSTILE_BEHAVIOR: ("toxicity_score", "toxicity", "toxicity_rate"),
    IncidentType.JAILBREAK_ATTEMPT: ("refusal_rate",),
    IncidentType.SECURITY_BREACH: ("auth_failure_rate", "auth_failures"),
    IncidentType.PERFORMANCE_DEGRADATION: (
        "latency_ms",
        "latency",
        "error_rate",
        "throughput",
        "requests_per_second",
    ),
}


class ProposalKind(StrEnum):
    INDICATOR_MAPPING = "indicator_mapping"
    THRESHOLD = "threshold"
    MONITORING_GAP = "monitoring_gap"

    @property
    def label(self) -> str:
        return _KIND_LABEL[self]


_KIND_LABEL = {
    ProposalKind.INDICATOR_MAPPING: "Classification rule",
    ProposalKind.THRESHOLD: "Detection threshold",
    ProposalKind.MONITORING_GAP: "Monitoring gap",
}


class ProposalState(StrEnum):
    PROPOSED = "proposed"
    APPLIED = "applied"
    DISMISSED = "dismissed"


class Parameter(StrEnum):
    """Which number of the detector a threshold proposal tightens."""

    Z_THRESHOLD = "z_threshold"
    PSI_THRESHOLD = "psi_threshold"
    LIMIT = "limit"


@dataclass(frozen=True)
class RuleProposal:
    """A change to classification or detection, not yet decided."""

    kind: ProposalKind
    key: str
    payload: dict[str, Any]
    rationale: str

    @property
    def summary(self) -> str:
        return describe(self.kind, self.payload)


@dataclass(frozen=True)
class ProposalRecord:
    """A stored proposal and where it stands."""

    id: int
    incident_id: int
    incident_number: int
    kind: ProposalKind
    key: str
    payload: dict[str, Any]
    rationale: str
    state: ProposalState
    created_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    channel_id: str | None = None
    message_ts: str | None = None

    @property
    def summary(self) -> str:
        return describe(self.kind, self.payload)


@dataclass(frozen=True)
class AnomalySeen:
    """One anomaly the detector reported for the incident."""

    model: str
    metric: str
    value: float
    z: float | None = None
    psi: float | None = None
    limit: float | None = None

    @property
    def parameter(self) -> Parameter:
        if self.limit is not None:
            return Parameter.LIMIT
        if self.psi is not None:
            return Parameter.PSI_THRESHOLD
        return Parameter.Z_THRESHOLD

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> AnomalySeen | None:
        """The anomaly in an alert body the detector wrote (None for other alerts)."""
        if not str(raw.get("fingerprint", "")).startswith("anomaly:"):
            return None
        try:
            return cls(
                model=str(raw["model"]),
                metric=normalize_metric_name(str(raw["metric"])),
                value=float(raw["value"]),
                z=_float_or_none(raw.get("z")),
                psi=_float_or_none(raw.get("psi")),
                limit=_float_or_none(raw.get("limit")),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class LessonInputs:
    """What a confirmed analysis and the incident's alerts teach."""

    incident_number: int
    confirmed_type: IncidentType
    cause_types: tuple[IncidentType, ...]
    indicators_seen: tuple[str, ...]
    anomalies: tuple[AnomalySeen, ...]
    models: tuple[str, ...]
    monitored: frozenset[tuple[str, str]]


DetectionFor = Callable[[str, str], DetectionRules]


def propose_rules(
    inputs: LessonInputs, *, indicators: IndicatorRules, detection: DetectionFor
) -> list[RuleProposal]:
    """Indicator mappings, tighter thresholds and monitoring gaps, most useful first."""
    proposals = [
        *_mappings(inputs, indicators),
        *_thresholds(inputs, detection),
        *_gaps(inputs),
    ]
    return list({p.key: p for p in proposals}.values())[:MAX_PROPOSALS]


def _mappings(inputs: LessonInputs, indicators: IndicatorRules) -> list[RuleProposal]:
    kind = inputs.confirmed_type
    if kind is IncidentType.UNKNOWN_AI_INCIDENT:
        return []
    proposals = []
    for raw in inputs.indicators_seen:
        name = normalize_indicator(raw)
        if not is_indicator_name(name) or name in indicators.table:
            continue
        proposals.append(
            RuleProposal(
                kind=ProposalKind.INDICATOR_MAPPING,
                key=_key("indicator", name, kind.value),
                payload={"indicator": name, "incident_type": kind.value},
                rationale=f"`{name}` was in the alerts of incident #{inputs.incident_number}, "
                f"whose confirmed root cause is {kind.label.lower()}; the classifier does not "
                "know this indicator, so a similar alert is classified without it.",
            )
        )
    return proposals


def _thresholds(inputs: LessonInputs, detection: DetectionFor) -> list[RuleProposal]:
    proposals = []
    for seen in inputs.anomalies:
        rules = detection(seen.model, seen.metric)
        parameter = seen.parameter
        current, tighter = _tighten(rules, seen.metric, parameter)
        if current is None or tighter is None:
            continue
        proposals.append(
            RuleProposal(
                kind=ProposalKind.THRESHOLD,
                key=_key("threshold", seen.model, seen.metric, parameter.value),
                payload={
                    "model": seen.model,
                    "metric": seen.metric,
                    "parameter": parameter.value,
                    "from": current,
                    "to": tighter,
                },
                rationale=f"The detector flagged `{seen.metric}` on `{seen.model}` during "
                f"incident #{inputs.incident_number} (value {seen.value:g}); a tighter "
                f"{_PARAMETER_LABEL[parameter]} for this model flags the next one sooner.",
            )
        )
    return proposals


def _tighten(
    rules: DetectionRules, metric: str, parameter: Parameter
) -> tuple[float | None, float | None]:
    """The number in force and the tighter one proposed (None when it cannot tighten)."""
    if parameter is Parameter.Z_THRESHOLD:
        current = rules.z_threshold
        proposed = max(Z_FLOOR, round(current - Z_STEP, 3))
        return current, proposed if proposed < current else None
    if parameter is Parameter.PSI_THRESHOLD:
        current = rules.psi_threshold
        proposed = max(PSI_FLOOR, round(current - PSI_STEP, 3))
        return current, proposed if proposed < current else None
    spec = rules.spec_for(metric)
    if spec.limit is None:
        return None, None
    down = spec.bad_direction is Direction.DOWN
    factor = 1 + LIMIT_STEP if down else 1 - LIMIT_STEP
    proposed = round(spec.limit * factor, 4)
    return spec.limit, proposed if proposed != spec.limit else None


def _gaps(inputs: LessonInputs) -> list[RuleProposal]:
    proposals = []
    watched = inputs.monitored | {(a.model, a.metric) for a in inputs.anomalies}
    for kind in dict.fromkeys((inputs.confirmed_type, *inputs.cause_types)):
        metrics = WATCH_METRICS.get(kind)
        if not metrics:
            continue
        others = ", ".join(f"`{metric}`" for metric in metrics[1:])
        also = f" (nor {others})" if others else ""
        for model in inputs.models:
            if any((model, metric) in watched for metric in metrics):
                continue
            proposals.append(
                RuleProposal(
                    kind=ProposalKind.MONITORING_GAP,
                    key=_key("gap", model, metrics[0]),
                    payload={"model": model, "metric": metrics[0], "incident_type": kind.value},
                    rationale=f"Nothing sends `{metrics[0]}`{also} for `{model}`, so the "
                    f"detector could not see the {kind.label.lower()} of incident "
                    f"#{inputs.incident_number} coming.",
                )
            )
    return proposals


_PARAMETER_LABEL = {
    Parameter.Z_THRESHOLD: "z threshold",
    Parameter.PSI_THRESHOLD: "PSI threshold",
    Parameter.LIMIT: "limit",
}


def describe(kind: ProposalKind, payload: Mapping[str, Any]) -> str:
    """One line saying what the rule does."""
    if kind is ProposalKind.INDICATOR_MAPPING:
        label = IncidentType(payload["incident_type"]).label.lower()
        return f"Classify indicator `{payload['indicator']}` as {label}"
    if kind is ProposalKind.THRESHOLD:
        parameter = Parameter(payload["parameter"])
        where = f"`{payload['metric']}` on `{payload['model']}`"
        if parameter is Parameter.Z_THRESHOLD:
            return f"Flag {where} at |z| ≥ {payload['to']:g} (was {payload['from']:g})"
        if parameter is Parameter.PSI_THRESHOLD:
            return f"Flag drift of {where} at PSI ≥ {payload['to']:g} (was {payload['from']:g})"
        return f"Flag {where} at {payload['to']:g} (limit was {payload['from']:g})"
    return (
        f"Monitor `{payload['metric']}` for `{payload['model']}` "
        "(send samples to /webhooks/metrics)"
    )


# --- the rules in force ----------------------------------------------------------------


@dataclass(frozen=True)
class Lessons:
    """The applied proposals, as changes to classification and detection."""

    mappings: tuple[tuple[str, IncidentType], ...] = ()
    thresholds: tuple[tuple[str, str, Parameter, float], ...] = ()
    gaps: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_records(cls, records: Iterable[ProposalRecord]) -> Lessons:
        mappings: list[tuple[str, IncidentType]] = []
        thresholds: list[tuple[str, str, Parameter, float]] = []
        gaps: list[tuple[str, str]] = []
        for record in records:
            if record.state is not ProposalState.APPLIED:
                continue
            p = record.payload
            if record.kind is ProposalKind.INDICATOR_MAPPING:
                mappings.append(
                    (normalize_indicator(p["indicator"]), IncidentType(p["incident_type"]))
                )
            elif record.kind is ProposalKind.THRESHOLD:
                thresholds.append(
                    (
                        str(p["model"]),
                        normalize_metric_name(str(p["metric"])),
                        Parameter(p["parameter"]),
                        float(p["to"]),
                    )
                )
            else:
                gaps.append((str(p["model"]), str(p["metric"])))
        return cls(tuple(mappings), tuple(thresholds), tuple(gaps))

    def indicator_rules(self, base: IndicatorRules) -> IndicatorRules:
        """The base indicator table with the applied mappings added."""
        if not self.mappings:
            return base
        table = {name: tuple(types) for name, types in base.table.items()}
        for name, kind in self.mappings:
            if kind not in table.get(name, ()):
                table[name] = (*table.get(name, ()), kind)
        return IndicatorRules(table=table)

    def tunes(self, model: str, metric: str) -> bool:
        metric = normalize_metric_name(metric)
        return any(m == model and n == metric for m, n, _, _ in self.thresholds)

    def detection_rules(self, base: DetectionRules, model: str, metric: str) -> DetectionRules:
        """The detector's rules for one model's metric: tighter where a lesson says so."""
        metric = normalize_metric_name(metric)
        rules = base
        for lesson_model, lesson_metric, parameter, value in self.thresholds:
            if (lesson_model, lesson_metric) != (model, metric):
                continue
            if parameter is Parameter.Z_THRESHOLD:
                rules = replace(rules, z_threshold=min(rules.z_threshold, value))
            elif parameter is Parameter.PSI_THRESHOLD:
                rules = replace(rules, psi_threshold=min(rules.psi_threshold, value))
            else:
                spec = rules.spec_for(metric)
                if spec.limit is None:
                    tighter = value
                elif spec.bad_direction is Direction.DOWN:
                    tighter = max(spec.limit, value)
                else:
                    tighter = min(spec.limit, value)
                metrics = {**rules.metrics, metric: replace(spec, limit=tighter)}
                rules = replace(rules, metrics=metrics)
        return rules


def _key(*parts: str) -> str:
    key = ":".join(parts)
    if len(key) <= MAX_KEY:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return f"{key[: MAX_KEY - 18]}~{digest}"


def _float_or_none(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    return float(value)


def indicators_by_type(rules: IndicatorRules) -> dict[IncidentType, list[str]]:
    """The indicator table turned around: type → its indicators, in table order."""
    by_type: dict[IncidentType, list[str]] = {}
    for name, kinds in rules.table.items():
        for kind in kinds:
            by_type.setdefault(kind, []).append(name)
    return by_type
