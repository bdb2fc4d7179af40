"""The notification plan: who is told about an incident, how soon, and whether in time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain import notifications
from bot.domain.incident import Incident
from bot.domain.notifications import (
    DeadlineOutcome,
    ExistingNotification,
    PlannedMessage,
    TierDeadlines,
    deadline_outcome,
    plan_notifications,
    replan,
    unconfigured,
)
from bot.domain.vocabulary import (
    Audience,
    IncidentSource,
    IncidentState,
    IncidentType,
    NotificationTier,
    Severity,
)

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(hours=3)
DEFAULTS = TierDeadlines()
DAY = timedelta(days=1)
A = Audience
IMMEDIATE, URGENT, STANDARD = (
    NotificationTier.IMMEDIATE,
    NotificationTier.URGENT,
    NotificationTier.STANDARD,
)
CRITICAL_SET = {
    (A.EXECUTIVE_TEAM, IMMEDIATE),
    (A.SECURITY_TEAM, IMMEDIATE),
    (A.LEGAL_TEAM, IMMEDIATE),
    (A.COMMUNICATIONS_TEAM, IMMEDIATE),
}


def incident(
    severity: Severity = Severity.LOW, *, personal_data: bool = False, public_facing: bool = False
) -> Incident:
    return Incident(
        id=1,
        number=1,
        title="Chatbot leaks account numbers",
        description="",
        incident_type=IncidentType.DATA_LEAK,
        severity=severity,
        state=IncidentState.DECLARED,
        reporter_id="U0REPORTER",
        source=IncidentSource.SLASH_COMMAND,
        declared_at=T0,
        updated_at=T0,
        personal_data=personal_data,
        public_facing=public_facing,
    )


def pairs(plan: tuple[PlannedMessage, ...]) -> set[tuple[Audience, NotificationTier]]:
    return {(m.audience, m.tier) for m in plan}


def test_a_low_incident_tells_only_the_technical_team_at_standard_tier() -> None:
    plan = plan_notifications(incident(), deadlines=DEFAULTS)
    assert pairs(plan) == {(A.TECHNICAL_TEAM, STANDARD)}


@pytest.mark.parametrize("severity", [Severity.LOW, Severity.MEDIUM, Severity.HIGH])
def test_below_critical_no_executive_security_legal_or_comms_message(severity: Severity) -> None:
    assert pairs(plan_notifications(incident(severity), deadlines=DEFAULTS)) == {
        (A.TECHNICAL_TEAM, STANDARD)
    }


def test_a_critical_incident_tells_executive_security_legal_and_comms_immediately() -> None:
    plan = plan_notifications(incident(Severity.CRITICAL), deadlines=DEFAULTS)
    assert pairs(plan) == CRITICAL_SET | {(A.TECHNICAL_TEAM, STANDARD)}


def test_personal_data_tells_the_dpo_immediately_and_affected_users_urgently() -> None:
    plan = plan_notifications(incident(personal_data=True), deadlines=DEFAULTS)
    assert pairs(plan) == {
        (A.DATA_PROTECTION_OFFICER, IMMEDIATE),
        (A.AFFECTED_USERS, URGENT),
        (A.TECHNICAL_TEAM, STANDARD),
    }


def test_a_public_facing_incident_tells_pr_immediately_and_support_leads_urgently() -> None:
    plan = plan_notifications(incident(public_facing=True), deadlines=DEFAULTS)
    assert pairs(plan) == {
        (A.PR_TEAM, IMMEDIATE),
        (A.CUSTOMER_SUPPORT_LEADS, URGENT),
        (A.TECHNICAL_TEAM, STANDARD),
    }


def test_a_regulatory_clock_tells_the_regulatory_body_urgently() -> None:
    plan = plan_notifications(incident(), deadlines=DEFAULTS, regulatory_clock=True)
    assert pairs(plan) == {(A.REGULATORY_BODY, URGENT), (A.TECHNICAL_TEAM, STANDARD)}


def test_critical_with_personal_data_public_facing_and_a_clock_is_the_full_set_once() -> None:
    plan = plan_notifications(
        incident(Severity.CRITICAL, personal_data=True, public_facing=True),
        deadlines=DEFAULTS,
        regulatory_clock=True,
    )
    assert len(plan) == len(Audience)
    assert {m.audience for m in plan} == set(Audience)
    assert pairs(plan) == CRITICAL_SET | {
        (A.DATA_PROTECTION_OFFICER, IMMEDIATE),
        (A.PR_TEAM, IMMEDIATE),
        (A.AFFECTED_USERS, URGENT),
        (A.CUSTOMER_SUPPORT_LEADS, URGENT),
        (A.REGULATORY_BODY, URGENT),
        (A.TECHNICAL_TEAM, STANDARD),
    }


def test_the_plan_lists_the_soonest_tier_first() -> None:
    plan = plan_notifications(
        incident(Severity.CRITICAL, personal_data=True, public_facing=True), deadlines=DEFAULTS
    )
    ranks = [list(NotificationTier).index(m.tier) for m in plan]
    assert ranks == sorted(ranks)


def test_every_message_gives_a_one_sentence_reason() -> None:
    plan = plan_notifications(
        incident(Severity.CRITICAL, personal_data=True, public_facing=True),
        deadlines=DEFAULTS,
        regulatory_clock=True,
    )
    for message in plan:
        assert message.reason.endswith(".")
        assert message.reason.count(".") == 1


def test_an_audience_qualifying_for_two_tiers_keeps_only_the_earlier(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extra = notifications._Rule(
        A.TECHNICAL_TEAM, IMMEDIATE, lambda i, _: i.personal_data, "Engineers must isolate data."
    )
    monkeypatch.setattr(notifications, "_RULES", (*notifications._RULES, extra))
    plan = plan_notifications(incident(personal_data=True), deadlines=DEFAULTS)
    assert [m.tier for m in plan if m.audience is A.TECHNICAL_TEAM] == [IMMEDIATE]


def test_default_deadlines_count_from_the_declaration() -> None:
    plan = plan_notifications(incident(personal_data=True), deadlines=DEFAULTS)
    due = {m.tier: m.due_at for m in plan}
    assert due == {
        IMMEDIATE: T0 + timedelta(minutes=15),
        URGENT: T0 + timedelta(hours=1),
        STANDARD: T0 + timedelta(hours=24),
    }


def test_custom_deadlines_are_used() -> None:
    custom = TierDeadlines(
        immediate=timedelta(minutes=5), urgent=timedelta(minutes=30), standard=timedelta(hours=8)
    )
    plan = plan_notifications(incident(personal_data=True), deadlines=custom)
    assert {m.tier: m.due_at - T0 for m in plan} == {
        IMMEDIATE: timedelta(minutes=5),
        URGENT: timedelta(minutes=30),
        STANDARD: timedelta(hours=8),
    }


def test_deadlines_can_be_read_from_a_tier_lookup_such_as_the_configuration() -> None:
    table = {IMMEDIATE: timedelta(minutes=1), URGENT: timedelta(minutes=2), STANDARD: DAY}
    assert TierDeadlines.from_lookup(table.__getitem__) == TierDeadlines(
        timedelta(minutes=1), timedelta(minutes=2), DAY
    )


def test_a_deadline_must_be_positive() -> None:
    with pytest.raises(ValueError, match="urgent"):
        TierDeadlines(urgent=timedelta(0))


def test_replan_after_escalation_to_critical_adds_only_the_critical_audiences() -> None:
    before = incident(Severity.HIGH, personal_data=True)
    previous = plan_notifications(before, deadlines=DEFAULTS)
    after = replace(before, severity=Severity.CRITICAL)
    added = replan(previous, after, changed_at=LATER, deadlines=DEFAULTS)
    assert pairs(added) == CRITICAL_SET
    assert {m.due_at for m in added} == {LATER + timedelta(minutes=15)}


def test_replan_after_the_personal_data_flag_adds_the_dpo_and_affected_users() -> None:
    before = incident(Severity.CRITICAL)
    previous = plan_notifications(before, deadlines=DEFAULTS)
    added = replan(
        previous, replace(before, personal_data=True), changed_at=LATER, deadlines=DEFAULTS
    )
    assert {(m.audience, m.tier, m.due_at) for m in added} == {
        (A.DATA_PROTECTION_OFFICER, IMMEDIATE, LATER + timedelta(minutes=15)),
        (A.AFFECTED_USERS, URGENT, LATER + timedelta(hours=1)),
    }


def test_replan_is_empty_when_nothing_changed() -> None:
    current = incident(Severity.CRITICAL, personal_data=True, public_facing=True)
    previous = plan_notifications(current, deadlines=DEFAULTS, regulatory_clock=True)
    assert (
        replan(previous, current, changed_at=LATER, deadlines=DEFAULTS, regulatory_clock=True) == ()
    )


def test_replan_after_a_downgrade_withdraws_and_adds_nothing() -> None:
    before = incident(Severity.CRITICAL, personal_data=True)
    previous = plan_notifications(before, deadlines=DEFAULTS)
    after = replace(before, severity=Severity.LOW)
    assert replan(previous, after, changed_at=LATER, deadlines=DEFAULTS) == ()


def test_replan_skips_notifications_already_recorded_as_sent() -> None:
    sent = [
        ExistingNotification(A.TECHNICAL_TEAM, STANDARD, sent_at=T0),
        ExistingNotification(A.PR_TEAM, IMMEDIATE, sent_at=T0),
    ]
    added = replan(sent, incident(public_facing=True), changed_at=LATER, deadlines=DEFAULTS)
    assert pairs(added) == {(A.CUSTOMER_SUPPORT_LEADS, URGENT)}


def test_replan_does_not_plan_an_audience_again_at_a_later_tier() -> None:
    previous = [ExistingNotification(A.AFFECTED_USERS, IMMEDIATE)]
    added = replan(previous, incident(personal_data=True), changed_at=LATER, deadlines=DEFAULTS)
    assert (A.AFFECTED_USERS, URGENT) not in pairs(added)


def test_replan_gives_an_audience_that_became_more_urgent_an_earlier_message() -> None:
    previous = [ExistingNotification(A.REGULATORY_BODY, STANDARD)]
    added = replan(
        previous, incident(), changed_at=LATER, deadlines=DEFAULTS, regulatory_clock=True
    )
    assert [(m.audience, m.tier, m.due_at) for m in added] == [
        (A.REGULATORY_BODY, URGENT, LATER + timedelta(hours=1)),
        (A.TECHNICAL_TEAM, STANDARD, LATER + DAY),
    ]


def test_unconfigured_lists_planned_audiences_without_a_channel_once_each() -> None:
    plan = plan_notifications(incident(Severity.CRITICAL, personal_data=True), deadlines=DEFAULTS)
    channels = {
        A.EXECUTIVE_TEAM: ["C0EXEC"],
        A.SECURITY_TEAM: ["C0SEC"],
        A.LEGAL_TEAM: [],
        A.TECHNICAL_TEAM: ["C0TECH"],
        A.PR_TEAM: [],
    }
    assert unconfigured(plan + plan, channels) == (
        A.LEGAL_TEAM,
        A.COMMUNICATIONS_TEAM,
        A.DATA_PROTECTION_OFFICER,
        A.AFFECTED_USERS,
    )


def test_unconfigured_is_empty_when_every_planned_audience_has_a_channel() -> None:
    plan = plan_notifications(incident(), deadlines=DEFAULTS)
    assert unconfigured(plan, {A.TECHNICAL_TEAM: ["C0TECH"]}) == ()


def test_a_message_sent_exactly_at_its_deadline_met_it() -> None:
    assert deadline_outcome(T0, T0) is DeadlineOutcome.MET
    assert deadline_outcome(T0, T0 - timedelta(minutes=1)) is DeadlineOutcome.MET


def test_a_message_sent_a_moment_after_its_deadline_is_late() -> None:
    assert deadline_outcome(T0, T0 + timedelta(microseconds=1)) is DeadlineOutcome.LATE
    assert deadline_outcome(T0, T0 + timedelta(microseconds=1)) == "late"
