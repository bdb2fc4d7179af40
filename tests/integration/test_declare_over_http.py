"""Declaring through signed HTTP requests to the served app, against the Slack emulator."""

from __future__ import annotations

import pytest

from bot.emulator.server import SlackEmulator
from tests.conftest import ServedWarroom

pytestmark = pytest.mark.integration


def _created_channels(emulator: SlackEmulator) -> list[str]:
    return [
        call.params["name"] for call in emulator.calls("conversations.create") if call.status == 200
    ]


def test_declare_now_opens_a_war_room(served: ServedWarroom, emulator: SlackEmulator) -> None:
    response = served.slack.command("declare high Support bot answers slowly model:support-v2")

    assert response.status_code == 200
    assert "Declaring incident #1" in response.json()["text"]
    served.wait_for(lambda: emulator.calls("pins.add"))
    assert _created_channels(emulator) == ["inc-1-support-bot-answers-slowly"]
    channel = emulator.state.channel_by_name("inc-1-support-bot-answers-slowly")
    assert channel is not None
    messages = emulator.state.messages(channel["id"])
    assert messages[0]["text"].startswith(":large_orange_circle: Incident #1")
    assert emulator.validation_failures() == []
