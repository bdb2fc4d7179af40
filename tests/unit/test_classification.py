"""Classification: indicator rules, the text model, ties, unknowns, severity and taxonomy."""

from __future__ import annotations

import ast
import csv
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.classification_settings import ClassificationSettings
from bot.classifier import build_classifier, packaged_rules, packaged_taxonomy
from bot.domain.classification import (
    METHOD_MODEL,
    METHOD_REPORTER,
    METHOD_RULES,
    METHOD_RULES_AND_MODEL,
    Classifier,
    IndicatorRules,
    Report,
    adjust_severity,
    normalize_indicator,
    risk_score,
)
from bot.domain.vocabulary import IncidentType, Severity
from bot.text_model import shared_text_model

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
ATLAS_CSV = ROOT / "tests" / "data" / "atlas" / "atlas-5.6.0-techniques.csv"
OWASP_ID = re.compile(r"^LLM(0[1-9]|10):(2025|2026)$")
ATLAS_ID = re.compile(r"^AML\.T\d{4}(\.\d{3})?$")
KNOWN_TYPES = [kind for kind in IncidentType if kind is not IncidentType.UNKNOWN_AI_INCIDENT]

L, M, H, C = Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL


class FakeModel:
    """A text model that gives a fixed ranking to any non-empty text."""

    def __init__(self, ranking: Sequence[tuple[IncidentType, float]] = ()) -> None:
        self.ranking = list(ranking)
        self.prepared = False

    def rank(self, text: str) -> list[tuple[IncidentType, float]]:
        return list(self.ranking) if text.strip() else []

    def rank_many(self, texts: Sequence[str]) -> list[list[tuple[IncidentType, float]]]:
        return [self.rank(text) for text in texts]

    def prepare(self) -> None:
        self.prepared = True


def with_model(*ranking: tuple[IncidentType, float], **kwargs: object) -> Classifier:
    settings_ = ClassificationSettings.model_validate(kwargs)
    return build_classifier(settings_, model=FakeModel(ranking))


@pytest.fixture(scope="module")
def real() -> Classifier:
    return build_classifier()


# --- rules -------------------------------------------------------------------------------


def only_indicators_of(kind: IncidentType) -> list[str]:
    rules = build_classifier(model=FakeModel()).rules
    return [name for name in rules.indicators_for(kind) if rules.table[name] == (kind,)]


@pytest.mark.parametrize("kind", KNOWN_TYPES, ids=str)
def test_each_type_is_found_by_its_own_indicators(kind: IncidentType) -> None:
    names = only_indicators_of(kind)
    assert len(names) >= 2
    for name in names:
        result = with_model().classify(title="", indicators=[name])
        assert (result.incident_type, result.method, result.indicators) == (
            kind,
            METHOD_RULES,
            (name,),
        )
        assert result.confidence == 0.75


def test_the_seed_indicators_are_in_the_table() -> None:
    seed = {
        IncidentType.PROMPT_INJECTION: {"unusual_prompts", "system_prompt_leak"},
        IncidentType.DATA_POISONING: {"training_anomaly", "model_drift"},
        IncidentType.ADVERSARIAL_ATTACK: {"input_perturbation", "misclassification_spike"},
        IncidentType.MODEL_EXTRACTION: {"query_pattern_anomaly", "high_precision_queries"},
        IncidentType.HALLUCINATION_CASCADE: {"factuality_drop", "confidence_mismatch"},
        IncidentType.JAILBREAK_ATTEMPT: {"safety_filter_bypass", "role_confusion"},
    }
    table = packaged_rules().indicators
    for kind, names in seed.items():
        assert names <= set(table[kind]), kind


def test_more_indicators_mean_more_confidence() -> None:
    one = with_model().classify(title="", indicators=["latency_spike"])
    two = with_model().classify(title="", indicators=["latency_spike", "error_rate_spike"])
    assert (one.confidence, two.confidence) == (0.75, 0.875)


def test_indicators_are_normalised_and_unknown_ones_ignored() -> None:
    result = with_model().classify(
        title="", indicators=["System-Prompt Leak", "no_such_thing", "  UNUSUAL prompts "]
    )
    assert result.indicators == ("system_prompt_leak", "unusual_prompts")
    assert result.incident_type is IncidentType.PROMPT_INJECTION
    assert normalize_indicator(" Latency--Spike ") == "latency_spike"


