"""Containment through signed Slack clicks: propose, guard, two-person rule, expiry, exactly
one call to the endpoint, manual steps, the `contained` transition and the audit trail."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from bot.app import create_app
from bot.config import parse_config
from bot.domain.vocabulary import IncidentState
from bot.emulator.server import SlackEmulator
from bot.emulator.signed_requests import SlackSender
from bot.ids import ActionId
from bot.server import BackgroundServer
from tests.conftest import TEST_CONFIG, ServedWarroom, make_settings
from tests.support_http import RecordingServer

pytestmark = pytest.mark.integration


class SteppingClock:
    """The app's clock; a test moves it forward to let a proposal expire."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def gateway() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
def contained(
    emulator: SlackEmulator, sqlite_engine: Engine, gateway: RecordingServer, clock: SteppingClock
) -> Iterator[ServedWarroom]:
    config = parse_config(
        {
            **TEST_CONFIG,
            "containment": {
                "approvers": ["U0CISO"],
                "two_person": ["model_shutdown"],
                "actions": {
                    "safe_mode": {"url": f"{gateway.url}/models/{{model}}/safe-mode", "retries": 0},
                    "model_shutdown": {
                        "url": f"{gateway.url}/models/{{model}}/disable",
                        "retries": 0,
                    },
                },
            },
        }
    )
    app = create_app(make_settings(emulator), config, engine=sqlite_engine, clock=clock)
    server = BackgroundServer(app.asgi).start()
    sender = SlackSender(server.url, response_url=emulator.response_url("contain"))
    yield ServedWarroom(app, server, sender)
    sender.close()
    server.stop()
    app.close()


def declare(served: ServedWarroom, text: str) -> tuple[int, str]:
    served.slack.command(text)
    served.wait_for(
        lambda: any(i.war_room_opened_at for i in served.app.workflow.incidents.list_open())
    )
    incident = served.app.workflow.incidents.list_open()[0]
    assert incident.channel_id is not None
    return incident.id, incident.channel_id


def proposal_message(emulator: SlackEmulator, channel: str) -> dict[str, Any]:
    return [
        m for m in emulator.state.messages(channel) if m["text"].startswith("Containment proposed")
    ][-1]


