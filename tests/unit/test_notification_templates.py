"""The war-room side of communications: drafts, reminders, escalations, forms. Each renders
Block Kit that slack_sdk and Slack's limits accept, typical and worst case."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.domain.notifications import DeadlineOutcome, NotificationRecord, NotificationState
from bot.domain.vocabulary import Audience, NotificationTier
from bot.emulator.blockkit import check_message, check_view
from bot.presenters import incident_context, notification_context
from bot.rendering import Renderer, chunks
from tests.unit.test_rendering import WORST_CASE, make_incident

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
RECORD = NotificationRecord(
    id=7,
    incident_id=1,
    audience=Audience.AFFECTED_USERS,
    tier=NotificationTier.URGENT,
    state=NotificationState.PENDING,
    due_at=NOW,
    created_at=NOW,
    reason="Personal data is involved, so the people it belongs to must be told.",
)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def renderings(renderer: Renderer, record: NotificationRecord, worst: bool) -> dict[str, Any]:
    incident = incident_context(WORST_CASE if worst else make_incident())
    n = notification_context(record)
    preview = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 2900}}] * 40
    text = ("Line <@U1> & <!channel>\n" * 400) if worst else "We are investigating."
    return {
        "draft": renderer.render(
            "notifications/draft",
            incident=incident,
            notification=n,
            preview_blocks=preview if worst else preview[:2],
            preview_text="preview",
            channels=[] if worst else ["C1"],
            comms_lead_id="U0COMMS",
            auto_send=not worst,
        ),
        "escalation": renderer.render(
            "notifications/escalation", incident=incident, notification=n, commander_id="U0IC"
        ),
        "edited_message": renderer.render(
            "notifications/edited_message", incident=incident, notification=n, text=text
        ),
        "reminder": renderer.render(
            "notifications/reminder",
            incident=incident,
            tier="urgent",
            due_at=NOW,
            pending=[n] * (30 if worst else 1),
            auto_send=True,
            comms_lead_id=None if worst else "U0COMMS",
        ),
        **{
            f"cadence:{outcome}": renderer.render(
                "notifications/cadence",
                incident=incident,
                interval="30 minutes",
                last_update_at=NOW,
                comms_lead_id="U0COMMS",
                reminder_id=3,
                outcome=outcome,
                actor_id="U0COMMS",
                until=NOW,
            )
            for outcome in (None, "snoozed", "dismissed", "updated")
        },
    }


def views(renderer: Renderer, record: NotificationRecord, worst: bool) -> dict[str, Any]:
    n = notification_context(record)
    return {
        "edit_modal": renderer.render(
            "notifications/edit_modal", notification=n, text="x" * (5000 if worst else 10)
        ),
        "skip_modal": renderer.render("notifications/skip_modal", notification=n),
    }


STATES = [
    RECORD,
    replace(RECORD, state=NotificationState.SENT, sent_at=NOW, outcome=DeadlineOutcome.LATE),
    replace(
        RECORD,
        state=NotificationState.SENT,
        sent_at=NOW,
        decided_by="U0COMMS",
        outcome=DeadlineOutcome.MET,
    ),
    replace(RECORD, state=NotificationState.SKIPPED, decided_by="U0COMMS", skip_reason="<b>"),
    replace(RECORD, state=NotificationState.ESCALATED, outcome=DeadlineOutcome.LATE),
    replace(RECORD, state=NotificationState.FAILED),
    replace(RECORD, edited_text="edited"),
]


@pytest.mark.parametrize("worst", [False, True], ids=["typical", "worst-case"])
@pytest.mark.parametrize(
    "record", STATES, ids=[f"{r.state.value}-{i}" for i, r in enumerate(STATES)]
)
def test_every_notification_message_and_form_is_valid_block_kit(
    renderer: Renderer, record: NotificationRecord, worst: bool
) -> None:
    for name, message in renderings(renderer, record, worst).items():
        assert check_message(message) == [], name
        assert message["text"], name
    for name, view in views(renderer, record, worst).items():
        assert check_view(view) == [], name


def test_every_template_in_notifications_is_covered(renderer: Renderer) -> None:
    covered = {
        f"notifications/{name.split(':')[0]}" for name in renderings(renderer, RECORD, False)
    } | {f"notifications/{name}" for name in views(renderer, RECORD, False)}
    assert {n for n in renderer.template_names() if n.startswith("notifications/")} == covered


def test_an_open_draft_offers_send_edit_and_skip_and_a_settled_one_offers_nothing(
    renderer: Renderer,
) -> None:
    def buttons(record: NotificationRecord) -> list[str]:
        message = renderings(renderer, record, False)["draft"]
        return [
            e["action_id"]
            for b in message["blocks"]
            if b["type"] == "actions"
            for e in b["elements"]
        ]

    open_buttons = ["notification_send_now", "notification_edit", "notification_skip"]
    assert buttons(RECORD) == open_buttons
    assert buttons(STATES[4]) == open_buttons  # escalated: the commander may still send it
    for record in (STATES[1], STATES[2], STATES[3], STATES[5]):
        assert buttons(record) == [], record.state


def test_a_skipped_draft_says_who_skipped_it_and_why(renderer: Renderer) -> None:
    draft = renderings(renderer, STATES[3], False)["draft"]
    assert "Skipped by <@U0COMMS>: &lt;b&gt;" in json.dumps(draft)


def test_chunks_cut_long_text_at_line_ends_within_the_limit() -> None:
    text = "\n".join(f"line {i} " + "x" * 50 for i in range(200))
    pieces = chunks(text, 2900)
    assert all(len(piece) <= 2900 for piece in pieces)
    assert "".join(pieces).replace("\n", "") == text.replace("\n", "")
    assert chunks("", 10) == [""]
    assert chunks("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]