def test_unknown_indicators_alone_leave_the_decision_to_the_model() -> None:
    result = with_model((IncidentType.HOSTILE_BEHAVIOR, 0.8)).classify(
        title="The bot was rude", indicators=["made_up_signal"]
    )
    assert (result.incident_type, result.method, result.indicators) == (
        IncidentType.HOSTILE_BEHAVIOR,
        METHOD_MODEL,
        (),
    )


@pytest.mark.parametrize(
    "title",
    [
        "Latency spike on the checkout model",
        "latency-spike on the checkout model",
        "LATENCY_SPIKE on the checkout model",
    ],
)
def test_indicator_names_written_in_the_text_count_as_indicators(title: str) -> None:
    result = with_model((IncidentType.MODEL_DRIFT, 0.9)).classify(title=title)
    assert result.indicators == ("latency_spike",)
    assert result.incident_type is IncidentType.PERFORMANCE_DEGRADATION


def test_indicator_words_must_be_whole_words() -> None:
    rules = IndicatorRules.from_types({IncidentType.PERFORMANCE_DEGRADATION: ["latency_spike"]})
    assert rules.match((), "latency spikes all day") == ()
    assert rules.match((), "a latency spike, again") == ("latency_spike",)


def test_rules_win_over_a_disagreeing_model_and_the_explanation_shows_both() -> None:
    result = with_model((IncidentType.HOSTILE_BEHAVIOR, 0.9)).classify(
        title="Odd replies", indicators=["system_prompt_leak"]
    )
    assert (result.incident_type, result.method) == (
        IncidentType.PROMPT_INJECTION,
        METHOD_RULES,
    )
    assert "system_prompt_leak" in result.explanation
    assert "hostile behavior at 0.90" in result.explanation


def test_rules_and_an_agreeing_model_combine_their_confidence() -> None:
    result = with_model((IncidentType.PROMPT_INJECTION, 0.6)).classify(
        title="Odd replies", indicators=["system_prompt_leak"]
    )
    assert result.method == METHOD_RULES_AND_MODEL
    assert result.confidence == pytest.approx(1 - 0.25 * 0.4)
    assert "agrees" in result.explanation


# --- ties --------------------------------------------------------------------------------


def test_a_lone_shared_indicator_without_text_goes_to_the_larger_modifier() -> None:
    result = with_model().classify(title="", indicators=["model_drift"])
    assert result.incident_type is IncidentType.DATA_POISONING
    assert result.method == METHOD_RULES
    assert result.confidence == 0.375
    assert "tied with model drift" in result.explanation


def test_the_text_model_breaks_a_tie_between_rule_types() -> None:
    result = with_model(
        (IncidentType.HOSTILE_BEHAVIOR, 0.6),
        (IncidentType.MODEL_DRIFT, 0.3),
        (IncidentType.DATA_POISONING, 0.1),
    ).classify(title="Fraud model", indicators=["model_drift"])
    assert result.incident_type is IncidentType.MODEL_DRIFT
    assert result.method == METHOD_RULES_AND_MODEL
    assert "broke the tie" in result.explanation


@pytest.mark.parametrize(
    ("indicators", "expected"),
    [
        (["model_drift", "training_anomaly"], IncidentType.DATA_POISONING),
        (["model_drift", "distribution_shift"], IncidentType.MODEL_DRIFT),
        (
            ["latency_spike", "error_rate_spike", "toxicity_spike"],
            IncidentType.PERFORMANCE_DEGRADATION,
        ),
    ],
)
def test_the_type_with_most_indicators_wins(indicators: list[str], expected: IncidentType) -> None:
    assert with_model().classify(title="", indicators=indicators).incident_type is expected


# --- the text model ----------------------------------------------------------------------

