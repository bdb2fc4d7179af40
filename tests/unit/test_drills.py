"""Drill scenarios load and validate; scoring gives full marks for a perfect record and names
every miss; the drill marker survives the trip through alerts; drill messages are valid."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest

from bot.domain.drills import (
    CheckResult,
    ContainmentDone,
    DeadlineDone,
    DrillRecord,
    as_drill,
    audience_channels,
    drill_marker,
    drill_of_alert,
    marked_title,
    parse_marker,
    score_drill,
)
from bot.domain.incident import Declaration, Incident
from bot.domain.vocabulary import (
    IncidentSource,
    IncidentState,
    IncidentType,
    Severity,
)
from bot.emulator.blockkit import check_message
from bot.errors import ConfigurationError
from bot.rendering import Renderer
from bot.services.drills import packaged_scenarios, parse_scenario

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
SCENARIO_FILES = sorted(
    entry.name
    for entry in resources.files("bot").joinpath("data", "scenarios").iterdir()
    if entry.name.endswith(".yaml")
)

MINIMAL = """
name: tiny
title: Tiny
description: A tiny drill.
expected: {type: prompt_injection, containment: [safe_mode]}
targets: {declare_within: 5m, contain_within: 30m}
injects:
  - at: 0s
    alert: {title: Canary seen, indicators: [system_prompt_leak]}
