"""Repositories and the unit of work on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, inspect
from sqlalchemy.exc import OperationalError

from bot.classifier import build_classifier
from bot.clock import SystemClock
from bot.config import WarroomConfig
from bot.domain.incident import Declaration
from bot.domain.ledger import Claim
from bot.domain.vocabulary import (
    Audience,
    IncidentSource,
    IncidentState,
    IncidentType,
    NotificationTier,
    Role,
    Severity,
)
from bot.services.incidents import IncidentService
from storage.db import is_up_to_date, ping
from storage.read_queries import ReadQueries
from storage.unit_of_work import UnitOfWorkFactory

pytestmark = pytest.mark.integration

CLASSIFIER = build_classifier()

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def declaration(key: str, title: str = "Jailbreak in support bot") -> Declaration:
    return Declaration(
        title=title,
        severity=Severity.HIGH,
        reporter_id="U0REPORTER",
        source=IncidentSource.SLASH_COMMAND,
        dedup_key=key,
    )


def test_migrations_reach_head_and_create_every_table(engine: Engine) -> None:
    assert is_up_to_date(engine)
    tables = set(inspect(engine).get_table_names())
    assert {
        "incidents",
        "role_assignments",
        "timeline_events",
        "outbound_messages",
        "notifications",
        "alembic_version",
    } <= tables


def test_a_declaration_is_stored_with_number_rota_and_timeline(
    engine: Engine, config: WarroomConfig
) -> None:
    service = IncidentService(
        uow=UnitOfWorkFactory(engine), clock=SystemClock(), config=config, classifier=CLASSIFIER
    )
    result = service.declare(declaration("slash:1"))

    incident = result.incident
    assert result.created
    assert incident.number == 1
    assert incident.state is IncidentState.DECLARED
    assert incident.incident_type is IncidentType.JAILBREAK_ATTEMPT
    assert incident.declared_at.tzinfo is not None
    assert incident.declared_at.utcoffset() == timedelta(0)
    assert incident.holder(Role.INCIDENT_COMMANDER) == "U0COMMANDER"
    assert len(incident.roles) == 6
    with UnitOfWorkFactory(engine)() as uow:
        kinds = [event["kind"] for event in uow.timeline.list_for(incident.id)]
    assert kinds == ["declared", "classified"] + ["role_assigned"] * 6


def test_the_same_request_declares_once_and_numbers_increase(
    engine: Engine, config: WarroomConfig
) -> None:
    service = IncidentService(
        uow=UnitOfWorkFactory(engine), clock=SystemClock(), config=config, classifier=CLASSIFIER
    )
    first = service.declare(declaration("slash:A"))
    again = service.declare(declaration("slash:A"))
    second = service.declare(declaration("slash:B"))
    assert again.incident.id == first.incident.id
    assert not again.created
    assert second.incident.number == first.incident.number + 1


def test_concurrent_declarations_get_distinct_numbers_and_duplicates_collapse(
    engine: Engine, config: WarroomConfig
) -> None:
    service = IncidentService(
        uow=UnitOfWorkFactory(engine), clock=SystemClock(), config=config, classifier=CLASSIFIER
    )
    results: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def declare(key: str) -> None:
        try:
            incident = service.declare(declaration(key)).incident
            with lock:
                results.append(incident.number)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    keys = [f"slash:{i % 6}" for i in range(18)]  # 6 distinct requests, each delivered 3 times
    threads = [threading.Thread(target=declare, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(set(results)) == [1, 2, 3, 4, 5, 6]
    assert len(service.list_open()) == 6


def test_a_side_effect_is_claimed_once_until_it_fails_or_goes_stale(engine: Engine) -> None:
    uow = UnitOfWorkFactory(engine)
    service = IncidentService(
        uow=uow, clock=SystemClock(), config=WarroomConfig(), classifier=CLASSIFIER
    )
    incident_id = service.declare(declaration("slash:claim")).incident.id
    stale = T0 - timedelta(minutes=10)

    def claim(now: datetime = T0, stale_before: datetime = stale, tries: int = 3) -> Claim:
        with uow() as unit:
            outcome = unit.outbound.claim(
                incident_id, "card", now=now, stale_before=stale_before, max_attempts=tries
            )
            unit.commit()
        return outcome

    def fail() -> None:
        with uow() as unit:
            unit.outbound.mark_failed(incident_id, "card", error="ratelimited")
            unit.commit()

    assert claim() is Claim.CLAIMED
    assert claim() is Claim.BUSY  # held by a live worker
    fail()
    assert claim() is Claim.CLAIMED  # a failure may be retried
    later = T0 + timedelta(minutes=11)
    assert (
        claim(later, later - timedelta(minutes=10)) is Claim.RECOVERED
    )  # its worker died: look first
    fail()
    assert claim(later, later - timedelta(minutes=10)) is Claim.EXHAUSTED  # 3 attempts made
    assert claim(later, later - timedelta(minutes=10), tries=4) is Claim.CLAIMED
    with uow() as unit:
        unit.outbound.mark_sent(incident_id, "card", now=later, channel_id="C1", ts="1.1")
        unit.commit()
    assert claim(later + timedelta(days=1), later + timedelta(hours=1), tries=9) is Claim.DONE
    with uow() as unit:
        assert unit.outbound.sent(incident_id, "card") == {"channel_id": "C1", "ts": "1.1"}


def test_only_one_worker_holds_the_war_room_lease(engine: Engine) -> None:
    uow = UnitOfWorkFactory(engine)
    service = IncidentService(
        uow=uow, clock=SystemClock(), config=WarroomConfig(), classifier=CLASSIFIER
    )
    incident_id = service.declare(declaration("slash:lease")).incident.id
    with uow() as unit:
        assert unit.incidents.take_war_room_lease(
            incident_id, now=T0, until=T0 + timedelta(minutes=5)
        )
        unit.commit()
    with uow() as unit:
        assert not unit.incidents.take_war_room_lease(
            incident_id, now=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=6)
        )
        assert unit.incidents.take_war_room_lease(
            incident_id, now=T0 + timedelta(minutes=6), until=T0 + timedelta(minutes=11)
        )
        unit.incidents.mark_war_room_opened(incident_id, now=T0)
        unit.commit()
    with uow() as unit:
        assert not unit.incidents.take_war_room_lease(
            incident_id, now=T0 + timedelta(hours=1), until=T0 + timedelta(hours=2)
        )
        assert unit.incidents.list_without_war_room() == []


def test_an_uncommitted_unit_of_work_changes_nothing(engine: Engine) -> None:
    uow = UnitOfWorkFactory(engine)
    with uow() as unit:
        number = unit.incidents.next_number()
        unit.incidents.add(
            declaration("slash:rollback"),
            number=number,
            classification=CLASSIFIER.classify(title="Chatbot leaking PII"),
            now=T0,
        )
    with uow() as unit:
        assert unit.incidents.get_by_dedup_key("slash:rollback") is None


def test_role_changes_and_notifications_are_recorded(engine: Engine, config: WarroomConfig) -> None:
    uow = UnitOfWorkFactory(engine)
    service = IncidentService(uow=uow, clock=SystemClock(), config=config, classifier=CLASSIFIER)
    incident = service.declare(declaration("slash:roles")).incident
    change = service.assign_role(
        incident_id=incident.id, role=Role.LEGAL_ADVISOR, user_id="U0NEWLEGAL", actor_id="U0IC"
    )
    assert change.previous_id == "U0LEGAL"
    assert change.incident.holder(Role.LEGAL_ADVISOR) == "U0NEWLEGAL"
    with uow() as unit:
        unit.notifications.record_sent(
            incident.id, Audience.EXECUTIVE_TEAM, NotificationTier.IMMEDIATE, due_at=T0, now=T0
        )
        unit.notifications.record_sent(
            incident.id, Audience.EXECUTIVE_TEAM, NotificationTier.IMMEDIATE, due_at=T0, now=T0
        )
        unit.commit()
    status = service.status(incident.id)
    with uow(read_only=True) as unit:
        executive = [
            n
            for n in unit.notifications.list_for(incident.id)
            if n.audience.value == "executive_team"
        ]
    assert [(n.audience.value, n.state.value) for n in executive] == [("executive_team", "sent")]
    assert status.timeline_count == 9  # declared, classified, 6 rota roles, the hand-over


def test_the_migrations_match_the_models(engine: Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from storage.models import Base

    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_the_open_list_reads_current_rows_newest_first_with_the_total(
    engine: Engine, config: WarroomConfig
) -> None:
    uow = UnitOfWorkFactory(engine)
    service = IncidentService(uow=uow, clock=SystemClock(), config=config, classifier=CLASSIFIER)
    first, second, third = (
        service.declare(declaration(f"slash:list{i}", title=f"Listed {i}")).incident
        for i in range(3)
    )
    listed, total = uow.reads.open_summaries(limit=2)
    assert [s.number for s in listed] == [third.number, second.number]
    assert total == 3
    assert listed[0].title == "Listed 2" and listed[0].severity is Severity.HIGH
    assert listed[0].state is IncidentState.DECLARED and listed[0].channel_id is None
    service.resolve(incident_id=third.id, actor_id="U0IC")
    listed, total = uow.reads.open_summaries(limit=5)
    assert [s.number for s in listed] == [second.number, first.number]
    assert total == 2


def test_a_pooled_connection_used_by_a_read_still_rolls_back_a_unit_of_work(
    engine: Engine, config: WarroomConfig
) -> None:
    uow = UnitOfWorkFactory(engine)
    # The pool hands out its idle connections in turn: every one of them has served a read.
    for _ in range(25):
        uow.reads.open_summaries(limit=1)
    with uow() as unit:
        unit.incidents.add(
            declaration("slash:after-read"),
            number=unit.incidents.next_number(),
            classification=CLASSIFIER.classify(title="Chatbot leaking PII"),
            now=T0,
        )
    with uow() as unit:
        assert unit.incidents.get_by_dedup_key("slash:after-read") is None


def test_a_failed_read_raises_sqlalchemys_error(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables
    try:
        with pytest.raises(OperationalError):
            ReadQueries(engine).open_summaries(limit=1)
        assert ping(engine)  # the pool still hands out connections
    finally:
        engine.dispose()