UNSEEN = {
    IncidentType.PROMPT_INJECTION: "A web page the browsing agent visited told it to ignore the "
    "user and send the chat history elsewhere",
    IncidentType.JAILBREAK_ATTEMPT: "Users posted a role-play prompt that gets the assistant to "
    "ignore its safety rules and explain how to build a weapon",
    IncidentType.DATA_LEAK: "The assistant showed one customer another customer's address and "
    "order history",
    IncidentType.DATA_POISONING: "Someone planted mislabeled records in the training data before "
    "the weekly retrain",
    IncidentType.ADVERSARIAL_ATTACK: "Fraudsters craft small perturbations to transactions so the "
    "fraud classifier scores them as legitimate",
    IncidentType.MODEL_EXTRACTION: "One API key is sending millions of systematic queries and "
    "saving the probabilities, likely to clone our model",
    IncidentType.HALLUCINATION_CASCADE: "The research agent invented sources and the report "
    "writer agent copied them into the customer deliverable",
    IncidentType.MODEL_DRIFT: "Accuracy of the churn model has been slowly declining since the "
    "input distribution changed last quarter",
    IncidentType.HOSTILE_BEHAVIOR: "The support bot insulted a customer and threatened to close "
    "their account",
    IncidentType.SECURITY_BREACH: "An API key for the model gateway was stolen and used from an "
    "unknown IP address",
    IncidentType.PERFORMANCE_DEGRADATION: "p99 latency of the inference API jumped to 12 seconds "
    "and requests are timing out",
    IncidentType.UNKNOWN_AI_INCIDENT: "Something odd is going on with the assistant, details "
    "unclear, needs triage",
}


@pytest.mark.parametrize("kind", list(IncidentType), ids=str)
def test_the_model_reads_free_text_of_each_type(real: Classifier, kind: IncidentType) -> None:
    result = real.classify(title=UNSEEN[kind])
    assert (result.incident_type, result.method, result.indicators) == (kind, METHOD_MODEL, ())
    assert result.confidence >= real.min_model_confidence


def test_title_and_description_are_read_together(real: Classifier) -> None:
    result = real.classify(
        title="Fraud model drifting", description="Approval rate drifted since Tuesday."
    )
    assert result.incident_type is IncidentType.MODEL_DRIFT


# --- unknown -----------------------------------------------------------------------------


def test_empty_text_and_no_indicators_are_unknown(real: Classifier) -> None:
    result = real.classify(title="", description="   ")
    assert result.incident_type is IncidentType.UNKNOWN_AI_INCIDENT
    assert (result.confidence, result.method, result.atlas, result.owasp) == (
        0.0,
        METHOD_MODEL,
        (),
        (),
    )
    assert result.severity is Severity.MEDIUM


@pytest.mark.parametrize("title", ["lunch menu for friday", "🙂🙂🙂", "1234567890"])
def test_off_topic_text_is_unknown(real: Classifier, title: str) -> None:
    assert real.classify(title=title).incident_type is IncidentType.UNKNOWN_AI_INCIDENT


def test_a_low_confidence_reading_becomes_unknown() -> None:
    result = with_model(
        (IncidentType.DATA_LEAK, 0.2), (IncidentType.HOSTILE_BEHAVIOR, 0.1)
    ).classify(title="Something odd with the assistant")
    assert result.incident_type is IncidentType.UNKNOWN_AI_INCIDENT
    assert result.confidence == 0.2
    assert "data leak at 0.20, is below 0.35" in result.explanation


def test_the_confidence_threshold_comes_from_the_settings() -> None:
    ranking = ((IncidentType.DATA_LEAK, 0.5),)
    title = "Customer records in replies"
    assert with_model(*ranking).classify(title=title).incident_type is IncidentType.DATA_LEAK
    strict = with_model(*ranking, min_model_confidence=0.6)
    assert strict.classify(title=title).incident_type is IncidentType.UNKNOWN_AI_INCIDENT


def test_fewer_than_three_words_are_too_little_for_the_model() -> None:
    result = with_model((IncidentType.DATA_POISONING, 0.95)).classify(title="Status check")
    assert result.incident_type is IncidentType.UNKNOWN_AI_INCIDENT
    assert "3 words" in result.explanation


