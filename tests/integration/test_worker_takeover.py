"""A dead process's sends are taken over seconds after it stops beating, not minutes later
when its claims grow stale; never a live process's, and never twice in the channel."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import Engine, select

from bot.app import Warroom
from bot.clock import SystemClock
from bot.domain.incident import Incident
from bot.domain.notifications import NotificationRecord, NotificationState
from bot.domain.vocabulary import Audience, Severity
from bot.emulator.server import SlackEmulator
from bot.errors import ExternalServiceError
from bot.services.notifications import STALE_SEND
from bot.worker_heartbeat import DEAD_AFTER, FORGET_AFTER, WorkerHeartbeat
from storage.models import NotificationRow, OutboundMessageRow, WorkerRow
from storage.unit_of_work import UnitOfWorkFactory
from storage.worker_repositories import ClaimHolder
from tests.integration.comms_support import (
    add_audience_channels,
    audience_posts,
    build,
    comms_config,
    declare_and_open,
)

pytestmark = pytest.mark.integration

# Before the real clock: the emulator stamps messages with real time (freezegun leaves
# threads alone), and the survivor looks for the dead worker's post back to its claim.
T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def frozen() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time(T0) as clock:
        yield clock


def crash(heartbeat: WorkerHeartbeat) -> None:
    """The process is killed: its heartbeat thread stops, and nobody signs it off."""
    thread = heartbeat._thread
    assert thread is not None
    heartbeat._stop.set()
    thread.join(timeout=10)


def planned(engine: Engine, incident_id: int) -> dict[Audience, NotificationRecord]:
    with UnitOfWorkFactory(engine)(read_only=True) as uow:
        return {n.audience: n for n in uow.notifications.list_for(incident_id)}


def claimed_by(engine: Engine, notification_id: int) -> str | None:
    with engine.connect() as connection:
        return connection.scalar(
            select(NotificationRow.claimed_by).where(NotificationRow.id == notification_id)
        )


@pytest.fixture
def replicas(
    emulator: SlackEmulator, engine: Engine, frozen: FrozenDateTimeFactory
) -> Iterator[tuple[Warroom, Warroom, Incident]]:
    """Two processes on one database; the first beats and has declared a public incident
    whose messages to PR and support are due at T0 + 15 min."""
    add_audience_channels(emulator)
    first = build(emulator, engine, comms_config())
    second = build(emulator, engine, comms_config())
    try:
        first.communications.heartbeat.start()
        incident = declare_and_open(first, severity=Severity.HIGH, public_facing=True)
        frozen.move_to(T0 + timedelta(minutes=15))
        yield first, second, incident
    finally:
        second.close()
        first.close()


def test_a_send_cut_off_by_a_crash_is_finished_by_a_survivor_once_it_is_silent(
    replicas: tuple[Warroom, Warroom, Incident],
    emulator: SlackEmulator,
    engine: Engine,
    frozen: FrozenDateTimeFactory,
) -> None:
    first, second, incident = replicas
    pr = planned(engine, incident.id)[Audience.PR_TEAM]
    service = first.communications.notifications

    def killed(*args: object, **kwargs: object) -> object:
        raise SystemExit("killed after Slack took the message, before it was recorded")

    service._settle = killed  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        service.deliver(pr.id, by="warroom")
    assert len(audience_posts(emulator, Audience.PR_TEAM)) == 1
    first_id = first.communications.heartbeat.worker_id
    assert claimed_by(engine, pr.id) == first_id
    first.communications.heartbeat.beat()  # its last beat, then it dies
    crash(first.communications.heartbeat)

    survivor = second.communications.heartbeat
    survivor.start()
    frozen.move_to(T0 + timedelta(minutes=15) + DEAD_AFTER / 2)
    assert survivor.take_over() == []  # silent, but not for long enough to be dead
    second.communications.sweep()
    assert claimed_by(engine, pr.id) == first_id

    taken_at = T0 + timedelta(minutes=15) + DEAD_AFTER + timedelta(seconds=1)
    frozen.move_to(taken_at)
    assert taken_at - pr.due_at < STALE_SEND  # not the staleness rule
    assert survivor.take_over() == [pr.id]
    # The survivor took the message and its channel's ledger claim over, found the
    # message already in the channel, and recorded it without posting it again.
    assert len(audience_posts(emulator, Audience.PR_TEAM)) == 1
    row = planned(engine, incident.id)[Audience.PR_TEAM]
    assert row.state is NotificationState.SENT
    assert row.sent_at == taken_at
    assert survivor.take_over() == []


def test_a_message_not_yet_posted_by_the_dead_worker_is_posted_by_the_survivor(
    replicas: tuple[Warroom, Warroom, Incident],
    emulator: SlackEmulator,
    engine: Engine,
    frozen: FrozenDateTimeFactory,
) -> None:
    first, second, incident = replicas
    service = first.communications.notifications

    def killed(*args: object, **kwargs: object) -> object:
        raise SystemExit("killed after claiming, before posting")

    service._post_all = killed  # type: ignore[method-assign]
    due = service.due_now()
    assert due
    with pytest.raises(SystemExit):
        service.fire_due(due)
    assert not audience_posts(emulator, Audience.PR_TEAM)
    crash(first.communications.heartbeat)

    second.communications.heartbeat.start()
    frozen.move_to(T0 + timedelta(minutes=15) + DEAD_AFTER * 2)
    taken = second.communications.heartbeat.take_over()
    assert taken and set(taken) <= set(due)
    assert len(audience_posts(emulator, Audience.PR_TEAM)) == 1
    assert all(
        n.state is NotificationState.SENT
        for n in planned(engine, incident.id).values()
        if n.id in taken
    )


def test_claims_are_taken_from_silent_workers_only(
    engine: Engine, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    uow = UnitOfWorkFactory(engine)
    app = build(emulator, engine, comms_config())
    try:
        incident_id = declare_and_open(app, severity=Severity.HIGH).id
    finally:
        app.close()
    now = T0
    with uow() as unit:
        unit.workers.beat("alive", host="h", now=now)
        unit.workers.beat("silent", host="h", now=now - DEAD_AFTER * 2)
        unit.commit()
    with engine.begin() as connection:
        ids = []
        for n, holder_id in enumerate(["alive", "silent", None, "me"]):
            ids.append(
                connection.scalar(
                    NotificationRow.__table__.insert()
                    .values(
                        incident_id=incident_id,
                        audience=f"aud{n}",
                        tier="immediate",
                        state="sending",
                        due_at=now,
                        created_at=now,
                        claimed_at=now,
                        claimed_by=holder_id,
                        attempts=1,
                    )
                    .returning(NotificationRow.id)
                )
            )
        connection.execute(
            OutboundMessageRow.__table__.insert(),
            [
                {
                    "incident_id": incident_id,
                    "key": f"k:{holder_id}",
                    "state": "claimed",
                    "attempts": 1,
                    "claimed_at": now,
                    "claimed_by": holder_id,
                }
                for holder_id in ["alive", "silent", None, "me"]
            ],
        )
    # "me" is the claimant; its own row in the table is old, which must not matter.
    with uow() as unit:
        unit.workers.beat("me", host="h", now=now - DEAD_AFTER * 3)
        unit.commit()
    me = ClaimHolder("me", dead_before=now - DEAD_AFTER)
    with uow() as unit:
        assert unit.notifications.orphaned_ids(me) == [ids[1]]
        assert unit.notifications.due_ids(now=now, stale_before=now - STALE_SEND, holder=me) == [
            ids[1]
        ]
        won = unit.notifications.claim_many(ids, now=now, stale_before=now - STALE_SEND, holder=me)
        ledger = unit.outbound.claim_many(
            [(incident_id, f"k:{h}") for h in ["alive", "silent", None, "me"]],
            now=now,
            stale_before=now - STALE_SEND,
            max_attempts=10,
            holder=me,
        )
        unit.commit()
    assert won == {ids[1]}
    assert [claim.value for claim, _ in ledger.values()] == [
        "busy",
        "recovered",
        "busy",
        "busy",
    ]
    assert claimed_by(engine, ids[1]) == "me"
    # Without a holder (a process that does not beat) only staleness counts.
    with uow() as unit:
        later = now + STALE_SEND + timedelta(seconds=1)
        assert set(unit.notifications.claim_many(ids, now=later, stale_before=now)) == set()
        assert set(
            unit.notifications.claim_many(ids, now=later, stale_before=later - STALE_SEND)
        ) == set(ids)


def test_a_clean_stop_signs_the_worker_off_and_long_dead_ones_are_forgotten(
    engine: Engine, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    add_audience_channels(emulator)
    app = build(emulator, engine, comms_config())
    survivor = build(emulator, engine, comms_config())
    try:
        with UnitOfWorkFactory(engine)() as unit:
            unit.workers.beat("long-gone", host="h", now=T0 - FORGET_AFTER - timedelta(hours=1))
            unit.commit()
        assert app.communications.heartbeat.holder() is None  # not beating yet: names nobody
        app.communications.start()
        holder = app.communications.heartbeat.holder()
        assert holder is not None and holder.dead_before == T0 - DEAD_AFTER
        stopping = app.communications.heartbeat.worker_id
        assert _workers(engine) == [stopping]  # the long dead one was forgotten
        incident = declare_and_open(app, severity=Severity.HIGH, public_facing=True)
        frozen.move_to(T0 + timedelta(minutes=15))
        # A send that outlasts the stop (here: claimed, and never finished).
        pr = planned(engine, incident.id)[Audience.PR_TEAM]
        with UnitOfWorkFactory(engine)() as unit:
            assert unit.notifications.claim(
                pr.id, now=T0 + timedelta(minutes=15), stale_before=T0, holder=holder
            )
            unit.commit()
    finally:
        app.close()
    try:
        assert _workers(engine) == [stopping]
        survivor.communications.heartbeat.start()
        assert not survivor.communications.heartbeat.others_alive()
        # Dead at once: the survivor's next beat sends what the stopped process held.
        assert survivor.communications.heartbeat.take_over() == [pr.id]
        assert len(audience_posts(emulator, Audience.PR_TEAM)) == 1
        assert planned(engine, incident.id)[Audience.PR_TEAM].state is NotificationState.SENT
    finally:
        survivor.close()


def _workers(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(select(WorkerRow.id).order_by(WorkerRow.id)))


def test_a_process_joining_a_running_one_trains_before_it_takes_work(
    emulator: SlackEmulator,
    engine: Engine,
    frozen: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Alone, warroom arms its deadlines first (they may be overdue); joining a running
    process, as in a rolling restart, it trains its text model first, while the other sends."""

    def start(app: Warroom) -> bool:
        """Start the app's background work; whether its timers ran when it trained."""
        armed_when_training: list[bool] = []
        monkeypatch.setattr(
            app.classifier, "warm_up", lambda: armed_when_training.append(app.scheduler.running)
        )
        app.start_background_work()
        assert len(armed_when_training) == 1
        return armed_when_training[0]

    add_audience_channels(emulator)
    first = build(emulator, engine, comms_config())
    try:
        assert start(first) is True
        second = build(emulator, engine, comms_config())
        try:
            assert start(second) is False
        finally:
            second.close()
    finally:
        first.close()
    third = build(emulator, engine, comms_config())
    try:
        assert start(third) is True  # the others signed off
    finally:
        third.close()


