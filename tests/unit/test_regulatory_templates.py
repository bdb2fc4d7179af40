"""The regulatory/ templates render to valid Block Kit for every clock, typical or worst case."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.incident import Incident, RoleHolder
from bot.domain.regulatory import (
    TO_BE_COMPLETED,
    RegulatoryClock,
    RegulatoryRules,
    ReportField,
    clocks_for,
    draft_report,
    reminder_times,
)
from bot.domain.vocabulary import (
    AiActCase,
    IncidentSource,
    IncidentState,
    IncidentType,
    Role,
    Severity,
)
from bot.emulator.blockkit import MAX_MESSAGE_BLOCKS, check_message
from bot.presenters import incident_context
from bot.regulatory_presenters import (
    clock_context,
    remaining_text,
    reminder_context,
    report_context,
)
from bot.rendering import Renderer

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
RULES = RegulatoryRules()
BUTTON_VALUE = "7:gdpr_art33"


def make_incident(**changes: Any) -> Incident:
    incident = Incident(
        id=7,
        number=12,
        title="Support bot shows other customers' orders",
        description="Customers saw order history that was not theirs.",
        incident_type=IncidentType.DATA_LEAK,
        severity=Severity.CRITICAL,
        state=IncidentState.DECLARED,
        reporter_id="U0REPORTER",
        source=IncidentSource.SLASH_COMMAND,
        declared_at=T0,
        updated_at=T0,
        affected_systems=("support-v2",),
        personal_data=True,
        ai_act_case=AiActCase.SERIOUS,
        channel_id="C0WARROOM",
        channel_name="inc-12-support",
        roles=(RoleHolder(Role.LEGAL_ADVISOR, "U0LEGAL"),),
    )
    return replace(incident, **changes)


WORST_CASE = make_incident(
    title="<script>&" + "very long title " * 30 + "<!channel>",
    description="D" * 5000 + " <@U1> & <!channel> <script>alert(1)</script>",
    affected_systems=tuple(f"model-{i}" * 20 for i in range(40)),
    channel_id=None,
)
INCIDENTS = pytest.mark.parametrize(
    "incident", [make_incident(), WORST_CASE], ids=["typical", "worst-case"]
)
MEASURES = ["Safe mode on support-v2", "<!here> revoke & rotate keys " * 200]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def clocks(incident: Incident) -> tuple[RegulatoryClock, ...]:
    found = clocks_for(incident, aware_at=T0, rules=RULES)
    assert len(found) == 2
    return found


def render_report(
    renderer: Renderer,
    incident: Incident,
    clock: RegulatoryClock,
    *,
    now: datetime,
    submitted: bool = False,
    legal_advisor_id: str | None = "U0LEGAL",
    fields: list[ReportField] | None = None,
) -> dict[str, Any]:
    if fields is None:
        fields = list(
            draft_report(incident, clock, contact="dpo@example.com", measures=MEASURES, now=now)
        )
    return renderer.render(
        "regulatory/report",
        incident=incident_context(incident),
        clock=clock_context(
            clock,
            now=now,
            submitted_by="U0LEGAL" if submitted else None,
            submitted_at=now if submitted else None,
        ),
        fields=report_context(fields),
        button_value=BUTTON_VALUE,
        legal_advisor_id=legal_advisor_id,
    )


def render_reminder(
    renderer: Renderer,
    incident: Incident,
    clock: RegulatoryClock,
    *,
    now: datetime,
    legal_advisor_id: str | None = "U0LEGAL",
) -> dict[str, Any]:
    return renderer.render(
        "regulatory/reminder",
        incident=incident_context(incident),
        clock=clock_context(clock, now=now),
        reminder=reminder_context(reminder_times(clock, RULES)[0]),
        legal_advisor_id=legal_advisor_id,
    )


def actions_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in message["blocks"] if b["type"] == "actions"]


@INCIDENTS
@pytest.mark.parametrize("submitted", [False, True], ids=["open", "submitted"])
@pytest.mark.parametrize("legal_advisor_id", ["U0LEGAL", None], ids=["advisor", "no-advisor"])
@pytest.mark.parametrize("late", [False, True], ids=["in-time", "late"])
def test_every_report_passes_block_kit_validation(
    renderer: Renderer,
    incident: Incident,
    submitted: bool,
    legal_advisor_id: str | None,
    late: bool,
) -> None:
    for clock in clocks(incident):
        now = clock.due_at + timedelta(hours=3) if late else T0 + timedelta(hours=5)
        message = render_report(
            renderer,
            incident,
            clock,
            now=now,
            submitted=submitted,
            legal_advisor_id=legal_advisor_id,
        )
        assert check_message(message) == [], clock.regime
        assert message["text"]
        assert len(message["blocks"]) <= MAX_MESSAGE_BLOCKS


@INCIDENTS
@pytest.mark.parametrize("legal_advisor_id", ["U0LEGAL", None], ids=["advisor", "no-advisor"])
@pytest.mark.parametrize("late", [False, True], ids=["in-time", "late"])
def test_every_reminder_passes_block_kit_validation(
    renderer: Renderer, incident: Incident, legal_advisor_id: str | None, late: bool
) -> None:
    for clock in clocks(incident):
        now = clock.due_at + timedelta(hours=3) if late else T0 + timedelta(hours=5)
        message = render_reminder(
            renderer, incident, clock, now=now, legal_advisor_id=legal_advisor_id
        )
        assert check_message(message) == [], clock.regime
        assert message["text"]


def test_every_template_in_regulatory_is_covered_by_these_tests(renderer: Renderer) -> None:
    names = {name for name in renderer.template_names() if name.startswith("regulatory/")}
    assert names == {"regulatory/report", "regulatory/reminder"}


def test_an_open_report_offers_one_mark_submitted_button(renderer: Renderer) -> None:
    incident = make_incident()
    gdpr = clocks(incident)[0]
    message = render_report(renderer, incident, gdpr, now=T0 + timedelta(hours=1))
    [actions] = actions_blocks(message)
    assert actions["block_id"] == "regulatory_actions"
    [button] = actions["elements"]
    assert button["action_id"] == "regulatory_mark_submitted"
    assert button["style"] == "primary"
    assert button["value"] == BUTTON_VALUE
    text = json.dumps(message)
    for expected in (
        "GDPR Art. 33(1)",
        "the supervisory authority",
        "<!date^",
        "2 days 23 hours left",
    ):
        assert expected in text


def test_a_submitted_report_says_who_submitted_it_and_offers_no_button(
    renderer: Renderer,
) -> None:
    incident = make_incident()
    gdpr = clocks(incident)[0]
    message = render_report(renderer, incident, gdpr, now=T0 + timedelta(hours=80), submitted=True)
    assert actions_blocks(message) == []
    text = json.dumps(message)
    assert "Submitted by <@U0LEGAL> at <!date^" in text
    assert "after the deadline" in text


def test_unknown_fields_are_visibly_marked_for_the_legal_advisor(renderer: Renderer) -> None:
    incident = make_incident()
    for clock in clocks(incident):
        now = T0 + timedelta(hours=1)
        fields = draft_report(incident, clock, contact="", measures=[], now=now)
        message = render_report(renderer, incident, clock, now=now, fields=list(fields))
        unknown = [f for f in fields if not f.known]
        marked = json.dumps(message).count(f":warning: _{TO_BE_COMPLETED}_")
        assert unknown and marked == len(unknown)


def test_user_text_cannot_mention_or_inject_markup(renderer: Renderer) -> None:
    for clock in clocks(WORST_CASE):
        for message in (
            render_report(renderer, WORST_CASE, clock, now=T0),
            render_reminder(renderer, WORST_CASE, clock, now=T0),
        ):
            text = json.dumps(message)
            for raw in ("<!channel>", "<!here>", "<script>", "<@U1>"):
                assert raw not in text


def test_many_fields_share_sections_to_stay_within_50_blocks(renderer: Renderer) -> None:
    incident = make_incident()
    clock = clocks(incident)[1]
    fields = [ReportField(f"f{i}", f"Field {i}", "x" * 3000, known=i % 2 == 0) for i in range(130)]
    message = render_report(renderer, incident, clock, now=T0, fields=fields)
    assert check_message(message) == []
    assert "Field 129" in json.dumps(message)


def test_a_reminder_says_which_clock_how_long_is_left_and_where_the_draft_is(
    renderer: Renderer,
) -> None:
    incident = make_incident()
    gdpr = clocks(incident)[0]
    message = render_reminder(renderer, incident, gdpr, now=T0 + timedelta(hours=36))
    text = message["blocks"][0]["text"]["text"]
    for expected in (
        "<@U0LEGAL>",
        "half the time has gone",
        "GDPR personal data breach notification",
        "36 hours left",
        "<#C0WARROOM>",
        "Mark submitted",
    ):
        assert expected in text


@pytest.mark.parametrize(
    ("left", "text"),
    [
        (timedelta(days=2, hours=5, minutes=30), "2 days 5 hours left"),
        (timedelta(hours=24), "24 hours left"),
        (timedelta(seconds=10), "less than a minute left"),
        (timedelta(0), "due now"),
        (-timedelta(hours=3), "overdue by 3 hours"),
    ],
)
def test_remaining_time_reads_as_time_left_or_overdue(left: timedelta, text: str) -> None:
    assert remaining_text(T0 + left, now=T0) == text


def test_clock_context_reports_submission(renderer: Renderer) -> None:
    clock = clocks(make_incident())[0]
    open_clock = clock_context(clock, now=T0)
    done = clock_context(clock, now=T0, submitted_by="U0LEGAL", submitted_at=T0 + timedelta(days=1))
    assert (open_clock["submitted"], open_clock["overdue"]) == (False, False)
    assert (done["submitted"], done["submitted_by"], done["submitted_late"]) == (
        True,
        "U0LEGAL",
        False,
    )
