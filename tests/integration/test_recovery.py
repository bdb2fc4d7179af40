"""Recovery through signed Slack requests: the commander approves each change, checks run
by themselves against a real HTTP server, a failed check holds the plan until a retry passes,
and a completed plan leaves the incident recovering."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
from storage.unit_of_work import UnitOfWorkFactory
from tests.conftest import TEST_CONFIG, ServedWarroom, make_settings
from tests.support_http import RecordingServer, Reply

pytestmark = pytest.mark.integration


@pytest.fixture
def gateway() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server


@pytest.fixture
def recovering(
    emulator: SlackEmulator, sqlite_engine: Engine, gateway: RecordingServer
) -> Iterator[ServedWarroom]:
    config = parse_config(
        {
            **TEST_CONFIG,
            "recovery": {
                "stages": [10, 100],
                "systems": {
                    "support-bot-v2": {
                        "restore": {
                            "url": f"{gateway.url}/models/{{system}}/restore",
                            "retries": 0,
                        },
                        "stage": {"url": f"{gateway.url}/models/{{system}}/traffic", "retries": 0},
                        "checks": [
                            {
                                "name": "health",
                                "url": f"{gateway.url}/models/{{system}}/health",
                                "json_field": "done",
                                "equals": True,
                            }
                        ],
                    }
                },
            },
        }
    )
    app = create_app(make_settings(emulator), config, engine=sqlite_engine)
    server = BackgroundServer(app.asgi).start()
    sender = SlackSender(server.url, response_url=emulator.response_url("recover"))
    yield ServedWarroom(app, server, sender)
    sender.close()
    server.stop()
    app.close()


def declare(served: ServedWarroom) -> tuple[int, str]:
    served.slack.command(
        "declare high Assistant invents refund policies model:support-bot-v2",
        user_id="U0COMMANDER",
    )
    served.wait_for(
        lambda: any(i.war_room_opened_at for i in served.app.workflow.incidents.list_open())
    )
    incident = served.app.workflow.incidents.list_open()[0]
    assert incident.channel_id is not None
    return incident.id, incident.channel_id


def plan_message(emulator: SlackEmulator, channel: str) -> dict[str, Any]:
    return [m for m in emulator.state.messages(channel) if m["text"].startswith("Recovery for")][-1]


def current_button(emulator: SlackEmulator, channel: str, action_id: str) -> str:
    for block in plan_message(emulator, channel)["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return str(element["value"])
    raise AssertionError(f"no {action_id} on the plan: {plan_message(emulator, channel)['text']}")


def click(served: ServedWarroom, channel: str, action_id: str, value: str, user: str) -> None:
    assert (
        served.slack.click(
            action_id=action_id, value=value, channel_id=channel, user_id=user
        ).status_code
        == 200
    )


def paths(gateway: RecordingServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in gateway.requests]


def test_a_plan_runs_step_by_step_holds_at_a_failed_check_and_completes(
    recovering: ServedWarroom, emulator: SlackEmulator, gateway: RecordingServer
) -> None:
    incident_id, channel = declare(recovering)
    recovering.slack.command("recover", channel_id=channel, user_id="U0COMMANDER")
    recovering.wait_for(
        lambda: [
            m for m in emulator.state.messages(channel) if m["text"].startswith("Recovery for")
        ]
    )
    assert gateway.requests == []  # nothing changes before the commander approves
    restore = current_button(emulator, channel, ActionId.RECOVERY_APPROVE)

    click(recovering, channel, ActionId.RECOVERY_APPROVE, restore, "U0DATA")
    recovering.wait_for(
        lambda: any(
            "incident commander" in json.dumps(c.params) for c in emulator.calls("response_url")
        )
    )
    assert gateway.requests == []

    for _ in range(2):  # a double click calls the endpoint once
        click(recovering, channel, ActionId.RECOVERY_APPROVE, restore, "U0COMMANDER")
    recovering.wait_for(lambda: "2 of 6" in plan_message(emulator, channel)["text"])
    assert paths(gateway) == [
        "POST /models/support-bot-v2/restore",
        "GET /models/support-bot-v2/health",
    ]
    assert gateway.requests[0].headers["idempotency-key"].startswith("warroom-1-recovery-")

    gateway.script(200, Reply(status=503, body='{"done": false}'))  # stage 10 ok, check fails
    stage = current_button(emulator, channel, ActionId.RECOVERY_APPROVE)
    click(recovering, channel, ActionId.RECOVERY_APPROVE, stage, "U0COMMANDER")
    recovering.wait_for(lambda: "(held)" in plan_message(emulator, channel)["text"])
    held = json.dumps(plan_message(emulator, channel))
    assert "HTTP 503, expected 200" in held and "<@U0COMMANDER>" in held
    assert len(gateway.requests) == 4  # nothing past the failed check

    retry = current_button(emulator, channel, ActionId.RECOVERY_RETRY)
    click(recovering, channel, ActionId.RECOVERY_RETRY, retry, "U0COMMANDER")
    recovering.wait_for(lambda: "4 of 6" in plan_message(emulator, channel)["text"])
    full = current_button(emulator, channel, ActionId.RECOVERY_APPROVE)
    click(recovering, channel, ActionId.RECOVERY_APPROVE, full, "U0COMMANDER")
    recovering.wait_for(lambda: "6 of 6" in plan_message(emulator, channel)["text"])
    assert paths(gateway)[-2:] == [
        "POST /models/support-bot-v2/traffic",
        "GET /models/support-bot-v2/health",
    ]
    assert json.loads(gateway.requests[-2].body)["percent"] == 100
    recovering.wait_for(
        lambda: recovering.app.workflow.incidents.get(incident_id).state is IncidentState.RECOVERING
    )
    with UnitOfWorkFactory(recovering.app.engine)(read_only=True) as uow:
        actions = [e.action.value for e in uow.audit.entries(incident_id)]
    assert actions.count("recovery_held") == 1 and "recovery_completed" in actions
    assert emulator.validation_failures() == []


def test_an_unconfigured_system_is_recovered_by_hand_with_manual_checks(
    served: ServedWarroom, emulator: SlackEmulator
) -> None:
    served.slack.command("declare medium Drift in ranking model:ranker-v3", user_id="U0COMMANDER")
    served.wait_for(
        lambda: any(i.war_room_opened_at for i in served.app.workflow.incidents.list_open())
    )
    incident = served.app.workflow.incidents.list_open()[0]
    channel = incident.channel_id or ""
    served.slack.command("recover", channel_id=channel, user_id="U0COMMANDER")
    served.wait_for(
        lambda: [
            m for m in emulator.state.messages(channel) if m["text"].startswith("Recovery for")
        ]
    )
    steps = 0
    while "complete" not in json.dumps(plan_message(emulator, channel)["blocks"][1]):
        value = current_button(emulator, channel, ActionId.RECOVERY_PASS)
        done_before = plan_message(emulator, channel)["text"]
        # manual checks may be passed by the AI safety lead; manual changes by the commander
        checking = "Check by hand" in json.dumps(plan_message(emulator, channel))
        click(
            served,
            channel,
            ActionId.RECOVERY_PASS,
            value,
            "U0SAFETY" if checking else "U0COMMANDER",
        )
        served.wait_for(
            lambda before=done_before: plan_message(emulator, channel)["text"] != before
        )
        steps += 1
        assert steps < 20
    assert steps == 8  # restore, check, then 3 stages each with a check
    served.wait_for(
        lambda: served.app.workflow.incidents.get(incident.id).state is IncidentState.RECOVERING
    )
    again = served.slack.command("recover", channel_id=channel, user_id="U0COMMANDER")
    assert again.status_code == 200, again.text
    assert "already complete" in json.dumps(again.json())
