"""Drills played headless against the emulator, a real database and a frozen clock: every
shipped scenario scores full marks when played well, a skipped step is named in the report,
and nothing reaches a real audience or starts a regulatory clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import Engine, text

from bot.app import Warroom
from bot.domain.drills import TITLE_MARK, is_drill
from bot.domain.vocabulary import IncidentSource, IncidentType, Severity
from bot.emulator.server import SlackEmulator
from bot.services.drills import DrillService, DrillStarting, packaged_scenarios
from bot.services.workflow import CarryOut
from storage.unit_of_work import UnitOfWorkFactory
from tests.integration.comms_support import (
    AUDIENCE_CHANNELS,
    add_audience_channels,
    build,
    comms_config,
    declare_and_open,
)

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
DRILL_CHANNEL = "C0DRILLS"
REAL_CHANNELS = {*AUDIENCE_CHANNELS.values(), "C0ANNOUNCE", "C0EXEC"}
SCENARIOS = sorted(packaged_scenarios())


@pytest.fixture
def frozen() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time(T0) as clock:
        yield clock


@pytest.fixture
def app(
    emulator: SlackEmulator, sqlite_engine: Engine, frozen: FrozenDateTimeFactory
) -> Iterator[Warroom]:
    add_audience_channels(emulator)
    emulator.state.add_channel("drills", channel_id=DRILL_CHANNEL)
    built = build(emulator, sqlite_engine, comms_config(drill_channel=DRILL_CHANNEL))
    yield built
    built.close()


def drills_of(app: Warroom) -> DrillService:
    assert app.drills is not None
    return app.drills


def start(app: Warroom, scenario: str) -> int:
    service = drills_of(app)
    work = service.start(scenario, actor_id="U0COMMANDER", channel_id="C0ANNOUNCE")
    app.workflow.follow_up(work)
    with UnitOfWorkFactory(app.engine)(read_only=True) as uow:
        incident = uow.incidents.get_by_dedup_key(f"drill:{scenario}:{work.run}")
    assert incident is not None
    return incident.id


def play_to_the_end(app: Warroom, frozen: FrozenDateTimeFactory, scenario: str) -> None:
    """Let the clock run through every inject, a minute at a time."""
    last = packaged_scenarios()[scenario].injects[-1].at
    elapsed = timedelta(0)
    while elapsed <= last:
        frozen.tick(timedelta(minutes=1))
        elapsed += timedelta(minutes=1)
        drills_of(app).play_due()


def contain(app: Warroom, incident_id: int, kinds: tuple[str, ...]) -> None:
    """The commander approves the expected actions of the (possibly automatic) proposal."""
    flow = app.workflow.containment
    proposal = flow.containment.find_latest_proposal(incident_id)
    if proposal is None:
        flow.containment.propose(incident_id, actor="U0COMMANDER")
        proposal = flow.containment.latest_proposal(incident_id)
    for action in proposal.actions:
        if action.kind in kinds and action.state == "proposed":
            decision = flow.containment.decide(action.id, user_id="U0COMMANDER", approve=True)
            app.workflow.follow_up(CarryOut(decision))


def send_every_message(app: Warroom, incident_id: int) -> None:
    """The communications lead sends each planned message before its deadline."""
    with UnitOfWorkFactory(app.engine)(read_only=True) as uow:
        pending = [n.id for n in uow.notifications.list_for(incident_id) if n.state.is_open]
    for notification_id in pending:
        app.communications.notifications.deliver(notification_id, by="U0COMMS", by_hand=True)


def resolve(app: Warroom, incident_id: int) -> None:
    change = app.workflow.resolve(incident_id=incident_id, actor_id="U0COMMANDER")
    app.workflow.follow_up(change)


def real_audience_posts(emulator: SlackEmulator) -> dict[str, int]:
    counts = {channel: len(emulator.state.messages(channel)) for channel in REAL_CHANNELS}
    return {channel: n for channel, n in counts.items() if n}


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_scenario_played_well_scores_full_marks_and_stays_isolated(
    app: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory, name: str
) -> None:
    scenario = packaged_scenarios()[name]
    incident_id = start(app, name)
    incident = app.workflow.incidents.get(incident_id)
    assert is_drill(incident)
    assert incident.title.startswith(TITLE_MARK)
    assert incident.channel_name is not None and incident.channel_name.startswith("inc-1-drill-")
    assert incident.incident_type is scenario.expected_type

    frozen.tick(timedelta(minutes=2))
    contain(app, incident_id, scenario.expected_containment)
    send_every_message(app, incident_id)
    play_to_the_end(app, frozen, name)
    resolve(app, incident_id)

    report = drills_of(app).report(incident_id)
    assert report is not None
    assert [c for c in report.score.checks if not c.passed] == []
    assert report.score.percent == 100
    # Every inject was played into this one drill, none declared a second incident.
    assert [i.id for i in app.workflow.incidents.list_open()] == []
    with UnitOfWorkFactory(app.engine)(read_only=True) as uow:
        assert uow.clocks.list_for(incident_id) == []
        events = [e["kind"] for e in uow.timeline.list_for(incident_id)]
    assert events.count("drill_inject") == len(scenario.injects)
    # Each alert and each metric series raised an alert on this drill (series via the detector).
    with app.engine.connect() as connection:
        sources = connection.execute(
            text("SELECT source FROM alerts WHERE incident_id = :id"), {"id": incident_id}
        ).scalars()
        raised = sorted(set(sources))
    kinds = {i.kind.value for i in scenario.injects}
    assert raised == sorted(
        {"generic_webhook"} | ({"anomaly_detector"} if "metrics" in kinds else set())
    )
    assert "drill_report" in events
    assert real_audience_posts(emulator) == {}
    assert emulator.state.messages(DRILL_CHANNEL)
    card = app.workflow.war_rooms.render_card(app.workflow.incidents.get(incident_id))
    assert "*DRILL*" in str(card["blocks"])
    channel = incident.channel_id or ""
    report_posts = [m for m in emulator.state.messages(channel) if "DRILL report" in m["text"]]
    assert len(report_posts) == 1
    assert emulator.validation_failures() == []


def test_a_skipped_containment_and_a_missed_deadline_are_named_in_the_report(
    emulator: SlackEmulator, sqlite_engine: Engine, frozen: FrozenDateTimeFactory
) -> None:
    add_audience_channels(emulator)
    emulator.state.add_channel("drills", channel_id=DRILL_CHANNEL)
    config = comms_config(drill_channel=DRILL_CHANNEL, notifications={"auto_send": False})
    app = build(emulator, sqlite_engine, config)
    try:
        check_skipped_steps(app, emulator, frozen)
    finally:
        app.close()


def check_skipped_steps(
    app: Warroom, emulator: SlackEmulator, frozen: FrozenDateTimeFactory
) -> None:
    incident_id = start(app, "pii-output-leak")
    play_to_the_end(app, frozen, "pii-output-leak")
    frozen.tick(timedelta(hours=2))
    app.communications.sweep()
    resolve(app, incident_id)

    report = drills_of(app).report(incident_id)
    assert report is not None
    misses = {c.name: c.detail for c in report.score.misses}
    assert misses["Containment: data isolation"] == "data isolation was never approved"
    assert misses["Deadline: Security team (immediate)"] == "not sent (escalated) by the end"
    assert report.score.percent < 100
    channel = app.workflow.incidents.get(incident_id).channel_id or ""
    posted = [m for m in emulator.state.messages(channel) if "DRILL report" in m["text"]][0]
    assert "Containment: data isolation" in str(posted["blocks"])
    assert real_audience_posts(emulator) == {}


def test_a_wrong_classification_is_flagged(app: Warroom, frozen: FrozenDateTimeFactory) -> None:
    scenario = packaged_scenarios()["prompt-leak"]
    service = drills_of(app)
    twisted = replace(scenario, expected_type=IncidentType.DATA_LEAK)
    service._scenarios = {"prompt-leak": twisted}
    incident_id = start(app, "prompt-leak")
    report = service.report(incident_id)
    assert report is not None
    misses = {c.name: c.detail for c in report.score.misses}
    assert misses["Classification"].startswith("classified Prompt injection")


def test_a_drill_without_a_drill_channel_tells_no_one(
    emulator: SlackEmulator, sqlite_engine: Engine, frozen: FrozenDateTimeFactory
) -> None:
    add_audience_channels(emulator)
    app = build(emulator, sqlite_engine, comms_config())
    try:
        incident_id = start(app, "pii-output-leak")
        incident = app.workflow.incidents.get(incident_id)
        assert incident.severity is Severity.CRITICAL
        frozen.tick(timedelta(hours=2))
        app.communications.sweep()
        with UnitOfWorkFactory(app.engine)(read_only=True) as uow:
            states = {n.state.value for n in uow.notifications.list_for(incident_id)}
            assert uow.clocks.list_for(incident_id) == []
        assert "sent" not in states
        assert real_audience_posts(emulator) == {}
    finally:
        app.close()


def test_drills_stay_out_of_the_incident_list(app: Warroom) -> None:
    declare_and_open(app, severity=Severity.HIGH)
    start(app, "model-extraction")
    reads = UnitOfWorkFactory(app.engine).reads
    listed, total = reads.open_summaries(limit=10)
    with_drills, all_total = reads.open_summaries(limit=10, drills=True)
    assert [s.title for s in listed] == ["Support bot leaks customer emails"]
    assert total == 1
    assert all_total == 2


def test_the_postmortem_of_a_drill_ends_with_its_report(
    app: Warroom, frozen: FrozenDateTimeFactory
) -> None:
    incident_id = start(app, "model-extraction")
    resolve(app, incident_id)
    markdown = drills_of(app).report_markdown(incident_id)
    assert markdown is not None and "## Drill report: model-extraction" in markdown
    assert "was never approved" in markdown


def test_listing_and_starting_answer_with_valid_messages(app: Warroom) -> None:
    service = drills_of(app)
    listing = service.scenarios_message()
    assert all(name in listing["text"] for name in SCENARIOS)
    work = service.start("prompt-leak", actor_id="U0COMMANDER", channel_id="C0ANNOUNCE")
    assert isinstance(work, DrillStarting)
    assert "prompt-leak" in service.starting_message(work)["text"]
    from bot.emulator.blockkit import check_message

    assert check_message(listing) == []
    assert check_message(service.starting_message(work)) == []


def test_a_real_incident_is_not_a_drill(app: Warroom) -> None:
    incident = declare_and_open(app, severity=Severity.HIGH)
    assert incident.source is IncidentSource.SLASH_COMMAND
    assert drills_of(app).report(incident.id) is None


def test_the_cli_runner_plays_a_scenario_over_http_into_a_drill(
    emulator: SlackEmulator, sqlite_engine: Engine
) -> None:
    import io
    import time

    from bot.app import create_app
    from bot.drill_cli import main
    from bot.server import BackgroundServer
    from tests.conftest import make_settings

    add_audience_channels(emulator)
    emulator.state.add_channel("drills", channel_id=DRILL_CHANNEL)
    settings = make_settings(emulator, warroom_webhook_token="drill-token")
    app = create_app(settings, comms_config(drill_channel=DRILL_CHANNEL), engine=sqlite_engine)
    server = BackgroundServer(app.asgi).start()
    out = io.StringIO()
    try:
        status = main(
            ["poisoned-retrain", "--url", server.url, "--token", "drill-token", "--run", "cron01"],
            out=out,
            sleep=lambda seconds: None,
        )
        assert status == 0, out.getvalue()
        deadline = time.monotonic() + 10
        incident = None
        while time.monotonic() < deadline:
            incident = next(iter(app.workflow.incidents.list_open()), None)
            if incident is not None and incident.war_room_opened_at is not None:
                break
            time.sleep(0.05)
        assert incident is not None and incident.source is IncidentSource.DRILL
        assert incident.incident_type is IncidentType.DATA_POISONING
        assert len(app.workflow.incidents.list_open()) == 1
        assert "facilitator, post in the war room" in out.getvalue()
        report = drills_of(app).report(incident.id)
        assert report is not None and report.scenario.name == "poisoned-retrain"
        assert real_audience_posts(emulator) == {}
    finally:
        server.stop()
        app.close()