"""


@pytest.mark.parametrize("file_name", SCENARIO_FILES)
def test_every_shipped_scenario_loads(file_name: str) -> None:
    text = resources.files("bot").joinpath("data", "scenarios", file_name).read_text()
    scenario = parse_scenario(text, source=file_name)
    assert scenario.name == file_name.removesuffix(".yaml")
    assert scenario.injects[0].at == timedelta(0)
    assert scenario.learning_goals


def test_six_scenarios_cover_the_main_ai_incident_types() -> None:
    types = {s.expected_type for s in packaged_scenarios().values()}
    assert {
        IncidentType.PROMPT_INJECTION,
        IncidentType.JAILBREAK_ATTEMPT,
        IncidentType.DATA_POISONING,
        IncidentType.MODEL_EXTRACTION,
        IncidentType.HALLUCINATION_CASCADE,
        IncidentType.DATA_LEAK,
    } <= types


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (MINIMAL + "surprise: 1\n", "surprise"),
        (MINIMAL.replace("title: Canary seen", "title: Canary seen, colour: red"), "colour"),
        (MINIMAL.replace("safe_mode", "unplug"), "unknown containment action"),
        (MINIMAL.replace("prompt_injection", "gremlins"), "expected.type"),
        (MINIMAL.replace("name: tiny", "name: Tiny Drill"), "name"),
        (
            MINIMAL.replace(
                "    alert: {title: Canary seen, indicators: [system_prompt_leak]}",
                "    message: hello",
            ),
            "first inject must be an alert",
        ),
        (MINIMAL + "  - at: 0s\n    message: a\n    alert: {title: b}\n", "exactly one"),
        (
            MINIMAL.replace("severity", "x") + "  - at: 5m\n    alert: {title: t, severity: x}\n",
            "alert inject",
        ),
    ],
)
def test_bad_scenarios_are_refused_naming_the_problem(change: str, complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint):
        parse_scenario(change, source="bad.yaml")


def test_injects_must_be_in_time_order() -> None:
    text = MINIMAL + "  - at: 10m\n    message: later\n  - at: 5m\n    message: earlier\n"
    with pytest.raises(ConfigurationError, match="time order"):
        parse_scenario(text, source="bad.yaml")


# -- scoring ---------------------------------------------------------------------------


def perfect_record(**changes: object) -> DrillRecord:
    record = DrillRecord(
        first_inject_at=T0,
        declared_at=T0 + timedelta(seconds=2),
        incident_type=IncidentType.PROMPT_INJECTION,
        containment=(ContainmentDone("safe_mode", "manual_done", T0 + timedelta(minutes=10)),),
        deadlines=(
            DeadlineDone(
                "executive_team",
                "immediate",
                T0 + timedelta(minutes=15),
                T0 + timedelta(minutes=5),
                "sent",
            ),
            DeadlineDone("technical_team", "standard", T0 + timedelta(hours=24), None, "pending"),
        ),
        resolved_at=T0 + timedelta(hours=2),
        ended_at=T0 + timedelta(hours=2),
    )
    return replace(record, **changes)  # type: ignore[arg-type]


def tiny() -> object:
    return parse_scenario(MINIMAL, source="tiny.yaml")


def test_a_perfect_record_gets_full_marks_and_not_yet_due_messages_do_not_count() -> None:
    score = score_drill(tiny(), perfect_record())  # type: ignore[arg-type]
    assert score.percent == 100
    assert score.misses == ()
    assert [c.name for c in score.checks] == [
        "Time to declare",
        "Classification",
        "Containment: safe mode",
        "Deadline: Executive team (immediate)",
    ]


@pytest.mark.parametrize(
    ("changes", "name", "detail"),
    [
        (
            {"declared_at": T0 + timedelta(minutes=12)},
            "Time to declare",
            "declared 12 min after the first inject (target 5 min)",
        ),
        (
            {"incident_type": IncidentType.DATA_LEAK},
            "Classification",
            "classified Data leak; the scenario is Prompt injection",
        ),
        ({"containment": ()}, "Containment: safe mode", "safe mode was never approved"),
        (
            {"containment": (ContainmentDone("safe_mode", "rejected", None),)},
            "Containment: safe mode",
            "safe mode was never approved",
        ),
        (
            {"containment": (ContainmentDone("safe_mode", "approved", T0 + timedelta(hours=1)),)},
            "Containment: safe mode",
            "safe mode approved 59 min after declaring (target 30 min)",
        ),
        (
            {
                "deadlines": (
                    DeadlineDone(
                        "executive_team",
                        "immediate",
                        T0 + timedelta(minutes=15),
                        T0 + timedelta(minutes=40),
                        "sent",
                    ),
                )
            },
            "Deadline: Executive team (immediate)",
            "sent 25 min late",
        ),
        (
            {
                "deadlines": (
                    DeadlineDone(
                        "security_team", "immediate", T0 + timedelta(minutes=15), None, "escalated"
                    ),
                )
            },
            "Deadline: Security team (immediate)",
            "not sent (escalated) by the end",
        ),
        (
            {"regulatory_clocks": 1},
            "No regulatory clock",
            "1 regulatory clock(s) started for a drill",
        ),
    ],
)
def test_each_skipped_step_is_named(changes: dict[str, object], name: str, detail: str) -> None:
    score = score_drill(tiny(), perfect_record(**changes))  # type: ignore[arg-type]
    assert {c.name: c.detail for c in score.misses} == {name: detail}
    assert score.percent < 100


def test_a_resolution_target_is_scored_when_the_scenario_sets_one() -> None:
    scenario = parse_scenario(
        MINIMAL.replace("contain_within: 30m}", "contain_within: 30m, resolve_within: 1h}"),
        source="tiny.yaml",
    )
    score = score_drill(scenario, perfect_record())
    assert [c.result for c in score.checks if c.name == "Resolution"] == [CheckResult.MISSED]


# -- marking ---------------------------------------------------------------------------


def test_the_drill_marker_round_trips_through_fingerprints_models_and_keys() -> None:
    marker = drill_marker("prompt-leak", "ab12cd34")
    assert parse_marker(marker) == ("prompt-leak", "ab12cd34")
    assert drill_of_alert("anomaly:x", "drill:prompt-leak:ab12cd34:bot", ()) == marker
    assert drill_of_alert("generic:abc", "support-bot", ("support-chat",)) is None
    assert parse_marker("drillsergeant:x:y") is None


def test_a_drill_declaration_is_marked_and_keyed_by_its_run() -> None:
    declaration = Declaration(
        title="Canary seen",
        severity=Severity.HIGH,
        reporter_id="generic_webhook",
        source=IncidentSource.GENERIC_WEBHOOK,
        dedup_key="alerts:1:1",
    )
    drill = as_drill(declaration, drill_marker("tiny", "run1"))
    assert drill.title == "[DRILL] Canary seen"
    assert marked_title(drill.title) == drill.title
    assert drill.source is IncidentSource.DRILL
    assert drill.dedup_key == "drill:tiny:run1"


def incident(source: IncidentSource) -> Incident:
    return Incident(
        id=1,
        number=1,
        title="[DRILL] Canary seen",
        description="",
        incident_type=IncidentType.PROMPT_INJECTION,
        severity=Severity.HIGH,
        state=IncidentState.DECLARED,
        reporter_id="U0X",
        source=source,
        declared_at=T0,
        updated_at=T0,
        channel_id="C0ROOM",
    )


def test_a_drill_audience_message_goes_only_to_the_drill_channel() -> None:
    real = ["C0EXEC"]
    drill = incident(IncidentSource.DRILL)
    assert audience_channels(real, drill_channel="C0DRILL", incident=drill) == ["C0DRILL"]
    assert audience_channels(real, drill_channel=None, incident=drill) == []
    other = incident(IncidentSource.SLASH_COMMAND)
    assert audience_channels(real, drill_channel="C0DRILL", incident=other) == real


def test_drill_messages_are_valid_block_kit() -> None:
    from bot.domain.drills import Check, DrillScore
    from bot.presenters import incident_context
    from bot.services.drills import DrillReport, _report_context, _scenario_context

    renderer = Renderer()
    scenario = packaged_scenarios()["prompt-leak"]
    room = incident(IncidentSource.DRILL)
    score = DrillScore(
        "prompt-leak",
        (
            Check("Time to declare", CheckResult.MET, "declared 0 s after the first inject"),
            Check("Containment: safe mode", CheckResult.MISSED, "safe mode was never approved"),
            Check("Deadline: PR team (immediate)", CheckResult.PENDING, "not sent"),
        ),
    )
    report = _report_context(DrillReport(incident=room, scenario=scenario, score=score))
    context = _scenario_context(scenario)
    messages = [
        renderer.render("drills/report", **report),
        renderer.render(
            "drills/briefing",
            incident=incident_context(room),
            scenario=context,
            drill_channel="C0DRILL",
        ),
        renderer.render(
            "drills/inject", incident=incident_context(room), text="Hello", index=2, total=4
        ),
        renderer.render(
            "drills/scenarios",
            scenarios=[_scenario_context(s) for s in packaged_scenarios().values()],
            drill_channel=None,
        ),
        renderer.render("drills/starting", scenario=context, run="ab12", drill_channel=None),
    ]
    for message in messages:
        assert check_message(message) == []
    assert "1 of 3 targets met" in messages[0]["text"]
    markdown = renderer.render_text("drills/report.md", **report)
    assert "### What was missed" in markdown and "safe mode was never approved" in markdown
