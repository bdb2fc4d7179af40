"""Lessons learned feeding back into detection: what a confirmed root cause proposes, and how
applied proposals change the next classification and the detector's thresholds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import OperationalError

from bot.classifier import build_classifier
from bot.detection_settings import DetectionSettings
from bot.domain.anomaly import DetectionRules, Sample, observe
from bot.domain.classification import IndicatorRules
from bot.domain.rule_proposals import (
    MAX_PROPOSALS,
    AnomalySeen,
    LessonInputs,
    Lessons,
    ProposalKind,
    ProposalRecord,
    ProposalState,
    RuleProposal,
    describe,
    propose_rules,
)
from bot.domain.vocabulary import IncidentType
from bot.services.rules import AppliedRules

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
DETECTION = DetectionSettings().to_rules()
ADVERSARIAL = IncidentType.ADVERSARIAL_ATTACK


class FakeModel:
    """A text model that reads every text as performance degradation, unsure."""

    def rank(self, text: str) -> list[tuple[IncidentType, float]]:
        return [(IncidentType.PERFORMANCE_DEGRADATION, 0.4)] if text.strip() else []

    def rank_many(self, texts: Sequence[str]) -> list[list[tuple[IncidentType, float]]]:
        return [self.rank(text) for text in texts]

    def prepare(self) -> None:
        """Nothing to prepare."""


def inputs(**changes: object) -> LessonInputs:
    base: dict[str, object] = {
        "incident_number": 7,
        "confirmed_type": ADVERSARIAL,
        "cause_types": (),
        "indicators_seen": (),
        "anomalies": (),
        "models": (),
        "monitored": frozenset(),
    }
    base.update(changes)
    return LessonInputs(**base)  # type: ignore[arg-type]


def propose(lesson: LessonInputs, rules: IndicatorRules | None = None) -> list[RuleProposal]:
    indicators = rules or build_classifier(model=FakeModel()).rules
    return propose_rules(lesson, indicators=indicators, detection=lambda m, n: DETECTION)


def applied(*proposals: RuleProposal) -> list[ProposalRecord]:
    return [
        ProposalRecord(
            id=i,
            incident_id=1,
            incident_number=7,
            kind=p.kind,
            key=p.key,
            payload=p.payload,
            rationale=p.rationale,
            state=ProposalState.APPLIED,
            created_at=T0,
            decided_by="U0COMMANDER",
            decided_at=T0,
        )
        for i, p in enumerate(proposals, start=1)
    ]


# --- proposing -------------------------------------------------------------------------


def test_an_unknown_indicator_is_proposed_for_the_confirmed_type() -> None:
    [proposal] = propose(inputs(indicators_seen=("Gradient-Probe",)))
    assert proposal.kind is ProposalKind.INDICATOR_MAPPING
    assert proposal.payload == {"indicator": "gradient_probe", "incident_type": ADVERSARIAL.value}
    assert proposal.key == "indicator:gradient_probe:adversarial_attack"
    assert "#7" in proposal.rationale
    assert proposal.summary == "Classify indicator `gradient_probe` as adversarial attack"


def test_known_or_malformed_indicators_and_an_unknown_type_propose_nothing() -> None:
    assert propose(inputs(indicators_seen=("latency_spike", "input_perturbation", "?!"))) == []
    unknown = inputs(
        confirmed_type=IncidentType.UNKNOWN_AI_INCIDENT, indicators_seen=("gradient_probe",)
    )
    assert propose(unknown) == []


def test_a_flagged_limit_is_tightened_for_that_model() -> None:
    anomaly = AnomalySeen("vision-v3", "adversarial_score", 0.91, limit=0.7)
    [proposal] = propose(inputs(anomalies=(anomaly,)))
    assert proposal.kind is ProposalKind.THRESHOLD
    assert proposal.payload == {
        "model": "vision-v3",
        "metric": "adversarial_score",
        "parameter": "limit",
        "from": 0.7,
        "to": 0.63,
    }
    assert proposal.summary == "Flag `adversarial_score` on `vision-v3` at 0.63 (limit was 0.7)"


def test_z_and_psi_thresholds_tighten_but_never_below_their_floor() -> None:
    lesson = inputs(
        anomalies=(
            AnomalySeen("m", "latency_ms", 900, z=4.2),
            AnomalySeen("m", "input_drift", 3.0, psi=0.3),
        )
    )
    z, psi = propose(lesson)
    assert (z.payload["parameter"], z.payload["to"]) == ("z_threshold", 2.5)
    assert (psi.payload["parameter"], psi.payload["to"]) == ("psi_threshold", 0.1)
    floor = DetectionRules(z_threshold=2.0, psi_threshold=0.05)
    assert (
        propose_rules(
            lesson,
            indicators=build_classifier(model=FakeModel()).rules,
            detection=lambda m, n: floor,
        )
        == []
    )


def test_a_metric_nobody_sends_for_the_model_is_a_monitoring_gap() -> None:
    lesson = inputs(
        models=("vision-v3", "ocr-v1"), monitored=frozenset({("ocr-v1", "adversarial_score")})
    )
    [gap] = propose(lesson)
    assert gap.kind is ProposalKind.MONITORING_GAP
    assert gap.payload == {
        "model": "vision-v3",
        "metric": "adversarial_score",
        "incident_type": ADVERSARIAL.value,
    }


def test_contributing_causes_add_their_own_gaps_and_flagged_metrics_are_watched() -> None:
    lesson = inputs(
        models=("m",),
        cause_types=(IncidentType.MODEL_DRIFT,),
        anomalies=(AnomalySeen("m", "adversarial_score", 0.9, limit=0.7),),
    )
    kinds = [(p.kind, p.payload.get("metric")) for p in propose(lesson)]
    assert kinds == [
        (ProposalKind.THRESHOLD, "adversarial_score"),
        (ProposalKind.MONITORING_GAP, "input_drift"),
    ]


def test_proposals_are_unique_and_capped() -> None:
    many = tuple(f"probe_{i}" for i in range(30)) + ("probe_1",)
    proposals = propose(inputs(indicators_seen=many))
    assert len(proposals) == MAX_PROPOSALS
    assert len({p.key for p in proposals}) == MAX_PROPOSALS


def test_a_long_key_is_shortened_to_fit_its_column() -> None:
    [proposal] = propose(inputs(models=("m" * 400,)))
    assert len(proposal.key) <= 200


def test_every_kind_describes_itself() -> None:
    assert describe(ProposalKind.MONITORING_GAP, {"model": "m", "metric": "x"}).startswith(
        "Monitor `x` for `m`"
    )
    z = {"model": "m", "metric": "x", "parameter": "z_threshold", "from": 3, "to": 2.5}
    assert describe(ProposalKind.THRESHOLD, z) == "Flag `x` on `m` at |z| ≥ 2.5 (was 3)"


# --- applied ---------------------------------------------------------------------------


def test_an_applied_mapping_changes_the_next_classification() -> None:
    base = build_classifier(model=FakeModel())
    before = base.classify(title="Canary check failed", indicators=("gradient_probe",))
    assert before.incident_type is not ADVERSARIAL and "gradient_probe" not in before.indicators

    [mapping] = propose(inputs(indicators_seen=("gradient_probe",)))
    lessons = Lessons()
    learning = build_classifier(
        model=FakeModel(), lessons=lambda rules: lessons.indicator_rules(rules)
    )
    assert learning.classify(title="Canary check failed", indicators=("gradient_probe",)) == before

    lessons = Lessons.from_records(applied(mapping))  # applied: no restart, no new classifier
    after = learning.classify(title="Canary check failed", indicators=("gradient_probe",))
    assert after.incident_type is ADVERSARIAL
    assert after.indicators == ("gradient_probe",) and after.method == "rules"
    # Written out in a title it counts too, like any indicator.
    assert learning.classify(title="gradient probe seen on vision").incident_type is ADVERSARIAL


def test_proposed_and_dismissed_records_change_nothing() -> None:
    [mapping] = propose(inputs(indicators_seen=("gradient_probe",)))
    [record] = applied(mapping)
    for state in (ProposalState.PROPOSED, ProposalState.DISMISSED):
        assert Lessons.from_records([replace(record, state=state)]) == Lessons()


def samples(values: Sequence[float], model: str = "vision-v3") -> list[Sample]:
    return [
        Sample(model, "adversarial_score", v, T0 + timedelta(minutes=i))
        for i, v in enumerate(values)
    ]


def flagged(
    rules_for: Callable[[str, str], DetectionRules],
    values: Sequence[float],
    model: str = "vision-v3",
) -> list[float]:
    baseline = None
    raised = []
    for sample in samples(values, model):
        rules = rules_for(sample.model, sample.metric)
        baseline, anomaly = observe(baseline, sample, rules)
        if anomaly is not None:
            raised.append(anomaly.value)
    return raised


def test_an_applied_limit_changes_detection_for_that_model_only() -> None:
    anomaly = AnomalySeen("vision-v3", "adversarial_score", 0.91, limit=0.7)
    [limit] = propose(inputs(anomalies=(anomaly,)))
    lessons = Lessons.from_records(applied(limit))
    series = [0.2, 0.65, 0.3, 0.66]

    def tuned(model: str, metric: str) -> DetectionRules:
        return lessons.detection_rules(DETECTION, model, metric)

    assert flagged(lambda m, n: DETECTION, series) == []
    assert flagged(tuned, series) == [0.65, 0.66]
    assert flagged(tuned, series, model="other-model") == []
    assert lessons.tunes("vision-v3", "Adversarial-Score") and not lessons.tunes("x", "y")


def test_applied_thresholds_only_ever_tighten() -> None:
    z = RuleProposal(
        ProposalKind.THRESHOLD,
        "k",
        {"model": "m", "metric": "latency_ms", "parameter": "z_threshold", "from": 3, "to": 4.0},
        "",
    )
    psi = RuleProposal(
        ProposalKind.THRESHOLD,
        "p",
        {
            "model": "m",
            "metric": "latency_ms",
            "parameter": "psi_threshold",
            "from": 0.15,
            "to": 0.1,
        },
        "",
    )
    rules = Lessons.from_records(applied(z, psi)).detection_rules(DETECTION, "m", "latency_ms")
    assert rules.z_threshold == 3.0 and rules.psi_threshold == 0.1


def test_monitoring_gaps_are_listed_not_enforced() -> None:
    [gap] = propose(inputs(models=("m",)))
    lessons = Lessons.from_records(applied(gap))
    assert lessons.gaps == (("m", "adversarial_score"),)
    assert lessons.detection_rules(DETECTION, "m", "adversarial_score") is DETECTION


# --- the in-process cache --------------------------------------------------------------


class FakeStore:
    """The rule_proposals table as the cache reads it, counting the reads."""

    def __init__(self) -> None:
        self.records: list[ProposalRecord] = []
        self.reads = 0
        self.down = False

    def in_state(self, state: ProposalState) -> list[ProposalRecord]:
        if self.down:
            raise OperationalError("SELECT", {}, Exception("database is locked"))
        self.reads += 1
        return [r for r in self.records if r.state is state]

    def __call__(self, *, read_only: bool = False) -> FakeStore:
        return self

    def __enter__(self) -> FakeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @property
    def rule_proposals(self) -> FakeStore:
        return self


class SteppingClock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at


def test_the_cache_loads_once_reloads_when_old_and_at_once_after_an_apply() -> None:
    store, clock = FakeStore(), SteppingClock()
    cache = AppliedRules(uow=store, clock=clock, detection=DETECTION)  # type: ignore[arg-type]
    base = build_classifier(model=FakeModel()).rules
    assert cache.indicator_rules(base) is base and store.reads == 1
    [mapping] = propose(inputs(indicators_seen=("gradient_probe",)))
    store.records = applied(mapping)  # applied by another replica
    assert "gradient_probe" not in cache.indicator_rules(base).table and store.reads == 1
    clock.at += timedelta(seconds=31)
    assert "gradient_probe" in cache.indicator_rules(base).table and store.reads == 2
    assert cache.indicator_rules(base) is cache.indicator_rules(base)  # merged once
    store.records = []
    cache.refresh()  # this process applied or learned something: at once
    assert "gradient_probe" not in cache.indicator_rules(base).table


def test_a_database_hiccup_keeps_the_lessons_already_known() -> None:
    store, clock = FakeStore(), SteppingClock()
    [limit] = propose(inputs(anomalies=(AnomalySeen("m", "adversarial_score", 0.9, limit=0.7),)))
    store.records = applied(limit)
    cache = AppliedRules(uow=store, clock=clock, detection=DETECTION)  # type: ignore[arg-type]
    assert (
        cache.detection_rules("m", "adversarial_score").spec_for("adversarial_score").limit == 0.63
    )
    store.down, clock.at = True, clock.at + timedelta(minutes=5)
    assert (
        cache.detection_rules("m", "adversarial_score").spec_for("adversarial_score").limit == 0.63
    )
    assert cache.detection_rules("other", "adversarial_score") is DETECTION
