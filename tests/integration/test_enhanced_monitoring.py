"""After resolution: 48 hours of enhanced monitoring with check-ins, tighter anomaly
thresholds for the affected models, and a prompt to re-open when a related alert fires
(frozen clock, real database, emulated Slack)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import Engine

from bot.app import Warroom
from bot.domain.alerts import Alert, AlertStatus
from bot.domain.anomaly import Sample
from bot.domain.reminders import ReminderKind
from bot.domain.vocabulary import IncidentSource, IncidentState, Severity
from bot.emulator.server import SlackEmulator
from bot.services.anomalies import AnomalyService
from bot.services.workflow import OpenWarRoom
from storage.unit_of_work import UnitOfWorkFactory
from tests.integration.comms_support import build, comms_config

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
MODEL = "support-bot-v2"


@pytest.fixture
def frozen() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time(T0) as clock:
        yield clock


@pytest.fixture
def app(
    emulator: SlackEmulator, engine: Engine, frozen: FrozenDateTimeFactory
) -> Iterator[Warroom]:
    built = build(emulator, engine, comms_config(audiences={}))
    yield built
    built.close()


def declare_and_resolve(app: Warroom, frozen: FrozenDateTimeFactory) -> int:
    from bot.domain.incident import Declaration

    result = app.workflow.declare(
        Declaration(
            title="Support bot hallucinating refund policies",
            severity=Severity.HIGH,
            reporter_id="U0REPORTER",
            source=IncidentSource.SLASH_COMMAND,
            dedup_key="monitoring:1",
            affected_systems=(MODEL,),
        )
    )
    app.workflow.follow_up(OpenWarRoom(result.incident.id))
    frozen.move_to(T0 + timedelta(hours=3))
    app.workflow.follow_up(
        app.workflow.resolve(incident_id=result.incident.id, actor_id="U0COMMANDER")
    )
    return result.incident.id


def alert(title: str = "Refusal rate spiking on support-bot-v2") -> Alert:
    return Alert(
        source=IncidentSource.GENERIC_WEBHOOK,
        fingerprint="refusals:support-bot-v2",
        group_key="generic:refusals:support-bot-v2",
        status=AlertStatus.FIRING,
        title=title,
        severity=Severity.HIGH,
        starts_at=T0 + timedelta(hours=5),
        model=MODEL,
    )


def test_resolving_starts_48_hours_of_monitoring_with_check_ins(
    app: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    incident_id = declare_and_resolve(app, frozen)
    resolved_at = T0 + timedelta(hours=3)
    with UnitOfWorkFactory(app.engine)(read_only=True) as uow:
        window = uow.recovery.window(incident_id)
        checkins = uow.reminders.pending(incident_id, ReminderKind.CHECKIN)
    assert window is not None and window.ends_at == resolved_at + timedelta(hours=48)
    assert window.models == (MODEL,)
    assert [c.due_at - resolved_at for c in checkins] == [
        timedelta(hours=h) for h in (8, 16, 24, 32, 40, 48)
    ]
    channel = app.workflow.incidents.get(incident_id).channel_id or ""
    frozen.move_to(resolved_at + timedelta(hours=8))
    app.communications.sweep()
    [checkin] = [m for m in emulator.state.messages(channel) if "check-in" in m["text"]]
    text = json.dumps(checkin, ensure_ascii=False)
    assert "40 hours left" in text and "z ≥ 2.01" in text
    frozen.move_to(resolved_at + timedelta(hours=48))
    app.communications.sweep()
    assert any("monitoring ended" in m["text"] for m in emulator.state.messages(channel))
    assert emulator.validation_failures() == []


def test_a_related_alert_in_the_window_prompts_once_and_the_commander_reopens(
    app: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    incident_id = declare_and_resolve(app, frozen)
    channel = app.workflow.incidents.get(incident_id).channel_id or ""
    frozen.move_to(T0 + timedelta(hours=5))
    for _ in range(2):  # the alert fires again: one prompt per window
        outcome = app.alerts.ingest(IncidentSource.GENERIC_WEBHOOK, [alert()], {"test": True})
        app.alerts.follow_up(outcome)
    prompts = [m for m in emulator.state.messages(channel) if "re-open?" in m["text"]]
    assert len(prompts) == 1
    body = json.dumps(prompts[0])
    assert "Refusal rate spiking" in body and "<@U0COMMANDER>" in body
    change = app.workflow.incidents.reopen(incident_id=incident_id, actor_id="U0COMMANDER")
    app.workflow.follow_up(change)
    assert app.workflow.incidents.get(incident_id).state is IncidentState.DECLARED
    assert any("re-opened" in m["text"] for m in emulator.state.messages(channel))
    with UnitOfWorkFactory(app.engine)(read_only=True) as uow:
        assert uow.reminders.pending(incident_id, ReminderKind.CHECKIN) == []
        assert uow.reminders.pending(incident_id, ReminderKind.CADENCE)


def test_an_alert_about_another_model_does_not_prompt(
    app: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    incident_id = declare_and_resolve(app, frozen)
    channel = app.workflow.incidents.get(incident_id).channel_id or ""
    other = Alert(
        source=IncidentSource.GENERIC_WEBHOOK,
        fingerprint="x",
        group_key="generic:x",
        status=AlertStatus.FIRING,
        title="Ranking drift",
        severity=Severity.MEDIUM,
        starts_at=T0,
        model="ranker-v3",
    )
    app.alerts.follow_up(app.alerts.ingest(IncidentSource.GENERIC_WEBHOOK, [other], {}))
    assert not [m for m in emulator.state.messages(channel) if "re-open?" in m["text"]]


def test_anomaly_thresholds_are_tighter_for_a_model_under_monitoring(
    app: Warroom, frozen: FrozenDateTimeFactory
) -> None:
    """The same readings (about 2.5 standard deviations off) raise an anomaly for the model
    under enhanced monitoring (z ≥ 3 × 0.67) and not for another model (z ≥ 3)."""
    declare_and_resolve(app, frozen)
    service = AnomalyService(
        uow=UnitOfWorkFactory(app.engine),
        clock=app.clock,
        rules=app.config.detection.to_rules(),
        alerts=app.alerts,
        watch_factor=app.config.recovery.monitoring_factor,
    )
    now = T0 + timedelta(hours=4)

    def readings(model: str, values: list[float]) -> list[Sample]:
        return [
            Sample(model=model, metric="latency", value=v, timestamp=now + timedelta(seconds=i))
            for i, v in enumerate(values)
        ]

    normal = [100 + 10 * math.sin(i) for i in range(60)]
    spread = (sum((v - 100) ** 2 for v in normal) / len(normal)) ** 0.5
    odd = [100 + 2.5 * spread * 1.05] * 5
    found = {}
    for model in (MODEL, "ranker-v3"):
        for sample in readings(model, normal):
            service.observe([sample], {})
        observed = [service.observe([s], {}) for s in readings(model, odd)]
        found[model] = sum(len(o.anomalies) for o in observed)
    assert found[MODEL] >= 1
    assert found["ranker-v3"] == 0
