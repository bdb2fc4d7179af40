"""Deliveries recorded together (group commit) on SQLite and PostgreSQL: the batch must leave
the database exactly as the same deliveries recorded one after the other would."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from bot.app import Warroom, create_app
from bot.config import WarroomConfig
from bot.domain.alerts import Alert, AlertStatus
from bot.domain.vocabulary import IncidentSource, Severity
from bot.emulator.server import SlackEmulator
from bot.errors import StorageUnavailableError
from bot.services.alerts import Ingested, _by_group, _Delivery
from storage.db import build_engine
from storage.models import (
    AlertDeliveryRow,
    AlertGroupRow,
    AlertRow,
    IncidentRow,
    TimelineEventRow,
)
from tests.conftest import make_settings

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
SOURCE = IncidentSource.ALERTMANAGER


@pytest.fixture
def app(emulator: SlackEmulator, engine: Engine, config: WarroomConfig) -> Iterator[Warroom]:
    built = create_app(make_settings(emulator), config, engine=engine)
    yield built
    built.close()


def alert(
    group: str,
    n: int,
    *,
    status: AlertStatus = AlertStatus.FIRING,
    severity: Severity = Severity.LOW,
    raw: dict[str, Any] | None = None,
) -> Alert:
    return Alert(
        source=SOURCE,
        fingerprint=f"{group}-{n}",
        group_key=f"alertmanager:{group}",
        status=status,
        title=f"Refusal rate spiking on {group}",
        severity=severity,
        starts_at=T0 + timedelta(seconds=n),
        description="Refusals above 30 % for 10 minutes: the safety filter may be bypassed.",
        indicators=("safety_filter_bypass",),
        model="support-bot-v2",
        raw=raw if raw is not None else {"n": n},
    )


def delivery(*alerts: Alert, at: int = 0) -> _Delivery:
    body = {"alerts": [a.fingerprint for a in alerts]}
    return _Delivery(
        SOURCE, list(alerts), _by_group(list(alerts)), body, T0 + timedelta(seconds=at)
    )


def storm() -> list[_Delivery]:
    """A declaration, its repeat with two more, a resolved-only group, an escalation."""
    first = [alert("checkout", n) for n in range(3)]
    return [
        delivery(*first, at=0),
        delivery(*first, alert("checkout", 3), alert("checkout", 4), at=1),
        delivery(alert("search", 1, status=AlertStatus.RESOLVED), at=2),
        delivery(alert("checkout", 5, severity=Severity.CRITICAL), at=3),
        delivery(*first, at=4),  # a pure repeat
    ]


def state(engine: Engine) -> dict[str, Any]:
    """What the deliveries left, without ids or times that depend on the order of writes."""
    with engine.connect() as db:
        return {
            "incidents": db.execute(
                select(IncidentRow.number, IncidentRow.severity, IncidentRow.state).order_by(
                    IncidentRow.number
                )
            ).all(),
            "alerts": db.execute(
                select(
                    AlertRow.fingerprint, AlertRow.status, AlertRow.incident_id.is_not(None)
                ).order_by(AlertRow.fingerprint, AlertRow.status)
            ).all(),
            "deliveries": db.execute(
                select(AlertDeliveryRow.alert_count, AlertDeliveryRow.new_alerts).order_by(
                    AlertDeliveryRow.received_at
                )
            ).all(),
            "groups": db.execute(
                select(
                    AlertGroupRow.group_key,
                    AlertGroupRow.generation,
                    AlertGroupRow.alert_count,
                    AlertGroupRow.pending_firing,
                    AlertGroupRow.pending_resolved,
                    AlertGroupRow.incident_id.is_not(None),
                ).order_by(AlertGroupRow.group_key)
            ).all(),
            # The lines the alerts wrote, in the order the timeline shows them.
            "alert_lines": db.scalars(
                select(TimelineEventRow.kind)
                .where(TimelineEventRow.kind.in_(["alerts_received", "severity_changed"]))
                .order_by(TimelineEventRow.occurred_at, TimelineEventRow.id)
            ).all(),
            "received_events": db.scalar(
                select(func.count())
                .select_from(TimelineEventRow)
                .where(TimelineEventRow.kind == "alerts_received")
            ),
        }


def summary(outcomes: list[Ingested | BaseException]) -> list[tuple[int, int, int, int]]:
    return [
        (o.received, o.new, len(o.declared), len(o.escalations))
        for o in outcomes
        if isinstance(o, Ingested)
    ]


EXPECTED = [(3, 3, 1, 0), (5, 2, 0, 0), (1, 1, 0, 0), (1, 1, 0, 1), (3, 0, 0, 0)]


def assert_the_storm_was_recorded(outcomes: list[Ingested | BaseException], engine: Engine) -> None:
    assert all(isinstance(o, Ingested) for o in outcomes)
    assert summary(outcomes) == EXPECTED
    recorded = state(engine)
    assert recorded["incidents"] == [(1, "critical", "declared")]  # escalated by the fourth
    assert recorded["deliveries"] == [(3, 3), (5, 2), (1, 1), (1, 1), (3, 0)]
    # checkout: declared by the first (its 3 told by the card), then 2 + 1 firing to tell;
    # search: a resolved alert with no incident is evidence only.
    assert recorded["groups"] == [
        ("alertmanager:checkout", 1, 6, 3, 0, True),
        ("alertmanager:search", 0, 1, 0, 0, False),
    ]
    assert recorded["received_events"] == 2
    # The alerts come before the escalation they caused.
    assert recorded["alert_lines"] == ["alerts_received", "alerts_received", "severity_changed"]
    assert len(recorded["alerts"]) == 7


def test_a_batch_records_what_one_delivery_at_a_time_would(app: Warroom, engine: Engine) -> None:
    # The writer's batch entry point, called directly so the batch is exactly these five.
    assert_the_storm_was_recorded(app.alerts._write(storm()), engine)


def test_the_same_deliveries_one_by_one_leave_the_same_state(app: Warroom, engine: Engine) -> None:
    assert_the_storm_was_recorded([app.alerts._write([one])[0] for one in storm()], engine)


def test_a_delivery_that_cannot_be_stored_fails_alone(app: Warroom, engine: Engine) -> None:
    unstorable = alert("billing", 1, raw={"value": object()})  # not JSON
    batch = [delivery(alert("checkout", 1)), delivery(unstorable), delivery(alert("search", 1))]

    outcomes = app.alerts._write(batch)

    assert isinstance(outcomes[0], Ingested) and outcomes[0].new == 1
    assert isinstance(outcomes[1], Exception)
    assert isinstance(outcomes[2], Ingested) and outcomes[2].new == 1
    with engine.connect() as db:
        fingerprints = set(db.scalars(select(AlertRow.fingerprint)))
        assert fingerprints == {"checkout-1", "search-1"}
        assert db.scalar(select(func.count()).select_from(AlertDeliveryRow)) == 2


def test_a_database_that_is_down_fails_every_delivery_of_the_batch_as_unavailable(
    emulator: SlackEmulator, config: WarroomConfig
) -> None:
    unreachable = build_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    down = create_app(make_settings(emulator), config, engine=unreachable)
    try:
        outcomes = down.alerts._write(
            [delivery(alert("checkout", 1)), delivery(alert("search", 1))]
        )
    finally:
        down.close()

    assert [type(o) for o in outcomes] == [StorageUnavailableError, StorageUnavailableError]


def test_concurrent_ingests_share_batches_and_each_gets_its_own_answer(
    app: Warroom, engine: Engine
) -> None:
    import threading

    groups = [f"svc-{g}" for g in range(8)]
    answers: dict[int, Ingested] = {}
    start = threading.Barrier(len(groups) * 4)

    def send(index: int) -> None:
        group = groups[index % len(groups)]
        start.wait()
        answers[index] = app.alerts.ingest(SOURCE, [alert(group, index)], {"i": index})

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(groups) * 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(answers) == 32 and all(a.new == 1 for a in answers.values())
    assert sum(len(a.declared) for a in answers.values()) == len(groups)
    with engine.connect() as db:
        assert db.scalar(select(func.count()).select_from(IncidentRow)) == len(groups)
        assert db.scalar(select(func.count()).select_from(AlertRow)) == 32
        assert db.scalar(select(func.count()).select_from(AlertDeliveryRow)) == 32
    # Fewer transactions than deliveries whenever senders overlapped; never more.
    assert app.alerts.batches_written <= 32