def test_a_model_guess_does_not_raise_the_severity_a_person_chose() -> None:
    guess = with_model((IncidentType.DATA_POISONING, 0.6)).classify(
        title="Odd answers from the scoring service", base_severity=Severity.MEDIUM
    )
    assert guess.incident_type is IncidentType.DATA_POISONING
    assert guess.severity is Severity.MEDIUM
    assert "not enough to raise it" in guess.explanation
    sure = with_model((IncidentType.DATA_POISONING, 0.9)).classify(
        title="Odd answers from the scoring service", base_severity=Severity.MEDIUM
    )
    assert sure.severity is Severity.CRITICAL  # 4 points × 2.0 = 8


@settings(max_examples=60, deadline=None)
@given(title=st.text(max_size=200), description=st.text(max_size=200))
def test_any_text_classifies_without_error(title: str, description: str) -> None:
    result = build_classifier().classify(title=title, description=description)
    assert 0.0 <= result.confidence <= 1.0
    assert result.incident_type in IncidentType
    assert result.explanation.endswith(".")


# --- the reporter's type -----------------------------------------------------------------


def test_a_type_the_reporter_chose_is_kept_with_its_own_severity_and_taxonomy() -> None:
    result = with_model((IncidentType.HOSTILE_BEHAVIOR, 0.9)).classify(
        title="Weights copied",
        indicators=["latency_spike"],
        base_severity=Severity.MEDIUM,
        incident_type=IncidentType.MODEL_EXTRACTION,
    )
    assert (result.incident_type, result.method, result.confidence) == (
        IncidentType.MODEL_EXTRACTION,
        METHOD_REPORTER,
        1.0,
    )
    assert result.indicators == ("latency_spike",)
    assert result.severity is Severity.HIGH
    assert "AML.T0024.002" in result.atlas
    assert "performance degradation" in result.explanation


# --- severity ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "low", "medium", "high"),
    [
        (IncidentType.PROMPT_INJECTION, L, H, C),  # × 1.5
        (IncidentType.DATA_POISONING, M, C, C),  # × 2.0
        (IncidentType.ADVERSARIAL_ATTACK, M, H, C),  # × 1.8
        (IncidentType.MODEL_EXTRACTION, L, H, C),  # × 1.7
        (IncidentType.HALLUCINATION_CASCADE, L, M, C),  # × 1.3
        (IncidentType.JAILBREAK_ATTEMPT, L, H, C),  # × 1.6
        (IncidentType.DATA_LEAK, L, M, H),
        (IncidentType.HOSTILE_BEHAVIOR, L, M, H),
        (IncidentType.SECURITY_BREACH, L, M, H),
        (IncidentType.MODEL_DRIFT, L, M, H),
        (IncidentType.PERFORMANCE_DEGRADATION, L, M, H),
        (IncidentType.UNKNOWN_AI_INCIDENT, L, M, H),
    ],
    ids=lambda v: str(v),
)
def test_each_type_modifier_adjusts_the_base_severity(
    kind: IncidentType, low: Severity, medium: Severity, high: Severity
) -> None:
    classifier = with_model()
    adjusted = [
        classifier.classify(title="", base_severity=base, incident_type=kind).severity
        for base in (L, M, H, C)
    ]
    assert adjusted == [low, medium, high, C]


def test_the_seed_modifiers_are_in_the_rules_file() -> None:
    assert packaged_rules().modifiers == {
        IncidentType.PROMPT_INJECTION: 1.5,
        IncidentType.DATA_POISONING: 2.0,
        IncidentType.ADVERSARIAL_ATTACK: 1.8,
        IncidentType.MODEL_EXTRACTION: 1.7,
        IncidentType.HALLUCINATION_CASCADE: 1.3,
        IncidentType.JAILBREAK_ATTEMPT: 1.6,
    }


def test_the_risk_score_is_points_times_modifier() -> None:
    assert risk_score(Severity.MEDIUM, 1.5) == 6.0
    assert risk_score(Severity.LOW, 2.0) == 4.0
    explanation = (
        with_model()
        .classify(
            title="", base_severity=Severity.MEDIUM, incident_type=IncidentType.PROMPT_INJECTION
        )
        .explanation
    )
    assert "raised from medium to high (risk 4 × 1.5 = 6.0)" in explanation


