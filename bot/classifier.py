"""Builds the incident classifier from the packaged rules, taxonomy and corpus plus settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache, partial
from importlib import resources
from typing import Any

import yaml

from bot.classification_settings import ClassificationSettings
from bot.domain.classification import Classifier, IndicatorRules, Taxonomy, TextModel
from bot.domain.vocabulary import IncidentType
from bot.text_model import shared_text_model

DATA_PACKAGE = "bot"


@dataclass(frozen=True)
class PackagedRules:
    indicators: Mapping[IncidentType, tuple[str, ...]]
    modifiers: Mapping[IncidentType, float]


@dataclass(frozen=True)
class PackagedTaxonomy:
    types: Mapping[IncidentType, Taxonomy]
    indicators: Mapping[str, Taxonomy]
    names: Mapping[str, str]  # ATLAS and OWASP id → name, for people reading the ids


def _read_yaml(name: str) -> Any:
    text = resources.files(DATA_PACKAGE).joinpath("data", name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


@cache
def packaged_rules() -> PackagedRules:
    """The indicator table and severity modifiers in ``bot/data/indicators.yaml``."""
    data = _read_yaml("indicators.yaml")
    return PackagedRules(
        indicators={IncidentType(kind): tuple(names) for kind, names in data["indicators"].items()},
        modifiers={
            IncidentType(kind): float(value) for kind, value in data["severity_modifiers"].items()
        },
    )


@cache
def packaged_taxonomy() -> PackagedTaxonomy:
    """The ATLAS and OWASP mapping in ``bot/data/taxonomy.yaml``."""
    data = _read_yaml("taxonomy.yaml")
    names: dict[str, str] = {
        f"{number}:{edition}": title
        for edition, entries in data["owasp"].items()
        for number, title in entries.items()
    }

    def taxonomy(entry: Mapping[str, Any]) -> Taxonomy:
        atlas = entry.get("atlas") or {}
        names.update(atlas)
        return Taxonomy(atlas=tuple(atlas), owasp=tuple(entry.get("owasp") or ()))

    types = {IncidentType(kind): taxonomy(entry) for kind, entry in data["types"].items()}
    indicators = {name: taxonomy(entry) for name, entry in data["indicators"].items()}
    return PackagedTaxonomy(types=types, indicators=indicators, names=names)


Lessons = Callable[[IndicatorRules], IndicatorRules]


class LearningClassifier(Classifier):
    """A classifier whose indicator rules are asked of `lessons` at every read: the packaged
    and configured rules plus the lessons applied since, so applying one needs no restart."""

    def __init__(self, *, lessons: Lessons, **kwargs: Any) -> None:
        self._lessons = lessons
        super().__init__(**kwargs)

    @property
    def rules(self) -> IndicatorRules:
        return self._lessons(self._base_rules)

    @rules.setter
    def rules(self, value: IndicatorRules) -> None:
        self._base_rules = value


def build_classifier(
    settings: ClassificationSettings | None = None,
    *,
    model: TextModel | None = None,
    lessons: Lessons | None = None,
) -> Classifier:
    """A classifier from the packaged data and the team's settings; the model trains lazily.
    With `lessons`, applied lessons are added to the indicator rules as they are applied."""
    settings = settings or ClassificationSettings()
    rules = packaged_rules()
    indicators: dict[IncidentType, list[str]] = {
        kind: list(names) for kind, names in rules.indicators.items()
    }
    for kind, names in settings.indicators.items():
        indicators.setdefault(kind, []).extend(names)
    taxonomy = packaged_taxonomy()
    build = Classifier if lessons is None else partial(LearningClassifier, lessons=lessons)
    return build(
        rules=IndicatorRules.from_types(indicators),
        model=model if model is not None else shared_text_model(),
        taxonomy=taxonomy.types,
        indicator_taxonomy=taxonomy.indicators,
        modifiers={**rules.modifiers, **settings.severity_modifiers},
        min_model_confidence=settings.min_model_confidence,
        severity_confidence=settings.severity_confidence,
    )
