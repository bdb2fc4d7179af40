"""The served Bolt app over real HTTP: signed slash commands, forms and buttons, against the
Slack emulator; assertions on the emulator's recorded calls and the database."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from bot.domain.vocabulary import IncidentState, Role, Severity
from bot.emulator.server import SlackEmulator
from bot.emulator.signed_requests import declare_form_values
from bot.ids import ActionId
from storage.unit_of_work import UnitOfWorkFactory
from tests.conftest import ServedWarroom

pytestmark = pytest.mark.integration


def ok_calls(emulator: SlackEmulator, method: str) -> list[Any]:
    return [call for call in emulator.calls(method) if call.status == 200 and call.ok]


def incident_opened(served: ServedWarroom, number: int = 1) -> bool:
    return any(
        i.number == number and i.war_room_opened_at is not None
        for i in served.app.workflow.incidents.list_open()
    )


def declare_and_wait(served: ServedWarroom, text: str, number: int = 1) -> str:
    response = served.slack.command(text)
    assert response.status_code == 200, response.text
    served.wait_for(lambda: incident_opened(served, number))
    incident = [i for i in served.app.workflow.incidents.list_open() if i.number == number][0]
    assert incident.channel_id is not None
    return incident.channel_id


def quiet(served: ServedWarroom) -> None:
    """Let any straggling lazy listener (from a retried delivery) finish its calls."""
    time.sleep(0.3)


def test_declaration_opens_the_war_room_in_order_and_exactly_once(
    served: ServedWarroom, emulator: SlackEmulator
) -> None:
    channel = declare_and_wait(served, "declare high Support bot answers slowly")
    quiet(served)

    methods = [c.method for c in emulator.calls() if c.method != "auth.test"]
    assert methods[:5] == [
        "conversations.create",
        "conversations.setTopic",
        "conversations.setPurpose",
        "conversations.invite",
        "chat.postMessage",
    ]
    assert methods[5] == "pins.add"
    invited = ok_calls(emulator, "conversations.invite")[0].params["users"]
    assert set(str(invited).split(",")) == {
        "U0REPORTER",
        "U0COMMANDER",
        "U0SAFETY",
        "U0SECURITY",
        "U0DATA",
        "U0COMMS",
        "U0LEGAL",
    }
    topic = ok_calls(emulator, "conversations.setTopic")[0].params["topic"]
    assert len(topic) <= 250 and "Support bot answers slowly" in topic
    first = emulator.state.messages(channel)[0]
    assert first["text"].startswith(":large_orange_circle: Incident #1")
    war_room = emulator.state.channel_by_name("inc-1-support-bot-answers-slowly")
    assert war_room is not None
    assert first["ts"] in war_room["pins"]
    # one checklist DM per role holder, the announcement, no critical alarm for "high"
    for user in ("U0COMMANDER", "U0SAFETY", "U0SECURITY", "U0DATA", "U0COMMS", "U0LEGAL"):
        dm = emulator.state.dm_channel(user)
        assert dm is not None
        texts = [m["text"] for m in emulator.state.messages(dm)]
        assert len(texts) == 1 and "incident #1" in texts[0]
    assert len(emulator.state.messages("C0ANNOUNCE")) == 1
    assert emulator.state.messages("C0EXEC") == []
    assert emulator.validation_failures() == []
    # evidence taken once the war room opened: the record, its alerts, the messages so far
    incident = served.app.workflow.incidents.list_open()[0]
    with served.app.workflow.incidents._uow(read_only=True) as uow:
        evidence = uow.evidence.list_for(incident.id)
        audit = [entry.action.value for entry in uow.audit.entries(incident.id)]
    assert sorted(record.kind.value for record in evidence) == [
        "alerts",
        "incident_record",
        "war_room_messages",
    ]
    assert all(record.reason == "declared" and record.is_intact() for record in evidence)
    assert audit == ["declared", "evidence_preserved"]


def test_critical_incident_alerts_commander_and_executives_once(
    served: ServedWarroom, emulator: SlackEmulator
) -> None:
    declare_and_wait(served, "declare critical Model exfiltrating customer records")
    quiet(served)

    exec_messages = emulator.state.messages("C0EXEC")
    assert len(exec_messages) == 1
    assert "Critical AI incident #1" in exec_messages[0]["text"]
    commander_dm = emulator.state.messages(emulator.state.dm_channel("U0COMMANDER"))
    assert [m["text"].startswith("URGENT") for m in commander_dm] == [False, True]
    incident = served.app.workflow.incidents.list_open()[0]
    with UnitOfWorkFactory(served.app.engine)(read_only=True) as uow:
        planned = {n.audience.value: n for n in uow.notifications.list_for(incident.id)}
    executive = planned["executive_team"]
    assert (executive.tier.value, executive.state.value, executive.outcome) == (
        "immediate",
        "sent",
        "met",
    )
    assert {a for a, n in planned.items() if n.state.value == "pending"} == {
        "security_team",
        "legal_team",
        "communications_team",
        "technical_team",
    }


@pytest.mark.parametrize("retries", [[1], [1, 2]])
def test_retried_declaration_opens_one_channel(
    served: ServedWarroom, emulator: SlackEmulator, retries: list[int]
) -> None:
    body_trigger = "retry.1.trigger"
    first = served.slack.command("declare high Duplicate delivery", trigger_id=body_trigger)
    for retry in retries:
        again = served.slack.command(
            "declare high Duplicate delivery", trigger_id=body_trigger, retry_num=retry
        )
        assert again.status_code == 200
    assert first.status_code == 200
    served.wait_for(lambda: incident_opened(served))
    quiet(served)

    assert len(ok_calls(emulator, "conversations.create")) == 1
    assert len(served.app.workflow.incidents.list_open()) == 1
    assert len(emulator.state.messages("C0ANNOUNCE")) == 1


def test_same_command_delivered_twice_at_once_declares_once(
    served: ServedWarroom, emulator: SlackEmulator
) -> None:
    import threading

    responses: list[int] = []
    threads = [
        threading.Thread(
            target=lambda: responses.append(
                served.slack.command("declare medium Race", trigger_id="race.1.trigger").status_code
            )
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    served.wait_for(lambda: incident_opened(served))
    quiet(served)
    assert responses == [200] * 4
    assert len(ok_calls(emulator, "conversations.create")) == 1
    assert len(ok_calls(emulator, "pins.add")) == 1


def open_form(served: ServedWarroom, emulator: SlackEmulator) -> dict[str, Any]:
    response = served.slack.command("declare")
    assert response.status_code == 200
    served.wait_for(lambda: emulator.state.views())
    return emulator.state.views()[-1]


def form_values(severity: str = "medium") -> dict[str, Any]:
    return declare_form_values(
        title="Fraud model drifting",
        severity=severity or None,
        description="Approval rate drifted since Tuesday.",
        affected="fraud-v7, features ",
        flags=("personal_data", "public_facing"),
    )


def test_the_form_declares_with_every_field(served: ServedWarroom, emulator: SlackEmulator) -> None:
    view = open_form(served, emulator)
    assert view["callback_id"] == "declare_incident_modal"

    response = served.slack.submit_view(view, form_values(), view_id=view["id"])

    assert response.status_code == 200
    assert response.json()["response_action"] == "update"
    served.wait_for(lambda: incident_opened(served))
    incident = served.app.workflow.incidents.list_open()[0]
    assert incident.title == "Fraud model drifting"
    assert incident.severity is Severity.MEDIUM
    assert incident.incident_type.value == "model_drift"
    assert incident.affected_systems == ("fraud-v7", "features")
    assert incident.personal_data and incident.public_facing
    assert incident.source.value == "modal"


def test_double_submitted_form_declares_once(
    served: ServedWarroom, emulator: SlackEmulator
) -> None:
    view = open_form(served, emulator)
    first = served.slack.submit_view(view, form_values(), view_id=view["id"])
    second = served.slack.submit_view(view, form_values(), view_id=view["id"])
    assert first.status_code == second.status_code == 200
    served.wait_for(lambda: incident_opened(served))
    quiet(served)
    assert len(ok_calls(emulator, "conversations.create")) == 1
    assert "already declared" in json.dumps(second.json())


def test_a_form_without_severity_gets_a_field_error_and_nothing_is_written(
    served: ServedWarroom, emulator: SlackEmulator
) -> None:
    view = open_form(served, emulator)
    response = served.slack.submit_view(view, form_values(severity=""), view_id=view["id"])
    assert response.json() == {
        "response_action": "errors",
        "errors": {"declare_severity": "Choose a severity."},
    }
    quiet(served)
    assert served.app.workflow.incidents.list_open() == []
    assert ok_calls(emulator, "conversations.create") == []


def test_bad_signature_is_refused_and_nothing_happens(
    served: ServedWarroom, emulator: SlackEmulator
) -> None:
    body = served.slack.command_body("declare critical forged")
    headers = served.slack.signed_headers(body, content_type="application/x-www-form-urlencoded")
    headers["X-Slack-Signature"] = "v0=" + "0" * 64
    response = served.slack.post(body, headers)
    assert response.status_code == 401
    quiet(served)
    assert [c for c in emulator.calls() if c.method != "auth.test"] == []
    assert served.app.workflow.incidents.list_open() == []


def test_request_older_than_five_minutes_is_refused(
    served: ServedWarroom, emulator: SlackEmulator
) -> None:
    body = served.slack.command_body("declare critical replayed")
    headers = served.slack.signed_headers(
        body, content_type="application/x-www-form-urlencoded", timestamp=int(time.time()) - 301
    )
    response = served.slack.post(body, headers)
    assert response.status_code == 401
    quiet(served)
    assert [c for c in emulator.calls() if c.method != "auth.test"] == []
    assert served.app.workflow.incidents.list_open() == []


def test_rate_limited_channel_creation_is_retried(
    served: ServedWarroom, emulator: SlackEmulator
) -> None:
    emulator.inject_fault("conversations.create", status=429, retry_after=0)
    channel = declare_and_wait(served, "declare low Rate limited declaration")
    statuses = [c.status for c in emulator.calls("conversations.create")]
    assert statuses == [429, 200]
    assert emulator.state.messages(channel)


def test_a_taken_channel_name_gets_a_suffix(served: ServedWarroom, emulator: SlackEmulator) -> None:
    emulator.state.add_channel("inc-1-taken-name")
    channel = declare_and_wait(served, "declare low Taken name")
    assert [c.params["name"] for c in emulator.calls("conversations.create")] == [
        "inc-1-taken-name",
        "inc-1-taken-name-2",
    ]
    incident = served.app.workflow.incidents.list_open()[0]
    assert incident.channel_name == "inc-1-taken-name-2"
    assert incident.channel_id == channel


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("declare urgent Something", "`urgent` is not a severity"),
        ("role wizard <@U1>", "`wizard` is not a role"),
        ("frobnicate", "is not an `/incident` command"),
    ],
)
def test_malformed_commands_get_an_ephemeral_usage_and_write_nothing(
    served: ServedWarroom, emulator: SlackEmulator, text: str, fragment: str
) -> None:
    response = served.slack.command(text)
    reply = response.json()
    assert response.status_code == 200
    assert reply["response_type"] == "ephemeral"
    assert fragment in reply["text"]
    assert "Usage:" in json.dumps(reply["blocks"])
    quiet(served)
    assert served.app.workflow.incidents.list_open() == []
    assert [c for c in emulator.calls() if c.method not in ("auth.test",)] == []


@pytest.mark.parametrize("text", ["status", "severity low", "resolve", "role legal <@U0X>"])
def test_war_room_commands_used_elsewhere_say_so(served: ServedWarroom, text: str) -> None:
    reply = served.slack.command(text, channel_id="C0GENERAL").json()
    assert reply["response_type"] == "ephemeral"
    assert "works in an incident's war-room channel" in reply["text"]


def test_help_and_list(served: ServedWarroom) -> None:
    help_reply = served.slack.command("").json()
    assert "/incident declare" in json.dumps(help_reply)
    assert served.slack.command("list").json()["text"] == "0 open incidents"
    declare_and_wait(served, "declare medium Listed incident")
    listed = served.slack.command("list").json()
    assert listed["text"] == "1 open incident"
    assert "Listed incident" in json.dumps(listed["blocks"])


def test_reads_and_usage_errors_leave_no_work_after_the_ack(
    served: ServedWarroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    submitted: list[object] = []
    submit = served.app.executor.submit
    monkeypatch.setattr(
        served.app.executor,
        "submit",
        lambda fn, *a, **k: submitted.append(fn) or submit(fn, *a, **k),
    )
    for text in ("list", "help", "", "status", "severity nonsense", "no-such-command"):
        assert served.slack.command(text).status_code == 200
    assert submitted == []
    declare_and_wait(served, "declare medium After the ack")
    assert submitted


def test_status_in_the_war_room(served: ServedWarroom) -> None:
    channel = declare_and_wait(served, "declare medium Status check")
    reply = served.slack.command("status", channel_id=channel).json()
    assert reply["response_type"] == "ephemeral"
    text = json.dumps(reply)
    assert "Status check" in text and "medium" in text and "Incident commander" in text


def test_role_command_invites_replaces_updates_card_and_sends_checklist(
    served: ServedWarroom, emulator: SlackEmulator
) -> None:
    channel = declare_and_wait(served, "declare medium Role change")
    updates_before = len(ok_calls(emulator, "chat.update"))

    reply = served.slack.command(
        "role safety <@U0NEWSAFETY|nina>", channel_id=channel, user_id="U0COMMANDER"
    )
    assert reply.status_code == 200
    served.wait_for(lambda: emulator.state.dm_channel("U0NEWSAFETY"))
    served.wait_for(lambda: emulator.state.messages(emulator.state.dm_channel("U0NEWSAFETY")))

    incident = served.app.workflow.incidents.list_open()[0]
    assert incident.holder(Role.AI_SAFETY_LEAD) == "U0NEWSAFETY"
    invites = [c.params for c in ok_calls(emulator, "conversations.invite")]
    assert any("U0NEWSAFETY" in str(p["users"]) for p in invites)
    assert len(ok_calls(emulator, "chat.update")) == updates_before + 1
    card = emulator.state.messages(channel)[0]
    assert "<@U0NEWSAFETY>" in json.dumps(card["blocks"])
    texts = [m["text"] for m in emulator.state.messages(channel)]
    assert any("replacing <@U0SAFETY>" in text for text in texts)
    checklist = emulator.state.messages(emulator.state.dm_channel("U0NEWSAFETY"))[0]["text"]
    assert "AI safety lead" in checklist
    with served.app.workflow.incidents._uow() as uow:
        kinds = [e["kind"] for e in uow.timeline.list_for(incident.id)]
    assert kinds.count("role_assigned") == 7


def test_severity_command_updates_card_and_escalation_to_critical_alerts(
    served: ServedWarroom, emulator: SlackEmulator
) -> None:
    channel = declare_and_wait(served, "declare medium Escalating")
    served.slack.command("severity critical", channel_id=channel, user_id="U0COMMANDER")
    served.wait_for(lambda: emulator.state.messages("C0EXEC"))
    incident = served.app.workflow.incidents.list_open()[0]
    assert incident.severity is Severity.CRITICAL
    served.wait_for(lambda: "critical" in emulator.state.messages(channel)[0]["text"])
    # a second escalation does not alert the executives again
    served.slack.command("severity high", channel_id=channel, user_id="U0COMMANDER")
    served.slack.command("severity critical", channel_id=channel, user_id="U0COMMANDER")
    served.wait_for(
        lambda: (
            len([m for m in emulator.state.messages(channel) if "Severity changed" in m["text"]])
            == 3
        )
    )
    quiet(served)
    assert len(emulator.state.messages("C0EXEC")) == 1


def test_resolve_command_changes_state_and_card(
    served: ServedWarroom, emulator: SlackEmulator
) -> None:
    channel = declare_and_wait(served, "declare low To resolve")
    served.slack.command("resolve", channel_id=channel, user_id="U0COMMANDER")
    served.wait_for(lambda: "resolved" in emulator.state.messages(channel)[0]["text"])
    assert served.app.workflow.incidents.list_open() == []
    incident = served.app.workflow.incidents.get(1)
    assert incident.state is IncidentState.RESOLVED
    assert incident.resolved_at is not None
    again = served.slack.command("resolve", channel_id=channel, user_id="U0COMMANDER").json()
    assert again["response_type"] == "ephemeral"
    assert "cannot become resolved" in again["text"]


def test_card_buttons_show_status_change_severity_and_resolve(
    served: ServedWarroom, emulator: SlackEmulator
) -> None:
    channel = declare_and_wait(served, "declare low Buttons")
    incident = served.app.workflow.incidents.list_open()[0]

    status = served.slack.click(
        action_id=ActionId.CARD_STATUS, value=str(incident.id), channel_id=channel
    )
    assert status.status_code == 200
    served.wait_for(
        lambda: [c for c in emulator.calls("response_url") if "Buttons" in json.dumps(c.params)]
    )

    served.slack.click(
        action_id=ActionId.CARD_SEVERITY,
        value="",
        channel_id=channel,
        selected_option={"value": f"{incident.id}:high"},
    )
    served.wait_for(
        lambda: served.app.workflow.incidents.get(incident.id).severity is Severity.HIGH
    )

    served.slack.click(
        action_id=ActionId.CARD_RESOLVE,
        value=str(incident.id),
        channel_id=channel,
        user_id="U0COMMANDER",
    )
    served.wait_for(
        lambda: served.app.workflow.incidents.get(incident.id).state is IncidentState.RESOLVED
    )
    served.wait_for(lambda: "resolved" in emulator.state.messages(channel)[0]["text"])
    assert emulator.validation_failures() == []


def test_every_message_and_view_warroom_sent_passed_validation(
    served: ServedWarroom, emulator: SlackEmulator
) -> None:
    channel = declare_and_wait(served, "declare critical " + "Very long title " * 20)
    served.slack.command("role legal <@U0L2>", channel_id=channel)
    served.slack.command("declare")
    served.wait_for(lambda: emulator.state.views())
    quiet(served)
    assert emulator.validation_failures() == []
    assert [c for c in emulator.calls() if not c.ok] == []
