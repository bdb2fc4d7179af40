"""Classifying an AI incident: its type, adjusted severity, confidence and taxonomy ids.

Type. Rules come first: every indicator an alert or reporter supplies, and every indicator
name written out in the title or description ("system prompt leak", "latency-spike"), points
at one or more types. The type with the most matched indicators wins. An indicator that points
at several types (``model_drift`` points at data poisoning and at model drift) counts once for
each, so alone it ties; a tie goes to the type the text model ranks higher, or, without text,
to the type with the larger severity modifier, because under-reacting to an attack costs more
than over-reacting to drift. When no indicator matches, the text model decides; a reading below
the minimum confidence, or no reading at all (empty or off-topic text, or fewer than three
words), is unknown_ai_incident.
A type the reporter chose is kept; indicators, severity and taxonomy are still computed.

Confidence. For rules: share × (1 − 0.5^(n+1)), where n is the number of indicators for the
chosen type and share is n over all indicator votes (one indicator: 0.75, two: 0.875; a two-way
tie halves it). When the text model's top reading is the same type, the two are combined as
independent evidence: 1 − (1 − rules)(1 − model). For the model alone: its probability.

Severity. risk = points(base) × modifier(type), with points low 2, medium 4, high 6,
critical 8, and modifiers from the rules file (1.0 when absent, never below 1.0). The risk maps
back through bands: ≥ 7.5 critical, ≥ 5.5 high, ≥ 3.5 medium, else low; each band starts half
a point below its own severity's points, so a modifier of 1.0 keeps the base severity. The
result is never lower than the base, and a data leak or security breach involving personal
data is at least high. A type read by the text model alone raises the severity only when its
confidence is at least 0.7: a guess must not page the executives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.domain.vocabulary import IncidentType, Severity

METHOD_RULES = "rules"
METHOD_MODEL = "model"
METHOD_RULES_AND_MODEL = "rules+model"
METHOD_REPORTER = "reporter"

DEFAULT_BASE_SEVERITY = Severity.MEDIUM
DEFAULT_MIN_MODEL_CONFIDENCE = 0.35
# A model-only reading raises the severity only at this confidence or above.
DEFAULT_SEVERITY_CONFIDENCE = 0.7
# Fewer words than this ("Status check") are too little for the text model to read.
MIN_WORDS_FOR_MODEL = 3

SEVERITY_POINTS: Mapping[Severity, float] = {
    Severity.LOW: 2.0,
    Severity.MEDIUM: 4.0,
    Severity.HIGH: 6.0,
    Severity.CRITICAL: 8.0,
}
# Highest first: the first band whose floor the risk reaches is the severity.
SEVERITY_BANDS: tuple[tuple[float, Severity], ...] = (
    (7.5, Severity.CRITICAL),
    (5.5, Severity.HIGH),
    (3.5, Severity.MEDIUM),
)
PERSONAL_DATA_TYPES = frozenset({IncidentType.DATA_LEAK, IncidentType.SECURITY_BREACH})
PERSONAL_DATA_FLOOR = Severity.HIGH

_INDICATOR_NAME = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")
_SEPARATORS = re.compile(r"[\s\-_]+")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Classification:
    incident_type: IncidentType
    severity: Severity
    confidence: float
    indicators: tuple[str, ...]
    atlas: tuple[str, ...]
    owasp: tuple[str, ...]
    method: str
    explanation: str


@dataclass(frozen=True)
class Taxonomy:
    """MITRE ATLAS technique ids and edition-tagged OWASP LLM Top 10 ids."""

    atlas: tuple[str, ...] = ()
    owasp: tuple[str, ...] = ()

    def __add__(self, other: Taxonomy) -> Taxonomy:
        return Taxonomy(
            atlas=_unique((*self.atlas, *other.atlas)),
            owasp=_unique((*self.owasp, *other.owasp)),
        )


class TextModel(Protocol):
    """A trained reader of free text: types with probabilities, best first."""

    def rank(self, text: str) -> Sequence[tuple[IncidentType, float]]:
        """Every type with its probability, best first; empty when the text gives no reading."""
        ...

    def rank_many(self, texts: Sequence[str]) -> Sequence[Sequence[tuple[IncidentType, float]]]:
        """`rank` of each text, in order (one call to the model is cheaper than several)."""
        ...

    def prepare(self) -> None:
        """Do any expensive set-up now instead of on the first ranking."""
        ...


def normalize_indicator(name: str) -> str:
    """An indicator in its canonical form: lowercase, dashes and spaces as underscores."""
    return _SEPARATORS.sub("_", name.strip().lower()).strip("_")


def is_indicator_name(name: str) -> bool:
    """Whether a normalised indicator is a well-formed snake_case name."""
    return bool(_INDICATOR_NAME.match(name))


@dataclass(frozen=True)
class IndicatorRules:
    """Which types each indicator points at, and how to find indicators in free text."""

    table: Mapping[str, tuple[IncidentType, ...]]
    _phrases: tuple[tuple[str, re.Pattern[str]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        phrases = tuple(
            (name, re.compile(r"\b" + r"[\s_-]+".join(name.split("_")) + r"\b"))
            for name in self.table
        )
        object.__setattr__(self, "_phrases", phrases)

    @classmethod
    def from_types(cls, by_type: Mapping[IncidentType, Iterable[str]]) -> IndicatorRules:
        """Rules from type → indicator names (names are normalised; order is kept)."""
        table: dict[str, list[IncidentType]] = {}
        for kind, names in by_type.items():
            for name in names:
                types = table.setdefault(normalize_indicator(name), [])
                if kind not in types:
                    types.append(kind)
        return cls(table={name: tuple(types) for name, types in table.items()})

    def indicators_for(self, kind: IncidentType) -> tuple[str, ...]:
        """The indicators that point at a type."""
        return tuple(name for name, types in self.table.items() if kind in types)

    def match(self, indicators: Iterable[str], text: str) -> tuple[str, ...]:
        """Known indicators among those given, then those written out in the text; no repeats."""
        given = (normalize_indicator(name) for name in indicators)
        lowered = text.lower()
        written = (name for name, phrase in self._phrases if phrase.search(lowered))
        return _unique(name for name in (*given, *written) if name in self.table)

    def votes(self, matched: Iterable[str]) -> dict[IncidentType, int]:
        """Type → number of matched indicators pointing at it."""
        counts: dict[IncidentType, int] = {}
        for name in matched:
            for kind in self.table.get(name, ()):
                counts[kind] = counts.get(kind, 0) + 1
        return counts


def risk_score(base: Severity, modifier: float) -> float:
    """The documented risk score: the base severity's points times the type's modifier."""
    return SEVERITY_POINTS[base] * modifier


def severity_for_risk(score: float) -> Severity:
    """The severity band a risk score falls in."""
    for floor, severity in SEVERITY_BANDS:
        if score >= floor:
            return severity
    return Severity.LOW


def adjust_severity(
    *, base: Severity, incident_type: IncidentType, modifier: float, personal_data: bool
) -> Severity:
    """The base severity raised by the type's risk modifier and the personal-data floor."""
    adjusted = _more_severe(base, severity_for_risk(risk_score(base, modifier)))
    if personal_data and incident_type in PERSONAL_DATA_TYPES:
        adjusted = _more_severe(adjusted, PERSONAL_DATA_FLOOR)
    return adjusted


