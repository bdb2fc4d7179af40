"""Times are stored in UTC as the clock says, and the critical alarm's notification row
carries its immediate-tier deadline (frozen clock, real database, emulated Slack)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine

from bot.classifier import build_classifier
from bot.clock import SystemClock
from bot.config import WarroomConfig
from bot.domain.incident import Declaration
from bot.domain.vocabulary import IncidentSource, Severity
from bot.emulator.server import SlackEmulator
from bot.rendering import Renderer
from bot.services.incidents import IncidentService
from bot.services.war_room import WarRoomService
from bot.slack_gateway import SlackGateway, build_web_client
from storage.unit_of_work import UnitOfWorkFactory

pytestmark = pytest.mark.integration

CLASSIFIER = build_classifier()


def test_critical_declaration_records_the_executive_notice_with_its_deadline(
    engine: Engine, emulator: SlackEmulator, config: WarroomConfig
) -> None:
    uow = UnitOfWorkFactory(engine)
    clock = SystemClock()
    incidents = IncidentService(uow=uow, clock=clock, config=config, classifier=CLASSIFIER)
    war_rooms = WarRoomService(
        uow=uow,
        slack=SlackGateway(build_web_client(token="xoxb-t", base_url=emulator.api_url)),
        renderer=Renderer(),
        config=config,
        clock=clock,
    )
    with freeze_time("2026-11-26 09:00:00") as frozen:
        incident = incidents.declare(
            Declaration(
                title="Model leaking card numbers",
                severity=Severity.CRITICAL,
                reporter_id="U0REPORTER",
                source=IncidentSource.SLASH_COMMAND,
                dedup_key="clock:1",
            )
        ).incident
        frozen.tick(timedelta(seconds=42))
        assert war_rooms.open_war_room(incident.id)

    declared = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    assert incident.declared_at == declared
    status = incidents.status(incident.id)
    assert status.incident.war_room_opened_at == declared + timedelta(seconds=42)
    with uow(read_only=True) as unit:
        [notice] = [
            n
            for n in unit.notifications.list_for(incident.id)
            if n.audience.value == "executive_team"
        ]
    assert notice.due_at == declared + timedelta(minutes=15)
    assert notice.sent_at == declared + timedelta(seconds=42)
    assert notice.sent_at.tzinfo is not None
    assert notice.outcome is not None and notice.outcome.value == "met"
