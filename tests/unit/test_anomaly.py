"""The anomaly detector on generated metric series: what it flags, when, and what it ignores."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from bot.detection_settings import DetectionSettings
from bot.domain.anomaly import (
    PSI_EPSILON,
    Anomaly,
    AnomalyKind,
    Baseline,
    DetectionRules,
    Direction,
    Sample,
    SampleError,
    SampleValue,
    observe,
    parse_samples,
    population_stability_index,
)
from bot.domain.vocabulary import IncidentType, Severity

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
MODEL = "support-bot-v2"
DEFAULTS = DetectionSettings().to_rules()


def feed(
    values: Sequence[SampleValue],
    metric: str,
    rules: DetectionRules = DEFAULTS,
    baseline: Baseline | None = None,
) -> tuple[Baseline, list[tuple[int, Anomaly]]]:
    """Observe a series one sample a minute; the final baseline and (index, anomaly) pairs."""
    raised: list[tuple[int, Anomaly]] = []
    for index, value in enumerate(values):
        sample = Sample(MODEL, metric, value, T0 + timedelta(minutes=index))
        baseline, anomaly = observe(baseline, sample, rules)
        if anomaly is not None:
            raised.append((index, anomaly))
    assert baseline is not None
    return baseline, raised


def noisy(rng: random.Random, mean: float, std: float, n: int) -> list[float]:
    return [rng.gauss(mean, std) for _ in range(n)]


def batches(
    rng: random.Random, mean: float, std: float, n: int, size: int = 50
) -> list[SampleValue]:
    return [tuple(rng.gauss(mean, std) for _ in range(size)) for _ in range(n)]


# --- scalar metrics --------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_clean_noisy_series_raises_nothing(seed: int) -> None:
    rng = random.Random(seed)
    _, raised = feed(noisy(rng, 0.92, 0.02, 2000), "factuality_score")
    assert raised == []


def test_a_step_down_in_factuality_is_a_behavioural_anomaly_after_sustain() -> None:
    rng = random.Random(7)
    series = noisy(rng, 0.92, 0.02, 200) + noisy(rng, 0.61, 0.02, 20)
    _, raised = feed(series, "factuality_score")

    assert [index for index, _ in raised] == [202]  # the third sample below the band
    anomaly = raised[0][1]
    assert anomaly.kind is AnomalyKind.BEHAVIOURAL
    assert anomaly.indicators == ("factuality_drop",)
    assert anomaly.severity is Severity.HIGH
    assert anomaly.direction is Direction.DOWN
    assert anomaly.incident_type is IncidentType.HALLUCINATION_CASCADE
    assert anomaly.z is not None and anomaly.z < -10
    assert anomaly.fingerprint == f"anomaly:{MODEL}:factuality_score:behavioural"
    assert anomaly.title.startswith(f"{MODEL}: factuality_score dropped to 0.6")


def test_a_step_during_warm_up_is_learned_not_flagged() -> None:
    rng = random.Random(8)
    series = noisy(rng, 0.92, 0.02, 10) + noisy(rng, 0.3, 0.02, 19)
    baseline, raised = feed(
        series, "factuality_score", DetectionSettings(sustain_samples=1).to_rules()
    )
    assert raised == []
    assert baseline.count == 29


def test_a_rise_in_a_metric_whose_bad_side_is_down_is_not_reported() -> None:
    rng = random.Random(9)
    series = noisy(rng, 0.80, 0.02, 100) + noisy(rng, 0.95, 0.02, 20)
    _, raised = feed(series, "factuality_score")
    assert raised == []


def test_a_single_latency_spike_is_caught_when_sustain_is_one() -> None:
    rng = random.Random(11)
    series = noisy(rng, 200, 10, 100) + [400.0] + noisy(rng, 200, 10, 20)
    series[10] = 400.0  # inside the warm-up, so only learned
    rules = DetectionSettings(sustain_samples=1).to_rules()

    _, raised = feed(series, "latency", rules)
    # With sustain 1 an honest 3-sigma sample now and then is flagged too: that is the trade.
    by_index = dict(raised)
    assert min(by_index) >= rules.warmup_samples
    anomaly = by_index[100]
    assert (anomaly.kind, anomaly.indicators) == (AnomalyKind.PERFORMANCE, ("latency_spike",))
    assert (anomaly.severity, anomaly.direction) == (Severity.MEDIUM, Direction.UP)

    _, with_default_sustain = feed(series, "latency")
    assert with_default_sustain == []


def test_a_throughput_drop_is_bad_and_a_throughput_rise_is_not() -> None:
    rng = random.Random(12)
    base = noisy(rng, 1000, 30, 100)
    _, dropped = feed(base + noisy(rng, 500, 30, 5), "throughput")
    _, rose = feed(base + noisy(rng, 1500, 30, 5), "throughput")
    assert [a.indicators for _, a in dropped] == [("throughput_drop",)]
    assert dropped[0][1].direction is Direction.DOWN
    assert rose == []


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_a_slow_drift_that_stays_inside_three_sigma_raises_nothing(seed: int) -> None:
    rng = random.Random(seed)
    # 0.12 is six standard deviations in all, but only 0.00006 a sample.
    series = [rng.gauss(0.92 - 0.12 * i / 2000, 0.02) for i in range(2000)]
    baseline, raised = feed(series, "factuality_score")
    assert raised == []
    assert baseline.mean == pytest.approx(0.80, abs=0.01)


def test_anomalous_samples_do_not_move_the_baseline() -> None:
    rng = random.Random(13)
    before, _ = feed(noisy(rng, 0.02, 0.005, 200), "error_rate")
    after, raised = feed([0.30] * 10, "error_rate", baseline=before)
    assert len(raised) == 1
    assert (after.mean, after.variance, after.count) == (before.mean, before.variance, before.count)
    assert after.run.length == 10


def test_the_baseline_relearns_after_a_level_shift_and_keeps_watching() -> None:
    rules = DEFAULTS
    rng = random.Random(14)
    shifted = noisy(rng, 0.92, 0.02, 200) + noisy(rng, 0.70, 0.02, rules.relearn_samples)
    baseline, raised = feed(shifted, "factuality_score")
    assert len(raised) == 1, "a level shift is reported once, not on every sample"
    assert baseline.mean == pytest.approx(0.70, abs=0.01)
    assert baseline.run.length == 0

    _, quiet = feed(noisy(rng, 0.70, 0.02, 500), "factuality_score", baseline=baseline)
    assert quiet == []

    _, again = feed(noisy(rng, 0.40, 0.02, 5), "factuality_score", baseline=baseline)
    assert [index for index, _ in again] == [2]


def test_a_run_broken_by_one_normal_sample_starts_counting_again() -> None:
    rng = random.Random(15)
    base = noisy(rng, 200, 10, 100)
    _, raised = feed(base + [400.0, 400.0, 200.0, 400.0, 400.0], "latency")
    assert raised == []


def test_the_title_reads_like_the_issue_example() -> None:
    baseline = Baseline(
        model=MODEL, metric="factuality_score", count=500, mean=0.92, variance=0.0004
    )
    rules = DetectionSettings(sustain_samples=1).to_rules()
    _, anomaly = observe(baseline, Sample(MODEL, "Factuality Score", 0.61, T0), rules)
    assert anomaly is not None
    assert anomaly.title == (
        "support-bot-v2: factuality_score dropped to 0.61 (baseline 0.92 ± 0.02, z = -15.5)"
    )
    assert "500 samples" in anomaly.description
    assert anomaly.to_dict()["fingerprint"] == "anomaly:support-bot-v2:factuality_score:behavioural"
    json.dumps(anomaly.to_dict())


# --- security --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "indicator"),
    [
        ("auth_failures", "auth_failure_spike"),
        ("query_volume_per_key", "query_pattern_anomaly"),
        ("high-precision queries", "high_precision_queries"),
    ],
)
def test_security_metrics_raise_critical_security_anomalies(metric: str, indicator: str) -> None:
    rng = random.Random(31)
    _, raised = feed(noisy(rng, 50, 5, 100) + noisy(rng, 200, 5, 3), metric)
    assert len(raised) == 1
    anomaly = raised[0][1]
    assert (anomaly.kind, anomaly.severity) == (AnomalyKind.SECURITY, Severity.CRITICAL)
    assert anomaly.indicators == (indicator,)


def test_an_adversarial_score_at_the_limit_is_an_attack_at_once() -> None:
    baseline, anomaly = observe(None, Sample(MODEL, "adversarial_score", 0.7, T0), DEFAULTS)
    assert anomaly is not None
    assert (anomaly.kind, anomaly.severity) == (AnomalyKind.SECURITY, Severity.CRITICAL)
    assert anomaly.indicators == ("input_perturbation",)
    assert anomaly.incident_type is IncidentType.ADVERSARIAL_ATTACK
    assert anomaly.limit == 0.7 and anomaly.z is None
    assert baseline.count == 0, "an attack sample is not learned as normal"


def test_an_adversarial_score_is_reported_once_per_crossing() -> None:
    _, raised = feed([0.1, 0.9, 0.95, 0.8, 0.2, 0.75], "adversarial_score")
    assert [index for index, _ in raised] == [1, 5]


def test_the_adversarial_limit_is_configurable() -> None:
    rules = DetectionSettings(adversarial_score_threshold=0.9).to_rules()
    _, raised = feed([0.75, 0.85, 0.92], "adversarial_score", rules)
    assert [index for index, _ in raised] == [2]


# --- distributions ---------------------------------------------------------------------


def test_a_stable_distribution_raises_nothing() -> None:
    rng = random.Random(41)
    _, raised = feed(batches(rng, 200, 40, 2000), "output_length")
    assert raised == []


def test_a_shifted_distribution_is_major_drift_after_warm_up() -> None:
    rng = random.Random(42)
    series = batches(rng, 200, 40, 100) + batches(rng, 260, 40, 40)
    baseline, raised = feed(series, "output_length")

    assert len(raised) == 1
    index, anomaly = raised[0]
    # Three windows of 200 values (four batches each) after the shift.
    assert 100 < index <= 100 + 3 * 4 + 4
    assert anomaly.kind is AnomalyKind.DRIFT
    assert anomaly.indicators == ("model_drift", "output_length_shift")
    assert anomaly.severity is Severity.HIGH
    assert anomaly.direction is Direction.UP
    assert anomaly.psi is not None and anomaly.psi >= 0.25
    assert "major shift" in anomaly.title
    assert anomaly.baseline_mean == pytest.approx(200, abs=5)


def test_a_shift_before_the_reference_is_learned_is_not_drift() -> None:
    rng = random.Random(43)
    series = batches(rng, 200, 40, 10) + batches(rng, 260, 40, 20)
    baseline, raised = feed(series, "output_length")
    assert raised == []
    assert baseline.reference is not None and baseline.reference.ready


def test_a_moderately_shifted_histogram_is_medium_drift_without_a_direction() -> None:
    reference = {"a": 25.0, "b": 25.0, "c": 25.0, "d": 25.0}
    shifted = {"a": 10.0, "b": 20.0, "c": 30.0, "d": 40.0}  # PSI 0.228, hand-computed below
    _, raised = feed([reference] * 30 + [shifted] * 3, "topic_share")
    assert len(raised) == 1
    anomaly = raised[0][1]
    assert (anomaly.kind, anomaly.severity, anomaly.direction) == (
        AnomalyKind.DRIFT,
        Severity.MEDIUM,
        None,
    )
    assert anomaly.psi == pytest.approx(0.2282, abs=1e-4)
    assert "moderate shift" in anomaly.title


def test_a_security_distribution_that_drifts_stays_critical() -> None:
    normal = {"2dp": 90.0, "6dp": 10.0}
    probing = {"2dp": 20.0, "6dp": 80.0}
    _, raised = feed([normal] * 30 + [probing] * 3, "high_precision_queries")
    anomaly = raised[0][1]
    assert (anomaly.kind, anomaly.severity) == (AnomalyKind.SECURITY, Severity.CRITICAL)
    assert anomaly.indicators == ("model_drift", "high_precision_queries")


def test_a_lasting_distribution_shift_becomes_the_new_reference() -> None:
    reference = {"en": 80.0, "fr": 20.0}
    shifted = {"en": 20.0, "fr": 80.0}
    rules = DEFAULTS
    series = [reference] * 30 + [shifted] * (rules.relearn_samples + rules.warmup_samples + 10)
    baseline, raised = feed(series, "language")
    assert [index for index, _ in raised] == [32]
    assert baseline.reference is not None and baseline.reference.ready
    assert baseline.reference.proportions == pytest.approx((0.2, 0.8))


def test_a_metric_cannot_switch_between_numbers_and_distributions() -> None:
    baseline, _ = feed([1.0, 2.0], "latency")
    with pytest.raises(SampleError, match="value: latency is a scalar metric"):
        observe(baseline, Sample(MODEL, "latency", (1.0, 2.0), T0), DEFAULTS)


# --- PSI -------------------------------------------------------------------------------


def test_psi_of_identical_distributions_is_zero() -> None:
    assert population_stability_index([0.1, 0.2, 0.7], [0.1, 0.2, 0.7]) == 0
    assert population_stability_index([10, 20, 70], [1, 2, 7]) == 0


def test_psi_matches_a_hand_computed_example() -> None:
    # (0.1-0.25)ln(0.4) + (0.2-0.25)ln(0.8) + (0.3-0.25)ln(1.2) + (0.4-0.25)ln(1.6)
    # = 0.137444 + 0.011157 + 0.009116 + 0.070501 = 0.228218
    psi = population_stability_index([0.25] * 4, [0.1, 0.2, 0.3, 0.4])
    assert psi == pytest.approx(0.228218, abs=1e-6)


def test_psi_gives_an_empty_bin_a_small_epsilon_instead_of_infinity() -> None:
    psi = population_stability_index([0.5, 0.5], [1.0, 0.0])
    expected = (1.0 - 0.5) * math.log(1.0 / 0.5) + (PSI_EPSILON - 0.5) * math.log(PSI_EPSILON / 0.5)
    assert psi == pytest.approx(expected)


def test_psi_refuses_bins_that_do_not_line_up() -> None:
    with pytest.raises(ValueError, match="same"):
        population_stability_index([0.5, 0.5], [1.0])


# --- persistence -----------------------------------------------------------------------


def test_a_scalar_baseline_round_trips_through_json() -> None:
    rng = random.Random(51)
    baseline, _ = feed(noisy(rng, 0.92, 0.02, 100) + [0.5, 0.5], "factuality_score")
    stored = json.loads(json.dumps(baseline.to_dict()))
    assert Baseline.from_dict(stored) == baseline


@pytest.mark.parametrize("batch_count", [10, 45])
def test_a_distribution_baseline_round_trips_through_json(batch_count: int) -> None:
    rng = random.Random(52)
    baseline, _ = feed(batches(rng, 200, 40, batch_count), "output_length")
    stored = json.loads(json.dumps(baseline.to_dict()))
    assert Baseline.from_dict(stored) == baseline


def test_a_histogram_baseline_round_trips_through_json() -> None:
    baseline, _ = feed([{"en": 3.0, "fr": 1.0}] * 31, "language")
    stored = json.loads(json.dumps(baseline.to_dict()))
    assert Baseline.from_dict(stored) == baseline


def test_garbage_is_not_mistaken_for_a_baseline() -> None:
    with pytest.raises(ValueError, match="not a stored baseline"):
        Baseline.from_dict({"version": 1, "model": "m"})


# --- samples ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (float("nan"), "value"),
        (float("inf"), "value"),
        ([1.0, 2.0, float("nan")], "value[2]"),
        ({"a": 1.0, "b": float("-inf")}, "value['b']"),
        (True, "value"),
        ([], "value"),
    ],
)
def test_a_sample_that_is_not_a_finite_number_is_refused_naming_the_field(
    value: object, field: str
) -> None:
    with pytest.raises(ValueError, match="must|needs") as caught:
        Sample(MODEL, "latency", value, T0)  # type: ignore[arg-type]
    assert isinstance(caught.value, SampleError)
    assert caught.value.field == field


def test_a_json_batch_parses_and_names_the_bad_sample() -> None:
    body = {
        "samples": [
            {"model": "m", "metric": "Error-Rate", "value": 0.01, "timestamp": "2025-03-01T12:00Z"},
            {"model": "m", "metric": "output length", "value": [1, 2, 3]},
            {"model": "m", "metric": "lang", "value": {"en": 3, "fr": 1}, "timestamp": 1740830400},
        ]
    }
    samples = parse_samples(body, received_at=T0)
    assert [s.metric for s in samples] == ["error_rate", "output_length", "lang"]
    assert samples[0].timestamp == T0
    assert samples[1].timestamp == T0 and samples[1].value == (1.0, 2.0, 3.0)

    bad = json.loads('[{"model": "m", "metric": "x", "value": 1}, {"model": "m", "value": NaN}]')
    with pytest.raises(SampleError, match=r"samples\[1\]\.metric: is required"):
        parse_samples(bad, received_at=T0)
    bad[1]["metric"] = "x"
    with pytest.raises(SampleError, match=r"samples\[1\]\.value: must be a finite number"):
        parse_samples(bad, received_at=T0)


def test_an_unknown_metric_gets_a_generic_baseline_and_medium_alerts() -> None:
    rng = random.Random(61)
    series = noisy(rng, 60, 2, 100) + noisy(rng, 40, 2, 3)
    baseline, raised = feed(series, "GPU Temperature")
    assert baseline.metric == "gpu_temperature"
    anomaly = raised[0][1]
    assert (anomaly.kind, anomaly.severity, anomaly.direction) == (
        AnomalyKind.BEHAVIOURAL,
        Severity.MEDIUM,
        Direction.DOWN,
    )
    assert anomaly.indicators == ("gpu_temperature_anomaly",)


# --- settings --------------------------------------------------------------------------


def test_a_warm_up_below_thirty_samples_is_refused() -> None:
    with pytest.raises(ValidationError, match="warmup_samples"):
        DetectionSettings(warmup_samples=29)
    with pytest.raises(ValueError, match="warmup_samples"):
        DetectionRules(warmup_samples=29)


def test_sustain_must_stay_below_relearn() -> None:
    with pytest.raises(ValidationError, match="sustain_samples must be below relearn_samples"):
        DetectionSettings(sustain_samples=30, relearn_samples=30)


def test_unknown_settings_keys_are_refused() -> None:
    with pytest.raises(ValidationError, match="z_treshold"):
        DetectionSettings.model_validate({"z_treshold": 2})
    with pytest.raises(ValidationError, match="direction"):
        DetectionSettings.model_validate({"metrics": {"latency": {"direction": "up"}}})


def test_a_configured_metric_is_added_without_restating_the_defaults() -> None:
    settings = DetectionSettings.model_validate(
        {
            "metrics": {
                "GPU-Memory": {
                    "family": "performance",
                    "indicator": "gpu_memory_spike",
                    "bad_direction": "up",
                },
                "latency": {"severity": "sev2"},
                "jailbreak_rate": {"family": "security"},
            }
        }
    )
    rules = settings.to_rules()
    gpu = rules.spec_for("gpu memory")
    assert (gpu.family, gpu.indicator, gpu.bad_direction) == (
        AnomalyKind.PERFORMANCE,
        "gpu_memory_spike",
        Direction.UP,
    )
    assert gpu.effective_severity is Severity.MEDIUM
    latency = rules.spec_for("Latency")
    assert (latency.indicator, latency.effective_severity) == ("latency_spike", Severity.HIGH)
    assert rules.spec_for("jailbreak_rate").effective_severity is Severity.CRITICAL
    assert rules.spec_for("factuality_score").indicator == "factuality_drop"


def test_two_spellings_of_one_metric_are_refused() -> None:
    with pytest.raises(ValidationError, match="name the same metric"):
        DetectionSettings.model_validate({"metrics": {"Latency": {}, "latency": {}}})
