"""Timed sends in batches from the sending threads, with drafts and cards redrawn after them
off those threads: one claim and one settle transaction a batch, every message still once,
and a redraw lost in a crash made good by the sweep."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError

from bot.app import Warroom
from bot.domain.notifications import NotificationRecord, NotificationState
from bot.domain.vocabulary import Audience, Severity
from bot.emulator.server import SlackEmulator
from storage.models import NotificationRow, OutboundMessageRow
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


def planned(app: Warroom, incident_id: int) -> list[NotificationRecord]:
    with UnitOfWorkFactory(app.engine)(read_only=True) as uow:
        return uow.notifications.list_for(incident_id)


def draft_text(emulator: SlackEmulator, row: NotificationRecord) -> str:
    assert row.draft_channel_id is not None
    for message in emulator.state.messages(row.draft_channel_id):
        if message["ts"] == row.draft_ts:
            return str(message["text"]) + repr(message.get("blocks"))
    raise AssertionError(f"draft of notification {row.id} not in its channel")


def draft_shows(app: Warroom, notification_id: int) -> str | None:
    with app.engine.connect() as connection:
        return connection.scalar(
            NotificationRow.__table__.select()
            .with_only_columns(NotificationRow.draft_state)
            .where(NotificationRow.id == notification_id)
        )


class Commits:
    """Commits made by this thread (the refresher's own run beside it)."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        self._engine = engine
        self._thread = threading.get_ident()

    def __enter__(self) -> Commits:
        event.listen(self._engine, "commit", self._count)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self._engine, "commit", self._count)

    def _count(self, *args: Any) -> None:
        if threading.get_ident() == self._thread:
            self.count += 1


