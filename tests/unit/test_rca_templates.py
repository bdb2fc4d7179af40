"""The root-cause analysis's messages and forms: the facts modal, the causal chain with Confirm /
Correct, the correction modal, a rule proposal with Apply / Dismiss, and the rules listing.
Each renders Block Kit that slack_sdk and Slack's limits accept, typical and worst case."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from bot.classifier import build_classifier
from bot.detection_settings import DetectionSettings
from bot.domain.rca import (
    CausalChain,
    ChainLink,
    Change,
    Finding,
    FindingKind,
    RcaFacts,
    RcaState,
    RcaVersion,
    Recommendation,
)
from bot.domain.rule_proposals import (
    Lessons,
    ProposalKind,
    ProposalRecord,
    ProposalState,
)
from bot.domain.vocabulary import IncidentType, Severity
from bot.emulator.blockkit import check_message, check_view
from bot.presenters import incident_context
from bot.rendering import Renderer
from bot.services.rca import chain_context, facts_context
from bot.services.rules import proposal_context, rules_context
from tests.unit.test_rendering import WORST_CASE, make_incident

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
NASTY = "<script>&amp; *bold* `code` <!channel> <@U1> " * 20


class FakeModel:
    def rank(self, text: str) -> list[tuple[IncidentType, float]]:
        return []

    def rank_many(self, texts: Sequence[str]) -> list[list[tuple[IncidentType, float]]]:
        return [self.rank(text) for text in texts]

    def prepare(self) -> None:
        """Nothing to prepare."""


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def finding(key: str, worst: bool) -> Finding:
    return Finding(
        key=key,
        kind=FindingKind.MODEL_DRIFT if key.startswith("m") else FindingKind.EXTERNAL_FACTOR,
        severity=Severity.HIGH,
        summary=(NASTY * 3) if worst else "The input distribution of vision-v3 drifted",
        evidence=tuple((NASTY * 2) for _ in range(8)) if worst else ("drift score 0.31",),
        recommendation=NASTY if worst else "Retrain on recent data.",
        incident_type=IncidentType.MODEL_DRIFT,
    )


def version(state: RcaState, worst: bool) -> RcaVersion:
    count = 40 if worst else 2
    findings = tuple(finding(f"m{i}", worst) for i in range(count))
    chain = CausalChain(
        trigger=ChainLink(
            NASTY * 4 if worst else "Deploy of vision-v3.2",
            tuple(NASTY for _ in range(10)) if worst else ("20 min before the first alert",),
            None,
        ),
        primary_cause=ChainLink(findings[0].summary, findings[0].evidence, findings[0].key),
        primary_type=IncidentType.MODEL_DRIFT,
        established=not worst,
        contributing_factors=tuple(ChainLink(f.summary, f.evidence, f.key) for f in findings[1:]),
        recommendations=tuple(Recommendation(f.recommendation, f.key) for f in findings),
    )
    facts = RcaFacts(model=NASTY[:200] if worst else "vision-v3", model_version="3.2")
    return RcaVersion(
        id=4,
        incident_id=1,
        version=2,
        state=state,
        facts=facts,
        findings=findings,
        chain=chain,
        created_by="U0DATA",
        created_at=NOW,
        confirmed_by="U0SAFETY" if state is not RcaState.PROPOSED else None,
        confirmed_at=NOW if state is not RcaState.PROPOSED else None,
    )


def record(
    state: ProposalState, kind: ProposalKind, worst: bool, number: int = 1
) -> ProposalRecord:
    payloads: dict[ProposalKind, dict[str, Any]] = {
        ProposalKind.INDICATOR_MAPPING: {
            "indicator": ("probe_" * 30) if worst else "gradient_probe",
            "incident_type": "adversarial_attack",
        },
        ProposalKind.THRESHOLD: {
            "model": NASTY[:200] if worst else "vision-v3",
            "metric": "adversarial_score",
            "parameter": "limit",
            "from": 0.7,
            "to": 0.63,
        },
        ProposalKind.MONITORING_GAP: {"model": "vision-v3", "metric": "input_drift"},
    }
    decided = state is not ProposalState.PROPOSED
    return ProposalRecord(
        id=number,
        incident_id=1,
        incident_number=12,
        kind=kind,
        key=f"k{number}",
        payload=payloads[kind],
        rationale=NASTY * 5 if worst else "It was in the alerts of incident #12.",
        state=state,
        created_at=NOW,
        decided_by="U0COMMANDER" if decided else None,
        decided_at=NOW if decided else None,
    )


def facts(worst: bool) -> RcaFacts:
    if not worst:
        return RcaFacts(model="vision-v3", drift_score=0.31, last_trained=date(2026, 5, 1))
    return RcaFacts(
        model=NASTY[:300],
        model_version=NASTY[:300],
        last_trained=date(2020, 1, 1),
        training_data=NASTY * 10,
        changes=tuple(Change(NASTY[:300], NOW - timedelta(minutes=i)) for i in range(20)),
        drift_score=123456.789,
        adversarial_score=0.99,
        suspected_trigger=NASTY,
        external_factors=tuple(NASTY[:300] for _ in range(20)),
    )


def rules_listing(worst: bool) -> dict[str, Any]:
    kinds = list(ProposalKind)
    records = [
        record(ProposalState.APPLIED, kinds[i % 3], worst, number=i)
        for i in range(100 if worst else 2)
    ]
    lessons = Lessons.from_records(records)
    classifier = build_classifier(model=FakeModel(), lessons=lessons.indicator_rules)
    return rules_context(
        indicators=classifier.rules,
        detection=DetectionSettings().to_rules(),
        lessons=lessons,
        applied=records,
        open_count=7 if worst else 0,
    )


def messages(renderer: Renderer, worst: bool) -> dict[str, dict[str, Any]]:
    incident = incident_context(WORST_CASE if worst else make_incident())
    confirmers = ["U0IC", "U0SAFETY", "U0DATA"]
    rendered = {
        f"rca/chain:{state.value}": renderer.render(
            "rca/chain",
            incident=incident,
            rca=chain_context(version(state, worst), 3 if state is RcaState.SUPERSEDED else None),
            confirmers=[] if worst else confirmers,
        )
        for state in RcaState
    }
    for state in ProposalState:
        for kind in ProposalKind:
            rendered[f"rca/rule_proposal:{state.value}:{kind.value}"] = renderer.render(
                "rca/rule_proposal",
                incident=incident,
                proposal=proposal_context(record(state, kind, worst)),
                deciders=[] if worst else ["U0IC", "U0SAFETY"],
            )
    rendered["rca/rules"] = renderer.render("rca/rules", **rules_listing(worst))
    return rendered


def views(renderer: Renderer, worst: bool) -> dict[str, dict[str, Any]]:
    incident = incident_context(WORST_CASE if worst else make_incident())
    chain = version(RcaState.PROPOSED, worst).chain
    return {
        "rca/facts_modal": renderer.render(
            "rca/facts_modal",
            incident=incident,
            private_metadata="1",
            facts=facts_context(facts(worst)),
            alert_count=5000 if worst else 1,
            observations=[NASTY] * 10 if worst else ["adversarial score 0.91 on vision-v3"],
            monitored=[f"metric_{i}" * 5 for i in range(100)] if worst else ["latency_ms"],
            thresholds={"drift": 0.15, "adversarial": 0.7, "stale_days": 90, "window_minutes": 120},
        ),
        "rca/correct_modal": renderer.render(
            "rca/correct_modal",
            private_metadata="4",
            version=2,
            trigger=chain.trigger.summary,
            primary=chain.primary_cause.summary,
            primary_type=chain.primary_type.value,
            primary_type_label=chain.primary_type.label,
            factors="\n".join(f.summary for f in chain.contributing_factors),
            types=[{"value": t.value, "label": t.label} for t in IncidentType],
        ),
    }


@pytest.mark.parametrize("worst", [False, True], ids=["typical", "worst-case"])
def test_every_rca_message_and_form_is_valid_block_kit(renderer: Renderer, worst: bool) -> None:
    for name, message in messages(renderer, worst).items():
        assert check_message(message) == [], name
        assert message["text"], name
    for name, view in views(renderer, worst).items():
        assert check_view(view) == [], name


def test_every_template_in_rca_is_covered(renderer: Renderer) -> None:
    covered = {name.split(":")[0] for name in messages(renderer, False)} | set(
        views(renderer, False)
    )
    assert {n for n in renderer.template_names() if n.startswith("rca/")} == covered


def buttons(message: dict[str, Any]) -> list[str]:
    return [
        e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]


def test_a_proposed_chain_offers_confirm_and_correct_a_confirmed_one_correct_only(
    renderer: Renderer,
) -> None:
    rendered = messages(renderer, False)
    assert buttons(rendered["rca/chain:proposed"]) == ["rca_confirm", "rca_correct"]
    assert buttons(rendered["rca/chain:confirmed"]) == ["rca_correct"]
    assert buttons(rendered["rca/chain:superseded"]) == []
    assert "Replaced by version 3" in json.dumps(rendered["rca/chain:superseded"])
    text = json.dumps(rendered["rca/chain:proposed"])
    for part in ("Trigger event", "Primary cause", "Contributing factors", "Recommendations"):
        assert part in text


def test_an_open_proposal_offers_apply_and_dismiss_and_a_decided_one_says_who(
    renderer: Renderer,
) -> None:
    rendered = messages(renderer, False)
    assert buttons(rendered["rca/rule_proposal:proposed:threshold"]) == [
        "rule_proposal_apply",
        "rule_proposal_dismiss",
    ]
    applied = rendered["rca/rule_proposal:applied:indicator_mapping"]
    assert buttons(applied) == []
    assert "Applied by <@U0COMMANDER>" in json.dumps(applied)


def test_user_text_is_escaped_in_messages(renderer: Renderer) -> None:
    chain = messages(renderer, True)["rca/chain:proposed"]
    assert "<script>" not in json.dumps(chain["blocks"])


def test_the_facts_form_is_prefilled(renderer: Renderer) -> None:
    view = views(renderer, False)["rca/facts_modal"]
    by_block = {b.get("block_id"): b for b in view["blocks"]}
    assert by_block["rca_model"]["element"]["initial_value"] == "vision-v3"
    assert by_block["rca_drift_score"]["element"]["initial_value"] == "0.31"
    assert by_block["rca_last_trained"]["element"]["initial_date"] == "2026-05-01"
    assert "initial_value" not in by_block["rca_adversarial_score"]["element"]


def test_the_rules_listing_marks_lessons(renderer: Renderer) -> None:
    listing = json.dumps(renderer.render("rca/rules", **rules_listing(False)))
    assert ":bulb:`gradient_probe`" in listing
    assert "Lessons applied* (2)" in listing


def test_a_worst_case_chain_keeps_within_the_block_limit(renderer: Renderer) -> None:
    chain = messages(renderer, True)["rca/chain:proposed"]
    assert len(chain["blocks"]) <= 50
    assert "and 24 more contributing factors" in json.dumps(chain)
    assert chain_context(version(RcaState.PROPOSED, False))["factors_more"] == 0
