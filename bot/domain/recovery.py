"""Recovery as an ordered list of steps, each gated by the one before.

For each affected system: restore it, validate it, then give capability back in stages
(10 % → 50 % → 100 % by default), validating after every stage. A step that changes
something (restore, stage) needs the commander's approval; a validation either runs by
itself (an HTTP check) or waits for a person (a manual check). Nothing runs past a failed
validation: the plan is held until the check passes on a retry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class StepKind(StrEnum):
    RESTORE = "restore"
    VALIDATE = "validate"
    STAGE = "stage"


class StepState(StrEnum):
    PENDING = "pending"  # not reached yet
    AWAITING_APPROVAL = "awaiting_approval"  # a change with an endpoint, for the commander
    AWAITING_PERSON = "awaiting_person"  # a manual change or check, waiting for a button
    RUNNING = "running"  # claimed by one worker, calling its endpoint or check
    DONE = "done"  # a change carried out
    PASSED = "passed"  # a validation that held
    FAILED = "failed"  # the plan is held here

    @property
    def settled(self) -> bool:
        return self in (StepState.DONE, StepState.PASSED)


class PlanState(StrEnum):
    IN_PROGRESS = "in_progress"
    HELD = "held"  # a validation failed
    COMPLETED = "completed"


@dataclass(frozen=True)
class StepSpec:
    """A step before it is stored: what it does and, for checks, how it is judged."""

    seq: int
    system: str
    kind: StepKind
    title: str
    stage_percent: int | None = None
    # For a validation: name, and url/method/status/json_field/equals (HTTP) or manual.
    check: Mapping[str, Any] = field(default_factory=dict)
    manual: bool = False


@dataclass(frozen=True)
class Step:
    """A stored step, as the plan's logic sees it."""

    id: int
    seq: int
    system: str
    kind: StepKind
    title: str
    state: StepState
    manual: bool
    stage_percent: int | None = None


@dataclass(frozen=True)
class SystemRecovery:
    """What the configuration says about recovering one system."""

    name: str
    restore_manual: bool
    stage_manual: bool
    checks: Sequence[Mapping[str, Any]]


def plan_recovery(systems: Sequence[SystemRecovery], *, stages: Sequence[int]) -> list[StepSpec]:
    """Every step of the plan, in the order they must run."""
    specs: list[StepSpec] = []

    def add(system: SystemRecovery, kind: StepKind, title: str, **extra: Any) -> None:
        specs.append(
            StepSpec(seq=len(specs) + 1, system=system.name, kind=kind, title=title, **extra)
        )

    def validate(system: SystemRecovery, after: str) -> None:
        for check in system.checks:
            add(
                system,
                StepKind.VALIDATE,
                f"Check {check['name']} ({after})",
                check=check,
                manual=not check.get("url"),
            )

    for system in systems:
        add(system, StepKind.RESTORE, f"Restore {system.name}", manual=system.restore_manual)
        validate(system, "after the restore")
        for percent in stages:
            add(
                system,
                StepKind.STAGE,
                f"Give {system.name} back {percent}% of its capability",
                stage_percent=percent,
                manual=system.stage_manual,
            )
            validate(system, f"at {percent}%")
    return specs


def next_step(steps: Sequence[Step]) -> Step | None:
    """The first step not yet settled; None when every step is."""
    for step in sorted(steps, key=lambda s: s.seq):
        if not step.state.settled:
            return step
    return None


def plan_state(steps: Sequence[Step]) -> PlanState:
    current = next_step(steps)
    if current is None:
        return PlanState.COMPLETED
    return PlanState.HELD if current.state is StepState.FAILED else PlanState.IN_PROGRESS


def state_on_reaching(step: Step) -> StepState:
    """Where a step stands when the plan reaches it: an automatic check runs at once, a
    change waits for the commander, anything manual waits for a person."""
    if step.kind is StepKind.VALIDATE:
        return StepState.AWAITING_PERSON if step.manual else StepState.RUNNING
    # A manual change is done by hand; marking it done is the commander's approval.
    return StepState.AWAITING_PERSON if step.manual else StepState.AWAITING_APPROVAL


@dataclass(frozen=True)
class CheckVerdict:
    passed: bool
    detail: str


_MISSING = object()


def judge_http_check(
    check: Mapping[str, Any], *, status: int | None, body: Any, error: str | None = None
) -> CheckVerdict:
    """Whether an HTTP check's answer is what the configuration expects."""
    if error is not None or status is None:
        return CheckVerdict(False, error or "no answer")
    expected = int(check.get("status", 200))
    if status != expected:
        return CheckVerdict(False, f"HTTP {status}, expected {expected}")
    field_path = check.get("json_field")
    if not field_path:
        return CheckVerdict(True, f"HTTP {status}")
    value = _dig(body, str(field_path))
    if value is _MISSING:
        return CheckVerdict(False, f"HTTP {status}, but the answer has no `{field_path}`")
    wanted = check.get("equals")
    if wanted is None:
        ok = bool(value)
        return CheckVerdict(ok, f"`{field_path}` is {value!r}" + ("" if ok else ", not truthy"))
    if value != wanted and str(value) != str(wanted):
        return CheckVerdict(False, f"`{field_path}` is {value!r}, expected {wanted!r}")
    return CheckVerdict(True, f"HTTP {status}, `{field_path}` is {value!r}")


def _dig(body: Any, path: str) -> Any:
    value = body
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value
