"""The postmortem against the Slack emulator and a real database: a war room of 5,000
messages with threads, pins and reactions read through 429s; the figures; action items with
owners; the canvas, the canvas tabbed in the channel and the file; the Events API marks; the
lessons form; `warroom postmortem N`."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.app import Warroom, create_app
from bot.config import WarroomConfig, parse_config
from bot.domain.incident import Declaration, Incident
from bot.domain.postmortem import StoredPostmortem
from bot.domain.vocabulary import IncidentSource, Severity
from bot.emulator.server import SlackEmulator
from bot.emulator.state import WorkspaceState
from bot.errors import ExternalServiceError
from bot.ids import ActionId, BlockId, CallbackId
from bot.server import BackgroundServer
from bot.services.postmortem import PostmortemBuild, PostmortemService, read_latest
from bot.services.workflow import OpenWarRoom
from storage.models import (
    AlertDeliveryRow,
    AlertGroupRow,
    AlertRow,
    MessageMarkRow,
    NotificationRow,
    RecoveryPlanRow,
    RegulatoryClockRow,
    TimelineEventRow,
)
from storage.unit_of_work import UnitOfWorkFactory
from tests.conftest import TEST_CONFIG, ServedWarroom, make_settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2030, 5, 1, 9, 0, tzinfo=UTC)


class MovableClock:
    """warroom's clock and the emulator's: tests put both where the story needs them."""

    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at

    def __call__(self) -> float:
        return self.at.timestamp()

    def move(self, **delta: float) -> None:
        self.at = T0 + timedelta(**delta)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def slack(clock: MovableClock) -> Iterator[SlackEmulator]:
    with SlackEmulator(state=WorkspaceState(clock=clock)) as running:
        running.state.add_channel("incidents", channel_id="C0ANNOUNCE")
        running.state.add_channel("exec-incidents", channel_id="C0EXEC")
        yield running


def build_app(slack: SlackEmulator, engine: Engine, clock: MovableClock) -> Warroom:
    return create_app(make_settings(slack), parse_config(TEST_CONFIG), engine=engine, clock=clock)


@pytest.fixture
def app(slack: SlackEmulator, sqlite_engine: Engine, clock: MovableClock) -> Iterator[Warroom]:
    built = build_app(slack, sqlite_engine, clock)
    yield built
    built.close()


def service(app: Warroom, config: WarroomConfig | None = None) -> PostmortemService:
    workflow = app.workflow
    return PostmortemService(
        uow=UnitOfWorkFactory(app.engine),
        slack=workflow.slack,
        renderer=workflow.renderer,
        config=config or app.config,
        clock=app.clock,
        war_rooms=workflow.war_rooms,
    )


def declare(app: Warroom, *, key: str = "pm:1") -> Incident:
    result = app.workflow.declare(
        Declaration(
            title="Support bot follows instructions hidden in a wiki page",
            severity=Severity.CRITICAL,
            reporter_id="U0REPORTER",
            source=IncidentSource.SLASH_COMMAND,
            dedup_key=key,
            affected_systems=("support-bot-v2",),
        )
    )
    app.workflow.follow_up(OpenWarRoom(result.incident.id))
    return app.workflow.incidents.get(result.incident.id)


def stored_marks(app: Warroom) -> set[tuple[str, str, str]]:
    with Session(app.engine) as session:
        rows = session.scalars(select(MessageMarkRow))
        return {(r.message_ts, r.reaction, r.user_id) for r in rows}


def top_level_and_threads(slack: SlackEmulator, channel: str) -> tuple[int, int]:
    messages = slack.state.messages(channel)
    top = [m for m in messages if m.get("thread_ts") in (None, m["ts"])]
    return len(top), sum(1 for m in top if m.get("reply_count"))


# ----- a war room of 5,000 messages ----------------------------------------------------------

PEOPLE = ("U0COMMANDER", "U0SAFETY", "U0SECURITY", "U0DATA", "U0COMMS")


class Seeded:
    """What the seeding put in the war room, to check the document against."""

    def __init__(self) -> None:
        self.pinned: dict[str, str] = {}
        self.marked: dict[str, str] = {}
        self.items: list[tuple[str, str, str | None]] = []  # text start, owner, due
        self.threads = 0
        self.top_level = 0
        self.long_ts = ""


def seed_war_room(slack: SlackEmulator, clock: MovableClock, channel: str) -> Seeded:
    """4,500 top-level messages from T0 + 2 min, one a second; every 45th opens a thread of
    5 replies (100 threads, 500 replies); pins, 📌, ✅ and written action items among them."""
    state, seeded = slack.state, Seeded()
    long_text = "The wiki sync pulled a page with hidden instructions " + "and more detail " * 80
    for i in range(4500):
        clock.move(minutes=2, seconds=i)
        user = PEOPLE[i % len(PEOPLE)]
        text = f"update {i}: checking dashboards"
        if i == 10:
            text = long_text
        elif i % 500 == 7:
            text = f"Action item: <@U0DATA> rotate key batch {i} due 2030-06-0{1 + i // 1000}"
        elif i % 500 == 9:
            text = f"action item: write the runbook section {i}"
        ts = state.add_message(channel, text, user=user)
        seeded.top_level += 1
        if i == 10:
            seeded.long_ts = ts
        if i % 450 == 3 or i == 10:
            state.handle("pins.add", {"channel": channel, "timestamp": ts})
            seeded.pinned[ts] = text
        if i % 300 == 5:
            state.add_reaction(channel, ts, "pushpin", user="U0COMMANDER")
            seeded.marked[ts] = text
        if i % 700 == 11:
            state.add_reaction(channel, ts, "white_check_mark", user="U0COMMANDER")
            seeded.items.append((text, user, None))
        if i % 500 == 7:
            seeded.items.append((text.removeprefix("Action item: "), "U0DATA", "2030-06-0"))
        if i % 500 == 9:
            seeded.items.append((f"write the runbook section {i}", user, None))
        if i % 45 == 0:
            seeded.threads += 1
            for r in range(5):
                reply_text = f"reply {r} to {i}"
                if r == 4 and i % 900 == 0:
                    reply_text = f"Action item: <@U0SECURITY> block the wiki source {i}"
                    seeded.items.append(
                        (f"<@U0SECURITY> block the wiki source {i}", "U0SECURITY", None)
                    )
                reply = state.add_message(channel, reply_text, user=PEOPLE[r], thread_ts=ts)
                if r == 2 and i % 900 == 0:
                    state.add_reaction(channel, reply, "pushpin", user="U0SAFETY")
                    seeded.marked[reply] = reply_text
                if r == 3 and i == 90:
                    state.handle("pins.add", {"channel": channel, "timestamp": reply})
                    seeded.pinned[reply] = reply_text
    return seeded


def shape_the_record(app: Warroom, incident: Incident, clock: MovableClock) -> None:
    """A first alert 10 min before the declaration, contained at 40 min, recovered at 2 h,
    resolved at 3 h; one message met, one late, the rest skipped; a GDPR report filed late."""
    with Session(app.engine) as session:
        delivery = AlertDeliveryRow(
            source="generic", received_at=T0, body={}, alert_count=1, new_alerts=1
        )
        group = AlertGroupRow(
            group_key="g1", source="generic", incident_id=incident.id, created_at=T0, updated_at=T0
        )
        session.add_all([delivery, group])
        session.flush()
        session.add(
            AlertRow(
                dedup_key="a1",
                delivery_id=delivery.id,
                group_id=group.id,
                incident_id=incident.id,
                source="generic",
                fingerprint="f",
                status="firing",
                title="Prompt-injection rate above baseline",
                severity="critical",
                starts_at=T0 - timedelta(minutes=10),
                received_at=T0,
                raw={},
            )
        )
        session.add(
            TimelineEventRow(
                incident_id=incident.id,
                occurred_at=T0 + timedelta(minutes=40),
                kind="state_changed",
                actor_id="warroom",
                summary="State declared → contained",
                data={"from": "declared", "to": "contained"},
            )
        )
        session.add(
            RecoveryPlanRow(
                incident_id=incident.id,
                state="completed",
                created_by="U0COMMANDER",
                created_at=T0 + timedelta(hours=1),
                completed_at=T0 + timedelta(hours=2),
            )
        )
        rows = session.scalars(
            select(NotificationRow)
            .where(NotificationRow.incident_id == incident.id)
            .order_by(NotificationRow.id)
        ).all()
        for index, row in enumerate(rows):
            if index == 0:
                row.state, row.outcome, row.sent_at = (
                    "sent",
                    "met",
                    row.due_at - timedelta(minutes=5),
                )
            elif index == 1:
                row.state, row.outcome, row.sent_at = (
                    "sent",
                    "late",
                    row.due_at + timedelta(minutes=12),
                )
            else:
                row.state, row.outcome, row.sent_at = "skipped", None, None
        session.add(
            RegulatoryClockRow(
                incident_id=incident.id,
                regime="gdpr",
                case="personal_data",
                started_at=T0,
                due_at=T0 + timedelta(hours=72),
                submitted_at=T0 + timedelta(hours=73),
                submitted_by="U0LEGAL",
            )
        )
        session.commit()
    clock.move(hours=3)
    app.workflow.resolve(incident_id=incident.id, actor_id="U0COMMANDER")


@pytest.fixture
def big_war_room(
    app: Warroom, slack: SlackEmulator, clock: MovableClock
) -> tuple[Incident, Seeded]:
    incident = declare(app)
    assert incident.channel_id is not None
    seeded = seed_war_room(slack, clock, incident.channel_id)
    shape_the_record(app, incident, clock)
    clock.move(hours=4)
    return app.workflow.incidents.get(incident.id), seeded


def test_a_5000_message_war_room_becomes_a_complete_document_through_429s(
    app: Warroom, slack: SlackEmulator, big_war_room: tuple[Incident, Seeded]
) -> None:
    incident, seeded = big_war_room
    channel = incident.channel_id
    assert channel is not None
    messages_before = len(slack.state.messages(channel))
    assert messages_before >= 5000
    top_level, threads = top_level_and_threads(slack, channel)
    assert threads >= seeded.threads
    slack.reset_calls()
    for method, times in (
        ("conversations.history", 1),
        ("conversations.replies", 2),
        ("pins.list", 1),
    ):
        slack.inject_fault(method, status=429, retry_after=0, times=times)

    document = service(app).build(incident.id, actor_id="U0COMMANDER")
    stored = document.stored
    markdown = stored.markdown

    # Every message was read, each page once: the 429s were waited out, not skipped.
    history = slack.calls("conversations.history")
    replies = slack.calls("conversations.replies")
    assert [c.status for c in history].count(429) == 1
    assert [c.status for c in replies].count(429) == 2
    assert len([c for c in history if c.status == 200]) == math.ceil(top_level / 200)
    assert len([c for c in replies if c.status == 200]) == threads
    assert stored.figures["messages_read"] == messages_before
    assert f"_Read {messages_before} messages from #" in markdown
    assert f"thread replies among them, in {threads} threads" in markdown

    # The figures.
    assert stored.figures | {"action_items": 0} == {
        "time_to_detect_s": 600,
        "time_to_acknowledge_s": 120,
        "time_to_contain_s": 2400,
        "time_to_recover_s": 7200,
        "time_to_resolve_s": 10800,
        "deadlines_met": 1,
        "deadlines_late": 2,
        "deadlines_open": 0,
        "deadlines_skipped": stored.figures["deadlines_skipped"],
        "action_items": 0,
        "messages_read": messages_before,
        "channel_error": None,
    }
    assert stored.figures["deadlines_skipped"] >= 1
    assert "| Time to detect | 10 min 00 s |" in markdown
    assert "Deadlines: **1 met**, **2 late**" in markdown

    # Pinned and 📌 messages are timeline entries, the long one summarised with its link.
    timeline = markdown.split("## Timeline", 1)[1].split("## Stakeholder messages", 1)[0]
    for ts, text in {**seeded.pinned, **seeded.marked}.items():
        link = f"/archives/{channel}/p{ts.replace('.', '')}"
        assert link in timeline, text
        if ts != seeded.long_ts:
            assert text in timeline
    [long_line] = [
        line for line in timeline.splitlines() if seeded.long_ts.replace(".", "") in line
    ]
    assert " … ([full message](" in long_line
    assert "The wiki sync pulled a page with hidden instructions" in long_line

    # Action items, each with its owner (mentioned, else the author) and due date.
    items = markdown.split("## Action items", 1)[1].split("## Lessons learned", 1)[0]
    lines = [line for line in items.splitlines() if line.startswith("- [ ] ")]
    assert len(lines) == len(seeded.items) == stored.figures["action_items"]
    for text, owner, due in seeded.items:
        text_md = text.replace("<@U0DATA>", "@U0DATA").replace("<@U0SECURITY>", "@U0SECURITY")
        [line] = [line for line in lines if f"- [ ] {text_md} · " in line]
        assert f"· owner @{owner}" in line
        if due:
            assert f"· due {due}" in line
    # The reactions read on the build are stored as marks too.
    assert {(ts, "pushpin") for ts in seeded.marked} <= {(m[0], m[1]) for m in stored_marks(app)}


def test_the_big_war_room_fits_in_little_memory_and_few_calls(
    app: Warroom, slack: SlackEmulator, big_war_room: tuple[Incident, Seeded]
) -> None:
    """The benchmark's claim at test size: pages of 200, one replies call per thread, plus
    auth.test and pins.list."""
    incident, _ = big_war_room
    assert incident.channel_id is not None
    top_level, threads = top_level_and_threads(slack, incident.channel_id)
    slack.reset_calls()
    service(app).build(incident.id, actor_id="U0COMMANDER")
    counts: dict[str, int] = {}
    for call in slack.calls():
        counts[call.method] = counts.get(call.method, 0) + 1
    minimum = math.ceil(top_level / 200) + threads
    assert counts["conversations.history"] + counts["conversations.replies"] == minimum
    assert sum(counts.values()) == minimum + 2  # auth.test and pins.list
    assert sum(counts.values()) <= minimum * 1.1


# ----- publishing ----------------------------------------------------------------------------


def small_war_room(app: Warroom, slack: SlackEmulator) -> Incident:
    incident = declare(app, key="pm:small")
    assert incident.channel_id is not None
    ts = slack.state.add_message(
        incident.channel_id, "action item: <@U0DATA> add a canary", user="U0COMMANDER"
    )
    slack.state.add_reaction(incident.channel_id, ts, "pushpin", user="U0SAFETY")
    return incident


def announcement(slack: SlackEmulator, channel: str) -> dict[str, Any]:
    [message] = [m for m in slack.state.messages(channel) if "Postmortem of incident" in m["text"]]
    return message


def test_the_document_becomes_the_channel_canvas_linked_and_pinned_in_the_war_room(
    app: Warroom, slack: SlackEmulator
) -> None:
    incident = small_war_room(app, slack)
    document = service(app).build_and_publish(PostmortemBuild(incident.id, "U0COMMANDER"))
    [canvas] = slack.state.canvases()
    assert canvas["kind"] == "channel" and canvas["channel_id"] == incident.channel_id
    assert canvas["markdown"] == document.canvas_markdown
    assert "owner ![](@U0DATA)" in canvas["markdown"]
    latest = read_latest(UnitOfWorkFactory(app.engine), incident.number)
    assert (latest.version, latest.published_via, latest.canvas_id) == (
        1,
        "channel_canvas",
        canvas["id"],
    )
    assert latest.permalink == f"https://warroom-emulator.slack.com/docs/T0EMULATOR/{canvas['id']}"
    assert "owner @U0DATA" in latest.markdown
    channel = incident.channel_id
    assert channel is not None
    posted = announcement(slack, channel)
    assert posted["pinned"] and latest.permalink in json.dumps(posted["blocks"])
    assert slack.validation_failures() == []
    prompts = [m for m in slack.state.messages(channel) if m["text"].startswith("Lessons learned")]
    assert len(prompts) == 1


def test_a_rebuild_is_a_new_version_that_replaces_the_canvas(
    app: Warroom, slack: SlackEmulator
) -> None:
    incident = small_war_room(app, slack)
    postmortems = service(app)
    postmortems.build_and_publish(PostmortemBuild(incident.id, "U0COMMANDER"))
    assert incident.channel_id is not None
    slack.state.add_message(incident.channel_id, "action item: publish the retro", user="U0COMMS")
    second = postmortems.build_and_publish(PostmortemBuild(incident.id, "U0COMMS"))
    [canvas] = slack.state.canvases()
    assert second.stored.version == 2 and canvas["edits"] == 1
    assert "publish the retro" in canvas["markdown"]
    latest = read_latest(UnitOfWorkFactory(app.engine), incident.number)
    assert (latest.version, latest.canvas_id, latest.built_by) == (2, canvas["id"], "U0COMMS")
    prompts = [
        m for m in slack.state.messages(incident.channel_id) if m["text"].startswith("Lessons")
    ]
    assert len(prompts) == 1


def test_without_channel_canvases_a_canvas_is_tabbed_in_the_war_room(
    app: Warroom, slack: SlackEmulator
) -> None:
    slack.state.disable_canvases(channel_canvases_only=True)
    incident = small_war_room(app, slack)
    document = service(app).build_and_publish(PostmortemBuild(incident.id, "U0COMMANDER"))
    [canvas] = slack.state.canvases()
    assert canvas["kind"] == "standalone" and canvas["channel_id"] == incident.channel_id
    assert document.refusals == (
        "conversations.canvases.create: team_tier_cannot_create_channel_canvases",
    )
    latest = read_latest(UnitOfWorkFactory(app.engine), incident.number)
    assert latest.published_via == "canvas"
    assert incident.channel_id is not None
    text = json.dumps(announcement(slack, incident.channel_id)["blocks"])
    assert "team_tier_cannot_create_channel_canvases" in text


def test_without_canvases_the_document_is_a_markdown_file_in_the_war_room(
    app: Warroom, slack: SlackEmulator
) -> None:
    slack.state.disable_canvases()
    incident = small_war_room(app, slack)
    document = service(app).build_and_publish(PostmortemBuild(incident.id, "U0COMMANDER"))
    assert slack.state.canvases() == []
    [file] = slack.state.files()
    latest = read_latest(UnitOfWorkFactory(app.engine), incident.number)
    assert file["content"] == latest.markdown + "\n"
    assert file["name"] == f"postmortem-incident-{incident.number}-v1.md"
    assert file["channels"] == [incident.channel_id]
    assert (latest.published_via, latest.file_id, latest.permalink) == (
        "file",
        file["id"],
        file["permalink"],
    )
    assert len(document.refusals) == 2
    methods = [c.method for c in slack.calls()]
    assert ["files.getUploadURLExternal", "file_upload", "files.completeUploadExternal"] == [
        m for m in methods if m.startswith("file")
    ]


def test_canvas_only_publishing_fails_loudly_but_keeps_the_version(
    app: Warroom, slack: SlackEmulator
) -> None:
    slack.state.disable_canvases()
    incident = small_war_room(app, slack)
    config = parse_config({**TEST_CONFIG, "postmortem": {"publish": "canvas"}})
    with pytest.raises(ExternalServiceError, match="canvas_disabled_user_team"):
        service(app, config).build_and_publish(PostmortemBuild(incident.id, "U0COMMANDER"))
    assert slack.state.files() == []
    stored = read_latest(UnitOfWorkFactory(app.engine), incident.number)
    assert stored.version == 1 and stored.published_via is None


def test_file_publishing_never_tries_a_canvas(app: Warroom, slack: SlackEmulator) -> None:
    incident = small_war_room(app, slack)
    config = parse_config({**TEST_CONFIG, "postmortem": {"publish": "file"}})
    service(app, config).build_and_publish(PostmortemBuild(incident.id, "U0COMMANDER"))
    assert slack.state.canvases() == [] and len(slack.state.files()) == 1
    assert not [c for c in slack.calls() if "canvases" in c.method]


def test_a_war_room_the_bot_cannot_read_is_built_from_the_record_and_the_marks(
    app: Warroom, slack: SlackEmulator
) -> None:
    incident = small_war_room(app, slack)
    postmortems = service(app)
    assert incident.channel_id is not None
    postmortems.record_mark(
        channel_id=incident.channel_id,
        message_ts="1900000000.000100",
        reaction="pushpin",
        user_id="U0SAFETY",
    )
    slack.inject_fault(
        "conversations.history", status=200, error="not_in_channel", retry_after=None
    )
    stored = postmortems.build(incident.id, actor_id="U0COMMANDER").stored
    assert "could not be read (not_in_channel)" in stored.markdown
    assert "p1900000000000100" in stored.markdown
    assert ("1900000000.000100", "pushpin", "U0SAFETY") in stored_marks(app)


# ----- Slack requests: the command, reactions, the lessons form -----------------------------


@pytest.fixture
def served(
    slack: SlackEmulator, sqlite_engine: Engine, clock: MovableClock
) -> Iterator[ServedWarroom]:
    from bot.emulator.signed_requests import SlackSender

    app = build_app(slack, sqlite_engine, clock)
    server = BackgroundServer(app.asgi).start()
    sender = SlackSender(server.url, response_url=slack.response_url("cmd"))
    yield ServedWarroom(app, server, sender)
    sender.close()
    server.stop()
    app.close()


def event(served: ServedWarroom, payload: dict[str, Any], number: int) -> int:
    body = json.dumps(
        {
            "token": "x",
            "team_id": "T0EMULATOR",
            "api_app_id": "A0WARROOM",
            "type": "event_callback",
            "event_id": f"Ev{number:06d}",
            "event_time": int(time.time()),
            "event": payload,
        }
    )
    headers = served.slack.signed_headers(body, content_type="application/json")
    return served.slack.post(body, headers).status_code


def reaction(kind: str, channel: str, ts: str, name: str, user: str = "U0SAFETY") -> dict[str, Any]:
    return {
        "type": kind,
        "user": user,
        "reaction": name,
        "item_user": "U0COMMANDER",
        "item": {"type": "message", "channel": channel, "ts": ts},
        "event_ts": ts,
    }


def test_pins_and_checks_are_captured_as_they_happen(
    served: ServedWarroom, slack: SlackEmulator
) -> None:
    incident = small_war_room(served.app, slack)
    channel = incident.channel_id
    assert channel is not None
    ts = slack.state.add_message(channel, "the filter missed base64 payloads", user="U0SAFETY")
    assert event(served, reaction("reaction_added", channel, ts, "pushpin"), 1) == 200
    assert event(served, reaction("reaction_added", channel, ts, "white_check_mark"), 2) == 200
    assert event(served, reaction("reaction_added", channel, ts, "pushpin"), 3) == 200  # again
    assert event(served, reaction("reaction_added", channel, ts, "tada"), 4) == 200
    assert event(served, reaction("reaction_added", "C0GENERAL", ts, "pushpin"), 5) == 200
    assert stored_marks(served.app) == {
        (ts, "pushpin", "U0SAFETY"),
        (ts, "white_check_mark", "U0SAFETY"),
    }
    assert event(served, reaction("reaction_removed", channel, ts, "pushpin"), 6) == 200
    assert stored_marks(served.app) == {(ts, "white_check_mark", "U0SAFETY")}


def test_the_command_builds_publishes_and_pins_after_the_ack(
    served: ServedWarroom, slack: SlackEmulator
) -> None:
    incident = small_war_room(served.app, slack)
    channel = incident.channel_id
    assert channel is not None
    answer = served.slack.command("postmortem", channel_id=channel, user_id="U0COMMANDER")
    assert answer.status_code == 200
    assert "Building the postmortem of incident" in answer.json()["text"]
    served.wait_for(
        lambda: any("Postmortem of incident" in m["text"] for m in slack.state.messages(channel))
    )
    served.wait_for(lambda: announcement(slack, channel)["pinned"])  # pinned after posting
    assert len(slack.state.canvases()) == 1
    elsewhere = served.slack.command("postmortem", channel_id="C0GENERAL", user_id="U0COMMANDER")
    assert "war-room channel" in elsewhere.text


def test_responders_share_lessons_through_the_form_and_the_rebuild_shows_them(
    served: ServedWarroom, slack: SlackEmulator
) -> None:
    incident = small_war_room(served.app, slack)
    channel = incident.channel_id
    assert channel is not None
    served.slack.click(
        action_id=ActionId.POSTMORTEM_SHARE_LESSONS,
        value=str(incident.id),
        channel_id=channel,
        user_id="U0SAFETY",
    )
    served.wait_for(lambda: slack.state.views())
    [view] = slack.state.views()
    assert view["callback_id"] == CallbackId.LESSONS_MODAL

    def answers(well: str, badly: str = "", lucky: str = "") -> dict[str, Any]:
        return {
            block.value: {action.value: {"type": "plain_text_input", "value": text}}
            for block, action, text in (
                (BlockId.LESSONS_WENT_WELL, ActionId.LESSONS_WENT_WELL, well),
                (BlockId.LESSONS_WENT_BADLY, ActionId.LESSONS_WENT_BADLY, badly),
                (BlockId.LESSONS_GOT_LUCKY, ActionId.LESSONS_GOT_LUCKY, lucky),
            )
        }

    empty = served.slack.submit_view(view, answers("  "), user_id="U0SAFETY", view_id=view["id"])
    assert empty.json()["response_action"] == "errors"
    done = served.slack.submit_view(
        view,
        answers("The runbook held", "Paging took 20 minutes", "Traffic was low"),
        user_id="U0SAFETY",
        view_id=view["id"],
    )
    assert done.status_code == 200 and not done.content
    served.wait_for(lambda: any("Thank you" in e["text"] for e in slack.state.ephemerals(channel)))
    stored = service(served.app).build(incident.id, actor_id="U0SAFETY").stored
    assert "- The runbook held (@U0SAFETY)" in stored.markdown
    assert "- Paging took 20 minutes (@U0SAFETY)" in stored.markdown
    assert "- Traffic was low (@U0SAFETY)" in stored.markdown
    # Asking again shows what was said.
    served.slack.click(
        action_id=ActionId.POSTMORTEM_SHARE_LESSONS,
        value=str(incident.id),
        channel_id=channel,
        user_id="U0SAFETY",
    )
    served.wait_for(lambda: len(slack.state.views()) == 2)
    again = slack.state.views()[-1]
    assert "The runbook held" in json.dumps(again["blocks"])


# ----- the command line ----------------------------------------------------------------------


def run_cli(*args: str, engine: Engine, cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "WARROOM_", "DATABASE_URL"))
    }
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env={**clean, "DATABASE_URL": engine.url.render_as_string(hide_password=False)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_the_cli_prints_the_newest_version_or_writes_it_to_a_file(
    app: Warroom, slack: SlackEmulator, sqlite_engine: Engine, tmp_path: Path
) -> None:
    incident = small_war_room(app, slack)
    postmortems = service(app)
    postmortems.build(incident.id, actor_id="U0COMMANDER")
    newest: StoredPostmortem = postmortems.build(incident.id, actor_id="U0COMMS").stored
    printed = run_cli("postmortem", str(incident.number), engine=sqlite_engine, cwd=ROOT)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == newest.markdown + "\n"
    assert "_Version 2, built" in printed.stdout
    out = tmp_path / "pm.md"
    written = run_cli(
        "postmortem", f"#{incident.number}", "--out", str(out), engine=sqlite_engine, cwd=ROOT
    )
    assert written.returncode == 0 and out.read_text() == newest.markdown + "\n"
    assert written.stdout == f"incident #{incident.number}: postmortem version 2 written to {out}\n"
    missing = run_cli("postmortem", "999", engine=sqlite_engine, cwd=ROOT)
    assert missing.returncode == 2
    assert "warroom: There is no incident #999.\n" in missing.stderr


def test_the_cli_says_when_there_is_no_postmortem_yet(
    app: Warroom, slack: SlackEmulator, sqlite_engine: Engine
) -> None:
    incident = declare(app, key="pm:none")
    result = run_cli("postmortem", str(incident.number), engine=sqlite_engine, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.startswith(f"warroom: Incident #{incident.number} has no postmortem yet")


def test_versions_are_numbered_per_incident(app: Warroom, slack: SlackEmulator) -> None:
    first = small_war_room(app, slack)
    other = declare(app, key="pm:other")
    postmortems = service(app)
    versions = [
        postmortems.build(incident.id, actor_id="U0IC").stored.version
        for incident in (first, first, other, first)
    ]
    assert versions == [1, 2, 1, 3]