def test_a_batch_of_due_messages_takes_one_claim_and_one_settle_transaction(
    app: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    incidents = [
        declare_and_open(
            app,
            severity=Severity.CRITICAL,
            personal_data=True,
            public_facing=True,
            key=f"batch:{n}",
        )
        for n in range(3)
    ]
    frozen.move_to(T0 + timedelta(hours=25))  # every tier is due
    ids = [row.id for incident in incidents for row in planned(app, incident.id)]
    app.communications.notifications.drafts.start()  # redraws leave the sending thread
    with Commits(app.engine) as commits:
        deliveries = app.communications.notifications.deliver_due(ids)
    # The critical alarm already sent each incident's executive message: nothing due there.
    assert sum(d.sent for d in deliveries) == len(ids) - len(incidents)
    assert commits.count == 2
    assert app.communications.notifications.drafts.wait_idle(timeout=30)
    for incident in incidents:
        rows = planned(app, incident.id)
        assert {row.state for row in rows} == {NotificationState.SENT}
        # The executive alert went out with the critical alarm, before any draft.
        for row in [row for row in rows if row.draft_ts is not None]:
            assert draft_shows(app, row.id) == "sent", row.audience
            assert ":white_check_mark: Sent" in draft_text(emulator, row)
    for audience in Audience:
        assert len(audience_posts(emulator, audience)) == len(incidents), audience
    assert emulator.validation_failures() == []


def test_timers_queue_to_the_sending_threads_and_each_message_goes_once(
    app: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    incidents = [
        declare_and_open(app, severity=Severity.HIGH, public_facing=True, key=f"timer:{n}")
        for n in range(4)
    ]
    frozen.move_to(T0 + timedelta(hours=25))
    app.communications.start()
    jobs = [j for j in app.scheduler.get_jobs() if j.id.startswith("warroom:notification:")]
    assert jobs
    for job in jobs + jobs:  # every timer twice: queued once, sent once
        job.func(*job.args)
    app.communications.sweep()  # racing the sending threads for the same rows
    assert app.communications.sends.wait_idle(timeout=60)
    assert app.communications.notifications.drafts.wait_idle(timeout=60)
    for incident in incidents:
        rows = planned(app, incident.id)
        assert {row.state for row in rows} == {NotificationState.SENT}
        assert all(draft_shows(app, row.id) == "sent" for row in rows if row.draft_ts)
    for audience in (A.PR_TEAM, A.CUSTOMER_SUPPORT_LEADS, A.TECHNICAL_TEAM):
        assert len(audience_posts(emulator, audience)) == len(incidents), audience


def test_a_redraw_lost_in_a_crash_is_made_by_the_next_sweep(
    app: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    incident = declare_and_open(app, severity=Severity.HIGH, public_facing=True)
    pr = next(row for row in planned(app, incident.id) if row.audience is A.PR_TEAM)
    assert draft_shows(app, pr.id) == "pending"
    frozen.move_to(T0 + timedelta(minutes=15))
    service = app.communications.notifications
    # The process dies after the send settles, before the draft is redrawn.
    original_show = service._show
    service._show = lambda *args, **kwargs: None  # type: ignore[method-assign]
    assert service.deliver_due([pr.id])[0].sent
    service._show = original_show  # type: ignore[method-assign]
    assert draft_shows(app, pr.id) == "pending"
    assert "Send now" in draft_text(emulator, planned_row(app, pr.id))

    app.communications.sweep()
    assert draft_shows(app, pr.id) == "sent"
    assert "Send now" not in draft_text(emulator, planned_row(app, pr.id))


def test_a_draft_redrawn_by_hand_is_recorded_so_the_sweep_leaves_it(
    app: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    incident = declare_and_open(app, severity=Severity.HIGH, public_facing=True)
    frozen.move_to(T0 + timedelta(minutes=15))
    app.communications.sweep()
    updates = len(emulator.calls("chat.update"))
    app.communications.sweep()
    assert len(emulator.calls("chat.update")) == updates
    assert all(draft_shows(app, row.id) == row.state.value for row in planned(app, incident.id))


def planned_row(app: Warroom, notification_id: int) -> NotificationRecord:
    with UnitOfWorkFactory(app.engine)(read_only=True) as uow:
        row = uow.notifications.get(notification_id)
    assert row is not None
    return row


def test_at_start_what_came_due_while_down_goes_before_any_timer_is_armed(
    emulator: SlackEmulator, engine: Engine, frozen: FrozenDateTimeFactory
) -> None:
    add_audience_channels(emulator)
    first = build(emulator, engine, comms_config())
    incident = declare_and_open(first, severity=Severity.HIGH, public_facing=True)
    first.close()
    frozen.move_to(T0 + timedelta(hours=2))  # down for the 15-minute and 1-hour tiers
    second = build(emulator, engine, comms_config())
    try:
        second.communications.start()  # no timers, no scheduler, no sweep
        assert not second.scheduler.running
        assert second.communications.sends.wait_idle(timeout=60)
        rows = {row.audience: row for row in planned(second, incident.id)}
        for audience in (A.PR_TEAM, A.CUSTOMER_SUPPORT_LEADS):
            assert rows[audience].state is NotificationState.SENT, audience
            assert len(audience_posts(emulator, audience)) == 1, audience
        assert rows[A.TECHNICAL_TEAM].state is NotificationState.PENDING  # due in 22 hours
    finally:
        second.close()


def test_a_war_rooms_drafts_are_claimed_together_and_recorded_together(
    app: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    incident = declare_and_open(
        app, severity=Severity.CRITICAL, personal_data=True, public_facing=True, key="drafts"
    )
    with app.engine.begin() as connection:  # as if the drafts had never been posted
        connection.execute(
            NotificationRow.__table__.update()
            .where(NotificationRow.incident_id == incident.id)
            .values(draft_ts=None, draft_channel_id=None, draft_state=None)
        )
        connection.execute(
            OutboundMessageRow.__table__.delete().where(OutboundMessageRow.key.like("draft:%"))
        )
    with Commits(app.engine) as commits:
        posted = app.communications.notifications.post_drafts(incident.id)
    rows = planned(app, incident.id)
    open_rows = [row for row in rows if row.state.is_open]
    assert posted == len(open_rows) > 1
    assert commits.count == 2
    assert all(row.draft_ts and draft_shows(app, row.id) == "pending" for row in open_rows)
    assert app.communications.notifications.post_drafts(incident.id) == 0  # once


def test_an_unexpected_failure_of_one_post_does_not_hold_back_the_rest_of_its_batch(
    app: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    incidents = [
        declare_and_open(app, severity=Severity.HIGH, public_facing=True, key=f"reset:{n}")
        for n in range(2)
    ]
    frozen.move_to(T0 + timedelta(hours=25))
    ids = [row.id for incident in incidents for row in planned(app, incident.id)]
    service = app.communications.notifications
    slack = service._slack  # noqa: SLF001
    original = slack.post
    pr_channel = AUDIENCE_CHANNELS[A.PR_TEAM]
    broken: list[str | None] = []

    def post(channel: str, message: dict[str, Any], *, marker: str | None = None) -> str:
        if channel == pr_channel and not broken:
            broken.append(marker)
            raise OSError("connection reset by peer")
        return original(channel, message, marker=marker)

    slack.post = post  # type: ignore[method-assign]
    try:
        service.deliver_due(ids)
    finally:
        slack.post = original  # type: ignore[method-assign]
    states = [row.state for incident in incidents for row in planned(app, incident.id)]
    assert states.count(NotificationState.SENDING) == 1  # the one whose post failed
    assert states.count(NotificationState.SENT) == len(ids) - 1
    frozen.move_to(T0 + timedelta(hours=25, minutes=3))  # its claim is stale now
    app.communications.sweep()
    for incident in incidents:
        assert {row.state for row in planned(app, incident.id)} == {NotificationState.SENT}
    assert len(audience_posts(emulator, A.PR_TEAM)) == len(incidents)


def test_a_batch_whose_record_is_refused_once_is_recorded_on_the_next_try(
    app: Warroom,
    emulator: SlackEmulator,
    frozen: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The posts are in Slack when a deadlock (PostgreSQL picks a victim) or a dropped
    connection refuses their record: recording is tried again rather than leaving the rows
    claimed until their claims go stale."""
    incident = declare_and_open(app, severity=Severity.HIGH, public_facing=True)
    frozen.move_to(T0 + timedelta(minutes=15))
    service = app.communications.notifications
    record_sent = service._record_sent
    refusals: list[int] = []

    def refused_once(*args: Any, **kwargs: Any) -> Any:
        if not refusals:
            refusals.append(1)
            raise OperationalError("UPDATE notifications ...", {}, Exception("deadlock detected"))
        return record_sent(*args, **kwargs)

    monkeypatch.setattr(service, "_record_sent", refused_once)
    due = service.due_now()
    assert service.fire_due(due) == len(due) >= 1
    assert refusals == [1]
    rows = {row.id: row for row in planned(app, incident.id)}
    assert all(rows[i].state is NotificationState.SENT for i in due)
    assert len(audience_posts(emulator, Audience.PR_TEAM)) == 1
