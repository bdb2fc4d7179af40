"""Health and metrics routes, and what the Slack route answers to junk."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import Engine

from bot.app import create_app
from bot.config import WarroomConfig
from bot.emulator.server import SlackEmulator
from bot.ids import ActionId
from bot.server import BackgroundServer
from tests.conftest import ServedWarroom, make_settings

pytestmark = pytest.mark.integration


def test_healthz_is_ok_when_the_database_answers(served: ServedWarroom) -> None:
    response = httpx.get(f"{served.server.url}/healthz")
    assert response.status_code == 200
    # The fixture does not start background work, so the scheduler is reported stopped.
    assert response.json() == {"status": "ok", "database": "ok", "scheduler": "stopped"}


def test_healthz_is_503_when_the_database_does_not(
    emulator: SlackEmulator, config: WarroomConfig, tmp_path: object
) -> None:
    from storage.db import build_engine

    broken: Engine = build_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = create_app(make_settings(emulator), config, engine=broken)
    server = BackgroundServer(app.asgi).start()
    try:
        response = httpx.get(f"{server.url}/healthz", timeout=30)
    finally:
        server.stop()
        app.close()
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["database"] == "unavailable"


def test_metrics_count_slack_requests(served: ServedWarroom) -> None:
    served.slack.command("help")
    text = httpx.get(f"{served.server.url}/metrics").text
    assert 'warroom_http_requests_total{route="/slack/events",status="200"} 1.0' in text
    assert "warroom_http_request_seconds_bucket" in text


def test_every_control_on_the_card_has_a_listener_and_unknown_ones_do_not(
    served: ServedWarroom,
) -> None:
    from tests.unit.test_rendering import make_incident

    card = served.app.workflow.war_rooms.render_card(make_incident())
    controls = [
        element
        for block in card["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    assert {c["action_id"] for c in controls} <= {a.value for a in ActionId}
    for control in controls:
        option = control["options"][0] if "options" in control else None
        response = served.slack.click(
            action_id=control["action_id"],
            value=control.get("value", ""),
            channel_id="C1",
            selected_option=option,
        )
        assert response.status_code == 200, control["action_id"]
    unknown = served.slack.click(action_id="no_such_action", value="1", channel_id="C1")
    assert unknown.status_code == 404


def test_unsigned_junk_is_refused(served: ServedWarroom) -> None:
    response = httpx.post(f"{served.server.url}/slack/events", content=b"\x00garbage")
    assert response.status_code == 401