def test_the_heartbeat_goes_on_when_taking_over_fails(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live worker that stopped beating would have its own sends taken from it."""
    monkeypatch.setattr("bot.worker_heartbeat.BEAT_INTERVAL", timedelta(milliseconds=10))
    heartbeat = WorkerHeartbeat(UnitOfWorkFactory(sqlite_engine), SystemClock())
    failures = threading.Semaphore(0)

    def broken() -> list[int]:
        failures.release()
        raise ExternalServiceError("Slack chat.postMessage failed: internal_error")

    monkeypatch.setattr(heartbeat, "take_over", broken)
    heartbeat.start()
    try:
        beats = []
        for _ in range(3):
            assert failures.acquire(timeout=10)
            with sqlite_engine.connect() as connection:
                beats.append(connection.scalar(select(WorkerRow.beat_at)))
        assert beats[0] < beats[1] < beats[2]
    finally:
        heartbeat.close()


def test_a_war_room_half_opened_by_a_dead_process_is_finished_once_it_is_silent(
    emulator: SlackEmulator,
    engine: Engine,
    frozen: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not 5 minutes later, when its lease runs out, nor 10, when its claims go stale."""
    add_audience_channels(emulator)
    first = build(emulator, engine, comms_config())
    second = build(emulator, engine, comms_config())
    try:
        first.communications.heartbeat.start()
        slack = first.workflow.war_rooms._slack
        post = slack.post

        def killed_at_the_announcement(channel: str, *args: object, **kwargs: object) -> str:
            if channel == first.config.announce_channel:
                raise SystemExit("killed while announcing the incident")
            return post(channel, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(slack, "post", killed_at_the_announcement)
        with pytest.raises(SystemExit):
            declare_and_open(first, severity=Severity.HIGH)
        first.communications.heartbeat.beat()
        crash(first.communications.heartbeat)
        announce = first.config.announce_channel
        assert announce is not None and not emulator.state.messages(announce)
        war_rooms = [c for c in emulator.calls("conversations.create") if c.ok]
        assert len(war_rooms) == 1

        second.communications.heartbeat.start()
        frozen.tick(DEAD_AFTER / 2)
        assert second.workflow.war_rooms.open_pending_war_rooms() == 0  # leased, still alive
        frozen.tick(DEAD_AFTER)
        assert second.workflow.war_rooms.open_pending_war_rooms() == 1
        assert len(emulator.state.messages(announce)) == 1
        assert len([c for c in emulator.calls("conversations.create") if c.ok]) == 1
        with UnitOfWorkFactory(engine)(read_only=True) as uow:
            assert uow.incidents.list_without_war_room() == []
    finally:
        second.close()
        first.close()
