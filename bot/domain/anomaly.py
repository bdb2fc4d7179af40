"""Anomalies in model-behaviour metrics: EWMA z-scores for numbers, PSI for distributions.

How the detector behaves (every number is tunable in the `detection:` config section):

* Warm-up. Nothing is flagged until a metric has `warmup_samples` samples (never fewer
  than 30). The first samples are averaged exactly (weight 1/n); after that the mean and
  variance follow an EWMA of weight `ewma_alpha` (0.03: a memory of about 65 samples, long
  enough for a steady variance, short enough that the baseline follows slow drift).
* Out-of-band samples leave the baseline alone. A sample with |z| >= `z_threshold` joins a
  run of consecutive out-of-band samples on the same side instead, so an attack or an outage
  never becomes the new normal while it lasts. A sample back inside the band ends the run.
* Sustain. A run on the metric's bad side is reported once, when it reaches
  `sustain_samples` (1 catches a single spike); the rest of the run is silent, and a later
  run reports again under the same fingerprint so it joins the same incident downstream.
* Recovery. A run that reaches `relearn_samples` is taken to be a real level shift (a deploy,
  a new traffic mix): the run's own mean and variance become the baseline and detection goes
  on against the new level. A run on the good side (latency falling) re-learns the same way,
  without a report.
* Limits. A metric may carry an absolute `limit` on its bad side (`adversarial_score` >= 0.7):
  crossing it reports at once, with no warm-up or sustain, once per crossing, and samples
  beyond the limit are kept out of the baseline.
* Distributions. A list of values is binned on cut points at the quantiles of a reference
  learned during warm-up (`psi_bins` bins, ties merged, outer bins open-ended); the reference
  keeps at most `REFERENCE_CAP` values, taken as evenly spaced order statistics of each
  batch. Later values gather in a window until it holds `psi_min_values`, and that window's
  PSI against the reference is one observation, because PSI over a few dozen values is mostly
  sampling noise. A histogram (bin label -> count) is one window as sent, its reference the
  mean of the warm-up histograms' proportions. Empty bins count as `PSI_EPSILON`. The
  reference stays fixed (drift away from it is what is measured); `sustain_samples` drifting
  windows in a row report, and `relearn_samples` of them start a fresh warm-up.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

from bot.domain.vocabulary import IncidentType, Severity

MIN_WARMUP_SAMPLES = 30
PSI_EPSILON = 1e-4
REFERENCE_CAP = 2000
# A metric that has sat still has a variance of ~0; without a floor a rounding difference
# would be a thousand-sigma event.
_STD_FLOOR_RELATIVE = 1e-3
_STD_FLOOR_ABSOLUTE = 1e-9
_BASELINE_VERSION = 1


class AnomalyKind(StrEnum):
    PERFORMANCE = "performance"
    BEHAVIOURAL = "behavioural"
    SECURITY = "security"
    DRIFT = "drift"


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"
    BOTH = "both"


_FAMILY_SEVERITY = {
    AnomalyKind.PERFORMANCE: Severity.MEDIUM,
    AnomalyKind.BEHAVIOURAL: Severity.HIGH,
    AnomalyKind.SECURITY: Severity.CRITICAL,
    AnomalyKind.DRIFT: Severity.MEDIUM,
}

_FAMILY_INCIDENT_TYPE = {
    AnomalyKind.PERFORMANCE: IncidentType.PERFORMANCE_DEGRADATION,
    AnomalyKind.BEHAVIOURAL: IncidentType.UNKNOWN_AI_INCIDENT,
    AnomalyKind.SECURITY: IncidentType.SECURITY_BREACH,
    AnomalyKind.DRIFT: IncidentType.MODEL_DRIFT,
}


def family_severity(family: AnomalyKind) -> Severity:
    """The severity a family's anomalies get when the metric's rule names none."""
    return _FAMILY_SEVERITY[family]


def family_incident_type(family: AnomalyKind) -> IncidentType:
    """The incident type a family's anomalies open when the metric's rule names none."""
    return _FAMILY_INCIDENT_TYPE[family]


def normalize_metric_name(name: str) -> str:
    """`Factuality-Score` and `factuality score` both as `factuality_score`."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


