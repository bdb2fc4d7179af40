from __future__ import annotations

import pytest

from bot.domain.commands import (
    AssignRole,
    ChangeSeverity,
    DeclareNow,
    ListIncidents,
    OpenDeclareModal,
    ResolveIncident,
    ShowHelp,
    ShowStatus,
    parse_command,
    parse_user_mention,
)
from bot.domain.vocabulary import IncidentType, Role, Severity
from bot.errors import UsageError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("text", ["", "   ", "help", "HELP"])
def test_empty_text_and_help_show_help(text: str) -> None:
    assert parse_command(text) == ShowHelp()


def test_bare_declare_opens_the_form() -> None:
    assert parse_command("declare") == OpenDeclareModal()


def test_declare_with_severity_and_title_declares_at_once() -> None:
    assert parse_command("declare high Support bot leaks prompts") == DeclareNow(
        severity=Severity.HIGH, title="Support bot leaks prompts", incident_type=None, model=None
    )


def test_type_and_model_tokens_anywhere_are_taken_out_of_the_title() -> None:
    parsed = parse_command("declare sev1 type:data_leak Chatbot model:support-v2 shows PII")
    assert parsed == DeclareNow(
        severity=Severity.CRITICAL,
        title="Chatbot shows PII",
        incident_type=IncidentType.DATA_LEAK,
        model="support-v2",
    )


def test_type_token_accepts_dashes() -> None:
    parsed = parse_command("declare low TYPE:model-drift scores shifting")
    assert isinstance(parsed, DeclareNow)
    assert parsed.incident_type is IncidentType.MODEL_DRIFT


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("declare urgent thing", "`urgent` is not a severity"),
        ("declare high", "needs a title"),
        ("declare high type:model:x", "model:x"),
        ("declare high model:x type:nonsense", "`nonsense` is not an incident type"),
        ("explode", "`explode` is not an `/incident` command"),
        ("status now", "takes no arguments"),
        ("role safety", "takes a role and a user"),
        ("role wizard <@U1>", "`wizard` is not a role"),
        ("role safety bob", "`bob` is not a user mention"),
        ("severity", "exactly one severity"),
        ("severity extreme", "`extreme` is not a severity"),
    ],
)
def test_malformed_commands_say_what_is_wrong_and_show_the_form(text: str, fragment: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_command(text)
    assert fragment in raised.value.user_message
    assert raised.value.usage.startswith("/incident")


def test_usage_of_a_declare_error_shows_the_declare_form() -> None:
    with pytest.raises(UsageError) as raised:
        parse_command("declare urgent thing")
    assert raised.value.usage.startswith("/incident declare")


@pytest.mark.parametrize("mention", ["<@U0ABC123>", "<@U0ABC123|ana>", " <@U0ABC123|ana.s> "])
def test_user_mentions_in_both_forms_are_accepted(mention: str) -> None:
    assert parse_user_mention(mention) == "U0ABC123"


@pytest.mark.parametrize("short", ["commander", "safety", "security", "data", "comms", "legal"])
def test_role_short_forms(short: str) -> None:
    parsed = parse_command(f"role {short} <@W0XYZ|x>")
    assert isinstance(parsed, AssignRole)
    assert parsed.role.short == short
    assert parsed.user_id == "W0XYZ"


def test_role_full_name_is_accepted() -> None:
    assert parse_command("role ai_safety_lead <@U1>") == AssignRole(Role.AI_SAFETY_LEAD, "U1")


def test_other_subcommands() -> None:
    assert parse_command("status") == ShowStatus()
    assert parse_command("list") == ListIncidents()
    assert parse_command("resolve") == ResolveIncident()
    assert parse_command("severity sev2") == ChangeSeverity(Severity.HIGH)


def test_update_keeps_the_text_as_typed() -> None:
    from bot.domain.commands import PostUpdate

    assert parse_command("update  Safe mode is on.\nNext update at 10:30") == PostUpdate(
        text="Safe mode is on.\nNext update at 10:30"
    )


def test_update_without_text_shows_its_form() -> None:
    with pytest.raises(UsageError) as raised:
        parse_command("update   ")
    assert raised.value.usage == "/incident update <what changed…>"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("flag personal-data", {"personal_data": True}),
        ("flag pii", {"personal_data": True}),
        ("flag public", {"public_facing": True}),
        ("flag ai-act", {"ai_act_case": "serious"}),
        ("flag ai-act death", {"ai_act_case": "death"}),
        ("flag AI-ACT widespread", {"ai_act_case": "widespread"}),
    ],
)
def test_flags(text: str, expected: dict[str, object]) -> None:
    from bot.domain.commands import SetFlag
    from bot.domain.vocabulary import AiActCase

    parsed = parse_command(text)
    assert isinstance(parsed, SetFlag)
    if "ai_act_case" in expected:
        assert parsed.ai_act_case is AiActCase(str(expected["ai_act_case"]))
    else:
        assert parsed.personal_data == expected.get("personal_data", False)
        assert parsed.public_facing == expected.get("public_facing", False)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("flag", "needs what to flag"),
        ("flag secret", "`secret` is not a flag"),
        ("flag public now", "takes nothing more"),
        ("flag ai-act injury", "not an EU AI Act case"),
    ],
)
def test_bad_flags_show_the_form(text: str, fragment: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_command(text)
    assert fragment in raised.value.user_message
    assert raised.value.usage.startswith("/incident flag")
