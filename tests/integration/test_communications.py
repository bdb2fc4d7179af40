"""Stakeholder messages on their deadlines, with a frozen clock, a real database and the
emulated Slack: planned rows first, each tier at its deadline, met or late, reminders before,
auto-send or escalation, restart recovery, and never a second copy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import Engine

from bot.app import Warroom
from bot.deadline_timers import notification_job_id, reminder_job_id
from bot.domain.notifications import DeadlineOutcome, NotificationState
from bot.domain.reminders import ReminderKind
from bot.domain.vocabulary import Audience, NotificationTier, Severity
from bot.emulator.server import SlackEmulator
from storage.unit_of_work import UnitOfWorkFactory
from tests.integration.comms_support import (
    AUDIENCE_CHANNELS,
    add_audience_channels,
    audience_posts,
    build,
    comms_config,
    declare_and_open,
)

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
A = Audience


@pytest.fixture
def frozen() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time(T0) as clock:
        yield clock


@pytest.fixture
def app(
    emulator: SlackEmulator, engine: Engine, frozen: FrozenDateTimeFactory
) -> Iterator[Warroom]:
    add_audience_channels(emulator)
    built = build(emulator, engine, comms_config())
    yield built
    built.close()


@pytest.fixture
def manual(
    emulator: SlackEmulator, engine: Engine, frozen: FrozenDateTimeFactory
) -> Iterator[Warroom]:
    """auto_send off: due messages go to the commander."""
    add_audience_channels(emulator)
    built = build(
        emulator, engine, comms_config(notifications={"auto_send": False, "channel_pace": 0})
    )
    yield built
    built.close()


def rows(app: Warroom, incident_id: int) -> dict[Audience, object]:
    with UnitOfWorkFactory(app.engine)(read_only=True) as uow:
        return {n.audience: n for n in uow.notifications.list_for(incident_id)}


def war_room_texts(emulator: SlackEmulator, channel: str) -> list[str]:
    return [m["text"] for m in emulator.state.messages(channel)]


def test_declaration_plans_every_message_as_a_row_before_any_is_sent(
    app: Warroom, emulator: SlackEmulator
) -> None:
    incident = declare_and_open(app, personal_data=True, public_facing=True)
    planned = rows(app, incident.id)
    assert {a: (n.tier, n.due_at - T0) for a, n in planned.items()} == {  # type: ignore[attr-defined]
        A.EXECUTIVE_TEAM: (NotificationTier.IMMEDIATE, timedelta(minutes=15)),
        A.SECURITY_TEAM: (NotificationTier.IMMEDIATE, timedelta(minutes=15)),
        A.LEGAL_TEAM: (NotificationTier.IMMEDIATE, timedelta(minutes=15)),
        A.COMMUNICATIONS_TEAM: (NotificationTier.IMMEDIATE, timedelta(minutes=15)),
        A.DATA_PROTECTION_OFFICER: (NotificationTier.IMMEDIATE, timedelta(minutes=15)),
        A.PR_TEAM: (NotificationTier.IMMEDIATE, timedelta(minutes=15)),
        A.AFFECTED_USERS: (NotificationTier.URGENT, timedelta(hours=1)),
        A.CUSTOMER_SUPPORT_LEADS: (NotificationTier.URGENT, timedelta(hours=1)),
        A.REGULATORY_BODY: (NotificationTier.URGENT, timedelta(hours=1)),
        A.TECHNICAL_TEAM: (NotificationTier.STANDARD, timedelta(hours=24)),
    }
    # The critical alarm's executive alert is the executive team's immediate message.
    executive = planned[A.EXECUTIVE_TEAM]
    assert executive.state is NotificationState.SENT  # type: ignore[attr-defined]
    assert executive.outcome is DeadlineOutcome.MET  # type: ignore[attr-defined]
    assert all(
        n.state is NotificationState.PENDING  # type: ignore[attr-defined]
        for a, n in planned.items()
        if a is not A.EXECUTIVE_TEAM
    )
    assert all(not audience_posts(emulator, a) for a in Audience if a is not A.EXECUTIVE_TEAM)
    # A draft of every open message waits in the war room for the communications lead.
    drafts = [
        t for t in war_room_texts(emulator, incident.channel_id or "") if t.startswith("Draft")
    ]
    assert len(drafts) == 9
    assert emulator.validation_failures() == []


def test_each_tier_is_sent_once_at_its_deadline_and_recorded_met(
    app: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    incident = declare_and_open(app, severity=Severity.HIGH, personal_data=True)
    frozen.move_to(T0 + timedelta(minutes=14, seconds=59))
    app.communications.sweep()
    assert not audience_posts(emulator, A.DATA_PROTECTION_OFFICER)

    frozen.move_to(T0 + timedelta(minutes=15))
    app.communications.sweep()
    app.communications.sweep()
    assert len(audience_posts(emulator, A.DATA_PROTECTION_OFFICER)) == 1
    assert not audience_posts(emulator, A.AFFECTED_USERS)

    frozen.move_to(T0 + timedelta(hours=1, seconds=20))
    app.communications.sweep()
    assert len(audience_posts(emulator, A.AFFECTED_USERS)) == 1
    assert len(audience_posts(emulator, A.REGULATORY_BODY)) == 1

    frozen.move_to(T0 + timedelta(hours=24))
    app.communications.sweep()
    assert len(audience_posts(emulator, A.TECHNICAL_TEAM)) == 1

    for audience, row in rows(app, incident.id).items():
        assert row.state is NotificationState.SENT, audience  # type: ignore[attr-defined]
        assert row.outcome is DeadlineOutcome.MET, audience  # type: ignore[attr-defined]
    # Each message went to its channel once, all other sweeps notwithstanding.
    assert all(len(audience_posts(emulator, a)) <= 1 for a in Audience)
    assert emulator.validation_failures() == []


def test_external_messages_are_redacted_and_internal_ones_are_not(
    app: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    declare_and_open(app, severity=Severity.HIGH, personal_data=True)
    frozen.move_to(T0 + timedelta(hours=24))
    app.communications.sweep()
    external = json.dumps(audience_posts(emulator, A.AFFECTED_USERS))
    internal = json.dumps(audience_posts(emulator, A.TECHNICAL_TEAM))
    for secret in ("jane.doe@example.com", "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"):
        assert secret not in external
    assert "jane.doe@example.com" in internal


def test_the_communications_lead_is_reminded_half_way_to_the_deadline(
    app: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    incident = declare_and_open(app, severity=Severity.HIGH, public_facing=True)
    channel = incident.channel_id or ""
    frozen.move_to(T0 + timedelta(minutes=7, seconds=29))
    app.communications.sweep()
    assert not [t for t in war_room_texts(emulator, channel) if "due soon" in t]
    frozen.move_to(T0 + timedelta(minutes=7, seconds=30))
    app.communications.sweep()
    app.communications.sweep()
    [reminder] = [m for m in emulator.state.messages(channel) if "due soon" in m["text"]]
    body = json.dumps(reminder["blocks"])
    assert "<@U0COMMS>" in body and "PR team" in body


def test_no_reminder_when_the_message_went_out_early(
    app: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    incident = declare_and_open(app, severity=Severity.HIGH, public_facing=True)
    pr = rows(app, incident.id)[A.PR_TEAM]
    app.communications.notifications.send_now(pr.id, user_id="U0COMMS")  # type: ignore[attr-defined]
    frozen.move_to(T0 + timedelta(minutes=30))
    app.communications.sweep()
    reminders = [t for t in war_room_texts(emulator, incident.channel_id or "") if "due soon" in t]
    # Support leads (urgent) are still owed theirs; the immediate tier has nothing pending.
    assert reminders == ["Incident #1: 1 urgent message(s) due soon"]
    assert len(audience_posts(emulator, A.PR_TEAM)) == 1
    row = rows(app, incident.id)[A.PR_TEAM]
    assert row.decided_by == "U0COMMS" and row.outcome is DeadlineOutcome.MET  # type: ignore[attr-defined]


def test_with_auto_send_off_a_due_message_goes_to_the_commander_and_is_late(
    manual: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    app = manual
    incident = declare_and_open(app, severity=Severity.HIGH, public_facing=True)
    frozen.move_to(T0 + timedelta(minutes=16))
    app.communications.sweep()
    assert not audience_posts(emulator, A.PR_TEAM)
    pr = rows(app, incident.id)[A.PR_TEAM]
    assert pr.state is NotificationState.ESCALATED  # type: ignore[attr-defined]
    assert pr.outcome is DeadlineOutcome.LATE  # type: ignore[attr-defined]
    [escalation] = [
        m for m in emulator.state.messages(incident.channel_id or "") if "overdue" in m["text"]
    ]
    assert "<@U0COMMANDER>" in json.dumps(escalation["blocks"])
    app.communications.sweep()  # escalated once, not again
    assert (
        len(
            [
                m
                for m in emulator.state.messages(incident.channel_id or "")
                if "overdue" in m["text"]
            ]
        )
        == 1
    )
    app.communications.notifications.send_now(pr.id, user_id="U0COMMANDER")  # type: ignore[attr-defined]
    assert len(audience_posts(emulator, A.PR_TEAM)) == 1
    sent = rows(app, incident.id)[A.PR_TEAM]
    assert sent.state is NotificationState.SENT and sent.outcome is DeadlineOutcome.LATE  # type: ignore[attr-defined]


def test_a_restart_rebuilds_the_timers_and_sends_what_came_due_once_marked_late(
    emulator: SlackEmulator, engine: Engine, frozen: FrozenDateTimeFactory
) -> None:
    add_audience_channels(emulator)
    first = build(emulator, engine, comms_config())
    incident = declare_and_open(first, severity=Severity.HIGH, public_facing=True)
    first.close()  # warroom stops five minutes in, before any deadline

    frozen.move_to(T0 + timedelta(hours=2))
    second = build(emulator, engine, comms_config())
    try:
        assert second.communications.timers.rebuild() > 0
        planned = rows(second, incident.id)
        jobs = {job.id: job for job in second.scheduler.get_jobs()}
        for row in planned.values():
            assert notification_job_id(row.id) in jobs  # type: ignore[attr-defined]
        # What came due while warroom was down fires at once: run the rebuilt timers.
        for job in list(jobs.values()):
            job.func(*job.args)
        for job in list(jobs.values()):  # a timer firing twice sends nothing more
            job.func(*job.args)
        second.communications.sweep()
        for audience in (A.PR_TEAM, A.CUSTOMER_SUPPORT_LEADS):
            assert len(audience_posts(emulator, audience)) == 1
            row = rows(second, incident.id)[audience]
            assert row.state is NotificationState.SENT  # type: ignore[attr-defined]
            assert row.outcome is DeadlineOutcome.LATE  # type: ignore[attr-defined]
        assert not audience_posts(emulator, A.TECHNICAL_TEAM)  # not due for 22 more hours
    finally:
        second.close()


def test_a_send_interrupted_after_posting_is_not_posted_again(
    app: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    """The worker died after Slack took the message but before it recorded that: whoever
    takes over finds the message's delivery marker in the channel and does not post again."""
    incident = declare_and_open(app, severity=Severity.HIGH, public_facing=True)
    pr = rows(app, incident.id)[A.PR_TEAM]
    frozen.move_to(T0 + timedelta(minutes=15))
    service = app.communications.notifications
    original_settle = service._settle

    def crash(*args: object, **kwargs: object) -> object:
        raise SystemExit("worker killed after posting")

    service._settle = crash  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        service.deliver(pr.id, by="warroom")  # type: ignore[attr-defined]
    service._settle = original_settle  # type: ignore[method-assign]
    assert len(audience_posts(emulator, A.PR_TEAM)) == 1
    assert rows(app, incident.id)[A.PR_TEAM].state is NotificationState.SENDING  # type: ignore[attr-defined]

    frozen.move_to(T0 + timedelta(minutes=18))  # the claim is stale now
    app.communications.sweep()
    assert len(audience_posts(emulator, A.PR_TEAM)) == 1
    assert rows(app, incident.id)[A.PR_TEAM].state is NotificationState.SENT  # type: ignore[attr-defined]


