"""Every template renders to Block Kit that slack_sdk and Slack's limits accept."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.incident import Incident, IncidentSummary, RoleHolder
from bot.domain.notifications import DeadlineOutcome, NotificationRecord, NotificationState
from bot.domain.regulatory import describe_clock
from bot.domain.vocabulary import (
    Audience,
    IncidentSource,
    IncidentState,
    IncidentType,
    NotificationTier,
    RegulatoryRegime,
    Role,
    Severity,
)
from bot.emulator.blockkit import check_message, check_view
from bot.presenters import (
    deadline_lines,
    incident_context,
    role_context,
    summary_context,
    vocabulary_context,
)
from bot.regulatory_presenters import clock_context
from bot.rendering import Renderer, escape_mrkdwn

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


def make_incident(**changes: Any) -> Incident:
    incident = Incident(
        id=1,
        number=12,
        title="Support bot follows injected instructions",
        description="Customers saw the system prompt.",
        incident_type=IncidentType.PROMPT_INJECTION,
        severity=Severity.CRITICAL,
        state=IncidentState.DECLARED,
        reporter_id="U0REPORTER",
        source=IncidentSource.SLASH_COMMAND,
        declared_at=NOW,
        updated_at=NOW,
        affected_systems=("support-v2",),
        personal_data=True,
        public_facing=True,
        channel_id="C0WARROOM",
        channel_name="inc-12-support",
        card_ts="1.2",
        indicators=("system_prompt_leak", "unusual_prompts"),
        atlas=("AML.T0051",),
        owasp=("LLM01:2025", "LLM07:2025"),
        confidence=0.93,
        classified_by="rules",
        explanation="Rules matched system_prompt_leak and unusual_prompts.",
        roles=(RoleHolder(Role.INCIDENT_COMMANDER, "U0IC"),),
    )
    return replace(incident, **changes)


WORST_CASE = make_incident(
    title="<script>&" + "very long title " * 30,
    description="D" * 5000 + " <@U1> & <!channel>",
    affected_systems=tuple(f"model-{i}" * 20 for i in range(40)),
    resolved_at=NOW,
    state=IncidentState.RESOLVED,
)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def deadlines_sample() -> dict[str, list[dict[str, Any]]]:
    """Every planned message and both legal clocks, as the card and status show them."""
    records = [
        NotificationRecord(
            id=i,
            incident_id=1,
            audience=audience,
            tier=NotificationTier.IMMEDIATE,
            state=list(NotificationState)[i % len(NotificationState)],
            due_at=NOW,
            created_at=NOW,
            sent_at=NOW,
            outcome=DeadlineOutcome.LATE,
            decided_by="U0COMMS",
        )
        for i, audience in enumerate(Audience)
    ]
    clock = describe_clock(
        regime=RegulatoryRegime.GDPR_ART33,
        case="personal_data_breach",
        started_at=NOW,
        due_at=NOW + timedelta(hours=72),
    )
    return {
        "messages": deadline_lines(records, channels={Audience.EXECUTIVE_TEAM: ["C1"]}),
        "clocks": [
            clock_context(clock, now=NOW),
            clock_context(clock, now=NOW, submitted_by="U0LEGAL", submitted_at=NOW),
        ],
    }


def proposal_context() -> dict[str, Any]:
    states = ["proposed", "manual_open", "failed", "succeeded", "rejected", "proposed", "expired"]
    return {
        "id": 7,
        "proposed_by": "warroom",
        "expires_at": NOW,
        "approvers": ["U0IC", "U0CISO"],
        "residual": {"level": "high", "summary": "The model still serves " + "x" * 4000},
        "actions": [
            {
                "id": i,
                "kind": "safe_mode",
                "label": "Safe mode",
                "state": state,
                "state_label": state,
                "target": "<model> " * 200,
                "target_needed": i == 0,
                "manual": state == "manual_open",
                "emergency": i == 1,
                "role_label": "AI safety lead",
                "reason": "why " * 300,
                "impact": "impact " * 300,
                "atlas": ["AML.M0020 Generative AI Guardrails"],
                "approvals_needed": 2,
                "approvers": ["U1"],
                "decided": "Approved by <@U1>",
                "result_line": "HTTP 200 in 12.0 ms",
            }
            for i, state in enumerate(states)
        ],
    }


def summary_of(incident: Incident) -> IncidentSummary:
    return IncidentSummary(
        id=incident.id,
        number=incident.number,
        title=incident.title,
        incident_type=incident.incident_type,
        severity=incident.severity,
        state=incident.state,
        channel_id=incident.channel_id,
    )


def all_renderings(renderer: Renderer, incident: Incident) -> dict[str, dict[str, Any]]:
    context = incident_context(incident)
    return {
        "incident_card": renderer.render(
            "incident_card", incident=context, deadlines=deadlines_sample(), **vocabulary_context()
        ),
        "role_checklist": renderer.render(
            "role_checklist", incident=context, role=role_context(Role.LEGAL_ADVISOR)
        ),
        "announcement": renderer.render("announcement", incident=context),
        "executive_alert": renderer.render(
            "executive_alert", incident=context, commander_id="U0IC"
        ),
        "urgent_commander_dm": renderer.render("urgent_commander_dm", incident=context),
        "status": renderer.render(
            "status",
            incident=context,
            timeline_count=3,
            containment=["Safe mode: awaiting a decision (1 of 2 approvals)"] * 30,
            deadlines=deadlines_sample(),
        ),
        "incident_list": renderer.render(
            "incident_list", incidents=[summary_context(summary_of(incident))] * 40, total=75
        ),
        "help": renderer.render("help", commands=[("/incident help", "this list")]),
        "user_error": renderer.render("user_error", message="bad <input>", usage="/incident x"),
        "ephemeral_notice": renderer.render("ephemeral_notice", message="Safe mode <approved>"),
        "declaring": renderer.render("declaring", incident=context, created=True),
        "containment_proposal": renderer.render(
            "containment_proposal",
            incident=context,
            proposal=proposal_context(),
        ),
        "alert_summary": renderer.render(
            "alert_summary",
            incident=context,
            summary={
                "firing": 3,
                "resolved": 1,
                "total": 40,
                "group_key": "am:{}:<x>",
                "latest": [f"<b>alert {i}</b> (firing)" * 20 for i in range(5)],
            },
        ),
        **{
            f"war_room_notice:{kind}": renderer.render(
                "war_room_notice",
                incident=context,
                event={
                    "kind": kind,
                    "actor_id": "U1",
                    "role_label": "Legal advisor",
                    "user_id": "U2",
                    "previous_id": "U3",
                    "previous": "high",
                    "flags": ["personal_data", "ai_act:death"],
                    "text": "Safe mode <on>\n<@U1> checks " + "x" * 4000,
                    "told": ["Executive team", "PR team"],
                    "failed": ["Affected users"],
                },
            )
            for kind in (
                "role_assigned",
                "severity_changed",
                "resolved",
                "escalated",
                "declared",
                "flagged",
                "status_update",
            )
        },
    }


def all_views(renderer: Renderer, incident: Incident) -> dict[str, dict[str, Any]]:
    context = incident_context(incident)
    return {
        "declare_modal": renderer.render(
            "declare_modal",
            private_metadata=json.dumps({"channel_id": "C1"}),
            let_warroom_decide="let_warroom_decide",
            flag_personal_data="personal_data",
            flag_public_facing="public_facing",
            **vocabulary_context(),
        ),
        "declared_modal": renderer.render("declared_modal", incident=context, created=False),
    }


@pytest.mark.parametrize("incident", [make_incident(), WORST_CASE], ids=["typical", "worst-case"])
def test_every_message_passes_block_kit_validation(renderer: Renderer, incident: Incident) -> None:
    for name, message in all_renderings(renderer, incident).items():
        assert check_message(message) == [], name
        assert message["text"], name


@pytest.mark.parametrize("incident", [make_incident(), WORST_CASE], ids=["typical", "worst-case"])
def test_every_view_passes_block_kit_validation(renderer: Renderer, incident: Incident) -> None:
    for name, view in all_views(renderer, incident).items():
        assert check_view(view) == [], name


def test_every_template_is_covered_by_these_tests(renderer: Renderer) -> None:
    """Top-level templates are covered here; each sub-folder (audiences/, notifications/,
    regulatory/) has its own test module with the same check."""
    covered = {name.split(":")[0] for name in all_renderings(renderer, make_incident())}
    covered |= set(all_views(renderer, make_incident())) | {"channel_texts"}
    assert {name for name in renderer.template_names() if "/" not in name} == covered


def test_card_shows_title_type_severity_state_roles_and_declaration(renderer: Renderer) -> None:
    card = renderer.render(
        "incident_card",
        incident=incident_context(make_incident()),
        deadlines=deadlines_sample(),
        **vocabulary_context(),
    )
    text = json.dumps(card)
    for expected in (
        "Incident #12: Support bot follows injected instructions",
        "Prompt injection",
        "critical",
        "declared",
        "Incident commander: <@U0IC>",
        "AI safety lead: _unassigned_",
        "by <@U0REPORTER>",
    ):
        assert expected in text
    actions = [b for b in card["blocks"] if b["type"] == "actions"][0]
    assert {e["action_id"] for e in actions["elements"]} == {
        "incident_card_status",
        "incident_card_severity",
        "incident_card_resolve",
        "incident_card_contain",
    }


def test_a_resolved_card_offers_no_buttons(renderer: Renderer) -> None:
    card = renderer.render(
        "incident_card",
        incident=incident_context(make_incident(state=IncidentState.RESOLVED)),
        deadlines=deadlines_sample(),
        **vocabulary_context(),
    )
    assert not [b for b in card["blocks"] if b["type"] == "actions"]


def test_user_text_cannot_inject_mentions_or_links(renderer: Renderer) -> None:
    incident = make_incident(title="ping <!channel> and <https://evil|click>")
    card = renderer.render(
        "incident_card",
        incident=incident_context(incident),
        deadlines=deadlines_sample(),
        **vocabulary_context(),
    )
    announcement = renderer.render("announcement", incident=incident_context(incident))
    assert "&lt;!channel&gt;" in announcement["blocks"][0]["text"]["text"]
    assert "<!channel>" not in json.dumps(announcement["blocks"])
    # plain_text headers are not mrkdwn: Slack shows them literally, so they stay as typed
    assert card["blocks"][0]["text"]["type"] == "plain_text"


def test_mentions_as_slash_commands_carry_them_keep_working() -> None:
    from bot.rendering import escape_mrkdwn_keep_mentions

    assert escape_mrkdwn_keep_mentions("ask <@U0SEC|priya> & <!channel>") == (
        "ask <@U0SEC> &amp; &lt;!channel&gt;"
    )


def test_escape_mrkdwn() -> None:
    assert escape_mrkdwn("a < b & c > d") == "a &lt; b &amp; c &gt; d"
    assert escape_mrkdwn("&lt;!here&gt;") == "&amp;lt;!here&amp;gt;"  # escaped once, as typed
    assert escape_mrkdwn(42) == "42"


def test_declare_modal_offers_the_vocabulary_and_let_warroom_decide(renderer: Renderer) -> None:
    view = all_views(renderer, make_incident())["declare_modal"]
    type_block = [b for b in view["blocks"] if b["block_id"] == "declare_type"][0]
    values = [o["value"] for o in type_block["element"]["options"]]
    assert values[0] == "let_warroom_decide"
    assert set(values[1:]) == {t.value for t in IncidentType}
    severity_block = [b for b in view["blocks"] if b["block_id"] == "declare_severity"][0]
    assert [o["value"] for o in severity_block["element"]["options"]] == [
        "critical",
        "high",
        "medium",
        "low",
    ]
    assert len(view["title"]["text"]) <= 24


@pytest.mark.parametrize("incident", [make_incident(), WORST_CASE], ids=["typical", "worst-case"])
def test_topic_and_purpose_fit_slacks_250_characters(
    renderer: Renderer, incident: Incident
) -> None:
    texts = renderer.render("channel_texts", incident=incident_context(incident))
    assert 0 < len(texts["topic"]) <= 250
    assert 0 < len(texts["purpose"]) <= 250
    assert incident.title[:20] in texts["topic"]


def test_card_and_status_list_every_deadline_with_where_it_stands(renderer: Renderer) -> None:
    card = json.dumps(
        renderer.render(
            "incident_card",
            incident=incident_context(make_incident()),
            deadlines=deadlines_sample(),
            **vocabulary_context(),
        )
    )
    for words in (
        "Executive team",
        "Regulatory body",
        "sent, late",
        "skipped",
        "late, with the commander",
        "no channel is configured",
        "GDPR Art. 33(1)",
        "submitted by <@U0LEGAL>",
    ):
        assert words in card, words


def test_card_links_the_newest_postmortem(renderer: Renderer) -> None:
    card = renderer.render(
        "incident_card",
        incident=incident_context(make_incident()),
        deadlines=deadlines_sample(),
        postmortem={"version": 3, "via": "canvas", "permalink": "https://x/c/1", "built_at": NOW},
        **vocabulary_context(),
    )
    assert check_message(card) == []
    assert "Postmortem v3 (canvas)" in json.dumps(card) and "<https://x/c/1|open it>" in json.dumps(
        card
    )


def test_card_shows_indicators_and_taxonomy(renderer: Renderer) -> None:
    card = renderer.render(
        "incident_card",
        incident=incident_context(make_incident()),
        deadlines=deadlines_sample(),
        **vocabulary_context(),
    )
    text = json.dumps(card)
    for expected in ("system_prompt_leak", "AML.T0051", "LLM01:2025", "Rules matched"):
        assert expected in text


def test_mentions_survive_escaping_where_warroom_writes_them(renderer: Renderer) -> None:
    reply = renderer.render("user_error", message="Only <@U0IC> may approve <!channel>", usage=None)
    text = reply["blocks"][0]["text"]["text"]
    assert "<@U0IC>" in text
    assert "&lt;!channel&gt;" in text


def test_the_incident_list_shows_one_line_an_incident_in_few_sections(
    renderer: Renderer,
) -> None:
    summaries = [
        IncidentSummary(
            id=n,
            number=n,
            title=f"Model <{n}> & friends",
            incident_type=IncidentType.PROMPT_INJECTION,
            severity=Severity.HIGH,
            state=IncidentState.CONTAINED,
            channel_id=f"C{n}" if n % 2 else None,
        )
        for n in range(40, 0, -1)
    ]
    reply = renderer.render(
        "incident_list", incidents=[summary_context(s) for s in summaries], total=41
    )
    assert reply["text"] == "41 open incidents"
    sections = [block["text"]["text"] for block in reply["blocks"][1:-1]]
    assert 2 <= len(sections) <= 3 and all(len(text) <= 3000 for text in sections)
    lines = "\n".join(sections).splitlines()
    assert lines[0] == (
        ":large_orange_circle: *#40* Model &lt;40&gt; &amp; friends — high, contained, "
        "Prompt injection — war room opening…"
    )
    assert lines[1].endswith("— <#C39>")
    assert [line.split("*#")[1].split("*")[0] for line in lines] == [
        str(n) for n in range(40, 0, -1)
    ]
    assert reply["blocks"][-1]["elements"][0]["text"] == "and 1 more"
    check_message(reply)


def test_an_empty_incident_list_says_so(renderer: Renderer) -> None:
    reply = renderer.render("incident_list", incidents=[], total=0)
    assert reply["text"] == "0 open incidents"
    assert reply["blocks"][0]["text"]["text"] == "No open incidents. :tada:"


def test_render_same_renders_once_per_key_and_hands_out_independent_dicts() -> None:
    renderer = Renderer()
    calls: list[int] = []

    def context(total: int) -> Callable[[], dict[str, Any]]:
        def build() -> dict[str, Any]:
            calls.append(total)
            return {"incidents": [], "total": total}

        return build

    first = renderer.render_same("incident_list", ("rows", 0), context(0))
    first["text"] = "changed by its caller"
    again = renderer.render_same("incident_list", ("rows", 0), context(0))
    assert calls == [0]
    assert again == renderer.render("incident_list", incidents=[], total=0)
    assert again["text"] != "changed by its caller"
    other = renderer.render_same("incident_list", ("rows", 3), context(3))
    assert calls == [0, 3] and other != again
    for n in range(40):  # a bounded number of renderings is kept
        renderer.render_same("incident_list", ("rows", 100 + n), context(100 + n))
    renderer.render_same("incident_list", ("rows", 0), context(0))
    assert calls[-1] == 0 and calls.count(0) == 2
