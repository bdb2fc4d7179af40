"""`/incident runbook` over a signed request: acked at once, then published as a canvas."""

from __future__ import annotations

import pytest

from bot.emulator.server import SlackEmulator
from tests.conftest import ServedWarroom

pytestmark = pytest.mark.integration


def test_the_runbook_command_publishes_a_canvas_where_it_was_asked(
    served: ServedWarroom, emulator: SlackEmulator
) -> None:
    response = served.slack.command("runbook", channel_id="C0ANNOUNCE")
    assert response.status_code == 200
    assert response.json()["response_type"] == "ephemeral"
    assert "Rendering the runbook" in response.json()["text"]
    served.wait_for(lambda: emulator.calls("chat.postEphemeral"))
    (canvas,) = emulator.calls("canvases.create")
    assert canvas.params["channel_id"] == "C0ANNOUNCE"
    markdown = canvas.params["document_content"]["markdown"]
    assert markdown.startswith("# AI incident-response runbook")
    assert "![](@U0COMMANDER)" in markdown
    (told,) = emulator.calls("chat.postEphemeral")
    assert "/docs/" in told.params["text"]