@dataclass(frozen=True)
class _Reading:
    incident_type: IncidentType
    confidence: float
    method: str
    reason: str

    def sentence(self) -> str:
        return self.reason[0].upper() + self.reason[1:] + "."


@dataclass(frozen=True)
class Report:
    """What is classified: a report's words, its indicators and what its reporter said."""

    title: str
    description: str = ""
    indicators: tuple[str, ...] = ()
    base_severity: Severity | None = None
    personal_data: bool = False
    incident_type: IncidentType | None = None

    @property
    def text(self) -> str:
        return "\n".join(part.strip() for part in (self.title, self.description) if part.strip())


class Classifier:
    """Rules, a text model, severity modifiers and taxonomy: built once, called per incident."""

    def __init__(
        self,
        *,
        rules: IndicatorRules,
        model: TextModel,
        taxonomy: Mapping[IncidentType, Taxonomy],
        indicator_taxonomy: Mapping[str, Taxonomy] | None = None,
        modifiers: Mapping[IncidentType, float] | None = None,
        min_model_confidence: float = DEFAULT_MIN_MODEL_CONFIDENCE,
        severity_confidence: float = DEFAULT_SEVERITY_CONFIDENCE,
    ) -> None:
        self.rules = rules
        self._model = model
        self._taxonomy = dict(taxonomy)
        self._indicator_taxonomy = dict(indicator_taxonomy or {})
        self._modifiers = {kind: max(1.0, value) for kind, value in (modifiers or {}).items()}
        self.min_model_confidence = min_model_confidence
        self.severity_confidence = severity_confidence

    def modifier(self, kind: IncidentType) -> float:
        """The severity modifier of a type (1.0 unless the rules file says otherwise)."""
        return self._modifiers.get(kind, 1.0)

    def warm_up(self) -> None:
        """Prepare the text model now, so the first classification is as fast as the rest."""
        self._model.prepare()

    def classify(
        self,
        *,
        title: str,
        description: str = "",
        indicators: Sequence[str] = (),
        base_severity: Severity | None = None,
        personal_data: bool = False,
        incident_type: IncidentType | None = None,
    ) -> Classification:
        """Type, adjusted severity, confidence, matched indicators and taxonomy of an incident."""
        report = Report(
            title=title,
            description=description,
            indicators=tuple(indicators),
            base_severity=base_severity,
            personal_data=personal_data,
            incident_type=incident_type,
        )
        return self.classify_many([report])[0]

    def classify_many(self, reports: Sequence[Report]) -> list[Classification]:
        """`classify` of each report, in order, asking the text model once for all."""
        texts = [report.text for report in reports]
        readable = [text for text in texts if text]
        rankings = dict(zip(readable, self._model.rank_many(readable), strict=True))
        return [
            self._classify(report, tuple(rankings.get(text, ())))
            for report, text in zip(reports, texts, strict=True)
        ]

    def _classify(
        self, report: Report, ranking: tuple[tuple[IncidentType, float], ...]
    ) -> Classification:
        text, incident_type, base_severity = report.text, report.incident_type, report.base_severity
        matched = self.rules.match(report.indicators, text)
        reading = self._read(matched, ranking, text)
        if incident_type is not None and incident_type is not reading.incident_type:
            reading = _Reading(
                incident_type,
                1.0,
                METHOD_REPORTER,
                f"The reporter chose {_label(incident_type)}; warroom's reading was "
                f"{_label(reading.incident_type)} ({reading.reason})",
            )
        elif incident_type is not None:
            reading = _Reading(
                incident_type,
                1.0,
                METHOD_REPORTER,
                f"The reporter chose {_label(incident_type)}, as warroom read it "
                f"({reading.reason})",
            )
        base = base_severity or DEFAULT_BASE_SEVERITY
        kind = reading.incident_type
        if not self._trusted(reading) and self.modifier(kind) > 1.0:
            severity = base
            severity_sentence = (
                f"Severity stays {base.value}: a model reading at {reading.confidence:.2f} is "
                f"not enough to raise it (needs {self.severity_confidence:.2f})."
            )
        else:
            severity = adjust_severity(
                base=base,
                incident_type=kind,
                modifier=self.modifier(kind),
                personal_data=report.personal_data,
            )
            severity_sentence = self._severity_sentence(base, severity, kind)
        taxonomy = self._taxonomy.get(kind, Taxonomy())
        for name in matched:
            taxonomy = taxonomy + self._indicator_taxonomy.get(name, Taxonomy())
        return Classification(
            incident_type=kind,
            severity=severity,
            confidence=round(min(1.0, max(0.0, reading.confidence)), 3),
            indicators=matched,
            atlas=taxonomy.atlas,
            owasp=taxonomy.owasp,
            method=reading.method,
            explanation=" ".join((reading.sentence(), severity_sentence)).strip(),
        )

    def _trusted(self, reading: _Reading) -> bool:
        """Only a reading warroom is sure of may raise the severity a person or monitor set."""
        return reading.method != METHOD_MODEL or reading.confidence >= self.severity_confidence

    def _read(
        self, matched: tuple[str, ...], ranking: tuple[tuple[IncidentType, float], ...], text: str
    ) -> _Reading:
        model_type, model_p = ranking[0] if ranking else (None, 0.0)
        votes = self.rules.votes(matched)
        if votes:
            return self._read_rules(matched, votes, ranking)
        if len(_WORD.findall(text)) < MIN_WORDS_FOR_MODEL:
            return _Reading(
                IncidentType.UNKNOWN_AI_INCIDENT,
                0.0,
                METHOD_MODEL,
                f"no indicator matched and {MIN_WORDS_FOR_MODEL} words are the least the text "
                "model reads",
            )
        if model_type is None:
            return _Reading(
                IncidentType.UNKNOWN_AI_INCIDENT,
                0.0,
                METHOD_MODEL,
                "no indicator matched and there is no text the model recognises",
            )
        if model_p < self.min_model_confidence:
            return _Reading(
                IncidentType.UNKNOWN_AI_INCIDENT,
                model_p,
                METHOD_MODEL,
                f"no indicator matched and the model's best reading, {_label(model_type)} at "
                f"{model_p:.2f}, is below {self.min_model_confidence:.2f}",
            )
        return _Reading(
            model_type,
            model_p,
            METHOD_MODEL,
            f"no indicator matched; the text model reads {_label(model_type)} at {model_p:.2f}",
        )

    def _read_rules(
        self,
        matched: tuple[str, ...],
        votes: dict[IncidentType, int],
        ranking: tuple[tuple[IncidentType, float], ...],
    ) -> _Reading:
        top = max(votes.values())
        tied = [kind for kind in IncidentType if votes.get(kind) == top]
        probability = dict(ranking)
        if len(tied) == 1:
            kind = tied[0]
            tie_note = ""
        elif ranking:
            kind = max(tied, key=lambda k: probability.get(k, 0.0))
            tie_note = (
                f"; tied with {_labels(k for k in tied if k is not kind)}, "
                "the text model broke the tie"
            )
        else:
            kind = max(tied, key=self.modifier)
            tie_note = (
                f"; tied with {_labels(k for k in tied if k is not kind)}, "
                "the type with the larger risk modifier wins"
            )
        names = [name for name in matched if kind in self.rules.table[name]]
        share = top / sum(votes.values())
        confidence = share * (1 - 0.5 ** (top + 1))
        model_type, model_p = ranking[0] if ranking else (None, 0.0)
        pointing = (
            f"indicators {', '.join(names)} point"
            if len(names) > 1
            else f"indicator {names[0]} points"
        )
        reason = f"{pointing} to {_label(kind)}{tie_note}"
        if model_type is kind:
            return _Reading(
                kind,
                1 - (1 - confidence) * (1 - model_p),
                METHOD_RULES_AND_MODEL,
                f"{reason}; the text model agrees at {model_p:.2f}",
            )
        method = METHOD_RULES_AND_MODEL if len(tied) > 1 and ranking else METHOD_RULES
        model_note = (
            f"; the text model read {_label(model_type)} at {model_p:.2f}"
            if model_type is not None
            else ""
        )
        return _Reading(kind, confidence, method, reason + model_note)

    def _severity_sentence(self, base: Severity, severity: Severity, kind: IncidentType) -> str:
        modifier = self.modifier(kind)
        score = risk_score(base, modifier)
        risk = f"risk {SEVERITY_POINTS[base]:g} × {modifier:g} = {score:.1f}"
        if severity is base:
            return f"Severity stays {base.value} ({risk})."
        if severity_for_risk(score).rank > severity.rank:
            return (
                f"Severity raised from {base.value} to {severity.value}: a {_label(kind)} "
                f"involving personal data is at least {PERSONAL_DATA_FLOOR.value} ({risk})."
            )
        return f"Severity raised from {base.value} to {severity.value} ({risk})."


def _more_severe(a: Severity, b: Severity) -> Severity:
    return a if a.rank <= b.rank else b


def _label(kind: IncidentType | None) -> str:
    return kind.value.replace("_", " ") if kind is not None else "nothing"


def _labels(kinds: Iterable[IncidentType]) -> str:
    return ", ".join(_label(kind) for kind in kinds)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
