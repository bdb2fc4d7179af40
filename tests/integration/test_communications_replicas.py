"""Two warroom replicas over one PostgreSQL database, each with its own scheduler and timers:
every planned message is sent exactly once. And Slack's per-channel pace is kept."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from bot.app import Warroom, create_app
from bot.domain.incident import Declaration
from bot.domain.notifications import NotificationState
from bot.domain.vocabulary import Audience, IncidentSource, Severity
from bot.emulator.server import SlackEmulator
from storage.unit_of_work import UnitOfWorkFactory
from tests.conftest import make_settings
from tests.integration.comms_support import AUDIENCE_CHANNELS, add_audience_channels, comms_config

pytestmark = pytest.mark.integration


class SharedClock:
    """One clock for both replicas, moved forward by the test."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


def declare_many(app: Warroom, count: int) -> list[int]:
    ids = []
    for n in range(count):
        result = app.workflow.declare(
            Declaration(
                title=f"Replica test incident {n}",
                severity=Severity.CRITICAL,
                reporter_id="U0REPORTER",
                source=IncidentSource.GENERIC_WEBHOOK,
                dedup_key=f"replicas:{n}",
                personal_data=True,
                public_facing=True,
            )
        )
        ids.append(result.incident.id)
    return ids


def test_two_replicas_send_every_message_exactly_once(
    postgres_engine: Engine, emulator: SlackEmulator
) -> None:
    add_audience_channels(emulator)
    clock = SharedClock()
    config = comms_config()
    replicas = [
        create_app(make_settings(emulator), config, engine=postgres_engine, clock=clock)
        for _ in range(2)
    ]
    try:
        incident_ids = declare_many(replicas[0], 12)
        clock.offset = timedelta(hours=25)  # every tier is due
        for app in replicas:
            assert app.communications.timers.rebuild() > 0
        start = threading.Barrier(4)

        def sweep(app: Warroom) -> None:
            start.wait()
            app.communications.sweep()

        def fire_timers(app: Warroom) -> None:
            start.wait()
            for job in app.scheduler.get_jobs():
                if job.id.startswith("warroom:notification:"):
                    job.func(*job.args)

        threads = [
            threading.Thread(target=work, args=(app,))
            for app in replicas
            for work in (sweep, fire_timers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        for app in replicas:
            app.communications.sweep()
    finally:
        for app in replicas:
            app.close()

    with UnitOfWorkFactory(postgres_engine)(read_only=True) as uow:
        planned = [n for i in incident_ids for n in uow.notifications.list_for(i)]
    assert len(planned) == 12 * 10
    assert all(n.state is NotificationState.SENT for n in planned)
    for audience in Audience:
        assert len(emulator.state.messages(AUDIENCE_CHANNELS[audience])) == 12, audience
    # Each post carries its delivery marker (incident, audience, tier, channel): none twice.
    sends = [c for c in emulator.calls("chat.postMessage") if c.ok and c.params["channel"] != ""]
    markers = Counter(
        c.params["metadata"]["event_payload"]["key"]
        for c in sends
        if isinstance(c.params.get("metadata"), dict)
        and ":notify:" in str(c.params["metadata"]["event_payload"]["key"])
    )
    assert len(markers) == 12 * 10 and max(markers.values()) == 1


def test_many_messages_for_one_channel_keep_slacks_pace_without_429s(
    sqlite_engine: Engine,
) -> None:
    # Slack's limit scaled down 20×; warroom's pace keeps a margin over it, since a post's
    # arrival at Slack jitters by a few milliseconds after it leaves.
    pace, slack_limit = 0.1, 0.05
    with SlackEmulator(channel_post_interval=slack_limit) as emulator:
        emulator.state.add_channel("exec-incidents", channel_id="C0EXEC")
        add_audience_channels(emulator)
        clock = SharedClock()
        config = comms_config(notifications={"channel_pace": pace})
        app = create_app(make_settings(emulator), config, engine=sqlite_engine, clock=clock)
        try:
            incident_ids = declare_many(app, 6)
            clock.offset = timedelta(hours=25)
            app.communications.sweep()
        finally:
            app.close()
        assert emulator.rate_limited == 0
        technical = emulator.state.messages(AUDIENCE_CHANNELS[Audience.TECHNICAL_TEAM])
        assert len(technical) == len(incident_ids)
        stamps = [float(m["ts"]) for m in technical]
        assert stamps == sorted(stamps)