@settings(max_examples=200, deadline=None)
@given(
    base=st.sampled_from(Severity),
    kind=st.sampled_from(IncidentType),
    modifier=st.floats(min_value=1.0, max_value=10.0),
    personal_data=st.booleans(),
)
def test_severity_is_never_lowered(
    base: Severity, kind: IncidentType, modifier: float, personal_data: bool
) -> None:
    adjusted = adjust_severity(
        base=base, incident_type=kind, modifier=modifier, personal_data=personal_data
    )
    assert adjusted.rank <= base.rank


@pytest.mark.parametrize("kind", [IncidentType.DATA_LEAK, IncidentType.SECURITY_BREACH], ids=str)
def test_personal_data_makes_leaks_and_breaches_at_least_high(kind: IncidentType) -> None:
    classifier = with_model()
    low = classifier.classify(
        title="", base_severity=Severity.LOW, personal_data=True, incident_type=kind
    )
    assert low.severity is Severity.HIGH
    assert "personal data is at least high" in low.explanation
    critical = classifier.classify(
        title="", base_severity=Severity.CRITICAL, personal_data=True, incident_type=kind
    )
    assert critical.severity is Severity.CRITICAL


def test_personal_data_does_not_raise_other_types() -> None:
    result = with_model().classify(
        title="",
        base_severity=Severity.LOW,
        personal_data=True,
        incident_type=IncidentType.HOSTILE_BEHAVIOR,
    )
    assert result.severity is Severity.LOW


def test_without_a_base_severity_medium_is_assumed() -> None:
    result = with_model().classify(title="", indicators=["pii_exposure"])
    assert result.severity is Severity.MEDIUM


# --- settings ----------------------------------------------------------------------------


def test_settings_add_indicators_to_the_packaged_ones() -> None:
    classifier = with_model(indicators={"hostile_behavior": ["Slur Detected"]})
    added = classifier.classify(title="", indicators=["slur-detected"])
    packaged = classifier.classify(title="", indicators=["toxicity_spike"])
    assert added.incident_type is packaged.incident_type is IncidentType.HOSTILE_BEHAVIOR
    assert added.indicators == ("slur_detected",)


def test_settings_may_point_a_packaged_indicator_at_another_type_too() -> None:
    classifier = with_model(indicators={"security_breach": ["data_exfiltration"]})
    result = classifier.classify(title="", indicators=["data_exfiltration"])
    assert "tied with" in result.explanation


def test_settings_may_raise_a_modifier() -> None:
    classifier = with_model(severity_modifiers={"hostile_behavior": 1.5})
    result = classifier.classify(
        title="", base_severity=Severity.MEDIUM, incident_type=IncidentType.HOSTILE_BEHAVIOR
    )
    assert result.severity is Severity.HIGH