@dataclass(frozen=True)
class MetricSpec:
    """What a metric means: its family, the indicator it raises and which way is bad."""

    family: AnomalyKind
    indicator: str
    bad_direction: Direction
    incident_type: IncidentType
    severity: Severity | None = None
    limit: float | None = None

    @property
    def effective_severity(self) -> Severity:
        """The rule's own severity, else its family's."""
        return self.severity or family_severity(self.family)

    def is_bad(self, sign: int) -> bool:
        """Whether a move up (sign > 0) or down (sign < 0) is the harmful one."""
        if self.bad_direction is Direction.BOTH:
            return True
        return (sign > 0) == (self.bad_direction is Direction.UP)

    def crosses_limit(self, value: float) -> bool:
        """Whether the value is at or past the limit: below it for `down`, else above it."""
        if self.limit is None:
            return False
        if self.bad_direction is Direction.DOWN:
            return value <= self.limit
        return value >= self.limit


def _spec(
    family: AnomalyKind,
    indicator: str,
    bad: Direction,
    incident_type: IncidentType | None = None,
    *,
    limit: float | None = None,
) -> MetricSpec:
    return MetricSpec(
        family=family,
        indicator=indicator,
        bad_direction=bad,
        incident_type=incident_type or family_incident_type(family),
        limit=limit,
    )


_P, _B, _S, _D = (
    AnomalyKind.PERFORMANCE,
    AnomalyKind.BEHAVIOURAL,
    AnomalyKind.SECURITY,
    AnomalyKind.DRIFT,
)
_UP, _DOWN, _BOTH = Direction.UP, Direction.DOWN, Direction.BOTH
_HALLUCINATION = IncidentType.HALLUCINATION_CASCADE
_EXTRACTION = IncidentType.MODEL_EXTRACTION

DEFAULT_ADVERSARIAL_SCORE_LIMIT = 0.7

DEFAULT_METRICS: Mapping[str, MetricSpec] = MappingProxyType(
    {
        "latency": _spec(_P, "latency_spike", _UP),
        "latency_ms": _spec(_P, "latency_spike", _UP),
        "error_rate": _spec(_P, "error_rate_spike", _UP),
        "throughput": _spec(_P, "throughput_drop", _DOWN),
        "requests_per_second": _spec(_P, "throughput_drop", _DOWN),
        "refusal_rate": _spec(_B, "refusal_spike", _UP),
        "toxicity": _spec(_B, "toxicity_spike", _UP, IncidentType.HOSTILE_BEHAVIOR),
        "toxicity_score": _spec(_B, "toxicity_spike", _UP, IncidentType.HOSTILE_BEHAVIOR),
        "toxicity_rate": _spec(_B, "toxicity_spike", _UP, IncidentType.HOSTILE_BEHAVIOR),
        "factuality_score": _spec(_B, "factuality_drop", _DOWN, _HALLUCINATION),
        "hallucination_rate": _spec(_B, "factuality_drop", _UP, _HALLUCINATION),
        # Calibration may be sent as a score or as an error, so either way is a mismatch.
        "confidence_calibration": _spec(_B, "confidence_mismatch", _BOTH, _HALLUCINATION),
        "calibration_error": _spec(_B, "confidence_mismatch", _UP, _HALLUCINATION),
        "output_length": _spec(_B, "output_length_shift", _BOTH, IncidentType.MODEL_DRIFT),
        "auth_failures": _spec(_S, "auth_failure_spike", _UP),
        "auth_failure_rate": _spec(_S, "auth_failure_spike", _UP),
        "query_volume_per_key": _spec(_S, "query_pattern_anomaly", _UP, _EXTRACTION),
        "queries_per_key": _spec(_S, "query_pattern_anomaly", _UP, _EXTRACTION),
        "high_precision_queries": _spec(_S, "high_precision_queries", _UP, _EXTRACTION),
        "high_precision_query_rate": _spec(_S, "high_precision_queries", _UP, _EXTRACTION),
        "adversarial_score": _spec(
            _S,
            "input_perturbation",
            _UP,
            IncidentType.ADVERSARIAL_ATTACK,
            limit=DEFAULT_ADVERSARIAL_SCORE_LIMIT,
        ),
        "embedding_distance": _spec(_D, "model_drift", _UP),
        "input_drift": _spec(_D, "model_drift", _UP),
        "prediction_drift": _spec(_D, "model_drift", _UP),
    }
)


def generic_spec(metric: str) -> MetricSpec:
    """The rule for a metric nobody described: behavioural, either way, medium."""
    return MetricSpec(
        family=AnomalyKind.BEHAVIOURAL,
        indicator=f"{normalize_metric_name(metric)}_anomaly",
        bad_direction=Direction.BOTH,
        incident_type=IncidentType.UNKNOWN_AI_INCIDENT,
        severity=Severity.MEDIUM,
    )


