"""A war room left half-open by a Slack failure or a crash is finished after a restart,
without doubling anything that was already done."""

from __future__ import annotations

import gc
import json
import time
from collections import Counter

import pytest
from sqlalchemy import Engine

from bot.app import create_app
from bot.config import WarroomConfig, parse_config
from bot.domain.incident import Declaration
from bot.domain.vocabulary import IncidentSource, Severity
from bot.emulator.server import SlackEmulator
from bot.errors import ExternalServiceError
from bot.server import BackgroundServer
from bot.services.war_room import MAX_ATTEMPTS
from tests.conftest import TEST_CONFIG, ServedWarroom, make_settings

pytestmark = pytest.mark.integration


def test_half_open_war_room_is_finished_after_restart_without_duplicates(
    served: ServedWarroom, emulator: SlackEmulator, sqlite_engine: Engine, config: WarroomConfig
) -> None:
    # The first card post fails hard (no retry applies), as during a Slack incident.
    emulator.inject_fault("chat.postMessage", status=200, error="fatal_error", times=1)
    served.slack.command("declare critical Half-open war room")
    served.wait_for(
        lambda: [c for c in emulator.calls("response_url") if "fatal_error" in json.dumps(c.params)]
    )
    incident = served.app.workflow.incidents.list_open()[0]
    assert incident.channel_id is not None
    assert incident.war_room_opened_at is None
    served.server.stop()
    served.app.close()

    restarted = create_app(make_settings(emulator), config, engine=sqlite_engine)
    server = BackgroundServer(restarted.asgi).start()
    try:
        restarted.start_background_work()
        # What start-up built is left out of the collector's full passes until close.
        assert gc.get_freeze_count() > 0
        deadline = time.monotonic() + 10
        while restarted.workflow.incidents.get(incident.id).war_room_opened_at is None:
            assert time.monotonic() < deadline, "the sweep did not finish the war room"
            time.sleep(0.05)
    finally:
        server.stop()
        restarted.close()
    assert gc.get_freeze_count() == 0

    ok = Counter(c.method for c in emulator.calls() if c.ok)
    assert ok["conversations.create"] == 1
    assert ok["conversations.setTopic"] == 1
    assert ok["conversations.invite"] == 1
    assert ok["pins.add"] == 1
    # card + 6 checklists + urgent DM + announcement + executive alert
    assert ok["chat.postMessage"] == 10
    assert len(emulator.state.messages("C0EXEC")) == 1
    assert emulator.state.messages(incident.channel_id)[0]["text"].startswith(":red_circle:")


def test_a_second_replica_does_not_open_the_same_war_room_twice(
    served: ServedWarroom, emulator: SlackEmulator, sqlite_engine: Engine, config: WarroomConfig
) -> None:
    replica = create_app(make_settings(emulator), config, engine=sqlite_engine)
    try:
        served.slack.command("declare high Two replicas")
        served.wait_for(lambda: served.app.workflow.incidents.list_open())
        incident = served.app.workflow.incidents.list_open()[0]
        # Once the first replica is opening (it leases the war room before it creates the
        # channel), the second finds it taken; had the second come first, it would have
        # opened it instead, and the first would have found it taken.
        served.wait_for(lambda: emulator.calls("conversations.create"))
        replica.workflow.war_rooms.open_pending_war_rooms()
        served.wait_for(
            lambda: served.app.workflow.incidents.get(incident.id).war_room_opened_at is not None
        )
        replica.workflow.war_rooms.open_pending_war_rooms()

        def posted() -> int:
            return sum(1 for c in emulator.calls("chat.postMessage") if c.ok)

        # The draft follows the opening on the first replica's thread: wait for it, then
        # give a second opening time to show itself.
        served.wait_for(lambda: posted() >= 9)
        time.sleep(0.3)
    finally:
        replica.close()
    ok = Counter(c.method for c in emulator.calls() if c.ok)
    assert ok["conversations.create"] == 1
    assert ok["pins.add"] == 1
    # card + 6 checklists + announcement + the technical team's draft for the comms lead
    assert ok["chat.postMessage"] == 9


def test_a_broken_announce_channel_does_not_hold_back_the_executives_and_is_given_up(
    emulator: SlackEmulator, sqlite_engine: Engine
) -> None:
    broken = parse_config({**TEST_CONFIG, "announce_channel": "C0GONE"})
    app = create_app(make_settings(emulator), broken, engine=sqlite_engine)
    try:
        incident = app.workflow.declare(
            Declaration(
                title="Announce channel deleted",
                severity=Severity.CRITICAL,
                reporter_id="U0R",
                source=IncidentSource.SLASH_COMMAND,
                dedup_key="broken-announce",
            )
        ).incident
        for _ in range(MAX_ATTEMPTS):
            with pytest.raises(ExternalServiceError, match="channel_not_found"):
                app.workflow.war_rooms.open_war_room(incident.id)
            # the executives and the commander were alerted on the first pass, once
            assert len(emulator.state.messages("C0EXEC")) == 1
            assert app.workflow.incidents.get(incident.id).war_room_opened_at is None
        assert app.workflow.war_rooms.open_war_room(incident.id) is True
    finally:
        app.close()
    attempts = [c for c in emulator.calls("chat.postMessage") if c.params["channel"] == "C0GONE"]
    assert len(attempts) == MAX_ATTEMPTS
    commander_dm = emulator.state.messages(emulator.state.dm_channel("U0COMMANDER") or "")
    assert sum(m["text"].startswith("URGENT") for m in commander_dm) == 1
