"""The recovery plan message is valid Block Kit in every state, for a long plan too."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.recovery import StepState
from bot.emulator.blockkit import check_message
from bot.presenters import incident_context
from bot.rendering import Renderer
from tests.unit.test_rendering import WORST_CASE, make_incident

pytestmark = pytest.mark.unit


def step(
    i: int, state: StepState, *, current: bool = False, kind: str = "validate"
) -> dict[str, Any]:
    return {
        "id": i,
        "button_value": str(i),
        "seq": i,
        "system": "support-bot-v2",
        "kind": kind,
        "title": f"Check health <{i}> & more " * 5,
        "state": state.value,
        "emoji": ":white_circle:",
        "manual": kind != "validate",
        "current": current,
        "detail": "HTTP 503, expected 200 " * 30,
        "approved_by": "U0IC",
    }


CASES = [
    ("awaiting_approval", StepState.AWAITING_APPROVAL, "stage"),
    ("manual check", StepState.AWAITING_PERSON, "validate"),
    ("manual change", StepState.AWAITING_PERSON, "restore"),
    ("failed", StepState.FAILED, "validate"),
    ("running", StepState.RUNNING, "validate"),
]


@pytest.mark.parametrize(("name", "state", "kind"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("worst", [False, True], ids=["typical", "worst-case"])
def test_the_plan_renders_valid_block_kit(
    name: str, state: StepState, kind: str, worst: bool
) -> None:
    count = 120 if worst else 6
    steps = [step(i, StepState.DONE) for i in range(1, count)]
    steps.append(step(count, state, current=True, kind=kind))
    message = Renderer().render(
        "recovery/plan",
        incident=incident_context(WORST_CASE if worst else make_incident()),
        plan={
            "id": 1,
            "state": "held" if state is StepState.FAILED else "in_progress",
            "done": count - 1,
            "total": count,
        },
        steps=steps,
        commander_id="U0IC",
    )
    assert check_message(message) == [], name
    buttons = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert bool(buttons) is (state is not StepState.RUNNING)


@pytest.mark.parametrize("worst", [False, True], ids=["typical", "worst-case"])
def test_check_ins_and_the_reopen_prompt_are_valid(worst: bool) -> None:
    from datetime import UTC, datetime

    from bot.domain.vocabulary import IncidentState

    now = datetime(2026, 11, 26, tzinfo=UTC)
    incident = WORST_CASE if worst else make_incident(state=IncidentState.RESOLVED)
    context = incident_context(incident)
    for final in (False, True):
        checkin = Renderer().render(
            "recovery/checkin",
            incident=context,
            window={
                "models": ["m" * 80] * (40 if worst else 1),
                "ends_at": now,
                "reopen_prompted_at": now if worst else None,
            },
            final=final,
            remaining="40 hours",
            z_threshold=2.01,
        )
        assert check_message(checkin) == []
    prompt = Renderer().render(
        "recovery/reopen_prompt",
        incident=context,
        alert_title="<b>" * 500 if worst else "Refusals spiking",
        new_incident_number=7,
        commander_id="U0IC",
    )
    assert check_message(prompt) == []
    buttons = [e for b in prompt["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert bool(buttons) is (incident.state is IncidentState.RESOLVED)


def test_every_template_in_recovery_is_covered() -> None:
    assert {n for n in Renderer().template_names() if n.startswith("recovery/")} == {
        "recovery/plan",
        "recovery/checkin",
        "recovery/reopen_prompt",
    }