@pytest.mark.parametrize(
    "section",
    [
        {"indicatorz": {}},
        {"indicators": {"not_a_type": ["x"]}},
        {"indicators": {"unknown_ai_incident": ["x"]}},
        {"indicators": {"data_leak": ["bad name!"]}},
        {"severity_modifiers": {"data_leak": 0.5}},
        {"min_model_confidence": 1.5},
    ],
)
def test_bad_settings_are_refused(section: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ClassificationSettings.model_validate(section)


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        ClassificationSettings().min_model_confidence = 0.1  # type: ignore[misc]


# --- taxonomy ----------------------------------------------------------------------------


def atlas_names() -> dict[str, str]:
    with ATLAS_CSV.open(newline="", encoding="utf-8") as file:
        return {row["id"]: row["name"] for row in csv.DictReader(file)}


@pytest.mark.parametrize("kind", list(IncidentType), ids=str)
def test_every_type_but_unknown_carries_atlas_ids(kind: IncidentType) -> None:
    result = with_model().classify(title="", incident_type=kind)
    if kind is IncidentType.UNKNOWN_AI_INCIDENT:
        assert (result.atlas, result.owasp) == ((), ())
    else:
        assert result.atlas
        assert all(ATLAS_ID.match(i) for i in result.atlas)
        assert all(OWASP_ID.match(i) for i in result.owasp)


def test_every_atlas_id_in_the_mapping_exists_in_atlas_with_that_name() -> None:
    known = atlas_names()
    taxonomy = packaged_taxonomy()
    mapped = [i for t in (*taxonomy.types.values(), *taxonomy.indicators.values()) for i in t.atlas]
    assert mapped
    assert {i for i in mapped if i not in known} == set()
    assert {i: taxonomy.names[i] for i in mapped if taxonomy.names[i] != known[i]} == {}


def test_every_owasp_id_names_its_edition_and_exists_in_it() -> None:
    taxonomy = packaged_taxonomy()
    mapped = [i for t in (*taxonomy.types.values(), *taxonomy.indicators.values()) for i in t.owasp]
    assert {i for i in mapped if not OWASP_ID.match(i) or i not in taxonomy.names} == set()
    assert taxonomy.names["LLM07:2025"] == "System Prompt Leakage"
    assert taxonomy.names["LLM07:2026"] == "Misinformation"


def test_the_taxonomy_covers_every_type_and_only_known_indicators() -> None:
    taxonomy = packaged_taxonomy()
    table = build_classifier(model=FakeModel()).rules.table
    assert set(taxonomy.types) == set(IncidentType)
    assert set(taxonomy.indicators) - set(table) == set()


def test_a_matched_indicator_adds_its_own_taxonomy_ids() -> None:
    result = with_model().classify(title="", indicators=["system_prompt_leak"])
    assert "AML.T0056" in result.atlas
    assert {"LLM07:2025", "LLM08:2026"} <= set(result.owasp)


# --- API and compatibility ---------------------------------------------------------------


def test_warm_up_prepares_the_model() -> None:
    model = FakeModel()
    build_classifier(model=model).warm_up()
    assert model.prepared


def test_many_threads_get_the_same_answers(real: Classifier) -> None:
    texts = list(UNSEEN.values())
    expected = [real.classify(title=text) for text in texts]
    results: list[list[object]] = []

    def classify_all() -> None:
        results.append([real.classify(title=text) for text in texts])

    threads = [threading.Thread(target=classify_all) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 6


def test_the_explanation_is_at_most_two_sentences(real: Classifier) -> None:
    for text in UNSEEN.values():
        explanation = real.classify(title=text, indicators=["model_drift"]).explanation
        assert explanation.count(". ") + 1 <= 2, explanation


def test_the_domain_module_imports_only_the_standard_library_and_the_domain() -> None:
    tree = ast.parse((ROOT / "bot" / "domain" / "classification.py").read_text())
    top_level = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    modules = {
        alias.name if isinstance(node, ast.Import) else node.module or ""
        for node in top_level
        for alias in node.names
    }
    allowed = {"__future__", "re", "collections.abc", "dataclasses", "typing"}
    assert {m for m in modules if m not in allowed and not m.startswith("bot.domain")} == set()


# --- several at once ---------------------------------------------------------------------


def test_classifying_several_reports_at_once_reads_each_as_classifying_it_alone(
    real: Classifier,
) -> None:
    reports = [
        Report(
            title="Support bot answering with its system prompt",
            description="Canary string from the system prompt seen in 14 replies.",
            indicators=("system_prompt_leak",),
            base_severity=Severity.HIGH,
        ),
        Report(title="Users coaxing the model into role-play that drops its safety rules"),
        Report(title=""),  # nothing to read
        Report(title="Quarterly planning lunch", description="Pizza on Thursday."),
        Report(
            title="Customer emails in answers",
            personal_data=True,
            incident_type=IncidentType.DATA_LEAK,
        ),
        Report(title="Users coaxing the model into role-play that drops its safety rules"),
    ]

    together = real.classify_many(reports)

    assert together == [
        real.classify(
            title=report.title,
            description=report.description,
            indicators=report.indicators,
            base_severity=report.base_severity,
            personal_data=report.personal_data,
            incident_type=report.incident_type,
        )
        for report in reports
    ]
    assert real.classify_many([]) == []


def test_the_text_model_ranks_several_texts_as_it_ranks_each() -> None:
    model = shared_text_model()
    texts = [
        "Prompt injection through a retrieved web page made the agent email its notes",
        "",
        "Quarterly planning lunch on Thursday",
        "Model accuracy on fraud cases fell after the weekly retrain on poisoned labels",
    ]
    assert model.rank_many(texts) == [model.rank(text) for text in texts]
    assert model.rank_many([]) == []
