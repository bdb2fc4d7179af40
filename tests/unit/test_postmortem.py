"""The postmortem's domain: action items, reading a channel, key figures, observations,
the merged timeline and the text rules (summaries with links, Slack markup to Markdown)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from bot.domain.postmortem import (
    ACTION_REACTION,
    PIN_REACTION,
    ActionItem,
    ChannelMessage,
    ChannelReader,
    ContainmentStep,
    DeadlineTally,
    IncidentRecord,
    LegalClock,
    Lesson,
    Mark,
    Milestones,
    RecordEvent,
    RecoveryStep,
    StakeholderMessage,
    TimelineEntry,
    action_items,
    channel_entries,
    format_duration,
    is_person,
    key_figures,
    merge_timeline,
    message_from_api,
    message_link,
    milestones,
    observations,
    parse_action_items,
    parse_due_date,
    record_entries,
    slack_to_markdown,
    summarise,
    tally_deadlines,
    unread_marks,
)
from bot.domain.vocabulary import Severity

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def ts(minutes: float) -> str:
    return f"{(T0 + timedelta(minutes=minutes)).timestamp():.6f}"


def message(text: str, *, user: str = "U0AUTHOR", at: float = 1, **fields: Any) -> ChannelMessage:
    return ChannelMessage(ts=ts(at), user=user, text=text, **fields)


# ----- action items -------------------------------------------------------------------------


def test_an_action_item_is_owned_by_the_person_it_mentions_and_keeps_its_due_date() -> None:
    [item] = parse_action_items(
        message("Action item: <@U0DATA> rotates the API keys, due 2026-12-01")
    )
    assert item.text == "<@U0DATA> rotates the API keys, due 2026-12-01"
    assert (item.owner_id, item.author_id, item.due) == ("U0DATA", "U0AUTHOR", date(2026, 12, 1))
    assert item.source == "text" and not item.owner_is_author


def test_an_action_item_without_a_mention_belongs_to_its_author() -> None:
    [item] = parse_action_items(message("we agreed. ACTION ITEM: add a canary for prompts"))
    assert item.owner_id == "U0AUTHOR" and item.owner_is_author
    assert item.text == "add a canary for prompts" and item.due is None


def test_one_message_may_hold_several_action_items() -> None:
    items = parse_action_items(
        message("action item: <@U1> fix the filter by Dec 3\naction-item: <@U2> write the runbook")
    )
    assert [(i.owner_id, i.text) for i in items] == [
        ("U1", "<@U1> fix the filter by Dec 3"),
        ("U2", "<@U2> write the runbook"),
    ]
    assert items[0].due == date(2026, 12, 3)


def test_a_message_marked_with_a_check_is_an_action_item_whole() -> None:
    plain = message("Rate-limit the export endpoint <@U0SEC>")
    assert parse_action_items(plain) == []
    [item] = parse_action_items(plain, checked=True)
    assert (item.text, item.owner_id, item.source) == (plain.text, "U0SEC", "reaction")


def test_action_items_reads_the_check_mark_reactions() -> None:
    checked = message("Ship the fix", reactions={ACTION_REACTION: ("U0IC",)})
    written = message("action item: retro on Friday", at=2)
    plain = message("just chatting", at=3)
    assert [i.text for i in action_items([checked, written, plain])] == [
        "Ship the fix",
        "retro on Friday",
    ]


@pytest.mark.parametrize(
    ("text", "due"),
    [
        ("due 2027-01-15", date(2027, 1, 15)),
        ("due: 2027-01-15", date(2027, 1, 15)),
        ("by 3 January 2027", date(2027, 1, 3)),
        ("before Jan 3rd", date(2027, 1, 3)),  # past this year: next year's
        ("due by December 24", date(2026, 12, 24)),
        ("deadline tomorrow", date(2026, 11, 27)),
        ("due today", date(2026, 11, 26)),
        ("due <!date^1796342400^{date_short}|Dec 4, 2026>", date(2026, 12, 4)),
        ("due 2026-02-31", None),  # not a date: no due date rather than a wrong one
        ("rotate the keys", None),
    ],
)
def test_due_dates_are_read_in_the_usual_ways(text: str, due: date | None) -> None:
    assert parse_due_date(text, written=date(2026, 11, 26)) == due


# ----- reading the channel ------------------------------------------------------------------


def test_a_message_from_the_api_carries_reactions_pins_and_threads() -> None:
    parsed = message_from_api(
        {
            "ts": "1.000002",
            "user": "U1",
            "text": "hi",
            "thread_ts": "1.000001",
            "pinned_to": ["C1"],
            "reactions": [{"name": "pushpin", "users": ["U2", "U3"], "count": 2}],
        }
    )
    assert parsed.pinned and parsed.is_reply and not parsed.is_bot
    assert parsed.marked(PIN_REACTION) == ("U2", "U3")
    bot = message_from_api({"ts": "2.0", "bot_id": "B1", "text": "", "files": [{"name": "a.md"}]})
    assert bot.is_bot and bot.text == "shared a.md"


def test_the_reader_keeps_only_notable_messages_and_counts_the_rest_once() -> None:
    reader = ChannelReader("C1", declared_at=T0, pinned=[ts(3)], marked=[ts(4)], own_user="U0BOT")
    parent = message("thread start", at=1, reply_count=2, thread_ts=ts(1))
    reply = message("a reply", at=2, thread_ts=ts(1), user="U0OTHER")
    pinned_later = message("pinned via pins.list", at=3)
    marked_by_event = message("marked when it happened", at=4)
    checked = message("do it", at=5, reactions={ACTION_REACTION: ("U0IC",)})
    written = message("action item: write it down", at=6)
    own = message("the card", at=7, user="U0BOT", pinned=True, is_bot=True)
    for m in (parent, reply, reply, pinned_later, marked_by_event, checked, written, own):
        reader.add(m)
    digest = reader.digest()
    assert reader.threads() == [ts(1)]
    assert (digest.total, digest.replies, digest.threads) == (7, 1, 1)
    assert [m.text for m in digest.notable] == [
        "pinned via pins.list",
        "marked when it happened",
        "do it",
        "action item: write it down",
    ]
    assert digest.notable[0].pinned
    assert digest.participants == {"U0AUTHOR", "U0OTHER"}
    assert digest.marks == {Mark(ts(5), ACTION_REACTION, "U0IC")}


def test_the_first_response_is_the_first_human_message_after_the_declaration() -> None:
    reader = ChannelReader("C1", declared_at=T0)
    reader.add(message("before", at=-5))
    reader.add(message("bot notice", at=1, is_bot=True, user="B1"))
    reader.add(message("on it", at=3))
    reader.add(message("me too", at=2))
    assert reader.digest().first_response_at == T0 + timedelta(minutes=2)


# ----- figures --------------------------------------------------------------------------------


def stakeholder(
    outcome: str | None, *, sent: float | None = 10, state: str = "sent", due: float = 15
) -> StakeholderMessage:
    return StakeholderMessage(
        audience="executive_team",
        audience_label="Executive team",
        tier="immediate",
        state=state,
        due_at=T0 + timedelta(minutes=due),
        sent_at=T0 + timedelta(minutes=sent) if sent is not None else None,
        outcome=outcome,
    )


def event(kind: str, minutes: float, actor: str = "warroom", **data: Any) -> RecordEvent:
    return RecordEvent(
        at=T0 + timedelta(minutes=minutes), kind=kind, actor_id=actor, summary=kind, data=data
    )


def test_milestones_come_from_the_record_and_the_first_response() -> None:
    record = IncidentRecord(
        events=(
            event("declared", 0, "U0REPORTER"),
            event("state_changed", 40, to="contained"),
            event("role_assigned", 5, "U0IC"),
            event("state_changed", 180, to="resolved"),
        ),
        recovered_at=T0 + timedelta(hours=2),
        first_alert_at=T0 - timedelta(minutes=10),
    )
    points = milestones(
        declared_at=T0, record=record, first_response_at=T0 + timedelta(minutes=7), resolved_at=None
    )
    assert points == Milestones(
        declared_at=T0,
        first_alert_at=T0 - timedelta(minutes=10),
        acknowledged_at=T0 + timedelta(minutes=5),
        contained_at=T0 + timedelta(minutes=40),
        recovered_at=T0 + timedelta(hours=2),
        resolved_at=T0 + timedelta(hours=3),
    )
    figures = key_figures(points, DeadlineTally(met=1))
    assert figures.to_json() == {
        "time_to_detect_s": 600,
        "time_to_acknowledge_s": 300,
        "time_to_contain_s": 2400,
        "time_to_recover_s": 7200,
        "time_to_resolve_s": 10800,
        "deadlines_met": 1,
        "deadlines_late": 0,
        "deadlines_open": 0,
        "deadlines_skipped": 0,
    }


def test_unknown_milestones_give_no_figure() -> None:
    figures = key_figures(Milestones(declared_at=T0), DeadlineTally())
    assert figures.time_to_detect is None and figures.time_to_contain is None
    assert format_duration(figures.time_to_resolve) == "—"


def test_deadlines_count_met_late_overdue_open_and_skipped() -> None:
    now = T0 + timedelta(hours=1)
    messages = [
        stakeholder("met"),
        stakeholder("late", sent=20),
        stakeholder(None, sent=None, state="pending"),  # past due, unsent: late
        stakeholder(None, sent=None, state="pending", due=120),  # still open
        stakeholder(None, sent=None, state="skipped"),
    ]
    clocks = [
        LegalClock("gdpr", "personal_data", T0, T0 + timedelta(minutes=30), None, None),
        LegalClock("gdpr", "x", T0, T0 + timedelta(hours=2), T0 + timedelta(minutes=1), "U1"),
    ]
    assert tally_deadlines(messages, clocks, now=now) == DeadlineTally(
        met=2, late=3, open=1, skipped=1
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(12, "12 s"), (70, "1 min 10 s"), (3900, "1 h 05 min"), (90_000, "1 d 1 h")],
)
def test_durations_read_naturally(seconds: int, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text


# ----- observations ---------------------------------------------------------------------------


def test_the_record_says_what_went_badly() -> None:
    record = IncidentRecord(
        messages=(stakeholder("late", sent=40), stakeholder("met")),
        clocks=(LegalClock("gdpr", "personal_data", T0, T0, None, None),),
        containment=(
            ContainmentStep(
                proposal_id=1,
                proposed_at=T0,
                proposed_by="warroom",
                kind="model_shutdown",
                label="Model shutdown",
                state="failed",
                target="support-v2",
                updated_at=T0,
            ),
        ),
    )
    figures = key_figures(
        Milestones(
            declared_at=T0,
            first_alert_at=T0 - timedelta(hours=2),
            contained_at=T0 + timedelta(hours=3),
        ),
        DeadlineTally(),
    )
    items = [ActionItem("x", "U1", "U1", ts(1), None)]
    notes = observations(
        severity=Severity.CRITICAL,
        figures=figures,
        record=record,
        items=items,
        resolved=False,
        now=T0 + timedelta(hours=4),
    )
    text = "\n".join(notes)
    assert "1 of 2 stakeholder messages missed their deadline" in text
    assert "Executive team (immediate) message, was 25 min 00 s late." in text
    assert "The GDPR report is overdue by 4 h 00 min and not yet filed." in text
    assert "Containment took 3 h 00 min, over the 1 h 00 min target for a critical" in text
    assert "1 containment action(s) failed: Model shutdown." in text
    assert "The first alert fired 2 h 00 min before the incident was declared." in text
    assert "No root-cause analysis was confirmed" in text
    assert "1 of 1 action items have no due date." in text
    assert "No responder has shared lessons yet" in text


def test_a_tidy_incident_leaves_nothing_to_observe() -> None:
    record = IncidentRecord(
        messages=(stakeholder("met"),),
        rca={"version": 1},
        lessons=(Lesson("U1", "fast", "", "", T0),),
    )
    figures = key_figures(
        Milestones(declared_at=T0, contained_at=T0 + timedelta(minutes=20)), DeadlineTally(met=1)
    )
    assert (
        observations(
            severity=Severity.HIGH,
            figures=figures,
            record=record,
            items=[],
            resolved=True,
            now=T0 + timedelta(hours=1),
        )
        == []
    )


def test_resolving_without_containment_is_noted() -> None:
    notes = observations(
        severity=Severity.LOW,
        figures=key_figures(Milestones(declared_at=T0), DeadlineTally()),
        record=IncidentRecord(rca={"version": 1}, lessons=(Lesson("U1", "a", "", "", T0),)),
        items=[],
        resolved=True,
        now=T0,
    )
    assert notes == ["The incident was resolved without ever being marked contained."]


# ----- the timeline ---------------------------------------------------------------------------


def test_the_timeline_merges_record_and_channel_in_time_order() -> None:
    record = IncidentRecord(
        events=(event("declared", 0, "U0R"), event("state_changed", 30, to="contained")),
        first_alert_at=T0 - timedelta(minutes=5),
        first_alert_title="Prompt injection rate",
        alert_count=12,
        containment=(
            ContainmentStep(
                proposal_id=1,
                proposed_at=T0,
                proposed_by="warroom",
                kind="safe_mode",
                label="Safe mode",
                state="succeeded",
                target="support-v2",
                updated_at=T0 + timedelta(minutes=20),
                decisions=(("U0IC", "approve", T0 + timedelta(minutes=12)),),
            ),
        ),
        recovery=(
            RecoveryStep(
                1, "support-v2", "validate", "Replay prompts", "passed", T0 + timedelta(hours=1)
            ),
            RecoveryStep(2, "support-v2", "stage", "10 % traffic", "pending", T0),
        ),
        rca={"version": 2, "confirmed_by": "U0SAFETY", "confirmed_at": T0 + timedelta(hours=2)},
    )
    channel = [
        message("pinned note", at=30, pinned=True),
        message("marked note", at=10, reactions={PIN_REACTION: ("U1",)}, thread_ts=ts(1)),
        message("just an action item: x", at=11),
    ]
    timeline = merge_timeline(record_entries(record), channel_entries(channel))
    assert [(e.kind, e.source) for e in timeline] == [
        ("first_alert", "record"),
        ("declared", "record"),
        ("marked", "channel"),
        ("containment_approve", "record"),
        ("state_changed", "record"),
        ("pinned", "channel"),
        ("recovery_step", "record"),
        ("rca_confirmed", "record"),
    ]
    assert timeline[0].text == "First alert: Prompt injection rate (12 alerts in all)"
    assert timeline[2].thread_ts == ts(1)
    assert timeline[3].text == "Approved Safe mode (support-v2)"


def test_capabilities_that_log_their_own_events_are_not_repeated() -> None:
    record = IncidentRecord(
        events=(event("recovery_step", 60), event("rca_confirmed", 90)),
        recovery=(RecoveryStep(1, "s", "validate", "t", "passed", T0),),
        rca={"version": 1, "confirmed_at": T0},
    )
    assert [e.kind for e in record_entries(record)] == ["recovery_step", "rca_confirmed"]


def test_marks_of_unreadable_messages_still_count() -> None:
    marks = [
        Mark(ts(2), PIN_REACTION, "U1"),
        Mark(ts(2), PIN_REACTION, "U2"),
        Mark(ts(3), ACTION_REACTION, "U3"),
    ]
    entries, items = unread_marks(marks)
    assert [(e.ts, e.actor_id) for e in entries] == [(ts(2), "U1")]
    assert [(i.ts, i.owner_id, i.source) for i in items] == [(ts(3), "U3", "reaction")]


def test_entries_of_the_same_moment_keep_record_first() -> None:
    same = T0
    merged = merge_timeline(
        [TimelineEntry(same, "b", "w", "record 1"), TimelineEntry(same, "c", "w", "record 2")],
        [TimelineEntry(same, "pinned", "U1", "channel", source="channel")],
    )
    assert [e.text for e in merged] == ["record 1", "record 2", "channel"]


# ----- text -----------------------------------------------------------------------------------


def test_slack_markup_becomes_markdown() -> None:
    text = (
        "<@U0IC> see <https://grafana.example/d/1|the dashboard> and <https://x.example> in "
        "<#C0SEC|security>, <!here> &lt;b&gt; &amp; <!subteam^S1|@oncall> <@U2|bob>"
    )
    assert slack_to_markdown(text, mention=lambda u: f"@{u}") == (
        "@U0IC see [the dashboard](https://grafana.example/d/1) and https://x.example in "
        "#security, @here <b> & @oncall @U2"
    )


def test_short_text_is_kept_whole_and_long_text_is_summarised_visibly() -> None:
    assert summarise("short") == ("short", False)
    long = "word " * 100
    short, cut = summarise(long, 50)
    assert cut and short.endswith(" …") and len(short) <= 52
    assert long.startswith(short.removesuffix(" …"))


def test_a_summary_never_cuts_through_slack_markup() -> None:
    text = "x" * 40 + " <https://example.com/a/very/long/path|label> tail " + "y" * 100
    short, cut = summarise(text, 60)
    assert cut and "<" not in short
    leading = "<https://example.com/" + "a" * 80 + "|label> then more words " * 10
    short, cut = summarise(leading, 60)
    assert short.startswith("<https://") and ">" in short


def test_links_point_at_the_message_or_its_thread() -> None:
    base = "https://team.slack.com/"
    assert message_link(base, "C1", "1.000200", None) == (
        "https://team.slack.com/archives/C1/p1000200"
    )
    assert message_link(base, "C1", "1.000300", "1.000200") == (
        "https://team.slack.com/archives/C1/p1000300?thread_ts=1.000200&cid=C1"
    )


@pytest.mark.parametrize(
    ("actor", "person"),
    [("U0IC", True), ("W123", True), ("warroom", False), ("rota", False), ("U", False)],
)
def test_people_are_told_apart_from_warroom_and_the_rota(actor: str, person: bool) -> None:
    assert is_person(actor) is person
