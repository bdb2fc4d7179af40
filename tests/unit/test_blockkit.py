"""Block Kit checks: real payloads pass, each hand-made mistake is caught."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bot.emulator.blockkit import check_message, check_view

pytestmark = pytest.mark.unit

FIXTURES = Path("/work/shared/research/data/slack/python-slack-sdk/tests/slack_sdk_fixture")
MODAL_FIXTURES = sorted(FIXTURES.glob("view_modal_*.json")) if FIXTURES.is_dir() else []


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def button(label: str, action_id: str | None = "ack", **extra: Any) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "button", "text": plain(label), **extra}
    if action_id is not None:
        element["action_id"] = action_id
    return element


def message(*blocks: dict[str, Any], text: str | None = "Incident declared") -> dict[str, Any]:
    payload: dict[str, Any] = {"channel": "C1", "blocks": list(blocks)}
    if text is not None:
        payload["text"] = text
    return payload


def modal(*blocks: dict[str, Any], **fields: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": "declare",
        "title": plain("Declare incident"),
        "submit": plain("Declare"),
        "close": plain("Cancel"),
        "blocks": list(blocks),
    }
    view.update(fields)
    return {k: v for k, v in view.items() if v is not None}


INCIDENT_MESSAGE = message(
    {"type": "header", "text": plain(":rotating_light: SEV1: model serving latency")},
    {
        "type": "section",
        "block_id": "summary",
        "text": mrkdwn("*Status:* investigating\n*Commander:* <@U123>"),
        "fields": [mrkdwn("*Severity*\nSEV1"), mrkdwn("*Service*\ninference-api")],
        "accessory": button("Runbook", "runbook", url="https://example.com/runbook"),
    },
    {"type": "divider"},
    {
        "type": "context",
        "elements": [mrkdwn("Declared by <@U123>"), plain("12:00 UTC")],
    },
    {
        "type": "actions",
        "block_id": "controls",
        "elements": [
            button("Acknowledge", "ack", value="inc-1", style="primary"),
            button("Resolve", "resolve", value="inc-1", style="danger"),
            {
                "type": "static_select",
                "action_id": "severity",
                "placeholder": plain("Severity"),
                "options": [{"text": plain("SEV1"), "value": "1"}],
            },
        ],
    },
)

DECLARE_MODAL = modal(
    {
        "type": "input",
        "block_id": "title",
        "label": plain("Title"),
        "element": {"type": "plain_text_input", "action_id": "value", "max_length": 150},
    },
    {
        "type": "input",
        "block_id": "severity",
        "label": plain("Severity"),
        "element": {
            "type": "static_select",
            "action_id": "value",
            "options": [{"text": plain("SEV1"), "value": "1"}],
        },
    },
    {
        "type": "input",
        "block_id": "threshold",
        "optional": True,
        "label": plain("Threshold"),
        "element": {
            "type": "number_input",
            "action_id": "value",
            "is_decimal_allowed": False,
            "min_value": 1,
        },
    },
)


@pytest.mark.skipif(not MODAL_FIXTURES, reason="slack_sdk modal fixtures not available")
@pytest.mark.parametrize("path", MODAL_FIXTURES, ids=lambda p: p.name)
def test_real_modal_fixtures_are_valid_apart_from_the_action_id_house_rule(path: Path) -> None:
    # Block Kit Builder exports omit action_ids (Slack generates them); every other check,
    # the slack_sdk round trip included, must find nothing.
    view = json.loads(path.read_text())
    assert check_view(view, require_action_ids=False) == []
    assert all("action_id" in p for p in check_view(view))


def test_a_typical_incident_message_is_valid() -> None:
    assert check_message(INCIDENT_MESSAGE) == []


def test_a_typical_declare_modal_is_valid() -> None:
    assert check_view(DECLARE_MODAL) == []


def test_a_text_only_message_needs_no_blocks() -> None:
    assert check_message({"channel": "C1", "text": "hello"}) == []


def test_blocks_sent_as_a_json_string_are_decoded() -> None:
    payload = dict(INCIDENT_MESSAGE, blocks=json.dumps(INCIDENT_MESSAGE["blocks"]))
    assert check_message(payload) == []


def test_the_same_action_id_in_different_blocks_is_fine() -> None:
    payload = message(
        {"type": "actions", "elements": [button("A", "go")]},
        {"type": "actions", "elements": [button("B", "go")]},
    )
    assert check_message(payload) == []


def only(problems: list[str], fragment: str) -> None:
    assert problems, f"expected a problem mentioning {fragment!r}"
    assert any(fragment in p for p in problems), problems


SECTION = {"type": "section", "text": mrkdwn("hi")}

BAD_MESSAGES: dict[str, tuple[dict[str, Any], str]] = {
    "more_than_50_blocks": (message(*[{"type": "divider"}] * 51), "at most 50"),
    "header_in_mrkdwn": (message({"type": "header", "text": mrkdwn("x")}), "plain_text"),
    "header_over_150": (message({"type": "header", "text": plain("x" * 151)}), "150"),
    "section_text_over_3000": (message({"type": "section", "text": mrkdwn("x" * 3001)}), "3000"),
    "more_than_10_fields": (
        message({"type": "section", "fields": [mrkdwn("f")] * 11}),
        "fields",
    ),
    "field_over_2000": (
        message({"type": "section", "fields": [mrkdwn("x" * 2001)]}),
        "at most 2000",
    ),
    "button_text_over_75": (
        message({"type": "actions", "elements": [button("x" * 76)]}),
        "75",
    ),
    "empty_button_text": (
        message({"type": "actions", "elements": [button("")]}),
        "non-empty label",
    ),
    "duplicate_block_id": (
        message(dict(SECTION, block_id="a"), dict(SECTION, block_id="a")),
        "block_id 'a' repeats",
    ),
    "duplicate_action_id_in_block": (
        message({"type": "actions", "elements": [button("A", "x"), button("B", "x")]}),
        "action_id 'x' repeats",
    ),
    "missing_action_id": (
        message({"type": "actions", "elements": [button("A", None)]}),
        "without an action_id",
    ),
    "accessory_without_action_id": (
        message(dict(SECTION, accessory=button("A", None))),
        "without an action_id",
    ),
    "text_input_max_length_over_3000": (
        message(
            {
                "type": "input",
                "label": plain("x"),
                "element": {"type": "plain_text_input", "action_id": "v", "max_length": 3001},
            }
        ),
        "max_length",
    ),
    "no_text_fallback": (message(SECTION, text=None), "text fallback"),
    "blank_text_fallback": (message(SECTION, text="  "), "text fallback"),
    "unknown_block_type": (message({"type": "sektion", "text": mrkdwn("x")}), "unknown block"),
    "unknown_key": (message(dict(SECTION, colour="red")), "colour: unknown"),
    "markdown_typo_for_mrkdwn": (
        message({"type": "section", "text": {"type": "markdown", "text": "x"}}),
        "'markdown' was read as 'mrkdwn'",
    ),
    "string_where_object_expected": (
        message({"type": "section", "text": "plain string"}),
        "where an object is expected",
    ),
    "unknown_element_type": (
        message({"type": "actions", "elements": [{"type": "buton", "action_id": "a"}]}),
        "unknown element type 'buton'",
    ),
    "null_value": (message(dict(SECTION, block_id=None)), "null"),
    "blocks_not_json": (dict(message(SECTION), blocks="[{oops"), "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(BAD_MESSAGES))
def test_each_bad_message_is_caught(case: str) -> None:
    payload, fragment = BAD_MESSAGES[case]
    only(check_message(payload), fragment)


INPUT = {
    "type": "input",
    "label": plain("Title"),
    "element": {"type": "plain_text_input", "action_id": "v"},
}

BAD_VIEWS: dict[str, tuple[dict[str, Any], str]] = {
    "more_than_100_blocks": (modal(*[{"type": "divider"}] * 101), "at most 100"),
    "no_blocks": (modal(), "at least one block"),
    "title_over_24": (modal(INPUT, title=plain("x" * 25)), "title"),
    "title_in_mrkdwn": (modal(INPUT, title=mrkdwn("Declare")), "title: must be a plain_text"),
    "submit_over_24": (modal(INPUT, submit=plain("x" * 25)), "submit"),
    "close_in_mrkdwn": (modal(INPUT, close=mrkdwn("Cancel")), "close: must be a plain_text"),
    "input_without_submit": (modal(INPUT, submit=None), "needs a submit"),
    "no_title": (modal({"type": "divider"}, title=None), "needs a title"),
    "duplicate_block_id": (
        modal(dict(INPUT, block_id="b"), dict(INPUT, block_id="b")),
        "block_id 'b' repeats",
    ),
    "over_250kb": (
        modal(*[{"type": "section", "text": mrkdwn("x" * 2900)}] * 90),
        "bytes of JSON",
    ),
    "unknown_view_key": (modal(INPUT, colour="red"), "view.colour"),
    "bad_type": (dict(modal(INPUT), type="dialog"), "type"),
    "missing_input_action_id": (
        modal({"type": "input", "label": plain("x"), "element": {"type": "plain_text_input"}}),
        "without an action_id",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_VIEWS))
def test_each_bad_view_is_caught(case: str) -> None:
    view, fragment = BAD_VIEWS[case]
    only(check_view(view), fragment)


@pytest.mark.skipif(not MODAL_FIXTURES, reason="slack_sdk modal fixtures not available")
def test_a_real_fixture_with_one_dropped_key_is_caught() -> None:
    view = json.loads(MODAL_FIXTURES[0].read_text())
    broken = copy.deepcopy(view)
    broken["blocks"][0]["flavour"] = "vanilla"
    only(check_view(broken, require_action_ids=False), "flavour: unknown")
