"""A first reading of an incident's type from its words, for "let warroom decide"."""

from __future__ import annotations

import re

from bot.domain.vocabulary import IncidentType

# Ordered: the first rule whose pattern matches wins, so narrower types come first.
_SIGNS: tuple[tuple[IncidentType, tuple[str, ...]], ...] = (
    (
        IncidentType.PROMPT_INJECTION,
        (
            r"prompt[\s_-]*injection",
            r"ignore (all )?previous instructions",
            r"indirect injection",
        ),
    ),
    (
        IncidentType.JAILBREAK_ATTEMPT,
        (
            r"jail\s*break",
            r"\bDAN\b",
            r"guardrail bypass",
            r"bypass(ed)? (the )?safety",
        ),
    ),
    (
        IncidentType.DATA_LEAK,
        (
            r"\bleak",
            r"\bpii\b",
            r"personal data",
            r"exfiltrat",
            r"exposed (customer|user) data",
        ),
    ),
    (
        IncidentType.DATA_POISONING,
        (
            r"poison",
            r"backdoor(ed)? (training|data)",
            r"tampered (training|data)",
        ),
    ),
    (
        IncidentType.MODEL_EXTRACTION,
        (
            r"extraction",
            r"model (theft|stealing)",
            r"distillation attack",
            r"scraping (the )?model",
        ),
    ),
    (IncidentType.ADVERSARIAL_ATTACK, (r"adversarial", r"evasion attack", r"perturbation")),
    (
        IncidentType.HALLUCINATION_CASCADE,
        (
            r"hallucinat",
            r"fabricat",
            r"made[- ]up (facts|citations)",
        ),
    ),
    (IncidentType.MODEL_DRIFT, (r"\bdrift", r"distribution shift", r"accuracy (drop|decline)")),
    (IncidentType.HOSTILE_BEHAVIOR, (r"hostile", r"toxic", r"abusive", r"threaten", r"harass")),
    (
        IncidentType.SECURITY_BREACH,
        (
            r"breach",
            r"unauthori[sz]ed access",
            r"compromis",
            r"stolen (key|token|credential)",
        ),
    ),
    (
        IncidentType.PERFORMANCE_DEGRADATION,
        (
            r"latency",
            r"timeout",
            r"\bslow",
            r"error rate",
            r"degrad",
            r"outage",
        ),
    ),
)
_RULES = tuple((kind, re.compile("|".join(signs), re.IGNORECASE)) for kind, signs in _SIGNS)


def infer_incident_type(*, title: str, description: str = "") -> IncidentType:
    """The most specific type whose signs appear in the text, else unknown_ai_incident."""
    text = f"{title}\n{description}"
    for kind, pattern in _RULES:
        if pattern.search(text):
            return kind
    return IncidentType.UNKNOWN_AI_INCIDENT
