"""Direct messages: the DM channel of a person is asked of Slack once, not once per war room
(conversations.open is Tier 3, and an alert storm opens dozens of war rooms for the same
on-call people)."""

from __future__ import annotations

import contextlib
from collections import Counter

import pytest
from sqlalchemy import Engine

from bot.domain.vocabulary import Role, Severity
from bot.emulator.server import SlackEmulator
from bot.errors import ExternalServiceError
from bot.slack_gateway import SlackGateway, build_web_client
from storage.unit_of_work import UnitOfWorkFactory
from tests.integration.comms_support import (
    add_audience_channels,
    build,
    comms_config,
    declare_and_open,
)

pytestmark = pytest.mark.integration


def test_a_persons_dm_channel_is_opened_once_until_a_post_to_it_fails(
    emulator: SlackEmulator,
) -> None:
    slack = SlackGateway(build_web_client(token="xoxb-t", base_url=emulator.api_url))
    first = slack.open_dm("U0PERSON")
    assert slack.open_dm("U0PERSON") == first
    assert slack.open_dm("U0OTHER") != first
    assert len(emulator.calls("conversations.open")) == 2
    slack.forget_dm("U0PERSON")
    assert slack.open_dm("U0PERSON") == first
    assert len(emulator.calls("conversations.open")) == 3


def test_war_rooms_for_the_same_people_open_each_dm_channel_once(
    emulator: SlackEmulator, engine: Engine
) -> None:
    add_audience_channels(emulator)
    app = build(emulator, engine, comms_config())
    try:
        for n in range(3):
            declare_and_open(app, title=f"Support bot leaks data {n}", key=f"dms:{n}")
        people = {call.params["users"] for call in emulator.calls("conversations.open") if call.ok}
        checklists = [
            call
            for call in emulator.calls("chat.postMessage")
            if call.ok and str(call.params.get("channel", "")).startswith("D")
        ]
    finally:
        app.close()
    assert len(emulator.calls("conversations.open")) == len(people) >= 3
    assert len(checklists) >= 3 * len(people)


def test_a_dm_that_fails_is_asked_of_slack_again_on_the_retry(
    emulator: SlackEmulator, engine: Engine
) -> None:
    add_audience_channels(emulator)
    app = build(emulator, engine, comms_config())
    try:
        incident = declare_and_open(app)
        commander = next(h.user_id for h in incident.roles if h.role is Role.INCIDENT_COMMANDER)
        opened = len(emulator.calls("conversations.open"))
        war_rooms = app.workflow.war_rooms
        emulator.inject_fault("chat.postMessage", status=200, error="channel_not_found")
        with pytest.raises(ExternalServiceError):
            war_rooms.send_checklist(incident, Role.AI_SAFETY_LEAD, commander)
        assert len(emulator.calls("conversations.open")) == opened  # remembered
        assert war_rooms.send_checklist(incident, Role.AI_SAFETY_LEAD, commander)
        assert len(emulator.calls("conversations.open")) == opened + 1  # asked again
    finally:
        app.close()


def test_one_failing_checklist_dm_holds_back_no_other_and_is_retried_alone(
    emulator: SlackEmulator, engine: Engine
) -> None:
    add_audience_channels(emulator)
    app = build(emulator, engine, comms_config())
    try:
        # The first person's DM channel cannot be opened; the other checklists still go.
        emulator.inject_fault("conversations.open", status=200, error="user_not_found")
        with contextlib.suppress(ExternalServiceError):
            declare_and_open(app, severity=Severity.HIGH)  # no urgent DM to the commander
        with UnitOfWorkFactory(engine)(read_only=True) as uow:
            pending = uow.incidents.list_without_war_room()
        assert len(pending) == 1
        holders = {holder.user_id for holder in app.workflow.incidents.get(pending[0]).roles}
        first = dms(emulator, holders)
        assert sum(first.values()) == len(holders) - 1
        assert app.workflow.war_rooms.open_pending_war_rooms() == 1
        assert dms(emulator, holders) == dict.fromkeys(holders, 1)  # the missing one, once
    finally:
        app.close()


def dms(emulator: SlackEmulator, people: set[str]) -> dict[str, int]:
    """How many DMs each person got."""
    posts = Counter(
        call.params["channel"] for call in emulator.calls("chat.postMessage") if call.ok
    )
    return {
        person: posts[channel] if (channel := emulator.state.dm_channel(person)) else 0
        for person in people
    }
