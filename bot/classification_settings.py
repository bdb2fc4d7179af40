"""The `classification:` section of warroom.yml: extra indicators, modifiers, model threshold."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.domain.classification import (
    DEFAULT_MIN_MODEL_CONFIDENCE,
    DEFAULT_SEVERITY_CONFIDENCE,
    is_indicator_name,
    normalize_indicator,
)
from bot.domain.vocabulary import IncidentType

Modifier = Annotated[float, Field(ge=1.0, le=5.0)]


class ClassificationSettings(BaseModel):
    """How warroom classifies incidents, on top of the packaged rules and corpus."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Added to the packaged indicator table; an indicator may point at several types.
    indicators: dict[IncidentType, list[str]] = {}
    # Replace the packaged modifier of a type; at least 1.0 so severity is never lowered.
    severity_modifiers: dict[IncidentType, Modifier] = {}
    # Below this probability the text model's reading becomes unknown_ai_incident.
    min_model_confidence: float = Field(DEFAULT_MIN_MODEL_CONFIDENCE, ge=0.0, le=1.0)
    # A type read by the text model alone raises the severity only at this confidence.
    severity_confidence: float = Field(DEFAULT_SEVERITY_CONFIDENCE, ge=0.0, le=1.0)

    @field_validator("indicators")
    @classmethod
    def _indicator_names(
        cls, value: dict[IncidentType, list[str]]
    ) -> dict[IncidentType, list[str]]:
        if IncidentType.UNKNOWN_AI_INCIDENT in value:
            raise ValueError("unknown_ai_incident takes no indicators")
        cleaned: dict[IncidentType, list[str]] = {}
        for kind, names in value.items():
            cleaned[kind] = []
            for name in names:
                normal = normalize_indicator(name)
                if not is_indicator_name(normal):
                    raise ValueError(
                        f"'{name}' is not an indicator name (letters, digits and underscores)"
                    )
                cleaned[kind].append(normal)
        return cleaned
