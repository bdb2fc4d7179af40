"""app_manifest.yml matches Slack's manifest schema and what the code really uses."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bot.ids import SLASH_COMMAND

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "slack"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "app_manifest.yml").read_text())
    return loaded


def test_manifest_passes_slacks_json_schema(manifest: dict[str, Any]) -> None:
    schema = json.loads((DATA / "manifest.schema.1.0.0.json").read_text())
    jsonschema.Draft7Validator(schema).validate(manifest)


def test_manifest_declares_exactly_the_commands_the_code_handles(manifest: dict[str, Any]) -> None:
    commands = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert commands == {SLASH_COMMAND}
    for command in manifest["features"]["slash_commands"]:
        assert command["url"].endswith("/slack/events")
        assert command["should_escape"] is True  # mentions arrive as <@U…>, which we parse


def test_interactivity_points_at_the_slack_route(manifest: dict[str, Any]) -> None:
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["interactivity"]["request_url"].endswith("/slack/events")


# slack_sdk methods whose Slack names are not "first _ becomes .", or that call several.
SDK_METHODS = {
    "conversations_canvases_create": ("conversations.canvases.create",),
    "files_upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal"),
}
# Methods the extracted docs dump lacks, with the bot scope from docs.slack.dev's method page.
MISSING_FROM_DUMP = {"pins.list": ["pins:read"]}
# Events API subscriptions need scopes too (docs.slack.dev, each event's page).
EVENT_SCOPES = {"reaction_added": {"reactions:read"}, "reaction_removed": {"reactions:read"}}


def slack_methods_the_gateway_calls() -> set[str]:
    """Every `self.client.<method>` in the Slack gateway, as Slack method names."""
    tree = ast.parse((ROOT / "bot" / "slack_gateway.py").read_text())
    methods: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "client"
        ):
            methods.update(SDK_METHODS.get(node.attr, (node.attr.replace("_", ".", 1),)))
    return methods


def test_every_subscribed_event_has_its_scope(manifest: dict[str, Any]) -> None:
    granted = set(manifest["oauth_config"]["scopes"]["bot"])
    for event in manifest["settings"]["event_subscriptions"]["bot_events"]:
        assert EVENT_SCOPES[event] <= granted, event


def test_every_called_method_has_a_scope_in_the_manifest(manifest: dict[str, Any]) -> None:
    scopes_for = json.loads((DATA / "method_bot_scopes.json").read_text()) | MISSING_FROM_DUMP
    granted = set(manifest["oauth_config"]["scopes"]["bot"])
    methods = slack_methods_the_gateway_calls()
    assert {"conversations.create", "chat.postMessage", "pins.add", "views.open"} <= methods
    for method in methods:
        needed = set(scopes_for[method])
        assert not needed or needed & granted, f"{method} needs one of {sorted(needed)}"


def test_no_scope_is_granted_without_a_use(manifest: dict[str, Any]) -> None:
    scopes_for = json.loads((DATA / "method_bot_scopes.json").read_text()) | MISSING_FROM_DUMP
    used = {"commands", "chat:write.public"}
    for event in manifest["settings"].get("event_subscriptions", {}).get("bot_events", []):
        used |= EVENT_SCOPES[event]
    for method in slack_methods_the_gateway_calls():
        used |= set(scopes_for[method])
    assert set(manifest["oauth_config"]["scopes"]["bot"]) <= used