@dataclass(frozen=True)
class DetectionRules:
    """Thresholds and the metric table, as plain values (built from `DetectionSettings`)."""

    z_threshold: float = 3.0
    warmup_samples: int = MIN_WARMUP_SAMPLES
    sustain_samples: int = 3
    relearn_samples: int = 30
    ewma_alpha: float = 0.03
    psi_threshold: float = 0.15
    psi_bands: tuple[float, float] = (0.1, 0.25)
    psi_bins: int = 10
    psi_min_values: int = 200
    metrics: Mapping[str, MetricSpec] = field(default_factory=lambda: DEFAULT_METRICS)

    def __post_init__(self) -> None:
        if self.warmup_samples < MIN_WARMUP_SAMPLES:
            raise ValueError(f"warmup_samples must be at least {MIN_WARMUP_SAMPLES}")
        if self.relearn_samples < MIN_WARMUP_SAMPLES:
            raise ValueError(f"relearn_samples must be at least {MIN_WARMUP_SAMPLES}")
        if not 1 <= self.sustain_samples < self.relearn_samples:
            raise ValueError("sustain_samples must be at least 1 and below relearn_samples")
        if not 0 < self.ewma_alpha < 1:
            raise ValueError("ewma_alpha must lie between 0 and 1")
        if self.z_threshold <= 0 or self.psi_threshold <= 0:
            raise ValueError("z_threshold and psi_threshold must be positive")
        if not 0 < self.psi_bands[0] < self.psi_bands[1]:
            raise ValueError("psi_bands must be two increasing positive numbers")
        if self.psi_bins < 2 or self.psi_min_values < self.psi_bins:
            raise ValueError("psi_bins must be at least 2 and psi_min_values at least psi_bins")

    def spec_for(self, metric: str) -> MetricSpec:
        """The rule for a metric, matched by normalised name, else the generic rule."""
        name = normalize_metric_name(metric)
        return self.metrics.get(name) or generic_spec(name)


# --- samples ---------------------------------------------------------------------------


