"""The containment policy: which actions each incident gets, and what remains after them."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.domain.containment import (
    ATLAS_MITIGATIONS,
    ActionOutcome,
    ContainmentAction,
    ContainmentPlan,
    RiskLevel,
    assess_residual_risk,
    is_contained,
    propose_containment,
)
from bot.domain.incident import Incident
from bot.domain.vocabulary import IncidentSource, IncidentState, IncidentType, Role, Severity

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

AR = ContainmentAction.ACCESS_REVOCATION
CB = ContainmentAction.CIRCUIT_BREAKER
DI = ContainmentAction.DATA_ISOLATION
MFA = ContainmentAction.MFA_ENFORCEMENT
SM = ContainmentAction.SAFE_MODE
SD = ContainmentAction.MODEL_SHUTDOWN
NI = ContainmentAction.NETWORK_ISOLATION
T = IncidentType

# The policy, read as a reviewer would: action kinds in plan order (emergencies first, then
# narrowest blast radius first), for an incident with no flags and no indicators. Which of
# them is an emergency (critical only) is the EMERGENCY table below.
POLICY: dict[IncidentType, tuple[tuple[ContainmentAction, ...], ...]] = {
    #                           low        medium            high              critical
    T.PROMPT_INJECTION:        ((SM,),     (SM,),            (SM,),            (SD,)),
    T.JAILBREAK_ATTEMPT:       ((SM,),     (SM,),            (AR, MFA, SM),    (AR, MFA, SD)),
    T.DATA_LEAK:               ((DI, SM),  (DI, SM),         (DI, SM),         (DI, SD)),
    T.DATA_POISONING:          ((DI, SM),  (DI, SM),         (DI, SM),         (DI, SD)),
    T.ADVERSARIAL_ATTACK:      ((SM,),     (SM,),            (SM,),            (SD,)),
    T.MODEL_EXTRACTION:        ((AR,),     (AR, MFA, SM),    (AR, MFA, SM),    (AR, MFA, SD)),
    T.HALLUCINATION_CASCADE:   ((CB, SM),  (CB, SM),         (CB, SM),         (CB, SD)),
    T.MODEL_DRIFT:             ((SM,),     (SM,),            (SM,),            (SD,)),
    T.HOSTILE_BEHAVIOR:        ((SM,),     (SM,),            (SM,),            (SD,)),
    T.SECURITY_BREACH:         ((AR,),     (AR, MFA, NI),    (AR, MFA, NI),    (AR, MFA, NI)),
    T.PERFORMANCE_DEGRADATION: ((CB,),     (CB,),            (CB,),            (CB,)),
    T.UNKNOWN_AI_INCIDENT:     ((SM,),     (SM,),            (SM,),            (SD,)),
}  # fmt: skip
COLUMNS = (Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)
EMERGENCY = {
    T.DATA_LEAK: DI,
    T.HOSTILE_BEHAVIOR: SD,
    T.SECURITY_BREACH: AR,
}
CASES = [
    (kind, severity, kinds)
    for kind, row in POLICY.items()
    for severity, kinds in zip(COLUMNS, row, strict=True)
]


def make_incident(
    incident_type: IncidentType = T.DATA_LEAK,
    severity: Severity = Severity.HIGH,
    **fields: Any,
) -> Incident:
    base = Incident(
        id=41,
        number=7,
        title="Support bot misbehaving",
        description="",
        incident_type=incident_type,
        severity=severity,
        state=IncidentState.DECLARED,
        reporter_id="U0REPORTER",
        source=IncidentSource.SLASH_COMMAND,
        declared_at=T0,
        updated_at=T0,
        affected_systems=("support-bot-v2",),
    )
    return replace(base, **fields)


def plan_for(incident_type: IncidentType, severity: Severity, **fields: Any) -> ContainmentPlan:
    return propose_containment(make_incident(incident_type, severity, **fields), now=T0)


def test_the_policy_table_covers_every_type_and_severity() -> None:
    assert set(POLICY) == set(IncidentType)
    assert len(CASES) == 12 * 4


@pytest.mark.parametrize(
    ("incident_type", "severity", "expected"),
    CASES,
    ids=[f"{kind.value}-{severity.value}" for kind, severity, _ in CASES],
)
def test_each_type_and_severity_gets_exactly_the_tabled_actions(
    incident_type: IncidentType, severity: Severity, expected: tuple[ContainmentAction, ...]
) -> None:
    plan = plan_for(incident_type, severity)

    assert plan.kinds == expected
    assert [action.order for action in plan.actions] == list(range(1, len(expected) + 1))
    emergencies = {action.kind for action in plan.emergencies}
    if severity is Severity.CRITICAL and incident_type in EMERGENCY:
        assert emergencies == {EMERGENCY[incident_type]}
    else:
        assert emergencies == set()


@pytest.mark.parametrize("incident_type", list(EMERGENCY), ids=str)
def test_critical_emergencies_come_first_and_are_marked(incident_type: IncidentType) -> None:
    plan = plan_for(incident_type, Severity.CRITICAL)

    first = plan.actions[0]
    assert first.kind is EMERGENCY[incident_type]
    assert first.emergency
    assert "at once, on declaration" in first.reason
    assert [a.emergency for a in plan.actions[1:]] == [False] * (len(plan.actions) - 1)
    assert "(emergency)" in plan.summary


def test_an_emergency_replaces_the_ordinary_action_and_keeps_its_key() -> None:
    high = plan_for(T.DATA_LEAK, Severity.HIGH).action(DI)
    critical = plan_for(T.DATA_LEAK, Severity.CRITICAL).action(DI)

    assert high is not None and critical is not None
    assert critical.emergency and not high.emergency
    assert critical.key == high.key == "data_isolation"


def test_a_critical_security_breach_isolates_rather_than_shuts_down_the_model() -> None:
    plan = plan_for(T.SECURITY_BREACH, Severity.CRITICAL)

    assert SD not in plan.kinds
    assert plan.actions[0].target == "suspicious users and API keys"


@pytest.mark.parametrize("incident_type", list(IncidentType), ids=str)
@pytest.mark.parametrize("severity", list(Severity), ids=str)
def test_no_plan_repeats_an_action_kind_or_a_key(
    incident_type: IncidentType, severity: Severity
) -> None:
    flagged = plan_for(
        incident_type,
        severity,
        personal_data=True,
        public_facing=True,
        indicators=("credential_leak", "jailbreak_campaign"),
    )

    assert len(set(flagged.kinds)) == len(flagged.kinds)
    assert len({action.key for action in flagged.actions}) == len(flagged.actions)
    assert flagged.actions, "every incident gets at least one action to approve"


def test_keys_are_stable_across_calls_and_severity_changes() -> None:
    first = plan_for(T.MODEL_EXTRACTION, Severity.HIGH)
    again = propose_containment(make_incident(T.MODEL_EXTRACTION, Severity.HIGH))
    escalated = plan_for(T.MODEL_EXTRACTION, Severity.CRITICAL)

    assert [a.key for a in first.actions] == [a.key for a in again.actions]
    assert [a.key for a in first.actions] == ["access_revocation", "mfa_enforcement", "safe_mode"]
    assert [a.key for a in escalated.actions][:2] == ["access_revocation", "mfa_enforcement"]
    assert escalated.actions[2].key == "model_shutdown"


@pytest.mark.parametrize(("incident_type", "severity", "expected"), CASES)
def test_actions_on_a_model_or_system_need_a_target_when_none_is_named(
    incident_type: IncidentType, severity: Severity, expected: tuple[ContainmentAction, ...]
) -> None:
    named = plan_for(incident_type, severity)
    unnamed = plan_for(incident_type, severity, affected_systems=())

    assert not any(action.target_needed for action in named.actions)
    needing = {action.kind for action in unnamed.actions if action.target_needed}
    assert needing == set(expected) - {AR, MFA}
    for action in unnamed.actions:
        assert action.target, "a target is always described, even when it must be named"


def test_a_named_system_is_the_target_of_model_level_actions() -> None:
    plan = plan_for(T.HOSTILE_BEHAVIOR, Severity.HIGH, affected_systems=("chat-a", "chat-b"))

    assert plan.actions[0].target == "chat-a, chat-b"
    assert plan.summary.endswith("safe mode.")


def test_an_unnamed_model_is_flagged_in_the_summary() -> None:
    plan = plan_for(T.HOSTILE_BEHAVIOR, Severity.CRITICAL, affected_systems=())

    assert plan.actions[0].target_needed
    assert "need the affected system named" in plan.summary


def test_a_low_jailbreak_with_a_campaign_indicator_revokes_access_without_forcing_mfa() -> None:
    plan = plan_for(T.JAILBREAK_ATTEMPT, Severity.LOW, indicators=("jailbreak-campaign",))

    assert plan.kinds == (AR, SM)
    assert "jailbreak_campaign" in plan.actions[0].reason


def test_a_medium_jailbreak_campaign_by_indicator_adds_access_revocation_and_mfa() -> None:
    plan = plan_for(T.JAILBREAK_ATTEMPT, Severity.MEDIUM, indicators=("query_pattern_anomaly",))

    assert plan.kinds == (AR, MFA, SM)


def test_a_prompt_injection_with_personal_data_also_isolates_the_data() -> None:
    plan = plan_for(T.PROMPT_INJECTION, Severity.HIGH, personal_data=True)

    assert plan.kinds == (DI, SM)
    assert plan.actions[0].target == "personal data reachable from support-bot-v2"


def test_a_security_breach_with_personal_data_isolates_the_data_before_the_network() -> None:
    plan = plan_for(T.SECURITY_BREACH, Severity.CRITICAL, personal_data=True)

    assert plan.kinds == (AR, DI, MFA, NI)
    assert plan.actions[0].emergency


def test_a_performance_incident_driven_by_leaked_keys_revokes_them() -> None:
    plan = plan_for(T.PERFORMANCE_DEGRADATION, Severity.HIGH, indicators=("credential_leak",))

    assert plan.kinds == (AR, CB, MFA)


def test_public_facing_incidents_say_customers_will_notice() -> None:
    public = plan_for(T.MODEL_DRIFT, Severity.MEDIUM, public_facing=True)
    internal = plan_for(T.MODEL_DRIFT, Severity.MEDIUM)

    assert public.actions[0].expected_impact.startswith("Customers notice degraded service")
    assert internal.actions[0].expected_impact.startswith("Internal users notice")


@pytest.mark.parametrize(("incident_type", "severity", "expected"), CASES)
def test_atlas_mitigations_are_well_formed_and_from_the_catalogue(
    incident_type: IncidentType, severity: Severity, expected: tuple[ContainmentAction, ...]
) -> None:
    plan = plan_for(incident_type, severity)

    for action in plan.actions:
        for mitigation in action.atlas_mitigations:
            assert re.fullmatch(r"AML\.M\d{4}", mitigation.id)
            assert ATLAS_MITIGATIONS[mitigation.id] == mitigation
            assert str(mitigation).startswith(f"{mitigation.id} ")


@pytest.mark.parametrize(
    ("incident_type", "severity", "kind", "mitigation"),
    [
        (T.MODEL_EXTRACTION, Severity.LOW, AR, "AML.M0004"),
        (T.MODEL_EXTRACTION, Severity.HIGH, SM, "AML.M0004"),
        (T.MODEL_EXTRACTION, Severity.HIGH, SM, "AML.M0002"),
        (T.SECURITY_BREACH, Severity.HIGH, AR, "AML.M0019"),
        (T.SECURITY_BREACH, Severity.HIGH, MFA, "AML.M0019"),
        (T.PROMPT_INJECTION, Severity.HIGH, SM, "AML.M0020"),
        (T.PROMPT_INJECTION, Severity.HIGH, SM, "AML.M0030"),
        (T.JAILBREAK_ATTEMPT, Severity.MEDIUM, SM, "AML.M0020"),
        (T.ADVERSARIAL_ATTACK, Severity.MEDIUM, SM, "AML.M0015"),
        (T.DATA_POISONING, Severity.MEDIUM, DI, "AML.M0007"),
        (T.DATA_POISONING, Severity.MEDIUM, DI, "AML.M0025"),
        (T.DATA_LEAK, Severity.CRITICAL, DI, "AML.M0005"),
        (T.MODEL_DRIFT, Severity.MEDIUM, SM, "AML.M0008"),
        (T.HALLUCINATION_CASCADE, Severity.HIGH, CB, "AML.M0033"),
    ],
)
def test_actions_cite_the_atlas_mitigation_that_fits(
    incident_type: IncidentType, severity: Severity, kind: ContainmentAction, mitigation: str
) -> None:
    action = plan_for(incident_type, severity).action(kind)

    assert action is not None
    assert mitigation in {m.id for m in action.atlas_mitigations}


def test_model_extraction_cites_restrict_number_of_ai_model_queries_by_name() -> None:
    action = plan_for(T.MODEL_EXTRACTION, Severity.MEDIUM).action(AR)

    assert action is not None
    assert "AML.M0004 Restrict Number of AI Model Queries" in {
        str(m) for m in action.atlas_mitigations
    }


def test_each_action_has_a_reason_an_impact_and_the_role_that_carries_it_out() -> None:
    roles = {
        SD: Role.AI_SAFETY_LEAD,
        SM: Role.AI_SAFETY_LEAD,
        AR: Role.SECURITY_ANALYST,
        MFA: Role.SECURITY_ANALYST,
        NI: Role.SECURITY_ANALYST,
        DI: Role.DATA_SCIENTIST,
        CB: Role.AI_SAFETY_LEAD,
    }
    for incident_type, severity, _ in CASES:
        for action in plan_for(incident_type, severity, personal_data=True).actions:
            assert action.default_role is roles[action.kind]
            assert action.reason.endswith(".") and action.expected_impact.endswith(".")
            assert action.reason.count(". ") == 0, "the reason is one sentence"


def test_the_plan_names_its_incident_and_time() -> None:
    plan = plan_for(T.HOSTILE_BEHAVIOR, Severity.CRITICAL)

    assert (plan.incident_id, plan.incident_number, plan.proposed_at) == (41, 7, T0)
    assert plan.summary == (
        "1 containment action for a critical hostile behavior: model shutdown (emergency)."
    )


def test_without_a_clock_the_plan_is_stamped_now_in_utc() -> None:
    plan = propose_containment(make_incident())

    assert plan.proposed_at.tzinfo is UTC


# Residual risk and containment.


def all_in_effect(plan: ContainmentPlan) -> dict[ContainmentAction, ActionOutcome]:
    return {action.kind: ActionOutcome.SUCCEEDED for action in plan.actions}


def test_nothing_is_left_uncovered_when_every_action_succeeded() -> None:
    incident = make_incident(T.SECURITY_BREACH, Severity.CRITICAL)
    plan = propose_containment(incident, now=T0)

    risk = assess_residual_risk(incident, plan, all_in_effect(plan))

    assert risk.level is RiskLevel.NONE
    assert risk.uncovered == ()
    assert risk.summary == "Nothing left uncovered: every proposed action is in effect."


def test_a_failed_shutdown_leaves_the_model_serving_at_high_risk() -> None:
    incident = make_incident(T.DATA_LEAK, Severity.CRITICAL)
    plan = propose_containment(incident, now=T0)
    results = all_in_effect(plan) | {SD: ActionOutcome.FAILED}

    risk = assess_residual_risk(incident, plan, results)

    assert risk.level is RiskLevel.HIGH
    assert risk.uncovered == ("support-bot-v2 still serving: model shutdown failed",)
    assert risk.summary.startswith("High residual risk: 1 of 2 actions not in effect")


def test_a_failed_safe_mode_on_an_unnamed_model_says_the_model_still_serves() -> None:
    incident = make_incident(T.JAILBREAK_ATTEMPT, Severity.MEDIUM, affected_systems=())
    plan = propose_containment(incident, now=T0)

    risk = assess_residual_risk(incident, plan, {SM: ActionOutcome.FAILED})

    assert risk.uncovered == ("the model still serving without safeguards: safe mode failed",)
    assert risk.level is RiskLevel.MEDIUM


def test_a_rejected_access_revocation_leaves_keys_valid_at_one_step_lower_risk() -> None:
    incident = make_incident(T.SECURITY_BREACH, Severity.HIGH)
    plan = propose_containment(incident, now=T0)
    results = all_in_effect(plan) | {AR: ActionOutcome.REJECTED}

    risk = assess_residual_risk(incident, plan, results)

    assert risk.uncovered == (
        "suspicious keys and accounts still valid: access revocation rejected",
    )
    assert risk.level is RiskLevel.MEDIUM


def test_an_emergency_still_open_is_high_risk_whatever_else_succeeded() -> None:
    incident = make_incident(T.SECURITY_BREACH, Severity.CRITICAL)
    plan = propose_containment(incident, now=T0)
    results = all_in_effect(plan) | {AR: ActionOutcome.MANUAL_OPEN}

    risk = assess_residual_risk(incident, plan, results)

    assert risk.level is RiskLevel.HIGH
    assert risk.uncovered == (
        "suspicious keys and accounts still valid: access revocation still open as a manual step",
    )


def test_actions_without_a_result_count_as_pending() -> None:
    incident = make_incident(T.PERFORMANCE_DEGRADATION, Severity.LOW)
    plan = propose_containment(incident, now=T0)

    risk = assess_residual_risk(incident, plan, {})

    assert risk.level is RiskLevel.LOW
    assert risk.uncovered == (
        "callers still routed to support-bot-v2: circuit breaker still pending",
    )


def test_an_incident_is_contained_when_every_action_succeeded() -> None:
    plan = plan_for(T.MODEL_EXTRACTION, Severity.HIGH)

    assert is_contained(plan, all_in_effect(plan))


def test_manual_steps_marked_done_count_as_carried_out() -> None:
    plan = plan_for(T.SECURITY_BREACH, Severity.HIGH)
    results = {
        AR: ActionOutcome.MANUAL_DONE,
        MFA: ActionOutcome.SUCCEEDED,
        NI: ActionOutcome.MANUAL_DONE,
    }

    assert is_contained(plan, results)


def test_rejected_actions_do_not_block_containment() -> None:
    plan = plan_for(T.SECURITY_BREACH, Severity.HIGH)
    results = all_in_effect(plan) | {NI: ActionOutcome.REJECTED}

    assert is_contained(plan, results)


@pytest.mark.parametrize(
    "outcome",
    [ActionOutcome.FAILED, ActionOutcome.PENDING, ActionOutcome.MANUAL_OPEN],
    ids=str,
)
def test_an_action_not_carried_out_blocks_containment(outcome: ActionOutcome) -> None:
    plan = plan_for(T.SECURITY_BREACH, Severity.HIGH)
    results = all_in_effect(plan) | {MFA: outcome}

    assert not is_contained(plan, results)


def test_an_action_with_no_result_blocks_containment() -> None:
    plan = plan_for(T.SECURITY_BREACH, Severity.HIGH)

    assert not is_contained(plan, {AR: ActionOutcome.SUCCEEDED})


def test_an_incident_whose_every_action_was_rejected_is_not_contained() -> None:
    plan = plan_for(T.SECURITY_BREACH, Severity.HIGH)

    assert not is_contained(plan, dict.fromkeys(plan.kinds, ActionOutcome.REJECTED))


def test_results_for_actions_outside_the_plan_are_ignored() -> None:
    plan = plan_for(T.PROMPT_INJECTION, Severity.LOW)

    assert is_contained(plan, {SM: ActionOutcome.SUCCEEDED, NI: ActionOutcome.FAILED})