def test_severity_change_plans_new_audiences_from_the_change_and_sends_nothing_twice(
    app: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    incident = declare_and_open(app, severity=Severity.HIGH)
    frozen.move_to(T0 + timedelta(minutes=10))
    change = app.workflow.change_severity(
        incident_id=incident.id, severity=Severity.CRITICAL, actor_id="U0COMMANDER"
    )
    app.workflow.follow_up(change)
    planned = rows(app, incident.id)
    assert planned[A.SECURITY_TEAM].due_at == T0 + timedelta(minutes=25)  # type: ignore[attr-defined]
    assert planned[A.TECHNICAL_TEAM].due_at == T0 + timedelta(hours=24)  # type: ignore[attr-defined]
    frozen.move_to(T0 + timedelta(minutes=25))
    app.communications.sweep()
    assert len(audience_posts(emulator, A.EXECUTIVE_TEAM)) == 1  # the alarm, and no second
    assert len(audience_posts(emulator, A.SECURITY_TEAM)) == 1


def test_cadence_reminders_follow_severity_and_stop_at_resolve(
    app: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    incident = declare_and_open(app, severity=Severity.CRITICAL)
    channel = incident.channel_id or ""

    def cadence_posts() -> int:
        return len([t for t in war_room_texts(emulator, channel) if "status update is due" in t])

    frozen.move_to(T0 + timedelta(minutes=29))
    app.communications.sweep()
    assert cadence_posts() == 0
    frozen.move_to(T0 + timedelta(minutes=30))
    app.communications.sweep()
    assert cadence_posts() == 1
    frozen.move_to(T0 + timedelta(minutes=60))
    app.communications.sweep()
    assert cadence_posts() == 2

    app.workflow.resolve(incident_id=incident.id, actor_id="U0COMMANDER")
    frozen.move_to(T0 + timedelta(hours=5))
    app.communications.sweep()
    assert cadence_posts() == 2
    with UnitOfWorkFactory(app.engine)(read_only=True) as uow:
        assert uow.reminders.pending(incident.id, ReminderKind.CADENCE) == []


def test_snooze_moves_the_next_cadence_reminder_and_dismiss_keeps_the_interval(
    app: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    incident = declare_and_open(app, severity=Severity.HIGH)
    frozen.move_to(T0 + timedelta(hours=1))
    app.communications.sweep()
    with UnitOfWorkFactory(app.engine)(read_only=True) as uow:
        [fired] = uow.reminders.pending(incident.id, ReminderKind.CADENCE)
    assert fired.due_at == T0 + timedelta(hours=2)
    message = app.communications.reminders.snooze(fired.id, minutes=30, user_id="U0COMMS")
    assert "Snoozed by <@U0COMMS>" in json.dumps(message)
    with UnitOfWorkFactory(app.engine)(read_only=True) as uow:
        [next_one] = uow.reminders.pending(incident.id, ReminderKind.CADENCE)
    assert next_one.due_at == T0 + timedelta(hours=1, minutes=30)
    dismissed = app.communications.reminders.dismiss(next_one.id, user_id="U0COMMS")
    assert "Dismissed by <@U0COMMS>" in json.dumps(dismissed)
    with UnitOfWorkFactory(app.engine)(read_only=True) as uow:
        assert [r.due_at for r in uow.reminders.pending(incident.id, ReminderKind.CADENCE)] == [
            T0 + timedelta(hours=1, minutes=30)
        ]


def test_timers_have_deterministic_ids(app: Warroom) -> None:
    # Paused: jobs go to the job store (where ids are unique) but nothing runs by itself.
    app.scheduler.start(paused=True)
    incident = declare_and_open(app, severity=Severity.HIGH, public_facing=True)
    app.communications.timers.schedule_incident(incident.id)
    app.communications.timers.schedule_incident(incident.id)
    ids = [job.id for job in app.scheduler.get_jobs()]
    assert len(ids) == len(set(ids))
    pr = rows(app, incident.id)[A.PR_TEAM]
    assert notification_job_id(pr.id) in ids  # type: ignore[attr-defined]
    assert any(job_id.startswith(reminder_job_id(0)[:-1]) for job_id in ids)


def test_the_legal_advisor_is_reminded_as_the_gdpr_clock_runs_until_it_is_filed(
    app: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    incident = declare_and_open(app, severity=Severity.HIGH, personal_data=True)
    channel = incident.channel_id or ""
    with UnitOfWorkFactory(app.engine)(read_only=True) as uow:
        [clock] = uow.clocks.list_for(incident.id)
        planned = sorted(
            r.due_at - T0 for r in uow.reminders.pending(incident.id, ReminderKind.REGULATORY)
        )
    assert clock.due_at == T0 + timedelta(hours=72)
    assert planned == [
        timedelta(hours=36),
        timedelta(hours=48),
        timedelta(hours=54),
        timedelta(hours=64, minutes=48),
    ]
    report = [m for m in emulator.state.messages(channel) if "GDPR" in m["text"]]
    assert report, "the draft report is in the war room"

    def legal_reminders() -> list[str]:
        return [
            json.dumps(m["blocks"])
            for m in emulator.state.messages(channel)
            if m["text"].startswith("Reminder (") and "<@U0LEGAL>" in json.dumps(m["blocks"])
        ]

    frozen.move_to(T0 + timedelta(hours=36))
    app.communications.sweep()
    assert len(legal_reminders()) == 1
    app.communications.regulatory.mark_submitted(clock.id, user_id="U0LEGAL")
    frozen.move_to(T0 + timedelta(hours=80))
    app.communications.sweep()
    assert len(legal_reminders()) == 1


def test_a_send_interrupted_hours_ago_in_a_busy_channel_is_still_found_and_not_repeated(
    app: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    """The marker search goes back to when the dead worker claimed the message and pages
    through everything posted since, however much that is."""
    incident = declare_and_open(app, severity=Severity.HIGH, public_facing=True)
    pr = rows(app, incident.id)[A.PR_TEAM]
    frozen.move_to(T0 + timedelta(minutes=15))
    service = app.communications.notifications

    def crash(*args: object, **kwargs: object) -> object:
        raise SystemExit("worker killed after posting")

    original_settle = service._settle
    service._settle = crash  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        service.deliver(pr.id, by="warroom")  # type: ignore[attr-defined]
    service._settle = original_settle  # type: ignore[method-assign]
    channel = AUDIENCE_CHANNELS[A.PR_TEAM]
    for n in range(450):  # other incidents' messages bury it under three pages
        frozen.tick(timedelta(seconds=1))
        emulator.state.add_message(channel, f"other incident {n}")
    frozen.move_to(T0 + timedelta(hours=3))  # restarted hours later
    app.communications.sweep()
    ours = [m for m in emulator.state.messages(channel) if not m["text"].startswith("other")]
    assert len(ours) == 1
    assert rows(app, incident.id)[A.PR_TEAM].state is NotificationState.SENT  # type: ignore[attr-defined]


def test_log_lines_of_a_follow_up_carry_the_incident_number(
    app: Warroom, emulator: SlackEmulator
) -> None:
    import io
    import logging
    from dataclasses import dataclass

    from bot.domain.incident import Incident
    from bot.logging_setup import JsonFormatter

    incident = declare_and_open(app, severity=Severity.LOW)

    @dataclass(frozen=True)
    class Probe:
        incident: Incident

    app.workflow.extend_follow_up(Probe, lambda work: logging.getLogger("warroom.probe").info("hi"))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    probe_log = logging.getLogger("warroom.probe")
    probe_log.addHandler(handler)
    probe_log.setLevel(logging.INFO)
    try:
        app.workflow.follow_up(Probe(incident))
    finally:
        probe_log.removeHandler(handler)
    assert json.loads(stream.getvalue().splitlines()[0])["incident"] == incident.number


def test_a_timer_sends_log_lines_tagged_with_the_incident(
    emulator: SlackEmulator, engine: Engine, frozen: FrozenDateTimeFactory
) -> None:
    import io
    import logging

    from bot.logging_setup import JsonFormatter

    add_audience_channels(emulator)
    audiences = {a.value: [c] for a, c in AUDIENCE_CHANNELS.items() if a is not A.TECHNICAL_TEAM}
    app = build(emulator, engine, comms_config(audiences=audiences))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("bot.services.notifications")
    logger.addHandler(handler)
    try:
        incident = declare_and_open(app, severity=Severity.LOW)
        frozen.move_to(T0 + timedelta(hours=24))
        app.communications.sweep()  # the technical team has no channel: an error is logged
    finally:
        logger.removeHandler(handler)
        app.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines and all(line["incident"] == incident.number for line in lines)


def test_an_escalated_message_slack_refuses_by_hand_stays_the_commanders(
    manual: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    from bot.errors import ExternalServiceError

    app = manual
    incident = declare_and_open(app, severity=Severity.HIGH, public_facing=True)
    frozen.move_to(T0 + timedelta(minutes=16))
    app.communications.sweep()
    pr = rows(app, incident.id)[A.PR_TEAM]
    assert pr.state is NotificationState.ESCALATED  # type: ignore[attr-defined]
    emulator.inject_fault("chat.postMessage", status=500, times=3)  # the post and retries
    with pytest.raises(ExternalServiceError):
        app.communications.notifications.send_now(pr.id, user_id="U0COMMANDER")  # type: ignore[attr-defined]
    back = rows(app, incident.id)[A.PR_TEAM]
    assert back.state is NotificationState.ESCALATED  # type: ignore[attr-defined]
    assert back.outcome is DeadlineOutcome.LATE  # type: ignore[attr-defined]
    app.communications.sweep()  # not escalated a second time
    overdue = [
        m for m in emulator.state.messages(incident.channel_id or "") if "overdue" in m["text"]
    ]
    assert len(overdue) == 1
    app.communications.notifications.send_now(pr.id, user_id="U0COMMANDER")  # type: ignore[attr-defined]
    assert rows(app, incident.id)[A.PR_TEAM].state is NotificationState.SENT  # type: ignore[attr-defined]
