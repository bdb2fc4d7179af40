"""Every audience template renders valid Block Kit and says what its audience needs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.audience_messages import AudienceFacts, render_audience_message
from bot.domain.incident import Incident, RoleHolder
from bot.domain.redaction import is_external
from bot.domain.vocabulary import (
    Audience,
    IncidentState,
    NotificationTier,
    Role,
)
from bot.emulator.blockkit import check_message
from bot.presenters import incident_context
from bot.rendering import Renderer
from tests.unit.test_rendering import make_incident

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


WORST_CASE = make_incident(
    title="<script>&" + "very long title " * 30,
    description="D" * 5000 + " <@U1> & <!channel>",
    affected_systems=tuple(f"model-{i}" * 20 for i in range(40)),
    indicators=tuple(f"indicator_{i}" * 5 for i in range(50)),
    explanation="<script>" * 800,
    resolved_at=NOW,
    state=IncidentState.RESOLVED,
    channel_id=None,
    roles=(),
    confidence=None,
)

FACTS = AudienceFacts(
    containment=("Safe mode: carried out", "Model shutdown: awaiting a decision"),
    timeline=(
        (NOW, "Incident declared"),
        (NOW + timedelta(minutes=4), "Safe mode approved by <@U0IC>"),
    ),
    decisions_needed=("Approve model shutdown for support-v2",),
    evidence=("2026-11-26T09:29:58Z WARN gateway prompt matched system_prompt_leak",),
    latest_update="We are investigating an issue with our support assistant.",
    contact="Data protection officer, dpo@example.com",
)

WORST_FACTS = AudienceFacts(
    containment=tuple("<b>contain</b> & " * 20 for _ in range(60)),
    timeline=tuple((NOW, "<!here> ```" * 40) for _ in range(60)),
    decisions_needed=tuple("decide <now> " * 30 for _ in range(40)),
    evidence=tuple("```log``` <x> & " * 30 for _ in range(200)),
    latest_update="<!channel> & <@U1> " * 400,
    contact="<dpo> & " * 200,
)

UPDATE = "Safe mode is on; <@U0IC> is checking the <logs> & alerts."
CASES = [(make_incident(), FACTS), (WORST_CASE, WORST_FACTS), (make_incident(), AudienceFacts())]
CASE_IDS = ["typical", "worst-case", "no-facts"]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def notice(
    renderer: Renderer, audience: Audience, incident: Incident, facts: AudienceFacts = FACTS
) -> dict[str, Any]:
    return render_audience_message(
        renderer,
        audience=audience,
        incident=incident,
        facts=facts,
        tier=NotificationTier.IMMEDIATE,
        due_at=NOW + timedelta(minutes=15),
    )


def update(
    renderer: Renderer,
    audience: Audience,
    incident: Incident,
    facts: AudienceFacts = FACTS,
    text: str = UPDATE,
) -> dict[str, Any]:
    return render_audience_message(
        renderer,
        audience=audience,
        incident=incident,
        facts=facts,
        update_text=text,
        update_author_id="U0COMMS",
    )


def dump(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False)


@pytest.mark.parametrize("audience", list(Audience), ids=str)
@pytest.mark.parametrize(("incident", "facts"), CASES, ids=CASE_IDS)
def test_every_audience_notice_passes_block_kit_validation(
    renderer: Renderer, audience: Audience, incident: Incident, facts: AudienceFacts
) -> None:
    message = notice(renderer, audience, incident, facts)
    assert check_message(message) == []
    assert message["text"].strip()


@pytest.mark.parametrize("audience", list(Audience), ids=str)
@pytest.mark.parametrize(("incident", "facts"), CASES, ids=CASE_IDS)
def test_every_audience_update_passes_block_kit_validation(
    renderer: Renderer, audience: Audience, incident: Incident, facts: AudienceFacts
) -> None:
    for text in (UPDATE, "<!channel> & <@U1> " * 600, ""):
        message = update(renderer, audience, incident, facts, text)
        assert check_message(message) == []
        assert message["text"].strip()


def test_every_template_in_audiences_is_covered(renderer: Renderer) -> None:
    audiences = {name for name in renderer.template_names() if name.startswith("audiences/")}
    assert audiences == {f"audiences/{audience.value}" for audience in Audience}


@pytest.mark.parametrize("audience", list(Audience), ids=str)
def test_an_update_leads_with_its_text_under_a_status_update_heading(
    renderer: Renderer, audience: Audience
) -> None:
    message = update(
        renderer, audience, make_incident(), text="Safe mode is on <for now> & holding."
    )
    assert message["blocks"][0]["text"]["text"] == "Status update on incident #12"
    assert "Safe mode is on &lt;for now&gt; &amp; holding." in message["blocks"][1]["text"]["text"]
    assert "<for now>" not in dump(message)


@pytest.mark.parametrize("audience", list(Audience), ids=str)
def test_user_text_cannot_inject_broadcasts_or_markup(
    renderer: Renderer, audience: Audience
) -> None:
    for message in (
        notice(renderer, audience, WORST_CASE, WORST_FACTS),
        update(renderer, audience, WORST_CASE, WORST_FACTS),
    ):
        blocks = dump(message)
        assert "<!channel>" not in blocks
        assert "<!here>" not in blocks
        assert "<script>" not in blocks
        assert "<b>" not in blocks


@pytest.mark.parametrize("audience", [Audience.AFFECTED_USERS, Audience.CUSTOMER_SUPPORT_LEADS])
@pytest.mark.parametrize("kind", ["notice", "update"])
def test_customer_facing_messages_carry_no_internals(
    renderer: Renderer, audience: Audience, kind: str
) -> None:
    incident = make_incident()
    message = (notice if kind == "notice" else update)(renderer, audience, incident, FACTS)
    text = dump(message)
    internals = (
        *incident.atlas,
        *incident.owasp,
        *incident.indicators,
        *incident.affected_systems,
        incident.incident_type.value,
        incident.title,
        incident.explanation,
        *FACTS.evidence,
        "AML.",
        "<#",
        "<@",
        "&lt;@",
        "U0IC",
        "C0WARROOM",
        "<!date",
    )
    for internal in internals:
        assert internal not in text, internal


def test_the_technical_team_gets_the_whole_technical_picture(renderer: Renderer) -> None:
    text = dump(notice(renderer, Audience.TECHNICAL_TEAM, make_incident()))
    for expected in (
        "Prompt injection",
        "prompt_injection",
        "critical",
        "declared",
        "support-v2",
        "`system_prompt_leak`, `unusual_prompts`",
        "AML.T0051",
        "LLM01:2025, LLM07:2025",
        "Rules matched system_prompt_leak",
        "93% confidence",
        "```\\n2026-11-26T09:29:58Z WARN gateway prompt matched system_prompt_leak\\n```",
        "<#C0WARROOM>",
        "<@U0IC>",
    ):
        assert expected in text, expected


def test_evidence_cannot_close_the_code_block_early(renderer: Renderer) -> None:
    facts = AudienceFacts(evidence=("before ``` after",))
    message = notice(renderer, Audience.TECHNICAL_TEAM, make_incident(), facts)
    evidence = [b for b in message["blocks"] if "Evidence" in b.get("text", {}).get("text", "")]
    assert evidence[0]["text"]["text"].count("```") == 2


def test_executives_see_impact_decisions_timeline_commander_and_next_update(
    renderer: Renderer,
) -> None:
    text = dump(notice(renderer, Audience.EXECUTIVE_TEAM, make_incident()))
    for expected in (
        "Business impact",
        "support-v2",
        "Personal data: *involved*",
        "Public-facing: *yes*",
        "Approve model shutdown for support-v2",
        "Safe mode approved by <@U0IC>",
        "*Incident commander*\\n<@U0IC>",
        "Next update",
    ):
        assert expected in text, expected


def test_executives_are_told_when_no_decision_is_needed(renderer: Renderer) -> None:
    text = dump(notice(renderer, Audience.EXECUTIVE_TEAM, make_incident(), AudienceFacts()))
    assert "None right now" in text


def test_security_sees_attack_indicators_atlas_containment_and_its_asks(
    renderer: Renderer,
) -> None:
    text = dump(notice(renderer, Audience.SECURITY_TEAM, make_incident()))
    for expected in (
        "*Attack type*\\nPrompt injection",
        "system_prompt_leak",
        "AML.T0051",
        "Safe mode: carried out",
        "What we need from security",
        "Rotate any credential",
    ):
        assert expected in text, expected


def test_legal_sees_reporting_duties_containment_and_the_legal_advisor(
    renderer: Renderer,
) -> None:
    incident = make_incident(
        roles=(RoleHolder(Role.INCIDENT_COMMANDER, "U0IC"), RoleHolder(Role.LEGAL_ADVISOR, "U0LAW"))
    )
    text = dump(notice(renderer, Audience.LEGAL_TEAM, incident))
    for expected in ("GDPR Art. 33", "72 hours", "EU AI Act", "Safe mode: carried out", "<@U0LAW>"):
        assert expected in text, expected


def test_legal_names_the_ai_act_case_once_the_incident_context_carries_it(
    renderer: Renderer,
) -> None:
    context = {
        "incident": {**incident_context(make_incident()), "ai_act_case": "serious"},
        "audience": {"name": "legal_team", "label": "Legal team", "external": False},
        "kind": "notice",
        "tier": None,
        "due_at": None,
        "update": None,
        "facts": {
            "containment": [],
            "timeline": [],
            "decisions_needed": [],
            "evidence": [],
            "latest_update": None,
            "contact": "",
        },
    }
    message = renderer.render("audiences/legal_team", **context)
    assert check_message(message) == []
    assert "*EU AI Act:* serious" in dump(message)


def test_communications_see_exposure_what_was_said_and_the_comms_lead(renderer: Renderer) -> None:
    incident = make_incident(
        roles=(RoleHolder(Role.COMMUNICATIONS_LEAD, "U0COMMS"),),
    )
    text = dump(notice(renderer, Audience.COMMUNICATIONS_TEAM, incident))
    for expected in (
        "What has been said so far",
        "We are investigating an issue with our support assistant.",
        "*Communications lead*\\n<@U0COMMS>",
        "Public-facing: *yes*",
    ):
        assert expected in text, expected
    quiet = dump(notice(renderer, Audience.COMMUNICATIONS_TEAM, incident, AudienceFacts()))
    assert "Nothing yet" in quiet


def test_the_dpo_sees_personal_data_facts_unknowns_and_the_gdpr_clock(renderer: Renderer) -> None:
    text = dump(notice(renderer, Audience.DATA_PROTECTION_OFFICER, make_incident()))
    for expected in (
        "*Personal data involved*\\n*yes*",
        "support-v2",
        "not yet known",
        "Safe mode: carried out",
        "72 hours",
        "Art. 33",
    ):
        assert expected in text, expected


def test_pr_gets_the_latest_update_as_the_public_line_or_a_holding_statement(
    renderer: Renderer,
) -> None:
    with_update = dump(notice(renderer, Audience.PR_TEAM, make_incident()))
    assert "We are investigating an issue with our support assistant." in with_update
    holding = dump(notice(renderer, Audience.PR_TEAM, make_incident(), AudienceFacts()))
    assert "holding statement" in holding
    assert "investigating it as a priority" in holding
    for text in (with_update, holding):
        assert "*Do*" in text and "*Don't*" in text
        for internal in ("AML.", "system_prompt_leak", "support-v2", "<#", "prompt_injection"):
            assert internal not in text, internal


def test_affected_users_get_plain_words_and_a_way_to_reach_us(renderer: Renderer) -> None:
    text = dump(notice(renderer, Audience.AFFECTED_USERS, make_incident()))
    for expected in (
        "What happened",
        "What this means for you",
        "What you can do",
        "How to contact us",
        "26 November 2026 at 09:30 UTC",
        "dpo@example.com",
    ):
        assert expected in text, expected


def test_the_regulator_gets_a_formal_notification_without_internal_links(
    renderer: Renderer,
) -> None:
    text = dump(notice(renderer, Audience.REGULATORY_BODY, make_incident()))
    for expected in (
        "Nature of the incident",
        "Categories and approximate numbers concerned",
        "to be confirmed",
        "Contact point*\\nData protection officer, dpo@example.com",
        "Likely consequences",
        "Measures taken or proposed",
        "Safe mode: carried out",
        "incident #12",
        "26 November 2026 at 09:30 UTC",
    ):
        assert expected in text, expected
    for internal in ("<#", "<!date", "<@", "U0IC", "C0WARROOM"):
        assert internal not in text, internal


def test_the_regulator_is_told_the_contact_point_is_to_be_confirmed_when_none_is_set(
    renderer: Renderer,
) -> None:
    text = dump(notice(renderer, Audience.REGULATORY_BODY, make_incident(), AudienceFacts()))
    assert "Contact point*\\nTo be confirmed." in text


@pytest.mark.parametrize("audience", sorted(a for a in Audience if is_external(a.value)), ids=str)
def test_external_messages_write_dates_out_instead_of_slack_date_tokens(
    renderer: Renderer, audience: Audience
) -> None:
    for message in (
        notice(renderer, audience, make_incident()),
        update(renderer, audience, make_incident()),
    ):
        assert "<!date" not in dump(message)
