"""Root-cause analysis as pure functions: each analysis at its edges, reading alerts from every
monitor, the facts form, the causal chain and its correction."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from bot.domain.rca import (
    AlertReading,
    AlertSeen,
    CausalChain,
    Change,
    Correction,
    Finding,
    FindingKind,
    FormError,
    IncidentEvidence,
    Observation,
    RcaFacts,
    RcaThresholds,
    Signal,
    analyse,
    build_chain,
    correct_chain,
    correction_from_form,
    data_findings,
    external_findings,
    facts_from_form,
    model_findings,
    parse_changes,
    parse_score,
    prefill_facts,
    read_alerts,
    system_findings,
    user_findings,
)
from bot.domain.vocabulary import IncidentType, Severity

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
LIMITS = RcaThresholds()


def evidence(
    *observations: Observation,
    indicators: tuple[str, ...] = (),
    kind: IncidentType = IncidentType.UNKNOWN_AI_INCIDENT,
    first_alert_at: datetime | None = T0,
) -> IncidentEvidence:
    return IncidentEvidence(
        incident_type=kind,
        title="Vision model misbehaves",
        declared_at=T0 + timedelta(minutes=5),
        reading=AlertReading(
            observations=observations,
            indicators=indicators,
            first_alert_at=first_alert_at,
            first_alert_title="Adversarial score high on vision-v3",
        ),
        classified_indicators=(),
        explanation="No indicator matched.",
    )


def seen(signal: Signal, value: float) -> Observation:
    return Observation(signal, value, "alert “x” at 09:30 UTC", "vision-v3", T0)


def kinds(findings: list[Finding]) -> list[FindingKind]:
    return [f.kind for f in findings]


# --- model behaviour -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("drift", "found"), [(0.15, False), (0.1501, True), (0.0, False), (0.9, True), (None, False)]
)
def test_drift_above_the_threshold_is_high_model_drift(drift: float | None, found: bool) -> None:
    findings = model_findings(evidence(), RcaFacts(drift_score=drift), LIMITS)
    assert kinds(findings) == ([FindingKind.MODEL_DRIFT] if found else [])
    if found:
        assert findings[0].severity is Severity.HIGH
        assert findings[0].incident_type is IncidentType.MODEL_DRIFT


@pytest.mark.parametrize(("score", "found"), [(0.7, False), (0.7001, True), (1.0, True)])
def test_an_adversarial_score_above_the_threshold_is_a_critical_attack(
    score: float, found: bool
) -> None:
    findings = model_findings(evidence(), RcaFacts(adversarial_score=score), LIMITS)
    assert kinds(findings) == ([FindingKind.ADVERSARIAL_ATTACK] if found else [])
    if found:
        assert findings[0].severity is Severity.CRITICAL


@pytest.mark.parametrize(("days", "found"), [(90, False), (91, True), (0, False), (400, True)])
def test_training_more_than_ninety_days_before_the_incident_is_stale(
    days: int, found: bool
) -> None:
    trained = T0.date() - timedelta(days=days)
    findings = model_findings(evidence(), RcaFacts(last_trained=trained), LIMITS)
    assert kinds(findings) == ([FindingKind.STALE_TRAINING_DATA] if found else [])
    if found:
        assert findings[0].severity is Severity.MEDIUM
        assert f"{days} days" in findings[0].evidence[0]


def test_thresholds_come_from_configuration() -> None:
    strict = RcaThresholds(drift=0.05, adversarial=0.5, stale_training_days=10)
    facts = RcaFacts(drift_score=0.1, adversarial_score=0.6, last_trained=T0.date() - timedelta(11))
    assert model_findings(evidence(), facts, LIMITS) == []
    assert len(model_findings(evidence(), facts, strict)) == 3


def test_a_score_seen_in_an_alert_names_the_alert_and_a_typed_one_says_so() -> None:
    alerting = evidence(seen(Signal.ADVERSARIAL_SCORE, 0.91))
    [from_alert] = model_findings(alerting, RcaFacts(adversarial_score=0.91), LIMITS)
    assert "alert “x”" in from_alert.evidence[0]
    [typed] = model_findings(alerting, RcaFacts(adversarial_score=0.95), LIMITS)
    assert "entered by responders" in typed.evidence[0]


# --- data ------------------------------------------------------------------------------


def test_data_quality_indicators_are_a_medium_finding() -> None:
    [finding] = data_findings(evidence(indicators=("null_rate_spike", "latency_spike")), RcaFacts())
    assert finding.kind is FindingKind.DATA_QUALITY and finding.severity is Severity.MEDIUM
    assert "null_rate_spike" in finding.evidence[0] and "latency_spike" not in finding.evidence[0]


def test_poisoning_signs_are_high_and_untrusted_sources_are_evidence() -> None:
    facts = RcaFacts(training_data="Support tickets; scraped public forums")
    [finding] = data_findings(evidence(indicators=("label_flip",)), facts)
    assert finding.kind is FindingKind.DATA_POISONING
    assert finding.incident_type is IncidentType.DATA_POISONING
    assert "scraped" in finding.evidence[1]
    [plain] = data_findings(evidence(indicators=("label_flip",)), RcaFacts())
    assert len(plain.evidence) == 1


def test_no_data_indicator_no_data_finding() -> None:
    assert data_findings(evidence(indicators=("latency_spike",)), RcaFacts()) == []


# --- users -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("similar", "principals", "found"),
    [(20, 3, True), (19, 3, False), (20, 4, False), (500, 1, True)],
)
def test_many_similar_prompts_from_few_principals_is_a_campaign(
    similar: float, principals: float, found: bool
) -> None:
    facts = evidence(
        seen(Signal.SIMILAR_PROMPTS, similar),
        seen(Signal.PRINCIPALS, principals),
        kind=IncidentType.JAILBREAK_ATTEMPT,
    )
    findings = user_findings(facts, LIMITS)
    assert kinds(findings) == ([FindingKind.PROMPT_CAMPAIGN] if found else [])
    if found:
        assert findings[0].incident_type is IncidentType.JAILBREAK_ATTEMPT


def test_similar_prompts_without_knowing_the_principals_is_no_campaign() -> None:
    assert user_findings(evidence(seen(Signal.SIMILAR_PROMPTS, 900)), LIMITS) == []


def test_the_fewest_principals_reported_count() -> None:
    facts = evidence(
        seen(Signal.SIMILAR_PROMPTS, 40), seen(Signal.PRINCIPALS, 9), seen(Signal.PRINCIPALS, 2)
    )
    assert kinds(user_findings(facts, LIMITS)) == [FindingKind.PROMPT_CAMPAIGN]


@pytest.mark.parametrize(("queries", "found"), [(99, False), (100, True)])
def test_a_burst_of_high_precision_queries_is_extraction(queries: float, found: bool) -> None:
    findings = user_findings(evidence(seen(Signal.HIGH_PRECISION_QUERIES, queries)), LIMITS)
    assert kinds(findings) == ([FindingKind.EXTRACTION_BURST] if found else [])
    if found:
        assert findings[0].incident_type is IncidentType.MODEL_EXTRACTION


# --- system state and external factors -------------------------------------------------


@pytest.mark.parametrize(
    ("before", "found"),
    [
        (timedelta(hours=2), True),
        (timedelta(hours=2, minutes=1), False),
        (timedelta(0), True),
        (timedelta(minutes=-1), False),
    ],
)
def test_a_change_within_the_window_before_the_first_alert_is_a_suspect(
    before: timedelta, found: bool
) -> None:
    facts = RcaFacts(changes=(Change("deploy vision-v3.2", T0 - before),))
    findings = system_findings(evidence(), facts, LIMITS)
    assert kinds(findings) == ([FindingKind.RECENT_CHANGE] if found else [])


def test_a_change_without_a_time_is_no_suspect_and_closest_comes_first() -> None:
    facts = RcaFacts(
        changes=(
            Change("config: raise temperature", T0 - timedelta(minutes=90)),
            Change("deploy v3.2", T0 - timedelta(minutes=10)),
            Change("someone touched something"),
        )
    )
    findings = system_findings(evidence(), facts, LIMITS)
    assert [f.summary.split(": ", 1)[1] for f in findings] == [
        "deploy v3.2",
        "config: raise temperature",
    ]
    assert "10 min before" in findings[0].evidence[0]


def test_without_alerts_the_declaration_time_is_the_start() -> None:
    facts = RcaFacts(changes=(Change("deploy", T0),))
    assert system_findings(evidence(first_alert_at=None), facts, LIMITS) != []


def test_external_factors_are_low_findings_each() -> None:
    findings = external_findings(RcaFacts(external_factors=("CDN outage", "Black Friday")))
    assert [f.severity for f in findings] == [Severity.LOW, Severity.LOW]
    assert {f.key for f in findings} == {"external_factor:1", "external_factor:2"}


# --- the causal chain ------------------------------------------------------------------


def test_the_chain_has_trigger_primary_cause_factors_and_a_recommendation_per_finding() -> None:
    incident = evidence(seen(Signal.ADVERSARIAL_SCORE, 0.91), indicators=("null_rate_spike",))
    facts = RcaFacts(
        model="vision-v3",
        adversarial_score=0.91,
        drift_score=0.3,
        changes=(Change("deploy vision-v3.2", T0 - timedelta(minutes=20)),),
        external_factors=("A forum posted perturbation recipes",),
    )
    result = analyse(incident, facts, LIMITS)
    chain = result.chain
    assert chain.trigger.finding == "recent_change:1"
    assert "deploy vision-v3.2" in chain.trigger.summary
    assert chain.primary_cause.finding == "adversarial_attack"
    assert chain.primary_type is IncidentType.ADVERSARIAL_ATTACK and chain.established
    factors = [f.finding for f in chain.contributing_factors]
    assert factors == ["model_drift", "data_quality", "external_factor:1"]
    assert [r.finding for r in chain.recommendations][0] == "adversarial_attack"
    assert {r.finding for r in chain.recommendations} == {f.key for f in result.findings}
    assert all(
        link.evidence for link in (chain.trigger, chain.primary_cause, *chain.contributing_factors)
    )


def test_equally_severe_causes_are_ranked_by_priority() -> None:
    incident = evidence(seen(Signal.HIGH_PRECISION_QUERIES, 500))
    chain = analyse(incident, RcaFacts(drift_score=0.4), LIMITS).chain
    assert chain.primary_cause.finding == "extraction_burst"
    assert [f.finding for f in chain.contributing_factors] == ["model_drift"]


def test_a_suspected_trigger_from_responders_wins_and_the_change_becomes_the_cause() -> None:
    facts = RcaFacts(
        suspected_trigger="A jailbreak recipe went viral",
        changes=(Change("raise temperature to 1.2", T0 - timedelta(minutes=5)),),
    )
    chain = analyse(evidence(), facts, LIMITS).chain
    assert chain.trigger.summary == "A jailbreak recipe went viral"
    assert chain.trigger.finding is None
    assert chain.primary_cause.finding == "recent_change:1" and chain.established


def test_without_findings_the_first_alert_triggers_and_the_cause_is_not_established() -> None:
    chain = analyse(evidence(kind=IncidentType.HALLUCINATION_CASCADE), RcaFacts(), LIMITS).chain
    assert chain.trigger.summary.startswith("First alert: Adversarial score high")
    assert not chain.established
    assert chain.primary_type is IncidentType.HALLUCINATION_CASCADE
    assert chain.contributing_factors == () and chain.recommendations == ()


def test_a_cause_without_a_type_takes_the_incidents() -> None:
    chain = build_chain(
        evidence(indicators=("schema_violation",), kind=IncidentType.MODEL_DRIFT),
        RcaFacts(),
        data_findings(evidence(indicators=("schema_violation",)), RcaFacts()),
    )
    assert chain.primary_cause.finding == "data_quality"
    assert chain.primary_type is IncidentType.MODEL_DRIFT


def test_the_chain_and_findings_survive_storage() -> None:
    facts = RcaFacts(
        model="m",
        last_trained=date(2026, 1, 1),
        adversarial_score=0.9,
        changes=(Change("deploy", T0 - timedelta(minutes=3)), Change("unknown time")),
        external_factors=("x",),
    )
    result = analyse(evidence(), facts, LIMITS)
    assert CausalChain.from_dict(result.chain.to_dict()) == result.chain
    assert [Finding.from_dict(f.to_dict()) for f in result.findings] == list(result.findings)
    assert RcaFacts.from_dict(facts.to_dict()) == facts


def test_a_correction_keeps_unchanged_lines_and_their_evidence() -> None:
    facts = RcaFacts(adversarial_score=0.9, drift_score=0.3, external_factors=("CDN outage",))
    chain = analyse(evidence(), facts, LIMITS).chain
    drift = chain.contributing_factors[0]
    corrected = correct_chain(
        chain,
        Correction(
            trigger=chain.trigger.summary,
            primary_cause="A poisoned fine-tuning batch from a partner",
            primary_type=IncidentType.DATA_POISONING,
            contributing_factors=(drift.summary, "No input filter on the upload API"),
        ),
    )
    assert corrected.trigger == chain.trigger
    assert corrected.primary_cause.evidence == ("Corrected by a responder",)
    assert corrected.primary_type is IncidentType.DATA_POISONING
    assert corrected.contributing_factors[0] == drift
    assert corrected.contributing_factors[1].finding is None
    # The adversarial finding left the chain, and its recommendation with it.
    assert [r.finding for r in corrected.recommendations] == ["model_drift"]


# --- reading alerts --------------------------------------------------------------------


def alertmanager(labels: dict[str, str], annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "alert": {"labels": labels, "annotations": annotations, "values": {"B": 0.31}},
        "group": {"commonLabels": {"team": "ml"}},
    }


def test_alerts_of_every_monitor_are_read_for_signals_and_facts() -> None:
    alerts = [
        AlertSeen(
            "alertmanager",
            "Drift on vision-v3",
            T0 + timedelta(minutes=1),
            alertmanager(
                {
                    "model": "vision-v3",
                    "model_version": "3.2.0",
                    "drift_score": "0.31",
                    "indicator": "feature_drift, Null-Rate-Spike",
                    "last_trained": "2026-05-01",
                },
                {"deploy": "2026-11-26T09:05Z rollout of vision-v3.2"},
            ),
        ),
        AlertSeen(
            "generic_webhook",
            "Adversarial inputs",
            T0,
            {
                "title": "Adversarial inputs",
                "model": "vision-v3",
                "indicators": ["gradient_probe"],
                "metrics": {"adversarial_score": 0.91, "similar_prompts": 44},
                "evidence": {"distinct_keys": 2},
            },
        ),
        AlertSeen(
            "anomaly_detector",
            "vision-v3: high_precision_queries rose",
            T0 + timedelta(minutes=2),
            {
                "fingerprint": "anomaly:vision-v3:high_precision_queries:security",
                "model": "vision-v3",
                "metric": "high_precision_queries",
                "value": 140.0,
                "indicators": ["high_precision_queries"],
                "psi": None,
            },
        ),
    ]
    reading = read_alerts(alerts)
    assert reading.first_alert_at == T0 and reading.first_alert_title == "Adversarial inputs"
    assert reading.models == ("vision-v3",)
    assert reading.model_versions == ("3.2.0",)
    assert reading.last_trained == date(2026, 5, 1)
    assert reading.changes == (
        Change("rollout of vision-v3.2", datetime(2026, 11, 26, 9, 5, tzinfo=UTC)),
    )
    assert reading.indicators == (
        "gradient_probe",
        "feature_drift",
        "null_rate_spike",
        "high_precision_queries",
    )
    values = {o.signal: o.value for o in reading.observations}
    assert values == {
        Signal.DRIFT_SCORE: 0.31,
        Signal.ADVERSARIAL_SCORE: 0.91,
        Signal.SIMILAR_PROMPTS: 44,
        Signal.PRINCIPALS: 2,
        Signal.HIGH_PRECISION_QUERIES: 140,
    }
    facts = prefill_facts(reading)
    assert (facts.model, facts.model_version) == ("vision-v3", "3.2.0")
    assert (facts.drift_score, facts.adversarial_score) == (0.31, 0.91)


def test_a_drift_anomaly_contributes_its_psi_not_its_mean() -> None:
    raw = {
        "fingerprint": "anomaly:m:input_drift:drift",
        "model": "m",
        "metric": "input_drift",
        "value": 12.5,
        "psi": 0.42,
    }
    reading = read_alerts([AlertSeen("anomaly_detector", "drift", T0, raw)])
    assert [(o.signal, o.value) for o in reading.observations] == [(Signal.DRIFT_SCORE, 0.42)]


def test_nothing_known_in_the_alerts_prefills_only_the_affected_model() -> None:
    reading = read_alerts([AlertSeen("generic_webhook", "x", T0, {"title": "x", "n": [1]})])
    assert reading.observations == ()
    assert prefill_facts(reading, affected=("support-bot",)).model == "support-bot"
    assert prefill_facts(read_alerts([])).model == ""


# --- the forms -------------------------------------------------------------------------


def test_changes_are_read_one_per_line_with_or_without_a_time() -> None:
    text = (
        "2026-11-25 23:50 config: max_tokens 4096\n09:10 — deploy v2.3\n\n• rotated keys\n25:99 x"
    )
    changes = parse_changes(text, day=T0.date())
    assert changes == (
        Change("config: max_tokens 4096", datetime(2026, 11, 25, 23, 50, tzinfo=UTC)),
        Change("deploy v2.3", datetime(2026, 11, 26, 9, 10, tzinfo=UTC)),
        Change("rotated keys"),
        Change("25:99 x"),
    )


@pytest.mark.parametrize(("text", "value"), [("", None), (" 0.31 ", 0.31), ("1", 1.0)])
def test_scores_are_numbers_or_empty(text: str, value: float | None) -> None:
    assert parse_score(text, field="s", upper=1.0) == value


@pytest.mark.parametrize("text", ["high", "-0.1", "1.5", "nan", "inf"])
def test_a_bad_score_names_its_field(text: str) -> None:
    with pytest.raises(FormError) as raised:
        parse_score(text, field="adversarial_score", upper=1.0)
    assert raised.value.field == "adversarial_score"


def test_the_facts_form_is_read_and_checked() -> None:
    facts = facts_from_form(
        {
            "model": " vision-v3 ",
            "last_trained": "2026-01-02",
            "changes": "09:00 deploy",
            "drift_score": "0.2",
            "external_factors": "- CDN outage\n\n",
        },
        day=T0.date(),
        today=T0.date(),
    )
    assert facts.model == "vision-v3" and facts.last_trained == date(2026, 1, 2)
    assert facts.changes == (Change("deploy", datetime(2026, 11, 26, 9, 0, tzinfo=UTC)),)
    assert facts.drift_score == 0.2 and facts.adversarial_score is None
    assert facts.external_factors == ("CDN outage",)
    with pytest.raises(FormError) as future:
        facts_from_form({"last_trained": "2027-01-01"}, day=T0.date(), today=T0.date())
    assert future.value.field == "last_trained"


def test_the_correction_form_needs_a_primary_cause_and_a_type() -> None:
    with pytest.raises(FormError) as empty:
        correction_from_form({"primary_cause": " ", "primary_type": "model_drift"})
    assert empty.value.field == "primary_cause"
    with pytest.raises(FormError) as typeless:
        correction_from_form({"primary_cause": "x", "primary_type": "nonsense"})
    assert typeless.value.field == "primary_type"
    correction = correction_from_form(
        {"primary_cause": "x", "primary_type": "model_drift", "contributing_factors": "a\n\n• b"}
    )
    assert correction.contributing_factors == ("a", "b") and correction.trigger == "Not known"