def buttons(message: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(action_id, block_id) → value for every button on the proposal."""
    return {
        (element["action_id"], block["block_id"]): element["value"]
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    }


def action_value(message: dict[str, Any], kind_label: str) -> str:
    for index, block in enumerate(message["blocks"]):
        if block["type"] == "section" and f"*{kind_label}*" in block["text"]["text"]:
            following = message["blocks"][index + 1]
            return str(following["elements"][0]["value"])
    raise AssertionError(f"no {kind_label} in {json.dumps(message)[:500]}")


def section_for(message: dict[str, Any], kind_label: str) -> str:
    return next(
        block["text"]["text"]
        for block in message["blocks"]
        if block["type"] == "section" and f"*{kind_label}*" in block["text"]["text"]
    )


def propose(served: ServedWarroom, emulator: SlackEmulator, channel: str) -> dict[str, Any]:
    served.slack.command("contain", channel_id=channel, user_id="U0COMMANDER")
    served.wait_for(
        lambda: [
            m
            for m in emulator.state.messages(channel)
            if m["text"].startswith("Containment proposed")
        ]
    )
    return proposal_message(emulator, channel)


def click(served: ServedWarroom, action_id: str, value: str, user: str, channel: str) -> None:
    response = served.slack.click(
        action_id=action_id, value=value, channel_id=channel, user_id=user
    )
    assert response.status_code == 200


def test_an_approved_action_calls_its_endpoint_once_and_contains_the_incident(
    contained: ServedWarroom, emulator: SlackEmulator, gateway: RecordingServer
) -> None:
    incident_id, channel = declare(
        contained, "declare medium Assistant fabricating refund policies model:support-bot-v2"
    )
    message = propose(contained, emulator, channel)
    safe_mode = action_value(message, "Safe mode")
    for _ in range(3):  # a double click and a Slack retry
        click(contained, ActionId.CONTAIN_APPROVE, safe_mode, "U0COMMANDER", channel)
    # the circuit breaker (no endpoint here) is rejected: it does not hold up containment
    breaker = action_value(message, "Circuit breaker")
    click(contained, ActionId.CONTAIN_REJECT, breaker, "U0COMMANDER", channel)
    contained.wait_for(lambda: gateway.requests)
    contained.wait_for(lambda: "done" in json.dumps(proposal_message(emulator, channel)))
    assert len(gateway.requests) == 1
    request = gateway.requests[0]
    assert request.path == "/models/support-bot-v2/safe-mode"
    assert request.headers["idempotency-key"].startswith("warroom-1-safe_mode-")
    with contained.app.workflow.incidents._uow(read_only=True) as uow:
        actions = [e.action.value for e in uow.audit.entries(incident_id)]
    assert actions.count("approved") == 1 and actions.count("executed") == 1
    assert "succeeded" in actions
    contained.wait_for(
        lambda: contained.app.workflow.incidents.get(incident_id).state is IncidentState.CONTAINED
    )
    contained.wait_for(
        lambda: any("is *contained*" in m["text"] for m in emulator.state.messages(channel))
    )
    assert emulator.validation_failures() == []


def test_someone_else_is_refused_nothing_is_called_and_the_refusal_is_audited(
    contained: ServedWarroom, emulator: SlackEmulator, gateway: RecordingServer
) -> None:
    incident_id, channel = declare(
        contained, "declare medium Assistant fabricating refund policies model:support-bot-v2"
    )
    message = propose(contained, emulator, channel)
    click(
        contained,
        ActionId.CONTAIN_APPROVE,
        action_value(message, "Safe mode"),
        "U0INTRUDER",
        channel,
    )
    contained.wait_for(
        lambda: [
            c
            for c in emulator.calls("response_url")
            if "Only the incident commander" in json.dumps(c.params)
        ]
    )
    assert gateway.requests == []
    with contained.app.workflow.incidents._uow(read_only=True) as uow:
        refused = [e for e in uow.audit.entries(incident_id) if e.action.value == "refused"]
    assert [e.actor for e in refused] == ["U0INTRUDER"]


def test_two_approvers_at_once_execute_once(
    contained: ServedWarroom, emulator: SlackEmulator, gateway: RecordingServer
) -> None:
    _, channel = declare(
        contained, "declare medium Assistant fabricating refund policies model:support-bot-v2"
    )
    safe_mode = action_value(propose(contained, emulator, channel), "Safe mode")
    threads = [
        threading.Thread(
            target=click, args=(contained, ActionId.CONTAIN_APPROVE, safe_mode, user, channel)
        )
        for user in ("U0COMMANDER", "U0CISO")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    contained.wait_for(lambda: gateway.requests)
    contained.wait_for(lambda: "done" in json.dumps(proposal_message(emulator, channel)))
    assert len(gateway.requests) == 1


def test_the_two_person_rule_needs_two_different_approvers(
    contained: ServedWarroom, emulator: SlackEmulator, gateway: RecordingServer
) -> None:
    _, channel = declare(
        contained, "declare critical Assistant fabricating refund policies model:support-bot-v2"
    )
    contained.wait_for(
        lambda: [
            m
            for m in emulator.state.messages(channel)
            if m["text"].startswith("Containment proposed")
        ]
    )
    shutdown = action_value(proposal_message(emulator, channel), "Model shutdown")
    click(contained, ActionId.CONTAIN_APPROVE, shutdown, "U0COMMANDER", channel)
    click(contained, ActionId.CONTAIN_APPROVE, shutdown, "U0COMMANDER", channel)
    contained.wait_for(
        lambda: "1 of 2 approvals" in json.dumps(proposal_message(emulator, channel))
    )
    assert gateway.requests == []
    click(contained, ActionId.CONTAIN_APPROVE, shutdown, "U0CISO", channel)
    contained.wait_for(lambda: gateway.requests)
    assert [r.path for r in gateway.requests] == ["/models/support-bot-v2/disable"]


def test_an_expired_proposal_cannot_be_approved(
    contained: ServedWarroom,
    emulator: SlackEmulator,
    gateway: RecordingServer,
    clock: SteppingClock,
) -> None:
    _, channel = declare(
        contained, "declare medium Assistant fabricating refund policies model:support-bot-v2"
    )
    safe_mode = action_value(propose(contained, emulator, channel), "Safe mode")
    clock.offset = timedelta(minutes=31)
    click(contained, ActionId.CONTAIN_APPROVE, safe_mode, "U0COMMANDER", channel)
    contained.wait_for(
        lambda: [c for c in emulator.calls("response_url") if "expired" in json.dumps(c.params)]
    )
    assert gateway.requests == []


def test_an_action_without_an_endpoint_is_a_manual_step_marked_done(
    contained: ServedWarroom, emulator: SlackEmulator, gateway: RecordingServer
) -> None:
    incident_id, channel = declare(
        contained,
        "declare medium Customer emails appear in chatbot replies "
        "type:data_leak model:support-bot-v2",
    )
    message = propose(contained, emulator, channel)
    isolation = action_value(message, "Data isolation")
    click(contained, ActionId.CONTAIN_APPROVE, isolation, "U0COMMANDER", channel)
    contained.wait_for(lambda: "Mark done" in json.dumps(proposal_message(emulator, channel)))
    done = [
        v
        for (a, _), v in buttons(proposal_message(emulator, channel)).items()
        if a == ActionId.CONTAIN_MARK_DONE
    ]
    click(contained, ActionId.CONTAIN_MARK_DONE, done[0], "U0DATA", channel)
    contained.wait_for(lambda: "done by hand" in json.dumps(proposal_message(emulator, channel)))
    assert gateway.requests == []  # data isolation has no endpoint configured


def test_an_action_needing_a_target_cannot_be_approved_until_one_is_set(
    contained: ServedWarroom, emulator: SlackEmulator, gateway: RecordingServer
) -> None:
    _, channel = declare(contained, "declare medium Assistant fabricating refund policies")
    message = propose(contained, emulator, channel)
    assert "target needed" in json.dumps(message)
    safe_mode = action_value(message, "Safe mode")
    click(contained, ActionId.CONTAIN_APPROVE, safe_mode, "U0COMMANDER", channel)
    contained.wait_for(
        lambda: [
            c
            for c in emulator.calls("response_url")
            if "needs a target first" in json.dumps(c.params)
        ]
    )
    assert gateway.requests == []
    contained.slack.command(
        "contain target safe_mode support-bot-v9", channel_id=channel, user_id="U0COMMANDER"
    )
    contained.wait_for(
        lambda: "support-bot-v9" in section_for(proposal_message(emulator, channel), "Safe mode")
    )
    assert "target needed" not in section_for(proposal_message(emulator, channel), "Safe mode")
    click(contained, ActionId.CONTAIN_APPROVE, safe_mode, "U0COMMANDER", channel)
    contained.wait_for(lambda: gateway.requests)
    assert gateway.requests[0].path == "/models/support-bot-v9/safe-mode"


def test_a_failed_action_keeps_the_incident_declared_and_can_be_retried(
    contained: ServedWarroom, emulator: SlackEmulator, gateway: RecordingServer
) -> None:
    incident_id, channel = declare(
        contained, "declare medium Assistant fabricating refund policies model:support-bot-v2"
    )
    gateway.script(500)
    message = propose(contained, emulator, channel)
    click(
        contained,
        ActionId.CONTAIN_REJECT,
        action_value(message, "Circuit breaker"),
        "U0COMMANDER",
        channel,
    )
    safe_mode = action_value(message, "Safe mode")
    click(contained, ActionId.CONTAIN_APPROVE, safe_mode, "U0COMMANDER", channel)
    contained.wait_for(
        lambda: "failed after 1 attempts" in json.dumps(proposal_message(emulator, channel))
    )
    assert contained.app.workflow.incidents.get(incident_id).state is IncidentState.DECLARED
    retry = [
        v
        for (a, _), v in buttons(proposal_message(emulator, channel)).items()
        if a == ActionId.CONTAIN_RETRY
    ]
    click(contained, ActionId.CONTAIN_RETRY, retry[0], "U0COMMANDER", channel)
    contained.wait_for(
        lambda: contained.app.workflow.incidents.get(incident_id).state is IncidentState.CONTAINED
    )
    keys = {r.headers["idempotency-key"] for r in gateway.requests}
    assert len(gateway.requests) == 2 and len(keys) == 1  # the retry reuses the key
    with contained.app.workflow.incidents._uow(read_only=True) as uow:
        reasons = [e.reason for e in uow.evidence.list_for(incident_id)]
    # twice (the failed try and the retry): the record, the alerts, the messages each time
    assert reasons.count("before containment: safe_mode") == 6


def test_the_cards_button_proposes_and_a_critical_incident_gets_a_proposal_at_once(
    contained: ServedWarroom, emulator: SlackEmulator
) -> None:
    incident_id, channel = declare(
        contained, "declare medium Assistant fabricating refund policies model:support-bot-v2"
    )
    assert not [
        m for m in emulator.state.messages(channel) if m["text"].startswith("Containment proposed")
    ]
    click(contained, ActionId.CARD_CONTAIN, str(incident_id), "U0SAFETY", channel)
    contained.wait_for(
        lambda: [
            m
            for m in emulator.state.messages(channel)
            if m["text"].startswith("Containment proposed")
        ]
    )
    contained.slack.command("severity critical", channel_id=channel, user_id="U0COMMANDER")
    contained.wait_for(
        lambda: (
            len(
                [
                    m
                    for m in emulator.state.messages(channel)
                    if m["text"].startswith("Containment proposed")
                ]
            )
            == 1
        )
    )


def test_status_shows_where_each_containment_action_stands(
    contained: ServedWarroom, emulator: SlackEmulator
) -> None:
    _, channel = declare(
        contained, "declare critical Assistant fabricating refund policies model:support-bot-v2"
    )
    contained.wait_for(
        lambda: [
            m
            for m in emulator.state.messages(channel)
            if m["text"].startswith("Containment proposed")
        ]
    )
    status = contained.slack.command("status", channel_id=channel).json()
    assert "Model shutdown: awaiting a decision (0 of 2 approvals)" in json.dumps(status)
