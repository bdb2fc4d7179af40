"""The recovery plan's order and gating, and how an HTTP check's answer is judged."""

from __future__ import annotations

import pytest

from bot.domain.recovery import (
    PlanState,
    Step,
    StepKind,
    StepState,
    SystemRecovery,
    judge_http_check,
    next_step,
    plan_recovery,
    plan_state,
    state_on_reaching,
)

pytestmark = pytest.mark.unit

HEALTH = {"name": "health", "url": "https://gw/health", "status": 200}
MANUAL = {"name": "red-team prompts refused", "url": None}


def system(name: str = "support-bot-v2", *, manual: bool = False) -> SystemRecovery:
    return SystemRecovery(
        name=name, restore_manual=manual, stage_manual=manual, checks=[HEALTH, MANUAL]
    )


def test_each_system_is_restored_validated_then_staged_with_a_validation_after_each_stage() -> None:
    specs = plan_recovery([system()], stages=[10, 50, 100])
    assert [(s.kind.value, s.stage_percent) for s in specs] == [
        ("restore", None),
        ("validate", None),
        ("validate", None),
        ("stage", 10),
        ("validate", None),
        ("validate", None),
        ("stage", 50),
        ("validate", None),
        ("validate", None),
        ("stage", 100),
        ("validate", None),
        ("validate", None),
    ]
    assert [s.seq for s in specs] == list(range(1, 13))
    assert [s.manual for s in specs if s.kind is StepKind.VALIDATE] == [False, True] * 4


def test_two_systems_are_recovered_one_after_the_other() -> None:
    specs = plan_recovery([system("a"), system("b")], stages=[100])
    assert [s.system for s in specs] == ["a"] * 6 + ["b"] * 6


def steps(*states: StepState) -> list[Step]:
    return [
        Step(
            id=i, seq=i, system="s", kind=StepKind.VALIDATE, title=f"{i}", state=state, manual=False
        )
        for i, state in enumerate(states, start=1)
    ]


def test_nothing_proceeds_past_a_failed_step() -> None:
    plan = steps(StepState.DONE, StepState.FAILED, StepState.PENDING)
    assert next_step(plan) == plan[1]
    assert plan_state(plan) is PlanState.HELD


def test_the_plan_completes_when_every_step_is_settled() -> None:
    assert next_step(steps(StepState.DONE, StepState.PASSED)) is None
    assert plan_state(steps(StepState.DONE, StepState.PASSED)) is PlanState.COMPLETED
    assert plan_state(steps(StepState.DONE, StepState.AWAITING_APPROVAL)) is PlanState.IN_PROGRESS


def test_reaching_a_step_asks_the_right_party() -> None:
    auto_check, manual_check = (
        Step(1, 1, "s", StepKind.VALIDATE, "c", StepState.PENDING, False),
        Step(2, 2, "s", StepKind.VALIDATE, "c", StepState.PENDING, True),
    )
    change, manual_change = (
        Step(3, 3, "s", StepKind.STAGE, "c", StepState.PENDING, False),
        Step(4, 4, "s", StepKind.RESTORE, "c", StepState.PENDING, True),
    )
    assert state_on_reaching(auto_check) is StepState.RUNNING
    assert state_on_reaching(manual_check) is StepState.AWAITING_PERSON
    assert state_on_reaching(change) is StepState.AWAITING_APPROVAL
    assert state_on_reaching(manual_change) is StepState.AWAITING_PERSON


@pytest.mark.parametrize(
    ("check", "status", "body", "passed", "fragment"),
    [
        ({"status": 200}, 200, None, True, "HTTP 200"),
        ({"status": 200}, 503, None, False, "HTTP 503, expected 200"),
        ({"status": 204}, 204, None, True, "HTTP 204"),
        ({"json_field": "status", "equals": "ok"}, 200, {"status": "ok"}, True, "'ok'"),
        (
            {"json_field": "status", "equals": "ok"},
            200,
            {"status": "degraded"},
            False,
            "expected 'ok'",
        ),
        (
            {"json_field": "checks.guardrails", "equals": True},
            200,
            {"checks": {"guardrails": True}},
            True,
            "True",
        ),
        (
            {"json_field": "checks.guardrails"},
            200,
            {"checks": {"guardrails": False}},
            False,
            "not truthy",
        ),
        (
            {"json_field": "models.0.ready", "equals": "true"},
            200,
            {"models": [{"ready": True}]},
            False,
            "expected 'true'",
        ),
        ({"json_field": "rate", "equals": 1}, 200, {"rate": 1.0}, True, "1.0"),
        ({"json_field": "missing"}, 200, {"status": "ok"}, False, "has no `missing`"),
        ({"json_field": "status"}, 200, None, False, "has no `status`"),
    ],
)
def test_http_checks_are_judged_on_status_and_json_field(
    check: dict[str, object], status: int, body: object, passed: bool, fragment: str
) -> None:
    verdict = judge_http_check(check, status=status, body=body)
    assert verdict.passed is passed
    assert fragment in verdict.detail


def test_an_unreachable_check_fails_with_the_reason() -> None:
    verdict = judge_http_check(HEALTH, status=None, body=None, error="timed out")
    assert not verdict.passed and verdict.detail == "timed out"