class SampleError(ValueError):
    """A sample that cannot be used; `field` names the offending part of it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


SampleValue = float | tuple[float, ...] | Mapping[str, float]


@dataclass(frozen=True)
class Sample:
    """One reading: a number, or a distribution as a list of values or a label -> count map."""

    model: str
    metric: str
    value: SampleValue
    timestamp: datetime

    def __post_init__(self) -> None:
        for name in ("model", "metric"):
            text = getattr(self, name)
            if not isinstance(text, str) or not normalize_metric_name(text):
                raise SampleError(name, "must be a non-empty string")
        object.__setattr__(self, "value", _checked_value(self.value))
        if not isinstance(self.timestamp, datetime) or self.timestamp.tzinfo is None:
            raise SampleError("timestamp", "must be a datetime with a time zone")


def _finite(value: object, where: str) -> float:
    # bool is an int to Python but never a measurement.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SampleError(where, "must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise SampleError(where, f"must be a finite number, not {value}")
    return number


def _checked_value(value: object) -> SampleValue:
    if isinstance(value, Mapping):
        if not value:
            raise SampleError("value", "a histogram needs at least one bin")
        counts: dict[str, float] = {}
        for label, count in value.items():
            if not isinstance(label, str) or not label:
                raise SampleError("value", "histogram bins must be named by non-empty strings")
            counts[label] = _finite(count, f"value[{label!r}]")
            if counts[label] < 0:
                raise SampleError(f"value[{label!r}]", "a count cannot be negative")
        if sum(counts.values()) <= 0:
            raise SampleError("value", "a histogram needs a positive total count")
        return counts
    if isinstance(value, list | tuple):
        if not value:
            raise SampleError("value", "a distribution needs at least one value")
        return tuple(_finite(item, f"value[{index}]") for index, item in enumerate(value))
    return _finite(value, "value")


def _parse_timestamp(raw: object, received_at: datetime) -> datetime:
    if raw is None:
        return received_at
    if isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise SampleError("timestamp", "must be ISO 8601 or seconds since 1970") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    seconds = _finite(raw, "timestamp")
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise SampleError("timestamp", "is out of range") from None


def parse_sample(item: object, *, received_at: datetime) -> Sample:
    """A sample from its JSON form; a missing timestamp means `received_at`."""
    if not isinstance(item, Mapping):
        raise SampleError("sample", "must be an object with model, metric and value")
    for name in ("model", "metric", "value"):
        if item.get(name) is None:
            raise SampleError(name, "is required")
    metric = item["metric"]
    return Sample(
        model=item["model"].strip() if isinstance(item["model"], str) else item["model"],
        metric=normalize_metric_name(metric) if isinstance(metric, str) else metric,
        value=item["value"],
        timestamp=_parse_timestamp(item.get("timestamp"), received_at),
    )


def parse_samples(payload: object, *, received_at: datetime) -> list[Sample]:
    """One sample, a list of them, or `{"samples": [...]}`, each checked."""
    if isinstance(payload, Mapping) and "samples" in payload:
        payload = payload["samples"]
    if isinstance(payload, Mapping):
        return [parse_sample(payload, received_at=received_at)]
    if not isinstance(payload, list) or not payload:
        raise SampleError("samples", "must be a sample or a non-empty list of samples")
    samples = []
    for index, item in enumerate(payload):
        try:
            samples.append(parse_sample(item, received_at=received_at))
        except SampleError as error:
            raise SampleError(f"samples[{index}].{error.field}", error.problem) from None
    return samples


# --- persisted state -------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """Consecutive out-of-band observations on one side, with their own mean and variance."""

    length: int = 0
    sign: int = 0
    mean: float = 0.0
    variance: float = 0.0

    def extend(self, value: float, sign: int) -> Run:
        """The run with one more observation; a change of side starts a new run."""
        if self.length and sign != self.sign:
            return Run().extend(value, sign)
        length = self.length + 1
        delta = value - self.mean
        mean = self.mean + delta / length
        variance = self.variance + (delta * (value - mean) - self.variance) / length
        return Run(length=length, sign=sign, mean=mean, variance=variance)


Shape = Literal["values", "histogram"]


@dataclass(frozen=True)
class Reference:
    """What PSI compares against: bins, their reference proportions and the open window."""

    shape: Shape
    ready: bool = False
    cuts: tuple[float, ...] = ()
    labels: tuple[str, ...] = ()
    # While warming up a histogram this holds the running sum of proportions per label.
    proportions: tuple[float, ...] = ()
    values: tuple[float, ...] = ()
    mean: float = 0.0
    std: float = 0.0
    window: tuple[float, ...] = ()
    window_sum: float = 0.0


@dataclass(frozen=True)
class Baseline:
    """What warroom has learned about one (model, metric); the caller stores it as JSON."""

    model: str
    metric: str
    count: int = 0
    mean: float = 0.0
    variance: float = 0.0
    run: Run = field(default_factory=Run)
    breaching: bool = False
    reference: Reference | None = None
    updated_at: datetime | None = None

    @property
    def std(self) -> float:
        """The standard deviation z-scores divide by, floored for metrics that sat still."""
        return max(
            math.sqrt(self.variance),
            _STD_FLOOR_RELATIVE * abs(self.mean),
            _STD_FLOOR_ABSOLUTE,
        )

    def to_dict(self) -> dict[str, Any]:
        """The baseline as JSON types only."""
        reference = self.reference
        return {
            "version": _BASELINE_VERSION,
            "model": self.model,
            "metric": self.metric,
            "count": self.count,
            "mean": self.mean,
            "variance": self.variance,
            "run": {
                "length": self.run.length,
                "sign": self.run.sign,
                "mean": self.run.mean,
                "variance": self.run.variance,
            },
            "breaching": self.breaching,
            "reference": None
            if reference is None
            else {
                "shape": reference.shape,
                "ready": reference.ready,
                "cuts": list(reference.cuts),
                "labels": list(reference.labels),
                "proportions": list(reference.proportions),
                "values": list(reference.values),
                "mean": reference.mean,
                "std": reference.std,
                "window": list(reference.window),
                "window_sum": reference.window_sum,
            },
            "updated_at": None if self.updated_at is None else self.updated_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Baseline:
        """A baseline back from `to_dict()`; ValueError if the data is not one."""
        try:
            if data["version"] != _BASELINE_VERSION:
                raise ValueError(f"baseline version {data['version']} is not understood")
            run = data["run"]
            raw_reference = data["reference"]
            reference = None
            if raw_reference is not None:
                shape = raw_reference["shape"]
                if shape not in ("values", "histogram"):
                    raise ValueError(f"baseline reference shape '{shape}' is not understood")
                reference = Reference(
                    shape=shape,
                    ready=bool(raw_reference["ready"]),
                    cuts=_floats(raw_reference["cuts"]),
                    labels=tuple(str(label) for label in raw_reference["labels"]),
                    proportions=_floats(raw_reference["proportions"]),
                    values=_floats(raw_reference["values"]),
                    mean=float(raw_reference["mean"]),
                    std=float(raw_reference["std"]),
                    window=_floats(raw_reference["window"]),
                    window_sum=float(raw_reference["window_sum"]),
                )
            updated_at = data["updated_at"]
            return cls(
                model=str(data["model"]),
                metric=str(data["metric"]),
                count=int(data["count"]),
                mean=float(data["mean"]),
                variance=float(data["variance"]),
                run=Run(
                    length=int(run["length"]),
                    sign=int(run["sign"]),
                    mean=float(run["mean"]),
                    variance=float(run["variance"]),
                ),
                breaching=bool(data["breaching"]),
                reference=reference,
                updated_at=None if updated_at is None else datetime.fromisoformat(updated_at),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a stored baseline: {error!r}") from None


def _floats(items: Sequence[Any]) -> tuple[float, ...]:
    return tuple(float(item) for item in items)


# --- the alert -------------------------------------------------------------------------


@dataclass(frozen=True)
class Anomaly:
    """A sustained anomaly, ready to become (or join) an incident."""

    model: str
    metric: str
    kind: AnomalyKind
    indicators: tuple[str, ...]
    severity: Severity
    incident_type: IncidentType
    # None only for a histogram, whose bins have no order.
    direction: Direction | None
    # The sample, the mean of a drifting window of values, or a histogram's PSI.
    value: float
    observed_at: datetime
    samples: int
    title: str
    description: str
    z: float | None = None
    psi: float | None = None
    limit: float | None = None
    baseline_mean: float | None = None
    baseline_std: float | None = None

    @property
    def fingerprint(self) -> str:
        """Stable across repeats, so every recurrence joins the same incident."""
        return f"anomaly:{self.model}:{self.metric}:{self.kind}"

    def to_dict(self) -> dict[str, Any]:
        """The anomaly as JSON types only."""
        return {
            "fingerprint": self.fingerprint,
            "model": self.model,
            "metric": self.metric,
            "kind": str(self.kind),
            "indicators": list(self.indicators),
            "severity": str(self.severity),
            "incident_type": str(self.incident_type),
            "direction": None if self.direction is None else str(self.direction),
            "value": self.value,
            "observed_at": self.observed_at.isoformat(),
            "samples": self.samples,
            "title": self.title,
            "description": self.description,
            "z": self.z,
            "psi": self.psi,
            "limit": self.limit,
            "baseline_mean": self.baseline_mean,
            "baseline_std": self.baseline_std,
        }


# --- detection -------------------------------------------------------------------------


def population_stability_index(expected: Sequence[float], actual: Sequence[float]) -> float:
    """PSI = sum((a - e) * ln(a / e)) over bins, from counts or proportions; empty bins get ε."""
    if len(expected) != len(actual) or not expected:
        raise ValueError("expected and actual need the same, non-zero number of bins")
    if any(not math.isfinite(x) or x < 0 for x in (*expected, *actual)):
        raise ValueError("bin counts must be finite and not negative")
    expected_total, actual_total = sum(expected), sum(actual)
    if expected_total <= 0 or actual_total <= 0:
        raise ValueError("each distribution needs a positive total")
    psi = 0.0
    for e, a in zip(expected, actual, strict=True):
        p = max(e / expected_total, PSI_EPSILON)
        q = max(a / actual_total, PSI_EPSILON)
        psi += (q - p) * math.log(q / p)
    return psi


def psi_band(psi: float, bands: tuple[float, float]) -> str:
    """The wording for a PSI value: minor, moderate or major shift."""
    if psi < bands[0]:
        return "minor shift"
    if psi < bands[1]:
        return "moderate shift"
    return "major shift"


_BAND_SEVERITY = {
    "minor shift": Severity.LOW,
    "moderate shift": Severity.MEDIUM,
    "major shift": Severity.HIGH,
}


def observe(
    baseline: Baseline | None, sample: Sample, rules: DetectionRules
) -> tuple[Baseline, Anomaly | None]:
    """Learn from one sample; the new baseline to store, and the anomaly it completes if any."""
    metric = normalize_metric_name(sample.metric)
    if baseline is None:
        baseline = Baseline(model=sample.model, metric=metric)
    elif (baseline.model, baseline.metric) != (sample.model, metric):
        raise ValueError(
            f"baseline is for {baseline.model}/{baseline.metric}, not {sample.model}/{metric}"
        )
    spec = rules.spec_for(metric)
    value = sample.value
    if isinstance(value, Mapping):
        return _observe_histogram(baseline, value, sample, spec, rules)
    if isinstance(value, tuple):
        return _observe_values(baseline, value, sample, spec, rules)
    return _observe_scalar(baseline, value, sample, spec, rules)


def _learn(baseline: Baseline, value: float, alpha: float) -> Baseline:
    count = baseline.count + 1
    # Weight 1/n until it falls below alpha: an exact mean of the warm-up, then an EWMA.
    weight = max(alpha, 1 / count)
    delta = value - baseline.mean
    step = weight * delta
    return replace(
        baseline,
        count=count,
        mean=baseline.mean + step,
        variance=(1 - weight) * (baseline.variance + delta * step),
    )


def _observe_scalar(
    baseline: Baseline, value: float, sample: Sample, spec: MetricSpec, rules: DetectionRules
) -> tuple[Baseline, Anomaly | None]:
    if baseline.reference is not None:
        raise SampleError(
            "value", f"{baseline.metric} is a distribution metric: send a list or a histogram"
        )
    if spec.crosses_limit(value):
        anomaly = (
            None if baseline.breaching else _limit_anomaly(baseline, value, sample, spec, rules)
        )
        return replace(baseline, breaching=True, updated_at=sample.timestamp), anomaly
    baseline = replace(baseline, breaching=False, updated_at=sample.timestamp)
    if baseline.count < rules.warmup_samples:
        return _learn(baseline, value, rules.ewma_alpha), None
    z = (value - baseline.mean) / baseline.std
    if abs(z) < rules.z_threshold:
        return replace(_learn(baseline, value, rules.ewma_alpha), run=Run()), None
    run = baseline.run.extend(value, 1 if z > 0 else -1)
    if run.length >= rules.relearn_samples:
        relearned = replace(
            baseline, count=run.length, mean=run.mean, variance=run.variance, run=Run()
        )
        return relearned, None
    anomaly = None
    if run.length == rules.sustain_samples and spec.is_bad(run.sign):
        anomaly = _z_anomaly(baseline, value, z, run, sample, spec, rules)
    return replace(baseline, run=run), anomaly


def _reference(baseline: Baseline, shape: Shape) -> Reference:
    if baseline.reference is None:
        if baseline.count:
            raise SampleError("value", f"{baseline.metric} is a scalar metric: send a number")
        return Reference(shape=shape)
    if baseline.reference.shape != shape:
        expected = "a list of values" if baseline.reference.shape == "values" else "a histogram"
        raise SampleError("value", f"{baseline.metric} is sent as {expected}")
    return baseline.reference


def _spread(values: Sequence[float], limit: int) -> tuple[float, ...]:
    ordered = sorted(values)
    if len(ordered) <= limit:
        return tuple(ordered)
    # Evenly spaced order statistics keep the batch's shape in fewer values.
    return tuple(ordered[int((i + 0.5) * len(ordered) / limit)] for i in range(limit))


def _bin_counts(cuts: Sequence[float], values: Sequence[float]) -> list[float]:
    counts = [0.0] * (len(cuts) + 1)
    for value in values:
        counts[bisect_right(cuts, value)] += 1
    return counts


def _freeze_values(values: Sequence[float], bins: int) -> Reference:
    ordered = sorted(values)
    n = len(ordered)
    cuts = tuple(sorted({ordered[k * n // bins] for k in range(1, bins)}))
    counts = _bin_counts(cuts, ordered)
    mean = sum(ordered) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in ordered) / n)
    return Reference(
        shape="values",
        ready=True,
        cuts=cuts,
        proportions=tuple(c / n for c in counts),
        mean=mean,
        std=std,
        window=tuple(0.0 for _ in counts),
    )


def _observe_values(
    baseline: Baseline,
    values: tuple[float, ...],
    sample: Sample,
    spec: MetricSpec,
    rules: DetectionRules,
) -> tuple[Baseline, Anomaly | None]:
    reference = _reference(baseline, "values")
    baseline = replace(baseline, updated_at=sample.timestamp)
    if not reference.ready:
        per_batch = math.ceil(REFERENCE_CAP / rules.warmup_samples)
        kept = reference.values + _spread(values, per_batch)
        count = baseline.count + 1
        if count >= rules.warmup_samples and len(kept) >= rules.psi_min_values:
            reference = _freeze_values(kept, rules.psi_bins)
        else:
            reference = replace(reference, values=kept)
        return replace(baseline, count=count, reference=reference), None
    added = _bin_counts(reference.cuts, values)
    window = tuple(a + b for a, b in zip(reference.window, added, strict=True))
    window_sum = reference.window_sum + sum(values)
    filled = sum(window)
    if filled < rules.psi_min_values:
        reference = replace(reference, window=window, window_sum=window_sum)
        return replace(baseline, reference=reference), None
    psi = population_stability_index(reference.proportions, window)
    observed = window_sum / filled
    empty = replace(reference, window=tuple(0.0 for _ in window), window_sum=0.0)
    baseline = replace(baseline, reference=empty)
    direction = None
    if observed != reference.mean:
        direction = Direction.UP if observed > reference.mean else Direction.DOWN
    return _judge_drift(baseline, psi, sample, spec, rules, observed=observed, direction=direction)


def _observe_histogram(
    baseline: Baseline,
    counts: Mapping[str, float],
    sample: Sample,
    spec: MetricSpec,
    rules: DetectionRules,
) -> tuple[Baseline, Anomaly | None]:
    reference = _reference(baseline, "histogram")
    baseline = replace(baseline, updated_at=sample.timestamp)
    total = sum(counts.values())
    shares = {label: count / total for label, count in counts.items()}
    known = set(reference.labels)
    labels = reference.labels + tuple(sorted(label for label in shares if label not in known))
    before = reference.proportions + (0.0,) * (len(labels) - len(reference.proportions))
    if not reference.ready:
        sums = tuple(s + shares.get(label, 0.0) for s, label in zip(before, labels, strict=True))
        count = baseline.count + 1
        if count >= rules.warmup_samples:
            reference = replace(
                reference, ready=True, labels=labels, proportions=tuple(s / count for s in sums)
            )
        else:
            reference = replace(reference, labels=labels, proportions=sums)
        return replace(baseline, count=count, reference=reference), None
    # Labels first seen after warm-up are compared (against ε) but not added to the reference.
    psi = population_stability_index(before, [shares.get(label, 0.0) for label in labels])
    return _judge_drift(baseline, psi, sample, spec, rules, observed=psi, direction=None)


def _judge_drift(
    baseline: Baseline,
    psi: float,
    sample: Sample,
    spec: MetricSpec,
    rules: DetectionRules,
    *,
    observed: float,
    direction: Direction | None,
) -> tuple[Baseline, Anomaly | None]:
    if psi < rules.psi_threshold:
        return replace(baseline, run=Run()), None
    # One side only: a change of shape can move the mean either way from window to window.
    run = baseline.run.extend(psi, 0)
    if run.length >= rules.relearn_samples:
        return replace(baseline, count=0, reference=None, run=Run()), None
    anomaly = None
    if run.length == rules.sustain_samples:
        anomaly = _drift_anomaly(baseline, psi, observed, direction, run, sample, spec, rules)
    return replace(baseline, run=run), anomaly


# --- wording ---------------------------------------------------------------------------


def _fmt(number: float) -> str:
    """Three significant digits without exponents: 0.92, 0.02, 12.3, 1,234."""
    if number == 0:
        return "0"
    if abs(number) >= 100:
        return f"{number:,.0f}"
    digits = max(0, 2 - math.floor(math.log10(abs(number))))
    text = f"{number:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


_KIND_LABEL = {
    AnomalyKind.PERFORMANCE: "Performance",
    AnomalyKind.BEHAVIOURAL: "Behavioural",
    AnomalyKind.SECURITY: "Security",
    AnomalyKind.DRIFT: "Drift",
}


def _z_anomaly(
    baseline: Baseline,
    value: float,
    z: float,
    run: Run,
    sample: Sample,
    spec: MetricSpec,
    rules: DetectionRules,
) -> Anomaly:
    up = run.sign > 0
    mean, std = baseline.mean, baseline.std
    side = "above" if up else "below"
    title = (
        f"{baseline.model}: {baseline.metric} {'rose' if up else 'dropped'} to {_fmt(value)} "
        f"(baseline {_fmt(mean)} ± {_fmt(std)}, z = {z:.1f})"
    )
    description = (
        f"{_KIND_LABEL[spec.family]} anomaly on {baseline.model}: {baseline.metric} has been "
        f"{side} its baseline for {run.length} consecutive samples (|z| ≥ "
        f"{_fmt(rules.z_threshold)}); latest {_fmt(value)} against {_fmt(mean)} ± {_fmt(std)} "
        f"learned from {baseline.count} samples. Indicator: {spec.indicator}."
    )
    return Anomaly(
        model=baseline.model,
        metric=baseline.metric,
        kind=spec.family,
        indicators=(spec.indicator,),
        severity=spec.effective_severity,
        incident_type=spec.incident_type,
        direction=Direction.UP if up else Direction.DOWN,
        value=value,
        observed_at=sample.timestamp,
        samples=run.length,
        title=title,
        description=description,
        z=z,
        baseline_mean=mean,
        baseline_std=std,
    )


def _limit_anomaly(
    baseline: Baseline, value: float, sample: Sample, spec: MetricSpec, rules: DetectionRules
) -> Anomaly:
    assert spec.limit is not None
    warmed = baseline.count >= rules.warmup_samples
    z = (value - baseline.mean) / baseline.std if warmed else None
    usual = (
        f" Its baseline is {_fmt(baseline.mean)} ± {_fmt(baseline.std)}." if baseline.count else ""
    )
    side = "below" if spec.bad_direction is Direction.DOWN else "at or above"
    return Anomaly(
        model=baseline.model,
        metric=baseline.metric,
        kind=spec.family,
        indicators=(spec.indicator,),
        severity=spec.effective_severity,
        incident_type=spec.incident_type,
        direction=Direction.DOWN if spec.bad_direction is Direction.DOWN else Direction.UP,
        value=value,
        observed_at=sample.timestamp,
        samples=1,
        title=f"{baseline.model}: {baseline.metric} reached {_fmt(value)} "
        f"(limit {_fmt(spec.limit)})",
        description=(
            f"{_KIND_LABEL[spec.family]} anomaly on {baseline.model}: {baseline.metric} is "
            f"{_fmt(value)}, {side} its limit of {_fmt(spec.limit)}.{usual} "
            f"Indicator: {spec.indicator}."
        ),
        z=z,
        limit=spec.limit,
        baseline_mean=baseline.mean if baseline.count else None,
        baseline_std=baseline.std if baseline.count else None,
    )


def _drift_anomaly(
    baseline: Baseline,
    psi: float,
    observed: float,
    direction: Direction | None,
    run: Run,
    sample: Sample,
    spec: MetricSpec,
    rules: DetectionRules,
) -> Anomaly:
    reference = baseline.reference
    assert reference is not None
    band = psi_band(psi, rules.psi_bands)
    security = spec.family is AnomalyKind.SECURITY
    kind = AnomalyKind.SECURITY if security else AnomalyKind.DRIFT
    severity = spec.severity or (Severity.CRITICAL if security else _BAND_SEVERITY[band])
    indicators = tuple(dict.fromkeys(("model_drift", spec.indicator)))
    values = reference.shape == "values"
    detail = (
        f"; mean {_fmt(observed)} against {_fmt(reference.mean)} ± {_fmt(reference.std)}"
        if values
        else ""
    )
    return Anomaly(
        model=baseline.model,
        metric=baseline.metric,
        kind=kind,
        indicators=indicators,
        severity=severity,
        incident_type=spec.incident_type if security else IncidentType.MODEL_DRIFT,
        direction=direction,
        value=observed,
        observed_at=sample.timestamp,
        samples=run.length,
        title=f"{baseline.model}: {baseline.metric} distribution shifted "
        f"(PSI = {psi:.2f}, {band}{detail})",
        description=(
            f"{_KIND_LABEL[kind]} anomaly on {baseline.model}: the distribution of "
            f"{baseline.metric} has moved from its reference for {run.length} windows in a row "
            f"(PSI {psi:.3f} ≥ {_fmt(rules.psi_threshold)}, {band}). "
            f"Indicators: {', '.join(indicators)}."
        ),
        psi=psi,
        baseline_mean=reference.mean if values else None,
        baseline_std=reference.std if values else None,
    )
