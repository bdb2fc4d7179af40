"""Rendering an audience message: redaction for external audiences, and template overrides."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.audience_messages import (
    AudienceFacts,
    redact_message,
    render_audience_message,
    render_override_problems,
)
from bot.domain.incident import Incident, RoleHolder
from bot.domain.redaction import EXTERNAL_AUDIENCES
from bot.domain.vocabulary import (
    Audience,
    IncidentSource,
    IncidentState,
    IncidentType,
    NotificationTier,
    Role,
    Severity,
)
from bot.emulator.blockkit import check_message
from bot.rendering import Renderer

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
EXTERNAL = sorted(Audience(value) for value in EXTERNAL_AUDIENCES)

EMAIL = "jane.doe@example.com"
PHONE = "+44 20 7946 0958"
IPV4 = "203.0.113.42"
OPENAI_KEY = "sk-proj-Ab3dE5gH7jK9mN1pQ3sT5vX7zB9cD1fG"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
SLACK_TOKEN = "xoxb-2384756120-4958672031-Zx8cV7bN6mQ5wE4rT3yU2iO1"
GITHUB_TOKEN = "ghp_R7sT9uV1wX3yZ5aB7cD9eF1gH3iJ5kL7mN9o"
SECRETS = (EMAIL, PHONE, IPV4, OPENAI_KEY, AWS_KEY, SLACK_TOKEN, GITHUB_TOKEN)

TICKET = (
    f"Customer {EMAIL} (call {PHONE}) reported from {IPV4} that the support bot printed "
    f"OPENAI_API_KEY={OPENAI_KEY}, the AWS key {AWS_KEY}, a Slack token {SLACK_TOKEN} and "
    f"{GITHUB_TOKEN}. <@U0IC> has paged the vendor."
)


def make_incident(**changes: Any) -> Incident:
    incident = Incident(
        id=1,
        number=12,
        title="Support bot prints credentials",
        description=TICKET,
        incident_type=IncidentType.DATA_LEAK,
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
        indicators=("credential_in_output",),
        atlas=("AML.T0057",),
        roles=(
            RoleHolder(Role.INCIDENT_COMMANDER, "U0IC"),
            RoleHolder(Role.COMMUNICATIONS_LEAD, "U0COMMS"),
        ),
    )
    return replace(incident, **changes)


FACTS = AudienceFacts(
    containment=(f"Key {OPENAI_KEY} revoked by <@U0IC>",),
    timeline=((NOW, f"Ticket from {EMAIL} attached"),),
    decisions_needed=("Approve model shutdown for support-v2",),
    evidence=(f"2026-11-26T09:29:58Z WARN client_ip={IPV4} output contained {AWS_KEY}",),
    latest_update=TICKET,
    contact="Data protection officer, dpo@example.com, +44 20 7946 0000",
)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def render(
    renderer: Renderer,
    audience: Audience,
    *,
    incident: Incident | None = None,
    facts: AudienceFacts = FACTS,
    update_text: str | None = None,
) -> dict[str, Any]:
    return render_audience_message(
        renderer,
        audience=audience,
        incident=incident or make_incident(),
        facts=facts,
        tier=None if update_text is not None else NotificationTier.URGENT,
        due_at=None if update_text is not None else NOW,
        update_text=update_text,
        update_author_id="U0COMMS" if update_text is not None else None,
    )


def dump(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False)


# --- redaction ---------------------------------------------------------------------------------


@pytest.mark.parametrize("audience", EXTERNAL, ids=str)
@pytest.mark.parametrize("update_text", [None, TICKET], ids=["notice", "update"])
def test_external_messages_carry_no_personal_data_secrets_or_mentions(
    renderer: Renderer, audience: Audience, update_text: str | None
) -> None:
    message = render(renderer, audience, update_text=update_text)
    text = dump(message)
    for leaked in (*SECRETS, "<@U0IC>", "&lt;@U0IC&gt;", "U0IC", "U0COMMS"):
        assert leaked not in text, leaked
    assert "the Incident commander" in text
    assert check_message(message) == []


@pytest.mark.parametrize("audience", [Audience.AFFECTED_USERS, Audience.REGULATORY_BODY], ids=str)
def test_external_messages_keep_the_configured_contact_point(
    renderer: Renderer, audience: Audience
) -> None:
    """The contact is published on purpose (GDPR Art. 33(3)(b), Art. 34), so the redaction
    pass leaves it whole; PR and support route people through the communications lead."""
    text = dump(render(renderer, audience))
    assert "dpo@example.com, +44 20 7946 0000" in text


def test_the_technical_team_sees_the_details_unredacted(renderer: Renderer) -> None:
    text = dump(render(renderer, Audience.TECHNICAL_TEAM))
    for detail in (*SECRETS, "<@U0IC>"):
        assert detail in text, detail
    update = dump(render(renderer, Audience.TECHNICAL_TEAM, update_text=TICKET))
    assert OPENAI_KEY in update
    assert "<@U0IC> has paged the vendor" in update


def test_a_secret_that_a_template_clips_is_still_redacted_whole(renderer: Renderer) -> None:
    """Inputs are redacted before rendering, so a clip cannot leave half a key behind."""
    description = "x " * 290 + OPENAI_KEY + " " + EMAIL
    incident = make_incident(description=description)
    text = dump(render(renderer, Audience.REGULATORY_BODY, incident=incident))
    for part in ("sk-proj-", "jane.doe", OPENAI_KEY[:12]):
        assert part not in text, part


def hand_edited(text: str) -> dict[str, Any]:
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": text[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]},
        ],
    }


@pytest.mark.parametrize("audience", EXTERNAL, ids=str)
def test_a_hand_edited_message_for_an_external_audience_is_redacted(audience: Audience) -> None:
    message = redact_message(hand_edited(TICKET), incident=make_incident(), audience=audience)
    text = dump(message)
    for leaked in (*SECRETS, "<@U0IC>"):
        assert leaked not in text, leaked
    assert message["blocks"][1]["text"]["text"].endswith(
        "the Incident commander has paged the vendor."
    )
    assert check_message(message) == []


def test_a_hand_edited_message_for_an_internal_audience_is_left_alone() -> None:
    original = hand_edited(TICKET)
    message = redact_message(original, incident=make_incident(), audience=Audience.LEGAL_TEAM)
    assert message == hand_edited(TICKET)


def write_override(root: Path, audience: str, body: str) -> None:
    folder = root / "audiences"
    folder.mkdir(exist_ok=True)
    (folder / f"{audience}.json.j2").write_text(body)


def test_an_override_that_shows_mentions_is_still_redacted_and_kept_within_limits(
    tmp_path: Path,
) -> None:
    write_override(
        tmp_path,
        "pr_team",
        """{
  "text": {{ ("%s <@%s>" % (incident.title, incident.reporter_id)) | tojson }},
  "blocks": [
    {"type": "header", "text": {"type": "plain_text", "text": {{ ("<@U0IC> " * 18) | tojson }}}},
    {"type": "section", "text": {"type": "mrkdwn",
      "text": {{ ("&lt;@U0IC&gt; " * 212) | tojson }}}},
    {"type": "section", "fields": [{"type": "mrkdwn", "text": {{ ("<@U0IC> " * 240) | tojson }}}]}
  ]
}""",
    )
    message = render(Renderer(extra_dir=tmp_path), Audience.PR_TEAM)
    assert check_message(message) == []
    text = dump(message)
    assert "U0IC" not in text and "U0REPORTER" not in text
    assert message["blocks"][0]["text"]["text"].startswith("the Incident commander the ")
    assert message["text"].endswith("a responder")


# --- overrides -----------------------------------------------------------------------------------


def test_an_override_in_templates_dir_replaces_the_built_in_template(tmp_path: Path) -> None:
    write_override(
        tmp_path,
        "pr_team",
        """{
  "text": {{ ("Our line on #%d" % incident.number) | tojson }},
  "blocks": [
{% set line = (update.text if update else facts.latest_update) or "nothing" %}
    {"type": "section", "text": {"type": "mrkdwn",
      "text": {{ ("Say only: %s" % (line | mrkdwn)) | tojson }}}}
  ]
}""",
    )
    message = render(Renderer(extra_dir=tmp_path), Audience.PR_TEAM)
    assert message["text"] == "Our line on #12"
    assert message["blocks"][0]["text"]["text"].startswith("Say only: Customer [email]")


def test_the_built_in_templates_have_no_problems() -> None:
    assert render_override_problems(Renderer()) == []


def test_good_overrides_have_no_problems(tmp_path: Path) -> None:
    write_override(
        tmp_path,
        "pr_team",
        """{% import "audiences/_macros.j2" as m %}
{"text": {{ ("Incident #%d" % incident.number) | tojson }},
 "blocks": [{{ m.header(kind, incident, "Our statement") }}]}""",
    )
    assert render_override_problems(Renderer(extra_dir=tmp_path)) == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"text": "unfinished", "blocks": [', "invalid JSON"),
        ('{"text": {{ incident.no_such_field | tojson }}}', "undefined variable or field"),
        ('{"text": "{{ nonsense }}"}', "'nonsense' is undefined (line 1 of pr_team.json.j2)"),
        ('{"text": "x", "blocks": [{"type": "section"', "invalid JSON"),
        ('{"text": "{% if %}"}', "TemplateSyntaxError"),
        ('{"text": {{ ("%d" % incident.title) | tojson }}}', "TypeError"),
        ('["not", "an", "object"]', "JSON object"),
    ],
    ids=[
        "bad-json",
        "undefined-field",
        "undefined-variable",
        "truncated",
        "syntax",
        "type",
        "array",
    ],
)
def test_a_broken_override_is_reported_by_name(tmp_path: Path, body: str, expected: str) -> None:
    write_override(tmp_path, "pr_team", body)
    problems = render_override_problems(Renderer(extra_dir=tmp_path))
    assert problems
    assert all(problem.startswith("audiences/pr_team ") for problem in problems)
    assert any(expected in problem for problem in problems), problems


def test_an_override_that_breaks_block_kit_limits_is_reported(tmp_path: Path) -> None:
    write_override(
        tmp_path,
        "technical_team",
        """{"text": "x", "blocks": [
  {"type": "header", "text": {"type": "plain_text", "text": {{ incident.title | tojson }}}},
  {"type": "section", "text": {"type": "mrkdwn", "text": {{ incident.description | tojson }}}}
]}""",
    )
    problems = render_override_problems(Renderer(extra_dir=tmp_path))
    assert problems
    assert all(problem.startswith("audiences/technical_team ") for problem in problems)
    assert any("blocks[1].text" in problem for problem in problems), problems


def test_an_override_without_fallback_text_is_reported(tmp_path: Path) -> None:
    write_override(tmp_path, "legal_team", '{"text": "  "}')
    problems = render_override_problems(Renderer(extra_dir=tmp_path))
    assert problems == [
        "audiences/legal_team (notice, typical incident): text: a non-empty top-level text "
        "is required"
    ]
