"""The `detection:` configuration section: anomaly thresholds and the metric table."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FiniteFloat,
    field_validator,
    model_validator,
)

from bot.domain.anomaly import (
    DEFAULT_METRICS,
    MIN_WARMUP_SAMPLES,
    AnomalyKind,
    DetectionRules,
    Direction,
    MetricSpec,
    family_incident_type,
    generic_spec,
    normalize_metric_name,
)
from bot.domain.vocabulary import IncidentType, Severity, parse_severity


def _severity(value: Any) -> Any:
    if isinstance(value, str):
        parsed = parse_severity(value)
        if parsed is None:
            raise ValueError(f"'{value}' is not a severity (critical, high, medium, low)")
        return parsed
    return value


def _family(value: Any) -> Any:
    # Accept the American spelling too; the stored value is the one in AnomalyKind.
    if isinstance(value, str) and value.strip().lower() == "behavioral":
        return AnomalyKind.BEHAVIOURAL
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricRule(_Strict):
    """One metric's rule; keys left out keep the built-in rule's (or the generic rule's)."""

    family: Annotated[AnomalyKind, BeforeValidator(_family)] | None = None
    indicator: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    bad_direction: Direction | None = None
    severity: Annotated[Severity, BeforeValidator(_severity)] | None = None
    incident_type: IncidentType | None = None
    limit: FiniteFloat | None = None

    def merged_over(self, base: MetricSpec) -> MetricSpec:
        """The base rule with the keys this one sets replaced."""
        changes: dict[str, Any] = {name: getattr(self, name) for name in self.model_fields_set}
        if "family" in changes and self.family is not None:
            # A new family brings its own defaults unless the rule restates them.
            changes.setdefault("severity", None)
            changes.setdefault("incident_type", family_incident_type(self.family))
        for required in ("family", "indicator", "bad_direction", "incident_type"):
            if changes.get(required, getattr(base, required)) is None:
                changes.pop(required, None)
        return replace(base, **changes)


class DetectionSettings(_Strict):
    """Anomaly-detector thresholds; `metrics` adds to or amends the built-in metric table."""

    z_threshold: FiniteFloat = Field(default=3.0, gt=0)
    warmup_samples: int = Field(default=30, ge=MIN_WARMUP_SAMPLES)
    sustain_samples: int = Field(default=3, ge=1)
    relearn_samples: int = Field(default=30, ge=MIN_WARMUP_SAMPLES)
    ewma_alpha: FiniteFloat = Field(default=0.03, gt=0, lt=1)
    psi_threshold: FiniteFloat = Field(default=0.15, gt=0)
    psi_bands: tuple[FiniteFloat, FiniteFloat] = (0.1, 0.25)
    psi_bins: int = Field(default=10, ge=2, le=100)
    psi_min_values: int = Field(default=200, ge=20)
    adversarial_score_threshold: FiniteFloat = 0.7
    metrics: dict[str, MetricRule] = {}

    @field_validator("psi_bands")
    @classmethod
    def _increasing(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] < value[1]:
            raise ValueError("must be two increasing positive numbers, like [0.1, 0.25]")
        return value

    @field_validator("metrics")
    @classmethod
    def _normalised_names(cls, value: dict[str, MetricRule]) -> dict[str, MetricRule]:
        rules: dict[str, MetricRule] = {}
        spelled: dict[str, str] = {}
        for name, rule in value.items():
            key = normalize_metric_name(name)
            if not key:
                raise ValueError("a metric name cannot be empty")
            if key in rules:
                raise ValueError(f"'{spelled[key]}' and '{name}' name the same metric")
            rules[key], spelled[key] = rule, name
        return rules

    @model_validator(mode="after")
    def _relearn_after_sustain(self) -> DetectionSettings:
        if self.sustain_samples >= self.relearn_samples:
            raise ValueError("sustain_samples must be below relearn_samples")
        if self.psi_min_values < self.psi_bins:
            raise ValueError("psi_min_values must be at least psi_bins")
        return self

    def metric_table(self) -> dict[str, MetricSpec]:
        """The built-in metric table with this configuration's rules merged over it."""
        table = dict(DEFAULT_METRICS)
        table["adversarial_score"] = replace(
            table["adversarial_score"], limit=self.adversarial_score_threshold
        )
        for name, rule in self.metrics.items():
            table[name] = rule.merged_over(table.get(name) or generic_spec(name))
        return table

    def to_rules(self) -> DetectionRules:
        """The settings as the plain values the domain's detector takes."""
        return DetectionRules(
            z_threshold=self.z_threshold,
            warmup_samples=self.warmup_samples,
            sustain_samples=self.sustain_samples,
            relearn_samples=self.relearn_samples,
            ewma_alpha=self.ewma_alpha,
            psi_threshold=self.psi_threshold,
            psi_bands=self.psi_bands,
            psi_bins=self.psi_bins,
            psi_min_values=self.psi_min_values,
            metrics=self.metric_table(),
        )
