"""Log lines name the incident they are about: a command in a war room from the moment its
incident is known (at ack time and in its lazy work), a reminder as it fires, and never a
later request served on the same thread."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from slack_bolt import BoltRequest
from sqlalchemy import Engine

from bot.app import Warroom
from bot.domain.vocabulary import Severity
from bot.emulator.server import SlackEmulator
from bot.logging_setup import JsonFormatter
from tests.conftest import ServedWarroom
from tests.integration.comms_support import (
    add_audience_channels,
    build,
    comms_config,
    declare_and_open,
)

pytestmark = pytest.mark.integration

PROBE = logging.getLogger("warroom.probe")


@pytest.fixture
def lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    loggers = [PROBE, logging.getLogger("bot.services.reminders")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    for logger in loggers:
        logger.removeHandler(handler)


def probing(owner: Any, name: str, note: str) -> None:
    """Log `note` whenever owner.name is called, then call it."""
    original = getattr(owner, name)

    def probe(*args: Any, **kwargs: Any) -> Any:
        PROBE.info(note)
        return original(*args, **kwargs)

    setattr(owner, name, probe)


def declare(served: ServedWarroom) -> tuple[int, str]:
    assert served.slack.command("declare high Retrieval index poisoned").status_code == 200

    def opened() -> bool:
        return any(i.war_room_opened_at for i in served.app.workflow.incidents.list_open())

    served.wait_for(opened)
    incident = served.app.workflow.incidents.list_open()[0]
    assert incident.channel_id is not None
    return incident.number, incident.channel_id


def test_a_war_room_command_logs_with_its_incident_at_ack_time_and_after(
    served: ServedWarroom, lines: Callable[[], list[dict[str, Any]]]
) -> None:
    number, channel = declare(served)
    workflow = served.app.workflow
    probing(workflow.communications, "deadlines", "status read at ack time")
    probing(workflow.war_rooms, "render_card", "card redrawn after the ack")
    answer = served.slack.command("status", channel_id=channel)
    assert answer.status_code == 200 and "Retrieval index poisoned" in answer.text
    assert served.slack.command("severity low", channel_id=channel).status_code == 200
    served.wait_for(
        lambda: any(line["message"] == "card redrawn after the ack" for line in lines())
    )
    seen = {line["message"]: line for line in lines()}
    for note in ("status read at ack time", "card redrawn after the ack"):
        assert seen[note]["incident"] == number, note
        assert seen[note]["request_id"], note


def test_the_incident_of_one_request_never_tags_the_next_on_the_same_thread(
    served: ServedWarroom, lines: Callable[[], list[dict[str, Any]]]
) -> None:
    """As Socket Mode does: requests dispatched one after another on one thread."""
    number, channel = declare(served)
    workflow = served.app.workflow
    probing(workflow.communications, "deadlines", "status")
    probing(workflow.incidents, "list_open_summaries", "list")
    for text, where in (("status", channel), ("list", "C0GENERAL")):
        body = served.slack.command_body(text, channel_id=where)
        headers = served.slack.signed_headers(
            body, content_type="application/x-www-form-urlencoded"
        )
        response = served.app.bolt.dispatch(BoltRequest(body=body, headers=headers))
        assert response.status == 200
    seen = {line["message"]: line for line in lines()}
    assert seen["status"]["incident"] == number
    assert seen["list"].get("incident") is None


def test_a_reminder_that_slack_refuses_is_logged_with_its_incident(
    emulator: SlackEmulator, engine: Engine, lines: Callable[[], list[dict[str, Any]]]
) -> None:
    start = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    add_audience_channels(emulator)
    with freeze_time(start) as frozen:
        app: Warroom = build(emulator, engine, comms_config())
        try:
            incident = declare_and_open(app, severity=Severity.HIGH, public_facing=True)
            assert incident.channel_id is not None
            emulator.inject_fault("chat.postMessage", status=500, times=20)
            frozen.move_to(start + timedelta(minutes=8))  # half way to the 15-minute tier
            app.communications.reminders.run_due()
        finally:
            app.close()
    refusals = [line for line in lines() if "not given yet" in line["message"]]
    assert refusals and all(line["incident"] == incident.number for line in refusals)
