"""Communications through signed Slack requests to the served app: the drafts' buttons and
forms, `/incident update`, `/incident flag`, status listing deadlines, the legal report's
Mark submitted, and refusals for people who may not decide."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from bot.app import create_app
from bot.domain.notifications import NotificationState
from bot.domain.vocabulary import Audience, RegulatoryRegime
from bot.emulator.server import SlackEmulator
from bot.emulator.signed_requests import SlackSender
from bot.ids import ActionId, BlockId, CallbackId
from bot.server import BackgroundServer
from storage.unit_of_work import UnitOfWorkFactory
from tests.conftest import ServedWarroom, make_settings
from tests.integration.comms_support import AUDIENCE_CHANNELS, add_audience_channels, comms_config

pytestmark = pytest.mark.integration
A = Audience


class SteppingClock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
def comms(
    emulator: SlackEmulator, sqlite_engine: Engine, clock: SteppingClock
) -> Iterator[ServedWarroom]:
    add_audience_channels(emulator)
    app = create_app(make_settings(emulator), comms_config(), engine=sqlite_engine, clock=clock)
    server = BackgroundServer(app.asgi).start()
    sender = SlackSender(server.url, response_url=emulator.response_url("comms"))
    yield ServedWarroom(app, server, sender)
    sender.close()
    server.stop()
    app.close()


def declare(served: ServedWarroom, emulator: SlackEmulator, text: str) -> tuple[int, str]:
    served.slack.command(text, user_id="U0COMMANDER")
    served.wait_for(
        lambda: any(i.war_room_opened_at for i in served.app.workflow.incidents.list_open())
    )
    incident = served.app.workflow.incidents.list_open()[0]
    assert incident.channel_id is not None
    served.wait_for(lambda: drafts(emulator, incident.channel_id or ""))
    return incident.id, incident.channel_id


def drafts(emulator: SlackEmulator, channel: str) -> dict[str, dict[str, Any]]:
    """The latest version of each draft in the war room, by audience label."""
    found: dict[str, dict[str, Any]] = {}
    for message in emulator.state.messages(channel):
        if message["text"].startswith("Draft "):
            label = message["text"].split(" message for the ", 1)[1].split(" (incident")[0]
            found[label] = message
    return found


def button(message: dict[str, Any], action_id: str) -> str:
    for block in message["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return str(element["value"])
    raise AssertionError(f"no {action_id} button")


def rows(served: ServedWarroom, incident_id: int) -> dict[Audience, Any]:
    with UnitOfWorkFactory(served.app.engine)(read_only=True) as uow:
        return {n.audience: n for n in uow.notifications.list_for(incident_id)}


def replies(emulator: SlackEmulator) -> list[str]:
    return [json.dumps(c.params) for c in emulator.calls("response_url")]


def test_send_now_sends_once_and_updates_the_draft(
    comms: ServedWarroom, emulator: SlackEmulator
) -> None:
    incident_id, channel = declare(comms, emulator, "declare high Bot shows other users' chats")
    security = drafts(emulator, channel)["Technical team"]
    value = button(security, ActionId.NOTIFY_SEND_NOW)
    for _ in range(2):  # a double click
        comms.slack.click(
            action_id=ActionId.NOTIFY_SEND_NOW, value=value, channel_id=channel, user_id="U0COMMS"
        )
    comms.wait_for(
        lambda: rows(comms, incident_id)[A.TECHNICAL_TEAM].state is NotificationState.SENT
    )
    comms.wait_for(lambda: "Sent" in json.dumps(drafts(emulator, channel)["Technical team"]))
    assert len(emulator.state.messages(AUDIENCE_CHANNELS[A.TECHNICAL_TEAM])) == 1
    row = rows(comms, incident_id)[A.TECHNICAL_TEAM]
    assert row.decided_by == "U0COMMS" and row.outcome.value == "met"
    updated = drafts(emulator, channel)["Technical team"]
    assert not [b for b in updated["blocks"] if b["type"] == "actions"]
    assert emulator.validation_failures() == []


def test_someone_else_cannot_send_and_nothing_changes(
    comms: ServedWarroom, emulator: SlackEmulator
) -> None:
    incident_id, channel = declare(comms, emulator, "declare high Bot shows other users' chats")
    value = button(drafts(emulator, channel)["Technical team"], ActionId.NOTIFY_SEND_NOW)
    comms.slack.click(
        action_id=ActionId.NOTIFY_SEND_NOW, value=value, channel_id=channel, user_id="U0STRANGER"
    )
    comms.wait_for(lambda: any("communications lead" in r for r in replies(emulator)))
    assert rows(comms, incident_id)[A.TECHNICAL_TEAM].state is NotificationState.PENDING
    assert emulator.state.messages(AUDIENCE_CHANNELS[A.TECHNICAL_TEAM]) == []


def test_skip_asks_why_records_it_and_the_message_is_never_sent(
    comms: ServedWarroom, emulator: SlackEmulator, clock: SteppingClock
) -> None:
    incident_id, channel = declare(comms, emulator, "declare high Bot shows other users' chats")
    value = button(drafts(emulator, channel)["Technical team"], ActionId.NOTIFY_SKIP)
    comms.slack.click(
        action_id=ActionId.NOTIFY_SKIP, value=value, channel_id=channel, user_id="U0COMMS"
    )
    comms.wait_for(lambda: emulator.state.views())
    [view] = emulator.state.views()
    assert view["callback_id"] == CallbackId.NOTIFY_SKIP_MODAL

    def reason(text: str) -> dict[str, Any]:
        return {
            BlockId.NOTIFY_SKIP_REASON.value: {
                ActionId.NOTIFY_SKIP_REASON.value: {"type": "plain_text_input", "value": text}
            }
        }

    empty = comms.slack.submit_view(view, reason("   "), user_id="U0COMMS", view_id=view["id"])
    assert empty.json()["response_action"] == "errors"
    assert rows(comms, incident_id)[A.TECHNICAL_TEAM].state is NotificationState.PENDING
    done = comms.slack.submit_view(
        view,
        reason("Told on the engineering all-hands call"),
        user_id="U0COMMS",
        view_id=view["id"],
    )
    assert done.status_code == 200 and not done.content
    row = rows(comms, incident_id)[A.TECHNICAL_TEAM]
    assert row.state is NotificationState.SKIPPED
    assert row.skip_reason == "Told on the engineering all-hands call"
    comms.wait_for(lambda: "Skipped by" in json.dumps(drafts(emulator, channel)["Technical team"]))
    clock.offset = timedelta(hours=25)
    comms.app.communications.sweep()
    assert emulator.state.messages(AUDIENCE_CHANNELS[A.TECHNICAL_TEAM]) == []
    with UnitOfWorkFactory(comms.app.engine)(read_only=True) as uow:
        actions = [e.action.value for e in uow.audit.entries(incident_id)]
    assert "notification_skipped" in actions


def test_edit_replaces_the_words_and_external_edits_are_still_redacted(
    comms: ServedWarroom, emulator: SlackEmulator, clock: SteppingClock
) -> None:
    incident_id, channel = declare(comms, emulator, "declare high Bot shows other users' chats")
    comms.slack.command("flag public", channel_id=channel, user_id="U0COMMANDER")
    comms.wait_for(lambda: "PR team" in drafts(emulator, channel))
    value = button(drafts(emulator, channel)["PR team"], ActionId.NOTIFY_EDIT)
    comms.slack.click(
        action_id=ActionId.NOTIFY_EDIT, value=value, channel_id=channel, user_id="U0COMMS"
    )
    comms.wait_for(lambda: emulator.state.views())
    [view] = emulator.state.views()
    assert view["callback_id"] == CallbackId.NOTIFY_EDIT_MODAL
    prefilled = view["blocks"][1]["element"]["initial_value"]
    assert prefilled  # the template's words, ready to change
    words = "We are aware of an issue. Press: call <@U0COMMS> or press@example.com."
    comms.slack.submit_view(
        view,
        {
            BlockId.NOTIFY_EDIT_TEXT.value: {
                ActionId.NOTIFY_EDIT_TEXT.value: {"type": "plain_text_input", "value": words}
            }
        },
        user_id="U0COMMS",
        view_id=view["id"],
    )
    assert rows(comms, incident_id)[A.PR_TEAM].edited_text == words
    clock.offset = timedelta(minutes=16)
    comms.app.communications.sweep()
    [sent] = emulator.state.messages(AUDIENCE_CHANNELS[A.PR_TEAM])
    body = json.dumps(sent)
    assert "We are aware of an issue" in body
    assert "press@example.com" not in body and "<@U0COMMS>" not in body
    assert "Communications lead" in body or "communications lead" in body


def test_update_fans_out_to_every_audience_told_and_resets_the_cadence(
    comms: ServedWarroom, emulator: SlackEmulator, clock: SteppingClock
) -> None:
    incident_id, channel = declare(
        comms, emulator, "declare critical Support bot leaks customer emails"
    )
    comms.slack.command("flag personal-data", channel_id=channel, user_id="U0COMMANDER")
    comms.wait_for(lambda: "Affected users" in drafts(emulator, channel))
    clock.offset = timedelta(hours=2)
    comms.app.communications.sweep()
    told = [a for a, row in rows(comms, incident_id).items() if row.state is NotificationState.SENT]
    assert A.AFFECTED_USERS in told and A.TECHNICAL_TEAM not in told

    reply = comms.slack.command(
        "update Safe mode is on; contact jane.doe@example.com for the log excerpt.",
        channel_id=channel,
        user_id="U0COMMS",
    )
    assert reply.status_code == 200
    comms.wait_for(
        lambda: any("Status update from" in m["text"] for m in emulator.state.messages(channel))
    )
    for audience in told:
        posts = emulator.state.messages(AUDIENCE_CHANNELS[audience])
        assert len(posts) == 2, audience  # the planned message, then the update
        assert "Safe mode is on" in json.dumps(posts[-1])
    external = json.dumps(emulator.state.messages(AUDIENCE_CHANNELS[A.AFFECTED_USERS])[-1])
    assert "jane.doe@example.com" not in external
    assert emulator.state.messages(AUDIENCE_CHANNELS[A.TECHNICAL_TEAM]) == []  # not told yet
    with UnitOfWorkFactory(comms.app.engine)(read_only=True) as uow:
        from bot.domain.reminders import ReminderKind

        [cadence] = uow.reminders.pending(incident_id, ReminderKind.CADENCE)
    assert cadence.due_at > datetime.now(UTC) + clock.offset + timedelta(minutes=29)
    # the reminder that asked for the update says it came, and offers no more buttons
    comms.wait_for(
        lambda: any("posted an update" in json.dumps(m) for m in emulator.state.messages(channel))
    )
    [answered] = [
        m for m in emulator.state.messages(channel) if "posted an update" in json.dumps(m)
    ]
    assert not [b for b in answered["blocks"] if b["type"] == "actions"]
    assert emulator.validation_failures() == []


def test_update_with_no_text_gets_the_right_form_and_changes_nothing(
    comms: ServedWarroom, emulator: SlackEmulator
) -> None:
    incident_id, channel = declare(comms, emulator, "declare high Bot shows other users' chats")
    reply = comms.slack.command("update", channel_id=channel, user_id="U0COMMS")
    body = json.dumps(reply.json())
    assert "/incident update" in body and reply.json()["response_type"] == "ephemeral"
    with UnitOfWorkFactory(comms.app.engine)(read_only=True) as uow:
        kinds = [e["kind"] for e in uow.timeline.list_for(incident_id)]
    assert "status_update" not in kinds


def test_flag_ai_act_starts_its_clock_with_a_report_that_legal_marks_submitted(
    comms: ServedWarroom, emulator: SlackEmulator
) -> None:
    incident_id, channel = declare(comms, emulator, "declare high Triage model misroutes patients")
    reply = comms.slack.command("flag ai-act death", channel_id=channel, user_id="U0COMMANDER")
    assert reply.status_code == 200
    comms.wait_for(
        lambda: any("Mark submitted" in json.dumps(m) for m in emulator.state.messages(channel))
    )
    with UnitOfWorkFactory(comms.app.engine)(read_only=True) as uow:
        [clock_row] = uow.clocks.list_for(incident_id)
    assert clock_row.regime is RegulatoryRegime.EU_AI_ACT_ART73
    assert clock_row.due_at - clock_row.started_at == timedelta(days=10)
    report = next(m for m in emulator.state.messages(channel) if "Mark submitted" in json.dumps(m))
    value = button(report, ActionId.REGULATORY_MARK_SUBMITTED)
    comms.slack.click(
        action_id=ActionId.REGULATORY_MARK_SUBMITTED,
        value=value,
        channel_id=channel,
        user_id="U0DATA",
    )
    comms.wait_for(lambda: any("legal advisor" in r for r in replies(emulator)))
    comms.slack.click(
        action_id=ActionId.REGULATORY_MARK_SUBMITTED,
        value=value,
        channel_id=channel,
        user_id="U0LEGAL",
    )
    comms.wait_for(
        lambda: any(
            "Submitted by" in json.dumps(m)
            and ActionId.REGULATORY_MARK_SUBMITTED.value not in json.dumps(m)
            for m in emulator.state.messages(channel)
        )
    )
    with UnitOfWorkFactory(comms.app.engine)(read_only=True) as uow:
        [clock_row] = uow.clocks.list_for(incident_id)
        from bot.domain.reminders import ReminderKind

        assert uow.reminders.pending(incident_id, ReminderKind.REGULATORY) == []
    assert clock_row.submitted_by == "U0LEGAL"
    # the regulator is now planned too, due an hour after the flag
    assert A.REGULATORY_BODY in rows(comms, incident_id)


def test_status_lists_every_deadline_and_legal_clock(
    comms: ServedWarroom, emulator: SlackEmulator
) -> None:
    _, channel = declare(comms, emulator, "declare critical Support bot leaks customer emails")
    comms.slack.command("flag personal-data", channel_id=channel, user_id="U0COMMANDER")
    comms.wait_for(lambda: "Affected users" in drafts(emulator, channel))
    status = json.dumps(comms.slack.command("status", channel_id=channel, user_id="U0COMMS").json())
    for words in ("Executive team", "sent, met", "Affected users", "pending", "GDPR Art. 33(1)"):
        assert words in status, words


def test_snooze_on_the_cadence_reminder_moves_the_next_one_and_replaces_the_message(
    comms: ServedWarroom, emulator: SlackEmulator, clock: SteppingClock
) -> None:
    from bot.domain.reminders import ReminderKind

    incident_id, channel = declare(comms, emulator, "declare high Bot shows other users' chats")
    clock.offset = timedelta(hours=1, minutes=1)
    comms.app.communications.sweep()
    [reminder] = [
        m for m in emulator.state.messages(channel) if "status update is due" in m["text"]
    ]
    value = button(reminder, ActionId.CADENCE_SNOOZE_LONG)
    comms.slack.click(
        action_id=ActionId.CADENCE_SNOOZE_LONG, value=value, channel_id=channel, user_id="U0COMMS"
    )
    comms.wait_for(lambda: any("Snoozed by" in r for r in replies(emulator)))
    replaced = [
        c.params for c in emulator.calls("response_url") if "Snoozed by" in json.dumps(c.params)
    ]
    assert replaced[-1].get("replace_original") in (True, "true")
    with UnitOfWorkFactory(comms.app.engine)(read_only=True) as uow:
        [next_one] = uow.reminders.pending(incident_id, ReminderKind.CADENCE)
    expected = datetime.now(UTC) + clock.offset + timedelta(minutes=60)
    assert abs((next_one.due_at - expected).total_seconds()) < 30
