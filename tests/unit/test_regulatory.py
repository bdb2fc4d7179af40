"""The legal clocks: which run, when they are due, when to remind, and the draft report."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.config import parse_config
from bot.domain.incident import Incident
from bot.domain.regulatory import (
    GDPR_CASE,
    TO_BE_COMPLETED,
    RegulatoryClock,
    RegulatoryRules,
    clocks_for,
    describe_clock,
    describe_duration,
    draft_report,
    regulatory_clock_applies,
    reminder_times,
    replan_clocks,
)
from bot.domain.vocabulary import (
    AiActCase,
    IncidentSource,
    IncidentState,
    IncidentType,
    RegulatoryRegime,
    Severity,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
LATER = T0 + timedelta(hours=5)
RULES = RegulatoryRules()
GDPR, AI_ACT = RegulatoryRegime.GDPR_ART33, RegulatoryRegime.EU_AI_ACT_ART73
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def make_incident(**changes: Any) -> Incident:
    incident = Incident(
        id=3,
        number=41,
        title="Assistant reveals other customers' addresses",
        description="Answers quoted delivery addresses from other accounts.",
        incident_type=IncidentType.DATA_LEAK,
        severity=Severity.HIGH,
        state=IncidentState.DECLARED,
        reporter_id="U0REPORTER",
        source=IncidentSource.MODAL,
        declared_at=T0,
        updated_at=T0,
        affected_systems=("support-assistant", "retrieval-index"),
    )
    return replace(incident, **changes)


def only(clocks: tuple[RegulatoryClock, ...]) -> RegulatoryClock:
    assert len(clocks) == 1, clocks
    return clocks[0]


# --- clocks -------------------------------------------------------------------------------


def test_a_personal_data_breach_runs_the_gdpr_clock_for_72_hours_from_awareness() -> None:
    clock = only(clocks_for(make_incident(personal_data=True), aware_at=LATER, rules=RULES))
    assert clock.regime is GDPR
    assert clock.case == GDPR_CASE
    assert clock.started_at == LATER
    assert clock.due_at == LATER + timedelta(hours=72)
    assert clock.legal_basis == "GDPR Art. 33(1)"
    assert clock.authority == "the supervisory authority"


@pytest.mark.parametrize(
    ("case", "window", "basis"),
    [
        (AiActCase.SERIOUS, timedelta(days=15), "EU AI Act Art. 73(2)"),
        (AiActCase.DEATH, timedelta(days=10), "EU AI Act Art. 73(4)"),
        (AiActCase.WIDESPREAD, timedelta(days=2), "EU AI Act Art. 73(3)"),
    ],
)
def test_each_ai_act_case_runs_its_own_window(
    case: AiActCase, window: timedelta, basis: str
) -> None:
    clock = only(clocks_for(make_incident(ai_act_case=case), aware_at=T0, rules=RULES))
    assert clock.regime is AI_ACT
    assert clock.case == case.value
    assert clock.due_at - clock.started_at == window
    assert clock.legal_basis == basis
    assert clock.authority == "the market surveillance authority"


def test_windows_come_from_the_configuration() -> None:
    config = parse_config({"regulatory": {"ai_act": {"death": "7d"}, "gdpr_window": "96h"}})
    rules = config.regulatory.to_rules()
    incident = make_incident(personal_data=True, ai_act_case=AiActCase.DEATH)
    gdpr, ai_act = clocks_for(incident, aware_at=T0, rules=rules)
    assert gdpr.due_at == T0 + timedelta(hours=96)
    assert ai_act.due_at == T0 + timedelta(days=7)
    assert rules.ai_act_window(AiActCase.SERIOUS) == timedelta(days=15)


def test_the_default_configuration_gives_the_default_rules() -> None:
    assert parse_config(None).regulatory.to_rules() == RegulatoryRules()


@pytest.mark.parametrize(
    ("regulatory", "expected"),
    [
        ({"gdpr_enabled": False}, {AI_ACT}),
        ({"ai_act_enabled": False}, {GDPR}),
        ({"gdpr_enabled": False, "ai_act_enabled": False}, set()),
    ],
)
def test_a_disabled_regime_starts_no_clock(
    regulatory: dict[str, Any], expected: set[RegulatoryRegime]
) -> None:
    rules = parse_config({"regulatory": regulatory}).regulatory.to_rules()
    incident = make_incident(personal_data=True, ai_act_case=AiActCase.SERIOUS)
    assert {clock.regime for clock in clocks_for(incident, aware_at=T0, rules=rules)} == expected
    assert regulatory_clock_applies(incident, rules) is bool(expected)


def test_an_incident_without_personal_data_or_an_ai_act_case_starts_no_clock() -> None:
    incident = make_incident(public_facing=True, severity=Severity.CRITICAL)
    assert clocks_for(incident, aware_at=T0, rules=RULES) == ()
    assert not regulatory_clock_applies(incident, RULES)


def test_both_clocks_run_at_once_gdpr_first() -> None:
    incident = make_incident(personal_data=True, ai_act_case=AiActCase.WIDESPREAD)
    gdpr, ai_act = clocks_for(incident, aware_at=T0, rules=RULES)
    assert (gdpr.regime, ai_act.regime) == (GDPR, AI_ACT)
    assert (gdpr.due_at, ai_act.due_at) == (T0 + timedelta(hours=72), T0 + timedelta(days=2))
    assert regulatory_clock_applies(incident, RULES)


def test_awareness_must_carry_a_time_zone() -> None:
    with pytest.raises(ValueError, match="timezone"):
        clocks_for(make_incident(personal_data=True), aware_at=datetime(2026, 3, 2), rules=RULES)


@pytest.mark.parametrize(
    "changes",
    [
        {"reminders": (0.5, 1.0)},
        {"gdpr_window": timedelta(0)},
        {"final_reminder": timedelta(0)},
        {"ai_act_windows": {AiActCase.SERIOUS: DAY}},
    ],
)
def test_impossible_rules_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RegulatoryRules(**changes)


def test_rules_cannot_be_changed_through_the_mapping_they_were_given() -> None:
    windows = {AiActCase.SERIOUS: 15 * DAY, AiActCase.DEATH: 10 * DAY, AiActCase.WIDESPREAD: DAY}
    rules = RegulatoryRules(ai_act_windows=windows)
    windows[AiActCase.WIDESPREAD] = 9 * DAY
    assert rules.ai_act_window(AiActCase.WIDESPREAD) == DAY


def test_a_stored_clock_is_described_as_it_was_computed() -> None:
    incident = make_incident(personal_data=True, ai_act_case=AiActCase.WIDESPREAD)
    for clock in clocks_for(incident, aware_at=T0, rules=RULES):
        stored = describe_clock(
            regime=clock.regime, case=clock.case, started_at=clock.started_at, due_at=clock.due_at
        )
        assert stored == clock


@pytest.mark.parametrize(
    ("regime", "case"), [(GDPR, "death"), (AI_ACT, GDPR_CASE), (AI_ACT, "minor")]
)
def test_a_stored_clock_with_a_case_its_regime_lacks_is_refused(
    regime: RegulatoryRegime, case: str
) -> None:
    with pytest.raises(ValueError):
        describe_clock(regime=regime, case=case, started_at=T0, due_at=T0 + DAY)


# --- reminders ----------------------------------------------------------------------------


def gdpr_clock(rules: RegulatoryRules = RULES) -> RegulatoryClock:
    return only(clocks_for(make_incident(personal_data=True), aware_at=T0, rules=rules))


def test_a_72_hour_clock_reminds_at_half_24_hours_left_three_quarters_and_90_percent() -> None:
    reminders = reminder_times(gdpr_clock(), RULES)
    assert [(r.key, r.at - T0) for r in reminders] == [
        ("50%", timedelta(hours=36)),
        ("due-24h", timedelta(hours=48)),
        ("75%", timedelta(hours=54)),
        ("90%", timedelta(hours=64.8)),
    ]
    assert [r.label for r in reminders] == [
        "half the time has gone",
        "24 hours left",
        "three quarters of the time has gone",
        "90% of the time has gone",
    ]


def test_a_2_day_clock_reminds_once_when_24_hours_left_is_also_half_way() -> None:
    clock = only(
        clocks_for(make_incident(ai_act_case=AiActCase.WIDESPREAD), aware_at=T0, rules=RULES)
    )
    reminders = reminder_times(clock, RULES)
    assert [(r.key, r.at - T0) for r in reminders] == [
        ("due-24h", timedelta(hours=24)),
        ("75%", timedelta(hours=36)),
        ("90%", timedelta(hours=43.2)),
    ]


def test_custom_fractions_from_the_configuration_set_the_reminders() -> None:
    rules = parse_config(
        {"regulatory": {"reminders": [0.9, 0.25], "final_reminder": "6h"}}
    ).regulatory.to_rules()
    reminders = reminder_times(gdpr_clock(rules), rules)
    assert [(r.key, r.at - T0) for r in reminders] == [
        ("25%", timedelta(hours=18)),
        ("90%", timedelta(hours=64.8)),
        ("due-6h", timedelta(hours=66)),
    ]
    assert reminders[-1].label == "6 hours left"


def test_a_final_reminder_longer_than_the_window_is_dropped() -> None:
    rules = RegulatoryRules(final_reminder=timedelta(hours=72))
    keys = [r.key for r in reminder_times(gdpr_clock(rules), rules)]
    assert keys == ["50%", "75%", "90%"]


def test_reminder_keys_are_the_same_for_the_same_clock() -> None:
    assert reminder_times(gdpr_clock(), RULES) == reminder_times(gdpr_clock(), RULES)


# --- replanning ---------------------------------------------------------------------------


def test_a_newly_set_flag_adds_a_clock_counted_from_the_change() -> None:
    before = make_incident(ai_act_case=AiActCase.SERIOUS)
    running = clocks_for(before, aware_at=T0, rules=RULES)
    after = replace(before, personal_data=True)
    added = only(replan_clocks(running, after, aware_at=LATER, rules=RULES))
    assert added.regime is GDPR
    assert added.started_at == LATER
    assert added.due_at == LATER + timedelta(hours=72)


def test_an_unchanged_incident_adds_no_clock() -> None:
    incident = make_incident(personal_data=True, ai_act_case=AiActCase.DEATH)
    running = clocks_for(incident, aware_at=T0, rules=RULES)
    assert replan_clocks(running, incident, aware_at=LATER, rules=RULES) == ()


def test_serious_becoming_a_death_shortens_the_clock_from_the_original_awareness() -> None:
    before = make_incident(ai_act_case=AiActCase.SERIOUS)
    running = clocks_for(before, aware_at=T0, rules=RULES)
    after = replace(before, ai_act_case=AiActCase.DEATH)
    shortened = only(replan_clocks(running, after, aware_at=T0 + 3 * DAY, rules=RULES))
    assert shortened.regime is AI_ACT
    assert shortened.case == AiActCase.DEATH.value
    assert shortened.started_at == T0
    assert shortened.due_at == T0 + 10 * DAY
    assert shortened.legal_basis == "EU AI Act Art. 73(4)"


def test_a_death_becoming_merely_serious_never_lengthens_the_clock() -> None:
    before = make_incident(ai_act_case=AiActCase.DEATH)
    running = clocks_for(before, aware_at=T0, rules=RULES)
    after = replace(before, ai_act_case=AiActCase.SERIOUS)
    assert replan_clocks(running, after, aware_at=T0 + DAY, rules=RULES) == ()


def test_a_widespread_case_becoming_a_death_keeps_the_shorter_2_days() -> None:
    before = make_incident(ai_act_case=AiActCase.WIDESPREAD)
    running = clocks_for(before, aware_at=T0, rules=RULES)
    after = replace(before, ai_act_case=AiActCase.DEATH)
    assert replan_clocks(running, after, aware_at=T0 + HOUR, rules=RULES) == ()


def test_a_cleared_flag_withdraws_no_clock() -> None:
    before = make_incident(personal_data=True)
    running = clocks_for(before, aware_at=T0, rules=RULES)
    after = replace(before, personal_data=False)
    assert replan_clocks(running, after, aware_at=LATER, rules=RULES) == ()


# --- the draft report ---------------------------------------------------------------------


def fields_by_name(fields: tuple[Any, ...]) -> dict[str, Any]:
    names = [f.name for f in fields]
    assert len(names) == len(set(names)), names
    return {f.name: f for f in fields}


def gdpr_report(now: datetime, *, contact: str = "dpo@example.com", **changes: Any) -> Any:
    incident = make_incident(personal_data=True, **changes)
    clock = only(clocks_for(incident, aware_at=T0, rules=RULES))
    fields = draft_report(
        incident, clock, contact=contact, measures=["Safe mode on the assistant"], now=now
    )
    return fields_by_name(fields)


def test_the_gdpr_draft_asks_for_the_four_art_33_3_items() -> None:
    fields = gdpr_report(LATER)
    labels = " ".join(f.label for f in fields.values())
    for item in ("33(3)(a)", "33(3)(b)", "33(3)(c)", "33(3)(d)"):
        assert item in labels
    assert {"nature", "data_subjects", "records", "contact", "consequences", "measures"} <= set(
        fields
    )
    assert {"reference", "aware_at", "notified_at"} <= set(fields)


def test_the_gdpr_draft_fills_what_the_incident_record_knows() -> None:
    fields = gdpr_report(LATER)
    assert fields["reference"].value == "Incident #41"
    assert "Data leak" in fields["nature"].value
    assert "Assistant reveals other customers' addresses" in fields["nature"].value
    assert "delivery addresses" in fields["nature"].value
    assert fields["affected_systems"].value == "support-assistant, retrieval-index"
    assert fields["contact"].value == "dpo@example.com"
    assert fields["measures"].value == "• Safe mode on the assistant"
    assert fields["aware_at"].value == "2026-03-02 08:00 UTC"
    assert fields["notified_at"].value == "2026-03-02 13:00 UTC"
    assert all(f.known for f in fields.values() if f.value != TO_BE_COMPLETED)


def test_the_gdpr_draft_invents_nothing_it_does_not_know() -> None:
    fields = gdpr_report(LATER, contact="  ", affected_systems=())
    unknown = {name for name, f in fields.items() if not f.known}
    assert unknown == {"data_subjects", "records", "contact", "consequences", "affected_systems"}
    assert {fields[name].value for name in unknown} == {TO_BE_COMPLETED}


def test_reasons_for_delay_are_asked_for_only_after_the_deadline() -> None:
    on_time = gdpr_report(T0 + timedelta(hours=72))
    late = gdpr_report(T0 + timedelta(hours=73))
    assert "delay_reasons" not in on_time
    assert late["delay_reasons"].known is False
    assert "Art. 33(1)" in late["delay_reasons"].label


def test_the_ai_act_draft_names_the_case_and_the_system_and_leaves_causation_open() -> None:
    incident = make_incident(ai_act_case=AiActCase.DEATH)
    clock = only(clocks_for(incident, aware_at=T0, rules=RULES))
    fields = fields_by_name(draft_report(incident, clock, contact="", measures=[], now=LATER))
    assert fields["case"].value == AiActCase.DEATH.label
    assert fields["ai_system"].value == "support-assistant, retrieval-index"
    assert "Assistant reveals" in fields["events"].value
    for name in (
        "provider_contact",
        "member_states",
        "occurred_at",
        "causal_link",
        "affected",
        "containment",
        "corrective_action",
        "report_type",
    ):
        assert fields[name].known is False, name
        assert fields[name].value == TO_BE_COMPLETED


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(days=2, hours=5, minutes=10), "2 days 5 hours"),
        (timedelta(days=2, minutes=5), "2 days"),
        (timedelta(hours=36), "36 hours"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(hours=3, minutes=20), "3 hours 20 minutes"),
        (timedelta(seconds=20), "less than a minute"),
        (-timedelta(hours=3), "3 hours"),
    ],
)
def test_durations_read_in_their_two_largest_units(span: timedelta, text: str) -> None:
    assert describe_duration(span) == text
